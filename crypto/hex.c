/* crypto/hex.c: lowercase hex and strict standard base64. */
#include "hex.h"

#include <stdlib.h>
#include <string.h>

static const char hex_digits[16] = "0123456789abcdef";
static const char b64_alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t hex_encode(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[in[i] >> 4];
        out[2 * i + 1] = hex_digits[in[i] & 15];
    }
    out[2 * n] = '\0';
    return 2 * n;
}

/* Value of one lowercase hex digit, or -1. */
static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int hex_decode(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *out_len,
               struct crypto_diag *d)
{
    *out_len = 0;
    if (slen % 2 != 0)
        return crypto_fail(d, CRYPTO_E_HEX, slen, "hex: odd length %zu", slen);
    if (cap < slen / 2)
        return crypto_fail(d, CRYPTO_E_ARG, 0, "hex: %zu digits need %zu bytes, room for %zu",
                           slen, slen / 2, cap);
    for (size_t i = 0; i < slen; i += 2) {
        int hi = hex_val((unsigned char)s[i]), lo = hex_val((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0) {
            size_t at = hi < 0 ? i : i + 1;
            return crypto_fail(d, CRYPTO_E_HEX, at,
                               "hex: character 0x%02x at index %zu is not [0-9a-f]",
                               (unsigned char)s[at], at);
        }
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    *out_len = slen / 2;
    return 0;
}

bool hex_is_sha256_n(const char *s, size_t n)
{
    if (s == NULL || n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (hex_val((unsigned char)s[i]) < 0)
            return false;
    return true;
}

bool hex_is_sha256(const char *s)
{
    return s != NULL && hex_is_sha256_n(s, strnlen(s, 65));
}

size_t b64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;

    for (; n - i >= 3; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i > 0) {
        uint32_t v = (uint32_t)in[i] << 16 | (n - i == 2 ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = n - i == 2 ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/* Value of one standard-alphabet symbol, or -1. */
static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Padding of the last quantum: 0, 1 or 2 '=' at its end and nowhere else. */
static int b64_padding(const char *s, size_t slen)
{
    if (slen == 0 || s[slen - 1] != '=')
        return 0;
    return s[slen - 2] == '=' ? 2 : 1;
}

/* Decode the 4 symbols at q (the last `pad` of them '=') into out; checks
 * that every symbol is in the alphabet and that unused bits are zero. */
static int b64_quantum(const char *q, size_t at, int pad, uint8_t *out, struct crypto_diag *d)
{
    uint32_t v = 0;

    for (int j = 0; j < 4; j++) {
        int x = j >= 4 - pad ? 0 : b64_val((unsigned char)q[j]);
        if (x < 0)
            return crypto_fail(d, CRYPTO_E_BASE64, at + (size_t)j,
                               "base64: character 0x%02x at index %zu is not in the standard "
                               "alphabet (or '=' before the end)",
                               (unsigned char)q[j], at + (size_t)j);
        v = v << 6 | (uint32_t)x;
    }
    if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0))
        return crypto_fail(d, CRYPTO_E_BASE64, at + 3u - (size_t)pad,
                           "base64: non-zero unused bits before the padding at index %zu",
                           at + 3u - (size_t)pad);
    out[0] = (uint8_t)(v >> 16);
    out[1] = (uint8_t)(v >> 8);
    out[2] = (uint8_t)v;
    return 0;
}

int b64_decode(const char *s, size_t slen, uint8_t **out, size_t *out_len,
               struct crypto_diag *d)
{
    uint8_t *buf = NULL, tmp[3];
    size_t o = 0;
    int pad, rc = 0;

    *out = NULL;
    *out_len = 0;
    if (slen > B64_TEXT_MAX)
        return crypto_fail(d, CRYPTO_E_ARG, 0, "base64: %zu characters exceed the cap %u",
                           slen, B64_TEXT_MAX);
    if (slen % 4 != 0)
        return crypto_fail(d, CRYPTO_E_BASE64, slen,
                           "base64: length %zu is not a multiple of 4 (padding missing?)", slen);
    pad = b64_padding(s, slen);
    if ((buf = malloc(slen / 4 * 3 + 1)) == NULL)
        return crypto_fail(d, CRYPTO_E_NOMEM, 0, "base64: no memory for %zu bytes", slen);
    for (size_t i = 0; i < slen && rc == 0; i += 4) {
        int p = i + 4 == slen ? pad : 0;
        if ((rc = b64_quantum(s + i, i, p, tmp, d)) == 0) {
            memcpy(buf + o, tmp, (size_t)(3 - p));
            o += (size_t)(3 - p);
        }
    }
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = o;
    return 0;
}
