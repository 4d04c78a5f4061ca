/* tests/fuzz/fuzz_manifest.c: plora.yml parser (libyaml + field rules). A
 * manifest that parses must emit, and its emitted text must parse back and
 * emit the same bytes (the writer is deterministic and round-trips). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct manifest *m = NULL, *back = NULL;
    struct fusion_diag d;
    char *a = NULL, *b = NULL;
    size_t na, nb;

    if (manifest_parse(data, size, &m, &d) != 0)
        return 0;
    if (manifest_emit(m, &a, &na, &d) != 0 || manifest_parse(a, na, &back, &d) != 0 ||
        manifest_emit(back, &b, &nb, &d) != 0 || na != nb || memcmp(a, b, na) != 0)
        abort();   /* a valid manifest that does not round-trip is a writer bug */
    free(a);
    free(b);
    manifest_free(back);
    manifest_free(m);
    return 0;
}
