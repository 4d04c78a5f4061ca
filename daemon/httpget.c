/* daemon/httpget.c: blocking HTTP/1.0 GET with one deadline for the whole
 * exchange (connect, send, receive). Non-blocking socket + poll(2), so a
 * silent server cannot hold the caller past timeout_ms. Name resolution
 * (getaddrinfo) is the one step the deadline does not bound; addresses are
 * literals or local names in practice. */
#include "httpget.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#define RECV_STEP 16384u   /* bytes read per recv */

struct req {
    const char *addr;
    int64_t deadline_ms;   /* CLOCK_MONOTONIC */
    struct dmn_diag *d;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for `ev` on fd until the deadline. Returns 0 or DMN_E_IO. */
static int wait_fd(int fd, short ev, const struct req *r, const char *what)
{
    struct pollfd p = { fd, ev, 0 };
    int64_t left;
    int n;

    do {
        if ((left = r->deadline_ms - now_ms()) <= 0)
            return dmn_fail(r->d, DMN_E_IO, "%s: timed out %s", r->addr, what);
        n = poll(&p, 1, (int)left);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return dmn_fail(r->d, DMN_E_IO, "%s: poll while %s: %s", r->addr, what, strerror(errno));
    if (n == 0)
        return dmn_fail(r->d, DMN_E_IO, "%s: timed out %s", r->addr, what);
    return 0;
}

/* Non-blocking connect to one resolved address. Returns the fd or -1 (errno-ish text in d). */
static int dial_one(const struct addrinfo *ai, const struct req *r)
{
    int fd, err = 0;
    socklen_t el = sizeof(err);

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        dmn_fail(r->d, DMN_E_IO, "%s: socket: %s", r->addr, strerror(errno));
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        dmn_fail(r->d, DMN_E_IO, "%s: connect: %s", r->addr, strerror(errno));
    } else if (wait_fd(fd, POLLOUT, r, "connecting") == 0) {
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0)
            return fd;
        dmn_fail(r->d, DMN_E_IO, "%s: connect: %s", r->addr, strerror(err != 0 ? err : errno));
    }
    close(fd);
    return -1;
}

/* Resolve and connect. Returns 0 with *fd, DMN_E_IO. */
static int dial(const char *host, unsigned port, const struct req *r, int *fd)
{
    struct addrinfo hints, *res = NULL;
    char ps[8];
    int g;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(ps, sizeof(ps), "%u", port);
    if ((g = getaddrinfo(host, ps, &hints, &res)) != 0)
        return dmn_fail(r->d, DMN_E_IO, "%s: cannot resolve %s: %s", r->addr, host, gai_strerror(g));
    *fd = -1;
    for (const struct addrinfo *ai = res; ai != NULL && *fd < 0; ai = ai->ai_next)
        *fd = dial_one(ai, r);
    freeaddrinfo(res);
    return *fd >= 0 ? 0 : DMN_E_IO;
}

static int send_all(int fd, const char *p, size_t n, const struct req *r)
{
    ssize_t w;
    int rc;

    while (n > 0) {
        if ((rc = wait_fd(fd, POLLOUT, r, "sending the request")) != 0)
            return rc;
        w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return dmn_fail(r->d, DMN_E_IO, "%s: send: %s", r->addr, strerror(errno));
        if (w > 0)
            p += w, n -= (size_t)w;
    }
    return 0;
}

/* What the head of the response says. */
struct head {
    size_t head_len;       /* bytes up to and including the blank line */
    int status;
    bool has_len;
    unsigned long long content_len;
};

/* End of the head (just past the blank line, CRLF or bare LF), or NULL. */
static const char *head_end(const char *buf, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n')
            return buf + i + 2;
        if (i + 2 < n && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return buf + i + 3;
    }
    return NULL;
}

/* "HTTP/1.x NNN" then a space or the end of the line. */
static bool status_line_ok(const char *b, size_t n)
{
    return n >= 13 && memcmp(b, "HTTP/1.", 7) == 0 && b[7] >= '0' && b[7] <= '9' && b[8] == ' ' &&
           strspn(b + 9, "0123456789") >= 3 && (b[12] == ' ' || b[12] == '\r' || b[12] == '\n');
}

/* Status line and headers, once the blank line is in buf[0..n).
 * Returns 0 (h filled), 1 (need more bytes), DMN_E_PEER. */
static int parse_head(const char *buf, size_t n, struct head *h, const struct req *r)
{
    const char *end = head_end(buf, n), *line, *nl;

    if (end == NULL)
        return n > HTTPGET_HEAD_MAX ? dmn_fail(r->d, DMN_E_PEER, "%s: response head longer "
                                               "than %u bytes", r->addr, HTTPGET_HEAD_MAX) : 1;
    memset(h, 0, sizeof(*h));
    h->head_len = (size_t)(end - buf);
    if (!status_line_ok(buf, h->head_len))
        return dmn_fail(r->d, DMN_E_PEER, "%s: not an HTTP/1.x response (starts \"%.12s\")",
                        r->addr, buf);
    h->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    for (line = (const char *)memchr(buf, '\n', h->head_len) + 1; line < end; line = nl + 1) {
        nl = memchr(line, '\n', (size_t)(end - line));   /* found: the head ends in '\n' */
        if (strncasecmp(line, "Content-Length:", 15) == 0) {
            const char *v = line + 15 + strspn(line + 15, " \t");
            if (*v < '0' || *v > '9')
                return dmn_fail(r->d, DMN_E_PEER, "%s: Content-Length is not a number", r->addr);
            h->has_len = true;
            h->content_len = strtoull(v, NULL, 10);
        } else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0) {
            return dmn_fail(r->d, DMN_E_PEER, "%s: Transfer-Encoding in a reply to HTTP/1.0",
                            r->addr);
        }
    }
    if (h->has_len && h->content_len > HTTPGET_BODY_MAX)
        return dmn_fail(r->d, DMN_E_PEER, "%s: body of %llu bytes is over the %u-byte cap",
                        r->addr, h->content_len, HTTPGET_BODY_MAX);
    return 0;
}

/* Read until end of stream (or Content-Length reached). buf grows. */
static int recv_all(int fd, char **buf, size_t *n, struct head *h, const struct req *r)
{
    size_t cap = 0, max = HTTPGET_HEAD_MAX + HTTPGET_BODY_MAX + 1;
    int rc, have_head = 0;
    ssize_t got;

    for (;;) {
        if (cap - *n < RECV_STEP) {
            char *q = realloc(*buf, cap = *n + RECV_STEP + cap);
            if (q == NULL)
                return dmn_fail(r->d, DMN_E_NOMEM, "%s: out of memory reading the response", r->addr);
            *buf = q;
        }
        if ((rc = wait_fd(fd, POLLIN, r, "reading the response")) != 0)
            return rc;
        got = recv(fd, *buf + *n, cap - *n - 1, 0);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (got < 0)
            return dmn_fail(r->d, DMN_E_IO, "%s: recv: %s", r->addr, strerror(errno));
        *n += (size_t)got;
        if (!have_head && (rc = parse_head(*buf, *n, h, r)) < 0)
            return rc;
        have_head = have_head || rc == 0;
        if (got == 0 || (have_head && h->has_len && *n - h->head_len >= h->content_len))
            break;
        if (*n > max)
            return dmn_fail(r->d, DMN_E_PEER, "%s: body over the %u-byte cap", r->addr, HTTPGET_BODY_MAX);
    }
    if (!have_head)
        return dmn_fail(r->d, *n == 0 ? DMN_E_IO : DMN_E_PEER, "%s: connection closed %s", r->addr,
                        *n == 0 ? "before any response" : "inside the response head");
    return 0;
}

/* Body bytes out of buf into a fresh NUL-terminated copy. */
static int take_body(const char *buf, size_t n, const struct head *h, const struct req *r,
                     char **body, size_t *len)
{
    size_t bl = n - h->head_len;

    if (h->has_len && bl < h->content_len)
        return dmn_fail(r->d, DMN_E_IO, "%s: connection closed after %zu of %llu body bytes",
                        r->addr, bl, h->content_len);
    if (h->has_len)
        bl = (size_t)h->content_len;
    if (bl > HTTPGET_BODY_MAX)
        return dmn_fail(r->d, DMN_E_PEER, "%s: body over the %u-byte cap", r->addr, HTTPGET_BODY_MAX);
    if ((*body = malloc(bl + 1)) == NULL)
        return dmn_fail(r->d, DMN_E_NOMEM, "%s: out of memory", r->addr);
    memcpy(*body, buf + h->head_len, bl);
    (*body)[bl] = '\0';
    *len = bl;
    return 0;
}

static int check_args(const char *addr, const char *path, int timeout_ms, struct dmn_diag *d)
{
    if (path == NULL || path[0] != '/' || strlen(path) > 2048)
        return dmn_fail(d, DMN_E_ARG, "%s: path must start with '/' (at most 2048 bytes)",
                        addr != NULL ? addr : "");
    for (const char *p = path; *p != '\0'; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return dmn_fail(d, DMN_E_ARG, "%s: path has a space or control byte", addr);
    if (timeout_ms <= 0)
        return dmn_fail(d, DMN_E_ARG, "%s: timeout %d ms must be > 0", addr, timeout_ms);
    return 0;
}

int httpget(const char *addr, const char *path, int timeout_ms, char **body, size_t *len,
            int *status, struct dmn_diag *d)
{
    struct req r = { addr, now_ms() + timeout_ms, d };
    struct head h;
    char host[256], req[2300], *buf = NULL;
    unsigned port;
    size_t n = 0;
    int fd = -1, rc;

    *body = NULL;
    *len = 0;
    *status = 0;
    if ((rc = config_addr_split(addr, host, sizeof(host), &port, d)) != 0 ||
        (rc = check_args(addr, path, timeout_ms, d)) != 0)
        goto out;
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: plora\r\n"
             "Connection: close\r\n\r\n", path, addr);
    if ((rc = dial(host, port, &r, &fd)) != 0 ||
        (rc = send_all(fd, req, strlen(req), &r)) != 0 ||
        (rc = recv_all(fd, &buf, &n, &h, &r)) != 0 ||
        (rc = take_body(buf, n, &h, &r, body, len)) != 0)
        goto out;
    *status = h.status;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}
