/* crypto/audit_line.c: strict JSON scanning of audit lines, record schemas,
 * and the Python-compatible line builder used by the writer.
 *
 * The scanner is hand-written rather than jansson because the verifier must
 * run at hundreds of MB/s (jansson builds a tree per line, several times
 * slower than hashing it) and because it must see what a tree hides: member
 * order, duplicate keys and the raw bytes of each value.
 */
#include "audit_line.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"

/* Value kinds as the scanner reports them. */
enum jkind { J_STR = 1, J_NUM, J_TRUE, J_FALSE, J_NULL, J_ARR, J_OBJ };

struct jmember {
    struct audit_span key;   /* raw key text */
    struct audit_span val;   /* strings: contents; others: whole text */
    enum jkind kind;
    size_t items;            /* arrays: item count */
    unsigned item_kinds;     /* arrays: bit (1 << kind) of each item kind seen */
    size_t at;               /* byte offset of the value in the line */
};

struct jscan {
    const char *p;
    size_t n, i;
    struct crypto_diag *d;
};

/* Bytes that may stand unescaped in a string: ASCII 0x20..0x7f but '"' and
 * '\\' (JSON leaves DEL unescaped, and so does Python). */
static bool str_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Eight plain bytes at once (SWAR): no byte < 0x20, >= 0x80, '"' or '\\'.
 * Strings are most of a line's bytes (hashes, ids, signatures). */
static bool word_plain(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');

    return (((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b) | x) & highs ? false : true;
}

static int jfail(struct jscan *s, const char *what)
{
    char c[8];
    unsigned char b = s->i < s->n ? (unsigned char)s->p[s->i] : 0;

    if (s->i >= s->n)
        snprintf(c, sizeof(c), "end");
    else if (b >= 0x21 && b < 0x7f)
        snprintf(c, sizeof(c), "'%c'", b);
    else
        snprintf(c, sizeof(c), "0x%02x", b);
    return crypto_fail(s->d, CRYPTO_E_AUDIT_JSON, s->i, "byte %zu: %s (found %s)", s->i, what, c);
}

static void skip_ws(struct jscan *s)
{
    while (s->i < s->n && (s->p[s->i] == ' ' || s->p[s->i] == '\t' || s->p[s->i] == '\r' ||
                           s->p[s->i] == '\n'))
        s->i++;
}

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Value of a lowercase hex digit, or 0xff: a table, since every line holds
 * at least one 64-digit hash and the generic decoder showed up at 40% of
 * the verifier's time. */
static const uint8_t hexval[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
    ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};  /* stored +1 so that 0 means "not a digit" */

bool audit_hex32(const char *s, size_t n, uint8_t out[SHA256_LEN])
{
    unsigned bad = 0;

    if (n != SHA256_HEX_LEN)
        return false;
    for (size_t i = 0; i < SHA256_LEN; i++) {
        unsigned hi = hexval[(unsigned char)s[2 * i]], lo = hexval[(unsigned char)s[2 * i + 1]];
        bad |= (hi == 0) | (lo == 0);
        if (out != NULL)
            out[i] = (uint8_t)((hi - 1) << 4 | ((lo - 1) & 0xf));
    }
    return bad == 0;
}

/* At the opening quote; leaves i after the closing one. */
static int scan_string(struct jscan *s, struct audit_span *out)
{
    size_t start = ++s->i;

    for (;;) {
        uint64_t w;
        while (s->n - s->i >= 8 && (memcpy(&w, s->p + s->i, 8), word_plain(w)))
            s->i += 8;
        while (s->i < s->n && str_plain((unsigned char)s->p[s->i]))
            s->i++;
        if (s->i >= s->n)
            return jfail(s, "unterminated string");
        if (s->p[s->i] == '"')
            break;
        if (s->p[s->i] != '\\')
            return jfail(s, "control or non-ASCII byte in a string");
        if (++s->i >= s->n)
            return jfail(s, "unterminated escape");
        if (s->p[s->i] == 'u') {
            for (int k = 1; k <= 4; k++)
                if (s->i + k >= s->n || !is_hex((unsigned char)s->p[s->i + k])) {
                    s->i += (size_t)k;
                    return jfail(s, "\\u needs 4 hex digits");
                }
            s->i += 5;
        } else if (strchr("\"\\/bfnrt", s->p[s->i]) != NULL && s->p[s->i] != '\0') {
            s->i++;
        } else {
            return jfail(s, "unknown escape");
        }
    }
    out->p = s->p + start;
    out->n = s->i - start;
    s->i++;
    return 0;
}

static size_t digits(struct jscan *s)
{
    size_t k = 0;

    while (s->i < s->n && s->p[s->i] >= '0' && s->p[s->i] <= '9') {
        s->i++;
        k++;
    }
    return k;
}

/* RFC 8259 number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int scan_number(struct jscan *s)
{
    if (s->p[s->i] == '-')
        s->i++;
    if (s->i < s->n && s->p[s->i] == '0')
        s->i++;
    else if (digits(s) == 0)
        return jfail(s, "number needs a digit");
    if (s->i < s->n && s->p[s->i] == '.') {
        s->i++;
        if (digits(s) == 0)
            return jfail(s, "number needs a digit after '.'");
    }
    if (s->i < s->n && (s->p[s->i] == 'e' || s->p[s->i] == 'E')) {
        s->i++;
        if (s->i < s->n && (s->p[s->i] == '+' || s->p[s->i] == '-'))
            s->i++;
        if (digits(s) == 0)
            return jfail(s, "exponent needs a digit");
    }
    return 0;
}

static int scan_literal(struct jscan *s, const char *lit)
{
    size_t k = strlen(lit);

    if (s->n - s->i < k || memcmp(s->p + s->i, lit, k) != 0)
        return jfail(s, "expected a JSON value");
    s->i += k;
    return 0;
}

static int scan_value(struct jscan *s, int depth, struct jmember *m);

/* Array or object (at its opening bracket); counts items into m. */
static int scan_container(struct jscan *s, int depth, struct jmember *m)
{
    char close = s->p[s->i] == '[' ? ']' : '}';
    struct jmember item;
    struct audit_span key;
    int rc;

    if (depth >= AUDIT_JSON_DEPTH)
        return jfail(s, "nesting deeper than AUDIT_JSON_DEPTH");
    s->i++;
    skip_ws(s);
    if (s->i < s->n && s->p[s->i] == close) {
        s->i++;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            if (s->i >= s->n || s->p[s->i] != '"')
                return jfail(s, "expected a member name");
            if ((rc = scan_string(s, &key)) != 0)
                return rc;
            skip_ws(s);
            if (s->i >= s->n || s->p[s->i] != ':')
                return jfail(s, "expected ':'");
            s->i++;
            skip_ws(s);
        }
        if ((rc = scan_value(s, depth + 1, &item)) != 0)
            return rc;
        if (m != NULL) {
            m->items++;
            m->item_kinds |= 1u << item.kind;
        }
        skip_ws(s);
        if (s->i < s->n && s->p[s->i] == ',') {
            s->i++;
            skip_ws(s);
            continue;
        }
        if (s->i < s->n && s->p[s->i] == close) {
            s->i++;
            return 0;
        }
        return jfail(s, close == ']' ? "expected ',' or ']'" : "expected ',' or '}'");
    }
}

/* Any value at s->i (whitespace already skipped). */
static int scan_value(struct jscan *s, int depth, struct jmember *m)
{
    size_t start = s->i;
    int rc;

    memset(m, 0, sizeof(*m));
    m->at = start;
    if (s->i >= s->n)
        return jfail(s, "expected a JSON value");
    switch (s->p[s->i]) {
    case '"': m->kind = J_STR; return scan_string(s, &m->val);
    case '[': m->kind = J_ARR; rc = scan_container(s, depth, m); break;
    case '{': m->kind = J_OBJ; rc = scan_container(s, depth, NULL); break;
    case 't': m->kind = J_TRUE; rc = scan_literal(s, "true"); break;
    case 'f': m->kind = J_FALSE; rc = scan_literal(s, "false"); break;
    case 'n': m->kind = J_NULL; rc = scan_literal(s, "null"); break;
    default: m->kind = J_NUM; rc = scan_number(s); break;
    }
    m->val.p = s->p + start;
    m->val.n = s->i - start;
    return rc;
}

/* The whole line must be one object; its members go to ms[0..*count). */
static int scan_line(struct jscan *s, struct jmember *ms, size_t *count)
{
    struct audit_span key;
    int rc;

    *count = 0;
    skip_ws(s);
    if (s->i >= s->n || s->p[s->i] != '{')
        return jfail(s, "a record must be a JSON object");
    s->i++;
    skip_ws(s);
    if (s->i < s->n && s->p[s->i] == '}')
        return jfail(s, "empty object");
    for (;;) {
        if (s->i >= s->n || s->p[s->i] != '"')
            return jfail(s, "expected a member name");
        if ((rc = scan_string(s, &key)) != 0)
            return rc;
        skip_ws(s);
        if (s->i >= s->n || s->p[s->i] != ':')
            return jfail(s, "expected ':'");
        s->i++;
        skip_ws(s);
        if (*count == AUDIT_MEMBERS_MAX)
            return jfail(s, "more members than any record has");
        if ((rc = scan_value(s, 1, &ms[*count])) != 0)
            return rc;
        ms[(*count)++].key = key;
        skip_ws(s);
        if (s->i < s->n && s->p[s->i] == ',') {
            s->i++;
            skip_ws(s);
            continue;
        }
        if (s->i < s->n && s->p[s->i] == '}')
            break;
        return jfail(s, "expected ',' or '}'");
    }
    s->i++;
    skip_ws(s);
    return s->i == s->n ? 0 : jfail(s, "bytes after the record's closing '}'");
}

/* ---- record schemas ---- */

enum fkind {
    F_TYPE,      /* string equal to the type's name */
    F_TS,        /* u64 */
    F_U64,
    F_HEX,       /* 64 lowercase hex string */
    F_PREV,      /* 64 lowercase hex, decoded into prev_hash */
    F_STR,       /* any string */
    F_B64,       /* non-empty string of base64 characters */
    F_BOOL,
    F_STRS,      /* array of strings */
    F_HEXS,      /* array of 64-hex strings */
    F_NUMS,      /* array of numbers */
    F_NUM,       /* number */
    F_NUM_NULL,  /* number or null */
    F_OBJ,       /* object */
};

struct field {
    const char *key;
    enum fkind kind;
    size_t off;        /* offset of the target in struct audit_record */
    size_t off_count;  /* arrays: offset of the size_t item count */
};

#define R(f) offsetof(struct audit_record, f)
#define FLD(k, kind, f) { k, kind, R(f), 0 }
#define LST(k, kind, f, c) { k, kind, R(f), R(c) }
#define HEAD FLD("type", F_TYPE, type), FLD("ts", F_TS, ts)
#define TAIL FLD("prev_hash", F_PREV, prev_hash), { NULL, 0, 0, 0 }

static const struct field f_start[] = { HEAD, FLD("node", F_HEX, node),
    FLD("version", F_STR, version), TAIL };
static const struct field f_stop[] = { HEAD, FLD("node", F_HEX, node),
    FLD("reason", F_STR, reason), TAIL };
static const struct field f_peer[] = { HEAD, FLD("peer", F_HEX, peer), FLD("addr", F_STR, addr),
    FLD("event", F_STR, event), FLD("reason", F_STR, reason), TAIL };
static const struct field f_gate[] = { HEAD, FLD("adapter", F_HEX, adapter),
    FLD("domain", F_STR, domain), FLD("verdict", F_STR, verdict),
    LST("reasons", F_STRS, reasons, n_reasons), TAIL };
static const struct field f_vote[] = { HEAD, FLD("vote", F_OBJ, vote), TAIL };
static const struct field f_commit[] = { HEAD, FLD("adapter", F_HEX, adapter),
    FLD("domain", F_STR, domain), FLD("quorum", F_U64, quorum),
    LST("signers", F_HEXS, signers, n_signers), TAIL };
static const struct field f_merge[] = { HEAD, FLD("output", F_HEX, output),
    LST("inputs", F_HEXS, inputs, n_inputs), LST("weights", F_NUMS, weights, n_weights),
    FLD("rank", F_U64, rank), FLD("tau", F_NUM_NULL, tau), FLD("frob_merged", F_NUM, frob_merged),
    FLD("frob_out", F_NUM, frob_out), FLD("dropped_energy", F_NUM, dropped_energy),
    FLD("kld_bound", F_NUM_NULL, kld_bound), FLD("certificate", F_HEX, certificate), TAIL };
static const struct field f_ckpt[] = { HEAD, FLD("count", F_U64, count), FLD("head", F_HEX, head),
    FLD("signer", F_HEX, signer), FLD("sig", F_B64, sig), TAIL };
static const struct field f_proto[] = { FLD("plasmid_id", F_STR, plasmid_id),
    FLD("sha256", F_STR, sha256), FLD("domain", F_STR, domain), FLD("passed", F_BOOL, passed),
    LST("reasons", F_STRS, reasons, n_reasons), TAIL };

static const struct {
    const char *name;
    const struct field *fields;
} schemas[] = {
    [AUDIT_PROTO_GATE] = { "prototype-gate", f_proto },
    [AUDIT_START] = { "start", f_start },
    [AUDIT_STOP] = { "stop", f_stop },
    [AUDIT_PEER] = { "peer", f_peer },
    [AUDIT_GATE] = { "gate", f_gate },
    [AUDIT_VOTE] = { "vote", f_vote },
    [AUDIT_COMMIT] = { "commit", f_commit },
    [AUDIT_MERGE] = { "merge", f_merge },
    [AUDIT_CHECKPOINT] = { "checkpoint", f_ckpt },
};
#define N_SCHEMAS (sizeof(schemas) / sizeof(schemas[0]))

const char *audit_type_name(enum audit_type t)
{
    return (size_t)t < N_SCHEMAS ? schemas[t].name : "?";
}

static bool span_is(struct audit_span s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* Plain decimal, no sign, no leading zero, no fraction, fits in 64 bits. */
static bool parse_u64(struct audit_span s, uint64_t *out)
{
    uint64_t v = 0;

    if (s.n == 0 || s.n > 20 || (s.n > 1 && s.p[0] == '0'))
        return false;
    for (size_t i = 0; i < s.n; i++) {
        unsigned dgt = (unsigned)(s.p[i] - '0');
        if (dgt > 9 || v > (UINT64_MAX - dgt) / 10)
            return false;
        v = v * 10 + dgt;
    }
    *out = v;
    return true;
}

static bool b64_chars(struct audit_span s)
{
    if (s.n == 0 || s.n % 4 != 0)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '='))
            return false;
    }
    return true;
}

/* Every item of an array of 64-hex strings. */
static bool hex_list(struct audit_span list)
{
    struct audit_span it;
    size_t pos = 0;

    while (audit_list_next(list, &pos, &it))
        if (!audit_hex32(it.p, it.n, NULL))
            return false;
    return true;
}

static int bad_member(struct crypto_diag *d, const struct jmember *m, const char *key,
                      const char *want)
{
    return crypto_fail(d, CRYPTO_E_AUDIT_RECORD, m->at, "member \"%s\" at byte %zu: %s", key,
                       m->at, want);
}

/* Check one member against its field and store it. */
static int take(struct audit_record *r, const struct field *f, const struct jmember *m,
                const char *type_name, struct crypto_diag *d)
{
    char *base = (char *)r;
    struct audit_span *sp = (struct audit_span *)(void *)(base + f->off);
    bool is_str = m->kind == J_STR, is_arr = m->kind == J_ARR;

    switch (f->kind) {
    case F_TYPE:
        return is_str && span_is(m->val, type_name) ? 0 : bad_member(d, m, f->key, "wrong type");
    case F_TS:
    case F_U64:
        if (m->kind != J_NUM || !parse_u64(m->val, (uint64_t *)(void *)(base + f->off)))
            return bad_member(d, m, f->key, "want an unsigned 64-bit integer");
        return 0;
    case F_HEX:
    case F_PREV:
        if (!is_str || !audit_hex32(m->val.p, m->val.n, f->kind == F_PREV ? r->prev_hash : NULL))
            return bad_member(d, m, f->key, "want 64 lowercase hex digits");
        if (f->kind == F_HEX)
            *sp = m->val;
        return 0;
    case F_STR:
        if (!is_str)
            return bad_member(d, m, f->key, "want a string");
        *sp = m->val;
        return 0;
    case F_B64:
        if (!is_str || !b64_chars(m->val))
            return bad_member(d, m, f->key, "want base64 text");
        *sp = m->val;
        return 0;
    case F_BOOL:
        if (m->kind != J_TRUE && m->kind != J_FALSE)
            return bad_member(d, m, f->key, "want true or false");
        *(bool *)(void *)(base + f->off) = m->kind == J_TRUE;
        return 0;
    case F_STRS:
    case F_HEXS:
    case F_NUMS:
        if (!is_arr || m->items > AUDIT_LIST_MAX ||
            (m->items > 0 && m->item_kinds != (1u << (f->kind == F_NUMS ? J_NUM : J_STR))))
            return bad_member(d, m, f->key, f->kind == F_NUMS ? "want an array of numbers"
                                                               : "want an array of strings");
        if (f->kind == F_HEXS && !hex_list(m->val))
            return bad_member(d, m, f->key, "want 64 lowercase hex digits in each item");
        *sp = m->val;
        *(size_t *)(void *)(base + f->off_count) = m->items;
        return 0;
    case F_NUM:
    case F_NUM_NULL:
        if (m->kind != J_NUM && !(f->kind == F_NUM_NULL && m->kind == J_NULL))
            return bad_member(d, m, f->key, f->kind == F_NUM ? "want a number" : "want a number or null");
        *sp = m->val;
        return 0;
    case F_OBJ:
        if (m->kind != J_OBJ)
            return bad_member(d, m, f->key, "want an object");
        *sp = m->val;
        return 0;
    }
    return bad_member(d, m, f->key, "unknown field kind");
}

/* Members must be exactly the schema's, in its order. */
static int apply_schema(struct audit_record *r, enum audit_type t, const struct jmember *ms,
                        size_t count, struct crypto_diag *d)
{
    const struct field *f = schemas[t].fields;
    size_t i = 0;
    int rc;

    for (; f[i].key != NULL; i++) {
        if (i >= count)
            return crypto_fail(d, CRYPTO_E_AUDIT_RECORD, 0, "%s record: member \"%s\" missing",
                               schemas[t].name, f[i].key);
        if (!span_is(ms[i].key, f[i].key))
            return crypto_fail(d, CRYPTO_E_AUDIT_RECORD, ms[i].at,
                               "%s record: member %zu is \"%.*s\", want \"%s\"", schemas[t].name,
                               i + 1, (int)(ms[i].key.n > 32 ? 32 : ms[i].key.n), ms[i].key.p,
                               f[i].key);
        if ((rc = take(r, &f[i], &ms[i], schemas[t].name, d)) != 0)
            return rc;
    }
    if (i != count)
        return crypto_fail(d, CRYPTO_E_AUDIT_RECORD, ms[i].at,
                           "%s record: unexpected member %zu after \"prev_hash\"",
                           schemas[t].name, i + 1);
    r->type = t;
    return 0;
}

/* Rules between members of one record. */
static int check_values(struct audit_record *r, struct crypto_diag *d)
{
    switch (r->type) {
    case AUDIT_GATE:
        r->accept = span_is(r->verdict, "accept");
        if (!r->accept && !span_is(r->verdict, "reject"))
            return crypto_fail(d, CRYPTO_E_AUDIT_RECORD, 0, "gate: verdict must be accept or reject");
        return 0;
    case AUDIT_PEER:
        if (!span_is(r->event, "up") && !span_is(r->event, "down") &&
            !span_is(r->event, "strike") && !span_is(r->event, "ban"))
            return crypto_fail(d, CRYPTO_E_AUDIT_RECORD, 0, "peer: event must be up, down, strike or ban");
        return 0;
    case AUDIT_COMMIT:
        if (r->quorum == 0 || r->n_signers < r->quorum)
            return crypto_fail(d, CRYPTO_E_AUDIT_RECORD, 0,
                               "commit: quorum %" PRIu64 " with %zu signers (want 1 <= quorum <= signers)",
                               r->quorum, r->n_signers);
        return 0;
    case AUDIT_MERGE:
        if (r->n_inputs == 0 || r->n_weights != r->n_inputs)
            return crypto_fail(d, CRYPTO_E_AUDIT_RECORD, 0,
                               "merge: %zu inputs and %zu weights (want as many, at least 1)",
                               r->n_inputs, r->n_weights);
        return 0;
    default:
        return 0;
    }
}

static enum audit_type type_of(const struct jmember *first)
{
    if (first->kind != J_STR)
        return N_SCHEMAS;
    for (size_t t = AUDIT_START; t < N_SCHEMAS; t++)
        if (span_is(first->val, schemas[t].name))
            return (enum audit_type)t;
    return N_SCHEMAS;
}

int audit_line_parse(const char *line, size_t n, struct audit_record *r, struct crypto_diag *d)
{
    struct jmember ms[AUDIT_MEMBERS_MAX];
    struct jscan s = { line, n, 0, d };
    size_t count = 0;
    enum audit_type t;
    int rc;

    memset(r, 0, sizeof(*r));
    if (n > AUDIT_LINE_MAX)
        return crypto_fail(d, CRYPTO_E_AUDIT_JSON, AUDIT_LINE_MAX, "line of %zu bytes exceeds %u",
                           n, AUDIT_LINE_MAX);
    if ((rc = scan_line(&s, ms, &count)) != 0)
        return rc;
    if (span_is(ms[0].key, "plasmid_id"))
        t = AUDIT_PROTO_GATE;
    else if (span_is(ms[0].key, "type") && (t = type_of(&ms[0])) < N_SCHEMAS)
        ;
    else
        return crypto_fail(d, CRYPTO_E_AUDIT_RECORD, 0,
                           "first member must be \"type\" (start, stop, peer, gate, vote, commit, "
                           "merge, checkpoint) or the prototype's \"plasmid_id\"");
    if ((rc = apply_schema(r, t, ms, count, d)) != 0 || (rc = check_values(r, d)) != 0) {
        memset(r, 0, sizeof(*r));
        return rc;
    }
    return 0;
}

bool audit_list_next(struct audit_span list, size_t *pos, struct audit_span *item)
{
    struct jscan s = { list.p, list.n, *pos == 0 ? 1 : *pos, NULL };
    struct jmember m;

    skip_ws(&s);
    if (s.i < s.n && s.p[s.i] == ',') {
        s.i++;
        skip_ws(&s);
    }
    if (s.i >= s.n || s.p[s.i] == ']')
        return false;
    if (scan_value(&s, 1, &m) != 0)
        return false;
    *item = m.val;
    *pos = s.i;
    return true;
}

static int unhex4(const char *p)
{
    int v = 0;

    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v = v * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

long audit_span_decode(struct audit_span s, char *out, size_t cap)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    size_t o = 0;

    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (c == '\\') {
            c = s.p[++i];
            if (c == 'u') {
                int v = unhex4(s.p + i + 1);
                if (v == 0 || v > 0x7f)
                    return -1;
                c = (char)v;
                i += 4;
            } else {
                c = to[strchr(from, c) - from];
            }
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

int audit_checkpoint_msg(uint64_t count, const char *head_hex, uint64_t ts_ms,
                         const char *signer_hex, char out[AUDIT_CKPT_MSG_MAX])
{
    int n;

    if (!hex_is_sha256(head_hex) || !hex_is_sha256(signer_hex))
        return CRYPTO_E_ARG;
    n = snprintf(out, AUDIT_CKPT_MSG_MAX,
                 "plorad-audit-checkpoint v1\ncount=%" PRIu64 "\nhead=%s\nts=%" PRIu64 "\nsigner=%s\n",
                 count, head_hex, ts_ms, signer_hex);
    return n > 0 && n < AUDIT_CKPT_MSG_MAX ? n : CRYPTO_E_ARG;
}

/* ---- line builder ---- */

static bool grow(struct audit_buf *b, size_t more)
{
    size_t cap;
    char *p;

    if (b->oom)
        return false;
    if (b->cap - b->n >= more)
        return true;
    cap = b->cap ? b->cap : 256;
    while (cap - b->n < more)
        cap *= 2;
    if ((p = realloc(b->p, cap)) == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void audit_buf_reset(struct audit_buf *b)
{
    b->n = 0;
    b->oom = false;
}

void audit_buf_free(struct audit_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void audit_buf_raw(struct audit_buf *b, const char *s, size_t n)
{
    if (grow(b, n)) {
        memcpy(b->p + b->n, s, n);
        b->n += n;
    }
}

void audit_buf_key(struct audit_buf *b, const char *key)
{
    if (b->n > 0 && b->p[b->n - 1] != '{')
        audit_buf_raw(b, ", ", 2);
    audit_buf_str(b, key, strlen(key));
    audit_buf_raw(b, ": ", 2);
}

/* Python's ensure_ascii escaping; bytes >= 0x80 (a UTF-8 sequence) are
 * decoded to their code point, invalid sequences written as U+FFFD. */
static size_t utf8_point(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0], need = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    unsigned v = c & (0x3f >> need);

    if (need == 0 || c >= 0xf8 || n <= need) {
        *cp = 0xfffd;
        return 1;
    }
    for (unsigned k = 1; k <= need; k++) {
        if ((s[k] & 0xc0) != 0x80) {
            *cp = 0xfffd;
            return 1;
        }
        v = v << 6 | (s[k] & 0x3f);
    }
    *cp = v > 0x10ffff ? 0xfffd : v;
    return need + 1;
}

static void put_u(struct audit_buf *b, unsigned v)
{
    char e[8];

    snprintf(e, sizeof(e), "\\u%04x", v);
    audit_buf_raw(b, e, 6);
}

void audit_buf_str(struct audit_buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run;
    unsigned cp;

    audit_buf_raw(b, "\"", 1);
    while (i < n) {
        for (run = i; run < n && str_plain(u[run]); run++)
            ;
        audit_buf_raw(b, s + i, run - i);
        if ((i = run) >= n)
            break;
        switch (u[i]) {
        case '"': audit_buf_raw(b, "\\\"", 2); i++; continue;
        case '\\': audit_buf_raw(b, "\\\\", 2); i++; continue;
        case '\n': audit_buf_raw(b, "\\n", 2); i++; continue;
        case '\r': audit_buf_raw(b, "\\r", 2); i++; continue;
        case '\t': audit_buf_raw(b, "\\t", 2); i++; continue;
        case '\b': audit_buf_raw(b, "\\b", 2); i++; continue;
        case '\f': audit_buf_raw(b, "\\f", 2); i++; continue;
        default: break;
        }
        if (u[i] < 0x80) {
            put_u(b, u[i++]);
            continue;
        }
        i += utf8_point(u + i, n - i, &cp);
        if (cp >= 0x10000) {   /* UTF-16 surrogate pair, as Python writes it */
            cp -= 0x10000;
            put_u(b, 0xd800 | (cp >> 10));
            put_u(b, 0xdc00 | (cp & 0x3ff));
        } else {
            put_u(b, cp);
        }
    }
    audit_buf_raw(b, "\"", 1);
}

void audit_buf_u64(struct audit_buf *b, uint64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof(t), "%" PRIu64, v);

    audit_buf_raw(b, t, (size_t)n);
}

void audit_buf_double(struct audit_buf *b, double v)
{
    char t[40];
    int n = 0;

    if (v != v || v - v != 0) {
        audit_buf_raw(b, "null", 4);
        return;
    }
    /* shortest of %.15g..%.17g that reads back to the same double */
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(t, sizeof(t), "%.*g", prec, v);
        if (strtod(t, NULL) == v)
            break;
    }
    audit_buf_raw(b, t, (size_t)n);
}
