/* fusion/manifest.c: plora.yml reader (node tree from manifest_yaml.c ->
 * typed, validated fields) and the manifest object. The writer is in
 * manifest_write.c. See manifest.h for the rules. */
#define _POSIX_C_SOURCE 200809L
#include "manifest.h"

#include <errno.h>
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hex.h"

#include "manifest_yaml.h"

/* ---- typed field access ------------------------------------------------ */

struct rd {
    struct fusion_diag *d;
    const char *section;    /* "" at the top level, else "lora" etc. */
};

static int rd_fail(struct rd *r, int code, const struct manifest_ynode *y, const char *key,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int rd_fail(struct rd *r, int code, const struct manifest_ynode *y, const char *key,
                   const char *fmt, ...)
{
    char why[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    fusion_fail(r->d, code, 0, "%s%s%s%s%s", r->section, r->section[0] ? "." : "", key,
                y != NULL ? ": " : " ", why);
    if (r->d != NULL && y != NULL) {
        size_t used = strlen(r->d->msg);
        snprintf(r->d->msg + used, sizeof(r->d->msg) - used, " (line %zu)", y->line);
        r->d->line = y->line;
    }
    return code;
}

/* Value of `key` in mapping `m`, or NULL. Keys are unique (checked). */
static const struct manifest_ynode *map_get(const struct manifest_ynode *m, const char *key)
{
    for (size_t i = 0; i + 1 < m->n; i += 2)
        if (m->kids[i]->s != NULL && strcmp(m->kids[i]->s, key) == 0)
            return m->kids[i + 1];
    return NULL;
}

static int need(struct rd *r, const struct manifest_ynode *m, const char *key, const struct manifest_ynode **out)
{
    *out = map_get(m, key);
    if (*out == NULL)
        return rd_fail(r, FUSION_E_MANIFEST_MISSING, NULL, key, "field required");
    return 0;
}

static int quote_short(char *out, size_t cap, const char *s)
{
    return snprintf(out, cap, "'%.40s%s'", s, strlen(s) > 40 ? "..." : "");
}

static int rd_str(struct rd *r, const struct manifest_ynode *m, const char *key, char **out)
{
    const struct manifest_ynode *y;
    char *s;
    int rc;

    if ((rc = need(r, m, key, &y)) != 0)
        return rc;
    if (y->kind != MY_STR)
        return rd_fail(r, FUSION_E_MANIFEST_TYPE, y, key, "expected a string, got %s %.40s",
                       manifest_yaml_kind_name(y->kind), y->s != NULL ? y->s : "");
    if ((s = strdup(y->s)) == NULL)
        return fusion_fail(r->d, FUSION_E_NOMEM, 0, "out of memory");
    free(*out);
    *out = s;
    return 0;
}

/* Integer text as YAML 1.1 writes it: sign, then 0x / 0b / 0 (octal) / decimal
 * digits (underscores already removed). Returns 0 or -1 (bad or overflow). */
static int int_text_value(const char *p, long long *out)
{
    unsigned long long v;
    int base = 10;
    bool neg = false;
    char *end;

    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X' || p[1] == 'b' || p[1] == 'B'))
        base = (p[1] == 'x' || p[1] == 'X') ? 16 : 2, p += 2;
    else if (p[0] == '0' && p[1] != '\0')
        base = 8, p += 1;
    if (!((*p >= '0' && *p <= '9') || (base == 16 && isxdigit((unsigned char)*p))))
        return -1;
    errno = 0;
    v = strtoull(p, &end, base);
    if (end == p || *end != '\0' || errno != 0 || v > (neg ? (unsigned long long)LLONG_MAX + 1
                                                                : (unsigned long long)LLONG_MAX))
        return -1;
    *out = neg ? (long long)(0 - v) : (long long)v;
    return 0;
}

/* Number from a scalar, with the prototype's lax coercions: ints, floats,
 * and strings holding a decimal number. Non-finite values are refused.
 * *iv is exact for YAML ints; *integral says whether the value is whole. */
static int scalar_number(struct rd *r, const struct manifest_ynode *y, const char *key, double *out,
                         long long *iv, bool *integral)
{
    char *end, buf[MANIFEST_MAX_STR + 1];
    size_t j = 0;

    if (y->kind != MY_INT && y->kind != MY_FLOAT && y->kind != MY_STR)
        return rd_fail(r, FUSION_E_MANIFEST_TYPE, y, key, "expected a number, got %s %.40s",
                       manifest_yaml_kind_name(y->kind), y->s != NULL ? y->s : "");
    for (const char *p = y->s; *p; p++)   /* YAML allows 1_000; a string doesn't */
        if (!(y->kind != MY_STR && *p == '_'))
            buf[j++] = *p;
    buf[j] = '\0';
    if (y->kind == MY_INT) {
        if (strchr(buf, ':') != NULL || int_text_value(buf, iv) != 0)
            return rd_fail(r, FUSION_E_MANIFEST_VALUE, y, key, "integer %.40s not supported "
                           "(sexagesimal or out of range)", y->s);
        *out = (double)*iv;
        *integral = true;
        return 0;
    }
    if (y->kind == MY_STR && (j == 0 || strspn(buf, "0123456789+-.eE") != j))
        return rd_fail(r, FUSION_E_MANIFEST_TYPE, y, key, "expected a number, got string '%.40s'",
                       y->s);
    errno = 0;
    *out = strtod(buf, &end);
    if (end == buf || *end != '\0' || !isfinite(*out))
        return rd_fail(r, y->kind == MY_STR ? FUSION_E_MANIFEST_TYPE : FUSION_E_MANIFEST_VALUE, y,
                       key, "expected a finite number, got %.40s", y->s);
    *integral = *out == floor(*out) && fabs(*out) < 9.2e18;
    *iv = *integral ? (long long)*out : 0;
    return 0;
}

static int rd_int(struct rd *r, const struct manifest_ynode *m, const char *key, long long lo,
                  long long *out)
{
    const struct manifest_ynode *y;
    double v;
    bool integral;
    int rc;

    if ((rc = need(r, m, key, &y)) != 0 ||
        (rc = scalar_number(r, y, key, &v, out, &integral)) != 0)
        return rc;
    if (!integral)
        return rd_fail(r, FUSION_E_MANIFEST_VALUE, y, key,
                       "expected an integer, got %.40s (a number with a fractional part)", y->s);
    if (*out < lo)
        return rd_fail(r, FUSION_E_MANIFEST_VALUE, y, key, "%s is below %lld", y->s, lo);
    return 0;
}

static int rd_float(struct rd *r, const struct manifest_ynode *m, const char *key, double lo, double hi,
                    double *out)
{
    const struct manifest_ynode *y;
    bool integral;
    long long iv;
    int rc;

    if ((rc = need(r, m, key, &y)) != 0 ||
        (rc = scalar_number(r, y, key, out, &iv, &integral)) != 0)
        return rc;
    if (*out < lo)
        return rd_fail(r, FUSION_E_MANIFEST_VALUE, y, key, "%s is below %g", y->s, lo);
    if (*out > hi)
        return rd_fail(r, FUSION_E_MANIFEST_VALUE, y, key, "%s is above %g", y->s, hi);
    return 0;
}

/* Optional float: absent or null leaves *has false. */
static int rd_opt_float(struct rd *r, const struct manifest_ynode *m, const char *key, double lo,
                        double *out, bool *has)
{
    const struct manifest_ynode *y = map_get(m, key);

    *has = false;
    if (y == NULL || y->kind == MY_NULL)
        return 0;
    *has = true;
    return rd_float(r, m, key, lo, HUGE_VAL, out);
}

static int rd_section(struct rd *r, const struct manifest_ynode *root, const char *key,
                      const struct manifest_ynode **out)
{
    int rc;

    r->section = "";
    if ((rc = need(r, root, key, out)) != 0)
        return rc;
    if ((*out)->kind != MY_MAP)
        return rd_fail(r, FUSION_E_MANIFEST_TYPE, *out, key, "expected a mapping, got %s",
                       manifest_yaml_kind_name((*out)->kind));
    r->section = key;
    return 0;
}

/* ---- sections --------------------------------------------------------- */

static int rd_str_list(struct rd *r, const struct manifest_ynode *m, const char *key, char ***out,
                       size_t *n)
{
    const struct manifest_ynode *y;
    int rc;

    if ((rc = need(r, m, key, &y)) != 0)
        return rc;
    if (y->kind != MY_SEQ)
        return rd_fail(r, FUSION_E_MANIFEST_TYPE, y, key, "expected a list, got %s",
                       manifest_yaml_kind_name(y->kind));
    if (y->n > MANIFEST_MAX_LIST)
        return rd_fail(r, FUSION_E_MANIFEST_LIMIT, y, key, "%zu items, more than %u", y->n,
                       (unsigned)MANIFEST_MAX_LIST);
    if (y->n > 0 && (*out = calloc(y->n, sizeof(**out))) == NULL)
        return fusion_fail(r->d, FUSION_E_NOMEM, 0, "out of memory");
    for (size_t i = 0; i < y->n; i++) {
        if (y->kids[i]->kind != MY_STR)
            return rd_fail(r, FUSION_E_MANIFEST_TYPE, y->kids[i], key,
                           "item %zu: expected a string, got %s", i, manifest_yaml_kind_name(y->kids[i]->kind));
        if (((*out)[i] = strdup(y->kids[i]->s)) == NULL)
            return fusion_fail(r->d, FUSION_E_NOMEM, 0, "out of memory");
        (*n)++;
    }
    return 0;
}

static int rd_top(struct rd *r, const struct manifest_ynode *root, struct manifest *m)
{
    const struct manifest_ynode *y;
    int rc;

    r->section = "";
    /* Literal[0] in the prototype: 0, 0.0 and "0" pass (false too there; not here). */
    if ((rc = rd_int(r, root, "schema_version", LLONG_MIN, &m->schema_version)) != 0)
        return rc;
    if (m->schema_version != 0) {
        y = map_get(root, "schema_version");
        return rd_fail(r, FUSION_E_MANIFEST_VALUE, y, "schema_version", "must be 0, got %.40s",
                       y->s);
    }
    if ((rc = rd_str(r, root, "plasmid_id", &m->plasmid_id)) != 0 ||
        (rc = rd_str(r, root, "domain", &m->domain)) != 0 ||
        (rc = rd_str(r, root, "base_model", &m->base_model)) != 0 ||
        (rc = rd_str(r, root, "peft_format", &m->peft_format)) != 0)
        return rc;
    return 0;
}

static int rd_lora_artifacts(struct rd *r, const struct manifest_ynode *root, struct manifest *m)
{
    const struct manifest_ynode *s, *y;
    long long size;
    int rc;

    if ((rc = rd_section(r, root, "lora", &s)) != 0 ||
        (rc = rd_int(r, s, "r", 1, &m->lora.r)) != 0 ||
        (rc = rd_int(r, s, "alpha", 1, &m->lora.alpha)) != 0 ||
        (rc = rd_float(r, s, "dropout", 0.0, 1.0, &m->lora.dropout)) != 0 ||
        (rc = rd_str_list(r, s, "target_modules", &m->lora.target_modules,
                          &m->lora.n_target_modules)) != 0)
        return rc;
    if ((rc = rd_section(r, root, "artifacts", &s)) != 0 ||
        (rc = rd_str(r, s, "filename", &m->artifacts.filename)) != 0 ||
        (rc = need(r, s, "sha256", &y)) != 0)
        return rc;
    if (y->kind != MY_STR || !hex_is_sha256(y->s))
        return rd_fail(r, FUSION_E_MANIFEST_VALUE, y, "sha256",
                       "'%.24s...' is not 64 lowercase hex digits", y->s != NULL ? y->s : "");
    memcpy(m->artifacts.sha256, y->s, 65);
    if ((rc = rd_int(r, s, "size_bytes", 1, &size)) != 0)
        return rc;
    m->artifacts.size_bytes = (unsigned long long)size;
    return 0;
}

static int rd_meta(struct rd *r, const struct manifest_ynode *root, struct manifest *m)
{
    const struct manifest_ynode *s;
    int rc;

    if ((rc = rd_section(r, root, "train_meta", &s)) != 0 ||
        (rc = rd_int(r, s, "seed", LLONG_MIN, &m->train_meta.seed)) != 0 ||
        (rc = rd_int(r, s, "epochs", LLONG_MIN, &m->train_meta.epochs)) != 0 ||
        (rc = rd_str(r, s, "dataset_id", &m->train_meta.dataset_id)) != 0 ||
        (rc = rd_int(r, s, "sample_count", LLONG_MIN, &m->train_meta.sample_count)) != 0 ||
        (rc = rd_int(r, s, "timestamp_unix", LLONG_MIN, &m->train_meta.timestamp_unix)) != 0)
        return rc;
    if ((rc = rd_section(r, root, "metrics", &s)) != 0 ||
        (rc = rd_float(r, s, "val_ppl_before", -HUGE_VAL, HUGE_VAL,
                       &m->metrics.val_ppl_before)) != 0 ||
        (rc = rd_float(r, s, "val_ppl_after", -HUGE_VAL, HUGE_VAL,
                       &m->metrics.val_ppl_after)) != 0 ||
        (rc = rd_float(r, s, "delta_ppl", -HUGE_VAL, HUGE_VAL, &m->metrics.delta_ppl)) != 0 ||
        (rc = rd_opt_float(r, s, "val_em", -HUGE_VAL, &m->metrics.val_em,
                           &m->metrics.has_val_em)) != 0 ||
        (rc = rd_opt_float(r, s, "val_chrf", -HUGE_VAL, &m->metrics.val_chrf,
                           &m->metrics.has_val_chrf)) != 0)
        return rc;
    if ((rc = rd_section(r, root, "safety", &s)) != 0 ||
        (rc = rd_str(r, s, "licence", &m->safety.licence)) != 0 ||
        (rc = rd_float(r, s, "poisoning_score", 0.0, HUGE_VAL, &m->safety.poisoning_score)) != 0)
        return rc;
    return 0;
}

static int rd_signer(struct rd *r, const struct manifest_ynode *root, struct manifest *m)
{
    const struct manifest_ynode *s;
    int rc;

    if ((rc = rd_section(r, root, "signer", &s)) != 0 ||
        (rc = rd_str(r, s, "algo", &m->signer.algo)) != 0 ||
        (rc = rd_str(r, s, "pubkey_fingerprint", &m->signer.pubkey_fingerprint)) != 0 ||
        (rc = rd_str(r, s, "signature_b64", &m->signer.signature_b64)) != 0)
        return rc;
    if ((rc = rd_section(r, root, "compatibility", &s)) != 0 ||
        (rc = rd_str(r, s, "peft_min", &m->compatibility.peft_min)) != 0 ||
        (rc = rd_str(r, s, "transformers", &m->compatibility.transformers)) != 0)
        return rc;
    return 0;
}

static int rd_plorad_sig(struct rd *r, const struct manifest_ynode *y, size_t i, struct manifest *m)
{
    static const char *const known[] = { "key_id", "algo", "sig_b64" };
    char *key_id = NULL, *algo = NULL, *sig = NULL;
    int rc;

    if (y->kind != MY_MAP)
        return rd_fail(r, FUSION_E_MANIFEST_TYPE, y, "signatures", "item %zu: expected a mapping",
                       i);
    for (size_t k = 0; k < y->n; k += 2) {
        bool ok = false;
        for (size_t j = 0; j < 3; j++)
            ok = ok || strcmp(y->kids[k]->s, known[j]) == 0;
        if (!ok)
            return rd_fail(r, FUSION_E_MANIFEST_VALUE, y->kids[k], "signatures",
                           "item %zu: unknown field '%.40s'", i, y->kids[k]->s);
    }
    r->section = "plorad.signatures";
    if ((rc = rd_str(r, y, "key_id", &key_id)) == 0 && (rc = rd_str(r, y, "algo", &algo)) == 0 &&
        (rc = rd_str(r, y, "sig_b64", &sig)) == 0)
        rc = manifest_add_sig(m, key_id, algo, sig, r->d);
    r->section = "plorad";
    free(key_id);
    free(algo);
    free(sig);
    return rc;
}

static int rd_plorad(struct rd *r, const struct manifest_ynode *root, struct manifest *m)
{
    static const char *const known[] = { "format", "config_sha256", "kld_eps", "fisher",
                                         "signatures" };
    const struct manifest_ynode *s, *y;
    char *hex = NULL;
    int rc;

    if (map_get(root, "plorad") == NULL)
        return 0;
    if ((rc = rd_section(r, root, "plorad", &s)) != 0)
        return rc;
    m->has_plorad = true;
    for (size_t k = 0; k < s->n; k += 2) {
        bool ok = false;
        for (size_t j = 0; j < sizeof(known) / sizeof(known[0]); j++)
            ok = ok || strcmp(s->kids[k]->s, known[j]) == 0;
        if (!ok)
            return rd_fail(r, FUSION_E_MANIFEST_VALUE, s->kids[k], s->kids[k]->s, "unknown field");
    }
    if ((rc = rd_int(r, s, "format", LLONG_MIN, &m->plorad.format)) != 0 ||
        (rc = rd_str(r, s, "config_sha256", &hex)) != 0)
        return rc;
    snprintf(m->plorad.config_sha256, sizeof(m->plorad.config_sha256), "%s", hex);
    rc = hex_is_sha256(hex) ? 0 : rd_fail(r, FUSION_E_MANIFEST_VALUE, map_get(s, "config_sha256"),
                                          "config_sha256", "'%.24s...' is not 64 lowercase hex", hex);
    free(hex);
    if (rc != 0 ||
        (rc = rd_opt_float(r, s, "kld_eps", 0.0, &m->plorad.kld_eps, &m->plorad.has_kld_eps)) != 0 ||
        (rc = rd_opt_float(r, s, "fisher", 0.0, &m->plorad.fisher, &m->plorad.has_fisher)) != 0 ||
        (rc = need(r, s, "signatures", &y)) != 0)
        return rc;
    if (y->kind != MY_SEQ)
        return rd_fail(r, FUSION_E_MANIFEST_TYPE, y, "signatures", "expected a list, got %s",
                       manifest_yaml_kind_name(y->kind));
    for (size_t i = 0; i < y->n && rc == 0; i++)
        rc = rd_plorad_sig(r, y->kids[i], i, m);
    return rc;
}

/* ---- validation ------------------------------------------------------- */

static int vfail(struct fusion_diag *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int vfail(struct fusion_diag *d, int code, const char *fmt, ...)
{
    va_list ap;

    if (d == NULL)
        return code;
    d->code = code;
    d->offset = 0;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
    va_end(ap);
    return code;
}

static bool one_of(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return true;
    return false;
}

static int validate_strings(const struct manifest *m, struct fusion_diag *d)
{
    static const char *const formats[] = { "lora", "ia3", "adalora" };
    static const char *const algos[] = { "", "ED25519-SHA256", "RSA-PSS-SHA256", "none" };
    const char *f = m->artifacts.filename;
    char q[64];

    if (m->plasmid_id == NULL || m->domain == NULL || m->base_model == NULL ||
        m->peft_format == NULL || f == NULL || m->train_meta.dataset_id == NULL ||
        m->safety.licence == NULL || m->signer.algo == NULL ||
        m->signer.pubkey_fingerprint == NULL || m->signer.signature_b64 == NULL ||
        m->compatibility.peft_min == NULL || m->compatibility.transformers == NULL)
        return vfail(d, FUSION_E_MANIFEST_MISSING, "a required string field is unset");
    if (!one_of(m->peft_format, formats, 3))
        return quote_short(q, sizeof(q), m->peft_format),
               vfail(d, FUSION_E_MANIFEST_VALUE, "peft_format: %s is not one of lora, ia3, adalora", q);
    if (!one_of(m->signer.algo, algos, 4))
        return quote_short(q, sizeof(q), m->signer.algo),
               vfail(d, FUSION_E_MANIFEST_VALUE,
                     "signer.algo: %s is not one of '', ED25519-SHA256, RSA-PSS-SHA256, none", q);
    /* plorad only: the prototype joins this to the adapter dir unchecked. */
    if (f[0] == '\0' || strchr(f, '/') != NULL || strcmp(f, ".") == 0 || strcmp(f, "..") == 0)
        return quote_short(q, sizeof(q), f),
               vfail(d, FUSION_E_MANIFEST_VALUE,
                     "artifacts.filename: %s must be a plain file name (no '/', not . or ..)", q);
    return 0;
}

static int validate_numbers(const struct manifest *m, struct fusion_diag *d)
{
    double before = m->metrics.val_ppl_before, after = m->metrics.val_ppl_after;
    char got[48], want[48];

    if (m->schema_version != 0)
        return vfail(d, FUSION_E_MANIFEST_VALUE, "schema_version: must be 0, got %lld",
                     m->schema_version);
    if (m->lora.r < 1 || m->lora.alpha < 1)
        return vfail(d, FUSION_E_MANIFEST_VALUE, "lora.%s: %lld is below 1",
                     m->lora.r < 1 ? "r" : "alpha", m->lora.r < 1 ? m->lora.r : m->lora.alpha);
    if (!(m->lora.dropout >= 0.0 && m->lora.dropout <= 1.0))
        return vfail(d, FUSION_E_MANIFEST_VALUE, "lora.dropout: %g is outside [0, 1]",
                     m->lora.dropout);
    if (!hex_is_sha256(m->artifacts.sha256) || m->artifacts.size_bytes < 1)
        return vfail(d, FUSION_E_MANIFEST_VALUE, "artifacts.%s is invalid",
                     m->artifacts.size_bytes < 1 ? "size_bytes" : "sha256");
    if (!isfinite(before) || !isfinite(after) || !isfinite(m->metrics.delta_ppl) ||
        !(m->safety.poisoning_score >= 0.0) || !isfinite(m->safety.poisoning_score))
        return vfail(d, FUSION_E_MANIFEST_VALUE, "metrics/safety: a value is not finite or negative");
    /* The prototype's rule: skipped when both perplexities are placeholder zeros. */
    if (!(fabs(before) < 1e-9 && fabs(after) < 1e-9) &&
        fabs(m->metrics.delta_ppl - (after - before)) > 1e-6)
        return manifest_yaml_float(m->metrics.delta_ppl, got), manifest_yaml_float(after - before, want),
               vfail(d, FUSION_E_MANIFEST_VALUE,
                     "metrics.delta_ppl: %s does not match val_ppl_after - val_ppl_before (%s)",
                     got, want);
    return 0;
}

static int validate_plorad(const struct manifest *m, struct fusion_diag *d)
{
    if (!m->has_plorad)
        return 0;
    if (m->plorad.format != MANIFEST_FORMAT)
        return vfail(d, FUSION_E_MANIFEST_VALUE, "plorad.format: %lld is not %d",
                     m->plorad.format, MANIFEST_FORMAT);
    if (!hex_is_sha256(m->plorad.config_sha256))
        return vfail(d, FUSION_E_MANIFEST_VALUE, "plorad.config_sha256: not 64 lowercase hex");
    if (m->plorad.has_kld_eps && !(isfinite(m->plorad.kld_eps) && m->plorad.kld_eps >= 0.0))
        return vfail(d, FUSION_E_MANIFEST_VALUE, "plorad.kld_eps: %g is not finite and >= 0",
                     m->plorad.kld_eps);
    if (m->plorad.has_fisher && !(isfinite(m->plorad.fisher) && m->plorad.fisher > 0.0))
        return vfail(d, FUSION_E_MANIFEST_VALUE, "plorad.fisher: %g is not finite and > 0",
                     m->plorad.fisher);
    for (size_t i = 0; i < m->plorad.n_sigs; i++) {
        const struct manifest_sig *s = &m->plorad.sigs[i];
        if (!hex_is_sha256(s->key_id) ||
            (strcmp(s->algo, "RSA-PSS-SHA256") != 0 && strcmp(s->algo, "ED25519") != 0) ||
            s->sig_b64[0] == '\0')
            return vfail(d, FUSION_E_MANIFEST_VALUE,
                         "plorad.signatures[%zu]: key_id must be 64 hex, algo RSA-PSS-SHA256 or "
                         "ED25519, sig_b64 non-empty (algo '%.20s')", i, s->algo);
    }
    return 0;
}

int manifest_validate(const struct manifest *m, struct fusion_diag *d)
{
    int rc;

    if (m == NULL)
        return fusion_fail(d, FUSION_E_ARG, 0, "manifest_validate: NULL manifest");
    if ((rc = validate_strings(m, d)) != 0 || (rc = validate_numbers(m, d)) != 0 ||
        (rc = validate_plorad(m, d)) != 0)
        return rc;
    return 0;
}

/* ---- object life ------------------------------------------------------ */

int manifest_set(char **field, const char *value)
{
    char *s = strdup(value != NULL ? value : "");

    if (s == NULL)
        return FUSION_E_NOMEM;
    free(*field);
    *field = s;
    return 0;
}

int manifest_new(struct manifest **out)
{
    struct manifest *m = calloc(1, sizeof(*m));
    char **strs[13];
    size_t n = 0;
    int rc = 0;

    *out = NULL;
    if (m == NULL)
        return FUSION_E_NOMEM;
    strs[n++] = &m->plasmid_id, strs[n++] = &m->domain, strs[n++] = &m->base_model;
    strs[n++] = &m->peft_format, strs[n++] = &m->artifacts.filename;
    strs[n++] = &m->train_meta.dataset_id, strs[n++] = &m->safety.licence;
    strs[n++] = &m->signer.algo, strs[n++] = &m->signer.pubkey_fingerprint;
    strs[n++] = &m->signer.signature_b64, strs[n++] = &m->compatibility.peft_min;
    strs[n++] = &m->compatibility.transformers;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = manifest_set(strs[i], "");
    if (rc != 0) {
        manifest_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void manifest_free(struct manifest *m)
{
    if (m == NULL)
        return;
    free(m->plasmid_id), free(m->domain), free(m->base_model), free(m->peft_format);
    for (size_t i = 0; i < m->lora.n_target_modules; i++)
        free(m->lora.target_modules[i]);
    free(m->lora.target_modules);
    free(m->artifacts.filename), free(m->train_meta.dataset_id), free(m->safety.licence);
    free(m->signer.algo), free(m->signer.pubkey_fingerprint), free(m->signer.signature_b64);
    free(m->compatibility.peft_min), free(m->compatibility.transformers);
    for (size_t i = 0; i < m->plorad.n_sigs; i++) {
        free(m->plorad.sigs[i].algo);
        free(m->plorad.sigs[i].sig_b64);
    }
    free(m->plorad.sigs);
    free(m);
}

int manifest_add_target(struct manifest *m, const char *module)
{
    char **t, *s;

    if (m->lora.n_target_modules >= MANIFEST_MAX_LIST)
        return FUSION_E_MANIFEST_LIMIT;
    if ((s = strdup(module)) == NULL)
        return FUSION_E_NOMEM;
    t = realloc(m->lora.target_modules, (m->lora.n_target_modules + 1) * sizeof(*t));
    if (t == NULL) {
        free(s);
        return FUSION_E_NOMEM;
    }
    t[m->lora.n_target_modules++] = s;
    m->lora.target_modules = t;
    return 0;
}

int manifest_add_sig(struct manifest *m, const char *key_id, const char *algo,
                     const char *sig_b64, struct fusion_diag *d)
{
    struct manifest_sig *s, e = { .algo = NULL };

    if (!hex_is_sha256(key_id))
        return fusion_fail(d, FUSION_E_MANIFEST_VALUE, 0,
                           "plorad.signatures.key_id: '%.24s' is not 64 lowercase hex", key_id);
    if (m->plorad.n_sigs >= MANIFEST_MAX_LIST)
        return fusion_fail(d, FUSION_E_MANIFEST_LIMIT, 0, "plorad.signatures: more than %u",
                           (unsigned)MANIFEST_MAX_LIST);
    memcpy(e.key_id, key_id, 65);
    if ((e.algo = strdup(algo)) == NULL || (e.sig_b64 = strdup(sig_b64)) == NULL ||
        (s = realloc(m->plorad.sigs, (m->plorad.n_sigs + 1) * sizeof(*s))) == NULL) {
        free(e.algo);
        free(e.sig_b64);
        return fusion_fail(d, FUSION_E_NOMEM, 0, "out of memory");
    }
    s[m->plorad.n_sigs++] = e;
    m->plorad.sigs = s;
    m->has_plorad = true;
    return 0;
}

/* ---- parse / load ----------------------------------------------------- */

int manifest_parse(const void *buf, size_t n, struct manifest **out, struct fusion_diag *d)
{
    struct manifest_ynode *root = NULL;
    struct manifest *m = NULL;
    struct rd r = { .d = d, .section = "" };
    int rc;

    *out = NULL;
    fusion_diag_clear(d);
    if (n > MANIFEST_MAX_BYTES) {
        rc = fusion_fail(d, FUSION_E_MANIFEST_LIMIT, 0, "plora.yml: %zu bytes, more than %u", n,
                         (unsigned)MANIFEST_MAX_BYTES);
        goto out;
    }
    if ((rc = manifest_yaml_load(buf, n, &root, d)) != 0)
        goto out;
    if (root == NULL || root->kind != MY_MAP) {
        rc = fusion_fail(d, FUSION_E_MANIFEST_TYPE, 0, "plora.yml: top level is %s, not a mapping",
                         root == NULL ? "empty" : manifest_yaml_kind_name(root->kind));
        goto out;
    }
    if ((rc = manifest_new(&m)) != 0) {
        rc = fusion_fail(d, rc, 0, "out of memory");
        goto out;
    }
    if ((rc = rd_top(&r, root, m)) != 0 || (rc = rd_lora_artifacts(&r, root, m)) != 0 ||
        (rc = rd_meta(&r, root, m)) != 0 || (rc = rd_signer(&r, root, m)) != 0 ||
        (rc = rd_plorad(&r, root, m)) != 0 || (rc = manifest_validate(m, d)) != 0)
        goto out;
    *out = m;
    m = NULL;
out:
    manifest_free(m);
    manifest_yaml_free(root);
    return rc;
}

int manifest_load(const char *path, struct manifest **out, struct fusion_diag *d)
{
    struct stat st;
    char *buf = NULL;
    ssize_t got = 0;
    size_t n = 0;
    int fd, rc;

    *out = NULL;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return fusion_fail(d, FUSION_E_IO, 0, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = fusion_fail(d, FUSION_E_IO, 0, "%s: not a regular file", path);
        goto out;
    }
    if ((unsigned long long)st.st_size > MANIFEST_MAX_BYTES) {
        rc = fusion_fail(d, FUSION_E_MANIFEST_LIMIT, 0, "%s: %lld bytes, more than %u", path,
                         (long long)st.st_size, (unsigned)MANIFEST_MAX_BYTES);
        goto out;
    }
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        rc = fusion_fail(d, FUSION_E_NOMEM, 0, "out of memory reading %s", path);
        goto out;
    }
    while (n < (size_t)st.st_size && (got = read(fd, buf + n, (size_t)st.st_size - n)) > 0)
        n += (size_t)got;
    if (got < 0) {
        rc = fusion_fail(d, FUSION_E_IO, 0, "%s: %s", path, strerror(errno));
        goto out;
    }
    rc = manifest_parse(buf, n, out, d);
out:
    free(buf);
    close(fd);
    return rc;
}
