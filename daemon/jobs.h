/* daemon/jobs.h: the heavy steps of plorad's pipeline, run off the loop.
 *
 * Each function is synchronous and self-contained: the transport runs it in
 * libuv's thread pool (uv_queue_work) and hands the result back to the loop
 * (then to the engine as an event). None touches loop state, the engine, the
 * audit writer or struct metrics. The trust object they read is immutable
 * and reference-counted, so SIGHUP can swap in a new one while old jobs run.
 *
 *   received adapter -> jobs_verify_adapter -> jobs_gate -> jobs_sign_vote
 *   peer votes -> jobs_verify_vote -> (engine: quorum) -> jobs_merge
 */
#ifndef PLORA_JOBS_H
#define PLORA_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmn_err.h"

struct key;
struct keyring;
struct policy;
struct config;

/* What a node trusts and how it judges: node key, keyring, gate policy.
 * Immutable after jobs_trust_load; freed when the last reference goes. */
struct jobs_trust {
    struct key *key;            /* the node's private key */
    struct keyring *keyring;    /* trusted public keys (peers, voters, publishers) */
    struct policy *policy;      /* gate policy (built-in default when none configured) */
    struct keyring *gate_keyring; /* keyring + the policy's keyring / trusted_public_keys
                                     (revocations of both kept); NULL: the policy names
                                     none, the gate uses `keyring` */
    char key_id[65];
    int refs;                   /* touched on the loop thread only */
};

/* Load key, keyring and policy named by the config (policy NULL = the
 * built-in default: check_finite, norm_z_threshold 6, signatures_required,
 * quorum 1 against the keyring). Returns 0, DMN_E_KEY (d names the key file
 * or keyring dir and why), DMN_E_POLICY (names the policy file, field),
 * DMN_E_NOMEM. *out has refs = 1. */
int jobs_trust_load(struct jobs_trust **out, const struct config *c, struct dmn_diag *d);
struct jobs_trust *jobs_trust_ref(struct jobs_trust *t);
void jobs_trust_unref(struct jobs_trust *t);  /* NULL is fine */

/* ---- handshake ---- */

/* Sign auth bytes (msg_auth_input) with the node key: RSA-PSS salt 32 or
 * Ed25519. *sig malloc'd. Returns 0, DMN_E_KEY, DMN_E_NOMEM. */
int jobs_sign_auth(const struct jobs_trust *t, const uint8_t *auth, size_t n, uint8_t **sig,
                   size_t *sig_len, struct dmn_diag *d);

/* Verify a peer's HELLO_ACK: pk (SPKI DER) must hash to `peer_id`, be in
 * the keyring, trusted and not revoked, and sig must verify over auth.
 * Returns 0 (ok), DMN_E_PEER (d says which check failed), DMN_E_NOMEM. */
int jobs_verify_auth(const struct jobs_trust *t, const uint8_t peer_id[32], const uint8_t *pk,
                     size_t pk_len, const uint8_t *auth, size_t n, const uint8_t *sig,
                     size_t sig_len, struct dmn_diag *d);

/* ---- adapters ---- */

/* store_verify (daemon/store.h) in a worker. Same codes. */
int jobs_verify_adapter(const char *data_dir, const char *id, struct dmn_diag *d);

struct jobs_gate_result {
    bool accept;
    char domain[65];
    size_t n_reasons;
    int reason_ids[17];          /* enum gate_reason_id, in verdict order */
    char reasons[17][300];       /* "<reason_name>: <detail>" */
};

/* Run fusion/'s gate on DATA/adapters/<id> under the trust's policy and
 * keyring (gate_keyring when set), with the external probe runner
 * (daemon/probe.h) when the policy has one. The votes counted are those
 * the adapter's plora.yml carries (its publisher / prototype signatures);
 * no extra votes are passed. r->domain is meta.json's ("" if unreadable).
 * A gate that cannot run at all (I/O, an id that is not hex) is a reject
 * with reason artifact_missing, never an accept. Returns 0 (see r->accept)
 * or DMN_E_NOMEM. */
int jobs_gate(const struct jobs_trust *t, const char *data_dir, const char *id,
              struct jobs_gate_result *r, struct dmn_diag *d);

/* ---- votes ---- */

struct jobs_vote {
    uint8_t *body;               /* the wire body, malloc'd: the vote's VOTE.json
                                    (crypto/vote.h vote_encode_json) re-dumped compact,
                                    one line, members in VOTE.json's order; crypto/ has
                                    no parser of the canonical bytes, so this is what
                                    vote_parse_json reads back. Its sig_b64 is a
                                    signature over vote_canonical(), as in VOTE.json */
    size_t body_len;
    uint8_t *sig;                /* malloc'd */
    size_t sig_len;
    bool accept;
    char signer[65];             /* key id hex */
    struct vote *vote;           /* parsed, for audit_append_vote; owned */
    int fault;                   /* jobs_verify_vote failed: the PROTO_E_* peer fault it
                                    proves (PROTOCOL.md 6, Votes), 0 if none */
};
void jobs_vote_clear(struct jobs_vote *v);  /* frees the members */

/* Sign our vote on adapter `id` (hex) of `domain`: verdict, the gate's
 * reasons (names only), ts = now (unix s). Returns 0, DMN_E_KEY,
 * DMN_E_NOMEM. */
int jobs_sign_vote(const struct jobs_trust *t, const char *id, const char *domain, bool accept,
                   const struct jobs_gate_result *gate, struct jobs_vote *out,
                   struct dmn_diag *d);

/* Check a peer's VOTE: body parses (vote_parse_json) as a plorad vote about
 * `id` signed by `by` (both hex), `sig` equals the body's sig_b64 bytes,
 * by's key is trusted and not revoked, the signature verifies over the
 * canonical bytes. out->accept is the verdict. Returns 0 (valid),
 * DMN_E_PEER (d says which check failed), DMN_E_NOMEM. On DMN_E_PEER,
 * out->fault is PROTO_E_AUTH when a trusted signer's signature does not
 * verify, PROTO_E_FIELD_VALUE when the body names another adapter or
 * signer or carries another signature than the frame: no honest node
 * relays such a vote. It stays 0 for an unparsable body (a later vote
 * format) and for an untrusted or revoked signer (keyrings differ). */
int jobs_verify_vote(const struct jobs_trust *t, const char *id, const char *by,
                     const uint8_t *body, size_t body_len, const uint8_t *sig,
                     size_t sig_len, struct jobs_vote *out, struct dmn_diag *d);

/* ---- merge ---- */

struct jobs_merge_opts {
    double tau_rel, tau, kld_budget;   /* as struct config's merge section */
    unsigned rank;
    bool fisher;                       /* else uniform */
};

struct jobs_merge_result {
    char output[65];             /* sha256 of the merged adapter_model.safetensors */
    char dir[4096];              /* DATA/merged/<output> */
    char certificate[65];        /* sha256 of certificate.json */
    size_t n_inputs;
    char (*inputs)[65];          /* malloc'd, n_inputs ids, as merged */
    double *weights;             /* malloc'd, n_inputs */
    unsigned rank;
    double tau, frob_merged, frob_out, dropped_energy, kld_bound;  /* NaN: none */
};
void jobs_merge_result_clear(struct jobs_merge_result *r);

/* Merge the committed adapters `ids` (hex, all whole in the store and of
 * one base model: the caller groups them) into DATA/merged/<output>/
 * (adapter_model.safetensors, adapter_config.json, certificate.json; written
 * under DATA/merged/.tmp-XXXXXX, fsync'd, renamed). The same flow as `plora
 * merge` (shared code, daemon/merge_job.h). The ids are sorted and
 * deduplicated first (r->inputs), so every node merging the same set gets
 * the same bytes; an output dir that already exists is kept (r->certificate
 * is then its certificate's hash) and the new copy dropped. The
 * certificate names the final dir. r->weights are those used (after the KLD
 * budget). Returns 0, DMN_E_IO (names the file), DMN_E_ARG (bad id, 0 or
 * over MERGE_JOB_MAX_INPUTS ids, inputs incompatible: d says which
 * module/shape, --fisher without plorad.fisher), DMN_E_NOMEM. */
int jobs_merge(const char *data_dir, const char *const *ids, size_t n,
               const struct jobs_merge_opts *o, struct jobs_merge_result *r,
               struct dmn_diag *d);

/* Base model of a stored adapter (its adapter_config.json
 * base_model_name_or_path; "" when the file or member is absent), for
 * grouping merges. Returns 0, DMN_E_NAME (id not hex), DMN_E_IO (config
 * not JSON: d names the file and line), DMN_E_ARG (cap too small). */
int jobs_base_model(const char *data_dir, const char *id, char *out, size_t cap,
                    struct dmn_diag *d);

#endif
