#!/usr/bin/env bash
# daemon_stop.sh: SIGTERM while a job cannot finish soon. B's gate policy
# runs an external probe that sleeps 60 s (timeout 120 s), so B's gate of
# X is still running when B gets SIGTERM. B waits NODE_STOP_GRACE_MS (5 s)
# for it, then logs STOP-ABANDON, kills the probe's process group, finishes
# its audit log (checkpoint + stop record) and exits 0 without waiting for
# the worker thread. Checks: exit 0 within 12 s, the log lines, no probe
# left running, B's audit log verifies. Restarted with a probe that
# answers at once, B gates X again and holds it: the abandoned job was
# redone. (A merge of many large adapters on a loaded host is the real
# case: hard_churn's 64-daemon run met it.)
. "$(dirname "$0")/lib_daemon.sh"
itest_init daemon_stop

mknode A; mknode B
signed_copy gpt2-c_attn-r8 "$T/x" "$T/A/node.key" arithmetic
X=$(sha256_of "$T/x/adapter_model.safetensors")
printf '#!/bin/sh\nexec sleep 60\n' >"$T/probe_slow"
printf '#!/bin/sh\nexit 0\n' >"$T/probe_ok"
chmod +x "$T/probe_slow" "$T/probe_ok"
printf 'probe:\n  argv: [%s, "{adapter}"]\n  timeout_s: 120\n' "$T/probe_slow" >"$T/slow.yml"
printf 'probe:\n  argv: [%s, "{adapter}"]\n  timeout_s: 20\n' "$T/probe_ok" >"$T/ok.yml"
mkconfig A gossip.quorum=1 "node.publish=[\"$T/x\"]"
mkconfig B gossip.quorum=1 node.policy="$T/slow.yml"
start_node A
start_node B --join "$(node_listen A)"
probes() { pgrep -f "^sleep 60$" | while read -r p; do
  [ "$(cut -d' ' -f5 "/proc/$p/stat" 2>/dev/null)" = "$p" ] && echo "$p"; done; }
wait_until 30 "B's gate of X runs its probe" sh -c "pgrep -f '^sleep 60$' >/dev/null"
before=$(probes | wc -l)
pid=$(node_pid B)
t0=$(now_ms)
kill -TERM "$pid"
deadline=$(( t0 + 12000 ))
while kill -0 "$pid" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.05; done
if kill -0 "$pid" 2>/dev/null; then
  fail "B did not exit within 12 s of SIGTERM with a gate job stuck in its probe"
  kill -KILL "$pid"
fi
rc=0; wait "$pid" 2>/dev/null || rc=$?
ms=$(( $(now_ms) - t0 ))
info "B exited $rc, ${ms} ms after SIGTERM (grace 5000 ms)"
[ "$rc" -eq 0 ] || fail "B exited $rc after SIGTERM, want 0"
[ "$ms" -ge 4500 ] || fail "B exited after ${ms} ms: it did not wait for its running job"
grep -q "STOP-ABANDON 1 job(s) still running 5000 ms after STOPPING" "$T/B/stderr.log" ||
  fail "B's log has no STOP-ABANDON line for its one job"
grep -q "STOP-ABANDON killed 1 running gate probe(s)" "$T/B/stderr.log" ||
  fail "B's log does not say that it killed the probe"
grep -q " STOPPED reason=SIGTERM exit=0" "$T/B/stderr.log" || fail "B's log has no STOPPED line"
sleep 0.2
left=$(probes | wc -l)
info "probes running: $before before the stop, $left after"
[ "$left" -eq 0 ] || fail "B left $left probe(s) running after its exit"
verify_log B
[ "$(audit_last_kind B)" = stop ] || fail "B's audit log does not end with its stop record"

mkconfig B gossip.quorum=1 node.policy="$T/ok.yml"
start_node B --join "$(node_listen A)"
wait_until 30 "B, restarted, gates X again and holds it committed" held_committed B "$X"
stop_node B; stop_node A
verify_log A; verify_log B
itest_end
