#!/usr/bin/env bash
# run_threads.sh — smallworld against hnswlib on several threads, side by side.
#
# One run, the same data and parameters for both libraries (M 16,
# ef_construction 200, level seed 100, k 10 unless overridden):
#
#   1. build on $THREADS threads (default 2): sw_add_batch for smallworld,
#      add_items(num_threads=$THREADS) for hnswlib, timed as build_s;
#   2. on that one index, the ef sweep with batch search on each count in
#      $SEARCH_THREADS (default "1,$THREADS"): sw_search_batch and
#      knn_query(num_threads=T), one call of all queries per pass.  The
#      harnesses interleave the thread counts repeat by repeat, so a burst
#      of load on a shared machine hits 1 and 2 threads alike.
#
# and prints: build seconds and the ratio smallworld / hnswlib; QPS at
# recall 0.90 / 0.95 / 0.99 at every search thread count (from each
# harness's own interpolation, its "summary:" lines); and the batch-search
# speed-up from the smallest to every larger thread count, per ef (equal
# ef, so equal recall within a library: the same index answers both) and at
# the three recall targets, for both libraries.
#
# A speed-up is the ratio of median QPS; its range beside it is the worst
# and best the min-max spreads allow (slowest run at T over fastest at 1,
# and the other way round).  A wide range means a noisy machine, not a
# measurement.
#
# The harnesses run one after the other, never together.  Before each, the
# load average is printed; after each, the CPU time other processes took
# while it ran ("others used X cores"), from /proc/stat minus the harness's
# own CPU time.  On a 2-core machine a 2-thread measurement has no spare
# core: anything above ~0.1 there has taken time from the benchmark.
#
# usage: bench/run_threads.sh DATA_DIR BUILD_DIR [options for both harnesses...]
#   DATA_DIR   holds base.{fbin|u8bin|i8bin}, query.{fbin|u8bin|i8bin}, gt.ibin
#   BUILD_DIR  the CMake build directory holding bench/sw_bench
#   options    passed to both after the defaults (--M 16 --efc 200 --repeat 5),
#              so they override them: e.g. --ef 16,32,64,128 --repeat 7 --nq 500
# environment: THREADS (build threads, default 2), SEARCH_THREADS (default
#   "1,$THREADS"), PYTHON (default python3), SW_BENCH_OUT (results directory,
#   default a new /tmp/sw_threads.XXXXXX)
set -euo pipefail

die() { echo "run_threads.sh: $*" >&2; exit 2; }

[ $# -ge 2 ] || die "usage: bench/run_threads.sh DATA_DIR BUILD_DIR [options for both harnesses...]"
DATA=$1
BUILD=$2
shift 2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-python3}
THREADS=${THREADS:-2}
SEARCH_THREADS=${SEARCH_THREADS:-1,$THREADS}

# shellcheck source=bench/bench_files.sh
. "$HERE/bench_files.sh"
"$PYTHON" -c 'import hnswlib, numpy' 2>/dev/null || die "$PYTHON cannot import hnswlib and numpy; pip install hnswlib numpy"
OUT=${SW_BENCH_OUT:-$(mktemp -d /tmp/sw_threads.XXXXXX)}
mkdir -p "$OUT"
COMMON=(--base "$BASE" --query "$QUERY" --gt "$GT" --name "$NAME" --M 16 --efc 200 --repeat 5
        --threads "$THREADS" --search-threads "$SEARCH_THREADS" "$@")
TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'; }
cpu_ticks() {  # busy and steal ticks of the whole machine
    awk '/^cpu /{print $2 + $3 + $4 + $7 + $8, $9; exit}' /proc/stat
}
own_cpu_s() {  # user + system seconds of this shell's finished children
    # `times` must run in this shell: a $(...) subshell has its own, empty,
    # children's times.  So it writes to a file and awk reads that.
    times > "$OUT/.times"
    tail -n 1 "$OUT/.times" | awk '{
        s = 0
        for (i = 1; i <= 2; i++) { split($i, p, "m"); sub(/s$/, "", p[2]); s += p[1] * 60 + p[2] }
        printf "%.2f\n", s }'
}

# measure LABEL FILE CMD...: run CMD, tee its output to FILE, then report
# the load around it.
measure() {
    local label=$1 file=$2 b0 s0 c0 w0 b1 s1 c1 w1
    shift 2
    echo "load average before $label: $(loadavg)" | tee "$file.load"
    read -r b0 s0 < <(cpu_ticks)
    own_cpu_s > "$OUT/.c0"
    w0=$(date +%s.%N)
    "$@" | tee "$file"
    w1=$(date +%s.%N)
    own_cpu_s > "$OUT/.c1"
    read -r b1 s1 < <(cpu_ticks)
    c0=$(cat "$OUT/.c0")
    c1=$(cat "$OUT/.c1")
    rm -f "$OUT/.c0" "$OUT/.c1" "$OUT/.times"
    awk -v l="$label" -v b="$((b1 - b0))" -v s="$((s1 - s0))" -v c="$c1" -v c0="$c0" -v w="$w1" -v w0="$w0" \
        -v t="$TCK" -v la="$(loadavg)" 'BEGIN {
        wall = w - w0; own = c - c0; busy = b / t
        printf "%s: %.1f s wall, own CPU %.1f s (%.2f cores); other processes %.2f cores, steal %.2f cores; load average after: %s\n",
            l, wall, own, own / wall, (busy - own) / wall, s / t / wall, la }' | tee -a "$file.load"
}

echo "data: $DATA ($NAME)   build: $BUILD   results: $OUT"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//') x $(nproc 2>/dev/null || echo '?')"
echo "build threads $THREADS, search threads $SEARCH_THREADS; options: ${*:-defaults}"
echo

echo "=== smallworld ==="
measure smallworld "$OUT/smallworld.txt" "$SW" "${COMMON[@]}" --csv "$OUT/smallworld.csv"
echo
echo "=== hnswlib ==="
measure hnswlib "$OUT/hnswlib.txt" "$PYTHON" "$HERE/hnswlib_core.py" "${COMMON[@]}" --csv "$OUT/hnswlib.csv"
echo

"$PYTHON" - "$OUT" "$NAME" <<'EOF' | tee "$OUT/table.txt"
import csv, sys

out, name = sys.argv[1], sys.argv[2]
LIBS = ("smallworld", "hnswlib")


def summaries(lib):
    res = {}
    with open(f"{out}/{lib}.txt") as f:
        for line in f:
            if line.startswith("summary:"):
                kv = dict(x.split("=", 1) for x in line.split()[1:])
                res[int(kv["search_threads"])] = kv
    return res


def rows(lib):
    res = {}
    with open(f"{out}/{lib}.csv") as f:
        for r in csv.DictReader(f):
            res[(int(r["search_threads"]), int(r["ef"]))] = r
    return res


def num(v):
    """(value, is_lower_bound) or None for n/a."""
    if v in (None, "", "n/a", "nan"):
        return None
    if v.startswith(">="):
        return float(v[2:]), True
    return float(v), False


def ratio(a, b, digits=2):
    a, b = num(a), num(b)
    if a is None or b is None or b[0] == 0:
        return "n/a"
    r = f"{a[0] / b[0]:.{digits}f}"
    if a[1] and b[1]:
        return r + "?"
    return (">=" if a[1] else "<=" if b[1] else "") + r


S = {lib: summaries(lib) for lib in LIBS}
R = {lib: rows(lib) for lib in LIBS}
threads = sorted(S["smallworld"])
if sorted(S["hnswlib"]) != threads:
    sys.exit(f"run_threads.sh: search thread counts differ: {threads} vs {sorted(S['hnswlib'])}")
bt = S["smallworld"][threads[0]]["threads"]
t1, tops = threads[0], threads[1:]

print(f"=== {name}: smallworld vs hnswlib, build on {bt} threads, batch search on "
      f"{','.join(map(str, threads))} threads ===")
w = 30
print(f"{'':<{w}} {'smallworld':>12} {'hnswlib':>12} {'smallworld/hnswlib':>20}")


def line(label, a, b, r):
    print(f"{label:<{w}} {a:>12} {b:>12} {r:>20}")


a, b = S["smallworld"][t1]["build_s"], S["hnswlib"][t1]["build_s"]
line(f"build seconds ({bt} threads)", a, b, ratio(a, b))
a, b = S["smallworld"][t1]["mem_bytes_per_vector"], S["hnswlib"][t1]["mem_bytes_per_vector"]
line("memory bytes/vector *", a, b, ratio(a, b))
for t in reversed(threads):
    for target in ("0.90", "0.95", "0.99"):
        a, b = S["smallworld"][t][f"qps@{target}"], S["hnswlib"][t][f"qps@{target}"]
        line(f"QPS at recall {target} ({t} thr)", a, b, ratio(a, b))
for t in tops:
    for target in ("0.90", "0.95", "0.99"):
        k = f"qps@{target}"
        line(f"speed-up {t1}->{t} thr at {target}", ratio(S["smallworld"][t][k], S["smallworld"][t1][k]),
             ratio(S["hnswlib"][t][k], S["hnswlib"][t1][k]), "")
print("build seconds: below 1 is better for smallworld; QPS: above 1 is. "
      "* smallworld: sw_memory_usage(); hnswlib: index_file_size(), an approximation")

for t in tops:
    print()
    print(f"batch-search speed-up {t1} -> {t} threads at equal ef (median QPS ratio, [worst..best] from the spreads)")
    hdr = f"{'ef':>6}"
    for lib in LIBS:
        hdr += f" | {lib + ' recall':>18} {'QPS ' + str(t1) + 'thr':>10} {'QPS ' + str(t) + 'thr':>10} {'speed-up':>8} {'range':>13}"
    print(hdr)
    efs = sorted({ef for (tt, ef) in R["smallworld"] if tt == t} | {ef for (tt, ef) in R["hnswlib"] if tt == t})
    for ef in efs:
        s = f"{ef:>6}"
        for lib in LIBS:
            lo, hi = R[lib].get((t1, ef)), R[lib].get((t, ef))
            if not lo or not hi:
                s += f" | {'-':>18} {'-':>10} {'-':>10} {'-':>8} {'-':>13}"
                continue
            q1, q2 = float(lo["qps_median"]), float(hi["qps_median"])
            worst = float(hi["qps_min"]) / float(lo["qps_max"])
            best = float(hi["qps_max"]) / float(lo["qps_min"])
            rec = lo["recall"] if lo["recall"] == hi["recall"] else f"{float(lo['recall']):.4f}/{float(hi['recall']):.4f}"
            s += (f" | {float(rec):>18.4f}" if "/" not in rec else f" | {rec:>18}")
            s += f" {q1:>10.1f} {q2:>10.1f} {q2 / q1:>8.2f} {f'[{worst:.2f}..{best:.2f}]':>13}"
        print(s)
EOF
echo
cat "$OUT/smallworld.txt.load" "$OUT/hnswlib.txt.load" | grep -v '^load average before'
echo "results: $OUT/{smallworld,hnswlib}.{txt,csv}, table.txt, *.load"
