/* crypto/keyring.c: trusted public keys indexed by key id, plus revocations (format in keyring.h). */
#include "keyring.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hex.h"

struct keyring_entry {
    struct key *k;      /* public-only copy */
    char *source;       /* first file (or label) that carried it */
};

/* Both arrays sorted by key id (strcmp order of the hex), without duplicates. */
struct keyring {
    struct keyring_entry *e;
    size_t n, cap;
    char (*revoked)[KEY_ID_HEX_LEN + 1];
    size_t n_revoked, cap_revoked;
};

int keyring_new(struct keyring **out)
{
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? 0 : CRYPTO_E_NOMEM;
}

void keyring_free(struct keyring *kr)
{
    if (kr == NULL)
        return;
    for (size_t i = 0; i < kr->n; i++) {
        key_free(kr->e[i].k);
        free(kr->e[i].source);
    }
    free(kr->e);
    free(kr->revoked);
    free(kr);
}

/* Index of the entry with `id`, or where it would be inserted (*found false). */
static size_t entry_find(const struct keyring *kr, const char *id, bool *found)
{
    size_t lo = 0, hi = kr->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key_id(kr->e[mid].k), id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static size_t revoked_find(const struct keyring *kr, const char *id, bool *found)
{
    size_t lo = 0, hi = kr->n_revoked;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(kr->revoked[mid], id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* Array `p` of `size`-byte items with room for one more than `n`: `p`
 * itself, or a larger copy (*cap updated), or NULL (p left untouched). */
static void *grow(void *p, size_t n, size_t *cap, size_t size)
{
    size_t ncap;
    void *np;

    if (n < *cap)
        return p;
    ncap = *cap ? *cap * 2 : 16;
    if ((np = realloc(p, ncap * size)) == NULL)
        return NULL;
    *cap = ncap;
    return np;
}

int keyring_add(struct keyring *kr, const struct key *k, const char *source, bool *added,
                struct crypto_diag *d)
{
    struct keyring_entry ent = {0}, *e;
    bool found;
    size_t at = entry_find(kr, key_id(k), &found);
    int rc;

    if (added != NULL)
        *added = false;
    if (found)
        return 0;
    if (kr->n >= KEYRING_MAX_KEYS)
        return crypto_fail(d, CRYPTO_E_KEYRING_FULL, 0, "%s: keyring already holds %u keys",
                           source != NULL ? source : "key", KEYRING_MAX_KEYS);
    if ((e = grow(kr->e, kr->n, &kr->cap, sizeof(kr->e[0]))) != NULL)
        kr->e = e;
    if (e == NULL || (ent.source = strdup(source != NULL ? source : "(added)")) == NULL)
        return crypto_fail(d, CRYPTO_E_NOMEM, 0, "no memory to add key %.16s...", key_id(k));
    if ((rc = key_public_copy(&ent.k, k, d)) != 0) {
        free(ent.source);
        return rc;
    }
    memmove(&kr->e[at + 1], &kr->e[at], (kr->n - at) * sizeof(kr->e[0]));
    kr->e[at] = ent;
    kr->n++;
    if (added != NULL)
        *added = true;
    return 0;
}

int keyring_revoke(struct keyring *kr, const char *id, struct crypto_diag *d)
{
    char (*r)[KEY_ID_HEX_LEN + 1];
    bool found;
    size_t at;

    if (!hex_is_sha256(id))
        return crypto_fail(d, CRYPTO_E_ARG, 0, "revoked key id is not 64 lowercase hex");
    at = revoked_find(kr, id, &found);
    if (found)
        return 0;
    if ((r = grow(kr->revoked, kr->n_revoked, &kr->cap_revoked, sizeof(kr->revoked[0]))) == NULL)
        return crypto_fail(d, CRYPTO_E_NOMEM, 0, "no memory to revoke a key");
    kr->revoked = r;
    memmove(&kr->revoked[at + 1], &kr->revoked[at], (kr->n_revoked - at) * sizeof(kr->revoked[0]));
    memcpy(kr->revoked[at], id, KEY_ID_HEX_LEN + 1);
    kr->n_revoked++;
    return 0;
}

const struct key *keyring_get(const struct keyring *kr, const char *id)
{
    bool found;
    size_t at;

    if (!hex_is_sha256(id))
        return NULL;
    at = entry_find(kr, id, &found);
    return found ? kr->e[at].k : NULL;
}

bool keyring_is_revoked(const struct keyring *kr, const char *id)
{
    bool found = false;

    if (hex_is_sha256(id))
        (void)revoked_find(kr, id, &found);
    return found;
}

bool keyring_is_trusted(const struct keyring *kr, const char *id)
{
    return keyring_get(kr, id) != NULL && !keyring_is_revoked(kr, id);
}

int keyring_lookup(const struct keyring *kr, const char *id, const struct key **out,
                   struct crypto_diag *d)
{
    const struct key *k = keyring_get(kr, id);

    *out = NULL;
    if (k == NULL)
        return crypto_fail(d, CRYPTO_E_KEY_UNKNOWN, 0, "key %.64s is not in the keyring",
                           id != NULL ? id : "(null)");
    if (keyring_is_revoked(kr, id))
        return crypto_fail(d, CRYPTO_E_KEY_REVOKED, 0, "key %s is revoked", id);
    *out = k;
    return 0;
}

size_t keyring_count(const struct keyring *kr)
{
    return kr->n;
}

size_t keyring_trusted_count(const struct keyring *kr)
{
    size_t t = 0;

    for (size_t i = 0; i < kr->n; i++)
        t += !keyring_is_revoked(kr, key_id(kr->e[i].k));
    return t;
}

const struct key *keyring_at(const struct keyring *kr, size_t i)
{
    return i < kr->n ? kr->e[i].k : NULL;
}

const char *keyring_source_at(const struct keyring *kr, size_t i)
{
    return i < kr->n ? kr->e[i].source : NULL;
}

/* A key file name: ends in ".pem" or ".pub", not hidden. */
static bool is_key_name(const char *name)
{
    size_t n = strlen(name);

    return name[0] != '.' && n > 4 &&
           (strcmp(name + n - 4, ".pem") == 0 || strcmp(name + n - 4, ".pub") == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the key files in `dir` (so errors and sources never depend
 * on readdir order). */
static int list_key_files(const char *dir, char ***names, size_t *n, struct crypto_diag *d)
{
    DIR *dh = opendir(dir);
    struct dirent *de;
    char **nn;
    size_t cap = 0;
    int rc = 0;

    *names = NULL;
    *n = 0;
    if (dh == NULL)
        return crypto_fail(d, CRYPTO_E_KEYRING_DIR, 0, "%s: cannot open keyring directory: %s",
                           dir, strerror(errno));
    while (rc == 0 && (de = readdir(dh)) != NULL) {
        if (!is_key_name(de->d_name))
            continue;
        if (*n >= 4 * KEYRING_MAX_KEYS)
            rc = crypto_fail(d, CRYPTO_E_KEYRING_FULL, 0, "%s: more than %u key files", dir,
                             4 * KEYRING_MAX_KEYS);
        else if ((nn = grow(*names, *n, &cap, sizeof(char *))) == NULL ||
                 ((*names = nn)[*n] = strdup(de->d_name)) == NULL)
            rc = crypto_fail(d, CRYPTO_E_NOMEM, 0, "%s: no memory for file names", dir);
        else
            (*n)++;
    }
    closedir(dh);
    if (*n > 1)
        qsort(*names, *n, sizeof(char *), cmp_str);
    return rc;
}

/* Load one key file into the keyring. A subdirectory or other non-regular
 * entry with a key-like name is skipped (documented: only files hold keys). */
static int load_key_file(struct keyring *kr, const char *path, struct crypto_diag *d)
{
    struct key *k = NULL;
    struct stat st;
    int rc;

    if (stat(path, &st) != 0)
        return crypto_fail(d, CRYPTO_E_IO, 0, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return 0;
    if ((rc = key_load_public_pem(&k, path, d)) != 0)
        return rc;
    rc = keyring_add(kr, k, path, NULL, d);
    key_free(k);
    return rc;
}

/* Read the revocation file into a NUL-terminated buffer; *buf NULL if absent. */
static int read_revoked(const char *path, char **buf, size_t *n, struct crypto_diag *d)
{
    FILE *f;
    char *p;

    *buf = NULL;
    *n = 0;
    if ((f = fopen(path, "rb")) == NULL)
        return errno == ENOENT ? 0 : crypto_fail(d, CRYPTO_E_IO, 0, "%s: cannot open: %s", path,
                                                 strerror(errno));
    if ((p = malloc(KEYRING_REVOKED_MAX + 2)) == NULL) {
        fclose(f);
        return crypto_fail(d, CRYPTO_E_NOMEM, 0, "%s: no memory", path);
    }
    *n = fread(p, 1, KEYRING_REVOKED_MAX + 1, f);
    if (ferror(f) || *n > KEYRING_REVOKED_MAX) {
        int err = ferror(f);
        fclose(f);
        free(p);
        return crypto_fail(d, err ? CRYPTO_E_IO : CRYPTO_E_KEYRING_REVOKED, 0,
                           err ? "%s: read error" : "%s: larger than %u bytes", path,
                           KEYRING_REVOKED_MAX);
    }
    fclose(f);
    p[*n] = '\0';
    *buf = p;
    return 0;
}

/* Apply each line of the revocation text (format in keyring.h). */
static int parse_revoked(struct keyring *kr, const char *path, const char *p, size_t n,
                         struct crypto_diag *d)
{
    size_t line = 0, off = 0;

    while (off < n) {
        const char *nl = memchr(p + off, '\n', n - off);
        size_t len = nl != NULL ? (size_t)(nl - (p + off)) : n - off;
        int rc;

        line++;
        if (len > 0 && p[off] != '#') {
            char id[KEY_ID_HEX_LEN + 1];
            if (!hex_is_sha256_n(p + off, len)) {
                rc = crypto_fail(d, CRYPTO_E_KEYRING_REVOKED, off, "%s:%zu: expected a key id "
                                 "(64 lowercase hex) or a '#' comment, got %zu bytes", path,
                                 line, len);
                if (d != NULL)
                    d->line = line;
                return rc;
            }
            memcpy(id, p + off, KEY_ID_HEX_LEN);
            id[KEY_ID_HEX_LEN] = '\0';
            if ((rc = keyring_revoke(kr, id, d)) != 0)
                return rc;
        }
        off += len + 1;
    }
    return 0;
}

static int load_revoked(struct keyring *kr, const char *dir, struct crypto_diag *d)
{
    char path[4096], *buf = NULL;
    size_t n;
    int rc;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, KEYRING_REVOKED_FILE) >= sizeof(path))
        return crypto_fail(d, CRYPTO_E_KEYRING_DIR, 0, "%s: path too long", dir);
    if ((rc = read_revoked(path, &buf, &n, d)) != 0 || buf == NULL)
        return rc;
    rc = parse_revoked(kr, path, buf, n, d);
    free(buf);
    return rc;
}

int keyring_load(struct keyring **out, const char *dir, struct crypto_diag *d)
{
    struct keyring *kr = NULL;
    char **names = NULL, path[4096];
    size_t n = 0;
    int rc;

    *out = NULL;
    crypto_diag_clear(d);
    if ((rc = keyring_new(&kr)) != 0) {
        crypto_fail(d, rc, 0, "%s: no memory for a keyring", dir);
        goto out;
    }
    if ((rc = list_key_files(dir, &names, &n, d)) != 0)
        goto out;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= sizeof(path))
            rc = crypto_fail(d, CRYPTO_E_KEYRING_DIR, 0, "%s: path too long", dir);
        else
            rc = load_key_file(kr, path, d);
    }
    if (rc == 0 && (rc = load_revoked(kr, dir, d)) == 0) {
        *out = kr;   /* transferred */
        kr = NULL;
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    keyring_free(kr);
    return rc;
}
