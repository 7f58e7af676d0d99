#!/usr/bin/env python3
"""hnswlib_core.py — the hnswlib half of the core benchmark (peer of sw_bench).

It makes the same measurement as bench/bench_core.c, on the same files, with
the same parameters and the same output, so that bench/run_core.sh can put
the two side by side.  What is the same, and what cannot be, and why:

  - Same data: the big-ann-benchmarks files (int32 n, int32 d, row-major
    data, element type from the extension) are read, checked against their
    headers the same way (one line on stderr, exit code 2), and converted to
    float32 once, exactly as sw_bench converts them before calling sw_add.
  - Same index: M, ef_construction and the level seed (100, both libraries'
    default) are passed through; labels are row numbers.  The build is one
    add_items() call with num_threads=--threads (default 1), after
    set_num_threads(--threads): on one thread a single C++ loop over the
    rows, the same work as sw_bench's one sw_add_batch call.
  - Threads: --threads N builds on N threads, and --search-threads T1,T2,...
    sweeps the search once per thread count on the same index (default: the
    --threads value), repeats interleaved across thread counts exactly as
    sw_bench does them.  0 means every online CPU.  --search-api is accepted
    for symmetry with sw_bench, but hnswlib is always searched with one batch
    knn_query(num_threads=T) per pass (see below), and its CSV and summary
    say search_api=batch; "single" only refuses a thread count above 1, as
    sw_bench does.
  - Search is where the two harnesses must differ.  sw_bench calls
    sw_search() once per query from C.  Doing that here (knn_query on one
    row at a time) would add several microseconds of Python and pybind11
    overhead to every query, which at low ef is more than the search itself
    and would make hnswlib look far slower than it is.  So each pass is ONE
    batch knn_query() of all queries with num_threads=T (T = 1 is a plain
    C++ loop over the rows: hnswlib's fastest single-thread path).  This
    favours hnswlib slightly (one Python call, and results written straight
    into a numpy array), which is the right direction for a baseline.
  - Consequence: per-query latencies are not observable.  lat_mean_us is the
    pass time divided by the number of queries; lat_p99_us is left empty in
    the CSV and shown as "-" in the table.
  - Timing uses time.clock_gettime(CLOCK_MONOTONIC), the clock sw_bench uses.
    Each ef is run --repeat times; the median run is reported with the
    min-max spread (lower middle run when --repeat is even), and recall@k is
    the fraction of the true top-k ids found among the k returned, averaged.
  - QPS at recall 0.90 / 0.95 / 0.99 is interpolated linearly between the
    first sweep point that reaches the target and the one before it; if the
    smallest ef already reaches it the value is a lower bound (">="), and
    "n/a" if the sweep never reaches it.  The "summary:" line has the same
    format as sw_bench's; run_core.sh reads it.
  - hnswlib has no L1 space, so --metric l1 is refused (exit code 2).
  - Memory: hnswlib does not report its footprint; index_file_size() (the
    serialised size: level-0 block, upper links and labels, without the
    label map or visited lists) is printed as an approximation.

Note that pip builds hnswlib from source with -march=native unless
HNSWLIB_NO_NATIVE is set, so its kernels are tuned to this very CPU, while
smallworld picks its kernels at run time.

  python3 hnswlib_core.py --base B.fbin --query Q.fbin --gt GT.ibin [--M 16]
      [--efc 200] [--k 10] [--ef 10,16,...] [--repeat 3] [--metric l2|ip|cosine]
      [--csv OUT.csv] [--nq N] [--tile R] [--name DATASET] [--threads 1]
      [--search-threads T1,T2,...] [--search-api single|batch]
"""
import argparse
import math
import os
import sys
import time

EXIT_USAGE = 2
EXIT_RUNTIME = 1
TARGETS = (0.90, 0.95, 0.99)
TYPES = {".fbin": ("float32", 4), ".u8bin": ("uint8", 1), ".i8bin": ("int8", 1), ".ibin": ("int32", 4)}


def die(code, msg):
    print(f"hnswlib_core: {msg}", file=sys.stderr)
    sys.exit(code)


try:
    import numpy as np
    import hnswlib
except ImportError as exc:  # pragma: no cover - environment problem
    die(EXIT_USAGE, f"{exc}; install with: pip install hnswlib numpy")


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def open_bin(what, path, allow_gt_pair=False):
    """Check the header of a big-ann file against its size; return (dtype, n, d)."""
    ext = next((e for e in TYPES if path.endswith(e)), None)
    if ext is None:
        die(EXIT_USAGE, f"{what} file {path}: unknown extension (expected .fbin, .u8bin, .i8bin or .ibin)")
    dtype, size = TYPES[ext]
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            hdr = f.read(8)
    except OSError as exc:
        die(EXIT_USAGE, f"{what} file {path}: {exc.strerror}")
    if len(hdr) < 8:
        die(EXIT_USAGE, f"{what} file {path}: shorter than its 8-byte header")
    n, d = (int(x) for x in np.frombuffer(hdr, dtype="<i4"))
    if n <= 0 or d <= 0:
        die(EXIT_USAGE, f"{what} file {path}: header says {n} rows x {d} columns; both must be positive")
    payload = n * d * size
    if st.st_size - 8 != payload and not (allow_gt_pair and st.st_size - 8 == 2 * payload):
        die(EXIT_USAGE, f"{what} file {path}: header says {n} x {d} {ext[1:]} elements ({payload} bytes "
                        f"of data) but the file has {st.st_size - 8} bytes after the header")
    return dtype, n, d


def read_rows(path, dtype, d, rows):
    return np.fromfile(path, dtype=dtype, count=rows * d, offset=8).reshape(rows, d)


def ef_list(s):
    try:
        efs = sorted({int(x) for x in s.split(",")})
    except ValueError:
        die(EXIT_USAGE, f"--ef expects a comma-separated list of integers, got \"{s}\"")
    if not efs or efs[0] < 1:
        die(EXIT_USAGE, "--ef values must be at least 1")
    return efs


def resolve_threads(t):
    """0 means every online CPU, resolved so that what is printed is what ran."""
    if t == 0:
        try:
            t = os.sysconf("SC_NPROCESSORS_ONLN")
        except (ValueError, OSError):
            t = os.cpu_count() or 1
    return max(1, t)


def thread_list(s):
    out = []
    try:
        items = [int(x) for x in s.split(",")]
    except ValueError:
        die(EXIT_USAGE, f"--search-threads expects a comma-separated list of integers, got \"{s}\"")
    for t in items:
        if t < 0 or t > 1024:
            die(EXIT_USAGE, f"--search-threads must be in 0..1024, got {t}")
        t = resolve_threads(t)
        if t not in out:
            out.append(t)
    return out


def dataset_name(args):
    if args.name:
        return args.name
    parent, file = os.path.split(args.base)
    if file.startswith("base.") and parent:
        dn = os.path.basename(os.path.normpath(parent))
        if dn not in ("", "."):
            return dn
    return file.split(".")[0]


def qps_at_recall(sweep, target):
    """(qps, lower_bound, index of lower point) or None; see the header comment."""
    for i, p in enumerate(sweep):
        if p["recall"] >= target:
            if i == 0:
                return p["qps_median"], True, 0
            a = sweep[i - 1]
            t = (target - a["recall"]) / (p["recall"] - a["recall"])
            return a["qps_median"] + t * (p["qps_median"] - a["qps_median"]), False, i - 1
    return None


def main():
    ap = argparse.ArgumentParser(description="hnswlib side of the smallworld core benchmark")
    ap.add_argument("--base", required=True)
    ap.add_argument("--query", required=True)
    ap.add_argument("--gt", required=True)
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--ef", default="10,16,24,32,48,64,96,128,192,256,384,512")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--metric", default="l2")
    ap.add_argument("--csv")
    ap.add_argument("--nq", type=int)
    ap.add_argument("--tile", type=int, default=1,
                    help="run the query set this many times per pass (longer, steadier passes)")
    ap.add_argument("--name")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--search-threads")
    ap.add_argument("--search-api", choices=("single", "batch"))
    try:
        args = ap.parse_args()
    except SystemExit as exc:
        sys.exit(EXIT_USAGE if exc.code else 0)

    if args.metric not in ("l2", "ip", "cosine"):
        die(EXIT_USAGE, f"--metric must be l2, ip or cosine for hnswlib (it has no l1), got \"{args.metric}\"")
    for name in ("M", "efc", "k", "repeat"):
        if getattr(args, name) < 1:
            die(EXIT_USAGE, f"--{name} must be at least 1")
    if args.M < 2:
        die(EXIT_USAGE, "--M must be at least 2")
    if args.nq is not None and args.nq < 1:
        die(EXIT_USAGE, "--nq must be at least 1")
    efs = ef_list(args.ef)
    k = args.k
    if args.threads < 0 or args.threads > 1024:
        die(EXIT_USAGE, f"--threads must be in 0..1024, got {args.threads}")
    threads = resolve_threads(args.threads)
    sthreads = thread_list(args.search_threads) if args.search_threads else [threads]
    if args.search_api == "single" and sthreads != [1]:
        die(EXIT_USAGE, "--search-api single runs one thread; it cannot sweep search threads above 1")
    api = "batch"  # hnswlib is always searched with batch knn_query; see the header comment

    bt, nb, d = open_bin("base", args.base)
    qt, nq_file, dq = open_bin("query", args.query)
    gtt, ng, kg = open_bin("ground truth", args.gt, allow_gt_pair=True)
    if gtt != "int32":
        die(EXIT_USAGE, f"ground truth file {args.gt}: must be .ibin (int32 ids)")
    if bt == "int32" or qt == "int32":
        die(EXIT_USAGE, "base and query must be .fbin, .u8bin or .i8bin")
    if d != dq:
        die(EXIT_USAGE, f"dimension mismatch: base {args.base} has d={d} but query {args.query} has d={dq}")
    nq = nq_file
    if args.nq is not None:
        if args.nq > nq_file:
            die(EXIT_USAGE, f"--nq {args.nq} but the query file {args.query} has only {nq_file} rows")
        nq = args.nq
    if ng < nq:
        die(EXIT_USAGE, f"ground truth {args.gt} has {ng} rows but {nq} queries are to be run")
    if kg < k:
        die(EXIT_USAGE, f"ground truth {args.gt} has {kg} ids per query, fewer than k={k}")
    if k > nb:
        die(EXIT_USAGE, f"k={k} is larger than the base set ({nb} vectors)")

    gt = read_rows(args.gt, "int32", kg, nq)[:, :k]
    bad = np.argwhere((gt < 0) | (gt >= nb))
    if len(bad):
        i, j = (int(x) for x in bad[0])
        die(EXIT_USAGE, f"ground truth {args.gt} row {i} column {j}: id {int(gt[i, j])} is outside the "
                        f"base set (0..{nb - 1}); is it the ground truth of this base file?")
    base = np.ascontiguousarray(read_rows(args.base, bt, d, nb), dtype=np.float32)
    query = np.ascontiguousarray(read_rows(args.query, qt, d, nq), dtype=np.float32)
    if args.tile > 1:
        query = np.ascontiguousarray(np.tile(query, (args.tile, 1)))
        gt = np.tile(gt, (args.tile, 1))
        nq *= args.tile
    for what, arr, path in (("base", base, args.base), ("query", query, args.query)):
        badrow = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        if len(badrow):
            die(EXIT_USAGE, f"{path}: row {int(badrow[0])} has a NaN or infinite value")
    dataset = dataset_name(args)

    csv = None
    if args.csv:
        try:
            csv = open(args.csv, "w")
        except OSError as exc:
            die(EXIT_USAGE, f"cannot write {args.csv}: {exc.strerror}")

    version = getattr(hnswlib, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as _v
            version = _v("hnswlib")
        except Exception:
            version = "?"
    print(f"hnswlib {version}  hnswlib_core.py  numpy {np.__version__}")
    print(f"dataset {dataset}: base {nb} x {d} ({args.base.rsplit('.', 1)[-1]}), {nq} queries "
          f"({args.query.rsplit('.', 1)[-1]}), ground truth {kg} per query")
    print(f"metric {args.metric}  M {args.M}  ef_construction {args.efc}  k {k}  repeat {args.repeat}  "
          f"threads {threads}")
    print(f"build: one add_items on {threads} thread{'' if threads == 1 else 's'}; search threads "
          f"{','.join(str(t) for t in sthreads)} (one batch knn_query of all queries per pass)")
    sys.stdout.flush()

    # ---- Build. ----
    index = hnswlib.Index(space=args.metric, dim=d)
    index.init_index(max_elements=nb, M=args.M, ef_construction=args.efc, random_seed=100)
    index.set_num_threads(threads)
    ids = np.arange(nb, dtype=np.int64)
    t0 = now_ns()
    index.add_items(base, ids, num_threads=threads)
    t1 = now_ns()
    build_s = (t1 - t0) / 1e9
    if index.get_current_count() != nb:
        die(EXIT_RUNTIME, f"after adding {nb} vectors hnswlib has {index.get_current_count()}")
    mem = index.index_file_size() if hasattr(index, "index_file_size") else None
    mem_per_vec = mem / nb if mem else float("nan")
    mem_txt = f"memory ~{mem} bytes ({mem_per_vec:.1f} bytes/vector, index_file_size)" if mem else "memory n/a"
    print(f"build: {build_s:.3f} s on {threads} thread{'' if threads == 1 else 's'}, "
          f"{nb / build_s:.0f} vectors/s; {mem_txt}\n")
    sys.stdout.flush()
    del base

    # ---- Search sweep. ----
    print(f"{'thr':>4} {'ef':>6} {'recall@k':>10} {'QPS median':>12} {'QPS min':>12} {'QPS max':>12} "
          f"{'lat mean us':>12} {'lat p99 us':>12}")
    if csv:
        csv.write("library,dataset,M,efc,ef,recall,qps_median,qps_min,qps_max,lat_mean_us,lat_p99_us,build_s,"
                  "build_threads,search_threads,search_api\n")
    sweeps = {t: [] for t in sthreads}
    for ef in efs:
        index.set_ef(ef)
        runs = {t: [] for t in sthreads}
        # Interleaved: repeat r of every thread count before repeat r+1.
        for _ in range(args.repeat):
            for t in sthreads:
                r0 = now_ns()
                labels, _dist = index.knn_query(query, k=k, num_threads=t)
                r1 = now_ns()
                hits = sum(len(np.intersect1d(labels[i], gt[i], assume_unique=True)) for i in range(nq))
                runs[t].append((r1 - r0, hits / (nq * k)))
        for t in sthreads:
            order = sorted(runs[t], key=lambda r: -r[0])  # slowest first
            med = order[(args.repeat - 1) // 2]
            p = {
                "ef": ef,
                "recall": med[1],
                "qps_median": nq / (med[0] / 1e9),
                "qps_min": nq / (order[0][0] / 1e9),
                "qps_max": nq / (order[-1][0] / 1e9),
                "lat_mean_us": med[0] / nq / 1e3,
            }
            sweeps[t].append(p)
            print(f"{t:>4} {ef:>6} {p['recall']:>10.4f} {p['qps_median']:>12.1f} {p['qps_min']:>12.1f} "
                  f"{p['qps_max']:>12.1f} {p['lat_mean_us']:>12.2f} {'-':>12}")
            if csv:
                csv.write(f"hnswlib,{dataset},{args.M},{args.efc},{ef},{p['recall']:.6f},{p['qps_median']:.2f},"
                          f"{p['qps_min']:.2f},{p['qps_max']:.2f},{p['lat_mean_us']:.3f},,{build_s:.4f},"
                          f"{threads},{t},{api}\n")
        sys.stdout.flush()

    # ---- QPS at fixed recall, one summary line per search thread count. ----
    for t in sthreads:
        sweep = sweeps[t]
        summary = (f"summary: library=hnswlib threads={threads} search_threads={t} search_api={api} "
                   f"build_s={build_s:.4f} mem_bytes_per_vector={mem_per_vec:.1f}")
        print()
        if len(sthreads) > 1:
            print(f"search on {t} thread{'' if t == 1 else 's'}:")
        for target in TARGETS:
            r = qps_at_recall(sweep, target)
            if r is None:
                best = max(p["recall"] for p in sweep)
                print(f"QPS at recall {target:.2f}: n/a (best recall in the sweep is {best:.4f})")
                summary += f" qps@{target:.2f}=n/a"
            elif r[1]:
                print(f"QPS at recall {target:.2f}: >= {r[0]:.1f} (the smallest ef, {sweep[0]['ef']}, "
                      f"already reaches {sweep[0]['recall']:.4f})")
                summary += f" qps@{target:.2f}=>={r[0]:.1f}"
            else:
                lo = r[2]
                print(f"QPS at recall {target:.2f}: {r[0]:.1f} (interpolated between ef {sweep[lo]['ef']} "
                      f"and ef {sweep[lo + 1]['ef']})")
                summary += f" qps@{target:.2f}={r[0]:.1f}"
        print(summary)
        sys.stdout.flush()
    if csv:
        csv.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
