#!/usr/bin/env bash
# tests/cluster/check_deploy.sh [BUILD_DIR]: validates deploy/ without
# deploying anything (BUILD_DIR default: build).
#   systemd   systemd-analyze verify on plorad.service (ExecStart pointed at
#             the built plorad); any warning fails.
#   container every apt package of deploy/container/Containerfile exists
#             (apt-cache show); every shared library `ldd plorad plora` lists comes
#             from a runtime-stage package, a dependency of one, or a
#             Priority: required package of the base image; the recipe keeps
#             a non-root USER, VOLUME, HEALTHCHECK and ENTRYPOINT; the
#             HEALTHCHECK command itself succeeds against a running plorad.
#   k8s       yamllint; structure (StatefulSet <-> headless Service names,
#             replicas, Parallel, readiness on /status, PVC template); the
#             ConfigMap's node.yml and policy.yml load in plorad.
#   examples  plorad --config deploy/examples/node.yml (key/keyring/data
#             overridden) starts, serves /status, exits 0 on SIGTERM;
#             plora gate accepts a signed fixture under policy.yml.
# Needs: systemd (systemd-analyze), yamllint (pulls python3-yaml), apt-cache.
# Prints "check_deploy: N passed, M failed"; exit 0 iff M = 0.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BUILD_DIR=${1:-build}
PLORAD="$BUILD_DIR/daemon/plorad" PLORA="$BUILD_DIR/daemon/plora"
FIX=${PLORA_FIXTURES:-../shared/fixtures}
PASSED=0 FAILED=0 PID=""
ok() { echo "ok: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
T=$(mktemp -d "${TMPDIR:-/tmp}/check_deploy.XXXXXX") || exit 1
cleanup() {
  [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
trap 'fail interrupted; exit 1' INT TERM
for tool in systemd-analyze yamllint apt-cache /usr/bin/python3; do
  command -v "$tool" >/dev/null || fail "$tool not installed (systemd, yamllint, apt packages)"
done
[ -x "$PLORAD" ] && [ -x "$PLORA" ] || { fail "no plorad/plora in $BUILD_DIR/daemon"; echo "check_deploy: $PASSED passed, $FAILED failed"; exit 1; }
YPY=/usr/bin/python3   # Debian's python: python3-yaml comes with yamllint

# ---- systemd ---------------------------------------------------------------
unit=deploy/systemd/plorad.service
sed "s#/usr/local/bin/plorad#$(readlink -f "$PLORAD")#" "$unit" >"$T/plorad.service"
out=$(cd "$T" && systemd-analyze verify "$T/plorad.service" 2>&1); rc=$?
if [ "$rc" -eq 0 ] && [ -z "$out" ]; then ok "systemd-analyze verify $unit"; else fail "systemd-analyze verify $unit ($rc): $out"; fi
for k in 'User=plorad' 'StateDirectory=plorad' 'ProtectSystem=strict' 'NoNewPrivileges=yes' 'PrivateTmp=yes' \
  'Restart=on-failure' 'ExecReload=/bin/kill -HUP $MAINPID'; do
  grep -qxF "$k" "$unit" || fail "$unit lacks $k"
done

# ---- container recipe -------------------------------------------------------
cf=deploy/container/Containerfile
# stage k's apt-get install package names, one file per stage
"$YPY" - "$cf" "$T" <<'EOF' || fail "cannot read the apt-get install lines of $cf"
import re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
stages, cur = [], None
for line in text.splitlines():
    s = line.strip()
    if s.upper().startswith("FROM "):
        cur = []
        stages.append(cur)
    elif s.upper().startswith("RUN ") and cur is not None:
        for m in re.finditer(r"apt-get install ([^&;|]*)", s):
            cur += [w for w in m.group(1).split() if not w.startswith("-")]
assert len(stages) == 2 and all(stages), "want 2 stages each installing packages, got %r" % stages
for i, st in enumerate(stages):
    open("%s/stage%d.pkgs" % (sys.argv[2], i), "w").write("\n".join(st) + "\n")
EOF
bad=()
for p in $(cat "$T"/stage*.pkgs 2>/dev/null); do
  apt-cache show "$p" >/dev/null 2>&1 || bad+=("$p")
done
[ "${#bad[@]}" -eq 0 ] && [ -s "$T/stage1.pkgs" ] && ok "every apt package of $cf exists ($(cat "$T"/stage*.pkgs | wc -l) names)" ||
  fail "$cf names packages apt-cache does not know: ${bad[*]}"
# closure of the runtime stage's packages, plus what debian:12-slim always has
mapfile -t rt <"$T/stage1.pkgs"
apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
  --no-enhances "${rt[@]}" 2>/dev/null | grep -v '^ ' | sed 's/:.*//' | sort -u >"$T/closure"
dpkg-query -W -f='${Package} ${Priority} ${Essential}\n' 2>/dev/null |
  awk '$2 == "required" || $3 == "yes" { print $1 }' >>"$T/closure"
# plora's list too: it holds the BLAS/LAPACK that plorad dlopens at its first
# merge (daemon/lazy_la.c), which ldd cannot see in plorad
miss=()
while read -r lib; do
  pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n1 | cut -d: -f1)
  [ -n "$pkg" ] || pkg=$(dpkg -S "$lib" 2>/dev/null | head -n1 | cut -d: -f1)
  if [ -z "$pkg" ]; then miss+=("$lib(no package)"); continue; fi
  grep -qx "$pkg" "$T/closure" || miss+=("$lib($pkg)")
done < <({ ldd "$PLORAD"; ldd "$PLORA"; } | awk '$3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
[ "${#miss[@]}" -eq 0 ] && ok "runtime stage provides every library ldd lists for plorad and plora" ||
  fail "libraries of plorad/plora no runtime-stage package provides: ${miss[*]}"
grep -qE '^USER +[a-z]' "$cf" && ! grep -qE '^USER +(root|0)\b' "$cf" || fail "$cf: no non-root USER"
for k in '^VOLUME /var/lib/plorad' '^EXPOSE ' '^HEALTHCHECK ' '^ENTRYPOINT \["/usr/local/bin/plorad"\]' '^FROM .* AS build'; do
  grep -qE "$k" "$cf" || fail "$cf lacks $k"
done
"$YPY" - "$cf" >"$T/health.json" <<'EOF' || fail "$cf: HEALTHCHECK CMD is not an exec-form JSON array"
import json, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
line = next(l for l in text.splitlines() if l.startswith("HEALTHCHECK "))
print(json.dumps(json.loads(line[line.index("CMD ") + 4:])))
EOF

# ---- k8s -----------------------------------------------------------------------
ylconf='{extends: default, rules: {line-length: {max: 120}, document-start: disable, comments: {min-spaces-from-content: 1}}}'
out=$(yamllint -s -d "$ylconf" deploy/k8s/*.yaml deploy/examples/*.yml 2>&1) &&
  ok "yamllint deploy/k8s/*.yaml deploy/examples/*.yml" || fail "yamllint: $out"
"$YPY" - "$T" deploy/k8s/*.yaml <<'EOF' && ok "k8s objects consistent (StatefulSet, headless Service, ConfigMap)" || fail "k8s structure (above)"
import sys, yaml
out, objs = sys.argv[1], {}
for p in sys.argv[2:]:
    for d in yaml.safe_load_all(open(p)):
        if d:
            objs[d["kind"]] = d
bad = []
def need(c, msg):
    if not c:
        bad.append(msg)
ss, svc, cm = objs.get("StatefulSet"), objs.get("Service"), objs.get("ConfigMap")
need(ss and svc and cm, "want a StatefulSet, a Service and a ConfigMap, got %s" % sorted(objs))
if not bad:
    sp = ss["spec"]
    need(sp["serviceName"] == svc["metadata"]["name"], "serviceName is not the Service's name")
    need(svc["spec"].get("clusterIP") == "None", "Service is not headless")
    need(sp["replicas"] == 3 and sp.get("podManagementPolicy") == "Parallel", "replicas 3, Parallel")
    need(sp["selector"]["matchLabels"].items() <= sp["template"]["metadata"]["labels"].items(), "selector/labels")
    need(svc["spec"]["selector"].items() <= sp["template"]["metadata"]["labels"].items(), "Service selector")
    c = sp["template"]["spec"]["containers"][0]
    rp = c["readinessProbe"]["httpGet"]
    need(rp["path"] == "/status", "readiness path")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    need(rp["port"] in ports or rp["port"] in ports.values(), "readiness port")
    need("plorad-0.%s:7400" % svc["metadata"]["name"] in " ".join(c["args"]), "--join plorad-0.<service>:7400")
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    need(mounts.get("/var/lib/plorad") in [v["metadata"]["name"] for v in sp["volumeClaimTemplates"]],
         "/var/lib/plorad is not on the PVC template")
    node = yaml.safe_load(cm["data"]["node.yml"])["node"]
    need(node["http"].startswith("0.0.0.0:") and node["http"].endswith(":%d" % ports["http"]), "http must be 0.0.0.0:<http port>")
    need(node["listen"].endswith(":%d" % ports["gossip"]), "listen port")
    open(out + "/k8s-node.yml", "w").write(cm["data"]["node.yml"])
    open(out + "/k8s-policy.yml", "w").write(cm["data"]["policy.yml"])
for b in bad:
    print("FAIL: " + b)
sys.exit(1 if bad else 0)
EOF
command -v kubectl >/dev/null &&
  echo "# kubectl present but not used: apply --dry-run=client needs an API server for discovery"

# ---- examples: plorad parses node.yml, gate accepts under policy.yml ----------
"$PLORA" keygen --out "$T/key" --bits 2048 >/dev/null 2>"$T/err" || fail "plora keygen: $(cat "$T/err")"
mkdir -p "$T/keyring" && cp "$T/key/node.pub" "$T/keyring/self.pem"
# run_node CONFIG POLICY WHAT: start, wait for ready, probe, SIGTERM -> exit 0
run_node() {
  local cfg=$1 pol=$2 what=$3 rc=0 http
  rm -rf "$T/data" "$T/ready.json"
  "$PLORAD" --config "$cfg" --data "$T/data" --key "$T/key/node.key" --keyring "$T/keyring" \
    --policy "$pol" --listen 127.0.0.1:0 --http 127.0.0.1:0 --join 127.0.0.1:9 \
    --ready-file "$T/ready.json" >"$T/out" 2>"$T/err" &
  PID=$!
  for _ in $(seq 100); do [ -s "$T/ready.json" ] && break; kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  if [ ! -s "$T/ready.json" ]; then
    fail "$what: plorad did not start: $(tail -n 3 "$T/err")"; kill -KILL "$PID" 2>/dev/null; PID=""; return
  fi
  http=$("$YPY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$T/ready.json")
  if [ -s "$T/health.json" ] && [ "$what" = "deploy/examples/node.yml" ]; then
    # the Containerfile's HEALTHCHECK, verbatim but for the port
    mapfile -t hc < <("$YPY" -c 'import json,sys
for a in json.load(open(sys.argv[1])): print(a.replace("7401", sys.argv[2]))' "$T/health.json" "${http##*:}")
    timeout 10 "${hc[@]}" && ok "the Containerfile's HEALTHCHECK passes against a running plorad" ||
      fail "the Containerfile's HEALTHCHECK fails against plorad at $http"
  fi
  kill -TERM "$PID"; wait "$PID" || rc=$?
  PID=""
  [ "$rc" -eq 0 ] && ok "$what loads in plorad (ready, exit 0 on SIGTERM)" || fail "$what: plorad exited $rc: $(tail -n 3 "$T/err")"
}
run_node deploy/examples/node.yml deploy/examples/policy.yml deploy/examples/node.yml
[ -s "$T/k8s-node.yml" ] && run_node "$T/k8s-node.yml" "$T/k8s-policy.yml" "the k8s ConfigMap's node.yml + policy.yml"
src="$FIX/peft/distilbert-imdb-r8"
if [ -f "$src/adapter_model.safetensors" ]; then
  mkdir -p "$T/ad" && cp "$src"/adapter_model.safetensors "$src"/adapter_config.json "$T/ad/" && chmod u+w "$T/ad"/*
  "$PLORA" sign "$T/ad" --key "$T/key/node.key" --domain lab >/dev/null 2>"$T/err" || fail "plora sign: $(cat "$T/err")"
  out=$("$PLORA" gate "$T/ad" --policy deploy/examples/policy.yml --keyring "$T/keyring" 2>&1) &&
    ok "plora gate accepts a signed fixture under deploy/examples/policy.yml" || fail "plora gate: $out"
  # and the policy bites: the same adapter without a trusted signer is rejected
  mkdir -p "$T/empty-keyring"
  "$PLORA" gate "$T/ad" --policy deploy/examples/policy.yml --keyring "$T/empty-keyring" >/dev/null 2>&1
  [ $? -eq 1 ] && ok "policy.yml rejects an adapter no trusted key signed" || fail "policy.yml accepted an untrusted adapter"
else
  fail "missing fixture $src (set PLORA_FIXTURES)"
fi
echo "check_deploy: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
