/* graph/structure.h: connected components, BFS eccentricity, diameter. */
#ifndef PLORA_GRAPH_STRUCTURE_H
#define PLORA_GRAPH_STRUCTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "graph.h"

#define GRAPH_DIAMETER_EXACT_MAX 20000u   /* n up to which the diameter is exact */
#define GRAPH_DIST_INF UINT32_MAX         /* unreachable */

/* Component label of every vertex (labels 0..count-1, numbered by their
 * smallest vertex) into comp[n] (caller's array, may be NULL) and the count
 * into *count. Returns 0 or GRAPH_E_NOMEM. */
int graph_components(const struct graph *g, uint32_t *comp, uint32_t *count, struct graph_diag *d);

/* BFS distances from src into dist[n] (GRAPH_DIST_INF when unreachable);
 * *ecc = largest finite distance (the source's eccentricity within its
 * component). Returns 0, GRAPH_E_ARG (src >= n), GRAPH_E_NOMEM. */
int graph_bfs(const struct graph *g, uint32_t src, uint32_t *dist, uint32_t *ecc,
              struct graph_diag *d);
/* Eccentricity of src: 0 or an error as graph_bfs. */
int graph_eccentricity(const struct graph *g, uint32_t src, uint32_t *ecc, struct graph_diag *d);

struct graph_diameter {
    bool connected;   /* false: the diameter is infinite and lo/hi are 0 */
    bool exact;       /* lo == hi is the diameter */
    uint32_t lo, hi;  /* bounds: lo <= diameter <= hi */
};

/* Diameter of a connected graph: exact (all eccentricities, 64 sources per
 * bit-parallel BFS) when n <= GRAPH_DIAMETER_EXACT_MAX or `force_exact`,
 * else bounds from repeated double sweeps: lo = largest eccentricity seen,
 * hi = min over swept v of 2*ecc(v). Returns 0 or GRAPH_E_NOMEM. */
int graph_diameter(const struct graph *g, bool force_exact, struct graph_diameter *out,
                   struct graph_diag *d);

#endif
