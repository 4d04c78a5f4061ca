/* tests/unit/test_graph.c: CSR building, rng, components, BFS, diameter,
 * joining components, the calibrated diffusion prediction. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "graph.h"
#include "predict.h"
#include "rng.h"
#include "structure.h"

static struct graph *build(uint32_t n, const uint32_t *e, size_t m)
{
    struct graph *g = NULL;
    struct graph_diag d;
    int rc = graph_from_edges(&g, n, e, m, &d);

    if (rc != 0)
        fail_msg("graph_from_edges: %s (%s)", d.msg, graph_err_name(rc));
    return g;
}

static struct graph *path(uint32_t n)
{
    uint32_t *e = malloc(2 * (size_t)n * sizeof(uint32_t));
    struct graph *g;

    for (uint32_t i = 0; i + 1 < n; i++) {
        e[2 * i] = i + 1;   /* reversed order on purpose */
        e[2 * i + 1] = i;
    }
    g = build(n, e, n - 1);
    free(e);
    return g;
}

static void test_csr(void **state)
{
    static const uint32_t e[] = { 2, 0, 0, 1, 3, 2, 1, 2 };
    struct graph *g = build(5, e, 4);
    uint32_t deg;
    const uint32_t *nb = graph_neighbors(g, 2, &deg);

    (void)state;
    assert_int_equal(graph_n(g), 5);
    assert_int_equal(graph_m(g), 4);
    assert_int_equal(deg, 3);
    assert_int_equal(nb[0], 0);
    assert_int_equal(nb[1], 1);
    assert_int_equal(nb[2], 3);
    assert_int_equal(graph_degree(g, 4), 0);
    assert_int_equal(graph_max_degree(g), 3);
    assert_int_equal(graph_csr_offsets(g)[5], 8);
    graph_free(g);
    graph_free(NULL);
}

static void test_bad_edges(void **state)
{
    static const struct { const char *name; uint32_t e[6]; size_t m; int want; } cases[] = {
        { "self-loop",       { 0, 1, 2, 2 },       2, GRAPH_E_EDGE },
        { "out of range",    { 0, 1, 1, 4 },       2, GRAPH_E_EDGE },
        { "duplicate",       { 0, 1, 2, 3, 1, 0 }, 3, GRAPH_E_EDGE },
        { "ok",              { 0, 1, 2, 3, 1, 2 }, 3, 0 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct graph *g = NULL;
        struct graph_diag d;
        int rc;

        graph_diag_clear(&d);
        rc = graph_from_edges(&g, 4, cases[i].e, cases[i].m, &d);
        if (rc != cases[i].want)
            fail_msg("%s: got %s, want %s", cases[i].name, graph_err_name(rc),
                     graph_err_name(cases[i].want));
        if (rc != 0 && (g != NULL || d.msg[0] == '\0'))
            fail_msg("%s: output not cleared or no message", cases[i].name);
        graph_free(g);
    }
    assert_int_equal(graph_from_edges(&(struct graph *){ NULL }, 0, NULL, 0, NULL), GRAPH_E_ARG);
    assert_string_equal(graph_err_name(GRAPH_E_TOO_BIG), "GRAPH_E_TOO_BIG");
}

static void test_rng(void **state)
{
    struct graph_rng a, b;
    uint64_t counts[10] = { 0 };
    const int draws = 100000;

    (void)state;
    graph_rng_seed(&a, 42);
    graph_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++)
        assert_true(graph_rng_next(&a) == graph_rng_next(&b));
    graph_rng_seed(&b, 43);
    assert_true(graph_rng_next(&a) != graph_rng_next(&b));
    /* Pinned: the stream is part of the overlay contract (all nodes, all builds). */
    graph_rng_seed(&a, 0);
    assert_true(graph_rng_next(&a) == 0x99ec5f36cb75f2b4ULL);
    for (int i = 0; i < draws; i++) {
        double u = graph_rng_uniform(&a);
        uint64_t k = graph_rng_below(&a, 10);

        assert_true(u >= 0.0 && u < 1.0);
        assert_true(k < 10);
        counts[k]++;
    }
    /* chi-square, 9 degrees of freedom: 27.88 is the 0.999 quantile */
    double chi = 0;
    for (int k = 0; k < 10; k++)
        chi += (counts[k] - draws / 10.0) * (counts[k] - draws / 10.0) / (draws / 10.0);
    assert_true(chi < 27.88);
    assert_true(graph_rng_below(&a, 0) == 0);
    assert_true(graph_rng_below(&a, 1) == 0);
}

static void test_components_bfs(void **state)
{
    /* 0-1-2  3-4  5 */
    static const uint32_t e[] = { 0, 1, 1, 2, 3, 4 };
    struct graph *g = build(6, e, 3);
    uint32_t comp[6], count, dist[6], ecc;
    struct graph_diameter dm;

    (void)state;
    assert_int_equal(graph_components(g, comp, &count, NULL), 0);
    assert_int_equal(count, 3);
    assert_int_equal(comp[0], 0);
    assert_int_equal(comp[2], 0);
    assert_int_equal(comp[4], 1);
    assert_int_equal(comp[5], 2);
    assert_int_equal(graph_bfs(g, 0, dist, &ecc, NULL), 0);
    assert_int_equal(ecc, 2);
    assert_int_equal(dist[2], 2);
    assert_true(dist[3] == GRAPH_DIST_INF);
    assert_int_equal(graph_bfs(g, 6, dist, &ecc, NULL), GRAPH_E_ARG);
    assert_int_equal(graph_diameter(g, false, &dm, NULL), 0);
    assert_false(dm.connected);
    graph_free(g);
}

static void test_diameter_closed_forms(void **state)
{
    static const uint32_t sizes[] = { 2, 3, 64, 65, 130, 1000 };
    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct graph *g = path(sizes[i]);
        struct graph_diameter dm;
        uint32_t ecc;

        assert_int_equal(graph_diameter(g, false, &dm, NULL), 0);
        if (!dm.exact || dm.lo != sizes[i] - 1)
            fail_msg("path %u: diameter %u (exact %d), want %u", sizes[i], dm.lo, dm.exact,
                     sizes[i] - 1);
        assert_int_equal(graph_eccentricity(g, sizes[i] / 2, &ecc, NULL), 0);
        assert_int_equal(ecc, sizes[i] / 2 > sizes[i] - 1 - sizes[i] / 2 ? sizes[i] / 2
                                                                  : sizes[i] - 1 - sizes[i] / 2);
        graph_free(g);
    }
}

/* Beyond GRAPH_DIAMETER_EXACT_MAX the bounds must bracket the exact value. */
static void test_diameter_bounds(void **state)
{
    struct graph_params p = { GRAPH_WS, 25000, 0, 4, 0.02, 0, 7 };
    struct graph *g = NULL, *pg = path(30000);
    struct graph_diameter exact, bounds;

    (void)state;
    assert_int_equal(graph_generate(&g, &p, NULL), 0);
    assert_int_equal(graph_diameter(g, true, &exact, NULL), 0);
    assert_int_equal(graph_diameter(g, false, &bounds, NULL), 0);
    assert_true(exact.exact && exact.connected);
    if (bounds.lo > exact.lo || bounds.hi < exact.lo || bounds.hi > 2 * bounds.lo)
        fail_msg("bounds [%u, %u] vs exact %u", bounds.lo, bounds.hi, exact.lo);
    assert_int_equal(graph_diameter(pg, false, &bounds, NULL), 0);
    assert_int_equal(bounds.lo, 29999);   /* a double sweep finds a path's ends */
    graph_free(g);
    graph_free(pg);
}

static void test_connect(void **state)
{
    struct graph_params p = { GRAPH_ER, 3000, 0.0005, 0, 0, 0, 11 };
    struct graph *g = NULL, *c = NULL, *c2 = NULL;
    uint32_t before, after;
    size_t added, added2;

    (void)state;
    assert_int_equal(graph_generate(&g, &p, NULL), 0);
    assert_int_equal(graph_components(g, NULL, &before, NULL), 0);
    assert_true(before > 100);
    assert_int_equal(graph_connect(&c, g, &added, NULL), 0);
    assert_int_equal(graph_components(c, NULL, &after, NULL), 0);
    assert_int_equal(after, 1);
    assert_int_equal(added, before - 1);   /* the fewest edges that can join them */
    assert_int_equal(graph_m(c), graph_m(g) + added);
    assert_int_equal(graph_connect(&c2, c, &added2, NULL), 0);
    assert_int_equal(added2, 0);
    assert_true(graph_edges_hash(c2) == graph_edges_hash(c));
    graph_free(g);
    graph_free(c);
    graph_free(c2);
}

/* Components {3,4,5} (the largest), {0}, {1,2}: the two smaller ones hang
 * off the first and second vertices of the largest. */
static void test_connect_exact(void **state)
{
    static const uint32_t e[] = { 3, 4, 4, 5, 1, 2 };
    static const uint32_t want[][2] = { { 0, 3 }, { 1, 2 }, { 1, 4 }, { 3, 4 }, { 4, 5 } };
    struct graph *g = build(6, e, 3), *c = NULL;
    size_t added, k = 0;

    (void)state;
    assert_int_equal(graph_connect(&c, g, &added, NULL), 0);
    assert_int_equal(added, 2);
    assert_int_equal(graph_m(c), 5);
    for (uint32_t u = 0; u < 6; u++) {
        uint32_t deg;
        const uint32_t *nb = graph_neighbors(c, u, &deg);

        for (uint32_t i = 0; i < deg; i++)
            if (nb[i] > u) {
                assert_true(k < 5);
                if (want[k][0] != u || want[k][1] != nb[i])
                    fail_msg("edge %zu: (%u, %u), want (%u, %u)", k, u, nb[i], want[k][0], want[k][1]);
                k++;
            }
    }
    assert_int_equal(k, 5);
    graph_free(g);
    graph_free(c);
}

/* Path P_n: lambda2(L) = 2 - 2 cos(pi / n) exactly. The uncalibrated
 * prediction is ln n / lambda2; calibrating applies the fitted C of the
 * topology (docs/calibration.md), which is positive, not the placeholder 1
 * for all three, and differs between topologies; a caller's C is kept. */
static void test_predict_calibrated(void **state)
{
    struct graph *g = path(12);
    struct graph_analysis_opts o = { .source = 0, .seed = 1 };
    struct graph_analysis a;
    struct graph_diag d;
    double l2 = 2 - 2 * cos(M_PI / 12), base = log(12.0) / l2;

    (void)state;
    assert_int_equal(graph_analyze(g, &o, &a, &d), 0);
    assert_true(fabs(a.lambda2 - l2) < 1e-9);
    assert_true(fabs(a.predicted_rounds_uncalibrated - base) < 1e-6);
    assert_true(fabs(a.predicted_rounds - base) < 1e-6);
    assert_false(a.prediction_c_calibrated);
    for (int t = GRAPH_ER; t <= GRAPH_BA; t++) {
        struct graph_analysis b = a;
        double c = graph_predict_c((enum graph_topology)t);
        assert_true(c > 0.05 && c < 20);
        graph_analysis_calibrate(&b, (enum graph_topology)t);
        assert_true(b.prediction_c_calibrated);
        assert_true(b.prediction_c == c);
        assert_true(fabs(b.predicted_rounds - c * base) < 1e-6);
        assert_true(fabs(b.predicted_rounds_uncalibrated - base) < 1e-6);
    }
    assert_true(graph_predict_c(GRAPH_ER) != graph_predict_c(GRAPH_WS));
    assert_true(graph_predict_c(GRAPH_WS) != graph_predict_c(GRAPH_BA));
    assert_true(graph_predict_c((enum graph_topology)7) == GRAPH_PREDICT_C_DEFAULT);
    o.c = 3;
    o.c_calibrated = true;
    assert_int_equal(graph_analyze(g, &o, &a, &d), 0);
    graph_analysis_calibrate(&a, GRAPH_ER);
    assert_true(a.prediction_c == 3 && fabs(a.predicted_rounds - 3 * base) < 1e-6);
    graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csr),
        cmocka_unit_test(test_bad_edges),
        cmocka_unit_test(test_rng),
        cmocka_unit_test(test_components_bfs),
        cmocka_unit_test(test_diameter_closed_forms),
        cmocka_unit_test(test_diameter_bounds),
        cmocka_unit_test(test_connect),
        cmocka_unit_test(test_connect_exact),
        cmocka_unit_test(test_predict_calibrated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
