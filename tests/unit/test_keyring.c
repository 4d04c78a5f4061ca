/* tests/unit/test_keyring.c: keyring directories: dedup by key id (quorum case J),
 * revocation, sorted iteration, and broken trust stores that must fail naming the file. */
#define _GNU_SOURCE
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "keyring.h"

static const char *fixtures(void)
{
    const char *f = getenv("PLORA_FIXTURES");

    if (f == NULL)
        fail_msg("PLORA_FIXTURES is not set");
    return f;
}

/* Copy reference/<rel> to <dir>/<name>. */
static void put_ref(const char *dir, const char *rel, const char *name)
{
    char src[4096], dst[4096], buf[65536];
    FILE *in, *out;
    size_t n;

    snprintf(src, sizeof(src), "%s/reference/%s", fixtures(), rel);
    snprintf(dst, sizeof(dst), "%s/%s", dir, name);
    if ((in = fopen(src, "rb")) == NULL)
        fail_msg("missing fixture %s", src);
    out = fopen(dst, "wb");
    assert_non_null(out);
    n = fread(buf, 1, sizeof(buf), in);
    assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
}

static void put_text(const char *dir, const char *name, const char *text)
{
    char dst[4096];
    FILE *out;

    snprintf(dst, sizeof(dst), "%s/%s", dir, name);
    out = fopen(dst, "w");
    assert_non_null(out);
    fputs(text, out);
    fclose(out);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(p);
}

static char *new_dir(void)
{
    char *d = strdup("/tmp/plora-test-keyring-XXXXXX");

    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return d;
}

static void drop_dir(char *d)
{
    nftw(d, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(d);
}

static const char K0[] = "e1a5deb9526f0c6f085bb192d8761a870f6b9f859b73a8441ea5bf8469f5b53b";
static const char K1[] = "33218cf01d77b08029dda87d67450f04fe7c4d4c73d634b6d5dc28c7713e0653";
static const char K2[] = "058e761cc1d75eb41aa72ed74a721179cde989ccab1f04dde9abc4662c3fc6aa";
static const char K3[] = "be661cfc3ca47bb3eba0bf2ba28f33fa3c6b3d2991d1e683635a472ffb6fc0e3";
static const char K4[] = "7da15ce10b4fc291f2cb59d6c68b38700471f01ff0902e98edf81f2a22c9cc10";
static const char ED[] = "b5b6ca89b22388ee2676e9d4627ecb25072c133d9f449793ad11a0131fe8e989";
static const char RSA[] = "3d488b2fe2f924a78e99d7d49f005bc3f103b959b9d5edb1420567789c7d3ea2";

/* The quorum keys, key0 twice (case J), an Ed25519 key as .pub, and files
 * that are not keys: 6 distinct keys, each counted once, sorted by id. */
static void test_load_dedup(void **state)
{
    char *dir = new_dir(), sub[4096];
    struct keyring *kr = NULL;
    struct crypto_diag d;
    const char *want[] = { K2, K1, K4, ED, K3, K0 };   /* ascending */

    (void)state;
    for (int i = 0; i < 5; i++) {
        char rel[64], name[32];
        snprintf(rel, sizeof(rel), "quorum/keys/key%d_pub.pem", i);
        snprintf(name, sizeof(name), "key%d_pub.pem", i);
        put_ref(dir, rel, name);
    }
    put_ref(dir, "quorum/keys/key0_pub_copy.pem", "key0_pub_copy.pem");
    put_ref(dir, "quorum/keys/key0_pub.pem", "zz-key0-again.pub");
    put_ref(dir, "keys/ed25519_pub.pem", "ed.pub");
    put_text(dir, "README.txt", "not a key\n");
    put_text(dir, ".hidden.pem", "not a key either\n");
    put_ref(dir, "keys/rsa3072_priv.pem", "node.key");   /* other extension: ignored */
    snprintf(sub, sizeof(sub), "%s/sub.pem", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    if (keyring_load(&kr, dir, &d) != 0)
        fail_msg("%s", d.msg);
    assert_int_equal(keyring_count(kr), 6);
    assert_int_equal(keyring_trusted_count(kr), 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(key_id(keyring_at(kr, i)), want[i]);
    assert_null(keyring_at(kr, 6));
    assert_null(keyring_source_at(kr, 6));
    /* key0 is credited to the first file in name order. */
    assert_non_null(strstr(keyring_source_at(kr, 5), "/key0_pub.pem"));
    assert_true(keyring_is_trusted(kr, K0));
    assert_true(keyring_is_trusted(kr, ED));
    assert_false(keyring_is_trusted(kr, RSA));
    assert_null(keyring_get(kr, RSA));
    assert_null(keyring_get(kr, "not an id"));
    assert_null(keyring_get(kr, NULL));
    assert_false(key_is_private(keyring_get(kr, K0)));
    keyring_free(kr);
    drop_dir(dir);
}

static void test_revoked(void **state)
{
    char *dir = new_dir(), text[512];
    struct keyring *kr = NULL;
    struct crypto_diag d;
    const struct key *k;

    (void)state;
    put_ref(dir, "quorum/keys/key1_pub.pem", "k1.pem");
    put_ref(dir, "quorum/keys/key2_pub.pem", "k2.pem");
    snprintf(text, sizeof(text), "# revoked 2026-11-20\n%s\n\n%s\n# trailing comment", K2, RSA);
    put_text(dir, "revoked", text);
    if (keyring_load(&kr, dir, &d) != 0)
        fail_msg("%s", d.msg);
    assert_int_equal(keyring_count(kr), 2);
    assert_int_equal(keyring_trusted_count(kr), 1);
    assert_true(keyring_is_trusted(kr, K1));
    assert_false(keyring_is_trusted(kr, K2));
    assert_true(keyring_is_revoked(kr, K2));
    assert_true(keyring_is_revoked(kr, RSA));   /* revoked ahead of time */
    assert_non_null(keyring_get(kr, K2));
    assert_int_equal(keyring_lookup(kr, K1, &k, &d), 0);
    assert_string_equal(key_id(k), K1);
    assert_int_equal(keyring_lookup(kr, K2, &k, &d), CRYPTO_E_KEY_REVOKED);
    assert_null(k);
    assert_int_equal(keyring_lookup(kr, K3, &k, &d), CRYPTO_E_KEY_UNKNOWN);
    assert_non_null(strstr(d.msg, K3));
    assert_int_equal(keyring_revoke(kr, K1, &d), 0);
    assert_int_equal(keyring_revoke(kr, K1, &d), 0);
    assert_int_equal(keyring_trusted_count(kr), 0);
    assert_int_equal(keyring_revoke(kr, "E1A5", &d), CRYPTO_E_ARG);
    keyring_free(kr);
    drop_dir(dir);
}

/* A broken trust store is an error naming the file (and the line). */
static void test_broken(void **state)
{
    static const struct { const char *why; const char *rel; const char *name; const char *text;
                          int want; const char *named; size_t line; } c[] = {
        { "malformed PEM", NULL, "bad.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
          CRYPTO_E_KEY_PARSE, "bad.pem", 0 },
        { "empty .pub", NULL, "empty.pub", "", CRYPTO_E_KEY_PARSE, "empty.pub", 0 },
        { "private key", "quorum/keys/key3_priv.pem", "key3_priv.pem", NULL, CRYPTO_E_KEY_TYPE,
          "key3_priv.pem", 0 },
        { "revoked: uppercase id", NULL, "revoked",
          "# x\nE1A5DEB9526F0C6F085BB192D8761A870F6B9F859B73A8441EA5BF8469F5B53B\n",
          CRYPTO_E_KEYRING_REVOKED, "revoked:2", 2 },
        { "revoked: CRLF", NULL, "revoked",
          "e1a5deb9526f0c6f085bb192d8761a870f6b9f859b73a8441ea5bf8469f5b53b\r\n",
          CRYPTO_E_KEYRING_REVOKED, "revoked:1", 1 },
        { "revoked: trailing text", NULL, "revoked",
          "\n\ne1a5deb9526f0c6f085bb192d8761a870f6b9f859b73a8441ea5bf8469f5b53b key0\n",
          CRYPTO_E_KEYRING_REVOKED, "revoked:3", 3 },
        { "revoked: leading space", NULL, "revoked",
          " e1a5deb9526f0c6f085bb192d8761a870f6b9f859b73a8441ea5bf8469f5b53b\n",
          CRYPTO_E_KEYRING_REVOKED, "revoked:1", 1 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char *dir = new_dir();
        struct keyring *kr = (struct keyring *)1;
        struct crypto_diag d = {0};
        int rc;

        put_ref(dir, "quorum/keys/key0_pub.pem", "good.pem");
        if (c[i].rel != NULL)
            put_ref(dir, c[i].rel, c[i].name);
        else
            put_text(dir, c[i].name, c[i].text);
        rc = keyring_load(&kr, dir, &d);
        if (rc != c[i].want || kr != NULL)
            fail_msg("%s: got %s, want %s (%s)", c[i].why, crypto_err_name(rc),
                     crypto_err_name(c[i].want), d.msg);
        if (strstr(d.msg, c[i].named) == NULL || d.line != c[i].line)
            fail_msg("%s: message should name %s (line %zu): %s (line %zu)", c[i].why,
                     c[i].named, c[i].line, d.msg, d.line);
        drop_dir(dir);
    }
}

static void test_missing_dir(void **state)
{
    struct keyring *kr = (struct keyring *)1;
    struct crypto_diag d;

    (void)state;
    assert_int_equal(keyring_load(&kr, "/nonexistent/plora-keyring", &d), CRYPTO_E_KEYRING_DIR);
    assert_null(kr);
    assert_non_null(strstr(d.msg, "/nonexistent/plora-keyring"));
}

/* The reference quorum/keys directory holds private keys beside the public
 * ones: loading it as a keyring is refused, naming the first private file. */
static void test_reference_dir_refused(void **state)
{
    char dir[4096];
    struct keyring *kr = NULL;
    struct crypto_diag d;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/reference/quorum/keys", fixtures());
    assert_int_equal(keyring_load(&kr, dir, &d), CRYPTO_E_KEY_TYPE);
    assert_non_null(strstr(d.msg, "key0_priv.pem"));
}

static void test_add(void **state)
{
    struct keyring *kr = NULL;
    struct key *k = NULL, *pub = NULL;
    struct crypto_diag d;
    bool added;

    (void)state;
    assert_int_equal(keyring_new(&kr), 0);
    assert_int_equal(keyring_count(kr), 0);
    assert_null(keyring_at(kr, 0));
    assert_int_equal(key_generate_ed25519(&k, &d), 0);
    assert_int_equal(key_public_copy(&pub, k, &d), 0);
    assert_int_equal(keyring_add(kr, k, "generated", &added, &d), 0);
    assert_true(added);
    assert_int_equal(keyring_add(kr, pub, "copy", &added, &d), 0);
    assert_false(added);
    assert_int_equal(keyring_count(kr), 1);
    assert_false(key_is_private(keyring_at(kr, 0)));   /* the secret is not kept */
    assert_string_equal(keyring_source_at(kr, 0), "generated");
    assert_true(keyring_is_trusted(kr, key_id(k)));
    key_free(k);
    key_free(pub);
    keyring_free(kr);
    keyring_free(NULL);
}

/* The cap: KEYRING_MAX_KEYS distinct keys, then CRYPTO_E_KEYRING_FULL. */
static void test_full(void **state)
{
    struct keyring *kr = NULL;
    struct crypto_diag d;
    bool added;

    (void)state;
    assert_int_equal(keyring_new(&kr), 0);
    for (size_t i = 0; i <= KEYRING_MAX_KEYS; i++) {
        struct key *k = NULL;
        assert_int_equal(key_generate_ed25519(&k, &d), 0);
        int rc = keyring_add(kr, k, NULL, &added, &d);
        key_free(k);
        if (i < KEYRING_MAX_KEYS)
            assert_int_equal(rc, 0);
        else
            assert_int_equal(rc, CRYPTO_E_KEYRING_FULL);
    }
    assert_int_equal(keyring_count(kr), KEYRING_MAX_KEYS);
    for (size_t i = 1; i < KEYRING_MAX_KEYS; i++)
        assert_true(strcmp(key_id(keyring_at(kr, i - 1)), key_id(keyring_at(kr, i))) < 0);
    keyring_free(kr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_dedup),
        cmocka_unit_test(test_revoked),
        cmocka_unit_test(test_broken),
        cmocka_unit_test(test_missing_dir),
        cmocka_unit_test(test_reference_dir_refused),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
