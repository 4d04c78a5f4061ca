/* crypto/crypto_err.h: error codes of the crypto library (crypto -1xx: -100..-149 keys, signatures, keyring, votes, quorum; -150..-199 audit log).
 *
 * One X-macro table gives each code its enum value, its name
 * (crypto_err_name) and its message (crypto_strerror). Add codes to the table
 * only, in the library's range; never reuse a value. Functions return 0 on
 * success or one of these negative codes, and fill a struct crypto_diag with
 * the details a user can act on (which field, which values, where).
 */
#ifndef PLORA_CRYPTO_ERR_H
#define PLORA_CRYPTO_ERR_H

#include <stddef.h>

#define CRYPTO_ERRORS(X) \
    X(NOMEM,      -100, "out of memory") \
    X(IO,         -101, "file could not be read or written") \
    X(ARG,        -102, "invalid argument") \
    X(INTERNAL,   -103, "internal error in the crypto library (OpenSSL)")

enum crypto_err {
    CRYPTO_OK = 0,
#define X(name, val, msg) CRYPTO_E_##name = (val),
    CRYPTO_ERRORS(X)
#undef X
};

/* Where and why an operation failed. `code` repeats the return value;
 * `offset` is a byte offset into the input (or 0), `line` a 1-based line
 * number for line-oriented inputs (or 0); `msg` names the field, the values
 * seen and the problem, NUL-terminated, never longer than the array. */
struct crypto_diag {
    int code;
    size_t offset;
    size_t line;
    char msg[256];
};

/* "PROTO_E_NEED_MORE"-style name of a code; "CRYPTO_OK" for 0; "unknown" else. */
const char *crypto_err_name(int code);
/* One-line description of a code; never NULL. */
const char *crypto_strerror(int code);

/* Fill `d` (may be NULL) with code, offset and a printf-style message, and
 * return `code` so that callers can write `return crypto_fail(d, ...)`. */
int crypto_fail(struct crypto_diag *d, int code, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Clear a diagnostic (NULL is fine). */
void crypto_diag_clear(struct crypto_diag *d);

#endif
