/* tests/fuzz/fuzz_frame.c: the streaming frame reader and the decoder it
 * feeds, as a connection would drive them. Byte 0 picks the slice size the
 * bytes arrive in; the first frame is read under the pre-auth caps, the rest
 * under the authenticated ones. Every frame returned must lie inside what
 * was fed, and the reader must account for every byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Pull every complete frame; returns nonzero when the stream must close. */
static int drain(struct frame_reader *r, size_t *frames)
{
    const uint8_t *body;
    size_t len;
    int rc;

    while ((rc = frame_reader_next(r, &body, &len, NULL)) == 0) {
        struct msg *m = NULL;
        if (len == 0 || len > FRAME_MAX)
            abort();
        int dr = msg_decode(body, len, *frames == 0 ? &msg_limits_preauth : &msg_limits_authed,
                            &m, NULL);
        msg_free(m);
        if (dr != 0 && !proto_err_is_peer_fault(dr) && dr != PROTO_E_NOMEM)
            abort();
        if ((*frames)++ == 0 && frame_reader_set_max(r, FRAME_MAX) != 0)
            abort();
    }
    return rc != PROTO_E_NEED_MORE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct frame_reader *r = NULL;
    size_t slice, pos = 1, frames = 0;
    int closed = 0;

    if (size == 0 || frame_reader_new(&r, FRAME_MAX_PREAUTH) != 0)
        return 0;
    slice = 1 + data[0] % 64;
    while (pos < size) {
        size_t k = size - pos < slice ? size - pos : slice;
        if (frame_reader_feed(r, data + pos, k, NULL) != 0 || drain(r, &frames)) {
            closed = 1;
            break;
        }
        pos += k;
    }
    /* A stream still open holds at most one incomplete frame. */
    if (!closed && frame_reader_buffered(r) >= FRAME_HEADER + (frames ? FRAME_MAX : FRAME_MAX_PREAUTH))
        abort();
    frame_reader_free(r);
    return 0;
}
