/* graph/lanczos.h (internal to graph/): Lanczos for one extreme eigenpair
 * of a symmetric operator. */
#ifndef PLORA_GRAPH_LANCZOS_H
#define PLORA_GRAPH_LANCZOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph_err.h"

/* y = Op x for vectors of length n; must not keep x or y. */
typedef void (*lanczos_op)(const void *ctx, const double *x, double *y);

struct lanczos_problem {
    size_t n;
    lanczos_op op;
    const void *ctx;
    const double *deflate;  /* unit vector removed from the Krylov space, or NULL */
    bool largest;           /* true: largest eigenvalue; false: smallest */
    double tol;             /* converged when residual <= tol * |theta| (floor: 64 eps ||Op||) */
    uint64_t seed;          /* start vector */
    size_t max_matvecs;     /* 0 = 20000 */
};

/* Extreme eigenvalue into *theta, its unit Ritz vector into vec (n doubles,
 * may be NULL). Returns 0, GRAPH_E_ARG (n < 2), GRAPH_E_NOMEM,
 * GRAPH_E_NOCONV (d gives the residual reached), GRAPH_E_LAPACK. */
int lanczos_extreme(const struct lanczos_problem *p, double *theta, double *vec,
                    struct graph_diag *d);

#endif
