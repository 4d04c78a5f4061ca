#!/usr/bin/env bash
# The main job (`make demo`): a local swarm of real plorad daemons on loopback.
# `plora swarm` makes a key per node and a shared keyring, signs the three real PEFT
# adapters of ../shared/fixtures/peft (gpt2 c_attn r=8 and two distilbert r=8
# adapters on one base, from public repositories: ../shared/fixtures/README.md)
# with their publishers' keys, starts 16 plorad processes on a Watts-Strogatz
# overlay, and watches them gossip, gate, vote, commit and merge. It then
# verifies every node's audit log (merges replayed from the store) and writes
# report.json and coverage.png/.svg (coverage per round beside the spectral
# prediction) into the output directory.
set -euo pipefail
build=${1:-build}
fx=${PLORA_FIXTURES:-../shared/fixtures}
[ -d "$fx/peft" ] || { echo "demo: fixtures not found at $fx/peft (expected ../shared beside the project)" >&2; exit 2; }
export PLORA_FIXTURES=$fx
out=${DEMO_OUT:-$build/swarm-demo}
rm -rf "$out"    # the demo's own output from an earlier run
"$build/daemon/plora" swarm -n "${DEMO_N:-16}" --topology "${DEMO_TOPOLOGY:-ws}" --seed 1 \
    --plorad "$build/daemon/plorad" --out "$out"
echo
echo "report: $out/report.json   plot: $out/coverage.png   node data and logs: $out/nodes/"
