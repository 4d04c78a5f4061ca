/* tests/unit/test_store.c: daemon/store.c on a real fixture adapter: name
 * checks, begin/write/verify round trip in uneven chunks, range refusals,
 * hash mismatches (wrong id, flipped bytes), resume across a reopen, clean-up
 * of debris on open, quarantine of a damaged adapter, import, and a write
 * that hits a file-size limit (RLIMIT_FSIZE in a forked child).
 * Each test works in its own mkdtemp directory, removed at the end. */
#define _GNU_SOURCE  /* nftw's FTW_DEPTH/FTW_PHYS */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sha256.h"
#include "store.h"

#define FIX_DIR "peft/gpt2-c_attn-r8"
/* Published in the fixtures' README. */
#define FIX_ID "658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3e"
#define OTHER_ID "f6af8341ce7009c30ebf11ff0f361b01dd7eae004201d7015bab7a28c8ef4a43"

struct blob {
    uint8_t *p;
    size_t n;
};

struct fx {
    char tmp[64];     /* mkdtemp dir, removed at teardown */
    char data[128];   /* tmp/data: the store */
    char src[1024];   /* fixture adapter dir */
    struct blob st, cfg;
};

static const char *fixtures(void)
{
    const char *f = getenv("PLORA_FIXTURES");

    if (f == NULL)
        fail_msg("PLORA_FIXTURES is not set");
    return f;
}

static struct blob slurp(const char *path)
{
    struct blob b = { NULL, 0 };
    struct stat st;
    FILE *f = fopen(path, "rb");

    if (f == NULL || fstat(fileno(f), &st) != 0)
        fail_msg("fixture %s: %s", path, strerror(errno));
    b.n = (size_t)st.st_size;
    b.p = malloc(b.n + 1);
    assert_non_null(b.p);
    if (fread(b.p, 1, b.n, f) != b.n)
        fail_msg("fixture %s: short read", path);
    fclose(f);
    return b;
}

static void spit(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        fail_msg("cannot write %s: %s", path, strerror(errno));
}

static bool exists(const char *fmt, const char *a, const char *b)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), fmt, a, b);
    return access(path, F_OK) == 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    char path[PATH_MAX];

    assert_non_null(fx);
    snprintf(fx->src, sizeof(fx->src), "%s/" FIX_DIR, fixtures());
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", fx->src);
    fx->st = slurp(path);
    snprintf(path, sizeof(path), "%s/adapter_config.json", fx->src);
    fx->cfg = slurp(path);
    strcpy(fx->tmp, "/tmp/test_store.XXXXXX");  /* last: a failed fixture leaves no dir */
    assert_non_null(mkdtemp(fx->tmp));
    snprintf(fx->data, sizeof(fx->data), "%s/data", fx->tmp);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;

    nftw(fx->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(fx->st.p);
    free(fx->cfg.p);
    free(fx);
    return 0;
}

/* Number of entries in DATA/<sub>, "." and ".." excluded. */
static int count_dir(const struct fx *fx, const char *sub)
{
    char path[PATH_MAX];
    int n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "%s/%s", fx->data, sub);
    if ((d = opendir(path)) == NULL)
        return -1;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

#define EXPECT(call, want)                                                                  \
    do {                                                                                    \
        int got_ = (call);                                                                  \
        if (got_ != (want))                                                                 \
            fail_msg("%s: got %d (%s), want %s; %s", #call, got_, dmn_err_name(got_), #want, \
                     d.msg);                                                                \
    } while (0)

/* ---- names ---- */

static void test_names(void **state)
{
    static const struct { const char *s; bool id, name; } cases[] = {
        { FIX_ID, true, true },  /* 64 chars: the longest name */
        { "658BF57ED30D22120177CDA107E513C0712DB1B4324528CC4F65CDF562248E3E", false, false },
        { "658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3", false, true },
        { "658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3e0", false, false },
        { "658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3g", false, true },
        { "../658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf5622", false, false },
        { "", false, false },
        { "../x", false, false },
        { "a/b", false, false },
        { ".hidden", false, false },
        { "-x", false, false },
        { "sentiment", false, true },
        { "a", false, true },
        { "0", false, true },
        { "med.qa_v2-x", false, true },
        { "Sentiment", false, false },
        { "with space", false, false },
        { "tab\t", false, false },
        { "caf\xc3\xa9", false, false },
    };
    char n63[64], n64[65], n65[66];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (store_id_ok(cases[i].s) != cases[i].id)
            fail_msg("store_id_ok(\"%s\") = %d, want %d", cases[i].s, !cases[i].id, cases[i].id);
        if (store_name_ok(cases[i].s) != cases[i].name)
            fail_msg("store_name_ok(\"%s\") = %d, want %d", cases[i].s, !cases[i].name,
                     cases[i].name);
    }
    memset(n63, 'a', 63), n63[63] = '\0';
    memset(n64, 'a', 64), n64[64] = '\0';
    memset(n65, 'a', 65), n65[65] = '\0';
    assert_true(store_name_ok(n63));
    assert_true(store_name_ok(n64));   /* [a-z0-9] then up to 63 more */
    assert_false(store_name_ok(n65));
    assert_false(store_id_ok(n63));
    assert_true(store_id_ok(n64));
    assert_false(store_id_ok(n65));
    assert_false(store_id_ok(NULL));
    assert_false(store_name_ok(NULL));
}

/* ---- round trip ---- */

/* Write buf[from..to) in chunks of uneven sizes. */
static void write_chunks(struct store *s, const char *id, const struct blob *b, size_t from,
                         size_t to)
{
    static const size_t sizes[] = { 1, 4093, 65537, 7, 1u << 20, 333333, 2 };
    struct dmn_diag d = { 0 };
    size_t off = from, k = 0;

    while (off < to) {
        size_t n = sizes[k++ % (sizeof(sizes) / sizeof(sizes[0]))];
        if (n > to - off)
            n = to - off;
        EXPECT(store_write(s, id, off, b->p + off, n, &d), 0);
        off += n;
        assert_int_equal(store_resume_offset(s, id), off);
    }
}

static void test_round_trip(void **state)
{
    struct fx *fx = *state;
    static const char manifest[] = "domain: sentiment\n";
    struct dmn_diag d = { 0 };
    struct store_entry *list = NULL, e;
    struct store *s = NULL;
    uint8_t *meta = NULL, *back;
    size_t n = 0, len = 0, half = fx->st.n / 2;
    int fd;

    EXPECT(store_open(&s, fx->data, &d), 0);
    EXPECT(store_begin(s, FIX_ID, "sentiment", fx->st.n, fx->cfg.p, fx->cfg.n, manifest,
                       strlen(manifest), &d), 0);
    EXPECT(store_begin(s, FIX_ID, "sentiment", fx->st.n, NULL, 0, NULL, 0, &d), 0);
    write_chunks(s, FIX_ID, &fx->st, 0, half);
    /* Out of order (a gap), past the end, and an unknown id are refused. */
    EXPECT(store_write(s, FIX_ID, half + 1, fx->st.p + half + 1, 10, &d), DMN_E_RANGE);
    EXPECT(store_write(s, FIX_ID, half, fx->st.p, fx->st.n - half + 1, &d), DMN_E_RANGE);
    EXPECT(store_write(s, FIX_ID, UINT64_MAX, fx->st.p, 1, &d), DMN_E_RANGE);
    EXPECT(store_write(s, OTHER_ID, 0, fx->st.p, 1, &d), DMN_E_NOT_FOUND);
    EXPECT(store_write(s, "../x", 0, fx->st.p, 1, &d), DMN_E_NOT_FOUND);
    assert_int_equal(store_resume_offset(s, FIX_ID), half);
    /* Re-sending held bytes is allowed and changes nothing. */
    EXPECT(store_write(s, FIX_ID, 100, fx->st.p + 100, 5000, &d), 0);
    assert_int_equal(store_resume_offset(s, FIX_ID), half);
    EXPECT(store_verify(fx->data, FIX_ID, &d), DMN_E_RANGE);  /* not whole yet */
    write_chunks(s, FIX_ID, &fx->st, half, fx->st.n);
    EXPECT(store_write(s, FIX_ID, fx->st.n, fx->st.p, 1, &d), DMN_E_RANGE);
    EXPECT(store_list(s, &list, &n, &d), 0);
    assert_int_equal(n, 1);
    assert_false(list[0].whole);
    assert_int_equal(list[0].stored, fx->st.n);
    free(list);

    store_release(s, FIX_ID);
    EXPECT(store_verify(fx->data, FIX_ID, &d), 0);
    EXPECT(store_refresh(s, FIX_ID, &d), 0);
    assert_false(exists("%s/partial/%s", fx->data, FIX_ID));
    assert_true(exists("%s/adapters/%s/meta.json", fx->data, FIX_ID));
    EXPECT(store_get(s, FIX_ID, &e, &d), 0);
    assert_true(e.whole);
    assert_string_equal(e.domain, "sentiment");
    assert_int_equal(e.size, fx->st.n);
    assert_int_equal(e.stored, fx->st.n);
    assert_int_equal(store_resume_offset(s, FIX_ID), 0);
    EXPECT(store_begin(s, FIX_ID, "sentiment", fx->st.n, NULL, 0, NULL, 0, &d), DMN_E_EXISTS);
    EXPECT(store_write(s, FIX_ID, 0, fx->st.p, 1, &d), DMN_E_NOT_FOUND);

    /* The stored bytes are the fixture's. */
    fd = store_open_adapter_fd(s, FIX_ID, &d);
    if (fd < 0)
        fail_msg("store_open_adapter_fd: %d %s", fd, d.msg);
    back = malloc(fx->st.n + 1);
    assert_non_null(back);
    assert_int_equal(read(fd, back, fx->st.n + 1), (ssize_t)fx->st.n);
    assert_memory_equal(back, fx->st.p, fx->st.n);
    free(back);
    close(fd);
    EXPECT(store_read_meta(s, FIX_ID, "adapter_config.json", &meta, &len, &d), 0);
    assert_int_equal(len, fx->cfg.n);
    assert_memory_equal(meta, fx->cfg.p, len);
    free(meta);
    EXPECT(store_read_meta(s, FIX_ID, "plora.yml", &meta, &len, &d), 0);
    assert_int_equal(len, strlen(manifest));
    assert_memory_equal(meta, manifest, len);
    free(meta);
    EXPECT(store_read_meta(s, FIX_ID, "meta.json", &meta, &len, &d), DMN_E_ARG);
    EXPECT(store_read_meta(s, FIX_ID, "../../x", &meta, &len, &d), DMN_E_ARG);
    store_free(s);

    /* A reopened store lists it whole. */
    EXPECT(store_open(&s, fx->data, &d), 0);
    EXPECT(store_list(s, &list, &n, &d), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, FIX_ID);
    assert_true(list[0].whole);
    assert_int_equal(store_repair_count(s), 0);
    free(list);
    store_free(s);
}

/* ---- argument checks ---- */

static void test_begin_refusals(void **state)
{
    struct fx *fx = *state;
    static const struct {
        const char *name, *id, *domain;
        uint64_t size;
        int want;
    } cases[] = {
        { "uppercase id", "658BF57ED30D22120177CDA107E513C0712DB1B4324528CC4F65CDF562248E3E",
          "x", 10, DMN_E_NAME },
        { "traversal id", "../x", "x", 10, DMN_E_NAME },
        { "empty id", "", "x", 10, DMN_E_NAME },
        { "63-char id", "658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3", "x",
          10, DMN_E_NAME },
        { "traversal domain", FIX_ID, "../etc", 10, DMN_E_NAME },
        { "empty domain", FIX_ID, "", 10, DMN_E_NAME },
        { "size 0", FIX_ID, "x", 0, DMN_E_RANGE },
        { "size over 1 TiB", FIX_ID, "x", (1ull << 40) + 1, DMN_E_RANGE },
        { "size 1 TiB", FIX_ID, "x", 1ull << 40, 0 },
    };
    struct dmn_diag d = { 0 };
    struct store *s = NULL;
    char buf[PATH_MAX];

    EXPECT(store_open(&s, fx->data, &d), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = store_begin(s, cases[i].id, cases[i].domain, cases[i].size, NULL, 0, NULL, 0,
                              &d);
        if (got != cases[i].want)
            fail_msg("%s: got %s, want %s; %s", cases[i].name, dmn_err_name(got),
                     dmn_err_name(cases[i].want), d.msg);
    }
    assert_int_equal(count_dir(fx, "partial"), 1);
    EXPECT(store_begin(s, OTHER_ID, "x", 10, fx->st.p, (256u << 10) + 1, NULL, 0, &d),
           DMN_E_RANGE);
    EXPECT(store_begin(s, OTHER_ID, "x", 10, NULL, 0, fx->st.p, (256u << 10) + 1, &d),
           DMN_E_RANGE);
    EXPECT(store_begin(s, OTHER_ID, "x", 10, fx->st.p, 256u << 10, NULL, 0, &d), 0);
    EXPECT(store_discard(s, OTHER_ID, &d), 0);
    /* A different size restarts the partial from 0. */
    EXPECT(store_begin(s, FIX_ID, "x", fx->st.n, NULL, 0, NULL, 0, &d), 0);
    EXPECT(store_write(s, FIX_ID, 0, fx->st.p, 1000, &d), 0);
    EXPECT(store_begin(s, FIX_ID, "x", fx->st.n, NULL, 0, NULL, 0, &d), 0);
    assert_int_equal(store_resume_offset(s, FIX_ID), 1000);
    EXPECT(store_begin(s, FIX_ID, "y", fx->st.n, NULL, 0, NULL, 0, &d), 0);
    assert_int_equal(store_resume_offset(s, FIX_ID), 0);
    EXPECT(store_discard(s, FIX_ID, &d), 0);
    assert_int_equal(count_dir(fx, "partial"), 0);
    EXPECT(store_discard(s, "../x", &d), DMN_E_NAME);
    EXPECT(store_get(s, FIX_ID, &(struct store_entry){ 0 }, &d), DMN_E_NOT_FOUND);
    EXPECT(store_get(s, "x", &(struct store_entry){ 0 }, &d), DMN_E_NAME);
    /* Paths never truncate silently. */
    EXPECT(store_adapter_dir(s, FIX_ID, buf, sizeof(buf)), 0);
    EXPECT(store_adapter_dir(s, FIX_ID, buf, strlen(buf)), DMN_E_ARG);
    EXPECT(store_adapter_dir(s, "../x", buf, sizeof(buf)), DMN_E_NAME);
    EXPECT(store_verify(fx->data, "../x", &d), DMN_E_NAME);
    EXPECT(store_verify(fx->data, OTHER_ID, &d), DMN_E_NOT_FOUND);
    store_free(s);
}

/* ---- hash mismatch ---- */

static void test_hash_mismatch(void **state)
{
    struct fx *fx = *state;
    static const struct { const char *name, *id; long flip; } cases[] = {
        { "bytes of another adapter", OTHER_ID, -1 },
        { "first byte flipped", FIX_ID, 0 },
        { "middle bit flipped", FIX_ID, 1 },
        { "last byte flipped", FIX_ID, 2 },
    };
    struct dmn_diag d = { 0 };
    struct store *s = NULL;

    EXPECT(store_open(&s, fx->data, &d), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t at = cases[i].flip == 0 ? 0 : cases[i].flip == 1 ? fx->st.n / 2 : fx->st.n - 1;
        uint8_t save = fx->st.p[at];
        int got;

        if (cases[i].flip >= 0)
            fx->st.p[at] ^= cases[i].flip == 1 ? 0x10 : 0xff;
        EXPECT(store_begin(s, cases[i].id, "x", fx->st.n, NULL, 0, NULL, 0, &d), 0);
        write_chunks(s, cases[i].id, &fx->st, 0, fx->st.n);
        fx->st.p[at] = save;
        store_release(s, cases[i].id);
        got = store_verify(fx->data, cases[i].id, &d);
        if (got != DMN_E_HASH)
            fail_msg("%s: got %s, want DMN_E_HASH; %s", cases[i].name, dmn_err_name(got), d.msg);
        if (strstr(d.msg, cases[i].id) == NULL ||
            (cases[i].flip < 0 && strstr(d.msg, FIX_ID) == NULL))
            fail_msg("%s: message does not name expected and actual hashes: %s", cases[i].name,
                     d.msg);
        assert_false(exists("%s/partial/%s", fx->data, cases[i].id));
        /* Offered again before the refresh: a fresh partial from 0. */
        EXPECT(store_begin(s, cases[i].id, "x", fx->st.n, NULL, 0, NULL, 0, &d), 0);
        assert_int_equal(store_resume_offset(s, cases[i].id), 0);
        assert_true(exists("%s/partial/%s/meta.json", fx->data, cases[i].id));
        EXPECT(store_discard(s, cases[i].id, &d), 0);
        EXPECT(store_refresh(s, cases[i].id, &d), 0);
        assert_int_equal(count_dir(fx, "adapters"), 0);
        assert_int_equal(count_dir(fx, "partial"), 0);
        EXPECT(store_get(s, cases[i].id, &(struct store_entry){ 0 }, &d), DMN_E_NOT_FOUND);
    }
    store_free(s);
}

/* ---- resume ---- */

/* The digest kept while writing (store_release leaves it for store_verify)
 * must never vouch for bytes that changed after it was taken: a rewrite of
 * held bytes with other values, and the file edited on disk after release,
 * both fall back to a full hash and fail. The untouched case passes without
 * that fallback and must still land the adapter. */
static void test_incremental_hash(void **state)
{
    struct fx *fx = *state;
    struct dmn_diag d = { 0 };
    struct store *s = NULL;
    char path[1024];
    uint8_t x = 0;
    int fd;

    EXPECT(store_open(&s, fx->data, &d), 0);
    snprintf(path, sizeof(path), "%s/partial/%s/adapter_model.safetensors", fx->data, FIX_ID);
    for (int c = 0; c < 3; c++) {
        EXPECT(store_begin(s, FIX_ID, "x", fx->st.n, NULL, 0, NULL, 0, &d), 0);
        write_chunks(s, FIX_ID, &fx->st, 0, fx->st.n);
        if (c == 1) {   /* rewrite the first 4 held bytes with other values */
            uint8_t other[4] = { (uint8_t)~fx->st.p[0], (uint8_t)~fx->st.p[1],
                                 (uint8_t)~fx->st.p[2], (uint8_t)~fx->st.p[3] };
            int got = store_write(s, FIX_ID, 0, other, sizeof(other), &d);
            if (got != 0 && got != DMN_E_RANGE)
                fail_msg("rewrite of held bytes: %s (%s)", dmn_err_name(got), d.msg);
        }
        store_release(s, FIX_ID);
        if (c == 2) {   /* edit the file behind the store's back after release */
            assert_true((fd = open(path, O_RDWR)) >= 0);
            assert_int_equal(pread(fd, &x, 1, (off_t)(fx->st.n / 3)), 1);
            x ^= 0x01;
            assert_int_equal(pwrite(fd, &x, 1, (off_t)(fx->st.n / 3)), 1);
            close(fd);
        }
        uint64_t behind = store_verify_behind_count();
        int got = store_verify(fx->data, FIX_ID, &d);
        if (c == 0) {
            if (got != 0)
                fail_msg("untouched partial: %s (%s)", dmn_err_name(got), d.msg);
            assert_int_equal(store_verify_behind_count(), behind + 1);   /* no re-read */
            EXPECT(store_refresh(s, FIX_ID, &d), 0);
            assert_true(exists("%s/adapters/%s/adapter_model.safetensors", fx->data, FIX_ID));
            store_free(s);   /* start the next cases from an empty store */
            s = NULL;
            snprintf(path, sizeof(path), "rm -rf '%s/adapters/%s'", fx->data, FIX_ID);
            assert_int_equal(system(path), 0);
            EXPECT(store_open(&s, fx->data, &d), 0);
            snprintf(path, sizeof(path), "%s/partial/%s/adapter_model.safetensors", fx->data,
                     FIX_ID);
        } else if (got != DMN_E_HASH) {
            fail_msg("case %d: got %s, want DMN_E_HASH (%s)", c, dmn_err_name(got), d.msg);
        } else if (c == 1 && store_verify_behind_count() != behind) {
            fail_msg("a digest kept across a rewrite of held bytes was used");
        } else {
            EXPECT(store_refresh(s, FIX_ID, &d), 0);
            assert_false(exists("%s/adapters/%s", fx->data, FIX_ID));
        }
    }
    store_free(s);
}

static void test_resume(void **state)
{
    struct fx *fx = *state;
    struct dmn_diag d = { 0 };
    struct store_entry e;
    struct store *s = NULL;
    size_t half = fx->st.n / 2 + 3;

    EXPECT(store_open(&s, fx->data, &d), 0);
    EXPECT(store_begin(s, FIX_ID, "sentiment", fx->st.n, fx->cfg.p, fx->cfg.n, NULL, 0, &d), 0);
    write_chunks(s, FIX_ID, &fx->st, 0, half);
    store_free(s);  /* a restart, with the fd still cached */

    EXPECT(store_open(&s, fx->data, &d), 0);
    assert_int_equal(store_resume_offset(s, FIX_ID), half);
    EXPECT(store_get(s, FIX_ID, &e, &d), 0);
    assert_false(e.whole);
    assert_string_equal(e.domain, "sentiment");
    assert_int_equal(e.size, fx->st.n);
    assert_int_equal(e.stored, half);
    EXPECT(store_write(s, FIX_ID, half + 1, fx->st.p + half + 1, 1, &d), DMN_E_RANGE);
    write_chunks(s, FIX_ID, &fx->st, half, fx->st.n);
    store_release(s, FIX_ID);
    EXPECT(store_verify(fx->data, FIX_ID, &d), 0);
    EXPECT(store_refresh(s, FIX_ID, &d), 0);
    EXPECT(store_get(s, FIX_ID, &e, &d), 0);
    assert_true(e.whole);
    store_free(s);
}

/* ---- debris and damage on open ---- */

static void mk(const struct fx *fx, const char *rel, const char *content)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", fx->data, rel);
    if (content == NULL) {
        if (mkdir(path, 0700) != 0)
            fail_msg("mkdir %s: %s", path, strerror(errno));
    } else {
        spit(path, content, strlen(content));
    }
}

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ID_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define ID_D "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define ID_E "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"

static void test_open_repairs(void **state)
{
    struct fx *fx = *state;
    struct dmn_diag d = { 0 };
    struct store *s = NULL;
    struct store_entry *list = NULL;
    size_t n = 0;

    EXPECT(store_open(&s, fx->data, &d), 0);
    store_free(s);
    /* A valid partial with a leftover temp file inside. */
    mk(fx, "partial/" ID_A, NULL);
    mk(fx, "partial/" ID_A "/meta.json", "{\"domain\":\"x\",\"size\":10}");
    mk(fx, "partial/" ID_A "/adapter_model.safetensors", "0123");
    mk(fx, "partial/" ID_A "/.tmp-meta.json", "{\"dom");
    /* An interrupted import's staging dir. */
    mk(fx, "partial/.tmp-import-1-0", NULL);
    mk(fx, "partial/.tmp-import-1-0/adapter_model.safetensors", "xx");
    /* Partials without / with invalid meta.json, and one longer than declared. */
    mk(fx, "partial/" ID_B, NULL);
    mk(fx, "partial/" ID_B "/adapter_model.safetensors", "0123");
    mk(fx, "partial/" ID_C, NULL);
    mk(fx, "partial/" ID_C "/meta.json", "{\"domain\":\"../x\",\"size\":10}");
    mk(fx, "partial/" ID_D, NULL);
    mk(fx, "partial/" ID_D "/meta.json", "{\"domain\":\"x\",\"size\":3}");
    mk(fx, "partial/" ID_D "/adapter_model.safetensors", "0123");
    /* A whole adapter whose safetensors is shorter than meta.json says. */
    mk(fx, "adapters/" ID_E, NULL);
    mk(fx, "adapters/" ID_E "/meta.json", "{\"domain\":\"x\",\"size\":10}");
    mk(fx, "adapters/" ID_E "/adapter_model.safetensors", "0123");

    EXPECT(store_open(&s, fx->data, &d), 0);
    assert_false(exists("%s/partial/%s/.tmp-meta.json", fx->data, ID_A));
    assert_false(exists("%s/partial/%s", fx->data, ".tmp-import-1-0"));
    assert_false(exists("%s/partial/%s", fx->data, ID_B));
    assert_false(exists("%s/partial/%s", fx->data, ID_C));
    assert_false(exists("%s/partial/%s", fx->data, ID_D));
    assert_false(exists("%s/adapters/%s", fx->data, ID_E));
    assert_true(exists("%s/quarantine/%s.0/meta.json", fx->data, ID_E));
    assert_int_equal(store_resume_offset(s, ID_A), 4);
    assert_int_equal(store_repair_count(s), 1);
    assert_non_null(strstr(store_repair_msg(s, 0), ID_E));
    assert_null(store_repair_msg(s, 1));
    EXPECT(store_list(s, &list, &n, &d), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, ID_A);
    free(list);
    EXPECT(store_open_adapter_fd(s, ID_E, &d), DMN_E_NOT_FOUND);
    store_free(s);
}

static void test_junk_names(void **state)
{
    struct fx *fx = *state;
    static const char *const junk[] = {
        "adapters/notes.txt",
        "adapters/658BF57ED30D22120177CDA107E513C0712DB1B4324528CC4F65CDF562248E3E",
        "adapters/658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3",
        "partial/658bf57ed30d22120177cda107e513c0712db1b4324528cc4f65cdf562248e3e0",
        "partial/tmp-import",
    };
    struct dmn_diag d = { 0 };
    struct store *s = NULL;
    char path[PATH_MAX];

    EXPECT(store_open(&s, fx->data, &d), 0);
    store_free(s);
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        mk(fx, junk[i], "x");
        if (store_open(&s, fx->data, &d) != DMN_E_STORE_LAYOUT)
            fail_msg("%s: store_open did not report DMN_E_STORE_LAYOUT: %s", junk[i], d.msg);
        assert_null(s);
        if (strstr(d.msg, strchr(junk[i], '/') + 1) == NULL)
            fail_msg("%s: message does not name it: %s", junk[i], d.msg);
        snprintf(path, sizeof(path), "%s/%s", fx->data, junk[i]);
        assert_int_equal(access(path, F_OK), 0);  /* left for the operator */
        unlink(path);
    }
}

/* ---- import ---- */

static void test_import(void **state)
{
    struct fx *fx = *state;
    struct dmn_diag d = { 0 };
    struct store *s = NULL;
    struct store_entry e;
    char id[STORE_ID_HEX + 1], id2[STORE_ID_HEX + 1], hex[STORE_ID_HEX + 1], dir[1024];
    uint8_t md[SHA256_LEN], *meta = NULL;
    size_t len = 1;

    EXPECT(store_open(&s, fx->data, &d), 0);
    EXPECT(store_import(fx->data, fx->src, "sentiment", id, &d), 0);
    assert_int_equal(sha256(fx->st.p, fx->st.n, md), 0);
    sha256_hex(md, hex);
    assert_string_equal(id, hex);
    assert_string_equal(id, FIX_ID);
    /* Imported by a "worker": whole on disk before the table is refreshed. */
    EXPECT(store_begin(s, id, "sentiment", fx->st.n, NULL, 0, NULL, 0, &d), DMN_E_EXISTS);
    EXPECT(store_refresh(s, id, &d), 0);
    EXPECT(store_get(s, id, &e, &d), 0);
    assert_true(e.whole);
    assert_string_equal(e.domain, "sentiment");
    assert_int_equal(e.size, fx->st.n);
    EXPECT(store_read_meta(s, id, "plora.yml", &meta, &len, &d), 0);
    assert_null(meta);
    assert_int_equal(len, 0);
    /* Idempotent: same id, nothing new on disk, no staging left behind. */
    EXPECT(store_import(fx->data, fx->src, "sentiment", id2, &d), 0);
    assert_string_equal(id2, id);
    assert_int_equal(count_dir(fx, "adapters"), 1);
    assert_int_equal(count_dir(fx, "partial"), 0);

    /* Missing required files name the source; a bad domain is refused. */
    snprintf(dir, sizeof(dir), "%s/src", fx->tmp);
    assert_int_equal(mkdir(dir, 0700), 0);
    EXPECT(store_import(fx->data, dir, "sentiment", id2, &d), DMN_E_IO);
    assert_non_null(strstr(d.msg, dir));
    {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/adapter_model.safetensors", dir);
        spit(p, fx->st.p, fx->st.n - 1);  /* a different adapter (one byte shorter) */
    }
    EXPECT(store_import(fx->data, dir, "sentiment", id2, &d), DMN_E_IO);
    assert_non_null(strstr(d.msg, "adapter_config.json"));
    assert_int_equal(count_dir(fx, "partial"), 0);
    EXPECT(store_import(fx->data, fx->src, "../x", id2, &d), DMN_E_NAME);
    assert_int_equal(count_dir(fx, "adapters"), 1);
    store_free(s);
}

/* ---- disk full ---- */

/* In a child: RLIMIT_FSIZE makes a write past `lim` bytes fail (EFBIG, with
 * SIGXFSZ ignored), as a full disk would. Exit code = the first failed check. */
static int nospace_child(const struct fx *fx, size_t held, size_t lim)
{
    struct rlimit rl = { .rlim_cur = lim, .rlim_max = lim };
    struct dmn_diag d = { 0 };
    struct store *s = NULL;
    char path[PATH_MAX];
    struct stat st;
    int rc;

    if (store_open(&s, fx->data, &d) != 0 ||
        store_begin(s, FIX_ID, "x", fx->st.n, NULL, 0, NULL, 0, &d) != 0 ||
        store_write(s, FIX_ID, 0, fx->st.p, held, &d) != 0)
        return 10;
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
        return 11;
    /* Crosses the limit: a short write, then EFBIG. */
    rc = store_write(s, FIX_ID, held, fx->st.p + held, fx->st.n - held, &d);
    if (rc != DMN_E_NOSPACE)
        return 12;
    snprintf(path, sizeof(path), "%s/partial/%s/adapter_model.safetensors", fx->data, FIX_ID);
    if (strstr(d.msg, path) == NULL || strstr(d.msg, strerror(EFBIG)) == NULL)
        return 13;
    if (stat(path, &st) != 0 || (size_t)st.st_size != held)
        return 14;
    if (store_resume_offset(s, FIX_ID) != held)
        return 15;
    /* Entirely past the limit: fails at once, length unchanged. */
    if (store_write(s, FIX_ID, held, fx->st.p + held, 10, &d) != 0 ||
        store_write(s, FIX_ID, held + 10, fx->st.p + held + 10, lim, &d) != DMN_E_NOSPACE ||
        stat(path, &st) != 0 || (size_t)st.st_size != held + 10)
        return 16;
    store_free(s);
    return 0;
}

static void test_nospace(void **state)
{
    struct fx *fx = *state;
    struct dmn_diag d = { 0 };
    struct store *s = NULL;
    size_t held = 100000, lim = 300000;
    int status = 0;
    pid_t pid;

    assert_true(fx->st.n > lim + 20);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(nospace_child(fx, held, lim));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("disk-full child failed check %d (status 0x%x)", WEXITSTATUS(status), status);
    /* The parent (no limit) sees the partial at its last good length. */
    EXPECT(store_open(&s, fx->data, &d), 0);
    assert_int_equal(store_resume_offset(s, FIX_ID), held + 10);
    write_chunks(s, FIX_ID, &fx->st, held + 10, fx->st.n);
    store_release(s, FIX_ID);
    EXPECT(store_verify(fx->data, FIX_ID, &d), 0);
    store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_begin_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hash_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incremental_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_repairs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_junk_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nospace, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
