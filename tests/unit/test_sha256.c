/* tests/unit/test_sha256.c: SHA-256 known answers, streaming, file hashing against the
 * fixtures' published digests, and the strict hex / base64 codecs of crypto/hex.h. */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hex.h"
#include "sha256.h"

static const char *fixtures(void)
{
    const char *f = getenv("PLORA_FIXTURES");

    if (f == NULL)
        fail_msg("PLORA_FIXTURES is not set");
    return f;
}

/* FIPS 180-2 / NIST examples. */
static const struct { const char *name; const char *in; size_t repeat; const char *want; } kat[] = {
    { "empty", "", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
    { "abc", "abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
    { "448-bit", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
    { "million a", "a", 1000000,
      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0" },
};

static void test_kat_oneshot(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
        size_t n = strlen(kat[i].in) * kat[i].repeat;
        char *buf = malloc(n + 1), hex[SHA256_HEX_LEN + 1];
        uint8_t md[SHA256_LEN];

        assert_non_null(buf);
        for (size_t r = 0; r < kat[i].repeat; r++)
            memcpy(buf + r * strlen(kat[i].in), kat[i].in, strlen(kat[i].in));
        assert_int_equal(sha256(buf, n, md), 0);
        sha256_hex(md, hex);
        if (strcmp(hex, kat[i].want) != 0)
            fail_msg("%s: got %s, want %s", kat[i].name, hex, kat[i].want);
        free(buf);
    }
}

/* Incremental hashing in pieces of every size 1..97 gives the one-shot digest,
 * and a context is reusable after sha256_final. */
static void test_kat_incremental(void **state)
{
    struct sha256_ctx *c = NULL;

    (void)state;
    assert_int_equal(sha256_new(&c), 0);
    for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
        for (size_t step = 1; step < 98; step += kat[i].repeat > 1 ? 48 : 1) {
            size_t unit = strlen(kat[i].in), total = unit * kat[i].repeat;
            char hex[SHA256_HEX_LEN + 1], chunk[128];
            uint8_t md[SHA256_LEN];

            for (size_t off = 0; off < total; off += step) {
                size_t take = total - off < step ? total - off : step;
                for (size_t j = 0; j < take; j++)
                    chunk[j] = kat[i].in[(off + j) % unit];
                assert_int_equal(sha256_update(c, chunk, take), 0);
            }
            assert_int_equal(sha256_final(c, md), 0);
            sha256_hex(md, hex);
            if (strcmp(hex, kat[i].want) != 0)
                fail_msg("%s in steps of %zu: got %s, want %s", kat[i].name, step, hex,
                         kat[i].want);
        }
    }
    sha256_free(c);
    sha256_free(NULL);
}

/* Hash every file listed as "<64 hex>  <path>" in `readme` (relative to
 * `base`) and compare; returns the number of files checked. */
static size_t check_listed(const char *readme, const char *base)
{
    char path[4096], line[1024];
    regex_t re;
    regmatch_t m[3];
    size_t checked = 0;
    FILE *f = fopen(readme, "r");

    if (f == NULL)
        fail_msg("missing fixture %s", readme);
    assert_int_equal(regcomp(&re, "^([0-9a-f]{64})  ([^ \n]+)$", REG_EXTENDED | REG_NEWLINE), 0);
    while (fgets(line, sizeof(line), f) != NULL) {
        uint8_t md[SHA256_LEN];
        char hex[SHA256_HEX_LEN + 1];
        struct crypto_diag d;
        uint64_t size;

        if (regexec(&re, line, 3, m, 0) != 0)
            continue;
        line[m[1].rm_eo] = '\0';
        line[m[2].rm_eo] = '\0';
        snprintf(path, sizeof(path), "%s/%s", base, line + m[2].rm_so);
        if (sha256_file(path, md, &size, &d) != 0)
            fail_msg("%s: %s", path, d.msg);
        sha256_hex(md, hex);
        if (strcmp(hex, line) != 0)
            fail_msg("%s: got %s, README says %s", path, hex, line);
        checked++;
    }
    regfree(&re);
    fclose(f);
    return checked;
}

static void test_file_digests(void **state)
{
    char readme[4096], base[4096];
    size_t n;

    (void)state;
    snprintf(readme, sizeof(readme), "%s/README.md", fixtures());
    snprintf(base, sizeof(base), "%s/peft", fixtures());
    n = check_listed(readme, base);
    if (n != 6)
        fail_msg("fixtures/README.md lists %zu peft files, expected 6", n);
    snprintf(readme, sizeof(readme), "%s/reference/README.md", fixtures());
    snprintf(base, sizeof(base), "%s/reference", fixtures());
    n = check_listed(readme, base);
    if (n < 90)
        fail_msg("reference/README.md: only %zu files checked", n);
}

static void test_file_errors(void **state)
{
    struct crypto_diag d;
    uint8_t md[SHA256_LEN];
    uint64_t size = 7;

    (void)state;
    assert_int_equal(sha256_file("/nonexistent/plora-a1", md, &size, &d), CRYPTO_E_IO);
    assert_non_null(strstr(d.msg, "/nonexistent/plora-a1"));
    assert_int_equal(size, 0);
    /* A directory opens but cannot be read. */
    assert_int_equal(sha256_file("/", md, NULL, &d), CRYPTO_E_IO);
    assert_non_null(strstr(d.msg, "read"));
}

static void test_hex(void **state)
{
    static const struct { const char *in; int want; size_t bad_at; } dec[] = {
        { "", 0, 0 }, { "00ff7a", 0, 0 }, { "0", CRYPTO_E_HEX, 1 }, { "0G", CRYPTO_E_HEX, 1 },
        { "AB", CRYPTO_E_HEX, 0 }, { "a b0", CRYPTO_E_HEX, 1 }, { "zz", CRYPTO_E_HEX, 0 },
    };
    static const struct { const char *s; bool want; } is[] = {
        { "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", true },
        { "E3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false },
        { "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85", false },
        { "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555", false },
        { "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g", false },
        { "", false }, { NULL, false },
    };
    uint8_t out[8], all[256];
    char txt[513];
    size_t n;
    struct crypto_diag d;

    (void)state;
    for (size_t i = 0; i < sizeof(dec) / sizeof(dec[0]); i++) {
        int rc = hex_decode(dec[i].in, strlen(dec[i].in), out, sizeof(out), &n, &d);
        if (rc != dec[i].want || (rc != 0 && d.offset != dec[i].bad_at))
            fail_msg("hex_decode(\"%s\"): got %s at %zu, want %s at %zu", dec[i].in,
                     crypto_err_name(rc), d.offset, crypto_err_name(dec[i].want), dec[i].bad_at);
    }
    assert_int_equal(hex_decode("0011", 4, out, 1, &n, &d), CRYPTO_E_ARG);
    for (size_t i = 0; i < sizeof(is) / sizeof(is[0]); i++)
        if (hex_is_sha256(is[i].s) != is[i].want)
            fail_msg("hex_is_sha256(%s) != %d", is[i].s ? is[i].s : "NULL", is[i].want);
    for (size_t i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    assert_int_equal(hex_encode(all, 256, txt), 512);
    assert_int_equal(strncmp(txt, "000102", 6), 0);
    assert_string_equal(txt + 500, "fafbfcfdfeff");
    uint8_t back[256];
    assert_int_equal(hex_decode(txt, 512, back, sizeof(back), &n, &d), 0);
    assert_int_equal(n, 256);
    assert_memory_equal(back, all, 256);
}

static void test_b64_vectors(void **state)
{
    /* RFC 4648 section 10. */
    static const struct { const char *raw, *b64; } v[] = {
        { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char out[16];
        uint8_t *dec = NULL;
        size_t n;
        struct crypto_diag d;

        assert_int_equal(b64_encoded_len(strlen(v[i].raw)), strlen(v[i].b64));
        b64_encode((const uint8_t *)v[i].raw, strlen(v[i].raw), out);
        assert_string_equal(out, v[i].b64);
        if (b64_decode(v[i].b64, strlen(v[i].b64), &dec, &n, &d) != 0)
            fail_msg("%s: %s", v[i].b64, d.msg);
        assert_non_null(dec);
        assert_int_equal(n, strlen(v[i].raw));
        assert_memory_equal(dec, v[i].raw, n);
        free(dec);
    }
}

/* Every byte value round-trips for every length 0..300 (all three tail cases). */
static void test_b64_roundtrip(void **state)
{
    uint8_t raw[300], *dec;
    char txt[401];
    size_t n;
    struct crypto_diag d;

    (void)state;
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (uint8_t)(i * 151 + 7);
    for (size_t len = 0; len <= sizeof(raw); len++) {
        size_t t = b64_encode(raw, len, txt);
        assert_int_equal(t, b64_encoded_len(len));
        assert_int_equal(b64_decode(txt, t, &dec, &n, &d), 0);
        assert_int_equal(n, len);
        assert_memory_equal(dec, raw, len);
        free(dec);
    }
}

static void test_b64_strict(void **state)
{
    static const struct { const char *in; const char *why; size_t at; } bad[] = {
        { "Zg=", "length not a multiple of 4", 3 },
        { "Zg", "padding missing", 2 },
        { "Z===", "three '='", 1 },
        { "====", "only padding", 0 },
        { "Zh==", "non-zero unused bits (1 byte)", 1 },
        { "Zm9=", "non-zero unused bits (2 bytes)", 2 },
        { "Zm9v\n", "trailing newline", 5 },
        { "Zm9\nv", "newline inside (len 5)", 5 },
        { "Zm 9v Zg", "space inside", 2 },
        { "Zm-v", "URL-safe '-'", 2 },
        { "Zm_v", "URL-safe '_'", 2 },
        { "Zm=v", "'=' before the end", 2 },
        { "Zg==Zm9v", "padding in the middle", 2 },
        { "Zm9v\xc3\xa9==", "non-ASCII byte", 4 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t *dec = (uint8_t *)1;
        size_t n = 9;
        struct crypto_diag d;
        int rc = b64_decode(bad[i].in, strlen(bad[i].in), &dec, &n, &d);

        if (rc != CRYPTO_E_BASE64 || dec != NULL || n != 0 || d.offset != bad[i].at)
            fail_msg("\"%s\" (%s): got %s at %zu, want CRYPTO_E_BASE64 at %zu", bad[i].in,
                     bad[i].why, crypto_err_name(rc), d.offset, bad[i].at);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kat_oneshot),
        cmocka_unit_test(test_kat_incremental),
        cmocka_unit_test(test_file_digests),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_b64_vectors),
        cmocka_unit_test(test_b64_roundtrip),
        cmocka_unit_test(test_b64_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
