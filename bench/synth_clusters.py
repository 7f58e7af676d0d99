#!/usr/bin/env python3
"""Recover the cluster of every row of a make_synth.py data set.

Why this exists.  sw_bench_delete --mode cluster deletes one whole cluster
of the synthetic mixture and measures how the rest of the index fares, so it
needs to know which mixture component each base row (and each query) was
drawn from.  make_synth.py does not write that down, and re-clustering the
vectors (k-means, nearest centre) would only approximate it: the clusters
are anisotropic and overlap.  So this script replays make_synth.py's random
draws exactly -- the same numpy Generator (default_rng(seed)), the same calls
in the same order with the same shapes and dtypes -- and keeps the component
labels `lab` that draw() throws away:

  centres  = standard_normal((clusters, d)) * 2
  bases    = standard_normal((clusters, rank, d)) / sqrt(rank)
  base     = draw(n):       lab first, then per cluster in id order
                            z (len x rank) and the noise (len x d)
  queries  = draw(queries): the same, after the WHOLE base draw

The query labels come from the stream only after every base draw, and the
normal variates are produced by a ziggurat whose consumption of the stream
depends on the values, so there is no way to skip ahead: the base draw is
replayed in full (a few seconds at 200,000 x 128).

Trust, then verify.  A replay that drifts (another numpy version with other
algorithms, other --clusters/--rank/--seed than the data was made with)
would give plausible-looking but wrong labels.  So the regenerated base
rows are compared with base.fbin (the first --verify-rows rows, default all
of them) and the regenerated queries with query.fbin, bit for bit; on any
difference nothing is written and the exit code is 1.

Output, next to the data (int32 n, then n int32 cluster ids, one per row):
  base_clusters.i32bin   query_clusters.i32bin

  python3 synth_clusters.py DATADIR [--n 200000 --d 128]
      [--queries 1000 --clusters 256 --rank 24 --seed 2026]

--n, --d and --queries default to the headers of base.fbin and query.fbin;
--clusters, --rank and --seed default to make_synth.py's defaults.
Exit codes: 0 written, 1 verification failed, 2 bad arguments or files.
"""
import argparse
import os
import sys

import numpy as np


def die(code, msg):
    print(f"synth_clusters.py: {msg}", file=sys.stderr)
    sys.exit(code)


def read_header(path):
    try:
        with open(path, "rb") as f:
            hdr = np.frombuffer(f.read(8), dtype=np.int32)
    except OSError as e:
        die(2, f"{path}: {e.strerror}")
    if len(hdr) != 2 or hdr[0] <= 0 or hdr[1] <= 0:
        die(2, f"{path}: not a big-ann .fbin file (bad header)")
    n, d = int(hdr[0]), int(hdr[1])
    size = os.path.getsize(path)
    if size != 8 + 4 * n * d:
        die(2, f"{path}: header says {n} x {d} float32 but the file has {size - 8} bytes of data")
    return n, d


def draw(rng, n, centres, bases, noise):
    """make_synth.py's draw(), returning the component labels as well."""
    k, d = centres.shape
    lab = rng.integers(0, k, size=n)
    out = np.empty((n, d), dtype=np.float32)
    for c in range(k):
        idx = np.nonzero(lab == c)[0]
        if len(idx) == 0:
            continue
        z = rng.standard_normal((len(idx), bases.shape[1]), dtype=np.float32)
        out[idx] = centres[c] + z @ bases[c] + noise * rng.standard_normal((len(idx), d), dtype=np.float32)
    return out, lab


def verify(what, path, rows, regenerated):
    """Compare the first `rows` rows of `path` with `regenerated`, bit for bit."""
    stored = np.memmap(path, dtype=np.float32, mode="r", offset=8,
                       shape=(regenerated.shape[0], regenerated.shape[1]))
    a = np.ascontiguousarray(stored[:rows]).view(np.uint32)
    b = np.ascontiguousarray(regenerated[:rows]).view(np.uint32)
    bad = np.nonzero((a != b).any(axis=1))[0]
    if len(bad):
        die(1, f"{what}: regenerated row {bad[0]} differs from {path} ({len(bad)} of the first "
               f"{rows} rows differ); wrong --clusters/--rank/--seed, or a numpy whose random "
               f"algorithms differ from the one that made the data (numpy {np.__version__} here)")
    print(f"verified: the first {rows} of {regenerated.shape[0]} {what} rows equal {path} bit for bit")


def write_ids(path, lab):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(np.array([len(lab)], dtype=np.int32).tobytes())
        f.write(lab.astype(np.int32).tobytes())
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description="cluster ids of a make_synth.py data set")
    ap.add_argument("data", help="directory holding base.fbin and query.fbin from make_synth.py")
    ap.add_argument("--n", type=int, help="base rows the data was made with (default: base.fbin header)")
    ap.add_argument("--d", type=int, help="dimension (default: base.fbin header)")
    ap.add_argument("--queries", type=int, help="query rows (default: query.fbin header)")
    ap.add_argument("--clusters", type=int, default=256)
    ap.add_argument("--rank", type=int, default=24)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--verify-rows", type=int, default=0,
                    help="base rows to compare with base.fbin (default 0 = all)")
    a = ap.parse_args()

    base_path = os.path.join(a.data, "base.fbin")
    query_path = os.path.join(a.data, "query.fbin")
    bn, bd = read_header(base_path)
    qn, qd = read_header(query_path)
    n = a.n if a.n is not None else bn
    d = a.d if a.d is not None else bd
    nq = a.queries if a.queries is not None else qn
    if (n, d) != (bn, bd):
        die(2, f"--n {n} --d {d} but {base_path} is {bn} x {bd}")
    if (nq, d) != (qn, qd):
        die(2, f"--queries {nq} --d {d} but {query_path} is {qn} x {qd}")
    if a.clusters <= 0 or a.rank <= 0 or a.verify_rows < 0:
        die(2, "--clusters and --rank must be positive, --verify-rows non-negative")
    rows = n if a.verify_rows == 0 else min(a.verify_rows, n)

    rng = np.random.default_rng(a.seed)
    centres = rng.standard_normal((a.clusters, d), dtype=np.float32) * 2.0
    bases = rng.standard_normal((a.clusters, a.rank, d), dtype=np.float32) / np.sqrt(a.rank)
    base, base_lab = draw(rng, n, centres, bases, 0.15)
    q, q_lab = draw(rng, nq, centres, bases, 0.15)
    verify("base", base_path, rows, base)
    verify("query", query_path, nq, q)

    base_out = os.path.join(a.data, "base_clusters.i32bin")
    query_out = os.path.join(a.data, "query_clusters.i32bin")
    write_ids(base_out, base_lab)
    write_ids(query_out, q_lab)
    sizes = np.bincount(base_lab, minlength=a.clusters)
    qsizes = np.bincount(q_lab, minlength=a.clusters)
    big = int(np.argmax(sizes))
    print(f"wrote {base_out} ({n} ids) and {query_out} ({nq} ids); {a.clusters} clusters, "
          f"base sizes {sizes.min()}..{sizes.max()} (largest: cluster {big}, {sizes[big]} rows, "
          f"{qsizes[big]} queries), queries per cluster {qsizes.min()}..{qsizes.max()}")


if __name__ == "__main__":
    main()
