/* fusion/gate.c: run every check of a policy on one adapter directory and
 * collect all failing reasons (gate.h lists them and the norm statistic). */
#include "gate.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hex.h"
#include "keyring.h"
#include "manifest.h"
#include "quorum.h"
#include "sha256.h"
#include "sig.h"
#include "vote.h"

#define SCAN_CHUNK 4096  /* doubles converted at a time while scanning */
#define SCAN_RELEASE (4u << 20)  /* bytes scanned between two page releases */

/* Everything one run knows; freed by run_free. */
struct run {
    const struct policy *p;
    const char *dir;
    const struct gate_env *env;
    struct gate_verdict *v;
    char *weights_path, *config_path, *manifest_path;
    bool have_weights;          /* file present */
    bool content_ok;            /* present and within size bounds */
    struct safetensors *st;     /* NULL if malformed or skipped */
    struct peft_config *cfg;    /* NULL if malformed or skipped */
    struct adapter *ad;         /* NULL unless config and tensors agree */
    struct manifest *man;       /* NULL if absent or invalid */
    double *norm;               /* per tensor of st; NAN when not finite */
    bool all_finite;
};

const char *gate_reason_name(enum gate_reason_id r)
{
    switch (r) {
#define X(id, name) case GATE_R_##id: return name;
    GATE_REASONS(X)
#undef X
    default: return "?";
    }
}

bool gate_verdict_has(const struct gate_verdict *v, enum gate_reason_id r)
{
    for (size_t i = 0; i < v->n_reasons; i++)
        if (v->reasons[i].id == r)
            return true;
    return false;
}

/* Append a reason; the only failure is NOMEM. */
static int add(struct run *r, enum gate_reason_id id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int add(struct run *r, enum gate_reason_id id, const char *fmt, ...)
{
    struct gate_reason *n = realloc(r->v->reasons, (r->v->n_reasons + 1) * sizeof(*n));
    va_list ap;

    if (n == NULL)
        return FUSION_E_NOMEM;
    r->v->reasons = n;
    n += r->v->n_reasons++;
    n->id = id;
    va_start(ap, fmt);
    vsnprintf(n->detail, sizeof(n->detail), fmt, ap);
    va_end(ap);
    return 0;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);

    if (s != NULL)
        snprintf(s, n, "%s/%s", dir, name);
    return s;
}

/* ---- artifact: presence, size, sha256 ------------------------------- */

static int check_artifact(struct run *r)
{
    const struct policy *p = r->p;
    struct crypto_diag cd = { 0 };
    uint8_t dig[SHA256_LEN];
    struct stat sb;

    if (stat(r->weights_path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return add(r, GATE_R_ARTIFACT_MISSING, "%s: %s", ADAPTER_WEIGHTS_NAME,
                   errno == ENOENT ? "no such file" : "not a readable regular file");
    r->have_weights = true;
    r->v->size_bytes = (uint64_t)sb.st_size;
    if (sha256_file(r->weights_path, dig, &r->v->size_bytes, &cd) != 0)
        return add(r, GATE_R_ARTIFACT_MISSING, "%s: cannot be read: %s", ADAPTER_WEIGHTS_NAME, cd.msg);
    sha256_hex(dig, r->v->sha256);
    if (r->v->size_bytes < p->min_size_bytes ||
        (p->max_size_bytes != 0 && r->v->size_bytes > p->max_size_bytes))
        return add(r, GATE_R_ARTIFACT_SIZE, "%s is %llu bytes, allowed %llu..%llu%s; content not "
                   "parsed", ADAPTER_WEIGHTS_NAME, (unsigned long long)r->v->size_bytes,
                   (unsigned long long)p->min_size_bytes, (unsigned long long)p->max_size_bytes,
                   p->max_size_bytes ? "" : " (no cap)");
    r->content_ok = true;
    return 0;
}

/* ---- structure: safetensors, config, their agreement ----------------- */

static bool is_adapter_code(int code)
{
    return code <= FUSION_E_ADAPTER_UNPAIRED && code >= FUSION_E_ADAPTER_EMPTY;
}

static int check_structure(struct run *r)
{
    struct fusion_diag d = { 0 };
    int rc = 0;

    if (safetensors_open(&r->st, r->weights_path, &d) != 0 &&
        (rc = add(r, GATE_R_MALFORMED_SAFETENSORS, "%s: %s", ADAPTER_WEIGHTS_NAME, d.msg)) != 0)
        return rc;
    if (peft_config_load(&r->cfg, r->config_path, &d) != 0 &&
        (rc = add(r, GATE_R_MALFORMED_CONFIG, "%s: %s", PEFT_CONFIG_NAME, d.msg)) != 0)
        return rc;
    if (r->st == NULL || r->cfg == NULL)
        return 0;
    if (adapter_open(&r->ad, r->dir, &d) != 0) {
        if (is_adapter_code(d.code))
            return add(r, GATE_R_CONFIG_MISMATCH, "%s", d.msg);
        return add(r, GATE_R_MALFORMED_SAFETENSORS, "%s", d.msg);  /* changed under us */
    }
    r->v->n_modules = adapter_module_count(r->ad);
    return 0;
}

/* ---- policy on the config and modules -------------------------------- */

static int check_base_model(struct run *r)
{
    const char *want = r->p->base_model;
    const char *cfg = r->cfg ? r->cfg->base_model : NULL;
    const char *man = r->man ? r->man->base_model : NULL;

    if (want == NULL || r->cfg == NULL)
        return 0;
    if (cfg == NULL || strcmp(cfg, want) != 0)
        return add(r, GATE_R_BASE_MODEL, "adapter_config.json base_model_name_or_path \"%.80s\", "
                   "policy wants \"%.80s\"", cfg ? cfg : "(none)", want);
    if (man != NULL && strcmp(man, want) != 0)
        return add(r, GATE_R_BASE_MODEL, "plora.yml base_model \"%.80s\", policy wants \"%.80s\"",
                   man, want);
    return 0;
}

static bool rank_allowed(const struct policy *p, unsigned rank)
{
    for (size_t i = 0; i < p->n_allowed_ranks; i++)
        if (p->allowed_ranks[i] == rank)
            return true;
    return false;
}

static bool target_allowed(const struct policy *p, const char *module)
{
    size_t n = strlen(module);

    for (size_t i = 0; i < p->n_allowed_targets; i++) {
        size_t k = strlen(p->allowed_targets[i]);
        if (strcmp(module, p->allowed_targets[i]) == 0 ||
            (n > k && module[n - k - 1] == '.' && strcmp(module + n - k, p->allowed_targets[i]) == 0))
            return true;
    }
    return false;
}

static void list_ranks(const struct policy *p, char *buf, size_t n)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < p->n_allowed_ranks && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%u", i ? ", " : "", p->allowed_ranks[i]);
}

static int check_modules(struct run *r)
{
    size_t bad_rank = 0, bad_target = 0;
    const struct adapter_module *fr = NULL, *ft = NULL;
    char allowed[96];
    int rc;

    if (r->ad == NULL)
        return 0;
    for (size_t i = 0; i < adapter_module_count(r->ad); i++) {
        const struct adapter_module *m = adapter_module_at(r->ad, i);
        if (r->p->has_allowed_ranks && !rank_allowed(r->p, m->r) && bad_rank++ == 0)
            fr = m;
        if (r->p->has_allowed_targets && !target_allowed(r->p, m->name) && bad_target++ == 0)
            ft = m;
    }
    list_ranks(r->p, allowed, sizeof(allowed));
    if (fr != NULL && (rc = add(r, GATE_R_RANK, "%zu of %zu modules have a rank not allowed, first "
                                "\"%.80s\" r=%u; allowed: %s", bad_rank, adapter_module_count(r->ad),
                                fr->name, fr->r, allowed)) != 0)
        return rc;
    if (ft != NULL)
        return add(r, GATE_R_TARGETS, "%zu of %zu modules are not allowed targets, first \"%.100s\"",
                   bad_target, adapter_module_count(r->ad), ft->name);
    return 0;
}

/* ---- values: finiteness and norms ------------------------------------ */

/* ||T||_F of tensor ti, or NAN if it holds a non-finite value (*bad counts
 * them). Every SCAN_RELEASE bytes read leave the resident set, so the gate
 * scans an adapter of any size in a few MiB of page mappings. */
static double scan_tensor(const struct safetensors *st, size_t ti, uint64_t *bad,
                          uint64_t *first_bad)
{
    const struct safetensors_tensor *t = safetensors_at(st, ti);
    size_t esize = safetensors_dtype_size(t->dtype);
    double buf[SCAN_CHUNK], sum = 0;
    uint64_t nonfinite = 0, released = 0;

    for (uint64_t i = 0; i < t->nelem; i += SCAN_CHUNK) {
        size_t n = (size_t)(t->nelem - i < SCAN_CHUNK ? t->nelem - i : SCAN_CHUNK);
        safetensors_tensor_range_f64(t, i, buf, n);
        if ((i + n) * esize - released >= SCAN_RELEASE || i + n == t->nelem) {
            safetensors_release(st, ti, released, (i + n) * esize - released);
            released = (i + n) * esize;
        }
        for (size_t k = 0; k < n; k++) {
            if (!isfinite(buf[k])) {
                if (nonfinite++ == 0)
                    *first_bad = i + k;
            } else {
                sum += buf[k] * buf[k];
            }
        }
    }
    *bad = nonfinite;
    return nonfinite ? NAN : sqrt(sum);
}

static int check_finite(struct run *r)
{
    size_t n = safetensors_count(r->st), bad_tensors = 0;
    uint64_t bad_total = 0;
    const char *first = NULL;
    uint64_t first_idx = 0;

    if ((r->norm = calloc(n + 1, sizeof(double))) == NULL)
        return FUSION_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        uint64_t bad = 0, idx = 0;
        r->norm[i] = scan_tensor(r->st, i, &bad, &idx);
        if (bad != 0 && bad_tensors++ == 0) {
            first = safetensors_at(r->st, i)->name;
            first_idx = idx;
        }
        bad_total += bad;
    }
    r->all_finite = bad_tensors == 0;
    if (r->all_finite || !r->p->check_finite)
        return 0;
    return add(r, GATE_R_NON_FINITE, "%llu NaN/inf values in %zu tensors, first \"%.100s\" "
               "element %llu", (unsigned long long)bad_total, bad_tensors, first,
               (unsigned long long)first_idx);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_sorted(const double *s, size_t n)
{
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

int gate_robust_z(const double *x, size_t n, double *z)
{
    double *s = malloc((n + 1) * sizeof(double)), med, mad, mean_ad = 0, scale;

    if (s == NULL)
        return FUSION_E_NOMEM;
    memcpy(s, x, n * sizeof(double));
    qsort(s, n, sizeof(double), cmp_double);
    med = n ? median_sorted(s, n) : 0;
    for (size_t i = 0; i < n; i++) {
        s[i] = fabs(x[i] - med);
        mean_ad += s[i] / (double)n;
    }
    qsort(s, n, sizeof(double), cmp_double);
    mad = n ? median_sorted(s, n) : 0;
    /* 0.6745 = Phi^-1(3/4): MAD/0.6745 estimates sd; 1.2533 = sqrt(pi/2) for MeanAD */
    scale = mad > 0 ? mad / 0.6745 : 1.2533 * mean_ad;
    if (scale < GATE_NORM_SCALE_FLOOR)
        scale = GATE_NORM_SCALE_FLOOR;
    for (size_t i = 0; i < n; i++)
        z[i] = (x[i] - med) / scale;
    free(s);
    return 0;
}

/* Group key of a LoRA tensor name: "<last module component>.lora_<A|B>", or
 * 0 if the tensor is not a LoRA factor. */
static int group_key(const char *name, char *out, size_t n)
{
    size_t len = strlen(name), sl = strlen(".lora_A.weight");
    const char *end, *start;

    if (len <= sl || strncmp(name + len - sl, ".lora_", 6) != 0 || strcmp(name + len - 7, ".weight") != 0)
        return 0;
    end = name + len - sl;
    for (start = end; start > name && start[-1] != '.'; start--)
        ;
    snprintf(out, n, "%.*s.lora_%c", (int)(end - start), start, name[len - 8]);
    return 1;
}

/* Score one group (tensors whose key equals `key`); fill worst/outliers. */
static int score_group(struct run *r, const char *key, size_t *outliers, const char **first,
                       double *first_z, double *first_norm)
{
    size_t n = safetensors_count(r->st), k = 0;
    double *x = malloc((n + 1) * sizeof(double)), *z = malloc((n + 1) * sizeof(double));
    size_t *idx = malloc((n + 1) * sizeof(size_t));
    char g[160];
    int rc = FUSION_E_NOMEM;

    if (x == NULL || z == NULL || idx == NULL)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (group_key(safetensors_at(r->st, i)->name, g, sizeof(g)) && strcmp(g, key) == 0 &&
            isfinite(r->norm[i])) {
            idx[k] = i;
            x[k++] = log(r->norm[i] > 1e-30 ? r->norm[i] : 1e-30);
        }
    rc = 0;
    if (k < GATE_NORM_MIN_GROUP || (rc = gate_robust_z(x, k, z)) != 0)
        goto out;
    for (size_t i = 0; i < k; i++) {
        if (fabs(z[i]) > r->v->max_abs_z) {
            r->v->max_abs_z = fabs(z[i]);
            snprintf(r->v->max_z_tensor, sizeof(r->v->max_z_tensor), "%s",
                     safetensors_at(r->st, idx[i])->name);
        }
        if (r->p->norm_z_threshold > 0 && fabs(z[i]) > r->p->norm_z_threshold && (*outliers)++ == 0) {
            *first = safetensors_at(r->st, idx[i])->name;
            *first_z = z[i];
            *first_norm = r->norm[idx[i]];
        }
    }
out:
    free(x);
    free(z);
    free(idx);
    return rc;
}

static int check_norms(struct run *r)
{
    size_t n = safetensors_count(r->st), outliers = 0;
    const char *first = NULL;
    double fz = 0, fnorm = 0;
    char key[160], prev[160];
    int rc;

    for (size_t i = 0; i < n; i++) {
        if (!group_key(safetensors_at(r->st, i)->name, key, sizeof(key)))
            continue;
        bool seen = false;  /* score each group once: at its first member */
        for (size_t j = 0; j < i && !seen; j++)
            seen = group_key(safetensors_at(r->st, j)->name, prev, sizeof(prev)) && strcmp(prev, key) == 0;
        if (!seen && (rc = score_group(r, key, &outliers, &first, &fz, &fnorm)) != 0)
            return rc;
    }
    if (outliers == 0)
        return 0;
    return add(r, GATE_R_NORM_OUTLIER, "%zu tensors with |z| > %g, first \"%.100s\": ||T||_F = %.6g, "
               "z = %.2f (robust z of ln-norm within its group)", outliers, r->p->norm_z_threshold,
               first, fnorm, fz);
}

/* ---- manifest -------------------------------------------------------- */

static int check_manifest_fields(struct run *r)
{
    const struct manifest *m = r->man;
    const struct peft_config *c = r->cfg;

    if (m->artifacts.size_bytes != r->v->size_bytes)
        return add(r, GATE_R_MANIFEST_MISMATCH, "plora.yml artifacts.size_bytes %llu, file has %llu",
                   m->artifacts.size_bytes, (unsigned long long)r->v->size_bytes);
    if (c == NULL)
        return 0;
    if ((unsigned long long)m->lora.r != c->r || (double)m->lora.alpha != c->lora_alpha)
        return add(r, GATE_R_MANIFEST_MISMATCH, "plora.yml lora r=%lld alpha=%lld, adapter has "
                   "r=%u lora_alpha=%g", m->lora.r, m->lora.alpha, c->r, c->lora_alpha);
    if (c->base_model == NULL || strcmp(m->base_model, c->base_model) != 0)
        return add(r, GATE_R_MANIFEST_MISMATCH, "plora.yml base_model \"%.80s\", adapter_config.json "
                   "\"%.80s\"", m->base_model, c->base_model ? c->base_model : "(none)");
    if (c->target_regex != NULL)  /* a regex cannot be compared with a list */
        return 0;
    if (m->lora.n_target_modules != c->n_target_modules)
        return add(r, GATE_R_MANIFEST_MISMATCH, "plora.yml lists %zu target_modules, "
                   "adapter_config.json %zu", m->lora.n_target_modules, c->n_target_modules);
    for (size_t i = 0; i < m->lora.n_target_modules; i++) {
        bool found = false;
        for (size_t k = 0; k < c->n_target_modules && !found; k++)
            found = strcmp(m->lora.target_modules[i], c->target_modules[k]) == 0;
        if (!found)
            return add(r, GATE_R_MANIFEST_MISMATCH, "plora.yml target module \"%.60s\" is not in "
                       "adapter_config.json's target_modules", m->lora.target_modules[i]);
    }
    return 0;
}

static int check_manifest(struct run *r)
{
    struct fusion_diag d = { 0 };
    int rc;

    if (access(r->manifest_path, F_OK) != 0)
        return r->p->require_manifest ?
               add(r, GATE_R_MANIFEST_MISSING, "%s: no such file (policy requires a manifest)",
                   MANIFEST_FILENAME) : 0;
    if (manifest_load(r->manifest_path, &r->man, &d) != 0)
        return add(r, GATE_R_MANIFEST_INVALID, "%s: %s", MANIFEST_FILENAME, d.msg);
    if (!r->have_weights)
        return 0;
    if (strcmp(r->man->artifacts.sha256, r->v->sha256) != 0 &&
        (rc = add(r, GATE_R_SHA256, "plora.yml artifacts.sha256 %.64s, file has %.64s",
                  r->man->artifacts.sha256, r->v->sha256)) != 0)
        return rc;
    return check_manifest_fields(r);
}

/* ---- signatures and quorum ------------------------------------------- */

/* Votes read from the manifest: the prototype signature, plorad's. */
static int manifest_votes(struct run *r, struct vote ***out, size_t *n)
{
    const struct manifest *m = r->man;
    struct crypto_diag cd = { 0 };
    char cfg_hex[SHA256_HEX_LEN + 1] = "";
    uint8_t dig[SHA256_LEN], *sig = NULL;
    size_t len;

    *n = 0;
    if (m == NULL)
        return 0;
    if ((*out = calloc(m->plorad.n_sigs + 2, sizeof(**out))) == NULL)
        return FUSION_E_NOMEM;
    if (m->signer.signature_b64[0] != '\0' &&
        b64_decode(m->signer.signature_b64, strlen(m->signer.signature_b64), &sig, &len, &cd) == 0) {
        if (vote_proto_new(&(*out)[*n], VOTE_FORM_PROTO_ANY, r->v->sha256, sig, len, &cd) == 0)
            (*n)++;
        free(sig);
    }
    if (m->plorad.n_sigs == 0 || sha256_file(r->config_path, dig, NULL, &cd) != 0)
        return 0;
    sha256_hex(dig, cfg_hex);
    for (size_t i = 0; i < m->plorad.n_sigs; i++) {
        struct sig_adapter a = { r->v->sha256, cfg_hex, m->domain,
                                 r->cfg && r->cfg->base_model ? r->cfg->base_model : m->base_model };
        if (b64_decode(m->plorad.sigs[i].sig_b64, strlen(m->plorad.sigs[i].sig_b64), &sig, &len, &cd) != 0)
            continue;  /* undecodable: simply not a vote */
        if (vote_publisher_new(&(*out)[*n], &a, m->plorad.sigs[i].key_id, sig, len, &cd) == 0)
            (*n)++;
        free(sig);
    }
    return 0;
}

static void describe_quorum(const struct quorum_result *q, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "%zu of %u distinct trusted keys accept", q->accepts, q->quorum);

    for (size_t i = 0; i < q->n_ignored && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s vote %zu %s", i ? "," : "; ignored:",
                                 q->ignored[i].vote, quorum_why_name(q->ignored[i].why));
}

static int check_quorum(struct run *r)
{
    struct vote **own = NULL, **all = NULL;
    size_t n_own = 0;
    struct keyring *empty = NULL;
    struct quorum_result *q = NULL;
    struct crypto_diag cd = { 0 };
    struct quorum_policy qp = { r->p->quorum, r->env->now, r->p->max_vote_age_s, 300 };
    char why[256];
    int rc = FUSION_E_NOMEM;

    if (!r->p->signatures_required || !r->have_weights)
        return 0;
    r->v->quorum_checked = true;
    r->v->quorum_required = r->p->quorum;
    if (manifest_votes(r, &own, &n_own) != 0 ||
        (all = calloc(n_own + r->env->n_votes + 1, sizeof(*all))) == NULL ||
        (r->env->keyring == NULL && keyring_new(&empty) != 0))
        goto out;
    for (size_t i = 0; i < n_own; i++)
        all[i] = own[i];
    for (size_t i = 0; i < r->env->n_votes; i++)
        all[n_own + i] = r->env->votes[i];
    if (quorum_count(r->env->keyring ? r->env->keyring : empty, r->v->sha256, all,
                     n_own + r->env->n_votes, &qp, &q, &cd) != 0) {
        rc = add(r, GATE_R_QUORUM, "quorum could not be counted: %s", cd.msg);
        goto out;
    }
    r->v->quorum_accepts = q->accepts;
    describe_quorum(q, why, sizeof(why));
    rc = q->reached ? 0 : add(r, GATE_R_QUORUM, "%s", why);
out:
    quorum_result_free(q);
    keyring_free(empty);
    vote_free_array(own, n_own);
    free(all);
    return rc;
}

/* ---- probe ----------------------------------------------------------- */

static int check_probe(struct run *r)
{
    struct gate_probe_result pr = { 0 };
    const struct policy_probe *p = &r->p->probe;

    if (!r->p->has_probe)
        return 0;
    if (r->ad == NULL || !r->all_finite)
        return add(r, GATE_R_PROBE, "probe not run: the adapter did not load cleanly");
    if (r->env->probe == NULL)
        return add(r, GATE_R_PROBE, "probe not run: no probe runner in this context");
    r->env->probe(r->env->probe_ctx, p, r->dir, &pr);
    if (!pr.ran)
        return add(r, GATE_R_PROBE, "probe %.60s could not run: %.120s", p->argv[0], pr.error);
    if (pr.timed_out)
        return add(r, GATE_R_PROBE, "probe %.60s timed out after %u ms", p->argv[0], p->timeout_ms);
    for (size_t i = 0; i < p->n_accept; i++)
        if (pr.exit_code == p->accept[i])
            return 0;
    return add(r, GATE_R_PROBE, "probe %.60s exited with %d (not an accepted exit code)",
               p->argv[0], pr.exit_code);
}

/* ---- driver ---------------------------------------------------------- */

static int run_checks(struct run *r)
{
    int rc;

    if ((rc = check_artifact(r)) != 0)
        return rc;
    if (r->content_ok && (rc = check_structure(r)) != 0)
        return rc;
    if ((rc = check_manifest(r)) != 0)   /* before base_model: it reads plora.yml too */
        return rc;
    if ((rc = check_base_model(r)) != 0 || (rc = check_modules(r)) != 0)
        return rc;
    if (r->st != NULL && ((rc = check_finite(r)) != 0 || (rc = check_norms(r)) != 0))
        return rc;
    if ((rc = check_quorum(r)) != 0 || (rc = check_probe(r)) != 0)
        return rc;
    return 0;
}

static int cmp_reason(const void *a, const void *b)
{
    return (int)((const struct gate_reason *)a)->id - (int)((const struct gate_reason *)b)->id;
}

int gate_run(const struct policy *p, const char *dir, const struct gate_env *env,
             struct gate_verdict **out, struct fusion_diag *d)
{
    struct run r = { .p = p, .dir = dir, .env = env };
    struct stat sb;
    int rc = FUSION_E_NOMEM;

    *out = NULL;
    if (p == NULL || dir == NULL || env == NULL)
        return fusion_fail(d, FUSION_E_ARG, 0, "gate_run: NULL policy, directory or environment");
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return fusion_fail(d, FUSION_E_IO, 0, "%s: not a readable directory", dir);
    if ((r.v = calloc(1, sizeof(*r.v))) == NULL ||
        (r.weights_path = join(dir, ADAPTER_WEIGHTS_NAME)) == NULL ||
        (r.config_path = join(dir, PEFT_CONFIG_NAME)) == NULL ||
        (r.manifest_path = join(dir, MANIFEST_FILENAME)) == NULL ||
        (rc = run_checks(&r)) != 0) {
        fusion_fail(d, rc, 0, "gate: out of memory");
        gate_verdict_free(r.v);
        r.v = NULL;
        goto out;
    }
    if (r.v->n_reasons > 1)  /* into gate.h's order */
        qsort(r.v->reasons, r.v->n_reasons, sizeof(*r.v->reasons), cmp_reason);
    r.v->accept = r.v->n_reasons == 0;
    *out = r.v;
    rc = 0;
out:
    free(r.weights_path);
    free(r.config_path);
    free(r.manifest_path);
    free(r.norm);
    adapter_free(r.ad);
    safetensors_free(r.st);
    peft_config_free(r.cfg);
    manifest_free(r.man);
    return rc;
}

void gate_verdict_free(struct gate_verdict *v)
{
    if (v == NULL)
        return;
    free(v->reasons);
    free(v);
}
