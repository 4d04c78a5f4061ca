/* crypto/keyring.h: the set of trusted public keys, and revocations.
 *
 * On disk a keyring is one directory:
 *   - every regular file (or symlink to one) whose name ends in ".pem" or
 *     ".pub" and does not start with '.' holds ONE public key as SPKI PEM
 *     (RSA 2048..16384 bits or Ed25519). Anything else in that file, a
 *     malformed PEM, or a private key, is an error naming the file: a broken
 *     trust store is never silently skipped. Other names and subdirectories
 *     are ignored.
 *   - an optional file named "revoked": one key id (64 lowercase hex) per
 *     line; empty lines and lines whose first character is '#' are comments.
 *     Any other line is CRYPTO_E_KEYRING_REVOKED naming file and line. A
 *     revoked id need not be in the keyring (revoke ahead of time).
 * A key counts once however many files carry it: keys are indexed by key id
 * (SHA-256 of the DER SPKI), never by path (the prototype counted paths:
 * quorum case J). Iteration is in ascending key-id order, so results never
 * depend on directory order.
 */
#ifndef PLORA_KEYRING_H
#define PLORA_KEYRING_H

#include <stdbool.h>
#include <stddef.h>

#include "crypto_err.h"
#include "key.h"

#define KEYRING_MAX_KEYS 4096            /* distinct keys; more is CRYPTO_E_KEYRING_FULL */
#define KEYRING_REVOKED_FILE "revoked"
#define KEYRING_REVOKED_MAX (1u << 20)   /* bytes of the revocation file */

struct keyring;   /* opaque */

/* Empty keyring. Returns 0 or CRYPTO_E_NOMEM; *out is the caller's. */
int keyring_new(struct keyring **out);

/* Load `dir` as described above. On success *out is the caller's; on any
 * error *out is NULL and d names the file (and line). Returns 0,
 * CRYPTO_E_KEYRING_DIR, CRYPTO_E_KEYRING_REVOKED, CRYPTO_E_KEYRING_FULL, any
 * code of key_load_public_pem, or CRYPTO_E_NOMEM. */
int keyring_load(struct keyring **out, const char *dir, struct crypto_diag *d);

/* Add a key (its public half is kept; `k` stays the caller's). `source`
 * (may be NULL) names where it came from. A key already present is not added
 * again; *added (may be NULL) tells which. Returns 0, CRYPTO_E_KEYRING_FULL,
 * CRYPTO_E_NOMEM or CRYPTO_E_INTERNAL. */
int keyring_add(struct keyring *kr, const struct key *k, const char *source, bool *added,
                struct crypto_diag *d);

/* Mark a key id revoked (present or not). Returns 0, CRYPTO_E_ARG (not 64
 * lowercase hex) or CRYPTO_E_NOMEM. */
int keyring_revoke(struct keyring *kr, const char *key_id, struct crypto_diag *d);

/* Key with this id, revoked or not; NULL if absent. Owned by the keyring. */
const struct key *keyring_get(const struct keyring *kr, const char *key_id);

/* Trusted = present and not revoked. */
bool keyring_is_trusted(const struct keyring *kr, const char *key_id);
bool keyring_is_revoked(const struct keyring *kr, const char *key_id);

/* Like keyring_get, for a key that must be trusted: *out (owned by the
 * keyring) on success, NULL otherwise. Returns 0, CRYPTO_E_KEY_UNKNOWN or
 * CRYPTO_E_KEY_REVOKED (d names the id). */
int keyring_lookup(const struct keyring *kr, const char *key_id, const struct key **out,
                   struct crypto_diag *d);

/* Distinct keys held (revoked ones included) / held and not revoked. */
size_t keyring_count(const struct keyring *kr);
size_t keyring_trusted_count(const struct keyring *kr);

/* i-th key in ascending key-id order, 0 <= i < keyring_count (NULL past the
 * end), and the first source (file path) that carried it. */
const struct key *keyring_at(const struct keyring *kr, size_t i);
const char *keyring_source_at(const struct keyring *kr, size_t i);

/* Free; NULL is fine. */
void keyring_free(struct keyring *kr);

#endif
