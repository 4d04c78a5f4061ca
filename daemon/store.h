/* daemon/store.h: the content-addressed adapter store of one node.
 *
 * Layout under DATA (created on open, mode 0700):
 *   DATA/adapters/<id>/adapter_model.safetensors   whole, hashed, fsync'd
 *   DATA/adapters/<id>/adapter_config.json         as received (may be absent)
 *   DATA/adapters/<id>/plora.yml                   manifest as received (may be absent)
 *   DATA/adapters/<id>/meta.json                   {"domain": D, "size": N}
 *   DATA/partial/<id>/...                           same files, safetensors being filled
 *   DATA/merged/                                    merge outputs (daemon/jobs.c)
 * <id> is the SHA-256 of adapter_model.safetensors, 64 lowercase hex digits.
 *
 * Invariants: nothing appears under adapters/<id>/ unless its safetensors
 * hashed to <id>; a directory moves from partial/ to adapters/ by one
 * rename after its files and partial/<id>/ were fsync'd, then adapters/ is
 * fsync'd. A partial transfer survives a restart: store_open reports how
 * many contiguous bytes each partial holds (the resume offset).
 *
 * Thread use: the store object is used from the loop thread; store_verify
 * and store_import hash whole files and are meant for a worker thread
 * (uv_queue_work) -- they touch only the paths of their own id and take no
 * lock, so never run two of them on the same id at once.
 */
#ifndef PLORA_STORE_H
#define PLORA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmn_err.h"

#define STORE_ID_HEX 64u
#define STORE_DOMAIN_MAX 64u

struct store;  /* opaque */

struct store_entry {
    char id[STORE_ID_HEX + 1];
    char domain[STORE_DOMAIN_MAX + 1];
    uint64_t size;          /* adapter_model.safetensors bytes (declared, for partials) */
    uint64_t stored;        /* == size when whole; else contiguous bytes held */
    bool whole;             /* under adapters/ */
};

/* Names from peers are not paths. true iff s is 64 lowercase hex digits. */
bool store_id_ok(const char *s);
/* true iff s matches [a-z0-9][a-z0-9._-]{0,63} (domains, node names). */
bool store_name_ok(const char *s);

/* Open (creating the layout) the store under `data_dir`. Removes leftover
 * temp files of interrupted writes; a partial whose files are inconsistent is
 * discarded (reported in d->msg is not needed: it is simply gone).
 * Returns 0, DMN_E_IO (d names the path), DMN_E_STORE_LAYOUT (a name under
 * adapters/ or partial/ that is not an id), DMN_E_NOMEM. */
int store_open(struct store **out, const char *data_dir, struct dmn_diag *d);
void store_free(struct store *s);  /* NULL is fine; closes cached write fds */

/* What store_open (and store_refresh) repaired, for the node to log (the
 * store itself never logs): an adapters/<id> whose meta.json is missing or
 * invalid, whose safetensors size differs from meta.json, or that holds
 * foreign files is never served: it is moved to DATA/quarantine/<id>.<k>/
 * and noted here ("<path>: <why>; moved to <path>"). Strings are the
 * store's, valid until store_free; store_repair_msg returns NULL past the end. */
size_t store_repair_count(const struct store *s);
const char *store_repair_msg(const struct store *s, size_t i);

const char *store_dir(const struct store *s);  /* DATA */

/* Entries (whole and partial), sorted by id: *out is the caller's (free()),
 * *n its length. Returns 0 or DMN_E_NOMEM / DMN_E_IO. */
int store_list(const struct store *s, struct store_entry **out, size_t *n, struct dmn_diag *d);

/* The entry of one id. Returns 0, DMN_E_NOT_FOUND, DMN_E_NAME. */
int store_get(const struct store *s, const char *id, struct store_entry *e, struct dmn_diag *d);

/* Path of adapters/<id> (whole) into buf. Returns 0, DMN_E_NAME, DMN_E_ARG (cap). */
int store_adapter_dir(const struct store *s, const char *id, char *buf, size_t cap);

/* Start (or continue) a transfer: create partial/<id>/ with meta.json
 * (domain, size) and the config / manifest bytes (either may be len 0 =
 * absent). Idempotent for the same (id, domain, size); a different size or
 * domain for a partial restarts it from 0. Returns 0, DMN_E_NAME (id or
 * domain), DMN_E_RANGE (size 0 or over 1 TiB; config or manifest over the
 * 256 KiB of store_read_meta), DMN_E_EXISTS (already whole),
 * DMN_E_IO, DMN_E_NOSPACE. */
int store_begin(struct store *s, const char *id, const char *domain, uint64_t size,
                const void *config, size_t config_len, const void *manifest,
                size_t manifest_len, struct dmn_diag *d);

/* Write `len` bytes at `off` of partial/<id>'s safetensors. Only contiguous
 * growth is accepted: off must be <= the bytes held (a rewrite of held bytes
 * is allowed and must be identical in effect); off + len <= size.
 * Returns 0, DMN_E_NOT_FOUND (no partial), DMN_E_RANGE, DMN_E_IO,
 * DMN_E_NOSPACE (the partial keeps what it had before this call). */
int store_write(struct store *s, const char *id, uint64_t off, const void *p, size_t len,
                struct dmn_diag *d);

/* Close the write fd store_write caches for partial/<id> (no-op if none);
 * call it before queueing store_verify. A later store_write reopens it. */
void store_release(struct store *s, const char *id);

/* Bytes of partial/<id> held contiguously from 0 (0 if none). */
uint64_t store_resume_offset(const struct store *s, const char *id);

/* Worker-thread safe (see above). Hash partial/<id>'s safetensors; on a
 * match fsync its files and the partial dir, rename it to adapters/<id>,
 * fsync adapters/. Returns 0, DMN_E_HASH (the partial is deleted),
 * DMN_E_RANGE (fewer bytes than its size), DMN_E_NOT_FOUND, DMN_E_IO,
 * DMN_E_NAME (id not 64 lowercase hex). If adapters/<id> already exists
 * (imported meanwhile), the partial is removed and 0 returned.
 * Call store_refresh(s, id) on the loop thread afterwards. */
int store_verify(const char *data_dir, const char *id, struct dmn_diag *d);

/* How many store_verify calls in this process took the digest computed
 * while writing (hashbehind.h) instead of reading the file again. */
uint64_t store_verify_behind_count(void);

/* Re-read the state of one id after a worker changed it. */
int store_refresh(struct store *s, const char *id, struct dmn_diag *d);

/* Delete partial/<id> (hash mismatch, abandoned). Returns 0, DMN_E_NAME or DMN_E_IO. */
int store_discard(struct store *s, const char *id, struct dmn_diag *d);

/* Worker-thread safe. Import a PEFT directory (adapter_model.safetensors,
 * adapter_config.json, optional plora.yml) as a whole adapter with the given
 * domain: copy through partial/ with the same fsync + rename discipline.
 * *id_out receives the hex id. Already stored = 0 (idempotent).
 * Returns 0, DMN_E_NAME (domain), DMN_E_IO (names the source file),
 * DMN_E_NOSPACE. */
int store_import(const char *data_dir, const char *src_dir, const char *domain,
                 char id_out[STORE_ID_HEX + 1], struct dmn_diag *d);

/* Open adapters/<id>/adapter_model.safetensors for reading (the sender's
 * zero-copy source). Returns an fd >= 0 or a negative DMN_E_* code. */
int store_open_adapter_fd(const struct store *s, const char *id, struct dmn_diag *d);

/* Read adapters/<id>/<file> ("adapter_config.json" or "plora.yml") whole into
 * a malloc'd buffer (*out, *len; absent file = NULL, 0, return 0). Capped at
 * 256 KiB (DMN_E_RANGE beyond). */
int store_read_meta(const struct store *s, const char *id, const char *file, uint8_t **out,
                    size_t *len, struct dmn_diag *d);

#endif
