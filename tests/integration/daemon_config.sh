#!/usr/bin/env bash
# daemon_config.sh: plorad's configuration errors and lifecycle. Each bad
# config or flag exits 2 with a message naming the file (or flag), the field
# and the problem; --help exits 0; a node configured with relative paths
# starts, and exits 0 on SIGTERM (and on SIGINT) with an audit log that ends
# with a stop record and verifies; a listen address already taken is a
# runtime failure (exit 1).
. "$(dirname "$0")/lib_daemon.sh"
itest_init daemon_config

mknode A; mknode B
# run_bad WHAT FILE-CONTENT WORD...: write $T/bad/node.yml, run plorad on it,
# want exit 2 and every WORD on stderr.
mkdir -p "$T/bad"
cp "$T/A/node.key" "$T/bad/node.key"
run_bad() {
  local what=$1 text=$2 rc=0 w
  shift 2
  printf '%s\n' "$text" >"$T/bad/node.yml"
  timeout 20 "$PLORAD" --config "$T/bad/node.yml" >"$T/bad/out" 2>"$T/bad/err" || rc=$?
  [ "$rc" -eq 2 ] || { fail "$what: exit $rc, want 2; stderr: $(head -c 400 "$T/bad/err")"; return; }
  for w in "$@"; do
    grep -qF -- "$w" "$T/bad/err" || fail "$what: stderr lacks \"$w\": $(head -c 400 "$T/bad/err")"
  done
}
base="node:
  data: $T/bad/data
  key: $T/bad/node.key
  keyring: $T/keyring
  listen: 127.0.0.1:0
  http: \"\""
run_bad "unknown key" "$base
  bogus_key: 1" "$T/bad/node.yml" bogus_key
grep -qiE 'unknown|not allowed|invalid' "$T/bad/err" || fail "unknown key: message does not say the key is unknown: $(head -c 300 "$T/bad/err")"
run_bad "unknown section" "$base
gossipp:
  round_ms: 5" "$T/bad/node.yml" gossipp
run_bad "port 70000" "${base/127.0.0.1:0/127.0.0.1:70000}" "$T/bad/node.yml" listen 70000
run_bad "port not a number" "${base/127.0.0.1:0/127.0.0.1:http}" "$T/bad/node.yml" listen
run_bad "chunk_size 100" "$base
gossip:
  chunk_size: 100" "$T/bad/node.yml" chunk_size 100
run_bad "chunk_size 2 MiB" "$base
gossip:
  chunk_size: 2097152" "$T/bad/node.yml" chunk_size 2097152
run_bad "topology xx" "$base
overlay:
  topology: xx" "$T/bad/node.yml" topology xx
run_bad "missing key file" "${base/$T\/bad\/node.key/$T/bad/none.key}" "$T/bad/none.key"
mkdir -p "$T/badkr"; echo "not a key" >"$T/badkr/junk.pem"
run_bad "keyring with a broken key file" "${base/$T\/keyring/$T/badkr}" "$T/badkr/junk.pem"
run_bad "keyring that does not exist" "${base/$T\/keyring/$T/nokr}" "$T/nokr"
run_bad "YAML syntax error" "$base
  name: [unclosed" "$T/bad/node.yml"
run_bad "no data dir" "node:
  key: $T/bad/node.key
  keyring: $T/keyring" "$T/bad/node.yml" data
[ -e "$T/bad/data/audit.jsonl" ] && fail "a rejected config still created $T/bad/data/audit.jsonl"

rc=0; timeout 20 "$PLORAD" --config "$T/none.yml" >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 2 ] && grep -qF "$T/none.yml" "$T/err" || fail "missing config file: exit $rc, stderr: $(head -c 300 "$T/err")"
rc=0; timeout 20 "$PLORAD" --no-such-flag >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 2 ] && grep -qF -- "--no-such-flag" "$T/err" || fail "unknown flag: exit $rc, stderr: $(head -c 300 "$T/err")"
rc=0; timeout 20 "$PLORAD" --data "$T/bad/data" --key "$T/bad/node.key" --keyring "$T/keyring" --quorum 0 >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 2 ] && grep -qF -- "quorum" "$T/err" || fail "--quorum 0: exit $rc, stderr: $(head -c 300 "$T/err")"
rc=0; timeout 20 "$PLORAD" --help >"$T/help" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "--help: exit $rc"
for w in --config --join --data --listen --ready-file; do grep -qF -- "$w" "$T/help" || fail "--help does not mention $w"; done

# A node with relative paths (relative to node.yml's directory).
mkdir -p "$T/A/keyring"; cp "$T/keyring/A.pem" "$T/A/keyring/"
cat >"$T/A/node.yml" <<YML
node:
  data: data
  key: node.key
  keyring: keyring
  listen: 127.0.0.1:0
  http: 127.0.0.1:0
  name: node-a
  ready_file: ready.json
gossip:
  round_ms: 200
YML
start_node A
[ -f "$T/A/data/audit.jsonl" ] || fail "relative data dir: no $T/A/data/audit.jsonl"
st A "s['node'] == 'node-a' and s['state'] == 'running' and s['members'] >= 1" >/dev/null || fail "A's /status: $(status A | head -c 400)"
stop_node A TERM
verify_log A
[ "$(audit_last_kind A)" = stop ] || fail "after SIGTERM the audit log ends with $(audit_last_kind A), want stop"
audit_has A "r.get('type') == 'start'" || fail "no start record"
# Restart on the same data: the log continues; then SIGINT.
start_node A
stop_node A INT
verify_log A
[ "$(audit_last_kind A)" = stop ] || fail "after SIGINT the audit log ends with $(audit_last_kind A), want stop"
[ "$("$PY" -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l).get("type") == "start"))' "$T/A/data/audit.jsonl")" -eq 2 ] ||
  fail "after a restart the audit log should hold 2 start records"

# Listen address taken: a runtime failure, exit 1.
start_node A
mkconfig B node.listen="$(node_listen A)"
rc=0; timeout 20 "$PLORAD" --config "$T/B/node.yml" >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 1 ] && grep -qF "$(node_listen A)" "$T/err" || fail "listen address in use: exit $rc (want 1), stderr: $(head -c 300 "$T/err")"
stop_node A
itest_end
