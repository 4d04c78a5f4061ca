#!/usr/bin/env bash
# bench/bench_swarm.sh [BUILD_DIR]: issue 7's swarm target. For each topology
# (ws er ba) runs `plora swarm -n 32 --topology T --seed 1 --json` on the
# fixture adapters (PLORA_FIXTURES/peft, plora's default) with its output in a
# mktemp dir (removed after), and prints one line per topology:
#   bench=swarm n=32 topo=T wall_s=<s> rounds=<r> predicted=<p> mb_s=<x>
#     total_s=<s> target_s=15 ratio=<wall_s/15> check=ok|over_target|failed
# wall_s is report.json's wall_s: first daemon start to full coverage + merge
# on every node (the target: <= 15 s on one 2-core machine); total_s adds the
# shutdown and every node's verify-log. Exit 0 when every line is ok.
set -u
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
plora=${PLORA:-$build/daemon/plora}
export PLORA_FIXTURES=${PLORA_FIXTURES:-$here/../../shared/fixtures}
n=${BENCH_SWARM_N:-32}
target=15
status=0
if [ ! -x "$plora" ]; then
    echo "bench=swarm check=missing ($plora not built)"
    exit 1
fi
for topo in ws er ba; do
    out=$(mktemp -d "${TMPDIR:-/tmp}/bench_swarm.XXXXXX") || exit 1
    "$plora" swarm -n "$n" --topology "$topo" --seed 1 --out "$out/run" --json \
        >"$out/report.json" 2>"$out/stderr"
    rc=$?
    line=$(python3 - "$out/report.json" "$n" "$topo" "$target" "$rc" <<'PY'
import json, sys
path, n, topo, target, rc = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
try:
    r = json.load(open(path))
except (OSError, ValueError) as e:
    print("bench=swarm n=%s topo=%s check=failed (no report: %s)" % (n, topo, e))
    sys.exit(1)
def f(x, fmt="%.2f"):
    return "null" if x is None else fmt % x
wall = r.get("wall_s")
ok = rc == 0 and r.get("done") and not r.get("timed_out")
check = "failed" if not ok else ("ok" if wall <= target else "over_target")
print("bench=swarm n=%s topo=%s wall_s=%s rounds=%s predicted=%s mb_s=%s total_s=%s "
      "target_s=%g ratio=%s check=%s" % (n, topo, f(wall), r.get("rounds"),
      f(r.get("predicted_rounds")), f(r.get("transfer_mb_s"), "%.1f"), f(r.get("total_s")),
      target, f(wall / target if wall is not None else None, "%.3f"), check))
sys.exit(0 if check == "ok" else 1)
PY
)
    lrc=$?
    echo "$line"
    if [ $lrc -ne 0 ]; then
        status=1
        [ $rc -ne 0 ] && { echo "# plora swarm exited $rc; its stderr ends:"; tail -5 "$out/stderr" | sed 's/^/#   /'; }
    fi
    rm -rf "$out"
done
exit $status
