/* crypto/key.c: RSA / Ed25519 keys: generate, strict PEM/DER parsing, atomic save, key ids. */
#include "key.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "hex.h"

struct key {
    EVP_PKEY *pkey;
    EVP_PKEY_CTX *pss[2];   /* RSA verify templates: [0] salt 32, [1] salt recovered */
    bool priv;
    enum key_type type;
    unsigned bits;
    uint8_t id_bin[SHA256_LEN];
    char id[KEY_ID_HEX_LEN + 1];
};

/* Label for messages when the caller gave no name. */
static const char *src_name(const char *name)
{
    return name != NULL ? name : "(key bytes)";
}

/* The two RSA-PSS verify templates of an RSA key (see key_pss_verify_ctx). */
static int pss_templates(struct key *k)
{
    for (int i = 0; i < 2; i++) {
        EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);

        k->pss[i] = pc;
        if (pc == NULL || EVP_PKEY_verify_init(pc) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) != 1 ||
            EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) != 1 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, i == 0 ? SHA256_LEN : RSA_PSS_SALTLEN_AUTO) != 1)
            return CRYPTO_E_INTERNAL;
    }
    return 0;
}

struct evp_pkey_ctx_st *key_pss_verify_ctx(const struct key *k, bool auto_salt)
{
    EVP_PKEY_CTX *t = k->pss[auto_salt ? 1 : 0];

    return t != NULL ? EVP_PKEY_CTX_dup(t) : NULL;
}

/* Check the algorithm and size, compute the id, and wrap `pkey` (ownership
 * transferred in every case: freed on failure). */
static int key_wrap(struct key **out, EVP_PKEY *pkey, bool priv, const char *name,
                    struct crypto_diag *d)
{
    struct key *k = NULL;
    unsigned char *der = NULL;
    int der_len, rc = CRYPTO_E_INTERNAL;

    *out = NULL;
    if ((k = calloc(1, sizeof(*k))) == NULL) {
        rc = crypto_fail(d, CRYPTO_E_NOMEM, 0, "%s: no memory for a key", src_name(name));
        goto out;
    }
    k->pkey = pkey;
    pkey = NULL;   /* owned by k now */
    k->priv = priv;
    k->bits = (unsigned)EVP_PKEY_get_bits(k->pkey);
    switch (EVP_PKEY_get_base_id(k->pkey)) {
    case EVP_PKEY_RSA:
        k->type = KEY_TYPE_RSA;
        if (k->bits < KEY_RSA_BITS_MIN || k->bits > KEY_RSA_BITS_MAX) {
            rc = crypto_fail(d, CRYPTO_E_KEY_SIZE, 0, "%s: RSA key of %u bits, outside %u..%u",
                             src_name(name), k->bits, KEY_RSA_BITS_MIN, KEY_RSA_BITS_MAX);
            goto out;
        }
        if (pss_templates(k) != 0) {
            ERR_clear_error();
            rc = crypto_fail(d, CRYPTO_E_INTERNAL, 0, "%s: cannot prepare RSA-PSS verification",
                             src_name(name));
            goto out;
        }
        break;
    case EVP_PKEY_ED25519:
        k->type = KEY_TYPE_ED25519;
        break;
    default:
        rc = crypto_fail(d, CRYPTO_E_KEY_TYPE, 0, "%s: key type %s is neither RSA nor Ed25519",
                         src_name(name), EVP_PKEY_get0_type_name(k->pkey));
        goto out;
    }
    if ((der_len = i2d_PUBKEY(k->pkey, &der)) <= 0 ||
        sha256(der, (size_t)der_len, k->id_bin) != 0) {
        rc = crypto_fail(d, CRYPTO_E_INTERNAL, 0, "%s: cannot encode the public key", src_name(name));
        goto out;
    }
    sha256_hex(k->id_bin, k->id);
    *out = k;   /* transferred */
    k = NULL;
    rc = 0;
out:
    OPENSSL_free(der);
    EVP_PKEY_free(pkey);
    key_free(k);
    return rc;
}

int key_generate_rsa(struct key **out, unsigned bits, struct crypto_diag *d)
{
    EVP_PKEY *pkey;

    *out = NULL;
    if (bits < KEY_RSA_BITS_MIN || bits > KEY_RSA_BITS_MAX)
        return crypto_fail(d, CRYPTO_E_KEY_SIZE, 0, "RSA key size %u bits outside %u..%u",
                           bits, KEY_RSA_BITS_MIN, KEY_RSA_BITS_MAX);
    if ((pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits)) == NULL) {
        ERR_clear_error();
        return crypto_fail(d, CRYPTO_E_INTERNAL, 0, "RSA-%u key generation failed", bits);
    }
    return key_wrap(out, pkey, true, "generated RSA key", d);
}

int key_generate_ed25519(struct key **out, struct crypto_diag *d)
{
    EVP_PKEY *pkey;

    *out = NULL;
    if ((pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL) {
        ERR_clear_error();
        return crypto_fail(d, CRYPTO_E_INTERNAL, 0, "Ed25519 key generation failed");
    }
    return key_wrap(out, pkey, true, "generated Ed25519 key", d);
}

static bool all_space(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return false;
    return true;
}

/* One PEM block, alone in `pem` but for surrounding whitespace: its label
 * (*label, OPENSSL_malloc'd) and DER body (*der, *der_len). */
struct pem_block {
    char *label;
    char *header;
    unsigned char *der;
    long der_len;
};

static void pem_block_clear(struct pem_block *b)
{
    OPENSSL_free(b->label);
    OPENSSL_free(b->header);
    if (b->der != NULL)
        OPENSSL_clear_free(b->der, (size_t)(b->der_len > 0 ? b->der_len : 0));
    memset(b, 0, sizeof(*b));
}

static int pem_one_block(const void *pem, size_t n, const char *name, struct pem_block *b,
                         struct crypto_diag *d)
{
    const unsigned char *p = pem;
    size_t lead = 0;
    BIO *bio = NULL;
    char *rest = NULL;
    long rest_len;
    int rc = CRYPTO_E_KEY_PARSE;

    while (lead < n && all_space(p + lead, 1))
        lead++;
    if (n - lead < 11 || memcmp(p + lead, "-----BEGIN ", 11) != 0) {
        rc = crypto_fail(d, CRYPTO_E_KEY_PARSE, lead, "%s: not a PEM file (no \"-----BEGIN \" "
                         "at byte %zu)", src_name(name), lead);
        goto out;
    }
    if ((bio = BIO_new_mem_buf(p + lead, (int)(n - lead))) == NULL) {
        rc = crypto_fail(d, CRYPTO_E_NOMEM, 0, "%s: no memory for a BIO", src_name(name));
        goto out;
    }
    if (PEM_read_bio(bio, &b->label, &b->header, &b->der, &b->der_len) != 1) {
        rc = crypto_fail(d, CRYPTO_E_KEY_PARSE, lead, "%s: malformed PEM block (bad END line "
                         "or base64 body)", src_name(name));
        goto out;
    }
    rest_len = BIO_get_mem_data(bio, &rest);
    if (rest_len > 0 && !all_space((const unsigned char *)rest, (size_t)rest_len)) {
        rc = crypto_fail(d, CRYPTO_E_KEY_PARSE, n - (size_t)rest_len,
                         "%s: data after the PEM block at byte %zu (one key per file)",
                         src_name(name), n - (size_t)rest_len);
        goto out;
    }
    if (b->header != NULL && b->header[0] != '\0') {
        rc = crypto_fail(d, strstr(b->header, "ENCRYPTED") ? CRYPTO_E_KEY_ENCRYPTED :
                         CRYPTO_E_KEY_PARSE, 0, "%s: PEM headers (%s) not supported",
                         src_name(name), strstr(b->header, "ENCRYPTED") ? "encrypted key" :
                         "Proc-Type/DEK-Info");
        goto out;
    }
    rc = 0;
out:
    if (rc != 0) {
        pem_block_clear(b);
        ERR_clear_error();
    }
    BIO_free(bio);
    return rc;
}

static bool is_private_label(const char *l)
{
    return strcmp(l, "PRIVATE KEY") == 0 || strcmp(l, "RSA PRIVATE KEY") == 0 ||
           strcmp(l, "ENCRYPTED PRIVATE KEY") == 0;
}

/* Parse one DER SPKI that must fill exactly `n` bytes. */
static int spki_parse(struct key **out, const unsigned char *der, long n, const char *name,
                      struct crypto_diag *d)
{
    const unsigned char *p = der;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, n);

    if (pkey == NULL) {
        ERR_clear_error();
        return crypto_fail(d, CRYPTO_E_KEY_PARSE, 0, "%s: not a DER SubjectPublicKeyInfo",
                           src_name(name));
    }
    if (p != der + n) {
        EVP_PKEY_free(pkey);
        return crypto_fail(d, CRYPTO_E_KEY_PARSE, (size_t)(p - der),
                           "%s: %ld trailing bytes after the public key", src_name(name),
                           (long)(der + n - p));
    }
    return key_wrap(out, pkey, false, name, d);
}

int key_from_public_pem(struct key **out, const void *pem, size_t n, const char *name,
                        struct crypto_diag *d)
{
    struct pem_block b = {0};
    int rc;

    *out = NULL;
    if (n > KEY_PEM_MAX)
        return crypto_fail(d, CRYPTO_E_KEY_TOO_BIG, 0, "%s: %zu bytes, over the %u-byte cap "
                           "for a key", src_name(name), n, KEY_PEM_MAX);
    if ((rc = pem_one_block(pem, n, name, &b, d)) != 0)
        return rc;
    if (is_private_label(b.label))
        rc = crypto_fail(d, CRYPTO_E_KEY_TYPE, 0, "%s: holds a private key (\"%s\"); a public "
                         "key (\"PUBLIC KEY\", SPKI) is expected", src_name(name), b.label);
    else if (strcmp(b.label, "PUBLIC KEY") != 0)
        rc = crypto_fail(d, CRYPTO_E_KEY_PARSE, 0, "%s: PEM label \"%.40s\"; expected \"PUBLIC "
                         "KEY\" (SPKI)", src_name(name), b.label);
    else
        rc = spki_parse(out, b.der, b.der_len, name, d);
    pem_block_clear(&b);
    return rc;
}

/* Private key from the DER body of a "PRIVATE KEY" (PKCS#8) or "RSA PRIVATE
 * KEY" (PKCS#1) block, which must fill exactly `n` bytes. */
static int private_parse(struct key **out, const unsigned char *der, long n, const char *name,
                         struct crypto_diag *d)
{
    const unsigned char *p = der;
    EVP_PKEY *pkey = d2i_AutoPrivateKey(NULL, &p, n);

    if (pkey == NULL) {
        ERR_clear_error();
        return crypto_fail(d, CRYPTO_E_KEY_PARSE, 0, "%s: malformed private key DER",
                           src_name(name));
    }
    if (p != der + n) {
        EVP_PKEY_free(pkey);
        return crypto_fail(d, CRYPTO_E_KEY_PARSE, (size_t)(p - der),
                           "%s: trailing bytes after the private key", src_name(name));
    }
    return key_wrap(out, pkey, true, name, d);
}

int key_from_private_pem(struct key **out, const void *pem, size_t n, const char *name,
                         struct crypto_diag *d)
{
    struct pem_block b = {0};
    int rc;

    *out = NULL;
    if (n > KEY_PEM_MAX)
        return crypto_fail(d, CRYPTO_E_KEY_TOO_BIG, 0, "%s: %zu bytes, over the %u-byte cap "
                           "for a key", src_name(name), n, KEY_PEM_MAX);
    if ((rc = pem_one_block(pem, n, name, &b, d)) != 0)
        return rc;
    if (strcmp(b.label, "ENCRYPTED PRIVATE KEY") == 0)
        rc = crypto_fail(d, CRYPTO_E_KEY_ENCRYPTED, 0, "%s: passphrase-protected key; store "
                         "it unencrypted (PKCS#8, mode 0600)", src_name(name));
    else if (strcmp(b.label, "PUBLIC KEY") == 0)
        rc = crypto_fail(d, CRYPTO_E_KEY_TYPE, 0, "%s: holds a public key; a private key "
                         "(\"PRIVATE KEY\", PKCS#8) is expected", src_name(name));
    else if (!is_private_label(b.label))
        rc = crypto_fail(d, CRYPTO_E_KEY_PARSE, 0, "%s: PEM label \"%.40s\"; expected "
                         "\"PRIVATE KEY\" (PKCS#8)", src_name(name), b.label);
    else
        rc = private_parse(out, b.der, b.der_len, name, d);
    pem_block_clear(&b);
    return rc;
}

int key_from_public_der(struct key **out, const uint8_t *der, size_t n, const char *name,
                        struct crypto_diag *d)
{
    *out = NULL;
    if (n > KEY_DER_MAX)
        return crypto_fail(d, CRYPTO_E_KEY_TOO_BIG, 0, "%s: %zu bytes, over the %u-byte cap "
                           "for a DER public key", src_name(name), n, KEY_DER_MAX);
    if (n == 0)
        return crypto_fail(d, CRYPTO_E_KEY_PARSE, 0, "%s: empty public key", src_name(name));
    return spki_parse(out, der, (long)n, name, d);
}

/* Read a whole regular file of at most `cap` bytes into a new buffer. */
static int read_capped(const char *path, size_t cap, char **out, size_t *n, struct crypto_diag *d)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd, rc = 0;

    *out = NULL;
    *n = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return crypto_fail(d, CRYPTO_E_IO, 0, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = crypto_fail(d, CRYPTO_E_IO, 0, "%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > cap) {
        rc = crypto_fail(d, CRYPTO_E_KEY_TOO_BIG, 0, "%s: %lld bytes, over the %zu-byte cap "
                         "for a key file", path, (long long)st.st_size, cap);
        goto out;
    }
    if ((buf = malloc(cap + 1)) == NULL) {
        rc = crypto_fail(d, CRYPTO_E_NOMEM, 0, "%s: no memory", path);
        goto out;
    }
    while (got <= cap) {   /* the file may grow after fstat: read one byte past the cap */
        ssize_t r = read(fd, buf + got, cap + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = crypto_fail(d, CRYPTO_E_IO, got, "%s: read: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got > cap) {
        rc = crypto_fail(d, CRYPTO_E_KEY_TOO_BIG, 0, "%s: over the %zu-byte cap", path, cap);
        goto out;
    }
    *out = buf;   /* transferred */
    *n = got;
    buf = NULL;
out:
    if (buf != NULL)
        OPENSSL_cleanse(buf, cap + 1);
    free(buf);
    close(fd);
    return rc;
}

int key_load_private_pem(struct key **out, const char *path, struct crypto_diag *d)
{
    char *buf;
    size_t n;
    int rc;

    *out = NULL;
    if ((rc = read_capped(path, KEY_PEM_MAX, &buf, &n, d)) != 0)
        return rc;
    rc = key_from_private_pem(out, buf, n, path, d);
    OPENSSL_cleanse(buf, n);   /* malloc'd by read_capped: wipe, then plain free */
    free(buf);
    return rc;
}

int key_load_public_pem(struct key **out, const char *path, struct crypto_diag *d)
{
    char *buf;
    size_t n;
    int rc;

    *out = NULL;
    if ((rc = read_capped(path, KEY_PEM_MAX, &buf, &n, d)) != 0)
        return rc;
    rc = key_from_public_pem(out, buf, n, path, d);
    free(buf);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsync the directory holding `path`, so that a rename/link survives a crash. */
static int fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int fd, rc;

    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* Write `n` bytes to a temp file, fsync it, then link it to `path` (which
 * fails if `path` exists: never replaces a key), unlink the temp name and
 * fsync the directory. */
static int write_new_file(const char *path, const char *data, size_t n, mode_t mode,
                          struct crypto_diag *d)
{
    char tmp[PATH_MAX];
    int fd = -1, rc = 0;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
        return crypto_fail(d, CRYPTO_E_ARG, 0, "%s: path too long", path);
    if (access(path, F_OK) == 0)
        return crypto_fail(d, CRYPTO_E_KEY_EXISTS, 0, "%s: already exists; not overwritten", path);
    (void)unlink(tmp);   /* a stale temp of a crashed run with our pid */
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) < 0 ||
        fchmod(fd, mode) != 0 || write_all(fd, data, n) != 0 || fsync(fd) != 0) {
        rc = crypto_fail(d, CRYPTO_E_IO, 0, "%s: cannot write: %s", tmp, strerror(errno));
        goto out;
    }
    if (link(tmp, path) != 0) {
        rc = errno == EEXIST
             ? crypto_fail(d, CRYPTO_E_KEY_EXISTS, 0, "%s: already exists; not overwritten", path)
             : crypto_fail(d, CRYPTO_E_IO, 0, "%s: cannot create: %s", path, strerror(errno));
        goto out;
    }
    if (fsync_parent(path) != 0)
        rc = crypto_fail(d, CRYPTO_E_IO, 0, "%s: cannot fsync its directory: %s", path,
                         strerror(errno));
out:
    if (fd >= 0) {
        close(fd);
        (void)unlink(tmp);
    }
    return rc;
}

/* PEM of the key into a memory BIO, then to `path`; the BIO's bytes are
 * cleansed before release (they may hold the private key). */
static int save_pem(const struct key *k, const char *path, bool priv, struct crypto_diag *d)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *p = NULL;
    long n;
    int ok, rc;

    if (bio == NULL)
        return crypto_fail(d, CRYPTO_E_NOMEM, 0, "%s: no memory for a BIO", path);
    ok = priv ? PEM_write_bio_PKCS8PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL)
              : PEM_write_bio_PUBKEY(bio, k->pkey);
    n = BIO_get_mem_data(bio, &p);
    if (ok != 1 || n <= 0) {
        ERR_clear_error();
        rc = crypto_fail(d, CRYPTO_E_INTERNAL, 0, "%s: cannot encode the key as PEM", path);
    } else {
        rc = write_new_file(path, p, (size_t)n, priv ? 0600 : 0644, d);
        OPENSSL_cleanse(p, (size_t)n);
    }
    BIO_free(bio);
    return rc;
}

int key_save_private(const struct key *k, const char *path, struct crypto_diag *d)
{
    if (!k->priv)
        return crypto_fail(d, CRYPTO_E_KEY_NOT_PRIVATE, 0, "%s: key %.16s... is public-only",
                           path, k->id);
    return save_pem(k, path, true, d);
}

int key_save_public(const struct key *k, const char *path, struct crypto_diag *d)
{
    return save_pem(k, path, false, d);
}

int key_public_pem(const struct key *k, char **out, size_t *n, struct crypto_diag *d)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *p = NULL;
    long len;
    int rc = 0;

    *out = NULL;
    *n = 0;
    if (bio == NULL)
        return crypto_fail(d, CRYPTO_E_NOMEM, 0, "no memory for a BIO");
    if (PEM_write_bio_PUBKEY(bio, k->pkey) != 1 || (len = BIO_get_mem_data(bio, &p)) <= 0) {
        ERR_clear_error();
        rc = crypto_fail(d, CRYPTO_E_INTERNAL, 0, "cannot encode key %.16s... as PEM", k->id);
    } else if ((*out = malloc((size_t)len + 1)) == NULL) {
        rc = crypto_fail(d, CRYPTO_E_NOMEM, 0, "no memory for %ld bytes of PEM", len);
    } else {
        memcpy(*out, p, (size_t)len);
        (*out)[len] = '\0';
        *n = (size_t)len;
    }
    BIO_free(bio);
    return rc;
}

int key_public_der(const struct key *k, uint8_t **out, size_t *n, struct crypto_diag *d)
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(k->pkey, &der);

    *out = NULL;
    *n = 0;
    if (len <= 0) {
        ERR_clear_error();
        return crypto_fail(d, CRYPTO_E_INTERNAL, 0, "cannot encode key %.16s... as DER", k->id);
    }
    if ((*out = malloc((size_t)len)) == NULL) {
        OPENSSL_free(der);
        return crypto_fail(d, CRYPTO_E_NOMEM, 0, "no memory for %d bytes of DER", len);
    }
    memcpy(*out, der, (size_t)len);
    *n = (size_t)len;
    OPENSSL_free(der);
    return 0;
}

int key_public_copy(struct key **out, const struct key *k, struct crypto_diag *d)
{
    uint8_t *der = NULL;
    size_t n;
    int rc;

    *out = NULL;
    if ((rc = key_public_der(k, &der, &n, d)) != 0)
        return rc;
    rc = key_from_public_der(out, der, n, k->id, d);
    free(der);
    return rc;
}

const char *key_id(const struct key *k)
{
    return k->id;
}

const uint8_t *key_id_bin(const struct key *k)
{
    return k->id_bin;
}

enum key_type key_type(const struct key *k)
{
    return k->type;
}

const char *key_type_name(enum key_type t)
{
    switch (t) {
    case KEY_TYPE_RSA: return "rsa";
    case KEY_TYPE_ED25519: return "ed25519";
    default: return "unknown";
    }
}

unsigned key_bits(const struct key *k)
{
    return k->bits;
}

bool key_is_private(const struct key *k)
{
    return k->priv;
}

struct evp_pkey_st *key_evp(const struct key *k)
{
    return k->pkey;
}

void key_free(struct key *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_CTX_free(k->pss[0]);
    EVP_PKEY_CTX_free(k->pss[1]);
    EVP_PKEY_free(k->pkey);
    free(k);
}
