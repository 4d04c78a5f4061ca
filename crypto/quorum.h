/* crypto/quorum.h: does an adapter hold a quorum of trusted ACCEPT votes?
 *
 * Rule (THEORY.md "Quorum under Byzantine voters"): count DISTINCT trusted
 * key ids (keyring: present and not revoked) whose votes on this adapter have
 * a valid signature and are fresh enough. A key with both an ACCEPT and a
 * REJECT vote on the adapter is equivocating: both votes are kept as
 * evidence and the key counts for neither side. A publisher's manifest
 * signature is passed in as one more vote (vote_publisher_new /
 * vote_proto_new), so it counts once if its key is trusted. Every vote that
 * does not count is listed with a reason; nothing is dropped silently.
 *
 * Age: a vote with a timestamp counts only if now - ts <= max_age_s (when
 * max_age_s > 0) and ts - now <= max_skew_s. Votes without a timestamp
 * (publisher signatures, prototype manifest signatures) are not aged. Only
 * votes that pass every check take part in equivocation (an expired REJECT
 * followed by a fresh ACCEPT is a change of mind, not evidence).
 *
 * Unlike the prototype: a quorum below 1 is a usage error (its quorum 0
 * accepted anything, malformed input included), and signers are deduplicated
 * by key id, never by key file path (its case J counted one key twice).
 *
 * The engine takes the time from the caller (policy.now) and does no I/O.
 */
#ifndef PLORA_QUORUM_H
#define PLORA_QUORUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto_err.h"
#include "vote.h"

struct keyring;

struct quorum_policy {
    unsigned quorum;      /* distinct trusted ACCEPT keys required, >= 1 */
    int64_t now;          /* unix seconds, from the caller's clock */
    int64_t max_age_s;    /* 0: no age limit; else votes older than this don't count */
    int64_t max_skew_s;   /* >= 0: how far in the future a ts may be */
};

/* Why a vote did not count. */
enum quorum_why {
    QUORUM_WHY_OTHER_ADAPTER = 1, /* the vote is about another adapter */
    QUORUM_WHY_NO_KEY,            /* PROTO vote: no keyring key verifies it */
    QUORUM_WHY_UNTRUSTED,         /* named signer not in the keyring */
    QUORUM_WHY_REVOKED,           /* signer's key is revoked */
    QUORUM_WHY_BAD_SIG,           /* signer known, signature invalid */
    QUORUM_WHY_EXPIRED,           /* older than max_age_s */
    QUORUM_WHY_FUTURE,            /* ts more than max_skew_s ahead of now */
    QUORUM_WHY_DUPLICATE,         /* same key, same verdict: counted once already */
};

const char *quorum_why_name(enum quorum_why w); /* "other_adapter", "no_key", ... */

struct quorum_ignored {
    size_t vote;                  /* index into the votes passed in */
    enum quorum_why why;
    char key_id[65];              /* "" when unknown */
};

struct quorum_equivocation {
    char key_id[65];
    size_t accept_vote;           /* index of one ACCEPT vote by this key */
    size_t reject_vote;           /* index of one REJECT vote by this key */
};

struct quorum_result {
    unsigned quorum;              /* copied from the policy */
    bool reached;                 /* accepts >= quorum */
    size_t accepts;               /* distinct trusted keys that accept */
    size_t rejects;               /* distinct trusted keys that reject */
    char (*accept_keys)[65];      /* accepts key ids, ascending */
    char (*reject_keys)[65];      /* rejects key ids, ascending */
    struct quorum_equivocation *equivocators;
    size_t n_equivocators;
    struct quorum_ignored *ignored;
    size_t n_ignored;
};

/* Count `n` votes on `adapter` (64 lowercase hex) under `p`. PROTO votes are
 * identified against `kr` (vote_identify sets their signer). The votes stay
 * the caller's (the result refers to them by index). On success *out is the
 * caller's (quorum_result_free). Returns 0 (whether or not the quorum is
 * reached: see (*out)->reached), CRYPTO_E_QUORUM_ARG (quorum < 1, negative
 * max_age_s or max_skew_s, bad adapter id, NULL keyring), CRYPTO_E_NOMEM or
 * CRYPTO_E_INTERNAL. */
int quorum_count(const struct keyring *kr, const char *adapter, struct vote *const *votes,
                 size_t n, const struct quorum_policy *p, struct quorum_result **out,
                 struct crypto_diag *d) __attribute__((warn_unused_result));

/* Free a result; NULL is fine. */
void quorum_result_free(struct quorum_result *r);

#endif
