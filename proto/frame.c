/* proto/frame.c: frame prefix and the streaming reader (see frame.h).
 *
 * Buffer invariant: buf[head..tail) holds received bytes not yet returned;
 * head <= tail <= cap. The reader grows by doubling only as bytes arrive, so
 * its size is bounded by what the peer really sent, never by what it
 * declared. Data moves to the front only when room is needed at the tail.
 */
#include "frame.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define READER_MIN_CAP 4096u

struct frame_reader {
    uint8_t *buf;
    size_t cap, head, tail;
    size_t max;        /* body cap */
    size_t lent;       /* bytes of tail space handed out by frame_reader_space */
    uint64_t consumed; /* stream offset of buf[head], for diagnostics */
    int broken;        /* sticky PROTO_E_FRAME_LEN once a bad header is seen */
};

ptrdiff_t frame_peek(const uint8_t *p, size_t n, size_t max, struct proto_diag *d)
{
    uint32_t len;

    if (n < FRAME_HEADER)
        return PROTO_E_NEED_MORE;
    len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (len == 0 || len > max)
        return proto_fail(d, PROTO_E_FRAME_LEN, 0, "frame length %" PRIu32 " outside 1..%zu",
                          len, max);
    if (n - FRAME_HEADER < len)   /* n - 4 can't wrap here; 4 + len can on 32-bit */
        return PROTO_E_NEED_MORE;
    return (ptrdiff_t)(FRAME_HEADER + (size_t)len);
}

int frame_put_header(uint8_t out[FRAME_HEADER], size_t len)
{
    if (len == 0 || len > FRAME_MAX)
        return PROTO_E_ARG;
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    return 0;
}

int frame_reader_new(struct frame_reader **out, size_t max)
{
    struct frame_reader *r;

    *out = NULL;
    if (max == 0 || max > FRAME_MAX)
        return PROTO_E_ARG;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return PROTO_E_NOMEM;
    r->max = max;
    *out = r;
    return 0;
}

void frame_reader_free(struct frame_reader *r)
{
    if (r == NULL)
        return;
    free(r->buf);
    free(r);
}

int frame_reader_set_max(struct frame_reader *r, size_t max)
{
    if (max == 0 || max > FRAME_MAX)
        return PROTO_E_ARG;
    r->max = max;
    return 0;
}

size_t frame_reader_buffered(const struct frame_reader *r)
{
    return r->tail - r->head;
}

/* Make room for `want` bytes at the tail: compact first, grow if needed. */
static int reserve(struct frame_reader *r, size_t want)
{
    size_t used = r->tail - r->head, cap = r->cap;
    uint8_t *nb;

    if (r->cap - r->tail >= want)
        return 0;
    if (r->head > 0) {
        memmove(r->buf, r->buf + r->head, used);
        r->head = 0;
        r->tail = used;
        if (r->cap - used >= want)
            return 0;
    }
    if (SIZE_MAX - used < want)
        return PROTO_E_NOMEM;
    if (cap < READER_MIN_CAP)
        cap = READER_MIN_CAP;
    while (cap - used < want)
        cap = cap > SIZE_MAX / 2 ? used + want : cap * 2;
    if ((nb = realloc(r->buf, cap)) == NULL)
        return PROTO_E_NOMEM;
    r->buf = nb;
    r->cap = cap;
    return 0;
}

/* Check the header of the frame at the head as soon as it is complete, so a
 * bad length closes the connection before its body is waited for. Done in
 * frame_reader_next only: a driver holding frames back (while a peer's
 * HELLO_ACK is being verified, before frame_reader_set_max raises the cap)
 * can keep feeding without the next header being judged by the old cap. */
static int check_head(struct frame_reader *r, struct proto_diag *d)
{
    ptrdiff_t got;

    if (r->broken)
        return proto_fail(d, PROTO_E_FRAME_LEN, (size_t)r->consumed,
                          "reader stopped at a bad frame length");
    if (r->tail - r->head < FRAME_HEADER)
        return 0;
    got = frame_peek(r->buf + r->head, r->tail - r->head, r->max, d);
    if (got == PROTO_E_FRAME_LEN) {
        r->broken = 1;
        if (d != NULL)
            d->offset = (size_t)r->consumed;
        return PROTO_E_FRAME_LEN;
    }
    return 0;
}

int frame_reader_feed(struct frame_reader *r, const uint8_t *p, size_t n,
                      struct proto_diag *d)
{
    int rc;

    if (r->broken || n == 0)
        return r->broken ? check_head(r, d) : 0;
    if ((rc = reserve(r, n)) != 0)
        return rc;
    memcpy(r->buf + r->tail, p, n);
    r->tail += n;
    return 0;
}

int frame_reader_space(struct frame_reader *r, size_t want, uint8_t **p, size_t *avail)
{
    int rc;

    *p = NULL;
    *avail = 0;
    if (want == 0)
        return PROTO_E_ARG;
    if ((rc = reserve(r, want)) != 0)
        return rc;
    r->lent = r->cap - r->tail;
    *p = r->buf + r->tail;
    *avail = r->lent;
    return 0;
}

int frame_reader_commit(struct frame_reader *r, size_t n, struct proto_diag *d)
{
    if (n > r->lent)
        return proto_fail(d, PROTO_E_ARG, 0, "commit of %zu bytes, %zu handed out", n, r->lent);
    r->lent = 0;
    r->tail += n;
    return r->broken ? check_head(r, d) : 0;
}

int frame_reader_next(struct frame_reader *r, const uint8_t **body, size_t *len,
                      struct proto_diag *d)
{
    ptrdiff_t got;
    int rc;

    *body = NULL;
    *len = 0;
    r->lent = 0;
    if ((rc = check_head(r, d)) != 0)
        return rc;
    if (r->tail - r->head < FRAME_HEADER)
        return PROTO_E_NEED_MORE;
    got = frame_peek(r->buf + r->head, r->tail - r->head, r->max, d);
    if (got < 0)
        return (int)got;   /* NEED_MORE: check_head ruled out FRAME_LEN */
    *body = r->buf + r->head + FRAME_HEADER;
    *len = (size_t)got - FRAME_HEADER;
    r->head += (size_t)got;
    r->consumed += (uint64_t)got;
    return 0;
}
