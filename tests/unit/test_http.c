/* tests/unit/test_http.c: the status server (http.h) over real loopback
 * sockets, the blocking client (httpget.h) against it and against canned
 * misbehaving servers, and the Prometheus rendering (metrics.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gate.h"
#include "http.h"
#include "httpget.h"
#include "metrics.h"

#define TIMEOUT_MS 3000

static unsigned port_of(const char *addr)
{
    const char *c = strrchr(addr, ':');

    assert_non_null(c);
    return (unsigned)strtoul(c + 1, NULL, 10);
}

/* Raw request over a fresh socket; returns the whole reply (malloc'd). */
static char *raw(const char *addr, const char *req)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    char *buf = calloc(1, 65536);
    size_t n = 0;
    ssize_t got;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_non_null(buf);
    sa.sin_port = htons((uint16_t)port_of(addr));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    while (n < 65535 && (got = recv(fd, buf + n, 65535 - n, 0)) > 0)
        n += (size_t)got;
    close(fd);
    return buf;
}

static void lower(char *s)
{
    for (; *s != '\0'; s++)
        *s = (char)tolower((unsigned char)*s);
}

static void get(const char *addr, const char *path, int want_status, const char *want_body)
{
    char *body = NULL;
    size_t len = 0;
    int status = 0, rc;
    struct dmn_diag d;

    rc = httpget(addr, path, TIMEOUT_MS, &body, &len, &status, &d);
    if (rc != 0)
        fail_msg("GET %s: %s (%s)", path, dmn_err_name(rc), d.msg);
    assert_int_equal(status, want_status);
    if (want_body != NULL) {
        assert_int_equal(len, strlen(want_body));
        assert_string_equal(body, want_body);
    }
    free(body);
}

/* The listening socket for port is bound to 127.0.0.1 only (/proc/net/tcp
 * shows local address 0100007F:<port hex> in state 0A = LISTEN). */
static void assert_loopback_only(unsigned port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512], want[32];
    int found = 0;

    if (f == NULL)
        fail_msg("cannot read /proc/net/tcp: %s", strerror(errno));
    snprintf(want, sizeof(want), ":%04X ", port);
    while (fgets(line, sizeof(line), f) != NULL) {
        char local[64], remote[64], st[8];
        if (sscanf(line, "%*s %63s %63s %7s", local, remote, st) != 3 || strcmp(st, "0A") != 0)
            continue;
        strcat(local, " ");
        if (strstr(local, want) == NULL)
            continue;
        found++;
        if (strncmp(local, "0100007F:", 9) != 0)
            fail_msg("port %u listens on %s, not 127.0.0.1", port, local);
    }
    fclose(f);
    assert_int_equal(found, 1);
}

static int open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    int n = 0;

    assert_non_null(dir);
    while (readdir(dir) != NULL)
        n++;
    closedir(dir);
    return n;
}

static void test_serve(void **state)
{
    static const char st1[] = "{\"id\":\"ab\",\"rounds\":1}", st2[] = "{\"id\":\"ab\",\"rounds\":2}";
    static const char m1[] = "# TYPE plorad_x counter\nplorad_x_total 1\n";
    struct http *h = NULL;
    struct dmn_diag d;
    char *r;
    int fds = open_fds();

    (void)state;
    if (http_start(&h, "127.0.0.1:0", &d) != 0)
        fail_msg("http_start: %s", d.msg);
    assert_int_equal(strncmp(http_addr(h), "127.0.0.1:", 10), 0);
    assert_true(port_of(http_addr(h)) > 0);
    assert_loopback_only(port_of(http_addr(h)));

    get(http_addr(h), "/status", 200, "{}");        /* before any publish */
    assert_int_equal(http_publish(h, st1, strlen(st1), m1, strlen(m1)), 0);
    get(http_addr(h), "/status", 200, st1);
    get(http_addr(h), "/metrics", 200, m1);
    get(http_addr(h), "/healthz", 200, "ok");
    get(http_addr(h), "/nope", 404, NULL);
    get(http_addr(h), "/status/x", 404, NULL);
    get(http_addr(h), "/status?x=1", 200, st1);     /* the query is not part of the path */

    assert_int_equal(http_publish(h, st2, strlen(st2), NULL, 0), 0);   /* NULL keeps metrics */
    get(http_addr(h), "/status", 200, st2);
    get(http_addr(h), "/metrics", 200, m1);

    r = raw(http_addr(h), "GET /metrics HTTP/1.0\r\n\r\n");
    lower(r);
    assert_non_null(strstr(r, "content-type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    free(r);
    r = raw(http_addr(h), "GET /status HTTP/1.0\r\n\r\n");
    lower(r);
    assert_non_null(strstr(r, "content-type: application/json\r\n"));
    free(r);
    r = raw(http_addr(h), "POST /status HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello");
    assert_int_equal(strncmp(r, "HTTP/1.1 405", 12), 0);
    lower(r);
    assert_non_null(strstr(r, "allow: get, head\r\n"));
    free(r);
    r = raw(http_addr(h), "DELETE /nope HTTP/1.0\r\n\r\n");
    assert_int_equal(strncmp(r, "HTTP/1.1 405", 12), 0);
    free(r);
    r = raw(http_addr(h), "HEAD /status HTTP/1.0\r\n\r\n");
    assert_int_equal(strncmp(r, "HTTP/1.1 200", 12), 0);
    assert_null(strstr(r, st2));                    /* no body for HEAD */
    free(r);
    r = raw(http_addr(h), "GARBAGE\r\n\r\n");   /* MHD refuses it (4xx or a close), never a 200 */
    assert_true(r[0] == '\0' || strncmp(r, "HTTP/1.1 4", 10) == 0);
    free(r);
    get(http_addr(h), "/healthz", 200, "ok");        /* and keeps serving */
    http_stop(h);
    http_stop(NULL);
    assert_int_equal(open_fds(), fds);   /* listen socket and MHD's own fds all closed */
}

static void test_start_errors(void **state)
{
    static const struct { const char *addr; int want; const char *msg; } cases[] = {
        { "nonsense", DMN_E_ARG, "has no port" },
        { "127.0.0.1:99999", DMN_E_ARG, "outside 0..65535" },
        { "example.com:80", DMN_E_ARG, "must be an IP literal" },
        { "192.0.2.1:0", DMN_E_HTTP, "cannot listen on 192.0.2.1:0: Cannot assign requested address" },
    };
    struct http *h = NULL, *h2 = NULL;
    struct dmn_diag d;
    char msg[64];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = http_start(&h2, cases[i].addr, &d);
        if (rc != cases[i].want || strstr(d.msg, cases[i].msg) == NULL)
            fail_msg("%s: got %s \"%s\", want %s \"%s\"", cases[i].addr, dmn_err_name(rc), d.msg,
                     dmn_err_name(cases[i].want), cases[i].msg);
        assert_null(h2);
    }
    assert_int_equal(http_start(&h, "localhost:0", &d), 0);
    assert_int_equal(strncmp(http_addr(h), "127.0.0.1:", 10), 0);
    assert_int_equal(http_start(&h2, http_addr(h), &d), DMN_E_HTTP);   /* port taken */
    snprintf(msg, sizeof(msg), "cannot listen on %s: Address already in use", http_addr(h));
    assert_non_null(strstr(d.msg, msg));
    assert_null(h2);
    http_stop(h);
}

struct churn {
    const char *addr;
    int bad;
};

static void *churn_reader(void *arg)
{
    struct churn *c = arg;

    for (int i = 0; i < 40; i++) {
        char *body = NULL;
        size_t len;
        int status;
        if (httpget(c->addr, "/status", TIMEOUT_MS, &body, &len, &status, NULL) != 0 ||
            status != 200 || len != 14 || strncmp(body, "{\"v\":", 5) != 0 || body[13] != '}')
            c->bad++;
        free(body);
    }
    return NULL;
}

/* Readers always see one whole published document while the loop
 * republishes (ASan catches a read of a freed copy). */
static void test_publish_churn(void **state)
{
    struct http *h = NULL;
    struct dmn_diag d;
    struct churn c = { NULL, 0 };
    pthread_t t;
    char doc[32];

    (void)state;
    assert_int_equal(http_start(&h, "127.0.0.1:0", &d), 0);
    c.addr = http_addr(h);
    assert_int_equal(http_publish(h, "{\"v\":00000000}", 14, "", 0), 0);
    assert_int_equal(pthread_create(&t, NULL, churn_reader, &c), 0);
    for (int i = 0; i < 2000; i++) {
        snprintf(doc, sizeof(doc), "{\"v\":%08d}", i);
        assert_int_equal(http_publish(h, doc, strlen(doc), doc, strlen(doc)), 0);
    }
    pthread_join(t, NULL);
    assert_int_equal(c.bad, 0);
    get(http_addr(h), "/status", 200, "{\"v\":00001999}");
    http_stop(h);
}

/* ---- httpget against canned servers ------------------------------------ */

struct fake {
    int lfd;
    char addr[32];
    const char *reply;   /* NULL: accept, read, never answer */
    size_t reply_len;
    int hold_ms;         /* keep the connection open this long after replying */
    pthread_t t;
};

static void *fake_serve(void *arg)
{
    struct fake *f = arg;
    char buf[4096];
    int fd = accept(f->lfd, NULL, NULL);

    if (fd < 0)
        return NULL;
    (void)recv(fd, buf, sizeof(buf), 0);
    if (f->reply != NULL)
        (void)send(fd, f->reply, f->reply_len, MSG_NOSIGNAL);
    usleep((useconds_t)f->hold_ms * 1000);
    close(fd);
    return NULL;
}

static void fake_start(struct fake *f, const char *reply, size_t n, int hold_ms, int serve)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->lfd, 4), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%u", ntohs(sa.sin_port));
    f->reply = reply, f->reply_len = n, f->hold_ms = hold_ms;
    if (serve)
        assert_int_equal(pthread_create(&f->t, NULL, fake_serve, f), 0);
}

static void fake_stop(struct fake *f, int serve)
{
    if (serve)
        pthread_join(f->t, NULL);
    close(f->lfd);
}

static void test_httpget_canned(void **state)
{
    static const char big_head[] = "HTTP/1.0 200 OK\r\nContent-Length: 99999999\r\n\r\n";
    static const struct {
        const char *name, *reply;
        int hold_ms, timeout_ms, want, status;
        const char *body, *msg;
    } cases[] = {
        { "plain 1.0", "HTTP/1.0 200 OK\r\nContent-Type: x\r\n\r\nhello", 0, TIMEOUT_MS, 0, 200, "hello", NULL },
        { "content-length", "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabcdef", 0, TIMEOUT_MS, 0, 201, "abc", NULL },
        { "keep-alive server", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi", 2500, 1000, 0, 200, "hi", NULL },
        { "bare LF", "HTTP/1.0 503 Busy\n\nno", 0, TIMEOUT_MS, 0, 503, "no", NULL },
        { "no reason", "HTTP/1.0 204\r\n\r\n", 0, TIMEOUT_MS, 0, 204, "", NULL },
        { "not http", "SSH-2.0-OpenSSH_9.2\r\n\r\n", 0, TIMEOUT_MS, DMN_E_PEER, 0, NULL, "not an HTTP/1.x response" },
        { "http/2", "HTTP/2 200\r\n\r\n", 0, TIMEOUT_MS, DMN_E_PEER, 0, NULL, "not an HTTP/1.x response" },
        { "short status", "HTTP/1.0 20 OK\r\n\r\n", 0, TIMEOUT_MS, DMN_E_PEER, 0, NULL, "not an HTTP" },
        { "chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 0, TIMEOUT_MS,
          DMN_E_PEER, 0, NULL, "Transfer-Encoding" },
        { "bad length", "HTTP/1.0 200 OK\r\nContent-Length: -1\r\n\r\nabc", 0, TIMEOUT_MS, DMN_E_PEER,
          0, NULL, "Content-Length is not a number" },
        { "body over cap", big_head, 0, TIMEOUT_MS, DMN_E_PEER, 0, NULL, "over the 16777216-byte cap" },
        { "truncated body", "HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, TIMEOUT_MS, DMN_E_IO, 0, NULL,
          "closed after 3 of 10 body bytes" },
        { "head cut", "HTTP/1.0 200 OK\r\nX: y", 0, TIMEOUT_MS, DMN_E_PEER, 0, NULL, "inside the response head" },
        { "nothing", "", 0, TIMEOUT_MS, DMN_E_IO, 0, NULL, "closed before any response" },
        { "silent", NULL, 1500, 300, DMN_E_IO, 0, NULL, "timed out reading the response" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fake f;
        char *body = (char *)1;
        size_t len = 7;
        int status = -1, rc;
        struct dmn_diag d;
        const char *rep = cases[i].reply;

        dmn_diag_clear(&d);
        fake_start(&f, rep, rep != NULL ? strlen(rep) : 0, cases[i].hold_ms, 1);
        rc = httpget(f.addr, "/status", cases[i].timeout_ms, &body, &len,
                     &status, &d);
        fake_stop(&f, 1);
        if (rc != cases[i].want)
            fail_msg("%s: got %s, want %s (%s)", cases[i].name, dmn_err_name(rc),
                     dmn_err_name(cases[i].want), d.msg);
        if (rc == 0) {
            assert_int_equal(status, cases[i].status);
            assert_int_equal(len, strlen(cases[i].body));
            assert_string_equal(body, cases[i].body);
        } else {
            assert_null(body);
            assert_int_equal(len, 0);
            if (strstr(d.msg, cases[i].msg) == NULL || strstr(d.msg, f.addr) == NULL)
                fail_msg("%s: message \"%s\" lacks \"%s\" or the address", cases[i].name, d.msg,
                         cases[i].msg);
        }
        free(body);
    }
}

static void test_httpget_errors(void **state)
{
    struct fake f;
    char *body = NULL;
    size_t len;
    int status;
    struct dmn_diag d;
    char closed[32];

    (void)state;
    /* a listener nobody accepts from: connect succeeds, the reply never comes */
    fake_start(&f, NULL, 0, 0, 0);
    assert_int_equal(httpget(f.addr, "/", 200, &body, &len, &status, &d), DMN_E_IO);
    assert_non_null(strstr(d.msg, "timed out"));
    snprintf(closed, sizeof(closed), "%s", f.addr);
    fake_stop(&f, 0);
    /* the same port, closed now: refused */
    assert_int_equal(httpget(closed, "/", 1000, &body, &len, &status, &d), DMN_E_IO);
    assert_non_null(strstr(d.msg, closed));
    assert_non_null(strstr(d.msg, "connect: Connection refused"));
    assert_int_equal(httpget("nope", "/", 1000, &body, &len, &status, &d), DMN_E_ARG);
    assert_int_equal(httpget("127.0.0.1:1", "status", 1000, &body, &len, &status, &d), DMN_E_ARG);
    assert_int_equal(httpget("127.0.0.1:1", "/a b", 1000, &body, &len, &status, &d), DMN_E_ARG);
    assert_int_equal(httpget("127.0.0.1:1", "/", 0, &body, &len, &status, &d), DMN_E_ARG);
    assert_null(body);
}

/* ---- metrics ------------------------------------------------------------ */

static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

/* Every sample's family has # HELP and # TYPE before it; names follow the
 * suffix rules (_total for counters). */
static void check_exposition(const char *text)
{
    char fam[128] = "", type[16] = "";
    int helped = 0;

    for (const char *p = text, *nl; *p != '\0'; p = nl + 1) {
        char name[128];
        nl = strchr(p, '\n');
        assert_non_null(nl);
        if (strncmp(p, "# HELP ", 7) == 0) {
            assert_int_equal(sscanf(p + 7, "%127s", fam), 1);
            helped = 1;
            continue;
        }
        if (strncmp(p, "# TYPE ", 7) == 0) {
            assert_int_equal(sscanf(p + 7, "%127s %15s", name, type), 2);
            assert_true(helped);
            assert_string_equal(name, fam);
            if (strcmp(type, "counter") == 0)
                assert_string_equal(fam + strlen(fam) - 6, "_total");
            continue;
        }
        assert_int_equal(sscanf(p, "%127[^{ ]", name), 1);
        if (strncmp(name, fam, strlen(fam)) != 0)
            fail_msg("sample %s outside family %s", name, fam);
        if (strcmp(type, "histogram") != 0)
            assert_string_equal(name, fam);
        assert_non_null(strstr(p, "{node=\"n\\\"1\\\\\\n\""));   /* escaped label on every sample */
    }
}

static void test_metrics_render(void **state)
{
    struct metrics m;
    char *out = NULL, line[256];
    size_t n = 0;
    unsigned long long prev = 0;
    static const double fs[] = { 0.00005, 0.0001, 0.0003, 0.05, 1.0 };

    (void)state;
    memset(&m, 0, sizeof(m));
    m.rounds = 7, m.peers = 3, m.bytes_in = 1234567890123ull, m.gate_reject = 2, m.send_buffers = 2;
    m.gate_reasons[GATE_R_SHA256] = 2, m.gate_reasons[GATE_R_PROBE] = 1;
    for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++)
        metrics_fsync(&m, fs[i]);
    assert_int_equal(m.fsync_count, 5);
    assert_int_equal(metrics_render(&m, "n\"1\\\n", &out, &n), 0);
    assert_int_equal(strlen(out), n);
    check_exposition(out);
#define L "{node=\"n\\\"1\\\\\\n\""
    assert_true(has_line(out, "# TYPE plorad_gossip_rounds_total counter"));
    assert_true(has_line(out, "plorad_gossip_rounds_total" L "} 7"));
    assert_true(has_line(out, "# TYPE plorad_peers gauge"));
    assert_true(has_line(out, "plorad_peers" L "} 3"));
    assert_true(has_line(out, "plorad_bytes_received_total" L "} 1234567890123"));
    assert_true(has_line(out, "# TYPE plorad_send_buffers gauge"));
    assert_true(has_line(out, "plorad_send_buffers" L "} 2"));
    assert_true(has_line(out, "plorad_gate_rejected_total" L "} 2"));
    assert_true(has_line(out, "plorad_gate_rejections_total" L ",reason=\"sha256_mismatch\"} 2"));
    assert_true(has_line(out, "plorad_gate_rejections_total" L ",reason=\"probe_failed\"} 1"));
    assert_true(has_line(out, "plorad_gate_rejections_total" L ",reason=\"artifact_missing\"} 0"));
    assert_null(strstr(out, "reason=\"?\""));     /* GATE_R_NONE skipped, no unknown names */
    assert_true(has_line(out, "# TYPE plorad_fsync_seconds histogram"));
    assert_true(has_line(out, "plorad_fsync_seconds_bucket" L ",le=\"0.0001\"} 2"));
    assert_true(has_line(out, "plorad_fsync_seconds_bucket" L ",le=\"0.0002\"} 2"));
    assert_true(has_line(out, "plorad_fsync_seconds_bucket" L ",le=\"0.0004\"} 3"));
    assert_true(has_line(out, "plorad_fsync_seconds_bucket" L ",le=\"0.0512\"} 4"));
    assert_true(has_line(out, "plorad_fsync_seconds_bucket" L ",le=\"0.2048\"} 4"));
    assert_true(has_line(out, "plorad_fsync_seconds_bucket" L ",le=\"+Inf\"} 5"));
    assert_true(has_line(out, "plorad_fsync_seconds_count" L "} 5"));
    assert_true(has_line(out, "plorad_fsync_seconds_sum" L "} 1.05045"));
    /* buckets: METRICS_FSYNC_BUCKETS + 1, cumulative (never decreasing) */
    int buckets = 0;
    for (const char *p = out; (p = strstr(p, "plorad_fsync_seconds_bucket")) != NULL; p++, buckets++) {
        unsigned long long v;
        const char *sp = strchr(p, '}');
        assert_int_equal(sscanf(sp + 1, " %llu", &v), 1);
        assert_true(v >= prev);
        prev = v;
    }
    assert_int_equal(buckets, METRICS_FSYNC_BUCKETS + 1);
#undef L
    snprintf(line, sizeof(line), "%g", metrics_fsync_bound(METRICS_FSYNC_BUCKETS - 1));
    assert_string_equal(line, "0.2048");
    free(out);
    /* a plain node name, and the document served as is */
    assert_int_equal(metrics_render(&m, "node-0", &out, &n), 0);
    assert_true(has_line(out, "plorad_peers{node=\"node-0\"} 3"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve),
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_publish_churn),
        cmocka_unit_test(test_httpget_canned),
        cmocka_unit_test(test_httpget_errors),
        cmocka_unit_test(test_metrics_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
