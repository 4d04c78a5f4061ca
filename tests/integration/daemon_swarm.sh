#!/usr/bin/env bash
# daemon_swarm.sh: 8 real plorad processes on an Erdos-Renyi overlay
# (ITEST_TOPOLOGIES="er ws ba": each of them, one after the other, each
# bounded at 60 s; swarm_cli.sh runs 8 real daemons on all three in CI). The 3 fixture adapters are
# published at 3 different nodes (signed by their publisher); every node must
# hold and commit all 3 (quorum 2: votes travel too) and write the merges of
# both base models (gpt2: 1 input; distilbert-base-uncased: imdb + emotion),
# then exit 0 on SIGTERM with an audit log that verifies.
. "$(dirname "$0")/lib_daemon.sh"
itest_init daemon_swarm

N=8
PUBLISHERS=(0 3 6)          # node index publishing FIXTURES[k]
total0=$(now_ms)
for i in $(seq 0 $((N - 1))); do mknode "k$i"; done   # one key per node index, reused
# er alone by default: the topology only changes whom a node dials, and
# swarm_cli.sh brings 8 real daemons to coverage + merge on er, ws and ba
# (quorum, votes and merges are the same code on every overlay). CI's
# budget is 15 minutes.
for topo in ${ITEST_TOPOLOGIES:-er}; do
  t0=$(now_ms)
  for i in $(seq 0 $((N - 1))); do mknode "$topo$i" --keys-of "k$i"; done
  ids=()
  for k in 0 1 2; do
    p="$topo${PUBLISHERS[$k]}" src="$T/src-$topo-$k"
    signed_copy "${FIXTURES[$k]}" "$src" "$T/$p/node.key" "dom$k"
    ids+=("$(sha256_of "$src/adapter_model.safetensors")")
  done
  for i in $(seq 0 $((N - 1))); do
    extra=()
    for k in 0 1 2; do
      [ "${PUBLISHERS[$k]}" -eq "$i" ] && extra+=("node.publish=[\"$T/src-$topo-$k\"]")
    done
    mkconfig "$topo$i" overlay.topology="$topo" overlay.seed=7 gossip.quorum=2 "${extra[@]}"
  done
  start_node "${topo}0"
  seed=$(node_listen "${topo}0")
  for i in $(seq 1 $((N - 1))); do launch_node "$topo$i" --join "$seed"; done
  for i in $(seq 1 $((N - 1))); do await_node "$topo$i"; done
  info "$topo: $N nodes up in $(( $(now_ms) - t0 )) ms"

  left() { local l=$(( (60000 - ($(now_ms) - t0)) / 1000 )); [ "$l" -gt 1 ] && echo "$l" || echo 1; }
  all_committed="all(ad(s, i).get('state') == 'committed' for i in ['${ids[0]}', '${ids[1]}', '${ids[2]}'])"
  merged="any(m['base_model'] == 'gpt2' and m['inputs'] == ['${ids[0]}'] for m in s['merged']) and any(m['base_model'] == 'distilbert-base-uncased' and sorted(m['inputs']) == sorted(['${ids[1]}', '${ids[2]}']) for m in s['merged'])"
  for i in $(seq 0 $((N - 1))); do
    wait_until "$(left)" "$topo$i holds and commits all 3 adapters" st "$topo$i" "$all_committed" || continue
    wait_until "$(left)" "$topo$i merged both base models (gpt2 alone, imdb + emotion)" st "$topo$i" "$merged" ||
      { info "$topo$i merged: $(st "$topo$i" "s['merged']")"; continue; }
    wait_until "$(left)" "$topo$i knows all $N members" st "$topo$i" "s['members'] == $N" ||
      info "$topo$i: members $(st "$topo$i" "(s['members'], s['overlay'])")"
  done
  info "$topo: converged (held + committed + merged everywhere) in $(( $(now_ms) - t0 )) ms"
  for i in $(seq 0 $((N - 1))); do
    n="$topo$i"
    "$PY" - "$(node_http "$n")" "$T/$n/data" "$topo" "$N" "${ids[@]}" <<'PY' || fail "$n: /status or store check failed (above)"
import hashlib, json, os, sys, urllib.request
http, data, topo, n, ids = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
s = json.loads(urllib.request.urlopen("http://%s/status" % http, timeout=3).read())
bad = []
if s["overlay"]["topology"] != topo or s["members"] != n or s["merges"] < 2:
    bad.append("overlay/members/merges: %r %r %r" % (s["overlay"], s["members"], s["merges"]))
for m in s["merged"]:
    d = m["dir"] if os.path.isabs(m["dir"]) else os.path.join(data, m["dir"])
    for f in ("certificate.json", "adapter_model.safetensors"):
        if not os.path.isfile(os.path.join(d, f)):
            bad.append("merge dir %s lacks %s" % (d, f))
for i in ids:
    p = os.path.join(data, "adapters", i, "adapter_model.safetensors")
    if not os.path.isfile(p) or hashlib.sha256(open(p, "rb").read()).hexdigest() != i:
        bad.append("adapters/%s missing or not hashing to its id" % i)
for b in bad:
    print("FAIL: %s" % b)
sys.exit(1 if bad else 0)
PY
  done
  for i in $(seq 0 $((N - 1))); do stop_node "$topo$i"; done
  for i in $(seq 0 $((N - 1))); do
    n="$topo$i"
    verify_log "$n"
    audit_has "$n" "r.get('type') == 'merge' and sorted(r['inputs']) == sorted(['${ids[1]}', '${ids[2]}'])" || fail "$n: no merge record of imdb + emotion"
    [ "$(audit_last_kind "$n")" = stop ] || fail "$n: audit log does not end with a stop record"
  done
  info "$topo: done in $(( $(now_ms) - t0 )) ms"
done
info "all topologies in $(( $(now_ms) - total0 )) ms"
itest_end
