/* fusion/peft_config.h: a PEFT adapter_config.json (LoRA only).
 *
 * Read with jansson. Known fields are type-checked; unknown fields (newer
 * PEFT versions add many: alora_invocation_tokens, arrow_config, use_bdlora,
 * ...) are tolerated and stay available through `raw`. Refused with a clear
 * message: peft_type other than "LORA", use_dora = true, r < 1, lora_alpha
 * not a finite number, patterns that do not compile.
 *
 * Module names here are paths inside the base model, as PEFT's
 * named_modules() gives them (e.g. "distilbert.transformer.layer.0.attention.q_lin"),
 * i.e. a tensor name without "base_model.model." and without ".lora_A.weight".
 *
 * Matching rules, as PEFT applies them (peft/utils/other.py get_pattern_key,
 * peft/tuners/tuners_utils.py check_target_module_exists):
 *  - rank_pattern / alpha_pattern: the FIRST key K, in file order, for which
 *    the regex `(.*\.)?(K)$` matches the module name from its start wins;
 *    otherwise r / lora_alpha.
 *  - target_modules as a string: the regex must match the whole module name;
 *    as a list: the name equals an entry or ends with "." + entry;
 *    "all-linear" matches every module.
 * Regexes are compiled as POSIX extended regular expressions after turning
 * the Python forms \d \w \s (?: into [0-9] [A-Za-z0-9_] [[:space:]] (.
 * Python-only syntax (lookarounds, lazy quantifiers) does not compile and is
 * refused. So that a hostile config cannot stall regcomp/regexec, a pattern
 * is refused when it is over 256 bytes, has more than 8 quantifiers, a
 * quantifier right after another, {m,n} bounds multiplying past 64, or a
 * backreference.
 */
#ifndef PLORA_PEFT_CONFIG_H
#define PLORA_PEFT_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "fusion_err.h"

#define PEFT_CONFIG_MAX (1u << 20)  /* bytes of adapter_config.json */
#define PEFT_CONFIG_NAME "adapter_config.json"

struct peft_pattern {
    char *key;     /* module-name pattern, as written */
    double value;  /* rank (an integer >= 1) or alpha */
};

struct peft_config_priv;  /* compiled patterns; opaque */

/* Parsed configuration. Read-only for callers; every pointer is owned by the
 * config and valid until peft_config_free(). */
struct peft_config {
    char *peft_type;                  /* "LORA" */
    char *base_model;                 /* base_model_name_or_path; NULL if absent or null */
    char *task_type;                  /* NULL if absent or null */
    unsigned r;                       /* default rank, >= 1 */
    double lora_alpha;                /* default alpha, finite */
    bool use_rslora;                  /* scaling alpha/sqrt(r) instead of alpha/r */
    bool fan_in_fan_out;              /* weights stored [in, out] (GPT-2 Conv1D) */
    char *target_regex;               /* target_modules given as a string, else NULL */
    char **target_modules;            /* target_modules given as a list, else NULL */
    size_t n_target_modules;
    char **modules_to_save;           /* NULL if absent or null; may hold duplicates */
    size_t n_modules_to_save;
    struct peft_pattern *rank_pattern;   /* file order */
    size_t n_rank_pattern;
    struct peft_pattern *alpha_pattern;  /* file order */
    size_t n_alpha_pattern;
    json_t *raw;                      /* the whole object (reference owned by the config) */
    struct peft_config_priv *priv;
};

/* Parse `len` bytes of JSON. Returns 0, FUSION_E_NOMEM, FUSION_E_PEFT_JSON
 * (not JSON, not an object, too big; diag has line/column), FUSION_E_PEFT_FIELD
 * (a known field missing or of the wrong type/value), FUSION_E_PEFT_TYPE
 * (not plain LoRA), FUSION_E_PEFT_REGEX. On error *out is NULL. */
int peft_config_parse(struct peft_config **out, const char *text, size_t len,
                      struct fusion_diag *d);

/* Read and parse the file at `path` (at most PEFT_CONFIG_MAX bytes). Codes of
 * peft_config_parse plus FUSION_E_IO. */
int peft_config_load(struct peft_config **out, const char *path, struct fusion_diag *d);

void peft_config_free(struct peft_config *c);  /* NULL is fine */

/* Rank and alpha that PEFT uses for `module` (rank_pattern / alpha_pattern
 * applied; see the matching rules above). */
unsigned peft_config_module_rank(const struct peft_config *c, const char *module);
double peft_config_module_alpha(const struct peft_config *c, const char *module);

/* PEFT's scaling for `module`: alpha / r, or alpha / sqrt(r) with use_rslora,
 * with the module's own alpha and the given rank r >= 1. */
double peft_config_scaling(const struct peft_config *c, const char *module, unsigned r);

/* Whether target_modules selects `module`. */
bool peft_config_targets(const struct peft_config *c, const char *module);

#endif
