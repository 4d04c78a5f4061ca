/* fusion/gate.h: the content gate an adapter must pass before anyone votes
 * on it. One call runs every check of the policy and returns a verdict that
 * lists ALL failing reasons, each with a stable name and a detail line.
 *
 * Checks, in order (a later check runs even when an earlier one failed,
 * except where noted):
 *   artifact_missing             adapter_model.safetensors absent (then
 *                                nothing that needs its bytes runs)
 *   artifact_size_out_of_bounds  size outside [min_size_bytes, max_size_bytes]
 *                                (then the content is not parsed or scanned:
 *                                an oversized file is not worth reading)
 *   malformed_safetensors        the safetensors checks (safetensors.h)
 *   malformed_config             adapter_config.json missing, not JSON, not LoRA
 *   config_tensor_mismatch       rank / targets / pairs / dtypes of the config
 *                                vs the tensors (adapter.h)
 *   base_model_mismatch          policy base_model vs adapter_config's
 *                                base_model_name_or_path (and plora.yml's)
 *   rank_not_allowed             a module's rank, read from the tensors
 *   targets_not_allowed          a module not matching any allowed target
 *                                (equal, or ending with "." + entry)
 *   non_finite_values            NaN or +-inf in any tensor (F16/BF16 too)
 *   tensor_norm_outlier          robust z-score of a tensor's norm (below)
 *   manifest_missing             plora.yml absent and require_manifest set
 *   manifest_invalid             plora.yml present but unreadable/invalid
 *   sha256_mismatch              plora.yml artifacts.sha256 != SHA-256 of the file
 *   manifest_mismatch            plora.yml disagrees with the bytes (size,
 *                                lora.r, lora.alpha, base_model, targets)
 *   signature_quorum_not_met     fewer than `quorum` distinct trusted keys
 *                                accept (crypto/quorum.h): the manifest's
 *                                prototype signature and plorad signatures,
 *                                plus the caller's votes, all checked over
 *                                the file's ACTUAL SHA-256
 *   probe_failed                 the external probe's exit code is not an
 *                                accepted one, it timed out or could not run
 *                                (run only when the adapter loaded and all
 *                                values are finite)
 *
 * Norm outlier statistic. For every tensor with finite values, x = ln ||T||_F
 * (||T|| clamped to >= 1e-30). LoRA tensors are grouped by role and
 * projection: the module name's last component plus A or B (e.g. all
 * "q_lin.lora_B" of every layer form one group); pass-through tensors are
 * not scored (each head is unique). In a group of at least
 * GATE_NORM_MIN_GROUP tensors, z = 0.6745 (x - median) / MAD (Iglewicz and
 * Hoaglin's modified z-score; MAD = median |x - median|); if MAD == 0 the mean
 * absolute deviation is used, z = (x - median) / (1.2533 MeanAD). The
 * divisor is never below GATE_NORM_SCALE_FLOOR: layers of a real adapter
 * differ by up to ~1.5x in norm (ln 0.37 in the fixtures) while their spread
 * can be tiny (MAD 0.013 for distilbert-imdb's lora_A), which alone would
 * make z = 19 for an honest layer; with the floor, |z| > 6 needs a norm
 * e^(6 x 0.25) = 4.5x away from the group's median (an honest layer: z <= 1.5).
 * A tensor with |z| > norm_z_threshold is an outlier.
 * Why robust: with n tensors the classical (x - mean) / sd can never exceed
 * (n - 1) / sqrt(n) (3.2 for 12 layers), so one poisoned tensor would hide
 * itself by inflating the sd; the median and MAD barely move. Why logs: a
 * scaled tensor is a shift in ln-norm, whatever the layer's typical size.
 *
 * The library never runs a process: the probe goes through a callback the
 * caller supplies (the daemon forks; a test can fake it).
 */
#ifndef PLORA_GATE_H
#define PLORA_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter.h"
#include "fusion_err.h"
#include "policy.h"

struct keyring;
struct vote;

#define GATE_NORM_MIN_GROUP 4       /* tensors needed in a group to score it */
#define GATE_NORM_SCALE_FLOOR 0.25  /* least spread of ln-norms assumed */

#define GATE_REASONS(X) \
    X(ARTIFACT_MISSING,      "artifact_missing") \
    X(ARTIFACT_SIZE,         "artifact_size_out_of_bounds") \
    X(MALFORMED_SAFETENSORS, "malformed_safetensors") \
    X(MALFORMED_CONFIG,      "malformed_config") \
    X(CONFIG_MISMATCH,       "config_tensor_mismatch") \
    X(BASE_MODEL,            "base_model_mismatch") \
    X(RANK,                  "rank_not_allowed") \
    X(TARGETS,               "targets_not_allowed") \
    X(NON_FINITE,            "non_finite_values") \
    X(NORM_OUTLIER,          "tensor_norm_outlier") \
    X(MANIFEST_MISSING,      "manifest_missing") \
    X(MANIFEST_INVALID,      "manifest_invalid") \
    X(SHA256,                "sha256_mismatch") \
    X(MANIFEST_MISMATCH,     "manifest_mismatch") \
    X(QUORUM,                "signature_quorum_not_met") \
    X(PROBE,                 "probe_failed")

enum gate_reason_id {
    GATE_R_NONE = 0,
#define X(id, name) GATE_R_##id,
    GATE_REASONS(X)
#undef X
};

/* Stable snake_case name of a reason ("sha256_mismatch"); "?" if unknown. */
const char *gate_reason_name(enum gate_reason_id r);

struct gate_reason {
    enum gate_reason_id id;
    char detail[256];          /* what exactly failed: tensor, values, file */
};

/* What the probe runner reports. */
struct gate_probe_result {
    bool ran;                  /* the program was started and waited for */
    bool timed_out;            /* killed after the policy's timeout */
    int exit_code;             /* valid when ran && !timed_out; 128+n for signal n */
    char error[160];           /* why it could not run, when !ran */
};

/* Run `probe` on `adapter_dir` (substituting "{adapter}" in argv, or
 * appending the dir) within probe->timeout_ms. Returns 0 having filled *out;
 * the callback must not fail otherwise. */
typedef int (*gate_probe_fn)(void *ctx, const struct policy_probe *probe,
                             const char *adapter_dir, struct gate_probe_result *out);

/* What the caller brings: trust, votes, time and the probe runner. */
struct gate_env {
    const struct keyring *keyring;  /* NULL: no trusted key */
    struct vote *const *votes;      /* extra votes (attestations, VOTE.json); caller's */
    size_t n_votes;
    int64_t now;                    /* unix seconds */
    gate_probe_fn probe;            /* NULL: a policy probe fails (probe_failed) */
    void *probe_ctx;
};

struct gate_verdict {
    bool accept;                    /* no reason at all */
    char sha256[65];                /* of adapter_model.safetensors; "" if missing */
    uint64_t size_bytes;
    size_t n_modules;               /* LoRA modules (0 if it did not load) */
    double max_abs_z;               /* largest |z| scored (0 if none) */
    char max_z_tensor[160];         /* its tensor name, "" if none */
    bool quorum_checked;
    size_t quorum_accepts;          /* distinct trusted keys that accept */
    unsigned quorum_required;
    struct gate_reason *reasons;    /* n_reasons, in the order of the list above */
    size_t n_reasons;
};

/* Judge the adapter in `dir` under `p`. Returns 0 with *out set (accepted or
 * not: see (*out)->accept), or FUSION_E_NOMEM / FUSION_E_ARG (NULL inputs) /
 * FUSION_E_IO (the directory cannot be read at all), with *out NULL. */
int gate_run(const struct policy *p, const char *dir, const struct gate_env *env,
             struct gate_verdict **out, struct fusion_diag *d) __attribute__((warn_unused_result));

void gate_verdict_free(struct gate_verdict *v);  /* NULL is fine */

/* True if the verdict holds reason r. */
bool gate_verdict_has(const struct gate_verdict *v, enum gate_reason_id r);

/* The modified z-scores of `n` values into z (the statistic above, on the
 * values as given, divisor floored at GATE_NORM_SCALE_FLOOR). Returns 0 or
 * FUSION_E_NOMEM. */
int gate_robust_z(const double *x, size_t n, double *z);

#endif
