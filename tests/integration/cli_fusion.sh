#!/usr/bin/env bash
# cli_fusion.sh: `plora inspect` and `plora gate` through the real binary on
# the three PEFT fixtures and on damaged copies: module counts, r, alpha,
# scaling, shapes and norms; gate accept (0), reject with every reason (1),
# bad input (2) with a message naming the file and the field.
set -euo pipefail
: "${PLORA:?}" "${PLORA_FIXTURES:?}"
PEFT="$PLORA_FIXTURES/peft"
REF="$PLORA_FIXTURES/reference"
for a in gpt2-c_attn-r8 distilbert-imdb-r8 distilbert-emotion-r8; do
  for f in adapter_config.json adapter_model.safetensors; do
    [ -f "$PEFT/$a/$f" ] || { echo "missing fixture $PEFT/$a/$f"; exit 1; }
  done
done
# Debian's python3 first: a pyenv shim takes seconds per start
PY=$(command -v /usr/bin/python3 || command -v python3) || { echo "python3 is needed to read the JSON output"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0 checks=0
bad() { echo "FAIL: $*"; fail=1; }
expect() {
  local want=$1 what=$2 rc=0; shift 3
  checks=$((checks + 1))
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
  [ "$rc" -eq "$want" ] || bad "$what: exit $rc, want $want; stderr: $(head -c 400 "$tmp/err"); stdout: $(head -c 400 "$tmp/out")"
}
says() { local w; for w in "$@"; do grep -qF -- "$w" "$tmp/err" || bad "stderr lacks \"$w\": $(head -c 400 "$tmp/err")"; done; }
# py 'python expression over j (the JSON on stdout)' WHAT
py() {
  checks=$((checks + 1))
  "$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$tmp/out" ||
    bad "$2: $(head -c 600 "$tmp/out")"
}

# --- help and usage ----------------------------------------------------------
for c in inspect gate; do
  expect 0 "$c --help" -- "$PLORA" "$c" --help
  grep -q "usage: plora $c" "$tmp/out" || bad "$c --help prints no usage"
  expect 2 "$c without ADAPTER_DIR" -- "$PLORA" "$c"
  expect 2 "$c with an unknown option" -- "$PLORA" "$c" --no-such-option x
done
expect 2 "gate without --policy" -- "$PLORA" gate "$PEFT/gpt2-c_attn-r8"
says "--policy"

# --- inspect on each fixture -------------------------------------------------
# name r alpha scaling out in others first-module
while read -r a alpha scaling out others first; do
  expect 0 "inspect $a" -- "$PLORA" inspect --json "$PEFT/$a"
  py "list(j) == ['path','sha256','peft','modules','other_tensors']" "$a: top-level keys"
  py "list(j['peft']) == ['r','lora_alpha','use_rslora','target_modules','fan_in_fan_out']" "$a: peft keys"
  py "len(j['modules']) == 12 and len(j['other_tensors']) == $others" "$a: 12 modules, $others other tensors"
  py "all(list(m) == ['name','r','alpha','scaling','shape_out_in','dtype','frob'] for m in j['modules'])" "$a: module keys"
  py "all(m['r'] == 8 and m['alpha'] == $alpha and m['scaling'] == $scaling for m in j['modules'])" "$a: r/alpha/scaling"
  py "all(m['shape_out_in'] == [$out, 768] and m['dtype'] == 'F32' and m['frob'] > 0 for m in j['modules'])" "$a: shapes, frob"
  py "j['modules'][0]['name'] == '$first'" "$a: first module name"
  py "j['sha256'] == '$(sha256sum "$PEFT/$a/adapter_model.safetensors" | cut -d' ' -f1)'" "$a: sha256"
  expect 0 "inspect $a (text)" -- "$PLORA" inspect "$PEFT/$a"
  grep -q "modules  12" "$tmp/out" || bad "$a: text output lacks the module count"
done <<EOF
gpt2-c_attn-r8 8 1 2304 1 transformer.h.0.attn.c_attn
distilbert-imdb-r8 16 2 768 4 distilbert.transformer.layer.0.attention.q_lin
distilbert-emotion-r8 16 2 768 4 distilbert.transformer.layer.0.attention.q_lin
EOF
expect 0 "inspect gpt2 flags" -- "$PLORA" inspect --json "$PEFT/gpt2-c_attn-r8"
py "j['peft']['fan_in_fan_out'] is True and j['peft']['target_modules'] == ['c_attn']" "gpt2: fan_in_fan_out"
py "j['other_tensors'] == ['base_model.model.score.weight']" "gpt2: score head passed through"

expect 2 "inspect a missing dir" -- "$PLORA" inspect "$tmp/nope"
says "$tmp/nope" "adapter_config.json"
mkdir "$tmp/cut"; cp "$PEFT/gpt2-c_attn-r8/adapter_config.json" "$tmp/cut/"
head -c 4000 "$PEFT/gpt2-c_attn-r8/adapter_model.safetensors" >"$tmp/cut/adapter_model.safetensors"
expect 2 "inspect a truncated file" -- "$PLORA" inspect "$tmp/cut"
says "adapter_model.safetensors" "data_offsets"

# --- gate --------------------------------------------------------------------
cat >"$tmp/gpt2.yml" <<EOF
base_model: gpt2
allowed_ranks: [4, 8, 16]
allowed_targets: [c_attn]
max_size_bytes: 10000000
norm_z_threshold: 6
EOF
expect 0 "gate gpt2" -- "$PLORA" gate --json "$PEFT/gpt2-c_attn-r8" --policy "$tmp/gpt2.yml"
py "j['verdict'] == 'accept' and j['reasons'] == [] and j['modules'] == 12" "gpt2 accepted"
expect 1 "gate imdb under the gpt2 policy" -- "$PLORA" gate --json "$PEFT/distilbert-imdb-r8" --policy "$tmp/gpt2.yml"
py "[r['reason'] for r in j['reasons']] == ['base_model_mismatch','targets_not_allowed']" "imdb: both reasons"
expect 1 "gate imdb (text)" -- "$PLORA" gate "$PEFT/distilbert-imdb-r8" --policy "$tmp/gpt2.yml"
grep -q "^REJECT" "$tmp/out" && grep -q "reason base_model_mismatch" "$tmp/out" || bad "text verdict"

# a NaN and a x100 tensor in a copy: exactly their reasons
mkdir "$tmp/nan"; cp "$PEFT/gpt2-c_attn-r8/"* "$tmp/nan/"
"$PY" - "$tmp/nan/adapter_model.safetensors" <<'EOF'
import json, struct, sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
t = h['base_model.model.transformer.h.2.attn.c_attn.lora_A.weight']['data_offsets']
b[8 + n + t[0] + 40:8 + n + t[0] + 44] = struct.pack('<f', float('nan'))
t = h['base_model.model.transformer.h.7.attn.c_attn.lora_B.weight']['data_offsets']
for o in range(8 + n + t[0], 8 + n + t[1], 4):
    b[o:o + 4] = struct.pack('<f', struct.unpack('<f', b[o:o + 4])[0] * 100)
open(p, 'wb').write(b)
EOF
expect 1 "gate NaN + outlier" -- "$PLORA" gate --json "$tmp/nan" --policy "$tmp/gpt2.yml"
py "[r['reason'] for r in j['reasons']] == ['non_finite_values','tensor_norm_outlier']" "NaN and outlier"
py "'h.2.attn.c_attn.lora_A' in j['reasons'][0]['detail'] and 'h.7.attn.c_attn.lora_B' in j['reasons'][1]['detail']" "details name the tensors"

# signatures: the prototype's quorum adapter, keys key0..4
mkdir "$tmp/q" "$tmp/kr"
cp "$PEFT/gpt2-c_attn-r8/"* "$REF/quorum/gate_adapter/"* "$tmp/q/"
cp "$REF/quorum/keys/key"[0-4]"_pub.pem" "$tmp/kr/"
printf 'signatures_required: true\nquorum: 4\nrequire_manifest: true\n' >"$tmp/q4.yml"
printf 'signatures_required: true\nquorum: 5\n' >"$tmp/q5.yml"
expect 0 "quorum 4 met" -- "$PLORA" gate --json "$tmp/q" --policy "$tmp/q4.yml" --keyring "$tmp/kr"
py "j['quorum'] == {'required': 4, 'accepts': 4}" "4 distinct keys"
expect 1 "quorum 5 not met" -- "$PLORA" gate --json "$tmp/q" --policy "$tmp/q5.yml" --keyring "$tmp/kr"
py "[r['reason'] for r in j['reasons']] == ['signature_quorum_not_met']" "quorum reason"
printf '\x01' | dd of="$tmp/q/adapter_model.safetensors" bs=1 seek=500000 conv=notrunc 2>/dev/null
expect 1 "bit flip under signatures" -- "$PLORA" gate --json "$tmp/q" --policy "$tmp/q4.yml" --keyring "$tmp/kr"
py "[r['reason'] for r in j['reasons']] == ['sha256_mismatch','signature_quorum_not_met']" "flip: sha + quorum"

# probe: a real program, exit code -> verdict
printf '#!/bin/sh\n[ -f "$1/adapter_config.json" ] || exit 9\nexit %s\n' 0 >"$tmp/probe_ok"
printf '#!/bin/sh\nexit 3\n' >"$tmp/probe_bad"
printf '#!/bin/sh\nsleep 30\n' >"$tmp/probe_slow"
chmod +x "$tmp/probe_ok" "$tmp/probe_bad" "$tmp/probe_slow"
for p in ok bad slow; do
  printf 'probe:\n  argv: [%s, "{adapter}"]\n  timeout_s: 1\n' "$tmp/probe_$p" >"$tmp/p_$p.yml"
done
printf 'probe:\n  argv: [%s/no-such-probe]\n' "$tmp" >"$tmp/p_missing.yml"
expect 0 "probe exit 0" -- "$PLORA" gate "$PEFT/gpt2-c_attn-r8" --policy "$tmp/p_ok.yml"
expect 1 "probe exit 3" -- "$PLORA" gate --json "$PEFT/gpt2-c_attn-r8" --policy "$tmp/p_bad.yml"
py "j['reasons'][0]['reason'] == 'probe_failed' and 'exited with 3' in j['reasons'][0]['detail']" "probe exit code"
start=$(date +%s)
expect 1 "probe timeout" -- "$PLORA" gate --json "$PEFT/gpt2-c_attn-r8" --policy "$tmp/p_slow.yml"
py "'timed out' in j['reasons'][0]['detail']" "probe timeout detail"
[ $(( $(date +%s) - start )) -lt 10 ] || bad "probe timeout did not kill the probe"
expect 1 "probe missing" -- "$PLORA" gate --json "$PEFT/gpt2-c_attn-r8" --policy "$tmp/p_missing.yml"
py "'could not run' in j['reasons'][0]['detail']" "probe missing detail"

# bad input: exit 2 naming the file and the field
printf 'qorum: 2\n' >"$tmp/typo.yml"
expect 2 "policy with a typo" -- "$PLORA" gate "$PEFT/gpt2-c_attn-r8" --policy "$tmp/typo.yml"
says "$tmp/typo.yml" "qorum"
printf 'allowed_ranks: [8\n' >"$tmp/broken.yml"
expect 2 "policy not YAML" -- "$PLORA" gate "$PEFT/gpt2-c_attn-r8" --policy "$tmp/broken.yml"
says "$tmp/broken.yml" "line"
expect 2 "missing policy" -- "$PLORA" gate "$PEFT/gpt2-c_attn-r8" --policy "$tmp/none.yml"
says "$tmp/none.yml"
expect 2 "adapter dir missing" -- "$PLORA" gate "$tmp/nope" --policy "$tmp/gpt2.yml"
says "$tmp/nope"
expect 2 "keyring missing" -- "$PLORA" gate "$tmp/q" --policy "$tmp/q4.yml" --keyring "$tmp/no-keyring"
says "$tmp/no-keyring"
echo '{"not": "a vote"}' >"$tmp/vote.json"
expect 2 "bad vote file" -- "$PLORA" gate "$tmp/q" --policy "$tmp/q4.yml" --keyring "$tmp/kr" --vote "$tmp/vote.json"
says "$tmp/vote.json"

echo "cli_fusion: $checks checks, $([ $fail -eq 0 ] && echo ok || echo FAILED)"
exit $fail
