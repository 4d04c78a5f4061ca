/* daemon/cmd_merge.c: `plora merge ADAPTER_DIR... [--weights w1,..|--fisher]
 * [--tau T|--tau-rel X] [--module-cap T] [--rank K] [--kld-budget E] --out DIR [--json]`.
 *
 * Loads each input through fusion/adapter.h (and its plora.yml, if present,
 * for plorad.kld_eps and plorad.fisher), checks the inputs agree on base
 * model and fan_in_fan_out, runs the factored merge (fusion/merge.h), writes
 * DIR/adapter_model.safetensors + adapter_config.json (fusion/merge_out.h)
 * and DIR/certificate.json (fusion/certificate.h).
 *
 * Weights: --weights as given (any sign, PEFT's "linear" convention, no
 * normalisation); --fisher: w_k = F_k / sum F (every input needs
 * plorad.fisher); default: uniform 1/N (an average, so one input at
 * default weight gives itself back). Pass-through tensors (modules_to_save
 * heads) come from the first input that has any: heads of different tasks
 * cannot be merged, and the certificate records which input they are from.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter.h"
#include "certificate.h"
#include "cli.h"
#include "manifest.h"
#include "merge.h"
#include "merge_out.h"
#include "sha256.h"

#define MAX_INPUTS 256

static const char usage_text[] =
    "usage: plora merge ADAPTER_DIR... [--weights w1,w2,..|--fisher] [--tau T|--tau-rel X]\n"
    "                   [--module-cap T] [--rank K] [--kld-budget E] --out DIR [--json]\n"
    "  Merge PEFT LoRA adapters without forming any dense delta: dW = sum_i w_i s_i B_i A_i\n"
    "  per module, G = sqrt(sum ||dW||_F^2), scale c = min(1, tau/G) (--tau-rel X: tau = X*G;\n"
    "  --module-cap: also ||c dW_m||_F <= T per module), --rank K: best rank-K re-projection\n"
    "  (dropped energy in the certificate). Weights: --weights as given (any sign), --fisher\n"
    "  (plorad.fisher of each plora.yml, normalised to sum 1), default uniform 1/N.\n"
    "  --kld-budget E: weights scaled down so (sum |w_k| sqrt(kld_eps_k))^2 <= E.\n"
    "  Writes DIR/adapter_model.safetensors, DIR/adapter_config.json (r = lora_alpha = K)\n"
    "  and DIR/certificate.json; --json prints the certificate.\n"
    "  Exit 0 merged, 2 usage or input error (the message names the file and field).\n";

struct in_adapter {
    const char *dir;
    struct adapter *ad;
    struct merge_factor *f;
    size_t nf;
    double kld_eps, fisher;
    struct certificate_input cert;
};

struct job {
    struct in_adapter in[MAX_INPUTS];
    size_t n;
    double weights[MAX_INPUTS];
    size_t n_weights;
    bool fisher, json;
    const char *out;
    struct merge_opts o;
};

static bool hash_file(const char *dir, const char *name, char hex[65], uint64_t *size)
{
    char path[4096];
    uint8_t dg[SHA256_LEN];
    struct crypto_diag cd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (sha256_file(path, dg, size, &cd) != 0) {
        cli_err("merge", "%s: %s", path, cd.msg);
        return false;
    }
    sha256_hex(dg, hex);
    return true;
}

/* plorad.kld_eps / plorad.fisher from DIR/plora.yml when the file exists. */
static int load_manifest(struct in_adapter *ia)
{
    char path[4096];
    struct manifest *mf = NULL;
    struct fusion_diag d;

    ia->kld_eps = ia->fisher = NAN;
    snprintf(path, sizeof(path), "%s/%s", ia->dir, MANIFEST_FILENAME);
    if (access(path, F_OK) != 0)
        return 0;
    if (manifest_load(path, &mf, &d) != 0)
        return cli_usage_error("merge", "%s: %s (%s)", path, d.msg, fusion_err_name(d.code));
    if (mf->has_plorad && mf->plorad.has_kld_eps)
        ia->kld_eps = mf->plorad.kld_eps;
    if (mf->has_plorad && mf->plorad.has_fisher)
        ia->fisher = mf->plorad.fisher;
    manifest_free(mf);
    return 0;
}

static int load_input(struct in_adapter *ia)
{
    struct fusion_diag d;
    const struct peft_config *c;
    const uint8_t *bytes;
    uint8_t dg[SHA256_LEN];
    size_t len;

    if (adapter_open(&ia->ad, ia->dir, &d) != 0)
        return cli_usage_error("merge", "%s: %s (%s)", ia->dir, d.msg, fusion_err_name(d.code));
    if (merge_factors_from_adapter(ia->ad, &ia->f, &ia->nf, &d) != 0)
        return cli_usage_error("merge", "%s: %s", ia->dir, d.msg);
    if (load_manifest(ia) != 0)
        return CLI_USAGE;
    c = adapter_config(ia->ad);
    ia->cert = (struct certificate_input){ .path = ia->dir, .r = c->r, .alpha = c->lora_alpha,
        .scaling = c->use_rslora ? c->lora_alpha / sqrt((double)c->r) : c->lora_alpha / (double)c->r,
        .use_rslora = c->use_rslora, .kld_eps = ia->kld_eps, .fisher = ia->fisher };
    /* hash the mapped bytes the merge reads, not the file again */
    bytes = safetensors_bytes(adapter_safetensors(ia->ad), &len);
    if (sha256(bytes, len, dg) != 0)
        return cli_usage_error("merge", "%s/%s: cannot hash", ia->dir, ADAPTER_WEIGHTS_NAME);
    sha256_hex(dg, ia->cert.sha256);
    if (!hash_file(ia->dir, MERGE_OUT_CONFIG_NAME, ia->cert.config_sha256, NULL))
        return CLI_USAGE;
    return 0;
}

/* --out must not be one of the inputs (it would be overwritten in place). */
static int check_out_dir(const struct job *j)
{
    char *out = realpath(j->out, NULL), *in;
    int rc = 0;

    for (size_t k = 0; out != NULL && rc == 0 && k < j->n; k++) {
        if ((in = realpath(j->in[k].dir, NULL)) != NULL && strcmp(in, out) == 0)
            rc = cli_usage_error("merge", "--out %s is input adapter %zu: choose another directory",
                                 j->out, k + 1);
        free(in);
    }
    free(out);
    return rc;
}

/* Inputs must share the base model and the layout flag. */
static int check_compat(const struct job *j)
{
    const struct peft_config *c0 = adapter_config(j->in[0].ad);

    for (size_t k = 1; k < j->n; k++) {
        const struct peft_config *c = adapter_config(j->in[k].ad);
        const char *b0 = c0->base_model ? c0->base_model : "(none)", *b = c->base_model ? c->base_model : "(none)";
        if (strcmp(b0, b) != 0)
            return cli_usage_error("merge", "%s/adapter_config.json: base_model_name_or_path \"%s\" differs from "
                                   "\"%s\" in %s: refusing to merge adapters of different base models",
                                   j->in[k].dir, b, b0, j->in[0].dir);
        if (c->fan_in_fan_out != c0->fan_in_fan_out)
            return cli_usage_error("merge", "%s/adapter_config.json: fan_in_fan_out %s differs from %s in %s",
                                   j->in[k].dir, c->fan_in_fan_out ? "true" : "false",
                                   c0->fan_in_fan_out ? "true" : "false", j->in[0].dir);
    }
    return 0;
}

/* Weight of each input (as given, before the KLD budget); sets the mode. */
static int resolve_weights(struct job *j, const char **mode)
{
    double sum = 0.0;

    if (j->n_weights > 0 && j->n_weights != j->n)
        return cli_usage_error("merge", "--weights: %zu values for %zu adapters", j->n_weights, j->n);
    *mode = j->n_weights > 0 ? "given" : (j->fisher ? "fisher" : "uniform");
    for (size_t k = 0; k < j->n; k++) {
        double f = j->in[k].fisher;
        if (j->fisher && !(f > 0.0 && isfinite(f)))
            return cli_usage_error("merge", "--fisher: %s/%s has no plorad.fisher value", j->in[k].dir,
                                   MANIFEST_FILENAME);
        sum += j->fisher ? f : 0.0;
    }
    for (size_t k = 0; k < j->n; k++)
        j->in[k].cert.weight_given = j->n_weights > 0 ? j->weights[k]
                                   : j->fisher ? j->in[k].fisher / sum : 1.0 / (double)j->n;
    return 0;
}

static long passthrough_index(const struct job *j)
{
    for (size_t k = 0; k < j->n; k++)
        if (adapter_other_count(j->in[k].ad) > 0)
            return (long)k;
    return -1;
}

static void print_human(const struct merge *m, const char *out)
{
    const struct merge_summary *s = merge_summary(m);

    printf("merged %zu adapters, %zu modules -> %s (rank %zu)\n", s->n_inputs, s->n_modules, out, s->rank_out);
    printf("G = %.9g  tau = %.9g  scale = %.9g  frob_out = %.9g  dropped_energy = %.9g\n",
           s->frob_merged, s->tau, s->scale, s->frob_out, s->dropped_energy);
    if (!isnan(s->kld_local))
        printf("kld bound (sum|w|sqrt eps)^2 = %.6g%s\n", s->kld_local,
               s->kld_scaled ? " (weights scaled down to meet --kld-budget)" : "");
}

/* Output files and certificate; the merge has run. */
static int write_outputs(struct job *j, struct merge *m, const char *mode)
{
    const struct peft_config *c0 = adapter_config(j->in[0].ad);
    long pt = passthrough_index(j);
    struct merge_out_spec spec = { .base_model = c0->base_model, .task_type = c0->task_type,
                                   .fan_in_fan_out = c0->fan_in_fan_out,
                                   .passthrough = pt >= 0 ? j->in[pt].ad : NULL };
    struct certificate_output co = { .path = j->out };
    struct certificate_input ci[MAX_INPUTS];
    struct fusion_diag d;
    json_t *cert;
    char *txt, path[4096];
    int rc;

    if (merge_out_write(m, j->out, &spec, &d) != 0)
        return cli_usage_error("merge", "%s: %s (%s)", j->out, d.msg, fusion_err_name(d.code));
    if (!hash_file(j->out, ADAPTER_WEIGHTS_NAME, co.sha256, &co.bytes) ||
        !hash_file(j->out, MERGE_OUT_CONFIG_NAME, co.config_sha256, NULL))
        return CLI_USAGE;
    for (size_t k = 0; k < j->n; k++)
        ci[k] = j->in[k].cert;
    cert = certificate_build(m, &j->o, mode, ci, j->n, pt, &co);
    txt = cert ? json_dumps(cert, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL;
    snprintf(path, sizeof(path), "%s/%s", j->out, CERTIFICATE_NAME);
    if (txt == NULL)
        rc = cli_usage_error("merge", "%s: cannot build the certificate (out of memory)", path);
    else if (merge_out_write_file(path, txt, strlen(txt), &d) != 0)
        rc = cli_usage_error("merge", "%s", d.msg);
    else if (j->json)
        rc = cli_print_json(json_incref(cert)) == 0 ? CLI_OK : CLI_USAGE;
    else {
        print_human(m, j->out);
        rc = CLI_OK;
    }
    free(txt);
    json_decref(cert);
    return rc;
}

static int run(struct job *j)
{
    struct merge_input mi[MAX_INPUTS];
    struct merge *m = NULL;
    struct fusion_diag d;
    const char *mode = "uniform";
    int rc = 0;

    for (size_t k = 0; k < j->n && rc == 0; k++)
        rc = load_input(&j->in[k]);
    if (rc != 0 || (rc = check_out_dir(j)) != 0 || (rc = check_compat(j)) != 0 ||
        (rc = resolve_weights(j, &mode)) != 0)
        return rc;
    for (size_t k = 0; k < j->n; k++)
        mi[k] = (struct merge_input){ j->in[k].f, j->in[k].nf, j->in[k].cert.weight_given, j->in[k].kld_eps };
    if (merge_prepare(&m, mi, j->n, &j->o, &d) != 0)
        return cli_usage_error("merge", "%s (%s)", d.msg, fusion_err_name(d.code));
    rc = write_outputs(j, m, mode);
    merge_free(m);
    return rc;
}

static bool parse_weights(struct job *j, const char *s)
{
    char *copy = strdup(s), *save = NULL, *tok;
    bool ok = copy != NULL;

    for (tok = ok ? strtok_r(copy, ",", &save) : NULL; ok && tok; tok = strtok_r(NULL, ",", &save)) {
        char *end = NULL;
        double v = j->n_weights < MAX_INPUTS ? strtod(tok, &end) : NAN;
        if (end == tok || (end != NULL && *end != '\0') || !isfinite(v))
            ok = false;
        else
            j->weights[j->n_weights++] = v;
    }
    if (ok && j->n_weights == 0)
        ok = false;
    if (!ok)
        cli_usage_error("merge", "--weights: \"%s\" is not a comma-separated list of finite numbers", s);
    free(copy);
    return ok;
}

static int parse_args(struct job *j, int argc, char **argv)
{
    static const struct option opts[] = {
        { "weights", required_argument, NULL, 'w' }, { "fisher", no_argument, NULL, 'f' },
        { "tau", required_argument, NULL, 't' }, { "tau-rel", required_argument, NULL, 'x' },
        { "module-cap", required_argument, NULL, 'c' }, { "rank", required_argument, NULL, 'r' },
        { "kld-budget", required_argument, NULL, 'k' }, { "out", required_argument, NULL, 'o' },
        { "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    long rank;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        double *num = NULL;
        const char *name = NULL;
        switch (c) {
        case 'w':
            if (!parse_weights(j, optarg))
                return CLI_USAGE;
            break;
        case 'f': j->fisher = true; break;
        case 't': num = &j->o.tau; name = "--tau"; break;
        case 'x': num = &j->o.tau_rel; name = "--tau-rel"; break;
        case 'c': num = &j->o.module_cap; name = "--module-cap"; break;
        case 'k': num = &j->o.kld_budget; name = "--kld-budget"; break;
        case 'r':
            if (!cli_parse_long("merge", "--rank", optarg, 1, 65536, &rank))
                return CLI_USAGE;
            j->o.rank = (size_t)rank;
            break;
        case 'o': j->out = optarg; break;
        case 'j': j->json = true; break;
        case 'h': fputs(usage_text, stdout); return -1;
        default: return cli_usage_error("merge", "unknown option (see plora merge --help)");
        }
        if (num != NULL && !cli_parse_double("merge", name, optarg, num))
            return CLI_USAGE;
        if (num != NULL && !(*num > 0.0 && isfinite(*num)))
            return cli_usage_error("merge", "%s: \"%s\" must be a finite number > 0", name, optarg);
    }
    if (j->n_weights > 0 && j->fisher)
        return cli_usage_error("merge", "--weights and --fisher exclude each other");
    if (j->o.tau > 0 && j->o.tau_rel > 0)
        return cli_usage_error("merge", "--tau and --tau-rel exclude each other");
    if (j->out == NULL)
        return cli_usage_error("merge", "--out DIR is required (see plora merge --help)");
    if (optind >= argc || argc - optind > MAX_INPUTS)
        return cli_usage_error("merge", "want 1..%d ADAPTER_DIR arguments", MAX_INPUTS);
    for (int i = optind; i < argc; i++)
        j->in[j->n++].dir = argv[i];
    return 0;
}

int cmd_merge(int argc, char **argv)
{
    struct job *j = calloc(1, sizeof(*j));
    int rc;

    if (j == NULL)
        return cli_usage_error("merge", "out of memory");
    optind = 1;
    rc = parse_args(j, argc, argv);
    if (rc == 0)
        rc = run(j);
    else if (rc < 0)
        rc = CLI_OK;
    for (size_t k = 0; k < j->n; k++) {
        free(j->in[k].f);
        adapter_free(j->in[k].ad);
    }
    free(j);
    return rc;
}
