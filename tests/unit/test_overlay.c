/* tests/unit/test_overlay.c: daemon/overlay.c. Every member must derive the
 * same graph from the same membership and seed, whatever order it learned
 * the members in; the graph must be symmetric and connected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "overlay.h"
#include "sha256.h"

#define N_MAX 64u

struct topo_case {
    const char *name;
    struct overlay_params p;
};

static const struct topo_case topologies[] = {
    { "er p=0 (2 ln n / n)", { .topology = GRAPH_ER, .p = 0.0, .seed = 1 } },
    { "er p=0.05", { .topology = GRAPH_ER, .p = 0.05, .seed = 7 } },
    { "ws k=4 beta=0.2", { .topology = GRAPH_WS, .k = 4, .beta = 0.2, .seed = 1 } },
    { "ws k=6 beta=1", { .topology = GRAPH_WS, .k = 6, .beta = 1.0, .seed = 3 } },
    { "ba m=2", { .topology = GRAPH_BA, .m = 2, .seed = 1 } },
    { "ba m=1", { .topology = GRAPH_BA, .m = 1, .seed = 9 } },
};

/* Member i's key id: sha256 of "member-<i>" (spread over the id space). */
static void member_id(uint32_t i, uint8_t out[OVERLAY_ID_LEN])
{
    char s[32];
    int n = snprintf(s, sizeof(s), "member-%u", i);

    assert_int_equal(sha256(s, (size_t)n, out), 0);
}

static size_t index_of(uint8_t (*ids)[OVERLAY_ID_LEN], size_t n, const uint8_t *id)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(ids[i], id, OVERLAY_ID_LEN) == 0)
            return i;
    return SIZE_MAX;
}

/* ids in an order that depends on `who` (rotation, then reversal if odd). */
static void permuted(uint8_t (*ids)[OVERLAY_ID_LEN], size_t n, size_t who,
                     uint8_t (*out)[OVERLAY_ID_LEN])
{
    for (size_t i = 0; i < n; i++) {
        size_t j = (i + who * 7) % n;
        memcpy(out[who % 2 ? n - 1 - i : i], ids[j], OVERLAY_ID_LEN);
    }
}

/* BFS over the members' neighbour lists from member 0: all reached? */
static bool connected(struct overlay *views, uint8_t (*ids)[OVERLAY_ID_LEN], size_t n)
{
    bool seen[N_MAX] = { false };
    size_t queue[N_MAX], head = 0, tail = 0;

    seen[0] = true;
    queue[tail++] = 0;
    while (head < tail) {
        size_t u = queue[head++];
        for (size_t k = 0; k < views[u].n_nbrs; k++) {
            size_t v = index_of(ids, n, views[u].nbrs[k]);
            assert_true(v != SIZE_MAX);
            if (!seen[v]) {
                seen[v] = true;
                queue[tail++] = v;
            }
        }
    }
    return tail == n;
}

/* Every member of an n-member cluster derives its view; check agreement,
 * symmetry, connectivity, sorted lists, no self-loop. */
static void check_cluster(const struct topo_case *tc, size_t n)
{
    uint8_t ids[N_MAX][OVERLAY_ID_LEN], in[N_MAX][OVERLAY_ID_LEN];
    struct overlay views[N_MAX];
    struct dmn_diag d = { 0 };

    for (size_t i = 0; i < n; i++)
        member_id((uint32_t)i, ids[i]);
    for (size_t i = 0; i < n; i++) {
        permuted(ids, n, i, in);
        if (overlay_build(&views[i], &tc->p, (const uint8_t (*)[OVERLAY_ID_LEN])in, n, ids[i], &d) != 0)
            fail_msg("%s n=%zu member %zu: %s", tc->name, n, i, d.msg);
        assert_int_equal(views[i].n, n);
        assert_true(views[i].self < n);
        if (views[i].edges_hash != views[0].edges_hash || views[i].edges != views[0].edges)
            fail_msg("%s n=%zu: member %zu derived another graph", tc->name, n, i);
        if (n == 1 && views[i].n_nbrs != 0)
            fail_msg("%s n=1: a lone member has %zu neighbours", tc->name, views[i].n_nbrs);
        if (n >= 2 && views[i].n_nbrs == 0)
            fail_msg("%s n=%zu: member %zu has no neighbour", tc->name, n, i);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < views[i].n_nbrs; k++) {
            size_t j = index_of(ids, n, views[i].nbrs[k]);
            assert_true(j != SIZE_MAX && j != i);
            if (k > 0)
                assert_true(memcmp(views[i].nbrs[k - 1], views[i].nbrs[k], OVERLAY_ID_LEN) < 0);
            if (!overlay_is_neighbour(&views[j], ids[i]))
                fail_msg("%s n=%zu: %zu lists %zu but not the reverse", tc->name, n, i, j);
        }
    if (!connected(views, ids, n))
        fail_msg("%s n=%zu: overlay is not connected", tc->name, n);
    for (size_t i = 0; i < n; i++)
        overlay_clear(&views[i]);
}

static void test_every_topology_every_n(void **state)
{
    (void)state;
    for (size_t t = 0; t < sizeof(topologies) / sizeof(topologies[0]); t++)
        for (size_t n = 1; n <= N_MAX; n++)
            check_cluster(&topologies[t], n);
}

/* Small memberships adapt the parameters: ws k=4 over 3 members is a
 * triangle, over 2 the single edge; ba m=2 over 2 members is one edge. */
static void test_small_clusters(void **state)
{
    static const struct { struct overlay_params p; size_t n, edges; } cases[] = {
        { { .topology = GRAPH_WS, .k = 4, .beta = 0.2, .seed = 1 }, 2, 1 },
        { { .topology = GRAPH_WS, .k = 4, .beta = 0.2, .seed = 1 }, 3, 3 },
        { { .topology = GRAPH_WS, .k = 4, .beta = 0.0, .seed = 1 }, 5, 10 },
        { { .topology = GRAPH_BA, .m = 2, .seed = 1 }, 2, 1 },
        { { .topology = GRAPH_BA, .m = 2, .seed = 1 }, 3, 2 },
        { { .topology = GRAPH_ER, .p = 1.0, .seed = 1 }, 6, 15 },
    };
    uint8_t ids[8][OVERLAY_ID_LEN];
    struct dmn_diag d = { 0 };
    struct overlay o;

    (void)state;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (size_t i = 0; i < cases[c].n; i++)
            member_id((uint32_t)i, ids[i]);
        assert_int_equal(overlay_build(&o, &cases[c].p, (const uint8_t (*)[OVERLAY_ID_LEN])ids,
                                       cases[c].n, ids[0], &d), 0);
        if (o.edges != cases[c].edges)
            fail_msg("case %zu: %zu edges, want %zu", c, o.edges, cases[c].edges);
        overlay_clear(&o);
    }
}

/* Duplicates are ignored; a node that is no member gets no neighbours. */
static void test_duplicates_and_outsider(void **state)
{
    struct overlay_params p = { .topology = GRAPH_WS, .k = 4, .beta = 0.2, .seed = 5 };
    uint8_t ids[20][OVERLAY_ID_LEN], outsider[OVERLAY_ID_LEN];
    struct dmn_diag d = { 0 };
    struct overlay a, b;

    (void)state;
    for (uint32_t i = 0; i < 10; i++) {
        member_id(i, ids[i]);
        member_id(i, ids[10 + i]);
    }
    member_id(999, outsider);
    assert_int_equal(overlay_build(&a, &p, (const uint8_t (*)[OVERLAY_ID_LEN])ids, 20, ids[3], &d), 0);
    assert_int_equal(overlay_build(&b, &p, (const uint8_t (*)[OVERLAY_ID_LEN])ids, 10, ids[3], &d), 0);
    assert_int_equal(a.n, 10);
    assert_true(a.edges_hash == b.edges_hash);
    assert_int_equal(a.n_nbrs, b.n_nbrs);
    assert_memory_equal(a.nbrs, b.nbrs, a.n_nbrs * OVERLAY_ID_LEN);
    overlay_clear(&a);
    overlay_clear(&b);
    assert_int_equal(overlay_build(&a, &p, (const uint8_t (*)[OVERLAY_ID_LEN])ids, 10, outsider, &d), 0);
    assert_true(a.self == SIZE_MAX);
    assert_int_equal(a.n_nbrs, 0);
    assert_false(overlay_is_neighbour(&a, ids[0]));
    overlay_clear(&a);
}

/* The seed matters (else every cluster would share one graph), and the
 * parameters the generators refuse are refused. */
static void test_seed_and_bad_params(void **state)
{
    struct overlay_params p = { .topology = GRAPH_ER, .p = 0.1, .seed = 1 };
    static const struct overlay_params bad[] = {
        { .topology = GRAPH_WS, .k = 3, .beta = 0.2, .seed = 1 },    /* odd k */
        { .topology = GRAPH_WS, .k = 4, .beta = 1.5, .seed = 1 },    /* beta > 1 */
        { .topology = GRAPH_ER, .p = 2.0, .seed = 1 },               /* p > 1 */
        { .topology = GRAPH_BA, .m = 0, .seed = 1 },                 /* m = 0 */
    };
    uint8_t ids[N_MAX][OVERLAY_ID_LEN];
    struct dmn_diag d = { 0 };
    struct overlay a, b;

    (void)state;
    for (uint32_t i = 0; i < N_MAX; i++)
        member_id(i, ids[i]);
    assert_int_equal(overlay_build(&a, &p, (const uint8_t (*)[OVERLAY_ID_LEN])ids, N_MAX, ids[0], &d), 0);
    p.seed = 2;
    assert_int_equal(overlay_build(&b, &p, (const uint8_t (*)[OVERLAY_ID_LEN])ids, N_MAX, ids[0], &d), 0);
    assert_true(a.edges_hash != b.edges_hash);
    overlay_clear(&a);
    overlay_clear(&b);
    for (size_t c = 0; c < sizeof(bad) / sizeof(bad[0]); c++) {
        int rc = overlay_build(&a, &bad[c], (const uint8_t (*)[OVERLAY_ID_LEN])ids, N_MAX, ids[0], &d);
        if (rc != DMN_E_ARG)
            fail_msg("bad case %zu: got %d (%s), want DMN_E_ARG", c, rc, dmn_err_name(rc));
        assert_null(a.nbrs);
    }
}

static void test_dial_rule(void **state)
{
    uint8_t lo[OVERLAY_ID_LEN] = { 0 }, hi[OVERLAY_ID_LEN] = { 0 };

    (void)state;
    hi[31] = 1;
    assert_true(overlay_dials(lo, hi));
    assert_false(overlay_dials(hi, lo));
    assert_false(overlay_dials(lo, lo));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_topology_every_n),
        cmocka_unit_test(test_small_clusters),
        cmocka_unit_test(test_duplicates_and_outsider),
        cmocka_unit_test(test_seed_and_bad_params),
        cmocka_unit_test(test_dial_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
