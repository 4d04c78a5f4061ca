/* daemon/sim.c: many gossip engines in one process (see sim.h for what is
 * real and what is simulated). Time is kept in microseconds; the engines see
 * milliseconds. Events are ordered by (time, sequence number), so the run is
 * a pure function of the config. */
#include "sim.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "gossip.h"
#include "msg.h"
#include "predict.h"
#include "rng.h"
#include "sha256.h"

#define PK_LEN 64u
#define SIG_LEN 32u
#define VOTE_LEN 35u               /* "V|" id accept */
#define FLOOD_OFFER_OVERHEAD 913u  /* JSON bytes of a prototype offer around bytes_b64
                                      (fixtures/reference/wire/ndjson: 945 - 32) */
#define FLOOD_ACK_BYTES 35u        /* {"type":"ack","status":"accepted"}\n */

enum qtype { Q_FRAME, Q_TICK, Q_UP, Q_DOWN, Q_PUBLISH, Q_RESET, Q_CRASH, Q_RESTART };

/* What a node's store keeps about each adapter besides its bytes (flags). */
enum { F_GATE_OK = 1, F_GATE_BAD = 2, F_VOTE_ACC = 4, F_VOTE_REJ = 8, F_COMMITTED = 16 };

struct qev {                       /* a scheduled event: kept small, millions are in flight */
    uint64_t t, seq;               /* microseconds, tie-break */
    size_t pos;                    /* CSR position of the receiver's conn (Q_PUBLISH: adapter) */
    uint8_t *owned;                /* frame body copy (control frames) */
    const uint8_t *body;
    uint32_t len;
    uint32_t node, gen;            /* gen: link generation when the frame was sent */
    enum qtype type;
};

struct answer {                    /* a driver answer, served before the next event */
    uint32_t node;
    struct gossip_event ev;
    uint8_t *owned, *owned2;       /* copies behind ev.body / ev.sig */
};

struct heap {
    struct qev *v;
    size_t n, cap;
};

struct adapter {
    msg_id id;
    uint8_t *bytes;
    uint64_t size;
    uint8_t *manifest_frame;       /* whole frame (header included) */
    size_t manifest_len;
    uint8_t **chunk_frames;        /* whole CHUNK frames, one per chunk_size piece */
    size_t *chunk_lens, n_chunks;
    uint32_t publisher;
    bool bad;
};

struct snode {
    struct gossip *g;
    uint8_t pk[PK_LEN];
    msg_id id;
    uint64_t tx_free;              /* uplink busy until (us) */
    uint64_t tick_at;              /* scheduled tick (us), UINT64_MAX none */
    uint64_t *stored;              /* per adapter: authentic bytes stored in order */
    uint8_t *flags;                /* per adapter: F_* (gate verdict, votes signed, merged) */
    uint32_t eq;                   /* equivocator index + 1, 0 = not one */
    bool mal_voter, equivocator;
    bool down;                     /* crashed: no engine (g == NULL) until its restart */
    bool offline;                  /* churn: offline for the current round */
};

struct keyidx {
    msg_id id;
    uint32_t node;
};

struct sim {
    const struct sim_config *cfg;
    struct graph *g;
    const size_t *off;
    const uint32_t *tgt;
    size_t *rev;                   /* rev[pos of v in u] = pos of u in v */
    uint32_t *gen;                 /* per CSR position: link generation (both ends equal) */
    bool *up;                      /* per CSR position */
    struct snode *nodes;
    struct keyidx *keys;
    struct adapter *ads;
    uint32_t n, n_ads;
    struct heap q;
    struct answer *now_q;          /* driver answers, served before the heap */
    size_t now_n, now_head, now_cap;
    uint64_t now, seq;
    struct graph_rng rng;          /* faults (drops) */
    struct graph_rng frng;         /* crash and churn schedule */
    struct gossip_actions act;
    struct sim_report *r;
    uint32_t n_down;               /* crashed, not restarted yet */
    uint8_t *eq_bits;              /* per (equivocator, adapter): verdicts kept by honest nodes */
    uint64_t round_us, latency_us, bw;
    int err;
};

/* ---- event heap ---- */

static bool qev_less(const struct qev *a, const struct qev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static int heap_push(struct heap *h, const struct qev *e)
{
    size_t i;

    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        struct qev *v = realloc(h->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    i = h->n++;
    while (i > 0 && qev_less(e, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = *e;
    return 0;
}

static struct qev heap_pop(struct heap *h)
{
    struct qev top = h->v[0], last = h->v[--h->n];
    size_t i = 0;

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && qev_less(&h->v[c + 1], &h->v[c]))
            c++;
        if (!qev_less(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = last;
    return top;
}

static void sched(struct sim *s, struct qev *e)
{
    e->seq = s->seq++;
    if (heap_push(&s->q, e) != 0) {
        free(e->owned);
        s->err = -2;
    }
}

/* A driver answer for node ni: copies body/sig, served before any frame. */
static void answer(struct sim *s, uint32_t ni, const struct gossip_event *ev)
{
    struct answer *e;

    if (s->now_head + s->now_n == s->now_cap) {
        size_t cap = s->now_cap ? s->now_cap * 2 : 64;
        struct answer *v;
        if (s->now_head > 0) {
            memmove(s->now_q, s->now_q + s->now_head, s->now_n * sizeof(*v));
            s->now_head = 0;
        } else if ((v = realloc(s->now_q, cap * sizeof(*v))) != NULL) {
            s->now_q = v;
            s->now_cap = cap;
        } else {
            s->err = -2;
            return;
        }
    }
    e = &s->now_q[s->now_head + s->now_n++];
    memset(e, 0, sizeof(*e));
    e->node = ni;
    e->ev = *ev;
    if (ev->body.n > 0) {
        if ((e->owned = malloc(ev->body.n)) == NULL)
            s->err = -2;
        else
            memcpy(e->owned, ev->body.p, ev->body.n);
        e->ev.body.p = e->owned;
    }
    if (ev->sig.n > 0) {
        if ((e->owned2 = malloc(ev->sig.n)) == NULL)
            s->err = -2;
        else
            memcpy(e->owned2, ev->sig.p, ev->sig.n);
        e->ev.sig.p = e->owned2;
    }
}

/* ---- helpers ---- */

/* sig = sha256(pk || m), m at most 256 bytes (auth input, vote body). */
static void fake_sign(const uint8_t pk[PK_LEN], const uint8_t *m, size_t n, uint8_t sig[SIG_LEN])
{
    uint8_t buf[PK_LEN + 256];

    if (n > 256)
        n = 256;
    memcpy(buf, pk, PK_LEN);
    memcpy(buf + PK_LEN, m, n);
    sha256(buf, PK_LEN + n, sig);
}

static int key_cmp(const void *a, const void *b)
{
    return memcmp(((const struct keyidx *)a)->id, ((const struct keyidx *)b)->id, MSG_ID_LEN);
}

/* Node holding key id `id`, or -1. */
static int64_t node_of_key(const struct sim *s, const uint8_t *id)
{
    struct keyidx k, *f;

    memcpy(k.id, id, MSG_ID_LEN);
    f = bsearch(&k, s->keys, s->n, sizeof(k), key_cmp);
    return f == NULL ? -1 : (int64_t)f->node;
}

static int64_t ad_index(const struct sim *s, const uint8_t *id)
{
    for (uint32_t a = 0; a < s->n_ads; a++)
        if (memcmp(s->ads[a].id, id, MSG_ID_LEN) == 0)
            return a;
    return -1;
}

static uint32_t round_of(const struct sim *s, uint64_t t)
{
    return (uint32_t)(t / s->round_us);
}

static bool partitioned(const struct sim *s, uint32_t u, uint32_t v)
{
    uint32_t r = round_of(s, s->now);
    const struct sim_faults *f = &s->cfg->faults;

    return f->part_hi > 0 && r >= f->part_lo && r <= f->part_hi && (u < s->n / 2) != (v < s->n / 2);
}

/* Close connection `pos` (u's side) at both ends now, even if a frame
 * loss already stopped both ends from sending (Q_RESET pending). */
static void link_close(struct sim *s, uint32_t u, size_t pos)
{
    size_t rp = s->rev[pos];
    struct qev e = { .t = s->now, .type = Q_DOWN };

    s->up[pos] = s->up[rp] = false;
    s->gen[pos]++;
    s->gen[rp] = s->gen[pos];
    e.node = u;
    e.pos = pos;
    sched(s, &e);
    e.node = s->tgt[pos];
    e.pos = rp;
    sched(s, &e);
}

/* Close connection `pos` unless it is closed already. */
static void link_reset(struct sim *s, uint32_t u, size_t pos)
{
    if (s->up[pos] || s->up[s->rev[pos]])
        link_close(s, u, pos);
}

/* Put a frame (header included) from u on connection pos onto the wire. */
static void transmit(struct sim *s, uint32_t u, size_t pos, const uint8_t *frame, size_t n, bool copy)
{
    struct snode *nd = &s->nodes[u];
    uint64_t start = nd->tx_free > s->now ? nd->tx_free : s->now;
    uint32_t v = s->tgt[pos];
    struct qev e = { .type = Q_FRAME, .node = v, .pos = s->rev[pos], .gen = s->gen[pos] };

    if (!s->up[pos])
        return;
    nd->tx_free = start + (uint64_t)n * 1000000ull / s->bw;   /* serialisation, us */
    s->r->bytes_sent += n;
    s->r->messages++;
    if (n > 7 && frame[7] <= MSG_TYPE_MAX)   /* prefix, fixmap, "t": the type byte */
        s->r->messages_by_type[frame[7]]++;
    e.t = nd->tx_free + s->latency_us;
    if (s->cfg->faults.drop > 0 && graph_rng_uniform(&s->rng) < s->cfg->faults.drop) {
        /* TCP: the stream breaks at the lost frame. The frames u sent before
         * it still arrive (FIFO), u sends nothing more on this connection,
         * and the reset takes effect when the lost frame was due: anything
         * still in flight then, either way, is lost. */
        struct qev x = { .t = e.t, .type = Q_RESET, .node = u, .pos = pos, .gen = s->gen[pos] };
        s->r->resets++;
        s->up[pos] = false;
        sched(s, &x);
        return;
    }
    if (partitioned(s, u, v)) {
        link_reset(s, u, pos);
        return;
    }
    e.body = frame + FRAME_HEADER;
    e.len = (uint32_t)(n - FRAME_HEADER);
    if (copy) {
        if ((e.owned = malloc(e.len)) == NULL) {
            s->err = -2;
            return;
        }
        memcpy(e.owned, e.body, e.len);
        e.body = e.owned;
    }
    sched(s, &e);
}

/* ---- executing the engines' actions ---- */

static uint64_t chunk_data_len(const struct adapter *ad, size_t k, uint64_t chunk)
{
    return ad->size - k * chunk < chunk ? ad->size - k * chunk : chunk;
}

static void send_adapter(struct sim *s, uint32_t ni, const struct gossip_action *x)
{
    int64_t a = ad_index(s, x->id);
    const struct adapter *ad;

    if (a < 0 || x->count != s->cfg->chunk_size || x->off % x->count != 0)
        return;   /* the engine only serves what it holds, in our chunk size */
    ad = &s->ads[a];
    transmit(s, ni, x->conn, ad->manifest_frame, ad->manifest_len, false);
    for (size_t k = (size_t)(x->off / x->count); k < ad->n_chunks && s->up[x->conn]; k++) {
        transmit(s, ni, x->conn, ad->chunk_frames[k], ad->chunk_lens[k], false);
        s->r->payload_bytes += chunk_data_len(ad, k, x->count);
    }
}

/* STORE_CHUNK: authentic iff the data is chunk k of the adapter's own frames
 * (pointer identity: the receiver's bytes are the sender's bytes). */
static void store_chunk(struct sim *s, uint32_t ni, const struct gossip_action *x)
{
    int64_t a = ad_index(s, x->id);
    uint64_t *st;
    size_t k;

    if (a < 0)
        return;
    st = &s->nodes[ni].stored[a];
    k = (size_t)(x->off / s->cfg->chunk_size);
    /* the very bytes of chunk k's frame: same memory, so same content */
    if (*st == x->off && k < s->ads[a].n_chunks &&
        x->data.p + x->data.n == s->ads[a].chunk_frames[k] + s->ads[a].chunk_lens[k] &&
        x->data.n == chunk_data_len(&s->ads[a], k, s->cfg->chunk_size))
        *st += x->data.n;
    else
        *st = UINT64_MAX;   /* corrupt: the hash check below fails */
}

static void verify_adapter(struct sim *s, uint32_t ni, const struct gossip_action *x)
{
    struct gossip_event ev = { .type = GOSSIP_EV_ADAPTER_VERIFIED };
    int64_t a = ad_index(s, x->id);

    memcpy(ev.id, x->id, MSG_ID_LEN);
    ev.ok = a >= 0 && s->nodes[ni].stored[a] == s->ads[a].size && x->size == s->ads[a].size;
    if (a >= 0 && !ev.ok)
        s->nodes[ni].stored[a] = 0;
    answer(s, ni, &ev);
}

/* Node ni signed a verdict on adapter a: kept in its store; an equivocator's
 * second verdict is the equivocation's first appearance. */
static void note_vote(struct sim *s, uint32_t ni, uint32_t a, bool accept)
{
    struct snode *nd = &s->nodes[ni];
    int64_t *sg;

    nd->flags[a] |= accept ? F_VOTE_ACC : F_VOTE_REJ;
    if (nd->eq == 0 || (nd->flags[a] & (F_VOTE_ACC | F_VOTE_REJ)) != (F_VOTE_ACC | F_VOTE_REJ))
        return;
    sg = &s->r->equiv_signed[(size_t)(nd->eq - 1) * s->n_ads + a];
    if (*sg < 0)
        *sg = round_of(s, s->now);
}

/* Our vote "V|" id accept, signed; an equivocator also signs the opposite. */
static void sign_vote(struct sim *s, uint32_t ni, const struct gossip_action *x, bool accept)
{
    struct gossip_event ev = { .type = GOSSIP_EV_VOTE, .ok = true, .accept = accept };
    uint8_t body[VOTE_LEN] = { 'V', '|' }, sig[SIG_LEN];

    int64_t a = ad_index(s, x->id);

    memcpy(body + 2, x->id, MSG_ID_LEN);
    body[34] = accept;
    fake_sign(s->nodes[ni].pk, body, VOTE_LEN, sig);
    if (a >= 0)
        note_vote(s, ni, (uint32_t)a, accept);
    memcpy(ev.id, x->id, MSG_ID_LEN);
    memcpy(ev.by, s->nodes[ni].id, MSG_ID_LEN);
    ev.body = (struct msg_bytes){ body, VOTE_LEN };
    ev.sig = (struct msg_bytes){ sig, SIG_LEN };
    answer(s, ni, &ev);
}

static void verify_vote(struct sim *s, uint32_t ni, const struct gossip_action *x)
{
    struct gossip_event ev = { .type = GOSSIP_EV_VOTE, .conn = x->conn };
    int64_t signer = node_of_key(s, x->by);
    uint8_t sig[SIG_LEN];

    memcpy(ev.id, x->id, MSG_ID_LEN);
    memcpy(ev.by, x->by, MSG_ID_LEN);
    memcpy(ev.from, x->from, MSG_ID_LEN);
    ev.accept = x->data.n == VOTE_LEN && x->data.p[34] == 1;
    if (signer >= 0 && x->data.n == VOTE_LEN && memcmp(x->data.p + 2, x->id, MSG_ID_LEN) == 0 &&
        x->data2.n == SIG_LEN) {
        fake_sign(s->nodes[signer].pk, x->data.p, x->data.n, sig);
        ev.ok = memcmp(sig, x->data2.p, SIG_LEN) == 0;
    }
    ev.body = x->data;
    ev.sig = x->data2;
    answer(s, ni, &ev);
}

static bool honest(const struct sim *s, uint32_t ni)
{
    return !s->nodes[ni].mal_voter && !s->nodes[ni].equivocator;
}

static void on_commit(struct sim *s, uint32_t ni, const struct gossip_action *x)
{
    int64_t a = ad_index(s, x->id);

    if (!honest(s, ni) || a < 0 || (s->nodes[ni].flags[a] & F_COMMITTED))
        return;   /* a restarted node commits its merged adapter again: counted once */
    s->nodes[ni].flags[a] |= F_COMMITTED;
    s->r->commits++;
    s->r->wrongly_merged += s->ads[a].bad;
}

/* An honest node kept a vote of equivocator `by` on adapter a: once each of
 * its two verdicts has reached some honest node, the equivocation is "seen"
 * (both votes are among the honest nodes; detecting it needs them to meet). */
static void vote_seen(struct sim *s, uint32_t by, uint32_t a, bool accept)
{
    size_t k = (size_t)(s->nodes[by].eq - 1) * s->n_ads + a;

    s->eq_bits[k] |= accept ? 1 : 2;
    if (s->eq_bits[k] == 3 && s->r->equiv_seen[k] < 0)
        s->r->equiv_seen[k] = round_of(s, s->now);
}

static void on_audit(struct sim *s, uint32_t ni, const struct gossip_action *x)
{
    int64_t a = ad_index(s, x->id), by = node_of_key(s, x->by);
    int64_t *dt;

    if ((x->audit != GOSSIP_AUDIT_EQUIVOCATION && x->audit != GOSSIP_AUDIT_VOTE) || !honest(s, ni))
        return;
    if (a < 0 || by < 0 || s->nodes[by].eq == 0) {
        by = -1;
    } else if (x->audit == GOSSIP_AUDIT_VOTE) {
        vote_seen(s, (uint32_t)by, (uint32_t)a, x->accept);
        return;
    }
    if (x->audit == GOSSIP_AUDIT_VOTE)
        return;
    if (s->r->equivocations_detected++ == 0)
        s->r->equivocation_round = round_of(s, s->now);
    if (by < 0)
        return;
    dt = &s->r->equiv_detected[(size_t)(s->nodes[by].eq - 1) * s->n_ads + (size_t)a];
    if (*dt < 0)
        *dt = round_of(s, s->now);
}

static void auth(struct sim *s, uint32_t ni, const struct gossip_action *x, bool verify)
{
    struct gossip_event ev = { .conn = x->conn };
    uint8_t sig[SIG_LEN];

    if (!verify) {
        fake_sign(s->nodes[ni].pk, x->auth, MSG_AUTH_INPUT_LEN, sig);
        ev.type = GOSSIP_EV_AUTH_SIGNED;
        ev.sig = (struct msg_bytes){ sig, SIG_LEN };
    } else {
        ev.type = GOSSIP_EV_AUTH_VERIFIED;
        if (x->pk.n == PK_LEN) {
            fake_sign(x->pk.p, x->auth, MSG_AUTH_INPUT_LEN, sig);
            ev.ok = x->sig.n == SIG_LEN && memcmp(sig, x->sig.p, SIG_LEN) == 0;
        }
    }
    answer(s, ni, &ev);
}

static void gate(struct sim *s, uint32_t ni, const struct gossip_action *x)
{
    struct gossip_event ev = { .type = GOSSIP_EV_GATE_VERDICT };
    int64_t a = ad_index(s, x->id);

    memcpy(ev.id, x->id, MSG_ID_LEN);
    ev.accept = a >= 0 && (!s->ads[a].bad || s->nodes[ni].mal_voter);
    if (a >= 0)
        s->nodes[ni].flags[a] |= ev.accept ? F_GATE_OK : F_GATE_BAD;
    answer(s, ni, &ev);
}

static void execute(struct sim *s, uint32_t ni, const struct gossip_action *x)
{
    switch (x->type) {
    case GOSSIP_ACT_SEND: transmit(s, ni, x->conn, x->frame.p, x->frame.n, true); break;
    case GOSSIP_ACT_CLOSE: link_reset(s, ni, x->conn); break;
    case GOSSIP_ACT_SIGN_AUTH: auth(s, ni, x, false); break;
    case GOSSIP_ACT_VERIFY_AUTH: auth(s, ni, x, true); break;
    case GOSSIP_ACT_SEND_ADAPTER: send_adapter(s, ni, x); break;
    case GOSSIP_ACT_STORE_CHUNK: store_chunk(s, ni, x); break;
    case GOSSIP_ACT_VERIFY_ADAPTER: verify_adapter(s, ni, x); break;
    case GOSSIP_ACT_DISCARD: {
        int64_t a = ad_index(s, x->id);
        if (a >= 0)
            s->nodes[ni].stored[a] = 0;
        break;
    }
    case GOSSIP_ACT_RUN_GATE: gate(s, ni, x); break;
    case GOSSIP_ACT_SIGN_VOTE:
        sign_vote(s, ni, x, x->accept);
        if (s->nodes[ni].equivocator)
            sign_vote(s, ni, x, !x->accept);
        break;
    case GOSSIP_ACT_VERIFY_VOTE: verify_vote(s, ni, x); break;
    case GOSSIP_ACT_COMMIT: on_commit(s, ni, x); break;
    case GOSSIP_ACT_AUDIT: on_audit(s, ni, x); break;
    case GOSSIP_ACT_STRIKE:
    case GOSSIP_ACT_AUTHENTICATED:   /* no frame_reader here: bodies arrive whole */
    case GOSSIP_ACT_STORE_MANIFEST:
    case GOSSIP_ACT_MEMBERS:         /* addr "" everywhere: the overlay is fixed */
        break;
    }
}

/* Feed one event to node ni, execute what it returns, re-arm its tick. */
static void step(struct sim *s, uint32_t ni, struct gossip_event *ev)
{
    struct snode *nd = &s->nodes[ni];
    uint64_t dl;

    if (nd->g == NULL)
        return;   /* crashed */
    ev->now_ms = s->now / 1000;
    if (gossip_step(nd->g, ev, &s->act) == PROTO_E_NOMEM)
        s->err = -2;
    for (size_t i = 0; i < s->act.n; i++)
        execute(s, ni, &s->act.v[i]);
    gossip_actions_reset(&s->act);
    dl = gossip_next_deadline_ms(nd->g) * 1000;
    if (dl < s->now)
        dl = s->now;
    if (dl < nd->tick_at) {
        struct qev e = { .t = dl, .type = Q_TICK, .node = ni };
        nd->tick_at = dl;
        sched(s, &e);
    }
}

/* ---- the event loop ---- */

static bool alive(const struct sim *s, uint32_t u)
{
    return !s->nodes[u].down && !s->nodes[u].offline;
}

/* (Re)open connection pos (u's side) at both ends: PEER_UP, lower id dials. */
static void redial(struct sim *s, uint32_t u, size_t pos)
{
    size_t rp = s->rev[pos];
    uint32_t v = s->tgt[pos];
    struct gossip_event ev = { .type = GOSSIP_EV_PEER_UP };

    if (s->up[pos] || !alive(s, u) || !alive(s, v))
        return;
    s->up[pos] = s->up[rp] = true;
    s->gen[pos]++;
    s->gen[rp] = s->gen[pos];
    for (int side = 0; side < 2; side++) {
        uint32_t me = side == 0 ? u : v;
        ev.conn = (uint32_t)(side == 0 ? pos : rp);
        ev.outbound = side == 0;
        for (size_t k = 0; k < MSG_NONCE_LEN; k += 8) {
            uint64_t r = graph_rng_next(&s->rng);
            memcpy(ev.nonce + k, &r, 8);
        }
        step(s, me, &ev);
    }
}

static void publish(struct sim *s, uint32_t a);
static int engine_new(struct sim *s, uint32_t i, uint64_t start_ms);

/* Reopen u's connections to live neighbours now, each dialled by its lower end. */
static void connect_all(struct sim *s, uint32_t u)
{
    for (size_t p = s->off[u]; p < s->off[u + 1]; p++) {
        bool low = u < s->tgt[p];
        struct qev e = { .t = s->now, .type = Q_UP, .node = low ? u : s->tgt[p],
                         .pos = low ? p : s->rev[p] };
        sched(s, &e);
    }
}

/* Node u crashes: its engine and everything in flight to or from it is
 * gone; its neighbours see their connection drop. Its store stays. */
static void crash(struct sim *s, uint32_t u)
{
    struct snode *nd = &s->nodes[u];

    for (size_t p = s->off[u]; p < s->off[u + 1]; p++) {
        size_t rp = s->rev[p];
        struct qev e = { .t = s->now, .type = Q_DOWN, .node = s->tgt[p], .pos = rp };
        if (!s->up[p] && !s->up[rp])
            continue;
        s->up[p] = s->up[rp] = false;
        s->gen[p]++;
        s->gen[rp] = s->gen[p];
        sched(s, &e);
    }
    gossip_free(nd->g);
    nd->g = NULL;
    nd->down = true;
    nd->tick_at = UINT64_MAX;
    s->r->crashes++;
    s->n_down++;
}

/* Node u restarts (at a round start) with a fresh engine fed from its store:
 * whole adapters with their gate verdict, partial ones at their stored
 * offset (a torn write is discarded), then the votes it had signed. */
static void restart(struct sim *s, uint32_t u)
{
    struct snode *nd = &s->nodes[u];
    char dom[MSG_DOMAIN_MAX + 1];

    if (engine_new(s, u, s->now / 1000) != 0) {
        s->err = -2;
        return;
    }
    nd->down = false;
    s->r->restarts++;
    s->n_down--;
    for (uint32_t a = 0; a < s->n_ads; a++) {
        struct gossip_event ev = { .type = GOSSIP_EV_ADAPTER, .size = s->ads[a].size, .domain = dom };
        if (nd->stored[a] > s->ads[a].size)
            nd->stored[a] = 0;
        if (nd->stored[a] == 0)
            continue;
        snprintf(dom, sizeof(dom), "sim-%u", a);
        memcpy(ev.id, s->ads[a].id, MSG_ID_LEN);
        ev.stored = nd->stored[a];
        s->r->restored_partial += ev.stored < ev.size;
        s->r->restored_whole += ev.stored == ev.size;
        ev.gate = nd->flags[a] & F_GATE_OK ? 1 : nd->flags[a] & F_GATE_BAD ? -1 : 0;
        step(s, u, &ev);
    }
    for (uint32_t a = 0; a < s->n_ads; a++) {
        struct gossip_action x = { .type = GOSSIP_ACT_SIGN_VOTE };
        memcpy(x.id, s->ads[a].id, MSG_ID_LEN);
        if (nd->flags[a] & F_VOTE_ACC)
            sign_vote(s, u, &x, true);
        if (nd->flags[a] & F_VOTE_REJ)
            sign_vote(s, u, &x, false);
    }
    connect_all(s, u);
}

/* Round r >= 1 starts: each node is offline this round with probability
 * churn. Going offline resets its connections; coming back redials them. */
static void churn(struct sim *s)
{
    for (uint32_t u = 0; u < s->n; u++) {
        struct snode *nd = &s->nodes[u];
        bool off = graph_rng_uniform(&s->frng) < s->cfg->faults.churn;
        s->r->offline_node_rounds += off;
        if (off == nd->offline)
            continue;
        nd->offline = off;
        if (!off) {
            connect_all(s, u);
            continue;
        }
        for (size_t p = s->off[u]; p < s->off[u + 1]; p++)
            if (s->up[p] || s->up[s->rev[p]])
                link_close(s, u, p);
    }
}

static void drain_answers(struct sim *s)
{
    while (s->now_n > 0 && s->err == 0) {
        struct answer e = s->now_q[s->now_head++];
        s->now_n--;
        if (s->now_n == 0)
            s->now_head = 0;
        step(s, e.node, &e.ev);
        free(e.owned);
        free(e.owned2);
    }
}

static void dispatch(struct sim *s, struct qev *e)
{
    struct gossip_event ev = { .conn = (uint32_t)e->pos };

    switch (e->type) {
    case Q_FRAME:
        if (e->gen != s->gen[e->pos])
            break;   /* sent on a connection since reset (a loss stops only
                        the sender's side until the reset: the rest arrives) */
        ev.type = GOSSIP_EV_FRAME;
        ev.body = (struct msg_bytes){ e->body, e->len };
        step(s, e->node, &ev);
        break;
    case Q_TICK:
        if (e->t != s->nodes[e->node].tick_at)
            break;   /* superseded by an earlier deadline */
        s->nodes[e->node].tick_at = UINT64_MAX;
        ev.type = GOSSIP_EV_TICK;
        step(s, e->node, &ev);
        break;
    case Q_DOWN: {
        struct qev r = { .t = s->now + s->round_us / 2, .type = Q_UP, .node = e->node, .pos = e->pos };
        ev.type = GOSSIP_EV_PEER_DOWN;
        step(s, e->node, &ev);
        if (e->node < s->tgt[e->pos])
            sched(s, &r);   /* the lower end redials half a round later */
        break;
    }
    case Q_UP: redial(s, e->node, e->pos); break;
    case Q_PUBLISH: publish(s, (uint32_t)e->pos); break;
    case Q_RESET:
        if (e->gen == s->gen[e->pos])
            link_close(s, e->node, e->pos);   /* not reset meanwhile */
        break;
    case Q_CRASH: crash(s, e->node); break;
    case Q_RESTART: restart(s, e->node); break;
    }
    free(e->owned);
    drain_answers(s);
}

/* Node i holds adapter a: whole and hashed in its store (a crashed node
 * still holds what its store holds). */
static bool holds(const struct sim *s, uint32_t i, uint32_t a)
{
    return s->nodes[i].stored[a] == s->ads[a].size;
}

/* Binary entropy in bits. */
static double h2(double p)
{
    return p <= 0 || p >= 1 ? 0.0 : -(p * log2(p) + (1 - p) * log2(1 - p));
}

/* Swarm metrics of round r from the presence matrix X[i][a] = holds(i, a)
 * (sim.h and docs/calibration.md give the formulas). kd[a]: holders of a;
 * ki[i]: adapters i holds; T = sum of either. */
static void metrics(struct sim *s, uint32_t r, const uint32_t *kd, const uint32_t *ki, uint64_t T)
{
    struct sim_report *o = s->r;
    double n = s->n, A = s->n_ads, cov = 0, ent = 0, mi = 0, aa = 0, cooc = 0;
    uint32_t pairs = 0;

    for (uint32_t a = 0; a < s->n_ads; a++) {
        cov += kd[a] / n / A;
        ent += h2(kd[a] / n) / A;
    }
    for (uint32_t i = 0; i < s->n && T > 0; i++)   /* sum over held (i,a) of (1/T) log2(T / (k_i k_a)) */
        for (uint32_t a = 0; a < s->n_ads; a++)
            if (holds(s, i, a))
                mi += log2((double)T / ((double)ki[i] * kd[a])) / (double)T;
    for (uint32_t k = 0; k <= s->n_ads; k++) {     /* H(K), K = adapters a uniform node holds */
        uint32_t c = 0;
        for (uint32_t i = 0; i < s->n; i++)
            c += ki[i] == k;
        aa -= c > 0 ? (c / n) * log2(c / n) : 0.0;
    }
    for (uint32_t a = 0; a < s->n_ads; a++)         /* mean over pairs of p(a&b) - p(a)p(b) */
        for (uint32_t b = a + 1; b < s->n_ads; b++, pairs++) {
            uint32_t both = 0;
            for (uint32_t i = 0; i < s->n; i++)
                both += holds(s, i, a) && holds(s, i, b);
            cooc += both / n - (kd[a] / n) * (kd[b] / n);
        }
    o->m_coverage[r - 1] = cov;
    o->m_entropy[r - 1] = ent;
    o->m_mi[r - 1] = mi > 0 ? mi : 0.0;   /* sum of terms of both signs: clamp rounding */
    o->m_mi_delta[r - 1] = r > 1 ? o->m_mi[r - 1] - o->m_mi[r - 2] : 0.0;
    o->m_aa_mi[r - 1] = aa > 0 ? aa : 0.0;
    o->m_cooc[r - 1] = pairs > 0 ? cooc / pairs : 0.0;
}

/* End of round r: coverage, per-adapter first full round, metrics. Returns
 * true when every adapter is everywhere. */
static bool round_end(struct sim *s, uint32_t r, uint32_t *kd, uint32_t *ki)
{
    bool all = true;
    uint32_t full = 0;
    uint64_t T = 0;

    memset(kd, 0, s->n_ads * sizeof(*kd));
    for (uint32_t i = 0; i < s->n; i++) {
        ki[i] = 0;
        for (uint32_t a = 0; a < s->n_ads; a++)
            if (holds(s, i, a)) {
                kd[a]++;
                ki[i]++;
            }
        full += ki[i] == s->n_ads;
        T += ki[i];
    }
    s->r->coverage_by_round[r - 1] = full;
    for (uint32_t a = 0; a < s->n_ads; a++) {
        if (s->r->rounds_to_coverage[a] < 0 && kd[a] == s->n)
            s->r->rounds_to_coverage[a] = r;
        all = all && kd[a] == s->n;
    }
    metrics(s, r, kd, ki, T);
    return all;
}

/* Every equivocation signed so far has been detected by an honest node. */
static bool equivocations_settled(const struct sim *s)
{
    for (size_t k = 0; k < (size_t)s->r->equivocators * s->n_ads; k++)
        if (s->r->equiv_signed[k] >= 0 && s->r->equiv_detected[k] < 0)
            return false;
    return true;
}

/* Run rounds 1..max; stop `settle` rounds after full coverage (votes) with
 * every crashed node restarted and every equivocation signed detected. */
static void run_loop(struct sim *s, uint32_t settle)
{
    uint32_t r = 0, done_at = 0;
    uint32_t *kd = malloc(s->n_ads * sizeof(*kd)), *ki = malloc(s->n * sizeof(*ki));

    if (kd == NULL || ki == NULL)
        s->err = -2;
    while (s->err == 0 && r <= s->cfg->max_rounds) {
        uint64_t end = (uint64_t)(r + 1) * s->round_us;
        if (r > 0 && s->cfg->faults.churn > 0)
            churn(s);   /* s->now is round r's start */
        while (s->q.n > 0 && s->q.v[0].t < end && s->err == 0) {
            struct qev e = heap_pop(&s->q);
            s->now = e.t;
            dispatch(s, &e);
        }
        s->now = end;
        s->r->rounds = r;
        if (r++ == 0)
            continue;   /* round 0: handshakes; engine round k is sim round k */
        if (round_end(s, r - 1, kd, ki) && s->n_down == 0 && equivocations_settled(s) && done_at == 0)
            done_at = r - 1;
        if (done_at > 0 && r - 1 >= done_at + settle)
            break;
    }
    free(kd);
    free(ki);
}

/* ---- setup ---- */

/* Adapter a: seed-derived bytes, its SHA-256 id, MANIFEST and CHUNK frames. */
static int adapter_build(struct sim *s, struct adapter *ad, uint32_t a, uint64_t size)
{
    struct graph_rng r;
    struct msg m = { .type = MSG_MANIFEST };
    uint64_t chunk = s->cfg->chunk_size;

    graph_rng_seed(&r, s->cfg->graph.seed ^ (0x9e3779b97f4a7c15ull * (a + 1)));
    ad->size = size;
    ad->n_chunks = (size_t)((size + chunk - 1) / chunk);
    ad->bytes = malloc(size);
    ad->chunk_frames = calloc(ad->n_chunks, sizeof(*ad->chunk_frames));
    ad->chunk_lens = calloc(ad->n_chunks, sizeof(*ad->chunk_lens));
    if (ad->bytes == NULL || ad->chunk_frames == NULL || ad->chunk_lens == NULL)
        return -2;
    for (uint64_t i = 0; i < size; i++)
        ad->bytes[i] = (uint8_t)(graph_rng_next(&r) >> 56);
    if (sha256(ad->bytes, size, ad->id) != 0)
        return -2;
    memcpy(m.u.manifest.id, ad->id, MSG_ID_LEN);
    snprintf(m.u.manifest.domain, sizeof(m.u.manifest.domain), "sim-%u", a);
    m.u.manifest.size = size;
    if (msg_encode(&m, &ad->manifest_frame, &ad->manifest_len, NULL) != 0)
        return -2;
    for (size_t k = 0; k < ad->n_chunks; k++) {
        uint64_t len = chunk_data_len(ad, k, chunk);
        size_t hn;
        if ((ad->chunk_frames[k] = malloc(MSG_CHUNK_HEAD_MAX + len)) == NULL ||
            msg_chunk_head(ad->chunk_frames[k], MSG_CHUNK_HEAD_MAX, &hn, ad->id, k * chunk, len) != 0)
            return -2;
        memcpy(ad->chunk_frames[k] + hn, ad->bytes + k * chunk, len);
        ad->chunk_lens[k] = hn + len;
    }
    return 0;
}

/* Node i's engine, its first round at start_ms. Returns 0 or -2. */
static int engine_new(struct sim *s, uint32_t i, uint64_t start_ms)
{
    struct snode *nd = &s->nodes[i];
    struct gossip_config gc = { .pk = nd->pk, .pk_len = PK_LEN, .addr = "",
                                .quorum = s->cfg->faults.quorum ? s->cfg->faults.quorum : 1,
                                .round_ms = s->cfg->round_ms, .chunk_size = s->cfg->chunk_size,
                                .start_ms = start_ms };

    memcpy(gc.self, nd->id, MSG_ID_LEN);
    return gossip_new(&nd->g, &gc) != 0 ? -2 : 0;
}

static int nodes_build(struct sim *s)
{
    s->nodes = calloc(s->n, sizeof(*s->nodes));
    s->keys = calloc(s->n, sizeof(*s->keys));
    if (s->nodes == NULL || s->keys == NULL)
        return -2;
    for (uint32_t i = 0; i < s->n; i++) {
        struct snode *nd = &s->nodes[i];
        for (size_t k = 0; k < PK_LEN; k += 8) {
            uint64_t r = graph_rng_next(&s->rng);
            memcpy(nd->pk + k, &r, 8);
        }
        sha256(nd->pk, PK_LEN, nd->id);
        memcpy(s->keys[i].id, nd->id, MSG_ID_LEN);
        s->keys[i].node = i;
        nd->tick_at = UINT64_MAX;
        if ((nd->stored = calloc(s->n_ads, sizeof(*nd->stored))) == NULL ||
            (nd->flags = calloc(s->n_ads, sizeof(*nd->flags))) == NULL ||
            engine_new(s, i, s->cfg->round_ms) != 0)
            return -2;
    }
    qsort(s->keys, s->n, sizeof(*s->keys), key_cmp);
    return 0;
}

/* Distinct random roles: malicious voters, equivocators, then publishers
 * of bad adapters; good adapters' publishers are uniform over all nodes. */
static int roles_and_adapters(struct sim *s)
{
    const struct sim_faults *f = &s->cfg->faults;
    uint32_t *perm = malloc(s->n * sizeof(*perm)), k = 0;
    int rc = 0;

    if (perm == NULL || (s->ads = calloc(s->n_ads, sizeof(*s->ads))) == NULL) {
        free(perm);
        return -2;
    }
    for (uint32_t i = 0; i < s->n; i++)
        perm[i] = i;
    for (uint32_t i = s->n - 1; i > 0; i--) {
        uint32_t j = (uint32_t)graph_rng_below(&s->rng, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (uint32_t i = 0; i < f->mal_voters; i++)
        s->nodes[perm[k++]].mal_voter = true;
    for (uint32_t i = 0; i < f->equivocators; i++) {
        s->r->equivocator_node[i] = perm[k];
        s->nodes[perm[k]].eq = i + 1;
        s->nodes[perm[k++]].equivocator = true;
    }
    for (uint32_t a = 0; a < s->n_ads && rc == 0; a++) {
        struct adapter *ad = &s->ads[a];
        ad->bad = a >= s->cfg->adapters;
        ad->publisher = ad->bad ? perm[k++] : (uint32_t)graph_rng_below(&s->rng, s->n);
        rc = adapter_build(s, ad, a, s->cfg->adapter_bytes);
    }
    free(perm);
    return rc;
}

/* crash=K: K distinct nodes, each crashing at a random instant of round
 * 1 + U[0, max(2, max eccentricity)) and restarting 1 + U[0, 3) rounds later,
 * at that round's start (from frng, so the schedule is the seed's). */
static int schedule_crashes(struct sim *s)
{
    uint32_t k = s->cfg->faults.crash, span = 2, *perm;

    if (k == 0)
        return 0;
    if ((perm = malloc(s->n * sizeof(*perm))) == NULL)
        return -2;
    for (uint32_t a = 0; a < s->n_ads; a++)
        span = s->r->eccentricity[a] > span ? s->r->eccentricity[a] : span;
    for (uint32_t i = 0; i < s->n; i++)
        perm[i] = i;
    for (uint32_t i = 0; i < k; i++) {   /* partial Fisher-Yates: perm[0..k) */
        uint32_t j = i + (uint32_t)graph_rng_below(&s->frng, (uint64_t)(s->n - i)), t = perm[i];
        uint64_t c = 1 + graph_rng_below(&s->frng, span), back = c + 1 + graph_rng_below(&s->frng, 3);
        struct qev e = { .t = c * s->round_us + graph_rng_below(&s->frng, s->round_us), .type = Q_CRASH };
        perm[i] = perm[j];
        perm[j] = t;
        e.node = perm[i];
        sched(s, &e);
        e.t = back * s->round_us;
        e.type = Q_RESTART;
        sched(s, &e);
    }
    free(perm);
    return s->err;
}

/* Adapter a appears in its publisher's store (pos = a). */
static void publish(struct sim *s, uint32_t a)
{
    struct gossip_event ev = { .type = GOSSIP_EV_ADAPTER, .size = s->ads[a].size,
                               .stored = s->ads[a].size };
    char dom[MSG_DOMAIN_MAX + 1];

    snprintf(dom, sizeof(dom), "sim-%u", a);
    ev.domain = dom;
    memcpy(ev.id, s->ads[a].id, MSG_ID_LEN);
    s->nodes[s->ads[a].publisher].stored[a] = s->ads[a].size;
    step(s, s->ads[a].publisher, &ev);
}

/* Publications happen 1 us before round 1 starts: after the handshakes of
 * round 0, so round k is the k-th round in which the adapters travel. */
static void publish_all(struct sim *s)
{
    for (uint32_t a = 0; a < s->n_ads; a++) {
        struct qev e = { .t = s->round_us - 1, .type = Q_PUBLISH, .node = s->ads[a].publisher, .pos = a };
        sched(s, &e);
    }
}

static int links_build(struct sim *s)
{
    size_t m2 = s->off[s->n];

    s->rev = malloc(m2 * sizeof(*s->rev));
    s->gen = calloc(m2, sizeof(*s->gen));
    s->up = calloc(m2, sizeof(*s->up));
    if (s->rev == NULL || s->gen == NULL || s->up == NULL || m2 > UINT32_MAX)
        return -2;
    for (uint32_t u = 0; u < s->n; u++)
        for (size_t p = s->off[u]; p < s->off[u + 1]; p++) {
            uint32_t v = s->tgt[p];
            size_t lo = s->off[v], hi = s->off[v + 1];
            while (lo < hi) {   /* neighbour lists are sorted */
                size_t mid = lo + (hi - lo) / 2;
                if (s->tgt[mid] < u)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            s->rev[p] = lo;
        }
    for (uint32_t u = 0; u < s->n; u++)
        for (size_t p = s->off[u]; p < s->off[u + 1]; p++)
            if (u < s->tgt[p]) {
                struct qev e = { .t = 0, .type = Q_UP, .node = u, .pos = p };
                sched(s, &e);
            }
    return s->err;
}

/* ---- analysis and the flood-json reference ---- */

/* BFS levels from src into dist (UINT32_MAX unreachable); returns the
 * eccentricity of src over the reachable vertices. */
static uint32_t bfs(const struct graph *g, uint32_t src, uint32_t *dist, uint32_t *queue)
{
    const size_t *off = graph_csr_offsets(g);
    const uint32_t *tgt = graph_csr_targets(g);
    uint32_t n = graph_n(g), head = 0, tail = 0, ecc = 0;

    for (uint32_t i = 0; i < n; i++)
        dist[i] = UINT32_MAX;
    dist[src] = 0;
    queue[tail++] = src;
    while (head < tail) {
        uint32_t u = queue[head++];
        ecc = dist[u];
        for (size_t p = off[u]; p < off[u + 1]; p++)
            if (dist[tgt[p]] == UINT32_MAX) {
                dist[tgt[p]] = dist[u] + 1;
                queue[tail++] = tgt[p];
            }
    }
    return ecc;
}

void sim_flood_json(const struct graph *g, const uint32_t *publisher, uint32_t adapters,
                    uint64_t adapter_bytes, struct sim_report *r)
{
    uint32_t n = graph_n(g), *dist = malloc(n * sizeof(*dist)), *queue = malloc(n * sizeof(*queue));
    uint64_t offer = FLOOD_OFFER_OVERHEAD + 4 * ((adapter_bytes + 2) / 3);

    r->flood_bytes = r->flood_messages = 0;
    r->flood_rounds = 0;
    if (dist == NULL || queue == NULL)
        goto out;
    /* round t: every holder (dist < t) sends the adapter to each neighbour */
    for (uint32_t a = 0; a < adapters; a++) {
        uint32_t ecc = bfs(g, publisher[a], dist, queue);
        for (uint32_t i = 0; i < n; i++)
            if (dist[i] != UINT32_MAX) {
                uint64_t sends = (uint64_t)(ecc - dist[i]) * graph_degree(g, i);
                r->flood_messages += 2 * sends;
                r->flood_bytes += sends * (offer + FLOOD_ACK_BYTES);
            }
        if (ecc > r->flood_rounds)
            r->flood_rounds = ecc;
    }
out:
    free(dist);
    free(queue);
}

static int analyse(struct sim *s, struct sim_report *r)
{
    uint32_t *dist = malloc(s->n * sizeof(*dist)), *queue = malloc(s->n * sizeof(*queue));
    uint32_t *pub = malloc(s->n_ads * sizeof(*pub));
    struct graph_analysis_opts o = { .source = s->ads[0].publisher, .skip_diameter = true,
                                     .seed = s->cfg->graph.seed };
    struct graph_analysis an;
    struct graph_diag d;
    int rc = 0;

    if (dist == NULL || queue == NULL || pub == NULL) {
        rc = -2;
        goto out;
    }
    for (uint32_t a = 0; a < s->n_ads; a++) {
        r->eccentricity[a] = bfs(s->g, s->ads[a].publisher, dist, queue);
        r->bad[a] = s->ads[a].bad;
        pub[a] = s->ads[a].publisher;
    }
    r->predicted_rounds = r->predicted_rounds_uncalibrated = r->epidemic_threshold = NAN;
    if (graph_analyze(s->g, &o, &an, &d) == 0) {
        graph_analysis_calibrate(&an, s->cfg->graph.topology);
        r->predicted_rounds = an.predicted_rounds;
        r->predicted_rounds_uncalibrated = an.predicted_rounds_uncalibrated;
        r->prediction_c = an.prediction_c;
        r->lambda2 = an.lambda2;
        r->epidemic_threshold = an.epidemic_threshold;
    }
    sim_flood_json(s->g, pub, s->cfg->adapters, s->cfg->adapter_bytes, r);
out:
    free(dist);
    free(queue);
    free(pub);
    return rc;
}

/* ---- public ---- */

void sim_report_free(struct sim_report *r)
{
    if (r == NULL)
        return;
    free(r->rounds_to_coverage);
    free(r->eccentricity);
    free(r->bad);
    free(r->coverage_by_round);
    free(r->equivocator_node);
    free(r->equiv_signed);
    free(r->equiv_detected);
    free(r->equiv_seen);
    free(r->m_coverage);
    free(r->m_entropy);
    free(r->m_mi);
    free(r->m_mi_delta);
    free(r->m_aa_mi);
    free(r->m_cooc);
    free(r);
}

static struct sim_report *report_new(uint32_t n_ads, uint32_t max_rounds, uint32_t eqv)
{
    struct sim_report *r = calloc(1, sizeof(*r));
    size_t pairs = (size_t)eqv * n_ads, nr = (size_t)max_rounds + 1;
    double **m[] = { &r->m_coverage, &r->m_entropy, &r->m_mi, &r->m_mi_delta, &r->m_aa_mi, &r->m_cooc };
    bool ok = true;

    if (r == NULL)
        return NULL;
    for (size_t k = 0; k < sizeof(m) / sizeof(m[0]); k++)
        ok = (*m[k] = calloc(nr, sizeof(double))) != NULL && ok;
    r->equivocators = eqv;
    r->equivocator_node = calloc(eqv + 1, sizeof(*r->equivocator_node));
    r->equiv_signed = malloc((pairs + 1) * sizeof(*r->equiv_signed));
    r->equiv_detected = malloc((pairs + 1) * sizeof(*r->equiv_detected));
    r->equiv_seen = malloc((pairs + 1) * sizeof(*r->equiv_seen));
    if (!ok || r->equivocator_node == NULL || r->equiv_signed == NULL || r->equiv_detected == NULL ||
        r->equiv_seen == NULL) {
        sim_report_free(r);
        return NULL;
    }
    for (size_t k = 0; k < pairs; k++)
        r->equiv_signed[k] = r->equiv_detected[k] = r->equiv_seen[k] = -1;
    r->rounds_to_coverage = malloc(n_ads * sizeof(*r->rounds_to_coverage));
    r->eccentricity = calloc(n_ads, sizeof(*r->eccentricity));
    r->bad = calloc(n_ads, sizeof(*r->bad));
    r->coverage_by_round = calloc(max_rounds + 1, sizeof(*r->coverage_by_round));
    if (r->rounds_to_coverage == NULL || r->eccentricity == NULL || r->bad == NULL ||
        r->coverage_by_round == NULL) {
        sim_report_free(r);
        return NULL;
    }
    for (uint32_t a = 0; a < n_ads; a++)
        r->rounds_to_coverage[a] = -1;
    r->adapters = n_ads;
    r->equivocation_round = -1;
    return r;
}

static void sim_free(struct sim *s)
{
    for (uint32_t i = 0; s->nodes != NULL && i < s->n; i++) {
        gossip_free(s->nodes[i].g);
        free(s->nodes[i].stored);
        free(s->nodes[i].flags);
    }
    for (uint32_t a = 0; s->ads != NULL && a < s->n_ads; a++) {
        for (size_t k = 0; s->ads[a].chunk_frames != NULL && k < s->ads[a].n_chunks; k++)
            free(s->ads[a].chunk_frames[k]);
        free(s->ads[a].chunk_frames);
        free(s->ads[a].chunk_lens);
        free(s->ads[a].bytes);
        free(s->ads[a].manifest_frame);
    }
    for (size_t i = 0; i < s->q.n; i++)
        free(s->q.v[i].owned);
    for (size_t i = 0; i < s->now_n; i++) {
        free(s->now_q[s->now_head + i].owned);
        free(s->now_q[s->now_head + i].owned2);
    }
    free(s->q.v);
    free(s->now_q);
    free(s->ads);
    free(s->nodes);
    free(s->keys);
    free(s->rev);
    free(s->gen);
    free(s->up);
    free(s->eq_bits);
    gossip_actions_free(&s->act);
    graph_free(s->g);
}

/* Defaults filled in, parameters checked: 0 or -1 (err names the option). */
static int config_check(const struct sim_config *in, struct sim_config *c, char *err, size_t n)
{
    struct graph_diag d;

    *c = *in;
    c->latency_ms = c->latency_ms ? c->latency_ms : 20;
    c->bandwidth = c->bandwidth ? c->bandwidth : 125000000ull;
    c->round_ms = c->round_ms ? c->round_ms : 1000;
    c->chunk_size = c->chunk_size ? c->chunk_size : 256u << 10;
    c->max_rounds = c->max_rounds ? c->max_rounds : 200;
    if (graph_params_check(&c->graph, 0, &d) != 0)
        return snprintf(err, n, "%s", d.msg), -1;
    if (c->adapters < 1 || c->adapters > 64)
        return snprintf(err, n, "--adapters: %u is outside 1..64", c->adapters), -1;
    if (c->adapter_bytes < 1 || c->adapter_bytes > (64ull << 20))
        return snprintf(err, n, "--adapter-bytes: %" PRIu64 " is outside 1..67108864", c->adapter_bytes), -1;
    if (c->chunk_size > MSG_CHUNK_MAX)
        return snprintf(err, n, "chunk size %u is over %u", c->chunk_size, (unsigned)MSG_CHUNK_MAX), -1;
    if ((uint64_t)c->faults.mal_voters + c->faults.equivocators + c->faults.mal_publishers > c->graph.n)
        return snprintf(err, n, "--faults: more malicious nodes than -n %u", c->graph.n), -1;
    if (c->faults.crash > c->graph.n)
        return snprintf(err, n, "--faults: crash=%u is more than -n %u", c->faults.crash, c->graph.n), -1;
    if (c->faults.mal_publishers > 64)
        return snprintf(err, n, "--faults: malicious-publishers=%u is over 64", c->faults.mal_publishers), -1;
    return 0;
}

int sim_run(const struct sim_config *in, struct sim_report **out, char *err, size_t err_len)
{
    struct sim_config c;
    struct sim s = { 0 };
    struct graph *raw = NULL;
    struct graph_diag d;
    size_t added = 0;
    int rc;

    *out = NULL;
    if ((rc = config_check(in, &c, err, err_len)) != 0)
        return rc;
    s.cfg = &c;
    s.round_us = (uint64_t)c.round_ms * 1000;
    s.latency_us = (uint64_t)c.latency_ms * 1000;
    s.bw = c.bandwidth;
    s.n_ads = c.adapters + c.faults.mal_publishers;
    graph_rng_seed(&s.rng, c.graph.seed ^ 0x5eed5eed5eed5eedull);
    graph_rng_seed(&s.frng, c.graph.seed ^ 0xc4a5c4a5c4a5c4a5ull);
    if ((rc = graph_generate(&raw, &c.graph, &d)) != 0) {
        snprintf(err, err_len, "%s", d.msg);
        return rc == GRAPH_E_PARAM || rc == GRAPH_E_TOO_BIG ? -1 : -2;
    }
    rc = graph_connect(&s.g, raw, &added, &d) != 0 ? -2 : 0;
    graph_free(raw);
    if (rc == 0 && ((s.r = report_new(s.n_ads, c.max_rounds, c.faults.equivocators)) == NULL ||
                    (s.eq_bits = calloc((size_t)c.faults.equivocators * s.n_ads + 1, 1)) == NULL))
        rc = -2;
    if (rc == 0) {
        s.n = graph_n(s.g);
        s.off = graph_csr_offsets(s.g);
        s.tgt = graph_csr_targets(s.g);
        s.r->n = s.n;
        s.r->edges = graph_m(s.g);
        rc = nodes_build(&s);
    }
    if (rc == 0)
        rc = roles_and_adapters(&s);
    if (rc == 0)
        rc = analyse(&s, s.r);
    if (rc == 0)
        rc = links_build(&s);
    if (rc == 0 && c.mode == SIM_PLORAD) {
        uint32_t settle = 2;
        for (uint32_t a = 0; a < s.n_ads; a++)
            settle = s.r->eccentricity[a] + 2 > settle ? s.r->eccentricity[a] + 2 : settle;
        publish_all(&s);
        rc = schedule_crashes(&s);
        run_loop(&s, c.faults.quorum > 1 || c.faults.equivocators > 0 ? settle : 0);
        rc = s.err;
    }
    if (rc == 0) {
        double ideal = (double)(s.n - 1) * (double)c.adapter_bytes * s.n_ads;
        s.r->duplicate_payload_factor = s.r->payload_bytes / ideal;
        for (uint32_t k = 1; k < s.r->rounds; k++)   /* mean I_t - I_{t-1}, t = 2..rounds */
            s.r->network_flow_rate += s.r->m_mi_delta[k] / (s.r->rounds - 1);
        *out = s.r;
        s.r = NULL;
    } else if (rc == -2) {
        snprintf(err, err_len, "out of memory");
    }
    sim_report_free(s.r);
    sim_free(&s);
    return rc;
}

/* ---- --faults ---- */

static int parse_u32(const char *key, const char *v, uint32_t *out, char *err, size_t n)
{
    char *end;
    unsigned long long x;

    if (*v < '0' || *v > '9')
        return snprintf(err, n, "--faults: %s=%s is not a count", key, v), -1;
    x = strtoull(v, &end, 10);
    if (*end != '\0' || x > UINT32_MAX)
        return snprintf(err, n, "--faults: %s=%s is not a count", key, v), -1;
    *out = (uint32_t)x;
    return 0;
}

static int parse_prob(const char *key, const char *v, double *out, char *err, size_t n)
{
    char *end;
    double x = strtod(v, &end);

    if (end == v || *end != '\0' || !(x >= 0 && x < 1))
        return snprintf(err, n, "--faults: %s=%s is not a probability in [0, 1)", key, v), -1;
    *out = x;
    return 0;
}

static int fault_one(char *kv, struct sim_faults *f, char *err, size_t n)
{
    char *v = strchr(kv, '=');

    if (v == NULL)
        return snprintf(err, n, "--faults: '%s' is not key=value", kv), -1;
    *v++ = '\0';
    if (strcmp(kv, "drop") == 0)
        return parse_prob(kv, v, &f->drop, err, n);
    if (strcmp(kv, "partition") == 0) {
        char *dash = strchr(v, '-');
        if (dash == NULL)
            return snprintf(err, n, "--faults: partition=%s is not R1-R2", v), -1;
        *dash = '\0';
        if (parse_u32(kv, v, &f->part_lo, err, n) != 0 || parse_u32(kv, dash + 1, &f->part_hi, err, n) != 0)
            return -1;
        if (f->part_lo < 1 || f->part_hi < f->part_lo)
            return snprintf(err, n, "--faults: partition=%u-%u needs 1 <= R1 <= R2", f->part_lo, f->part_hi), -1;
        return 0;
    }
    if (strcmp(kv, "malicious-publishers") == 0)
        return parse_u32(kv, v, &f->mal_publishers, err, n);
    if (strcmp(kv, "malicious-voters") == 0)
        return parse_u32(kv, v, &f->mal_voters, err, n);
    if (strcmp(kv, "equivocators") == 0)
        return parse_u32(kv, v, &f->equivocators, err, n);
    if (strcmp(kv, "quorum") == 0) {
        if (parse_u32(kv, v, &f->quorum, err, n) != 0)
            return -1;
        return f->quorum == 0 ? (snprintf(err, n, "--faults: quorum=0 must be at least 1"), -1) : 0;
    }
    if (strcmp(kv, "crash") == 0)
        return parse_u32(kv, v, &f->crash, err, n);
    if (strcmp(kv, "churn") == 0)
        return parse_prob(kv, v, &f->churn, err, n);
    return snprintf(err, n, "--faults: unknown key '%s'", kv), -1;
}

int sim_faults_parse(const char *spec, struct sim_faults *f, char *err, size_t err_len)
{
    char *copy = strdup(spec), *save = NULL, *tok;
    int rc = 0;

    memset(f, 0, sizeof(*f));
    if (copy == NULL)
        return snprintf(err, err_len, "--faults: out of memory"), -1;
    for (tok = strtok_r(copy, ",", &save); tok != NULL && rc == 0; tok = strtok_r(NULL, ",", &save))
        rc = fault_one(tok, f, err, err_len);
    free(copy);
    return rc;
}
