#!/usr/bin/python3
"""bench/merge_anchor.py: numpy factored merge (Gram matrices) for bench_merge.

Reads the same PEFT adapter directories as plorad (safetensors parsed by hand,
tensors mapped with np.memmap), merges them the way fusion/merge.c does
(B_cat/A_cat per module, R x R Grams in float64, eigh square roots, SVD of the
core, best rank-K factors, trust-region scale c = min(1, tau/G)), writes the
output factors as float32 to OUT (a flat file; the work is what is timed), and
prints one JSON line: {"G", "dropped", "seconds", "rss_mb", "kernel"}.

usage: merge_anchor.py OUT TAU_REL RANK REPEAT DIR:WEIGHT [DIR:WEIGHT ...]
(TAU_REL 0: no trust region; RANK 0: exact concatenation.)
"""
import ctypes
import json
import resource
import struct
import sys
import time

import numpy as np

DT = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def load(d):
    path = d + "/adapter_model.safetensors"
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
    base = np.memmap(path, dtype=np.uint8, mode="r")
    tens = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        tens[k] = base[8 + n + b:8 + n + e].view(DT[v["dtype"]]).reshape(v["shape"])
    with open(d + "/adapter_config.json") as f:
        cfg = json.load(f)
    mods = {}
    for k in tens:
        if k.endswith(".lora_A.weight"):
            name = k[len("base_model.model."):-len(".lora_A.weight")]
            r = tens[k].shape[0]
            a = cfg["lora_alpha"]
            s = a / np.sqrt(r) if cfg.get("use_rslora") else a / r
            mods[name] = (tens[k], tens[k.replace("lora_A", "lora_B")], s)
    return mods


def gram_root(g):
    lam, v = np.linalg.eigh(g)
    keep = lam > len(lam) * np.finfo(float).eps * max(lam[-1], 0.0)
    lam, v = lam[keep], v[:, keep]
    return np.sqrt(lam)[:, None] * v.T, v / np.sqrt(lam)


def merge(inputs, tau_rel, rank, out):
    names = sorted(set().union(*[m.keys() for m, _ in inputs]))
    per = []
    for name in names:
        parts = [(w * m[name][2], m[name][0], m[name][1]) for m, w in inputs if name in m]
        bcat = np.concatenate([c * b.astype(np.float64) for c, _, b in parts], axis=1)
        acat = np.concatenate([a.astype(np.float64) for _, a, _ in parts], axis=0)
        gb, ga = bcat.T @ bcat, acat @ acat.T
        sb, yb = gram_root(gb)
        sa, ya = gram_root(ga)
        u, s, vt = np.linalg.svd(sb @ sa.T)
        R = bcat.shape[1]
        k = min(rank, len(s)) if 0 < rank < R else len(s)
        per.append((bcat, acat, yb, ya, u, s, vt, k, R))
    g = np.sqrt(sum(float(np.sum(p[5] ** 2)) for p in per))
    c = min(1.0, tau_rel * g / g) if tau_rel > 0 and g > 0 else 1.0
    dropped = 0.0
    with open(out, "wb") as f:
        for bcat, acat, yb, ya, u, s, vt, k, R in per:
            dropped += c * c * float(np.sum(s[k:] ** 2))
            if 0 < rank < R:
                bo = c * (bcat @ (yb @ (u[:, :k] * s[:k])))
                ao = (ya @ vt[:k].T).T @ acat
            else:
                bo, ao = c * bcat, acat
            ao.astype(np.float32).tofile(f)
            bo.astype(np.float32).tofile(f)
    return g, dropped


def kernel():
    for line in open("/proc/self/maps"):
        if "openblas" in line or "libblas" in line:
            lib = line.split()[-1]
            try:
                ob = ctypes.CDLL(lib)
                ob.openblas_get_corename.restype = ctypes.c_char_p
                ob.openblas_get_config.restype = ctypes.c_char_p
                return "%s (%s)" % (ob.openblas_get_corename().decode(),
                                    ob.openblas_get_config().decode().strip())
            except (OSError, AttributeError):
                continue
    return "unknown"


def main():
    out, tau_rel, rank, repeat = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    specs = [a.rsplit(":", 1) for a in sys.argv[5:]]
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        inputs = [(load(d), float(w)) for d, w in specs]
        g, dropped = merge(inputs, tau_rel, rank, out)
        t = time.perf_counter() - t0
        best = t if best is None else min(best, t)
        del inputs
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"G": g, "dropped": dropped, "seconds": best, "rss_mb": rss, "kernel": kernel()}))


if __name__ == "__main__":
    main()
