/* bench/bench_frame.c: receive-side decode throughput of an adapter sent as
 * plorad frames (MANIFEST + CHUNKs) against the prototype's NDJSON offer line
 * (JSON + base64 of zlib) decoded by python3 json/base64/zlib, the way the
 * prototype's receiver does it (bench/frame_anchor.py, run in the same program).
 *
 * The payload is the gpt2 fixture adapter (adapter_model.safetensors, 1.2 MB);
 * the anchor decodes the prototype's own captured frame of that same adapter
 * (reference/wire/ndjson/full_gpt2_offer_real_adapter.offer.ndjson). Our side,
 * per chunk size: bytes arrive in 64 KiB slices into a frame_reader (one copy,
 * like read(2)), each frame goes through mpwalk + msgpack-c + field checks
 * (msg_decode), and each CHUNK's data is copied into place in a reassembly
 * buffer (the anchor too ends with the payload in one buffer). Neither side
 * hashes inside the timed loop; both check the payload once.
 *
 * Prints one line per chunk size:
 *   bench=frame_decode plorad_mb_s=<x> anchor=prototype_ndjson mb_s=<y> ratio=<x/y>
 *     chunk_kib=<k> wire_bytes=<ours> anchor_wire_bytes=<line> wire_ratio=<ours/line> check=ok
 * MB = 10^6 payload bytes per CPU second (CLOCK_PROCESS_CPUTIME_ID; python:
 * process_time), best of ROUNDS rounds, so neighbours' load on the shared
 * cores counts less.
 * Usage: bench_frame [FIXTURES [SECONDS [ROUNDS]]]   (FIXTURES defaults to
 * $PLORA_FIXTURES, then ../shared/fixtures; FRAME_ANCHOR overrides the path
 * of bench/frame_anchor.py; run from the project root.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"
#include "msg.h"
#include "sha256.h"

#define SLICE (64u << 10)   /* bytes per simulated socket read */

struct blob {
    uint8_t *p;
    size_t n;
};

static double cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int slurp(const char *dir, const char *rel, struct blob *b)
{
    char path[1024];
    FILE *f;
    long n;

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    b->p = NULL;
    if ((f = fopen(path, "rb")) == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 ||
        fseek(f, 0, SEEK_SET) != 0 || (b->p = malloc((size_t)n)) == NULL ||
        fread(b->p, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "bench_frame: cannot read %s\n", path);
        if (f != NULL)
            fclose(f);
        free(b->p);
        return -1;
    }
    fclose(f);
    b->n = (size_t)n;
    return 0;
}

/* Append one encoded message to the stream. */
static int append(struct blob *s, const struct msg *m)
{
    struct proto_diag d = { 0 };
    uint8_t *f, *np;
    size_t n;

    if (msg_encode(m, &f, &n, &d) != 0 || (np = realloc(s->p, s->n + n)) == NULL) {
        fprintf(stderr, "bench_frame: encode %s: %s\n", msg_type_name(m->type), d.msg);
        return -1;
    }
    memcpy(np + s->n, f, n);
    s->p = np;
    s->n += n;
    free(f);
    return 0;
}

/* MANIFEST then CHUNKs of `chunk` bytes: what a peer sends for one WANT. */
static int make_stream(const struct blob *ad, const struct blob *cfg, const struct blob *man,
                       const uint8_t id[32], size_t chunk, struct blob *s)
{
    struct msg m = { .type = MSG_MANIFEST };

    s->p = NULL;
    s->n = 0;
    memcpy(m.u.manifest.id, id, 32);
    strcpy(m.u.manifest.domain, "gpt2-c_attn-r8");
    m.u.manifest.size = ad->n;
    m.u.manifest.config = (struct msg_bytes){ cfg->p, cfg->n };
    m.u.manifest.manifest = (struct msg_bytes){ man->p, man->n };
    if (append(s, &m) != 0)
        return -1;
    for (size_t off = 0; off < ad->n; off += chunk) {
        struct msg c = { .type = MSG_CHUNK };
        memcpy(c.u.chunk.id, id, 32);
        c.u.chunk.off = off;
        c.u.chunk.data = (struct msg_bytes){ ad->p + off, ad->n - off < chunk ? ad->n - off : chunk };
        if (append(s, &c) != 0)
            return -1;
    }
    return 0;
}

/* One receive of the whole stream; returns payload bytes placed, or 0. */
static size_t receive(const struct blob *s, uint8_t *out, size_t cap)
{
    struct frame_reader *r = NULL;
    size_t placed = 0, pos = 0;
    int ok = frame_reader_new(&r, FRAME_MAX) == 0;

    while (ok && pos < s->n) {
        size_t k = s->n - pos < SLICE ? s->n - pos : SLICE;
        const uint8_t *body;
        size_t len;
        ok = frame_reader_feed(r, s->p + pos, k, NULL) == 0;
        pos += k;
        while (ok && frame_reader_next(r, &body, &len, NULL) == 0) {
            struct msg *m = NULL;
            ok = msg_decode(body, len, NULL, &m, NULL) == 0;
            if (ok && m->type == MSG_CHUNK) {
                const struct msg_chunk *c = &m->u.chunk;
                ok = c->off <= cap && c->data.n <= cap - c->off;
                if (ok) {
                    memcpy(out + c->off, c->data.p, c->data.n);
                    placed += c->data.n;
                }
            }
            msg_free(m);
        }
    }
    frame_reader_free(r);
    return ok ? placed : 0;
}

/* Best-of-rounds MB/s of receive(); *check = payload identical to the file. */
static double time_ours(const struct blob *s, const struct blob *ad, double secs, int rounds,
                        int *check)
{
    uint8_t *out = calloc(1, ad->n);
    double best = 0;

    *check = out != NULL && receive(s, out, ad->n) == ad->n && memcmp(out, ad->p, ad->n) == 0;
    for (int r = 0; *check && r < rounds; r++) {
        double t0 = cpu_s(), dt;
        size_t bytes = 0;
        do {
            size_t got = receive(s, out, ad->n);
            if (got != ad->n)
                *check = 0;
            bytes += got;
        } while ((dt = cpu_s() - t0) < secs && *check);
        if (bytes / dt / 1e6 > best)
            best = bytes / dt / 1e6;
    }
    free(out);
    return best;
}

/* Run the python anchor; parse its one line. Returns 0 on a checked run. */
static int run_anchor(const char *fx, double secs, int rounds, double *mb_s, size_t *wire)
{
    const char *script = getenv("FRAME_ANCHOR");
    char cmd[2048], line[512], chk[16] = "";
    size_t payload = 0;
    FILE *p;
    int ok;

    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 %s '%s/reference/wire/ndjson/full_gpt2_offer_real_adapter.offer.ndjson' %g %d",
             script != NULL ? script : "bench/frame_anchor.py", fx, secs, rounds);
    if ((p = popen(cmd, "r")) == NULL)
        return -1;
    ok = fgets(line, sizeof(line), p) != NULL &&
         sscanf(line, "mb_s=%lf payload_bytes=%zu wire_bytes=%zu check=%15s", mb_s, &payload, wire,
                chk) == 4;
    if (pclose(p) != 0 || !ok || strcmp(chk, "ok") != 0) {
        fprintf(stderr, "bench_frame: anchor failed (%s); set FRAME_ANCHOR to bench/frame_anchor.py\n",
                cmd);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const size_t chunks[] = { 64u << 10, 256u << 10, 1u << 20 };
    const char *fx = argc > 1 ? argv[1] : getenv("PLORA_FIXTURES");
    double secs = argc > 2 ? atof(argv[2]) : 1.0, anchor_mb_s = 0;
    int rounds = argc > 3 ? atoi(argv[3]) : 3, rc = 1;
    struct blob ad = { 0 }, cfg = { 0 }, man = { 0 };
    size_t anchor_wire = 0;
    uint8_t id[32];

    if (fx == NULL)
        fx = "../shared/fixtures";
    if (slurp(fx, "peft/gpt2-c_attn-r8/adapter_model.safetensors", &ad) != 0 ||
        slurp(fx, "peft/gpt2-c_attn-r8/adapter_config.json", &cfg) != 0 ||
        slurp(fx, "reference/manifests/rsa_sign_plasmid/gpt2-c_attn-r8/plora.yml", &man) != 0 ||
        sha256(ad.p, ad.n, id) != 0 || run_anchor(fx, secs, rounds, &anchor_mb_s, &anchor_wire) != 0)
        goto out;
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        struct blob s;
        int check = 0;
        if (make_stream(&ad, &cfg, &man, id, chunks[i], &s) != 0)
            goto out;
        double x = time_ours(&s, &ad, secs, rounds, &check);
        printf("bench=frame_decode plorad_mb_s=%.1f anchor=prototype_ndjson mb_s=%.1f ratio=%.1f "
               "chunk_kib=%zu wire_bytes=%zu anchor_wire_bytes=%zu wire_ratio=%.3f check=%s\n",
               x, anchor_mb_s, x / anchor_mb_s, chunks[i] >> 10, s.n, anchor_wire,
               (double)s.n / (double)anchor_wire, check ? "ok" : "FAILED");
        free(s.p);
        if (!check)
            goto out;
    }
    rc = 0;
out:
    free(ad.p);
    free(cfg.p);
    free(man.p);
    return rc;
}
