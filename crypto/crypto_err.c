/* crypto/crypto_err.c: names and messages generated from CRYPTO_ERRORS. */
#include "crypto_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *crypto_err_name(int code)
{
    switch (code) {
    case 0: return "CRYPTO_OK";
#define X(name, val, msg) case (val): return "CRYPTO_E_" #name;
    CRYPTO_ERRORS(X)
#undef X
    default: return "unknown";
    }
}

const char *crypto_strerror(int code)
{
    switch (code) {
    case 0: return "success";
#define X(name, val, msg) case (val): return (msg);
    CRYPTO_ERRORS(X)
#undef X
    default: return "unknown error";
    }
}

void crypto_diag_clear(struct crypto_diag *d)
{
    if (d != NULL)
        memset(d, 0, sizeof(*d));
}

int crypto_fail(struct crypto_diag *d, int code, size_t offset, const char *fmt, ...)
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
