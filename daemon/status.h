/* daemon/status.h: plorad's /status document (JSON), the contract that
 * `plora swarm`, the tests and operators read. Built on the loop thread by
 * node.c (status_build) at least once per round and whenever an adapter
 * changes state, then handed to the status server (http_publish).
 *
 * {
 *   "node": "node-3",                 config name ("" if none)
 *   "id": "<64 hex>",                 node key id
 *   "pid": 1234,
 *   "version": "0.1.0",
 *   "listen": "127.0.0.1:40123",      bound address
 *   "http": "127.0.0.1:40124",
 *   "uptime_ms": 5321,
 *   "round": 7,                       gossip rounds started
 *   "state": "running",               "starting" | "running" | "stopping"
 *   "members": 16,                    members known (self included)
 *   "overlay": {"topology": "ws", "seed": 1, "degree": 4, "neighbours": ["<id>", ...]},
 *   "peers": [{"id": "<hex>", "addr": "127.0.0.1:40125", "outbound": true}],
 *   "adapters": [{
 *       "id": "<hex>", "domain": "arithmetic", "size": 2957632,
 *       "stored": 2957632,            contiguous bytes held
 *       "state": "partial" | "verifying" | "held" | "committed",
 *       "gate": "pending" | "accept" | "reject",
 *       "reasons": ["tensor_norm_outlier: ..."],   gate reasons (reject)
 *       "votes_accept": 2, "votes_reject": 0,
 *       "received_round": 3,          round it became whole here (null: published here / not yet)
 *       "transfer_ms": 12             first byte to verified (null: not received)
 *   }],
 *   "merges": 2,                      merges written since start
 *   "merged": [{                      the latest merge of each base model
 *       "base_model": "distilbert-base-uncased", "output": "<hex>",
 *       "inputs": ["<hex>", ...], "dir": "DATA/merged/<hex>", "round": 9}],
 *   "bytes_in": 123, "bytes_out": 456, "frames_in": 7, "frames_out": 8,
 *   "gate_verdicts": {"accept": 3, "reject": 1, "reasons": {"tensor_norm_outlier": 1}},
 *   "audit": {"path": "DATA/audit.jsonl", "records": 41, "acked": 41, "head": "<hex>"},
 *   "strikes": 0, "bans": 0
 * }
 */
#ifndef PLORA_STATUS_H
#define PLORA_STATUS_H

#include <jansson.h>

struct node;

/* Build the document above for `n`. Returns a new reference or NULL (NOMEM). */
json_t *status_build(const struct node *n);

#endif
