/* daemon/merge_job.c: one merge of adapter directories (see merge_job.h).
 * The flow and every message are those `plora merge` has always had; the
 * command now prints what this returns. */
#include "merge_job.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter.h"
#include "certificate.h"
#include "manifest.h"
#include "merge_out.h"
#include "sha256.h"

struct in_adapter {
    const char *dir;
    struct adapter *ad;
    struct merge_factor *f;
    size_t nf;
    double kld_eps, fisher;
    struct certificate_input cert;
};

struct run {
    const struct merge_job_spec *s;
    struct in_adapter *in;     /* s->n */
    struct merge_input *mi;    /* s->n */
    struct merge *m;
    struct dmn_diag *d;
};

/* A fusion code as the daemon's: I/O stays I/O, memory stays memory, the
 * rest is a bad input. */
static int dmn_code(int fusion_code)
{
    return fusion_code == FUSION_E_IO ? DMN_E_IO
         : fusion_code == FUSION_E_NOMEM ? DMN_E_NOMEM : DMN_E_ARG;
}

static int hash_file(const char *dir, const char *name, char hex[65], uint64_t *size,
                     struct dmn_diag *d)
{
    char path[4096];
    uint8_t dg[SHA256_LEN];
    struct crypto_diag cd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (sha256_file(path, dg, size, &cd) != 0)
        return dmn_fail(d, DMN_E_IO, "%s: %s", path, cd.msg);
    sha256_hex(dg, hex);
    return 0;
}

/* plorad.kld_eps / plorad.fisher from DIR/plora.yml when the file exists. */
static int load_manifest(struct in_adapter *ia, struct dmn_diag *d)
{
    char path[4096];
    struct manifest *mf = NULL;
    struct fusion_diag fd;

    ia->kld_eps = ia->fisher = NAN;
    snprintf(path, sizeof(path), "%s/%s", ia->dir, MANIFEST_FILENAME);
    if (access(path, F_OK) != 0)
        return 0;
    if (manifest_load(path, &mf, &fd) != 0)
        return dmn_fail(d, dmn_code(fd.code), "%s: %s (%s)", path, fd.msg, fusion_err_name(fd.code));
    if (mf->has_plorad && mf->plorad.has_kld_eps)
        ia->kld_eps = mf->plorad.kld_eps;
    if (mf->has_plorad && mf->plorad.has_fisher)
        ia->fisher = mf->plorad.fisher;
    manifest_free(mf);
    return 0;
}

static int load_input(struct in_adapter *ia, struct dmn_diag *d)
{
    struct fusion_diag fd;
    const struct peft_config *c;
    const uint8_t *bytes;
    uint8_t dg[SHA256_LEN];
    size_t len;
    int rc;

    if (adapter_open(&ia->ad, ia->dir, &fd) != 0)
        return dmn_fail(d, dmn_code(fd.code), "%s: %s (%s)", ia->dir, fd.msg, fusion_err_name(fd.code));
    if (merge_factors_from_adapter(ia->ad, &ia->f, &ia->nf, &fd) != 0)
        return dmn_fail(d, dmn_code(fd.code), "%s: %s", ia->dir, fd.msg);
    if ((rc = load_manifest(ia, d)) != 0)
        return rc;
    c = adapter_config(ia->ad);
    ia->cert = (struct certificate_input){ .path = ia->dir, .r = c->r, .alpha = c->lora_alpha,
        .scaling = c->use_rslora ? c->lora_alpha / sqrt((double)c->r) : c->lora_alpha / (double)c->r,
        .use_rslora = c->use_rslora, .kld_eps = ia->kld_eps, .fisher = ia->fisher };
    /* hash the mapped bytes the merge reads, not the file again */
    bytes = safetensors_bytes(adapter_safetensors(ia->ad), &len);
    if (sha256(bytes, len, dg) != 0)
        return dmn_fail(d, DMN_E_IO, "%s/%s: cannot hash", ia->dir, ADAPTER_WEIGHTS_NAME);
    sha256_hex(dg, ia->cert.sha256);
    return hash_file(ia->dir, MERGE_OUT_CONFIG_NAME, ia->cert.config_sha256, NULL, d);
}

/* The output must not be one of the inputs (it would be overwritten in place). */
static int check_out_dir(const struct run *j)
{
    char *out = realpath(j->s->out_dir, NULL), *in;
    int rc = 0;

    for (size_t k = 0; out != NULL && rc == 0 && k < j->s->n; k++) {
        if ((in = realpath(j->in[k].dir, NULL)) != NULL && strcmp(in, out) == 0)
            rc = dmn_fail(j->d, DMN_E_ARG, "--out %s is input adapter %zu: choose another directory",
                          j->s->out_dir, k + 1);
        free(in);
    }
    free(out);
    return rc;
}

/* Inputs must share the base model and the layout flag. */
static int check_compat(const struct run *j)
{
    const struct peft_config *c0 = adapter_config(j->in[0].ad);

    for (size_t k = 1; k < j->s->n; k++) {
        const struct peft_config *c = adapter_config(j->in[k].ad);
        const char *b0 = c0->base_model ? c0->base_model : "(none)", *b = c->base_model ? c->base_model : "(none)";
        if (strcmp(b0, b) != 0)
            return dmn_fail(j->d, DMN_E_ARG, "%s/adapter_config.json: base_model_name_or_path \"%s\" differs from "
                            "\"%s\" in %s: refusing to merge adapters of different base models",
                            j->in[k].dir, b, b0, j->in[0].dir);
        if (c->fan_in_fan_out != c0->fan_in_fan_out)
            return dmn_fail(j->d, DMN_E_ARG, "%s/adapter_config.json: fan_in_fan_out %s differs from %s in %s",
                            j->in[k].dir, c->fan_in_fan_out ? "true" : "false",
                            c0->fan_in_fan_out ? "true" : "false", j->in[0].dir);
    }
    return 0;
}

/* Weight of each input (as given, before the KLD budget); sets the mode. */
static int resolve_weights(struct run *j, struct merge_job_result *r)
{
    const struct merge_job_spec *s = j->s;
    bool fisher = s->weights == NULL && s->fisher;
    double sum = 0.0;

    if (s->weights != NULL && s->n_weights != s->n)
        return dmn_fail(j->d, DMN_E_ARG, "--weights: %zu values for %zu adapters", s->n_weights, s->n);
    r->weights_mode = s->weights != NULL ? "given" : (fisher ? "fisher" : "uniform");
    for (size_t k = 0; k < s->n; k++) {
        double f = j->in[k].fisher;
        if (fisher && !(f > 0.0 && isfinite(f)))
            return dmn_fail(j->d, DMN_E_ARG, "--fisher: %s/%s has no plorad.fisher value", j->in[k].dir,
                            MANIFEST_FILENAME);
        sum += fisher ? f : 0.0;
    }
    for (size_t k = 0; k < s->n; k++) {
        j->in[k].cert.weight_given = s->weights != NULL ? s->weights[k]
                                   : fisher ? j->in[k].fisher / sum : 1.0 / (double)s->n;
        r->weights_given[k] = j->in[k].cert.weight_given;
    }
    return 0;
}

static long passthrough_index(const struct run *j)
{
    for (size_t k = 0; k < j->s->n; k++)
        if (adapter_other_count(j->in[k].ad) > 0)
            return (long)k;
    return -1;
}

/* certificate.json: built with the output's final path, written, hashed. */
static int write_certificate(struct run *j, struct merge_job_result *r, long pt,
                             struct certificate_output *co)
{
    char *txt = NULL, path[4096], final[4096];
    struct certificate_input *ci = malloc(j->s->n * sizeof(*ci));
    struct fusion_diag fd;
    uint8_t dg[SHA256_LEN];
    int rc = 0;

    if (j->s->cert_out_parent != NULL) {
        snprintf(final, sizeof(final), "%s/%s", j->s->cert_out_parent, co->sha256);
        co->path = final;
    }
    for (size_t k = 0; ci != NULL && k < j->s->n; k++)
        ci[k] = j->in[k].cert;
    r->cert = ci ? certificate_build(j->m, &j->s->opts, r->weights_mode, ci, j->s->n, pt, co) : NULL;
    txt = r->cert ? json_dumps(r->cert, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL;
    snprintf(path, sizeof(path), "%s/%s", j->s->out_dir, CERTIFICATE_NAME);
    if (txt == NULL)
        rc = dmn_fail(j->d, DMN_E_NOMEM, "%s: cannot build the certificate (out of memory)", path);
    else if (merge_out_write_file(path, txt, strlen(txt), &fd) != 0)
        rc = dmn_fail(j->d, dmn_code(fd.code), "%s", fd.msg);
    else if (sha256(txt, strlen(txt), dg) != 0)
        rc = dmn_fail(j->d, DMN_E_IO, "%s: cannot hash", path);
    else
        sha256_hex(dg, r->certificate_sha256);
    free(txt);
    free(ci);
    return rc;
}

/* Output files and certificate; the merge is prepared. */
static int write_outputs(struct run *j, struct merge_job_result *r)
{
    const struct peft_config *c0 = adapter_config(j->in[0].ad);
    long pt = passthrough_index(j);
    struct merge_out_spec spec = { .base_model = c0->base_model, .task_type = c0->task_type,
                                   .fan_in_fan_out = c0->fan_in_fan_out,
                                   .passthrough = pt >= 0 ? j->in[pt].ad : NULL };
    struct certificate_output co = { .path = j->s->out_dir };
    struct fusion_diag fd;
    int rc;

    if (merge_out_write(j->m, j->s->out_dir, &spec, &fd) != 0)
        return dmn_fail(j->d, dmn_code(fd.code), "%s: %s (%s)", j->s->out_dir, fd.msg,
                        fusion_err_name(fd.code));
    if ((rc = hash_file(j->s->out_dir, ADAPTER_WEIGHTS_NAME, co.sha256, &co.bytes, j->d)) != 0 ||
        (rc = hash_file(j->s->out_dir, MERGE_OUT_CONFIG_NAME, co.config_sha256, NULL, j->d)) != 0)
        return rc;
    memcpy(r->output_sha256, co.sha256, sizeof(co.sha256));
    memcpy(r->config_sha256, co.config_sha256, sizeof(co.config_sha256));
    r->output_bytes = co.bytes;
    if ((rc = write_certificate(j, r, pt, &co)) == 0)
        r->summary = *merge_summary(j->m);
    return rc;
}

static int run_loaded(struct run *j, struct merge_job_result *r)
{
    const struct merge_job_spec *s = j->s;
    struct fusion_diag fd;
    int rc = 0;

    for (size_t k = 0; k < s->n && rc == 0; k++)
        rc = load_input(&j->in[k], j->d);
    if (rc != 0 || (s->refuse_input_out && (rc = check_out_dir(j)) != 0) ||
        (rc = check_compat(j)) != 0 || (rc = resolve_weights(j, r)) != 0)
        return rc;
    for (size_t k = 0; k < s->n; k++)
        j->mi[k] = (struct merge_input){ j->in[k].f, j->in[k].nf, j->in[k].cert.weight_given,
                                         j->in[k].kld_eps };
    if (merge_prepare(&j->m, j->mi, s->n, &s->opts, &fd) != 0)
        return dmn_fail(j->d, dmn_code(fd.code), "%s (%s)", fd.msg, fusion_err_name(fd.code));
    return write_outputs(j, r);
}

int merge_job_run(const struct merge_job_spec *s, struct merge_job_result *r,
                  struct dmn_diag *d)
{
    struct run j = { .s = s, .d = d };
    int rc;

    memset(r, 0, sizeof(*r));
    if (s->n == 0 || s->n > MERGE_JOB_MAX_INPUTS || s->out_dir == NULL)
        return dmn_fail(d, DMN_E_ARG, "want 1..%u ADAPTER_DIR arguments and an output directory",
                        MERGE_JOB_MAX_INPUTS);
    j.in = calloc(s->n, sizeof(*j.in));
    j.mi = calloc(s->n, sizeof(*j.mi));
    r->weights_given = calloc(s->n, sizeof(double));
    if (j.in == NULL || j.mi == NULL || r->weights_given == NULL) {
        rc = dmn_fail(d, DMN_E_NOMEM, "merge of %zu adapters: out of memory", s->n);
        goto out;
    }
    for (size_t k = 0; k < s->n; k++)
        j.in[k].dir = s->dirs[k];
    rc = run_loaded(&j, r);
out:
    merge_free(j.m);
    for (size_t k = 0; j.in != NULL && k < s->n; k++) {
        free(j.in[k].f);
        adapter_free(j.in[k].ad);
    }
    free(j.in);
    free(j.mi);
    if (rc != 0)
        merge_job_result_clear(r);
    return rc;
}

void merge_job_result_clear(struct merge_job_result *r)
{
    if (r == NULL)
        return;
    json_decref(r->cert);
    free(r->weights_given);
    memset(r, 0, sizeof(*r));
}
