/* daemon/node_impl.h: the node's private state, shared by node.c (set-up,
 * loop, shutdown, status), node_exec.c (engine events and actions),
 * node_jobs.c (thread-pool work) and node_net.c (connections, adapter
 * streaming, overlay). Not a public header: nothing outside node*.c and
 * status.c includes it (status.c goes through node.h). */
#ifndef PLORA_NODE_IMPL_H
#define PLORA_NODE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "audit.h"
#include "config.h"
#include "gossip.h"
#include "http.h"
#include "jobs.h"
#include "metrics.h"
#include "node.h"
#include "overlay.h"
#include "store.h"
#include "transport.h"

#define NODE_PUBLISH_MIN_MS 100u   /* status documents: at most 10 per second */
#define NODE_GONE_ROUNDS 3u        /* dial failures for longer than this: member gone */
#define NODE_GRACE_ROUNDS 2u       /* a non-neighbour connection lives this long (PEERS) */
#define NODE_LONELY_ROUNDS 2u      /* no authenticated peer this long: dial joins and members */
#define NODE_SEND_CHUNKS 2u        /* CHUNK frames queued per connection at most */
#define NODE_STOP_GRACE_MS 5000u   /* SIGTERM: wait this long for running jobs (a merge) */
#define NODE_DUP_HOLD_MS 300u      /* a stream waits this long on a connection a crossing dial would replace */
#define NODE_KEY_BANS 64u          /* key ids with strikes remembered */

struct send_job {                  /* one adapter streamed to one connection */
    struct send_job *next;
    msg_id id;
    char hex[65];
    char domain[MSG_DOMAIN_MAX + 1];
    uint64_t off, size;
    uint32_t chunk;
    int fd;                        /* -1 until the MANIFEST went out */
};

struct chunk_buf;                  /* a CHUNK's data read from the store (node_net.c) */

struct peer {                      /* one transport connection */
    struct node_peer_info info;
    uint32_t conn;
    bool authed;
    msg_id key;
    char dial_addr[NODE_ADDR_MAX]; /* "" for inbound */
    uint64_t authed_round, authed_ms;
    struct send_job *sends, *sends_tail;
    uint64_t sent_bytes;           /* adapter bytes queued as CHUNKs on this connection */
    uint32_t sent_adapters;        /* SEND_ADAPTER jobs started (MANIFEST sent) */
};

struct vote_seen {                 /* a kept vote: (key, verdict) */
    char by[65];
    bool accept;
};

struct ad_rec {                    /* one adapter this node stores or fetches */
    struct node_adapter_info info; /* first: status reads it */
    msg_id id;
    bool gate_done, local_fail, committed;
    struct jobs_gate_result gate;  /* reasons behind info.reasons */
    char base[256];                /* base model, known once gated */
    struct vote_seen *votes;
    size_t n_votes;
    uint64_t first_byte_ms;        /* STORE_MANIFEST time (monotonic) */
};

struct dialed {                    /* an address this node keeps dialling */
    char addr[NODE_ADDR_MAX];
    msg_id key;
    bool has_key, join, failing, keep;
    uint64_t fail_since;
};

struct key_strikes {
    msg_id key;
    uint32_t strikes;
    uint64_t first_ms, banned_until;
};

struct deferred {                  /* an event that arrived during a step */
    struct gossip_event ev;
    uint8_t *body, *sig;           /* owned copies behind ev.body, ev.sig */
};

struct node {
    uv_loop_t *loop;
    const struct config *cfg;
    struct jobs_trust *trust;
    struct store *store;
    struct audit *audit;
    char audit_path[4096];
    struct gossip *g;
    struct gossip_actions act;
    struct transport *t;
    struct http *http;
    struct metrics m;
    msg_id self;
    char self_hex[65];
    char listen[NODE_ADDR_MAX];
    const char *state;
    uint64_t start_ms, last_round;
    uv_timer_t tick, pub_timer, pump_timer;   /* pump: paced sends waiting for room */
    uv_timer_t stop_timer;          /* NODE_STOP_GRACE_MS after STOPPING: abandon jobs */
    uv_signal_t sig_term, sig_int, sig_hup;
    bool handles_open, stopping, finished, in_step, pub_pending, pumping;
    bool abandoned;                 /* stopped with jobs still on worker threads */
    uint64_t last_pub_ms;
    int exit_code;
    const char *stop_reason;
    /* engine event queue (re-entrancy) */
    struct deferred *defer;
    size_t n_defer, cap_defer;
    /* work in flight */
    uint32_t jobs_inflight;
    bool trim_due;            /* a heavy job ended: malloc_trim once none runs */
    struct jobs_vote *cur_vote;     /* the vote being fed (for its AUDIT) */
    bool hash_strike_local;         /* DISCARD of a local write failure in this batch */
    /* peers, adapters */
    struct peer **peers;
    size_t n_peers;
    uint32_t n_sends;               /* send jobs queued or streaming, all peers */
    struct chunk_buf *chunk_free;   /* CHUNK buffers kept for reuse while n_sends > 0 */
    size_t n_chunk_free;
    struct ad_rec **ads;            /* sorted by id */
    size_t n_ads;
    /* overlay */
    struct overlay ov;
    msg_id *gone;
    size_t n_gone;
    uint32_t lonely_rounds;           /* consecutive rounds without an authenticated peer */
    struct dialed *dials;
    size_t n_dials;
    struct key_strikes bans[NODE_KEY_BANS];
    uint64_t strikes, key_bans, bad_names, vote_rejects;
    /* merges */
    bool merge_running;
    char (*dirty_bases)[256];
    size_t n_dirty;
    struct node_merge_info *merged;
    size_t n_merged;
    /* audit */
    uint64_t since_checkpoint;
};

/* node.c */
uint64_t node_now(const struct node *n);                  /* monotonic ms */
uint64_t node_wall_ms(void);                              /* unix ms */
void node_stop(struct node *n, const char *reason, int exit_code);
void node_maybe_finish(struct node *n);                   /* stop done when no job runs */
void node_publish(struct node *n, bool force);            /* status + metrics, rate-limited */
void node_arm(struct node *n);                            /* re-arm the tick timer */

/* node_exec.c */
void node_feed(struct node *n, struct gossip_event *ev);  /* one engine step + actions */
struct ad_rec *node_ad(struct node *n, const uint8_t id[MSG_ID_LEN], bool create);
void node_audit_done(struct node *n, int rc, const struct crypto_diag *cd, const char *what);
void node_audit_peer(struct node *n, const char *key_hex, const char *addr, const char *event,
                     const char *reason);

/* node_jobs.c */
struct job;
void node_job_sign_auth(struct node *n, const struct gossip_action *x);
void node_job_verify_auth(struct node *n, const struct gossip_action *x);
void node_job_verify_adapter(struct node *n, const struct gossip_action *x);
void node_job_gate(struct node *n, const struct gossip_action *x);
void node_job_sign_vote(struct node *n, const struct gossip_action *x);
void node_job_verify_vote(struct node *n, const struct gossip_action *x);
void node_merge_commit(struct node *n, struct ad_rec *a);  /* schedule (coalesced) */
void node_merge_kick(struct node *n);                       /* start the next due merge */

/* node_net.c */
int node_transport_start(struct node *n, struct dmn_diag *d);
struct peer *node_peer_find(struct node *n, uint32_t conn);
void node_send_adapter(struct node *n, const struct gossip_action *x);
void node_pump(struct node *n, struct peer *p);
void node_overlay_rebuild(struct node *n);
void node_overlay_round(struct node *n);
void node_peer_authed(struct node *n, uint32_t conn, const uint8_t key[MSG_ID_LEN]);
bool node_key_banned(struct node *n, const uint8_t key[MSG_ID_LEN]);
bool node_key_strike(struct node *n, const uint8_t key[MSG_ID_LEN], int code);
void node_dial_joins(struct node *n);
void node_peers_free(struct node *n);

#endif
