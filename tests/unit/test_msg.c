/* tests/unit/test_msg.c: message codecs: known answers, every error code,
 * round trips over random messages, truncated prefixes, bit flips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "frame.h"
#include "msg.h"

/* xorshift64*: the tests' own seeded PRNG. */
static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static size_t rnd(size_t lo, size_t hi)   /* uniform in [lo, hi] */
{
    return lo + (size_t)(rng() % (hi - lo + 1));
}

/* ---- a tiny msgpack builder for hand-made (often wrong) bodies ----
 * fmt: M<n> map of n pairs (count from the int arg), A array (int arg),
 * s str (const char *), u uint64_t, i int64_t, b bin (const void *, size_t),
 * n nil, f double. Returns a malloc'd body; *len its size. */
static uint8_t *mp(size_t *len, const char *fmt, ...)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    va_list ap;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    va_start(ap, fmt);
    for (const char *c = fmt; *c; c++) {
        switch (*c) {
        case 'M': msgpack_pack_map(&pk, (size_t)va_arg(ap, int)); break;
        case 'A': msgpack_pack_array(&pk, (size_t)va_arg(ap, int)); break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            msgpack_pack_str(&pk, strlen(s));
            msgpack_pack_str_body(&pk, s, strlen(s));
            break;
        }
        case 'u': msgpack_pack_uint64(&pk, va_arg(ap, uint64_t)); break;
        case 'i': msgpack_pack_int64(&pk, va_arg(ap, int64_t)); break;
        case 'b': {
            const void *p = va_arg(ap, const void *);
            size_t n = va_arg(ap, size_t);
            msgpack_pack_bin(&pk, n);
            msgpack_pack_bin_body(&pk, p, n);
            break;
        }
        case 'n': msgpack_pack_nil(&pk); break;
        case 'f': msgpack_pack_double(&pk, va_arg(ap, double)); break;
        default: fail_msg("mp: bad format char %c", *c);
        }
    }
    va_end(ap);
    *len = sb.size;
    return (uint8_t *)msgpack_sbuffer_release(&sb);
}

static const uint8_t ID[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const uint8_t BIG[3000];

#define U(x) ((uint64_t)(x))
#define I(x) ((int64_t)(x))
#define Z(x) ((size_t)(x))

/* ---- known answers: bytes written by hand from the msgpack spec ---- */

static void test_known_bye(void **state)
{
    static const uint8_t want[] = {
        0x00, 0x00, 0x00, 0x18,                  /* body: 24 bytes */
        0x84,                                    /* map of 4 */
        0xa1, 't', 0x0a, 0xa1, 'v', 0x01,        /* t: 10 (BYE), v: 1 */
        0xa4, 'c', 'o', 'd', 'e', 0xd1, 0xff, 0x2c,   /* code: int16 -212 */
        0xa4, 't', 'e', 'x', 't', 0xa3, 'b', 'a', 'd',
    };
    struct msg m = { .type = MSG_BYE, .u.bye = { .code = PROTO_E_TYPE, .text = "bad" } };
    struct msg *back = NULL;
    uint8_t *f = NULL;
    size_t n;

    assert_int_equal(msg_encode(&m, &f, &n, NULL), 0);
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(f, want, sizeof(want));
    assert_int_equal(msg_decode(want + 4, sizeof(want) - 4, NULL, &back, NULL), 0);
    assert_int_equal(back->type, MSG_BYE);
    assert_int_equal(back->u.bye.code, -212);
    assert_string_equal(back->u.bye.text, "bad");
    msg_free(back);
    free(f);
}

static void test_known_chunk(void **state)
{
    static const uint8_t data[3] = { 0xde, 0xad, 0x00 };
    uint8_t want[4 + 1 + 6 + 3 + 34 + 4 + 3 + 5 + 2 + 3] = {
        0, 0, 0, 61, 0x85, 0xa1, 't', 0x07, 0xa1, 'v', 0x01, 0xa2, 'i', 'd', 0xc4, 32,
    };
    size_t k = 16, n, hn;
    struct msg m = { .type = MSG_CHUNK };
    uint8_t *f = NULL, head[MSG_CHUNK_HEAD_MAX];

    memcpy(want + k, ID, 32);
    k += 32;
    memcpy(want + k, "\xa3off\xcd\x01\x00\xa4" "data\xc4\x03\xde\xad\x00", 17);
    assert_int_equal(k + 17, sizeof(want));
    memcpy(m.u.chunk.id, ID, 32);
    m.u.chunk.off = 256;
    m.u.chunk.data = (struct msg_bytes){ data, 3 };
    assert_int_equal(msg_encode(&m, &f, &n, NULL), 0);
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(f, want, n);
    /* the zero-copy head is the same frame minus its data */
    assert_int_equal(msg_chunk_head(head, sizeof(head), &hn, ID, 256, 3), 0);
    assert_int_equal(hn, n - 3);
    assert_memory_equal(head, want, hn);
    free(f);
}

/* ---- every decode error, from hand-made bodies ---- */

struct bad_case {
    const char *name;
    uint8_t *body;
    size_t n;
    int want;
    const char *msg_has;   /* substring of d.msg */
    int preauth;
};

static void run_bad(struct bad_case *c, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        struct proto_diag d = { 0 };
        struct msg *m = (struct msg *)1;
        int got = msg_decode(c[i].body, c[i].n, c[i].preauth ? &msg_limits_preauth : NULL, &m, &d);
        if (got != c[i].want)
            fail_msg("%s: got %d (%s), want %d (%s); %s", c[i].name, got, proto_err_name(got),
                     c[i].want, proto_err_name(c[i].want), d.msg);
        if (got != 0 && m != NULL)
            fail_msg("%s: *out not cleared on error", c[i].name);
        if (c[i].msg_has != NULL && strstr(d.msg, c[i].msg_has) == NULL)
            fail_msg("%s: diag \"%s\" lacks \"%s\"", c[i].name, d.msg, c[i].msg_has);
        if (got != 0 && !proto_err_is_peer_fault(got))
            fail_msg("%s: %s is not a peer fault", c[i].name, proto_err_name(got));
        msg_free(m);
        free(c[i].body);
    }
}

#define CASE(nm, want, has, ...) { nm, NULL, 0, want, has, 0 }
static void test_decode_errors(void **state)
{
    struct bad_case c[] = {
        CASE("not a map", PROTO_E_NOT_MAP, "array"),
        CASE("version 2", PROTO_E_VERSION, "version 2"),
        CASE("version as str", PROTO_E_FIELD_TYPE, "frame.v: str"),
        CASE("unknown type 11", PROTO_E_TYPE, "type 11"),
        CASE("type 0", PROTO_E_TYPE, "type 0"),
        CASE("missing t", PROTO_E_FIELD_MISSING, "\"t\""),
        CASE("negative type", PROTO_E_FIELD_TYPE, "frame.t: int"),
        CASE("duplicate key", PROTO_E_DUP_FIELD, "\"v\" appears twice"),
        CASE("int key", PROTO_E_FIELD_TYPE, "key #2"),
        CASE("hello id 31 bytes", PROTO_E_FIELD_VALUE, "HELLO.id: 31 bytes"),
        CASE("hello addr no port", PROTO_E_FIELD_VALUE, "HELLO.addr"),
        CASE("hello addr port 0", PROTO_E_FIELD_VALUE, "HELLO.addr"),
        CASE("hello pk empty", PROTO_E_FIELD_VALUE, "HELLO.pk: 0 bytes"),
        CASE("hello missing pk", PROTO_E_FIELD_MISSING, "HELLO: field \"pk\""),
        CASE("hello nonce as str", PROTO_E_FIELD_TYPE, "HELLO.nonce: str, want bin"),
        CASE("digest upper domain", PROTO_E_FIELD_VALUE, "\"Gpt2\""),
        CASE("digest path domain", PROTO_E_FIELD_VALUE, "\"../etc\""),
        CASE("digest domain 65", PROTO_E_FIELD_VALUE, "ads[].domain"),
        CASE("digest entry arity", PROTO_E_FIELD_TYPE, "DIGEST.ads[0]: array of 4"),
        CASE("digest size 0", PROTO_E_FIELD_VALUE, "ads[].size"),
        CASE("digest acc > u32", PROTO_E_FIELD_VALUE, "ads[].acc"),
        CASE("want from at cap", PROTO_E_FIELD_VALUE, "ids[].from"),
        CASE("offer empty", PROTO_E_FIELD_VALUE, "OFFER.ids: 0 entries"),
        CASE("offer 4097 ids", PROTO_E_LIMIT, "4097 entries"),
        CASE("chunk no data", PROTO_E_FIELD_VALUE, "CHUNK.data: 0 bytes"),
        CASE("chunk past 2^40", PROTO_E_FIELD_VALUE, "over"),
        CASE("chunk off float", PROTO_E_FIELD_TYPE, "CHUNK.off: float"),
        CASE("vote sig 1025", PROTO_E_FIELD_VALUE, "VOTE.sig: 1025 bytes"),
        CASE("peers empty addr", PROTO_E_FIELD_VALUE, "peers[].addr"),
        CASE("bye code 1", PROTO_E_FIELD_VALUE, "BYE.code"),
        CASE("bye text newline", PROTO_E_FIELD_VALUE, "BYE.text"),
        CASE("33 keys", PROTO_E_LIMIT, "33 keys"),
        CASE("preauth: hello pk 3000", PROTO_E_LIMIT, "bin of 3000 bytes"),
        CASE("preauth: digest nests", PROTO_E_MSGPACK_DEPTH, "depth 2"),
        CASE("manifest nil cfg", PROTO_E_FIELD_TYPE, "MANIFEST.cfg: nil"),
        CASE("want vh 2 entries for 1 vid", PROTO_E_FIELD_VALUE, "WANT.vh: 2 entries for 1 vids"),
        CASE("want vh tag of 15 bytes", PROTO_E_FIELD_VALUE, "WANT.vh[0]: 15 bytes"),
        CASE("want vh tags descending", PROTO_E_FIELD_VALUE, "not ascending"),
        CASE("want vh tag twice", PROTO_E_FIELD_VALUE, "not ascending"),
        CASE("want vh 257 tags", PROTO_E_FIELD_VALUE, "WANT.vh[]: 4112 bytes"),
        CASE("want vh entry str", PROTO_E_FIELD_TYPE, "WANT.vh[]: str, want bin"),
        CASE("want vh not array", PROTO_E_FIELD_TYPE, "WANT.vh: bin, want array"),
        CASE("digest vs 0 entries for 1 ad", PROTO_E_FIELD_VALUE, "DIGEST.vs: 0 entries for 1 ads"),
        CASE("digest vs negative", PROTO_E_FIELD_TYPE, "DIGEST.vs[]: int, want uint"),
    };
    uint8_t tags[2 * MSG_VTAG_LEN], many[(MSG_VHAVE_MAX + 1) * MSG_VTAG_LEN];
    size_t i = 0;
    char dom65[66];

    memset(dom65, 'a', 65);
    dom65[65] = '\0';

    c[i].body = mp(&c[i].n, "A", 0), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su", 2, "t", U(10), "v", U(2)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "ss", 2, "t", U(10), "v", "1"), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su", 2, "t", U(11), "v", U(1)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su", 2, "t", U(0), "v", U(1)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su", 2, "x", U(1), "v", U(1)), i++;
    c[i].body = mp(&c[i].n, "M" "si" "su", 2, "t", I(-1), "v", U(1)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "su", 3, "t", U(10), "v", U(1), "v", U(1)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "uu", 3, "t", U(10), "v", U(1), U(5), U(1)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "sb" "sb" "ss" "sb", 6, "t", U(1), "v", U(1), "id", ID, Z(31),
                   "nonce", ID, Z(32), "addr", "h:1", "pk", ID, Z(8)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "sb" "sb" "ss" "sb", 6, "t", U(1), "v", U(1), "id", ID, Z(32),
                   "nonce", ID, Z(32), "addr", "host", "pk", ID, Z(8)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "sb" "sb" "ss" "sb", 6, "t", U(1), "v", U(1), "id", ID, Z(32),
                   "nonce", ID, Z(32), "addr", "host:0", "pk", ID, Z(8)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "sb" "sb" "ss" "sb", 6, "t", U(1), "v", U(1), "id", ID, Z(32),
                   "nonce", ID, Z(32), "addr", "", "pk", ID, Z(0)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "sb" "sb" "ss", 5, "t", U(1), "v", U(1), "id", ID, Z(32),
                   "nonce", ID, Z(32), "addr", "[::1]:9000"), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "sb" "ss" "ss" "sb", 6, "t", U(1), "v", U(1), "id", ID, Z(32),
                   "nonce", "abc", "addr", "", "pk", ID, Z(8)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "su" "sb" "sA" "Absuuu", 5, "t", U(3), "v", U(1), "r", U(0),
                   "mh", ID, Z(32), "ads", 1, 5, ID, Z(32), "Gpt2", U(1), U(1), U(0)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "su" "sb" "sA" "Absuuu", 5, "t", U(3), "v", U(1), "r", U(0),
                   "mh", ID, Z(32), "ads", 1, 5, ID, Z(32), "../etc", U(1), U(1), U(0)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "su" "sb" "sA" "Absuuu", 5, "t", U(3), "v", U(1), "r", U(0),
                   "mh", ID, Z(32), "ads", 1, 5, ID, Z(32), dom65, U(1), U(1), U(0)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "su" "sb" "sA" "Absuu", 5, "t", U(3), "v", U(1), "r", U(0),
                   "mh", ID, Z(32), "ads", 1, 4, ID, Z(32), "gpt2", U(1), U(1)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "su" "sb" "sA" "Absuuu", 5, "t", U(3), "v", U(1), "r", U(0),
                   "mh", ID, Z(32), "ads", 1, 5, ID, Z(32), "gpt2", U(0), U(1), U(0)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "su" "sb" "sA" "Absuuu", 5, "t", U(3), "v", U(1), "r", U(0),
                   "mh", ID, Z(32), "ads", 1, 5, ID, Z(32), "gpt2", U(9), U(1) << 32, U(0)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "sA" "Abu" "sA", 4, "t", U(4), "v", U(1), "ids", 1, 2,
                   ID, Z(32), MSG_SIZE_MAX, "vids", 0), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "sA", 3, "t", U(5), "v", U(1), "ids", 0), i++;
    {
        /* 4097 ids: built by hand, the builder has no repeat */
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        msgpack_pack_str(&pk, 1), msgpack_pack_str_body(&pk, "t", 1), msgpack_pack_uint8(&pk, 5);
        msgpack_pack_str(&pk, 1), msgpack_pack_str_body(&pk, "v", 1), msgpack_pack_uint8(&pk, 1);
        msgpack_pack_str(&pk, 3), msgpack_pack_str_body(&pk, "ids", 3);
        msgpack_pack_array(&pk, 4097);
        for (int k = 0; k < 4097; k++)
            msgpack_pack_bin(&pk, 32), msgpack_pack_bin_body(&pk, ID, 32);
        c[i].n = sb.size;
        c[i].body = (uint8_t *)msgpack_sbuffer_release(&sb), i++;
    }
    c[i].body = mp(&c[i].n, "M" "su" "su" "sb" "su" "sb", 5, "t", U(7), "v", U(1), "id", ID, Z(32),
                   "off", U(0), "data", ID, Z(0)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "sb" "su" "sb", 5, "t", U(7), "v", U(1), "id", ID, Z(32),
                   "off", MSG_SIZE_MAX - 2, "data", ID, Z(3)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "sb" "sf" "sb", 5, "t", U(7), "v", U(1), "id", ID, Z(32),
                   "off", 1.0, "data", ID, Z(3)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "sb" "sb" "sb" "sb", 6, "t", U(8), "v", U(1), "id", ID, Z(32),
                   "by", ID, Z(32), "body", ID, Z(8), "sig", BIG, Z(1025)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "sA" "Abs", 3, "t", U(9), "v", U(1), "peers", 1, 2, ID, Z(32),
                   ""), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "si" "ss", 4, "t", U(10), "v", U(1), "code", I(1), "text",
                   ""), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "si" "ss", 4, "t", U(10), "v", U(1), "code", I(-212), "text",
                   "a\nb"), i++;
    {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        char k[8];
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 33);
        for (int j = 0; j < 33; j++) {
            int kn = snprintf(k, sizeof(k), "k%d", j);
            msgpack_pack_str(&pk, (size_t)kn), msgpack_pack_str_body(&pk, k, (size_t)kn);
            msgpack_pack_uint8(&pk, 1);
        }
        c[i].n = sb.size;
        c[i].body = (uint8_t *)msgpack_sbuffer_release(&sb), i++;
    }
    c[i].body = mp(&c[i].n, "M" "su" "su" "sb" "sb" "ss" "sb", 6, "t", U(1), "v", U(1), "id", ID, Z(32),
                   "nonce", ID, Z(32), "addr", "", "pk", BIG, Z(3000)), c[i].preauth = 1, i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "su" "sb" "sA" "Absuuu", 5, "t", U(3), "v", U(1), "r", U(0),
                   "mh", ID, Z(32), "ads", 1, 5, ID, Z(32), "gpt2", U(1), U(1), U(0)),
        c[i].preauth = 1, i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "sb" "ss" "su" "sn" "sb", 7, "t", U(6), "v", U(1), "id", ID,
                   Z(32), "dom", "gpt2", "size", U(10), "cfg", "man", ID, Z(1)), i++;
    memset(tags, 0, sizeof(tags));
    tags[MSG_VTAG_LEN] = 1;                         /* tag 1 > tag 0 */
    for (size_t k = 0; k <= MSG_VHAVE_MAX; k++)     /* ascending, one too many */
        memset(many + k * MSG_VTAG_LEN, 0, MSG_VTAG_LEN), many[k * MSG_VTAG_LEN] = (uint8_t)(k >> 8),
        many[k * MSG_VTAG_LEN + 1] = (uint8_t)k;
    c[i].body = mp(&c[i].n, "M" "su" "su" "sA" "sAb" "sAbb", 5, "t", U(4), "v", U(1), "ids", 0, "vids", 1,
                   ID, Z(32), "vh", 2, tags, Z(16), tags, Z(16)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "sA" "sAb" "sAb", 5, "t", U(4), "v", U(1), "ids", 0, "vids", 1,
                   ID, Z(32), "vh", 1, tags, Z(15)), i++;
    {   /* descending: tag 1 then tag 0 */
        uint8_t desc[2 * MSG_VTAG_LEN];
        memcpy(desc, tags + MSG_VTAG_LEN, MSG_VTAG_LEN);
        memcpy(desc + MSG_VTAG_LEN, tags, MSG_VTAG_LEN);
        c[i].body = mp(&c[i].n, "M" "su" "su" "sA" "sAb" "sAb", 5, "t", U(4), "v", U(1), "ids", 0,
                       "vids", 1, ID, Z(32), "vh", 1, desc, Z(32)), i++;
    }
    {   /* the same tag twice */
        uint8_t twice[2 * MSG_VTAG_LEN];
        memcpy(twice, tags + MSG_VTAG_LEN, MSG_VTAG_LEN);
        memcpy(twice + MSG_VTAG_LEN, tags + MSG_VTAG_LEN, MSG_VTAG_LEN);
        c[i].body = mp(&c[i].n, "M" "su" "su" "sA" "sAb" "sAb", 5, "t", U(4), "v", U(1), "ids", 0,
                       "vids", 1, ID, Z(32), "vh", 1, twice, Z(32)), i++;
    }
    c[i].body = mp(&c[i].n, "M" "su" "su" "sA" "sAb" "sAb", 5, "t", U(4), "v", U(1), "ids", 0, "vids", 1,
                   ID, Z(32), "vh", 1, many, sizeof(many)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "sA" "sAb" "sAs", 5, "t", U(4), "v", U(1), "ids", 0, "vids", 1,
                   ID, Z(32), "vh", 1, "tags"), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "sA" "sAb" "sb", 5, "t", U(4), "v", U(1), "ids", 0, "vids", 1,
                   ID, Z(32), "vh", tags, Z(16)), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "su" "sb" "sA" "Absuuu" "sA", 6, "t", U(3), "v", U(1), "r", U(0),
                   "mh", ID, Z(32), "ads", 1, 5, ID, Z(32), "gpt2", U(1), U(1), U(0), "vs", 0), i++;
    c[i].body = mp(&c[i].n, "M" "su" "su" "su" "sb" "sA" "Absuuu" "sAi", 6, "t", U(3), "v", U(1), "r", U(0),
                   "mh", ID, Z(32), "ads", 1, 5, ID, Z(32), "gpt2", U(1), U(1), U(0), "vs", 1, I(-5)), i++;
    assert_int_equal(i, sizeof(c) / sizeof(c[0]));
    run_bad(c, i);
}

/* ---- random messages ---- */

/* Backing store for one generated message's byte fields and lists. */
struct pool {
    uint8_t bytes[4][MSG_CHUNK_MAX];
    struct msg_ad ads[MSG_LIST_MAX];
    struct msg_want_item want[MSG_LIST_MAX];
    msg_id ids[MSG_LIST_MAX];
    struct msg_peer peers[MSG_LIST_MAX];
    uint64_t vsets[MSG_LIST_MAX];
    struct msg_bytes vh[MSG_LIST_MAX];
    uint8_t tags[MSG_VHAVE_MAX * MSG_VTAG_LEN];   /* ascending: each vh entry is a prefix */
};

static void rand_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rng();
}

/* WANT.vh for n vids: random-length prefixes of one ascending tag list,
 * sometimes the whole MSG_VHAVE_MAX. */
static void rand_vhave(struct pool *pl, size_t n)
{
    for (size_t k = 0; k < MSG_VHAVE_MAX; k++) {
        rand_bytes(pl->tags + k * MSG_VTAG_LEN, MSG_VTAG_LEN);
        pl->tags[k * MSG_VTAG_LEN] = (uint8_t)(k >> 8);
        pl->tags[k * MSG_VTAG_LEN + 1] = (uint8_t)k;
    }
    for (size_t i = 0; i < n; i++)
        pl->vh[i] = (struct msg_bytes){ pl->tags,
                                        (rng() % 8 == 0 ? MSG_VHAVE_MAX : rnd(0, 5)) * MSG_VTAG_LEN };
}

static struct msg_bytes rand_field(struct pool *pl, int slot, size_t lo, size_t hi)
{
    size_t n = rnd(lo, hi);
    rand_bytes(pl->bytes[slot], n);
    return (struct msg_bytes){ pl->bytes[slot], n };
}

static void rand_domain(char *out)
{
    static const char first[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    static const char rest[] = "abcdefghijklmnopqrstuvwxyz0123456789._-";
    size_t n = rng() % 8 == 0 ? MSG_DOMAIN_MAX : rnd(1, 20);

    out[0] = first[rng() % (sizeof(first) - 1)];
    for (size_t i = 1; i < n; i++)
        out[i] = rest[rng() % (sizeof(rest) - 1)];
    out[n] = '\0';
}

static void rand_addr(char *out)
{
    switch (rng() % 3) {
    case 0: snprintf(out, MSG_ADDR_MAX + 1, "10.%u.%u.%u:%u", (unsigned)(rng() % 256),
                     (unsigned)(rng() % 256), (unsigned)(rng() % 256), (unsigned)rnd(1, 65535)); break;
    case 1: snprintf(out, MSG_ADDR_MAX + 1, "[fe80::%x]:%u", (unsigned)(rng() % 65536),
                     (unsigned)rnd(1, 65535)); break;
    default: snprintf(out, MSG_ADDR_MAX + 1, "node-%u.lab.example:%u", (unsigned)(rng() % 1000),
                      (unsigned)rnd(1, 65535)); break;
    }
}

/* List length: mostly small, sometimes the maximum (big=1 allows it). */
static size_t rand_count(size_t lo, int big)
{
    return big && rng() % 16 == 0 ? MSG_LIST_MAX : rnd(lo, 12);
}

/* A random valid message of `type`; byte fields up to `maxb` bytes. */
static void rand_msg(struct msg *m, int type, struct pool *pl, size_t maxb, int big)
{
    memset(m, 0, sizeof(*m));
    m->type = (enum msg_type)type;
    switch (type) {
    case MSG_HELLO:
        rand_bytes(m->u.hello.id, 32), rand_bytes(m->u.hello.nonce, 32);
        if (rng() % 4) rand_addr(m->u.hello.addr);
        m->u.hello.pk = rand_field(pl, 0, 1, maxb < MSG_PK_MAX ? maxb : MSG_PK_MAX);
        break;
    case MSG_HELLO_ACK: m->u.hello_ack.sig = rand_field(pl, 0, 1, maxb < MSG_SIG_MAX ? maxb : MSG_SIG_MAX); break;
    case MSG_DIGEST:
        m->u.digest.round = rng(), rand_bytes(m->u.digest.members, 32);
        m->u.digest.n_ads = rand_count(0, big), m->u.digest.ads = pl->ads;
        for (size_t i = 0; i < m->u.digest.n_ads; i++) {
            rand_bytes(pl->ads[i].id, 32), rand_domain(pl->ads[i].domain);
            pl->ads[i].size = 1 + rng() % MSG_SIZE_MAX;
            pl->ads[i].acc = (uint32_t)rng(), pl->ads[i].rej = (uint32_t)(rng() % 3);
            pl->vsets[i] = rng() >> (rng() % 64);   /* every msgpack uint width */
        }
        if (m->u.digest.n_ads > 0 && rng() % 2)
            m->u.digest.vsets = pl->vsets;
        break;
    case MSG_WANT:
        m->u.want.n_ids = rand_count(0, big), m->u.want.ids = pl->want;
        for (size_t i = 0; i < m->u.want.n_ids; i++)
            rand_bytes(pl->want[i].id, 32), pl->want[i].from = rng() % MSG_SIZE_MAX;
        m->u.want.n_vids = rand_count(0, big), m->u.want.vids = pl->ids;
        rand_bytes((uint8_t *)pl->ids, m->u.want.n_vids * 32);
        if (m->u.want.n_vids > 0 && rng() % 2) {
            rand_vhave(pl, m->u.want.n_vids);
            m->u.want.vhave = pl->vh;
        }
        break;
    case MSG_OFFER:
        m->u.offer.n_ids = rand_count(1, big), m->u.offer.ids = pl->ids;
        rand_bytes((uint8_t *)pl->ids, m->u.offer.n_ids * 32);
        break;
    case MSG_MANIFEST:
        rand_bytes(m->u.manifest.id, 32), rand_domain(m->u.manifest.domain);
        m->u.manifest.size = 1 + rng() % MSG_SIZE_MAX;
        m->u.manifest.config = rand_field(pl, 0, 0, maxb < MSG_META_MAX ? maxb : MSG_META_MAX);
        m->u.manifest.manifest = rand_field(pl, 1, 0, maxb < MSG_META_MAX ? maxb : MSG_META_MAX);
        break;
    case MSG_CHUNK:
        rand_bytes(m->u.chunk.id, 32);
        m->u.chunk.data = rand_field(pl, 0, 1, maxb);
        m->u.chunk.off = rng() % (MSG_SIZE_MAX - m->u.chunk.data.n + 1);
        break;
    case MSG_VOTE:
        rand_bytes(m->u.vote.id, 32), rand_bytes(m->u.vote.by, 32);
        m->u.vote.body = rand_field(pl, 0, 1, maxb < MSG_VOTE_MAX ? maxb : MSG_VOTE_MAX);
        m->u.vote.sig = rand_field(pl, 1, 1, maxb < MSG_SIG_MAX ? maxb : MSG_SIG_MAX);
        break;
    case MSG_PEERS:
        m->u.peers.n = rand_count(0, big), m->u.peers.peers = pl->peers;
        for (size_t i = 0; i < m->u.peers.n; i++)
            rand_bytes(pl->peers[i].id, 32), rand_addr(pl->peers[i].addr);
        break;
    default:
        m->u.bye.code = rng() % 2 ? 0 : -(int32_t)rnd(201, 299);
        for (size_t i = 0, n = rnd(0, MSG_TEXT_MAX); i < n; i++)
            m->u.bye.text[i] = (char)rnd(0x20, 0x7e);
        break;
    }
}

static int bytes_eq(struct msg_bytes a, struct msg_bytes b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* Field-by-field equality of two messages (list order matters). */
static int msg_eq(const struct msg *a, const struct msg *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case MSG_HELLO:
        return !memcmp(a->u.hello.id, b->u.hello.id, 32) && !memcmp(a->u.hello.nonce, b->u.hello.nonce, 32) &&
               !strcmp(a->u.hello.addr, b->u.hello.addr) && bytes_eq(a->u.hello.pk, b->u.hello.pk);
    case MSG_HELLO_ACK: return bytes_eq(a->u.hello_ack.sig, b->u.hello_ack.sig);
    case MSG_DIGEST:
        if (a->u.digest.round != b->u.digest.round || a->u.digest.n_ads != b->u.digest.n_ads ||
            memcmp(a->u.digest.members, b->u.digest.members, 32))
            return 0;
        for (size_t i = 0; i < a->u.digest.n_ads; i++) {
            const struct msg_ad *x = &a->u.digest.ads[i], *y = &b->u.digest.ads[i];
            if (memcmp(x->id, y->id, 32) || strcmp(x->domain, y->domain) || x->size != y->size ||
                x->acc != y->acc || x->rej != y->rej)
                return 0;
        }
        if ((a->u.digest.vsets == NULL) != (b->u.digest.vsets == NULL))
            return 0;
        return a->u.digest.vsets == NULL ||
               !memcmp(a->u.digest.vsets, b->u.digest.vsets, 8 * a->u.digest.n_ads);
    case MSG_WANT:
        if (a->u.want.n_ids != b->u.want.n_ids || a->u.want.n_vids != b->u.want.n_vids ||
            (a->u.want.n_vids && memcmp(a->u.want.vids, b->u.want.vids, 32 * a->u.want.n_vids)))
            return 0;
        for (size_t i = 0; i < a->u.want.n_ids; i++)
            if (memcmp(a->u.want.ids[i].id, b->u.want.ids[i].id, 32) ||
                a->u.want.ids[i].from != b->u.want.ids[i].from)
                return 0;
        if ((a->u.want.vhave == NULL) != (b->u.want.vhave == NULL))
            return 0;
        for (size_t i = 0; a->u.want.vhave != NULL && i < a->u.want.n_vids; i++)
            if (!bytes_eq(a->u.want.vhave[i], b->u.want.vhave[i]))
                return 0;
        return 1;
    case MSG_OFFER:
        return a->u.offer.n_ids == b->u.offer.n_ids &&
               !memcmp(a->u.offer.ids, b->u.offer.ids, 32 * a->u.offer.n_ids);
    case MSG_MANIFEST:
        return !memcmp(a->u.manifest.id, b->u.manifest.id, 32) &&
               !strcmp(a->u.manifest.domain, b->u.manifest.domain) &&
               a->u.manifest.size == b->u.manifest.size &&
               bytes_eq(a->u.manifest.config, b->u.manifest.config) &&
               bytes_eq(a->u.manifest.manifest, b->u.manifest.manifest);
    case MSG_CHUNK:
        return !memcmp(a->u.chunk.id, b->u.chunk.id, 32) && a->u.chunk.off == b->u.chunk.off &&
               bytes_eq(a->u.chunk.data, b->u.chunk.data);
    case MSG_VOTE:
        return !memcmp(a->u.vote.id, b->u.vote.id, 32) && !memcmp(a->u.vote.by, b->u.vote.by, 32) &&
               bytes_eq(a->u.vote.body, b->u.vote.body) && bytes_eq(a->u.vote.sig, b->u.vote.sig);
    case MSG_PEERS:
        if (a->u.peers.n != b->u.peers.n)
            return 0;
        for (size_t i = 0; i < a->u.peers.n; i++)
            if (memcmp(a->u.peers.peers[i].id, b->u.peers.peers[i].id, 32) ||
                strcmp(a->u.peers.peers[i].addr, b->u.peers.peers[i].addr))
                return 0;
        return 1;
    case MSG_BYE:
        return a->u.bye.code == b->u.bye.code && !strcmp(a->u.bye.text, b->u.bye.text);
    }
    return 0;
}

/* Encode -> frame_peek -> decode -> equal, re-encode -> same bytes. */
static void round_trip(const struct msg *m, const struct mpwalk_limits *lim, size_t iter)
{
    struct proto_diag d = { 0 };
    struct msg *back = NULL;
    uint8_t *f = NULL, *f2 = NULL;
    size_t n, n2;
    int rc;

    if ((rc = msg_encode(m, &f, &n, &d)) != 0)
        fail_msg("iter %zu %s: encode %s: %s", iter, msg_type_name(m->type), proto_err_name(rc), d.msg);
    assert_int_equal(frame_peek(f, n, FRAME_MAX, &d), (ptrdiff_t)n);
    if ((rc = msg_decode(f + 4, n - 4, lim, &back, &d)) != 0)
        fail_msg("iter %zu %s: decode %s: %s", iter, msg_type_name(m->type), proto_err_name(rc), d.msg);
    if (!msg_eq(m, back))
        fail_msg("iter %zu %s: decoded message differs", iter, msg_type_name(m->type));
    assert_int_equal(msg_encode(back, &f2, &n2, &d), 0);
    assert_int_equal(n2, n);
    assert_memory_equal(f2, f, n);
    msg_free(back);
    free(f);
    free(f2);
}

static void test_round_trip_random(void **state)
{
    struct pool *pl = malloc(sizeof(*pl));

    assert_non_null(pl);
    rng_state = 0x5eed0001;
    for (size_t it = 0; it < 3000; it++) {
        struct msg m;
        int type = (int)rnd(1, MSG_TYPE_MAX);
        size_t maxb = it % 50 == 0 ? MSG_CHUNK_MAX : 600;
        rand_msg(&m, type, pl, maxb, 1);
        round_trip(&m, NULL, it);
    }
    free(pl);
}

/* HELLO and HELLO_ACK at their largest fit the pre-auth limits. */
static void test_preauth_fits(void **state)
{
    struct pool *pl = malloc(sizeof(*pl));
    struct msg m;

    assert_non_null(pl);
    rng_state = 77;
    rand_msg(&m, MSG_HELLO, pl, MSG_PK_MAX, 0);
    rand_bytes(pl->bytes[0], MSG_PK_MAX);
    m.u.hello.pk.n = MSG_PK_MAX;
    memset(m.u.hello.addr, 'a', MSG_ADDR_MAX - 6);
    memcpy(m.u.hello.addr + MSG_ADDR_MAX - 6, ":65535", 7);
    round_trip(&m, &msg_limits_preauth, 0);
    rand_msg(&m, MSG_HELLO_ACK, pl, MSG_SIG_MAX, 0);
    rand_bytes(pl->bytes[0], MSG_SIG_MAX);
    m.u.hello_ack.sig.n = MSG_SIG_MAX;
    round_trip(&m, &msg_limits_preauth, 1);
    rand_msg(&m, MSG_BYE, pl, 0, 0);
    round_trip(&m, &msg_limits_preauth, 2);
    free(pl);
}

/* Every strict prefix of every valid body is rejected (never success, never
 * a crash); every strict prefix of the frame is NEED_MORE. */
static void test_truncated_prefixes(void **state)
{
    struct pool *pl = malloc(sizeof(*pl));

    assert_non_null(pl);
    rng_state = 0x7a11;
    for (size_t it = 0; it < 300; it++) {
        struct msg m, *back = NULL;
        uint8_t *f = NULL;
        size_t n;
        rand_msg(&m, (int)(1 + it % MSG_TYPE_MAX), pl, 80, 0);
        assert_int_equal(msg_encode(&m, &f, &n, NULL), 0);
        for (size_t k = 0; k < n; k++) {
            uint8_t *cut = malloc(k ? k : 1);   /* exact size: ASan catches overreads */
            memcpy(cut, f, k);
            assert_int_equal(frame_peek(cut, k, FRAME_MAX, NULL), PROTO_E_NEED_MORE);
            if (k > 4) {
                struct proto_diag d = { 0 };
                int rc = msg_decode(cut + 4, k - 4, NULL, &back, &d);
                if (rc == 0 || !proto_err_is_peer_fault(rc))
                    fail_msg("%s prefix %zu/%zu: %s", msg_type_name(m.type), k - 4, n - 4,
                             proto_err_name(rc));
                assert_null(back);
            }
            free(cut);
        }
        free(f);
    }
    free(pl);
}

/* Every single-bit flip of small valid bodies: no crash, no leak, and only
 * peer-fault codes; a flip that still decodes re-encodes to valid bytes. */
static void test_bit_flips(void **state)
{
    struct pool *pl = malloc(sizeof(*pl));

    assert_non_null(pl);
    rng_state = 0xf11b;
    for (size_t it = 0; it < 60; it++) {
        struct msg m;
        uint8_t *f = NULL;
        size_t n;
        rand_msg(&m, (int)(1 + it % MSG_TYPE_MAX), pl, 40, 0);
        assert_int_equal(msg_encode(&m, &f, &n, NULL), 0);
        for (size_t bit = 0; bit < (n - 4) * 8; bit++) {
            struct msg *back = NULL;
            uint8_t *g = NULL;
            size_t gn;
            f[4 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
            int rc = msg_decode(f + 4, n - 4, NULL, &back, NULL);
            if (rc == 0) {
                assert_int_equal(msg_encode(back, &g, &gn, NULL), 0);
                free(g);
            } else if (!proto_err_is_peer_fault(rc)) {
                fail_msg("flip %zu: %s", bit, proto_err_name(rc));
            }
            msg_free(back);
            f[4 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        free(f);
    }
    free(pl);
}

static void test_chunk_head_matches_encode(void **state)
{
    struct pool *pl = malloc(sizeof(*pl));

    assert_non_null(pl);
    rng_state = 0xc4c4;
    for (size_t it = 0; it < 200; it++) {
        struct msg m;
        uint8_t head[MSG_CHUNK_HEAD_MAX], *f = NULL;
        size_t n, hn;
        rand_msg(&m, MSG_CHUNK, pl, it % 20 == 0 ? MSG_CHUNK_MAX : 70000, 0);
        if (it % 3 == 0)
            m.u.chunk.off = rng() % 300;   /* small offsets: short uint encodings */
        assert_int_equal(msg_encode(&m, &f, &n, NULL), 0);
        assert_int_equal(msg_chunk_head(head, sizeof(head), &hn, m.u.chunk.id, m.u.chunk.off,
                                        m.u.chunk.data.n), 0);
        assert_int_equal(hn + m.u.chunk.data.n, n);
        assert_memory_equal(head, f, hn);
        free(f);
    }
    free(pl);
    {
        uint8_t head[MSG_CHUNK_HEAD_MAX];
        size_t hn;
        assert_int_equal(msg_chunk_head(head, sizeof(head) - 1, &hn, ID, 0, 1), PROTO_E_ARG);
        assert_int_equal(msg_chunk_head(head, sizeof(head), &hn, ID, 0, 0), PROTO_E_ARG);
        assert_int_equal(msg_chunk_head(head, sizeof(head), &hn, ID, 0, MSG_CHUNK_MAX + 1), PROTO_E_ARG);
        assert_int_equal(msg_chunk_head(head, sizeof(head), &hn, ID, MSG_SIZE_MAX - 1, 2), PROTO_E_ARG);
    }
}

/* The encoder refuses what the decoder would refuse. */
static void test_encode_refuses(void **state)
{
    static const uint8_t b[8];
    struct msg bad[] = {
        { .type = MSG_DIGEST, .u.digest = { .n_ads = 1, .ads = (struct msg_ad[]){ { .domain = "Up", .size = 1 } } } },
        { .type = MSG_DIGEST, .u.digest = { .n_ads = 1, .ads = (struct msg_ad[]){ { .domain = "ok", .size = 0 } } } },
        { .type = MSG_DIGEST, .u.digest = { .n_ads = MSG_LIST_MAX + 1, .ads = NULL } },
        { .type = MSG_OFFER, .u.offer = { .n_ids = 0 } },
        { .type = MSG_CHUNK, .u.chunk = { .off = 0, .data = { b, 0 } } },
        { .type = MSG_CHUNK, .u.chunk = { .off = MSG_SIZE_MAX, .data = { b, 1 } } },
        { .type = MSG_HELLO, .u.hello = { .addr = "nohost", .pk = { b, 8 } } },
        { .type = MSG_HELLO, .u.hello = { .addr = "", .pk = { b, 0 } } },
        { .type = MSG_HELLO_ACK, .u.hello_ack = { .sig = { NULL, 5 } } },
        { .type = MSG_VOTE, .u.vote = { .body = { b, 8 }, .sig = { b, 0 } } },
        { .type = MSG_PEERS, .u.peers = { .n = 1, .peers = (struct msg_peer[]){ { .addr = "" } } } },
        { .type = MSG_BYE, .u.bye = { .code = 3, .text = "" } },
        { .type = MSG_BYE, .u.bye = { .code = 0, .text = "tab\there" } },
        { .type = MSG_MANIFEST, .u.manifest = { .domain = "ok", .size = 1, .config = { b, MSG_META_MAX + 1 } } },
        { .type = MSG_WANT, .u.want = { .n_vids = 1, .vids = (msg_id[]){ { 0 } },
                                        .vhave = (struct msg_bytes[]){ { b, 8 } } } },   /* half a tag */
        { .type = MSG_WANT, .u.want = { .n_vids = 1, .vids = (msg_id[]){ { 0 } },
                                        .vhave = (struct msg_bytes[]){ { NULL, 16 } } } },
        { .type = MSG_WANT, .u.want = { .n_vids = 1, .vids = (msg_id[]){ { 0 } },   /* 0 == 0: not ascending */
                                        .vhave = (struct msg_bytes[]){ { (const uint8_t[32]){ 0 }, 32 } } } },
        { .type = (enum msg_type)42 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct proto_diag d = { 0 };
        uint8_t *f = (uint8_t *)1;
        size_t n = 1;
        int rc = msg_encode(&bad[i], &f, &n, &d);
        if (rc != PROTO_E_ARG || f != NULL || n != 0)
            fail_msg("case %zu (%s): got %s", i, msg_type_name(bad[i].type), proto_err_name(rc));
    }
}

static void test_field_checks(void **state)
{
    static const struct { const char *s; int domain, addr; } cases[] = {
        { "gpt2-c_attn-r8", 1, 0 }, { "a", 1, 0 }, { "", 0, 0 }, { ".hidden", 0, 0 },
        { "-x", 0, 0 }, { "a/b", 0, 0 }, { "UP", 0, 0 }, { "a b", 0, 0 },
        { "127.0.0.1:7000", 0, 1 }, { "[::1]:7000", 0, 1 }, { "host:65535", 0, 1 },
        { "host:65536", 0, 0 }, { "host:0", 0, 0 }, { "host:007", 0, 0 }, { ":7000", 0, 0 },
        { "[]:7000", 0, 0 }, { "ho st:1", 0, 0 }, { "host:", 0, 0 }, { "[::1:7000", 0, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *s = cases[i].s;
        if (msg_domain_ok(s, strlen(s)) != (cases[i].domain != 0))
            fail_msg("domain \"%s\": want %d", s, cases[i].domain);
        if (msg_addr_ok(s, strlen(s)) != (cases[i].addr != 0))
            fail_msg("addr \"%s\": want %d", s, cases[i].addr);
    }
    char d64[65], d65[66];
    memset(d64, 'a', 64), d64[64] = 0;
    memset(d65, 'a', 65), d65[65] = 0;
    assert_true(msg_domain_ok(d64, 64));
    assert_false(msg_domain_ok(d65, 65));
    assert_false(msg_domain_ok("a\0b", 3));
    assert_true(msg_text_ok("", 0));
    assert_false(msg_text_ok("\x7f", 1));
    assert_string_equal(msg_type_name(MSG_VOTE), "VOTE");
    assert_string_equal(msg_type_name(0), "unknown");
}

static void test_auth_input(void **state)
{
    uint8_t out[MSG_AUTH_INPUT_LEN], vn[32], sn[32], vi[32], si[32];

    memset(vn, 1, 32), memset(sn, 2, 32), memset(vi, 3, 32), memset(si, 4, 32);
    msg_auth_input(out, vn, sn, vi, si);
    assert_int_equal(MSG_AUTH_INPUT_LEN, 144);
    assert_memory_equal(out, "PLORAD|HELLO|v1|", 16);
    assert_memory_equal(out + 16, vn, 32);
    assert_memory_equal(out + 48, sn, 32);
    assert_memory_equal(out + 80, vi, 32);
    assert_memory_equal(out + 112, si, 32);
}

/* Zero copy: a decoded CHUNK's data points into the body it came from. */
static void test_chunk_zero_copy(void **state)
{
    static const uint8_t data[100] = { 9 };
    struct msg m = { .type = MSG_CHUNK }, *back = NULL;
    uint8_t *f = NULL;
    size_t n;

    m.u.chunk.data = (struct msg_bytes){ data, sizeof(data) };
    assert_int_equal(msg_encode(&m, &f, &n, NULL), 0);
    assert_int_equal(msg_decode(f + 4, n - 4, NULL, &back, NULL), 0);
    assert_ptr_equal(back->u.chunk.data.p, f + n - sizeof(data));
    msg_free(back);
    free(f);
    msg_free(NULL);
}

/* Unknown keys are skipped (forward compatibility), known ones still checked. */
/* The vote summaries' definitions (PROTOCOL.md 2): fixed values, since
 * every node must compute the same ones. */
static void test_vote_tag_term(void **state)
{
    uint8_t t[MSG_VTAG_LEN], want[MSG_VTAG_LEN];

    memcpy(want, ID, 15);
    want[15] = 1;
    msg_vote_tag(t, ID, true);
    assert_memory_equal(t, want, MSG_VTAG_LEN);
    want[15] = 0;
    msg_vote_tag(t, ID, false);
    assert_memory_equal(t, want, MSG_VTAG_LEN);
    assert_true(msg_vote_term(ID, true) == 0x6225a9a3d3d964f7ull);
    assert_true(msg_vote_term(ID, false) == 0x0acc9c175458d409ull);
}

/* WANT with vh and DIGEST with vs, byte for byte; an empty optional list is
 * not written, and an old-style body (no vh, no vs) decodes with NULLs. */
static void test_known_optional_lists(void **state)
{
    uint8_t tag[MSG_VTAG_LEN], *f, *body;
    msg_id vid;
    struct msg_bytes vh;
    uint64_t vs = 300;
    struct msg_ad ad = { .size = 7, .acc = 2, .rej = 0 };
    struct msg w = { .type = MSG_WANT, .u.want = { .n_vids = 1, .vids = &vid, .vhave = &vh } };
    struct msg g = { .type = MSG_DIGEST, .u.digest = { .round = 4, .n_ads = 1, .ads = &ad, .vsets = &vs } };
    struct msg *back = NULL;
    size_t n, bn;

    memcpy(vid, ID, 32);
    msg_vote_tag(tag, ID, true);
    vh = (struct msg_bytes){ tag, sizeof(tag) };
    body = mp(&bn, "M" "su" "su" "sA" "sAb" "sAb", 5, "t", U(4), "v", U(1), "ids", 0, "vids", 1, ID, Z(32),
              "vh", 1, tag, Z(16));
    assert_int_equal(msg_encode(&w, &f, &n, NULL), 0);
    assert_int_equal(n, bn + 4);
    assert_memory_equal(f + 4, body, bn);
    free(f), free(body);
    memcpy(ad.id, ID, 32);
    strcpy(ad.domain, "gpt2");
    body = mp(&bn, "M" "su" "su" "su" "sb" "sA" "Absuuu" "sAu", 6, "t", U(3), "v", U(1), "r", U(4), "mh",
              g.u.digest.members, Z(32), "ads", 1, 5, ID, Z(32), "gpt2", U(7), U(2), U(0), "vs", 1, U(300));
    assert_int_equal(msg_encode(&g, &f, &n, NULL), 0);
    assert_int_equal(n, bn + 4);
    assert_memory_equal(f + 4, body, bn);
    free(f), free(body);
    w.u.want.n_vids = 0;   /* vhave set, nothing to summarise: no "vh" key */
    body = mp(&bn, "M" "su" "su" "sA" "sA", 4, "t", U(4), "v", U(1), "ids", 0, "vids", 0);
    assert_int_equal(msg_encode(&w, &f, &n, NULL), 0);
    assert_int_equal(n, bn + 4);
    assert_memory_equal(f + 4, body, bn);
    free(f), free(body);
    body = mp(&bn, "M" "su" "su" "sA" "sAb", 4, "t", U(4), "v", U(1), "ids", 0, "vids", 1, ID, Z(32));
    assert_int_equal(msg_decode(body, bn, NULL, &back, NULL), 0);
    assert_null(back->u.want.vhave);
    msg_free(back), free(body);
    body = mp(&bn, "M" "su" "su" "su" "sb" "sA", 5, "t", U(3), "v", U(1), "r", U(0), "mh", ID, Z(32), "ads", 0);
    assert_int_equal(msg_decode(body, bn, NULL, &back, NULL), 0);
    assert_null(back->u.digest.vsets);
    msg_free(back), free(body);
}

static void test_unknown_keys_ignored(void **state)
{
    size_t n;
    struct msg *m = NULL;
    uint8_t *b = mp(&n, "M" "su" "su" "si" "ss" "sf" "sA", 6, "t", U(10), "v", U(1), "code", I(0),
                    "text", "bye", "future", 2.5, "list", 0);

    assert_int_equal(msg_decode(b, n, NULL, &m, NULL), 0);
    assert_string_equal(m->u.bye.text, "bye");
    msg_free(m);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_bye),
        cmocka_unit_test(test_known_chunk),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_round_trip_random),
        cmocka_unit_test(test_preauth_fits),
        cmocka_unit_test(test_truncated_prefixes),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_chunk_head_matches_encode),
        cmocka_unit_test(test_encode_refuses),
        cmocka_unit_test(test_field_checks),
        cmocka_unit_test(test_auth_input),
        cmocka_unit_test(test_chunk_zero_copy),
        cmocka_unit_test(test_unknown_keys_ignored),
        cmocka_unit_test(test_vote_tag_term),
        cmocka_unit_test(test_known_optional_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
