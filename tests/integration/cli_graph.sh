#!/usr/bin/env bash
# tests/integration/cli_graph.sh: `plora graph` end to end: the JSON contract
# of DESIGN.md, the --edges file checked by an independent tool (networkx +
# numpy from Debian's python3), determinism, --connect, and exit 2 naming
# the parameter for each bad input.
set -u
PLORA=${PLORA:?PLORA must name the plora binary}
PY=/usr/bin/python3          # Debian's python3 with python3-networkx/-numpy
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# 1. --help: exit 0, says C is uncalibrated
if "$PLORA" graph --help >"$tmp/help" && grep -q UNCALIBRATED "$tmp/help"; then ok; else bad "--help"; fi

# 2. JSON has DESIGN.md's fields (and the prediction's provenance)
"$PLORA" graph --topology ws -n 300 --k 6 --beta 0.2 --seed 7 --json --edges "$tmp/ws.txt" >"$tmp/ws.json"
rc=$?
want='["cheeger","components","diameter","lambda2","lambda2_normalized","m","n","predicted_rounds","seed","sweep_conductance","topology"]'
got=$(jq -c '[keys[] | select(IN("topology","n","m","seed","components","diameter","lambda2","lambda2_normalized","cheeger","sweep_conductance","predicted_rounds"))] | sort' "$tmp/ws.json")
if [ $rc -eq 0 ] && [ "$got" = "$want" ] && [ "$(wc -l <"$tmp/ws.json")" -eq 1 ] &&
   jq -e '.prediction_c == 0.386 and .prediction_c_source == "calibrated" and (.cheeger|length) == 2
          and .topology == "ws" and .n == 300 and .m == 900 and .seed == 7
          and (.eccentricity_bound|type) == "number" and (.epidemic_threshold|type) == "number"' \
          "$tmp/ws.json" >/dev/null; then ok; else bad "json fields: rc=$rc got=$got"; fi

# 3. the edge list, checked independently: m lines "u v", u < v, no repeats;
#    components, diameter, lambda2 (both Laplacians), predicted rounds.
if "$PY" - "$tmp/ws.txt" "$tmp/ws.json" <<'PYEOF'
import json, math, sys
import networkx as nx, numpy as np
rep = json.load(open(sys.argv[2]))
n = rep["n"]
edges = [tuple(map(int, l.split())) for l in open(sys.argv[1])]
assert all(len(l.split()) == 2 for l in open(sys.argv[1]))
assert len(edges) == rep["m"] == len(set(edges)), "edge count / duplicates"
assert all(0 <= u < v < n for u, v in edges), "u < v < n"
G = nx.Graph(); G.add_nodes_from(range(n)); G.add_edges_from(edges)
assert nx.number_connected_components(G) == rep["components"] == 1
assert nx.diameter(G) == rep["diameter"], (nx.diameter(G), rep["diameter"])
assert nx.eccentricity(G, 0) == rep["eccentricity_bound"]
L = nx.laplacian_matrix(G).toarray().astype(float)
l2 = np.linalg.eigvalsh(L)[1]
assert abs(l2 - rep["lambda2"]) <= 1e-8 * l2, (l2, rep["lambda2"])
Ln = nx.normalized_laplacian_matrix(G).toarray().astype(float)
l2n = np.linalg.eigvalsh(Ln)[1]
assert abs(l2n - rep["lambda2_normalized"]) <= 1e-8 * l2n, (l2n, rep["lambda2_normalized"])
assert abs(rep["predicted_rounds"] - rep["prediction_c"] * math.log(n) / l2) <= 1e-8 * rep["predicted_rounds"]
assert abs(rep["predicted_rounds_uncalibrated"] - math.log(n) / l2) <= 1e-8 * rep["predicted_rounds_uncalibrated"]
assert rep["prediction_c_source"] == "calibrated" and rep["prediction_c"] != 1.0
lmax = max(np.linalg.eigvalsh(nx.to_numpy_array(G)))
assert abs(rep["epidemic_threshold"] - 1 / lmax) <= 1e-8 / lmax
lo, hi = rep["cheeger"]
assert lo <= rep["sweep_conductance"] <= hi
PYEOF
then ok; else bad "independent check of the edge list"; fi

# 4. determinism: same seed -> same edges; other seed -> different edges
for topo in "er --p 0.01" "ws --k 4 --beta 0.3" "ba --m 3"; do
    "$PLORA" graph --topology $topo -n 500 --seed 99 --edges "$tmp/a.txt" --json >"$tmp/a.json"
    "$PLORA" graph --topology $topo -n 500 --seed 99 --edges "$tmp/b.txt" >/dev/null
    "$PLORA" graph --topology $topo -n 500 --seed 100 --edges "$tmp/c.txt" >/dev/null
    if cmp -s "$tmp/a.txt" "$tmp/b.txt" && ! cmp -s "$tmp/a.txt" "$tmp/c.txt"; then ok
    else bad "determinism for $topo"; fi
done

# 5. a disconnected graph is reported; --connect joins it with components-1 edges
"$PLORA" graph --topology er -n 400 --p 0.002 --seed 3 --json >"$tmp/d.json" 2>"$tmp/d.err"
rc=$?
c=$(jq .components "$tmp/d.json")
if [ $rc -eq 0 ] && [ "$c" -gt 1 ] && grep -q "components" "$tmp/d.err" &&
   jq -e '.lambda2 == 0 and .predicted_rounds == null and .diameter == null and .connected == false' \
      "$tmp/d.json" >/dev/null; then ok; else bad "disconnected report (rc=$rc c=$c)"; fi
"$PLORA" graph --topology er -n 400 --p 0.002 --seed 3 --connect --json >"$tmp/j.json"
if jq -e --argjson c "$c" '.components == 1 and .connect_added == $c - 1 and .lambda2 > 0' \
      "$tmp/j.json" >/dev/null; then ok; else bad "--connect"; fi

# 6. bad input: exit 2 and the message names the parameter
check_bad() {   # expected-substring args...
    local want=$1; shift
    "$PLORA" graph "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ $rc -eq 2 ] && grep -q -- "$want" "$tmp/err" && [ ! -s "$tmp/out" ]; then ok
    else bad "graph $*: rc=$rc, stderr: $(cat "$tmp/err")"; fi
}
check_bad "-n" --topology er -n 1 --seed 1
check_bad "--p" --topology er -n 100 --p 1.5 --seed 1
check_bad "--p" --topology er -n 100 --p -0.1 --seed 1
check_bad "--k" --topology ws -n 100 --k 7 --seed 1
check_bad "--k" --topology ws -n 10 --k 10 --seed 1
check_bad "--beta" --topology ws -n 100 --k 4 --beta 2 --seed 1
check_bad "--m" --topology ba -n 10 --m 10 --seed 1
check_bad "--m" --topology ba -n 10 --m 0 --seed 1
check_bad "cap" --topology er -n 50000000 --p 0.5 --seed 1
check_bad "cap" --topology ba -n 90000000 --m 60 --seed 1
check_bad "--topology" --topology ring -n 10 --seed 1
check_bad "--seed" --topology er -n 10
check_bad "--edges" --topology er -n 10 --seed 1 --edges "$tmp/no/such/dir/e.txt"
check_bad "-n" --topology er -n 1e9 --seed 1

# 7. a large overlay takes the Lanczos path and diameter bounds
"$PLORA" graph --topology ba -n 30000 --m 4 --seed 5 --json >"$tmp/big.json"
if jq -e '.solver == "lanczos" and .diameter_exact == false and .diameter_bounds[0] <= .diameter_bounds[1]
          and .lambda2 > 0 and .components == 1' "$tmp/big.json" >/dev/null; then ok
else bad "n = 30000 ($(cat "$tmp/big.json"))"; fi

echo "cli_graph: $pass passed, $fail failed"
[ $fail -eq 0 ]
