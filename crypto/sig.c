/* crypto/sig.c: RSA-PSS-SHA256 / Ed25519 signatures, strict and prototype-lenient, and the
 * canonical messages they cover (formats in sig.h). */
#include "sig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "hex.h"

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha256;

/* Fetched once: EVP_DigestSignInit_ex with a name would fetch on every call. */
static void md_init(void)
{
    md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* Prepare `mc` to sign or verify with `k`: RSA gets PSS, MGF1-SHA256 and
 * `saltlen` (RSA_PSS_SALTLEN_AUTO to recover it on verify); Ed25519 gets no
 * digest (plain Ed25519). */
static int sig_init(EVP_MD_CTX *mc, const struct key *k, bool sign, int saltlen)
{
    EVP_PKEY *pkey = key_evp(k);
    EVP_PKEY_CTX *pc = NULL;
    bool rsa = key_type(k) == KEY_TYPE_RSA;
    const EVP_MD *md = NULL;
    int ok;

    if (rsa) {
        pthread_once(&md_once, md_init);
        if ((md = md_sha256) == NULL)
            return CRYPTO_E_INTERNAL;
    }
    ok = sign ? EVP_DigestSignInit(mc, &pc, md, NULL, pkey)
              : EVP_DigestVerifyInit(mc, &pc, md, NULL, pkey);
    if (ok != 1)
        return CRYPTO_E_INTERNAL;
    if (rsa && (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) != 1 ||
                EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md) != 1 ||
                EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, saltlen) != 1))
        return CRYPTO_E_INTERNAL;
    return 0;
}

int sig_sign(const struct key *k, const void *msg, size_t n, uint8_t **sig, size_t *len,
             struct crypto_diag *d)
{
    EVP_MD_CTX *mc = NULL;
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc;

    *sig = NULL;
    *len = 0;
    if (!key_is_private(k))
        return crypto_fail(d, CRYPTO_E_KEY_NOT_PRIVATE, 0, "cannot sign with public key %.16s...",
                           key_id(k));
    if ((mc = EVP_MD_CTX_new()) == NULL) {
        rc = crypto_fail(d, CRYPTO_E_NOMEM, 0, "no memory for a signing context");
        goto out;
    }
    if (sig_init(mc, k, true, SIG_PSS_SALT_LEN) != 0 ||
        EVP_DigestSign(mc, NULL, &cap, msg, n) != 1) {
        rc = crypto_fail(d, CRYPTO_E_INTERNAL, 0, "cannot start signing with key %.16s...",
                         key_id(k));
        goto out;
    }
    if ((buf = malloc(cap)) == NULL) {
        rc = crypto_fail(d, CRYPTO_E_NOMEM, 0, "no memory for a %zu-byte signature", cap);
        goto out;
    }
    if (EVP_DigestSign(mc, buf, &cap, msg, n) != 1) {
        rc = crypto_fail(d, CRYPTO_E_INTERNAL, 0, "signing with key %.16s... failed", key_id(k));
        goto out;
    }
    *sig = buf;   /* transferred */
    *len = cap;
    buf = NULL;
    rc = 0;
out:
    ERR_clear_error();
    free(buf);
    EVP_MD_CTX_free(mc);
    return rc;
}

/* Signature length a key produces: the modulus size for RSA, 64 for Ed25519. */
static size_t sig_len_of(const struct key *k)
{
    return key_type(k) == KEY_TYPE_RSA ? (size_t)EVP_PKEY_get_size(key_evp(k)) : SIG_ED25519_LEN;
}

/* RSA: hash once, then EVP_PKEY_verify on a copy of the key's PSS template;
 * 1 valid, 0 not, -1 library error. */
static int rsa_pss_verify(const struct key *pub, const void *msg, size_t n, const uint8_t *sig,
                          size_t len, bool auto_salt)
{
    uint8_t h[SHA256_LEN];
    EVP_PKEY_CTX *pc;
    int ok;

    if (sha256(msg, n, h) != 0 || (pc = key_pss_verify_ctx(pub, auto_salt)) == NULL)
        return -1;
    ok = EVP_PKEY_verify(pc, sig, len, h, sizeof(h));
    EVP_PKEY_CTX_free(pc);
    return ok == 1 ? 1 : 0;
}

static int verify_with(const struct key *pub, const void *msg, size_t n, const uint8_t *sig,
                       size_t len, int saltlen, struct crypto_diag *d)
{
    EVP_MD_CTX *mc = NULL;
    int rc, ok;

    if (pub == NULL || sig == NULL)
        return crypto_fail(d, CRYPTO_E_ARG, 0, "signature check without a key or signature");
    if (len != sig_len_of(pub))
        return crypto_fail(d, CRYPTO_E_SIG_BAD, 0, "signature of %zu bytes; key %.16s... (%s-%u) "
                           "makes %zu-byte signatures", len, key_id(pub),
                           key_type_name(key_type(pub)), key_bits(pub), sig_len_of(pub));
    if (key_type(pub) == KEY_TYPE_RSA)
        ok = rsa_pss_verify(pub, msg, n, sig, len, saltlen == RSA_PSS_SALTLEN_AUTO);
    else if ((mc = EVP_MD_CTX_new()) == NULL || sig_init(mc, pub, false, saltlen) != 0)
        ok = -1;
    else
        ok = EVP_DigestVerify(mc, sig, len, msg, n) == 1 ? 1 : 0;
    if (ok < 0) {
        rc = crypto_fail(d, CRYPTO_E_INTERNAL, 0, "cannot start verifying with key %.16s...",
                         key_id(pub));
    } else {
        rc = ok == 1 ? 0 : crypto_fail(d, CRYPTO_E_SIG_BAD, 0, "signature does not verify with "
                                       "key %.16s... (%s)", key_id(pub),
                                       key_type(pub) == KEY_TYPE_RSA
                                       ? (saltlen == RSA_PSS_SALTLEN_AUTO ? "RSA-PSS-SHA256, any salt"
                                                                           : "RSA-PSS-SHA256, salt 32")
                                       : "Ed25519");
    }
    ERR_clear_error();
    EVP_MD_CTX_free(mc);
    return rc;
}

int sig_verify(const struct key *pub, const void *msg, size_t n, const uint8_t *sig, size_t len,
               struct crypto_diag *d)
{
    return verify_with(pub, msg, n, sig, len, SIG_PSS_SALT_LEN, d);
}

int sig_verify_prototype(const struct key *pub, const void *msg, size_t n, const uint8_t *sig,
                         size_t len, struct crypto_diag *d)
{
    return verify_with(pub, msg, n, sig, len, RSA_PSS_SALTLEN_AUTO, d);
}

int sig_prototype_msg(const char *tag, const char *sha_hex, char out[SIG_PROTO_MSG_MAX],
                      size_t *len, struct crypto_diag *d)
{
    size_t tl = tag != NULL ? strlen(tag) : 0;

    *len = 0;
    out[0] = '\0';
    if (!hex_is_sha256(sha_hex))
        return crypto_fail(d, CRYPTO_E_MSG_FIELD, 0, "sha256 \"%.70s\" is not 64 lowercase hex",
                           sha_hex != NULL ? sha_hex : "(null)");
    if (tl + SHA256_HEX_LEN + 1 > SIG_PROTO_MSG_MAX)
        return crypto_fail(d, CRYPTO_E_ARG, 0, "tag of %zu bytes too long", tl);
    memcpy(out, tag != NULL ? tag : "", tl);
    memcpy(out + tl, sha_hex, SHA256_HEX_LEN + 1);
    *len = tl + SHA256_HEX_LEN;
    return 0;
}

const char *sig_proto_form_name(enum sig_proto_form f)
{
    switch (f) {
    case SIG_FORM_TAGGED: return "tagged";
    case SIG_FORM_BARE: return "bare";
    default: return "none";
    }
}

int sig_verify_prototype_adapter(const struct key *pub, const char *sha_hex, const uint8_t *sig,
                                 size_t len, enum sig_proto_form *form, struct crypto_diag *d)
{
    static const struct { const char *tag; enum sig_proto_form form; } forms[] = {
        { SIG_TAG_ADAPTER, SIG_FORM_TAGGED },
        { NULL, SIG_FORM_BARE },
    };
    char msg[SIG_PROTO_MSG_MAX];
    size_t n, i;
    int rc = CRYPTO_E_SIG_BAD;

    if (form != NULL)
        *form = SIG_FORM_NONE;
    for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        if ((rc = sig_prototype_msg(forms[i].tag, sha_hex, msg, &n, d)) != 0)
            return rc;
        if ((rc = sig_verify_prototype(pub, msg, n, sig, len, d)) != CRYPTO_E_SIG_BAD)
            break;
    }
    if (rc == 0 && form != NULL)
        *form = forms[i].form;
    if (rc == CRYPTO_E_SIG_BAD)
        crypto_fail(d, rc, 0, "signature matches neither the tagged (\"" SIG_TAG_ADAPTER
                    "<sha256>\") nor the bare-hex prototype message for key %.16s...",
                    key_id(pub));
    return rc;
}

bool sig_domain_valid(const char *s)
{
    size_t n;

    if (s == NULL || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (n = 1; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= SIG_DOMAIN_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

bool sig_base_model_valid(const char *s)
{
    size_t n;

    if (s == NULL || s[0] == '\0')
        return false;
    for (n = 0; s[n] != '\0'; n++)
        if (n >= SIG_BASE_MODEL_MAX || (unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e)
            return false;
    return true;
}

int sig_adapter_msg(const struct sig_adapter *a, char out[SIG_ADAPTER_MSG_MAX], size_t *len,
                    struct crypto_diag *d)
{
    int w;

    *len = 0;
    out[0] = '\0';
    if (!hex_is_sha256(a->weights_sha256))
        return crypto_fail(d, CRYPTO_E_MSG_FIELD, 0, "weights_sha256 is not 64 lowercase hex");
    if (!hex_is_sha256(a->config_sha256))
        return crypto_fail(d, CRYPTO_E_MSG_FIELD, 0, "config_sha256 is not 64 lowercase hex");
    if (!sig_domain_valid(a->domain))
        return crypto_fail(d, CRYPTO_E_MSG_FIELD, 0, "domain \"%.80s\" does not match "
                           "[a-z0-9][a-z0-9._-]{0,63}", a->domain != NULL ? a->domain : "(null)");
    if (!sig_base_model_valid(a->base_model))
        return crypto_fail(d, CRYPTO_E_MSG_FIELD, 0, "base_model must be 1..%d printable ASCII "
                           "characters without space", SIG_BASE_MODEL_MAX);
    w = snprintf(out, SIG_ADAPTER_MSG_MAX,
                 "plorad-adapter-sig v1\nweights_sha256=%s\nconfig_sha256=%s\ndomain=%s\n"
                 "base_model=%s\n", a->weights_sha256, a->config_sha256, a->domain, a->base_model);
    if (w < 0 || w >= SIG_ADAPTER_MSG_MAX)
        return crypto_fail(d, CRYPTO_E_INTERNAL, 0, "adapter message does not fit");
    *len = (size_t)w;
    return 0;
}

int sig_sign_adapter(const struct key *k, const struct sig_adapter *a, uint8_t **sig, size_t *len,
                     struct crypto_diag *d)
{
    char msg[SIG_ADAPTER_MSG_MAX];
    size_t n;
    int rc;

    *sig = NULL;
    *len = 0;
    if ((rc = sig_adapter_msg(a, msg, &n, d)) != 0)
        return rc;
    return sig_sign(k, msg, n, sig, len, d);
}

int sig_verify_adapter(const struct key *pub, const struct sig_adapter *a, const uint8_t *sig,
                       size_t len, struct crypto_diag *d)
{
    char msg[SIG_ADAPTER_MSG_MAX];
    size_t n;
    int rc;

    if ((rc = sig_adapter_msg(a, msg, &n, d)) != 0)
        return rc;
    return sig_verify(pub, msg, n, sig, len, d);
}
