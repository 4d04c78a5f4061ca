#!/usr/bin/env bash
# daemon_liars.sh: peers that speak the protocol and lie (issue 9), each
# against a real plorad with an honest node beside it (rawpeer.c does the
# lying; its --key is a key the daemon trusts, so the lies come after a
# real handshake):
#  a. votes on A (quorum 2: A's own ACCEPT plus any one more would commit):
#     a trusted key's vote with its verdict changed after signing (BYE
#     PROTO_E_AUTH, the relayer banned), a vote by a key not in the keyring
#     and one by a revoked key (dropped, logged; no strike: keyrings differ
#     between nodes, PROTOCOL.md 6), a trusted voter signing REJECT and
#     ACCEPT (both kept as evidence in the audit log, the key struck, counts
#     for neither side). Nothing commits until honest B votes.
#  b. transfers to V: an adapter announced and its WANT never answered; a
#     MANIFEST and one wrong CHUNK then silence (both: BYE PROTO_E_STATE
#     after stall_ms, wrong bytes discarded); every CHUNK sent with a byte
#     flipped (PROTO_E_HASH); a CHUNK at offset = size (PROTO_E_STATE). The
#     liar is banned at its 4th lie; V then gets the adapter from honest B.
#  c. 10,000 connections opened and left idle against F: F stays up, its fd
#     count stays under max_peers + 64, and honest C's transfer rate of a
#     synthetic adapter during the flood is >= 80% of its unloaded rate,
#     measured here (the figures are printed).
# For each: the daemon stays up and answers /status, the liar is struck or
# banned (or, for idle connections, cut by max_peers and the handshake
# deadline), the evidence is in the log or audit log, `plora verify-log`
# passes, honest service continues.
#
# Short (CI) by default: a 64 MiB adapter, unloaded and flooded transfers
# interleaved (2 pairs, up to 8 while the best of each differ by > 20%: the
# box is shared), each flood ended once its connects were all tried. The
# long version: LIARS_LONG=1 (or the argument --long): the same adapter,
# three pairs, each flood held 300 s (F's fds sampled throughout). The rate
# is gated only without sanitizers (printed always).
# LIARS_FLOOD=N changes the number of connections (10000).
. "$(dirname "$0")/lib_daemon.sh"
# The rate check compares transfers of 64 MiB, which end with an fsync: on a
# disk shared with the other tests that fsync is most of the noise. Keep the
# nodes' data on a tmpfs when there is one (the transport is what is judged).
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
itest_init daemon_liars
[ -n "${RAWPEER:-}" ] && [ -x "$RAWPEER" ] || die "RAWPEER (tests/integration/rawpeer) unset or not executable"
LONG=${LIARS_LONG:-0}
[ "${1:-}" = --long ] && LONG=1
FLOOD=${LIARS_FLOOD:-10000}
if [ "$LONG" = 1 ]; then HOLD_MS=300000 RUNS=3 MAX_RUNS=3; else HOLD_MS=60000 RUNS=2 MAX_RUNS=8; fi
# 64 MiB: a transfer of ~100 ms, long against the scheduler's time slices
# (a 16 MiB one took 27-115 ms beside the rest of the suite: noise)
LAYERS=64
T_START=$(now_ms)

for n in A B V F C L1 L2; do mknode "$n"; done
mknode U --no-keyring              # a key nobody trusts
mknode R                           # trusted once, now revoked
node_id R >"$T/keyring/revoked"

signed_copy gpt2-c_attn-r8 "$T/x" "$T/A/node.key" arithmetic
X=$(sha256_of "$T/x/adapter_model.safetensors")
mkdir -p "$T/z" && "$PY" "$(dirname "$0")/mk_adapter.py" "$T/z" "$LAYERS" || die "mk_adapter.py $T/z $LAYERS"
out=$("$PLORA" sign "$T/z" --key "$T/F/node.key" --domain synthetic 2>&1) || die "plora sign $T/z: $out"
Z=$(sha256_of "$T/z/adapter_model.safetensors")
ZSIZE=$(stat -c %s "$T/z/adapter_model.safetensors")

mkconfig A gossip.quorum=2 "node.publish=[\"$T/x\"]"
mkconfig V gossip.quorum=1 gossip.stall_ms=800 gossip.ban_strikes=4
mkconfig F gossip.max_peers=64 node.log_level=info "node.publish=[\"$T/z\"]"
start_node A; start_node V; start_node F
wait_until 20 "A holds and gated X" st A "ad(s, '$X').get('gate') == 'accept'"

# alive NODE WHAT: pid up and /status answering.
alive() {
  kill -0 "$(node_pid "$1")" 2>/dev/null || die "$1 died after: $2"
  st "$1" "s['state'] == 'running'" >/dev/null || fail "$1's /status does not answer 'running' after: $2"
}

# ---- a. votes ---------------------------------------------------------
info "a. lying votes on A (quorum 2; A's own ACCEPT is one); at $(( $(now_ms) - T_START )) ms"
rawpeer_expect A vote 'PEER-STRIKE.*PROTO_E_AUTH' "VOTE with trusted B's key id, verdict changed after signing" \
  --key "$T/L1/node.key" --vote-key "$T/B/node.key" --adapter "$X" --domain arithmetic --tamper --expect fault
rawpeer_expect A vote 'VOTE-REJECTED.*not in the keyring' "VOTE by an untrusted key" \
  --key "$T/L2/node.key" --vote-key "$T/U/node.key" --adapter "$X" --domain arithmetic --expect open
rawpeer_expect A vote 'VOTE-REJECTED.*revoked' "VOTE by a revoked key" \
  --key "$T/L2/node.key" --vote-key "$T/R/node.key" --adapter "$X" --domain arithmetic --expect open
rawpeer_expect A vote 'VOTE-EQUIVOCATION' "L2 signs REJECT then ACCEPT on X" \
  --key "$T/L2/node.key" --vote-key "$T/L2/node.key" --adapter "$X" --domain arithmetic \
  --verdict reject,accept --expect open
rawpeer_expect A banned 'PEER-BANNED' "L1 (forged a vote) is banned" --key "$T/L1/node.key"
alive A "the lying votes"
st A "ad(s, '$X').get('state') != 'committed' and s['merges'] == 0" >/dev/null ||
  fail "A committed or merged X on the liars' votes: $(st A "(ad(s, '$X'), s['merges'])")"
st A "ad(s, '$X').get('votes_accept') == 2 and ad(s, '$X').get('votes_reject') == 1" >/dev/null ||
  fail "A should keep its own ACCEPT and L2's two votes, nothing else: $(st A "ad(s, '$X')")"
st A "s['strikes'] >= 2 and s['bans'] >= 1" >/dev/null || fail "A: strikes/bans $(st A "(s['strikes'], s['bans'])")"
L1=$(node_id L1); L2=$(node_id L2)
audit_has A "r.get('type') == 'peer' and r.get('peer') == '$L1' and r['event'] == 'ban'" ||
  fail "A's audit log has no ban of L1 (forged vote)"
audit_has A "r.get('type') == 'peer' and r.get('peer') == '$L2' and 'equivocation' in r.get('reason', '')" ||
  fail "A's audit log has no strike of L2 for equivocation"
for v in accept reject; do
  audit_has A "r.get('type') == 'vote' and r['vote'].get('signer') == '$L2' and r['vote'].get('verdict') == '$v'" ||
    fail "A's audit log lacks L2's signed $v vote (equivocation evidence)"
done

# ---- b. transfers -----------------------------------------------------
info "b. lying sources on V (stall_ms 0.8 s, ban at the 4th strike); at $(( $(now_ms) - T_START )) ms"
lie_args=(--key "$T/L2/node.key" --adapter-dir "$T/x" --domain arithmetic)
rawpeer_expect V lie-nowant 'PEER-STRIKE.*PROTO_E_STATE' "X announced, WANT never answered" "${lie_args[@]}"
rawpeer_expect V lie-stall 'PARTIAL-DISCARDED' "MANIFEST and a wrong CHUNK, then silence" "${lie_args[@]}"
[ -s "$T/V/data/partial/$X/adapter_model.safetensors" ] &&
  fail "V kept the stalled liar's wrong bytes: $(ls -l "$T/V/data/partial/$X")"
rawpeer_expect V lie-bytes 'PEER-STRIKE.*PROTO_E_HASH' "every CHUNK sent, one byte flipped" "${lie_args[@]}"
rawpeer_expect V lie-offset 'PEER-STRIKE.*PROTO_E_STATE.*banned' "a CHUNK at offset = size (4th lie: ban)" "${lie_args[@]}"
rawpeer_expect V banned 'PEER-BANNED' "L2 is banned at V" --key "$T/L2/node.key"
alive V "the lying sources"
st V "s['strikes'] >= 4 and s['bans'] >= 1" >/dev/null || fail "V: strikes/bans $(st V "(s['strikes'], s['bans'])")"
st V "ad(s, '$X').get('state') in (None, 'partial') and ad(s, '$X').get('stored', 0) == 0" >/dev/null ||
  fail "V holds bytes of X from the liar: $(st V "ad(s, '$X')")"
audit_has V "r.get('type') == 'peer' and r.get('peer') == '$L2' and r['event'] == 'ban'" ||
  fail "V's audit log has no ban of L2"

# ---- honest service after a and b -------------------------------------
mkconfig B gossip.quorum=2 "node.join=[\"$(node_listen A)\", \"$(node_listen V)\"]"
t0=$(now_ms)
start_node B
wait_until 30 "A commits X with honest B's vote" held_committed A "$X"
wait_until 30 "honest B holds and commits X" held_committed B "$X"
wait_until 30 "V gets X from honest B" held_committed V "$X" &&
  info "honest service after the liars: X committed at A, B, V in $(( $(now_ms) - t0 )) ms"
cmp -s "$T/x/adapter_model.safetensors" "$T/V/data/adapters/$X/adapter_model.safetensors" || fail "V's copy of X differs"
st A "ad(s, '$X').get('votes_reject') == 1" >/dev/null ||
  fail "A's REJECT votes on X: want only equivocating L2's: $(st A "ad(s, '$X')")"
audit_has A "r.get('type') == 'commit' and r.get('adapter') == '$X' and '$L2' not in r.get('signers', [])" ||
  fail "A's commit record of X is missing or counts equivocating L2"

# ---- c. idle flood ----------------------------------------------------
# run TAG: a fresh node C (same key, fresh data) joins F and fetches Z;
# Z's transfer_ms at C (MANIFEST to hash checked) goes to $T/ms-TAG, the
# time from C's start to Z held to $T/wall-TAG. TAG idle: no flood. held:
# the $FLOOD connections are all opened first and held while C joins (it
# may be refused until F's handshake deadline frees the slots the flood
# took) and fetches: the gated case. burst: C is in first and the flood's
# connects hit F during the transfer (the attacker's 10,000 handshakes
# share this box's 2 cores: printed, not gated).
cid=$(node_id C)
# F's open fds, counted without a fork (the sampler must not load the box)
fds() { local f=("/proc/$FPID/fd/"*); echo "${#f[@]}"; }
# sampler_start / sampler_stop: F's fds every 50 ms into $T/fds.txt, in
# unloaded and flooded runs alike so that both carry the same extra load
sampler_start() {
  : >"$T/sampling"
  ( while [ -e "$T/sampling" ]; do fds; sleep 0.05; done ) >>"$T/fds.txt" 2>/dev/null &
  spid=$!
}
sampler_stop() { rm -f "$T/sampling"; wait "$spid" 2>/dev/null; }
run() {
  local tag=$1 line="" fpid="" spid="" before deadline t0
  rm -rf "$T/C/data"
  : >"$T/C/stderr.log"
  mkconfig C "node.join=[\"$(node_listen F)\"]"
  before=$(wc -l <"$T/F/stderr.log")
  sampler_start
  if [ "$tag" = held ]; then flood_start; wait_until 60 "the flood tried its $FLOOD connects" grep -q 'opened' "$T/flood.out"; fi
  t0=$(now_ms)
  launch_node C
  if [ "$tag" = burst ]; then
    deadline=$(( $(now_ms) + 30000 ))
    until awk -v n="$before" -v p=" PEER-UP peer=${cid:0:8}" 'NR > n && index($0, p) { f = 1 } END { exit !f }' "$T/F/stderr.log"; do
      [ "$(now_ms)" -lt "$deadline" ] || { fail "F never saw C (flood run)"; break; }
      sleep 0.02
    done
    flood_start
  fi
  await_node C
  wait_until 60 "honest C holds Z ($tag)" grep -q "ADAPTER-HELD adapter=$Z" "$T/C/stderr.log" &&
    line=$(grep -m1 "ADAPTER-HELD adapter=$Z" "$T/C/stderr.log")
  [ -n "$line" ] && echo "$(( $(now_ms) - t0 ))" >>"$T/wall-$tag"
  [ "$tag" = idle ] || flood_end
  sampler_stop
  stop_node C
  [ -n "$line" ] || return 1
  echo "${line##*transfer_ms=}" >>"$T/ms-$tag"
}
# flood_start / flood_end: rawpeer opens $FLOOD idle connections to F and
# holds them (short: until the run's transfer is done and every connect
# was tried; long: HOLD_MS); F's fds are sampled meanwhile.
flood_start() {
  nice -n 19 "$RAWPEER" flood "$(node_listen F)" --count "$FLOOD" --hold-ms "$HOLD_MS" >"$T/flood.out" 2>&1 &
  fpid=$!
  ITEST_PIDS+=("$fpid")
}
flood_end() {
  wait_until 60 "the flood tried its $FLOOD connects" grep -q 'opened' "$T/flood.out"
  [ "$LONG" = 1 ] || kill "$fpid" 2>/dev/null
  wait "$fpid" 2>/dev/null
  sed "s/^/#   /" "$T/flood.out"
  grep -q 'FAIL' "$T/flood.out" && fail "flood: $(grep FAIL "$T/flood.out")"
  alive F "a flood of $FLOOD connections"
}
# best TAG: the fastest of the runs recorded under TAG (ms), 0 if none.
best() { sort -n "$T/ms-$1" 2>/dev/null | head -n 1 | grep . || echo 0; }
info "c. at $(( $(now_ms) - T_START )) ms: $FLOOD idle connections against F (max_peers 64, handshake 3 s); Z is $ZSIZE bytes"
# Timing under sanitizers measures the sanitizer: the rate is printed but
# gated only in a build without them (fds, liveness and transfers always).
sanitized=$("$PY" -c 'import json,sys
o = {x["name"]: x["value"] for x in json.load(open(sys.argv[1] + "/meson-info/intro-buildoptions.json"))}
print(o.get("b_sanitize", "none"))' "${BUILD_DIR:-/nonexistent}" 2>/dev/null || echo unknown)
# figures: print the rates from the best run of each kind (the box is
# shared: the best run is the one least disturbed by other work); exit 0
# when the rate under the flood is >= 80% of the unloaded one.
figures() {
  "$PY" - "$ZSIZE" "$(best idle)" "$(best held)" <<'EOF'
import sys
size, idle, flood = (int(x) for x in sys.argv[1:])
r0 = size / max(idle, 1) / 1048.576
r1 = size / flood / 1048.576 if flood > 0 else 0.0
print("# figure: honest transfer of %d bytes: unloaded %d ms (%.1f MiB/s), under the flood %d ms "
      "(%.1f MiB/s), ratio %.2f (want >= 0.80)" % (size, idle, r0, flood, r1, r1 / r0 if r0 else 0))
sys.exit(0 if idle > 0 and flood > 0 and r1 >= 0.8 * r0 else 1)
EOF
}
[ "$sanitized" = none ] || MAX_RUNS=$RUNS   # more pairs would change nothing gated
FPID=$(node_pid F)
fd0=$(fds)
# pairs (unloaded, flooded) interleaved: RUNS of them, then up to
# MAX_RUNS while the best of each kind still differ by more than 20%
i=0
run burst || fail "no transfer during the flood's connect burst"
while :; do
  i=$((i + 1))
  run idle || fail "no unloaded transfer (run $i)"
  run held || fail "no transfer under the flood (run $i)"
  [ "$i" -lt "$RUNS" ] && continue
  figures >/dev/null && break
  [ "$i" -lt "$MAX_RUNS" ] || break
done
info "honest transfer_ms of Z, by run: unloaded $(tr '\n' ' ' <"$T/ms-idle" 2>/dev/null); 10,000 connections held $(tr '\n' ' ' <"$T/ms-held" 2>/dev/null); during the connect burst $(cat "$T/ms-burst" 2>/dev/null) (not gated)"
info "figure: C start to Z held (ms): unloaded $(tr '\n' ' ' <"$T/wall-idle" 2>/dev/null); flood held $(tr '\n' ' ' <"$T/wall-held" 2>/dev/null) (includes waiting for a slot)"
if ! figures; then
  if [ "$sanitized" = none ]; then fail "honest rate under the flood below 80% of unloaded (figures above)"
  else info "rate not gated: sanitizer build (b_sanitize=$sanitized)"; fi
fi
fdmax=$(sort -n "$T/fds.txt" 2>/dev/null | tail -n 1)
info "figure: F's fds: $fd0 before, ${fdmax:-?} at most during the floods (bound: max_peers 64 + 64 + $fd0)"
[ -n "$fdmax" ] && [ "$fdmax" -le $((64 + 64 + fd0)) ] || fail "F's fd count not bounded during the flood: ${fdmax:-none sampled}"

# ---- the logs ---------------------------------------------------------
stop_node B; stop_node A; stop_node V; stop_node F
for n in A B V F; do verify_log "$n"; done
info "daemon_liars: $(( $(now_ms) - T_START )) ms in all"
itest_end
