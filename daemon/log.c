/* daemon/log.c: one line per event on fd 2, written with a single write(2)
 * so that lines from worker threads never interleave (a pipe keeps writes of
 * up to PIPE_BUF bytes whole; LOG_LINE_MAX stays below it). */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4000u   /* bytes, newline included; <= PIPE_BUF (4096) */

static _Atomic int log_level_now = LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const char level_letters[] = { 'E', 'W', 'I', 'D' };

void log_set_level(enum log_level l)
{
    if (l >= LOG_ERROR && l <= LOG_DEBUG)
        atomic_store(&log_level_now, (int)l);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load(&log_level_now);
}

int log_level_parse(const char *s)
{
    for (int i = 0; s != NULL && i <= LOG_DEBUG; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

/* "2026-11-23T12:00:00.123Z" (24 chars) into out; returns its length. */
static size_t log_stamp(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    size_t n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(out + n, cap - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
    return n;
}

/* A line is one line: a newline or CR inside the sentence would let a
 * message forge a second event, so they become spaces. */
static void log_flatten(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\n' || s[i] == '\r')
            s[i] = ' ';
}

/* One write(2); retried only when interrupted before writing anything. */
static void log_write(const char *p, size_t n)
{
    ssize_t w;

    do
        w = write(2, p, n);
    while (w < 0 && errno == EINTR);
}

void log_msg(enum log_level l, const char *event, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    size_t n, head;
    int w;
    va_list ap;

    if ((int)l > atomic_load(&log_level_now) || l < LOG_ERROR)
        return;
    n = log_stamp(line, sizeof(line));
    n += (size_t)snprintf(line + n, sizeof(line) - n, " %c %s ", level_letters[l],
                          event != NULL ? event : "-");
    head = n;
    va_start(ap, fmt);
    w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (w < 0)
        w = 0;
    if ((size_t)w >= sizeof(line) - n) {   /* cut: end with "..." before the newline */
        n = sizeof(line) - 1;
        memcpy(line + n - 3, "...", 3);
    } else {
        n += (size_t)w;
    }
    log_flatten(line + head, n - head);
    line[n++] = '\n';
    log_write(line, n);
}

char *log_sanitize(char *out, size_t cap, const void *p, size_t n, size_t max)
{
    const unsigned char *s = p;
    size_t m = n < max ? n : max, dots = 0, i;
    int cut = n > m;

    if (cap == 0)
        return out;
    if (m > cap - 1)
        cut = 1;
    if (cut) {
        dots = cap - 1 < 3 ? cap - 1 : 3;
        if (m > cap - 1 - dots)
            m = cap - 1 - dots;
    }
    for (i = 0; i < m; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '.';
    memset(out + m, '.', dots);
    out[m + dots] = '\0';
    return out;
}

char *log_short_id(char out[9], const char *hex)
{
    size_t n = hex != NULL ? strlen(hex) : 0;

    if (n <= 8) {
        log_sanitize(out, 9, hex, n, 8);
        return out;
    }
    log_sanitize(out, 5, hex, 4, 4);
    memcpy(out + 4, "..", 2);
    log_sanitize(out + 6, 3, hex + n - 2, 2, 2);
    return out;
}
