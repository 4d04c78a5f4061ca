/* bench/bench_transfer.c: one large adapter between two real plorad daemons.
 *
 *   bench_transfer [MIB]        (default 256; PLORAD = path of plorad)
 *
 * Makes two Ed25519 node keys and a keyring holding both, a synthetic PEFT
 * adapter of MIB MiB (one module, F32 lora_A [8, N] and lora_B [N, 8]),
 * starts daemon A publishing it, waits until A's /status shows the adapter
 * gated (its import hashes and its gate maps the whole file: until then A is
 * not idle) and measures A's idle RSS, then starts B joining A and polls B's
 * /status until the adapter is whole and hashed there. The figure is the
 * daemon's own `transfer_ms` (STORE_MANIFEST, i.e. first byte, to SHA-256
 * verified, fsync'd and renamed into the store); RSS (VmRSS, RssAnon,
 * RssFile) of both daemons is sampled every 10 ms from /proc while it runs,
 * and then, apart, while B gates the adapter (gate_peak_*: the gate maps the
 * file, so its pages count as file-backed RSS; not part of the transfer).
 *
 * Anchors, measured in the same run, before and after the daemons (the
 * better of the two counts):
 *   tcp_mb_s: a plain TCP copy of the same number of bytes over loopback (a
 *     forked reader with a 1 MiB buffer, a writer with a 1 MiB buffer; no
 *     files, no hashing; both buffers stay in cache) -- the anchor;
 *   tcp_sha256_mb_s: the same copy with the reader SHA-256ing what it
 *     reads -- the least work a verified transfer does (no files);
 *   sha256_mb_s: SHA-256 alone from a hot buffer on one core. An adapter
 *     id is the SHA-256 of the whole file, one serial stream, so no
 *     verified transfer of one file is faster; sha256_over_tcp is the
 *     highest ratio_tcp this host allows.
 * The prototype's figure (its gRPC fetch: 10.4 MB/s warm for a 2.96 MB
 * adapter on this kind of machine) is quoted from issue 7, not measured.
 *
 * Prints one line:
 *   bench=transfer bytes=<b> transfer_ms=<ms> mb_s=<x> tcp_mb_s=<t> ratio_tcp=<x/t>
 *   tcp_sha256_mb_s=<v> ratio_tcp_sha256=<x/v> sha256_mb_s=<h> sha256_over_tcp=<h/t>
 *   ratio_prototype=<x/10.4> idle_rss_mb=<a> idle_anon_mb= idle_file_mb= peak_rss_mb=<p>
 *   peak_anon_mb= peak_sender_mb= peak_receiver_mb= rss_limit_mb=<l> gate_peak_rss_mb= gate_peak_anon_mb= check=ok|...
 * Targets (issue 7): mb_s >= 1000 and ratio_tcp >= 0.6; idle RSS <= 10 MiB;
 * RSS during the transfer <= 10 MiB + 2 x chunk (chunk = 1 MiB here).
 * Env: PLORAD (daemon binary), BENCH_LOG_LEVEL (daemons' log_level, default
 * warn), BENCH_KEEP (keep the temp dir with the logs when a check fails),
 * BENCH_TMP (where the daemons' data dirs go, default /tmp: the transfer
 * ends with an fsync of the adapter, so on a disk the figure is bounded by
 * its write speed; /dev/shm, a tmpfs, measures the transport and the hash).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httpget.h"
#include "key.h"
#include "sha256.h"

#define PROTOTYPE_MB_S 10.4
#define CHUNK (1u << 20)
#define RANK 8u

struct daemon {
    pid_t pid;
    char dir[512], ready[600], http[300];
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && fwrite(p, 1, n, f) == n;

    if (f != NULL && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "bench_transfer: cannot write %s: %s\n", path, strerror(errno));
    return ok ? 0 : -1;
}

/* Node key in DIR/node.key, its public half in KEYRING/<name>.pub. */
static int make_key(const char *dir, const char *keyring, const char *name)
{
    struct key *k = NULL;
    struct crypto_diag cd;
    char path[700];
    int rc = -1;

    if (key_generate_ed25519(&k, &cd) != 0)
        goto out;
    snprintf(path, sizeof(path), "%s/node.key", dir);
    if (key_save_private(k, path, &cd) != 0)
        goto out;
    snprintf(path, sizeof(path), "%s/%s.pub", keyring, name);
    if (key_save_public(k, path, &cd) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "bench_transfer: key %s: %s\n", name, cd.msg);
    key_free(k);
    return rc;
}

/* A PEFT directory whose safetensors is `bytes` long (rounded to the
 * module shape): header, then lora_A and lora_B with small finite values. */
static int make_adapter(const char *dir, uint64_t bytes, uint64_t *total)
{
    uint64_t n = bytes / (2u * RANK * 4u), elems = n * RANK;
    char hdr[512], path[700];
    size_t hl;
    FILE *f;
    float *buf;
    size_t bn = 1u << 18;
    uint32_t x = 12345;
    int rc = 0;

    hl = (size_t)snprintf(hdr, sizeof(hdr),
        "{\"base_model.model.big.lora_A.weight\":{\"dtype\":\"F32\",\"shape\":[%u,%" PRIu64 "],"
        "\"data_offsets\":[0,%" PRIu64 "]},\"base_model.model.big.lora_B.weight\":{\"dtype\":"
        "\"F32\",\"shape\":[%" PRIu64 ",%u],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}}",
        RANK, n, elems * 4, n, RANK, elems * 4, elems * 8);
    while (hl % 8 != 0)
        hdr[hl++] = ' ';
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    if ((f = fopen(path, "wb")) == NULL || (buf = malloc(bn * sizeof(float))) == NULL)
        return -1;
    uint64_t hl64 = hl;
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(hl64 >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(hdr, 1, hl, f);
    for (uint64_t left = 2 * elems; left > 0;) {
        size_t k = left < bn ? (size_t)left : bn;
        for (size_t i = 0; i < k; i++) {
            x = x * 1664525u + 1013904223u;
            buf[i] = (float)((int32_t)(x >> 8) - (1 << 23)) * 1e-9f;
        }
        if (fwrite(buf, sizeof(float), k, f) != k)
            rc = -1;
        left -= k;
    }
    free(buf);
    if (fclose(f) != 0)
        rc = -1;
    *total = 8 + hl + elems * 8;
    snprintf(path, sizeof(path), "%s/adapter_config.json", dir);
    static const char cfg[] = "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16,"
        "\"target_modules\":[\"big\"],\"base_model_name_or_path\":\"bench-base\"}\n";
    return rc != 0 ? -1 : write_file(path, cfg, sizeof(cfg) - 1);
}

static int write_config(const struct daemon *dm, const char *keyring, const char *publish)
{
    char path[700], text[2048];
    int n;

    const char *level = getenv("BENCH_LOG_LEVEL") ? getenv("BENCH_LOG_LEVEL") : "warn";

    n = snprintf(text, sizeof(text),
        "node:\n  data: %s/data\n  listen: 127.0.0.1:0\n  http: 127.0.0.1:0\n"
        "  key: %s/node.key\n  keyring: %s\n  ready_file: %s\n  log_level: %s\n%s%s%s"
        "gossip:\n  round_ms: 100\n  chunk_size: %u\n  quorum: 1\n"
        "merge:\n  enabled: false\n",
        dm->dir, dm->dir, keyring, dm->ready, level, publish ? "  publish: [" : "",
        publish ? publish : "", publish ? "]\n" : "", CHUNK);
    snprintf(path, sizeof(path), "%s/node.yml", dm->dir);
    return n > 0 && (size_t)n < sizeof(text) ? write_file(path, text, (size_t)n) : -1;
}

static int start(struct daemon *dm, const char *plorad, const char *join)
{
    char cfg[700], log[700];

    snprintf(cfg, sizeof(cfg), "%s/node.yml", dm->dir);
    snprintf(log, sizeof(log), "%s/plorad.log", dm->dir);
    if ((dm->pid = fork()) < 0)
        return -1;
    if (dm->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0)
            dup2(fd, 2);
        if (join != NULL)
            execl(plorad, plorad, "--config", cfg, "--join", join, (char *)NULL);
        else
            execl(plorad, plorad, "--config", cfg, (char *)NULL);
        _exit(127);
    }
    return 0;
}

/* Wait for the ready file; copy its listen address into `listen`. */
static int wait_ready(struct daemon *dm, char *listen, size_t cap, double limit_s)
{
    double t0 = now_s();

    while (now_s() - t0 < limit_s) {
        json_error_t je;
        json_t *j = json_load_file(dm->ready, 0, &je);
        if (j != NULL) {
            const char *l = json_string_value(json_object_get(j, "listen"));
            const char *h = json_string_value(json_object_get(j, "http"));
            if (l != NULL && h != NULL) {
                snprintf(listen, cap, "%s", l);
                snprintf(dm->http, sizeof(dm->http), "%s", h);
                json_decref(j);
                return 0;
            }
            json_decref(j);
        }
        if (waitpid(dm->pid, NULL, WNOHANG) == dm->pid) {
            fprintf(stderr, "bench_transfer: plorad in %s exited early (see plorad.log)\n", dm->dir);
            dm->pid = 0;
            return -1;
        }
        usleep(10000);
    }
    fprintf(stderr, "bench_transfer: %s not ready after %.0f s\n", dm->dir, limit_s);
    return -1;
}

/* VmRSS, RssAnon and RssFile of pid in MiB (0 when gone). */
struct rss {
    double total, anon, file;
};

static struct rss rss_of(pid_t pid)
{
    char path[64], line[256];
    struct rss r = { 0, 0, 0 };
    double kb;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return r;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %lf kB", &kb) == 1)
            r.total = kb / 1024.0;
        else if (sscanf(line, "RssAnon: %lf kB", &kb) == 1)
            r.anon = kb / 1024.0;
        else if (sscanf(line, "RssFile: %lf kB", &kb) == 1)
            r.file = kb / 1024.0;
    }
    fclose(f);
    return r;
}

static void rss_max(struct rss *peak, struct rss r)
{
    peak->total = r.total > peak->total ? r.total : peak->total;
    peak->anon = r.anon > peak->anon ? r.anon : peak->anon;
    peak->file = r.file > peak->file ? r.file : peak->file;
}

/* GET /status of dm as JSON (NULL on failure). */
static json_t *status_of(const struct daemon *dm)
{
    char *body = NULL;
    size_t len = 0;
    int status = 0;
    struct dmn_diag d;
    json_t *j = NULL;

    if (httpget(dm->http, "/status", 2000, &body, &len, &status, &d) == 0 && status == 200)
        j = json_loadb(body, len, 0, NULL);
    free(body);
    return j;
}

/* true once every adapter of dm has its gate verdict (the import's hashing
 * and gate, which map the whole file, are over: the daemon is idle). */
static bool gated(const struct daemon *dm)
{
    json_t *j = status_of(dm), *ad;
    size_t i, n = 0, done = 0;

    json_array_foreach(json_object_get(j, "adapters"), i, ad) {
        const char *g = json_string_value(json_object_get(ad, "gate"));
        n++;
        done += g != NULL && strcmp(g, "pending") != 0;
    }
    json_decref(j);
    return n > 0 && done == n;
}

/* transfer_ms of adapter `id` in B's status once it is held; -1 meanwhile. */
static double held_transfer_ms(const struct daemon *b)
{
    json_t *j = status_of(b), *ad;
    double ms = -1;
    size_t i;

    json_array_foreach(json_object_get(j, "adapters"), i, ad) {
        const char *st = json_string_value(json_object_get(ad, "state"));
        json_t *t = json_object_get(ad, "transfer_ms");
        if (st != NULL && (strcmp(st, "held") == 0 || strcmp(st, "committed") == 0) &&
            json_is_number(t))
            ms = json_number_value(t);
    }
    json_decref(j);
    return ms;
}

/* The anchors: `bytes` over a loopback TCP connection, MB/s; with `hash`
 * the reader also SHA-256s what it reads (a 128 KiB buffer, as plorad's
 * hash thread reads): the least work any SHA-256-verified transfer does,
 * with no file on either side. */
static double tcp_copy_mb_s(uint64_t bytes, bool hash)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    int ls = socket(AF_INET, SOCK_STREAM, 0), c, st = 1;
    static char buf[1u << 20];
    double t0, t1;
    pid_t pid;

    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(ls, 1) != 0 ||
        getsockname(ls, (struct sockaddr *)&sa, &sl) != 0)
        return 0;
    if ((pid = fork()) == 0) {
        int s = accept(ls, NULL, NULL);
        struct sha256_ctx *h = NULL;
        uint8_t md[SHA256_LEN];
        ssize_t r;
        if (hash && sha256_new(&h) != 0)
            _exit(1);
        while (s >= 0 && (r = read(s, buf, hash ? 128u << 10 : sizeof(buf))) > 0)
            if (hash && sha256_update(h, buf, (size_t)r) != 0)
                _exit(1);
        _exit(hash && sha256_final(h, md) != 0 ? 1 : 0);
    }
    close(ls);
    if ((c = socket(AF_INET, SOCK_STREAM, 0)) < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return 0;
    memset(buf, 0x5a, sizeof(buf));
    t0 = now_s();
    for (uint64_t left = bytes; left > 0;) {
        size_t k = left < sizeof(buf) ? (size_t)left : sizeof(buf);
        ssize_t w = write(c, buf, k);
        if (w <= 0)
            break;
        left -= (uint64_t)w;
    }
    close(c);
    waitpid(pid, &st, 0);
    t1 = now_s();
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? (double)bytes / 1e6 / (t1 - t0) : 0;
}

/* SHA-256 of `bytes` from a hot 128 KiB buffer on one core, MB/s: the
 * ceiling of any transfer that hashes the whole file as one stream. */
static double sha256_mb_s(uint64_t bytes)
{
    static uint8_t buf[128u << 10];
    struct sha256_ctx *h = NULL;
    uint8_t md[SHA256_LEN];
    double t0;

    memset(buf, 0x5a, sizeof(buf));
    if (sha256_new(&h) != 0)
        return 0;
    t0 = now_s();
    for (uint64_t left = bytes; left > 0;) {
        size_t k = left < sizeof(buf) ? (size_t)left : sizeof(buf);
        if (sha256_update(h, buf, k) != 0)
            break;
        left -= k;
    }
    if (sha256_final(h, md) != 0)
        return 0;
    return (double)bytes / 1e6 / (now_s() - t0);
}

static void stop(struct daemon *dm)
{
    if (dm->pid > 0) {
        kill(dm->pid, SIGTERM);
        waitpid(dm->pid, NULL, 0);
        dm->pid = 0;
    }
}

/* Sample each daemon's RSS every 10 ms into *peak_a, *peak_b until B holds the
 * adapter (returns its transfer_ms) or 120 s pass (-1). */
static double sample_transfer(const struct daemon *a, const struct daemon *b, struct rss *peak_a,
                              struct rss *peak_b)
{
    double t0 = now_s(), ms = -1;

    while (now_s() - t0 < 120 && (ms = held_transfer_ms(b)) < 0) {
        rss_max(peak_a, rss_of(a->pid));
        rss_max(peak_b, rss_of(b->pid));
        usleep(10000);
    }
    return ms;
}

/* Wait (up to limit_s) until dm's adapters are gated, sampling its RSS. */
static int wait_gated(const struct daemon *dm, double limit_s, struct rss *peak)
{
    double t0 = now_s();

    while (now_s() - t0 < limit_s) {
        if (peak != NULL)
            rss_max(peak, rss_of(dm->pid));
        if (gated(dm))
            return 0;
        usleep(10000);
    }
    fprintf(stderr, "bench_transfer: %s: adapters not gated after %.0f s\n", dm->dir, limit_s);
    return -1;
}

int main(int argc, char **argv)
{
    const char *plorad = getenv("PLORAD") ? getenv("PLORAD") : "build/daemon/plorad";
    uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 256, bytes = 0;
    const char *tmp = getenv("BENCH_TMP") ? getenv("BENCH_TMP") : "/tmp";
    char root[400], keyring[600], pub[600], listen[300];
    struct daemon a = { 0 }, b = { 0 };
    struct rss idle = { 0, 0, 0 }, peak = { 0, 0, 0 }, peak_a = { 0, 0, 0 }, peak_b = { 0, 0, 0 }, gate = { 0, 0, 0 };
    double ms = -1, tcp, tcp2, tsha, tsha2, sha, sha2, limit = 10.0 + 2.0 * CHUNK / 1048576.0;
    int rc = 1;

    snprintf(root, sizeof(root), "%s/bench_transfer_XXXXXX", tmp);
    if (mib == 0 || mkdtemp(root) == NULL)
        return 2;
    snprintf(keyring, sizeof(keyring), "%s/keyring", root);
    snprintf(pub, sizeof(pub), "%s/adapter", root);
    snprintf(a.dir, sizeof(a.dir), "%s/a", root);
    snprintf(b.dir, sizeof(b.dir), "%s/b", root);
    snprintf(a.ready, sizeof(a.ready), "%s/ready.json", a.dir);
    snprintf(b.ready, sizeof(b.ready), "%s/ready.json", b.dir);
    if (mkdir(keyring, 0700) != 0 || mkdir(pub, 0700) != 0 || mkdir(a.dir, 0700) != 0 ||
        mkdir(b.dir, 0700) != 0 || make_key(a.dir, keyring, "a") != 0 ||
        make_key(b.dir, keyring, "b") != 0 || make_adapter(pub, mib << 20, &bytes) != 0 ||
        write_config(&a, keyring, pub) != 0 || write_config(&b, keyring, NULL) != 0)
        goto out;
    tcp = tcp_copy_mb_s(bytes, false);
    tsha = tcp_copy_mb_s(bytes, true);
    sha = sha256_mb_s(bytes);
    if (start(&a, plorad, NULL) != 0 || wait_ready(&a, listen, sizeof(listen), 120) != 0 ||
        wait_gated(&a, 120, NULL) != 0)
        goto out;
    usleep(300000);   /* idle: the import's hashing and gate are over */
    idle = rss_of(a.pid);
    if (start(&b, plorad, listen) != 0 || wait_ready(&b, listen, sizeof(listen), 30) != 0)
        goto out;
    if ((ms = sample_transfer(&a, &b, &peak_a, &peak_b)) <= 0) {
        fprintf(stderr, "bench_transfer: adapter not held at B after 120 s (logs in %s)\n", root);
        goto out;
    }
    rss_max(&peak, peak_a);
    rss_max(&peak, peak_b);
    if (wait_gated(&b, 120, &gate) != 0)
        goto out;
    tcp2 = tcp_copy_mb_s(bytes, false);   /* the anchors again after: the better of the two counts */
    tsha2 = tcp_copy_mb_s(bytes, true);
    sha2 = sha256_mb_s(bytes);
    tcp = tcp2 > tcp ? tcp2 : tcp;
    tsha = tsha2 > tsha ? tsha2 : tsha;
    sha = sha2 > sha ? sha2 : sha;
    double mb_s = (double)bytes / 1e6 / (ms / 1000.0);
    const char *check = mb_s < 1000 ? "below_1GBps" : mb_s / tcp < 0.6 ? "below_0.6_tcp" :
                        idle.total > 10 ? "idle_rss_over" : peak.total > limit ? "rss_over" : "ok";
    printf("bench=transfer bytes=%" PRIu64 " transfer_ms=%.1f mb_s=%.0f tcp_mb_s=%.0f ratio_tcp=%.3f "
           "tcp_sha256_mb_s=%.0f ratio_tcp_sha256=%.3f sha256_mb_s=%.0f sha256_over_tcp=%.3f "
           "ratio_prototype=%.0f idle_rss_mb=%.1f idle_anon_mb=%.1f idle_file_mb=%.1f "
           "peak_rss_mb=%.1f peak_anon_mb=%.1f peak_sender_mb=%.1f peak_receiver_mb=%.1f rss_limit_mb=%.1f gate_peak_rss_mb=%.1f "
           "gate_peak_anon_mb=%.1f check=%s\n",
           bytes, ms, mb_s, tcp, mb_s / tcp, tsha, mb_s / tsha, sha, sha / tcp, mb_s / PROTOTYPE_MB_S, idle.total, idle.anon,
           idle.file, peak.total, peak.anon, peak_a.total, peak_b.total, limit, gate.total, gate.anon, check);
    rc = strcmp(check, "ok") == 0 ? 0 : 1;
out:
    stop(&b);
    stop(&a);
    if (rc == 0 || getenv("BENCH_KEEP") == NULL) {
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_transfer: could not remove %s\n", root);
    }
    return rc;
}
