/* fusion/manifest.h: the `plora.yml` manifest (the prototype's v0 schema plus
 * plorad's own section), read from untrusted YAML and written back
 * deterministically.
 *
 * Reading follows the prototype's validator (pydantic model `Manifest`,
 * schema_version 0): every field it requires is required here, with the same
 * ranges and patterns and the same lax coercions (alpha "16" or 16.0 -> 16,
 * timestamp "1795415307" -> int); unknown keys are ignored. plorad is stricter
 * where the prototype is unsafe: no YAML aliases, no custom tags, one document
 * only, no duplicate keys, non-finite floats refused, caps on bytes, depth,
 * nodes, string length and list length. Each refusal names the field path
 * (e.g. `lora.r`) and the value seen.
 *
 * plorad's additions live under one top-level key, `plorad:` (the prototype
 * ignores unknown keys, so plorad's plora.yml stays loadable by it):
 *
 *   plorad:
 *     format: 1
 *     config_sha256: <64 hex: sha256 of adapter_config.json>
 *     kld_eps: 0.01          # optional, finite >= 0
 *     fisher: 2.5            # optional, finite > 0
 *     signatures:            # over plorad's canonical adapter message (sig.h)
 *     - key_id: <64 hex>
 *       algo: RSA-PSS-SHA256 | ED25519
 *       sig_b64: <base64>
 *
 * A `struct manifest` is a plain record: every char * is NUL-terminated,
 * malloc'd and owned by the manifest (manifest_free releases it; a writer that
 * fills fields by hand must malloc them too, e.g. with manifest_set()).
 */
#ifndef PLORA_MANIFEST_H
#define PLORA_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fusion_err.h"

#define MANIFEST_MAX_BYTES   (1u << 20) /* bytes of YAML text; bigger is refused unread */
#define MANIFEST_MAX_DEPTH   16         /* nested mappings/sequences */
#define MANIFEST_MAX_NODES   20000      /* YAML nodes in the document */
#define MANIFEST_MAX_STR     16384      /* bytes in one scalar (an RSA-16384 sig is 2732 b64) */
#define MANIFEST_MAX_LIST    1024       /* items in target_modules / plorad.signatures */
#define MANIFEST_FORMAT      1          /* plorad.format written and accepted */
#define MANIFEST_FILENAME    "plora.yml"

struct manifest_sig {          /* one entry of plorad.signatures */
    char key_id[65];           /* lowercase hex sha256 of the signer's DER SPKI */
    char *algo;                /* "RSA-PSS-SHA256" or "ED25519" */
    char *sig_b64;             /* standard base64 (not decoded at load time) */
};

struct manifest {
    long long schema_version;  /* always 0 */
    char *plasmid_id;
    char *domain;
    char *base_model;
    char *peft_format;         /* lora | ia3 | adalora */
    struct {
        long long r;           /* >= 1 */
        long long alpha;       /* >= 1 */
        double dropout;        /* 0..1 */
        char **target_modules;
        size_t n_target_modules;
    } lora;
    struct {
        char *filename;        /* relative to the manifest; no '/' or ".." accepted */
        char sha256[65];       /* lowercase hex */
        unsigned long long size_bytes; /* >= 1 */
    } artifacts;
    struct {
        long long seed, epochs;
        char *dataset_id;
        long long sample_count, timestamp_unix;
    } train_meta;
    struct {
        double val_ppl_before, val_ppl_after, delta_ppl;
        bool has_val_em, has_val_chrf;  /* optional fields; null = absent */
        double val_em, val_chrf;
    } metrics;
    struct {
        char *licence;
        double poisoning_score; /* >= 0 */
    } safety;
    struct {
        char *algo;            /* "", "none", "RSA-PSS-SHA256", "ED25519-SHA256" */
        char *pubkey_fingerprint;
        char *signature_b64;   /* the prototype's signature (tagged or bare message) */
    } signer;
    struct {
        char *peft_min;
        char *transformers;
    } compatibility;
    bool has_plorad;           /* a `plorad:` section was read / is to be written */
    struct {
        long long format;      /* MANIFEST_FORMAT */
        char config_sha256[65];
        bool has_kld_eps, has_fisher;
        double kld_eps;        /* finite >= 0 */
        double fisher;         /* finite > 0 */
        struct manifest_sig *sigs;
        size_t n_sigs;
    } plorad;
};

/* An empty manifest: schema_version 0, every string "" (allocated), numbers
 * 0, no target modules, no plorad section. The caller fills it and frees it
 * with manifest_free. Returns 0 or FUSION_E_NOMEM (*out NULL). */
int manifest_new(struct manifest **out);

/* Free a manifest and everything it owns; NULL is fine. */
void manifest_free(struct manifest *m);

/* Replace the string at *field with a malloc'd copy of `value` (the old one
 * is freed). Returns 0 or FUSION_E_NOMEM (the field is then unchanged). */
int manifest_set(char **field, const char *value);

/* Append a target module (copied). Returns 0, FUSION_E_NOMEM or
 * FUSION_E_MANIFEST_LIMIT (MANIFEST_MAX_LIST reached). */
int manifest_add_target(struct manifest *m, const char *module);

/* Append a plorad signature (strings copied); sets has_plorad. Returns 0,
 * FUSION_E_NOMEM, FUSION_E_MANIFEST_LIMIT, or FUSION_E_MANIFEST_VALUE
 * (key_id not 64 lowercase hex). */
int manifest_add_sig(struct manifest *m, const char *key_id, const char *algo,
                     const char *sig_b64, struct fusion_diag *d);

/* Parse and validate `n` bytes of YAML (need not be NUL-terminated). On
 * success *out is a new manifest (the caller frees it); on failure *out is
 * NULL and d names the field (dotted path), the value and the problem, with
 * d->line the 1-based line where known. Returns 0, FUSION_E_MANIFEST_YAML,
 * FUSION_E_MANIFEST_LIMIT, FUSION_E_MANIFEST_YAML_FEATURE,
 * FUSION_E_MANIFEST_MISSING, FUSION_E_MANIFEST_TYPE, FUSION_E_MANIFEST_VALUE
 * or FUSION_E_NOMEM. */
int manifest_parse(const void *buf, size_t n, struct manifest **out, struct fusion_diag *d)
    __attribute__((warn_unused_result));

/* Read the file at `path` (at most MANIFEST_MAX_BYTES, else
 * FUSION_E_MANIFEST_LIMIT unread) and manifest_parse it. Adds FUSION_E_IO
 * (d names the path and errno text) to manifest_parse's codes. */
int manifest_load(const char *path, struct manifest **out, struct fusion_diag *d)
    __attribute__((warn_unused_result));

/* Check a filled manifest against the same rules manifest_parse applies
 * (ranges, patterns, delta_ppl consistency, plorad section). Returns 0 or
 * FUSION_E_MANIFEST_VALUE / FUSION_E_MANIFEST_MISSING with d naming the field. */
int manifest_validate(const struct manifest *m, struct fusion_diag *d)
    __attribute__((warn_unused_result));

/* Deterministic YAML text of a valid manifest: the prototype's field order
 * and layout (PyYAML block style: `- item` at the key's indent, floats in
 * Python repr form, strings quoted only where a plain scalar would read back
 * as another type), then the plorad section if has_plorad. For a manifest
 * read from a file the prototype wrote, the bytes are identical to its
 * Manifest.dump(). On success *out is malloc'd (NUL-terminated, the caller
 * frees it) and *n its length. Returns 0, FUSION_E_NOMEM, or
 * manifest_validate's codes (nothing is emitted for an invalid manifest). */
int manifest_emit(const struct manifest *m, char **out, size_t *n, struct fusion_diag *d)
    __attribute__((warn_unused_result));

/* manifest_emit to `path` crash-safely: write `path`.tmp.<pid>, fsync it,
 * rename over `path`, fsync the directory. On failure `path` is untouched and
 * the temp file removed. Returns manifest_emit's codes or FUSION_E_IO. */
int manifest_write(const struct manifest *m, const char *path, struct fusion_diag *d)
    __attribute__((warn_unused_result));

#endif
