/* daemon/cli.h: what every `plora` subcommand shares.
 *
 * Exit codes are the command-line contract (DESIGN.md): 0 success/accepted,
 * 1 a negative verdict (rejected, tampered, not reached), 2 usage or input
 * error (the message names the file, the field and the problem), 3 torn tail
 * in verify-log. Each subcommand is `int cmd_<name>(int argc, char **argv)`
 * with argv[0] = the subcommand name, and returns one of these codes.
 */
#ifndef PLORA_CLI_H
#define PLORA_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

enum cli_exit {
    CLI_OK = 0,
    CLI_NEGATIVE = 1,
    CLI_USAGE = 2,
    CLI_TORN = 3,
};

/* Print "plora <cmd>: <message>\n" on stderr and return CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print "plora <cmd>: <message>\n" on stderr (no exit code implied). */
void cli_err(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print `obj` as one JSON object plus newline on stdout, then release it
 * (ownership is taken; NULL prints nothing). Keys keep insertion order.
 * Returns 0, or -1 if stdout could not be written. */
int cli_print_json(json_t *obj);

/* Parse a decimal integer / floating option value; on failure print a usage
 * error naming the option and return false. */
bool cli_parse_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
bool cli_parse_u64(const char *cmd, const char *opt, const char *s, unsigned long long *out);
bool cli_parse_double(const char *cmd, const char *opt, const char *s, double *out);

/* Directory holding the shared fixtures, for defaults that use them:
 * $PLORA_FIXTURES if set, else "<dir of the plora binary>/../../shared/fixtures"
 * when that exists, else "../shared/fixtures". Never NULL. */
const char *cli_fixtures_dir(void);

/* Subcommands (one per file or group of files in daemon/). */
int cmd_keygen(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_vote(int argc, char **argv);
int cmd_quorum(int argc, char **argv);
int cmd_verify_log(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_gate(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_graph(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_swarm(int argc, char **argv);

#endif
