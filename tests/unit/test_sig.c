/* tests/unit/test_sig.c: interop with every prototype signature in the reference fixtures
 * (accept what it accepted, reject what it rejected), the salt each scheme really uses,
 * Ed25519 determinism, plorad's canonical adapter message, and tampered signatures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "hex.h"
#include "key.h"
#include "sig.h"

static const char *fixtures(void)
{
    const char *f = getenv("PLORA_FIXTURES");

    if (f == NULL)
        fail_msg("PLORA_FIXTURES is not set");
    return f;
}

static void ref_path(char *out, size_t cap, const char *rel)
{
    struct stat st;

    if (snprintf(out, cap, "%s/reference/%s", fixtures(), rel) >= (int)cap)
        fail_msg("fixture path over %zu bytes: %s/reference/%s", cap, fixtures(), rel);
    if (stat(out, &st) != 0)
        fail_msg("missing fixture %s", out);
}

static json_t *ref_json(const char *rel)
{
    char path[4096];
    json_error_t e;
    json_t *j;

    ref_path(path, sizeof(path), rel);
    if ((j = json_load_file(path, 0, &e)) == NULL)
        fail_msg("%s:%d: %s", path, e.line, e.text);
    return j;
}

static struct key *ref_key(const char *rel, bool priv)
{
    char path[4096];
    struct key *k = NULL;
    struct crypto_diag d;

    ref_path(path, sizeof(path), rel);
    if ((priv ? key_load_private_pem(&k, path, &d) : key_load_public_pem(&k, path, &d)) != 0)
        fail_msg("%s: %s", rel, d.msg);
    return k;
}

static const char *jstr(const json_t *o, const char *field)
{
    const char *s = json_string_value(json_object_get(o, field));

    if (s == NULL)
        fail_msg("fixture: missing string field \"%s\"", field);
    return s;
}

static bool jbool(const json_t *o, const char *field)
{
    json_t *v = json_object_get(o, field);

    if (!json_is_boolean(v))
        fail_msg("fixture: missing boolean field \"%s\"", field);
    return json_is_true(v);
}

static uint8_t *unb64(const char *s, size_t *n)
{
    uint8_t *out = NULL;
    struct crypto_diag d;

    if (b64_decode(s, strlen(s), &out, n, &d) != 0)
        fail_msg("base64 in fixture: %s", d.msg);
    return out;
}

static bool proto_ok(const struct key *k, const char *msg, const uint8_t *sig, size_t n)
{
    struct crypto_diag d;
    int rc = sig_verify_prototype(k, msg, strlen(msg), sig, n, &d);

    if (rc != 0 && rc != CRYPTO_E_SIG_BAD)
        fail_msg("verify error %s: %s", crypto_err_name(rc), d.msg);
    return rc == 0;
}

static bool strict_ok(const struct key *k, const char *msg, const uint8_t *sig, size_t n)
{
    struct crypto_diag d;
    int rc = sig_verify(k, msg, strlen(msg), sig, n, &d);

    if (rc != 0 && rc != CRYPTO_E_SIG_BAD)
        fail_msg("verify error %s: %s", crypto_err_name(rc), d.msg);
    return rc == 0;
}

/* EMSA-PSS salt length of an RSA signature, decoded by hand (RFC 8017 9.1.2)
 * from the raw public operation; -1 if it is not a PSS-SHA256 encoding of
 * `msg`. Independent of sig.c, so it checks which salt sig_sign really uses. */
static int pss_salt_len(const struct key *k, const char *msg, const uint8_t *sig, size_t n)
{
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(key_evp(k), NULL);
    uint8_t em[2048], mask[2048 + 32], h[32], mh[32], blk[4 + 32 + 8 + 32];
    size_t em_len = sizeof(em), db_len, i;
    int salt = -1;

    assert_non_null(pc);
    assert_int_equal(EVP_PKEY_verify_recover_init(pc), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_NO_PADDING), 1);
    if (EVP_PKEY_verify_recover(pc, em, &em_len, sig, n) != 1 || em[em_len - 1] != 0xbc)
        goto out;
    db_len = em_len - 32 - 1;
    memcpy(h, em + db_len, 32);
    for (uint32_t c = 0; c * 32 < db_len; c++) {   /* MGF1-SHA256(H) */
        uint8_t in[36];
        memcpy(in, h, 32);
        in[32] = (uint8_t)(c >> 24); in[33] = (uint8_t)(c >> 16);
        in[34] = (uint8_t)(c >> 8); in[35] = (uint8_t)c;
        assert_int_equal(sha256(in, 36, mask + c * 32), 0);
    }
    for (i = 0; i < db_len; i++)
        em[i] ^= mask[i];
    em[0] &= 0x7f;   /* emBits = modBits - 1, a multiple of 8 minus 1 for our sizes */
    for (i = 0; i < db_len && em[i] == 0; i++)
        ;
    if (i == db_len || em[i] != 0x01)
        goto out;
    salt = (int)(db_len - i - 1);
    memset(blk, 0, 8);   /* M' = 0x00*8 || mHash || salt; H = SHA256(M') */
    assert_int_equal(sha256(msg, strlen(msg), mh), 0);
    uint8_t *mp = malloc(8 + 32 + (size_t)salt);
    assert_non_null(mp);
    memset(mp, 0, 8);
    memcpy(mp + 8, mh, 32);
    memcpy(mp + 40, em + i + 1, (size_t)salt);
    assert_int_equal(sha256(mp, 40 + (size_t)salt, mh), 0);
    free(mp);
    if (memcmp(mh, h, 32) != 0)
        salt = -1;
out:
    EVP_PKEY_CTX_free(pc);
    return salt;
}

static void tagged(char out[SIG_PROTO_MSG_MAX], const char *tag, const char *sha)
{
    size_t n;
    struct crypto_diag d;

    if (sig_prototype_msg(tag, sha, out, &n, &d) != 0)
        fail_msg("%s", d.msg);
}

/* manifests/signing_results.json: each signature verifies exactly as the
 * prototype's verify_sha256_hex / verify_with_tag said; the one in plora.yml
 * is the same; the salt is what pss_analysis.json recovered. */
static void test_signing_results(void **state)
{
    json_t *res = ref_json("manifests/signing_results.json");
    json_t *pss = ref_json("manifests/pss_analysis.json");
    json_t *arr = json_object_get(res, "signing"), *e, *p;
    size_t i, j, n_rsa = 0;

    (void)state;
    assert_true(json_array_size(arr) == 8);
    json_array_foreach(arr, i, e) {
        struct key *k = ref_key(jstr(e, "public_key"), false);
        char tmsg[SIG_PROTO_MSG_MAX], bmsg[SIG_PROTO_MSG_MAX], yml[4096], line[1024];
        const char *sha = jstr(e, "sha256");
        size_t n;
        uint8_t *sig = unb64(jstr(e, "signature_b64"), &n);
        enum sig_proto_form form;
        struct crypto_diag d;
        bool raw = jbool(e, "verify_sha256_hex_raw"), tag = jbool(e, "verify_with_tag_adapter");
        int rc;
        FILE *f;

        assert_int_equal(n, json_integer_value(json_object_get(e, "signature_len_bytes")));
        tagged(tmsg, SIG_TAG_ADAPTER, sha);
        tagged(bmsg, NULL, sha);
        if (proto_ok(k, tmsg, sig, n) != tag || proto_ok(k, bmsg, sig, n) != raw)
            fail_msg("%s/%s: tagged/raw verdicts differ from the prototype's %d/%d",
                     jstr(e, "variant"), jstr(e, "fixture"), tag, raw);
        rc = sig_verify_prototype_adapter(k, sha, sig, n, &form, &d);
        assert_int_equal(rc, (tag || raw) ? 0 : CRYPTO_E_SIG_BAD);
        assert_int_equal(form, tag ? SIG_FORM_TAGGED : raw ? SIG_FORM_BARE : SIG_FORM_NONE);
        /* Strict plorad rule: salt 350 is not ours. Ed25519 has no salt. */
        assert_int_equal(strict_ok(k, tag ? tmsg : bmsg, sig, n), key_type(k) == KEY_TYPE_ED25519);
        /* The same signature is what the manifest carries. */
        snprintf(yml, sizeof(yml), "manifests/%s/%s/plora.yml", jstr(e, "variant"), jstr(e, "fixture"));
        char ypath[4096];
        ref_path(ypath, sizeof(ypath), yml);
        f = fopen(ypath, "r");
        assert_non_null(f);
        bool seen = false;
        while (fgets(line, sizeof(line), f) != NULL) {
            char *s = strstr(line, "signature_b64: ");
            if (s != NULL) {
                s += strlen("signature_b64: ");
                s[strcspn(s, "\n")] = '\0';
                assert_string_equal(s, jstr(e, "signature_b64"));
                seen = true;
            }
        }
        fclose(f);
        assert_true(seen);
        json_array_foreach(json_object_get(pss, "signatures"), j, p) {
            if (key_type(k) == KEY_TYPE_RSA &&
                strcmp(jstr(p, "variant"), jstr(e, "variant")) == 0 &&
                strcmp(jstr(p, "fixture"), jstr(e, "fixture")) == 0) {
                assert_int_equal(pss_salt_len(k, jstr(p, "message"), sig, n),
                                 json_integer_value(json_object_get(p, "salt_len")));
                n_rsa++;
            }
        }
        free(sig);
        key_free(k);
    }
    assert_int_equal(n_rsa, 6);
    json_decref(res);
    json_decref(pss);
}

/* pss_analysis.json acceptance probes (cryptography 48.0.0, the prototype's
 * verifier): our lenient check answers as it did, salts 0/32/349/350 in,
 * PKCS#1 v1.5 out; the strict check takes salt 32 only. */
static void test_acceptance_probes(void **state)
{
    json_t *pss = ref_json("manifests/pss_analysis.json");
    json_t *probes = json_object_get(pss, "acceptance_probes"), *p;
    const char *sha = jstr(pss, "acceptance_probes_sha256"), *name;
    struct key *k = ref_key("keys/rsa3072_pub.pem", false);
    char tmsg[SIG_PROTO_MSG_MAX], bmsg[SIG_PROTO_MSG_MAX];
    size_t checked = 0;

    (void)state;
    tagged(tmsg, SIG_TAG_ADAPTER, sha);
    tagged(bmsg, NULL, sha);
    json_object_foreach(probes, name, p) {
        size_t n;
        uint8_t *sig = unb64(jstr(p, "signature_b64"), &n);
        const char *msg = jstr(p, "message");
        bool salt32 = strstr(name, "salt_32") != NULL || strstr(name, "digest_length") != NULL;

        if (json_object_get(p, "prototype_verify_sha256_hex") != NULL) {
            bool raw = jbool(p, "prototype_verify_sha256_hex");
            bool tag = jbool(p, "prototype_verify_with_tag");
            if (proto_ok(k, bmsg, sig, n) != raw || proto_ok(k, tmsg, sig, n) != tag)
                fail_msg("probe %s: lenient verdicts raw/tagged != prototype's %d/%d", name, raw, tag);
            if (strict_ok(k, msg, sig, n) != salt32)
                fail_msg("probe %s: strict verdict should be %d", name, salt32);
            if (salt32)
                assert_int_equal(pss_salt_len(k, msg, sig, n), SIG_PSS_SALT_LEN);
        } else {
            /* Signed over a non-canonical hex: verifies over its own bytes only. */
            bool lower = jbool(p, "prototype_verify_sha256_hex_lower");
            enum sig_proto_form form;
            struct crypto_diag d;
            assert_false(lower);
            assert_true(proto_ok(k, msg, sig, n));
            assert_int_equal(sig_verify_prototype_adapter(k, sha, sig, n, &form, &d), CRYPTO_E_SIG_BAD);
            assert_int_equal(form, SIG_FORM_NONE);
        }
        free(sig);
        checked++;
    }
    assert_int_equal(checked, 14);
    key_free(k);
    json_decref(pss);
}

/* quorum/signatures.json: every signature verifies with its own key over its
 * message and with no other key; sig_verify_prototype_adapter names the form. */
static void test_quorum_signatures(void **state)
{
    static const char *const keys[] = {
        "quorum/keys/key0_pub.pem", "quorum/keys/key1_pub.pem", "quorum/keys/key2_pub.pem",
        "quorum/keys/key3_pub.pem", "quorum/keys/key4_pub.pem", "keys/rsa3072_pub.pem",
    };
    json_t *q = ref_json("quorum/signatures.json"), *s;
    struct key *k[6];
    const char *name, *sha = jstr(q, "sha256");
    size_t checked = 0;

    (void)state;
    for (size_t i = 0; i < 6; i++)
        k[i] = ref_key(keys[i], false);
    json_object_foreach(json_object_get(q, "signatures"), name, s) {
        const char *who = jstr(s, "key"), *msg = jstr(s, "message");
        size_t n, own = strncmp(who, "key", 3) == 0 ? (size_t)(who[3] - '0') : 5;
        uint8_t *sig = unb64(jstr(s, "sig"), &n);
        enum sig_proto_form form;
        struct crypto_diag d;
        bool is_tagged = strncmp(msg, SIG_TAG_ADAPTER, strlen(SIG_TAG_ADAPTER)) == 0;
        bool same_adapter = strstr(msg, sha) != NULL;

        assert_true(own < 6);
        for (size_t i = 0; i < 6; i++)
            if (proto_ok(k[i], msg, sig, n) != (i == own))
                fail_msg("%s: verdict with %s should be %d", name, keys[i], i == own);
        assert_int_equal(sig_verify_prototype_adapter(k[own], sha, sig, n, &form, &d),
                         same_adapter ? 0 : CRYPTO_E_SIG_BAD);
        assert_int_equal(form, !same_adapter ? SIG_FORM_NONE : is_tagged ? SIG_FORM_TAGGED : SIG_FORM_BARE);
        free(sig);
        checked++;
    }
    assert_int_equal(checked, 7);
    for (size_t i = 0; i < 6; i++)
        key_free(k[i]);
    json_decref(q);
}

/* policy/: PLORA|POLICY|v1| + sha256(policy.json) verifies; the bare form does not. */
static void test_policy_signature(void **state)
{
    json_t *r = ref_json("policy/results.json");
    struct key *k = ref_key("keys/rsa3072_pub.pem", false);
    char path[4096], hex[SHA256_HEX_LEN + 1], msg[SIG_PROTO_MSG_MAX], bare[SIG_PROTO_MSG_MAX], txt[1024];
    uint8_t md[SHA256_LEN], *sig;
    size_t n;
    struct crypto_diag d;
    FILE *f;

    (void)state;
    ref_path(path, sizeof(path), "policy/policy.json");
    assert_int_equal(sha256_file(path, md, NULL, &d), 0);
    sha256_hex(md, hex);
    tagged(msg, SIG_TAG_POLICY, hex);
    tagged(bare, NULL, hex);
    assert_string_equal(msg, jstr(r, "signed_message"));
    ref_path(path, sizeof(path), "policy/policy.json.sig.b64");
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(txt, 1, sizeof(txt) - 1, f);
    fclose(f);
    txt[n] = '\0';
    sig = unb64(txt, &n);
    assert_int_equal(proto_ok(k, msg, sig, n), jbool(r, "verify_policy"));
    assert_int_equal(proto_ok(k, bare, sig, n), jbool(r, "verify_as_adapter_raw"));
    assert_true(jbool(r, "verify_policy"));
    free(sig);
    key_free(k);
    json_decref(r);
}

/* Ed25519 is deterministic: our signature equals the prototype's, byte for byte. */
static void test_ed25519_reproduces(void **state)
{
    static const struct { const char *yml; const char *tag; } c[] = {
        { "manifests/ed25519_sign_plasmid/gpt2-c_attn-r8/plora.yml", SIG_TAG_ADAPTER },
        { "manifests/ed25519_train_task_sign/gpt2-c_attn-r8/plora.yml", NULL },
    };
    json_t *res = ref_json("manifests/signing_results.json");
    struct key *k = ref_key("keys/ed25519_priv.pem", true);
    const char *sha = jstr(json_array_get(json_object_get(res, "signing"), 0), "sha256");

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        char path[4096], line[1024], msg[SIG_PROTO_MSG_MAX], b64[128], *want = NULL;
        uint8_t *sig = NULL;
        size_t n;
        struct crypto_diag d;
        FILE *f;

        ref_path(path, sizeof(path), c[i].yml);
        f = fopen(path, "r");
        assert_non_null(f);
        while (fgets(line, sizeof(line), f) != NULL)
            if ((want = strstr(line, "signature_b64: ")) != NULL)
                break;
        fclose(f);
        assert_non_null(want);
        want += strlen("signature_b64: ");
        want[strcspn(want, "\n")] = '\0';
        tagged(msg, c[i].tag, sha);
        assert_int_equal(sig_sign(k, msg, strlen(msg), &sig, &n, &d), 0);
        assert_int_equal(n, SIG_ED25519_LEN);
        b64_encode(sig, n, b64);
        if (strcmp(b64, want) != 0)
            fail_msg("%s: signed %s, manifest has %s", c[i].yml, b64, want);
        free(sig);
    }
    key_free(k);
    json_decref(res);
}

struct sig_state {
    struct key *rsa, *ed, *other;
};

static int setup_keys(void **state)
{
    struct sig_state *s = calloc(1, sizeof(*s));
    struct crypto_diag d;

    if (s == NULL || key_generate_rsa(&s->rsa, 2048, &d) != 0 ||
        key_generate_ed25519(&s->ed, &d) != 0 || key_generate_rsa(&s->other, 2048, &d) != 0)
        return -1;
    *state = s;
    return 0;
}

static int teardown_keys(void **state)
{
    struct sig_state *s = *state;

    key_free(s->rsa);
    key_free(s->ed);
    key_free(s->other);
    free(s);
    return 0;
}

/* Every single-bit flip of every byte, every truncation, an extension, a
 * wrong key and a changed message fail; the original verifies (both rules). */
static void tamper_sweep(const struct key *k, const struct key *wrong, const uint8_t *sig, size_t n,
                         const char *msg, bool lenient)
{
    uint8_t *t = malloc(n + 1);
    struct crypto_diag d;
    char m2[256];

    assert_non_null(t);
    assert_true(lenient ? proto_ok(k, msg, sig, n) : strict_ok(k, msg, sig, n));
    for (size_t i = 0; i < n; i++) {
        memcpy(t, sig, n);
        t[i] ^= (uint8_t)(1u << (i % 8));
        int rc = lenient ? sig_verify_prototype(k, msg, strlen(msg), t, n, &d)
                         : sig_verify(k, msg, strlen(msg), t, n, &d);
        if (rc != CRYPTO_E_SIG_BAD)
            fail_msg("flip of byte %zu of %zu: got %s", i, n, crypto_err_name(rc));
    }
    for (size_t cut = 0; cut < n; cut++)
        if ((lenient ? sig_verify_prototype(k, msg, strlen(msg), sig, cut, &d)
                     : sig_verify(k, msg, strlen(msg), sig, cut, &d)) != CRYPTO_E_SIG_BAD)
            fail_msg("signature truncated to %zu of %zu bytes verified", cut, n);
    memcpy(t, sig, n);
    t[n] = 0;
    assert_int_equal(sig_verify(k, msg, strlen(msg), t, n + 1, &d), CRYPTO_E_SIG_BAD);
    assert_int_equal(sig_verify_prototype(k, msg, strlen(msg), t, n + 1, &d), CRYPTO_E_SIG_BAD);
    assert_false(proto_ok(wrong, msg, sig, n));
    for (size_t i = 0; i < strlen(msg); i++) {
        snprintf(m2, sizeof(m2), "%s", msg);
        m2[i] ^= 0x20;
        assert_false(proto_ok(k, m2, sig, n));
    }
    assert_true(strlen(msg) + 2 <= sizeof(m2));
    memcpy(m2, msg, strlen(msg));
    memcpy(m2 + strlen(msg), "\n", 2);
    assert_false(proto_ok(k, m2, sig, n));
    free(t);
}

static void test_tamper_own(void **state)
{
    struct sig_state *s = *state;
    const char *msg = "plorad test message v1\nfield=value\n";
    const struct key *ks[] = { s->rsa, s->ed };

    for (size_t i = 0; i < 2; i++) {
        uint8_t *sig = NULL;
        size_t n;
        struct crypto_diag d;

        assert_int_equal(sig_sign(ks[i], msg, strlen(msg), &sig, &n, &d), 0);
        if (key_type(ks[i]) == KEY_TYPE_RSA)
            assert_int_equal(pss_salt_len(ks[i], msg, sig, n), SIG_PSS_SALT_LEN);
        tamper_sweep(ks[i], s->other, sig, n, msg, false);
        tamper_sweep(ks[i], s->other, sig, n, msg, true);   /* ours pass the lenient rule too */
        free(sig);
    }
}

/* The prototype's own signature (salt 350) under the lenient rule. */
static void test_tamper_prototype(void **state)
{
    json_t *q = ref_json("quorum/signatures.json");
    json_t *s0 = json_object_get(json_object_get(q, "signatures"), "s0_key0_tagged");
    struct key *k = ref_key("quorum/keys/key0_pub.pem", false);
    struct key *wrong = ref_key("quorum/keys/key1_pub.pem", false);
    size_t n;
    uint8_t *sig;

    (void)state;
    assert_non_null(s0);
    sig = unb64(jstr(s0, "sig"), &n);
    tamper_sweep(k, wrong, sig, n, jstr(s0, "message"), true);
    free(sig);
    key_free(k);
    key_free(wrong);
    json_decref(q);
}

static void test_sign_needs_private(void **state)
{
    struct key *k = ref_key("keys/rsa3072_pub.pem", false);
    uint8_t *sig = (uint8_t *)1;
    size_t n = 5;
    struct crypto_diag d;

    (void)state;
    assert_int_equal(sig_sign(k, "x", 1, &sig, &n, &d), CRYPTO_E_KEY_NOT_PRIVATE);
    assert_null(sig);
    assert_int_equal(n, 0);
    assert_int_equal(sig_verify(NULL, "x", 1, (const uint8_t *)"", 0, &d), CRYPTO_E_ARG);
    key_free(k);
}

static const char W[] = "658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3e";
static const char C[] = "8111748aeaf2927fa4065a06c30ead8c8a9211a20f2cdb22dfcc1ce60396eca1";

/* The canonical bytes are the spec (sig.h, docs): pin them. */
static void test_adapter_msg_bytes(void **state)
{
    struct sig_adapter a = { W, C, "gpt2-c_attn-r8", "gpt2" };
    char msg[SIG_ADAPTER_MSG_MAX];
    size_t n;
    struct crypto_diag d;
    const char *want = "plorad-adapter-sig v1\n"
                       "weights_sha256=658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3e\n"
                       "config_sha256=8111748aeaf2927fa4065a06c30ead8c8a9211a20f2cdb22dfcc1ce60396eca1\n"
                       "domain=gpt2-c_attn-r8\n"
                       "base_model=gpt2\n";

    (void)state;
    assert_int_equal(sig_adapter_msg(&a, msg, &n, &d), 0);
    assert_string_equal(msg, want);
    assert_int_equal(n, strlen(want));
}

static void test_adapter_fields(void **state)
{
    char long_dom[80], long_base[300], ok_base[257];
    struct { const char *why; struct sig_adapter a; int want; } c[] = {
        { "ok", { W, C, "legal", "meta-llama/Llama-2-7b-hf" }, 0 },
        { "domain 64 chars", { W, C, NULL, "gpt2" }, 0 },
        { "domain 65 chars", { W, C, NULL, "gpt2" }, CRYPTO_E_MSG_FIELD },
        { "base 256 chars", { W, C, "a", NULL }, 0 },
        { "base 257 chars", { W, C, "a", NULL }, CRYPTO_E_MSG_FIELD },
        { "domain upper", { W, C, "Legal", "gpt2" }, CRYPTO_E_MSG_FIELD },
        { "domain starts with -", { W, C, "-x", "gpt2" }, CRYPTO_E_MSG_FIELD },
        { "domain starts with .", { W, C, ".x", "gpt2" }, CRYPTO_E_MSG_FIELD },
        { "domain empty", { W, C, "", "gpt2" }, CRYPTO_E_MSG_FIELD },
        { "domain newline", { W, C, "a\nbase_model=x", "gpt2" }, CRYPTO_E_MSG_FIELD },
        { "domain space", { W, C, "a b", "gpt2" }, CRYPTO_E_MSG_FIELD },
        { "domain NULL", { W, C, NULL, "gpt2" }, CRYPTO_E_MSG_FIELD },
        { "base empty", { W, C, "a", "" }, CRYPTO_E_MSG_FIELD },
        { "base newline", { W, C, "a", "gpt2\nx" }, CRYPTO_E_MSG_FIELD },
        { "base space", { W, C, "a", "gpt 2" }, CRYPTO_E_MSG_FIELD },
        { "base tab", { W, C, "a", "gpt\t2" }, CRYPTO_E_MSG_FIELD },
        { "base DEL", { W, C, "a", "gpt\x7f" }, CRYPTO_E_MSG_FIELD },
        { "base UTF-8", { W, C, "a", "gpt\xc3\xa9" }, CRYPTO_E_MSG_FIELD },
        { "weights upper", { "658BF57ED30D22120177CDA107E513C0712DB1B4324528CC4F65CDF562248E3E", C, "a", "b" },
          CRYPTO_E_MSG_FIELD },
        { "weights short", { "658bf57e", C, "a", "b" }, CRYPTO_E_MSG_FIELD },
        { "config NULL", { W, NULL, "a", "b" }, CRYPTO_E_MSG_FIELD },
    };
    (void)state;
    memset(long_dom, 'a', sizeof(long_dom));
    long_dom[64] = '\0';
    c[1].a.domain = long_dom;
    char long_dom2[80];
    memset(long_dom2, 'b', sizeof(long_dom2));
    long_dom2[65] = '\0';
    c[2].a.domain = long_dom2;
    memset(ok_base, 'x', sizeof(ok_base));
    ok_base[256] = '\0';
    c[3].a.base_model = ok_base;
    memset(long_base, 'y', sizeof(long_base));
    long_base[257] = '\0';
    c[4].a.base_model = long_base;
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char msg[SIG_ADAPTER_MSG_MAX];
        size_t n = 9;
        struct crypto_diag d;
        int rc = sig_adapter_msg(&c[i].a, msg, &n, &d);
        if (rc != c[i].want)
            fail_msg("%s: got %s, want %s (%s)", c[i].why, crypto_err_name(rc),
                     crypto_err_name(c[i].want), d.msg);
        if (rc != 0 && (n != 0 || msg[0] != '\0'))
            fail_msg("%s: output not cleared on failure", c[i].why);
    }
}

/* A signature binds every field: changing any one fails verification. */
static void test_adapter_binding(void **state)
{
    struct sig_state *s = *state;
    const char *W2 = "758bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3e";
    struct sig_adapter a = { W, C, "legal", "gpt2" };
    struct sig_adapter v[] = {
        { W2, C, "legal", "gpt2" }, { W, W, "legal", "gpt2" }, { W, C, "legal2", "gpt2" },
        { W, C, "legal", "gpt2-xl" }, { C, W, "legal", "gpt2" },
    };
    const struct key *ks[] = { s->rsa, s->ed };

    for (size_t k = 0; k < 2; k++) {
        uint8_t *sig = NULL;
        size_t n;
        struct crypto_diag d;

        assert_int_equal(sig_sign_adapter(ks[k], &a, &sig, &n, &d), 0);
        assert_int_equal(sig_verify_adapter(ks[k], &a, sig, n, &d), 0);
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
            assert_int_equal(sig_verify_adapter(ks[k], &v[i], sig, n, &d), CRYPTO_E_SIG_BAD);
        assert_int_equal(sig_verify_adapter(s->other, &a, sig, n, &d), CRYPTO_E_SIG_BAD);
        free(sig);
    }
}

static void test_proto_msg(void **state)
{
    char out[SIG_PROTO_MSG_MAX];
    size_t n;
    struct crypto_diag d;

    (void)state;
    assert_int_equal(sig_prototype_msg(SIG_TAG_ADAPTER, W, out, &n, &d), 0);
    assert_int_equal(n, 81);
    assert_int_equal(strncmp(out, "PLORA|ADAPTER|v1|658b", 21), 0);
    assert_int_equal(sig_prototype_msg("", W, out, &n, &d), 0);
    assert_int_equal(n, 64);
    assert_string_equal(out, W);
    assert_int_equal(sig_prototype_msg(NULL, "658B", out, &n, &d), CRYPTO_E_MSG_FIELD);
    assert_string_equal(sig_proto_form_name(SIG_FORM_TAGGED), "tagged");
    assert_string_equal(sig_proto_form_name(SIG_FORM_BARE), "bare");
    assert_string_equal(sig_proto_form_name(SIG_FORM_NONE), "none");
}

/* One round trip with the default key size (3072). */
static void test_default_size(void **state)
{
    struct key *k = NULL, *pub = NULL;
    uint8_t *sig = NULL;
    size_t n;
    struct crypto_diag d;

    (void)state;
    assert_int_equal(key_generate_rsa(&k, KEY_RSA_BITS_DEFAULT, &d), 0);
    assert_int_equal(key_public_copy(&pub, k, &d), 0);
    assert_int_equal(sig_sign(k, "m", 1, &sig, &n, &d), 0);
    assert_int_equal(n, 384);
    assert_int_equal(sig_verify(pub, "m", 1, sig, n, &d), 0);
    assert_int_equal(sig_verify(pub, "n", 1, sig, n, &d), CRYPTO_E_SIG_BAD);
    free(sig);
    key_free(k);
    key_free(pub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signing_results),
        cmocka_unit_test(test_acceptance_probes),
        cmocka_unit_test(test_quorum_signatures),
        cmocka_unit_test(test_policy_signature),
        cmocka_unit_test(test_ed25519_reproduces),
        cmocka_unit_test(test_tamper_own),
        cmocka_unit_test(test_tamper_prototype),
        cmocka_unit_test(test_sign_needs_private),
        cmocka_unit_test(test_adapter_msg_bytes),
        cmocka_unit_test(test_adapter_fields),
        cmocka_unit_test(test_adapter_binding),
        cmocka_unit_test(test_proto_msg),
        cmocka_unit_test(test_default_size),
    };
    return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
