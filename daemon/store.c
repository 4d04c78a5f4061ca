/* daemon/store.c: the content-addressed adapter store (see store.h).
 *
 * The object keeps one slot per id (whole or partial) and, for a partial
 * being filled, one cached write fd, so a transfer costs one pwrite per
 * chunk. Names seen on disk or from peers go through store_id_ok /
 * store_name_ok before any path is built from them; every path is built by
 * path_fmt, which refuses truncation.
 *
 * Hashing as it arrives: while a partial grows contiguously from byte 0
 * through store_write in this process, its slot keeps a hash-behind thread
 * (hashbehind.h) that reads back and hashes exactly the bytes written, in
 * order, on another core. store_release closes it and leaves it in a small
 * process-wide table (a mutex guards it: the worker's store_verify takes it),
 * keyed by the file's path and stamped with its inode, size and mtime;
 * store_verify then waits for that digest (on the worker thread) instead of
 * reading the file again. Anything that could make the file differ from the
 * bytes hashed -- a rewrite of held bytes, a failed write, a restart (the
 * prefix on disk was never hashed here), a changed inode/size/mtime -- cancels
 * the thread or drops the note, and store_verify hashes the whole file as
 * before; so does a transfer that starts while HASHBEHIND_MAX threads run.
 * Flush behind: while the file grows, every FLUSH_STEP bytes a detached
 * thread fdatasyncs a dup of its fd (at most FLUSHES_MAX at once in the
 * process, else that step is skipped). Durability still comes from
 * publish_dir's fsync before the rename; flushing behind only makes that
 * fsync wait for the tail instead of the whole adapter (on a virtio disk
 * with a write-back cache the final flush of 256 MiB costs ~125 ms, and
 * sync_file_range does not start it).
 *
 * Temp names: everything the store writes before it is complete is named
 * ".tmp-*" (files inside partial/<id>/, import staging dirs inside partial/),
 * and store_open deletes any such name it finds. meta.json is written last
 * in a partial, so a partial without a valid meta.json is debris.
 */
#define _GNU_SOURCE  /* copy_file_range */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "hashbehind.h"
#include "sha256.h"

#define SIZE_MAX_ADAPTER (1ull << 40)   /* bytes: 1 TiB, store_begin's cap */
#define META_MAX 4096u                  /* bytes: a meta.json is ~100 */
#define READ_META_MAX (256u << 10)      /* bytes: store_read_meta's cap */
#define COPY_BUF (1u << 20)             /* bytes per read/write when copying */
#define TMP_PREFIX ".tmp-"
#define F_ST "adapter_model.safetensors"
#define F_CFG "adapter_config.json"
#define F_MAN "plora.yml"
#define F_META "meta.json"
#define FLUSH_STEP (32u << 20)          /* bytes: a flush behind every 32 MiB written */
#define FLUSHES_MAX 2                   /* flush-behind threads at once, process-wide */
#define NOTES 16u                       /* digests waiting for their store_verify */

struct slot {
    struct store_entry e;
    int fd;  /* partial only: cached O_WRONLY fd of its safetensors, or -1 */
    bool noted;             /* store_release left a note for this partial */
    struct hashbehind *hb;  /* hashing bytes [0, e.stored) as written, or NULL */
    uint64_t wb;            /* bytes [0, wb) given to a flush behind (or held at load) */
};

/* A digest being computed while writing, for store_verify (see the top). */
struct note {
    char path[PATH_MAX];    /* "" = free */
    struct hashbehind *hb;  /* owned: closed, hashing [0, size) */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    uint64_t age;           /* the oldest is replaced when the table is full */
};

static atomic_int flushes;              /* flush-behind threads running */
static atomic_uint_fast64_t verified_behind;   /* store_verify_behind_count */
static pthread_mutex_t notes_mu = PTHREAD_MUTEX_INITIALIZER;
static struct note notes[NOTES];
static uint64_t notes_clock;

struct store {
    char *dir;
    struct slot *v;
    size_t n, cap;
    char **repairs;  /* what store_open/store_refresh fixed, for the node to log */
    size_t nrep;
};

/* ---- names and paths ---- */

bool store_id_ok(const char *s)
{
    size_t i;

    if (s == NULL)
        return false;
    for (i = 0; i < STORE_ID_HEX; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;  /* also stops at a NUL before 64 */
    return s[STORE_ID_HEX] == '\0';
}

static bool name_char(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return true;
    return !first && (c == '.' || c == '_' || c == '-');
}

bool store_name_ok(const char *s)
{
    size_t i;

    if (s == NULL || s[0] == '\0')
        return false;
    for (i = 0; s[i] != '\0'; i++)
        if (i >= STORE_DOMAIN_MAX || !name_char(s[i], i == 0))
            return false;
    return true;
}

/* snprintf into buf; truncation is DMN_E_ARG, never a shorter path. */
static int path_fmt(char *buf, size_t cap, struct dmn_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int path_fmt(char *buf, size_t cap, struct dmn_diag *d, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        return dmn_fail(d, DMN_E_ARG, "path longer than %zu bytes (format \"%s\")", cap, fmt);
    return 0;
}

/* Printable copy of a name read from disk, for messages. */
static const char *printable(char out[80], const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i < 75; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '.';
    strcpy(out + i, s[i] != '\0' ? "..." : "");
    return out;
}

/* Disk full and file-size limits are NOSPACE; any other errno is IO. */
static int errno_code(int e)
{
    return (e == ENOSPC || e == EDQUOT || e == EFBIG) ? DMN_E_NOSPACE : DMN_E_IO;
}

static int sys_fail(struct dmn_diag *d, int code, const char *path, const char *what, int e)
{
    return dmn_fail(d, code, "%s: %s: %s", path, what, strerror(e));
}

/* ---- file primitives ---- */

static int fsync_path(const char *path, struct dmn_diag *d)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

    if (fd < 0)
        return sys_fail(d, DMN_E_IO, path, "cannot open to fsync", errno);
    if (fsync(fd) != 0)
        rc = sys_fail(d, errno_code(errno), path, "fsync failed", errno);
    close(fd);
    return rc;
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    ssize_t w;

    while (n > 0) {
        if ((w = write(fd, b, n)) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* dir/name = p[0..n) crash-safely: dir/.tmp-name, fsync, rename, fsync dir.
 * Returns 0, DMN_E_ARG, DMN_E_IO, DMN_E_NOSPACE; on failure dir/name is
 * untouched and the temp file gone. */
static int write_atomic(const char *dir, const char *name, const void *p, size_t n,
                        struct dmn_diag *d)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    int fd = -1, rc;

    if ((rc = path_fmt(tmp, sizeof(tmp), d, "%s/" TMP_PREFIX "%s", dir, name)) != 0 ||
        (rc = path_fmt(dst, sizeof(dst), d, "%s/%s", dir, name)) != 0)
        return rc;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return sys_fail(d, errno_code(errno), tmp, "cannot create", errno);
    if (write_all(fd, p, n) != 0)
        rc = sys_fail(d, errno_code(errno), tmp, "write failed", errno);
    else if (fsync(fd) != 0)
        rc = sys_fail(d, errno_code(errno), tmp, "fsync failed", errno);
    if (close(fd) != 0 && rc == 0)
        rc = sys_fail(d, errno_code(errno), tmp, "close failed", errno);
    if (rc == 0 && rename(tmp, dst) != 0)
        rc = sys_fail(d, DMN_E_IO, dst, "cannot rename the temp file over", errno);
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    return fsync_path(dir, d);
}

/* Remove `name` under the directory fd `parent`: a file, a symlink, or a
 * directory tree at most `depth` levels deep. Returns 0 or -1 (errno). */
static int rm_at(int parent, const char *name, int depth)
{
    struct dirent *de;
    DIR *dir;
    int fd, rc = 0;

    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return (errno == ENOTDIR || errno == ELOOP) ? unlinkat(parent, name, 0)
               : (errno == ENOENT ? 0 : -1);
    if ((dir = fdopendir(fd)) == NULL) {
        close(fd);
        return -1;
    }
    while (rc == 0 && (de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (depth <= 0)
            rc = unlinkat(dirfd(dir), de->d_name, 0);
        else
            rc = rm_at(dirfd(dir), de->d_name, depth - 1);
    }
    closedir(dir);
    return rc == 0 ? unlinkat(parent, name, AT_REMOVEDIR) : rc;
}

static int rm_path(const char *path, struct dmn_diag *d)
{
    if (rm_at(AT_FDCWD, path, 2) != 0 && errno != ENOENT)
        return sys_fail(d, DMN_E_IO, path, "cannot remove", errno);
    return 0;
}

static int mkdir_ok(const char *path, struct dmn_diag *d)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return sys_fail(d, errno_code(errno), path, "cannot create directory", errno);
    return 0;
}

/* Size of a regular file: 1 = exists (*sz set), 0 = absent, -1 = not a
 * regular file or stat failed. */
static int file_size(const char *path, uint64_t *sz)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISREG(st.st_mode))
        return -1;
    *sz = (uint64_t)st.st_size;
    return 1;
}

/* ---- meta.json ---- */

/* Read dir/meta.json: {"domain": D, "size": N}, exactly those members.
 * Returns 0 or -1 (missing, unreadable or invalid). */
static int meta_read(const char *dir, char domain[STORE_DOMAIN_MAX + 1], uint64_t *size)
{
    char path[PATH_MAX], buf[META_MAX];
    json_t *o = NULL, *dm, *sz;
    ssize_t n = -1;
    int fd, rc = -1;

    if (path_fmt(path, sizeof(path), NULL, "%s/" F_META, dir) != 0 ||
        (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return -1;
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n <= 0 || (size_t)n >= sizeof(buf) ||
        (o = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL)) == NULL)
        goto out;
    dm = json_object_get(o, "domain");
    sz = json_object_get(o, "size");
    if (!json_is_object(o) || json_object_size(o) != 2 || !json_is_string(dm) ||
        !store_name_ok(json_string_value(dm)) || !json_is_integer(sz) ||
        json_integer_value(sz) <= 0 || (uint64_t)json_integer_value(sz) > SIZE_MAX_ADAPTER)
        goto out;
    strcpy(domain, json_string_value(dm));  /* store_name_ok bounds its length */
    *size = (uint64_t)json_integer_value(sz);
    rc = 0;
out:
    json_decref(o);
    return rc;
}

static int meta_write(const char *dir, const char *domain, uint64_t size, struct dmn_diag *d)
{
    json_t *o = json_pack("{s:s, s:I}", "domain", domain, "size", (json_int_t)size);
    char *txt = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    int rc;

    if (txt == NULL)
        rc = dmn_fail(d, DMN_E_NOMEM, "%s/" F_META ": cannot encode", dir);
    else
        rc = write_atomic(dir, F_META, txt, strlen(txt), d);
    free(txt);
    json_decref(o);
    return rc;
}

/* ---- digests computed while writing ---- */

/* Take the note at i out of the table (notes_mu held); its hasher is the caller's. */
static struct hashbehind *note_clear(size_t i)
{
    struct hashbehind *hb = notes[i].hb;

    notes[i].path[0] = '\0';
    notes[i].hb = NULL;
    return hb;
}

/* Drop the note of `path` if any (its hasher is cancelled). */
static void note_drop(const char *path)
{
    struct hashbehind *hb = NULL;

    pthread_mutex_lock(&notes_mu);
    for (size_t i = 0; i < NOTES; i++)
        if (notes[i].path[0] != '\0' && strcmp(notes[i].path, path) == 0)
            hb = note_clear(i);
    pthread_mutex_unlock(&notes_mu);
    hashbehind_cancel(hb);   /* outside the mutex: it waits for one step */
}

/* Drop every note under `dir`/ (store_free). */
static void note_drop_dir(const char *dir)
{
    struct hashbehind *hb[NOTES];
    size_t k = 0, len = strlen(dir);

    pthread_mutex_lock(&notes_mu);
    for (size_t i = 0; i < NOTES; i++)
        if (notes[i].path[0] != '\0' && strncmp(notes[i].path, dir, len) == 0 &&
            notes[i].path[len] == '/')
            hb[k++] = note_clear(i);
    pthread_mutex_unlock(&notes_mu);
    while (k > 0)
        hashbehind_cancel(hb[--k]);
}

/* Leave hb (closed, the caller's until now) for `path`, stamped with st;
 * replaces the oldest note when the table is full. */
static void note_put(const char *path, struct hashbehind *hb, const struct stat *st)
{
    struct note *slot = &notes[0];
    struct hashbehind *old;

    note_drop(path);
    pthread_mutex_lock(&notes_mu);
    for (size_t i = 0; i < NOTES; i++)
        if (notes[i].path[0] == '\0' || notes[i].age < slot->age) {
            slot = &notes[i];
            if (notes[i].path[0] == '\0')
                break;
        }
    old = note_clear((size_t)(slot - notes));
    snprintf(slot->path, sizeof(slot->path), "%s", path);
    slot->hb = hb;
    slot->dev = st->st_dev;
    slot->ino = st->st_ino;
    slot->size = st->st_size;
    slot->mtime = st->st_mtim;
    slot->age = ++notes_clock;
    pthread_mutex_unlock(&notes_mu);
    hashbehind_cancel(old);
}

/* Take (and remove) the note of `path` into hex if the file is still the
 * one hashed -- same device, inode, size and mtime -- and its hasher
 * covered it all (waits for the hasher). Returns true if taken. */
static bool note_take(const char *path, char hex[STORE_ID_HEX + 1])
{
    struct note n = { .path = "" };
    uint8_t md[SHA256_LEN];
    struct stat st;

    pthread_mutex_lock(&notes_mu);
    for (size_t i = 0; i < NOTES; i++)
        if (notes[i].path[0] != '\0' && strcmp(notes[i].path, path) == 0) {
            n = notes[i];
            note_clear(i);
        }
    pthread_mutex_unlock(&notes_mu);
    if (n.path[0] == '\0')
        return false;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != n.dev ||
        st.st_ino != n.ino || st.st_size != n.size || st.st_mtim.tv_sec != n.mtime.tv_sec ||
        st.st_mtim.tv_nsec != n.mtime.tv_nsec) {
        hashbehind_cancel(n.hb);
        return false;
    }
    if (hashbehind_finish(n.hb, (uint64_t)n.size, md) != 0)
        return false;
    sha256_hex(md, hex);
    atomic_fetch_add(&verified_behind, 1);
    return true;
}

uint64_t store_verify_behind_count(void)
{
    return atomic_load(&verified_behind);
}

/* ---- slots ---- */

/* DIR/partial/<id>/adapter_model.safetensors of slot sl into path[PATH_MAX];
 * 0 or path_fmt's code (d may be NULL). */
static int slot_st_path(const struct store *s, const struct slot *sl, char *path,
                        struct dmn_diag *d)
{
    return path_fmt(path, PATH_MAX, d, "%s/partial/%s/" F_ST, s->dir, sl->e.id);
}

static void slot_unnote(const struct store *s, struct slot *sl)
{
    char path[PATH_MAX];

    if (sl->noted && slot_st_path(s, sl, path, NULL) == 0)
        note_drop(path);
    sl->noted = false;
}

static struct slot *slot_find(const struct store *s, const char *id)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        if (strcmp(s->v[i].e.id, id) == 0)
            return &s->v[i];
    return NULL;
}

static void slot_drop(struct store *s, const char *id)
{
    struct slot *sl = slot_find(s, id);

    if (sl == NULL)
        return;
    if (sl->fd >= 0)
        close(sl->fd);
    slot_unnote(s, sl);
    hashbehind_cancel(sl->hb);
    *sl = s->v[--s->n];  /* order is restored by store_list's sort */
}

static int slot_add(struct store *s, const struct store_entry *e, struct dmn_diag *d)
{
    struct slot *v;

    slot_drop(s, e->id);
    if (s->n == s->cap) {
        size_t cap = s->cap != 0 ? s->cap * 2 : 16;
        if ((v = realloc(s->v, cap * sizeof(*v))) == NULL)
            return dmn_fail(d, DMN_E_NOMEM, "store table of %zu entries", cap);
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n].e = *e;
    s->v[s->n].fd = -1;
    s->v[s->n].hb = NULL;
    s->v[s->n].noted = false;
    s->v[s->n].wb = e->stored;
    s->n++;
    return 0;
}

static int repair_note(struct store *s, struct dmn_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int repair_note(struct store *s, struct dmn_diag *d, const char *fmt, ...)
{
    char line[768], **v;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if ((v = realloc(s->repairs, (s->nrep + 1) * sizeof(*v))) == NULL)
        return dmn_fail(d, DMN_E_NOMEM, "store repair notes");
    s->repairs = v;
    if ((v[s->nrep] = strdup(line)) == NULL)
        return dmn_fail(d, DMN_E_NOMEM, "store repair notes");
    s->nrep++;
    return 0;
}

/* ---- loading state from disk ---- */

/* Remove ".tmp-*" names inside dir; 1 if dir holds a name a partial or an
 * adapter may not hold (the directory is then inconsistent), else 0. */
static int clean_dir(const char *path)
{
    struct dirent *de;
    DIR *dir = opendir(path);
    int bad = 0;

    if (dir == NULL)
        return 1;
    while ((de = readdir(dir)) != NULL) {
        const char *nm = de->d_name;
        if (strncmp(nm, TMP_PREFIX, strlen(TMP_PREFIX)) == 0)
            bad |= rm_at(dirfd(dir), nm, 0) != 0;
        else if (strcmp(nm, ".") != 0 && strcmp(nm, "..") != 0 && strcmp(nm, F_ST) != 0 &&
                 strcmp(nm, F_CFG) != 0 && strcmp(nm, F_MAN) != 0 && strcmp(nm, F_META) != 0)
            bad = 1;
    }
    closedir(dir);
    return bad;
}

/* Optional files, when present, must be regular files. */
static bool extras_ok(const char *dir)
{
    static const char *const names[] = { F_CFG, F_MAN };
    char path[PATH_MAX];
    uint64_t sz;
    size_t i;

    for (i = 0; i < 2; i++)
        if (path_fmt(path, sizeof(path), NULL, "%s/%s", dir, names[i]) != 0 ||
            file_size(path, &sz) < 0)
            return false;
    return true;
}

/* Move a damaged adapters/<id> to DATA/quarantine/<id>.<k> so it is never
 * served, and note why. Returns 0, DMN_E_IO, DMN_E_ARG, DMN_E_NOMEM. */
static int quarantine(struct store *s, const char *id, const char *src, const char *why,
                      struct dmn_diag *d)
{
    char dst[PATH_MAX];
    int rc, k;

    if ((rc = path_fmt(dst, sizeof(dst), d, "%s/quarantine", s->dir)) != 0 ||
        (rc = mkdir_ok(dst, d)) != 0)
        return rc;
    for (k = 0; k < 1000; k++) {
        if ((rc = path_fmt(dst, sizeof(dst), d, "%s/quarantine/%s.%d", s->dir, id, k)) != 0)
            return rc;
        if (access(dst, F_OK) != 0 && errno == ENOENT)
            break;
    }
    if (k == 1000 || rename(src, dst) != 0)
        return sys_fail(d, DMN_E_IO, src, "cannot move the damaged adapter aside", errno);
    return repair_note(s, d, "%s: %s; moved to %s", src, why, dst);
}

/* adapters/<id>: a whole slot if consistent, else quarantined. */
static int load_whole(struct store *s, const char *id, const char *dir, struct dmn_diag *d)
{
    struct store_entry e = { .whole = true };
    char path[PATH_MAX], why[160] = "";
    uint64_t have = 0;
    int rc, st;

    if ((rc = path_fmt(path, sizeof(path), d, "%s/" F_ST, dir)) != 0)
        return rc;
    if (clean_dir(dir) != 0)
        snprintf(why, sizeof(why), "not a directory, or holds files the store did not write");
    else if (meta_read(dir, e.domain, &e.size) != 0)
        snprintf(why, sizeof(why), F_META " missing or invalid");
    else if ((st = file_size(path, &have)) != 1 || have != e.size)
        snprintf(why, sizeof(why), F_ST " is %" PRIu64 " bytes (%s), " F_META " says %" PRIu64,
                 have, st == 1 ? "present" : "missing", e.size);
    else if (!extras_ok(dir))
        snprintf(why, sizeof(why), F_CFG " or " F_MAN " is not a regular file");
    if (why[0] != '\0')
        return quarantine(s, id, dir, why, d);
    memcpy(e.id, id, sizeof(e.id));
    e.stored = e.size;
    return slot_add(s, &e, d);
}

/* partial/<id>: a partial slot (stored = file size) if consistent, else removed. */
static int load_partial(struct store *s, const char *id, const char *dir, struct dmn_diag *d)
{
    struct store_entry e = { .whole = false };
    char path[PATH_MAX];
    int rc, st;

    if ((rc = path_fmt(path, sizeof(path), d, "%s/" F_ST, dir)) != 0)
        return rc;
    if (clean_dir(dir) != 0 || meta_read(dir, e.domain, &e.size) != 0 ||
        (st = file_size(path, &e.stored)) < 0 || (st == 1 && e.stored > e.size) ||
        !extras_ok(dir) || slot_find(s, id) != NULL)  /* already whole: stale */
        return rm_path(dir, d);
    if (st == 0)
        e.stored = 0;
    memcpy(e.id, id, sizeof(e.id));
    return slot_add(s, &e, d);
}

/* One pass over DATA/<sub>/ (sub = "adapters" or "partial"). */
static int scan(struct store *s, const char *sub, struct dmn_diag *d)
{
    char dir[PATH_MAX], path[PATH_MAX], pr[80];
    struct dirent *de;
    DIR *dh = NULL;
    int rc;

    if ((rc = path_fmt(dir, sizeof(dir), d, "%s/%s", s->dir, sub)) != 0)
        return rc;
    if ((dh = opendir(dir)) == NULL)
        return sys_fail(d, DMN_E_IO, dir, "cannot list", errno);
    while (rc == 0 && (de = readdir(dh)) != NULL) {
        const char *nm = de->d_name;
        if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0)
            continue;
        if (strncmp(nm, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
            if (rm_at(dirfd(dh), nm, 2) != 0)
                rc = sys_fail(d, DMN_E_IO, dir, "cannot remove a leftover temp entry", errno);
            continue;
        }
        if (!store_id_ok(nm)) {
            rc = dmn_fail(d, DMN_E_STORE_LAYOUT, "%s/%s: not a 64-lowercase-hex adapter id; "
                          "move it out of the store", dir, printable(pr, nm));
            break;
        }
        if ((rc = path_fmt(path, sizeof(path), d, "%s/%s", dir, nm)) != 0)
            break;
        rc = sub[0] == 'a' ? load_whole(s, nm, path, d) : load_partial(s, nm, path, d);
    }
    closedir(dh);
    return rc;
}

static int make_layout(const char *data_dir, struct dmn_diag *d)
{
    static const char *const subs[] = { "adapters", "partial", "merged" };
    char path[PATH_MAX];
    size_t i;
    int rc;

    if ((rc = mkdir_ok(data_dir, d)) != 0)
        return rc;
    for (i = 0; i < 3; i++)
        if ((rc = path_fmt(path, sizeof(path), d, "%s/%s", data_dir, subs[i])) != 0 ||
            (rc = mkdir_ok(path, d)) != 0)
            return rc;
    return 0;
}

int store_open(struct store **out, const char *data_dir, struct dmn_diag *d)
{
    struct store *s = NULL;
    int rc;

    *out = NULL;
    if (data_dir == NULL || data_dir[0] == '\0')
        return dmn_fail(d, DMN_E_ARG, "store: empty data directory");
    if ((s = calloc(1, sizeof(*s))) == NULL || (s->dir = strdup(data_dir)) == NULL) {
        rc = dmn_fail(d, DMN_E_NOMEM, "store object");
        goto out;
    }
    if ((rc = make_layout(data_dir, d)) != 0 || (rc = scan(s, "adapters", d)) != 0 ||
        (rc = scan(s, "partial", d)) != 0)
        goto out;
    *out = s;
    s = NULL;
out:
    store_free(s);
    return rc;
}

void store_free(struct store *s)
{
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < s->n; i++) {
        if (s->v[i].fd >= 0)
            close(s->v[i].fd);
        hashbehind_cancel(s->v[i].hb);
    }
    note_drop_dir(s->dir);
    for (i = 0; i < s->nrep; i++)
        free(s->repairs[i]);
    free(s->repairs);
    free(s->v);
    free(s->dir);
    free(s);
}

const char *store_dir(const struct store *s)
{
    return s->dir;
}

size_t store_repair_count(const struct store *s)
{
    return s->nrep;
}

const char *store_repair_msg(const struct store *s, size_t i)
{
    return i < s->nrep ? s->repairs[i] : NULL;
}

/* ---- queries ---- */

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct store_entry *)a)->id, ((const struct store_entry *)b)->id);
}

int store_list(const struct store *s, struct store_entry **out, size_t *n, struct dmn_diag *d)
{
    struct store_entry *v;
    size_t i;

    *out = NULL;
    *n = 0;
    if ((v = malloc((s->n != 0 ? s->n : 1) * sizeof(*v))) == NULL)
        return dmn_fail(d, DMN_E_NOMEM, "store list of %zu entries", s->n);
    for (i = 0; i < s->n; i++)
        v[i] = s->v[i].e;
    qsort(v, s->n, sizeof(*v), entry_cmp);
    *out = v;
    *n = s->n;
    return 0;
}

int store_get(const struct store *s, const char *id, struct store_entry *e, struct dmn_diag *d)
{
    const struct slot *sl;

    if (!store_id_ok(id))
        return dmn_fail(d, DMN_E_NAME, "adapter id is not 64 lowercase hex");
    if ((sl = slot_find(s, id)) == NULL)
        return dmn_fail(d, DMN_E_NOT_FOUND, "adapter %s is not in the store", id);
    *e = sl->e;
    return 0;
}

int store_adapter_dir(const struct store *s, const char *id, char *buf, size_t cap)
{
    if (!store_id_ok(id))
        return DMN_E_NAME;
    return path_fmt(buf, cap, NULL, "%s/adapters/%s", s->dir, id);
}

uint64_t store_resume_offset(const struct store *s, const char *id)
{
    const struct slot *sl = store_id_ok(id) ? slot_find(s, id) : NULL;

    return sl != NULL && !sl->e.whole ? sl->e.stored : 0;
}

/* ---- receiving ---- */

/* Create partial/<id>/ afresh: config, manifest, then meta.json last (its
 * presence makes the partial valid), and register the slot. */
static int partial_create(struct store *s, const struct store_entry *e, const void *config,
                          size_t config_len, const void *manifest, size_t manifest_len,
                          struct dmn_diag *d)
{
    char dir[PATH_MAX];
    int rc;

    slot_drop(s, e->id);  /* closes a cached fd on the old file */
    if ((rc = path_fmt(dir, sizeof(dir), d, "%s/partial/%s", s->dir, e->id)) != 0 ||
        (rc = rm_path(dir, d)) != 0 || (rc = mkdir_ok(dir, d)) != 0)
        return rc;
    if ((config_len > 0 && (rc = write_atomic(dir, F_CFG, config, config_len, d)) != 0) ||
        (manifest_len > 0 && (rc = write_atomic(dir, F_MAN, manifest, manifest_len, d)) != 0) ||
        (rc = meta_write(dir, e->domain, e->size, d)) != 0) {
        rm_path(dir, NULL);
        return rc;
    }
    return slot_add(s, e, d);
}

/* true iff DATA/<sub>/<id>[/<file>] is on disk: a worker may have deleted a
 * partial (hash mismatch) or imported the id since the table was read. */
static bool on_disk(const struct store *s, const char *sub, const char *id, const char *file)
{
    char path[PATH_MAX];

    return path_fmt(path, sizeof(path), NULL, "%s/%s/%s%s", s->dir, sub, id, file) == 0 &&
           access(path, F_OK) == 0;
}

int store_begin(struct store *s, const char *id, const char *domain, uint64_t size,
                const void *config, size_t config_len, const void *manifest,
                size_t manifest_len, struct dmn_diag *d)
{
    struct store_entry e = { .whole = false };
    const struct slot *sl;

    if (!store_id_ok(id))
        return dmn_fail(d, DMN_E_NAME, "adapter id is not 64 lowercase hex");
    if (!store_name_ok(domain))
        return dmn_fail(d, DMN_E_NAME, "adapter %s: domain is not [a-z0-9][a-z0-9._-]{0,63}", id);
    if (size == 0 || size > SIZE_MAX_ADAPTER)
        return dmn_fail(d, DMN_E_RANGE, "adapter %s: size %" PRIu64 " outside 1..2^40", id, size);
    if (config_len > READ_META_MAX || manifest_len > READ_META_MAX)
        return dmn_fail(d, DMN_E_RANGE, "adapter %s: config %zu or manifest %zu bytes, over %u",
                        id, config_len, manifest_len, READ_META_MAX);
    if (((sl = slot_find(s, id)) != NULL && sl->e.whole) || on_disk(s, "adapters", id, ""))
        return dmn_fail(d, DMN_E_EXISTS, "adapter %s is already stored", id);
    if (sl != NULL && sl->e.size == size && strcmp(sl->e.domain, domain) == 0 &&
        on_disk(s, "partial", id, "/" F_META))
        return 0;
    memcpy(e.id, id, sizeof(e.id));
    strcpy(e.domain, domain);
    e.size = size;
    return partial_create(s, &e, config, config_len, manifest, manifest_len, d);
}

static int open_partial_fd(struct store *s, struct slot *sl, struct dmn_diag *d)
{
    char path[PATH_MAX];
    int rc;

    if ((rc = slot_st_path(s, sl, path, d)) != 0)
        return rc;
    if ((sl->fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
        return sys_fail(d, errno_code(errno), path, "cannot open for writing", errno);
    return 0;
}

/* A failed write leaves the file at its old contiguous length. */
static int write_failed(struct store *s, struct slot *sl, uint64_t at, int e, struct dmn_diag *d)
{
    int rc = dmn_fail(d, errno_code(e), "%s/partial/%s/" F_ST ": write at byte %" PRIu64
                      " failed: %s", s->dir, sl->e.id, at, strerror(e));

    if (ftruncate(sl->fd, (off_t)sl->e.stored) != 0)
        dmn_fail(d, DMN_E_IO, "%s/partial/%s/" F_ST ": write at byte %" PRIu64 " failed (%s) "
                 "and truncating back to %" PRIu64 " failed too: %s", s->dir, sl->e.id, at,
                 strerror(e), sl->e.stored, strerror(errno));
    return rc;
}

/* Before writing [off, ...): a hasher runs only while every byte written
 * so far was advanced to it in order; a write at 0 into an empty partial
 * starts one, a rewrite of held bytes cancels it (verify then re-reads). */
static void hash_prepare(const struct store *s, struct slot *sl, uint64_t off)
{
    char path[PATH_MAX];

    if (off < sl->e.stored) {
        hashbehind_cancel(sl->hb);
        sl->hb = NULL;
    } else if (off == 0 && sl->hb == NULL && slot_st_path(s, sl, path, NULL) == 0) {
        sl->hb = hashbehind_start(path);
    }
}

static void *flush_main(void *arg)
{
    int fd = (int)(intptr_t)arg;

    (void)fdatasync(fd);   /* an error shows again at publish_dir's fsync */
    close(fd);
    atomic_fetch_sub(&flushes, 1);
    return NULL;
}

/* Every FLUSH_STEP bytes of growth: fdatasync a dup of the fd off the
 * caller's thread (see the top). Best effort: skipped when busy or failing. */
static void flush_behind(struct slot *sl)
{
    pthread_attr_t a;
    pthread_t th;
    int fd = -1;

    if (sl->e.stored - sl->wb < FLUSH_STEP)
        return;
    if (atomic_fetch_add(&flushes, 1) >= FLUSHES_MAX)
        goto undo;
    sl->wb = sl->e.stored;
    if ((fd = fcntl(sl->fd, F_DUPFD_CLOEXEC, 0)) < 0)
        goto undo;
    if (pthread_attr_init(&a) != 0)
        goto undo;
    if (pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED) == 0 &&
        pthread_create(&th, &a, flush_main, (void *)(intptr_t)fd) == 0) {
        pthread_attr_destroy(&a);
        return;
    }
    pthread_attr_destroy(&a);
undo:
    if (fd >= 0)
        close(fd);
    atomic_fetch_sub(&flushes, 1);
}

/* After a write that grew the contiguous prefix to sl->e.stored bytes:
 * let the hasher read them, flush behind. */
static void hash_feed(struct slot *sl)
{
    if (sl->hb != NULL)
        hashbehind_advance(sl->hb, sl->e.stored);
    flush_behind(sl);
}

int store_write(struct store *s, const char *id, uint64_t off, const void *p, size_t len,
                struct dmn_diag *d)
{
    struct slot *sl = store_id_ok(id) ? slot_find(s, id) : NULL;
    const uint8_t *b = p;
    uint64_t at = off;
    size_t left = len;
    ssize_t w;
    int rc;

    if (sl == NULL || sl->e.whole)
        return dmn_fail(d, DMN_E_NOT_FOUND, "no partial transfer for this id");
    if (off > sl->e.stored || len > sl->e.size - off || off > sl->e.size)
        return dmn_fail(d, DMN_E_RANGE, "adapter %s: write [%" PRIu64 ", +%zu) but %" PRIu64
                        " of %" PRIu64 " bytes held", id, off, len, sl->e.stored, sl->e.size);
    if (sl->fd < 0 && (rc = open_partial_fd(s, sl, d)) != 0)
        return rc;
    slot_unnote(s, sl);
    hash_prepare(s, sl, off);
    while (left > 0) {
        if ((w = pwrite(sl->fd, b, left, (off_t)at)) < 0) {
            if (errno == EINTR)
                continue;
            hashbehind_cancel(sl->hb);
            sl->hb = NULL;
            return write_failed(s, sl, at, errno, d);
        }
        b += w;
        at += (uint64_t)w;
        left -= (size_t)w;
    }
    if (at > sl->e.stored)
        sl->e.stored = at;
    hash_feed(sl);
    return 0;
}

/* A partial whose every byte went to its hasher in order: close the hasher
 * and leave it for store_verify, which waits for the digest. */
static void release_note(struct store *s, struct slot *sl)
{
    char path[PATH_MAX];
    struct stat st;

    if (sl->hb != NULL && sl->e.stored == sl->e.size && fstat(sl->fd, &st) == 0 &&
        (uint64_t)st.st_size == sl->e.size &&
        slot_st_path(s, sl, path, NULL) == 0) {
        hashbehind_close(sl->hb);
        note_put(path, sl->hb, &st);
        sl->noted = true;
    } else {
        hashbehind_cancel(sl->hb);
    }
    sl->hb = NULL;
}

void store_release(struct store *s, const char *id)
{
    struct slot *sl = store_id_ok(id) ? slot_find(s, id) : NULL;

    if (sl != NULL && sl->fd >= 0) {
        release_note(s, sl);
        close(sl->fd);
        sl->fd = -1;
    }
}

int store_discard(struct store *s, const char *id, struct dmn_diag *d)
{
    char dir[PATH_MAX];
    const struct slot *sl;
    int rc;

    if (!store_id_ok(id))
        return dmn_fail(d, DMN_E_NAME, "adapter id is not 64 lowercase hex");
    if ((sl = slot_find(s, id)) != NULL && !sl->e.whole)
        slot_drop(s, id);
    if ((rc = path_fmt(dir, sizeof(dir), d, "%s/partial/%s", s->dir, id)) != 0)
        return rc;
    return rm_path(dir, d);
}

int store_refresh(struct store *s, const char *id, struct dmn_diag *d)
{
    char dir[PATH_MAX];
    int rc;

    if (!store_id_ok(id))
        return dmn_fail(d, DMN_E_NAME, "adapter id is not 64 lowercase hex");
    slot_drop(s, id);
    if ((rc = path_fmt(dir, sizeof(dir), d, "%s/adapters/%s", s->dir, id)) != 0)
        return rc;
    if (access(dir, F_OK) == 0 && (rc = load_whole(s, id, dir, d)) != 0)
        return rc;
    if ((rc = path_fmt(dir, sizeof(dir), d, "%s/partial/%s", s->dir, id)) != 0)
        return rc;
    return access(dir, F_OK) == 0 ? load_partial(s, id, dir, d) : 0;
}

/* ---- publishing a verified directory ---- */

/* fsync dir/<each present file> and dir, rename dir to DATA/adapters/<id>,
 * fsync adapters/ and the source's parent. An adapters/<id> that already
 * exists wins (same bytes by construction): dir is then removed. */
static int publish_dir(const char *data_dir, const char *dir, const char *id,
                       struct dmn_diag *d)
{
    static const char *const names[] = { F_ST, F_CFG, F_MAN, F_META };
    char path[PATH_MAX], dst[PATH_MAX];
    uint64_t sz;
    size_t i;
    int rc;

    for (i = 0; i < 4; i++)
        if ((rc = path_fmt(path, sizeof(path), d, "%s/%s", dir, names[i])) != 0 ||
            (file_size(path, &sz) == 1 && (rc = fsync_path(path, d)) != 0))
            return rc;
    if ((rc = fsync_path(dir, d)) != 0 ||
        (rc = path_fmt(dst, sizeof(dst), d, "%s/adapters/%s", data_dir, id)) != 0)
        return rc;
    if (rename(dir, dst) != 0) {
        if (errno == EEXIST || errno == ENOTEMPTY)
            return rm_path(dir, d);
        return sys_fail(d, DMN_E_IO, dst, "cannot rename the verified partial to", errno);
    }
    if ((rc = path_fmt(path, sizeof(path), d, "%s/adapters", data_dir)) != 0 ||
        (rc = fsync_path(path, d)) != 0 ||
        (rc = path_fmt(path, sizeof(path), d, "%s/partial", data_dir)) != 0)
        return rc;
    return fsync_path(path, d);
}

/* Hash dir/adapter_model.safetensors into hex (and its byte count). */
static int hash_file(const char *path, char hex[STORE_ID_HEX + 1], uint64_t *size,
                     struct dmn_diag *d)
{
    uint8_t md[SHA256_LEN];
    struct crypto_diag cd;
    int rc = sha256_file(path, md, size, &cd);

    if (rc == CRYPTO_E_NOMEM)
        return dmn_fail(d, DMN_E_NOMEM, "%s: hashing: %s", path, cd.msg);
    if (rc != 0)
        return dmn_fail(d, DMN_E_IO, "%s: hashing: %s", path, cd.msg);
    sha256_hex(md, hex);
    return 0;
}

int store_verify(const char *data_dir, const char *id, struct dmn_diag *d)
{
    char dir[PATH_MAX], path[PATH_MAX], hex[STORE_ID_HEX + 1], domain[STORE_DOMAIN_MAX + 1];
    uint64_t size, have = 0;
    int rc;

    if (!store_id_ok(id))
        return dmn_fail(d, DMN_E_NAME, "adapter id is not 64 lowercase hex");
    if ((rc = path_fmt(dir, sizeof(dir), d, "%s/partial/%s", data_dir, id)) != 0 ||
        (rc = path_fmt(path, sizeof(path), d, "%s/" F_ST, dir)) != 0)
        return rc;
    if (meta_read(dir, domain, &size) != 0)
        return dmn_fail(d, DMN_E_NOT_FOUND, "%s: no partial with a valid " F_META, dir);
    if (file_size(path, &have) < 0 || have != size)
        return dmn_fail(d, DMN_E_RANGE, "%s: %" PRIu64 " bytes held, %" PRIu64 " declared",
                        path, have, size);
    if (!note_take(path, hex) && (rc = hash_file(path, hex, NULL, d)) != 0)
        return rc;
    if (strcmp(hex, id) != 0) {
        rc = dmn_fail(d, DMN_E_HASH, "%s: expected sha256 %s, got %s; partial deleted", path,
                      id, hex);
        rm_path(dir, NULL);
        return rc;
    }
    return publish_dir(data_dir, dir, id, d);
}

/* ---- import ---- */

/* Read/write fallback of copy_in when copy_file_range can't (other file
 * systems): from both fds' current offsets to EOF. Returns 0 or -1 (errno). */
static ssize_t copy_loop(int in, int out)
{
    uint8_t *buf = malloc(COPY_BUF);
    ssize_t n = 0;

    if (buf == NULL)
        return -1;
    while ((n = read(in, buf, COPY_BUF)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || write_all(out, buf, (size_t)n) != 0) {
            n = -1;
            break;
        }
    }
    free(buf);
    return n;
}

/* Copy src to dst_dir/name (created 0600), fsync'd. Returns 0, DMN_E_IO
 * (names src or dst), DMN_E_NOSPACE, DMN_E_NOMEM; 1 if src is absent and
 * `optional`. */
static int copy_in(const char *src, const char *dst_dir, const char *name, bool optional,
                   struct dmn_diag *d)
{
    char dst[PATH_MAX];
    int in = -1, out = -1, rc;
    ssize_t n = 1;

    if ((rc = path_fmt(dst, sizeof(dst), d, "%s/%s", dst_dir, name)) != 0)
        return rc;
    if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
        return (optional && errno == ENOENT) ? 1 : sys_fail(d, DMN_E_IO, src, "cannot open", errno);
    if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
        rc = sys_fail(d, errno_code(errno), dst, "cannot create", errno);
        goto out;
    }
    while ((n = copy_file_range(in, NULL, out, NULL, COPY_BUF, 0)) > 0)
        ;
    if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP))
        n = copy_loop(in, out);
    if (n < 0)
        rc = sys_fail(d, errno_code(errno), dst, "copy failed", errno);
    else if (fsync(out) != 0)
        rc = sys_fail(d, errno_code(errno), dst, "fsync failed", errno);
out:
    if (out >= 0)
        close(out);
    close(in);
    return rc;
}

/* A staging dir name no other import (thread or process) uses. */
static int staging_dir(const char *data_dir, char *buf, size_t cap, struct dmn_diag *d)
{
    static atomic_uint seq;

    return path_fmt(buf, cap, d, "%s/partial/" TMP_PREFIX "import-%ld-%u", data_dir,
                    (long)getpid(), atomic_fetch_add(&seq, 1u));
}

/* Copy the three files of src_dir into dir, hash the copy (into hex) and
 * write meta.json. */
static int import_copy(const char *src_dir, const char *dir, const char *domain,
                       char hex[STORE_ID_HEX + 1], struct dmn_diag *d)
{
    char src[PATH_MAX], path[PATH_MAX];
    uint64_t size = 0;
    int rc;

    if ((rc = path_fmt(src, sizeof(src), d, "%s/" F_ST, src_dir)) != 0 ||
        (rc = copy_in(src, dir, F_ST, false, d)) != 0 ||
        (rc = path_fmt(src, sizeof(src), d, "%s/" F_CFG, src_dir)) != 0 ||
        (rc = copy_in(src, dir, F_CFG, false, d)) != 0 ||
        (rc = path_fmt(src, sizeof(src), d, "%s/" F_MAN, src_dir)) != 0 ||
        (rc = copy_in(src, dir, F_MAN, true, d)) < 0 ||
        (rc = path_fmt(path, sizeof(path), d, "%s/" F_ST, dir)) != 0 ||
        (rc = hash_file(path, hex, &size, d)) != 0)
        return rc;
    if (size == 0 || size > SIZE_MAX_ADAPTER)
        return dmn_fail(d, DMN_E_IO, "%s/" F_ST ": %" PRIu64 " bytes, outside 1..2^40",
                        src_dir, size);
    return meta_write(dir, domain, size, d);
}

int store_import(const char *data_dir, const char *src_dir, const char *domain,
                 char id_out[STORE_ID_HEX + 1], struct dmn_diag *d)
{
    char src[PATH_MAX], dst[PATH_MAX], dir[PATH_MAX] = "", hex[STORE_ID_HEX + 1];
    int rc;

    id_out[0] = '\0';
    if (!store_name_ok(domain))
        return dmn_fail(d, DMN_E_NAME, "%s: domain is not [a-z0-9][a-z0-9._-]{0,63}", src_dir);
    /* Hash the source first: an adapter already stored costs no copy. */
    if ((rc = path_fmt(src, sizeof(src), d, "%s/" F_ST, src_dir)) != 0 ||
        (rc = hash_file(src, id_out, NULL, d)) != 0 ||
        (rc = path_fmt(dst, sizeof(dst), d, "%s/adapters/%s", data_dir, id_out)) != 0)
        goto out;
    if (access(dst, F_OK) == 0)
        goto out;
    if ((rc = staging_dir(data_dir, dir, sizeof(dir), d)) != 0 || (rc = mkdir_ok(dir, d)) != 0 ||
        (rc = import_copy(src_dir, dir, domain, hex, d)) != 0)
        goto out;
    if (strcmp(hex, id_out) != 0) {
        rc = dmn_fail(d, DMN_E_IO, "%s: changed while being imported (sha256 %s, then %s)", src,
                      id_out, hex);
        goto out;
    }
    rc = publish_dir(data_dir, dir, id_out, d);
out:
    if (rc != 0 && dir[0] != '\0')
        rm_path(dir, NULL);
    if (rc != 0)
        id_out[0] = '\0';
    return rc;
}

/* ---- serving ---- */

int store_open_adapter_fd(const struct store *s, const char *id, struct dmn_diag *d)
{
    char path[PATH_MAX];
    const struct slot *sl;
    int fd, rc;

    if (!store_id_ok(id))
        return dmn_fail(d, DMN_E_NAME, "adapter id is not 64 lowercase hex");
    if ((sl = slot_find(s, id)) == NULL || !sl->e.whole)
        return dmn_fail(d, DMN_E_NOT_FOUND, "adapter %s is not whole in the store", id);
    if ((rc = path_fmt(path, sizeof(path), d, "%s/adapters/%s/" F_ST, s->dir, id)) != 0)
        return rc;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return sys_fail(d, DMN_E_IO, path, "cannot open", errno);
    return fd;
}

/* Read all of fd (size `n` from fstat) into a new buffer. */
static int read_whole(int fd, const char *path, size_t n, uint8_t **out, struct dmn_diag *d)
{
    uint8_t *buf = malloc(n != 0 ? n : 1);
    size_t got = 0;
    ssize_t r;

    if (buf == NULL)
        return dmn_fail(d, DMN_E_NOMEM, "%s: %zu bytes", path, n);
    while (got < n) {
        if ((r = read(fd, buf + got, n - got)) < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            return r == 0 ? dmn_fail(d, DMN_E_IO, "%s: shrank while being read", path)
                          : sys_fail(d, DMN_E_IO, path, "read failed", errno);
        }
        got += (size_t)r;
    }
    *out = buf;
    return 0;
}

int store_read_meta(const struct store *s, const char *id, const char *file, uint8_t **out,
                    size_t *len, struct dmn_diag *d)
{
    char path[PATH_MAX];
    struct stat st;
    int fd, rc;

    *out = NULL;
    *len = 0;
    if (!store_id_ok(id))
        return dmn_fail(d, DMN_E_NAME, "adapter id is not 64 lowercase hex");
    if (file == NULL || (strcmp(file, F_CFG) != 0 && strcmp(file, F_MAN) != 0))
        return dmn_fail(d, DMN_E_ARG, "store_read_meta: file must be " F_CFG " or " F_MAN);
    if ((rc = path_fmt(path, sizeof(path), d, "%s/adapters/%s/%s", s->dir, id, file)) != 0)
        return rc;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return errno == ENOENT ? 0 : sys_fail(d, DMN_E_IO, path, "cannot open", errno);
    if (fstat(fd, &st) != 0)
        rc = sys_fail(d, DMN_E_IO, path, "cannot stat", errno);
    else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > READ_META_MAX)
        rc = dmn_fail(d, DMN_E_RANGE, "%s: %jd bytes, over the %u-byte cap or not a file", path,
                      (intmax_t)st.st_size, READ_META_MAX);
    else if ((rc = read_whole(fd, path, (size_t)st.st_size, out, d)) == 0)
        *len = (size_t)st.st_size;
    close(fd);
    return rc;
}
