/* daemon/config.c: plorad's YAML configuration file and command line.
 *
 * One table (fields[]) names every section.key, its type, its range and its
 * place in struct config; the YAML walk, the flags and the messages all read
 * it, so a field cannot be parsed one way and reported another. Messages
 * name the file, the line, section.key, the value and what is allowed. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "log.h"

#define CONFIG_FILE_MAX (1u << 20)   /* bytes; a config file is small */
#define VALUE_SHOWN 80u              /* bytes of a bad value quoted in a message */

enum ftype {
    F_PATH,      /* non-empty path, relative to the config file */
    F_PATH_OPT,  /* path or "" (off / built-in) */
    F_ADDR,      /* host:port */
    F_ADDR_OPT,  /* host:port or "" (off) */
    F_NAME,      /* [a-z0-9][a-z0-9._-]{0,63} */
    F_LEVEL,     /* error|warn|info|debug */
    F_ADDRS,     /* list of host:port, port 1..65535 */
    F_PATHS,     /* list of paths */
    F_TOPO,      /* er|ws|ba */
    F_WEIGHTS,   /* uniform|fisher */
    F_U32, F_U64, F_DBL, F_BOOL,
};

struct field {
    const char *sec, *key;
    enum ftype t;
    size_t off;            /* of the value (array for lists) in struct config */
    size_t noff;           /* lists: of the size_t count */
    uint64_t lo, hi;       /* integers */
    double dlo, dhi;       /* doubles */
};

#define O(f) offsetof(struct config, f)
#define S(sec, key, t, f) { sec, key, t, O(f), 0, 0, 0, 0, 0 }
#define L(sec, key, t, f, n) { sec, key, t, O(f), O(n), 0, 0, 0, 0 }
#define I(sec, key, t, f, lo, hi) { sec, key, t, O(f), 0, lo, hi, 0, 0 }
#define D(sec, key, f, lo, hi) { sec, key, F_DBL, O(f), 0, 0, 0, lo, hi }
static const struct field fields[] = {
    S("node", "data", F_PATH, data),
    S("node", "listen", F_ADDR, listen),
    S("node", "http", F_ADDR_OPT, http),
    S("node", "key", F_PATH, key),
    S("node", "keyring", F_PATH, keyring),
    S("node", "policy", F_PATH_OPT, policy),
    S("node", "name", F_NAME, name),
    S("node", "log_level", F_LEVEL, log_level),
    L("node", "join", F_ADDRS, join, n_join),
    L("node", "publish", F_PATHS, publish, n_publish),
    S("node", "publish_domain", F_NAME, publish_domain),
    S("node", "ready_file", F_PATH_OPT, ready_file),
    S("overlay", "topology", F_TOPO, topology),
    I("overlay", "seed", F_U64, seed, 0, UINT64_MAX),
    D("overlay", "p", p, 0.0, 1.0),
    I("overlay", "k", F_U32, k, 2, 1024),
    D("overlay", "beta", beta, 0.0, 1.0),
    I("overlay", "m", F_U32, m, 1, 1024),
    I("gossip", "round_ms", F_U32, round_ms, 10, 3600000),
    I("gossip", "chunk_size", F_U32, chunk_size, 4096, 1048576),
    I("gossip", "quorum", F_U32, quorum, 1, 1024),
    S("gossip", "push", F_BOOL, push),
    I("gossip", "handshake_ms", F_U32, handshake_ms, 100, 600000),
    I("gossip", "idle_ms", F_U32, idle_ms, 100, 86400000),
    I("gossip", "frame_ms", F_U32, frame_ms, 100, 3600000),
    I("gossip", "stall_ms", F_U32, stall_ms, 100, 3600000),
    I("gossip", "max_peers", F_U32, max_peers, 1, 65536),
    I("gossip", "ban_strikes", F_U32, ban_strikes, 1, 1000),
    I("gossip", "ban_ms", F_U32, ban_ms, 0, 86400000),
    I("gossip", "write_queue_bytes", F_U64, write_queue_bytes, 65536, UINT64_C(1) << 32),
    S("merge", "enabled", F_BOOL, merge_enabled),
    D("merge", "tau_rel", tau_rel, 0.0, 1e6),
    D("merge", "tau", tau, 0.0, 1e12),
    I("merge", "rank", F_U32, rank, 0, 4096),
    D("merge", "kld_budget", kld_budget, 0.0, 1e12),
    S("merge", "weights", F_WEIGHTS, weights),
    I("audit", "checkpoint_every", F_U32, checkpoint_every, 1, 1000000),
    I("audit", "group_ms", F_U32, group_ms, 0, 10000),
};
#undef O
#undef S
#undef L
#undef I
#undef D
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static const char *const sections[] = { "node", "overlay", "gossip", "merge", "audit" };
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

/* Where a value came from, for messages and relative paths. */
struct src {
    const char *where;     /* "node.yml:7" or "--quorum" */
    const char *base_dir;  /* NULL or "": paths stay as given */
};

static const char *const topo_names[] = { "er", "ws", "ba" };
static const char *const weight_names[] = { "uniform", "fisher" };

const char *config_topology_name(enum config_topology t)
{
    return (unsigned)t < 3 ? topo_names[t] : "?";
}

static void *at(struct config *c, size_t off)
{
    return (char *)c + off;
}

/* Replace the string at *slot by a copy of s. Returns 0 or DMN_E_NOMEM. */
static int set_str(char **slot, const char *s)
{
    char *p = strdup(s);

    if (p == NULL)
        return DMN_E_NOMEM;
    free(*slot);
    *slot = p;
    return 0;
}

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    c->log_level = LOG_INFO;
    c->topology = CONFIG_TOPO_WS;
    c->seed = 1;
    c->p = 0.0, c->k = 4, c->beta = 0.2, c->m = 2;
    c->round_ms = 1000, c->chunk_size = 262144, c->quorum = 1, c->push = true;
    c->handshake_ms = 10000, c->idle_ms = 60000, c->frame_ms = 30000, c->stall_ms = 30000;
    c->max_peers = 256, c->ban_strikes = 3, c->ban_ms = 300000;
    c->write_queue_bytes = 4194304;
    c->merge_enabled = true, c->tau_rel = 1.0, c->tau = 0, c->rank = 0, c->kld_budget = 0;
    c->weights = CONFIG_W_UNIFORM;
    c->checkpoint_every = 1000, c->group_ms = 5;
    /* strdup failures leave NULL; config_check reports them as missing */
    c->path = strdup("");
    c->listen = strdup("127.0.0.1:7400");
    c->http = strdup("127.0.0.1:0");
    c->name = strdup("node-0");
    c->publish_domain = strdup("general");
    c->ready_file = strdup("");
}

void config_free(struct config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_join; i++)
        free(c->join[i]);
    for (size_t i = 0; i < c->n_publish; i++)
        free(c->publish[i]);
    free(c->path), free(c->data), free(c->listen), free(c->http), free(c->key);
    free(c->keyring), free(c->policy), free(c->name), free(c->ready_file);
    free(c->publish_domain);
    memset(c, 0, sizeof(*c));
}

/* ---- address syntax ---------------------------------------------------- */

static bool hostname_ok(const char *h)
{
    size_t label = 0, n = strlen(h);

    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i <= n; i++) {
        char ch = h[i];
        if (ch == '.' || ch == '\0') {
            if (label == 0 || h[i - 1] == '-')
                return false;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || (ch == '-' && label > 0)) {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return true;
}

/* A host made of digits and dots only must be a dotted IPv4 literal. */
static int host_check(const char *h, struct dmn_diag *d)
{
    unsigned char buf[16];

    if (h[0] == '\0')
        return dmn_fail(d, DMN_E_ARG, "host is empty");
    if (strspn(h, "0123456789.") == strlen(h))
        return inet_pton(AF_INET, h, buf) == 1
                   ? 0 : dmn_fail(d, DMN_E_ARG, "\"%s\" is not a dotted IPv4 address", h);
    if (strchr(h, ':') != NULL)
        return dmn_fail(d, DMN_E_ARG, "IPv6 address \"%s\" must be written [addr]:port", h);
    return hostname_ok(h) ? 0 : dmn_fail(d, DMN_E_ARG, "\"%s\" is not a valid host name", h);
}

static int port_parse(const char *s, unsigned *port, struct dmn_diag *d)
{
    unsigned long v;

    if (s[0] == '\0' || strlen(s) > 5 || strspn(s, "0123456789") != strlen(s))
        return dmn_fail(d, DMN_E_ARG, "port \"%s\" is not a number in 0..65535", s);
    v = strtoul(s, NULL, 10);
    if (v > 65535)
        return dmn_fail(d, DMN_E_ARG, "port %lu is outside 0..65535", v);
    *port = (unsigned)v;
    return 0;
}

int config_addr_split(const char *addr, char *host, size_t cap, unsigned *port, struct dmn_diag *d)
{
    const char *colon, *hs = addr;
    size_t hn;
    unsigned char buf[16];

    if (addr == NULL || addr[0] == '\0')
        return dmn_fail(d, DMN_E_ARG, "address is empty (want host:port)");
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end == NULL || end[1] != ':')
            return dmn_fail(d, DMN_E_ARG, "\"%s\" is not [IPv6]:port", addr);
        hs = addr + 1, hn = (size_t)(end - hs), colon = end + 1;
    } else {
        if ((colon = strrchr(addr, ':')) == NULL)
            return dmn_fail(d, DMN_E_ARG, "\"%s\" has no port (want host:port)", addr);
        hn = (size_t)(colon - addr);
    }
    if (hn + 1 > cap)
        return dmn_fail(d, DMN_E_ARG, "host of \"%s\" is too long", addr);
    memcpy(host, hs, hn);
    host[hn] = '\0';
    if (addr[0] == '[' && inet_pton(AF_INET6, host, buf) != 1)
        return dmn_fail(d, DMN_E_ARG, "\"%s\" is not an IPv6 address", host);
    if (addr[0] != '[' && host_check(host, d) != 0)
        return DMN_E_ARG;
    return port_parse(colon + 1, port, d);
}

/* ---- one value ----------------------------------------------------------- */

struct vctx {
    const struct src *s;
    const struct field *f;
    const char *v;
    struct dmn_diag *d;
};

static int vfail(const struct vctx *x, const char *problem)
{
    char shown[VALUE_SHOWN + 4];

    log_sanitize(shown, sizeof(shown), x->v, strlen(x->v), VALUE_SHOWN);
    return dmn_fail(x->d, DMN_E_CONFIG_FIELD, "%s: %s.%s: \"%s\" %s", x->s->where, x->f->sec,
                    x->f->key, shown, problem);
}

static int set_uint(struct config *c, const struct vctx *x)
{
    const struct field *f = x->f;
    char msg[128];
    unsigned long long v;
    char *end;

    if (x->v[0] < '0' || x->v[0] > '9') {
        snprintf(msg, sizeof(msg), "is not an integer (allowed %" PRIu64 "..%" PRIu64 ")", f->lo, f->hi);
        return vfail(x, msg);
    }
    errno = 0;
    v = strtoull(x->v, &end, 10);
    if (*end != '\0') {
        snprintf(msg, sizeof(msg), "is not an integer (allowed %" PRIu64 "..%" PRIu64 ")", f->lo, f->hi);
        return vfail(x, msg);
    }
    if (errno == ERANGE || v < f->lo || v > f->hi)
        return dmn_fail(x->d, DMN_E_CONFIG_FIELD, "%s: %s.%s: %s is outside %" PRIu64 "..%" PRIu64,
                        x->s->where, f->sec, f->key, x->v, f->lo, f->hi);
    if (f->t == F_U32)
        *(uint32_t *)at(c, f->off) = (uint32_t)v;
    else
        *(uint64_t *)at(c, f->off) = (uint64_t)v;
    return 0;
}

static int set_double(struct config *c, const struct vctx *x)
{
    const struct field *f = x->f;
    char msg[128];
    double v;
    char *end;

    errno = 0;
    v = strtod(x->v, &end);
    if (x->v[0] == '\0' || *end != '\0' || !isfinite(v)) {
        snprintf(msg, sizeof(msg), "is not a finite number (allowed %g..%g)", f->dlo, f->dhi);
        return vfail(x, msg);
    }
    if (v < f->dlo || v > f->dhi)
        return dmn_fail(x->d, DMN_E_CONFIG_FIELD, "%s: %s.%s: %s is outside %g..%g", x->s->where,
                        f->sec, f->key, x->v, f->dlo, f->dhi);
    *(double *)at(c, f->off) = v;
    return 0;
}

static int set_bool(struct config *c, const struct vctx *x)
{
    static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "on", "On" };
    static const char *const no[] = { "false", "False", "FALSE", "no", "No", "off", "Off" };

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(x->v, yes[i]) == 0 || strcmp(x->v, no[i]) == 0) {
            *(bool *)at(c, x->f->off) = strcmp(x->v, yes[i]) == 0;
            return 0;
        }
    }
    return vfail(x, "is not a boolean (allowed true or false)");
}

/* Index of v in names[0..n), or -1. */
static int pick(const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return -1;
}

static int set_enum(struct config *c, const struct vctx *x)
{
    int i;

    switch (x->f->t) {
    case F_TOPO:
        if ((i = pick(x->v, topo_names, 3)) < 0)
            return vfail(x, "is not a topology (allowed er, ws, ba)");
        c->topology = (enum config_topology)i;
        return 0;
    case F_WEIGHTS:
        if ((i = pick(x->v, weight_names, 2)) < 0)
            return vfail(x, "is not a weighting (allowed uniform, fisher)");
        c->weights = (enum config_weights)i;
        return 0;
    default:
        if ((i = log_level_parse(x->v)) < 0)
            return vfail(x, "is not a log level (allowed error, warn, info, debug)");
        c->log_level = i;
        return 0;
    }
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* Checks an address; port_min 1 for peers to dial, 0 where 0 = any port. */
static int addr_check(const struct vctx *x, unsigned port_min)
{
    char host[256], msg[sizeof(((struct dmn_diag *)0)->msg) + 128];
    struct dmn_diag ad;
    unsigned port;

    if (config_addr_split(x->v, host, sizeof(host), &port, &ad) != 0) {
        snprintf(msg, sizeof(msg), "is not host:port (%s; host is an IPv4 address, localhost, "
                 "a host name or [IPv6])", ad.msg);
        return vfail(x, msg);
    }
    if (port < port_min)
        return vfail(x, "has port 0 (allowed 1..65535 for a peer to dial)");
    return 0;
}

/* A path value, joined to the config file's directory when relative. */
static int resolve(const struct vctx *x, char **out)
{
    const char *b = x->s->base_dir;
    size_t n;

    if (x->v[0] == '/' || b == NULL || b[0] == '\0' || strcmp(b, ".") == 0)
        *out = strdup(x->v);
    else if ((*out = malloc((n = strlen(b) + strlen(x->v) + 2))) != NULL)
        snprintf(*out, n, "%s/%s", b, x->v);
    return *out != NULL ? 0 : dmn_fail(x->d, DMN_E_NOMEM, "%s: out of memory", x->s->where);
}

static int set_string(struct config *c, const struct vctx *x)
{
    char **slot = at(c, x->f->off), *p = NULL;
    int rc;

    switch (x->f->t) {
    case F_PATH:
        if (x->v[0] == '\0')
            return vfail(x, "is empty (want a path)");
        break;
    case F_ADDR:
        if ((rc = addr_check(x, 0)) != 0)
            return rc;
        break;
    case F_ADDR_OPT:
        if (x->v[0] != '\0' && (rc = addr_check(x, 0)) != 0)
            return rc;
        break;
    case F_NAME:
        if (!name_ok(x->v))
            return vfail(x, "is not a name (allowed [a-z0-9][a-z0-9._-]{0,63})");
        break;
    default:
        break;
    }
    if (x->f->t == F_PATH || (x->f->t == F_PATH_OPT && x->v[0] != '\0')) {
        if ((rc = resolve(x, &p)) != 0)
            return rc;
    } else if ((p = strdup(x->v)) == NULL) {
        return dmn_fail(x->d, DMN_E_NOMEM, "%s: out of memory", x->s->where);
    }
    if (x->f->t == F_PATH_OPT && x->v[0] == '\0' && strcmp(x->f->key, "policy") == 0) {
        free(p);   /* policy: "" = built-in default */
        p = NULL;
    }
    free(*slot);
    *slot = p;
    return 0;
}

/* Append one item to a list field (after checking it). */
static int list_add(struct config *c, const struct vctx *x)
{
    size_t *n = at(c, x->f->noff);
    char **arr = at(c, x->f->off), *p = NULL;
    char msg[96];
    int rc;

    if (*n >= CONFIG_LIST_MAX) {
        snprintf(msg, sizeof(msg), "is one item too many (at most %u)", CONFIG_LIST_MAX);
        return vfail(x, msg);
    }
    if (x->f->t == F_ADDRS)
        rc = addr_check(x, 1) != 0 ? DMN_E_CONFIG_FIELD
             : (p = strdup(x->v)) == NULL ? dmn_fail(x->d, DMN_E_NOMEM, "out of memory") : 0;
    else
        rc = x->v[0] == '\0' ? vfail(x, "is empty (want a path)") : resolve(x, &p);
    if (rc != 0)
        return rc;
    arr[(*n)++] = p;
    return 0;
}

static void list_clear(struct config *c, const struct field *f)
{
    size_t *n = at(c, f->noff);
    char **arr = at(c, f->off);

    for (size_t i = 0; i < *n; i++) {
        free(arr[i]);
        arr[i] = NULL;
    }
    *n = 0;
}

/* Set a scalar field (not a list) from its text. */
static int set_value(struct config *c, const struct vctx *x)
{
    switch (x->f->t) {
    case F_U32:
    case F_U64: return set_uint(c, x);
    case F_DBL: return set_double(c, x);
    case F_BOOL: return set_bool(c, x);
    case F_TOPO:
    case F_WEIGHTS:
    case F_LEVEL: return set_enum(c, x);
    case F_ADDRS:
    case F_PATHS:
        list_clear(c, x->f);
        return list_add(c, x);
    default: return set_string(c, x);
    }
}

static const struct field *field_find(const char *sec, const char *key)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (strcmp(fields[i].sec, sec) == 0 && strcmp(fields[i].key, key) == 0)
            return &fields[i];
    return NULL;
}

/* "round_ms, chunk_size, ..." for a section. */
static void keys_of(const char *sec, char *out, size_t cap)
{
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < NFIELDS && n < cap; i++)
        if (strcmp(fields[i].sec, sec) == 0)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", fields[i].key);
}

/* ---- YAML walk ----------------------------------------------------------- */

struct walk {
    struct config *c;
    yaml_document_t *doc;
    const char *name, *base_dir;
    struct dmn_diag *d;
};

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* A plain empty scalar, "~" or "null": YAML's null. */
static bool is_null(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (scalar(n)[0] == '\0' || strcmp(scalar(n), "~") == 0 || strcmp(scalar(n), "null") == 0);
}

/* A scalar as it may appear in a message: printable, cut at VALUE_SHOWN. */
static const char *shown(const yaml_node_t *n, char *out, size_t cap)
{
    return log_sanitize(out, cap, scalar(n), strlen(scalar(n)), VALUE_SHOWN);
}

static unsigned line_of(const yaml_node_t *n)
{
    return (unsigned)n->start_mark.line + 1;
}

static const char *type_word(const yaml_node_t *n)
{
    return n->type == YAML_SEQUENCE_NODE ? "a list" : n->type == YAML_MAPPING_NODE ? "a mapping"
                                                                                  : "a scalar";
}

static int walk_list(struct walk *w, const struct field *f, yaml_node_t *v, const struct src *s)
{
    int rc = 0;

    list_clear(w->c, f);
    if (v->type == YAML_SCALAR_NODE) {
        struct vctx x = { s, f, scalar(v), w->d };
        return is_null(v) ? 0 : list_add(w->c, &x);
    }
    for (yaml_node_item_t *it = v->data.sequence.items.start;
         rc == 0 && it < v->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(w->doc, *it);
        char where[300];
        struct src is = { where, s->base_dir };
        struct vctx x = { &is, f, "", w->d };

        snprintf(where, sizeof(where), "%s:%u", w->name, line_of(item));
        if (item->type != YAML_SCALAR_NODE)
            return dmn_fail(w->d, DMN_E_CONFIG_FIELD, "%s: %s.%s: item is %s, want a string",
                            where, f->sec, f->key, type_word(item));
        x.v = scalar(item);
        rc = list_add(w->c, &x);
    }
    return rc;
}

/* One key: value pair of a section. seen[] catches duplicates. */
static int walk_pair(struct walk *w, const char *sec, yaml_node_pair_t *p, bool *seen)
{
    yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
    yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
    const struct field *f;
    char where[300], allowed[400], shown_key[VALUE_SHOWN + 4];
    struct src s = { where, w->base_dir };

    snprintf(where, sizeof(where), "%s:%u", w->name, line_of(k));
    if (k->type != YAML_SCALAR_NODE)
        return dmn_fail(w->d, DMN_E_CONFIG, "%s: section %s has %s as a key", where, sec, type_word(k));
    if ((f = field_find(sec, scalar(k))) == NULL) {
        keys_of(sec, allowed, sizeof(allowed));
        return dmn_fail(w->d, DMN_E_CONFIG_UNKNOWN, "%s: unknown key %s.%s (allowed: %s)",
                        where, sec, shown(k, shown_key, sizeof(shown_key)), allowed);
    }
    if (seen[f - fields])
        return dmn_fail(w->d, DMN_E_CONFIG_FIELD, "%s: %s.%s: duplicate key", where, sec, f->key);
    seen[f - fields] = true;
    snprintf(where, sizeof(where), "%s:%u", w->name, line_of(v));
    if (f->t == F_ADDRS || f->t == F_PATHS) {
        if (v->type == YAML_MAPPING_NODE)
            return dmn_fail(w->d, DMN_E_CONFIG_FIELD, "%s: %s.%s: is a mapping, want a list or "
                            "one string", where, sec, f->key);
        return walk_list(w, f, v, &s);
    }
    if (v->type != YAML_SCALAR_NODE)
        return dmn_fail(w->d, DMN_E_CONFIG_FIELD, "%s: %s.%s: is %s, want a single value",
                        where, sec, f->key, type_word(v));
    struct vctx x = { &s, f, scalar(v), w->d };
    return set_value(w->c, &x);
}

static int walk_section(struct walk *w, const char *sec, yaml_node_t *v, bool *seen)
{
    int rc = 0;

    if (is_null(v))
        return 0;   /* "merge:" with nothing under it */
    if (v->type != YAML_MAPPING_NODE)
        return dmn_fail(w->d, DMN_E_CONFIG_FIELD, "%s:%u: section %s is %s, want a mapping of keys",
                        w->name, line_of(v), sec, type_word(v));
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start;
         rc == 0 && p < v->data.mapping.pairs.top; p++)
        rc = walk_pair(w, sec, p, seen);
    return rc;
}

static int walk_root(struct walk *w, yaml_node_t *root)
{
    bool seen[NFIELDS] = { false }, sec_seen[NSECTIONS] = { false };
    char shown_key[VALUE_SHOWN + 4];
    int rc = 0, i;

    if (root == NULL || is_null(root))
        return 0;   /* empty file: defaults */
    if (root->type != YAML_MAPPING_NODE)
        return dmn_fail(w->d, DMN_E_CONFIG, "%s:%u: top level is %s, want sections (%s, %s, %s, "
                        "%s, %s)", w->name, line_of(root), type_word(root), sections[0],
                        sections[1], sections[2], sections[3], sections[4]);
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         rc == 0 && p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        if (k->type != YAML_SCALAR_NODE)
            return dmn_fail(w->d, DMN_E_CONFIG, "%s:%u: a section name is %s", w->name,
                            line_of(k), type_word(k));
        if ((i = pick(scalar(k), sections, (int)NSECTIONS)) < 0)
            return dmn_fail(w->d, DMN_E_CONFIG_UNKNOWN, "%s:%u: unknown section %s (allowed: "
                            "node, overlay, gossip, merge, audit)", w->name, line_of(k),
                            shown(k, shown_key, sizeof(shown_key)));
        if (sec_seen[i])
            return dmn_fail(w->d, DMN_E_CONFIG_FIELD, "%s:%u: duplicate section %s", w->name,
                            line_of(k), sections[i]);
        sec_seen[i] = true;
        rc = walk_section(w, sections[i], yaml_document_get_node(w->doc, p->value), seen);
    }
    return rc;
}

static int yaml_error(const yaml_parser_t *p, const char *name, struct dmn_diag *d)
{
    if (p->error == YAML_MEMORY_ERROR)
        return dmn_fail(d, DMN_E_NOMEM, "%s: out of memory parsing YAML", name);
    return dmn_fail(d, DMN_E_CONFIG, "%s:%zu:%zu: YAML syntax error: %s%s%s", name,
                    p->problem_mark.line + 1, p->problem_mark.column + 1,
                    p->problem != NULL ? p->problem : "malformed",
                    p->context != NULL ? " " : "", p->context != NULL ? p->context : "");
}

int config_parse(struct config *c, const char *text, size_t len, const char *name,
                 const char *base_dir, struct dmn_diag *d)
{
    yaml_parser_t parser;
    yaml_document_t doc, more;
    struct walk w = { c, &doc, name != NULL ? name : "config", base_dir, d };
    int rc, loaded = 0, more_loaded = 0;

    if (!yaml_parser_initialize(&parser))
        return dmn_fail(d, DMN_E_NOMEM, "%s: out of memory", w.name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!(loaded = yaml_parser_load(&parser, &doc))) {
        rc = yaml_error(&parser, w.name, d);
        goto out;
    }
    if ((rc = walk_root(&w, yaml_document_get_root_node(&doc))) != 0)
        goto out;
    if (!(more_loaded = yaml_parser_load(&parser, &more)))
        rc = yaml_error(&parser, w.name, d);
    else if (yaml_document_get_root_node(&more) != NULL)
        rc = dmn_fail(d, DMN_E_CONFIG, "%s:%zu: a second YAML document; want one", w.name,
                      more.start_mark.line + 1);
out:
    if (more_loaded)
        yaml_document_delete(&more);
    if (loaded)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

/* ---- files and flags ------------------------------------------------------ */

/* Whole file into a malloc'd buffer. Returns 0, DMN_E_IO, DMN_E_NOMEM. */
static int read_file(const char *path, char **out, size_t *n, struct dmn_diag *d)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t got;
    int rc = DMN_E_IO;

    *out = NULL;
    if (f == NULL)
        return dmn_fail(d, DMN_E_IO, "%s: cannot open config file: %s", path, strerror(errno));
    if ((buf = malloc(CONFIG_FILE_MAX + 1)) == NULL) {
        rc = dmn_fail(d, DMN_E_NOMEM, "%s: out of memory", path);
        goto out;
    }
    got = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
    if (ferror(f)) {
        dmn_fail(d, DMN_E_IO, "%s: cannot read config file: %s", path, strerror(errno));
        goto out;
    }
    if (got > CONFIG_FILE_MAX) {
        dmn_fail(d, DMN_E_IO, "%s: config file larger than %u bytes", path, CONFIG_FILE_MAX);
        goto out;
    }
    buf[got] = '\0';
    *out = buf;    /* transferred */
    *n = got;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    fclose(f);
    return rc;
}

int config_load(struct config *c, const char *path, struct dmn_diag *d)
{
    char *text = NULL, *dir = NULL, *slash;
    size_t n = 0;
    int rc;

    if ((rc = read_file(path, &text, &n, d)) != 0)
        goto out;
    if ((dir = strdup(path)) == NULL || set_str(&c->path, path) != 0) {
        rc = dmn_fail(d, DMN_E_NOMEM, "%s: out of memory", path);
        goto out;
    }
    if ((slash = strrchr(dir, '/')) == NULL)
        dir[0] = '\0';                     /* "node.yml": relative to the cwd already */
    else
        slash[slash == dir ? 1 : 0] = '\0';  /* "/node.yml" -> "/" */
    rc = config_parse(c, text, n, path, dir, d);
out:
    free(dir);
    free(text);
    return rc;
}

/* Flags: long name -> the field it sets (NULL field: --config / --help). */
struct flag {
    const char *name, *sec, *key, *arg;
};

static const struct flag flags[] = {
    { "config", NULL, NULL, "FILE" },
    { "data", "node", "data", "DIR" },
    { "listen", "node", "listen", "HOST:PORT" },
    { "http", "node", "http", "HOST:PORT" },
    { "join", "node", "join", "HOST:PORT" },
    { "publish", "node", "publish", "ADAPTER_DIR" },
    { "key", "node", "key", "FILE" },
    { "keyring", "node", "keyring", "DIR" },
    { "policy", "node", "policy", "FILE" },
    { "log-level", "node", "log_level", "LEVEL" },
    { "name", "node", "name", "NAME" },
    { "seed", "overlay", "seed", "N" },
    { "topology", "overlay", "topology", "er|ws|ba" },
    { "quorum", "gossip", "quorum", "K" },
    { "round-ms", "gossip", "round_ms", "MS" },
    { "ready-file", "node", "ready_file", "FILE" },
    { "help", NULL, NULL, NULL },
};
#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

static void usage(FILE *out, const char *prog)
{
    char keys[400];

    fprintf(out, "usage: %s [--config FILE] [flags]\n\nFlags (override the config file):\n", prog);
    for (size_t i = 0; i < NFLAGS; i++) {
        char left[48];
        snprintf(left, sizeof(left), "--%s%s%s", flags[i].name, flags[i].arg ? " " : "",
                 flags[i].arg ? flags[i].arg : "");
        if (flags[i].sec != NULL)
            fprintf(out, "  %-28s %s.%s%s\n", left, flags[i].sec, flags[i].key,
                    strcmp(flags[i].name, "join") == 0 || strcmp(flags[i].name, "publish") == 0
                        ? " (repeatable; replaces the file's list)" : "");
        else
            fprintf(out, "  %-28s %s\n", strcmp(flags[i].name, "help") == 0 ? "-h, --help" : left,
                    strcmp(flags[i].name, "help") == 0 ? "print this help"
                                                      : "YAML config file, loaded before the flags");
    }
    fprintf(out, "\nConfig file sections and keys (relative paths are relative to the file):\n");
    for (size_t i = 0; i < NSECTIONS; i++) {
        keys_of(sections[i], keys, sizeof(keys));
        fprintf(out, "  %s: %s\n", sections[i], keys);
    }
    fprintf(out, "\nRequired: node.data, node.key, node.keyring (file or flags).\n");
}

/* getopt_long over argv with glibc's full re-initialisation (optind 0), so
 * the two passes and any earlier getopt user do not disturb each other. */
static void opts_init(struct option *lo)
{
    for (size_t i = 0; i < NFLAGS; i++) {
        lo[i].name = flags[i].name;
        lo[i].has_arg = flags[i].arg != NULL ? required_argument : no_argument;
        lo[i].flag = NULL;
        lo[i].val = 256 + (int)i;
    }
    memset(&lo[NFLAGS], 0, sizeof(lo[NFLAGS]));
}

static int bad_flag(int ch, int argc, char **argv, struct dmn_diag *d)
{
    const char *arg = optind - 1 < argc && optind > 0 ? argv[optind - 1] : "?";

    if (ch == ':')
        return dmn_fail(d, DMN_E_ARG, "flag %s needs a value", arg);
    if (optopt != 0 && optopt < 256)
        return dmn_fail(d, DMN_E_ARG, "unknown flag -%c (see --help)", optopt);
    return dmn_fail(d, DMN_E_ARG, "unknown flag %s (see --help)", arg);
}

/* Pass 1: --help, --config, unknown flags, stray arguments. */
static int scan_args(int argc, char **argv, const char **cfg, struct dmn_diag *d)
{
    struct option lo[NFLAGS + 1];
    int ch;

    opts_init(lo);
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        if (ch == '?' || ch == ':')
            return bad_flag(ch, argc, argv, d);
        if (ch == 'h' || (ch >= 256 && strcmp(flags[ch - 256].name, "help") == 0)) {
            usage(stdout, argv[0]);
            return 1;
        }
        if (ch >= 256 && strcmp(flags[ch - 256].name, "config") == 0) {
            if (*cfg != NULL)
                return dmn_fail(d, DMN_E_ARG, "--config given twice (%s, %s)", *cfg, optarg);
            *cfg = optarg;
        }
    }
    if (optind < argc)
        return dmn_fail(d, DMN_E_ARG, "unexpected argument \"%s\" (flags only; see --help)",
                        argv[optind]);
    return 0;
}

/* Pass 2: every flag but --config over c; lists replaced, then appended. */
static int apply_args(struct config *c, int argc, char **argv, struct dmn_diag *d)
{
    struct option lo[NFLAGS + 1];
    bool cleared[NFIELDS] = { false };
    char where[80];
    struct src s = { where, NULL };
    int ch, rc = 0;

    opts_init(lo);
    optind = 0;
    opterr = 0;
    while (rc == 0 && (ch = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        const struct flag *fl = &flags[ch - 256];
        const struct field *f;
        if (ch < 256 || fl->sec == NULL)
            continue;
        f = field_find(fl->sec, fl->key);
        snprintf(where, sizeof(where), "flag --%s", fl->name);
        struct vctx x = { &s, f, optarg, d };
        if (f->t == F_ADDRS || f->t == F_PATHS) {
            if (!cleared[f - fields])
                list_clear(c, f);
            cleared[f - fields] = true;
            rc = list_add(c, &x);
        } else {
            rc = set_value(c, &x);
        }
    }
    return rc;
}

int config_from_args(struct config *c, int argc, char **argv, struct dmn_diag *d)
{
    const char *cfg = NULL;
    int rc;

    if ((rc = scan_args(argc, argv, &cfg, d)) != 0)
        return rc;
    if (cfg != NULL && (rc = config_load(c, cfg, d)) != 0)
        return rc;
    return apply_args(c, argc, argv, d);
}

/* ---- final checks ------------------------------------------------------ */

static int need(const struct config *c, const char *v, const char *key, const char *flag,
                struct dmn_diag *d)
{
    if (v != NULL && v[0] != '\0')
        return 0;
    return dmn_fail(d, DMN_E_CONFIG_FIELD, "%s%snode.%s is not set: set node.%s in the config or "
                    "pass --%s", c->path != NULL ? c->path : "", c->path && c->path[0] ? ": " : "",
                    key, key, flag);
}

int config_check(const struct config *c, struct dmn_diag *d)
{
    const char *f = c->path != NULL && c->path[0] != '\0' ? c->path : "config";
    int rc;

    if ((rc = need(c, c->data, "data", "data", d)) != 0 ||
        (rc = need(c, c->key, "key", "key", d)) != 0 ||
        (rc = need(c, c->keyring, "keyring", "keyring", d)) != 0 ||
        (rc = need(c, c->listen, "listen", "listen", d)) != 0)
        return rc;
    if (c->http == NULL || c->name == NULL || c->publish_domain == NULL || c->ready_file == NULL)
        return dmn_fail(d, DMN_E_NOMEM, "%s: out of memory setting defaults", f);
    if (c->topology == CONFIG_TOPO_WS && (c->k < 2 || c->k % 2 != 0))
        return dmn_fail(d, DMN_E_CONFIG_FIELD, "%s: overlay.k: %" PRIu32 " must be even and >= 2 "
                        "for topology ws", f, c->k);
    if (c->topology == CONFIG_TOPO_BA && c->m < 1)
        return dmn_fail(d, DMN_E_CONFIG_FIELD, "%s: overlay.m: %" PRIu32 " must be >= 1 for "
                        "topology ba", f, c->m);
    if (c->write_queue_bytes < 2ull * c->chunk_size)
        return dmn_fail(d, DMN_E_CONFIG_FIELD, "%s: gossip.write_queue_bytes: %" PRIu64 " is less "
                        "than two chunks (2 x gossip.chunk_size %" PRIu32 ")", f,
                        c->write_queue_bytes, c->chunk_size);
    if (c->tau <= 0 && c->tau_rel <= 0)
        return dmn_fail(d, DMN_E_CONFIG_FIELD, "%s: merge.tau_rel: %g must be > 0 when merge.tau "
                        "is 0", f, c->tau_rel);
    if (c->log_level < LOG_ERROR || c->log_level > LOG_DEBUG)
        return dmn_fail(d, DMN_E_CONFIG_FIELD, "%s: node.log_level: %d is not a level", f,
                        c->log_level);
    return 0;
}
