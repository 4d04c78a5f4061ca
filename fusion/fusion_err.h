/* fusion/fusion_err.h: error codes of the fusion library (fusion -4xx: -400..-449 reading/writing adapters, manifests, gate; -450..-499 merge, KLD, certificate).
 *
 * One X-macro table gives each code its enum value, its name
 * (fusion_err_name) and its message (fusion_strerror). Add codes to the table
 * only, in the library's range; never reuse a value. Functions return 0 on
 * success or one of these negative codes, and fill a struct fusion_diag with
 * the details a user can act on (which field, which values, where).
 */
#ifndef PLORA_FUSION_ERR_H
#define PLORA_FUSION_ERR_H

#include <stddef.h>

#define FUSION_ERRORS(X) \
    X(NOMEM,      -400, "out of memory") \
    X(IO,         -401, "file could not be read or written") \
    X(ARG,        -402, "invalid argument") \
    X(ST_SHORT,       -403, "safetensors file shorter than its 8-byte header length") \
    X(ST_HEADER_LEN,  -404, "safetensors header length over the cap or past the end of file") \
    X(ST_JSON,        -405, "safetensors header is not a JSON object") \
    X(ST_ENTRY,       -406, "safetensors tensor entry malformed (dtype, shape, data_offsets)") \
    X(ST_DTYPE,       -407, "safetensors dtype not supported (F32, F16, BF16, F64)") \
    X(ST_SHAPE,       -408, "safetensors shape invalid (negative, too many dims, overflow)") \
    X(ST_OFFSETS,     -409, "safetensors data_offsets invalid or outside the data section") \
    X(ST_SIZE,        -410, "safetensors byte length differs from shape x dtype size") \
    X(ST_LAYOUT,      -411, "safetensors tensors overlap or leave a gap") \
    X(ST_TRAILING,    -412, "safetensors data section longer than its tensors") \
    X(ST_DUP,         -413, "safetensors tensor name repeated or empty") \
    X(ST_METADATA,    -414, "safetensors __metadata__ is not an object of strings") \
    X(PEFT_JSON,      -415, "adapter_config.json is not a JSON object") \
    X(PEFT_FIELD,     -416, "adapter_config.json field missing or of the wrong type") \
    X(PEFT_TYPE,      -417, "adapter is not plain LoRA (peft_type, use_dora)") \
    X(PEFT_REGEX,     -418, "adapter_config.json pattern is not a usable regex") \
    X(ADAPTER_UNPAIRED, -419, "lora_A without lora_B or the reverse") \
    X(ADAPTER_SHAPE,  -420, "lora_A/lora_B shapes do not fit [r,in] x [out,r]") \
    X(ADAPTER_RANK,   -421, "rank in the tensors differs from the config") \
    X(ADAPTER_TARGET, -422, "LoRA module not selected by target_modules") \
    X(ADAPTER_DTYPE,  -423, "lora_A and lora_B dtypes differ") \
    X(ADAPTER_UNSUPPORTED, -424, "tensor of an unsupported LoRA variant") \
    X(ADAPTER_EMPTY,  -425, "adapter holds no LoRA module") \
    X(POLICY_YAML,    -426, "policy is not valid YAML") \
    X(POLICY_FIELD,   -427, "policy field unknown, missing or of the wrong type") \
    X(GATE_PROBE,     -428, "probe command could not be run") \
    X(MANIFEST_YAML,   -440, "plora.yml is not well-formed YAML") \
    X(MANIFEST_LIMIT,  -441, "plora.yml exceeds a size, depth, length or count cap") \
    X(MANIFEST_YAML_FEATURE, -442, "YAML feature not allowed in plora.yml (alias, tag, several documents, duplicate key)") \
    X(MANIFEST_MISSING, -443, "required plora.yml field missing") \
    X(MANIFEST_TYPE,   -444, "plora.yml field has the wrong type") \
    X(MANIFEST_VALUE,  -445, "plora.yml field value malformed or out of range") \
    X(MERGE_SHAPE,    -450, "a module's shape differs between merge inputs") \
    X(MERGE_EMPTY,    -451, "nothing to merge (no input or no module)") \
    X(MERGE_WEIGHT,   -452, "merge weight or scaling not finite") \
    X(MERGE_TAU,      -453, "trust radius not finite and positive") \
    X(MERGE_LAPACK,   -454, "LAPACK routine failed during the merge") \
    X(MERGE_KLD_EPS,  -455, "KLD budget set but an input has no usable kld_eps") \
    X(MERGE_NONFINITE,-456, "non-finite value in an input factor") \
    X(MERGE_RANK,     -457, "output rank out of range") \
    X(MERGE_COMPAT,   -458, "merge inputs disagree on base model, layout or dtype") \
    X(ST_WRITE,       -459, "safetensors writer: tensor missing, repeated or of the wrong size") \
    X(CERT,           -460, "merge certificate malformed") \
    X(KLD_ARG,        -461, "Cauchy parameter not finite") \
    X(MERGE_STATE,    -462, "merge object used out of order")

enum fusion_err {
    FUSION_OK = 0,
#define X(name, val, msg) FUSION_E_##name = (val),
    FUSION_ERRORS(X)
#undef X
};

/* Where and why an operation failed. `code` repeats the return value;
 * `offset` is a byte offset into the input (or 0), `line` a 1-based line
 * number for line-oriented inputs (or 0); `msg` names the field, the values
 * seen and the problem, NUL-terminated, never longer than the array. */
struct fusion_diag {
    int code;
    size_t offset;
    size_t line;
    char msg[256];
};

/* "PROTO_E_NEED_MORE"-style name of a code; "FUSION_OK" for 0; "unknown" else. */
const char *fusion_err_name(int code);
/* One-line description of a code; never NULL. */
const char *fusion_strerror(int code);

/* Fill `d` (may be NULL) with code, offset and a printf-style message, and
 * return `code` so that callers can write `return fusion_fail(d, ...)`. */
int fusion_fail(struct fusion_diag *d, int code, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Clear a diagnostic (NULL is fine). */
void fusion_diag_clear(struct fusion_diag *d);

#endif
