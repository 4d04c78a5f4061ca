/* crypto/sig.h: signatures made and checked by plorad, and the prototype's.
 *
 * plorad's own signatures (sig_sign / sig_verify):
 *   RSA key:     RSASSA-PSS, SHA-256, MGF1(SHA-256), salt length = 32 bytes
 *                (the digest length). Verification demands exactly that salt.
 *   Ed25519 key: plain Ed25519 (RFC 8032, no pre-hash) over the message.
 * The message is whatever byte string the caller built; each kind of
 * statement (adapter, vote, checkpoint, nonce) has its own versioned,
 * tagged message so that a signature of one kind never reads as another.
 *
 * The prototype's signatures (lumenintellects/plora, reference/README.md):
 *   RSA-PSS-SHA256 with salt = maximum (emLen - 34 = 350 bytes for RSA-3072),
 *   or plain Ed25519, over either the tagged message
 *   "PLORA|ADAPTER|v1|" + 64 lowercase hex of the adapter's SHA-256
 *   (81 bytes, no newline) or the bare 64 hex chars. Its verifier
 *   (cryptography 48.0.0, PSS.MAX_LENGTH) accepts PSS with ANY salt length
 *   that decodes (0, 32, 349 and 350 were probed), so sig_verify_prototype
 *   recovers the salt from the signature (RSA_PSS_SALTLEN_AUTO). PKCS#1 v1.5
 *   signatures are rejected, as the prototype rejects them.
 *
 * plorad's canonical adapter message (sig_adapter_msg), exactly these bytes,
 * five lines each ended by one LF (0x0a), no CR, no trailing spaces:
 *
 *   plorad-adapter-sig v1
 *   weights_sha256=<64 lowercase hex: SHA-256 of adapter_model.safetensors>
 *   config_sha256=<64 lowercase hex: SHA-256 of adapter_config.json>
 *   domain=<domain>
 *   base_model=<base model>
 *
 * domain matches [a-z0-9][a-z0-9._-]{0,63}; base_model is 1..256 bytes of
 * printable ASCII 0x21..0x7e (no space, no control character, so no
 * newline). Since no field can contain LF and field order and names are
 * fixed, each message parses back into exactly one tuple. Its length is at
 * most SIG_ADAPTER_MSG_MAX bytes. Example (domain "legal", base "gpt2"):
 *   "plorad-adapter-sig v1\nweights_sha256=658b...3e\nconfig_sha256=8111...a1\n"
 *   "domain=legal\nbase_model=gpt2\n"
 *
 * Verify functions return 0 only for a valid signature; CRYPTO_E_SIG_BAD is
 * the negative verdict (wrong key, wrong message, altered, truncated or
 * extended signature, wrong length, wrong padding or salt); other negative
 * codes are errors of the caller or the library, never a verdict.
 */
#ifndef PLORA_SIG_H
#define PLORA_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto_err.h"
#include "key.h"

#define SIG_MAX_LEN 2048          /* bytes: an RSA-16384 signature */
#define SIG_ED25519_LEN 64        /* bytes */
#define SIG_PSS_SALT_LEN 32       /* bytes: plorad's own RSA-PSS salt */
#define SIG_TAG_ADAPTER "PLORA|ADAPTER|v1|"   /* the prototype's adapter tag */
#define SIG_TAG_POLICY "PLORA|POLICY|v1|"     /* the prototype's policy tag */
#define SIG_PROTO_MSG_MAX 128     /* bytes: room for any tag + 64 hex + NUL */
#define SIG_ADAPTER_MSG_MAX 512   /* bytes, NUL included */
#define SIG_DOMAIN_MAX 64         /* chars */
#define SIG_BASE_MODEL_MAX 256    /* chars */

/* Sign `n` bytes at `msg` with private key `k` (plorad's scheme above).
 * On success *sig (malloc'd, the caller frees) and *len are set; on failure
 * *sig is NULL and *len 0. Returns 0, CRYPTO_E_KEY_NOT_PRIVATE,
 * CRYPTO_E_NOMEM or CRYPTO_E_INTERNAL. */
int sig_sign(const struct key *k, const void *msg, size_t n, uint8_t **sig, size_t *len,
             struct crypto_diag *d);

/* Strict check of plorad's own signature with `pub` (public or private
 * key). Returns 0 (valid), CRYPTO_E_SIG_BAD (including a signature of the
 * wrong length), CRYPTO_E_ARG (NULL key) or CRYPTO_E_INTERNAL. */
int sig_verify(const struct key *pub, const void *msg, size_t n, const uint8_t *sig,
               size_t len, struct crypto_diag *d) __attribute__((warn_unused_result));

/* Lenient check with the prototype's rule: RSA-PSS-SHA256/MGF1-SHA256 with
 * any salt length, or Ed25519. Codes as sig_verify. */
int sig_verify_prototype(const struct key *pub, const void *msg, size_t n,
                         const uint8_t *sig, size_t len, struct crypto_diag *d)
    __attribute__((warn_unused_result));

/* Build the prototype's message `tag` + `sha_hex` into out (NUL-terminated;
 * *len excludes the NUL). `tag` NULL or "" gives the bare hex form.
 * `sha_hex` must satisfy hex_is_sha256. Returns 0, CRYPTO_E_MSG_FIELD (bad
 * hex) or CRYPTO_E_ARG (tag too long for SIG_PROTO_MSG_MAX). */
int sig_prototype_msg(const char *tag, const char *sha_hex, char out[SIG_PROTO_MSG_MAX],
                      size_t *len, struct crypto_diag *d);

/* Which prototype message form a signature covered. */
enum sig_proto_form {
    SIG_FORM_NONE = 0,
    SIG_FORM_TAGGED = 1,   /* "PLORA|ADAPTER|v1|" + hex (scripts/sign_plasmid.py) */
    SIG_FORM_BARE = 2,     /* hex only (scripts/train_task.py --sign) */
};
const char *sig_proto_form_name(enum sig_proto_form f);   /* "none", "tagged", "bare" */

/* Check a prototype adapter signature over `sha_hex` (SHA-256 of the
 * adapter file): the tagged form first, then the bare one. *form (may be
 * NULL) says which matched, SIG_FORM_NONE if neither. Returns 0,
 * CRYPTO_E_SIG_BAD (neither form), CRYPTO_E_MSG_FIELD (sha_hex not 64
 * lowercase hex), CRYPTO_E_INTERNAL. */
int sig_verify_prototype_adapter(const struct key *pub, const char *sha_hex,
                                 const uint8_t *sig, size_t len, enum sig_proto_form *form,
                                 struct crypto_diag *d) __attribute__((warn_unused_result));

/* The fields plorad's adapter signature binds (all NUL-terminated). */
struct sig_adapter {
    const char *weights_sha256;   /* SHA-256 hex of adapter_model.safetensors */
    const char *config_sha256;    /* SHA-256 hex of adapter_config.json */
    const char *domain;
    const char *base_model;
};

/* Validity of a domain / base model name (see the file comment). */
bool sig_domain_valid(const char *s);
bool sig_base_model_valid(const char *s);

/* Build the canonical adapter message into out (NUL-terminated; *len
 * excludes the NUL). Returns 0 or CRYPTO_E_MSG_FIELD (d names the field and
 * the problem). */
int sig_adapter_msg(const struct sig_adapter *a, char out[SIG_ADAPTER_MSG_MAX], size_t *len,
                    struct crypto_diag *d);

/* sig_adapter_msg + sig_sign. Codes: those of both. */
int sig_sign_adapter(const struct key *k, const struct sig_adapter *a, uint8_t **sig,
                     size_t *len, struct crypto_diag *d);

/* sig_adapter_msg + sig_verify (strict). Codes: those of both. */
int sig_verify_adapter(const struct key *pub, const struct sig_adapter *a, const uint8_t *sig,
                       size_t len, struct crypto_diag *d) __attribute__((warn_unused_result));

#endif
