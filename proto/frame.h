/* proto/frame.h: length-prefixed frames and a streaming frame reader.
 *
 * A frame is a 4-byte big-endian body length followed by that many bytes of
 * body (one msgpack map, see msg.h and PROTOCOL.md). The length counts the
 * body only and must be 1..max, where max is FRAME_MAX_PREAUTH until the
 * peer has authenticated and FRAME_MAX after. The reader never sizes a buffer
 * from a peer's length: it grows only as bytes arrive, and refuses a header
 * over max as soon as the 4 bytes are in.
 */
#ifndef PLORA_FRAME_H
#define PLORA_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "proto_err.h"

#define FRAME_HEADER 4u               /* bytes of the length prefix */
#define FRAME_MAX (16u << 20)         /* body bytes; a bigger frame closes the peer */
#define FRAME_MAX_PREAUTH (8u << 10)  /* body bytes before HELLO_ACK is verified */

/* Size of the frame at the start of p[0..n) whose body may be at most `max`
 * bytes. Returns FRAME_HEADER + body length (> 0) when the whole frame is in
 * p, PROTO_E_NEED_MORE when it is not yet, PROTO_E_FRAME_LEN (d says the
 * length seen) when the length is 0 or over max. */
ptrdiff_t frame_peek(const uint8_t *p, size_t n, size_t max, struct proto_diag *d);

/* Write the 4-byte big-endian prefix of a body of `len` bytes.
 * Returns 0, or PROTO_E_ARG when len is 0 or over FRAME_MAX. */
int frame_put_header(uint8_t out[FRAME_HEADER], size_t len);

struct frame_reader;  /* opaque */

/* New reader accepting bodies of at most `max` bytes (1..FRAME_MAX).
 * Returns 0 (*out is the caller's, free with frame_reader_free),
 * PROTO_E_ARG or PROTO_E_NOMEM. */
int frame_reader_new(struct frame_reader **out, size_t max);

/* Free a reader and every frame it handed out; NULL is fine. */
void frame_reader_free(struct frame_reader *r);

/* Change the body cap (after authentication: FRAME_MAX). Applies to frames
 * not yet returned. Returns 0 or PROTO_E_ARG (max 0 or over FRAME_MAX). */
int frame_reader_set_max(struct frame_reader *r, size_t max);

/* Append n received bytes (copied). Returns 0, PROTO_E_NOMEM, or
 * PROTO_E_FRAME_LEN once frame_reader_next has refused a length (sticky:
 * the connection must close). Lengths are judged by frame_reader_next, with
 * the cap in force then. The buffer holds what was fed: a driver that stops
 * calling frame_reader_next should stop reading its socket too. */
int frame_reader_feed(struct frame_reader *r, const uint8_t *p, size_t n,
                      struct proto_diag *d);

/* Zero-copy receive: room for at least `want` (> 0) bytes at the tail of the
 * buffer. On 0, *p / *avail describe it; read into it, then call
 * frame_reader_commit with the count read. Returns 0, PROTO_E_ARG or
 * PROTO_E_NOMEM. */
int frame_reader_space(struct frame_reader *r, size_t want, uint8_t **p, size_t *avail);

/* Account for n bytes written into the space. Returns as frame_reader_feed
 * (PROTO_E_ARG if n is more than the space handed out). */
int frame_reader_commit(struct frame_reader *r, size_t n, struct proto_diag *d);

/* Next complete frame: *body / *len give its body, valid until the next call
 * to any frame_reader_* function on r. Returns 0, PROTO_E_NEED_MORE (no
 * complete frame buffered; not an error) or PROTO_E_FRAME_LEN (the header at
 * the head declares 0 or more than the cap: judged as soon as its 4 bytes are
 * in, before any of its body; sticky). */
int frame_reader_next(struct frame_reader *r, const uint8_t **body, size_t *len,
                      struct proto_diag *d);

/* Bytes buffered and not yet returned as frames. */
size_t frame_reader_buffered(const struct frame_reader *r);

#endif
