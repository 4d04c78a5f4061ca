/* tests/unit/test_spectral.c: λ₂ against closed forms with both solvers,
 * Lanczos vs dense dsyevr on random overlays, disconnected graphs, Fiedler
 * vectors, Cheeger sweep, and the analysis/prediction. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "graph.h"
#include "predict.h"
#include "spectral.h"

enum shape { PATH, CYCLE, COMPLETE, STAR, HYPERCUBE };

/* Edges of a named graph; n is the vertex count (hypercube: 2^d). */
static struct graph *shape_graph(enum shape s, uint32_t n)
{
    uint32_t *e = malloc((size_t)n * n * sizeof(uint32_t)), m = 0, d = 0;
    struct graph *g = NULL;

    while ((1u << d) < n)
        d++;
    for (uint32_t u = 0; u < n; u++)
        for (uint32_t v = u + 1; v < n; v++) {
            bool edge = s == PATH ? v == u + 1
                      : s == CYCLE ? v == u + 1 || (u == 0 && v == n - 1)
                      : s == COMPLETE ? true
                      : s == STAR ? u == 0
                      : __builtin_popcount(u ^ v) == 1;
            if (edge) {
                e[2 * m] = u;
                e[2 * m + 1] = v;
                m++;
            }
        }
    assert_int_equal(graph_from_edges(&g, n, e, m, NULL), 0);
    free(e);
    return g;
}

static double l2(const struct graph *g, enum graph_laplacian k, enum graph_solver s, double *f)
{
    struct graph_spectral_opts o = { k, s, 1, 0 };
    struct graph_diag d;
    double v = -1;
    int rc = graph_lambda2(g, &o, &v, f, &d);

    if (rc != 0)
        fail_msg("lambda2: %s (%s)", d.msg, graph_err_name(rc));
    return v;
}

static double lmax(const struct graph *g, enum graph_solver s)
{
    struct graph_spectral_opts o = { GRAPH_LAP_COMBINATORIAL, s, 1, 0 };
    double v = -1;

    assert_int_equal(graph_lambda_max_adj(g, &o, &v, NULL), 0);
    return v;
}

static void near(const char *what, double got, double want, double rel)
{
    if (!(fabs(got - want) <= rel * fabs(want)))
        fail_msg("%s: got %.17g, want %.17g (rel err %.3g > %.3g)", what, got, want,
                 fabs(got - want) / fabs(want), rel);
}

/* λ₂(L), λ₂(ℒ), λ_max(A) of path, cycle, complete, star, hypercube. */
static void test_closed_forms(void **state)
{
    static const struct { enum shape s; uint32_t n; const char *name; } cases[] = {
        { PATH, 2, "P2" }, { PATH, 50, "P50" }, { PATH, 300, "P300" },
        { CYCLE, 3, "C3" }, { CYCLE, 101, "C101" }, { COMPLETE, 2, "K2" }, { COMPLETE, 60, "K60" },
        { STAR, 3, "S3" }, { STAR, 400, "S400" }, { HYPERCUBE, 4, "Q2" }, { HYPERCUBE, 256, "Q8" },
        { HYPERCUBE, 1024, "Q10" },
    };
    static const enum graph_solver solvers[] = { GRAPH_SOLVER_DENSE, GRAPH_SOLVER_LANCZOS };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double n = cases[i].n, want, wantn, wantmax, dd = log2(n);
        struct graph *g = shape_graph(cases[i].s, cases[i].n);
        char what[64];

        switch (cases[i].s) {
        case PATH: want = 2 - 2 * cos(M_PI / n); wantn = 1 - cos(M_PI / (n - 1));
                   wantmax = 2 * cos(M_PI / (n + 1)); break;
        case CYCLE: want = 2 - 2 * cos(2 * M_PI / n); wantn = 1 - cos(2 * M_PI / n);
                    wantmax = 2; break;
        case COMPLETE: want = n; wantn = n / (n - 1); wantmax = n - 1; break;
        case STAR: want = 1; wantn = 1; wantmax = sqrt(n - 1); break;
        default: want = 2; wantn = 2 / dd; wantmax = dd; break;
        }
        for (size_t s = 0; s < 2; s++) {
            snprintf(what, sizeof(what), "%s %s L", cases[i].name, s ? "lanczos" : "dense");
            near(what, l2(g, GRAPH_LAP_COMBINATORIAL, solvers[s], NULL), want, 1e-9);
            snprintf(what, sizeof(what), "%s %s normalised", cases[i].name, s ? "lanczos" : "dense");
            near(what, l2(g, GRAPH_LAP_NORMALIZED, solvers[s], NULL), wantn, 1e-9);
            snprintf(what, sizeof(what), "%s %s lambda_max(A)", cases[i].name, s ? "lanczos" : "dense");
            near(what, lmax(g, solvers[s]), wantmax, 1e-9);
        }
        graph_free(g);
    }
}

/* Lanczos (the solver for n > 2000) against dense dsyevr where both run. */
static void test_lanczos_vs_dense(void **state)
{
    static const struct graph_params cases[] = {
        { GRAPH_ER, 1200, 8.0 / 1199, 0, 0, 0, 1 },
        { GRAPH_ER, 2000, 12.0 / 1999, 0, 0, 0, 2 },
        { GRAPH_WS, 1500, 0, 8, 0.1, 0, 3 },
        { GRAPH_WS, 1000, 0, 4, 0.3, 0, 4 },
        { GRAPH_BA, 1800, 0, 0, 0, 4, 5 },
        { GRAPH_BA, 1000, 0, 0, 0, 2, 6 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct graph *g0 = NULL, *g = NULL;
        size_t added;
        char what[80];

        assert_int_equal(graph_generate(&g0, &cases[i], NULL), 0);
        assert_int_equal(graph_connect(&g, g0, &added, NULL), 0);
        for (int k = 0; k < 2; k++) {
            double dn = l2(g, k, GRAPH_SOLVER_DENSE, NULL), lz = l2(g, k, GRAPH_SOLVER_LANCZOS, NULL);

            snprintf(what, sizeof(what), "%s n=%u %s", graph_topology_name(cases[i].topology),
                     cases[i].n, k ? "normalised" : "L");
            assert_true(dn > 0);
            near(what, lz, dn, 1e-8);
        }
        near("lambda_max(A)", lmax(g, GRAPH_SOLVER_LANCZOS), lmax(g, GRAPH_SOLVER_DENSE), 1e-8);
        graph_free(g0);
        graph_free(g);
    }
}

/* ‖L f − λ f‖ small, f ⟂ 1, ‖f‖ = 1, for both solvers. */
static void test_fiedler_vector(void **state)
{
    struct graph_params p = { GRAPH_WS, 800, 0, 6, 0.2, 0, 9 };
    struct graph *g = NULL;
    double *f = malloc(800 * sizeof(double));

    (void)state;
    assert_int_equal(graph_generate(&g, &p, NULL), 0);
    for (int s = GRAPH_SOLVER_DENSE; s <= GRAPH_SOLVER_LANCZOS; s++) {
        double lam = l2(g, GRAPH_LAP_COMBINATORIAL, s, f), res = 0, sum = 0, norm = 0;

        for (uint32_t u = 0; u < 800; u++) {
            uint32_t deg;
            const uint32_t *nb = graph_neighbors(g, u, &deg);
            double y = deg * f[u];

            for (uint32_t i = 0; i < deg; i++)
                y -= f[nb[i]];
            res += (y - lam * f[u]) * (y - lam * f[u]);
            sum += f[u];
            norm += f[u] * f[u];
        }
        if (sqrt(res) > 1e-7 * lam || fabs(sum) > 1e-8 || fabs(norm - 1) > 1e-10)
            fail_msg("solver %d: residual %.3g, sum %.3g, norm %.17g", s, sqrt(res), sum, norm);
    }
    free(f);
    graph_free(g);
}

/* λ₂ = 0 exactly for a disconnected graph, with either solver. */
static void test_disconnected(void **state)
{
    static const uint32_t e[] = { 0, 1, 1, 2, 2, 0, 3, 4 };
    struct graph *g = NULL;
    double f[5] = { 1, 1, 1, 1, 1 }, phi = -1;

    (void)state;
    assert_int_equal(graph_from_edges(&g, 5, e, 4, NULL), 0);
    for (int s = GRAPH_SOLVER_AUTO; s <= GRAPH_SOLVER_LANCZOS; s++) {
        assert_true(l2(g, GRAPH_LAP_COMBINATORIAL, s, f) == 0.0);
        assert_true(l2(g, GRAPH_LAP_NORMALIZED, s, NULL) == 0.0);
        assert_true(f[0] == 0.0 && f[4] == 0.0);
    }
    assert_int_equal(graph_sweep_conductance(g, f, &phi, NULL), 0);
    assert_true(phi == 0.0);
    graph_free(g);
}

/* Two K5 joined by one edge: conductance 1/21, and the sweep finds it. */
static void test_cheeger_sweep(void **state)
{
    uint32_t e[2 * 21], m = 0;
    struct graph *g = NULL;
    struct graph_analysis a;
    struct graph_analysis_opts o = { 0, 0, false, false, 1 };

    (void)state;
    for (uint32_t base = 0; base <= 5; base += 5)
        for (uint32_t u = 0; u < 5; u++)
            for (uint32_t v = u + 1; v < 5; v++) {
                e[2 * m] = base + u;
                e[2 * m + 1] = base + v;
                m++;
            }
    e[2 * m] = 4;
    e[2 * m + 1] = 5;
    m++;
    assert_int_equal(graph_from_edges(&g, 10, e, m, NULL), 0);
    assert_int_equal(graph_analyze(g, &o, &a, NULL), 0);
    near("sweep conductance", a.sweep_conductance, 1.0 / 21, 1e-12);
    assert_true(a.cheeger_lo <= a.sweep_conductance && a.sweep_conductance <= a.cheeger_hi);
    assert_int_equal(a.diameter.lo, 3);
    assert_int_equal(a.source_eccentricity, 3);
    graph_free(g);
}

/* Cheeger holds for the sweep on random overlays; the prediction is
 * C ln n / λ₂ with C = 1 reported as uncalibrated. */
static void test_analysis(void **state)
{
    static const struct graph_params cases[] = {
        { GRAPH_WS, 3000, 0, 6, 0.1, 0, 1 },   /* Lanczos path (n > 2000) */
        { GRAPH_BA, 500, 0, 0, 0, 3, 2 },
        { GRAPH_ER, 400, 0.03, 0, 0, 0, 3 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct graph *g = NULL;
        struct graph_analysis a, b;
        struct graph_analysis_opts o = { 7, 0, false, false, 1 }, oc = { 7, 2.5, true, true, 1 };

        assert_int_equal(graph_generate(&g, &cases[i], NULL), 0);
        assert_int_equal(graph_analyze(g, &o, &a, NULL), 0);
        assert_int_equal(a.components, 1);
        if (!(a.cheeger_lo <= a.sweep_conductance && a.sweep_conductance <= a.cheeger_hi))
            fail_msg("case %zu: sweep %.6g outside Cheeger [%.6g, %.6g]", i, a.sweep_conductance,
                     a.cheeger_lo, a.cheeger_hi);
        near("predicted rounds", a.predicted_rounds, log((double)cases[i].n) / a.lambda2, 1e-15);
        assert_false(a.prediction_c_calibrated);
        near("epidemic threshold", a.epidemic_threshold * a.lambda_max_adj, 1, 1e-15);
        assert_true(a.source_eccentricity <= a.diameter.hi && a.source_eccentricity >= 1);
        assert_int_equal(graph_analyze(g, &oc, &b, NULL), 0);
        near("calibrated", b.predicted_rounds, 2.5 * a.predicted_rounds, 1e-15);
        assert_true(b.prediction_c_calibrated);
        graph_free(g);
    }
    assert_true(isinf(graph_predict_rounds(10, 0.0, 1.0)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_closed_forms),
        cmocka_unit_test(test_lanczos_vs_dense),
        cmocka_unit_test(test_fiedler_vector),
        cmocka_unit_test(test_disconnected),
        cmocka_unit_test(test_cheeger_sweep),
        cmocka_unit_test(test_analysis),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
