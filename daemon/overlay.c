/* daemon/overlay.c: the overlay a node derives from its membership (see
 * overlay.h). Pure: the same sorted ids, parameters and seed give the same
 * graph on every node. */
#include "overlay.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, OVERLAY_ID_LEN);
}

bool overlay_dials(const uint8_t self[OVERLAY_ID_LEN], const uint8_t peer[OVERLAY_ID_LEN])
{
    return memcmp(self, peer, OVERLAY_ID_LEN) < 0;
}

void overlay_clear(struct overlay *o)
{
    if (o == NULL)
        return;
    free(o->nbrs);
    memset(o, 0, sizeof(*o));
    o->self = SIZE_MAX;
}

bool overlay_is_neighbour(const struct overlay *o, const uint8_t id[OVERLAY_ID_LEN])
{
    return o->n_nbrs > 0 && bsearch(id, o->nbrs, o->n_nbrs, OVERLAY_ID_LEN, id_cmp) != NULL;
}

/* The graph's parameters for n members (overlay.h says how they adapt). */
static struct graph_params params_for(const struct overlay_params *p, uint32_t n)
{
    struct graph_params g = { .topology = p->topology, .n = n, .p = p->p, .k = p->k,
                              .beta = p->beta, .m = p->m, .seed = p->seed };

    if (g.topology == GRAPH_ER && g.p <= 0.0)
        g.p = fmin(1.0, 2.0 * log((double)n) / (double)n);
    if (g.topology == GRAPH_WS && g.k >= n)
        g.k = (n - 1) & ~1u;
    if (g.topology == GRAPH_BA && g.m >= n)
        g.m = n - 1;
    return g;
}

/* Generate and connect the graph over n >= 2 vertices into *out. */
static int graph_for(struct graph **out, const struct overlay_params *p, uint32_t n,
                     struct dmn_diag *d)
{
    struct graph_params gp = params_for(p, n);
    struct graph *raw = NULL;
    struct graph_diag gd = { 0 };
    size_t added = 0;
    int rc;

    if (gp.topology == GRAPH_WS && gp.k < 2) {   /* n = 2: the one possible edge */
        static const uint32_t edge[2] = { 0, 1 };
        rc = graph_from_edges(out, 2, edge, 1, &gd);
    } else if ((rc = graph_generate(&raw, &gp, &gd)) == 0) {
        rc = graph_connect(out, raw, &added, &gd);
    }
    graph_free(raw);
    if (rc == GRAPH_E_NOMEM)
        return dmn_fail(d, DMN_E_NOMEM, "overlay: out of memory for %u members", n);
    if (rc != 0)
        return dmn_fail(d, DMN_E_ARG, "overlay: %s", gd.msg);
    return 0;
}

/* Sorted, deduplicated copy of ids; *m receives its length. */
static uint8_t (*sorted_ids(const uint8_t (*ids)[OVERLAY_ID_LEN], size_t n, size_t *m))[OVERLAY_ID_LEN]
{
    uint8_t (*v)[OVERLAY_ID_LEN] = malloc((n ? n : 1) * OVERLAY_ID_LEN);
    size_t k = 0;

    if (v == NULL)
        return NULL;
    memcpy(v, ids, n * OVERLAY_ID_LEN);
    qsort(v, n, OVERLAY_ID_LEN, id_cmp);
    for (size_t i = 0; i < n; i++)
        if (k == 0 || memcmp(v[k - 1], v[i], OVERLAY_ID_LEN) != 0)
            memmove(v[k++], v[i], OVERLAY_ID_LEN);
    *m = k;
    return v;
}

/* Fill o's neighbour list from g for vertex o->self over the sorted ids. */
static int take_neighbours(struct overlay *o, const struct graph *g,
                           const uint8_t (*ids)[OVERLAY_ID_LEN], struct dmn_diag *d)
{
    uint32_t deg = 0;
    const uint32_t *nb = graph_neighbors(g, (uint32_t)o->self, &deg);

    o->edges = graph_m(g);
    o->max_degree = graph_max_degree(g);
    o->edges_hash = graph_edges_hash(g);
    if (deg == 0)
        return 0;
    if ((o->nbrs = malloc((size_t)deg * OVERLAY_ID_LEN)) == NULL)
        return dmn_fail(d, DMN_E_NOMEM, "overlay: out of memory");
    for (uint32_t i = 0; i < deg; i++)   /* ascending vertices = ascending ids */
        memcpy(o->nbrs[i], ids[nb[i]], OVERLAY_ID_LEN);
    o->n_nbrs = deg;
    return 0;
}

int overlay_build(struct overlay *o, const struct overlay_params *p,
                  const uint8_t (*ids)[OVERLAY_ID_LEN], size_t n,
                  const uint8_t self[OVERLAY_ID_LEN], struct dmn_diag *d)
{
    uint8_t (*v)[OVERLAY_ID_LEN] = NULL, *hit;
    struct graph *g = NULL;
    size_t m = 0;
    int rc = 0;

    memset(o, 0, sizeof(*o));
    o->self = SIZE_MAX;
    if (n > GRAPH_N_MAX)
        return dmn_fail(d, DMN_E_ARG, "overlay: %zu members, at most %u", n, GRAPH_N_MAX);
    if ((v = sorted_ids(ids, n, &m)) == NULL) {
        rc = dmn_fail(d, DMN_E_NOMEM, "overlay: out of memory");
        goto out;
    }
    o->n = m;
    if ((hit = bsearch(self, v, m, OVERLAY_ID_LEN, id_cmp)) != NULL)
        o->self = (size_t)(hit - v[0]) / OVERLAY_ID_LEN;
    if (m < 2)
        goto out;   /* alone (or nobody): no edges */
    if ((rc = graph_for(&g, p, (uint32_t)m, d)) != 0)
        goto out;
    if (o->self != SIZE_MAX)
        rc = take_neighbours(o, g, (const uint8_t (*)[OVERLAY_ID_LEN])v, d);
    else {
        o->edges = graph_m(g);
        o->max_degree = graph_max_degree(g);
        o->edges_hash = graph_edges_hash(g);
    }
out:
    graph_free(g);
    free(v);
    if (rc != 0)
        overlay_clear(o);
    return rc;
}
