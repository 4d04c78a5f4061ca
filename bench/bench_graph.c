/* bench/bench_graph.c: overlay generation + λ₂ (L = D − A) against networkx.
 *
 * For ER (mean degree 8, components joined as `plora graph --connect`
 * does), WS (k = 8, β = 0.1) and BA (m = 4) at n = 1,000, 10,000, 100,000:
 * a forked child per case generates the graph and computes λ₂ on one core
 * (OpenBLAS pinned to 1 thread) and reports its CPU time and peak RSS
 * (getrusage); the anchor, bench/graph_anchor.py (Debian's networkx: its own
 * generator for the same parameters + nx.algebraic_connectivity on our edge
 * list), runs in the same run limited to 60 s of CPU (ulimit -t). One line per case:
 *   bench=graph topo=er n=10000 plorad_s=<x> rss_mb=<r> anchor=networkx anchor_s=<y> ratio=<y/x> check=ok
 * plorad_s and anchor_s are CPU seconds (user + system; both sides single
 * threaded), because the 2-core machine is shared and wall time there
 * measures the neighbours; the wall times are printed too (*_wall_s).
 * check=ok: both λ₂ agree to 1e-6 relative (networkx's solver tolerance is
 * 1e-8 on its residual); check=anchor_timeout when networkx ran out of its
 * 60 s of CPU (ratio is then a lower bound, printed as ratio_min). Set GRAPH_ANCHOR
 * to the script's path when not run from the source root; GRAPH_BENCH_MAX_N
 * limits n.
 */
#include <cblas.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "graph.h"
#include "spectral.h"

#define ANCHOR_TIMEOUT_S 60

struct result {
    double gen_s, l2_s, wall_s, lambda2, rss_mb;   /* CPU s, CPU s, wall s */
    uint64_t hash;
    int rc;
};

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static struct graph_params case_params(enum graph_topology t, uint32_t n)
{
    struct graph_params p = { t, n, 8.0 / (n - 1), 8, 0.1, 4, 20261123 };

    return p;
}

static int write_edges(const struct graph *g, const char *path)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return -1;
    for (uint32_t u = 0; u < graph_n(g); u++) {
        uint32_t deg;
        const uint32_t *nb = graph_neighbors(g, u, &deg);

        for (uint32_t i = 0; i < deg; i++)
            if (nb[i] > u)
                fprintf(f, "%" PRIu32 " %" PRIu32 "\n", u, nb[i]);
    }
    return fclose(f);
}

/* In the child: the timed work, then the edge list for the anchor. */
static struct result child_work(enum graph_topology t, uint32_t n, const char *edges)
{
    struct graph_params p = case_params(t, n);
    struct graph_spectral_opts o = { GRAPH_LAP_COMBINATORIAL, GRAPH_SOLVER_AUTO, 1, 0 };
    struct graph *g0 = NULL, *g = NULL;
    struct result r = { 0, 0, 0, 0, 0, 0, -1 };
    struct graph_diag d;
    struct rusage ru;
    size_t added;
    double t0, t1, w0;

    openblas_set_num_threads(1);
    w0 = now_s();
    t0 = cpu_s();
    if (graph_generate(&g0, &p, &d) != 0 || graph_connect(&g, g0, &added, &d) != 0)
        goto out;
    t1 = cpu_s();
    if (graph_lambda2(g, &o, &r.lambda2, NULL, &d) != 0)
        goto out;
    r.gen_s = t1 - t0;
    r.l2_s = cpu_s() - t1;
    r.wall_s = now_s() - w0;
    getrusage(RUSAGE_SELF, &ru);
    r.rss_mb = (double)ru.ru_maxrss / 1024.0;
    r.hash = graph_edges_hash(g);
    r.rc = write_edges(g, edges);
out:
    if (r.rc != 0)
        fprintf(stderr, "bench_graph: %s n=%u: %s\n", graph_topology_name(t), n, d.msg);
    graph_free(g0);
    graph_free(g);
    return r;
}

static int run_case(enum graph_topology t, uint32_t n, const char *edges, struct result *r)
{
    int fd[2], status;
    pid_t pid;
    ssize_t got;

    if (pipe(fd) != 0 || (pid = fork()) < 0)
        return -1;
    if (pid == 0) {
        struct result cr = child_work(t, n, edges);

        close(fd[0]);
        _exit(write(fd[1], &cr, sizeof(cr)) == (ssize_t)sizeof(cr) ? 0 : 1);
    }
    close(fd[1]);
    got = read(fd[0], r, sizeof(*r));
    close(fd[0]);
    waitpid(pid, &status, 0);
    return got == (ssize_t)sizeof(*r) && r->rc == 0 ? 0 : -1;
}

/* networkx: 0 and its times and λ₂; 1 on timeout; -1 on failure. */
static int run_anchor(enum graph_topology t, uint32_t n, const char *edges, double *gen_s,
                      double *l2_s, double *lambda2, double *wall_s)
{
    const char *script = getenv("GRAPH_ANCHOR");
    struct graph_params p = case_params(t, n);
    char cmd[1024], line[256] = "";
    FILE *f;
    int st;

    /* The limit is on CPU time (ulimit -t: SIGXCPU), as a busy shared machine
     * would otherwise time networkx out on its neighbours' account; a wall
     * limit of 10x that is the safety net. */
    snprintf(cmd, sizeof(cmd),
             "ulimit -t %d; OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 timeout %d /usr/bin/python3 %s %s "
             "%u %g %" PRIu64 " %s 2>/dev/null", ANCHOR_TIMEOUT_S, 10 * ANCHOR_TIMEOUT_S,
             script ? script : "bench/graph_anchor.py",
             graph_topology_name(t), n, t == GRAPH_ER ? 8.0 : t == GRAPH_WS ? (double)p.k : (double)p.m,
             p.seed, edges);
    if ((f = popen(cmd, "r")) == NULL)
        return -1;
    if (fgets(line, sizeof(line), f) == NULL)
        line[0] = '\0';
    st = pclose(f);
    if ((WIFEXITED(st) && (WEXITSTATUS(st) == 124 || WEXITSTATUS(st) == 128 + SIGXCPU ||
                           WEXITSTATUS(st) == 128 + SIGKILL)) ||
        (WIFSIGNALED(st) && (WTERMSIG(st) == SIGXCPU || WTERMSIG(st) == SIGKILL)))
        return 1;
    if (sscanf(line, "gen_s=%lf l2_s=%lf lambda2=%lf wall_s=%lf", gen_s, l2_s, lambda2, wall_s) != 4) {
        fprintf(stderr, "bench_graph: networkx anchor failed (%s); run from the source root or set "
                        "GRAPH_ANCHOR=bench/graph_anchor.py\n", cmd);
        return -1;
    }
    return 0;
}

static void report(enum graph_topology t, uint32_t n, const struct result *r, const char *edges)
{
    double a_gen = 0, a_l2 = 0, a_lam = 0, a_wall = 0, x = r->gen_s + r->l2_s;
    int a = run_anchor(t, n, edges, &a_gen, &a_l2, &a_lam, &a_wall);

    printf("bench=graph topo=%s n=%u plorad_s=%.4f gen_s=%.4f l2_s=%.4f plorad_wall_s=%.4f "
           "lambda2=%.12g rss_mb=%.1f anchor=networkx ", graph_topology_name(t), n, x, r->gen_s,
           r->l2_s, r->wall_s, r->lambda2, r->rss_mb);
    if (a == 0)
        printf("anchor_s=%.4f anchor_gen_s=%.4f anchor_l2_s=%.4f anchor_wall_s=%.4f "
               "anchor_lambda2=%.12g ratio=%.1f check=%s\n", a_gen + a_l2, a_gen, a_l2, a_wall,
               a_lam, (a_gen + a_l2) / x,
               fabs(a_lam - r->lambda2) <= 1e-6 * r->lambda2 ? "ok" : "lambda2_mismatch");
    else if (a == 1)
        printf("anchor_s=>%d ratio_min=%.1f check=anchor_timeout\n", ANCHOR_TIMEOUT_S,
               ANCHOR_TIMEOUT_S / x);
    else
        printf("anchor_s=NA ratio=NA check=anchor_failed\n");
    fflush(stdout);
}

int main(void)
{
    static const uint32_t sizes[] = { 1000, 10000, 100000 };
    static const enum graph_topology topos[] = { GRAPH_ER, GRAPH_WS, GRAPH_BA };
    const char *lim = getenv("GRAPH_BENCH_MAX_N");
    char edges[] = "/tmp/bench_graph_XXXXXX";
    int fd = mkstemp(edges), bad = 0;

    if (fd < 0)
        return 1;
    close(fd);
    openblas_set_num_threads(1);   /* before fork: the children inherit it */
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        for (size_t j = 0; j < sizeof(topos) / sizeof(topos[0]); j++) {
            struct result r;

            if (lim != NULL && sizes[i] > strtoul(lim, NULL, 10))
                continue;
            if (run_case(topos[j], sizes[i], edges, &r) != 0) {
                bad = 1;
                continue;
            }
            report(topos[j], sizes[i], &r, edges);
        }
    unlink(edges);
    return bad;
}
