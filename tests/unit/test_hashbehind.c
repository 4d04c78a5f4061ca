/* tests/unit/test_hashbehind.c: daemon/hashbehind.c against sha256_file on
 * the same bytes: a file written in uneven steps while the thread follows,
 * finish before and after the thread caught up, a wrong byte count, a file
 * shorter than advanced, cancel in the middle, and the process-wide cap.
 * Each test works in its own mkdtemp directory, removed at the end. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hashbehind.h"
#include "sha256.h"

#define BYTES ((3u << 20) + 12345u)   /* > HB_STEP several times, not a multiple */

struct fx {
    char dir[64], path[128];
    uint8_t *data;
    int fd;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/plora-hb-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/file", f->dir);
    assert_non_null(f->data = malloc(BYTES));
    for (size_t i = 0; i < BYTES; i++)
        f->data[i] = (uint8_t)(i * 2654435761u >> 13);
    assert_true((f->fd = open(f->path, O_RDWR | O_CREAT | O_TRUNC, 0600)) >= 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    close(f->fd);
    unlink(f->path);
    rmdir(f->dir);
    free(f->data);
    free(f);
    return 0;
}

static void write_at(struct fx *f, size_t off, size_t n)
{
    assert_int_equal(pwrite(f->fd, f->data + off, n, (off_t)off), (ssize_t)n);
}

/* The digest of the file's first n bytes, the slow way. */
static void reference(struct fx *f, size_t n, uint8_t md[SHA256_LEN])
{
    struct sha256_ctx *h = NULL;

    assert_int_equal(sha256_new(&h), 0);
    assert_int_equal(sha256_update(h, f->data, n), 0);
    assert_int_equal(sha256_final(h, md), 0);
    sha256_free(h);
}

/* Steps of 1 B .. 1 MiB + 7, advanced after each write; finish while the
 * thread may still be behind (wait = false) or after it surely caught up. */
static void run_steps(struct fx *f, bool wait)
{
    static const size_t steps[] = { 1, 4095, 65536, (1u << 20) + 7, 333, 262144 };
    uint8_t got[SHA256_LEN], want[SHA256_LEN];
    struct hashbehind *hb = hashbehind_start(f->path);
    size_t off = 0;

    assert_non_null(hb);
    for (size_t k = 0; off < BYTES; k++) {
        size_t n = steps[k % 6] < BYTES - off ? steps[k % 6] : BYTES - off;
        write_at(f, off, n);
        off += n;
        hashbehind_advance(hb, off);
    }
    if (wait)
        usleep(200 * 1000);
    reference(f, BYTES, want);
    assert_int_equal(hashbehind_finish(hb, BYTES, got), 0);
    assert_memory_equal(got, want, SHA256_LEN);
}

static void test_follow(void **state)
{
    run_steps(*state, false);
}

static void test_follow_caught_up(void **state)
{
    run_steps(*state, true);
}

/* finish with a count other than what was advanced fails: the caller must
 * not take a digest of some other prefix. */
static void test_wrong_count(void **state)
{
    struct fx *f = *state;
    uint8_t md[SHA256_LEN];
    struct hashbehind *hb = hashbehind_start(f->path);

    assert_non_null(hb);
    write_at(f, 0, 1000);
    hashbehind_advance(hb, 1000);
    assert_int_equal(hashbehind_finish(hb, 1001, md), -1);
    assert_non_null(hb = hashbehind_start(f->path));
    hashbehind_advance(hb, 1000);
    assert_int_equal(hashbehind_finish(hb, 999, md), -1);
}

/* Advanced past the end of the file (it was truncated behind the writer's
 * back): the read comes up short and finish fails instead of hashing less. */
static void test_short_file(void **state)
{
    struct fx *f = *state;
    uint8_t md[SHA256_LEN];
    struct hashbehind *hb = hashbehind_start(f->path);

    assert_non_null(hb);
    write_at(f, 0, 4096);
    hashbehind_advance(hb, 8192);
    assert_int_equal(hashbehind_finish(hb, 8192, md), -1);
}

/* Cancel while the thread waits for bytes and while it has work: returns,
 * frees (ASan), and the slot is free again. */
static void test_cancel(void **state)
{
    struct fx *f = *state;
    struct hashbehind *hb;

    hashbehind_cancel(NULL);
    assert_non_null(hb = hashbehind_start(f->path));
    hashbehind_cancel(hb);   /* waiting: nothing advanced */
    write_at(f, 0, BYTES);
    assert_non_null(hb = hashbehind_start(f->path));
    hashbehind_advance(hb, BYTES);
    hashbehind_cancel(hb);   /* busy */
    assert_non_null(hb = hashbehind_start(f->path));
    hashbehind_cancel(hb);
}

/* At most HASHBEHIND_MAX at once; a refused start is NULL (the caller
 * hashes later), and a freed one makes room. A missing file is NULL too. */
static void test_cap(void **state)
{
    struct fx *f = *state;
    struct hashbehind *hb[HASHBEHIND_MAX];
    char missing[160];

    for (size_t i = 0; i < HASHBEHIND_MAX; i++)
        assert_non_null(hb[i] = hashbehind_start(f->path));
    assert_null(hashbehind_start(f->path));
    hashbehind_cancel(hb[0]);
    assert_non_null(hb[0] = hashbehind_start(f->path));
    for (size_t i = 0; i < HASHBEHIND_MAX; i++)
        hashbehind_cancel(hb[i]);
    snprintf(missing, sizeof(missing), "%s/none", f->dir);
    assert_null(hashbehind_start(missing));
    assert_non_null(hb[0] = hashbehind_start(f->path));   /* the failed start gave its slot back */
    hashbehind_cancel(hb[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_follow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_caught_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
