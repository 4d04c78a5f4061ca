/* graph/predict.c: the overlay analysis that `plora graph`, `plora sim` and
 * `plora swarm` report, and the diffusion prediction C · ln n / λ₂. */
#include "predict.h"
#include "spectral.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Fitted C per topology (docs/calibration.md) */
static const double fitted_c[] = {
    [GRAPH_ER] = 0.5782, [GRAPH_WS] = 0.3860, [GRAPH_BA] = 1.3098,
};

double graph_predict_c(enum graph_topology t)
{
    if ((unsigned)t >= sizeof(fitted_c) / sizeof(fitted_c[0]))
        return GRAPH_PREDICT_C_DEFAULT;
    return fitted_c[t];
}

double graph_predict_rounds(uint32_t n, double lambda2, double c)
{
    if (!(lambda2 > 0))
        return INFINITY;
    return c * log((double)n) / lambda2;
}

/* λ₂(ℒ), its Fiedler vector, and the sweep over x = D^{-1/2} f. */
static int normalized_part(const struct graph *g, const struct graph_spectral_opts *so,
                           struct graph_analysis *a, struct graph_diag *d)
{
    uint32_t n = graph_n(g);
    double *f = malloc((size_t)n * sizeof(double));
    struct graph_spectral_opts o = *so;
    int rc;

    if (f == NULL)
        return graph_fail(d, GRAPH_E_NOMEM, 0, "Fiedler vector of %u vertices", n);
    o.kind = GRAPH_LAP_NORMALIZED;
    if ((rc = graph_lambda2(g, &o, &a->lambda2_normalized, f, d)) != 0)
        goto out;
    a->cheeger_lo = a->lambda2_normalized / 2;
    a->cheeger_hi = sqrt(2 * a->lambda2_normalized);
    for (uint32_t u = 0; u < n; u++)
        f[u] /= sqrt((double)graph_degree(g, u));
    rc = graph_sweep_conductance(g, f, &a->sweep_conductance, d);
out:
    free(f);
    return rc;
}

static int spectral_part(const struct graph *g, const struct graph_analysis_opts *o,
                         struct graph_analysis *a, struct graph_diag *d)
{
    struct graph_spectral_opts so = { GRAPH_LAP_COMBINATORIAL, GRAPH_SOLVER_AUTO, o->seed, 0 };
    int rc;

    a->solver = graph_n(g) <= GRAPH_DENSE_MAX ? "dense-dsyevr" : "lanczos";
    if ((rc = graph_lambda2(g, &so, &a->lambda2, NULL, d)) != 0 ||
        (rc = graph_lambda_max_adj(g, &so, &a->lambda_max_adj, d)) != 0)
        return rc;
    a->epidemic_threshold = a->lambda_max_adj > 0 ? 1.0 / a->lambda_max_adj : INFINITY;
    if (a->components > 1 || graph_m(g) == 0)
        return 0;   /* normalised λ₂, Cheeger interval and sweep all 0 */
    return normalized_part(g, &so, a, d);
}

int graph_analyze(const struct graph *g, const struct graph_analysis_opts *o,
                  struct graph_analysis *a, struct graph_diag *d)
{
    int rc;

    memset(a, 0, sizeof(*a));
    a->n = graph_n(g);
    a->m = graph_m(g);
    a->source = o->source;
    if (a->n < 2 || o->source >= a->n)
        return graph_fail(d, GRAPH_E_ARG, 0, "analysis needs n >= 2 and source < n (n = %u, "
                          "source = %u)", a->n, o->source);
    if ((rc = graph_components(g, NULL, &a->components, d)) != 0 ||
        (!o->skip_diameter && (rc = graph_diameter(g, false, &a->diameter, d)) != 0) ||
        (rc = graph_eccentricity(g, o->source, &a->source_eccentricity, d)) != 0 ||
        (rc = spectral_part(g, o, a, d)) != 0)
        return rc;
    a->prediction_c = o->c > 0 ? o->c : GRAPH_PREDICT_C_DEFAULT;
    a->prediction_c_calibrated = o->c > 0 && o->c_calibrated;
    a->c_given = o->c > 0;
    a->predicted_rounds_uncalibrated = graph_predict_rounds(a->n, a->lambda2, GRAPH_PREDICT_C_DEFAULT);
    a->predicted_rounds = graph_predict_rounds(a->n, a->lambda2, a->prediction_c);
    return 0;
}

void graph_analysis_calibrate(struct graph_analysis *a, enum graph_topology t)
{
    if (a->c_given)
        return;
    a->prediction_c = graph_predict_c(t);
    a->prediction_c_calibrated = true;
    a->predicted_rounds = graph_predict_rounds(a->n, a->lambda2, a->prediction_c);
}
