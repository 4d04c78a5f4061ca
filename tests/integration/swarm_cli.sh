#!/usr/bin/env bash
# tests/integration/swarm_cli.sh: `plora swarm` end to end with real plorad
# processes: --help, bad flags (exit 2 naming the flag or path), an output
# dir it must not touch, then -n 8 on ws, er and ba (seed 1) reaching
# coverage + merge with exit 0, report.json's fields and sane values,
# coverage.png/.svg, every audit log verified, every daemon exited 0 and
# none left running; finally SIGINT in the middle of a run: exit 130, the
# daemons stopped with code 0 and a report written anyway.
set -u
PLORA=${PLORA:?PLORA must name the plora binary}
PLORAD=${PLORAD:-}
FIX=${PLORA_FIXTURES:?PLORA_FIXTURES must name the fixtures dir}
tmp=$(mktemp -d)
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# Kill any daemon a failed run left behind: the pids are in the ready files.
cleanup() {
    local f pid
    for f in "$tmp"/*/nodes/*/ready.json; do
        [ -f "$f" ] || continue
        pid=$(jq -r '.pid // empty' "$f" 2>/dev/null)
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

if [ -z "$PLORAD" ] || [ ! -x "$PLORAD" ]; then
    echo "FAIL: PLORAD must name the plorad binary (got '${PLORAD}')" >&2
    exit 1
fi
[ -d "$FIX/peft" ] || { echo "FAIL: no fixtures at $FIX/peft" >&2; exit 1; }

# 1. --help
if "$PLORA" swarm --help >"$tmp/help" && grep -q -- "--topology" "$tmp/help" &&
   grep -q "report.json" "$tmp/help"; then ok; else bad "--help"; fi

# 2. bad flags: exit 2, the message names the flag (or path)
usage_case() {   # want-in-stderr args...
    local want=$1 rc
    shift
    timeout 30 "$PLORA" swarm "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -q -- "$want" "$tmp/err"; then ok
    else bad "swarm $* -> rc=$rc, stderr: $(head -c 300 "$tmp/err")"; fi
}
usage_case "--topology" -n 4
usage_case "--topology" -n 4 --topology star
usage_case "\-n" --topology ws
usage_case "\-n" -n 0 --topology ws
usage_case "\-n" -n many --topology ws
usage_case "bogus" -n 4 --topology ws --bogus
usage_case "--quorum" -n 4 --topology ws --quorum 5 --out "$tmp/q"
usage_case "--round-ms" -n 4 --topology ws --round-ms 0 --out "$tmp/q"
usage_case "--timeout" -n 4 --topology ws --timeout -3 --out "$tmp/q"
usage_case "--seed" -n 4 --topology ws --seed x --out "$tmp/q"
usage_case "$tmp/none" -n 4 --topology ws --adapters "$tmp/none" --out "$tmp/q" --plorad "$PLORAD"
usage_case "--plorad" -n 4 --topology ws --plorad "$tmp/no-plorad" --out "$tmp/q"
usage_case "--synthetic" -n 4 --topology ws --synthetic 2 --adapters "$FIX/peft" --out "$tmp/q"
[ ! -e "$tmp/q" ] && ok || bad "a usage error created --out"

# 3. an existing non-empty dir that is not ours: exit 2, left as it was
mkdir -p "$tmp/user"
echo "precious" >"$tmp/user/data.txt"
usage_case "not empty" -n 2 --topology ws --out "$tmp/user" --plorad "$PLORAD"
if [ "$(ls -A "$tmp/user")" = "data.txt" ] && grep -q precious "$tmp/user/data.txt"; then ok
else bad "user dir was touched: $(ls -A "$tmp/user")"; fi

# 4. -n 8 on each topology
check_report() {   # topo json-file
    local topo=$1 f=$2
    jq -e --arg t "$topo" '
      .n == 8 and .topology == $t and .seed == 1 and .quorum == 2 and .round_ms == 200
      and (.adapters | length) == 3
      and all(.adapters[]; (.id | test("^[0-9a-f]{64}$")) and .bytes > 0
              and .published_by >= 0 and .published_by < 8 and (.domain | test("^[a-z0-9][a-z0-9._-]*$"))
              and .rejected == false and (.rounds_to_coverage | type) == "number")
      and ([.adapters[].published_by] | unique | length) == 3
      and (.rounds | type) == "number" and .rounds >= 0
      and (.rounds_to_done | type) == "number" and .rounds_to_done >= .rounds
      and (.coverage_by_round | length) >= 1
      and all(.coverage_by_round[]; . >= 0 and . <= 1)
      and ([.coverage_by_round as $c | range(1; $c | length) | $c[.] >= $c[. - 1]] | all)
      and .final_coverage == 1 and (.coverage_by_round | last) == 1
      and .predicted_rounds > 0 and .eccentricity_bound >= 1
      and .prediction.components == 1 and .prediction.lambda2 > 0
      and .bytes_sent > 0 and .adapter_bytes_delivered >= 7 * 1000000
      and .transfer_mb_s > 0 and .transfer_s > 0
      and .gate_verdicts.accept >= 24 and .gate_verdicts.reject == 0
      and ([.merges[].node] | unique | length) == 8
      and all(.merges[]; (.output | test("^[0-9a-f]{64}$")) and (.inputs | length) >= 1)
      and ([.merges[] | select(.base_model == "distilbert-base-uncased") | .inputs | length]
           | length == 8 and all(. == 2))
      and (.audit_logs | length) == 8
      and all(.audit_logs[]; .ok == true and .records > 0)
      and .timed_out == false and .signal == null and .done == true
      and .daemons_exit_codes == [0,0,0,0,0,0,0,0] and .daemons_exit_ok == true
      and .wall_s > 0 and .wall_s < 60 and .total_s >= .wall_s' "$f" >/dev/null
}
# all three topologies; under the sanitizers (PLORA_SANITIZED=1, make test-asan) ws alone:
# ba still runs below (--synthetic), er in daemon_swarm, and the daemon code is the same
topos="ws er ba"; [ "${PLORA_SANITIZED:-0}" = 1 ] && topos=ws
for topo in $topos; do
    out="$tmp/$topo"
    if [ "$topo" = ba ]; then   # the human summary once
        timeout 150 "$PLORA" swarm -n 8 --topology "$topo" --seed 1 --out "$out" \
            --plorad "$PLORAD" >"$tmp/$topo.txt" 2>"$tmp/$topo.err"
        rc=$?
        if [ $rc -eq 0 ] && grep -q "coverage + merge reached" "$tmp/$topo.txt" &&
           grep -q "audit logs   8 of 8 verify" "$tmp/$topo.txt"; then ok
        else bad "$topo summary rc=$rc: $(tail -c 600 "$tmp/$topo.txt") $(tail -c 600 "$tmp/$topo.err")"; fi
        cp "$out/report.json" "$tmp/$topo.json"
    else
        timeout 150 "$PLORA" swarm -n 8 --topology "$topo" --seed 1 --out "$out" \
            --plorad "$PLORAD" --json >"$tmp/$topo.json" 2>"$tmp/$topo.err"
        rc=$?
        if [ $rc -eq 0 ] && [ "$(wc -l <"$tmp/$topo.json")" -eq 1 ]; then ok
        else bad "$topo rc=$rc: $(tail -c 800 "$tmp/$topo.err")"; fi
        if jq -e -S . "$tmp/$topo.json" >"$tmp/a" && jq -S . "$out/report.json" >"$tmp/b" &&
           cmp -s "$tmp/a" "$tmp/b"; then ok; else bad "$topo: --json differs from report.json"; fi
    fi
    if check_report "$topo" "$tmp/$topo.json"; then ok
    else bad "$topo report: $(jq -c '{rounds, rounds_to_done, final_coverage, done, timed_out,
            gate_verdicts, daemons_exit_codes, audit: [.audit_logs[] | {ok, records, reason}],
            merges: [.merges[] | {node, base_model, n: (.inputs | length)}]}' "$tmp/$topo.json" 2>&1 | head -c 1500)"; fi
    if [ -s "$out/coverage.png" ] && [ -s "$out/coverage.svg" ] &&
       [ "$(head -c 4 "$out/coverage.png" | tail -c 3)" = "PNG" ] && grep -q "<svg" "$out/coverage.svg"
    then ok; else bad "$topo: coverage.png / coverage.svg missing or empty"; fi
    for i in 0 1 2 3 4 5 6 7; do   # the audit logs verify by hand as well, merges replayed
        # straight from the node's data dir (adapters/ and merged/ as plorad lays them out)
        "$PLORA" verify-log "$out/nodes/$i/audit.jsonl" --keyring "$out/keyring" \
            --store "$out/nodes/$i" --json >"$tmp/vl.json" &&
            jq -e '.ok and .merges_replayed == .merges and .merges >= 1' "$tmp/vl.json" >/dev/null ||
            bad "$topo node $i: verify-log --store on the data dir: $(cat "$tmp/vl.json")"
    done
    left=0
    for f in "$out"/nodes/*/ready.json; do
        pid=$(jq -r .pid "$f")
        kill -0 "$pid" 2>/dev/null && left=$((left + 1))
    done
    [ $left -eq 0 ] && ok || bad "$topo: $left daemons still running after swarm exited"
done

# 5. a previous swarm output is refused (exit 2), not overwritten
usage_case "previous swarm" -n 8 --topology ws --seed 1 --out "$tmp/ws" --plorad "$PLORAD"
[ -s "$tmp/ws/report.json" ] && ok || bad "previous output damaged"

# 6. synthetic adapters (deterministic from the seed) go through the same pipeline
timeout 150 "$PLORA" swarm -n 8 --topology ba --seed 3 --synthetic 2 --out "$tmp/syn" \
    --plorad "$PLORAD" --json >"$tmp/syn.json" 2>"$tmp/syn.err"
rc=$?
if [ $rc -eq 0 ] && jq -e '.done == true and (.adapters | length) == 2
      and ([.adapters[].name] == ["synthetic-0", "synthetic-1"])
      and all(.adapters[]; .base_model == "synthetic-base")
      and ([.merges[] | select(.base_model == "synthetic-base") | .inputs | length] | length == 8 and all(. == 2))
      and all(.audit_logs[]; .ok)' "$tmp/syn.json" >/dev/null &&
   "$PLORA" verify "$tmp/syn/publish/synthetic-0" --keyring "$tmp/syn/keyring" >/dev/null
then ok; else bad "synthetic rc=$rc $(tail -c 400 "$tmp/syn.err")"; fi

# 7. --timeout: exit 1, the report says timed out (16 nodes need 16 x 7 MB of
#    transfers: several seconds, never 1)
timeout 150 "$PLORA" swarm -n 16 --topology ws --seed 4 --timeout 1 \
    --out "$tmp/slow" --plorad "$PLORAD" --json >"$tmp/slow.json" 2>"$tmp/slow.err"
rc=$?
if [ $rc -eq 1 ] && grep -q "timed out" "$tmp/slow.err" &&
   jq -e '.timed_out == true and .done == false and .final_coverage < 1' "$tmp/slow/report.json" >/dev/null
then ok; else bad "timeout rc=$rc $(tail -c 400 "$tmp/slow.err")"; fi

# 8. SIGINT during a run: daemons get SIGTERM and exit 0, a report is written, exit 130
"$PLORA" swarm -n 4 --topology ws --seed 2 --out "$tmp/int" --plorad "$PLORAD" \
    --timeout 100 --json >"$tmp/int.json" 2>"$tmp/int.err" &
sp=$!
for _ in $(seq 1 1200); do   # up to 60 s (slow under sanitizers)
    [ "$(ls "$tmp"/int/nodes/*/ready.json 2>/dev/null | wc -l)" -eq 4 ] && break
    sleep 0.05
done
sleep 0.5
kill -INT $sp
wait $sp
rc=$?
if [ $rc -eq 130 ] && [ -s "$tmp/int/report.json" ] &&
   jq -e '.signal == 2 and .daemons_exit_codes == [0,0,0,0]' "$tmp/int/report.json" >/dev/null
then ok; else
    bad "SIGINT: rc=$rc $(tail -c 500 "$tmp/int.err") $(jq -c '{signal, daemons_exit_codes}' "$tmp/int/report.json")"
    tail -n 4 "$tmp"/int/nodes/*/plorad.log >&2
fi

echo "swarm_cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
