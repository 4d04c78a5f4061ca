/* proto/gossip.h: one node's gossip protocol state, sans I/O.
 *
 * The engine never touches a socket, a clock, a file or a random source, and
 * never calls back into its driver. The driver feeds it events (the time is
 * in every event) and executes the actions it hands back; two drivers run
 * the same engine: daemon/transport.c (libuv TCP) and daemon/sim.c (many
 * nodes in one process). The protocol it runs is proto/PROTOCOL.md: the
 * handshake of section 4 and the push-pull round of section 6.
 *
 *   struct gossip_actions act = {0};
 *   ev.now_ms = now;                      // set by the driver
 *   int rc = gossip_step(g, &ev, &act);   // rc < 0: a local failure (NOMEM)
 *   driver_execute(&act);                 // sends, stores, gate runs, audit appends
 *   gossip_actions_reset(&act);           // frees the frames the actions owned
 *   driver_arm_timer(gossip_next_deadline_ms(g));
 *
 * Work the engine leaves to the driver because it is I/O or heavy (signing,
 * verifying, hashing a file, running the gate, merging) comes back as an
 * action, and its result returns as an event. Connections are the driver's
 * `conn` handles (any uint32_t, unique while the connection lives); the
 * engine gossips with every authenticated connection each round, so the
 * driver decides the overlay by choosing whom to dial (GOSSIP_ACT_MEMBERS
 * says when the membership it derives the overlay from has changed).
 */
#ifndef PLORA_GOSSIP_H
#define PLORA_GOSSIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "proto_err.h"

#define GOSSIP_CONNS_MAX 1024u    /* live connections per node */
#define GOSSIP_VOTES_MAX 256u     /* votes kept per adapter (equivocation evidence included) */

struct gossip_config {
    msg_id self;                    /* sha256 of pk */
    const uint8_t *pk;              /* SPKI DER, copied by gossip_new */
    size_t pk_len;
    const char *addr;               /* listen address or "" */
    uint32_t round_ms;              /* 0 = 1000 */
    uint32_t chunk_size;            /* bytes per CHUNK, 0 = 256 KiB, <= MSG_CHUNK_MAX */
    uint32_t handshake_ms;          /* connect -> authenticated, 0 = 10000 */
    uint32_t stall_ms;              /* transfer without progress is released, 0 = 30000 */
    uint32_t quorum;                /* distinct ACCEPT keys to commit, >= 1 */
    bool push;                      /* OFFER an adapter to every other peer as soon as it
                                       is held, instead of waiting for their next DIGEST */
    uint64_t start_ms;              /* the first round starts here */
};

enum gossip_event_type {
    GOSSIP_EV_TICK,               /* nothing but the time */
    GOSSIP_EV_PEER_UP,            /* conn, outbound, nonce: connection open, send HELLO */
    GOSSIP_EV_PEER_DOWN,          /* conn: socket closed (either side) */
    GOSSIP_EV_FRAME,              /* conn, body: one frame body from frame_reader */
    GOSSIP_EV_AUTH_SIGNED,        /* conn, sig: answer to GOSSIP_ACT_SIGN_AUTH */
    GOSSIP_EV_AUTH_VERIFIED,      /* conn, ok: answer to GOSSIP_ACT_VERIFY_AUTH */
    GOSSIP_EV_ADAPTER,            /* id, domain, size, stored, gate: in the store at start,
                                     or published here (stored == size: whole and hashed) */
    GOSSIP_EV_ADAPTER_VERIFIED,   /* id, ok: answer to GOSSIP_ACT_VERIFY_ADAPTER */
    GOSSIP_EV_GATE_VERDICT,       /* id, accept: answer to GOSSIP_ACT_RUN_GATE */
    GOSSIP_EV_VOTE,               /* id, by, accept, ok, body, sig: a vote checked by the
                                     driver (answer to VERIFY_VOTE) or our own (SIGN_VOTE) */
    GOSSIP_EV_MEMBER,             /* id, addr: a member learned out of band (--join, config) */
};

struct gossip_event {
    enum gossip_event_type type;
    uint64_t now_ms;                /* monotonic milliseconds, set by the driver */
    uint32_t conn;
    bool outbound;                  /* PEER_UP: we dialled */
    bool ok;                        /* AUTH_VERIFIED, ADAPTER_VERIFIED, VOTE */
    bool accept;                    /* GATE_VERDICT, VOTE */
    int gate;                       /* ADAPTER: 0 not run yet, 1 accepted, -1 rejected */
    int code;                       /* VOTE with ok = false: the PROTO_E_* peer fault the vote
                                       proves (a signature by a key we trust that does not
                                       verify, a body naming another adapter or signer): the
                                       sender is faulted; 0 = only untrusted or revoked here
                                       (keyrings differ): dropped, no strike */
    uint8_t nonce[MSG_NONCE_LEN];   /* PEER_UP: fresh, from the driver's CSPRNG */
    msg_id id;
    msg_id by;                      /* VOTE: signer key id */
    msg_id from;                    /* VOTE: the relaying peer's key id, as given in
                                       GOSSIP_ACT_VERIFY_VOTE (its connection may be gone) */
    const char *domain;             /* ADAPTER */
    const char *addr;               /* MEMBER */
    uint64_t size, stored;          /* ADAPTER */
    struct msg_bytes body;          /* FRAME: frame body; VOTE: canonical vote bytes */
    struct msg_bytes sig;           /* AUTH_SIGNED, VOTE */
};

enum gossip_action_type {
    GOSSIP_ACT_SEND,              /* conn, frame (whole frame, owned by the list) */
    GOSSIP_ACT_CLOSE,             /* conn, code: close after the queued sends */
    GOSSIP_ACT_STRIKE,            /* conn, code, by = peer key id (zero before HELLO) */
    GOSSIP_ACT_AUTHENTICATED,     /* conn, by: raise its frame_reader to FRAME_MAX */
    GOSSIP_ACT_SIGN_AUTH,         /* conn, by, auth: sign, answer GOSSIP_EV_AUTH_SIGNED (or,
                                     for a banned key `by`, close the connection instead) */
    GOSSIP_ACT_VERIFY_AUTH,       /* conn, by, pk, auth, sig: answer GOSSIP_EV_AUTH_VERIFIED;
                                     deliver no further frame of this conn before that
                                     answer (stop reading its socket meanwhile) */
    GOSSIP_ACT_SEND_ADAPTER,      /* conn, id, domain, size, off, count = chunk bytes: send
                                     MANIFEST, then CHUNKs of `count` bytes from `off` to the
                                     end (msg_chunk_head + file bytes, no copy) */
    GOSSIP_ACT_STORE_MANIFEST,    /* id, domain, size, data = cfg, data2 = manifest */
    GOSSIP_ACT_STORE_CHUNK,       /* id, off, data: write at off of the temp file */
    GOSSIP_ACT_VERIFY_ADAPTER,    /* id: SHA-256 the temp file, answer ADAPTER_VERIFIED;
                                     on ok it becomes the stored adapter (fsync, rename) */
    GOSSIP_ACT_DISCARD,           /* id: delete the temp file (hash mismatch) */
    GOSSIP_ACT_RUN_GATE,          /* id: answer GOSSIP_EV_GATE_VERDICT */
    GOSSIP_ACT_SIGN_VOTE,         /* id, accept: sign our vote, answer GOSSIP_EV_VOTE */
    GOSSIP_ACT_VERIFY_VOTE,       /* conn, id, by, data = body, data2 = sig: check, answer
                                     GOSSIP_EV_VOTE (ok = false if bad or untrusted; code
                                     says whether it proves the sender lied) */
    GOSSIP_ACT_COMMIT,            /* id, count: quorum reached, merge it */
    GOSSIP_ACT_AUDIT,             /* audit, id, by, accept, count: append one record */
    GOSSIP_ACT_MEMBERS,           /* count: membership changed (gossip_members) */
};

enum gossip_audit {
    GOSSIP_AUDIT_GATE = 1,        /* id, accept */
    GOSSIP_AUDIT_VOTE,            /* id, by, accept: a vote kept */
    GOSSIP_AUDIT_EQUIVOCATION,    /* id, by: that key signed both verdicts */
    GOSSIP_AUDIT_COMMIT,          /* id, count = distinct ACCEPT keys */
};

/* Borrowed pointers (data, data2, pk) stay valid until the next gossip_step
 * or gossip_free on the same engine; `frame` is owned by the action list. */
struct gossip_action {
    enum gossip_action_type type;
    uint32_t conn;
    int code;
    bool accept;
    enum gossip_audit audit;
    msg_id id, by;
    msg_id from;                    /* VERIFY_VOTE: key id of the peer that relayed it */
    uint64_t off, size;
    uint32_t count;
    char domain[MSG_DOMAIN_MAX + 1];
    uint8_t auth[MSG_AUTH_INPUT_LEN];
    struct msg_bytes frame, data, data2, pk, sig;
};

struct gossip_actions {             /* zero-initialise; reuse across steps */
    size_t n, cap;
    struct gossip_action *v;
};

/* Adapter states, as gossip_adapter_state reports them. */
enum gossip_ad_state {
    GOSSIP_AD_NONE = 0,           /* unknown id */
    GOSSIP_AD_PARTIAL,            /* known from a digest or offer; bytes missing */
    GOSSIP_AD_VERIFYING,          /* all bytes stored, hash pending */
    GOSSIP_AD_HELD,               /* whole and hashed: listed in our DIGEST */
    GOSSIP_AD_COMMITTED,          /* held, gate accepted, quorum reached */
};

struct gossip;  /* opaque */

/* New engine. Returns 0 (*out is the caller's: gossip_free), PROTO_E_ARG
 * (pk empty or over MSG_PK_MAX, addr invalid, chunk_size over MSG_CHUNK_MAX,
 * quorum 0) or PROTO_E_NOMEM. */
int gossip_new(struct gossip **out, const struct gossip_config *cfg);

/* Free the engine; NULL is fine. */
void gossip_free(struct gossip *g);

/* Feed one event, append the resulting actions to `out`. Returns 0, or
 * PROTO_E_NOMEM / PROTO_E_ARG (unknown event type) after which the actions
 * already appended are still to be executed. A peer's misbehaviour is never
 * an error here: it becomes BYE + STRIKE + CLOSE actions. */
int gossip_step(struct gossip *g, const struct gossip_event *ev, struct gossip_actions *out);

/* When to deliver the next GOSSIP_EV_TICK at the latest (ms, same clock). */
uint64_t gossip_next_deadline_ms(const struct gossip *g);

/* Free the frames the actions own and empty the list (capacity kept). */
void gossip_actions_reset(struct gossip_actions *a);

/* Reset and release the list's memory. */
void gossip_actions_free(struct gossip_actions *a);

enum gossip_ad_state gossip_adapter_state(const struct gossip *g, const msg_id id);

/* Members known (self included when it listens), sorted by key id: copies
 * up to `cap` into out (may be NULL with cap 0); returns the total count. */
size_t gossip_members(const struct gossip *g, struct msg_peer *out, size_t cap);

/* Current round number (starts at 0, +1 at each round start). */
uint64_t gossip_round(const struct gossip *g);

/* Key `by` is no longer trusted (the driver reloaded its keyring): drop its
 * votes from every adapter, so that they count towards no quorum and are
 * relayed no more (DIGEST then advertises fewer votes; were the key trusted
 * again, the votes would be pulled again). Adapters already committed stay
 * committed: that decision is in the audit log. Dropping votes can never
 * complete a quorum, so there are no actions. Returns how many votes went. */
size_t gossip_untrust(struct gossip *g, const msg_id by);

#endif
