/* tests/unit/test_gossip.c: the sans-I/O engine driven by an in-memory driver.
 *
 * The driver here is a small simulator: nodes, links carrying whole frames
 * through a frame_reader, and synchronous stand-ins for the driver's work
 * (a keyed-hash "signature" sig = sha256(pk || message), SHA-256 of the
 * stored bytes, a gate that rejects adapters listed as bad). Results of that
 * work are delivered before any further frame, as the daemon does by pausing
 * a connection while its HELLO_ACK is verified.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"
#include "gossip.h"
#include "msg.h"
#include "sha256.h"

#define NMAX 8
#define LMAX 16
#define SMAX 4
#define CONN0 100u   /* conn handle of link L on both of its ends: CONN0 + L */

static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

struct blob {
    msg_id id;
    uint8_t *bytes;     /* held adapter (senders) */
    size_t n;
    uint8_t *tmp;       /* temp file (receivers) */
    size_t tmp_n, tmp_cap;
    bool used;
};

struct node {
    struct gossip *g;
    uint8_t pk[64];
    msg_id id;
    char addr[32];
    struct blob st[SMAX];
    int corrupt;                  /* flips a byte of every adapter it sends */
    msg_id bad;                   /* the gate rejects this id */
    int commits, strikes, last_strike, byes_sent, equivocations, authed, members_events;
    int votes_sent, vids_asked;   /* VOTE frames sent; WANT.vids entries sent */
    int audits[5];
    size_t chunk_bytes_in;
};

struct link {
    int end[2];
    bool up;
    struct frame_reader *r[2];    /* r[i]: bytes arriving at end[i] */
    int cut_after;                /* close the link after this many CHUNKs (0 = never) */
    int chunks;
};

struct qe {
    int node;
    struct gossip_event ev;
    uint8_t *b1, *b2;             /* owned copies behind ev.body / ev.sig */
};

struct queue {
    struct qe *v;
    size_t head, n, cap;
};

static struct node nodes[NMAX];
static struct link links[LMAX];
static int n_nodes, n_links;
static struct queue mainq, nowq;  /* nowq: results of driver work, served first */
static uint64_t now;
static uint64_t trace;            /* FNV-1a over every action: determinism check */
static bool push_mode;            /* gossip_config.push for the next setup_nodes */
static size_t payload_moved;

static void q_push(struct queue *q, int node, const struct gossip_event *ev, const struct msg_bytes *b1,
                   const struct msg_bytes *b2)
{
    struct qe *e;

    if (q->head + q->n == q->cap) {
        if (q->head > 0) {
            memmove(q->v, q->v + q->head, q->n * sizeof(*q->v));
            q->head = 0;
        } else {
            q->cap = q->cap ? q->cap * 2 : 64;
            q->v = realloc(q->v, q->cap * sizeof(*q->v));
            assert_non_null(q->v);
        }
    }
    e = &q->v[q->head + q->n++];
    e->node = node;
    e->ev = *ev;
    e->b1 = e->b2 = NULL;
    if (b1 != NULL && b1->n > 0) {
        e->b1 = malloc(b1->n);
        memcpy(e->b1, b1->p, b1->n);
        e->ev.body = (struct msg_bytes){ e->b1, b1->n };
    }
    if (b2 != NULL && b2->n > 0) {
        e->b2 = malloc(b2->n);
        memcpy(e->b2, b2->p, b2->n);
        e->ev.sig = (struct msg_bytes){ e->b2, b2->n };
    }
}

static void fake_sign(const uint8_t *pk, const uint8_t *m, size_t n, uint8_t sig[32])
{
    uint8_t *buf = malloc(64 + n);
    memcpy(buf, pk, 64);
    memcpy(buf + 64, m, n);
    assert_int_equal(sha256(buf, 64 + n, sig), 0);
    free(buf);
}

static int node_of_key(const uint8_t *id)
{
    for (int i = 0; i < n_nodes; i++)
        if (memcmp(nodes[i].id, id, 32) == 0)
            return i;
    return -1;
}

static struct blob *blob_get(struct node *nd, const uint8_t *id, bool create)
{
    for (int i = 0; i < SMAX; i++)
        if (nd->st[i].used && memcmp(nd->st[i].id, id, 32) == 0)
            return &nd->st[i];
    for (int i = 0; create && i < SMAX; i++)
        if (!nd->st[i].used) {
            memset(&nd->st[i], 0, sizeof(nd->st[i]));
            nd->st[i].used = true;
            memcpy(nd->st[i].id, id, 32);
            return &nd->st[i];
        }
    fail_msg("no store slot");
    return NULL;
}

static int side_of(int L, int node)
{
    return links[L].end[0] == node ? 0 : 1;
}

static void link_down(int L)
{
    struct gossip_event ev = { .type = GOSSIP_EV_PEER_DOWN, .conn = CONN0 + (uint32_t)L };

    if (!links[L].up)
        return;
    links[L].up = false;
    for (int s = 0; s < 2; s++) {
        ev.now_ms = now;
        q_push(&mainq, links[L].end[s], &ev, NULL, NULL);
    }
}

/* A frame leaves `from` on link L: through the receiver's frame_reader. */
static void deliver(int from, uint32_t conn, const uint8_t *f, size_t n)
{
    int L = (int)(conn - CONN0), to_side = 1 - side_of(L, from);
    struct frame_reader *r = links[L].r[to_side];
    const uint8_t *body;
    size_t len;
    int rc;

    if (!links[L].up)
        return;
    assert_int_equal(frame_reader_feed(r, f, n, NULL), 0);
    while ((rc = frame_reader_next(r, &body, &len, NULL)) == 0) {
        struct gossip_event ev = { .type = GOSSIP_EV_FRAME, .conn = conn, .now_ms = now };
        struct msg_bytes b = { body, len };
        q_push(&mainq, links[L].end[to_side], &ev, &b, NULL);
    }
    assert_int_equal(rc, PROTO_E_NEED_MORE);
}

/* MANIFEST + CHUNKs, the chunks through msg_chunk_head (zero-copy path). */
static void send_adapter(int ni, const struct gossip_action *x)
{
    struct node *nd = &nodes[ni];
    struct blob *b = blob_get(nd, x->id, false);
    struct msg m = { .type = MSG_MANIFEST };
    uint8_t *f, cfg[16] = "{\"r\": 8}";
    size_t n;
    int L = (int)(x->conn - CONN0);

    memcpy(m.u.manifest.id, x->id, 32);
    strcpy(m.u.manifest.domain, x->domain);
    m.u.manifest.size = b->n;
    m.u.manifest.config = (struct msg_bytes){ cfg, 8 };
    assert_int_equal(msg_encode(&m, &f, &n, NULL), 0);
    deliver(ni, x->conn, f, n);
    free(f);
    assert_int_equal(x->count, 4096);
    assert_int_equal(x->size, b->n);
    for (uint64_t off = x->off; off < b->n && links[L].up; off += x->count) {
        size_t k = b->n - off < x->count ? b->n - off : x->count, hn;
        uint8_t *fr = malloc(MSG_CHUNK_HEAD_MAX + k);
        assert_int_equal(msg_chunk_head(fr, MSG_CHUNK_HEAD_MAX, &hn, x->id, off, k), 0);
        memcpy(fr + hn, b->bytes + off, k);
        if (nd->corrupt)
            fr[hn] ^= 0x55;
        deliver(ni, x->conn, fr, hn + k);
        free(fr);
        payload_moved += k;
        if (links[L].cut_after && ++links[L].chunks == links[L].cut_after)
            link_down(L);
    }
}

static void verify_vote(int ni, const struct gossip_action *x)
{
    struct gossip_event ev = { .type = GOSSIP_EV_VOTE, .now_ms = now, .conn = x->conn };
    int signer = node_of_key(x->by);
    uint8_t sig[32];

    memcpy(ev.id, x->id, 32);
    memcpy(ev.by, x->by, 32);
    memcpy(ev.from, x->from, 32);
    ev.accept = x->data.n == 35 && x->data.p[34] == 1;
    if (signer >= 0 && x->data.n == 35 && memcmp(x->data.p + 2, x->id, 32) == 0 && x->data2.n == 32) {
        fake_sign(nodes[signer].pk, x->data.p, x->data.n, sig);
        ev.ok = memcmp(sig, x->data2.p, 32) == 0;
    }
    q_push(&nowq, ni, &ev, &x->data, &x->data2);
}

/* Our own vote: body "V|" id accept, signed with our key. */
static void sign_vote(int ni, const struct gossip_action *x)
{
    struct gossip_event ev = { .type = GOSSIP_EV_VOTE, .now_ms = now, .ok = true, .accept = x->accept };
    uint8_t body[35] = { 'V', '|' }, sig[32];

    memcpy(body + 2, x->id, 32);
    body[34] = x->accept;
    fake_sign(nodes[ni].pk, body, 35, sig);
    memcpy(ev.id, x->id, 32);
    memcpy(ev.by, nodes[ni].id, 32);
    q_push(&nowq, ni, &ev, &(struct msg_bytes){ body, 35 }, &(struct msg_bytes){ sig, 32 });
}

static void store_chunk(struct node *nd, const struct gossip_action *x)
{
    struct blob *b = blob_get(nd, x->id, true);

    assert_int_equal(x->off, b->tmp_n);   /* the engine only stores in order */
    if (b->tmp_cap < b->tmp_n + x->data.n) {
        b->tmp_cap = (b->tmp_n + x->data.n) * 2;
        b->tmp = realloc(b->tmp, b->tmp_cap);
    }
    memcpy(b->tmp + b->tmp_n, x->data.p, x->data.n);
    b->tmp_n += x->data.n;
    nd->chunk_bytes_in += x->data.n;
}

static void adapter_verify(int ni, const struct gossip_action *x)
{
    struct node *nd = &nodes[ni];
    struct blob *b = blob_get(nd, x->id, false);
    struct gossip_event ev = { .type = GOSSIP_EV_ADAPTER_VERIFIED, .now_ms = now };
    msg_id h;

    assert_int_equal(sha256(b->tmp, b->tmp_n, h), 0);
    memcpy(ev.id, x->id, 32);
    ev.ok = b->tmp_n == x->size && memcmp(h, x->id, 32) == 0;
    if (ev.ok) {
        b->bytes = b->tmp;
        b->n = b->tmp_n;
        b->tmp = NULL;
        b->tmp_n = b->tmp_cap = 0;
    }
    q_push(&nowq, ni, &ev, NULL, NULL);
}

static void mix(uint64_t v)
{
    trace = (trace ^ v) * 0x100000001b3ULL;
}

static void execute(int ni, const struct gossip_action *x)
{
    struct node *nd = &nodes[ni];
    struct gossip_event ev = { .now_ms = now, .conn = x->conn };
    uint8_t sig[32];

    mix((uint64_t)ni << 32 | (uint64_t)x->type << 16 | x->conn);
    switch (x->type) {
    case GOSSIP_ACT_SEND:
        if (x->frame.n > 8 && x->frame.p[7] == MSG_BYE)   /* 4-byte prefix, 84 a1 't' 0a */
            nd->byes_sent++;
        nd->votes_sent += x->frame.n > 8 && x->frame.p[7] == MSG_VOTE;
        if (x->frame.n > 8 && x->frame.p[7] == MSG_WANT) {
            struct msg *m = NULL;
            assert_int_equal(msg_decode(x->frame.p + 4, x->frame.n - 4, NULL, &m, NULL), 0);
            nd->vids_asked += (int)m->u.want.n_vids;
            assert_true(m->u.want.n_vids == 0 || m->u.want.vhave != NULL);   /* always summarised */
            msg_free(m);
        }
        deliver(ni, x->conn, x->frame.p, x->frame.n);
        break;
    case GOSSIP_ACT_CLOSE: link_down((int)(x->conn - CONN0)); break;
    case GOSSIP_ACT_STRIKE: nd->strikes++, nd->last_strike = x->code; break;
    case GOSSIP_ACT_AUTHENTICATED: {
        int L = (int)(x->conn - CONN0);
        nd->authed++;
        assert_int_equal(frame_reader_set_max(links[L].r[side_of(L, ni)], FRAME_MAX), 0);
        break;
    }
    case GOSSIP_ACT_SIGN_AUTH:
        fake_sign(nd->pk, x->auth, MSG_AUTH_INPUT_LEN, sig);
        ev.type = GOSSIP_EV_AUTH_SIGNED;
        q_push(&nowq, ni, &ev, NULL, &(struct msg_bytes){ sig, 32 });
        break;
    case GOSSIP_ACT_VERIFY_AUTH:
        assert_int_equal(x->pk.n, 64);
        fake_sign(x->pk.p, x->auth, MSG_AUTH_INPUT_LEN, sig);
        ev.type = GOSSIP_EV_AUTH_VERIFIED;
        ev.ok = x->sig.n == 32 && memcmp(sig, x->sig.p, 32) == 0;
        q_push(&nowq, ni, &ev, NULL, NULL);
        break;
    case GOSSIP_ACT_SEND_ADAPTER: send_adapter(ni, x); break;
    case GOSSIP_ACT_STORE_MANIFEST: assert_int_equal(x->data.n, 8); break;
    case GOSSIP_ACT_STORE_CHUNK: store_chunk(nd, x); break;
    case GOSSIP_ACT_VERIFY_ADAPTER: adapter_verify(ni, x); break;
    case GOSSIP_ACT_DISCARD: {
        struct blob *b = blob_get(nd, x->id, false);
        free(b->tmp);
        b->tmp = NULL;
        b->tmp_n = b->tmp_cap = 0;
        break;
    }
    case GOSSIP_ACT_RUN_GATE:
        ev.type = GOSSIP_EV_GATE_VERDICT;
        memcpy(ev.id, x->id, 32);
        ev.accept = memcmp(x->id, nd->bad, 32) != 0;
        q_push(&nowq, ni, &ev, NULL, NULL);
        break;
    case GOSSIP_ACT_SIGN_VOTE: sign_vote(ni, x); break;
    case GOSSIP_ACT_VERIFY_VOTE: verify_vote(ni, x); break;
    case GOSSIP_ACT_COMMIT: nd->commits++; break;
    case GOSSIP_ACT_AUDIT:
        nd->audits[x->audit]++;
        nd->equivocations += x->audit == GOSSIP_AUDIT_EQUIVOCATION;
        break;
    case GOSSIP_ACT_MEMBERS: nd->members_events++; break;
    }
}

static void step(int ni, const struct gossip_event *ev)
{
    struct gossip_actions act = { 0 };

    assert_int_equal(gossip_step(nodes[ni].g, ev, &act), 0);
    for (size_t i = 0; i < act.n; i++)
        execute(ni, &act.v[i]);
    gossip_actions_free(&act);
}

/* Serve driver results first, then frames and link events, until quiet. */
static void drain(void)
{
    for (;;) {
        struct queue *q = nowq.n > 0 ? &nowq : &mainq;
        struct qe e;
        if (q->n == 0)
            return;
        e = q->v[q->head++];
        q->n--;
        if (q->n == 0)
            q->head = 0;
        e.ev.now_ms = now;
        step(e.node, &e.ev);
        free(e.b1);
        free(e.b2);
    }
}

static void setup_nodes(int n, uint32_t quorum, uint64_t seed)
{
    rng_state = seed;
    trace = 0xcbf29ce484222325ULL;
    payload_moved = 0;
    now = 0;
    memset(nodes, 0, sizeof(nodes));
    memset(links, 0, sizeof(links));
    n_nodes = n;
    n_links = 0;
    for (int i = 0; i < n; i++) {
        struct gossip_config cfg = { .pk_len = 64, .quorum = quorum, .round_ms = 1000,
                                     .push = push_mode, .chunk_size = 4096 };
        for (int k = 0; k < 64; k++)
            nodes[i].pk[k] = (uint8_t)rng();
        assert_int_equal(sha256(nodes[i].pk, 64, nodes[i].id), 0);
        snprintf(nodes[i].addr, sizeof(nodes[i].addr), "10.0.0.%d:7000", i + 1);
        memcpy(cfg.self, nodes[i].id, 32);
        cfg.pk = nodes[i].pk;
        cfg.addr = nodes[i].addr;
        assert_int_equal(gossip_new(&nodes[i].g, &cfg), 0);
    }
}

static void teardown_nodes(void)
{
    for (int i = 0; i < n_nodes; i++) {
        gossip_free(nodes[i].g);
        for (int k = 0; k < SMAX; k++) {
            if (nodes[i].st[k].bytes != nodes[i].st[k].tmp)
                free(nodes[i].st[k].bytes);
            free(nodes[i].st[k].tmp);
        }
    }
    for (int L = 0; L < n_links; L++)
        for (int s = 0; s < 2; s++)
            frame_reader_free(links[L].r[s]);
    free(mainq.v);
    free(nowq.v);
    memset(&mainq, 0, sizeof(mainq));
    memset(&nowq, 0, sizeof(nowq));
}

/* a dials b: returns the link index. */
static int connect_nodes(int a, int b)
{
    int L = n_links++;
    struct gossip_event ev = { .type = GOSSIP_EV_PEER_UP, .conn = CONN0 + (uint32_t)L, .now_ms = now };

    assert_true(L < LMAX);
    links[L].end[0] = a;
    links[L].end[1] = b;
    links[L].up = true;
    for (int s = 0; s < 2; s++)
        assert_int_equal(frame_reader_new(&links[L].r[s], FRAME_MAX_PREAUTH), 0);
    for (int s = 0; s < 2; s++) {
        ev.outbound = s == 0;
        for (unsigned k = 0; k < MSG_NONCE_LEN; k++)
            ev.nonce[k] = (uint8_t)rng();
        q_push(&mainq, links[L].end[s], &ev, NULL, NULL);
    }
    drain();
    return L;
}

/* Publish `n` random bytes at node ni; returns the adapter id in id. */
static void publish(int ni, size_t n, const char *domain, uint8_t id[32])
{
    uint8_t *bytes = malloc(n);
    struct gossip_event ev = { .type = GOSSIP_EV_ADAPTER, .now_ms = now, .domain = domain, .size = n,
                               .stored = n };
    struct blob *b;

    for (size_t i = 0; i < n; i++)
        bytes[i] = (uint8_t)rng();
    assert_int_equal(sha256(bytes, n, id), 0);
    b = blob_get(&nodes[ni], id, true);
    b->bytes = bytes;
    b->n = n;
    memcpy(ev.id, id, 32);
    step(ni, &ev);
    drain();
}

static void rounds(int k)
{
    for (int r = 0; r < k; r++) {
        struct gossip_event ev = { .type = GOSSIP_EV_TICK };
        for (int i = 0; i < n_nodes; i++) {
            ev.now_ms = now;
            step(i, &ev);
            drain();
        }
        now += 1000;
    }
}

static int holders(const uint8_t id[32])
{
    int h = 0;
    for (int i = 0; i < n_nodes; i++)
        h += gossip_adapter_state(nodes[i].g, id) >= GOSSIP_AD_HELD;
    return h;
}

/* ---- tests ---- */

static void test_handshake(void **state)
{
    setup_nodes(2, 1, 1);
    connect_nodes(0, 1);
    assert_int_equal(nodes[0].authed, 1);
    assert_int_equal(nodes[1].authed, 1);
    assert_int_equal(nodes[0].strikes + nodes[1].strikes, 0);
    assert_int_equal(gossip_members(nodes[0].g, NULL, 0), 2);
    assert_int_equal(gossip_members(nodes[1].g, NULL, 0), 2);
    {
        struct msg_peer m[2];
        gossip_members(nodes[0].g, m, 2);
        assert_true(memcmp(m[0].id, m[1].id, 32) < 0);   /* sorted */
    }
    teardown_nodes();
}

/* Publish at 0, quorum 2: 1 fetches, both gate, votes cross, both commit. */
static void test_transfer_vote_commit(void **state)
{
    uint8_t id[32];

    setup_nodes(2, 2, 2);
    connect_nodes(0, 1);
    publish(0, 100000, "gpt2-c_attn-r8", id);
    assert_int_equal(gossip_adapter_state(nodes[0].g, id), GOSSIP_AD_HELD);
    rounds(4);
    assert_int_equal(gossip_adapter_state(nodes[1].g, id), GOSSIP_AD_COMMITTED);
    assert_int_equal(gossip_adapter_state(nodes[0].g, id), GOSSIP_AD_COMMITTED);
    assert_memory_equal(blob_get(&nodes[1], id, false)->bytes, blob_get(&nodes[0], id, false)->bytes, 100000);
    assert_int_equal(nodes[1].chunk_bytes_in, 100000);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(nodes[i].commits, 1);
        assert_int_equal(nodes[i].audits[GOSSIP_AUDIT_GATE], 1);
        assert_int_equal(nodes[i].audits[GOSSIP_AUDIT_VOTE], 2);
        assert_int_equal(nodes[i].audits[GOSSIP_AUDIT_COMMIT], 1);
    }
    teardown_nodes();
}

/* A path 0-1-2-3-4: the adapter reaches every node, each byte crosses each
 * edge once (one source at a time: duplicate payload factor 1.0). */
static void test_path_coverage(void **state)
{
    uint8_t id[32];
    int when[5] = { 0 };

    setup_nodes(5, 1, 3);
    for (int i = 0; i + 1 < 5; i++)
        connect_nodes(i, i + 1);
    publish(0, 50000, "legal", id);
    for (int r = 1; r <= 8 && holders(id) < 5; r++) {
        rounds(1);
        for (int i = 0; i < 5; i++)
            if (when[i] == 0 && gossip_adapter_state(nodes[i].g, id) >= GOSSIP_AD_HELD)
                when[i] = r;
    }
    assert_int_equal(holders(id), 5);
    for (int i = 1; i < 5; i++)
        assert_true(when[i] >= when[i - 1]);   /* it travels along the path */
    assert_true(when[4] <= 4);                 /* eccentricity 4, one hop a round at worst */
    assert_int_equal(payload_moved, 4 * 50000);
    for (int i = 0; i < 5; i++)
        assert_int_equal(gossip_adapter_state(nodes[i].g, id), GOSSIP_AD_COMMITTED);   /* quorum 1 */
    teardown_nodes();
}

/* With push, a publication floods the path at once, without a single
 * round, and still each byte crosses each edge once. */
static void test_push(void **state)
{
    uint8_t id[32];

    push_mode = true;
    setup_nodes(5, 1, 3);
    push_mode = false;
    for (int i = 0; i + 1 < 5; i++)
        connect_nodes(i, i + 1);
    publish(2, 50000, "legal", id);
    assert_int_equal(gossip_round(nodes[0].g), 0);
    assert_int_equal(holders(id), 5);
    assert_int_equal(payload_moved, 4 * 50000);
    teardown_nodes();
}

/* The link drops after 3 chunks; on a new link the fetch resumes at the
 * stored offset: every byte arrives exactly once. */
static void test_resume(void **state)
{
    uint8_t id[32];
    int L;

    setup_nodes(2, 1, 4);
    L = connect_nodes(0, 1);
    links[L].cut_after = 3;
    publish(0, 40000, "medical", id);
    rounds(1);
    drain();
    assert_false(links[L].up);
    assert_int_equal(gossip_adapter_state(nodes[1].g, id), GOSSIP_AD_PARTIAL);
    assert_int_equal(nodes[1].chunk_bytes_in, 3 * 4096);
    connect_nodes(0, 1);
    rounds(2);
    assert_int_equal(gossip_adapter_state(nodes[1].g, id), GOSSIP_AD_COMMITTED);
    assert_int_equal(nodes[1].chunk_bytes_in, 40000);
    assert_memory_equal(blob_get(&nodes[1], id, false)->bytes, blob_get(&nodes[0], id, false)->bytes, 40000);
    teardown_nodes();
}

/* A sender whose bytes don't hash to the id: discarded, struck, closed;
 * an honest second source then delivers it. */
static void test_bad_hash(void **state)
{
    uint8_t id[32];

    setup_nodes(3, 1, 5);
    connect_nodes(0, 1);
    publish(0, 20000, "legal", id);
    nodes[0].corrupt = 1;
    rounds(1);
    assert_int_equal(nodes[1].strikes, 1);
    assert_int_equal(nodes[1].last_strike, PROTO_E_HASH);
    assert_int_equal(gossip_adapter_state(nodes[1].g, id), GOSSIP_AD_PARTIAL);
    assert_false(links[0].up);
    /* node 2 gets a clean copy from 0, then 1 fetches it from 2 */
    nodes[0].corrupt = 0;
    connect_nodes(0, 2);
    connect_nodes(2, 1);
    rounds(3);
    assert_int_equal(gossip_adapter_state(nodes[1].g, id), GOSSIP_AD_COMMITTED);
    teardown_nodes();
}

/* The gate rejects at node 1: it votes REJECT and never commits; node 0
 * (quorum 2) sees one ACCEPT and one REJECT and never commits either. */
static void test_gate_reject(void **state)
{
    uint8_t id[32];

    setup_nodes(2, 2, 6);
    connect_nodes(0, 1);
    publish(0, 5000, "legal", id);
    memcpy(nodes[1].bad, id, 32);
    rounds(4);
    assert_int_equal(gossip_adapter_state(nodes[1].g, id), GOSSIP_AD_HELD);
    assert_int_equal(gossip_adapter_state(nodes[0].g, id), GOSSIP_AD_HELD);
    assert_int_equal(nodes[0].commits + nodes[1].commits, 0);
    assert_int_equal(nodes[0].audits[GOSSIP_AUDIT_VOTE], 2);
    teardown_nodes();
}

/* One key signs ACCEPT and REJECT: evidence kept, audited, counted for neither. */
static void test_equivocation(void **state)
{
    uint8_t id[32], body[35] = { 'V', '|' }, sig[32];
    struct gossip_event ev = { .type = GOSSIP_EV_VOTE, .ok = true };

    setup_nodes(4, 2, 7);
    publish(0, 1000, "legal", id);   /* node 0 gates it and votes ACCEPT itself */
    assert_int_equal(nodes[0].audits[GOSSIP_AUDIT_VOTE], 1);
    memcpy(body + 2, id, 32);
    memcpy(ev.id, id, 32);
    for (int verdict = 0; verdict <= 1; verdict++) {   /* node 3 equivocates */
        body[34] = (uint8_t)verdict;
        fake_sign(nodes[3].pk, body, 35, sig);
        memcpy(ev.by, nodes[3].id, 32);
        ev.accept = verdict;
        ev.body = (struct msg_bytes){ body, 35 };
        ev.sig = (struct msg_bytes){ sig, 32 };
        step(0, &ev);
        drain();
    }
    assert_int_equal(nodes[0].equivocations, 1);
    assert_int_equal(nodes[0].commits, 0);   /* 0's ACCEPT + 3's (void) < 2 */
    step(0, &ev);                            /* the same ACCEPT again: ignored */
    assert_int_equal(nodes[0].audits[GOSSIP_AUDIT_VOTE], 3);
    body[34] = 1;                            /* an honest second ACCEPT from node 2 */
    fake_sign(nodes[2].pk, body, 35, sig);
    memcpy(ev.by, nodes[2].id, 32);
    ev.accept = true;
    step(0, &ev);
    drain();
    assert_int_equal(nodes[0].commits, 1);
    /* the equivocation evidence travels: node 1 pulls all four votes */
    connect_nodes(0, 1);
    rounds(3);
    assert_int_equal(nodes[1].equivocations, 1);
    assert_int_equal(gossip_adapter_state(nodes[1].g, id), GOSSIP_AD_COMMITTED);
    teardown_nodes();
}

/* Both dial at once: each end keeps the connection dialled by the smaller key. */
static void test_duplicate_connection(void **state)
{
    int La, Lb, keep;

    setup_nodes(2, 1, 8);
    La = connect_nodes(0, 1);
    Lb = connect_nodes(1, 0);
    keep = memcmp(nodes[0].id, nodes[1].id, 32) < 0 ? La : Lb;
    assert_true(links[keep].up);
    assert_false(links[keep == La ? Lb : La].up);
    assert_int_equal(nodes[0].strikes + nodes[1].strikes, 0);
    teardown_nodes();
}

/* Same seed, same run: the action trace is identical (the simulator's promise). */
static void test_deterministic(void **state)
{
    uint64_t t[2];
    uint8_t id[32];

    for (int run = 0; run < 2; run++) {
        setup_nodes(4, 2, 99);
        connect_nodes(0, 1), connect_nodes(1, 2), connect_nodes(2, 3), connect_nodes(3, 0);
        publish(0, 30000, "legal", id);
        publish(2, 20000, "medical", id);
        rounds(5);
        t[run] = trace;
        teardown_nodes();
    }
    assert_true(t[0] == t[1]);
}

/* ---- protocol faults against one engine, from a scripted peer ---- */

struct script {
    struct gossip *g;
    struct gossip_actions act;
    uint8_t peer_pk[64];
    msg_id peer_id;
    uint8_t peer_nonce[32];
};

static void script_frame_on(struct script *s, uint32_t conn, const struct msg *m)
{
    struct gossip_event ev = { .type = GOSSIP_EV_FRAME, .conn = conn, .now_ms = now };
    uint8_t *f;
    size_t n;

    assert_int_equal(msg_encode(m, &f, &n, NULL), 0);
    ev.body = (struct msg_bytes){ f + 4, n - 4 };
    assert_int_equal(gossip_step(s->g, &ev, &s->act), 0);
    free(f);
}

static void script_frame(struct script *s, const struct msg *m)
{
    script_frame_on(s, 7, m);
}

static void script_raw(struct script *s, const uint8_t *body, size_t n)
{
    struct gossip_event ev = { .type = GOSSIP_EV_FRAME, .conn = 7, .now_ms = now,
                               .body = { body, n } };
    assert_int_equal(gossip_step(s->g, &ev, &s->act), 0);
}

/* Connection `conn` from a scripted peer whose key is derived from `seed`,
 * taken through the handshake when `authed` (then the action list is emptied). */
static void script_peer(struct script *s, uint32_t conn, uint8_t seed, bool authed)
{
    struct gossip_event ev = { .type = GOSSIP_EV_PEER_UP, .conn = conn };
    struct msg h = { .type = MSG_HELLO };

    for (int k = 0; k < 64; k++)
        s->peer_pk[k] = (uint8_t)(k * 3 + seed);
    sha256(s->peer_pk, 64, s->peer_id);
    assert_int_equal(gossip_step(s->g, &ev, &s->act), 0);
    assert_int_equal(s->act.n, 1);   /* our HELLO */
    gossip_actions_reset(&s->act);
    if (!authed)
        return;
    memcpy(h.u.hello.id, s->peer_id, 32);
    h.u.hello.pk = (struct msg_bytes){ s->peer_pk, 64 };
    script_frame_on(s, conn, &h);
    assert_int_equal(s->act.v[0].type, GOSSIP_ACT_SIGN_AUTH);
    {
        struct msg a = { .type = MSG_HELLO_ACK };
        uint8_t sig[32];
        struct gossip_event r = { .type = GOSSIP_EV_AUTH_SIGNED, .conn = conn, .sig = { sig, 32 } };
        assert_int_equal(gossip_step(s->g, &r, &s->act), 0);
        a.u.hello_ack.sig = (struct msg_bytes){ sig, 32 };
        script_frame_on(s, conn, &a);
        r.type = GOSSIP_EV_AUTH_VERIFIED;
        r.ok = true;
        assert_int_equal(gossip_step(s->g, &r, &s->act), 0);
    }
    gossip_actions_reset(&s->act);
}

static void script_close(struct script *s);

/* Engine for node 0 with one connection (conn 7) from a scripted peer. */
static void script_open(struct script *s, bool authed)
{
    setup_nodes(1, 1, 11);
    memset(s, 0, sizeof(*s));
    s->g = nodes[0].g;
    script_peer(s, 7, 0, authed);
}

/* The WANTs in the action list, as the ids they ask for (count returned). */
static size_t wanted(const struct script *s, const uint8_t *id)
{
    size_t hits = 0;

    for (size_t i = 0; i < s->act.n; i++) {
        struct msg *m = NULL;
        if (s->act.v[i].type != GOSSIP_ACT_SEND)
            continue;
        assert_int_equal(msg_decode(s->act.v[i].frame.p + 4, s->act.v[i].frame.n - 4, NULL, &m, NULL), 0);
        for (size_t k = 0; m->type == MSG_WANT && k < m->u.want.n_ids; k++)
            hits += memcmp(m->u.want.ids[k].id, id, 32) == 0;
        msg_free(m);
    }
    return hits;
}

/* Two peers list the same adapter: it is fetched from the first only; when
 * that connection drops, the next digest from the other starts it again. */
static void test_one_source(void **state)
{
    struct script s;
    struct msg_ad ad = { .size = 100 };
    struct msg m = { .type = MSG_DIGEST, .u.digest = { .n_ads = 1, .ads = &ad } };
    struct gossip_event down = { .type = GOSSIP_EV_PEER_DOWN, .conn = 7 };

    script_open(&s, true);
    script_peer(&s, 8, 1, true);
    memset(ad.id, 0x42, 32);
    strcpy(ad.domain, "legal");
    script_frame_on(&s, 7, &m);
    assert_int_equal(wanted(&s, ad.id), 1);
    gossip_actions_reset(&s.act);
    script_frame_on(&s, 8, &m);
    assert_int_equal(wanted(&s, ad.id), 0);   /* already fetched from conn 7 */
    gossip_actions_reset(&s.act);
    assert_int_equal(gossip_step(s.g, &down, &s.act), 0);
    script_frame_on(&s, 8, &m);
    assert_int_equal(wanted(&s, ad.id), 1);
    gossip_actions_reset(&s.act);
    /* conn 8 never sends: after stall_ms the claim lapses, conn 9 may serve */
    script_peer(&s, 9, 2, true);
    assert_int_equal(gossip_next_deadline_ms(s.g), 0);   /* round 1 still due */
    {
        struct gossip_event t = { .type = GOSSIP_EV_TICK, .now_ms = 29999 };
        assert_int_equal(gossip_step(s.g, &t, &s.act), 0);
        assert_int_equal(gossip_next_deadline_ms(s.g), 30000);   /* the stall, before round 2 */
        gossip_actions_reset(&s.act);
        script_frame_on(&s, 9, &m);
        assert_int_equal(wanted(&s, ad.id), 0);
        gossip_actions_reset(&s.act);
        t.now_ms = 30000;
        assert_int_equal(gossip_step(s.g, &t, &s.act), 0);
        gossip_actions_reset(&s.act);
        script_frame_on(&s, 9, &m);
        assert_int_equal(wanted(&s, ad.id), 1);
    }
    script_close(&s);
}

/* The last three actions must be SEND(BYE code) [+ STRIKE] + CLOSE. */
static void expect_close(struct script *s, int code, bool strike, const char *name)
{
    size_t n = s->act.n;
    const struct gossip_action *v = s->act.v;
    struct msg *bye = NULL;
    bool struck = false;

    if (n < 2 || v[n - 1].type != GOSSIP_ACT_CLOSE || v[n - 2].type != GOSSIP_ACT_SEND)
        fail_msg("%s: no BYE + CLOSE at the end (%zu actions)", name, n);
    assert_int_equal(msg_decode(v[n - 2].frame.p + 4, v[n - 2].frame.n - 4, NULL, &bye, NULL), 0);
    if (bye->type != MSG_BYE || bye->u.bye.code != code)
        fail_msg("%s: BYE code %d, want %d (%s)", name, bye->u.bye.code, code, proto_err_name(code));
    for (size_t i = 0; i < n; i++)
        struck |= v[i].type == GOSSIP_ACT_STRIKE && v[i].code == code;
    if (struck != strike)
        fail_msg("%s: strike %d, want %d", name, struck, strike);
    msg_free(bye);
}

static void script_close(struct script *s)
{
    gossip_actions_free(&s->act);
    teardown_nodes();
}

static void test_faults(void **state)
{
    static const uint8_t dd[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
    struct script s;
    struct msg m;
    uint8_t data[10] = { 0 };

    /* DIGEST before the handshake */
    script_open(&s, false);
    m = (struct msg){ .type = MSG_DIGEST };
    script_frame(&s, &m);
    expect_close(&s, PROTO_E_STATE, true, "digest before hello");
    script_close(&s);

    /* the msgpack bomb */
    script_open(&s, false);
    script_raw(&s, dd, sizeof(dd));
    expect_close(&s, PROTO_E_MSGPACK_CNT, true, "dd ff ff ff ff");
    script_close(&s);

    /* HELLO whose id is not sha256(pk) */
    script_open(&s, false);
    m = (struct msg){ .type = MSG_HELLO };
    m.u.hello.pk = (struct msg_bytes){ s.peer_pk, 64 };
    script_frame(&s, &m);
    expect_close(&s, PROTO_E_AUTH, true, "hello id mismatch");
    script_close(&s);

    /* a HELLO_ACK that does not verify */
    script_open(&s, false);
    m = (struct msg){ .type = MSG_HELLO };
    memcpy(m.u.hello.id, s.peer_id, 32);
    m.u.hello.pk = (struct msg_bytes){ s.peer_pk, 64 };
    script_frame(&s, &m);
    m = (struct msg){ .type = MSG_HELLO_ACK };
    m.u.hello_ack.sig = (struct msg_bytes){ data, 10 };
    script_frame(&s, &m);
    assert_int_equal(s.act.v[s.act.n - 1].type, GOSSIP_ACT_VERIFY_AUTH);
    {
        struct gossip_event r = { .type = GOSSIP_EV_AUTH_VERIFIED, .conn = 7, .ok = false };
        assert_int_equal(gossip_step(s.g, &r, &s.act), 0);
    }
    expect_close(&s, PROTO_E_AUTH, true, "forged hello_ack");
    script_close(&s);

    /* a CHUNK nobody asked for */
    script_open(&s, true);
    m = (struct msg){ .type = MSG_CHUNK };
    m.u.chunk.data = (struct msg_bytes){ data, 10 };
    script_frame(&s, &m);
    expect_close(&s, PROTO_E_STATE, true, "unrequested chunk");
    script_close(&s);

    /* HELLO again after authentication */
    script_open(&s, true);
    m = (struct msg){ .type = MSG_HELLO };
    memcpy(m.u.hello.id, s.peer_id, 32);
    m.u.hello.pk = (struct msg_bytes){ s.peer_pk, 64 };
    script_frame(&s, &m);
    expect_close(&s, PROTO_E_STATE, true, "second hello");
    script_close(&s);

    /* a wrong version after authentication */
    script_open(&s, true);
    {
        static const uint8_t v2[] = { 0x82, 0xa1, 't', 0x03, 0xa1, 'v', 0x02 };
        script_raw(&s, v2, sizeof(v2));
    }
    expect_close(&s, PROTO_E_VERSION, true, "version 2");
    script_close(&s);

    /* a peer BYE: close, no strike, nothing sent */
    script_open(&s, true);
    m = (struct msg){ .type = MSG_BYE, .u.bye = { .code = 0, .text = "bye" } };
    script_frame(&s, &m);
    assert_int_equal(s.act.n, 1);
    assert_int_equal(s.act.v[0].type, GOSSIP_ACT_CLOSE);
    gossip_actions_reset(&s.act);
    script_frame(&s, &m);   /* after closing, frames are ignored */
    assert_int_equal(s.act.n, 0);
    script_close(&s);

    /* handshake timeout: BYE STATE, no strike */
    script_open(&s, false);
    now = 10000;
    assert_int_equal(gossip_next_deadline_ms(s.g), 0);   /* round 1 is due at start_ms 0 */
    {
        struct gossip_event t = { .type = GOSSIP_EV_TICK, .now_ms = now };
        assert_int_equal(gossip_step(s.g, &t, &s.act), 0);
    }
    expect_close(&s, PROTO_E_STATE, false, "handshake timeout");
    assert_int_equal(gossip_round(s.g), 1);
    assert_int_equal(gossip_next_deadline_ms(s.g), 11000);
    now = 0;
    script_close(&s);
}

/* A WANT past the end, a MANIFEST whose size disagrees, an out-of-order CHUNK. */
static void test_transfer_faults(void **state)
{
    struct script s;
    struct msg m;
    uint8_t id[32], data[16] = { 1 };
    struct msg_want_item wi = { .from = 5000 };

    /* WANT from past the end of a held adapter */
    script_open(&s, true);
    publish(0, 1000, "legal", id);
    memcpy(wi.id, id, 32);
    m = (struct msg){ .type = MSG_WANT, .u.want = { .n_ids = 1, .ids = &wi } };
    script_frame(&s, &m);
    expect_close(&s, PROTO_E_FIELD_VALUE, true, "want past end");
    script_close(&s);

    /* the peer lists an adapter, we WANT it, it lies about the size, then the offset */
    for (int variant = 0; variant < 2; variant++) {
        struct msg_ad ad = { .size = 100 };
        script_open(&s, true);
        memset(id, 0x42, 32);
        memcpy(ad.id, id, 32);
        strcpy(ad.domain, "legal");
        m = (struct msg){ .type = MSG_DIGEST, .u.digest = { .n_ads = 1, .ads = &ad } };
        script_frame(&s, &m);
        assert_int_equal(gossip_adapter_state(s.g, id), GOSSIP_AD_PARTIAL);
        gossip_actions_reset(&s.act);
        m = (struct msg){ .type = MSG_MANIFEST };
        memcpy(m.u.manifest.id, id, 32);
        strcpy(m.u.manifest.domain, "legal");
        m.u.manifest.size = variant == 0 ? 99 : 100;
        script_frame(&s, &m);
        if (variant == 0) {
            expect_close(&s, PROTO_E_STATE, true, "manifest size");
        } else {
            m = (struct msg){ .type = MSG_CHUNK };
            memcpy(m.u.chunk.id, id, 32);
            m.u.chunk.off = 16;
            m.u.chunk.data = (struct msg_bytes){ data, 16 };
            script_frame(&s, &m);
            expect_close(&s, PROTO_E_STATE, true, "chunk offset");
        }
        script_close(&s);
    }
}

/* A peer lists an adapter, gets our WANT, sends the MANIFEST and 10 bytes,
 * then nothing while staying connected: at stall_ms it is faulted (BYE
 * STATE, strike) and its bytes discarded; frames of another transfer from
 * the same peer would have kept both alive. */
static void test_stall_fault(void **state)
{
    struct script s;
    struct msg_ad ad = { .size = 100 };
    struct msg m = { .type = MSG_DIGEST, .u.digest = { .n_ads = 1, .ads = &ad } };
    struct gossip_event t = { .type = GOSSIP_EV_TICK, .now_ms = 29999 };
    uint8_t data[10] = { 1 };
    bool discard = false;

    script_open(&s, true);
    memset(ad.id, 0x42, 32);
    strcpy(ad.domain, "legal");
    script_frame(&s, &m);
    assert_int_equal(wanted(&s, ad.id), 1);
    gossip_actions_reset(&s.act);
    m = (struct msg){ .type = MSG_MANIFEST, .u.manifest = { .size = 100 } };
    memcpy(m.u.manifest.id, ad.id, 32);
    strcpy(m.u.manifest.domain, "legal");
    script_frame(&s, &m);
    m = (struct msg){ .type = MSG_CHUNK, .u.chunk = { .off = 0, .data = { data, 10 } } };
    memcpy(m.u.chunk.id, ad.id, 32);
    script_frame(&s, &m);
    gossip_actions_reset(&s.act);
    assert_int_equal(gossip_step(s.g, &t, &s.act), 0);   /* rounds only: not stalled yet */
    for (size_t i = 0; i < s.act.n; i++)
        assert_int_not_equal(s.act.v[i].type, GOSSIP_ACT_CLOSE);
    gossip_actions_reset(&s.act);
    t.now_ms = 30000;
    assert_int_equal(gossip_step(s.g, &t, &s.act), 0);
    expect_close(&s, PROTO_E_STATE, true, "stalled transfer");
    for (size_t i = 0; i < s.act.n; i++)
        discard |= s.act.v[i].type == GOSSIP_ACT_DISCARD && memcmp(s.act.v[i].id, ad.id, 32) == 0;
    assert_true(discard);
    assert_int_equal(gossip_adapter_state(s.g, ad.id), GOSSIP_AD_PARTIAL);
    script_close(&s);
}

/* A VOTE the driver refused: a lie (code) faults the sender, an untrusted
 * signer (code 0) is dropped in silence. Case 2: the liar hung up before
 * the check ended: its key (the VERIFY_VOTE's `from`) is struck anyway. */
static void test_vote_refused(void **state)
{
    for (int kase = 0; kase < 3; kase++) {
        struct script s;
        uint8_t id[32], body[8] = "x", sig[8] = "y";
        struct msg m = { .type = MSG_VOTE };
        struct gossip_event ev = { .type = GOSSIP_EV_VOTE, .conn = 7, .ok = false,
                                   .code = kase > 0 ? PROTO_E_AUTH : 0 };
        struct gossip_event down = { .type = GOSSIP_EV_PEER_DOWN, .conn = 7 };

        script_open(&s, true);
        publish(0, 1000, "legal", id);
        gossip_actions_reset(&s.act);
        memcpy(m.u.vote.id, id, 32);
        memset(m.u.vote.by, 0x17, 32);
        m.u.vote.body = (struct msg_bytes){ body, 1 };
        m.u.vote.sig = (struct msg_bytes){ sig, 1 };
        script_frame(&s, &m);
        assert_int_equal(s.act.n, 1);
        assert_int_equal(s.act.v[0].type, GOSSIP_ACT_VERIFY_VOTE);
        assert_memory_equal(s.act.v[0].from, s.peer_id, 32);
        memcpy(ev.from, s.act.v[0].from, 32);
        gossip_actions_reset(&s.act);
        if (kase == 2) {
            assert_int_equal(gossip_step(s.g, &down, &s.act), 0);
            gossip_actions_reset(&s.act);
        }
        memcpy(ev.id, id, 32);
        memset(ev.by, 0x17, 32);
        assert_int_equal(gossip_step(s.g, &ev, &s.act), 0);
        if (kase == 1) {
            expect_close(&s, PROTO_E_AUTH, true, "forged vote");
        } else if (kase == 2) {
            assert_int_equal(s.act.n, 1);
            assert_int_equal(s.act.v[0].type, GOSSIP_ACT_STRIKE);
            assert_int_equal(s.act.v[0].code, PROTO_E_AUTH);
            assert_memory_equal(s.act.v[0].by, s.peer_id, 32);
        } else {
            assert_int_equal(s.act.n, 0);
        }
        script_close(&s);
    }
}

static void test_config(void **state)
{
    struct gossip *g = NULL;
    uint8_t pk[8] = { 1 };
    struct gossip_config cfg = { .pk = pk, .pk_len = 8, .quorum = 1, .addr = "bad addr" };
    struct gossip_actions a = { 0 };
    struct gossip_event ev = { .type = GOSSIP_EV_ADAPTER, .domain = "../x", .size = 1, .stored = 1 };

    assert_int_equal(gossip_new(&g, &cfg), PROTO_E_ARG);
    assert_null(g);
    cfg.addr = "";
    cfg.quorum = 0;
    assert_int_equal(gossip_new(&g, &cfg), PROTO_E_ARG);
    cfg.quorum = 1;
    cfg.pk_len = 0;
    assert_int_equal(gossip_new(&g, &cfg), PROTO_E_ARG);
    cfg.pk_len = 8;
    assert_int_equal(gossip_new(&g, &cfg), 0);
    assert_int_equal(gossip_members(g, NULL, 0), 0);   /* not listening: not a member */
    assert_int_equal(gossip_step(g, &ev, &a), PROTO_E_ARG);   /* a path as domain */
    ev.type = GOSSIP_EV_MEMBER;
    ev.addr = "10.0.0.9:1";
    assert_int_equal(gossip_step(g, &ev, &a), 0);
    assert_int_equal(gossip_members(g, NULL, 0), 1);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.v[0].type, GOSSIP_ACT_MEMBERS);
    ev.type = GOSSIP_EV_FRAME;
    ev.conn = 5;   /* no such connection: a driver bug */
    assert_int_equal(gossip_step(g, &ev, &a), PROTO_E_ARG);
    gossip_actions_free(&a);
    gossip_free(g);
    gossip_free(NULL);
}

/* ---- vote pulls: only what the requester lacks, one pull at a time ---- */

/* Node ni holds adapter id (size 1000) with its gate already run: no vote of its own. */
static void hold(int ni, const uint8_t id[32])
{
    struct gossip_event ev = { .type = GOSSIP_EV_ADAPTER, .now_ms = now, .domain = "legal",
                               .size = 1000, .stored = 1000, .gate = 1 };

    memcpy(ev.id, id, 32);
    step(ni, &ev);
    drain();
    assert_true(gossip_adapter_state(nodes[ni].g, id) >= GOSSIP_AD_HELD);
}

/* Node ni receives node signer's ACCEPT vote on id (as if checked by its driver). */
static void give_vote(int ni, int signer, const uint8_t id[32])
{
    struct gossip_event ev = { .type = GOSSIP_EV_VOTE, .now_ms = now, .ok = true, .accept = true };
    uint8_t body[35] = { 'V', '|' }, sig[32];

    memcpy(body + 2, id, 32);
    body[34] = 1;
    fake_sign(nodes[signer].pk, body, 35, sig);
    memcpy(ev.id, id, 32);
    memcpy(ev.by, nodes[signer].id, 32);
    ev.body = (struct msg_bytes){ body, 35 };
    ev.sig = (struct msg_bytes){ sig, 32 };
    step(ni, &ev);
    drain();
}

/* Node 0 holds 5 votes, node 1 holds k of them: node 1 asks once and
 * receives exactly the 5 - k it lacks; node 0 asks for nothing. */
static void test_vote_pull_missing_only(void **state)
{
    uint8_t id[32];

    memset(id, 0x5a, 32);
    for (int k = 0; k <= 5; k++) {
        setup_nodes(7, 9, 40 + (uint64_t)k);   /* nodes 2..6 only sign votes */
        hold(0, id);
        hold(1, id);
        for (int v = 0; v < 5; v++)
            give_vote(0, 2 + v, id);
        for (int v = 0; v < k; v++)
            give_vote(1, 2 + (v * 2) % 5, id);   /* not a prefix of node 0's order */
        assert_int_equal(nodes[1].audits[GOSSIP_AUDIT_VOTE], k);
        connect_nodes(0, 1);
        rounds(3);
        assert_int_equal(nodes[0].votes_sent, 5 - k);
        assert_int_equal(nodes[1].vids_asked, k < 5 ? 1 : 0);
        assert_int_equal(nodes[1].audits[GOSSIP_AUDIT_VOTE], 5);
        assert_int_equal(nodes[0].vids_asked, 0);
        assert_int_equal(nodes[1].votes_sent, 0);
        teardown_nodes();
    }
}

/* Same counts, different sets: DIGEST.vs tells them apart and each side
 * pulls the one vote it lacks. */
static void test_vote_pull_same_count(void **state)
{
    uint8_t id[32];

    memset(id, 0x5b, 32);
    setup_nodes(4, 9, 50);
    hold(0, id);
    hold(1, id);
    give_vote(0, 2, id);
    give_vote(1, 3, id);
    connect_nodes(0, 1);
    rounds(2);
    assert_int_equal(nodes[0].votes_sent, 1);
    assert_int_equal(nodes[1].votes_sent, 1);
    assert_int_equal(nodes[0].audits[GOSSIP_AUDIT_VOTE], 2);
    assert_int_equal(nodes[1].audits[GOSSIP_AUDIT_VOTE], 2);
    teardown_nodes();
}

/* A key untrusted by a keyring reload: its votes count no more (the next
 * honest vote does not complete quorum with them), other adapters lose its
 * votes too, an unknown key drops nothing, and the key's vote counts again
 * once it is received again (trusted again). */
static void test_untrust_drops_votes(void **state)
{
    uint8_t id[32], id2[32];

    memset(id, 0x5c, 32);
    memset(id2, 0x5d, 32);
    setup_nodes(6, 3, 60);
    hold(0, id);
    hold(0, id2);
    give_vote(0, 2, id);
    give_vote(0, 3, id);
    give_vote(0, 2, id2);
    assert_int_equal(nodes[0].audits[GOSSIP_AUDIT_VOTE], 3);
    assert_int_equal(gossip_untrust(nodes[0].g, nodes[2].id), 2);
    assert_int_equal(gossip_untrust(nodes[0].g, nodes[2].id), 0);
    assert_int_equal(gossip_untrust(nodes[0].g, nodes[5].id), 0);
    give_vote(0, 4, id);   /* 3 and 4: two keys, quorum 3 */
    assert_int_equal(gossip_adapter_state(nodes[0].g, id), GOSSIP_AD_HELD);
    give_vote(0, 2, id);   /* trusted again and received again: counts */
    assert_int_equal(nodes[0].audits[GOSSIP_AUDIT_VOTE], 5);
    assert_int_equal(gossip_adapter_state(nodes[0].g, id), GOSSIP_AD_COMMITTED);
    assert_int_equal(gossip_adapter_state(nodes[0].g, id2), GOSSIP_AD_HELD);
    /* a committed adapter stays committed when a signer is untrusted */
    assert_int_equal(gossip_untrust(nodes[0].g, nodes[3].id), 1);
    assert_int_equal(gossip_adapter_state(nodes[0].g, id), GOSSIP_AD_COMMITTED);
    teardown_nodes();
}

/* WANT.vids entries in the action list on conn. */
static size_t vids_in(const struct script *s, uint32_t conn)
{
    size_t n = 0;

    for (size_t i = 0; i < s->act.n; i++) {
        struct msg *m = NULL;
        if (s->act.v[i].type != GOSSIP_ACT_SEND || s->act.v[i].conn != conn)
            continue;
        assert_int_equal(msg_decode(s->act.v[i].frame.p + 4, s->act.v[i].frame.n - 4, NULL, &m, NULL), 0);
        n += m->type == MSG_WANT ? m->u.want.n_vids : 0;
        msg_free(m);
    }
    return n;
}

/* Two peers advertise votes we lack: within one round only the first is
 * asked (its answer may still be on the way); the next round the other may
 * be. A peer we fetch adapter bytes from is not asked for votes. */
static void test_vote_pull_once_a_round(void **state)
{
    struct script s;
    struct gossip_event ev = { .type = GOSSIP_EV_ADAPTER, .domain = "legal", .size = 100,
                               .stored = 100, .gate = 1 };
    struct gossip_event tick = { .type = GOSSIP_EV_TICK };
    struct msg_ad ads[2] = { { .size = 100, .acc = 4 }, { .size = 100 } };
    struct msg m = { .type = MSG_DIGEST, .u.digest = { .n_ads = 1, .ads = ads } };

    script_open(&s, true);
    script_peer(&s, 8, 1, true);
    script_peer(&s, 9, 2, true);
    memset(ads[0].id, 0x42, 32);
    memset(ads[1].id, 0x43, 32);
    strcpy(ads[0].domain, "legal");
    strcpy(ads[1].domain, "medical");
    memcpy(ev.id, ads[0].id, 32);
    assert_int_equal(gossip_step(s.g, &ev, &s.act), 0);
    gossip_actions_reset(&s.act);
    script_frame_on(&s, 7, &m);
    assert_int_equal(vids_in(&s, 7), 1);
    gossip_actions_reset(&s.act);
    script_frame_on(&s, 8, &m);
    assert_int_equal(vids_in(&s, 8), 0);   /* one pull a round */
    gossip_actions_reset(&s.act);
    assert_int_equal(gossip_step(s.g, &tick, &s.act), 0);   /* round 1 */
    gossip_actions_reset(&s.act);
    m.u.digest.n_ads = 2;                  /* conn 9 also lists an adapter we lack */
    script_frame_on(&s, 9, &m);
    assert_int_equal(wanted(&s, ads[1].id), 1);
    assert_int_equal(vids_in(&s, 9), 0);   /* we fetch from it: no VOTE burst beside CHUNKs */
    gossip_actions_reset(&s.act);
    script_frame_on(&s, 8, &m);
    assert_int_equal(wanted(&s, ads[1].id), 0);
    assert_int_equal(vids_in(&s, 8), 1);
    script_close(&s);
}

/* The answering side, scripted: a WANT whose vh lists k of our 5 votes gets
 * exactly the other 5 - k; without vh (an older peer) all 5; a full vh none. */
static void test_vote_answer(void **state)
{
    struct script s;
    struct gossip_event ev = { .type = GOSSIP_EV_ADAPTER, .domain = "legal", .size = 100,
                               .stored = 100, .gate = 1 };
    struct msg m = { .type = MSG_WANT };
    uint8_t tags[5 * MSG_VTAG_LEN], full[MSG_VHAVE_MAX * MSG_VTAG_LEN];
    msg_id id, by[5];
    struct msg_bytes have;

    script_open(&s, true);
    memset(id, 0x42, 32);
    memcpy(ev.id, id, 32);
    assert_int_equal(gossip_step(s.g, &ev, &s.act), 0);
    for (int v = 0; v < 5; v++) {
        struct gossip_event ve = { .type = GOSSIP_EV_VOTE, .ok = true, .accept = true,
                                   .body = { (const uint8_t *)"body", 4 }, .sig = { (const uint8_t *)"s", 1 } };
        memset(by[v], 0x10 * (5 - v), 32);   /* descending: tags sort the other way */
        memcpy(ve.id, id, 32);
        memcpy(ve.by, by[v], 32);
        assert_int_equal(gossip_step(s.g, &ve, &s.act), 0);
    }
    gossip_actions_reset(&s.act);
    m.u.want.n_vids = 1;
    m.u.want.vids = &id;
    m.u.want.vhave = &have;
    for (int k = 0; k <= 5; k++) {
        for (int v = 0; v < k; v++)   /* votes 4, 3, ... in ascending tag order */
            msg_vote_tag(tags + v * MSG_VTAG_LEN, by[4 - v], true);
        have = (struct msg_bytes){ tags, (size_t)k * MSG_VTAG_LEN };
        script_frame(&s, &m);
        assert_int_equal(s.act.n, (size_t)(5 - k));
        for (size_t i = 0; i < s.act.n; i++) {
            struct msg *r = NULL;
            assert_int_equal(s.act.v[i].type, GOSSIP_ACT_SEND);
            assert_int_equal(msg_decode(s.act.v[i].frame.p + 4, s.act.v[i].frame.n - 4, NULL, &r, NULL), 0);
            assert_int_equal(r->type, MSG_VOTE);
            assert_memory_equal(r->u.vote.by, by[i], 32);   /* 0 .. 4-k: the ones not listed */
            msg_free(r);
        }
        gossip_actions_reset(&s.act);
    }
    m.u.want.vhave = NULL;
    script_frame(&s, &m);
    assert_int_equal(s.act.n, 5);
    gossip_actions_reset(&s.act);
    for (unsigned i = 0; i < MSG_VHAVE_MAX; i++) {   /* 256 other votes: no room left */
        memset(full + i * MSG_VTAG_LEN, 0, MSG_VTAG_LEN);
        full[i * MSG_VTAG_LEN] = (uint8_t)i;
        full[i * MSG_VTAG_LEN + 1] = 0xee;
    }
    have = (struct msg_bytes){ full, sizeof(full) };
    m.u.want.vhave = &have;
    script_frame(&s, &m);
    assert_int_equal(s.act.n, 0);
    script_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake),
        cmocka_unit_test(test_transfer_vote_commit),
        cmocka_unit_test(test_path_coverage),
        cmocka_unit_test(test_push),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_bad_hash),
        cmocka_unit_test(test_gate_reject),
        cmocka_unit_test(test_equivocation),
        cmocka_unit_test(test_duplicate_connection),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_one_source),
        cmocka_unit_test(test_transfer_faults),
        cmocka_unit_test(test_stall_fault),
        cmocka_unit_test(test_vote_refused),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_vote_pull_missing_only),
        cmocka_unit_test(test_vote_pull_same_count),
        cmocka_unit_test(test_untrust_drops_votes),
        cmocka_unit_test(test_vote_pull_once_a_round),
        cmocka_unit_test(test_vote_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
