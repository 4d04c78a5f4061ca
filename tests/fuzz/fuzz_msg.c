/* tests/fuzz/fuzz_msg.c: msg_decode on arbitrary bodies, under both limit
 * sets. Whatever decodes must re-encode and decode to the same bytes: the
 * encoder accepts everything the decoder does. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size, const struct mpwalk_limits *lim)
{
    struct proto_diag d;
    struct msg *m = NULL, *back = NULL;
    uint8_t *f = NULL, *g = NULL;
    size_t n, gn;

    if (msg_decode(data, size, lim, &m, &d) != 0)
        return;
    if (msg_encode(m, &f, &n, &d) != 0 || msg_decode(f + 4, n - 4, lim, &back, &d) != 0 ||
        msg_encode(back, &g, &gn, &d) != 0 || gn != n || memcmp(f, g, n) != 0)
        abort();
    free(f);
    free(g);
    msg_free(back);
    msg_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size, &msg_limits_preauth);
    check(data, size, &msg_limits_authed);
    return 0;
}
