#!/usr/bin/env bash
# The main job, for now: plorad's tools on the shared fixtures (the real
# adapters in ../shared/fixtures/peft and the prototype's artifacts in
# ../shared/fixtures/reference). Grows into `plora swarm` with the daemon.
set -euo pipefail
build=${1:-build}
plora="$build/daemon/plora"
fx=${PLORA_FIXTURES:-../shared/fixtures}
[ -d "$fx/peft" ] || { echo "demo: fixtures not found at $fx (expected ../shared beside the project)" >&2; exit 2; }
"$plora" --help
