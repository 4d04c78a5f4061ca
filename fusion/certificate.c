/* fusion/certificate.c: merge certificate build and replay check (see certificate.h). */
#include "certificate.h"

#include <math.h>
#include <string.h>

/* jansson refuses NaN and infinities; the certificate writes them as null. */
static json_t *num(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

static json_t *inputs_json(const struct merge *m, const struct certificate_input *in, size_t n)
{
    json_t *a = json_array();

    for (size_t k = 0; a != NULL && k < n; k++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:b, s:o, s:o, s:o, s:o}",
            "path", in[k].path, "sha256", in[k].sha256, "config_sha256", in[k].config_sha256,
            "r", (json_int_t)in[k].r, "alpha", num(in[k].alpha), "scaling", num(in[k].scaling),
            "use_rslora", in[k].use_rslora, "weight_given", num(in[k].weight_given),
            "weight", num(merge_weight(m, k)), "kld_eps", num(in[k].kld_eps),
            "fisher", num(in[k].fisher)));
    return a;
}

static json_t *modules_json(const struct merge *m)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < merge_module_count(m); i++) {
        const struct merge_module_info *mi = merge_module(m, i);
        json_array_append_new(a, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o}",
            "name", mi->name, "out", (json_int_t)mi->out, "in", (json_int_t)mi->in,
            "inputs", (json_int_t)mi->n_inputs, "r_cat", (json_int_t)mi->r_cat,
            "rank_kept", (json_int_t)mi->rank_kept, "frob", num(mi->frob), "scale", num(mi->scale),
            "frob_out", num(mi->frob_out), "dropped_energy", num(mi->dropped_energy),
            "sigma_max", num(mi->sigma_max)));
    }
    return a;
}

static json_t *kld_json(const struct merge_summary *s)
{
    return json_pack("{s:o, s:s, s:o, s:o, s:o, s:b, s:o}",
        "bound", num(s->kld_local),
        "bound_kind", "local: (sum_k |w_k| sqrt(eps_k))^2, Fisher-metric estimate valid for small eps",
        "cs_bound", num(s->kld_cs), "bound_given_weights", num(s->kld_local_given),
        "budget", s->kld_budget > 0.0 ? json_real(s->kld_budget) : json_null(),
        "scaled", s->kld_scaled, "weight_scale", num(s->kld_scale));
}

json_t *certificate_build(const struct merge *m, const struct merge_opts *o, const char *weights_mode,
                          const struct certificate_input *in, size_t n, long passthrough_from,
                          const struct certificate_output *out)
{
    const struct merge_summary *s = merge_summary(m);
    json_t *w = json_array();

    for (size_t k = 0; w != NULL && k < n; k++)
        json_array_append_new(w, num(merge_weight(m, k)));
    return json_pack("{s:s, s:o, s:s, s:o, s:{s:o, s:o, s:o, s:I, s:o}, s:o, s:o, s:o, s:o, s:o, s:I,"
                     " s:o, s:o, s:o, s:{s:s, s:s, s:s, s:I}, s:{s:f, s:f}}",
        "format", CERTIFICATE_FORMAT, "inputs", inputs_json(m, in, n), "weights_mode", weights_mode,
        "weights", w,
        "options", "tau", o->tau > 0 ? json_real(o->tau) : json_null(),
                   "tau_rel", o->tau_rel > 0 ? json_real(o->tau_rel) : json_null(),
                   "module_cap", o->module_cap > 0 ? json_real(o->module_cap) : json_null(),
                   "rank", (json_int_t)o->rank,
                   "kld_budget", o->kld_budget > 0 ? json_real(o->kld_budget) : json_null(),
        "frob_merged", num(s->frob_merged), "tau", num(s->tau), "scale", num(s->scale),
        "frob_out", num(s->frob_out), "dropped_energy", num(s->dropped_energy),
        "rank_out", (json_int_t)s->rank_out, "kld", kld_json(s), "modules", modules_json(m),
        "passthrough_from", passthrough_from >= 0 ? json_integer(passthrough_from) : json_null(),
        "output", "path", out->path, "sha256", out->sha256, "config_sha256", out->config_sha256,
                  "bytes", (json_int_t)out->bytes,
        "tolerances", "rel_norm", CERTIFICATE_REL_NORM, "abs_dropped_rel_g2", CERTIFICATE_ABS_DROPPED);
}

/* A number or null (-> NAN); anything else is malformed. */
static int get_num(const json_t *obj, const char *key, double *out, struct fusion_diag *d)
{
    const json_t *v = json_object_get(obj, key);

    if (v != NULL && json_is_null(v)) {
        *out = NAN;
        return 0;
    }
    if (v == NULL || !json_is_number(v))
        return fusion_fail(d, FUSION_E_CERT, 0, "certificate: \"%s\" missing or not a number", key);
    *out = json_number_value(v);
    return 0;
}

int certificate_replay_opts(const json_t *cert, struct merge_opts *o, double *weight_given,
                            double *kld_eps, size_t n_max, size_t *n, struct fusion_diag *d)
{
    const json_t *opt = json_object_get(cert, "options"), *ins = json_object_get(cert, "inputs");
    const json_t *rank = json_object_get(opt, "rank");
    double v[4] = { 0 };
    int rc;

    memset(o, 0, sizeof(*o));
    *n = 0;
    if (!json_is_object(opt) || !json_is_array(ins) || json_array_size(ins) > n_max ||
        !json_is_integer(rank) || json_integer_value(rank) < 0)
        return fusion_fail(d, FUSION_E_CERT, 0, "certificate: options/inputs missing, malformed or more than %zu",
                           n_max);
    if ((rc = get_num(opt, "tau", &v[0], d)) != 0 || (rc = get_num(opt, "tau_rel", &v[1], d)) != 0 ||
        (rc = get_num(opt, "module_cap", &v[2], d)) != 0 || (rc = get_num(opt, "kld_budget", &v[3], d)) != 0)
        return rc;
    o->tau = isnan(v[0]) ? 0.0 : v[0];
    o->tau_rel = isnan(v[1]) ? 0.0 : v[1];
    o->module_cap = isnan(v[2]) ? 0.0 : v[2];
    o->kld_budget = isnan(v[3]) ? 0.0 : v[3];
    o->rank = (size_t)json_integer_value(rank);
    for (size_t k = 0; k < json_array_size(ins); k++) {
        const json_t *e = json_array_get(ins, k);
        if ((rc = get_num(e, "weight_given", &weight_given[k], d)) != 0 ||
            (rc = get_num(e, "kld_eps", &kld_eps[k], d)) != 0)
            return rc;
    }
    *n = json_array_size(ins);
    return 0;
}

static int cmp_field(const json_t *obj, const char *where, const char *key, double got, double tol_rel,
                     double tol_abs, struct fusion_diag *d)
{
    double want = 0;
    int rc = get_num(obj, key, &want, d);

    if (rc != 0)
        return rc;
    if (isnan(want) && isnan(got))
        return 0;
    if (!(fabs(got - want) <= tol_rel * fabs(want) + tol_abs))
        return fusion_fail(d, FUSION_E_CERT, 0, "%s%s: certificate says %.17g, replay gives %.17g",
                           where, key, want, got);
    return 0;
}

static int check_modules(const json_t *mods, const struct merge *m, double abs_de, struct fusion_diag *d)
{
    char where[300];
    int rc = 0;

    if (!json_is_array(mods) || json_array_size(mods) != merge_module_count(m))
        return fusion_fail(d, FUSION_E_CERT, 0, "modules: certificate lists %zu, replay has %zu",
                           json_array_size(mods), merge_module_count(m));
    for (size_t i = 0; i < merge_module_count(m) && rc == 0; i++) {
        const json_t *e = json_array_get(mods, i);
        const struct merge_module_info *mi = merge_module(m, i);
        const char *name = json_string_value(json_object_get(e, "name"));
        if (name == NULL || strcmp(name, mi->name) != 0)
            return fusion_fail(d, FUSION_E_CERT, 0, "modules[%zu].name: certificate \"%s\", replay \"%s\"",
                               i, name ? name : "(missing)", mi->name);
        snprintf(where, sizeof(where), "module \"%.200s\" ", mi->name);
        if ((rc = cmp_field(e, where, "frob", mi->frob, CERTIFICATE_REL_NORM, 1e-300, d)) == 0 &&
            (rc = cmp_field(e, where, "frob_out", mi->frob_out, CERTIFICATE_REL_NORM, 1e-300, d)) == 0)
            rc = cmp_field(e, where, "dropped_energy", mi->dropped_energy, 0.0, abs_de, d);
    }
    return rc;
}

int certificate_check(const json_t *cert, const struct merge *replayed, struct fusion_diag *d)
{
    const struct merge_summary *s = merge_summary(replayed);
    const json_t *rk = json_object_get(cert, "rank_out");
    double g2 = s->frob_merged * s->frob_merged, abs_de = CERTIFICATE_ABS_DROPPED * g2 + 1e-300;
    int rc;

    if (!json_is_object(cert) || !json_is_string(json_object_get(cert, "format")) ||
        strcmp(json_string_value(json_object_get(cert, "format")), CERTIFICATE_FORMAT) != 0)
        return fusion_fail(d, FUSION_E_CERT, 0, "format: not \"%s\"", CERTIFICATE_FORMAT);
    if (!json_is_integer(rk) || (size_t)json_integer_value(rk) != s->rank_out)
        return fusion_fail(d, FUSION_E_CERT, 0, "rank_out: certificate %lld, replay %zu",
                           json_is_integer(rk) ? (long long)json_integer_value(rk) : -1LL, s->rank_out);
    if ((rc = cmp_field(cert, "", "frob_merged", s->frob_merged, CERTIFICATE_REL_NORM, 1e-300, d)) != 0 ||
        (rc = cmp_field(cert, "", "scale", s->scale, CERTIFICATE_REL_NORM, 0.0, d)) != 0 ||
        (rc = cmp_field(cert, "", "frob_out", s->frob_out, CERTIFICATE_REL_NORM, 1e-300, d)) != 0 ||
        (rc = cmp_field(cert, "", "dropped_energy", s->dropped_energy, 0.0, abs_de, d)) != 0)
        return rc;
    return check_modules(json_object_get(cert, "modules"), replayed, abs_de, d);
}
