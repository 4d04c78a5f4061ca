/* graph/gen.c: parameter checks and the ER / WS / BA overlay generators.
 * Every random choice comes from graph/rng.h seeded with params->seed, in a
 * fixed order, so (topology, n, parameters, seed) fixes the edge list. */
#include "graph.h"
#include "rng.h"
#include "structure.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Growable list of edges, two uint32 per edge. */
struct ebuf {
    uint32_t *e;
    size_t m, cap;   /* edges used / allocated */
};

static int ebuf_reserve(struct ebuf *b, size_t cap)
{
    uint32_t *p;

    if (cap <= b->cap)
        return 0;
    if ((p = realloc(b->e, cap * 2 * sizeof(uint32_t))) == NULL)
        return GRAPH_E_NOMEM;
    b->e = p;
    b->cap = cap;
    return 0;
}

static int ebuf_add(struct ebuf *b, uint32_t u, uint32_t v)
{
    if (b->m == b->cap && ebuf_reserve(b, b->cap < 1024 ? 1024 : b->cap * 2) != 0)
        return GRAPH_E_NOMEM;
    b->e[2 * b->m] = u;
    b->e[2 * b->m + 1] = v;
    b->m++;
    return 0;
}

/* ---- parameters ---- */

double graph_params_expected_edges(const struct graph_params *p)
{
    double n = p->n;

    switch (p->topology) {
    case GRAPH_ER: return p->p * n * (n - 1) / 2;
    case GRAPH_WS: return n * (double)(p->k / 2);
    case GRAPH_BA: return (double)p->m * (n - p->m);
    }
    return 0;
}

uint64_t graph_params_mem_estimate(const struct graph_params *p)
{
    /* Per edge: generator buffer 8 B, WS hash set <= 32 B, BA attachment list
     * 8 B, CSR 8 B, copy for --connect 8 B => 64 B. Per vertex: CSR offsets,
     * BFS/labels/degree arrays, Lanczos vectors, with margin => 600 B. Dense
     * solver below GRAPH_DENSE_MAX (2000): two n x n double matrices. */
    double n = p->n, est = 64.0 * graph_params_expected_edges(p) + 600.0 * n;

    if (n <= 2000)
        est += 16.0 * n * n;
    return est >= 1.8e19 ? UINT64_MAX : (uint64_t)est;
}

static int check_topology_params(const struct graph_params *p, struct graph_diag *d)
{
    switch (p->topology) {
    case GRAPH_ER:
        if (!(p->p >= 0.0 && p->p <= 1.0))
            return graph_fail(d, GRAPH_E_PARAM, 0, "--p: %g is outside [0, 1]", p->p);
        return 0;
    case GRAPH_WS:
        if (p->k < 2 || p->k % 2 != 0)
            return graph_fail(d, GRAPH_E_PARAM, 0,
                              "--k: %u must be even and at least 2 (k/2 ring neighbours per side)",
                              p->k);
        if (p->k >= p->n)
            return graph_fail(d, GRAPH_E_PARAM, 0, "--k: %u must be below n = %u", p->k, p->n);
        if (!(p->beta >= 0.0 && p->beta <= 1.0))
            return graph_fail(d, GRAPH_E_PARAM, 0, "--beta: %g is outside [0, 1]", p->beta);
        return 0;
    case GRAPH_BA:
        if (p->m < 1 || p->m >= p->n)
            return graph_fail(d, GRAPH_E_PARAM, 0, "--m: %u is outside 1..n-1 = 1..%u", p->m,
                              p->n - 1);
        return 0;
    }
    return graph_fail(d, GRAPH_E_PARAM, 0, "--topology: unknown value %d", (int)p->topology);
}

int graph_params_check(const struct graph_params *p, uint64_t mem_cap, struct graph_diag *d)
{
    static const char *driver[] = { "--p", "--k", "--m" };
    uint64_t est;
    int rc;

    if (p->n < 2 || p->n > GRAPH_N_MAX)
        return graph_fail(d, GRAPH_E_PARAM, 0, "-n: %u is outside 2..%u", p->n, GRAPH_N_MAX);
    if ((rc = check_topology_params(p, d)) != 0)
        return rc;
    if (mem_cap == 0)
        mem_cap = GRAPH_MEM_CAP_DEFAULT;
    est = graph_params_mem_estimate(p);
    if (est > mem_cap || graph_params_expected_edges(p) > (double)(SIZE_MAX / 64))
        return graph_fail(d, GRAPH_E_TOO_BIG, 0,
                          "-n %u with %s: about %.3g edges, estimated %.3g GiB > cap %.3g GiB",
                          p->n, driver[p->topology], graph_params_expected_edges(p),
                          (double)est / 1073741824.0, (double)mem_cap / 1073741824.0);
    return 0;
}

/* ---- Erdős–Rényi: Batagelj & Brandes (2005) geometric skipping ---- */

static int gen_er(struct ebuf *b, const struct graph_params *p, struct graph_rng *r)
{
    double lq = log1p(-p->p), limit = (double)p->n * (double)p->n;
    int64_t v = 1, w = -1, n = p->n;

    if (p->p <= 0.0)
        return 0;
    if (ebuf_reserve(b, (size_t)(graph_params_expected_edges(p) * 1.05) + 64) != 0)
        return GRAPH_E_NOMEM;
    while (v < n) {
        /* Skip ~ Geometric(p): the number of non-edges before the next edge. */
        double skip = p->p >= 1.0 ? 0.0 : floor(log1p(-graph_rng_uniform(r)) / lq);

        if (skip > limit)
            break;
        w += 1 + (int64_t)skip;
        while (w >= v && v < n) {
            w -= v;
            v++;
        }
        if (v < n && ebuf_add(b, (uint32_t)w, (uint32_t)v) != 0)
            return GRAPH_E_NOMEM;
    }
    return 0;
}

/* ---- Watts–Strogatz ---- */

#define SET_EMPTY UINT64_MAX
#define SET_TOMB (UINT64_MAX - 1)

/* Open-addressing set of edge keys (min << 32 | max), linear probing. */
struct eset {
    uint64_t *slot;
    size_t mask;
};

static uint64_t ekey(uint32_t u, uint32_t v)
{
    return u < v ? (uint64_t)u << 32 | v : (uint64_t)v << 32 | u;
}

static size_t eset_home(const struct eset *s, uint64_t key)
{
    return (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 17) & s->mask;
}

static int eset_init(struct eset *s, size_t m)
{
    size_t cap = 1024;

    while (cap < 4 * m)
        cap *= 2;
    if ((s->slot = malloc(cap * sizeof(uint64_t))) == NULL)
        return GRAPH_E_NOMEM;
    memset(s->slot, 0xff, cap * sizeof(uint64_t));   /* all SET_EMPTY */
    s->mask = cap - 1;
    return 0;
}

/* Slot holding key, or SIZE_MAX. */
static size_t eset_find(const struct eset *s, uint64_t key)
{
    for (size_t i = eset_home(s, key);; i = (i + 1) & s->mask) {
        if (s->slot[i] == key)
            return i;
        if (s->slot[i] == SET_EMPTY)
            return SIZE_MAX;
    }
}

static void eset_insert(struct eset *s, uint64_t key)
{
    size_t i = eset_home(s, key);

    while (s->slot[i] != SET_EMPTY && s->slot[i] != SET_TOMB)
        i = (i + 1) & s->mask;
    s->slot[i] = key;
}

/* Rewire edge i = (u, v) to (u, w) for a uniform w keeping the graph simple;
 * u already adjacent to everyone leaves the edge as it is. */
static void ws_rewire(struct ebuf *b, size_t i, struct eset *s, uint32_t *deg, uint32_t n,
                      struct graph_rng *r)
{
    uint32_t u = b->e[2 * i], v = b->e[2 * i + 1], w;

    if (deg[u] >= n - 1)
        return;
    do
        w = (uint32_t)graph_rng_below(r, n);
    while (w == u || eset_find(s, ekey(u, w)) != SIZE_MAX);
    s->slot[eset_find(s, ekey(u, v))] = SET_TOMB;
    eset_insert(s, ekey(u, w));
    deg[v]--;
    deg[w]++;
    b->e[2 * i + 1] = w;
}

static int gen_ws(struct ebuf *b, const struct graph_params *p, struct graph_rng *r)
{
    uint32_t n = p->n, half = p->k / 2, *deg = NULL;
    struct eset s = { NULL, 0 };
    int rc = GRAPH_E_NOMEM;

    if (ebuf_reserve(b, (size_t)n * half) != 0 || eset_init(&s, (size_t)n * half) != 0 ||
        (deg = malloc((size_t)n * sizeof(uint32_t))) == NULL)
        goto out;
    for (uint32_t u = 0; u < n; u++)
        deg[u] = p->k;
    /* Lattice edge (u, u+j mod n) sits at index (j-1)*n + u. */
    for (uint32_t j = 1; j <= half; j++)
        for (uint32_t u = 0; u < n; u++) {
            ebuf_add(b, u, (uint32_t)(((uint64_t)u + j) % n));   /* reserved: cannot fail */
            eset_insert(&s, ekey(u, (uint32_t)(((uint64_t)u + j) % n)));
        }
    for (size_t i = 0; i < b->m; i++)
        if (graph_rng_uniform(r) < p->beta)
            ws_rewire(b, i, &s, deg, n, r);
    rc = 0;
out:
    free(s.slot);
    free(deg);
    return rc;
}

/* ---- Barabási–Albert ---- */

static int gen_ba(struct ebuf *b, const struct graph_params *p, struct graph_rng *r)
{
    uint32_t n = p->n, m = p->m, *mark = NULL, *rep = NULL;
    size_t nrep = 0, total = (size_t)m * (n - m);
    int rc = GRAPH_E_NOMEM;

    /* rep lists each edge's two endpoints: a uniform entry is a vertex drawn
     * with probability proportional to its degree. mark[v] == t: v is
     * already a target of vertex t. */
    if (ebuf_reserve(b, total) != 0 || (rep = malloc(2 * total * sizeof(uint32_t))) == NULL ||
        (mark = malloc((size_t)n * sizeof(uint32_t))) == NULL)
        goto out;
    memset(mark, 0xff, (size_t)n * sizeof(uint32_t));
    for (uint32_t i = 1; i <= m; i++) {      /* seed star centred on 0 */
        ebuf_add(b, 0, i);
        rep[nrep++] = 0;
        rep[nrep++] = i;
    }
    for (uint32_t t = m + 1; t < n; t++) {
        size_t base = nrep;

        for (uint32_t j = 0; j < m; j++) {
            uint32_t v;

            do
                v = rep[graph_rng_below(r, base)];
            while (mark[v] == t);
            mark[v] = t;
            ebuf_add(b, v, t);
            rep[nrep++] = v;
            rep[nrep++] = t;
        }
    }
    rc = 0;
out:
    free(rep);
    free(mark);
    return rc;
}

int graph_generate(struct graph **out, const struct graph_params *p, struct graph_diag *d)
{
    struct ebuf b = { NULL, 0, 0 };
    struct graph_rng r;
    int rc;

    *out = NULL;
    if ((rc = graph_params_check(p, 0, d)) != 0)
        return rc;
    graph_rng_seed(&r, p->seed);
    switch (p->topology) {
    case GRAPH_ER: rc = gen_er(&b, p, &r); break;
    case GRAPH_WS: rc = gen_ws(&b, p, &r); break;
    case GRAPH_BA: rc = gen_ba(&b, p, &r); break;
    }
    if (rc != 0)
        rc = graph_fail(d, rc, 0, "generating %s with n = %u", graph_topology_name(p->topology),
                        p->n);
    else
        rc = graph_from_edges(out, p->n, b.e, b.m, d);
    free(b.e);
    return rc;
}

/* ---- joining components ---- */

/* g's edges as (u, v), u < v, sorted by u then v, with the joining edges
 * (keys min << 32 | max, sorted) merged in at their place, so that
 * graph_from_edges fills sorted rows directly. */
static int copy_edges(struct ebuf *b, const struct graph *g, const uint64_t *join, size_t njoin)
{
    size_t k = 0;

    if (ebuf_reserve(b, graph_m(g) + njoin + 1) != 0)
        return GRAPH_E_NOMEM;
    for (uint32_t u = 0; u < graph_n(g); u++) {
        uint32_t deg;
        const uint32_t *nb = graph_neighbors(g, u, &deg);

        for (uint32_t i = 0; i < deg; i++) {
            if (nb[i] < u)
                continue;
            for (; k < njoin && join[k] < ekey(u, nb[i]); k++)
                ebuf_add(b, (uint32_t)(join[k] >> 32), (uint32_t)join[k]);
            ebuf_add(b, u, nb[i]);
        }
        for (; k < njoin && join[k] >> 32 == u; k++)
            ebuf_add(b, u, (uint32_t)join[k]);
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/* Largest component's label (ties: the smaller label) and its size. */
static uint32_t giant_label(const uint32_t *comp, uint32_t n, uint32_t count, uint32_t *size)
{
    uint32_t *sz = calloc(count, sizeof(uint32_t)), best = 0;

    if (sz == NULL)
        return UINT32_MAX;
    for (uint32_t u = 0; u < n; u++)
        sz[comp[u]]++;
    for (uint32_t c = 1; c < count; c++)
        if (sz[c] > sz[best])
            best = c;
    *size = sz[best];
    free(sz);
    return best;
}

/* One edge per other component: its smallest vertex to the i-th vertex
 * (ascending, wrapping) of the giant component, so that joined pieces hang
 * off different vertices instead of forming a chain. Keys into join[]. */
static int plan_joins(const uint32_t *comp, uint32_t n, uint32_t count, uint64_t *join)
{
    uint32_t gsize = 0, giant = giant_label(comp, n, count, &gsize), *gv, k = 0, seen = 0;
    unsigned char *done;

    if (giant == UINT32_MAX || (gv = malloc((size_t)gsize * sizeof(uint32_t))) == NULL)
        return GRAPH_E_NOMEM;
    if ((done = calloc(count, 1)) == NULL) {
        free(gv);
        return GRAPH_E_NOMEM;
    }
    for (uint32_t u = 0; u < n; u++)
        if (comp[u] == giant)
            gv[seen++] = u;
    for (uint32_t u = 0; u < n; u++)
        if (comp[u] != giant && !done[comp[u]]) {
            done[comp[u]] = 1;
            join[k] = ekey(u, gv[k % gsize]);
            k++;
        }
    qsort(join, k, sizeof(uint64_t), cmp_u64);
    free(gv);
    free(done);
    return 0;
}

int graph_connect(struct graph **out, const struct graph *g, size_t *added, struct graph_diag *d)
{
    struct ebuf b = { NULL, 0, 0 };
    uint32_t *comp = NULL, count = 0, n = graph_n(g);
    uint64_t *join = NULL;
    int rc = GRAPH_E_NOMEM;

    *out = NULL;
    *added = 0;
    if ((comp = malloc((size_t)n * sizeof(uint32_t))) == NULL)
        goto out;
    if ((rc = graph_components(g, comp, &count, d)) != 0)
        goto out;
    rc = GRAPH_E_NOMEM;
    if ((join = malloc((size_t)count * sizeof(uint64_t))) == NULL ||
        plan_joins(comp, n, count, join) != 0 || copy_edges(&b, g, join, count - 1) != 0)
        goto out;
    *added = count - 1;
    rc = graph_from_edges(out, n, b.e, b.m, d);
out:
    if (rc == GRAPH_E_NOMEM)
        graph_fail(d, rc, 0, "joining components of a graph of %u vertices", n);
    free(comp);
    free(join);
    free(b.e);
    return rc;
}
