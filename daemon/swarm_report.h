/* daemon/swarm_report.h: what `plora swarm` measures from its nodes'
 * /status documents (daemon/status.h), and the report it writes from them:
 * DIR/report.json, DIR/coverage.{png,svg} (gnuplot) and the one-screen
 * summary.
 *
 * The tracker keeps each node's latest /status document. A "round" here is
 * one tick of the swarm's own poll clock (round_ms, the daemons' gossip
 * period), counted from the moment every daemon was ready; the daemons'
 * own round counters are not aligned with each other (they start at
 * different times), so they are reported only as node_rounds_max.
 *
 * Definitions (all over the adapters the swarm published):
 *  - rejected: some node's gate said "reject" (the gate is deterministic,
 *    so the publisher's verdict stands for everyone); live = not rejected.
 *  - coverage: whole (state "held" or "committed") (node, live adapter)
 *    pairs / (n * live adapters).
 *  - merged node: for every base model of the live adapters, the node's
 *    latest merge of that base model lists every live adapter of it.
 *  - done: every live adapter committed on every node, every node merged.
 */
#ifndef PLORA_SWARM_REPORT_H
#define PLORA_SWARM_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SWARM_NODES_MAX 1024u
#define SWARM_ADAPTERS_MAX 64u
#define SWARM_ROUNDS_MAX 100000u   /* coverage series cap (120 s at 1 ms rounds) */

struct swarm_adapter {
    char name[128];          /* directory name under DIR/publish/ */
    char id[65];             /* SHA-256 hex of adapter_model.safetensors (the store id) */
    char domain[65];         /* signed domain */
    char base_model[256];    /* adapter_config.json base_model_name_or_path ("" absent) */
    uint32_t published_by;   /* node index */
    uint64_t bytes;          /* adapter_model.safetensors size */
};

struct swarm_progress {
    uint32_t round;          /* poll tick, from 0 */
    double coverage;         /* 0..1, see above */
    size_t whole, committed, pairs;   /* (node, live adapter) pairs */
    uint32_t merged_nodes;   /* nodes whose merges cover every live adapter */
    uint32_t reporting;      /* nodes whose /status has been seen */
    uint64_t bytes_out;      /* sum of the nodes' bytes_out */
    bool covered;            /* coverage reached 1 */
    bool done;               /* covered, committed and merged everywhere */
};

struct swarm_track;  /* opaque */

/* New tracker for n nodes (1..SWARM_NODES_MAX) and the adapters (copied,
 * 1..SWARM_ADAPTERS_MAX). Returns 0, -1 (bad count) or -2 (no memory);
 * *out is the caller's (swarm_track_free). */
int swarm_track_new(struct swarm_track **out, uint32_t n, const struct swarm_adapter *a,
                    size_t n_adapters);
void swarm_track_free(struct swarm_track *t);  /* NULL is fine */

/* Node i's key id (from its ready file), for mapping overlay neighbours. */
void swarm_track_set_id(struct swarm_track *t, uint32_t i, const char *id);

/* Node i's newest /status document; the tracker takes the reference
 * (NULL is ignored: the previous document stays). */
void swarm_track_observe(struct swarm_track *t, uint32_t i, json_t *status);

/* Close poll tick `round` (>= every earlier one) at `elapsed_s` since the
 * ticks began: evaluate the latest documents into *p and record the
 * coverage (ticks skipped since the last call carry the previous value). */
void swarm_track_round(struct swarm_track *t, uint32_t round, double elapsed_s,
                       struct swarm_progress *p);

/* Seconds since the ticks began at which coverage first reached 1 (NAN if
 * never): the end of the transfer phase. */
double swarm_track_covered_at(const struct swarm_track *t);

/* What the caller measured around the tracker. */
struct swarm_run_info {
    uint32_t n, quorum, round_ms;
    const char *topology;      /* "er" | "ws" | "ba" */
    uint64_t seed;
    double wall_s;             /* first daemon started -> done (or stop) */
    double transfer_s;         /* first daemon started -> coverage 1 (NAN: never) */
    double total_s;            /* whole command */
    bool timed_out;
    int signal;                /* SIGINT/SIGTERM that stopped the run, else 0 */
    const int *exit_codes;     /* n daemon exit codes: 128+sig if killed, -1 unknown */
    json_t *audit_logs;        /* borrowed array [{node, path, ok, records, ...}] */
};

/* report.json's object: n, topology, seed, adapters, rounds, coverage_by_round,
 * final_coverage, predicted_rounds (+ the overlay analysis it came from),
 * bytes_sent, transfer_mb_s, gate_verdicts, merges, audit_logs, wall_s,
 * timed_out, daemons_exit_codes, done, ... (see cmd_swarm.c --help).
 * NULL when out of memory. */
json_t *swarm_report_build(const struct swarm_track *t, const struct swarm_run_info *info);

/* Draw DIR/coverage.png and DIR/coverage.svg with gnuplot from the report
 * (data in DIR/coverage.dat). Returns 0 drawn, 1 gnuplot not installed
 * (nothing drawn), -1 failed (why says what). */
int swarm_report_plot(const json_t *report, const char *dir, char *why, size_t cap);

/* The one-screen human summary of a report. */
void swarm_report_summary(const json_t *report, FILE *f);

#endif
