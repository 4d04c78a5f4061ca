/* fusion/merge_core.c: the numerical kernel of the factored merge (see merge_core.h). */
#include "merge_core.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "merge_core.c reads safetensors' little-endian data in place: little-endian hosts only"
#endif

#define F32_PREFETCH 8192   /* bytes ahead: two pages (measured: 2 KiB ahead costs ~25% more) */

/* The hot loop of the merge (every input byte goes through it once or twice):
 * GCC's -O2 cost model leaves it scalar, so ask for vectorisation here. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("tree-vectorize")))
#endif
static void f32_to_f64(double *restrict dst, const unsigned char *restrict src, size_t n, double coef)
{
    size_t j = 0;

    /* Inputs are mmapped file pages: the hardware prefetcher stops at each
     * 4 KiB page, so fetch ahead by hand, one line per 16 floats. */
    for (; j + 16 <= n; j += 16) {
        __builtin_prefetch(src + 4 * j + F32_PREFETCH, 0, 0);
        for (size_t k = j; k < j + 16; k++) {
            float f;
            memcpy(&f, src + 4 * k, 4);
            dst[k] = coef * (double)f;
        }
    }
    for (; j < n; j++) {
        float f;
        memcpy(&f, src + 4 * j, 4);
        dst[j] = coef * (double)f;
    }
}

/* dst[o * stride + j] = coef * src[o * cols + j] for a rows x cols block of
 * type t (maybe unaligned). One switch per block, so the inner loops are
 * plain converts the compiler vectorises. */
void merge_core_convert(double *dst, size_t stride, const void *src_, enum safetensors_dtype t,
                        size_t rows, size_t cols, double coef)
{
    const unsigned char *src = src_;

    if (stride == cols) {              /* contiguous: one long row */
        cols *= rows;
        rows = 1;
    }
    for (size_t o = 0; o < rows; o++, dst += stride) {
        const unsigned char *p = src + o * cols * safetensors_dtype_size(t);
        double x;
        uint16_t h;
        switch (t) {
        case SAFETENSORS_F32:
            f32_to_f64(dst, p, cols, coef);
            break;
        case SAFETENSORS_F64:
            for (size_t j = 0; j < cols; j++) {
                memcpy(&x, p + 8 * j, 8);
                dst[j] = coef * x;
            }
            break;
        case SAFETENSORS_F16:
            for (size_t j = 0; j < cols; j++) {
                memcpy(&h, p + 2 * j, 2);
                dst[j] = coef * (double)half_f16_to_f32(h);
            }
            break;
        case SAFETENSORS_BF16:
            for (size_t j = 0; j < cols; j++) {
                memcpy(&h, p + 2 * j, 2);
                dst[j] = coef * (double)half_bf16_to_f32(h);
            }
            break;
        }
    }
}

void merge_core_ws_free(struct merge_core_ws *ws)
{
    free(ws->eb);
    memset(ws, 0, sizeof(*ws));
}

/* One block holds every array (9 R x R plus 3 R-vectors). */
int merge_core_ws_alloc(struct merge_core_ws *ws, size_t R)
{
    size_t rr = R * R;
    double *p = malloc((9 * rr + 3 * R) * sizeof(double));

    memset(ws, 0, sizeof(*ws));
    if (p == NULL)
        return MERGE_CORE_E_NOMEM;
    ws->eb = p; ws->ea = p + rr; ws->sb = p + 2 * rr; ws->sa = p + 3 * rr;
    ws->yb = p + 4 * rr; ws->ya = p + 5 * rr; ws->core = p + 6 * rr;
    ws->u = p + 7 * rr; ws->vt = p + 8 * rr;
    ws->lb = p + 9 * rr; ws->la = ws->lb + R; ws->s = ws->la + R;
    return 0;
}

/* Cholesky G = U^T U: s = U (R x R, upper), y = U^{-1}. Refused (returns
 * false) when G is not comfortably positive definite: min_i U_ii^2 must
 * exceed CHOL_MARGIN * R * eps * max_i G_ii, else gram_root's
 * eigendecomposition, which drops null directions, takes over. Both give the
 * same R_B in exact arithmetic (an orthogonal factor apart), so the merge's
 * results do not depend on which ran beyond rounding. */
#define CHOL_MARGIN 1e6
static bool gram_chol(const double *g, size_t R, double *s, double *y)
{
    double gmax = 0.0, umin = INFINITY;

    for (size_t i = 0; i < R; i++) {
        gmax = fmax(gmax, g[i * R + i]);
        for (size_t j = 0; j < R; j++)
            s[i * R + j] = j < i ? 0.0 : g[i * R + j];
    }
    if (gmax <= 0.0 || LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', (lapack_int)R, s, (lapack_int)R) != 0)
        return false;
    for (size_t i = 0; i < R; i++)
        umin = fmin(umin, s[i * R + i]);
    if (!(umin * umin > CHOL_MARGIN * (double)R * DBL_EPSILON * gmax))
        return false;
    memcpy(y, s, R * R * sizeof(double));
    return LAPACKE_dtrtri(LAPACK_ROW_MAJOR, 'U', 'N', (lapack_int)R, y, (lapack_int)R) == 0;
}

/* A square root of the Gram g (R x R, upper triangle used): s (r x R) with
 * s^T s = g restricted to its numerical range, and y (R x r) with s y = I.
 * Cholesky when g is well conditioned; else the eigendecomposition
 * s = L^{1/2} V^T, y = V L^{-1/2} over the eigenvalues above R eps lambda_max.
 * Returns the number r of rows of s, or -1 if LAPACK failed. */
static long gram_root(const double *g, size_t R, double *ev, double *lam, double *s, double *y)
{
    size_t r = 0, j;
    double tol;

    if (gram_chol(g, R, s, y))
        return (long)R;
    memcpy(ev, g, R * R * sizeof(double));
    if (LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)R, ev, (lapack_int)R, lam) != 0)
        return -1;
    tol = (double)R * DBL_EPSILON * fmax(lam[R - 1], 0.0);
    for (j = R; j-- > 0 && lam[j] > tol && lam[j] > 0.0; r++)
        ;
    /* kept: the r largest, j = R-1 .. R-r, stored in that (descending) order */
    for (size_t p = 0; p < r; p++) {
        double l = lam[R - 1 - p], sq = sqrt(l);
        for (size_t i = 0; i < R; i++) {
            double v = ev[i * R + (R - 1 - p)];
            s[p * R + i] = sq * v;
            y[i * r + p] = v / sq;
        }
    }
    return (long)r;
}

int merge_core_reproject(const double *gb, const double *ga, size_t R, size_t K,
                         struct merge_core_ws *ws, struct merge_core_result *res)
{
    size_t mn, kk;
    long rb = gram_root(gb, R, ws->eb, ws->lb, ws->sb, ws->yb);
    long ra = gram_root(ga, R, ws->ea, ws->la, ws->sa, ws->ya);

    memset(res, 0, sizeof(*res));
    if (rb < 0 || ra < 0)
        return MERGE_CORE_E_EIGEN;
    if (rb == 0 || ra == 0)
        return 0;                                  /* dW = 0: nothing to keep */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rb, (int)ra, (int)R, 1.0,
                ws->sb, (int)R, ws->sa, (int)R, 0.0, ws->core, (int)ra);
    mn = (size_t)(rb < ra ? rb : ra);
    if (LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (lapack_int)rb, (lapack_int)ra, ws->core, (lapack_int)ra,
                       ws->s, ws->u, (lapack_int)mn, ws->vt, (lapack_int)ra) != 0)
        return MERGE_CORE_E_SVD;
    kk = R > K ? (K < mn ? K : mn) : mn;
    res->sigma_max = ws->s[0];
    for (size_t j = 0; j < mn; j++)
        *(j < kk ? &res->kept : &res->dropped) += ws->s[j] * ws->s[j];
    res->frob = sqrt(res->kept + res->dropped);
    if (R <= K || kk == 0)
        return 0;
    res->kk = kk;
    if ((res->tb = malloc(R * kk * sizeof(double))) == NULL ||
        (res->ta = malloc(R * kk * sizeof(double))) == NULL) {
        free(res->tb);
        res->tb = NULL;
        return MERGE_CORE_E_NOMEM;
    }
    for (size_t p = 0; p < (size_t)rb; p++)      /* U_K S_K, in place in u (rb x mn) */
        for (size_t t = 0; t < kk; t++)
            ws->u[p * mn + t] *= ws->s[t];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)kk, (int)rb, 1.0,
                ws->yb, (int)rb, ws->u, (int)mn, 0.0, res->tb, (int)kk);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)kk, (int)ra, 1.0,
                ws->ya, (int)ra, ws->vt, (int)ra, 0.0, res->ta, (int)kk);
    return 0;
}
