/* fusion/merge_out.c: merged adapter directory writer (see merge_out.h). */
#include "merge_out.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st_write.h"

static int io_fail(struct fusion_diag *d, const char *what, const char *path)
{
    return fusion_fail(d, FUSION_E_IO, 0, "%s: %s: %s", path, what, strerror(errno));
}

static char *join(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s%s%s", a, b, c);
    return p;
}

int merge_out_write_file(const char *path, const void *buf, size_t len, struct fusion_diag *d)
{
    char *tmp = join(path, ".tmp", "");
    const char *p = buf;
    int fd = -1, rc = 0;

    if (tmp == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "path");
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        rc = io_fail(d, "cannot create", tmp);
        goto out;
    }
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = io_fail(d, "cannot write", tmp);
            goto out;
        }
        p += k;
        len -= (size_t)k;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        rc = io_fail(d, "cannot fsync", tmp);
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = io_fail(d, "cannot rename into place", path);
        goto out;
    }
    rc = fusion_fsync_dir_of(path, d);
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* Tensor list: 2 per module (A then B), then the pass-through tensors. */
static int tensor_specs(const struct merge *m, const struct merge_out_spec *spec,
                        struct st_write_tensor **out, char ***names, size_t *n, struct fusion_diag *d)
{
    size_t nm = merge_module_count(m), K = merge_summary(m)->rank_out;
    size_t no = spec->passthrough ? adapter_other_count(spec->passthrough) : 0;
    struct st_write_tensor *t = calloc(2 * nm + no + 1, sizeof(*t));
    char **nms = calloc(2 * nm + 1, sizeof(*nms));

    *out = t;
    *names = nms;
    *n = 0;
    if (t == NULL || nms == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "tensor list");
    for (size_t i = 0; i < nm; i++) {
        const struct merge_module_info *mi = merge_module(m, i);
        enum safetensors_dtype dt = spec->dtype ? spec->dtype : mi->dtype;
        if ((nms[2 * i] = join(ADAPTER_TENSOR_PREFIX, mi->name, ".lora_A.weight")) == NULL ||
            (nms[2 * i + 1] = join(ADAPTER_TENSOR_PREFIX, mi->name, ".lora_B.weight")) == NULL)
            return fusion_fail(d, FUSION_E_NOMEM, 0, "tensor name");
        t[2 * i] = (struct st_write_tensor){ nms[2 * i], dt, 2, { K, mi->in } };
        t[2 * i + 1] = (struct st_write_tensor){ nms[2 * i + 1], dt, 2, { mi->out, K } };
    }
    for (size_t j = 0; j < no; j++) {
        const struct safetensors_tensor *o = adapter_other_at(spec->passthrough, j);
        t[2 * nm + j] = (struct st_write_tensor){ .name = o->name, .dtype = o->dtype, .ndim = o->ndim };
        memcpy(t[2 * nm + j].shape, o->shape, sizeof(o->shape));
    }
    *n = 2 * nm + no;
    return 0;
}

struct sink_ctx {
    const struct merge *m;
    struct st_writer *w;
};

/* merge_emit's sink: tensors 2i (A) and 2i+1 (B); the writer's puts on
 * distinct tensors are independent pwrites, safe from several threads. */
static int put_module(void *ctx, size_t i, const double *B_out, const double *A_out, struct fusion_diag *d)
{
    const struct sink_ctx *c = ctx;
    const struct merge_module_info *mi = merge_module(c->m, i);
    size_t K = merge_summary(c->m)->rank_out;
    int rc = st_writer_put_f64(c->w, 2 * i, A_out, K * mi->in, d);

    return rc != 0 ? rc : st_writer_put_f64(c->w, 2 * i + 1, B_out, mi->out * K, d);
}

static int write_tensors(struct merge *m, struct st_writer *w, const struct merge_out_spec *spec,
                         struct fusion_diag *d)
{
    struct sink_ctx c = { m, w };
    size_t nm = merge_module_count(m);
    int rc = 0;

    if (!merge_computed(m))
        rc = merge_compute(m, put_module, &c, d);   /* may emit in its single pass */
    if (rc == 0)
        rc = merge_emit(m, put_module, &c, d);      /* no-op when it did */

    for (size_t j = 0; rc == 0 && spec->passthrough && j < adapter_other_count(spec->passthrough); j++) {
        const struct safetensors_tensor *o = adapter_other_at(spec->passthrough, j);
        rc = st_writer_put(w, 2 * nm + j, o->data, (size_t)o->nbytes, d);
    }
    return rc;
}

static json_t *config_json(const struct merge *m, const struct merge_out_spec *spec)
{
    size_t K = merge_summary(m)->rank_out;
    json_t *targets = json_array(), *mts = json_null(), *c;
    const struct peft_config *pc = spec->passthrough ? adapter_config(spec->passthrough) : NULL;

    for (size_t i = 0; targets != NULL && i < merge_module_count(m); i++)
        json_array_append_new(targets, json_string(merge_module(m, i)->name));
    if (pc != NULL && pc->modules_to_save != NULL) {
        json_decref(mts);
        mts = json_array();
        for (size_t i = 0; mts != NULL && i < pc->n_modules_to_save; i++)
            json_array_append_new(mts, json_string(pc->modules_to_save[i]));
    }
    c = json_pack("{s:s, s:o, s:o, s:I, s:I, s:b, s:o, s:b, s:f, s:s, s:b, s:o, s:o, s:o, s:b, s:b}",
                  "peft_type", "LORA",
                  "base_model_name_or_path", spec->base_model ? json_string(spec->base_model) : json_null(),
                  "task_type", spec->task_type ? json_string(spec->task_type) : json_null(),
                  "r", (json_int_t)K, "lora_alpha", (json_int_t)K, "use_rslora", 0,
                  "target_modules", targets, "fan_in_fan_out", spec->fan_in_fan_out,
                  "lora_dropout", 0.0, "bias", "none", "inference_mode", 1,
                  "modules_to_save", mts, "rank_pattern", json_object(), "alpha_pattern", json_object(),
                  "use_dora", 0, "init_lora_weights", 1);
    return c;
}

static int write_config(const struct merge *m, const char *dir, const struct merge_out_spec *spec,
                        struct fusion_diag *d)
{
    json_t *c = config_json(m, spec);
    char *txt = c ? json_dumps(c, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    char *path = join(dir, "/", MERGE_OUT_CONFIG_NAME);
    int rc;

    if (txt == NULL || path == NULL)
        rc = fusion_fail(d, FUSION_E_NOMEM, 0, "adapter_config.json");
    else
        rc = merge_out_write_file(path, txt, strlen(txt), d);
    free(path);
    free(txt);
    json_decref(c);
    return rc;
}

int merge_out_write(struct merge *m, const char *dir, const struct merge_out_spec *spec,
                    struct fusion_diag *d)
{
    struct st_write_tensor *t = NULL;
    struct st_writer *w = NULL;
    char **names = NULL, *path = NULL;
    size_t n = 0;
    int rc;

    if (m == NULL || dir == NULL || spec == NULL)
        return fusion_fail(d, FUSION_E_ARG, 0, "merge_out_write: NULL argument");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return io_fail(d, "cannot create directory", dir);
    if ((path = join(dir, "/", ADAPTER_WEIGHTS_NAME)) == NULL) {
        rc = fusion_fail(d, FUSION_E_NOMEM, 0, "path");
        goto out;
    }
    if ((rc = tensor_specs(m, spec, &t, &names, &n, d)) != 0 ||
        (rc = st_writer_new(&w, path, t, n, d)) != 0)
        goto out;
    st_writer_set_durable(w, !spec->no_fsync);
    if ((rc = write_tensors(m, w, spec, d)) != 0 ||
        (rc = st_writer_finish(w, d)) != 0)
        goto out;
    rc = write_config(m, dir, spec, d);
out:
    st_writer_free(w);
    for (size_t i = 0; names != NULL && i < 2 * merge_module_count(m); i++)
        free(names[i]);
    free(names);
    free(t);
    free(path);
    return rc;
}
