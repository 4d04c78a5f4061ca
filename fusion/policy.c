/* fusion/policy.c: policy YAML -> struct policy (libyaml document API).
 *
 * The root must be a mapping of known keys; values are typed strictly (a
 * quoted "8" is a string, not a rank). Duplicate keys and extra documents are
 * refused: two readings of one file must not be possible.
 */
#include "policy.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct ctx {
    yaml_document_t *doc;
    struct policy *p;
    const char *base_dir;
    struct fusion_diag *d;
};

static int fail_at(struct ctx *c, yaml_node_t *n, const char *fmt, const char *key, const char *what)
{
    int rc = fusion_fail(c->d, FUSION_E_POLICY_FIELD, n ? n->start_mark.index : 0, fmt, key, what);

    if (c->d != NULL && n != NULL)
        c->d->line = n->start_mark.line + 1;
    return rc;
}

static const char *scalar(yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool plain(yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static int get_int(struct ctx *c, yaml_node_t *n, const char *key, long long lo, long long hi,
                   long long *out)
{
    const char *s = scalar(n);
    char *end = NULL;

    if (!plain(n) || s[0] == '\0')
        return fail_at(c, n, "%s: %s", key, "want a plain integer");
    errno = 0;
    *out = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || *out < lo || *out > hi) {
        char what[96];
        snprintf(what, sizeof(what), "\"%.24s\" is not an integer in %lld..%lld", s, lo, hi);
        return fail_at(c, n, "%s: %s", key, what);
    }
    return 0;
}

static int get_double(struct ctx *c, yaml_node_t *n, const char *key, double *out)
{
    const char *s = scalar(n);
    char *end = NULL;

    if (!plain(n) || s[0] == '\0')
        return fail_at(c, n, "%s: %s", key, "want a plain number");
    *out = strtod(s, &end);
    if (*end != '\0' || !isfinite(*out) || *out < 0)
        return fail_at(c, n, "%s: %s", key, "want a finite number >= 0");
    return 0;
}

static int get_bool(struct ctx *c, yaml_node_t *n, const char *key, bool *out)
{
    static const char *const yes[] = { "true", "True", "TRUE", "yes", "on" };
    static const char *const no[] = { "false", "False", "FALSE", "no", "off" };
    const char *s = scalar(n);

    for (size_t i = 0; plain(n) && i < 5; i++) {
        if (strcmp(s, yes[i]) == 0) { *out = true; return 0; }
        if (strcmp(s, no[i]) == 0) { *out = false; return 0; }
    }
    return fail_at(c, n, "%s: %s", key, "want true or false");
}

static int get_string(struct ctx *c, yaml_node_t *n, const char *key, char **out)
{
    if (scalar(n) == NULL || scalar(n)[0] == '\0')
        return fail_at(c, n, "%s: %s", key, "want a non-empty string");
    free(*out);
    if ((*out = strdup(scalar(n))) == NULL)
        return fusion_fail(c->d, FUSION_E_NOMEM, 0, "no memory for %s", key);
    return 0;
}

/* Items of a sequence node; NULL (and an error) if n is not one. */
static yaml_node_item_t *items(struct ctx *c, yaml_node_t *n, const char *key, size_t *count, int *rc)
{
    *rc = 0;
    if (n == NULL || n->type != YAML_SEQUENCE_NODE) {
        *rc = fail_at(c, n, "%s: %s", key, "want a list");
        return NULL;
    }
    *count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (*count > POLICY_MAX_LIST) {
        *rc = fail_at(c, n, "%s: %s", key, "list too long");
        return NULL;
    }
    return n->data.sequence.items.start;
}

static int get_strings(struct ctx *c, yaml_node_t *n, const char *key, char ***out, size_t *count)
{
    size_t k;
    int rc;
    yaml_node_item_t *it = items(c, n, key, &k, &rc);

    if (it == NULL)
        return rc;
    if ((*out = calloc(k + 1, sizeof(char *))) == NULL)
        return fusion_fail(c->d, FUSION_E_NOMEM, 0, "no memory for %s", key);
    for (*count = 0; *count < k; (*count)++)
        if ((rc = get_string(c, yaml_document_get_node(c->doc, it[*count]), key, &(*out)[*count])) != 0)
            return rc;
    return 0;
}

static int get_ints(struct ctx *c, yaml_node_t *n, const char *key, long long lo, long long hi,
                    long long **out, size_t *count)
{
    size_t k;
    int rc;
    yaml_node_item_t *it = items(c, n, key, &k, &rc);

    if (it == NULL)
        return rc;
    if ((*out = calloc(k + 1, sizeof(long long))) == NULL)
        return fusion_fail(c->d, FUSION_E_NOMEM, 0, "no memory for %s", key);
    for (*count = 0; *count < k; (*count)++)
        if ((rc = get_int(c, yaml_document_get_node(c->doc, it[*count]), key, lo, hi, &(*out)[*count])) != 0)
            return rc;
    return 0;
}

/* base_dir + "/" + rel unless rel is absolute. */
static int resolve(struct ctx *c, const char *key, char **path)
{
    char *r;
    size_t n;

    if ((*path)[0] == '/' || c->base_dir == NULL)
        return 0;
    n = strlen(c->base_dir) + strlen(*path) + 2;
    if ((r = malloc(n)) == NULL)
        return fusion_fail(c->d, FUSION_E_NOMEM, 0, "no memory for %s", key);
    snprintf(r, n, "%s/%s", c->base_dir, *path);
    free(*path);
    *path = r;
    return 0;
}

static int set_ranks(struct ctx *c, yaml_node_t *v)
{
    long long *r = NULL;
    size_t n = 0;
    int rc = get_ints(c, v, "allowed_ranks", 1, 1 << 20, &r, &n);

    if (rc == 0 && (c->p->allowed_ranks = calloc(n + 1, sizeof(unsigned))) == NULL)
        rc = fusion_fail(c->d, FUSION_E_NOMEM, 0, "no memory for allowed_ranks");
    for (size_t i = 0; rc == 0 && i < n; i++)
        c->p->allowed_ranks[i] = (unsigned)r[i];
    if (rc == 0) {
        c->p->n_allowed_ranks = n;
        c->p->has_allowed_ranks = true;
    }
    free(r);
    return rc;
}

static int set_probe(struct ctx *c, yaml_node_t *v);

/* One top-level key. */
static int set_key(struct ctx *c, const char *k, yaml_node_t *v)
{
    struct policy *p = c->p;
    long long x;
    int rc;

    if (strcmp(k, "base_model") == 0)
        return get_string(c, v, k, &p->base_model);
    if (strcmp(k, "allowed_ranks") == 0)
        return set_ranks(c, v);
    if (strcmp(k, "allowed_targets") == 0 || strcmp(k, "allowed_target_modules") == 0) {
        if (p->has_allowed_targets)
            return fail_at(c, v, "%s: %s", k, "allowed targets given twice (alias)");
        p->has_allowed_targets = true;
        return get_strings(c, v, k, &p->allowed_targets, &p->n_allowed_targets);
    }
    if (strcmp(k, "max_size_bytes") == 0 || strcmp(k, "min_size_bytes") == 0) {
        if ((rc = get_int(c, v, k, 0, LLONG_MAX, &x)) == 0)
            *(strcmp(k, "max_size_bytes") == 0 ? &p->max_size_bytes : &p->min_size_bytes) = (uint64_t)x;
        return rc;
    }
    if (strcmp(k, "require_manifest") == 0)
        return get_bool(c, v, k, &p->require_manifest);
    if (strcmp(k, "check_finite") == 0)
        return get_bool(c, v, k, &p->check_finite);
    if (strcmp(k, "norm_z_threshold") == 0)
        return get_double(c, v, k, &p->norm_z_threshold);
    if (strcmp(k, "signatures_required") == 0 || strcmp(k, "signatures_enabled") == 0)
        return get_bool(c, v, k, &p->signatures_required);
    if (strcmp(k, "quorum") == 0 || strcmp(k, "quorum_required") == 0) {
        if ((rc = get_int(c, v, k, 1, 1 << 20, &x)) == 0)
            p->quorum = (unsigned)x;
        return rc;
    }
    if (strcmp(k, "keyring") == 0)
        return (rc = get_string(c, v, k, &p->keyring_dir)) != 0 ? rc : resolve(c, k, &p->keyring_dir);
    if (strcmp(k, "trusted_public_keys") == 0) {
        if ((rc = get_strings(c, v, k, &p->trusted_keys, &p->n_trusted_keys)) != 0)
            return rc;
        for (size_t i = 0; i < p->n_trusted_keys; i++)
            if ((rc = resolve(c, k, &p->trusted_keys[i])) != 0)
                return rc;
        return 0;
    }
    if (strcmp(k, "max_vote_age_s") == 0) {
        if ((rc = get_int(c, v, k, 0, LLONG_MAX, &x)) == 0)
            p->max_vote_age_s = x;
        return rc;
    }
    if (strcmp(k, "threshold_mode") == 0) {
        bool ignored;
        return get_bool(c, v, k, &ignored);
    }
    if (strcmp(k, "probe") == 0)
        return set_probe(c, v);
    return fail_at(c, v, "unknown key \"%.60s\"%s", k, " (see fusion/policy.h for the keys)");
}

static int set_probe_key(struct ctx *c, const char *k, yaml_node_t *v)
{
    struct policy_probe *pr = &c->p->probe;
    long long *codes = NULL, t;
    size_t n = 0;
    int rc;

    if (strcmp(k, "argv") == 0) {
        if ((rc = get_strings(c, v, "probe.argv", &pr->argv, &pr->argc)) == 0 && pr->argc == 0)
            rc = fail_at(c, v, "%s: %s", "probe.argv", "want at least the program");
        return rc;
    }
    if (strcmp(k, "timeout_s") == 0) {
        if ((rc = get_int(c, v, "probe.timeout_s", 1, 86400, &t)) == 0)
            pr->timeout_ms = (unsigned)t * 1000u;
        return rc;
    }
    if (strcmp(k, "accept_exit_codes") != 0)
        return fail_at(c, v, "probe: unknown key \"%.60s\"%s", k, " (argv, timeout_s, accept_exit_codes)");
    if ((rc = get_ints(c, v, "probe.accept_exit_codes", 0, 255, &codes, &n)) == 0 && n == 0)
        rc = fail_at(c, v, "%s: %s", "probe.accept_exit_codes",
                     "empty list: no exit code could pass (omit the key for [0])");
    if (rc == 0) {
        free(pr->accept);
        if ((pr->accept = calloc(n + 1, sizeof(int))) == NULL)
            rc = fusion_fail(c->d, FUSION_E_NOMEM, 0, "no memory for probe");
        for (size_t i = 0; rc == 0 && i < n; i++)
            pr->accept[i] = (int)codes[i];
        pr->n_accept = rc == 0 ? n : 0;
    }
    free(codes);
    return rc;
}

/* Walk a mapping node; refuse non-scalar and duplicate keys. */
static int walk_map(struct ctx *c, yaml_node_t *m, const char *what,
                    int (*fn)(struct ctx *, const char *, yaml_node_t *))
{
    yaml_node_pair_t *a, *b;
    int rc;

    if (m == NULL || m->type != YAML_MAPPING_NODE)
        return fail_at(c, m, "%s: %s", what, "want a mapping of keys to values");
    for (a = m->data.mapping.pairs.start; a < m->data.mapping.pairs.top; a++) {
        const char *k = scalar(yaml_document_get_node(c->doc, a->key));
        if (k == NULL)
            return fail_at(c, m, "%s: %s", what, "a key is not a string");
        for (b = m->data.mapping.pairs.start; b < a; b++)
            if (strcmp(k, scalar(yaml_document_get_node(c->doc, b->key))) == 0)
                return fail_at(c, yaml_document_get_node(c->doc, a->key), "duplicate key \"%.60s\"%s",
                               k, "");
        if ((rc = fn(c, k, yaml_document_get_node(c->doc, a->value))) != 0)
            return rc;
    }
    return 0;
}

static int set_probe(struct ctx *c, yaml_node_t *v)
{
    struct policy_probe *pr = &c->p->probe;
    int rc;

    pr->timeout_ms = 30000;
    if ((rc = walk_map(c, v, "probe", set_probe_key)) != 0)
        return rc;
    if (pr->argc == 0)
        return fail_at(c, v, "%s: %s", "probe", "argv missing");
    if (pr->accept == NULL) {
        if ((pr->accept = calloc(1, sizeof(int))) == NULL)
            return fusion_fail(c->d, FUSION_E_NOMEM, 0, "no memory for probe");
        pr->n_accept = 1;  /* exit 0 */
    }
    c->p->has_probe = true;
    return 0;
}

static int load_doc(struct ctx *c, const char *text, size_t len)
{
    yaml_parser_t parser;
    yaml_document_t extra;
    yaml_node_t *root;
    int rc = 0;

    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, c->doc)) {
        rc = fusion_fail(c->d, FUSION_E_POLICY_YAML, parser.problem_mark.index, "line %zu column %zu: %s",
                         parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                         parser.problem ? parser.problem : "syntax error");
        if (c->d != NULL)
            c->d->line = parser.problem_mark.line + 1;
        c->doc = NULL;
        goto out;
    }
    if ((root = yaml_document_get_root_node(c->doc)) != NULL) {
        if (!yaml_parser_load(&parser, &extra)) {
            rc = fusion_fail(c->d, FUSION_E_POLICY_YAML, 0, "syntax error after the first document");
        } else {
            if (yaml_document_get_root_node(&extra) != NULL)
                rc = fusion_fail(c->d, FUSION_E_POLICY_YAML, 0, "more than one YAML document");
            yaml_document_delete(&extra);
        }
        if (rc == 0)
            rc = walk_map(c, root, "policy", set_key);
    }
out:
    yaml_parser_delete(&parser);
    return rc;
}

int policy_parse(struct policy **out, const char *text, size_t len, const char *base_dir,
                 struct fusion_diag *d)
{
    yaml_document_t doc;
    struct ctx c = { .doc = &doc, .base_dir = base_dir, .d = d };
    int rc;

    *out = NULL;
    if (len > POLICY_MAX_BYTES)
        return fusion_fail(d, FUSION_E_POLICY_YAML, 0, "%zu bytes, cap %u", len, POLICY_MAX_BYTES);
    if ((c.p = calloc(1, sizeof(*c.p))) == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "no memory for a policy");
    c.p->min_size_bytes = 1;
    c.p->check_finite = true;
    c.p->norm_z_threshold = POLICY_DEFAULT_Z;
    c.p->quorum = 1;
    rc = load_doc(&c, text, len);
    if (c.doc != NULL)
        yaml_document_delete(c.doc);
    if (rc == 0 && c.p->max_size_bytes != 0 && c.p->min_size_bytes > c.p->max_size_bytes)
        rc = fusion_fail(d, FUSION_E_POLICY_FIELD, 0, "min_size_bytes %llu > max_size_bytes %llu",
                         (unsigned long long)c.p->min_size_bytes, (unsigned long long)c.p->max_size_bytes);
    if (rc != 0) {
        policy_free(c.p);
        return rc;
    }
    *out = c.p;
    return 0;
}

int policy_load(struct policy **out, const char *path, struct fusion_diag *d)
{
    char *buf = NULL, *dir = NULL, *slash;
    size_t n;
    FILE *f;
    int rc;

    *out = NULL;
    if ((f = fopen(path, "rb")) == NULL)
        return fusion_fail(d, FUSION_E_IO, 0, "%s: %s", path, strerror(errno));
    if ((buf = malloc(POLICY_MAX_BYTES + 1)) == NULL || (dir = strdup(path)) == NULL) {
        rc = fusion_fail(d, FUSION_E_NOMEM, 0, "no memory to read %s", path);
        goto out;
    }
    n = fread(buf, 1, POLICY_MAX_BYTES + 1, f);
    if (ferror(f)) {
        rc = fusion_fail(d, FUSION_E_IO, 0, "%s: read error", path);
        goto out;
    }
    slash = strrchr(dir, '/');
    if (slash != NULL)
        slash[slash == dir ? 1 : 0] = '\0';
    rc = policy_parse(out, buf, n, slash != NULL ? dir : ".", d);
out:
    free(buf);
    free(dir);
    fclose(f);
    return rc;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i]);
    free(v);
}

void policy_free(struct policy *p)
{
    if (p == NULL)
        return;
    free(p->base_model);
    free(p->allowed_ranks);
    free_strings(p->allowed_targets, p->n_allowed_targets);
    free(p->keyring_dir);
    free_strings(p->trusted_keys, p->n_trusted_keys);
    free_strings(p->probe.argv, p->probe.argc);
    free(p->probe.accept);
    free(p);
}
