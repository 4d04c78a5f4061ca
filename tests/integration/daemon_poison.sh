#!/usr/bin/env bash
# daemon_poison.sh: A publishes two good adapters (gpt2, distilbert-imdb) and
# three bad ones: gpt2 with one NaN written into a LoRA tensor (signed), imdb
# with one lora_B tensor scaled by 1e4 (signed), and distilbert-emotion with
# no plora.yml. B joins. No bad adapter may commit or enter a merge on either
# node; each node that gated one rejected it with the right reason, in
# /status and in a gate record of its audit log; the good ones commit and
# merge (gpt2 alone; imdb alone).
. "$(dirname "$0")/lib_daemon.sh"
itest_init daemon_poison

mknode A; mknode B
signed_copy gpt2-c_attn-r8 "$T/good-gpt2" "$T/A/node.key" arithmetic
signed_copy distilbert-imdb-r8 "$T/good-imdb" "$T/A/node.key" sentiment
# poison SRC DST MODE: copy a fixture and damage one LoRA tensor in place.
poison() {
  mkdir -p "$2"
  cp "$PEFT/$1/adapter_model.safetensors" "$PEFT/$1/adapter_config.json" "$2/"
  chmod u+w "$2"/*
  "$PY" - "$2/adapter_model.safetensors" "$3" <<'PY' || die "could not poison $2"
import array, json, struct, sys
path, mode = sys.argv[1], sys.argv[2]
b = bytearray(open(path, "rb").read())
hlen = struct.unpack("<Q", b[:8])[0]
hdr = json.loads(b[8:8 + hlen])
want = "lora_A" if mode == "nan" else "lora_B"
name = sorted(k for k, v in hdr.items() if k != "__metadata__" and want in k and v["dtype"] == "F32")[0]
lo, hi = (8 + hlen + o for o in hdr[name]["data_offsets"])
a = array.array("f", bytes(b[lo:hi]))
if mode == "nan":
    a[len(a) // 2] = float("nan")
else:
    for i in range(len(a)):
        a[i] *= 1e4
b[lo:hi] = a.tobytes()
open(path, "wb").write(b)
print(name)
PY
}
poison gpt2-c_attn-r8 "$T/nan" nan >/dev/null
poison distilbert-imdb-r8 "$T/outlier" scale >/dev/null
for d in nan outlier; do
  out=$("$PLORA" sign "$T/$d" --key "$T/A/node.key" --domain poisoned 2>&1) || die "plora sign $T/$d: $out"
done
mkdir -p "$T/unsigned"
cp "$PEFT/distilbert-emotion-r8/adapter_model.safetensors" "$PEFT/distilbert-emotion-r8/adapter_config.json" "$T/unsigned/"
g1=$(sha256_of "$T/good-gpt2/adapter_model.safetensors"); g2=$(sha256_of "$T/good-imdb/adapter_model.safetensors")
nan=$(sha256_of "$T/nan/adapter_model.safetensors"); outl=$(sha256_of "$T/outlier/adapter_model.safetensors")
uns=$(sha256_of "$T/unsigned/adapter_model.safetensors")
declare -A REASON=([$nan]='non_finite_values' [$outl]='tensor_norm_outlier' [$uns]='manifest_missing|signature_quorum_not_met')
declare -A WHAT=([$nan]='NaN adapter' [$outl]='norm outlier' [$uns]='unsigned adapter')

pub="[\"$T/good-gpt2\", \"$T/nan\", \"$T/outlier\", \"$T/unsigned\", \"$T/good-imdb\"]"
mkconfig A "node.publish=$pub" node.publish_domain=general
mkconfig B
start_node A
start_node B --join "$(node_listen A)"
merged="any(m['base_model'] == 'gpt2' and m['inputs'] == ['$g1'] for m in s['merged']) and any(m['base_model'] == 'distilbert-base-uncased' and m['inputs'] == ['$g2'] for m in s['merged'])"
for n in A B; do
  for g in "$g1" "$g2"; do wait_until 30 "$n commits good adapter $g" held_committed "$n" "$g"; done
  wait_until 20 "$n merges the good adapters (gpt2 alone, imdb alone)" st "$n" "$merged" || info "$n merged: $(st "$n" "s['merged']")"
done
for bad in "$nan" "$outl" "$uns"; do
  wait_until 20 "A gates the ${WHAT[$bad]} $bad" st A "ad(s, '$bad').get('gate') in ('accept', 'reject')"
done
sleep 1   # a few more rounds: a wrong commit or merge would show now
for n in A B; do
  for bad in "$nan" "$outl" "$uns"; do
    w="${WHAT[$bad]}"
    st "$n" "all('$bad' not in m['inputs'] for m in s['merged'])" >/dev/null || fail "$n: $w $bad is a merge input: $(st "$n" "s['merged']")"
    st "$n" "ad(s, '$bad').get('state') != 'committed'" >/dev/null || fail "$n: $w committed"
    if [ "$n" = B ] && ! st B "ad(s, '$bad') != {}" >/dev/null; then info "B: $w not taken (fine)"; continue; fi
    [ "$n" = B ] && ! st B "ad(s, '$bad').get('gate') in ('accept', 'reject')" >/dev/null && continue
    st "$n" "ad(s, '$bad').get('gate') == 'reject'" >/dev/null || fail "$n: $w not rejected: $(st "$n" "ad(s, '$bad')")"
    st "$n" "any(__import__('re').match(r'(${REASON[$bad]})', x) for x in ad(s, '$bad').get('reasons', []))" >/dev/null ||
      fail "$n: $w rejected without reason ${REASON[$bad]}: $(st "$n" "ad(s, '$bad').get('reasons')")"
  done
done
st A "s['gate_verdicts']['reject'] >= 3 and s['gate_verdicts']['accept'] >= 2" >/dev/null || fail "A gate_verdicts: $(st A "s['gate_verdicts']")"
stop_node B; stop_node A
for n in A B; do
  verify_log "$n"
  for bad in "$nan" "$outl" "$uns"; do
    audit_has "$n" "r.get('type') == 'commit' and r['adapter'] == '$bad'" && fail "$n: audit log commits the ${WHAT[$bad]}"
    audit_has "$n" "r.get('type') == 'merge' and '$bad' in r['inputs']" && fail "$n: audit log merges the ${WHAT[$bad]}"
    [ "$n" = B ] && ! audit_has B "r.get('type') == 'gate' and r['adapter'] == '$bad'" && continue
    audit_has "$n" "r.get('type') == 'gate' and r['adapter'] == '$bad' and r['verdict'] == 'reject' and any(__import__('re').match(r'(${REASON[$bad]})', x) for x in r['reasons'])" ||
      fail "$n: no gate reject record naming ${REASON[$bad]} for the ${WHAT[$bad]} $bad"
  done
  for g in "$g1" "$g2"; do
    audit_has "$n" "r.get('type') == 'commit' and r['adapter'] == '$g'" || fail "$n: no commit record for good adapter $g"
  done
done
itest_end
