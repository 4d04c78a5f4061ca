/* daemon/dmn_err.h: error codes of plorad's own modules (daemon -6xx:
 * -600..-629 store, -630..-659 config and node set-up, -660..-689 transport,
 * -690..-699 status/metrics server).
 *
 * Same shape as the libraries' tables (STYLE.md section 4): one X-macro
 * table gives each code its enum value, its name and its message. Functions
 * return 0 or one of these codes and fill a struct dmn_diag whose message
 * names the file or peer, the field and the problem.
 */
#ifndef PLORA_DMN_ERR_H
#define PLORA_DMN_ERR_H

#include <stddef.h>

#define DMN_ERRORS(X) \
    X(NOMEM,        -600, "out of memory") \
    X(IO,           -601, "file could not be read or written") \
    X(ARG,          -602, "invalid argument") \
    X(NAME,         -603, "name is not [a-z0-9][a-z0-9._-]{0,63} or not 64 lowercase hex") \
    X(NOT_FOUND,    -604, "no such adapter in the store") \
    X(HASH,         -605, "adapter bytes do not hash to their id") \
    X(RANGE,        -606, "offset or size outside the adapter") \
    X(NOSPACE,      -607, "no space left on the store's device") \
    X(STORE_LAYOUT, -608, "store directory holds something it did not write") \
    X(EXISTS,       -609, "adapter already stored") \
    X(CONFIG,       -630, "invalid configuration") \
    X(CONFIG_FIELD, -631, "invalid value for a configuration field") \
    X(CONFIG_UNKNOWN, -632, "unknown configuration field") \
    X(KEY,          -633, "node key or keyring could not be loaded") \
    X(POLICY,       -634, "gate policy could not be loaded") \
    X(PUBLISH,      -635, "adapter to publish could not be imported") \
    X(LISTEN,       -660, "could not listen on the address") \
    X(LOOP,         -661, "event loop failure") \
    X(PEER,         -662, "peer misbehaved") \
    X(HTTP,         -690, "status server could not start")

enum dmn_err {
    DMN_OK = 0,
#define X(name, val, msg) DMN_E_##name = (val),
    DMN_ERRORS(X)
#undef X
};

/* Where and why an operation failed; `msg` names the file or peer, the
 * field and the values seen, NUL-terminated. */
struct dmn_diag {
    int code;
    char msg[512];
};

const char *dmn_err_name(int code);   /* "DMN_E_HASH"; "DMN_OK" for 0; "unknown" */
const char *dmn_strerror(int code);   /* never NULL */

/* Fill `d` (may be NULL) and return `code`. */
int dmn_fail(struct dmn_diag *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void dmn_diag_clear(struct dmn_diag *d);  /* NULL is fine */

#endif
