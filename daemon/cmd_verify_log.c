/* daemon/cmd_verify_log.c: `plora verify-log AUDIT.jsonl [--keyring DIR]
 * [--store DIR] [--head COUNT:HASH] [--json]`: replay an audit log.
 *
 * Exit 0: the log verifies. 1: tampered (names the first bad line and one
 * reason of audit_verify.h's fixed set). 2: usage error, unreadable file,
 * keyring or store (the message names it). 3: torn tail (an interrupted
 * last append; everything before it verifies). --json prints
 * {ok, records, first_bad_line, reason, checkpoints_verified, torn_tail, ...}.
 */
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "adapter.h"
#include "audit_verify.h"
#include "certificate.h"
#include "keyring.h"
#include "merge.h"
#include "sha256.h"

#define CMD "verify-log"

struct args {
    const char *log, *keyring, *store, *head;
    bool json;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: plora verify-log AUDIT.jsonl [--keyring DIR] [--store DIR] [--head COUNT:HASH] [--json]\n"
            "  replays the hash-chained audit log: chain, checkpoint and vote signatures\n"
            "  (--keyring), no commit without quorum, no merge of an uncommitted adapter.\n"
            "  --head COUNT:HASH  the log must still hold line COUNT with SHA-256 HASH\n"
            "                     (catches truncation and edits of the last lines)\n"
            "  --store DIR        recompute each merge from the adapter store: DIR/<id>/ per\n"
            "                     adapter, certificate.json in the merge output's directory;\n"
            "                     or plorad's data dir (DIR/adapters/<id>/, DIR/merged/<id>/)\n"
            "exit: 0 ok, 1 tampered, 2 usage/unreadable input, 3 torn tail\n"
            "reasons: blank_line crlf_line_ending malformed_json bad_record prev_hash_mismatch\n"
            "  checkpoint_mismatch checkpoint_signer_unknown bad_checkpoint_signature bad_vote\n"
            "  bad_vote_signature quorum_missing merge_uncommitted merge_mismatch head_mismatch torn_tail\n");
}

/* Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        { "keyring", required_argument, NULL, 'k' },
        { "store", required_argument, NULL, 's' },
        { "head", required_argument, NULL, 'H' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    memset(a, 0, sizeof(*a));
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': a->keyring = optarg; break;
        case 's': a->store = optarg; break;
        case 'H': a->head = optarg; break;
        case 'j': a->json = true; break;
        case 'h': usage(stdout); return CLI_OK;
        default: usage(stderr); return CLI_USAGE;
        }
    }
    if (optind != argc - 1)
        return cli_usage_error(CMD, "want exactly one audit log file (got %d arguments)", argc - optind);
    a->log = argv[optind];
    return -1;
}

/* ---- --store: recompute each merge (the verifier's replay hook) ----
 *
 * Store layout: DIR/<adapter id>/ is a PEFT adapter directory whose
 * adapter_model.safetensors hashes to that id; a merge output's directory
 * also holds certificate.json. For each merge record: certificate.json must
 * hash to the logged "certificate"; every input in the store must hash to its
 * logged id and be the certificate's input; the merge is re-run from the
 * inputs with the certificate's options and weights (merge_new) and must
 * match the certificate (certificate_check, its tolerances) and the record
 * (frob_merged, frob_out, rank, weights); the stored output must hash to the
 * logged output id, which the certificate names too. The output's bytes
 * are not regenerated. */

#define REPLAY_REL 1e-9

struct replay {
    const char *store;
    json_t *cert;
    struct adapter **ad;
    struct merge_factor **fac;
    struct merge_input *in;
    double *wg, *eps;
    size_t n;
    struct merge *m;
};

static void span_str(struct audit_span s, char *out, size_t cap)
{
    size_t n = s.n < cap - 1 ? s.n : cap - 1;

    memcpy(out, s.p, n);
    out[n] = '\0';
}

static double span_num(struct audit_span s)
{
    char t[64];

    span_str(s, t, sizeof(t));
    return strcmp(t, "null") == 0 ? NAN : strtod(t, NULL);
}

static bool near(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return fabs(a - b) <= REPLAY_REL * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* Directory of adapter or merge output `id` under a store given as
 * --store: DIR/<id>/ (a flat store), else plorad's data dir layout,
 * DIR/adapters/<id>/ for adapters and DIR/merged/<id>/ for merge outputs.
 * The flat name is used (and named in messages) when none exists. */
static void entry_dir(const char *store, const char *id, char *out, size_t cap)
{
    static const char *const sub[] = { "", "adapters/", "merged/" };
    struct stat st;

    for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
        snprintf(out, cap, "%s/%s%s", store, sub[i], id);
        if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
            return;
    }
    snprintf(out, cap, "%s/%s", store, id);
}

/* 0: the file hashes to `id`; 1: it does not (why says so); <0: unreadable. */
static int file_is(const char *dir, const char *id, const char *name, const char *want,
                   char *why, size_t cap)
{
    char path[4096], hex[SHA256_HEX_LEN + 1], ed[3072];
    struct crypto_diag d = {0};
    uint8_t h[SHA256_LEN];

    entry_dir(dir, id, ed, sizeof(ed));
    snprintf(path, sizeof(path), "%s/%s", ed, name);
    if (sha256_file(path, h, NULL, &d) != 0) {
        snprintf(why, cap, "%s", d.msg);
        return CRYPTO_E_AUDIT_REPLAY;
    }
    sha256_hex(h, hex);
    if (strcmp(hex, want) == 0)
        return 0;
    snprintf(why, cap, "%s hashes to %.16s..., the log says %.16s...", path, hex, want);
    return 1;
}

static void replay_free(struct replay *rp)
{
    merge_free(rp->m);
    for (size_t k = 0; rp->ad != NULL && k < rp->n; k++) {
        adapter_free(rp->ad[k]);
        free(rp->fac[k]);
    }
    free(rp->ad);
    free(rp->fac);
    free(rp->in);
    free(rp->wg);
    free(rp->eps);
    json_decref(rp->cert);
}

/* Load input k (checked against the log and the certificate). */
static int replay_input(struct replay *rp, size_t k, const char *id, char *why, size_t cap)
{
    struct fusion_diag fd = {0};
    json_t *ci = json_array_get(json_object_get(rp->cert, "inputs"), k);
    const char *csha = json_string_value(json_object_get(ci, "sha256"));
    char dir[4096];
    size_t nf = 0;
    int rc;

    if (csha == NULL || strcmp(csha, id) != 0) {
        snprintf(why, cap, "input %zu: the certificate names %.16s..., the log %.16s...", k,
                 csha ? csha : "nothing", id);
        return 1;
    }
    if ((rc = file_is(rp->store, id, "adapter_model.safetensors", id, why, cap)) != 0)
        return rc;
    entry_dir(rp->store, id, dir, sizeof(dir));
    if (adapter_open(&rp->ad[k], dir, &fd) != 0 ||
        merge_factors_from_adapter(rp->ad[k], &rp->fac[k], &nf, &fd) != 0) {
        snprintf(why, cap, "%s: %s", dir, fd.msg);
        return CRYPTO_E_AUDIT_REPLAY;
    }
    rp->in[k] = (struct merge_input){ rp->fac[k], nf, rp->wg[k], rp->eps[k] };
    return 0;
}

/* Re-run the merge and compare with the certificate and the record. */
static int replay_compare(struct replay *rp, const struct audit_record *r, char *why, size_t cap)
{
    struct fusion_diag fd = {0};
    struct merge_opts o;
    const struct merge_summary *sm;
    struct audit_span it;
    size_t pos = 0, got = 0;

    if (certificate_replay_opts(rp->cert, &o, rp->wg, rp->eps, rp->n, &got, &fd) != 0 || got != rp->n) {
        snprintf(why, cap, "certificate: %s", fd.msg[0] ? fd.msg : "input count differs from the log");
        return 1;
    }
    for (size_t k = 0; k < rp->n; k++) {
        char id[SHA256_HEX_LEN + 1];
        int rc;
        audit_list_next(r->inputs, &pos, &it);
        span_str(it, id, sizeof(id));
        if ((rc = replay_input(rp, k, id, why, cap)) != 0)
            return rc;
    }
    if (merge_new(&rp->m, rp->in, rp->n, &o, &fd) != 0) {
        snprintf(why, cap, "merge: %s", fd.msg);
        return CRYPTO_E_AUDIT_REPLAY;
    }
    if (certificate_check(rp->cert, rp->m, &fd) != 0) {
        snprintf(why, cap, "recomputed merge vs certificate: %s", fd.msg);
        return 1;
    }
    sm = merge_summary(rp->m);
    pos = 0;
    for (size_t k = 0; k < rp->n && audit_list_next(r->weights, &pos, &it); k++)
        if (!near(span_num(it), merge_weight(rp->m, k))) {
            snprintf(why, cap, "weight %zu: log %.17g, recomputed %.17g", k, span_num(it), merge_weight(rp->m, k));
            return 1;
        }
    if (!near(span_num(r->frob_merged), sm->frob_merged) || !near(span_num(r->frob_out), sm->frob_out) ||
        r->rank != sm->rank_out) {
        snprintf(why, cap, "log says frob_merged %.17g frob_out %.17g rank %llu, recomputed %.17g %.17g %zu",
                 span_num(r->frob_merged), span_num(r->frob_out), (unsigned long long)r->rank,
                 sm->frob_merged, sm->frob_out, sm->rank_out);
        return 1;
    }
    return 0;
}

static int replay_merge(void *ctx, const struct audit_record *r, uint64_t line, char *why, size_t cap)
{
    struct replay rp = { .store = ctx, .n = r->n_inputs };
    char out[SHA256_HEX_LEN + 1], cert_sha[SHA256_HEX_LEN + 1], path[4096];
    const char *osha;
    json_error_t je;
    int rc;

    (void)line;
    span_str(r->output, out, sizeof(out));
    span_str(r->certificate, cert_sha, sizeof(cert_sha));
    if ((rc = file_is(rp.store, out, CERTIFICATE_NAME, cert_sha, why, cap)) != 0)
        return rc;
    entry_dir(rp.store, out, path, sizeof(path) - sizeof("/" CERTIFICATE_NAME));
    strcat(path, "/" CERTIFICATE_NAME);
    rp.ad = calloc(rp.n, sizeof(*rp.ad));
    rp.fac = calloc(rp.n, sizeof(*rp.fac));
    rp.in = calloc(rp.n, sizeof(*rp.in));
    rp.wg = calloc(rp.n, sizeof(*rp.wg));
    rp.eps = calloc(rp.n, sizeof(*rp.eps));
    if (rp.ad == NULL || rp.fac == NULL || rp.in == NULL || rp.wg == NULL || rp.eps == NULL) {
        rc = CRYPTO_E_NOMEM;
        goto out;
    }
    if ((rp.cert = json_load_file(path, JSON_REJECT_DUPLICATES, &je)) == NULL) {
        snprintf(why, cap, "%s line %d: %s", path, je.line, je.text);
        rc = 1;
        goto out;
    }
    osha = json_string_value(json_object_get(json_object_get(rp.cert, "output"), "sha256"));
    if (osha == NULL || strcmp(osha, out) != 0) {
        snprintf(why, cap, "%s names output %.16s..., the log %.16s...", path, osha ? osha : "nothing", out);
        rc = 1;
        goto out;
    }
    if ((rc = replay_compare(&rp, r, why, cap)) == 0)
        rc = file_is(rp.store, out, "adapter_model.safetensors", out, why, cap);
out:
    replay_free(&rp);
    return rc;
}

static int input_error(const struct args *a, const char *fmt, const char *what, const char *msg)
{
    char text[600];

    snprintf(text, sizeof(text), fmt, what, msg);
    cli_err(CMD, "%s", text);
    if (a->json)
        cli_print_json(json_pack("{s:b, s:s, s:s}", "ok", 0, "file", a->log, "error", text));
    return CLI_USAGE;
}

static json_t *result_json(const struct args *a, const struct audit_verify_result *r)
{
    json_t *o = json_object();

    json_object_set_new(o, "ok", json_boolean(r->ok));
    json_object_set_new(o, "records", json_integer((json_int_t)r->records));
    json_object_set_new(o, "first_bad_line",
                        r->ok ? json_null() : json_integer((json_int_t)r->first_bad_line));
    json_object_set_new(o, "reason", r->ok ? json_null() : json_string(audit_reason_name(r->reason)));
    json_object_set_new(o, "checkpoints_verified", json_integer((json_int_t)r->checkpoints_verified));
    json_object_set_new(o, "torn_tail", json_boolean(r->torn_tail));
    json_object_set_new(o, "file", json_string(a->log));
    json_object_set_new(o, "detail", json_string(r->detail));
    json_object_set_new(o, "torn_bytes", json_integer((json_int_t)r->torn_bytes));
    json_object_set_new(o, "head", json_string(r->head));
    json_object_set_new(o, "head_checked", json_boolean(r->head_checked));
    json_object_set_new(o, "signatures_checked", json_boolean(a->keyring != NULL));
    json_object_set_new(o, "checkpoints", json_integer((json_int_t)r->checkpoints));
    json_object_set_new(o, "votes", json_integer((json_int_t)r->votes));
    json_object_set_new(o, "votes_verified", json_integer((json_int_t)r->votes_verified));
    json_object_set_new(o, "commits", json_integer((json_int_t)r->commits));
    json_object_set_new(o, "merges", json_integer((json_int_t)r->merges));
    json_object_set_new(o, "merges_replayed", json_integer((json_int_t)r->merges_replayed));
    return o;
}

static void print_human(const struct args *a, const struct audit_verify_result *r)
{
    if (r->ok)
        printf("%s: OK: %llu records, head %llu:%s%s; %llu of %llu checkpoints signature-verified%s\n",
               a->log, (unsigned long long)r->records, (unsigned long long)r->records, r->head,
               r->head_checked ? " (matches --head)" : "",
               (unsigned long long)r->checkpoints_verified, (unsigned long long)r->checkpoints,
               a->keyring ? "" : " (no --keyring: signatures not checked)");
    else if (r->reason == AUDIT_R_TORN_TAIL)
        printf("%s: TORN TAIL at line %llu: %s; the %llu records before it verify "
               "(an interrupted append, not tampering; plorad moves it aside on open)\n",
               a->log, (unsigned long long)r->first_bad_line, r->detail,
               (unsigned long long)r->records);
    else
        printf("%s: TAMPERED at line %llu: %s: %s\n", a->log, (unsigned long long)r->first_bad_line,
               audit_reason_name(r->reason), r->detail);
}

int cmd_verify_log(int argc, char **argv)
{
    struct audit_verify_opts o = {0};
    struct audit_verify_result r;
    struct crypto_diag d = {0};
    struct keyring *kr = NULL;
    struct args a;
    int rc;

    if ((rc = parse_args(argc, argv, &a)) >= 0)
        return rc;
    if (a.head != NULL && audit_verify_parse_head(a.head, &o, &d) != 0)
        return cli_usage_error(CMD, "--head: %s", d.msg);
    if (a.store != NULL) {
        o.merge_replay = replay_merge;
        o.merge_ctx = (void *)a.store;
    }
    if (a.keyring != NULL && keyring_load(&kr, a.keyring, &d) != 0) {
        rc = input_error(&a, "--keyring %s: %s", a.keyring, d.msg);
        goto out;
    }
    o.kr = kr;
    if (audit_verify_file(a.log, &o, &r, &d) != 0) {
        rc = input_error(&a, "%s%s", "", d.msg);
        goto out;
    }
    if (a.json)
        cli_print_json(result_json(&a, &r));
    else
        print_human(&a, &r);
    rc = r.ok ? CLI_OK : r.reason == AUDIT_R_TORN_TAIL ? CLI_TORN : CLI_NEGATIVE;
out:
    keyring_free(kr);
    return rc;
}
