/* daemon/metrics.c: Prometheus text exposition format 0.0.4 of struct
 * metrics. Counters end in _total, gauges are plain, gate reasons are one
 * labelled counter, fsync latency is a histogram with cumulative buckets. */
#include "metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmn_err.h"
#include "gate.h"

#define FSYNC_FIRST_BOUND 1e-4   /* seconds; bucket i's upper bound is this * 2^i */

/* A growing text buffer; `failed` sticks once an allocation fails so the
 * renderer can append unconditionally and check once at the end. */
struct mbuf {
    char *p;
    size_t n, cap;
    bool failed;
};

static void mb_printf(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void mb_printf(struct mbuf *b, const char *fmt, ...)
{
    va_list ap;
    int w;

    if (b->failed)
        return;
    va_start(ap, fmt);
    w = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (w < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)w >= b->cap - b->n) {
        size_t cap = b->cap * 2 + (size_t)w + 1;
        char *q = realloc(b->p, cap);
        if (q == NULL) {
            b->failed = true;
            return;
        }
        b->p = q;
        b->cap = cap;
        va_start(ap, fmt);
        vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
    }
    b->n += (size_t)w;
}

double metrics_fsync_bound(unsigned i)
{
    return FSYNC_FIRST_BOUND * (double)(1u << i);
}

void metrics_fsync(struct metrics *m, double seconds)
{
    m->fsync_count++;
    m->fsync_seconds_sum += seconds;
    for (unsigned i = 0; i < METRICS_FSYNC_BUCKETS; i++) {
        if (seconds <= metrics_fsync_bound(i)) {
            m->fsync_buckets[i]++;
            return;
        }
    }
    /* slower than the last bound: counted only in +Inf (= fsync_count) */
}

/* Label value escaping of the text format: backslash, quote, newline. */
static char *escape_label(const char *s)
{
    size_t n = 0;
    char *out, *q;

    for (const char *p = s; *p != '\0'; p++)
        n += (*p == '\\' || *p == '"' || *p == '\n') ? 2 : 1;
    if ((out = malloc(n + 1)) == NULL)
        return NULL;
    q = out;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"' || *p == '\n') {
            *q++ = '\\';
            *q++ = *p == '\n' ? 'n' : *p;
        } else {
            *q++ = *p;
        }
    }
    *q = '\0';
    return out;
}

struct metric_def {
    const char *name;        /* without the plorad_ prefix and _total suffix */
    const char *help;
    bool counter;
    size_t off;              /* of the uint64_t in struct metrics */
};

#define C(name, field, help) { name, help, true, offsetof(struct metrics, field) }
#define G(name, field, help) { name, help, false, offsetof(struct metrics, field) }
static const struct metric_def plain_defs[] = {
    C("gossip_rounds", rounds, "Gossip rounds started."),
    G("peers", peers, "Authenticated peer connections now."),
    G("members", members, "Swarm members known now."),
    G("adapters_held", adapters_held, "Whole adapters in the store."),
    G("adapters_committed", adapters_committed, "Adapters accepted by the gate and committed by quorum."),
    G("adapters_merged", adapters_merged, "Input adapters of the latest merge."),
    C("merges", merges, "Merged adapters written."),
    C("bytes_received", bytes_in, "TCP payload bytes received."),
    C("bytes_sent", bytes_out, "TCP payload bytes sent."),
    C("frames_received", frames_in, "Protocol frames received."),
    C("frames_sent", frames_out, "Protocol frames sent."),
    C("gate_accepted", gate_accept, "Adapters the gate accepted."),
    C("gate_rejected", gate_reject, "Adapters the gate rejected."),
    C("audit_records", audit_records, "Audit records appended by this process."),
    C("audit_acked", audit_acked, "Audit records made durable (fdatasync'd)."),
    C("strikes", strikes, "Strikes given to misbehaving peers."),
    C("bans", bans, "Temporary peer bans."),
    C("conns_dropped", conns_dropped, "Connections dropped for misbehaviour or timeouts."),
    C("transfers_done", transfers_done, "Adapter transfers completed."),
    C("transfers_failed", transfers_failed, "Adapter transfers failed."),
    G("send_buffers", send_buffers, "CHUNK send buffers mapped now (none while no adapter is being sent)."),
};
#undef C
#undef G

static void render_plain(struct mbuf *b, const struct metrics *m, const char *node)
{
    for (size_t i = 0; i < sizeof(plain_defs) / sizeof(plain_defs[0]); i++) {
        const struct metric_def *def = &plain_defs[i];
        const char *sfx = def->counter ? "_total" : "";
        uint64_t v;

        memcpy(&v, (const char *)m + def->off, sizeof(v));
        mb_printf(b, "# HELP plorad_%s%s %s\n", def->name, sfx, def->help);
        mb_printf(b, "# TYPE plorad_%s%s %s\n", def->name, sfx, def->counter ? "counter" : "gauge");
        mb_printf(b, "plorad_%s%s{node=\"%s\"} %llu\n", def->name, sfx, node, (unsigned long long)v);
    }
}

static void render_reasons(struct mbuf *b, const struct metrics *m, const char *node)
{
    mb_printf(b, "# HELP plorad_gate_rejections_total Gate rejections by reason.\n");
    mb_printf(b, "# TYPE plorad_gate_rejections_total counter\n");
    for (unsigned i = 1; i < METRICS_GATE_REASONS; i++)   /* 0 = GATE_R_NONE */
        mb_printf(b, "plorad_gate_rejections_total{node=\"%s\",reason=\"%s\"} %llu\n", node,
                  gate_reason_name((enum gate_reason_id)i), (unsigned long long)m->gate_reasons[i]);
}

static void render_fsync(struct mbuf *b, const struct metrics *m, const char *node)
{
    uint64_t cum = 0;

    mb_printf(b, "# HELP plorad_fsync_seconds Duration of audit log fsync/fdatasync calls.\n");
    mb_printf(b, "# TYPE plorad_fsync_seconds histogram\n");
    for (unsigned i = 0; i < METRICS_FSYNC_BUCKETS; i++) {
        cum += m->fsync_buckets[i];
        mb_printf(b, "plorad_fsync_seconds_bucket{node=\"%s\",le=\"%g\"} %llu\n", node,
                  metrics_fsync_bound(i), (unsigned long long)cum);
    }
    mb_printf(b, "plorad_fsync_seconds_bucket{node=\"%s\",le=\"+Inf\"} %llu\n", node,
              (unsigned long long)m->fsync_count);
    mb_printf(b, "plorad_fsync_seconds_sum{node=\"%s\"} %.9g\n", node, m->fsync_seconds_sum);
    mb_printf(b, "plorad_fsync_seconds_count{node=\"%s\"} %llu\n", node,
              (unsigned long long)m->fsync_count);
}

int metrics_render(const struct metrics *m, const char *node, char **out, size_t *n)
{
    struct mbuf b = { NULL, 0, 4096, false };
    char *label = NULL;
    int rc = DMN_E_NOMEM;

    *out = NULL;
    *n = 0;
    if ((label = escape_label(node != NULL ? node : "")) == NULL ||
        (b.p = malloc(b.cap)) == NULL)
        goto out;
    render_plain(&b, m, label);
    render_reasons(&b, m, label);
    render_fsync(&b, m, label);
    if (b.failed)
        goto out;
    *out = b.p;   /* transferred; NUL-terminated by vsnprintf */
    *n = b.n;
    b.p = NULL;
    rc = 0;
out:
    free(b.p);
    free(label);
    return rc;
}
