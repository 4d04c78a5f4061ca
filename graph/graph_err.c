/* graph/graph_err.c: names and messages generated from GRAPH_ERRORS. */
#include "graph_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *graph_err_name(int code)
{
    switch (code) {
    case 0: return "GRAPH_OK";
#define X(name, val, msg) case (val): return "GRAPH_E_" #name;
    GRAPH_ERRORS(X)
#undef X
    default: return "unknown";
    }
}

const char *graph_strerror(int code)
{
    switch (code) {
    case 0: return "success";
#define X(name, val, msg) case (val): return (msg);
    GRAPH_ERRORS(X)
#undef X
    default: return "unknown error";
    }
}

void graph_diag_clear(struct graph_diag *d)
{
    if (d != NULL)
        memset(d, 0, sizeof(*d));
}

int graph_fail(struct graph_diag *d, int code, size_t offset, const char *fmt, ...)
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
