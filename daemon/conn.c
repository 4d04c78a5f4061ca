/* daemon/conn.c: one plorad connection over libuv: reads into the frame
 * reader's own buffer, the write queue, the per-connection timer and the
 * graceful close (see conn.h for the lifetime, transport.h for the limits).
 *
 * Read path: the kernel writes straight into the frame reader's buffer
 * (frame_reader_space/commit), and frames are handed to the node from there,
 * so a frame's bytes are copied once (kernel to user). A small tracker
 * follows the frame boundaries as bytes arrive: it times the frame in
 * progress and sizes the next read to the rest of a big frame, so that a
 * read stops at its end and the buffer seldom has to be compacted.
 *
 * Write path: each frame is tried with uv_try_write when nothing is queued,
 * else (or for the rest) given to uv_write and freed in its callback.
 * `queued` counts the bytes libuv still holds for us; it never exceeds
 * queue_max except by our own closing BYE.
 */
#include "conn.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "msg.h"

struct wreq {
    uv_write_t req;
    struct conn *c;
    uint8_t *frame;   /* owned; freed when the write completes */
    size_t n;         /* bytes given to uv_write (the frame's unsent tail) */
    conn_release_fn *release;   /* conn_send_ref: called instead of free(frame) */
    void *rbase;
    size_t rlen;
    uint8_t head[];   /* conn_send_ref: the copied head */
};

enum due_kind { DUE_NONE, DUE_LINGER, DUE_HANDSHAKE, DUE_FRAME, DUE_IDLE, DUE_STALL };

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void conn_arm(struct conn *c);

/* Fresh loop time: the node may have computed for a while since the loop
 * last woke, and a stale clock would shorten the deadlines set now. */
static uint64_t now_ms(const struct conn *c)
{
    uv_update_time(c->t->loop);
    return uv_now(c->t->loop);
}

/* Body cap in force for frames taken now. */
static size_t conn_cap(const struct conn *c)
{
    return c->authed ? c->t->o.frame_max : c->t->o.preauth_frame_max;
}

static void set_down(struct conn *c, int code, const char *why)
{
    if (c->why[0] != 0)
        return;  /* the first reason wins */
    c->down_code = code;
    snprintf(c->why, sizeof(c->why), "%s", why != NULL && why[0] != 0 ? why : "closed");
}

static void on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct transport *t = c->t;

    t->handles--;
    if (--c->handles > 0)
        return;
    if (c->up) {
        log_debug("PEER-DOWN", "conn=%" PRIu32 " peer=%s %s", c->id, c->addr, c->why);
        t->cb.on_down(t->cb.ctx, c->id, c->down_code, c->why);
        transport_conn_remove(t, c);
    }
    if (c->dial != NULL)
        transport_dial_conn_gone(c->dial);
    frame_reader_free(c->fr);
    t->n_conns--;
    free(c);
}

/* Returns 0, DMN_E_NOMEM, DMN_E_LOOP. *out is owned by its handles: it is
 * freed by the close callbacks after conn_close_hard. */
int conn_new(struct transport *t, bool outbound, struct conn **out)
{
    struct conn *c;

    *out = NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return DMN_E_NOMEM;
    if (frame_reader_new(&c->fr, t->o.preauth_frame_max) != 0) {
        free(c);
        return DMN_E_NOMEM;
    }
    if (uv_tcp_init(t->loop, &c->tcp) != 0) {
        frame_reader_free(c->fr);
        free(c);
        return DMN_E_LOOP;
    }
    uv_timer_init(t->loop, &c->timer);
    c->t = t;
    c->outbound = outbound;
    c->state = CONN_CONNECTING;
    c->tcp.data = c;
    c->timer.data = c;
    c->connect_req.data = c;
    c->shutdown_req.data = c;
    c->handles = 2;
    t->handles += 2;
    t->n_conns++;
    *out = c;
    return 0;
}

/* Fill addr and host from the socket's peer. Returns 0 or a libuv error. */
int conn_peer_name(struct conn *c)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss), rc;

    if ((rc = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len)) != 0)
        return rc;
    transport_sockaddr_text((struct sockaddr *)&ss, c->addr, sizeof(c->addr), c->host,
                            sizeof(c->host));
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct conn *c = h->data;
    const struct conn_track *tr = &c->tr;
    size_t want = CONN_READ_MIN, avail;
    uint8_t *p;

    if (c->state != CONN_OPEN) {  /* lingering: read and discard */
        *buf = uv_buf_init((char *)c->t->scratch, CONN_READ_MIN);
        return;
    }
    /* Big frames are read as header, then exactly the body, so that each
     * lands whole at the front of an empty buffer and is never moved. The
     * body size is trusted only from an authenticated peer and under the cap:
     * never reserve memory for a length we will refuse. */
    if (c->authed && tr->hdr_got == FRAME_HEADER && tr->body_left >= CONN_READ_BIG &&
        tr->body_left <= c->t->o.frame_max)
        want = (size_t)tr->body_left;
    else if (c->authed && tr->hdr_got < FRAME_HEADER && tr->last_len >= CONN_READ_BIG)
        want = FRAME_HEADER - tr->hdr_got;  /* chunk after chunk: just the next header */
    /* Empty: asking for the whole buffer moves the reader to its front,
     * which costs nothing now. */
    if (frame_reader_space(c->fr, frame_reader_buffered(c->fr) == 0 && c->rcap > want
                                      ? c->rcap : want, &p, &avail) != 0) {
        *buf = uv_buf_init(NULL, 0);  /* read_cb gets UV_ENOBUFS */
        return;
    }
    if (avail > c->rcap)
        c->rcap = avail;
    if (avail > want)
        avail = want;
    *buf = uv_buf_init((char *)p, (unsigned)avail);
}

static void start_reading(struct conn *c)
{
    int rc;

    if (c->reading || c->state == CONN_CLOSED)
        return;
    if ((rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) != 0) {
        char why[CONN_WHY_MAX];

        snprintf(why, sizeof(why), "read error: %s", uv_strerror(rc));
        conn_close_hard(c, DMN_E_PEER, why);
        return;
    }
    c->reading = true;
}

static void stop_reading(struct conn *c)
{
    if (!c->reading)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

/* Follow frame boundaries over n new bytes: O(frames), not O(bytes). */
static void track(struct conn *c, const uint8_t *p, size_t n)
{
    struct conn_track *tr = &c->tr;
    uint64_t now = now_ms(c);
    size_t k;

    while (n > 0) {
        if (tr->hdr_got < FRAME_HEADER) {
            if (tr->hdr_got == 0)
                c->frame_start_ms = now;
            k = FRAME_HEADER - tr->hdr_got < n ? FRAME_HEADER - tr->hdr_got : n;
            memcpy(tr->hdr + tr->hdr_got, p, k);
            tr->hdr_got += (unsigned)k;
            if (tr->hdr_got == FRAME_HEADER)
                tr->body_left = (uint64_t)tr->hdr[0] << 24 | (uint64_t)tr->hdr[1] << 16 |
                                (uint64_t)tr->hdr[2] << 8 | tr->hdr[3];
        } else {
            k = tr->body_left < n ? (size_t)tr->body_left : n;
            tr->body_left -= k;
        }
        p += k;
        n -= k;
        if (tr->hdr_got == FRAME_HEADER && tr->body_left == 0) {
            tr->last_len = (uint32_t)tr->hdr[0] << 24 | (uint32_t)tr->hdr[1] << 16 |
                           (uint32_t)tr->hdr[2] << 8 | tr->hdr[3];
            tr->hdr_got = 0;
            c->last_frame_ms = now;
        }
    }
}

/* The reader refused a length: "frame length 4294967295 over 8192". */
static void frame_error(struct conn *c, const struct proto_diag *d)
{
    char why[CONN_WHY_MAX];
    uint32_t len;

    if (sscanf(d->msg, "frame length %" SCNu32, &len) == 1)
        snprintf(why, sizeof(why), "frame length %" PRIu32 " %s %zu", len,
                 len == 0 ? "under" : "over", len == 0 ? (size_t)1 : conn_cap(c));
    else
        snprintf(why, sizeof(why), "%.150s", d->msg);
    log_warn("PEER-BAD-FRAME", "conn=%" PRIu32 " peer=%s %s: %s; closing", c->id, c->addr,
             proto_err_name(d->code), why);
    conn_fault(c, PROTO_E_FRAME_LEN, true, why);
}

/* After a rare big frame (a 16 MiB one leaves a 32 MiB buffer), give the
 * memory back once the reader is empty: a new reader starts small. */
static void shrink_reader(struct conn *c)
{
    struct frame_reader *nr;

    if (frame_reader_buffered(c->fr) != 0 || c->rcap <= CONN_READ_KEEP ||
        frame_reader_new(&nr, conn_cap(c)) != 0)
        return;
    frame_reader_free(c->fr);
    c->fr = nr;
    c->rcap = 0;
}

/* Hand every complete buffered frame to the node while open and unpaused. */
void conn_drain(struct conn *c)
{
    struct transport *t = c->t;
    struct proto_diag d = {0};
    const uint8_t *body;
    size_t len;
    int rc;

    c->drain_pending = false;
    while (c->state == CONN_OPEN && !c->paused) {
        rc = frame_reader_next(c->fr, &body, &len, &d);
        if (rc == PROTO_E_NEED_MORE)
            break;
        if (rc != 0) {
            frame_error(c, &d);
            break;
        }
        t->st.frames_in++;
        c->in_frame = true;
        t->cb.on_frame(t->cb.ctx, c->id, body, len);
        c->in_frame = false;
        if (c->cap_pending) {  /* set_authed from inside on_frame */
            c->cap_pending = false;
            frame_reader_set_max(c->fr, t->o.frame_max);
        }
    }
    if (c->state == CONN_OPEN)
        shrink_reader(c);
    conn_arm(c);
}

static void linger_step(struct conn *c);

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;

    if (status == UV_ECANCELED || c->state != CONN_LINGER)
        return;
    c->shut_done = true;
    if (status < 0)
        c->peer_eof = true;  /* nothing more to wait for */
    linger_step(c);
}

/* Lingering: FIN once the queue is out, close once the peer's FIN is in. */
static void linger_step(struct conn *c)
{
    if (c->state != CONN_LINGER)
        return;
    if (c->queued == 0 && !c->shut_sent) {
        c->shut_sent = true;
        if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
            conn_close_hard(c, c->down_code, c->why);
            return;
        }
    }
    if (c->shut_done && c->peer_eof)
        conn_close_hard(c, c->down_code, c->why);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    struct proto_diag d = {0};
    char why[CONN_WHY_MAX];

    if (nread == 0 || c->state == CONN_CLOSED)
        return;
    if (c->state == CONN_LINGER) {  /* discarded; wait for EOF */
        if (nread < 0) {
            c->reading = false;
            uv_read_stop(s);
            c->peer_eof = true;
            linger_step(c);
        }
        return;
    }
    if (nread == UV_EOF) {
        stop_reading(c);
        c->peer_eof = true;
        conn_close_graceful(c, 0, "peer closed");
        return;
    }
    if (nread < 0) {
        snprintf(why, sizeof(why), "read error: %s", uv_strerror((int)nread));
        conn_close_hard(c, DMN_E_PEER, why);
        return;
    }
    if (frame_reader_commit(c->fr, (size_t)nread, &d) != 0) {
        conn_close_hard(c, DMN_E_PEER, d.msg);
        return;
    }
    c->t->st.bytes_in += (uint64_t)nread;
    track(c, (const uint8_t *)buf->base, (size_t)nread);
    conn_drain(c);
}

void conn_up(struct conn *c, const char *dial_addr)
{
    struct transport *t = c->t;

    c->state = CONN_OPEN;
    c->up = true;
    c->opened_ms = c->last_frame_ms = now_ms(c);
    transport_conn_insert(t, c);
    uv_tcp_nodelay(&c->tcp, 1);
    t->st.conns++;
    log_debug("PEER-UP", "conn=%" PRIu32 " peer=%s %s", c->id, c->addr,
              c->outbound ? "outbound" : "inbound");
    start_reading(c);
    conn_arm(c);
    /* Even if reading failed to start: on_down (from the close) follows. */
    t->cb.on_up(t->cb.ctx, c->id, c->outbound, c->addr, dial_addr);
}

/* Release both handles; pending writes are cancelled (and freed) by libuv
 * before the close callbacks run. */
void conn_close_hard(struct conn *c, int code, const char *why)
{
    if (c->state == CONN_CLOSED)
        return;
    set_down(c, code, why);
    stop_reading(c);
    c->state = CONN_CLOSED;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}

/* Flush the queue, send FIN, wait for the peer's (at most CONN_LINGER_MS),
 * discarding what it still sends, so that our last frame (a BYE) is not
 * destroyed by a reset. */
void conn_close_graceful(struct conn *c, int code, const char *why)
{
    if (c->state != CONN_OPEN) {
        if (c->state == CONN_CONNECTING)
            conn_close_hard(c, code, why);
        return;
    }
    set_down(c, code, why);
    c->state = CONN_LINGER;
    c->linger_ms = now_ms(c);
    if (!c->peer_eof)
        start_reading(c);
    linger_step(c);
    conn_arm(c);
}

/* A peer fault: BYE{proto_code, why}, close, maybe a strike on its host. */
void conn_fault(struct conn *c, int proto_code, bool strike, const char *why)
{
    struct msg m = {0};
    struct proto_diag d;
    uint8_t *frame = NULL;
    size_t n = 0;

    if (c->state != CONN_OPEN)
        return;
    m.type = MSG_BYE;
    m.u.bye.code = proto_code;
    snprintf(m.u.bye.text, sizeof(m.u.bye.text), "%s", why);
    if (msg_encode(&m, &frame, &n, &d) == 0)
        conn_send(c, frame, 0, n, true);
    if (strike)
        transport_host_strike(c->t, c->host);
    c->t->st.dropped++;
    conn_close_graceful(c, DMN_E_PEER, why);
}

static void write_failed(struct conn *c, int err)
{
    char why[CONN_WHY_MAX];

    snprintf(why, sizeof(why), "write error: %s", uv_strerror(err));
    conn_close_hard(c, DMN_E_PEER, why);
}

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = w->c;
    struct transport *t = c->t;
    size_t before = c->queued, half = t->o.queue_max / 2;

    c->queued -= w->n;
    if (w->release != NULL)
        w->release(w->rbase, w->rlen);
    else
        free(w->frame);
    if (status < 0) {
        free(w);
        if (status != UV_ECANCELED)
            write_failed(c, status);
        return;
    }
    t->st.bytes_out += w->n;
    t->st.frames_out++;
    free(w);
    c->last_write_ms = now_ms(c);
    if (c->state == CONN_LINGER) {
        linger_step(c);
        return;
    }
    if (c->state == CONN_OPEN && c->queued <= half && (before > half || c->want_writable)) {
        c->want_writable = false;
        if (t->cb.on_writable != NULL)
            t->cb.on_writable(t->cb.ctx, c->id);
    }
}

/* Whether n more bytes fit the queue. Returns 0, DMN_E_NOT_FOUND (closing),
 * DMN_E_RANGE (full: on_writable will follow). */
int conn_can_queue(struct conn *c, size_t n)
{
    size_t max = c->t->o.queue_max;

    if (c->state != CONN_OPEN)
        return DMN_E_NOT_FOUND;
    if (c->queued > max || n > max - c->queued) {
        c->want_writable = true;
        return DMN_E_RANGE;
    }
    return 0;
}

/* The queued write w of n bytes, `done` of which uv_try_write already sent. */
static int queue_write(struct conn *c, struct wreq *w, uv_buf_t *b, unsigned nb, size_t n,
                       size_t done)
{
    int rc;

    w->c = c;
    w->n = n - done;
    if ((rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, b, nb, on_write)) != 0) {
        write_failed(c, rc);
        return DMN_E_NOT_FOUND;
    }
    if (c->queued == 0) {  /* the stall clock starts */
        c->last_write_ms = now_ms(c);
        c->stall_wq = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
    }
    c->queued += n - done;
    conn_arm(c);
    return 0;
}

/* Nothing queued ahead of a frame of n bytes in b[0..nb): give the socket
 * what it takes now. *done = bytes written (n: the frame is out). Returns
 * 0, or DMN_E_NOT_FOUND when the write failed (on_down follows). */
static int write_direct(struct conn *c, const uv_buf_t *b, unsigned nb, size_t n, size_t *done)
{
    int rc;

    *done = 0;
    if (c->queued != 0)
        return 0;
    rc = uv_try_write((uv_stream_t *)&c->tcp, b, nb);
    if (rc < 0 && rc != UV_EAGAIN) {
        write_failed(c, rc);
        return DMN_E_NOT_FOUND;
    }
    *done = rc > 0 ? (size_t)rc : 0;
    c->t->st.bytes_out += *done;
    if (*done == n)
        c->t->st.frames_out++;
    return 0;
}

/* A write request with `extra` bytes after it; out of memory closes the
 * connection (the peer would see a torn frame). */
static struct wreq *wreq_new(struct conn *c, size_t extra)
{
    struct wreq *w = malloc(sizeof(*w) + extra);

    if (w == NULL)
        conn_close_hard(c, DMN_E_NOMEM, "out of memory");
    return w;
}

/* Queue the whole frame base[off..off+n); takes `base` (malloc'd) in every
 * case. `force` skips the queue cap (our closing BYE). Returns 0,
 * DMN_E_NOT_FOUND, DMN_E_RANGE, DMN_E_NOMEM. */
int conn_send(struct conn *c, uint8_t *base, size_t off, size_t n, bool force)
{
    uint8_t *frame = base + off;
    struct wreq *w;
    uv_buf_t b = uv_buf_init((char *)frame, (unsigned)n);
    size_t done = 0;
    int rc = force ? (c->state == CONN_OPEN ? 0 : DMN_E_NOT_FOUND) : conn_can_queue(c, n);

    if (rc != 0 || n == 0 || (rc = write_direct(c, &b, 1, n, &done)) != 0 || done == n)
        goto out;
    if ((w = wreq_new(c, 0)) == NULL) {
        rc = DMN_E_NOMEM;
        goto out;
    }
    w->frame = base;
    w->release = NULL;
    b = uv_buf_init((char *)frame + done, (unsigned)(n - done));
    if ((rc = queue_write(c, w, &b, 1, n, done)) != 0) {
        free(w);
        goto out;
    }
    base = NULL;  /* transferred to w */
out:
    free(base);
    return rc;
}

/* Queue head[0..hn) + data[0..dn) as one frame: the head is copied, the
 * data is only referenced until release(rbase, rlen) is called, exactly
 * once in every case (sent, refused, failed, cancelled by a close). Same
 * codes as conn_send. */
int conn_send_ref(struct conn *c, const uint8_t *head, size_t hn, const uint8_t *data, size_t dn,
                  conn_release_fn *release, void *rbase, size_t rlen)
{
    struct wreq *w;
    uv_buf_t b[2] = { uv_buf_init((char *)head, (unsigned)hn),
                      uv_buf_init((char *)data, (unsigned)dn) };
    unsigned nb = 0;
    size_t n = hn + dn, done = 0, dd;
    int rc = conn_can_queue(c, n);

    if (rc != 0 || n == 0 || (rc = write_direct(c, b, 2, n, &done)) != 0 || done == n)
        goto out;
    if ((w = wreq_new(c, hn)) == NULL) {
        rc = DMN_E_NOMEM;
        goto out;
    }
    memcpy(w->head, head, hn);
    w->frame = NULL;
    w->release = release;
    w->rbase = rbase;
    w->rlen = rlen;
    if (done < hn)
        b[nb++] = uv_buf_init((char *)w->head + done, (unsigned)(hn - done));
    dd = done > hn ? done - hn : 0;   /* data bytes already written */
    b[nb++] = uv_buf_init((char *)data + dd, (unsigned)(dn - dd));
    if ((rc = queue_write(c, w, b, nb, n, done)) != 0) {
        free(w);
        goto out;
    }
    return 0;
out:
    release(rbase, rlen);
    return rc;
}

void conn_pause(struct conn *c)
{
    if (c->state != CONN_OPEN || c->paused)
        return;
    c->paused = true;
    stop_reading(c);
    conn_arm(c);
}

void conn_resume(struct conn *c)
{
    if (c->state != CONN_OPEN || !c->paused)
        return;
    c->paused = false;
    c->last_frame_ms = c->frame_start_ms = now_ms(c);  /* our pause is not the peer's delay */
    start_reading(c);
    if (frame_reader_buffered(c->fr) > 0 && !c->drain_pending) {
        c->drain_pending = true;  /* delivered from the loop, not inside this call */
        transport_drain_later(c->t);
    }
    conn_arm(c);
}

void conn_set_authed(struct conn *c)
{
    if (c->state != CONN_OPEN || c->authed)
        return;
    c->authed = true;
    c->last_frame_ms = now_ms(c);
    if (c->in_frame)
        c->cap_pending = true;
    else
        frame_reader_set_max(c->fr, c->t->o.frame_max);
    if (c->dial != NULL)
        transport_dial_authed(c->dial);
    conn_arm(c);
}

/* Earliest deadline of c (0 = none) and what it is. */
static uint64_t conn_due(const struct conn *c, enum due_kind *kind)
{
    const struct transport_opts *o = &c->t->o;
    uint64_t due = 0, cand[DUE_STALL + 1] = {0};
    int k;

    *kind = DUE_NONE;
    if (c->state == CONN_LINGER)
        cand[DUE_LINGER] = c->linger_ms + CONN_LINGER_MS;
    if (c->state == CONN_OPEN) {
        if (!c->authed)
            cand[DUE_HANDSHAKE] = c->opened_ms + o->handshake_ms;
        if (!c->paused && c->tr.hdr_got > 0)
            cand[DUE_FRAME] = c->frame_start_ms + o->frame_ms;
        if (!c->paused && c->authed)
            cand[DUE_IDLE] = c->last_frame_ms + o->idle_ms;
        if (c->queued > 0)
            cand[DUE_STALL] = c->last_write_ms + o->idle_ms;
    }
    for (k = DUE_LINGER; k <= DUE_STALL; k++)
        if (cand[k] != 0 && (due == 0 || cand[k] < due)) {
            due = cand[k];
            *kind = (enum due_kind)k;
        }
    return due;
}

static void on_timer(uv_timer_t *h)
{
    struct conn *c = h->data;
    const struct transport_opts *o = &c->t->o;
    enum due_kind kind;
    uint64_t due = conn_due(c, &kind);
    char why[CONN_WHY_MAX];

    c->timer_due = 0;
    if (due == 0 || due > now_ms(c)) {
        conn_arm(c);
        return;
    }
    switch (kind) {
    case DUE_LINGER:
        conn_close_hard(c, c->down_code, c->why);
        return;
    case DUE_HANDSHAKE:
        snprintf(why, sizeof(why), "handshake timeout");
        break;
    case DUE_FRAME:
        snprintf(why, sizeof(why), "frame not completed within %" PRIu32 " ms", o->frame_ms);
        break;
    case DUE_IDLE:
        snprintf(why, sizeof(why), "idle timeout %" PRIu32 " ms", o->idle_ms);
        break;
    default:  /* DUE_STALL: the peer does not read; a BYE would not get through */
        if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) != c->stall_wq) {
            c->stall_wq = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
            c->last_write_ms = now_ms(c);  /* part of a frame went out: it moves */
            conn_arm(c);
            return;
        }
        snprintf(why, sizeof(why), "write queue stalled for %" PRIu32 " ms", o->idle_ms);
        log_info("PEER-TIMEOUT", "conn=%" PRIu32 " peer=%s %s", c->id, c->addr, why);
        c->t->st.dropped++;
        conn_close_hard(c, DMN_E_PEER, why);
        return;
    }
    log_info("PEER-TIMEOUT", "conn=%" PRIu32 " peer=%s %s", c->id, c->addr, why);
    conn_fault(c, PROTO_E_STATE, false, why);  /* a slow network is not malice: no strike */
}

/* Arm the timer for the earliest deadline. A deadline that moved later
 * leaves the timer early: it fires, finds nothing due, and re-arms. */
static void conn_arm(struct conn *c)
{
    enum due_kind kind;
    uint64_t due, now;

    if (c->state == CONN_CLOSED || c->state == CONN_CONNECTING)
        return;
    due = conn_due(c, &kind);
    if (due == 0) {
        if (c->timer_due != 0)
            uv_timer_stop(&c->timer);
        c->timer_due = 0;
        return;
    }
    if (c->timer_due != 0 && c->timer_due <= due)
        return;
    now = now_ms(c);
    uv_timer_start(&c->timer, on_timer, due > now ? due - now : 1, 0);  /* >= 1: see node_arm */
    c->timer_due = due;
}
