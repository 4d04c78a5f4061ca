/* tests/unit/test_audit.c: the audit log writer and the line format.
 *
 * - exact bytes of a record (Python json.dumps layout and escapes) and the
 *   prototype's chain rule; every record type parses back as itself;
 * - reopen recovers count and head; a second writer is refused (same
 *   process and another process);
 * - a torn tail is moved to "<log>.torn.<n>" with its exact bytes and the
 *   log cut back; a complete bad last line refuses to open;
 * - write errors (/dev/full, a read-only descriptor) are returned and stop
 *   the writer; group commit acknowledges only after the sync;
 * - malformed lines and records are refused by the parser with the right code.
 */
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit.h"
#include "audit_verify.h"
#include "key.h"

static const char *ID_A = "658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3e";
static const char *ID_B = "f6af8341ce7009c30ebf11ff0f361b01dd7eae004201d7015bab7a28c8ef4a43";
static char dir[64];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/plora-test-audit-XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown_dir(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long len;

    if (f == NULL)
        fail_msg("cannot open %s", path);
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

static void log_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
    unlink(out);
}

static void append_gate(struct audit *a, const char *id, uint64_t now, uint64_t *seq)
{
    const char *why[] = { "sha256_mismatch" };
    struct audit_gate g = { id, "legal", false, why, 1 };
    struct crypto_diag d;

    if (audit_append_gate(a, 1795415300000ull + now, &g, now, seq, &d) != 0)
        fail_msg("append: %s", d.msg);
}

/* The exact bytes: Python's layout, escapes as json.dumps(ensure_ascii). */
static void test_line_bytes(void **state)
{
    static const char want[] =
        "{\"type\": \"gate\", \"ts\": 1795415300000, \"adapter\": "
        "\"658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3e\", "
        "\"domain\": \"m\\u00e9dical/\\u00fc\", \"verdict\": \"reject\", \"reasons\": "
        "[\"quote\\\"back\\\\slash\\ttab\", \"ctl\\u0001\", \"emoji\\ud83d\\ude00\"], \"prev_hash\": "
        "\"0000000000000000000000000000000000000000000000000000000000000000\"}\n";
    const char *why[] = { "quote\"back\\slash\ttab", "ctl\x01", "emoji\xf0\x9f\x98\x80" };
    struct audit_gate g = { ID_A, "m\xc3\xa9" "dical/\xc3\xbc", false, why, 3 };
    char path[128], *buf, hex[SHA256_HEX_LEN + 1], *second;
    uint8_t h[SHA256_LEN];
    struct crypto_diag d;
    struct audit *a;
    uint64_t seq = 0;
    size_t n;

    (void)state;
    log_path(path, sizeof(path), "bytes.jsonl");
    assert_int_equal(audit_open(&a, path, NULL, NULL, &d), 0);
    assert_int_equal(audit_append_gate(a, 1795415300000ull, &g, 0, &seq, &d), 0);
    assert_int_equal(seq, 1);
    append_gate(a, ID_B, 1, &seq);
    assert_int_equal(seq, 2);
    assert_int_equal(audit_close(a, &d), 0);
    buf = slurp(path, &n);
    second = strchr(buf, '\n') + 1;
    if (strncmp(buf, want, strlen(want)) != 0)
        fail_msg("line 1:\n got %.*s\nwant %s", (int)(second - buf), buf, want);
    /* prototype chain rule: SHA-256 hex of line 1 without its LF */
    assert_int_equal(sha256(buf, strlen(want) - 1, h), 0);
    sha256_hex(h, hex);
    assert_non_null(strstr(second, hex));
    free(buf);
}

static void test_every_type_round_trips(void **state)
{
    char path[128], *buf;
    struct audit *a;
    struct key *k;
    struct crypto_diag d;
    struct audit_record r;
    const char *ids[] = { ID_A, ID_B };
    double w[] = { 0.25, 0.75 };
    struct audit_peer p = { ID_A, "127.0.0.1:9000", "strike", "bad frame" };
    struct audit_commit c = { ID_A, "legal", 1, ids, 2 };
    struct audit_merge m = { ID_B, ids, w, 2, 8, NAN, 3.5, 1.25, 0.5, 0.01, ID_A };
    static const enum audit_type want[] = { AUDIT_START, AUDIT_PEER, AUDIT_GATE, AUDIT_COMMIT,
                                            AUDIT_MERGE, AUDIT_CHECKPOINT, AUDIT_STOP };
    size_t n, i = 0;

    (void)state;
    log_path(path, sizeof(path), "types.jsonl");
    assert_int_equal(key_generate_ed25519(&k, &d), 0);
    assert_int_equal(audit_open(&a, path, NULL, NULL, &d), 0);
    assert_int_equal(audit_append_start(a, 1, key_id(k), "0.1.0", 0, NULL, &d), 0);
    assert_int_equal(audit_append_peer(a, 2, &p, 0, NULL, &d), 0);
    append_gate(a, ID_A, 0, NULL);
    assert_int_equal(audit_append_commit(a, 4, &c, 0, NULL, &d), 0);
    assert_int_equal(audit_append_merge(a, 5, &m, 0, NULL, &d), 0);
    assert_int_equal(audit_append_checkpoint(a, 6, k, 0, NULL, &d), 0);
    assert_int_equal(audit_append_stop(a, 7, key_id(k), "sigterm", 0, NULL, &d), 0);
    assert_int_equal(audit_close(a, &d), 0);
    buf = slurp(path, &n);
    for (char *line = buf, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1, i++) {
        if (audit_line_parse(line, (size_t)(nl - line), &r, &d) != 0)
            fail_msg("line %zu: %s", i + 1, d.msg);
        assert_int_equal(r.type, want[i]);
    }
    assert_int_equal(i, 7);
    assert_non_null(strstr(buf, "\"tau\": null"));
    assert_non_null(strstr(buf, "\"weights\": [0.25, 0.75]"));
    free(buf);
    key_free(k);
}

/* Reopen: count and head survive; the chain continues. */
static void test_reopen(void **state)
{
    char path[128], head1[SHA256_HEX_LEN + 1], head2[SHA256_HEX_LEN + 1];
    struct audit_open_info info;
    struct audit_verify_result r;
    struct crypto_diag d;
    struct audit *a;
    uint64_t seq;

    (void)state;
    log_path(path, sizeof(path), "reopen.jsonl");
    assert_int_equal(audit_open(&a, path, NULL, &info, &d), 0);
    assert_int_equal(info.records, 0);
    for (int i = 0; i < 10; i++)
        append_gate(a, ID_A, 0, &seq);
    assert_int_equal(audit_head(a, head1), 10);
    assert_int_equal(audit_close(a, &d), 0);
    assert_int_equal(audit_open(&a, path, NULL, &info, &d), 0);
    assert_int_equal(info.records, 10);
    assert_string_equal(info.head, head1);
    assert_int_equal(audit_acked(a), 10);
    append_gate(a, ID_B, 0, &seq);
    assert_int_equal(seq, 11);
    assert_int_equal(audit_head(a, head2), 11);
    assert_int_equal(audit_close(a, &d), 0);
    assert_int_equal(audit_verify_file(path, NULL, &r, &d), 0);
    assert_true(r.ok);
    assert_int_equal(r.records, 11);
    assert_string_equal(r.head, head2);
}

static void test_lock(void **state)
{
    char path[128];
    struct crypto_diag d;
    struct audit *a, *b = NULL;
    pid_t pid;
    int status;

    (void)state;
    log_path(path, sizeof(path), "lock.jsonl");
    assert_int_equal(audit_open(&a, path, NULL, NULL, &d), 0);
    assert_int_equal(audit_open(&b, path, NULL, NULL, &d), CRYPTO_E_AUDIT_LOCKED);
    assert_null(b);
    assert_non_null(strstr(d.msg, path));
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct audit *c = NULL;
        _exit(audit_open(&c, path, NULL, NULL, NULL) == CRYPTO_E_AUDIT_LOCKED ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(audit_close(a, &d), 0);
    assert_int_equal(audit_open(&b, path, NULL, NULL, &d), 0);   /* free again */
    assert_int_equal(audit_close(b, &d), 0);
}

static void append_bytes(const char *path, const char *s, size_t n)
{
    FILE *f = fopen(path, "ab");

    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, n, f), n);
    fclose(f);
}

static void test_torn_tail_moved_aside(void **state)
{
    static const char torn1[] = "{\"type\": \"gate\", \"ts\": 17954";
    static const char torn2[] = "\x00\x00\x00\x00";   /* a zero-filled tail */
    char path[128], side[160], *buf, *before;
    struct audit_open_info info;
    struct audit_verify_result r;
    struct crypto_diag d;
    struct audit *a;
    size_t n, n0;
    uint64_t seq;

    (void)state;
    log_path(path, sizeof(path), "torn.jsonl");
    for (int k = 1; k <= 2; k++) {
        snprintf(side, sizeof(side), "%s.torn.%d", path, k);
        unlink(side);
    }
    assert_int_equal(audit_open(&a, path, NULL, NULL, &d), 0);
    for (int i = 0; i < 3; i++)
        append_gate(a, ID_A, 0, &seq);
    assert_int_equal(audit_close(a, &d), 0);
    before = slurp(path, &n0);
    append_bytes(path, torn1, sizeof(torn1) - 1);
    assert_int_equal(audit_verify_file(path, NULL, &r, &d), 0);
    assert_int_equal(r.reason, AUDIT_R_TORN_TAIL);
    assert_int_equal(r.first_bad_line, 4);
    /* reopen: moved to .torn.1 byte for byte, log cut back, appends go on */
    assert_int_equal(audit_open(&a, path, NULL, &info, &d), 0);
    assert_int_equal(info.records, 3);
    assert_int_equal(info.torn_bytes, sizeof(torn1) - 1);
    snprintf(side, sizeof(side), "%s.torn.1", path);
    assert_string_equal(info.torn_path, side);
    buf = slurp(side, &n);
    assert_int_equal(n, sizeof(torn1) - 1);
    assert_memory_equal(buf, torn1, n);
    free(buf);
    buf = slurp(path, &n);
    assert_int_equal(n, n0);
    assert_memory_equal(buf, before, n0);
    free(buf);
    append_gate(a, ID_B, 0, &seq);
    assert_int_equal(seq, 4);
    assert_int_equal(audit_close(a, &d), 0);
    /* a second torn tail (zeros, as after a power cut) goes to .torn.2 */
    append_bytes(path, torn2, sizeof(torn2) - 1);
    assert_int_equal(audit_open(&a, path, NULL, &info, &d), 0);
    assert_int_equal(info.torn_bytes, 4);
    snprintf(side, sizeof(side), "%s.torn.2", path);
    assert_string_equal(info.torn_path, side);
    buf = slurp(side, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(buf, torn2, 4);
    free(buf);
    assert_int_equal(audit_close(a, &d), 0);
    assert_int_equal(audit_verify_file(path, NULL, &r, &d), 0);
    assert_true(r.ok);
    assert_int_equal(r.records, 4);
    free(before);
}

/* A complete last line that is not a record, or breaks the chain, is not a
 * torn append: the writer refuses to build on it. */
static void test_damaged_last_line_refused(void **state)
{
    static const char *const tails[] = { "garbage\n", "\n",
        ("{\"type\": \"stop\", \"ts\": 1, \"node\": \"658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3e\", "
         "\"reason\": \"x\", \"prev_hash\": \"1111111111111111111111111111111111111111111111111111111111111111\"}\n") };
    char path[128];
    struct crypto_diag d;
    struct audit *a;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        log_path(path, sizeof(path), "damaged.jsonl");
        assert_int_equal(audit_open(&a, path, NULL, NULL, &d), 0);
        append_gate(a, ID_A, 0, NULL);
        append_gate(a, ID_A, 0, NULL);
        assert_int_equal(audit_close(a, &d), 0);
        append_bytes(path, tails[i], strlen(tails[i]));
        a = (struct audit *)1;
        assert_int_equal(audit_open(&a, path, NULL, NULL, &d), CRYPTO_E_AUDIT_DAMAGED);
        assert_null(a);
        assert_int_equal(d.line, 3);
    }
}

static void test_write_errors(void **state)
{
    struct audit_opts each = { .group_records = 1 };
    char path[128];
    struct crypto_diag d;
    struct audit *a;
    uint64_t seq = 0;
    int fd;

    (void)state;
    /* /dev/full: ENOSPC on the first write */
    fd = open("/dev/full", O_RDWR);
    if (fd < 0)
        fail_msg("cannot open /dev/full");
    assert_int_equal(audit_open_fd(&a, fd, "/dev/full", &each, NULL, &d), 0);
    const char *why[] = { "x" };
    struct audit_gate g = { ID_A, "legal", true, why, 1 };
    assert_int_equal(audit_append_gate(a, 1, &g, 0, &seq, &d), CRYPTO_E_IO);
    assert_non_null(strstr(d.msg, "/dev/full"));
    assert_true(audit_failed(a));
    assert_int_equal(audit_acked(a), 0);
    assert_int_equal(audit_append_gate(a, 2, &g, 0, &seq, &d), CRYPTO_E_AUDIT_FAILED);
    assert_int_equal(audit_sync(a, &d), CRYPTO_E_AUDIT_FAILED);
    assert_int_equal(audit_close(a, &d), 0);
    /* a read-only descriptor: EBADF at the group commit */
    log_path(path, sizeof(path), "ro.jsonl");
    close(open(path, O_CREAT | O_WRONLY, 0644));
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(audit_open_fd(&a, fd, path, NULL, NULL, &d), 0);
    assert_int_equal(audit_append_gate(a, 1, &g, 0, &seq, &d), 0);   /* buffered only */
    assert_int_equal(audit_acked(a), 0);
    assert_int_equal(audit_sync(a, &d), CRYPTO_E_IO);
    assert_int_equal(audit_append_gate(a, 2, &g, 0, &seq, &d), CRYPTO_E_AUDIT_FAILED);
    assert_int_equal(audit_acked(a), 0);
    assert_int_equal(audit_close(a, &d), 0);
}

static void test_group_commit(void **state)
{
    struct audit_opts o = { .group_records = 4, .group_ms = 10 };
    char path[128];
    struct crypto_diag d;
    struct audit *a;
    uint64_t seq;
    struct stat st;

    (void)state;
    log_path(path, sizeof(path), "group.jsonl");
    assert_int_equal(audit_open(&a, path, &o, NULL, &d), 0);
    assert_int_equal(audit_next_deadline_ms(a), UINT64_MAX);
    append_gate(a, ID_A, 100, &seq);
    append_gate(a, ID_A, 103, &seq);
    append_gate(a, ID_A, 105, &seq);
    assert_int_equal(seq, 3);
    assert_int_equal(audit_acked(a), 0);           /* not durable yet ... */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);               /* ... not even written */
    assert_int_equal(audit_next_deadline_ms(a), 110);
    assert_int_equal(audit_poll(a, 109, &d), 0);
    assert_int_equal(audit_acked(a), 0);
    assert_int_equal(audit_poll(a, 110, &d), 0);   /* deadline: group commit */
    assert_int_equal(audit_acked(a), 3);
    assert_int_equal(audit_next_deadline_ms(a), UINT64_MAX);
    for (int i = 0; i < 3; i++)
        append_gate(a, ID_A, 200, &seq);
    assert_int_equal(audit_acked(a), 3);
    append_gate(a, ID_A, 200, &seq);               /* 4th record: group full */
    assert_int_equal(audit_acked(a), 7);
    append_gate(a, ID_A, 300, &seq);
    append_gate(a, ID_A, 311, &seq);               /* an append past the deadline commits */
    assert_int_equal(audit_acked(a), 9);
    append_gate(a, ID_A, 400, &seq);
    assert_int_equal(audit_sync(a, &d), 0);        /* on demand */
    assert_int_equal(audit_acked(a), 10);
    assert_int_equal(audit_close(a, &d), 0);
}

static void test_bad_fields_refused(void **state)
{
    const char *dup[] = { ID_A, ID_A };
    const char *bad_hex[] = { "658BF57ED30D22120177CDA107E513C0712DB1B4324528CC4F65CDF562248E3E" };
    struct audit_commit c1 = { ID_A, "legal", 2, dup, 2 };
    struct audit_commit c2 = { ID_A, "legal", 2, dup, 1 };
    struct audit_commit c3 = { ID_A, "legal", 1, bad_hex, 1 };
    struct audit_peer p = { ID_A, "h:1", "hello", "" };
    char path[128], hex[SHA256_HEX_LEN + 1];
    struct crypto_diag d;
    struct audit *a;

    (void)state;
    log_path(path, sizeof(path), "fields.jsonl");
    assert_int_equal(audit_open(&a, path, NULL, NULL, &d), 0);
    assert_int_equal(audit_append_commit(a, 1, &c1, 0, NULL, &d), CRYPTO_E_AUDIT_FIELD);
    assert_int_equal(audit_append_commit(a, 1, &c2, 0, NULL, &d), CRYPTO_E_AUDIT_FIELD);
    assert_int_equal(audit_append_commit(a, 1, &c3, 0, NULL, &d), CRYPTO_E_AUDIT_FIELD);
    assert_int_equal(audit_append_peer(a, 1, &p, 0, NULL, &d), CRYPTO_E_AUDIT_FIELD);
    assert_int_equal(audit_append_start(a, 1, "node", "v", 0, NULL, &d), CRYPTO_E_AUDIT_FIELD);
    assert_int_equal(audit_head(a, hex), 0);       /* nothing was appended */
    assert_int_equal(audit_close(a, &d), 0);
}

/* Lines the parser must refuse, and with which code. */
static void test_parser_refuses(void **state)
{
#define P0 "\"prev_hash\": \"0000000000000000000000000000000000000000000000000000000000000000\"}"
#define GATE "{\"type\": \"gate\", \"ts\": 1, \"adapter\": \"658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3e\", \"domain\": \"d\", "
    static const struct { const char *name, *line; int want; } cases[] = {
        { "valid gate", GATE "\"verdict\": \"accept\", \"reasons\": [], " P0, 0 },
        { "valid prototype", "{\"plasmid_id\": \"p\", \"sha256\": \"s\", \"domain\": \"d\", \"passed\": true, \"reasons\": [\"a\"], " P0, 0 },
        { "not an object", "[1, 2]", CRYPTO_E_AUDIT_JSON },
        { "two objects", "{\"a\": 1}{\"b\": 2}", CRYPTO_E_AUDIT_JSON },
        { "trailing comma", GATE "\"verdict\": \"accept\", \"reasons\": [], " P0 ",", CRYPTO_E_AUDIT_JSON },
        { "raw tab in string", GATE "\"verdict\": \"acc\tept\", \"reasons\": [], " P0, CRYPTO_E_AUDIT_JSON },
        { "non-ASCII byte", GATE "\"verdict\": \"acc\xc3\xa9pt\", \"reasons\": [], " P0, CRYPTO_E_AUDIT_JSON },
        { "bad escape", GATE "\"verdict\": \"a\\x\", \"reasons\": [], " P0, CRYPTO_E_AUDIT_JSON },
        { "leading zero", "{\"type\": \"gate\", \"ts\": 01}", CRYPTO_E_AUDIT_JSON },
        { "deep nesting", "{\"type\": [[[[[[[[[[1]]]]]]]]]]}", CRYPTO_E_AUDIT_JSON },
        { "unknown type", "{\"type\": \"party\", \"ts\": 1, " P0, CRYPTO_E_AUDIT_RECORD },
        { "bad verdict", GATE "\"verdict\": \"maybe\", \"reasons\": [], " P0, CRYPTO_E_AUDIT_RECORD },
        { "reasons not strings", GATE "\"verdict\": \"accept\", \"reasons\": [1], " P0, CRYPTO_E_AUDIT_RECORD },
        { "upper-case prev_hash", GATE "\"verdict\": \"accept\", \"reasons\": [], \"prev_hash\": \"000000000000000000000000000000000000000000000000000000000000000A\"}", CRYPTO_E_AUDIT_RECORD },
        { "duplicate prev_hash", GATE "\"verdict\": \"accept\", \"reasons\": [], \"prev_hash\": \"0000000000000000000000000000000000000000000000000000000000000000\", " P0, CRYPTO_E_AUDIT_RECORD },
        { "members reordered", "{\"type\": \"gate\", \"adapter\": \"658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3e\", \"ts\": 1, \"domain\": \"d\", \"verdict\": \"accept\", \"reasons\": [], " P0, CRYPTO_E_AUDIT_RECORD },
        { "ts negative", "{\"type\": \"stop\", \"ts\": -1, " P0, CRYPTO_E_AUDIT_RECORD },
        { "ts too big", "{\"type\": \"stop\", \"ts\": 18446744073709551616, " P0, CRYPTO_E_AUDIT_RECORD },
        { "commit quorum 0", "{\"type\": \"commit\", \"ts\": 1, \"adapter\": \"658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3e\", \"domain\": \"d\", \"quorum\": 0, \"signers\": [], " P0, CRYPTO_E_AUDIT_RECORD },
        { "prototype missing passed", "{\"plasmid_id\": \"p\", \"sha256\": \"s\", \"domain\": \"d\", \"reasons\": [], " P0, CRYPTO_E_AUDIT_RECORD },
    };
    struct audit_record r;
    struct crypto_diag d;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = audit_line_parse(cases[i].line, strlen(cases[i].line), &r, &d);
        if (rc != cases[i].want)
            fail_msg("%s: got %s, want %s (%s)", cases[i].name, crypto_err_name(rc),
                     crypto_err_name(cases[i].want), rc ? d.msg : "");
    }
#undef P0
#undef GATE
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_bytes),
        cmocka_unit_test(test_every_type_round_trips),
        cmocka_unit_test(test_reopen),
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_torn_tail_moved_aside),
        cmocka_unit_test(test_damaged_last_line_refused),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_bad_fields_refused),
        cmocka_unit_test(test_parser_refuses),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
