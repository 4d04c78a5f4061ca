#!/usr/bin/env bash
# daemon_sighup.sh: SIGHUP reloads the keyring. Three nodes, quorum 2:
#   A: keyring {A, B}      publishes adapter X (signed by A)
#   B: keyring {A, B, C}   its policy rejects X (allowed_ranks [4]): B votes REJECT
#   C: keyring {A, B, C}   publishes the same X too, accepts: C votes ACCEPT
# C's vote reaches A through B, but A does not trust C: A holds one accept
# (its own) and cannot commit. After C's key is copied into A's keyring dir
# and A gets SIGHUP (same process), the next exchange with B brings C's vote
# again and A commits X with signers {A, C}. Then C is revoked in A's
# keyring and A gets SIGHUP again: A drops C's vote (X stays committed).
. "$(dirname "$0")/lib_daemon.sh"
itest_init daemon_sighup

mknode A; mknode B; mknode C
for n in A B C; do mkdir -p "$T/kr$n"; done
cp "$T/A/node.pub" "$T/krA/A.pem"; cp "$T/B/node.pub" "$T/krA/B.pem"
for n in A B C; do cp "$T/$n/node.pub" "$T/krB/$n.pem"; cp "$T/$n/node.pub" "$T/krC/$n.pem"; done
signed_copy gpt2-c_attn-r8 "$T/src" "$T/A/node.key" arithmetic
id=$(sha256_of "$T/src/adapter_model.safetensors")
printf 'allowed_ranks: [4]\n' >"$T/B/policy.yml"
mkconfig A node.keyring="$T/krA" gossip.quorum=2 gossip.ban_ms=1000 "node.publish=[\"$T/src\"]"
mkconfig B node.keyring="$T/krB" gossip.quorum=2 gossip.ban_ms=1000 node.policy="$T/B/policy.yml"
mkconfig C node.keyring="$T/krC" gossip.quorum=2 gossip.ban_ms=1000 "node.publish=[\"$T/src\"]"
start_node A
start_node B --join "$(node_listen A)"
start_node C --join "$(node_listen B)"
A_id=$(node_id A); C_id=$(node_id C)

wait_until 20 "B rejects X (rank policy)" st B "ad(s, '$id').get('gate') == 'reject'"
wait_until 20 "C accepts X" st C "ad(s, '$id').get('gate') == 'accept'"
wait_until 20 "B holds C's and A's accepts and its own reject" st B "ad(s, '$id').get('votes_accept') == 2 and ad(s, '$id').get('votes_reject') == 1"
wait_until 20 "A holds B's reject" st A "ad(s, '$id').get('votes_reject') == 1"
sleep 2   # ten rounds: were C's vote accepted, A would commit now
st A "ad(s, '$id').get('state') != 'committed' and ad(s, '$id').get('votes_accept') == 1" >/dev/null ||
  fail "before SIGHUP A must not count C's vote: $(st A "ad(s, '$id')")"
audit_has A "r.get('type') == 'vote' and r['vote']['signer'] == '$C_id'" && fail "A's audit log kept a vote by untrusted C"

pid=$(node_pid A)
cp "$T/C/node.pub" "$T/krA/C.pem"
kill -HUP "$pid"
t0=$(now_ms)
wait_until 20 "A commits X after SIGHUP with C's vote" held_committed A "$id" &&
  info "A committed $(( $(now_ms) - t0 )) ms after SIGHUP"
kill -0 "$pid" 2>/dev/null || fail "A exited on SIGHUP"
st A "s['pid'] == $pid and s['state'] == 'running' and ad(s, '$id').get('votes_accept') == 2" >/dev/null ||
  fail "A after SIGHUP: $(st A "(s['pid'], s['state'], ad(s, '$id'))")"
grep -v '^####' "$T/A/stderr.log" | grep -iE 'sighup|reload' | head -n 3 | sed 's/^/# A log: /'
# one grep on the file, no pipe: under pipefail a `grep -q` that exits at its
# first match can kill the writer before it (SIGPIPE) and fail the pipeline
grep -qiE '^[^#].*(sighup|reload)' "$T/A/stderr.log" || fail "A logged nothing about the SIGHUP reload"

# Revoking C (its id in A's revoked list, its key file kept) and SIGHUP: A
# forgets C's vote, so it counts towards no quorum any more; X stays
# committed (that decision is in the audit log), and C's vote, offered
# again by B each round, is refused as revoked.
node_id C >"$T/krA/revoked"
kill -HUP "$pid"
wait_until 10 "A logs that it dropped C's vote" grep -q "RELOAD-UNTRUST key=${C_id:0:16} revoked: 1 vote(s) dropped" "$T/A/stderr.log"
wait_until 10 "A counts one accept for X after revoking C" st A "ad(s, '$id').get('votes_accept') == 1"
sleep 1.5   # several rounds with B, who still holds and offers C's vote
st A "ad(s, '$id').get('votes_accept') == 1 and ad(s, '$id').get('state') == 'committed'" >/dev/null ||
  fail "A after revoking C: want X committed with one accept (A's own): $(st A "ad(s, '$id')")"
stop_node C; stop_node B; stop_node A
for n in A B C; do verify_log "$n"; done
audit_has A "r.get('type') == 'vote' and r['vote']['signer'] == '$C_id' and r['vote']['verdict'] == 'accept'" || fail "A's audit log has no vote by C"
audit_has A "r.get('type') == 'commit' and r['adapter'] == '$id' and r['quorum'] == 2 and r['signers'] == sorted(['$A_id', '$C_id'])" ||
  fail "A's audit log has no commit of X with quorum 2 signed by A and C"
audit_has B "r.get('type') == 'gate' and r['adapter'] == '$id' and r['verdict'] == 'reject'" || fail "B's audit log has no gate reject"
itest_end
