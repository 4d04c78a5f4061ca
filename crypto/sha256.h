/* crypto/sha256.h: SHA-256 (OpenSSL EVP) over memory, streams and files.
 *
 * Digests are raw 32-byte arrays; sha256_hex() gives the lowercase hex form
 * used everywhere on disk and on the wire (manifests, audit prev_hash, key
 * ids). The EVP_MD is fetched once per process (thread-safe), so the
 * one-shot call is cheap enough for hashing one audit line at a time.
 */
#ifndef PLORA_SHA256_H
#define PLORA_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "crypto_err.h"

#define SHA256_LEN 32      /* bytes in a digest */
#define SHA256_HEX_LEN 64  /* characters in its lowercase hex form, without NUL */

/* Incremental hashing context (wraps an EVP_MD_CTX); opaque. */
struct sha256_ctx;

/* One-shot digest of `n` bytes at `p` (p may be NULL when n == 0).
 * Returns 0, or CRYPTO_E_INTERNAL if OpenSSL fails (out is then zeroed). */
int sha256(const void *p, size_t n, uint8_t out[SHA256_LEN]);

/* New context, ready for sha256_update. On success *out is the caller's
 * (free with sha256_free). Returns 0, CRYPTO_E_NOMEM or CRYPTO_E_INTERNAL. */
int sha256_new(struct sha256_ctx **out);

/* Feed `n` bytes. Returns 0 or CRYPTO_E_INTERNAL. */
int sha256_update(struct sha256_ctx *c, const void *p, size_t n);

/* Write the digest of everything fed so far and reset `c` for a new message.
 * Returns 0 or CRYPTO_E_INTERNAL. */
int sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_LEN]);

/* Free a context; NULL is fine. */
void sha256_free(struct sha256_ctx *c);

/* Digest of the whole file at `path`, read with read(2) in 1 MiB blocks
 * (page cache friendly; no mmap, so a file shrinking under us is an I/O
 * error, not SIGBUS). `size` (may be NULL) receives the byte count hashed.
 * Returns 0, CRYPTO_E_IO (d names the path and errno text), CRYPTO_E_NOMEM
 * or CRYPTO_E_INTERNAL. */
int sha256_file(const char *path, uint8_t out[SHA256_LEN], uint64_t *size,
                struct crypto_diag *d);

/* Same over an open descriptor from its current offset to EOF; `name` is used
 * in messages only. The descriptor stays the caller's. */
int sha256_fd(int fd, const char *name, uint8_t out[SHA256_LEN], uint64_t *size,
              struct crypto_diag *d);

/* Lowercase hex of a digest into out[65] (NUL-terminated). */
void sha256_hex(const uint8_t in[SHA256_LEN], char out[SHA256_HEX_LEN + 1]);

#endif
