/* daemon/dmn_err.c: names and messages generated from DMN_ERRORS. */
#include "dmn_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *dmn_err_name(int code)
{
    switch (code) {
    case 0: return "DMN_OK";
#define X(name, val, msg) case (val): return "DMN_E_" #name;
    DMN_ERRORS(X)
#undef X
    default: return "unknown";
    }
}

const char *dmn_strerror(int code)
{
    switch (code) {
    case 0: return "success";
#define X(name, val, msg) case (val): return (msg);
    DMN_ERRORS(X)
#undef X
    default: return "unknown error";
    }
}

void dmn_diag_clear(struct dmn_diag *d)
{
    if (d != NULL)
        memset(d, 0, sizeof(*d));
}

int dmn_fail(struct dmn_diag *d, int code, const char *fmt, ...)
{
    va_list ap;

    if (d == NULL)
        return code;
    d->code = code;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
    va_end(ap);
    return code;
}
