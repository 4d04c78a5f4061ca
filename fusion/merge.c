/* fusion/merge.c: factored merge, trust region, rank-K re-projection (see merge.h). */
#define _GNU_SOURCE  /* process_vm_readv */
#include "merge.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kld.h"
#include "merge_core.h"

struct contrib {
    size_t input;                  /* index into in[] */
    const struct merge_factor *f;
};

struct mod {
    struct merge_module_info info;
    size_t first, count;   /* contributions c[first .. first+count) */
    size_t kk;             /* columns of tb / ta (rank kept by the re-projection) */
    double *tb;            /* R x kk: B_out = c_m B_cat tb; NULL when output exactly */
    double *ta;            /* R x kk: A_out = ta^T A_cat */
    double kept;           /* sum_{j<K} s_j^2 of the unscaled delta (exact: frob^2) */
};

/* Bytes of input factor staged at a time (L2-sized), or one stored row of B if longer. */
#define STAGE_BYTES (128u * 1024u)

/* One worker's scratch, sized for the largest module. */
struct ws {
    unsigned char *stage;  /* stage_len bytes: input factor bytes copied before widening */
    size_t stage_len;
    double *bcat, *acat;   /* out x R, R x in */
    double *gb, *ga;       /* R x R Grams */
    double *bo, *ao;       /* output factors out x K, K x in (merge_emit, lazily) */
    size_t bo_len, ao_len;
    struct merge_core_ws core;
};

struct merge {
    const struct merge_input *in;
    size_t n;
    double *w;             /* effective weights (KLD scale applied) */
    struct contrib *c;
    size_t nc;
    struct mod *mods;
    size_t nm;
    double *dropped;       /* per module, unscaled, from the first pass */
    struct merge_summary sum;
    struct ws *ws;         /* nthreads workers; ws[0] also serves merge_factors */
    unsigned nthreads;
    struct merge_opts opts;
    bool computed;         /* first pass done */
    bool emitted;          /* the sink got every module during the first pass */
    merge_sink sink;       /* set while merge_compute runs with a sink */
    void *sink_ctx;
};

/* Set once process_vm_readv is refused (seccomp, ENOSYS): plain copies from then on. */
static atomic_bool vm_read_off;

/* Copy n bytes of an input factor (mapped memory) into w->stage.
 * process_vm_readv on our own pid copies the very pages mapped at src (so
 * the bytes a caller hashed from that mapping) through the kernel's own
 * mapping of them, so our page tables are never filled for the input. On
 * hosts with shadow page tables (this project's 2-vCPU VMs: PVM) the first
 * user access to each 4 KiB page of a fresh file mapping costs a hypervisor
 * exit, ~3 us: measured 0.21-0.25 s for bench_merge's 192 MiB of inputs
 * read in place versus 0.07 s this way; on bare metal both cost about a
 * page fault per 16 pages. A refused or short read falls back to memcpy of
 * the same bytes, so the result never depends on which path ran. */
static const unsigned char *stage_fetch(struct ws *w, const void *src, size_t n)
{
    struct iovec local = { w->stage, n }, remote = { (void *)(uintptr_t)src, n };
    ssize_t got = 0;

    if (!atomic_load_explicit(&vm_read_off, memory_order_relaxed)) {
        got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
        if (got < 0 && (errno == ENOSYS || errno == EPERM))
            atomic_store_explicit(&vm_read_off, true, memory_order_relaxed);
    }
    if (got < 0)
        got = 0;
    if ((size_t)got < n)
        memcpy(w->stage + got, (const unsigned char *)src + got, n - (size_t)got);
    return w->stage;
}

/* merge_core_convert of a rows x cols factor block through w->stage, a
 * whole number of rows at a time (pieces of a row when one row is longer
 * than the stage, which is only possible for contiguous output). The same
 * conversions in the same order as one call: the doubles are identical. */
static void convert_staged(struct ws *w, double *dst, size_t stride, const unsigned char *src,
                           enum safetensors_dtype t, size_t rows, size_t cols, double coef)
{
    size_t es = safetensors_dtype_size(t), rowb, k;

    if (stride == cols) {              /* contiguous: one long row */
        cols *= rows;
        stride = cols;
        rows = 1;
    }
    rowb = cols * es;
    if (rowb <= w->stage_len) {
        for (size_t o = 0; o < rows; o += k) {
            k = rows - o < w->stage_len / rowb ? rows - o : w->stage_len / rowb;
            merge_core_convert(dst + o * stride, stride, stage_fetch(w, src + o * rowb, k * rowb), t, k,
                               cols, coef);
        }
        return;
    }
    for (size_t j = 0; j < cols; j += k) {   /* rows == 1 here */
        k = cols - j < w->stage_len / es ? cols - j : w->stage_len / es;
        merge_core_convert(dst + j, k, stage_fetch(w, src + j * es, k * es), t, 1, k, coef);
    }
}

/* Fill w's B_cat (out x R) and/or A_cat (R x in) with module md. */
static void build_cat(const struct merge *m, struct ws *w, const struct mod *md, bool want_b, bool want_a)
{
    size_t R = md->info.r_cat, off = 0;

    for (size_t q = 0; q < md->count; q++) {
        const struct contrib *ct = &m->c[md->first + q];
        const struct merge_factor *f = ct->f;

        if (want_b)
            convert_staged(w, w->bcat + off, R, f->B, f->dtype, f->out, f->r, m->w[ct->input] * f->scaling);
        if (want_a)
            convert_staged(w, w->acat + off * f->in, f->in, f->A, f->dtype, f->r, f->in, 1.0);
        off += f->r;
    }
}

/* ---- validation and module table ---------------------------------------- */

static int cmp_contrib(const void *a, const void *b)
{
    const struct contrib *x = a, *y = b;
    int c = strcmp(x->f->name, y->f->name);

    if (c != 0)
        return c;
    return x->input < y->input ? -1 : x->input > y->input;
}

static int check_factor(const struct merge_factor *f, size_t k, size_t j, struct fusion_diag *d)
{
    if (f->name == NULL || f->A == NULL || f->B == NULL)
        return fusion_fail(d, FUSION_E_ARG, 0, "input %zu module %zu: NULL name or factor", k, j);
    if (safetensors_dtype_size(f->dtype) == 0)
        return fusion_fail(d, FUSION_E_ARG, 0, "input %zu module \"%s\": unknown dtype %d",
                           k, f->name, (int)f->dtype);
    /* caps keep every BLAS dimension an int and out * R, in * R (R <= 2^16) far from wrapping */
    if (f->out == 0 || f->in == 0 || f->r == 0 || f->r > (1u << 16) || f->out > (1u << 30) ||
        f->in > (1u << 30))
        return fusion_fail(d, FUSION_E_MERGE_SHAPE, 0,
                           "input %zu module \"%s\": shape out=%zu in=%zu r=%zu out of range",
                           k, f->name, f->out, f->in, f->r);
    if (!isfinite(f->scaling))
        return fusion_fail(d, FUSION_E_MERGE_WEIGHT, 0, "input %zu module \"%s\": scaling %g",
                           k, f->name, f->scaling);
    return 0;
}

static int check_inputs(const struct merge_input *in, size_t n, const struct merge_opts *o,
                        size_t *total, struct fusion_diag *d)
{
    int rc;

    *total = 0;
    if (n == 0)
        return fusion_fail(d, FUSION_E_MERGE_EMPTY, 0, "no input adapter to merge");
    for (size_t k = 0; k < n; k++) {
        if (!isfinite(in[k].weight))
            return fusion_fail(d, FUSION_E_MERGE_WEIGHT, 0, "input %zu: weight %g not finite",
                               k, in[k].weight);
        if (in[k].n_modules > 0 && in[k].modules == NULL)
            return fusion_fail(d, FUSION_E_ARG, 0, "input %zu: NULL module list", k);
        for (size_t j = 0; j < in[k].n_modules; j++)
            if ((rc = check_factor(&in[k].modules[j], k, j, d)) != 0)
                return rc;
        *total += in[k].n_modules;
    }
    if (*total == 0)
        return fusion_fail(d, FUSION_E_MERGE_EMPTY, 0, "the %zu input(s) hold no LoRA module", n);
    if (!(o->tau >= 0.0) || !isfinite(o->tau) || !(o->tau_rel >= 0.0) || !isfinite(o->tau_rel) ||
        (o->tau > 0.0 && o->tau_rel > 0.0) || !(o->module_cap >= 0.0) || !isfinite(o->module_cap))
        return fusion_fail(d, FUSION_E_MERGE_TAU, 0,
                           "tau %g / tau_rel %g / module cap %g: each finite and >= 0, tau and tau_rel not both",
                           o->tau, o->tau_rel, o->module_cap);
    if (o->rank > (1u << 20))
        return fusion_fail(d, FUSION_E_MERGE_RANK, 0, "rank %zu out of range 0..%u", o->rank, 1u << 20);
    return 0;
}

/* Sort the (input, module) pairs by name and group them into modules. */
static int build_modules(struct merge *m, size_t total, struct fusion_diag *d)
{
    size_t p = 0;

    if ((m->c = calloc(total, sizeof(*m->c))) == NULL ||
        (m->mods = calloc(total, sizeof(*m->mods))) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "merge: %zu module entries", total);
    for (size_t k = 0; k < m->n; k++)
        for (size_t j = 0; j < m->in[k].n_modules; j++)
            m->c[p++] = (struct contrib){ k, &m->in[k].modules[j] };
    m->nc = total;
    qsort(m->c, total, sizeof(*m->c), cmp_contrib);
    for (size_t i = 0; i < total; i++) {
        const struct merge_factor *f = m->c[i].f;
        struct mod *md = &m->mods[m->nm];

        if (i > 0 && strcmp(f->name, m->c[i - 1].f->name) == 0) {
            const struct merge_factor *g = m->c[md[-1].first].f;
            if (m->c[i].input == m->c[i - 1].input)
                return fusion_fail(d, FUSION_E_MERGE_SHAPE, 0, "input %zu: module \"%s\" appears twice",
                                   m->c[i].input, f->name);
            if (f->out != g->out || f->in != g->in)
                return fusion_fail(d, FUSION_E_MERGE_SHAPE, 0,
                                   "module \"%s\": input %zu has out x in = %zu x %zu, input %zu %zu x %zu",
                                   f->name, m->c[md[-1].first].input, g->out, g->in,
                                   m->c[i].input, f->out, f->in);
            md[-1].count++;
            md[-1].info.n_inputs++;
            md[-1].info.r_cat += f->r;
            continue;
        }
        md->first = i;
        md->count = 1;
        md->info = (struct merge_module_info){ .name = f->name, .out = f->out, .in = f->in,
                                               .n_inputs = 1, .r_cat = f->r, .dtype = f->dtype,
                                               .scale = 1.0 };
        m->nm++;
    }
    return 0;
}

/* Effective weights: as given, times the KLD budget's uniform scale. */
static int apply_kld(struct merge *m, const struct merge_opts *o, struct fusion_diag *d)
{
    double *eps = NULL;
    struct kld_bound b;
    bool have = true;
    int rc = 0;

    if ((m->w = calloc(m->n, sizeof(*m->w))) == NULL || (eps = calloc(m->n, sizeof(*eps))) == NULL) {
        rc = fusion_fail(d, FUSION_E_NOMEM, 0, "merge: weights");
        goto out;
    }
    for (size_t k = 0; k < m->n; k++) {
        m->w[k] = m->in[k].weight;
        eps[k] = m->in[k].kld_eps;
        if (!(eps[k] >= 0.0) || !isfinite(eps[k]))
            have = false;
        if (!have && o->kld_budget > 0.0) {
            rc = fusion_fail(d, FUSION_E_MERGE_KLD_EPS, 0,
                             "--kld-budget %g given but input %zu has kld_eps %g (need a finite value >= 0)",
                             o->kld_budget, k, eps[k]);
            goto out;
        }
    }
    m->sum.kld_budget = o->kld_budget;
    m->sum.kld_scale = 1.0;
    m->sum.kld_local = m->sum.kld_cs = m->sum.kld_local_given = NAN;
    if (!have)
        goto out;
    if ((rc = kld_bound_compute(m->w, eps, m->n, &b, d)) != 0 ||
        (o->kld_budget > 0.0 && (rc = kld_budget_scale(m->w, eps, m->n, o->kld_budget,
                                                        &m->sum.kld_scale, d)) != 0))
        goto out;
    m->sum.kld_local_given = b.local;
    m->sum.kld_scaled = m->sum.kld_scale < 1.0;
    for (size_t k = 0; k < m->n; k++)
        m->w[k] *= m->sum.kld_scale;
    rc = kld_bound_compute(m->w, eps, m->n, &b, d);
    m->sum.kld_local = b.local;
    m->sum.kld_cs = b.cs;
out:
    free(eps);
    return rc;
}

/* ---- first pass --------------------------------------------------------- */

/* Output factors of module i into B_out / A_out (either may be NULL) from
 * w's B_cat / A_cat, which hold module i already. */
static void factors_built(struct merge *m, struct ws *w, size_t i, double *B_out, double *A_out)
{
    const struct mod *md = &m->mods[i];
    size_t K = m->sum.rank_out, R = md->info.r_cat, out = md->info.out, in = md->info.in;

    if (R <= K) {                                    /* exact: the scaled concatenation */
        for (size_t o = 0; B_out != NULL && o < out; o++) {
            for (size_t j = 0; j < R; j++)
                B_out[o * K + j] = md->info.scale * w->bcat[o * R + j];
            memset(B_out + o * K + R, 0, (K - R) * sizeof(double));
        }
        if (A_out != NULL) {
            memcpy(A_out, w->acat, R * in * sizeof(double));
            memset(A_out + R * in, 0, (K - R) * in * sizeof(double));
        }
        return;
    }
    if (B_out != NULL) {
        if (md->kk < K)
            memset(B_out, 0, out * K * sizeof(double));
        if (md->kk > 0)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)out, (int)md->kk, (int)R,
                        md->info.scale, w->bcat, (int)R, md->tb, (int)md->kk, 0.0, B_out, (int)K);
    }
    if (A_out != NULL) {
        memset(A_out + md->kk * in, 0, (K - md->kk) * in * sizeof(double));
        if (md->kk > 0)
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)md->kk, (int)in, (int)R, 1.0,
                        md->ta, (int)md->kk, w->acat, (int)in, 0.0, A_out, (int)in);
    }
}

static void factors(struct merge *m, struct ws *w, size_t i, double *B_out, double *A_out)
{
    build_cat(m, w, &m->mods[i], B_out != NULL, A_out != NULL);
    factors_built(m, w, i, B_out, A_out);
}

/* Compute module i's factors into w's output buffers and hand them to the sink. */
static int emit_built(struct merge *m, struct ws *w, size_t i, struct fusion_diag *d)
{
    if (w->bo == NULL && ((w->bo = malloc((w->bo_len ? w->bo_len : 1) * sizeof(double))) == NULL ||
                          (w->ao = malloc((w->ao_len ? w->ao_len : 1) * sizeof(double))) == NULL))
        return fusion_fail(d, FUSION_E_NOMEM, 0, "merge: output buffers of %zu + %zu doubles",
                           w->bo_len, w->ao_len);
    factors_built(m, w, i, w->bo, w->ao);
    return m->sink(m->sink_ctx, i, w->bo, w->ao, d);
}

/* Re-projection of module i from w's Grams; keeps its figures and transforms. */
static int reproject(struct merge *m, struct mod *md, size_t i, struct ws *w, struct fusion_diag *d)
{
    struct merge_core_result r;
    size_t R = md->info.r_cat;
    int rc = merge_core_reproject(w->gb, w->ga, R, m->sum.rank_out, &w->core, &r);

    if (rc == MERGE_CORE_E_NOMEM)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "module \"%s\": transforms of rank %zu", md->info.name, R);
    if (rc != 0)
        return fusion_fail(d, FUSION_E_MERGE_LAPACK, 0, "module \"%s\": %s failed on a %zu x %zu matrix",
                           md->info.name, rc == MERGE_CORE_E_SVD ? "dgesdd" : "dsyevd", R, R);
    /* trace(G_B G_A) = ||dW||^2 exactly, but its rounding error is eps ||B||^2 ||A||^2,
     * i.e. sqrt(eps) relative on ||dW|| when inputs cancel; the core's singular values
     * give the same norm to eps ||B|| ||A||. */
    md->info.frob = r.frob;
    md->info.sigma_max = r.sigma_max;
    md->kept = r.kept;
    m->dropped[i] = r.dropped;
    md->kk = r.kk;
    md->tb = r.tb;
    md->ta = r.ta;
    return 0;
}

static int first_pass_module(struct merge *m, struct ws *w, size_t i, void *ctx, struct fusion_diag *d)
{
    struct mod *md = &m->mods[i];
    size_t R = md->info.r_cat, out = md->info.out, in = md->info.in;
    double *gb = w->gb, *ga = w->ga;
    int rc;

    (void)ctx;
    build_cat(m, w, md, true, true);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)R, (int)out, 1.0, w->bcat, (int)R,
                0.0, gb, (int)R);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)R, (int)in, 1.0, w->acat, (int)in,
                0.0, ga, (int)R);
    for (size_t j = 0; j < R; j++)
        if (!isfinite(gb[j * R + j]) || !isfinite(ga[j * R + j]))
            return fusion_fail(d, FUSION_E_MERGE_NONFINITE, 0,
                               "module \"%s\": a factor holds a NaN or infinite value (or overflows)",
                               md->info.name);
    if ((rc = reproject(m, md, i, w, d)) != 0 || m->sink == NULL)
        return rc;
    return emit_built(m, w, i, d);     /* scale known (1): emit while B_cat, A_cat are hot */
}

/* ---- workers -------------------------------------------------------------- */

static void ws_free(struct ws *w)
{
    free(w->stage);
    free(w->bcat);
    free(w->acat);
    free(w->gb);
    free(w->bo);
    free(w->ao);
    merge_core_ws_free(&w->core);
}

/* Largest out*R, R*in, R, out*K, K*in over the modules; sets rank_out. */
static int size_workspace(struct merge *m, const struct merge_opts *o, size_t sz[5], struct fusion_diag *d)
{
    memset(sz, 0, 5 * sizeof(size_t));
    for (size_t i = 0; i < m->nm; i++)
        sz[2] = m->mods[i].info.r_cat > sz[2] ? m->mods[i].info.r_cat : sz[2];
    if (sz[2] > (1u << 16))   /* checked first: out, in <= 2^30 (check_factor), so no product wraps */
        return fusion_fail(d, FUSION_E_MERGE_RANK, 0, "concatenated rank %zu above %u", sz[2], 1u << 16);
    for (size_t i = 0; i < m->nm; i++) {
        const struct merge_module_info *mi = &m->mods[i].info;
        sz[0] = mi->out * mi->r_cat > sz[0] ? mi->out * mi->r_cat : sz[0];
        sz[1] = mi->in * mi->r_cat > sz[1] ? mi->in * mi->r_cat : sz[1];
    }
    m->sum.rank_requested = o->rank;
    m->sum.rank_out = (o->rank == 0 || o->rank > sz[2]) ? sz[2] : o->rank;
    for (size_t i = 0; i < m->nm; i++) {
        const struct merge_module_info *mi = &m->mods[i].info;
        sz[3] = mi->out * m->sum.rank_out > sz[3] ? mi->out * m->sum.rank_out : sz[3];
        sz[4] = mi->in * m->sum.rank_out > sz[4] ? mi->in * m->sum.rank_out : sz[4];
    }
    return 0;
}

static int alloc_workers(struct merge *m, const struct merge_opts *o, struct fusion_diag *d)
{
    size_t sz[5];
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int rc;

    if ((rc = size_workspace(m, o, sz, d)) != 0)
        return rc;
    m->nthreads = o->threads ? o->threads : (cpus < 1 ? 1u : cpus > MERGE_THREADS_MAX ? MERGE_THREADS_MAX : (unsigned)cpus);
    if (m->nthreads > m->nm)
        m->nthreads = (unsigned)m->nm;
    if ((m->ws = calloc(m->nthreads, sizeof(*m->ws))) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "merge: %u workers", m->nthreads);
    for (unsigned t = 0; t < m->nthreads; t++) {
        struct ws *w = &m->ws[t];
        /* a stored row of B (r <= R elements of <= 8 bytes) always fits */
        w->stage_len = sz[2] * sizeof(double) > STAGE_BYTES ? sz[2] * sizeof(double) : STAGE_BYTES;
        if ((w->stage = malloc(w->stage_len)) == NULL ||
            (w->bcat = malloc(sz[0] * sizeof(double))) == NULL ||
            (w->acat = malloc(sz[1] * sizeof(double))) == NULL ||
            (w->gb = malloc(2 * sz[2] * sz[2] * sizeof(double))) == NULL ||
            merge_core_ws_alloc(&w->core, sz[2]) != 0)
            return fusion_fail(d, FUSION_E_NOMEM, 0, "merge: workspace of %zu + %zu doubles, rank %zu",
                               sz[0], sz[1], sz[2]);
        w->ga = w->gb + sz[2] * sz[2];
        w->bo_len = sz[3];
        w->ao_len = sz[4];
    }
    return 0;
}

typedef int (*module_fn)(struct merge *m, struct ws *w, size_t i, void *ctx, struct fusion_diag *d);

struct pool {
    struct merge *m;
    module_fn fn;
    void *ctx;
    pthread_mutex_t mu;
    size_t next;           /* next module to hand out */
    size_t err_i;          /* lowest failing module, or SIZE_MAX */
    int rc;
    struct fusion_diag diag;
};

struct worker_arg {
    struct pool *p;
    struct ws *w;
};

static void *worker_main(void *arg)
{
    struct worker_arg *a = arg;
    struct pool *p = a->p;
    struct fusion_diag d;

    for (;;) {
        size_t i;
        int rc;
        pthread_mutex_lock(&p->mu);
        i = p->rc != 0 ? p->m->nm : p->next++;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->m->nm)
            return NULL;
        fusion_diag_clear(&d);
        if ((rc = p->fn(p->m, a->w, i, p->ctx, &d)) == 0)
            continue;
        pthread_mutex_lock(&p->mu);
        if (p->rc == 0 || i < p->err_i) {
            p->rc = rc;
            p->err_i = i;
            p->diag = d;
        }
        pthread_mutex_unlock(&p->mu);
    }
}

/* Run fn on every module, on nthreads workers (the caller is one of them).
 * OpenBLAS runs single-threaded meanwhile, whatever nthreads is: the
 * parallelism is across modules (tall-skinny products split poorly), and
 * each module's arithmetic is then the same sequence of operations on any
 * thread count, so a replay writes the same bytes (given the same BLAS
 * kernel). The error reported is the one of the lowest module index that
 * failed. */
static int run_modules(struct merge *m, module_fn fn, void *ctx, struct fusion_diag *d)
{
    struct pool p = { .m = m, .fn = fn, .ctx = ctx, .err_i = SIZE_MAX };
    struct worker_arg args[MERGE_THREADS_MAX];
    pthread_t th[MERGE_THREADS_MAX];
    unsigned started = 0;
    int blas_threads = openblas_get_num_threads();

    pthread_mutex_init(&p.mu, NULL);
    openblas_set_num_threads(1);
    for (unsigned t = 0; t < m->nthreads; t++)
        args[t] = (struct worker_arg){ &p, &m->ws[t] };
    for (unsigned t = 1; t < m->nthreads; t++, started++)
        if (pthread_create(&th[t], NULL, worker_main, &args[t]) != 0)
            break;
    worker_main(&args[0]);
    for (unsigned t = 1; t <= started; t++)
        pthread_join(th[t], NULL);
    openblas_set_num_threads(blas_threads);
    pthread_mutex_destroy(&p.mu);
    if (p.rc != 0 && d != NULL)
        *d = p.diag;
    return p.rc;
}

/* Trust region: c = min(1, tau / G), then per-module caps; final figures. */
static void apply_trust_region(struct merge *m, const struct merge_opts *o, const double *dropped)
{
    double g2 = 0.0, out2 = 0.0, de = 0.0, tau, c;

    for (size_t i = 0; i < m->nm; i++)
        g2 += m->mods[i].info.frob * m->mods[i].info.frob;
    m->sum.frob_merged = sqrt(g2);
    tau = o->tau_rel > 0.0 ? o->tau_rel * m->sum.frob_merged : (o->tau > 0.0 ? o->tau : NAN);
    c = (isnan(tau) || m->sum.frob_merged <= tau) ? 1.0 : tau / m->sum.frob_merged;
    m->sum.tau = tau;
    m->sum.scale = c;
    for (size_t i = 0; i < m->nm; i++) {
        struct mod *md = &m->mods[i];
        double cm = c;
        if (o->module_cap > 0.0 && cm * md->info.frob > o->module_cap)
            cm = o->module_cap / md->info.frob;
        md->info.scale = cm;
        md->info.dropped_energy = cm * cm * dropped[i];
        md->info.frob_out = md->info.r_cat > m->sum.rank_out ? cm * sqrt(md->kept) : cm * md->info.frob;
        md->info.rank_kept = md->tb != NULL ? md->kk : (md->info.r_cat > m->sum.rank_out ? 0 : md->info.r_cat);
        out2 += md->info.frob_out * md->info.frob_out;
        de += md->info.dropped_energy;
    }
    m->sum.frob_out = sqrt(out2);
    m->sum.dropped_energy = de;
}

/* Whether every module's scale is 1 before the first pass (no trust region
 * and no cap), so outputs can be emitted during it. */
static bool scale_known(const struct merge_opts *o)
{
    return o->tau == 0.0 && o->tau_rel == 0.0 && o->module_cap == 0.0;
}

/* ---- public ------------------------------------------------------------- */

int merge_prepare(struct merge **out, const struct merge_input *in, size_t n,
                  const struct merge_opts *opts, struct fusion_diag *d)
{
    struct merge *m = NULL;
    size_t total;
    int rc;

    if (out == NULL || (n > 0 && in == NULL) || opts == NULL)
        return fusion_fail(d, FUSION_E_ARG, 0, "merge_prepare: NULL argument");
    *out = NULL;
    if ((rc = check_inputs(in, n, opts, &total, d)) != 0)
        return rc;
    if (!(opts->kld_budget >= 0.0) || !isfinite(opts->kld_budget))
        return fusion_fail(d, FUSION_E_KLD_ARG, 0, "KLD budget %g must be finite and >= 0", opts->kld_budget);
    if ((m = calloc(1, sizeof(*m))) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "merge object");
    m->in = in;
    m->n = n;
    m->opts = *opts;
    m->sum.n_inputs = n;
    if ((rc = build_modules(m, total, d)) != 0 || (rc = apply_kld(m, opts, d)) != 0 ||
        (rc = alloc_workers(m, opts, d)) != 0)
        goto out;
    if ((m->dropped = calloc(m->nm, sizeof(double))) == NULL) {
        rc = fusion_fail(d, FUSION_E_NOMEM, 0, "merge: %zu modules", m->nm);
        goto out;
    }
    m->sum.n_modules = m->nm;
    *out = m;
    m = NULL;
out:
    merge_free(m);
    return rc;
}

int merge_compute(struct merge *m, merge_sink sink, void *ctx, struct fusion_diag *d)
{
    int rc;

    if (m == NULL || m->computed)
        return fusion_fail(d, FUSION_E_MERGE_STATE, 0, "merge_compute: NULL or already computed");
    m->sink = scale_known(&m->opts) ? sink : NULL;
    m->sink_ctx = ctx;
    rc = run_modules(m, first_pass_module, NULL, d);
    m->emitted = rc == 0 && m->sink != NULL;
    m->sink = NULL;
    if (rc != 0)
        return rc;
    apply_trust_region(m, &m->opts, m->dropped);
    m->computed = true;
    return 0;
}

bool merge_computed(const struct merge *m)
{
    return m->computed;
}

int merge_new(struct merge **out, const struct merge_input *in, size_t n,
              const struct merge_opts *opts, struct fusion_diag *d)
{
    int rc = merge_prepare(out, in, n, opts, d);

    if (rc == 0 && (rc = merge_compute(*out, NULL, NULL, d)) != 0) {
        merge_free(*out);
        *out = NULL;
    }
    return rc;
}

void merge_free(struct merge *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; m->mods != NULL && i < m->nm; i++) {
        free(m->mods[i].tb);
        free(m->mods[i].ta);
    }
    for (unsigned t = 0; m->ws != NULL && t < m->nthreads; t++)
        ws_free(&m->ws[t]);
    free(m->ws);
    free(m->dropped);
    free(m->mods);
    free(m->c);
    free(m->w);
    free(m);
}

const struct merge_summary *merge_summary(const struct merge *m)
{
    return &m->sum;
}

size_t merge_module_count(const struct merge *m)
{
    return m->nm;
}

const struct merge_module_info *merge_module(const struct merge *m, size_t i)
{
    return i < m->nm ? &m->mods[i].info : NULL;
}

double merge_weight(const struct merge *m, size_t k)
{
    return k < m->n ? m->w[k] : NAN;
}

int merge_factors(struct merge *m, size_t i, double *B_out, double *A_out, struct fusion_diag *d)
{
    int blas_threads;

    if (m == NULL || i >= m->nm)
        return fusion_fail(d, FUSION_E_ARG, 0, "merge_factors: module index %zu out of range", i);
    if (!m->computed)
        return fusion_fail(d, FUSION_E_MERGE_STATE, 0, "merge_factors: merge not computed");
    blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);          /* the same arithmetic as merge_emit's */
    factors(m, &m->ws[0], i, B_out, A_out);
    openblas_set_num_threads(blas_threads);
    return 0;
}

static int emit_module(struct merge *m, struct ws *w, size_t i, void *ctx, struct fusion_diag *d)
{
    (void)ctx;
    build_cat(m, w, &m->mods[i], true, true);
    return emit_built(m, w, i, d);
}

int merge_emit(struct merge *m, merge_sink sink, void *ctx, struct fusion_diag *d)
{
    int rc;

    if (m == NULL || sink == NULL || !m->computed)
        return fusion_fail(d, FUSION_E_MERGE_STATE, 0, "merge_emit: NULL argument or merge not computed");
    if (m->emitted)
        return 0;
    m->sink = sink;
    m->sink_ctx = ctx;
    rc = run_modules(m, emit_module, NULL, d);
    m->sink = NULL;
    return rc;
}

int merge_factors_from_adapter(const struct adapter *a, struct merge_factor **factors, size_t *n,
                               struct fusion_diag *d)
{
    size_t cnt;
    struct merge_factor *f;

    if (a == NULL || factors == NULL || n == NULL)
        return fusion_fail(d, FUSION_E_ARG, 0, "merge_factors_from_adapter: NULL argument");
    *factors = NULL;
    *n = 0;
    cnt = adapter_module_count(a);
    if ((f = calloc(cnt ? cnt : 1, sizeof(*f))) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "%zu merge factors", cnt);
    for (size_t i = 0; i < cnt; i++) {
        const struct adapter_module *am = adapter_module_at(a, i);
        f[i] = (struct merge_factor){ .name = am->name, .out = (size_t)am->out, .in = (size_t)am->in,
                                      .r = am->r, .scaling = am->scaling, .dtype = am->dtype,
                                      .A = am->a->data, .B = am->b->data };
    }
    *factors = f;
    *n = cnt;
    return 0;
}
