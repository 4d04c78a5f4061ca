/* graph/structure.c: components, BFS and the diameter. */
#include "structure.h"

#include <stdlib.h>
#include <string.h>

/* BFS from src over the CSR arrays; dist[] must be all GRAPH_DIST_INF for
 * the vertices it may reach. queue holds n entries. Returns the number of
 * vertices reached; *last receives the last one dequeued (a farthest one). */
static uint32_t bfs_fill(const struct graph *g, uint32_t src, uint32_t *dist, uint32_t *queue,
                         uint32_t *last)
{
    const size_t *off = graph_csr_offsets(g);
    const uint32_t *tgt = graph_csr_targets(g);
    uint32_t head = 0, tail = 0;

    dist[src] = 0;
    queue[tail++] = src;
    while (head < tail) {
        uint32_t u = queue[head++];

        for (size_t i = off[u]; i < off[u + 1]; i++)
            if (dist[tgt[i]] == GRAPH_DIST_INF) {
                dist[tgt[i]] = dist[u] + 1;
                queue[tail++] = tgt[i];
            }
    }
    *last = queue[tail - 1];
    return tail;
}

int graph_components(const struct graph *g, uint32_t *comp, uint32_t *count, struct graph_diag *d)
{
    uint32_t n = graph_n(g), *dist = NULL, *queue = NULL, c = 0, last;
    int rc = GRAPH_E_NOMEM;

    *count = 0;
    if ((dist = malloc((size_t)n * sizeof(uint32_t))) == NULL ||
        (queue = malloc((size_t)n * sizeof(uint32_t))) == NULL) {
        rc = graph_fail(d, rc, 0, "components of %u vertices", n);
        goto out;
    }
    memset(dist, 0xff, (size_t)n * sizeof(uint32_t));
    for (uint32_t u = 0; u < n; u++) {
        if (dist[u] != GRAPH_DIST_INF)
            continue;
        uint32_t reached = bfs_fill(g, u, dist, queue, &last);

        if (comp != NULL)
            for (uint32_t i = 0; i < reached; i++)
                comp[queue[i]] = c;
        c++;
    }
    *count = c;
    rc = 0;
out:
    free(dist);
    free(queue);
    return rc;
}

int graph_bfs(const struct graph *g, uint32_t src, uint32_t *dist, uint32_t *ecc,
              struct graph_diag *d)
{
    uint32_t n = graph_n(g), *queue, last;

    if (src >= n)
        return graph_fail(d, GRAPH_E_ARG, 0, "source vertex %u outside 0..%u", src, n - 1);
    if ((queue = malloc((size_t)n * sizeof(uint32_t))) == NULL)
        return graph_fail(d, GRAPH_E_NOMEM, 0, "BFS queue of %u vertices", n);
    memset(dist, 0xff, (size_t)n * sizeof(uint32_t));
    bfs_fill(g, src, dist, queue, &last);
    *ecc = dist[last];
    free(queue);
    return 0;
}

int graph_eccentricity(const struct graph *g, uint32_t src, uint32_t *ecc, struct graph_diag *d)
{
    uint32_t *dist = malloc((size_t)graph_n(g) * sizeof(uint32_t));
    int rc;

    if (dist == NULL)
        return graph_fail(d, GRAPH_E_NOMEM, 0, "BFS distances of %u vertices", graph_n(g));
    rc = graph_bfs(g, src, dist, ecc, d);
    free(dist);
    return rc;
}

/* ---- exact diameter: 64 BFS at once, one bit per source ---- */

struct bitbfs {
    uint64_t *seen, *front, *next;
    uint32_t *active, *touched;   /* vertices with front != 0 / next != 0 */
};

/* Levels until the sources s0..s0+cnt-1 have reached everything = the
 * largest eccentricity among them (the graph is connected). */
static uint32_t bitbfs_batch(const struct graph *g, struct bitbfs *w, uint32_t s0, uint32_t cnt)
{
    const size_t *off = graph_csr_offsets(g);
    const uint32_t *tgt = graph_csr_targets(g);
    uint32_t nact = 0, level = 0;

    memset(w->seen, 0, (size_t)graph_n(g) * sizeof(uint64_t));
    for (uint32_t i = 0; i < cnt; i++) {
        w->seen[s0 + i] = w->front[s0 + i] = 1ull << i;
        w->active[nact++] = s0 + i;
    }
    while (nact > 0) {
        uint32_t ntouch = 0;

        for (uint32_t a = 0; a < nact; a++) {
            uint32_t u = w->active[a];

            for (size_t i = off[u]; i < off[u + 1]; i++) {
                if (w->next[tgt[i]] == 0)
                    w->touched[ntouch++] = tgt[i];
                w->next[tgt[i]] |= w->front[u];
            }
            w->front[u] = 0;
        }
        nact = 0;
        for (uint32_t t = 0; t < ntouch; t++) {
            uint32_t v = w->touched[t];
            uint64_t fresh = w->next[v] & ~w->seen[v];

            w->next[v] = 0;
            if (fresh != 0) {
                w->seen[v] |= fresh;
                w->front[v] = fresh;
                w->active[nact++] = v;
            }
        }
        level += nact > 0;
    }
    return level;
}

static int diameter_exact(const struct graph *g, uint32_t *diam, struct graph_diag *d)
{
    uint32_t n = graph_n(g), best = 0;
    struct bitbfs w = { NULL, NULL, NULL, NULL, NULL };
    int rc = GRAPH_E_NOMEM;

    if ((w.seen = malloc((size_t)n * sizeof(uint64_t))) == NULL ||
        (w.front = calloc(n, sizeof(uint64_t))) == NULL ||
        (w.next = calloc(n, sizeof(uint64_t))) == NULL ||
        (w.active = malloc((size_t)n * sizeof(uint32_t))) == NULL ||
        (w.touched = malloc((size_t)n * sizeof(uint32_t))) == NULL) {
        rc = graph_fail(d, rc, 0, "exact diameter of %u vertices", n);
        goto out;
    }
    for (uint32_t s = 0; s < n; s += 64) {
        uint32_t lv = bitbfs_batch(g, &w, s, n - s < 64 ? n - s : 64);

        if (lv > best)
            best = lv;
    }
    *diam = best;
    rc = 0;
out:
    free(w.seen);
    free(w.front);
    free(w.next);
    free(w.active);
    free(w.touched);
    return rc;
}

/* Double sweeps from the highest-degree vertex: lo = largest eccentricity
 * seen, hi = min 2*ecc(v) over the swept vertices. */
static int diameter_bounds(const struct graph *g, struct graph_diameter *out, struct graph_diag *d)
{
    uint32_t n = graph_n(g), *dist = NULL, *queue = NULL, v = 0, far, ecc;
    int rc = GRAPH_E_NOMEM;

    if ((dist = malloc((size_t)n * sizeof(uint32_t))) == NULL ||
        (queue = malloc((size_t)n * sizeof(uint32_t))) == NULL) {
        rc = graph_fail(d, rc, 0, "diameter bounds of %u vertices", n);
        goto out;
    }
    for (uint32_t u = 1; u < n; u++)
        if (graph_degree(g, u) > graph_degree(g, v))
            v = u;
    out->lo = 0;
    out->hi = UINT32_MAX;
    for (int sweep = 0; sweep < 6; sweep++) {
        memset(dist, 0xff, (size_t)n * sizeof(uint32_t));
        bfs_fill(g, v, dist, queue, &far);
        ecc = dist[far];
        if (ecc > out->lo)
            out->lo = ecc;
        if (2 * (uint64_t)ecc < out->hi)
            out->hi = 2 * ecc;
        v = far;
    }
    out->exact = out->lo == out->hi;
    rc = 0;
out:
    free(dist);
    free(queue);
    return rc;
}

int graph_diameter(const struct graph *g, bool force_exact, struct graph_diameter *out,
                   struct graph_diag *d)
{
    uint32_t count, diam = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = graph_components(g, NULL, &count, d)) != 0)
        return rc;
    out->connected = count == 1;
    if (!out->connected)
        return 0;
    if (!force_exact && graph_n(g) > GRAPH_DIAMETER_EXACT_MAX)
        return diameter_bounds(g, out, d);
    if ((rc = diameter_exact(g, &diam, d)) != 0)
        return rc;
    out->lo = out->hi = diam;
    out->exact = true;
    return 0;
}
