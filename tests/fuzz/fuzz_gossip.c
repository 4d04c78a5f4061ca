/* tests/fuzz/fuzz_gossip.c: the gossip engine fed frames from a hostile peer.
 *
 * Byte 0 bit 0 chooses whether the peer is taken through the handshake first
 * (frames then hit the authenticated state) or not (they hit HELLO_WAIT);
 * bit 3 turns push (OFFER on acquisition) on. The
 * rest is a stream of 4-byte-prefixed frames, read by a frame_reader and fed
 * to the engine one by one with a TICK after each; the driver's work (gate,
 * hashing, vote checks) is answered at once, its verdicts taken from the
 * input so both outcomes are reached. Nothing may crash or leak, and after a
 * CLOSE no more actions may target the connection until it is down. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "gossip.h"
#include "sha256.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CONN 7u

struct drv {
    struct gossip *g;
    uint64_t now;
    uint8_t coin;        /* verdict source, from the input */
    int closed;
};

static void run(struct drv *v, const struct gossip_event *ev, int depth);

/* Answer the driver-work actions; results re-enter the engine at once. */
static void answer(struct drv *v, const struct gossip_action *x, int depth)
{
    struct gossip_event ev = { .now_ms = v->now, .conn = x->conn };
    uint8_t sig[32] = { 1 };

    memcpy(ev.id, x->id, 32);
    memcpy(ev.by, x->by, 32);
    switch (x->type) {
    case GOSSIP_ACT_CLOSE: v->closed = 1; return;
    case GOSSIP_ACT_SEND:
        if (v->closed && x->conn == CONN)
            abort();   /* nothing may follow the BYE + CLOSE */
        return;
    case GOSSIP_ACT_VERIFY_ADAPTER: ev.type = GOSSIP_EV_ADAPTER_VERIFIED, ev.ok = v->coin & 1; break;
    case GOSSIP_ACT_RUN_GATE: ev.type = GOSSIP_EV_GATE_VERDICT, ev.accept = v->coin & 2; break;
    case GOSSIP_ACT_SIGN_VOTE:
        ev.type = GOSSIP_EV_VOTE, ev.ok = true, ev.accept = x->accept;
        ev.body = (struct msg_bytes){ sig, 32 };
        ev.sig = (struct msg_bytes){ sig, 32 };
        break;
    case GOSSIP_ACT_VERIFY_VOTE:
        ev.type = GOSSIP_EV_VOTE, ev.ok = v->coin & 4, ev.accept = x->data.p[0] & 1;
        ev.code = !ev.ok && (v->coin & 8) ? PROTO_E_AUTH : 0;   /* a lie: strike the relayer */
        memcpy(ev.from, x->from, MSG_ID_LEN);
        ev.body = x->data;
        ev.sig = x->data2;
        break;
    default: return;
    }
    v->coin = (uint8_t)(v->coin * 5 + 1);
    run(v, &ev, depth + 1);
}

static void run(struct drv *v, const struct gossip_event *ev, int depth)
{
    struct gossip_actions act = { 0 };

    if (depth > 8)
        return;
    if (gossip_step(v->g, ev, &act) == 0 || act.n > 0)
        for (size_t i = 0; i < act.n; i++)
            answer(v, &act.v[i], depth);
    gossip_actions_free(&act);
}

static void feed_msg(struct drv *v, const struct msg *m)
{
    struct gossip_event ev = { .type = GOSSIP_EV_FRAME, .conn = CONN, .now_ms = v->now };
    uint8_t *f;
    size_t n;

    if (msg_encode(m, &f, &n, NULL) != 0)
        abort();
    ev.body = (struct msg_bytes){ f + 4, n - 4 };
    run(v, &ev, 0);
    free(f);
}

/* HELLO, our signature, HELLO_ACK, its verification. */
static void handshake(struct drv *v)
{
    static uint8_t pk[64] = { 9, 9, 9 };
    struct msg h = { .type = MSG_HELLO }, a = { .type = MSG_HELLO_ACK };
    struct gossip_event ev = { .type = GOSSIP_EV_AUTH_SIGNED, .conn = CONN };
    uint8_t sig[32] = { 2 };

    sha256(pk, sizeof(pk), h.u.hello.id);
    h.u.hello.pk = (struct msg_bytes){ pk, sizeof(pk) };
    feed_msg(v, &h);
    ev.sig = (struct msg_bytes){ sig, sizeof(sig) };
    run(v, &ev, 0);
    a.u.hello_ack.sig = ev.sig;
    feed_msg(v, &a);
    ev.type = GOSSIP_EV_AUTH_VERIFIED;
    ev.ok = true;
    run(v, &ev, 0);
}

static struct gossip *engine(bool push)
{
    static uint8_t pk[64] = { 1, 2, 3 };
    struct gossip_config cfg = { .pk = pk, .pk_len = sizeof(pk), .quorum = 1,
                                 .addr = "10.0.0.1:7000", .push = push };
    struct gossip_actions act = { 0 };
    struct gossip_event ev = { .type = GOSSIP_EV_ADAPTER, .domain = "legal", .size = 1000,
                               .stored = 1000, .gate = 1 };
    struct gossip *g = NULL;

    sha256(pk, sizeof(pk), cfg.self);
    if (gossip_new(&g, &cfg) != 0)
        abort();
    memset(ev.id, 0x42, 32);   /* an adapter we hold: WANTs for it are served */
    gossip_step(g, &ev, &act);
    gossip_actions_free(&act);
    return g;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct drv v = { 0 };
    struct frame_reader *r = NULL;
    struct gossip_event up = { .type = GOSSIP_EV_PEER_UP, .conn = CONN };
    const uint8_t *body;
    size_t len;

    if (size == 0 || frame_reader_new(&r, FRAME_MAX) != 0)
        return 0;
    v.g = engine(data[0] & 8);
    v.coin = data[0];
    run(&v, &up, 0);
    if (data[0] & 1)
        handshake(&v);
    if (frame_reader_feed(r, data + 1, size - 1, NULL) == 0)
        while (frame_reader_next(r, &body, &len, NULL) == 0) {
            struct gossip_event ev = { .type = GOSSIP_EV_FRAME, .conn = CONN, .now_ms = v.now,
                                       .body = { body, len } };
            struct gossip_event tick = { .type = GOSSIP_EV_TICK };
            run(&v, &ev, 0);
            v.now += 700;
            tick.now_ms = v.now;
            run(&v, &tick, 0);
        }
    frame_reader_free(r);
    gossip_free(v.g);
    return 0;
}
