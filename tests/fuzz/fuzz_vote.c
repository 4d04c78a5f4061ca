/* tests/fuzz/fuzz_vote.c: VOTE.json and attestation-line parsers. A vote
 * that parses must re-encode, parse back to the same canonical bytes (the
 * ones its signature covers), and never verify without a key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const struct vote *v)
{
    struct crypto_diag d;
    struct vote *back = NULL;
    char *json = NULL, *c1 = NULL, *c2 = NULL;
    size_t n, n1, n2;

    if (vote_encode_json(v, &json, &n, &d) != 0 || vote_parse_json(json, n, &back, &d) != 0 ||
        vote_canonical(v, &c1, &n1, &d) != 0 || vote_canonical(back, &c2, &n2, &d) != 0 ||
        n1 != n2 || memcmp(c1, c2, n1) != 0 || back->sig_len != v->sig_len ||
        memcmp(back->sig, v->sig, v->sig_len) != 0)
        abort();
    if (vote_verify(back, NULL, NULL, &d) == 0)
        abort();
    free(json);
    free(c1);
    free(c2);
    vote_free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct crypto_diag d;
    struct vote *v = NULL, **arr = NULL;
    size_t count = 0;

    if (vote_parse_json(data, size, &v, &d) == 0) {
        roundtrip(v);
        vote_free(v);
    }
    if (vote_parse_attestations(data, size, &arr, &count, &d) == 0)
        vote_free_array(arr, count);
    return 0;
}
