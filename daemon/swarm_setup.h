/* daemon/swarm_setup.h: `plora swarm`'s state and its preparation: the
 * output directory, node keys and keyring, the adapters (copied or made,
 * signed by their publishing node) and every node's node.yml; and the
 * process helpers the command shares with it. Internal to plora (the
 * command is daemon/cmd_swarm.c; measures and report: swarm_report.h).
 *
 * Output layout under DIR: .plora-swarm (marks a swarm output: such a dir
 * is never reused), keyring/node-<i>.pub, nodes/<i>/{node.key, node.pub,
 * node.yml, plorad.log, ready.json, the node's data}, publish/<name>/
 * (signed adapters), verify/ (verify-log results), report.json, plots.
 */
#ifndef PLORA_SWARM_SETUP_H
#define PLORA_SWARM_SETUP_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "swarm_report.h"

struct swarm_opts {
    long n, synthetic, quorum, round_ms;
    double timeout_s;
    unsigned long long seed;
    const char *topology, *out, *plorad;
    const char *adapters[SWARM_ADAPTERS_MAX];
    size_t n_adapters;
    bool json;
};

struct swarm_node {
    char dir[PATH_MAX], http[128], listen[128], id[65];
    pid_t pid;                 /* 0: not running / reaped */
    int exit_code;             /* -1 unknown */
};

struct swarm {
    struct swarm_opts o;
    char out[PATH_MAX], self[PATH_MAX], plorad[PATH_MAX];
    struct swarm_node *nodes;
    struct swarm_adapter ad[SWARM_ADAPTERS_MAX];
    char src[SWARM_ADAPTERS_MAX][PATH_MAX];   /* adapter source dirs ("" synthetic) */
    size_t na;
    struct swarm_track *track;
    FILE *prog;                /* progress stream */
    bool tty;
    double t_cmd, t_launch, t_ready, t_done, t_stopped, t_verified;
    bool synthetic_fallback;   /* no fixtures found: made synthetic adapters */
    bool timed_out, failed;
    const volatile sig_atomic_t *signal;   /* set by a SIGINT/SIGTERM handler */
};

/* Everything before the daemons start: DIR (refused when it exists and is
 * not empty; nothing is ever deleted), keys (Ed25519), keyring, adapters
 * (fixtures, --adapters or synthetic; each signed with `plora sign` by its
 * publisher), node.yml per node. Needs s->o, s->self, s->signal. Returns a
 * CLI exit code (2 names the flag or file). */
int swarm_setup_prepare(struct swarm *s);

/* fork + exec argv[0] with stdio fds (-1 = inherit). own_group: a new
 * process group and SIGTERM when swarm dies (PR_SET_PDEATHSIG), for the
 * daemons. Returns the pid or -1. */
pid_t swarm_setup_spawn(char *const argv[], int in, int out, int err, bool own_group);

/* Wait for pid; its exit code, 128 + signal if killed, -1 if unknown. */
int swarm_setup_wait(pid_t pid);
int swarm_setup_exit_code(int wait_status);

/* snprintf into a PATH_MAX buffer; false (and a message) when it does not fit. */
bool swarm_setup_path(char out[PATH_MAX], const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* mkdir 0755 (an existing dir is fine): CLI_OK or CLI_USAGE naming the path. */
int swarm_setup_mkdir(const char *path);

bool swarm_setup_is_file(const char *path);

#endif
