#!/usr/bin/env python3
"""Writes the seed corpus fuzz/corpus/: 40 pseudo-random inputs (fixed seed) of 64..1024 bytes.
Random bytes decode to every branch of compress_fuzz.cc's decoder (dtypes, shapes, option
edges, invalid tensors, fill modes), and their length lets libFuzzer start from full-size cases.
libFuzzer's own finds stay out of it (scripts/fuzz.sh writes them to build-fuzz/corpus)."""
import os
import random

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, 'corpus')
os.makedirs(out, exist_ok=True)
r = random.Random(20261201)
for i in range(40):
    n = r.choice([64, 96, 128, 256, 512, 1024])
    with open(os.path.join(out, f'seed-{i:02d}'), 'wb') as f:
        f.write(bytes(r.randrange(256) for _ in range(n)))
