#!/usr/bin/env bash
# daemon_lazy_la.sh: plorad loads BLAS/LAPACK at its first merge, not at
# start (daemon/lazy_la.c; docs/design-notes.md, "Lazy BLAS/LAPACK").
#  1. plorad's DT_NEEDED names none of liblapacke, libopenblas, libblas,
#     liblapack, libgfortran, libquadmath (plora's does: the pattern works).
#  2. An idle node (I, nothing published) has none of them mapped.
#  3. A publishes distilbert imdb + emotion, merge.rank 8 (SVD re-projection):
#     its merge maps them, and its merged adapter_model.safetensors is, byte
#     for byte, what `plora merge` (linked to the real libraries) writes for
#     the same inputs in the daemon's order (sorted ids), --tau-rel 1 --rank 8.
#  4. Z, A's twin started with LD_LIBRARY_PATH holding a bogus
#     liblapacke.so.3, aborts (SIGABRT) at its merge, naming the library and
#     the loader's reason on stderr.
. "$(dirname "$0")/lib_daemon.sh"
itest_init daemon_lazy_la
ulimit -c 0   # Z's abort is expected: no core file

LA_RE='lib(lapacke|openblasp?|blas|lapack|gfortran|quadmath)[.-]'
command -v readelf >/dev/null || die "readelf (binutils) is not installed"
needed() { readelf -d "$1" | awk '/\(NEEDED\)/ { print $NF }' | tr -d '[]'; }
pd=$(needed "$PLORAD")
grep -q '^libc[.]so' <<<"$pd" || die "readelf -d $PLORAD lists no libc (readelf failed?): $pd"
grep -qE "$LA_RE" <<<"$(needed "$PLORA")" || fail "plora's DT_NEEDED has no BLAS/LAPACK: the pattern $LA_RE is wrong"
if bad=$(grep -E "$LA_RE" <<<"$pd"); then
  fail "plorad's DT_NEEDED has $(echo $bad) again (link it with daemon_core_nola_dep and lazy_la.c)"
fi
# mapped NAME: the BLAS/LAPACK objects mapped in the node's process
mapped() {
  awk 'NF >= 6 { n = $6; sub(/.*\//, "", n); print n }' "/proc/$(node_pid "$1")/maps" |
    grep -E "^$LA_RE" | sort -u | tr '\n' ' '
}

# 2. idle
mknode I
mkconfig I
start_node I
wait_until 10 "I runs" st I "s['state'] == 'running'"
sleep 0.5   # a few rounds
m=$(mapped I)
[ -z "$m" ] || fail "idle node I has BLAS/LAPACK mapped: $m"

# 3. a merge through the lazy path
mknode A
signed_copy distilbert-imdb-r8 "$T/imdb" "$T/A/node.key" sentiment
signed_copy distilbert-emotion-r8 "$T/emo" "$T/A/node.key" emotion
i1=$(sha256_of "$T/imdb/adapter_model.safetensors"); i2=$(sha256_of "$T/emo/adapter_model.safetensors")
declare -A DIR=([$i1]="$T/imdb" [$i2]="$T/emo")
mapfile -t sorted < <(printf '%s\n' "$i1" "$i2" | sort)
pub="[\"$T/imdb\", \"$T/emo\"]"
mkconfig A "node.publish=$pub" merge.rank=8
start_node A
both="any(sorted(m['inputs']) == sorted(['$i1', '$i2']) for m in s['merged'])"
if wait_until 30 "A merges imdb + emotion" st A "$both"; then
  m=$(mapped A)
  grep -q liblapacke <<<"$m" && grep -q libopenblas <<<"$m" || fail "A merged without liblapacke and libopenblas mapped: '$m'"
  dir=$(st A "next(m['dir'] for m in s['merged'] if sorted(m['inputs']) == sorted(['$i1', '$i2']))") ||
    fail "A's merged entry has no dir"
  case $dir in /*) ;; *) dir="$T/A/data/$dir" ;; esac
  out=$("$PLORA" merge "${DIR[${sorted[0]}]}" "${DIR[${sorted[1]}]}" --tau-rel 1 --rank 8 --out "$T/ref" 2>&1) ||
    fail "plora merge: $out"
  cmp -s "$dir/adapter_model.safetensors" "$T/ref/adapter_model.safetensors" ||
    fail "A's merge $dir/adapter_model.safetensors differs from plora merge's ($(sha256_of "$dir/adapter_model.safetensors") vs $(sha256_of "$T/ref/adapter_model.safetensors"))"
fi
stop_node A
stop_node I

# 4. LAPACKE missing: abort with a message, not a silent crash
mknode Z --keys-of A
mkdir -p "$T/badlib"
: >"$T/badlib/liblapacke.so.3"   # dlopen: "file too short"
mkconfig Z "node.publish=$pub" merge.rank=8
LD_LIBRARY_PATH="$T/badlib" launch_node Z
zpid=$(node_pid Z)
deadline=$(( $(now_ms) + 30000 ))
while kill -0 "$zpid" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.1; done
if kill -0 "$zpid" 2>/dev/null; then
  fail "Z still runs 30 s after start: no merge, or no abort ($(grep -v ' D ' "$T/Z/stderr.log" | tail -n 3))"
else
  rc=0; wait "$zpid" || rc=$?
  [ "$rc" -eq 134 ] || fail "Z exited $rc, want 134 (SIGABRT)"
  grep -q "plorad: cannot load liblapacke.so.3: $T/badlib/liblapacke.so.3: file too short; merges" "$T/Z/stderr.log" ||
    fail "Z's stderr does not name liblapacke.so.3 and dlerror(): $(grep -v ' D ' "$T/Z/stderr.log" | tail -n 3)"
fi
itest_end
