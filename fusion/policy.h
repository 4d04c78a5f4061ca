/* fusion/policy.h: the gate policy, a YAML file (libyaml; JSON is YAML too,
 * so the prototype's policy.json loads as well).
 *
 * Keys (all optional; an unknown key is an error, so that a typo never
 * silently switches a check off):
 *
 *   base_model: distilbert-base-uncased   # adapter_config / manifest must name it
 *   allowed_ranks: [4, 8, 16]             # every module's rank (from the tensors)
 *   allowed_targets: [q_lin, v_lin]       # every module must end with ".<entry>" or equal it
 *   max_size_bytes: 100000000             # adapter_model.safetensors size bounds
 *   min_size_bytes: 1
 *   require_manifest: true                # plora.yml must exist (its sha256 is always checked)
 *   check_finite: true                    # default true: NaN/inf anywhere rejects
 *   norm_z_threshold: 6.0                 # default 6.0; 0 turns the outlier check off
 *   signatures_required: true             # quorum of trusted keys (crypto/quorum.h)
 *   quorum: 2                             # default 1
 *   keyring: keys/                        # directory, relative to the policy file
 *   trusted_public_keys: [k0.pem, k1.pem] # PEM files, relative to the policy file
 *   max_vote_age_s: 3600                  # 0 = no limit (default)
 *   probe:
 *     argv: [/usr/local/bin/probe, --adapter, "{adapter}"]   # "{adapter}" -> the dir;
 *     timeout_s: 30                       #   without it the dir is appended
 *     accept_exit_codes: [0]              # default [0]
 *
 * Prototype spellings are accepted as aliases: signatures_enabled (=
 * signatures_required), quorum_required (= quorum), allowed_target_modules
 * (= allowed_targets); threshold_mode is accepted and ignored (plorad always
 * counts distinct trusted keys).
 */
#ifndef PLORA_POLICY_H
#define PLORA_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fusion_err.h"

#define POLICY_MAX_BYTES (1u << 20)   /* bytes of policy text */
#define POLICY_MAX_LIST 4096          /* items per list */
#define POLICY_DEFAULT_Z 6.0          /* robust z threshold (gate.h defines it) */

struct policy_probe {
    char **argv;              /* argc strings + NULL; "{adapter}" is substituted by the runner */
    size_t argc;              /* >= 1 */
    unsigned timeout_ms;      /* > 0 */
    int *accept;              /* exit codes meaning "pass" */
    size_t n_accept;
};

/* A loaded policy. Read-only for callers; owned by the object. */
struct policy {
    char *base_model;                 /* NULL: any */
    bool has_allowed_ranks;
    unsigned *allowed_ranks;
    size_t n_allowed_ranks;
    bool has_allowed_targets;
    char **allowed_targets;
    size_t n_allowed_targets;
    uint64_t max_size_bytes;          /* 0: no cap */
    uint64_t min_size_bytes;          /* default 1 */
    bool require_manifest;
    bool check_finite;                /* default true */
    double norm_z_threshold;          /* <= 0: off */
    bool signatures_required;
    unsigned quorum;                  /* >= 1 */
    char *keyring_dir;                /* resolved against the policy's directory; NULL */
    char **trusted_keys;              /* resolved paths */
    size_t n_trusted_keys;
    int64_t max_vote_age_s;           /* 0: no limit */
    bool has_probe;
    struct policy_probe probe;
};

/* Parse `len` bytes of YAML. `base_dir` (may be NULL = ".") resolves the
 * relative paths in keyring / trusted_public_keys. Returns 0, FUSION_E_NOMEM,
 * FUSION_E_POLICY_YAML (syntax; d->line set), FUSION_E_POLICY_FIELD (unknown
 * key, wrong type or value; the message names the key and the value). On
 * error *out is NULL. */
int policy_parse(struct policy **out, const char *text, size_t len, const char *base_dir,
                 struct fusion_diag *d);

/* Read `path` (at most POLICY_MAX_BYTES) and parse it with base_dir = its
 * directory. Codes of policy_parse plus FUSION_E_IO. */
int policy_load(struct policy **out, const char *path, struct fusion_diag *d);

void policy_free(struct policy *p);  /* NULL is fine */

#endif
