/* daemon/plora.c: the `plora` command: dispatch to one subcommand. */
#include "cli.h"

#include <string.h>

struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

/* A subcommand is listed once its implementation has landed (meson defines
 * HAVE_CMD_<file> for each daemon/cmd_<file>.c present). */
static const struct subcommand subcommands[] = {
#ifdef HAVE_CMD_KEYS
    { "keygen", cmd_keygen, "make a node key pair (PKCS#8 + SPKI PEM); print its key id" },
#endif
#ifdef HAVE_CMD_SIGN
    { "sign", cmd_sign, "sign an adapter directory; write plora.yml" },
    { "verify", cmd_verify, "check a manifest's signatures against a keyring" },
#endif
#ifdef HAVE_CMD_VOTE
    { "vote", cmd_vote, "sign a vote (accept|reject) on an adapter" },
    { "quorum", cmd_quorum, "count distinct trusted ACCEPT votes for an adapter" },
#endif
#ifdef HAVE_CMD_VERIFY_LOG
    { "verify-log", cmd_verify_log, "replay and check a hash-chained audit log" },
#endif
#ifdef HAVE_CMD_INSPECT
    { "inspect", cmd_inspect, "show a PEFT adapter's tensors, modules, scaling and norms" },
#endif
#ifdef HAVE_CMD_GATE
    { "gate", cmd_gate, "run the content gate on an adapter under a policy" },
#endif
#ifdef HAVE_CMD_MERGE
    { "merge", cmd_merge, "merge adapters (factored, trust region, rank-K) with a certificate" },
#endif
#ifdef HAVE_CMD_GRAPH
    { "graph", cmd_graph, "generate an overlay; report spectral gap and predicted rounds" },
#endif
#ifdef HAVE_CMD_SIM
    { "sim", cmd_sim, "simulate a swarm in one process (same engine as plorad)" },
#endif
#ifdef HAVE_CMD_SWARM
    { "swarm", cmd_swarm, "run a local swarm of real plorad processes" },
#endif
    { NULL, NULL, NULL },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: plora <command> [options]   (plora <command> --help for each)\n\ncommands:\n");
    for (size_t i = 0; subcommands[i].name != NULL; i++)
        fprintf(f, "  %-11s %s\n", subcommands[i].name, subcommands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; subcommands[i].name != NULL; i++)
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "plora: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
