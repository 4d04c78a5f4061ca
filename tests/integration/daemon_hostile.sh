#!/usr/bin/env bash
# daemon_hostile.sh: misbehaving peers (tests/integration/rawpeer.c) against
# a real plorad: random frame, 0xFFFFFFFF length, half a frame then silence,
# a silent connection, and an authenticated peer sending a MANIFEST with
# domain "../x" and a WANT with the id "../../etc". Each connection must be
# closed as PROTOCOL.md says, with a logged reason; nothing may be written
# outside DATA; /status counts strikes; an honest node still gets an adapter
# afterwards. Last, a recorded HELLO + HELLO_ACK replayed on a new
# connection must fail authentication (PROTO_E_AUTH).
# ban_strikes is raised: every raw peer comes from 127.0.0.1, and pre-auth
# strikes count against the address, which the honest node shares.
. "$(dirname "$0")/lib_daemon.sh"
itest_init daemon_hostile
[ -n "${RAWPEER:-}" ] && [ -x "$RAWPEER" ] || die "RAWPEER (tests/integration/rawpeer) unset or not executable"

mknode A; mknode B; mknode R
signed_copy gpt2-c_attn-r8 "$T/src" "$T/A/node.key" arithmetic
id=$(sha256_of "$T/src/adapter_model.safetensors")
mkconfig A gossip.handshake_ms=3000 gossip.frame_ms=1000 gossip.ban_strikes=100 "node.publish=[\"$T/src\"]"
mkconfig B
start_node A
addr=$(node_listen A)
wait_until 20 "A holds its published adapter" st A "ad(s, '$id').get('state') in ('held', 'committed')"

# hostile MODE GREP-ERE WHAT: rawpeer (with R's trusted key) against A, then
# look for the reason among the lines A logged meanwhile.
hostile() { rawpeer_expect A "$1" "$2" "$3" --key "$T/R/node.key"; }
hostile garbage 'PROTO_E_(FRAME_LEN|MSGPACK_[A-Z]+|LIMIT|NOT_MAP|FIELD_[A-Z]+|DUP_FIELD|VERSION|TYPE)' "random frame"
hostile oversize 'PROTO_E_FRAME_LEN|4294967295' "length 0xFFFFFFFF"
hostile half '[Ff]rame' "half a frame then silence (frame_ms 1 s < handshake_ms 3 s)"
hostile idle '[Hh]andshake' "silent connection (handshake_ms 3 s)"
hostile domain-traversal 'PROTO_E_FIELD_(VALUE|TYPE)' "MANIFEST ../x and WANT ../../etc"
grep -q PROTO_E_FIELD_TYPE "$RAWPEER_LOG" || fail "WANT with a str id: no PROTO_E_FIELD_TYPE in A's log"
grep -q PROTO_E_FIELD_VALUE "$RAWPEER_LOG" || fail "MANIFEST with domain ../x: no PROTO_E_FIELD_VALUE in A's log"

# Nothing outside DATA, nothing odd inside it.
found=$( { find "$T" \( -name x -o -name etc \); find "$(dirname "$T")" -maxdepth 1 \( -name x -o -name etc \) -newer "$T/A/node.yml"; } 2>/dev/null | head -n 5)
[ -z "$found" ] || fail "files named x or etc appeared: $found"
for e in "$T/A/data/partial"/* "$T/A/data/adapters"/*; do
  [ -e "$e" ] || continue
  [[ "$(basename "$e")" =~ ^[0-9a-f]{64}$ ]] || fail "odd entry in A's store: $e"
done
st A "s['strikes'] >= 3" >/dev/null || fail "A's /status strikes < 3 after 3 peer faults at least: $(st A "(s['strikes'], s['bans'])")"
st A "s['state'] == 'running'" >/dev/null || fail "A not running: $(st A "s['state']")"

# An honest node is still served.
t0=$(now_ms)
start_node B --join "$addr"
wait_until 30 "honest B holds and commits $id after the attacks" held_committed B "$id" &&
  info "honest transfer after the attacks: $(( $(now_ms) - t0 )) ms"
cmp -s "$T/src/adapter_model.safetensors" "$T/B/data/adapters/$id/adapter_model.safetensors" || fail "B's copy differs"

# Replayed handshake (last: an authentication failure may ban 127.0.0.1).
hostile hello-replay 'PROTO_E_AUTH|[Aa]uth|signature' "replayed HELLO + HELLO_ACK"
st A "s['state'] == 'running'" >/dev/null || fail "A not serving /status after the replay"

stop_node B; stop_node A
verify_log A; verify_log B
audit_has A "r.get('type') == 'peer' and r['event'] in ('strike', 'ban')" || fail "A's audit log has no peer strike/ban record"
itest_end
