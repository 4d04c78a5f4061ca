/* crypto/key.h: RSA and Ed25519 keys (wraps an OpenSSL EVP_PKEY).
 *
 * A key is public-only or private (a private key also answers every public
 * query). Files: private keys are PKCS#8 PEM ("BEGIN PRIVATE KEY",
 * unencrypted), public keys SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY"),
 * the prototype's encodings. Key bytes read from files or peers are
 * untrusted: size-capped before parsing, RSA moduli limited to
 * KEY_RSA_BITS_MIN..KEY_RSA_BITS_MAX (a huge modulus would make every verify
 * a denial of service), and only RSA and Ed25519 are accepted.
 *
 * Key id: the lowercase hex SHA-256 of the DER SubjectPublicKeyInfo, the
 * same for a private key and its public half. Node ids are key ids. Check it
 * by hand: `openssl pkey -pubin -in pub.pem -outform DER | sha256sum`.
 */
#ifndef PLORA_KEY_H
#define PLORA_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto_err.h"
#include "sha256.h"

#define KEY_RSA_BITS_DEFAULT 3072
#define KEY_RSA_BITS_MIN 2048
#define KEY_RSA_BITS_MAX 16384
#define KEY_PEM_MAX (64u << 10)  /* bytes; a PEM key file or buffer above this is refused */
#define KEY_DER_MAX (8u << 10)   /* bytes; a DER SPKI above this is refused */
#define KEY_ID_HEX_LEN SHA256_HEX_LEN

enum key_type {
    KEY_TYPE_RSA = 1,
    KEY_TYPE_ED25519 = 2,
};

struct key;              /* opaque */
struct evp_pkey_st;      /* OpenSSL's EVP_PKEY, for key_evp() */
struct evp_pkey_ctx_st;  /* OpenSSL's EVP_PKEY_CTX, for key_pss_verify_ctx() */

/* New RSA private key, e = 65537, `bits` in KEY_RSA_BITS_MIN..MAX (pass
 * KEY_RSA_BITS_DEFAULT for the default). *out is the caller's on success,
 * NULL otherwise. Returns 0, CRYPTO_E_KEY_SIZE, CRYPTO_E_NOMEM or
 * CRYPTO_E_INTERNAL. */
int key_generate_rsa(struct key **out, unsigned bits, struct crypto_diag *d);

/* New Ed25519 private key. Same ownership and codes (no KEY_SIZE). */
int key_generate_ed25519(struct key **out, struct crypto_diag *d);

/* Load a private key from a PEM file (PKCS#8; the traditional "BEGIN RSA
 * PRIVATE KEY" form is accepted too). Messages name `path`. Returns 0,
 * CRYPTO_E_IO, CRYPTO_E_KEY_TOO_BIG (> KEY_PEM_MAX), CRYPTO_E_KEY_PARSE (not
 * a private key PEM), CRYPTO_E_KEY_ENCRYPTED, CRYPTO_E_KEY_TYPE (not RSA or
 * Ed25519), CRYPTO_E_KEY_SIZE, CRYPTO_E_NOMEM, CRYPTO_E_INTERNAL. */
int key_load_private_pem(struct key **out, const char *path, struct crypto_diag *d);

/* Load a public key from an SPKI PEM file. A file that holds a private key
 * is CRYPTO_E_KEY_TYPE (it does not belong where public keys are expected).
 * Other codes as key_load_private_pem. */
int key_load_public_pem(struct key **out, const char *path, struct crypto_diag *d);

/* The same two from `n` bytes in memory (untrusted; need not be
 * NUL-terminated); `name` (may be NULL) labels the source in messages. */
int key_from_private_pem(struct key **out, const void *pem, size_t n, const char *name,
                         struct crypto_diag *d);
int key_from_public_pem(struct key **out, const void *pem, size_t n, const char *name,
                        struct crypto_diag *d);

/* Public key from the DER SubjectPublicKeyInfo a peer sent (e.g. in HELLO).
 * The whole buffer must be one SPKI (trailing bytes are CRYPTO_E_KEY_PARSE).
 * Codes as key_from_public_pem (KEY_TOO_BIG above KEY_DER_MAX). */
int key_from_public_der(struct key **out, const uint8_t *der, size_t n, const char *name,
                        struct crypto_diag *d);

/* Write the private key as unencrypted PKCS#8 PEM to `path`, mode 0600:
 * written to "<path>.tmp.<pid>", fsync'd, then link(2)ed to `path` (which
 * fails if `path` exists, so no race can replace a key: CRYPTO_E_KEY_EXISTS),
 * the temp name unlinked and the directory fsync'd. A crash leaves either no
 * `path` or a complete one. The PEM bytes are wiped from memory after the
 * write. Returns 0, CRYPTO_E_KEY_EXISTS,
 * CRYPTO_E_KEY_NOT_PRIVATE, CRYPTO_E_IO, CRYPTO_E_NOMEM, CRYPTO_E_INTERNAL. */
int key_save_private(const struct key *k, const char *path, struct crypto_diag *d);

/* Write the public key as SPKI PEM, mode 0644, same atomic scheme and codes
 * (no KEY_NOT_PRIVATE). */
int key_save_public(const struct key *k, const char *path, struct crypto_diag *d);

/* SPKI PEM / DER of the public key in a new buffer (*out malloc'd, the
 * caller frees; PEM is NUL-terminated, *n excludes the NUL). Returns 0,
 * CRYPTO_E_NOMEM or CRYPTO_E_INTERNAL. */
int key_public_pem(const struct key *k, char **out, size_t *n, struct crypto_diag *d);
int key_public_der(const struct key *k, uint8_t **out, size_t *n, struct crypto_diag *d);

/* New public-only key with the same public half (for handing to a keyring
 * without the secret). Returns 0, CRYPTO_E_NOMEM or CRYPTO_E_INTERNAL. */
int key_public_copy(struct key **out, const struct key *k, struct crypto_diag *d);

/* Key id: 64 lowercase hex chars, NUL-terminated, owned by `k`, valid for
 * its lifetime. key_id_bin gives the 32 raw bytes. */
const char *key_id(const struct key *k);
const uint8_t *key_id_bin(const struct key *k);

enum key_type key_type(const struct key *k);
const char *key_type_name(enum key_type t);   /* "rsa", "ed25519" */
unsigned key_bits(const struct key *k);       /* RSA modulus bits; 256 for Ed25519 */
bool key_is_private(const struct key *k);

/* The underlying EVP_PKEY, still owned by `k` (for crypto/ internals such as
 * sig.c; other modules should not need it). */
struct evp_pkey_st *key_evp(const struct key *k);

/* For sig.c: a new EVP_PKEY_CTX ready for EVP_PKEY_verify of an RSA-PSS
 * signature over a SHA-256 digest (MGF1-SHA256), with salt length 32
 * (`auto_salt` false: plorad's rule) or recovered from the signature
 * (`auto_salt` true: the prototype's rule). It is duplicated from a template
 * built once per RSA key, which saves the per-call provider fetch and
 * parameter setup (~15% of a 3072-bit verify). The caller frees it with
 * EVP_PKEY_CTX_free. NULL for a non-RSA key or on allocation failure. */
struct evp_pkey_ctx_st *key_pss_verify_ctx(const struct key *k, bool auto_salt);

/* Free a key (the private part is freed by OpenSSL, which clears it); NULL is fine. */
void key_free(struct key *k);

#endif
