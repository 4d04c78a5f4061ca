/* daemon/fdio.c: see the header. */
#include "fdio.h"

#include <errno.h>
#include <unistd.h>

int fdio_pread_full(int fd, void *p, size_t n, uint64_t off)
{
    size_t got = 0;
    ssize_t r;

    while (got < n) {
        if ((r = pread(fd, (char *)p + got, n - got, (off_t)(off + got))) < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            return EIO;
        got += (size_t)r;
    }
    return 0;
}
