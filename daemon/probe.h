/* daemon/probe.h: the external probe runner of the gate (fusion/gate.h's
 * gate_probe_fn), shared by `plora gate` and plorad's jobs_gate.
 *
 * The policy's probe argv runs with "{adapter}" replaced by the adapter
 * directory (or the directory appended when no argument is "{adapter}"),
 * in its own process group, stdout sent to our stderr (our stdout may carry
 * the one JSON object of a command), descriptors above 2 closed (glibc
 * >= 2.34), signal mask and dispositions reset.
 * The child is started with posix_spawnp (no code of ours runs between fork
 * and exec, so it is safe from a libuv worker thread of a multi-threaded
 * daemon) and reaped by polling waitpid(pid) every PROBE_POLL_MS; past the
 * policy's timeout its whole process group is killed (SIGKILL) and reaped.
 */
#ifndef PLORA_PROBE_H
#define PLORA_PROBE_H

#include <stddef.h>

#include "gate.h"

#define PROBE_POLL_MS 10u   /* waitpid polling period, milliseconds */

/* SIGKILL every probe running now (its process group), for a daemon that
 * exits without waiting for its gate jobs; returns how many. */
size_t probe_kill_all(void);

/* gate_probe_fn: run probe `p` on `dir`. ctx is unused (may be NULL).
 * Always returns 0 with *out filled: ran + exit_code (128 + n for signal
 * n), ran + timed_out, or !ran with `error` naming the program and errno
 * text when it could not start. Thread-safe: the one shared state is the
 * list of running probes (probe_kill_all), under a mutex. */
int probe_run(void *ctx, const struct policy_probe *p, const char *dir,
              struct gate_probe_result *out);

#endif
