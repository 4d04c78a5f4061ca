#!/usr/bin/env bash
# daemon_resume.sh: a 64 MiB synthetic adapter sent in 4 KiB chunks; the
# receiver is killed with SIGKILL while DATA/partial/<id> holds some but not
# all of it, restarted on the same data dir, and must resume from the bytes it
# kept (its /status shows them at once; the new process receives only the
# rest: its bytes_in and the sender's bytes_out grow by about size - offset,
# not size), then end byte-identical. The audit log torn by the kill must be
# recovered so that it verifies after a clean stop.
. "$(dirname "$0")/lib_daemon.sh"
itest_init daemon_resume

mknode A; mknode B
big="$T/big"
mkdir -p "$big"
# A valid PEFT dir (64 q_proj LoRA pairs, r 8, 16384 wide, F32): random
# mantissas under a fixed exponent, so every value is finite and no tensor
# repeats another (a resume at a wrong offset cannot produce the same bytes).
"$PY" "$(dirname "$0")/mk_adapter.py" "$big" 64 || die "could not write the synthetic adapter"
out=$("$PLORA" sign "$big" --key "$T/A/node.key" --domain synthetic 2>&1) || die "plora sign $big: $out"
id=$(sha256_of "$big/adapter_model.safetensors")
size=$(stat -c %s "$big/adapter_model.safetensors")
info "synthetic adapter $id: $size bytes"

mkconfig A gossip.chunk_size=4096 gossip.round_ms=500 gossip.write_queue_bytes=1048576 "node.publish=[\"$big\"]"
mkconfig B gossip.chunk_size=4096 gossip.round_ms=500
start_node A
wait_until 30 "A holds its published adapter" st A "ad(s, '$id').get('state') in ('held', 'committed')"
part="$T/B/data/partial/$id/adapter_model.safetensors"
# Kill B as soon as its partial holds between 1/4 and 7/8 of the file. The
# poller starts before B (a local transfer takes well under a second).
"$PY" - "$part" "$size" "$T/B/pid" "$T/B/data/adapters/$id" >"$T/kill.out" <<'PY' &
import os, signal, sys, time
path, size, pidfile, whole = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
deadline = time.time() + 40
pid = None
while time.time() < deadline:
    if pid is None:
        try:
            pid = int(open(pidfile).read())
        except (OSError, ValueError):
            time.sleep(0.001)
            continue
    try:
        n = os.stat(path).st_size
    except FileNotFoundError:
        n = 0
    if size // 4 <= n < size * 7 // 8:
        os.kill(pid, signal.SIGKILL)
        print(n)
        sys.exit(0)
    if n >= size * 7 // 8 or os.path.isdir(whole):
        print("missed: %d of %d bytes already held" % (n, size))
        sys.exit(1)
    time.sleep(0.0002)
print("no partial grew within 40 s")
sys.exit(1)
PY
poller=$!
ITEST_PIDS+=("$poller")
launch_node B --join "$(node_listen A)"
disown "$(node_pid B)"   # the poller kills it: no "Killed" notice from the shell
await_node B
wait "$poller" || die "could not catch B mid-transfer: $(cat "$T/kill.out")"
kept=$(cat "$T/kill.out")
kill9_node B
# A's bytes_out counts what it wrote to the dead connection too: read it once
# A has dropped that connection.
wait_until 20 "A drops the connection of the killed B" st A "not any(p['id'] == '$(node_id B)' for p in s['peers'])"
a_out0=$(st A "s['bytes_out']") || die "A's /status unreadable"
K=$(stat -c %s "$part" 2>/dev/null || echo 0)
info "B killed with $kept bytes seen, $K bytes in partial/ after the kill; A bytes_out so far $a_out0"
[ "$K" -gt 0 ] || die "B's partial file vanished after SIGKILL ($part)"
[ -f "$T/B/data/partial/$id/meta.json" ] || fail "B's partial/$id/meta.json missing after the kill"

start_node B --join "$(node_listen A)"
s0=$(st B "ad(s, '$id').get('stored', 0)") || fail "B's /status lacks $id right after restart: $(status B | head -c 400)"
info "B restarted: /status stored = $s0 (partial held $K)"
# It may already have pulled more; it must never show less than what it kept
# (rounded down to a chunk at most): that would be a restart from 0.
[ "$s0" -ge $((K - 1048576)) ] || fail "B restarted with stored = $s0 < the kept offset $K: not resumed"
wait_until 40 "B holds $id after resuming" st B "ad(s, '$id').get('state') in ('held', 'committed')"
b_in=$(st B "s['bytes_in']"); a_out1=$(st A "s['bytes_out']")
info "after restart: B bytes_in $b_in, A bytes_out grew by $((a_out1 - a_out0)); a transfer from 0 would be >= $size"
# What the rest costs: size - K bytes of data plus frame headers (~60 bytes
# per 4 KiB chunk): allow 5% + 1 MiB; a restart from 0 would need >= size.
rest=$((size - K)); cap=$((rest + rest / 20 + 1048576))
[ "$b_in" -le "$cap" ] || fail "restarted B received $b_in bytes, more than the $rest left after offset $K (+ overhead = $cap): not a resume"
# A's bytes_out is not a reliable witness: when B's dial and A's dial cross,
# B may WANT on the connection the duplicate rule then closes, and what A had
# written into it (up to the socket buffers: tens of MB on loopback) counts
# as sent but is never read. Print it; judge by what B read.
[ $((a_out1 - a_out0)) -le $((cap + 1048576)) ] ||
  info "NOTE: A's bytes_out grew by $((a_out1 - a_out0)) while B read $b_in in all (stream on a closed duplicate connection)"
cmp -s "$big/adapter_model.safetensors" "$T/B/data/adapters/$id/adapter_model.safetensors" || fail "B's copy differs from the source"
[ "$(sha256_of "$T/B/data/adapters/$id/adapter_model.safetensors")" = "$id" ] || fail "B's copy does not hash to its id"
[ -e "$T/B/data/partial/$id" ] && fail "partial/$id still present after the adapter became whole"
stop_node B; stop_node A
verify_log A; verify_log B
itest_end
