/* tests/unit/test_conn.c: daemon/transport.c and conn.c over real loopback
 * sockets. One uv loop per test, driven here with UV_RUN_ONCE and a 5 ms tick
 * under a hard wall-clock deadline, so a bug fails a test instead of hanging
 * the suite. Misbehaving peers are plain POSIX sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame.h"
#include "log.h"
#include "msg.h"
#include "transport.h"

#define MAX_WANT 64

struct fx;

/* One transport and what its callbacks saw. */
struct side {
    struct fx *fx;
    struct transport *t;
    uint32_t conn;                    /* last connection up */
    int ups, downs, writable, dial_fails;
    bool outbound;
    char addr[64], dial_addr[64];
    uint32_t down_conn;
    int down_code;
    char why[256];
    uint64_t down_ms;
    uint64_t fail_ms[32];
    /* receiving: frame i must be want[i % n_want] bytes with pattern seq i */
    const size_t *want;
    size_t n_want, got, got_max;
    uint64_t got_bytes;
    int bad;
    size_t pause_at;                  /* pause once got reaches it (0 = never) */
    bool full_check;                  /* check every byte (else a sample) */
    bool auth_on_up;                  /* transport_set_authed in on_up */
    /* sending (throughput): frames of `pump_n` bytes until pump_total */
    size_t pump_n, pump_total, pumped;
};

struct fx {
    uv_loop_t loop;
    uv_timer_t tick;
    struct side a, b;
    uint8_t *tmpl;                    /* pattern source for big frames */
};

/* Byte i of frame seq's body. */
static uint8_t pat(size_t seq, size_t i)
{
    return (uint8_t)(seq * 131u + i * 7u + (i >> 8));
}

static uint8_t *make_frame(size_t seq, size_t n)
{
    uint8_t *f = malloc(FRAME_HEADER + n);

    assert_non_null(f);
    assert_int_equal(frame_put_header(f, n), 0);
    for (size_t i = 0; i < n; i++)
        f[FRAME_HEADER + i] = pat(seq, i);
    return f;
}

static int send_frame(struct side *s, uint32_t conn, size_t seq, size_t n)
{
    return transport_send(s->t, conn, make_frame(seq, n), FRAME_HEADER + n);
}

/* ---- callbacks ---- */

static void cb_up(void *ctx, uint32_t conn, bool outbound, const char *addr, const char *dial)
{
    struct side *s = ctx;

    s->ups++;
    s->conn = conn;
    s->outbound = outbound;
    snprintf(s->addr, sizeof(s->addr), "%s", addr);
    snprintf(s->dial_addr, sizeof(s->dial_addr), "%s", dial != NULL ? dial : "");
    if (s->auth_on_up)
        transport_set_authed(s->t, conn);
}

static void cb_frame(void *ctx, uint32_t conn, const uint8_t *body, size_t n)
{
    struct side *s = ctx;
    size_t seq = s->got, want = s->n_want ? s->want[seq % s->n_want] : n;

    if (n != want)
        s->bad++;
    else if (s->full_check) {
        for (size_t i = 0; i < n; i++)
            if (body[i] != pat(seq, i)) {
                s->bad++;
                break;
            }
    } else if (n >= 8) {   /* throughput frames: seq in the first 8 bytes, a tail sample */
        uint64_t got = 0;
        for (int i = 0; i < 8; i++)
            got = got << 8 | body[i];
        if (got != seq || body[n - 1] != s->fx->tmpl[n - 1])
            s->bad++;
    }
    s->got++;
    s->got_bytes += n;
    if (s->pause_at != 0 && s->got == s->pause_at)
        transport_pause(s->t, conn);
}

static void cb_down(void *ctx, uint32_t conn, int code, const char *why)
{
    struct side *s = ctx;

    s->downs++;
    s->down_conn = conn;
    s->down_code = code;
    s->down_ms = uv_now(&s->fx->loop);
    snprintf(s->why, sizeof(s->why), "%s", why);
}

static void pump(struct side *s);

static void cb_writable(void *ctx, uint32_t conn)
{
    struct side *s = ctx;

    s->writable++;
    if (s->pump_total != 0)
        pump(s);
}

static void cb_dial_failed(void *ctx, const char *addr, const char *why)
{
    struct side *s = ctx;

    if (s->dial_fails < 32)
        s->fail_ms[s->dial_fails] = uv_now(&s->fx->loop);
    s->dial_fails++;
}

/* Send pump_n-byte frames (seq in the first 8 body bytes) until the queue
 * refuses; on_writable resumes. */
static void pump(struct side *s)
{
    uint8_t head[FRAME_HEADER + 8];

    while (s->pumped < s->pump_total) {
        assert_int_equal(frame_put_header(head, s->pump_n), 0);
        for (int i = 0; i < 8; i++)
            head[FRAME_HEADER + i] = (uint8_t)((uint64_t)s->pumped >> (56 - 8 * i));
        int rc = transport_send2(s->t, s->conn, head, sizeof(head), s->fx->tmpl + 8,
                                 s->pump_n - 8);
        if (rc == DMN_E_RANGE)
            return;
        assert_int_equal(rc, 0);
        s->pumped++;
    }
}

/* ---- loop driving ---- */

static void on_tick(uv_timer_t *h)
{
}

typedef bool (*pred_fn)(struct fx *f, void *arg);

/* Run the loop until pred holds or `ms` of wall time pass. */
static bool run_until(struct fx *f, pred_fn pred, void *arg, uint64_t ms)
{
    uint64_t end = uv_hrtime() + ms * 1000000u;
    bool ok;

    uv_timer_start(&f->tick, on_tick, 5, 5);
    while (!(ok = pred(f, arg)) && uv_hrtime() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_timer_stop(&f->tick);
    return ok;
}

static bool never(struct fx *f, void *arg)
{
    return false;
}

static void run_for(struct fx *f, uint64_t ms)
{
    run_until(f, never, NULL, ms);
}

static bool both_up(struct fx *f, void *arg)
{
    return f->a.ups >= 1 && f->b.ups >= 1;
}

static bool a_down(struct fx *f, void *arg)
{
    return f->a.downs >= 1;
}

static bool a_ups(struct fx *f, void *arg)
{
    return f->a.ups >= *(int *)arg;
}

static bool a_got(struct fx *f, void *arg)
{
    return f->a.got >= *(size_t *)arg;
}

static bool a_downs(struct fx *f, void *arg)
{
    return f->a.downs >= *(int *)arg;
}

static bool a_got_all(struct fx *f, void *arg)
{
    return f->a.got >= f->a.got_max;
}

static bool both_got_all(struct fx *f, void *arg)
{
    return f->a.got >= f->a.got_max && f->b.got >= f->b.got_max;
}

static void side_init(struct fx *f, struct side *s, const struct transport_opts *o)
{
    struct transport_cbs cb = { s, cb_up, cb_frame, cb_down, cb_writable, cb_dial_failed };
    struct dmn_diag d = {0};

    s->fx = f;
    s->full_check = true;
    assert_int_equal(transport_new(&s->t, &f->loop, o, &cb, &d), 0);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->tick);
    f->tmpl = malloc(FRAME_MAX);
    assert_non_null(f->tmpl);
    for (size_t i = 0; i < FRAME_MAX; i++)
        f->tmpl[i] = pat(7, i);
    *state = f;
    return 0;
}

static bool all_closed(struct fx *f, void *arg)
{
    return transport_closed(f->a.t) && transport_closed(f->b.t);
}

/* Shut both transports down, run until libuv released everything, free:
 * the loop must then close cleanly (no handle left behind). */
static int teardown(void **state)
{
    struct fx *f = *state;

    if (f->a.t != NULL)
        transport_shutdown(f->a.t);
    if (f->b.t != NULL)
        transport_shutdown(f->b.t);
    assert_true(run_until(f, all_closed, NULL, 5000));
    transport_free(f->a.t);
    transport_free(f->b.t);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f->tmpl);
    free(f);
    return 0;
}

static unsigned listen_any(struct side *s, char *bound, size_t cap)
{
    struct dmn_diag d = {0};
    const char *colon;

    if (transport_listen(s->t, "127.0.0.1:0", bound, cap, &d) != 0)
        fail_msg("listen: %s", d.msg);
    colon = strrchr(bound, ':');
    assert_non_null(colon);
    return (unsigned)atoi(colon + 1);
}

/* a listens, b dials it; both up. */
static void connect_pair(struct fx *f, const struct transport_opts *o)
{
    char bound[64];
    struct dmn_diag d = {0};

    side_init(f, &f->a, o);
    side_init(f, &f->b, o);
    listen_any(&f->a, bound, sizeof(bound));
    assert_int_equal(transport_dial(f->b.t, bound, &d), 0);
    assert_true(run_until(f, both_up, NULL, 3000));
    assert_false(f->a.outbound);
    assert_true(f->b.outbound);
    assert_string_equal(f->b.dial_addr, bound);
    assert_string_equal(f->b.addr, bound);
    assert_string_equal(f->a.dial_addr, "");
    assert_string_equal(transport_peer_addr(f->a.t, f->a.conn), f->a.addr);
}

/* ---- raw POSIX peers ---- */

/* rcvbuf > 0 fixes the raw side's receive buffer (no autotuning), so a
 * peer that does not read fills the sender's queue after a few MiB whatever
 * the host's tcp_rmem allows. */
static int raw_connect_buf(unsigned port, int rcvbuf)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    if (rcvbuf > 0)
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    return fd;
}

static int raw_connect(unsigned port)
{
    return raw_connect_buf(port, 0);
}

struct raw {
    int fd;
    uint8_t buf[4096];
    size_t n;
    bool eof;            /* FIN or reset seen */
};

static ssize_t raw_send(int fd, const void *p, size_t n)
{
    return send(fd, p, n, MSG_NOSIGNAL);
}

/* Read what is there; predicate for run_until. */
static bool raw_eof(struct fx *f, void *arg)
{
    struct raw *r = arg;
    ssize_t k;

    while (!r->eof) {
        k = read(r->fd, r->buf + r->n, sizeof(r->buf) - r->n);
        if (k > 0)
            r->n += (size_t)k;
        else if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) || r->n == sizeof(r->buf))
            r->eof = true;
        else
            break;
    }
    return r->eof;
}

/* The raw peer received exactly one BYE frame with this code and text. */
static void expect_bye(const struct raw *r, int code, const char *text)
{
    struct msg *m = NULL;
    struct proto_diag d = {0};
    ptrdiff_t len = frame_peek(r->buf, r->n, FRAME_MAX, &d);

    if (len <= 0 || (size_t)len != r->n)
        fail_msg("want one frame, got %zu bytes (%td)", r->n, len);
    assert_int_equal(msg_decode(r->buf + FRAME_HEADER, r->n - FRAME_HEADER, NULL, &m, &d), 0);
    assert_int_equal(m->type, MSG_BYE);
    assert_int_equal(m->u.bye.code, code);
    assert_string_equal(m->u.bye.text, text);
    msg_free(m);
}

/* ---- tests ---- */

static void test_addresses(void **state)
{
    static const struct { const char *addr; bool listen; int want; } cases[] = {
        { "127.0.0.1:0", true, 0 },
        { "127.0.0.1", true, DMN_E_ARG },
        { "127.0.0.1:", true, DMN_E_ARG },
        { "127.0.0.1:65536", true, DMN_E_ARG },
        { "127.0.0.1:01", true, DMN_E_ARG },
        { "127.0.0.1:1x", true, DMN_E_ARG },
        { ":80", true, DMN_E_ARG },
        { "::1:80", true, DMN_E_ARG },
        { "localhost:0", true, DMN_E_ARG },     /* listen wants a literal */
        { "[127.0.0.1]:0", true, DMN_E_ARG },   /* brackets are for IPv6 */
        { "node7.example.invalid:7000", false, 0 },
        { "127.0.0.1:0", false, DMN_E_ARG },    /* port 0 cannot be dialled */
        { "[::1]:7000", false, 0 },
        { "[zz::1]:7000", false, DMN_E_ARG },
        { "[::1]7000", false, DMN_E_ARG },
        { "::1:7000", false, DMN_E_ARG },
        { "127.0.0.1:123456", false, DMN_E_ARG },
    };
    struct fx *f = *state;
    struct dmn_diag d;
    char bound[64];

    side_init(f, &f->a, &(struct transport_opts){ .dial_min_ms = 10000 });
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = cases[i].listen ? transport_listen(f->a.t, cases[i].addr, bound,
                                                      sizeof(bound), &d)
                                  : transport_dial(f->a.t, cases[i].addr, &d);
        if (got != cases[i].want)
            fail_msg("%s %s: got %s, want %s (%s)", cases[i].listen ? "listen" : "dial",
                     cases[i].addr, dmn_err_name(got), dmn_err_name(cases[i].want), d.msg);
    }
    /* Dialling the same address twice keeps one dial; undial stops it. */
    assert_int_equal(transport_dial(f->a.t, "[::1]:7000", &d), 0);
    transport_undial(f->a.t, "[::1]:7000");
    transport_undial(f->a.t, "node7.example.invalid:7000");
    transport_undial(f->a.t, "never.dialled:1");
    /* A frame cap over FRAME_MAX is refused. */
    struct transport *t = NULL;
    struct transport_cbs cb = { f, cb_up, cb_frame, cb_down, NULL, NULL };
    assert_int_equal(transport_new(&t, &f->loop, &(struct transport_opts){
                         .frame_max = FRAME_MAX + 1 }, &cb, &d), DMN_E_ARG);
    assert_null(t);
    /* Calls on an unknown connection are harmless. */
    assert_int_equal(send_frame(&f->a, 12345, 0, 10), DMN_E_NOT_FOUND);
    assert_int_equal(transport_send2(f->a.t, 12345, (const uint8_t *)bound, 4, (const uint8_t *)bound, 4), DMN_E_NOT_FOUND);
    assert_int_equal(transport_queued(f->a.t, 12345), 0);
    assert_string_equal(transport_peer_addr(f->a.t, 12345), "");
    assert_false(transport_strike(f->a.t, 12345));
    transport_pause(f->a.t, 12345);
    transport_resume(f->a.t, 12345);
    transport_set_authed(f->a.t, 12345);
    transport_close(f->a.t, 12345);
}

/* Frames of 1 B .. 4 MiB both ways, in order, byte for byte. */
static void test_exchange(void **state)
{
    static const size_t sizes[] = {
        1, 2, 3, 4, 5, 7, 8, 100, 4095, 4096, 4097, 8192, 65535, 65536, 262143, 262144,
        262147, 1000000, 1 << 20, (1 << 20) + 1, 3, 4 << 20, 1, (4 << 20) - 1, 17, 2 << 20,
    };
    const size_t n = sizeof(sizes) / sizeof(sizes[0]);
    struct fx *f = *state;
    struct transport_opts o = { .queue_max = 32u << 20 };
    struct transport_stats st;

    f->a.auth_on_up = f->b.auth_on_up = true;
    connect_pair(f, &o);
    f->a.want = f->b.want = sizes;
    f->a.n_want = f->b.n_want = n;
    f->a.got_max = f->b.got_max = n;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(send_frame(&f->b, f->b.conn, i, sizes[i]), 0);
        assert_int_equal(send_frame(&f->a, f->a.conn, i, sizes[i]), 0);
    }
    assert_true(run_until(f, both_got_all, NULL, 10000));
    assert_int_equal(f->a.bad, 0);
    assert_int_equal(f->b.bad, 0);
    run_for(f, 20);
    assert_int_equal(f->a.got, n);   /* nothing extra */
    transport_stats(f->a.t, &st);
    assert_int_equal(st.frames_in, n);
    assert_int_equal(st.frames_out, n);
    assert_int_equal(st.conns, 1);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(transport_queued(f->a.t, f->a.conn), 0);
    /* Orderly close: both sides see code 0. */
    transport_close(f->a.t, f->a.conn);
    assert_true(run_until(f, a_down, NULL, 3000));
    assert_int_equal(f->a.down_code, 0);
    assert_string_equal(f->a.why, "closed");
}

static bool b_down(struct fx *f, void *arg)
{
    return f->b.downs >= 1;
}

/* 64 MiB of 1 MiB frames, paced by the queue; prints MB/s. */
static void test_throughput(void **state)
{
    struct fx *f = *state;
    struct transport_opts o = {0};   /* defaults: 4 MiB queue, 16 MiB frames */
    const size_t frame = 1u << 20, total = 64;
    uint64_t t0, t1;

    f->a.auth_on_up = f->b.auth_on_up = true;
    connect_pair(f, &o);
    f->a.full_check = false;
    f->a.got_max = total;
    f->b.pump_n = frame;
    f->b.pump_total = total;
    t0 = uv_hrtime();
    pump(&f->b);
    assert_true(transport_queued(f->b.t, f->b.conn) <= (4u << 20));
    assert_true(run_until(f, a_got_all, NULL, 20000));
    t1 = uv_hrtime();
    assert_int_equal(f->a.bad, 0);
    assert_int_equal(f->a.got_bytes, (uint64_t)total * frame);
    print_message("transport loopback: %zu MiB in %.3f s = %.0f MB/s\n", total,
                  (double)(t1 - t0) / 1e9, (double)total * frame / ((double)(t1 - t0) / 1e3));
    transport_close(f->b.t, f->b.conn);
    assert_true(run_until(f, b_down, NULL, 3000));
    assert_true(run_until(f, a_down, NULL, 3000));
    assert_int_equal(f->a.down_code, 0);
    assert_string_equal(f->a.why, "peer closed");
}

/* A raw peer sends length 0xFFFFFFFF before auth: BYE, close, strike. */
static void test_bad_length_preauth(void **state)
{
    struct fx *f = *state;
    struct raw r = {0};
    struct transport_stats st;
    char bound[64];

    side_init(f, &f->a, &(struct transport_opts){0});
    r.fd = raw_connect(listen_any(&f->a, bound, sizeof(bound)));
    assert_int_equal(raw_send(r.fd, "\xff\xff\xff\xff", 4), 4);
    assert_true(run_until(f, a_down, NULL, 3000));
    assert_int_equal(f->a.ups, 1);
    assert_int_equal(f->a.down_code, DMN_E_PEER);
    assert_string_equal(f->a.why, "frame length 4294967295 over 8192");
    assert_true(run_until(f, raw_eof, &r, 3000));
    expect_bye(&r, PROTO_E_FRAME_LEN, "frame length 4294967295 over 8192");
    transport_stats(f->a.t, &st);
    assert_int_equal(st.strikes, 1);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.bans, 0);
    assert_int_equal(st.frames_in, 0);
    close(r.fd);
}

/* The preauth cap is exact (8192 passes, 8193 closes); frames held while
 * paused are judged by the cap in force when delivered, so after
 * transport_set_authed a held 9000-byte frame passes. */
static void test_preauth_cap(void **state)
{
    static const size_t sizes[] = { 8192, 100, 9000 };
    struct fx *f = *state;
    struct raw r = {0};
    char bound[64];
    uint8_t *fr;
    size_t want = 2;

    side_init(f, &f->a, &(struct transport_opts){0});
    f->a.want = sizes;
    f->a.n_want = 3;
    f->a.pause_at = 2;
    r.fd = raw_connect(listen_any(&f->a, bound, sizeof(bound)));
    for (size_t i = 0; i < 3; i++) {
        fr = make_frame(i, sizes[i]);
        assert_int_equal(raw_send(r.fd, fr, FRAME_HEADER + sizes[i]),
                         (ssize_t)(FRAME_HEADER + sizes[i]));
        free(fr);
    }
    assert_true(run_until(f, a_got, &want, 3000));
    run_for(f, 50);
    assert_int_equal(f->a.got, 2);   /* the 9000-byte frame waits, not refused */
    assert_int_equal(f->a.downs, 0);
    transport_set_authed(f->a.t, f->a.conn);
    transport_resume(f->a.t, f->a.conn);
    want = 3;
    assert_true(run_until(f, a_got, &want, 3000));
    assert_int_equal(f->a.bad, 0);
    close(r.fd);
    assert_true(run_until(f, a_down, NULL, 3000));
    assert_string_equal(f->a.why, "peer closed");
    assert_int_equal(f->a.down_code, 0);
    /* A second peer, not authenticated: 8193 bytes is one too many. */
    memset(&r, 0, sizeof(r));
    r.fd = raw_connect(listen_any(&f->a, bound, sizeof(bound)));
    fr = make_frame(0, 8193);
    assert_int_equal(raw_send(r.fd, fr, FRAME_HEADER + 8193), FRAME_HEADER + 8193);
    free(fr);
    assert_true(run_until(f, a_downs, &(int){2}, 3000));
    assert_string_equal(f->a.why, "frame length 8193 over 8192");
    assert_true(run_until(f, raw_eof, &r, 3000));
    expect_bye(&r, PROTO_E_FRAME_LEN, "frame length 8193 over 8192");
    assert_int_equal(f->a.got, 3);
    close(r.fd);
}

/* Timeouts, each with small values: which one fires, and its reason. */
static void test_timeouts(void **state)
{
    static const struct {
        const char *name;
        struct transport_opts o;
        const char *send;     /* raw bytes sent after connecting */
        size_t n;
        bool authed;
        const char *why;
        uint64_t min_ms;
    } cases[] = {
        { "handshake", { .handshake_ms = 120 }, "", 0, false, "handshake timeout", 110 },
        { "half frame", { .handshake_ms = 5000, .frame_ms = 100 }, "\0\0\0\x10" "abc", 7, false,
          "frame not completed within 100 ms", 90 },
        { "half header", { .handshake_ms = 5000, .frame_ms = 100 }, "\0\0", 2, false,
          "frame not completed within 100 ms", 90 },
        { "idle", { .idle_ms = 150, .frame_ms = 5000 }, "\0\0\0\x01" "x", 5, true,
          "idle timeout 150 ms", 140 },
    };
    struct fx *f = *state;
    char bound[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct raw r = {0};
        struct transport_stats st;
        uint64_t t0;

        memset(&f->a, 0, sizeof(f->a));
        f->a.auth_on_up = cases[i].authed;
        side_init(f, &f->a, &cases[i].o);
        r.fd = raw_connect(listen_any(&f->a, bound, sizeof(bound)));
        t0 = uv_now(&f->loop);
        if (cases[i].n > 0)
            assert_int_equal(raw_send(r.fd, cases[i].send, cases[i].n), (ssize_t)cases[i].n);
        if (!run_until(f, a_down, NULL, 3000))
            fail_msg("%s: no timeout", cases[i].name);
        if (strcmp(f->a.why, cases[i].why) != 0 || f->a.down_code != DMN_E_PEER)
            fail_msg("%s: down %d \"%s\", want \"%s\"", cases[i].name, f->a.down_code, f->a.why,
                     cases[i].why);
        if (f->a.down_ms - t0 < cases[i].min_ms)
            fail_msg("%s: closed after %" PRIu64 " ms", cases[i].name, f->a.down_ms - t0);
        assert_true(run_until(f, raw_eof, &r, 3000));
        expect_bye(&r, PROTO_E_STATE, cases[i].why);
        transport_stats(f->a.t, &st);
        assert_int_equal(st.strikes, 0);   /* slowness is not malice */
        assert_int_equal(st.dropped, 1);
        close(r.fd);
        transport_shutdown(f->a.t);
        assert_true(run_until(f, all_closed, NULL, 3000));
        transport_free(f->a.t);
        f->a.t = NULL;
    }
}

/* Pause from on_frame holds frames (none dropped, none delivered); resume
 * delivers them in order; pause before any frame too. */
static void test_pause_resume(void **state)
{
    static const size_t sizes[] = { 10, 1000, 70000, 5, 300000, 1 };
    struct fx *f = *state;
    size_t want = 3;

    f->a.auth_on_up = true;   /* a's idle timeout applies; b stays in its handshake */
    connect_pair(f, &(struct transport_opts){ .idle_ms = 200 });
    f->a.want = sizes;
    f->a.n_want = 6;
    f->a.pause_at = 3;
    for (size_t i = 0; i < 12; i++)
        assert_int_equal(send_frame(&f->b, f->b.conn, i, sizes[i % 6]), 0);
    assert_true(run_until(f, a_got, &want, 3000));
    run_for(f, 300);   /* longer than idle_ms: a paused conn does not time out */
    assert_int_equal(f->a.got, 3);
    assert_int_equal(f->a.downs, 0);
    f->a.pause_at = 0;
    transport_resume(f->a.t, f->a.conn);
    assert_int_equal(f->a.got, 3);   /* delivered from the loop, not inside resume */
    want = 12;
    assert_true(run_until(f, a_got, &want, 3000));
    assert_int_equal(f->a.bad, 0);
    /* Paused with nothing buffered, then frames arrive, then resume. */
    transport_pause(f->a.t, f->a.conn);
    for (size_t i = 12; i < 18; i++)
        assert_int_equal(send_frame(&f->b, f->b.conn, i, sizes[i % 6]), 0);
    run_for(f, 100);
    assert_int_equal(f->a.got, 12);
    transport_resume(f->a.t, f->a.conn);
    want = 18;
    assert_true(run_until(f, a_got, &want, 3000));
    assert_int_equal(f->a.bad, 0);
}

static bool b_writable(struct fx *f, void *arg)
{
    return f->b.writable >= 1;
}

/* The queue refuses over queue_max (frame freed: ASan), on_writable fires
 * after the peer drains, every accepted frame arrives in order. */
static void test_queue_full(void **state)
{
    static const size_t sizes[] = { 1u << 20 };
    struct fx *f = *state;
    const size_t qmax = 2u << 20;
    size_t sent = 0;
    int rc = 0;

    f->a.auth_on_up = f->b.auth_on_up = true;
    connect_pair(f, &(struct transport_opts){ .queue_max = qmax });
    f->a.want = sizes;
    f->a.n_want = 1;
    f->a.full_check = false;
    transport_pause(f->a.t, f->a.conn);   /* a does not read: kernel buffers fill */
    for (int i = 0; i < 200 && rc == 0; i++) {
        uint8_t *fr = malloc(FRAME_HEADER + sizes[0]);
        assert_non_null(fr);
        assert_int_equal(frame_put_header(fr, sizes[0]), 0);
        memcpy(fr + FRAME_HEADER, f->tmpl, sizes[0]);
        for (int k = 0; k < 8; k++)
            fr[FRAME_HEADER + k] = (uint8_t)((uint64_t)sent >> (56 - 8 * k));
        rc = transport_send(f->b.t, f->b.conn, fr, FRAME_HEADER + sizes[0]);
        if (rc == 0)
            sent++;
        assert_true(transport_queued(f->b.t, f->b.conn) <= qmax);
        run_for(f, 1);
    }
    assert_int_equal(rc, DMN_E_RANGE);
    assert_true(transport_queued(f->b.t, f->b.conn) > 0);
    assert_int_equal(f->b.writable, 0);
    transport_resume(f->a.t, f->a.conn);
    assert_true(run_until(f, b_writable, NULL, 5000));
    assert_true(transport_queued(f->b.t, f->b.conn) <= qmax / 2);
    f->a.got_max = sent;
    assert_true(run_until(f, a_got_all, NULL, 5000));
    assert_int_equal(f->a.bad, 0);
    assert_int_equal(f->a.got, sent);
    assert_int_equal(transport_queued(f->b.t, f->b.conn), 0);
}

/* transport_send_ref: what it is given to release. */
static size_t ref_released, ref_bad;
static uint8_t ref_tokens[256];

static void ref_release(void *base, size_t len)
{
    ref_released++;
    if ((uint8_t *)base != &ref_tokens[len % 256])
        ref_bad++;
}

/* Frame seq of n bytes: head (prefix + seq) copied, body tail referenced in
 * the template (as cb_frame checks it). */
static int send_ref(struct side *s, uint32_t conn, size_t seq, size_t n)
{
    uint8_t head[FRAME_HEADER + 8];

    assert_int_equal(frame_put_header(head, n), 0);
    for (int i = 0; i < 8; i++)
        head[FRAME_HEADER + i] = (uint8_t)((uint64_t)seq >> (56 - 8 * i));
    return transport_send_ref(s->t, conn, head, sizeof(head), s->fx->tmpl + 8, n - 8, ref_release,
                              &ref_tokens[seq % 256], seq);
}

/* Referenced frames: each release runs exactly once, with its own base and
 * length, whether the frame went at once, waited in the queue, was refused
 * (queue full, unknown connection) or was cancelled by a close; the frames
 * accepted arrive whole and in order. */
static void test_send_ref(void **state)
{
    static const size_t sizes[] = { (1u << 20) + 13 };
    struct fx *f = *state;
    const size_t qmax = 4u << 20;
    size_t calls = 0, sent = 0;
    int rc = 0;

    ref_released = ref_bad = 0;
    f->a.auth_on_up = f->b.auth_on_up = true;
    connect_pair(f, &(struct transport_opts){ .queue_max = qmax });
    f->a.want = sizes;
    f->a.n_want = 1;
    f->a.full_check = false;
    assert_int_equal(send_ref(&f->b, 999999, 0, sizes[0]), DMN_E_NOT_FOUND);
    calls++;
    assert_int_equal(ref_released, 1);
    transport_pause(f->a.t, f->a.conn);   /* a does not read: the queue fills */
    for (int i = 0; i < 400 && rc == 0; i++) {
        rc = send_ref(&f->b, f->b.conn, sent, sizes[0]);
        calls++;
        sent += rc == 0;
        assert_true(transport_queued(f->b.t, f->b.conn) <= qmax);
        run_for(f, 1);
    }
    assert_int_equal(rc, DMN_E_RANGE);
    assert_true(ref_released < calls);   /* some wait in the queue, referenced */
    transport_resume(f->a.t, f->a.conn);
    f->a.got_max = sent;
    assert_true(run_until(f, a_got_all, NULL, 10000));
    assert_int_equal(f->a.bad, 0);
    assert_int_equal(f->a.got, sent);
    assert_int_equal(ref_released, calls);
    /* queued again, then the connection is closed under them */
    transport_pause(f->a.t, f->a.conn);
    for (int i = 0; i < 400 && transport_queued(f->b.t, f->b.conn) == 0; i++) {
        assert_int_equal(send_ref(&f->b, f->b.conn, sent + (size_t)i, sizes[0]), 0);
        calls++;
        run_for(f, 1);
    }
    assert_true(transport_queued(f->b.t, f->b.conn) > 0);
    assert_true(ref_released < calls);
    transport_close(f->b.t, f->b.conn);
    assert_true(run_until(f, b_down, NULL, 3000));
    run_for(f, 20);
    assert_int_equal(ref_released, calls);
    assert_int_equal(ref_bad, 0);
}

/* A peer that stops reading is dropped once its queue has not moved for
 * idle_ms, even though it keeps sending frames. */
static void test_write_stall(void **state)
{
    struct fx *f = *state;
    struct raw r = {0};
    char bound[64];
    int rc = 0;

    f->a.auth_on_up = true;
    side_init(f, &f->a, &(struct transport_opts){ .idle_ms = 250, .queue_max = 64u << 20 });
    r.fd = raw_connect_buf(listen_any(&f->a, bound, sizeof(bound)), 16384);
    assert_true(run_until(f, a_ups, &(int){1}, 3000));
    for (int i = 0; i < 512 && rc == 0 && transport_queued(f->a.t, f->a.conn) == 0; i++)
        rc = send_frame(&f->a, f->a.conn, (size_t)i, 1u << 20);
    assert_int_equal(rc, 0);
    assert_true(transport_queued(f->a.t, f->a.conn) > 0);
    for (int i = 0; i < 100 && f->a.downs == 0; i++) {   /* a 1-byte frame every 20 ms */
        assert_int_equal(raw_send(r.fd, "\0\0\0\x01" "x", 5), 5);
        run_for(f, 20);
    }
    assert_int_equal(f->a.downs, 1);
    assert_int_equal(f->a.down_code, DMN_E_PEER);
    assert_string_equal(f->a.why, "write queue stalled for 250 ms");
    assert_true(f->a.got >= 5);   /* its frames kept coming: not an idle timeout */
    close(r.fd);
}

/* ban_strikes frame errors ban 127.0.0.1 for ban_ms: new connections are
 * accepted and closed at once, without on_up; after ban_ms they come up. */
static void test_ban(void **state)
{
    struct fx *f = *state;
    struct transport_stats st;
    struct raw r;
    char bound[64];
    unsigned port;

    side_init(f, &f->a, &(struct transport_opts){ .ban_strikes = 2, .ban_ms = 400 });
    port = listen_any(&f->a, bound, sizeof(bound));
    for (int i = 0; i < 2; i++) {
        memset(&r, 0, sizeof(r));
        r.fd = raw_connect(port);
        assert_int_equal(raw_send(r.fd, "\0\0\0\0", 4), 4);   /* length 0 */
        assert_true(run_until(f, raw_eof, &r, 3000));
        expect_bye(&r, PROTO_E_FRAME_LEN, "frame length 0 under 1");
        close(r.fd);
    }
    assert_int_equal(f->a.ups, 2);
    transport_stats(f->a.t, &st);
    assert_int_equal(st.strikes, 2);
    assert_int_equal(st.bans, 1);
    assert_true(transport_banned(f->a.t, "127.0.0.1"));
    assert_false(transport_banned(f->a.t, "127.0.0.2"));
    memset(&r, 0, sizeof(r));
    r.fd = raw_connect(port);   /* the kernel completes it; the transport closes it */
    assert_true(run_until(f, raw_eof, &r, 3000));
    assert_int_equal(r.n, 0);
    assert_int_equal(f->a.ups, 2);
    close(r.fd);
    transport_stats(f->a.t, &st);
    assert_int_equal(st.dropped, 3);
    run_for(f, 450);
    assert_false(transport_banned(f->a.t, "127.0.0.1"));
    memset(&r, 0, sizeof(r));
    r.fd = raw_connect(port);
    assert_true(run_until(f, a_ups, &(int){3}, 3000));
    /* The node's own strikes and bans. */
    assert_false(transport_strike(f->a.t, f->a.conn));
    assert_true(transport_strike(f->a.t, f->a.conn));
    assert_true(transport_banned(f->a.t, "127.0.0.1"));
    assert_int_equal(transport_ban(f->a.t, "10.0.0.9", 50), 0);
    assert_true(transport_banned(f->a.t, "10.0.0.9"));
    assert_int_equal(transport_ban(f->a.t, "", 50), DMN_E_ARG);
    run_for(f, 70);
    assert_false(transport_banned(f->a.t, "10.0.0.9"));
    close(r.fd);
}

/* max_conns: the connection over the limit is accepted and closed. */
static void test_max_conns(void **state)
{
    struct fx *f = *state;
    struct raw r[3];
    char bound[64];
    unsigned port;

    memset(r, 0, sizeof(r));
    side_init(f, &f->a, &(struct transport_opts){ .max_conns = 2 });
    port = listen_any(&f->a, bound, sizeof(bound));
    for (int i = 0; i < 3; i++) {
        r[i].fd = raw_connect(port);
        run_for(f, 30);
    }
    assert_true(run_until(f, raw_eof, &r[2], 3000));
    assert_int_equal(f->a.ups, 2);
    assert_false(raw_eof(f, &r[0]));
    for (int i = 0; i < 3; i++)
        close(r[i].fd);
}

struct dial_wait {
    int fails;
};

static bool b_fails(struct fx *f, void *arg)
{
    return f->b.dial_fails >= ((struct dial_wait *)arg)->fails;
}

static bool b_ups(struct fx *f, void *arg)
{
    return f->b.ups >= *(int *)arg;
}

/* Dial a closed port: failures back off (250 ms-style doubling, +-20%),
 * then a listener appears and the dial connects; a dropped connection is
 * redialled; after undial it is not. */
static void test_dial_backoff(void **state)
{
    struct fx *f = *state;
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);
    struct dial_wait w = { 5 };
    struct dmn_diag d;
    char addr[64], bound[64];
    const uint32_t base = 30;
    int fd, ups;

    fd = socket(AF_INET, SOCK_STREAM, 0);   /* a port nobody listens on */
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sa.sin_port));
    struct transport_opts o = { .dial_min_ms = base, .dial_max_ms = 2000 };
    f->b.auth_on_up = true;   /* an authenticated connection resets the backoff */
    side_init(f, &f->a, &o);
    side_init(f, &f->b, &o);
    assert_int_equal(transport_dial(f->b.t, addr, &d), 0);
    assert_int_equal(transport_dial(f->b.t, addr, &d), 0);   /* idempotent */
    assert_true(run_until(f, b_fails, &w, 5000));
    /* Failure k comes no sooner than the sum of the shortest waits before it. */
    for (int k = 1; k < 5; k++) {
        uint64_t least = 0;
        for (int i = 0; i < k; i++)
            least += (uint64_t)base * (1u << i) * 8 / 10;
        if (f->b.fail_ms[k] - f->b.fail_ms[0] + 2 < least)
            fail_msg("failure %d after %" PRIu64 " ms, want >= %" PRIu64, k,
                     f->b.fail_ms[k] - f->b.fail_ms[0], least);
    }
    assert_int_equal(f->b.ups, 0);
    if (transport_listen(f->a.t, addr, bound, sizeof(bound), &d) != 0)
        fail_msg("listen %s: %s", addr, d.msg);
    assert_true(run_until(f, both_up, NULL, 5000));
    assert_string_equal(f->b.dial_addr, addr);
    /* The node drops it: the dial brings it back. */
    transport_close(f->a.t, f->a.conn);
    ups = 2;
    assert_true(run_until(f, b_ups, &ups, 5000));
    assert_int_equal(f->b.downs, 1);
    /* Undial keeps the connection; once it drops, no redial. */
    transport_undial(f->b.t, addr);
    run_for(f, 100);
    assert_int_equal(f->b.downs, 1);
    transport_close(f->a.t, f->a.conn);
    run_for(f, 600);
    assert_int_equal(f->b.downs, 2);
    assert_int_equal(f->b.ups, 2);
}

/* Shutdown with frames queued and connections in every state frees
 * everything (teardown checks the loop closes; ASan checks the memory). */
static void test_shutdown(void **state)
{
    struct fx *f = *state;
    struct raw r = {0};
    struct dmn_diag d;
    char bound[64];
    int n = 2;

    f->a.auth_on_up = f->b.auth_on_up = true;
    connect_pair(f, &(struct transport_opts){ .queue_max = 16u << 20 });
    r.fd = raw_connect(listen_any(&f->a, bound, sizeof(bound)));
    transport_pause(f->a.t, f->a.conn);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(send_frame(&f->b, f->b.conn, i, 1u << 20), 0);
    assert_int_equal(transport_dial(f->b.t, "127.0.0.1:1", &d), 0);   /* failing dial */
    assert_int_equal(transport_dial(f->b.t, "unresolvable.invalid:9", &d), 0);
    run_for(f, 20);
    transport_shutdown(f->a.t);
    transport_shutdown(f->b.t);
    transport_shutdown(f->b.t);   /* twice is fine */
    assert_int_equal(transport_dial(f->b.t, "127.0.0.1:2", &d), DMN_E_ARG);
    assert_true(run_until(f, all_closed, NULL, 5000));
    assert_true(run_until(f, a_downs, &n, 10));
    assert_int_equal(f->b.downs, 1);
    close(r.fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_addresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exchange, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_length_preauth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preauth_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_ref, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_stall, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ban, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_conns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dial_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
    };

    log_set_level(LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
