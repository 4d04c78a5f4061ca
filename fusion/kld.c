/* fusion/kld.c: Cauchy KL and the fused-model KL bound (see kld.h). */
#include "kld.h"

#include <math.h>

/* One dimension. With m = max(lga, lgb) and scales divided by e^m (so the
 * larger is exactly 1), the ratio inside the log is
 * 1 + ((ga - gb)^2 + dmu^2) / (4 ga gb); ga - gb = +-expm1(-|lga - lgb|)
 * keeps its digits when the scales are close. */
static double cauchy_1d(double mu_a, double lga, double mu_b, double lgb)
{
    double m = fmax(lga, lgb);
    double ga = exp(lga - m), gb = exp(lgb - m);
    double gdiff = expm1(-fabs(lga - lgb));     /* (smaller - larger) / larger */
    double dmu = (mu_a - mu_b) * exp(-m);

    return log1p((gdiff * gdiff + dmu * dmu) / (4.0 * ga * gb));
}

int kld_cauchy_diag(const double *mu_a, const double *log_gamma_a,
                    const double *mu_b, const double *log_gamma_b, size_t n,
                    double *out, struct fusion_diag *d)
{
    double sum = 0.0;

    if (out == NULL || (n > 0 && (mu_a == NULL || log_gamma_a == NULL || mu_b == NULL ||
                                  log_gamma_b == NULL)))
        return fusion_fail(d, FUSION_E_ARG, 0, "kld_cauchy_diag: NULL argument");
    *out = NAN;
    for (size_t j = 0; j < n; j++) {
        if (!isfinite(mu_a[j]) || !isfinite(log_gamma_a[j]) || !isfinite(mu_b[j]) ||
            !isfinite(log_gamma_b[j]))
            return fusion_fail(d, FUSION_E_KLD_ARG, 0,
                               "Cauchy dimension %zu: parameters (%g, %g) vs (%g, %g) not finite",
                               j, mu_a[j], log_gamma_a[j], mu_b[j], log_gamma_b[j]);
        sum += cauchy_1d(mu_a[j], log_gamma_a[j], mu_b[j], log_gamma_b[j]);
    }
    *out = sum;
    return 0;
}

static int check_inputs(const double *w, const double *eps, size_t n, struct fusion_diag *d)
{
    if (n > 0 && (w == NULL || eps == NULL))
        return fusion_fail(d, FUSION_E_ARG, 0, "KLD bound: NULL weights or eps");
    for (size_t k = 0; k < n; k++)
        if (!isfinite(w[k]) || !isfinite(eps[k]) || eps[k] < 0.0)
            return fusion_fail(d, FUSION_E_KLD_ARG, 0,
                               "input %zu: weight %g / kld_eps %g (eps must be finite and >= 0)",
                               k, w[k], eps[k]);
    return 0;
}

int kld_bound_compute(const double *w, const double *eps, size_t n, struct kld_bound *out,
                      struct fusion_diag *d)
{
    double s = 0.0, q = 0.0;
    int rc;

    if (out == NULL)
        return fusion_fail(d, FUSION_E_ARG, 0, "kld_bound_compute: NULL output");
    if ((rc = check_inputs(w, eps, n, d)) != 0)
        return rc;
    for (size_t k = 0; k < n; k++) {
        s += fabs(w[k]) * sqrt(eps[k]);
        q += w[k] * w[k] * eps[k];
    }
    out->local = s * s;
    out->cs = (double)n * q;
    return 0;
}

int kld_budget_scale(const double *w, const double *eps, size_t n, double budget, double *scale,
                     struct fusion_diag *d)
{
    struct kld_bound b;
    int rc;

    if (scale == NULL)
        return fusion_fail(d, FUSION_E_ARG, 0, "kld_budget_scale: NULL output");
    if (!isfinite(budget) || budget <= 0.0)
        return fusion_fail(d, FUSION_E_KLD_ARG, 0, "KLD budget %g must be finite and > 0", budget);
    if ((rc = kld_bound_compute(w, eps, n, &b, d)) != 0)
        return rc;
    /* sqrt(local) = sum |w| sqrt(eps); scaling every w by f scales it by f */
    *scale = b.local <= budget ? 1.0 : sqrt(budget) / sqrt(b.local);
    return 0;
}
