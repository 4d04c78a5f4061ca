/* daemon/cmd_graph.c: `plora graph`: generate an overlay with graph/ and
 * report its structure, spectral gap and predicted gossip rounds; optionally
 * write its edge list. The library does the work; this file parses options,
 * writes the --edges file and prints. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "graph.h"
#include "predict.h"

static const char usage_text[] =
    "usage: plora graph --topology er|ws|ba -n N [--p P] [--k K] [--beta B] [--m M] --seed S\n"
    "                   [--edges FILE] [--connect] [--source V] [--c C] [--json]\n"
    "  Generate an overlay deterministically from (topology, n, parameters, seed) and report\n"
    "  n, m, components, diameter (exact for n <= 20000; beyond, the lower bound of\n"
    "  diameter_bounds [lo, hi] from double sweeps; null if disconnected), lambda2 of L = D - A and\n"
    "  of the normalised Laplacian, the Cheeger interval [l2n/2, sqrt(2 l2n)], the Fiedler\n"
    "  sweep-cut conductance, the epidemic threshold 1/lambda_max(A), the push-pull lower\n"
    "  bound (eccentricity of --source, default 0) and the predicted rounds C * ln n / lambda2.\n"
    "  C is UNCALIBRATED (C = 1) until fitted from `plora sim` runs; --c C sets a fitted value.\n"
    "  er: --p edge probability in [0,1] (default 8/(n-1), mean degree 8)\n"
    "  ws: --k even ring degree, 2 <= k < n (default 8); --beta rewiring in [0,1] (default 0.1)\n"
    "  ba: --m edges per new vertex, 1 <= m < n (default 4); seed graph: star on 0..m\n"
    "  --connect  join components with the fewest edges (components - 1) and say how many\n"
    "  --edges F  write one \"u v\" line per undirected edge (u < v, vertices from 0)\n"
    "  Exit 0 ok (a disconnected graph is reported, with a warning), 2 bad parameter, size\n"
    "  over the memory cap, unwritable FILE or solver failure (the message names which).\n";

struct graph_cli {
    struct graph_params p;
    const char *edges;
    bool json, connect, have_topo, have_n, have_seed, have_p, have_k, have_beta, have_m;
    uint32_t source;
    double c;
};

enum { OPT_TOPO = 256, OPT_P, OPT_K, OPT_BETA, OPT_M, OPT_SEED, OPT_EDGES, OPT_JSON,
       OPT_CONNECT, OPT_SOURCE, OPT_C };

static const struct option long_opts[] = {
    { "topology", required_argument, NULL, OPT_TOPO }, { "p", required_argument, NULL, OPT_P },
    { "k", required_argument, NULL, OPT_K }, { "beta", required_argument, NULL, OPT_BETA },
    { "m", required_argument, NULL, OPT_M }, { "seed", required_argument, NULL, OPT_SEED },
    { "edges", required_argument, NULL, OPT_EDGES }, { "json", no_argument, NULL, OPT_JSON },
    { "connect", no_argument, NULL, OPT_CONNECT }, { "source", required_argument, NULL, OPT_SOURCE },
    { "c", required_argument, NULL, OPT_C }, { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* One option; false after printing a usage error. */
static bool parse_one(struct graph_cli *a, int opt, const char *v)
{
    long l;
    unsigned long long u;
    struct graph_diag d;

    switch (opt) {
    case OPT_TOPO:
        if (graph_topology_parse(v, &a->p.topology, &d) != 0)
            return cli_usage_error("graph", "%s", d.msg), false;
        return a->have_topo = true;
    case 'n':
        if (!cli_parse_long("graph", "-n", v, 2, GRAPH_N_MAX, &l)) return false;
        a->p.n = (uint32_t)l;
        return a->have_n = true;
    case OPT_P: return cli_parse_double("graph", "--p", v, &a->p.p) && (a->have_p = true);
    case OPT_BETA: return cli_parse_double("graph", "--beta", v, &a->p.beta) && (a->have_beta = true);
    case OPT_K:
        if (!cli_parse_long("graph", "--k", v, 0, GRAPH_N_MAX, &l)) return false;
        a->p.k = (uint32_t)l;
        return a->have_k = true;
    case OPT_M:
        if (!cli_parse_long("graph", "--m", v, 0, GRAPH_N_MAX, &l)) return false;
        a->p.m = (uint32_t)l;
        return a->have_m = true;
    case OPT_SEED:
        if (!cli_parse_u64("graph", "--seed", v, &u)) return false;
        if (u > INT64_MAX)
            return cli_usage_error("graph", "--seed: %s is above %" PRId64, v, INT64_MAX), false;
        a->p.seed = u;
        return a->have_seed = true;
    case OPT_SOURCE:
        if (!cli_parse_long("graph", "--source", v, 0, GRAPH_N_MAX, &l)) return false;
        a->source = (uint32_t)l;
        return true;
    case OPT_C:
        if (!cli_parse_double("graph", "--c", v, &a->c)) return false;
        if (a->c <= 0)
            return cli_usage_error("graph", "--c: %s must be positive", v), false;
        return true;
    case OPT_EDGES: a->edges = v; return true;
    case OPT_JSON: a->json = true; return true;
    case OPT_CONNECT: a->connect = true; return true;
    }
    return cli_usage_error("graph", "unknown option (see plora graph --help)"), false;
}

/* Defaults for the parameters the topology uses; errors name the option. */
static int finish_args(struct graph_cli *a)
{
    if (!a->have_topo) return cli_usage_error("graph", "--topology: missing (er, ws or ba)");
    if (!a->have_n) return cli_usage_error("graph", "-n: missing (number of vertices)");
    if (!a->have_seed) return cli_usage_error("graph", "--seed: missing");
    if (a->source >= a->p.n)
        return cli_usage_error("graph", "--source: %u is not a vertex of 0..%u", a->source, a->p.n - 1);
    if (!a->have_p) a->p.p = fmin(1.0, 8.0 / (a->p.n - 1));
    if (!a->have_k) a->p.k = 8;
    if (!a->have_beta) a->p.beta = 0.1;
    if (!a->have_m) a->p.m = 4;
    return CLI_OK;
}

static int parse_args(struct graph_cli *a, int argc, char **argv)
{
    int opt;

    memset(a, 0, sizeof(*a));
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "n:h", long_opts, NULL)) != -1) {
        if (opt == 'h') {
            fputs(usage_text, stdout);
            return -1;
        }
        if (opt == '?' || opt == ':')
            return cli_usage_error("graph", "bad option \"%s\" (see plora graph --help)",
                                   argv[optind - 1]);
        if (!parse_one(a, opt, optarg))
            return CLI_USAGE;
    }
    if (optind < argc)
        return cli_usage_error("graph", "unexpected argument \"%s\"", argv[optind]);
    return finish_args(a);
}

static int write_edges(const char *path, const struct graph *g)
{
    FILE *f = fopen(path, "w");
    int bad;

    if (f == NULL)
        return cli_usage_error("graph", "--edges %s: %s", path, strerror(errno));
    for (uint32_t u = 0; u < graph_n(g); u++) {
        uint32_t deg;
        const uint32_t *nb = graph_neighbors(g, u, &deg);

        for (uint32_t i = 0; i < deg; i++)
            if (nb[i] > u)
                fprintf(f, "%" PRIu32 " %" PRIu32 "\n", u, nb[i]);
    }
    bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return cli_usage_error("graph", "--edges %s: write failed: %s", path, strerror(errno));
    return CLI_OK;
}

/* A number, or null for +inf (disconnected: never covers). */
static json_t *num_or_null(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

static json_t *params_json(const struct graph_params *p)
{
    switch (p->topology) {
    case GRAPH_ER: return json_pack("{s:f}", "p", p->p);
    case GRAPH_WS: return json_pack("{s:I, s:f}", "k", (json_int_t)p->k, "beta", p->beta);
    case GRAPH_BA: return json_pack("{s:I}", "m", (json_int_t)p->m);
    }
    return json_object();
}

static json_t *report_json(const struct graph_cli *a, const struct graph_analysis *r,
                           size_t added, uint64_t hash)
{
    const struct graph_diameter *dm = &r->diameter;
    char hex[17];

    snprintf(hex, sizeof(hex), "%016" PRIx64, hash);
    return json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:o, s:f, s:f, s:[f,f], s:f, s:o,"
        " s:o, s:b, s:I, s:b, s:o, s:I, s:I, s:f, s:s, s:o, s:f, s:o, s:s, s:s}",
        "topology", graph_topology_name(a->p.topology), "n", (json_int_t)r->n,
        "m", (json_int_t)r->m, "seed", (json_int_t)a->p.seed,
        "components", (json_int_t)r->components,
        "diameter", dm->connected ? json_integer(dm->lo) : json_null(),
        "lambda2", r->lambda2, "lambda2_normalized", r->lambda2_normalized,
        "cheeger", r->cheeger_lo, r->cheeger_hi, "sweep_conductance", r->sweep_conductance,
        "predicted_rounds", num_or_null(r->predicted_rounds),
        "params", params_json(&a->p), "connected", r->components == 1,
        "connect_added", (json_int_t)added, "diameter_exact", dm->exact,
        "diameter_bounds", dm->connected ? json_pack("[I,I]", (json_int_t)dm->lo,
                                                     (json_int_t)dm->hi) : json_null(),
        "source", (json_int_t)r->source, "eccentricity_bound", (json_int_t)r->source_eccentricity,
        "prediction_c", r->prediction_c,
        "prediction_c_source", a->c > 0 ? "user" : r->prediction_c_calibrated ? "calibrated"
                                                                             : "uncalibrated",
        "predicted_rounds_uncalibrated", num_or_null(r->predicted_rounds_uncalibrated),
        "lambda_max_adj", r->lambda_max_adj, "epidemic_threshold", num_or_null(r->epidemic_threshold),
        "solver", r->solver, "edges_fnv1a64", hex);
}

static void report_text(const struct graph_cli *a, const struct graph_analysis *r, size_t added)
{
    const struct graph_diameter *dm = &r->diameter;

    printf("topology %s  n %u  m %zu  seed %" PRIu64 "\n", graph_topology_name(a->p.topology),
           r->n, r->m, a->p.seed);
    printf("components %u%s", r->components, added ? "" : "\n");
    if (added)
        printf(" (after --connect added %zu edges)\n", added);
    if (!dm->connected)
        printf("diameter infinite (disconnected)\n");
    else if (dm->exact)
        printf("diameter %u\n", dm->lo);
    else
        printf("diameter in [%u, %u]\n", dm->lo, dm->hi);
    printf("lambda2 %.10g (L = D - A), %.10g (normalised)  [%s]\n", r->lambda2,
           r->lambda2_normalized, r->solver);
    printf("cheeger [%.6g, %.6g]  sweep conductance %.6g\n", r->cheeger_lo, r->cheeger_hi,
           r->sweep_conductance);
    printf("epidemic threshold 1/lambda_max(A) = %.6g (lambda_max %.6g)\n", r->epidemic_threshold,
           r->lambda_max_adj);
    printf("predicted rounds C ln n / lambda2 = %.4g (C = %g, %s); push-pull lower bound "
           "ecc(%u) = %u\n", r->predicted_rounds, r->prediction_c,
           a->c > 0 ? "user-supplied" : r->prediction_c_calibrated ? "fitted per topology, "
                                                                    "docs/calibration.md"
                                                                  : "uncalibrated", r->source,
           r->source_eccentricity);
}

static int run(const struct graph_cli *a)
{
    struct graph *g = NULL, *joined = NULL;
    struct graph_analysis r;
    struct graph_analysis_opts ao = { a->source, a->c, a->c > 0, false, a->p.seed };
    struct graph_diag d;
    size_t added = 0;
    int rc = CLI_USAGE;

    graph_diag_clear(&d);
    if (graph_generate(&g, &a->p, &d) != 0 ||
        (a->connect && graph_connect(&joined, g, &added, &d) != 0)) {
        cli_err("graph", "%s (%s)", d.msg, graph_err_name(d.code));
        goto out;
    }
    if (joined != NULL) {
        graph_free(g);
        g = joined;
    }
    if (a->edges != NULL && (rc = write_edges(a->edges, g)) != CLI_OK)
        goto out;
    if (graph_analyze(g, &ao, &r, &d) != 0) {
        cli_err("graph", "analysis failed: %s (%s)", d.msg, graph_err_name(d.code));
        rc = CLI_USAGE;
        goto out;
    }
    if (a->c <= 0)   /* no --c: the per-topology C fitted from plora sim (docs/calibration.md) */
        graph_analysis_calibrate(&r, a->p.topology);
    if (r.components > 1)
        cli_err("graph", "warning: the graph has %u components (lambda2 = 0, no coverage); "
                "--connect joins them with %u edges", r.components, r.components - 1);
    if (a->json)
        rc = cli_print_json(report_json(a, &r, added, graph_edges_hash(g))) == 0 ? CLI_OK : CLI_USAGE;
    else {
        report_text(a, &r, added);
        rc = CLI_OK;
    }
out:
    graph_free(g);
    return rc;
}

int cmd_graph(int argc, char **argv)
{
    struct graph_cli a;
    struct graph_diag d;
    int rc = parse_args(&a, argc, argv);

    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    graph_diag_clear(&d);
    if (graph_params_check(&a.p, 0, &d) != 0)
        return cli_usage_error("graph", "%s", d.msg);
    return run(&a);
}
