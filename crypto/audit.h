/* crypto/audit.h: the audit log writer (one writer per file, group commit).
 *
 * Records and their exact JSON form: audit_line.h. The writer keeps the
 * chain (prev_hash = SHA-256 hex of the previous line without its LF) and
 * numbers records by line: the sequence number of a record IS its 1-based
 * line number, so `audit_head()` gives what `plora verify-log --head
 * COUNT:HASH` takes.
 *
 * Durability: appends go to a memory buffer; the buffer is written and
 * fdatasync'd (one "group commit") when it holds `group_records` records,
 * when its oldest record is `group_ms` old (checked on each append and by
 * audit_poll, which the caller drives from its own clock: the library has no
 * thread and no clock), or on demand (audit_sync). A record is
 * ACKNOWLEDGED only once the fdatasync covering it returned: audit_acked().
 * A failed write or sync is returned, and the writer then refuses every
 * append (CRYPTO_E_AUDIT_FAILED) until the log is reopened, so the chain can
 * never have a hole; unacknowledged records may or may not be in the file.
 *
 * Opening: the file is created if absent (mode 0644) and locked with
 * flock(LOCK_EX | LOCK_NB): a second writer, in this process or another,
 * gets CRYPTO_E_AUDIT_LOCKED. The tail is then recovered:
 *   - bytes after the last LF (an interrupted append: "torn tail") are
 *     copied exactly to a new sidecar "<path>.torn.<n>" (n = 1, 2, ...:
 *     written to "<path>.torn.partial", fsync'd, then link(2)ed to the first
 *     free n, so a sidecar is never partial), then the log is truncated back
 *     to its last LF and fsync'd; audit_open_info says how many bytes and
 *     where. Never kept, never dropped without a copy.
 *   - the last complete line must parse as a record and chain onto the line
 *     before it; otherwise CRYPTO_E_AUDIT_DAMAGED (d->line names it): an
 *     interrupted append cannot produce a complete bad line, so that is
 *     damage for a human (plora verify-log), never something to append to.
 */
#ifndef PLORA_AUDIT_H
#define PLORA_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit_line.h"
#include "crypto_err.h"
#include "sha256.h"

#define AUDIT_GROUP_RECORDS 256   /* default: records per group commit */
#define AUDIT_GROUP_MS 10         /* default: max ms a record waits for its fsync */

struct audit;   /* opaque */
struct key;
struct vote;

struct audit_opts {
    uint32_t group_records;  /* 0: AUDIT_GROUP_RECORDS; 1: fsync every record */
    uint32_t group_ms;       /* 0: AUDIT_GROUP_MS */
};

/* What audit_open found. */
struct audit_open_info {
    uint64_t records;              /* complete lines in the log after recovery */
    char head[SHA256_HEX_LEN + 1]; /* SHA-256 hex of the last line; 64 '0' if none */
    uint64_t torn_bytes;           /* bytes moved aside (0: none) */
    char torn_path[4096];          /* the sidecar that holds them, "" if none */
};

/* Open (create) and lock the log at `path`, recover its tail as described
 * above. `o` and `info` may be NULL. On success *out is the caller's
 * (audit_close). Returns 0, CRYPTO_E_IO (d names the path and errno text),
 * CRYPTO_E_AUDIT_LOCKED, CRYPTO_E_AUDIT_DAMAGED, CRYPTO_E_NOMEM,
 * CRYPTO_E_INTERNAL. */
int audit_open(struct audit **out, const char *path, const struct audit_opts *o,
               struct audit_open_info *info, struct crypto_diag *d);

/* Same on a descriptor the caller opened (read-write); it is taken over
 * (closed by audit_close, or on failure). `name` labels messages and is
 * the stem of torn sidecars (NULL: no sidecar can be made, a torn tail is
 * CRYPTO_E_AUDIT_DAMAGED). For tests with /dev/full or odd files. */
int audit_open_fd(struct audit **out, int fd, const char *name, const struct audit_opts *o,
                  struct audit_open_info *info, struct crypto_diag *d);

/* Write and sync what is buffered, unlock and free. Returns 0 or the code
 * of the final sync (the log is closed either way). NULL is fine. */
int audit_close(struct audit *a, struct crypto_diag *d);

/* ---- appends. Each returns 0 and sets *seq (may be NULL) to the record's
 * line number, or CRYPTO_E_AUDIT_FIELD (a value breaks the schema: d names
 * it), CRYPTO_E_AUDIT_FAILED, CRYPTO_E_IO (the group commit this append
 * triggered failed: the record is not durable and the writer is now
 * failed), CRYPTO_E_NOMEM. `ts_ms` is the record's unix time in ms; `now_ms`
 * the caller's monotonic clock in ms, used only for the group deadline.
 * Strings are NUL-terminated UTF-8 (escaped on output); ids are 64
 * lowercase hex. ---- */

int audit_append_start(struct audit *a, uint64_t ts_ms, const char *node, const char *version,
                       uint64_t now_ms, uint64_t *seq, struct crypto_diag *d);
int audit_append_stop(struct audit *a, uint64_t ts_ms, const char *node, const char *reason,
                      uint64_t now_ms, uint64_t *seq, struct crypto_diag *d);

struct audit_peer {
    const char *peer;    /* key id */
    const char *addr;    /* "host:port" as seen */
    const char *event;   /* "up", "down", "strike", "ban" */
    const char *reason;  /* "" if none */
};
int audit_append_peer(struct audit *a, uint64_t ts_ms, const struct audit_peer *p,
                      uint64_t now_ms, uint64_t *seq, struct crypto_diag *d);

struct audit_gate {
    const char *adapter;
    const char *domain;
    bool accept;
    const char *const *reasons;  /* every reason of the verdict */
    size_t n_reasons;
};
int audit_append_gate(struct audit *a, uint64_t ts_ms, const struct audit_gate *g,
                      uint64_t now_ms, uint64_t *seq, struct crypto_diag *d);

/* A signed plorad vote (VOTE_FORM_PLORAD, vote_sign'd); stored as the
 * compact VOTE.json object. The signature is not re-checked here. */
int audit_append_vote(struct audit *a, uint64_t ts_ms, const struct vote *v, uint64_t now_ms,
                      uint64_t *seq, struct crypto_diag *d);

struct audit_commit {
    const char *adapter;
    const char *domain;
    unsigned quorum;             /* >= 1 */
    const char *const *signers;  /* distinct accepting key ids (sorted on output) */
    size_t n_signers;            /* >= quorum */
};
int audit_append_commit(struct audit *a, uint64_t ts_ms, const struct audit_commit *c,
                        uint64_t now_ms, uint64_t *seq, struct crypto_diag *d);

struct audit_merge {
    const char *output;          /* id of the merged adapter */
    const char *const *inputs;   /* ids of the merged adapters */
    const double *weights;       /* one per input */
    size_t n_inputs;             /* >= 1 */
    unsigned rank;
    double tau;                  /* NaN: none (written as null) */
    double frob_merged, frob_out, dropped_energy;
    double kld_bound;            /* NaN: none */
    const char *certificate;     /* SHA-256 hex of certificate.json */
};
int audit_append_merge(struct audit *a, uint64_t ts_ms, const struct audit_merge *m,
                       uint64_t now_ms, uint64_t *seq, struct crypto_diag *d);

/* Checkpoint over everything appended so far (count = audit_head's count),
 * signed with the node's private key `k` (sig.h) over
 * audit_checkpoint_msg(). Codes: as the appends, plus those of sig_sign. */
int audit_append_checkpoint(struct audit *a, uint64_t ts_ms, const struct key *k,
                            uint64_t now_ms, uint64_t *seq, struct crypto_diag *d);

/* Group commit if the oldest buffered record is due at `now_ms`. Returns 0,
 * CRYPTO_E_IO or CRYPTO_E_AUDIT_FAILED. */
int audit_poll(struct audit *a, uint64_t now_ms, struct crypto_diag *d);

/* When audit_poll next has work (ms, caller's clock); UINT64_MAX if none. */
uint64_t audit_next_deadline_ms(const struct audit *a);

/* Write and fdatasync everything buffered now. Returns 0, CRYPTO_E_IO or
 * CRYPTO_E_AUDIT_FAILED. */
int audit_sync(struct audit *a, struct crypto_diag *d);

/* Highest sequence number that is durable (0: none yet this session, or
 * the count found on open: those lines were already on disk). */
uint64_t audit_acked(const struct audit *a);

/* Records appended (durable or not) and the SHA-256 hex of the last one's
 * line (64 '0' when empty). */
uint64_t audit_head(const struct audit *a, char hex[SHA256_HEX_LEN + 1]);

/* True after a failed write or sync. */
bool audit_failed(const struct audit *a);

#endif
