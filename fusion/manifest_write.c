/* fusion/manifest_write.c: deterministic plora.yml text (PyYAML's layout,
 * so prototype-written manifests come back byte for byte) and the
 * crash-safe file writer. See manifest.h. */
#define _POSIX_C_SOURCE 200809L
#include "manifest.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest_yaml.h"

struct sb {
    char *p;
    size_t n, cap;
    bool oom;
};

static void sb_add(struct sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        char *p;
        while (cap < b->n + n + 1)
            cap *= 2;
        if ((p = realloc(b->p, cap)) == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_fmt(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_fmt(struct sb *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    int k;

    va_start(ap, fmt);
    k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    sb_add(b, tmp, k < 0 ? 0 : (size_t)k < sizeof(tmp) ? (size_t)k : sizeof(tmp) - 1);
}

/* Can `s` be written as a plain scalar that reads back as the same string? */
static bool plain_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || manifest_yaml_resolve(s) != MY_STR || strcmp(s, "=") == 0 || strcmp(s, "<<") == 0)
        return false;
    if (strchr("-?:,[]{}#&*!|>'\"%@`", s[0]) != NULL || s[0] == ' ' || s[n - 1] == ' ' ||
        s[n - 1] == ':')
        return false;
    if (strstr(s, ": ") != NULL || strstr(s, " #") != NULL)
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            return false;
    return true;
}

static bool printable_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

static void emit_scalar(struct sb *b, const char *s)
{
    if (plain_ok(s)) {
        sb_add(b, s, strlen(s));
    } else if (printable_ascii(s)) {
        sb_add(b, "'", 1);
        for (const char *p = s; *p; p++)
            sb_add(b, p, *p == '\'' ? 0 : 1), sb_add(b, "''", *p == '\'' ? 2 : 0);
        sb_add(b, "'", 1);
    } else {
        /* Double quotes: escapes for controls, UTF-8 (libyaml validated) kept raw. */
        sb_add(b, "\"", 1);
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
            if (*p == '"' || *p == '\\')
                sb_fmt(b, "\\%c", *p);
            else if (*p < 0x20 || *p == 0x7f)
                sb_fmt(b, "\\x%02X", *p);
            else
                sb_add(b, (const char *)p, 1);
        }
        sb_add(b, "\"", 1);
    }
}

static void emit_kv_str(struct sb *b, const char *indent, const char *key, const char *v)
{
    sb_fmt(b, "%s%s: ", indent, key);
    emit_scalar(b, v);
    sb_add(b, "\n", 1);
}

static void emit_kv_float(struct sb *b, const char *indent, const char *key, double v)
{
    char f[48];

    manifest_yaml_float(v, f);
    sb_fmt(b, "%s%s: %s\n", indent, key, f);
}

static void emit_body(struct sb *b, const struct manifest *m)
{
    sb_fmt(b, "schema_version: %lld\n", m->schema_version);
    emit_kv_str(b, "", "plasmid_id", m->plasmid_id);
    emit_kv_str(b, "", "domain", m->domain);
    emit_kv_str(b, "", "base_model", m->base_model);
    emit_kv_str(b, "", "peft_format", m->peft_format);
    sb_fmt(b, "lora:\n  r: %lld\n  alpha: %lld\n", m->lora.r, m->lora.alpha);
    emit_kv_float(b, "  ", "dropout", m->lora.dropout);
    sb_fmt(b, "  target_modules:%s\n", m->lora.n_target_modules == 0 ? " []" : "");
    for (size_t i = 0; i < m->lora.n_target_modules; i++) {
        sb_add(b, "  - ", 4);
        emit_scalar(b, m->lora.target_modules[i]);
        sb_add(b, "\n", 1);
    }
    sb_add(b, "artifacts:\n", 11);
    emit_kv_str(b, "  ", "filename", m->artifacts.filename);
    emit_kv_str(b, "  ", "sha256", m->artifacts.sha256);   /* all-digit hex would read as an int */
    sb_fmt(b, "  size_bytes: %llu\n", m->artifacts.size_bytes);
    sb_fmt(b, "train_meta:\n  seed: %lld\n  epochs: %lld\n", m->train_meta.seed,
           m->train_meta.epochs);
    emit_kv_str(b, "  ", "dataset_id", m->train_meta.dataset_id);
    sb_fmt(b, "  sample_count: %lld\n  timestamp_unix: %lld\n", m->train_meta.sample_count,
           m->train_meta.timestamp_unix);
    sb_add(b, "metrics:\n", 9);
    emit_kv_float(b, "  ", "val_ppl_before", m->metrics.val_ppl_before);
    emit_kv_float(b, "  ", "val_ppl_after", m->metrics.val_ppl_after);
    emit_kv_float(b, "  ", "delta_ppl", m->metrics.delta_ppl);
    if (m->metrics.has_val_em)
        emit_kv_float(b, "  ", "val_em", m->metrics.val_em);
    if (m->metrics.has_val_chrf)
        emit_kv_float(b, "  ", "val_chrf", m->metrics.val_chrf);
    sb_add(b, "safety:\n", 8);
    emit_kv_str(b, "  ", "licence", m->safety.licence);
    emit_kv_float(b, "  ", "poisoning_score", m->safety.poisoning_score);
    sb_add(b, "signer:\n", 8);
    emit_kv_str(b, "  ", "algo", m->signer.algo);
    emit_kv_str(b, "  ", "pubkey_fingerprint", m->signer.pubkey_fingerprint);
    emit_kv_str(b, "  ", "signature_b64", m->signer.signature_b64);
    sb_add(b, "compatibility:\n", 15);
    emit_kv_str(b, "  ", "peft_min", m->compatibility.peft_min);
    emit_kv_str(b, "  ", "transformers", m->compatibility.transformers);
}

static void emit_plorad(struct sb *b, const struct manifest *m)
{
    if (!m->has_plorad)
        return;
    sb_fmt(b, "plorad:\n  format: %lld\n", m->plorad.format);
    emit_kv_str(b, "  ", "config_sha256", m->plorad.config_sha256);
    if (m->plorad.has_kld_eps)
        emit_kv_float(b, "  ", "kld_eps", m->plorad.kld_eps);
    if (m->plorad.has_fisher)
        emit_kv_float(b, "  ", "fisher", m->plorad.fisher);
    sb_fmt(b, "  signatures:%s\n", m->plorad.n_sigs == 0 ? " []" : "");
    for (size_t i = 0; i < m->plorad.n_sigs; i++) {
        emit_kv_str(b, "  - ", "key_id", m->plorad.sigs[i].key_id);
        emit_kv_str(b, "    ", "algo", m->plorad.sigs[i].algo);
        emit_kv_str(b, "    ", "sig_b64", m->plorad.sigs[i].sig_b64);
    }
}

int manifest_emit(const struct manifest *m, char **out, size_t *n, struct fusion_diag *d)
{
    struct sb b = { .p = NULL };
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = manifest_validate(m, d)) != 0)
        return rc;
    emit_body(&b, m);
    emit_plorad(&b, m);
    if (b.oom || b.p == NULL) {
        free(b.p);
        return fusion_fail(d, FUSION_E_NOMEM, 0, "out of memory writing plora.yml");
    }
    *out = b.p;
    *n = b.n;
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int manifest_write(const struct manifest *m, const char *path, struct fusion_diag *d)
{
    char tmp[4096], *text = NULL;
    size_t n;
    int fd = -1, rc;

    if ((rc = manifest_emit(m, &text, &n, d)) != 0)
        return rc;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp)) {
        rc = fusion_fail(d, FUSION_E_IO, 0, "%s: path too long", path);
        goto out;
    }
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0 ||
        write_all(fd, text, n) != 0 || fsync(fd) != 0) {
        rc = fusion_fail(d, FUSION_E_IO, 0, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    rc = close(fd);
    fd = -1;
    if (rc != 0 || rename(tmp, path) != 0) {
        rc = fusion_fail(d, FUSION_E_IO, 0, "%s: %s", path, strerror(errno));
        goto out;
    }
    rc = fusion_fsync_dir_of(path, d);
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    free(text);
    return rc;
}
