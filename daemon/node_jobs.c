/* daemon/node_jobs.c: the engine's heavy actions, run in libuv's thread
 * pool (daemon/jobs.h), answered to the engine on the loop thread.
 *
 * A job copies everything it reads (the engine's borrowed pointers die at
 * the next step) and holds a reference on the trust object it started
 * with, so SIGHUP may swap trust meanwhile. Its answer is dropped when the
 * node is stopping; a stop waits for every job in flight
 * (node_maybe_finish). Merges run one at a time; commits arriving during
 * a merge mark their base model dirty and are merged next. */
#include "node_impl.h"

#include <malloc.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gate.h"
#include "hex.h"
#include "log.h"
#include "msg.h"

enum job_kind { J_SIGN_AUTH, J_VERIFY_AUTH, J_VERIFY_ADAPTER, J_GATE, J_SIGN_VOTE, J_VERIFY_VOTE,
                J_MERGE };

struct job {
    uv_work_t w;
    struct node *n;
    enum job_kind kind;
    struct jobs_trust *trust;
    char *data_dir;
    uint32_t conn;
    msg_id id, by, from;             /* from: VERIFY_VOTE's relaying peer */
    char id_hex[65], by_hex[65], domain[MSG_DOMAIN_MAX + 1];
    uint8_t auth[MSG_AUTH_INPUT_LEN];
    uint8_t *in1, *in2;              /* pk + sig (VERIFY_AUTH), body + sig (VERIFY_VOTE) */
    size_t in1_n, in2_n;
    bool accept;
    int rc;
    struct dmn_diag d;
    uint8_t *sig;                    /* SIGN_AUTH result */
    size_t sig_len;
    struct jobs_gate_result gate;    /* GATE result; SIGN_VOTE input */
    char base[256];                  /* GATE: base model; MERGE: the group */
    struct jobs_vote vote;           /* SIGN_VOTE / VERIFY_VOTE result */
    char **ids;                      /* MERGE inputs */
    size_t n_ids;
    struct jobs_merge_opts mo;
    struct jobs_merge_result merge;
};

static void job_free(struct job *j)
{
    if (j == NULL)
        return;
    jobs_trust_unref(j->trust);
    free(j->data_dir);
    free(j->in1);
    free(j->in2);
    free(j->sig);
    jobs_vote_clear(&j->vote);
    for (size_t i = 0; i < j->n_ids; i++)
        free(j->ids[i]);
    free(j->ids);
    jobs_merge_result_clear(&j->merge);
    free(j);
}

static struct job *job_new(struct node *n, enum job_kind kind, const struct gossip_action *x)
{
    struct job *j;

    if (n->stopping || (j = calloc(1, sizeof(*j))) == NULL)
        return NULL;
    j->n = n;
    j->kind = kind;
    j->w.data = j;
    if ((j->data_dir = strdup(store_dir(n->store))) == NULL) {
        free(j);
        return NULL;
    }
    j->trust = jobs_trust_ref(n->trust);
    if (x != NULL) {
        j->conn = x->conn;
        memcpy(j->id, x->id, MSG_ID_LEN);
        memcpy(j->by, x->by, MSG_ID_LEN);
        memcpy(j->from, x->from, MSG_ID_LEN);
        hex_encode(x->id, MSG_ID_LEN, j->id_hex);
        hex_encode(x->by, MSG_ID_LEN, j->by_hex);
        snprintf(j->domain, sizeof(j->domain), "%s", x->domain);
        j->accept = x->accept;
    }
    return j;
}

static uint8_t *dup_bytes(const struct msg_bytes *b)
{
    uint8_t *p = malloc(b->n ? b->n : 1);

    if (p != NULL && b->n > 0)
        memcpy(p, b->p, b->n);
    return p;
}

/* ---- thread-pool side: only jobs.h and the job's own copies ---- */

static void merge_work(struct job *j)
{
    j->rc = jobs_merge(j->data_dir, (const char *const *)j->ids, j->n_ids, &j->mo, &j->merge, &j->d);
}

static void work_cb(uv_work_t *w)
{
    struct job *j = w->data;

    switch (j->kind) {
    case J_SIGN_AUTH:
        j->rc = jobs_sign_auth(j->trust, j->auth, sizeof(j->auth), &j->sig, &j->sig_len, &j->d);
        break;
    case J_VERIFY_AUTH:
        j->rc = jobs_verify_auth(j->trust, j->by, j->in1, j->in1_n, j->auth, sizeof(j->auth), j->in2,
                                 j->in2_n, &j->d);
        break;
    case J_VERIFY_ADAPTER: j->rc = jobs_verify_adapter(j->data_dir, j->id_hex, &j->d); break;
    case J_GATE:
        j->rc = jobs_gate(j->trust, j->data_dir, j->id_hex, &j->gate, &j->d);
        if (jobs_base_model(j->data_dir, j->id_hex, j->base, sizeof(j->base), NULL) != 0)
            j->base[0] = '\0';
        break;
    case J_SIGN_VOTE:
        j->rc = jobs_sign_vote(j->trust, j->id_hex, j->domain, j->accept, &j->gate, &j->vote, &j->d);
        break;
    case J_VERIFY_VOTE:
        j->rc = jobs_verify_vote(j->trust, j->id_hex, j->by_hex, j->in1, j->in1_n, j->in2, j->in2_n,
                                 &j->vote, &j->d);
        break;
    case J_MERGE: merge_work(j); break;
    }
}

/* ---- loop side: answers ---- */

static void answer_auth(struct node *n, struct job *j)
{
    struct gossip_event ev = { .conn = j->conn };
    struct peer *p = node_peer_find(n, j->conn);

    if (j->kind == J_SIGN_AUTH) {
        if (j->rc != 0) {
            log_error("AUTH-SIGN-FAILED", "conn=%" PRIu32 ": %s", j->conn, j->d.msg);
            transport_close(n->t, j->conn);
            return;
        }
        ev.type = GOSSIP_EV_AUTH_SIGNED;
        ev.sig = (struct msg_bytes){ j->sig, j->sig_len };
    } else {
        if (p != NULL)
            transport_resume(n->t, j->conn);
        if (j->rc != 0)
            log_warn("PEER-AUTH-FAILED", "peer=%.8s addr=%s: %s", j->by_hex,
                     p != NULL ? p->info.addr : "?", j->d.msg);
        ev.type = GOSSIP_EV_AUTH_VERIFIED;
        ev.ok = j->rc == 0;
    }
    node_feed(n, &ev);   /* the engine ignores answers for connections gone meanwhile */
}

static void answer_verify_adapter(struct node *n, struct job *j)
{
    struct gossip_event ev = { .type = GOSSIP_EV_ADAPTER_VERIFIED, .ok = j->rc == 0 };
    struct ad_rec *a = node_ad(n, j->id, true);
    struct dmn_diag d = { 0 };

    memcpy(ev.id, j->id, MSG_ID_LEN);
    if (store_refresh(n->store, j->id_hex, &d) != 0)
        log_warn("STORE-REFRESH", "id=%s: %s", j->id_hex, d.msg);
    if (a != NULL && j->rc == 0) {
        a->info.state = "held";
        a->info.stored = a->info.size;
        a->info.received_round = (int64_t)gossip_round(n->g);
        a->info.transfer_ms = (int64_t)(node_now(n) - a->first_byte_ms);
        n->m.transfers_done++;
        log_info("ADAPTER-HELD", "adapter=%s domain=%s size=%" PRIu64 " transfer_ms=%" PRId64,
                 j->id_hex, a->info.domain, a->info.size, a->info.transfer_ms);
    } else {
        n->m.transfers_failed++;
        log_warn("ADAPTER-VERIFY-FAILED", "adapter=%s: %s (%s)", j->id_hex, j->d.msg,
                 dmn_err_name(j->rc));
        if (a != NULL) {
            a->info.state = "partial";
            a->info.stored = 0;
        }
    }
    node_feed(n, &ev);
    node_publish(n, false);
}

/* Keep the gate's verdict (reasons for the audit record and /status). */
static void answer_gate(struct node *n, struct job *j)
{
    struct gossip_event ev = { .type = GOSSIP_EV_GATE_VERDICT };
    struct ad_rec *a = node_ad(n, j->id, true);
    bool accept = j->rc == 0 && j->gate.accept;

    if (j->rc != 0)
        log_error("GATE-FAILED", "adapter=%s: %s; counted as reject", j->id_hex, j->d.msg);
    if (a != NULL) {
        a->gate = j->gate;
        a->gate.accept = accept;
        a->gate_done = true;
        snprintf(a->base, sizeof(a->base), "%s", j->base);
        a->info.gate = accept ? 1 : -1;
        a->info.n_reasons = a->gate.n_reasons < NODE_REASONS_MAX ? a->gate.n_reasons : NODE_REASONS_MAX;
        for (size_t i = 0; i < a->info.n_reasons; i++)
            a->info.reasons[i] = a->gate.reasons[i];
    }
    accept ? n->m.gate_accept++ : n->m.gate_reject++;
    for (size_t i = 0; i < j->gate.n_reasons && i < NODE_REASONS_MAX; i++)
        if (j->gate.reason_ids[i] >= 0 && (unsigned)j->gate.reason_ids[i] < METRICS_GATE_REASONS)
            n->m.gate_reasons[j->gate.reason_ids[i]]++;
    log_info("GATE", "adapter=%s verdict=%s reasons=%zu%s%s", j->id_hex, accept ? "accept" : "reject",
             j->gate.n_reasons, j->gate.n_reasons > 0 ? " first=" : "",
             j->gate.n_reasons > 0 ? j->gate.reasons[0] : "");
    memcpy(ev.id, j->id, MSG_ID_LEN);
    ev.accept = accept;
    node_feed(n, &ev);
    node_publish(n, false);
}

/* Our own vote or a peer's checked one; its parsed form rides along for
 * the engine's AUDIT action (n->cur_vote). */
static void answer_vote(struct node *n, struct job *j)
{
    struct gossip_event ev = { .type = GOSSIP_EV_VOTE, .conn = j->conn };
    struct peer *p = node_peer_find(n, j->conn);

    if (j->rc != 0) {
        uint64_t k = j->kind == J_SIGN_VOTE ? 0 : ++n->vote_rejects;
        if (j->kind == J_SIGN_VOTE)
            log_error("VOTE-SIGN-FAILED", "adapter=%s: %s", j->id_hex, j->d.msg);
        else   /* re-offered every round while keyrings differ: warn at 1, 2, 4, 8, ... */
            log_msg((k & (k - 1)) == 0 ? LOG_WARN : LOG_DEBUG,
                    "VOTE-REJECTED", "peer=%.8s signer=%.8s adapter=%s: %s (%" PRIu64 " so far)",
                    p != NULL ? p->info.id : "?", j->by_hex, j->id_hex, j->d.msg, n->vote_rejects);
        if (j->kind == J_SIGN_VOTE)
            return;
    }
    memcpy(ev.id, j->id, MSG_ID_LEN);
    memcpy(ev.by, j->kind == J_SIGN_VOTE ? n->self : j->by, MSG_ID_LEN);
    memcpy(ev.from, j->from, MSG_ID_LEN);
    ev.ok = j->rc == 0;
    ev.accept = j->rc == 0 ? j->vote.accept : false;
    ev.code = j->rc == 0 ? 0 : j->vote.fault;   /* a refusal that proves the sender lied */
    ev.body = (struct msg_bytes){ j->vote.body, j->vote.body_len };
    ev.sig = (struct msg_bytes){ j->vote.sig, j->vote.sig_len };
    n->cur_vote = &j->vote;
    node_feed(n, &ev);
    n->cur_vote = NULL;
    node_publish(n, false);
}

static void merge_next(struct node *n);
static void answer_merge(struct node *n, struct job *j);

static void after_cb(uv_work_t *w, int status)
{
    struct job *j = w->data;
    struct node *n = j->n;

    n->jobs_inflight--;
    if (j->kind == J_MERGE)
        n->merge_running = false;
    if (!n->stopping && n->g != NULL && status == 0) {
        switch (j->kind) {
        case J_SIGN_AUTH:
        case J_VERIFY_AUTH: answer_auth(n, j); break;
        case J_VERIFY_ADAPTER: answer_verify_adapter(n, j); break;
        case J_GATE: answer_gate(n, j); break;
        case J_SIGN_VOTE:
        case J_VERIFY_VOTE: answer_vote(n, j); break;
        case J_MERGE: answer_merge(n, j); break;
        }
    }
    n->trim_due |= j->kind == J_VERIFY_ADAPTER || j->kind == J_GATE || j->kind == J_MERGE;
    job_free(j);
    /* The gate, the hash and the merge run on libuv's worker threads, each
     * with its own malloc arena that keeps what they freed: give it back
     * once nothing runs (the vote a gate leads to included), so an idle
     * node sits at its idle size. */
    if (n->trim_due && n->jobs_inflight == 0) {
        n->trim_due = false;
        malloc_trim(0);
    }
    if (n->stopping)
        node_maybe_finish(n);
    else
        merge_next(n);
}

/* Queue j (taken: freed on failure). Returns true when it runs. */
static bool job_start(struct node *n, struct job *j)
{
    int rc;

    if (j == NULL) {
        if (!n->stopping)
            log_error("NOMEM", "a job could not be started");
        return false;
    }
    if ((rc = uv_queue_work(n->loop, &j->w, work_cb, after_cb)) != 0) {
        log_error("LOOP", "uv_queue_work: %s", uv_strerror(rc));
        job_free(j);
        return false;
    }
    n->jobs_inflight++;
    return true;
}

/* ---- starting jobs (from the engine's actions) ---- */

void node_job_sign_auth(struct node *n, const struct gossip_action *x)
{
    struct job *j = job_new(n, J_SIGN_AUTH, x);

    if (j != NULL)
        memcpy(j->auth, x->auth, sizeof(j->auth));
    job_start(n, j);
}

/* The connection is paused until the answer: the engine must see no frame
 * of it before (PROTOCOL.md 4, ACK_WAIT). */
void node_job_verify_auth(struct node *n, const struct gossip_action *x)
{
    struct job *j = job_new(n, J_VERIFY_AUTH, x);

    if (j != NULL) {
        memcpy(j->auth, x->auth, sizeof(j->auth));
        j->in1 = dup_bytes(&x->pk);
        j->in2 = dup_bytes(&x->sig);
        j->in1_n = x->pk.n;
        j->in2_n = x->sig.n;
        if (j->in1 == NULL || j->in2 == NULL) {
            job_free(j);
            j = NULL;
        }
    }
    if (j != NULL)
        transport_pause(n->t, x->conn);
    job_start(n, j);
}

void node_job_verify_adapter(struct node *n, const struct gossip_action *x)
{
    struct job *j = job_new(n, J_VERIFY_ADAPTER, x);

    if (j != NULL)
        store_release(n->store, j->id_hex);   /* the worker reopens the file to hash it */
    job_start(n, j);
}

void node_job_gate(struct node *n, const struct gossip_action *x)
{
    job_start(n, job_new(n, J_GATE, x));
}

void node_job_sign_vote(struct node *n, const struct gossip_action *x)
{
    struct job *j = job_new(n, J_SIGN_VOTE, x);
    struct ad_rec *a = node_ad(n, x->id, false);

    if (j != NULL && a != NULL) {
        j->gate = a->gate;
        snprintf(j->domain, sizeof(j->domain), "%s", a->info.domain);
    }
    job_start(n, j);
}

void node_job_verify_vote(struct node *n, const struct gossip_action *x)
{
    struct job *j = job_new(n, J_VERIFY_VOTE, x);

    if (j != NULL) {
        j->in1 = dup_bytes(&x->data);
        j->in2 = dup_bytes(&x->data2);
        j->in1_n = x->data.n;
        j->in2_n = x->data2.n;
        if (j->in1 == NULL || j->in2 == NULL) {
            job_free(j);
            j = NULL;
        }
    }
    job_start(n, j);
}

/* ---- merges ---- */

void node_merge_commit(struct node *n, struct ad_rec *a)
{
    char (*v)[256];

    if (!n->cfg->merge_enabled)
        return;
    for (size_t i = 0; i < n->n_dirty; i++)
        if (strcmp(n->dirty_bases[i], a->base) == 0)
            return;   /* coalesced with the merge already due */
    if ((v = realloc(n->dirty_bases, (n->n_dirty + 1) * sizeof(*v))) == NULL) {
        log_error("NOMEM", "merge of %s not scheduled", a->info.id);
        return;
    }
    n->dirty_bases = v;
    snprintf(v[n->n_dirty++], sizeof(v[0]), "%s", a->base);
}

/* Called after each engine step, so that the commits of one step (a
 * batch of votes) go into one merge. */
void node_merge_kick(struct node *n)
{
    merge_next(n);
}

static struct node_merge_info *merged_of(struct node *n, const char *base)
{
    for (size_t i = 0; i < n->n_merged; i++)
        if (strcmp(n->merged[i].base_model, base) == 0)
            return &n->merged[i];
    return NULL;
}

/* The committed adapters of one base model (sorted by id, as the table). */
static int merge_inputs(struct node *n, struct job *j)
{
    if ((j->ids = calloc(n->n_ads ? n->n_ads : 1, sizeof(*j->ids))) == NULL)
        return -1;
    for (size_t i = 0; i < n->n_ads; i++)
        if (n->ads[i]->committed && strcmp(n->ads[i]->base, j->base) == 0 &&
            (j->ids[j->n_ids++] = strdup(n->ads[i]->info.id)) == NULL)
            return -1;
    return 0;
}

/* Same inputs as the latest merge of that base: nothing new to merge. */
static bool merge_unchanged(struct node *n, const struct job *j)
{
    const struct node_merge_info *m = merged_of(n, j->base);

    if (m == NULL || m->n_inputs != j->n_ids)
        return false;
    for (size_t i = 0; i < j->n_ids; i++)
        if (strcmp(m->inputs[i], j->ids[i]) != 0)
            return false;
    return true;
}

static void merge_next(struct node *n)
{
    const struct config *c = n->cfg;
    struct job *j;

    while (!n->merge_running && !n->stopping && n->n_dirty > 0) {
        if ((j = job_new(n, J_MERGE, NULL)) == NULL)
            return;
        snprintf(j->base, sizeof(j->base), "%s", n->dirty_bases[0]);
        memmove(n->dirty_bases, n->dirty_bases + 1, --n->n_dirty * sizeof(*n->dirty_bases));
        if (merge_inputs(n, j) != 0 || j->n_ids == 0 || merge_unchanged(n, j)) {
            job_free(j);
            continue;
        }
        j->mo = (struct jobs_merge_opts){ .tau_rel = c->tau_rel, .tau = c->tau,
                                          .kld_budget = c->kld_budget, .rank = c->rank,
                                          .fisher = c->weights == CONFIG_W_FISHER };
        n->merge_running = job_start(n, j);
    }
}

static void merge_record(struct node *n, const struct job *j, struct node_merge_info *m)
{
    char (*in)[65] = calloc(j->merge.n_inputs ? j->merge.n_inputs : 1, sizeof(*in));

    if (in == NULL)
        return;
    free(m->inputs);
    m->inputs = in;
    m->n_inputs = j->merge.n_inputs;
    for (size_t i = 0; i < m->n_inputs; i++)
        memcpy(in[i], j->merge.inputs[i], 65);
    snprintf(m->base_model, sizeof(m->base_model), "%s", j->base);
    snprintf(m->output, sizeof(m->output), "%s", j->merge.output);
    snprintf(m->dir, sizeof(m->dir), "%s", j->merge.dir);
    m->round = gossip_round(n->g);
}

static void answer_merge(struct node *n, struct job *j)
{
    struct node_merge_info *m = merged_of(n, j->base), *v;
    const char **inputs = NULL;
    struct crypto_diag cd = { 0 };
    struct audit_merge am;

    if (j->rc != 0) {
        log_error("MERGE-FAILED", "base=%s inputs=%zu: %s (%s)", j->base, j->n_ids, j->d.msg,
                  dmn_err_name(j->rc));
        return;
    }
    if (m == NULL && (v = realloc(n->merged, (n->n_merged + 1) * sizeof(*v))) != NULL) {
        n->merged = v;
        m = &v[n->n_merged++];
        memset(m, 0, sizeof(*m));
    }
    if (m != NULL)
        merge_record(n, j, m);
    n->m.merges++;
    n->m.adapters_merged = j->merge.n_inputs;
    log_info("MERGE", "base=%s output=%s inputs=%zu dir=%s", j->base, j->merge.output,
             j->merge.n_inputs, j->merge.dir);
    if ((inputs = calloc(j->merge.n_inputs ? j->merge.n_inputs : 1, sizeof(*inputs))) == NULL)
        return;
    for (size_t i = 0; i < j->merge.n_inputs; i++)
        inputs[i] = j->merge.inputs[i];
    am = (struct audit_merge){ .output = j->merge.output, .inputs = inputs,
                               .weights = j->merge.weights, .n_inputs = j->merge.n_inputs,
                               .rank = j->merge.rank, .tau = j->merge.tau,
                               .frob_merged = j->merge.frob_merged, .frob_out = j->merge.frob_out,
                               .dropped_energy = j->merge.dropped_energy,
                               .kld_bound = j->merge.kld_bound, .certificate = j->merge.certificate };
    if (n->audit != NULL && !audit_failed(n->audit))
        node_audit_done(n, audit_append_merge(n->audit, node_wall_ms(), &am, node_now(n), NULL, &cd),
                        &cd, "merge");
    free(inputs);
    node_publish(n, false);
}
