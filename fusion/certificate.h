/* fusion/certificate.h: the merge certificate (certificate.json), built from
 * a merge result and checked against a replayed one (`plora verify-log
 * --store`).
 *
 * Fields (DESIGN.md): format; inputs [{path, sha256, config_sha256, r, alpha,
 * scaling, use_rslora, weight_given, weight, kld_eps, fisher}] (weight is
 * the weight applied: weight_given times the KLD scale); weights_mode
 * (given|uniform|fisher); weights (applied); options {tau, tau_rel,
 * module_cap, rank, kld_budget} (what was asked: enough to replay);
 * frob_merged (G), tau (effective, null when none), scale (c), frob_out,
 * dropped_energy (energy of c dW removed by the rank-K re-projection),
 * rank_out; kld {bound, bound_kind, cs_bound, bound_given_weights, budget,
 * scaled, weight_scale} (bound null when some input has no kld_eps);
 * modules [{name, out, in, inputs, r_cat, rank_kept, frob, scale, frob_out,
 * dropped_energy, sigma_max}]; passthrough_from (input index or null);
 * output {path, sha256, config_sha256, bytes}; tolerances {rel_norm,
 * abs_dropped_rel_g2} that a replay is held to. Non-finite numbers are
 * written as null.
 */
#ifndef PLORA_CERTIFICATE_H
#define PLORA_CERTIFICATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "fusion_err.h"
#include "merge.h"

#define CERTIFICATE_FORMAT "plorad-merge-certificate/1"
#define CERTIFICATE_NAME "certificate.json"
/* Replay tolerances: relative on G, c, frob_out and per-module frob;
 * dropped energy absolutely, in units of G^2. The replay runs the same code
 * on the same bytes; only BLAS kernels and thread counts can differ. */
#define CERTIFICATE_REL_NORM 1e-9
#define CERTIFICATE_ABS_DROPPED 1e-9

struct certificate_input {
    const char *path;
    char sha256[65];          /* of adapter_model.safetensors, lowercase hex */
    char config_sha256[65];   /* of adapter_config.json */
    unsigned r;               /* config r */
    double alpha;             /* config lora_alpha */
    double scaling;           /* config-level alpha/r or alpha/sqrt(r) */
    bool use_rslora;
    double weight_given;
    double kld_eps, fisher;   /* NAN when the manifest has none */
};

struct certificate_output {
    const char *path;
    char sha256[65];
    char config_sha256[65];
    uint64_t bytes;           /* of adapter_model.safetensors */
};

/* The certificate as a new JSON object (caller owns it), or NULL on NOMEM.
 * passthrough_from < 0: none. */
json_t *certificate_build(const struct merge *m, const struct merge_opts *o, const char *weights_mode,
                          const struct certificate_input *in, size_t n, long passthrough_from,
                          const struct certificate_output *out);

/* Read back what a replay needs: the options and, per input, the weight as
 * given and kld_eps (NAN for null). n_max bounds the arrays; *n receives the
 * number of inputs. Returns 0 or FUSION_E_CERT (the diag names the field). */
int certificate_replay_opts(const json_t *cert, struct merge_opts *o, double *weight_given,
                            double *kld_eps, size_t n_max, size_t *n, struct fusion_diag *d);

/* Compare a replayed merge with the certificate: G, scale, frob_out,
 * dropped_energy, rank_out and every module's name, frob, frob_out and
 * dropped energy, within the tolerances above. Returns 0 or FUSION_E_CERT
 * naming the first field that differs and both values. (The output sha256
 * is compared by the caller, who hashes the replayed output.) */
int certificate_check(const json_t *cert, const struct merge *replayed, struct fusion_diag *d);

#endif
