/* fusion/fsutil.h: file-system steps shared by fusion's writers (internal). */
#ifndef PLORA_FUSION_FSUTIL_H
#define PLORA_FUSION_FSUTIL_H

#include "fusion_err.h"

/* fsync the directory that holds `path`, so that a rename into it is durable.
 * Returns 0, FUSION_E_NOMEM, or FUSION_E_IO (diag names the path and errno). */
int fusion_fsync_dir_of(const char *path, struct fusion_diag *d);

#endif
