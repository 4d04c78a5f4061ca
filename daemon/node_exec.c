/* daemon/node_exec.c: feeding the gossip engine and executing its actions
 * (the real-I/O counterpart of daemon/sim.c's execute). Runs on the loop
 * thread only. An event that arrives while actions execute (a transport
 * callback fired from inside a transport call) is queued and fed right
 * after, so gossip_step is never re-entered. */
#include "node_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "log.h"
#include "msg.h"
#include "proto_err.h"

static void id_hex(const uint8_t id[MSG_ID_LEN], char out[65])
{
    hex_encode(id, MSG_ID_LEN, out);
}

/* ---- adapter records ---- */

static int ad_cmp(const uint8_t *id, const struct ad_rec *a)
{
    return memcmp(id, a->id, MSG_ID_LEN);
}

static struct ad_rec *ad_new(const uint8_t id[MSG_ID_LEN])
{
    struct ad_rec *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return NULL;
    memcpy(a->id, id, MSG_ID_LEN);
    id_hex(id, a->info.id);
    a->info.state = "partial";
    a->info.received_round = -1;
    a->info.transfer_ms = -1;
    return a;
}

/* The record of adapter id (binary search on the sorted table), created
 * when asked; NULL if absent or out of memory. */
struct ad_rec *node_ad(struct node *n, const uint8_t id[MSG_ID_LEN], bool create)
{
    size_t lo = 0, hi = n->n_ads;
    struct ad_rec **v, *a;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = ad_cmp(id, n->ads[mid]);
        if (c == 0)
            return n->ads[mid];
        if (c > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!create || (v = realloc(n->ads, (n->n_ads + 1) * sizeof(*v))) == NULL)
        return NULL;
    n->ads = v;
    if ((a = ad_new(id)) == NULL)
        return NULL;
    memmove(&v[lo + 1], &v[lo], (n->n_ads - lo) * sizeof(*v));
    v[lo] = a;
    n->n_ads++;
    return a;
}

/* ---- audit ---- */

/* After an append: a failure stops the node (exit 1); every
 * checkpoint_every records a signed checkpoint follows. */
void node_audit_done(struct node *n, int rc, const struct crypto_diag *cd, const char *what)
{
    struct crypto_diag d = { 0 };

    if (rc != 0) {
        log_error("AUDIT-FAILED", "%s record: %s (%s); stopping", what, cd->msg, crypto_err_name(rc));
        node_stop(n, "audit write failed", 1);
        return;
    }
    n->m.audit_records++;
    if (n->cfg->checkpoint_every == 0 || ++n->since_checkpoint < n->cfg->checkpoint_every)
        return;
    n->since_checkpoint = 0;
    rc = audit_append_checkpoint(n->audit, node_wall_ms(), n->trust->key, node_now(n), NULL, &d);
    if (rc != 0) {
        log_error("AUDIT-FAILED", "checkpoint record: %s (%s); stopping", d.msg, crypto_err_name(rc));
        node_stop(n, "audit write failed", 1);
        return;
    }
    n->m.audit_records++;
}

void node_audit_peer(struct node *n, const char *key_hex, const char *addr, const char *event,
                     const char *reason)
{
    struct audit_peer p = { .peer = key_hex, .addr = addr, .event = event, .reason = reason };
    struct crypto_diag d = { 0 };
    int rc;

    if (n->audit == NULL || audit_failed(n->audit))
        return;
    rc = audit_append_peer(n->audit, node_wall_ms(), &p, node_now(n), NULL, &d);
    node_audit_done(n, rc, &d, "peer");
}

static void audit_gate(struct node *n, struct ad_rec *a, bool accept)
{
    struct audit_gate g = { .adapter = a->info.id, .domain = a->info.domain, .accept = accept,
                            .reasons = a->info.reasons, .n_reasons = a->info.n_reasons };
    struct crypto_diag d = { 0 };

    node_audit_done(n, audit_append_gate(n->audit, node_wall_ms(), &g, node_now(n), NULL, &d), &d,
                    "gate");
}

/* A kept vote: its record, and the (key, verdict) pair for the counts and
 * the commit's signer list. */
static void audit_vote(struct node *n, struct ad_rec *a, const struct gossip_action *x)
{
    struct crypto_diag d = { 0 };
    struct vote_seen *v;

    if ((v = realloc(a->votes, (a->n_votes + 1) * sizeof(*v))) != NULL) {
        a->votes = v;
        id_hex(x->by, v[a->n_votes].by);
        v[a->n_votes++].accept = x->accept;
        x->accept ? a->info.votes_accept++ : a->info.votes_reject++;
    }
    if (n->cur_vote == NULL || n->cur_vote->vote == NULL) {
        log_error("AUDIT-VOTE-MISSING", "adapter=%s: vote kept without its parsed body", a->info.id);
        return;
    }
    node_audit_done(n, audit_append_vote(n->audit, node_wall_ms(), n->cur_vote->vote, node_now(n),
                                         NULL, &d), &d, "vote");
}

/* Equivocation: both votes are already in the log as vote records; the
 * finding itself is a strike against the signer's key. */
static void audit_equivocation(struct node *n, struct ad_rec *a, const struct gossip_action *x)
{
    char by[65], reason[160];

    id_hex(x->by, by);
    snprintf(reason, sizeof(reason), "equivocation: signed accept and reject on adapter %s",
             a->info.id);
    log_warn("VOTE-EQUIVOCATION", "signer=%s adapter=%s signed both verdicts", by, a->info.id);
    n->strikes++;
    node_audit_peer(n, by, "", node_key_strike(n, x->by, PROTO_E_STATE) ? "ban" : "strike", reason);
}

/* Distinct keys that accepted without also rejecting (the engine's count). */
static size_t signers_of(const struct ad_rec *a, const char **out)
{
    size_t k = 0;

    for (size_t i = 0; i < a->n_votes; i++) {
        bool rejects = false, dup = false;
        if (!a->votes[i].accept)
            continue;
        for (size_t j = 0; j < a->n_votes; j++)
            rejects = rejects || (!a->votes[j].accept && strcmp(a->votes[j].by, a->votes[i].by) == 0);
        for (size_t j = 0; j < k; j++)
            dup = dup || strcmp(out[j], a->votes[i].by) == 0;
        if (!rejects && !dup)
            out[k++] = a->votes[i].by;
    }
    return k;
}

static void audit_commit(struct node *n, struct ad_rec *a)
{
    const char **signers = calloc(a->n_votes + 1, sizeof(*signers));
    struct audit_commit c = { .adapter = a->info.id, .domain = a->info.domain,
                              .quorum = n->cfg->quorum ? n->cfg->quorum : 1 };
    struct crypto_diag d = { 0 };

    if (signers == NULL) {
        log_error("NOMEM", "commit record of %s", a->info.id);
        return;
    }
    c.signers = signers;
    c.n_signers = signers_of(a, signers);
    node_audit_done(n, audit_append_commit(n->audit, node_wall_ms(), &c, node_now(n), NULL, &d), &d,
                    "commit");
    free(signers);
}

static void exec_audit(struct node *n, const struct gossip_action *x)
{
    struct ad_rec *a = node_ad(n, x->id, true);

    if (a == NULL || n->audit == NULL || audit_failed(n->audit))
        return;
    switch (x->audit) {
    case GOSSIP_AUDIT_GATE: audit_gate(n, a, x->accept); break;
    case GOSSIP_AUDIT_VOTE: audit_vote(n, a, x); break;
    case GOSSIP_AUDIT_EQUIVOCATION: audit_equivocation(n, a, x); break;
    case GOSSIP_AUDIT_COMMIT: audit_commit(n, a); break;
    }
}

/* ---- actions ---- */

static void exec_send(struct node *n, struct gossip_action *x)
{
    uint8_t *f = (uint8_t *)x->frame.p;
    int rc;

    x->frame.p = NULL;   /* the transport owns it now, whatever happens */
    rc = transport_send(n->t, x->conn, f, x->frame.n);
    if (rc == DMN_E_RANGE)
        log_warn("SEND-QUEUE-FULL", "conn=%" PRIu32 ": frame of %zu bytes dropped", x->conn, x->frame.n);
}

static void exec_close(struct node *n, const struct gossip_action *x)
{
    struct peer *p = node_peer_find(n, x->conn);

    if (x->code != 0 && p != NULL)
        log_info("PEER-CLOSE", "peer=%.8s addr=%s code=%s", p->authed ? p->info.id : "?",
                 p->info.addr, proto_err_name(x->code));
    transport_close(n->t, x->conn);
}

static void exec_strike(struct node *n, const struct gossip_action *x)
{
    static const uint8_t zero[MSG_ID_LEN] = { 0 };
    struct peer *p = node_peer_find(n, x->conn);
    const char *addr = p != NULL ? p->info.addr : "";
    char by[65];
    bool banned;

    if (x->code == PROTO_E_HASH && n->hash_strike_local) {
        log_info("STRIKE-SKIPPED", "conn=%" PRIu32 ": the failed adapter write was ours", x->conn);
        return;
    }
    id_hex(x->by, by);
    if (memcmp(x->by, zero, MSG_ID_LEN) == 0) {   /* before HELLO: only the address is known */
        banned = p != NULL && !p->info.outbound && transport_strike(n->t, x->conn);
    } else {
        n->strikes++;   /* the transport counts its own address strikes */
        banned = node_key_strike(n, x->by, x->code);
    }
    log_warn("PEER-STRIKE", "peer=%.8s addr=%s code=%s%s", by, addr, proto_err_name(x->code),
             banned ? " (banned)" : "");
    node_audit_peer(n, by, addr, banned ? "ban" : "strike", proto_err_name(x->code));
}

static void exec_sign_auth(struct node *n, const struct gossip_action *x)
{
    struct msg bye = { .type = MSG_BYE };
    char by[65];
    uint8_t *f = NULL;
    size_t fn = 0;

    if (!node_key_banned(n, x->by)) {
        node_job_sign_auth(n, x);
        return;
    }
    id_hex(x->by, by);
    log_info("PEER-BANNED", "conn=%" PRIu32 " peer=%.8s: its key is banned; closing", x->conn, by);
    bye.u.bye.code = PROTO_E_AUTH;
    snprintf(bye.u.bye.text, sizeof(bye.u.bye.text), "banned");
    if (msg_encode(&bye, &f, &fn, NULL) == 0)
        transport_send(n->t, x->conn, f, fn);
    transport_close(n->t, x->conn);
}

static void exec_store_manifest(struct node *n, const struct gossip_action *x)
{
    struct ad_rec *a = node_ad(n, x->id, true);
    struct peer *p = node_peer_find(n, x->conn);
    struct dmn_diag d = { 0 };
    char safe[80];
    int rc;

    if (a == NULL)
        return;
    a->local_fail = false;
    a->first_byte_ms = node_now(n);
    snprintf(a->info.domain, sizeof(a->info.domain), "%s", x->domain);
    a->info.size = x->size;
    rc = store_begin(n->store, a->info.id, x->domain, x->size, x->data.p, x->data.n, x->data2.p,
                     x->data2.n, &d);
    if (rc == 0) {
        a->info.stored = store_resume_offset(n->store, a->info.id);
        return;
    }
    a->local_fail = true;
    if (rc == DMN_E_NAME) {
        n->bad_names++;
        log_warn("BAD-NAME", "peer=%.8s field=domain value=%s", p != NULL ? p->info.id : "?",
                 log_sanitize(safe, sizeof(safe), x->domain, strlen(x->domain), 64));
        return;
    }
    log_warn("STORE-BEGIN-REFUSED", "peer=%.8s id=%s: %s (%s)", p != NULL ? p->info.id : "?",
             a->info.id, d.msg, dmn_err_name(rc));
}

static void exec_store_chunk(struct node *n, const struct gossip_action *x)
{
    struct ad_rec *a = node_ad(n, x->id, true);
    struct dmn_diag d = { 0 };
    int rc;

    if (a == NULL || a->local_fail)
        return;   /* refused earlier: the verify answer discards it */
    if ((rc = store_write(n->store, a->info.id, x->off, x->data.p, x->data.n, &d)) != 0) {
        a->local_fail = true;
        n->m.transfers_failed++;
        log_warn("STORE-WRITE-FAILED", "id=%s off=%" PRIu64 ": %s (%s)", a->info.id, x->off, d.msg,
                 dmn_err_name(rc));
        return;
    }
    a->info.stored = x->off + x->data.n;
}

/* A locally failed transfer is answered at once (not ok: discard, fetch
 * again later); its hash strike is suppressed in exec_strike. */
static void exec_verify_adapter(struct node *n, const struct gossip_action *x)
{
    struct ad_rec *a = node_ad(n, x->id, true);
    struct gossip_event ev = { .type = GOSSIP_EV_ADAPTER_VERIFIED, .ok = false };

    if (a != NULL && !a->local_fail) {
        a->info.state = "verifying";
        node_job_verify_adapter(n, x);
        return;
    }
    memcpy(ev.id, x->id, MSG_ID_LEN);
    node_feed(n, &ev);   /* queued: we are inside a step */
}

static void exec_discard(struct node *n, const struct gossip_action *x)
{
    struct ad_rec *a = node_ad(n, x->id, false);
    struct dmn_diag d = { 0 };
    int rc;

    if (a == NULL)
        return;
    log_info("PARTIAL-DISCARDED", "id=%s: %" PRIu64 " bytes dropped (bad hash or a stalled source)",
             a->info.id, a->info.stored);
    if ((rc = store_discard(n->store, a->info.id, &d)) != 0)
        log_warn("STORE-DISCARD-FAILED", "id=%s: %s", a->info.id, d.msg);
    if (a->local_fail)
        n->hash_strike_local = true;
    a->local_fail = false;
    a->info.stored = 0;
    a->info.state = "partial";
}

static void exec_commit(struct node *n, const struct gossip_action *x)
{
    struct ad_rec *a = node_ad(n, x->id, true);

    if (a == NULL)
        return;
    a->committed = true;
    a->info.state = "committed";
    log_info("COMMIT", "adapter=%s domain=%s accept_keys=%" PRIu32, a->info.id, a->info.domain,
             x->count);
    node_merge_commit(n, a);
    node_publish(n, false);
}

static void exec_one(struct node *n, struct gossip_action *x)
{
    switch (x->type) {
    case GOSSIP_ACT_SEND: exec_send(n, x); break;
    case GOSSIP_ACT_CLOSE: exec_close(n, x); break;
    case GOSSIP_ACT_STRIKE: exec_strike(n, x); break;
    case GOSSIP_ACT_AUTHENTICATED:
        transport_set_authed(n->t, x->conn);
        node_peer_authed(n, x->conn, x->by);
        break;
    case GOSSIP_ACT_SIGN_AUTH: exec_sign_auth(n, x); break;
    case GOSSIP_ACT_VERIFY_AUTH: node_job_verify_auth(n, x); break;
    case GOSSIP_ACT_SEND_ADAPTER: node_send_adapter(n, x); break;
    case GOSSIP_ACT_STORE_MANIFEST: exec_store_manifest(n, x); break;
    case GOSSIP_ACT_STORE_CHUNK: exec_store_chunk(n, x); break;
    case GOSSIP_ACT_VERIFY_ADAPTER: exec_verify_adapter(n, x); break;
    case GOSSIP_ACT_DISCARD: exec_discard(n, x); break;
    case GOSSIP_ACT_RUN_GATE: node_job_gate(n, x); break;
    case GOSSIP_ACT_SIGN_VOTE: node_job_sign_vote(n, x); break;
    case GOSSIP_ACT_VERIFY_VOTE: node_job_verify_vote(n, x); break;
    case GOSSIP_ACT_COMMIT: exec_commit(n, x); break;
    case GOSSIP_ACT_AUDIT: exec_audit(n, x); break;
    case GOSSIP_ACT_MEMBERS: node_overlay_rebuild(n); break;
    }
}

/* ---- stepping ---- */

static void defer_event(struct node *n, const struct gossip_event *ev)
{
    struct deferred *q;

    if (n->n_defer == n->cap_defer) {
        size_t cap = n->cap_defer ? n->cap_defer * 2 : 8;
        if ((q = realloc(n->defer, cap * sizeof(*q))) == NULL) {
            log_error("NOMEM", "engine event queue; event %d dropped", (int)ev->type);
            return;
        }
        n->defer = q;
        n->cap_defer = cap;
    }
    q = &n->defer[n->n_defer];
    q->ev = *ev;
    q->body = q->sig = NULL;
    if (ev->body.n > 0) {
        if ((q->body = malloc(ev->body.n)) == NULL) {
            log_error("NOMEM", "engine event queue; frame dropped");
            return;
        }
        memcpy(q->body, ev->body.p, ev->body.n);
        q->ev.body.p = q->body;
    }
    if (ev->sig.n > 0) {   /* worker answers are never deferred; keep it safe anyway */
        if ((q->sig = malloc(ev->sig.n)) == NULL) {
            free(q->body);
            log_error("NOMEM", "engine event queue; event dropped");
            return;
        }
        memcpy(q->sig, ev->sig.p, ev->sig.n);
        q->ev.sig.p = q->sig;
    }
    q->ev.domain = NULL;   /* ADAPTER/MEMBER events are never deferred */
    q->ev.addr = NULL;
    n->n_defer++;
}

static void step_once(struct node *n, struct gossip_event *ev)
{
    int rc;

    ev->now_ms = node_now(n);
    n->in_step = true;
    n->hash_strike_local = false;
    rc = gossip_step(n->g, ev, &n->act);
    if (rc < 0)
        log_error("ENGINE", "event %d: %s", (int)ev->type, proto_err_name(rc));
    for (size_t i = 0; i < n->act.n; i++)
        exec_one(n, &n->act.v[i]);
    gossip_actions_reset(&n->act);
    n->in_step = false;
}

void node_feed(struct node *n, struct gossip_event *ev)
{
    if (n->g == NULL)
        return;
    if (n->in_step) {
        defer_event(n, ev);
        return;
    }
    step_once(n, ev);
    while (n->n_defer > 0) {
        struct deferred q = n->defer[0];
        memmove(n->defer, n->defer + 1, --n->n_defer * sizeof(*n->defer));
        step_once(n, &q.ev);
        free(q.body);
        free(q.sig);
    }
    node_merge_kick(n);
    node_arm(n);
}
