#!/usr/bin/env python3
"""tests/integration/mk_adapter.py DIR LAYERS: write a valid synthetic PEFT
adapter into DIR for the daemon tests: LAYERS q_proj LoRA pairs (r 8, 16384
wide, F32, 1 MiB per layer) plus adapter_config.json. Values are random
mantissas under a fixed exponent (byte 3 of each little-endian F32 holds the
sign and the exponent's top bits; 0x3c / 0xbc keeps |x| in [2^-7, 2^-5)), so
every value is finite and no tensor repeats another: a transfer resumed at a
wrong offset cannot produce the same bytes."""
import json
import os
import struct
import sys

d, layers = sys.argv[1], int(sys.argv[2])
r, width = 8, 16384
header, off = {}, 0
for i in range(layers):
    for part, shape in (("lora_A", [r, width]), ("lora_B", [width, r])):
        n = 4 * shape[0] * shape[1]
        header["base_model.model.layers.%d.q_proj.%s.weight" % (i, part)] = {
            "dtype": "F32", "shape": shape, "data_offsets": [off, off + n]}
        off += n
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
top = bytes((0x3c | (b & 0x80)) for b in range(256))
with open(os.path.join(d, "adapter_model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    left = off
    while left:
        n = min(left, 8 << 20)
        buf = bytearray(os.urandom(n))
        buf[3::4] = bytes(buf[3::4]).translate(top)
        f.write(buf)
        left -= n
with open(os.path.join(d, "adapter_config.json"), "w") as f:
    json.dump({"base_model_name_or_path": "synthetic-base", "peft_type": "LORA",
               "task_type": "CAUSAL_LM", "r": r, "lora_alpha": 16, "lora_dropout": 0.0,
               "bias": "none", "fan_in_fan_out": False, "target_modules": ["q_proj"]}, f)
