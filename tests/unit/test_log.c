/* tests/unit/test_log.c: line format, level filter, one write per line
 * across threads, log_sanitize and log_short_id tables. fd 2 is redirected
 * to a temporary file while a test captures it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <regex.h>
#include <unistd.h>

#include "log.h"

/* Redirect fd 2 to a fresh temp file; returns the saved fd 2. */
static int capture_begin(FILE **tmp)
{
    int saved = dup(2);

    *tmp = tmpfile();
    assert_non_null(*tmp);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(*tmp), 2) == 2);
    return saved;
}

/* Restore fd 2; returns what was written (malloc'd). */
static char *capture_end(FILE *tmp, int saved)
{
    long n;
    char *s;

    assert_true(dup2(saved, 2) == 2);
    close(saved);
    fseek(tmp, 0, SEEK_END);
    n = ftell(tmp);
    rewind(tmp);
    s = calloc(1, (size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return s;
}

static void test_format(void **state)
{
    FILE *tmp;
    regex_t re;
    int saved;
    char *out;

    (void)state;
    log_set_level(LOG_INFO);
    saved = capture_begin(&tmp);
    log_warn("PEER-BAD-FRAME", "peer=%s closing after %d bytes", "3f9a..c1", 5);
    out = capture_end(tmp, saved);
    assert_int_equal(regcomp(&re, "^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:"
                             "[0-6][0-9]\\.[0-9]{3}Z W PEER-BAD-FRAME peer=3f9a\\.\\.c1 closing "
                             "after 5 bytes\n$", REG_EXTENDED), 0);
    if (regexec(&re, out, 0, NULL, 0) != 0)
        fail_msg("line does not match the format: \"%s\"", out);
    regfree(&re);
    free(out);
}

static void test_level_filter(void **state)
{
    static const struct { enum log_level set; const char *want; } cases[] = {
        { LOG_ERROR, "E" },
        { LOG_WARN, "EW" },
        { LOG_INFO, "EWI" },
        { LOG_DEBUG, "EWID" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        FILE *tmp;
        int saved;
        char *out, got[8] = { 0 };
        size_t k = 0;

        log_set_level(cases[i].set);
        assert_int_equal(log_get_level(), cases[i].set);
        saved = capture_begin(&tmp);
        log_error("EV-E", "e");
        log_warn("EV-W", "w");
        log_info("EV-I", "i");
        log_debug("EV-D", "d");
        out = capture_end(tmp, saved);
        for (char *line = out; *line != '\0' && k < 7; line = strchr(line, '\n') + 1)
            got[k++] = line[25];   /* the level letter after "<24-char stamp> " */
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("level %d: got letters \"%s\", want \"%s\"; output:\n%s", cases[i].set, got,
                     cases[i].want, out);
        free(out);
    }
    log_set_level(LOG_INFO);
}

/* A sentence with a newline stays one line; an overlong one is cut with "...". */
static void test_one_line(void **state)
{
    FILE *tmp;
    int saved;
    char *out, *big = malloc(10000);

    (void)state;
    assert_non_null(big);
    memset(big, 'x', 9999);
    big[9999] = '\0';
    log_set_level(LOG_INFO);
    saved = capture_begin(&tmp);
    log_info("EV-NL", "first\nsecond\rthird");
    log_info("EV-BIG", "%s", big);
    out = capture_end(tmp, saved);
    assert_non_null(strstr(out, "I EV-NL first second third\n"));
    char *second = strchr(out, '\n') + 1;
    size_t n2 = strlen(second);
    assert_true(n2 > 100 && n2 <= 4000);
    assert_int_equal(second[n2 - 1], '\n');
    assert_memory_equal(second + n2 - 4, "...\n", 4);
    assert_ptr_equal(strchr(second, '\n'), second + n2 - 1);   /* one line */
    free(out);
    free(big);
}

static void *log_thread(void *arg)
{
    for (int i = 0; i < 200; i++)
        log_info("EV-THREAD", "thread=%ld line=%d padding=%s", (long)(intptr_t)arg, i,
                 "0123456789abcdef0123456789abcdef");
    return NULL;
}

/* Lines from several threads never interleave: every line is whole. */
static void test_threads(void **state)
{
    pthread_t t[4];
    FILE *tmp;
    int saved, lines = 0;
    char *out;

    (void)state;
    log_set_level(LOG_INFO);
    saved = capture_begin(&tmp);
    for (intptr_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, log_thread, (void *)i), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    out = capture_end(tmp, saved);
    for (char *line = out, *nl; *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        assert_non_null(nl);
        if (strncmp(line + 25, "I EV-THREAD thread=", 19) != 0 ||
            strncmp(nl - 32, "0123456789abcdef0123456789abcdef", 32) != 0)
            fail_msg("torn line %d: %.*s", lines, (int)(nl - line), line);
        lines++;
    }
    assert_int_equal(lines, 800);
    free(out);
}

static void test_level_parse(void **state)
{
    (void)state;
    assert_int_equal(log_level_parse("error"), LOG_ERROR);
    assert_int_equal(log_level_parse("warn"), LOG_WARN);
    assert_int_equal(log_level_parse("info"), LOG_INFO);
    assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
    assert_int_equal(log_level_parse("Info"), -1);
    assert_int_equal(log_level_parse("warning"), -1);
    assert_int_equal(log_level_parse(""), -1);
    assert_int_equal(log_level_parse(NULL), -1);
}

static void test_sanitize(void **state)
{
    static const struct {
        const char *name, *in;
        size_t n, max, cap;
        const char *want;
    } cases[] = {
        { "plain", "hello", 5, 128, 64, "hello" },
        { "non-printables", "a\nb\x01" "c\x7f\xff", 7, 128, 64, "a.b.c.." },
        { "NUL inside", "ab\0cd", 5, 128, 64, "ab.cd" },
        { "cut by max", "abcdefghij", 10, 4, 64, "abcd..." },
        { "exactly max", "abcd", 4, 4, 64, "abcd" },
        { "cut by cap", "abcdefghij", 10, 128, 8, "abcd..." },
        { "fits cap", "abcdefg", 7, 128, 8, "abcdefg" },
        { "tiny cap", "abcdefghij", 10, 128, 3, ".." },
        { "cap one", "abc", 3, 128, 1, "" },
        { "empty", "", 0, 128, 8, "" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[128];
        memset(out, 'Z', sizeof(out));
        assert_ptr_equal(log_sanitize(out, cases[i].cap, cases[i].in, cases[i].n, cases[i].max), out);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].name, out, cases[i].want);
        assert_int_equal(out[cases[i].cap], 'Z');   /* nothing written past cap */
    }
}

static void test_short_id(void **state)
{
    static const struct { const char *in, *want; } cases[] = {
        { "3f9a00000000000000000000000000000000000000000000000000000000c1", "3f9a..c1" },
        { "abcdef0123", "abcd..23" },
        { "abcdef01", "abcdef01" },
        { "ab", "ab" },
        { "", "" },
        { "ab\ncd\x01" "efgh\n", "ab.c..h." },
    };
    char out[9];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_ptr_equal(log_short_id(out, cases[i].in), out);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("short id of \"%s\": got \"%s\", want \"%s\"", cases[i].in, out, cases[i].want);
    }
    assert_string_equal(log_short_id(out, NULL), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_level_filter),
        cmocka_unit_test(test_one_line),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_short_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
