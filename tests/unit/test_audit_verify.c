/* tests/unit/test_audit_verify.c: the audit log verifier.
 *
 * - the prototype's log and its 14 damaged copies (reference/audit), with and
 *   without an external head, against the verdicts we document;
 * - replay rules on logs written by plorad's writer: checkpoints (signature,
 *   signer, position), votes (signature), commit without quorum,
 *   equivocation, merge of an uncommitted adapter, merge replay hook;
 * - streaming in arbitrary pieces and resuming from a cloned state give the
 *   same verdict as one pass over the whole file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit.h"
#include "audit_verify.h"
#include "hex.h"
#include "key.h"
#include "keyring.h"
#include "vote.h"

static const char *fixtures(void)
{
    const char *f = getenv("PLORA_FIXTURES");

    if (f == NULL)
        fail_msg("PLORA_FIXTURES is not set");
    return f;
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long len;

    if (f == NULL)
        fail_msg("missing fixture %s", path);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    *n = (size_t)len;
    return buf;
}

/* SHA-256 of line `k` (1-based) of the original reference log. */
static void ref_head(uint64_t k, uint8_t out[SHA256_LEN])
{
    char path[1024], *buf, *p;
    size_t n;

    snprintf(path, sizeof(path), "%s/reference/audit/gate_audit.jsonl", fixtures());
    buf = slurp(path, &n);
    p = buf;
    for (uint64_t i = 1; i < k; i++)
        p = strchr(p, '\n') + 1;
    assert_int_equal(sha256(p, (size_t)(strchr(p, '\n') - p), out), 0);
    free(buf);
}

struct expect {
    const char *reason;    /* audit_reason_name; "ok" */
    uint64_t line;         /* first_bad_line (0 when ok) */
    uint64_t records;
};

/* Our verdicts, documented in audit_verify.h; `proto` is what the
 * prototype's verifier printed (verifier_results.json). */
static const struct {
    const char *file;
    const char *proto;
    struct expect plain, head;   /* without / with --head 27:<sha of original line 27> */
} ref_cases[] = {
    { "gate_audit.jsonl", "OK", { "ok", 0, 27 }, { "ok", 0, 27 } },
    { "tampered/edit_middle_record13_passed.jsonl", "BROKEN",
      { "prev_hash_mismatch", 14, 13 }, { "prev_hash_mismatch", 14, 13 } },
    { "tampered/delete_line_record10.jsonl", "BROKEN",
      { "prev_hash_mismatch", 10, 9 }, { "prev_hash_mismatch", 10, 9 } },
    { "tampered/truncated_last_line.jsonl", "BROKEN",
      { "torn_tail", 27, 26 }, { "head_mismatch", 27, 26 } },
    { "tampered/edit_last_record.jsonl", "OK", { "ok", 0, 27 }, { "head_mismatch", 27, 27 } },
    { "tampered/delete_last_line.jsonl", "OK", { "ok", 0, 26 }, { "head_mismatch", 27, 26 } },
    { "tampered/edit_first_record.jsonl", "BROKEN",
      { "prev_hash_mismatch", 2, 1 }, { "prev_hash_mismatch", 2, 1 } },
    { "tampered/delete_first_line.jsonl", "BROKEN",
      { "prev_hash_mismatch", 1, 0 }, { "prev_hash_mismatch", 1, 0 } },
    { "tampered/swap_records_5_6.jsonl", "BROKEN",
      { "prev_hash_mismatch", 5, 4 }, { "prev_hash_mismatch", 5, 4 } },
    { "tampered/reserialized_record8_compact.jsonl", "BROKEN",
      { "prev_hash_mismatch", 9, 8 }, { "prev_hash_mismatch", 9, 8 } },
    { "tampered/rechained_forgery_record4.jsonl", "OK", { "ok", 0, 27 }, { "head_mismatch", 27, 27 } },
    { "tampered/crlf_line_endings.jsonl", "OK", { "crlf_line_ending", 1, 0 }, { "crlf_line_ending", 1, 0 } },
    { "tampered/no_final_newline.jsonl", "OK", { "torn_tail", 27, 26 }, { "head_mismatch", 27, 26 } },
    { "tampered/blank_line_appended.jsonl", "BROKEN", { "blank_line", 28, 27 }, { "blank_line", 28, 27 } },
    { "tampered/empty.jsonl", "OK", { "ok", 0, 0 }, { "head_mismatch", 1, 0 } },
};
#define N_REF (sizeof(ref_cases) / sizeof(ref_cases[0]))

static void check_result(const char *what, const struct audit_verify_result *r, const struct expect *e)
{
    const char *got = audit_reason_name(r->reason);

    if (strcmp(got, e->reason) != 0 || r->first_bad_line != e->line || r->records != e->records ||
        r->ok != (strcmp(e->reason, "ok") == 0))
        fail_msg("%s: got %s at line %llu with %llu records (%s); want %s at line %llu with %llu",
                 what, got, (unsigned long long)r->first_bad_line, (unsigned long long)r->records,
                 r->detail, e->reason, (unsigned long long)e->line, (unsigned long long)e->records);
}

static void test_reference_table(void **state)
{
    struct audit_verify_opts with_head = { .have_head = true, .head_count = 27 };
    struct audit_verify_result r;
    struct crypto_diag d;
    char path[1024];

    (void)state;
    ref_head(27, with_head.head_hash);
    for (size_t i = 0; i < N_REF; i++) {
        char what[300];
        snprintf(path, sizeof(path), "%s/reference/audit/%s", fixtures(), ref_cases[i].file);
        if (access(path, R_OK) != 0)
            fail_msg("missing fixture %s", path);
        assert_int_equal(audit_verify_file(path, NULL, &r, &d), 0);
        snprintf(what, sizeof(what), "%s (no head)", ref_cases[i].file);
        check_result(what, &r, &ref_cases[i].plain);
        assert_int_equal(audit_verify_file(path, &with_head, &r, &d), 0);
        snprintf(what, sizeof(what), "%s (--head 27:...)", ref_cases[i].file);
        check_result(what, &r, &ref_cases[i].head);
        assert_true(r.torn_tail == (strstr(ref_cases[i].file, "truncated") != NULL ||
                                    strstr(ref_cases[i].file, "no_final") != NULL));
    }
}

/* The fixture is what its README says: the prototype's verdicts per file. */
static void test_prototype_verdicts_recorded(void **state)
{
    char path[1024], *json, needle[400], *at;
    size_t n;

    (void)state;
    snprintf(path, sizeof(path), "%s/reference/audit/verifier_results.json", fixtures());
    json = slurp(path, &n);
    for (size_t i = 0; i < N_REF; i++) {
        snprintf(needle, sizeof(needle), "\"file\": \"%s\"", ref_cases[i].file);
        if ((at = strstr(json, needle)) == NULL)
            fail_msg("%s not in verifier_results.json", ref_cases[i].file);
        snprintf(needle, sizeof(needle), "\"stdout\": \"%s\"", ref_cases[i].proto);
        at = strstr(at, "\"stdout\"");
        if (at == NULL || strncmp(at, needle, strlen(needle)) != 0)
            fail_msg("%s: the prototype's output is not %s", ref_cases[i].file, ref_cases[i].proto);
    }
    free(json);
}

/* Any split of the input gives the one-pass verdict; so does a clone. */
static void test_pieces_and_clone(void **state)
{
    static const char *files[] = { "gate_audit.jsonl", "tampered/swap_records_5_6.jsonl",
                                   "tampered/truncated_last_line.jsonl" };
    struct audit_verify_result whole, part;
    struct audit_verifier *v, *c;
    struct crypto_diag d;
    char path[1024], *buf;
    size_t n;

    (void)state;
    for (size_t f = 0; f < 3; f++) {
        snprintf(path, sizeof(path), "%s/reference/audit/%s", fixtures(), files[f]);
        buf = slurp(path, &n);
        assert_int_equal(audit_verify_file(path, NULL, &whole, &d), 0);
        for (size_t step = 1; step < 700; step = step * 3 + 1) {
            assert_int_equal(audit_verify_new(&v, NULL), 0);
            for (size_t o = 0; o < n; o += step)
                assert_int_equal(audit_verify_feed(v, buf + o, n - o < step ? n - o : step, &d), 0);
            assert_int_equal(audit_verify_finish(v, &part, &d), 0);
            audit_verify_free(v);
            assert_int_equal(part.reason, whole.reason);
            assert_int_equal(part.first_bad_line, whole.first_bad_line);
            assert_int_equal(part.records, whole.records);
            assert_string_equal(part.head, whole.head);
        }
        /* clone in the middle of a line, finish both */
        assert_int_equal(audit_verify_new(&v, NULL), 0);
        assert_int_equal(audit_verify_feed(v, buf, n / 2, &d), 0);
        assert_int_equal(audit_verify_clone(&c, v), 0);
        assert_int_equal(audit_verify_feed(v, buf + n / 2, n - n / 2, &d), 0);
        assert_int_equal(audit_verify_feed(c, buf + n / 2, n - n / 2, &d), 0);
        assert_int_equal(audit_verify_finish(c, &part, &d), 0);
        assert_int_equal(part.reason, whole.reason);
        assert_int_equal(part.first_bad_line, whole.first_bad_line);
        assert_int_equal(audit_verify_finish(v, &part, &d), 0);
        assert_int_equal(part.first_bad_line, whole.first_bad_line);
        audit_verify_free(v);
        audit_verify_free(c);
        free(buf);
    }
}

static void test_parse_head(void **state)
{
    static const struct { const char *s; int want; uint64_t count; } cases[] = {
        { "27:68d2fb65f2bfbccb9bd56d2d674289d55bb7bfd3f4dc1d7dce0eda39fc2e7df9", 0, 27 },
        { "0:0000000000000000000000000000000000000000000000000000000000000000", 0, 0 },
        { "27", CRYPTO_E_AUDIT_HEAD, 0 },
        { ":68d2fb65f2bfbccb9bd56d2d674289d55bb7bfd3f4dc1d7dce0eda39fc2e7df9", CRYPTO_E_AUDIT_HEAD, 0 },
        { "-1:68d2fb65f2bfbccb9bd56d2d674289d55bb7bfd3f4dc1d7dce0eda39fc2e7df9", CRYPTO_E_AUDIT_HEAD, 0 },
        { "27:68D2FB65F2BFBCCB9BD56D2D674289D55BB7BFD3F4DC1D7DCE0EDA39FC2E7DF9", CRYPTO_E_AUDIT_HEAD, 0 },
        { "27:68d2fb65f2bfbccb9bd56d2d674289d55bb7bfd3f4dc1d7dce0eda39fc2e7df", CRYPTO_E_AUDIT_HEAD, 0 },
        { "99999999999999999999999:68d2fb65f2bfbccb9bd56d2d674289d55bb7bfd3f4dc1d7dce0eda39fc2e7df9",
          CRYPTO_E_AUDIT_HEAD, 0 },
    };
    struct audit_verify_opts o;
    struct crypto_diag d;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&o, 0, sizeof(o));
        int rc = audit_verify_parse_head(cases[i].s, &o, &d);
        if (rc != cases[i].want)
            fail_msg("head \"%s\": got %s, want %s", cases[i].s, crypto_err_name(rc),
                     crypto_err_name(cases[i].want));
        if (rc == 0)
            assert_true(o.have_head && o.head_count == cases[i].count);
    }
}

/* ---- replay rules on logs written by plorad's writer ---- */

#define N_KEYS 4
static struct key *keys[N_KEYS];
static struct keyring *ring;   /* keys 0..2 trusted; key 3 outside */

static int setup_keys(void **state)
{
    struct crypto_diag d;

    (void)state;
    assert_int_equal(keyring_new(&ring), 0);
    for (int i = 0; i < N_KEYS; i++) {
        assert_int_equal(key_generate_ed25519(&keys[i], &d), 0);
        if (i < 3)
            assert_int_equal(keyring_add(ring, keys[i], "test", NULL, &d), 0);
    }
    return 0;
}

static int teardown_keys(void **state)
{
    (void)state;
    for (int i = 0; i < N_KEYS; i++)
        key_free(keys[i]);
    keyring_free(ring);
    return 0;
}

static const char *ADAPTER_A = "658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3e";
static const char *ADAPTER_B = "f6af8341ce7009c30ebf11ff0f361b01dd7eae004201d7015bab7a28c8ef4a43";
static const char *OUTPUT = "bc77a4203f29356efecb1e0f4c30072145adfd8b959a4ce1c5cbac7c1e796011";

/* Script steps: V<key><A|B><a|r> vote, X<key><A|B> vote with a broken
 * signature, C<A|B><quorum><keys...> commit, M<A|B>... merge of those,
 * K<key> checkpoint, G gate record. */
static void run_script(const char *path, const char *const *steps)
{
    struct audit *a;
    struct crypto_diag d;
    uint64_t ts = 1795415300000ull;

    unlink(path);
    assert_int_equal(audit_open(&a, path, NULL, NULL, &d), 0);
    for (size_t s = 0; steps[s] != NULL; s++, ts++) {
        const char *st = steps[s];
        const char *id = st[0] == 'C' || st[0] == 'M' ? (st[1] == 'A' ? ADAPTER_A : ADAPTER_B)
                                                      : (st[2] == 'A' ? ADAPTER_A : ADAPTER_B);
        int rc = 0;
        if (st[0] == 'V' || st[0] == 'X') {
            struct vote *v;
            assert_int_equal(vote_new(&v, id, "legal", st[3] == 'r' ? VOTE_REJECT : VOTE_ACCEPT,
                                      1795415300, &d), 0);
            assert_int_equal(vote_sign(v, keys[st[1] - '0'], &d), 0);
            if (st[0] == 'X')
                v->sig[5] ^= 1;
            rc = audit_append_vote(a, ts, v, ts, NULL, &d);
            vote_free(v);
        } else if (st[0] == 'C') {
            const char *signers[N_KEYS];
            size_t n = strlen(st + 3);
            for (size_t k = 0; k < n; k++)
                signers[k] = key_id(keys[st[3 + k] - '0']);
            struct audit_commit c = { id, "legal", (unsigned)(st[2] - '0'), signers, n };
            rc = audit_append_commit(a, ts, &c, ts, NULL, &d);
        } else if (st[0] == 'M') {
            const char *inputs[2] = { ADAPTER_A, ADAPTER_B };
            double w[2] = { 0.5, 0.5 };
            struct audit_merge m = { OUTPUT, st[1] == 'A' ? inputs : inputs + 1, w,
                                     strlen(st + 1), 8, 1.5, 2.25, 1.5, 0.001, 0.02,
                                     OUTPUT };
            if (strcmp(st + 1, "AB") == 0)
                m.inputs = inputs;
            rc = audit_append_merge(a, ts, &m, ts, NULL, &d);
        } else if (st[0] == 'K') {
            rc = audit_append_checkpoint(a, ts, keys[st[1] - '0'], ts, NULL, &d);
        } else {
            const char *why[] = { "rank_not_allowed" };
            struct audit_gate g = { id, "legal", false, why, 1 };
            rc = audit_append_gate(a, ts, &g, ts, NULL, &d);
        }
        if (rc != 0)
            fail_msg("step %s: %s: %s", st, crypto_err_name(rc), d.msg);
    }
    assert_int_equal(audit_close(a, &d), 0);
}

static int replay_cb(void *ctx, const struct audit_record *m, uint64_t line, char *why, size_t cap)
{
    int *mode = ctx;

    assert_int_equal(m->type, AUDIT_MERGE);
    assert_int_equal(m->n_inputs, m->n_weights);
    snprintf(why, cap, "frob_out differs at line %llu", (unsigned long long)line);
    return *mode;
}

static void test_replay_rules(void **state)
{
    static const struct {
        const char *name;
        const char *steps[12];
        bool with_ring;
        int replay;              /* -1: no callback; else its return value */
        struct expect want;
        uint64_t ckpt_verified, votes_verified;
    } cases[] = {
        { "quorum 2 of 3, merge, checkpoint", { "G0A", "V0Aa", "V1Aa", "V2Ar", "CA201", "MA", "K0", NULL },
          true, -1, { "ok", 0, 7 }, 1, 3 },
        { "same without keyring", { "G0A", "V0Aa", "V1Aa", "CA201", "MA", "K0", NULL },
          false, -1, { "ok", 0, 6 }, 0, 0 },
        { "commit lists a rejecting key", { "V0Aa", "V2Ar", "CA202", NULL },
          true, -1, { "quorum_missing", 3, 2 }, 0, 2 },
        { "commit before the votes", { "CA201", "V0Aa", "V1Aa", NULL },
          false, -1, { "quorum_missing", 1, 0 }, 0, 0 },
        { "votes on another adapter", { "V0Ba", "V1Ba", "CA201", NULL },
          false, -1, { "quorum_missing", 3, 2 }, 0, 0 },
        { "equivocating key counts for neither", { "V0Aa", "V1Aa", "V1Ar", "CA201", NULL },
          true, -1, { "quorum_missing", 4, 3 }, 0, 3 },
        { "untrusted key's vote does not count", { "V0Aa", "V3Aa", "CA203", NULL },
          true, -1, { "quorum_missing", 3, 2 }, 0, 1 },
        { "untrusted vote counts without keyring", { "V0Aa", "V3Aa", "CA203", NULL },
          false, -1, { "ok", 0, 3 }, 0, 0 },
        { "broken vote signature", { "V0Aa", "X1Aa", NULL },
          true, -1, { "bad_vote_signature", 2, 1 }, 0, 1 },
        { "broken vote signature, no keyring", { "V0Aa", "X1Aa", NULL },
          false, -1, { "ok", 0, 2 }, 0, 0 },
        { "merge of an uncommitted adapter", { "V0Aa", "V1Aa", "CA201", "MAB", NULL },
          false, -1, { "merge_uncommitted", 4, 3 }, 0, 0 },
        { "checkpoint by a key outside the keyring", { "G0A", "K3", NULL },
          true, -1, { "checkpoint_signer_unknown", 2, 1 }, 0, 0 },
        { "checkpoint outside the keyring, no keyring", { "G0A", "K3", NULL },
          false, -1, { "ok", 0, 2 }, 0, 0 },
        { "merge replay matches", { "V0Aa", "V1Aa", "CA201", "MA", NULL },
          false, 0, { "ok", 0, 4 }, 0, 0 },
        { "merge replay differs", { "V0Aa", "V1Aa", "CA201", "MA", NULL },
          false, 1, { "merge_mismatch", 4, 3 }, 0, 0 },
    };
    char path[] = "/tmp/plora-test-audit-verify-XXXXXX";
    struct audit_verify_result r;
    struct crypto_diag d;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int mode = cases[i].replay;
        struct audit_verify_opts o = { .kr = cases[i].with_ring ? ring : NULL };
        if (mode >= 0) {
            o.merge_replay = replay_cb;
            o.merge_ctx = &mode;
        }
        run_script(path, cases[i].steps);
        assert_int_equal(audit_verify_file(path, &o, &r, &d), 0);
        check_result(cases[i].name, &r, &cases[i].want);
        if (r.checkpoints_verified != cases[i].ckpt_verified || r.votes_verified != cases[i].votes_verified)
            fail_msg("%s: %llu checkpoints and %llu votes verified, want %llu and %llu", cases[i].name,
                     (unsigned long long)r.checkpoints_verified, (unsigned long long)r.votes_verified,
                     (unsigned long long)cases[i].ckpt_verified, (unsigned long long)cases[i].votes_verified);
    }
    /* a replay that cannot run stops with its code (CLI exit 2) */
    {
        int mode = CRYPTO_E_IO;
        struct audit_verify_opts o = { .merge_replay = replay_cb, .merge_ctx = &mode };
        const char *const steps[] = { "V0Aa", "CA10", "MA", NULL };
        run_script(path, steps);
        assert_int_equal(audit_verify_file(path, &o, &r, &d), CRYPTO_E_IO);
        assert_non_null(strstr(d.msg, "line 3"));
    }
    unlink(path);
}

/* Rewrite every prev_hash from line `from` on so the chain holds again
 * (what a forger without the node key can do). */
static void rechain(char *buf, size_t n, size_t from, bool fix_heads)
{
    uint8_t h[SHA256_LEN] = {0};
    char hex[SHA256_HEX_LEN + 1];
    size_t line = 1;

    for (char *p = buf, *nl; p < buf + n && (nl = memchr(p, '\n', (size_t)(buf + n - p))) != NULL;
         p = nl + 1, line++) {
        if (line >= from && line > 1) {
            char *head = strstr(p, "\"head\": \"");
            sha256_hex(h, hex);
            memcpy(nl - 2 - SHA256_HEX_LEN, hex, SHA256_HEX_LEN);   /* ..."<hex>"}\n */
            if (fix_heads && strncmp(p, "{\"type\": \"checkpoint\"", 21) == 0 && head != NULL && head < nl)
                memcpy(head + 9, hex, SHA256_HEX_LEN);
        }
        assert_int_equal(sha256(p, (size_t)(nl - p), h), 0);
    }
}

static void test_rechained_forgery_vs_checkpoint(void **state)
{
    const char *const steps[] = { "G0A", "G0A", "G0A", "K0", "G0A", "G0A", NULL };
    char path[] = "/tmp/plora-test-audit-forge-XXXXXX";
    struct audit_verify_opts o = { .kr = ring };
    struct audit_verify_result r;
    struct crypto_diag d;
    char *buf, *at;
    size_t n;
    FILE *f;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    run_script(path, steps);
    buf = slurp(path, &n);
    /* forge line 2 (before the checkpoint): reject -> accept, same length */
    at = strstr(strchr(buf, '\n') + 1, "\"reject\"");
    memcpy(at, "\"accept\"", 8);
    /* a forger who leaves the checkpoint's head alone is caught without keys */
    rechain(buf, n, 3, false);
    f = fopen(path, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
    assert_int_equal(audit_verify_file(path, NULL, &r, &d), 0);
    check_result("forgery, checkpoint head left alone", &r,
                 &(struct expect){ "checkpoint_mismatch", 4, 3 });
    /* one who fixes it too keeps the chain; the signature (line 4) breaks */
    rechain(buf, n, 3, true);
    f = fopen(path, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
    assert_int_equal(audit_verify_file(path, &o, &r, &d), 0);
    check_result("forgery before a checkpoint, keyring", &r,
                 &(struct expect){ "bad_checkpoint_signature", 4, 3 });
    /* without a keyring nothing in the file can tell: that needs a head */
    assert_int_equal(audit_verify_file(path, NULL, &r, &d), 0);
    check_result("forgery before a checkpoint, no keyring", &r, &(struct expect){ "ok", 0, 6 });
    free(buf);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_table),
        cmocka_unit_test(test_prototype_verdicts_recorded),
        cmocka_unit_test(test_pieces_and_clone),
        cmocka_unit_test(test_parse_head),
        cmocka_unit_test(test_replay_rules),
        cmocka_unit_test(test_rechained_forgery_vs_checkpoint),
    };
    return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
