/* graph/graph.c: CSR storage of an undirected simple graph. */
#include "graph.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct graph {
    uint32_t n;
    size_t m;            /* undirected edges; targets holds 2m entries */
    uint32_t max_degree;
    size_t *off;         /* n + 1 offsets into tgt */
    uint32_t *tgt;       /* neighbours, sorted within each row */
};

static int check_edges(uint32_t n, const uint32_t *e, size_t m, struct graph_diag *d)
{
    for (size_t i = 0; i < m; i++) {
        if (e[2 * i] >= n || e[2 * i + 1] >= n)
            return graph_fail(d, GRAPH_E_EDGE, i, "edge %zu (%u, %u): vertex outside 0..%u",
                              i, e[2 * i], e[2 * i + 1], n - 1);
        if (e[2 * i] == e[2 * i + 1])
            return graph_fail(d, GRAPH_E_EDGE, i, "edge %zu (%u, %u): self-loop", i, e[2 * i],
                              e[2 * i + 1]);
    }
    return 0;
}

/* Duplicates (adjacent in the sorted rows) and the largest degree. */
static int finish_rows(struct graph *g, struct graph_diag *d)
{
    for (uint32_t u = 0; u < g->n; u++) {
        size_t a = g->off[u], b = g->off[u + 1];

        for (size_t i = a + 1; i < b; i++)
            if (g->tgt[i] == g->tgt[i - 1])
                return graph_fail(d, GRAPH_E_EDGE, 0, "edge (%u, %u) appears twice", u, g->tgt[i]);
        if (b - a > g->max_degree)
            g->max_degree = (uint32_t)(b - a);
    }
    return 0;
}

/* Rows in edge order; true when every row came out ascending (generators
 * that emit edges sorted by one endpoint, like ER's skipping, do). */
static bool fill_rows(const struct graph *g, const uint32_t *e, uint32_t *dst, size_t *pos)
{
    bool sorted = true;

    memcpy(pos, g->off, ((size_t)g->n + 1) * sizeof(size_t));
    for (size_t i = 0; i < g->m; i++) {
        uint32_t u = e[2 * i], v = e[2 * i + 1];

        sorted &= (pos[u] == g->off[u] || dst[pos[u] - 1] < v) &&
                  (pos[v] == g->off[v] || dst[pos[v] - 1] < u);
        dst[pos[u]++] = v;
        dst[pos[v]++] = u;
    }
    return sorted;
}

/* Transpose tmp's rows into g->tgt: walking the sources u in increasing
 * order appends u to each neighbour's row, so every row comes out sorted,
 * in O(n + m) without a comparison sort. */
static void transpose_rows(struct graph *g, const uint32_t *tmp, size_t *pos)
{
    memcpy(pos, g->off, ((size_t)g->n + 1) * sizeof(size_t));
    for (uint32_t u = 0; u < g->n; u++)
        for (size_t i = g->off[u]; i < g->off[u + 1]; i++)
            g->tgt[pos[tmp[i]]++] = u;
}

static int fill_csr(struct graph *g, const uint32_t *e, struct graph_diag *d)
{
    size_t *pos = NULL;
    uint32_t *tmp = NULL;
    int rc = GRAPH_E_NOMEM;

    if ((g->off = calloc((size_t)g->n + 1, sizeof(size_t))) == NULL ||
        (g->tgt = malloc((2 * g->m + 1) * sizeof(uint32_t))) == NULL ||
        (pos = malloc(((size_t)g->n + 1) * sizeof(size_t))) == NULL)
        goto out;
    for (size_t i = 0; i < 2 * g->m; i++)
        g->off[e[i] + 1]++;
    for (uint32_t u = 0; u < g->n; u++)
        g->off[u + 1] += g->off[u];
    if (!fill_rows(g, e, g->tgt, pos)) {
        tmp = g->tgt;       /* unsorted rows become the transpose's input */
        if ((g->tgt = malloc((2 * g->m + 1) * sizeof(uint32_t))) == NULL)
            goto out;
        transpose_rows(g, tmp, pos);
    }
    rc = finish_rows(g, d);
out:
    free(pos);
    free(tmp);
    return rc == GRAPH_E_NOMEM ? graph_fail(d, rc, 0, "CSR of %u vertices, %zu edges", g->n, g->m)
                               : rc;
}

int graph_from_edges(struct graph **out, uint32_t n, const uint32_t *edges, size_t m,
                     struct graph_diag *d)
{
    struct graph *g = NULL;
    int rc;

    *out = NULL;
    if (n < 1 || n > GRAPH_N_MAX)
        return graph_fail(d, GRAPH_E_ARG, 0, "n = %u outside 1..%u", n, GRAPH_N_MAX);
    if ((rc = check_edges(n, edges, m, d)) != 0)
        return rc;
    if ((g = calloc(1, sizeof(*g))) == NULL)
        return graph_fail(d, GRAPH_E_NOMEM, 0, "graph header");
    g->n = n;
    g->m = m;
    if ((rc = fill_csr(g, edges, d)) != 0)
        goto out;
    *out = g;       /* transferred */
    g = NULL;
out:
    graph_free(g);
    return rc;
}

void graph_free(struct graph *g)
{
    if (g == NULL)
        return;
    free(g->off);
    free(g->tgt);
    free(g);
}

uint32_t graph_n(const struct graph *g) { return g->n; }
size_t graph_m(const struct graph *g) { return g->m; }
uint32_t graph_max_degree(const struct graph *g) { return g->max_degree; }
const size_t *graph_csr_offsets(const struct graph *g) { return g->off; }
const uint32_t *graph_csr_targets(const struct graph *g) { return g->tgt; }

uint32_t graph_degree(const struct graph *g, uint32_t u)
{
    return (uint32_t)(g->off[u + 1] - g->off[u]);
}

const uint32_t *graph_neighbors(const struct graph *g, uint32_t u, uint32_t *deg)
{
    *deg = graph_degree(g, u);
    return g->tgt + g->off[u];
}

static uint64_t fnv_u32(uint64_t h, uint32_t x)
{
    for (int i = 0; i < 4; i++) {
        h ^= (x >> (8 * i)) & 0xffu;
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t graph_edges_hash(const struct graph *g)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (uint32_t u = 0; u < g->n; u++)
        for (size_t i = g->off[u]; i < g->off[u + 1]; i++)
            if (g->tgt[i] > u)
                h = fnv_u32(fnv_u32(h, u), g->tgt[i]);
    return h;
}

const char *graph_topology_name(enum graph_topology t)
{
    switch (t) {
    case GRAPH_ER: return "er";
    case GRAPH_WS: return "ws";
    case GRAPH_BA: return "ba";
    }
    return "unknown";
}

int graph_topology_parse(const char *s, enum graph_topology *out, struct graph_diag *d)
{
    static const enum graph_topology all[] = { GRAPH_ER, GRAPH_WS, GRAPH_BA };

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(s, graph_topology_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return graph_fail(d, GRAPH_E_PARAM, 0, "--topology: \"%s\" is not one of er, ws, ba", s);
}
