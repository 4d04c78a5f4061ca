/* daemon/node.h: one plorad node: the gossip engine (proto/gossip.h) wired
 * to real I/O (daemon/transport.h sockets, daemon/store.h files,
 * daemon/jobs.h worker-thread work, crypto/audit.h log, daemon/http.h
 * status), on one libuv loop.
 *
 * The loop thread owns everything here. Heavy work (signatures, hashing,
 * gate, merge) runs in libuv's thread pool and comes back to the loop as an
 * engine event; no callback ever re-enters gossip_step (events that arrive
 * while the node executes actions are queued and fed after).
 *
 *   struct node *n;
 *   if ((rc = node_new(&n, loop, &cfg, &d)) != 0) ...   // listening, ready file written
 *   int code = node_run(n);                              // until SIGTERM/SIGINT
 *   node_free(n);
 *
 * The read accessors below exist for status.c (daemon/status.h), which
 * builds /status on the loop thread.
 */
#ifndef PLORA_NODE_H
#define PLORA_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "dmn_err.h"
#include "metrics.h"

#define NODE_VERSION "0.1.0"
#define NODE_ADDR_MAX 256u            /* "host:port" + NUL (MSG_ADDR_MAX + 1) */
#define NODE_REASONS_MAX 17u          /* as struct jobs_gate_result */

struct node;  /* opaque */

/* Set the node up: trust (key, keyring, policy), store, audit log (start
 * record), --publish imports, engine, listener, status server, ready file,
 * --join dials, signal handlers. `c` must outlive the node. Returns 0 (*out
 * is the caller's: node_free), or: DMN_E_KEY, DMN_E_POLICY, DMN_E_PUBLISH,
 * DMN_E_CONFIG_FIELD (bad input: plorad exits 2); DMN_E_IO, DMN_E_LISTEN,
 * DMN_E_HTTP, DMN_E_STORE_LAYOUT, DMN_E_NOMEM (runtime: exits 1). d names
 * the file, address or field. */
int node_new(struct node **out, uv_loop_t *loop, const struct config *c, struct dmn_diag *d);

/* Run the loop until a graceful stop (SIGTERM, SIGINT) has finished: in-flight
 * jobs done (or abandoned after NODE_STOP_GRACE_MS: node_abandoned),
 * audit checkpoint + stop record synced, sockets closed. Returns
 * the process exit code: 0, or 1 after a runtime failure (audit write). */
int node_run(struct node *n);

/* Whether node_run returned with jobs still on libuv's worker threads
 * (they outlived the stop's grace period, STOP-ABANDON in the log): the
 * audit log is finished, but neither node_free nor uv_loop_close may run
 * while those threads use the node; the caller exits the process
 * (_exit) instead. */
bool node_abandoned(const struct node *n);

/* Free everything (after node_run, or after a failed start); NULL is fine. */
void node_free(struct node *n);

/* ---- read access for status.c (loop thread) ---- */

struct node_peer_info {              /* one authenticated connection */
    char id[65];                     /* peer key id */
    char addr[NODE_ADDR_MAX];        /* remote host:port */
    bool outbound;
};

struct node_adapter_info {
    char id[65];
    char domain[65];
    uint64_t size, stored;           /* stored: contiguous bytes held */
    const char *state;               /* "partial" | "verifying" | "held" | "committed" */
    int gate;                        /* 0 pending, 1 accept, -1 reject */
    size_t n_reasons;
    const char *reasons[NODE_REASONS_MAX];  /* "<reason_name>: <detail>" */
    uint32_t votes_accept, votes_reject;    /* distinct keys per verdict */
    int64_t received_round;          /* round it became whole here; -1: null */
    int64_t transfer_ms;             /* first byte to verified; -1: null */
};

struct node_merge_info {             /* the latest merge of one base model */
    char base_model[256];
    char output[65];
    size_t n_inputs;
    char (*inputs)[65];
    char dir[4096];
    uint64_t round;
};

struct node_view {
    const char *name, *id, *listen, *http, *state, *topology, *audit_path;
    long long pid;
    uint64_t uptime_ms, round, members, seed, merges;
    uint32_t degree;                 /* self's overlay degree */
    size_t n_neighbours;
    const uint8_t (*neighbours)[32]; /* ascending key ids */
    const struct metrics *metrics;
    uint64_t audit_records, audit_acked;
    char audit_head[65];
    uint64_t strikes, bans;
};

void node_view(const struct node *n, struct node_view *v);
size_t node_n_peers(const struct node *n);
const struct node_peer_info *node_peer(const struct node *n, size_t i);
size_t node_n_adapters(const struct node *n);
const struct node_adapter_info *node_adapter(const struct node *n, size_t i);  /* by id */
size_t node_n_merged(const struct node *n);
const struct node_merge_info *node_merged(const struct node *n, size_t i);

#endif
