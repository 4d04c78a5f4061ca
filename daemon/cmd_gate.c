/* daemon/cmd_gate.c: `plora gate ADAPTER_DIR --policy POLICY.yml [--keyring DIR]
 * [--vote VOTE.json]... [--json]`.
 *
 * The daemon side of the gate: loads the policy, the trusted keys and the
 * votes (ADAPTER_DIR/attestations.jsonl, the prototype's, plus --vote files),
 * runs fusion/gate.c, and supplies the probe runner (daemon/probe.h: spawn
 * with a timeout; the library itself never starts a process).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "gate.h"
#include "key.h"
#include "keyring.h"
#include "probe.h"
#include "vote.h"

#define MAX_VOTE_FILES 256
#define ATTESTATIONS_NAME "attestations.jsonl"

static const char usage_text[] =
    "usage: plora gate ADAPTER_DIR --policy POLICY.yml [--keyring DIR] [--vote VOTE.json]...\n"
    "                  [--json]\n"
    "  Run the content gate: base model, ranks, targets, size, sha256 vs plora.yml,\n"
    "  well-formed safetensors, finite values, tensor-norm outliers, signatures and\n"
    "  quorum (keyring: --keyring, else the policy's keyring / trusted_public_keys;\n"
    "  votes: plora.yml signatures, ADAPTER_DIR/attestations.jsonl, --vote files),\n"
    "  and the policy's probe command. Prints the verdict and EVERY failing reason.\n"
    "  Exit 0 accepted, 1 rejected, 2 bad input (policy, keyring, vote file).\n";

struct opts {
    const char *dir, *policy, *keyring;
    const char *votes[MAX_VOTE_FILES];
    size_t n_votes;
    bool json;
};

/* ---- inputs ------------------------------------------------------------ */

static int load_keyring(const struct opts *o, const struct policy *p, struct keyring **out)
{
    struct crypto_diag cd = { 0 };
    const char *dir = o->keyring ? o->keyring : p->keyring_dir;
    int rc = dir ? keyring_load(out, dir, &cd) : keyring_new(out);

    if (rc != 0)
        return cli_usage_error("gate", "keyring %s: %s", dir ? dir : "(new)", cd.msg);
    for (size_t i = 0; i < p->n_trusted_keys; i++) {
        struct key *k = NULL;
        if (key_load_public_pem(&k, p->trusted_keys[i], &cd) != 0 ||
            keyring_add(*out, k, p->trusted_keys[i], NULL, &cd) != 0) {
            key_free(k);
            return cli_usage_error("gate", "%s: trusted_public_keys: %s", o->policy, cd.msg);
        }
        key_free(k);
    }
    return 0;
}

/* Whole file into memory (cap bytes); NULL and errno on failure. */
static char *slurp(const char *path, size_t cap, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *buf;

    if (f == NULL)
        return NULL;
    if ((buf = malloc(cap + 1)) != NULL) {
        *n = fread(buf, 1, cap + 1, f);
        if (ferror(f) || *n > cap) {
            free(buf);
            buf = NULL;
            errno = ferror(f) ? EIO : EFBIG;
        }
    }
    fclose(f);
    return buf;
}

static int add_vote(struct vote ***v, size_t *n, struct vote *x)
{
    struct vote **nv = realloc(*v, (*n + 1) * sizeof(*nv));

    if (nv == NULL) {
        vote_free(x);
        return cli_usage_error("gate", "out of memory");
    }
    *v = nv;
    (*v)[(*n)++] = x;
    return 0;
}

static int load_attestations(const char *dir, struct vote ***v, size_t *n)
{
    char path[4096];
    struct crypto_diag cd = { 0 };
    struct vote **att = NULL;
    size_t len = 0, count = 0;
    char *buf;
    int rc = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, ATTESTATIONS_NAME);
    if (access(path, F_OK) != 0)
        return 0;
    if ((buf = slurp(path, (size_t)VOTE_MAX_BYTES * VOTE_MAX_ATTEST_LINES, &len)) == NULL)
        return cli_usage_error("gate", "%s: %s", path, strerror(errno));
    if (vote_parse_attestations(buf, len, &att, &count, &cd) != 0)
        rc = cli_usage_error("gate", "%s: line %zu: %s", path, cd.line, cd.msg);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        rc = add_vote(v, n, att[i]);
        att[i] = NULL;
    }
    vote_free_array(att, count);
    free(buf);
    return rc;
}

static int load_votes(const struct opts *o, struct vote ***v, size_t *n)
{
    struct crypto_diag cd = { 0 };
    int rc;

    if ((rc = load_attestations(o->dir, v, n)) != 0)
        return rc;
    for (size_t i = 0; i < o->n_votes; i++) {
        size_t len = 0;
        struct vote *x = NULL;
        char *buf = slurp(o->votes[i], VOTE_MAX_BYTES, &len);
        if (buf == NULL)
            return cli_usage_error("gate", "--vote %s: %s", o->votes[i], strerror(errno));
        rc = vote_parse_json(buf, len, &x, &cd);
        free(buf);
        if (rc != 0)
            return cli_usage_error("gate", "--vote %s: %s", o->votes[i], cd.msg);
        if ((rc = add_vote(v, n, x)) != 0)
            return rc;
    }
    return 0;
}

/* ---- output ------------------------------------------------------------ */

static json_t *verdict_json(const char *dir, const struct gate_verdict *v)
{
    json_t *reasons = json_array(), *o;

    for (size_t i = 0; i < v->n_reasons; i++)
        json_array_append_new(reasons, json_pack("{s:s, s:s}", "reason",
                              gate_reason_name(v->reasons[i].id), "detail", v->reasons[i].detail));
    o = json_pack("{s:s, s:s, s:b, s:s, s:I, s:I, s:f, s:s}", "adapter", dir,
                  "verdict", v->accept ? "accept" : "reject", "accept", v->accept,
                  "sha256", v->sha256, "size_bytes", (json_int_t)v->size_bytes,
                  "modules", (json_int_t)v->n_modules, "max_norm_z", v->max_abs_z,
                  "max_norm_z_tensor", v->max_z_tensor);
    json_object_set_new(o, "quorum", v->quorum_checked ?
                        json_pack("{s:I, s:I}", "required", (json_int_t)v->quorum_required,
                                  "accepts", (json_int_t)v->quorum_accepts) : json_null());
    json_object_set_new(o, "reasons", reasons);
    return o;
}

static void print_text(const char *dir, const struct gate_verdict *v)
{
    printf("%s %s\n", v->accept ? "ACCEPT" : "REJECT", dir);
    printf("  sha256 %s  size %llu  modules %zu  max |z| %.2f\n", v->sha256[0] ? v->sha256 : "-",
           (unsigned long long)v->size_bytes, v->n_modules, v->max_abs_z);
    if (v->quorum_checked)
        printf("  quorum %zu of %u\n", v->quorum_accepts, v->quorum_required);
    for (size_t i = 0; i < v->n_reasons; i++)
        printf("  reason %s: %s\n", gate_reason_name(v->reasons[i].id), v->reasons[i].detail);
}

/* ---- command ----------------------------------------------------------- */

static int run(const struct opts *o)
{
    struct fusion_diag d = { 0 };
    struct policy *p = NULL;
    struct keyring *kr = NULL;
    struct vote **votes = NULL;
    size_t n_votes = 0;
    struct gate_verdict *v = NULL;
    int rc;

    if (policy_load(&p, o->policy, &d) != 0) {
        rc = cli_usage_error("gate", "policy %s: %s", o->policy, d.msg);
        goto out;
    }
    if ((rc = load_keyring(o, p, &kr)) != 0 || (rc = load_votes(o, &votes, &n_votes)) != 0)
        goto out;
    struct gate_env env = { kr, votes, n_votes, (int64_t)time(NULL), probe_run, NULL };
    if (gate_run(p, o->dir, &env, &v, &d) != 0) {
        rc = cli_usage_error("gate", "%s: %s", o->dir, d.msg);
        goto out;
    }
    if (o->json)
        cli_print_json(verdict_json(o->dir, v));
    else
        print_text(o->dir, v);
    rc = v->accept ? CLI_OK : CLI_NEGATIVE;
out:
    gate_verdict_free(v);
    vote_free_array(votes, n_votes);
    keyring_free(kr);
    policy_free(p);
    return rc;
}

int cmd_gate(int argc, char **argv)
{
    static const struct option opts[] = {
        { "policy", required_argument, NULL, 'p' },
        { "keyring", required_argument, NULL, 'k' },
        { "vote", required_argument, NULL, 'v' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct opts o = { 0 };
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': o.policy = optarg; break;
        case 'k': o.keyring = optarg; break;
        case 'j': o.json = true; break;
        case 'v':
            if (o.n_votes == MAX_VOTE_FILES)
                return cli_usage_error("gate", "--vote: at most %d files", MAX_VOTE_FILES);
            o.votes[o.n_votes++] = optarg;
            break;
        case 'h': fputs(usage_text, stdout); return CLI_OK;
        default: return cli_usage_error("gate", "unknown option (see plora gate --help)");
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("gate", "want exactly one ADAPTER_DIR (see plora gate --help)");
    if (o.policy == NULL)
        return cli_usage_error("gate", "--policy POLICY.yml is required");
    o.dir = argv[optind];
    return run(&o);
}
