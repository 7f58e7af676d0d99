#!/usr/bin/env python3
"""smallworld's Python package against hnswlib's, in one process, same data.

What a Python user sees when switching: build time (add on N threads) and
single-thread query throughput at each ef, with recall@10 against the
ground truth shipped with the data.  Both go through their Python
bindings, so binding overhead counts; queries are one batch call per ef
with one thread.  Each figure is the median of --repeat runs; the spread
(min-max) is printed beside it.

    python3 bench/python_vs_hnswlib.py [--data DIR] [--threads 2] [--repeat 3]

DIR holds base.{fbin,u8bin}, query.{fbin,u8bin} and gt.ibin (bigann10k by
default, from ../shared).  Needs `pip install hnswlib numpy` and the
smallworld package (pip install ., or PYTHONPATH=build/python after make).
"""
import argparse
import os
import statistics
import time

import numpy as np

import hnswlib
import smallworld.hnswlib as swh


def read_bin(path):
    dtype = {".fbin": np.float32, ".u8bin": np.uint8, ".i8bin": np.int8, ".ibin": np.int32}[
        os.path.splitext(path)[1]]
    with open(path, "rb") as f:
        n, d = np.fromfile(f, dtype=np.int32, count=2)
        return np.fromfile(f, dtype=dtype, count=int(n) * int(d)).reshape(n, d)


def find(data_dir, stem):
    for ext in (".fbin", ".u8bin", ".i8bin"):
        p = os.path.join(data_dir, stem + ext)
        if os.path.exists(p):
            return p
    raise SystemExit(f"no {stem}.fbin/.u8bin in {data_dir}")


def recall(found, gt, k):
    return float(np.mean([len(set(f[:k].tolist()) & set(g[:k].tolist())) / k
                          for f, g in zip(found, gt)]))


def median_spread(xs):
    return statistics.median(xs), min(xs), max(xs)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data", "bigann10k"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--efs", default="10,16,24,32,48,64,96,128")
    args = ap.parse_args()

    base = read_bin(find(args.data, "base")).astype(np.float32)
    queries = read_bin(find(args.data, "query")).astype(np.float32)
    gt = read_bin(os.path.join(args.data, "gt.ibin"))
    n, dim = base.shape
    efs = [int(e) for e in args.efs.split(",")]
    print(f"data {args.data}: {n} x {dim}, {len(queries)} queries; M 16, ef_construction 200, "
          f"build on {args.threads} threads, queries on 1; median of {args.repeat} "
          f"(min-max); smallworld kernels: {__import__('smallworld').simd}")

    libs = {"hnswlib": hnswlib, "smallworld": swh}
    build = {name: [] for name in libs}
    qps = {(name, ef): [] for name in libs for ef in efs}
    rec = {}
    for _ in range(args.repeat):
        for name, mod in libs.items():  # alternate, so drift hits both alike
            p = mod.Index(space="l2", dim=dim)
            p.init_index(max_elements=n, M=16, ef_construction=200, random_seed=100)
            t = time.perf_counter()
            p.add_items(base, np.arange(n), num_threads=args.threads)
            build[name].append(time.perf_counter() - t)
            for ef in efs:
                p.set_ef(ef)
                t = time.perf_counter()
                labels, _ = p.knn_query(queries, k=args.k, num_threads=1)
                qps[(name, ef)].append(len(queries) / (time.perf_counter() - t))
                rec[(name, ef)] = recall(labels, gt, args.k)

    for name in libs:
        m, lo, hi = median_spread(build[name])
        print(f"build {name:10s} {m:7.2f} s  ({lo:.2f}-{hi:.2f})")
    hb = statistics.median(build["hnswlib"])
    print(f"build time smallworld / hnswlib: {statistics.median(build['smallworld']) / hb:.2f}")
    print()
    print(f"{'ef':>4}  {'hnswlib recall':>14} {'QPS':>8} {'(min-max)':>15}  "
          f"{'smallworld recall':>17} {'QPS':>8} {'(min-max)':>15}  {'QPS ratio':>9}")
    for ef in efs:
        hm, hlo, hhi = median_spread(qps[("hnswlib", ef)])
        sm, slo, shi = median_spread(qps[("smallworld", ef)])
        print(f"{ef:>4}  {rec[('hnswlib', ef)]:>14.4f} {hm:>8.0f} {f'({hlo:.0f}-{hhi:.0f})':>15}  "
              f"{rec[('smallworld', ef)]:>17.4f} {sm:>8.0f} {f'({slo:.0f}-{shi:.0f})':>15}  "
              f"{sm / hm:>9.2f}")


if __name__ == "__main__":
    main()
