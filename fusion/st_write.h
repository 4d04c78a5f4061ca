/* fusion/st_write.h: write a .safetensors file that fusion/safetensors.h
 * (and huggingface/safetensors) accept.
 *
 * Layout: 8-byte little-endian header length N, the JSON header (keys sorted,
 * "__metadata__": {"format": "pt"} as PEFT writes it, padded with spaces so
 * that N is a multiple of 8 and the data section is 8-byte aligned), then the
 * tensors back to back in strcmp order of their names, from offset 0 to the
 * end of the file.
 *
 * The shapes are fixed up front, so tensors may be written in any order and
 * streamed (put_f64 converts and writes in chunks: nothing the size of the
 * file is held in memory). The file is written as "<path>.tmp", and
 * st_writer_finish fsyncs it, renames it over <path> and fsyncs the
 * directory; a writer freed before finish removes its temporary file.
 */
#ifndef PLORA_ST_WRITE_H
#define PLORA_ST_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fusion_err.h"
#include "safetensors.h"

struct st_write_tensor {
    const char *name;                      /* unique, non-empty, not "__metadata__" */
    enum safetensors_dtype dtype;
    unsigned ndim;                         /* 0 .. SAFETENSORS_NDIM_MAX */
    uint64_t shape[SAFETENSORS_NDIM_MAX];
};

struct st_writer;  /* opaque */

/* Create <path>.tmp sized for the n tensors and write its header. The names
 * are copied. Returns 0, FUSION_E_ARG (bad dtype, ndim, shape overflow),
 * FUSION_E_ST_WRITE (duplicate or reserved name), FUSION_E_NOMEM or
 * FUSION_E_IO (the diag names the path and errno text). *out NULL on error. */
int st_writer_new(struct st_writer **out, const char *path, const struct st_write_tensor *t,
                  size_t n, struct fusion_diag *d);

/* Write tensor i (index into the array given to st_writer_new) from `len`
 * raw little-endian bytes already in its dtype; len must equal its size.
 * Returns 0, FUSION_E_ST_WRITE (index, length, or written twice) or FUSION_E_IO. */
int st_writer_put(struct st_writer *w, size_t i, const void *bytes, size_t len,
                  struct fusion_diag *d);

/* Write tensor i from `n` doubles (n == its element count), rounded to its
 * dtype (to nearest; F16/BF16 go through float). Same codes as put, plus
 * FUSION_E_NOMEM. */
int st_writer_put_f64(struct st_writer *w, size_t i, const double *x, size_t n,
                      struct fusion_diag *d);

/* durable = false: st_writer_finish skips both fsyncs (benchmarks timing
 * the work apart from the disk; tests). Default true. */
void st_writer_set_durable(struct st_writer *w, bool durable);

/* Total file size in bytes (header included). */
uint64_t st_writer_size(const struct st_writer *w);

/* Check every tensor was written, fsync, rename over <path>, fsync the
 * directory. Returns 0, FUSION_E_ST_WRITE (the diag names a missing tensor)
 * or FUSION_E_IO. The writer must still be freed. */
int st_writer_finish(struct st_writer *w, struct fusion_diag *d);

/* NULL is fine; removes the temporary file unless finished. */
void st_writer_free(struct st_writer *w);

#endif
