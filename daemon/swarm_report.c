/* daemon/swarm_report.c: `plora swarm`'s tracker over the nodes' /status
 * documents, its report.json, its gnuplot plots and its summary. */
#define _POSIX_C_SOURCE 200809L
#include "swarm_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "graph.h"
#include "predict.h"
#include "structure.h"

struct swarm_track {
    uint32_t n;
    size_t na;
    struct swarm_adapter *a;
    json_t **doc;                /* n latest /status documents (owned) */
    char (*ids)[65];             /* n node key ids ("" unknown) */
    bool *rejected;              /* na */
    uint32_t *adapter_round;     /* na: first tick every node held it; UINT32_MAX not yet */
    double *cov;                 /* coverage per tick */
    size_t n_cov;
    uint32_t covered_round, done_round;   /* UINT32_MAX: not yet */
    double covered_at;           /* seconds; NAN not yet */
};

int swarm_track_new(struct swarm_track **out, uint32_t n, const struct swarm_adapter *a,
                    size_t n_adapters)
{
    struct swarm_track *t;

    *out = NULL;
    if (n == 0 || n > SWARM_NODES_MAX || n_adapters == 0 || n_adapters > SWARM_ADAPTERS_MAX)
        return -1;
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return -2;
    t->n = n;
    t->na = n_adapters;
    t->a = calloc(n_adapters, sizeof(*t->a));
    t->doc = calloc(n, sizeof(*t->doc));
    t->ids = calloc(n, sizeof(*t->ids));
    t->rejected = calloc(n_adapters, sizeof(*t->rejected));
    t->adapter_round = calloc(n_adapters, sizeof(*t->adapter_round));
    t->cov = calloc(SWARM_ROUNDS_MAX, sizeof(*t->cov));
    if (t->a == NULL || t->doc == NULL || t->ids == NULL || t->rejected == NULL ||
        t->adapter_round == NULL || t->cov == NULL) {
        swarm_track_free(t);
        return -2;
    }
    memcpy(t->a, a, n_adapters * sizeof(*a));
    for (size_t k = 0; k < n_adapters; k++)
        t->adapter_round[k] = UINT32_MAX;
    t->covered_round = t->done_round = UINT32_MAX;
    t->covered_at = NAN;
    *out = t;
    return 0;
}

void swarm_track_free(struct swarm_track *t)
{
    if (t == NULL)
        return;
    for (uint32_t i = 0; t->doc != NULL && i < t->n; i++)
        json_decref(t->doc[i]);
    free(t->a);
    free(t->doc);
    free(t->ids);
    free(t->rejected);
    free(t->adapter_round);
    free(t->cov);
    free(t);
}

void swarm_track_set_id(struct swarm_track *t, uint32_t i, const char *id)
{
    if (i < t->n)
        snprintf(t->ids[i], sizeof(t->ids[i]), "%s", id);
}

void swarm_track_observe(struct swarm_track *t, uint32_t i, json_t *status)
{
    if (status == NULL || i >= t->n) {
        json_decref(status);
        return;
    }
    json_decref(t->doc[i]);
    t->doc[i] = status;
}

double swarm_track_covered_at(const struct swarm_track *t)
{
    return t->covered_at;
}

/* ---- evaluating the documents ---------------------------------------- */

static const char *str_of(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

static uint64_t u64_of(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

/* Node doc's entry for adapter id, or NULL. */
static json_t *adapter_at(const json_t *doc, const char *id)
{
    json_t *e;
    size_t i;

    json_array_foreach(json_object_get(doc, "adapters"), i, e)
        if (strcmp(str_of(e, "id"), id) == 0)
            return e;
    return NULL;
}

static bool state_is(const json_t *e, const char *a, const char *b)
{
    const char *s = str_of(e, "state");
    return e != NULL && (strcmp(s, a) == 0 || (b != NULL && strcmp(s, b) == 0));
}

/* Is every live adapter of base model `bm` an input of the node's latest
 * merge of that base model? */
static bool merged_base(const struct swarm_track *t, const json_t *doc, const char *bm)
{
    json_t *m = NULL, *e, *in;
    size_t i, j;

    json_array_foreach(json_object_get(doc, "merged"), i, e)
        if (strcmp(str_of(e, "base_model"), bm) == 0)
            m = e;
    if (m == NULL)
        return false;
    for (size_t k = 0; k < t->na; k++) {
        bool found = false;
        if (t->rejected[k] || strcmp(t->a[k].base_model, bm) != 0)
            continue;
        json_array_foreach(json_object_get(m, "inputs"), j, in)
            found = found || strcmp(json_string_value(in) ? json_string_value(in) : "",
                                    t->a[k].id) == 0;
        if (!found)
            return false;
    }
    return true;
}

static bool node_merged(const struct swarm_track *t, const json_t *doc)
{
    for (size_t k = 0; k < t->na; k++)
        if (!t->rejected[k] && !merged_base(t, doc, t->a[k].base_model))
            return false;
    return doc != NULL;
}

static void update_rejected(struct swarm_track *t)
{
    for (size_t k = 0; k < t->na; k++)
        for (uint32_t i = 0; i < t->n && !t->rejected[k]; i++)
            t->rejected[k] = strcmp(str_of(adapter_at(t->doc[i], t->a[k].id), "gate"),
                                    "reject") == 0;
}

/* Whole/committed pairs of adapter k; records the tick it covered. */
static void count_adapter(struct swarm_track *t, size_t k, uint32_t round,
                          struct swarm_progress *p)
{
    size_t whole = 0;

    for (uint32_t i = 0; i < t->n; i++) {
        json_t *e = adapter_at(t->doc[i], t->a[k].id);
        whole += state_is(e, "held", "committed");
        p->committed += state_is(e, "committed", NULL);
    }
    p->whole += whole;
    p->pairs += t->n;
    if (whole == t->n && t->adapter_round[k] == UINT32_MAX)
        t->adapter_round[k] = round;
}

static void record(struct swarm_track *t, uint32_t round, double cov)
{
    double last = t->n_cov > 0 ? t->cov[t->n_cov - 1] : 0.0;

    if (round >= SWARM_ROUNDS_MAX)
        return;
    while (t->n_cov < round)
        t->cov[t->n_cov++] = last;   /* ticks skipped by a slow poll */
    t->cov[round] = cov;
    if (t->n_cov <= round)
        t->n_cov = round + 1;
}

void swarm_track_round(struct swarm_track *t, uint32_t round, double elapsed_s,
                       struct swarm_progress *p)
{
    memset(p, 0, sizeof(*p));
    p->round = round;
    update_rejected(t);
    for (size_t k = 0; k < t->na; k++)
        if (!t->rejected[k])
            count_adapter(t, k, round, p);
    for (uint32_t i = 0; i < t->n; i++) {
        p->reporting += t->doc[i] != NULL;
        p->merged_nodes += node_merged(t, t->doc[i]);
        p->bytes_out += u64_of(t->doc[i], "bytes_out");
    }
    p->coverage = p->pairs > 0 ? (double)p->whole / (double)p->pairs : 1.0;
    p->covered = p->whole == p->pairs;
    p->done = p->covered && p->committed == p->pairs && p->merged_nodes == t->n;
    if (p->covered && t->covered_round == UINT32_MAX) {
        t->covered_round = round;
        t->covered_at = elapsed_s;
    }
    if (p->done && t->done_round == UINT32_MAX)
        t->done_round = round;
    record(t, round, p->coverage);
}

/* ---- prediction ------------------------------------------------------- */

static int id_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Vertex of node i in the overlay: its rank among the sorted key ids (the
 * daemons' rule, daemon/overlay.h). */
static uint32_t vertex_of(const struct swarm_track *t, uint32_t i)
{
    uint32_t v = 0;

    for (uint32_t j = 0; j < t->n; j++)
        v += strcmp(t->ids[j], t->ids[i]) < 0;
    return v;
}

/* The overlay every daemon derives (daemon/overlay.h: config defaults
 * p = 2 ln n / n, k = 4, beta = 0.2, m = 2, adapted to small n; then
 * graph_connect). 0 or a graph_* code. */
static int overlay_graph(struct graph **out, const char *topology, uint32_t n, uint64_t seed)
{
    struct graph_params gp = { .n = n, .p = fmin(1.0, 2.0 * log((double)n) / (double)n),
                               .k = 4, .beta = 0.2, .m = 2, .seed = seed };
    static const uint32_t edge[2] = { 0, 1 };
    struct graph_diag d;
    struct graph *raw = NULL;
    size_t added = 0;
    int rc;

    *out = NULL;
    if ((rc = graph_topology_parse(topology, &gp.topology, &d)) != 0)
        return rc;
    if (gp.k >= n)
        gp.k = (n - 1) & ~1u;
    if (gp.m >= n)
        gp.m = n - 1;
    if (gp.topology == GRAPH_WS && gp.k < 2)
        return graph_from_edges(out, 2, edge, 1, &d);
    if ((rc = graph_generate(&raw, &gp, &d)) == 0)
        rc = graph_connect(out, raw, &added, &d);
    graph_free(raw);
    return rc;
}

/* Undirected edges the nodes report (overlay.neighbours), or -1 when some
 * node has not reported its overlay. */
static long observed_edges(const struct swarm_track *t)
{
    const char **sorted = calloc(t->n, sizeof(*sorted));
    long twice = 0;
    json_t *e;
    size_t j;

    if (sorted == NULL)
        return -1;
    for (uint32_t i = 0; i < t->n; i++)
        sorted[i] = t->ids[i];
    qsort(sorted, t->n, sizeof(*sorted), id_cmp);
    for (uint32_t i = 0; i < t->n && twice >= 0; i++) {
        json_t *nb = json_object_get(json_object_get(t->doc[i], "overlay"), "neighbours");
        if (!json_is_array(nb))
            twice = -1;
        json_array_foreach(nb, j, e) {
            const char *id = json_string_value(e);
            twice += id != NULL && bsearch(&id, sorted, t->n, sizeof(*sorted), id_cmp) != NULL;
        }
    }
    free(sorted);
    return twice < 0 ? -1 : twice / 2;
}

static json_t *num_or_null(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

/* predicted_rounds and its inputs into the report. */
static void add_prediction(json_t *o, const struct swarm_track *t, const char *topology,
                           uint64_t seed)
{
    struct graph_analysis_opts ao = { .source = 0, .c = 0, .seed = seed };
    struct graph_analysis an;
    struct graph_diag d;
    struct graph *g = NULL;
    uint32_t ecc_max = 0, ecc;
    long seen = observed_edges(t);

    if (t->n < 2 || overlay_graph(&g, topology, t->n, seed) != 0 ||
        graph_analyze(g, &ao, &an, &d) != 0) {
        json_object_set_new(o, "predicted_rounds", json_null());
        json_object_set_new(o, "eccentricity_bound", json_null());
        graph_free(g);
        return;
    }
    for (size_t k = 0; k < t->na; k++)   /* the farthest publisher bounds full coverage */
        if (graph_eccentricity(g, vertex_of(t, t->a[k].published_by), &ecc, &d) == 0 &&
            ecc > ecc_max)
            ecc_max = ecc;
    json_object_set_new(o, "predicted_rounds", num_or_null(an.predicted_rounds));
    json_object_set_new(o, "eccentricity_bound", json_integer(ecc_max));
    json_object_set_new(o, "prediction", json_pack(
        "{s:s, s:o, s:f, s:b, s:I, s:I, s:o, s:i, s:i}", "formula", "C * ln(n) / lambda2",
        "lambda2", num_or_null(an.lambda2), "c", an.prediction_c,
        "c_calibrated", an.prediction_c_calibrated, "overlay_edges", (json_int_t)an.m,
        "observed_edges", (json_int_t)seen, "overlay_matches_nodes",
        json_boolean(seen >= 0 && (size_t)seen == an.m), "diameter", (int)an.diameter.hi,
        "components", (int)an.components));
    graph_free(g);
}

/* ---- report ------------------------------------------------------------ */

static json_t *adapters_json(const struct swarm_track *t)
{
    json_t *arr = json_array();

    for (size_t k = 0; k < t->na; k++) {
        const struct swarm_adapter *a = &t->a[k];
        json_array_append_new(arr, json_pack(
            "{s:s, s:s, s:s, s:s, s:i, s:I, s:b, s:o}", "name", a->name, "id", a->id,
            "domain", a->domain, "base_model", a->base_model, "published_by",
            (int)a->published_by, "bytes", (json_int_t)a->bytes, "rejected", t->rejected[k],
            "rounds_to_coverage", t->adapter_round[k] == UINT32_MAX
                                      ? json_null() : json_integer(t->adapter_round[k])));
    }
    return arr;
}

/* Sum the nodes' gate_verdicts objects. */
static json_t *verdicts_json(const struct swarm_track *t)
{
    json_int_t acc = 0, rej = 0;
    json_t *reasons = json_object(), *v;
    const char *key;

    for (uint32_t i = 0; i < t->n; i++) {
        json_t *g = json_object_get(t->doc[i], "gate_verdicts");
        acc += (json_int_t)u64_of(g, "accept");
        rej += (json_int_t)u64_of(g, "reject");
        json_object_foreach(json_object_get(g, "reasons"), key, v) {
            json_int_t had = json_integer_value(json_object_get(reasons, key));
            json_object_set_new(reasons, key, json_integer(had + json_integer_value(v)));
        }
    }
    return json_pack("{s:I, s:I, s:o}", "accept", acc, "reject", rej, "reasons", reasons);
}

static json_t *merges_json(const struct swarm_track *t)
{
    json_t *arr = json_array(), *e;
    size_t j;

    for (uint32_t i = 0; i < t->n; i++)
        json_array_foreach(json_object_get(t->doc[i], "merged"), j, e)
            json_array_append_new(arr, json_pack(
                "{s:i, s:s, s:s, s:o, s:s, s:O?}", "node", (int)i, "base_model",
                str_of(e, "base_model"), "output", str_of(e, "output"), "inputs",
                json_is_array(json_object_get(e, "inputs"))
                    ? json_incref(json_object_get(e, "inputs")) : json_array(),
                "dir", str_of(e, "dir"), "round", json_object_get(e, "round")));
    return arr;
}

/* Adapter bytes that arrived over the network (whole copies on nodes other
 * than the publisher). */
static uint64_t delivered_bytes(const struct swarm_track *t)
{
    uint64_t sum = 0;

    for (size_t k = 0; k < t->na; k++)
        for (uint32_t i = 0; i < t->n; i++)
            if (i != t->a[k].published_by &&
                state_is(adapter_at(t->doc[i], t->a[k].id), "held", "committed"))
                sum += t->a[k].bytes;
    return sum;
}

static void add_traffic(json_t *o, const struct swarm_track *t, const struct swarm_run_info *in)
{
    uint64_t out = 0, inb = 0, rounds = 0, merges = 0, deliv = delivered_bytes(t);

    for (uint32_t i = 0; i < t->n; i++) {
        out += u64_of(t->doc[i], "bytes_out");
        inb += u64_of(t->doc[i], "bytes_in");
        merges += u64_of(t->doc[i], "merges");
        if (u64_of(t->doc[i], "round") > rounds)
            rounds = u64_of(t->doc[i], "round");
    }
    json_object_set_new(o, "bytes_sent", json_integer((json_int_t)out));
    json_object_set_new(o, "bytes_received", json_integer((json_int_t)inb));
    json_object_set_new(o, "adapter_bytes_delivered", json_integer((json_int_t)deliv));
    json_object_set_new(o, "transfer_s", num_or_null(in->transfer_s));
    json_object_set_new(o, "transfer_mb_s",
                        num_or_null(in->transfer_s > 0 ? (double)deliv / 1e6 / in->transfer_s
                                                       : NAN));
    json_object_set_new(o, "node_rounds_max", json_integer((json_int_t)rounds));
    json_object_set_new(o, "merges_written", json_integer((json_int_t)merges));
}

static json_t *series_json(const struct swarm_track *t)
{
    json_t *arr = json_array();

    for (size_t r = 0; r < t->n_cov; r++)
        json_array_append_new(arr, json_real(t->cov[r]));
    return arr;
}

static json_t *round_or_null(uint32_t r)
{
    return r == UINT32_MAX ? json_null() : json_integer(r);
}

static json_t *exit_codes_json(const struct swarm_run_info *in, bool *all_zero)
{
    json_t *arr = json_array();

    *all_zero = true;
    for (uint32_t i = 0; i < in->n; i++) {
        json_array_append_new(arr, json_integer(in->exit_codes[i]));
        *all_zero = *all_zero && in->exit_codes[i] == 0;
    }
    return arr;
}

json_t *swarm_report_build(const struct swarm_track *t, const struct swarm_run_info *in)
{
    json_t *o = json_object();
    bool zero;

    if (o == NULL)
        return NULL;
    json_object_set_new(o, "n", json_integer(in->n));
    json_object_set_new(o, "topology", json_string(in->topology));
    json_object_set_new(o, "seed", json_integer((json_int_t)in->seed));
    json_object_set_new(o, "quorum", json_integer(in->quorum));
    json_object_set_new(o, "round_ms", json_integer(in->round_ms));
    json_object_set_new(o, "adapters", adapters_json(t));
    json_object_set_new(o, "rounds", round_or_null(t->covered_round));
    json_object_set_new(o, "rounds_to_done", round_or_null(t->done_round));
    json_object_set_new(o, "coverage_by_round", series_json(t));
    json_object_set_new(o, "final_coverage", json_real(t->n_cov ? t->cov[t->n_cov - 1] : 0.0));
    add_prediction(o, t, in->topology, in->seed);
    add_traffic(o, t, in);
    json_object_set_new(o, "gate_verdicts", verdicts_json(t));
    json_object_set_new(o, "merges", merges_json(t));
    json_object_set_new(o, "audit_logs", json_incref(in->audit_logs));
    json_object_set_new(o, "wall_s", json_real(in->wall_s));
    json_object_set_new(o, "total_s", json_real(in->total_s));
    json_object_set_new(o, "timed_out", json_boolean(in->timed_out));
    json_object_set_new(o, "signal", in->signal ? json_integer(in->signal) : json_null());
    json_object_set_new(o, "daemons_exit_codes", exit_codes_json(in, &zero));
    json_object_set_new(o, "daemons_exit_ok", json_boolean(zero));
    json_object_set_new(o, "done", json_boolean(t->done_round != UINT32_MAX));
    return o;
}

/* ---- plots ------------------------------------------------------------ */

/* Is `prog` an executable in $PATH? */
static bool in_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[4096];

    while (path != NULL && *path != '\0') {
        size_t len = strcspn(path, ":");
        snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, len ? path : ".", prog);
        if (access(buf, X_OK) == 0)
            return true;
        path += len + (path[len] == ':');
    }
    return false;
}

static double num(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* coverage.dat: block 0 = round and measured coverage; block 1 = the
 * SI/logistic prediction sampled every 0.1 round. The logistic
 * f(t) = 1 / (1 + (n-1) e^{-rt}) starts at one holder in n and is chosen to
 * reach (n - 1/2)/n, every node but half a one, at the predicted round T:
 * r = ln((n-1)(2n-1)) / T. */
static int write_data(const json_t *rep, const char *path, double T)
{
    json_t *cov = json_object_get(rep, "coverage_by_round");
    double n = num(rep, "n");
    double rate = n > 1 && T > 0 ? log((n - 1) * (2 * n - 1)) / T : NAN;
    double end = fmin(fmax((double)json_array_size(cov), isfinite(T) ? 1.3 * T : 0.0),
                      (double)SWARM_ROUNDS_MAX);
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return -1;
    fprintf(f, "# round measured_coverage\n");
    for (size_t r = 0; r < json_array_size(cov); r++)
        fprintf(f, "%zu %.6f\n", r, json_number_value(json_array_get(cov, r)));
    fprintf(f, "\n\n# round predicted_si_coverage\n");
    for (size_t i = 0; isfinite(rate) && i <= (size_t)(end * 10.0); i++)
        fprintf(f, "%.1f %.6f\n", (double)i / 10.0,
                1.0 / (1.0 + (n - 1) * exp(-rate * (double)i / 10.0)));
    return fclose(f) == 0 ? 0 : -1;
}

static void gp_plot(FILE *g, const json_t *rep, const char *dat, double T, double ecc)
{
    fprintf(g, "set title \"plora swarm: n=%d %s seed=%lld\"\n", (int)num(rep, "n"),
            json_string_value(json_object_get(rep, "topology")),
            (long long)json_integer_value(json_object_get(rep, "seed")));
    fputs("set termoption noenhanced\n"
          "set xlabel \"round (poll ticks of round_ms since all daemons were ready)\"\n"
          "set ylabel \"coverage (fraction of node x adapter pairs held)\"\n"
          "set yrange [0:1.05]\nset key bottom right\nset grid\n", g);
    if (isfinite(T))
        fprintf(g, "set arrow 1 from %g,0 to %g,1.05 nohead dt 2 lc rgb \"#c03030\"\n", T, T);
    if (isfinite(ecc))
        fprintf(g, "set arrow 2 from %g,0 to %g,1.05 nohead dt 3 lc rgb \"#808080\"\n", ecc, ecc);
    fprintf(g, "plot \"%s\" index 0 using 1:2 with linespoints lw 2 pt 7 ps 0.6 title \"measured\"", dat);
    if (isfinite(T))
        fprintf(g, ", \"%s\" index 1 using 1:2 with lines dt 2 lc rgb \"#c03030\" title "
                "\"SI model reaching full coverage at C ln n / lambda2 = %.1f rounds (C=1, "
                "uncalibrated)\"", dat, T);
    if (isfinite(ecc))
        fprintf(g, ", NaN with lines dt 3 lc rgb \"#808080\" title \"eccentricity lower "
                "bound = %.0f rounds\"", ecc);
    fputc('\n', g);
}

/* Run one gnuplot for both terminals; 0 or -1. */
static int run_gnuplot(const json_t *rep, const char *dir, const char *dat, double T,
                       double ecc)
{
    FILE *g = popen("gnuplot 2>&1 >/dev/null", "w");
    int st;

    if (g == NULL)
        return -1;
    fprintf(g, "set terminal pngcairo size 1000,600\nset output \"%s/coverage.png\"\n", dir);
    gp_plot(g, rep, dat, T, ecc);
    fprintf(g, "set terminal svg size 1000,600 dynamic\nset output \"%s/coverage.svg\"\n", dir);
    gp_plot(g, rep, dat, T, ecc);
    fputs("set output\n", g);
    st = pclose(g);
    return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static bool nonempty(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return stat(p, &st) == 0 && st.st_size > 0;
}

int swarm_report_plot(const json_t *rep, const char *dir, char *why, size_t cap)
{
    char dat[4096];
    double T = num(rep, "predicted_rounds"), ecc = num(rep, "eccentricity_bound");

    if (!in_path("gnuplot")) {
        snprintf(why, cap, "gnuplot is not installed (apt-get install gnuplot-nox): "
                 "no coverage.png / coverage.svg");
        return 1;
    }
    if (strchr(dir, '"') != NULL) {
        snprintf(why, cap, "%s: a path with '\"' cannot be passed to gnuplot", dir);
        return -1;
    }
    snprintf(dat, sizeof(dat), "%s/coverage.dat", dir);
    if (write_data(rep, dat, T) != 0) {
        snprintf(why, cap, "%s: cannot write", dat);
        return -1;
    }
    if (run_gnuplot(rep, dir, dat, T, ecc) != 0 || !nonempty(dir, "coverage.png") ||
        !nonempty(dir, "coverage.svg")) {
        snprintf(why, cap, "gnuplot failed to draw %s/coverage.png and coverage.svg", dir);
        return -1;
    }
    return 0;
}

/* ---- summary ----------------------------------------------------------- */

static void print_rounds(const json_t *rep, FILE *f)
{
    json_t *r = json_object_get(rep, "rounds"), *d = json_object_get(rep, "rounds_to_done");

    char rb[32] = "never", db[32] = "never";

    if (json_is_integer(r))
        snprintf(rb, sizeof(rb), "%lld", (long long)json_integer_value(r));
    if (json_is_integer(d))
        snprintf(db, sizeof(db), "%lld", (long long)json_integer_value(d));
    fprintf(f, "  rounds       coverage in %s, committed + merged in %s (ticks of %lld ms)\n",
            rb, db, (long long)json_integer_value(json_object_get(rep, "round_ms")));
    fprintf(f, "  predicted    %.1f rounds (C ln n / lambda2, C = 1 uncalibrated); eccentricity "
            "bound %lld\n", num(rep, "predicted_rounds"),
            (long long)json_integer_value(json_object_get(rep, "eccentricity_bound")));
}

static void print_gate_merges(const json_t *rep, FILE *f)
{
    json_t *g = json_object_get(rep, "gate_verdicts"), *v;
    const char *key;

    fprintf(f, "  gate         %lld accept, %lld reject",
            (long long)json_integer_value(json_object_get(g, "accept")),
            (long long)json_integer_value(json_object_get(g, "reject")));
    json_object_foreach(json_object_get(g, "reasons"), key, v)
        fprintf(f, "; %s x%lld", key, (long long)json_integer_value(v));
    fprintf(f, "\n  merges       %zu node merges listed, %lld written\n",
            json_array_size(json_object_get(rep, "merges")),
            (long long)json_integer_value(json_object_get(rep, "merges_written")));
}

static void print_audit(const json_t *rep, FILE *f)
{
    json_t *logs = json_object_get(rep, "audit_logs"), *e;
    size_t i, ok = 0;

    json_array_foreach(logs, i, e)
        ok += json_is_true(json_object_get(e, "ok"));
    fprintf(f, "  audit logs   %zu of %zu verify", ok, json_array_size(logs));
    json_array_foreach(logs, i, e)
        if (!json_is_true(json_object_get(e, "ok")))
            fprintf(f, "; node %lld: %s", (long long)json_integer_value(json_object_get(e, "node")),
                    str_of(e, "reason")[0] ? str_of(e, "reason") : "failed");
    fputc('\n', f);
}

void swarm_report_summary(const json_t *rep, FILE *f)
{
    json_t *codes = json_object_get(rep, "daemons_exit_codes");

    fprintf(f, "plora swarm: n=%lld topology=%s seed=%lld adapters=%zu quorum=%lld: %s\n",
            (long long)json_integer_value(json_object_get(rep, "n")), str_of(rep, "topology"),
            (long long)json_integer_value(json_object_get(rep, "seed")),
            json_array_size(json_object_get(rep, "adapters")),
            (long long)json_integer_value(json_object_get(rep, "quorum")),
            json_is_true(json_object_get(rep, "done")) ? "coverage + merge reached"
            : json_is_true(json_object_get(rep, "timed_out")) ? "TIMED OUT" : "NOT reached");
    fprintf(f, "  coverage     %.1f%%\n", 100.0 * num(rep, "final_coverage"));
    print_rounds(rep, f);
    fprintf(f, "  wall         %.2f s to coverage + merge (%.2f s in all); transfer %.2f s, "
            "%.2f MB/s of adapters delivered, %.2f MB sent\n", num(rep, "wall_s"),
            num(rep, "total_s"), num(rep, "transfer_s"), num(rep, "transfer_mb_s"),
            num(rep, "bytes_sent") / 1e6);
    print_gate_merges(rep, f);
    print_audit(rep, f);
    fprintf(f, "  daemons      %s (exit codes of %zu daemons)\n",
            json_is_true(json_object_get(rep, "daemons_exit_ok")) ? "all exited 0"
                                                                  : "NOT all exited 0",
            json_array_size(codes));
}
