/* proto/proto_err.h: error codes of the proto library (proto -2xx).
 *
 * One X-macro table gives each code its enum value, its name
 * (proto_err_name) and its message (proto_strerror). Add codes to the table
 * only, in the library's range; never reuse a value. Functions return 0 on
 * success or one of these negative codes, and fill a struct proto_diag with
 * the details a user can act on (which field, which values, where).
 */
#ifndef PLORA_PROTO_ERR_H
#define PLORA_PROTO_ERR_H

#include <stddef.h>

#define PROTO_ERRORS(X) \
    X(NOMEM,      -200, "out of memory") \
    X(NEED_MORE,  -201, "incomplete frame, need more bytes") \
    X(ARG,        -202, "invalid argument")

enum proto_err {
    PROTO_OK = 0,
#define X(name, val, msg) PROTO_E_##name = (val),
    PROTO_ERRORS(X)
#undef X
};

/* Where and why an operation failed. `code` repeats the return value;
 * `offset` is a byte offset into the input (or 0), `line` a 1-based line
 * number for line-oriented inputs (or 0); `msg` names the field, the values
 * seen and the problem, NUL-terminated, never longer than the array. */
struct proto_diag {
    int code;
    size_t offset;
    size_t line;
    char msg[256];
};

/* "PROTO_E_NEED_MORE"-style name of a code; "PROTO_OK" for 0; "unknown" else. */
const char *proto_err_name(int code);
/* One-line description of a code; never NULL. */
const char *proto_strerror(int code);

/* Fill `d` (may be NULL) with code, offset and a printf-style message, and
 * return `code` so that callers can write `return proto_fail(d, ...)`. */
int proto_fail(struct proto_diag *d, int code, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Clear a diagnostic (NULL is fine). */
void proto_diag_clear(struct proto_diag *d);

#endif
