/* daemon/overlay.h: which members a node keeps connections to (no I/O).
 *
 * Every member derives the same overlay graph from the same inputs: the
 * membership sorted by key id (vertex i = i-th member), the cluster's
 * shared topology, parameters and seed (config overlay section). The graph
 * is graph_generate's, made connected by graph_connect. Parameters that do
 * not fit a small membership are adapted the same way everywhere:
 *   n = 1       no neighbours;
 *   ws: k >= n  k becomes the largest even number below n; when that is
 *               under 2 (n = 2) the overlay is the single edge;
 *   ba: m >= n  m becomes n - 1;
 *   er: p = 0   p = 2 ln n / n (capped at 1).
 * A connection between neighbours u < v (by key id) is dialled by u; the
 * engine keeps the one dialled by the smaller id when both dial at once.
 */
#ifndef PLORA_OVERLAY_H
#define PLORA_OVERLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmn_err.h"
#include "graph.h"

#define OVERLAY_ID_LEN 32u

struct overlay_params {
    enum graph_topology topology;
    double p, beta;      /* er edge probability (0 = 2 ln n / n); ws rewiring */
    uint32_t k, m;       /* ws ring degree; ba edges per new vertex */
    uint64_t seed;       /* shared by every node of the cluster */
};

/* One node's view of the overlay: a value, cleared with overlay_clear. */
struct overlay {
    size_t n;                           /* members the graph was built over */
    size_t self;                        /* self's vertex; SIZE_MAX if self is no member */
    size_t n_nbrs;                      /* self's neighbours */
    uint8_t (*nbrs)[OVERLAY_ID_LEN];    /* their key ids, ascending; malloc'd */
    size_t edges;                       /* undirected edges of the whole graph */
    uint32_t max_degree;
    uint64_t edges_hash;                /* graph_edges_hash: equal on every member */
};

/* Derive the overlay over `n` member key ids (any order, duplicates
 * ignored) for the node `self`. `o` is overwritten (clear it first if it
 * held a previous overlay). Returns 0, DMN_E_ARG (parameters the topology
 * refuses: d says which), DMN_E_NOMEM. */
int overlay_build(struct overlay *o, const struct overlay_params *p,
                  const uint8_t (*ids)[OVERLAY_ID_LEN], size_t n,
                  const uint8_t self[OVERLAY_ID_LEN], struct dmn_diag *d);

/* Free the neighbour list and zero o; NULL is fine. */
void overlay_clear(struct overlay *o);

/* true iff id is one of self's neighbours. */
bool overlay_is_neighbour(const struct overlay *o, const uint8_t id[OVERLAY_ID_LEN]);

/* true iff self dials peer (self's key id sorts before peer's). */
bool overlay_dials(const uint8_t self[OVERLAY_ID_LEN], const uint8_t peer[OVERLAY_ID_LEN]);

#endif
