/* fusion/st_write.c: streaming safetensors writer (see st_write.h). */
#include "st_write.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "half.h"

#define CHUNK_ELEMS 16384u   /* doubles converted per pwrite in put_f64 */

struct slot {
    char *name;
    enum safetensors_dtype dtype;
    uint64_t nelem, begin, nbytes;   /* begin: offset in the data section */
    bool written;
};

struct st_writer {
    char *path, *tmp;
    int fd;
    bool finished;
    bool nosync;      /* st_writer_set_durable(w, false) */
    struct slot *s;
    size_t n;
    uint64_t data_start, size;
};

static int io_fail(struct fusion_diag *d, const char *what, const char *path)
{
    return fusion_fail(d, FUSION_E_IO, 0, "%s: %s: %s", path, what, strerror(errno));
}

static int cmp_slot_ptr(const void *a, const void *b)
{
    const struct slot *x = *(const struct slot *const *)a, *y = *(const struct slot *const *)b;

    return strcmp(x->name, y->name);
}

static int fill_slot(struct slot *s, const struct st_write_tensor *t, struct fusion_diag *d)
{
    uint64_t ne = 1, es = safetensors_dtype_size(t->dtype);

    if (t->name == NULL || t->name[0] == '\0' || strcmp(t->name, "__metadata__") == 0)
        return fusion_fail(d, FUSION_E_ST_WRITE, 0, "tensor name \"%s\" is empty or reserved",
                           t->name ? t->name : "(null)");
    if (es == 0 || t->ndim > SAFETENSORS_NDIM_MAX)
        return fusion_fail(d, FUSION_E_ARG, 0, "tensor \"%s\": dtype %d / ndim %u not writable",
                           t->name, (int)t->dtype, t->ndim);
    for (unsigned k = 0; k < t->ndim; k++) {
        if (t->shape[k] != 0 && ne > (UINT64_MAX / 16) / t->shape[k])
            return fusion_fail(d, FUSION_E_ARG, 0, "tensor \"%s\": shape overflows", t->name);
        ne *= t->shape[k];
    }
    if ((s->name = strdup(t->name)) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "tensor name");
    s->dtype = t->dtype;
    s->nelem = ne;
    s->nbytes = ne * es;
    return 0;
}

static json_t *entry_json(const struct slot *s, const struct st_write_tensor *t)
{
    json_t *shape = json_array();

    for (unsigned k = 0; shape != NULL && k < t->ndim; k++)
        json_array_append_new(shape, json_integer((json_int_t)t->shape[k]));
    return json_pack("{s:s, s:o, s:[I, I]}", "dtype", safetensors_dtype_name(s->dtype),
                     "shape", shape, "data_offsets",
                     (json_int_t)s->begin, (json_int_t)(s->begin + s->nbytes));
}

/* Assign offsets in name order and render the padded header into *hdr. */
static int layout(struct st_writer *w, const struct st_write_tensor *t, char **hdr, size_t *hlen,
                  struct fusion_diag *d)
{
    struct slot **order = NULL;
    json_t *root = NULL;
    char *txt = NULL;
    uint64_t off = 0;
    size_t len;
    int rc = 0;

    if ((order = calloc(w->n ? w->n : 1, sizeof(*order))) == NULL ||
        (root = json_pack("{s:{s:s}}", "__metadata__", "format", "pt")) == NULL) {
        rc = fusion_fail(d, FUSION_E_NOMEM, 0, "safetensors header");
        goto out;
    }
    for (size_t i = 0; i < w->n; i++)
        order[i] = &w->s[i];
    qsort(order, w->n, sizeof(*order), cmp_slot_ptr);
    for (size_t i = 0; i < w->n; i++) {
        if (i > 0 && strcmp(order[i]->name, order[i - 1]->name) == 0) {
            rc = fusion_fail(d, FUSION_E_ST_WRITE, 0, "tensor \"%s\" given twice", order[i]->name);
            goto out;
        }
        order[i]->begin = off;
        off += order[i]->nbytes;
    }
    for (size_t i = 0; i < w->n; i++)
        if (json_object_set_new(root, w->s[i].name, entry_json(&w->s[i], &t[i])) != 0) {
            rc = fusion_fail(d, FUSION_E_NOMEM, 0, "safetensors header entry");
            goto out;
        }
    if ((txt = json_dumps(root, JSON_SORT_KEYS | JSON_COMPACT)) == NULL) {
        rc = fusion_fail(d, FUSION_E_NOMEM, 0, "safetensors header text");
        goto out;
    }
    len = strlen(txt);
    *hlen = (len + 7) & ~(size_t)7;
    if ((*hdr = malloc(8 + *hlen)) == NULL) {
        rc = fusion_fail(d, FUSION_E_NOMEM, 0, "safetensors header text");
        goto out;
    }
    for (int b = 0; b < 8; b++)
        (*hdr)[b] = (char)(((uint64_t)*hlen >> (8 * b)) & 0xff);
    memcpy(*hdr + 8, txt, len);
    memset(*hdr + 8 + len, ' ', *hlen - len);
    w->data_start = 8 + *hlen;
    w->size = w->data_start + off;
out:
    free(txt);
    json_decref(root);
    free(order);
    return rc;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t k = pwrite(fd, p, len, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        len -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

static int open_tmp(struct st_writer *w, const char *hdr, size_t hlen, struct fusion_diag *d)
{
    if ((w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        return io_fail(d, "cannot create", w->tmp);
    if (ftruncate(w->fd, (off_t)w->size) != 0 || pwrite_all(w->fd, hdr, 8 + hlen, 0) != 0)
        return io_fail(d, "cannot write header", w->tmp);
    return 0;
}

int st_writer_new(struct st_writer **out, const char *path, const struct st_write_tensor *t,
                  size_t n, struct fusion_diag *d)
{
    struct st_writer *w = NULL;
    char *hdr = NULL;
    size_t hlen = 0;
    int rc = 0;

    if (out == NULL || path == NULL || (n > 0 && t == NULL))
        return fusion_fail(d, FUSION_E_ARG, 0, "st_writer_new: NULL argument");
    *out = NULL;
    if ((w = calloc(1, sizeof(*w))) == NULL || (w->s = calloc(n ? n : 1, sizeof(*w->s))) == NULL ||
        (w->path = strdup(path)) == NULL || (w->tmp = malloc(strlen(path) + 5)) == NULL) {
        rc = fusion_fail(d, FUSION_E_NOMEM, 0, "safetensors writer");
        goto out;
    }
    w->fd = -1;
    sprintf(w->tmp, "%s.tmp", path);
    for (size_t i = 0; i < n; i++, w->n++)
        if ((rc = fill_slot(&w->s[i], &t[i], d)) != 0)
            goto out;
    if ((rc = layout(w, t, &hdr, &hlen, d)) != 0 || (rc = open_tmp(w, hdr, hlen, d)) != 0)
        goto out;
    *out = w;
    w = NULL;
out:
    free(hdr);
    st_writer_free(w);
    return rc;
}

static int check_slot(struct st_writer *w, size_t i, uint64_t len, struct fusion_diag *d)
{
    if (w == NULL || w->finished || i >= w->n)
        return fusion_fail(d, FUSION_E_ST_WRITE, 0, "tensor index %zu out of range or writer closed", i);
    if (w->s[i].written)
        return fusion_fail(d, FUSION_E_ST_WRITE, 0, "tensor \"%s\" written twice", w->s[i].name);
    if (len != w->s[i].nbytes)
        return fusion_fail(d, FUSION_E_ST_WRITE, 0, "tensor \"%s\": %llu bytes given, %llu expected",
                           w->s[i].name, (unsigned long long)len, (unsigned long long)w->s[i].nbytes);
    return 0;
}

int st_writer_put(struct st_writer *w, size_t i, const void *bytes, size_t len, struct fusion_diag *d)
{
    int rc;

    if ((rc = check_slot(w, i, len, d)) != 0)
        return rc;
    if (len > 0 && pwrite_all(w->fd, bytes, len, w->data_start + w->s[i].begin) != 0)
        return io_fail(d, "cannot write tensor data", w->tmp);
    w->s[i].written = true;
    return 0;
}

/* Convert n doubles to dtype t into buf (n * size(t) bytes, little-endian). */
static void from_f64(unsigned char *buf, const double *x, size_t n, enum safetensors_dtype t)
{
    for (size_t j = 0; j < n; j++) {
        float f = (float)x[j];
        uint16_t h;
        switch (t) {
        case SAFETENSORS_F32: memcpy(buf + 4 * j, &f, 4); break;
        case SAFETENSORS_F64: memcpy(buf + 8 * j, &x[j], 8); break;
        case SAFETENSORS_F16: h = half_f32_to_f16(f); memcpy(buf + 2 * j, &h, 2); break;
        case SAFETENSORS_BF16: h = half_f32_to_bf16(f); memcpy(buf + 2 * j, &h, 2); break;
        }
    }
}

int st_writer_put_f64(struct st_writer *w, size_t i, const double *x, size_t n, struct fusion_diag *d)
{
    unsigned char *buf = NULL;
    size_t es;
    uint64_t off;
    int rc;

    if (w == NULL || i >= w->n)
        return check_slot(w, i, 0, d);
    es = safetensors_dtype_size(w->s[i].dtype);
    if ((rc = check_slot(w, i, (uint64_t)n * es, d)) != 0)
        return rc;
    if ((buf = malloc(CHUNK_ELEMS * es)) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "conversion buffer");
    off = w->data_start + w->s[i].begin;
    for (size_t j = 0; j < n; j += CHUNK_ELEMS) {
        size_t k = n - j < CHUNK_ELEMS ? n - j : CHUNK_ELEMS;
        from_f64(buf, x + j, k, w->s[i].dtype);
        if (pwrite_all(w->fd, buf, k * es, off + j * es) != 0) {
            rc = io_fail(d, "cannot write tensor data", w->tmp);
            goto out;
        }
    }
    w->s[i].written = true;
out:
    free(buf);
    return rc;
}

void st_writer_set_durable(struct st_writer *w, bool durable)
{
    w->nosync = !durable;
}

uint64_t st_writer_size(const struct st_writer *w)
{
    return w->size;
}

int st_writer_finish(struct st_writer *w, struct fusion_diag *d)
{
    if (w == NULL || w->finished)
        return fusion_fail(d, FUSION_E_ST_WRITE, 0, "writer already finished");
    for (size_t i = 0; i < w->n; i++)
        if (!w->s[i].written)
            return fusion_fail(d, FUSION_E_ST_WRITE, 0, "tensor \"%s\" was never written", w->s[i].name);
    if (!w->nosync && fsync(w->fd) != 0)
        return io_fail(d, "cannot fsync", w->tmp);
    if (close(w->fd) != 0) {
        w->fd = -1;
        return io_fail(d, "cannot close", w->tmp);
    }
    w->fd = -1;
    if (rename(w->tmp, w->path) != 0)
        return io_fail(d, "cannot rename into place", w->path);
    w->finished = true;
    return w->nosync ? 0 : fusion_fsync_dir_of(w->path, d);
}

void st_writer_free(struct st_writer *w)
{
    if (w == NULL)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (!w->finished && w->tmp != NULL)
        unlink(w->tmp);
    for (size_t i = 0; w->s != NULL && i < w->n; i++)
        free(w->s[i].name);
    free(w->s);
    free(w->path);
    free(w->tmp);
    free(w);
}
