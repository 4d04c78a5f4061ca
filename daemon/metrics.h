/* daemon/metrics.h: plorad's counters and their Prometheus text form.
 *
 * The loop thread owns a struct metrics and updates it in place; workers
 * never touch it (their results come back to the loop first). The status
 * server (daemon/http.h) serves a rendered copy, so the HTTP thread never
 * reads live state.
 */
#ifndef PLORA_METRICS_H
#define PLORA_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_GATE_REASONS 17u     /* GATE_R_NONE .. GATE_R_PROBE (fusion/gate.h) */
#define METRICS_FSYNC_BUCKETS 12u    /* upper bounds 0.1 ms .. 204.8 ms, doubling, then +Inf */

struct metrics {
    uint64_t rounds;                 /* gossip rounds started */
    uint64_t peers;                  /* authenticated connections now (gauge) */
    uint64_t members;                /* members known now (gauge) */
    uint64_t adapters_held;          /* whole adapters in the store (gauge) */
    uint64_t adapters_committed;     /* gate accepted + quorum (gauge) */
    uint64_t adapters_merged;        /* inputs of the latest merge (gauge) */
    uint64_t merges;                 /* merges written */
    uint64_t bytes_in, bytes_out;    /* TCP payload bytes */
    uint64_t frames_in, frames_out;
    uint64_t gate_accept, gate_reject;
    uint64_t gate_reasons[METRICS_GATE_REASONS];  /* by enum gate_reason_id */
    uint64_t audit_records;          /* appended by this process */
    uint64_t audit_acked;            /* durable (fdatasync'd) */
    uint64_t strikes, bans, conns_dropped;
    uint64_t transfers_done, transfers_failed;
    uint64_t send_buffers;           /* CHUNK send buffers mapped now (gauge) */
    uint64_t fsync_count;
    double fsync_seconds_sum;
    uint64_t fsync_buckets[METRICS_FSYNC_BUCKETS];  /* non-cumulative counts */
};

/* Upper bound in seconds of fsync bucket i (< METRICS_FSYNC_BUCKETS):
 * 1e-4 * 2^i. */
double metrics_fsync_bound(unsigned i);

/* Record one fsync (or fdatasync) that took `seconds`. */
void metrics_fsync(struct metrics *m, double seconds);

/* Render Prometheus text exposition format 0.0.4 (# HELP / # TYPE lines,
 * names prefixed plorad_, gate reasons as label reason="<gate_reason_name>",
 * fsync as a histogram plorad_fsync_seconds). `node` becomes the label
 * node="..." on every sample. *out is malloc'd (caller frees), *n its
 * length. Returns 0 or DMN_E_NOMEM.
 *
 * Names (counters end in _total): plorad_gossip_rounds_total, plorad_peers,
 * plorad_members, plorad_adapters_held, plorad_adapters_committed,
 * plorad_adapters_merged, plorad_merges_total, plorad_bytes_received_total,
 * plorad_bytes_sent_total, plorad_frames_received_total,
 * plorad_frames_sent_total, plorad_gate_accepted_total,
 * plorad_gate_rejected_total, plorad_gate_rejections_total{reason=...},
 * plorad_audit_records_total, plorad_audit_acked_total,
 * plorad_strikes_total, plorad_bans_total, plorad_conns_dropped_total,
 * plorad_transfers_done_total, plorad_transfers_failed_total, plorad_send_buffers,
 * plorad_fsync_seconds (histogram: _bucket{le=...}, _sum, _count). */
int metrics_render(const struct metrics *m, const char *node, char **out, size_t *n);

#endif
