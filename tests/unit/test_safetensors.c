/* tests/unit/test_safetensors.c: the safetensors reader and half conversions.
 *
 * Synthetic files (one per rule of the checklist, each must fail with its own
 * code), the real fixtures (counts, layout, values), every truncated prefix
 * and every bit flip of the length field, and F16/BF16 known answers.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "half.h"
#include "safetensors.h"

/* 8-byte LE length + header + `data_len` bytes (0x3f each: finite values).
 * Caller frees. */
static uint8_t *mk(const char *header, size_t data_len, size_t *len)
{
    size_t n = strlen(header);
    uint8_t *p = malloc(8 + n + data_len + 1);

    assert_non_null(p);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(p + 8, header, n);
    memset(p + 8 + n, 0x3f, data_len);
    *len = 8 + n + data_len;
    return p;
}

static const struct {
    const char *name;
    const char *header;
    size_t data_len;
    int want;
} cases[] = {
    { "one F32 tensor", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24, 0 },
    { "metadata + scalar", "{\"__metadata__\":{\"format\":\"pt\"},\"s\":{\"dtype\":\"F16\",\"shape\":[],"
      "\"data_offsets\":[0,2]}}", 2, 0 },
    { "empty tensor at end", "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
      "\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[4,4]}}", 4, 0 },
    { "no tensors", "{}", 0, 0 },
    { "padded header", "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}    ", 8, 0 },
    { "not JSON", "{\"a\":", 0, FUSION_E_ST_JSON },
    { "JSON array", "[1, 2]", 0, FUSION_E_ST_JSON },
    { "duplicate name", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, FUSION_E_ST_DUP },
    { "empty name", "{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, FUSION_E_ST_DUP },
    { "entry not object", "{\"a\":[1]}", 0, FUSION_E_ST_ENTRY },
    { "dtype missing", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, FUSION_E_ST_ENTRY },
    { "extra key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
      FUSION_E_ST_ENTRY },
    { "dtype I64", "{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, FUSION_E_ST_DTYPE },
    { "dtype number", "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, FUSION_E_ST_ENTRY },
    { "negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, FUSION_E_ST_SHAPE },
    { "real dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, FUSION_E_ST_SHAPE },
    { "nine dims", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
      FUSION_E_ST_SHAPE },
    { "element overflow", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
      "\"data_offsets\":[0,4]}}", 4, FUSION_E_ST_SHAPE },
    { "byte overflow", "{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],"
      "\"data_offsets\":[0,4]}}", 4, FUSION_E_ST_SHAPE },
    { "offsets one int", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, FUSION_E_ST_ENTRY },
    { "offsets reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
      FUSION_E_ST_OFFSETS },
    { "offsets past end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 4,
      FUSION_E_ST_OFFSETS },
    { "negative offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,4]}}", 4,
      FUSION_E_ST_OFFSETS },
    { "size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, FUSION_E_ST_SIZE },
    { "gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, FUSION_E_ST_LAYOUT },
    { "overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, FUSION_E_ST_LAYOUT },
    { "not from 0", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, FUSION_E_ST_LAYOUT },
    { "trailing bytes", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 5,
      FUSION_E_ST_TRAILING },
    { "bytes but no tensors", "{}", 3, FUSION_E_ST_TRAILING },
    { "metadata not strings", "{\"__metadata__\":{\"n\":1}}", 0, FUSION_E_ST_METADATA },
    { "metadata not object", "{\"__metadata__\":\"pt\"}", 0, FUSION_E_ST_METADATA },
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fusion_diag d = { 0 };
        struct safetensors *st = NULL;
        size_t len;
        uint8_t *buf = mk(cases[i].header, cases[i].data_len, &len);
        int got = safetensors_parse(&st, buf, len, &d);

        if (got != cases[i].want)
            fail_msg("%s: got %d (%s), want %d (%s); %s", cases[i].name, got, fusion_err_name(got),
                     cases[i].want, fusion_err_name(cases[i].want), d.msg);
        if (got != 0 && (st != NULL || d.msg[0] == '\0'))
            fail_msg("%s: failure without a message or with an object", cases[i].name);
        safetensors_free(st);
        free(buf);
    }
}

static void test_header_length(void **state)
{
    static const uint8_t short_file[7] = { 2, 0, 0, 0, 0, 0, 0 };
    struct safetensors *st = NULL;
    struct fusion_diag d = { 0 };
    size_t len;
    uint8_t *buf = mk("{}", 0, &len);

    (void)state;
    assert_int_equal(safetensors_parse(&st, short_file, sizeof(short_file), &d), FUSION_E_ST_SHORT);
    buf[0] = 3;  /* claims one byte more than the file has */
    assert_int_equal(safetensors_parse(&st, buf, len, &d), FUSION_E_ST_HEADER_LEN);
    buf[0] = 1;
    assert_int_equal(safetensors_parse(&st, buf, len, &d), FUSION_E_ST_HEADER_LEN);
    buf[0] = 2;
    buf[3] = 0x07;  /* 2 + 0x07000000 > 100 MB cap */
    assert_int_equal(safetensors_parse(&st, buf, len, &d), FUSION_E_ST_HEADER_LEN);
    buf[3] = 0;
    buf[7] = 0x80;  /* 2^63: must not wrap when added to 8 */
    assert_int_equal(safetensors_parse(&st, buf, len, &d), FUSION_E_ST_HEADER_LEN);
    assert_null(st);
    free(buf);
}

static const char *fixtures(void)
{
    const char *f = getenv("PLORA_FIXTURES");
    if (f == NULL)
        fail_msg("PLORA_FIXTURES is not set");
    return f;
}

static void fixture_path(char *out, size_t n, const char *adapter)
{
    snprintf(out, n, "%s/peft/%s/adapter_model.safetensors", fixtures(), adapter);
}

/* Reads the whole file; caller frees. */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p;
    long n;

    if (f == NULL)
        fail_msg("missing fixture %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc((size_t)n);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void test_fixtures(void **state)
{
    static const struct { const char *dir; size_t tensors; size_t header; const char *first; } fx[] = {
        { "gpt2-c_attn-r8", 25, 3120, "base_model.model.score.weight" },
        { "distilbert-imdb-r8", 28, 3840, "base_model.model.classifier.bias" },
        { "distilbert-emotion-r8", 28, 3848, "base_model.model.classifier.bias" },
    };
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        char path[1024];
        struct safetensors *st = NULL;
        struct fusion_diag d = { 0 };
        size_t len;
        const uint8_t *bytes;

        fixture_path(path, sizeof(path), fx[i].dir);
        if (safetensors_open(&st, path, &d) != 0)
            fail_msg("%s: %s", path, d.msg);
        assert_int_equal(safetensors_count(st), fx[i].tensors);
        assert_int_equal(safetensors_header_len(st), fx[i].header);
        assert_string_equal(safetensors_at(st, 0)->name, fx[i].first);
        assert_string_equal(safetensors_metadata(st, "format"), "pt");
        assert_null(safetensors_metadata(st, "nope"));
        bytes = safetensors_bytes(st, &len);
        for (size_t k = 0; k < safetensors_count(st); k++) {
            const struct safetensors_tensor *t = safetensors_at(st, k);
            assert_ptr_equal(safetensors_find(st, t->name), t);
            assert_ptr_equal(t->data, bytes + 8 + fx[i].header + t->begin);
            assert_int_equal(t->dtype, SAFETENSORS_F32);
            if (k > 0)
                assert_true(strcmp(safetensors_at(st, k - 1)->name, t->name) < 0);
        }
        assert_null(safetensors_find(st, "base_model.model.nope"));
        safetensors_free(st);
    }
}

/* Every prefix of the gpt2 file up to the end of its header + 64 bytes, and
 * a sample of longer ones, must be rejected; so must every flip of a bit in
 * the length field. */
static void test_truncated_and_flipped(void **state)
{
    char path[1024];
    size_t len, hdr;
    uint8_t *buf;

    (void)state;
    fixture_path(path, sizeof(path), "gpt2-c_attn-r8");
    buf = slurp(path, &len);
    hdr = 8 + 3120;
    for (size_t n = 0; n < len; n = n < hdr + 64 ? n + 1 : n + 4099) {
        struct safetensors *st = NULL;
        if (safetensors_parse(&st, buf, n, NULL) == 0)
            fail_msg("prefix of %zu of %zu bytes accepted", n, len);
    }
    for (int bit = 0; bit < 64; bit++) {
        struct safetensors *st = NULL;
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (safetensors_parse(&st, buf, len, NULL) == 0)
            fail_msg("flip of length bit %d accepted", bit);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* one digit of a data offset changed: layout or size must break */
    static const char needle[] = "[18432,43008]";
    char *p = NULL;
    for (size_t i = 8; i + sizeof(needle) - 1 < hdr && p == NULL; i++)
        if (memcmp(buf + i, needle, sizeof(needle) - 1) == 0)
            p = (char *)buf + i;
    assert_non_null(p);
    p[5] = '6';  /* [18436,43008): 24572 bytes for [8, 768] F32 */
    {
        struct safetensors *st = NULL;
        struct fusion_diag d = { 0 };
        int rc = safetensors_parse(&st, buf, len, &d);
        assert_int_equal(rc, FUSION_E_ST_SIZE);
        assert_non_null(strstr(d.msg, "lora_A"));
    }
    free(buf);
}

static void test_values(void **state)
{
    /* F16 [1, -2, 65504, 2^-24], BF16 [1, 3.140625], F64 [0.1] */
    static const char header[] = "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]},"
        "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[12,20]}}";
    static const uint8_t data[20] = { 0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00,
                                      0x80, 0x3f, 0x49, 0x40,
                                      0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0x3f };
    size_t len;
    uint8_t *buf = mk(header, sizeof(data), &len);
    struct safetensors *st = NULL;
    struct fusion_diag d = { 0 };
    float f[4];
    double x[4];

    (void)state;
    memcpy(buf + len - sizeof(data), data, sizeof(data));
    if (safetensors_parse(&st, buf, len, &d) != 0)
        fail_msg("%s", d.msg);
    assert_int_equal(safetensors_tensor_to_f32(safetensors_find(st, "h"), f, 4), 0);
    assert_true(f[0] == 1.0f && f[1] == -2.0f && f[2] == 65504.0f && f[3] == ldexpf(1, -24));
    assert_int_equal(safetensors_tensor_to_f64(safetensors_find(st, "b"), x, 2), 0);
    assert_true(x[0] == 1.0 && x[1] == 3.140625);
    assert_int_equal(safetensors_tensor_to_f64(safetensors_find(st, "d"), x, 1), 0);
    assert_true(x[0] == 0.1);
    assert_int_equal(safetensors_tensor_to_f64(safetensors_find(st, "d"), x, 2), FUSION_E_ARG);
    assert_int_equal(safetensors_tensor_range_f64(safetensors_find(st, "h"), 2, x, 2), 0);
    assert_true(x[0] == 65504.0 && x[1] == ldexp(1, -24));
    assert_int_equal(safetensors_tensor_range_f64(safetensors_find(st, "h"), 3, x, 2), FUSION_E_ARG);
    safetensors_free(st);
    free(buf);
}

static void test_half(void **state)
{
    static const struct { uint16_t h; float f; } f16[] = {
        { 0x3c00, 1.0f }, { 0xc000, -2.0f }, { 0x7bff, 65504.0f }, { 0x0400, 6.103515625e-05f },
        { 0x0001, 5.9604644775390625e-08f }, { 0x03ff, 6.0975551605224609e-05f },
        { 0x8000, -0.0f }, { 0x3555, 0.333251953125f },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(f16) / sizeof(f16[0]); i++) {
        assert_true(half_f16_to_f32(f16[i].h) == f16[i].f);
        assert_int_equal(half_f32_to_f16(f16[i].f), f16[i].h);
    }
    assert_true(isinf(half_f16_to_f32(0x7c00)) && half_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(half_f16_to_f32(0x7e00)) && isnan(half_f16_to_f32(0x7c01)));
    /* every finite F16 survives F16 -> F32 -> F16; NaNs stay NaN */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = half_f16_to_f32((uint16_t)h);
        if (isnan(f))
            assert_true(isnan(half_f16_to_f32(half_f32_to_f16(f))));
        else if (half_f32_to_f16(f) != h)
            fail_msg("F16 0x%04x -> %g -> 0x%04x", h, (double)f, half_f32_to_f16(f));
        float b = half_bf16_to_f32((uint16_t)h);
        if (!isnan(b) && half_f32_to_bf16(b) != h)
            fail_msg("BF16 0x%04x -> %g -> 0x%04x", h, (double)b, half_f32_to_bf16(b));
    }
    /* rounding: ties to even, overflow to inf, underflow to 0 */
    assert_int_equal(half_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);
    assert_int_equal(half_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02);
    assert_int_equal(half_f32_to_f16(65519.0f), 0x7bff);
    assert_int_equal(half_f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(half_f32_to_f16(ldexpf(1, -25)), 0x0000);
    assert_int_equal(half_f32_to_f16(ldexpf(1.5f, -25)), 0x0001);
    assert_int_equal(half_f32_to_f16(-INFINITY), 0xfc00);
    assert_true((half_f32_to_f16(NAN) & 0x7fff) > 0x7c00);
    assert_int_equal(half_f32_to_bf16(1.0f + ldexpf(1, -8)), 0x3f80);
    assert_int_equal(half_f32_to_bf16(1.0f + 3 * ldexpf(1, -8)), 0x3f82);
    assert_int_equal(half_f32_to_bf16(3.4e38f), 0x7f80);
    assert_true((half_f32_to_bf16(NAN) & 0x7fff) > 0x7f80);
}

static void test_dtype_names(void **state)
{
    enum safetensors_dtype t;

    (void)state;
    assert_int_equal(safetensors_dtype_parse("BF16", &t), 0);
    assert_int_equal(t, SAFETENSORS_BF16);
    assert_int_equal(safetensors_dtype_size(t), 2);
    assert_string_equal(safetensors_dtype_name(SAFETENSORS_F64), "F64");
    assert_int_equal(safetensors_dtype_parse("f32", &t), FUSION_E_ST_DTYPE);
    assert_int_equal(safetensors_dtype_size((enum safetensors_dtype)99), 0);
}

static void test_open_errors(void **state)
{
    struct safetensors *st = NULL;
    struct fusion_diag d = { 0 };

    (void)state;
    assert_int_equal(safetensors_open(&st, "/nonexistent/x.safetensors", &d), FUSION_E_IO);
    assert_non_null(strstr(d.msg, "/nonexistent/x.safetensors"));
    assert_int_equal(safetensors_open(&st, "/", &d), FUSION_E_IO);
    assert_null(st);
    safetensors_free(NULL);
}

/* Resident pages of this process (statm's second field). */
static long resident_pages(void)
{
    long size = 0, res = -1;
    FILE *f = fopen("/proc/self/statm", "r");

    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld %ld", &size, &res), 2);
    fclose(f);
    return res;
}

/* safetensors_release drops a read tensor's pages from the resident set
 * (16 MiB in two tensors: at least 15 MiB must go) and the values read
 * afterwards are the same (they fault back in from the file). */
static void test_release(void **state)
{
    static const char hdr[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1024,2048],"
        "\"data_offsets\":[0,8388608]},\"b\":{\"dtype\":\"F32\",\"shape\":[2048,1024],"
        "\"data_offsets\":[8388608,16777216]}}";
    char path[] = "/tmp/plora-st-XXXXXX";
    long page = sysconf(_SC_PAGESIZE), before, after;
    struct safetensors *st = NULL;
    struct fusion_diag d = { 0 };
    uint8_t *img;
    size_t len;
    double v[2];
    int fd;

    (void)state;
    img = mk(hdr, 16u << 20, &len);
    assert_true((fd = mkstemp(path)) >= 0);
    assert_int_equal(write(fd, img, len), (ssize_t)len);
    close(fd);
    free(img);
    assert_int_equal(safetensors_open(&st, path, &d), 0);
    for (size_t i = 0; i < 2; i++) {   /* touch every page */
        const struct safetensors_tensor *t = safetensors_at(st, i);
        volatile uint8_t sum = 0;
        for (uint64_t k = 0; k < t->nbytes; k += (uint64_t)page)
            sum = (uint8_t)(sum + t->data[k]);
    }
    before = resident_pages();
    safetensors_release(st, 0, 0, 4u << 20);          /* first half of a */
    after = resident_pages();
    /* the 4 MiB went; the other 12 MiB stayed (statm's counters lag a little) */
    assert_true((before - after) * page >= (3l << 20) && (before - after) * page <= (10l << 20));
    safetensors_release(st, 0, 4u << 20, UINT64_MAX); /* the rest of a: clipped */
    safetensors_release(st, 1, 0, 16u << 20);         /* all of b: clipped */
    safetensors_release(st, 2, 0, 1);                 /* out of range: no-op */
    safetensors_release(st, 1, 8u << 20, 1);          /* past the tensor: no-op */
    safetensors_release(NULL, 0, 0, 1);
    after = resident_pages();
    assert_true((before - after) * page >= (15l << 20));
    for (size_t i = 0; i < 2; i++) {   /* 0x3f3f3f3f as F32, first and last element */
        const struct safetensors_tensor *t = safetensors_at(st, i);
        assert_int_equal(safetensors_tensor_range_f64(t, 0, &v[0], 1), 0);
        assert_int_equal(safetensors_tensor_range_f64(t, t->nelem - 1, &v[1], 1), 0);
        assert_true(v[0] == v[1] && fabs(v[0] - 0.7470588088035583) < 1e-12);
    }
    safetensors_free(st);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_header_length),
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_truncated_and_flipped),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_half),
        cmocka_unit_test(test_dtype_names),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_release),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
