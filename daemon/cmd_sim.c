/* daemon/cmd_sim.c: `plora sim`, the in-memory swarm simulator (daemon/sim.h). */
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "msg.h"
#include "sim.h"

static const char usage_text[] =
    "usage: plora sim --topology er|ws|ba -n N --seed S [--p P] [--k K] [--beta B] [--m M]\n"
    "                 [--adapters A] [--adapter-bytes B] [--faults SPEC] [--mode plorad|flood-json]\n"
    "                 [--latency-ms L] [--bandwidth BYTES_PER_S] [--max-rounds R] [--json]\n"
    "  Runs N gossip engines in one process over the overlay (parameters as in plora graph;\n"
    "  the overlay is joined into one component first), publishes A adapters of B bytes\n"
    "  (default 3 x 1 MiB, seed-derived, real SHA-256 ids) at random nodes and reports rounds\n"
    "  to coverage against the eccentricity bound, bytes moved and the duplicate payload factor.\n"
    "  Links: per-hop latency (default 20 ms), per-node uplink bandwidth (default 125e6 B/s).\n"
    "  --mode flood-json reports what the prototype's flood (whole adapters as JSON+base64\n"
    "  over every edge every round) would move instead of running the engines.\n"
    "  --faults key=value,...: drop=P (frame loss, resets the connection), partition=R1-R2,\n"
    "  malicious-publishers=K, malicious-voters=F, equivocators=E, quorum=Q,\n"
    "  crash=K (K nodes crash once and restart 1-3 rounds later from their store),\n"
    "  churn=P (each node is offline for a round with probability P).\n"
    "  --sweep-seeds N: run seeds S .. S+N-1 and print one summary (Byzantine sweeps): exit 0\n"
    "  when every run covered, merged nothing bad and detected every equivocation within 2\n"
    "  rounds of both its votes reaching honest nodes.\n"
    "  Exit 0 when every adapter reached every node and nothing bad was merged, 1 otherwise.\n";

enum { OPT_TOPO = 256, OPT_P, OPT_K, OPT_BETA, OPT_M, OPT_SEED, OPT_ADAPTERS, OPT_BYTES, OPT_FAULTS,
       OPT_MODE, OPT_JSON, OPT_LAT, OPT_BW, OPT_MAXR, OPT_SWEEP };

static const struct option long_opts[] = {
    { "topology", required_argument, NULL, OPT_TOPO }, { "p", required_argument, NULL, OPT_P },
    { "k", required_argument, NULL, OPT_K }, { "beta", required_argument, NULL, OPT_BETA },
    { "m", required_argument, NULL, OPT_M }, { "seed", required_argument, NULL, OPT_SEED },
    { "adapters", required_argument, NULL, OPT_ADAPTERS },
    { "adapter-bytes", required_argument, NULL, OPT_BYTES },
    { "faults", required_argument, NULL, OPT_FAULTS }, { "mode", required_argument, NULL, OPT_MODE },
    { "json", no_argument, NULL, OPT_JSON }, { "latency-ms", required_argument, NULL, OPT_LAT },
    { "bandwidth", required_argument, NULL, OPT_BW }, { "max-rounds", required_argument, NULL, OPT_MAXR },
    { "sweep-seeds", required_argument, NULL, OPT_SWEEP },
    { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
};

struct sim_cli {
    struct sim_config c;
    bool have_topo, have_n, have_seed, have_p, have_k, have_beta, have_m, json;
    uint32_t sweep;   /* --sweep-seeds: runs of seeds seed .. seed+sweep-1, 0 = one run */
};

static bool parse_graph_opt(struct sim_cli *a, int opt, const char *v)
{
    long l;
    unsigned long long u;
    struct graph_diag d;

    switch (opt) {
    case OPT_TOPO:
        if (graph_topology_parse(v, &a->c.graph.topology, &d) != 0)
            return cli_usage_error("sim", "--topology: %s", d.msg), false;
        return a->have_topo = true;
    case 'n':
        if (!cli_parse_long("sim", "-n", v, 2, 1000000, &l)) return false;
        a->c.graph.n = (uint32_t)l;
        return a->have_n = true;
    case OPT_P: return cli_parse_double("sim", "--p", v, &a->c.graph.p) && (a->have_p = true);
    case OPT_BETA: return cli_parse_double("sim", "--beta", v, &a->c.graph.beta) && (a->have_beta = true);
    case OPT_K:
        if (!cli_parse_long("sim", "--k", v, 0, GRAPH_N_MAX, &l)) return false;
        a->c.graph.k = (uint32_t)l;
        return a->have_k = true;
    case OPT_M:
        if (!cli_parse_long("sim", "--m", v, 0, GRAPH_N_MAX, &l)) return false;
        a->c.graph.m = (uint32_t)l;
        return a->have_m = true;
    case OPT_SEED:
        if (!cli_parse_u64("sim", "--seed", v, &u)) return false;
        if (u > INT64_MAX)
            return cli_usage_error("sim", "--seed: %s is above %" PRId64, v, INT64_MAX), false;
        a->c.graph.seed = u;
        return a->have_seed = true;
    }
    return cli_usage_error("sim", "unknown option (see plora sim --help)"), false;
}

/* One option; false after printing a usage error. */
static bool parse_one(struct sim_cli *a, int opt, const char *v)
{
    long l;
    unsigned long long u;
    char err[256];

    switch (opt) {
    case OPT_ADAPTERS:
        if (!cli_parse_long("sim", "--adapters", v, 1, 64, &l)) return false;
        a->c.adapters = (uint32_t)l;
        return true;
    case OPT_BYTES:
        if (!cli_parse_long("sim", "--adapter-bytes", v, 1, 64l << 20, &l)) return false;
        a->c.adapter_bytes = (uint64_t)l;
        return true;
    case OPT_FAULTS:
        if (sim_faults_parse(v, &a->c.faults, err, sizeof(err)) != 0)
            return cli_usage_error("sim", "%s", err), false;
        return true;
    case OPT_MODE:
        if (strcmp(v, "plorad") == 0) a->c.mode = SIM_PLORAD;
        else if (strcmp(v, "flood-json") == 0) a->c.mode = SIM_FLOOD_JSON;
        else return cli_usage_error("sim", "--mode: \"%s\" is not plorad or flood-json", v), false;
        return true;
    case OPT_LAT:
        if (!cli_parse_long("sim", "--latency-ms", v, 1, 600000, &l)) return false;
        a->c.latency_ms = (uint32_t)l;
        return true;
    case OPT_BW:
        if (!cli_parse_u64("sim", "--bandwidth", v, &u)) return false;
        if (u < 1000) return cli_usage_error("sim", "--bandwidth: %s is below 1000 bytes/s", v), false;
        a->c.bandwidth = u;
        return true;
    case OPT_MAXR:
        if (!cli_parse_long("sim", "--max-rounds", v, 1, 100000, &l)) return false;
        a->c.max_rounds = (uint32_t)l;
        return true;
    case OPT_JSON: a->json = true; return true;
    case OPT_SWEEP:
        if (!cli_parse_long("sim", "--sweep-seeds", v, 1, 100000, &l)) return false;
        a->sweep = (uint32_t)l;
        return true;
    }
    return parse_graph_opt(a, opt, v);
}

static int finish_args(struct sim_cli *a)
{
    if (!a->have_topo) return cli_usage_error("sim", "--topology: missing (er, ws or ba)");
    if (!a->have_n) return cli_usage_error("sim", "-n: missing (number of nodes)");
    if (!a->have_seed) return cli_usage_error("sim", "--seed: missing");
    if (!a->have_p) a->c.graph.p = fmin(1.0, 8.0 / (a->c.graph.n - 1));
    if (!a->have_k) a->c.graph.k = 8;
    if (!a->have_beta) a->c.graph.beta = 0.1;
    if (!a->have_m) a->c.graph.m = 4;
    return CLI_OK;
}

/* Returns CLI_OK, CLI_USAGE, or -1 after --help. */
static int parse_args(struct sim_cli *a, int argc, char **argv)
{
    int opt;

    memset(a, 0, sizeof(*a));
    a->c.adapters = 3;
    a->c.adapter_bytes = 1u << 20;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "n:h", long_opts, NULL)) != -1) {
        if (opt == 'h') {
            fputs(usage_text, stdout);
            return -1;
        }
        if (opt == '?' || opt == ':')
            return cli_usage_error("sim", "bad option \"%s\" (see plora sim --help)", argv[optind - 1]);
        if (!parse_one(a, opt, optarg))
            return CLI_USAGE;
    }
    if (optind < argc)
        return cli_usage_error("sim", "unexpected argument \"%s\"", argv[optind]);
    return finish_args(a);
}

static json_t *num_or_null(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

static json_t *by_type(const struct sim_report *r)
{
    static const char *const names[] = { "", "hello", "hello_ack", "digest", "want", "offer",
                                          "manifest", "chunk", "vote", "peers", "bye" };
    json_t *o = json_object();

    for (size_t t = 1; t < sizeof(names) / sizeof(names[0]); t++)
        json_object_set_new(o, names[t], json_integer((json_int_t)r->messages_by_type[t]));
    return o;
}

static json_t *series(const double *v, uint32_t n)
{
    json_t *arr = json_array();

    for (uint32_t i = 0; i < n; i++)
        json_array_append_new(arr, num_or_null(v[i]));
    return arr;
}

/* The prototype's swarm metrics per round (sim.h "Swarm metrics"). */
static json_t *metrics_json(const struct sim_report *r, bool plorad)
{
    json_t *o = json_object();
    uint32_t n = plorad ? r->rounds : 0;

    json_object_set_new(o, "coverage", series(r->m_coverage, n));
    json_object_set_new(o, "entropy_avg_bits", series(r->m_entropy, n));
    json_object_set_new(o, "mutual_information_bits", series(r->m_mi, n));
    json_object_set_new(o, "mutual_information_delta", series(r->m_mi_delta, n));
    json_object_set_new(o, "agent_agent_mi_bits", series(r->m_aa_mi, n));
    json_object_set_new(o, "cooccurrence_excess", series(r->m_cooc, n));
    json_object_set_new(o, "network_flow_rate", plorad ? num_or_null(r->network_flow_rate) : json_null());
    json_object_set_new(o, "epidemic_threshold", num_or_null(r->epidemic_threshold));
    return o;
}

/* Per (equivocator, adapter) it signed both verdicts on: rounds signed and
 * first detected by an honest node; the worst lag. */
static json_t *equivocations_json(const struct sim_report *r)
{
    json_t *arr = json_array(), *o = json_object();
    int64_t worst = -1;
    uint64_t undetected = 0;

    for (uint32_t e = 0; e < r->equivocators; e++)
        for (uint32_t ad = 0; ad < r->adapters; ad++) {
            size_t k = (size_t)e * r->adapters + ad;
            int64_t sg = r->equiv_signed[k], dt = r->equiv_detected[k], sn = r->equiv_seen[k];
            if (sg < 0)
                continue;
            json_array_append_new(arr, json_pack("{s:I, s:I, s:I, s:o, s:o}", "node",
                                                 (json_int_t)r->equivocator_node[e], "adapter",
                                                 (json_int_t)ad, "signed_round", (json_int_t)sg,
                                                 "seen_round", sn < 0 ? json_null() : json_integer(sn),
                                                 "detected_round", dt < 0 ? json_null() : json_integer(dt)));
            undetected += dt < 0;
            worst = dt >= 0 && sn >= 0 && dt - sn > worst ? dt - sn : worst;
        }
    json_object_set_new(o, "pairs", arr);
    json_object_set_new(o, "undetected", json_integer((json_int_t)undetected));
    json_object_set_new(o, "max_detection_lag_rounds", worst < 0 ? json_null() : json_integer(worst));
    return o;
}

static json_t *report_json(const struct sim_cli *a, const struct sim_report *r)
{
    json_t *o = json_object(), *rtc = json_array(), *ecc = json_array(), *cov = json_array();
    bool plorad = a->c.mode == SIM_PLORAD;
    uint64_t bytes = plorad ? r->bytes_sent : r->flood_bytes;

    for (uint32_t i = 0; i < r->adapters; i++) {
        json_array_append_new(rtc, r->rounds_to_coverage[i] < 0 ? json_null()
                                                                 : json_integer(r->rounds_to_coverage[i]));
        json_array_append_new(ecc, json_integer(r->eccentricity[i]));
    }
    for (uint32_t i = 0; plorad && i < r->rounds; i++)
        json_array_append_new(cov, json_integer(r->coverage_by_round[i]));
    json_object_set_new(o, "n", json_integer(r->n));
    json_object_set_new(o, "topology", json_string(graph_topology_name(a->c.graph.topology)));
    json_object_set_new(o, "seed", json_integer((json_int_t)a->c.graph.seed));
    json_object_set_new(o, "mode", json_string(plorad ? "plorad" : "flood-json"));
    json_object_set_new(o, "edges", json_integer((json_int_t)r->edges));
    json_object_set_new(o, "adapters", json_integer(r->adapters));
    json_object_set_new(o, "adapter_bytes", json_integer((json_int_t)a->c.adapter_bytes));
    json_object_set_new(o, "rounds", json_integer(plorad ? r->rounds : r->flood_rounds));
    json_object_set_new(o, "rounds_to_coverage", plorad ? rtc : (json_decref(rtc), json_null()));
    json_object_set_new(o, "eccentricity_bound", ecc);
    json_object_set_new(o, "predicted_rounds", num_or_null(r->predicted_rounds));
    json_object_set_new(o, "predicted_rounds_uncalibrated", num_or_null(r->predicted_rounds_uncalibrated));
    json_object_set_new(o, "prediction_c", num_or_null(r->prediction_c));
    json_object_set_new(o, "prediction_c_source", json_string("calibrated"));
    json_object_set_new(o, "lambda2", num_or_null(r->lambda2));
    json_object_set_new(o, "duplicate_payload_factor", plorad ? num_or_null(r->duplicate_payload_factor)
                                                              : json_null());
    json_object_set_new(o, "bytes_sent", json_integer((json_int_t)bytes));
    json_object_set_new(o, "messages", json_integer((json_int_t)(plorad ? r->messages : r->flood_messages)));
    json_object_set_new(o, "messages_by_type", by_type(r));
    json_object_set_new(o, "payload_bytes", json_integer((json_int_t)r->payload_bytes));
    json_object_set_new(o, "flood_json_bytes", json_integer((json_int_t)r->flood_bytes));
    json_object_set_new(o, "flood_json_ratio", plorad && r->bytes_sent > 0
                            ? json_real((double)r->flood_bytes / (double)r->bytes_sent) : json_null());
    json_object_set_new(o, "coverage_by_round", cov);
    json_object_set_new(o, "commits", json_integer((json_int_t)r->commits));
    json_object_set_new(o, "wrongly_merged", json_integer((json_int_t)r->wrongly_merged));
    json_object_set_new(o, "equivocations_detected", json_integer((json_int_t)r->equivocations_detected));
    json_object_set_new(o, "equivocation_round", r->equivocation_round < 0 ? json_null()
                                                  : json_integer(r->equivocation_round));
    json_object_set_new(o, "connection_resets", json_integer((json_int_t)r->resets));
    json_object_set_new(o, "equivocations", equivocations_json(r));
    json_object_set_new(o, "crashes", json_integer((json_int_t)r->crashes));
    json_object_set_new(o, "restarts", json_integer((json_int_t)r->restarts));
    json_object_set_new(o, "restored_whole", json_integer((json_int_t)r->restored_whole));
    json_object_set_new(o, "restored_partial", json_integer((json_int_t)r->restored_partial));
    json_object_set_new(o, "offline_node_rounds", json_integer((json_int_t)r->offline_node_rounds));
    json_object_set_new(o, "metrics", metrics_json(r, plorad));
    return o;
}

static bool covered(const struct sim_report *r)
{
    for (uint32_t i = 0; i < r->adapters; i++)
        if (r->rounds_to_coverage[i] < 0)
            return false;
    return true;
}

static void print_text(const struct sim_cli *a, const struct sim_report *r)
{
    printf("n=%u edges=%zu topology=%s seed=%" PRIu64 " adapters=%u\n", r->n, r->edges,
           graph_topology_name(a->c.graph.topology), a->c.graph.seed, r->adapters);
    for (uint32_t i = 0; a->c.mode == SIM_PLORAD && i < r->adapters; i++)
        printf("adapter %u: rounds_to_coverage=%" PRId64 " eccentricity_bound=%u%s\n", i,
               r->rounds_to_coverage[i], r->eccentricity[i], r->bad[i] ? " (malicious)" : "");
    printf("predicted_rounds=%.3f (C = %.4g fitted for %s; C = 1: %.3f)\n", r->predicted_rounds,
           r->prediction_c, graph_topology_name(a->c.graph.topology), r->predicted_rounds_uncalibrated);
    if (a->c.mode == SIM_PLORAD)
        printf("bytes_sent=%" PRIu64 " messages=%" PRIu64 " duplicate_payload_factor=%.4f "
               "flood_json_bytes=%" PRIu64 " ratio=%.1f\nwrongly_merged=%" PRIu64
               " equivocations_detected=%" PRIu64 "\n", r->bytes_sent, r->messages,
               r->duplicate_payload_factor, r->flood_bytes,
               r->bytes_sent ? (double)r->flood_bytes / (double)r->bytes_sent : 0.0, r->wrongly_merged,
               r->equivocations_detected);
    else
        printf("flood_json: rounds=%u bytes_sent=%" PRIu64 " messages=%" PRIu64 "\n", r->flood_rounds,
               r->flood_bytes, r->flood_messages);
}

struct sweep {
    uint64_t runs, covered, wrongly_merged, runs_wrong, pairs, undetected, late, commits, failed;
    int64_t max_lag_seen, max_lag_signed;   /* detected - seen / - signed, worst */
    json_t *bad_seeds;
};

static void sweep_add(struct sweep *w, const struct sim_report *r, uint64_t seed)
{
    bool fine = covered(r) && r->wrongly_merged == 0;

    w->runs++;
    w->covered += covered(r);
    w->wrongly_merged += r->wrongly_merged;
    w->runs_wrong += r->wrongly_merged > 0;
    w->commits += r->commits;
    for (size_t k = 0; k < (size_t)r->equivocators * r->adapters; k++) {
        int64_t sg = r->equiv_signed[k], sn = r->equiv_seen[k], dt = r->equiv_detected[k];
        if (sg < 0)
            continue;
        w->pairs++;
        if (dt < 0 || sn < 0) {
            w->undetected++;
            fine = false;
            continue;
        }
        w->late += dt - sn > 2;
        fine = fine && dt - sn <= 2;
        w->max_lag_seen = dt - sn > w->max_lag_seen ? dt - sn : w->max_lag_seen;
        w->max_lag_signed = dt - sg > w->max_lag_signed ? dt - sg : w->max_lag_signed;
    }
    w->failed += !fine;
    if (!fine && json_array_size(w->bad_seeds) < 32)
        json_array_append_new(w->bad_seeds, json_integer((json_int_t)seed));
}

/* --sweep-seeds: one summary over the seeds. */
static int run_sweep(struct sim_cli *a)
{
    struct sweep w = { .max_lag_seen = -1, .max_lag_signed = -1, .bad_seeds = json_array() };
    uint64_t first = a->c.graph.seed;
    char err[256];
    json_t *o;
    int rc = CLI_OK;

    for (uint32_t i = 0; i < a->sweep && rc == CLI_OK; i++) {
        struct sim_report *r = NULL;
        int src;
        a->c.graph.seed = first + i;
        if ((src = sim_run(&a->c, &r, err, sizeof(err))) != 0)
            rc = src == -1 ? cli_usage_error("sim", "%s", err) : (cli_err("sim", "%s", err), CLI_USAGE);
        else
            sweep_add(&w, r, first + i);
        sim_report_free(r);
    }
    if (rc != CLI_OK) {
        json_decref(w.bad_seeds);
        return rc;
    }
    o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o}", "topology",
                  graph_topology_name(a->c.graph.topology), "n", (json_int_t)a->c.graph.n,
                  "first_seed", (json_int_t)first, "runs", (json_int_t)w.runs,
                  "runs_covered", (json_int_t)w.covered, "wrongly_merged", (json_int_t)w.wrongly_merged,
                  "runs_with_wrong_merge", (json_int_t)w.runs_wrong, "commits", (json_int_t)w.commits,
                  "equivocation_pairs", (json_int_t)w.pairs, "undetected", (json_int_t)w.undetected,
                  "max_lag_seen_to_detected", w.max_lag_seen < 0 ? json_null() : json_integer(w.max_lag_seen),
                  "max_lag_signed_to_detected",
                  w.max_lag_signed < 0 ? json_null() : json_integer(w.max_lag_signed),
                  "failed_seeds", w.bad_seeds);
    json_object_set_new(o, "late_detections", json_integer((json_int_t)w.late));
    json_object_set_new(o, "failed_runs", json_integer((json_int_t)w.failed));
    if (a->json)
        cli_print_json(o);
    else {
        printf("sweep: %" PRIu64 " runs, covered %" PRIu64 ", wrongly_merged %" PRIu64 ", equivocations %"
               PRIu64 " (undetected %" PRIu64 ", later than 2 rounds %" PRIu64 ")\n", w.runs, w.covered,
               w.wrongly_merged, w.pairs, w.undetected, w.late);
        json_decref(o);
    }
    return w.failed == 0 && w.covered == w.runs ? CLI_OK : CLI_NEGATIVE;
}

int cmd_sim(int argc, char **argv)
{
    struct sim_cli a;
    struct sim_report *r = NULL;
    char err[256];
    int rc = parse_args(&a, argc, argv);

    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (a.sweep > 0)
        return run_sweep(&a);
    rc = sim_run(&a.c, &r, err, sizeof(err));
    if (rc == -1)
        return cli_usage_error("sim", "%s", err);
    if (rc != 0) {
        cli_err("sim", "%s", err);
        return CLI_USAGE;
    }
    if (a.json)
        cli_print_json(report_json(&a, r));
    else
        print_text(&a, r);
    rc = a.c.mode == SIM_FLOOD_JSON || (covered(r) && r->wrongly_merged == 0) ? CLI_OK : CLI_NEGATIVE;
    sim_report_free(r);
    return rc;
}
