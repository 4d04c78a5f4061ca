/* fusion/safetensors.h: a checked, read-only view of a .safetensors file.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON header (an
 * object: tensor name -> {dtype, shape, data_offsets: [begin, end)}, plus an
 * optional "__metadata__" object of string -> string), then the data section.
 * Offsets are relative to the start of the data section.
 *
 * Everything is checked before a byte of tensor data is handed out (the
 * checklist of huggingface/safetensors `validate`): N >= 2 and N <= the file
 * size - 8 and N <= SAFETENSORS_HEADER_MAX; the header is a JSON object; each
 * entry has exactly a known dtype, a shape of at most SAFETENSORS_NDIM_MAX
 * non-negative dims, and two offsets begin <= end inside the data section;
 * shape x dtype size == end - begin (checked multiplies); names are unique
 * and non-empty; taken in offset order the tensors tile the data section from
 * 0 with no gap and no overlap, and the last end == the data section's size.
 * Each violation has its own code (FUSION_E_ST_*) and a diag naming the
 * tensor and the numbers.
 *
 * Tensor data is little-endian and may be unaligned: read it through
 * safetensors_tensor_to_f32/_f64 (which convert F16/BF16/F64), never by
 * casting `data`.
 */
#ifndef PLORA_SAFETENSORS_H
#define PLORA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "fusion_err.h"

#define SAFETENSORS_HEADER_MAX (100u << 20)  /* bytes of JSON header, as upstream */
#define SAFETENSORS_NDIM_MAX 8u              /* dims per tensor */
#define SAFETENSORS_TENSORS_MAX 1000000u     /* entries per header */

enum safetensors_dtype {
    SAFETENSORS_F32 = 1,
    SAFETENSORS_F16 = 2,
    SAFETENSORS_BF16 = 3,
    SAFETENSORS_F64 = 4,
};

/* One tensor, as validated. Read-only; owned by the safetensors object and
 * valid until safetensors_free(). */
struct safetensors_tensor {
    const char *name;                       /* NUL-terminated, as in the header */
    enum safetensors_dtype dtype;
    unsigned ndim;                          /* 0 (scalar) .. SAFETENSORS_NDIM_MAX */
    uint64_t shape[SAFETENSORS_NDIM_MAX];   /* first ndim used */
    uint64_t nelem;                         /* product of shape; 1 for a scalar */
    uint64_t nbytes;                        /* nelem * dtype size == end - begin */
    uint64_t begin;                         /* data_offsets[0], from the data section */
    const uint8_t *data;                    /* nbytes bytes, little-endian, maybe unaligned */
};

struct safetensors;  /* opaque */

/* Map `path` read-only (mmap) and validate it. On success *out owns the
 * mapping (freed by safetensors_free). Returns 0, FUSION_E_IO (open/stat/mmap
 * failed, or empty file), FUSION_E_NOMEM, or any FUSION_E_ST_* code; on error
 * *out is NULL and `d` says what failed. */
int safetensors_open(struct safetensors **out, const char *path, struct fusion_diag *d);

/* Validate `len` bytes at `buf` (the whole file image). The object BORROWS
 * buf: it must stay valid and unchanged until safetensors_free(). Same codes
 * as safetensors_open minus FUSION_E_IO. */
int safetensors_parse(struct safetensors **out, const uint8_t *buf, size_t len,
                      struct fusion_diag *d);

/* Release the object (and unmap, if it was opened from a path). NULL is fine. */
void safetensors_free(struct safetensors *st);

/* Number of tensors ("__metadata__" is not a tensor). */
size_t safetensors_count(const struct safetensors *st);

/* The i-th tensor, in increasing strcmp order of names (i < count), else NULL. */
const struct safetensors_tensor *safetensors_at(const struct safetensors *st, size_t i);

/* The tensor called `name`, or NULL (binary search). */
const struct safetensors_tensor *safetensors_find(const struct safetensors *st, const char *name);

/* Bytes [first, first + n) of tensor i will not be read again soon: when
 * st maps its file, the pages holding them (rounded out to whole pages)
 * leave this process's resident set -- the page cache keeps them and a
 * later read faults them back, so this is a hint, never a loss. No-op for a
 * parsed buffer, i >= count or an empty range; the range is clipped to the
 * tensor. Lets a scan of every tensor (the gate) run in the memory of a
 * window instead of the whole file. */
void safetensors_release(const struct safetensors *st, size_t i, uint64_t first, uint64_t n);

/* The whole file image (for hashing) and its length in bytes. */
const uint8_t *safetensors_bytes(const struct safetensors *st, size_t *len);

/* Bytes of the JSON header (N), so the data section starts at 8 + N. */
size_t safetensors_header_len(const struct safetensors *st);

/* Value of "__metadata__"[key], or NULL when absent. Owned by the object. */
const char *safetensors_metadata(const struct safetensors *st, const char *key);

/* Bytes per element: 4, 2, 2, 8; 0 for an unknown value. */
size_t safetensors_dtype_size(enum safetensors_dtype t);

/* "F32", "F16", "BF16", "F64"; "?" for an unknown value. */
const char *safetensors_dtype_name(enum safetensors_dtype t);

/* Parse a dtype name as written in headers. Returns 0 or FUSION_E_ST_DTYPE
 * (names like "I64" or "F8_E4M3" are real but not supported here). */
int safetensors_dtype_parse(const char *s, enum safetensors_dtype *out);

/* Convert all elements of `t` (row-major, as stored) to float / double in
 * `out`, which holds `n` elements; n must equal t->nelem. F16/BF16/F32 are
 * exact in both; F64 -> float rounds. Returns 0 or FUSION_E_ARG (n wrong). */
int safetensors_tensor_to_f32(const struct safetensors_tensor *t, float *out, size_t n);
int safetensors_tensor_to_f64(const struct safetensors_tensor *t, double *out, size_t n);

/* Convert elements [first, first + n) only (for streaming scans of big
 * tensors). Returns 0 or FUSION_E_ARG (range outside the tensor). */
int safetensors_tensor_range_f64(const struct safetensors_tensor *t, uint64_t first,
                                 double *out, size_t n);

#endif
