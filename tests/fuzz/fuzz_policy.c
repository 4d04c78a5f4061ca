/* tests/fuzz/fuzz_policy.c: untrusted gate policy YAML. A policy that parses
 * must be internally consistent (quorum >= 1, size bounds ordered, probe argv
 * NULL-terminated with at least the program). */
#include <stdint.h>
#include <stdlib.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct policy *p = NULL;

    if (policy_parse(&p, (const char *)data, size, "/policy", NULL) != 0)
        return 0;
    if (p->quorum < 1 || (p->max_size_bytes != 0 && p->min_size_bytes > p->max_size_bytes))
        abort();
    if (p->has_probe && (p->probe.argc < 1 || p->probe.argv[p->probe.argc] != NULL ||
                         p->probe.timeout_ms == 0 || p->probe.n_accept < 1))
        abort();
    policy_free(p);
    return 0;
}
