/* tests/unit/test_merge.c: the factored merge against dense double-precision
 * references, PEFT's known merge bugs (#1155, #3004, #3761), trust region,
 * KLD budget, errors, and the merged adapter's round trip through the reader. */
#include <cblas.h>
#include <lapacke.h>
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

#include "adapter.h"
#include "certificate.h"
#include "merge.h"
#include "merge_out.h"
#include "peft_config.h"
#include "st_write.h"

/* ---- helpers ------------------------------------------------------------ */

struct fac {
    size_t out, in, r;
    double *A, *B;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1p-53 * 2.0 - 1.0;
}

static struct fac make_fac(size_t out, size_t in, size_t r)
{
    struct fac f = { out, in, r, malloc(r * in * sizeof(double)), malloc(out * r * sizeof(double)) };

    assert_non_null(f.A);
    assert_non_null(f.B);
    for (size_t i = 0; i < r * in; i++)
        f.A[i] = urand();
    for (size_t i = 0; i < out * r; i++)
        f.B[i] = urand();
    return f;
}

static void free_fac(struct fac *f)
{
    free(f->A);
    free(f->B);
}

static struct merge_factor mf(const char *name, const struct fac *f, double s)
{
    return (struct merge_factor){ name, f->out, f->in, f->r, s, SAFETENSORS_F64, f->A, f->B };
}

/* dst (out x in) += coef * B A for F64 factors. */
static void dense_add(double *dst, const struct merge_factor *f, double coef)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)f->out, (int)f->in, (int)f->r, coef,
                f->B, (int)f->r, f->A, (int)f->in, 1.0, dst, (int)f->in);
}

/* The merged module i as a dense out x in matrix (from merge_factors). */
static double *merged_dense(struct merge *m, size_t i)
{
    const struct merge_module_info *mi = merge_module(m, i);
    size_t K = merge_summary(m)->rank_out;
    double *B = malloc(mi->out * K * sizeof(double)), *A = malloc(K * mi->in * sizeof(double));
    double *W = calloc(mi->out * mi->in, sizeof(double));
    struct fusion_diag d;

    assert_non_null(B);
    assert_non_null(A);
    assert_non_null(W);
    if (merge_factors(m, i, B, A, &d) != 0)
        fail_msg("merge_factors(%zu): %s", i, d.msg);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mi->out, (int)mi->in, (int)K, 1.0,
                B, (int)K, A, (int)mi->in, 0.0, W, (int)mi->in);
    free(A);
    free(B);
    return W;
}

static double frob(const double *x, size_t n)
{
    double s = 0.0;

    for (size_t i = 0; i < n; i++)
        s += x[i] * x[i];
    return sqrt(s);
}

static double rel_diff(const double *a, const double *b, size_t n)
{
    double s = 0.0;

    for (size_t i = 0; i < n; i++)
        s += (a[i] - b[i]) * (a[i] - b[i]);
    return sqrt(s) / fmax(frob(b, n), 1e-300);
}

/* Singular values of a dense rows x cols matrix (descending); caller frees. */
static double *svals(const double *W, size_t rows, size_t cols)
{
    size_t mn = rows < cols ? rows : cols;
    double *c = malloc(rows * cols * sizeof(double)), *s = malloc(mn * sizeof(double));
    double *sup = malloc(mn * sizeof(double));

    assert_non_null(c);
    assert_non_null(s);
    assert_non_null(sup);
    memcpy(c, W, rows * cols * sizeof(double));
    assert_int_equal(LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', (lapack_int)rows, (lapack_int)cols, c,
                                    (lapack_int)cols, s, NULL, 1, NULL, 1, sup), 0);
    free(c);
    free(sup);
    return s;
}

static void expect_close(const char *what, double got, double want, double rel)
{
    if (!(fabs(got - want) <= rel * fabs(want) + 1e-300))
        fail_msg("%s: got %.17g, want %.17g (rel %.3g > %.3g)", what, got, want,
                 fabs(got - want) / fabs(want), rel);
}

static struct merge *must_merge(const struct merge_input *in, size_t n, const struct merge_opts *o)
{
    struct merge *m = NULL;
    struct fusion_diag d;
    int rc = merge_new(&m, in, n, o, &d);

    if (rc != 0)
        fail_msg("merge_new: %s: %s", fusion_err_name(rc), d.msg);
    return m;
}

static const char *fixture(const char *rel, char *buf, size_t n)
{
    const char *root = getenv("PLORA_FIXTURES");

    if (root == NULL)
        fail_msg("PLORA_FIXTURES is not set");
    snprintf(buf, n, "%s/%s", root, rel);
    if (access(buf, R_OK) != 0)
        fail_msg("fixture %s missing", buf);
    return buf;
}

static struct adapter *open_fixture(const char *rel)
{
    char p[4096];
    struct adapter *a = NULL;
    struct fusion_diag d;

    if (adapter_open(&a, fixture(rel, p, sizeof(p)), &d) != 0)
        fail_msg("adapter_open %s: %s", p, d.msg);
    return a;
}

/* ---- PEFT #1155 / #3004 / #3761 cases ----------------------------------- */

/* One adapter at weight 1 with K >= r (or no K) is itself. */
static void test_identity(void **state)
{
    struct fac f = make_fac(40, 30, 6);
    struct merge_factor x = mf("m", &f, 2.0);
    struct merge_input in = { &x, 1, 1.0, NAN };
    size_t ranks[] = { 0, 6, 9 };
    double *ref = calloc(40 * 30, sizeof(double));

    (void)state;
    dense_add(ref, &x, 2.0);
    for (size_t t = 0; t < 3; t++) {
        struct merge_opts o = { .rank = ranks[t] };
        struct merge *m = must_merge(&in, 1, &o);
        double *W = merged_dense(m, 0);
        assert_int_equal(merge_summary(m)->rank_out, 6);
        if (rel_diff(W, ref, 40 * 30) > 1e-13)
            fail_msg("rank %zu: identity rel err %g", ranks[t], rel_diff(W, ref, 40 * 30));
        expect_close("G", merge_summary(m)->frob_merged, frob(ref, 1200), 1e-13);
        assert_true(merge_summary(m)->dropped_energy == 0.0);
        free(W);
        merge_free(m);
    }
    free(ref);
    free_fac(&f);
}

/* Weights [1, -1] give B1A1 - B2A2; mixed and negative weights likewise;
 * with K < R the result is the best rank-K approximation (Eckart-Young). */
static void test_weights_table(void **state)
{
    static const struct {
        const char *name;
        double w[3];
        size_t n, rank;
    } cases[] = {
        { "difference [1,-1]", { 1.0, -1.0 }, 2, 0 },
        { "difference, K=R", { 1.0, -1.0 }, 2, 9 },
        { "negative [-1,-1]", { -1.0, -1.0 }, 2, 0 },
        { "mixed [-0.5,2,0.3]", { -0.5, 2.0, 0.3 }, 3, 0 },
        { "mixed, K=4 < R=12", { -0.5, 2.0, 0.3 }, 3, 4 },
        { "zero weight, K=3", { 0.0, 1.5, -0.7 }, 3, 3 },
    };
    struct fac f[3] = { make_fac(50, 35, 4), make_fac(50, 35, 5), make_fac(50, 35, 3) };
    double s[3] = { 2.0, 0.5, 16.0 / sqrt(3.0) };

    (void)state;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct merge_factor x[3];
        struct merge_input in[3];
        struct merge_opts o = { .rank = cases[c].rank };
        double *ref = calloc(50 * 35, sizeof(double)), *sv, keep = 0.0, drop = 0.0;
        size_t K, R = 0;
        for (size_t k = 0; k < cases[c].n; k++) {
            x[k] = mf("layer.0.q", &f[k], s[k]);
            in[k] = (struct merge_input){ &x[k], 1, cases[c].w[k], NAN };
            dense_add(ref, &x[k], cases[c].w[k] * s[k]);
            R += f[k].r;
        }
        struct merge *m = must_merge(in, cases[c].n, &o);
        const struct merge_module_info *mi = merge_module(m, 0);
        double *W = merged_dense(m, 0);
        K = merge_summary(m)->rank_out;
        sv = svals(ref, 50, 35);
        for (size_t j = 0; j < 35; j++)
            *(j < K ? &keep : &drop) += sv[j] * sv[j];
        expect_close(cases[c].name, mi->frob, frob(ref, 50 * 35), 1e-12);
        expect_close("sigma_max", mi->sigma_max, sv[0], 1e-10);
        if (R <= K && rel_diff(W, ref, 50 * 35) > 1e-12)
            fail_msg("%s: exact merge rel err %g", cases[c].name, rel_diff(W, ref, 50 * 35));
        if (R > K) {
            double *res = malloc(50 * 35 * sizeof(double));
            for (size_t i = 0; i < 50 * 35; i++)
                res[i] = ref[i] - W[i];
            expect_close("kept energy", mi->frob_out * mi->frob_out, keep, 1e-10);
            expect_close("dropped energy", mi->dropped_energy, drop, 1e-8);
            expect_close("residual = dropped (optimal)", frob(res, 50 * 35) * frob(res, 50 * 35), drop, 1e-8);
            free(res);
        }
        free(sv);
        free(W);
        free(ref);
        merge_free(m);
    }
    for (int k = 0; k < 3; k++)
        free_fac(&f[k]);
}

/* An adapter merged with its own negation: rank-deficient Grams, delta 0. */
static void test_self_cancel(void **state)
{
    struct fac f = make_fac(20, 16, 4);
    struct merge_factor x = mf("m", &f, 1.0);
    struct merge_input in[2] = { { &x, 1, 1.0, NAN }, { &x, 1, -1.0, NAN } };
    struct merge_opts o = { .rank = 2, .tau_rel = 0.5 };
    struct merge *m = must_merge(in, 2, &o);
    double *W = merged_dense(m, 0);

    (void)state;
    double scale = frob(f.A, 64) * frob(f.B, 80);   /* >= ||BA||_F */

    if (!(merge_module(m, 0)->frob <= 1e-14 * scale) || !(frob(W, 20 * 16) <= 1e-14 * scale))
        fail_msg("self-cancel: frob %g, dense %g, scale %g", merge_module(m, 0)->frob,
                 frob(W, 20 * 16), scale);
    assert_true(merge_summary(m)->frob_out <= merge_summary(m)->tau * (1 + 1e-12) + 1e-300);
    free(W);
    merge_free(m);
    free_fac(&f);
}

/* Modules present in only some inputs merge with the weights they have. */
static void test_partial_modules(void **state)
{
    struct fac a0 = make_fac(12, 10, 2), b0 = make_fac(12, 10, 3), b1 = make_fac(12, 10, 2),
               c1 = make_fac(8, 6, 2);
    struct merge_factor x0[2] = { mf("a", &a0, 1.0), mf("b", &b0, 2.0) };
    struct merge_factor x1[2] = { mf("c", &c1, 0.5), mf("b", &b1, 1.0) };  /* unsorted on purpose */
    struct merge_input in[2] = { { x0, 2, 0.7, NAN }, { x1, 2, 0.3, NAN } };
    struct merge_opts o = { 0 };
    struct merge *m = must_merge(in, 2, &o);
    double *ra = calloc(120, sizeof(double)), *rb = calloc(120, sizeof(double)), *rc = calloc(48, sizeof(double));
    double *W;

    (void)state;
    dense_add(ra, &x0[0], 0.7 * 1.0);
    dense_add(rb, &x0[1], 0.7 * 2.0);
    dense_add(rb, &x1[1], 0.3 * 1.0);
    dense_add(rc, &x1[0], 0.3 * 0.5);
    assert_int_equal(merge_module_count(m), 3);
    assert_string_equal(merge_module(m, 0)->name, "a");
    assert_string_equal(merge_module(m, 1)->name, "b");
    assert_string_equal(merge_module(m, 2)->name, "c");
    assert_int_equal(merge_module(m, 1)->n_inputs, 2);
    assert_int_equal(merge_module(m, 1)->r_cat, 5);
    assert_int_equal(merge_summary(m)->rank_out, 5);       /* others zero-padded */
    W = merged_dense(m, 0);
    assert_true(rel_diff(W, ra, 120) < 1e-13);
    free(W);
    W = merged_dense(m, 1);
    assert_true(rel_diff(W, rb, 120) < 1e-13);
    free(W);
    W = merged_dense(m, 2);
    assert_true(rel_diff(W, rc, 48) < 1e-13);
    free(W);
    expect_close("G", merge_summary(m)->frob_merged,
                 sqrt(pow(frob(ra, 120), 2) + pow(frob(rb, 120), 2) + pow(frob(rc, 48), 2)), 1e-13);
    free(ra); free(rb); free(rc);
    merge_free(m);
    free_fac(&a0); free_fac(&b0); free_fac(&b1); free_fac(&c1);
}

/* c = min(1, tau/G) globally; per-module cap on top; ||c dW||_F <= tau. */
static void test_trust_region(void **state)
{
    struct fac f1 = make_fac(30, 20, 3), f2 = make_fac(30, 20, 3);
    struct merge_factor x[2] = { mf("p", &f1, 1.0), mf("q", &f2, 3.0) };
    struct merge_input in = { x, 2, 1.0, NAN };
    struct merge_opts o = { .tau_rel = 0.25 };
    struct merge *m = must_merge(&in, 1, &o);
    const struct merge_summary *s = merge_summary(m);
    double G = s->frob_merged, fp, fq;

    (void)state;
    expect_close("tau", s->tau, 0.25 * G, 1e-15);
    expect_close("scale", s->scale, 0.25, 1e-15);
    assert_true(s->frob_out <= s->tau * (1 + 1e-12));
    expect_close("frob_out", s->frob_out, s->tau, 1e-12);
    merge_free(m);
    o = (struct merge_opts){ .tau = 10.0 * G };
    m = must_merge(&in, 1, &o);
    assert_true(merge_summary(m)->scale == 1.0);
    fp = merge_module(m, 0)->frob;
    fq = merge_module(m, 1)->frob;
    merge_free(m);
    o = (struct merge_opts){ .tau = 0.9 * G, .module_cap = 0.5 * fmin(fp, fq) };
    m = must_merge(&in, 1, &o);
    for (size_t i = 0; i < 2; i++) {
        const struct merge_module_info *mi = merge_module(m, i);
        double *W = merged_dense(m, i);
        assert_true(mi->frob_out <= o.module_cap * (1 + 1e-12));
        expect_close("dense frob_out", frob(W, 600), mi->frob_out, 1e-12);
        free(W);
    }
    assert_true(merge_summary(m)->frob_out <= merge_summary(m)->tau);
    merge_free(m);
    free_fac(&f1);
    free_fac(&f2);
}

static void test_kld_budget(void **state)
{
    struct fac f1 = make_fac(10, 8, 2), f2 = make_fac(10, 8, 2);
    struct merge_factor x1 = mf("m", &f1, 1.0), x2 = mf("m", &f2, 1.0);
    struct merge_input in[2] = { { &x1, 1, 0.5, 0.04 }, { &x2, 1, 0.5, 0.01 } };
    struct merge_opts o = { .kld_budget = 0.01 };
    struct merge *m = must_merge(in, 2, &o), *plain;
    const struct merge_summary *s = merge_summary(m);
    struct fusion_diag d;
    double f = 0.1 / 0.15;   /* sqrt(E) / (0.5*0.2 + 0.5*0.1) */

    (void)state;
    assert_true(s->kld_scaled);
    expect_close("kld scale", s->kld_scale, f, 1e-14);
    expect_close("given bound", s->kld_local_given, 0.0225, 1e-14);
    expect_close("bound after", s->kld_local, 0.01, 1e-13);
    expect_close("w0", merge_weight(m, 0), 0.5 * f, 1e-15);
    o.kld_budget = 0.0;
    plain = must_merge(in, 2, &o);
    expect_close("G scales with the weights", s->frob_merged, f * merge_summary(plain)->frob_merged, 1e-13);
    assert_false(merge_summary(plain)->kld_scaled);
    expect_close("bound reported without budget", merge_summary(plain)->kld_local, 0.0225, 1e-14);
    merge_free(plain);
    merge_free(m);
    in[1].kld_eps = NAN;
    o.kld_budget = 0.01;
    assert_int_equal(merge_new(&m, in, 2, &o, &d), FUSION_E_MERGE_KLD_EPS);
    assert_null(m);
    assert_non_null(strstr(d.msg, "input 1"));
    free_fac(&f1);
    free_fac(&f2);
}

static void test_errors(void **state)
{
    struct fac f = make_fac(6, 5, 2), g = make_fac(7, 5, 2), bad = make_fac(6, 5, 2);
    struct merge_factor x = mf("m", &f, 1.0), y = mf("m", &g, 1.0), z = mf("m", &bad, 1.0);
    struct merge_factor dup[2] = { mf("m", &f, 1.0), mf("m", &f, 1.0) };
    struct merge_factor nans = mf("m", &f, NAN), zr = mf("m", &f, 1.0);
    const struct {
        const char *name;
        struct merge_input in[2];
        size_t n;
        struct merge_opts o;
        int want;
        const char *msg;
    } cases[] = {
        { "no input", { { .n_modules = 0 } }, 0, { .rank = 0 }, FUSION_E_MERGE_EMPTY, "no input" },
        { "no module", { { NULL, 0, 1.0, NAN } }, 1, { .rank = 0 }, FUSION_E_MERGE_EMPTY, "no LoRA" },
        { "shape differs", { { &x, 1, 1, NAN }, { &y, 1, 1, NAN } }, 2, { .rank = 0 }, FUSION_E_MERGE_SHAPE, "7 x 5" },
        { "name twice", { { dup, 2, 1, NAN } }, 1, { .rank = 0 }, FUSION_E_MERGE_SHAPE, "twice" },
        { "NaN weight", { { &x, 1, NAN, NAN } }, 1, { .rank = 0 }, FUSION_E_MERGE_WEIGHT, "input 0" },
        { "NaN scaling", { { &nans, 1, 1, NAN } }, 1, { .rank = 0 }, FUSION_E_MERGE_WEIGHT, "scaling" },
        { "tau and tau_rel", { { &x, 1, 1, NAN } }, 1, { .tau = 1, .tau_rel = 1 }, FUSION_E_MERGE_TAU, "tau" },
        { "negative tau", { { &x, 1, 1, NAN } }, 1, { .tau = -1 }, FUSION_E_MERGE_TAU, "tau" },
        { "NaN in factor", { { &z, 1, 1, NAN } }, 1, { .rank = 0 }, FUSION_E_MERGE_NONFINITE, "\"m\"" },
        { "zero rank", { { &zr, 1, 1, NAN } }, 1, { .rank = 0 }, FUSION_E_MERGE_SHAPE, "r=0" },
        { "budget without eps", { { &x, 1, 1, NAN } }, 1, { .kld_budget = 1 }, FUSION_E_MERGE_KLD_EPS, "kld_eps" },
    };

    (void)state;
    bad.B[3] = NAN;
    zr.r = 0;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct merge *m = (struct merge *)&c;
        struct fusion_diag d;
        int rc = merge_new(&m, cases[c].in, cases[c].n, &cases[c].o, &d);
        if (rc != cases[c].want)
            fail_msg("%s: got %s, want %s (%s)", cases[c].name, fusion_err_name(rc),
                     fusion_err_name(cases[c].want), d.msg);
        if (m != NULL || strstr(d.msg, cases[c].msg) == NULL)
            fail_msg("%s: out not cleared or message \"%s\" lacks \"%s\"", cases[c].name, d.msg, cases[c].msg);
    }
    free_fac(&f);
    free_fac(&g);
    free_fac(&bad);
}

/* ---- real adapters -------------------------------------------------------- */

/* Dense s B A of an adapter module (F32 in the file) in double. */
static double *module_dense(const struct adapter_module *am, double coef)
{
    double *A = malloc(am->r * am->in * sizeof(double)), *B = malloc(am->out * am->r * sizeof(double));
    double *W = calloc(am->out * am->in, sizeof(double));

    assert_non_null(W);
    assert_int_equal(adapter_module_a_f64(am, A), 0);
    assert_int_equal(adapter_module_b_f64(am, B), 0);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)am->out, (int)am->in, (int)am->r,
                coef * am->scaling, B, (int)am->r, A, (int)am->in, 0.0, W, (int)am->in);
    free(A);
    free(B);
    return W;
}

static char *tmpdir_new(void)
{
    char *t = strdup("/tmp/test_merge_XXXXXX");

    assert_non_null(t);
    if (mkdtemp(t) == NULL)
        fail_msg("mkdtemp failed");
    return t;
}

static void rm_dir(const char *dir)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fail_msg("cannot remove %s", dir);
}

/* gpt2 c_attn (fan_in_fan_out): LoRA factors stay [r, in] / [out, r]; the
 * merged adapter, written and read back, has the same delta and layout. */
static void test_fan_in_fan_out_roundtrip(void **state)
{
    struct adapter *a = open_fixture("peft/gpt2-c_attn-r8"), *back = NULL;
    struct merge_factor *x = NULL;
    size_t nx = 0;
    struct fusion_diag d;
    struct merge *m;
    struct merge_opts o = { .rank = 8 };
    char *dir = tmpdir_new();
    struct merge_out_spec spec = { .base_model = "gpt2", .fan_in_fan_out = true, .passthrough = NULL };

    (void)state;
    assert_true(adapter_config(a)->fan_in_fan_out);
    assert_int_equal(merge_factors_from_adapter(a, &x, &nx, &d), 0);
    struct merge_input in = { x, nx, 1.0, NAN };
    m = must_merge(&in, 1, &o);
    spec.passthrough = a;
    if (merge_out_write(m, dir, &spec, &d) != 0)
        fail_msg("merge_out_write: %s", d.msg);
    if (adapter_open(&back, dir, &d) != 0)
        fail_msg("reading the merged adapter back: %s", d.msg);
    assert_int_equal(adapter_module_count(back), adapter_module_count(a));
    assert_true(adapter_config(back)->fan_in_fan_out);
    assert_int_equal(adapter_other_count(back), adapter_other_count(a));
    for (size_t i = 0; i < adapter_module_count(a); i++) {
        const struct adapter_module *am = adapter_module_at(a, i), *bm = adapter_module_at(back, i);
        double *ref = module_dense(am, 1.0), *got = module_dense(bm, 1.0);
        assert_string_equal(am->name, bm->name);
        assert_true(bm->out == am->out && bm->in == am->in && bm->r == 8);
        expect_close("scaling 1", bm->scaling, 1.0, 0.0);
        if (rel_diff(got, ref, am->out * am->in) > 1e-6)
            fail_msg("%s: round-trip rel err %g", am->name, rel_diff(got, ref, am->out * am->in));
        free(ref);
        free(got);
    }
    const struct safetensors_tensor *t0 = adapter_other_at(a, 0), *t1 = adapter_other_at(back, 0);
    assert_string_equal(t0->name, t1->name);
    assert_true(t0->nbytes == t1->nbytes && memcmp(t0->data, t1->data, t0->nbytes) == 0);
    adapter_free(back);
    merge_free(m);
    free(x);
    adapter_free(a);
    rm_dir(dir);
    free(dir);
}

/* The real distilbert pair against a dense double reference per module:
 * rel err <= 1e-5 on Frobenius norms, <= 1e-4 on the top singular values. */
static void test_distilbert_dense(void **state)
{
    struct adapter *ad[2] = { open_fixture("peft/distilbert-imdb-r8"), open_fixture("peft/distilbert-emotion-r8") };
    struct merge_factor *x[2];
    size_t nx[2];
    double w[2] = { 0.6, 0.4 };
    struct merge_input in[2];
    struct merge_opts o = { .tau_rel = 0.8, .rank = 8 };
    struct fusion_diag d;
    struct merge *m;
    double dropped = 0.0;

    (void)state;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(merge_factors_from_adapter(ad[k], &x[k], &nx[k], &d), 0);
        in[k] = (struct merge_input){ x[k], nx[k], w[k], NAN };
    }
    m = must_merge(in, 2, &o);
    const struct merge_summary *s = merge_summary(m);
    assert_int_equal(s->n_modules, 12);
    assert_int_equal(s->rank_out, 8);
    assert_true(s->frob_out <= s->tau * (1 + 1e-12));
    expect_close("scale", s->scale, 0.8, 1e-15);
    for (size_t i = 0; i < merge_module_count(m); i++) {
        const struct merge_module_info *mi = merge_module(m, i);
        size_t n = mi->out * mi->in;
        double *ref = calloc(n, sizeof(double)), *sv, *gsv, *W, drop = 0.0;
        for (int k = 0; k < 2; k++) {
            double *p = module_dense(adapter_module_find(ad[k], mi->name), w[k]);
            cblas_daxpy((int)n, 1.0, p, 1, ref, 1);
            free(p);
        }
        sv = svals(ref, mi->out, mi->in);
        W = merged_dense(m, i);
        gsv = svals(W, mi->out, mi->in);
        expect_close(mi->name, mi->frob, frob(ref, n), 1e-5);
        expect_close("frob_out (dense)", frob(W, n), mi->frob_out, 1e-5);
        for (size_t j = 0; j < 8; j++)
            expect_close("top singular value", gsv[j], s->scale * sv[j], 1e-4);
        expect_close("sigma_max", mi->sigma_max, sv[0], 1e-4);
        for (size_t j = 8; j < 16; j++)
            drop += s->scale * s->scale * sv[j] * sv[j];
        expect_close("dropped", mi->dropped_energy, drop, 1e-4);
        dropped += drop;
        free(sv);
        free(gsv);
        free(W);
        free(ref);
    }
    expect_close("total dropped", s->dropped_energy, dropped, 1e-4);
    merge_free(m);
    for (int k = 0; k < 2; k++) {
        free(x[k]);
        adapter_free(ad[k]);
    }
}

/* rslora, rank_pattern and alpha_pattern: scalings come per module from the
 * config, through the reader, into the merge. */
static void test_patterns(void **state)
{
    static const char cfg_txt[] =
        "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16,\"use_rslora\":true,"
        "\"target_modules\":[\"q\",\"v\"],\"rank_pattern\":{\"q\":4},\"alpha_pattern\":{\"v\":32},"
        "\"base_model_name_or_path\":\"toy\"}";
    char *dir = tmpdir_new(), path[512];
    struct fac fq = make_fac(12, 10, 4), fv = make_fac(12, 10, 8);
    struct st_write_tensor t[4] = {
        { "base_model.model.l.q.lora_A.weight", SAFETENSORS_F64, 2, { 4, 10 } },
        { "base_model.model.l.q.lora_B.weight", SAFETENSORS_F64, 2, { 12, 4 } },
        { "base_model.model.l.v.lora_A.weight", SAFETENSORS_F64, 2, { 8, 10 } },
        { "base_model.model.l.v.lora_B.weight", SAFETENSORS_F64, 2, { 12, 8 } },
    };
    struct st_writer *w = NULL;
    struct adapter *a = NULL;
    struct merge_factor *x = NULL;
    size_t nx;
    struct fusion_diag d;
    double *rq = calloc(120, sizeof(double)), *rv = calloc(120, sizeof(double)), *W;

    (void)state;
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    assert_int_equal(st_writer_new(&w, path, t, 4, &d), 0);
    assert_int_equal(st_writer_put_f64(w, 0, fq.A, 40, &d), 0);
    assert_int_equal(st_writer_put_f64(w, 1, fq.B, 48, &d), 0);
    assert_int_equal(st_writer_put_f64(w, 3, fv.B, 96, &d), 0);
    assert_int_equal(st_writer_finish(w, &d), FUSION_E_ST_WRITE);   /* v's A missing */
    assert_non_null(strstr(d.msg, "l.v.lora_A"));
    assert_int_equal(st_writer_put_f64(w, 2, fv.A, 79, &d), FUSION_E_ST_WRITE);
    assert_int_equal(st_writer_put_f64(w, 2, fv.A, 80, &d), 0);
    assert_int_equal(st_writer_put_f64(w, 2, fv.A, 80, &d), FUSION_E_ST_WRITE);  /* twice */
    assert_int_equal(st_writer_finish(w, &d), 0);
    st_writer_free(w);
    snprintf(path, sizeof(path), "%s/adapter_config.json", dir);
    assert_int_equal(merge_out_write_file(path, cfg_txt, strlen(cfg_txt), &d), 0);
    if (adapter_open(&a, dir, &d) != 0)
        fail_msg("adapter_open: %s", d.msg);
    assert_int_equal(merge_factors_from_adapter(a, &x, &nx, &d), 0);
    assert_int_equal(nx, 2);
    expect_close("q: 16/sqrt(4)", x[0].scaling, 8.0, 1e-15);
    expect_close("v: 32/sqrt(8)", x[1].scaling, 32.0 / sqrt(8.0), 1e-15);
    struct merge_input in = { x, nx, -0.5, NAN };
    struct merge_opts o = { 0 };
    struct merge *m = must_merge(&in, 1, &o);
    struct merge_factor q = mf("q", &fq, 0), v = mf("v", &fv, 0);
    dense_add(rq, &q, -0.5 * 8.0);
    dense_add(rv, &v, -0.5 * 32.0 / sqrt(8.0));
    W = merged_dense(m, 0);
    assert_true(rel_diff(W, rq, 120) < 1e-13);
    free(W);
    W = merged_dense(m, 1);
    assert_true(rel_diff(W, rv, 120) < 1e-13);
    free(W);
    merge_free(m);
    free(x);
    adapter_free(a);
    free(rq);
    free(rv);
    free_fac(&fq);
    free_fac(&fv);
    rm_dir(dir);
    free(dir);
}

/* BF16 and F16 inputs are widened exactly; outputs rounded to the dtype. */
static void test_half_inputs(void **state)
{
    /* 0x3f80 = 1.0 bf16, 0xc000 = -2.0, 0x3c00 = 1.0 f16, 0x3800 = 0.5 */
    static const uint16_t A_bf[2] = { 0x3f80, 0xc000 }, B_bf[2] = { 0x3f80, 0x3f80 };
    static const uint16_t A_h[2] = { 0x3c00, 0x3800 }, B_h[2] = { 0x3800, 0x3c00 };
    struct merge_factor xb = { "m", 2, 2, 1, 1.0, SAFETENSORS_BF16, A_bf, B_bf };
    struct merge_factor xh = { "m", 2, 2, 1, 2.0, SAFETENSORS_F16, A_h, B_h };
    struct merge_input in[2] = { { &xb, 1, 1.0, NAN }, { &xh, 1, 1.0, NAN } };
    struct merge_opts o = { 0 };
    struct merge *m = must_merge(in, 2, &o);
    double *W = merged_dense(m, 0);
    /* 1*[1;1][1 -2] + 2*[.5;1][1 .5] = [2 -1.5; 3 -1] */
    const double want[4] = { 2.0, -1.5, 3.0, -1.0 };

    (void)state;
    assert_true(rel_diff(W, want, 4) < 1e-15);
    free(W);
    merge_free(m);
}


/* Inputs are read through a 128 KiB staging buffer: an A longer than it
 * (read in pieces), a B of many short rows (read a whole number of rows at
 * a time, with a remainder) and an F32 factor at an odd address must come
 * out exactly (exact merge: the output is the scaled concatenation). */
static void test_staged_reads(void **state)
{
    struct fac f = make_fac(7001, 6007, 3);           /* A: 144 KiB of F64; B: 7001 rows of 24 bytes */
    size_t nb = 5 * 9001 * 4 + 1;
    unsigned char *raw = malloc(2 * nb);              /* F32 pair, both at odd addresses */
    struct merge_factor x[2] = { mf("m", &f, 2.0),
                                 { "n", 9001, 9001, 5, 1.0, SAFETENSORS_F32, raw + 1, raw + nb + 1 } };
    struct merge_input in = { x, 2, 0.5, NAN };
    struct merge_opts o = { .threads = 2 };
    struct merge *m;
    double *A = malloc(6007 * 5 * sizeof(double) + 9001 * 5 * sizeof(double)), *B = A + 6007 * 5;
    float v;

    (void)state;
    assert_non_null(raw);
    assert_non_null(A);
    for (size_t j = 0; j < 2 * 5 * 9001; j++) {
        v = (float)urand();
        memcpy(raw + 1 + (j < 5 * 9001 ? 4 * j : nb + 4 * (j - 5 * 9001)), &v, 4);
    }
    m = must_merge(&in, 1, &o);
    assert_int_equal(merge_summary(m)->rank_out, 5);
    assert_int_equal(merge_factors(m, 0, B, A, NULL), 0);   /* "m": K = 5 > r = 3, zero-padded */
    for (size_t k = 0; k < 3 * 6007; k++)
        if (A[k] != f.A[k])
            fail_msg("m: A[%zu] = %.17g, want %.17g", k, A[k], f.A[k]);
    for (size_t o2 = 0; o2 < 7001; o2++)
        for (size_t j = 0; j < 5; j++)
            if (B[o2 * 5 + j] != (j < 3 ? 0.5 * 2.0 * f.B[o2 * 3 + j] : 0.0))
                fail_msg("m: B[%zu][%zu] = %.17g", o2, j, B[o2 * 5 + j]);
    free(A);
    A = malloc(2 * 5 * 9001 * sizeof(double));
    B = A + 5 * 9001;
    assert_non_null(A);
    assert_int_equal(merge_factors(m, 1, B, A, NULL), 0);
    for (size_t k = 0; k < 5 * 9001; k++) {
        memcpy(&v, raw + 1 + 4 * k, 4);
        if (A[k] != (double)v)
            fail_msg("n: A[%zu] = %.17g, want %.17g", k, A[k], (double)v);
        memcpy(&v, raw + nb + 1 + 4 * k, 4);
        if (B[k] != 0.5 * (double)v)
            fail_msg("n: B[%zu] = %.17g, want %.17g", k, B[k], 0.5 * (double)v);
    }
    free(A);
    merge_free(m);
    free(raw);
    free_fac(&f);
}

/* The certificate replays: options and weights read back from it give a
 * merge that passes certificate_check; each tampered field fails, named. */
static void test_certificate(void **state)
{
    struct fac f1 = make_fac(30, 20, 4), f2 = make_fac(30, 20, 3), f3 = make_fac(16, 20, 2);
    struct merge_factor x1[2] = { mf("a", &f1, 2.0), mf("b", &f3, 1.0) }, x2 = mf("a", &f2, 0.5);
    struct merge_input in[2] = { { x1, 2, 0.7, 0.04 }, { &x2, 1, -0.4, 0.01 } };
    struct merge_opts o = { .tau_rel = 0.6, .rank = 3, .kld_budget = 0.005, .module_cap = 100.0 };
    struct certificate_input ci[2] = {
        { .path = "in0", .sha256 = "00", .config_sha256 = "11", .r = 4, .alpha = 8, .scaling = 2,
          .weight_given = 0.7, .kld_eps = 0.04, .fisher = NAN },
        { .path = "in1", .sha256 = "22", .config_sha256 = "33", .r = 3, .alpha = 1.5, .scaling = 0.5,
          .weight_given = -0.4, .kld_eps = 0.01, .fisher = 2.0 },
    };
    struct certificate_output co = { .path = "out", .sha256 = "44", .config_sha256 = "55", .bytes = 123 };
    static const struct { const char *path; const char *field; } tamper[] = {
        { "frob_merged", "frob_merged" }, { "scale", "scale" }, { "frob_out", "frob_out" },
        { "dropped_energy", "dropped_energy" }, { "modules.0.frob", "module \"a\" frob" },
        { "modules.1.frob_out", "module \"b\" frob_out" }, { "modules.0.dropped_energy", "dropped_energy" },
        { "rank_out", "rank_out" }, { "format", "format" }, { "modules.1.name", "modules[1].name" },
    };
    struct merge *m = must_merge(in, 2, &o), *r;
    json_t *cert = certificate_build(m, &o, "given", ci, 2, 0, &co);
    struct merge_opts ro;
    double wg[4], eps[4];
    size_t n;
    struct fusion_diag d;

    (void)state;
    assert_non_null(cert);
    assert_true(merge_summary(m)->kld_scaled);
    assert_int_equal(certificate_replay_opts(cert, &ro, wg, eps, 4, &n, &d), 0);
    assert_int_equal(n, 2);
    assert_true(ro.tau_rel == 0.6 && ro.rank == 3 && ro.kld_budget == 0.005 && ro.module_cap == 100.0 &&
                ro.tau == 0.0);
    assert_true(wg[0] == 0.7 && wg[1] == -0.4 && eps[0] == 0.04 && eps[1] == 0.01);
    struct merge_input rin[2] = { { x1, 2, wg[0], eps[0] }, { &x2, 1, wg[1], eps[1] } };
    r = must_merge(rin, 2, &ro);
    if (certificate_check(cert, r, &d) != 0)
        fail_msg("honest replay rejected: %s", d.msg);
    assert_true(json_real_value(json_object_get(json_array_get(json_object_get(cert, "inputs"), 1), "weight"))
                == merge_weight(m, 1));
    assert_true(json_is_null(json_object_get(json_array_get(json_object_get(cert, "inputs"), 0), "fisher")));
    for (size_t t = 0; t < sizeof(tamper) / sizeof(tamper[0]); t++) {
        json_t *c = json_deep_copy(cert), *obj = c, *v;
        char key[64], *dot, *p = key;
        snprintf(key, sizeof(key), "%s", tamper[t].path);
        while ((dot = strchr(p, '.')) != NULL) {       /* walk "modules.0.frob" */
            *dot = '\0';
            obj = json_is_array(obj) ? json_array_get(obj, (size_t)atoi(p)) : json_object_get(obj, p);
            p = dot + 1;
        }
        obj = json_is_array(obj) ? json_array_get(obj, (size_t)atoi(p)) : obj;
        v = json_object_get(obj, p);
        if (json_is_real(v))
            json_object_set_new(obj, p, json_real(json_real_value(v) * (1 + 1e-6) + 1e-6));
        else if (json_is_integer(v))
            json_object_set_new(obj, p, json_integer(json_integer_value(v) + 1));
        else
            json_object_set_new(obj, p, json_string("tampered"));
        if (certificate_check(c, r, &d) != FUSION_E_CERT || strstr(d.msg, tamper[t].field) == NULL)
            fail_msg("tampered %s: not caught or message \"%s\" lacks \"%s\"", tamper[t].path, d.msg,
                     tamper[t].field);
        json_decref(c);
    }
    json_object_del(cert, "options");
    assert_int_equal(certificate_replay_opts(cert, &ro, wg, eps, 4, &n, &d), FUSION_E_CERT);
    json_decref(cert);
    merge_free(r);
    merge_free(m);
    free_fac(&f1);
    free_fac(&f2);
    free_fac(&f3);
}

/* Thread count changes nothing: the same bytes out for 1, 2 and 3 workers
 * (a replay on another machine must write the same adapter). */
static void test_threads_deterministic(void **state)
{
    struct adapter *ad[2] = { open_fixture("peft/distilbert-imdb-r8"), open_fixture("peft/distilbert-emotion-r8") };
    struct merge_factor *x[2];
    size_t nx[2];
    struct merge_input in[2];
    struct fusion_diag d;
    double *ref[12] = { 0 };

    (void)state;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(merge_factors_from_adapter(ad[k], &x[k], &nx[k], &d), 0);
        in[k] = (struct merge_input){ x[k], nx[k], k ? -0.3 : 0.9, NAN };
    }
    for (unsigned th = 1; th <= 3; th++) {
        struct merge_opts o = { .tau = 1.0, .rank = 5, .threads = th };
        struct merge *m = must_merge(in, 2, &o);
        assert_int_equal(merge_module_count(m), 12);
        for (size_t i = 0; i < 12; i++) {
            double *W = merged_dense(m, i);
            if (th == 1)
                ref[i] = W;
            else {
                if (memcmp(W, ref[i], 768 * 768 * sizeof(double)) != 0)
                    fail_msg("threads=%u: module %zu differs from threads=1", th, i);
                free(W);
            }
        }
        merge_free(m);
    }
    for (size_t i = 0; i < 12; i++)
        free(ref[i]);
    for (int k = 0; k < 2; k++) {
        free(x[k]);
        adapter_free(ad[k]);
    }
}

static unsigned char *slurp(const char *dir, const char *name, size_t *n)
{
    char p[512];
    FILE *f;
    unsigned char *buf;
    long len;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    if ((f = fopen(p, "rb")) == NULL)
        fail_msg("cannot open %s", p);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

/* Without a trust region merge_out_write emits during the first pass (each
 * input read once); the bytes equal those of the two-pass path. */
static void test_single_pass_same_bytes(void **state)
{
    struct adapter *ad[2] = { open_fixture("peft/distilbert-imdb-r8"), open_fixture("peft/distilbert-emotion-r8") };
    struct merge_factor *x[2];
    size_t nx[2], n1, n2;
    struct merge_input in[2];
    struct merge_opts o = { .rank = 6 };
    struct merge_out_spec spec = { .base_model = "distilbert-base-uncased" };
    struct fusion_diag d;
    struct merge *m1 = NULL, *m2;
    char *dir1 = tmpdir_new(), *dir2 = tmpdir_new();
    unsigned char *b1, *b2;

    (void)state;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(merge_factors_from_adapter(ad[k], &x[k], &nx[k], &d), 0);
        in[k] = (struct merge_input){ x[k], nx[k], 0.5, NAN };
    }
    assert_int_equal(merge_prepare(&m1, in, 2, &o, &d), 0);
    assert_false(merge_computed(m1));
    assert_int_equal(merge_factors(m1, 0, NULL, NULL, &d), FUSION_E_MERGE_STATE);
    if (merge_out_write(m1, dir1, &spec, &d) != 0)
        fail_msg("single pass: %s", d.msg);
    assert_true(merge_computed(m1));
    assert_int_equal(merge_compute(m1, NULL, NULL, &d), FUSION_E_MERGE_STATE);
    m2 = must_merge(in, 2, &o);
    if (merge_out_write(m2, dir2, &spec, &d) != 0)
        fail_msg("two passes: %s", d.msg);
    b1 = slurp(dir1, "adapter_model.safetensors", &n1);
    b2 = slurp(dir2, "adapter_model.safetensors", &n2);
    assert_true(n1 == n2 && memcmp(b1, b2, n1) == 0);
    assert_true(merge_summary(m1)->frob_out == merge_summary(m2)->frob_out);
    free(b1);
    free(b2);
    merge_free(m1);
    merge_free(m2);
    for (int k = 0; k < 2; k++) {
        free(x[k]);
        adapter_free(ad[k]);
    }
    rm_dir(dir1);
    rm_dir(dir2);
    free(dir1);
    free(dir2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_weights_table),
        cmocka_unit_test(test_self_cancel),
        cmocka_unit_test(test_partial_modules),
        cmocka_unit_test(test_trust_region),
        cmocka_unit_test(test_kld_budget),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_fan_in_fan_out_roundtrip),
        cmocka_unit_test(test_distilbert_dense),
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_half_inputs),
        cmocka_unit_test(test_staged_reads),
        cmocka_unit_test(test_certificate),
        cmocka_unit_test(test_threads_deterministic),
        cmocka_unit_test(test_single_pass_same_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
