/* fusion/manifest_yaml.c: the YAML layer under plora.yml: libyaml events to a
 * small node tree (with the caps of manifest.h), PyYAML's YAML 1.1 scalar
 * resolution, and Python's float repr for the writer. Internal to
 * fusion/manifest*.c (manifest_yaml.h). */
#define _POSIX_C_SOURCE 200809L
#include "manifest_yaml.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct ytree {
    struct manifest_ynode *root;
    struct manifest_ynode *stack[MANIFEST_MAX_DEPTH + 1];
    size_t depth;
    size_t nodes;
    size_t docs;
};

void manifest_yaml_free(struct manifest_ynode *y)
{
    if (y == NULL)
        return;
    for (size_t i = 0; i < y->n; i++)
        manifest_yaml_free(y->kids[i]);
    free(y->kids);
    free(y->s);
    free(y);
}

static bool all_digits(const char *s, const char *extra)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!(*s >= '0' && *s <= '9') && strchr(extra, *s) == NULL)
            return false;
    return true;
}

static bool is_int_text(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'b'))
        return s[2] != '\0' && strspn(s + 2, s[1] == 'x' ? "0123456789abcdefABCDEF_" : "01_")
                                   == strlen(s + 2);
    if (strchr(s, ':') != NULL)   /* sexagesimal 1:30 */
        return s[0] >= '1' && s[0] <= '9' && all_digits(s, ":_");
    return all_digits(s, "_");
}

static bool is_float_text(const char *s)
{
    static const char *const special[] = {
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
        ".nan", ".NaN", ".NAN",
    };
    const char *dot, *e;

    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        if (strcmp(s, special[i]) == 0)
            return true;
    if (*s == '-' || *s == '+')
        s++;
    if ((dot = strchr(s, '.')) == NULL)
        return false;   /* PyYAML: "1e5" is a string */
    e = strpbrk(dot, "eE");
    if (e != NULL && !((e[1] == '-' || e[1] == '+') && all_digits(e + 2, "")))
        return false;
    for (const char *p = s; p < (e != NULL ? e : s + strlen(s)); p++)
        if (!((*p >= '0' && *p <= '9') || *p == '_' || p == dot || (*p == ':' && p < dot)))
            return false;   /* one '.' only: "0.12.0" is a string */
    return (dot > s && s[0] >= '0' && s[0] <= '9') || (dot == s && dot[1] >= '0' && dot[1] <= '9');
}

static bool is_time_text(const char *s)
{
    /* YYYY-M(M)-D(D) then end or a time part: enough to see a timestamp. */
    size_t i = 0;
    if (strspn(s, "0123456789") != 4 || s[4] != '-')
        return false;
    i = 5 + strspn(s + 5, "0123456789");
    if (i < 6 || i > 7 || s[i] != '-')
        return false;
    i += 1 + strspn(s + i + 1, "0123456789");
    return s[i] == '\0' || s[i] == 'T' || s[i] == 't' || s[i] == ' ';
}

enum manifest_ykind manifest_yaml_resolve(const char *s)
{
    static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
    static const char *const bools[] = {
        "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False",
        "FALSE", "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N",
    };
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp(s, nulls[i]) == 0)
            return MY_NULL;
    /* PyYAML's bool regexp has no y/n; keep them strings as it does. */
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]) - 4; i++)
        if (strcmp(s, bools[i]) == 0)
            return MY_BOOL;
    if (is_int_text(s))
        return MY_INT;
    if (is_float_text(s))
        return MY_FLOAT;
    if (is_time_text(s))
        return MY_TIME;
    return MY_STR;
}

/* Kind named by an explicit tag; -1 if the tag is not allowed. */
static int tag_kind(const char *tag)
{
    static const struct { const char *tag; enum manifest_ykind k; } tags[] = {
        { YAML_STR_TAG, MY_STR }, { YAML_INT_TAG, MY_INT }, { YAML_FLOAT_TAG, MY_FLOAT },
        { YAML_BOOL_TAG, MY_BOOL }, { YAML_NULL_TAG, MY_NULL }, { YAML_MAP_TAG, MY_MAP },
        { YAML_SEQ_TAG, MY_SEQ },
    };
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
        if (strcmp(tag, tags[i].tag) == 0)
            return (int)tags[i].k;
    return -1;
}

static int feature(struct fusion_diag *d, size_t line, const char *what)
{
    int rc = fusion_fail(d, FUSION_E_MANIFEST_YAML_FEATURE, 0, "line %zu: %s", line, what);
    if (d != NULL)
        d->line = line;
    return rc;
}

/* Attach `y` to the open container (or make it the root). Owns y on entry. */
static int tree_attach(struct ytree *t, struct manifest_ynode *y, struct fusion_diag *d)
{
    struct manifest_ynode *top = t->depth > 0 ? t->stack[t->depth - 1] : NULL;

    if (top == NULL) {
        if (t->root != NULL) {
            manifest_yaml_free(y);
            return feature(d, y->line, "more than one root node");
        }
        t->root = y;
        return 0;
    }
    if (top->n == top->cap) {
        size_t cap = top->cap ? top->cap * 2 : 8;
        struct manifest_ynode **k = realloc(top->kids, cap * sizeof(*k));
        if (k == NULL) {
            manifest_yaml_free(y);
            return fusion_fail(d, FUSION_E_NOMEM, 0, "out of memory reading plora.yml");
        }
        top->kids = k;
        top->cap = cap;
    }
    top->kids[top->n++] = y;
    return 0;
}

static int node_from_event(struct ytree *t, const yaml_event_t *ev, struct manifest_ynode **out,
                           struct fusion_diag *d)
{
    size_t line = ev->start_mark.line + 1;
    const yaml_char_t *tag = NULL;
    struct manifest_ynode *y;
    int k;

    *out = NULL;
    if (++t->nodes > MANIFEST_MAX_NODES)
        return fusion_fail(d, FUSION_E_MANIFEST_LIMIT, 0, "line %zu: more than %u YAML nodes",
                           line, (unsigned)MANIFEST_MAX_NODES);
    if ((y = calloc(1, sizeof(*y))) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "out of memory reading plora.yml");
    y->line = line;
    if (ev->type == YAML_SCALAR_EVENT) {
        size_t len = ev->data.scalar.length;
        tag = ev->data.scalar.plain_implicit || ev->data.scalar.quoted_implicit
                  ? NULL : ev->data.scalar.tag;
        if (len > MANIFEST_MAX_STR || memchr(ev->data.scalar.value, 0, len) != NULL) {
            free(y);
            return fusion_fail(d, len > MANIFEST_MAX_STR ? FUSION_E_MANIFEST_LIMIT
                                                         : FUSION_E_MANIFEST_VALUE, 0,
                               "line %zu: scalar of %zu bytes %s", line, len,
                               len > MANIFEST_MAX_STR ? "exceeds the cap" : "contains a NUL byte");
        }
        if ((y->s = malloc(len + 1)) == NULL) {
            free(y);
            return fusion_fail(d, FUSION_E_NOMEM, 0, "out of memory reading plora.yml");
        }
        memcpy(y->s, ev->data.scalar.value, len);
        y->s[len] = '\0';
        y->len = len;
        y->kind = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? manifest_yaml_resolve(y->s) : MY_STR;
        if (y->kind == MY_STR && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            (strcmp(y->s, "=") == 0 || strcmp(y->s, "<<") == 0)) {
            manifest_yaml_free(y);
            return feature(d, line, "YAML value/merge key ('=' or '<<') not allowed");
        }
    } else {
        tag = ev->type == YAML_MAPPING_START_EVENT
                  ? (ev->data.mapping_start.implicit ? NULL : ev->data.mapping_start.tag)
                  : (ev->data.sequence_start.implicit ? NULL : ev->data.sequence_start.tag);
        y->kind = ev->type == YAML_MAPPING_START_EVENT ? MY_MAP : MY_SEQ;
    }
    if (tag != NULL) {
        k = tag_kind((const char *)tag);
        if (k < 0 || ((k == MY_MAP || k == MY_SEQ) != (y->kind == MY_MAP || y->kind == MY_SEQ)) ||
            ((y->kind == MY_MAP || y->kind == MY_SEQ) && k != (int)y->kind)) {
            manifest_yaml_free(y);
            return feature(d, line, "explicit YAML tag not allowed here");
        }
        y->kind = (enum manifest_ykind)k;
    }
    *out = y;
    return 0;
}

static int tree_event(struct ytree *t, const yaml_event_t *ev, struct fusion_diag *d)
{
    struct manifest_ynode *y = NULL;
    int rc;

    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++t->docs > 1)
            return feature(d, ev->start_mark.line + 1, "more than one YAML document");
        return 0;
    case YAML_ALIAS_EVENT:
        return feature(d, ev->start_mark.line + 1, "YAML alias (*name) not allowed");
    case YAML_SCALAR_EVENT:
        if ((rc = node_from_event(t, ev, &y, d)) != 0)
            return rc;
        return tree_attach(t, y, d);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (t->depth >= MANIFEST_MAX_DEPTH)
            return fusion_fail(d, FUSION_E_MANIFEST_LIMIT, 0, "line %zu: nesting deeper than %d",
                               (size_t)ev->start_mark.line + 1, MANIFEST_MAX_DEPTH);
        if ((rc = node_from_event(t, ev, &y, d)) != 0 || (rc = tree_attach(t, y, d)) != 0)
            return rc;
        t->stack[t->depth++] = y;
        return 0;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        t->depth--;
        return 0;
    default:
        return 0;
    }
}

static int tree_build(const void *buf, size_t n, struct ytree *t, struct fusion_diag *d)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int rc = 0;
    bool done = false;

    if (!yaml_parser_initialize(&p))
        return fusion_fail(d, FUSION_E_NOMEM, 0, "out of memory starting the YAML parser");
    yaml_parser_set_input_string(&p, buf, n);
    while (rc == 0 && !done) {
        if (!yaml_parser_parse(&p, &ev)) {
            rc = fusion_fail(d, FUSION_E_MANIFEST_YAML, p.problem_offset,
                             "line %zu column %zu: %s%s%s", (size_t)p.problem_mark.line + 1,
                             (size_t)p.problem_mark.column + 1,
                             p.problem ? p.problem : "malformed YAML",
                             p.context ? " " : "", p.context ? p.context : "");
            if (d != NULL)
                d->line = p.problem_mark.line + 1;
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        rc = tree_event(t, &ev, d);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return rc;
}

const char *manifest_yaml_kind_name(enum manifest_ykind k)
{
    static const char *const names[] = { "string", "null", "bool", "int", "float",
                                         "timestamp", "mapping", "sequence" };
    return names[k];
}

/* Mapping keys must be unique scalars, everywhere in the document. */
static int check_keys(const struct manifest_ynode *y, struct fusion_diag *d)
{
    int rc;

    for (size_t i = 0; i < y->n; i++) {
        const struct manifest_ynode *k = y->kids[i];
        if (y->kind == MY_MAP && i % 2 == 0) {
            if (k->kind == MY_MAP || k->kind == MY_SEQ)
                return feature(d, k->line, "mapping key is not a scalar");
            for (size_t j = 0; j < i; j += 2)
                if (strcmp(y->kids[j]->s, k->s) == 0) {
                    rc = feature(d, k->line, "duplicate mapping key");
                    if (d != NULL) {
                        size_t used = strlen(d->msg);
                        snprintf(d->msg + used, sizeof(d->msg) - used, " '%.60s'", k->s);
                    }
                    return rc;
                }
        }
        if ((rc = check_keys(k, d)) != 0)
            return rc;
    }
    return 0;
}

/* Python's repr() of a finite double, as PyYAML writes it: shortest digits
 * that read back exactly; fixed notation for exponents -4..15, else
 * d.ddde+XX; a ".0" is added where Python's form has no '.'. */
void manifest_yaml_float(double v, char out[48])
{
    char sci[40], digits[20];
    int prec, exp10, nd = 0, o = 0;
    const char *p;

    if (v == 0.0) {
        snprintf(out, 48, "%s", signbit(v) ? "-0.0" : "0.0");
        return;
    }
    for (prec = 1; prec <= 17; prec++) {
        snprintf(sci, sizeof(sci), "%.*e", prec - 1, v);
        if (strtod(sci, NULL) == v)
            break;
    }
    for (p = sci + (sci[0] == '-'); *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    exp10 = atoi(p + 1);
    if (v < 0)
        out[o++] = '-';
    if (exp10 < -4 || exp10 >= 16) {
        out[o++] = digits[0];
        out[o++] = '.';
        for (int i = 1; i < nd; i++)
            out[o++] = digits[i];
        if (nd == 1)
            out[o++] = '0';
        snprintf(out + o, (size_t)(48 - o), "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
        return;
    }
    if (exp10 < 0) {
        out[o++] = '0', out[o++] = '.';
        for (int i = 0; i < -exp10 - 1; i++)
            out[o++] = '0';
        for (int i = 0; i < nd; i++)
            out[o++] = digits[i];
    } else {
        for (int i = 0; i <= exp10; i++)
            out[o++] = i < nd ? digits[i] : '0';
        out[o++] = '.';
        if (nd <= exp10 + 1)
            out[o++] = '0';
        for (int i = exp10 + 1; i < nd; i++)
            out[o++] = digits[i];
    }
    out[o] = '\0';
}

int manifest_yaml_load(const void *buf, size_t n, struct manifest_ynode **root,
                       struct fusion_diag *d)
{
    struct ytree t = { .root = NULL };
    int rc;

    *root = NULL;
    if ((rc = tree_build(buf, n, &t, d)) != 0 ||
        (t.root != NULL && (rc = check_keys(t.root, d)) != 0)) {
        manifest_yaml_free(t.root);
        return rc;
    }
    *root = t.root;
    return 0;
}
