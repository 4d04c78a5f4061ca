#!/usr/bin/env bash
# daemon_transfer.sh: two real plorad processes on 127.0.0.1. A publishes one
# signed fixture adapter; B joins A, pulls it, verifies it; both gate, vote,
# reach quorum 2 (each needs the other's signed vote) and commit. Checks the
# bytes (cmp + SHA-256 = id), both /status documents, exit 0 on SIGTERM, and
# both audit logs (plora verify-log, gate/commit records, stop record last).
. "$(dirname "$0")/lib_daemon.sh"
itest_init daemon_transfer

mknode A; mknode B
signed_copy gpt2-c_attn-r8 "$T/src" "$T/A/node.key" arithmetic
id=$(sha256_of "$T/src/adapter_model.safetensors")
mkconfig A gossip.quorum=2 "node.publish=[\"$T/src\"]"
mkconfig B gossip.quorum=2
t0=$(now_ms)
start_node A
wait_until 20 "A holds its published adapter $id" st A "ad(s, '$id').get('state') in ('held', 'committed')"
st A "ad(s, '$id').get('domain') == 'arithmetic'" >/dev/null || fail "A: domain of the published adapter is not arithmetic: $(st A "ad(s, '$id')")"
start_node B --join "$(node_listen A)"
wait_until 30 "B holds and commits $id" held_committed B "$id"
wait_until 20 "A commits $id (needs B's vote)" held_committed A "$id"
info "transfer + quorum 2 at both nodes in $(( $(now_ms) - t0 )) ms"
# the sender's CHUNK buffers are unmapped once no adapter is being sent
wait_until 10 "A holds no send buffers" st A "s['send_buffers'] == 0 and s['bytes_out'] >= $(stat -c %s "$T/src/adapter_model.safetensors")"

got="$T/B/data/adapters/$id/adapter_model.safetensors"
cmp -s "$T/src/adapter_model.safetensors" "$got" || fail "B's $got differs from the source"
[ "$(sha256_of "$got")" = "$id" ] || fail "B's copy does not hash to its id"
cmp -s "$T/src/adapter_config.json" "$T/B/data/adapters/$id/adapter_config.json" || fail "B's adapter_config.json differs from the source"
cmp -s "$T/src/plora.yml" "$T/B/data/adapters/$id/plora.yml" || fail "B's plora.yml differs from the source"
[ -d "$T/B/data/partial/$id" ] && fail "B still has partial/$id after the adapter became whole"
size=$(stat -c %s "$T/src/adapter_model.safetensors")
for n in A B; do
  st "$n" "ad(s, '$id').get('gate') == 'accept' and ad(s, '$id').get('votes_accept', 0) >= 2 and ad(s, '$id').get('size') == $size" >/dev/null ||
    fail "$n: adapter entry not accepted with 2 votes: $(st "$n" "ad(s, '$id')")"
  st "$n" "s['state'] == 'running' and s['id'] == '$(node_id "$n")' and s['listen'] == '$(node_listen "$n")' and s['gate_verdicts']['accept'] >= 1" >/dev/null ||
    fail "$n: /status header wrong: $(status "$n" | head -c 600)"
done
st B "ad(s, '$id').get('received_round') is not None and ad(s, '$id').get('transfer_ms') is not None and s['bytes_in'] >= $size" >/dev/null ||
  fail "B: received_round/transfer_ms/bytes_in not set for a received adapter: $(st B "(ad(s, '$id'), s['bytes_in'])")"
st A "ad(s, '$id').get('received_round') is None and s['bytes_out'] >= $size" >/dev/null ||
  fail "A: published adapter shows a received_round, or bytes_out < size: $(st A "(ad(s, '$id'), s['bytes_out'])")"
st B "any(p['id'] == '$(node_id A)' for p in s['peers'])" >/dev/null || fail "B: A not among its peers: $(st B "s['peers']")"

stop_node B; stop_node A
for n in A B; do
  verify_log "$n"
  audit_has "$n" "r.get('type') == 'start'" || fail "$n: no start record"
  audit_has "$n" "r.get('type') == 'gate' and r['adapter'] == '$id' and r['verdict'] == 'accept'" || fail "$n: no gate accept record for $id"
  audit_has "$n" "r.get('type') == 'vote'" || fail "$n: no vote record"
  audit_has "$n" "r.get('type') == 'commit' and r['adapter'] == '$id' and r['quorum'] == 2 and sorted(r['signers']) == sorted(['$(node_id A)', '$(node_id B)'])" ||
    fail "$n: no commit record for $id with quorum 2 signed by A and B"
  [ "$(audit_last_kind "$n")" = stop ] || fail "$n: audit log does not end with a stop record (last: $(audit_last_kind "$n"))"
done
itest_end
