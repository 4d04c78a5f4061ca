/* crypto/vote.h: signed attestations ("votes") on one adapter.
 *
 * A vote says: key `signer` judged adapter `adapter` (SHA-256 hex of its
 * adapter_model.safetensors) for `domain` at time `ts` (unix seconds):
 * accept or reject, with reasons. Three kinds of signed statement are read
 * as votes, so that one quorum counts them all (quorum.h):
 *
 * VOTE_FORM_PLORAD: plorad's own vote (VOTE.json, and the gossip VOTE
 *   message). The signature (sig.h: RSA-PSS salt 32 or Ed25519) covers the
 *   canonical byte string below, never the JSON text, so re-serialising the
 *   JSON (key order, spacing, escapes) cannot break or forge it. Exactly
 *   these bytes, each line ended by one LF (0x0a), no CR, no other spaces:
 *
 *     plorad-vote v1
 *     adapter=<64 lowercase hex>
 *     domain=<domain: "" or [a-z0-9][a-z0-9._-]{0,63}>
 *     verdict=<accept|reject>
 *     ts=<decimal unix seconds, 0..VOTE_TS_MAX, no sign, no leading zero>
 *     signer=<64 lowercase hex key id>
 *     reasons=<decimal count, 0..VOTE_MAX_REASONS>
 *     reason=<text>            (one line per reason, in order)
 *
 *   A reason is 1..VOTE_MAX_REASON_LEN bytes of printable ASCII 0x20..0x7e.
 *   No field can hold an LF, names and order are fixed and the count comes
 *   before the reasons, so one byte string parses into exactly one vote.
 *
 *   VOTE.json (an object, exactly these members, any order, no others):
 *     {"type": "plorad-vote", "v": 1, "adapter": hex, "domain": str,
 *      "verdict": "accept"|"reject", "reasons": [str...], "ts": int,
 *      "signer": hex, "algo": "RSA-PSS-SHA256"|"ED25519", "sig_b64": b64}
 *   `algo` must match the signer key's type when verified.
 *
 * VOTE_FORM_PROTO_*: the prototype's signatures over an adapter digest
 *   ("PLORA|ADAPTER|v1|" + hex = tagged, or the bare hex), e.g. its
 *   attestations.jsonl lines {"signer_id", "domain", "sha256",
 *   "signature_b64", "ts_unix"} or the signature in a manifest's signer
 *   block. They always mean ACCEPT; their signer is not named in a usable
 *   way (signer_id is a bare integer), so it is found by verifying against
 *   the keyring's keys (vote_identify). Only the digest is signed: ts_unix
 *   and domain are NOT authenticated in this form.
 *
 * VOTE_FORM_PUBLISHER: a plorad manifest signature (plorad.signatures in
 *   plora.yml) over sig.h's canonical adapter message; it means ACCEPT by
 *   the publisher's key and carries no timestamp.
 *
 * A `struct vote` is a plain record owned by the caller of the function that
 * made it (vote_free releases it and everything it points to).
 */
#ifndef PLORA_VOTE_H
#define PLORA_VOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto_err.h"

struct key;
struct keyring;
struct sig_adapter;

#define VOTE_MAX_BYTES      (64u << 10)  /* bytes of one VOTE.json / attestation line */
#define VOTE_MAX_REASONS    32
#define VOTE_MAX_REASON_LEN 256          /* bytes per reason */
#define VOTE_MAX_ATTEST_LINES 4096       /* lines read from one attestations.jsonl */
#define VOTE_TS_MAX         253402300799LL /* 9999-12-31T23:59:59Z */
#define VOTE_TS_NONE        INT64_MIN    /* the form carries no timestamp */
#define VOTE_TYPE           "plorad-vote"
#define VOTE_VERSION        1

enum vote_verdict {
    VOTE_ACCEPT = 1,
    VOTE_REJECT = 2,
};

enum vote_form {
    VOTE_FORM_PLORAD = 1,       /* signature over vote_canonical() (strict sig_verify) */
    VOTE_FORM_PROTO_TAGGED = 2, /* prototype, tagged message only */
    VOTE_FORM_PROTO_BARE = 3,   /* prototype, bare hex only */
    VOTE_FORM_PROTO_ANY = 4,    /* prototype, tagged or bare (its attestations) */
    VOTE_FORM_PUBLISHER = 5,    /* plorad manifest signature (sig_verify_adapter) */
};

struct vote {
    enum vote_form form;
    char adapter[65];           /* SHA-256 hex of the adapter file */
    char *domain;               /* never NULL; "" when unknown */
    enum vote_verdict verdict;
    char **reasons;             /* n_reasons strings (PLORAD form only) */
    size_t n_reasons;
    int64_t ts;                 /* unix s, or VOTE_TS_NONE */
    char signer[65];            /* key id hex; "" until vote_identify for PROTO forms */
    char algo[16];              /* "RSA-PSS-SHA256" or "ED25519"; "" when unknown */
    uint8_t *sig;               /* raw signature bytes */
    size_t sig_len;
    long long proto_signer_id;  /* attestation's signer_id (informative), else -1 */
    char config_sha256[65];     /* PUBLISHER form: bound by the adapter message */
    char *base_model;           /* PUBLISHER form: bound too; NULL otherwise */
};

const char *vote_verdict_name(enum vote_verdict v);  /* "accept", "reject", "?" */
const char *vote_form_name(enum vote_form f);  /* "plorad", "prototype-tagged", ... */

/* New unsigned PLORAD vote. adapter must be 64 lowercase hex, domain "" or
 * sig_domain_valid, ts in 0..VOTE_TS_MAX. Returns 0, CRYPTO_E_VOTE_VALUE (d
 * names the field) or CRYPTO_E_NOMEM; *out is the caller's on success. */
int vote_new(struct vote **out, const char *adapter, const char *domain,
             enum vote_verdict verdict, int64_t ts, struct crypto_diag *d);

/* Append a reason (copied). Returns 0, CRYPTO_E_VOTE_VALUE (empty, too long
 * or not printable ASCII), CRYPTO_E_VOTE_LIMIT (VOTE_MAX_REASONS reached)
 * or CRYPTO_E_NOMEM. */
int vote_add_reason(struct vote *v, const char *reason, struct crypto_diag *d);

/* The canonical bytes of a PLORAD vote (file comment), including `signer`.
 * *out is malloc'd (NUL-terminated; *n excludes the NUL; the caller frees).
 * Returns 0, CRYPTO_E_VOTE_FORM (not PLORAD), CRYPTO_E_VOTE_VALUE or
 * CRYPTO_E_NOMEM. */
int vote_canonical(const struct vote *v, char **out, size_t *n, struct crypto_diag *d);

/* Sign a PLORAD vote with private key `k`: sets signer (k's id), algo and
 * sig (replacing any earlier one). Returns 0, CRYPTO_E_VOTE_FORM, any code
 * of vote_canonical or sig_sign. */
int vote_sign(struct vote *v, const struct key *k, struct crypto_diag *d);

/* Check v's signature with `pub` (the key must be v->signer's for PLORAD and
 * PUBLISHER votes). For PROTO_ANY, *matched (may be NULL) tells which message
 * form verified (VOTE_FORM_PROTO_TAGGED or _BARE), else v->form. Returns 0
 * (valid), CRYPTO_E_VOTE_SIG (invalid, other key, algo/key type mismatch),
 * CRYPTO_E_VOTE_VALUE or CRYPTO_E_INTERNAL. */
int vote_verify(const struct vote *v, const struct key *pub, enum vote_form *matched,
                struct crypto_diag *d) __attribute__((warn_unused_result));

/* For PROTO votes: find the keyring key (revoked ones included: the quorum
 * decides what revocation means) whose signature it is, and set v->signer and
 * v->algo. Keys are tried in key-id order; only keys whose signature length
 * matches are tried. Returns 0, CRYPTO_E_VOTE_SIG (no key verifies it) or
 * CRYPTO_E_VOTE_FORM (not a PROTO vote). For other forms returns 0 if the
 * named signer is in the keyring and verifies, else CRYPTO_E_KEY_UNKNOWN /
 * CRYPTO_E_VOTE_SIG. */
int vote_identify(struct vote *v, const struct keyring *kr, struct crypto_diag *d)
    __attribute__((warn_unused_result));

/* VOTE.json text (members in the order of the file comment, 2-space indent,
 * ending in LF) of a signed PLORAD vote. *out malloc'd, NUL-terminated.
 * Returns 0, CRYPTO_E_VOTE_FORM (not PLORAD or unsigned) or CRYPTO_E_NOMEM. */
int vote_encode_json(const struct vote *v, char **out, size_t *n, struct crypto_diag *d);

/* Parse untrusted VOTE.json bytes (at most VOTE_MAX_BYTES). Every member is
 * type-checked; unknown members are refused (they would be unsigned data).
 * The signature is NOT checked here (vote_verify / quorum). On success *out
 * is the caller's; on failure NULL and d names the member and the value.
 * Returns 0, CRYPTO_E_VOTE_LIMIT, CRYPTO_E_VOTE_JSON (d->line, d->offset),
 * CRYPTO_E_VOTE_FIELD, CRYPTO_E_VOTE_VALUE or CRYPTO_E_NOMEM. */
int vote_parse_json(const void *buf, size_t n, struct vote **out, struct crypto_diag *d)
    __attribute__((warn_unused_result));

/* Parse one prototype attestation line (a JSON object; members signer_id
 * int >= 0, domain str, sha256 64 lowercase hex, signature_b64 str, ts_unix
 * int; unknown members ignored, as they are not signed anyway) into a
 * PROTO_ANY ACCEPT vote. Codes as vote_parse_json. */
int vote_parse_attestation(const void *line, size_t n, struct vote **out,
                           struct crypto_diag *d) __attribute__((warn_unused_result));

/* Parse a whole attestations.jsonl buffer (LF-separated lines; empty lines
 * skipped; at most VOTE_MAX_ATTEST_LINES). *out is a malloc'd array of
 * *count votes (free with vote_free_array); d->line is the bad line's
 * 1-based number on failure. Codes as vote_parse_attestation. */
int vote_parse_attestations(const void *buf, size_t n, struct vote ***out, size_t *count,
                            struct crypto_diag *d) __attribute__((warn_unused_result));

/* A prototype signature over `adapter` read from elsewhere (a manifest's
 * signer.signature_b64, an aggregate list): ACCEPT, no timestamp. form is one
 * of the PROTO forms. sig is copied. Returns 0, CRYPTO_E_VOTE_VALUE or
 * CRYPTO_E_NOMEM. */
int vote_proto_new(struct vote **out, enum vote_form form, const char *adapter,
                   const uint8_t *sig, size_t sig_len, struct crypto_diag *d);

/* Sign the prototype's message for `adapter` the way its own signer does, so
 * that the prototype's verifier accepts it under every cryptography version
 * it was run with: form VOTE_FORM_PROTO_TAGGED ("PLORA|ADAPTER|v1|" + hex) or
 * VOTE_FORM_PROTO_BARE (hex only); RSA keys: RSASSA-PSS, SHA-256, MGF1-SHA256,
 * salt = maximum (emLen - 34: 350 bytes for RSA-3072; cryptography 38.0.4
 * accepts only that); Ed25519: plain. *sig malloc'd (the caller frees).
 * Returns 0, CRYPTO_E_VOTE_FORM (other form), CRYPTO_E_KEY_NOT_PRIVATE,
 * CRYPTO_E_VOTE_VALUE (bad adapter id), CRYPTO_E_NOMEM or CRYPTO_E_INTERNAL. */
int vote_proto_sign(const struct key *k, enum vote_form form, const char *adapter,
                    uint8_t **sig, size_t *len, struct crypto_diag *d);

/* A plorad manifest signature as a PUBLISHER vote (ACCEPT, no timestamp):
 * `a` is the adapter message's fields (sig.h), key_id the signer, sig copied.
 * Returns 0, CRYPTO_E_VOTE_VALUE (a field fails sig.h's rules, bad key id)
 * or CRYPTO_E_NOMEM. */
int vote_publisher_new(struct vote **out, const struct sig_adapter *a, const char *key_id,
                       const uint8_t *sig, size_t sig_len, struct crypto_diag *d);

/* Free a vote; NULL is fine. vote_free_array frees n votes and the array. */
void vote_free(struct vote *v);
void vote_free_array(struct vote **v, size_t n);

#endif
