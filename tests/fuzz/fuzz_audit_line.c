/* tests/fuzz/fuzz_audit_line.c: the audit line parser, and the verifier on a
 * small log made of the input (fed in two pieces, so that the partial-line
 * path runs too). Every list and string the parser returns is walked. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_line.h"
#include "audit_verify.h"

static void walk(struct audit_span list)
{
    struct audit_span it;
    char out[256];
    size_t pos = 0;

    while (list.p != NULL && audit_list_next(list, &pos, &it))
        (void)audit_span_decode(it, out, sizeof(out));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *nl = memchr(p, '\n', size);
    struct audit_verify_result res;
    struct audit_verifier *v = NULL;
    struct crypto_diag d;
    struct audit_record r;
    char out[256];

    if (audit_line_parse(p, nl ? (size_t)(nl - p) : size, &r, &d) == 0) {
        walk(r.reasons);
        walk(r.signers);
        walk(r.inputs);
        walk(r.weights);
        (void)audit_span_decode(r.domain, out, sizeof(out));
        (void)audit_span_decode(r.plasmid_id, out, sizeof(out));
    }
    if (audit_verify_new(&v, NULL) != 0)
        return 0;
    if (audit_verify_feed(v, p, size / 2, &d) == 0 &&
        audit_verify_feed(v, p + size / 2, size - size / 2, &d) == 0)
        (void)audit_verify_finish(v, &res, &d);
    audit_verify_free(v);
    return 0;
}
