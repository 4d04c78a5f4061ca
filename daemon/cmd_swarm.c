/* daemon/cmd_swarm.c: `plora swarm`: run N real plorad processes on this
 * machine, publish adapters into them, watch every node's /status until
 * each holds, commits and merges every adapter the gate let in, stop them,
 * verify their audit logs and write DIR/report.json + coverage plots
 * (daemon/swarm_report.h).
 *
 * Preparation (dir, keys, adapters, node.yml): swarm_setup.c.
 * Choices (docs/design-notes.md):
 *  - audit logs are checked by running this same binary (/proc/self/exe
 *    `verify-log --json --keyring --store`, one per CPU at once), with a
 *    store of symlinks (DIR/verify/<i>/) so merges are replayed too;
 *  - a round is a tick of swarm's poll clock (round_ms) from all-ready;
 *  - daemons run in their own process group (a terminal's ^C reaches only
 *    swarm, which forwards SIGTERM to each and waits) with PR_SET_PDEATHSIG
 *    so that none outlives a swarm killed with SIGKILL.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httpget.h"
#include "swarm_report.h"
#include "swarm_setup.h"

#define CMD "swarm"
#define READY_WAIT_S 20.0              /* per daemon start, seconds (plus n / 4) */
#define STOP_WAIT_S 10.0               /* SIGTERM -> SIGKILL, seconds */
#define POLL_TIMEOUT_MS 1000           /* one /status request */

static const char usage[] =
    "usage: plora swarm -n N --topology er|ws|ba [--seed S] [--adapters DIR...] [--synthetic K]\n"
    "                   [--out DIR] [--quorum Q] [--timeout SEC] [--round-ms MS] [--plorad PATH]\n"
    "                   [--json]\n"
    "  Run N real plorad processes on 127.0.0.1 (N in 1..1024), node 0 the join seed of the\n"
    "  others, over the shared overlay (topology, seed). Adapter i is signed by and published\n"
    "  from node i*N/A. Progress is polled from every node's /status each round (round_ms):\n"
    "  coverage = fraction of (node, adapter) pairs held. The run ends when every node holds\n"
    "  and commits every adapter the gate accepted and every node's merge of each base model\n"
    "  covers them all, or at --timeout. Then every daemon gets SIGTERM, every audit log is\n"
    "  checked with `plora verify-log --keyring --store` and the report is written.\n"
    "  -n N              nodes (required)\n"
    "  --topology T      er | ws | ba (required)\n"
    "  --seed S          overlay seed (default 1)\n"
    "  --adapters DIR... PEFT adapter dirs, or dirs holding some (default: the fixtures'\n"
    "                    peft/ adapters; without fixtures: --synthetic 3)\n"
    "  --synthetic K     K small random F32 adapters (2 modules, base \"synthetic-base\")\n"
    "  --out DIR         output dir (default ./swarm-out-<seed>-<topology>); must be new or\n"
    "                    empty: nodes/<i>/ (data dir, node.key, node.yml, plorad.log,\n"
    "                    audit.jsonl), keyring/, publish/, report.json, coverage.png/.svg\n"
    "  --quorum Q        ACCEPT votes to commit (default min(2, N))\n"
    "  --timeout SEC     give up after SEC seconds of running daemons (default 120)\n"
    "  --round-ms MS     gossip round and poll period (default 200)\n"
    "  --plorad PATH     daemon binary (default: plorad next to plora, else in PATH)\n"
    "  --json            print report.json's object instead of the summary (progress on stderr)\n"
    "  report.json: {n, topology, seed, quorum, round_ms, adapters: [{name, id, domain,\n"
    "  base_model, published_by, bytes, rejected, rounds_to_coverage}], rounds (poll ticks\n"
    "  from all-ready to full coverage), rounds_to_done, coverage_by_round, final_coverage,\n"
    "  predicted_rounds (C ln n / lambda2 on the overlay, C = 1), eccentricity_bound,\n"
    "  prediction, bytes_sent, bytes_received, adapter_bytes_delivered, transfer_s,\n"
    "  transfer_mb_s, node_rounds_max, merges_written, gate_verdicts {accept, reject,\n"
    "  reasons}, merges [{node, base_model, output, inputs, dir, round}], audit_logs [{node,\n"
    "  path, ok, records, ...}], wall_s (first daemon start to done), total_s, timed_out,\n"
    "  signal, daemons_exit_codes, daemons_exit_ok, done}.\n"
    "  Exit 0 coverage + merge reached, audit logs verified and daemons exited 0; 1 not\n"
    "  (timed out, a daemon failed, an audit log did not verify); 2 usage or input error;\n"
    "  130/143 interrupted by SIGINT/SIGTERM (daemons stopped, report written).\n";

static volatile sig_atomic_t g_signal;

static void on_signal(int sig)
{
    g_signal = sig;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_s(double s)
{
    struct timespec ts;

    if (s <= 0)
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);   /* a signal cuts it short: the loops check g_signal */
}

/* ---- arguments --------------------------------------------------------- */

static bool parse_opt(struct swarm_opts *o, int c, const char *v)
{
    long l;

    switch (c) {
    case 'n': return cli_parse_long(CMD, "-n", v, 1, SWARM_NODES_MAX, &o->n);
    case 't':
        if (strcmp(v, "er") != 0 && strcmp(v, "ws") != 0 && strcmp(v, "ba") != 0)
            return cli_usage_error(CMD, "--topology: \"%s\" is not er, ws or ba", v), false;
        o->topology = v;
        return true;
    case 's': return cli_parse_u64(CMD, "--seed", v, &o->seed);
    case 'a':
        if (o->n_adapters == SWARM_ADAPTERS_MAX)
            return cli_usage_error(CMD, "--adapters: more than %u directories",
                                   SWARM_ADAPTERS_MAX), false;
        o->adapters[o->n_adapters++] = v;
        return true;
    case 'K': return cli_parse_long(CMD, "--synthetic", v, 1, SWARM_ADAPTERS_MAX, &o->synthetic);
    case 'o': o->out = v; return true;
    case 'q': return cli_parse_long(CMD, "--quorum", v, 1, SWARM_NODES_MAX, &o->quorum);
    case 'T':
        if (!cli_parse_long(CMD, "--timeout", v, 1, 86400, &l))
            return false;
        o->timeout_s = (double)l;
        return true;
    case 'r': return cli_parse_long(CMD, "--round-ms", v, 10, 60000, &o->round_ms);
    case 'p': o->plorad = v; return true;
    case 'j': o->json = true; return true;
    default: return cli_usage_error(CMD, "unknown option (see plora swarm --help)"), false;
    }
}

/* Returns -1 to go on, else the exit code. */
static int parse_args(struct swarm_opts *o, int argc, char **argv)
{
    static const struct option lo[] = {
        { "topology", required_argument, NULL, 't' }, { "seed", required_argument, NULL, 's' },
        { "adapters", required_argument, NULL, 'a' }, { "synthetic", required_argument, NULL, 'K' },
        { "out", required_argument, NULL, 'o' }, { "quorum", required_argument, NULL, 'q' },
        { "timeout", required_argument, NULL, 'T' }, { "round-ms", required_argument, NULL, 'r' },
        { "plorad", required_argument, NULL, 'p' }, { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    int c;

    *o = (struct swarm_opts){ .seed = 1, .round_ms = 200, .timeout_s = 120 };
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:h", lo, NULL)) != -1) {
        if (c == 'h')
            return fputs(usage, stdout), CLI_OK;
        if (c == '?' || !parse_opt(o, c, optarg))
            return c == '?' ? cli_usage_error(CMD, "bad option (see plora swarm --help)") : CLI_USAGE;
    }
    for (; optind < argc; optind++)   /* --adapters A B C: the rest are adapters too */
        if (o->n_adapters == 0 || !parse_opt(o, 'a', argv[optind]))
            return o->n_adapters == 0 ? cli_usage_error(CMD, "unexpected argument \"%s\"",
                                                        argv[optind]) : CLI_USAGE;
    if (o->n == 0)
        return cli_usage_error(CMD, "-n: missing (number of nodes)");
    if (o->topology == NULL)
        return cli_usage_error(CMD, "--topology: missing (er, ws or ba)");
    if (o->synthetic > 0 && o->n_adapters > 0)
        return cli_usage_error(CMD, "--synthetic and --adapters exclude each other");
    if (o->quorum > o->n)
        return cli_usage_error(CMD, "--quorum: %ld is more than the %ld nodes", o->quorum, o->n);
    if (o->quorum == 0)
        o->quorum = o->n < 2 ? o->n : 2;
    return -1;
}

/* ---- daemons ----------------------------------------------------------- */

/* The plorad binary: --plorad, else next to this binary, else in PATH. */
static int find_plorad(struct swarm *s)
{
    const char *path = getenv("PATH");
    char *slash;

    if (s->o.plorad != NULL) {
        if (access(s->o.plorad, X_OK) != 0 || realpath(s->o.plorad, s->plorad) == NULL)
            return cli_usage_error(CMD, "--plorad %s: not an executable: %s", s->o.plorad,
                                   strerror(errno));
        return CLI_OK;
    }
    snprintf(s->plorad, sizeof(s->plorad), "%s", s->self);
    if ((slash = strrchr(s->plorad, '/')) != NULL && (size_t)(slash - s->plorad) + 8 < PATH_MAX) {
        strcpy(slash + 1, "plorad");
        if (access(s->plorad, X_OK) == 0)
            return CLI_OK;
    }
    while (path != NULL && *path != '\0') {
        size_t len = strcspn(path, ":");
        snprintf(s->plorad, sizeof(s->plorad), "%.*s/plorad", (int)len, path);
        if (len > 0 && access(s->plorad, X_OK) == 0)
            return CLI_OK;
        path += len + (path[len] == ':');
    }
    return cli_usage_error(CMD, "plorad: not found next to %s nor in PATH; pass --plorad PATH",
                           s->self);
}

static int start_node(struct swarm *s, uint32_t i, const char *join)
{
    struct swarm_node *nd = &s->nodes[i];
    char cfg[PATH_MAX], log[PATH_MAX], jbuf[128];
    char *argv[] = { s->plorad, "--config", cfg, join ? "--join" : NULL, jbuf, NULL };
    int lfd, nul;

    snprintf(jbuf, sizeof(jbuf), "%s", join ? join : "");
    if (!swarm_setup_path(cfg, "%s/node.yml", nd->dir) || !swarm_setup_path(log, "%s/plorad.log", nd->dir))
        return CLI_USAGE;
    if ((lfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644)) < 0)
        return cli_usage_error(CMD, "%s: %s", log, strerror(errno));
    nul = open("/dev/null", O_RDONLY);
    nd->pid = swarm_setup_spawn(argv, nul, lfd, lfd, true);
    close(lfd);
    close(nul);
    if (nd->pid < 0) {
        nd->pid = 0;
        cli_err(CMD, "node %u: fork: %s", i, strerror(errno));
        return CLI_NEGATIVE;
    }
    return CLI_OK;
}

/* The last lines of node i's log on stderr. */
static void log_tail(const struct swarm *s, uint32_t i)
{
    char path[PATH_MAX], buf[2049];
    const char *p;
    FILE *f;
    size_t n;

    if (!swarm_setup_path(path, "%s/plorad.log", s->nodes[i].dir) || (f = fopen(path, "r")) == NULL)
        return;
    if (fseek(f, -2048, SEEK_END) != 0)
        fseek(f, 0, SEEK_SET);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = n == sizeof(buf) - 1 && strchr(buf, '\n') ? strchr(buf, '\n') + 1 : buf;
    fprintf(stderr, "---- %s (last lines) ----\n%s%s----\n", path, p,
            n > 0 && buf[n - 1] != '\n' ? "\n" : "");
}

/* Reap node i if it exited; true if it is gone. */
static bool reaped(struct swarm *s, uint32_t i)
{
    struct swarm_node *nd = &s->nodes[i];
    int st;

    if (nd->pid <= 0)
        return true;
    if (waitpid(nd->pid, &st, WNOHANG) != nd->pid)
        return false;
    nd->exit_code = swarm_setup_exit_code(st);
    nd->pid = 0;
    return true;
}

static bool died(struct swarm *s, uint32_t i, const char *when)
{
    if (!reaped(s, i))
        return false;
    cli_err(CMD, "node %u (plorad) exited %s with code %d", i, when, s->nodes[i].exit_code);
    log_tail(s, i);
    s->failed = true;
    return true;
}

/* 1 ready (addresses filled), 0 not yet. */
static int read_ready(struct swarm *s, uint32_t i)
{
    struct swarm_node *nd = &s->nodes[i];
    char path[PATH_MAX];
    json_t *r;
    const char *http, *listen, *id;

    if (nd->http[0] != '\0')
        return 1;
    if (!swarm_setup_path(path, "%s/ready.json", nd->dir) || (r = json_load_file(path, 0, NULL)) == NULL)
        return 0;
    http = json_string_value(json_object_get(r, "http"));
    listen = json_string_value(json_object_get(r, "listen"));
    id = json_string_value(json_object_get(r, "id"));
    if (http != NULL && listen != NULL) {
        snprintf(nd->http, sizeof(nd->http), "%s", http);
        snprintf(nd->listen, sizeof(nd->listen), "%s", listen);
        if (id != NULL && strcmp(id, nd->id) != 0)
            cli_err(CMD, "node %u: ready file id %.16s... differs from its key %.16s...", i, id,
                    nd->id);
    }
    json_decref(r);
    return nd->http[0] != '\0';
}

/* Wait for nodes from..to-1 to be ready. CLI_OK, CLI_NEGATIVE (one died or
 * the wait ran out) or -1 (signal). */
static int wait_ready(struct swarm *s, uint32_t from, uint32_t to)
{
    double deadline = now_s() + READY_WAIT_S + (double)s->o.n / 4.0;
    uint32_t ready = 0;

    while (ready < to - from) {
        ready = 0;
        for (uint32_t i = from; i < to; i++) {
            if (read_ready(s, i))
                ready++;
            else if (died(s, i, "before it was ready"))
                return CLI_NEGATIVE;
        }
        if (g_signal)
            return -1;
        if (ready < to - from && now_s() > deadline) {
            for (uint32_t i = from; i < to; i++)
                if (!read_ready(s, i)) {
                    cli_err(CMD, "node %u: no ready file after %.0f s", i, READY_WAIT_S + (double)s->o.n / 4.0);
                    log_tail(s, i);
                    break;
                }
            s->failed = true;
            return CLI_NEGATIVE;
        }
        if (ready < to - from)
            sleep_s(0.005);
    }
    return CLI_OK;
}

/* Seed first (its bound address is the others' --join), the rest at once. */
static int launch(struct swarm *s)
{
    int rc;

    s->t_launch = now_s();
    if ((rc = start_node(s, 0, NULL)) != CLI_OK || (rc = wait_ready(s, 0, 1)) != CLI_OK)
        return rc;
    for (uint32_t i = 1; i < (uint32_t)s->o.n; i++)
        if ((rc = start_node(s, i, s->nodes[0].listen)) != CLI_OK)
            return rc;
    if ((rc = wait_ready(s, 1, (uint32_t)s->o.n)) != CLI_OK)
        return rc;
    s->t_ready = now_s();
    for (uint32_t i = 0; i < (uint32_t)s->o.n; i++)
        swarm_track_set_id(s->track, i, s->nodes[i].id);
    return CLI_OK;
}

/* SIGTERM to every running daemon, wait (bounded), then SIGKILL. */
static void stop_all(struct swarm *s)
{
    double deadline = now_s() + STOP_WAIT_S;
    bool left = true;

    for (uint32_t i = 0; i < (uint32_t)s->o.n; i++)
        if (s->nodes[i].pid > 0)
            kill(s->nodes[i].pid, SIGTERM);
    while (left && now_s() < deadline) {
        left = false;
        for (uint32_t i = 0; i < (uint32_t)s->o.n; i++)
            left = !reaped(s, i) || left;
        if (left)
            sleep_s(0.01);
    }
    for (uint32_t i = 0; i < (uint32_t)s->o.n; i++) {
        int st;
        if (s->nodes[i].pid <= 0)
            continue;
        cli_err(CMD, "node %u: still running %.0f s after SIGTERM: SIGKILL", i, STOP_WAIT_S);
        kill(s->nodes[i].pid, SIGKILL);
        while (waitpid(s->nodes[i].pid, &st, 0) < 0 && errno == EINTR) {}
        s->nodes[i].exit_code = swarm_setup_exit_code(st);
        s->nodes[i].pid = 0;
    }
}

/* ---- progress ---------------------------------------------------------- */

static void poll_node(struct swarm *s, uint32_t i)
{
    struct dmn_diag d;
    char *body = NULL;
    size_t len = 0;
    int status = 0;

    dmn_diag_clear(&d);
    if (httpget(s->nodes[i].http, "/status", POLL_TIMEOUT_MS, &body, &len, &status, &d) == 0 &&
        status == 200)
        swarm_track_observe(s->track, i, json_loadb(body, len, 0, NULL));
    free(body);
}

static void show(struct swarm *s, const struct swarm_progress *p)
{
    fprintf(s->prog, "%sround %4u  coverage %5.1f%%  committed %zu/%zu  merged %u/%ld  "
            "moved %.1f MB%s", s->tty ? "\r" : "", p->round, 100.0 * p->coverage, p->committed,
            p->pairs, p->merged_nodes, s->o.n, (double)p->bytes_out / 1e6,
            s->tty ? "   " : "\n");
    fflush(s->prog);
}

/* Poll every round_ms until done, timeout, a dead daemon or a signal. */
static void watch(struct swarm *s)
{
    double t0 = s->t_ready, ms = (double)s->o.round_ms / 1000.0;
    struct swarm_progress p;
    uint32_t round = 0;

    for (;;) {
        for (uint32_t i = 0; i < (uint32_t)s->o.n && !g_signal; i++)
            if (!died(s, i, "during the run"))
                poll_node(s, i);
        swarm_track_round(s->track, round, now_s() - t0, &p);
        show(s, &p);
        if (p.done || s->failed || g_signal)
            break;
        if (now_s() - s->t_launch > s->o.timeout_s) {
            s->timed_out = true;
            break;
        }
        sleep_s(t0 + (round + 1) * ms - now_s());
        if (g_signal)
            break;
        round = (uint32_t)((now_s() - t0) / ms);
    }
    s->t_done = now_s();
    if (s->tty)
        fputc('\n', s->prog);
    if (g_signal)
        cli_err(CMD, "%s: stopping the daemons, writing the report",
                g_signal == SIGINT ? "SIGINT" : "SIGTERM");
    if (s->timed_out)
        cli_err(CMD, "timed out after %.0f s (--timeout) at %.1f%% coverage", s->o.timeout_s,
                100.0 * p.coverage);
}

/* ---- audit logs -------------------------------------------------------- */

/* DIR/verify/<i>/: one symlink per stored adapter and merge output, the flat
 * store layout `verify-log --store` replays merges from. */
static int store_farm(const struct swarm *s, uint32_t i, char farm[PATH_MAX])
{
    static const char *const subs[] = { "adapters", "merged" };
    char dir[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
    struct dirent *de;
    DIR *dh;

    if (!swarm_setup_path(farm, "%s/verify/%u", s->out, i) || swarm_setup_mkdir(farm) != CLI_OK)
        return -1;
    for (size_t k = 0; k < 2; k++) {
        if (!swarm_setup_path(dir, "%s/%s", s->nodes[i].dir, subs[k]) || (dh = opendir(dir)) == NULL)
            continue;
        while ((de = readdir(dh)) != NULL)
            if (strlen(de->d_name) == 64 && swarm_setup_path(from, "%s/%s", dir, de->d_name) &&
                swarm_setup_path(to, "%s/%s", farm, de->d_name))
                (void)symlink(from, to);
        closedir(dh);
    }
    return 0;
}

/* e[key] = from[key] if present, else `fallback` (a new reference, may be NULL). */
static void take(json_t *e, const char *key, const json_t *from, json_t *fallback)
{
    json_t *v = json_object_get(from, key);

    if (v != NULL) {
        json_object_set(e, key, v);
        json_decref(fallback);
    } else {
        json_object_set_new(e, key, fallback != NULL ? fallback : json_null());
    }
}

/* Start `plora verify-log --json` on node i's audit log, stdout into
 * DIR/verify/<i>.json. Returns the pid, or -1 (nothing to wait for). */
static pid_t verify_start(struct swarm *s, uint32_t i)
{
    char logp[PATH_MAX], kr[PATH_MAX], farm[PATH_MAX], outp[PATH_MAX];
    char *argv[] = { s->self, "verify-log", logp, "--json", "--keyring", kr, "--store", farm,
                     NULL };
    int out, nul;
    pid_t pid;

    if (!swarm_setup_path(logp, "%s/audit.jsonl", s->nodes[i].dir) || !swarm_setup_path(kr, "%s/keyring", s->out) ||
        !swarm_setup_path(outp, "%s/verify/%u.json", s->out, i) || store_farm(s, i, farm) != 0 ||
        (out = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
        return -1;
    nul = open("/dev/null", O_RDWR);
    pid = swarm_setup_spawn(argv, nul, out, nul, false);
    close(out);
    close(nul);
    return pid;
}

/* The audit_logs entry of node i from its verify-log exit code and JSON. */
static json_t *verify_result(struct swarm *s, uint32_t i, int code)
{
    char logp[PATH_MAX], outp[PATH_MAX];
    json_t *v, *e;

    if (!swarm_setup_path(logp, "%s/audit.jsonl", s->nodes[i].dir) ||
        !swarm_setup_path(outp, "%s/verify/%u.json", s->out, i))
        return json_pack("{s:i, s:b, s:s}", "node", (int)i, "ok", 0, "reason", "path too long");
    v = json_load_file(outp, 0, NULL);
    e = json_pack("{s:i, s:s, s:b, s:i}", "node", (int)i, "path", logp, "ok", code == 0,
                  "exit", code);
    take(e, "records", v, json_integer(0));
    take(e, "reason", v, json_string(swarm_setup_is_file(logp) ? "verify-log gave no JSON" : "no audit log"));
    take(e, "detail", v, json_incref(json_object_get(v, "error")));
    take(e, "checkpoints_verified", v, json_integer(0));
    take(e, "merges_replayed", v, json_integer(0));
    json_decref(v);
    return e;
}

/* Every node's log, as many verifiers at once as there are CPUs. */
static json_t *verify_all(struct swarm *s, bool *all_ok)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t width = cpus >= 1 && cpus <= 64 ? (size_t)cpus : 2, n = (size_t)s->o.n;
    pid_t *pids = calloc(n, sizeof(*pids));
    json_t *arr = json_array();

    *all_ok = pids != NULL;
    for (size_t i = 0; pids != NULL && i < n + width; i++) {
        if (i < n)
            pids[i] = verify_start(s, (uint32_t)i);
        if (i >= width) {   /* the oldest one running: they take about as long each */
            json_t *e = verify_result(s, (uint32_t)(i - width), swarm_setup_wait(pids[i - width]));
            *all_ok = *all_ok && json_is_true(json_object_get(e, "ok"));
            json_array_append_new(arr, e);
        }
    }
    free(pids);
    return arr;
}

/* ---- report ------------------------------------------------------------ */

static json_t *make_report(struct swarm *s, json_t *audit, int *codes)
{
    double covered = swarm_track_covered_at(s->track);
    struct swarm_run_info in = {
        .n = (uint32_t)s->o.n, .quorum = (uint32_t)s->o.quorum,
        .round_ms = (uint32_t)s->o.round_ms, .topology = s->o.topology, .seed = s->o.seed,
        .wall_s = s->t_done > 0 ? s->t_done - s->t_launch : 0,
        .transfer_s = isfinite(covered) ? s->t_ready + covered - s->t_launch : NAN,
        .total_s = now_s() - s->t_cmd, .timed_out = s->timed_out, .signal = (int)g_signal,
        .exit_codes = codes, .audit_logs = audit,
    };

    for (uint32_t i = 0; i < (uint32_t)s->o.n; i++)
        codes[i] = s->nodes[i].exit_code;
    return swarm_report_build(s->track, &in);
}

static int write_report(const struct swarm *s, const json_t *rep)
{
    char path[PATH_MAX], tmp[PATH_MAX];

    if (!swarm_setup_path(path, "%s/report.json", s->out) || !swarm_setup_path(tmp, "%s/.report.json.tmp", s->out))
        return -1;
    if (json_dump_file(rep, tmp, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) != 0 ||
        rename(tmp, path) != 0) {
        cli_err(CMD, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Stop, verify, report. Returns the exit code of the run. */
static int finish(struct swarm *s)
{
    int *codes = calloc((size_t)s->o.n, sizeof(int));
    json_t *audit, *rep = NULL;
    char why[512];
    bool audit_ok, ok;
    int rc = CLI_NEGATIVE, pr;

    if (s->t_done == 0)
        s->t_done = now_s();
    stop_all(s);
    s->t_stopped = now_s();
    audit = verify_all(s, &audit_ok);
    s->t_verified = now_s();
    if (codes == NULL || (rep = make_report(s, audit, codes)) == NULL)
        goto out;
    json_object_set_new(rep, "phases_s", json_pack(
        "{s:f, s:f, s:f, s:f, s:f}", "setup", s->t_launch - s->t_cmd,
        "start", s->t_ready > 0 ? s->t_ready - s->t_launch : 0.0,
        "run", s->t_ready > 0 ? s->t_done - s->t_ready : 0.0, "stop", s->t_stopped - s->t_done,
        "verify", s->t_verified - s->t_stopped));
    if (write_report(s, rep) != 0)
        goto out;
    if ((pr = swarm_report_plot(rep, s->out, why, sizeof(why))) != 0)
        cli_err(CMD, "%s", why);
    ok = json_is_true(json_object_get(rep, "done")) && audit_ok &&
         json_is_true(json_object_get(rep, "daemons_exit_ok")) && !s->failed;
    rc = g_signal == SIGINT ? 130 : g_signal == SIGTERM ? 143 : ok ? CLI_OK : CLI_NEGATIVE;
    if (s->o.json) {
        cli_print_json(json_incref(rep));
    } else {
        swarm_report_summary(rep, stdout);
        printf("  report       %s/report.json%s\n", s->out,
               pr == 0 ? " (+ coverage.png, coverage.svg)" : "");
    }
out:
    json_decref(rep);
    json_decref(audit);
    free(codes);
    return rc;
}

/* ---- the command ------------------------------------------------------- */

static int setup(struct swarm *s)
{
    int rc;

    if ((rc = find_plorad(s)) != CLI_OK || (rc = swarm_setup_prepare(s)) != CLI_OK)
        return rc;
    if (swarm_track_new(&s->track, (uint32_t)s->o.n, s->ad, s->na) != 0)
        return cli_usage_error(CMD, "out of memory");
    return CLI_OK;
}

static void announce(const struct swarm *s)
{
    fprintf(s->prog, "plora swarm: %ld nodes, %s seed %llu, %zu adapters, quorum %ld, round %ld "
            "ms, out %s\n", s->o.n, s->o.topology, s->o.seed, s->na, s->o.quorum, s->o.round_ms,
            s->out);
    if (s->synthetic_fallback)
        fprintf(s->prog, "  (no fixtures at %s/peft: synthetic adapters)\n", cli_fixtures_dir());
    for (size_t k = 0; k < s->na; k++)
        fprintf(s->prog, "  adapter %-24s %.16s...  %8.2f MB  base %s  from node %u\n",
                s->ad[k].name, s->ad[k].id, (double)s->ad[k].bytes / 1e6, s->ad[k].base_model,
                s->ad[k].published_by);
    fflush(s->prog);
}

static int run(struct swarm *s)
{
    ssize_t n = readlink("/proc/self/exe", s->self, sizeof(s->self) - 1);
    int rc;

    if (n <= 0)
        return cli_usage_error(CMD, "/proc/self/exe: %s", strerror(errno));
    s->self[n] = '\0';
    if ((s->nodes = calloc((size_t)s->o.n, sizeof(*s->nodes))) == NULL)
        return cli_usage_error(CMD, "out of memory");
    if ((rc = setup(s)) != CLI_OK)
        return g_signal ? 128 + (int)g_signal : rc;
    if (g_signal)
        return 128 + (int)g_signal;
    announce(s);
    if (launch(s) == CLI_OK)
        watch(s);
    return finish(s);
}

int cmd_swarm(int argc, char **argv)
{
    struct sigaction sa, old_int, old_term, old_pipe;
    struct swarm s;
    int rc;

    memset(&s, 0, sizeof(s));
    s.signal = &g_signal;
    if ((rc = parse_args(&s.o, argc, argv)) >= 0)
        return rc;
    s.t_cmd = now_s();
    s.prog = s.o.json ? stderr : stdout;
    s.tty = isatty(fileno(s.prog));
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;   /* no SA_RESTART: sleeps end early, loops look */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &old_pipe);
    rc = run(&s);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    swarm_track_free(s.track);
    free(s.nodes);
    return rc;
}
