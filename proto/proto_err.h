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
    X(ARG,        -202, "invalid argument") \
    X(FRAME_LEN,     -203, "frame length outside 1..max") \
    X(MSGPACK_CNT,   -204, "msgpack container count exceeds bytes left") \
    X(MSGPACK_TRUNC, -205, "msgpack object runs past the end of the frame") \
    X(MSGPACK_TRAIL, -206, "bytes left in the frame after its msgpack object") \
    X(MSGPACK_DEPTH, -207, "msgpack containers nested too deep") \
    X(MSGPACK_TYPE,  -208, "msgpack type not used by the protocol (ext or 0xc1)") \
    X(LIMIT,         -209, "count or length over the protocol limit") \
    X(NOT_MAP,       -210, "frame body is not a msgpack map") \
    X(VERSION,       -211, "unsupported protocol version") \
    X(TYPE,          -212, "unknown message type") \
    X(FIELD_MISSING, -213, "required field missing") \
    X(FIELD_TYPE,    -214, "field has the wrong msgpack type") \
    X(FIELD_VALUE,   -215, "field value out of range or malformed") \
    X(DUP_FIELD,     -216, "field appears twice in one map") \
    X(STATE,         -217, "message not allowed in this connection state") \
    X(AUTH,          -218, "peer authentication failed") \
    X(HASH,          -219, "adapter bytes do not hash to their id") \
    X(ENCODE,        -250, "message cannot be encoded within the protocol limits")

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

/* Whether `code` is the peer's fault: codes -203..-249 are (the peer sent
 * bytes or a message the protocol forbids: it gets a strike, a BYE naming
 * the code, and the connection closes; see proto/PROTOCOL.md "Errors");
 * 0, NOMEM, NEED_MORE, ARG and -250..-299 are not (local or not an error). */
int proto_err_is_peer_fault(int code);

/* Clear a diagnostic (NULL is fine). */
void proto_diag_clear(struct proto_diag *d);

#endif
