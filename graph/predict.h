/* graph/predict.h: one call that analyses an overlay for gossip: structure,
 * spectral gap, Cheeger interval, sweep conductance, epidemic threshold and
 * the predicted rounds of push–pull diffusion.
 *
 * Prediction: t ≈ C · ln n / λ₂ (λ₂ of L = D − A). C is per topology, fitted
 * by least squares from `plora sim` runs (docs/calibration.md: data, fit,
 * residuals): graph_predict_c(topology). A caller that knows the topology
 * applies it with graph_analysis_calibrate; otherwise GRAPH_PREDICT_C_DEFAULT
 * (= 1, uncalibrated) is used and reported as such.
 * predicted_rounds_uncalibrated is always C = 1.
 * Lower bound for any neighbour-to-neighbour gossip: the source's eccentricity.
 */
#ifndef PLORA_GRAPH_PREDICT_H
#define PLORA_GRAPH_PREDICT_H

#include <stdbool.h>
#include <stdint.h>

#include "graph.h"
#include "structure.h"

#define GRAPH_PREDICT_C_DEFAULT 1.0

/* The fitted C of topology t (docs/calibration.md); GRAPH_PREDICT_C_DEFAULT
 * for an unknown t. */
double graph_predict_c(enum graph_topology t);

/* C · ln n / λ₂; +INFINITY when λ₂ <= 0 (disconnected: never covers). */
double graph_predict_rounds(uint32_t n, double lambda2, double c);

struct graph_analysis_opts {
    uint32_t source;        /* vertex whose eccentricity bounds the rounds */
    double c;               /* prediction constant; 0 = GRAPH_PREDICT_C_DEFAULT */
    bool c_calibrated;      /* caller's c was fitted (reported back) */
    bool skip_diameter;     /* leave diameter zeroed (saves n BFS for big n) */
    uint64_t seed;          /* eigensolver start vectors */
};

struct graph_analysis {
    uint32_t n;
    size_t m;
    uint32_t components;
    struct graph_diameter diameter;
    double lambda2;             /* L = D − A; 0 when disconnected */
    double lambda2_normalized;  /* ℒ; 0 when disconnected */
    double cheeger_lo, cheeger_hi;  /* λ₂(ℒ)/2 ≤ Φ ≤ √(2 λ₂(ℒ)) */
    double sweep_conductance;   /* Fiedler sweep cut of ℒ; 0 when disconnected */
    double lambda_max_adj;      /* largest eigenvalue of A */
    double epidemic_threshold;  /* 1 / λ_max(A); +INFINITY without edges */
    uint32_t source;
    uint32_t source_eccentricity;   /* push–pull lower bound (rounds) */
    double prediction_c;
    bool prediction_c_calibrated;
    double predicted_rounds;    /* +INFINITY when disconnected */
    double predicted_rounds_uncalibrated;   /* the same with C = 1 */
    bool c_given;               /* o->c > 0: graph_analysis_calibrate keeps it */
    const char *solver;         /* "dense-dsyevr" or "lanczos" */
};

/* Fill *out for g. Returns 0, GRAPH_E_ARG (n < 2, source >= n),
 * GRAPH_E_NOMEM, GRAPH_E_NOCONV, GRAPH_E_LAPACK. */
int graph_analyze(const struct graph *g, const struct graph_analysis_opts *o,
                  struct graph_analysis *out, struct graph_diag *d);

/* After graph_analyze with o->c = 0: use the fitted C of topology t
 * (prediction_c, prediction_c_calibrated = true, predicted_rounds). An
 * analysis with a caller's C (o->c > 0) is left as it is. */
void graph_analysis_calibrate(struct graph_analysis *a, enum graph_topology t);

#endif
