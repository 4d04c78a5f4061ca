/* daemon/cmd_inspect.c: `plora inspect ADAPTER_DIR [--json]`.
 *
 * Loads the adapter through fusion/adapter.h (so everything inspect shows
 * has passed the safetensors and config checks) and prints per module r,
 * alpha, scaling, shape and ||s B A||_F (double precision, from r x r Grams).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "cli.h"
#include "sha256.h"

static const char usage_text[] =
    "usage: plora inspect ADAPTER_DIR [--json]\n"
    "  Show a PEFT LoRA adapter: sha256 of adapter_model.safetensors, config (r,\n"
    "  lora_alpha, use_rslora, target_modules, fan_in_fan_out), per module r,\n"
    "  alpha, scaling, [out, in], dtype and ||s*B*A||_F, and the pass-through tensors.\n"
    "  Exit 0 ok, 2 unreadable or malformed adapter (the message names the file).\n";

static json_t *targets_json(const struct peft_config *c)
{
    json_t *a;

    if (c->target_regex != NULL)
        return json_string(c->target_regex);
    a = json_array();
    for (size_t i = 0; i < c->n_target_modules; i++)
        json_array_append_new(a, json_string(c->target_modules[i]));
    return a;
}

static json_t *module_json(const struct adapter_module *m, double frob)
{
    return json_pack("{s:s, s:I, s:f, s:f, s:[I,I], s:s, s:f}",
                     "name", m->name, "r", (json_int_t)m->r, "alpha", m->alpha,
                     "scaling", m->scaling, "shape_out_in", (json_int_t)m->out,
                     (json_int_t)m->in, "dtype", safetensors_dtype_name(m->dtype),
                     "frob", frob);
}

/* The whole report as JSON (DESIGN.md's shape); NULL on no memory. */
static json_t *report(const char *dir, const struct adapter *ad, const char *hex)
{
    const struct peft_config *c = adapter_config(ad);
    json_t *mods = json_array(), *other = json_array(), *o;
    double frob;

    for (size_t i = 0; i < adapter_module_count(ad); i++) {
        const struct adapter_module *m = adapter_module_at(ad, i);
        if (adapter_module_frob(m, &frob) != 0) {  /* out of memory */
            json_decref(mods);
            json_decref(other);
            return NULL;
        }
        json_array_append_new(mods, module_json(m, frob));
    }
    for (size_t i = 0; i < adapter_other_count(ad); i++)
        json_array_append_new(other, json_string(adapter_other_at(ad, i)->name));
    o = json_pack("{s:s, s:s, s:{s:I, s:f, s:b, s:o, s:b}, s:o, s:o}",
                  "path", dir, "sha256", hex,
                  "peft", "r", (json_int_t)c->r, "lora_alpha", c->lora_alpha,
                  "use_rslora", c->use_rslora, "target_modules", targets_json(c),
                  "fan_in_fan_out", c->fan_in_fan_out,
                  "modules", mods, "other_tensors", other);
    return o;
}

static void print_text(json_t *o)
{
    json_t *peft = json_object_get(o, "peft"), *m, *t;
    size_t i;
    char *tm = json_dumps(json_object_get(peft, "target_modules"), JSON_COMPACT);

    printf("adapter  %s\nsha256   %s\n", json_string_value(json_object_get(o, "path")),
           json_string_value(json_object_get(o, "sha256")));
    printf("peft     r=%lld lora_alpha=%g use_rslora=%s fan_in_fan_out=%s target_modules=%s\n",
           (long long)json_integer_value(json_object_get(peft, "r")),
           json_real_value(json_object_get(peft, "lora_alpha")),
           json_is_true(json_object_get(peft, "use_rslora")) ? "true" : "false",
           json_is_true(json_object_get(peft, "fan_in_fan_out")) ? "true" : "false", tm ? tm : "?");
    free(tm);
    printf("modules  %zu\n", json_array_size(json_object_get(o, "modules")));
    json_array_foreach(json_object_get(o, "modules"), i, m) {
        json_t *sh = json_object_get(m, "shape_out_in");
        printf("  %-48s r=%-3lld alpha=%-6g scaling=%-8g [%lld, %lld] %-4s |dW|_F=%.9g\n",
               json_string_value(json_object_get(m, "name")),
               (long long)json_integer_value(json_object_get(m, "r")),
               json_real_value(json_object_get(m, "alpha")),
               json_real_value(json_object_get(m, "scaling")),
               (long long)json_integer_value(json_array_get(sh, 0)),
               (long long)json_integer_value(json_array_get(sh, 1)),
               json_string_value(json_object_get(m, "dtype")),
               json_real_value(json_object_get(m, "frob")));
    }
    printf("other tensors (passed through)  %zu\n", json_array_size(json_object_get(o, "other_tensors")));
    json_array_foreach(json_object_get(o, "other_tensors"), i, t)
        printf("  %s\n", json_string_value(t));
}

static int run(const char *dir, bool as_json)
{
    struct fusion_diag d = { 0 };
    struct adapter *ad = NULL;
    uint8_t dig[SHA256_LEN];
    char hex[SHA256_HEX_LEN + 1];
    const uint8_t *bytes;
    size_t len;
    json_t *o;
    int rc;

    if (adapter_open(&ad, dir, &d) != 0)
        return cli_usage_error("inspect", "%s: %s (%s)", dir, d.msg, fusion_err_name(d.code));
    bytes = safetensors_bytes(adapter_safetensors(ad), &len);
    if (sha256(bytes, len, dig) != 0 || (o = report(dir, ad, "")) == NULL) {
        adapter_free(ad);
        return cli_usage_error("inspect", "%s: could not hash or report (out of memory?)", dir);
    }
    sha256_hex(dig, hex);
    json_object_set_new(o, "sha256", json_string(hex));
    adapter_free(ad);
    if (as_json) {
        rc = cli_print_json(o) == 0 ? CLI_OK : CLI_USAGE;
    } else {
        print_text(o);
        json_decref(o);
        rc = CLI_OK;
    }
    return rc;
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool as_json = false;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'j')
            as_json = true;
        else if (c == 'h') {
            fputs(usage_text, stdout);
            return CLI_OK;
        } else
            return cli_usage_error("inspect", "unknown option (see plora inspect --help)");
    }
    if (argc - optind != 1)
        return cli_usage_error("inspect", "want exactly one ADAPTER_DIR (see plora inspect --help)");
    return run(argv[optind], as_json);
}
