/* tests/unit/test_manifest.c: plora.yml reader and writer against the
 * prototype's own manifests and its validator's verdicts
 * (reference/manifests/validation/results.json). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "manifest.h"

static const char *fixtures(void)
{
    const char *f = getenv("PLORA_FIXTURES");
    if (f == NULL)
        fail_msg("PLORA_FIXTURES is not set");
    return f;
}

/* Whole file into a malloc'd NUL-terminated buffer; a missing fixture fails. */
static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long len;

    if (f == NULL)
        fail_msg("fixture %s: %s", path, strerror(errno));
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    assert_true(len >= 0);
    rewind(f);
    buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    *n = (size_t)len;
    return buf;
}

static char *fixture_text(const char *rel, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/reference/%s", fixtures(), rel);
    return slurp(path, n);
}

/* The prototype's verdict on each validation file, and what plorad says.
 * `field` must appear in plorad's message for a rejected case. Where plorad
 * and the prototype differ, `deviation` says why (none in this table: plorad
 * accepts and rejects exactly the same files). */
static const struct {
    const char *file;
    int want;             /* 0 or the FUSION_E_ code plorad returns */
    const char *field;    /* substring of d.msg (rejections) */
    bool emit_equal;      /* plorad's writer reproduces the file byte for byte */
} validation[] = {
    { "ok_base.yml", 0, NULL, true },
    { "extra_top_level_key.yml", 0, NULL, false },
    { "extra_signer_key.yml", 0, NULL, false },
    { "missing_train_meta.yml", FUSION_E_MANIFEST_MISSING, "train_meta", false },
    { "missing_compatibility.yml", FUSION_E_MANIFEST_MISSING, "compatibility", false },
    { "schema_version_1.yml", FUSION_E_MANIFEST_VALUE, "schema_version: must be 0, got 1", false },
    { "peft_format_LORA_upper.yml", FUSION_E_MANIFEST_VALUE, "peft_format: 'LORA'", false },
    { "peft_format_ia3.yml", 0, NULL, true },
    { "sha256_uppercase.yml", FUSION_E_MANIFEST_VALUE, "artifacts.sha256: 'BC77A4203F29", false },
    { "sha256_63_chars.yml", FUSION_E_MANIFEST_VALUE, "artifacts.sha256", false },
    { "size_bytes_0.yml", FUSION_E_MANIFEST_VALUE, "artifacts.size_bytes: 0 is below 1", false },
    { "r_0.yml", FUSION_E_MANIFEST_VALUE, "lora.r: 0 is below 1", false },
    { "alpha_float_16.0.yml", 0, NULL, false },
    { "alpha_float_16.5.yml", FUSION_E_MANIFEST_VALUE, "lora.alpha: expected an integer, got 16.5", false },
    { "alpha_string_16.yml", 0, NULL, false },
    { "dropout_1.5.yml", FUSION_E_MANIFEST_VALUE, "lora.dropout: 1.5 is above 1", false },
    { "poisoning_score_negative.yml", FUSION_E_MANIFEST_VALUE,
      "safety.poisoning_score: -0.1 is below 0", false },
    { "delta_ppl_mismatch.yml", FUSION_E_MANIFEST_VALUE,
      "metrics.delta_ppl: -4.3001 does not match val_ppl_after - val_ppl_before (-4.300000000000001)",
      false },
    { "delta_ppl_within_1e-6.yml", 0, NULL, true },
    { "ppl_zero_placeholders_any_delta.yml", 0, NULL, true },
    { "algo_ED25519-SHA256.yml", 0, NULL, true },
    { "algo_none.yml", 0, NULL, true },
    { "algo_empty.yml", 0, NULL, true },
    { "algo_ed25519_lower.yml", FUSION_E_MANIFEST_VALUE, "signer.algo: 'ed25519'", false },
    { "algo_RSA-PSS-SHA512.yml", FUSION_E_MANIFEST_VALUE, "signer.algo: 'RSA-PSS-SHA512'", false },
    { "signature_b64_not_base64.yml", 0, NULL, true },
    { "val_chrf_null.yml", 0, NULL, false },
    { "target_modules_empty.yml", 0, NULL, true },
    { "timestamp_string_digits.yml", 0, NULL, false },
};

static void check_emit_equal(const char *name, const struct manifest *m, const char *text,
                             size_t n)
{
    struct fusion_diag d;
    char *out = NULL;
    size_t on = 0;

    if (manifest_emit(m, &out, &on, &d) != 0)
        fail_msg("%s: emit failed: %s", name, d.msg);
    if (on != n || memcmp(out, text, n) != 0) {
        size_t i = 0;
        while (i < on && i < n && out[i] == text[i])
            i++;
        fail_msg("%s: emitted text differs from the prototype's at byte %zu: ...%.40s",
                 name, i, out + (i > 10 ? i - 10 : 0));
    }
    free(out);
}

static void test_validation_table(void **state)
{
    size_t n, tables = sizeof(validation) / sizeof(validation[0]);
    char *results = fixture_text("manifests/validation/results.json", &n);
    json_error_t je;
    json_t *arr = json_loadb(results, n, 0, &je);

    (void)state;
    if (arr == NULL || !json_is_array(arr))
        fail_msg("results.json: %s", je.text);
    /* Every prototype case is in the table, with the prototype's verdict. */
    assert_int_equal(json_array_size(arr), tables);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *c = json_array_get(arr, i);
        const char *file = json_string_value(json_object_get(c, "file"));
        bool accepted = json_is_true(json_object_get(c, "accepted"));
        size_t k = 0;
        while (k < tables && strcmp(validation[k].file, file) != 0)
            k++;
        if (k == tables)
            fail_msg("%s: not in the test table", file);
        if ((validation[k].want == 0) != accepted)
            fail_msg("%s: prototype %s it, table says plorad %s", file,
                     accepted ? "accepts" : "rejects", validation[k].want == 0 ? "accepts" : "rejects");
        if (accepted && json_is_true(json_object_get(c, "dump_equals_input")) != validation[k].emit_equal)
            fail_msg("%s: dump_equals_input disagrees with the table", file);
    }
    json_decref(arr);
    free(results);

    for (size_t k = 0; k < tables; k++) {
        char rel[256], *text;
        struct manifest *m = NULL;
        struct fusion_diag d;
        int rc;

        snprintf(rel, sizeof(rel), "manifests/validation/%s", validation[k].file);
        text = fixture_text(rel, &n);
        rc = manifest_parse(text, n, &m, &d);
        if (rc != validation[k].want)
            fail_msg("%s: got %s, want %s (%s)", validation[k].file, fusion_err_name(rc),
                     fusion_err_name(validation[k].want), d.msg);
        if (rc != 0 && strstr(d.msg, validation[k].field) == NULL)
            fail_msg("%s: message \"%s\" does not name \"%s\"", validation[k].file, d.msg,
                     validation[k].field);
        if (rc == 0 && validation[k].emit_equal)
            check_emit_equal(validation[k].file, m, text, n);
        if (rc != 0)
            assert_null(m);
        manifest_free(m);
        free(text);
    }
}

/* Every manifest the prototype wrote parses, and plorad writes it back
 * byte for byte (same field order, quoting and float repr as Manifest.dump). */
static void test_reference_manifests(void **state)
{
    static const char *const files[] = {
        "manifests/unsigned/gpt2-c_attn-r8/plora.yml",
        "manifests/unsigned/distilbert-imdb-r8/plora.yml",
        "manifests/unsigned/distilbert-emotion-r8/plora.yml",
        "manifests/rsa_sign_plasmid/gpt2-c_attn-r8/plora.yml",
        "manifests/rsa_sign_plasmid/distilbert-imdb-r8/plora.yml",
        "manifests/rsa_sign_plasmid/distilbert-emotion-r8/plora.yml",
        "manifests/rsa_train_task_sign/gpt2-c_attn-r8/plora.yml",
        "manifests/rsa_train_task_sign/distilbert-imdb-r8/plora.yml",
        "manifests/rsa_train_task_sign/distilbert-emotion-r8/plora.yml",
        "manifests/ed25519_sign_plasmid/gpt2-c_attn-r8/plora.yml",
        "manifests/ed25519_train_task_sign/gpt2-c_attn-r8/plora.yml",
        "quorum/gate_adapter/plora.yml",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        size_t n;
        char *text = fixture_text(files[i], &n);
        struct manifest *m = NULL;
        struct fusion_diag d;

        if (manifest_parse(text, n, &m, &d) != 0)
            fail_msg("%s: %s", files[i], d.msg);
        assert_false(m->has_plorad);
        assert_int_equal(strlen(m->artifacts.sha256), 64);
        check_emit_equal(files[i], m, text, n);
        manifest_free(m);
        free(text);
    }
}

/* Values read from the emotion manifest, field by field. */
static void test_fields(void **state)
{
    size_t n;
    char *text = fixture_text("manifests/rsa_sign_plasmid/distilbert-emotion-r8/plora.yml", &n);
    struct manifest *m = NULL;
    struct fusion_diag d;

    (void)state;
    assert_int_equal(manifest_parse(text, n, &m, &d), 0);
    assert_string_equal(m->plasmid_id, "distilbert-emotion-r8-1795415307");
    assert_string_equal(m->domain, "distilbert-emotion-r8");
    assert_string_equal(m->base_model, "distilbert-base-uncased");
    assert_int_equal(m->lora.r, 8);
    assert_int_equal(m->lora.alpha, 16);
    assert_true(m->lora.dropout == 0.1);
    assert_int_equal(m->lora.n_target_modules, 2);
    assert_string_equal(m->lora.target_modules[1], "v_lin");
    assert_string_equal(m->artifacts.sha256,
                        "bc77a4203f29356efecb1e0f4c30072145adfd8b959a4ce1c5cbac7c1e796011");
    assert_int_equal(m->artifacts.size_bytes, 2974504);
    assert_int_equal(m->train_meta.timestamp_unix, 1795415307);
    assert_true(m->metrics.delta_ppl == -4.300000000000001);
    assert_true(m->metrics.has_val_em && m->metrics.val_em == 0.72);
    assert_false(m->metrics.has_val_chrf);
    assert_string_equal(m->signer.algo, "RSA-PSS-SHA256");
    assert_int_equal(strlen(m->signer.signature_b64), 512);
    assert_string_equal(m->compatibility.transformers, ">=4.42");
    manifest_free(m);
    free(text);
}

/* Replace the first `from` in `base` by `to` (new malloc'd string). */
static char *mutate(const char *base, const char *from, const char *to)
{
    const char *at = strstr(base, from);
    size_t n = strlen(base) - strlen(from) + strlen(to);
    char *out = malloc(n + 1);

    if (at == NULL)
        fail_msg("mutation anchor \"%s\" not found", from);
    assert_non_null(out);
    snprintf(out, n + 1, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
    return out;
}

/* plorad's own rules where the prototype is lax or unsafe, and the YAML
 * features a manifest may not use. Each row: one edit of ok_base.yml. */
static void test_plorad_strictness(void **state)
{
    static const struct {
        const char *name, *from, *to;
        int want;
        const char *field;
    } cases[] = {
        /* deviations from the prototype (it accepts these) */
        { "alias", "domain: distilbert-emotion-r8\n", "domain: &d distilbert-emotion-r8\nx: *d\n",
          FUSION_E_MANIFEST_YAML_FEATURE, "alias" },
        { "duplicate key", "domain: distilbert-emotion-r8\n",
          "domain: distilbert-emotion-r8\ndomain: other\n", FUSION_E_MANIFEST_YAML_FEATURE,
          "duplicate mapping key 'domain'" },
        { "nan metric", "  val_ppl_before: 12.5\n", "  val_ppl_before: .nan\n",
          FUSION_E_MANIFEST_VALUE, "metrics.val_ppl_before: expected a finite number" },
        { "inf score", "  poisoning_score: 0.0\n", "  poisoning_score: .inf\n",
          FUSION_E_MANIFEST_VALUE, "safety.poisoning_score" },
        { "bool as int", "  r: 8\n", "  r: yes\n", FUSION_E_MANIFEST_TYPE,
          "lora.r: expected a number, got bool" },
        { "path in filename", "  filename: adapter_model.safetensors\n",
          "  filename: ../../etc/passwd\n", FUSION_E_MANIFEST_VALUE, "artifacts.filename" },
        { "custom tag", "domain: distilbert-emotion-r8\n", "domain: !!python/name:os.system x\n",
          FUSION_E_MANIFEST_YAML_FEATURE, "tag" },
        { "two documents", "schema_version: 0\n", "a: 1\n---\nschema_version: 0\n",
          FUSION_E_MANIFEST_YAML_FEATURE, "more than one YAML document" },
        /* the prototype rejects these too */
        { "int as string", "plasmid_id: distilbert-emotion-r8-1795415307\n", "plasmid_id: 123\n",
          FUSION_E_MANIFEST_TYPE, "plasmid_id: expected a string, got int 123" },
        { "date as string", "  dataset_id: distilbert-emotion-r8\n", "  dataset_id: 2026-11-23\n",
          FUSION_E_MANIFEST_TYPE, "train_meta.dataset_id: expected a string, got timestamp" },
        { "list not mapping", "safety:\n  licence: research\n  poisoning_score: 0.0\n",
          "safety: [1, 2]\n", FUSION_E_MANIFEST_TYPE, "safety: expected a mapping, got sequence" },
        { "module not string", "  - q_lin\n", "  - [q_lin]\n", FUSION_E_MANIFEST_TYPE,
          "lora.target_modules" },
        { "broken yaml", "lora:\n", "lora: [\n", FUSION_E_MANIFEST_YAML, "line" },
        { "null field", "base_model: distilbert-base-uncased\n", "base_model: ~\n",
          FUSION_E_MANIFEST_TYPE, "base_model: expected a string, got null" },
        { "plorad unknown field", "compatibility:\n",
          "plorad:\n  format: 1\n  config_sha256: '0000000000000000000000000000000000000000000000000000000000000000'\n  signatures: []\n  kld_esp: 1\ncompatibility:\n",
          FUSION_E_MANIFEST_VALUE, "kld_esp" },
        { "plorad bad format", "compatibility:\n",
          "plorad:\n  format: 2\n  config_sha256: '0000000000000000000000000000000000000000000000000000000000000000'\n  signatures: []\ncompatibility:\n",
          FUSION_E_MANIFEST_VALUE, "plorad.format: 2 is not 1" },
        { "plorad bad key id", "compatibility:\n",
          "plorad:\n  format: 1\n  config_sha256: '0000000000000000000000000000000000000000000000000000000000000000'\n  signatures:\n  - key_id: abc\n    algo: ED25519\n    sig_b64: AAAA\ncompatibility:\n",
          FUSION_E_MANIFEST_VALUE, "key_id: 'abc'" },
        { "plorad negative kld", "compatibility:\n",
          "plorad:\n  format: 1\n  config_sha256: '0000000000000000000000000000000000000000000000000000000000000000'\n  kld_eps: -1\n  signatures: []\ncompatibility:\n",
          FUSION_E_MANIFEST_VALUE, "plorad.kld_eps: -1 is below 0" },
    };
    size_t n;
    char *base = fixture_text("manifests/validation/ok_base.yml", &n);

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = mutate(base, cases[i].from, cases[i].to);
        struct manifest *m = NULL;
        struct fusion_diag d;
        int rc = manifest_parse(text, strlen(text), &m, &d);

        if (rc != cases[i].want)
            fail_msg("%s: got %s, want %s (%s)", cases[i].name, fusion_err_name(rc),
                     fusion_err_name(cases[i].want), d.msg);
        if (strstr(d.msg, cases[i].field) == NULL)
            fail_msg("%s: message \"%s\" does not name \"%s\"", cases[i].name, d.msg,
                     cases[i].field);
        assert_null(m);
        free(text);
    }
    free(base);
}

/* Caps: size, depth, scalar length, top level not a mapping. */
static void test_limits(void **state)
{
    size_t big = MANIFEST_MAX_BYTES + 1, deep = 4 * MANIFEST_MAX_DEPTH;
    char *buf = malloc(big + 1);
    struct manifest *m = NULL;
    struct fusion_diag d;

    (void)state;
    assert_non_null(buf);
    memset(buf, 'a', big);
    buf[big] = '\0';
    assert_int_equal(manifest_parse(buf, big, &m, &d), FUSION_E_MANIFEST_LIMIT);
    memcpy(buf, "x: ", 3);   /* one scalar longer than MANIFEST_MAX_STR */
    assert_int_equal(manifest_parse(buf, MANIFEST_MAX_STR + 100, &m, &d), FUSION_E_MANIFEST_LIMIT);
    for (size_t i = 0; i < deep; i++)
        buf[i] = '[';
    assert_int_equal(manifest_parse(buf, deep, &m, &d), FUSION_E_MANIFEST_LIMIT);
    assert_non_null(strstr(d.msg, "nesting deeper"));
    assert_int_equal(manifest_parse("", 0, &m, &d), FUSION_E_MANIFEST_TYPE);
    assert_int_equal(manifest_parse("- a\n", 4, &m, &d), FUSION_E_MANIFEST_TYPE);
    assert_int_equal(manifest_parse("a: \xc3\x28\n", 6, &m, &d), FUSION_E_MANIFEST_YAML);
    assert_null(m);
    free(buf);
}

/* Every truncation of a valid manifest is either refused or, when it only
 * shortens the last scalar, parses; cutting before the last section always
 * fails (a field is missing). No crash, no leak. */
static void test_truncations(void **state)
{
    size_t n;
    char *text = fixture_text("manifests/validation/ok_base.yml", &n);
    size_t last = (size_t)(strstr(text, "compatibility:") - text);

    (void)state;
    for (size_t k = 0; k < n; k++) {
        struct manifest *m = NULL;
        struct fusion_diag d;
        int rc = manifest_parse(text, k, &m, &d);
        if (k <= last && rc == 0)
            fail_msg("prefix of %zu bytes (before compatibility) was accepted", k);
        manifest_free(m);
    }
    free(text);
}

static char *emit_line(const struct manifest *m, const char *key)
{
    struct fusion_diag d;
    char *out = NULL, *line, *end;
    size_t n;

    if (manifest_emit(m, &out, &n, &d) != 0)
        fail_msg("emit: %s", d.msg);
    line = strstr(out, key);
    assert_non_null(line);
    end = strchr(line, '\n');
    line = strndup(line + strlen(key), (size_t)(end - line) - strlen(key));
    free(out);
    return line;
}

/* The writer's floats are Python's repr as PyYAML writes it, and strings are
 * quoted exactly when a plain scalar would read back as something else. */
static void test_writer_forms(void **state)
{
    static const struct { double v; const char *want; } floats[] = {
        { 0.1, "0.1" }, { 0.0, "0.0" }, { -0.0, "-0.0" }, { 12.5, "12.5" }, { 1e16, "1.0e+16" },
        { 1e-05, "1.0e-05" }, { 0.0001, "0.0001" }, { 1.5e-07, "1.5e-07" },
        { 1234567890123456.0, "1234567890123456.0" }, { 123456789012345678.0, "1.2345678901234568e+17" },
        { -4.300000000000001, "-4.300000000000001" }, { 100.0, "100.0" }, { 0.72, "0.72" },
    };
    static const struct { const char *v, *want; } strs[] = {
        { "", "''" }, { ">=4.42", "'>=4.42'" }, { "0.12.0", "0.12.0" }, { "123", "'123'" },
        { "yes", "'yes'" }, { "null", "'null'" }, { "1.5", "'1.5'" }, { "a: b", "'a: b'" },
        { "it's", "it's" }, { "'q", "'''q'" }, { "tab\there", "\"tab\\x09here\"" },
        { "m\xc3\xa9" "dical/\xc3\xbc", "\"m\xc3\xa9" "dical/\xc3\xbc\"" }, { "2026-11-23", "'2026-11-23'" },
        { "~", "'~'" }, { "-x", "'-x'" }, { "x #y", "'x #y'" },
    };
    struct manifest *m = NULL;

    (void)state;
    assert_int_equal(manifest_new(&m), 0);
    m->lora.r = 1, m->lora.alpha = 1, m->artifacts.size_bytes = 1;
    memset(m->artifacts.sha256, 'a', 64);
    assert_int_equal(manifest_set(&m->peft_format, "lora"), 0);
    assert_int_equal(manifest_set(&m->artifacts.filename, "adapter_model.safetensors"), 0);
    m->metrics.has_val_em = true;
    for (size_t i = 0; i < sizeof(floats) / sizeof(floats[0]); i++) {
        char *got;
        m->metrics.val_em = floats[i].v;
        got = emit_line(m, "  val_em: ");
        if (strcmp(got, floats[i].want) != 0)
            fail_msg("float %.17g: got %s, want %s", floats[i].v, got, floats[i].want);
        free(got);
    }
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        char *got, *text = NULL;
        struct manifest *back = NULL;
        struct fusion_diag d;
        size_t n;
        assert_int_equal(manifest_set(&m->plasmid_id, strs[i].v), 0);
        got = emit_line(m, "plasmid_id: ");
        if (strcmp(got, strs[i].want) != 0)
            fail_msg("string \"%s\": got %s, want %s", strs[i].v, got, strs[i].want);
        free(got);
        assert_int_equal(manifest_emit(m, &text, &n, &d), 0);
        if (manifest_parse(text, n, &back, &d) != 0)
            fail_msg("string \"%s\" does not read back: %s", strs[i].v, d.msg);
        assert_string_equal(back->plasmid_id, strs[i].v);
        manifest_free(back);
        free(text);
    }
    manifest_free(m);
}

/* plorad's section: written, read back, written again identically; the
 * prototype's fields are untouched by it. Then the crash-safe file writer. */
static void test_plorad_roundtrip(void **state)
{
    size_t n, n2, n3;
    char *text = fixture_text("manifests/unsigned/gpt2-c_attn-r8/plora.yml", &n);
    char *out = NULL, *out2 = NULL, dir[] = "/tmp/test_manifest.XXXXXX", path[64], *back_text;
    struct manifest *m = NULL, *back = NULL;
    struct fusion_diag d;
    struct stat st;

    (void)state;
    assert_int_equal(manifest_parse(text, n, &m, &d), 0);
    m->has_plorad = true;
    m->plorad.format = MANIFEST_FORMAT;
    memcpy(m->plorad.config_sha256,
           "8111748aeaf2927fa4065a06c30ead8c8a9211a20f2cdb22dfcc1ce60396eca1", 65);
    m->plorad.has_kld_eps = true, m->plorad.kld_eps = 0.01;
    m->plorad.has_fisher = true, m->plorad.fisher = 2.5;
    assert_int_equal(manifest_add_sig(m, "744e86c21f36b8a434bfb631e699b6c20c0f492a5eec5c82e318a387d4d09435",
                                      "RSA-PSS-SHA256", "AAAA", &d), 0);
    assert_int_equal(manifest_add_sig(m, "5e41e2cfec2fadccae4fb4681c64973b1957468977a76c987d3a6c0c0e761a9a",
                                      "ED25519", "BBBB", &d), 0);
    assert_int_equal(manifest_add_sig(m, "nothex", "ED25519", "BBBB", &d), FUSION_E_MANIFEST_VALUE);
    assert_int_equal(manifest_emit(m, &out, &n2, &d), 0);
    /* the prototype's part is unchanged: the old text is a prefix */
    assert_memory_equal(out, text, n);
    assert_non_null(strstr(out, "plorad:\n  format: 1\n"));
    if (manifest_parse(out, n2, &back, &d) != 0)
        fail_msg("plorad section does not read back: %s", d.msg);
    assert_true(back->has_plorad && back->plorad.n_sigs == 2);
    assert_string_equal(back->plorad.sigs[1].algo, "ED25519");
    assert_true(back->plorad.kld_eps == 0.01 && back->plorad.fisher == 2.5);
    assert_int_equal(manifest_emit(back, &out2, &n3, &d), 0);
    assert_int_equal(n2, n3);
    assert_memory_equal(out, out2, n2);

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/plora.yml", dir);
    assert_int_equal(manifest_write(back, path, &d), 0);
    back_text = slurp(path, &n3);
    assert_int_equal(n3, n2);
    assert_memory_equal(back_text, out, n2);
    free(back_text);
    manifest_free(back);
    back = NULL;
    assert_int_equal(manifest_load(path, &back, &d), 0);
    assert_int_equal(back->plorad.n_sigs, 2);
    m->lora.r = 0;   /* invalid: nothing is written, the old file stays */
    assert_int_equal(manifest_write(m, path, &d), FUSION_E_MANIFEST_VALUE);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal((size_t)st.st_size, n2);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);   /* no temp file left behind */
    manifest_free(back);
    assert_int_equal(manifest_load(path, &back, &d), FUSION_E_IO);
    assert_null(back);
    assert_non_null(strstr(d.msg, path));
    manifest_free(m);
    free(out), free(out2), free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation_table),
        cmocka_unit_test(test_reference_manifests),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_plorad_strictness),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_writer_forms),
        cmocka_unit_test(test_plorad_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
