/* tests/unit/test_frame.c: frame prefix, streaming reader, msgpack header walk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"
#include "mpwalk.h"

/* xorshift64*: the tests' own seeded PRNG (reproducible on every machine). */
static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static void test_peek_table(void **state)
{
    static const struct { const char *name; uint8_t in[8]; size_t n; size_t max; ptrdiff_t want; } cases[] = {
        { "empty",             { 0 },                          0, 16, PROTO_E_NEED_MORE },
        { "half a header",     { 0, 0, 1 },                    3, 16, PROTO_E_NEED_MORE },
        { "header, no body",   { 0, 0, 0, 1 },                 4, 16, PROTO_E_NEED_MORE },
        { "length zero",       { 0, 0, 0, 0, 0x80 },           5, 16, PROTO_E_FRAME_LEN },
        { "length over cap",   { 0xff, 0xff, 0xff, 0xff },     4, 16, PROTO_E_FRAME_LEN },
        { "one over max",      { 0, 0, 0, 17 },                4, 16, PROTO_E_FRAME_LEN },
        { "one-byte body",     { 0, 0, 0, 1, 0x80 },           5, 16, 5 },
        { "body + next frame", { 0, 0, 0, 2, 0x91, 0x01, 0, 0 }, 8, 16, 6 },
        { "exactly max",       { 0, 0, 0, 3, 1, 2, 3 },        7, 3, 7 },
        { "half a body",       { 0, 0, 0, 3, 1, 2 },           6, 3, PROTO_E_NEED_MORE },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct proto_diag d = { 0 };
        ptrdiff_t got = frame_peek(cases[i].in, cases[i].n, cases[i].max, &d);
        if (got != cases[i].want)
            fail_msg("%s: got %td (%s), want %td (%s); %s", cases[i].name, got,
                     proto_err_name((int)got), cases[i].want,
                     proto_err_name((int)cases[i].want), d.msg);
    }
}

static void test_put_header(void **state)
{
    uint8_t h[4];

    assert_int_equal(frame_put_header(h, 0x00f20304), 0);
    assert_memory_equal(h, "\x00\xf2\x03\x04", 4);
    assert_int_equal(frame_put_header(h, 0), PROTO_E_ARG);
    assert_int_equal(frame_put_header(h, FRAME_MAX + 1), PROTO_E_ARG);
    assert_int_equal(frame_put_header(h, FRAME_MAX), 0);
    assert_int_equal(frame_peek(h, 4, FRAME_MAX, NULL), PROTO_E_NEED_MORE);
}

/* A stream of `count` frames with bodies of 1..maxlen bytes (body byte j of
 * frame i is (i + j) & 0xff); returns the stream, lengths in lens[]. */
static uint8_t *make_stream(size_t count, size_t maxlen, size_t *lens, size_t *total)
{
    size_t n = 0, cap = count * (maxlen + 4);
    uint8_t *s = malloc(cap);

    assert_non_null(s);
    for (size_t i = 0; i < count; i++) {
        lens[i] = 1 + rng() % maxlen;
        assert_int_equal(frame_put_header(s + n, lens[i]), 0);
        for (size_t j = 0; j < lens[i]; j++)
            s[n + 4 + j] = (uint8_t)(i + j);
        n += 4 + lens[i];
    }
    *total = n;
    return s;
}

static void check_body(size_t i, const uint8_t *body, size_t len, size_t want_len)
{
    assert_int_equal(len, want_len);
    for (size_t j = 0; j < len; j++)
        if (body[j] != (uint8_t)(i + j))
            fail_msg("frame %zu byte %zu: got %u", i, j, body[j]);
}

/* Feed in random slices (1 byte .. 3x the largest frame), through both the
 * copying and the zero-copy path; every frame comes out once, in order. */
static void test_reader_random_splits(void **state)
{
    enum { COUNT = 300, MAXLEN = 3000 };
    size_t lens[COUNT], total, pos = 0, got = 0;
    struct frame_reader *r = NULL;
    struct proto_diag d;
    uint8_t *s;

    rng_state = 0x9e3779b97f4a7c15ULL;
    s = make_stream(COUNT, MAXLEN, lens, &total);
    assert_int_equal(frame_reader_new(&r, MAXLEN), 0);
    while (pos < total) {
        size_t k = 1 + rng() % (rng() % 2 ? 7 : 3 * MAXLEN);
        const uint8_t *body;
        size_t len;
        if (k > total - pos)
            k = total - pos;
        if (rng() % 2) {
            assert_int_equal(frame_reader_feed(r, s + pos, k, &d), 0);
        } else {
            uint8_t *room;
            size_t avail;
            assert_int_equal(frame_reader_space(r, k, &room, &avail), 0);
            assert_true(avail >= k);
            memcpy(room, s + pos, k);
            assert_int_equal(frame_reader_commit(r, k, &d), 0);
        }
        pos += k;
        int rc;
        while ((rc = frame_reader_next(r, &body, &len, &d)) == 0) {
            assert_true(got < COUNT);
            check_body(got, body, len, lens[got]);
            got++;
        }
        assert_int_equal(rc, PROTO_E_NEED_MORE);
    }
    assert_int_equal(got, COUNT);
    assert_int_equal(frame_reader_buffered(r), 0);
    frame_reader_free(r);
    free(s);
}

static void test_reader_bad_length_is_sticky(void **state)
{
    static const uint8_t good[] = { 0, 0, 0, 1, 0x80 };
    static const uint8_t big[] = { 0, 0, 0x20, 0x01 };   /* 8193 > FRAME_MAX_PREAUTH */
    struct frame_reader *r = NULL;
    struct proto_diag d = { 0 };
    const uint8_t *body;
    size_t len;

    assert_int_equal(frame_reader_new(&r, FRAME_MAX_PREAUTH), 0);
    assert_int_equal(frame_reader_feed(r, good, sizeof(good), &d), 0);
    assert_int_equal(frame_reader_feed(r, big, 2, &d), 0);    /* only a good frame at the head */
    assert_int_equal(frame_reader_next(r, &body, &len, &d), 0);
    assert_int_equal(len, 1);
    assert_int_equal(frame_reader_feed(r, big + 2, 2, &d), 0);   /* judged by next */
    assert_int_equal(frame_reader_next(r, &body, &len, &d), PROTO_E_FRAME_LEN);
    assert_int_equal(d.offset, 5);   /* stream offset of the bad header */
    assert_non_null(strstr(d.msg, "8193"));
    assert_null(body);
    assert_int_equal(frame_reader_next(r, &body, &len, &d), PROTO_E_FRAME_LEN);
    assert_int_equal(frame_reader_feed(r, good, sizeof(good), &d), PROTO_E_FRAME_LEN);
    frame_reader_free(r);
}

/* Before auth the cap is FRAME_MAX_PREAUTH; raising it admits a big frame. */
static void test_reader_set_max(void **state)
{
    size_t n = FRAME_MAX_PREAUTH + 1;
    uint8_t *f = calloc(1, n + 4);
    struct frame_reader *r = NULL;
    const uint8_t *body;
    size_t len;

    assert_non_null(f);
    assert_int_equal(frame_put_header(f, n), 0);
    assert_int_equal(frame_reader_new(&r, FRAME_MAX_PREAUTH), 0);
    assert_int_equal(frame_reader_set_max(r, FRAME_MAX), 0);
    assert_int_equal(frame_reader_feed(r, f, n + 4, NULL), 0);
    assert_int_equal(frame_reader_next(r, &body, &len, NULL), 0);
    assert_int_equal(len, n);
    assert_int_equal(frame_reader_set_max(r, 0), PROTO_E_ARG);
    assert_int_equal(frame_reader_set_max(r, FRAME_MAX + 1), PROTO_E_ARG);
    frame_reader_free(r);
    assert_int_equal(frame_reader_new(&r, FRAME_MAX_PREAUTH), 0);
    assert_int_equal(frame_reader_feed(r, f, n + 4, NULL), 0);
    assert_int_equal(frame_reader_next(r, &body, &len, NULL), PROTO_E_FRAME_LEN);
    frame_reader_free(r);
    /* held back while the cap is low, the same bytes pass once it is raised */
    assert_int_equal(frame_reader_new(&r, FRAME_MAX_PREAUTH), 0);
    assert_int_equal(frame_reader_feed(r, f, n + 4, NULL), 0);
    assert_int_equal(frame_reader_set_max(r, FRAME_MAX), 0);
    assert_int_equal(frame_reader_next(r, &body, &len, NULL), 0);
    assert_int_equal(len, n);
    frame_reader_free(r);
    free(f);
}

/* A peer claiming 16 MiB but sending 10 bytes costs 10 bytes of buffer. */
static void test_reader_no_alloc_from_claims(void **state)
{
    static const uint8_t claim[] = { 0x01, 0x00, 0x00, 0x00, 1, 2, 3, 4, 5, 6 };
    struct frame_reader *r = NULL;
    const uint8_t *body;
    uint8_t *room;
    size_t len, avail;

    assert_int_equal(frame_reader_new(&r, FRAME_MAX), 0);
    assert_int_equal(frame_reader_feed(r, claim, sizeof(claim), NULL), 0);
    assert_int_equal(frame_reader_next(r, &body, &len, NULL), PROTO_E_NEED_MORE);
    assert_int_equal(frame_reader_space(r, 1, &room, &avail), 0);
    assert_true(avail < 8192);   /* the buffer never grew toward the claim */
    assert_int_equal(frame_reader_commit(r, avail + 1, NULL), PROTO_E_ARG);
    assert_int_equal(frame_reader_space(r, 0, &room, &avail), PROTO_E_ARG);
    frame_reader_free(r);
    frame_reader_free(NULL);
    assert_int_equal(frame_reader_new(&r, 0), PROTO_E_ARG);
    assert_null(r);
    assert_int_equal(frame_reader_new(&r, FRAME_MAX + 1), PROTO_E_ARG);
}

static const struct mpwalk_limits lim = { .max_depth = 3, .max_items = 64, .max_str = 8, .max_bin = 16 };

static void test_mpwalk_table(void **state)
{
    static const struct { const char *name; uint8_t in[24]; size_t n; int want; size_t off; } cases[] = {
        /* the regression input: array32 of 2^32-1 items (msgpack-c asks for 128 GiB) */
        { "array32 max, nothing after", { 0xdd, 0xff, 0xff, 0xff, 0xff }, 5, PROTO_E_MSGPACK_CNT, 0 },
        /* map32 of 2^20 pairs in a small frame (msgpack-c asks for 64 MiB) */
        { "map32 2^20 pairs", { 0xdf, 0x00, 0x10, 0x00, 0x00, 0x01, 0x02 }, 7, PROTO_E_MSGPACK_CNT, 0 },
        { "nested count too big", { 0x81, 0xa1, 'k', 0xdc, 0x00, 0x05, 1, 2, 3, 4 }, 10, PROTO_E_MSGPACK_CNT, 3 },
        { "fixmap 1 pair, 1 byte", { 0x81, 0x01 }, 2, PROTO_E_MSGPACK_CNT, 0 },
        { "empty input", { 0 }, 0, PROTO_E_MSGPACK_TRUNC, 0 },
        { "str8 body short", { 0xd9, 0x05, 'a', 'b' }, 4, PROTO_E_MSGPACK_TRUNC, 0 },
        { "str8 no length", { 0xd9 }, 1, PROTO_E_MSGPACK_TRUNC, 0 },
        { "uint16 one byte", { 0xcd, 0x01 }, 2, PROTO_E_MSGPACK_TRUNC, 0 },
        { "array16 no count", { 0xdc, 0x00 }, 2, PROTO_E_MSGPACK_TRUNC, 0 },
        { "map missing value", { 0x82, 0x01, 0x02, 0x03 }, 4, PROTO_E_MSGPACK_CNT, 0 },
        { "map value cut", { 0x82, 0x01, 0x02, 0x03, 0xcd }, 5, PROTO_E_MSGPACK_TRUNC, 4 },
        { "trailing byte", { 0x01, 0x02 }, 2, PROTO_E_MSGPACK_TRAIL, 1 },
        { "two maps", { 0x80, 0x80 }, 2, PROTO_E_MSGPACK_TRAIL, 1 },
        { "depth 4", { 0x91, 0x91, 0x91, 0x91, 0x01 }, 5, PROTO_E_MSGPACK_DEPTH, 3 },
        { "never-used c1", { 0x91, 0xc1 }, 2, PROTO_E_MSGPACK_TYPE, 1 },
        { "fixext1", { 0xd4, 0x00, 0x00 }, 3, PROTO_E_MSGPACK_TYPE, 0 },
        { "ext8", { 0xc7, 0x01, 0x00, 0x00 }, 4, PROTO_E_MSGPACK_TYPE, 0 },
        { "str over cap", { 0xa9, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, 10, PROTO_E_LIMIT, 0 },
        { "bin over cap", { 0xc4, 17 }, 2, PROTO_E_LIMIT, 0 },
        { "bin32 huge", { 0xc6, 0xff, 0xff, 0xff, 0xff }, 5, PROTO_E_LIMIT, 0 },
        { "empty map", { 0x80 }, 1, 0, 0 },
        { "flat map", { 0x82, 0xa1, 't', 0x01, 0xa1, 'v', 0xcd, 0x01, 0x00 }, 9, 0, 0 },
        { "depth 3", { 0x91, 0x91, 0x91, 0x01 }, 4, 0, 0 },
        { "empty arrays deep", { 0x91, 0x91, 0x91, 0x90 }, 4, 0, 0 },
        { "scalars", { 0x93, 0xc0, 0xc3, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0 }, 12, 0, 0 },
        { "bin at cap", { 0xc4, 0x02, 1, 2 }, 4, 0, 0 },
        { "negative ints", { 0x92, 0xff, 0xd3, 1, 2, 3, 4, 5, 6, 7, 8 }, 11, 0, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct proto_diag d = { 0 };
        int got = mpwalk_check(cases[i].in, cases[i].n, &lim, &d);
        if (got != cases[i].want)
            fail_msg("%s: got %d (%s), want %d (%s); %s", cases[i].name, got, proto_err_name(got),
                     cases[i].want, proto_err_name(cases[i].want), d.msg);
        if (got != 0 && d.offset != cases[i].off)
            fail_msg("%s: offset %zu, want %zu; %s", cases[i].name, d.offset, cases[i].off, d.msg);
    }
}

/* The exact five bytes of the issue, and the message a user reads. */
static void test_mpwalk_dd_ff_ff_ff_ff(void **state)
{
    static const uint8_t in[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
    struct proto_diag d = { 0 };

    assert_int_equal(mpwalk_check(in, sizeof(in), &lim, &d), PROTO_E_MSGPACK_CNT);
    assert_int_equal(d.code, PROTO_E_MSGPACK_CNT);
    assert_string_equal(d.msg, "array of 4294967295 items in 0 bytes");
    assert_true(proto_err_is_peer_fault(d.code));
}

/* Item budget: a flat array of 64 is fine, 65 is over (root counts too). */
static void test_mpwalk_items(void **state)
{
    uint8_t buf[80] = { 0xdc, 0x00, 63 };
    struct proto_diag d;

    assert_int_equal(mpwalk_check(buf, 3 + 63, &lim, &d), 0);
    buf[2] = 64;
    assert_int_equal(mpwalk_check(buf, 3 + 64, &lim, &d), PROTO_E_LIMIT);
    assert_int_equal(mpwalk_check(NULL, 1, &lim, &d), PROTO_E_ARG);
    assert_int_equal(mpwalk_check(buf, 1, NULL, &d), PROTO_E_ARG);
}

/* Random bytes never crash the walker, and whatever it admits is exactly
 * one object that msgpack-c would also accept in full (checked in
 * test_msg.c); here: no read past n (ASan) and a deterministic verdict. */
static void test_mpwalk_random(void **state)
{
    uint8_t buf[64];

    rng_state = 12345;
    for (int i = 0; i < 200000; i++) {
        size_t n = rng() % sizeof(buf);
        for (size_t j = 0; j < n; j++)
            buf[j] = (uint8_t)rng();
        uint8_t *copy = malloc(n ? n : 1);   /* exact-size buffer: ASan sees overreads */
        memcpy(copy, buf, n);
        int a = mpwalk_check(copy, n, &lim, NULL), b = mpwalk_check(copy, n, &lim, NULL);
        assert_int_equal(a, b);
        assert_true(a == 0 || proto_err_is_peer_fault(a));
        free(copy);
    }
}

static void test_err_classes(void **state)
{
    assert_false(proto_err_is_peer_fault(0));
    assert_false(proto_err_is_peer_fault(PROTO_E_NEED_MORE));
    assert_false(proto_err_is_peer_fault(PROTO_E_NOMEM));
    assert_false(proto_err_is_peer_fault(PROTO_E_ARG));
    assert_false(proto_err_is_peer_fault(PROTO_E_ENCODE));
    assert_true(proto_err_is_peer_fault(PROTO_E_FRAME_LEN));
    assert_true(proto_err_is_peer_fault(PROTO_E_AUTH));
    assert_string_equal(proto_err_name(PROTO_E_MSGPACK_CNT), "PROTO_E_MSGPACK_CNT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peek_table),
        cmocka_unit_test(test_put_header),
        cmocka_unit_test(test_reader_random_splits),
        cmocka_unit_test(test_reader_bad_length_is_sticky),
        cmocka_unit_test(test_reader_set_max),
        cmocka_unit_test(test_reader_no_alloc_from_claims),
        cmocka_unit_test(test_mpwalk_table),
        cmocka_unit_test(test_mpwalk_dd_ff_ff_ff_ff),
        cmocka_unit_test(test_mpwalk_items),
        cmocka_unit_test(test_mpwalk_random),
        cmocka_unit_test(test_err_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
