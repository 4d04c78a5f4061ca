/* fusion/merge.h: the factored merge of LoRA adapters (THEORY.md, DESIGN.md
 * "Fusion" and `plora merge`). Works on plain in-memory factors, so tests,
 * `plora merge` and the verifier's replay all run the same code; reading and
 * writing files is the caller's business.
 *
 * For every module m present in any input, with the inputs k that hold it:
 *   B_cat = [w_1 s_1 B_1 | ...]  (out x R),  A_cat = [A_1; ...]  (R x in),
 *   R = sum of their ranks; dW_m = B_cat A_cat is never formed.
 *   ||dW_m||_F^2 = trace((B_cat^T B_cat)(A_cat A_cat^T)), accumulated in double;
 *   G = sqrt(sum_m ||dW_m||_F^2); c = min(1, tau / G) (c = 1 without tau or
 *   when G = 0); with a module cap, c_m = min(c, cap / ||dW_m||_F).
 * Output rank K: opts.rank, or max_m R_m when opts.rank is 0, clamped to
 * max_m R_m. A module with R_m <= K is output exactly (the concatenation,
 * zero-padded to K); one with R_m > K is re-projected to its best rank-K
 * approximation: thin QR of B_cat and A_cat^T done through the R x R Gram
 * matrices (G_B = R_B^T R_B: Cholesky when G_B is well conditioned, else
 * R_B = L^{1/2} V^T from the symmetric eigendecomposition with directions of
 * eigenvalue <= R eps lambda_max dropped, which tolerates rank-deficient
 * inputs such as a weight of 0 or an adapter merged with its negation),
 * SVD of the core R_B R_A^T = U S V^T, B_out = c_m Q_B U_K S_K,
 * A_out = (Q_A V_K)^T with Q_B = B_cat R_B^-1. The dropped energy is
 * c_m^2 sum_{j>K} s_j^2; ||dW_m||_F is taken as sqrt(sum_j s_j^2) (equal
 * to the Gram trace, but accurate to eps ||B|| ||A|| rather than
 * sqrt(eps) when inputs cancel).
 * Cost per module: O((out + in) R^2) flops, O((out + in) R) memory per
 * worker thread; modules run in parallel (opts.threads).
 *
 * Layout: LoRA factors are always PEFT's A [r, in] and B [out, r], row-major,
 * whatever fan_in_fan_out says (that flag only describes the base layer's
 * weight, which PEFT transposes the product for), so the merge never
 * transposes anything and the output keeps the inputs' orientation.
 */
#ifndef PLORA_MERGE_H
#define PLORA_MERGE_H

#include <stdbool.h>
#include <stddef.h>

#include "adapter.h"
#include "fusion_err.h"
#include "safetensors.h"

/* One module of one input adapter. Borrowed: A and B must stay valid until
 * the merge object is freed (they are read again by merge_factors). */
struct merge_factor {
    const char *name;               /* module path, e.g. "transformer.h.0.attn.c_attn" */
    size_t out, in, r;              /* >= 1 each */
    double scaling;                 /* s: alpha/r or alpha/sqrt(r), patterns applied */
    enum safetensors_dtype dtype;   /* of A and B; little-endian, may be unaligned */
    const void *A;                  /* r x in, row-major */
    const void *B;                  /* out x r, row-major */
};

struct merge_input {
    const struct merge_factor *modules;  /* n_modules entries, names unique */
    size_t n_modules;
    double weight;                       /* w_k as given; any sign, finite */
    double kld_eps;                      /* the adapter's KL budget >= 0, or NAN if none */
};

struct merge_opts {
    double tau;          /* absolute trust radius > 0, or 0: none */
    double tau_rel;      /* > 0: tau = tau_rel * G; excludes tau */
    double module_cap;   /* > 0: also ||c_m dW_m||_F <= module_cap; 0: none */
    size_t rank;         /* requested output rank K; 0: exact (max R_m) */
    double kld_budget;   /* > 0: scale all weights so (sum|w|sqrt eps)^2 <= it; 0: none */
    unsigned threads;    /* workers over modules; 0: one per online CPU, <= MERGE_THREADS_MAX */
};

#define MERGE_THREADS_MAX 8u

/* Per-module figures (norms in the Frobenius norm of the delta). */
struct merge_module_info {
    const char *name;        /* borrowed from the first input holding the module */
    size_t out, in;
    size_t n_inputs;         /* inputs holding the module */
    size_t r_cat;            /* R_m */
    size_t rank_kept;        /* nonzero singular directions written (<= K) */
    enum safetensors_dtype dtype;  /* of the first input holding it */
    double frob;             /* ||dW_m||, before the trust-region scale */
    double scale;            /* c_m applied to this module */
    double frob_out;         /* ||output B A|| = sqrt(c_m^2 frob^2 - dropped) */
    double dropped_energy;   /* c_m^2 sum_{j>K} s_j^2 (0 when exact) */
    double sigma_max;        /* largest singular value of dW_m (0 when not computed) */
};

struct merge_summary {
    size_t n_inputs, n_modules;
    size_t rank_requested;   /* opts.rank */
    size_t rank_out;         /* K of every output module */
    double frob_merged;      /* G */
    double tau;              /* effective tau, NAN when none */
    double scale;            /* c */
    double frob_out;         /* sqrt(sum_m frob_out_m^2) */
    double dropped_energy;   /* sum_m dropped_energy_m */
    /* KLD: bounds of the weights actually used; NAN when some input has no eps */
    double kld_local, kld_cs;
    double kld_local_given;  /* local bound of the weights as given */
    double kld_budget;       /* opts.kld_budget (0: none) */
    double kld_scale;        /* factor applied to every weight (1: none) */
    bool kld_scaled;         /* the budget forced weights down */
};

struct merge;  /* opaque */

/* Receives module i's output factors: B_out (out x K) and A_out (K x in),
 * row-major, as merge_factors fills them; valid during the call only.
 * Returns 0 or a negative code (which stops the run and is returned). */
typedef int (*merge_sink)(void *ctx, size_t i, const double *B_out, const double *A_out,
                          struct fusion_diag *d);

/* Validate the inputs, build the module table (ordered by strcmp of names),
 * apply the KLD budget to the weights, fix rank_out and allocate the
 * workers; no pass over the factors yet. `in` and its factors are borrowed
 * until merge_free. Returns 0 and *out (owned by the caller), or
 * FUSION_E_ARG, _NOMEM, _MERGE_EMPTY, _MERGE_SHAPE (a module's out/in differ
 * between inputs, or a name repeats inside one input), _MERGE_WEIGHT,
 * _MERGE_TAU, _MERGE_RANK, _MERGE_KLD_EPS, _KLD_ARG; *out is NULL on error
 * and `d` names the input, module and values. */
int merge_prepare(struct merge **out, const struct merge_input *in, size_t n,
                  const struct merge_opts *opts, struct fusion_diag *d);

/* First pass over every module (Gram matrices, norms, re-projection), then
 * the trust region. With a sink and no trust region or cap (every scale is
 * then 1), the output factors are handed to the sink during this same pass,
 * so each input byte is read once; merge_emit then does nothing. The sink
 * may run on several threads at once (distinct i, no fixed order).
 * Returns 0, FUSION_E_MERGE_STATE (computed twice), _MERGE_NONFINITE,
 * _MERGE_LAPACK, _NOMEM or the sink's code (of the lowest failing module). */
int merge_compute(struct merge *m, merge_sink sink, void *ctx, struct fusion_diag *d);

bool merge_computed(const struct merge *m);

/* merge_prepare + merge_compute without a sink; the same codes. */
int merge_new(struct merge **out, const struct merge_input *in, size_t n,
              const struct merge_opts *opts, struct fusion_diag *d);

/* NULL is fine. */
void merge_free(struct merge *m);

const struct merge_summary *merge_summary(const struct merge *m);
size_t merge_module_count(const struct merge *m);
/* i < count, else NULL. */
const struct merge_module_info *merge_module(const struct merge *m, size_t i);
/* Weight actually applied to input k (after the KLD scale); NAN if k >= n. */
double merge_weight(const struct merge *m, size_t k);

/* Second pass for every module (after merge_compute): compute its factors
 * and call sink, from up to opts.threads threads at once (distinct i, in no
 * fixed order; the sink must be safe for that); nothing to do if
 * merge_compute already emitted. OpenBLAS runs one thread per worker
 * meanwhile (restored after). Returns 0, FUSION_E_MERGE_STATE (not
 * computed), FUSION_E_NOMEM or the sink's code (of the lowest failing module). */
int merge_emit(struct merge *m, merge_sink sink, void *ctx, struct fusion_diag *d);

/* Second pass for module i: fill B_out (out x K, row-major) and A_out
 * (K x in) with K = rank_out, trust-region scale included, unused rank
 * slots zero. Either output may be NULL (then it is not computed). Not
 * safe to call concurrently on one merge object (it uses worker 0's scratch).
 * Returns 0, FUSION_E_ARG (i out of range) or FUSION_E_MERGE_STATE. */
int merge_factors(struct merge *m, size_t i, double *B_out, double *A_out, struct fusion_diag *d);

/* The LoRA modules of a loaded adapter as merge factors (pointing into its
 * mapping: the adapter must outlive the merge). *factors is malloc'd, owned
 * by the caller (free()); *n its length. Returns 0, FUSION_E_ARG or
 * FUSION_E_NOMEM. */
int merge_factors_from_adapter(const struct adapter *a, struct merge_factor **factors, size_t *n,
                               struct fusion_diag *d);

#endif
