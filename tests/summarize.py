#!/usr/bin/env python3
"""Summarise a `meson test` run: each test's result and, for cmocka tests,
the number of test cases it ran; end with the plain line
'N passed, M failed' (cases counted individually for cmocka binaries)."""
import json, re, sys

build = sys.argv[1] if len(sys.argv) > 1 else "build"
passed = failed = 0
rows = []
with open(f"{build}/meson-logs/testlog.json") as f:
    for line in f:
        t = json.loads(line)
        out = t.get("stdout") or ""
        ok = t["result"] in ("OK", "EXPECTEDFAIL")
        m = re.search(r"\[==========\] (\d+) test\(s\) run", out)
        fails = re.search(r"\[  FAILED  \] (\d+) test\(s\)", out)
        if m:
            n = int(m.group(1))
            nf = int(fails.group(1)) if fails else (0 if ok else 1)
            passed += n - nf
            failed += nf
            rows.append(f"  {t['name']:<28} {t['result']:<8} cmocka: {n} test(s) run, {nf} failed")
        else:
            passed += 1 if ok else 0
            failed += 0 if ok else 1
            rows.append(f"  {t['name']:<28} {t['result']}")
print(f"test summary ({build}):")
print("\n".join(rows))
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
