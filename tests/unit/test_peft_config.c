/* tests/unit/test_peft_config.c: adapter_config.json parsing and PEFT's
 * matching rules (rank_pattern / alpha_pattern / target_modules). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "peft_config.h"

static struct peft_config *load_fixture(const char *dir)
{
    const char *f = getenv("PLORA_FIXTURES");
    char path[1024];
    struct peft_config *c = NULL;
    struct fusion_diag d = { 0 };

    if (f == NULL)
        fail_msg("PLORA_FIXTURES is not set");
    snprintf(path, sizeof(path), "%s/peft/%s/adapter_config.json", f, dir);
    if (peft_config_load(&c, path, &d) != 0)
        fail_msg("%s: %s (%s)", path, d.msg, fusion_err_name(d.code));
    return c;
}

static void test_fixtures(void **state)
{
    struct peft_config *g = load_fixture("gpt2-c_attn-r8");
    struct peft_config *i = load_fixture("distilbert-imdb-r8");
    struct peft_config *e = load_fixture("distilbert-emotion-r8");

    (void)state;
    assert_string_equal(g->peft_type, "LORA");
    assert_string_equal(g->base_model, "gpt2");
    assert_int_equal(g->r, 8);
    assert_true(g->lora_alpha == 8.0);
    assert_true(g->fan_in_fan_out);
    assert_false(g->use_rslora);
    assert_int_equal(g->n_target_modules, 1);
    assert_string_equal(g->target_modules[0], "c_attn");
    assert_null(g->modules_to_save);
    assert_string_equal(g->task_type, "SEQ_CLS");
    assert_true(peft_config_targets(g, "transformer.h.0.attn.c_attn"));
    assert_false(peft_config_targets(g, "transformer.h.0.attn.c_proj"));
    assert_false(peft_config_targets(g, "transformer.h.0.attn.xc_attn"));
    assert_true(peft_config_scaling(g, "transformer.h.0.attn.c_attn", 8) == 1.0);

    assert_string_equal(i->base_model, "distilbert-base-uncased");
    assert_true(i->lora_alpha == 16.0);
    assert_false(i->fan_in_fan_out);
    assert_int_equal(i->n_modules_to_save, 2);
    assert_true(peft_config_targets(i, "distilbert.transformer.layer.5.attention.q_lin"));
    assert_true(peft_config_scaling(i, "distilbert.transformer.layer.5.attention.q_lin", 8) == 2.0);

    /* the newer fields are tolerated and still reachable */
    assert_int_equal(e->n_modules_to_save, 4);
    assert_string_equal(e->modules_to_save[3], "score");
    assert_true(json_is_null(json_object_get(e->raw, "arrow_config")));
    assert_string_equal(json_string_value(json_object_get(e->raw, "peft_version")), "0.20.0");
    assert_int_equal(e->n_rank_pattern, 0);
    peft_config_free(g);
    peft_config_free(i);
    peft_config_free(e);
}

#define BASE "\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16,\"target_modules\":[\"q\",\"v\"]"

static const struct { const char *name; const char *json; int want; const char *in_msg; } cases[] = {
    { "minimal", "{" BASE "}", 0, NULL },
    { "nulls", "{" BASE ",\"modules_to_save\":null,\"rank_pattern\":null,\"use_rslora\":null,"
      "\"base_model_name_or_path\":null}", 0, NULL },
    { "regex target", "{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":4,\"target_modules\":\".*\\\\.(q|v)\"}", 0, NULL },
    { "float alpha", "{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":0.5,\"target_modules\":[]}", 0, NULL },
    { "not JSON", "{\"r\":", FUSION_E_PEFT_JSON, "line 1" },
    { "array", "[]", FUSION_E_PEFT_JSON, "not an object" },
    { "duplicate key", "{" BASE ",\"r\":4}", FUSION_E_PEFT_JSON, "duplicate" },
    { "prefix tuning", "{\"peft_type\":\"PREFIX_TUNING\",\"r\":8,\"lora_alpha\":16,\"target_modules\":[]}",
      FUSION_E_PEFT_TYPE, "PREFIX_TUNING" },
    { "IA3", "{\"peft_type\":\"IA3\"}", FUSION_E_PEFT_TYPE, "IA3" },
    { "dora", "{" BASE ",\"use_dora\":true}", FUSION_E_PEFT_TYPE, "use_dora" },
    { "no peft_type", "{\"r\":8,\"lora_alpha\":16,\"target_modules\":[]}", FUSION_E_PEFT_FIELD, "peft_type" },
    { "no r", "{\"peft_type\":\"LORA\",\"lora_alpha\":16,\"target_modules\":[]}", FUSION_E_PEFT_FIELD, "\"r\"" },
    { "r zero", "{\"peft_type\":\"LORA\",\"r\":0,\"lora_alpha\":16,\"target_modules\":[]}",
      FUSION_E_PEFT_FIELD, "\"r\"" },
    { "r fraction", "{\"peft_type\":\"LORA\",\"r\":8.5,\"lora_alpha\":16,\"target_modules\":[]}",
      FUSION_E_PEFT_FIELD, "\"r\"" },
    { "alpha string", "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":\"16\",\"target_modules\":[]}",
      FUSION_E_PEFT_FIELD, "lora_alpha" },
    { "no targets", "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16}", FUSION_E_PEFT_FIELD, "target_modules" },
    { "target not string", "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16,\"target_modules\":[1]}",
      FUSION_E_PEFT_FIELD, "target_modules[0]" },
    { "rslora string", "{" BASE ",\"use_rslora\":\"yes\"}", FUSION_E_PEFT_FIELD, "use_rslora" },
    { "fan_in_fan_out int", "{" BASE ",\"fan_in_fan_out\":1}", FUSION_E_PEFT_FIELD, "fan_in_fan_out" },
    { "base model number", "{" BASE ",\"base_model_name_or_path\":3}", FUSION_E_PEFT_FIELD, "base_model" },
    { "modules_to_save string", "{" BASE ",\"modules_to_save\":\"head\"}", FUSION_E_PEFT_FIELD, "modules_to_save" },
    { "rank_pattern list", "{" BASE ",\"rank_pattern\":[1]}", FUSION_E_PEFT_FIELD, "rank_pattern" },
    { "rank_pattern zero", "{" BASE ",\"rank_pattern\":{\"q\":0}}", FUSION_E_PEFT_FIELD, "rank_pattern[\"q\"]" },
    { "alpha_pattern string", "{" BASE ",\"alpha_pattern\":{\"q\":\"x\"}}", FUSION_E_PEFT_FIELD, "alpha_pattern" },
    { "bad regex", "{" BASE ",\"rank_pattern\":{\"q(\":4}}", FUSION_E_PEFT_REGEX, "q(" },
    { "stacked quantifiers", "{" BASE ",\"rank_pattern\":{\"u++++\":4}}", FUSION_E_PEFT_REGEX, "follows" },
    { "backreference", "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16,\"target_modules\":\"(a)\\\\1\"}",
      FUSION_E_PEFT_REGEX, "backreference" },
    { "repetition blow-up", "{" BASE ",\"alpha_pattern\":{\"(a{8}){16}\":4}}", FUSION_E_PEFT_REGEX, "64 copies" },
    { "nine quantifiers", "{" BASE ",\"rank_pattern\":{\"a*b*c*d*e*f*g*h*i*\":4}}", FUSION_E_PEFT_REGEX, "8 quant" },
    { "long pattern ok", "{" BASE ",\"rank_pattern\":{\"(?:x|y)\\\\.layers\\\\.\\\\d{1,3}\\\\.q\":4}}", 0, NULL },
    { "bad target regex", "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16,\"target_modules\":\"[q\"}",
      FUSION_E_PEFT_REGEX, "target_modules" },
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct peft_config *c = NULL;
        struct fusion_diag d = { 0 };
        int got = peft_config_parse(&c, cases[i].json, strlen(cases[i].json), &d);

        if (got != cases[i].want)
            fail_msg("%s: got %s, want %s; %s", cases[i].name, fusion_err_name(got),
                     fusion_err_name(cases[i].want), d.msg);
        if (cases[i].in_msg != NULL && strstr(d.msg, cases[i].in_msg) == NULL)
            fail_msg("%s: message \"%s\" does not mention %s", cases[i].name, d.msg, cases[i].in_msg);
        if ((got == 0) != (c != NULL))
            fail_msg("%s: object/return mismatch", cases[i].name);
        peft_config_free(c);
    }
}

/* PEFT's get_pattern_key: first key K (file order) with re.match("(.*\.)?(K)$"). */
static void test_patterns(void **state)
{
    static const char json[] = "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16,\"use_rslora\":true,"
        "\"target_modules\":[\"q_lin\",\"v_lin\",\"attn.c_attn\"],"
        "\"rank_pattern\":{\"layer\\\\.0\\\\.attention\\\\.q_lin\":4,\"v_lin\":2,\"layer.\\\\d+.attention.q_lin\":16},"
        "\"alpha_pattern\":{\"q_lin\":32.5}}";
    static const struct { const char *module; unsigned r; double alpha; bool target; } want[] = {
        { "distilbert.transformer.layer.0.attention.q_lin", 4, 32.5, true },   /* first key wins */
        { "distilbert.transformer.layer.1.attention.q_lin", 16, 32.5, true },  /* \d+ */
        { "distilbert.transformer.layer.11.attention.v_lin", 2, 16, true },
        { "v_lin", 2, 16, true },                                             /* (.*\.)? may be empty */
        { "distilbert.transformer.layer.1.attention.xv_lin", 8, 16, false },  /* suffix at a dot only */
        { "distilbert.transformer.layer.1.attention.q_lin.base", 8, 16, false },  /* $ anchored */
        { "transformer.h.0.attn.c_attn", 8, 16, true },                       /* dotted list entry */
        { "transformer.h.0.xattn.c_attn", 8, 16, false },
    };
    struct peft_config *c = NULL;
    struct fusion_diag d = { 0 };

    (void)state;
    if (peft_config_parse(&c, json, strlen(json), &d) != 0)
        fail_msg("%s", d.msg);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        unsigned r = peft_config_module_rank(c, want[i].module);
        double a = peft_config_module_alpha(c, want[i].module);
        if (r != want[i].r || a != want[i].alpha || peft_config_targets(c, want[i].module) != want[i].target)
            fail_msg("%s: r %u alpha %g target %d, want %u %g %d", want[i].module, r, a,
                     peft_config_targets(c, want[i].module), want[i].r, want[i].alpha, want[i].target);
    }
    /* rslora: alpha / sqrt(r) */
    assert_true(fabs(peft_config_scaling(c, "m.v_lin", 2) - 16 / sqrt(2.0)) < 1e-15);
    assert_true(fabs(peft_config_scaling(c, "m.q_lin", 4) - 32.5 / 2) < 1e-15);
    peft_config_free(c);
}

/* target_modules as a string: full match, as PEFT's re.fullmatch. */
static void test_target_regex(void **state)
{
    static const char json[] = "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":8,"
        "\"target_modules\":\".*\\\\.(?:q|v)_proj\"}";
    static const char all[] = "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":8,\"target_modules\":\"all-linear\"}";
    struct peft_config *c = NULL;

    (void)state;
    assert_int_equal(peft_config_parse(&c, json, strlen(json), NULL), 0);
    assert_string_equal(c->target_regex, ".*\\.(?:q|v)_proj");
    assert_true(peft_config_targets(c, "model.layers.0.self_attn.q_proj"));
    assert_false(peft_config_targets(c, "model.layers.0.self_attn.k_proj"));
    assert_false(peft_config_targets(c, "q_proj"));                      /* needs the dot */
    assert_false(peft_config_targets(c, "model.layers.0.self_attn.q_proj.x"));
    peft_config_free(c);
    assert_int_equal(peft_config_parse(&c, all, strlen(all), NULL), 0);
    assert_true(peft_config_targets(c, "anything.at.all"));
    peft_config_free(c);
}

static void test_load_errors(void **state)
{
    struct peft_config *c = NULL;
    struct fusion_diag d = { 0 };
    char big[64];

    (void)state;
    assert_int_equal(peft_config_load(&c, "/nonexistent/adapter_config.json", &d), FUSION_E_IO);
    assert_non_null(strstr(d.msg, "/nonexistent/adapter_config.json"));
    memset(big, ' ', sizeof(big));
    assert_int_equal(peft_config_parse(&c, big, (size_t)PEFT_CONFIG_MAX + 1, &d), FUSION_E_PEFT_JSON);
    assert_null(c);
    peft_config_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_target_regex),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
