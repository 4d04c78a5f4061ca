/* bench/bench_merge.c: the factored merge on (1) a synthetic 7B-shaped case
 * (3 adapters, r = 16, 128 modules of 4096 x 4096 = 32 layers x q,k,v,o,
 * F32, weights .5/.3/.2, the third with rslora, K = 16) and (2) the real
 * distilbert-imdb + distilbert-emotion pair (tau_rel 0.8, K = 8), each timed
 * against a numpy factored merge (bench/merge_anchor.py, Gram matrices) on
 * the same files in the same run.
 *
 * plorad_s: best of N runs of adapter_open x n + merge_prepare + merge_out_write: every module's
 * output factors streamed into adapter_model.safetensors (page cache; the
 * final fsync is reported apart as fsync_s, since the anchor does not sync).
 * cpu_s: the child's user + system CPU seconds per run (mean over the runs;
 * includes, on a shared machine, contention).
 * Each case runs in a forked child so rss_mb (ru_maxrss) is that case's peak,
 * mapped input pages included; input_mb is the input safetensors' bytes.
 * check=ok when both agree on G and on the dropped energy (rel 1e-6).
 * Usage: bench_merge [FIXTURES_DIR]  (default $PLORA_FIXTURES or ../shared/fixtures);
 * BENCH_MERGE_KEEP=1 keeps the generated inputs (path on stderr).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "adapter.h"
#include "merge.h"
#include "merge_out.h"
#include "st_write.h"

#define MAXIN 3

struct result {
    double secs, cpu_s, fsync_s, rss_mb, G, dropped;
    int ok;
};

struct bcase {
    const char *name;
    const char *dirs[MAXIN];
    double w[MAXIN];
    size_t n;
    struct merge_opts o;
    int repeat;
};

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double file_mb(const char *dir)
{
    char p[4096];
    struct stat st;

    snprintf(p, sizeof(p), "%s/%s", dir, ADAPTER_WEIGHTS_NAME);
    return stat(p, &st) == 0 ? (double)st.st_size / (1024.0 * 1024.0) : 0.0;
}

/* ---- synthetic 7B-shaped inputs ------------------------------------------ */

static uint64_t rng = 0x243f6a8885a308d3ull;

static float frand(float amp)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return amp * ((float)(rng >> 40) * 0x1p-24f * 2.0f - 1.0f);
}

static int write_config(const char *dir, int rslora)
{
    char p[4096], txt[512];
    struct fusion_diag d;

    snprintf(txt, sizeof(txt),
             "{\"peft_type\":\"LORA\",\"r\":16,\"lora_alpha\":32,\"use_rslora\":%s,"
             "\"target_modules\":[\"q_proj\",\"k_proj\",\"v_proj\",\"o_proj\"],"
             "\"base_model_name_or_path\":\"synthetic-7b\",\"fan_in_fan_out\":false}",
             rslora ? "true" : "false");
    snprintf(p, sizeof(p), "%s/adapter_config.json", dir);
    return merge_out_write_file(p, txt, strlen(txt), &d);
}

/* 128 modules x (A [16, 4096], B [4096, 16]) F32, streamed. */
static int write_synthetic(const char *dir, int rslora)
{
    static const char *proj[4] = { "q_proj", "k_proj", "v_proj", "o_proj" };
    struct st_write_tensor t[256];
    char names[256][80], p[4096];
    struct st_writer *w = NULL;
    struct fusion_diag d;
    float *buf = malloc(16 * 4096 * sizeof(float));
    int rc = -1;

    if (buf == NULL || mkdir(dir, 0755) != 0)
        goto out;
    for (int i = 0; i < 128; i++) {
        snprintf(names[2 * i], 80, "base_model.model.model.layers.%d.self_attn.%s.lora_A.weight", i / 4, proj[i % 4]);
        snprintf(names[2 * i + 1], 80, "base_model.model.model.layers.%d.self_attn.%s.lora_B.weight", i / 4, proj[i % 4]);
        t[2 * i] = (struct st_write_tensor){ names[2 * i], SAFETENSORS_F32, 2, { 16, 4096 } };
        t[2 * i + 1] = (struct st_write_tensor){ names[2 * i + 1], SAFETENSORS_F32, 2, { 4096, 16 } };
    }
    snprintf(p, sizeof(p), "%s/%s", dir, ADAPTER_WEIGHTS_NAME);
    if (st_writer_new(&w, p, t, 256, &d) != 0)
        goto out;
    for (size_t i = 0; i < 256; i++) {
        for (size_t j = 0; j < 16 * 4096; j++)
            buf[j] = frand(i % 2 ? 0.01f : 0.02f);
        if (st_writer_put(w, i, buf, 16 * 4096 * sizeof(float), &d) != 0)
            goto out;
    }
    if (st_writer_finish(w, &d) != 0 || write_config(dir, rslora) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "bench_merge: writing %s: %s\n", dir, d.msg);
    st_writer_free(w);
    free(buf);
    return rc;
}

/* ---- plorad run (in a child) ---------------------------------------------- */

/* One full run; fills r->G, r->dropped, r->fsync_s; returns the seconds to
 * the data written (before fsync), or -1. */
static double one_run(const struct bcase *c, const char *out, struct result *r)
{
    struct adapter *ad[MAXIN] = { 0 };
    struct merge_factor *f[MAXIN] = { 0 };
    struct merge_input in[MAXIN];
    struct merge *m = NULL;
    struct fusion_diag d;
    struct merge_out_spec spec = { "bench", NULL, false, 0, NULL, true };
    double t0 = now(), t = -1;
    size_t nf;

    for (size_t k = 0; k < c->n; k++) {
        if (adapter_open(&ad[k], c->dirs[k], &d) != 0 || merge_factors_from_adapter(ad[k], &f[k], &nf, &d) != 0)
            goto out;
        in[k] = (struct merge_input){ f[k], nf, c->w[k], NAN };
    }
    if (merge_prepare(&m, in, c->n, &c->o, &d) != 0 || merge_out_write(m, out, &spec, &d) != 0)
        goto out;
    t = now() - t0;
    r->G = merge_summary(m)->frob_merged;
    r->dropped = merge_summary(m)->dropped_energy;
out:
    if (t < 0)
        fprintf(stderr, "bench_merge: %s: %s\n", c->name, d.msg);
    merge_free(m);
    for (size_t k = 0; k < c->n; k++) {
        free(f[k]);
        adapter_free(ad[k]);
    }
    return t;
}

static double cpu_now(struct rusage *ru)
{
    getrusage(RUSAGE_SELF, ru);
    return (double)ru->ru_utime.tv_sec + 1e-6 * (double)ru->ru_utime.tv_usec +
           (double)ru->ru_stime.tv_sec + 1e-6 * (double)ru->ru_stime.tv_usec;
}

/* Each run writes a new output, as a merge into a fresh directory does:
 * the previous run's files are removed first, untimed (renaming over an
 * existing file makes ext4 start writing the old one back: a cost of the
 * benchmark's reuse of its directory, not of the merge). */
static void remove_output(const char *out)
{
    char p[4200];

    snprintf(p, sizeof(p), "%s/%s", out, ADAPTER_WEIGHTS_NAME);
    unlink(p);
    snprintf(p, sizeof(p), "%s/adapter_config.json", out);
    unlink(p);
}

static void child_run(const struct bcase *c, const char *out, int fd)
{
    struct result r = { .secs = 1e30 };
    struct rusage ru;
    double cpu = 0;

    for (int i = 0; i < c->repeat; i++) {
        double c0, t;
        remove_output(out);
        c0 = cpu_now(&ru);
        if ((t = one_run(c, out, &r)) < 0)
            _exit(1);
        cpu += cpu_now(&ru) - c0;
        r.secs = fmin(r.secs, t);
    }
    r.rss_mb = (double)ru.ru_maxrss / 1024.0;
    r.cpu_s = cpu / c->repeat;
    r.ok = 1;
    if (write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
        _exit(1);
    _exit(0);
}

static int run_plorad(const struct bcase *c, const char *out, struct result *r)
{
    int p[2], st;
    pid_t pid;

    if (pipe(p) != 0 || (pid = fork()) < 0)
        return -1;
    if (pid == 0) {
        close(p[0]);
        child_run(c, out, p[1]);
    }
    close(p[1]);
    memset(r, 0, sizeof(*r));
    if (read(p[0], r, sizeof(*r)) != (ssize_t)sizeof(*r))
        r->ok = 0;
    close(p[0]);
    waitpid(pid, &st, 0);
    return r->ok && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* The fsync the timed runs skipped (no_fsync), on the last output: its
 * dirty pages are still in the page cache. */
static double fsync_cost(const char *out)
{
    char p[4096];
    double t0;
    FILE *f;

    snprintf(p, sizeof(p), "%.4000s/%s", out, ADAPTER_WEIGHTS_NAME);
    t0 = now();
    if ((f = fopen(p, "r+")) == NULL)
        return NAN;
    fflush(f);
    fsync(fileno(f));
    fclose(f);
    return now() - t0;
}

/* ---- numpy anchor ---------------------------------------------------------- */

static int run_anchor(const struct bcase *c, const char *tmp, struct result *r, char *kernel, size_t kn)
{
    char cmd[8192], line[2048];
    const char *script = getenv("MERGE_ANCHOR");
    int n;
    FILE *p;

    n = snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s/anchor.out %g %zu %d",
                 script ? script : "bench/merge_anchor.py", tmp, c->o.tau_rel, c->o.rank, c->repeat);
    for (size_t k = 0; k < c->n && n > 0 && (size_t)n < sizeof(cmd); k++)
        n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " %s:%.17g", c->dirs[k], c->w[k]);
    if ((p = popen(cmd, "r")) == NULL || fgets(line, sizeof(line), p) == NULL) {
        if (p)
            pclose(p);
        return -1;
    }
    if (pclose(p) != 0 ||
        sscanf(line, "{\"G\": %lf, \"dropped\": %lf, \"seconds\": %lf, \"rss_mb\": %lf, \"kernel\": \"%1023[^\"]",
               &r->G, &r->dropped, &r->secs, &r->rss_mb, kernel) != 5)
        return -1;
    (void)kn;
    return 0;
}

static int close_enough(double a, double b)
{
    return fabs(a - b) <= 1e-6 * fmax(fabs(a), fabs(b)) + 1e-12;
}

static int bench_case(const struct bcase *c, const char *tmp)
{
    char out[4096], kernel[1024] = "?";
    struct result pr, ar;
    double in_mb = 0;

    snprintf(out, sizeof(out), "%s/out-%s", tmp, c->name);
    for (size_t k = 0; k < c->n; k++)
        in_mb += file_mb(c->dirs[k]);
    if (run_plorad(c, out, &pr) != 0) {
        fprintf(stderr, "bench_merge: case %s failed\n", c->name);
        return -1;
    }
    if (run_anchor(c, tmp, &ar, kernel, sizeof(kernel)) != 0) {
        fprintf(stderr, "bench_merge: numpy anchor failed for case %s (is /usr/bin/python3 with numpy there?"
                        " set MERGE_ANCHOR to bench/merge_anchor.py)\n", c->name);
        return -1;
    }
    printf("bench=merge case=%s plorad_s=%.4f cpu_s=%.4f fsync_s=%.4f rss_mb=%.1f input_mb=%.1f rss_ratio=%.3f "
           "G=%.9g dropped=%.9g anchor=numpy_factored_gram anchor_s=%.4f anchor_rss_mb=%.1f ratio=%.2f "
           "kernel=\"%s\" check=%s\n",
           c->name, pr.secs, pr.cpu_s, fsync_cost(out), pr.rss_mb, in_mb, pr.rss_mb / in_mb, pr.G, pr.dropped,
           ar.secs, ar.rss_mb, ar.secs / pr.secs, kernel,
           close_enough(pr.G, ar.G) && close_enough(pr.dropped + pr.G * pr.G, ar.dropped + ar.G * ar.G) &&
           fabs(pr.dropped - ar.dropped) <= 1e-6 * fmax(pr.dropped, ar.dropped) + 1e-9 * pr.G * pr.G
               ? "ok" : "MISMATCH");
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    const char *fx = argc > 1 ? argv[1] : getenv("PLORA_FIXTURES");
    char tmp[] = "/tmp/bench_merge_XXXXXX", d[3][512], imdb[4096], emo[4096], cmd[4200];
    int rc = 0;

    if (fx == NULL)
        fx = "../shared/fixtures";
    if (mkdtemp(tmp) == NULL)
        return 1;
    for (int k = 0; k < 3 && rc == 0; k++) {
        snprintf(d[k], sizeof(d[k]), "%.400s/in%d", tmp, k);
        rc = write_synthetic(d[k], k == 2);
    }
    struct bcase c7 = { "7b", { d[0], d[1], d[2] }, { 0.5, 0.3, 0.2 }, 3, { .rank = 16 }, 3 };
    snprintf(imdb, sizeof(imdb), "%.4000s/peft/distilbert-imdb-r8", fx);
    snprintf(emo, sizeof(emo), "%.4000s/peft/distilbert-emotion-r8", fx);
    struct bcase cd = { "distilbert", { imdb, emo }, { 0.5, 0.5 }, 2, { .tau_rel = 0.8, .rank = 8 }, 10 };
    if (rc == 0)
        rc = bench_case(&c7, tmp);
    if (rc == 0)
        rc = bench_case(&cd, tmp);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (getenv("BENCH_MERGE_KEEP") != NULL)
        fprintf(stderr, "bench_merge: inputs kept in %s\n", tmp);
    else if (system(cmd) != 0)
        rc = -1;
    return rc == 0 ? 0 : 1;
}
