/* proto/msg.c: decode and encode protocol messages (see msg.h, PROTOCOL.md).
 *
 * Decoding is three gates, each cheaper than the next: mpwalk_check bounds
 * every count and length against the bytes present (msgpack-c allocates
 * from declared counts), msgpack_unpack_next builds the object tree (str and
 * bin objects point into the body: zero-copy), and the per-type decoder
 * checks every field's presence, msgpack type and value. Unknown keys are
 * ignored (forward compatibility within a version) but count against
 * MSG_FIELDS_MAX and may not repeat a known key.
 */
#include "msg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "frame.h"

const struct mpwalk_limits msg_limits_preauth = {
    .max_depth = 1, .max_items = 1 + 2 * 16, .max_str = 256, .max_bin = MSG_PK_MAX,
};
const struct mpwalk_limits msg_limits_authed = {
    .max_depth = 3, .max_items = 1u << 15, .max_str = 256, .max_bin = MSG_CHUNK_MAX,
};

static const char *const type_names[MSG_TYPE_MAX + 1] = {
    NULL, "HELLO", "HELLO_ACK", "DIGEST", "WANT", "OFFER", "MANIFEST", "CHUNK", "VOTE",
    "PEERS", "BYE",
};

const char *msg_type_name(int type)
{
    return type >= 1 && type <= MSG_TYPE_MAX ? type_names[type] : "unknown";
}

/* ---- field checks shared with the encoder ---- */

static bool domain_char(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return true;
    return !first && (c == '.' || c == '_' || c == '-');
}

bool msg_domain_ok(const char *s, size_t n)
{
    if (n == 0 || n > MSG_DOMAIN_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!domain_char(s[i], i == 0))
            return false;
    return true;
}

static bool port_ok(const char *s, size_t n)
{
    unsigned v = 0;

    if (n == 0 || n > 5 || s[0] == '0')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v <= 65535;
}

static bool host_ok(const char *s, size_t n)
{
    bool v6 = n >= 3 && s[0] == '[' && s[n - 1] == ']';
    const char *set = v6 ? "0123456789abcdefABCDEF:." : "abcdefghijklmnopqrstuvwxyz"
                                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-";

    if (v6) {
        s++;
        n -= 2;
    }
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' || strchr(set, s[i]) == NULL)
            return false;
    return true;
}

bool msg_addr_ok(const char *s, size_t n)
{
    size_t colon = n;

    if (n == 0 || n > MSG_ADDR_MAX)
        return false;
    while (colon > 0 && s[colon - 1] != ':')
        colon--;
    if (colon == 0)
        return false;
    return host_ok(s, colon - 1) && port_ok(s + colon, n - colon);
}

bool msg_text_ok(const char *s, size_t n)
{
    if (n > MSG_TEXT_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
    return true;
}

/* ---- decoding ---- */

struct dec {
    const uint8_t *body;
    const char *tname;   /* message type, for diagnostics */
    struct proto_diag *d;
};

static size_t off_of(const struct dec *x, const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_BIN)
        return (size_t)((const uint8_t *)o->via.bin.ptr - x->body);
    return 0;
}

/* Peer text quoted in a diagnostic: at most 32 chars, non-printables as '?'. */
static void quote(char out[40], const char *s, size_t n)
{
    size_t k = n < 32 ? n : 32;

    for (size_t i = 0; i < k; i++)
        out[i] = s[i] >= 0x20 && s[i] <= 0x7e && s[i] != '"' ? s[i] : '?';
    strcpy(out + k, n > k ? "..." : "");
}

static const char *otype(const msgpack_object *o)
{
    static const char *const names[] = {
        [MSGPACK_OBJECT_NIL] = "nil", [MSGPACK_OBJECT_BOOLEAN] = "bool",
        [MSGPACK_OBJECT_POSITIVE_INTEGER] = "uint", [MSGPACK_OBJECT_NEGATIVE_INTEGER] = "int",
        [MSGPACK_OBJECT_FLOAT64] = "float", [MSGPACK_OBJECT_STR] = "str",
        [MSGPACK_OBJECT_ARRAY] = "array", [MSGPACK_OBJECT_MAP] = "map",
        [MSGPACK_OBJECT_BIN] = "bin", [MSGPACK_OBJECT_EXT] = "ext",
        [MSGPACK_OBJECT_FLOAT32] = "float",
    };
    return (unsigned)o->type < sizeof(names) / sizeof(names[0]) && names[o->type] != NULL
               ? names[o->type] : "?";
}

static int wrong_type(struct dec *x, const msgpack_object *o, const char *name, const char *want)
{
    return proto_fail(x->d, PROTO_E_FIELD_TYPE, off_of(x, o), "%s.%s: %s, want %s", x->tname,
                      name, otype(o), want);
}

static int get_uint(struct dec *x, const msgpack_object *o, const char *name, uint64_t max,
                    uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return wrong_type(x, o, name, "uint");
    if (o->via.u64 > max)
        return proto_fail(x->d, PROTO_E_FIELD_VALUE, 0, "%s.%s: %" PRIu64 " over %" PRIu64,
                          x->tname, name, o->via.u64, max);
    *out = o->via.u64;
    return 0;
}

static int get_u32(struct dec *x, const msgpack_object *o, const char *name, uint32_t *out)
{
    uint64_t v;
    int rc = get_uint(x, o, name, UINT32_MAX, &v);

    *out = (uint32_t)v;
    return rc;
}

static int get_bytes(struct dec *x, const msgpack_object *o, const char *name, size_t min,
                     size_t max, struct msg_bytes *out)
{
    if (o->type != MSGPACK_OBJECT_BIN)
        return wrong_type(x, o, name, "bin");
    if (o->via.bin.size < min || o->via.bin.size > max)
        return proto_fail(x->d, PROTO_E_FIELD_VALUE, off_of(x, o),
                          "%s.%s: %" PRIu32 " bytes, want %zu..%zu", x->tname, name,
                          o->via.bin.size, min, max);
    out->p = (const uint8_t *)o->via.bin.ptr;
    out->n = o->via.bin.size;
    return 0;
}

static int get_fixed(struct dec *x, const msgpack_object *o, const char *name, uint8_t *out,
                     size_t len)
{
    struct msg_bytes b = { NULL, 0 };
    int rc = get_bytes(x, o, name, len, len, &b);

    if (rc == 0)
        memcpy(out, b.p, len);
    return rc;
}

/* A str that `ok` accepts (empty allowed iff allow_empty), copied to out[cap]. */
static int get_text(struct dec *x, const msgpack_object *o, const char *name,
                    bool (*ok)(const char *, size_t), bool allow_empty, char *out, size_t cap)
{
    const char *s = o->via.str.ptr;
    size_t n = o->via.str.size;
    char q[40];

    if (o->type != MSGPACK_OBJECT_STR)
        return wrong_type(x, o, name, "str");
    if (n >= cap || !((allow_empty && n == 0) || ok(s, n))) {
        quote(q, s, n);
        return proto_fail(x->d, PROTO_E_FIELD_VALUE, off_of(x, o),
                          "%s.%s: \"%s\" (%zu bytes) is not a valid %s", x->tname, name, q, n,
                          name);
    }
    if (n > 0)   /* msgpack-c gives an empty str a NULL ptr */
        memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

static int get_array(struct dec *x, const msgpack_object *o, const char *name, size_t min,
                     const msgpack_object_array **out)
{
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return wrong_type(x, o, name, "array");
    if (o->via.array.size < min || o->via.array.size > MSG_LIST_MAX)
        return proto_fail(x->d, o->via.array.size > MSG_LIST_MAX ? PROTO_E_LIMIT : PROTO_E_FIELD_VALUE,
                          0, "%s.%s: %" PRIu32 " entries, want %zu..%u", x->tname, name,
                          o->via.array.size, min, MSG_LIST_MAX);
    *out = &o->via.array;
    return 0;
}

/* Entry i of a list whose entries are arrays of exactly `arity` items. */
static int get_entry(struct dec *x, const msgpack_object_array *a, size_t i, const char *name,
                     uint32_t arity, const msgpack_object **items)
{
    const msgpack_object *o = &a->ptr[i];

    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != arity)
        return proto_fail(x->d, PROTO_E_FIELD_TYPE, 0, "%s.%s[%zu]: %s of %" PRIu32
                          ", want array of %" PRIu32, x->tname, name, i, otype(o),
                          o->type == MSGPACK_OBJECT_ARRAY ? o->via.array.size : 0, arity);
    *items = o->via.array.ptr;
    return 0;
}

static void *alloc_list(size_t n, size_t size, int *rc)
{
    void *p = n > 0 ? calloc(n, size) : NULL;

    *rc = n > 0 && p == NULL ? PROTO_E_NOMEM : 0;
    return p;
}

/* The value of key `name` in the root map, or NULL when absent. */
static const msgpack_object *find_key(const msgpack_object_map *m, const char *name)
{
    size_t len = strlen(name);

    for (uint32_t k = 0; k < m->size; k++)
        if (m->ptr[k].key.via.str.size == len && memcmp(m->ptr[k].key.via.str.ptr, name, len) == 0)
            return &m->ptr[k].val;
    return NULL;
}

/* Find each name in the root map; a missing one fails. */
static int need(struct dec *x, const msgpack_object_map *m, const char *const *names,
                const msgpack_object **vals)
{
    for (size_t i = 0; names[i] != NULL; i++) {
        vals[i] = find_key(m, names[i]);
        if (vals[i] == NULL)
            return proto_fail(x->d, PROTO_E_FIELD_MISSING, 0, "%s: field \"%s\" missing",
                              x->tname, names[i]);
    }
    return 0;
}

static int dec_hello(struct dec *x, const msgpack_object_map *m, struct msg *out)
{
    static const char *const names[] = { "id", "nonce", "addr", "pk", NULL };
    const msgpack_object *v[4];
    struct msg_hello *h = &out->u.hello;
    int rc;

    if ((rc = need(x, m, names, v)) != 0 ||
        (rc = get_fixed(x, v[0], "id", h->id, MSG_ID_LEN)) != 0 ||
        (rc = get_fixed(x, v[1], "nonce", h->nonce, MSG_NONCE_LEN)) != 0 ||
        (rc = get_text(x, v[2], "addr", msg_addr_ok, true, h->addr, sizeof(h->addr))) != 0)
        return rc;
    return get_bytes(x, v[3], "pk", 1, MSG_PK_MAX, &h->pk);
}

static int dec_hello_ack(struct dec *x, const msgpack_object_map *m, struct msg *out)
{
    static const char *const names[] = { "sig", NULL };
    const msgpack_object *v[1];
    int rc;

    if ((rc = need(x, m, names, v)) != 0)
        return rc;
    return get_bytes(x, v[0], "sig", 1, MSG_SIG_MAX, &out->u.hello_ack.sig);
}

static int dec_ad(struct dec *x, const msgpack_object *it, struct msg_ad *ad)
{
    uint64_t size;
    int rc;

    if ((rc = get_fixed(x, &it[0], "ads[].id", ad->id, MSG_ID_LEN)) != 0 ||
        (rc = get_text(x, &it[1], "ads[].domain", msg_domain_ok, false, ad->domain,
                       sizeof(ad->domain))) != 0 ||
        (rc = get_uint(x, &it[2], "ads[].size", MSG_SIZE_MAX, &size)) != 0 ||
        (rc = get_u32(x, &it[3], "ads[].acc", &ad->acc)) != 0 ||
        (rc = get_u32(x, &it[4], "ads[].rej", &ad->rej)) != 0)
        return rc;
    if (size == 0)
        return proto_fail(x->d, PROTO_E_FIELD_VALUE, 0, "%s.ads[].size: 0", x->tname);
    ad->size = size;
    return 0;
}

/* DIGEST.vs: one uint per ads entry. */
static int dec_vsets(struct dec *x, const msgpack_object *o, struct msg_digest *g)
{
    const msgpack_object_array *a;
    int rc;

    if ((rc = get_array(x, o, "vs", 0, &a)) != 0)
        return rc;
    if (a->size != g->n_ads)
        return proto_fail(x->d, PROTO_E_FIELD_VALUE, 0, "%s.vs: %" PRIu32 " entries for %zu ads",
                          x->tname, a->size, g->n_ads);
    if ((g->vsets = alloc_list(a->size, sizeof(*g->vsets), &rc)) == NULL && rc != 0)
        return rc;
    for (size_t i = 0; i < a->size; i++)
        if ((rc = get_uint(x, &a->ptr[i], "vs[]", UINT64_MAX, &g->vsets[i])) != 0)
            return rc;
    return 0;
}

static int dec_digest(struct dec *x, const msgpack_object_map *m, struct msg *out)
{
    static const char *const names[] = { "r", "mh", "ads", NULL };
    const msgpack_object *v[3], *it = NULL;
    const msgpack_object_array *a;
    struct msg_digest *g = &out->u.digest;
    int rc;

    if ((rc = need(x, m, names, v)) != 0 ||
        (rc = get_uint(x, v[0], "r", UINT64_MAX, &g->round)) != 0 ||
        (rc = get_fixed(x, v[1], "mh", g->members, MSG_ID_LEN)) != 0 ||
        (rc = get_array(x, v[2], "ads", 0, &a)) != 0)
        return rc;
    if ((g->ads = alloc_list(a->size, sizeof(*g->ads), &rc)) == NULL && rc != 0)
        return rc;
    g->n_ads = a->size;
    for (size_t i = 0; i < a->size; i++)
        if ((rc = get_entry(x, a, i, "ads", 5, &it)) != 0 || (rc = dec_ad(x, it, &g->ads[i])) != 0)
            return rc;
    it = find_key(m, "vs");   /* optional: without it, peers compare vote counts only */
    return it != NULL ? dec_vsets(x, it, g) : 0;
}

static int dec_id_list(struct dec *x, const msgpack_object *o, const char *name, size_t min,
                       msg_id **ids, size_t *n)
{
    const msgpack_object_array *a;
    int rc;

    if ((rc = get_array(x, o, name, min, &a)) != 0)
        return rc;
    if ((*ids = alloc_list(a->size, sizeof(**ids), &rc)) == NULL && rc != 0)
        return rc;
    *n = a->size;
    for (size_t i = 0; i < a->size; i++)
        if ((rc = get_fixed(x, &a->ptr[i], name, (*ids)[i], MSG_ID_LEN)) != 0)
            return rc;
    return 0;
}

/* MSG_VTAG_LEN-byte tags, at most MSG_VHAVE_MAX, strictly ascending (so an
 * answerer can binary-search them and no tag is listed twice). */
static bool tags_ok(const struct msg_bytes *b)
{
    size_t k = b->n / MSG_VTAG_LEN;

    if (b->n % MSG_VTAG_LEN != 0 || k > MSG_VHAVE_MAX || (b->n > 0 && b->p == NULL))
        return false;
    for (size_t i = 1; i < k; i++)
        if (memcmp(b->p + (i - 1) * MSG_VTAG_LEN, b->p + i * MSG_VTAG_LEN, MSG_VTAG_LEN) >= 0)
            return false;
    return true;
}

/* WANT.vh: one bin of tags per vids entry. */
static int dec_vhave(struct dec *x, const msgpack_object *o, struct msg_want *w)
{
    const msgpack_object_array *a;
    int rc;

    if ((rc = get_array(x, o, "vh", 0, &a)) != 0)
        return rc;
    if (a->size != w->n_vids)
        return proto_fail(x->d, PROTO_E_FIELD_VALUE, 0, "%s.vh: %" PRIu32 " entries for %zu vids",
                          x->tname, a->size, w->n_vids);
    if ((w->vhave = alloc_list(a->size, sizeof(*w->vhave), &rc)) == NULL && rc != 0)
        return rc;
    for (size_t i = 0; i < a->size; i++) {
        if ((rc = get_bytes(x, &a->ptr[i], "vh[]", 0, MSG_VHAVE_MAX * MSG_VTAG_LEN, &w->vhave[i])) != 0)
            return rc;
        if (!tags_ok(&w->vhave[i]))
            return proto_fail(x->d, PROTO_E_FIELD_VALUE, off_of(x, &a->ptr[i]),
                              "%s.vh[%zu]: %zu bytes are not ascending %u-byte tags", x->tname, i,
                              w->vhave[i].n, MSG_VTAG_LEN);
    }
    return 0;
}

static int dec_want(struct dec *x, const msgpack_object_map *m, struct msg *out)
{
    static const char *const names[] = { "ids", "vids", NULL };
    const msgpack_object *v[2], *it = NULL;
    const msgpack_object_array *a;
    struct msg_want *w = &out->u.want;
    int rc;

    if ((rc = need(x, m, names, v)) != 0 || (rc = get_array(x, v[0], "ids", 0, &a)) != 0)
        return rc;
    if ((w->ids = alloc_list(a->size, sizeof(*w->ids), &rc)) == NULL && rc != 0)
        return rc;
    w->n_ids = a->size;
    for (size_t i = 0; i < a->size; i++)
        if ((rc = get_entry(x, a, i, "ids", 2, &it)) != 0 ||
            (rc = get_fixed(x, &it[0], "ids[].id", w->ids[i].id, MSG_ID_LEN)) != 0 ||
            (rc = get_uint(x, &it[1], "ids[].from", MSG_SIZE_MAX - 1, &w->ids[i].from)) != 0)
            return rc;
    if ((rc = dec_id_list(x, v[1], "vids", 0, &w->vids, &w->n_vids)) != 0)
        return rc;
    it = find_key(m, "vh");   /* optional: a peer without it is sent every vote */
    return it != NULL ? dec_vhave(x, it, w) : 0;
}

static int dec_offer(struct dec *x, const msgpack_object_map *m, struct msg *out)
{
    static const char *const names[] = { "ids", NULL };
    const msgpack_object *v[1];
    int rc;

    if ((rc = need(x, m, names, v)) != 0)
        return rc;
    return dec_id_list(x, v[0], "ids", 1, &out->u.offer.ids, &out->u.offer.n_ids);
}

static int dec_manifest(struct dec *x, const msgpack_object_map *m, struct msg *out)
{
    static const char *const names[] = { "id", "dom", "size", "cfg", "man", NULL };
    const msgpack_object *v[5];
    struct msg_manifest *f = &out->u.manifest;
    int rc;

    if ((rc = need(x, m, names, v)) != 0 ||
        (rc = get_fixed(x, v[0], "id", f->id, MSG_ID_LEN)) != 0 ||
        (rc = get_text(x, v[1], "dom", msg_domain_ok, false, f->domain, sizeof(f->domain))) != 0 ||
        (rc = get_uint(x, v[2], "size", MSG_SIZE_MAX, &f->size)) != 0 ||
        (rc = get_bytes(x, v[3], "cfg", 0, MSG_META_MAX, &f->config)) != 0 ||
        (rc = get_bytes(x, v[4], "man", 0, MSG_META_MAX, &f->manifest)) != 0)
        return rc;
    if (f->size == 0)
        return proto_fail(x->d, PROTO_E_FIELD_VALUE, 0, "%s.size: 0", x->tname);
    return 0;
}

static int dec_chunk(struct dec *x, const msgpack_object_map *m, struct msg *out)
{
    static const char *const names[] = { "id", "off", "data", NULL };
    const msgpack_object *v[3];
    struct msg_chunk *c = &out->u.chunk;
    int rc;

    if ((rc = need(x, m, names, v)) != 0 ||
        (rc = get_fixed(x, v[0], "id", c->id, MSG_ID_LEN)) != 0 ||
        (rc = get_uint(x, v[1], "off", MSG_SIZE_MAX - 1, &c->off)) != 0 ||
        (rc = get_bytes(x, v[2], "data", 1, MSG_CHUNK_MAX, &c->data)) != 0)
        return rc;
    if (MSG_SIZE_MAX - c->off < c->data.n)   /* off < MSG_SIZE_MAX: no wrap */
        return proto_fail(x->d, PROTO_E_FIELD_VALUE, 0, "%s: off %" PRIu64 " + %zu bytes over %"
                          PRIu64, x->tname, c->off, c->data.n, MSG_SIZE_MAX);
    return 0;
}

static int dec_vote(struct dec *x, const msgpack_object_map *m, struct msg *out)
{
    static const char *const names[] = { "id", "by", "body", "sig", NULL };
    const msgpack_object *v[4];
    struct msg_vote *o = &out->u.vote;
    int rc;

    if ((rc = need(x, m, names, v)) != 0 ||
        (rc = get_fixed(x, v[0], "id", o->id, MSG_ID_LEN)) != 0 ||
        (rc = get_fixed(x, v[1], "by", o->by, MSG_ID_LEN)) != 0 ||
        (rc = get_bytes(x, v[2], "body", 1, MSG_VOTE_MAX, &o->body)) != 0)
        return rc;
    return get_bytes(x, v[3], "sig", 1, MSG_SIG_MAX, &o->sig);
}

static int dec_peers(struct dec *x, const msgpack_object_map *m, struct msg *out)
{
    static const char *const names[] = { "peers", NULL };
    const msgpack_object *v[1], *it = NULL;
    const msgpack_object_array *a;
    struct msg_peers *p = &out->u.peers;
    int rc;

    if ((rc = need(x, m, names, v)) != 0 || (rc = get_array(x, v[0], "peers", 0, &a)) != 0)
        return rc;
    if ((p->peers = alloc_list(a->size, sizeof(*p->peers), &rc)) == NULL && rc != 0)
        return rc;
    p->n = a->size;
    for (size_t i = 0; i < a->size; i++)
        if ((rc = get_entry(x, a, i, "peers", 2, &it)) != 0 ||
            (rc = get_fixed(x, &it[0], "peers[].id", p->peers[i].id, MSG_ID_LEN)) != 0 ||
            (rc = get_text(x, &it[1], "peers[].addr", msg_addr_ok, false, p->peers[i].addr,
                           sizeof(p->peers[i].addr))) != 0)
            return rc;
    return 0;
}

static int dec_bye(struct dec *x, const msgpack_object_map *m, struct msg *out)
{
    static const char *const names[] = { "code", "text", NULL };
    const msgpack_object *v[2];
    struct msg_bye *b = &out->u.bye;
    int rc;

    if ((rc = need(x, m, names, v)) != 0)
        return rc;
    if (v[0]->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v[0]->via.u64 == 0)
        b->code = 0;
    else if (v[0]->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && v[0]->via.i64 >= -299)
        b->code = (int32_t)v[0]->via.i64;
    else if (v[0]->type == MSGPACK_OBJECT_POSITIVE_INTEGER || v[0]->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return proto_fail(x->d, PROTO_E_FIELD_VALUE, 0, "%s.code: outside -299..0", x->tname);
    else
        return wrong_type(x, v[0], "code", "int");
    return get_text(x, v[1], "text", msg_text_ok, true, b->text, sizeof(b->text));
}

typedef int (*dec_fn)(struct dec *, const msgpack_object_map *, struct msg *);
static const dec_fn decoders[MSG_TYPE_MAX + 1] = {
    NULL, dec_hello, dec_hello_ack, dec_digest, dec_want, dec_offer, dec_manifest, dec_chunk,
    dec_vote, dec_peers, dec_bye,
};

/* Every key a str, none twice, at most MSG_FIELDS_MAX of them. */
static int check_keys(struct dec *x, const msgpack_object_map *m)
{
    char q[40];

    if (m->size > MSG_FIELDS_MAX)
        return proto_fail(x->d, PROTO_E_LIMIT, 0, "frame map has %" PRIu32 " keys, limit %u",
                          m->size, MSG_FIELDS_MAX);
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object_str *k = &m->ptr[i].key.via.str;
        if (m->ptr[i].key.type != MSGPACK_OBJECT_STR)
            return proto_fail(x->d, PROTO_E_FIELD_TYPE, 0, "frame map key #%" PRIu32 " is %s, want str",
                              i, otype(&m->ptr[i].key));
        for (uint32_t j = 0; j < i; j++)
            if (m->ptr[j].key.via.str.size == k->size &&
                (k->size == 0 || memcmp(m->ptr[j].key.via.str.ptr, k->ptr, k->size) == 0)) {
                quote(q, k->ptr, k->size);
                return proto_fail(x->d, PROTO_E_DUP_FIELD, off_of(x, &m->ptr[i].key),
                                  "key \"%s\" appears twice", q);
            }
    }
    return 0;
}

/* Version first (a newer peer may have types we don't know), then type. */
static int dec_root(struct dec *x, const msgpack_object *root, struct msg *out)
{
    static const char *const names[] = { "v", "t", NULL };
    const msgpack_object *v[2];
    uint64_t ver, type;
    int rc;

    x->tname = "frame";
    if (root->type != MSGPACK_OBJECT_MAP)
        return proto_fail(x->d, PROTO_E_NOT_MAP, 0, "frame body is a msgpack %s, want map",
                          otype(root));
    if ((rc = check_keys(x, &root->via.map)) != 0 || (rc = need(x, &root->via.map, names, v)) != 0 ||
        (rc = get_uint(x, v[0], "v", UINT64_MAX, &ver)) != 0)
        return rc;
    if (ver != PROTO_VERSION)
        return proto_fail(x->d, PROTO_E_VERSION, 0, "protocol version %" PRIu64 ", this node speaks %d",
                          ver, PROTO_VERSION);
    if ((rc = get_uint(x, v[1], "t", UINT64_MAX, &type)) != 0)
        return rc;
    if (type < 1 || type > MSG_TYPE_MAX)
        return proto_fail(x->d, PROTO_E_TYPE, 0, "message type %" PRIu64 " unknown (1..%d)", type,
                          MSG_TYPE_MAX);
    out->type = (enum msg_type)type;
    x->tname = type_names[type];
    return decoders[type](x, &root->via.map, out);
}

int msg_decode(const uint8_t *body, size_t n, const struct mpwalk_limits *lim,
               struct msg **out, struct proto_diag *d)
{
    struct dec x = { body, "frame", d };
    msgpack_unpacked up;
    struct msg *m = NULL;
    size_t off = 0;
    int rc;

    *out = NULL;
    msgpack_unpacked_init(&up);
    if (body == NULL || n == 0) {
        rc = proto_fail(d, PROTO_E_ARG, 0, "msg_decode: empty body");
        goto out;
    }
    if ((rc = mpwalk_check(body, n, lim != NULL ? lim : &msg_limits_authed, d)) != 0)
        goto out;
    switch (msgpack_unpack_next(&up, (const char *)body, n, &off)) {
    case MSGPACK_UNPACK_SUCCESS: break;
    case MSGPACK_UNPACK_NOMEM_ERROR: rc = PROTO_E_NOMEM; goto out;
    default:   /* mpwalk_check admitted it: msgpack-c disagrees on the bytes */
        rc = proto_fail(d, PROTO_E_MSGPACK_TRUNC, off, "msgpack-c rejected the body");
        goto out;
    }
    if ((m = calloc(1, sizeof(*m))) == NULL) {
        rc = PROTO_E_NOMEM;
        goto out;
    }
    if ((rc = dec_root(&x, &up.data, m)) != 0)
        goto out;
    *out = m;   /* the caller owns it; its byte fields borrow from body */
    m = NULL;
out:
    msg_free(m);
    msgpack_unpacked_destroy(&up);
    return rc;
}

void msg_free(struct msg *m)
{
    if (m == NULL)
        return;
    switch (m->type) {
    case MSG_DIGEST: free(m->u.digest.ads); free(m->u.digest.vsets); break;
    case MSG_WANT: free(m->u.want.ids); free(m->u.want.vids); free(m->u.want.vhave); break;
    case MSG_OFFER: free(m->u.offer.ids); break;
    case MSG_PEERS: free(m->u.peers.peers); break;
    default: break;
    }
    free(m);
}

void msg_auth_input(uint8_t out[MSG_AUTH_INPUT_LEN], const uint8_t v_nonce[MSG_NONCE_LEN],
                    const uint8_t s_nonce[MSG_NONCE_LEN], const msg_id v_id, const msg_id s_id)
{
    uint8_t *p = out;

    memcpy(p, MSG_AUTH_TAG, 16);
    memcpy(p += 16, v_nonce, MSG_NONCE_LEN);
    memcpy(p += MSG_NONCE_LEN, s_nonce, MSG_NONCE_LEN);
    memcpy(p += MSG_NONCE_LEN, v_id, MSG_ID_LEN);
    memcpy(p + MSG_ID_LEN, s_id, MSG_ID_LEN);
}

void msg_vote_tag(uint8_t out[MSG_VTAG_LEN], const msg_id by, bool accept)
{
    memcpy(out, by, MSG_VTAG_LEN - 1);
    out[MSG_VTAG_LEN - 1] = accept ? 1 : 0;
}

/* splitmix64's finaliser over the key id prefix, the verdict in bit 0. */
uint64_t msg_vote_term(const msg_id by, bool accept)
{
    uint64_t z = 0;

    for (int i = 0; i < 8; i++)
        z = z << 8 | by[i];
    z = (z ^ (accept ? 1u : 0u)) + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- encoding ---- */

/* Packer target of a fixed buffer (msg_chunk_head). */
struct fixbuf {
    uint8_t *p;
    size_t cap, n;
};

static int fixbuf_write(void *data, const char *buf, size_t len)
{
    struct fixbuf *f = data;

    if (f->cap - f->n < len)
        return -1;
    memcpy(f->p + f->n, buf, len);
    f->n += len;
    return 0;
}

static int pack_key(msgpack_packer *pk, const char *k)
{
    size_t n = strlen(k);
    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, k, n);
}

static int pack_bin(msgpack_packer *pk, const char *k, const uint8_t *p, size_t n)
{
    int e = pack_key(pk, k) | msgpack_pack_bin(pk, n);

    return n > 0 ? e | msgpack_pack_bin_body(pk, p, n) : e;   /* p may be NULL when n == 0 */
}

static int pack_text(msgpack_packer *pk, const char *k, const char *s)
{
    size_t n = strlen(s);
    return pack_key(pk, k) | msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
}

static int pack_uint(msgpack_packer *pk, const char *k, uint64_t v)
{
    return pack_key(pk, k) | msgpack_pack_uint64(pk, v);
}

/* The map header and t, v of every frame. */
static int pack_head(msgpack_packer *pk, enum msg_type t, size_t fields)
{
    return msgpack_pack_map(pk, 2 + fields) | pack_uint(pk, "t", (uint64_t)t) |
           pack_uint(pk, "v", PROTO_VERSION);
}

static int pack_ids(msgpack_packer *pk, const char *k, const msg_id *ids, size_t n)
{
    int e = pack_key(pk, k) | msgpack_pack_array(pk, n);

    for (size_t i = 0; i < n; i++)
        e |= msgpack_pack_bin(pk, MSG_ID_LEN) | msgpack_pack_bin_body(pk, ids[i], MSG_ID_LEN);
    return e;
}

static int enc_digest(msgpack_packer *pk, const struct msg_digest *g)
{
    bool vs = g->vsets != NULL && g->n_ads > 0;   /* an empty "vs" is not written: canonical */
    int e = pack_head(pk, MSG_DIGEST, vs ? 4 : 3) | pack_uint(pk, "r", g->round) |
            pack_bin(pk, "mh", g->members, MSG_ID_LEN) | pack_key(pk, "ads") |
            msgpack_pack_array(pk, g->n_ads);

    for (size_t i = 0; i < g->n_ads; i++) {
        const struct msg_ad *a = &g->ads[i];
        size_t dn = strlen(a->domain);
        e |= msgpack_pack_array(pk, 5) | msgpack_pack_bin(pk, MSG_ID_LEN) |
             msgpack_pack_bin_body(pk, a->id, MSG_ID_LEN) | msgpack_pack_str(pk, dn) |
             msgpack_pack_str_body(pk, a->domain, dn) | msgpack_pack_uint64(pk, a->size) |
             msgpack_pack_uint32(pk, a->acc) | msgpack_pack_uint32(pk, a->rej);
    }
    if (!vs)
        return e;
    e |= pack_key(pk, "vs") | msgpack_pack_array(pk, g->n_ads);
    for (size_t i = 0; i < g->n_ads; i++)
        e |= msgpack_pack_uint64(pk, g->vsets[i]);
    return e;
}

static int enc_want(msgpack_packer *pk, const struct msg_want *w)
{
    bool vh = w->vhave != NULL && w->n_vids > 0;   /* an empty "vh" is not written: canonical */
    int e = pack_head(pk, MSG_WANT, vh ? 3 : 2) | pack_key(pk, "ids") |
            msgpack_pack_array(pk, w->n_ids);

    for (size_t i = 0; i < w->n_ids; i++)
        e |= msgpack_pack_array(pk, 2) | msgpack_pack_bin(pk, MSG_ID_LEN) |
             msgpack_pack_bin_body(pk, w->ids[i].id, MSG_ID_LEN) |
             msgpack_pack_uint64(pk, w->ids[i].from);
    e |= pack_ids(pk, "vids", w->vids, w->n_vids);
    if (!vh)
        return e;
    e |= pack_key(pk, "vh") | msgpack_pack_array(pk, w->n_vids);
    for (size_t i = 0; i < w->n_vids; i++) {
        e |= msgpack_pack_bin(pk, w->vhave[i].n);
        if (w->vhave[i].n > 0)
            e |= msgpack_pack_bin_body(pk, w->vhave[i].p, w->vhave[i].n);
    }
    return e;
}

static int enc_peers(msgpack_packer *pk, const struct msg_peers *p)
{
    int e = pack_head(pk, MSG_PEERS, 1) | pack_key(pk, "peers") | msgpack_pack_array(pk, p->n);

    for (size_t i = 0; i < p->n; i++) {
        size_t an = strlen(p->peers[i].addr);
        e |= msgpack_pack_array(pk, 2) | msgpack_pack_bin(pk, MSG_ID_LEN) |
             msgpack_pack_bin_body(pk, p->peers[i].id, MSG_ID_LEN) | msgpack_pack_str(pk, an) |
             msgpack_pack_str_body(pk, p->peers[i].addr, an);
    }
    return e;
}

/* The CHUNK body up to and including the data's bin header. */
static int enc_chunk_head(msgpack_packer *pk, const msg_id id, uint64_t off, size_t n)
{
    return pack_head(pk, MSG_CHUNK, 3) | pack_bin(pk, "id", id, MSG_ID_LEN) |
           pack_uint(pk, "off", off) | pack_key(pk, "data") | msgpack_pack_bin(pk, n);
}

static int enc_body(msgpack_packer *pk, const struct msg *m)
{
    const struct msg_hello *h = &m->u.hello;
    const struct msg_manifest *f = &m->u.manifest;
    const struct msg_vote *v = &m->u.vote;

    switch (m->type) {
    case MSG_HELLO:
        return pack_head(pk, m->type, 4) | pack_bin(pk, "id", h->id, MSG_ID_LEN) |
               pack_bin(pk, "nonce", h->nonce, MSG_NONCE_LEN) | pack_text(pk, "addr", h->addr) |
               pack_bin(pk, "pk", h->pk.p, h->pk.n);
    case MSG_HELLO_ACK:
        return pack_head(pk, m->type, 1) |
               pack_bin(pk, "sig", m->u.hello_ack.sig.p, m->u.hello_ack.sig.n);
    case MSG_DIGEST: return enc_digest(pk, &m->u.digest);
    case MSG_WANT: return enc_want(pk, &m->u.want);
    case MSG_OFFER:
        return pack_head(pk, m->type, 1) | pack_ids(pk, "ids", m->u.offer.ids, m->u.offer.n_ids);
    case MSG_MANIFEST:
        return pack_head(pk, m->type, 5) | pack_bin(pk, "id", f->id, MSG_ID_LEN) |
               pack_text(pk, "dom", f->domain) | pack_uint(pk, "size", f->size) |
               pack_bin(pk, "cfg", f->config.p, f->config.n) |
               pack_bin(pk, "man", f->manifest.p, f->manifest.n);
    case MSG_CHUNK:
        return enc_chunk_head(pk, m->u.chunk.id, m->u.chunk.off, m->u.chunk.data.n) |
               msgpack_pack_bin_body(pk, m->u.chunk.data.p, m->u.chunk.data.n);
    case MSG_VOTE:
        return pack_head(pk, m->type, 4) | pack_bin(pk, "id", v->id, MSG_ID_LEN) |
               pack_bin(pk, "by", v->by, MSG_ID_LEN) | pack_bin(pk, "body", v->body.p, v->body.n) |
               pack_bin(pk, "sig", v->sig.p, v->sig.n);
    case MSG_PEERS: return enc_peers(pk, &m->u.peers);
    case MSG_BYE:
        return pack_head(pk, m->type, 2) | pack_key(pk, "code") |
               msgpack_pack_int32(pk, m->u.bye.code) | pack_text(pk, "text", m->u.bye.text);
    }
    return -1;
}

/* ---- what the encoder refuses (the decoder's rules, as PROTO_E_ARG) ---- */

static int bad(struct proto_diag *d, const char *type, const char *field)
{
    return proto_fail(d, PROTO_E_ARG, 0, "%s.%s: outside the protocol's limits", type, field);
}

static bool bytes_ok(const struct msg_bytes *b, size_t min, size_t max)
{
    return b->n >= min && b->n <= max && (b->p != NULL || b->n == 0);
}

static bool cstr_ok(const char *s, size_t cap, bool (*ok)(const char *, size_t), bool empty)
{
    size_t n = strnlen(s, cap);
    return n < cap && ((empty && n == 0) || ok(s, n));
}

static int check_lists(const struct msg *m, struct proto_diag *d)
{
    const char *t = msg_type_name(m->type);

    if (m->type == MSG_DIGEST) {
        const struct msg_digest *g = &m->u.digest;
        if (g->n_ads > MSG_LIST_MAX || (g->n_ads > 0 && g->ads == NULL))
            return bad(d, t, "ads");
        for (size_t i = 0; i < g->n_ads; i++)
            if (!cstr_ok(g->ads[i].domain, sizeof(g->ads[i].domain), msg_domain_ok, false) ||
                g->ads[i].size == 0 || g->ads[i].size > MSG_SIZE_MAX)
                return bad(d, t, "ads[]");
    } else if (m->type == MSG_WANT) {
        const struct msg_want *w = &m->u.want;
        if (w->n_ids > MSG_LIST_MAX || (w->n_ids > 0 && w->ids == NULL))
            return bad(d, t, "ids");
        if (w->n_vids > MSG_LIST_MAX || (w->n_vids > 0 && w->vids == NULL))
            return bad(d, t, "vids");
        for (size_t i = 0; i < w->n_ids; i++)
            if (w->ids[i].from >= MSG_SIZE_MAX)
                return bad(d, t, "ids[].from");
        for (size_t i = 0; w->vhave != NULL && i < w->n_vids; i++)
            if (!tags_ok(&w->vhave[i]))
                return bad(d, t, "vh[]");
    } else if (m->type == MSG_OFFER) {
        if (m->u.offer.n_ids == 0 || m->u.offer.n_ids > MSG_LIST_MAX || m->u.offer.ids == NULL)
            return bad(d, t, "ids");
    } else if (m->type == MSG_PEERS) {
        if (m->u.peers.n > MSG_LIST_MAX || (m->u.peers.n > 0 && m->u.peers.peers == NULL))
            return bad(d, t, "peers");
        for (size_t i = 0; i < m->u.peers.n; i++)
            if (!cstr_ok(m->u.peers.peers[i].addr, MSG_ADDR_MAX + 1, msg_addr_ok, false))
                return bad(d, t, "peers[].addr");
    }
    return 0;
}

static int check_fields(const struct msg *m, struct proto_diag *d)
{
    const char *t = msg_type_name(m->type);
    const struct msg_chunk *c = &m->u.chunk;
    const struct msg_manifest *f = &m->u.manifest;

    switch (m->type) {
    case MSG_HELLO:
        if (!cstr_ok(m->u.hello.addr, sizeof(m->u.hello.addr), msg_addr_ok, true))
            return bad(d, t, "addr");
        return bytes_ok(&m->u.hello.pk, 1, MSG_PK_MAX) ? 0 : bad(d, t, "pk");
    case MSG_HELLO_ACK:
        return bytes_ok(&m->u.hello_ack.sig, 1, MSG_SIG_MAX) ? 0 : bad(d, t, "sig");
    case MSG_MANIFEST:
        if (!cstr_ok(f->domain, sizeof(f->domain), msg_domain_ok, false))
            return bad(d, t, "dom");
        if (f->size == 0 || f->size > MSG_SIZE_MAX)
            return bad(d, t, "size");
        return bytes_ok(&f->config, 0, MSG_META_MAX) && bytes_ok(&f->manifest, 0, MSG_META_MAX)
                   ? 0 : bad(d, t, "cfg/man");
    case MSG_CHUNK:
        if (!bytes_ok(&c->data, 1, MSG_CHUNK_MAX) || c->off >= MSG_SIZE_MAX ||
            MSG_SIZE_MAX - c->off < c->data.n)
            return bad(d, t, "off/data");
        return 0;
    case MSG_VOTE:
        return bytes_ok(&m->u.vote.body, 1, MSG_VOTE_MAX) && bytes_ok(&m->u.vote.sig, 1, MSG_SIG_MAX)
                   ? 0 : bad(d, t, "body/sig");
    case MSG_BYE:
        if (m->u.bye.code > 0 || m->u.bye.code < -299)
            return bad(d, t, "code");
        return cstr_ok(m->u.bye.text, sizeof(m->u.bye.text), msg_text_ok, true) ? 0 : bad(d, t, "text");
    case MSG_DIGEST: case MSG_WANT: case MSG_OFFER: case MSG_PEERS:
        return check_lists(m, d);
    }
    return proto_fail(d, PROTO_E_ARG, 0, "message type %d unknown", (int)m->type);
}

/* Initial encode buffer bytes: the whole frame for CHUNK and VOTE, else
 * 256 (the sbuffer doubles from there). */
static size_t first_alloc(const struct msg *m)
{
    if (m->type == MSG_CHUNK)
        return m->u.chunk.data.n + 128;
    if (m->type == MSG_VOTE)
        return m->u.vote.body.n + m->u.vote.sig.n + 128;
    return 256;
}

int msg_encode(const struct msg *m, uint8_t **out, size_t *out_len, struct proto_diag *d)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int rc;

    *out = NULL;
    *out_len = 0;
    if ((rc = check_fields(m, d)) != 0)
        return rc;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    /* Size the buffer once: a CHUNK is mostly data, and a VOTE (most frames
     * of a swarm) is ~150 bytes where msgpack-c would start at 8 KiB. */
    if ((sb.data = malloc(first_alloc(m))) != NULL)
        sb.alloc = first_alloc(m);
    if (msgpack_sbuffer_write(&sb, "\0\0\0\0", FRAME_HEADER) != 0 || enc_body(&pk, m) != 0) {
        rc = PROTO_E_NOMEM;
        goto out;
    }
    if (frame_put_header((uint8_t *)sb.data, sb.size - FRAME_HEADER) != 0) {
        rc = proto_fail(d, PROTO_E_ENCODE, 0, "%s body of %zu bytes over FRAME_MAX",
                        msg_type_name(m->type), sb.size - FRAME_HEADER);
        goto out;
    }
    *out_len = sb.size;
    *out = (uint8_t *)msgpack_sbuffer_release(&sb);   /* the caller owns it now */
out:
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int msg_chunk_head(uint8_t *out, size_t cap, size_t *n, const msg_id id, uint64_t off,
                   size_t data_len)
{
    struct fixbuf f = { out, cap, FRAME_HEADER };
    msgpack_packer pk;

    *n = 0;
    if (cap < MSG_CHUNK_HEAD_MAX || data_len == 0 || data_len > MSG_CHUNK_MAX ||
        off >= MSG_SIZE_MAX || MSG_SIZE_MAX - off < data_len)
        return PROTO_E_ARG;
    msgpack_packer_init(&pk, &f, fixbuf_write);
    if (enc_chunk_head(&pk, id, off, data_len) != 0 ||
        frame_put_header(out, f.n - FRAME_HEADER + data_len) != 0)
        return PROTO_E_ARG;
    *n = f.n;
    return 0;
}
