/* tests/unit/test_gate.c: the content gate on the real fixtures and on
 * poisoned copies made here, each case yielding exactly its reasons; the
 * policy parser; the robust z-score. (Inspired by the prototype's cases in
 * reference/audit/gate_decisions.json.) */
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

#include "gate.h"
#include "half.h"
#include "keyring.h"
#include "vote.h"

static char tmp_root[] = "/tmp/test_gate.XXXXXX";

static const char *fixtures(void)
{
    const char *f = getenv("PLORA_FIXTURES");
    if (f == NULL)
        fail_msg("PLORA_FIXTURES is not set");
    return f;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p;
    long n;

    if (f == NULL)
        fail_msg("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void spit(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    uint8_t *p = slurp(from, &n);
    spit(to, p, n);
    free(p);
}

static void path_in(char *out, size_t n, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, n, "%s/%s", dir, name) >= n)
        fail_msg("path %s/%s too long", dir, name);
}

/* A fresh copy of fixture adapter `name` in tmp_root/<case>. */
static void make_copy(const char *name, const char *dir)
{
    char from[1024], to[1024];

    mkdir(dir, 0700);
    snprintf(from, sizeof(from), "%s/peft/%s/adapter_config.json", fixtures(), name);
    path_in(to, sizeof(to), dir, "adapter_config.json");
    copy_file(from, to);
    snprintf(from, sizeof(from), "%s/peft/%s/adapter_model.safetensors", fixtures(), name);
    path_in(to, sizeof(to), dir, "adapter_model.safetensors");
    copy_file(from, to);
}

static void copy_ref(const char *rel, const char *dir, const char *name)
{
    char from[1024], to[1024];

    snprintf(from, sizeof(from), "%s/reference/%s", fixtures(), rel);
    path_in(to, sizeof(to), dir, name);
    copy_file(from, to);
}

/* ---- mutations ---------------------------------------------------------- */

/* Apply fn to element `idx` of F32 tensor `tensor` (full name) in place. */
static void poke(const char *dir, const char *tensor, size_t idx, float (*fn)(float, float), float arg,
                 bool all)
{
    char path[1024];
    size_t len;
    uint8_t *buf;
    struct safetensors *st = NULL;
    const struct safetensors_tensor *t;

    path_in(path, sizeof(path), dir, "adapter_model.safetensors");
    buf = slurp(path, &len);
    assert_int_equal(safetensors_parse(&st, buf, len, NULL), 0);
    t = safetensors_find(st, tensor);
    if (t == NULL)
        fail_msg("no tensor %s", tensor);
    for (size_t i = all ? 0 : idx; i < (all ? t->nelem : idx + 1); i++) {
        float f;
        memcpy(&f, t->data + 4 * i, 4);
        f = fn(f, arg);
        memcpy((uint8_t *)t->data + 4 * i, &f, 4);
    }
    safetensors_free(st);
    spit(path, buf, len);
    free(buf);
}

static float set_to(float f, float v) { (void)f; return v; }
static float times(float f, float v) { return f * v; }

#define GPT2_B0 "base_model.model.transformer.h.3.attn.c_attn.lora_B.weight"
#define GPT2_A0 "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"

static void m_nan(const char *dir) { poke(dir, GPT2_B0, 17, set_to, NAN, false); }
static void m_inf_head(const char *dir) { poke(dir, "base_model.model.score.weight", 5, set_to, -INFINITY, false); }
static void m_scale(const char *dir) { poke(dir, GPT2_B0, 0, times, 100.0f, true); }
static void m_shrink(const char *dir) { poke(dir, GPT2_A0, 0, times, 0.01f, true); }

static void m_bitflip(const char *dir)
{
    char path[1024];
    size_t len;
    uint8_t *buf;

    path_in(path, sizeof(path), dir, "adapter_model.safetensors");
    buf = slurp(path, &len);
    buf[len - 4096] ^= 0x01;  /* low mantissa bit of a float in the data */
    spit(path, buf, len);
    free(buf);
}

static void m_truncate(const char *dir)
{
    char path[1024];
    size_t len;
    uint8_t *buf;

    path_in(path, sizeof(path), dir, "adapter_model.safetensors");
    buf = slurp(path, &len);
    spit(path, buf, len / 2);
    free(buf);
}

static void m_remove(const char *dir)
{
    char path[1024];

    path_in(path, sizeof(path), dir, "adapter_model.safetensors");
    assert_int_equal(unlink(path), 0);
}

static void replace_in(const char *dir, const char *file, const char *from, const char *to)
{
    char path[1024], *hit, *out;
    size_t len;
    uint8_t *buf;

    path_in(path, sizeof(path), dir, file);
    buf = slurp(path, &len);
    hit = strstr((char *)buf, from);
    if (hit == NULL)
        fail_msg("%s lacks \"%s\"", file, from);
    out = malloc(len + strlen(to) + 1);
    assert_non_null(out);
    memcpy(out, buf, (size_t)(hit - (char *)buf));
    strcpy(out + (hit - (char *)buf), to);
    strcat(out, hit + strlen(from));
    spit(path, out, strlen(out));
    free(out);
    free(buf);
}

static void m_ia3(const char *dir) { replace_in(dir, "adapter_config.json", "\"LORA\"", "\"IA3\""); }
static void m_cfg_r16(const char *dir) { replace_in(dir, "adapter_config.json", "\"r\": 8", "\"r\": 16"); }

static void m_manifest(const char *dir) { copy_ref("manifests/unsigned/gpt2-c_attn-r8/plora.yml", dir, "plora.yml"); }
static void m_manifest_flip(const char *dir) { m_manifest(dir); m_bitflip(dir); }
static void m_manifest_r4(const char *dir) { m_manifest(dir); replace_in(dir, "plora.yml", "  r: 8", "  r: 4"); }
static void m_manifest_bad(const char *dir) { m_manifest(dir); replace_in(dir, "plora.yml", "schema_version: 0", "schema_version: [0"); }

static void m_quorum(const char *dir)
{
    copy_ref("quorum/gate_adapter/plora.yml", dir, "plora.yml");
    copy_ref("quorum/gate_adapter/attestations.jsonl", dir, "attestations.jsonl");
}

static void m_quorum_flip(const char *dir) { m_quorum(dir); m_bitflip(dir); }

static void m_imdb_many(const char *dir)
{
    copy_ref("manifests/rsa_sign_plasmid/distilbert-imdb-r8/plora.yml", dir, "plora.yml");
    m_bitflip(dir);
}

/* Rewrite every F32 tensor as `dtype` (F16 or BF16), keeping names. */
static void to_half(const char *dir, enum safetensors_dtype dtype)
{
    char path[1024], *text;
    size_t len, off = 0, hl;
    uint8_t *buf, *out;
    struct safetensors *st = NULL;
    json_t *h = json_object();

    path_in(path, sizeof(path), dir, "adapter_model.safetensors");
    buf = slurp(path, &len);
    assert_int_equal(safetensors_parse(&st, buf, len, NULL), 0);
    for (size_t i = 0; i < safetensors_count(st); i++) {
        const struct safetensors_tensor *t = safetensors_at(st, i);
        json_object_set_new(h, t->name, json_pack("{s:s, s:[I,I], s:[I,I]}", "dtype",
                            safetensors_dtype_name(dtype), "shape", (json_int_t)t->shape[0],
                            (json_int_t)(t->ndim > 1 ? t->shape[1] : 1), "data_offsets",
                            (json_int_t)off, (json_int_t)(off + 2 * t->nelem)));
        off += 2 * t->nelem;
    }
    text = json_dumps(h, JSON_COMPACT);
    hl = strlen(text);
    out = malloc(8 + hl + off);
    assert_non_null(out);
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(out + 8, text, hl);
    off = 8 + hl;
    for (size_t i = 0; i < safetensors_count(st); i++) {
        const struct safetensors_tensor *t = safetensors_at(st, i);
        for (uint64_t k = 0; k < t->nelem; k++, off += 2) {
            float f;
            memcpy(&f, t->data + 4 * k, 4);
            uint16_t v = dtype == SAFETENSORS_F16 ? half_f32_to_f16(f) : half_f32_to_bf16(f);
            memcpy(out + off, &v, 2);
        }
    }
    safetensors_free(st);
    spit(path, out, off);
    free(out);
    free(text);
    free(buf);
    json_decref(h);
}

/* The score head is [6, 768]: 1-D heads would need ndim 1 above; gpt2 has none. */
static void m_f16(const char *dir) { to_half(dir, SAFETENSORS_F16); }
static void m_bf16(const char *dir) { to_half(dir, SAFETENSORS_BF16); }

static void poke_u16(const char *dir, const char *tensor, size_t idx, uint16_t v)
{
    char path[1024];
    size_t len;
    uint8_t *buf;
    struct safetensors *st = NULL;

    path_in(path, sizeof(path), dir, "adapter_model.safetensors");
    buf = slurp(path, &len);
    assert_int_equal(safetensors_parse(&st, buf, len, NULL), 0);
    memcpy((uint8_t *)safetensors_find(st, tensor)->data + 2 * idx, &v, 2);
    safetensors_free(st);
    spit(path, buf, len);
    free(buf);
}

static void m_f16_inf(const char *dir) { m_f16(dir); poke_u16(dir, GPT2_A0, 3, 0x7c00); }
static void m_bf16_nan(const char *dir) { m_bf16(dir); poke_u16(dir, GPT2_B0, 9, 0x7fc1); }

/* ---- the table ------------------------------------------------------------ */

#define GPT2_CORE "base_model: gpt2\nallowed_targets: [c_attn]\nmax_size_bytes: 10000000\n"
#define GPT2_POLICY GPT2_CORE "allowed_ranks: [4, 8, 16]\nnorm_z_threshold: 6\n"
#define BERT_POLICY "base_model: distilbert-base-uncased\nallowed_ranks: [8]\n" \
                    "allowed_target_modules: [q_lin, v_lin]\n"
#define SIGS(q) "signatures_required: true\nquorum: " #q "\n"

enum probe_mode { PROBE_NONE, PROBE_EXIT0, PROBE_EXIT3, PROBE_TIMEOUT, PROBE_NORUN };

static const struct gcase {
    const char *name;
    const char *fixture;
    void (*mutate)(const char *dir);
    const char *policy;
    const char *want;      /* reason names joined by ",", "" = accept */
    bool keyring;          /* trust quorum/keys/key0..4 */
    enum probe_mode probe;
} cases[] = {
    { "gpt2 clean", "gpt2-c_attn-r8", NULL, GPT2_POLICY, "", false, PROBE_NONE },
    { "imdb clean", "distilbert-imdb-r8", NULL, BERT_POLICY, "", false, PROBE_NONE },
    { "emotion clean", "distilbert-emotion-r8", NULL, BERT_POLICY, "", false, PROBE_NONE },
    { "empty policy", "distilbert-emotion-r8", NULL, "", "", false, PROBE_NONE },
    { "prototype policy.json form", "gpt2-c_attn-r8", NULL,
      "{\"allowed_ranks\": [4, 8, 16], \"base_model\": \"gpt2\", \"threshold_mode\": true}", "", false, PROBE_NONE },
    { "NaN in a lora_B", "gpt2-c_attn-r8", m_nan, GPT2_POLICY, "non_finite_values", false, PROBE_NONE },
    { "-inf in the head", "gpt2-c_attn-r8", m_inf_head, GPT2_POLICY, "non_finite_values", false, PROBE_NONE },
    { "F16 copy clean", "gpt2-c_attn-r8", m_f16, GPT2_POLICY, "", false, PROBE_NONE },
    { "F16 inf", "gpt2-c_attn-r8", m_f16_inf, GPT2_POLICY, "non_finite_values", false, PROBE_NONE },
    { "BF16 NaN", "gpt2-c_attn-r8", m_bf16_nan, GPT2_POLICY, "non_finite_values", false, PROBE_NONE },
    { "NaN allowed by policy", "gpt2-c_attn-r8", m_nan, GPT2_POLICY "check_finite: false\n", "", false, PROBE_NONE },
    { "lora_B scaled x100", "gpt2-c_attn-r8", m_scale, GPT2_POLICY, "tensor_norm_outlier", false, PROBE_NONE },
    { "lora_A shrunk x0.01", "gpt2-c_attn-r8", m_shrink, GPT2_POLICY, "tensor_norm_outlier", false, PROBE_NONE },
    { "outlier check off", "gpt2-c_attn-r8", m_scale, GPT2_CORE "norm_z_threshold: 0\n", "", false, PROBE_NONE },
    { "wrong base model", "gpt2-c_attn-r8", NULL, "base_model: meta-llama/Llama-2-7b\n", "base_model_mismatch",
      false, PROBE_NONE },
    { "rank not allowed", "distilbert-imdb-r8", NULL, "allowed_ranks: [4, 16]\n", "rank_not_allowed", false,
      PROBE_NONE },
    { "targets not allowed", "gpt2-c_attn-r8", NULL, "allowed_targets: [q_proj, attn.c_proj]\n",
      "targets_not_allowed", false, PROBE_NONE },
    { "dotted target allowed", "gpt2-c_attn-r8", NULL, "allowed_targets: [attn.c_attn]\n", "", false, PROBE_NONE },
    { "too big", "distilbert-emotion-r8", NULL, "max_size_bytes: 2000000\n", "artifact_size_out_of_bounds",
      false, PROBE_NONE },
    { "artifact missing", "gpt2-c_attn-r8", m_remove, GPT2_POLICY, "artifact_missing", false, PROBE_NONE },
    { "truncated file", "gpt2-c_attn-r8", m_truncate, GPT2_POLICY, "malformed_safetensors", false, PROBE_NONE },
    { "not LoRA", "gpt2-c_attn-r8", m_ia3, GPT2_POLICY, "malformed_config", false, PROBE_NONE },
    { "config says r=16", "gpt2-c_attn-r8", m_cfg_r16, GPT2_POLICY, "config_tensor_mismatch", false, PROBE_NONE },
    { "manifest required", "gpt2-c_attn-r8", NULL, GPT2_POLICY "require_manifest: true\n", "manifest_missing",
      false, PROBE_NONE },
    { "manifest ok", "gpt2-c_attn-r8", m_manifest, GPT2_POLICY "require_manifest: true\n", "", false, PROBE_NONE },
    { "bit flip vs manifest", "gpt2-c_attn-r8", m_manifest_flip, GPT2_POLICY, "sha256_mismatch", false,
      PROBE_NONE },
    { "manifest says r=4", "gpt2-c_attn-r8", m_manifest_r4, GPT2_POLICY, "manifest_mismatch", false, PROBE_NONE },
    { "manifest not YAML", "gpt2-c_attn-r8", m_manifest_bad, GPT2_POLICY, "manifest_invalid", false, PROBE_NONE },
    { "quorum 3 of key0..4", "gpt2-c_attn-r8", m_quorum, GPT2_POLICY SIGS(3), "", true, PROBE_NONE },
    { "quorum 4 (manifest counts)", "gpt2-c_attn-r8", m_quorum, GPT2_POLICY SIGS(4), "", true, PROBE_NONE },
    { "quorum 5 not met", "gpt2-c_attn-r8", m_quorum, GPT2_POLICY SIGS(5), "signature_quorum_not_met", true,
      PROBE_NONE },
    { "no trusted keys", "gpt2-c_attn-r8", m_quorum, GPT2_POLICY SIGS(1), "signature_quorum_not_met", false,
      PROBE_NONE },
    { "unsigned manifest", "gpt2-c_attn-r8", m_manifest, GPT2_POLICY SIGS(1), "signature_quorum_not_met", true,
      PROBE_NONE },
    { "signatures over other bytes", "gpt2-c_attn-r8", m_quorum_flip, GPT2_POLICY SIGS(1),
      "sha256_mismatch,signature_quorum_not_met", true, PROBE_NONE },
    { "many reasons", "distilbert-imdb-r8", m_imdb_many, GPT2_CORE "allowed_ranks: [4, 16]\n" SIGS(1),
      NULL, true, PROBE_NONE },
    { "probe exit 0", "gpt2-c_attn-r8", NULL, GPT2_POLICY "probe: {argv: [probe, \"{adapter}\"], timeout_s: 5}\n",
      "", false, PROBE_EXIT0 },
    { "probe exit 3", "gpt2-c_attn-r8", NULL, GPT2_POLICY "probe: {argv: [probe], accept_exit_codes: [0, 1]}\n",
      "probe_failed", false, PROBE_EXIT3 },
    { "probe timeout", "gpt2-c_attn-r8", NULL, GPT2_POLICY "probe: {argv: [probe]}\n", "probe_failed", false,
      PROBE_TIMEOUT },
    { "probe cannot run", "gpt2-c_attn-r8", NULL, GPT2_POLICY "probe: {argv: [probe]}\n", "probe_failed", false,
      PROBE_NORUN },
    { "probe without runner", "gpt2-c_attn-r8", NULL, GPT2_POLICY "probe: {argv: [probe]}\n", "probe_failed",
      false, PROBE_NONE },
    { "probe skipped on NaN", "gpt2-c_attn-r8", m_nan, GPT2_POLICY "probe: {argv: [probe]}\n",
      "non_finite_values,probe_failed", false, PROBE_EXIT0 },
};

/* The prototype's case 21 (imdb-many-reasons), with our extra names. */
static const char many_want[] =
    "base_model_mismatch,rank_not_allowed,targets_not_allowed,sha256_mismatch,signature_quorum_not_met";

static int fake_probe(void *ctx, const struct policy_probe *p, const char *dir, struct gate_probe_result *out)
{
    enum probe_mode m = *(const enum probe_mode *)ctx;

    memset(out, 0, sizeof(*out));
    assert_non_null(dir);
    assert_true(p->argc >= 1);
    out->ran = m != PROBE_NORUN;
    out->timed_out = m == PROBE_TIMEOUT;
    out->exit_code = m == PROBE_EXIT3 ? 3 : 0;
    if (m == PROBE_NORUN)
        snprintf(out->error, sizeof(out->error), "no such file");
    return 0;
}

static struct keyring *quorum_keyring(void)
{
    char dir[1024], from[64];
    struct keyring *kr = NULL;
    struct crypto_diag cd = { 0 };

    snprintf(dir, sizeof(dir), "%s/keyring", tmp_root);
    mkdir(dir, 0700);
    for (int i = 0; i < 5; i++) {
        char to[1100];
        snprintf(from, sizeof(from), "quorum/keys/key%d_pub.pem", i);
        snprintf(to, sizeof(to), "key%d.pem", i);
        copy_ref(from, dir, to);
    }
    if (keyring_load(&kr, dir, &cd) != 0)
        fail_msg("keyring: %s", cd.msg);
    return kr;
}

static void load_votes(const char *dir, struct vote ***v, size_t *n)
{
    char path[1024];
    size_t len;
    uint8_t *buf;
    struct crypto_diag cd = { 0 };

    *v = NULL;
    *n = 0;
    path_in(path, sizeof(path), dir, "attestations.jsonl");
    if (access(path, F_OK) != 0)
        return;
    buf = slurp(path, &len);
    if (vote_parse_attestations(buf, len, v, n, &cd) != 0)
        fail_msg("attestations: %s", cd.msg);
    free(buf);
}

static void joined(const struct gate_verdict *v, char *out, size_t n)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < v->n_reasons && used < n; i++)
        used += (size_t)snprintf(out + used, n - used, "%s%s", i ? "," : "", gate_reason_name(v->reasons[i].id));
}

static void run_case(const struct gcase *c, struct keyring *kr)
{
    char dir[1024], got[512];
    struct policy *p = NULL;
    struct fusion_diag d = { 0 };
    struct gate_verdict *v = NULL;
    struct vote **votes;
    size_t n_votes;
    enum probe_mode mode = c->probe;
    const char *want = c->want ? c->want : many_want;

    snprintf(dir, sizeof(dir), "%s/case%p", tmp_root, (const void *)c);
    make_copy(c->fixture, dir);
    if (c->mutate != NULL)
        c->mutate(dir);
    if (policy_parse(&p, c->policy, strlen(c->policy), tmp_root, &d) != 0)
        fail_msg("%s: policy: %s", c->name, d.msg);
    load_votes(dir, &votes, &n_votes);
    struct gate_env env = { c->keyring ? kr : NULL, votes, n_votes, 1795415402 + 60,
                            c->probe == PROBE_NONE ? NULL : fake_probe, &mode };
    if (gate_run(p, dir, &env, &v, &d) != 0)
        fail_msg("%s: gate_run: %s", c->name, d.msg);
    joined(v, got, sizeof(got));
    if (strcmp(got, want) != 0 || v->accept != (want[0] == '\0'))
        fail_msg("%s: reasons [%s], want [%s]; first detail: %s", c->name, got, want,
                 v->n_reasons ? v->reasons[0].detail : "-");
    for (size_t i = 0; i < v->n_reasons; i++)
        if (v->reasons[i].detail[0] == '\0')
            fail_msg("%s: reason %zu without detail", c->name, i);
    gate_verdict_free(v);
    vote_free_array(votes, n_votes);
    policy_free(p);
}

static void test_cases(void **state)
{
    struct keyring *kr = quorum_keyring();

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i], kr);
    keyring_free(kr);
}

/* Details carry the numbers a user needs. */
static void test_details(void **state)
{
    char dir[1024];
    struct policy *p = NULL;
    struct gate_verdict *v = NULL;
    struct gate_env env = { 0 };
    static const char pol[] = "max_size_bytes: 2000000\n";

    (void)state;
    snprintf(dir, sizeof(dir), "%s/details", tmp_root);
    make_copy("distilbert-emotion-r8", dir);
    assert_int_equal(policy_parse(&p, pol, strlen(pol), NULL, NULL), 0);
    assert_int_equal(gate_run(p, dir, &env, &v, NULL), 0);
    assert_non_null(strstr(v->reasons[0].detail, "2974504 bytes, allowed 1..2000000"));
    assert_string_equal(v->sha256, "bc77a4203f29356efecb1e0f4c30072145adfd8b959a4ce1c5cbac7c1e796011");
    assert_true(gate_verdict_has(v, GATE_R_ARTIFACT_SIZE));
    assert_false(gate_verdict_has(v, GATE_R_RANK));
    gate_verdict_free(v);
    /* not a directory: an input error, not a verdict */
    assert_int_equal(gate_run(p, "/nonexistent-adapter", &env, &v, NULL), FUSION_E_IO);
    assert_null(v);
    assert_int_equal(gate_run(NULL, dir, &env, &v, NULL), FUSION_E_ARG);
    policy_free(p);
}

static void test_robust_z(void **state)
{
    static const double a[] = { 1, 2, 3, 4, 100 }, b[] = { 0, 0, 0, 0, 10 }, c[] = { 5, 5, 5, 5 };
    static const double e[] = { 0, 0.01, 0.02, 0.03, 0.04 };
    double z[5];

    (void)state;
    assert_int_equal(gate_robust_z(a, 5, z), 0);  /* median 3, MAD 1: scale 1/0.6745 */
    assert_true(fabs(z[4] - 97 * 0.6745) < 1e-12 && fabs(z[2]) < 1e-15);
    assert_int_equal(gate_robust_z(b, 5, z), 0);  /* MAD 0: MeanAD 2, scale 2.5066 */
    assert_true(fabs(z[4] - 10 / (1.2533 * 2)) < 1e-12 && z[0] == 0);
    assert_int_equal(gate_robust_z(c, 4, z), 0);  /* all equal: z = 0 */
    assert_true(z[0] == 0 && z[3] == 0);
    assert_int_equal(gate_robust_z(e, 5, z), 0);  /* tight group: the floor rules */
    assert_true(fabs(z[4] - 0.02 / GATE_NORM_SCALE_FLOOR) < 1e-12);
    assert_string_equal(gate_reason_name(GATE_R_SHA256), "sha256_mismatch");
    assert_string_equal(gate_reason_name(GATE_R_QUORUM), "signature_quorum_not_met");
    assert_string_equal(gate_reason_name((enum gate_reason_id)999), "?");
}

static const struct { const char *name; const char *yaml; int want; const char *in_msg; } pcases[] = {
    { "full", "base_model: gpt2\nallowed_ranks: [8]\nallowed_targets: [c_attn]\nmax_size_bytes: 5\n"
      "min_size_bytes: 1\nrequire_manifest: yes\ncheck_finite: true\nnorm_z_threshold: 3.5\n"
      "signatures_required: true\nquorum: 2\nkeyring: keys\ntrusted_public_keys: [/k/a.pem, b.pem]\n"
      "max_vote_age_s: 3600\nprobe:\n  argv: [p, x]\n  timeout_s: 2\n  accept_exit_codes: [0, 2]\n", 0, NULL },
    { "not YAML", "base_model: [gpt2\n", FUSION_E_POLICY_YAML, "line" },
    { "two documents", "quorum: 1\n---\nquorum: 2\n", FUSION_E_POLICY_YAML, "more than one" },
    { "root list", "- 1\n", FUSION_E_POLICY_FIELD, "mapping" },
    { "unknown key", "qorum: 2\n", FUSION_E_POLICY_FIELD, "qorum" },
    { "duplicate key", "quorum: 2\nquorum: 3\n", FUSION_E_POLICY_FIELD, "duplicate" },
    { "alias twice", "allowed_targets: [a]\nallowed_target_modules: [b]\n", FUSION_E_POLICY_FIELD, "twice" },
    { "quoted rank", "allowed_ranks: [\"8\"]\n", FUSION_E_POLICY_FIELD, "allowed_ranks" },
    { "rank zero", "allowed_ranks: [0]\n", FUSION_E_POLICY_FIELD, "allowed_ranks" },
    { "ranks not a list", "allowed_ranks: 8\n", FUSION_E_POLICY_FIELD, "want a list" },
    { "quorum zero", "quorum: 0\n", FUSION_E_POLICY_FIELD, "quorum" },
    { "negative z", "norm_z_threshold: -1\n", FUSION_E_POLICY_FIELD, "norm_z_threshold" },
    { "z not finite", "norm_z_threshold: .inf\n", FUSION_E_POLICY_FIELD, "norm_z_threshold" },
    { "bool typo", "require_manifest: ture\n", FUSION_E_POLICY_FIELD, "true or false" },
    { "empty base model", "base_model: ''\n", FUSION_E_POLICY_FIELD, "base_model" },
    { "min over max", "max_size_bytes: 10\nmin_size_bytes: 11\n", FUSION_E_POLICY_FIELD, "min_size_bytes" },
    { "probe without argv", "probe: {timeout_s: 3}\n", FUSION_E_POLICY_FIELD, "argv" },
    { "probe empty argv", "probe: {argv: []}\n", FUSION_E_POLICY_FIELD, "argv" },
    { "probe unknown key", "probe: {argv: [p], cmd: x}\n", FUSION_E_POLICY_FIELD, "cmd" },
    { "probe exit 256", "probe: {argv: [p], accept_exit_codes: [256]}\n", FUSION_E_POLICY_FIELD, "accept_exit" },
    { "probe timeout 0", "probe: {argv: [p], timeout_s: 0}\n", FUSION_E_POLICY_FIELD, "timeout_s" },
};

static void test_policy(void **state)
{
    struct policy *p = NULL;
    struct fusion_diag d = { 0 };

    (void)state;
    for (size_t i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
        int got = policy_parse(&p, pcases[i].yaml, strlen(pcases[i].yaml), "/etc/plorad", &d);
        if (got != pcases[i].want)
            fail_msg("%s: got %s, want %s; %s", pcases[i].name, fusion_err_name(got),
                     fusion_err_name(pcases[i].want), d.msg);
        if (pcases[i].in_msg && strstr(d.msg, pcases[i].in_msg) == NULL)
            fail_msg("%s: message \"%s\" lacks \"%s\"", pcases[i].name, d.msg, pcases[i].in_msg);
        if (got == 0) {
            assert_string_equal(p->base_model, "gpt2");
            assert_true(p->has_allowed_ranks && p->n_allowed_ranks == 1 && p->allowed_ranks[0] == 8);
            assert_true(p->max_size_bytes == 5 && p->require_manifest && p->norm_z_threshold == 3.5);
            assert_true(p->signatures_required && p->quorum == 2 && p->max_vote_age_s == 3600);
            assert_string_equal(p->keyring_dir, "/etc/plorad/keys");
            assert_string_equal(p->trusted_keys[0], "/k/a.pem");
            assert_string_equal(p->trusted_keys[1], "/etc/plorad/b.pem");
            assert_true(p->has_probe && p->probe.argc == 2 && p->probe.timeout_ms == 2000);
            assert_true(p->probe.n_accept == 2 && p->probe.accept[1] == 2);
            assert_null(p->probe.argv[2]);
        }
        policy_free(p);
        p = NULL;
    }
    /* defaults */
    assert_int_equal(policy_parse(&p, "", 0, NULL, NULL), 0);
    assert_true(p->check_finite && p->quorum == 1 && p->min_size_bytes == 1);
    assert_true(p->norm_z_threshold == POLICY_DEFAULT_Z && !p->signatures_required && !p->has_probe);
    policy_free(p);
    assert_int_equal(policy_load(&p, "/nonexistent/policy.yml", &d), FUSION_E_IO);
}

/* The prototype's policy.json (a YAML flow mapping) loads, keys resolved
 * against its directory. */
static void test_prototype_policy(void **state)
{
    char path[1024];
    struct policy *p = NULL;
    struct fusion_diag d = { 0 };

    (void)state;
    snprintf(path, sizeof(path), "%s/reference/policy/policy.json", fixtures());
    if (policy_load(&p, path, &d) != 0)
        fail_msg("%s: %s", path, d.msg);
    assert_string_equal(p->base_model, "gpt2");
    assert_true(p->quorum == 2 && p->signatures_required && p->n_allowed_ranks == 3);
    assert_int_equal(p->n_trusted_keys, 3);
    assert_non_null(strstr(p->trusted_keys[0], "reference/policy/quorum/keys/key0_pub.pem"));
    policy_free(p);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmp_root) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[256];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_details),
        cmocka_unit_test(test_robust_z),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_prototype_policy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
