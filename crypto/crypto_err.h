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
    X(AUDIT_JSON,    -150, "audit line is not one well-formed ASCII JSON object") \
    X(AUDIT_RECORD,  -151, "audit record member missing, extra, out of order or malformed") \
    X(AUDIT_LOCKED,  -152, "audit log is locked by another writer") \
    X(AUDIT_FAILED,  -153, "audit writer stopped after a failed write; reopen the log") \
    X(AUDIT_DAMAGED, -154, "audit log damaged before its tail; run plora verify-log") \
    X(AUDIT_FIELD,   -155, "invalid value for an audit record being written") \
    X(AUDIT_HEAD,    -156, "malformed head (want COUNT:64-hex-hash)") \
    X(AUDIT_REPLAY,  -157, "merge replay could not run") \
    X(NOMEM,      -100, "out of memory") \
    X(IO,         -101, "file could not be read or written") \
    X(ARG,        -102, "invalid argument") \
    X(INTERNAL,   -103, "internal error in the crypto library (OpenSSL)") \
    X(HEX,        -104, "invalid hexadecimal text") \
    X(BASE64,     -105, "invalid base64 text") \
    X(KEY_PARSE,  -106, "malformed key (PEM or DER)") \
    X(KEY_TYPE,   -107, "unsupported key type or wrong kind of key (public/private)") \
    X(KEY_SIZE,   -108, "RSA key size outside 2048..16384 bits") \
    X(KEY_TOO_BIG, -109, "key file larger than the size cap") \
    X(KEY_ENCRYPTED, -110, "passphrase-protected keys are not supported") \
    X(KEY_EXISTS, -111, "refusing to overwrite an existing key file") \
    X(KEY_NOT_PRIVATE, -112, "operation needs a private key") \
    X(SIG_BAD,    -113, "signature does not verify") \
    X(MSG_FIELD,  -115, "invalid field for a signed message") \
    X(KEYRING_DIR, -116, "keyring directory could not be read") \
    X(KEYRING_REVOKED, -117, "malformed line in the keyring revocation list") \
    X(KEYRING_FULL, -118, "keyring holds more keys than its cap") \
    X(KEY_UNKNOWN, -119, "key id not in the keyring") \
    X(KEY_REVOKED, -120, "key is revoked") \
    X(VOTE_JSON,   -130, "vote is not well-formed JSON") \
    X(VOTE_FIELD,  -131, "vote field missing or of the wrong type") \
    X(VOTE_VALUE,  -132, "vote field value malformed or out of range") \
    X(VOTE_LIMIT,  -133, "vote larger than a size cap") \
    X(VOTE_SIG,    -134, "vote signature does not verify with the signer's key") \
    X(VOTE_FORM,   -135, "operation not valid for this kind of vote") \
    X(QUORUM_ARG,  -140, "quorum below 1 or invalid quorum policy")

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
