#!/usr/bin/env bash
# cli_keys.sh: keygen, sign, verify, vote and quorum through the real `plora`
# binary: the prototype's signed manifests (every reference/manifests/*/
# plora.yml beside a copy of its ../peft adapter), plorad's own manifests
# and votes, and every exit code (0 ok, 1 negative verdict, 2 bad input with
# a message naming the file and the field).
set -euo pipefail
: "${PLORA:?}" "${PLORA_FIXTURES:?}"
REF="$PLORA_FIXTURES/reference"
PEFT="$PLORA_FIXTURES/peft"
for f in "$REF/keys/rsa3072_pub.pem" "$REF/keys/ed25519_pub.pem" "$REF/quorum/keys/key0_pub.pem" \
         "$PEFT/gpt2-c_attn-r8/adapter_model.safetensors"; do
  [ -f "$f" ] || { echo "missing fixture $f"; exit 1; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0 checks=0
bad() { echo "FAIL: $*"; fail=1; }

# expect CODE WHAT -- command...: run, compare the exit code, keep output in $tmp/out, $tmp/err
expect() {
  local want=$1 what=$2 rc=0; shift 3
  checks=$((checks + 1))
  "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ "$rc" -eq "$want" ] || bad "$what: exit $rc, want $want; stderr: $(head -c 400 "$tmp/err"); stdout: $(head -c 400 "$tmp/out")"
}
# the message on stderr must name these words (file, field, problem)
says() { local w; for w in "$@"; do grep -qF -- "$w" "$tmp/err" || bad "stderr lacks \"$w\": $(head -c 400 "$tmp/err")"; done; }
json_has() { grep -qF -- "$1" "$tmp/out" || bad "stdout lacks $1: $(head -c 600 "$tmp/out")"; }

# --- help and usage errors of the four commands -------------------------------
for c in sign verify vote quorum; do
  expect 0 "$c --help" -- "$PLORA" "$c" --help
  grep -q "usage: plora $c" "$tmp/out" || bad "$c --help prints no usage"
  expect 2 "$c with no argument" -- "$PLORA" "$c"
  expect 2 "$c with an unknown option" -- "$PLORA" "$c" --no-such-option x
done

# --- the prototype's manifests ------------------------------------------------
mkdir -p "$tmp/kr_proto"
cp "$REF/keys/rsa3072_pub.pem" "$REF/keys/ed25519_pub.pem" "$tmp/kr_proto/"
mkdir -p "$tmp/kr_wrong"; cp "$REF/quorum/keys/key0_pub.pem" "$tmp/kr_wrong/"
n_proto=0
for m in "$REF"/manifests/*/*/plora.yml; do
  fx=$(basename "$(dirname "$m")"); variant=$(basename "$(dirname "$(dirname "$m")")")
  d="$tmp/ad_${variant}_$fx"; mkdir -p "$d"
  cp "$PEFT/$fx/adapter_model.safetensors" "$PEFT/$fx/adapter_config.json" "$m" "$d/"
  if [ "$variant" = unsigned ]; then
    expect 1 "unsigned $fx verifies as not valid" -- "$PLORA" verify "$d" --keyring "$tmp/kr_proto" --json
    json_has '"ok":false'; json_has 'no_trusted_signature'
    continue
  fi
  n_proto=$((n_proto + 1))
  form=prototype-bare; case "$variant" in *sign_plasmid) form=prototype-tagged ;; esac
  expect 0 "$variant/$fx verifies" -- "$PLORA" verify "$d" --keyring "$tmp/kr_proto" --json
  json_has '"ok":true'; json_has "\"form\":\"$form\""; json_has '"valid":true,"trusted":true'
  expect 1 "$variant/$fx with the wrong key" -- "$PLORA" verify "$d" --keyring "$tmp/kr_wrong" --json
  json_has '"ok":false'
done
[ "$n_proto" -eq 8 ] || bad "expected 8 prototype-signed manifests, saw $n_proto"
d="$tmp/ad_rsa_sign_plasmid_gpt2-c_attn-r8"
cp -r "$d" "$tmp/flip"
printf '\x01' | dd of="$tmp/flip/adapter_model.safetensors" bs=1 seek=1000 conv=notrunc status=none
expect 1 "bit-flipped adapter" -- "$PLORA" verify "$tmp/flip" --keyring "$tmp/kr_proto"
grep -q "sha256_mismatch" "$tmp/out" || bad "bit flip: no sha256_mismatch reason"
cp -r "$d" "$tmp/noadapter"; rm "$tmp/noadapter/adapter_model.safetensors"
expect 1 "missing adapter" -- "$PLORA" verify "$tmp/noadapter" --keyring "$tmp/kr_proto" --json
json_has 'artifact_missing'
cp -r "$d" "$tmp/nomanifest"; rm "$tmp/nomanifest/plora.yml"
expect 2 "missing manifest" -- "$PLORA" verify "$tmp/nomanifest" --keyring "$tmp/kr_proto"
says "$tmp/nomanifest/plora.yml"
cp -r "$d" "$tmp/badmanifest"; sed -i 's/^  r: 8$/  r: 0/' "$tmp/badmanifest/plora.yml"
expect 2 "manifest with r 0" -- "$PLORA" verify "$tmp/badmanifest" --keyring "$tmp/kr_proto"
says "$tmp/badmanifest/plora.yml" "lora.r" "0 is below 1"
expect 2 "manifest given with --manifest that does not exist" -- \
  "$PLORA" verify "$d" --manifest "$tmp/none.yml" --keyring "$tmp/kr_proto"
says "$tmp/none.yml"
expect 2 "keyring that does not exist" -- "$PLORA" verify "$d" --keyring "$tmp/no-keyring"
says "$tmp/no-keyring"
mkdir -p "$tmp/kr_broken"; echo "not a key" >"$tmp/kr_broken/junk.pem"
expect 2 "keyring with a broken key file" -- "$PLORA" verify "$d" --keyring "$tmp/kr_broken"
says "junk.pem"
mkdir -p "$tmp/kr_revoked"; cp "$REF/keys/rsa3072_pub.pem" "$tmp/kr_revoked/"
openssl pkey -pubin -in "$REF/keys/rsa3072_pub.pem" -outform DER | sha256sum | cut -c1-64 >"$tmp/kr_revoked/revoked"
expect 1 "signature by a revoked key" -- "$PLORA" verify "$d" --keyring "$tmp/kr_revoked" --json
json_has '"valid":true,"trusted":false'

# --- plorad's keys, manifests and votes ---------------------------------------
for i in 0 1 2 3; do
  expect 0 "keygen $i" -- "$PLORA" keygen --out "$tmp/k$i" --bits 2048 --json
  json_has '"key_id"'
done
expect 2 "keygen refuses to overwrite" -- "$PLORA" keygen --out "$tmp/k0" --bits 2048
mkdir -p "$tmp/kr"; for i in 0 1 2; do cp "$tmp/k$i/node.pub" "$tmp/kr/k$i.pem"; done
ad="$tmp/imdb"; mkdir -p "$ad"; cp "$PEFT/distilbert-imdb-r8/"adapter_* "$ad/"
expect 0 "sign (plorad form)" -- "$PLORA" sign "$ad" --key "$tmp/k0/node.key" --domain imdb --json
json_has '"form":"plorad"'; json_has '"plorad_signatures":1'
grep -q '^plorad:$' "$ad/plora.yml" || bad "plorad section missing"
expect 0 "verify plorad manifest" -- "$PLORA" verify "$ad" --keyring "$tmp/kr" --json
json_has '"form":"plorad","valid":true,"trusted":true'; json_has '"form":"prototype-bare","valid":true'
expect 0 "co-sign with k1" -- "$PLORA" sign "$ad" --key "$tmp/k1/node.key" --domain imdb --json
json_has '"plorad_signatures":2'
expect 0 "sign again with k1 replaces its signature" -- "$PLORA" sign "$ad" --key "$tmp/k1/node.key" --domain imdb --json
json_has '"plorad_signatures":2'
expect 0 "verify co-signed" -- "$PLORA" verify "$ad" --keyring "$tmp/kr" --json
[ "$(grep -o '"valid":true' "$tmp/out" | wc -l)" -eq 3 ] || bad "co-signed: want 3 valid signatures: $(cat "$tmp/out")"
cp -r "$ad" "$tmp/cfgtamper"; sed -i 's/"r": 8/"r": 9/' "$tmp/cfgtamper/adapter_config.json"
expect 1 "config changed after signing" -- "$PLORA" verify "$tmp/cfgtamper" --keyring "$tmp/kr" --json
json_has 'config_sha256_mismatch'
cp -r "$ad" "$tmp/domtamper"; sed -i 's/^domain: imdb$/domain: legal/' "$tmp/domtamper/plora.yml"
expect 1 "domain changed after signing" -- "$PLORA" verify "$tmp/domtamper" --keyring "$tmp/kr" --json
json_has '"form":"plorad","valid":false'
expect 1 "plorad manifest, keyring without the signers" -- "$PLORA" verify "$ad" --keyring "$tmp/kr_proto"
proto="$tmp/gpt2p"; mkdir -p "$proto"; cp "$PEFT/gpt2-c_attn-r8/"adapter_* "$proto/"
expect 0 "sign --prototype with the Ed25519 key" -- \
  "$PLORA" sign "$proto" --key "$REF/keys/ed25519_priv.pem" --domain gpt2-c_attn-r8 --prototype
grep -q '^plorad:' "$proto/plora.yml" && bad "--prototype wrote a plorad section"
grep -q '^  algo: ED25519-SHA256$' "$proto/plora.yml" || bad "--prototype with Ed25519: algo"
expect 0 "verify --prototype manifest" -- "$PLORA" verify "$proto" --keyring "$tmp/kr_proto" --json
json_has '"form":"prototype-bare","valid":true,"trusted":true'
edp="$tmp/gpt2ed"; mkdir -p "$edp"; cp "$PEFT/gpt2-c_attn-r8/"adapter_* "$edp/"
expect 0 "sign (plorad form) with the Ed25519 key" -- \
  "$PLORA" sign "$edp" --key "$REF/keys/ed25519_priv.pem" --domain gpt2.c-attn --json
expect 0 "verify Ed25519 plorad manifest" -- "$PLORA" verify "$edp" --keyring "$tmp/kr_proto" --json
json_has '"form":"plorad","valid":true,"trusted":true'
grep -q '^    algo: ED25519$' "$edp/plora.yml" || bad "Ed25519 plorad signature: algo"
expect 2 "sign with a bad domain" -- "$PLORA" sign "$ad" --key "$tmp/k0/node.key" --domain "Not Valid"
says "--domain" "Not Valid"
expect 2 "sign with a public key as --key" -- "$PLORA" sign "$ad" --key "$tmp/k0/node.pub" --domain imdb
says "$tmp/k0/node.pub"
expect 2 "sign a directory without an adapter" -- "$PLORA" sign "$tmp/nothing" --key "$tmp/k0/node.key" --domain imdb
says "$tmp/nothing/adapter_model.safetensors"

# votes: three accepts, then quorum reached / not reached / equivocation
sha=$(sha256sum "$ad/adapter_model.safetensors" | cut -c1-64)
for i in 0 1 2; do
  expect 0 "vote $i" -- "$PLORA" vote "$ad" --key "$tmp/k$i/node.key" --verdict accept \
    --reason "gate passed" --reason "norms ok" --out "$tmp/v$i.json" --json
  json_has "\"adapter\":\"$sha\""
done
grep -q '"type": "plorad-vote"' "$tmp/v0.json" || bad "VOTE.json type"
expect 0 "quorum 3 reached" -- "$PLORA" quorum "$ad" --keyring "$tmp/kr" --quorum 3 "$tmp/v0.json" "$tmp/v1.json" "$tmp/v2.json" --json
json_has '"reached":true,"accepts":3'
expect 1 "quorum 4 not reached" -- "$PLORA" quorum "$ad" --keyring "$tmp/kr" --quorum 4 "$tmp/v0.json" "$tmp/v1.json" "$tmp/v2.json"
grep -q "NOT REACHED" "$tmp/out" || bad "quorum 4: no NOT REACHED line"
expect 0 "quorum 2 from the two publisher signatures alone" -- "$PLORA" quorum "$ad" --keyring "$tmp/kr" --quorum 2 --json
json_has '"accepts":2'
expect 0 "vote reject by k2" -- "$PLORA" vote "$ad" --key "$tmp/k2/node.key" --verdict reject --reason "norm outlier" --out "$tmp/v2r.json"
expect 1 "equivocation: k2 counts for neither side" -- "$PLORA" quorum "$ad" --keyring "$tmp/kr" --quorum 3 "$tmp/v0.json" "$tmp/v1.json" "$tmp/v2.json" "$tmp/v2r.json" --json
json_has '"reached":false,"accepts":2,"rejects":0'; json_has "\"accept\":\"$tmp/v2.json\",\"reject\":\"$tmp/v2r.json\""
expect 0 "vote by an untrusted key" -- "$PLORA" vote "$ad" --key "$tmp/k3/node.key" --verdict accept --out "$tmp/v3.json"
expect 1 "untrusted vote does not count" -- "$PLORA" quorum "$ad" --keyring "$tmp/kr" --quorum 3 "$tmp/v0.json" "$tmp/v1.json" "$tmp/v3.json" --json
json_has '"reason":"untrusted"'
cp -r "$tmp/kr" "$tmp/kr_rev"; openssl pkey -pubin -in "$tmp/k1/node.pub" -outform DER | sha256sum | cut -c1-64 >"$tmp/kr_rev/revoked"
expect 1 "revoked key does not count" -- "$PLORA" quorum "$ad" --keyring "$tmp/kr_rev" --quorum 3 "$tmp/v0.json" "$tmp/v1.json" "$tmp/v2.json" --json
json_has '"reason":"revoked"'
sleep 2
expect 1 "votes on another adapter" -- "$PLORA" quorum "$tmp/gpt2p" --keyring "$tmp/kr" --quorum 1 --max-age 1 "$tmp/v0.json" --json
json_has '"reason":"other_adapter"'
other="$tmp/imdb_copy"; cp -r "$ad" "$other"; rm "$other/plora.yml"
expect 1 "expired votes do not count" -- "$PLORA" quorum "$other" --keyring "$tmp/kr" --quorum 1 --max-age 1 "$tmp/v0.json" --json
json_has '"reason":"expired"'
sed 's/"verdict": "accept"/"verdict": "reject"/' "$tmp/v1.json" >"$tmp/v1forged.json"
expect 1 "a vote edited after signing" -- "$PLORA" quorum "$other" --keyring "$tmp/kr" --quorum 1 "$tmp/v1forged.json" --json
json_has '"reason":"bad_signature"'

# bad vote input: exit 2 naming the file and the field
sed 's/"ts": [0-9]*/"ts": "soon"/' "$tmp/v0.json" >"$tmp/badts.json"
expect 2 "vote file with a string ts" -- "$PLORA" quorum "$ad" --keyring "$tmp/kr" --quorum 1 "$tmp/badts.json"
says "$tmp/badts.json" "ts: expected an integer"
echo '{"type": "plorad-vote"' >"$tmp/trunc.json"
expect 2 "truncated vote file" -- "$PLORA" quorum "$ad" --keyring "$tmp/kr" --quorum 1 "$tmp/trunc.json"
says "$tmp/trunc.json" "line"
expect 2 "missing vote file" -- "$PLORA" quorum "$ad" --keyring "$tmp/kr" --quorum 1 "$tmp/none.json"
says "$tmp/none.json"
expect 2 "quorum 0 is a usage error" -- "$PLORA" quorum "$ad" --keyring "$tmp/kr" --quorum 0 "$tmp/v0.json"
says "--quorum"
expect 2 "vote with a bad verdict" -- "$PLORA" vote "$ad" --key "$tmp/k0/node.key" --verdict maybe --out "$tmp/x.json"
says "--verdict" "maybe"
expect 2 "vote with a newline in a reason" -- "$PLORA" vote "$ad" --key "$tmp/k0/node.key" --verdict accept --reason $'two\nlines' --out "$tmp/x.json"
says "--reason"
expect 2 "vote into a directory that does not exist" -- "$PLORA" vote "$ad" --key "$tmp/k0/node.key" --verdict accept --out "$tmp/no/dir/v.json"
says "$tmp/no/dir/v.json"

# the prototype's attestations (signers found through the keyring) + its
# manifest signature: 4 distinct keys (key0 publisher, key1, key2 tagged, key3 bare)
ga="$tmp/gate_adapter"; mkdir -p "$ga" "$tmp/kr_q"
cp "$PEFT/gpt2-c_attn-r8/"adapter_* "$REF/quorum/gate_adapter/plora.yml" "$ga/"
for i in 0 1 2 3 4; do cp "$REF/quorum/keys/key${i}_pub.pem" "$tmp/kr_q/"; done
cp "$REF/quorum/keys/key0_pub_copy.pem" "$tmp/kr_q/"   # the same key twice counts once
expect 0 "prototype attestations: quorum 4" -- "$PLORA" quorum "$ga" --keyring "$tmp/kr_q" --quorum 4 "$REF/quorum/gate_adapter/attestations.jsonl" --json
json_has '"accepts":4'
expect 1 "prototype attestations: quorum 5" -- "$PLORA" quorum "$ga" --keyring "$tmp/kr_q" --quorum 5 "$REF/quorum/gate_adapter/attestations.jsonl"
printf '{"signer_id": 1, "domain": "x"}\n' >"$tmp/bad.jsonl"
expect 2 "malformed attestation line" -- "$PLORA" quorum "$ga" --keyring "$tmp/kr_q" --quorum 1 "$tmp/bad.jsonl"
says "$tmp/bad.jsonl line 1" "sha256"

echo "cli_keys: $checks checks, $([ $fail -eq 0 ] && echo all passed || echo FAILURES)"
exit $fail
