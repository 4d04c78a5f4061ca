/* daemon/http.h: the local status server (libmicrohttpd, its own thread).
 *
 *   GET /status   -> 200 application/json  (the latest status document)
 *   GET /metrics  -> 200 text/plain; version=0.0.4 (Prometheus)
 *   GET /healthz  -> 200 "ok"
 *   anything else -> 404; methods other than GET/HEAD -> 405
 *
 * The loop thread publishes fresh documents with http_publish (copied under
 * a mutex); the HTTP thread only ever serves the last published copies, so it
 * never reads node state. Bound to the configured address only (loopback by
 * default); connection limit and timeout set so that a slow client cannot
 * tie it up.
 */
#ifndef PLORA_HTTP_H
#define PLORA_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "dmn_err.h"

struct http;  /* opaque */

/* Start serving on addr "host:port" (IPv4 dotted, "localhost" = 127.0.0.1,
 * or "[v6]"; port 0 = pick a free one). At most 64 connections; a client
 * idle for 5 s is dropped. Returns 0, DMN_E_ARG (address malformed: d says why),
 * DMN_E_HTTP (bind/listen failed: d names the address and the errno text),
 * DMN_E_NOMEM. */
int http_start(struct http **out, const char *addr, struct dmn_diag *d);

/* The bound "host:port" (with the real port when 0 was asked). */
const char *http_addr(const struct http *h);

/* Replace the served documents (copied). A NULL document keeps the one
 * served now. Until the first publish /status serves "{}" and /metrics an
 * empty body. Returns 0 or DMN_E_NOMEM (the old copies stay). */
int http_publish(struct http *h, const char *status_json, size_t status_len,
                 const char *metrics_text, size_t metrics_len);

/* Stop the thread and free; NULL is fine. */
void http_stop(struct http *h);

#endif
