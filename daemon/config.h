/* daemon/config.h: plorad's configuration: one YAML file, then flags.
 *
 * File format (every field optional unless marked; unknown keys are an
 * error naming the key and its line; relative paths are relative to the
 * config file's directory):
 *
 *   node:
 *     data: /var/lib/plorad          # data dir (store, audit.jsonl)   [required: file or --data]
 *     listen: 127.0.0.1:7400         # host:port, port 0 = any free port
 *     http: 127.0.0.1:0              # status/metrics; "" = off; port 0 = any free port
 *     key: node.key                  # PKCS#8 PEM private key          [required]
 *     keyring: keyring/              # trusted public keys (crypto/keyring.h) [required]
 *     policy: policy.yml             # gate policy (fusion/policy.h); absent = built-in default
 *     name: node-0                   # [a-z0-9][a-z0-9._-]{0,63}, logs and status only
 *     log_level: info                # error|warn|info|debug
 *     join: [10.0.0.1:7400]          # seed addresses (list or one string)
 *     publish: [/path/adapter-dir]   # PEFT dirs imported into the store at start
 *     publish_domain: general        # domain of published adapters without plora.yml
 *     ready_file: ""                 # once serving, written atomically (temp + rename):
 *                                    # {"pid": N, "id": "<hex>", "listen": "h:p", "http": "h:p"}
 *   overlay:
 *     topology: ws                   # er | ws | ba
 *     seed: 1                        # shared by every node of the cluster
 *     p: 0.0                         # er edge probability; 0 = 2 ln n / n
 *     k: 4                           # ws ring degree (even)
 *     beta: 0.2                      # ws rewiring
 *     m: 2                           # ba edges per new node
 *   gossip:
 *     round_ms: 1000
 *     chunk_size: 262144             # bytes, 4096..1048576
 *     quorum: 1                      # distinct trusted ACCEPT votes to commit
 *     push: true
 *     handshake_ms: 10000
 *     idle_ms: 60000                 # no frame from an authenticated peer for this long: drop
 *     frame_ms: 30000                # a frame started but not finished within this: drop
 *     stall_ms: 30000
 *     max_peers: 256
 *     ban_strikes: 3                 # strikes before a temporary ban
 *     ban_ms: 300000
 *     write_queue_bytes: 4194304     # per-connection send queue cap (backpressure)
 *   merge:
 *     enabled: true
 *     tau_rel: 1.0                   # tau = tau_rel * G (or tau: absolute)
 *     tau: 0                         # > 0 overrides tau_rel
 *     rank: 0                        # 0 = sum of input ranks (no re-projection)
 *     kld_budget: 0                  # 0 = none
 *     weights: uniform               # uniform | fisher
 *   audit:
 *     checkpoint_every: 1000         # records between signed checkpoints
 *     group_ms: 5                    # group-commit window
 *
 * Flags (plorad --help) override the file: --data --listen --http --join
 * (repeatable) --publish (repeatable) --key --keyring --policy --log-level
 * --name --seed --topology --quorum --round-ms --ready-file.
 * --join/--publish given at least once REPLACE the file's list. Paths given
 * as flags stay as typed (relative to the working directory). policy: ""
 * means the built-in default (c->policy NULL). Booleans: true/false,
 * yes/no, on/off. A duplicate key or section is an error.
 */
#ifndef PLORA_CONFIG_H
#define PLORA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmn_err.h"

#define CONFIG_LIST_MAX 64u

enum config_topology { CONFIG_TOPO_ER, CONFIG_TOPO_WS, CONFIG_TOPO_BA };
enum config_weights { CONFIG_W_UNIFORM, CONFIG_W_FISHER };

struct config {
    /* node */
    char *path;                       /* the config file ("" if none) */
    char *data, *listen, *http, *key, *keyring, *policy, *name, *ready_file;
    char *publish_domain;
    int log_level;                    /* enum log_level (daemon/log.h) */
    size_t n_join, n_publish;
    char *join[CONFIG_LIST_MAX];
    char *publish[CONFIG_LIST_MAX];
    /* overlay */
    enum config_topology topology;
    uint64_t seed;
    double p, beta;
    uint32_t k, m;
    /* gossip */
    uint32_t round_ms, chunk_size, quorum, handshake_ms, idle_ms, frame_ms, stall_ms;
    uint32_t max_peers, ban_strikes, ban_ms;
    uint64_t write_queue_bytes;
    bool push;
    /* merge */
    bool merge_enabled;
    double tau_rel, tau, kld_budget;
    uint32_t rank;
    enum config_weights weights;
    /* audit */
    uint32_t checkpoint_every, group_ms;
};

/* Defaults as listed above (data/key/keyring unset = NULL). */
void config_defaults(struct config *c);

/* Parse YAML text (name = file name for messages, base_dir for relative
 * paths) into c (which holds defaults or earlier values). Returns 0,
 * DMN_E_CONFIG (YAML syntax: d says line/column), DMN_E_CONFIG_UNKNOWN
 * (d names section.key and line), DMN_E_CONFIG_FIELD (d names section.key,
 * line, the value and what is allowed), DMN_E_NOMEM. On an error c may
 * hold some of the file's values (config_free still frees it all). */
int config_parse(struct config *c, const char *text, size_t len, const char *name,
                 const char *base_dir, struct dmn_diag *d);

/* Read and parse a file. Also DMN_E_IO naming the path. */
int config_load(struct config *c, const char *path, struct dmn_diag *d);

/* Apply plorad's command line (argv[0] is the program) over c: --config
 * FILE is loaded first wherever it stands, then the other flags override.
 * Returns 0, 1 when --help was printed (to stdout), or a DMN_E_* code with d
 * naming the flag. */
int config_from_args(struct config *c, int argc, char **argv, struct dmn_diag *d);

/* Final checks after parse + flags (data, key, keyring present; ranges
 * consistent). Returns 0 or DMN_E_CONFIG_FIELD naming the field. */
int config_check(const struct config *c, struct dmn_diag *d);

void config_free(struct config *c);  /* frees the strings, not c itself */

const char *config_topology_name(enum config_topology t);  /* "er" "ws" "ba" */

/* Split "host:port" / "[v6]:port" into host (no brackets, cap bytes) and
 * port 0..65535, checking the host is a dotted IPv4 literal, a host name
 * (such as localhost) or an IPv6 literal in brackets. Shared by http.c and
 * httpget.c. Returns 0 or DMN_E_ARG (d says why, quoting the address). */
int config_addr_split(const char *addr, char *host, size_t cap, unsigned *port,
                      struct dmn_diag *d);

#endif
