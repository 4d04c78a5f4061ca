#!/usr/bin/env bash
# tests/cluster/netns.sh BUILD_DIR: six plorad hosts, each in its own network
# namespace, on one Ethernet bridge; must run as root (ip netns).
#
# Layout: namespace $P-br holds bridge br0 and the veth ends v1..v6; host i
# lives in namespace $P-hi with eth0 = 10.231.X.i/24 (X from this shell's
# pid) and lo, where P = plorad-t<pid> so parallel runs never collide. The
# root namespace gets no interface, address or route: every packet of the
# test stays inside namespaces this script made. Each host has its own key
# (plora keygen), data dir and config; the keyring holds all six public keys;
# hosts 2..6 know only the seed, host 1 (--join 10.231.X.1:7400).
#
# Steps (each bounded; the whole script is cut at 115 s by a watchdog):
#   1. host 1 publishes distilbert-imdb, host 4 distilbert-emotion (signed
#      copies): all six hold and commit both and merge them (imdb + emotion).
#   2. partition: eth0 down in hosts 5 and 6; host 2 restarts (SIGTERM, exit
#      0) with --publish gpt2 (plorad imports adapters at start only): hosts
#      1-4 commit it, 5 and 6 do not get it.
#   3. heal: eth0 up again: 5 and 6 catch up (gpt2 committed and merged).
#   4. kill -9 host 3, restart it on the same data dir: it rejoins, shows all
#      three adapters from its store without fetching them again.
#   5. SIGTERM everywhere (exit 0), every audit log verifies with the
#      keyring; every daemon and namespace is gone.
# A trap removes every daemon and namespace on success, failure, SIGINT and
# SIGTERM. Prints "netns: N passed, M failed"; exit 0 iff M = 0.
set -uo pipefail

PASSED=0 FAILED=0
P="plorad-t$$"
BR="$P-br"
NSS=()        # namespaces made so far (cleanup deletes them)
PIDS=()       # daemons started (cleanup kills them)
WATCHDOG=""
T=""
CLEANED=0

now_ms() { date +%s%3N; }
ok() { echo "ok: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
verdict() { echo "netns: $PASSED passed, $FAILED failed"; }
info() { echo "# $*"; }

cleanup() {
  local pid ns
  [ "$CLEANED" -eq 1 ] && return 0
  CLEANED=1
  [ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  # anything else still running inside our namespaces was started by us
  for ns in "${NSS[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  done
  wait 2>/dev/null
  # deleting a host namespace destroys its veth end, and with it the peer
  for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [ -n "$T" ] && [ -d "$T" ]; then
    if [ "$FAILED" -gt 0 ] && [ -n "${BUILD_DIR:-}" ] && [ -d "$BUILD_DIR" ]; then
      local keep="$BUILD_DIR/cluster-logs" h
      rm -rf "$keep"; mkdir -p "$keep"
      for h in 1 2 3 4 5 6; do
        [ -f "$T/h$h/stderr.log" ] || continue
        echo "---- last lines of h$h's stderr log ----"
        grep -v ' D ' "$T/h$h/stderr.log" | tail -n 8
        mkdir -p "$keep/h$h" && cp "$T/h$h"/*.log "$T/h$h/node.yml" "$keep/h$h/" 2>/dev/null
      done
      echo "# logs of the failed run kept in $keep"
    fi
    rm -rf "$T"
  fi
}
on_exit() {
  local rc=$?
  if [ "$CLEANED" -eq 0 ]; then
    cleanup
    [ "$rc" -ne 0 ] && [ "$FAILED" -eq 0 ] && FAILED=1
    verdict
  fi
  [ "$FAILED" -gt 0 ] && exit 1
  exit "$rc"
}
die() { fail "$@"; exit 1; }

BUILD_DIR=${1:-}
if [ "$(id -u)" -ne 0 ]; then
  echo "FAIL: netns: must run as root (ip netns add needs CAP_SYS_ADMIN); running as uid $(id -u)"
  echo "netns: 0 passed, 1 failed"
  exit 1
fi
# A signal may land while a poll runs with stdout/stderr sent to /dev/null:
# the handlers write to the script's own stdout/stderr, saved as fds 3, 4.
exec 3>&1 4>&2
trap 'on_exit >&3 2>&4' EXIT
trap 'fail "interrupted" >&3; exit 1' INT TERM
[ -n "$BUILD_DIR" ] || die "usage: $0 BUILD_DIR"
PLORAD="$BUILD_DIR/daemon/plorad" PLORA="$BUILD_DIR/daemon/plora"
[ -x "$PLORAD" ] && [ -x "$PLORA" ] || die "no plorad/plora under $BUILD_DIR/daemon"
HERE=$(cd "$(dirname "$0")" && pwd)
FIX=${PLORA_FIXTURES:-$HERE/../../../shared/fixtures}
PEFT="$FIX/peft"
for f in distilbert-imdb-r8 distilbert-emotion-r8 gpt2-c_attn-r8; do
  [ -f "$PEFT/$f/adapter_model.safetensors" ] || die "missing fixture $PEFT/$f (set PLORA_FIXTURES)"
done
command -v ip >/dev/null || die "ip (iproute2) not found"
PY=$(python3 -c 'import sys; print(sys.executable)') || die "no python3"
NSQ="$HERE/nsq.py"

T0=$(now_ms)
tmark() { info "$(( $(now_ms) - T0 )) ms: $*"; }
END_MS=$((T0 + 112000))   # every wait stops here; the watchdog at 115 s
# (its sleep must not hold our stdout open, and dies with it)
( trap 'kill "$sp" 2>/dev/null; exit 0' TERM
  sleep 115 >/dev/null 2>&1 & sp=$!
  wait "$sp" && echo "FAIL: netns: watchdog: 115 s elapsed" && kill -TERM $$ ) &
WATCHDOG=$!
T=$(mktemp -d "${TMPDIR:-/tmp}/netns.XXXXXX") || die "mktemp"
X=$(( $$ % 250 + 1 ))
addr() { echo "10.231.$X.$1"; }
ns() { echo "$P-h$1"; }

# ---- network: bridge namespace + six hosts --------------------------------
net_up() {
  local i h
  ip netns add "$BR" || return 1
  NSS+=("$BR")
  ip -n "$BR" link set lo up &&
    ip -n "$BR" link add br0 type bridge forward_delay 0 stp_state 0 &&
    ip -n "$BR" link set br0 up || return 1
  for i in 1 2 3 4 5 6; do
    h=$(ns "$i")
    ip netns add "$h" || return 1
    NSS+=("$h")
    ip -n "$h" link set lo up &&
      ip -n "$BR" link add "v$i" type veth peer name eth0 netns "$h" &&
      ip -n "$BR" link set "v$i" master br0 up &&
      ip -n "$h" addr add "$(addr "$i")/24" dev eth0 &&
      ip -n "$h" link set eth0 up || return 1
  done
}
net_up || die "could not build the namespaces and bridge"
tmark "namespaces up"
ok "6 host namespaces on a bridge in $BR, subnet 10.231.$X.0/24"
grep -q "10\.231\.$X\." <<<"$(ip -o addr show 2>/dev/null)" && fail "an address of the test leaked into the root namespace"
# reachability over the bridge before any daemon runs
ip netns exec "$(ns 6)" ping -c 1 -W 2 "$(addr 1)" >/dev/null 2>&1 ||
  { ip netns exec "$(ns 6)" "$PY" -c 'import socket,sys; s=socket.socket(); s.settimeout(1)
try: s.connect((sys.argv[1], 9))
except ConnectionRefusedError: sys.exit(0)
sys.exit(1)' "$(addr 1)" || die "host 6 cannot reach host 1 over the bridge"; }

# ---- keys, keyring, configs ------------------------------------------------
mkdir -p "$T/keyring"
for i in 1 2 3 4 5 6; do
  d="$T/h$i"; mkdir -p "$d"
  "$PLORA" keygen --out "$d" --bits 2048 >"$d/keygen.out" 2>"$d/keygen.err" || die "plora keygen h$i: $(cat "$d/keygen.err")"
  awk '$1 == "key_id" { print $2 }' "$d/keygen.out" >"$d/id"
  cp "$d/node.pub" "$T/keyring/h$i.pem"
  {
    echo "node:"
    echo "  data: $d/data"
    echo "  listen: $(addr "$i"):7400"
    echo "  http: 127.0.0.1:0"
    echo "  key: $d/node.key"
    echo "  keyring: $T/keyring"
    echo "  name: h$i"
    echo "  ready_file: $d/ready.json"
    echo "  log_level: debug"
    [ "$i" -eq 1 ] || echo "  join: [$(addr 1):7400]"
    echo "overlay:"
    echo "  topology: ws"
    echo "  seed: 7"
    echo "gossip:"
    echo "  round_ms: 200"
    echo "  handshake_ms: 2000"
    echo "  idle_ms: 3000"
  } >"$d/node.yml"
done
tmark "keys and configs written"
signed() {   # signed FIXTURE DEST HOST DOMAIN -> prints the adapter id
  mkdir -p "$2"
  cp "$PEFT/$1/adapter_model.safetensors" "$PEFT/$1/adapter_config.json" "$2/" && chmod u+w "$2"/* &&
    "$PLORA" sign "$2" --key "$T/h$3/node.key" --domain "$4" >/dev/null 2>"$2.err" || return 1
  sha256sum "$2/adapter_model.safetensors" | cut -d' ' -f1
}
A=$(signed distilbert-imdb-r8 "$T/srcA" 1 sentiment) || die "plora sign srcA: $(cat "$T/srcA.err")"
B=$(signed distilbert-emotion-r8 "$T/srcB" 4 emotion) || die "plora sign srcB: $(cat "$T/srcB.err")"
C=$(signed gpt2-c_attn-r8 "$T/srcC" 2 arithmetic) || die "plora sign srcC: $(cat "$T/srcC.err")"

# ---- daemons -----------------------------------------------------------------
launch() {   # launch HOST [plorad flags]: plorad inside the host's namespace
  local i=$1 d="$T/h$1"
  shift
  rm -f "$d/ready.json"
  echo "#### start $(date -u +%T.%3N)" >>"$d/stderr.log"
  ip netns exec "$(ns "$i")" "$PLORAD" --config "$d/node.yml" "$@" >>"$d/stdout.log" 2>>"$d/stderr.log" &
  echo $! >"$d/pid"
  PIDS+=("$!")
}
await() {    # await HOST: its ready file (10 s), checked; saves $T/hi/http
  local i=$1 d="$T/h$1" pid
  pid=$(cat "$d/pid")
  local deadline=$(( $(now_ms) + 10000 ))
  until [ -s "$d/ready.json" ]; do
    kill -0 "$pid" 2>/dev/null || die "plorad h$i exited before its ready file: $(tail -n 3 "$d/stderr.log")"
    [ "$(now_ms)" -lt "$deadline" ] || die "plorad h$i wrote no ready file within 10 s"
    sleep 0.02
  done
  "$PY" - "$d" "$pid" "$(addr "$i"):7400" <<'EOF' || die "h$i's ready file: $(cat "$d/ready.json")"
import json, sys
d, pid, listen = sys.argv[1], int(sys.argv[2]), sys.argv[3]
r = json.load(open(d + "/ready.json"))
assert r["pid"] == pid, "pid %r is not %d (ip netns exec must exec plorad)" % (r["pid"], pid)
assert r["id"] == open(d + "/id").read().strip(), "id %r is not the key id" % r["id"]
assert r["listen"] == listen, "listen %r, want %r" % (r["listen"], listen)
h, p = r["http"].rsplit(":", 1)
assert h == "127.0.0.1" and 0 < int(p) < 65536, "http %r" % r["http"]
open(d + "/http", "w").write(r["http"])
EOF
}
# q EXPR HOST...: nsq.py over those hosts
q() {
  local expr=$1 i args=()
  shift
  for i in "$@"; do args+=("$(ns "$i")=$(cat "$T/h$i/http")"); done
  "$PY" "$NSQ" "$expr" "${args[@]}"
}
# wait_q SECONDS WHAT EXPR HOST...: poll until EXPR holds on every host
wait_q() {
  local secs=$1 what=$2 expr=$3 deadline
  shift 3
  deadline=$(( $(now_ms) + secs * 1000 ))
  [ "$deadline" -gt "$END_MS" ] && deadline=$END_MS
  until q "$expr" "$@" >/dev/null 2>&1; do
    if [ "$(now_ms)" -ge "$deadline" ]; then
      fail "timeout after ${secs} s: $what"
      q "$expr" "$@" | sed 's/^/#   /'
      return 1
    fi
    sleep 0.2
  done
  ok "$what"
}
stop() {     # stop HOST: SIGTERM, exit 0 within 10 s
  local i=$1 pid rc=0 deadline
  pid=$(cat "$T/h$i/pid")
  kill -TERM "$pid" 2>/dev/null || { fail "h$i was not running at stop"; return 1; }
  deadline=$(( $(now_ms) + 10000 ))
  while kill -0 "$pid" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && { fail "h$i still running 10 s after SIGTERM"; kill -KILL "$pid"; }
  wait "$pid" 2>/dev/null || rc=$?
  [ "$rc" -eq 0 ] || { fail "h$i exited $rc after SIGTERM, want 0"; return 1; }
}
committed() {   # committed ID...: every id committed and whole
  local e="True" id
  for id in "$@"; do e="$e and ad(s, '$id').get('state') == 'committed' and ad(s, '$id').get('stored') == ad(s, '$id').get('size')"; done
  echo "$e"
}
MERGED_AB="any(m['base_model'] == 'distilbert-base-uncased' and sorted(m['inputs']) == sorted(['$A', '$B']) for m in s['merged'])"
MERGED_C="any(m['base_model'] == 'gpt2' and m['inputs'] == ['$C'] for m in s['merged'])"

# ---- 1. two publishers, coverage -------------------------------------------
launch 1 --publish "$T/srcA"; await 1
for i in 2 3 4 5 6; do
  if [ "$i" -eq 4 ]; then launch 4 --publish "$T/srcB"; else launch "$i"; fi
done
for i in 2 3 4 5 6; do await "$i"; done
t_up=$(now_ms)
ok "6 daemons up in their namespaces ($((t_up - T0)) ms since start)"
wait_q 40 "all 6 hosts know 6 members" "s['members'] == 6 and len(s['peers']) > 0" 1 2 3 4 5 6
wait_q 40 "A (host 1) and B (host 4) committed at all 6 hosts" "$(committed "$A" "$B")" 1 2 3 4 5 6 &&
  COVER=$(( $(now_ms) - t_up )) && info "coverage of A and B across 6 hosts: $COVER ms after the last node was ready"
wait_q 20 "all 6 hosts merged A + B (distilbert-base-uncased)" "$MERGED_AB" 1 2 3 4 5 6 &&
  info "merged everywhere: $(( $(now_ms) - t_up )) ms after the last node was ready"

# ---- 2. partition hosts 5 and 6, publish C on host 2 -----------------------
ip -n "$(ns 5)" link set dev eth0 down && ip -n "$(ns 6)" link set dev eth0 down || die "link down on hosts 5, 6"
t_cut=$(now_ms)
stop 2 && ok "host 2 stopped cleanly to publish C"
launch 2 --publish "$T/srcC"; await 2
wait_q 30 "C (host 2) committed at hosts 1-4 during the partition" "$(committed "$C")" 1 2 3 4 &&
  info "C across hosts 1-4: $(( $(now_ms) - t_cut )) ms after the cut"
sleep 1   # five more rounds in which C could leak
q "ad(s, '$C').get('state') not in ('held', 'committed') and ad(s, '$C').get('stored', 0) == 0" 5 6 >"$T/q.out" &&
  ok "hosts 5 and 6 did not receive C while cut off" ||
  { fail "hosts 5/6 got C through a downed link"; sed 's/^/#   /' "$T/q.out"; }
wait_q 10 "hosts 5 and 6 dropped their peers (idle timeout)" "len(s['peers']) == 0" 5 6

# ---- 3. heal -------------------------------------------------------------------
ip -n "$(ns 5)" link set dev eth0 up && ip -n "$(ns 6)" link set dev eth0 up || die "link up on hosts 5, 6"
t_heal=$(now_ms)
wait_q 40 "hosts 5 and 6 caught up with C after healing" "$(committed "$A" "$B" "$C")" 5 6 &&
  CATCHUP=$(( $(now_ms) - t_heal )) && info "catch-up of hosts 5 and 6: $CATCHUP ms after link up"
wait_q 20 "all 6 hosts merged C (gpt2) and A + B" "$MERGED_C and $MERGED_AB" 1 2 3 4 5 6

# ---- 4. kill -9 host 3 and restart it on the same data dir ------------------
pid3=$(cat "$T/h3/pid")
kill -KILL "$pid3"; wait "$pid3" 2>/dev/null
kill -0 "$pid3" 2>/dev/null && die "host 3 survived SIGKILL"
t_kill=$(now_ms)
launch 3; await 3
q "$(committed "$A" "$B" "$C")" 3 >"$T/q.out" && ok "restarted host 3 holds A, B, C from its store at once" ||
  { fail "restarted host 3 does not hold everything at start"; sed 's/^/#   /' "$T/q.out"; }
wait_q 20 "host 3 rejoined (6 members, peers) and re-merged both models" \
  "s['members'] == 6 and len(s['peers']) > 0 and $MERGED_C and $MERGED_AB" 3 &&
  info "host 3 rejoined $(( $(now_ms) - t_kill )) ms after kill -9"
# its store resumed: nothing was fetched again (the smallest adapter, C, is 1.2 MB)
bin3=$(q "s['bytes_in']" 3 | cut -d' ' -f2)
[ -n "$bin3" ] && [ "$bin3" -lt 1000000 ] 2>/dev/null && ok "host 3 fetched no adapter again ($bin3 bytes in since restart)" ||
  fail "host 3 re-fetched adapters after restart (bytes_in $bin3)"
wait_q 10 "the other hosts see host 3 again" "len(s['peers']) > 0 and s['members'] == 6" 1 2 4 5 6

# ---- 5. clean stop, audit logs -------------------------------------------------
for i in 1 2 3 4 5 6; do stop "$i"; done
vfail=0
for i in 1 2 3 4 5 6; do
  d="$T/h$i/data"
  # --store wants adapters and merge outputs side by side in one dir;
  # plorad keeps them in DATA/adapters and DATA/merged: link both into one
  mkdir -p "$T/store$i" && ln -s "$d"/adapters/* "$d"/merged/* "$T/store$i/" ||
    { fail "h$i: cannot link its store for verify-log"; vfail=1; continue; }
  out=$("$PLORA" verify-log "$d/audit.jsonl" --keyring "$T/keyring" --store "$T/store$i" 2>&1) ||
    { fail "h$i: plora verify-log: $out"; vfail=1; }
done
[ "$vfail" -eq 0 ] && ok "all 6 audit logs verify (plora verify-log --keyring --store)"
grep -lE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T"/h*/stderr.log >"$T/san.out" 2>/dev/null &&
  fail "sanitizer report in $(tr '\n' ' ' <"$T/san.out")"

# ---- cleanup, checked -----------------------------------------------------------
cleanup
left=$(ip netns list 2>/dev/null | grep -c "^$P-")
[ "$left" -eq 0 ] && ok "every namespace removed" || fail "$left namespaces of $P left behind"
alive=0
for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
[ "$alive" -eq 0 ] && ok "every daemon gone" || fail "$alive daemons still running"
info "figures: coverage ${COVER:-?} ms (A+B on 6 hosts), catch-up ${CATCHUP:-?} ms (hosts 5,6 after healing), total $(( $(now_ms) - T0 )) ms"
verdict
[ "$FAILED" -eq 0 ]
