/* daemon/node.c: a node's set-up, timers, signals, status publishing and
 * graceful stop (node.h). The engine's events and actions are in
 * node_exec.c, thread-pool work in node_jobs.c, connections and the
 * overlay in node_net.c.
 *
 * Stop (SIGTERM/SIGINT, or an audit failure): stop accepting and dialling,
 * start no new job, wait for those in flight, then append a signed
 * checkpoint and the stop record, sync and close the audit log, close every
 * connection and handle; uv_run then returns. */
#include "node_impl.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "fusion_err.h"
#include "hex.h"
#include "key.h"
#include "keyring.h"
#include "log.h"
#include "manifest.h"
#include "probe.h"
#include "status.h"

uint64_t node_now(const struct node *n)
{
    return uv_now(n->loop);
}

uint64_t node_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- timers ---- */

static void tick_cb(uv_timer_t *h);

void node_arm(struct node *n)
{
    uint64_t t = UINT64_MAX, now = node_now(n), a;

    if (!n->handles_open)
        return;
    if (n->g != NULL && !n->stopping)   /* a stopping node no longer feeds the engine */
        t = gossip_next_deadline_ms(n->g);
    if (n->audit != NULL && (a = audit_next_deadline_ms(n->audit)) < t)
        t = a;
    if (t == UINT64_MAX)
        return;
    /* At least 1 ms: libuv before 1.46 runs a timer re-armed with 0 from its
     * own callback again in the same pass, forever, and never polls I/O or
     * the thread pool's completions (seen as a hung SIGTERM). */
    uv_timer_start(&n->tick, tick_cb, t > now ? t - now : 1, 0);
}

/* Group commit due: time it (fsync histogram). */
static void audit_tick(struct node *n)
{
    struct crypto_diag d = { 0 };
    uint64_t acked = audit_acked(n->audit), t0 = uv_hrtime();
    int rc = audit_poll(n->audit, node_now(n), &d);

    if (audit_acked(n->audit) != acked)
        metrics_fsync(&n->m, (double)(uv_hrtime() - t0) / 1e9);
    if (rc != 0) {
        log_error("AUDIT-FAILED", "group commit: %s (%s); stopping", d.msg, crypto_err_name(rc));
        node_stop(n, "audit write failed", 1);
    }
}

static size_t count_held(struct node *n, size_t *committed);

static void on_round(struct node *n, uint64_t round)
{
    size_t committed = 0, held = count_held(n, &committed), up = 0;

    for (size_t i = 0; i < n->n_peers; i++)
        up += n->peers[i]->authed;
    n->m.rounds = round;
    log_debug("ROUND", "n=%" PRIu64 " peers=%zu held=%zu committed=%zu", round, up, held, committed);
    node_overlay_round(n);
    node_publish(n, false);
}

static void tick_cb(uv_timer_t *h)
{
    struct node *n = h->data;
    struct gossip_event ev = { .type = GOSSIP_EV_TICK };
    uint64_t round;

    if (n->audit != NULL && audit_next_deadline_ms(n->audit) <= node_now(n))
        audit_tick(n);
    if (n->stopping || n->g == NULL) {
        node_arm(n);
        return;
    }
    node_feed(n, &ev);
    if ((round = gossip_round(n->g)) != n->last_round) {
        n->last_round = round;
        on_round(n, round);
    }
}

/* ---- status ---- */

static const char *state_name(enum gossip_ad_state s)
{
    switch (s) {
    case GOSSIP_AD_VERIFYING: return "verifying";
    case GOSSIP_AD_HELD: return "held";
    case GOSSIP_AD_COMMITTED: return "committed";
    default: return "partial";
    }
}

/* Adapter states from the engine; counts held (committed included). */
static size_t count_held(struct node *n, size_t *committed)
{
    size_t held = 0;

    *committed = 0;
    for (size_t i = 0; i < n->n_ads; i++) {
        enum gossip_ad_state s = gossip_adapter_state(n->g, n->ads[i]->id);
        n->ads[i]->info.state = state_name(s);
        held += s >= GOSSIP_AD_HELD;
        *committed += s == GOSSIP_AD_COMMITTED;
    }
    return held;
}

static void metrics_refresh(struct node *n)
{
    struct transport_stats ts = { 0 };
    size_t committed = 0;

    if (n->t != NULL) {
        transport_stats(n->t, &ts);
        n->m.bytes_in = ts.bytes_in;
        n->m.bytes_out = ts.bytes_out;
        n->m.frames_in = ts.frames_in;
        n->m.frames_out = ts.frames_out;
        n->m.conns_dropped = ts.dropped;
        n->m.bans = n->key_bans + ts.bans;
        n->m.strikes = n->strikes + ts.strikes;
    }
    n->m.peers = 0;
    for (size_t i = 0; i < n->n_peers; i++)
        n->m.peers += n->peers[i]->authed;
    n->m.members = n->g != NULL ? gossip_members(n->g, NULL, 0) : 0;
    n->m.adapters_held = n->g != NULL ? count_held(n, &committed) : 0;
    n->m.adapters_committed = committed;
    if (n->audit != NULL)
        n->m.audit_acked = audit_acked(n->audit);
}

static void publish_now(struct node *n)
{
    json_t *doc;
    char *status = NULL, *metrics = NULL;
    size_t mn = 0;

    n->last_pub_ms = node_now(n);
    metrics_refresh(n);
    if ((doc = status_build(n)) != NULL)
        status = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (status == NULL || metrics_render(&n->m, n->cfg->name != NULL ? n->cfg->name : "", &metrics, &mn) != 0 ||
        http_publish(n->http, status, strlen(status), metrics, mn) != 0)
        log_warn("STATUS-PUBLISH", "out of memory; the previous documents stay");
    free(status);
    free(metrics);
}

static void pub_cb(uv_timer_t *h)
{
    struct node *n = h->data;

    n->pub_pending = false;
    if (n->http != NULL)
        publish_now(n);
}

void node_publish(struct node *n, bool force)
{
    uint64_t now = node_now(n);

    if (n->http == NULL)
        return;
    if (force || now - n->last_pub_ms >= NODE_PUBLISH_MIN_MS) {
        publish_now(n);
        return;
    }
    if (!n->pub_pending && n->handles_open &&
        uv_timer_start(&n->pub_timer, pub_cb, NODE_PUBLISH_MIN_MS - (now - n->last_pub_ms), 0) == 0)
        n->pub_pending = true;
}

/* ---- stop ---- */

static void close_handles(struct node *n)
{
    if (!n->handles_open)
        return;
    n->handles_open = false;
    uv_close((uv_handle_t *)&n->tick, NULL);
    uv_close((uv_handle_t *)&n->pub_timer, NULL);
    uv_close((uv_handle_t *)&n->pump_timer, NULL);
    uv_close((uv_handle_t *)&n->stop_timer, NULL);
    uv_close((uv_handle_t *)&n->sig_term, NULL);
    uv_close((uv_handle_t *)&n->sig_int, NULL);
    uv_close((uv_handle_t *)&n->sig_hup, NULL);
}

/* Checkpoint + stop record, synced, closed. */
static void audit_finish(struct node *n)
{
    struct crypto_diag d = { 0 };
    uint64_t now = node_now(n);
    int rc = 0;

    if (n->audit == NULL)
        return;
    if (!audit_failed(n->audit) &&
        ((rc = audit_append_checkpoint(n->audit, node_wall_ms(), n->trust->key, now, NULL, &d)) != 0 ||
         (rc = audit_append_stop(n->audit, node_wall_ms(), n->self_hex, n->stop_reason, now, NULL, &d)) != 0 ||
         (rc = audit_sync(n->audit, &d)) != 0))
        log_error("AUDIT-FAILED", "at stop: %s (%s)", d.msg, crypto_err_name(rc));
    if (rc == 0)
        n->m.audit_records += 2;
    if (audit_close(n->audit, &d) != 0 && rc == 0) {
        log_error("AUDIT-FAILED", "close: %s", d.msg);
        rc = -1;
    }
    n->audit = NULL;
    if (rc != 0)
        n->exit_code = 1;
}

void node_maybe_finish(struct node *n)
{
    if (!n->stopping || n->finished || n->jobs_inflight > 0)
        return;
    n->finished = true;
    audit_finish(n);
    if (n->t != NULL)
        transport_shutdown(n->t);
    http_stop(n->http);
    n->http = NULL;
    close_handles(n);
    log_info("STOPPED", "reason=%s exit=%d", n->stop_reason, n->exit_code);
}

/* Jobs still running NODE_STOP_GRACE_MS after STOPPING (a merge of many
 * large adapters can take minutes on a loaded host, and a worker thread
 * cannot be interrupted): stop without them. What they would have given is
 * redone at the next start (a commit schedules its merge again; a gate or
 * hash runs again), and nothing of theirs is half visible (the merge
 * publishes by rename). The audit log is finished as in any stop; the loop
 * returns at once and node_abandoned tells the caller not to wait for the
 * worker threads. */
static void stop_grace_cb(uv_timer_t *h)
{
    struct node *n = h->data;
    size_t k;

    if (n->finished || n->jobs_inflight == 0)
        return;
    log_warn("STOP-ABANDON", "%" PRIu32 " job(s) still running %u ms after STOPPING%s: exiting "
             "without them (redone at the next start)", n->jobs_inflight, NODE_STOP_GRACE_MS,
             n->merge_running ? ", a merge among them" : "");
    n->abandoned = true;
    n->finished = true;
    if ((k = probe_kill_all()) > 0)
        log_info("STOP-ABANDON", "killed %zu running gate probe(s)", k);
    audit_finish(n);
    log_info("STOPPED", "reason=%s exit=%d", n->stop_reason, n->exit_code);
    uv_stop(n->loop);
}

bool node_abandoned(const struct node *n)
{
    return n != NULL && n->abandoned;
}

void node_stop(struct node *n, const char *reason, int exit_code)
{
    if (exit_code > n->exit_code)
        n->exit_code = exit_code;
    if (n->stopping)
        return;
    n->stopping = true;
    n->stop_reason = reason;
    n->state = "stopping";
    log_info("STOPPING", "reason=%s jobs_in_flight=%" PRIu32, reason, n->jobs_inflight);
    if (n->t != NULL)
        transport_stop_accepting(n->t);
    node_publish(n, true);
    node_maybe_finish(n);
    if (!n->finished)
        uv_timer_start(&n->stop_timer, stop_grace_cb, NODE_STOP_GRACE_MS, 0);
}

/* The node's copy of the engine's votes (counts in /status, signers of a
 * commit record): those of key `id` go, as they did in the engine. */
static void forget_votes(struct ad_rec *a, const char *id)
{
    size_t keep = 0;

    for (size_t i = 0; i < a->n_votes; i++) {
        if (strcmp(a->votes[i].by, id) != 0) {
            a->votes[keep++] = a->votes[i];
            continue;
        }
        a->votes[i].accept ? a->info.votes_accept-- : a->info.votes_reject--;
    }
    a->n_votes = keep;
}

/* Keys trusted by `was` and not by `now` (removed or revoked): the engine
 * forgets their votes, which would otherwise still count towards quorum. */
static void untrust_dropped(struct node *n, const struct keyring *was, const struct keyring *now)
{
    for (size_t i = 0; i < keyring_count(was); i++) {
        const struct key *k = keyring_at(was, i);
        size_t dropped;

        if (!keyring_is_trusted(was, key_id(k)) || keyring_is_trusted(now, key_id(k)))
            continue;
        dropped = n->g != NULL ? gossip_untrust(n->g, key_id_bin(k)) : 0;
        for (size_t j = 0; j < n->n_ads; j++)
            forget_votes(n->ads[j], key_id(k));
        log_info("RELOAD-UNTRUST", "key=%.16s %s: %zu vote(s) dropped", key_id(k),
                 keyring_is_revoked(now, key_id(k)) ? "revoked" : "removed", dropped);
    }
}

/* SIGHUP: a new trust object for new jobs; running jobs keep theirs. */
static void reload(struct node *n)
{
    struct jobs_trust *t = NULL;
    struct dmn_diag d = { 0 };
    int rc = jobs_trust_load(&t, n->cfg, &d);

    if (rc == 0 && strcmp(t->key_id, n->trust->key_id) != 0) {
        rc = dmn_fail(&d, DMN_E_KEY, "the node key changed (%.8s -> %.8s); restart to change it",
                      n->trust->key_id, t->key_id);
        jobs_trust_unref(t);
    }
    if (rc != 0) {
        log_warn("RELOAD-FAILED", "%s (%s); keeping the previous keyring and policy", d.msg,
                 dmn_err_name(rc));
        return;
    }
    untrust_dropped(n, n->trust->keyring, t->keyring);
    jobs_trust_unref(n->trust);
    n->trust = t;
    log_info("RELOAD", "keys=%zu trusted=%zu", keyring_count(t->keyring),
             keyring_trusted_count(t->keyring));
}

static void signal_cb(uv_signal_t *h, int signum)
{
    struct node *n = h->data;

    if (signum == SIGHUP)
        reload(n);
    else
        node_stop(n, signum == SIGTERM ? "SIGTERM" : "SIGINT", 0);
}

/* ---- set-up ---- */

static int audit_start(struct node *n, struct dmn_diag *d)
{
    struct audit_opts o = { .group_ms = n->cfg->group_ms };
    struct audit_open_info info;
    struct crypto_diag cd = { 0 };
    int rc;

    if ((size_t)snprintf(n->audit_path, sizeof(n->audit_path), "%s/audit.jsonl", n->cfg->data) >=
        sizeof(n->audit_path))
        return dmn_fail(d, DMN_E_ARG, "data dir path too long: %s", n->cfg->data);
    if ((rc = audit_open(&n->audit, n->audit_path, &o, &info, &cd)) != 0)
        return dmn_fail(d, DMN_E_IO, "%s: %s (%s)", n->audit_path, cd.msg, crypto_err_name(rc));
    if (info.torn_bytes > 0)
        log_warn("AUDIT-TORN-TAIL", "%s: %" PRIu64 " bytes of an interrupted append moved to %s",
                 n->audit_path, info.torn_bytes, info.torn_path);
    if ((rc = audit_append_start(n->audit, node_wall_ms(), n->self_hex, NODE_VERSION, node_now(n),
                                 NULL, &cd)) != 0)
        return dmn_fail(d, DMN_E_IO, "%s: start record: %s", n->audit_path, cd.msg);
    n->m.audit_records++;
    return 0;
}

/* Domain of a published dir: its plora.yml's, else publish_domain. */
static int publish_domain_of(const struct node *n, const char *dir, char *out, size_t cap,
                             struct dmn_diag *d)
{
    char path[4096];
    struct manifest *m = NULL;
    struct fusion_diag fd = { 0 };
    int rc;

    snprintf(path, sizeof(path), "%s/%s", dir, MANIFEST_FILENAME);
    if (access(path, F_OK) != 0) {
        snprintf(out, cap, "%s", n->cfg->publish_domain);
        return 0;
    }
    if ((rc = manifest_load(path, &m, &fd)) != 0)
        return dmn_fail(d, DMN_E_PUBLISH, "%s: %s (%s)", path, fd.msg, fusion_err_name(rc));
    snprintf(out, cap, "%s", m->domain != NULL && m->domain[0] != '\0' ? m->domain
                                                                       : n->cfg->publish_domain);
    manifest_free(m);
    return 0;
}

static int publish_all(struct node *n, struct dmn_diag *d)
{
    char domain[STORE_DOMAIN_MAX + 1], id[STORE_ID_HEX + 1];
    struct dmn_diag sd = { 0 };
    int rc;

    for (size_t i = 0; i < n->cfg->n_publish; i++) {
        const char *dir = n->cfg->publish[i];
        if ((rc = publish_domain_of(n, dir, domain, sizeof(domain), d)) != 0)
            return rc;
        if ((rc = store_import(store_dir(n->store), dir, domain, id, &sd)) != 0)
            return dmn_fail(d, DMN_E_PUBLISH, "--publish %s: %s (%s)", dir, sd.msg, dmn_err_name(rc));
        if ((rc = store_refresh(n->store, id, d)) != 0)
            return rc;
        log_info("PUBLISHED", "adapter=%s domain=%s from %s", id, domain, dir);
    }
    n->trim_due = n->cfg->n_publish > 0;   /* the imports' buffers: see after_cb */
    return 0;
}

static int engine_start(struct node *n, struct dmn_diag *d)
{
    const struct config *c = n->cfg;
    struct crypto_diag cd = { 0 };
    uint8_t *pk = NULL;
    size_t pk_len = 0;
    struct gossip_config gc = { .addr = n->listen, .round_ms = c->round_ms,
                                .chunk_size = c->chunk_size, .handshake_ms = c->handshake_ms,
                                .stall_ms = c->stall_ms, .quorum = c->quorum ? c->quorum : 1,
                                .push = c->push, .start_ms = node_now(n) };
    int rc;

    uv_update_time(n->loop);   /* set-up (imports, fsyncs) took a while: round 1 starts now */
    gc.start_ms = node_now(n);
    if (key_public_der(n->trust->key, &pk, &pk_len, &cd) != 0)
        return dmn_fail(d, DMN_E_KEY, "node key: %s", cd.msg);
    memcpy(gc.self, n->self, MSG_ID_LEN);
    gc.pk = pk;
    gc.pk_len = pk_len;
    rc = gossip_new(&n->g, &gc);
    free(pk);
    if (rc != 0)
        return dmn_fail(d, rc == PROTO_E_NOMEM ? DMN_E_NOMEM : DMN_E_CONFIG_FIELD,
                        "gossip engine: %s (listen %s, chunk_size %u, quorum %u)", proto_err_name(rc),
                        n->listen, c->chunk_size, c->quorum);
    return 0;
}

/* A partial holding all its bytes was interrupted between its last write
 * and its hash check: check it now (at start the loop may block), so that
 * the engine never takes unhashed bytes for a held adapter. A mismatch
 * deletes it (fetched again from 0). */
static void finish_partial(struct node *n, struct store_entry *e)
{
    struct dmn_diag d = { 0 };
    int rc;

    if (e->whole || e->stored < e->size)
        return;
    rc = store_verify(store_dir(n->store), e->id, &d);
    if (rc == 0)
        log_info("PARTIAL-VERIFIED", "adapter=%s was complete: now held", e->id);
    else
        log_warn("PARTIAL-DISCARDED", "adapter=%s: %s (%s)", e->id, d.msg, dmn_err_name(rc));
    if (store_refresh(n->store, e->id, &d) != 0 || rc != 0) {
        e->stored = 0;
        return;
    }
    e->whole = true;
}

/* Every store entry goes to the engine (whole: gated again; partial:
 * resumed from its stored bytes). */
static int feed_store(struct node *n, struct dmn_diag *d)
{
    struct store_entry *e = NULL;
    size_t cnt = 0;
    int rc;

    if ((rc = store_list(n->store, &e, &cnt, d)) != 0)
        return rc;
    for (size_t i = 0; i < cnt; i++)
        finish_partial(n, &e[i]);
    for (size_t i = 0; i < cnt; i++) {
        struct gossip_event ev = { .type = GOSSIP_EV_ADAPTER, .domain = e[i].domain,
                                   .size = e[i].size, .stored = e[i].whole ? e[i].size : e[i].stored };
        size_t got = 0;
        struct ad_rec *a;
        if (hex_decode(e[i].id, STORE_ID_HEX, ev.id, sizeof(ev.id), &got, NULL) != 0 ||
            (a = node_ad(n, ev.id, true)) == NULL)
            continue;
        snprintf(a->info.domain, sizeof(a->info.domain), "%s", e[i].domain);
        a->info.size = e[i].size;
        a->info.stored = ev.stored;
        node_feed(n, &ev);
    }
    free(e);
    return 0;
}

static int write_ready(struct node *n, struct dmn_diag *d)
{
    const char *path = n->cfg->ready_file;
    char tmp[4200];
    json_t *j;
    int rc = 0;

    if (path == NULL || path[0] == '\0')
        return 0;
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    j = json_pack("{s:I, s:s, s:s, s:s}", "pid", (json_int_t)getpid(), "id", n->self_hex, "listen",
                  n->listen, "http", n->http != NULL ? http_addr(n->http) : "");
    if (j == NULL || json_dump_file(j, tmp, JSON_COMPACT) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        rc = dmn_fail(d, DMN_E_IO, "ready file %s could not be written", path);
    }
    json_decref(j);
    return rc;
}

static int handles_start(struct node *n)
{
    uv_timer_t *timers[] = { &n->tick, &n->pub_timer, &n->pump_timer, &n->stop_timer };
    struct { uv_signal_t *h; int sig; } sigs[] = { { &n->sig_term, SIGTERM }, { &n->sig_int, SIGINT },
                                                   { &n->sig_hup, SIGHUP } };
    int rc = 0;

    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        uv_timer_init(n->loop, timers[i]);
        timers[i]->data = n;
    }
    for (size_t i = 0; i < 3; i++) {
        uv_signal_init(n->loop, sigs[i].h);
        sigs[i].h->data = n;
    }
    n->handles_open = true;
    for (size_t i = 0; i < 3 && rc == 0; i++)
        rc = uv_signal_start(sigs[i].h, signal_cb, sigs[i].sig);
    return rc == 0 ? 0 : DMN_E_LOOP;
}

static int node_setup(struct node *n, struct dmn_diag *d)
{
    const struct config *c = n->cfg;
    int rc;

    if ((rc = jobs_trust_load(&n->trust, c, d)) != 0)
        return rc;
    memcpy(n->self, key_id_bin(n->trust->key), MSG_ID_LEN);
    snprintf(n->self_hex, sizeof(n->self_hex), "%s", key_id(n->trust->key));
    if ((rc = handles_start(n)) != 0)
        return dmn_fail(d, rc, "libuv timers or signal handlers could not start");
    /* The audit log's flock comes first: a second daemon on the same data
     * dir stops there, before store_open clears temp files it may own. */
    if (mkdir(c->data, 0700) != 0 && errno != EEXIST)
        return dmn_fail(d, DMN_E_IO, "data dir %s: %s", c->data, strerror(errno));
    if ((rc = audit_start(n, d)) != 0 || (rc = store_open(&n->store, c->data, d)) != 0 ||
        (rc = publish_all(n, d)) != 0)
        return rc;
    if ((rc = node_transport_start(n, d)) != 0 || (rc = engine_start(n, d)) != 0)
        return rc;
    if (c->http != NULL && c->http[0] != '\0' && (rc = http_start(&n->http, c->http, d)) != 0)
        return rc;
    if ((rc = feed_store(n, d)) != 0 || (rc = write_ready(n, d)) != 0)
        return rc;
    node_dial_joins(n);
    node_overlay_rebuild(n);
    n->state = "running";
    log_info("READY", "id=%s listen=%s http=%s name=%s", n->self_hex, n->listen,
             n->http != NULL ? http_addr(n->http) : "-", c->name != NULL ? c->name : "");
    node_publish(n, true);
    node_arm(n);
    return 0;
}

int node_new(struct node **out, uv_loop_t *loop, const struct config *c, struct dmn_diag *d)
{
    struct node *n = calloc(1, sizeof(*n));
    int rc;

    *out = NULL;
    if (n == NULL)
        return dmn_fail(d, DMN_E_NOMEM, "node");
    n->loop = loop;
    n->cfg = c;
    n->state = "starting";
    n->stop_reason = "";
    n->start_ms = uv_now(loop);
    n->ov.self = SIZE_MAX;
    if ((rc = node_setup(n, d)) != 0) {
        node_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

int node_run(struct node *n)
{
    int rc = uv_run(n->loop, UV_RUN_DEFAULT);

    if (rc != 0 && !n->finished && !n->abandoned)
        log_error("LOOP", "uv_run returned with handles still active");
    return n->exit_code;
}

static void ads_free(struct node *n)
{
    for (size_t i = 0; i < n->n_ads; i++) {
        free(n->ads[i]->votes);
        free(n->ads[i]);
    }
    free(n->ads);
    for (size_t i = 0; i < n->n_merged; i++)
        free(n->merged[i].inputs);
    free(n->merged);
}

void node_free(struct node *n)
{
    if (n == NULL)
        return;
    n->stopping = true;   /* workers still queued drop their answers */
    n->finished = true;
    close_handles(n);
    if (n->t != NULL)
        transport_shutdown(n->t);
    uv_run(n->loop, UV_RUN_DEFAULT);   /* let libuv release every handle and job */
    transport_free(n->t);
    http_stop(n->http);
    if (n->audit != NULL)
        audit_close(n->audit, NULL);
    gossip_free(n->g);
    gossip_actions_free(&n->act);
    store_free(n->store);
    jobs_trust_unref(n->trust);
    overlay_clear(&n->ov);
    node_peers_free(n);
    ads_free(n);
    for (size_t i = 0; i < n->n_defer; i++) {
        free(n->defer[i].body);
        free(n->defer[i].sig);
    }
    free(n->defer);
    free(n->dials);
    free(n->gone);
    free(n->dirty_bases);
    free(n);
}

/* ---- read access (status.c) ---- */

void node_view(const struct node *n, struct node_view *v)
{
    memset(v, 0, sizeof(*v));
    v->name = n->cfg->name != NULL ? n->cfg->name : "";
    v->id = n->self_hex;
    v->listen = n->listen;
    v->http = n->http != NULL ? http_addr(n->http) : "";
    v->state = n->state;
    v->topology = config_topology_name(n->cfg->topology);
    v->audit_path = n->audit_path;
    v->pid = (long long)getpid();
    v->uptime_ms = node_now(n) - n->start_ms;
    v->round = n->g != NULL ? gossip_round(n->g) : 0;
    v->members = n->m.members;
    v->seed = n->cfg->seed;
    v->merges = n->m.merges;
    v->degree = (uint32_t)n->ov.n_nbrs;
    v->n_neighbours = n->ov.n_nbrs;
    v->neighbours = (const uint8_t (*)[32])n->ov.nbrs;
    v->metrics = &n->m;
    v->audit_records = n->m.audit_records;
    v->audit_acked = n->m.audit_acked;
    memset(v->audit_head, '0', 64);
    if (n->audit != NULL)
        audit_head(n->audit, v->audit_head);
    v->strikes = n->m.strikes;
    v->bans = n->m.bans;
}

size_t node_n_peers(const struct node *n)
{
    size_t k = 0;

    for (size_t i = 0; i < n->n_peers; i++)
        k += n->peers[i]->authed;
    return k;
}

const struct node_peer_info *node_peer(const struct node *n, size_t i)
{
    for (size_t k = 0; k < n->n_peers; k++)
        if (n->peers[k]->authed && i-- == 0)
            return &n->peers[k]->info;
    return NULL;
}

size_t node_n_adapters(const struct node *n)
{
    return n->n_ads;
}

const struct node_adapter_info *node_adapter(const struct node *n, size_t i)
{
    return i < n->n_ads ? &n->ads[i]->info : NULL;
}

size_t node_n_merged(const struct node *n)
{
    return n->n_merged;
}

const struct node_merge_info *node_merged(const struct node *n, size_t i)
{
    return i < n->n_merged ? &n->merged[i] : NULL;
}
