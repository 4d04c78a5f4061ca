/* daemon/log.h: plorad's leveled log, one line per event on stderr.
 *
 *   2026-11-23T12:00:00.123Z W PEER-BAD-FRAME peer=3f9a..c1 PROTO_E_MSGPACK_CNT at byte 5: ...
 *
 * Level letter, a stable greppable event id, then a sentence (STYLE.md
 * section 6). Bytes from peers go through log_sanitize first. Thread-safe
 * (one write(2) per line), usable from worker threads.
 */
#ifndef PLORA_LOG_H
#define PLORA_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_set_level(enum log_level l);
enum log_level log_get_level(void);

/* "error" "warn" "info" "debug" -> level; -1 if unknown. */
int log_level_parse(const char *s);

void log_msg(enum log_level l, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(ev, ...) log_msg(LOG_ERROR, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_msg(LOG_WARN, ev, __VA_ARGS__)
#define log_info(ev, ...) log_msg(LOG_INFO, ev, __VA_ARGS__)
#define log_debug(ev, ...) log_msg(LOG_DEBUG, ev, __VA_ARGS__)

/* Copy at most `max` bytes of p into out (cap bytes, NUL-terminated),
 * replacing non-printable bytes by '.', and "..." when cut. Returns out. */
char *log_sanitize(char *out, size_t cap, const void *p, size_t n, size_t max);

/* "3f9a..c1": short form of a 64-hex id, for log lines. out: 9 bytes. */
char *log_short_id(char out[9], const char *hex);

#endif
