/* graph/lanczos.c: the Lanczos three-term recurrence without
 * reorthogonalisation, for one extreme eigenpair.
 *
 * Why no reorthogonalisation: on n = 100,000 overlays the wanted λ₂ sits at
 * the edge of a dense bulk and takes hundreds of steps; full
 * reorthogonalisation made each step cost O(n·basis) memory traffic (18 s
 * for BA), the bare recurrence costs one sparse product and a few axpys and
 * keeps 3 vectors. Finite precision only adds "ghost" copies of converged
 * Ritz values (Paige, 1976); the extreme Ritz value of T_k still converges
 * monotonically to the extreme eigenvalue and its residual bound
 * β_k |s_k| (s: the Ritz vector of T_k) stays valid. The deflated direction
 * (the Laplacian's null vector) is projected out of every new vector, so it
 * cannot creep back in through rounding. The eigenvector, when wanted, comes
 * from a second pass that replays the identical recurrence and accumulates
 * Σ s_j v_j.
 */
#include "lanczos.h"
#include "rng.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_EVERY 8   /* steps between convergence tests of T_k */

struct lz {
    const struct lanczos_problem *p;
    int n;
    double *prev, *v, *w;   /* v_{j-1}, v_j, work */
    double *alpha, *beta;   /* T_k: diagonal and off-diagonal, max_matvecs each */
    double *s;              /* Ritz vector of T_k */
    double anorm;           /* Gershgorin bound of T_k: estimate of ‖Op‖ */
};

static void deflate(const struct lz *z, double *w)
{
    const double *u = z->p->deflate;

    if (u != NULL)
        cblas_daxpy(z->n, -cblas_ddot(z->n, u, 1, w, 1), u, 1, w, 1);
}

static void start(struct lz *z)
{
    struct graph_rng r;

    graph_rng_seed(&r, z->p->seed ^ 0x6c616e637a6f73ULL);
    for (int i = 0; i < z->n; i++)
        z->v[i] = graph_rng_uniform(&r) - 0.5;
    deflate(z, z->v);
    cblas_dscal(z->n, 1.0 / cblas_dnrm2(z->n, z->v, 1), z->v, 1);
    memset(z->prev, 0, (size_t)z->n * sizeof(double));
}

/* w -= a v + c u, then w /= b (u may be NULL: c is then 0). */
static void finish_vector(double *w, const double *v, const double *u, double a, double c,
                          double b, int n)
{
    double inv = 1.0 / b;

    if (u == NULL)
        for (int i = 0; i < n; i++)
            w[i] = (w[i] - a * v[i]) * inv;
    else
        for (int i = 0; i < n; i++)
            w[i] = (w[i] - a * v[i] - c * u[i]) * inv;
}

/* Step j: alpha[j], beta[j]; v_{j+1} replaces v (buffers rotate: prev <-
 * v <- w). Three fused passes after the product: α = v·Op v; then
 * w = Op v − β_{j−1} v_{j−1} − α v while summing v·w (local
 * reorthogonalisation), u·w (the deflated direction: Op leaves it alone,
 * so rounding is all there is to remove) and ‖w‖²; then the corrections
 * and the scaling by β_j in one go (‖w − a v − c u‖² = ‖w‖² − a² − c²
 * as u ⟂ v are unit; recomputed directly when that cancels). Returns true
 * on breakdown (Op maps the Krylov space into itself: T_{j+1} is exact). */
static bool step(struct lz *z, int j)
{
    const double *u = z->p->deflate, *v = z->v, *pv = z->prev;
    double *w = z->w, *old, bp = j > 0 ? z->beta[j - 1] : 0.0;
    double alpha = 0, a2 = 0, c = 0, ww = 0, b2;
    int n = z->n;

    z->p->op(z->p->ctx, v, w);
    for (int i = 0; i < n; i++)
        alpha += v[i] * w[i];
    for (int i = 0; i < n; i++) {
        w[i] -= bp * pv[i] + alpha * v[i];
        a2 += v[i] * w[i];
        ww += w[i] * w[i];
    }
    if (u != NULL)
        c = cblas_ddot(n, u, 1, w, 1);
    b2 = ww - a2 * a2 - c * c;
    if (b2 < 1e-2 * ww) {           /* cancellation: apply, then measure */
        finish_vector(w, v, u, a2, c, 1.0, n);
        a2 = c = 0;
        b2 = cblas_ddot(n, w, 1, w, 1);
    }
    z->alpha[j] = alpha + a2;
    z->beta[j] = sqrt(fmax(b2, 0.0));
    if (fabs(z->alpha[j]) + 2 * z->beta[j] > z->anorm)
        z->anorm = fabs(z->alpha[j]) + 2 * z->beta[j];
    /* ‖Op v‖ >= |alpha|: a β that small next to it means breakdown */
    if (z->beta[j] <= 64 * DBL_EPSILON * (fabs(z->alpha[j]) + bp))
        return true;
    finish_vector(w, v, u, a2, c, z->beta[j], n);
    old = z->prev;
    z->prev = z->v;
    z->v = z->w;
    z->w = old;
    return false;
}

/* Extreme eigenvalue of T_k (bisection) and its eigenvector s (inverse
 * iteration). */
static int tri_extreme(struct lz *z, int k, double *theta, struct graph_diag *d)
{
    lapack_int idx = z->p->largest ? k : 1, found = 0, nsplit = 0, info;
    lapack_int *iblock = malloc((size_t)k * sizeof(lapack_int));
    lapack_int *isplit = malloc((size_t)k * sizeof(lapack_int)), ifail = 0;
    double *e = malloc((size_t)k * sizeof(double));
    double *w = calloc((size_t)k, sizeof(double));   /* LAPACKE_dstein reads k entries */
    int rc = GRAPH_E_NOMEM;

    if (iblock == NULL || isplit == NULL || e == NULL || w == NULL)
        goto out;
    memcpy(e, z->beta, (size_t)k * sizeof(double));
    info = LAPACKE_dstebz('I', 'B', k, 0, 0, idx, idx, 2 * LAPACKE_dlamch('S'), z->alpha, e,
                          &found, &nsplit, w, iblock, isplit);
    if (info == 0 && found == 1)
        info = LAPACKE_dstein(LAPACK_COL_MAJOR, k, z->alpha, e, 1, w, iblock, isplit, z->s, k,
                              &ifail);
    *theta = w[0];
    rc = info == 0 && found == 1 ? 0
         : graph_fail(d, GRAPH_E_LAPACK, 0, "dstebz/dstein on the %d x %d Lanczos matrix: info %d",
                      k, k, (int)info);
out:
    free(iblock);
    free(isplit);
    free(e);
    free(w);
    return rc;
}

/* Replay k steps from the same start and accumulate x = Σ s_j v_j. */
static void ritz_vector(struct lz *z, int k, double *x)
{
    memset(x, 0, (size_t)z->n * sizeof(double));
    start(z);
    for (int j = 0; j < k; j++) {
        cblas_daxpy(z->n, z->s[j], z->v, 1, x, 1);
        if (j + 1 < k)
            step(z, j);
    }
    deflate(z, x);
    cblas_dscal(z->n, 1.0 / cblas_dnrm2(z->n, x, 1), x, 1);
}

static int iterate(struct lz *z, double *theta, double *vec, struct graph_diag *d)
{
    int kmax = (int)z->p->max_matvecs, rc;
    double res = INFINITY;

    start(z);
    for (int j = 0; j < kmax; j++) {
        bool broke = step(z, j);

        if (!broke && (j + 1) % CHECK_EVERY != 0 && j + 1 < kmax)
            continue;
        if ((rc = tri_extreme(z, j + 1, theta, d)) != 0)
            return rc;
        res = broke ? 0.0 : z->beta[j] * fabs(z->s[j]);
        if (res <= fmax(z->p->tol * fabs(*theta), 64 * DBL_EPSILON * z->anorm)) {
            if (vec != NULL)
                ritz_vector(z, j + 1, vec);
            return 0;
        }
    }
    return graph_fail(d, GRAPH_E_NOCONV, 0,
                      "Lanczos: %d steps, residual %.3g for eigenvalue %.17g (tolerance %.3g)",
                      kmax, res, *theta, z->p->tol);
}

int lanczos_extreme(const struct lanczos_problem *p0, double *theta, double *vec,
                    struct graph_diag *d)
{
    struct lanczos_problem p = *p0;
    struct lz z;
    int rc;

    memset(&z, 0, sizeof(z));
    *theta = 0;
    if (p.n < 2 || p.n > INT32_MAX)
        return graph_fail(d, GRAPH_E_ARG, 0, "Lanczos on a space of dimension %zu", p.n);
    p.max_matvecs = p.max_matvecs == 0 ? 20000 : p.max_matvecs;
    p.tol = p.tol > 0 ? p.tol : 1e-10;
    z.p = &p;
    z.n = (int)p.n;
    z.prev = malloc(p.n * sizeof(double));
    z.v = malloc(p.n * sizeof(double));
    z.w = malloc(p.n * sizeof(double));
    z.alpha = malloc(p.max_matvecs * sizeof(double));
    z.beta = malloc(p.max_matvecs * sizeof(double));
    z.s = malloc(p.max_matvecs * sizeof(double));
    if (!z.prev || !z.v || !z.w || !z.alpha || !z.beta || !z.s)
        rc = graph_fail(d, GRAPH_E_NOMEM, 0, "Lanczos vectors of length %zu", p.n);
    else
        rc = iterate(&z, theta, vec, d);
    free(z.prev);
    free(z.v);
    free(z.w);
    free(z.alpha);
    free(z.beta);
    free(z.s);
    return rc;
}
