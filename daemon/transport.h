/* daemon/transport.h: plorad's TCP connections over libuv.
 *
 * The transport owns sockets, framing (proto/frame.h frame_reader), timers
 * and write queues; it knows nothing of the protocol's messages beyond
 * frames and BYE. The node (daemon/node.c) feeds what it hands up to the
 * gossip engine and turns the engine's actions into the calls below.
 *
 * Connections are identified by a uint32_t `conn`, never reused while the
 * process lives (wraps after 2^32 - 1 connections, skipping 0).
 *
 * Limits enforced here (struct transport_opts):
 *  - frame size: preauth cap until transport_set_authed, then FRAME_MAX;
 *  - handshake_ms from connect to transport_set_authed, idle_ms without a
 *    complete frame from an authenticated peer, frame_ms from a frame's
 *    first byte to its last: each closes the connection with a BYE
 *    {PROTO_E_STATE, reason} and no strike (slowness is not malice);
 *  - write queue: at most queue_max bytes per connection are buffered;
 *    transport_send beyond it fails with DMN_E_RANGE (the caller must pace
 *    itself with transport_queued and the on_writable callback); a peer that
 *    does not drain its queue within idle_ms is dropped (no BYE: it would
 *    not get through);
 *  - max_conns connections at once (more inbound are accepted and closed);
 *  - bans: transport_ban(host) refuses inbound from that host and
 *    dialling it until the ban expires. A frame-level error (bad length,
 *    oversize) closes with a BYE {PROTO_E_FRAME_LEN, reason} and counts a
 *    strike against the host (IP); ban_strikes strikes within an hour ban it
 *    for ban_ms (strikes older than an hour are forgotten).
 * Callbacks run from libuv callbacks, never from inside a transport_* call
 * (so the node may call any transport function from any callback).
 * Outbound dials retry with exponential backoff (250 ms doubling to 30 s,
 * +-20% jitter) until transport_undial.
 */
#ifndef PLORA_TRANSPORT_H
#define PLORA_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dmn_err.h"

struct transport;  /* opaque */

struct transport_opts {
    uint32_t handshake_ms, idle_ms, frame_ms;   /* 0 = 10000, 60000, 30000 */
    size_t preauth_frame_max;                   /* 0 = FRAME_MAX_PREAUTH (proto/frame.h) */
    size_t frame_max;                           /* 0 = FRAME_MAX (proto/frame.h) */
    size_t queue_max;                           /* bytes per connection, 0 = 4 MiB */
    uint32_t max_conns;                         /* 0 = 256 */
    uint32_t ban_strikes, ban_ms;               /* 0 = 3, 300000 */
    uint32_t dial_min_ms, dial_max_ms;          /* redial backoff, 0 = 250, 30000 */
};

struct transport_cbs {
    void *ctx;
    /* A connection is open (inbound accepted or outbound connected). `addr`
     * is the remote "host:port"; for outbound, `dial_addr` is the address
     * dialled (else NULL). */
    void (*on_up)(void *ctx, uint32_t conn, bool outbound, const char *addr,
                  const char *dial_addr);
    /* One complete frame body (without the 4-byte prefix); valid during the
     * call only. The node may call any transport function from here. */
    void (*on_frame)(void *ctx, uint32_t conn, const uint8_t *body, size_t n);
    /* The connection is gone (after on_up only). `code` 0 = closed on
     * request or by the peer; else why (DMN_E_PEER with the text in `why`:
     * "idle timeout", "frame length 4294967295 over 65536", ...). */
    void (*on_down)(void *ctx, uint32_t conn, int code, const char *why);
    /* The queue of conn fell to or below half of queue_max, after being
     * above it or after a transport_send* refused a frame (DMN_E_RANGE):
     * send until refused, then wait for this. May be NULL. */
    void (*on_writable)(void *ctx, uint32_t conn);
    /* An outbound dial to `dial_addr` failed (it will be retried). May be NULL. */
    void (*on_dial_failed)(void *ctx, const char *dial_addr, const char *why);
};

/* Also sets SIGPIPE to SIG_IGN (libuv writes with write(2): a peer's reset
 * must fail the write, not kill the process).
 * Returns 0, DMN_E_NOMEM, DMN_E_ARG (a frame cap over FRAME_MAX, or the
 * preauth cap over frame_max). The loop is the caller's and must outlive it. */
int transport_new(struct transport **out, uv_loop_t *loop, const struct transport_opts *o,
                  const struct transport_cbs *cb, struct dmn_diag *d);

/* Listen on "host:port" (IPv4, or [v6]; port 0 = any). `bound` receives the
 * actual "host:port". Returns 0, DMN_E_ARG (address malformed),
 * DMN_E_LISTEN (d has the errno text and the address). */
int transport_listen(struct transport *t, const char *addr, char *bound, size_t cap,
                     struct dmn_diag *d);

/* Keep a connection to addr: dial now, redial with backoff whenever it is
 * down, until transport_undial(addr). Idempotent. Returns 0, DMN_E_ARG. */
int transport_dial(struct transport *t, const char *addr, struct dmn_diag *d);
void transport_undial(struct transport *t, const char *addr);

/* Queue a whole frame (prefix included). Takes ownership of `frame`
 * (malloc'd) in every case. Returns 0, DMN_E_NOT_FOUND (conn gone or
 * closing, or the write failed: on_down follows), DMN_E_RANGE (queue full:
 * frame dropped; pace with on_writable; a frame over queue_max never fits),
 * DMN_E_NOMEM (the connection is closed: the peer would see a torn frame). */
int transport_send(struct transport *t, uint32_t conn, uint8_t *frame, size_t n);

/* Zero-copy from memory the caller keeps (a CHUNK buffer of node_net.c): the
 * frame is head[0..hn) (copied) followed by data[0..dn) (referenced, not
 * copied). release(rbase, rlen) is called exactly once when the bytes are no
 * longer needed: at once when the frame is refused or written at once, else
 * when the write completes, fails or is cancelled by a close. Same codes. */
int transport_send_ref(struct transport *t, uint32_t conn, const uint8_t *head, size_t hn,
                       const uint8_t *data, size_t dn, void (*release)(void *base, size_t len),
                       void *rbase, size_t rlen);

/* Queue a frame given as two pieces (a CHUNK head from msg_chunk_head, and
 * its data), both copied into one buffer. Same codes. */
int transport_send2(struct transport *t, uint32_t conn, const uint8_t *a, size_t an,
                    const uint8_t *b, size_t bn);

size_t transport_queued(const struct transport *t, uint32_t conn);  /* 0 if gone */

/* Close after the queued bytes are written (at most 1 s more: then our FIN,
 * and what the peer still sends is read and discarded until its FIN, so that
 * the last frame is not destroyed by a reset). A BYE, if wanted, is the
 * caller's last transport_send. on_down follows from the loop (code 0,
 * "closed"), never from inside this call. */
void transport_close(struct transport *t, uint32_t conn);

/* Stop / resume delivering frames of conn (bytes stay in the kernel).
 * Frames already read stay buffered; after resume they are delivered from
 * the loop, in order, never from inside transport_resume. The frame and
 * idle timeouts do not run while paused (the handshake timeout does). */
void transport_pause(struct transport *t, uint32_t conn);
void transport_resume(struct transport *t, uint32_t conn);

/* The peer authenticated: raise its frame cap to frame_max, idle timeout
 * replaces the handshake timeout. */
void transport_set_authed(struct transport *t, uint32_t conn);

/* One strike against the host of conn (the node's verdict on a protocol
 * fault); bans at ban_strikes. Returns true when that banned it. */
bool transport_strike(struct transport *t, uint32_t conn);

/* Ban a remote host (IP text as in transport_peer_addr, without port or
 * brackets) for ms milliseconds (0 = ban_ms): inbound connections from it are
 * closed at accept, dials to it fail until then. Existing connections stay
 * (the node closes them). Returns 0, DMN_E_ARG (host empty or too long). */
int transport_ban(struct transport *t, const char *host, uint32_t ms);
bool transport_banned(const struct transport *t, const char *host);

/* Remote "host:port" of conn ("" if gone). Strikes work on a closing conn
 * too, until its on_down has returned. */
const char *transport_peer_addr(const struct transport *t, uint32_t conn);

/* Counters since transport_new. conns: connections that came up; dropped:
 * closed by us for a fault or a timeout, or refused at accept (ban,
 * max_conns); strikes, bans: every strike counted and every ban imposed. */
struct transport_stats {
    uint64_t bytes_in, bytes_out, frames_in, frames_out;
    uint64_t conns, dropped, strikes, bans;
};
void transport_stats(const struct transport *t, struct transport_stats *s);

/* Stop listening and dialling (SIGTERM, step 1). */
void transport_stop_accepting(struct transport *t);

/* Close every connection; free once libuv has released the handles
 * (run the loop until transport_closed()). */
void transport_shutdown(struct transport *t);
bool transport_closed(const struct transport *t);
void transport_free(struct transport *t);  /* after transport_closed; NULL fine */

#endif
