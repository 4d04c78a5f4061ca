#!/usr/bin/env bash
# tests/integration/cli_sim.sh: `plora sim` end to end: DESIGN.md's JSON
# fields, determinism (two runs, identical bytes), full coverage on er/ws/ba
# at n = 200 in exactly the eccentricity bound (pull-only rounds), duplicate
# payload factor <= 1.05 without faults, fault runs that never merge a bad
# adapter and detect equivocation, and exit 2 naming the flag for bad input.
set -u
PLORA=${PLORA:?PLORA must name the plora binary}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
sim() { "$PLORA" sim --adapter-bytes 300000 --json "$@"; }

# 1. --help exits 0 and names the fault keys
if "$PLORA" sim --help >"$tmp/help" && grep -q "equivocators=E" "$tmp/help"; then ok; else bad "--help"; fi

# 2. DESIGN.md's fields, one JSON line
sim --topology er -n 200 --seed 5 >"$tmp/a.json"
rc=$?
if [ $rc -eq 0 ] && [ "$(wc -l <"$tmp/a.json")" -eq 1 ] &&
   jq -e 'has("n") and has("topology") and has("seed") and has("adapters") and has("rounds_to_coverage")
          and has("eccentricity_bound") and has("predicted_rounds") and has("duplicate_payload_factor")
          and has("bytes_sent") and has("messages") and has("coverage_by_round") and has("wrongly_merged")
          and has("equivocations_detected") and .n == 200 and .topology == "er" and .seed == 5
          and .adapters == 3 and (.coverage_by_round | last) == 200' "$tmp/a.json" >/dev/null
then ok; else bad "json fields rc=$rc"; fi

# 3. determinism: the same run twice gives the same bytes; another seed differs
sim --topology er -n 200 --seed 5 >"$tmp/b.json"
sim --topology er -n 200 --seed 6 >"$tmp/c.json"
if cmp -s "$tmp/a.json" "$tmp/b.json" && ! cmp -s "$tmp/a.json" "$tmp/c.json"; then ok; else bad "determinism"; fi
sim --topology er -n 200 --seed 2 --faults drop=0.01 >"$tmp/d1.json"
sim --topology er -n 200 --seed 2 --faults drop=0.01 >"$tmp/d2.json"
if cmp -s "$tmp/d1.json" "$tmp/d2.json"; then ok; else bad "determinism with drops"; fi

# 4. coverage on each topology, within the eccentricity bound's rounds, duplicate factor <= 1.05,
#    and bytes well below the prototype's flood (ratio > 5)
for t in er ws ba; do
    for s in 1 2; do
        sim --topology "$t" -n 200 --seed "$s" >"$tmp/$t.json"
        rc=$?
        if [ $rc -eq 0 ] && jq -e '[.rounds_to_coverage, .eccentricity_bound] | transpose
               | all(.[0] != null and .[0] >= .[1] and .[0] <= (.[1] * 1.5))' "$tmp/$t.json" >/dev/null &&
           jq -e '.duplicate_payload_factor >= 1 and .duplicate_payload_factor <= 1.05
               and .flood_json_ratio > 5 and .wrongly_merged == 0 and .commits == 600' "$tmp/$t.json" >/dev/null
        then ok; else bad "coverage $t seed $s rc=$rc: $(jq -c '[.rounds_to_coverage,.eccentricity_bound,.duplicate_payload_factor]' "$tmp/$t.json")"; fi
    done
done

# 5. flood-json mode reports the prototype's bytes (the same figure plorad mode quotes)
"$PLORA" sim --topology er -n 200 --seed 5 --adapter-bytes 300000 --mode flood-json --json >"$tmp/f.json"
if [ $? -eq 0 ] && [ "$(jq .bytes_sent "$tmp/f.json")" = "$(jq .flood_json_bytes "$tmp/a.json")" ] &&
   jq -e '.bytes_sent > 0 and .mode == "flood-json"' "$tmp/f.json" >/dev/null; then ok; else bad "flood-json"; fi

# 6. Byzantine: f = 3 malicious voters, quorum 2f+1 = 7, a bad publisher, 2 equivocators
sim --topology ws -n 200 --seed 4 --faults malicious-publishers=1,malicious-voters=3,equivocators=2,quorum=7 \
    >"$tmp/byz.json"
rc=$?
if [ $rc -eq 0 ] && jq -e '.wrongly_merged == 0 and .adapters == 4 and .equivocations_detected > 0
        and .equivocation_round != null and (.rounds_to_coverage | all(. != null)) and .commits == 585' \
        "$tmp/byz.json" >/dev/null; then ok; else bad "byzantine rc=$rc: $(cat "$tmp/byz.json")"; fi

# 7. drops and a partition still reach coverage, nothing bad merged; drops cost a little
#    (the drop run reuses d1.json from step 3: ER seed 2 at 1% drop)
cp "$tmp/d1.json" "$tmp/fault-drop.json"
sim --topology er -n 200 --seed 2 --faults partition=1-2 >"$tmp/fault-partition.json" || true
for f in drop partition; do
    if jq -e '.wrongly_merged == 0 and (.rounds_to_coverage | all(. != null))
            and .duplicate_payload_factor <= 1.3' "$tmp/fault-$f.json" >/dev/null; then ok; else bad "fault $f"; fi
done
if jq -e '.connection_resets > 0' "$tmp/d1.json" >/dev/null; then ok; else bad "drops reset connections"; fi

# 8. a run that cannot finish is a negative verdict (exit 1)
sim --topology ws -n 200 --seed 1 --max-rounds 2 >"$tmp/short.json"
if [ $? -eq 1 ] && jq -e '.rounds_to_coverage | any(. == null)' "$tmp/short.json" >/dev/null; then ok; else bad "exit 1"; fi

# 9. bad input: exit 2, the message names the flag
check2() {
    local what=$1; shift
    "$PLORA" sim "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ $rc -eq 2 ] && grep -q -- "$what" "$tmp/err" && [ ! -s "$tmp/out" ]; then ok
    else bad "bad input $* -> rc=$rc $(cat "$tmp/err")"; fi
}
check2 "--topology" -n 10 --seed 1
check2 "--topology" --topology xx -n 10 --seed 1
check2 "-n" --topology er --seed 1
check2 "--seed" --topology er -n 10
check2 "-n" --topology er -n 1 --seed 1
check2 "--k" --topology ws -n 10 --k 3 --seed 1
check2 "--adapters" --topology er -n 10 --seed 1 --adapters 0
check2 "--adapter-bytes" --topology er -n 10 --seed 1 --adapter-bytes 0
check2 "--mode" --topology er -n 10 --seed 1 --mode gossip
check2 "--faults: unknown key 'boom'" --topology er -n 10 --seed 1 --faults boom=1
check2 "--faults: drop=1.5" --topology er -n 10 --seed 1 --faults drop=1.5
check2 "--faults: partition" --topology er -n 10 --seed 1 --faults partition=3-1
check2 "--faults: quorum=0" --topology er -n 10 --seed 1 --faults quorum=0
check2 "--faults: crash is not simulated" --topology er -n 10 --seed 1 --faults crash=2
check2 "--faults: more malicious nodes" --topology er -n 10 --seed 1 --faults malicious-voters=11
check2 "bad option" --topology er -n 10 --seed 1 --bogus

echo "cli_sim: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
