/* tests/unit/test_key.c: key ids of the reference keys, generate/save/load round trips,
 * and every malformed, truncated, oversized or wrong-kind key that must be refused. */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
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
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "key.h"

static const char *fixtures(void)
{
    const char *f = getenv("PLORA_FIXTURES");

    if (f == NULL)
        fail_msg("PLORA_FIXTURES is not set");
    return f;
}

static void ref_path(char *out, size_t cap, const char *rel)
{
    struct stat st;

    snprintf(out, cap, "%s/reference/%s", fixtures(), rel);
    if (stat(out, &st) != 0)
        fail_msg("missing fixture %s", out);
}

/* Whole file into a new NUL-terminated buffer. */
static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *buf;

    if (f == NULL)
        fail_msg("cannot open %s", path);
    buf = malloc(1 << 20);
    assert_non_null(buf);
    *n = fread(buf, 1, (1 << 20) - 1, f);
    buf[*n] = '\0';
    fclose(f);
    return buf;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(p);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Expected ids: `openssl pkey -pubin -in X -outform DER | sha256sum`, run once by hand. */
static const struct { const char *file; bool priv; const char *id; enum key_type type; unsigned bits; }
    ref_keys[] = {
    { "keys/rsa3072_pub.pem", false,
      "3d488b2fe2f924a78e99d7d49f005bc3f103b959b9d5edb1420567789c7d3ea2", KEY_TYPE_RSA, 3072 },
    { "keys/rsa3072_priv.pem", true,
      "3d488b2fe2f924a78e99d7d49f005bc3f103b959b9d5edb1420567789c7d3ea2", KEY_TYPE_RSA, 3072 },
    { "keys/ed25519_pub.pem", false,
      "b5b6ca89b22388ee2676e9d4627ecb25072c133d9f449793ad11a0131fe8e989", KEY_TYPE_ED25519, 256 },
    { "keys/ed25519_priv.pem", true,
      "b5b6ca89b22388ee2676e9d4627ecb25072c133d9f449793ad11a0131fe8e989", KEY_TYPE_ED25519, 256 },
    { "quorum/keys/key0_pub.pem", false,
      "e1a5deb9526f0c6f085bb192d8761a870f6b9f859b73a8441ea5bf8469f5b53b", KEY_TYPE_RSA, 3072 },
    { "quorum/keys/key0_pub_copy.pem", false,
      "e1a5deb9526f0c6f085bb192d8761a870f6b9f859b73a8441ea5bf8469f5b53b", KEY_TYPE_RSA, 3072 },
    { "quorum/keys/key0_priv.pem", true,
      "e1a5deb9526f0c6f085bb192d8761a870f6b9f859b73a8441ea5bf8469f5b53b", KEY_TYPE_RSA, 3072 },
    { "quorum/keys/key1_pub.pem", false,
      "33218cf01d77b08029dda87d67450f04fe7c4d4c73d634b6d5dc28c7713e0653", KEY_TYPE_RSA, 3072 },
    { "quorum/keys/key2_pub.pem", false,
      "058e761cc1d75eb41aa72ed74a721179cde989ccab1f04dde9abc4662c3fc6aa", KEY_TYPE_RSA, 3072 },
    { "quorum/keys/key3_pub.pem", false,
      "be661cfc3ca47bb3eba0bf2ba28f33fa3c6b3d2991d1e683635a472ffb6fc0e3", KEY_TYPE_RSA, 3072 },
    { "quorum/keys/key4_pub.pem", false,
      "7da15ce10b4fc291f2cb59d6c68b38700471f01ff0902e98edf81f2a22c9cc10", KEY_TYPE_RSA, 3072 },
};

static void test_reference_key_ids(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ref_keys) / sizeof(ref_keys[0]); i++) {
        char path[4096];
        struct key *k = NULL;
        struct crypto_diag d;
        int rc;

        ref_path(path, sizeof(path), ref_keys[i].file);
        rc = ref_keys[i].priv ? key_load_private_pem(&k, path, &d) : key_load_public_pem(&k, path, &d);
        if (rc != 0)
            fail_msg("%s: %s", ref_keys[i].file, d.msg);
        if (strcmp(key_id(k), ref_keys[i].id) != 0)
            fail_msg("%s: id %s, want %s", ref_keys[i].file, key_id(k), ref_keys[i].id);
        assert_int_equal(key_type(k), ref_keys[i].type);
        assert_int_equal(key_bits(k), ref_keys[i].bits);
        assert_int_equal(key_is_private(k), ref_keys[i].priv);
        key_free(k);
    }
    key_free(NULL);
}

/* The key id is the SHA-256 of key_public_der; DER round-trips; every
 * truncation and an extra trailing byte are refused. */
static void test_der(void **state)
{
    char path[4096];
    struct key *k = NULL, *k2 = NULL;
    struct crypto_diag d;
    uint8_t *der = NULL, *ext, md[SHA256_LEN];
    size_t n;
    char hex[SHA256_HEX_LEN + 1];

    (void)state;
    ref_path(path, sizeof(path), "keys/rsa3072_priv.pem");
    assert_int_equal(key_load_private_pem(&k, path, &d), 0);
    assert_int_equal(key_public_der(k, &der, &n, &d), 0);
    assert_int_equal(sha256(der, n, md), 0);
    sha256_hex(md, hex);
    assert_string_equal(hex, key_id(k));
    assert_memory_equal(key_id_bin(k), md, SHA256_LEN);
    assert_int_equal(key_from_public_der(&k2, der, n, "peer", &d), 0);
    assert_string_equal(key_id(k2), key_id(k));
    assert_false(key_is_private(k2));
    key_free(k2);
    for (size_t cut = 0; cut < n; cut++) {
        k2 = (struct key *)1;
        if (key_from_public_der(&k2, der, cut, "peer", &d) == 0 || k2 != NULL)
            fail_msg("DER truncated to %zu of %zu bytes was accepted", cut, n);
    }
    ext = malloc(n + 1);
    assert_non_null(ext);
    memcpy(ext, der, n);
    ext[n] = 0;
    assert_int_equal(key_from_public_der(&k2, ext, n + 1, "peer", &d), CRYPTO_E_KEY_PARSE);
    assert_int_equal(key_from_public_der(&k2, ext, KEY_DER_MAX + 1, "peer", &d), CRYPTO_E_KEY_TOO_BIG);
    free(ext);
    free(der);
    key_free(k);
}

/* generate -> save -> load for RSA-2048, the RSA default size and Ed25519:
 * ids equal, file modes 0600/0644, public copy, PEM text equals the file. */
static void roundtrip(struct key *k, const char *dir, const char *tag)
{
    char priv[4096], pub[4096], *pem = NULL, *file;
    struct key *lp = NULL, *lq = NULL, *cp = NULL;
    struct crypto_diag d;
    struct stat st;
    size_t n, fn;

    snprintf(priv, sizeof(priv), "%s/%s.key", dir, tag);
    snprintf(pub, sizeof(pub), "%s/%s.pub", dir, tag);
    if (key_save_private(k, priv, &d) != 0 || key_save_public(k, pub, &d) != 0)
        fail_msg("%s: save: %s", tag, d.msg);
    assert_int_equal(stat(priv, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(pub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    if (key_load_private_pem(&lp, priv, &d) != 0 || key_load_public_pem(&lq, pub, &d) != 0)
        fail_msg("%s: load: %s", tag, d.msg);
    assert_string_equal(key_id(lp), key_id(k));
    assert_string_equal(key_id(lq), key_id(k));
    assert_true(key_is_private(lp));
    assert_false(key_is_private(lq));
    assert_int_equal(key_bits(lq), key_bits(k));
    assert_int_equal(key_public_copy(&cp, lp, &d), 0);
    assert_false(key_is_private(cp));
    assert_string_equal(key_id(cp), key_id(k));
    assert_int_equal(key_save_private(cp, priv, &d), CRYPTO_E_KEY_NOT_PRIVATE);
    assert_int_equal(key_public_pem(k, &pem, &n, &d), 0);
    file = slurp(pub, &fn);
    assert_int_equal(n, fn);
    assert_string_equal(pem, file);
    /* Never overwritten: the file keeps its bytes. */
    assert_int_equal(key_save_public(lp, pub, &d), CRYPTO_E_KEY_EXISTS);
    assert_non_null(strstr(d.msg, pub));
    assert_int_equal(key_save_private(lp, priv, &d), CRYPTO_E_KEY_EXISTS);
    free(file);
    file = slurp(pub, &fn);
    assert_string_equal(pem, file);
    free(file);
    free(pem);
    key_free(lp);
    key_free(lq);
    key_free(cp);
}

static void test_generate_save_load(void **state)
{
    char dir[] = "/tmp/plora-test-key-XXXXXX";
    struct key *k = NULL;
    struct crypto_diag d;

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(key_generate_rsa(&k, 2048, &d), 0);
    assert_int_equal(key_bits(k), 2048);
    assert_int_equal(key_type(k), KEY_TYPE_RSA);
    assert_string_equal(key_type_name(key_type(k)), "rsa");
    roundtrip(k, dir, "rsa2048");
    key_free(k);
    assert_int_equal(key_generate_ed25519(&k, &d), 0);
    assert_int_equal(key_type(k), KEY_TYPE_ED25519);
    roundtrip(k, dir, "ed25519");
    key_free(k);
    assert_int_equal(key_generate_rsa(&k, KEY_RSA_BITS_DEFAULT, &d), 0);
    assert_int_equal(key_bits(k), 3072);
    roundtrip(k, dir, "rsa3072");
    key_free(k);
    rm_tree(dir);
}

static void test_generate_bad_bits(void **state)
{
    static const unsigned bad[] = { 0, 512, 1024, 2047, 16385, 65536 };
    struct key *k = (struct key *)1;
    struct crypto_diag d;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(key_generate_rsa(&k, bad[i], &d), CRYPTO_E_KEY_SIZE);
        assert_null(k);
    }
}

/* PEM text made with OpenSSL directly, for kinds plorad must refuse. */
static char *pem_of(EVP_PKEY *p, int how)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;
    int ok = 0;

    assert_non_null(b);
    switch (how) {
    case 0: ok = PEM_write_bio_PUBKEY(b, p); break;
    case 1: ok = PEM_write_bio_PrivateKey(b, p, NULL, NULL, 0, NULL, NULL); break;
    case 2: ok = PEM_write_bio_PKCS8PrivateKey(b, p, EVP_aes_256_cbc(), "pw", 2, NULL, NULL); break;
    case 3: ok = PEM_write_bio_PrivateKey_traditional(b, p, NULL, NULL, 0, NULL, NULL); break;
    case 4: ok = PEM_write_bio_PrivateKey_traditional(b, p, EVP_aes_256_cbc(), (unsigned char *)"pw",
                                                       2, NULL, NULL); break;
    }
    assert_int_equal(ok, 1);
    n = BIO_get_mem_data(b, &data);
    out = malloc((size_t)n + 1);
    assert_non_null(out);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    BIO_free(b);
    return out;
}

static void expect_pub(const char *what, const char *pem, size_t n, int want)
{
    struct key *k = (struct key *)1;
    struct crypto_diag d = {0};
    int rc = key_from_public_pem(&k, pem, n, "test.pem", &d);

    if (rc != want || (rc != 0 && k != NULL))
        fail_msg("public %s: got %s, want %s (%s)", what, crypto_err_name(rc),
                 crypto_err_name(want), d.msg);
    if (rc != 0 && strstr(d.msg, "test.pem") == NULL)
        fail_msg("public %s: message does not name the source: %s", what, d.msg);
    key_free(rc == 0 ? k : NULL);
}

static void expect_priv(const char *what, const char *pem, size_t n, int want)
{
    struct key *k = (struct key *)1;
    struct crypto_diag d = {0};
    int rc = key_from_private_pem(&k, pem, n, "test.key", &d);

    if (rc != want || (rc != 0 && k != NULL))
        fail_msg("private %s: got %s, want %s (%s)", what, crypto_err_name(rc),
                 crypto_err_name(want), d.msg);
    if (rc != 0 && strstr(d.msg, "test.key") == NULL)
        fail_msg("private %s: message does not name the source: %s", what, d.msg);
    key_free(rc == 0 ? k : NULL);
}

static void test_wrong_kinds(void **state)
{
    EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    char *s;

    (void)state;
    assert_non_null(rsa1024);
    assert_non_null(ec);
    assert_non_null(rsa);
    s = pem_of(rsa1024, 0); expect_pub("RSA-1024", s, strlen(s), CRYPTO_E_KEY_SIZE); free(s);
    s = pem_of(rsa1024, 1); expect_priv("RSA-1024", s, strlen(s), CRYPTO_E_KEY_SIZE); free(s);
    s = pem_of(ec, 0); expect_pub("EC P-256", s, strlen(s), CRYPTO_E_KEY_TYPE); free(s);
    s = pem_of(ec, 1); expect_priv("EC P-256", s, strlen(s), CRYPTO_E_KEY_TYPE); free(s);
    s = pem_of(rsa, 1); expect_pub("PKCS#8 private", s, strlen(s), CRYPTO_E_KEY_TYPE); free(s);
    s = pem_of(rsa, 0); expect_priv("SPKI public", s, strlen(s), CRYPTO_E_KEY_TYPE); free(s);
    s = pem_of(rsa, 2); expect_priv("encrypted PKCS#8", s, strlen(s), CRYPTO_E_KEY_ENCRYPTED); free(s);
    s = pem_of(rsa, 4); expect_priv("encrypted PKCS#1", s, strlen(s), CRYPTO_E_KEY_ENCRYPTED); free(s);
    s = pem_of(rsa, 3); expect_priv("traditional PKCS#1", s, strlen(s), 0); free(s);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
}

/* Garbage around a valid public PEM, and every truncation of it. */
static void test_malformed_pem(void **state)
{
    char path[4096], buf[8192], *pem;
    size_t n;

    (void)state;
    ref_path(path, sizeof(path), "keys/rsa3072_pub.pem");
    pem = slurp(path, &n);
    expect_pub("as is", pem, n, 0);
    expect_pub("empty", "", 0, CRYPTO_E_KEY_PARSE);
    expect_pub("text", "hello\n", 6, CRYPTO_E_KEY_PARSE);
    snprintf(buf, sizeof(buf), "\n  \n%s\n\n", pem);
    expect_pub("surrounding blank lines", buf, strlen(buf), 0);
    snprintf(buf, sizeof(buf), "comment\n%s", pem);
    expect_pub("leading text", buf, strlen(buf), CRYPTO_E_KEY_PARSE);
    snprintf(buf, sizeof(buf), "%sjunk\n", pem);
    expect_pub("trailing text", buf, strlen(buf), CRYPTO_E_KEY_PARSE);
    snprintf(buf, sizeof(buf), "%s%s", pem, pem);
    expect_pub("two blocks", buf, strlen(buf), CRYPTO_E_KEY_PARSE);
    snprintf(buf, sizeof(buf), "%s", pem);
    memcpy(strstr(buf, "PUBLIC KEY"), "RSA PUBLIC", 10);   /* label changed in BEGIN only */
    expect_pub("mismatched labels", buf, strlen(buf), CRYPTO_E_KEY_PARSE);
    snprintf(buf, sizeof(buf), "%s", pem);
    buf[40] = buf[40] == 'A' ? 'B' : 'A';   /* inside the SPKI header: algorithm OID bytes */
    expect_pub("changed DER header", buf, strlen(buf), CRYPTO_E_KEY_PARSE);
    /* Cutting only the final newline leaves a whole PEM; any shorter cut must fail. */
    assert_true(n > 1 && pem[n - 1] == '\n' && pem[n - 2] == '-');
    for (size_t cut = 0; cut < n - 1; cut++) {
        struct key *k = NULL;
        struct crypto_diag d;
        if (key_from_public_pem(&k, pem, cut, "cut.pem", &d) == 0)
            fail_msg("PEM truncated to %zu of %zu bytes was accepted", cut, n);
    }
    free(pem);
    char *big = malloc(KEY_PEM_MAX + 2);
    assert_non_null(big);
    memset(big, ' ', KEY_PEM_MAX + 1);
    expect_pub("over the cap", big, KEY_PEM_MAX + 1, CRYPTO_E_KEY_TOO_BIG);
    expect_priv("over the cap", big, KEY_PEM_MAX + 1, CRYPTO_E_KEY_TOO_BIG);
    free(big);
}

static void test_load_errors(void **state)
{
    char dir[] = "/tmp/plora-test-key-XXXXXX", path[4096];
    struct key *k = NULL;
    struct crypto_diag d;
    FILE *f;

    (void)state;
    assert_int_equal(key_load_public_pem(&k, "/nonexistent/a1.pem", &d), CRYPTO_E_IO);
    assert_non_null(strstr(d.msg, "/nonexistent/a1.pem"));
    assert_int_equal(key_load_private_pem(&k, "/tmp", &d), CRYPTO_E_IO);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/big.pem", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    for (unsigned i = 0; i <= KEY_PEM_MAX; i++)
        fputc('x', f);
    fclose(f);
    assert_int_equal(key_load_public_pem(&k, path, &d), CRYPTO_E_KEY_TOO_BIG);
    assert_non_null(strstr(d.msg, path));
    assert_null(k);
    rm_tree(dir);
}

/* Run `$PLORA_BIN keygen ARGS`, stdout to `out` (may be NULL); the exit code. */
static int run_keygen(const char *args, const char *out)
{
    const char *bin = getenv("PLORA_BIN");
    char cmd[8192];
    int st;

    if (bin == NULL)
        fail_msg("PLORA_BIN is not set");
    if (snprintf(cmd, sizeof(cmd), "'%s' keygen %s >'%s' 2>/dev/null", bin, args,
                 out != NULL ? out : "/dev/null") >= (int)sizeof(cmd))
        fail_msg("keygen command line over %zu bytes", sizeof(cmd));
    st = system(cmd);
    assert_true(st != -1 && WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* `plora keygen`: files, modes, printed id = id of the written key; refuses
 * to overwrite (exit 2, bytes unchanged) and refuses bad --bits. */
static void test_keygen_cli(void **state)
{
    char dir[] = "/tmp/plora-test-keygen-XXXXXX", args[4096], out[4200], path[4200], *before, *after;
    struct key *k = NULL;
    struct crypto_diag d;
    json_error_t je;
    json_t *j;
    struct stat st;
    size_t n;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(out, sizeof(out), "%s/out.json", dir);
    snprintf(args, sizeof(args), "--out '%s/node' --bits 2048 --json", dir);
    assert_int_equal(run_keygen(args, out), 0);
    if ((j = json_load_file(out, 0, &je)) == NULL)
        fail_msg("keygen --json output: %s", je.text);
    snprintf(path, sizeof(path), "%s/node/node.pub", dir);
    assert_string_equal(json_string_value(json_object_get(j, "public_key")), path);
    assert_int_equal(key_load_public_pem(&k, path, &d), 0);
    assert_string_equal(json_string_value(json_object_get(j, "key_id")), key_id(k));
    assert_int_equal(key_bits(k), 2048);
    key_free(k);
    snprintf(path, sizeof(path), "%s/node/node.key", dir);
    assert_string_equal(json_string_value(json_object_get(j, "private_key")), path);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(key_load_private_pem(&k, path, &d), 0);
    assert_string_equal(json_string_value(json_object_get(j, "key_id")), key_id(k));
    key_free(k);
    json_decref(j);
    before = slurp(path, &n);
    assert_int_equal(run_keygen(args, NULL), 2);
    after = slurp(path, &n);
    assert_string_equal(before, after);
    free(before);
    free(after);
    static const char *const bad[] = { "--bits 1024", "--bits 2047", "--bits 16385", "--bits x",
                                       "--bits", "", "--frobnicate" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(args, sizeof(args), "--out '%s/bad' %s", dir, bad[i]);
        if (strcmp(bad[i], "") == 0)
            snprintf(args, sizeof(args), "--bits 2048");
        if (run_keygen(args, NULL) != 2)
            fail_msg("keygen %s: exit code should be 2", args);
    }
    snprintf(path, sizeof(path), "%s/bad", dir);
    assert_int_equal(stat(path, &st), -1);
    rm_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_key_ids),
        cmocka_unit_test(test_der),
        cmocka_unit_test(test_generate_save_load),
        cmocka_unit_test(test_generate_bad_bits),
        cmocka_unit_test(test_wrong_kinds),
        cmocka_unit_test(test_malformed_pem),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_keygen_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
