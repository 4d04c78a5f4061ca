/* fusion/adapter.h: a PEFT LoRA adapter = adapter_model.safetensors +
 * adapter_config.json, cross-checked, as LoRA pairs per module plus the
 * tensors to pass through.
 *
 * Tensor names are PEFT's: "base_model.model.<module>.lora_A.weight" with
 * shape [r, in] and "base_model.model.<module>.lora_B.weight" with shape
 * [out, r]. Every other tensor whose name has no ".lora_" part (heads of
 * modules_to_save, e.g. "base_model.model.classifier.weight") is passed
 * through, never merged. Tensors of LoRA variants this code cannot merge
 * (lora_embedding_A/B, lora_magnitude_vector, adapter-named keys such as
 * "lora_A.default.weight") are refused.
 *
 * The file is the truth, the config is checked against it: for each module
 * the rank read from the tensors must equal the config's rank for it
 * (rank_pattern applied), the module must be selected by target_modules,
 * A and B must be 2-D with the same rank and the same dtype. Each mismatch is
 * an error naming the module and both values.
 *
 * With fan_in_fan_out (GPT-2 Conv1D) the stored A and B are still [r, in] and
 * [out, r]; only the base weight is [in, out], so its delta is (s B A)^T.
 */
#ifndef PLORA_ADAPTER_H
#define PLORA_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#include "fusion_err.h"
#include "peft_config.h"
#include "safetensors.h"

#define ADAPTER_WEIGHTS_NAME "adapter_model.safetensors"
#define ADAPTER_TENSOR_PREFIX "base_model.model."

/* One LoRA pair. Read-only; owned by the adapter. */
struct adapter_module {
    const char *name;        /* module path, e.g. "transformer.h.0.attn.c_attn" */
    unsigned r;              /* rank, from the tensors (== config's after the check) */
    double alpha;            /* lora_alpha for this module (alpha_pattern applied) */
    double scaling;          /* alpha / r, or alpha / sqrt(r) with use_rslora */
    uint64_t out, in;        /* B is [out, r], A is [r, in] */
    enum safetensors_dtype dtype;  /* of both A and B */
    const struct safetensors_tensor *a;  /* lora_A.weight [r, in], row-major */
    const struct safetensors_tensor *b;  /* lora_B.weight [out, r], row-major */
};

struct adapter;  /* opaque */

/* Load DIR/adapter_config.json and DIR/adapter_model.safetensors (mmap) and
 * cross-check them. Returns 0, FUSION_E_IO, FUSION_E_NOMEM, any
 * FUSION_E_ST_*, FUSION_E_PEFT_* or FUSION_E_ADAPTER_* code; the diag message
 * starts with the file it is about. On error *out is NULL. */
int adapter_open(struct adapter **out, const char *dir, struct fusion_diag *d);

/* Build from parts already parsed. Takes ownership of cfg and st in every
 * case (they are freed on error). Same codes as adapter_open minus IO. */
int adapter_build(struct adapter **out, struct peft_config *cfg, struct safetensors *st,
                  struct fusion_diag *d);

void adapter_free(struct adapter *a);  /* NULL is fine */

const struct peft_config *adapter_config(const struct adapter *a);
const struct safetensors *adapter_safetensors(const struct adapter *a);

/* LoRA modules, in increasing strcmp order of name. */
size_t adapter_module_count(const struct adapter *a);
const struct adapter_module *adapter_module_at(const struct adapter *a, size_t i);
const struct adapter_module *adapter_module_find(const struct adapter *a, const char *name);

/* Pass-through tensors (full stored names), in strcmp order. */
size_t adapter_other_count(const struct adapter *a);
const struct safetensors_tensor *adapter_other_at(const struct adapter *a, size_t i);

/* A as r*in and B as out*r elements, row-major as stored, converted from the
 * stored dtype. `out` must hold that many elements. Return 0. */
int adapter_module_a_f64(const struct adapter_module *m, double *out);
int adapter_module_b_f64(const struct adapter_module *m, double *out);
int adapter_module_a_f32(const struct adapter_module *m, float *out);
int adapter_module_b_f32(const struct adapter_module *m, float *out);

/* ||s B A||_F in double precision without forming B A:
 * ||BA||_F^2 = trace((B^T B)(A A^T)) = sum_ij (B^T B)_ij (A A^T)_ij, two r x r
 * Grams. Returns 0 or FUSION_E_NOMEM (temporaries of (out + in) * r doubles). */
int adapter_module_frob(const struct adapter_module *m, double *out);

#endif
