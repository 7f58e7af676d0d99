#!/usr/bin/env python3
"""memory.py: resident memory of a loaded index, smallworld against its peers.

Why this script exists, and why it is built the way it is.

Issue 9 asks for search speed "with memory not more than hnswlib's".  A
library's own count of its bytes (sw_memory_usage) leaves out what the
allocator keeps around, and hnswlib reports nothing, so the fair figure is
what the operating system sees: the resident set of a process serving the
index.  Each library gets its own fresh processes, so nothing one library
allocated is counted against another:

  1. build: read the base vectors, build the index on --threads threads
     (M 16, ef_construction 200, squared L2, float32, labels = row
     numbers, the settings of ann_side_by_side.py), save it to a file in
     --workdir, and report the build's peak resident set (VmHWM) less the
     resident set before the build (interpreter, NumPy, the library, the
     vectors);
  2. serve: in a new process, import NumPy and the library, then load the
     saved file and report the growth of the resident set (VmRSS after the
     load less VmRSS before it): the memory a server pays for the index.
     The file is in the page cache by then, so the load is not slowed by
     the disk, and a loaded index is anonymous memory, counted in full.
     After the load one search of the first query at ef 64 runs, so
     scratch a first search allocates (visited marks, pools) is counted.

Reported per library: bytes per vector served, the saved file's size, and
the ratio to hnswlib.  smallworld is measured twice: loaded (sw_load, all
in memory) and memory-mapped (load(mmap=True): the records stay in the
page cache, shared, and only what is read becomes resident; its growth is
reported after a pass over all queries at ef 64, which reads a large part
of them).

  python3 bench/memory.py --data DIR_OR_NAME [--libs smallworld,hnswlib,faiss,usearch]
      [--threads 2] [--workdir DIR]

Data as in ann_side_by_side.py (it reuses that script's loader).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

CHILD = r"""
import json, os, sys, time
sys.path.insert(0, {here!r})
import numpy as np

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0

lib, mode, path, data, threads = {lib!r}, {mode!r}, {path!r}, {data!r}, {threads!r}
import ann_side_by_side as sbs
args = type("A", (), dict(data=data, base=None, query=None, gt=None, name=None, nq=0, k=10))()
name, base, queries, gt, files = sbs.load(args)
n, d = base.shape
if lib.startswith("smallworld"):
    import smallworld as m
elif lib == "hnswlib":
    import hnswlib as m
elif lib == "faiss":
    import faiss as m
else:
    import usearch.index as m
out = {{}}
if mode == "build":
    del queries
    before = status("VmRSS")
    if lib.startswith("smallworld"):
        ix = m.Index(d, metric="l2", M=16, ef_construction=200)
        ix.add(base, np.arange(n, dtype=np.uint64), threads=threads)
        ix.save(path)
    elif lib == "hnswlib":
        ix = m.Index(space="l2", dim=d)
        ix.init_index(max_elements=n, M=16, ef_construction=200, random_seed=100)
        ix.add_items(base, np.arange(n), num_threads=threads)
        ix.save_index(path)
    elif lib == "faiss":
        m.omp_set_num_threads(threads)
        ix = m.IndexHNSWFlat(d, 16)
        ix.hnsw.efConstruction = 200
        ix.add(base)
        m.write_index(ix, path)
    else:
        ix = m.Index(ndim=d, metric="l2sq", dtype="f32", connectivity=16, expansion_add=200)
        ix.add(np.arange(n, dtype=np.uint64), base, threads=threads)
        ix.save(path)
    out["build_peak"] = status("VmHWM") - before
else:
    del base
    q = np.ascontiguousarray(queries[:1])
    before = status("VmRSS")
    if lib == "smallworld":
        ix = m.Index.load(path)
        ix.search(q, k=10, ef=64, threads=1)
    elif lib == "smallworld-mmap":
        ix = m.Index.load(path, mmap=True)
        ix.search(queries, k=10, ef=64, threads=1)
    elif lib == "hnswlib":
        ix = m.Index(space="l2", dim=d)
        ix.load_index(path, max_elements=n)
        ix.set_ef(64)
        ix.knn_query(q, k=10, num_threads=1)
    elif lib == "faiss":
        m.omp_set_num_threads(1)
        ix = m.read_index(path)
        ix.hnsw.efSearch = 64
        ix.search(q, 10)
    else:
        ix = m.Index.restore(path)
        ix.expansion_search = 64
        ix.search(q, 10, threads=1)
    out["served"] = status("VmRSS") - before
out["n"] = n
print("RESULT " + json.dumps(out))
"""


def child(lib, mode, path, data, threads):
    code = CHILD.format(here=HERE, lib=lib, mode=mode, path=path, data=data, threads=threads)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{lib} {mode} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--libs", default="smallworld,hnswlib,faiss,usearch")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--workdir", default=None, help="where the index files go (default: a temp dir)")
    a = ap.parse_args()
    work = a.workdir or tempfile.mkdtemp(prefix="sw_memory.")
    os.makedirs(work, exist_ok=True)
    rows = []
    for lib in [x.strip() for x in a.libs.split(",") if x.strip()]:
        path = os.path.join(work, f"index.{lib}")
        try:
            b = child(lib, "build", path, a.data, a.threads)
            serves = [lib] + (["smallworld-mmap"] if lib == "smallworld" else [])
            for s in serves:
                r = child(s, "serve", path, a.data, a.threads)
                rows.append((s, b["n"], r["served"], b["build_peak"], os.path.getsize(path)))
                print(f"{s:16s} served {r['served'] / b['n']:8.1f} B/vector   build peak "
                      f"{b['build_peak'] / b['n']:8.1f} B/vector   file "
                      f"{os.path.getsize(path) / b['n']:8.1f} B/vector", flush=True)
        except (RuntimeError, ImportError) as e:
            print(f"skip {lib}: {e}", flush=True)
        finally:
            if os.path.exists(path):
                os.remove(path)
    ref = {r[0]: r for r in rows}.get("hnswlib")
    print()
    print("| library | served, bytes/vector | ×hnswlib | build peak, bytes/vector | file, bytes/vector |")
    print("|---|---|---|---|---|")
    for s, n, served, peak, size in rows:
        ratio = f"{served / ref[2]:.2f}" if ref else "-"
        print(f"| {s} | {served / n:.0f} | {ratio} | {peak / n:.0f} | {size / n:.0f} |")
    if not a.workdir:
        os.rmdir(work)


if __name__ == "__main__":
    main()
