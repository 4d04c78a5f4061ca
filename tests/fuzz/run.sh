#!/usr/bin/env bash
# Run every built libFuzzer target for N seconds on a scratch copy of its
# seed corpus (new inputs stay in the scratch dir). Two at a time (2 cores).
# Usage: run.sh [BUILD_DIR [SECONDS [KEEP_DIR]]]
# With KEEP_DIR the scratch corpora (KEEP_DIR/<target>/), the logs
# (KEEP_DIR/<target>.log) and any crash/leak/timeout artifact
# (KEEP_DIR/<target>-crash-*, -leak-*, -timeout-*) are kept for merging and
# triage; without it they go to a temporary dir removed on exit.
set -euo pipefail
build=${1:-build-fuzz}; secs=${2:-30}; keep=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "$keep" ]; then
  mkdir -p "$keep"; work=$(cd "$keep" && pwd)
else
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fi
# UBSan only prints by default; make every report a libFuzzer crash.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
status=0
run_one() {
  local t=$1 name; name=$(basename "$t")
  mkdir -p "$work/$name"; cp -r "$here/corpus/$name/." "$work/$name/" 2>/dev/null || true
  if "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$work/$name-" "$work/$name" >"$work/$name.log" 2>&1; then
    echo "fuzz $name: ok $(grep -E 'stat::number_of_executed_units' "$work/$name.log" | awk '{print $2}') execs, cov $(grep -oE 'cov: [0-9]+' "$work/$name.log" | tail -1)"
  else
    echo "fuzz $name: FAILED"; tail -40 "$work/$name.log"; return 1
  fi
}
pids=()
for t in "$build"/tests/fuzz/fuzz_*; do
  [[ -f $t && -x $t && $t != *_replay ]] || continue
  run_one "$t" & pids+=($!)
  if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}" || status=1; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
