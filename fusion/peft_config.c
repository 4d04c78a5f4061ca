/* fusion/peft_config.c: adapter_config.json -> struct peft_config.
 *
 * Only fields that change what the tensors mean are read and type-checked;
 * the rest is kept in `raw`. Regexes are compiled once here, so that a bad
 * pattern is an error at load time, not a silent non-match later.
 */
#include "peft_config.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct peft_config_priv {
    regex_t *rank_re;     /* n_rank_pattern compiled `^(.*\.)?(K)$` */
    size_t n_rank_re;     /* how many are compiled (for freeing) */
    regex_t *alpha_re;
    size_t n_alpha_re;
    regex_t target_re;    /* `^(T)$`, when target_regex != NULL */
    int have_target_re;
};

/* Python regex -> POSIX ERE for the forms PEFT configs use. The caller owns
 * the result; NULL on no memory. */
static char *py_to_ere(const char *pre, const char *p, const char *post)
{
    size_t n = strlen(pre) + 14 * strlen(p) + strlen(post) + 1;
    char *out = malloc(n), *w = out;

    if (out == NULL)
        return NULL;
    w += snprintf(w, n, "%s", pre);
    for (; *p != '\0'; p++) {
        const char *rep = NULL;
        if (p[0] == '\\' && p[1] == 'd') rep = "[0-9]";
        else if (p[0] == '\\' && p[1] == 'w') rep = "[A-Za-z0-9_]";
        else if (p[0] == '\\' && p[1] == 's') rep = "[[:space:]]";
        else if (p[0] == '(' && p[1] == '?' && p[2] == ':') { *w++ = '('; p += 2; continue; }
        if (rep != NULL) {
            w += sprintf(w, "%s", rep);
            p++;
        } else if (p[0] == '\\' && p[1] != '\0') {
            *w++ = *p++;
            *w++ = *p;
        } else {
            *w++ = *p;
        }
    }
    sprintf(w, "%s", post);
    return out;
}

/* Caps that keep glibc's regcomp linear enough on hostile patterns: it
 * copies the subtree for every quantifier ("a+" is "aa*", "a{32}" 32 copies),
 * so nested quantifiers multiply (a fuzzed "u++++...+" took > 15 s).
 * Backreferences (\1) are refused: they make matching exponential. */
#define RE_MAX_LEN 256         /* bytes of pattern */
#define RE_MAX_QUANT 8         /* quantifiers (* + ? {}) in a pattern */
#define RE_MAX_COPIES 64       /* product of {m,n} upper bounds */

/* Upper bound of the "{m,n}" at p (0 for "{m,}"); *end at its '}' or NUL. */
static unsigned long brace_bound(const char *p, const char **end)
{
    unsigned long hi = 0;

    for (p++; *p != '\0' && *p != '}'; p++)
        hi = *p >= '0' && *p <= '9' ? (hi * 10 + (unsigned long)(*p - '0')) % 100000 : 0;
    *end = *p == '}' ? p : p - 1;
    return hi;
}

static const char *pattern_problem(const char *p)
{
    unsigned quant = 0;
    unsigned long copies = 1;
    bool after_quant = false;
    char prev = '\0';

    if (strlen(p) > RE_MAX_LEN)
        return "longer than 256 bytes";
    for (; *p != '\0'; prev = *p, p++) {
        bool q = (*p == '*' || *p == '+' || *p == '?' || *p == '{') && !(*p == '?' && prev == '(');
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '9')
            return "backreferences are not allowed";
        if (q && after_quant)
            return "a quantifier follows a quantifier";
        if (q && ++quant > RE_MAX_QUANT)
            return "more than 8 quantifiers";
        if (*p == '{') {
            unsigned long hi = brace_bound(p, &p);
            if (hi > RE_MAX_COPIES || (copies *= hi ? hi : 1) > RE_MAX_COPIES)
                return "bounded repetitions above 64 copies";
        }
        if (p[0] == '\\' && p[1] != '\0')
            p++;
        after_quant = q;
    }
    return NULL;
}

static int compile_re(regex_t *re, const char *pre, const char *pat, const char *post,
                      const char *field, struct fusion_diag *d)
{
    const char *why = pattern_problem(pat);
    char *ere;
    int e;

    if (why != NULL)
        return fusion_fail(d, FUSION_E_PEFT_REGEX, 0, "%s: pattern \"%.60s\" refused: %s",
                           field, pat, why);
    if ((ere = py_to_ere(pre, pat, post)) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "no memory for pattern of %s", field);
    e = regcomp(re, ere, REG_EXTENDED | REG_NOSUB);
    free(ere);
    if (e != 0) {
        char err[96];
        regerror(e, re, err, sizeof(err));
        return fusion_fail(d, FUSION_E_PEFT_REGEX, 0, "%s: pattern \"%.60s\" does not compile: %s",
                           field, pat, err);
    }
    return 0;
}

/* Optional string: absent or null -> NULL; else must be a string. */
static int get_opt_string(json_t *root, const char *key, char **out, struct fusion_diag *d)
{
    json_t *v = json_object_get(root, key);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return fusion_fail(d, FUSION_E_PEFT_FIELD, 0, "field \"%s\" is not a string", key);
    if ((*out = strdup(json_string_value(v))) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "no memory for field \"%s\"", key);
    return 0;
}

static int get_opt_bool(json_t *root, const char *key, bool *out, struct fusion_diag *d)
{
    json_t *v = json_object_get(root, key);

    *out = false;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return fusion_fail(d, FUSION_E_PEFT_FIELD, 0, "field \"%s\" is not true or false", key);
    *out = json_is_true(v);
    return 0;
}

/* A rank: a JSON integer (or a real with an integral value) in 1..2^31. */
static int as_rank(json_t *v, const char *what, double *out, struct fusion_diag *d)
{
    double x = json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);

    if (!json_is_number(v) || x != floor(x) || x < 1 || x > 2147483648.0)
        return fusion_fail(d, FUSION_E_PEFT_FIELD, 0, "%s is not an integer rank >= 1", what);
    *out = x;
    return 0;
}

static int as_alpha(json_t *v, const char *what, double *out, struct fusion_diag *d)
{
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return fusion_fail(d, FUSION_E_PEFT_FIELD, 0, "%s is not a finite number", what);
    *out = json_number_value(v);
    return 0;
}

/* Array of strings (or null / absent when allowed) -> owned char **. */
static int get_string_list(json_t *v, const char *key, char ***out, size_t *n,
                           struct fusion_diag *d)
{
    size_t i;
    json_t *x;

    *out = NULL;
    *n = 0;
    if ((*out = calloc(json_array_size(v) + 1, sizeof(char *))) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "no memory for \"%s\"", key);
    json_array_foreach(v, i, x) {
        if (!json_is_string(x))
            return fusion_fail(d, FUSION_E_PEFT_FIELD, 0, "%s[%zu] is not a string", key, i);
        if (((*out)[i] = strdup(json_string_value(x))) == NULL)
            return fusion_fail(d, FUSION_E_NOMEM, 0, "no memory for \"%s\"", key);
        *n = i + 1;
    }
    return 0;
}

static int get_patterns(json_t *root, const char *key, bool rank, struct peft_pattern **out,
                        size_t *n, struct fusion_diag *d)
{
    json_t *v = json_object_get(root, key), *x;
    const char *k;
    char what[160];
    int rc;

    *out = NULL;
    *n = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return fusion_fail(d, FUSION_E_PEFT_FIELD, 0, "field \"%s\" is not an object", key);
    if ((*out = calloc(json_object_size(v) + 1, sizeof(**out))) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "no memory for \"%s\"", key);
    json_object_foreach(v, k, x) {
        snprintf(what, sizeof(what), "%s[\"%.100s\"]", key, k);
        rc = rank ? as_rank(x, what, &(*out)[*n].value, d) : as_alpha(x, what, &(*out)[*n].value, d);
        if (rc != 0)
            return rc;
        if (((*out)[*n].key = strdup(k)) == NULL)
            return fusion_fail(d, FUSION_E_NOMEM, 0, "no memory for \"%s\"", key);
        (*n)++;
    }
    return 0;
}

static int get_targets(struct peft_config *c, struct fusion_diag *d)
{
    json_t *v = json_object_get(c->raw, "target_modules");

    if (json_is_string(v))
        return (c->target_regex = strdup(json_string_value(v))) == NULL ?
               fusion_fail(d, FUSION_E_NOMEM, 0, "no memory for target_modules") : 0;
    if (!json_is_array(v))
        return fusion_fail(d, FUSION_E_PEFT_FIELD, 0, "field \"target_modules\" is %s, want a "
                           "list of module names or a regex string", v ? "not a list or string"
                           : "missing");
    return get_string_list(v, "target_modules", &c->target_modules, &c->n_target_modules, d);
}

static int get_modules_to_save(struct peft_config *c, struct fusion_diag *d)
{
    json_t *v = json_object_get(c->raw, "modules_to_save");

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return fusion_fail(d, FUSION_E_PEFT_FIELD, 0, "field \"modules_to_save\" is not a list");
    return get_string_list(v, "modules_to_save", &c->modules_to_save, &c->n_modules_to_save, d);
}

static int check_type(struct peft_config *c, struct fusion_diag *d)
{
    bool dora;
    int rc;

    if ((rc = get_opt_string(c->raw, "peft_type", &c->peft_type, d)) != 0)
        return rc;
    if (c->peft_type == NULL)
        return fusion_fail(d, FUSION_E_PEFT_FIELD, 0, "field \"peft_type\" missing (want \"LORA\")");
    if (strcmp(c->peft_type, "LORA") != 0)
        return fusion_fail(d, FUSION_E_PEFT_TYPE, 0, "peft_type \"%.40s\" is not supported: only "
                           "LoRA adapters (\"LORA\") can be gated and merged", c->peft_type);
    if ((rc = get_opt_bool(c->raw, "use_dora", &dora, d)) != 0)
        return rc;
    if (dora)
        return fusion_fail(d, FUSION_E_PEFT_TYPE, 0, "use_dora is true: DoRA adapters carry a "
                           "magnitude vector and cannot be merged as B A deltas");
    return 0;
}

static int get_rank_alpha(struct peft_config *c, struct fusion_diag *d)
{
    json_t *r = json_object_get(c->raw, "r"), *a = json_object_get(c->raw, "lora_alpha");
    double rv = 0;
    int rc;

    if (r == NULL || a == NULL)
        return fusion_fail(d, FUSION_E_PEFT_FIELD, 0, "field \"%s\" missing", r ? "lora_alpha" : "r");
    if ((rc = as_rank(r, "field \"r\"", &rv, d)) != 0 ||
        (rc = as_alpha(a, "field \"lora_alpha\"", &c->lora_alpha, d)) != 0)
        return rc;
    c->r = (unsigned)rv;
    return 0;
}

static int compile_all(struct peft_config *c, struct fusion_diag *d)
{
    struct peft_config_priv *p = c->priv;
    int rc;

    if ((p->rank_re = calloc(c->n_rank_pattern + 1, sizeof(regex_t))) == NULL ||
        (p->alpha_re = calloc(c->n_alpha_pattern + 1, sizeof(regex_t))) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "no memory for patterns");
    for (; p->n_rank_re < c->n_rank_pattern; p->n_rank_re++)
        if ((rc = compile_re(&p->rank_re[p->n_rank_re], "^(.*\\.)?(",
                             c->rank_pattern[p->n_rank_re].key, ")$", "rank_pattern", d)) != 0)
            return rc;
    for (; p->n_alpha_re < c->n_alpha_pattern; p->n_alpha_re++)
        if ((rc = compile_re(&p->alpha_re[p->n_alpha_re], "^(.*\\.)?(",
                             c->alpha_pattern[p->n_alpha_re].key, ")$", "alpha_pattern", d)) != 0)
            return rc;
    if (c->target_regex != NULL) {
        if ((rc = compile_re(&p->target_re, "^(", c->target_regex, ")$", "target_modules", d)) != 0)
            return rc;
        p->have_target_re = 1;
    }
    return 0;
}

static int fill(struct peft_config *c, struct fusion_diag *d)
{
    int rc;

    if ((rc = check_type(c, d)) != 0 ||
        (rc = get_rank_alpha(c, d)) != 0 ||
        (rc = get_opt_bool(c->raw, "use_rslora", &c->use_rslora, d)) != 0 ||
        (rc = get_opt_bool(c->raw, "fan_in_fan_out", &c->fan_in_fan_out, d)) != 0 ||
        (rc = get_opt_string(c->raw, "base_model_name_or_path", &c->base_model, d)) != 0 ||
        (rc = get_opt_string(c->raw, "task_type", &c->task_type, d)) != 0 ||
        (rc = get_targets(c, d)) != 0 ||
        (rc = get_modules_to_save(c, d)) != 0 ||
        (rc = get_patterns(c->raw, "rank_pattern", true, &c->rank_pattern, &c->n_rank_pattern, d)) != 0 ||
        (rc = get_patterns(c->raw, "alpha_pattern", false, &c->alpha_pattern, &c->n_alpha_pattern, d)) != 0)
        return rc;
    return compile_all(c, d);
}

int peft_config_parse(struct peft_config **out, const char *text, size_t len,
                      struct fusion_diag *d)
{
    struct peft_config *c = NULL;
    json_error_t err;
    int rc;

    *out = NULL;
    if (len > PEFT_CONFIG_MAX)
        return fusion_fail(d, FUSION_E_PEFT_JSON, 0, "%zu bytes, cap %u", len, PEFT_CONFIG_MAX);
    if ((c = calloc(1, sizeof(*c))) == NULL || (c->priv = calloc(1, sizeof(*c->priv))) == NULL) {
        rc = fusion_fail(d, FUSION_E_NOMEM, 0, "no memory for a config");
        goto out;
    }
    if ((c->raw = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err)) == NULL) {
        rc = fusion_fail(d, FUSION_E_PEFT_JSON, (size_t)err.position, "line %d column %d: %s",
                         err.line, err.column, err.text);
        goto out;
    }
    if (!json_is_object(c->raw)) {
        rc = fusion_fail(d, FUSION_E_PEFT_JSON, 0, "JSON but not an object");
        goto out;
    }
    if ((rc = fill(c, d)) != 0)
        goto out;
    *out = c;
    c = NULL;  /* transferred */
out:
    peft_config_free(c);
    return rc;
}

int peft_config_load(struct peft_config **out, const char *path, struct fusion_diag *d)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f;
    int rc;

    *out = NULL;
    if ((f = fopen(path, "rb")) == NULL)
        return fusion_fail(d, FUSION_E_IO, 0, "%s: %s", path, strerror(errno));
    if ((buf = malloc(PEFT_CONFIG_MAX + 1)) == NULL) {
        rc = fusion_fail(d, FUSION_E_NOMEM, 0, "no memory to read %s", path);
        goto out;
    }
    n = fread(buf, 1, PEFT_CONFIG_MAX + 1, f);
    if (ferror(f)) {
        rc = fusion_fail(d, FUSION_E_IO, 0, "%s: read error", path);
        goto out;
    }
    rc = peft_config_parse(out, buf, n, d);
out:
    free(buf);
    fclose(f);
    return rc;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i]);
    free(v);
}

static void free_patterns(struct peft_pattern *p, size_t n)
{
    for (size_t i = 0; p != NULL && i < n; i++)
        free(p[i].key);
    free(p);
}

void peft_config_free(struct peft_config *c)
{
    if (c == NULL)
        return;
    if (c->priv != NULL) {
        for (size_t i = 0; i < c->priv->n_rank_re; i++)
            regfree(&c->priv->rank_re[i]);
        for (size_t i = 0; i < c->priv->n_alpha_re; i++)
            regfree(&c->priv->alpha_re[i]);
        if (c->priv->have_target_re)
            regfree(&c->priv->target_re);
        free(c->priv->rank_re);
        free(c->priv->alpha_re);
        free(c->priv);
    }
    free(c->peft_type);
    free(c->base_model);
    free(c->task_type);
    free(c->target_regex);
    free_list(c->target_modules, c->n_target_modules);
    free_list(c->modules_to_save, c->n_modules_to_save);
    free_patterns(c->rank_pattern, c->n_rank_pattern);
    free_patterns(c->alpha_pattern, c->n_alpha_pattern);
    json_decref(c->raw);
    free(c);
}

/* Index of the first pattern matching `module`, or -1 (PEFT's get_pattern_key). */
static long first_match(const regex_t *re, size_t n, const char *module)
{
    for (size_t i = 0; i < n; i++)
        if (regexec(&re[i], module, 0, NULL, 0) == 0)
            return (long)i;
    return -1;
}

unsigned peft_config_module_rank(const struct peft_config *c, const char *module)
{
    long i = first_match(c->priv->rank_re, c->priv->n_rank_re, module);

    return i < 0 ? c->r : (unsigned)c->rank_pattern[i].value;
}

double peft_config_module_alpha(const struct peft_config *c, const char *module)
{
    long i = first_match(c->priv->alpha_re, c->priv->n_alpha_re, module);

    return i < 0 ? c->lora_alpha : c->alpha_pattern[i].value;
}

double peft_config_scaling(const struct peft_config *c, const char *module, unsigned r)
{
    double alpha = peft_config_module_alpha(c, module);

    return c->use_rslora ? alpha / sqrt((double)r) : alpha / (double)r;
}

/* Whether `name` equals `suffix` or ends with "." + suffix. */
static bool dotted_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);

    if (n == s)
        return strcmp(name, suffix) == 0;
    return n > s && name[n - s - 1] == '.' && strcmp(name + n - s, suffix) == 0;
}

bool peft_config_targets(const struct peft_config *c, const char *module)
{
    if (c->priv->have_target_re)
        return strcmp(c->target_regex, "all-linear") == 0 ||
               regexec(&c->priv->target_re, module, 0, NULL, 0) == 0;
    for (size_t i = 0; i < c->n_target_modules; i++)
        if (dotted_suffix(module, c->target_modules[i]))
            return true;
    return false;
}
