/* tests/integration/rawpeer.c: a peer that speaks raw plorad frames and
 * misbehaves in one scripted way, for daemon_hostile.sh.
 *
 *   rawpeer MODE HOST:PORT [--key FILE] [--wait-ms N] [--seed S]
 *
 * MODE (each on a fresh connection to HOST:PORT, 127.0.0.1 only in tests):
 *   garbage           one frame of random length 1..8192 whose body is random
 *                     bytes: a peer fault (BYE -203..-249), then close
 *   oversize          the length prefix 0xFFFFFFFF: BYE PROTO_E_FRAME_LEN (-203)
 *   half              a valid length (1000) then 500 body bytes, then silence:
 *                     the daemon must close (frame / handshake deadline)
 *   idle              connect and say nothing: closed at the handshake deadline
 *                     with BYE PROTO_E_STATE (-217)
 *   hello-replay      (--key: a trusted key) one honest handshake, recorded;
 *                     then on a second connection the recorded HELLO and
 *                     HELLO_ACK replayed: the daemon's fresh nonce makes the
 *                     old signature worthless, BYE PROTO_E_AUTH (-218)
 *   domain-traversal  (--key: a trusted key) a real handshake, then a MANIFEST
 *                     whose domain is "../x" (raw msgpack, bypassing
 *                     msg_encode's checks): BYE PROTO_E_FIELD_VALUE (-215);
 *                     on a second authenticated connection a WANT whose id is
 *                     the str "../../etc": BYE PROTO_E_FIELD_TYPE (-214)
 *
 * Liars (daemon_liars.sh); --key is the liar's own key, trusted by the daemon:
 *   vote              VOTE frames on adapter --adapter HEX (--domain D) signed
 *                     by --vote-key FILE, one per verdict in --verdict LIST
 *                     (e.g. "reject,accept": equivocation); --tamper signs
 *                     REJECT and then says ACCEPT (a trusted key id whose
 *                     signature no longer verifies). --expect fault: the
 *                     daemon must close with a peer-fault BYE; --expect open:
 *                     it must keep the connection 1 s (the vote is dropped or
 *                     kept, never a fault of ours), then we say BYE 0.
 *   lie-nowant        a DIGEST announcing the adapter in --adapter-dir DIR
 *                     (--domain D); the daemon's WANT is never answered
 *   lie-stall         ... answered with the MANIFEST and one CHUNK of wrong
 *                     bytes, then silence: both must end in BYE PROTO_E_STATE
 *                     after the daemon's stall_ms (set --wait-ms above it)
 *   lie-bytes         ... answered with every CHUNK, one byte flipped in the
 *                     middle: BYE PROTO_E_HASH
 *   lie-offset        ... answered with the MANIFEST and a CHUNK at offset
 *                     size (past the end): BYE PROTO_E_STATE
 *   banned            a handshake with --key must be refused: BYE
 *                     PROTO_E_AUTH "banned"
 *   flood             --count N connections (default 10000) opened, never a
 *                     byte sent, held --hold-ms (default 5000) while reading
 *                     and dropping whatever the daemon sends; --reopen
 *                     re-dials those the daemon closed. RLIMIT_NOFILE is
 *                     raised to N + 64; a hard limit below that is a
 *                     failure naming it. Prints "flood: N opened" once every
 *                     connect was tried, then the tallies.
 *
 * It prints one line per observation ("BYE code=... text=...", "closed after
 * N ms") and exits 0 when the daemon reacted as expected within --wait-ms
 * (default 15000) per connection, 1 when it did not (says why), 2 on usage
 * or local errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "hex.h"
#include "key.h"
#include "msg.h"
#include "proto_err.h"
#include "sha256.h"
#include "sig.h"
#include "vote.h"

#define BUF_MAX 4096u

/* What one connection saw from the daemon. */
struct seen {
    bool hello, ack, digest, bye, closed, want;
    int bye_code;
    char bye_text[MSG_TEXT_MAX + 1];
    long closed_ms;                    /* since the misbehaviour was sent; -1 if open */
    msg_id peer_id;
    uint8_t peer_nonce[MSG_NONCE_LEN];
};

struct opts {
    const char *mode, *addr, *key;
    const char *vote_key, *adapter, *domain, *verdict, *expect, *adapter_dir;
    bool tamper, reopen;
    long wait_ms, count, hold_ms;
    uint64_t seed;
};

struct conn {
    int fd;
    struct frame_reader *rd;
    struct seen s;
};

static uint64_t rng_state;

/* splitmix64: reproducible random bytes from --seed. */
static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rng_next();
}

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connect to "host:port". Returns the fd or -1 (message printed). */
static int dial(const char *addr)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *ai = NULL;
    int fd = -1;

    if (!colon || (size_t)(colon - addr) >= sizeof host) {
        fprintf(stderr, "rawpeer: %s: want HOST:PORT\n", addr);
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
        fprintf(stderr, "rawpeer: %s: cannot resolve\n", addr);
        return -1;
    }
    fd = socket(ai->ai_family, ai->ai_socktype, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        fprintf(stderr, "rawpeer: connect %s: %s\n", addr, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* Send all n bytes; a peer that already closed is not an error here (the
 * read side reports the close). Returns 0 or -1 (EPIPE / ECONNRESET). */
static int send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int conn_open(struct conn *c, const char *addr)
{
    memset(c, 0, sizeof *c);
    c->s.closed_ms = -1;
    c->fd = dial(addr);
    if (c->fd < 0)
        return -1;
    if (frame_reader_new(&c->rd, FRAME_MAX) != 0) {
        close(c->fd);
        return -1;
    }
    return 0;
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    frame_reader_free(c->rd);
    c->rd = NULL;
}

/* Note one decoded frame from the daemon. */
static void note_msg(struct seen *s, const struct msg *m)
{
    switch (m->type) {
    case MSG_HELLO:
        s->hello = true;
        memcpy(s->peer_id, m->u.hello.id, MSG_ID_LEN);
        memcpy(s->peer_nonce, m->u.hello.nonce, MSG_NONCE_LEN);
        break;
    case MSG_HELLO_ACK: s->ack = true; break;
    case MSG_DIGEST: s->digest = true; break;
    case MSG_WANT: s->want = s->want || m->u.want.n_ids > 0; break;
    case MSG_BYE:
        s->bye = true;
        s->bye_code = m->u.bye.code;
        snprintf(s->bye_text, sizeof s->bye_text, "%s", m->u.bye.text);
        printf("rawpeer: BYE code=%d (%s) text=\"%s\"\n", s->bye_code,
               proto_err_name(s->bye_code), s->bye_text);
        break;
    default: break;
    }
}

/* Decode every complete frame buffered. Returns 0 or -1 (the daemon sent
 * something this tool cannot decode: reported, treated as a failure). */
static int drain_frames(struct conn *c)
{
    const uint8_t *body;
    size_t len;
    struct proto_diag d;
    int rc;

    proto_diag_clear(&d);
    while ((rc = frame_reader_next(c->rd, &body, &len, &d)) == 0) {
        struct msg *m = NULL;
        if (msg_decode(body, len, &msg_limits_authed, &m, &d) != 0) {
            printf("rawpeer: undecodable frame from the daemon: %s\n", d.msg);
            return -1;
        }
        note_msg(&c->s, m);
        msg_free(m);
    }
    return rc == PROTO_E_NEED_MORE ? 0 : -1;
}

/* Read until `until(s)` holds, the socket closes, or deadline (absolute ms).
 * t0: when the misbehaviour was sent (for closed_ms). Returns 0 (condition
 * met or closed) or -1 (deadline, or undecodable input). */
static int pump(struct conn *c, bool (*until)(const struct seen *), long t0, long deadline)
{
    uint8_t buf[BUF_MAX];

    while (!(until && until(&c->s)) && !c->s.closed) {
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        long left = deadline - now_ms();
        if (left <= 0)
            return -1;
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        ssize_t r = recv(c->fd, buf, sizeof buf, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            c->s.closed = true;
            c->s.closed_ms = now_ms() - t0;
            printf("rawpeer: connection closed by the daemon after %ld ms\n", c->s.closed_ms);
            break;
        }
        struct proto_diag d;
        if (frame_reader_feed(c->rd, buf, (size_t)r, &d) != 0 || drain_frames(c) != 0)
            return -1;
    }
    return 0;
}

static bool got_hello(const struct seen *s) { return s->hello || s->bye; }
static bool got_digest(const struct seen *s) { return s->digest || s->bye; }

/* Encode and send one message. Returns 0 or -1. */
static int send_msg(struct conn *c, const struct msg *m, uint8_t **copy, size_t *copy_len)
{
    uint8_t *f = NULL;
    size_t n = 0;
    struct proto_diag d;
    int rc;

    proto_diag_clear(&d);
    if (msg_encode(m, &f, &n, &d) != 0) {
        fprintf(stderr, "rawpeer: encode %s: %s\n", msg_type_name((int)m->type), d.msg);
        return -1;
    }
    rc = send_all(c->fd, f, n);
    if (copy) {
        *copy = f;
        *copy_len = n;
    } else {
        free(f);
    }
    return rc;
}

/* Recorded frames of an honest handshake (hello-replay). */
struct recorded {
    uint8_t *hello, *ack;
    size_t hello_len, ack_len;
};

static int send_hello(struct conn *c, const struct key *k, uint8_t nonce[MSG_NONCE_LEN],
                      struct recorded *rec)
{
    struct msg m = { .type = MSG_HELLO };
    uint8_t *der = NULL;
    size_t der_len = 0;
    struct crypto_diag cd;
    int rc;

    crypto_diag_clear(&cd);
    if (key_public_der(k, &der, &der_len, &cd) != 0)
        return -1;
    if (getrandom(nonce, MSG_NONCE_LEN, 0) != (ssize_t)MSG_NONCE_LEN) {
        free(der);
        return -1;
    }
    memcpy(m.u.hello.id, key_id_bin(k), MSG_ID_LEN);
    memcpy(m.u.hello.nonce, nonce, MSG_NONCE_LEN);
    m.u.hello.pk.p = der;
    m.u.hello.pk.n = der_len;
    rc = send_msg(c, &m, rec ? &rec->hello : NULL, rec ? &rec->hello_len : NULL);
    free(der);
    return rc;
}

static int send_ack(struct conn *c, const struct key *k, const uint8_t nonce[MSG_NONCE_LEN],
                    struct recorded *rec)
{
    uint8_t auth[MSG_AUTH_INPUT_LEN];
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    struct crypto_diag cd;
    struct msg m = { .type = MSG_HELLO_ACK };
    int rc;

    crypto_diag_clear(&cd);
    msg_auth_input(auth, c->s.peer_nonce, nonce, c->s.peer_id, key_id_bin(k));
    if (sig_sign(k, auth, sizeof auth, &sig, &sig_len, &cd) != 0) {
        fprintf(stderr, "rawpeer: sign: %s\n", cd.msg);
        return -1;
    }
    m.u.hello_ack.sig.p = sig;
    m.u.hello_ack.sig.n = sig_len;
    rc = send_msg(c, &m, rec ? &rec->ack : NULL, rec ? &rec->ack_len : NULL);
    free(sig);
    return rc;
}

/* Full handshake with key k; authenticated once the daemon's DIGEST came.
 * Returns 0, or -1 (printed why). */
static int handshake(struct conn *c, const struct opts *o, const struct key *k,
                     struct recorded *rec)
{
    uint8_t nonce[MSG_NONCE_LEN];
    long t0 = now_ms();

    if (conn_open(c, o->addr) != 0 || send_hello(c, k, nonce, rec) != 0)
        return -1;
    if (pump(c, got_hello, t0, t0 + o->wait_ms) != 0 || !c->s.hello) {
        printf("rawpeer: no HELLO from the daemon (bye=%d closed=%d)\n", c->s.bye, c->s.closed);
        return -1;
    }
    if (send_ack(c, k, nonce, rec) != 0)
        return -1;
    if (pump(c, got_digest, t0, t0 + o->wait_ms) != 0 || !c->s.digest) {
        printf("rawpeer: handshake not completed: no DIGEST after our HELLO_ACK "
               "(bye=%d code=%d closed=%d): is the --key trusted by the daemon?\n",
               c->s.bye, c->s.bye_code, c->s.closed);
        return -1;
    }
    printf("rawpeer: authenticated (HELLO, HELLO_ACK, DIGEST received)\n");
    return 0;
}

/* Wait for the daemon to end the connection; judge what it did. want_code:
 * the BYE code required (1 = any peer fault, 2 = close with or without a
 * BYE). Returns 0 as expected, 1 not. */
static int expect_close(struct conn *c, const struct opts *o, int want_code, long t0)
{
    int rc = pump(c, NULL, t0, t0 + o->wait_ms);

    if (rc != 0 || !c->s.closed) {
        printf("rawpeer: FAIL: connection still open %ld ms after the misbehaviour\n",
               o->wait_ms);
        return 1;
    }
    if (want_code == 2)
        return 0;
    if (!c->s.bye) {
        printf("rawpeer: FAIL: closed without a BYE (want code %d)\n", want_code);
        return 1;
    }
    if (want_code == 1 ? !proto_err_is_peer_fault(c->s.bye_code) : c->s.bye_code != want_code) {
        printf("rawpeer: FAIL: BYE code %d (%s), want %s\n", c->s.bye_code,
               proto_err_name(c->s.bye_code),
               want_code == 1 ? "a peer-fault code (-203..-249)" : proto_err_name(want_code));
        return 1;
    }
    return 0;
}

/* ---- raw msgpack (deliberately not msg_encode: it refuses these) ---- */

struct mp {
    uint8_t b[512];
    size_t n;
};

static void mp_byte(struct mp *m, uint8_t v) { m->b[m->n++] = v; }

static void mp_str(struct mp *m, const char *s)
{
    size_t n = strlen(s);

    mp_byte(m, (uint8_t)(0xa0 | n));   /* fixstr: every string here is < 32 bytes */
    memcpy(m->b + m->n, s, n);
    m->n += n;
}

static void mp_bin(struct mp *m, const uint8_t *p, size_t n)
{
    mp_byte(m, 0xc4);                  /* bin 8 */
    mp_byte(m, (uint8_t)n);
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void mp_uint(struct mp *m, uint8_t v) { mp_byte(m, v & 0x7f); }  /* fixint */

/* Send body as one frame. */
static int send_body(struct conn *c, const struct mp *m)
{
    uint8_t hdr[FRAME_HEADER];

    if (frame_put_header(hdr, m->n) != 0 || send_all(c->fd, hdr, sizeof hdr) != 0)
        return -1;
    return send_all(c->fd, m->b, m->n);
}

/* MANIFEST {t:6, v:1, id: bin32, dom: "../x", size: 10, cfg: bin0, man: bin0} */
static void body_bad_manifest(struct mp *m)
{
    uint8_t id[MSG_ID_LEN];

    rng_fill(id, sizeof id);
    mp_byte(m, 0x87);
    mp_str(m, "t"); mp_uint(m, MSG_MANIFEST);
    mp_str(m, "v"); mp_uint(m, PROTO_VERSION);
    mp_str(m, "id"); mp_bin(m, id, sizeof id);
    mp_str(m, "dom"); mp_str(m, "../x");
    mp_str(m, "size"); mp_uint(m, 10);
    mp_str(m, "cfg"); mp_bin(m, id, 0);
    mp_str(m, "man"); mp_bin(m, id, 0);
}

/* WANT {t:4, v:1, ids: [["../../etc", 0]], vids: []} */
static void body_bad_want(struct mp *m)
{
    mp_byte(m, 0x84);
    mp_str(m, "t"); mp_uint(m, MSG_WANT);
    mp_str(m, "v"); mp_uint(m, PROTO_VERSION);
    mp_str(m, "ids");
    mp_byte(m, 0x91);                  /* fixarray 1 */
    mp_byte(m, 0x92);                  /* [id, from] */
    mp_str(m, "../../etc");
    mp_uint(m, 0);
    mp_str(m, "vids");
    mp_byte(m, 0x90);
}

/* ---- modes ---- */

/* garbage / oversize / half / idle: pre-auth misbehaviour on one connection. */
static int run_preauth(const struct opts *o)
{
    struct conn c;
    uint8_t buf[FRAME_HEADER + FRAME_MAX_PREAUTH];
    size_t n = 0;
    int want = 2, rc = 1;
    long t0 = now_ms();

    if (conn_open(&c, o->addr) != 0)
        return 2;
    if (pump(&c, got_hello, t0, t0 + 2000) == 0 && c.s.hello)
        printf("rawpeer: daemon HELLO received\n");
    if (c.s.closed || c.s.bye) {
        printf("rawpeer: FAIL: the daemon closed before any misbehaviour\n");
        conn_close(&c);
        return 1;
    }
    if (strcmp(o->mode, "garbage") == 0) {
        size_t body = 1 + (size_t)(rng_next() % FRAME_MAX_PREAUTH);
        frame_put_header(buf, body);
        rng_fill(buf + FRAME_HEADER, body);
        n = FRAME_HEADER + body;
        want = 1;
    } else if (strcmp(o->mode, "oversize") == 0) {
        memset(buf, 0xff, FRAME_HEADER);
        rng_fill(buf + FRAME_HEADER, 64);
        n = FRAME_HEADER + 64;
        want = PROTO_E_FRAME_LEN;
    } else if (strcmp(o->mode, "half") == 0) {
        frame_put_header(buf, 1000);
        rng_fill(buf + FRAME_HEADER, 500);
        n = FRAME_HEADER + 500;
    } else {
        want = PROTO_E_STATE;          /* idle: the handshake deadline */
    }
    t0 = now_ms();
    if (n > 0 && send_all(c.fd, buf, n) != 0)
        printf("rawpeer: send failed (daemon already closed?): %s\n", strerror(errno));
    printf("rawpeer: %s: sent %zu bytes\n", o->mode, n);
    rc = expect_close(&c, o, want, t0);
    conn_close(&c);
    return rc;
}

static int load_key(const struct opts *o, struct key **k)
{
    struct crypto_diag cd;

    crypto_diag_clear(&cd);
    if (!o->key) {
        fprintf(stderr, "rawpeer: %s needs --key FILE (a key the daemon trusts)\n", o->mode);
        return 2;
    }
    if (key_load_private_pem(k, o->key, &cd) != 0) {
        fprintf(stderr, "rawpeer: %s\n", cd.msg);
        return 2;
    }
    return 0;
}

/* One authenticated connection that then sends `m`; expects BYE want. */
static int authed_then(const struct opts *o, const struct key *k, const struct mp *m, int want,
                       const char *what)
{
    struct conn c;
    int rc = 1;

    if (handshake(&c, o, k, NULL) == 0) {
        long t0 = now_ms();
        if (send_body(&c, m) != 0)
            printf("rawpeer: send failed: %s\n", strerror(errno));
        printf("rawpeer: sent %s\n", what);
        rc = expect_close(&c, o, want, t0);
    }
    conn_close(&c);
    return rc;
}

static int run_traversal(const struct opts *o)
{
    struct key *k = NULL;
    struct mp man = { .n = 0 }, want = { .n = 0 };
    int rc = load_key(o, &k);

    if (rc != 0)
        return rc;
    body_bad_manifest(&man);
    body_bad_want(&want);
    rc = authed_then(o, k, &man, PROTO_E_FIELD_VALUE, "MANIFEST with domain \"../x\"");
    rc |= authed_then(o, k, &want, PROTO_E_FIELD_TYPE, "WANT with id str \"../../etc\"");
    key_free(k);
    return rc;
}

static int run_replay(const struct opts *o)
{
    struct key *k = NULL;
    struct recorded rec = { 0 };
    struct conn c;
    int rc = load_key(o, &k);

    if (rc != 0)
        return rc;
    rc = 1;
    if (handshake(&c, o, k, &rec) == 0) {
        struct msg bye = { .type = MSG_BYE };
        (void)send_msg(&c, &bye, NULL, NULL);
        conn_close(&c);
        usleep(200 * 1000);
        printf("rawpeer: replaying the recorded HELLO and HELLO_ACK on a new connection\n");
        long t0 = now_ms();
        if (conn_open(&c, o->addr) == 0) {
            (void)send_all(c.fd, rec.hello, rec.hello_len);
            (void)send_all(c.fd, rec.ack, rec.ack_len);
            rc = expect_close(&c, o, PROTO_E_AUTH, t0);
        }
    }
    conn_close(&c);
    free(rec.hello);
    free(rec.ack);
    key_free(k);
    return rc;
}

/* ---- liars (daemon_liars.sh) ---- */

/* Wait `ms` with the connection open; 0 if it stayed open, 1 if the daemon
 * closed it or said BYE (reported). */
static int expect_open(struct conn *c, long ms)
{
    long t0 = now_ms();

    (void)pump(c, NULL, t0, t0 + ms);
    if (c->s.closed || c->s.bye) {
        printf("rawpeer: FAIL: the daemon ended the connection (BYE %d), want it kept\n",
               c->s.bye_code);
        return 1;
    }
    printf("rawpeer: connection kept %ld ms, as expected\n", ms);
    return 0;
}

/* One VOTE on o->adapter by vk with verdict `accept`; --tamper: signed as
 * REJECT, sent as ACCEPT. Returns 0 or -1 (printed why). */
static int send_vote(struct conn *c, const struct opts *o, const struct key *vk, bool accept)
{
    struct crypto_diag cd;
    struct vote *v = NULL;
    struct msg m = { .type = MSG_VOTE };
    char *json = NULL;
    size_t n = 0;
    uint8_t id[MSG_ID_LEN];
    int rc = -1;

    crypto_diag_clear(&cd);
    size_t got = 0;

    if (!hex_is_sha256(o->adapter) ||
        hex_decode(o->adapter, strlen(o->adapter), id, sizeof id, &got, &cd) != 0 ||
        vote_new(&v, o->adapter, o->domain, o->tamper || !accept ? VOTE_REJECT : VOTE_ACCEPT,
                 (int64_t)time(NULL), &cd) != 0 ||
        vote_add_reason(v, "rawpeer", &cd) != 0 || vote_sign(v, vk, &cd) != 0) {
        fprintf(stderr, "rawpeer: vote: %s\n", cd.msg);
        goto out;
    }
    if (o->tamper)
        v->verdict = VOTE_ACCEPT;   /* the signature covers "reject" */
    if (vote_encode_json(v, &json, &n, &cd) != 0) {
        fprintf(stderr, "rawpeer: vote json: %s\n", cd.msg);
        goto out;
    }
    memcpy(m.u.vote.id, id, MSG_ID_LEN);
    memcpy(m.u.vote.by, key_id_bin(vk), MSG_ID_LEN);
    m.u.vote.body = (struct msg_bytes){ (const uint8_t *)json, n };
    m.u.vote.sig = (struct msg_bytes){ v->sig, v->sig_len };
    rc = send_msg(c, &m, NULL, NULL);
    printf("rawpeer: sent VOTE %s%s by %.16s...\n", accept ? "accept" : "reject",
           o->tamper ? " (tampered: signed reject)" : "", key_id(vk));
out:
    free(json);
    vote_free(v);
    return rc;
}

static int run_vote(const struct opts *o)
{
    struct key *k = NULL, *vk = NULL;
    struct crypto_diag cd;
    struct conn c;
    char list[64], *save = NULL;
    int rc = load_key(o, &k);

    if (rc != 0)
        return rc;
    crypto_diag_clear(&cd);
    if (!o->vote_key || !o->adapter || !o->expect ||
        key_load_private_pem(&vk, o->vote_key, &cd) != 0) {
        fprintf(stderr, "rawpeer: vote needs --vote-key FILE --adapter HEX --expect fault|open %s\n",
                cd.msg);
        key_free(k);
        return 2;
    }
    rc = 1;
    snprintf(list, sizeof list, "%s", o->verdict);
    if (handshake(&c, o, k, NULL) == 0) {
        long t0 = now_ms();
        int bad = 0;
        for (char *t = strtok_r(list, ",", &save); t != NULL && bad == 0;
             t = strtok_r(NULL, ",", &save))
            bad = send_vote(&c, o, vk, strcmp(t, "accept") == 0);
        if (bad == 0 && strcmp(o->expect, "fault") == 0) {
            rc = expect_close(&c, o, 1, t0);
        } else if (bad == 0 && (rc = expect_open(&c, 1000)) == 0) {
            struct msg bye = { .type = MSG_BYE };
            (void)send_msg(&c, &bye, NULL, NULL);
        }
    }
    conn_close(&c);
    key_free(vk);
    key_free(k);
    return rc;
}

/* An adapter read whole from --adapter-dir. */
struct adapter {
    uint8_t *w, *cfg, *man;
    size_t w_n, cfg_n, man_n;
    msg_id id;
};

static int read_all(const char *dir, const char *name, uint8_t **p, size_t *n)
{
    char path[4096];
    FILE *f;
    struct stat st;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &st) != 0 ||
        (*p = malloc((size_t)st.st_size + 1)) == NULL ||
        fread(*p, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        fprintf(stderr, "rawpeer: cannot read %s\n", path);
        if (f)
            fclose(f);
        return -1;
    }
    *n = (size_t)st.st_size;
    fclose(f);
    return 0;
}

static int adapter_load(struct adapter *a, const char *dir)
{
    memset(a, 0, sizeof *a);
    if (!dir || read_all(dir, "adapter_model.safetensors", &a->w, &a->w_n) != 0 ||
        read_all(dir, "adapter_config.json", &a->cfg, &a->cfg_n) != 0 ||
        read_all(dir, "plora.yml", &a->man, &a->man_n) != 0)
        return -1;
    return sha256(a->w, a->w_n, a->id) == 0 ? 0 : -1;
}

static void adapter_free(struct adapter *a)
{
    free(a->w);
    free(a->cfg);
    free(a->man);
}

static int send_digest_of(struct conn *c, const struct opts *o, const struct adapter *ad)
{
    struct msg_ad e = { .size = ad->w_n };
    struct msg m = { .type = MSG_DIGEST };

    memcpy(e.id, ad->id, MSG_ID_LEN);
    snprintf(e.domain, sizeof e.domain, "%s", o->domain);
    m.u.digest.n_ads = 1;
    m.u.digest.ads = &e;
    return send_msg(c, &m, NULL, NULL);
}

static int send_manifest(struct conn *c, const struct opts *o, const struct adapter *ad)
{
    struct msg m = { .type = MSG_MANIFEST };

    memcpy(m.u.manifest.id, ad->id, MSG_ID_LEN);
    snprintf(m.u.manifest.domain, sizeof m.u.manifest.domain, "%s", o->domain);
    m.u.manifest.size = ad->w_n;
    m.u.manifest.config = (struct msg_bytes){ ad->cfg, ad->cfg_n };
    m.u.manifest.manifest = (struct msg_bytes){ ad->man, ad->man_n };
    return send_msg(c, &m, NULL, NULL);
}

static int send_chunk(struct conn *c, const struct adapter *ad, uint64_t off, const uint8_t *p,
                      size_t n)
{
    struct msg m = { .type = MSG_CHUNK };

    memcpy(m.u.chunk.id, ad->id, MSG_ID_LEN);
    m.u.chunk.off = off;
    m.u.chunk.data = (struct msg_bytes){ p, n };
    return send_msg(c, &m, NULL, NULL);
}

#define LIE_CHUNK (256u << 10)

/* After the WANT: what the liar sends. Returns the BYE code expected. */
static int lie(struct conn *c, const struct opts *o, struct adapter *ad)
{
    const char *m = o->mode;
    size_t first = ad->w_n < LIE_CHUNK ? ad->w_n : LIE_CHUNK;

    if (strcmp(m, "lie-nowant") == 0) {
        printf("rawpeer: WANT received; never answering it\n");
        return PROTO_E_STATE;
    }
    (void)send_manifest(c, o, ad);
    if (strcmp(m, "lie-offset") == 0) {
        (void)send_chunk(c, ad, ad->w_n, ad->w, first);
        printf("rawpeer: sent MANIFEST, then a CHUNK at offset %zu (the size)\n", ad->w_n);
        return PROTO_E_STATE;
    }
    ad->w[ad->w_n / 2] ^= 0x5a;   /* wrong bytes from here on */
    if (strcmp(m, "lie-stall") == 0) {
        ad->w[first / 2] ^= 0xa5;
        (void)send_chunk(c, ad, 0, ad->w, first);
        printf("rawpeer: sent MANIFEST and a CHUNK of %zu wrong bytes; now silent\n", first);
        return PROTO_E_STATE;
    }
    for (size_t off = 0; off < ad->w_n; off += LIE_CHUNK)
        (void)send_chunk(c, ad, off, ad->w + off, ad->w_n - off < LIE_CHUNK ? ad->w_n - off : LIE_CHUNK);
    printf("rawpeer: sent MANIFEST and all %zu bytes, byte %zu flipped\n", ad->w_n, ad->w_n / 2);
    return PROTO_E_HASH;
}

static bool got_want(const struct seen *s) { return s->want || s->bye; }

static int run_lie(const struct opts *o)
{
    struct key *k = NULL;
    struct adapter ad;
    struct conn c;
    int rc = load_key(o, &k);

    if (rc != 0)
        return rc;
    if (!o->domain || adapter_load(&ad, o->adapter_dir) != 0) {
        fprintf(stderr, "rawpeer: %s needs --adapter-dir DIR (with plora.yml) --domain D\n", o->mode);
        adapter_free(&ad);
        key_free(k);
        return 2;
    }
    rc = 1;
    if (handshake(&c, o, k, NULL) == 0 && send_digest_of(&c, o, &ad) == 0) {
        long t0 = now_ms();
        if (pump(&c, got_want, t0, t0 + o->wait_ms) != 0 || !c.s.want) {
            printf("rawpeer: FAIL: no WANT for the adapter announced (bye=%d closed=%d)\n",
                   c.s.bye, c.s.closed);
        } else {
            int want = lie(&c, o, &ad);
            rc = expect_close(&c, o, want, now_ms());
        }
    }
    conn_close(&c);
    adapter_free(&ad);
    key_free(k);
    return rc;
}

/* A handshake that the daemon must refuse: BYE PROTO_E_AUTH "banned". */
static int run_banned(const struct opts *o)
{
    struct key *k = NULL;
    struct conn c;
    uint8_t nonce[MSG_NONCE_LEN];
    int rc = load_key(o, &k);
    long t0 = now_ms();

    if (rc != 0)
        return rc;
    rc = 1;
    if (conn_open(&c, o->addr) == 0 && send_hello(&c, k, nonce, NULL) == 0 &&
        pump(&c, got_hello, t0, t0 + o->wait_ms) == 0 && c.s.hello && send_ack(&c, k, nonce, NULL) == 0)
        rc = expect_close(&c, o, PROTO_E_AUTH, t0);
    if (rc == 0 && strcmp(c.s.bye_text, "banned") != 0) {
        printf("rawpeer: FAIL: BYE text \"%s\", want \"banned\"\n", c.s.bye_text);
        rc = 1;
    }
    conn_close(&c);
    key_free(k);
    return rc;
}

/* ---- flood ---- */

static volatile sig_atomic_t flood_stop;   /* SIGTERM: stop, print the tallies */

static void on_term(int sig)
{
    (void)sig;
    flood_stop = 1;
}

struct flood {
    struct sockaddr_in sa;
    struct pollfd *p;             /* fd -1: closed by the daemon (or never opened) */
    long opened, failed, closed, first_close_ms, t0;
};

static int flood_dial(struct flood *f, size_t i)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    f->p[i].fd = -1;
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&f->sa, sizeof f->sa) != 0 && errno != EINPROGRESS) {
        close(fd);
        f->failed++;
        return 0;
    }
    f->p[i] = (struct pollfd){ .fd = fd, .events = POLLIN };
    f->opened++;
    return 0;
}

/* Read and drop what arrived; a closed socket is counted and its slot freed. */
static void flood_poll(struct flood *f, size_t n, int ms)
{
    uint8_t buf[4096];

    if (poll(f->p, n, ms) <= 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (f->p[i].fd < 0 || f->p[i].revents == 0)
            continue;
        ssize_t r = recv(f->p[i].fd, buf, sizeof buf, 0);
        if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EINTR)))
            continue;
        close(f->p[i].fd);
        f->p[i].fd = -1;
        if (f->closed++ == 0)
            f->first_close_ms = now_ms() - f->t0;
    }
}

static int flood_limit(long n)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)n + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        printf("rawpeer: FAIL: RLIMIT_NOFILE hard limit is %llu, %ld connections need %llu "
               "(raise it: ulimit -Hn, or LimitNOFILE=)\n", (unsigned long long)rl.rlim_max, n,
               (unsigned long long)need);
        return -1;
    }
    rl.rlim_cur = need;
    return setrlimit(RLIMIT_NOFILE, &rl);
}

static int run_flood(const struct opts *o)
{
    struct flood f = { .first_close_ms = -1 };
    size_t n = (size_t)o->count;
    char host[64];
    const char *colon = strrchr(o->addr, ':');
    long end;

    if (flood_limit(o->count) != 0)
        return 1;
    if (!colon || (size_t)(colon - o->addr) >= sizeof host || (f.p = calloc(n, sizeof *f.p)) == NULL)
        return 2;
    memcpy(host, o->addr, (size_t)(colon - o->addr));
    host[colon - o->addr] = '\0';
    f.sa.sin_family = AF_INET;
    f.sa.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &f.sa.sin_addr) != 1)
        return 2;
    signal(SIGTERM, on_term);
    f.t0 = now_ms();
    for (size_t i = 0; i < n && !flood_stop; i++) {
        if (flood_dial(&f, i) != 0) {
            printf("rawpeer: FAIL: socket #%zu: %s\n", i, strerror(errno));
            return 1;
        }
        if (i % 256 == 255)   /* let the daemon's accept queue drain */
            flood_poll(&f, i + 1, 1);
    }
    printf("rawpeer: flood: %ld opened in %ld ms (%ld refused at connect)%s\n", f.opened,
           now_ms() - f.t0, f.failed, flood_stop ? ", stopped by SIGTERM" : "");
    end = now_ms() + o->hold_ms;
    while (now_ms() < end && !flood_stop) {
        flood_poll(&f, n, 100);
        for (size_t i = 0; o->reopen && i < n; i++)
            if (f.p[i].fd < 0 && flood_dial(&f, i) != 0)
                break;
    }
    long open = 0;
    for (size_t i = 0; i < n; i++)
        open += f.p[i].fd >= 0;
    printf("rawpeer: flood: held %ld ms: %ld connects, %ld closed by the daemon (first after %ld ms), "
           "%ld still open\n", now_ms() - f.t0, f.opened, f.closed, f.first_close_ms, open);
    for (size_t i = 0; i < n; i++)
        if (f.p[i].fd >= 0)
            close(f.p[i].fd);
    free(f.p);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: rawpeer garbage|oversize|half|idle|hello-replay|domain-traversal|vote|"
                    "lie-nowant|lie-stall|lie-bytes|lie-offset|banned|flood HOST:PORT [--key FILE] "
                    "[--wait-ms N] [--seed S] [--vote-key FILE] [--adapter HEX] [--domain D] "
                    "[--verdict LIST] [--tamper] [--expect fault|open] [--adapter-dir DIR] "
                    "[--count N] [--hold-ms N] [--reopen]\n");
    return 2;
}

static int parse(int argc, char **argv, struct opts *o)
{
    o->wait_ms = 15000;
    o->count = 10000;
    o->hold_ms = 5000;
    o->verdict = "accept";
    o->domain = "";
    o->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (argc < 3)
        return -1;
    o->mode = argv[1];
    o->addr = argv[2];
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--tamper") == 0 || strcmp(argv[i], "--reopen") == 0) {
            *(argv[i][2] == 't' ? &o->tamper : &o->reopen) = true;
            continue;
        }
        if (i + 1 >= argc)
            return -1;
        if (strcmp(argv[i], "--key") == 0)
            o->key = argv[++i];
        else if (strcmp(argv[i], "--wait-ms") == 0)
            o->wait_ms = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seed") == 0)
            o->seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--vote-key") == 0)
            o->vote_key = argv[++i];
        else if (strcmp(argv[i], "--adapter") == 0)
            o->adapter = argv[++i];
        else if (strcmp(argv[i], "--domain") == 0)
            o->domain = argv[++i];
        else if (strcmp(argv[i], "--verdict") == 0)
            o->verdict = argv[++i];
        else if (strcmp(argv[i], "--expect") == 0)
            o->expect = argv[++i];
        else if (strcmp(argv[i], "--adapter-dir") == 0)
            o->adapter_dir = argv[++i];
        else if (strcmp(argv[i], "--count") == 0)
            o->count = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--hold-ms") == 0)
            o->hold_ms = strtol(argv[++i], NULL, 10);
        else
            return -1;
    }
    return o->wait_ms > 0 && o->count > 0 && o->count <= 1000000 && o->hold_ms >= 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct opts o = { 0 };
    int rc;

    if (parse(argc, argv, &o) != 0)
        return usage();
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);   /* the tests read it while we run */
    rng_state = o.seed;
    printf("rawpeer: mode %s against %s (seed %llu)\n", o.mode, o.addr,
           (unsigned long long)o.seed);
    if (strcmp(o.mode, "garbage") == 0 || strcmp(o.mode, "oversize") == 0 ||
        strcmp(o.mode, "half") == 0 || strcmp(o.mode, "idle") == 0)
        rc = run_preauth(&o);
    else if (strcmp(o.mode, "domain-traversal") == 0)
        rc = run_traversal(&o);
    else if (strcmp(o.mode, "hello-replay") == 0)
        rc = run_replay(&o);
    else if (strcmp(o.mode, "vote") == 0)
        rc = run_vote(&o);
    else if (strncmp(o.mode, "lie-", 4) == 0)
        rc = run_lie(&o);
    else if (strcmp(o.mode, "banned") == 0)
        rc = run_banned(&o);
    else if (strcmp(o.mode, "flood") == 0)
        rc = run_flood(&o);
    else
        return usage();
    printf("rawpeer: %s: %s\n", o.mode, rc == 0 ? "daemon reacted as expected" : "UNEXPECTED");
    return rc;
}
