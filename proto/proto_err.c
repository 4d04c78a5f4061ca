/* proto/proto_err.c: names and messages generated from PROTO_ERRORS. */
#include "proto_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *proto_err_name(int code)
{
    switch (code) {
    case 0: return "PROTO_OK";
#define X(name, val, msg) case (val): return "PROTO_E_" #name;
    PROTO_ERRORS(X)
#undef X
    default: return "unknown";
    }
}

const char *proto_strerror(int code)
{
    switch (code) {
    case 0: return "success";
#define X(name, val, msg) case (val): return (msg);
    PROTO_ERRORS(X)
#undef X
    default: return "unknown error";
    }
}

int proto_err_is_peer_fault(int code)
{
    return code <= -203 && code >= -249;
}

void proto_diag_clear(struct proto_diag *d)
{
    if (d != NULL)
        memset(d, 0, sizeof(*d));
}

int proto_fail(struct proto_diag *d, int code, size_t offset, const char *fmt, ...)
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
