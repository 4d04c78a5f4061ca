/* daemon/cmd_merge.c: `plora merge ADAPTER_DIR... [--weights w1,..|--fisher]
 * [--tau T|--tau-rel X] [--module-cap T] [--rank K] [--kld-budget E] --out DIR [--json]`.
 *
 * Parses the options; the merge itself (load inputs and plora.yml, check
 * base model and fan_in_fan_out, weights, fusion/merge.h, write DIR and
 * DIR/certificate.json) is daemon/merge_job.h, shared with plorad.
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

#include "cli.h"
#include "merge_job.h"

#define MAX_INPUTS ((int)MERGE_JOB_MAX_INPUTS)

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

struct job {
    const char *dirs[MAX_INPUTS];
    size_t n;
    double weights[MAX_INPUTS];
    size_t n_weights;
    bool fisher, json;
    const char *out;
    struct merge_opts o;
};

static void print_human(const struct merge_summary *s, const char *out)
{
    printf("merged %zu adapters, %zu modules -> %s (rank %zu)\n", s->n_inputs, s->n_modules, out, s->rank_out);
    printf("G = %.9g  tau = %.9g  scale = %.9g  frob_out = %.9g  dropped_energy = %.9g\n",
           s->frob_merged, s->tau, s->scale, s->frob_out, s->dropped_energy);
    if (!isnan(s->kld_local))
        printf("kld bound (sum|w|sqrt eps)^2 = %.6g%s\n", s->kld_local,
               s->kld_scaled ? " (weights scaled down to meet --kld-budget)" : "");
}

static int run(struct job *j)
{
    struct merge_job_spec spec = { .dirs = j->dirs, .n = j->n,
                                   .weights = j->n_weights > 0 ? j->weights : NULL,
                                   .n_weights = j->n_weights, .fisher = j->fisher, .opts = j->o,
                                   .out_dir = j->out, .refuse_input_out = true };
    struct merge_job_result r;
    struct dmn_diag d = { 0 };
    int rc;

    if (merge_job_run(&spec, &r, &d) != 0)
        return cli_usage_error("merge", "%s", d.msg);
    if (j->json)
        rc = cli_print_json(json_incref(r.cert)) == 0 ? CLI_OK : CLI_USAGE;
    else {
        print_human(&r.summary, j->out);
        rc = CLI_OK;
    }
    merge_job_result_clear(&r);
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
        j->dirs[j->n++] = argv[i];
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
    free(j);
    return rc;
}
