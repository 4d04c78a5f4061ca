/* fusion/merge_core.h: the numerical kernel of the factored merge
 * (merge.c drives it; internal to fusion/, no other user).
 *
 * For one module with concatenated rank R: widen factors to double, take
 * square roots of the two R x R Gram matrices G_B = B_cat^T B_cat and
 * G_A = A_cat A_cat^T (Cholesky when well conditioned, else a symmetric
 * eigendecomposition that drops null directions), SVD the core R_B R_A^T and
 * build the transforms that map B_cat and A_cat to the best rank-K factors:
 * B_out = B_cat tb (times the trust-region scale), A_out = ta^T A_cat.
 */
#ifndef PLORA_MERGE_CORE_H
#define PLORA_MERGE_CORE_H

#include <stddef.h>

#include "safetensors.h"

/* dst[o * stride + j] = coef * src[o * cols + j] for a rows x cols block
 * of type t, read little-endian and maybe unaligned. */
void merge_core_convert(double *dst, size_t stride, const void *src, enum safetensors_dtype t,
                        size_t rows, size_t cols, double coef);

#define MERGE_CORE_E_NOMEM (-1)
#define MERGE_CORE_E_EIGEN (-2)   /* the eigendecomposition (dsyevd) failed */
#define MERGE_CORE_E_SVD   (-3)   /* dgesdd did not converge */

/* Scratch of one re-projection for concatenated ranks up to R. */
struct merge_core_ws {
    double *eb, *ea;       /* eigenvectors of G_B, G_A (columns) */
    double *lb, *la;       /* their eigenvalues, ascending */
    double *sb, *sa;       /* R_B, R_A: kept rows (r x R) */
    double *yb, *ya;       /* right inverses (R x r): R_B yb = I */
    double *core, *u, *vt, *s;
};

/* Returns 0 or MERGE_CORE_E_NOMEM (ws is then empty). */
int merge_core_ws_alloc(struct merge_core_ws *ws, size_t R);
void merge_core_ws_free(struct merge_core_ws *ws);  /* zeroed ws is fine */

struct merge_core_result {
    double frob;       /* ||dW||_F = sqrt(sum of all s_j^2) */
    double sigma_max;  /* s_0 (0 when dW = 0) */
    double kept;       /* sum_{j<kk} s_j^2 */
    double dropped;    /* sum_{j>=kk} s_j^2 (0 when R <= K) */
    size_t kk;         /* columns of tb/ta; 0 when not re-projected */
    double *tb, *ta;   /* R x kk each, malloc'd (caller frees), or NULL when R <= K */
};

/* Singular values of B_cat A_cat from the upper triangles of gb and ga
 * (R x R, row-major) and, when R > K, the rank-K transforms. Returns 0 or
 * a MERGE_CORE_E_* code (res then owns nothing). */
int merge_core_reproject(const double *gb, const double *ga, size_t R, size_t K,
                         struct merge_core_ws *ws, struct merge_core_result *res);

#endif
