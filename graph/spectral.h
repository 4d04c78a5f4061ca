/* graph/spectral.h: Laplacian spectral gap, Cheeger bounds, sweep cut,
 * largest adjacency eigenvalue.
 *
 * λ₂ of the combinatorial Laplacian L = D − A or of the normalised one
 * ℒ = I − D^{-1/2} A D^{-1/2}. Dense LAPACKE dsyevr for n <= GRAPH_DENSE_MAX,
 * the Lanczos recurrence (no full reorthogonalisation: see lanczos.c; the
 * Laplacian's null vector is deflated each step) beyond; the two
 * agree to 1e-8 relative (tests/unit/test_spectral.c). A disconnected graph
 * has λ₂ = 0 exactly (no eigensolver runs).
 */
#ifndef PLORA_GRAPH_SPECTRAL_H
#define PLORA_GRAPH_SPECTRAL_H

#include <stdbool.h>
#include <stdint.h>

#include "graph.h"

#define GRAPH_DENSE_MAX 2000u   /* n up to which the dense solver is used */

enum graph_laplacian { GRAPH_LAP_COMBINATORIAL = 0, GRAPH_LAP_NORMALIZED = 1 };
enum graph_solver { GRAPH_SOLVER_AUTO = 0, GRAPH_SOLVER_DENSE = 1, GRAPH_SOLVER_LANCZOS = 2 };

struct graph_spectral_opts {
    enum graph_laplacian kind;
    enum graph_solver solver;   /* AUTO: dense iff n <= GRAPH_DENSE_MAX */
    uint64_t seed;              /* Lanczos start vector (result does not depend on it) */
    double tol;                 /* relative residual; 0 = 1e-10 */
};

/* λ₂ of the chosen Laplacian into *lambda2. fiedler (n doubles, may be NULL)
 * receives a unit eigenvector of λ₂ (unspecified sign; all zeros when the
 * graph is disconnected). Returns 0, GRAPH_E_ARG (n < 2, or DENSE forced
 * with n > 4*GRAPH_DENSE_MAX), GRAPH_E_NOMEM, GRAPH_E_NOCONV, GRAPH_E_LAPACK. */
int graph_lambda2(const struct graph *g, const struct graph_spectral_opts *o, double *lambda2,
                  double *fiedler, struct graph_diag *d);

/* Largest eigenvalue of the adjacency matrix A (the epidemic threshold of
 * the overlay is 1/λ_max). Same solvers and codes as graph_lambda2. */
int graph_lambda_max_adj(const struct graph *g, const struct graph_spectral_opts *o,
                         double *lambda_max, struct graph_diag *d);

/* Conductance of the best prefix of the vertices sorted by x[u] (ascending):
 * min over prefixes S of cut(S) / min(vol S, vol V\S). With x = D^{-1/2}·(the
 * normalised Fiedler vector) this is Cheeger's sweep, whose value lies in
 * [λ₂(ℒ)/2, √(2 λ₂(ℒ))]. A disconnected graph gives 0.
 * Returns 0, GRAPH_E_ARG (n < 2 or no edges), GRAPH_E_NOMEM. */
int graph_sweep_conductance(const struct graph *g, const double *x, double *phi,
                            struct graph_diag *d);

#endif
