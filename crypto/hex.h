/* crypto/hex.h: text encodings of bytes: hexadecimal and standard base64.
 *
 * Encoders write lowercase hex / RFC 4648 base64 with '=' padding and no line
 * breaks (the prototype's signature_b64 form). Decoders are strict, because
 * their input is untrusted: hex_decode takes lowercase only (the form we
 * write and the prototype writes); b64_decode takes the standard alphabet
 * only (no URL-safe '-' '_'), requires the length to be a multiple of 4 with
 * correct '=' padding, rejects any whitespace or line break, and rejects
 * non-canonical encodings (unused low bits of the last symbol must be 0), so
 * that one byte string has exactly one accepted text form.
 */
#ifndef PLORA_HEX_H
#define PLORA_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto_err.h"

/* Largest text b64_decode accepts (bytes), before allocating anything. */
#define B64_TEXT_MAX (16u << 20)

/* Write the 2*n lowercase hex digits of `in` and a NUL to `out` (which must
 * hold 2*n + 1 chars). Returns 2*n. */
size_t hex_encode(const uint8_t *in, size_t n, char *out);

/* Decode exactly `slen` lowercase hex digits of `s` (need not be
 * NUL-terminated) into `out` (room for `cap` bytes); *out_len = slen / 2.
 * Returns 0, or CRYPTO_E_HEX (odd length, a non [0-9a-f] character: d->offset
 * is its index) or CRYPTO_E_ARG (cap < slen / 2). */
int hex_decode(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *out_len,
               struct crypto_diag *d);

/* True iff `s` is NUL-terminated and exactly 64 lowercase hex digits (the
 * form of a SHA-256 digest and of a key id). NULL gives false. */
bool hex_is_sha256(const char *s);

/* Same test on a length-delimited string (no NUL needed). */
bool hex_is_sha256_n(const char *s, size_t n);

/* Characters b64_encode writes for `n` bytes, without the NUL. */
size_t b64_encoded_len(size_t n);

/* Write the base64 of `in` and a NUL to `out` (room for b64_encoded_len(n) + 1).
 * Returns the characters written, without the NUL. */
size_t b64_encode(const uint8_t *in, size_t n, char *out);

/* Decode `slen` characters of strict base64 (see the file comment) into a new
 * buffer: on success *out (malloc'd, the caller frees it) and *out_len are
 * set; on failure *out is NULL. An empty input decodes to a non-NULL empty
 * buffer. Returns 0, CRYPTO_E_BASE64 (d->offset = index of the offending
 * character, or the length when it is not a multiple of 4), CRYPTO_E_ARG
 * (slen > B64_TEXT_MAX) or CRYPTO_E_NOMEM. */
int b64_decode(const char *s, size_t slen, uint8_t **out, size_t *out_len,
               struct crypto_diag *d);

#endif
