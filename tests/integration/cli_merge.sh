#!/usr/bin/env bash
# tests/integration/cli_merge.sh: `plora merge` end to end on the real PEFT
# fixtures: the merged adapter reads back through `plora inspect`, the
# certificate holds DESIGN.md's fields and the trust region, one adapter at
# weight 1 gives itself back, the KLD budget and --fisher read plora.yml's
# plorad section, and every bad input exits 2 naming the file or option.
set -u
PLORA=${PLORA:?PLORA must name the plora binary}
FX=${PLORA_FIXTURES:?PLORA_FIXTURES must name the fixtures directory}/peft
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
IMDB=$FX/distilbert-imdb-r8
EMO=$FX/distilbert-emotion-r8
GPT2=$FX/gpt2-c_attn-r8
for d in "$IMDB" "$EMO" "$GPT2"; do
  [ -f "$d/adapter_model.safetensors" ] || { echo "FAIL: fixture $d missing" >&2; exit 1; }
done

# 1. --help exits 0
if grep -q -- '--kld-budget' <<<"$("$PLORA" merge --help)"; then ok; else bad "--help"; fi

# 2. the distilbert pair, trust region + rank 8: certificate fields and bounds
rc=0
"$PLORA" merge "$IMDB" "$EMO" --tau-rel 0.5 --rank 8 --out "$tmp/m1" --json >"$tmp/m1.json" || rc=$?
if [ $rc -eq 0 ] && [ "$(wc -l <"$tmp/m1.json")" -eq 1 ] &&
   cmp -s <(jq -S . "$tmp/m1.json") <(jq -S . "$tmp/m1/certificate.json") &&
   jq -e '.format == "plorad-merge-certificate/1" and (.inputs|length) == 2
          and .inputs[0].sha256 == "f6af8341ce7009c30ebf11ff0f361b01dd7eae004201d7015bab7a28c8ef4a43"
          and .inputs[0].r == 8 and .inputs[0].alpha == 16 and .inputs[0].scaling == 2
          and .weights == [0.5, 0.5] and .weights_mode == "uniform"
          and (.scale - 0.5 | fabs) < 1e-12 and .frob_out <= .tau * (1 + 1e-12)
          and (.tau - 0.5 * .frob_merged | fabs) < 1e-9 and .rank_out == 8 and .dropped_energy > 0
          and (.modules|length) == 12 and (.modules[0]|has("frob") and has("dropped_energy"))
          and .passthrough_from == 0 and (.output.sha256|length) == 64 and .kld.bound == null' \
          "$tmp/m1.json" >/dev/null; then ok; else bad "pair merge rc=$rc: $(head -c 400 "$tmp/m1.json")"; fi

# 3. the output is a PEFT adapter plorad reads back: r = alpha = 8, scaling 1,
#    its per-module norms are the certificate's frob_out, its sha256 the certificate's
rc=0
"$PLORA" inspect "$IMDB" --json >"$tmp/i0.json"
"$PLORA" inspect "$tmp/m1" --json >"$tmp/i1.json" || rc=$?
if [ $rc -eq 0 ] &&
   jq -e --slurpfile c "$tmp/m1.json" --slurpfile i "$tmp/i0.json" '.peft.r == 8 and .peft.lora_alpha == 8
          and .sha256 == $c[0].output.sha256 and .other_tensors == $i[0].other_tensors
          and ([.modules[] | .scaling == 1 and .shape_out_in == [768, 768]] | all)
          and ([range(0; 12) as $i | ((.modules[$i].frob - $c[0].modules[$i].frob_out) | fabs)
                <= 1e-5 * $c[0].modules[$i].frob_out] | all)' "$tmp/i1.json" >/dev/null &&
   [ "$(sha256sum <"$tmp/m1/adapter_model.safetensors" | cut -c1-64)" = "$(jq -r .output.sha256 "$tmp/m1.json")" ]
then ok; else bad "inspect of merged adapter rc=$rc"; fi

# 4. gpt2 (fan_in_fan_out) alone at weight 1, no rank: gives itself back
"$PLORA" inspect "$GPT2" --json >"$tmp/g0.json"
rc=0
"$PLORA" merge "$GPT2" --weights 1 --out "$tmp/g1" >/dev/null || rc=$?
"$PLORA" inspect "$tmp/g1" --json >"$tmp/g1.json" 2>/dev/null
if [ $rc -eq 0 ] && jq -e --slurpfile a "$tmp/g0.json" '.peft.fan_in_fan_out == true
      and .modules[0].shape_out_in == $a[0].modules[0].shape_out_in
      and ([range(0; .modules|length) as $i | ((.modules[$i].frob - $a[0].modules[$i].frob) | fabs)
            <= 1e-6 * $a[0].modules[$i].frob] | all)' "$tmp/g1.json" >/dev/null
then ok; else bad "gpt2 identity rc=$rc"; fi

# 5. weights [1, -1] of an adapter with itself: the delta vanishes
rc=0
"$PLORA" merge "$IMDB" "$IMDB" --weights 1,-1 --out "$tmp/z" --json >"$tmp/z.json" || rc=$?
if [ $rc -eq 0 ] && jq -e '.frob_merged < 1e-9 and .weights == [1, -1]' "$tmp/z.json" >/dev/null
then ok; else bad "self-cancel rc=$rc"; fi

# 6. plorad section of plora.yml: KLD budget scales weights; --fisher normalises
mk() {  # mk NAME SRC KLD_EPS FISHER
  mkdir -p "$tmp/$1"
  cp "$2/adapter_model.safetensors" "$2/adapter_config.json" "$tmp/$1/"
  sed "s/^domain: .*/domain: $1/" "$FX/../reference/manifests/rsa_sign_plasmid/$(basename "$2")/plora.yml" \
    >"$tmp/$1/plora.yml"
  printf 'plorad:\n  format: 1\n  config_sha256: %s\n  kld_eps: %s\n  fisher: %s\n  signatures: []\n' \
    "$(sha256sum <"$2/adapter_config.json" | cut -c1-64)" "$3" "$4" >>"$tmp/$1/plora.yml"
}
mk a "$IMDB" 0.04 3
mk b "$EMO" 0.01 1
rc=0
"$PLORA" merge "$tmp/a" "$tmp/b" --kld-budget 0.01 --out "$tmp/k" --json >"$tmp/k.json" 2>"$tmp/k.err" || rc=$?
# bound of (.5, .5): (.5*.2 + .5*.1)^2 = .0225 > .01: scale .1/.15
if [ $rc -eq 0 ] && jq -e '.kld.scaled == true and (.kld.bound_given_weights - 0.0225 | fabs) < 1e-12
      and (.kld.bound - 0.01 | fabs) < 1e-12 and (.kld.weight_scale - (0.1/0.15) | fabs) < 1e-12
      and (.weights[0] - 0.5 * 0.1/0.15 | fabs) < 1e-12 and .inputs[1].kld_eps == 0.01' "$tmp/k.json" >/dev/null
then ok; else bad "kld budget rc=$rc: $(cat "$tmp/k.err")"; fi
rc=0
"$PLORA" merge "$tmp/a" "$tmp/b" --fisher --out "$tmp/f" --json >"$tmp/f.json" 2>"$tmp/f.err" || rc=$?
if [ $rc -eq 0 ] && jq -e '.weights_mode == "fisher" and .weights == [0.75, 0.25] and .kld.scaled == false
      and (.kld.bound - (0.75 * 0.2 + 0.25 * 0.1) * (0.75 * 0.2 + 0.25 * 0.1) | fabs) < 1e-12' \
      "$tmp/f.json" >/dev/null
then ok; else bad "fisher rc=$rc: $(cat "$tmp/f.err")"; fi

# 7. bad inputs: exit 2 and a message naming the file / option / field
cp -r "$IMDB" "$tmp/otherbase"
sed -i 's/"base_model_name_or_path": *"[^"]*"/"base_model_name_or_path": "bert-base-cased"/' "$tmp/otherbase/adapter_config.json"
cp -r "$IMDB" "$tmp/fifo"
sed -i 's/"fan_in_fan_out": *false/"fan_in_fan_out": true/' "$tmp/fifo/adapter_config.json"
expect2() {  # expect2 WHAT PATTERN ARGS...
  local what=$1 pat=$2 rc=0
  shift 2
  "$PLORA" merge "$@" >"$tmp/e.out" 2>"$tmp/e.err" || rc=$?
  if [ $rc -eq 2 ] && grep -q -- "$pat" "$tmp/e.err"; then ok; else bad "$what: rc=$rc: $(cat "$tmp/e.err")"; fi
}
expect2 "base model differs" "base_model_name_or_path" "$IMDB" "$tmp/otherbase" --out "$tmp/x1"
expect2 "fan_in_fan_out differs" "fan_in_fan_out" "$IMDB" "$tmp/fifo" --out "$tmp/x2"
expect2 "weights count" "--weights" "$IMDB" "$EMO" --weights 1 --out "$tmp/x3"
expect2 "weights not numbers" "--weights" "$IMDB" --weights 1,x --out "$tmp/x4"
expect2 "tau and tau-rel" "exclude" "$IMDB" --tau 1 --tau-rel 0.5 --out "$tmp/x5"
expect2 "no --out" "--out" "$IMDB"
expect2 "fisher without manifest" "plorad.fisher" "$IMDB" "$EMO" --fisher --out "$tmp/x6"
expect2 "kld budget without eps" "kld_eps" "$IMDB" "$EMO" --kld-budget 0.1 --out "$tmp/x7"
expect2 "missing adapter" "$tmp/nope" "$tmp/nope" --out "$tmp/x8"
expect2 "bad rank" "--rank" "$IMDB" --rank 0 --out "$tmp/x9"
expect2 "bad tau" "--tau" "$IMDB" --tau -1 --out "$tmp/x10"
expect2 "out is an input" "is input adapter 2" "$IMDB" "$tmp/fifo" --out "$tmp/fifo/../fifo"
truncate -s 1000 "$tmp/fifo/adapter_model.safetensors"
expect2 "truncated safetensors" "adapter_model.safetensors" "$tmp/fifo" --out "$tmp/x11"

echo "cli_merge: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
