/* tests/unit/test_gen.c: the ER / WS / BA generators: parameter checks,
 * edge and degree statistics over many seeds, exact counts, determinism. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "graph.h"

static struct graph *gen(enum graph_topology t, uint32_t n, double p, uint32_t k, double beta,
                         uint32_t m, uint64_t seed)
{
    struct graph_params gp = { t, n, p, k, beta, m, seed };
    struct graph *g = NULL;
    struct graph_diag d;
    int rc = graph_generate(&g, &gp, &d);

    if (rc != 0)
        fail_msg("generate %s n=%u: %s (%s)", graph_topology_name(t), n, d.msg, graph_err_name(rc));
    return g;
}

static void test_param_errors(void **state)
{
    static const struct {
        struct graph_params p; int want; const char *prefix;
    } cases[] = {
        { { GRAPH_ER, 1, 0.5, 0, 0, 0, 1 },   GRAPH_E_PARAM, "-n:" },
        { { GRAPH_ER, 10, -0.1, 0, 0, 0, 1 }, GRAPH_E_PARAM, "--p:" },
        { { GRAPH_ER, 10, 1.5, 0, 0, 0, 1 },  GRAPH_E_PARAM, "--p:" },
        { { GRAPH_ER, 10, NAN, 0, 0, 0, 1 },  GRAPH_E_PARAM, "--p:" },
        { { GRAPH_WS, 10, 0, 3, 0.1, 0, 1 },  GRAPH_E_PARAM, "--k:" },
        { { GRAPH_WS, 10, 0, 0, 0.1, 0, 1 },  GRAPH_E_PARAM, "--k:" },
        { { GRAPH_WS, 10, 0, 10, 0.1, 0, 1 }, GRAPH_E_PARAM, "--k:" },
        { { GRAPH_WS, 10, 0, 4, 1.01, 0, 1 }, GRAPH_E_PARAM, "--beta:" },
        { { GRAPH_BA, 10, 0, 0, 0, 0, 1 },    GRAPH_E_PARAM, "--m:" },
        { { GRAPH_BA, 10, 0, 0, 0, 10, 1 },   GRAPH_E_PARAM, "--m:" },
        { { GRAPH_ER, 50000000, 0.5, 0, 0, 0, 1 }, GRAPH_E_TOO_BIG, "-n 50000000 with --p" },
        { { GRAPH_BA, 90000000, 0, 0, 0, 60, 1 },  GRAPH_E_TOO_BIG, "-n 90000000 with --m" },
        { { GRAPH_WS, 10, 0, 8, 1.0, 0, 1 },  0, "" },
        { { GRAPH_BA, 10, 0, 0, 0, 9, 1 },    0, "" },
        { { GRAPH_ER, 10, 1.0, 0, 0, 0, 1 },  0, "" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct graph_diag d;
        struct graph *g = NULL;
        int rc;

        graph_diag_clear(&d);
        rc = graph_params_check(&cases[i].p, 0, &d);
        if (rc != cases[i].want || strncmp(d.msg, cases[i].prefix, strlen(cases[i].prefix)) != 0)
            fail_msg("case %zu: got %s \"%s\", want %s \"%s...\"", i, graph_err_name(rc), d.msg,
                     graph_err_name(cases[i].want), cases[i].prefix);
        if (rc != 0 && cases[i].p.n < 1000) {
            assert_int_equal(graph_generate(&g, &cases[i].p, NULL), rc);
            assert_null(g);
        }
    }
}

/* ER: total edges over S seeds within 3 sigma of S * p * n(n-1)/2. */
static void test_er_statistics(void **state)
{
    const uint32_t n = 2000, seeds = 40;
    const double p = 0.004, pairs = n * (n - 1.0) / 2;
    double total = 0, mu, sigma;

    (void)state;
    for (uint64_t s = 1; s <= seeds; s++) {
        struct graph *g = gen(GRAPH_ER, n, p, 0, 0, 0, s);
        total += (double)graph_m(g);
        graph_free(g);
    }
    mu = seeds * p * pairs;
    sigma = sqrt(seeds * pairs * p * (1 - p));
    if (fabs(total - mu) > 3 * sigma)
        fail_msg("ER edges over %u seeds: %.0f, expected %.1f +- 3*%.1f", seeds, total, mu, sigma);
    /* mean degree p(n-1) per graph, pooled */
    assert_true(fabs(2 * total / (seeds * (double)n) - p * (n - 1)) < 3 * 2 * sigma / (seeds * n));
}

static void test_er_extremes(void **state)
{
    struct graph *g0 = gen(GRAPH_ER, 300, 0.0, 0, 0, 0, 5), *g1 = gen(GRAPH_ER, 300, 1.0, 0, 0, 0, 5);

    (void)state;
    assert_int_equal(graph_m(g0), 0);
    assert_int_equal(graph_m(g1), 300 * 299 / 2);
    graph_free(g0);
    graph_free(g1);
}

/* WS keeps exactly n*k/2 edges; beta = 0 is the ring lattice; the fraction
 * of edges leaving the lattice is about beta (within 3 sigma over seeds). */
static void test_ws(void **state)
{
    const uint32_t n = 1000, k = 6, seeds = 20;
    const double beta = 0.2;
    struct graph *lat = gen(GRAPH_WS, n, 0, k, 0.0, 0, 3);
    double moved = 0, trials = (double)seeds * n * k / 2, mu, sigma;

    (void)state;
    assert_int_equal(graph_m(lat), n * k / 2);
    for (uint32_t u = 0; u < n; u++) {
        uint32_t deg;
        const uint32_t *nb = graph_neighbors(lat, u, &deg);

        assert_int_equal(deg, k);
        for (uint32_t i = 0; i < deg; i++) {
            uint32_t dist = (nb[i] + n - u) % n;
            assert_true(dist <= k / 2 || n - dist <= k / 2);
        }
    }
    graph_free(lat);
    for (uint64_t s = 1; s <= seeds; s++) {
        struct graph *g = gen(GRAPH_WS, n, 0, k, beta, 0, s);

        assert_int_equal(graph_m(g), n * k / 2);
        for (uint32_t u = 0; u < n; u++) {
            uint32_t deg;
            const uint32_t *nb = graph_neighbors(g, u, &deg);
            for (uint32_t i = 0; i < deg; i++) {
                uint32_t dist = (nb[i] + n - u) % n;
                moved += nb[i] > u && dist > k / 2 && n - dist > k / 2;
            }
        }
        graph_free(g);
    }
    /* a rewired edge lands back on a lattice position with probability ~k/n */
    mu = trials * beta * (1 - (double)k / n);
    sigma = sqrt(trials * beta * (1 - beta));
    if (fabs(moved - mu) > 3 * sigma)
        fail_msg("WS rewired edges %.0f, expected %.1f +- 3*%.1f", moved, mu, sigma);
}

/* BA: seed star on 0..m (m edges) + m per vertex m+1..n-1 = m*(n-m) edges;
 * every vertex has degree >= m (the star's leaves: >= 1, grown by attachment). */
static void test_ba(void **state)
{
    static const uint32_t ms[] = { 1, 2, 4, 7 };
    const uint32_t n = 3000;

    (void)state;
    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
        for (uint64_t s = 1; s <= 5; s++) {
            uint32_t m = ms[i];
            struct graph *g = gen(GRAPH_BA, n, 0, 0, 0, m, s);

            assert_int_equal(graph_m(g), (size_t)m * (n - m));
            for (uint32_t u = m + 1; u < n; u++)
                assert_true(graph_degree(g, u) >= m);
            /* preferential attachment makes hubs: far above the mean 2m */
            assert_true(graph_max_degree(g) > 10 * m);
            graph_free(g);
        }
    struct graph *full = gen(GRAPH_BA, 12, 0, 0, 0, 11, 1);
    assert_int_equal(graph_m(full), 11);   /* m = n-1: the seed star alone */
    graph_free(full);
}

/* Same (topology, n, params, seed) => same edge list, in every run and
 * build: the hashes below are pinned; a change to a generator or to the rng
 * changes every cluster's overlay and must be deliberate. */
static void test_determinism(void **state)
{
    static const struct {
        struct graph_params p; uint64_t hash;
    } cases[] = {
        { { GRAPH_ER, 5000, 0.002, 0, 0, 0, 42 }, 0x72c858f544c0fe4aULL },
        { { GRAPH_WS, 5000, 0, 8, 0.1, 0, 42 },   0xe0c8257ddabc7b60ULL },
        { { GRAPH_BA, 5000, 0, 0, 0, 4, 42 },     0x65acd1072df04653ULL },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct graph_params *p = &cases[i].p;
        struct graph *a = gen(p->topology, p->n, p->p, p->k, p->beta, p->m, p->seed);
        struct graph *b = gen(p->topology, p->n, p->p, p->k, p->beta, p->m, p->seed);
        struct graph *c = gen(p->topology, p->n, p->p, p->k, p->beta, p->m, p->seed + 1);

        assert_true(graph_edges_hash(a) == graph_edges_hash(b));
        assert_true(graph_edges_hash(a) != graph_edges_hash(c));
        if (graph_edges_hash(a) != cases[i].hash)
            fail_msg("%s: edge hash %016llx, pinned %016llx", graph_topology_name(p->topology),
                     (unsigned long long)graph_edges_hash(a), (unsigned long long)cases[i].hash);
        graph_free(a);
        graph_free(b);
        graph_free(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_param_errors),
        cmocka_unit_test(test_er_statistics),
        cmocka_unit_test(test_er_extremes),
        cmocka_unit_test(test_ws),
        cmocka_unit_test(test_ba),
        cmocka_unit_test(test_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
