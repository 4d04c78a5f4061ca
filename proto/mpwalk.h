/* proto/mpwalk.h: check a msgpack object's container headers before
 * msgpack-c sees it.
 *
 * msgpack-c (Debian 4.0.0) allocates an array or map from its declared count
 * before reading a single item: the 5 bytes `dd ff ff ff ff` (array32 of
 * 2^32-1 items) make msgpack_unpack_next ask malloc for 128 GiB, a map32 of
 * 2^20 pairs for 64 MiB. mpwalk_check walks every header of one complete
 * frame body without allocating and rejects any count larger than the bytes
 * left, any length past the end, and anything over the caller's limits. After
 * it returns 0, msgpack-c needs at most max_items objects (24-48 bytes each)
 * to unpack the body, and the body is exactly one object.
 */
#ifndef PLORA_MPWALK_H
#define PLORA_MPWALK_H

#include <stddef.h>
#include <stdint.h>

#include "proto_err.h"

#define MPWALK_DEPTH_MAX 16u  /* hard ceiling on max_depth (the walker's stack) */

/* Caps on one body. Every object counts as one item (a map pair as two). */
struct mpwalk_limits {
    uint32_t max_depth;  /* containers nested in containers; 1 = a flat map */
    uint32_t max_items;  /* objects in the whole body, the root included */
    uint32_t max_str;    /* bytes in one str */
    uint32_t max_bin;    /* bytes in one bin */
};

/* Check that `p[0..n)` holds exactly one msgpack object within `lim`.
 * Returns 0 or, with d->offset at the offending header:
 *   PROTO_E_MSGPACK_CNT   array/map count larger than the bytes left
 *   PROTO_E_MSGPACK_TRUNC a header or a str/bin body runs past n
 *   PROTO_E_MSGPACK_TRAIL bytes left after the object
 *   PROTO_E_MSGPACK_DEPTH nesting deeper than lim->max_depth
 *   PROTO_E_MSGPACK_TYPE  ext types or the never-used byte 0xc1
 *   PROTO_E_LIMIT         more items than max_items, str/bin over its cap
 *   PROTO_E_ARG           NULL p with n > 0, NULL lim, max_depth over
 *                         MPWALK_DEPTH_MAX
 * Reads only; allocates nothing. */
__attribute__((warn_unused_result))
int mpwalk_check(const uint8_t *p, size_t n, const struct mpwalk_limits *lim,
                 struct proto_diag *d);

#endif
