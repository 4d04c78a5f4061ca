/* daemon/hashbehind.h: SHA-256 of a file that is still being written,
 * computed by a thread that follows the writer.
 *
 * The store writes a received adapter chunk by chunk on the loop thread.
 * Hashing those bytes there too put the SHA-256 (1.6 GB/s on this kind of
 * machine) in series with the socket read and the file write; a hash-behind
 * thread reads each written range back from the page cache (pread into a
 * small buffer) and hashes it on the other core, so the digest is ready
 * moments after the last byte is written.
 *
 * Protocol: hashbehind_start on an empty file; after each write that grows
 * the contiguous prefix to n bytes, hashbehind_advance(n); when no more
 * bytes come, hashbehind_close; hashbehind_finish (any thread; blocks until
 * the thread has hashed everything) gives the digest and frees the object,
 * hashbehind_cancel stops it at once and frees it. Exactly one of finish or
 * cancel per started object. advance and close may be called from one
 * thread while finish/cancel is called later from another (the caller
 * orders them: a handover through a mutex or a work queue).
 */
#ifndef PLORA_HASHBEHIND_H
#define PLORA_HASHBEHIND_H

#include <stdint.h>

#include "sha256.h"

#define HASHBEHIND_MAX 4u   /* threads at once, process-wide */

struct hashbehind;  /* opaque */

/* Open `path` read-only and start a thread hashing its bytes as they are
 * advanced. Returns NULL when HASHBEHIND_MAX threads already run, or the
 * file cannot be opened, or memory or a thread cannot be had: the caller
 * then hashes the whole file later, as without this module. */
struct hashbehind *hashbehind_start(const char *path);

/* Bytes [0, n) of the file are written and may be read; n never decreases. */
void hashbehind_advance(struct hashbehind *hb, uint64_t n);

/* No byte beyond the last advance will come: the thread may finish. */
void hashbehind_close(struct hashbehind *hb);

/* Close, wait for the thread, and free hb. Returns 0 and the digest of
 * bytes [0, n) in md when exactly n bytes were advanced and all hashed;
 * -1 otherwise (a read failed, or the byte count differs: hash the file). */
int hashbehind_finish(struct hashbehind *hb, uint64_t n, uint8_t md[SHA256_LEN]);

/* Stop the thread after its current step (at most one buffer), wait for
 * it and free hb. NULL is fine. */
void hashbehind_cancel(struct hashbehind *hb);

#endif
