/* proto/gossip.c: the sans-I/O gossip engine (see gossip.h, PROTOCOL.md 4, 6).
 *
 * State: connections (handshake progress, peer key), adapters (what we hold,
 * what we fetch and from whom, gate verdict, votes), and the membership list.
 * Tables are small arrays searched linearly: a node gossips with a handful of
 * overlay neighbours and holds a handful of adapters; membership is sorted
 * (binary search) because it can hold thousands.
 *
 * Invariants:
 * - an adapter is fetched from at most one connection (fetching && src);
 * - `stored` only grows by in-order CHUNKs from that source, and only a
 *   GOSSIP_EV_ADAPTER_VERIFIED ok moves an adapter to HELD;
 * - votes are pulled only for held adapters, at most one pull per adapter
 *   a round, never from a connection we fetch adapter bytes from, and the
 *   pull lists the votes we hold (WANT.vh) so that only missing ones come;
 * - a connection sends nothing after HELLO before HELLO_ACK, and nothing of
 *   the authenticated set before it is AUTHED (verified AND our ACK sent).
 */
#include "gossip.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"

#define GOSSIP_ADS_MAX 65536u   /* adapter records (peers can name ids we never fetch) */

/* A WANT.vh entry lists every vote we hold for one adapter. */
_Static_assert(GOSSIP_VOTES_MAX <= MSG_VHAVE_MAX, "WANT.vh cannot list GOSSIP_VOTES_MAX votes");

enum cstate { C_HELLO_WAIT, C_ACK_WAIT, C_VERIFYING, C_AUTHED, C_CLOSING };

struct conn {
    uint32_t id;
    enum cstate st;
    bool outbound, verified, ack_sent, digest_sent;
    uint64_t deadline;                /* handshake, ms */
    uint64_t digest_round;
    uint8_t my_nonce[MSG_NONCE_LEN], peer_nonce[MSG_NONCE_LEN];
    msg_id peer;
    uint8_t *pk;                      /* peer's SPKI DER, owned */
    size_t pk_len;
    char addr[MSG_ADDR_MAX + 1];
};

struct vote {
    msg_id by;
    bool accept;
    uint8_t *body, *sig;              /* owned copies, re-sent on WANT.vids */
    size_t body_n, sig_n;
};

struct ad {
    msg_id id;
    char domain[MSG_DOMAIN_MAX + 1];
    enum gossip_ad_state st;
    uint64_t size;                    /* 0 = not yet known (OFFER only) */
    uint64_t stored;
    bool fetching, manifest_seen;
    bool resumed;                     /* this fetch continues bytes stored earlier (another
                                         source, or before a restart): a bad hash then
                                         proves nothing about this source */
    uint32_t src;                     /* conn we fetch from, when fetching */
    msg_id src_peer;                  /* its key: strike target on a bad hash */
    uint32_t verify_src;
    uint64_t stall_at;
    int gate;                         /* 0 unknown, 1 accept, -1 reject */
    struct vote *votes;
    size_t n_votes;
    uint64_t vset;                    /* sum of msg_vote_term over votes (DIGEST.vs) */
    bool vpull;                       /* a WANT for its votes is out to vpull_conn, sent in
                                         round vpull_round: no second one that round */
    uint32_t vpull_conn;
    uint64_t vpull_round;
};

struct gossip {
    struct gossip_config cfg;
    uint8_t *pk;
    char addr[MSG_ADDR_MAX + 1];
    uint64_t round, next_round;
    struct conn **conns;
    size_t n_conns;
    struct ad *ads;
    size_t n_ads, cap_ads;
    struct msg_peer *members;         /* sorted by id */
    size_t n_members, cap_members;
    msg_id mh;                        /* membership hash */
};

/* ---- action list ---- */

static struct gossip_action *push(struct gossip_actions *a, enum gossip_action_type t,
                                  uint32_t conn)
{
    struct gossip_action *x;

    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        struct gossip_action *v = realloc(a->v, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        a->v = v;
        a->cap = cap;
    }
    x = &a->v[a->n++];
    memset(x, 0, sizeof(*x));
    x->type = t;
    x->conn = conn;
    return x;
}

void gossip_actions_reset(struct gossip_actions *a)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].type == GOSSIP_ACT_SEND)
            free((void *)a->v[i].frame.p);
    a->n = 0;
}

void gossip_actions_free(struct gossip_actions *a)
{
    gossip_actions_reset(a);
    free(a->v);
    a->v = NULL;
    a->cap = 0;
}

/* Encode m and queue it to conn; the list owns the frame. */
static int send_msg(struct gossip_actions *a, uint32_t conn, const struct msg *m)
{
    struct gossip_action *x;
    uint8_t *f;
    size_t n;
    int rc;

    if ((rc = msg_encode(m, &f, &n, NULL)) != 0)
        return rc;
    if ((x = push(a, GOSSIP_ACT_SEND, conn)) == NULL) {
        free(f);
        return PROTO_E_NOMEM;
    }
    x->frame = (struct msg_bytes){ f, n };
    return 0;
}

/* ---- lookups ---- */

static struct conn *conn_find(const struct gossip *g, uint32_t id)
{
    for (size_t i = 0; i < g->n_conns; i++)
        if (g->conns[i]->id == id)
            return g->conns[i];
    return NULL;
}

static struct ad *ad_find(const struct gossip *g, const uint8_t *id)
{
    for (size_t i = 0; i < g->n_ads; i++)
        if (memcmp(g->ads[i].id, id, MSG_ID_LEN) == 0)
            return &g->ads[i];
    return NULL;
}

/* Find or add a PARTIAL record; NULL when the table is full or on NOMEM. */
static struct ad *ad_get(struct gossip *g, const uint8_t *id)
{
    struct ad *a = ad_find(g, id);

    if (a != NULL || g->n_ads >= GOSSIP_ADS_MAX)
        return a;
    if (g->n_ads == g->cap_ads) {
        size_t cap = g->cap_ads ? g->cap_ads * 2 : 8;
        struct ad *v = realloc(g->ads, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        g->ads = v;
        g->cap_ads = cap;
    }
    a = &g->ads[g->n_ads++];
    memset(a, 0, sizeof(*a));
    memcpy(a->id, id, MSG_ID_LEN);
    a->st = GOSSIP_AD_PARTIAL;
    return a;
}

/* ---- membership ---- */

static void members_hash(struct gossip *g)
{
    struct sha256_ctx *c = NULL;

    memset(g->mh, 0, MSG_ID_LEN);
    if (sha256_new(&c) != 0)
        return;   /* all-zero hash: peers send PEERS, which is harmless */
    for (size_t i = 0; i < g->n_members; i++) {
        sha256_update(c, g->members[i].id, MSG_ID_LEN);
        sha256_update(c, g->members[i].addr, strlen(g->members[i].addr) + 1);   /* NUL ends */
    }
    sha256_final(c, g->mh);
    sha256_free(c);
}

/* Add or (authoritative: from the peer's own HELLO) update a member.
 * *changed is set when the list changed. Returns 0 or PROTO_E_NOMEM. */
static int member_put(struct gossip *g, const uint8_t *id, const char *addr, bool authoritative,
                      bool *changed)
{
    size_t lo = 0, hi = g->n_members;

    if (addr[0] == '\0')
        return 0;   /* not listening: not a member anyone can dial */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(g->members[mid].id, id, MSG_ID_LEN);
        if (c == 0) {
            if (authoritative && strcmp(g->members[mid].addr, addr) != 0) {
                snprintf(g->members[mid].addr, sizeof(g->members[mid].addr), "%s", addr);
                *changed = true;
            }
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (g->n_members == g->cap_members) {
        size_t cap = g->cap_members ? g->cap_members * 2 : 16;
        struct msg_peer *v = realloc(g->members, cap * sizeof(*v));
        if (v == NULL)
            return PROTO_E_NOMEM;
        g->members = v;
        g->cap_members = cap;
    }
    memmove(&g->members[lo + 1], &g->members[lo], (g->n_members - lo) * sizeof(*g->members));
    memcpy(g->members[lo].id, id, MSG_ID_LEN);
    snprintf(g->members[lo].addr, sizeof(g->members[lo].addr), "%s", addr);
    g->n_members++;
    *changed = true;
    return 0;
}

static int members_changed(struct gossip *g, struct gossip_actions *a)
{
    struct gossip_action *x;

    members_hash(g);
    if ((x = push(a, GOSSIP_ACT_MEMBERS, 0)) == NULL)
        return PROTO_E_NOMEM;
    x->count = (uint32_t)g->n_members;
    return 0;
}

/* ---- closing ---- */

/* Transfers and vote pulls from conn go back to the pool; the bytes
 * stored stay (resume from them) and the votes kept stay. */
static void release_transfers(struct gossip *g, uint32_t conn)
{
    for (size_t i = 0; i < g->n_ads; i++) {
        if (g->ads[i].fetching && g->ads[i].src == conn)
            g->ads[i].fetching = false;
        if (g->ads[i].vpull && g->ads[i].vpull_conn == conn)
            g->ads[i].vpull = false;
    }
}

/* BYE{code, text}, then CLOSE; the connection processes nothing more. */
static int close_conn(struct gossip *g, struct gossip_actions *a, struct conn *c, int code,
                      const char *text)
{
    struct msg m = { .type = MSG_BYE };
    struct gossip_action *x;
    size_t i;
    int rc;

    m.u.bye.code = code;
    for (i = 0; text[i] != '\0' && i < MSG_TEXT_MAX; i++)
        m.u.bye.text[i] = text[i] >= 0x20 && text[i] <= 0x7e ? text[i] : '?';
    c->st = C_CLOSING;
    release_transfers(g, c->id);
    if ((rc = send_msg(a, c->id, &m)) != 0)
        return rc;
    if ((x = push(a, GOSSIP_ACT_CLOSE, c->id)) == NULL)
        return PROTO_E_NOMEM;
    x->code = code;
    return 0;
}

/* A peer fault: BYE naming it, a strike against the peer, close. */
static int fault(struct gossip *g, struct gossip_actions *a, struct conn *c, int code,
                 const char *why)
{
    struct gossip_action *x;
    int rc;

    if ((x = push(a, GOSSIP_ACT_STRIKE, c->id)) == NULL)
        return PROTO_E_NOMEM;
    x->code = code;
    memcpy(x->by, c->peer, MSG_ID_LEN);
    if ((rc = close_conn(g, a, c, code, why)) != 0)
        return rc;
    return 0;
}

/* ---- digests and rounds ---- */

static int send_digest(struct gossip *g, struct gossip_actions *a, struct conn *c)
{
    struct msg m = { .type = MSG_DIGEST };
    struct msg_ad *list = NULL;
    uint64_t *vs = NULL;
    size_t n = 0;
    int rc;

    if (g->n_ads > 0 && ((list = calloc(g->n_ads, sizeof(*list))) == NULL ||
                         (vs = calloc(g->n_ads, sizeof(*vs))) == NULL)) {
        free(list);
        return PROTO_E_NOMEM;
    }
    for (size_t i = 0; i < g->n_ads && n < MSG_LIST_MAX; i++) {
        const struct ad *d = &g->ads[i];
        if (d->st < GOSSIP_AD_HELD)
            continue;
        memcpy(list[n].id, d->id, MSG_ID_LEN);
        memcpy(list[n].domain, d->domain, sizeof(d->domain));
        list[n].size = d->size;
        for (size_t k = 0; k < d->n_votes; k++)
            d->votes[k].accept ? list[n].acc++ : list[n].rej++;
        vs[n++] = d->vset;
    }
    m.u.digest.round = g->round;
    memcpy(m.u.digest.members, g->mh, MSG_ID_LEN);
    m.u.digest.n_ads = n;
    m.u.digest.ads = list;
    m.u.digest.vsets = vs;
    rc = send_msg(a, c->id, &m);
    free(list);
    free(vs);
    c->digest_sent = true;
    c->digest_round = g->round;
    return rc;
}

static int send_peers(struct gossip *g, struct gossip_actions *a, struct conn *c)
{
    struct msg m = { .type = MSG_PEERS };

    m.u.peers.n = g->n_members < MSG_LIST_MAX ? g->n_members : MSG_LIST_MAX;
    m.u.peers.peers = g->members;
    return send_msg(a, c->id, &m);
}

/* ---- handshake ---- */

static int on_peer_up(struct gossip *g, const struct gossip_event *ev, struct gossip_actions *a)
{
    struct msg m = { .type = MSG_HELLO };
    struct conn *c, **v;

    if (conn_find(g, ev->conn) != NULL)
        return PROTO_E_ARG;
    if (g->n_conns >= GOSSIP_CONNS_MAX)
        return push(a, GOSSIP_ACT_CLOSE, ev->conn) != NULL ? 0 : PROTO_E_NOMEM;
    if ((v = realloc(g->conns, (g->n_conns + 1) * sizeof(*v))) == NULL)
        return PROTO_E_NOMEM;
    g->conns = v;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return PROTO_E_NOMEM;
    g->conns[g->n_conns++] = c;
    c->id = ev->conn;
    c->outbound = ev->outbound;
    c->deadline = ev->now_ms + g->cfg.handshake_ms;
    memcpy(c->my_nonce, ev->nonce, MSG_NONCE_LEN);
    memcpy(m.u.hello.id, g->cfg.self, MSG_ID_LEN);
    memcpy(m.u.hello.nonce, c->my_nonce, MSG_NONCE_LEN);
    memcpy(m.u.hello.addr, g->addr, sizeof(g->addr));
    m.u.hello.pk = (struct msg_bytes){ g->pk, g->cfg.pk_len };
    return send_msg(a, c->id, &m);
}

static void conn_remove(struct gossip *g, uint32_t id)
{
    for (size_t i = 0; i < g->n_conns; i++) {
        if (g->conns[i]->id != id)
            continue;
        free(g->conns[i]->pk);
        free(g->conns[i]);
        g->conns[i] = g->conns[--g->n_conns];
        return;
    }
}

/* Two live connections with one peer: both ends keep the one dialled by the
 * smaller key id. Returns the connection to drop (c or the older one). */
static struct conn *duplicate_loser(const struct gossip *g, struct conn *c)
{
    bool we_dial = memcmp(g->cfg.self, c->peer, MSG_ID_LEN) < 0;

    for (size_t i = 0; i < g->n_conns; i++) {
        struct conn *o = g->conns[i];
        if (o == c || o->st == C_CLOSING || o->st == C_HELLO_WAIT ||
            memcmp(o->peer, c->peer, MSG_ID_LEN) != 0)
            continue;
        return c->outbound == we_dial && o->outbound != we_dial ? o : c;
    }
    return NULL;
}

static int on_hello(struct gossip *g, struct gossip_actions *a, struct conn *c,
                    const struct msg_hello *h)
{
    struct gossip_action *x;
    struct conn *loser;
    msg_id digest;

    if (sha256(h->pk.p, h->pk.n, digest) != 0 || memcmp(digest, h->id, MSG_ID_LEN) != 0)
        return fault(g, a, c, PROTO_E_AUTH, "HELLO id is not the sha256 of its pk");
    if (memcmp(h->id, g->cfg.self, MSG_ID_LEN) == 0)
        return fault(g, a, c, PROTO_E_AUTH, "HELLO carries our own key id");
    if ((c->pk = malloc(h->pk.n)) == NULL)
        return PROTO_E_NOMEM;
    memcpy(c->pk, h->pk.p, h->pk.n);
    c->pk_len = h->pk.n;
    memcpy(c->peer, h->id, MSG_ID_LEN);
    memcpy(c->peer_nonce, h->nonce, MSG_NONCE_LEN);
    memcpy(c->addr, h->addr, sizeof(c->addr));
    c->st = C_ACK_WAIT;
    if ((loser = duplicate_loser(g, c)) != NULL) {
        int rc = close_conn(g, a, loser, 0, "duplicate connection");
        if (rc != 0 || loser == c)
            return rc;
    }
    if ((x = push(a, GOSSIP_ACT_SIGN_AUTH, c->id)) == NULL)
        return PROTO_E_NOMEM;
    msg_auth_input(x->auth, c->peer_nonce, c->my_nonce, c->peer, g->cfg.self);
    memcpy(x->by, c->peer, MSG_ID_LEN);   /* lets the driver refuse a banned key */
    return 0;
}

static int on_hello_ack(struct gossip_actions *a, const struct gossip *g, struct conn *c,
                        const struct msg_hello_ack *h)
{
    struct gossip_action *x;

    if ((x = push(a, GOSSIP_ACT_VERIFY_AUTH, c->id)) == NULL)
        return PROTO_E_NOMEM;
    msg_auth_input(x->auth, c->my_nonce, c->peer_nonce, g->cfg.self, c->peer);
    x->pk = (struct msg_bytes){ c->pk, c->pk_len };
    x->sig = h->sig;   /* borrowed from the frame body */
    memcpy(x->by, c->peer, MSG_ID_LEN);
    c->st = C_VERIFYING;
    return 0;
}

/* Verified and our HELLO_ACK sent: from here the authenticated set flows. */
static int maybe_authed(struct gossip *g, struct gossip_actions *a, struct conn *c)
{
    struct gossip_action *x;
    bool changed = false;
    int rc;

    if (!c->verified || !c->ack_sent || c->st != C_VERIFYING)
        return 0;
    c->st = C_AUTHED;
    if ((x = push(a, GOSSIP_ACT_AUTHENTICATED, c->id)) == NULL)
        return PROTO_E_NOMEM;
    memcpy(x->by, c->peer, MSG_ID_LEN);
    if ((rc = member_put(g, c->peer, c->addr, true, &changed)) != 0 ||
        (changed && (rc = members_changed(g, a)) != 0))
        return rc;
    return send_digest(g, a, c);
}

static int on_auth_signed(struct gossip *g, const struct gossip_event *ev, struct gossip_actions *a)
{
    struct msg m = { .type = MSG_HELLO_ACK };
    struct conn *c = conn_find(g, ev->conn);
    int rc;

    if (c == NULL || c->ack_sent || (c->st != C_ACK_WAIT && c->st != C_VERIFYING))
        return 0;   /* closed meanwhile */
    m.u.hello_ack.sig = ev->sig;
    if ((rc = send_msg(a, c->id, &m)) != 0)
        return rc;
    c->ack_sent = true;
    return maybe_authed(g, a, c);
}

static int on_auth_verified(struct gossip *g, const struct gossip_event *ev,
                            struct gossip_actions *a)
{
    struct conn *c = conn_find(g, ev->conn);

    if (c == NULL || c->st != C_VERIFYING)
        return 0;
    if (!ev->ok)
        return fault(g, a, c, PROTO_E_AUTH, "HELLO_ACK signature does not verify");
    c->verified = true;
    return maybe_authed(g, a, c);
}

/* ---- adapters: pull, push, transfer ---- */

/* Start fetching a from c unless it is held, verifying or fetched elsewhere. */
static bool claim(struct gossip *g, struct ad *a, const struct conn *c, uint64_t now)
{
    if (a->st != GOSSIP_AD_PARTIAL || a->fetching)
        return false;
    a->fetching = true;
    a->manifest_seen = false;
    a->resumed = a->stored > 0;
    a->src = c->id;
    memcpy(a->src_peer, c->peer, MSG_ID_LEN);
    a->stall_at = now + g->cfg.stall_ms;
    return true;
}

struct want_list {
    struct msg m;
    struct msg_want_item *ids;
    msg_id *vids;
    struct msg_bytes *vh;             /* vh[i].p: malloc'd tags, owned */
};

static int want_init(struct want_list *w, size_t n)
{
    memset(w, 0, sizeof(*w));
    w->m.type = MSG_WANT;
    if (n == 0)
        return 0;
    w->ids = calloc(n, sizeof(*w->ids));
    w->vids = calloc(n, sizeof(*w->vids));
    w->vh = calloc(n, sizeof(*w->vh));
    w->m.u.want.ids = w->ids;
    w->m.u.want.vids = w->vids;
    return w->ids != NULL && w->vids != NULL && w->vh != NULL ? 0 : PROTO_E_NOMEM;
}

/* Send the WANT if it asks for anything (rc == 0), then free the list. */
static int want_send(struct want_list *w, struct gossip_actions *a, uint32_t conn, int rc)
{
    w->m.u.want.vhave = w->m.u.want.n_vids > 0 ? w->vh : NULL;
    if (rc == 0 && (w->m.u.want.n_ids > 0 || w->m.u.want.n_vids > 0))
        rc = send_msg(a, conn, &w->m);
    for (size_t i = 0; i < w->m.u.want.n_vids; i++)
        free((void *)w->vh[i].p);
    free(w->ids);
    free(w->vids);
    free(w->vh);
    return rc;
}

static int tag_cmp(const void *x, const void *y)
{
    return memcmp(x, y, MSG_VTAG_LEN);
}

/* The tags of the votes we hold for ad, sorted, without repeats (two keys
 * sharing a 15-byte prefix list one tag): *out malloc'd (NULL when none).
 * Returns 0 or PROTO_E_NOMEM. */
static int vote_tags(const struct ad *ad, struct msg_bytes *out)
{
    uint8_t *t;
    size_t k = 0;

    *out = (struct msg_bytes){ NULL, 0 };
    if (ad->n_votes == 0)
        return 0;
    if ((t = malloc(ad->n_votes * MSG_VTAG_LEN)) == NULL)
        return PROTO_E_NOMEM;
    for (size_t i = 0; i < ad->n_votes; i++)
        msg_vote_tag(t + i * MSG_VTAG_LEN, ad->votes[i].by, ad->votes[i].accept);
    qsort(t, ad->n_votes, MSG_VTAG_LEN, tag_cmp);
    for (size_t i = 0; i < ad->n_votes; i++)
        if (k == 0 || memcmp(t + (k - 1) * MSG_VTAG_LEN, t + i * MSG_VTAG_LEN, MSG_VTAG_LEN) != 0)
            memmove(t + k++ * MSG_VTAG_LEN, t + i * MSG_VTAG_LEN, MSG_VTAG_LEN);
    *out = (struct msg_bytes){ t, k * MSG_VTAG_LEN };
    return 0;
}

/* Pull votes when we hold the adapter (votes only matter to a holder: the
 * commit needs the file and our gate; pulling them with the bytes would
 * put a burst of VOTE frames behind every transfer), we have room, no pull
 * for this adapter went out this round (its answer may still be on the
 * way: asking a second peer would fetch the same votes twice), and the
 * peer holds a vote we lack: it advertises more votes, or as many in a
 * different set (known only from a DIGEST carrying `vs`: vset is NULL
 * otherwise, and equal counts then mean nothing to pull). */
static bool want_votes(const struct gossip *g, const struct ad *a, const struct msg_ad *e,
                       const uint64_t *vset)
{
    uint64_t theirs = (uint64_t)e->acc + e->rej;

    if (a->st < GOSSIP_AD_HELD || a->n_votes >= GOSSIP_VOTES_MAX ||
        (a->vpull && a->vpull_round == g->round))
        return false;
    return theirs > a->n_votes || (vset != NULL && theirs == a->n_votes && *vset != a->vset);
}

/* One DIGEST entry: pull the adapter if we lack it. */
static void digest_entry(struct gossip *g, struct conn *c, const struct msg_ad *e, uint64_t now,
                         struct want_list *w)
{
    struct ad *a = ad_get(g, e->id);

    if (a == NULL)
        return;   /* table full (or NOMEM): next round */
    if (a->size == 0 && a->st == GOSSIP_AD_PARTIAL) {
        a->size = e->size;
        memcpy(a->domain, e->domain, sizeof(a->domain));
    }
    if (a->size == e->size && a->stored < e->size && claim(g, a, c, now)) {
        struct msg_want_item *it = &w->ids[w->m.u.want.n_ids++];
        memcpy(it->id, a->id, MSG_ID_LEN);
        it->from = a->stored;
    }
}

/* Is an adapter being fetched from conn? */
static bool fetching_from(const struct gossip *g, uint32_t conn)
{
    for (size_t i = 0; i < g->n_ads; i++)
        if (g->ads[i].fetching && g->ads[i].src == conn)
            return true;
    return false;
}

/* One DIGEST entry: pull its votes if the peer holds some we lack.
 * Returns 0 or PROTO_E_NOMEM. */
static int digest_votes(struct gossip *g, struct conn *c, const struct msg_ad *e,
                        const uint64_t *vset, struct want_list *w)
{
    struct ad *a = ad_find(g, e->id);
    size_t k = w->m.u.want.n_vids;
    int rc;

    if (a == NULL || !want_votes(g, a, e, vset))
        return 0;
    if ((rc = vote_tags(a, &w->vh[k])) != 0)
        return rc;
    memcpy(w->vids[k], a->id, MSG_ID_LEN);
    w->m.u.want.n_vids++;
    a->vpull = true;
    a->vpull_conn = c->id;
    a->vpull_round = g->round;
    return 0;
}

static int on_digest(struct gossip *g, struct gossip_actions *a, struct conn *c,
                     const struct msg_digest *d, uint64_t now)
{
    struct want_list w;
    bool busy;
    int rc;

    if ((!c->digest_sent || c->digest_round != g->round) && (rc = send_digest(g, a, c)) != 0)
        return rc;
    if (memcmp(d->members, g->mh, MSG_ID_LEN) != 0 && g->n_members > 0 &&
        (rc = send_peers(g, a, c)) != 0)
        return rc;
    if ((rc = want_init(&w, d->n_ads)) != 0)
        return want_send(&w, a, c->id, rc);
    for (size_t i = 0; i < d->n_ads; i++)
        digest_entry(g, c, &d->ads[i], now, &w);
    /* Votes are pulled from a peer that sends us no adapter bytes: a
     * connection reset (TCP) loses whatever is in flight on it, and a
     * burst of VOTE frames next to CHUNKs multiplies the frames at risk. */
    busy = fetching_from(g, c->id);
    for (size_t i = 0; i < d->n_ads && rc == 0 && !busy; i++)
        rc = digest_votes(g, c, &d->ads[i], d->vsets != NULL ? &d->vsets[i] : NULL, &w);
    return want_send(&w, a, c->id, rc);
}

static int on_offer(struct gossip *g, struct gossip_actions *a, struct conn *c,
                    const struct msg_offer *o, uint64_t now)
{
    struct want_list w;
    int rc;

    if ((rc = want_init(&w, o->n_ids)) != 0)
        return want_send(&w, a, c->id, rc);
    for (size_t i = 0; i < o->n_ids; i++) {
        struct ad *ad = ad_get(g, o->ids[i]);
        if (ad != NULL && claim(g, ad, c, now)) {
            memcpy(w.ids[w.m.u.want.n_ids].id, ad->id, MSG_ID_LEN);
            w.ids[w.m.u.want.n_ids++].from = ad->stored;
        }
    }
    return want_send(&w, a, c->id, 0);
}

/* Is the vote (by, accept) among the requester's sorted tags? */
static bool tag_held(const struct msg_bytes *have, const uint8_t *by, bool accept)
{
    uint8_t t[MSG_VTAG_LEN];

    msg_vote_tag(t, by, accept);
    return bsearch(t, have->p, have->n / MSG_VTAG_LEN, MSG_VTAG_LEN, tag_cmp) != NULL;
}

/* VOTE frames for the votes of ad the requester lacks: those outside
 * `have` (NULL: a peer that sent no summary gets every vote), at most as
 * many as it has room for. Returns 0 or a send_msg code. */
static int send_votes(struct gossip_actions *a, uint32_t conn, const struct ad *ad,
                      const struct msg_bytes *have)
{
    size_t held = have != NULL ? have->n / MSG_VTAG_LEN : 0;
    size_t room = held < GOSSIP_VOTES_MAX ? GOSSIP_VOTES_MAX - held : 0;

    for (size_t k = 0; k < ad->n_votes && room > 0; k++) {
        const struct vote *v = &ad->votes[k];
        struct msg m = { .type = MSG_VOTE };
        int rc;
        if (have != NULL && have->n > 0 && tag_held(have, v->by, v->accept))
            continue;
        room--;
        memcpy(m.u.vote.id, ad->id, MSG_ID_LEN);
        memcpy(m.u.vote.by, v->by, MSG_ID_LEN);
        m.u.vote.body = (struct msg_bytes){ v->body, v->body_n };
        m.u.vote.sig = (struct msg_bytes){ v->sig, v->sig_n };
        if ((rc = send_msg(a, conn, &m)) != 0)
            return rc;
    }
    return 0;
}

static int on_want(struct gossip *g, struct gossip_actions *a, struct conn *c,
                   const struct msg_want *w)
{
    int rc;

    for (size_t i = 0; i < w->n_ids; i++) {
        const struct ad *ad = ad_find(g, w->ids[i].id);
        struct gossip_action *x;
        if (ad == NULL || ad->st < GOSSIP_AD_HELD)
            continue;   /* we listed it once and lost it, or never had it: ignore */
        if (w->ids[i].from >= ad->size)
            return fault(g, a, c, PROTO_E_FIELD_VALUE, "WANT from is at or past the adapter's end");
        if ((x = push(a, GOSSIP_ACT_SEND_ADAPTER, c->id)) == NULL)
            return PROTO_E_NOMEM;
        memcpy(x->id, ad->id, MSG_ID_LEN);
        memcpy(x->domain, ad->domain, sizeof(x->domain));
        x->off = w->ids[i].from;
        x->size = ad->size;
        x->count = g->cfg.chunk_size;
    }
    for (size_t i = 0; i < w->n_vids; i++) {
        const struct ad *ad = ad_find(g, w->vids[i]);
        if (ad != NULL &&
            (rc = send_votes(a, c->id, ad, w->vhave != NULL ? &w->vhave[i] : NULL)) != 0)
            return rc;
    }
    return 0;
}

/* A MANIFEST or CHUNK from c is progress for every transfer from c: an
 * adapter queued behind another one on the same connection is not stalled. */
static void progress(struct gossip *g, const struct conn *c, uint64_t now)
{
    for (size_t i = 0; i < g->n_ads; i++)
        if (g->ads[i].fetching && g->ads[i].src == c->id)
            g->ads[i].stall_at = now + g->cfg.stall_ms;
}

/* The adapter c is sending us, or NULL (then c has been faulted). */
static struct ad *transfer_of(struct gossip *g, const struct conn *c, const uint8_t *id)
{
    struct ad *a = ad_find(g, id);

    return a != NULL && a->fetching && a->src == c->id ? a : NULL;
}

static int on_manifest(struct gossip *g, struct gossip_actions *a, struct conn *c,
                       const struct msg_manifest *f, uint64_t now)
{
    struct ad *ad = transfer_of(g, c, f->id);
    struct gossip_action *x;

    if (ad == NULL)
        return fault(g, a, c, PROTO_E_STATE, "MANIFEST for an adapter not requested from this peer");
    if ((ad->size != 0 && ad->size != f->size) || ad->stored > f->size)
        return fault(g, a, c, PROTO_E_STATE, "MANIFEST size differs from the size advertised");
    ad->size = f->size;
    memcpy(ad->domain, f->domain, sizeof(ad->domain));
    ad->manifest_seen = true;
    progress(g, c, now);
    if ((x = push(a, GOSSIP_ACT_STORE_MANIFEST, c->id)) == NULL)
        return PROTO_E_NOMEM;
    memcpy(x->id, ad->id, MSG_ID_LEN);
    memcpy(x->domain, ad->domain, sizeof(x->domain));
    x->size = ad->size;
    x->data = f->config;
    x->data2 = f->manifest;
    return 0;
}

static int on_chunk(struct gossip *g, struct gossip_actions *a, struct conn *c,
                    const struct msg_chunk *ch, uint64_t now)
{
    struct ad *ad = transfer_of(g, c, ch->id);
    struct gossip_action *x;
    char why[128];

    if (ad == NULL || !ad->manifest_seen)
        return fault(g, a, c, PROTO_E_STATE, "CHUNK for a transfer not in progress");
    if (ch->off != ad->stored || ad->size - ad->stored < ch->data.n) {
        snprintf(why, sizeof(why), "CHUNK [%" PRIu64 ", +%zu) but next byte is %" PRIu64 " of %" PRIu64,
                 ch->off, ch->data.n, ad->stored, ad->size);
        return fault(g, a, c, PROTO_E_STATE, why);
    }
    if ((x = push(a, GOSSIP_ACT_STORE_CHUNK, c->id)) == NULL)
        return PROTO_E_NOMEM;
    memcpy(x->id, ad->id, MSG_ID_LEN);
    x->off = ch->off;
    x->data = ch->data;   /* borrowed from the frame body */
    ad->stored += ch->data.n;
    progress(g, c, now);
    if (ad->stored < ad->size)
        return 0;
    ad->fetching = false;
    ad->st = GOSSIP_AD_VERIFYING;
    ad->verify_src = c->id;
    if ((x = push(a, GOSSIP_ACT_VERIFY_ADAPTER, c->id)) == NULL)
        return PROTO_E_NOMEM;
    memcpy(x->id, ad->id, MSG_ID_LEN);
    x->size = ad->size;
    return 0;
}

static int on_vote_frame(struct gossip *g, struct gossip_actions *a, struct conn *c,
                         const struct msg_vote *v)
{
    struct ad *ad = ad_find(g, v->id);
    struct gossip_action *x;

    if (ad == NULL || ad->n_votes >= GOSSIP_VOTES_MAX)
        return 0;
    for (size_t k = 0; k < ad->n_votes; k++)
        if (memcmp(ad->votes[k].by, v->by, MSG_ID_LEN) == 0 && ad->votes[k].body_n == v->body.n &&
            memcmp(ad->votes[k].body, v->body.p, v->body.n) == 0)
            return 0;   /* already kept: no second verification */
    if ((x = push(a, GOSSIP_ACT_VERIFY_VOTE, c->id)) == NULL)
        return PROTO_E_NOMEM;
    memcpy(x->id, v->id, MSG_ID_LEN);
    memcpy(x->by, v->by, MSG_ID_LEN);
    memcpy(x->from, c->peer, MSG_ID_LEN);
    x->data = v->body;
    x->data2 = v->sig;
    return 0;
}

static int on_peers(struct gossip *g, struct gossip_actions *a, const struct msg_peers *p)
{
    bool changed = false;
    int rc;

    for (size_t i = 0; i < p->n; i++)
        if (memcmp(p->peers[i].id, g->cfg.self, MSG_ID_LEN) != 0 &&
            (rc = member_put(g, p->peers[i].id, p->peers[i].addr, false, &changed)) != 0)
            return rc;
    return changed ? members_changed(g, a) : 0;
}

/* ---- frames ---- */

static int on_authed_msg(struct gossip *g, struct gossip_actions *a, struct conn *c,
                         const struct msg *m, uint64_t now)
{
    switch (m->type) {
    case MSG_DIGEST: return on_digest(g, a, c, &m->u.digest, now);
    case MSG_WANT: return on_want(g, a, c, &m->u.want);
    case MSG_OFFER: return on_offer(g, a, c, &m->u.offer, now);
    case MSG_MANIFEST: return on_manifest(g, a, c, &m->u.manifest, now);
    case MSG_CHUNK: return on_chunk(g, a, c, &m->u.chunk, now);
    case MSG_VOTE: return on_vote_frame(g, a, c, &m->u.vote);
    case MSG_PEERS: return on_peers(g, a, &m->u.peers);
    default: break;
    }
    return fault(g, a, c, PROTO_E_STATE, "HELLO or HELLO_ACK after authentication");
}

/* Route a decoded message by connection state (PROTOCOL.md 4). */
static int dispatch(struct gossip *g, struct gossip_actions *a, struct conn *c,
                    const struct msg *m, uint64_t now)
{
    char why[96];

    if (m->type == MSG_BYE) {
        struct gossip_action *x;
        c->st = C_CLOSING;
        release_transfers(g, c->id);
        if ((x = push(a, GOSSIP_ACT_CLOSE, c->id)) == NULL)
            return PROTO_E_NOMEM;
        x->code = m->u.bye.code;   /* the peer's reason, for the log; no strike */
        return 0;
    }
    if (c->st == C_AUTHED)
        return on_authed_msg(g, a, c, m, now);
    if (c->st == C_HELLO_WAIT && m->type == MSG_HELLO)
        return on_hello(g, a, c, &m->u.hello);
    if (c->st == C_ACK_WAIT && m->type == MSG_HELLO_ACK)
        return on_hello_ack(a, g, c, &m->u.hello_ack);
    snprintf(why, sizeof(why), "%s not allowed during the handshake", msg_type_name(m->type));
    return fault(g, a, c, PROTO_E_STATE, why);
}

static int on_frame(struct gossip *g, const struct gossip_event *ev, struct gossip_actions *a)
{
    struct conn *c = conn_find(g, ev->conn);
    struct proto_diag d = { 0 };
    struct msg *m = NULL;
    int rc;

    if (c == NULL)
        return PROTO_E_ARG;
    if (c->st == C_CLOSING)
        return 0;
    rc = msg_decode(ev->body.p, ev->body.n,
                    c->st == C_AUTHED ? &msg_limits_authed : &msg_limits_preauth, &m, &d);
    if (rc == PROTO_E_NOMEM || rc == PROTO_E_ARG)
        return rc == PROTO_E_ARG ? fault(g, a, c, PROTO_E_FRAME_LEN, "empty frame") : rc;
    if (rc != 0)
        return fault(g, a, c, rc, d.msg);
    rc = dispatch(g, a, c, m, ev->now_ms);
    msg_free(m);
    return rc;
}

/* ---- results of the driver's work ---- */

static int audit(struct gossip_actions *a, enum gossip_audit kind, const uint8_t *id,
                 const uint8_t *by, bool accept, uint32_t count)
{
    struct gossip_action *x = push(a, GOSSIP_ACT_AUDIT, 0);

    if (x == NULL)
        return PROTO_E_NOMEM;
    x->audit = kind;
    memcpy(x->id, id, MSG_ID_LEN);
    if (by != NULL)
        memcpy(x->by, by, MSG_ID_LEN);
    x->accept = accept;
    x->count = count;
    return 0;
}

/* Distinct keys with ACCEPT and no REJECT for this adapter. */
static uint32_t accept_keys(const struct ad *ad)
{
    uint32_t n = 0;

    for (size_t i = 0; i < ad->n_votes; i++) {
        bool equivocates = false;
        if (!ad->votes[i].accept)
            continue;
        for (size_t j = 0; j < ad->n_votes; j++)
            if (!ad->votes[j].accept && memcmp(ad->votes[j].by, ad->votes[i].by, MSG_ID_LEN) == 0)
                equivocates = true;
        n += !equivocates;
    }
    return n;
}

static int check_commit(struct gossip *g, struct gossip_actions *a, struct ad *ad)
{
    struct gossip_action *x;
    uint32_t n;

    if (ad->st != GOSSIP_AD_HELD || ad->gate != 1 || (n = accept_keys(ad)) < g->cfg.quorum)
        return 0;
    ad->st = GOSSIP_AD_COMMITTED;
    if ((x = push(a, GOSSIP_ACT_COMMIT, 0)) == NULL)
        return PROTO_E_NOMEM;
    memcpy(x->id, ad->id, MSG_ID_LEN);
    memcpy(x->domain, ad->domain, sizeof(x->domain));
    x->count = n;
    return audit(a, GOSSIP_AUDIT_COMMIT, ad->id, NULL, true, n);
}

/* Push: OFFER a newly held adapter to every authenticated peer but `except`. */
static int offer_all(struct gossip *g, struct gossip_actions *a, const struct ad *ad,
                     uint32_t except, bool has_except)
{
    struct msg m = { .type = MSG_OFFER };
    msg_id one;
    int rc;

    memcpy(one, ad->id, MSG_ID_LEN);
    m.u.offer.n_ids = 1;
    m.u.offer.ids = &one;
    for (size_t i = 0; i < g->n_conns; i++)
        if (g->conns[i]->st == C_AUTHED && !(has_except && g->conns[i]->id == except) &&
            (rc = send_msg(a, g->conns[i]->id, &m)) != 0)
            return rc;
    return 0;
}

static int gate_or_commit(struct gossip *g, struct gossip_actions *a, struct ad *ad)
{
    struct gossip_action *x;

    if (ad->gate != 0)
        return check_commit(g, a, ad);
    if ((x = push(a, GOSSIP_ACT_RUN_GATE, 0)) == NULL)
        return PROTO_E_NOMEM;
    memcpy(x->id, ad->id, MSG_ID_LEN);
    memcpy(x->domain, ad->domain, sizeof(x->domain));
    x->size = ad->size;
    return 0;
}

static int on_adapter_verified(struct gossip *g, const struct gossip_event *ev,
                               struct gossip_actions *a)
{
    struct ad *ad = ad_find(g, ev->id);
    struct gossip_action *x;
    struct conn *c;

    if (ad == NULL || ad->st != GOSSIP_AD_VERIFYING)
        return 0;
    if (ev->ok) {
        int rc;
        ad->st = GOSSIP_AD_HELD;
        if (g->cfg.push && (rc = offer_all(g, a, ad, ad->verify_src, true)) != 0)
            return rc;
        return gate_or_commit(g, a, ad);
    }
    ad->st = GOSSIP_AD_PARTIAL;   /* fetch again, from anyone, from byte 0 */
    ad->stored = 0;
    if ((x = push(a, GOSSIP_ACT_DISCARD, 0)) == NULL)
        return PROTO_E_NOMEM;
    memcpy(x->id, ad->id, MSG_ID_LEN);
    if (ad->resumed)
        return 0;   /* bytes of two sources, or of one before a restart: nobody to blame */
    if ((c = conn_find(g, ad->verify_src)) != NULL && c->st != C_CLOSING &&
        memcmp(c->peer, ad->src_peer, MSG_ID_LEN) == 0)
        return fault(g, a, c, PROTO_E_HASH, "adapter bytes do not hash to their id");
    if ((x = push(a, GOSSIP_ACT_STRIKE, ad->verify_src)) == NULL)
        return PROTO_E_NOMEM;
    x->code = PROTO_E_HASH;
    memcpy(x->by, ad->src_peer, MSG_ID_LEN);
    return 0;
}

static int on_gate(struct gossip *g, const struct gossip_event *ev, struct gossip_actions *a)
{
    struct ad *ad = ad_find(g, ev->id);
    struct gossip_action *x;
    int rc;

    if (ad == NULL || ad->st < GOSSIP_AD_HELD || ad->gate != 0)
        return 0;
    ad->gate = ev->accept ? 1 : -1;
    if ((rc = audit(a, GOSSIP_AUDIT_GATE, ad->id, NULL, ev->accept, 0)) != 0)
        return rc;
    if ((x = push(a, GOSSIP_ACT_SIGN_VOTE, 0)) == NULL)
        return PROTO_E_NOMEM;
    memcpy(x->id, ad->id, MSG_ID_LEN);
    x->accept = ev->accept;
    return check_commit(g, a, ad);
}

/* A vote the driver refused. Untrusted or revoked signers are not kept and
 * not a strike (keyrings differ between nodes). A vote that proves its
 * sender lied (ev->code: a signature by a key we trust that does not
 * verify, a body about another adapter or signer) is a peer fault: every
 * node checks a vote before it keeps and relays it, so no honest peer
 * forwards one. */
static int vote_refused(struct gossip *g, const struct gossip_event *ev, struct gossip_actions *a)
{
    static const msg_id nobody = { 0 };
    struct conn *c = conn_find(g, ev->conn);
    bool anon = memcmp(ev->from, nobody, MSG_ID_LEN) == 0;   /* the driver did not say */
    struct gossip_action *x;

    if (ev->code == 0 || !proto_err_is_peer_fault(ev->code))
        return 0;
    if (c != NULL && c->st == C_AUTHED && (anon || memcmp(c->peer, ev->from, MSG_ID_LEN) == 0))
        return fault(g, a, c, ev->code, ev->code == PROTO_E_AUTH ? "VOTE signature does not verify"
                                                                 : "VOTE body does not match the frame");
    if (anon)
        return 0;
    /* The relayer hung up before the check ended (a liar need not wait for
     * the verdict): its key is struck all the same; nothing to close. */
    if ((x = push(a, GOSSIP_ACT_STRIKE, ev->conn)) == NULL)
        return PROTO_E_NOMEM;
    x->code = ev->code;
    memcpy(x->by, ev->from, MSG_ID_LEN);
    return 0;
}

/* Keep a checked vote: dedup on (key, verdict); a key's second verdict is
 * equivocation evidence, kept and audited, and counts for neither side. */
static int on_vote(struct gossip *g, const struct gossip_event *ev, struct gossip_actions *a)
{
    struct ad *ad = ad_find(g, ev->id);
    bool other = false;
    struct vote *v, *nv;
    int rc;

    if (!ev->ok)
        return vote_refused(g, ev, a);
    if (ad == NULL || ad->n_votes >= GOSSIP_VOTES_MAX || ev->body.n == 0 ||
        ev->body.n > MSG_VOTE_MAX || ev->sig.n == 0 || ev->sig.n > MSG_SIG_MAX)
        return 0;
    for (size_t k = 0; k < ad->n_votes; k++) {
        if (memcmp(ad->votes[k].by, ev->by, MSG_ID_LEN) != 0)
            continue;
        if (ad->votes[k].accept == ev->accept)
            return 0;
        other = true;
    }
    if ((nv = realloc(ad->votes, (ad->n_votes + 1) * sizeof(*nv))) == NULL)
        return PROTO_E_NOMEM;
    ad->votes = nv;
    v = &ad->votes[ad->n_votes];
    memset(v, 0, sizeof(*v));
    if ((v->body = malloc(ev->body.n)) == NULL || (v->sig = malloc(ev->sig.n)) == NULL) {
        free(v->body);
        return PROTO_E_NOMEM;
    }
    memcpy(v->by, ev->by, MSG_ID_LEN);
    v->accept = ev->accept;
    memcpy(v->body, ev->body.p, v->body_n = ev->body.n);
    memcpy(v->sig, ev->sig.p, v->sig_n = ev->sig.n);
    ad->n_votes++;
    ad->vset += msg_vote_term(ev->by, ev->accept);
    if ((rc = audit(a, GOSSIP_AUDIT_VOTE, ad->id, ev->by, ev->accept, 0)) != 0 ||
        (other && (rc = audit(a, GOSSIP_AUDIT_EQUIVOCATION, ad->id, ev->by, ev->accept, 0)) != 0))
        return rc;
    return check_commit(g, a, ad);
}

/* An adapter in our store (start-up) or published here. */
static int on_adapter(struct gossip *g, const struct gossip_event *ev, struct gossip_actions *a)
{
    struct ad *ad;

    if (ev->domain == NULL || !msg_domain_ok(ev->domain, strlen(ev->domain)) || ev->size == 0 ||
        ev->size > MSG_SIZE_MAX || ev->stored > ev->size)
        return PROTO_E_ARG;
    if ((ad = ad_get(g, ev->id)) == NULL)
        return PROTO_E_NOMEM;
    if (ad->st >= GOSSIP_AD_VERIFYING || ad->fetching)
        return 0;   /* already known better */
    snprintf(ad->domain, sizeof(ad->domain), "%s", ev->domain);
    ad->size = ev->size;
    ad->stored = ev->stored;
    if (ev->stored < ev->size)
        return 0;   /* partial: resumes at `stored` when a peer lists it */
    ad->st = GOSSIP_AD_HELD;
    ad->gate = ev->gate > 0 ? 1 : ev->gate < 0 ? -1 : 0;
    if (g->cfg.push) {
        int rc = offer_all(g, a, ad, 0, false);
        if (rc != 0)
            return rc;
    }
    return gate_or_commit(g, a, ad);
}

static int on_member(struct gossip *g, const struct gossip_event *ev, struct gossip_actions *a)
{
    bool changed = false;
    int rc;

    if (ev->addr == NULL || !msg_addr_ok(ev->addr, strlen(ev->addr)))
        return PROTO_E_ARG;
    if ((rc = member_put(g, ev->id, ev->addr, false, &changed)) != 0)
        return rc;
    return changed ? members_changed(g, a) : 0;
}

/* ---- time ---- */

/* No MANIFEST or CHUNK from the source for stall_ms: the transfer goes back
 * to the pool (another peer may serve it). A source that is still
 * connected and authenticated announced the adapter, got our WANT and sent
 * nothing for it meanwhile: a peer fault (a peer merely slow keeps the
 * transfer alive with every frame of it, see progress()); its bytes are
 * discarded, since they came from a peer that lied once. */
static int stalled(struct gossip *g, struct gossip_actions *a, struct ad *ad)
{
    struct conn *c = conn_find(g, ad->src);
    struct gossip_action *x;
    char why[96];

    ad->fetching = false;
    if (c == NULL || c->st != C_AUTHED || memcmp(c->peer, ad->src_peer, MSG_ID_LEN) != 0)
        return 0;
    if (ad->stored > 0) {
        ad->stored = 0;
        if ((x = push(a, GOSSIP_ACT_DISCARD, 0)) == NULL)
            return PROTO_E_NOMEM;
        memcpy(x->id, ad->id, MSG_ID_LEN);
    }
    snprintf(why, sizeof(why), "transfer stalled: no %s for %" PRIu32 " ms",
             ad->manifest_seen ? "CHUNK" : "MANIFEST", g->cfg.stall_ms);
    return fault(g, a, c, PROTO_E_STATE, why);
}

static int on_tick(struct gossip *g, uint64_t now, struct gossip_actions *a)
{
    int rc;

    for (size_t i = 0; i < g->n_conns; i++) {
        struct conn *c = g->conns[i];
        if (c->st != C_AUTHED && c->st != C_CLOSING && now >= c->deadline &&
            (rc = close_conn(g, a, c, PROTO_E_STATE, "handshake timeout")) != 0)
            return rc;
    }
    for (size_t i = 0; i < g->n_ads; i++)
        if (g->ads[i].fetching && now >= g->ads[i].stall_at &&
            (rc = stalled(g, a, &g->ads[i])) != 0)
            return rc;
    if (now < g->next_round)
        return 0;
    g->round++;
    g->next_round += g->cfg.round_ms;
    if (g->next_round <= now)   /* the driver slept through rounds: don't replay them */
        g->next_round = now + g->cfg.round_ms;
    for (size_t i = 0; i < g->n_conns; i++)
        if (g->conns[i]->st == C_AUTHED && (rc = send_digest(g, a, g->conns[i])) != 0)
            return rc;
    return 0;
}

uint64_t gossip_next_deadline_ms(const struct gossip *g)
{
    uint64_t t = g->next_round;

    for (size_t i = 0; i < g->n_conns; i++)
        if (g->conns[i]->st != C_AUTHED && g->conns[i]->st != C_CLOSING &&
            g->conns[i]->deadline < t)
            t = g->conns[i]->deadline;
    for (size_t i = 0; i < g->n_ads; i++)
        if (g->ads[i].fetching && g->ads[i].stall_at < t)
            t = g->ads[i].stall_at;
    return t;
}

/* ---- public ---- */

size_t gossip_untrust(struct gossip *g, const msg_id by)
{
    size_t dropped = 0;

    for (size_t i = 0; i < g->n_ads; i++) {
        struct ad *ad = &g->ads[i];
        size_t k = 0;

        while (k < ad->n_votes) {
            struct vote *v = &ad->votes[k];
            if (memcmp(v->by, by, MSG_ID_LEN) != 0) {
                k++;
                continue;
            }
            ad->vset -= msg_vote_term(v->by, v->accept);
            free(v->body);
            free(v->sig);
            memmove(v, v + 1, (ad->n_votes - k - 1) * sizeof(*v));
            ad->n_votes--;
            dropped++;
        }
    }
    return dropped;
}

int gossip_step(struct gossip *g, const struct gossip_event *ev, struct gossip_actions *out)
{
    struct conn *c;

    switch (ev->type) {
    case GOSSIP_EV_TICK: return on_tick(g, ev->now_ms, out);
    case GOSSIP_EV_PEER_UP: return on_peer_up(g, ev, out);
    case GOSSIP_EV_PEER_DOWN:
        if ((c = conn_find(g, ev->conn)) != NULL)
            release_transfers(g, c->id);
        conn_remove(g, ev->conn);
        return 0;
    case GOSSIP_EV_FRAME: return on_frame(g, ev, out);
    case GOSSIP_EV_AUTH_SIGNED: return on_auth_signed(g, ev, out);
    case GOSSIP_EV_AUTH_VERIFIED: return on_auth_verified(g, ev, out);
    case GOSSIP_EV_ADAPTER: return on_adapter(g, ev, out);
    case GOSSIP_EV_ADAPTER_VERIFIED: return on_adapter_verified(g, ev, out);
    case GOSSIP_EV_GATE_VERDICT: return on_gate(g, ev, out);
    case GOSSIP_EV_VOTE: return on_vote(g, ev, out);
    case GOSSIP_EV_MEMBER: return on_member(g, ev, out);
    }
    return PROTO_E_ARG;
}

int gossip_new(struct gossip **out, const struct gossip_config *cfg)
{
    struct gossip *g = NULL;
    const char *addr = cfg->addr != NULL ? cfg->addr : "";
    bool changed = false;
    int rc = PROTO_E_ARG;

    *out = NULL;
    if (cfg->pk == NULL || cfg->pk_len == 0 || cfg->pk_len > MSG_PK_MAX || cfg->quorum == 0 ||
        cfg->chunk_size > MSG_CHUNK_MAX || (addr[0] != '\0' && !msg_addr_ok(addr, strlen(addr))))
        goto out;
    rc = PROTO_E_NOMEM;
    if ((g = calloc(1, sizeof(*g))) == NULL || (g->pk = malloc(cfg->pk_len)) == NULL)
        goto out;
    g->cfg = *cfg;
    memcpy(g->pk, cfg->pk, cfg->pk_len);
    g->cfg.pk = g->pk;
    snprintf(g->addr, sizeof(g->addr), "%s", addr);
    g->cfg.addr = g->addr;
    g->cfg.round_ms = cfg->round_ms ? cfg->round_ms : 1000;
    g->cfg.chunk_size = cfg->chunk_size ? cfg->chunk_size : 256u << 10;
    g->cfg.handshake_ms = cfg->handshake_ms ? cfg->handshake_ms : 10000;
    g->cfg.stall_ms = cfg->stall_ms ? cfg->stall_ms : 30000;
    g->next_round = cfg->start_ms;
    if (member_put(g, g->cfg.self, g->addr, true, &changed) != 0)
        goto out;
    members_hash(g);
    *out = g;   /* the caller owns it now */
    g = NULL;
    rc = 0;
out:
    gossip_free(g);
    return rc;
}

void gossip_free(struct gossip *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->n_conns; i++) {
        free(g->conns[i]->pk);
        free(g->conns[i]);
    }
    for (size_t i = 0; i < g->n_ads; i++) {
        for (size_t k = 0; k < g->ads[i].n_votes; k++) {
            free(g->ads[i].votes[k].body);
            free(g->ads[i].votes[k].sig);
        }
        free(g->ads[i].votes);
    }
    free(g->conns);
    free(g->ads);
    free(g->members);
    free(g->pk);
    free(g);
}

enum gossip_ad_state gossip_adapter_state(const struct gossip *g, const msg_id id)
{
    const struct ad *a = ad_find(g, id);

    return a != NULL ? a->st : GOSSIP_AD_NONE;
}

size_t gossip_members(const struct gossip *g, struct msg_peer *out, size_t cap)
{
    for (size_t i = 0; i < g->n_members && i < cap; i++)
        out[i] = g->members[i];
    return g->n_members;
}

uint64_t gossip_round(const struct gossip *g)
{
    return g->round;
}
