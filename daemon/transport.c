/* daemon/transport.c: listeners, dials with backoff, the connection table,
 * strikes and bans, shutdown (see transport.h; one connection's I/O is in
 * conn.c).
 *
 * Every libuv handle or request the transport starts is counted in
 * t->handles and uncounted in its close or completion callback, so that
 * transport_closed() can say when freeing is safe.
 */
#include "conn.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "msg.h"

#define HOSTS_MAX 1024u                    /* remembered strike/ban records */
#define STRIKE_WINDOW_MS (3600u * 1000u)   /* strikes older than this are forgotten */
#define LISTEN_BACKLOG 511

struct dial {
    struct dial *next;
    struct transport *t;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    struct conn *conn;        /* connecting or up; NULL while waiting */
    uint32_t backoff_ms;      /* next wait before a redial */
    int refs;                 /* the timer handle + a pending getaddrinfo */
    bool resolving, removed;
    unsigned port;
    char host[MSG_ADDR_MAX + 1];
    char addr[MSG_ADDR_MAX + 1];
};

static uint64_t t_now(const struct transport *t)
{
    return uv_now(t->loop);
}

/* xorshift64*: jitter only, seeded from the OS CSPRNG. */
static uint64_t rng_next(struct transport *t)
{
    uint64_t x = t->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static int fill_opts(struct transport_opts *o, const struct transport_opts *in)
{
    *o = in != NULL ? *in : (struct transport_opts){0};
    o->handshake_ms = o->handshake_ms ? o->handshake_ms : 10000;
    o->idle_ms = o->idle_ms ? o->idle_ms : 60000;
    o->frame_ms = o->frame_ms ? o->frame_ms : 30000;
    o->preauth_frame_max = o->preauth_frame_max ? o->preauth_frame_max : FRAME_MAX_PREAUTH;
    o->frame_max = o->frame_max ? o->frame_max : FRAME_MAX;
    o->queue_max = o->queue_max ? o->queue_max : (size_t)4 << 20;
    o->max_conns = o->max_conns ? o->max_conns : 256;
    o->ban_strikes = o->ban_strikes ? o->ban_strikes : 3;
    o->ban_ms = o->ban_ms ? o->ban_ms : 300000;
    o->dial_min_ms = o->dial_min_ms ? o->dial_min_ms : 250;
    o->dial_max_ms = o->dial_max_ms ? o->dial_max_ms : 30000;
    if (o->frame_max > FRAME_MAX || o->preauth_frame_max > o->frame_max)
        return DMN_E_ARG;
    if (o->dial_max_ms < o->dial_min_ms)
        o->dial_max_ms = o->dial_min_ms;
    return 0;
}

int transport_new(struct transport **out, uv_loop_t *loop, const struct transport_opts *o,
                  const struct transport_cbs *cb, struct dmn_diag *d)
{
    struct transport *t = NULL;
    int rc = DMN_E_NOMEM;

    *out = NULL;
    if ((t = calloc(1, sizeof(*t))) == NULL)
        goto out;
    if ((rc = fill_opts(&t->o, o)) != 0) {
        dmn_fail(d, rc, "transport: frame caps preauth %zu, authed %zu: need preauth <= authed"
                 " <= %u", t->o.preauth_frame_max, t->o.frame_max, FRAME_MAX);
        goto out;
    }
    rc = DMN_E_NOMEM;
    t->hosts = calloc(HOSTS_MAX, sizeof(*t->hosts));
    t->scratch = malloc(CONN_READ_MIN);
    if (t->hosts == NULL || t->scratch == NULL)
        goto out;
    t->n_hosts_max = HOSTS_MAX;
    t->loop = loop;
    t->cb = *cb;
    t->next_id = 1;
    signal(SIGPIPE, SIG_IGN);  /* a peer's reset must fail a write, not kill the daemon */
    if (uv_random(NULL, NULL, &t->rng, sizeof(t->rng), 0, NULL) != 0 || t->rng == 0)
        t->rng = uv_hrtime() | 1;
    *out = t;
    t = NULL;
    rc = 0;
out:
    if (rc == DMN_E_NOMEM)
        dmn_fail(d, rc, "transport: out of memory");
    transport_free(t);
    return rc;
}

/* ---- addresses ---- */

/* "host:port" or "[v6]:port" -> host (no brackets), port, whether bracketed.
 * Returns 0 or -1 (malformed). */
static int split_addr(const char *addr, char *host, size_t cap, unsigned *port, bool *v6)
{
    const char *h = addr, *colon, *rb;
    size_t hl, i;
    unsigned long p = 0;

    if (addr == NULL)
        return -1;
    *v6 = addr[0] == '[';
    if (*v6) {
        if ((rb = strchr(addr, ']')) == NULL || rb[1] != ':')
            return -1;
        h = addr + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        if ((colon = strrchr(addr, ':')) == NULL)
            return -1;
        hl = (size_t)(colon - addr);
        if (memchr(addr, ':', hl) != NULL)
            return -1;  /* a bare IPv6 literal needs brackets */
    }
    if (hl == 0 || hl >= cap)
        return -1;
    memcpy(host, h, hl);
    host[hl] = 0;
    for (i = 1; colon[i] != 0; i++) {
        if (colon[i] < '0' || colon[i] > '9' || i > 5)
            return -1;
        p = p * 10 + (unsigned long)(colon[i] - '0');
    }
    if (i == 1 || p > 65535 || (colon[1] == '0' && i > 2))
        return -1;
    *port = (unsigned)p;
    return 0;
}

/* Literal host -> sockaddr. Returns 0 or a libuv error (not a literal). */
static int literal_sockaddr(const char *host, unsigned port, bool v6, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (v6)
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss);
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss);
}

void transport_sockaddr_text(const struct sockaddr *sa, char *addr, size_t addr_cap,
                             char *host, size_t host_cap)
{
    char h[CONN_HOST_MAX] = "?";
    unsigned port = 0;

    if (sa->sa_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)sa, h, sizeof(h));
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    } else if (sa->sa_family == AF_INET) {
        uv_ip4_name((const struct sockaddr_in *)sa, h, sizeof(h));
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    }
    if (host != NULL)
        snprintf(host, host_cap, "%s", h);
    if (addr != NULL)
        snprintf(addr, addr_cap, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", h, port);
}

/* ---- the connection table ---- */

struct conn *transport_conn_find(const struct transport *t, uint32_t id)
{
    struct conn *c;

    if (t == NULL || id == 0)
        return NULL;
    for (c = t->table[id & (CONN_BUCKETS - 1)]; c != NULL; c = c->hnext)
        if (c->id == id)
            return c;
    return NULL;
}

/* Give c the next id (ids are never reused; 0 is skipped) and file it. */
void transport_conn_insert(struct transport *t, struct conn *c)
{
    struct conn **b;

    c->id = t->next_id++;
    if (t->next_id == 0)
        t->next_id = 1;
    signal(SIGPIPE, SIG_IGN);  /* a peer's reset must fail a write, not kill the daemon */
    b = &t->table[c->id & (CONN_BUCKETS - 1)];
    c->hnext = *b;
    *b = c;
}

void transport_conn_remove(struct transport *t, struct conn *c)
{
    struct conn **p = &t->table[c->id & (CONN_BUCKETS - 1)];

    while (*p != NULL && *p != c)
        p = &(*p)->hnext;
    if (*p != NULL)
        *p = c->hnext;
}

static void on_drain_idle(uv_idle_t *h)
{
    struct transport *t = h->data;
    struct conn *c;
    unsigned b;

    uv_idle_stop(h);
    t->drain_active = false;
    for (b = 0; b < CONN_BUCKETS; b++)
        for (c = t->table[b]; c != NULL; c = c->hnext)
            if (c->drain_pending)
                conn_drain(c);
}

/* Deliver held frames of resumed connections on the next loop turn. */
void transport_drain_later(struct transport *t)
{
    if (t->shutting_down)
        return;
    if (!t->drain_init) {
        uv_idle_init(t->loop, &t->drain_idle);
        t->drain_idle.data = t;
        t->drain_init = true;
        t->handles++;
    }
    if (!t->drain_active) {
        uv_idle_start(&t->drain_idle, on_drain_idle);
        t->drain_active = true;
    }
}

/* ---- strikes and bans ---- */

/* Whether record a is a better victim than b: unbanned before banned, then
 * the older strike, or the ban that ends first. */
static bool host_less_useful(const struct host_rec *a, const struct host_rec *b, uint64_t now)
{
    bool a_banned = a->ban_until_ms > now, b_banned = b->ban_until_ms > now;

    if (a_banned != b_banned)
        return !a_banned;
    return a_banned ? a->ban_until_ms < b->ban_until_ms : a->last_strike_ms < b->last_strike_ms;
}

/* The record of host; with `create`, a new one replaces the least useful
 * (a free slot, else the oldest unbanned, else the ban ending first). */
static struct host_rec *host_get(struct transport *t, const char *host, bool create)
{
    struct host_rec *r, *victim = NULL;
    uint64_t now = t_now(t);
    size_t i;

    if (host[0] == 0)
        return NULL;  /* "" marks a free slot */
    for (i = 0; i < t->n_hosts_max; i++)
        if (strcmp(t->hosts[i].host, host) == 0)
            return &t->hosts[i];
    if (!create || strlen(host) >= CONN_HOST_MAX)
        return NULL;
    for (i = 0; i < t->n_hosts_max && (victim == NULL || victim->host[0] != 0); i++) {
        r = &t->hosts[i];
        if (victim == NULL || r->host[0] == 0 || host_less_useful(r, victim, now))
            victim = r;
    }
    memset(victim, 0, sizeof(*victim));
    strcpy(victim->host, host);
    return victim;
}

static void host_ban(struct transport *t, struct host_rec *r, uint32_t ms)
{
    r->ban_until_ms = t_now(t) + ms;
    r->strikes = 0;
    t->st.bans++;
    log_warn("PEER-BANNED", "host=%s banned for %" PRIu32 " ms", r->host, ms);
}

bool transport_host_strike(struct transport *t, const char *host)
{
    struct host_rec *r = host_get(t, host, true);
    uint64_t now = t_now(t);

    t->st.strikes++;
    if (r == NULL)
        return false;
    if (now - r->last_strike_ms > STRIKE_WINDOW_MS)
        r->strikes = 0;
    r->strikes++;
    r->last_strike_ms = now;
    log_info("PEER-STRIKE", "host=%s strike %" PRIu32 " of %" PRIu32, host, r->strikes,
             t->o.ban_strikes);
    if (r->strikes < t->o.ban_strikes)
        return false;
    host_ban(t, r, t->o.ban_ms);
    return true;
}

bool transport_host_banned(struct transport *t, const char *host)
{
    struct host_rec *r = host_get(t, host, false);

    return r != NULL && r->ban_until_ms > t_now(t);
}

bool transport_banned(const struct transport *t, const char *host)
{
    return host != NULL && transport_host_banned((struct transport *)t, host);
}

int transport_ban(struct transport *t, const char *host, uint32_t ms)
{
    struct host_rec *r;

    if (host == NULL || (r = host_get(t, host, true)) == NULL)
        return DMN_E_ARG;
    host_ban(t, r, ms ? ms : t->o.ban_ms);
    return 0;
}

bool transport_strike(struct transport *t, uint32_t conn)
{
    struct conn *c = transport_conn_find(t, conn);

    return c != NULL && transport_host_strike(t, c->host);
}

/* ---- listening ---- */

static void on_listener_closed(uv_handle_t *h)
{
    struct listener *l = h->data;

    l->t->handles--;
    free(l);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    struct transport *t = l->t;
    struct conn *c;
    const char *refuse = NULL;

    /* Out of memory: the connection stays in the backlog (libuv pauses this
     * listener until an accept) and the peer's connect times out. */
    if (status < 0 || conn_new(t, false, &c) != 0) {
        log_warn("NET-ACCEPT", "accept failed: %s", status < 0 ? uv_strerror(status)
                                                                : "out of memory");
        return;
    }
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || conn_peer_name(c) != 0)
        refuse = "accept failed";
    else if (t->stopped)
        refuse = "not accepting";
    else if (transport_host_banned(t, c->host))
        refuse = "banned";
    else if (t->n_conns > t->o.max_conns)  /* n_conns counts c */
        refuse = "too many connections";
    if (refuse == NULL) {
        conn_up(c, NULL);
        return;
    }
    /* a flood of connections must not become a flood of log lines: the
     * 1st, 2nd, 4th, 8th, ... refusal at info level, the others at debug */
    t->st.dropped++;
    log_msg((t->st.dropped & (t->st.dropped - 1)) == 0 ? LOG_INFO : LOG_DEBUG, "PEER-REFUSED",
            "peer=%s %s (%" PRIu64 " refused so far)", c->addr[0] ? c->addr : "?", refuse,
            (uint64_t)t->st.dropped);
    conn_close_hard(c, 0, refuse);
}

int transport_listen(struct transport *t, const char *addr, char *bound, size_t cap,
                     struct dmn_diag *d)
{
    struct sockaddr_storage ss;
    struct listener *l;
    char host[CONN_HOST_MAX];
    unsigned port;
    bool v6;
    int rc, len = (int)sizeof(ss);

    if (t->stopped)
        return dmn_fail(d, DMN_E_ARG, "listen on %s: transport stopped", addr);
    if (split_addr(addr, host, sizeof(host), &port, &v6) != 0 ||
        literal_sockaddr(host, port, v6, &ss) != 0)
        return dmn_fail(d, DMN_E_ARG, "listen address \"%s\": want IPv4:port or [IPv6]:port",
                        addr != NULL ? addr : "(null)");
    if ((l = calloc(1, sizeof(*l))) == NULL)
        return dmn_fail(d, DMN_E_NOMEM, "listen on %s: out of memory", addr);
    l->t = t;
    uv_tcp_init(t->loop, &l->tcp);
    l->tcp.data = l;
    t->handles++;
    if ((rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection)) != 0 ||
        (rc = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len)) != 0) {
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
        return dmn_fail(d, DMN_E_LISTEN, "listen on %s: %s", addr, uv_strerror(rc));
    }
    if (bound != NULL && cap > 0)
        transport_sockaddr_text((struct sockaddr *)&ss, bound, cap, NULL, 0);
    l->next = t->listeners;
    t->listeners = l;
    log_info("NET-LISTEN", "listening on %s", bound != NULL ? bound : addr);
    return 0;
}

/* ---- dialling ---- */

static void dial_attempt(struct dial *dl);

static void on_dial_timer(uv_timer_t *h)
{
    dial_attempt(h->data);
}

/* Wait the current backoff (+-20%), then double it up to dial_max_ms. */
static void dial_schedule(struct dial *dl)
{
    struct transport *t = dl->t;
    uint64_t wait = (uint64_t)dl->backoff_ms * (80 + rng_next(t) % 41) / 100;

    if (dl->removed || t->stopped)
        return;
    dl->backoff_ms = dl->backoff_ms > t->o.dial_max_ms / 2 ? t->o.dial_max_ms
                                                            : dl->backoff_ms * 2;
    uv_timer_start(&dl->timer, on_dial_timer, wait, 0);
}

/* A dial attempt failed: detach and close its connection, tell the node,
 * retry later. */
static void dial_failed(struct dial *dl, struct conn *c, const char *why)
{
    struct transport *t = dl->t;

    if (c != NULL) {
        c->dial = NULL;
        dl->conn = NULL;
        conn_close_hard(c, 0, why);
    }
    log_debug("PEER-DIAL-FAIL", "dial %s: %s", dl->addr, why);
    if (t->cb.on_dial_failed != NULL)
        t->cb.on_dial_failed(t->cb.ctx, dl->addr, why);
    dial_schedule(dl);
}

static void on_connected(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    struct dial *dl = c->dial;
    int rc = status;

    if (status == UV_ECANCELED || dl == NULL || c->state != CONN_CONNECTING)
        return;  /* undialled or shut down: the close is under way */
    if (rc == 0)
        rc = conn_peer_name(c);
    if (rc != 0) {
        dial_failed(dl, c, uv_strerror(rc));
        return;
    }
    conn_up(c, dl->addr);
}

static void dial_connect(struct dial *dl, const struct sockaddr *sa)
{
    struct transport *t = dl->t;
    char host[CONN_HOST_MAX];
    struct conn *c;
    int rc;

    transport_sockaddr_text(sa, NULL, 0, host, sizeof(host));
    if (transport_host_banned(t, host)) {
        dial_failed(dl, NULL, "host banned");
        return;
    }
    if (t->n_conns >= t->o.max_conns) {
        dial_failed(dl, NULL, "too many connections");
        return;
    }
    if (conn_new(t, true, &c) != 0) {
        dial_failed(dl, NULL, "out of memory");
        return;
    }
    c->dial = dl;
    dl->conn = c;
    if ((rc = uv_tcp_connect(&c->connect_req, &c->tcp, sa, on_connected)) != 0)
        dial_failed(dl, c, uv_strerror(rc));
}

static void dial_unref(struct dial *dl)
{
    if (--dl->refs == 0)
        free(dl);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct dial *dl = req->data;
    char why[CONN_WHY_MAX];

    dl->resolving = false;
    dl->t->handles--;
    if (!dl->removed && status != UV_ECANCELED) {
        if (status < 0 || res == NULL) {
            snprintf(why, sizeof(why), "resolve %.64s: %s", dl->host,
                     status < 0 ? uv_strerror(status) : "no address");
            dial_failed(dl, NULL, why);
        } else {
            dial_connect(dl, res->ai_addr);
        }
    }
    uv_freeaddrinfo(res);
    dial_unref(dl);
}

static void dial_attempt(struct dial *dl)
{
    struct transport *t = dl->t;
    struct sockaddr_storage ss;
    struct addrinfo hints = {0};
    char port[8], why[CONN_WHY_MAX];
    int rc;

    if (dl->removed || t->stopped || dl->conn != NULL)
        return;
    if (literal_sockaddr(dl->host, dl->port, strchr(dl->host, ':') != NULL, &ss) == 0) {
        dial_connect(dl, (struct sockaddr *)&ss);
        return;
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%u", dl->port);
    dl->gai.data = dl;
    if ((rc = uv_getaddrinfo(t->loop, &dl->gai, on_resolved, dl->host, port, &hints)) != 0) {
        snprintf(why, sizeof(why), "resolve %.64s: %s", dl->host, uv_strerror(rc));
        dial_failed(dl, NULL, why);
        return;
    }
    dl->resolving = true;
    dl->refs++;
    t->handles++;
}

int transport_dial(struct transport *t, const char *addr, struct dmn_diag *d)
{
    struct dial *dl;
    unsigned port;
    bool v6;
    struct sockaddr_storage ss;

    if (addr == NULL)
        return dmn_fail(d, DMN_E_ARG, "dial: no address");
    if ((dl = calloc(1, sizeof(*dl))) == NULL)
        return dmn_fail(d, DMN_E_NOMEM, "dial %s: out of memory", addr);
    if (strlen(addr) > MSG_ADDR_MAX ||
        split_addr(addr, dl->host, sizeof(dl->host), &port, &v6) != 0 || port == 0 ||
        (v6 && literal_sockaddr(dl->host, port, true, &ss) != 0) || t->stopped) {
        free(dl);
        return dmn_fail(d, DMN_E_ARG, "dial \"%s\": %s", addr,
                        t->stopped ? "transport stopped" : "want host:port or [IPv6]:port");
    }
    for (struct dial *x = t->dials; x != NULL; x = x->next)
        if (strcmp(x->addr, addr) == 0) {
            free(dl);
            return 0;  /* already kept */
        }
    snprintf(dl->addr, sizeof(dl->addr), "%s", addr);
    dl->port = port;
    dl->t = t;
    dl->backoff_ms = t->o.dial_min_ms;
    dl->refs = 1;
    uv_timer_init(t->loop, &dl->timer);
    dl->timer.data = dl;
    t->handles++;
    dl->next = t->dials;
    t->dials = dl;
    uv_timer_start(&dl->timer, on_dial_timer, 0, 0);  /* first attempt from the loop */
    return 0;
}

static void on_dial_timer_closed(uv_handle_t *h)
{
    struct dial *dl = h->data;

    dl->t->handles--;
    dial_unref(dl);
}

static void dial_remove(struct dial *dl)
{
    struct dial **p = &dl->t->dials;
    struct conn *c = dl->conn;

    while (*p != dl)
        p = &(*p)->next;
    *p = dl->next;
    dl->removed = true;
    if (c != NULL) {  /* an up connection stays: the node closes it */
        c->dial = NULL;
        dl->conn = NULL;
        if (c->state == CONN_CONNECTING)
            conn_close_hard(c, 0, "undialled");
    }
    if (dl->resolving)
        uv_cancel((uv_req_t *)&dl->gai);
    uv_close((uv_handle_t *)&dl->timer, on_dial_timer_closed);
}

void transport_undial(struct transport *t, const char *addr)
{
    struct dial *dl;

    for (dl = t->dials; dl != NULL; dl = dl->next)
        if (strcmp(dl->addr, addr) == 0) {
            dial_remove(dl);
            return;
        }
}

/* The dial's connection is gone: redial after the backoff. */
void transport_dial_conn_gone(struct dial *dl)
{
    dl->conn = NULL;
    dial_schedule(dl);
}

/* An authenticated connection proves the address good: start over at the
 * shortest backoff. */
void transport_dial_authed(struct dial *dl)
{
    dl->backoff_ms = dl->t->o.dial_min_ms;
}

/* ---- per-connection calls ---- */

int transport_send(struct transport *t, uint32_t conn, uint8_t *frame, size_t n)
{
    struct conn *c = transport_conn_find(t, conn);

    if (c == NULL) {
        free(frame);
        return DMN_E_NOT_FOUND;
    }
    return conn_send(c, frame, 0, n, false);
}

int transport_send_ref(struct transport *t, uint32_t conn, const uint8_t *head, size_t hn,
                       const uint8_t *data, size_t dn, void (*release)(void *base, size_t len),
                       void *rbase, size_t rlen)
{
    struct conn *c = transport_conn_find(t, conn);

    if (c == NULL) {
        release(rbase, rlen);
        return DMN_E_NOT_FOUND;
    }
    return conn_send_ref(c, head, hn, data, dn, release, rbase, rlen);
}

int transport_send2(struct transport *t, uint32_t conn, const uint8_t *a, size_t an,
                    const uint8_t *b, size_t bn)
{
    struct conn *c = transport_conn_find(t, conn);
    uint8_t *frame;
    int rc;

    if (c == NULL)
        return DMN_E_NOT_FOUND;
    if (an > SIZE_MAX - bn)
        return DMN_E_RANGE;
    if ((rc = conn_can_queue(c, an + bn)) != 0)
        return rc;  /* refused before copying */
    if ((frame = malloc(an + bn)) == NULL)
        return DMN_E_NOMEM;
    if (an > 0)
        memcpy(frame, a, an);
    if (bn > 0)
        memcpy(frame + an, b, bn);
    return conn_send(c, frame, 0, an + bn, false);
}

size_t transport_queued(const struct transport *t, uint32_t conn)
{
    const struct conn *c = transport_conn_find(t, conn);

    return c != NULL ? c->queued : 0;
}

void transport_close(struct transport *t, uint32_t conn)
{
    struct conn *c = transport_conn_find(t, conn);

    if (c != NULL)
        conn_close_graceful(c, 0, "closed");
}

void transport_pause(struct transport *t, uint32_t conn)
{
    struct conn *c = transport_conn_find(t, conn);

    if (c != NULL)
        conn_pause(c);
}

void transport_resume(struct transport *t, uint32_t conn)
{
    struct conn *c = transport_conn_find(t, conn);

    if (c != NULL)
        conn_resume(c);
}

void transport_set_authed(struct transport *t, uint32_t conn)
{
    struct conn *c = transport_conn_find(t, conn);

    if (c != NULL)
        conn_set_authed(c);
}

const char *transport_peer_addr(const struct transport *t, uint32_t conn)
{
    const struct conn *c = transport_conn_find(t, conn);

    return c != NULL ? c->addr : "";
}

void transport_stats(const struct transport *t, struct transport_stats *s)
{
    *s = t->st;
}

/* ---- shutdown ---- */

void transport_stop_accepting(struct transport *t)
{
    struct listener *l;

    t->stopped = true;
    while ((l = t->listeners) != NULL) {
        t->listeners = l->next;
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
    }
    while (t->dials != NULL)
        dial_remove(t->dials);
}

static void on_idle_closed(uv_handle_t *h)
{
    struct transport *t = h->data;

    t->handles--;
}

void transport_shutdown(struct transport *t)
{
    struct conn *c;
    unsigned b;

    transport_stop_accepting(t);
    if (t->shutting_down)
        return;
    t->shutting_down = true;
    for (b = 0; b < CONN_BUCKETS; b++)
        for (c = t->table[b]; c != NULL; c = c->hnext)
            conn_close_graceful(c, 0, "shutdown");
    if (t->drain_init)
        uv_close((uv_handle_t *)&t->drain_idle, on_idle_closed);
}

bool transport_closed(const struct transport *t)
{
    return t == NULL || t->handles == 0;
}

void transport_free(struct transport *t)
{
    if (t == NULL)
        return;
    if (t->handles != 0) {  /* libuv still holds pointers into t: leaking beats a crash */
        log_error("TRANSPORT-FREE-BUSY", "transport_free with %" PRIu64
                  " handles open; call transport_shutdown and run the loop first", t->handles);
        return;
    }
    free(t->hosts);
    free(t->scratch);
    free(t);
}
