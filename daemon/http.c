/* daemon/http.c: the status server. libmicrohttpd parses HTTP in its own
 * polling thread; this file only routes three paths to copies of the last
 * published documents. We bind the listen socket ourselves so that a bind
 * failure reports its errno and port 0 yields the real port, and hand it to
 * MHD (MHD_OPTION_LISTEN_SOCKET); at stop we take it back with
 * MHD_quiesce_daemon and close it, so ownership is never ambiguous. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

#define HTTP_CONN_LIMIT 64u      /* connections at once; more are refused */
#define HTTP_CONN_TIMEOUT_S 5u   /* an idle or slow client is dropped after this */
#define HTTP_BACKLOG 16

struct http {
    struct MHD_Daemon *mhd;
    int fd;                         /* listen socket; ours again after quiesce */
    pthread_mutex_t mu;             /* guards the four fields below */
    char *status, *metrics;
    size_t status_len, metrics_len;
    char addr[INET6_ADDRSTRLEN + 10];
};

static const char ct_json[] = "application/json";
static const char ct_prom[] = "text/plain; version=0.0.4; charset=utf-8";
static const char ct_text[] = "text/plain; charset=utf-8";

/* MHD's own complaints go to our log, one line each. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    log_warn("HTTP-MHD", "status server: %s", msg);
}

/* Queue a response whose body is a copy of p[0..n). */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *ctype,
                             const char *p, size_t n, bool allow)
{
    struct MHD_Response *r;
    enum MHD_Result ok;

    r = MHD_create_response_from_buffer(n, (void *)(uintptr_t)p, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;   /* MHD closes the connection */
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES ||
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
        (allow && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES)) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    ok = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);   /* MHD holds its own reference */
    return ok;
}

/* Serve a published document: the copy into the response is made under
 * the lock, so a concurrent http_publish never frees what we read. */
static enum MHD_Result reply_doc(struct http *h, struct MHD_Connection *conn, bool status)
{
    enum MHD_Result ok;

    pthread_mutex_lock(&h->mu);
    if (status)
        ok = reply(conn, MHD_HTTP_OK, ct_json, h->status, h->status_len, false);
    else
        ok = reply(conn, MHD_HTTP_OK, ct_prom, h->metrics, h->metrics_len, false);
    pthread_mutex_unlock(&h->mu);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_len, void **req_cls)
{
    static const char not_found[] = "not found\n", not_allowed[] = "method not allowed\n";
    struct http *h = cls;

    (void)version, (void)upload, (void)upload_len, (void)req_cls;
    /* Answered on the first call, before any request body: nothing we
     * serve takes one, and MHD discards what follows. */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, ct_text, not_allowed,
                     sizeof(not_allowed) - 1, true);
    if (strcmp(url, "/status") == 0)
        return reply_doc(h, conn, true);
    if (strcmp(url, "/metrics") == 0)
        return reply_doc(h, conn, false);
    if (strcmp(url, "/healthz") == 0)
        return reply(conn, MHD_HTTP_OK, ct_text, "ok", 2, false);
    return reply(conn, MHD_HTTP_NOT_FOUND, ct_text, not_found, sizeof(not_found) - 1, false);
}

/* Resolve addr to a socket address: IP literals, and "localhost" as
 * 127.0.0.1 (a status server has no business binding a resolved name).
 * Returns 0 or DMN_E_ARG. */
static int http_sockaddr(const char *addr, struct sockaddr_storage *ss, socklen_t *sl,
                         struct dmn_diag *d)
{
    char host[256];
    unsigned port;
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

    if (config_addr_split(addr, host, sizeof(host), &port, d) != 0)
        return DMN_E_ARG;
    memset(ss, 0, sizeof(*ss));
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *sl = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *sl = sizeof(*v6);
    } else {
        return dmn_fail(d, DMN_E_ARG, "status server address \"%s\": host must be an IP "
                        "literal or localhost", addr);
    }
    return 0;
}

/* Socket bound and listening on addr; h->addr gets the real port.
 * Returns 0 (h->fd set), DMN_E_ARG, DMN_E_HTTP. */
static int http_listen(struct http *h, const char *addr, struct dmn_diag *d)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char ip[INET6_ADDRSTRLEN];
    int one = 1, rc;

    if ((rc = http_sockaddr(addr, &ss, &sl, d)) != 0)
        return rc;
    h->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (h->fd < 0 || setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(h->fd, (struct sockaddr *)&ss, sl) != 0 || listen(h->fd, HTTP_BACKLOG) != 0 ||
        getsockname(h->fd, (struct sockaddr *)&ss, &(socklen_t){ sizeof(ss) }) != 0)
        return dmn_fail(d, DMN_E_HTTP, "status server cannot listen on %s: %s", addr,
                        strerror(errno));
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip));
        snprintf(h->addr, sizeof(h->addr), "%s:%u", ip, ntohs(v4->sin_port));
    } else {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip));
        snprintf(h->addr, sizeof(h->addr), "[%s]:%u", ip, ntohs(v6->sin6_port));
    }
    return 0;
}

static int http_docs_init(struct http *h)
{
    h->status = strdup("{}");
    h->metrics = strdup("");
    h->status_len = 2;
    h->metrics_len = 0;
    return h->status != NULL && h->metrics != NULL ? 0 : DMN_E_NOMEM;
}

int http_start(struct http **out, const char *addr, struct dmn_diag *d)
{
    struct http *h = NULL;
    int rc = DMN_E_NOMEM;

    *out = NULL;
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return dmn_fail(d, DMN_E_NOMEM, "status server: out of memory");
    h->fd = -1;
    pthread_mutex_init(&h->mu, NULL);
    if (http_docs_init(h) != 0) {
        dmn_fail(d, DMN_E_NOMEM, "status server: out of memory");
        goto out;
    }
    if ((rc = http_listen(h, addr, d)) != 0)
        goto out;
    h->mhd = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0,
                              NULL, NULL, on_request, h,
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                              MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->fd,
                              MHD_OPTION_CONNECTION_LIMIT, HTTP_CONN_LIMIT,
                              MHD_OPTION_CONNECTION_TIMEOUT, HTTP_CONN_TIMEOUT_S,
                              MHD_OPTION_END);
    if (h->mhd == NULL) {
        rc = dmn_fail(d, DMN_E_HTTP, "status server on %s: libmicrohttpd failed to start: %s",
                      h->addr, strerror(errno));
        h->fd = -1;   /* MHD's failure path may already have closed it: never close twice */
        goto out;
    }
    *out = h;   /* the caller owns it now */
    h = NULL;
    rc = 0;
out:
    http_stop(h);
    return rc;
}

const char *http_addr(const struct http *h)
{
    return h->addr;
}

int http_publish(struct http *h, const char *status_json, size_t status_len,
                 const char *metrics_text, size_t metrics_len)
{
    char *s = NULL, *m = NULL;

    if ((status_json != NULL && (s = malloc(status_len + 1)) == NULL) ||
        (metrics_text != NULL && (m = malloc(metrics_len + 1)) == NULL)) {
        free(s);
        return DMN_E_NOMEM;
    }
    if (s != NULL) {
        memcpy(s, status_json, status_len);
        s[status_len] = '\0';
    }
    if (m != NULL) {
        memcpy(m, metrics_text, metrics_len);
        m[metrics_len] = '\0';
    }
    pthread_mutex_lock(&h->mu);
    if (s != NULL) {
        char *old = h->status;
        h->status = s, h->status_len = status_len, s = old;
    }
    if (m != NULL) {
        char *old = h->metrics;
        h->metrics = m, h->metrics_len = metrics_len, m = old;
    }
    pthread_mutex_unlock(&h->mu);
    free(s);   /* the replaced copies */
    free(m);
    return 0;
}

void http_stop(struct http *h)
{
    if (h == NULL)
        return;
    if (h->mhd != NULL) {
        MHD_socket fd = MHD_quiesce_daemon(h->mhd);
        MHD_stop_daemon(h->mhd);     /* joins the polling thread */
        h->fd = fd == MHD_INVALID_SOCKET ? -1 : fd;
    }
    if (h->fd >= 0)
        close(h->fd);
    pthread_mutex_destroy(&h->mu);
    free(h->status);
    free(h->metrics);
    free(h);
}
