/* tests/fuzz/fuzz_pem.c: untrusted key bytes through every loader that takes them:
 * SPKI PEM, private PEM (PKCS#8 / PKCS#1) and DER SPKI from a peer. A key that parses
 * must re-encode to DER that parses to the same key id. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "key.h"

/* Re-encode and re-parse; abort on any disagreement (the fuzzer reports it). */
static void check_key(const struct key *k)
{
    struct key *again = NULL;
    uint8_t *der = NULL;
    size_t n;

    if (key_public_der(k, &der, &n, NULL) != 0)
        abort();
    if (key_from_public_der(&again, der, n, "re-encoded", NULL) != 0 ||
        strcmp(key_id(again), key_id(k)) != 0)
        abort();
    key_free(again);
    free(der);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct key *k = NULL;
    struct crypto_diag d;

    if (key_from_public_pem(&k, data, size, "fuzz", &d) == 0) {
        check_key(k);
        key_free(k);
    }
    if (key_from_private_pem(&k, data, size, "fuzz", &d) == 0) {
        check_key(k);
        key_free(k);
    }
    if (key_from_public_der(&k, data, size, "fuzz", &d) == 0) {
        check_key(k);
        key_free(k);
    }
    return 0;
}
