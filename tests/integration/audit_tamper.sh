#!/usr/bin/env bash
# audit_tamper.sh: the exhaustive tamper sweep (audit_tool sweep: every
# single-byte change, line deletion, swap, duplication, insertion and
# truncation of a 1,000-record log written by plorad's writer, verified with
# the head of its final state), then the same kinds of damage through the
# real `plora verify-log` binary: exit codes, JSON and messages, and the
# prototype's reference logs.
set -euo pipefail
: "${PLORA:?}" "${BUILD_DIR:?}" "${PLORA_FIXTURES:?}"
TOOL="$BUILD_DIR/tests/integration/audit_tool"
REF="$PLORA_FIXTURES/reference/audit"
[ -f "$REF/gate_audit.jsonl" ] || { echo "missing fixture $REF/gate_audit.jsonl"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# the interpreter itself: a pyenv shim costs ~0.45 s per start, and expect runs it ~50 times
PY=$(python3 -c 'import sys; print(sys.executable)') || { echo "FAIL: no python3"; exit 1; }
fail=0
bad() { echo "FAIL: $*"; fail=1; }

"$TOOL" sweep "$tmp" || bad "tamper sweep"
log="$tmp/sweep.jsonl"
n=$(wc -l <"$log")
[ "$n" -eq 1000 ] || bad "sweep log has $n lines"
h1000=$(sed -n '1000p' "$log" | tr -d '\n' | sha256sum | cut -c1-64)
h500=$(sed -n '500p' "$log" | tr -d '\n' | sha256sum | cut -c1-64)

# expect NAME WANT_EXIT WANT_REASON WANT_LINE FILE [ARGS...]
expect() {
  local name=$1 want=$2 reason=$3 line=$4 file=$5; shift 5
  local out rc=0
  out=$("$PLORA" verify-log "$file" --json "$@" 2>"$tmp/err") || rc=$?
  if [ "$rc" -ne "$want" ]; then bad "$name: exit $rc, want $want: $out $(cat "$tmp/err")"; return; fi
  if [ "$want" -ne 2 ]; then
    "$PY" - "$name" "$reason" "$line" "$out" <<'PY' || fail=1
import json, sys
name, reason, line, out = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
want_reason = None if reason == "-" else reason
want_line = None if line == "-" else int(line)
for k in ("ok", "records", "first_bad_line", "reason", "checkpoints_verified", "torn_tail"):
    if k not in out:
        print(f"FAIL: {name}: key {k} missing"); sys.exit(1)
if out["reason"] != want_reason or out["first_bad_line"] != want_line:
    print(f"FAIL: {name}: reason {out['reason']} line {out['first_bad_line']}, want {want_reason} {want_line}")
    sys.exit(1)
PY
  fi
  echo "ok   $name (exit $rc)"
}

expect "clean log" 0 - - "$log"
expect "clean log, head 1000" 0 - - "$log" --head "1000:$h1000"
expect "clean log, older head 500" 0 - - "$log" --head "500:$h500"
expect "head of another line" 1 head_mismatch 500 "$log" --head "500:$h1000"
head -n 999 "$log" >"$tmp/del_last.jsonl"
expect "last line deleted, no head" 0 - - "$tmp/del_last.jsonl"
expect "last line deleted, head" 1 head_mismatch 1000 "$tmp/del_last.jsonl" --head "1000:$h1000"
sed '500s/"ts": 17/"ts": 27/' "$log" >"$tmp/edit500.jsonl"
expect "line 500 edited" 1 prev_hash_mismatch 501 "$tmp/edit500.jsonl"
sed '1000s/"sigterm"/"sigkill"/' "$log" >"$tmp/edit_last.jsonl"
expect "last line edited, no head" 0 - - "$tmp/edit_last.jsonl"
expect "last line edited, head" 1 head_mismatch 1000 "$tmp/edit_last.jsonl" --head "1000:$h1000"
sed '700d' "$log" >"$tmp/del700.jsonl"
expect "line 700 deleted" 1 prev_hash_mismatch 700 "$tmp/del700.jsonl"
size=$(stat -c %s "$log")
head -c $((size - 40)) "$log" >"$tmp/torn.jsonl"
expect "torn tail" 3 torn_tail 1000 "$tmp/torn.jsonl"
expect "torn tail, head" 1 head_mismatch 1000 "$tmp/torn.jsonl" --head "1000:$h1000"
sed 's/$/\r/' "$log" >"$tmp/crlf.jsonl"
expect "CRLF" 1 crlf_line_ending 1 "$tmp/crlf.jsonl"
expect "missing file" 2 - - "$tmp/nope.jsonl"
grep -q "nope.jsonl" "$tmp/err" || bad "missing file: message does not name it"
expect "bad head" 2 - - "$log" --head "1000:xyz"
grep -q -- "--head" "$tmp/err" || bad "bad head: message does not name the option"
expect "keyring not a dir" 2 - - "$log" --keyring "$tmp/nope"
"$PLORA" verify-log --help >/dev/null || bad "--help"
rc=0; "$PLORA" verify-log >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || bad "no argument: exit $rc"
human=$("$PLORA" verify-log "$tmp/edit500.jsonl" || true)
grep -q "line 501" <<<"$human" || bad "human output does not name the line: $human"

# --store: each merge recomputed from the adapter store (DIR/<id>/)
PEFT="$PLORA_FIXTURES/peft"
store="$tmp/store"; mkdir -p "$store"
for a in distilbert-emotion-r8 distilbert-imdb-r8; do
  [ -f "$PEFT/$a/adapter_model.safetensors" ] || { echo "missing fixture $PEFT/$a"; exit 1; }
  id=$(sha256sum "$PEFT/$a/adapter_model.safetensors" | cut -c1-64)
  cp -r "$PEFT/$a" "$store/$id"
done
"$PLORA" merge "$PEFT/distilbert-emotion-r8" "$PEFT/distilbert-imdb-r8" --out "$tmp/mout" --json >/dev/null \
  || bad "plora merge"
oid=$(sha256sum "$tmp/mout/adapter_model.safetensors" | cut -c1-64)
cp -r "$tmp/mout" "$store/$oid"
"$TOOL" mkmerge "$tmp/m.jsonl" "$store/$oid/certificate.json" || bad "mkmerge"
expect "merge log, no store" 0 - - "$tmp/m.jsonl"
expect "merge replayed from the store" 0 - - "$tmp/m.jsonl" --store "$store"
grep -q '"merges_replayed":1' <<<"$("$PLORA" verify-log "$tmp/m.jsonl" --store "$store" --json)" || bad "merge not replayed"
cp "$store/$oid/certificate.json" "$tmp/cert.orig"
"$PY" - "$store/$oid/certificate.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["frob_merged"] *= 1.001
json.dump(c, open(sys.argv[1], "w"))
PY
expect "certificate edited after the fact" 1 merge_mismatch 8 "$tmp/m.jsonl" --store "$store"
"$TOOL" mkmerge "$tmp/m2.jsonl" "$store/$oid/certificate.json" || bad "mkmerge forged"
expect "log and certificate forged together" 1 merge_mismatch 8 "$tmp/m2.jsonl" --store "$store"
cp "$tmp/cert.orig" "$store/$oid/certificate.json"
in1=$(sha256sum "$PEFT/distilbert-emotion-r8/adapter_model.safetensors" | cut -c1-64)
cp "$PEFT/distilbert-imdb-r8/adapter_model.safetensors" "$store/$in1/adapter_model.safetensors"
expect "input adapter swapped in the store" 1 merge_mismatch 8 "$tmp/m.jsonl" --store "$store"
rm -rf "${store:?}/$in1"
expect "input adapter missing from the store" 2 - - "$tmp/m.jsonl" --store "$store"
grep -q "$in1" "$tmp/err" || bad "missing input: message does not name it: $(cat "$tmp/err")"

# the prototype's logs (verdicts documented in crypto/audit_verify.h)
h27=$(sed -n '27p' "$REF/gate_audit.jsonl" | tr -d '\n' | sha256sum | cut -c1-64)
while read -r file code reason line hcode hreason hline; do
  expect "ref $file" "$code" "$reason" "$line" "$REF/$file"
  expect "ref $file --head 27" "$hcode" "$hreason" "$hline" "$REF/$file" --head "27:$h27"
done <<'TABLE'
gate_audit.jsonl 0 - - 0 - -
tampered/edit_middle_record13_passed.jsonl 1 prev_hash_mismatch 14 1 prev_hash_mismatch 14
tampered/delete_line_record10.jsonl 1 prev_hash_mismatch 10 1 prev_hash_mismatch 10
tampered/truncated_last_line.jsonl 3 torn_tail 27 1 head_mismatch 27
tampered/edit_last_record.jsonl 0 - - 1 head_mismatch 27
tampered/delete_last_line.jsonl 0 - - 1 head_mismatch 27
tampered/edit_first_record.jsonl 1 prev_hash_mismatch 2 1 prev_hash_mismatch 2
tampered/delete_first_line.jsonl 1 prev_hash_mismatch 1 1 prev_hash_mismatch 1
tampered/swap_records_5_6.jsonl 1 prev_hash_mismatch 5 1 prev_hash_mismatch 5
tampered/reserialized_record8_compact.jsonl 1 prev_hash_mismatch 9 1 prev_hash_mismatch 9
tampered/rechained_forgery_record4.jsonl 0 - - 1 head_mismatch 27
tampered/crlf_line_endings.jsonl 1 crlf_line_ending 1 1 crlf_line_ending 1
tampered/no_final_newline.jsonl 3 torn_tail 27 1 head_mismatch 27
tampered/blank_line_appended.jsonl 1 blank_line 28 1 blank_line 28
tampered/empty.jsonl 0 - - 1 head_mismatch 1
TABLE
exit $fail
