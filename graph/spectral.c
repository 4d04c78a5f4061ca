/* graph/spectral.c: λ₂ of the combinatorial / normalised Laplacian, λ_max of
 * the adjacency matrix, and the sweep-cut conductance. */
#include "spectral.h"
#include "lanczos.h"
#include "structure.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum op_kind { OP_LAPLACIAN, OP_NORMALIZED, OP_ADJACENCY };

struct op_ctx {
    const struct graph *g;
    enum op_kind kind;
    double *dis;        /* OP_NORMALIZED: d_u^{-1/2} */
};

/* y = Op x over the CSR arrays. */
static void apply(const void *vctx, const double *x, double *y)
{
    const struct op_ctx *c = vctx;
    const size_t *off = graph_csr_offsets(c->g);
    const uint32_t *tgt = graph_csr_targets(c->g);
    uint32_t n = graph_n(c->g);

    for (uint32_t u = 0; u < n; u++) {
        double s = 0;

        if (c->kind == OP_NORMALIZED) {
            for (size_t i = off[u]; i < off[u + 1]; i++)
                s += c->dis[tgt[i]] * x[tgt[i]];
            y[u] = x[u] - c->dis[u] * s;
            continue;
        }
        for (size_t i = off[u]; i < off[u + 1]; i++)
            s += x[tgt[i]];
        y[u] = c->kind == OP_ADJACENCY ? s : (double)(off[u + 1] - off[u]) * x[u] - s;
    }
}

/* Dense n x n matrix of the operator (column-major, symmetric). */
static void dense_fill(const struct op_ctx *c, double *a)
{
    uint32_t n = graph_n(c->g);

    memset(a, 0, (size_t)n * n * sizeof(double));
    for (uint32_t u = 0; u < n; u++) {
        uint32_t deg;
        const uint32_t *nb = graph_neighbors(c->g, u, &deg);

        for (uint32_t i = 0; i < deg; i++)
            a[(size_t)u * n + nb[i]] = c->kind == OP_NORMALIZED ? -c->dis[u] * c->dis[nb[i]]
                                     : c->kind == OP_ADJACENCY  ? 1.0 : -1.0;
        if (c->kind == OP_LAPLACIAN)
            a[(size_t)u * n + u] = deg;
        else if (c->kind == OP_NORMALIZED)
            a[(size_t)u * n + u] = 1.0;
    }
}

/* index-th smallest eigenvalue (1-based) by dsyevr; vector into vec if set. */
static int dense_eig(const struct op_ctx *c, lapack_int index, double *val, double *vec,
                     struct graph_diag *d)
{
    lapack_int n = (lapack_int)graph_n(c->g), found = 0, info, isuppz[2];
    /* dsyevr uses all n entries of w as workspace, not only the `found` it
     * returns; z is not referenced without vectors (jobz 'N'). */
    double *a = malloc((size_t)n * n * sizeof(double)), *w = malloc((size_t)n * sizeof(double));
    double zdummy[1];
    double *z = vec != NULL ? vec : zdummy;

    if (a == NULL || w == NULL) {
        free(a);
        free(w);
        return graph_fail(d, GRAPH_E_NOMEM, 0, "dense %d x %d matrix", (int)n, (int)n);
    }
    dense_fill(c, a);
    info = LAPACKE_dsyevr(LAPACK_COL_MAJOR, vec != NULL ? 'V' : 'N', 'I', 'U', n, a, n, 0, 0,
                          index, index, LAPACKE_dlamch('S'), &found, w, z, n, isuppz);
    free(a);
    *val = w[0];
    free(w);
    if (info != 0 || found != 1)
        return graph_fail(d, GRAPH_E_LAPACK, 0, "dsyevr (n = %d, eigenvalue %d): info %d, found %d",
                          (int)n, (int)index, (int)info, (int)found);
    return 0;
}

static int use_dense(uint32_t n, enum graph_solver s, struct graph_diag *d, bool *dense)
{
    if (s == GRAPH_SOLVER_DENSE && n > 4 * GRAPH_DENSE_MAX)
        return graph_fail(d, GRAPH_E_ARG, 0, "dense solver forced on n = %u > %u", n,
                          4 * GRAPH_DENSE_MAX);
    *dense = s == GRAPH_SOLVER_DENSE || (s == GRAPH_SOLVER_AUTO && n <= GRAPH_DENSE_MAX);
    return 0;
}

/* Null vector of the (connected) Laplacian, normalised: 1/√n or √d/√(2m). */
static double *null_vector(const struct graph *g, enum op_kind kind)
{
    uint32_t n = graph_n(g);
    double *u = malloc((size_t)n * sizeof(double));

    if (u == NULL)
        return NULL;
    for (uint32_t i = 0; i < n; i++)
        u[i] = kind == OP_LAPLACIAN ? 1.0 / sqrt((double)n)
                                    : sqrt(graph_degree(g, i) / (2.0 * (double)graph_m(g)));
    return u;
}

static int ctx_init(struct op_ctx *c, const struct graph *g, enum op_kind kind)
{
    uint32_t n = graph_n(g);

    c->g = g;
    c->kind = kind;
    c->dis = NULL;
    if (kind != OP_NORMALIZED)
        return 0;
    if ((c->dis = malloc((size_t)n * sizeof(double))) == NULL)
        return GRAPH_E_NOMEM;
    for (uint32_t u = 0; u < n; u++)
        c->dis[u] = graph_degree(g, u) > 0 ? 1.0 / sqrt((double)graph_degree(g, u)) : 0.0;
    return 0;
}

static int solve(const struct graph *g, const struct graph_spectral_opts *o, enum op_kind kind,
                 double *val, double *vec, struct graph_diag *d)
{
    struct op_ctx c;
    struct lanczos_problem p;
    double *nullv = NULL;
    bool dense = false, largest = kind == OP_ADJACENCY;
    int rc;

    if ((rc = use_dense(graph_n(g), o->solver, d, &dense)) != 0)
        return rc;
    if ((rc = ctx_init(&c, g, kind)) != 0)
        return graph_fail(d, rc, 0, "degree scaling of %u vertices", graph_n(g));
    if (dense) {
        rc = dense_eig(&c, largest ? (lapack_int)graph_n(g) : 2, val, vec, d);
        goto out;
    }
    if (!largest && (nullv = null_vector(g, kind)) == NULL) {
        rc = graph_fail(d, GRAPH_E_NOMEM, 0, "null vector of %u vertices", graph_n(g));
        goto out;
    }
    memset(&p, 0, sizeof(p));
    p.n = graph_n(g);
    p.op = apply;
    p.ctx = &c;
    p.deflate = nullv;
    p.largest = largest;
    p.tol = o->tol;
    p.seed = o->seed;
    rc = lanczos_extreme(&p, val, vec, d);
out:
    free(nullv);
    free(c.dis);
    return rc;
}

int graph_lambda2(const struct graph *g, const struct graph_spectral_opts *o, double *lambda2,
                  double *fiedler, struct graph_diag *d)
{
    uint32_t n = graph_n(g), count;
    int rc;

    *lambda2 = 0;
    if (n < 2)
        return graph_fail(d, GRAPH_E_ARG, 0, "lambda2 needs n >= 2, got %u", n);
    if ((rc = graph_components(g, NULL, &count, d)) != 0)
        return rc;
    if (count > 1) {        /* λ₂ = 0 exactly: one null vector per component */
        if (fiedler != NULL)
            memset(fiedler, 0, (size_t)n * sizeof(double));
        return 0;
    }
    return solve(g, o, o->kind == GRAPH_LAP_NORMALIZED ? OP_NORMALIZED : OP_LAPLACIAN, lambda2,
                 fiedler, d);
}

int graph_lambda_max_adj(const struct graph *g, const struct graph_spectral_opts *o,
                         double *lambda_max, struct graph_diag *d)
{
    *lambda_max = 0;
    if (graph_n(g) < 2)
        return graph_fail(d, GRAPH_E_ARG, 0, "lambda_max needs n >= 2, got %u", graph_n(g));
    if (graph_m(g) == 0)
        return 0;
    return solve(g, o, OP_ADJACENCY, lambda_max, NULL, d);
}

/* ---- sweep cut ---- */

struct keyed {
    double x;
    uint32_t u;
};

static int cmp_keyed(const void *a, const void *b)
{
    const struct keyed *p = a, *q = b;

    if (p->x != q->x)
        return p->x < q->x ? -1 : 1;
    return (p->u > q->u) - (p->u < q->u);
}

/* Min conductance over the prefixes of `order`; inS is n zeroed bytes. */
static double sweep(const struct graph *g, const struct keyed *order, unsigned char *inS)
{
    double vol = 2.0 * (double)graph_m(g), volS = 0, cut = 0, best = INFINITY;
    uint32_t n = graph_n(g);

    for (uint32_t k = 0; k + 1 < n; k++) {
        uint32_t u = order[k].u, deg, inside = 0;
        const uint32_t *nb = graph_neighbors(g, u, &deg);

        for (uint32_t i = 0; i < deg; i++)
            inside += inS[nb[i]];
        inS[u] = 1;
        cut += (double)deg - 2.0 * inside;
        volS += deg;
        if (fmin(volS, vol - volS) > 0 && cut / fmin(volS, vol - volS) < best)
            best = cut / fmin(volS, vol - volS);
    }
    return best;
}

int graph_sweep_conductance(const struct graph *g, const double *x, double *phi,
                            struct graph_diag *d)
{
    uint32_t n = graph_n(g), count;
    struct keyed *order = NULL;
    unsigned char *inS = NULL;
    int rc;

    *phi = 0;
    if (n < 2 || graph_m(g) == 0)
        return graph_fail(d, GRAPH_E_ARG, 0, "sweep needs n >= 2 and edges (n = %u, m = %zu)", n,
                          graph_m(g));
    if ((rc = graph_components(g, NULL, &count, d)) != 0 || count > 1)
        return rc;
    rc = GRAPH_E_NOMEM;
    if ((order = malloc((size_t)n * sizeof(*order))) == NULL || (inS = calloc(n, 1)) == NULL) {
        rc = graph_fail(d, rc, 0, "sweep of %u vertices", n);
        goto out;
    }
    for (uint32_t u = 0; u < n; u++) {
        order[u].x = x[u];
        order[u].u = u;
    }
    qsort(order, n, sizeof(*order), cmp_keyed);
    *phi = sweep(g, order, inS);
    rc = 0;
out:
    free(order);
    free(inS);
    return rc;
}
