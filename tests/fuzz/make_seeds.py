#!/usr/bin/env python3
"""Write the seed inputs of the loader fuzzer into tests/fuzz/corpus.

Small valid index files of every shape the loader must accept: each
metric, empty, one vector, tombstones, slots freed by deletion, metadata,
several layers (M 2), written by the library as it is (seed-v4-*).  The
fuzzer mutates these; what it finds is merged in beside them (`make fuzz`).
Run with the package importable (PYTHONPATH=build/python).

The seed-legacy-* files are the same shapes in format versions 1 to 3:
this script wrote them with smallworld 0.2.0 (which wrote version 3, and
rewrote the files without metadata as versions 1 and 2 by dropping the
metadata length field).  No library writes those versions any more, so
they are kept as they are rather than generated.
"""
import os
import sys
import tempfile

import numpy as np

import smallworld

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    seeds = {}
    with tempfile.TemporaryDirectory() as d:
        def save(name, ix):
            path = os.path.join(d, name)
            ix.save(path)  # with the package's metadata
            ix._ix.set_metadata(b"")
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
    for name, raw in seeds.items():
        with open(os.path.join(OUT, "seed-v4-" + name), "wb") as f:
            f.write(raw)
    print(f"{len(seeds)} seeds in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
