/* crypto/quorum.c: count distinct trusted ACCEPT keys for one adapter; see
 * quorum.h for the rule. One pass classifies each vote (counts, or why
 * not), a second folds the counted votes per key id. */
#include "quorum.h"

#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "key.h"
#include "keyring.h"

const char *quorum_why_name(enum quorum_why w)
{
    switch (w) {
    case QUORUM_WHY_OTHER_ADAPTER: return "other_adapter";
    case QUORUM_WHY_NO_KEY: return "no_key";
    case QUORUM_WHY_UNTRUSTED: return "untrusted";
    case QUORUM_WHY_REVOKED: return "revoked";
    case QUORUM_WHY_BAD_SIG: return "bad_signature";
    case QUORUM_WHY_EXPIRED: return "expired";
    case QUORUM_WHY_FUTURE: return "future";
    case QUORUM_WHY_DUPLICATE: return "duplicate";
    }
    return "?";
}

void quorum_result_free(struct quorum_result *r)
{
    if (r == NULL)
        return;
    free(r->accept_keys);
    free(r->reject_keys);
    free(r->equivocators);
    free(r->ignored);
    free(r);
}

/* One key's counted votes (first ACCEPT and first REJECT index). */
struct tally {
    const char *key;
    size_t accept, reject;   /* SIZE_MAX: none */
};

static bool is_proto(enum vote_form f)
{
    return f == VOTE_FORM_PROTO_TAGGED || f == VOTE_FORM_PROTO_BARE || f == VOTE_FORM_PROTO_ANY;
}

/* A failure of the library (not a verdict on the vote)? */
static bool hard_error(int rc)
{
    return rc == CRYPTO_E_NOMEM || rc == CRYPTO_E_INTERNAL;
}

/* 0 when the vote counts; else a quorum_why (> 0) or a hard error (< 0). */
static int classify(const struct keyring *kr, const char *adapter, struct vote *v,
                    const struct quorum_policy *p, struct crypto_diag *d)
{
    const struct key *k;
    int rc;

    if (strcmp(v->adapter, adapter) != 0)
        return QUORUM_WHY_OTHER_ADAPTER;
    if (is_proto(v->form)) {
        if ((rc = vote_identify(v, kr, d)) != 0)
            return hard_error(rc) ? rc : QUORUM_WHY_NO_KEY;
    } else {
        if ((k = keyring_get(kr, v->signer)) == NULL)
            return QUORUM_WHY_UNTRUSTED;
        if (keyring_is_revoked(kr, v->signer))
            return QUORUM_WHY_REVOKED;
        if ((rc = vote_verify(v, k, NULL, d)) != 0)
            return hard_error(rc) ? rc : QUORUM_WHY_BAD_SIG;
    }
    if (keyring_is_revoked(kr, v->signer))
        return QUORUM_WHY_REVOKED;
    if (v->ts != VOTE_TS_NONE && p->max_age_s > 0 && v->ts < p->now - p->max_age_s)
        return QUORUM_WHY_EXPIRED;
    if (v->ts != VOTE_TS_NONE && v->ts > p->now + p->max_skew_s)
        return QUORUM_WHY_FUTURE;
    return 0;
}

static int policy_check(const struct keyring *kr, const char *adapter,
                        const struct quorum_policy *p, struct crypto_diag *d)
{
    if (p == NULL || p->quorum < 1)
        return crypto_fail(d, CRYPTO_E_QUORUM_ARG, 0, "quorum must be at least 1 (got %u): a "
                           "quorum of 0 would accept any adapter", p != NULL ? p->quorum : 0);
    if (p->now < 0 || p->now > VOTE_TS_MAX || p->max_age_s < 0 || p->max_age_s > VOTE_TS_MAX ||
        p->max_skew_s < 0 || p->max_skew_s > VOTE_TS_MAX)
        return crypto_fail(d, CRYPTO_E_QUORUM_ARG, 0, "policy times out of range (now %lld, "
                           "max_age %lld, max_skew %lld)", (long long)p->now,
                           (long long)p->max_age_s, (long long)p->max_skew_s);
    if (kr == NULL || !hex_is_sha256(adapter))
        return crypto_fail(d, CRYPTO_E_QUORUM_ARG, 0, "no keyring, or adapter id not 64 hex");
    return 0;
}

static int result_alloc(struct quorum_result **out, size_t n)
{
    struct quorum_result *r = calloc(1, sizeof(*r));
    size_t m = n > 0 ? n : 1;

    *out = NULL;
    if (r == NULL)
        return CRYPTO_E_NOMEM;
    r->accept_keys = malloc(m * sizeof(*r->accept_keys));
    r->reject_keys = malloc(m * sizeof(*r->reject_keys));
    r->equivocators = malloc(m * sizeof(*r->equivocators));
    r->ignored = malloc(m * sizeof(*r->ignored));
    if (!r->accept_keys || !r->reject_keys || !r->equivocators || !r->ignored) {
        quorum_result_free(r);
        return CRYPTO_E_NOMEM;
    }
    *out = r;
    return 0;
}

static void ignore(struct quorum_result *r, size_t i, enum quorum_why why, const char *key)
{
    struct quorum_ignored *g = &r->ignored[r->n_ignored++];

    g->vote = i;
    g->why = why;
    memcpy(g->key_id, key, 65);
}

/* Record a counted vote under its key; a repeat of the same verdict is a
 * duplicate (counted once). `t` holds *nt keys so far. */
static void tally_add(struct tally *t, size_t *nt, struct quorum_result *r, size_t i,
                      const struct vote *v)
{
    size_t k = 0;
    size_t *slot;

    while (k < *nt && strcmp(t[k].key, v->signer) != 0)
        k++;
    if (k == *nt)
        t[(*nt)++] = (struct tally){ .key = v->signer, .accept = SIZE_MAX, .reject = SIZE_MAX };
    slot = v->verdict == VOTE_ACCEPT ? &t[k].accept : &t[k].reject;
    if (*slot != SIZE_MAX)
        ignore(r, i, QUORUM_WHY_DUPLICATE, v->signer);
    else
        *slot = i;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void fold(const struct tally *t, size_t nt, struct quorum_result *r)
{
    for (size_t k = 0; k < nt; k++) {
        if (t[k].accept != SIZE_MAX && t[k].reject != SIZE_MAX) {
            struct quorum_equivocation *e = &r->equivocators[r->n_equivocators++];
            memcpy(e->key_id, t[k].key, 65);
            e->accept_vote = t[k].accept;
            e->reject_vote = t[k].reject;
        } else if (t[k].accept != SIZE_MAX) {
            memcpy(r->accept_keys[r->accepts++], t[k].key, 65);
        } else {
            memcpy(r->reject_keys[r->rejects++], t[k].key, 65);
        }
    }
    qsort(r->accept_keys, r->accepts, sizeof(*r->accept_keys), cmp_key);
    qsort(r->reject_keys, r->rejects, sizeof(*r->reject_keys), cmp_key);
    r->reached = r->accepts >= r->quorum;
}

int quorum_count(const struct keyring *kr, const char *adapter, struct vote *const *votes,
                 size_t n, const struct quorum_policy *p, struct quorum_result **out,
                 struct crypto_diag *d)
{
    struct quorum_result *r = NULL;
    struct tally *t = NULL;
    size_t nt = 0;
    int rc;

    *out = NULL;
    crypto_diag_clear(d);
    if ((rc = policy_check(kr, adapter, p, d)) != 0)
        return rc;
    if ((rc = result_alloc(&r, n)) != 0 || (t = malloc((n > 0 ? n : 1) * sizeof(*t))) == NULL) {
        rc = crypto_fail(d, CRYPTO_E_NOMEM, 0, "out of memory counting %zu votes", n);
        goto out;
    }
    r->quorum = p->quorum;
    for (size_t i = 0; i < n; i++) {
        int why = classify(kr, adapter, votes[i], p, d);
        if (why < 0) {
            rc = why;
            goto out;
        }
        if (why > 0)
            ignore(r, i, (enum quorum_why)why, votes[i]->signer);
        else
            tally_add(t, &nt, r, i, votes[i]);
    }
    crypto_diag_clear(d);
    fold(t, nt, r);
    *out = r;
    r = NULL;
out:
    free(t);
    quorum_result_free(r);
    return rc;
}
