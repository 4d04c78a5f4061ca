/* daemon/node_net.c: the node's connections: transport callbacks into the
 * engine, paced adapter streaming, the overlay (whom to dial), key strikes.
 *
 * Streaming: a SEND_ADAPTER becomes a send_job on its connection (FIFO, one
 * adapter after another): MANIFEST, then CHUNKs, each chunk read with
 * pread into a chunk buffer and handed to transport_send_ref with the
 * CHUNK head (the data is not copied again; the buffer comes back when its
 * write is done). Buffers are reused while any send job lives (at most
 * NODE_SEND_CHUNKS kept) and unmapped when the last one ends, so an idle
 * node holds none. Not a mapping of the stored file per chunk: on this
 * kind of host (a VM whose page-table updates are slow) mapping, reading
 * and unmapping 1 MiB moves 1.1-1.3 GB/s into a loopback socket, pread
 * into a reused buffer 2.2-2.5 GB/s (docs/design-notes.md). At most
 * NODE_SEND_CHUNKS chunk frames are queued per connection, so an adapter
 * of any size costs about NODE_SEND_CHUNKS x chunk_size of memory per
 * connection. Pacing: the transport calls
 * on_writable when its queue falls to half of queue_max after being above
 * it; when NODE_SEND_CHUNKS frames fill more than half of queue_max (1 MiB
 * chunks, 4 MiB queue) that drives the stream. Otherwise (small chunks) the
 * queue never crosses half, and a PUMP_MS timer refills it while some send
 * waits.
 *
 * Crossing dials: when both ends dial at once, the engine keeps the
 * connection dialled by the smaller key id and closes the other
 * (proto/gossip.c duplicate_loser), then the peer WANTs again on the
 * survivor. A stream started on the doomed connection in between is wasted
 * (on loopback tens of MB reach the socket buffers in that time, counted in
 * bytes_out but never read, and the receiver rewrites what it got). So an
 * adapter is not started on a connection dialled by the larger key id while
 * the other end is expected to dial (an overlay neighbour, or a dial of ours
 * to that key is pending), for at most NODE_DUP_HOLD_MS after its handshake:
 * the pump timer retries meanwhile.
 *
 * Overlay: see overlay.h. The node dials its neighbours with larger key
 * ids, keeps the --join dials until one neighbour is authenticated, and
 * closes the connections it dialled to non-neighbours NODE_GRACE_ROUNDS
 * rounds after their handshake (time for DIGEST/PEERS to teach the newcomer
 * the membership); inbound ones are the dialler's to close.
 * A member whose dial has failed for NODE_GONE_ROUNDS rounds is left out of
 * the overlay (still redialled with backoff, as a probe) until it
 * authenticates again. */
#include "node_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "fdio.h"
#include "hex.h"
#include "log.h"
#include "msg.h"

#define PUMP_MS 2u
#define STRIKE_WINDOW_MS 3600000u   /* PROTOCOL.md 4.2: strikes within one hour */

/* ---- peers ---- */

struct peer *node_peer_find(struct node *n, uint32_t conn)
{
    for (size_t i = 0; i < n->n_peers; i++)
        if (n->peers[i]->conn == conn)
            return n->peers[i];
    return NULL;
}

/* ---- CHUNK buffers ---- */

struct chunk_buf {
    struct node *n;
    struct chunk_buf *next;        /* in n->chunk_free */
    size_t map;                    /* bytes mapped, this header included */
    size_t cap;                    /* bytes of data */
    _Alignas(64) uint8_t data[];
};

/* A buffer of at least cap bytes: a kept one, else a new anonymous mapping
 * (its own, so that unmapping it returns the memory at once). */
static struct chunk_buf *chunk_get(struct node *n, size_t cap)
{
    struct chunk_buf *b = n->chunk_free;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), map;
    void *m;

    if (b != NULL && b->cap >= cap) {
        n->chunk_free = b->next;
        n->n_chunk_free--;
        return b;
    }
    map = (sizeof(*b) + cap + page - 1) / page * page;
    if ((m = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED)
        return NULL;
    n->m.send_buffers++;
    b = m;
    b->n = n;
    b->map = map;
    b->cap = map - sizeof(*b);
    return b;
}

/* transport_send_ref's release: keep the buffer while sends go on. */
static void chunk_put(void *base, size_t len)
{
    struct chunk_buf *b = base;
    struct node *n = b->n;

    (void)len;
    if (n->n_sends > 0 && n->n_chunk_free < NODE_SEND_CHUNKS) {
        b->next = n->chunk_free;
        n->chunk_free = b;
        n->n_chunk_free++;
        return;
    }
    n->m.send_buffers--;
    munmap(b, b->map);
}

static void chunk_drain(struct node *n)
{
    struct chunk_buf *b;

    while ((b = n->chunk_free) != NULL) {
        n->chunk_free = b->next;
        n->m.send_buffers--;
        munmap(b, b->map);
    }
    n->n_chunk_free = 0;
}

static void send_job_free(struct node *n, struct send_job *sj)
{
    if (sj->fd >= 0)
        close(sj->fd);
    free(sj);
    if (--n->n_sends == 0)
        chunk_drain(n);   /* buffers still being written are unmapped when released */
}

static void peer_free(struct node *n, struct peer *p)
{
    while (p->sends != NULL) {
        struct send_job *sj = p->sends;
        p->sends = sj->next;
        send_job_free(n, sj);
    }
    free(p);
}

void node_peers_free(struct node *n)
{
    for (size_t i = 0; i < n->n_peers; i++)
        peer_free(n, n->peers[i]);
    free(n->peers);
    n->peers = NULL;
    n->n_peers = 0;
}

static struct dialed *dial_find(struct node *n, const char *addr)
{
    for (size_t i = 0; i < n->n_dials; i++)
        if (strcmp(n->dials[i].addr, addr) == 0)
            return &n->dials[i];
    return NULL;
}

/* ---- transport callbacks ---- */

static void on_up(void *ctx, uint32_t conn, bool outbound, const char *addr, const char *dial_addr)
{
    struct node *n = ctx;
    struct gossip_event ev = { .type = GOSSIP_EV_PEER_UP, .conn = conn, .outbound = outbound };
    struct peer *p = calloc(1, sizeof(*p)), **v;
    struct dialed *dl;

    if (p == NULL || (v = realloc(n->peers, (n->n_peers + 1) * sizeof(*v))) == NULL ||
        RAND_bytes(ev.nonce, MSG_NONCE_LEN) != 1) {
        free(p);
        log_error("PEER-SETUP", "conn=%" PRIu32 " addr=%s: out of memory or no randomness", conn, addr);
        transport_close(n->t, conn);
        return;
    }
    n->peers = v;
    v[n->n_peers++] = p;
    p->conn = conn;
    p->info.outbound = outbound;
    snprintf(p->info.addr, sizeof(p->info.addr), "%s", addr);
    snprintf(p->dial_addr, sizeof(p->dial_addr), "%s", dial_addr != NULL ? dial_addr : "");
    if (dial_addr != NULL && (dl = dial_find(n, dial_addr)) != NULL)
        dl->failing = false;
    if (n->stopping) {
        transport_close(n->t, conn);
        return;
    }
    node_feed(n, &ev);
}

static void on_frame(void *ctx, uint32_t conn, const uint8_t *body, size_t len)
{
    struct node *n = ctx;
    struct gossip_event ev = { .type = GOSSIP_EV_FRAME, .conn = conn };

    if (n->stopping || node_peer_find(n, conn) == NULL)
        return;
    ev.body = (struct msg_bytes){ body, len };
    node_feed(n, &ev);
}

static void on_down(void *ctx, uint32_t conn, int code, const char *why)
{
    struct node *n = ctx;
    struct gossip_event ev = { .type = GOSSIP_EV_PEER_DOWN, .conn = conn };
    struct peer *p = NULL;

    for (size_t i = 0; i < n->n_peers; i++)
        if (n->peers[i]->conn == conn) {
            p = n->peers[i];
            n->peers[i] = n->peers[--n->n_peers];
            break;
        }
    node_feed(n, &ev);
    if (p == NULL)
        return;
    if (p->authed) {
        log_info("PEER-DOWN", "peer=%.8s addr=%s conn=%" PRIu32 " sent_adapters=%" PRIu32
                 " sent_bytes=%" PRIu64 " %s", p->info.id, p->info.addr, conn, p->sent_adapters,
                 p->sent_bytes, why);
        node_audit_peer(n, p->info.id, p->info.addr, "down", why != NULL ? why : "");
        node_publish(n, false);
    }
    peer_free(n, p);
}

static void on_writable(void *ctx, uint32_t conn)
{
    struct node *n = ctx;
    struct peer *p = node_peer_find(n, conn);

    if (p != NULL)
        node_pump(n, p);
}

static void on_dial_failed(void *ctx, const char *dial_addr, const char *why)
{
    struct node *n = ctx;
    struct dialed *dl = dial_find(n, dial_addr);

    log_debug("DIAL-FAILED", "addr=%s: %s", dial_addr, why);
    if (dl != NULL && !dl->failing) {
        dl->failing = true;
        dl->fail_since = node_now(n);
    }
}

int node_transport_start(struct node *n, struct dmn_diag *d)
{
    const struct config *c = n->cfg;
    struct transport_opts o = { .handshake_ms = c->handshake_ms, .idle_ms = c->idle_ms,
                                .frame_ms = c->frame_ms, .queue_max = c->write_queue_bytes,
                                .max_conns = c->max_peers, .ban_strikes = c->ban_strikes,
                                .ban_ms = c->ban_ms };
    struct transport_cbs cb = { .ctx = n, .on_up = on_up, .on_frame = on_frame, .on_down = on_down,
                                .on_writable = on_writable, .on_dial_failed = on_dial_failed };
    int rc;

    if ((rc = transport_new(&n->t, n->loop, &o, &cb, d)) != 0)
        return rc;
    return transport_listen(n->t, c->listen != NULL ? c->listen : "127.0.0.1:0", n->listen,
                            sizeof(n->listen), d);
}

/* ---- paced adapter streaming ---- */

void node_send_adapter(struct node *n, const struct gossip_action *x)
{
    struct peer *p = node_peer_find(n, x->conn);
    struct send_job *sj;

    if (p == NULL || x->count == 0 || x->count > MSG_CHUNK_MAX || (sj = calloc(1, sizeof(*sj))) == NULL)
        return;
    memcpy(sj->id, x->id, MSG_ID_LEN);
    hex_encode(x->id, MSG_ID_LEN, sj->hex);
    snprintf(sj->domain, sizeof(sj->domain), "%s", x->domain);
    sj->off = x->off;
    sj->size = x->size;
    sj->chunk = x->count;
    sj->fd = -1;
    n->n_sends++;
    if (p->sends_tail != NULL)
        p->sends_tail->next = sj;
    else
        p->sends = sj;
    p->sends_tail = sj;
    node_pump(n, p);
}

/* MANIFEST (config and manifest bytes from the store), then open the file. */
static int send_start(struct node *n, struct peer *p, struct send_job *sj)
{
    struct msg m = { .type = MSG_MANIFEST };
    uint8_t *cfg = NULL, *man = NULL, *f = NULL;
    size_t cfg_n = 0, man_n = 0, fn = 0;
    struct stat stb;
    struct dmn_diag d = { 0 };
    int rc;

    if ((rc = store_read_meta(n->store, sj->hex, "adapter_config.json", &cfg, &cfg_n, &d)) != 0 ||
        (rc = store_read_meta(n->store, sj->hex, "plora.yml", &man, &man_n, &d)) != 0)
        goto out;
    memcpy(m.u.manifest.id, sj->id, MSG_ID_LEN);
    snprintf(m.u.manifest.domain, sizeof(m.u.manifest.domain), "%s", sj->domain);
    m.u.manifest.size = sj->size;
    m.u.manifest.config = (struct msg_bytes){ cfg, cfg_n };
    m.u.manifest.manifest = (struct msg_bytes){ man, man_n };
    if (msg_encode(&m, &f, &fn, NULL) != 0) {
        rc = dmn_fail(&d, DMN_E_ARG, "MANIFEST of %s could not be encoded", sj->hex);
        goto out;
    }
    if ((rc = sj->fd = store_open_adapter_fd(n->store, sj->hex, &d)) < 0)
        goto out;
    if (fstat(sj->fd, &stb) != 0) {
        rc = dmn_fail(&d, DMN_E_IO, "fstat of the stored file: %s", strerror(errno));
        goto out;
    }
    if ((uint64_t)stb.st_size != sj->size) {   /* a short read would be a fault of ours */
        rc = dmn_fail(&d, DMN_E_IO, "the stored file is %lld bytes, its size is %" PRIu64,
                      (long long)stb.st_size, sj->size);
        goto out;
    }
    rc = transport_send(n->t, p->conn, f, fn);
    f = NULL;   /* the transport's */
    p->sent_adapters++;
    log_debug("SEND-ADAPTER", "peer=%.8s conn=%" PRIu32 " id=%.16s from=%" PRIu64 " size=%" PRIu64,
              p->info.id, p->conn, sj->hex, sj->off, sj->size);
out:
    if (rc != 0)
        log_warn("SEND-ADAPTER-FAILED", "peer=%.8s id=%s: %s", p->info.id, sj->hex,
                 rc == DMN_E_RANGE ? "send queue full" : d.msg);
    free(cfg);
    free(man);
    free(f);
    return rc;
}

/* One CHUNK of len bytes at sj->off: read into a chunk buffer, handed with
 * the CHUNK head to transport_send_ref, which gives the buffer back
 * (chunk_put) once its write is done or cancelled. Returns
 * transport_send_ref's code, or -1 when the buffer, the read or the head
 * failed. */
static int send_one(struct node *n, struct peer *p, struct send_job *sj, size_t len)
{
    uint8_t head[MSG_CHUNK_HEAD_MAX];
    struct chunk_buf *b;
    size_t hn;
    int err;

    if (msg_chunk_head(head, sizeof(head), &hn, sj->id, sj->off, len) != 0)
        return -1;
    if ((b = chunk_get(n, len)) == NULL) {
        log_warn("SEND-ADAPTER-FAILED", "id=%s off=%" PRIu64 ": no memory for a %zu-byte chunk",
                 sj->hex, sj->off, len);
        return -1;
    }
    if ((err = fdio_pread_full(sj->fd, b->data, len, sj->off)) != 0) {   /* EIO: shorter than at send_start */
        log_warn("SEND-ADAPTER-FAILED", "id=%s off=%" PRIu64 ": read of %zu bytes from the store: %s",
                 sj->hex, sj->off, len, strerror(err));
        chunk_put(b, 0);
        return -1;
    }
    return transport_send_ref(n->t, p->conn, head, hn, b->data, len, chunk_put, b, b->map);
}

/* Queue CHUNKs of the head job while fewer than NODE_SEND_CHUNKS frames are
 * queued; returns 1 when blocked, 0 when the job is finished, -1 when it
 * failed (connection gone: on_down frees the rest). */
static int send_chunks(struct node *n, struct peer *p, struct send_job *sj)
{
    size_t frame = (size_t)sj->chunk + MSG_CHUNK_HEAD_MAX, len;
    int rc;

    while (sj->off < sj->size) {
        if (transport_queued(n->t, p->conn) + frame > NODE_SEND_CHUNKS * frame)
            return 1;
        len = sj->size - sj->off < sj->chunk ? (size_t)(sj->size - sj->off) : sj->chunk;
        if ((rc = send_one(n, p, sj, len)) == DMN_E_RANGE)
            return 1;   /* the chunk is re-read on the next pump */
        if (rc != 0)
            return -1;
        sj->off += len;
        p->sent_bytes += len;
    }
    return 0;
}

static void pump_timer_cb(uv_timer_t *h);

/* Blocked: on_writable follows if the queue is above half of queue_max,
 * else run the pump timer. */
static void pump_wait(struct node *n, struct peer *p)
{
    if (transport_queued(n->t, p->conn) > n->cfg->write_queue_bytes / 2 || n->pumping)
        return;
    if (uv_timer_start(&n->pump_timer, pump_timer_cb, PUMP_MS, PUMP_MS) == 0)
        n->pumping = true;
}

/* A dial of ours to p's key that has not come up (yet): p is not it. */
static bool dial_pending(const struct node *n, const struct peer *p)
{
    for (size_t i = 0; i < n->n_dials; i++)
        if (n->dials[i].has_key && memcmp(n->dials[i].key, p->key, MSG_ID_LEN) == 0 &&
            strcmp(n->dials[i].addr, p->dial_addr) != 0)
            return true;
    return false;
}

/* true while p may still be replaced by a crossing dial (see the top). */
static bool dup_hold(const struct node *n, const struct peer *p)
{
    bool small_dialled = p->info.outbound == (memcmp(n->self, p->key, MSG_ID_LEN) < 0);

    if (!p->authed || small_dialled || node_now(n) - p->authed_ms >= NODE_DUP_HOLD_MS)
        return false;
    return overlay_is_neighbour(&n->ov, p->key) || dial_pending(n, p);
}

void node_pump(struct node *n, struct peer *p)
{
    struct send_job *sj;
    int rc;

    while ((sj = p->sends) != NULL) {
        if (sj->fd < 0 && dup_hold(n, p)) {
            if (!n->pumping && uv_timer_start(&n->pump_timer, pump_timer_cb, PUMP_MS, PUMP_MS) == 0)
                n->pumping = true;
            return;
        }
        if (sj->fd < 0 && send_start(n, p, sj) != 0)
            rc = -1;
        else if ((rc = send_chunks(n, p, sj)) == 1) {
            pump_wait(n, p);
            return;
        }
        if (rc == 0)
            log_debug("SEND-ADAPTER-DONE", "peer=%.8s conn=%" PRIu32 " id=%.16s bytes=%" PRIu64,
                      p->info.id, p->conn, sj->hex, sj->size);
        p->sends = sj->next;
        if (p->sends == NULL)
            p->sends_tail = NULL;
        send_job_free(n, sj);
    }
}

/* Every PUMP_MS while some send waits without an on_writable to come. */
static void pump_timer_cb(uv_timer_t *h)
{
    struct node *n = h->data;
    bool waiting = false;

    for (size_t i = 0; i < n->n_peers; i++) {
        if (n->peers[i]->sends != NULL)
            node_pump(n, n->peers[i]);
        waiting = waiting || (n->peers[i]->sends != NULL &&
                              (n->peers[i]->sends->fd < 0 ||
                               transport_queued(n->t, n->peers[i]->conn) <=
                                   n->cfg->write_queue_bytes / 2));
    }
    if (!waiting) {
        uv_timer_stop(&n->pump_timer);
        n->pumping = false;
    }
}

/* ---- key strikes (PROTOCOL.md 4.2) ---- */

static struct key_strikes *strikes_of(struct node *n, const uint8_t key[MSG_ID_LEN], bool create)
{
    struct key_strikes *old = &n->bans[0];

    for (size_t i = 0; i < NODE_KEY_BANS; i++) {
        if (n->bans[i].first_ms != 0 && memcmp(n->bans[i].key, key, MSG_ID_LEN) == 0)
            return &n->bans[i];
        if (n->bans[i].first_ms < old->first_ms && n->bans[i].banned_until <= node_now(n))
            old = &n->bans[i];
    }
    if (!create)
        return NULL;
    memset(old, 0, sizeof(*old));   /* the least recent unbanned slot */
    memcpy(old->key, key, MSG_ID_LEN);
    return old;
}

bool node_key_banned(struct node *n, const uint8_t key[MSG_ID_LEN])
{
    struct key_strikes *k = strikes_of(n, key, false);

    return k != NULL && k->banned_until > node_now(n);
}

/* One strike against key; an authentication failure counts as the ban
 * threshold. Returns true when this strike banned it. */
bool node_key_strike(struct node *n, const uint8_t key[MSG_ID_LEN], int code)
{
    struct key_strikes *k = strikes_of(n, key, true);
    uint32_t limit = n->cfg->ban_strikes ? n->cfg->ban_strikes : 3;
    uint64_t now = node_now(n);

    if (k->first_ms == 0 || now - k->first_ms > STRIKE_WINDOW_MS) {
        k->first_ms = now ? now : 1;
        k->strikes = 0;
    }
    k->strikes = code == PROTO_E_AUTH ? limit : k->strikes + 1;
    if (k->strikes < limit || k->banned_until > now)
        return false;
    k->banned_until = now + (n->cfg->ban_ms ? n->cfg->ban_ms : 300000u);
    n->key_bans++;
    return true;
}

/* ---- overlay ---- */

static bool is_gone(const struct node *n, const uint8_t key[MSG_ID_LEN])
{
    for (size_t i = 0; i < n->n_gone; i++)
        if (memcmp(n->gone[i], key, MSG_ID_LEN) == 0)
            return true;
    return false;
}

static struct dialed *dial_add(struct node *n, const char *addr)
{
    struct dialed *v, *dl = dial_find(n, addr);
    struct dmn_diag d = { 0 };

    if (dl != NULL)
        return dl;
    if ((v = realloc(n->dials, (n->n_dials + 1) * sizeof(*v))) == NULL)
        return NULL;
    n->dials = v;
    if (transport_dial(n->t, addr, &d) != 0) {
        log_warn("DIAL-REFUSED", "addr=%s: %s", addr, d.msg);
        return NULL;
    }
    dl = &v[n->n_dials++];
    memset(dl, 0, sizeof(*dl));
    snprintf(dl->addr, sizeof(dl->addr), "%s", addr);
    return dl;
}

static void dial_drop(struct node *n, size_t i)
{
    transport_undial(n->t, n->dials[i].addr);
    n->dials[i] = n->dials[--n->n_dials];
}

void node_dial_joins(struct node *n)
{
    for (size_t i = 0; i < n->cfg->n_join; i++) {
        struct dialed *dl;
        if (strcmp(n->cfg->join[i], n->listen) == 0) {   /* our own HELLO would strike our host */
            log_warn("JOIN-SELF", "--join %s is this node's own address: skipped", n->cfg->join[i]);
            continue;
        }
        dl = dial_add(n, n->cfg->join[i]);
        if (dl != NULL)
            dl->join = true;
    }
}

/* Dial the neighbours we are to dial and the gone members (probes); drop
 * every other dial but the --join ones. */
static void dials_sync(struct node *n, const struct msg_peer *mem, size_t cnt)
{
    for (size_t i = 0; i < n->n_dials; i++)
        n->dials[i].keep = false;
    for (size_t i = 0; i < cnt; i++) {
        bool want = is_gone(n, mem[i].id) ||
                    (overlay_is_neighbour(&n->ov, mem[i].id) && overlay_dials(n->self, mem[i].id) &&
                     !node_key_banned(n, mem[i].id));
        struct dialed *dl = want ? dial_add(n, mem[i].addr) : NULL;
        if (dl == NULL)
            continue;
        dl->keep = true;
        dl->has_key = true;
        memcpy(dl->key, mem[i].id, MSG_ID_LEN);
    }
    for (size_t i = n->n_dials; i-- > 0;)
        if (!n->dials[i].keep && !n->dials[i].join)
            dial_drop(n, i);
}

static struct overlay_params overlay_params_of(const struct config *c)
{
    static const enum graph_topology topo[] = { [CONFIG_TOPO_ER] = GRAPH_ER,
                                                [CONFIG_TOPO_WS] = GRAPH_WS,
                                                [CONFIG_TOPO_BA] = GRAPH_BA };

    return (struct overlay_params){ .topology = topo[c->topology], .p = c->p, .beta = c->beta,
                                    .k = c->k, .m = c->m, .seed = c->seed };
}

void node_overlay_rebuild(struct node *n)
{
    struct overlay_params op = overlay_params_of(n->cfg);
    size_t cnt = gossip_members(n->g, NULL, 0), k = 0;
    struct msg_peer *mem = calloc(cnt ? cnt : 1, sizeof(*mem));
    uint8_t (*ids)[OVERLAY_ID_LEN] = calloc(cnt ? cnt : 1, OVERLAY_ID_LEN);
    struct dmn_diag d = { 0 };
    struct overlay o;

    if (mem == NULL || ids == NULL) {
        log_error("NOMEM", "overlay rebuild over %zu members", cnt);
        goto out;
    }
    cnt = gossip_members(n->g, mem, cnt);
    for (size_t i = 0; i < cnt; i++)
        if (!is_gone(n, mem[i].id))
            memcpy(ids[k++], mem[i].id, OVERLAY_ID_LEN);
    if (overlay_build(&o, &op, (const uint8_t (*)[OVERLAY_ID_LEN])ids, k, n->self, &d) != 0) {
        log_error("OVERLAY-FAILED", "%s", d.msg);
        goto out;
    }
    overlay_clear(&n->ov);
    n->ov = o;
    n->m.members = cnt;
    log_info("OVERLAY", "n=%zu degree=%zu gone=%zu edges=%zu hash=%016" PRIx64, o.n, o.n_nbrs,
             n->n_gone, o.edges, o.edges_hash);
    dials_sync(n, mem, cnt);
    node_publish(n, false);
out:
    free(mem);
    free(ids);
}

void node_peer_authed(struct node *n, uint32_t conn, const uint8_t key[MSG_ID_LEN])
{
    struct peer *p = node_peer_find(n, conn);
    struct dialed *dl;

    if (p == NULL)
        return;
    p->authed = true;
    memcpy(p->key, key, MSG_ID_LEN);
    hex_encode(key, MSG_ID_LEN, p->info.id);
    p->authed_round = gossip_round(n->g);
    p->authed_ms = node_now(n);
    if (p->dial_addr[0] != '\0' && (dl = dial_find(n, p->dial_addr)) != NULL) {
        dl->failing = false;
        dl->has_key = true;
        memcpy(dl->key, key, MSG_ID_LEN);
    }
    log_info("PEER-UP", "peer=%.8s addr=%s outbound=%d", p->info.id, p->info.addr, p->info.outbound);
    node_audit_peer(n, p->info.id, p->info.addr, "up", "");
    for (size_t i = 0; i < n->n_gone; i++)
        if (memcmp(n->gone[i], key, MSG_ID_LEN) == 0) {
            memcpy(n->gone[i], n->gone[--n->n_gone], MSG_ID_LEN);
            log_info("MEMBER-BACK", "peer=%.8s", p->info.id);
            node_overlay_rebuild(n);
            break;
        }
    node_publish(n, false);
}

static bool add_gone(struct node *n, const uint8_t key[MSG_ID_LEN])
{
    msg_id *v;

    if (is_gone(n, key) || (v = realloc(n->gone, (n->n_gone + 1) * sizeof(*v))) == NULL)
        return false;
    n->gone = v;
    memcpy(v[n->n_gone++], key, MSG_ID_LEN);
    return true;
}

/* Dials failing for NODE_GONE_ROUNDS rounds: those members are gone. */
static bool mark_gone(struct node *n)
{
    uint64_t now = node_now(n), limit = (uint64_t)NODE_GONE_ROUNDS * n->cfg->round_ms;
    bool changed = false;

    for (size_t i = 0; i < n->n_dials; i++) {
        struct dialed *dl = &n->dials[i];
        if (!dl->has_key || !dl->failing || now - dl->fail_since <= limit || !add_gone(n, dl->key))
            continue;
        log_info("MEMBER-GONE", "addr=%s: dials failing for %" PRIu64 " ms", dl->addr,
                 now - dl->fail_since);
        changed = true;
    }
    return changed;
}

static void close_polite(struct node *n, struct peer *p, const char *why)
{
    struct msg bye = { .type = MSG_BYE };
    uint8_t *f = NULL;
    size_t fn = 0;

    snprintf(bye.u.bye.text, sizeof(bye.u.bye.text), "%s", why);
    if (msg_encode(&bye, &f, &fn, NULL) == 0)
        transport_send(n->t, p->conn, f, fn);
    transport_close(n->t, p->conn);
}

/* A node with no authenticated peer for NODE_LONELY_ROUNDS rounds may hold
 * a stale membership in which every true neighbour waits for it to dial
 * (they sort after it) while it waits for someone else: it dials its --join
 * seeds and every member it knows, whatever the ids, until a neighbour is up
 * again (these dials are dropped like --join ones). Whoever answers sends
 * PEERS, and the overlay rebuild follows. */
static void rescue_if_lonely(struct node *n)
{
    size_t authed = 0, cnt;
    struct msg_peer *mem;

    for (size_t i = 0; i < n->n_peers; i++)
        authed += n->peers[i]->authed;
    if (authed > 0) {
        n->lonely_rounds = 0;
        return;
    }
    if (++n->lonely_rounds != NODE_LONELY_ROUNDS)
        return;
    cnt = gossip_members(n->g, NULL, 0);
    log_info("LONELY", "no peer for %u rounds: dialling %zu join seed(s) and %zu member(s)",
             NODE_LONELY_ROUNDS, n->cfg->n_join, cnt);
    node_dial_joins(n);
    if ((mem = calloc(cnt ? cnt : 1, sizeof(*mem))) == NULL)
        return;
    cnt = gossip_members(n->g, mem, cnt);
    for (size_t i = 0; i < cnt; i++) {
        struct dialed *dl;
        if (memcmp(mem[i].id, n->self, MSG_ID_LEN) == 0 || node_key_banned(n, mem[i].id) ||
            (dl = dial_add(n, mem[i].addr)) == NULL)
            continue;
        dl->join = true;
        dl->has_key = true;
        memcpy(dl->key, mem[i].id, MSG_ID_LEN);
    }
    free(mem);
    n->lonely_rounds = 0;   /* try again after as many rounds if still alone */
}

/* Once per round: gone members, a lonely node's rescue dials, then (with a
 * neighbour up) drop the join dials and close the connections we dialled
 * to non-neighbours past their grace. A connection the peer dialled stays:
 * by the peer's view it is an edge, and the peer closes it when its view
 * says otherwise. Views differ while gone sets do (each node learns "gone"
 * from its own failed dials, and the gone set shapes the whole generated
 * overlay); when both ends closed what they did not see as an edge, two
 * nodes with different views closed and redialled each other every few
 * hundred ms for as long as the views differed. */
void node_overlay_round(struct node *n)
{
    uint64_t round = gossip_round(n->g);
    size_t up = 0;

    if (mark_gone(n))
        node_overlay_rebuild(n);
    rescue_if_lonely(n);
    for (size_t i = 0; i < n->n_peers; i++)
        up += n->peers[i]->authed && overlay_is_neighbour(&n->ov, n->peers[i]->key);
    if (up == 0)
        return;
    for (size_t i = n->n_dials; i-- > 0;)
        if (n->dials[i].join && !n->dials[i].keep)
            dial_drop(n, i);
    for (size_t i = 0; i < n->n_peers; i++) {
        struct peer *p = n->peers[i];
        if (p->authed && p->info.outbound && !overlay_is_neighbour(&n->ov, p->key) &&
            round >= p->authed_round + NODE_GRACE_ROUNDS && !p->sends)
            close_polite(n, p, "not an overlay neighbour");
    }
}
