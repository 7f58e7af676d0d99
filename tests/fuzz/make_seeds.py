#!/usr/bin/env python3
"""Write the seed inputs of the loader fuzzer into tests/fuzz/corpus.

Small valid index files of every shape the loader must accept: each
metric, empty, one vector, tombstones, slots freed by deletion, metadata,
several layers (M 2), and the same files rewritten as format versions 1
and 2.  The fuzzer mutates these; what it finds is merged in beside them
(`make fuzz`).  Run with the package importable (PYTHONPATH=build/python).
"""
import os
import sys
import tempfile

import numpy as np

import smallworld

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def crc32c(data: bytes) -> int:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    crc = 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def older(raw: bytes, version: int) -> bytes:
    """The same index as format version 1 or 2 (no metadata block; version
    1 has no tombstone bit, so only files without tombstones qualify)."""
    assert raw[80:84] == b"\0\0\0\0", "metadata present"
    body = raw[:8] + version.to_bytes(4, "little") + raw[12:80] + raw[84:-4]
    return body + crc32c(body).to_bytes(4, "little")


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    seeds = {}
    with tempfile.TemporaryDirectory() as d:
        def save(name, ix):
            path = os.path.join(d, name)
            ix.save(path)
            ix._ix.set_metadata(b"")  # keep the older-version rewrites possible
            ix._ix.save(path + ".bare")
            seeds[name] = open(path, "rb").read()
            seeds[name + "-bare"] = open(path + ".bare", "rb").read()

        for metric in ("l2", "ip", "cosine", "l1"):
            ix = smallworld.Index(4, metric=metric, M=4)
            ix.add(rng.standard_normal((24, 4)).astype(np.float32))
            save(f"small-{metric}", ix)
        save("empty", smallworld.Index(3))
        one = smallworld.Index(2)
        one.add(np.ones((1, 2), dtype=np.float32), [2**63 + 5])
        save("one", one)
        layered = smallworld.Index(3, M=2, M0=2, ef_construction=8)
        layered.add(rng.standard_normal((40, 3)).astype(np.float32))
        save("layers", layered)
        tomb = smallworld.Index(4, M=4)
        tomb.add(rng.standard_normal((30, 4)).astype(np.float32))
        tomb.mark_deleted([1, 5, 9])
        save("tombstones", tomb)
        freed = smallworld.Index(4, M=4)
        freed.add(rng.standard_normal((30, 4)).astype(np.float32))
        freed.delete([2, 3, 4])
        save("deleted", freed)
    for name in list(seeds):
        if name.endswith("-bare") and "tombstones" not in name:
            seeds[name.replace("-bare", "-v1")] = older(seeds[name], 1)
        if name.endswith("-bare"):
            seeds[name.replace("-bare", "-v2")] = older(seeds[name], 2)
    for name, raw in seeds.items():
        with open(os.path.join(OUT, "seed-" + name), "wb") as f:
            f.write(raw)
    print(f"{len(seeds)} seeds in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
