/* daemon/cmd_keys.c: `plora keygen --out DIR [--bits N] [--json]`.
 *
 * Writes DIR/node.key (unencrypted PKCS#8 PEM, mode 0600) and DIR/node.pub
 * (SPKI PEM, 0644) and prints the key id (= node id: SHA-256 hex of the DER
 * SPKI). Never overwrites: an existing node.key or node.pub is exit 2 before
 * any key is generated, and crypto/key.c re-checks at link(2) time.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "key.h"

static const char usage_text[] =
    "usage: plora keygen --out DIR [--bits N] [--json]\n"
    "  Generate an RSA node key pair: DIR/node.key (PKCS#8 PEM, mode 0600) and\n"
    "  DIR/node.pub (SPKI PEM). DIR is created (mode 0700) if missing. Prints the\n"
    "  key id (lowercase hex SHA-256 of the DER SubjectPublicKeyInfo), which is\n"
    "  the node id. --bits: RSA modulus size, 2048..16384, default 3072.\n"
    "  --json prints {key_id, private_key, public_key, type, bits}.\n"
    "  Exit 0 written; 2 bad option, existing key file (never overwritten) or I/O error.\n";

struct keygen_opts {
    const char *out;
    long bits;
    bool json;
};

/* Paths of the two files; fails if either exists or DIR is unusable. */
static int plan_paths(const char *dir, char *priv, char *pub, size_t cap)
{
    const char *paths[2] = { priv, pub };
    struct stat st;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return cli_usage_error("keygen", "%s: cannot create directory: %s", dir, strerror(errno));
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cli_usage_error("keygen", "%s: not a directory", dir);
    if ((size_t)snprintf(priv, cap, "%s/node.key", dir) >= cap ||
        (size_t)snprintf(pub, cap, "%s/node.pub", dir) >= cap)
        return cli_usage_error("keygen", "%s: path too long", dir);
    for (int i = 0; i < 2; i++)
        if (lstat(paths[i], &st) == 0)
            return cli_usage_error("keygen", "%s: already exists; refusing to overwrite a key",
                                   paths[i]);
    return CLI_OK;
}

static void print_result(const struct keygen_opts *o, const struct key *k, const char *priv,
                         const char *pub)
{
    if (o->json) {
        cli_print_json(json_pack("{s:s, s:s, s:s, s:s, s:i}", "key_id", key_id(k),
                                 "private_key", priv, "public_key", pub,
                                 "type", key_type_name(key_type(k)), "bits", (int)key_bits(k)));
        return;
    }
    printf("key_id %s\nprivate_key %s\npublic_key %s\n", key_id(k), priv, pub);
}

static int run(const struct keygen_opts *o)
{
    char priv[4096], pub[4096];
    struct key *k = NULL;
    struct crypto_diag d;
    int rc;

    crypto_diag_clear(&d);
    if ((rc = plan_paths(o->out, priv, pub, sizeof(priv))) != CLI_OK)
        return rc;
    if (key_generate_rsa(&k, (unsigned)o->bits, &d) != 0) {
        rc = cli_usage_error("keygen", "key generation: %s", d.msg);
        goto out;
    }
    if (key_save_private(k, priv, &d) != 0) {
        rc = cli_usage_error("keygen", "%s (%s)", d.msg, crypto_err_name(d.code));
        goto out;
    }
    if (key_save_public(k, pub, &d) != 0) {
        rc = cli_usage_error("keygen", "%s (%s); removed %s", d.msg, crypto_err_name(d.code), priv);
        (void)unlink(priv);   /* no half pair: a retry must not find a lone node.key */
        goto out;
    }
    print_result(o, k, priv, pub);
    rc = CLI_OK;
out:
    key_free(k);
    return rc;
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        { "out", required_argument, NULL, 'o' },
        { "bits", required_argument, NULL, 'b' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct keygen_opts o = { NULL, KEY_RSA_BITS_DEFAULT, false };
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': o.out = optarg; break;
        case 'b':
            if (!cli_parse_long("keygen", "--bits", optarg, KEY_RSA_BITS_MIN, KEY_RSA_BITS_MAX, &o.bits))
                return CLI_USAGE;
            break;
        case 'j': o.json = true; break;
        case 'h': fputs(usage_text, stdout); return CLI_OK;
        default: return cli_usage_error("keygen", "unknown option (see plora keygen --help)");
        }
    }
    if (optind != argc)
        return cli_usage_error("keygen", "unexpected argument \"%s\" (see plora keygen --help)",
                               argv[optind]);
    if (o.out == NULL)
        return cli_usage_error("keygen", "--out DIR is required (see plora keygen --help)");
    return run(&o);
}
