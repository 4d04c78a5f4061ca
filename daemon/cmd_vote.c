/* daemon/cmd_vote.c: `plora vote` (sign a VOTE.json on an adapter) and
 * `plora quorum` (count distinct trusted ACCEPT votes for an adapter).
 *
 * The adapter id is always the SHA-256 of the adapter file on disk
 * (plora.yml's artifacts.filename, else adapter_model.safetensors), never a
 * value copied from a manifest or a vote. `quorum` also counts the
 * publisher's signatures found in ADAPTER_DIR/plora.yml (the prototype's
 * signer.signature_b64 and plorad.signatures), once per key.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hex.h"
#include "key.h"
#include "keyring.h"
#include "manifest.h"
#include "peft_config.h"
#include "quorum.h"
#include "sha256.h"
#include "sig.h"
#include "vote.h"

#define ADAPTER_FILE "adapter_model.safetensors"
#define QUORUM_MAX_FILES 4096
#define QUORUM_SKEW_S 300   /* seconds a vote's ts may run ahead of our clock */

static const char vote_usage[] =
    "usage: plora vote ADAPTER_DIR --key KEY --verdict accept|reject [--reason R]...\n"
    "                  [--domain D] --out VOTE.json [--json]\n"
    "  Sign a vote on the adapter (id = SHA-256 of its adapter file) with KEY and write\n"
    "  VOTE.json (temp file, fsync, rename). The signature covers plorad's canonical\n"
    "  vote bytes (crypto/vote.h), not the JSON text. --domain defaults to plora.yml's\n"
    "  domain when it is a valid plorad domain. --reason: printable ASCII, up to 32.\n"
    "  Exit 0 written; 2 bad option, unreadable key/adapter, or write error.\n";

static const char quorum_usage[] =
    "usage: plora quorum ADAPTER_DIR --keyring DIR --quorum K VOTE.json... [--max-age S]\n"
    "                    [--json]\n"
    "  Count distinct trusted keys (in the keyring, not revoked) with a valid ACCEPT\n"
    "  vote on the adapter. Inputs: plorad VOTE.json files, and the prototype's\n"
    "  attestations (*.jsonl, signer found by verifying against the keyring); the\n"
    "  publisher's signatures in ADAPTER_DIR/plora.yml count as one vote per key. A key\n"
    "  with both verdicts is an equivocator: counted for neither side, both votes shown.\n"
    "  --quorum K >= 1. --max-age S: votes older than S seconds do not count (default:\n"
    "  no limit); votes more than 300 s in the future never count.\n"
    "  --json prints {adapter, quorum, reached, accepts, rejects, accept_keys,\n"
    "  reject_keys, equivocators, ignored}.\n"
    "  Exit 0 quorum reached; 1 not reached; 2 bad option or a malformed vote file.\n";

/* The adapter file of ADAPTER_DIR and its plora.yml (NULL if absent). A
 * present but malformed plora.yml is an input error. */
static int adapter_id(const char *cmd, const char *dir, char id[65], struct manifest **m)
{
    char yml[4096], path[4096];
    struct fusion_diag fd;
    struct crypto_diag d;
    struct stat st;
    uint8_t dig[SHA256_LEN];

    *m = NULL;
    snprintf(yml, sizeof(yml), "%s/%s", dir, MANIFEST_FILENAME);
    if (stat(yml, &st) == 0 && manifest_load(yml, m, &fd) != 0)
        return cli_usage_error(cmd, "%s: %s", yml, fd.msg);
    snprintf(path, sizeof(path), "%s/%s", dir, *m != NULL ? (*m)->artifacts.filename : ADAPTER_FILE);
    if (sha256_file(path, dig, NULL, &d) != 0) {
        manifest_free(*m);
        *m = NULL;
        return cli_usage_error(cmd, "%s", d.msg);
    }
    sha256_hex(dig, id);
    return CLI_OK;
}

/* fsync the directory holding `path`, so that the rename is durable. */
static int fsync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    int fd, rc;

    snprintf(dir, sizeof(dir), "%.*s", slash == NULL ? 1 : slash == path ? 1 : (int)(slash - path),
             slash == NULL ? "." : path);
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* Write `text` to `path` crash-safely: temp file, fsync, rename, fsync dir. */
static int write_atomic(const char *path, const char *text, size_t n)
{
    char tmp[4096];
    int fd, rc = -1;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
        return -1;
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        return -1;
    if (write(fd, text, n) == (ssize_t)n && fsync(fd) == 0)
        rc = 0;
    if (close(fd) != 0 || rc != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return fsync_parent(path);
}

/* ---- vote ------------------------------------------------------------- */

struct vote_opts {
    const char *dir, *key, *domain, *out;
    enum vote_verdict verdict;
    const char *reasons[VOTE_MAX_REASONS + 1];
    size_t n_reasons;
    bool json;
};

static int vote_run(const struct vote_opts *o)
{
    struct manifest *m = NULL;
    struct vote *v = NULL;
    struct key *k = NULL;
    struct crypto_diag d;
    char id[65], *text = NULL;
    const char *domain = o->domain;
    size_t n;
    int rc;

    if (key_load_private_pem(&k, o->key, &d) != 0) {
        rc = cli_usage_error("vote", "--key %s", d.msg);
        goto out;
    }
    if ((rc = adapter_id("vote", o->dir, id, &m)) != CLI_OK)
        goto out;
    if (domain == NULL)
        domain = m != NULL && sig_domain_valid(m->domain) ? m->domain : "";
    if (vote_new(&v, id, domain, o->verdict, (int64_t)time(NULL), &d) != 0) {
        rc = cli_usage_error("vote", "--domain: %s", d.msg);
        goto out;
    }
    for (size_t i = 0; i < o->n_reasons; i++)
        if (vote_add_reason(v, o->reasons[i], &d) != 0) {
            rc = cli_usage_error("vote", "--reason \"%.60s\": %s", o->reasons[i], d.msg);
            goto out;
        }
    if (vote_sign(v, k, &d) != 0 || vote_encode_json(v, &text, &n, &d) != 0) {
        rc = cli_usage_error("vote", "signing: %s", d.msg);
        goto out;
    }
    if (write_atomic(o->out, text, n) != 0) {
        rc = cli_usage_error("vote", "--out %s: %s", o->out, strerror(errno));
        goto out;
    }
    if (o->json)
        cli_print_json(json_pack("{s:s, s:s, s:s, s:s, s:I}", "out", o->out, "adapter", id,
                                 "verdict", vote_verdict_name(v->verdict), "signer", v->signer,
                                 "ts", (json_int_t)v->ts));
    else
        printf("wrote %s: %s adapter %s, signed by %s\n", o->out, vote_verdict_name(v->verdict),
               id, v->signer);
    rc = CLI_OK;
out:
    free(text);
    vote_free(v);
    manifest_free(m);
    key_free(k);
    return rc;
}

int cmd_vote(int argc, char **argv)
{
    static const struct option opts[] = {
        { "key", required_argument, NULL, 'k' }, { "verdict", required_argument, NULL, 'v' },
        { "reason", required_argument, NULL, 'r' }, { "domain", required_argument, NULL, 'd' },
        { "out", required_argument, NULL, 'o' }, { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    struct vote_opts o = { .verdict = 0 };
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': o.key = optarg; break;
        case 'd': o.domain = optarg; break;
        case 'o': o.out = optarg; break;
        case 'j': o.json = true; break;
        case 'v':
            if (strcmp(optarg, "accept") != 0 && strcmp(optarg, "reject") != 0)
                return cli_usage_error("vote", "--verdict: \"%s\" is not accept or reject", optarg);
            o.verdict = strcmp(optarg, "accept") == 0 ? VOTE_ACCEPT : VOTE_REJECT;
            break;
        case 'r':
            if (o.n_reasons == VOTE_MAX_REASONS)
                return cli_usage_error("vote", "--reason: more than %d", VOTE_MAX_REASONS);
            o.reasons[o.n_reasons++] = optarg;
            break;
        case 'h': fputs(vote_usage, stdout); return CLI_OK;
        default: return cli_usage_error("vote", "unknown option (see plora vote --help)");
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("vote", "expected one ADAPTER_DIR (see plora vote --help)");
    o.dir = argv[optind];
    if (o.key == NULL || o.out == NULL || o.verdict == 0)
        return cli_usage_error("vote", "--key KEY, --verdict accept|reject and --out FILE are "
                               "required");
    return vote_run(&o);
}

/* ---- quorum ----------------------------------------------------------- */

/* Votes collected from files and the manifest, each with where it came from. */
struct ballot {
    struct vote **v;
    char **src;
    size_t n, cap;
};

static void ballot_free(struct ballot *b)
{
    vote_free_array(b->v, b->n);
    for (size_t i = 0; i < b->n; i++)
        free(b->src[i]);
    free(b->src);
}

/* Takes ownership of v. Returns 0 or -1 (no memory; v freed). */
static int ballot_add(struct ballot *b, struct vote *v, const char *src)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct vote **nv = realloc(b->v, cap * sizeof(*nv));
        char **ns = nv != NULL ? realloc(b->src, cap * sizeof(*ns)) : NULL;
        if (nv != NULL)
            b->v = nv;
        if (ns == NULL) {
            vote_free(v);
            return -1;
        }
        b->src = ns;
        b->cap = cap;
    }
    if ((b->src[b->n] = strdup(src)) == NULL) {
        vote_free(v);
        return -1;
    }
    b->v[b->n++] = v;
    return 0;
}

static char *slurp(const char *path, size_t max, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *buf;

    *n = 0;
    if (f == NULL)
        return NULL;
    if ((buf = malloc(max + 2)) != NULL)
        *n = fread(buf, 1, max + 1, f);   /* one byte more than the cap shows "too big" */
    fclose(f);
    return buf;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* One vote file: VOTE.json, or the prototype's attestations (*.jsonl). */
static int read_votes(struct ballot *b, const char *path)
{
    bool jsonl = ends_with(path, ".jsonl");
    size_t max = jsonl ? (size_t)VOTE_MAX_BYTES * 64 : VOTE_MAX_BYTES, n, count = 0;
    char *buf = slurp(path, max, &n), src[4200];
    struct vote **arr = NULL, *v = NULL;
    struct crypto_diag d;
    int rc = CLI_OK;

    crypto_diag_clear(&d);
    if (buf == NULL)
        return cli_usage_error("quorum", "%s: %s", path, strerror(errno ? errno : ENOMEM));
    if (n > max)
        rc = cli_usage_error("quorum", "%s: larger than %zu bytes", path, max);
    else if (jsonl ? vote_parse_attestations(buf, n, &arr, &count, &d) != 0
                   : vote_parse_json(buf, n, &v, &d) != 0)
        rc = d.line > 0 ? cli_usage_error("quorum", "%s line %zu: %s", path, d.line, d.msg)
                        : cli_usage_error("quorum", "%s: %s", path, d.msg);
    free(buf);
    if (rc != CLI_OK)
        return rc;
    if (!jsonl)
        return ballot_add(b, v, path) == 0 ? CLI_OK : cli_usage_error("quorum", "out of memory");
    for (size_t i = 0; i < count; i++) {
        snprintf(src, sizeof(src), "%s:%zu", path, i + 1);
        if (rc == CLI_OK && ballot_add(b, arr[i], src) != 0)
            rc = cli_usage_error("quorum", "out of memory");
        else if (rc != CLI_OK)
            vote_free(arr[i]);
    }
    free(arr);
    return rc;
}

/* The publisher's signatures in plora.yml, as votes. Undecodable ones are
 * skipped here; `plora verify` reports them. */
static int manifest_votes(struct ballot *b, const struct manifest *m, const char *dir,
                          const char *id)
{
    struct crypto_diag d;
    struct vote *v;
    uint8_t *sig;
    size_t len;
    char src[4200];
    const char *b64 = m->signer.signature_b64;

    if (b64[0] != '\0' && b64_decode(b64, strlen(b64), &sig, &len, &d) == 0) {
        int ok = vote_proto_new(&v, VOTE_FORM_PROTO_ANY, id, sig, len, &d);
        free(sig);
        snprintf(src, sizeof(src), "%s/plora.yml signer", dir);
        if (ok == 0 && ballot_add(b, v, src) != 0)
            return cli_usage_error("quorum", "out of memory");
    }
    for (size_t i = 0; i < m->plorad.n_sigs; i++) {
        const struct manifest_sig *s = &m->plorad.sigs[i];
        struct sig_adapter a = { .weights_sha256 = id, .config_sha256 = m->plorad.config_sha256,
                                 .domain = m->domain, .base_model = m->base_model };
        int ok;
        if (b64_decode(s->sig_b64, strlen(s->sig_b64), &sig, &len, &d) != 0)
            continue;
        ok = vote_publisher_new(&v, &a, s->key_id, sig, len, &d);
        free(sig);
        snprintf(src, sizeof(src), "%s/plora.yml plorad.signatures[%zu]", dir, i);
        if (ok == 0 && ballot_add(b, v, src) != 0)
            return cli_usage_error("quorum", "out of memory");
    }
    return CLI_OK;
}

static json_t *keys_json(char (*keys)[65], size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(keys[i]));
    return a;
}

static json_t *result_json(const char *id, const struct quorum_result *r, const struct ballot *b)
{
    json_t *eq = json_array(), *ig = json_array();

    for (size_t i = 0; i < r->n_equivocators; i++)
        json_array_append_new(eq, json_pack("{s:s, s:s, s:s}", "key_id", r->equivocators[i].key_id,
                                            "accept", b->src[r->equivocators[i].accept_vote],
                                            "reject", b->src[r->equivocators[i].reject_vote]));
    for (size_t i = 0; i < r->n_ignored; i++)
        json_array_append_new(ig, json_pack("{s:s, s:s?, s:s}", "source", b->src[r->ignored[i].vote],
                                            "key_id", r->ignored[i].key_id[0] ? r->ignored[i].key_id : NULL,
                                            "reason", quorum_why_name(r->ignored[i].why)));
    return json_pack("{s:s, s:I, s:b, s:I, s:I, s:o, s:o, s:o, s:o}", "adapter", id,
                     "quorum", (json_int_t)r->quorum, "reached", r->reached,
                     "accepts", (json_int_t)r->accepts, "rejects", (json_int_t)r->rejects,
                     "accept_keys", keys_json(r->accept_keys, r->accepts),
                     "reject_keys", keys_json(r->reject_keys, r->rejects),
                     "equivocators", eq, "ignored", ig);
}

static void print_text(json_t *o)
{
    json_t *e;
    size_t i;

    printf("quorum %s: %lld of %lld distinct trusted keys accept (%lld reject) for adapter %s\n",
           json_is_true(json_object_get(o, "reached")) ? "REACHED" : "NOT REACHED",
           (long long)json_integer_value(json_object_get(o, "accepts")),
           (long long)json_integer_value(json_object_get(o, "quorum")),
           (long long)json_integer_value(json_object_get(o, "rejects")),
           json_string_value(json_object_get(o, "adapter")));
    json_array_foreach(json_object_get(o, "accept_keys"), i, e)
        printf("  accept  %s\n", json_string_value(e));
    json_array_foreach(json_object_get(o, "reject_keys"), i, e)
        printf("  reject  %s\n", json_string_value(e));
    json_array_foreach(json_object_get(o, "equivocators"), i, e)
        printf("  EQUIVOCATION key %s: accept in %s, reject in %s\n",
               json_string_value(json_object_get(e, "key_id")),
               json_string_value(json_object_get(e, "accept")),
               json_string_value(json_object_get(e, "reject")));
    json_array_foreach(json_object_get(o, "ignored"), i, e)
        printf("  ignored %s: %s\n", json_string_value(json_object_get(e, "source")),
               json_string_value(json_object_get(e, "reason")));
}

struct quorum_opts {
    const char *dir, *keyring;
    char **files;
    size_t n_files;
    long quorum, max_age;
    bool json;
};

static int quorum_run(const struct quorum_opts *o)
{
    struct ballot b = { .v = NULL };
    struct keyring *kr = NULL;
    struct manifest *m = NULL;
    struct quorum_result *r = NULL;
    struct quorum_policy p = { .quorum = (unsigned)o->quorum, .now = (int64_t)time(NULL),
                               .max_age_s = o->max_age, .max_skew_s = QUORUM_SKEW_S };
    struct crypto_diag d;
    char id[65];
    json_t *out;
    int rc;

    if (keyring_load(&kr, o->keyring, &d) != 0) {
        rc = cli_usage_error("quorum", "--keyring %s: %s", o->keyring, d.msg);
        goto done;
    }
    if ((rc = adapter_id("quorum", o->dir, id, &m)) != CLI_OK ||
        (m != NULL && (rc = manifest_votes(&b, m, o->dir, id)) != CLI_OK))
        goto done;
    for (size_t i = 0; i < o->n_files; i++)
        if ((rc = read_votes(&b, o->files[i])) != CLI_OK)
            goto done;
    if (quorum_count(kr, id, b.v, b.n, &p, &r, &d) != 0) {
        rc = cli_usage_error("quorum", "%s", d.msg);
        goto done;
    }
    out = result_json(id, r, &b);
    if (o->json)
        cli_print_json(out);
    else {
        print_text(out);
        json_decref(out);
    }
    rc = r->reached ? CLI_OK : CLI_NEGATIVE;
done:
    quorum_result_free(r);
    ballot_free(&b);
    manifest_free(m);
    keyring_free(kr);
    return rc;
}

int cmd_quorum(int argc, char **argv)
{
    static const struct option opts[] = {
        { "keyring", required_argument, NULL, 'k' }, { "quorum", required_argument, NULL, 'q' },
        { "max-age", required_argument, NULL, 'a' }, { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    struct quorum_opts o = { .quorum = -1, .max_age = 0 };
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': o.keyring = optarg; break;
        case 'j': o.json = true; break;
        case 'q':
            if (!cli_parse_long("quorum", "--quorum", optarg, 1, 1000000, &o.quorum))
                return CLI_USAGE;   /* 0 included: a quorum of 0 would accept anything */
            break;
        case 'a':
            if (!cli_parse_long("quorum", "--max-age", optarg, 1, (long)VOTE_TS_MAX, &o.max_age))
                return CLI_USAGE;
            break;
        case 'h': fputs(quorum_usage, stdout); return CLI_OK;
        default: return cli_usage_error("quorum", "unknown option (see plora quorum --help)");
        }
    }
    if (argc - optind < 1)
        return cli_usage_error("quorum", "expected ADAPTER_DIR VOTE.json... (see plora quorum --help)");
    if (o.keyring == NULL || o.quorum < 1)
        return cli_usage_error("quorum", "--keyring DIR and --quorum K (K >= 1) are required");
    o.dir = argv[optind];
    o.files = argv + optind + 1;
    o.n_files = (size_t)(argc - optind - 1);
    if (o.n_files > QUORUM_MAX_FILES)
        return cli_usage_error("quorum", "more than %d vote files", QUORUM_MAX_FILES);
    return quorum_run(&o);
}
