/* crypto/vote.c: signed votes: canonical bytes, signing, verification,
 * VOTE.json and the prototype's attestation lines. See vote.h. */
#include "vote.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "key.h"
#include "keyring.h"
#include "sig.h"

#define ATTEST_DOMAIN_MAX 256   /* bytes; the attestation's domain is unsigned text */

const char *vote_verdict_name(enum vote_verdict v)
{
    return v == VOTE_ACCEPT ? "accept" : v == VOTE_REJECT ? "reject" : "?";
}

const char *vote_form_name(enum vote_form f)
{
    switch (f) {
    case VOTE_FORM_PLORAD: return "plorad";
    case VOTE_FORM_PROTO_TAGGED: return "prototype-tagged";
    case VOTE_FORM_PROTO_BARE: return "prototype-bare";
    case VOTE_FORM_PROTO_ANY: return "prototype";
    case VOTE_FORM_PUBLISHER: return "publisher";
    }
    return "?";
}

static bool is_proto(enum vote_form f)
{
    return f == VOTE_FORM_PROTO_TAGGED || f == VOTE_FORM_PROTO_BARE || f == VOTE_FORM_PROTO_ANY;
}

static bool domain_ok(const char *s)
{
    return s != NULL && (s[0] == '\0' || sig_domain_valid(s));
}

static bool reason_ok(const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++)
        if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e)
            return false;
    return n >= 1 && n <= VOTE_MAX_REASON_LEN;
}

static const char *algo_of(const struct key *k)
{
    return key_type(k) == KEY_TYPE_ED25519 ? "ED25519" : "RSA-PSS-SHA256";
}

void vote_free(struct vote *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n_reasons; i++)
        free(v->reasons[i]);
    free(v->reasons);
    free(v->domain);
    free(v->sig);
    free(v->base_model);
    free(v);
}

void vote_free_array(struct vote **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        vote_free(v[i]);
    free(v);
}

/* Common constructor: checks the adapter id, copies the domain as given. */
static int vote_alloc(struct vote **out, enum vote_form form, const char *adapter,
                      const char *domain, struct crypto_diag *d)
{
    struct vote *v;

    *out = NULL;
    if (!hex_is_sha256(adapter))
        return crypto_fail(d, CRYPTO_E_VOTE_VALUE, 0, "adapter: \"%.70s\" is not 64 lowercase hex",
                           adapter != NULL ? adapter : "(null)");
    if ((v = calloc(1, sizeof(*v))) == NULL ||
        (v->domain = strdup(domain != NULL ? domain : "")) == NULL) {
        free(v);
        return crypto_fail(d, CRYPTO_E_NOMEM, 0, "out of memory");
    }
    v->form = form;
    memcpy(v->adapter, adapter, 65);
    v->verdict = VOTE_ACCEPT;
    v->ts = VOTE_TS_NONE;
    v->proto_signer_id = -1;
    *out = v;
    return 0;
}

int vote_new(struct vote **out, const char *adapter, const char *domain,
             enum vote_verdict verdict, int64_t ts, struct crypto_diag *d)
{
    int rc;

    *out = NULL;
    if (!domain_ok(domain))
        return crypto_fail(d, CRYPTO_E_VOTE_VALUE, 0,
                           "domain: \"%.70s\" is not \"\" or [a-z0-9][a-z0-9._-]{0,63}",
                           domain != NULL ? domain : "(null)");
    if (verdict != VOTE_ACCEPT && verdict != VOTE_REJECT)
        return crypto_fail(d, CRYPTO_E_VOTE_VALUE, 0, "verdict: %d is not accept or reject",
                           (int)verdict);
    if (ts < 0 || ts > VOTE_TS_MAX)
        return crypto_fail(d, CRYPTO_E_VOTE_VALUE, 0, "ts: %lld outside 0..%lld", (long long)ts,
                           VOTE_TS_MAX);
    if ((rc = vote_alloc(out, VOTE_FORM_PLORAD, adapter, domain, d)) != 0)
        return rc;
    (*out)->verdict = verdict;
    (*out)->ts = ts;
    return 0;
}

int vote_add_reason(struct vote *v, const char *reason, struct crypto_diag *d)
{
    char **r, *s;

    if (reason == NULL || !reason_ok(reason))
        return crypto_fail(d, CRYPTO_E_VOTE_VALUE, 0, "reasons[%zu]: must be 1..%d printable "
                           "ASCII characters", v->n_reasons, VOTE_MAX_REASON_LEN);
    if (v->n_reasons >= VOTE_MAX_REASONS)
        return crypto_fail(d, CRYPTO_E_VOTE_LIMIT, 0, "reasons: more than %d",
                           VOTE_MAX_REASONS);
    if ((s = strdup(reason)) == NULL ||
        (r = realloc(v->reasons, (v->n_reasons + 1) * sizeof(*r))) == NULL) {
        free(s);
        return crypto_fail(d, CRYPTO_E_NOMEM, 0, "out of memory");
    }
    r[v->n_reasons++] = s;
    v->reasons = r;
    return 0;
}

int vote_canonical(const struct vote *v, char **out, size_t *n, struct crypto_diag *d)
{
    size_t cap = 512 + v->n_reasons * (VOTE_MAX_REASON_LEN + 8), k;
    char *buf;
    int w;

    *out = NULL;
    *n = 0;
    if (v->form != VOTE_FORM_PLORAD)
        return crypto_fail(d, CRYPTO_E_VOTE_FORM, 0, "canonical bytes exist for plorad votes only");
    if (!hex_is_sha256(v->adapter) || !domain_ok(v->domain) || !hex_is_sha256(v->signer) ||
        v->ts < 0 || v->ts > VOTE_TS_MAX || v->n_reasons > VOTE_MAX_REASONS ||
        (v->verdict != VOTE_ACCEPT && v->verdict != VOTE_REJECT))
        return crypto_fail(d, CRYPTO_E_VOTE_VALUE, 0,
                           "vote fields invalid (adapter, domain, signer, ts or verdict)");
    if ((buf = malloc(cap)) == NULL)
        return crypto_fail(d, CRYPTO_E_NOMEM, 0, "out of memory");
    w = snprintf(buf, cap, "plorad-vote v1\nadapter=%s\ndomain=%s\nverdict=%s\nts=%lld\n"
                 "signer=%s\nreasons=%zu\n", v->adapter, v->domain, vote_verdict_name(v->verdict),
                 (long long)v->ts, v->signer, v->n_reasons);
    k = (size_t)w;
    for (size_t i = 0; i < v->n_reasons; i++) {
        if (!reason_ok(v->reasons[i])) {
            free(buf);
            return crypto_fail(d, CRYPTO_E_VOTE_VALUE, 0, "reasons[%zu]: not 1..%d printable "
                               "ASCII characters", i, VOTE_MAX_REASON_LEN);
        }
        k += (size_t)snprintf(buf + k, cap - k, "reason=%s\n", v->reasons[i]);
    }
    *out = buf;
    *n = k;
    return 0;
}

int vote_sign(struct vote *v, const struct key *k, struct crypto_diag *d)
{
    char *msg = NULL, old[65];
    uint8_t *sig = NULL;
    size_t n, len;
    int rc;

    if (v->form != VOTE_FORM_PLORAD)
        return crypto_fail(d, CRYPTO_E_VOTE_FORM, 0, "only plorad votes are signed here");
    memcpy(old, v->signer, sizeof(old));
    memcpy(v->signer, key_id(k), 65);
    if ((rc = vote_canonical(v, &msg, &n, d)) != 0 ||
        (rc = sig_sign(k, msg, n, &sig, &len, d)) != 0) {
        memcpy(v->signer, old, sizeof(old));
        free(msg);
        return rc;
    }
    free(v->sig);
    v->sig = sig;
    v->sig_len = len;
    snprintf(v->algo, sizeof(v->algo), "%s", algo_of(k));
    free(msg);
    return 0;
}

/* Map sig.h's verdict to the vote's; keep real errors as they are. */
static int sig_rc(int rc, struct crypto_diag *d, const struct vote *v, const struct key *pub)
{
    if (rc == CRYPTO_E_SIG_BAD)
        return crypto_fail(d, CRYPTO_E_VOTE_SIG, 0, "%s vote on %.16s...: signature does not "
                           "verify with key %.16s...", vote_form_name(v->form), v->adapter,
                           key_id(pub));
    return rc;
}

static int verify_proto(const struct vote *v, const struct key *pub, enum vote_form *matched,
                        struct crypto_diag *d)
{
    char msg[SIG_PROTO_MSG_MAX];
    enum sig_proto_form f = SIG_FORM_NONE;
    size_t n;
    int rc;

    if (v->form == VOTE_FORM_PROTO_ANY) {
        rc = sig_verify_prototype_adapter(pub, v->adapter, v->sig, v->sig_len, &f, d);
        if (rc == 0 && matched != NULL)
            *matched = f == SIG_FORM_TAGGED ? VOTE_FORM_PROTO_TAGGED : VOTE_FORM_PROTO_BARE;
        return sig_rc(rc, d, v, pub);
    }
    rc = sig_prototype_msg(v->form == VOTE_FORM_PROTO_TAGGED ? SIG_TAG_ADAPTER : NULL,
                           v->adapter, msg, &n, d);
    if (rc == 0)
        rc = sig_verify_prototype(pub, msg, n, v->sig, v->sig_len, d);
    return sig_rc(rc, d, v, pub);
}

int vote_verify(const struct vote *v, const struct key *pub, enum vote_form *matched,
                struct crypto_diag *d)
{
    struct sig_adapter a;
    char *msg = NULL;
    size_t n;
    int rc;

    if (matched != NULL)
        *matched = v->form;
    if (pub == NULL || v->sig == NULL)
        return crypto_fail(d, CRYPTO_E_VOTE_SIG, 0, "vote has no signature or no key");
    if (is_proto(v->form))
        return verify_proto(v, pub, matched, d);
    if (strcmp(v->signer, key_id(pub)) != 0 || (v->algo[0] && strcmp(v->algo, algo_of(pub)))) {
        return crypto_fail(d, CRYPTO_E_VOTE_SIG, 0, "vote names signer %.16s... (%s), key is "
                           "%.16s... (%s)", v->signer, v->algo, key_id(pub), algo_of(pub));
    }
    if (v->form == VOTE_FORM_PUBLISHER) {
        a = (struct sig_adapter){ .weights_sha256 = v->adapter, .config_sha256 = v->config_sha256,
                                  .domain = v->domain, .base_model = v->base_model };
        return sig_rc(sig_verify_adapter(pub, &a, v->sig, v->sig_len, d), d, v, pub);
    }
    if ((rc = vote_canonical(v, &msg, &n, d)) == 0)
        rc = sig_rc(sig_verify(pub, msg, n, v->sig, v->sig_len, d), d, v, pub);
    free(msg);
    return rc;
}

/* Signature length a key makes (RSA: modulus bytes). */
static size_t sig_len_for(const struct key *k)
{
    return key_type(k) == KEY_TYPE_ED25519 ? SIG_ED25519_LEN : (key_bits(k) + 7) / 8;
}

int vote_identify(struct vote *v, const struct keyring *kr, struct crypto_diag *d)
{
    const struct key *k;
    int rc;

    if (!is_proto(v->form)) {
        if ((k = keyring_get(kr, v->signer)) == NULL)
            return crypto_fail(d, CRYPTO_E_KEY_UNKNOWN, 0, "signer %.16s... not in the keyring",
                               v->signer);
        return vote_verify(v, k, NULL, d);
    }
    memset(v->signer, 0, sizeof(v->signer));   /* no stale signer from an earlier keyring */
    memset(v->algo, 0, sizeof(v->algo));
    for (size_t i = 0; (k = keyring_at(kr, i)) != NULL; i++) {
        if (sig_len_for(k) != v->sig_len)
            continue;
        rc = vote_verify(v, k, NULL, d);
        if (rc == 0) {
            memcpy(v->signer, key_id(k), 65);
            snprintf(v->algo, sizeof(v->algo), "%s", algo_of(k));
            crypto_diag_clear(d);
            return 0;
        }
        if (rc != CRYPTO_E_VOTE_SIG)
            return rc;
    }
    return crypto_fail(d, CRYPTO_E_VOTE_SIG, 0, "prototype signature on %.16s...: no key in the "
                       "keyring verifies it (tagged or bare)", v->adapter);
}

int vote_proto_new(struct vote **out, enum vote_form form, const char *adapter,
                   const uint8_t *sig, size_t sig_len, struct crypto_diag *d)
{
    int rc;

    *out = NULL;
    if (!is_proto(form) || sig_len == 0 || sig_len > SIG_MAX_LEN)
        return crypto_fail(d, CRYPTO_E_VOTE_VALUE, 0, "prototype vote: bad form or signature "
                           "length %zu (1..%d)", sig_len, SIG_MAX_LEN);
    if ((rc = vote_alloc(out, form, adapter, "", d)) != 0)
        return rc;
    if (((*out)->sig = malloc(sig_len)) == NULL) {
        vote_free(*out);
        *out = NULL;
        return crypto_fail(d, CRYPTO_E_NOMEM, 0, "out of memory");
    }
    memcpy((*out)->sig, sig, sig_len);
    (*out)->sig_len = sig_len;
    return 0;
}

int vote_proto_sign(const struct key *k, enum vote_form form, const char *adapter,
                    uint8_t **sig, size_t *len, struct crypto_diag *d)
{
    EVP_PKEY *pkey = (EVP_PKEY *)key_evp(k);
    EVP_MD_CTX *mc = NULL;
    EVP_PKEY_CTX *pc = NULL;
    char msg[SIG_PROTO_MSG_MAX];
    bool rsa = key_type(k) == KEY_TYPE_RSA;
    size_t n, cap = 0;
    int rc = CRYPTO_E_INTERNAL;

    *sig = NULL;
    *len = 0;
    if (form != VOTE_FORM_PROTO_TAGGED && form != VOTE_FORM_PROTO_BARE)
        return crypto_fail(d, CRYPTO_E_VOTE_FORM, 0, "prototype signatures are tagged or bare");
    if (!key_is_private(k))
        return crypto_fail(d, CRYPTO_E_KEY_NOT_PRIVATE, 0, "signing needs a private key");
    if (sig_prototype_msg(form == VOTE_FORM_PROTO_TAGGED ? SIG_TAG_ADAPTER : NULL, adapter, msg,
                          &n, d) != 0)
        return crypto_fail(d, CRYPTO_E_VOTE_VALUE, 0, "adapter: not 64 lowercase hex");
    if ((mc = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestSignInit(mc, &pc, rsa ? EVP_sha256() : NULL, NULL, pkey) != 1 ||
        (rsa && (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) != 1 ||
                 EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_MAX) != 1 ||
                 EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) != 1)) ||
        EVP_DigestSign(mc, NULL, &cap, (const unsigned char *)msg, n) != 1)
        goto out;
    if ((*sig = malloc(cap)) == NULL) {
        rc = CRYPTO_E_NOMEM;
        goto out;
    }
    if (EVP_DigestSign(mc, *sig, &cap, (const unsigned char *)msg, n) != 1)
        goto out;
    *len = cap;
    rc = 0;
out:
    if (rc != 0) {
        free(*sig);
        *sig = NULL;
        crypto_fail(d, rc, 0, "prototype-form signature failed (OpenSSL)");
    }
    EVP_MD_CTX_free(mc);
    return rc;
}

int vote_publisher_new(struct vote **out, const struct sig_adapter *a, const char *key_id_hex,
                       const uint8_t *sig, size_t sig_len, struct crypto_diag *d)
{
    char msg[SIG_ADAPTER_MSG_MAX];
    struct vote *v = NULL;
    size_t n;
    int rc;

    *out = NULL;
    if (sig_adapter_msg(a, msg, &n, d) != 0 || !hex_is_sha256(key_id_hex) || sig_len == 0 ||
        sig_len > SIG_MAX_LEN)
        return crypto_fail(d, CRYPTO_E_VOTE_VALUE, 0, "publisher signature: %s",
                           hex_is_sha256(key_id_hex) ? "adapter fields or signature length invalid"
                                                     : "key_id is not 64 lowercase hex");
    if ((rc = vote_alloc(&v, VOTE_FORM_PUBLISHER, a->weights_sha256, a->domain, d)) != 0)
        return rc;
    memcpy(v->signer, key_id_hex, 65);
    memcpy(v->config_sha256, a->config_sha256, 65);
    if ((v->base_model = strdup(a->base_model)) == NULL || (v->sig = malloc(sig_len)) == NULL) {
        vote_free(v);
        return crypto_fail(d, CRYPTO_E_NOMEM, 0, "out of memory");
    }
    memcpy(v->sig, sig, sig_len);
    v->sig_len = sig_len;
    *out = v;
    return 0;
}

/* ---- JSON ------------------------------------------------------------- */

int vote_encode_json(const struct vote *v, char **out, size_t *n, struct crypto_diag *d)
{
    json_t *o = NULL, *reasons = NULL;
    char *b64 = NULL, *text = NULL;
    int rc = CRYPTO_E_NOMEM;

    *out = NULL;
    *n = 0;
    if (v->form != VOTE_FORM_PLORAD || v->sig == NULL)
        return crypto_fail(d, CRYPTO_E_VOTE_FORM, 0, "only a signed plorad vote has a VOTE.json");
    if ((b64 = malloc(b64_encoded_len(v->sig_len) + 1)) == NULL ||
        (o = json_object()) == NULL || (reasons = json_array()) == NULL)
        goto out;
    b64_encode(v->sig, v->sig_len, b64);
    for (size_t i = 0; i < v->n_reasons; i++)
        if (json_array_append_new(reasons, json_string(v->reasons[i])) != 0)
            goto out;
    if (json_object_set_new(o, "type", json_string(VOTE_TYPE)) || json_object_set_new(o, "v", json_integer(VOTE_VERSION)) ||
        json_object_set_new(o, "adapter", json_string(v->adapter)) ||
        json_object_set_new(o, "domain", json_string(v->domain)) ||
        json_object_set_new(o, "verdict", json_string(vote_verdict_name(v->verdict))) ||
        json_object_set(o, "reasons", reasons) || json_object_set_new(o, "ts", json_integer(v->ts)) ||
        json_object_set_new(o, "signer", json_string(v->signer)) ||
        json_object_set_new(o, "algo", json_string(v->algo)) ||
        json_object_set_new(o, "sig_b64", json_string(b64)))
        goto out;
    if ((text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL)
        goto out;
    *n = strlen(text) + 1;
    if ((*out = realloc(text, *n + 1)) == NULL) {
        *n = 0;
        goto out;
    }
    text = NULL;
    (*out)[*n - 1] = '\n';
    (*out)[*n] = '\0';
    rc = 0;
out:
    if (rc != 0)
        crypto_fail(d, rc, 0, "out of memory encoding a vote");
    free(text);
    free(b64);
    json_decref(reasons);
    json_decref(o);
    return rc;
}

static int field_fail(struct crypto_diag *d, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int field_fail(struct crypto_diag *d, int code, const char *field, const char *fmt, ...)
{
    char why[192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return crypto_fail(d, code, 0, "%s: %s", field, why);
}

static const char *jtype(const json_t *j)
{
    static const char *const names[] = { "object", "array", "string", "integer", "real",
                                         "true", "false", "null" };
    return j == NULL ? "missing" : names[json_typeof(j)];
}

/* Member `name` as a string of at most `max` bytes (no NUL inside). */
static int get_str(const json_t *o, const char *name, size_t max, const char **out,
                   struct crypto_diag *d)
{
    const json_t *j = json_object_get(o, name);

    if (!json_is_string(j))
        return field_fail(d, CRYPTO_E_VOTE_FIELD, name, "expected a string, got %s", jtype(j));
    if (json_string_length(j) > max || strlen(json_string_value(j)) != json_string_length(j))
        return field_fail(d, CRYPTO_E_VOTE_VALUE, name, "string of %zu bytes (max %zu, no NUL)",
                          json_string_length(j), max);
    *out = json_string_value(j);
    return 0;
}

static int get_int(const json_t *o, const char *name, long long lo, long long hi, long long *out,
                   struct crypto_diag *d)
{
    const json_t *j = json_object_get(o, name);

    if (!json_is_integer(j))
        return field_fail(d, CRYPTO_E_VOTE_FIELD, name, "expected an integer, got %s", jtype(j));
    *out = json_integer_value(j);
    if (*out < lo || *out > hi)
        return field_fail(d, CRYPTO_E_VOTE_VALUE, name, "%lld outside %lld..%lld", *out, lo, hi);
    return 0;
}

static int get_hex(const json_t *o, const char *name, char out[65], struct crypto_diag *d)
{
    const char *s = NULL;
    int rc;

    if ((rc = get_str(o, name, 64, &s, d)) != 0)
        return rc;
    if (!hex_is_sha256(s))
        return field_fail(d, CRYPTO_E_VOTE_VALUE, name, "\"%s\" is not 64 lowercase hex", s);
    memcpy(out, s, 65);
    return 0;
}

static int get_sig(const json_t *o, const char *name, struct vote *v, struct crypto_diag *d)
{
    const char *s = NULL;
    int rc;

    if ((rc = get_str(o, name, b64_encoded_len(SIG_MAX_LEN), &s, d)) != 0)
        return rc;
    if (b64_decode(s, strlen(s), &v->sig, &v->sig_len, d) != 0)
        return field_fail(d, CRYPTO_E_VOTE_VALUE, name, "not strict base64 (%s)", d ? d->msg : "");
    if (v->sig_len == 0 || v->sig_len > SIG_MAX_LEN)
        return field_fail(d, CRYPTO_E_VOTE_VALUE, name, "signature of %zu bytes (1..%d)",
                          v->sig_len, SIG_MAX_LEN);
    return 0;
}

static int load_object(const void *buf, size_t n, json_t **out, struct crypto_diag *d)
{
    json_error_t je;

    *out = NULL;
    if (n > VOTE_MAX_BYTES)
        return crypto_fail(d, CRYPTO_E_VOTE_LIMIT, 0, "vote of %zu bytes, more than %u", n,
                           (unsigned)VOTE_MAX_BYTES);
    if ((*out = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je)) == NULL) {
        crypto_fail(d, CRYPTO_E_VOTE_JSON, (size_t)je.position, "line %d column %d: %s",
                    je.line, je.column, je.text);
        if (d != NULL)
            d->line = je.line > 0 ? (size_t)je.line : 0;
        return CRYPTO_E_VOTE_JSON;
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return crypto_fail(d, CRYPTO_E_VOTE_FIELD, 0, "top level: expected an object");
    }
    return 0;
}

static int check_members(const json_t *o, struct crypto_diag *d)
{
    static const char *const known[] = { "type", "v", "adapter", "domain", "verdict", "reasons",
                                         "ts", "signer", "algo", "sig_b64" };
    const char *key;
    const json_t *val;
    const char *s;
    long long ver;
    int rc;

    json_object_foreach((json_t *)o, key, val) {
        size_t i = 0;
        while (i < sizeof(known) / sizeof(known[0]) && strcmp(key, known[i]) != 0)
            i++;
        if (i == sizeof(known) / sizeof(known[0]))
            return field_fail(d, CRYPTO_E_VOTE_FIELD, "(object)", "unknown member \"%.60s\" "
                              "(it would not be covered by the signature)", key);
    }
    if ((rc = get_str(o, "type", 32, &s, d)) != 0)
        return rc;
    if (strcmp(s, VOTE_TYPE) != 0)
        return field_fail(d, CRYPTO_E_VOTE_VALUE, "type", "\"%s\" is not \"%s\"", s, VOTE_TYPE);
    return get_int(o, "v", VOTE_VERSION, VOTE_VERSION, &ver, d);
}

static int parse_plorad(const json_t *o, struct vote *v, struct crypto_diag *d)
{
    const json_t *reasons = json_object_get(o, "reasons"), *r;
    const char *s = NULL;
    long long ts = 0;
    size_t i;
    int rc;

    if ((rc = get_str(o, "verdict", 16, &s, d)) != 0)
        return rc;
    if (strcmp(s, "accept") != 0 && strcmp(s, "reject") != 0)
        return field_fail(d, CRYPTO_E_VOTE_VALUE, "verdict", "\"%s\" is not accept or reject", s);
    v->verdict = strcmp(s, "accept") == 0 ? VOTE_ACCEPT : VOTE_REJECT;
    if ((rc = get_int(o, "ts", 0, VOTE_TS_MAX, &ts, d)) != 0 ||
        (rc = get_hex(o, "signer", v->signer, d)) != 0 ||
        (rc = get_str(o, "algo", sizeof(v->algo) - 1, &s, d)) != 0)
        return rc;
    v->ts = ts;
    if (strcmp(s, "RSA-PSS-SHA256") != 0 && strcmp(s, "ED25519") != 0)
        return field_fail(d, CRYPTO_E_VOTE_VALUE, "algo", "\"%s\" is not RSA-PSS-SHA256 or "
                          "ED25519", s);
    snprintf(v->algo, sizeof(v->algo), "%s", s);
    if (!json_is_array(reasons))
        return field_fail(d, CRYPTO_E_VOTE_FIELD, "reasons", "expected an array, got %s",
                          jtype(reasons));
    if (json_array_size(reasons) > VOTE_MAX_REASONS)
        return field_fail(d, CRYPTO_E_VOTE_LIMIT, "reasons", "%zu items, more than %d",
                          json_array_size(reasons), VOTE_MAX_REASONS);
    json_array_foreach(reasons, i, r) {
        if (!json_is_string(r))
            return field_fail(d, CRYPTO_E_VOTE_FIELD, "reasons", "item %zu: expected a string, "
                              "got %s", i, jtype(r));
        if ((rc = vote_add_reason(v, json_string_value(r), d)) != 0)
            return rc;
    }
    return get_sig(o, "sig_b64", v, d);
}

int vote_parse_json(const void *buf, size_t n, struct vote **out, struct crypto_diag *d)
{
    json_t *o = NULL;
    struct vote *v = NULL;
    const char *domain;
    char adapter[65];
    int rc;

    *out = NULL;
    crypto_diag_clear(d);
    if ((rc = load_object(buf, n, &o, d)) != 0 || (rc = check_members(o, d)) != 0 ||
        (rc = get_hex(o, "adapter", adapter, d)) != 0 ||
        (rc = get_str(o, "domain", SIG_DOMAIN_MAX, &domain, d)) != 0)
        goto out;
    if (!domain_ok(domain)) {
        rc = field_fail(d, CRYPTO_E_VOTE_VALUE, "domain", "\"%s\" is not \"\" or "
                        "[a-z0-9][a-z0-9._-]{0,63}", domain);
        goto out;
    }
    if ((rc = vote_alloc(&v, VOTE_FORM_PLORAD, adapter, domain, d)) != 0 ||
        (rc = parse_plorad(o, v, d)) != 0)
        goto out;
    *out = v;
    v = NULL;
out:
    vote_free(v);
    json_decref(o);
    return rc;
}

int vote_parse_attestation(const void *line, size_t n, struct vote **out, struct crypto_diag *d)
{
    json_t *o = NULL;
    struct vote *v = NULL;
    const char *domain;
    char adapter[65];
    long long id = 0, ts = 0;
    int rc;

    *out = NULL;
    if ((rc = load_object(line, n, &o, d)) != 0 ||
        (rc = get_int(o, "signer_id", 0, INT64_MAX, &id, d)) != 0 ||
        (rc = get_str(o, "domain", ATTEST_DOMAIN_MAX, &domain, d)) != 0 ||
        (rc = get_hex(o, "sha256", adapter, d)) != 0 ||
        (rc = get_int(o, "ts_unix", 0, VOTE_TS_MAX, &ts, d)) != 0 ||
        (rc = vote_alloc(&v, VOTE_FORM_PROTO_ANY, adapter, domain, d)) != 0 ||
        (rc = get_sig(o, "signature_b64", v, d)) != 0)
        goto out;
    v->proto_signer_id = id;
    v->ts = ts;
    *out = v;
    v = NULL;
out:
    vote_free(v);
    json_decref(o);
    return rc;
}

int vote_parse_attestations(const void *buf, size_t n, struct vote ***out, size_t *count,
                            struct crypto_diag *d)
{
    const char *p = buf, *end = p + n;
    struct vote **arr = NULL, *v;
    size_t lines = 0, k = 0;
    int rc = 0;

    *out = NULL;
    *count = 0;
    crypto_diag_clear(d);
    while (p < end && rc == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl != NULL ? nl : end) - p);
        lines++;
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (lines > VOTE_MAX_ATTEST_LINES)
            rc = crypto_fail(d, CRYPTO_E_VOTE_LIMIT, 0, "more than %d lines",
                             VOTE_MAX_ATTEST_LINES);
        else if (len > 0 && (rc = vote_parse_attestation(p, len, &v, d)) == 0) {
            struct vote **a = realloc(arr, (k + 1) * sizeof(*a));
            if (a == NULL) {
                vote_free(v);
                rc = crypto_fail(d, CRYPTO_E_NOMEM, 0, "out of memory");
            } else {
                arr = a;
                arr[k++] = v;
            }
        }
        p = nl != NULL ? nl + 1 : end;
    }
    if (rc != 0) {
        if (d != NULL)
            d->line = lines;
        vote_free_array(arr, k);
        return rc;
    }
    *out = arr;
    *count = k;
    return 0;
}
