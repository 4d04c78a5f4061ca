#!/usr/bin/env bash
# hard_churn.sh (issue 9, load): a swarm of real plorad processes on loopback
# with the 3 fixture adapters; once every node holds, commits and has merged
# them, the churn phase stops (SIGTERM, exit 0 required) and restarts nodes at
# random, at most 2 down at a time. Half the restarts come back with an empty
# data dir (a node that lost its disk), so transfers, gates, votes and merges
# run during the churn too. A third of the nodes (the seed included) is never
# restarted; every 2 s their VmRSS (/proc/PID/status) and open fd count
# (/proc/PID/fd) are sampled. Checks:
#   - RSS slope (least squares over the churn and recovery samples) below
#     256 KiB/min per stable node, judged on RssAnon (heap, stacks: where a
#     leak lands); VmRSS is reported too but also counts file pages of the
#     adapters the node mmaps to gate, merge and serve them
#     (fusion/safetensors.c), which grow as a wiped peer pulls adapters and
#     are reclaimable: not a leak. Why 256: a per-connection leak of the
#     frame reader or write queue (>= 64 KiB each) with ~20-30 reconnects a
#     minute would show MiB/min; 256 KiB/min is above allocator noise in a
#     40 s run (glibc arenas, libuv's pool settling), and over the long run's
#     30 min it bounds growth to 7.5 MiB. In windows under 6 min the limit
#     is raised to tolerate one allocator high-water step (see the fit
#     below): there the short run is a smoke test and the fd check the
#     sharper one;
#   - fd count never more than 8 above its first sample: a node's fds are
#     its listeners, loop internals, the audit log and one socket per peer;
#     churn replaces peers (degree 4 in ws) and adds short-lived dials of
#     restarted nodes, which stay well under 8 extra; a leak of one fd per
#     churn event (~20 in the short run) would exceed it;
#   - after the churn ends, every node holds and commits every adapter and
#     has the merges of both base models (time to recover reported);
#   - every node stops with exit 0 and its audit log verifies.
# Prints `hard_churn: N passed, M failed` and figures (# lines).
#
# Short (CI, < 90 s on 2 cores): 12 daemons, 40 s of churn.
# Long (documented, not in CI): 64 daemons, 20 extra synthetic adapters of
# 16 MiB, 30 minutes of churn:
#   HARD_NODES=64 HARD_BIG=20 HARD_BIG_MIB=16 HARD_CHURN_S=1800 HARD_CONVERGE_S=600 \
#   PLORA=... PLORAD=... PLORA_FIXTURES=... bash tests/integration/hard_churn.sh
# (the synthetic adapters must be held everywhere; the gate may reject them,
# so commit and merge are required of the fixtures only).
. "$(dirname "$0")/lib_daemon.sh"
itest_init hard_churn
# Under AddressSanitizer, freed memory sits in ASan's quarantine (up to
# 256 MiB) and RSS climbs ~100 MiB/min with no leak; with no quarantine the
# RSS figures mean the same as in a plain build. Harmless for a plain build.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0"
# Even so, ASan's allocator (size-class caches, shadow pages) is not glibc's:
# with ASan the RSS slope is printed but not judged (fds still are); a leak
# there is LeakSanitizer's to report at each node's exit (itest checks).
ASAN_DAEMON=0
grep -qa __asan_init "$PLORAD" && ASAN_DAEMON=1

N=${HARD_NODES:-12}
# under the sanitizers (PLORA_SANITIZED=1, make test-asan) 20 s of churn, where the RSS
# slope is not judged anyway (see above)
CHURN_S=${HARD_CHURN_S:-$([ "${PLORA_SANITIZED:-0}" = 1 ] && echo 20 || echo 40)}
CONVERGE_S=${HARD_CONVERGE_S:-45}
BIG=${HARD_BIG:-0}
BIG_MIB=${HARD_BIG_MIB:-16}
DOWN=${HARD_DOWN:-2}
SEED=${HARD_SEED:-$(( $(date +%s) % 32768 ))}
RANDOM=$SEED
RSS_SLOPE_MAX=256   # KiB/min, see above
FD_GROWTH_MAX=8
HPASS=0
pass() { HPASS=$((HPASS + 1)); }
check() { local what=$1; shift; if "$@" >/dev/null; then pass; else fail "$what"; fi; }
checked() { if "$@"; then pass; else return 1; fi; }
rnd() { echo $(( $1 + RANDOM % ($2 - $1 + 1) )); }
[ "$N" -ge 6 ] || die "HARD_NODES must be >= 6"
STABLE=$(( N / 3 ))          # n0 .. n(STABLE-1) are never restarted
info "seed $SEED, $N nodes ($STABLE never restarted), ${CHURN_S} s of churn, $DOWN down at a time, $BIG synthetic adapters of $BIG_MIB MiB"

t0=$(now_ms)
for i in $(seq 0 $((N - 1))); do mknode "n$i"; done
ids=() pubdirs=()
declare -A PUBS=()           # node -> YAML list items of what it publishes
for k in 0 1 2; do
  p=$(( (k * N) / 3 + 1 ))
  signed_copy "${FIXTURES[$k]}" "$T/src$k" "$T/n$p/node.key" "dom$k"
  ids+=("$(sha256_of "$T/src$k/adapter_model.safetensors")")
  PUBS[n$p]+="${PUBS[n$p]:+, }\"$T/src$k\""
done
bigids=()
for k in $(seq 1 "$BIG"); do
  p=$(( RANDOM % N )) d="$T/big$k"
  mkdir -p "$d"
  "$PY" "$(dirname "$0")/mk_adapter.py" "$d" "$BIG_MIB" || die "could not write synthetic adapter $k"
  out=$("$PLORA" sign "$d" --key "$T/n$p/node.key" --domain synthetic 2>&1) || die "plora sign $d: $out"
  bigids+=("$(sha256_of "$d/adapter_model.safetensors")")
  PUBS[n$p]+="${PUBS[n$p]:+, }\"$d\""
done
for i in $(seq 0 $((N - 1))); do
  extra=()
  [ -n "${PUBS[n$i]:-}" ] && extra+=("node.publish=[${PUBS[n$i]}]")
  mkconfig "n$i" overlay.topology=ws overlay.seed=7 gossip.quorum=2 node.log_level=info "${extra[@]}"
done
start_node n0
for i in $(seq 1 $((N - 1))); do launch_node "n$i" --join "$(node_listen n0)"; done
for i in $(seq 1 $((N - 1))); do await_node "n$i"; done
info "$N nodes up in $(( $(now_ms) - t0 )) ms"

fixlist="['${ids[0]}', '${ids[1]}', '${ids[2]}']"
biglist="[$(for b in "${bigids[@]}"; do printf "'%s', " "$b"; done)]"
converged="all(ad(s, i).get('state') == 'committed' for i in $fixlist) and all(ad(s, i).get('state') in ('held', 'committed') for i in $biglist) and any(m['base_model'] == 'gpt2' and m['inputs'] == ['${ids[0]}'] for m in s['merged']) and any(m['base_model'] == 'distilbert-base-uncased' and sorted(m['inputs']) == sorted(['${ids[1]}', '${ids[2]}']) for m in s['merged'])"
# all_converged BUDGET_S WHAT: every node converged within the budget.
all_converged() {
  local c0 i l ok=0
  c0=$(now_ms)
  for i in $(seq 0 $((N - 1))); do
    l=$(( $1 - ($(now_ms) - c0) / 1000 )); [ "$l" -gt 1 ] || l=1
    if wait_until "$l" "n$i: every adapter held + committed and merged $2" st "n$i" "$converged"; then pass; else ok=1; fi
  done
  return "$ok"
}
c0=$(now_ms)
all_converged "$CONVERGE_S" "before the churn" || die "the swarm did not converge before the churn"
info "initial convergence in $(( $(now_ms) - c0 )) ms"

# ---- sampler: RSS and fds of the stable nodes every 2 s ------------------
samples="$T/samples.tsv"
: >"$samples"
stable_pids=()
for i in $(seq 0 $((STABLE - 1))); do stable_pids+=("n$i:$(node_pid "n$i")"); done
(
  while :; do
    t=$(now_ms)
    for np in "${stable_pids[@]}"; do
      pid=${np#*:}
      rss=$(awk '/^VmRSS:/ {v = $2} /^RssAnon:/ {a = $2} END {if (v != "") print v "\t" a}' "/proc/$pid/status" 2>/dev/null) || rss=""
      fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
      [ -n "$rss" ] && printf '%s\t%s\t%s\t%s\n' "$t" "${np%%:*}" "$rss" "$fds" >>"$samples"
    done
    sleep 2
  done
) &
sampler=$!
ITEST_PIDS+=("$sampler")

# ---- churn -------------------------------------------------------------
declare -A DOWNAT=()     # node -> restart due (ms)
stops=0 restarts=0 wipes=0
cand=()
for i in $(seq "$STABLE" $((N - 1))); do cand+=("n$i"); done
ch0=$(now_ms)
end=$(( ch0 + CHURN_S * 1000 ))
next_stop=$ch0
while [ "$(now_ms)" -lt "$end" ] || [ "${#DOWNAT[@]}" -gt 0 ]; do
  now=$(now_ms)
  for n in "${!DOWNAT[@]}"; do
    [ "${DOWNAT[$n]}" -le "$now" ] || continue
    unset "DOWNAT[$n]"
    if [ $((RANDOM % 2)) -eq 0 ]; then rm -rf "$T/$n/data"; wipes=$((wipes + 1)); fi
    # rejoin through a stable node and a random one (its old address is stale)
    start_node "$n" --join "$(node_listen "n$((RANDOM % STABLE))")" --join "$(node_listen "n$((RANDOM % STABLE))")"
    restarts=$((restarts + 1))
  done
  if [ "$now" -lt "$end" ] && [ "$now" -ge "$next_stop" ] && [ "${#DOWNAT[@]}" -lt "$DOWN" ]; then
    v=${cand[$((RANDOM % ${#cand[@]}))]}
    if [ -z "${DOWNAT[$v]:-}" ]; then
      checked stop_node "$v"
      stops=$((stops + 1))
      DOWNAT[$v]=$(( $(now_ms) + $(rnd 500 3000) ))
      next_stop=$(( $(now_ms) + $(rnd 200 1500) ))
    fi
  fi
  sleep 0.05
done
info "churn: $stops stops (SIGTERM), $restarts restarts ($wipes with an empty data dir) in $(( $(now_ms) - ch0 )) ms"

r0=$(now_ms)
if all_converged "$CONVERGE_S" "after the churn"; then
  recover=$(( $(now_ms) - r0 ))
  info "recovered (every node converged) $recover ms after the last restart"
fi
# ---- steady state: connections stay up once the swarm has settled ----------
# Views of the overlay may still differ (a member that was down is "gone"
# only for the nodes whose dials to it failed), so this counts the handshakes
# (PEER-UP) of all nodes over SETTLE_S after the convergence: a pair that
# keeps closing and redialling each other shows up as a steady stream.
SETTLE_S=${HARD_SETTLE_S:-6}
peer_ups() { cat "$T"/n*/stderr.log | grep -c "PEER-UP" || true; }
ups0=$(peer_ups)
sleep "$SETTLE_S"
ups=$(( $(peer_ups) - ups0 ))
info "settled swarm: $ups handshake(s) in $SETTLE_S s across $N nodes"
# 0 expected; before the dialler alone closed non-neighbour connections this
# was 60-100 (pairs closing and redialling each other)
if [ "$ups" -le "$N" ]; then pass; else fail "settled swarm: $ups handshakes in $SETTLE_S s (connections flapping; at most $N)"; fi
kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null

# ---- RSS slope and fd range per stable node ------------------------------
# The slope is fitted from WARMUP_S into the churn: the first restarts are
# the first time a stable node serves whole adapters to an empty peer and
# its libuv pool threads first touch their malloc arenas (a one-off step of
# ~1-1.5 MiB seen here). fd figures use every sample.
WARMUP_S=${HARD_WARMUP_S:-10}
# A short window cannot tell a slope from one high-water step of the
# allocator (glibc keeps freed memory; steps of up to ~1.3 MiB were seen in
# 30 s windows, i.e. fitted "slopes" of ~1300 KiB/min with no growth over
# the run). So the limit is max(256 KiB/min, STEP_KIB / window minutes):
# 256 KiB/min holds as such once the window exceeds STEP_KIB/256 = 6 min
# (the long version); the short version tolerates one step of STEP_KIB.
STEP_KIB=${HARD_STEP_KIB:-1536}
"$PY" - "$samples" "$RSS_SLOPE_MAX" "$FD_GROWTH_MAX" "$(( ch0 + WARMUP_S * 1000 ))" "$STEP_KIB" "$ASAN_DAEMON" >"$T/figures.txt" <<'PY'
import sys
path, slope_max, fd_max, warm, step = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
asan = sys.argv[6] == "1"
by, fds_all = {}, {}
for line in open(path):
    t, n, rss, anon, fds = line.split("\t")
    fds_all.setdefault(n, []).append(int(fds))
    if int(t) < warm:
        continue
    by.setdefault(n, []).append((int(t) / 60000.0, int(anon), int(fds), int(rss)))
bad = 0
for n in sorted(by, key=lambda x: int(x[1:])):
    s = by[n]
    if len(s) < 5:
        print("FAIL %s: only %d samples" % (n, len(s))); bad += 1; continue
    def fit(k):   # least-squares slope of column k, KiB/min
        mt = sum(x[0] for x in s) / len(s); mr = sum(x[k] for x in s) / len(s)
        den = sum((x[0] - mt) ** 2 for x in s)
        return sum((x[0] - mt) * (x[k] - mr) for x in s) / den
    slope, vslope = fit(1), fit(3)
    window = s[-1][0] - s[0][0]
    limit = max(slope_max, step / window)
    f = fds_all[n]
    f0, fmin, fmax = f[0], min(f), max(f)
    ok = (asan or slope < limit) and fmax - f0 <= fd_max
    bad += not ok
    print("%s %s: %d samples, RssAnon %d -> %d KiB, slope %.1f KiB/min (limit %.0f over %.1f min; VmRSS %d -> %d, slope %.1f), fd first %d min %d max %d" % (
        "ok" if ok else "FAIL", n, len(s), s[0][1], s[-1][1], slope, limit, window, s[0][3], s[-1][3], vslope, f0, fmin, fmax))
if asan:
    print("note: ASan daemon: RSS slopes printed, not judged")
sys.exit(1 if bad else 0)
PY
frc=$?
sed 's/^/# /' "$T/figures.txt"
n_ok=$(grep -c '^ok ' "$T/figures.txt")
HPASS=$((HPASS + n_ok))
[ "$frc" -eq 0 ] || fail "RssAnon slope over its limit or fd growth > $FD_GROWTH_MAX on a stable node (above)"

for i in $(seq 0 $((N - 1))); do checked stop_node "n$i"; done
for i in $(seq 0 $((N - 1))); do checked verify_log "n$i"; done
info "total $(( ($(now_ms) - t0) / 1000 )) s"

for n in "${ITEST_NODES[@]}"; do
  grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/$n/stderr.log" 2>/dev/null &&
    fail "sanitizer report in $n's log: $(grep -m1 -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/$n/stderr.log")"
done
echo "hard_churn: $HPASS passed, $ITEST_FAILS failed"
[ "$ITEST_FAILS" -eq 0 ]
