/* daemon/jobs.c: the heavy steps of plorad's pipeline, run in libuv's
 * worker threads (see jobs.h).
 *
 * Thread use: every function reads the trust object and never writes it (the
 * refcount is the loop thread's); OpenSSL keys are used read-only, which
 * OpenSSL 3 allows from several threads at once. No static buffers.
 *
 * Vote body on the wire: crypto/ has no parser of vote.h's canonical byte
 * string, so the body is the vote's VOTE.json (vote_encode_json) re-dumped
 * compact, parsed back with vote_parse_json; the signature it carries
 * (sig_b64) covers the canonical bytes and must equal the message's sig.
 */
#include "jobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "gate.h"
#include "key.h"
#include "keyring.h"
#include "merge_job.h"
#include "policy.h"
#include "proto_err.h"
#include "probe.h"
#include "sha256.h"
#include "sig.h"
#include "store.h"
#include "vote.h"

/* The built-in policy (jobs.h): finite values, robust norm outliers at
 * POLICY_DEFAULT_Z, and one trusted signature over the adapter. */
static const char default_policy[] =
    "check_finite: true\n"
    "norm_z_threshold: 6.0\n"
    "signatures_required: true\n"
    "quorum: 1\n";

#define MERGED_DIR "merged"
#define META_NAME "meta.json"

/* ---- trust ------------------------------------------------------------- */

/* The policy file of c, or NULL for the built-in one (unset or ""). */
static const char *policy_file(const struct config *c)
{
    return c->policy != NULL && c->policy[0] != '\0' ? c->policy : NULL;
}

static int load_policy(struct jobs_trust *t, const struct config *c, struct dmn_diag *d)
{
    struct fusion_diag fd = { 0 };
    const char *file = policy_file(c);
    int rc = file != NULL ? policy_load(&t->policy, file, &fd)
                          : policy_parse(&t->policy, default_policy, sizeof(default_policy) - 1, NULL, &fd);

    if (rc == FUSION_E_NOMEM)
        return dmn_fail(d, DMN_E_NOMEM, "policy %s: out of memory", file ? file : "(built-in)");
    if (rc != 0 && fd.line > 0)
        return dmn_fail(d, DMN_E_POLICY, "policy %s: line %zu: %s", file ? file : "(built-in)", fd.line,
                        fd.msg);
    if (rc != 0)
        return dmn_fail(d, DMN_E_POLICY, "policy %s: %s", file ? file : "(built-in)", fd.msg);
    return 0;
}

/* Copy every key of `from` into `to`, with its revocation. */
static int union_keys(struct keyring *to, const struct keyring *from, struct crypto_diag *cd)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < keyring_count(from); i++) {
        const struct key *k = keyring_at(from, i);
        rc = keyring_add(to, k, keyring_source_at(from, i), NULL, cd);
        if (rc == 0 && keyring_is_revoked(from, key_id(k)))
            rc = keyring_revoke(to, key_id(k), cd);
    }
    return rc;
}

/* A key revoked in the node's keyring stays revoked for the gate. */
static int carry_revocations(struct keyring *to, const struct keyring *node, struct crypto_diag *cd)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < keyring_count(to); i++) {
        const char *id = key_id(keyring_at(to, i));
        if (keyring_is_revoked(node, id))
            rc = keyring_revoke(to, id, cd);
    }
    return rc;
}

static int add_policy_keys(struct keyring *to, const struct policy *p, struct crypto_diag *cd,
                           const char **what)
{
    struct keyring *pk = NULL;
    int rc = 0;

    if (p->keyring_dir != NULL) {
        *what = p->keyring_dir;
        if ((rc = keyring_load(&pk, p->keyring_dir, cd)) == 0)
            rc = union_keys(to, pk, cd);
        keyring_free(pk);
    }
    for (size_t i = 0; rc == 0 && i < p->n_trusted_keys; i++) {
        struct key *k = NULL;
        *what = p->trusted_keys[i];
        if ((rc = key_load_public_pem(&k, p->trusted_keys[i], cd)) == 0)
            rc = keyring_add(to, k, p->trusted_keys[i], NULL, cd);
        key_free(k);
    }
    return rc;
}

/* The gate's keyring when the policy names keys of its own: the union of
 * the node's keyring and the policy's, revocations of both kept. */
static int build_gate_keyring(struct jobs_trust *t, const struct config *c, struct dmn_diag *d)
{
    struct crypto_diag cd = { 0 };
    const char *what = "keyring";
    int rc;

    if (t->policy->keyring_dir == NULL && t->policy->n_trusted_keys == 0)
        return 0;
    if ((rc = keyring_new(&t->gate_keyring)) != 0)
        return dmn_fail(d, DMN_E_NOMEM, "gate keyring: out of memory");
    if ((rc = union_keys(t->gate_keyring, t->keyring, &cd)) == 0 &&
        (rc = add_policy_keys(t->gate_keyring, t->policy, &cd, &what)) == 0)
        rc = carry_revocations(t->gate_keyring, t->keyring, &cd);
    if (rc == CRYPTO_E_NOMEM)
        return dmn_fail(d, DMN_E_NOMEM, "gate keyring: out of memory");
    if (rc != 0)
        return dmn_fail(d, DMN_E_POLICY, "policy %s: %s: %s", policy_file(c) ? policy_file(c) : "(built-in)",
                        what, cd.msg);
    return 0;
}

static void trust_free(struct jobs_trust *t)
{
    if (t == NULL)
        return;
    key_free(t->key);
    keyring_free(t->keyring);
    keyring_free(t->gate_keyring);
    policy_free(t->policy);
    free(t);
}

int jobs_trust_load(struct jobs_trust **out, const struct config *c, struct dmn_diag *d)
{
    struct crypto_diag cd = { 0 };
    struct jobs_trust *t = calloc(1, sizeof(*t));
    int rc = 0;

    *out = NULL;
    if (t == NULL)
        return dmn_fail(d, DMN_E_NOMEM, "trust: out of memory");
    if (c->key == NULL || key_load_private_pem(&t->key, c->key, &cd) != 0)
        rc = dmn_fail(d, cd.code == CRYPTO_E_NOMEM ? DMN_E_NOMEM : DMN_E_KEY, "key %s: %s",
                      c->key ? c->key : "(none)", c->key ? cd.msg : "node.key is required");
    else if (c->keyring == NULL || keyring_load(&t->keyring, c->keyring, &cd) != 0)
        rc = dmn_fail(d, cd.code == CRYPTO_E_NOMEM ? DMN_E_NOMEM : DMN_E_KEY, "keyring %s: %s",
                      c->keyring ? c->keyring : "(none)", c->keyring ? cd.msg : "node.keyring is required");
    else if ((rc = load_policy(t, c, d)) == 0)
        rc = build_gate_keyring(t, c, d);
    if (rc != 0) {
        trust_free(t);
        return rc;
    }
    memcpy(t->key_id, key_id(t->key), sizeof(t->key_id));
    t->refs = 1;
    *out = t;
    return 0;
}

struct jobs_trust *jobs_trust_ref(struct jobs_trust *t)
{
    if (t != NULL)
        t->refs++;
    return t;
}

void jobs_trust_unref(struct jobs_trust *t)
{
    if (t != NULL && --t->refs == 0)
        trust_free(t);
}

/* ---- handshake --------------------------------------------------------- */

int jobs_sign_auth(const struct jobs_trust *t, const uint8_t *auth, size_t n, uint8_t **sig,
                   size_t *sig_len, struct dmn_diag *d)
{
    struct crypto_diag cd = { 0 };
    int rc = sig_sign(t->key, auth, n, sig, sig_len, &cd);

    if (rc == CRYPTO_E_NOMEM)
        return dmn_fail(d, DMN_E_NOMEM, "auth signature: out of memory");
    if (rc != 0)
        return dmn_fail(d, DMN_E_KEY, "auth signature with key %s: %s", t->key_id, cd.msg);
    return 0;
}

/* The peer's key is found by its id in the keyring: hashing the presented
 * SPKI and comparing with the id binds the two without parsing untrusted
 * DER, and the keyring's key (same id = same SPKI bytes) verifies. */
int jobs_verify_auth(const struct jobs_trust *t, const uint8_t peer_id[32], const uint8_t *pk,
                     size_t pk_len, const uint8_t *auth, size_t n, const uint8_t *sig,
                     size_t sig_len, struct dmn_diag *d)
{
    struct crypto_diag cd = { 0 };
    uint8_t dg[SHA256_LEN];
    char id[SHA256_HEX_LEN + 1], got[SHA256_HEX_LEN + 1];
    const struct key *k = NULL;
    int rc;

    sha256_hex(peer_id, id);
    if (pk == NULL || pk_len == 0 || pk_len > KEY_DER_MAX || sha256(pk, pk_len, dg) != 0)
        return dmn_fail(d, DMN_E_PEER, "peer %.16s: public key of %zu bytes (want 1..%u)", id, pk_len,
                        KEY_DER_MAX);
    if (memcmp(dg, peer_id, SHA256_LEN) != 0) {
        sha256_hex(dg, got);
        return dmn_fail(d, DMN_E_PEER, "peer %.16s: its public key hashes to %.16s, not to its id", id, got);
    }
    if (keyring_lookup(t->keyring, id, &k, &cd) != 0)
        return dmn_fail(d, DMN_E_PEER, "peer %.16s: key %s", id,
                        keyring_is_revoked(t->keyring, id) ? "is revoked" : "is not in the keyring");
    rc = sig_verify(k, auth, n, sig, sig_len, &cd);
    if (rc == CRYPTO_E_NOMEM)
        return dmn_fail(d, DMN_E_NOMEM, "peer %.16s: out of memory", id);
    if (rc != 0)
        return dmn_fail(d, DMN_E_PEER, "peer %.16s: auth signature does not verify (%s)", id, cd.msg);
    return 0;
}

/* ---- adapters ---------------------------------------------------------- */

int jobs_verify_adapter(const char *data_dir, const char *id, struct dmn_diag *d)
{
    return store_verify(data_dir, id, d);
}

/* DATA/adapters/<id> into buf. Returns 0 or DMN_E_NAME / DMN_E_ARG. */
static int adapter_path(const char *data_dir, const char *id, const char *file, char *buf, size_t cap,
                        struct dmn_diag *d)
{
    int w;

    if (id == NULL || !store_id_ok(id))
        return dmn_fail(d, DMN_E_NAME, "adapter id \"%.80s\": not 64 lowercase hex", id ? id : "(null)");
    w = file ? snprintf(buf, cap, "%s/adapters/%s/%s", data_dir, id, file)
             : snprintf(buf, cap, "%s/adapters/%s", data_dir, id);
    if (w < 0 || (size_t)w >= cap)
        return dmn_fail(d, DMN_E_ARG, "%s/adapters/%s: path too long", data_dir, id);
    return 0;
}

/* meta.json's domain ("" when the file or member is absent or invalid: the
 * gate's verdict does not depend on it). */
static void read_domain(const char *data_dir, const char *id, char out[65])
{
    char path[4096];
    json_t *o = NULL;
    const char *s;

    out[0] = '\0';
    if (adapter_path(data_dir, id, META_NAME, path, sizeof(path), NULL) != 0 ||
        (o = json_load_file(path, 0, NULL)) == NULL)
        return;
    s = json_string_value(json_object_get(o, "domain"));
    if (s != NULL && store_name_ok(s))
        snprintf(out, 65, "%s", s);
    json_decref(o);
}

static void add_reason(struct jobs_gate_result *r, enum gate_reason_id id, const char *detail)
{
    size_t cap = sizeof(r->reason_ids) / sizeof(r->reason_ids[0]);

    if (r->n_reasons == cap)
        return;
    r->reason_ids[r->n_reasons] = (int)id;
    snprintf(r->reasons[r->n_reasons], sizeof(r->reasons[0]), "%s: %.256s", gate_reason_name(id), detail);
    r->n_reasons++;
}

int jobs_gate(const struct jobs_trust *t, const char *data_dir, const char *id,
              struct jobs_gate_result *r, struct dmn_diag *d)
{
    const struct keyring *kr = t->gate_keyring ? t->gate_keyring : t->keyring;
    struct gate_env env = { kr, NULL, 0, (int64_t)time(NULL), probe_run, NULL };
    struct gate_verdict *v = NULL;
    struct fusion_diag fd = { 0 };
    struct dmn_diag pd = { 0 };
    char dir[4096];
    int rc;

    memset(r, 0, sizeof(*r));
    if (adapter_path(data_dir, id, NULL, dir, sizeof(dir), &pd) != 0) {
        add_reason(r, GATE_R_ARTIFACT_MISSING, pd.msg);
        return 0;
    }
    read_domain(data_dir, id, r->domain);
    rc = gate_run(t->policy, dir, &env, &v, &fd);
    if (rc == FUSION_E_NOMEM)
        return dmn_fail(d, DMN_E_NOMEM, "gate of %s: out of memory", dir);
    if (rc != 0) {
        add_reason(r, GATE_R_ARTIFACT_MISSING, fd.msg);
        return 0;
    }
    for (size_t i = 0; i < v->n_reasons; i++)
        add_reason(r, v->reasons[i].id, v->reasons[i].detail);
    r->accept = v->accept && r->n_reasons == 0;
    gate_verdict_free(v);
    return 0;
}

/* ---- votes ------------------------------------------------------------- */

void jobs_vote_clear(struct jobs_vote *v)
{
    if (v == NULL)
        return;
    free(v->body);
    free(v->sig);
    vote_free(v->vote);
    memset(v, 0, sizeof(*v));
}

static int crypto_to_dmn(int code, int otherwise)
{
    return code == CRYPTO_E_NOMEM ? DMN_E_NOMEM : otherwise;
}

/* The wire body of a signed vote: its VOTE.json, compact. */
static int vote_body(const struct vote *v, uint8_t **body, size_t *n, struct dmn_diag *d)
{
    struct crypto_diag cd = { 0 };
    char *txt = NULL, *compact = NULL;
    size_t len = 0;
    json_t *o = NULL;
    int rc;

    if ((rc = vote_encode_json(v, &txt, &len, &cd)) != 0)
        return dmn_fail(d, crypto_to_dmn(rc, DMN_E_KEY), "vote on %s: %s", v->adapter, cd.msg);
    if ((o = json_loadb(txt, len, 0, NULL)) != NULL)
        compact = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    free(txt);
    if (compact == NULL)
        return dmn_fail(d, DMN_E_NOMEM, "vote on %s: out of memory", v->adapter);
    *body = (uint8_t *)compact;
    *n = strlen(compact);
    return 0;
}

/* Copy of the signature into out->sig. */
static int copy_sig(const struct vote *v, struct jobs_vote *out, struct dmn_diag *d)
{
    if ((out->sig = malloc(v->sig_len)) == NULL)
        return dmn_fail(d, DMN_E_NOMEM, "vote on %s: out of memory", v->adapter);
    memcpy(out->sig, v->sig, v->sig_len);
    out->sig_len = v->sig_len;
    return 0;
}

static int build_vote(const struct jobs_trust *t, const char *id, const char *domain, bool accept,
                      const struct jobs_gate_result *gate, struct vote **out, struct dmn_diag *d)
{
    struct crypto_diag cd = { 0 };
    int rc = vote_new(out, id, domain ? domain : "", accept ? VOTE_ACCEPT : VOTE_REJECT,
                      (int64_t)time(NULL), &cd);

    for (size_t i = 0; rc == 0 && gate != NULL && i < gate->n_reasons; i++)
        rc = vote_add_reason(*out, gate_reason_name((enum gate_reason_id)gate->reason_ids[i]), &cd);
    if (rc == 0)
        rc = vote_sign(*out, t->key, &cd);
    if (rc != 0)
        return dmn_fail(d, crypto_to_dmn(rc, DMN_E_KEY), "vote on %.64s: %s", id ? id : "(null)", cd.msg);
    return 0;
}

int jobs_sign_vote(const struct jobs_trust *t, const char *id, const char *domain, bool accept,
                   const struct jobs_gate_result *gate, struct jobs_vote *out,
                   struct dmn_diag *d)
{
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = build_vote(t, id, domain, accept, gate, &out->vote, d)) == 0 &&
        (rc = vote_body(out->vote, &out->body, &out->body_len, d)) == 0)
        rc = copy_sig(out->vote, out, d);
    if (rc != 0) {
        jobs_vote_clear(out);
        return rc;
    }
    out->accept = accept;
    memcpy(out->signer, t->key_id, sizeof(out->signer));
    return 0;
}

/* The checks of jobs_verify_vote on a parsed vote. */
static int check_vote(const struct jobs_trust *t, const char *id, const char *by,
                      const struct vote *v, const uint8_t *sig, size_t sig_len, int *fault,
                      struct dmn_diag *d)
{
    struct crypto_diag cd = { 0 };
    const struct key *k = NULL;
    int rc;

    *fault = PROTO_E_FIELD_VALUE;   /* until the key lookup: the frame and its body disagree */
    if (strcmp(v->adapter, id) != 0)
        return dmn_fail(d, DMN_E_PEER, "vote from %.16s: about adapter %.16s, not %.16s", by, v->adapter, id);
    if (strcmp(v->signer, by) != 0)
        return dmn_fail(d, DMN_E_PEER, "vote from %.16s: signed by %.16s", by, v->signer);
    if (sig_len != v->sig_len || sig == NULL || memcmp(sig, v->sig, sig_len) != 0)
        return dmn_fail(d, DMN_E_PEER, "vote from %.16s: signature differs from the body's sig_b64", by);
    *fault = 0;   /* keyrings differ between nodes: no fault of the sender */
    if (keyring_lookup(t->keyring, by, &k, &cd) != 0)
        return dmn_fail(d, DMN_E_PEER, "vote from %.16s: signer %s", by,
                        keyring_is_revoked(t->keyring, by) ? "is revoked" : "is not in the keyring");
    if ((rc = vote_verify(v, k, NULL, &cd)) != 0 && rc == CRYPTO_E_VOTE_SIG)
        *fault = PROTO_E_AUTH;   /* a key we trust did not sign this: forged or corrupted */
    if (rc != 0)
        return dmn_fail(d, crypto_to_dmn(rc, DMN_E_PEER), "vote from %.16s: signature does not verify (%s)",
                        by, cd.msg);
    return 0;
}

int jobs_verify_vote(const struct jobs_trust *t, const char *id, const char *by,
                     const uint8_t *body, size_t body_len, const uint8_t *sig,
                     size_t sig_len, struct jobs_vote *out, struct dmn_diag *d)
{
    struct crypto_diag cd = { 0 };
    struct vote *v = NULL;
    int rc = 0, fault = 0;

    memset(out, 0, sizeof(*out));
    if (id == NULL || by == NULL || !store_id_ok(id) || !store_id_ok(by))
        return dmn_fail(d, DMN_E_PEER, "vote: adapter or signer id is not 64 lowercase hex");
    if (body == NULL || body_len == 0 || (rc = vote_parse_json(body, body_len, &v, &cd)) != 0)
        return dmn_fail(d, crypto_to_dmn(body ? rc : 0, DMN_E_PEER), "vote from %.16s: body: %s", by,
                        body ? cd.msg : "empty");
    if ((rc = check_vote(t, id, by, v, sig, sig_len, &fault, d)) != 0 ||
        (rc = copy_sig(v, out, d)) != 0 || (out->body = malloc(body_len)) == NULL) {
        vote_free(v);
        jobs_vote_clear(out);
        out->fault = rc == DMN_E_PEER ? fault : 0;
        return rc != 0 ? rc : dmn_fail(d, DMN_E_NOMEM, "vote from %.16s: out of memory", by);
    }
    memcpy(out->body, body, body_len);
    out->body_len = body_len;
    out->accept = v->verdict == VOTE_ACCEPT;
    memcpy(out->signer, v->signer, sizeof(out->signer));
    out->vote = v;
    return 0;
}

/* ---- merge ------------------------------------------------------------- */

void jobs_merge_result_clear(struct jobs_merge_result *r)
{
    if (r == NULL)
        return;
    free(r->inputs);
    free(r->weights);
    memset(r, 0, sizeof(*r));
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* ids checked, sorted and deduplicated into r->inputs: the same set of
 * adapters gives the same bytes on every node, whatever order they were
 * committed in. */
static int merge_inputs(const char *const *ids, size_t n, struct jobs_merge_result *r,
                        struct dmn_diag *d)
{
    size_t k = 0;

    if (n == 0 || n > MERGE_JOB_MAX_INPUTS)
        return dmn_fail(d, DMN_E_ARG, "merge: %zu inputs (want 1..%u)", n, MERGE_JOB_MAX_INPUTS);
    if ((r->inputs = calloc(n, sizeof(*r->inputs))) == NULL)
        return dmn_fail(d, DMN_E_NOMEM, "merge: out of memory");
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == NULL || !store_id_ok(ids[i]))
            return dmn_fail(d, DMN_E_ARG, "merge input %zu \"%.80s\": not 64 lowercase hex", i,
                            ids[i] ? ids[i] : "(null)");
        memcpy(r->inputs[i], ids[i], 65);
    }
    qsort(r->inputs, n, sizeof(*r->inputs), cmp_id);
    for (size_t i = 0; i < n; i++)
        if (k == 0 || strcmp(r->inputs[k - 1], r->inputs[i]) != 0)
            memmove(r->inputs[k++], r->inputs[i], 65);
    r->n_inputs = k;
    return 0;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* Remove a temp output dir and the plain files in it (all it can hold). */
static void remove_tmp(const char *dir)
{
    DIR *dp = opendir(dir);
    struct dirent *e;
    char path[4200];

    while (dp != NULL && (e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (dp != NULL)
        closedir(dp);
    rmdir(dir);
}

/* DATA/merged/ exists (0700) and a fresh DATA/merged/.tmp-XXXXXX is made. */
static int make_tmp(const char *data_dir, char merged[4096], char tmp[4096], struct dmn_diag *d)
{
    int w = snprintf(merged, 4096, "%s/%s", data_dir, MERGED_DIR);

    if (w < 0 || w >= 4096 - 16)
        return dmn_fail(d, DMN_E_ARG, "%s: path too long", data_dir);
    if (mkdir(merged, 0700) != 0 && errno != EEXIST)
        return dmn_fail(d, DMN_E_IO, "%s: mkdir: %s", merged,
                        strerror(errno));
    w = snprintf(tmp, 4096, "%s/.tmp-XXXXXX", merged);
    if (w < 0 || w >= 4096 || mkdtemp(tmp) == NULL)
        return dmn_fail(d, DMN_E_IO, "%s: mkdtemp: %s", tmp,
                        strerror(errno));
    return 0;
}

/* Move tmp to merged/<output>; an existing output (same bytes by
 * construction: its name is their hash) is kept and tmp dropped. */
static int publish(const char *merged, const char *tmp, struct jobs_merge_result *r,
                   struct dmn_diag *d)
{
    struct crypto_diag cd = { 0 };
    uint8_t dg[SHA256_LEN];
    char cert[4200];
    int w = snprintf(r->dir, sizeof(r->dir), "%s/%s", merged, r->output);

    if (w < 0 || (size_t)w >= sizeof(r->dir))
        return dmn_fail(d, DMN_E_ARG, "%s: path too long", merged);
    if (fsync_path(tmp) != 0)
        return dmn_fail(d, DMN_E_IO, "%s: fsync: %s", tmp, strerror(errno));
    if (rename(tmp, r->dir) == 0)
        return fsync_path(merged) == 0 ? 0 : dmn_fail(d, DMN_E_IO, "%s: fsync: %s", merged, strerror(errno));
    if (errno != EEXIST && errno != ENOTEMPTY)
        return dmn_fail(d, DMN_E_IO, "rename %s -> %s: %s", tmp, r->dir, strerror(errno));
    remove_tmp(tmp);
    snprintf(cert, sizeof(cert), "%s/%s", r->dir, "certificate.json");
    if (sha256_file(cert, dg, NULL, &cd) != 0)
        return dmn_fail(d, DMN_E_IO, "%s: %s", cert, cd.msg);
    sha256_hex(dg, r->certificate);
    return 0;
}

static void fill_result(const struct merge_job_result *m, struct jobs_merge_result *r)
{
    const struct merge_summary *s = &m->summary;

    memcpy(r->output, m->output_sha256, sizeof(r->output));
    memcpy(r->certificate, m->certificate_sha256, sizeof(r->certificate));
    for (size_t k = 0; k < r->n_inputs; k++)
        r->weights[k] = m->weights_given[k] * s->kld_scale;
    r->rank = (unsigned)s->rank_out;
    r->tau = s->tau;
    r->frob_merged = s->frob_merged;
    r->frob_out = s->frob_out;
    r->dropped_energy = s->dropped_energy;
    r->kld_bound = s->kld_local;
}

/* The merge proper, into tmp, once the inputs are known. */
static int merge_into(const char *data_dir, const char *merged, const char *tmp,
                      const struct jobs_merge_opts *o, struct jobs_merge_result *r, struct dmn_diag *d)
{
    char (*dirs)[4096] = calloc(r->n_inputs, sizeof(*dirs));
    const char **dp = calloc(r->n_inputs, sizeof(*dp));
    struct merge_job_spec spec = { .n = r->n_inputs, .fisher = o->fisher, .out_dir = tmp,
                                   .cert_out_parent = merged };
    struct merge_job_result m;
    int rc = 0;

    spec.opts = (struct merge_opts){ .tau = o->tau > 0 ? o->tau : 0.0,
                                     .tau_rel = o->tau > 0 ? 0.0 : o->tau_rel,
                                     .rank = o->rank, .kld_budget = o->kld_budget };
    r->weights = calloc(r->n_inputs, sizeof(double));
    if (dirs == NULL || dp == NULL || r->weights == NULL)
        rc = dmn_fail(d, DMN_E_NOMEM, "merge: out of memory");
    for (size_t k = 0; rc == 0 && k < r->n_inputs; k++) {
        rc = adapter_path(data_dir, r->inputs[k], NULL, dirs[k], sizeof(dirs[k]), d);
        dp[k] = dirs[k];
    }
    spec.dirs = dp;
    if (rc == 0 && (rc = merge_job_run(&spec, &m, d)) == 0) {
        fill_result(&m, r);
        merge_job_result_clear(&m);
    }
    free(dirs);
    free(dp);
    return rc;
}

int jobs_merge(const char *data_dir, const char *const *ids, size_t n,
               const struct jobs_merge_opts *o, struct jobs_merge_result *r,
               struct dmn_diag *d)
{
    char merged[4096], tmp[4096] = "";
    int rc;

    memset(r, 0, sizeof(*r));
    if ((rc = merge_inputs(ids, n, r, d)) == 0 && (rc = make_tmp(data_dir, merged, tmp, d)) == 0 &&
        (rc = merge_into(data_dir, merged, tmp, o, r, d)) == 0)
        rc = publish(merged, tmp, r, d);
    if (rc != 0) {
        if (tmp[0] != '\0')
            remove_tmp(tmp);
        jobs_merge_result_clear(r);
    }
    return rc;
}

int jobs_base_model(const char *data_dir, const char *id, char *out, size_t cap,
                    struct dmn_diag *d)
{
    char path[4096];
    json_error_t je;
    json_t *o;
    const char *s;
    int rc;

    if (cap == 0)
        return dmn_fail(d, DMN_E_ARG, "base model: no room");
    out[0] = '\0';
    if ((rc = adapter_path(data_dir, id, "adapter_config.json", path, sizeof(path), d)) != 0)
        return rc;
    if (access(path, F_OK) != 0)
        return 0;
    if ((o = json_load_file(path, 0, &je)) == NULL)
        return dmn_fail(d, DMN_E_IO, "%s: line %d: %s", path, je.line, je.text);
    s = json_string_value(json_object_get(o, "base_model_name_or_path"));
    if (s != NULL && strlen(s) >= cap)
        rc = dmn_fail(d, DMN_E_ARG, "%s: base_model_name_or_path of %zu bytes (room for %zu)", path,
                      strlen(s), cap - 1);
    else if (s != NULL)
        memcpy(out, s, strlen(s) + 1);
    json_decref(o);
    return rc;
}
