#!/usr/bin/env bash
# run_core.sh — smallworld against hnswlib on one data set, side by side.
#
# Runs bench/sw_bench (C, smallworld) and then bench/hnswlib_core.py (Python,
# hnswlib) on the same files with the same parameters, one after the other
# and never at the same time, so neither steals the other's core or cache.
# Both print their whole sweep (shown here as it runs) and end with a
# one-line "summary:" in the same format; this script reads only those two
# lines, so the interpolation of QPS at a recall target lives in one place
# per harness and this script does no arithmetic beyond the ratio.
#
# The table compares build seconds and QPS at recall 0.90 / 0.95 / 0.99,
# with the ratio smallworld / hnswlib (for QPS above 1 means smallworld is
# faster; for build seconds below 1 means smallworld builds faster).  A
# value printed ">=X" means the smallest ef of the sweep already reached the
# target, so X is a lower bound; ratios built from a bound carry ">=" or
# "<=" accordingly, and "?" when both sides are bounds.  Raw outputs and the
# CSVs of both sweeps are kept in the results directory printed at the end.
#
# Threads: --threads N and --search-threads T1,T2,... go to both harnesses
# like any other option; each harness then prints one summary line per
# search thread count, and the table gets one group of QPS rows per count.
# bench/run_threads.sh is the multi-threaded comparison with the scaling.
#
# The load average is printed first: on a shared machine, a compile running
# beside the benchmark moves QPS by tens of percent, and the min-max spread
# columns of the sweeps are the place to see it.
#
# usage: bench/run_core.sh DATA_DIR [BUILD_DIR] [options for both harnesses...]
#   DATA_DIR   holds base.{fbin|u8bin|i8bin}, query.{fbin|u8bin|i8bin}, gt.ibin
#   BUILD_DIR  the CMake build directory holding bench/sw_bench (default ./build)
#   options    passed to both, e.g. --M 32 --efc 400 --repeat 5 --nq 500
# environment: PYTHON (default python3), SW_BENCH_OUT (results directory,
#   default a new /tmp/sw_bench.XXXXXX)
set -euo pipefail

die() { echo "run_core.sh: $*" >&2; exit 2; }

[ $# -ge 1 ] || die "usage: bench/run_core.sh DATA_DIR [BUILD_DIR] [options for both harnesses...]"
DATA=$1; shift
BUILD=./build
if [ $# -ge 1 ] && [ "${1#--}" = "$1" ]; then BUILD=$1; shift; fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-python3}

# shellcheck source=bench/bench_files.sh
. "$HERE/bench_files.sh"
ARGS="$*"
OUT=${SW_BENCH_OUT:-$(mktemp -d /tmp/sw_bench.XXXXXX)}
mkdir -p "$OUT"

echo "data: $DATA ($NAME)   build: $BUILD   results: $OUT"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//') x $(nproc 2>/dev/null || echo '?')   load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
echo

echo "=== smallworld ==="
"$SW" --base "$BASE" --query "$QUERY" --gt "$GT" --name "$NAME" --csv "$OUT/smallworld.csv" "$@" \
    | tee "$OUT/smallworld.txt"
echo
echo "=== hnswlib ==="
"$PYTHON" "$HERE/hnswlib_core.py" --base "$BASE" --query "$QUERY" --gt "$GT" --name "$NAME" \
    --csv "$OUT/hnswlib.csv" "$@" | tee "$OUT/hnswlib.txt"
echo

field() {  # field FILE KEY [T]: KEY= on the summary line of FILE for search threads T (default: the first)
    if [ $# -ge 3 ]; then
        grep '^summary:' "$1" | grep -E " search_threads=$3( |\$)" | head -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"
    else
        grep '^summary:' "$1" | head -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"
    fi
}

# ratio A B: A/B for values that may be "n/a" or ">=X" lower bounds.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "n/a" || b == "n/a" || a == "" || b == "" || a == "nan" || b == "nan") { print "n/a"; exit }
        la = sub(/^>=/, "", a); lb = sub(/^>=/, "", b)
        if (b + 0 == 0) { print "n/a"; exit }
        r = sprintf("%.2f", a / b)
        if (la && lb) print r "?"; else if (la) print ">=" r; else if (lb) print "<=" r; else print r
    }'
}

row() {  # row LABEL KEY [T]
    local s h
    s=$(field "$OUT/smallworld.txt" "${@:2}"); h=$(field "$OUT/hnswlib.txt" "${@:2}")
    printf '%-28s %14s %14s %20s\n' "$1" "${s:-?}" "${h:-?}" "$(ratio "${s:-n/a}" "${h:-n/a}")"
}

BT=$(field "$OUT/smallworld.txt" threads)
STS=$(grep '^summary:' "$OUT/smallworld.txt" | tr ' ' '\n' | sed -n 's/^search_threads=//p' | tr '\n' ' ')
set -- $STS
if [ "${BT:-1}" = 1 ] && [ "$STS" = "1 " ]; then
    THR="single thread"
else
    THR="build threads ${BT:-?}, search threads $(echo $STS | tr ' ' ',')"
fi
echo "=== $NAME: smallworld vs hnswlib ($THR; args: ${ARGS:-defaults}) ==="
printf '%-28s %14s %14s %20s\n' "" "smallworld" "hnswlib" "smallworld/hnswlib"
row "build seconds" build_s
row "memory bytes/vector *" mem_bytes_per_vector
for T in $STS; do
    if [ $# -gt 1 ]; then
        L=" ($T thr)"
    else
        L=""
    fi
    row "QPS at recall 0.90$L" "qps@0.90" "$T"
    row "QPS at recall 0.95$L" "qps@0.95" "$T"
    row "QPS at recall 0.99$L" "qps@0.99" "$T"
done
echo "* smallworld: sw_memory_usage(); hnswlib: index_file_size(), an approximation"
echo "results: $OUT/{smallworld,hnswlib}.{txt,csv}"
