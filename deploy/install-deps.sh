#!/usr/bin/env bash
# Installs every Debian 12 package that plorad's build, tests, fuzzers and
# benches need. Idempotent: installs only what is missing, and runs
# `apt-get update` at most once per call, only when something is missing.
set -euo pipefail

pkgs=(
  build-essential pkg-config meson ninja-build clang libclang-rt-14-dev
  libuv1-dev libssl-dev openssl libmsgpack-dev libopenblas-dev liblapacke-dev
  libjansson-dev libyaml-dev libmicrohttpd-dev libcmocka-dev
  gnuplot-nox python3 python3-numpy python3-networkx python3-scipy jq iproute2
  systemd yamllint
)

missing=()
for p in "${pkgs[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
