/* daemon/swarm_setup.c: everything `plora swarm` prepares before its
 * daemons start (swarm_setup.h).
 *
 * Choices (docs/design-notes.md):
 *  - node keys are Ed25519: 32 RSA keys would cost seconds of the run's
 *    budget, and every plorad signature path accepts Ed25519;
 *  - adapters are signed by running this same binary (/proc/self/exe
 *    `sign --key --domain`): exactly what a user would run by hand; the
 *    domain is the directory name made valid ([a-z0-9][a-z0-9._-]{0,63});
 *  - synthetic adapters are deterministic from the seed.
 */
#include "swarm_setup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "key.h"
#include "rng.h"
#include "sha256.h"
#include "st_write.h"

#define CMD "swarm"
#define MARKER ".plora-swarm"          /* marks a directory as swarm output */

bool swarm_setup_path(char out[PATH_MAX], const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= PATH_MAX) {
        cli_err(CMD, "path too long: %.80s...", out);
        return false;
    }
    return true;
}

bool swarm_setup_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- the output directory --------------------------------------------- */

static int dir_state(const char *path)   /* 0 empty, 1 not empty, -1 unreadable */
{
    DIR *dh = opendir(path);
    struct dirent *de;
    int st = 0;

    if (dh == NULL)
        return -1;
    while (st == 0 && (de = readdir(dh)) != NULL)
        st = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(dh);
    return st;
}

static int prepare_out(struct swarm *s)
{
    char def[PATH_MAX], marker[PATH_MAX];
    const char *out = s->o.out;
    FILE *f;

    if (out == NULL) {
        snprintf(def, sizeof(def), "swarm-out-%llu-%s", s->o.seed, s->o.topology);
        out = def;
    }
    if (is_dir(out)) {
        int st = dir_state(out);
        if (!swarm_setup_path(marker, "%s/%s", out, MARKER))
            return CLI_USAGE;
        if (st < 0)
            return cli_usage_error(CMD, "--out %s: %s", out, strerror(errno));
        if (st > 0 && swarm_setup_is_file(marker))
            return cli_usage_error(CMD, "--out %s: holds a previous swarm run; remove it or "
                                   "choose another --out (nothing was deleted)", out);
        if (st > 0)
            return cli_usage_error(CMD, "--out %s: exists and is not empty; choose a new or "
                                   "empty directory", out);
    } else if (mkdir(out, 0755) != 0) {
        return cli_usage_error(CMD, "--out %s: cannot create: %s", out, strerror(errno));
    }
    if (realpath(out, s->out) == NULL || !swarm_setup_path(marker, "%s/%s", s->out, MARKER))
        return cli_usage_error(CMD, "--out %s: %s", out, strerror(errno));
    if ((f = fopen(marker, "w")) == NULL || fputs("plora swarm output\n", f) == EOF ||
        fclose(f) != 0)
        return cli_usage_error(CMD, "%s: cannot write: %s", marker, strerror(errno));
    return CLI_OK;
}

int swarm_setup_mkdir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return cli_usage_error(CMD, "%s: cannot create: %s", path, strerror(errno));
    return CLI_OK;
}

/* ---- running processes ------------------------------------------------ */

/* Child side of a fork: own signals back to default, stdio redirected. */
static void child_setup(int in, int out, int err, bool own_group, pid_t parent)
{
    sigset_t none;

    if (own_group) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if ((in >= 0 && dup2(in, 0) < 0) || (out >= 0 && dup2(out, 1) < 0) ||
        (err >= 0 && dup2(err, 2) < 0))
        _exit(127);
}

/* fork + exec argv[0] with stdio fds (-1 = inherit). Returns the pid or -1. */
pid_t swarm_setup_spawn(char *const argv[], int in, int out, int err, bool own_group)
{
    pid_t parent = getpid(), pid;

    fflush(NULL);
    if ((pid = fork()) != 0)
        return pid;
    child_setup(in, out, err, own_group, parent);
    execv(argv[0], argv);
    dprintf(2, "plora swarm: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int swarm_setup_exit_code(int st)
{
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

int swarm_setup_wait(pid_t pid)
{
    int st = 0;

    if (pid <= 0)
        return -1;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return swarm_setup_exit_code(st);
}

/* Run this binary with args (NULL-terminated, at most 14), stdout to
 * /dev/null, stderr kept. Returns its exit code (-1 if it could not run). */
static int run_self(struct swarm *s, char **args)
{
    char *argv[16] = { s->self };
    int nul = open("/dev/null", O_RDWR);
    pid_t pid;

    for (size_t i = 0; args[i] != NULL && i + 2 < 16; i++)
        argv[i + 1] = args[i];
    pid = swarm_setup_spawn(argv, nul, nul, -1, false);
    if (nul >= 0)
        close(nul);
    return swarm_setup_wait(pid);
}

/* ---- keys, keyring ----------------------------------------------------- */

static int make_node(struct swarm *s, uint32_t i)
{
    struct swarm_node *nd = &s->nodes[i];
    char path[PATH_MAX];
    struct crypto_diag d;
    struct key *k = NULL;
    int rc = CLI_USAGE;

    nd->exit_code = -1;
    if (!swarm_setup_path(nd->dir, "%s/nodes/%u", s->out, i) || swarm_setup_mkdir(nd->dir) != CLI_OK)
        return CLI_USAGE;
    if (key_generate_ed25519(&k, &d) != 0) {
        cli_err(CMD, "node %u: key generation: %s", i, d.msg);
        goto out;
    }
    if (!swarm_setup_path(path, "%s/node.key", nd->dir) || key_save_private(k, path, &d) != 0 ||
        !swarm_setup_path(path, "%s/node.pub", nd->dir) || key_save_public(k, path, &d) != 0 ||
        !swarm_setup_path(path, "%s/keyring/node-%u.pub", s->out, i) || key_save_public(k, path, &d) != 0) {
        cli_err(CMD, "%s: %s", path, d.msg);
        goto out;
    }
    snprintf(nd->id, sizeof(nd->id), "%s", key_id(k));
    rc = CLI_OK;
out:
    key_free(k);
    return rc;
}

/* ---- adapters ---------------------------------------------------------- */

static bool has_adapter(const char *dir)
{
    char p[PATH_MAX];
    return swarm_setup_path(p, "%s/adapter_model.safetensors", dir) && swarm_setup_is_file(p);
}

static int add_source(struct swarm *s, const char *dir)
{
    if (s->na == SWARM_ADAPTERS_MAX)
        return cli_usage_error(CMD, "--adapters: more than %u adapters", SWARM_ADAPTERS_MAX);
    if (realpath(dir, s->src[s->na]) == NULL)
        return cli_usage_error(CMD, "--adapters %s: %s", dir, strerror(errno));
    s->na++;
    return CLI_OK;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A dir holding adapter dirs: each sub-directory that holds one, by name. */
static int add_parent(struct swarm *s, const char *dir)
{
    DIR *dh = opendir(dir);
    char *names[SWARM_ADAPTERS_MAX + 1], p[PATH_MAX];
    struct dirent *de;
    size_t n = 0;
    int rc = CLI_OK;

    if (dh == NULL)
        return cli_usage_error(CMD, "--adapters %s: %s", dir, strerror(errno));
    while ((de = readdir(dh)) != NULL && n <= SWARM_ADAPTERS_MAX)
        if (de->d_name[0] != '.' && swarm_setup_path(p, "%s/%s", dir, de->d_name) && has_adapter(p))
            names[n++] = strdup(de->d_name);
    closedir(dh);
    qsort(names, n, sizeof(*names), name_cmp);
    if (n == 0)
        rc = cli_usage_error(CMD, "--adapters %s: no adapter_model.safetensors in it or in its "
                             "sub-directories", dir);
    for (size_t i = 0; i < n; i++) {
        if (rc == CLI_OK && names[i] != NULL && swarm_setup_path(p, "%s/%s", dir, names[i]))
            rc = add_source(s, p);
        free(names[i]);
    }
    return rc;
}

static int collect_sources(struct swarm *s)
{
    char peft[PATH_MAX];
    int rc = CLI_OK;

    for (size_t i = 0; i < s->o.n_adapters && rc == CLI_OK; i++)
        rc = has_adapter(s->o.adapters[i]) ? add_source(s, s->o.adapters[i])
                                           : add_parent(s, s->o.adapters[i]);
    if (rc != CLI_OK || s->o.n_adapters > 0 || s->o.synthetic > 0)
        return rc;
    if (swarm_setup_path(peft, "%s/peft", cli_fixtures_dir()) && is_dir(peft))
        return add_parent(s, peft);
    s->o.synthetic = 3;   /* no fixtures here: make some */
    s->synthetic_fallback = true;
    return CLI_OK;
}

/* [a-z0-9][a-z0-9._-]{0,63} from a directory name. */
static void domain_of(const char *name, size_t k, char out[65])
{
    size_t j = 0;

    for (const char *c = name; *c != '\0' && j < 64; c++) {
        char ch = (*c >= 'A' && *c <= 'Z') ? (char)(*c - 'A' + 'a') : *c;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                  (j > 0 && (ch == '.' || ch == '_' || ch == '-'));
        if (ok || j > 0)
            out[j++] = ok ? ch : '-';
    }
    out[j] = '\0';
    if (j == 0)
        snprintf(out, 65, "adapter-%zu", k);
}

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = in < 0 ? -1 : open(to, O_WRONLY | O_CREAT | O_EXCL, 0644);
    char buf[1 << 16];
    ssize_t r = 0;
    int rc = CLI_OK;

    if (in < 0 || out < 0)
        rc = cli_usage_error(CMD, "%s: %s", in < 0 ? from : to, strerror(errno));
    while (rc == CLI_OK && (r = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)r) != r)
            rc = cli_usage_error(CMD, "%s: write: %s", to, strerror(errno));
    if (rc == CLI_OK && r < 0)
        rc = cli_usage_error(CMD, "%s: read: %s", from, strerror(errno));
    if (out >= 0 && close(out) != 0 && rc == CLI_OK)
        rc = cli_usage_error(CMD, "%s: close: %s", to, strerror(errno));
    if (in >= 0)
        close(in);
    return rc;
}

/* Unique name for adapter k (two sources may share a basename). */
static void adapter_name(struct swarm *s, size_t k, const char *base)
{
    snprintf(s->ad[k].name, sizeof(s->ad[k].name), "%.100s", base);
    for (size_t j = 0; j < k; j++)
        if (strcmp(s->ad[j].name, s->ad[k].name) == 0)
            snprintf(s->ad[k].name, sizeof(s->ad[k].name), "%.100s-%zu", base, k);
}

static int copy_adapter(struct swarm *s, size_t k, char dir[PATH_MAX])
{
    const char *files[] = { "adapter_model.safetensors", "adapter_config.json" };
    const char *base = strrchr(s->src[k], '/');
    char from[PATH_MAX], to[PATH_MAX];
    int rc = CLI_OK;

    adapter_name(s, k, base != NULL ? base + 1 : s->src[k]);
    if (!swarm_setup_path(dir, "%s/publish/%s", s->out, s->ad[k].name) || swarm_setup_mkdir(dir) != CLI_OK)
        return CLI_USAGE;
    for (size_t i = 0; i < 2 && rc == CLI_OK; i++)
        rc = swarm_setup_path(from, "%s/%s", s->src[k], files[i]) && swarm_setup_path(to, "%s/%s", dir, files[i])
                 ? copy_file(from, to) : CLI_USAGE;
    return rc;
}

/* Synthetic adapter: r = 8, lora_alpha = 16, q_proj and v_proj of one layer,
 * 256 x 256, F32 values drawn from the seed (finite, small). */
#define SYN_R 8u
#define SYN_DIM 256u

static int synthetic_weights(const char *path, uint64_t seed, struct fusion_diag *fd)
{
    static const char *const names[4] = {
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
        "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight",
        "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight",
    };
    struct st_write_tensor t[4];
    struct st_writer *w = NULL;
    struct graph_rng rng;
    double x[SYN_R * SYN_DIM];
    int rc;

    graph_rng_seed(&rng, seed);
    for (size_t i = 0; i < 4; i++)
        t[i] = (struct st_write_tensor){ names[i], SAFETENSORS_F32, 2,
                                         { i % 2 ? SYN_DIM : SYN_R, i % 2 ? SYN_R : SYN_DIM } };
    rc = st_writer_new(&w, path, t, 4, fd);
    for (size_t i = 0; i < 4 && rc == 0; i++) {
        double scale = i % 2 ? 0.01 : 1.0 / 16.0;   /* B small, A ~ 1/sqrt(in) */
        for (size_t j = 0; j < SYN_R * SYN_DIM; j++)
            x[j] = scale * (2.0 * graph_rng_uniform(&rng) - 1.0);
        rc = st_writer_put_f64(w, i, x, SYN_R * SYN_DIM, fd);
    }
    if (rc == 0)
        rc = st_writer_finish(w, fd);
    st_writer_free(w);
    return rc;
}

static int synthetic_adapter(struct swarm *s, size_t k, char dir[PATH_MAX])
{
    char path[PATH_MAX];
    struct fusion_diag fd;
    json_t *cfg;
    int rc;

    snprintf(s->ad[k].name, sizeof(s->ad[k].name), "synthetic-%zu", k);
    if (!swarm_setup_path(dir, "%s/publish/%s", s->out, s->ad[k].name) || swarm_setup_mkdir(dir) != CLI_OK ||
        !swarm_setup_path(path, "%s/adapter_model.safetensors", dir))
        return CLI_USAGE;
    if (synthetic_weights(path, s->o.seed * 1000003u + k, &fd) != 0)
        return cli_usage_error(CMD, "%s: %s", path, fd.msg);
    cfg = json_pack("{s:s, s:s, s:s, s:i, s:i, s:f, s:[s,s], s:b, s:b, s:s, s:s?}",
                    "base_model_name_or_path", "synthetic-base", "peft_type", "LORA",
                    "task_type", "CAUSAL_LM", "r", (int)SYN_R, "lora_alpha", 16,
                    "lora_dropout", 0.0, "target_modules", "q_proj", "v_proj",
                    "fan_in_fan_out", 0, "use_rslora", 0, "bias", "none", "revision", NULL);
    rc = cfg != NULL && swarm_setup_path(path, "%s/adapter_config.json", dir) &&
         json_dump_file(cfg, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0
             ? CLI_OK : cli_usage_error(CMD, "%s: cannot write", path);
    json_decref(cfg);
    return rc;
}

/* id, size, base model of the published copy. */
static int adapter_facts(struct swarm *s, size_t k, const char *dir)
{
    struct swarm_adapter *a = &s->ad[k];
    char path[PATH_MAX];
    uint8_t dig[SHA256_LEN];
    struct crypto_diag d;
    json_error_t je;
    json_t *cfg;

    if (!swarm_setup_path(path, "%s/adapter_model.safetensors", dir) ||
        sha256_file(path, dig, &a->bytes, &d) != 0)
        return cli_usage_error(CMD, "%s: %s", path, d.msg);
    sha256_hex(dig, a->id);
    if (!swarm_setup_path(path, "%s/adapter_config.json", dir) ||
        (cfg = json_load_file(path, 0, &je)) == NULL)
        return cli_usage_error(CMD, "%s: line %d: %s", path, je.line, je.text);
    snprintf(a->base_model, sizeof(a->base_model), "%s",
             json_string_value(json_object_get(cfg, "base_model_name_or_path")) != NULL
                 ? json_string_value(json_object_get(cfg, "base_model_name_or_path")) : "");
    json_decref(cfg);
    return CLI_OK;
}

/* Copy (or make), sign with the publisher's key, record the facts. */
static int prepare_adapter(struct swarm *s, size_t k)
{
    struct swarm_adapter *a = &s->ad[k];
    char dir[PATH_MAX], key[PATH_MAX];
    char *args[] = { "sign", dir, "--key", key, "--domain", a->domain, NULL };
    int rc;

    a->published_by = (uint32_t)(k * (size_t)s->o.n / s->na);
    rc = s->src[k][0] != '\0' ? copy_adapter(s, k, dir) : synthetic_adapter(s, k, dir);
    if (rc != CLI_OK)
        return rc;
    domain_of(a->name, k, a->domain);
    if (!swarm_setup_path(key, "%s/node.key", s->nodes[a->published_by].dir))
        return CLI_USAGE;
    if ((rc = run_self(s, args)) != 0)
        return cli_usage_error(CMD, "%s: `plora sign` failed (exit %d)", dir, rc);
    return adapter_facts(s, k, dir);
}

/* ---- node.yml --------------------------------------------------------- */

static void yq(FILE *f, const char *s)   /* a YAML double-quoted scalar */
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void write_yml(FILE *f, const struct swarm *s, uint32_t i)
{
    const struct swarm_node *nd = &s->nodes[i];
    char path[PATH_MAX];
    bool any = false;

    fputs("# written by plora swarm\nnode:\n  data: ", f);
    yq(f, nd->dir);
    fputs("\n  listen: 127.0.0.1:0\n  http: 127.0.0.1:0\n  key: node.key\n"
          "  keyring: ../../keyring\n", f);
    fprintf(f, "  name: node-%u\n  log_level: info\n  ready_file: ready.json\n", i);
    for (size_t k = 0; k < s->na; k++) {
        if (s->ad[k].published_by != i ||
            snprintf(path, sizeof(path), "%s/publish/%s", s->out, s->ad[k].name) >= PATH_MAX)
            continue;
        fputs(any ? "\n    - " : "  publish:\n    - ", f);
        yq(f, path);
        any = true;
    }
    fprintf(f, "%soverlay:\n  topology: %s\n  seed: %llu\n", any ? "\n" : "",
            s->o.topology, s->o.seed);
    fprintf(f, "gossip:\n  round_ms: %ld\n  quorum: %ld\nmerge:\n  enabled: true\n",
            s->o.round_ms, s->o.quorum);
}

static int write_config(const struct swarm *s, uint32_t i)
{
    char path[PATH_MAX];
    FILE *f;

    if (!swarm_setup_path(path, "%s/node.yml", s->nodes[i].dir) || (f = fopen(path, "w")) == NULL)
        return cli_usage_error(CMD, "%s: cannot write: %s", path, strerror(errno));
    write_yml(f, s, i);
    if (ferror(f) || fclose(f) != 0)
        return cli_usage_error(CMD, "%s: cannot write: %s", path, strerror(errno));
    return CLI_OK;
}

/* ---- all of it ---------------------------------------------------------- */

int swarm_setup_prepare(struct swarm *s)
{
    char kr[PATH_MAX];
    int rc;

    if ((rc = collect_sources(s)) != CLI_OK ||
        (rc = prepare_out(s)) != CLI_OK)
        return rc;
    if (s->o.synthetic > 0)
        s->na = (size_t)s->o.synthetic;
    if (!swarm_setup_path(kr, "%s/keyring", s->out) || swarm_setup_mkdir(kr) != CLI_OK ||
        !swarm_setup_path(kr, "%s/nodes", s->out) || swarm_setup_mkdir(kr) != CLI_OK ||
        !swarm_setup_path(kr, "%s/publish", s->out) || swarm_setup_mkdir(kr) != CLI_OK ||
        !swarm_setup_path(kr, "%s/verify", s->out) || swarm_setup_mkdir(kr) != CLI_OK)
        return CLI_USAGE;
    for (uint32_t i = 0; i < (uint32_t)s->o.n && !*s->signal; i++)
        if ((rc = make_node(s, i)) != CLI_OK)
            return rc;
    for (size_t k = 0; k < s->na && !*s->signal; k++)
        if ((rc = prepare_adapter(s, k)) != CLI_OK)
            return rc;
    for (uint32_t i = 0; i < (uint32_t)s->o.n; i++)
        if ((rc = write_config(s, i)) != CLI_OK)
            return rc;
    return CLI_OK;
}
