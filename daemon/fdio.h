/* daemon/fdio.h: whole reads at an offset, for the loops that read the
 * store's files in pieces (the CHUNK sender, the hash-behind thread). */
#ifndef PLORA_FDIO_H
#define PLORA_FDIO_H

#include <stddef.h>
#include <stdint.h>

/* pread exactly n bytes at off into p, retrying on EINTR and short reads.
 * Returns 0, the errno of a failed read, or EIO when the file ends first. */
int fdio_pread_full(int fd, void *p, size_t n, uint64_t off);

#endif
