/* crypto/audit_line.h: one line of the hash-chained audit log: its records,
 * their exact JSON form, and a strict parser for untrusted lines.
 *
 * Chain (the prototype's rule, kept so that each side reads the other's
 * logs): one record per line, ended by one LF; `prev_hash` is the lowercase
 * hex SHA-256 of the previous line's bytes without its LF, 64 '0' for the
 * first line.
 *
 * plorad writes every record as one JSON object with Python json.dumps'
 * default layout (", " and ": " separators, non-ASCII and controls escaped
 * as \u00xx with lowercase hex), members in this fixed order, `type` first
 * and `prev_hash` last. `ts` is unix time in milliseconds; ids are 64
 * lowercase hex (adapter = SHA-256 of adapter_model.safetensors, node/peer/
 * signer = key id).
 *
 *   start      {"type": "start", "ts", "node", "version", "prev_hash"}
 *   stop       {"type": "stop", "ts", "node", "reason", "prev_hash"}
 *   peer       {"type": "peer", "ts", "peer", "addr", "event", "reason", "prev_hash"}
 *              event: "up" | "down" | "strike" | "ban"
 *   gate       {"type": "gate", "ts", "adapter", "domain", "verdict", "reasons", "prev_hash"}
 *              verdict: "accept" | "reject"; reasons: every reason, [] if none
 *   vote       {"type": "vote", "ts", "vote": {VOTE.json members, vote.h}, "prev_hash"}
 *              the signed plorad vote exactly as vote.h defines it (compact)
 *   commit     {"type": "commit", "ts", "adapter", "domain", "quorum", "signers", "prev_hash"}
 *              quorum >= 1; signers: the distinct accepting key ids, ascending
 *   merge      {"type": "merge", "ts", "output", "inputs", "weights", "rank", "tau",
 *               "frob_merged", "frob_out", "dropped_energy", "kld_bound",
 *               "certificate", "prev_hash"}
 *              output: id of the merged adapter; inputs: ids; weights: numbers,
 *              one per input; tau/kld_bound: number or null; certificate:
 *              SHA-256 hex of certificate.json
 *   checkpoint {"type": "checkpoint", "ts", "count", "head", "signer", "sig", "prev_hash"}
 *              count = lines before this one, head = SHA-256 hex of line
 *              `count` (= this line's prev_hash), sig = base64 signature by
 *              `signer` (sig.h) over audit_checkpoint_msg()
 *
 * The prototype's gate record is read too (it has no "type"):
 *   {"plasmid_id", "sha256", "domain", "passed", "reasons", "prev_hash"}
 *
 * Lines are ASCII (both writers escape everything else); a parsed line must
 * hold exactly one object whose members are exactly those of its type, in
 * that order, with no duplicate (so nobody can slip a second "prev_hash" in).
 */
#ifndef PLORA_AUDIT_LINE_H
#define PLORA_AUDIT_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto_err.h"
#include "sha256.h"

#define AUDIT_LINE_MAX (1u << 20)   /* bytes of one line without its LF */
#define AUDIT_JSON_DEPTH 8          /* nesting of arrays/objects in a line */
#define AUDIT_LIST_MAX 4096         /* items in one array member */
#define AUDIT_MEMBERS_MAX 16        /* top-level members of a record */
#define AUDIT_CKPT_MSG_MAX 256      /* bytes of a checkpoint message, NUL included */

enum audit_type {
    AUDIT_PROTO_GATE = 0,  /* the prototype's record: no "type" member */
    AUDIT_START,
    AUDIT_STOP,
    AUDIT_PEER,
    AUDIT_GATE,
    AUDIT_VOTE,
    AUDIT_COMMIT,
    AUDIT_MERGE,
    AUDIT_CHECKPOINT,
};

/* "start", "stop", ...; "prototype-gate" for AUDIT_PROTO_GATE. */
const char *audit_type_name(enum audit_type t);

/* A span of the line: for strings, the raw text between the quotes (escapes
 * NOT decoded); for arrays, objects and numbers, the whole value text. */
struct audit_span {
    const char *p;
    size_t n;
};

/* A parsed line. Spans point into the caller's line, which must outlive it.
 * Members a type does not have stay zero. */
struct audit_record {
    enum audit_type type;
    uint64_t ts;                       /* unix ms */
    uint8_t prev_hash[SHA256_LEN];
    /* ids: 64 lowercase hex, raw (checked by the parser) */
    struct audit_span node, peer, adapter, output, certificate, signer, head;
    /* free-form strings (raw JSON string contents) */
    struct audit_span version, reason, addr, event, domain, verdict, plasmid_id, sha256;
    struct audit_span reasons;         /* array of strings */
    size_t n_reasons;
    struct audit_span signers, inputs, weights;  /* arrays (hex, hex, numbers) */
    size_t n_signers, n_inputs, n_weights;
    struct audit_span vote;            /* the nested vote object, whole text */
    struct audit_span sig;             /* base64, raw */
    struct audit_span tau, frob_merged, frob_out, dropped_energy, kld_bound;  /* numbers/null */
    uint64_t quorum, rank, count;
    bool passed;                       /* prototype record */
    bool accept;                       /* gate: verdict == "accept" */
};

/* Parse one line (without its LF; need not be NUL-terminated). On failure
 * d->offset is the byte index in the line and d->msg names the member and
 * the problem. Returns 0, CRYPTO_E_AUDIT_JSON (not one well-formed ASCII
 * JSON object, or longer than AUDIT_LINE_MAX) or CRYPTO_E_AUDIT_RECORD (a
 * member missing, extra, out of order, duplicated or of the wrong form). */
int audit_line_parse(const char *line, size_t n, struct audit_record *r, struct crypto_diag *d)
    __attribute__((warn_unused_result));

/* True iff s[0..n) is exactly 64 lowercase hex digits; then, if out is not
 * NULL, it receives the 32 bytes (it is clobbered either way). */
bool audit_hex32(const char *s, size_t n, uint8_t out[SHA256_LEN]);

/* Next item of an array span (strings: raw contents; numbers: text).
 * *pos starts at 0. Returns true and sets *item while items remain. The
 * span must come from audit_line_parse (already validated). */
bool audit_list_next(struct audit_span list, size_t *pos, struct audit_span *item);

/* Decode a raw JSON string span (escapes of a validated line) into out
 * (cap bytes, NUL-terminated). Returns the decoded length, or -1 if it does
 * not fit or decodes to a NUL or non-ASCII byte (\u0000, \u00e9: such text
 * is kept raw, never turned back into bytes by this helper). */
long audit_span_decode(struct audit_span s, char *out, size_t cap);

/* Canonical checkpoint message signed by the node key, exactly (LF-ended
 * lines, no CR, decimal numbers without leading zeros):
 *   "plorad-audit-checkpoint v1\ncount=<count>\nhead=<64 hex>\nts=<ts ms>\nsigner=<64 hex>\n"
 * Writes it NUL-terminated into out; returns its length without the NUL,
 * or CRYPTO_E_ARG if head or signer is not 64 lowercase hex. */
int audit_checkpoint_msg(uint64_t count, const char *head_hex, uint64_t ts_ms,
                         const char *signer_hex, char out[AUDIT_CKPT_MSG_MAX]);

/* Growable line buffer for writers. Everything appended is escaped the
 * way Python's json.dumps(ensure_ascii=True) does it. An allocation failure
 * is remembered (oom) and reported by the caller once, at the end. */
struct audit_buf {
    char *p;
    size_t n, cap;
    bool oom;
};

void audit_buf_reset(struct audit_buf *b);              /* n = 0, oom = false */
void audit_buf_free(struct audit_buf *b);               /* frees p; b reusable */
void audit_buf_raw(struct audit_buf *b, const char *s, size_t n);
/* ", " (unless first) + "\"key\": " */
void audit_buf_key(struct audit_buf *b, const char *key);
void audit_buf_str(struct audit_buf *b, const char *s, size_t n);   /* quoted, escaped */
void audit_buf_u64(struct audit_buf *b, uint64_t v);
/* %.17g (round-trips a double); NaN or infinity is written as null. */
void audit_buf_double(struct audit_buf *b, double v);

#endif
