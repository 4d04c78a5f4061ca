/* crypto/audit.c: audit log writer: lock, tail recovery, records, group commit. */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hex.h"
#include "key.h"
#include "sig.h"
#include "vote.h"

#define SCAN_BLOCK (1u << 20)   /* bytes per read while counting lines on open */
#define TORN_MAX_SIDECARS 10000 /* "<log>.torn.1" .. this */

struct audit {
    int fd;
    char *name;                 /* path (for messages and sidecars); may be NULL */
    uint32_t group_records, group_ms;
    uint64_t count;             /* records appended (= lines) */
    uint64_t acked;             /* records known durable */
    uint8_t head[SHA256_LEN];   /* hash of line `count` */
    struct audit_buf pend;      /* lines not yet written, each with its LF */
    uint32_t pend_records;
    uint64_t pend_since;        /* now_ms of the oldest pending record */
    struct audit_buf line;      /* record under construction */
    struct sha256_ctx *h;
    bool failed;
};

static int io_fail(struct crypto_diag *d, const char *what, const char *name, int err)
{
    return crypto_fail(d, CRYPTO_E_IO, 0, "%s %s: %s", what, name ? name : "(audit log)",
                       strerror(err));
}

static int read_full(int fd, uint64_t off, void *buf, size_t n, const char *name,
                     struct crypto_diag *d)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return io_fail(d, "read", name, r == 0 ? EIO : errno);
        got += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Offsets of the last three LFs (-1 when fewer) and the number of LFs. */
struct tail_scan {
    int64_t nl[3];   /* nl[0] = last */
    uint64_t lines;
    uint64_t size;
};

static int scan_tail(int fd, const char *name, struct tail_scan *t, struct crypto_diag *d)
{
    char *buf = malloc(SCAN_BLOCK);
    struct stat st;
    int rc = 0;

    memset(t, 0, sizeof(*t));
    t->nl[0] = t->nl[1] = t->nl[2] = -1;
    if (buf == NULL)
        return CRYPTO_E_NOMEM;
    if (fstat(fd, &st) != 0) {
        rc = io_fail(d, "stat", name, errno);
        goto out;
    }
    t->size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    for (uint64_t off = 0; off < t->size && rc == 0;) {
        size_t n = t->size - off < SCAN_BLOCK ? (size_t)(t->size - off) : SCAN_BLOCK;
        if ((rc = read_full(fd, off, buf, n, name, d)) != 0)
            break;
        for (char *p = buf; (p = memchr(p, '\n', n - (size_t)(p - buf))) != NULL; p++) {
            t->nl[2] = t->nl[1];
            t->nl[1] = t->nl[0];
            t->nl[0] = (int64_t)(off + (uint64_t)(p - buf));
            t->lines++;
        }
        off += n;
    }
out:
    free(buf);
    return rc;
}

static void fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    int dfd;

    if (copy == NULL)
        return;
    /* best effort by design: the sidecar's data is already fsync'd, and
     * failing to persist its directory entry must not stop the daemon */
    if ((dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(copy);
}

/* Copy [from, size) of the log to the partial file `tmp` (fsync'd). */
static int copy_tail(struct audit *a, uint64_t from, uint64_t size, const char *tmp,
                     struct crypto_diag *d)
{
    char *buf = malloc(SCAN_BLOCK);
    int sfd, rc = 0;

    if (buf == NULL)
        return CRYPTO_E_NOMEM;
    if ((sfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        free(buf);
        return io_fail(d, "create", tmp, errno);
    }
    for (uint64_t off = from; off < size && rc == 0;) {
        size_t n = size - off < SCAN_BLOCK ? (size_t)(size - off) : SCAN_BLOCK;
        if ((rc = read_full(a->fd, off, buf, n, a->name, d)) == 0 && write_full(sfd, buf, n) != 0)
            rc = io_fail(d, "write", tmp, errno);
        off += n;
    }
    if (rc == 0 && fsync(sfd) != 0)
        rc = io_fail(d, "fsync", tmp, errno);
    close(sfd);
    free(buf);
    return rc;
}

/* Move [from, size) of the log to a new sidecar "<log>.torn.<n>", then cut
 * the log there. The bytes go to "<log>.torn.partial" first and are linked
 * to their final name only once complete and fsync'd, so a crash in here
 * never leaves a partial sidecar; a crash after the link but before the cut
 * makes the next open copy the same bytes again (to the next n). */
static int move_torn(struct audit *a, uint64_t from, uint64_t size, struct audit_open_info *info,
                     struct crypto_diag *d)
{
    char tmp[4096], path[4096];
    int rc, linked = -1;

    if (a->name == NULL)
        return crypto_fail(d, CRYPTO_E_AUDIT_DAMAGED, from,
                           "torn tail of %llu bytes and no path to move it to",
                           (unsigned long long)(size - from));
    snprintf(tmp, sizeof(tmp), "%s.torn.partial", a->name);
    if ((rc = copy_tail(a, from, size, tmp, d)) != 0)
        goto out;
    for (int n = 1; n <= TORN_MAX_SIDECARS && linked != 0; n++) {
        snprintf(path, sizeof(path), "%s.torn.%d", a->name, n);
        if ((linked = link(tmp, path)) != 0 && errno != EEXIST) {
            rc = io_fail(d, "link", path, errno);
            goto out;
        }
    }
    if (linked != 0) {
        rc = crypto_fail(d, CRYPTO_E_IO, 0, "%s: %d torn sidecars exist already", a->name,
                         TORN_MAX_SIDECARS);
        goto out;
    }
    fsync_dir_of(path);
    if (ftruncate(a->fd, (off_t)from) != 0 || fsync(a->fd) != 0) {
        rc = io_fail(d, "truncate", a->name, errno);
        goto out;
    }
    info->torn_bytes = size - from;
    snprintf(info->torn_path, sizeof(info->torn_path), "%s", path);
out:
    unlink(tmp);
    return rc;
}

/* Read the line [start, end) (end = offset of its LF) into a new buffer. */
static int read_line(struct audit *a, int64_t start, int64_t end, char **out,
                     struct crypto_diag *d)
{
    size_t n = (size_t)(end - start);
    int rc;

    *out = NULL;
    if (n > AUDIT_LINE_MAX)
        return crypto_fail(d, CRYPTO_E_AUDIT_DAMAGED, (size_t)start,
                           "%s: a line of %zu bytes (cap %u)", a->name ? a->name : "log", n,
                           AUDIT_LINE_MAX);
    if ((*out = malloc(n + 1)) == NULL)
        return CRYPTO_E_NOMEM;
    if ((rc = read_full(a->fd, (uint64_t)start, *out, n, a->name, d)) != 0) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* The last complete line must parse and chain onto the one before. */
static int check_last(struct audit *a, const struct tail_scan *t, struct crypto_diag *d)
{
    char *last = NULL, *before = NULL;
    uint8_t want[SHA256_LEN] = {0};
    struct audit_record r;
    struct crypto_diag ld = {0};
    int rc;

    if ((rc = read_line(a, t->nl[1] + 1, t->nl[0], &last, d)) != 0 ||
        (t->nl[1] >= 0 && (rc = read_line(a, t->nl[2] + 1, t->nl[1], &before, d)) != 0))
        goto out;
    if (before != NULL && (rc = sha256(before, (size_t)(t->nl[1] - t->nl[2] - 1), want)) != 0)
        goto out;
    if (audit_line_parse(last, (size_t)(t->nl[0] - t->nl[1] - 1), &r, &ld) != 0) {
        rc = crypto_fail(d, CRYPTO_E_AUDIT_DAMAGED, (size_t)(t->nl[1] + 1),
                         "%s line %llu: not a valid record (%s)", a->name ? a->name : "log",
                         (unsigned long long)t->lines, ld.msg);
    } else if (memcmp(r.prev_hash, want, SHA256_LEN) != 0) {
        rc = crypto_fail(d, CRYPTO_E_AUDIT_DAMAGED, (size_t)(t->nl[1] + 1),
                         "%s line %llu: prev_hash does not match line %llu",
                         a->name ? a->name : "log", (unsigned long long)t->lines,
                         (unsigned long long)t->lines - 1);
    } else {
        rc = sha256(last, (size_t)(t->nl[0] - t->nl[1] - 1), a->head);
    }
    if (d != NULL && rc == CRYPTO_E_AUDIT_DAMAGED)
        d->line = t->lines;
out:
    free(last);
    free(before);
    return rc;
}

static int recover(struct audit *a, struct audit_open_info *info, struct crypto_diag *d)
{
    char partial[4096];
    struct tail_scan t;
    uint64_t complete;
    int rc;

    /* a partial sidecar left by a crash in move_torn holds nothing that is
     * not still in the log or already in a complete sidecar */
    if (a->name != NULL) {
        snprintf(partial, sizeof(partial), "%s.torn.partial", a->name);
        if (unlink(partial) != 0 && errno != ENOENT)
            return io_fail(d, "remove", partial, errno);
    }

    if ((rc = scan_tail(a->fd, a->name, &t, d)) != 0)
        return rc;
    complete = (uint64_t)(t.nl[0] + 1);
    if (t.size > complete && (rc = move_torn(a, complete, t.size, info, d)) != 0)
        return rc;
    if (t.lines > 0 && (rc = check_last(a, &t, d)) != 0)
        return rc;
    a->count = a->acked = t.lines;
    if (lseek(a->fd, 0, SEEK_END) < 0 && errno != ESPIPE)
        return io_fail(d, "seek", a->name, errno);
    return 0;
}

int audit_open_fd(struct audit **out, int fd, const char *name, const struct audit_opts *o,
                  struct audit_open_info *info, struct crypto_diag *d)
{
    struct audit_open_info scratch;
    struct audit *a = NULL;
    int rc;

    *out = NULL;
    info = info ? info : &scratch;
    memset(info, 0, sizeof(*info));
    if ((a = calloc(1, sizeof(*a))) == NULL || (name && (a->name = strdup(name)) == NULL)) {
        rc = CRYPTO_E_NOMEM;
        goto fail;
    }
    a->fd = fd;
    fd = -1;   /* transferred */
    a->group_records = o && o->group_records ? o->group_records : AUDIT_GROUP_RECORDS;
    a->group_ms = o && o->group_ms ? o->group_ms : AUDIT_GROUP_MS;
    if (flock(a->fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK
                 ? crypto_fail(d, CRYPTO_E_AUDIT_LOCKED, 0, "%s is locked by another writer",
                               name ? name : "audit log")
                 : io_fail(d, "lock", name, errno);
        goto fail;
    }
    if ((rc = sha256_new(&a->h)) != 0 || (rc = recover(a, info, d)) != 0)
        goto fail;
    info->records = audit_head(a, info->head);
    *out = a;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    if (a != NULL) {
        a->pend_records = 0;   /* nothing to flush */
        (void)audit_close(a, NULL);
    }
    return rc;
}

int audit_open(struct audit **out, const char *path, const struct audit_opts *o,
               struct audit_open_info *info, struct crypto_diag *d)
{
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

    *out = NULL;
    if (fd < 0)
        return io_fail(d, "open", path, errno);
    return audit_open_fd(out, fd, path, o, info, d);
}

int audit_close(struct audit *a, struct crypto_diag *d)
{
    int rc = 0;

    if (a == NULL)
        return 0;
    if (a->pend_records > 0 && !a->failed)
        rc = audit_sync(a, d);
    if (a->fd >= 0)
        close(a->fd);   /* drops the flock */
    sha256_free(a->h);
    audit_buf_free(&a->pend);
    audit_buf_free(&a->line);
    free(a->name);
    free(a);
    return rc;
}

/* ---- group commit ---- */

static int flush(struct audit *a, struct crypto_diag *d)
{
    if (a->failed)
        return crypto_fail(d, CRYPTO_E_AUDIT_FAILED, 0, "%s: an earlier write failed; reopen",
                           a->name ? a->name : "audit log");
    if (a->pend.n > 0 && write_full(a->fd, a->pend.p, a->pend.n) != 0) {
        a->failed = true;
        return io_fail(d, "write", a->name, errno);
    }
    if (fdatasync(a->fd) != 0) {
        a->failed = true;
        return io_fail(d, "fdatasync", a->name, errno);
    }
    audit_buf_reset(&a->pend);
    a->pend_records = 0;
    a->acked = a->count;
    return 0;
}

int audit_sync(struct audit *a, struct crypto_diag *d)
{
    return flush(a, d);
}

int audit_poll(struct audit *a, uint64_t now_ms, struct crypto_diag *d)
{
    if (a->failed)
        return flush(a, d);
    if (a->pend_records > 0 && now_ms >= audit_next_deadline_ms(a))
        return flush(a, d);
    return 0;
}

uint64_t audit_next_deadline_ms(const struct audit *a)
{
    if (a->pend_records == 0 || a->failed)
        return UINT64_MAX;
    return a->pend_since + a->group_ms;
}

uint64_t audit_acked(const struct audit *a)
{
    return a->acked;
}

uint64_t audit_head(const struct audit *a, char hex[SHA256_HEX_LEN + 1])
{
    if (a->count == 0)
        memset(hex, '0', SHA256_HEX_LEN), hex[SHA256_HEX_LEN] = '\0';
    else
        sha256_hex(a->head, hex);
    return a->count;
}

bool audit_failed(const struct audit *a)
{
    return a->failed;
}

/* ---- records ---- */

static void begin(struct audit *a, const char *type, uint64_t ts_ms)
{
    audit_buf_reset(&a->line);
    audit_buf_raw(&a->line, "{", 1);
    audit_buf_key(&a->line, "type");
    audit_buf_str(&a->line, type, strlen(type));
    audit_buf_key(&a->line, "ts");
    audit_buf_u64(&a->line, ts_ms);
}

static void put_str(struct audit *a, const char *key, const char *s)
{
    audit_buf_key(&a->line, key);
    audit_buf_str(&a->line, s, strlen(s));
}

static void put_strs(struct audit *a, const char *key, const char *const *v, size_t n)
{
    audit_buf_key(&a->line, key);
    audit_buf_raw(&a->line, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            audit_buf_raw(&a->line, ", ", 2);
        audit_buf_str(&a->line, v[i], strlen(v[i]));
    }
    audit_buf_raw(&a->line, "]", 1);
}

/* Close the record with prev_hash, chain it, queue it, maybe commit. */
static int finish(struct audit *a, uint64_t now_ms, uint64_t *seq, struct crypto_diag *d)
{
    char prev[SHA256_HEX_LEN + 1];
    uint8_t h[SHA256_LEN];
    size_t before;
    int rc;

    if (a->failed)
        return flush(a, d);
    audit_head(a, prev);
    audit_buf_key(&a->line, "prev_hash");
    audit_buf_str(&a->line, prev, SHA256_HEX_LEN);
    audit_buf_raw(&a->line, "}", 1);
    if (a->line.oom)
        return CRYPTO_E_NOMEM;
    if (a->line.n > AUDIT_LINE_MAX)
        return crypto_fail(d, CRYPTO_E_AUDIT_FIELD, 0, "record of %zu bytes exceeds the line cap %u",
                           a->line.n, AUDIT_LINE_MAX);
    if ((rc = sha256_update(a->h, a->line.p, a->line.n)) != 0 || (rc = sha256_final(a->h, h)) != 0)
        return rc;
    before = a->pend.n;
    audit_buf_raw(&a->pend, a->line.p, a->line.n);
    audit_buf_raw(&a->pend, "\n", 1);
    if (a->pend.oom) {   /* roll the partial copy back: nothing was queued */
        a->pend.oom = false;
        a->pend.n = before;
        return CRYPTO_E_NOMEM;
    }
    if (a->pend_records++ == 0)
        a->pend_since = now_ms;
    memcpy(a->head, h, SHA256_LEN);
    a->count++;
    if (seq != NULL)
        *seq = a->count;
    if (a->pend_records >= a->group_records || now_ms >= a->pend_since + a->group_ms)
        return flush(a, d);
    return 0;
}

static int need_hex(const char *field, const char *v, struct crypto_diag *d)
{
    return hex_is_sha256(v) ? 0
                            : crypto_fail(d, CRYPTO_E_AUDIT_FIELD, 0,
                                          "%s: want 64 lowercase hex digits", field);
}

static int need_str(const char *field, const char *v, struct crypto_diag *d)
{
    return v != NULL ? 0 : crypto_fail(d, CRYPTO_E_AUDIT_FIELD, 0, "%s: missing", field);
}

int audit_append_start(struct audit *a, uint64_t ts_ms, const char *node, const char *version,
                       uint64_t now_ms, uint64_t *seq, struct crypto_diag *d)
{
    int rc;

    if ((rc = need_hex("node", node, d)) != 0 || (rc = need_str("version", version, d)) != 0)
        return rc;
    begin(a, "start", ts_ms);
    put_str(a, "node", node);
    put_str(a, "version", version);
    return finish(a, now_ms, seq, d);
}

int audit_append_stop(struct audit *a, uint64_t ts_ms, const char *node, const char *reason,
                      uint64_t now_ms, uint64_t *seq, struct crypto_diag *d)
{
    int rc;

    if ((rc = need_hex("node", node, d)) != 0 || (rc = need_str("reason", reason, d)) != 0)
        return rc;
    begin(a, "stop", ts_ms);
    put_str(a, "node", node);
    put_str(a, "reason", reason);
    return finish(a, now_ms, seq, d);
}

int audit_append_peer(struct audit *a, uint64_t ts_ms, const struct audit_peer *p,
                      uint64_t now_ms, uint64_t *seq, struct crypto_diag *d)
{
    static const char *const events[] = { "up", "down", "strike", "ban" };
    bool known = false;
    int rc;

    if ((rc = need_hex("peer", p->peer, d)) != 0 || (rc = need_str("addr", p->addr, d)) != 0 ||
        (rc = need_str("event", p->event, d)) != 0 || (rc = need_str("reason", p->reason, d)) != 0)
        return rc;
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        known = known || strcmp(p->event, events[i]) == 0;
    if (!known)
        return crypto_fail(d, CRYPTO_E_AUDIT_FIELD, 0, "event \"%s\": want up, down, strike or ban",
                           p->event);
    begin(a, "peer", ts_ms);
    put_str(a, "peer", p->peer);
    put_str(a, "addr", p->addr);
    put_str(a, "event", p->event);
    put_str(a, "reason", p->reason);
    return finish(a, now_ms, seq, d);
}

static int need_strs(const char *field, const char *const *v, size_t n, bool hex,
                     struct crypto_diag *d)
{
    if (n > AUDIT_LIST_MAX || (n > 0 && v == NULL))
        return crypto_fail(d, CRYPTO_E_AUDIT_FIELD, 0, "%s: %zu items (cap %u)", field, n,
                           AUDIT_LIST_MAX);
    for (size_t i = 0; i < n; i++)
        if (v[i] == NULL || (hex && !hex_is_sha256(v[i])))
            return crypto_fail(d, CRYPTO_E_AUDIT_FIELD, 0, "%s[%zu]: %s", field, i,
                               hex ? "want 64 lowercase hex digits" : "missing");
    return 0;
}

int audit_append_gate(struct audit *a, uint64_t ts_ms, const struct audit_gate *g,
                      uint64_t now_ms, uint64_t *seq, struct crypto_diag *d)
{
    int rc;

    if ((rc = need_hex("adapter", g->adapter, d)) != 0 ||
        (rc = need_str("domain", g->domain, d)) != 0 ||
        (rc = need_strs("reasons", g->reasons, g->n_reasons, false, d)) != 0)
        return rc;
    begin(a, "gate", ts_ms);
    put_str(a, "adapter", g->adapter);
    put_str(a, "domain", g->domain);
    put_str(a, "verdict", g->accept ? "accept" : "reject");
    put_strs(a, "reasons", g->reasons, g->n_reasons);
    return finish(a, now_ms, seq, d);
}

/* The compact VOTE.json object (vote.h's members and order). */
static int put_vote(struct audit *a, const struct vote *v, struct crypto_diag *d)
{
    char *b64;

    if (v->form != VOTE_FORM_PLORAD || v->sig == NULL || v->sig_len == 0 ||
        !hex_is_sha256(v->signer) || !hex_is_sha256(v->adapter) || v->ts < 0)
        return crypto_fail(d, CRYPTO_E_AUDIT_FIELD, 0, "vote: want a signed plorad vote");
    if ((b64 = malloc(b64_encoded_len(v->sig_len) + 1)) == NULL)
        return CRYPTO_E_NOMEM;
    b64_encode(v->sig, v->sig_len, b64);
    audit_buf_key(&a->line, "vote");
    audit_buf_raw(&a->line, "{", 1);
    put_str(a, "type", VOTE_TYPE);
    audit_buf_key(&a->line, "v");
    audit_buf_u64(&a->line, VOTE_VERSION);
    put_str(a, "adapter", v->adapter);
    put_str(a, "domain", v->domain);
    put_str(a, "verdict", vote_verdict_name(v->verdict));
    put_strs(a, "reasons", (const char *const *)v->reasons, v->n_reasons);
    audit_buf_key(&a->line, "ts");
    audit_buf_u64(&a->line, (uint64_t)v->ts);
    put_str(a, "signer", v->signer);
    put_str(a, "algo", v->algo);
    put_str(a, "sig_b64", b64);
    audit_buf_raw(&a->line, "}", 1);
    free(b64);
    return 0;
}

int audit_append_vote(struct audit *a, uint64_t ts_ms, const struct vote *v, uint64_t now_ms,
                      uint64_t *seq, struct crypto_diag *d)
{
    int rc;

    begin(a, "vote", ts_ms);
    if ((rc = put_vote(a, v, d)) != 0)
        return rc;
    return finish(a, now_ms, seq, d);
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

int audit_append_commit(struct audit *a, uint64_t ts_ms, const struct audit_commit *c,
                        uint64_t now_ms, uint64_t *seq, struct crypto_diag *d)
{
    const char **sorted = NULL;
    int rc;

    if ((rc = need_hex("adapter", c->adapter, d)) != 0 ||
        (rc = need_str("domain", c->domain, d)) != 0 ||
        (rc = need_strs("signers", c->signers, c->n_signers, true, d)) != 0)
        return rc;
    if (c->quorum == 0 || c->n_signers < c->quorum)
        return crypto_fail(d, CRYPTO_E_AUDIT_FIELD, 0, "commit: quorum %u with %zu signers",
                           c->quorum, c->n_signers);
    if ((sorted = malloc((c->n_signers + 1) * sizeof(*sorted))) == NULL)
        return CRYPTO_E_NOMEM;
    memcpy(sorted, c->signers, c->n_signers * sizeof(*sorted));
    qsort(sorted, c->n_signers, sizeof(*sorted), cmp_str);
    for (size_t i = 1; i < c->n_signers && rc == 0; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            rc = crypto_fail(d, CRYPTO_E_AUDIT_FIELD, 0, "signers: %s listed twice", sorted[i]);
    if (rc == 0) {
        begin(a, "commit", ts_ms);
        put_str(a, "adapter", c->adapter);
        put_str(a, "domain", c->domain);
        audit_buf_key(&a->line, "quorum");
        audit_buf_u64(&a->line, c->quorum);
        put_strs(a, "signers", sorted, c->n_signers);
        rc = finish(a, now_ms, seq, d);
    }
    free(sorted);
    return rc;
}

static void put_num(struct audit *a, const char *key, double v)
{
    audit_buf_key(&a->line, key);
    audit_buf_double(&a->line, v);
}

int audit_append_merge(struct audit *a, uint64_t ts_ms, const struct audit_merge *m,
                       uint64_t now_ms, uint64_t *seq, struct crypto_diag *d)
{
    int rc;

    if ((rc = need_hex("output", m->output, d)) != 0 ||
        (rc = need_hex("certificate", m->certificate, d)) != 0 ||
        (rc = need_strs("inputs", m->inputs, m->n_inputs, true, d)) != 0)
        return rc;
    if (m->n_inputs == 0 || m->weights == NULL)
        return crypto_fail(d, CRYPTO_E_AUDIT_FIELD, 0, "merge: needs inputs and their weights");
    begin(a, "merge", ts_ms);
    put_str(a, "output", m->output);
    put_strs(a, "inputs", m->inputs, m->n_inputs);
    audit_buf_key(&a->line, "weights");
    audit_buf_raw(&a->line, "[", 1);
    for (size_t i = 0; i < m->n_inputs; i++) {
        if (i > 0)
            audit_buf_raw(&a->line, ", ", 2);
        audit_buf_double(&a->line, m->weights[i]);
    }
    audit_buf_raw(&a->line, "]", 1);
    audit_buf_key(&a->line, "rank");
    audit_buf_u64(&a->line, m->rank);
    put_num(a, "tau", m->tau);
    put_num(a, "frob_merged", m->frob_merged);
    put_num(a, "frob_out", m->frob_out);
    put_num(a, "dropped_energy", m->dropped_energy);
    put_num(a, "kld_bound", m->kld_bound);
    put_str(a, "certificate", m->certificate);
    return finish(a, now_ms, seq, d);
}

int audit_append_checkpoint(struct audit *a, uint64_t ts_ms, const struct key *k,
                            uint64_t now_ms, uint64_t *seq, struct crypto_diag *d)
{
    char head[SHA256_HEX_LEN + 1], msg[AUDIT_CKPT_MSG_MAX], *b64 = NULL;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    uint64_t count = audit_head(a, head);
    int n, rc;

    if ((n = audit_checkpoint_msg(count, head, ts_ms, key_id(k), msg)) < 0)
        return crypto_fail(d, n, 0, "checkpoint: bad head or key id");
    if ((rc = sig_sign(k, msg, (size_t)n, &sig, &sig_len, d)) != 0)
        goto out;
    if ((b64 = malloc(b64_encoded_len(sig_len) + 1)) == NULL) {
        rc = CRYPTO_E_NOMEM;
        goto out;
    }
    b64_encode(sig, sig_len, b64);
    begin(a, "checkpoint", ts_ms);
    audit_buf_key(&a->line, "count");
    audit_buf_u64(&a->line, count);
    put_str(a, "head", head);
    put_str(a, "signer", key_id(k));
    put_str(a, "sig", b64);
    rc = finish(a, now_ms, seq, d);
out:
    free(sig);
    free(b64);
    return rc;
}
