/* daemon/cmd_sign.c: `plora sign` (write a signed plora.yml) and `plora
 * verify` (check a manifest's artifact and signatures against a keyring).
 *
 * Signed forms written by `plora sign`:
 *  - signer.signature_b64: the prototype's BARE form (64 hex of the adapter's
 *    SHA-256), RSA-PSS salt = maximum or Ed25519, because that is the only
 *    form every prototype path accepts: scripts/verify_plasmid.py and the
 *    gate's default count mode check the bare form only (README "Surprises"
 *    1-2), threshold mode accepts both, and cryptography 38.0.4 accepts only
 *    the maximum salt. algo says RSA-PSS-SHA256 or ED25519-SHA256 truthfully.
 *  - without --prototype, also plorad's section: config_sha256 and a
 *    signature over sig.h's canonical adapter message (weights sha256 +
 *    config sha256 + domain + base model). Signing an adapter that already
 *    has plorad's manifest for the same weights/config/domain/base model adds
 *    (or replaces) this key's signature: co-signing.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "hex.h"
#include "key.h"
#include "keyring.h"
#include "manifest.h"
#include "peft_config.h"
#include "sha256.h"
#include "sig.h"
#include "vote.h"

#define ADAPTER_FILE "adapter_model.safetensors"

static const char sign_usage[] =
    "usage: plora sign ADAPTER_DIR --key KEY --domain D [--prototype] [--base-model M] [--json]\n"
    "  Write ADAPTER_DIR/plora.yml (temp file, fsync, rename): fields from\n"
    "  adapter_config.json (r, lora_alpha, lora_dropout, target_modules, base model) and\n"
    "  the SHA-256 and size of adapter_model.safetensors, signed with KEY (PKCS#8 PEM,\n"
    "  RSA or Ed25519). signer.signature_b64 holds the prototype's bare-hex signature\n"
    "  (RSA-PSS max salt), which its verify_plasmid.py and gate accept. Without\n"
    "  --prototype, a `plorad:` section adds config_sha256 and plorad's signature over\n"
    "  weights + config + domain + base model (domain [a-z0-9][a-z0-9._-]{0,63});\n"
    "  an existing plorad manifest of the same adapter gets this key's signature added.\n"
    "  --base-model overrides adapter_config.json's base_model_name_or_path.\n"
    "  Exit 0 written; 2 bad option, unreadable key/adapter/config, or write error.\n";

static const char verify_usage[] =
    "usage: plora verify ADAPTER_DIR [--manifest FILE] --keyring DIR [--json]\n"
    "  Check ADAPTER_DIR/plora.yml (or FILE): the artifact's SHA-256 and size against\n"
    "  the file, plorad's config_sha256 against adapter_config.json, and every\n"
    "  signature against the keyring: the prototype's signer.signature_b64 (tagged or\n"
    "  bare message, RSA-PSS any salt, or Ed25519) and each plorad.signatures entry\n"
    "  (strict). Valid = hashes match, at least one valid signature by a trusted\n"
    "  (present, not revoked) key (a plorad signature when the manifest has a plorad\n"
    "  section: the prototype's covers the weights only), and no trusted key's\n"
    "  signature fails (that would mean the manifest changed after it signed).\n"
    "  --json prints {ok, adapter, sha256, signatures: [{key_id, form, valid, trusted,\n"
    "  reason}], reasons}.\n"
    "  Exit 0 valid; 1 not valid (reasons listed); 2 bad option, unreadable or\n"
    "  malformed keyring or manifest.\n";

/* SHA-256 hex and size of a file; 0 or -1 with `why` filled. */
static int file_sha(const char *path, char hex[65], uint64_t *size, char *why, size_t cap)
{
    uint8_t dig[SHA256_LEN];
    struct crypto_diag d;

    crypto_diag_clear(&d);
    if (sha256_file(path, dig, size, &d) != 0) {
        snprintf(why, cap, "%s", d.msg);
        return -1;
    }
    sha256_hex(dig, hex);
    return 0;
}

/* ---- sign ------------------------------------------------------------- */

struct sign_opts {
    const char *dir, *key, *domain, *base_model;
    bool prototype, json;
};

struct sign_inputs {
    char weights[65], config[65], path[4096], cfg_path[4096], yml[4096];
    uint64_t size;
    struct peft_config *cfg;
    const char *base_model;
};

static int read_inputs(const struct sign_opts *o, struct sign_inputs *in)
{
    struct fusion_diag fd;
    char why[300];
    uint64_t csize;

    snprintf(in->path, sizeof(in->path), "%s/%s", o->dir, ADAPTER_FILE);
    snprintf(in->cfg_path, sizeof(in->cfg_path), "%s/%s", o->dir, PEFT_CONFIG_NAME);
    snprintf(in->yml, sizeof(in->yml), "%s/%s", o->dir, MANIFEST_FILENAME);
    if (file_sha(in->path, in->weights, &in->size, why, sizeof(why)) != 0)
        return cli_usage_error("sign", "%s", why);
    if (in->size == 0)
        return cli_usage_error("sign", "%s: empty file", in->path);
    if (file_sha(in->cfg_path, in->config, &csize, why, sizeof(why)) != 0)
        return cli_usage_error("sign", "%s", why);
    if (peft_config_load(&in->cfg, in->cfg_path, &fd) != 0)
        return cli_usage_error("sign", "%s: %s", in->cfg_path, fd.msg);
    in->base_model = o->base_model != NULL ? o->base_model : in->cfg->base_model;
    if (in->base_model == NULL || in->base_model[0] == '\0')
        return cli_usage_error("sign", "%s: base_model_name_or_path missing; pass --base-model",
                               in->cfg_path);
    if (!o->prototype && (!sig_domain_valid(o->domain) || !sig_base_model_valid(in->base_model)))
        return cli_usage_error("sign", "%s \"%s\" is not valid for a plorad signature (domain: "
                               "[a-z0-9][a-z0-9._-]{0,63}; base model: printable ASCII, no space)",
                               sig_domain_valid(o->domain) ? "base model" : "--domain",
                               sig_domain_valid(o->domain) ? in->base_model : o->domain);
    return CLI_OK;
}

/* Prototype fields from adapter_config.json (what its train_task fills). */
static int fill_lora(struct manifest *m, const struct peft_config *c, const char *cfg_path)
{
    json_t *dr = json_object_get(c->raw, "lora_dropout");
    long long alpha = c->lora_alpha >= 1 && c->lora_alpha < 1e15 ? (long long)c->lora_alpha : 0;

    if ((double)alpha != c->lora_alpha || alpha < 1)
        return cli_usage_error("sign", "%s: lora_alpha %g is not an integer >= 1 (plora.yml "
                               "needs one)", cfg_path, c->lora_alpha);
    m->lora.r = c->r;
    m->lora.alpha = alpha;
    m->lora.dropout = json_is_number(dr) ? json_number_value(dr) : 0.0;
    if (c->target_regex != NULL)
        return manifest_add_target(m, c->target_regex) == 0 ? CLI_OK
               : cli_usage_error("sign", "out of memory");
    for (size_t i = 0; i < c->n_target_modules; i++)
        if (manifest_add_target(m, c->target_modules[i]) != 0)
            return cli_usage_error("sign", "%s: too many target_modules", cfg_path);
    return CLI_OK;
}

static int fresh_manifest(const struct sign_opts *o, const struct sign_inputs *in,
                          struct manifest **out)
{
    struct manifest *m = NULL;
    char id[512];
    long long now = (long long)time(NULL);
    int rc;

    if (manifest_new(&m) != 0)
        return cli_usage_error("sign", "out of memory");
    snprintf(id, sizeof(id), "%s-%lld", o->domain, now);
    if ((rc = fill_lora(m, in->cfg, in->cfg_path)) != CLI_OK) {
        manifest_free(m);
        return rc;
    }
    m->artifacts.size_bytes = in->size;
    memcpy(m->artifacts.sha256, in->weights, 65);
    m->train_meta.timestamp_unix = now;
    if (manifest_set(&m->plasmid_id, id) || manifest_set(&m->domain, o->domain) ||
        manifest_set(&m->base_model, in->base_model) || manifest_set(&m->peft_format, "lora") ||
        manifest_set(&m->artifacts.filename, ADAPTER_FILE) ||
        manifest_set(&m->train_meta.dataset_id, o->domain) ||
        manifest_set(&m->safety.licence, "unknown") ||
        manifest_set(&m->compatibility.peft_min, "0.12.0") ||
        manifest_set(&m->compatibility.transformers, ">=4.42")) {
        manifest_free(m);
        return cli_usage_error("sign", "out of memory");
    }
    *out = m;
    return CLI_OK;
}

/* An existing plorad manifest for exactly this adapter is co-signed;
 * anything else is replaced by a fresh manifest. */
static int base_manifest(const struct sign_opts *o, const struct sign_inputs *in,
                         struct manifest **out)
{
    struct fusion_diag fd;
    struct manifest *m = NULL;

    if (!o->prototype && manifest_load(in->yml, &m, &fd) == 0 && m->has_plorad &&
        strcmp(m->artifacts.sha256, in->weights) == 0 &&
        strcmp(m->plorad.config_sha256, in->config) == 0 && strcmp(m->domain, o->domain) == 0 &&
        strcmp(m->base_model, in->base_model) == 0) {
        *out = m;
        return CLI_OK;
    }
    manifest_free(m);
    return fresh_manifest(o, in, out);
}

static int b64_of(const uint8_t *sig, size_t len, char **out)
{
    if ((*out = malloc(b64_encoded_len(len) + 1)) == NULL)
        return -1;
    b64_encode(sig, len, *out);
    return 0;
}

/* Put this key's plorad signature in (replacing an older one by the same key). */
static int add_plorad_sig(struct manifest *m, const struct key *k, const struct sign_inputs *in,
                          const char *domain)
{
    struct sig_adapter a = { .weights_sha256 = in->weights, .config_sha256 = in->config,
                             .domain = domain, .base_model = in->base_model };
    struct crypto_diag d;
    struct fusion_diag fd;
    uint8_t *sig = NULL;
    char *b64 = NULL;
    size_t len, w = 0;
    int rc = CLI_OK;

    for (size_t i = 0; i < m->plorad.n_sigs; i++) {   /* drop this key's old signature */
        if (strcmp(m->plorad.sigs[i].key_id, key_id(k)) == 0) {
            free(m->plorad.sigs[i].algo);
            free(m->plorad.sigs[i].sig_b64);
        } else {
            m->plorad.sigs[w++] = m->plorad.sigs[i];
        }
    }
    m->plorad.n_sigs = w;
    m->has_plorad = true;
    m->plorad.format = MANIFEST_FORMAT;
    memcpy(m->plorad.config_sha256, in->config, 65);
    if (sig_sign_adapter(k, &a, &sig, &len, &d) != 0)
        rc = cli_usage_error("sign", "signing: %s", d.msg);
    else if (b64_of(sig, len, &b64) != 0 ||
             manifest_add_sig(m, key_id(k), key_type(k) == KEY_TYPE_ED25519 ? "ED25519"
                                                                            : "RSA-PSS-SHA256",
                              b64, &fd) != 0)
        rc = cli_usage_error("sign", "out of memory or too many signatures");
    free(sig);
    free(b64);
    return rc;
}

static int set_proto_sig(struct manifest *m, const struct key *k, const char *weights)
{
    struct crypto_diag d;
    uint8_t *sig = NULL;
    char *b64 = NULL;
    size_t len;
    int rc = CLI_OK;

    if (m->signer.signature_b64[0] != '\0' && m->has_plorad)
        return CLI_OK;   /* co-signing keeps the first publisher's prototype signature */
    if (vote_proto_sign(k, VOTE_FORM_PROTO_BARE, weights, &sig, &len, &d) != 0)
        return cli_usage_error("sign", "signing: %s", d.msg);
    if (b64_of(sig, len, &b64) != 0 ||
        manifest_set(&m->signer.signature_b64, b64) != 0 ||
        manifest_set(&m->signer.algo, key_type(k) == KEY_TYPE_ED25519 ? "ED25519-SHA256"
                                                                      : "RSA-PSS-SHA256") != 0 ||
        manifest_set(&m->signer.pubkey_fingerprint, key_id(k)) != 0)
        rc = cli_usage_error("sign", "out of memory");
    free(sig);
    free(b64);
    return rc;
}

static void sign_report(const struct sign_opts *o, const struct sign_inputs *in,
                        const struct manifest *m, const struct key *k)
{
    if (o->json) {
        cli_print_json(json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "manifest", in->yml,
                                 "adapter", in->path, "sha256", in->weights, "key_id", key_id(k),
                                 "form", o->prototype ? "prototype" : "plorad",
                                 "plorad_signatures", (json_int_t)m->plorad.n_sigs));
        return;
    }
    printf("wrote %s\n  adapter sha256 %s\n  signed by %s (%s form%s)\n", in->yml, in->weights,
           key_id(k), o->prototype ? "prototype" : "plorad",
           o->prototype ? "" : " + prototype bare signature");
}

static int sign_run(const struct sign_opts *o)
{
    struct sign_inputs in = { .cfg = NULL };
    struct manifest *m = NULL;
    struct key *k = NULL;
    struct crypto_diag d;
    struct fusion_diag fd;
    int rc;

    if (key_load_private_pem(&k, o->key, &d) != 0) {
        rc = cli_usage_error("sign", "--key %s", d.msg);
        goto out;
    }
    if ((rc = read_inputs(o, &in)) != CLI_OK || (rc = base_manifest(o, &in, &m)) != CLI_OK ||
        (rc = set_proto_sig(m, k, in.weights)) != CLI_OK ||
        (!o->prototype && (rc = add_plorad_sig(m, k, &in, o->domain)) != CLI_OK))
        goto out;
    if (manifest_write(m, in.yml, &fd) != 0) {
        rc = cli_usage_error("sign", "%s: %s", in.yml, fd.msg);
        goto out;
    }
    sign_report(o, &in, m, k);
    rc = CLI_OK;
out:
    manifest_free(m);
    peft_config_free(in.cfg);
    key_free(k);
    return rc;
}

int cmd_sign(int argc, char **argv)
{
    static const struct option opts[] = {
        { "key", required_argument, NULL, 'k' }, { "domain", required_argument, NULL, 'd' },
        { "base-model", required_argument, NULL, 'b' }, { "prototype", no_argument, NULL, 'p' },
        { "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct sign_opts o = { NULL, NULL, NULL, NULL, false, false };
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': o.key = optarg; break;
        case 'd': o.domain = optarg; break;
        case 'b': o.base_model = optarg; break;
        case 'p': o.prototype = true; break;
        case 'j': o.json = true; break;
        case 'h': fputs(sign_usage, stdout); return CLI_OK;
        default: return cli_usage_error("sign", "unknown option (see plora sign --help)");
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("sign", "expected one ADAPTER_DIR (see plora sign --help)");
    o.dir = argv[optind];
    if (o.key == NULL || o.domain == NULL || o.domain[0] == '\0')
        return cli_usage_error("sign", "--key KEY and --domain D are required");
    return sign_run(&o);
}

/* ---- verify ----------------------------------------------------------- */

struct verify_ctx {
    const struct keyring *kr;
    const struct manifest *m;
    json_t *sigs, *reasons;
    bool any_trusted_valid;    /* of the form that must hold (plorad's if present) */
};

static void add_reason(struct verify_ctx *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_reason(struct verify_ctx *v, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_array_append_new(v->reasons, json_string(buf));
}

static void add_sig(struct verify_ctx *v, const char *key, const char *form, bool valid,
                    const char *reason)
{
    bool trusted = key != NULL && keyring_is_trusted(v->kr, key);

    json_array_append_new(v->sigs, json_pack("{s:s?, s:s, s:b, s:b, s:s?}", "key_id", key,
                                             "form", form, "valid", valid, "trusted", trusted,
                                             "reason", reason));
    /* With a plorad section, only plorad's signatures bind config, domain and
     * base model: the prototype's covers the weights alone. */
    if (valid && trusted && (!v->m->has_plorad || strcmp(form, "plorad") == 0))
        v->any_trusted_valid = true;
    /* A trusted key's signature that no longer verifies means the manifest
     * changed after it signed: tampering, whatever else verifies. */
    if (!valid && trusted)
        add_reason(v, "bad_signature: %s signature by trusted key %s does not verify (%s)", form,
                   key, reason != NULL ? reason : "invalid");
}

static void check_proto_sig(struct verify_ctx *v)
{
    const char *b64 = v->m->signer.signature_b64;
    struct crypto_diag d;
    struct vote *vt = NULL;
    enum vote_form f = VOTE_FORM_PROTO_ANY;
    uint8_t *sig = NULL;
    size_t len;

    if (b64[0] == '\0')
        return;
    if (b64_decode(b64, strlen(b64), &sig, &len, &d) != 0) {
        add_sig(v, NULL, "prototype", false, "signer.signature_b64 is not base64");
        return;
    }
    if (vote_proto_new(&vt, VOTE_FORM_PROTO_ANY, v->m->artifacts.sha256, sig, len, &d) != 0)
        add_sig(v, NULL, "prototype", false, d.msg);
    else if (vote_identify(vt, v->kr, &d) != 0)
        add_sig(v, NULL, "prototype", false, "no keyring key verifies it (tagged or bare)");
    else {
        int rc = vote_verify(vt, keyring_get(v->kr, vt->signer), &f, &d);
        add_sig(v, vt->signer, rc == 0 && f == VOTE_FORM_PROTO_TAGGED ? "prototype-tagged"
                                                                      : "prototype-bare",
                rc == 0, keyring_is_revoked(v->kr, vt->signer) ? "key revoked" : NULL);
    }
    vote_free(vt);
    free(sig);
}

static void check_plorad_sig(struct verify_ctx *v, const struct manifest_sig *s)
{
    const struct manifest *m = v->m;
    struct sig_adapter a = { .weights_sha256 = m->artifacts.sha256,
                             .config_sha256 = m->plorad.config_sha256, .domain = m->domain,
                             .base_model = m->base_model };
    const struct key *k = keyring_get(v->kr, s->key_id);
    struct crypto_diag d;
    struct vote *vt = NULL;
    uint8_t *sig = NULL;
    size_t len;

    if (k == NULL)
        add_sig(v, s->key_id, "plorad", false, "key not in the keyring");
    else if (b64_decode(s->sig_b64, strlen(s->sig_b64), &sig, &len, &d) != 0)
        add_sig(v, s->key_id, "plorad", false, "sig_b64 is not base64");
    else if (vote_publisher_new(&vt, &a, s->key_id, sig, len, &d) != 0)
        add_sig(v, s->key_id, "plorad", false, d.msg);
    else if (strcmp(s->algo, key_type(k) == KEY_TYPE_ED25519 ? "ED25519" : "RSA-PSS-SHA256") != 0)
        add_sig(v, s->key_id, "plorad", false, "algo does not match the key type");
    else if (vote_verify(vt, k, NULL, &d) != 0)
        add_sig(v, s->key_id, "plorad", false, "signature does not verify");
    else
        add_sig(v, s->key_id, "plorad", true,
                keyring_is_revoked(v->kr, s->key_id) ? "key revoked" : NULL);
    vote_free(vt);
    free(sig);
}

/* Artifact and config bytes against the manifest. */
static void check_files(struct verify_ctx *v, const char *dir, char sha[65])
{
    const struct manifest *m = v->m;
    char path[4096], why[300], cfg[65];
    uint64_t size;

    snprintf(path, sizeof(path), "%s/%s", dir, m->artifacts.filename);
    sha[0] = '\0';
    if (file_sha(path, sha, &size, why, sizeof(why)) != 0) {
        add_reason(v, "artifact_missing: %s", why);
        return;
    }
    if (strcmp(sha, m->artifacts.sha256) != 0)
        add_reason(v, "sha256_mismatch: %s: manifest says %s, file has %s", path,
                   m->artifacts.sha256, sha);
    if (size != m->artifacts.size_bytes)
        add_reason(v, "size_mismatch: %s: manifest says %llu bytes, file has %llu", path,
                   m->artifacts.size_bytes, (unsigned long long)size);
    if (!m->has_plorad)
        return;
    snprintf(path, sizeof(path), "%s/%s", dir, PEFT_CONFIG_NAME);
    if (file_sha(path, cfg, &size, why, sizeof(why)) != 0)
        add_reason(v, "config_missing: %s", why);
    else if (strcmp(cfg, m->plorad.config_sha256) != 0)
        add_reason(v, "config_sha256_mismatch: %s: manifest says %s, file has %s", path,
                   m->plorad.config_sha256, cfg);
}

static void verify_print(const char *dir, const char *sha, bool ok, json_t *sigs, json_t *reasons,
                         bool json)
{
    size_t i;
    json_t *e;

    if (json) {
        cli_print_json(json_pack("{s:b, s:s, s:s?, s:O, s:O}", "ok", ok, "adapter", dir,
                                 "sha256", sha[0] ? sha : NULL, "signatures", sigs,
                                 "reasons", reasons));
        return;
    }
    printf("%s: %s\n  sha256 %s\n", dir, ok ? "VALID" : "NOT VALID", sha[0] ? sha : "(unreadable)");
    json_array_foreach(sigs, i, e) {
        const char *k = json_string_value(json_object_get(e, "key_id"));
        const char *r = json_string_value(json_object_get(e, "reason"));
        printf("  signature %-16s key %.16s%s  %s%s%s%s\n",
               json_string_value(json_object_get(e, "form")), k ? k : "(unknown)", k ? "..." : "",
               json_is_true(json_object_get(e, "valid")) ? "valid" : "INVALID",
               json_is_true(json_object_get(e, "trusted")) ? ", trusted" : ", not trusted",
               r ? ": " : "", r ? r : "");
    }
    json_array_foreach(reasons, i, e)
        printf("  reason: %s\n", json_string_value(e));
}

static int verify_run(const char *dir, const char *mpath, const char *krdir, bool json)
{
    struct verify_ctx v = { .kr = NULL };
    struct keyring *kr = NULL;
    struct manifest *m = NULL;
    struct crypto_diag d;
    struct fusion_diag fd;
    char path[4096], sha[65];
    bool ok;
    int rc;

    if (keyring_load(&kr, krdir, &d) != 0)
        return cli_usage_error("verify", "--keyring %s: %s", krdir, d.msg);
    snprintf(path, sizeof(path), "%s/%s", dir, MANIFEST_FILENAME);
    if (manifest_load(mpath != NULL ? mpath : path, &m, &fd) != 0) {
        keyring_free(kr);
        return cli_usage_error("verify", "%s: %s", mpath != NULL ? mpath : path, fd.msg);
    }
    v = (struct verify_ctx){ .kr = kr, .m = m, .sigs = json_array(), .reasons = json_array() };
    check_files(&v, dir, sha);
    check_proto_sig(&v);
    for (size_t i = 0; i < m->plorad.n_sigs; i++)
        check_plorad_sig(&v, &m->plorad.sigs[i]);
    if (!v.any_trusted_valid)
        add_reason(&v, "no_trusted_signature: no valid %ssignature by a trusted key (%zu "
                   "signature(s) checked, %zu trusted key(s))", m->has_plorad ? "plorad " : "",
                   json_array_size(v.sigs), keyring_trusted_count(kr));
    ok = json_array_size(v.reasons) == 0;
    verify_print(dir, sha, ok, v.sigs, v.reasons, json);
    rc = ok ? CLI_OK : CLI_NEGATIVE;
    json_decref(v.sigs);
    json_decref(v.reasons);
    manifest_free(m);
    keyring_free(kr);
    return rc;
}

int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        { "manifest", required_argument, NULL, 'm' }, { "keyring", required_argument, NULL, 'k' },
        { "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *manifest = NULL, *keyring = NULL;
    bool json = false;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': manifest = optarg; break;
        case 'k': keyring = optarg; break;
        case 'j': json = true; break;
        case 'h': fputs(verify_usage, stdout); return CLI_OK;
        default: return cli_usage_error("verify", "unknown option (see plora verify --help)");
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("verify", "expected one ADAPTER_DIR (see plora verify --help)");
    if (keyring == NULL)
        return cli_usage_error("verify", "--keyring DIR is required");
    return verify_run(argv[optind], manifest, keyring, json);
}
