#!/usr/bin/env python3
"""quant_side_by_side.py: smallworld's quantized storage against faiss's, hnswlib as the yardstick.

Why this script exists, and why it is built the way it is.

Issue 10 gives smallworld compressed vectors in the graph: float16, int8,
one bit a dimension and product quantization, with the float32 copies kept
in memory, kept in the index file, or dropped.  Each such type trades three
things at once: recall at a given effort, queries per second, and bytes per
vector.  One of them alone says nothing ("int8 is 4x smaller" is true of
every int8 index, however bad its recall), so this one process measures all
three for every configuration, on the same data, on the same machine, in
the same minute, next to the two peers a user would otherwise pick:
hnswlib's float32 index (the reference every ratio is taken against) and
faiss's HNSW over its own scalar and product quantizers.

What is measured, and what is held fixed:

  - Same graph.  M 16, ef_construction 200, squared L2, labels = row
    numbers, integer data converted to float32 once at load, for all: the
    settings of ann_side_by_side.py, whose data loader (--data as there:
    bigann10k, a make_synth directory, or --base/--query/--gt), recall,
    frontier, interpolation and machine helpers are imported, not copied.
  - The configurations.  hnswlib float32; faiss IndexHNSWSQ(d, QT_8bit, 16),
    IndexHNSWSQ(d, QT_fp16, 16) and IndexHNSWPQ(d, pq_m, 16) (8 bits a
    sub-quantizer, efConstruction 200); smallworld dtype float32, float16,
    int8, binary and pq (the same pq_m) with keep="memory", and int8 with
    keep="disk" and keep="none".  faiss's HNSW*Q walk AND answer with
    quantized distances (there is no re-ranking inside IndexHNSWSQ/PQ), so
    the like-for-like smallworld entry for them is keep="none"; keep="memory"
    is what smallworld gives by default (the best rerank x k walk candidates
    re-scored with the float32 copies), and it pays the float32 bytes for it.
  - Same training rows.  A quantizer that needs training is trained
    explicitly, on the same rows for both libraries, before the add: the
    whole base set is given to the scalar quantizers (faiss SQ8 reads all
    of it; smallworld int8 and binary take at most 65,536 evenly spaced
    rows of what they are given), a fixed random sample of at most
    --pq-train rows (65,536) for PQ.  Training is inside the build time (a user pays it) and also shown
    on its own.  float16 and float32 need none.
  - Build on --build-threads threads, one add call over the base set; wall
    time.  Every index is then saved to --workdir (a temporary directory
    outside the repository, removed at the end).  keep="disk" is only what
    it says after a save and a fresh load (until then the float32 copies are
    in memory), so that configuration is saved, dropped and loaded again
    before any search; the others are searched as built.
  - Search speed as ann_side_by_side.py measures it: one thread, one batch
    call over the whole query set per pass, the passes pinned to one CPU
    (--pin-cpu), each (configuration, ef) pass repeated --repeat times with
    repeat r of everything before repeat r + 1 of anything and the order of
    the configurations rotating between repeats; median QPS, slowest and
    fastest as the spread; waiting for this project's CI to go quiet
    (--quiet-pattern) before each build and each round.  QPS at recall
    0.90 / 0.95 / 0.99 is read off each configuration's Pareto frontier,
    interpolated in log(QPS).  A configuration without re-ranking may never
    reach a target: "not reached", and its best recall is shown.
  - The re-rank factor.  The library's default (4) is to be chosen from
    measurement, so smallworld int8 (--rerank-configs) is also swept over
    rerank 1, 2, 4, 8 at a few ef values (--rerank-ef), in the same
    interleaved rounds.  rerank x k is capped at ef by the library, so at
    ef <= rerank x k two factors re-score the same candidates.
  - Memory in a FRESH process per configuration, the method of memory.py:
    a child imports NumPy and the library and reads the queries, notes
    /proc/self/status, loads the saved file (hnswlib load_index,
    faiss.read_index, smallworld Index.load(mmap=False)), runs the whole
    query set at one ef (--mem-ef), drops the result arrays, and notes
    /proc/self/status again.  The growth of VmRSS is split into RssAnon
    (the process's own memory: what a loaded index costs everywhere) and
    RssFile (pages of mapped files: for keep="disk" the float32 copies, read
    from the page cache, shared between processes and reclaimable, so not a
    cost of the same kind), each per vector, with the ratio of anon and of
    anon + file to hnswlib's.  RssFile growth also counts library code pages
    the first search touches (measured on bigann10k: 0.4 MB for hnswlib,
    2.2 MB for faiss, i.e. 43 and 247 bytes a vector at 9,000 vectors, 2 at
    a million), so the resident part of the index file's own mapping is
    read from /proc/self/smaps and shown beside it, and the second ratio is
    (anon + that) over hnswlib's: the index's bytes, not the library's code
    (the CSV has the ratio with the whole RssFile too).  The child also
    checks its recall against the sweep's at that ef.  The saved file's
    size per vector is shown too.

Output in --out (default bench/results), named after the data set:
NAME_quant_table.txt (what was printed), NAME_quant_sweep.csv (one row per
configuration, ef and rerank), NAME_quant_summary.csv (one row per
configuration: build, memory, QPS at the targets, ratios) and
NAME_quant.png (recall against QPS, log scale, one line per configuration;
the whole range, and zoomed on recall >= --xmin) when matplotlib is there.

  python3 bench/quant_side_by_side.py --data bigann10k [--quick]
      [--libs hnswlib,faiss,smallworld] [--configs NAME,...] [--ef LIST]
      [--repeat 3] [--build-threads N] [--pin-cpu C] [--pq-m 16]
      [--rerank-configs sw-int8] [--rerank-ef 16,32,64,128] [--mem-ef 64]
      [--workdir DIR] [--out DIR] [--name NAME]

Memory: every selected index is alive in this process during the sweep
(at 1M x 128 about 8 GB for all eleven, plus the base set); --configs
picks fewer.  smallworld is taken from the Python package
(PYTHONPATH=build/python after a cmake build, or pip install .).
"""
import argparse
import csv
import gc
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ann_side_by_side as sbs  # noqa: E402  (the loader, frontier, machine helpers)

TARGETS = sbs.TARGETS
QUICK_EF = "10,16,24,32,48,64,128"
RERANKS = (1, 2, 4, 8)
ALL_LIBS = ("hnswlib", "faiss", "smallworld")


def fail(msg):
    print(f"quant_side_by_side: {msg}", file=sys.stderr)
    sys.exit(2)


# ==== Configurations ====

def quietly(fn):
    """Run fn with file descriptor 2 (C++ writes there) sent to a temporary file;
    return the lines written."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as t:
        os.dup2(t.fileno(), 2)
        try:
            fn()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        t.seek(0)
        return [x for x in t.read().decode(errors="replace").splitlines() if x.strip()]

#
# One object per configuration: build(base, threads, train_rows) once,
# save(path), load(path, n, d) (the fresh process, and keep="disk"),
# prepare(ef, rerank) before a pass (not timed), search(queries, k) timed.

class Hnswlib:
    lib, dtype, keep, storage = "hnswlib", "float32", "memory", "float32"
    trains = False

    def __init__(self, name, pq_m):
        import importlib.metadata
        import hnswlib
        self.name, self.mod = name, hnswlib
        self.version = importlib.metadata.version("hnswlib")

    def build(self, base, threads, train_rows):
        self.ix = self.mod.Index(space="l2", dim=base.shape[1])
        self.ix.init_index(max_elements=len(base), M=16, ef_construction=200, random_seed=100)
        self.ix.add_items(base, np.arange(len(base)), num_threads=threads)

    def save(self, path):
        self.ix.save_index(path)

    def load(self, path, n, d):
        self.ix = self.mod.Index(space="l2", dim=d)
        self.ix.load_index(path, max_elements=n)

    def prepare(self, ef, rerank):
        self.ix.set_ef(ef)

    def search(self, q, k):
        return self.ix.knn_query(q, k=k, num_threads=1)[0]


class FaissQ:
    lib, dtype, keep = "faiss", None, "none"

    def __init__(self, name, pq_m):
        import faiss
        self.name, self.mod, self.pq_m = name, faiss, pq_m
        opts = faiss.get_compile_options().split()
        simd = [o for o in opts if o.startswith(("AVX", "SVE", "NEON"))]
        self.version = faiss.__version__ + (f" ({' '.join(simd)})" if simd else "")

    def make(self, d):
        raise NotImplementedError

    def build(self, base, threads, train_rows):
        self.mod.omp_set_num_threads(threads)
        try:
            self.ix = self.make(base.shape[1])  # METRIC_L2 (squared)
            self.ix.hnsw.efConstruction = 200
            t0 = time.perf_counter()
            if not self.ix.is_trained:
                x = base[train_rows] if self.trains_on_sample else base
                said = quietly(lambda: self.ix.train(x))
                if said:  # k-means's "please provide at least ..." once per sub-quantizer
                    self.note = f"faiss train said {said[0]!r}" + (
                        f" (x{len(said)})" if len(said) > 1 else "")
            self.train_s = time.perf_counter() - t0
            self.ix.add(base)  # ids are row numbers
        finally:
            self.mod.omp_set_num_threads(1)

    def save(self, path):
        self.mod.write_index(self.ix, path)

    def load(self, path, n, d):
        self.mod.omp_set_num_threads(1)
        self.ix = self.mod.read_index(path)

    def prepare(self, ef, rerank):
        self.mod.omp_set_num_threads(1)
        self.ix.hnsw.efSearch = ef

    def search(self, q, k):
        return self.ix.search(q, k)[1]


class FaissSQ8(FaissQ):
    dtype, storage, trains, trains_on_sample = "int8", "SQ 8 bit, no re-rank", True, False

    def make(self, d):
        return self.mod.IndexHNSWSQ(d, self.mod.ScalarQuantizer.QT_8bit, 16)


class FaissFP16(FaissQ):
    dtype, storage, trains, trains_on_sample = "float16", "SQ fp16, no re-rank", False, False

    def make(self, d):
        return self.mod.IndexHNSWSQ(d, self.mod.ScalarQuantizer.QT_fp16, 16)


class FaissPQ(FaissQ):
    dtype, trains, trains_on_sample = "pq", True, True

    @property
    def storage(self):
        return f"PQ {self.pq_m}x8 bit, no re-rank"

    def make(self, d):
        return self.mod.IndexHNSWPQ(d, self.pq_m, 16, 8)  # (d, pq M, HNSW M, pq nbits)


class Smallworld:
    lib = "smallworld"

    def __init__(self, name, pq_m, dtype, keep):
        import smallworld
        self.name, self.mod, self.pq_m = name, smallworld, pq_m
        self.dtype, self.keep = dtype, keep
        self.version = f"{smallworld.__version__} ({smallworld.simd})"
        self.trains = dtype in ("int8", "binary", "pq")
        extra = {"memory": "", "disk": ", float32 in the file", "none": ", no re-rank"}[keep]
        self.storage = (f"pq {pq_m}x8 bit" if dtype == "pq" else dtype) + extra

    def build(self, base, threads, train_rows):
        kw = dict(metric="l2", M=16, ef_construction=200, dtype=self.dtype, keep=self.keep)
        if self.dtype == "pq":
            kw["pq_m"] = self.pq_m
        self.ix = self.mod.Index(base.shape[1], **kw)
        t0 = time.perf_counter()
        if self.trains:
            self.ix.train(base[train_rows] if self.dtype == "pq" else base)
        self.train_s = time.perf_counter() - t0
        self.ix.add(base, np.arange(len(base), dtype=np.uint64), threads=threads)

    def save(self, path):
        self.ix.save(path)

    def load(self, path, n, d):
        self.ix = self.mod.Index.load(path, mmap=False)

    def prepare(self, ef, rerank):
        self.ef, self.rerank = ef, rerank

    def search(self, q, k):
        if self.rerank is None:  # the library's default
            return self.ix.search(q, k=k, ef=self.ef, threads=1)[0]
        return self.ix.search(q, k=k, ef=self.ef, threads=1, rerank=self.rerank)[0]


def sw(dtype, keep):
    return lambda name, pq_m: Smallworld(name, pq_m, dtype, keep)


# name -> (library, factory), in the order they are built, listed and plotted
CONFIGS = {
    "hnswlib": ("hnswlib", Hnswlib),
    "faiss-sq8": ("faiss", FaissSQ8),
    "faiss-fp16": ("faiss", FaissFP16),
    "faiss-pq": ("faiss", FaissPQ),
    "sw-float32": ("smallworld", sw("float32", "memory")),
    "sw-float16": ("smallworld", sw("float16", "memory")),
    "sw-int8": ("smallworld", sw("int8", "memory")),
    "sw-binary": ("smallworld", sw("binary", "memory")),
    "sw-pq": ("smallworld", sw("pq", "memory")),
    "sw-int8-disk": ("smallworld", sw("int8", "disk")),
    "sw-int8-none": ("smallworld", sw("int8", "none")),
}
INSTALL = {"smallworld": "cmake build and PYTHONPATH=build/python, or pip install .",
           "hnswlib": "pip install hnswlib", "faiss": "pip install faiss-cpu"}


# ==== Memory: the fresh process ====

def mapped_rss(path):
    """Resident bytes of this process's mappings of the file at path (/proc/self/smaps)."""
    real, total, inside = os.path.realpath(path), 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(None, 5)
            if len(head) >= 5 and "-" in head[0] and not head[0].endswith(":"):
                inside = len(head) == 6 and head[5].strip() == real
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1]) * 1024
    return total


def child_main(spec):
    """Runs in a new interpreter: load one saved index, serve the queries, report growth."""
    queries = np.ascontiguousarray(sbs.read_bin(spec["query"]), dtype=np.float32)
    gt = sbs.read_bin(spec["gt"])
    if spec["nq"]:
        queries = queries[:spec["nq"]]
    gt = np.ascontiguousarray(gt[:len(queries), :spec["k"]])
    cfg = CONFIGS[spec["config"]][1](spec["config"], spec["pq_m"])  # imports the library
    gc.collect()
    before = sbs.proc_status()
    t0 = time.perf_counter()
    cfg.load(spec["path"], spec["n"], spec["d"])
    load_s = time.perf_counter() - t0
    cfg.prepare(spec["ef"], None)
    found = cfg.search(queries, spec["k"])
    rec = sbs.recall_at_k(found, gt)
    del found  # the answer is the caller's memory, not the index's
    gc.collect()
    after = sbs.proc_status()
    out = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    out.update(index_file_rss=mapped_rss(spec["path"]), load_s=load_s, recall=rec)
    print("RESULT " + json.dumps(out), flush=True)


def measure_memory(spec):
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)],
                       capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"rc {r.returncode}: {(r.stdout + r.stderr).strip()[-1500:]}")


# ==== Plot ====

def plot(path, results, title, xmins):
    """One panel per left end of the recall axis: the whole range (quantized
    walks without re-ranking can end far below 0.9), and the region of the
    targets, where the lines are close."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        return "matplotlib not installed (pip install matplotlib): no plot"
    colour = {"float32": "tab:blue", "float16": "tab:green", "int8": "tab:red",
              "binary": "tab:purple", "pq": "tab:orange"}
    style = {"hnswlib": "-", "faiss": "--", "smallworld": "-"}
    marker = {"memory": "o", "disk": "s", "none": "v"}
    fig, axes = plt.subplots(1, len(xmins), figsize=(7 * len(xmins), 6), dpi=100, squeeze=False)
    kfmt = FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}")
    for ax, xmin in zip(axes[0], xmins):
        for name, r in results.items():
            cfg = r["cfg"]
            front = [p for p in r["front"] if p[0] >= xmin - 0.02]
            c = "black" if cfg.lib == "hnswlib" else colour.get(cfg.dtype, "grey")
            m = "x" if cfg.lib == "faiss" else ("D" if cfg.lib == "hnswlib" else marker[cfg.keep])
            ax.plot([p[0] for p in front], [p[1] for p in front], style[cfg.lib], color=c,
                    marker=m, markersize=4, linewidth=1.3, label=f"{name} ({cfg.storage})")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(kfmt)
        ax.yaxis.set_minor_formatter(kfmt)
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.set_xlim(xmin, 1.002)
        ax.set_xlabel("recall@10")
        ax.set_ylabel("queries per second, 1 thread (log)")
        ax.grid(True, which="both", linewidth=0.3)
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return None


# ==== Main ====

def int_list(s, flag):
    try:
        v = sorted({int(e) for e in s.split(",") if e.strip()})
    except ValueError:
        fail(f"{flag}: not a list of integers: {s!r}")
    if not v or v[0] < 1:
        fail(f"{flag}: need at least one value >= 1")
    return v


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        return child_main(json.loads(sys.argv[2]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="data directory, or a name under ../shared/data or /work/cache")
    ap.add_argument("--base")
    ap.add_argument("--query")
    ap.add_argument("--gt")
    ap.add_argument("--name", help="data set name in the output (default: the directory's)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"),
                    help="directory for the table, CSVs and plot (default bench/results)")
    ap.add_argument("--libs", default=",".join(ALL_LIBS))
    ap.add_argument("--configs", default="", help=f"subset of: {','.join(CONFIGS)} (default all)")
    ap.add_argument("--ef", default=None, help=f"ef sweep (default {sbs.DEFAULT_EF})")
    ap.add_argument("--repeat", type=int, default=None, help="passes per point (default 3)")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke run: --ef {QUICK_EF}, --repeat 1, --rerank-ef 16,32,64")
    ap.add_argument("--build-threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--pin-cpu", type=int, default=-2,
                    help="CPU the query passes run on (default: the lowest this process may "
                         "use; -1: not pinned)")
    ap.add_argument("--pq-m", type=int, default=16, help="PQ sub-quantizers, both libraries")
    ap.add_argument("--pq-train", type=int, default=65536, help="PQ training sample, rows")
    ap.add_argument("--rerank-configs", default="sw-int8",
                    help="smallworld configurations also swept over rerank 1,2,4,8")
    ap.add_argument("--rerank-ef", default=None, help="ef values of that sweep "
                    "(default 16,32,64,128)")
    ap.add_argument("--mem-ef", type=int, default=64, help="ef of the memory process's pass")
    ap.add_argument("--workdir", default=None,
                    help="where the saved indexes go (default: a new temporary directory, "
                         "removed at the end)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--nq", type=int, default=0, help="use the first N queries (0: all)")
    ap.add_argument("--xmin", type=float, default=0.85,
                    help="left end of the recall axis of the plot's second panel (the first "
                         "shows every configuration's whole frontier)")
    ap.add_argument("--quiet-pattern", default=sbs.QUIET_PATTERN,
                    help="wait while processes matching this (pgrep -f) run; '' to not wait")
    args = ap.parse_args()

    efs = int_list(args.ef or (QUICK_EF if args.quick else sbs.DEFAULT_EF), "--ef")
    rerank_efs = int_list(args.rerank_ef or ("16,32,64" if args.quick else "16,32,64,128"),
                          "--rerank-ef")
    repeat = args.repeat or (1 if args.quick else 3)
    if repeat < 1 or args.build_threads < 1 or args.k < 1 or args.mem_ef < 1 or args.pq_m < 1:
        fail("--repeat, --build-threads, --k, --mem-ef and --pq-m must be >= 1")
    libs = [x.strip() for x in args.libs.split(",") if x.strip()]
    for lib in libs:
        if lib not in ALL_LIBS:
            fail(f"--libs: unknown library {lib!r} (known: {', '.join(ALL_LIBS)})")
    wanted = [x.strip() for x in args.configs.split(",") if x.strip()] or list(CONFIGS)
    for c in wanted:
        if c not in CONFIGS:
            fail(f"--configs: unknown configuration {c!r} (known: {', '.join(CONFIGS)})")
    names = [c for c in CONFIGS if c in wanted and CONFIGS[c][0] in libs]
    rerank_names = [x.strip() for x in args.rerank_configs.split(",") if x.strip()]
    for c in rerank_names:
        if CONFIGS.get(c, ("",))[0] != "smallworld":
            fail(f"--rerank-configs: {c!r} is not a smallworld configuration")

    os.makedirs(args.out, exist_ok=True)
    name, base, queries, gt, files = sbs.load(args)
    n, d = base.shape
    lines = []

    def log(s=""):
        print(s, flush=True)
        lines.append(s)

    mach = sbs.machine()
    log(f"data {name}: base {n} x {d}, {len(queries)} queries, k {args.k}  ({', '.join(files)})")
    log(f"machine: {mach}; python {platform.python_version()}, numpy {np.__version__}")
    log(f"M 16, ef_construction 200, L2; build on {args.build_threads} threads; queries on 1 "
        f"thread, one batch call per pass; median of {repeat} passes (min-max)")
    if d % args.pq_m:
        log(f"note: pq_m {args.pq_m} does not divide dimension {d}: no PQ configurations")
        names = [c for c in names if c not in ("faiss-pq", "sw-pq")]

    # the same training rows for both libraries: the base set, or a fixed sample for PQ
    rng = np.random.default_rng(2026)
    train_rows = (np.sort(rng.choice(n, args.pq_train, replace=False)) if n > args.pq_train
                  else np.arange(n))
    log(f"training: scalar quantizers given all {n} rows (smallworld samples at most 65,536 "
        f"of them, evenly), PQ ({args.pq_m} x 8 bit) on {len(train_rows)} rows (seed 2026)")

    own_workdir = args.workdir is None
    work = tempfile.mkdtemp(prefix="sw_quant.") if own_workdir else args.workdir
    os.makedirs(work, exist_ok=True)
    paths = {}
    try:
        run(args, log, lines, name, base, queries, gt, files, names, rerank_names, efs,
            rerank_efs, repeat, train_rows, work, paths, mach)
    finally:
        for p in paths.values():
            if os.path.exists(p):
                os.remove(p)
        if own_workdir:
            shutil.rmtree(work, ignore_errors=True)


def run(args, log, lines, name, base, queries, gt, files, names, rerank_names, efs, rerank_efs,
        repeat, train_rows, work, paths, mach):
    n, d = base.shape
    nq = len(queries)

    # ---- build, save (and reload keep="disk") ----
    alive, build_s, train_s, file_size = {}, {}, {}, {}
    for cname in names:
        lib, factory = CONFIGS[cname]
        try:
            cfg = factory(cname, args.pq_m)
        except Exception as e:  # ImportError, or a broken install
            log(f"skip {cname}: cannot import {lib} ({type(e).__name__}: {e}); {INSTALL[lib]}")
            continue
        sbs.wait_quiet(args.quiet_pattern, log)
        la, c0 = sbs.loadavg(), sbs.busy_cpu()
        path = paths[cname] = os.path.join(work, f"{cname}.index")
        try:
            t0 = time.perf_counter()
            cfg.build(base, args.build_threads, train_rows)
            build_s[cname] = time.perf_counter() - t0
            train_s[cname] = getattr(cfg, "train_s", 0.0) if cfg.trains else None
            c1 = sbs.busy_cpu()
            t0 = time.perf_counter()
            cfg.save(path)
            save_s = time.perf_counter() - t0
            file_size[cname] = os.path.getsize(path)
            again = ""
            if cfg.keep == "disk":  # the float32 copies are in the file only after a load
                cfg.ix = None
                gc.collect()
                t0 = time.perf_counter()
                cfg.load(path, n, d)
                again = f", reloaded in {time.perf_counter() - t0:.2f} s"
        except Exception as e:
            log(f"skip {cname}: build failed ({type(e).__name__}: {e})")
            continue
        alive[cname] = cfg
        other = (f", other processes {((c1[0] - c0[0]) - (c1[1] - c0[1])) / build_s[cname]:.2f}"
                 " cores" if c0 and c1 else "")
        tr = f" (train {train_s[cname]:.2f} s)" if train_s[cname] is not None else ""
        log(f"build {cname:<13} {build_s[cname]:7.2f} s{tr}   saved {save_s:.2f} s, "
            f"{file_size[cname] / n:.0f} B/vector{again}   {cfg.lib} {cfg.version}   "
            f"(load avg before {la:.2f}{other})")
        if getattr(cfg, "note", None):
            log(f"  note: {cfg.note}")
    if not alive:
        fail("no configuration left to measure")

    sbs.pin_to(args.pin_cpu, log)

    # ---- sweep: repeat r of every pass before repeat r + 1 ----
    passes = [(c, ef, None) for ef in efs for c in alive]
    rr = [c for c in rerank_names if c in alive]
    passes += [(c, ef, r) for ef in rerank_efs for r in RERANKS for c in rr]
    times = {p: [] for p in passes}
    recalls = {}
    order = list(alive)
    for r in range(repeat):
        sbs.wait_quiet(args.quiet_pattern, log)
        log(f"pass {r + 1}/{repeat}: load avg {sbs.loadavg():.2f}")
        rank = {c: i for i, c in enumerate(order[r % len(order):] + order[:r % len(order)])}
        c0, w0 = sbs.busy_cpu(), time.monotonic()
        # configurations rotate within each (ef, rerank) group
        for p in sorted(passes, key=lambda p: (p[2] is not None, p[1], p[2] or 0, rank[p[0]])):
            cname, ef, rer = p
            if cname not in alive:
                continue
            cfg = alive[cname]
            try:
                cfg.prepare(ef, rer)
                t0 = time.perf_counter()
                found = cfg.search(queries, args.k)
                dt = time.perf_counter() - t0
            except Exception as e:
                log(f"skip {cname}: search failed at ef {ef} rerank {rer} "
                    f"({type(e).__name__}: {e})")
                del alive[cname]
                continue
            times[p].append(dt)
            rec = sbs.recall_at_k(found, gt)
            if p in recalls and abs(recalls[p] - rec) > 1e-9:
                log(f"note: {cname} ef {ef} rerank {rer}: recall {rec:.4f} differs from the "
                    f"first pass's {recalls[p]:.4f}")
            recalls.setdefault(p, rec)
        c1, wall = sbs.busy_cpu(), time.monotonic() - w0
        if c0 and c1 and wall > 0:
            log(f"  pass {r + 1} took {wall:.1f} s; other processes used "
                f"{((c1[0] - c0[0]) - (c1[1] - c0[1])) / wall:.2f} cores meanwhile")

    def point(p):
        ts = times[p]
        return (recalls[p], nq / statistics.median(ts), nq / max(ts), nq / min(ts), p[1])

    results = {}
    for cname, cfg in alive.items():
        pts = [point((cname, ef, None)) for ef in efs]
        front = sbs.frontier(pts)
        results[cname] = {"cfg": cfg, "points": pts, "front": [p[:4] for p in front],
                          "front_efs": {p[4] for p in front},
                          "at": {t: sbs.qps_at([p[:4] for p in front], t) for t in TARGETS}}

    # ---- memory: one fresh process per configuration, after the sweep ----
    for cfg in alive.values():
        cfg.ix = None  # the parent's copies go before the children start
    gc.collect()
    mem = {}
    log("")
    log(f"memory: a fresh process per configuration loads the saved index and runs the "
        f"{nq} queries at ef {args.mem_ef}")
    for cname in alive:
        spec = dict(config=cname, pq_m=args.pq_m, path=paths[cname], query=files[1],
                    gt=files[2], nq=args.nq, k=args.k, ef=args.mem_ef, n=n, d=d)
        try:
            mem[cname] = measure_memory(spec)
        except RuntimeError as e:
            log(f"  {cname}: memory not measured ({e})")
            continue
        finally:
            os.remove(paths[cname])
        m = mem[cname]
        swept = recalls.get((cname, args.mem_ef, None))
        if swept is not None and abs(swept - m["recall"]) > 1e-9:
            log(f"  note: {cname}: recall {m['recall']:.4f} in the fresh process, "
                f"{swept:.4f} in the sweep (ef {args.mem_ef})")

    # ---- tables ----
    log("")
    log(f"recall@{args.k} and median QPS (1 thread) per ef; the spread of every point is in "
        "the sweep CSV")
    cols = list(results)
    w = max(14, max(len(c) for c in cols))
    log(f"{'ef':>5}  " + "  ".join(f"{c:>{w}}" for c in cols))
    for i, ef in enumerate(efs):
        cells = []
        for c in cols:
            rec, qm = results[c]["points"][i][:2]
            cells.append(f"{f'{rec:.4f} {qm / 1000:6.1f}k':>{w}}")
        log(f"{ef:>5}  " + "  ".join(cells))

    ref = results.get("hnswlib")
    log("")
    log(f"QPS at recall@{args.k} (1 thread; median, min-max in brackets) and the ratio to "
        "hnswlib float32 (above 1: faster)")
    log("| configuration | storage | build s (train) | best recall |"
        + "".join(f" QPS@{t:.2f} |" for t in TARGETS)
        + "".join(f" ×hnswlib @{t:.2f} |" for t in TARGETS))
    log("|" + "---|" * (4 + 2 * len(TARGETS)))
    for c, res in results.items():
        cfg = res["cfg"]
        cells, ratios = [], []
        for t in TARGETS:
            v, lo, hi, kind = res["at"][t]
            cells.append(sbs.fmt_qps(v, kind) + (f" ({lo:,.0f}-{hi:,.0f})" if kind != "none"
                                                  else ""))
            rv = ref["at"][t] if ref else None
            ratios.append(sbs.fmt_ratio((v, kind), (rv[0], rv[3])) if rv else "-")
        tr = f" ({train_s[c]:.2f})" if train_s[c] is not None else ""
        best = max(p[0] for p in res["points"])
        log(f"| {c} | {cfg.storage} | {build_s[c]:.2f}{tr} | {best:.4f} |"
            + "".join(f" {x} |" for x in cells) + "".join(f" {x} |" for x in ratios))

    href = mem.get("hnswlib")
    log("")
    log(f"memory per vector in a fresh process that loaded the index and ran the queries at ef "
        f"{args.mem_ef}: growth of VmRSS = RssAnon + RssFile (+ RssShmem); 'index file' is the "
        "resident part of the index file's own mapping (smaps), the file-backed bytes that "
        "are the index's (RssFile also counts library code first run); ratios to hnswlib "
        "float32")
    log("| configuration | file B/vec | RSS growth B/vec | anon B/vec | file-backed B/vec | "
        "of which index file | ×hnswlib anon | ×hnswlib anon+index file | load s | recall |")
    log("|" + "---|" * 10)
    for c in results:
        if c not in mem:
            log(f"| {c} | {file_size[c] / n:.0f} | - | - | - | - | - | - | - | - |")
            continue
        m = mem[c]
        ra = f"{m['RssAnon'] / href['RssAnon']:.2f}" if href and href["RssAnon"] > 0 else "-"
        tot, htot = (m["RssAnon"] + m["index_file_rss"],
                     href["RssAnon"] + href["index_file_rss"] if href else 0)
        rt = f"{tot / htot:.2f}" if htot > 0 else "-"
        log(f"| {c} | {file_size[c] / n:.0f} | {m['VmRSS'] / n:.0f} | {m['RssAnon'] / n:.0f} | "
            f"{m['RssFile'] / n:.0f} | {m['index_file_rss'] / n:.0f} | {ra} | {rt} | "
            f"{m['load_s']:.2f} | {m['recall']:.4f} |")

    if rr:
        log("")
        log(f"re-rank factor: recall@{args.k} and median QPS (min-max); the best rerank x "
            f"{args.k} walk candidates (at most ef) are re-scored with float32")
        for c in rr:
            if c not in alive:
                continue
            log(f"{c}:")
            log("| ef |" + "".join(f" rerank {r} |" for r in RERANKS))
            log("|---|" + "---|" * len(RERANKS))
            for ef in rerank_efs:
                cells = []
                for r in RERANKS:
                    rec, qm, qlo, qhi, _ = point((c, ef, r))
                    cells.append(f"{rec:.4f} {qm:,.0f} ({qlo:,.0f}-{qhi:,.0f})")
                log(f"| {ef} |" + "".join(f" {x} |" for x in cells))

    # ---- files ----
    sweep_csv = os.path.join(args.out, f"{name}_quant_sweep.csv")
    with open(sweep_csv, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["config", "library", "dtype", "keep", "version", "dataset", "n", "dim", "nq",
                     "M", "efc", "k", "ef", "rerank", "recall", "qps_median", "qps_min",
                     "qps_max", "on_frontier", "repeat", "build_s", "build_threads",
                     "search_threads", "machine"])
        for p in passes:
            c, ef, r = p
            if c not in alive:
                continue
            cfg = alive[c]
            rec, qm, qlo, qhi, _ = point(p)
            wr.writerow([c, cfg.lib, cfg.dtype, cfg.keep, cfg.version, name, n, d, nq, 16, 200,
                         args.k, ef, "" if r is None else r, f"{rec:.4f}", f"{qm:.1f}",
                         f"{qlo:.1f}", f"{qhi:.1f}",
                         int(r is None and ef in results[c]["front_efs"]), repeat,
                         f"{build_s[c]:.3f}", args.build_threads, 1, mach])

    summary_csv = os.path.join(args.out, f"{name}_quant_summary.csv")
    with open(summary_csv, "w", newline="") as f:
        wr = csv.writer(f)
        head = ["config", "library", "dtype", "keep", "storage", "version", "dataset", "n",
                "dim", "build_s", "train_s", "build_threads", "file_bytes_per_vector",
                "mem_ef", "rss_bytes_per_vector", "anon_bytes_per_vector",
                "file_backed_bytes_per_vector", "index_file_rss_bytes_per_vector",
                "anon_ratio_to_hnswlib", "anon_file_ratio_to_hnswlib",
                "anon_index_file_ratio_to_hnswlib", "best_recall"]
        for t in TARGETS:
            head += [f"qps@{t:.2f}", f"qps_min@{t:.2f}", f"qps_max@{t:.2f}", f"kind@{t:.2f}",
                     f"ratio_to_hnswlib@{t:.2f}"]
        wr.writerow(head)
        for c, res in results.items():
            cfg, m = res["cfg"], mem.get(c)
            row = [c, cfg.lib, cfg.dtype, cfg.keep, cfg.storage, cfg.version, name, n, d,
                   f"{build_s[c]:.3f}", "" if train_s[c] is None else f"{train_s[c]:.3f}",
                   args.build_threads, f"{file_size[c] / n:.1f}", args.mem_ef]
            if m:
                row += [f"{m['VmRSS'] / n:.1f}", f"{m['RssAnon'] / n:.1f}",
                        f"{m['RssFile'] / n:.1f}", f"{m['index_file_rss'] / n:.1f}"]
                row.append(f"{m['RssAnon'] / href['RssAnon']:.3f}"
                           if href and href["RssAnon"] > 0 else "")
                for key in ("RssFile", "index_file_rss"):
                    htot = href["RssAnon"] + href[key] if href else 0
                    row.append(f"{(m['RssAnon'] + m[key]) / htot:.3f}" if htot > 0 else "")
            else:
                row += [""] * 7
            row.append(f"{max(p[0] for p in res['points']):.4f}")
            for t in TARGETS:
                v, lo, hi, kind = res["at"][t]
                rv = ref["at"][t] if ref else None
                row += ["" if v is None else f"{v:.1f}", "" if lo is None else f"{lo:.1f}",
                        "" if hi is None else f"{hi:.1f}", kind,
                        sbs.fmt_ratio((v, kind), (rv[0], rv[3])) if rv else ""]
            wr.writerow(row)

    png = os.path.join(args.out, f"{name}_quant.png")
    lowest = min(p[0] for r in results.values() for p in r["front"])
    xmins = [math.floor(lowest * 20) / 20]
    if args.xmin > xmins[0]:
        xmins.append(args.xmin)
    title = (f"{name}: {n:,} x {d}, {nq:,} queries, k={args.k}; M=16, efC=200, 1 search "
             f"thread\n{mach}; median of {repeat}")
    sbs.finish(log, lines, plot(png, results, title, xmins), png, (sweep_csv, summary_csv),
               os.path.join(args.out, f"{name}_quant_table.txt"))


if __name__ == "__main__":
    main()
