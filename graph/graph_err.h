/* graph/graph_err.h: error codes of the graph library (graph -3xx).
 *
 * One X-macro table gives each code its enum value, its name
 * (graph_err_name) and its message (graph_strerror). Add codes to the table
 * only, in the library's range; never reuse a value. Functions return 0 on
 * success or one of these negative codes, and fill a struct graph_diag with
 * the details a user can act on (which field, which values, where).
 */
#ifndef PLORA_GRAPH_ERR_H
#define PLORA_GRAPH_ERR_H

#include <stddef.h>

#define GRAPH_ERRORS(X) \
    X(NOMEM,      -300, "out of memory") \
    X(ARG,        -301, "invalid argument") \
    X(PARAM,      -302, "generator parameter out of range") \
    X(TOO_BIG,    -303, "estimated memory exceeds the size cap") \
    X(EDGE,       -304, "invalid edge (self-loop, duplicate or vertex out of range)") \
    X(NOCONV,     -305, "eigensolver did not converge") \
    X(LAPACK,     -306, "LAPACK routine failed")

enum graph_err {
    GRAPH_OK = 0,
#define X(name, val, msg) GRAPH_E_##name = (val),
    GRAPH_ERRORS(X)
#undef X
};

/* Where and why an operation failed. `code` repeats the return value;
 * `offset` is a byte offset into the input (or 0), `line` a 1-based line
 * number for line-oriented inputs (or 0); `msg` names the field, the values
 * seen and the problem, NUL-terminated, never longer than the array. */
struct graph_diag {
    int code;
    size_t offset;
    size_t line;
    char msg[256];
};

/* "PROTO_E_NEED_MORE"-style name of a code; "GRAPH_OK" for 0; "unknown" else. */
const char *graph_err_name(int code);
/* One-line description of a code; never NULL. */
const char *graph_strerror(int code);

/* Fill `d` (may be NULL) with code, offset and a printf-style message, and
 * return `code` so that callers can write `return graph_fail(d, ...)`. */
int graph_fail(struct graph_diag *d, int code, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Clear a diagnostic (NULL is fine). */
void graph_diag_clear(struct graph_diag *d);

#endif
