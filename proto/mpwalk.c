/* proto/mpwalk.c: header walk of one msgpack object (see mpwalk.h).
 *
 * Iterative, no allocation: `left[k]` is the number of objects still owed at
 * nesting level k (level 0 owes the root). Every subtraction is done on the
 * side already checked, so `pos + len` never wraps.
 */
#include "mpwalk.h"

#include <inttypes.h>

enum kind { K_SCALAR, K_STR, K_BIN, K_ARRAY, K_MAP, K_BAD };

/* What a marker byte announces: `lenbytes` big-endian bytes of length or
 * count follow it (or `val` holds the count/length of a fix* type); a
 * scalar carries `skip` payload bytes. */
struct head {
    enum kind kind;
    unsigned lenbytes;
    unsigned skip;
    uint64_t val;
};

struct walk {
    const uint8_t *p;
    size_t n;
    size_t pos;
    size_t at;        /* header of the object last stepped on */
    uint64_t items;
    const struct mpwalk_limits *lim;
    struct proto_diag *d;
};

static struct head classify_fixed(uint8_t b)
{
    struct head h = { K_BAD, 0, 0, 0 };

    switch (b) {
    case 0xc0: case 0xc2: case 0xc3: h.kind = K_SCALAR; break;   /* nil, bool */
    case 0xc4: h.kind = K_BIN; h.lenbytes = 1; break;
    case 0xc5: h.kind = K_BIN; h.lenbytes = 2; break;
    case 0xc6: h.kind = K_BIN; h.lenbytes = 4; break;
    case 0xca: case 0xce: case 0xd2: h.kind = K_SCALAR; h.skip = 4; break;
    case 0xcb: case 0xcf: case 0xd3: h.kind = K_SCALAR; h.skip = 8; break;
    case 0xcc: case 0xd0: h.kind = K_SCALAR; h.skip = 1; break;
    case 0xcd: case 0xd1: h.kind = K_SCALAR; h.skip = 2; break;
    case 0xd9: h.kind = K_STR; h.lenbytes = 1; break;
    case 0xda: h.kind = K_STR; h.lenbytes = 2; break;
    case 0xdb: h.kind = K_STR; h.lenbytes = 4; break;
    case 0xdc: h.kind = K_ARRAY; h.lenbytes = 2; break;
    case 0xdd: h.kind = K_ARRAY; h.lenbytes = 4; break;
    case 0xde: h.kind = K_MAP; h.lenbytes = 2; break;
    case 0xdf: h.kind = K_MAP; h.lenbytes = 4; break;
    default: break;   /* 0xc1 never used; 0xc7-0xc9, 0xd4-0xd8 ext */
    }
    return h;
}

static struct head classify(uint8_t b)
{
    struct head h = { K_SCALAR, 0, 0, 0 };

    if (b <= 0x7f || b >= 0xe0)
        return h;                                   /* fixint */
    if (b <= 0x8f) { h.kind = K_MAP; h.val = b & 0x0fu; return h; }
    if (b <= 0x9f) { h.kind = K_ARRAY; h.val = b & 0x0fu; return h; }
    if (b <= 0xbf) { h.kind = K_STR; h.val = b & 0x1fu; return h; }
    return classify_fixed(b);
}

static const char *kind_name(enum kind k)
{
    switch (k) {
    case K_STR: return "str";
    case K_BIN: return "bin";
    case K_ARRAY: return "array";
    case K_MAP: return "map";
    default: return "scalar";
    }
}

/* Read the header at w->pos; on success w->pos is past the header and h->val
 * holds the length or count. */
static int read_head(struct walk *w, struct head *h)
{
    size_t at = w->pos, left = w->n - w->pos;

    if (left == 0)
        return proto_fail(w->d, PROTO_E_MSGPACK_TRUNC, at,
                          "object expected at byte %zu, frame ends", at);
    *h = classify(w->p[at]);
    if (h->kind == K_BAD)
        return proto_fail(w->d, PROTO_E_MSGPACK_TYPE, at,
                          "msgpack marker 0x%02x at byte %zu is not used by the protocol",
                          w->p[at], at);
    if (left - 1 < h->lenbytes)
        return proto_fail(w->d, PROTO_E_MSGPACK_TRUNC, at,
                          "%s header at byte %zu needs %u length bytes, %zu left",
                          kind_name(h->kind), at, h->lenbytes, left - 1);
    for (unsigned i = 0; i < h->lenbytes; i++)
        h->val = h->val << 8 | w->p[at + 1 + i];
    w->pos = at + 1 + h->lenbytes;
    return 0;
}

/* Skip a scalar's payload or a str/bin body of h->val bytes. */
static int skip_body(struct walk *w, const struct head *h, size_t at)
{
    uint64_t len = h->kind == K_SCALAR ? h->skip : h->val;
    uint32_t cap = h->kind == K_STR ? w->lim->max_str : w->lim->max_bin;

    if (h->kind != K_SCALAR && len > cap)
        return proto_fail(w->d, PROTO_E_LIMIT, at, "%s of %" PRIu64 " bytes at byte %zu, limit %" PRIu32,
                          kind_name(h->kind), len, at, cap);
    if (w->n - w->pos < len)
        return proto_fail(w->d, PROTO_E_MSGPACK_TRUNC, at,
                          "%s at byte %zu declares %" PRIu64 " bytes, %zu left",
                          kind_name(h->kind), at, len, w->n - w->pos);
    w->pos += (size_t)len;
    return 0;
}

/* A container header: its `*elems` objects must fit in the bytes left
 * (each takes at least one) and in the item budget. */
static int check_count(struct walk *w, const struct head *h, size_t at, uint64_t *elems)
{
    size_t left = w->n - w->pos;

    *elems = h->kind == K_MAP ? 2 * h->val : h->val;   /* val < 2^32: no wrap */
    if (*elems > left)
        return proto_fail(w->d, PROTO_E_MSGPACK_CNT, at, "%s of %" PRIu64 " %s in %zu bytes",
                          kind_name(h->kind), h->val, h->kind == K_MAP ? "pairs" : "items", left);
    if (*elems > w->lim->max_items - w->items)   /* items <= max_items here */
        return proto_fail(w->d, PROTO_E_LIMIT, at,
                          "%s at byte %zu of %" PRIu64 " %s exceeds the %" PRIu32 "-item limit",
                          kind_name(h->kind), at, h->val,
                          h->kind == K_MAP ? "pairs" : "items", w->lim->max_items);
    return 0;
}

/* One object's header (and body if it is not a container). *elems is the
 * number of children it owes, 0 for anything but a non-empty container. */
static int step(struct walk *w, uint64_t *elems)
{
    struct head h = { K_BAD, 0, 0, 0 };
    size_t at = w->pos;
    int rc;

    *elems = 0;
    w->at = at;
    if (w->items >= w->lim->max_items)
        return proto_fail(w->d, PROTO_E_LIMIT, at, "more than %" PRIu32 " objects in the frame",
                          w->lim->max_items);
    w->items++;
    if ((rc = read_head(w, &h)) != 0)
        return rc;
    if (h.kind == K_ARRAY || h.kind == K_MAP)
        return check_count(w, &h, at, elems);
    return skip_body(w, &h, at);
}

int mpwalk_check(const uint8_t *p, size_t n, const struct mpwalk_limits *lim,
                 struct proto_diag *d)
{
    uint64_t left[MPWALK_DEPTH_MAX + 1];
    struct walk w = { p, n, 0, 0, 0, lim, d };
    uint32_t depth = 0;
    uint64_t elems;
    int rc;

    if ((p == NULL && n > 0) || lim == NULL || lim->max_depth > MPWALK_DEPTH_MAX)
        return proto_fail(d, PROTO_E_ARG, 0, "mpwalk_check: bad arguments");
    left[0] = 1;
    for (;;) {
        while (left[depth] == 0 && depth > 0)
            depth--;
        if (left[depth] == 0)
            break;
        left[depth]--;
        if ((rc = step(&w, &elems)) != 0)
            return rc;
        if (elems == 0)
            continue;
        if (depth >= lim->max_depth)
            return proto_fail(d, PROTO_E_MSGPACK_DEPTH, w.at,
                              "container at byte %zu, depth %" PRIu32 " exceeds the nesting limit %" PRIu32,
                              w.at, depth + 1, lim->max_depth);
        left[++depth] = elems;
    }
    if (w.pos != n)
        return proto_fail(d, PROTO_E_MSGPACK_TRAIL, w.pos,
                          "%zu bytes after the msgpack object ending at byte %zu", n - w.pos, w.pos);
    return 0;
}
