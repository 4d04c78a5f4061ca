/* crypto/audit_verify.h: replay and check an audit log (plora verify-log).
 *
 * Streaming: feed the bytes in any pieces (audit_verify_feed), then
 * audit_verify_finish; or audit_verify_file (mmap, one pass). Verification
 * stops at the FIRST bad line; later bytes are ignored. Lines are numbered
 * from 1. Checks, per line, in this order:
 *   blank_line           an empty line (nothing writes one)
 *   crlf_line_ending     the line ends in CR: the bytes are not the ones
 *                        hashed by the writer (text-mode copy); exit 1
 *   malformed_json       not one ASCII JSON object, or longer than AUDIT_LINE_MAX
 *   bad_record           members missing/extra/out of order, bad values (audit_line.h)
 *   prev_hash_mismatch   prev_hash != SHA-256 of the previous line (64 '0' for line 1)
 *   checkpoint_mismatch  a checkpoint's count/head do not name the line before it
 *   checkpoint_signer_unknown  (keyring given) its signer is not a trusted key
 *   bad_checkpoint_signature   (keyring given) its signature does not verify
 *   bad_vote             the vote object is not a valid plorad vote (vote.h)
 *   bad_vote_signature   (keyring given) a vote by a keyring key that does not verify
 *   quorum_missing       a commit not backed by `quorum` distinct accepting keys
 *                        whose vote records come earlier (keyring given: trusted
 *                        keys with valid signatures; a key that also rejected the
 *                        adapter counts for neither side), or listing a signer
 *                        without such a vote
 *   merge_uncommitted    a merge input without an earlier commit record
 *   merge_mismatch       the merge replay callback recomputed something else
 * and at the end of the input:
 *   head_mismatch        (head given) line COUNT is missing, incomplete, or its
 *                        SHA-256 is not HASH
 *   torn_tail            bytes after the last LF: an interrupted append (exit 3,
 *                        not tampering), reported only when all else verifies.
 *
 * What needs what: an edit, deletion, insertion, swap or duplication of any
 * line but the last is caught by the chain alone (at the edit or the line
 * right after). An edit of the last line that keeps it valid JSON, a deletion
 * of the last lines at a line boundary (clean truncation) and a rebuilt chain
 * ("rechained forgery") are invisible to the chain: they need a head from
 * outside the file (--head, e.g. from a checkpoint a peer holds), or, for a
 * rebuilt chain before the last signed checkpoint, a keyring (the forger
 * cannot re-sign checkpoints). An empty file verifies (0 records) unless a
 * head says otherwise.
 */
#ifndef PLORA_AUDIT_VERIFY_H
#define PLORA_AUDIT_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit_line.h"
#include "crypto_err.h"
#include "sha256.h"

#define AUDIT_VERIFY_MAX_ADAPTERS (1u << 22)  /* distinct adapters tracked */
#define AUDIT_VERIFY_MAX_VOTES (1u << 24)     /* distinct (adapter, signer) pairs */

#define AUDIT_REASONS(X) \
    X(NONE,                  "ok") \
    X(BLANK_LINE,            "blank_line") \
    X(CRLF,                  "crlf_line_ending") \
    X(MALFORMED_JSON,        "malformed_json") \
    X(BAD_RECORD,            "bad_record") \
    X(PREV_HASH,             "prev_hash_mismatch") \
    X(CHECKPOINT_MISMATCH,   "checkpoint_mismatch") \
    X(CHECKPOINT_SIGNER,     "checkpoint_signer_unknown") \
    X(CHECKPOINT_SIGNATURE,  "bad_checkpoint_signature") \
    X(BAD_VOTE,              "bad_vote") \
    X(VOTE_SIGNATURE,        "bad_vote_signature") \
    X(QUORUM_MISSING,        "quorum_missing") \
    X(MERGE_UNCOMMITTED,     "merge_uncommitted") \
    X(MERGE_MISMATCH,        "merge_mismatch") \
    X(HEAD_MISMATCH,         "head_mismatch") \
    X(TORN_TAIL,             "torn_tail")

enum audit_reason {
#define X(name, str) AUDIT_R_##name,
    AUDIT_REASONS(X)
#undef X
};

/* Stable name of a reason ("prev_hash_mismatch"...); "ok" for NONE. */
const char *audit_reason_name(enum audit_reason r);

struct keyring;
struct audit_verifier;   /* opaque */

/* Merge replay hook (the daemon plugs fusion in; crypto/ cannot see it).
 * Called for each merge record whose inputs are committed. Return 0 if the
 * recomputed merge matches, 1 if it does not (write why into why[0..cap)),
 * or a negative code if it could not run (store missing a file...), which
 * stops verification with that code (the CLI's exit 2). */
typedef int (*audit_merge_replay_fn)(void *ctx, const struct audit_record *merge, uint64_t line,
                                     char *why, size_t cap);

struct audit_verify_opts {
    const struct keyring *kr;   /* NULL: signatures not checked, all votes count */
    bool have_head;
    uint64_t head_count;        /* lines the log must at least hold */
    uint8_t head_hash[SHA256_LEN];  /* SHA-256 of line head_count (zeros if 0) */
    audit_merge_replay_fn merge_replay;  /* NULL: merges not recomputed */
    void *merge_ctx;
};

struct audit_verify_result {
    bool ok;                     /* reason == NONE */
    enum audit_reason reason;
    uint64_t first_bad_line;     /* 1-based; 0 when ok */
    uint64_t records;            /* complete lines that verified */
    uint64_t checkpoints;        /* checkpoint records seen */
    uint64_t checkpoints_verified;  /* ... whose signature verified (keyring given) */
    uint64_t votes, votes_verified, commits, merges, merges_replayed;
    bool torn_tail;              /* bytes after the last LF */
    uint64_t torn_bytes;
    bool head_checked;           /* a head was given and compared */
    char head[SHA256_HEX_LEN + 1];  /* SHA-256 hex of the last complete line */
    char detail[256];            /* what was wrong, for humans ("" when ok) */
};

/* Parse "COUNT:HASH" (decimal count, 64 lowercase hex) into opts.
 * Returns 0 or CRYPTO_E_AUDIT_HEAD (d says which part is wrong). */
int audit_verify_parse_head(const char *s, struct audit_verify_opts *o, struct crypto_diag *d);

/* New verifier; opts is copied (the keyring must outlive the verifier).
 * Returns 0 or CRYPTO_E_NOMEM; *out is the caller's. */
int audit_verify_new(struct audit_verifier **out, const struct audit_verify_opts *o);

/* Copy of the whole state (for resuming from a prefix, e.g. in tests).
 * Returns 0 or CRYPTO_E_NOMEM. */
int audit_verify_clone(struct audit_verifier **out, const struct audit_verifier *v);

/* Make `dst` (from audit_verify_new) a copy of `src`, reusing dst's memory:
 * the cheap way to verify many variants of one log from a shared prefix.
 * Both must have been made with the same options. The commit and vote
 * tables are copied only when dst first reaches a line that parses and
 * chains (most variants fail before), so `src` must stay unchanged and
 * alive while dst is fed. Returns 0 or CRYPTO_E_NOMEM (dst is then
 * unusable until copied again). */
int audit_verify_copy(struct audit_verifier *dst, const struct audit_verifier *src);

/* Feed the next `n` bytes. Returns 0 (also once a verdict is reached: see
 * audit_verify_done), CRYPTO_E_NOMEM, CRYPTO_E_INTERNAL or the code of a
 * merge replay that could not run (d says why). */
int audit_verify_feed(struct audit_verifier *v, const void *p, size_t n, struct crypto_diag *d);

/* True once a bad line was found (more input cannot change the verdict). */
bool audit_verify_done(const struct audit_verifier *v);

/* Complete lines accepted so far. */
uint64_t audit_verify_lines(const struct audit_verifier *v);

/* End of input: torn tail and head checks; fill *r. The verifier may not be
 * fed afterwards. Returns 0 or CRYPTO_E_INTERNAL. */
int audit_verify_finish(struct audit_verifier *v, struct audit_verify_result *r,
                        struct crypto_diag *d);

void audit_verify_free(struct audit_verifier *v);   /* NULL is fine */

/* Whole file at `path` (mmap'd read-only; an empty file is fine). Returns
 * 0 with *r filled (whatever the verdict), CRYPTO_E_IO (d names the path),
 * or a code of audit_verify_feed. */
int audit_verify_file(const char *path, const struct audit_verify_opts *o,
                      struct audit_verify_result *r, struct crypto_diag *d);

#endif
