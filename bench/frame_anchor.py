#!/usr/bin/python3
"""bench/frame_anchor.py: the prototype's way of receiving an adapter, timed.

The prototype (lumenintellects/plora, swarm/gossip_node.py) sends an adapter as
ONE NDJSON line: {"type":"offer", ..., "bytes_b64": base64(zlib.compress(payload)),
"encoding":"zlib"}. Its receiver does json.loads on the line, base64-decodes and
zlib-decompresses the payload. This script times exactly that on the captured
frame reference/wire/ndjson/full_gpt2_offer_real_adapter.offer.ndjson (the
gpt2 fixture adapter as the prototype put it on the wire), with CPU time, best
of ROUNDS rounds of at least SECONDS each. Hashing is left out of the timing
(bench_frame leaves it out too) and done once to check the payload.

usage: frame_anchor.py NDJSON_FILE [SECONDS [ROUNDS]]
prints: mb_s=<payload MB/s> payload_bytes=<n> wire_bytes=<line bytes> check=ok|bad
(MB = 10^6 bytes)
"""
import base64
import hashlib
import json
import sys
import time
import zlib


def decode(line):
    obj = json.loads(line)
    return obj, zlib.decompress(base64.b64decode(obj["bytes_b64"]))


def main():
    path = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    with open(path, "rb") as f:
        line = f.read()
    obj, payload = decode(line)
    ok = hashlib.sha256(payload).hexdigest() == obj["sha256"]
    best = 0.0
    for _ in range(rounds):
        n, t0 = 0, time.process_time()
        while True:
            _, p = decode(line)
            n += len(p)
            dt = time.process_time() - t0
            if dt >= seconds:
                break
        best = max(best, n / dt / 1e6)
    print("mb_s=%.3f payload_bytes=%d wire_bytes=%d check=%s"
          % (best, len(payload), len(line), "ok" if ok else "bad"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
