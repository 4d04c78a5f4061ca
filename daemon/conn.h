/* daemon/conn.h: internals shared by transport.c (listeners, dials, bans,
 * the connection table) and conn.c (one connection: reads, framing, write
 * queue, timers, closing). Private to those two files; the rest of the
 * daemon uses transport.h only.
 *
 * Lifetime of a connection: conn_new (handles initialised) -> conn_up (id
 * assigned, in the table, on_up) -> conn_close_graceful or conn_close_hard
 * -> both handles' close callbacks -> conn_finish (on_down if it was up,
 * out of the table, freed). Callbacks into the node are made from libuv
 * callbacks only, never from inside a transport_* call, except on_frame,
 * which runs from the read callback or the resume drain.
 */
#ifndef PLORA_CONN_H
#define PLORA_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "frame.h"
#include "transport.h"

#define CONN_ADDR_MAX 64u        /* "[v6 text]:port" and NUL */
#define CONN_HOST_MAX 48u        /* INET6_ADDRSTRLEN and NUL */
#define CONN_WHY_MAX 160u
#define CONN_BUCKETS 256u        /* connection table: id & (CONN_BUCKETS - 1) */
#define CONN_LINGER_MS 1000u     /* graceful close: flush + wait for the peer's FIN */
#define CONN_READ_MIN (256u << 10) /* read window for small frames */
#define CONN_READ_BIG (64u << 10)  /* frames from this size on are read header, body */
#define CONN_READ_KEEP (4u << 20)  /* an empty read buffer larger than this is freed */

enum conn_state {
    CONN_CONNECTING,  /* outbound, not yet connected: no id, not in the table */
    CONN_OPEN,        /* up: frames flow */
    CONN_LINGER,      /* flushing its queue, reading and discarding, until FIN or 1 s */
    CONN_CLOSED,      /* uv_close called on both handles */
};

/* What the read side knows of the byte stream, judged as bytes arrive
 * (the frame reader judges lengths only when a frame is taken). */
struct conn_track {
    uint8_t hdr[FRAME_HEADER];
    unsigned hdr_got;     /* 0..4 bytes of the current frame's prefix */
    uint64_t body_left;   /* body bytes still to come once hdr_got == 4 */
    uint32_t last_len;    /* body length of the last complete frame */
};

struct dial;

struct conn {
    struct transport *t;
    struct conn *hnext;           /* chain in t->table */
    uint32_t id;                  /* 0 until up */
    enum conn_state state;
    bool outbound, up, authed, paused, reading, drain_pending;
    bool want_writable;           /* a send was refused: tell the node when it drains */
    bool shut_sent, shut_done;    /* linger: our FIN requested / written */
    bool peer_eof;                /* linger: the peer's FIN (or an error) is in */
    bool in_frame, cap_pending;   /* inside on_frame; set_authed waits for it to return */
    int handles;                  /* open libuv handles (tcp, timer) */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    struct frame_reader *fr;
    struct conn_track tr;
    struct dial *dial;            /* the dial that made it, NULL for inbound/undialled */
    size_t queued;                /* bytes handed to uv_write and not yet completed */
    size_t rcap;                  /* largest read space the frame reader has offered */
    size_t stall_wq;              /* libuv's write queue size when last looked at */
    uint64_t opened_ms, frame_start_ms, last_frame_ms, last_write_ms, linger_ms;
    uint64_t timer_due;           /* when the armed timer fires; 0 = not armed */
    int down_code;
    char why[CONN_WHY_MAX];
    char addr[CONN_ADDR_MAX];     /* remote "host:port" */
    char host[CONN_HOST_MAX];     /* remote IP text, the ban key */
};

struct host_rec {                 /* strikes and bans of one remote IP */
    char host[CONN_HOST_MAX];
    uint32_t strikes;
    uint64_t last_strike_ms, ban_until_ms;
};

struct listener {
    struct listener *next;
    struct transport *t;
    uv_tcp_t tcp;
};

struct transport {
    uv_loop_t *loop;
    struct transport_opts o;      /* defaults filled in */
    struct transport_cbs cb;
    struct conn *table[CONN_BUCKETS];
    uint32_t next_id, n_conns;    /* n_conns: every conn object alive, any state */
    struct listener *listeners;
    struct dial *dials;
    struct host_rec *hosts;       /* o.hosts_max entries, host[0] == 0 when free */
    size_t n_hosts_max;
    uv_idle_t drain_idle;         /* delivers frames held while paused, after resume */
    bool drain_init, drain_active;
    bool stopped, shutting_down;
    uint64_t handles;             /* libuv handles and requests not yet released */
    uint64_t rng;                 /* xorshift64* state for dial jitter */
    uint8_t *scratch;             /* discard buffer of lingering connections */
    struct transport_stats st;
};

/* conn.c */
int conn_new(struct transport *t, bool outbound, struct conn **out);
int conn_peer_name(struct conn *c);
void conn_up(struct conn *c, const char *dial_addr);
int conn_can_queue(struct conn *c, size_t n);
void conn_close_graceful(struct conn *c, int code, const char *why);
void conn_close_hard(struct conn *c, int code, const char *why);
void conn_fault(struct conn *c, int proto_code, bool strike, const char *why);
int conn_send(struct conn *c, uint8_t *base, size_t off, size_t n, bool force);
/* Called once a referenced buffer is no longer needed (conn_send_ref). */
typedef void conn_release_fn(void *base, size_t len);
int conn_send_ref(struct conn *c, const uint8_t *head, size_t hn, const uint8_t *data, size_t dn,
                  conn_release_fn *release, void *rbase, size_t rlen);
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);
void conn_set_authed(struct conn *c);
void conn_drain(struct conn *c);

/* transport.c */
struct conn *transport_conn_find(const struct transport *t, uint32_t id);
void transport_conn_insert(struct transport *t, struct conn *c);
void transport_conn_remove(struct transport *t, struct conn *c);
bool transport_host_strike(struct transport *t, const char *host);
bool transport_host_banned(struct transport *t, const char *host);
void transport_dial_conn_gone(struct dial *dl);
void transport_dial_authed(struct dial *dl);
void transport_sockaddr_text(const struct sockaddr *sa, char *addr, size_t addr_cap,
                             char *host, size_t host_cap);
void transport_drain_later(struct transport *t);

#endif
