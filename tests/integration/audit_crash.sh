#!/usr/bin/env bash
# audit_crash.sh: a writer appending with group commit (audit_tool append)
# is killed with SIGKILL at 200 random points. After each kill every record
# it acknowledged ("ACK n hash": fdatasync'd) must still be in the log, with
# the same bytes (plora verify-log --head n:hash exits 0, or 3 for a torn
# tail), and the next writer's open must keep them and move any torn tail
# aside to <log>.torn.<k>.
set -euo pipefail
: "${PLORA:?}" "${BUILD_DIR:?}"
TOOL="$BUILD_DIR/tests/integration/audit_tool"
# 200 kills; 60 under the sanitizers (PLORA_SANITIZED=1, set by make test-asan),
# which hunt memory errors in the same paths, not rare interleavings
KILLS=${AUDIT_CRASH_KILLS:-$([ "${PLORA_SANITIZED:-0}" = 1 ] && echo 60 || echo 200)}
PACE_US=${AUDIT_CRASH_PACE_US:-100}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
log="$tmp/crash.jsonl"
RANDOM=20261123
fail=0 acked=0 hash= opened=0 planted=0 torn_seen=0 torn_moved=0 start=$SECONDS
for ((k = 1; k <= KILLS; k++)); do
  : >"$tmp/out"
  "$TOOL" append "$log" "$PACE_US" >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  # one kill in ten may land during start-up or tail recovery; the others
  # wait until the log is open, then hit the appends at a random point
  if ((RANDOM % 10 != 0)); then
    for ((w = 0; w < 400; w++)); do
      first=; read -r first _ <"$tmp/out" || true
      [ "$first" = OPEN ] && break
      sleep 0.005
    done
  fi
  sleep "0.$(printf '%03d' $((1 + RANDOM % 30)))"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -s "$tmp/err" ]; then echo "FAIL kill $k: writer error: $(cat "$tmp/err")"; fail=1; break; fi
  open=$(grep -E '^OPEN [0-9]+ [0-9]+$' "$tmp/out" | head -1 || true)
  if [ -n "$open" ]; then
    read -r _ records torn <<<"$open"
    if [ "$records" -lt "$acked" ]; then
      echo "FAIL kill $k: reopen found $records records, $acked were acknowledged"; fail=1; break
    fi
    [ "$torn" -gt 0 ] && torn_moved=$((torn_moved + 1))
    opened=$((opened + 1))
  fi
  last=$(grep -E '^ACK [0-9]+ [0-9a-f]{64}$' "$tmp/out" | tail -1 || true)
  [ -n "$last" ] || continue
  read -r _ n hash <<<"$last"
  acked=$n
  rc=0
  "$PLORA" verify-log "$log" --head "$n:$hash" --json >"$tmp/v.json" || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
    echo "FAIL kill $k: acknowledged record $n lost or log damaged (exit $rc): $(cat "$tmp/v.json")"; fail=1; break
  fi
  [ "$rc" -eq 3 ] && torn_seen=$((torn_seen + 1))
  # SIGKILL never splits a write(2) to a regular file, so kills alone leave
  # no torn tail; every 10th round leaves one by hand, as a power cut would
  # (a prefix of a record, no LF): the next open must move exactly it aside
  if ((k % 10 == 0)); then
    cut=$((1 + RANDOM % 200))
    tail -n 1 "$log" | head -c "$cut" >>"$log"
    planted=$((planted + 1))
    rc=0; "$PLORA" verify-log "$log" --head "$n:$hash" >/dev/null || rc=$?
    [ "$rc" -eq 3 ] || { echo "FAIL kill $k: planted torn tail: verify-log exits $rc, want 3"; fail=1; break; }
  fi
done
# a last open (no appends) moves any torn tail aside; the log then verifies clean
"$TOOL" recover "$log" >"$tmp/out" || { echo "FAIL: final open"; fail=1; }
read -r _ records torn <"$tmp/out"
[ "$torn" -gt 0 ] && torn_moved=$((torn_moved + 1))
rc=0; "$PLORA" verify-log "$log" --head "$acked:$hash" >/dev/null || rc=$?
[ "$rc" -eq 0 ] || { echo "FAIL: after recovery verify-log exits $rc"; fail=1; }
sidecars=$(find "$tmp" -name 'crash.jsonl.torn.[0-9]*' | wc -l)
[ ! -e "$log.torn.partial" ] || { echo "FAIL: a partial sidecar survived an open"; fail=1; }
echo "audit_crash kills=$KILLS opened=$opened acknowledged_last=$acked log_records=$records torn_tails_seen=$torn_seen torn_planted=$planted torn_moved_aside=$torn_moved sidecars=$sidecars seconds=$((SECONDS - start))"
# a kill during recovery (sidecar written, log not yet cut) makes the next
# open copy the same bytes again: never fewer sidecars than moves, none empty
[ "$sidecars" -ge "$torn_moved" ] || { echo "FAIL: $torn_moved torn tails moved, $sidecars sidecars"; fail=1; }
[ -z "$(find "$tmp" -name 'crash.jsonl.torn.*' -empty)" ] || { echo "FAIL: an empty torn sidecar"; ls -la "$tmp"; fail=1; }
[ "$acked" -gt 0 ] || { echo "FAIL: nothing was ever acknowledged"; fail=1; }
[ "$sidecars" -ge "$planted" ] || { echo "FAIL: $planted torn tails planted, $sidecars sidecars"; fail=1; }
exit $fail
