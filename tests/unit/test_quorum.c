/* tests/unit/test_quorum.c: the quorum rule against the prototype's own
 * verdicts (reference/quorum/results.json: verify_aggregate cases A-L and
 * the gate's policy_check table), where plorad deliberately differs (case
 * J, quorum 0, stale attestations), and plorad's own rules: equivocation,
 * expiry, revocation, duplicates, publisher signatures. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hex.h"
#include "key.h"
#include "keyring.h"
#include "quorum.h"
#include "sig.h"
#include "vote.h"

#define RUN_TIME 1795415402LL   /* results.json run_time_unix = attestation ts */

static char *fx_path(const char *rel)
{
    static char path[1024];
    const char *f = getenv("PLORA_FIXTURES");
    if (f == NULL)
        fail_msg("PLORA_FIXTURES is not set");
    snprintf(path, sizeof(path), "%s/reference/%s", f, rel);
    return path;
}

static json_t *load_json(const char *rel)
{
    json_error_t je;
    json_t *j = json_load_file(fx_path(rel), 0, &je);
    if (j == NULL)
        fail_msg("fixture %s: %s", rel, je.text);
    return j;
}

static struct key *load_key(const char *rel, bool priv)
{
    struct key *k = NULL;
    struct crypto_diag d;
    int rc = priv ? key_load_private_pem(&k, fx_path(rel), &d)
                  : key_load_public_pem(&k, fx_path(rel), &d);
    if (rc != 0)
        fail_msg("%s: %s", rel, d.msg);
    return k;
}

/* Keyring from key file names under quorum/keys/ ("key0_pub.pem", ...). */
static struct keyring *ring(const char *const *files, size_t n)
{
    struct keyring *kr = NULL;
    struct crypto_diag d;

    assert_int_equal(keyring_new(&kr), 0);
    for (size_t i = 0; i < n; i++) {
        char rel[128];
        struct key *k;
        snprintf(rel, sizeof(rel), "quorum/keys/%s", files[i]);
        k = load_key(rel, false);
        assert_int_equal(keyring_add(kr, k, rel, NULL, &d), 0);
        key_free(k);
    }
    return kr;
}

static struct keyring *ring_for(const char *spec)
{
    static const char *const all[] = { "key0_pub.pem", "key1_pub.pem", "key2_pub.pem",
                                       "key3_pub.pem", "key4_pub.pem" };
    static const char *const copy[] = { "key0_pub.pem", "key0_pub_copy.pem", "key1_pub.pem",
                                        "key2_pub.pem", "key3_pub.pem", "key4_pub.pem" };
    static const char *const twice[] = { "key0_pub.pem", "key0_pub.pem", "key1_pub.pem",
                                         "key2_pub.pem", "key3_pub.pem", "key4_pub.pem" };
    static const char *const only3[] = { "key3_pub.pem" };

    if (strcmp(spec, "key0..key4") == 0)
        return ring(all, 5);
    if (strcmp(spec, "key0, key0_pub_copy, key1..key4") == 0)
        return ring(copy, 6);
    if (strcmp(spec, "key0, key0 (same path), key1..key4") == 0)
        return ring(twice, 6);
    if (strcmp(spec, "key3 only") == 0)
        return ring(only3, 1);
    fail_msg("unknown public_keys spec \"%s\"", spec);
    return NULL;
}

static int count(struct keyring *kr, const char *adapter, struct vote **v, size_t n,
                 unsigned q, int64_t max_age, struct quorum_result **r)
{
    struct quorum_policy p = { .quorum = q, .now = RUN_TIME, .max_age_s = max_age,
                               .max_skew_s = 60 };
    struct crypto_diag d;
    return quorum_count(kr, adapter, v, n, &p, r, &d);
}

/* verify_aggregate cases A-L: each signature of the aggregate is a prototype
 * ACCEPT vote (tagged or bare; tagged only when allow_untagged is false).
 * plorad's count must equal the prototype's max quorum, for every quorum
 * 1..6, except case J: the prototype counts key0 twice because the trusted
 * list holds a byte-identical copy under another file name (README
 * "Surprises" 4); plorad dedups by key id and counts 1. Quorum 0, which the
 * prototype accepts for anything, is a usage error in plorad. */
static void test_aggregate_cases(void **state)
{
    json_t *res = load_json("quorum/results.json"), *sigs = load_json("quorum/signatures.json");
    json_t *cases = json_object_get(res, "verify_aggregate_cases"), *c;
    const char *gpt2 = json_string_value(json_object_get(sigs, "sha256"));
    const char *imdb = json_string_value(json_object_get(sigs, "other_sha256_distilbert_imdb"));
    size_t ci, seen = 0;

    (void)state;
    assert_int_equal(json_array_size(cases), 12);
    json_array_foreach(cases, ci, c) {
        const char *name = json_string_value(json_object_get(c, "case"));
        json_t *list = json_object_get(c, "signatures");
        bool tagged_only = !json_is_true(json_object_get(c, "allow_untagged"));
        const char *payload = strcmp(json_string_value(json_object_get(c, "payload_sha256")), "gpt2") == 0
                                  ? gpt2 : imdb;
        long long proto_max = json_integer_value(json_object_get(c, "max_quorum_met"));
        long long want = name[0] == 'J' ? 1 : proto_max;   /* the prototype's bug, not copied */
        struct keyring *kr = ring_for(json_string_value(json_object_get(c, "public_keys")));
        struct vote *votes[8] = { NULL };
        struct quorum_result *r = NULL;
        struct crypto_diag d;
        size_t n = json_array_size(list);

        assert_true(n <= 8);
        for (size_t i = 0; i < n; i++) {
            const char *sname = json_string_value(json_array_get(list, i));
            const char *b64 = json_string_value(json_object_get(
                json_object_get(json_object_get(sigs, "signatures"), sname), "sig"));
            uint8_t *sig = NULL;
            size_t len;
            assert_non_null(b64);
            assert_int_equal(b64_decode(b64, strlen(b64), &sig, &len, &d), 0);
            assert_int_equal(vote_proto_new(&votes[i], tagged_only ? VOTE_FORM_PROTO_TAGGED
                                                                   : VOTE_FORM_PROTO_ANY,
                                            payload, sig, len, &d), 0);
            free(sig);
        }
        for (unsigned q = 1; q <= 6; q++) {
            char qs[4];
            bool proto = json_is_true(json_object_get(json_object_get(c, "verify_aggregate_by_quorum"),
                                                      (snprintf(qs, sizeof(qs), "%u", q), qs)));
            assert_int_equal(count(kr, payload, votes, n, q, 0, &r), 0);
            if (r->accepts != (size_t)want)
                fail_msg("case %s: plorad counts %zu, want %lld (prototype %lld)", name, r->accepts,
                         want, proto_max);
            if (name[0] != 'J' && r->reached != proto)
                fail_msg("case %s quorum %u: plorad %d, prototype %d", name, q, r->reached, proto);
            assert_int_equal(r->accepts + r->n_ignored, n);   /* every vote accounted for */
            quorum_result_free(r);
        }
        /* quorum 0: the prototype says True for every case; plorad refuses */
        assert_int_equal(count(kr, payload, votes, n, 0, 0, &r), CRYPTO_E_QUORUM_ARG);
        assert_null(r);
        for (size_t i = 0; i < n; i++)
            vote_free(votes[i]);
        keyring_free(kr);
        seen++;
    }
    assert_int_equal(seen, 12);
    json_decref(res);
    json_decref(sigs);
}

/* Why each non-counting signature was set aside, for a few cases. */
static void test_ignored_reasons(void **state)
{
    static const char *const keys[] = { "key0_pub.pem", "key1_pub.pem", "key2_pub.pem" };
    json_t *sigs = load_json("quorum/signatures.json"), *all = json_object_get(sigs, "signatures");
    const char *gpt2 = json_string_value(json_object_get(sigs, "sha256"));
    const char *imdb = json_string_value(json_object_get(sigs, "other_sha256_distilbert_imdb"));
    static const char *const names[] = { "s0_key0_tagged", "s0b_key0_tagged_second",
                                         "sx_outsider_tagged", "s3_key3_untagged",
                                         "s1_key1_tagged" };
    struct keyring *kr = ring(keys, 3);
    struct vote *v[6];
    struct quorum_result *r = NULL;
    struct crypto_diag d;

    (void)state;
    for (size_t i = 0; i < 5; i++) {
        const char *b64 = json_string_value(json_object_get(json_object_get(all, names[i]), "sig"));
        uint8_t *sig;
        size_t len;
        assert_int_equal(b64_decode(b64, strlen(b64), &sig, &len, &d), 0);
        assert_int_equal(vote_proto_new(&v[i], VOTE_FORM_PROTO_ANY, gpt2, sig, len, &d), 0);
        if (i == 4)   /* key1's signature presented as a vote on the imdb adapter */
            assert_int_equal(vote_proto_new(&v[5], VOTE_FORM_PROTO_ANY, imdb, sig, len, &d), 0);
        free(sig);
    }
    assert_int_equal(count(kr, gpt2, v, 6, 2, 0, &r), 0);
    assert_int_equal(r->accepts, 2);            /* key0 (once) and key1 */
    assert_true(r->reached);
    assert_int_equal(r->n_ignored, 4);
    assert_int_equal(r->ignored[0].vote, 1);
    assert_int_equal(r->ignored[0].why, QUORUM_WHY_DUPLICATE);
    assert_int_equal(r->ignored[1].why, QUORUM_WHY_NO_KEY);   /* outsider */
    assert_int_equal(r->ignored[2].why, QUORUM_WHY_NO_KEY);   /* key3 not in this ring */
    assert_int_equal(r->ignored[3].vote, 5);
    assert_int_equal(r->ignored[3].why, QUORUM_WHY_OTHER_ADAPTER);
    assert_string_equal(quorum_why_name(r->ignored[3].why), "other_adapter");
    assert_true(strcmp(r->accept_keys[0], r->accept_keys[1]) < 0);
    quorum_result_free(r);
    /* revoking key1 leaves key0 alone: quorum 2 not reached */
    assert_int_equal(keyring_revoke(kr, "33218cf01d77b08029dda87d67450f04fe7c4d4c73d634b6d5dc28c7713e0653", &d), 0);
    assert_int_equal(count(kr, gpt2, v, 6, 2, 0, &r), 0);
    assert_int_equal(r->accepts, 1);
    assert_false(r->reached);
    assert_int_equal(r->ignored[r->n_ignored - 2].why, QUORUM_WHY_REVOKED);
    quorum_result_free(r);
    for (size_t i = 0; i < 6; i++)
        vote_free(v[i]);
    keyring_free(kr);
    json_decref(sigs);
}

static char *manifest_sig_b64(const char *rel)
{
    FILE *f = fopen(fx_path(rel), "r");
    char line[4096], *out = NULL;

    if (f == NULL)
        fail_msg("%s: %s", rel, strerror(errno));
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "  signature_b64: ", 17) == 0) {
            line[strcspn(line, "\n")] = '\0';
            out = strdup(line + 17);
        }
    fclose(f);
    if (out == NULL)
        fail_msg("%s: no signer.signature_b64", rel);
    return out;
}

static size_t read_attest(const char *rel, struct vote **v, size_t cap)
{
    FILE *f = fopen(fx_path(rel), "rb");
    char buf[16384];
    size_t n, count = 0;
    struct vote **arr = NULL;
    struct crypto_diag d;

    if (f == NULL)
        fail_msg("%s: %s", rel, strerror(errno));
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    if (vote_parse_attestations(buf, n, &arr, &count, &d) != 0)
        fail_msg("%s: %s", rel, d.msg);
    assert_true(count <= cap);
    for (size_t i = 0; i < count; i++)
        v[i] = arr[i];
    free(arr);
    return count;
}

/* The gate table (quorum/gate_adapter: manifest signed by key0 with
 * sign_plasmid = tagged, attestations by key1, key2 tagged and key3 bare,
 * trusted key0..key4, attest_max_age_sec 3600). plorad counts the
 * publisher's signature as one vote (DESIGN.md "Quorum") and ages
 * attestations; so its maximum quorum is:
 *   fresh: 4  = the prototype's threshold mode (count mode says 3, because it
 *               checks the manifest signature untagged only: Surprise 2)
 *   stale: 1  = only the publisher; the prototype says none (count mode, its
 *               publisher signature never counts) or 4 (threshold mode never
 *               looks at timestamps: Surprise 3)
 *   none:  1  = the prototype's threshold mode (count mode: none). */
static void test_gate_table(void **state)
{
    static const char *const keys[] = { "key0_pub.pem", "key1_pub.pem", "key2_pub.pem",
                                        "key3_pub.pem", "key4_pub.pem" };
    static const struct { const char *setup, *file; long long want, proto_count, proto_thresh; } rows[] = {
        { "fresh_attestations", "quorum/gate_adapter/attestations.jsonl", 4, 3, 4 },
        { "stale_attestations_1day", "quorum/gate_adapter/attestations.stale.jsonl", 1, -1, 4 },
        { "no_attestations_file", NULL, 1, -1, 1 },
    };
    json_t *res = load_json("quorum/results.json"), *summary = json_object_get(res, "gate_summary");
    const char *sha = json_string_value(json_object_get(res, "adapter_sha256"));
    char *b64 = manifest_sig_b64("quorum/gate_adapter/plora.yml");
    struct keyring *kr = ring(keys, 5);
    struct crypto_diag d;

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct vote *v[8] = { NULL };
        struct quorum_result *r = NULL;
        uint8_t *sig;
        size_t len, n = 1;
        char key[96];
        long long pc = -1, pt = -1;

        /* the prototype's own maxima, read from its table */
        for (int q = 0; q <= 6; q++) {
            char qs[4];
            snprintf(qs, sizeof(qs), "%d", q);
            snprintf(key, sizeof(key), "%s|count_mode", rows[i].setup);
            if (json_is_true(json_object_get(json_object_get(summary, key), qs)))
                pc = q;
            snprintf(key, sizeof(key), "%s|threshold_mode", rows[i].setup);
            if (json_is_true(json_object_get(json_object_get(summary, key), qs)))
                pt = q;
        }
        if (pc != rows[i].proto_count || pt != rows[i].proto_thresh)
            fail_msg("%s: prototype table says %lld/%lld, test assumes %lld/%lld", rows[i].setup,
                     pc, pt, rows[i].proto_count, rows[i].proto_thresh);
        assert_int_equal(b64_decode(b64, strlen(b64), &sig, &len, &d), 0);
        assert_int_equal(vote_proto_new(&v[0], VOTE_FORM_PROTO_ANY, sha, sig, len, &d), 0);
        free(sig);
        if (rows[i].file != NULL)
            n += read_attest(rows[i].file, v + 1, 7);
        assert_int_equal(count(kr, sha, v, n, 1, 3600, &r), 0);
        if ((long long)r->accepts != rows[i].want)
            fail_msg("%s: plorad max quorum %zu, want %lld", rows[i].setup, r->accepts, rows[i].want);
        if (rows[i].file != NULL && rows[i].want == 1) {
            assert_int_equal(r->n_ignored, 3);
            assert_int_equal(r->ignored[0].why, QUORUM_WHY_EXPIRED);
        }
        quorum_result_free(r);
        for (size_t k = 0; k < n; k++)
            vote_free(v[k]);
    }
    free(b64);
    keyring_free(kr);
    json_decref(res);
}

static struct vote *signed_vote(struct key *k, const char *adapter, enum vote_verdict verdict,
                                int64_t ts)
{
    struct vote *v = NULL;
    struct crypto_diag d;
    assert_int_equal(vote_new(&v, adapter, "gpt2-c_attn-r8", verdict, ts, &d), 0);
    assert_int_equal(vote_add_reason(v, verdict == VOTE_ACCEPT ? "ok" : "bad", &d), 0);
    assert_int_equal(vote_sign(v, k, &d), 0);
    return v;
}

/* plorad votes: equivocation, expiry, future, untrusted, bad signature,
 * duplicates, and the publisher's adapter signature counted once. */
static void test_plorad_votes(void **state)
{
    static const char *const keys[] = { "key0_pub.pem", "key1_pub.pem", "key2_pub.pem",
                                        "key3_pub.pem" };
    const char *sha = "658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3e";
    const char *cfg = "8111748aeaf2927fa4065a06c30ead8c8a9211a20f2cdb22dfcc1ce60396eca1";
    struct key *k[4], *outsider = load_key("keys/rsa3072_priv.pem", true);
    struct keyring *kr = ring(keys, 4);
    struct sig_adapter a = { .weights_sha256 = sha, .config_sha256 = cfg,
                             .domain = "gpt2-c_attn-r8", .base_model = "gpt2" };
    struct vote *v[10];
    struct quorum_result *r = NULL;
    struct crypto_diag d;
    uint8_t *sig;
    size_t len;

    (void)state;
    for (int i = 0; i < 4; i++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "quorum/keys/key%d_priv.pem", i);
        k[i] = load_key(rel, true);
    }
    v[0] = signed_vote(k[1], sha, VOTE_ACCEPT, RUN_TIME - 10);
    v[1] = signed_vote(k[1], sha, VOTE_REJECT, RUN_TIME - 5);        /* key1 equivocates */
    v[2] = signed_vote(k[2], sha, VOTE_ACCEPT, RUN_TIME - 7200);     /* expired (1 h max) */
    v[3] = signed_vote(k[2], sha, VOTE_REJECT, RUN_TIME + 3600);     /* from the future */
    v[4] = signed_vote(outsider, sha, VOTE_ACCEPT, RUN_TIME);        /* untrusted */
    v[5] = signed_vote(k[3], sha, VOTE_ACCEPT, RUN_TIME);
    v[6] = signed_vote(k[3], sha, VOTE_ACCEPT, RUN_TIME - 1);        /* duplicate */
    v[7] = signed_vote(k[3], sha, VOTE_ACCEPT, RUN_TIME);
    v[7]->sig[0] ^= 1;                                               /* bad signature */
    assert_int_equal(sig_sign_adapter(k[0], &a, &sig, &len, &d), 0); /* the publisher */
    assert_int_equal(vote_publisher_new(&v[8], &a, key_id(k[0]), sig, len, &d), 0);
    v[9] = signed_vote(k[0], sha, VOTE_ACCEPT, RUN_TIME);            /* publisher votes too */
    free(sig);

    assert_int_equal(count(kr, sha, v, 10, 2, 3600, &r), 0);
    assert_int_equal(r->accepts, 2);            /* key0 (publisher + vote, once), key3 */
    assert_int_equal(r->rejects, 0);
    assert_true(r->reached);
    assert_int_equal(r->n_equivocators, 1);
    assert_string_equal(r->equivocators[0].key_id, key_id(k[1]));
    assert_int_equal(r->equivocators[0].accept_vote, 0);
    assert_int_equal(r->equivocators[0].reject_vote, 1);
    {
        static const struct { size_t vote; enum quorum_why why; } want[] = {
            { 2, QUORUM_WHY_EXPIRED }, { 3, QUORUM_WHY_FUTURE }, { 4, QUORUM_WHY_UNTRUSTED },
            { 6, QUORUM_WHY_DUPLICATE }, { 7, QUORUM_WHY_BAD_SIG }, { 9, QUORUM_WHY_DUPLICATE },
        };
        assert_int_equal(r->n_ignored, 6);
        for (size_t i = 0; i < 6; i++) {
            if (r->ignored[i].vote != want[i].vote || r->ignored[i].why != want[i].why)
                fail_msg("ignored[%zu]: vote %zu %s, want vote %zu %s", i, r->ignored[i].vote,
                         quorum_why_name(r->ignored[i].why), want[i].vote,
                         quorum_why_name(want[i].why));
        }
    }
    quorum_result_free(r);
    /* without an age limit key2's old accept counts, and its future reject
     * is still refused: key2 is not an equivocator */
    assert_int_equal(count(kr, sha, v, 10, 3, 0, &r), 0);
    assert_int_equal(r->accepts, 3);
    assert_true(r->reached);
    quorum_result_free(r);
    /* the publisher signature binds the config: another config is not it */
    v[8]->config_sha256[0] = 'f';
    assert_int_equal(count(kr, sha, v + 8, 1, 1, 0, &r), 0);
    assert_int_equal(r->accepts, 0);
    assert_int_equal(r->ignored[0].why, QUORUM_WHY_BAD_SIG);
    quorum_result_free(r);
    /* usage errors */
    {
        struct quorum_policy p = { .quorum = 1, .now = RUN_TIME, .max_age_s = -1 };
        assert_int_equal(quorum_count(kr, sha, v, 10, &p, &r, &d), CRYPTO_E_QUORUM_ARG);
        p.max_age_s = 0;
        assert_int_equal(quorum_count(kr, "xyz", v, 10, &p, &r, &d), CRYPTO_E_QUORUM_ARG);
        assert_int_equal(quorum_count(NULL, sha, v, 10, &p, &r, &d), CRYPTO_E_QUORUM_ARG);
        assert_int_equal(quorum_count(kr, sha, NULL, 0, &p, &r, &d), 0);
        assert_int_equal(r->accepts, 0);
        assert_false(r->reached);           /* no votes: never reached */
        quorum_result_free(r);
    }
    for (int i = 0; i < 10; i++)
        vote_free(v[i]);
    for (int i = 0; i < 4; i++)
        key_free(k[i]);
    key_free(outsider);
    keyring_free(kr);
}

/* The prototype's malformed aggregates are not votes: plorad's parser
 * refuses them, so they can never count (its quorum 0 accepted them). */
static void test_malformed_aggregates(void **state)
{
    json_t *res = load_json("quorum/results.json"), *m = json_object_get(res, "verify_aggregate_malformed"), *c;
    const char *name;
    size_t seen = 0;

    (void)state;
    json_object_foreach(m, name, c) {
        const char *agg = json_string_value(json_object_get(c, "aggregate"));
        struct vote *v = NULL, **arr = NULL;
        struct crypto_diag d;
        size_t n = 0;
        assert_false(json_is_true(json_object_get(c, "q1")));
        assert_true(json_is_true(json_object_get(c, "q0")));
        if (vote_parse_json(agg, strlen(agg), &v, &d) == 0 ||
            vote_parse_attestations(agg, strlen(agg), &arr, &n, &d) == 0)
            fail_msg("malformed aggregate %s parsed as a vote", name);
        seen++;
    }
    assert_int_equal(seen, 3);
    json_decref(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aggregate_cases),
        cmocka_unit_test(test_ignored_reasons),
        cmocka_unit_test(test_gate_table),
        cmocka_unit_test(test_plorad_votes),
        cmocka_unit_test(test_malformed_aggregates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
