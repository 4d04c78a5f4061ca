/* tests/integration/audit_tool.c: helper program of audit_tamper.sh and
 * audit_crash.sh.
 *
 *   audit_tool sweep DIR         write a 1,000-record log with plorad's writer
 *                                into DIR and run the exhaustive tamper sweep
 *   audit_tool append LOG [PACE_US]   append gate records with group commit
 *                                until killed; print "ACK <n> <sha256 of line n>"
 *                                after each group commit
 *   audit_tool recover LOG       open (moving a torn tail aside) and close
 *   audit_tool mkmerge LOG CERT  a log with votes, commits and the merge that
 *                                certificate.json CERT describes
 *
 * The sweep verifies every tampered copy with the head of the original
 * (--head 1000:<sha256 of line 1000>), resuming from the verifier state
 * after the unchanged prefix (audit_verify_clone), so each case costs only
 * the lines it touches. Every case must be detected with its first bad line
 * at the edit or the line right after it; a case caught only by the head is
 * counted as "needed the head". Under sanitizers a deterministic strided
 * subset runs (AUDIT_SWEEP_STRIDE overrides: 1 = everything).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "audit_verify.h"
#include "key.h"
#include "vote.h"

#define N_RECORDS 1000

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static const char *ids[] = {
    "658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3e",
    "f6af8341ce7009c30ebf11ff0f361b01dd7eae004201d7015bab7a28c8ef4a43",
    "bc77a4203f29356efecb1e0f4c30072145adfd8b959a4ce1c5cbac7c1e796011",
};

static uint64_t mono_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static int die(const char *what, int rc, const struct crypto_diag *d)
{
    fprintf(stderr, "audit_tool: %s: %s: %s\n", what, crypto_err_name(rc), d ? d->msg : "");
    exit(2);
}

/* ---- writing the sweep's log: every record type, plorad's writer ---- */

static int add_vote(struct audit *a, uint64_t ts, const struct key *k, const char *id, bool accept,
                    struct crypto_diag *d)
{
    struct vote *v = NULL;
    int rc;

    if ((rc = vote_new(&v, id, "legal", accept ? VOTE_ACCEPT : VOTE_REJECT, 1795415300, d)) == 0 &&
        (rc = vote_sign(v, k, d)) == 0)
        rc = audit_append_vote(a, ts, v, ts, NULL, d);
    vote_free(v);
    return rc;
}

static int add_record(struct audit *a, uint64_t i, struct key *const *keys, struct crypto_diag *d)
{
    uint64_t ts = 1795415300000ull + i;
    const char *id = ids[i % 3], *why[] = { "rank_not_allowed", "quote\"tab\t" };
    const char *signers[2] = { key_id(keys[0]), key_id(keys[1]) };
    double w[1] = { 1.0 };

    if (strcmp(signers[0], signers[1]) > 0) {
        signers[0] = key_id(keys[1]);
        signers[1] = key_id(keys[0]);
    }
    if (i == 1)
        return audit_append_start(a, ts, key_id(keys[0]), "0.1.0", ts, NULL, d);
    if (i == N_RECORDS)
        return audit_append_stop(a, ts, key_id(keys[0]), "sigterm", ts, NULL, d);
    if (i % 100 == 0)
        return audit_append_checkpoint(a, ts, keys[0], ts, NULL, d);
    switch (i % 50) {
    case 10: case 11: return add_vote(a, ts, keys[i % 2], ids[0], true, d);
    case 12: return add_vote(a, ts, keys[2], ids[0], false, d);
    case 13: {
        struct audit_commit c = { ids[0], "legal", 2, signers, 2 };
        return audit_append_commit(a, ts, &c, ts, NULL, d);
    }
    case 14: {
        struct audit_merge m = { ids[2], &ids[0], w, 1, 8, 2.5, 1.75, 1.75, 0, 0.01, ids[1] };
        return audit_append_merge(a, ts, &m, ts, NULL, d);
    }
    case 20: {
        struct audit_peer p = { key_id(keys[1]), "127.0.0.1:7001", "up", "" };
        return audit_append_peer(a, ts, &p, ts, NULL, d);
    }
    default: {
        struct audit_gate g = { id, "legal", i % 3 == 0, why, i % 3 == 0 ? 0 : 2 };
        return audit_append_gate(a, ts, &g, ts, NULL, d);
    }
    }
}

static char *write_log(const char *dir, size_t *n)
{
    char path[4096];
    struct key *keys[3] = { NULL, NULL, NULL };
    struct crypto_diag d;
    struct audit *a;
    FILE *f;
    char *buf;
    long len;
    int rc;

    snprintf(path, sizeof(path), "%s/sweep.jsonl", dir);
    unlink(path);
    for (int k = 0; k < 3; k++)
        if ((rc = key_generate_ed25519(&keys[k], &d)) != 0)
            die("keygen", rc, &d);
    if ((rc = audit_open(&a, path, NULL, NULL, &d)) != 0)
        die("open", rc, &d);
    for (uint64_t i = 1; i <= N_RECORDS; i++)
        if ((rc = add_record(a, i, keys, &d)) != 0)
            die("append", rc, &d);
    if ((rc = audit_close(a, &d)) != 0)
        die("close", rc, &d);
    for (int k = 0; k < 3; k++)
        key_free(keys[k]);
    if ((f = fopen(path, "rb")) == NULL)
        die("reopen", CRYPTO_E_IO, NULL);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)len + 1);
    if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len)
        die("read", CRYPTO_E_IO, NULL);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

/* ---- the sweep ---- */

struct seg {
    const char *p;
    size_t n;
};

struct sweep {
    const char *buf;
    size_t n;
    size_t off[N_RECORDS + 2];          /* off[i]: start of line i; off[N+1] = n */
    struct audit_verifier *pre[N_RECORDS + 2];  /* state after lines 1..i-1 */
    struct audit_verifier *pre_nohead[N_RECORDS + 2];  /* the same, verifying without head */
    struct audit_verifier *scratch;     /* each case runs here (audit_verify_copy) */
    struct audit_verify_opts opts;
    size_t stride;
    unsigned failures;
};

struct tally {
    const char *name;
    uint64_t cases, detected, at_edit, next_line, needed_head, torn;
};

static void line_of(const struct sweep *s, size_t i, struct seg *g)
{
    g->p = s->buf + s->off[i];
    g->n = s->off[i + 1] - s->off[i];   /* with its LF */
}

/* Verify prefix(first-1) + segs; returns the result. */
static void run_case(struct sweep *s, size_t first, const struct seg *segs, size_t nseg,
                     struct audit_verify_result *r)
{
    struct audit_verifier *v = s->scratch;
    struct crypto_diag d;
    int rc;

    if ((rc = audit_verify_copy(v, s->pre[first])) != 0)
        die("copy", rc, NULL);
    for (size_t k = 0; k < nseg && !audit_verify_done(v); k++)
        if ((rc = audit_verify_feed(v, segs[k].p, segs[k].n, &d)) != 0)
            die("feed", rc, &d);
    if ((rc = audit_verify_finish(v, r, &d)) != 0)
        die("finish", rc, &d);
}

/* Tampered bytes must be caught at line `edit` or `edit + 1`. */
static void judge(struct sweep *s, struct tally *t, const struct audit_verify_result *r, size_t edit,
                  const char *what)
{
    t->cases++;
    if (!r->ok && (r->first_bad_line == edit || r->first_bad_line == edit + 1)) {
        t->detected++;
        t->at_edit += r->first_bad_line == edit;
        t->next_line += r->first_bad_line == edit + 1;
        t->needed_head += r->reason == AUDIT_R_HEAD_MISMATCH;
        t->torn += r->torn_tail;
        return;
    }
    if (s->failures++ < 20)
        fprintf(stderr, "UNDETECTED or misplaced: %s at line %zu: %s line %" PRIu64 " (%s)\n", what, edit,
                audit_reason_name(r->reason), r->first_bad_line, r->detail);
}

static void report(const struct tally *t)
{
    printf("sweep %-14s cases=%" PRIu64 " detected=%" PRIu64 " at_edit=%" PRIu64 " next_line=%" PRIu64
           " needed_head=%" PRIu64 " chain_alone=%" PRIu64 " torn=%" PRIu64 "\n",
           t->name, t->cases, t->detected, t->at_edit, t->next_line, t->needed_head,
           t->detected - t->needed_head, t->torn);
}

static void sweep_bytes(struct sweep *s)
{
    struct tally t = { "byte_change", 0, 0, 0, 0, 0, 0 };
    struct audit_verify_result r;
    char *scratch = malloc(AUDIT_LINE_MAX + 2);
    size_t k = 0;

    for (size_t i = 1; i <= N_RECORDS; i++) {
        struct seg line, segs[2];
        line_of(s, i, &line);
        memcpy(scratch, line.p, line.n);
        segs[0] = (struct seg){ scratch, line.n };
        segs[1] = (struct seg){ s->buf + s->off[i + 1], s->n - s->off[i + 1] };
        for (size_t b = 0; b < line.n; b++) {
            for (unsigned c = 0; c < 256; c++) {
                if ((unsigned char)line.p[b] == c || k++ % s->stride != 0)
                    continue;
                scratch[b] = (char)c;
                run_case(s, i, segs, 2, &r);
                judge(s, &t, &r, i, "byte change");
            }
            scratch[b] = line.p[b];
        }
    }
    free(scratch);
    report(&t);
}

static void sweep_lines(struct sweep *s)
{
    struct tally del = { "line_delete", 0, 0, 0, 0, 0, 0 }, dup = { "line_duplicate", 0, 0, 0, 0, 0, 0 };
    struct tally swp = { "line_swap", 0, 0, 0, 0, 0, 0 };
    struct audit_verify_result r;
    size_t k = 0;

    for (size_t i = 1; i <= N_RECORDS; i++) {
        struct seg li, segs[4];
        line_of(s, i, &li);
        segs[0] = (struct seg){ s->buf + s->off[i + 1], s->n - s->off[i + 1] };
        run_case(s, i, segs, 1, &r);
        judge(s, &del, &r, i, "delete");
        segs[0] = li;
        segs[1] = li;
        segs[2] = (struct seg){ s->buf + s->off[i + 1], s->n - s->off[i + 1] };
        run_case(s, i, segs, 3, &r);
        judge(s, &dup, &r, i + 1, "duplicate");
        for (size_t j = i + 1; j <= N_RECORDS; j++) {   /* every pair */
            struct seg lj;
            if (k++ % s->stride != 0)
                continue;
            line_of(s, j, &lj);
            segs[0] = lj;
            segs[1] = (struct seg){ s->buf + s->off[i + 1], s->off[j] - s->off[i + 1] };
            segs[2] = li;
            segs[3] = (struct seg){ s->buf + s->off[j + 1], s->n - s->off[j + 1] };
            run_case(s, i, segs, 4, &r);
            judge(s, &swp, &r, i, "swap");
        }
    }
    report(&del);
    report(&dup);
    report(&swp);
}

/* A forged record chained onto line i-1 (what a forger can write). */
static size_t forged_line(const struct sweep *s, size_t i, char *out, size_t cap)
{
    uint8_t h[SHA256_LEN] = {0};
    char hex[SHA256_HEX_LEN + 1];

    if (i > 1)
        sha256(s->buf + s->off[i - 1], s->off[i] - s->off[i - 1] - 1, h);
    sha256_hex(h, hex);
    return (size_t)snprintf(out, cap,
                            "{\"type\": \"gate\", \"ts\": 1795415399999, \"adapter\": \"%s\", \"domain\": "
                            "\"legal\", \"verdict\": \"accept\", \"reasons\": [], \"prev_hash\": \"%s\"}\n",
                            ids[0], hex);
}

static void sweep_inserts(struct sweep *s)
{
    struct tally ins = { "line_insert", 0, 0, 0, 0, 0, 0 };
    struct audit_verify_result r;
    char forged[512];
    size_t k = 0;
    uint64_t appended_ok = 0;

    for (size_t i = 1; i <= N_RECORDS + 1; i++) {
        struct seg segs[2];
        segs[1] = (struct seg){ s->buf + s->off[i], s->n - s->off[i] };
        segs[0] = (struct seg){ "\n", 1 };                     /* a blank line */
        run_case(s, i, segs, 2, &r);
        judge(s, &ins, &r, i, "insert blank");
        segs[0] = (struct seg){ forged, forged_line(s, i, forged, sizeof(forged)) };
        run_case(s, i, segs, 2, &r);
        if (i == N_RECORDS + 1)   /* a well-chained append is growth, not tampering */
            appended_ok += r.ok;
        else
            judge(s, &ins, &r, i, "insert forged");
        for (size_t j = 1; j <= N_RECORDS; j++) {            /* a copy of every line */
            if (k++ % s->stride != 0)
                continue;
            line_of(s, j, &segs[0]);
            run_case(s, i, segs, 2, &r);
            judge(s, &ins, &r, j == i ? i + 1 : i, "insert copy");
        }
    }
    report(&ins);
    printf("sweep append_chained  verifies=%" PRIu64 " (log growth is not tampering)\n", appended_ok);
    if (appended_ok != 1)
        s->failures++;
}

static void sweep_truncate(struct sweep *s)
{
    struct tally tr = { "truncate", 0, 0, 0, 0, 0, 0 };
    struct audit_verify_result r;
    struct audit_verifier *v;
    struct crypto_diag d;
    uint64_t torn_plain = 0, ok_plain = 0;
    size_t i = 1;

    for (size_t t = 0; t < s->n; t++) {
        struct seg seg;
        while (s->off[i + 1] <= t)
            i++;
        seg = (struct seg){ s->buf + s->off[i], t - s->off[i] };
        run_case(s, i, &seg, 1, &r);
        judge(s, &tr, &r, i, "truncate");
        /* without the head: a cut inside a line is a torn tail (exit 3), a cut
         * at a line boundary is a shorter valid log */
        if (audit_verify_clone(&v, s->pre_nohead[i]) != 0 || audit_verify_feed(v, seg.p, seg.n, &d) != 0 ||
            audit_verify_finish(v, &r, &d) != 0)
            die("truncate without head", -1, NULL);
        audit_verify_free(v);
        torn_plain += r.reason == AUDIT_R_TORN_TAIL;
        ok_plain += r.ok;
        if (!(r.ok || r.reason == AUDIT_R_TORN_TAIL) || r.ok == (t != s->off[i]))
            s->failures++;
    }
    report(&tr);
    printf("sweep truncate_nohead  torn_tail=%" PRIu64 " clean_prefix_ok=%" PRIu64 " (no head: torn vs clean told apart)\n",
           torn_plain, ok_plain);
}

/* pre[i] = verifier state after lines 1..i-1 of the untouched log. */
static void prefixes(struct sweep *s, struct audit_verifier **pre, const struct audit_verify_opts *o)
{
    struct crypto_diag d;
    int rc;

    if ((rc = audit_verify_new(&pre[1], o)) != 0)
        die("verifier", rc, NULL);
    for (size_t i = 2; i <= N_RECORDS + 1; i++) {
        if ((rc = audit_verify_clone(&pre[i], pre[i - 1])) != 0 ||
            (rc = audit_verify_feed(pre[i], s->buf + s->off[i - 1], s->off[i] - s->off[i - 1], &d)) != 0)
            die("prefix", rc, &d);
        if (audit_verify_done(pre[i]))
            die("the untouched log does not verify", -1, NULL);
    }
}

static void prepare(struct sweep *s)
{
    size_t i = 1;

    s->off[1] = 0;
    for (size_t p = 0; p < s->n; p++)
        if (s->buf[p] == '\n')
            s->off[++i] = p + 1;
    if (i != N_RECORDS + 1)
        die("line count", -1, NULL);
    s->opts.have_head = true;
    s->opts.head_count = N_RECORDS;
    sha256(s->buf + s->off[N_RECORDS], s->off[N_RECORDS + 1] - s->off[N_RECORDS] - 1, s->opts.head_hash);
    prefixes(s, s->pre, &s->opts);
    prefixes(s, s->pre_nohead, NULL);
    if (audit_verify_new(&s->scratch, &s->opts) != 0)
        die("verifier", CRYPTO_E_NOMEM, NULL);
}

static int cmd_sweep(const char *dir)
{
    static struct sweep s;
    const char *env = getenv("AUDIT_SWEEP_STRIDE");
    struct audit_verify_result r;
    struct timespec t0, t1;

    s.stride = env != NULL && atoi(env) > 0 ? (size_t)atoi(env) : SANITIZED ? 97 : 1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    s.buf = write_log(dir, &s.n);
    prepare(&s);
    run_case(&s, N_RECORDS + 1, NULL, 0, &r);
    printf("sweep log records=%d bytes=%zu verifies=%s stride=%zu\n", N_RECORDS, s.n,
           r.ok ? "yes" : "NO", s.stride);
    if (!r.ok)
        s.failures++;
    sweep_bytes(&s);
    sweep_lines(&s);
    sweep_inserts(&s);
    sweep_truncate(&s);
    for (size_t i = 1; i <= N_RECORDS + 1; i++) {
        audit_verify_free(s.pre[i]);
        audit_verify_free(s.pre_nohead[i]);
    }
    audit_verify_free(s.scratch);
    free((void *)s.buf);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("sweep done failures=%u seconds=%.1f\n", s.failures,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return s.failures == 0 ? 0 : 1;
}

/* ---- crash writer ---- */

static int cmd_append(const char *path, long pace_us)
{
    struct audit_open_info info;
    struct crypto_diag d;
    struct audit *a;
    char head[SHA256_HEX_LEN + 1], line[128];
    uint64_t acked, i = 0;
    int rc, n;

    if ((rc = audit_open(&a, path, NULL, &info, &d)) != 0)
        die("open", rc, &d);
    n = snprintf(line, sizeof(line), "OPEN %" PRIu64 " %" PRIu64 "\n", info.records, info.torn_bytes);
    if (write(1, line, (size_t)n) != n)
        return 2;
    acked = audit_acked(a);
    for (;;) {
        const char *why[] = { "crash_test" };
        struct audit_gate g = { ids[i % 3], "legal", false, why, 1 };
        uint64_t now = mono_ms();
        if ((rc = audit_append_gate(a, 1795415300000ull + i++, &g, now, NULL, &d)) != 0 ||
            (rc = audit_poll(a, mono_ms(), &d)) != 0)
            die("append", rc, &d);
        if (audit_acked(a) != acked) {
            acked = audit_acked(a);
            audit_head(a, head);   /* nothing pending right after a commit */
            n = snprintf(line, sizeof(line), "ACK %" PRIu64 " %s\n", acked, head);
            if (write(1, line, (size_t)n) != n)
                return 2;
        }
        if (pace_us > 0)
            usleep((useconds_t)pace_us);
    }
}

/* ---- a log around one merge, from its certificate (for --store tests) ---- */

static double num_or_nan(json_t *v)
{
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void merge_record(json_t *cert, const char *cert_sha, struct audit_merge *m,
                         const char **inputs, double *w)
{
    json_t *ins = json_object_get(cert, "inputs"), *ws = json_object_get(cert, "weights");

    m->n_inputs = json_array_size(ins);
    if (m->n_inputs == 0 || m->n_inputs > 8 || json_array_size(ws) != m->n_inputs)
        die("certificate inputs", -1, NULL);
    for (size_t k = 0; k < m->n_inputs; k++) {
        inputs[k] = json_string_value(json_object_get(json_array_get(ins, k), "sha256"));
        w[k] = num_or_nan(json_array_get(ws, k));
    }
    m->output = json_string_value(json_object_get(json_object_get(cert, "output"), "sha256"));
    m->inputs = inputs;
    m->weights = w;
    m->rank = (unsigned)json_integer_value(json_object_get(cert, "rank_out"));
    m->tau = num_or_nan(json_object_get(cert, "tau"));
    m->frob_merged = num_or_nan(json_object_get(cert, "frob_merged"));
    m->frob_out = num_or_nan(json_object_get(cert, "frob_out"));
    m->dropped_energy = num_or_nan(json_object_get(cert, "dropped_energy"));
    m->kld_bound = num_or_nan(json_object_get(json_object_get(cert, "kld"), "bound"));
    m->certificate = cert_sha;
}

/* start, two accepting votes and a commit per input, the merge, stop. */
static int cmd_mkmerge(const char *log, const char *cert_path)
{
    const char *inputs[8];
    double w[8];
    struct audit_merge m = {0};
    struct key *keys[2] = { NULL, NULL };
    char cert_sha[SHA256_HEX_LEN + 1];
    uint8_t h[SHA256_LEN];
    struct crypto_diag d;
    json_error_t je;
    struct audit *a;
    json_t *cert;
    uint64_t ts = 1795415300000ull;
    int rc;

    if ((cert = json_load_file(cert_path, 0, &je)) == NULL)
        die(cert_path, CRYPTO_E_IO, NULL);
    if ((rc = sha256_file(cert_path, h, NULL, &d)) != 0)
        die("hash certificate", rc, &d);
    sha256_hex(h, cert_sha);
    merge_record(cert, cert_sha, &m, inputs, w);
    unlink(log);
    for (int k = 0; k < 2; k++)
        if ((rc = key_generate_ed25519(&keys[k], &d)) != 0)
            die("keygen", rc, &d);
    const char *signers[2] = { key_id(keys[0]), key_id(keys[1]) };
    if (strcmp(signers[0], signers[1]) > 0) {
        signers[0] = key_id(keys[1]);
        signers[1] = key_id(keys[0]);
    }
    if ((rc = audit_open(&a, log, NULL, NULL, &d)) != 0 ||
        (rc = audit_append_start(a, ts++, key_id(keys[0]), "0.1.0", 0, NULL, &d)) != 0)
        die("open", rc, &d);
    for (size_t k = 0; k < m.n_inputs; k++) {
        struct audit_commit c = { inputs[k], "legal", 2, signers, 2 };
        if ((rc = add_vote(a, ts++, keys[0], inputs[k], true, &d)) != 0 ||
            (rc = add_vote(a, ts++, keys[1], inputs[k], true, &d)) != 0 ||
            (rc = audit_append_commit(a, ts++, &c, 0, NULL, &d)) != 0)
            die("append", rc, &d);
    }
    if ((rc = audit_append_merge(a, ts++, &m, 0, NULL, &d)) != 0 ||
        (rc = audit_append_stop(a, ts, key_id(keys[0]), "done", 0, NULL, &d)) != 0 ||
        (rc = audit_close(a, &d)) != 0)
        die("append merge", rc, &d);
    key_free(keys[0]);
    key_free(keys[1]);
    json_decref(cert);
    return 0;
}

/* Open (recovering the tail), print what was found, close. */
static int cmd_recover(const char *path)
{
    struct audit_open_info info;
    struct crypto_diag d;
    struct audit *a;
    int rc;

    if ((rc = audit_open(&a, path, NULL, &info, &d)) != 0)
        die("open", rc, &d);
    printf("OPEN %" PRIu64 " %" PRIu64 "\n", info.records, info.torn_bytes);
    return audit_close(a, &d) == 0 ? 0 : 2;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "mkmerge") == 0)
        return cmd_mkmerge(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "recover") == 0)
        return cmd_recover(argv[2]);
    if (argc == 3 && strcmp(argv[1], "sweep") == 0)
        return cmd_sweep(argv[2]);
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "append") == 0)
        return cmd_append(argv[2], argc == 4 ? atol(argv[3]) : 0);
    fprintf(stderr, "usage: audit_tool sweep DIR | append LOG [PACE_US] | recover LOG | mkmerge LOG CERT\n");
    return 2;
}
