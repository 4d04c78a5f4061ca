/* fusion/fusion_err.c: names and messages generated from FUSION_ERRORS. */
#include "fusion_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *fusion_err_name(int code)
{
    switch (code) {
    case 0: return "FUSION_OK";
#define X(name, val, msg) case (val): return "FUSION_E_" #name;
    FUSION_ERRORS(X)
#undef X
    default: return "unknown";
    }
}

const char *fusion_strerror(int code)
{
    switch (code) {
    case 0: return "success";
#define X(name, val, msg) case (val): return (msg);
    FUSION_ERRORS(X)
#undef X
    default: return "unknown error";
    }
}

void fusion_diag_clear(struct fusion_diag *d)
{
    if (d != NULL)
        memset(d, 0, sizeof(*d));
}

int fusion_fail(struct fusion_diag *d, int code, size_t offset, const char *fmt, ...)
{
    va_list ap;

    if (d == NULL)
        return code;
    d->code = code;
    d->offset = offset;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
    va_end(ap);
    return code;
}
