/* fusion/adapter.c: pair LoRA tensors per module and check them against the
 * config. The tensors are the truth; the config must agree with them. */
#include "adapter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUFFIX_A ".lora_A.weight"
#define SUFFIX_B ".lora_B.weight"

struct adapter {
    struct peft_config *cfg;
    struct safetensors *st;
    struct adapter_module *mod;    /* n_mod, sorted by name; names owned here */
    size_t n_mod;
    const struct safetensors_tensor **other;  /* n_other, in strcmp order */
    size_t n_other;
};

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Module path of a lora_A/B tensor name: prefix and suffix stripped. Owned
 * by the caller; NULL on no memory. */
static char *module_name(const char *tensor)
{
    size_t pre = strncmp(tensor, ADAPTER_TENSOR_PREFIX, strlen(ADAPTER_TENSOR_PREFIX)) == 0 ?
                 strlen(ADAPTER_TENSOR_PREFIX) : 0;

    return strndup(tensor + pre, strlen(tensor) - pre - strlen(SUFFIX_A));
}

/* The tensor named like t but with lora_<want>: "X.lora_A.weight" <-> "X.lora_B.weight". */
static const struct safetensors_tensor *partner(const struct safetensors *st,
                                                const struct safetensors_tensor *t, char want)
{
    const struct safetensors_tensor *p;
    char *name = strdup(t->name);

    if (name == NULL)
        return NULL;
    name[strlen(name) - strlen(".weight") - 1] = want;
    p = safetensors_find(st, name);
    free(name);
    return p;
}

/* LoRA variants whose tensors are not a plain A/B pair (or keys saved with
 * an adapter name, e.g. "lora_A.default.weight"). */
static bool is_lora_like(const char *name)
{
    return strstr(name, ".lora_") != NULL || strncmp(name, "lora_", 5) == 0;
}

static int check_pair(struct adapter_module *m, struct fusion_diag *d)
{
    const struct safetensors_tensor *a = m->a, *b = m->b;

    if (a->ndim != 2 || b->ndim != 2 || a->shape[0] == 0)
        return fusion_fail(d, FUSION_E_ADAPTER_SHAPE, 0, "module \"%s\": lora_A has %u dims, "
                           "lora_B %u, want lora_A [r>=1, in] and lora_B [out, r]", m->name,
                           a->ndim, b->ndim);
    if (a->shape[0] != b->shape[1])
        return fusion_fail(d, FUSION_E_ADAPTER_SHAPE, 0, "module \"%s\": lora_A has rank %llu "
                           "(shape [%llu, %llu]) but lora_B has rank %llu (shape [%llu, %llu])",
                           m->name, (unsigned long long)a->shape[0], (unsigned long long)a->shape[0],
                           (unsigned long long)a->shape[1], (unsigned long long)b->shape[1],
                           (unsigned long long)b->shape[0], (unsigned long long)b->shape[1]);
    if (a->dtype != b->dtype)
        return fusion_fail(d, FUSION_E_ADAPTER_DTYPE, 0, "module \"%s\": lora_A is %s but lora_B "
                           "is %s", m->name, safetensors_dtype_name(a->dtype),
                           safetensors_dtype_name(b->dtype));
    m->r = (unsigned)a->shape[0];
    m->in = a->shape[1];
    m->out = b->shape[0];
    m->dtype = a->dtype;
    return 0;
}

static int check_config(struct adapter *ad, struct adapter_module *m, struct fusion_diag *d)
{
    unsigned want = peft_config_module_rank(ad->cfg, m->name);

    if (want != m->r)
        return fusion_fail(d, FUSION_E_ADAPTER_RANK, 0, "module \"%s\": tensors have rank %u but "
                           "the config says %u (%s)", m->name, m->r, want,
                           want == ad->cfg->r ? "r" : "rank_pattern");
    if (!peft_config_targets(ad->cfg, m->name))
        return fusion_fail(d, FUSION_E_ADAPTER_TARGET, 0, "module \"%s\" has LoRA tensors but is "
                           "not selected by target_modules", m->name);
    m->alpha = peft_config_module_alpha(ad->cfg, m->name);
    m->scaling = peft_config_scaling(ad->cfg, m->name, m->r);
    return 0;
}

/* One lora_A tensor: find its B, fill the module, check it. */
static int add_module(struct adapter *ad, const struct safetensors_tensor *a, struct fusion_diag *d)
{
    struct adapter_module *m = &ad->mod[ad->n_mod];
    int rc;

    if ((m->b = partner(ad->st, a, 'B')) == NULL)
        return fusion_fail(d, FUSION_E_ADAPTER_UNPAIRED, 0, "tensor \"%s\" has no matching "
                           "lora_B.weight", a->name);
    m->a = a;
    if ((m->name = module_name(a->name)) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "no memory for a module name");
    ad->n_mod++;  /* counted now so that its name is freed on error */
    if ((rc = check_pair(m, d)) != 0)
        return rc;
    return check_config(ad, m, d);
}

static int classify(struct adapter *ad, const struct safetensors_tensor *t, struct fusion_diag *d)
{
    if (ends_with(t->name, SUFFIX_A))
        return add_module(ad, t, d);
    if (ends_with(t->name, SUFFIX_B))
        return partner(ad->st, t, 'A') != NULL ? 0 :
               fusion_fail(d, FUSION_E_ADAPTER_UNPAIRED, 0, "tensor \"%s\" has no matching "
                           "lora_A.weight", t->name);
    if (is_lora_like(t->name))
        return fusion_fail(d, FUSION_E_ADAPTER_UNSUPPORTED, 0, "tensor \"%s\" belongs to a LoRA "
                           "variant that cannot be merged as B A (only lora_A/lora_B.weight)",
                           t->name);
    ad->other[ad->n_other++] = t;
    return 0;
}

static int cmp_module(const void *x, const void *y)
{
    return strcmp(((const struct adapter_module *)x)->name,
                  ((const struct adapter_module *)y)->name);
}

static int build(struct adapter *ad, struct fusion_diag *d)
{
    size_t n = safetensors_count(ad->st);
    int rc;

    if ((ad->mod = calloc(n + 1, sizeof(*ad->mod))) == NULL ||
        (ad->other = calloc(n + 1, sizeof(*ad->other))) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "no memory for %zu tensors", n);
    for (size_t i = 0; i < n; i++)
        if ((rc = classify(ad, safetensors_at(ad->st, i), d)) != 0)
            return rc;
    if (ad->n_mod == 0)
        return fusion_fail(d, FUSION_E_ADAPTER_EMPTY, 0, "no lora_A/lora_B pair among %zu tensors", n);
    qsort(ad->mod, ad->n_mod, sizeof(*ad->mod), cmp_module);
    return 0;
}

int adapter_build(struct adapter **out, struct peft_config *cfg, struct safetensors *st,
                  struct fusion_diag *d)
{
    struct adapter *ad;
    int rc;

    *out = NULL;
    if ((ad = calloc(1, sizeof(*ad))) == NULL) {
        peft_config_free(cfg);
        safetensors_free(st);
        return fusion_fail(d, FUSION_E_NOMEM, 0, "no memory for an adapter");
    }
    ad->cfg = cfg;  /* owned from here on, whatever happens */
    ad->st = st;
    if ((rc = build(ad, d)) != 0) {
        adapter_free(ad);
        return rc;
    }
    *out = ad;
    return 0;
}

/* Prefix the diag message with the file it is about. */
static void diag_prefix(struct fusion_diag *d, const char *file)
{
    char tmp[sizeof(d->msg)];
    size_t n;

    if (d == NULL)
        return;
    memcpy(tmp, d->msg, sizeof(tmp));
    n = (size_t)snprintf(d->msg, sizeof(d->msg), "%s: ", file);
    if (n < sizeof(d->msg))
        memcpy(d->msg + n, tmp, sizeof(d->msg) - n - 1);  /* cut at the end; msg stays NUL-ended */
    d->msg[sizeof(d->msg) - 1] = '\0';
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int adapter_open(struct adapter **out, const char *dir, struct fusion_diag *d)
{
    struct peft_config *cfg = NULL;
    struct safetensors *st = NULL;
    char *cpath = join(dir, PEFT_CONFIG_NAME), *wpath = join(dir, ADAPTER_WEIGHTS_NAME);
    int rc;

    *out = NULL;
    if (cpath == NULL || wpath == NULL) {
        rc = fusion_fail(d, FUSION_E_NOMEM, 0, "no memory for a path");
        goto out;
    }
    if ((rc = peft_config_load(&cfg, cpath, d)) != 0) {
        if (rc != FUSION_E_IO)
            diag_prefix(d, PEFT_CONFIG_NAME);
        goto out;
    }
    if ((rc = safetensors_open(&st, wpath, d)) != 0) {
        if (rc != FUSION_E_IO)
            diag_prefix(d, ADAPTER_WEIGHTS_NAME);
        goto out;
    }
    rc = adapter_build(out, cfg, st, d);  /* takes both */
    cfg = NULL;
    st = NULL;
    if (rc != 0)
        diag_prefix(d, dir);
out:
    peft_config_free(cfg);
    safetensors_free(st);
    free(cpath);
    free(wpath);
    return rc;
}

void adapter_free(struct adapter *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n_mod; i++)
        free((char *)a->mod[i].name);
    free(a->mod);
    free(a->other);
    peft_config_free(a->cfg);
    safetensors_free(a->st);
    free(a);
}

const struct peft_config *adapter_config(const struct adapter *a) { return a->cfg; }
const struct safetensors *adapter_safetensors(const struct adapter *a) { return a->st; }
size_t adapter_module_count(const struct adapter *a) { return a->n_mod; }
size_t adapter_other_count(const struct adapter *a) { return a->n_other; }

const struct adapter_module *adapter_module_at(const struct adapter *a, size_t i)
{
    return i < a->n_mod ? &a->mod[i] : NULL;
}

const struct adapter_module *adapter_module_find(const struct adapter *a, const char *name)
{
    struct adapter_module key = { .name = name };

    return bsearch(&key, a->mod, a->n_mod, sizeof(*a->mod), cmp_module);
}

const struct safetensors_tensor *adapter_other_at(const struct adapter *a, size_t i)
{
    return i < a->n_other ? a->other[i] : NULL;
}

int adapter_module_a_f64(const struct adapter_module *m, double *out)
{
    return safetensors_tensor_to_f64(m->a, out, (size_t)m->a->nelem);
}

int adapter_module_b_f64(const struct adapter_module *m, double *out)
{
    return safetensors_tensor_to_f64(m->b, out, (size_t)m->b->nelem);
}

int adapter_module_a_f32(const struct adapter_module *m, float *out)
{
    return safetensors_tensor_to_f32(m->a, out, (size_t)m->a->nelem);
}

int adapter_module_b_f32(const struct adapter_module *m, float *out)
{
    return safetensors_tensor_to_f32(m->b, out, (size_t)m->b->nelem);
}

/* G = A A^T (r x r) for A [r, in], or B^T B for B [out, r] (trans = 1). */
static void gram(const double *x, size_t rows, size_t cols, int trans, double *g)
{
    size_t r = trans ? cols : rows;

    memset(g, 0, r * r * sizeof(*g));
    if (!trans) {
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j <= i; j++) {
                double s = 0;
                for (size_t k = 0; k < cols; k++)
                    s += x[i * cols + k] * x[j * cols + k];
                g[i * r + j] = g[j * r + i] = s;
            }
        return;
    }
    for (size_t o = 0; o < rows; o++)
        for (size_t i = 0; i < cols; i++)
            for (size_t j = 0; j <= i; j++)
                g[i * r + j] += x[o * cols + i] * x[o * cols + j];
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < i; j++)
            g[j * r + i] = g[i * r + j];
}

int adapter_module_frob(const struct adapter_module *m, double *out)
{
    size_t r = m->r;
    double *a = malloc(r * m->in * sizeof(double)), *b = malloc(m->out * r * sizeof(double));
    double *ga = malloc(r * r * sizeof(double)), *gb = malloc(r * r * sizeof(double));
    double sum = 0;
    int rc = FUSION_E_NOMEM;

    *out = 0;
    if (a == NULL || b == NULL || ga == NULL || gb == NULL)
        goto out;
    adapter_module_a_f64(m, a);
    adapter_module_b_f64(m, b);
    gram(a, r, m->in, 0, ga);
    gram(b, m->out, r, 1, gb);
    for (size_t i = 0; i < r * r; i++)
        sum += ga[i] * gb[i];   /* trace(G_B G_A) for symmetric Grams */
    *out = fabs(m->scaling) * sqrt(sum > 0 ? sum : 0);  /* rounding can dip below 0 */
    rc = 0;
out:
    free(a);
    free(b);
    free(ga);
    free(gb);
    return rc;
}
