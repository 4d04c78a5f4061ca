#!/usr/bin/env bash
# The long fuzz campaign: every libFuzzer target for SECS seconds (default
# 600), two at a time, at nice 19 so it yields the shared cores to builds
# and benchmarks. Reuses run.sh, keeping scratch corpora, logs and artifacts
# in OUT_DIR, then prints one Markdown table row per target for
# docs/fuzzing.md: executions, exec/s, final cov (edges) and ft (features),
# scratch corpus size, peak RSS, result (none, or the artifact / UBSan).
# Usage: tests/fuzz/campaign.sh [SECS [BUILD_DIR [OUT_DIR]]]
#        tests/fuzz/campaign.sh --table OUT_DIR   (the table again, no fuzzing)
#   build first: make fuzz-build (or use make fuzz-campaign, which does both)
# Then grow the seed corpora with the new coverage: tests/fuzz/merge_seeds.sh OUT_DIR
# Results and how to triage a finding: docs/fuzzing.md.
set -uo pipefail

table() {
  local out=$1 log t execs rate last cov ft files rss finding res
  echo "| target | executions | exec/s | cov | ft | corpus files | peak RSS MB | finding |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|"
  for log in "$out"/fuzz_*.log; do
    t=$(basename "$log" .log)
    execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
    rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log")
    rss=$(awk '/stat::peak_rss_mb/ {print $2}' "$log")
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | awk '{print $2}')
    ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | awk '{print $2}')
    files=$(find "$out/$t" -type f | wc -l)
    finding=$(ls "$out/$t"-crash-* "$out/$t"-leak-* "$out/$t"-timeout-* "$out/$t"-oom-* 2>/dev/null | head -1)
    if [ -n "$finding" ]; then res=$(basename "$finding")
    elif grep -q 'runtime error' "$log"; then res="UBSan report"
    else res=none; fi
    echo "| $t | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | $files | ${rss:-?} | $res |"
  done
}

if [ "${1:-}" = --table ]; then table "${2:?usage: campaign.sh --table OUT_DIR}"; exit 0; fi
secs=${1:-600}; build=${2:-build-fuzz}
out=${3:-fuzz-campaign-$(date -u +%Y%m%dT%H%M%SZ)}
here=$(cd "$(dirname "$0")" && pwd)
nice -n 19 bash "$here/run.sh" "$build" "$secs" "$out"; status=$?
table "$out"
exit $status
