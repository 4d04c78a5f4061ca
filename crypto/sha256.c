/* crypto/sha256.c: SHA-256 through OpenSSL EVP, with one MD fetched per process. */
#include "sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "hex.h"

#define SHA256_FILE_BLOCK (128u << 10)   /* bytes per read(2) in sha256_fd: stays in L2 for the hash,
                                          * and a worker hashing a file touches 128 KiB, not 1 MiB */

struct sha256_ctx {
    EVP_MD_CTX *md;
};

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha256;

/* An explicit fetch avoids the per-call implicit fetch that EVP_sha256()
 * costs in OpenSSL 3 (measurable on short audit lines). Never freed: one per
 * process, like OpenSSL's own tables. */
static void md_init(void)
{
    md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *md_get(void)
{
    pthread_once(&md_once, md_init);
    return md_sha256;
}

int sha256(const void *p, size_t n, uint8_t out[SHA256_LEN])
{
    static const uint8_t empty;
    const EVP_MD *md = md_get();

    if (md == NULL || EVP_Digest(n ? p : &empty, n, out, NULL, md, NULL) != 1) {
        memset(out, 0, SHA256_LEN);
        return CRYPTO_E_INTERNAL;
    }
    return 0;
}

int sha256_new(struct sha256_ctx **out)
{
    struct sha256_ctx *c;
    const EVP_MD *md = md_get();

    *out = NULL;
    if (md == NULL)
        return CRYPTO_E_INTERNAL;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return CRYPTO_E_NOMEM;
    if ((c->md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(c->md, md, NULL) != 1) {
        sha256_free(c);
        return CRYPTO_E_INTERNAL;
    }
    *out = c;
    return 0;
}

int sha256_update(struct sha256_ctx *c, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    return EVP_DigestUpdate(c->md, p, n) == 1 ? 0 : CRYPTO_E_INTERNAL;
}

int sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_LEN])
{
    if (EVP_DigestFinal_ex(c->md, out, NULL) != 1 ||
        EVP_DigestInit_ex(c->md, md_get(), NULL) != 1)
        return CRYPTO_E_INTERNAL;
    return 0;
}

void sha256_free(struct sha256_ctx *c)
{
    if (c == NULL)
        return;
    EVP_MD_CTX_free(c->md);
    free(c);
}

/* Read until EOF into the context; EINTR retried. */
static int hash_stream(struct sha256_ctx *c, int fd, const char *name, uint8_t *buf,
                       uint64_t *total, struct crypto_diag *d)
{
    for (;;) {
        ssize_t got = read(fd, buf, SHA256_FILE_BLOCK);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return crypto_fail(d, CRYPTO_E_IO, (size_t)*total, "%s: read at byte %llu: %s",
                               name, (unsigned long long)*total, strerror(errno));
        if (got == 0)
            return 0;
        if (sha256_update(c, buf, (size_t)got) != 0)
            return crypto_fail(d, CRYPTO_E_INTERNAL, 0, "%s: SHA-256 update failed", name);
        *total += (uint64_t)got;
    }
}

int sha256_fd(int fd, const char *name, uint8_t out[SHA256_LEN], uint64_t *size,
              struct crypto_diag *d)
{
    struct sha256_ctx *c = NULL;
    uint8_t *buf = NULL;
    uint64_t total = 0;
    int rc;

    memset(out, 0, SHA256_LEN);
    if (size != NULL)
        *size = 0;
    if (name == NULL)
        name = "(fd)";
    if ((buf = malloc(SHA256_FILE_BLOCK)) == NULL) {
        rc = crypto_fail(d, CRYPTO_E_NOMEM, 0, "%s: no memory for a read buffer", name);
        goto out;
    }
    if ((rc = sha256_new(&c)) != 0) {
        crypto_fail(d, rc, 0, "%s: cannot start SHA-256", name);
        goto out;
    }
    if ((rc = hash_stream(c, fd, name, buf, &total, d)) != 0)
        goto out;
    if ((rc = sha256_final(c, out)) != 0) {
        crypto_fail(d, rc, 0, "%s: SHA-256 final failed", name);
        goto out;
    }
    if (size != NULL)
        *size = total;
out:
    sha256_free(c);
    free(buf);
    return rc;
}

int sha256_file(const char *path, uint8_t out[SHA256_LEN], uint64_t *size,
                struct crypto_diag *d)
{
    int fd, rc;

    memset(out, 0, SHA256_LEN);
    if (size != NULL)
        *size = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return crypto_fail(d, CRYPTO_E_IO, 0, "%s: cannot open: %s", path, strerror(errno));
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    rc = sha256_fd(fd, path, out, size, d);
    close(fd);
    return rc;
}

void sha256_hex(const uint8_t in[SHA256_LEN], char out[SHA256_HEX_LEN + 1])
{
    hex_encode(in, SHA256_LEN, out);
}
