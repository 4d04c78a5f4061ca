/* tests/unit/test_vote.c: canonical vote bytes (known answer made with the
 * openssl CLI), signing and verification, VOTE.json parsing of hostile
 * input, and the prototype's attestation lines. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "hex.h"
#include "key.h"
#include "keyring.h"
#include "sig.h"
#include "vote.h"

#define GPT2_SHA "658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3e"
#define ED_KEY_ID "b5b6ca89b22388ee2676e9d4627ecb25072c133d9f449793ad11a0131fe8e989"

/* `printf 'plorad-vote v1\n...' | openssl pkeyutl -sign -rawin -inkey
 * reference/keys/ed25519_priv.pem | base64`: the bytes below, signed by the
 * openssl CLI, not by plorad. */
static const char kat_msg[] =
    "plorad-vote v1\n"
    "adapter=" GPT2_SHA "\n"
    "domain=gpt2-c_attn-r8\n"
    "verdict=accept\n"
    "ts=1795415402\n"
    "signer=" ED_KEY_ID "\n"
    "reasons=2\n"
    "reason=gate passed\n"
    "reason=norms ok: z < 3.0\n";
static const char kat_sig[] =
    "6hFSqAPSEU9OiQ7hom17fstFzozBmfkIaq7YhBg0LZ/EcUpiTqjgSNi6PxfgK7nACT6Zkc3EiM+2eNQZQfBlAQ==";

static char *fx_path(const char *rel)
{
    static char path[1024];
    const char *f = getenv("PLORA_FIXTURES");
    if (f == NULL)
        fail_msg("PLORA_FIXTURES is not set");
    snprintf(path, sizeof(path), "%s/reference/%s", f, rel);
    return path;
}

static char *slurp(const char *rel, size_t *n)
{
    const char *path = fx_path(rel);
    FILE *f = fopen(path, "rb");
    char *buf;
    long len;

    if (f == NULL)
        fail_msg("fixture %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    *n = (size_t)len;
    return buf;
}

static struct key *load_priv(const char *rel)
{
    struct key *k = NULL;
    struct crypto_diag d;
    if (key_load_private_pem(&k, fx_path(rel), &d) != 0)
        fail_msg("%s: %s", rel, d.msg);
    return k;
}

static struct vote *kat_vote(void)
{
    struct vote *v = NULL;
    struct crypto_diag d;

    assert_int_equal(vote_new(&v, GPT2_SHA, "gpt2-c_attn-r8", VOTE_ACCEPT, 1795415402, &d), 0);
    assert_int_equal(vote_add_reason(v, "gate passed", &d), 0);
    assert_int_equal(vote_add_reason(v, "norms ok: z < 3.0", &d), 0);
    return v;
}

/* Canonical bytes and an Ed25519 signature made outside plorad. */
static void test_canonical_kat(void **state)
{
    struct key *k = load_priv("keys/ed25519_priv.pem");
    struct vote *v = kat_vote();
    struct crypto_diag d;
    char *msg = NULL, b64[128];
    size_t n;

    (void)state;
    assert_string_equal(key_id(k), ED_KEY_ID);
    assert_int_equal(vote_canonical(v, &msg, &n, &d), CRYPTO_E_VOTE_VALUE); /* no signer yet */
    assert_int_equal(vote_sign(v, k, &d), 0);
    assert_string_equal(v->signer, ED_KEY_ID);
    assert_string_equal(v->algo, "ED25519");
    assert_int_equal(vote_canonical(v, &msg, &n, &d), 0);
    assert_int_equal(n, strlen(kat_msg));
    assert_string_equal(msg, kat_msg);
    assert_int_equal(v->sig_len, 64);
    b64_encode(v->sig, v->sig_len, b64);
    assert_string_equal(b64, kat_sig);   /* Ed25519 is deterministic */
    assert_int_equal(vote_verify(v, k, NULL, &d), 0);
    free(msg);
    vote_free(v);
    key_free(k);
}

/* Sign (RSA and Ed25519), encode, parse back, verify; then every change of
 * a signed field, every signature bit flip and the wrong key must fail. */
static void test_sign_roundtrip_tamper(void **state)
{
    const char *keys[] = { "quorum/keys/key0_priv.pem", "keys/ed25519_priv.pem" };
    struct crypto_diag d;

    (void)state;
    for (size_t ki = 0; ki < 2; ki++) {
        struct key *k = load_priv(keys[ki]), *other = load_priv("quorum/keys/key1_priv.pem");
        struct vote *v = kat_vote(), *back = NULL;
        char *json = NULL;
        size_t n;

        v->verdict = VOTE_REJECT;
        assert_int_equal(vote_sign(v, k, &d), 0);
        assert_int_equal(vote_encode_json(v, &json, &n, &d), 0);
        assert_int_equal(json[n - 1], '\n');
        if (vote_parse_json(json, n, &back, &d) != 0)
            fail_msg("%s: own VOTE.json does not parse: %s", keys[ki], d.msg);
        assert_int_equal(back->verdict, VOTE_REJECT);
        assert_int_equal(back->ts, 1795415402);
        assert_int_equal(back->n_reasons, 2);
        assert_string_equal(back->reasons[1], "norms ok: z < 3.0");
        assert_int_equal(vote_verify(back, k, NULL, &d), 0);
        assert_int_equal(vote_verify(back, other, NULL, &d), CRYPTO_E_VOTE_SIG);
        for (size_t bit = 0; bit < back->sig_len * 8; bit += (ki == 0 ? 7 : 1)) {
            back->sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            if (vote_verify(back, k, NULL, &d) != CRYPTO_E_VOTE_SIG)
                fail_msg("%s: signature with bit %zu flipped verified", keys[ki], bit);
            back->sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        back->verdict = VOTE_ACCEPT;
        assert_int_equal(vote_verify(back, k, NULL, &d), CRYPTO_E_VOTE_SIG);
        back->verdict = VOTE_REJECT, back->ts++;
        assert_int_equal(vote_verify(back, k, NULL, &d), CRYPTO_E_VOTE_SIG);
        back->ts--, back->adapter[0] = '7';
        assert_int_equal(vote_verify(back, k, NULL, &d), CRYPTO_E_VOTE_SIG);
        back->adapter[0] = '6', back->reasons[0][0] = 'G';
        assert_int_equal(vote_verify(back, k, NULL, &d), CRYPTO_E_VOTE_SIG);
        back->reasons[0][0] = 'g', back->domain[0] = 'x';
        assert_int_equal(vote_verify(back, k, NULL, &d), CRYPTO_E_VOTE_SIG);
        back->domain[0] = 'g';
        free(back->reasons[1]), back->n_reasons = 1;   /* a dropped reason */
        assert_int_equal(vote_verify(back, k, NULL, &d), CRYPTO_E_VOTE_SIG);
        /* every truncation of the JSON text is refused by the parser */
        for (size_t cut = 0; cut + 1 < n; cut++) {
            struct vote *t = NULL;
            if (vote_parse_json(json, cut, &t, &d) == 0)
                fail_msg("%s: VOTE.json cut at %zu parsed", keys[ki], cut);
            assert_null(t);
        }
        free(json);
        vote_free(back);
        vote_free(v);
        key_free(other);
        key_free(k);
    }
}

/* Hostile VOTE.json: each row edits one member of a valid vote. */
static void test_parse_table(void **state)
{
    static const struct { const char *name, *from, *to; int want; const char *field; } cases[] = {
        { "unknown member", "\"v\": 1", "\"v\": 1, \"extra\": 0", CRYPTO_E_VOTE_FIELD, "unknown member \"extra\"" },
        { "no type", "\"type\": \"plorad-vote\",", "", CRYPTO_E_VOTE_FIELD, "type: expected a string, got missing" },
        { "wrong type", "\"plorad-vote\"", "\"vote\"", CRYPTO_E_VOTE_VALUE, "type: \"vote\"" },
        { "version 2", "\"v\": 1", "\"v\": 2", CRYPTO_E_VOTE_VALUE, "v: 2 outside 1..1" },
        { "v string", "\"v\": 1", "\"v\": \"1\"", CRYPTO_E_VOTE_FIELD, "v: expected an integer, got string" },
        { "adapter upper", "\"adapter\": \"658b", "\"adapter\": \"658B", CRYPTO_E_VOTE_VALUE, "adapter" },
        { "adapter number", "\"adapter\": \"" GPT2_SHA "\"", "\"adapter\": 5", CRYPTO_E_VOTE_FIELD, "adapter: expected a string, got integer" },
        { "domain bad", "\"gpt2-c_attn-r8\"", "\"GPT2 /x\"", CRYPTO_E_VOTE_VALUE, "domain: \"GPT2 /x\"" },
        { "verdict maybe", "\"accept\"", "\"maybe\"", CRYPTO_E_VOTE_VALUE, "verdict: \"maybe\"" },
        { "verdict bool", "\"accept\"", "true", CRYPTO_E_VOTE_FIELD, "verdict: expected a string, got true" },
        { "ts negative", "\"ts\": 1795415402", "\"ts\": -1", CRYPTO_E_VOTE_VALUE, "ts: -1 outside" },
        { "ts real", "\"ts\": 1795415402", "\"ts\": 1795415402.5", CRYPTO_E_VOTE_FIELD, "ts: expected an integer, got real" },
        { "ts huge", "\"ts\": 1795415402", "\"ts\": 99999999999999", CRYPTO_E_VOTE_VALUE, "ts: 99999999999999 outside" },
        { "signer short", "\"signer\": \"b5b6", "\"signer\": \"b5b", CRYPTO_E_VOTE_VALUE, "signer" },
        { "algo", "\"ED25519\"", "\"RSA\"", CRYPTO_E_VOTE_VALUE, "algo: \"RSA\"" },
        { "sig not b64", "\"sig_b64\": \"6hFS", "\"sig_b64\": \"!hFS", CRYPTO_E_VOTE_VALUE, "sig_b64: not strict base64" },
        { "sig empty", "\"sig_b64\": \"6hFSqAPSEU9OiQ7hom17fstFzozBmfkIaq7YhBg0LZ/EcUpiTqjgSNi6PxfgK7nACT6Zkc3EiM+2eNQZQfBlAQ==\"", "\"sig_b64\": \"\"", CRYPTO_E_VOTE_VALUE, "sig_b64: signature of 0 bytes" },
        { "reasons not array", "\"reasons\": [", "\"reasons\": \"x\", \"r\": [", CRYPTO_E_VOTE_FIELD, "unknown member \"r\"" },
        { "reason number", "\"gate passed\"", "7", CRYPTO_E_VOTE_FIELD, "reasons: item 0: expected a string" },
        { "reason newline", "\"gate passed\"", "\"gate\\npassed\"", CRYPTO_E_VOTE_VALUE, "reasons[0]" },
        { "reason NUL", "\"gate passed\"", "\"gate\\u0000passed\"", CRYPTO_E_VOTE_JSON, "NUL" },
        { "duplicate member", "\"v\": 1", "\"v\": 1, \"v\": 1", CRYPTO_E_VOTE_JSON, "duplicate" },
        { "not an object", "{", "[{", CRYPTO_E_VOTE_JSON, "line" },
        { "array top", "{\n", "[1]\n", CRYPTO_E_VOTE_JSON, "line" },
    };
    struct key *k = load_priv("keys/ed25519_priv.pem");
    struct vote *v = kat_vote(), *back;
    struct crypto_diag d;
    char *json = NULL;
    size_t n;

    (void)state;
    assert_int_equal(vote_sign(v, k, &d), 0);
    assert_int_equal(vote_encode_json(v, &json, &n, &d), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *at = strstr(json, cases[i].from);
        char buf[4096];
        int rc;

        if (at == NULL)
            fail_msg("%s: anchor %s not in %s", cases[i].name, cases[i].from, json);
        snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - json), json, cases[i].to,
                 at + strlen(cases[i].from));
        back = NULL;
        rc = vote_parse_json(buf, strlen(buf), &back, &d);
        if (rc != cases[i].want || strstr(d.msg, cases[i].field) == NULL)
            fail_msg("%s: got %s \"%s\", want %s naming \"%s\"", cases[i].name,
                     crypto_err_name(rc), d.msg, crypto_err_name(cases[i].want), cases[i].field);
        assert_null(back);
    }
    free(json);
    /* size cap and reason count cap */
    {
        size_t big = VOTE_MAX_BYTES + 1;
        char *buf = calloc(1, big + 1);
        assert_non_null(buf);
        memset(buf, ' ', big);
        back = NULL;
        assert_int_equal(vote_parse_json(buf, big, &back, &d), CRYPTO_E_VOTE_LIMIT);
        free(buf);
    }
    for (int i = 2; i < VOTE_MAX_REASONS; i++)
        assert_int_equal(vote_add_reason(v, "r", &d), 0);
    assert_int_equal(vote_add_reason(v, "r", &d), CRYPTO_E_VOTE_LIMIT);
    assert_int_equal(vote_add_reason(v, "", &d), CRYPTO_E_VOTE_VALUE);
    vote_free(v);
    v = NULL;
    assert_int_equal(vote_new(&v, "abc", "", VOTE_ACCEPT, 1, &d), CRYPTO_E_VOTE_VALUE);
    assert_int_equal(vote_new(&v, GPT2_SHA, "Bad Domain", VOTE_ACCEPT, 1, &d), CRYPTO_E_VOTE_VALUE);
    assert_int_equal(vote_new(&v, GPT2_SHA, "", VOTE_ACCEPT, -5, &d), CRYPTO_E_VOTE_VALUE);
    assert_null(v);
    key_free(k);
}

/* The prototype's attestations: parsed as ACCEPT votes, signers found by
 * verifying against the keyring (key1, key2 tagged; key3 bare). */
static void test_attestations(void **state)
{
    static const char *const want_keys[] = {
        "33218cf01d77b08029dda87d67450f04fe7c4d4c73d634b6d5dc28c7713e0653",   /* key1 */
        "058e761cc1d75eb41aa72ed74a721179cde989ccab1f04dde9abc4662c3fc6aa",   /* key2 */
        "be661cfc3ca47bb3eba0bf2ba28f33fa3c6b3d2991d1e683635a472ffb6fc0e3",   /* key3 */
    };
    static const enum vote_form want_form[] = { VOTE_FORM_PROTO_TAGGED, VOTE_FORM_PROTO_TAGGED,
                                                VOTE_FORM_PROTO_BARE };
    size_t n, count = 0;
    char *text = slurp("quorum/gate_adapter/attestations.jsonl", &n);
    struct vote **votes = NULL;
    struct keyring *kr = NULL;
    struct crypto_diag d;

    (void)state;
    assert_int_equal(keyring_new(&kr), 0);
    for (int i = 0; i < 5; i++) {
        char rel[64];
        struct key *k = NULL;
        snprintf(rel, sizeof(rel), "quorum/keys/key%d_pub.pem", i);
        if (key_load_public_pem(&k, fx_path(rel), &d) != 0)
            fail_msg("%s: %s", rel, d.msg);
        assert_int_equal(keyring_add(kr, k, rel, NULL, &d), 0);
        key_free(k);
    }
    if (vote_parse_attestations(text, n, &votes, &count, &d) != 0)
        fail_msg("attestations.jsonl: %s", d.msg);
    assert_int_equal(count, 3);
    for (size_t i = 0; i < count; i++) {
        enum vote_form f;
        assert_int_equal(votes[i]->form, VOTE_FORM_PROTO_ANY);
        assert_int_equal(votes[i]->verdict, VOTE_ACCEPT);
        assert_int_equal(votes[i]->ts, 1795415402);
        assert_int_equal(votes[i]->proto_signer_id, (long long)i + 1);
        assert_string_equal(votes[i]->adapter, GPT2_SHA);
        assert_string_equal(votes[i]->signer, "");
        if (vote_identify(votes[i], kr, &d) != 0)
            fail_msg("attestation %zu: %s", i, d.msg);
        assert_string_equal(votes[i]->signer, want_keys[i]);
        assert_int_equal(vote_verify(votes[i], keyring_get(kr, want_keys[i]), &f, &d), 0);
        assert_int_equal(f, want_form[i]);
    }
    /* a forged line (signature of line 1 on line 3's key slot, other adapter) */
    votes[0]->adapter[63] = votes[0]->adapter[63] == '0' ? '1' : '0';
    memset(votes[0]->signer, 0, sizeof(votes[0]->signer));
    assert_int_equal(vote_identify(votes[0], kr, &d), CRYPTO_E_VOTE_SIG);
    assert_non_null(strstr(d.msg, "no key in the keyring"));
    vote_free_array(votes, count);

    /* bad lines: the line number and the member are named */
    {
        static const struct { const char *text; int want; size_t line; const char *field; } bad[] = {
            { "\n{\"signer_id\": 1}\n", CRYPTO_E_VOTE_FIELD, 2, "domain" },
            { "{\"signer_id\": -1, \"domain\": \"x\"}", CRYPTO_E_VOTE_VALUE, 1, "signer_id" },
            { "{\"signer_id\": 1, \"domain\": \"x\", \"sha256\": \"zz\"}", CRYPTO_E_VOTE_VALUE, 1, "sha256" },
            { "{\"signer_id\": 1, \"domain\": \"x\", \"sha256\": \"" GPT2_SHA "\", \"ts_unix\": \"1\"}",
              CRYPTO_E_VOTE_FIELD, 1, "ts_unix" },
            { "{\"signer_id\": 1, \"domain\": \"x\", \"sha256\": \"" GPT2_SHA "\", \"ts_unix\": 1, "
              "\"signature_b64\": \"@@\"}", CRYPTO_E_VOTE_VALUE, 1, "signature_b64" },
            { "{}\nnot json\n", CRYPTO_E_VOTE_FIELD, 1, "signer_id" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            votes = NULL;
            int rc = vote_parse_attestations(bad[i].text, strlen(bad[i].text), &votes, &count, &d);
            if (rc != bad[i].want || d.line != bad[i].line || strstr(d.msg, bad[i].field) == NULL)
                fail_msg("bad line %zu: got %s line %zu \"%s\"", i, crypto_err_name(rc), d.line,
                         d.msg);
            assert_null(votes);
        }
    }
    keyring_free(kr);
    free(text);
}

/* OpenSSL check of an RSA-PSS signature with one exact salt length. */
static bool pss_verifies_with_salt(const struct key *k, const char *msg, const uint8_t *sig,
                                   size_t len, int salt)
{
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    bool ok = mc != NULL &&
              EVP_DigestVerifyInit(mc, &pc, EVP_sha256(), NULL, (EVP_PKEY *)key_evp(k)) == 1 &&
              EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
              EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, salt) == 1 &&
              EVP_DigestVerify(mc, sig, len, (const unsigned char *)msg, strlen(msg)) == 1;
    EVP_MD_CTX_free(mc);
    return ok;
}

/* `plora sign --prototype` signatures: the prototype's messages, RSA-PSS
 * with the maximum salt (350 bytes for RSA-3072, the only one cryptography
 * 38.0.4 accepts), Ed25519 plain; each form verifies only as itself. */
static void test_proto_sign(void **state)
{
    const char *keys[] = { "keys/rsa3072_priv.pem", "keys/ed25519_priv.pem" };
    struct crypto_diag d;

    (void)state;
    for (size_t ki = 0; ki < 2; ki++) {
        struct key *k = load_priv(keys[ki]);
        for (int f = VOTE_FORM_PROTO_TAGGED; f <= VOTE_FORM_PROTO_BARE; f++) {
            uint8_t *sig = NULL;
            size_t len;
            struct vote *v = NULL;
            enum vote_form matched;
            char msg[SIG_PROTO_MSG_MAX];
            size_t n;

            assert_int_equal(vote_proto_sign(k, (enum vote_form)f, GPT2_SHA, &sig, &len, &d), 0);
            assert_int_equal(sig_prototype_msg(f == VOTE_FORM_PROTO_TAGGED ? SIG_TAG_ADAPTER : NULL,
                                               GPT2_SHA, msg, &n, &d), 0);
            assert_int_equal(vote_proto_new(&v, VOTE_FORM_PROTO_ANY, GPT2_SHA, sig, len, &d), 0);
            assert_int_equal(vote_verify(v, k, &matched, &d), 0);
            assert_int_equal(matched, f);
            v->form = f == VOTE_FORM_PROTO_TAGGED ? VOTE_FORM_PROTO_BARE : VOTE_FORM_PROTO_TAGGED;
            assert_int_equal(vote_verify(v, k, NULL, &d), CRYPTO_E_VOTE_SIG);
            if (ki == 0) {
                assert_int_equal(len, 384);
                assert_true(pss_verifies_with_salt(k, msg, sig, len, 350));
                assert_false(pss_verifies_with_salt(k, msg, sig, len, 32));
            }
            vote_free(v);
            free(sig);
        }
        assert_int_equal(vote_proto_sign(k, VOTE_FORM_PLORAD, GPT2_SHA, &(uint8_t *){ NULL },
                                         &(size_t){ 0 }, &d), CRYPTO_E_VOTE_FORM);
        key_free(k);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_kat),
        cmocka_unit_test(test_sign_roundtrip_tamper),
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_attestations),
        cmocka_unit_test(test_proto_sign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
