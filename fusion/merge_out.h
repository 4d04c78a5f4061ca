/* fusion/merge_out.h: write a merge result as a PEFT adapter directory.
 *
 * DIR/adapter_model.safetensors holds, per merged module (merge.h order),
 * "base_model.model.<module>.lora_A.weight" [K, in] and "...lora_B.weight"
 * [out, K] (K = rank_out, trust-region scale inside lora_B), in the chosen
 * dtype, plus the pass-through tensors of one input adapter (its
 * modules_to_save heads, byte for byte). DIR/adapter_config.json is a plain
 * LoRA config: r = lora_alpha = K (scaling 1, use_rslora false, no
 * rank/alpha patterns), target_modules = the full module names (PEFT matches
 * a target equal to the module's name exactly), fan_in_fan_out, base model
 * and task type as the inputs have them. Each file is written to a temporary
 * name, fsync'd and renamed into place; DIR is created if missing.
 */
#ifndef PLORA_MERGE_OUT_H
#define PLORA_MERGE_OUT_H

#include <stdbool.h>

#include "adapter.h"
#include "merge.h"

#define MERGE_OUT_CONFIG_NAME "adapter_config.json"

struct merge_out_spec {
    const char *base_model;             /* base_model_name_or_path; NULL: null */
    const char *task_type;              /* NULL: null */
    bool fan_in_fan_out;
    enum safetensors_dtype dtype;       /* output dtype; 0: each module's input dtype */
    const struct adapter *passthrough;  /* its other tensors and modules_to_save; NULL: none */
    bool no_fsync;                      /* skip the weights file's fsync (benchmarks only) */
};

/* Write DIR from a prepared merge (merge_prepare: then merge_compute runs
 * here and, without a trust region, reads each input once) or a computed one
 * (merge_new: then merge_emit makes the second pass). Returns 0,
 * FUSION_E_ARG, FUSION_E_NOMEM, FUSION_E_IO (the diag names the path),
 * FUSION_E_ST_WRITE (a pass-through tensor's name collides with a LoRA key),
 * or merge_compute's codes. */
int merge_out_write(struct merge *m, const char *dir, const struct merge_out_spec *spec,
                    struct fusion_diag *d);

/* Write `len` bytes to `path` via "<path>.tmp", fsync, rename, fsync dir.
 * Returns 0, FUSION_E_NOMEM or FUSION_E_IO. */
int merge_out_write_file(const char *path, const void *buf, size_t len, struct fusion_diag *d);

#endif
