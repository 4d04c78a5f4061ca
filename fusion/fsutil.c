/* fusion/fsutil.c: file-system steps shared by fusion's writers. */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fusion_fsync_dir_of(const char *path, struct fusion_diag *d)
{
    char *copy = strdup(path);  /* dirname() may modify its argument */
    int fd = -1, rc = 0;

    if (copy == NULL)
        return fusion_fail(d, FUSION_E_NOMEM, 0, "path");
    if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(fd) != 0)
        rc = fusion_fail(d, FUSION_E_IO, 0, "%s: cannot fsync the directory of: %s", path,
                         strerror(errno));
    if (fd >= 0)
        close(fd);
    free(copy);
    return rc;
}
