/* tests/unit/test_adapter.c: LoRA pairing, config cross-checks and the
 * factored Frobenius norm against a dense double reference. */
#include <cblas.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapter.h"
#include "half.h"

static const char *fixture_dir(char *buf, size_t n, const char *name)
{
    const char *f = getenv("PLORA_FIXTURES");

    if (f == NULL)
        fail_msg("PLORA_FIXTURES is not set");
    snprintf(buf, n, "%s/peft/%s", f, name);
    return buf;
}

/* ||s B A||_F by materialising s B A (out x in) in double with BLAS. */
static double dense_frob(const struct adapter_module *m)
{
    double *a = malloc(m->r * m->in * sizeof(double)), *b = malloc(m->out * m->r * sizeof(double));
    double *w = malloc(m->out * m->in * sizeof(double)), sum = 0;

    assert_true(a && b && w);
    assert_int_equal(adapter_module_a_f64(m, a), 0);
    assert_int_equal(adapter_module_b_f64(m, b), 0);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m->out, (int)m->in, (int)m->r,
                m->scaling, b, (int)m->r, a, (int)m->in, 0.0, w, (int)m->in);
    for (size_t i = 0; i < m->out * m->in; i++)
        sum += w[i] * w[i];
    free(a);
    free(b);
    free(w);
    return sqrt(sum);
}

static void test_fixtures(void **state)
{
    static const struct {
        const char *dir; size_t mods; size_t others; uint64_t out, in; double scaling;
        const char *first, *other0;
    } fx[] = {
        { "gpt2-c_attn-r8", 12, 1, 2304, 768, 1.0, "transformer.h.0.attn.c_attn",
          "base_model.model.score.weight" },
        { "distilbert-imdb-r8", 12, 4, 768, 768, 2.0, "distilbert.transformer.layer.0.attention.q_lin",
          "base_model.model.classifier.bias" },
        { "distilbert-emotion-r8", 12, 4, 768, 768, 2.0, "distilbert.transformer.layer.0.attention.q_lin",
          "base_model.model.classifier.bias" },
    };
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        char dir[1024];
        struct adapter *ad = NULL;
        struct fusion_diag d = { 0 };
        double worst = 0;

        if (adapter_open(&ad, fixture_dir(dir, sizeof(dir), fx[i].dir), &d) != 0)
            fail_msg("%s: %s", dir, d.msg);
        assert_int_equal(adapter_module_count(ad), fx[i].mods);
        assert_int_equal(adapter_other_count(ad), fx[i].others);
        assert_string_equal(adapter_module_at(ad, 0)->name, fx[i].first);
        assert_string_equal(adapter_other_at(ad, 0)->name, fx[i].other0);
        for (size_t k = 0; k < adapter_module_count(ad); k++) {
            const struct adapter_module *m = adapter_module_at(ad, k);
            double f, ref;
            assert_ptr_equal(adapter_module_find(ad, m->name), m);
            assert_int_equal(m->r, 8);
            assert_true(m->out == fx[i].out && m->in == fx[i].in);
            assert_true(m->scaling == fx[i].scaling);
            assert_int_equal(m->dtype, SAFETENSORS_F32);
            assert_int_equal(adapter_module_frob(m, &f), 0);
            ref = dense_frob(m);
            assert_true(ref > 0);
            if (fabs(f - ref) / ref > worst)
                worst = fabs(f - ref) / ref;
        }
        if (worst > 1e-9)
            fail_msg("%s: factored vs dense ||dW||_F relative error %g > 1e-9", fx[i].dir, worst);
        assert_null(adapter_module_find(ad, "no.such.module"));
        assert_null(adapter_module_at(ad, 99));
        adapter_free(ad);
    }
}

/* ---- synthetic adapters ------------------------------------------------ */

struct spec {
    const char *name;
    enum safetensors_dtype dtype;
    uint64_t d0, d1;  /* 2-D shapes; d1 == 0 makes it 1-D */
};

static void put_elem(uint8_t *p, enum safetensors_dtype t, double v)
{
    uint16_t h;
    float f = (float)v;

    switch (t) {
    case SAFETENSORS_F16: h = half_f32_to_f16(f); memcpy(p, &h, 2); break;
    case SAFETENSORS_BF16: h = half_f32_to_bf16(f); memcpy(p, &h, 2); break;
    case SAFETENSORS_F64: memcpy(p, &v, 8); break;
    default: memcpy(p, &f, 4); break;
    }
}

/* Build a safetensors image in memory (little-endian host). Values are
 * sin(seed + i) / 4: finite, non-zero, deterministic. Caller frees. */
static uint8_t *build(const struct spec *s, size_t n, size_t *len)
{
    json_t *h = json_object();
    uint64_t off = 0, start[16];
    char *text;
    size_t hl;
    uint8_t *buf;

    for (size_t i = 0; i < n; i++) {
        uint64_t ne = s[i].d0 * (s[i].d1 ? s[i].d1 : 1), nb = ne * safetensors_dtype_size(s[i].dtype);
        json_t *shape = s[i].d1 ? json_pack("[I,I]", (json_int_t)s[i].d0, (json_int_t)s[i].d1)
                                : json_pack("[I]", (json_int_t)s[i].d0);
        json_object_set_new(h, s[i].name, json_pack("{s:s, s:o, s:[I,I]}", "dtype",
                            safetensors_dtype_name(s[i].dtype), "shape", shape,
                            "data_offsets", (json_int_t)off, (json_int_t)(off + nb)));
        start[i] = off;
        off += nb;
    }
    text = json_dumps(h, JSON_COMPACT);
    hl = strlen(text);
    buf = calloc(1, 8 + hl + off);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, text, hl);
    for (size_t i = 0; i < n; i++) {
        size_t w = safetensors_dtype_size(s[i].dtype), ne = s[i].d0 * (s[i].d1 ? s[i].d1 : 1);
        for (size_t k = 0; k < ne; k++)
            put_elem(buf + 8 + hl + start[i] + k * w, s[i].dtype, sin((double)(i * 7 + k)) / 4);
    }
    *len = 8 + hl + off;
    free(text);
    json_decref(h);
    return buf;
}

#define PA(m) "base_model.model." m ".lora_A.weight"
#define PB(m) "base_model.model." m ".lora_B.weight"
#define CFG(r, alpha, extra) "{\"peft_type\":\"LORA\",\"r\":" #r ",\"lora_alpha\":" #alpha \
    ",\"target_modules\":[\"q\",\"v\"]" extra "}"

static const struct {
    const char *name;
    struct spec t[5];
    size_t n;
    const char *cfg;
    int want;
    const char *in_msg;
} cases[] = {
    { "pair + head", { { PA("l.0.q"), SAFETENSORS_F32, 4, 6 }, { PB("l.0.q"), SAFETENSORS_F32, 5, 4 },
      { "base_model.model.head.bias", SAFETENSORS_F32, 3, 0 } }, 3, CFG(4, 8, ""), 0, NULL },
    { "F16 and BF16 pairs", { { PA("l.0.q"), SAFETENSORS_F16, 2, 6 }, { PB("l.0.q"), SAFETENSORS_F16, 5, 2 },
      { PA("l.0.v"), SAFETENSORS_BF16, 2, 3 }, { PB("l.0.v"), SAFETENSORS_BF16, 4, 2 } }, 4,
      CFG(2, 2, ""), 0, NULL },
    { "rank_pattern honoured", { { PA("l.0.q"), SAFETENSORS_F32, 2, 6 }, { PB("l.0.q"), SAFETENSORS_F32, 5, 2 },
      { PA("l.0.v"), SAFETENSORS_F32, 4, 6 }, { PB("l.0.v"), SAFETENSORS_F32, 5, 4 } }, 4,
      CFG(4, 8, ",\"rank_pattern\":{\"q\":2}"), 0, NULL },
    { "rank differs from config", { { PA("l.0.q"), SAFETENSORS_F32, 4, 6 }, { PB("l.0.q"), SAFETENSORS_F32, 5, 4 } },
      2, CFG(8, 8, ""), FUSION_E_ADAPTER_RANK, "rank 4 but the config says 8" },
    { "rank_pattern not matching tensors", { { PA("l.0.q"), SAFETENSORS_F32, 4, 6 },
      { PB("l.0.q"), SAFETENSORS_F32, 5, 4 } }, 2, CFG(4, 8, ",\"rank_pattern\":{\"l.0.q\":2}"),
      FUSION_E_ADAPTER_RANK, "rank_pattern" },
    { "A and B ranks differ", { { PA("l.0.q"), SAFETENSORS_F32, 4, 6 }, { PB("l.0.q"), SAFETENSORS_F32, 5, 3 } },
      2, CFG(4, 8, ""), FUSION_E_ADAPTER_SHAPE, "lora_A has rank 4" },
    { "A is 1-D", { { PA("l.0.q"), SAFETENSORS_F32, 4, 0 }, { PB("l.0.q"), SAFETENSORS_F32, 5, 4 } },
      2, CFG(4, 8, ""), FUSION_E_ADAPTER_SHAPE, "dims" },
    { "dtypes differ", { { PA("l.0.q"), SAFETENSORS_F16, 4, 6 }, { PB("l.0.q"), SAFETENSORS_F32, 5, 4 } },
      2, CFG(4, 8, ""), FUSION_E_ADAPTER_DTYPE, "F16 but lora_B is F32" },
    { "A without B", { { PA("l.0.q"), SAFETENSORS_F32, 4, 6 } }, 1, CFG(4, 8, ""),
      FUSION_E_ADAPTER_UNPAIRED, "l.0.q.lora_A" },
    { "B without A", { { PA("l.0.q"), SAFETENSORS_F32, 4, 6 }, { PB("l.0.q"), SAFETENSORS_F32, 5, 4 },
      { PB("l.1.q"), SAFETENSORS_F32, 5, 4 } }, 3, CFG(4, 8, ""), FUSION_E_ADAPTER_UNPAIRED, "l.1.q.lora_B" },
    { "not a target", { { PA("l.0.k"), SAFETENSORS_F32, 4, 6 }, { PB("l.0.k"), SAFETENSORS_F32, 5, 4 } },
      2, CFG(4, 8, ""), FUSION_E_ADAPTER_TARGET, "\"l.0.k\"" },
    { "embedding LoRA", { { PA("l.0.q"), SAFETENSORS_F32, 4, 6 }, { PB("l.0.q"), SAFETENSORS_F32, 5, 4 },
      { "base_model.model.emb.lora_embedding_A", SAFETENSORS_F32, 4, 6 } }, 3, CFG(4, 8, ""),
      FUSION_E_ADAPTER_UNSUPPORTED, "lora_embedding_A" },
    { "adapter-named key", { { "base_model.model.l.0.q.lora_A.default.weight", SAFETENSORS_F32, 4, 6 } }, 1,
      CFG(4, 8, ""), FUSION_E_ADAPTER_UNSUPPORTED, "default" },
    { "no LoRA at all", { { "base_model.model.head.weight", SAFETENSORS_F32, 4, 6 } }, 1, CFG(4, 8, ""),
      FUSION_E_ADAPTER_EMPTY, "no lora_A" },
};

static int open_case(size_t i, struct adapter **ad, struct fusion_diag *d, uint8_t **buf)
{
    struct safetensors *st = NULL;
    struct peft_config *cfg = NULL;
    size_t len;
    int rc;

    *buf = build(cases[i].t, cases[i].n, &len);
    if ((rc = safetensors_parse(&st, *buf, len, d)) != 0)
        fail_msg("%s: synthetic file rejected: %s", cases[i].name, d->msg);
    if ((rc = peft_config_parse(&cfg, cases[i].cfg, strlen(cases[i].cfg), d)) != 0)
        fail_msg("%s: config rejected: %s", cases[i].name, d->msg);
    return adapter_build(ad, cfg, st, d);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct adapter *ad = NULL;
        struct fusion_diag d = { 0 };
        uint8_t *buf;
        int got = open_case(i, &ad, &d, &buf);

        if (got != cases[i].want)
            fail_msg("%s: got %s, want %s; %s", cases[i].name, fusion_err_name(got),
                     fusion_err_name(cases[i].want), d.msg);
        if (cases[i].in_msg != NULL && strstr(d.msg, cases[i].in_msg) == NULL)
            fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].name, d.msg, cases[i].in_msg);
        if ((got == 0) != (ad != NULL))
            fail_msg("%s: object/return mismatch", cases[i].name);
        adapter_free(ad);
        free(buf);
    }
}

/* Half-precision adapters: values come back exactly as stored, and the
 * factored norm still matches the dense one; rank_pattern / rslora scaling. */
static void test_half_and_scaling(void **state)
{
    struct adapter *ad = NULL;
    struct fusion_diag d = { 0 };
    const struct adapter_module *q, *v;
    uint8_t *buf;
    float a32[12];
    double a64[12], f;

    (void)state;
    assert_int_equal(open_case(1, &ad, &d, &buf), 0);
    q = adapter_module_find(ad, "l.0.q");
    v = adapter_module_find(ad, "l.0.v");
    assert_non_null(q);
    assert_non_null(v);
    assert_int_equal(q->dtype, SAFETENSORS_F16);
    assert_int_equal(v->dtype, SAFETENSORS_BF16);
    assert_int_equal(adapter_module_a_f32(q, a32), 0);
    assert_int_equal(adapter_module_a_f64(q, a64), 0);
    for (size_t k = 0; k < 12; k++) {
        assert_true(a32[k] == (float)a64[k]);
        assert_true(a32[k] == half_f16_to_f32(half_f32_to_f16((float)(sin((double)k) / 4))));
    }
    assert_int_equal(adapter_module_frob(v, &f), 0);
    assert_true(fabs(f - dense_frob(v)) <= 1e-12 * f);
    assert_true(q->scaling == 1.0 && q->alpha == 2.0);
    adapter_free(ad);
    free(buf);

    assert_int_equal(open_case(2, &ad, &d, &buf), 0);
    q = adapter_module_find(ad, "l.0.q");
    v = adapter_module_find(ad, "l.0.v");
    assert_true(q->r == 2 && q->scaling == 4.0);
    assert_true(v->r == 4 && v->scaling == 2.0);
    assert_int_equal(adapter_module_count(ad), 2);
    assert_int_equal(adapter_other_count(ad), 0);
    adapter_free(ad);
    free(buf);
}

static void test_open_errors(void **state)
{
    struct adapter *ad = NULL;
    struct fusion_diag d = { 0 };

    (void)state;
    assert_int_equal(adapter_open(&ad, "/nonexistent-dir", &d), FUSION_E_IO);
    assert_non_null(strstr(d.msg, "/nonexistent-dir/adapter_config.json"));
    assert_null(ad);
    adapter_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_half_and_scaling),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
