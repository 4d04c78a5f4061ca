/* fusion/safetensors.c: validate a safetensors image, then hand out tensors.
 *
 * Order of checks (each its own code): header length field, JSON syntax
 * (duplicates rejected by jansson), each entry (keys, dtype, shape, offsets,
 * size), then the layout over all entries (tiling from 0, last end == data
 * size). Nothing is read from the data section before all of it passed.
 */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "half.h"

struct safetensors {
    const uint8_t *buf;     /* whole image */
    size_t len;
    size_t header_len;      /* N */
    void *map;              /* non-NULL when we own an mmap of len bytes */
    json_t *root;           /* parsed header; owns the name strings */
    struct safetensors_tensor *t;  /* count entries, sorted by name */
    size_t count;
};

static const struct { const char *name; enum safetensors_dtype t; size_t size; } dtypes[] = {
    { "F32", SAFETENSORS_F32, 4 },
    { "F16", SAFETENSORS_F16, 2 },
    { "BF16", SAFETENSORS_BF16, 2 },
    { "F64", SAFETENSORS_F64, 8 },
};

size_t safetensors_dtype_size(enum safetensors_dtype t)
{
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
        if (dtypes[i].t == t)
            return dtypes[i].size;
    return 0;
}

const char *safetensors_dtype_name(enum safetensors_dtype t)
{
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
        if (dtypes[i].t == t)
            return dtypes[i].name;
    return "?";
}

int safetensors_dtype_parse(const char *s, enum safetensors_dtype *out)
{
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
        if (strcmp(dtypes[i].name, s) == 0) {
            *out = dtypes[i].t;
            return 0;
        }
    return FUSION_E_ST_DTYPE;
}

/* Write "[d0, d1, ...]" of t's shape into buf (for messages). */
static const char *shape_str(const struct safetensors_tensor *t, char *buf, size_t n)
{
    size_t used = 0;

    buf[0] = '\0';
    for (unsigned i = 0; i < t->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%llu", i ? ", " : "",
                                 (unsigned long long)t->shape[i]);
    return buf;
}

static int parse_dtype(const char *name, json_t *v, struct safetensors_tensor *t,
                       struct fusion_diag *d)
{
    if (!json_is_string(v))
        return fusion_fail(d, FUSION_E_ST_ENTRY, 8, "tensor \"%s\": dtype is not a string", name);
    if (safetensors_dtype_parse(json_string_value(v), &t->dtype) != 0)
        return fusion_fail(d, FUSION_E_ST_DTYPE, 8, "tensor \"%s\": dtype \"%.32s\" not supported "
                           "(F32, F16, BF16, F64)", name, json_string_value(v));
    return 0;
}

/* Shape: array of at most NDIM_MAX integers >= 0; nelem by checked multiplies. */
static int parse_shape(const char *name, json_t *v, struct safetensors_tensor *t,
                       struct fusion_diag *d)
{
    size_t i;
    json_t *dim;

    if (!json_is_array(v))
        return fusion_fail(d, FUSION_E_ST_ENTRY, 8, "tensor \"%s\": shape is not an array", name);
    if (json_array_size(v) > SAFETENSORS_NDIM_MAX)
        return fusion_fail(d, FUSION_E_ST_SHAPE, 8, "tensor \"%s\": shape has %zu dims, cap %u",
                           name, json_array_size(v), SAFETENSORS_NDIM_MAX);
    t->ndim = (unsigned)json_array_size(v);
    t->nelem = 1;
    json_array_foreach(v, i, dim) {
        if (!json_is_integer(dim) || json_integer_value(dim) < 0)
            return fusion_fail(d, FUSION_E_ST_SHAPE, 8, "tensor \"%s\": shape[%zu] is not an "
                               "integer >= 0", name, i);
        t->shape[i] = (uint64_t)json_integer_value(dim);
        if (__builtin_mul_overflow(t->nelem, t->shape[i], &t->nelem))
            return fusion_fail(d, FUSION_E_ST_SHAPE, 8, "tensor \"%s\": element count overflows "
                               "64 bits at shape[%zu]", name, i);
    }
    return 0;
}

static int parse_offsets(const char *name, json_t *v, uint64_t data_len,
                         struct safetensors_tensor *t, struct fusion_diag *d)
{
    json_t *b = json_array_get(v, 0), *e = json_array_get(v, 1);
    uint64_t begin, end;

    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(b) || !json_is_integer(e))
        return fusion_fail(d, FUSION_E_ST_ENTRY, 8, "tensor \"%s\": data_offsets is not "
                           "[begin, end] of integers", name);
    if (json_integer_value(b) < 0 || json_integer_value(e) < 0)
        return fusion_fail(d, FUSION_E_ST_OFFSETS, 8, "tensor \"%s\": negative data_offsets", name);
    begin = (uint64_t)json_integer_value(b);
    end = (uint64_t)json_integer_value(e);
    if (begin > end || end > data_len)
        return fusion_fail(d, FUSION_E_ST_OFFSETS, 8, "tensor \"%s\": data_offsets [%llu, %llu) "
                           "outside the %llu-byte data section or reversed", name,
                           (unsigned long long)begin, (unsigned long long)end,
                           (unsigned long long)data_len);
    t->begin = begin;
    t->nbytes = end - begin;
    return 0;
}

static int check_size(const struct safetensors_tensor *t, struct fusion_diag *d)
{
    uint64_t need;
    char sh[96];

    if (__builtin_mul_overflow(t->nelem, (uint64_t)safetensors_dtype_size(t->dtype), &need))
        return fusion_fail(d, FUSION_E_ST_SHAPE, 8, "tensor \"%s\": %s [%s] byte size overflows "
                           "64 bits", t->name, safetensors_dtype_name(t->dtype),
                           shape_str(t, sh, sizeof(sh)));
    if (need != t->nbytes)
        return fusion_fail(d, FUSION_E_ST_SIZE, 8, "tensor \"%s\": data_offsets [%llu, %llu) but "
                           "%s [%s] needs %llu bytes", t->name, (unsigned long long)t->begin,
                           (unsigned long long)(t->begin + t->nbytes),
                           safetensors_dtype_name(t->dtype), shape_str(t, sh, sizeof(sh)),
                           (unsigned long long)need);
    return 0;
}

static int parse_entry(const char *name, json_t *v, uint64_t data_len,
                       struct safetensors_tensor *t, struct fusion_diag *d)
{
    int rc;

    if (name[0] == '\0')
        return fusion_fail(d, FUSION_E_ST_DUP, 8, "tensor with an empty name");
    if (!json_is_object(v))
        return fusion_fail(d, FUSION_E_ST_ENTRY, 8, "tensor \"%s\": entry is not an object", name);
    if (json_object_size(v) != 3)
        return fusion_fail(d, FUSION_E_ST_ENTRY, 8, "tensor \"%s\": entry has %zu keys, want "
                           "exactly dtype, shape, data_offsets", name, json_object_size(v));
    t->name = name;
    if ((rc = parse_dtype(name, json_object_get(v, "dtype"), t, d)) != 0 ||
        (rc = parse_shape(name, json_object_get(v, "shape"), t, d)) != 0 ||
        (rc = parse_offsets(name, json_object_get(v, "data_offsets"), data_len, t, d)) != 0)
        return rc;
    return check_size(t, d);
}

static int check_metadata(json_t *v, struct fusion_diag *d)
{
    const char *k;
    json_t *x;

    if (!json_is_object(v))
        return fusion_fail(d, FUSION_E_ST_METADATA, 8, "__metadata__ is not an object");
    json_object_foreach(v, k, x)
        if (!json_is_string(x))
            return fusion_fail(d, FUSION_E_ST_METADATA, 8, "__metadata__[\"%s\"] is not a string", k);
    return 0;
}

static int cmp_by_offset(const void *a, const void *b)
{
    const struct safetensors_tensor *x = *(const struct safetensors_tensor *const *)a;
    const struct safetensors_tensor *y = *(const struct safetensors_tensor *const *)b;

    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->nbytes != y->nbytes)
        return x->nbytes < y->nbytes ? -1 : 1;  /* empty tensors first at a shared offset */
    return strcmp(x->name, y->name);
}

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp(((const struct safetensors_tensor *)a)->name,
                  ((const struct safetensors_tensor *)b)->name);
}

/* Taken in offset order the tensors must tile [0, data_len) exactly. */
static int check_layout(struct safetensors *st, uint64_t data_len, struct fusion_diag *d)
{
    const struct safetensors_tensor **order = NULL;
    uint64_t pos = 0;
    int rc = 0;

    if (st->count == 0)
        goto tail;
    if ((order = malloc(st->count * sizeof(*order))) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "no memory for %zu tensor entries", st->count);
    for (size_t i = 0; i < st->count; i++)
        order[i] = &st->t[i];
    qsort(order, st->count, sizeof(*order), cmp_by_offset);
    for (size_t i = 0; i < st->count && rc == 0; i++) {
        if (order[i]->begin != pos)
            rc = fusion_fail(d, FUSION_E_ST_LAYOUT, 8, "tensor \"%s\": starts at %llu but the "
                             "previous tensor ends at %llu (%s)", order[i]->name,
                             (unsigned long long)order[i]->begin, (unsigned long long)pos,
                             order[i]->begin < pos ? "overlap" : "gap");
        pos = order[i]->begin + order[i]->nbytes;
    }
    free(order);
    if (rc != 0)
        return rc;
tail:
    if (pos != data_len)
        return fusion_fail(d, FUSION_E_ST_TRAILING, 8, "tensors end at byte %llu of a %llu-byte "
                           "data section", (unsigned long long)pos, (unsigned long long)data_len);
    return 0;
}

static int parse_entries(struct safetensors *st, uint64_t data_len, struct fusion_diag *d)
{
    const char *k;
    json_t *v;
    size_t n = json_object_size(st->root);
    int rc;

    if (n > SAFETENSORS_TENSORS_MAX)
        return fusion_fail(d, FUSION_E_ST_HEADER_LEN, 8, "header lists %zu entries, cap %u",
                           n, SAFETENSORS_TENSORS_MAX);
    if ((st->t = calloc(n ? n : 1, sizeof(*st->t))) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "no memory for %zu tensor entries", n);
    json_object_foreach(st->root, k, v) {
        if (strcmp(k, "__metadata__") == 0) {
            if ((rc = check_metadata(v, d)) != 0)
                return rc;
            continue;
        }
        if ((rc = parse_entry(k, v, data_len, &st->t[st->count], d)) != 0)
            return rc;
        st->t[st->count].data = st->buf + 8 + st->header_len + st->t[st->count].begin;
        st->count++;
    }
    qsort(st->t, st->count, sizeof(*st->t), cmp_by_name);
    return check_layout(st, data_len, d);
}

static int parse_header(struct safetensors *st, struct fusion_diag *d)
{
    uint64_t n = 0;
    json_error_t err;

    if (st->len < 8)
        return fusion_fail(d, FUSION_E_ST_SHORT, 0, "file has %zu bytes, fewer than the 8-byte "
                           "header length", st->len);
    for (int i = 7; i >= 0; i--)
        n = n << 8 | st->buf[i];
    if (n < 2 || n > SAFETENSORS_HEADER_MAX || n > st->len - 8)
        return fusion_fail(d, FUSION_E_ST_HEADER_LEN, 0, "header length %llu outside 2..%llu "
                           "(file %zu bytes, cap %u)", (unsigned long long)n,
                           (unsigned long long)(st->len - 8 < SAFETENSORS_HEADER_MAX ?
                                                st->len - 8 : SAFETENSORS_HEADER_MAX),
                           st->len, SAFETENSORS_HEADER_MAX);
    st->header_len = (size_t)n;
    st->root = json_loadb((const char *)st->buf + 8, st->header_len, JSON_REJECT_DUPLICATES, &err);
    if (st->root == NULL)
        return fusion_fail(d, json_error_code(&err) == json_error_duplicate_key ?
                           FUSION_E_ST_DUP : FUSION_E_ST_JSON, 8 + (size_t)err.position,
                           "header JSON, line %d column %d: %s", err.line, err.column, err.text);
    if (!json_is_object(st->root))
        return fusion_fail(d, FUSION_E_ST_JSON, 8, "header is JSON but not an object");
    return parse_entries(st, st->len - 8 - st->header_len, d);
}

int safetensors_parse(struct safetensors **out, const uint8_t *buf, size_t len,
                      struct fusion_diag *d)
{
    struct safetensors *st;
    int rc;

    *out = NULL;
    if (buf == NULL && len != 0)
        return fusion_fail(d, FUSION_E_ARG, 0, "NULL buffer of %zu bytes", len);
    if ((st = calloc(1, sizeof(*st))) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "no memory for a safetensors object");
    st->buf = buf;
    st->len = len;
    if ((rc = parse_header(st, d)) != 0) {
        safetensors_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

/* Map a whole regular file read-only. The mapping is private to us: the
 * file must not change while mapped (adapters are immutable once stored). */
static int map_file(const char *path, void **map, size_t *len, struct fusion_diag *d)
{
    struct stat sb;
    int fd, rc = 0;

    *map = NULL;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return fusion_fail(d, FUSION_E_IO, 0, "%s: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = fusion_fail(d, FUSION_E_IO, 0, "%s: not a readable regular file", path);
        goto out;
    }
    if (sb.st_size < 8) {
        rc = fusion_fail(d, FUSION_E_ST_SHORT, 0, "%s: file has %lld bytes, fewer than the "
                         "8-byte header length", path, (long long)sb.st_size);
        goto out;
    }
    *len = (size_t)sb.st_size;
    *map = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (*map == MAP_FAILED) {
        *map = NULL;
        rc = fusion_fail(d, FUSION_E_IO, 0, "%s: mmap: %s", path, strerror(errno));
    }
out:
    close(fd);
    return rc;
}

int safetensors_open(struct safetensors **out, const char *path, struct fusion_diag *d)
{
    void *map = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if ((rc = map_file(path, &map, &len, d)) != 0)
        return rc;
    if ((rc = safetensors_parse(out, map, len, d)) != 0) {
        munmap(map, len);
        return rc;
    }
    (*out)->map = map;  /* transferred: unmapped by safetensors_free */
    return 0;
}

void safetensors_free(struct safetensors *st)
{
    if (st == NULL)
        return;
    if (st->map != NULL)
        munmap(st->map, st->len);
    json_decref(st->root);
    free(st->t);
    free(st);
}

void safetensors_release(const struct safetensors *st, size_t i, uint64_t first, uint64_t n)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), lo, hi;
    const struct safetensors_tensor *t;

    if (st == NULL || st->map == NULL || i >= st->count || first >= st->t[i].nbytes || n == 0)
        return;
    t = &st->t[i];
    if (n > t->nbytes - first)
        n = t->nbytes - first;
    lo = (uintptr_t)(t->data + first) & ~(page - 1);
    hi = ((uintptr_t)(t->data + first + n) + page - 1) & ~(page - 1);
    /* Private, read-only, never written: dropped pages come back from the file. */
    (void)madvise((void *)lo, (size_t)(hi - lo), MADV_DONTNEED);
}

size_t safetensors_count(const struct safetensors *st)
{
    return st->count;
}

const struct safetensors_tensor *safetensors_at(const struct safetensors *st, size_t i)
{
    return i < st->count ? &st->t[i] : NULL;
}

const struct safetensors_tensor *safetensors_find(const struct safetensors *st, const char *name)
{
    struct safetensors_tensor key = { .name = name };

    return bsearch(&key, st->t, st->count, sizeof(*st->t), cmp_by_name);
}

const uint8_t *safetensors_bytes(const struct safetensors *st, size_t *len)
{
    *len = st->len;
    return st->buf;
}

size_t safetensors_header_len(const struct safetensors *st)
{
    return st->header_len;
}

const char *safetensors_metadata(const struct safetensors *st, const char *key)
{
    return json_string_value(json_object_get(json_object_get(st->root, "__metadata__"), key));
}

/* Element i of t as double: little-endian, unaligned-safe. */
static double elem_f64(const struct safetensors_tensor *t, uint64_t i)
{
    const uint8_t *p = t->data + i * safetensors_dtype_size(t->dtype);
    uint64_t u = 0;
    size_t w = safetensors_dtype_size(t->dtype);

    for (size_t k = w; k-- > 0;)
        u = u << 8 | p[k];
    switch (t->dtype) {
    case SAFETENSORS_F16: return half_f16_to_f32((uint16_t)u);
    case SAFETENSORS_BF16: return half_bf16_to_f32((uint16_t)u);
    case SAFETENSORS_F32: { uint32_t v = (uint32_t)u; float f; memcpy(&f, &v, 4); return f; }
    case SAFETENSORS_F64: { double f; memcpy(&f, &u, 8); return f; }
    }
    return 0.0;
}

int safetensors_tensor_range_f64(const struct safetensors_tensor *t, uint64_t first,
                                 double *out, size_t n)
{
    if (first > t->nelem || n > t->nelem - first)
        return FUSION_E_ARG;
    for (size_t i = 0; i < n; i++)
        out[i] = elem_f64(t, first + i);
    return 0;
}

/* Little-endian hosts read F32 data by memcpy (the hot path of merges). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_LE 1
#else
#define HOST_LE 0
#endif

int safetensors_tensor_to_f64(const struct safetensors_tensor *t, double *out, size_t n)
{
    if (n != t->nelem)
        return FUSION_E_ARG;
    if (HOST_LE && t->dtype == SAFETENSORS_F32) {
        for (size_t i = 0; i < n; i++) {
            float f;
            memcpy(&f, t->data + 4 * i, 4);
            out[i] = f;
        }
        return 0;
    }
    return safetensors_tensor_range_f64(t, 0, out, n);
}

int safetensors_tensor_to_f32(const struct safetensors_tensor *t, float *out, size_t n)
{
    if (n != t->nelem)
        return FUSION_E_ARG;
    if (HOST_LE && t->dtype == SAFETENSORS_F32) {
        if (n != 0)
            memcpy(out, t->data, 4 * n);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (float)elem_f64(t, i);
    return 0;
}
