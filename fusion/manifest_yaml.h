/* fusion/manifest_yaml.h: internal to fusion/manifest*.c: the YAML node tree
 * plora.yml is read into, PyYAML's scalar resolution, and Python's float
 * repr. Not part of the fusion library's public API. */
#ifndef PLORA_MANIFEST_YAML_H
#define PLORA_MANIFEST_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include "manifest.h"

/* What a scalar means under the YAML 1.1 resolver PyYAML's SafeLoader uses
 * (plain scalars only; quoted ones are always strings). */
enum manifest_ykind { MY_STR, MY_NULL, MY_BOOL, MY_INT, MY_FLOAT, MY_TIME, MY_MAP, MY_SEQ };

struct manifest_ynode {
    enum manifest_ykind kind;
    size_t line;            /* 1-based */
    char *s;                /* scalar text (NUL-terminated), else NULL */
    size_t len;
    struct manifest_ynode **kids;    /* map: key, value, key, value...; seq: items */
    size_t n, cap;
};

/* Parse `n` bytes into a tree, applying manifest.h's caps (bytes are checked
 * by the caller), refusing aliases, custom tags, several documents, non-scalar
 * and duplicate mapping keys. *root is NULL for an empty document. Returns 0,
 * FUSION_E_MANIFEST_YAML (d->line), FUSION_E_MANIFEST_LIMIT,
 * FUSION_E_MANIFEST_YAML_FEATURE, FUSION_E_MANIFEST_VALUE (NUL in a scalar)
 * or FUSION_E_NOMEM; on failure *root is NULL. */
int manifest_yaml_load(const void *buf, size_t n, struct manifest_ynode **root,
                       struct fusion_diag *d);

/* Free a node and its children; NULL is fine. */
void manifest_yaml_free(struct manifest_ynode *y);

/* What a plain (unquoted) scalar resolves to under PyYAML's SafeLoader. */
enum manifest_ykind manifest_yaml_resolve(const char *s);

/* "string", "int", ... for messages. */
const char *manifest_yaml_kind_name(enum manifest_ykind k);

/* Python's repr() of a finite double as PyYAML writes it ("0.1", "1.0e+16"). */
void manifest_yaml_float(double v, char out[48]);

#endif
