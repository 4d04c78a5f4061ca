# tests/integration/lib_daemon.sh: shared helpers of the daemon_*.sh tests.
# shellcheck shell=bash
# Source it first thing: `. "$(dirname "$0")/lib_daemon.sh"; itest_init NAME`.
#
# Every daemon listens on 127.0.0.1 port 0 (its ready file says where it
# bound), so tests run in parallel. Each test owns one mktemp dir ($T) and a
# trap kills every daemon it started, on success and on failure.
#
# Layout of node NAME:   $T/NAME/node.key node.pub   (plora keygen)
#                        $T/NAME/node.yml            (mkconfig)
#                        $T/NAME/data/               (the daemon's DATA)
#                        $T/NAME/ready.json  stderr.log  stdout.log
# Keyring shared by the nodes of a test: $T/keyring/NAME.pem (mknode copies
# each new node's public key there unless told not to).

set -uo pipefail

ITEST_FAILS=0
ITEST_PIDS=()
ITEST_NODES=()

fail() { echo "FAIL: $*"; ITEST_FAILS=$((ITEST_FAILS + 1)); }
# Fatal: a later step cannot make sense without this one.
die() { fail "$@"; exit 1; }
info() { echo "# $*"; }
now_ms() { date +%s%3N; }

itest_cleanup() {
  local rc=$? pid n keep=""
  for pid in "${ITEST_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  done
  wait 2>/dev/null
  [ "$ITEST_FAILS" -gt 0 ] && rc=1
  if [ "$rc" -ne 0 ]; then
    # keep every node's logs and config (not its data) for the post-mortem
    [ -n "${BUILD_DIR:-}" ] && keep="$BUILD_DIR/itest-logs/$ITEST_NAME" && rm -rf "$keep"
    for n in "${ITEST_NODES[@]}"; do
      [ -f "$T/$n/stderr.log" ] || continue
      echo "---- last lines of $n's stderr log ----"
      grep -v ' D ' "$T/$n/stderr.log" | tail -n 12
      [ -n "$keep" ] && mkdir -p "$keep/$n" && cp "$T/$n"/*.log "$T/$n"/*.yml "$T/$n/id" "$keep/$n/" 2>/dev/null
      [ -n "$keep" ] && [ -f "$T/$n/data/audit.jsonl" ] && cp "$T/$n/data/audit.jsonl" "$keep/$n/"
    done
    [ -n "$keep" ] && echo "# logs of the failed run kept in $keep"
  fi
  if [ -n "${KEEP_TMP:-}" ]; then echo "# kept $T"; else rm -rf "$T"; fi
  exit "$rc"
}

# itest_init NAME: check the environment, make $T, install the trap.
itest_init() {
  ITEST_NAME=$1
  [ -n "${PLORA:-}" ] && [ -x "$PLORA" ] || { echo "FAIL: $1: PLORA (the plora binary) unset or not executable"; exit 1; }
  [ -n "${PLORAD:-}" ] && [ -x "$PLORAD" ] || { echo "FAIL: $1: PLORAD (the plorad binary) unset or not executable"; exit 1; }
  [ -n "${PLORA_FIXTURES:-}" ] && [ -d "$PLORA_FIXTURES/peft" ] || { echo "FAIL: $1: PLORA_FIXTURES unset or without peft/"; exit 1; }
  PEFT="$PLORA_FIXTURES/peft"
  FIXTURES=(gpt2-c_attn-r8 distilbert-imdb-r8 distilbert-emotion-r8)
  local f
  for f in "${FIXTURES[@]}"; do
    [ -f "$PEFT/$f/adapter_model.safetensors" ] || { echo "FAIL: missing fixture $PEFT/$f"; exit 1; }
  done
  # the real interpreter, not a version-manager shim (~0.4 s per call)
  PY=$(python3 -c 'import sys; print(sys.executable)') || { echo "FAIL: no python3"; exit 1; }
  T=$(mktemp -d "${TMPDIR:-/tmp}/itest-$1.XXXXXX") || exit 1
  trap itest_cleanup EXIT
  trap 'exit 1' INT TERM
  mkdir -p "$T/keyring"
}

# itest_end: sanitizer reports in any daemon log are failures (UBSan goes
# on after "runtime error:"); then the verdict line and exit code.
itest_end() {
  local n
  for n in "${ITEST_NODES[@]}"; do
    [ -f "$T/$n/stderr.log" ] || continue
    grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/$n/stderr.log" &&
      fail "sanitizer report in $n's log: $(grep -m1 -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/$n/stderr.log")"
  done
  if [ "$ITEST_FAILS" -eq 0 ]; then echo "PASS: $ITEST_NAME"; exit 0; fi
  echo "FAIL: $ITEST_NAME: $ITEST_FAILS check(s) failed"; exit 1
}

# mknode NAME [--no-keyring | --keys-of OTHER]: keys (RSA 2048: fast) in
# $T/NAME (or OTHER's keys copied: same node id, fresh data), public key into
# $T/keyring unless --no-keyring. $T/NAME/id holds the key id.
mknode() {
  local n=$1 d="$T/$1"
  mkdir -p "$d"
  if [ "${2:-}" = --keys-of ]; then
    cp "$T/$3/node.key" "$T/$3/node.pub" "$T/$3/id" "$d/"
  else
    "$PLORA" keygen --out "$d" --bits 2048 --json >"$d/keygen.json" 2>"$d/keygen.err" ||
      die "plora keygen for $n: $(cat "$d/keygen.err")"
    "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["key_id"])' "$d/keygen.json" >"$d/id" ||
      die "plora keygen --json for $n printed no key_id: $(cat "$d/keygen.json")"
    [ "${2:-}" = --no-keyring ] || cp "$d/node.pub" "$T/keyring/$n.pem"
  fi
  ITEST_NODES+=("$n")
}
node_id() { cat "$T/$1/id"; }

# mkconfig NAME [section.key=value ...]: write $T/NAME/node.yml. Defaults:
# listen and http on 127.0.0.1:0, keys and keyring of the test, round_ms 200,
# handshake_ms 3000, log_level debug. Values are written verbatim (YAML).
mkconfig() {
  local n=$1 d="$T/$1" kv sec key
  shift
  declare -A v=(
    [node.data]="$d/data" [node.listen]="127.0.0.1:0" [node.http]="127.0.0.1:0"
    [node.key]="$d/node.key" [node.keyring]="$T/keyring"
    [node.ready_file]="$d/ready.json" [node.log_level]="debug" [node.name]="${n,,}"
    [gossip.round_ms]=200 [gossip.handshake_ms]=3000
  )
  for kv in "$@"; do v[${kv%%=*}]=${kv#*=}; done
  : >"$d/node.yml"
  for sec in node overlay gossip merge audit; do
    local lines=()
    for key in "${!v[@]}"; do
      [ "${key%%.*}" = "$sec" ] && lines+=("  ${key#*.}: ${v[$key]}")
    done
    [ "${#lines[@]}" -gt 0 ] || continue
    echo "$sec:" >>"$d/node.yml"
    printf '%s\n' "${lines[@]}" | sort >>"$d/node.yml"
  done
}

# launch_node NAME [plorad flags...]: start plorad with $T/NAME/node.yml in
# the background; await_node NAME waits (15 s) for its ready file and checks
# it. start_node = both.
launch_node() {
  local n=$1 d="$T/$1" pid
  shift
  rm -f "$d/ready.json" "$d/listen" "$d/http"
  echo "#### start $(date -u +%T.%3N): $PLORAD --config $d/node.yml $*" >>"$d/stderr.log"
  "$PLORAD" --config "$d/node.yml" "$@" >>"$d/stdout.log" 2>>"$d/stderr.log" &
  pid=$!
  ITEST_PIDS+=("$pid")
  echo "$pid" >"$d/pid"
}
await_node() {
  local n=$1 d="$T/$1" pid deadline
  pid=$(cat "$d/pid")
  deadline=$(( $(now_ms) + 15000 ))
  until [ -s "$d/ready.json" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      local rc=0; wait "$pid" || rc=$?
      die "plorad $n exited ($rc) before writing its ready file: $(tail -n 5 "$d/stderr.log")"
    fi
    [ "$(now_ms)" -lt "$deadline" ] || die "plorad $n wrote no ready file $d/ready.json within 15 s"
    sleep 0.02
  done
  "$PY" - "$d" "$pid" <<'EOF' || die "ready file of $n is not as daemon/config.h says: $(cat "$d/ready.json")"
import json, sys
d, pid = sys.argv[1], int(sys.argv[2])
r = json.load(open(d + "/ready.json"))
assert r["pid"] == pid, "pid %r, want %d" % (r["pid"], pid)
assert r["id"] == open(d + "/id").read().strip(), "id %r is not the node key id" % r["id"]
for k in ("listen", "http"):
    h, p = r[k].rsplit(":", 1)
    assert h == "127.0.0.1" and 0 < int(p) < 65536, "%s %r" % (k, r[k])
    open(d + "/" + k, "w").write(r[k])
EOF
}
start_node() { launch_node "$@"; await_node "$1"; }

node_pid() { cat "$T/$1/pid"; }
node_listen() { cat "$T/$1/listen"; }
node_http() { cat "$T/$1/http"; }

# status NAME: print the node's /status document (no curl: urllib), exit
# non-zero if it cannot be fetched.
status() {
  "$PY" - "$(node_http "$1")" <<'EOF'
import sys, urllib.request
with urllib.request.urlopen("http://%s/status" % sys.argv[1], timeout=3) as r:
    sys.stdout.write(r.read().decode())
EOF
}

# st NAME 'python expression over s (the /status dict)': prints its value;
# exit 0 iff the expression is true (2: /status unreachable). Helper:
# ad(s, id) -> that adapter's entry or {}.
st() {
  "$PY" -c '
import json, sys, urllib.request
try:
    with urllib.request.urlopen("http://%s/status" % sys.argv[1], timeout=3) as r:
        s = json.loads(r.read().decode())
except Exception as e:
    print("status unreachable: %s" % e)
    sys.exit(2)
def ad(s, i):
    return next((a for a in s.get("adapters", []) if a.get("id") == i), {})
v = eval(sys.argv[2])
print(v)
sys.exit(0 if v else 1)' "$(node_http "$1")" "$2"
}

# wait_until SECONDS WHAT CMD...: retry CMD (quietly) every 0.2 s until it
# succeeds; on timeout a FAIL naming WHAT and return 1.
wait_until() {
  local secs=$1 what=$2 deadline
  shift 2
  deadline=$(( $(now_ms) + secs * 1000 ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(now_ms)" -ge "$deadline" ]; then
      fail "timeout after ${secs} s: $what (last: $("$@" 2>&1 | tail -c 300))"
      return 1
    fi
    sleep 0.2
  done
  return 0
}

# stop_node NAME [SIGNAL]: SIGTERM (default) and check exit 0 within 15 s.
stop_node() {
  local n=$1 sig=${2:-TERM} pid rc=0 deadline
  pid=$(node_pid "$n")
  kill -"$sig" "$pid" 2>/dev/null || { fail "plorad $n (pid $pid) was not running at stop"; return 1; }
  deadline=$(( $(now_ms) + 15000 ))
  while kill -0 "$pid" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then
    fail "plorad $n did not exit within 15 s of SIG$sig"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null || rc=$?
  [ "$sig" != TERM ] && [ "$sig" != INT ] && return 0
  [ "$rc" -eq 0 ] || { fail "plorad $n exited $rc after SIG$sig, want 0"; return 1; }
  return 0
}

# kill9_node NAME: SIGKILL (if still alive) and wait until it is gone. The
# job is disowned first so the shell prints no "Killed" notice for it.
kill9_node() {
  local pid deadline
  pid=$(node_pid "$1")
  disown "$pid" 2>/dev/null
  kill -KILL "$pid" 2>/dev/null
  deadline=$(( $(now_ms) + 5000 ))
  while kill -0 "$pid" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.02; done
  return 0
}

# verify_log NAME: plora verify-log on the node's audit log (with the test's keyring).
verify_log() {
  local n=$1 log="$T/$1/data/audit.jsonl" out
  [ -s "$log" ] || { fail "$n: no audit log at $log"; return 1; }
  if ! out=$("$PLORA" verify-log "$log" --keyring "$T/keyring" 2>&1); then
    fail "$n: plora verify-log $log: $out"
    return 1
  fi
  return 0
}

# audit_has NAME PYTHON-EXPR: true iff some record r of the node's audit log
# satisfies the expression (r is the parsed JSON line).
audit_has() {
  "$PY" - "$T/$1/data/audit.jsonl" "$2" <<'EOF'
import json, sys
expr = sys.argv[2]
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if eval(expr):
        sys.exit(0)
sys.exit(1)
EOF
}

# audit_last_kind NAME: the "type" of the last record (crypto/audit_line.h).
audit_last_kind() {
  "$PY" - "$T/$1/data/audit.jsonl" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
r = json.loads(lines[-1])
print(r.get("type", ""))
EOF
}

# sha256_of FILE: lowercase hex.
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# signed_copy FIXTURE DEST KEYFILE DOMAIN: copy a fixture adapter and sign it.
signed_copy() {
  local src="$PEFT/$1" dst=$2 out
  mkdir -p "$dst"
  cp "$src/adapter_model.safetensors" "$src/adapter_config.json" "$dst/"
  chmod u+w "$dst"/*
  out=$("$PLORA" sign "$dst" --key "$3" --domain "$4" 2>&1) || die "plora sign $dst: $out"
}

# held_committed NAME ID: the adapter is whole and committed at NAME.
held_committed() { st "$1" "ad(s, '$2').get('state') == 'committed' and ad(s, '$2').get('stored') == ad(s, '$2').get('size')"; }

# rawpeer_expect NODE MODE WANT-ERE WHAT [rawpeer args]: run the hostile peer
# (tests/integration/rawpeer.c, $RAWPEER) in MODE against NODE, then require a
# line matching WANT-ERE among those NODE logged meanwhile, and NODE alive.
# Those lines are left in the file named by $RAWPEER_LOG for further checks.
rawpeer_expect() {
  local n=$1 mode=$2 re=$3 what=$4 before rc=0 t0 tag
  shift 4
  tag="$n-$mode-$(date +%s%N)"
  before=$(wc -l <"$T/$n/stderr.log")
  t0=$(now_ms)
  timeout 60 "$RAWPEER" "$mode" "$(node_listen "$n")" --wait-ms 10000 "$@" >"$T/rawpeer-$tag.out" 2>&1 || rc=$?
  sed "s/^/#   /" "$T/rawpeer-$tag.out"
  [ "$rc" -eq 0 ] || fail "$what: rawpeer $mode exit $rc: $(grep -E 'FAIL|UNEXPECTED|rawpeer:.*(no |not )' "$T/rawpeer-$tag.out" | head -n 3)"
  sleep 0.3
  RAWPEER_LOG="$T/log-$tag.txt"
  tail -n +$((before + 1)) "$T/$n/stderr.log" >"$RAWPEER_LOG"
  grep -qE -- "$re" "$RAWPEER_LOG" ||
    fail "$what: $n logged no line matching /$re/; its new lines: $(grep -v ' D ' "$RAWPEER_LOG" | head -c 800)"
  kill -0 "$(node_pid "$n")" 2>/dev/null || die "$n died after: $what"
  info "$what: handled in $(( $(now_ms) - t0 )) ms"
}
