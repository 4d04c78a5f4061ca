/* fusion/fusion_err.h: error codes of the fusion library (fusion -4xx: -400..-449 reading/writing adapters, manifests, gate; -450..-499 merge, KLD, certificate).
 *
 * One X-macro table gives each code its enum value, its name
 * (fusion_err_name) and its message (fusion_strerror). Add codes to the table
 * only, in the library's range; never reuse a value. Functions return 0 on
 * success or one of these negative codes, and fill a struct fusion_diag with
 * the details a user can act on (which field, which values, where).
 */
#ifndef PLORA_FUSION_ERR_H
#define PLORA_FUSION_ERR_H

#include <stddef.h>

#define FUSION_ERRORS(X) \
    X(NOMEM,      -400, "out of memory") \
    X(IO,         -401, "file could not be read or written") \
    X(ARG,        -402, "invalid argument")

enum fusion_err {
    FUSION_OK = 0,
#define X(name, val, msg) FUSION_E_##name = (val),
    FUSION_ERRORS(X)
#undef X
};

/* Where and why an operation failed. `code` repeats the return value;
 * `offset` is a byte offset into the input (or 0), `line` a 1-based line
 * number for line-oriented inputs (or 0); `msg` names the field, the values
 * seen and the problem, NUL-terminated, never longer than the array. */
struct fusion_diag {
    int code;
    size_t offset;
    size_t line;
    char msg[256];
};

/* "PROTO_E_NEED_MORE"-style name of a code; "FUSION_OK" for 0; "unknown" else. */
const char *fusion_err_name(int code);
/* One-line description of a code; never NULL. */
const char *fusion_strerror(int code);

/* Fill `d` (may be NULL) with code, offset and a printf-style message, and
 * return `code` so that callers can write `return fusion_fail(d, ...)`. */
int fusion_fail(struct fusion_diag *d, int code, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Clear a diagnostic (NULL is fine). */
void fusion_diag_clear(struct fusion_diag *d);

#endif
