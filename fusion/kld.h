/* fusion/kld.h: KL divergences for the merge's KLD budget (THEORY.md).
 *
 * Two things live here:
 * - the exact KL between two diagonal Cauchy distributions, for diagnostics
 *   and for showing that divergence does not add up under fusion;
 * - the local (Fisher-metric) bound on the fused model's KL from per-adapter
 *   budgets eps_k and weights w_k, and the uniform weight scale that keeps it
 *   under a budget.
 */
#ifndef PLORA_KLD_H
#define PLORA_KLD_H

#include <stddef.h>

#include "fusion_err.h"

/* KL(P_a || P_b) in nats for P = prod_j Cauchy(mu[j], exp(log_gamma[j])),
 * i.e. sum_j log(((g_a+g_b)^2 + (mu_a-mu_b)^2) / (4 g_a g_b)); symmetric in
 * a and b, 0 iff equal. Computed as log1p of a non-negative ratio after
 * factoring out the larger scale, so tiny divergences keep their digits and
 * log-scales up to +-700 do not overflow. n may be 0 (result 0).
 * Returns 0 and sets *out, or FUSION_E_KLD_ARG (a non-finite parameter; the
 * diag names the dimension) or FUSION_E_ARG (NULL pointer with n > 0). */
int kld_cauchy_diag(const double *mu_a, const double *log_gamma_a,
                    const double *mu_b, const double *log_gamma_b, size_t n,
                    double *out, struct fusion_diag *d);

/* The bounds of a weighted fusion of adapters whose own KL budgets are eps[k]:
 * local = (sum_k |w_k| sqrt(eps_k))^2 (the Fisher-metric estimate, valid for
 * small eps), cs = n * sum_k w_k^2 eps_k (its Cauchy-Schwarz upper bound). */
struct kld_bound {
    double local;
    double cs;
};

/* Fill *out for n weights/eps. eps must be finite and >= 0, weights finite.
 * Returns 0, FUSION_E_KLD_ARG (the diag names the input index) or FUSION_E_ARG. */
int kld_bound_compute(const double *w, const double *eps, size_t n, struct kld_bound *out,
                      struct fusion_diag *d);

/* The factor f in (0, 1] by which all weights must be multiplied so that the
 * local bound is <= budget: 1 when it already is (or the bound is 0), else
 * sqrt(budget) / sum_k |w_k| sqrt(eps_k). budget must be finite and > 0.
 * Returns 0, FUSION_E_KLD_ARG or FUSION_E_ARG. */
int kld_budget_scale(const double *w, const double *eps, size_t n, double budget, double *scale,
                     struct fusion_diag *d);

#endif
