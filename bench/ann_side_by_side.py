#!/usr/bin/env python3
"""ann_side_by_side.py: smallworld, hnswlib, faiss and usearch in one run.

Why this script exists, and why it is built the way it is.

run_core.sh compares smallworld with hnswlib as two separate programs.  The
search-speed work (issue 9) needs more than that: the claim "faster than
hnswlib" means little unless the other graph indexes people actually use
are measured on the same data, on the same machine, in the same minute.  So
this one process loads the data once, builds one HNSW index per library and
sweeps the search effort of each, and everything that could favour one
library over another is fixed on purpose:

  - Same graph parameters.  M = 16 and ef_construction = 200 for all
    (issue 9's setting): hnswlib's M / ef_construction, faiss
    IndexHNSWFlat(d, 16) with efConstruction = 200, usearch connectivity =
    16 / expansion_add = 200, smallworld M / ef_construction.  All four give
    layer 0 twice the links of the upper layers (2M = 32), so the graphs have
    the same degree.  Squared L2, float32 storage everywhere (integer data
    are converted to float32 once at load, so every library reads the same
    bytes), labels = row numbers.
  - Build on all threads (--build-threads, default every online CPU), one
    add call over the whole base set per library; its wall time is reported.
    A build is not a race here: it is timed so that a search speed bought
    with a slower build shows.
  - Queries on ONE thread for every library, as ONE batch call over the whole
    query set per pass: hnswlib knn_query(num_threads=1), faiss search after
    omp_set_num_threads(1), usearch search(threads=1), smallworld
    search(threads=1).  A per-query Python loop would add microseconds of
    interpreter and binding overhead to each query, which at low ef is a
    large part of the search itself and differs between bindings; one batch
    call makes that overhead the same small share for all.  Each library's
    own knob of search effort is swept over the same list: ef (hnswlib,
    smallworld), efSearch (faiss), expansion_search (usearch).  The query
    passes run pinned to one CPU (--pin-cpu), the same for every library.
  - Repeats interleaved, median reported.  Each (library, ef) pass is run
    --repeat times (default 3); repeat r of every library and every ef runs
    before repeat r + 1 of any, and the order of the libraries rotates from
    one repeat to the next, so a burst of load on a shared machine, or a
    warming cache, lands on all of them alike.  The median pass gives QPS;
    the slowest and fastest give the spread printed beside it.  Before each
    build and each round of repeats the script waits (polling every 30 s,
    at most 10 minutes) while processes matching --quiet-pattern run (this
    project's CI on the 2-core development machine), and prints the load
    average it started with.
  - Recall@k against the ground-truth file: the fraction of each query's
    true top-k ids (the first k of its row) found among the k returned,
    averaged over queries.
  - QPS at a recall target, read off the frontier.  Libraries never land on
    the same recall at the same ef, so the headline is QPS at recall 0.90,
    0.95 and 0.99.  Per library the sweep is first reduced to its Pareto
    frontier (a point is dropped when another point has at least its recall
    and more QPS: a larger ef that is slower and no more accurate is not a
    setting anyone would pick), then QPS at the target is interpolated
    linearly in log(QPS) between the two frontier points that bracket the
    target on the recall axis: log, because QPS falls roughly geometrically
    as recall climbs, which is also why the plot's QPS axis is logarithmic,
    as ann-benchmarks draws it.  If the smallest ef already reaches the
    target the value is a lower bound (">="); if the sweep never reaches it,
    "not reached".  The spread at a target is the same interpolation over the
    slowest and the fastest passes.
  - A library that is not installed, or fails, is skipped with one line; the
    others still run.  Each library's version (and the SIMD level it reports,
    where it does) goes to the output and the CSV.

Output, in --out DIR, named after the data set: NAME_sweep.csv (one row per
library and ef), NAME_summary.csv (build time and QPS at each target),
NAME_table.txt (what was printed) and NAME.png (recall against QPS).

  python3 bench/ann_side_by_side.py --data DIR_OR_NAME [--base F --query F --gt F]
      --out DIR [--repeat 3] [--libs smallworld,hnswlib,faiss,usearch]
      [--ef LIST] [--build-threads N] [--k 10] [--nq N]

smallworld is taken from the Python package: `make` and
PYTHONPATH=build/python, or `pip install .`.  Peers:
`python3 -m pip install hnswlib faiss-cpu usearch matplotlib`.
"""
import argparse
import csv
import importlib
import importlib.metadata
import math
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

TARGETS = (0.90, 0.95, 0.99)
DEFAULT_EF = "10,12,16,20,24,32,40,48,64,80,96,128,160,192,256,384,512"
ALL_LIBS = ("smallworld", "hnswlib", "faiss", "usearch")
QUIET_PATTERN = "ci/run|ctest|fuzz_load"


def fail(msg):
    print(f"ann_side_by_side: {msg}", file=sys.stderr)
    sys.exit(2)


# ==== Data ====

DTYPES = {".fbin": np.float32, ".u8bin": np.uint8, ".i8bin": np.int8, ".ibin": np.int32}


def read_bin(path, want_rows=None):
    """Read a big-ann-benchmarks file, checking its size against its header."""
    ext = os.path.splitext(path)[1]
    if ext not in DTYPES:
        fail(f"{path}: unknown extension (want .fbin, .u8bin, .i8bin or .ibin)")
    dtype = np.dtype(DTYPES[ext])
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = np.fromfile(f, dtype="<i4", count=2)
            if len(head) != 2 or head[0] <= 0 or head[1] <= 0:
                fail(f"{path}: bad header")
            n, d = int(head[0]), int(head[1])
            body = n * d * dtype.itemsize
            if size == 8 + body:
                a = np.fromfile(f, dtype=dtype.newbyteorder("<"), count=n * d)
            elif ext == ".ibin" and size == 8 + 2 * body:
                # the combined big-ann ground truth: n*d ids, then n*d distances
                a = np.fromfile(f, dtype="<i4", count=n * d)
            else:
                fail(f"{path}: {size} bytes, the header says {n} x {d} ({8 + body})")
    except OSError as e:
        fail(f"{path}: {e.strerror}")
    return a.reshape(n, d)


def find_data(name):
    """A directory, or a data set's name looked up where this project keeps them."""
    if os.path.isdir(name):
        return os.path.abspath(name)
    here = os.path.dirname(os.path.abspath(__file__))
    for root in (os.path.join(here, "..", "..", "shared", "data"), "/work/shared/data",
                 "/work/cache"):
        p = os.path.join(root, name)
        if os.path.isdir(p):
            return os.path.abspath(p)
    fail(f"no data directory {name!r} (nor under ../shared/data or /work/cache)")


def find_file(d, stem):
    for ext in (".fbin", ".u8bin", ".i8bin"):
        p = os.path.join(d, stem + ext)
        if os.path.exists(p):
            return p
    fail(f"no {stem}.fbin/.u8bin/.i8bin in {d}")


def load(args):
    d = find_data(args.data) if args.data else None
    base_p = args.base or (d and find_file(d, "base"))
    query_p = args.query or (d and find_file(d, "query"))
    gt_p = args.gt or (d and os.path.join(d, "gt.ibin"))
    if not (base_p and query_p and gt_p):
        fail("give --data, or all of --base, --query and --gt")
    # integer data become float32 here, once, for every library
    base = np.ascontiguousarray(read_bin(base_p), dtype=np.float32)
    queries = np.ascontiguousarray(read_bin(query_p), dtype=np.float32)
    gt = read_bin(gt_p)
    if base.shape[1] != queries.shape[1]:
        fail(f"base has dimension {base.shape[1]}, queries {queries.shape[1]}")
    if args.nq:
        queries = queries[:args.nq]
    if gt.shape[0] < len(queries) or gt.shape[1] < args.k:
        fail(f"{gt_p}: {gt.shape[0]} x {gt.shape[1]}, need {len(queries)} rows of >= {args.k} ids")
    gt = np.ascontiguousarray(gt[:len(queries), :args.k])
    if gt.min() < 0 or gt.max() >= len(base):
        fail(f"{gt_p}: ids outside 0..{len(base) - 1}")
    name = args.name or os.path.basename(os.path.normpath(d or os.path.dirname(base_p)))
    return name, base, queries, gt, (base_p, query_p, gt_p)


def proc_status(keys=("VmRSS", "RssAnon", "RssFile", "RssShmem")):
    """The named fields of /proc/self/status (memory sizes), in bytes."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in keys:
                out[key] = int(line.split()[1]) * 1024
    return out


def finish(log, lines, plot_err, png, csvs, table_path):
    """The end of a run: where the plot and CSVs went, and the table file."""
    log("")
    log(plot_err or f"plot: {png}")
    log(f"csv: {', '.join(csvs)}")
    with open(table_path, "w") as f:
        f.write("\n".join(lines) + "\n")


def recall_at_k(found, gt):
    k = gt.shape[1]
    found = np.asarray(found)[:, :k].astype(np.int64)
    hits = (found[:, :, None] == gt[:, None, :].astype(np.int64)).any(axis=2)
    return float(hits.sum()) / gt.size


# ==== Libraries ====
#
# One class per library, three calls each: build(base, threads) once,
# prepare(ef) before a pass (not timed), search(queries, k) timed.  Each
# keeps its own spelling of the same parameters.

class Smallworld:
    name = "smallworld"

    def __init__(self):
        self.mod = importlib.import_module("smallworld")
        self.version = f"{self.mod.__version__} ({self.mod.simd})"

    def build(self, base, threads):
        self.ix = self.mod.Index(base.shape[1], metric="l2", M=16, ef_construction=200)
        self.ix.add(base, np.arange(len(base), dtype=np.uint64), threads=threads)

    def prepare(self, ef):
        self.ef = ef

    def search(self, q, k):
        return self.ix.search(q, k=k, ef=self.ef, threads=1)[0]


class Hnswlib:
    name = "hnswlib"

    def __init__(self):
        self.mod = importlib.import_module("hnswlib")
        self.version = importlib.metadata.version("hnswlib")

    def build(self, base, threads):
        self.ix = self.mod.Index(space="l2", dim=base.shape[1])
        self.ix.init_index(max_elements=len(base), M=16, ef_construction=200, random_seed=100)
        self.ix.set_num_threads(threads)
        self.ix.add_items(base, np.arange(len(base)), num_threads=threads)
        self.ix.set_num_threads(1)

    def prepare(self, ef):
        self.ix.set_ef(ef)

    def search(self, q, k):
        return self.ix.knn_query(q, k=k, num_threads=1)[0]


class Faiss:
    name = "faiss"

    def __init__(self):
        self.mod = importlib.import_module("faiss")
        opts = self.mod.get_compile_options().split()
        simd = [o for o in opts if o.startswith(("AVX", "SVE", "NEON"))]
        self.version = self.mod.__version__ + (f" ({' '.join(simd)})" if simd else "")

    def build(self, base, threads):
        self.mod.omp_set_num_threads(threads)
        try:
            self.ix = self.mod.IndexHNSWFlat(base.shape[1], 16)  # METRIC_L2 (squared)
            self.ix.hnsw.efConstruction = 200
            self.ix.add(base)  # ids are row numbers
        finally:
            self.mod.omp_set_num_threads(1)

    def prepare(self, ef):
        self.mod.omp_set_num_threads(1)
        self.ix.hnsw.efSearch = ef

    def search(self, q, k):
        return self.ix.search(q, k)[1]


class Usearch:
    name = "usearch"

    def __init__(self):
        self.mod = importlib.import_module("usearch.index")
        self.version = importlib.metadata.version("usearch")

    def build(self, base, threads):
        self.ix = self.mod.Index(ndim=base.shape[1], metric="l2sq", dtype="f32",
                                 connectivity=16, expansion_add=200)
        self.ix.add(np.arange(len(base), dtype=np.uint64), base, threads=threads)
        self.version = f"{importlib.metadata.version('usearch')} ({self.ix.hardware_acceleration})"

    def prepare(self, ef):
        self.ix.expansion_search = ef

    def search(self, q, k):
        return self.ix.search(q, k, threads=1).keys


CLASSES = {c.name: c for c in (Smallworld, Hnswlib, Faiss, Usearch)}
INSTALL = {"smallworld": "make && PYTHONPATH=build/python, or pip install .",
           "hnswlib": "pip install hnswlib", "faiss": "pip install faiss-cpu",
           "usearch": "pip install usearch"}


# ==== Machine ====

def machine():
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} x {model}"


def wait_quiet(pattern, log, limit_s=600, poll_s=30):
    """Wait while processes matching pattern (another user's CI) are running."""
    if not pattern:
        return
    me = os.getpid()
    t0 = time.monotonic()
    said = False
    while True:
        try:
            out = subprocess.run(["pgrep", "-f", pattern], capture_output=True,
                                 text=True).stdout.split()
        except OSError:
            return  # no pgrep: nothing to wait on
        # leave out this process and its parents (their command lines hold the pattern
        # when it is given with --quiet-pattern)
        mine = {me, os.getppid()}
        busy = [p for p in out if int(p) not in mine]
        waited = time.monotonic() - t0
        if not busy:
            if said:
                log(f"  quiet after {waited:.0f} s")
            return
        if waited >= limit_s:
            log(f"  machine still busy after {waited:.0f} s ({len(busy)} processes match "
                f"{pattern!r}); going on, read the spread")
            return
        if not said:
            log(f"  waiting for {len(busy)} processes matching {pattern!r} to end ...")
            said = True
        time.sleep(poll_s)


def busy_cpu():
    """(CPU seconds all processes used so far, this process's own), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        hz = os.sysconf("SC_CLK_TCK")
        # user nice system (idle iowait) irq softirq steal
        used = (sum(v[:3]) + sum(v[5:8])) / hz
    except (OSError, ValueError, IndexError):
        return None
    t = os.times()
    return used, t.user + t.system


def loadavg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def pin_to(cpu, log):
    """Pin this process to one CPU; -2: the lowest it may use, -1: leave it."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = allowed[0] if cpu == -2 and allowed else cpu
    if pin >= 0:
        try:
            os.sched_setaffinity(0, {pin})
            log(f"query passes pinned to CPU {pin}")
        except (AttributeError, OSError) as e:
            log(f"note: cannot pin to CPU {pin} ({e}); passes not pinned")


# ==== Frontier and interpolation ====

def frontier(points):
    """Pareto frontier of (recall, qps, ...) tuples, ascending recall, descending QPS."""
    best = []
    for p in sorted(points, key=lambda p: (-p[0], -p[1])):
        if not best or p[1] > best[-1][1]:
            best.append(p)
    return best[::-1]


def qps_at(front, target):
    """(value, lo, hi, kind): kind is 'exact', 'lower' (>=) or 'none' (not reached).

    front holds (recall, qps_median, qps_min, qps_max) frontier points.
    """
    above = [i for i, p in enumerate(front) if p[0] >= target]
    if not above:
        return None, None, None, "none"
    i = above[0]
    if i == 0:
        return front[0][1], front[0][2], front[0][3], "lower"
    (r0, *q0), (r1, *q1) = front[i - 1], front[i]
    t = (target - r0) / (r1 - r0)
    vals = [math.exp(math.log(a) + t * (math.log(b) - math.log(a))) for a, b in zip(q0, q1)]
    return vals[0], vals[1], vals[2], "exact"


def fmt_qps(v, kind):
    if kind == "none":
        return "not reached"
    return (">=" if kind == "lower" else "") + f"{v:,.0f}"


def fmt_ratio(a, b):
    (va, ka), (vb, kb) = a, b
    if ka == "none" or kb == "none" or va is None or vb is None:
        return "-"
    r = f"{va / vb:.2f}"
    if ka == "lower" and kb == "lower":
        return "?" + r
    return {"lower": ">=", "exact": ""}[ka] + ("<=" if kb == "lower" else "") + r


# ==== Plot ====

def plot(path, results, title, xmin):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed (pip install matplotlib): no plot"
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=100)
    markers = {"smallworld": "o", "hnswlib": "s", "faiss": "^", "usearch": "D"}
    for lib, r in results.items():
        front = r["front"]
        ax.plot([p[0] for p in front], [p[1] for p in front], marker=markers.get(lib, "x"),
                markersize=4, linewidth=1.5, label=f"{lib} {r['version']}")
    ax.set_yscale("log")
    # plain numbers on the log axis (2k, 50k), minor ticks labelled too
    from matplotlib.ticker import FuncFormatter
    kfmt = FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}")
    ax.yaxis.set_major_formatter(kfmt)
    ax.yaxis.set_minor_formatter(kfmt)
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set_xlim(xmin, 1.002)
    ax.set_xlabel("recall@10")
    ax.set_ylabel("queries per second, 1 thread (log)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", linewidth=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return None


# ==== Main ====

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="data directory, or a name under ../shared/data or /work/cache")
    ap.add_argument("--base")
    ap.add_argument("--query")
    ap.add_argument("--gt")
    ap.add_argument("--name", help="data set name in the output (default: the directory's)")
    ap.add_argument("--out", required=True, help="directory for the CSVs, table and plot")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--libs", default=",".join(ALL_LIBS))
    ap.add_argument("--ef", default=DEFAULT_EF)
    ap.add_argument("--build-threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--nq", type=int, default=0, help="use the first N queries (0: all)")
    ap.add_argument("--xmin", type=float, default=0.80, help="left end of the plot's recall axis")
    ap.add_argument("--pin-cpu", type=int, default=-2,
                    help="CPU the query passes run on (default: the lowest this process may "
                         "use; -1: not pinned)")
    ap.add_argument("--quiet-pattern", default=QUIET_PATTERN,
                    help="wait while processes matching this (pgrep -f) run; '' to not wait")
    args = ap.parse_args()

    try:
        efs = sorted({int(e) for e in args.ef.split(",") if e.strip()})
    except ValueError:
        fail(f"--ef: not a list of integers: {args.ef!r}")
    if not efs or efs[0] < 1:
        fail("--ef: need at least one ef >= 1")
    if args.repeat < 1 or args.build_threads < 1 or args.k < 1:
        fail("--repeat, --build-threads and --k must be >= 1")
    libs = [x.strip() for x in args.libs.split(",") if x.strip()]
    for lib in libs:
        if lib not in CLASSES:
            fail(f"--libs: unknown library {lib!r} (known: {', '.join(ALL_LIBS)})")

    os.makedirs(args.out, exist_ok=True)
    name, base, queries, gt, files = load(args)
    lines = []

    def log(s=""):
        print(s, flush=True)
        lines.append(s)

    mach = machine()
    log(f"data {name}: base {len(base)} x {base.shape[1]}, {len(queries)} queries, "
        f"k {args.k}  ({', '.join(files)})")
    log(f"machine: {mach}; python {platform.python_version()}, numpy {np.__version__}")
    log(f"M 16, ef_construction 200, L2; build on {args.build_threads} threads; queries on 1 "
        f"thread, one batch call per pass; median of {args.repeat} passes (min-max)")

    # ---- load and build ----
    alive = {}
    for lib in libs:
        try:
            alive[lib] = CLASSES[lib]()
        except Exception as e:  # ImportError, or a broken install
            log(f"skip {lib}: cannot import it ({type(e).__name__}: {e}); {INSTALL[lib]}")
    build_s = {}
    for lib, obj in list(alive.items()):
        wait_quiet(args.quiet_pattern, log)
        la = loadavg()
        c0 = busy_cpu()
        try:
            t0 = time.perf_counter()
            obj.build(base, args.build_threads)
            build_s[lib] = time.perf_counter() - t0
        except Exception as e:
            log(f"skip {lib}: build failed ({type(e).__name__}: {e})")
            del alive[lib]
            continue
        c1 = busy_cpu()
        other = (f", other processes {((c1[0] - c0[0]) - (c1[1] - c0[1])) / build_s[lib]:.2f} cores"
                 if c0 and c1 else "")
        log(f"build {lib:<10} {build_s[lib]:8.2f} s   version {obj.version}   "
            f"(load avg before {la:.2f}{other})")
    if not alive:
        fail("no library left to measure")

    # Single-thread passes pinned to one CPU: on the 2-vCPU development VM an
    # unpinned pass wanders between CPUs and one program's QPS then comes out
    # bimodal (145k or 175k at ef 16 on bigann10k, by run), where pinned runs
    # agree within 1%.  Every library's passes run on the same CPU.
    pin_to(args.pin_cpu, log)

    # ---- sweep: repeat r of every (ef, library) before repeat r + 1 ----
    times = {(lib, ef): [] for lib in alive for ef in efs}
    recalls = {}
    order = list(alive)
    for r in range(args.repeat):
        wait_quiet(args.quiet_pattern, log)
        log(f"pass {r + 1}/{args.repeat}: load avg {loadavg():.2f}")
        rot = order[r % len(order):] + order[:r % len(order)]
        c0, w0 = busy_cpu(), time.monotonic()
        for ef in efs:
            for lib in rot:
                if lib not in alive:
                    continue
                obj = alive[lib]
                try:
                    obj.prepare(ef)
                    t0 = time.perf_counter()
                    found = obj.search(queries, args.k)
                    dt = time.perf_counter() - t0
                except Exception as e:
                    log(f"skip {lib}: search failed at ef {ef} ({type(e).__name__}: {e})")
                    del alive[lib]
                    continue
                times[(lib, ef)].append(dt)
                rec = recall_at_k(found, gt)
                if (lib, ef) in recalls and abs(recalls[(lib, ef)] - rec) > 1e-9:
                    log(f"note: {lib} ef {ef}: recall {rec:.4f} differs from the first pass's "
                        f"{recalls[(lib, ef)]:.4f}")
                recalls.setdefault((lib, ef), rec)
        c1, wall = busy_cpu(), time.monotonic() - w0
        if c0 and c1 and wall > 0:
            # what other processes took while this pass ran: a single-thread
            # timing needs one free core, so read the pass's spread with this
            log(f"  pass {r + 1} took {wall:.1f} s; other processes used "
                f"{((c1[0] - c0[0]) - (c1[1] - c0[1])) / wall:.2f} cores meanwhile")

    # ---- results ----
    nq = len(queries)
    results = {}
    for lib in alive:
        pts = []
        for ef in efs:
            ts = times[(lib, ef)]
            pts.append((recalls[(lib, ef)], nq / statistics.median(ts), nq / max(ts),
                        nq / min(ts), ef))
        front = frontier([p[:4] + (p[4],) for p in pts])
        results[lib] = {"points": pts, "front": [p[:4] for p in front],
                        "front_efs": {p[4] for p in front}, "version": alive[lib].version}

    sweep_csv = os.path.join(args.out, f"{name}_sweep.csv")
    with open(sweep_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["library", "version", "dataset", "n", "dim", "nq", "M", "efc", "k", "ef",
                    "recall", "qps_median", "qps_min", "qps_max", "on_frontier", "repeat",
                    "build_s", "build_threads", "search_threads", "machine"])
        for lib, res in results.items():
            for rec, qm, qlo, qhi, ef in res["points"]:
                w.writerow([lib, res["version"], name, len(base), base.shape[1], nq, 16, 200,
                            args.k, ef, f"{rec:.4f}", f"{qm:.1f}", f"{qlo:.1f}", f"{qhi:.1f}",
                            int(ef in res["front_efs"]), args.repeat, f"{build_s[lib]:.3f}",
                            args.build_threads, 1, mach])

    log("")
    log(f"{'ef':>5}  " + "  ".join(f"{lib + ' recall':>17} {'QPS':>8} {'(min-max)':>15}"
                                  for lib in results))
    for i, ef in enumerate(efs):
        cells = []
        for lib, res in results.items():
            rec, qm, qlo, qhi, _ = res["points"][i]
            cells.append(f"{rec:>17.4f} {qm:>8,.0f} {f'({qlo:,.0f}-{qhi:,.0f})':>15}")
        log(f"{ef:>5}  " + "  ".join(cells))

    at = {lib: {t: qps_at(res["front"], t) for t in TARGETS} for lib, res in results.items()}
    ref = at.get("hnswlib")
    log("")
    log(f"QPS at recall@{args.k} (1 thread; median, min-max in brackets), and the ratio to "
        "hnswlib (above 1: more queries per second than hnswlib)")
    head = f"| library | build s ({args.build_threads} thr) |" + "".join(
        f" QPS@{t:.2f} |" for t in TARGETS) + "".join(f" ×hnswlib @{t:.2f} |" for t in TARGETS)
    log(head)
    log("|" + "---|" * (2 + 2 * len(TARGETS)))
    summary_csv = os.path.join(args.out, f"{name}_summary.csv")
    with open(summary_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["library", "version", "dataset", "build_s", "build_threads", "target_recall",
                    "qps", "qps_min", "qps_max", "kind", "ratio_to_hnswlib"])
        for lib, res in results.items():
            cells, ratios = [], []
            for t in TARGETS:
                v, lo, hi, kind = at[lib][t]
                c = fmt_qps(v, kind)
                if kind != "none":
                    c += f" ({lo:,.0f}-{hi:,.0f})"
                cells.append(c)
                ratio = fmt_ratio((v, kind), (ref[t][0], ref[t][3])) if ref else "-"
                ratios.append(ratio)
                w.writerow([lib, res["version"], name, f"{build_s[lib]:.3f}", args.build_threads,
                            t, "" if v is None else f"{v:.1f}", "" if lo is None else f"{lo:.1f}",
                            "" if hi is None else f"{hi:.1f}", kind, ratio])
            log(f"| {lib} {res['version']} | {build_s[lib]:.2f} |" + "".join(
                f" {c} |" for c in cells) + "".join(f" {x} |" for x in ratios))
    if not ref:
        log("(hnswlib was not measured: no ratios)")

    png = os.path.join(args.out, f"{name}.png")
    title = (f"{name}: {len(base):,} x {base.shape[1]}, {nq:,} queries, k={args.k}; "
             f"M=16, efC=200, 1 search thread\n{mach}; median of {args.repeat}")
    finish(log, lines, plot(png, results, title, args.xmin), png, (sweep_csv, summary_csv),
           os.path.join(args.out, f"{name}_table.txt"))


if __name__ == "__main__":
    main()
