#!/usr/bin/env bash
# Grow the seed corpora from a campaign's scratch corpora: for each target,
# libFuzzer's -merge=1 keeps only the scratch inputs that reach code (edges)
# the seeds do not reach, and they are added to tests/fuzz/corpus/<target>/
# named by their sha256 (like the existing seeds). -use_counters=0 because
# hit-count buckets would keep hundreds of near-duplicates per target.
# Existing seeds are never removed. Prints per target the files added and
# the corpus's file count and bytes; keep each corpus small (<= 200 files,
# <= 1 MiB) so CI's replay stays fast.
# Usage: tests/fuzz/merge_seeds.sh OUT_DIR [BUILD_DIR] [TARGET...]
#   OUT_DIR as given to campaign.sh (holds OUT_DIR/<target>/)
set -euo pipefail
out=${1:?usage: merge_seeds.sh OUT_DIR [BUILD_DIR] [TARGET...]}; build=${2:-build-fuzz}
shift $(( $# >= 2 ? 2 : 1 ))
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for d in "$out"/fuzz_*/; do targets+=("$(basename "$d")"); done
fi
for t in "${targets[@]}"; do
  seeds="$here/corpus/$t"; m="$tmp/$t"
  mkdir -p "$m"; cp "$seeds"/* "$m"/
  nice -n 19 "$build/tests/fuzz/$t" -merge=1 -use_counters=0 -timeout=10 -rss_limit_mb=2048 \
    "$m" "$out/$t" >"$tmp/$t.merge.log" 2>&1 || { echo "$t: merge failed"; tail -20 "$tmp/$t.merge.log"; exit 1; }
  added=0
  for f in "$m"/*; do
    h=$(sha256sum "$f" | cut -d' ' -f1)
    if [ ! -e "$seeds/$h" ]; then cp "$f" "$seeds/$h"; added=$((added + 1)); fi
  done
  echo "$t: +$added, now $(find "$seeds" -type f | wc -l) files, $(du -sb "$seeds" | cut -f1) bytes"
done
