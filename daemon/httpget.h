/* daemon/httpget.h: a small blocking HTTP/1.0 GET client, for `plora swarm`
 * and the tests that read a node's /status and /metrics. One request per
 * connection ("Connection: close"); the body is read to end of stream.
 */
#ifndef PLORA_HTTPGET_H
#define PLORA_HTTPGET_H

#include <stddef.h>

#include "dmn_err.h"

#define HTTPGET_BODY_MAX (16u << 20)   /* bytes; a bigger body is DMN_E_PEER */
#define HTTPGET_HEAD_MAX (64u << 10)   /* bytes of status line + headers */

/* GET http://<addr><path> over TCP ("host:port", IPv4 or [v6]), blocking, whole exchange bounded by
 * timeout_ms. *body is malloc'd and NUL-terminated (caller frees), *len its length, *status the HTTP
 * status code. Body capped at 16 MiB. Returns 0, DMN_E_ARG (addr), DMN_E_IO (connect/read/timeout:
 * d says which, naming the addr), DMN_E_PEER (not an HTTP/1.x response), DMN_E_NOMEM. */
int httpget(const char *addr, const char *path, int timeout_ms, char **body, size_t *len, int *status, struct dmn_diag *d);

#endif
