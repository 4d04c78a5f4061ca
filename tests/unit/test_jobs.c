/* tests/unit/test_jobs.c: plorad's worker jobs (daemon/jobs.h) and the
 * helpers they share with `plora` (daemon/probe.h, daemon/merge_job.h).
 *
 * Real keys made here (Ed25519 node key, RSA-2048 peer, an untrusted and a
 * revoked key), a keyring directory with a "revoked" file, a temp store
 * filled from the PEFT fixtures with store_import. Handshake and vote
 * signatures round-trip and every forged variant fails; the gate accepts a
 * fixture signed by a trusted key (`plora sign`) and rejects, with its
 * reasons, an unsigned one, one signed by a stranger and a NaN-poisoned one;
 * jobs_merge of the two distilbert adapters gives the bytes `plora merge`
 * gives; 4 threads sign votes on one trust at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "gate.h"
#include "jobs.h"
#include "key.h"
#include "keyring.h"
#include "merge_job.h"
#include "policy.h"
#include "probe.h"
#include "proto_err.h"
#include "sha256.h"
#include "sig.h"
#include "store.h"
#include "vote.h"

#define IMDB "distilbert-imdb-r8"
#define EMOTION "distilbert-emotion-r8"
#define GPT2 "gpt2-c_attn-r8"
#define IMDB_ID "f6af8341ce7009c30ebf11ff0f361b01dd7eae004201d7015bab7a28c8ef4a43"
#define EMOTION_ID "bc77a4203f29356efecb1e0f4c30072145adfd8b959a4ce1c5cbac7c1e796011"

struct world {
    char root[64];
    char data[256], keyring[256];
    char node_pem[256], stranger_pem[256], revoked_pem[256];
    struct key *node, *peer, *stranger, *revoked;
    struct jobs_trust *t, *t_stranger, *t_revoked;
};

/* ---- helpers ------------------------------------------------------------ */

static void path_of(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void path_of(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int w;

    va_start(ap, fmt);
    w = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    assert_true(w > 0 && (size_t)w < cap);
}

/* $PLORA_FIXTURES/peft/<name>, which must hold the adapter (else fail). */
static void fixture(const char *name, char out[4096])
{
    const char *root = getenv("PLORA_FIXTURES");
    char f[4200];

    if (root == NULL)
        fail_msg("PLORA_FIXTURES is not set");
    path_of(out, 4096, "%s/peft/%s", root, name);
    path_of(f, sizeof(f), "%s/adapter_model.safetensors", out);
    if (access(f, R_OK) != 0)
        fail_msg("fixture %s missing: %s", f, strerror(errno));
}

static void copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    char buf[65536];
    size_t n;

    if (in == NULL || out == NULL)
        fail_msg("copy %s -> %s: %s", src, dst, strerror(errno));
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* A copy of fixture `name` (weights + config) in root/<as>/, path in out. */
static void copy_fixture(const struct world *w, const char *name, const char *as, char out[4096])
{
    char src[4096], a[4200], b[4200];

    fixture(name, src);
    path_of(out, 4096, "%s/%s", w->root, as);
    assert_int_equal(mkdir(out, 0700), 0);
    for (int i = 0; i < 2; i++) {
        const char *f = i == 0 ? "adapter_model.safetensors" : "adapter_config.json";
        path_of(a, sizeof(a), "%s/%s", src, f);
        path_of(b, sizeof(b), "%s/%s", out, f);
        copy_file(a, b);
    }
}

/* Overwrite the first element of the first F32 lora_B tensor with NaN. */
static void poison_nan(const char *dir)
{
    char path[4200];
    uint8_t len8[8];
    uint64_t hlen = 0;
    char *hdr;
    json_t *o, *t;
    const char *name;
    float nanv = NAN;
    long off = -1;
    FILE *f;

    path_of(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    assert_non_null(f = fopen(path, "r+b"));
    assert_int_equal(fread(len8, 1, 8, f), 8);
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | len8[i];
    assert_true(hlen > 0 && hlen < (1u << 24));
    assert_non_null(hdr = malloc(hlen));
    assert_int_equal(fread(hdr, 1, hlen, f), hlen);
    assert_non_null(o = json_loadb(hdr, hlen, 0, NULL));
    json_object_foreach(o, name, t) {
        if (off < 0 && strstr(name, "lora_B") != NULL &&
            strcmp(json_string_value(json_object_get(t, "dtype")), "F32") == 0)
            off = (long)(8 + hlen + json_integer_value(json_array_get(json_object_get(t, "data_offsets"), 0)));
    }
    assert_true(off > 0);
    assert_int_equal(fseek(f, off, SEEK_SET), 0);
    assert_int_equal(fwrite(&nanv, sizeof(nanv), 1, f), 1);
    assert_int_equal(fclose(f), 0);
    json_decref(o);
    free(hdr);
}

/* Run `$PLORA_BIN ARGS` (stdout and stderr to /dev/null); its exit code. */
static int run_plora(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_plora(const char *fmt, ...)
{
    const char *bin = getenv("PLORA_BIN");
    char args[8192], cmd[9000];
    va_list ap;
    int st;

    if (bin == NULL)
        fail_msg("PLORA_BIN is not set");
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    path_of(cmd, sizeof(cmd), "'%s' %s >/dev/null 2>&1", bin, args);
    st = system(cmd);
    assert_true(st != -1 && WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void import(const struct world *w, const char *dir, const char *domain, char id[65])
{
    struct dmn_diag d = { 0 };

    if (store_import(w->data, dir, domain, id, &d) != 0)
        fail_msg("store_import %s: %s", dir, d.msg);
}

static void sha_file_hex(const char *path, char hex[65])
{
    uint8_t dg[SHA256_LEN];
    struct crypto_diag cd;

    if (sha256_file(path, dg, NULL, &cd) != 0)
        fail_msg("%s: %s", path, cd.msg);
    sha256_hex(dg, hex);
}

static void rm_tree(const char *dir)
{
    char cmd[4200];

    path_of(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void save_pub(const struct world *w, const struct key *k, const char *name)
{
    char p[4200];
    struct crypto_diag cd;

    path_of(p, sizeof(p), "%s/%s", w->keyring, name);
    assert_int_equal(key_save_public(k, p, &cd), 0);
}

static int load_trust(struct jobs_trust **t, const char *key, const char *keyring,
                      const char *policy, struct dmn_diag *d)
{
    struct config c;
    int rc;

    config_defaults(&c);   /* owns strings: ours are set as copies, all freed */
    free(c.key);
    free(c.keyring);
    free(c.policy);
    c.key = key ? strdup(key) : NULL;
    c.keyring = keyring ? strdup(keyring) : NULL;
    c.policy = policy ? strdup(policy) : NULL;
    rc = jobs_trust_load(t, &c, d);
    config_free(&c);
    return rc;
}

/* ---- fixture world -------------------------------------------------------- */

static void make_keys(struct world *w)
{
    struct crypto_diag cd;
    char p[4200];
    FILE *f;

    assert_int_equal(key_generate_ed25519(&w->node, &cd), 0);
    assert_int_equal(key_generate_rsa(&w->peer, 2048, &cd), 0);
    assert_int_equal(key_generate_ed25519(&w->stranger, &cd), 0);
    assert_int_equal(key_generate_ed25519(&w->revoked, &cd), 0);
    path_of(w->node_pem, sizeof(w->node_pem), "%s/node.key", w->root);
    path_of(w->stranger_pem, sizeof(w->stranger_pem), "%s/stranger.key", w->root);
    path_of(w->revoked_pem, sizeof(w->revoked_pem), "%s/revoked.key", w->root);
    assert_int_equal(key_save_private(w->node, w->node_pem, &cd), 0);
    assert_int_equal(key_save_private(w->stranger, w->stranger_pem, &cd), 0);
    assert_int_equal(key_save_private(w->revoked, w->revoked_pem, &cd), 0);
    assert_int_equal(mkdir(w->keyring, 0700), 0);
    save_pub(w, w->node, "node.pem");
    save_pub(w, w->peer, "peer.pem");
    save_pub(w, w->revoked, "revoked.pem");
    path_of(p, sizeof(p), "%s/revoked", w->keyring);
    assert_non_null(f = fopen(p, "w"));
    fprintf(f, "# revoked keys\n%s\n", key_id(w->revoked));
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    struct dmn_diag d = { 0 };
    struct store *s = NULL;

    assert_non_null(w);
    snprintf(w->root, sizeof(w->root), "/tmp/plora-test-jobs-XXXXXX");
    assert_non_null(mkdtemp(w->root));
    path_of(w->data, sizeof(w->data), "%s/data", w->root);
    path_of(w->keyring, sizeof(w->keyring), "%s/keyring", w->root);
    make_keys(w);
    if (store_open(&s, w->data, &d) != 0)
        fail_msg("store_open: %s", d.msg);
    store_free(s);
    if (load_trust(&w->t, w->node_pem, w->keyring, NULL, &d) != 0 ||
        load_trust(&w->t_stranger, w->stranger_pem, w->keyring, NULL, &d) != 0 ||
        load_trust(&w->t_revoked, w->revoked_pem, w->keyring, NULL, &d) != 0)
        fail_msg("jobs_trust_load: %s", d.msg);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;

    jobs_trust_unref(w->t);
    jobs_trust_unref(w->t_stranger);
    jobs_trust_unref(w->t_revoked);
    key_free(w->node);
    key_free(w->peer);
    key_free(w->stranger);
    key_free(w->revoked);
    rm_tree(w->root);
    free(w);
    return 0;
}

/* ---- trust ---------------------------------------------------------------- */

static void test_trust_load(void **state)
{
    struct world *w = *state;
    struct jobs_trust *t = w->t;

    assert_string_equal(t->key_id, key_id(w->node));
    assert_int_equal(t->refs, 1);
    assert_true(keyring_is_trusted(t->keyring, key_id(w->peer)));
    assert_true(keyring_is_revoked(t->keyring, key_id(w->revoked)));
    assert_null(t->gate_keyring);
    /* the built-in policy */
    assert_true(t->policy->check_finite);
    assert_true(fabs(t->policy->norm_z_threshold - POLICY_DEFAULT_Z) < 1e-12);
    assert_true(t->policy->signatures_required);
    assert_int_equal(t->policy->quorum, 1);
    assert_false(t->policy->has_probe);
    assert_ptr_equal(jobs_trust_ref(t), t);
    assert_int_equal(t->refs, 2);
    jobs_trust_unref(t);
    assert_int_equal(t->refs, 1);
    jobs_trust_unref(NULL);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Each broken input fails with its code and the message names the file. */
static void test_trust_load_errors(void **state)
{
    struct world *w = *state;
    char missing[4200], bad_policy[4200], empty_dir[4200], pol_keys[4200], pubfile[4200];
    struct jobs_trust *t = NULL;
    struct dmn_diag d = { 0 };

    path_of(missing, sizeof(missing), "%s/nope.key", w->root);
    assert_int_equal(load_trust(&t, missing, w->keyring, NULL, &d), DMN_E_KEY);
    assert_null(t);
    assert_non_null(strstr(d.msg, missing));
    path_of(empty_dir, sizeof(empty_dir), "%s/no-keyring", w->root);
    assert_int_equal(load_trust(&t, w->node_pem, empty_dir, NULL, &d), DMN_E_KEY);
    assert_non_null(strstr(d.msg, empty_dir));
    /* a public key where the private key belongs */
    path_of(pubfile, sizeof(pubfile), "%s/node.pem", w->keyring);
    assert_int_equal(load_trust(&t, pubfile, w->keyring, NULL, &d), DMN_E_KEY);
    path_of(bad_policy, sizeof(bad_policy), "%s/bad-policy.yml", w->root);
    write_text(bad_policy, "check_finite: true\nquorom: 2\n");
    assert_int_equal(load_trust(&t, w->node_pem, w->keyring, bad_policy, &d), DMN_E_POLICY);
    assert_non_null(strstr(d.msg, bad_policy));
    assert_non_null(strstr(d.msg, "quorom"));
    assert_null(t);
    assert_int_equal(load_trust(&t, w->node_pem, w->keyring, "", &d), 0);  /* "" = built-in */
    assert_true(t->policy->signatures_required);
    jobs_trust_unref(t);
    t = NULL;
    /* a policy naming its own keys: the gate keyring is the union, the
     * node's revocations still hold */
    path_of(pol_keys, sizeof(pol_keys), "%s/policy-keys.yml", w->root);
    write_text(pol_keys, "quorum: 1\nsignatures_required: true\n"
                         "trusted_public_keys: [keyring/revoked.pem, stranger.pub]\n");
    path_of(pubfile, sizeof(pubfile), "%s/stranger.pub", w->root);
    {
        struct crypto_diag cd;
        assert_int_equal(key_save_public(w->stranger, pubfile, &cd), 0);
    }
    assert_int_equal(load_trust(&t, w->node_pem, w->keyring, pol_keys, &d), 0);
    assert_non_null(t->gate_keyring);
    assert_true(keyring_is_trusted(t->gate_keyring, key_id(w->stranger)));
    assert_true(keyring_is_trusted(t->gate_keyring, key_id(w->node)));
    assert_true(keyring_is_revoked(t->gate_keyring, key_id(w->revoked)));
    assert_false(keyring_is_trusted(t->keyring, key_id(w->stranger)));
    jobs_trust_unref(t);
}

/* ---- handshake -------------------------------------------------------------- */

static const uint8_t auth_msg[] = "plorad-auth v1 nonce 0123456789abcdef";

struct auth_case {
    const char *name;
    int who;            /* 0 node, 1 peer (RSA), 2 stranger, 3 revoked */
    int claim;          /* whose id is claimed (same codes) */
    int tamper;         /* 0 none, 1 flip a sig bit, 2 flip an auth byte, 3 truncate sig, 4 pk byte */
    int want;
};

static const struct auth_case auth_cases[] = {
    { "node, Ed25519", 0, 0, 0, 0 },
    { "peer, RSA-PSS", 1, 1, 0, 0 },
    { "wrong key id", 1, 0, 0, DMN_E_PEER },
    { "untrusted key", 2, 2, 0, DMN_E_PEER },
    { "revoked key", 3, 3, 0, DMN_E_PEER },
    { "tampered sig (Ed25519)", 0, 0, 1, DMN_E_PEER },
    { "tampered sig (RSA)", 1, 1, 1, DMN_E_PEER },
    { "tampered auth bytes", 1, 1, 2, DMN_E_PEER },
    { "truncated sig", 0, 0, 3, DMN_E_PEER },
    { "altered public key", 1, 1, 4, DMN_E_PEER },
};

static const struct key *key_of(const struct world *w, int who)
{
    const struct key *k[] = { w->node, w->peer, w->stranger, w->revoked };

    return k[who];
}

static void test_auth(void **state)
{
    struct world *w = *state;

    for (size_t i = 0; i < sizeof(auth_cases) / sizeof(auth_cases[0]); i++) {
        const struct auth_case *c = &auth_cases[i];
        struct crypto_diag cd;
        struct dmn_diag d = { 0 };
        uint8_t *sig = NULL, *pk = NULL, auth[sizeof(auth_msg)];
        size_t sig_len = 0, pk_len = 0;
        int rc;

        memcpy(auth, auth_msg, sizeof(auth));
        if (c->who == 0)
            assert_int_equal(jobs_sign_auth(w->t, auth, sizeof(auth), &sig, &sig_len, &d), 0);
        else
            assert_int_equal(sig_sign(key_of(w, c->who), auth, sizeof(auth), &sig, &sig_len, &cd), 0);
        assert_int_equal(key_public_der(key_of(w, c->who), &pk, &pk_len, &cd), 0);
        if (c->tamper == 1)
            sig[sig_len / 2] ^= 0x10;
        else if (c->tamper == 2)
            auth[3] ^= 0x01;
        else if (c->tamper == 3)
            sig_len--;
        else if (c->tamper == 4)
            pk[pk_len - 1] ^= 0x01;
        rc = jobs_verify_auth(w->t, key_id_bin(key_of(w, c->claim)), pk, pk_len, auth, sizeof(auth),
                              sig, sig_len, &d);
        if (rc != c->want)
            fail_msg("%s: got %s (%s), want %s", c->name, dmn_err_name(rc), d.msg, dmn_err_name(c->want));
        if (rc != 0)
            assert_true(d.msg[0] != '\0');
        free(sig);
        free(pk);
    }
}

/* ---- votes ------------------------------------------------------------------ */

static void test_vote_round_trip(void **state)
{
    struct world *w = *state;
    struct jobs_gate_result g = { 0 };
    struct jobs_vote v = { 0 }, got = { 0 };
    struct dmn_diag d = { 0 };

    g.n_reasons = 2;
    g.reason_ids[0] = GATE_R_NON_FINITE;
    g.reason_ids[1] = GATE_R_QUORUM;
    assert_int_equal(jobs_sign_vote(w->t, IMDB_ID, "imdb", false, &g, &v, &d), 0);
    assert_false(v.accept);
    assert_string_equal(v.signer, key_id(w->node));
    assert_non_null(v.vote);
    assert_int_equal(v.vote->n_reasons, 2);
    assert_string_equal(v.vote->reasons[0], "non_finite_values");
    assert_string_equal(v.vote->reasons[1], "signature_quorum_not_met");
    assert_true(v.body_len > 0 && v.body_len <= 4096);
    assert_null(memchr(v.body, '\n', v.body_len));  /* compact */
    assert_int_equal(jobs_verify_vote(w->t, IMDB_ID, v.signer, v.body, v.body_len, v.sig, v.sig_len,
                                      &got, &d), 0);
    assert_false(got.accept);
    assert_string_equal(got.signer, v.signer);
    assert_string_equal(got.vote->domain, "imdb");
    assert_int_equal(got.vote->verdict, VOTE_REJECT);
    assert_int_equal(got.body_len, v.body_len);
    assert_memory_equal(got.body, v.body, v.body_len);
    jobs_vote_clear(&got);
    jobs_vote_clear(&v);
    /* an accept without a gate result: no reasons; a peer's RSA trust is not
     * needed to verify, the keyring is */
    assert_int_equal(jobs_sign_vote(w->t, EMOTION_ID, "", true, NULL, &v, &d), 0);
    assert_int_equal(jobs_verify_vote(w->t, EMOTION_ID, v.signer, v.body, v.body_len, v.sig, v.sig_len,
                                      &got, &d), 0);
    assert_true(got.accept);
    assert_int_equal(got.vote->n_reasons, 0);
    jobs_vote_clear(&got);
    jobs_vote_clear(&v);
    jobs_vote_clear(NULL);
}

/* Replace the first occurrence of `from` in a copy of the body by `to`
 * (same length). */
static uint8_t *edited(const struct jobs_vote *v, const char *from, const char *to)
{
    uint8_t *b = malloc(v->body_len + 1);
    char *p;

    assert_non_null(b);
    memcpy(b, v->body, v->body_len);
    b[v->body_len] = '\0';
    assert_non_null(p = strstr((char *)b, from));
    assert_int_equal(strlen(from), strlen(to));
    memcpy(p, to, strlen(to));
    return b;
}

/* A refused vote; `fault`: the peer fault it proves (0: none, keyrings or
 * vote formats may differ). */
static void expect_peer(const struct world *w, const char *name, int fault, const char *id,
                        const char *by, const uint8_t *body, size_t n, const uint8_t *sig,
                        size_t sig_len)
{
    struct jobs_vote got = { 0 };
    struct dmn_diag d = { 0 };
    int rc = jobs_verify_vote(w->t, id, by, body, n, sig, sig_len, &got, &d);

    if (rc != DMN_E_PEER)
        fail_msg("%s: got %s, want DMN_E_PEER", name, dmn_err_name(rc));
    assert_true(d.msg[0] != '\0');
    assert_null(got.vote);
    assert_null(got.body);
    if (got.fault != fault)
        fail_msg("%s: fault %d (%s), want %d (%s)", name, got.fault, proto_err_name(got.fault), fault,
                 proto_err_name(fault));
}

static void test_vote_forgeries(void **state)
{
    struct world *w = *state;
    struct jobs_vote v = { 0 }, vs = { 0 }, vr = { 0 };
    struct dmn_diag d = { 0 };
    uint8_t *b, *sig;

    assert_int_equal(jobs_sign_vote(w->t, IMDB_ID, "imdb", true, NULL, &v, &d), 0);
    b = edited(&v, "\"accept\"", "\"reject\"");
    expect_peer(w, "verdict flipped", PROTO_E_AUTH, IMDB_ID, v.signer, b, v.body_len, v.sig, v.sig_len);
    free(b);
    b = edited(&v, "\"imdb\"", "\"imdc\"");
    expect_peer(w, "domain changed", PROTO_E_AUTH, IMDB_ID, v.signer, b, v.body_len, v.sig, v.sig_len);
    free(b);
    expect_peer(w, "wrong adapter id", PROTO_E_FIELD_VALUE, EMOTION_ID, v.signer, v.body, v.body_len, v.sig, v.sig_len);
    expect_peer(w, "wrong signer id", PROTO_E_FIELD_VALUE, IMDB_ID, key_id(w->peer), v.body, v.body_len, v.sig, v.sig_len);
    expect_peer(w, "truncated body", 0, IMDB_ID, v.signer, v.body, v.body_len - 1, v.sig, v.sig_len);
    expect_peer(w, "empty body", 0, IMDB_ID, v.signer, v.body, 0, v.sig, v.sig_len);
    expect_peer(w, "not hex id", 0, "xyz", v.signer, v.body, v.body_len, v.sig, v.sig_len);
    assert_non_null(sig = malloc(v.sig_len));
    memcpy(sig, v.sig, v.sig_len);
    sig[0] ^= 1;
    expect_peer(w, "message sig differs", PROTO_E_FIELD_VALUE, IMDB_ID, v.signer, v.body, v.body_len, sig, v.sig_len);
    free(sig);
    /* untrusted and revoked signers, with perfectly good signatures */
    assert_int_equal(jobs_sign_vote(w->t_stranger, IMDB_ID, "imdb", true, NULL, &vs, &d), 0);
    expect_peer(w, "untrusted signer", 0, IMDB_ID, vs.signer, vs.body, vs.body_len, vs.sig, vs.sig_len);
    assert_int_equal(jobs_sign_vote(w->t_revoked, IMDB_ID, "imdb", true, NULL, &vr, &d), 0);
    expect_peer(w, "revoked signer", 0, IMDB_ID, vr.signer, vr.body, vr.body_len, vr.sig, vr.sig_len);
    /* the stranger's vote passes its own keyring check only if it were trusted:
     * same bytes verify under a trust that holds it (control) */
    {
        struct jobs_vote got = { 0 };
        assert_int_equal(jobs_verify_vote(w->t, IMDB_ID, v.signer, v.body, v.body_len, v.sig, v.sig_len,
                                          &got, &d), 0);
        jobs_vote_clear(&got);
    }
    jobs_vote_clear(&v);
    jobs_vote_clear(&vs);
    jobs_vote_clear(&vr);
}

#define VOTE_THREADS 4
#define VOTES_PER_THREAD 16

struct vote_thread {
    const struct world *w;
    int idx, failures;
};

static void *vote_worker(void *arg)
{
    struct vote_thread *vt = arg;
    char id[65];

    for (int i = 0; i < VOTES_PER_THREAD; i++) {
        struct jobs_gate_result g = { .n_reasons = 1, .reason_ids = { GATE_R_NORM_OUTLIER } };
        struct jobs_vote v = { 0 }, got = { 0 };
        struct dmn_diag d = { 0 };
        snprintf(id, sizeof(id), "%064x", vt->idx * 1000 + i);
        if (jobs_sign_vote(vt->w->t, id, "general", i % 2 == 0, &g, &v, &d) != 0 ||
            jobs_verify_vote(vt->w->t, id, v.signer, v.body, v.body_len, v.sig, v.sig_len, &got, &d) != 0 ||
            got.accept != (i % 2 == 0) || strcmp(got.vote->adapter, id) != 0)
            vt->failures++;
        jobs_vote_clear(&v);
        jobs_vote_clear(&got);
    }
    return NULL;
}

static void test_vote_threads(void **state)
{
    struct world *w = *state;
    pthread_t th[VOTE_THREADS];
    struct vote_thread vt[VOTE_THREADS];

    for (int i = 0; i < VOTE_THREADS; i++) {
        vt[i] = (struct vote_thread){ w, i, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, vote_worker, &vt[i]), 0);
    }
    for (int i = 0; i < VOTE_THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(vt[i].failures, 0);
    }
}

/* ---- gate ------------------------------------------------------------------- */

static void test_gate(void **state)
{
    struct world *w = *state;
    char signed_dir[4096], unsigned_dir[4096], nan_dir[4096], stranger_dir[4096];
    char id_signed[65], id_unsigned[65], id_nan[65], id_stranger[65];
    struct jobs_gate_result r;
    struct dmn_diag d = { 0 };

    copy_fixture(w, IMDB, "g-signed", signed_dir);
    assert_int_equal(run_plora("sign '%s' --key '%s' --domain imdb", signed_dir, w->node_pem), 0);
    import(w, signed_dir, "imdb", id_signed);
    assert_string_equal(id_signed, IMDB_ID);
    assert_int_equal(jobs_gate(w->t, w->data, id_signed, &r, &d), 0);
    if (!r.accept)
        fail_msg("signed fixture rejected: %s", r.n_reasons ? r.reasons[0] : "-");
    assert_int_equal(r.n_reasons, 0);
    assert_string_equal(r.domain, "imdb");

    copy_fixture(w, EMOTION, "g-unsigned", unsigned_dir);
    import(w, unsigned_dir, "emotion", id_unsigned);
    assert_int_equal(jobs_gate(w->t, w->data, id_unsigned, &r, &d), 0);
    assert_false(r.accept);
    assert_int_equal(r.n_reasons, 1);
    assert_int_equal(r.reason_ids[0], GATE_R_QUORUM);
    assert_non_null(strstr(r.reasons[0], "signature_quorum_not_met: "));
    assert_string_equal(r.domain, "emotion");

    copy_fixture(w, GPT2, "g-stranger", stranger_dir);
    assert_int_equal(run_plora("sign '%s' --key '%s' --domain gpt", stranger_dir, w->stranger_pem), 0);
    import(w, stranger_dir, "gpt", id_stranger);
    assert_int_equal(jobs_gate(w->t, w->data, id_stranger, &r, &d), 0);
    assert_false(r.accept);
    assert_int_equal(r.reason_ids[0], GATE_R_QUORUM);

    copy_fixture(w, IMDB, "g-nan", nan_dir);
    poison_nan(nan_dir);
    assert_int_equal(run_plora("sign '%s' --key '%s' --domain imdb", nan_dir, w->node_pem), 0);
    import(w, nan_dir, "imdb", id_nan);
    assert_string_not_equal(id_nan, IMDB_ID);
    assert_int_equal(jobs_gate(w->t, w->data, id_nan, &r, &d), 0);
    assert_false(r.accept);
    assert_int_equal(r.n_reasons, 1);
    assert_int_equal(r.reason_ids[0], GATE_R_NON_FINITE);
    assert_non_null(strstr(r.reasons[0], "non_finite_values: "));

    /* nothing stored under that id / not an id: a reject, never an accept */
    assert_int_equal(jobs_gate(w->t, w->data, "00000000000000000000000000000000000000000000000000000000000000ff",
                               &r, &d), 0);
    assert_false(r.accept);
    assert_int_equal(r.reason_ids[0], GATE_R_ARTIFACT_MISSING);
    assert_int_equal(jobs_gate(w->t, w->data, "../../etc", &r, &d), 0);
    assert_false(r.accept);
    assert_int_equal(r.n_reasons, 1);
    assert_int_equal(r.reason_ids[0], GATE_R_ARTIFACT_MISSING);
}

/* A policy with a probe: the gate runs it through probe_run. */
static void test_gate_probe(void **state)
{
    struct world *w = *state;
    char pol[4200];
    struct jobs_trust *t = NULL;
    struct jobs_gate_result r;
    struct dmn_diag d = { 0 };
    const char *verdicts[][2] = {
        { "probe: {argv: [/bin/sh, -c, 'test -f \"$0/adapter_model.safetensors\"', '{adapter}'], timeout_s: 10}\n", "1" },
        { "probe: {argv: [/bin/sh, -c, 'exit 3'], timeout_s: 10}\n", "0" },
        { "probe: {argv: [/nonexistent/probe], timeout_s: 10}\n", "0" },
    };

    for (size_t i = 0; i < sizeof(verdicts) / sizeof(verdicts[0]); i++) {
        char text[1024];
        path_of(pol, sizeof(pol), "%s/probe-%zu.yml", w->root, i);
        path_of(text, sizeof(text), "check_finite: true\n%s", verdicts[i][0]);
        write_text(pol, text);
        if (load_trust(&t, w->node_pem, w->keyring, pol, &d) != 0)
            fail_msg("policy %zu: %s", i, d.msg);
        assert_int_equal(jobs_gate(t, w->data, EMOTION_ID, &r, &d), 0);
        if (r.accept != (verdicts[i][1][0] == '1'))
            fail_msg("probe case %zu: accept %d (%s)", i, r.accept, r.n_reasons ? r.reasons[0] : "-");
        if (!r.accept)
            assert_int_equal(r.reason_ids[0], GATE_R_PROBE);
        jobs_trust_unref(t);
    }
}

/* ---- probe ------------------------------------------------------------------ */

static void test_probe_run(void **state)
{
    char *ok_argv[] = { "/bin/sh", "-c", "test -d \"$0\" && exit 7", "{adapter}", NULL };
    char *app_argv[] = { "/bin/sh", "-c", "test \"$0\" = /tmp && exit 5 || exit 1", NULL };
    char *sleep_argv[] = { "/bin/sh", "-c", "sleep 5 & sleep 5; wait", NULL };
    char *kill_argv[] = { "/bin/sh", "-c", "kill -9 $$", NULL };
    char *none_argv[] = { "/nonexistent/probe-xyz", NULL };
    int leak = open("/dev/null", O_RDONLY);  /* not CLOEXEC: the probe must not see it */
    char fd_test[128];
    char *fd_argv[] = { "/bin/sh", "-c", fd_test, NULL };
    struct {
        char **argv;
        size_t argc;
        unsigned timeout_ms;
        bool ran, timed_out;
        int code;
    } cases[] = {
        { ok_argv, 4, 5000, true, false, 7 },
        { app_argv, 3, 5000, true, false, 5 },   /* dir appended: $0 = /tmp */
        { sleep_argv, 3, 200, true, true, 0 },
        { kill_argv, 3, 5000, true, false, 128 + 9 },
        { none_argv, 1, 5000, false, false, 0 },
        { fd_argv, 3, 5000, true, false, 0 },
    };

    (void)state;
    assert_true(leak > 2);
    path_of(fd_test, sizeof(fd_test), "test -e /proc/$$/fd/%d && exit 9; exit 0", leak);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct policy_probe p = { cases[i].argv, cases[i].argc, cases[i].timeout_ms, NULL, 0 };
        struct gate_probe_result out;
        assert_int_equal(probe_run(NULL, &p, "/tmp", &out), 0);
        if (out.ran != cases[i].ran || out.timed_out != cases[i].timed_out)
            fail_msg("probe case %zu: ran %d timed_out %d error %s", i, out.ran, out.timed_out, out.error);
        if (out.ran && !out.timed_out)
            assert_int_equal(out.exit_code, cases[i].code);
        if (!out.ran)
            assert_non_null(strstr(out.error, "/nonexistent/probe-xyz"));
    }
    close(leak);
}

/* ---- merge ------------------------------------------------------------------ */

struct merge_case {
    const char *name;
    struct jobs_merge_opts o;
    const char *cli;          /* the same options for `plora merge` */
};

static const struct merge_case merge_cases[] = {
    { "uniform, exact rank", { 0, 0, 0, 0, false }, "" },
    { "trust region + rank 8", { 0.5, 0, 0, 8, false }, "--tau-rel 0.5 --rank 8" },
};

static void check_merge_dir(const struct jobs_merge_result *r)
{
    char p[4200], hex[65];
    json_t *cert;

    path_of(p, sizeof(p), "%s/adapter_model.safetensors", r->dir);
    sha_file_hex(p, hex);
    assert_string_equal(hex, r->output);
    path_of(p, sizeof(p), "%s/certificate.json", r->dir);
    sha_file_hex(p, hex);
    assert_string_equal(hex, r->certificate);
    assert_non_null(cert = json_load_file(p, 0, NULL));
    assert_string_equal(json_string_value(json_object_get(json_object_get(cert, "output"), "path")), r->dir);
    assert_string_equal(json_string_value(json_object_get(json_object_get(cert, "output"), "sha256")), r->output);
    json_decref(cert);
}

static void assert_no_tmp(const struct world *w)
{
    char cmd[4200];

    path_of(cmd, sizeof(cmd), "test -z \"$(find '%s/merged' -name '.tmp-*')\"", w->data);
    assert_int_equal(system(cmd), 0);
}

static void test_merge(void **state)
{
    struct world *w = *state;
    const char *ids[] = { IMDB_ID, EMOTION_ID, IMDB_ID };
    const char *rev[] = { EMOTION_ID, IMDB_ID };
    char out[4200], p[4200], want[65];

    for (size_t i = 0; i < sizeof(merge_cases) / sizeof(merge_cases[0]); i++) {
        const struct merge_case *c = &merge_cases[i];
        struct jobs_merge_result r, r2;
        struct dmn_diag d = { 0 };
        path_of(out, sizeof(out), "%s/cli-merge-%zu", w->root, i);
        /* jobs_merge sorts its inputs by id: emotion (bc77..) before imdb (f6af..) */
        assert_int_equal(run_plora("merge '%s/adapters/%s' '%s/adapters/%s' %s --out '%s'", w->data,
                                   EMOTION_ID, w->data, IMDB_ID, c->cli, out), 0);
        path_of(p, sizeof(p), "%s/adapter_model.safetensors", out);
        sha_file_hex(p, want);
        if (jobs_merge(w->data, ids, 3, &c->o, &r, &d) != 0)
            fail_msg("%s: %s", c->name, d.msg);
        assert_string_equal(r.output, want);
        assert_int_equal(r.n_inputs, 2);
        assert_string_equal(r.inputs[0], EMOTION_ID);
        assert_string_equal(r.inputs[1], IMDB_ID);
        assert_true(fabs(r.weights[0] - 0.5) < 1e-15 && fabs(r.weights[1] - 0.5) < 1e-15);
        assert_int_equal(r.rank, c->o.rank ? c->o.rank : 16);
        assert_true(r.frob_merged > 0 && r.frob_out > 0);
        assert_true(isnan(r.kld_bound));
        assert_true(c->o.tau_rel > 0 ? fabs(r.tau - 0.5 * r.frob_merged) < 1e-9 : isnan(r.tau));
        assert_true(c->o.rank ? r.dropped_energy > 0 : r.dropped_energy == 0);
        check_merge_dir(&r);
        /* same set in another order: same output, the existing dir is kept */
        assert_int_equal(jobs_merge(w->data, rev, 2, &c->o, &r2, &d), 0);
        assert_string_equal(r2.output, r.output);
        assert_string_equal(r2.dir, r.dir);
        assert_string_equal(r2.certificate, r.certificate);
        assert_no_tmp(w);
        jobs_merge_result_clear(&r);
        jobs_merge_result_clear(&r2);
    }
}

static void test_merge_errors(void **state)
{
    struct world *w = *state;
    char gpt[65];
    const char *bad_id[] = { "not-an-id" };
    const char *absent[] = { "00000000000000000000000000000000000000000000000000000000000000ee" };
    const char *mixed[2] = { IMDB_ID, NULL };
    struct jobs_merge_opts o = { 0 };
    struct jobs_merge_result r;
    struct dmn_diag d = { 0 };
    char dir[4096];

    copy_fixture(w, GPT2, "m-gpt2", dir);
    import(w, dir, "gpt", gpt);
    mixed[1] = gpt;
    assert_int_equal(jobs_merge(w->data, mixed, 2, &o, &r, &d), DMN_E_ARG);
    assert_non_null(strstr(d.msg, "base_model_name_or_path"));
    assert_null(r.inputs);
    assert_int_equal(jobs_merge(w->data, bad_id, 1, &o, &r, &d), DMN_E_ARG);
    assert_int_equal(jobs_merge(w->data, absent, 1, &o, &r, &d), DMN_E_IO);
    assert_non_null(strstr(d.msg, absent[0]));
    assert_int_equal(jobs_merge(w->data, absent, 0, &o, &r, &d), DMN_E_ARG);
    o.fisher = true;   /* the fixtures carry no plorad.fisher */
    assert_int_equal(jobs_merge(w->data, mixed, 1, &o, &r, &d), DMN_E_ARG);
    assert_non_null(strstr(d.msg, "plorad.fisher"));
    assert_no_tmp(w);
}

/* merge_job_run directly: the refusal to overwrite an input. */
static void test_merge_job_refuses_input_out(void **state)
{
    struct world *w = *state;
    char src[4096];
    const char *dirs[1];
    struct merge_job_spec s = { .n = 1, .refuse_input_out = true };
    struct merge_job_result r;
    struct dmn_diag d = { 0 };

    copy_fixture(w, IMDB, "mj-in", src);
    dirs[0] = src;
    s.dirs = dirs;
    s.out_dir = src;
    assert_int_equal(merge_job_run(&s, &r, &d), DMN_E_ARG);
    assert_non_null(strstr(d.msg, "is input adapter 1"));
    assert_null(r.cert);
    merge_job_result_clear(NULL);
}

static void test_base_model(void **state)
{
    struct world *w = *state;
    char out[128];
    struct dmn_diag d = { 0 };

    assert_int_equal(jobs_base_model(w->data, IMDB_ID, out, sizeof(out), &d), 0);
    assert_string_equal(out, "distilbert-base-uncased");
    assert_int_equal(jobs_base_model(w->data, IMDB_ID, out, 5, &d), DMN_E_ARG);
    assert_int_equal(jobs_base_model(w->data, "../x", out, sizeof(out), &d), DMN_E_NAME);
    assert_int_equal(jobs_base_model(w->data, "00000000000000000000000000000000000000000000000000000000000000dd",
                                     out, sizeof(out), &d), 0);
    assert_string_equal(out, "");
    assert_int_not_equal(jobs_verify_adapter(w->data, "00000000000000000000000000000000000000000000000000000000000000dd",
                                             &d), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trust_load),
        cmocka_unit_test(test_trust_load_errors),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_vote_round_trip),
        cmocka_unit_test(test_vote_forgeries),
        cmocka_unit_test(test_vote_threads),
        cmocka_unit_test(test_probe_run),
        cmocka_unit_test(test_gate),
        cmocka_unit_test(test_gate_probe),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_merge_errors),
        cmocka_unit_test(test_merge_job_refuses_input_out),
        cmocka_unit_test(test_base_model),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
