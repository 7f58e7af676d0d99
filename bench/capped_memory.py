#!/usr/bin/env python3
"""capped_memory.py: serve saved indexes inside a hard memory limit.

Why this script exists, and why it is built the way it is.

quant_side_by_side.py reports a fresh process's memory split in two:
anonymous memory (the index's own bytes) and file-backed pages (for an int8
index with keep="disk", the float32 copies, mapped from the index file).
The second kind is page cache: clean, shared, and dropped by the kernel
whenever memory is wanted, but it still shows in RSS.  And the kernel maps
more of it than re-ranking reads: a read fault on a file mapping also maps
the neighbouring pages already in the page cache ("fault-around", 64 KB;
madvise(MADV_RANDOM) does not turn it off on the 6.x kernels measured), so
after a thousand queries at ef 64 on make_synth 1M the whole copy section
was resident although re-ranking had read at most 40,000 of the million
vectors.  RSS then says little about what the index needs.

So this script asks the question directly: give the process a hard limit
(a memory cgroup: anonymous memory AND the page cache it brings in count
against it, and the kernel must reclaim to stay under it) and see whether
it still loads, and at what recall and speed it answers.  The limit is a
fraction (--fraction, 0.45 after issue 10's criterion; a comma-separated
list for several) of hnswlib's peak resident set (VmHWM) for the same data
and queries, uncapped.  VmHWM, not the cgroup's peak: hnswlib reads its
file into anonymous memory, and the page cache that read leaves behind is
charged to its cgroup although no page of it is needed afterwards, so the
cgroup peak (reported too) would flatter any fraction of it.

How it runs (Linux, as root, cgroup v1 or v2 memory controller):

  - One child process per (index, limit), in a new memory cgroup.  The
    child joins the cgroup first, then imports NumPy and the library,
    reads the queries, loads the index (hnswlib load_index, smallworld
    Index.load(mmap=False): keep="disk" maps its copies from the file),
    runs one warm-up pass over the queries and --repeat timed passes at
    --ef, one thread, one batch call a pass.  It reports recall@k, the
    median QPS (min-max), its major page faults (each a read from disk)
    and its RSS split; the parent reads the cgroup's peak usage.
  - Before each child the page cache is dropped (sync, then
    /proc/sys/vm/drop_caches), so that the index file's pages are read,
    and charged, inside the child's cgroup instead of being left charged
    to whoever wrote the file.
  - hnswlib runs uncapped first; its VmHWM is the yardstick.  Then each
    smallworld index runs uncapped and capped at each --fraction x that.  A child the limit kills (the OOM killer:
    anonymous memory above the limit cannot be reclaimed) is reported as
    such.  Python and NumPy (about 40 MB) are inside every figure alike.

Usage:
  sudo python3 bench/capped_memory.py --data /work/cache/synth1m \\
      --hnswlib H.index --smallworld INT8_DISK.sw [--smallworld OTHER.sw] \\
      [--fraction 0.45,0.6] [--ef 64] [--repeat 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# ann_side_by_side (data loading, recall) imports NumPy: the parent never
# imports it, the child only once it is inside its cgroup, so the
# interpreter's libraries are charged where the child runs.


def fail(msg):
    print(f"capped_memory: {msg}", file=sys.stderr)
    sys.exit(2)


# ---- cgroups ----

def cgroup_root():
    """(version, directory under which a memory cgroup can be made)."""
    if os.path.exists("/sys/fs/cgroup/memory/memory.limit_in_bytes") or \
            os.path.isdir("/sys/fs/cgroup/memory"):
        return 1, "/sys/fs/cgroup/memory"
    for d in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        try:  # v2: the controller must be enabled for the children of d
            with open(os.path.join(d, "cgroup.subtree_control")) as f:
                if "memory" in f.read().split():
                    return 2, d
        except OSError:
            pass
    fail("no memory cgroup controller (needs Linux, root, cgroup v1 or v2 memory)")


class Cgroup:
    def __init__(self, limit_bytes):
        self.v, root = cgroup_root()
        self.dir = os.path.join(root, f"sw_capped_{os.getpid()}_{time.monotonic_ns()}")
        os.mkdir(self.dir)
        try:
            if self.v == 1:
                self._write("memory.limit_in_bytes", str(limit_bytes) if limit_bytes else "-1")
                if os.path.exists(os.path.join(self.dir, "memory.memsw.limit_in_bytes")):
                    # no swapping out of the limit either (memory + swap = memory)
                    self._write("memory.memsw.limit_in_bytes",
                                str(limit_bytes) if limit_bytes else "-1")
            else:
                self._write("memory.max", str(limit_bytes) if limit_bytes else "max")
                if os.path.exists(os.path.join(self.dir, "memory.swap.max")):
                    self._write("memory.swap.max", "0")
        except OSError:
            self.remove()
            raise

    def _write(self, name, value):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(value)

    def _read(self, name):
        with open(os.path.join(self.dir, name)) as f:
            return f.read()

    def procs(self):
        return os.path.join(self.dir, "cgroup.procs")

    def peak(self):
        if self.v == 1:
            return int(self._read("memory.max_usage_in_bytes"))
        try:
            return int(self._read("memory.peak"))  # Linux 5.19 and later
        except OSError:
            return -1

    def oom_kills(self):
        if self.v == 1:
            for line in self._read("memory.oom_control").splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
            return 0
        for line in self._read("memory.events").splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    def remove(self):
        for _ in range(50):
            try:
                os.rmdir(self.dir)
                return
            except OSError:
                time.sleep(0.1)
        print(f"capped_memory: could not remove {self.dir}", file=sys.stderr)


def drop_caches():
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3")
    except OSError as e:
        fail(f"cannot drop the page cache ({e}); run as root")


# ---- the child ----

def child(args):
    with open(args.procs, "w") as f:
        f.write(str(os.getpid()))
    # from here on inside the limit, as a user's process has them
    import resource
    import numpy as np
    import ann_side_by_side as sbs
    # the queries and the truth only: the base set stays out of the limit
    d = sbs.find_data(args.data)
    queries = np.ascontiguousarray(sbs.read_bin(sbs.find_file(d, "query")), dtype=np.float32)
    gt = np.ascontiguousarray(sbs.read_bin(os.path.join(d, "gt.ibin"))[:len(queries), :args.k])
    t0 = time.perf_counter()
    if args.lib == "hnswlib":
        import hnswlib
        ix = hnswlib.Index(space="l2", dim=queries.shape[1])
        ix.load_index(args.index)
        ix.set_ef(args.ef)

        def search():
            return ix.knn_query(queries, k=args.k, num_threads=1)[0]
    else:
        import smallworld
        ix = smallworld.Index.load(args.index)

        def search():
            return ix.search(queries, k=args.k, ef=args.ef, threads=1)[0]
    load_s = time.perf_counter() - t0
    search()  # warm-up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
    qps = []
    found = None
    for _ in range(args.repeat):
        t = time.perf_counter()
        found = search()
        qps.append(len(queries) / (time.perf_counter() - t))
    majflt = resource.getrusage(resource.RUSAGE_SELF).ru_majflt - before
    out = dict(load_s=load_s, qps=qps, recall=float(sbs.recall_at_k(found, gt)),
               majflt_per_query=majflt / (args.repeat * len(queries)), nq=len(queries),
               **sbs.proc_status(("VmRSS", "VmHWM", "RssAnon", "RssFile")))
    print("RESULT " + json.dumps(out), flush=True)


# ---- the parent ----

def measure(args, lib, index, limit):
    cg = Cgroup(limit)
    try:
        drop_caches()
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--procs", cg.procs(),
               "--lib", lib, "--index", index, "--data", args.data, "--ef", str(args.ef),
               "--k", str(args.k), "--repeat", str(args.repeat)]
        if args.pin_cpu >= 0:
            cmd = ["taskset", "-c", str(args.pin_cpu)] + cmd
        p = subprocess.run(cmd, capture_output=True, text=True)
        res = None
        for line in p.stdout.splitlines():
            if line.startswith("RESULT "):
                res = json.loads(line[7:])
        peak = cg.peak()
        kills = cg.oom_kills()
    finally:
        cg.remove()
    if res is None:
        return dict(failed=(f"killed by the OOM killer ({kills})" if kills
                            else f"exit {p.returncode}: {p.stderr.strip()[-300:]}"), peak=peak)
    res["peak"] = peak
    return res


def mib(b):
    return f"{b / 2**20:,.0f}" if b >= 0 else "?"


def row(name, limit, r, yard):
    lim = mib(limit) if limit else "none"
    if "failed" in r:
        return f"| {name} | {lim} | {mib(r['peak'])} | - | - | {r['failed']} | | | |"
    q = r["qps"]
    return (f"| {name} | {lim} | {mib(r['peak'])} | {mib(r['VmHWM'])} | "
            f"{r['VmHWM'] / yard:.2f} | {r['recall']:.4f} | "
            f"{statistics.median(q):,.0f} ({min(q):,.0f}-{max(q):,.0f}) | "
            f"{r['majflt_per_query']:.2f} | {mib(r['RssAnon'])} / {mib(r['RssFile'])} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=False, default="bigann10k")
    ap.add_argument("--hnswlib", help="hnswlib index saved from the same data (the yardstick)")
    ap.add_argument("--smallworld", action="append", default=[], help="smallworld index file")
    ap.add_argument("--fraction", default="0.45", help="comma-separated fractions")
    ap.add_argument("--ef", type=int, default=64)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pin-cpu", type=int, default=0)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--procs", help=argparse.SUPPRESS)
    ap.add_argument("--lib", help=argparse.SUPPRESS)
    ap.add_argument("--index", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    if not args.hnswlib or not args.smallworld:
        fail("give --hnswlib and at least one --smallworld index")
    cgroup_root()
    pin = f"pinned to CPU {args.pin_cpu}" if args.pin_cpu >= 0 else "not pinned"
    print(f"data {args.data}; ef {args.ef}, k {args.k}, one thread {pin}; "
          f"a warm-up pass, then the median of {args.repeat} (min-max); page cache dropped "
          f"before each process; cgroup peak = anonymous + page cache charged; VmHWM = peak RSS",
          flush=True)
    lines = ["| index | limit MiB | cgroup peak MiB | VmHWM MiB | x hnswlib VmHWM | recall@10 | "
             "QPS | major faults / query | RssAnon / RssFile MiB at the end |",
             "|---|---|---|---|---|---|---|---|---|"]
    h = measure(args, "hnswlib", args.hnswlib, 0)
    if "failed" in h:
        fail(f"hnswlib: {h['failed']}")
    yard = h["VmHWM"]
    lines.append(row("hnswlib " + os.path.basename(args.hnswlib), 0, h, yard))
    print(lines[-1], flush=True)
    limits = [int(float(f) * yard) for f in args.fraction.split(",")]
    for path in args.smallworld:
        name = "smallworld " + os.path.basename(path)
        for lim in [0] + limits:
            lines.append(row(name, lim, measure(args, "smallworld", path, lim), yard))
            print(lines[-1], flush=True)
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
