/* graph/graph.h: an undirected simple graph in CSR form, and the overlay
 * generators (Erdős–Rényi, Watts–Strogatz, Barabási–Albert).
 *
 * Vertices are 0..n-1. An overlay of a cluster is derived by every member
 * from the membership sorted by node id (vertex i = i-th member) and a
 * shared seed: the generators are deterministic functions of
 * (topology, n, parameters, seed) through graph/rng.h, so all members get
 * the same edge list. Neighbour lists are sorted ascending.
 * A struct graph is immutable once built and may be shared read-only
 * between threads.
 */
#ifndef PLORA_GRAPH_H
#define PLORA_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "graph_err.h"

#define GRAPH_N_MAX 100000000u          /* vertices; ids fit uint32_t */
#define GRAPH_MEM_CAP_DEFAULT (8ull << 30) /* bytes; estimate above it is refused */

struct graph;   /* opaque */

/* Build from `m` undirected edges edges[2i], edges[2i+1] (either order).
 * Returns 0, GRAPH_E_ARG (n < 1 or n > GRAPH_N_MAX),
 * GRAPH_E_EDGE (vertex >= n, self-loop or duplicate; d names the edge),
 * GRAPH_E_NOMEM. On success the caller owns *out (graph_free). */
int graph_from_edges(struct graph **out, uint32_t n, const uint32_t *edges, size_t m,
                     struct graph_diag *d);
void graph_free(struct graph *g);   /* NULL is fine */

uint32_t graph_n(const struct graph *g);
size_t graph_m(const struct graph *g);          /* undirected edges */
uint32_t graph_degree(const struct graph *g, uint32_t u);
uint32_t graph_max_degree(const struct graph *g);
/* Sorted neighbours of u; *deg receives their count. Valid while g lives. */
const uint32_t *graph_neighbors(const struct graph *g, uint32_t u, uint32_t *deg);
/* CSR arrays: offsets[0..n] (size_t) and targets[0..2m). Valid while g lives. */
const size_t *graph_csr_offsets(const struct graph *g);
const uint32_t *graph_csr_targets(const struct graph *g);
/* FNV-1a 64 over the edges (u < v) in CSR order, each as two little-endian
 * uint32: a compact fingerprint for determinism checks across nodes. */
uint64_t graph_edges_hash(const struct graph *g);

/* ---- generators ---- */

enum graph_topology { GRAPH_ER = 0, GRAPH_WS = 1, GRAPH_BA = 2 };

struct graph_params {
    enum graph_topology topology;
    uint32_t n;         /* vertices, >= 2 */
    double p;           /* ER: edge probability in [0, 1] */
    uint32_t k;         /* WS: ring degree, even, 2 <= k < n */
    double beta;        /* WS: rewiring probability in [0, 1] */
    uint32_t m;         /* BA: edges per new vertex, 1 <= m < n */
    uint64_t seed;
};

/* "er" | "ws" | "ba" <-> enum. Parse returns 0 or GRAPH_E_PARAM. */
const char *graph_topology_name(enum graph_topology t);
int graph_topology_parse(const char *s, enum graph_topology *out, struct graph_diag *d);

/* Check every parameter the topology uses, then the memory estimate of
 * generating and analysing the graph against `mem_cap` bytes (0 = default
 * cap). Returns 0, GRAPH_E_PARAM (d->msg starts with the parameter's option
 * name, e.g. "--k: 7 is odd ...") or GRAPH_E_TOO_BIG (names n and the
 * parameter that drives the size). */
int graph_params_check(const struct graph_params *p, uint64_t mem_cap, struct graph_diag *d);
/* Expected edge count and peak bytes of generate + analyse (estimate). */
double graph_params_expected_edges(const struct graph_params *p);
uint64_t graph_params_mem_estimate(const struct graph_params *p);

/* Generate the overlay. ER: G(n,p) by geometric skipping (Batagelj-Brandes),
 * O(n + m). WS: ring lattice of degree k, each lattice edge (u, u+j) rewired
 * with probability beta to a uniform vertex that keeps the graph simple
 * (edge count stays n*k/2). BA: seed star on vertices 0..m (m edges), then
 * each vertex t = m+1..n-1 links to m distinct earlier vertices drawn with
 * probability proportional to degree (m*(n-m) edges in all).
 * Returns 0, the codes of graph_params_check, GRAPH_E_NOMEM. Caller owns *out. */
int graph_generate(struct graph **out, const struct graph_params *p, struct graph_diag *d);

/* Join the components of g with the fewest edges (components - 1): the
 * smallest vertex of every component but the largest is linked to a vertex
 * of the largest, the i-th such component (in order of smallest vertex) to
 * the i-th vertex of the largest (ascending, wrapping), so pieces hang off
 * different vertices rather than forming a chain. Deterministic. *out is a
 * new graph (a copy when g is connected); *added receives the number of
 * edges added. Returns 0 or GRAPH_E_NOMEM. */
int graph_connect(struct graph **out, const struct graph *g, size_t *added, struct graph_diag *d);

#endif
