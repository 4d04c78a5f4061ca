/* daemon/merge_job.h: one merge of PEFT adapter directories, end to end,
 * shared by `plora merge` (daemon/cmd_merge.c) and plorad (jobs_merge).
 *
 * Loads each input through fusion/adapter.h (and its plora.yml, if present,
 * for plorad.kld_eps and plorad.fisher), checks the inputs agree on base
 * model and fan_in_fan_out, resolves the weights (given as is; fisher:
 * w_k = F_k / sum F, every input needs plorad.fisher; else uniform 1/N),
 * runs the factored merge (fusion/merge.h), writes OUT/adapter_model.safetensors
 * + adapter_config.json (fusion/merge_out.h, each fsync'd) and
 * OUT/certificate.json (fusion/certificate.h, 2-space indent, members in
 * order, doubles at 17 digits). Pass-through tensors come from the first
 * input that has any. Never prints.
 */
#ifndef PLORA_MERGE_JOB_H
#define PLORA_MERGE_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmn_err.h"
#include "merge.h"

#define MERGE_JOB_MAX_INPUTS 256u

struct merge_job_spec {
    const char *const *dirs;       /* n input adapter directories, in merge order */
    size_t n;                      /* 1..MERGE_JOB_MAX_INPUTS */
    const double *weights;         /* n_weights given weights (any sign), or NULL */
    size_t n_weights;              /* must equal n when weights is set */
    bool fisher;                   /* weights NULL: fisher, else uniform */
    struct merge_opts opts;
    const char *out_dir;           /* files are written here (created if missing) */
    const char *cert_out_parent;   /* non-NULL: the certificate names the output
                                      "<cert_out_parent>/<output sha256>" (the
                                      caller renames out_dir there); NULL: out_dir */
    bool refuse_input_out;         /* out_dir must not resolve to an input dir */
};

struct merge_job_result {
    json_t *cert;                  /* the certificate as written (owned) */
    struct merge_summary summary;
    const char *weights_mode;      /* "given", "fisher" or "uniform" (static) */
    double *weights_given;         /* malloc'd, n: before any KLD scaling */
    char output_sha256[65];        /* of OUT/adapter_model.safetensors */
    char config_sha256[65];        /* of OUT/adapter_config.json */
    char certificate_sha256[65];   /* of OUT/certificate.json's bytes */
    uint64_t output_bytes;
};

/* Run the merge described by s. *r is zeroed first and filled on success.
 * Returns 0; DMN_E_ARG (an input is not a loadable LoRA adapter, inputs
 * disagree on base model / fan_in_fan_out / a module's shape, no fisher
 * value, bad weights or options, out_dir is an input; d names the file,
 * field and values), DMN_E_IO (a file could not be read or written; d
 * names it), DMN_E_NOMEM. d->msg reads as `plora merge` has always
 * printed it (without the "plora merge: " prefix). */
int merge_job_run(const struct merge_job_spec *s, struct merge_job_result *r,
                  struct dmn_diag *d);

void merge_job_result_clear(struct merge_job_result *r);  /* frees members; NULL fine */

#endif
