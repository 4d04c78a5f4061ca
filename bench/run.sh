#!/usr/bin/env bash
# bench/run.sh BUILD_DIR: run every benchmark; each prints `bench=<name> ...
# ratio=<x> check=ok|...` lines with its anchor measured in the same run.
# Figures are for an otherwise idle machine: run nothing else meanwhile.
set -u
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
export PLORA_FIXTURES=${PLORA_FIXTURES:-$here/../../shared/fixtures}
export GRAPH_ANCHOR=${GRAPH_ANCHOR:-$here/graph_anchor.py}
export MERGE_ANCHOR=${MERGE_ANCHOR:-$here/merge_anchor.py}
export FRAME_ANCHOR=${FRAME_ANCHOR:-$here/frame_anchor.py}
export PLORA=${PLORA:-$build/daemon/plora}
export PLORAD=${PLORAD:-$build/daemon/plorad}
status=0
for b in bench_sig bench_audit bench_frame bench_graph bench_merge bench_sim bench_transfer; do
    exe=$build/bench/$b
    if [ ! -x "$exe" ]; then
        echo "bench=$b check=missing ($exe not built)"
        status=1
        continue
    fi
    echo "# $b"
    "$exe" || status=1
done
if [ -f "$here/bench_swarm.sh" ]; then
    echo "# bench_swarm"
    bash "$here/bench_swarm.sh" "$build" || status=1
fi
exit $status
