/* tests/unit/test_config.c: plorad's YAML config and flags. A table of good
 * and bad snippets (code + a substring of the message), then defaults,
 * values landing in the struct, relative paths, flags over the file,
 * --help, config_check and the address splitter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

static int parse(struct config *c, const char *yml, struct dmn_diag *d)
{
    config_defaults(c);
    dmn_diag_clear(d);
    return config_parse(c, yml, strlen(yml), "node.yml", "/etc/plorad", d);
}

static void test_table(void **state)
{
    static const struct { const char *name, *yml; int want; const char *msg; } cases[] = {
        { "empty file", "", 0, NULL },
        { "comment only", "# nothing\n", 0, NULL },
        { "empty section", "merge:\n", 0, NULL },
        { "full node", "node:\n  data: d\n  listen: 0.0.0.0:7400\n  http: \"\"\n  key: k.pem\n"
          "  keyring: kr/\n  name: n-1.a_b\n  log_level: debug\n  join: [10.0.0.1:1, \"[::1]:2\"]\n",
          0, NULL },
        { "join as one string", "node:\n  join: localhost:7400\n", 0, NULL },
        { "hostname", "node:\n  listen: node-3.example.org:7400\n", 0, NULL },
        { "all numbers", "overlay:\n  seed: 18446744073709551615\n  p: 0.5\n  k: 6\n"
          "gossip:\n  chunk_size: 4096\n  push: false\nmerge:\n  tau: 2.5\n  weights: fisher\n"
          "audit:\n  group_ms: 0\n", 0, NULL },
        { "unknown section", "node:\n  data: x\nnetwork:\n  a: 1\n", DMN_E_CONFIG_UNKNOWN,
          "node.yml:3: unknown section network" },
        { "unknown key", "gossip:\n  round_ms: 50\n  chunksize: 4096\n", DMN_E_CONFIG_UNKNOWN,
          "node.yml:3: unknown key gossip.chunksize (allowed: round_ms, chunk_size" },
        { "unknown key, control byte", "gossip:\n  \"a\\x01b\": 1\n", DMN_E_CONFIG_UNKNOWN,
          "node.yml:2: unknown key gossip.a.b (allowed" },
        { "out of range", "gossip:\n  round_ms: 100\n\n\n\n\n  chunk_size: 100\n",
          DMN_E_CONFIG_FIELD, "node.yml:7: gossip.chunk_size: 100 is outside 4096..1048576" },
        { "over the top", "gossip:\n  chunk_size: 1048577\n", DMN_E_CONFIG_FIELD,
          "gossip.chunk_size: 1048577 is outside 4096..1048576" },
        { "u64 overflow", "overlay:\n  seed: 18446744073709551616\n", DMN_E_CONFIG_FIELD,
          "overlay.seed: 18446744073709551616 is outside 0..18446744073709551615" },
        { "negative", "gossip:\n  quorum: -1\n", DMN_E_CONFIG_FIELD,
          "node.yml:2: gossip.quorum: \"-1\" is not an integer (allowed 1..1024)" },
        { "not a number", "gossip:\n  quorum: two\n", DMN_E_CONFIG_FIELD,
          "gossip.quorum: \"two\" is not an integer" },
        { "trailing junk", "gossip:\n  quorum: 2x\n", DMN_E_CONFIG_FIELD, "is not an integer" },
        { "double range", "overlay:\n  beta: 1.5\n", DMN_E_CONFIG_FIELD,
          "overlay.beta: 1.5 is outside 0..1" },
        { "double nan", "overlay:\n  p: nan\n", DMN_E_CONFIG_FIELD, "overlay.p: \"nan\" is not a finite" },
        { "bad bool", "gossip:\n  push: maybe\n", DMN_E_CONFIG_FIELD,
          "gossip.push: \"maybe\" is not a boolean (allowed true or false)" },
        { "bad topology", "overlay:\n  topology: ring\n", DMN_E_CONFIG_FIELD,
          "overlay.topology: \"ring\" is not a topology (allowed er, ws, ba)" },
        { "bad weights", "merge:\n  weights: max\n", DMN_E_CONFIG_FIELD, "allowed uniform, fisher" },
        { "bad level", "node:\n  log_level: loud\n", DMN_E_CONFIG_FIELD,
          "node.log_level: \"loud\" is not a log level (allowed error, warn, info, debug)" },
        { "bad name", "node:\n  name: Node_0\n", DMN_E_CONFIG_FIELD,
          "node.name: \"Node_0\" is not a name (allowed [a-z0-9][a-z0-9._-]{0,63})" },
        { "list for scalar", "gossip:\n  round_ms: [1, 2]\n", DMN_E_CONFIG_FIELD,
          "node.yml:2: gossip.round_ms: is a list, want a single value" },
        { "map for scalar", "node:\n  data:\n    a: b\n", DMN_E_CONFIG_FIELD,
          "node.yml:3: node.data: is a mapping" },
        { "map in join", "node:\n  join:\n    - {a: b}\n", DMN_E_CONFIG_FIELD,
          "node.yml:3: node.join: item is a mapping, want a string" },
        { "section is a scalar", "gossip: 5\n", DMN_E_CONFIG_FIELD,
          "node.yml:1: section gossip is a scalar, want a mapping" },
        { "top level list", "- a\n- b\n", DMN_E_CONFIG, "top level is a list" },
        { "duplicate key", "gossip:\n  quorum: 1\n  quorum: 2\n", DMN_E_CONFIG_FIELD,
          "node.yml:3: gossip.quorum: duplicate key" },
        { "duplicate section", "audit:\n  group_ms: 1\naudit:\n  group_ms: 2\n", DMN_E_CONFIG_FIELD,
          "node.yml:3: duplicate section audit" },
        { "yaml syntax", "node:\n  data: x\n  key: [a, b\n", DMN_E_CONFIG,
          "YAML syntax error" },
        { "yaml syntax line", "node:\n  data: x\n key: y\n", DMN_E_CONFIG, "node.yml:3:" },
        { "tab indent", "node:\n\tdata: x\n", DMN_E_CONFIG, "node.yml:2:" },
        { "two documents", "node:\n  data: x\n---\nnode:\n  data: y\n", DMN_E_CONFIG,
          "second YAML document" },
        { "no port", "node:\n  listen: 127.0.0.1\n", DMN_E_CONFIG_FIELD,
          "node.listen: \"127.0.0.1\" is not host:port (\"127.0.0.1\" has no port" },
        { "port range", "node:\n  listen: 127.0.0.1:65536\n", DMN_E_CONFIG_FIELD,
          "port 65536 is outside 0..65535" },
        { "port junk", "node:\n  listen: 127.0.0.1:7x\n", DMN_E_CONFIG_FIELD,
          "port \"7x\" is not a number" },
        { "bad ipv4", "node:\n  listen: 300.1.1.1:80\n", DMN_E_CONFIG_FIELD,
          "\"300.1.1.1\" is not a dotted IPv4 address" },
        { "bare ipv6", "node:\n  listen: ::1:80\n", DMN_E_CONFIG_FIELD, "must be written [addr]:port" },
        { "bad ipv6", "node:\n  listen: \"[::g]:80\"\n", DMN_E_CONFIG_FIELD, "is not an IPv6 address" },
        { "bad hostname", "node:\n  listen: bad_host:80\n", DMN_E_CONFIG_FIELD,
          "\"bad_host\" is not a valid host name" },
        { "join port 0", "node:\n  join: [10.0.0.1:0]\n", DMN_E_CONFIG_FIELD,
          "node.join: \"10.0.0.1:0\" has port 0" },
        { "empty data", "node:\n  data: \"\"\n", DMN_E_CONFIG_FIELD, "node.data: \"\" is empty" },
        { "empty publish item", "node:\n  publish: [a, \"\"]\n", DMN_E_CONFIG_FIELD,
          "node.yml:2: node.publish: \"\" is empty" },
        { "key is a list", "node:\n  [a]: 1\n", DMN_E_CONFIG, "section node has a list as a key" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config c;
        struct dmn_diag d;
        int rc = parse(&c, cases[i].yml, &d);
        if (rc != cases[i].want)
            fail_msg("%s: got %d (%s), want %d (%s); %s", cases[i].name, rc, dmn_err_name(rc),
                     cases[i].want, dmn_err_name(cases[i].want), d.msg);
        if (cases[i].msg != NULL && strstr(d.msg, cases[i].msg) == NULL)
            fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].name, d.msg, cases[i].msg);
        config_free(&c);
    }
}

/* Many list items: CONFIG_LIST_MAX fit, one more does not. */
static void test_list_cap(void **state)
{
    char yml[4096];
    size_t n;
    struct config c;
    struct dmn_diag d;

    (void)state;
    for (unsigned extra = 0; extra < 2; extra++) {
        n = (size_t)snprintf(yml, sizeof(yml), "node:\n  join:\n");
        for (unsigned i = 0; i < CONFIG_LIST_MAX + extra; i++)
            n += (size_t)snprintf(yml + n, sizeof(yml) - n, "    - 10.0.0.%u:7400\n", i + 1);
        int rc = parse(&c, yml, &d);
        if (extra == 0) {
            assert_int_equal(rc, 0);
            assert_int_equal(c.n_join, CONFIG_LIST_MAX);
            assert_string_equal(c.join[63], "10.0.0.64:7400");
        } else {
            assert_int_equal(rc, DMN_E_CONFIG_FIELD);
            assert_non_null(strstr(d.msg, "one item too many (at most 64)"));
        }
        config_free(&c);
    }
}

static void test_defaults(void **state)
{
    struct config c;

    (void)state;
    config_defaults(&c);
    assert_null(c.data);
    assert_null(c.key);
    assert_null(c.keyring);
    assert_null(c.policy);
    assert_string_equal(c.path, "");
    assert_string_equal(c.listen, "127.0.0.1:7400");
    assert_string_equal(c.http, "127.0.0.1:0");
    assert_string_equal(c.publish_domain, "general");
    assert_string_equal(c.ready_file, "");
    assert_int_equal(c.log_level, LOG_INFO);
    assert_int_equal(c.n_join, 0);
    assert_int_equal(c.topology, CONFIG_TOPO_WS);
    assert_int_equal(c.seed, 1);
    assert_true(c.p == 0.0 && c.beta == 0.2 && c.k == 4 && c.m == 2);
    assert_int_equal(c.round_ms, 1000);
    assert_int_equal(c.chunk_size, 262144);
    assert_int_equal(c.quorum, 1);
    assert_true(c.push);
    assert_int_equal(c.handshake_ms, 10000);
    assert_int_equal(c.idle_ms, 60000);
    assert_int_equal(c.frame_ms, 30000);
    assert_int_equal(c.stall_ms, 30000);
    assert_int_equal(c.max_peers, 256);
    assert_int_equal(c.ban_strikes, 3);
    assert_int_equal(c.ban_ms, 300000);
    assert_int_equal(c.write_queue_bytes, 4194304);
    assert_true(c.merge_enabled && c.tau_rel == 1.0 && c.tau == 0 && c.kld_budget == 0);
    assert_int_equal(c.rank, 0);
    assert_int_equal(c.weights, CONFIG_W_UNIFORM);
    assert_int_equal(c.checkpoint_every, 1000);
    assert_int_equal(c.group_ms, 5);
    assert_string_equal(config_topology_name(CONFIG_TOPO_ER), "er");
    assert_string_equal(config_topology_name(CONFIG_TOPO_WS), "ws");
    assert_string_equal(config_topology_name(CONFIG_TOPO_BA), "ba");
    config_free(&c);
    config_free(NULL);
}

/* Values land in the right fields; relative paths join the file's dir. */
static void test_values(void **state)
{
    static const char yml[] =
        "node:\n  data: data\n  key: /abs/node.key\n  keyring: keys/\n  policy: ../pol.yml\n"
        "  http: \"[::1]:9100\"\n  name: node-7\n  log_level: warn\n  ready_file: run/ready.json\n"
        "  publish: [a1, /b2]\n  publish_domain: math\n  join: [\"10.0.0.1:7400\", h.local:1]\n"
        "overlay:\n  topology: ba\n  seed: 42\n  m: 3\n"
        "gossip:\n  round_ms: 250\n  quorum: 2\n  push: no\n  handshake_ms: 500\n  idle_ms: 900\n"
        "  frame_ms: 800\n  stall_ms: 700\n  max_peers: 9\n  ban_strikes: 5\n  ban_ms: 1000\n"
        "  write_queue_bytes: 1048576\n  chunk_size: 1048576\n"
        "merge:\n  enabled: false\n  tau_rel: 0.5\n  rank: 16\n  kld_budget: 0.25\n"
        "audit:\n  checkpoint_every: 10\n";
    struct config c;
    struct dmn_diag d;

    (void)state;
    assert_int_equal(parse(&c, yml, &d), 0);
    assert_string_equal(c.data, "/etc/plorad/data");
    assert_string_equal(c.key, "/abs/node.key");
    assert_string_equal(c.keyring, "/etc/plorad/keys/");
    assert_string_equal(c.policy, "/etc/plorad/../pol.yml");
    assert_string_equal(c.http, "[::1]:9100");
    assert_string_equal(c.name, "node-7");
    assert_int_equal(c.log_level, LOG_WARN);
    assert_string_equal(c.ready_file, "/etc/plorad/run/ready.json");
    assert_int_equal(c.n_publish, 2);
    assert_string_equal(c.publish[0], "/etc/plorad/a1");
    assert_string_equal(c.publish[1], "/b2");
    assert_string_equal(c.publish_domain, "math");
    assert_int_equal(c.n_join, 2);
    assert_string_equal(c.join[1], "h.local:1");
    assert_int_equal(c.topology, CONFIG_TOPO_BA);
    assert_int_equal(c.seed, 42);
    assert_int_equal(c.m, 3);
    assert_int_equal(c.round_ms, 250);
    assert_int_equal(c.quorum, 2);
    assert_false(c.push);
    assert_int_equal(c.handshake_ms + c.idle_ms + c.frame_ms + c.stall_ms, 2900);
    assert_int_equal(c.max_peers, 9);
    assert_int_equal(c.ban_strikes, 5);
    assert_int_equal(c.ban_ms, 1000);
    assert_int_equal(c.write_queue_bytes, 1048576);
    assert_false(c.merge_enabled);
    assert_true(c.tau_rel == 0.5 && c.kld_budget == 0.25);
    assert_int_equal(c.rank, 16);
    assert_int_equal(c.checkpoint_every, 10);
    assert_int_equal(config_check(&c, &d), DMN_E_CONFIG_FIELD);   /* write queue < 2 chunks */
    assert_non_null(strstr(d.msg, "gossip.write_queue_bytes: 1048576 is less than two chunks"));
    config_free(&c);
}

/* Writes text to dir/name; returns the malloc'd path. */
static char *write_file(const char *dir, const char *name, const char *text)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    FILE *f;

    assert_non_null(p);
    sprintf(p, "%s/%s", dir, name);
    f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

struct tmpdir {
    char dir[64];
    char *cfg;
};

static int tmp_setup(void **state)
{
    struct tmpdir *t = calloc(1, sizeof(*t));

    assert_non_null(t);
    strcpy(t->dir, "/tmp/test_config.XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    t->cfg = write_file(t->dir, "node.yml",
                        "node:\n  data: store\n  key: node.key\n  keyring: kr\n"
                        "  join: [10.0.0.1:1, 10.0.0.2:2]\n  publish: [p1]\n  name: from-file\n"
                        "gossip:\n  quorum: 3\n  round_ms: 2000\n");
    *state = t;
    return 0;
}

static int tmp_teardown(void **state)
{
    struct tmpdir *t = *state;

    unlink(t->cfg);
    rmdir(t->dir);
    free(t->cfg);
    free(t);
    return 0;
}

static void test_load(void **state)
{
    struct tmpdir *t = *state;
    struct config c;
    struct dmn_diag d;
    char want[128];

    config_defaults(&c);
    assert_int_equal(config_load(&c, t->cfg, &d), 0);
    assert_string_equal(c.path, t->cfg);
    snprintf(want, sizeof(want), "%s/store", t->dir);
    assert_string_equal(c.data, want);
    snprintf(want, sizeof(want), "%s/node.key", t->dir);
    assert_string_equal(c.key, want);
    assert_int_equal(config_check(&c, &d), 0);
    config_free(&c);

    config_defaults(&c);
    snprintf(want, sizeof(want), "%s/absent.yml", t->dir);
    assert_int_equal(config_load(&c, want, &d), DMN_E_IO);
    assert_non_null(strstr(d.msg, want));
    config_free(&c);
}

/* Flags override the file wherever --config stands; --join replaces the
 * file's list; flag values are checked like file values. */
static void test_flags(void **state)
{
    struct tmpdir *t = *state;
    struct config c;
    struct dmn_diag d;
    char *argv[] = { "plorad", "--join", "10.9.9.9:9", "--quorum", "5", "--config", t->cfg,
                     "--data", "rel/dir", "--join", "[::1]:7", "--topology", "er", "--seed", "77",
                     "--log-level", "debug", "--round-ms", "300", "--ready-file", "r.json",
                     "--name", "flagged", "--http", "", "--listen", "127.0.0.1:0", NULL };
    int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;

    config_defaults(&c);
    assert_int_equal(config_from_args(&c, argc, argv, &d), 0);
    assert_string_equal(c.data, "rel/dir");              /* flag paths: as given */
    assert_int_equal(c.n_join, 2);
    assert_string_equal(c.join[0], "10.9.9.9:9");
    assert_string_equal(c.join[1], "[::1]:7");
    assert_int_equal(c.n_publish, 1);                     /* no --publish: file's list kept */
    assert_int_equal(c.quorum, 5);
    assert_int_equal(c.round_ms, 300);
    assert_int_equal(c.topology, CONFIG_TOPO_ER);
    assert_int_equal(c.seed, 77);
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_string_equal(c.ready_file, "r.json");
    assert_string_equal(c.name, "flagged");
    assert_string_equal(c.http, "");
    assert_string_equal(c.listen, "127.0.0.1:0");
    assert_string_equal(c.path, t->cfg);
    config_free(&c);
}

static void test_flag_errors(void **state)
{
    struct tmpdir *t = *state;
    static const struct { const char *args[4]; int want; const char *msg; } cases[] = {
        { { "--bogus" }, DMN_E_ARG, "unknown flag --bogus" },
        { { "-x" }, DMN_E_ARG, "unknown flag -x" },
        { { "--quorum" }, DMN_E_ARG, "flag --quorum needs a value" },
        { { "--quorum", "0" }, DMN_E_CONFIG_FIELD, "flag --quorum: gossip.quorum: 0 is outside 1..1024" },
        { { "--topology", "star" }, DMN_E_CONFIG_FIELD, "overlay.topology: \"star\" is not a topology" },
        { { "--join", "nowhere" }, DMN_E_CONFIG_FIELD, "flag --join: node.join: \"nowhere\"" },
        { { "--config", "/nonexistent/x.yml" }, DMN_E_IO, "/nonexistent/x.yml" },
        { { "stray" }, DMN_E_ARG, "unexpected argument \"stray\"" },
        { { "--log-level", "loud" }, DMN_E_CONFIG_FIELD, "node.log_level" },
    };
    (void)t;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[6] = { "plorad" };
        int argc = 1, rc;
        struct config c;
        struct dmn_diag d;
        for (int k = 0; k < 4 && cases[i].args[k] != NULL; k++)
            argv[argc++] = (char *)cases[i].args[k];
        config_defaults(&c);
        dmn_diag_clear(&d);
        rc = config_from_args(&c, argc, argv, &d);
        if (rc != cases[i].want || strstr(d.msg, cases[i].msg) == NULL)
            fail_msg("%s: got %d (%s) \"%s\", want %d \"%s\"", cases[i].args[0], rc,
                     dmn_err_name(rc), d.msg, cases[i].want, cases[i].msg);
        config_free(&c);
    }
}

/* --help prints the usage (every flag and every section) to stdout, returns 1. */
static void test_help(void **state)
{
    static const char *const must[] = { "--config", "--data", "--listen", "--http", "--join",
        "--publish", "--key", "--keyring", "--policy", "--log-level", "--name", "--seed",
        "--topology", "--quorum", "--round-ms", "--ready-file", "--help", "node:", "overlay:",
        "gossip:", "merge:", "audit:", "chunk_size" };
    char *argv[] = { "plorad", "--data", "x", "-h", NULL };
    FILE *tmp = tmpfile();
    int saved = dup(1), rc;
    struct config c;
    struct dmn_diag d;
    char out[8192];
    size_t n;

    (void)state;
    assert_non_null(tmp);
    fflush(stdout);
    dup2(fileno(tmp), 1);
    config_defaults(&c);
    rc = config_from_args(&c, 4, argv, &d);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    rewind(tmp);
    n = fread(out, 1, sizeof(out) - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    assert_int_equal(rc, 1);
    for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
        if (strstr(out, must[i]) == NULL)
            fail_msg("usage lacks %s:\n%s", must[i], out);
    config_free(&c);
}

static void test_check(void **state)
{
    static const struct { const char *yml; const char *msg; } cases[] = {
        { "node:\n  key: k\n  keyring: r\n", "set node.data in the config or pass --data" },
        { "node:\n  data: d\n  keyring: r\n", "set node.key in the config or pass --key" },
        { "node:\n  data: d\n  key: k\n", "set node.keyring in the config or pass --keyring" },
        { "node:\n  data: d\n  key: k\n  keyring: r\noverlay:\n  k: 3\n",
          "overlay.k: 3 must be even and >= 2 for topology ws" },
        { "node:\n  data: d\n  key: k\n  keyring: r\nmerge:\n  tau_rel: 0\n",
          "merge.tau_rel: 0 must be > 0 when merge.tau is 0" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config c;
        struct dmn_diag d;
        assert_int_equal(parse(&c, cases[i].yml, &d), 0);
        assert_int_equal(config_check(&c, &d), DMN_E_CONFIG_FIELD);
        if (strstr(d.msg, cases[i].msg) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, d.msg, cases[i].msg);
        config_free(&c);
    }
    {   /* odd k is fine for er; tau alone is fine */
        struct config c;
        struct dmn_diag d;
        assert_int_equal(parse(&c, "node:\n  data: d\n  key: k\n  keyring: r\noverlay:\n"
                                   "  topology: er\n  k: 3\nmerge:\n  tau_rel: 0\n  tau: 1\n", &d), 0);
        assert_int_equal(config_check(&c, &d), 0);
        config_free(&c);
    }
}

static void test_addr_split(void **state)
{
    static const struct { const char *in; int want; const char *host; unsigned port; } cases[] = {
        { "127.0.0.1:7400", 0, "127.0.0.1", 7400 },
        { "localhost:0", 0, "localhost", 0 },
        { "[::1]:65535", 0, "::1", 65535 },
        { "[fe80::1:2]:80", 0, "fe80::1:2", 80 },
        { "a-b.c:1", 0, "a-b.c", 1 },
        { "", DMN_E_ARG, NULL, 0 },
        { ":80", DMN_E_ARG, NULL, 0 },
        { "1.2.3.4:", DMN_E_ARG, NULL, 0 },
        { "1.2.3:80", DMN_E_ARG, NULL, 0 },
        { "[::1]80", DMN_E_ARG, NULL, 0 },
        { "[::1:80", DMN_E_ARG, NULL, 0 },
        { "-a.b:80", DMN_E_ARG, NULL, 0 },
        { "a..b:80", DMN_E_ARG, NULL, 0 },
        { "host:123456", DMN_E_ARG, NULL, 0 },
        { "host:-1", DMN_E_ARG, NULL, 0 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char host[64];
        unsigned port = 99999;
        struct dmn_diag d;
        int rc = config_addr_split(cases[i].in, host, sizeof(host), &port, &d);
        if (rc != cases[i].want)
            fail_msg("\"%s\": got %d, want %d (%s)", cases[i].in, rc, cases[i].want, d.msg);
        if (rc == 0) {
            assert_string_equal(host, cases[i].host);
            assert_int_equal(port, cases[i].port);
        }
    }
    assert_int_equal(config_addr_split(NULL, (char[8]){ 0 }, 8, &(unsigned){ 0 }, NULL), DMN_E_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_list_cap),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test_setup_teardown(test_load, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_flags, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_flag_errors, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_addr_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
