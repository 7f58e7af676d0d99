#!/usr/bin/env bash
# run_delete.sh — the deletion and filtering benchmark of smallworld, all
# four questions on one data set.
#
# sw_bench_delete (bench/bench_delete.c) answers four questions, one per
# --mode, and this script asks all four, one after the other and never at
# the same time (each needs the machine to itself: its timed searches are
# single-threaded, its builds and compaction use --threads, default 2):
#
#   half     delete a random half of the labels: sw_delete one by one,
#            sw_mark_deleted + sw_compact, tombstones alone, each against an
#            index built from the survivors only;
#   cluster  delete one whole cluster of make_synth.py data with sw_delete
#            and compare the other clusters' queries before and after, and
#            against an index built without the cluster;
#   filter   filtered search at 1%, 10% and 50% selectivity: allow-list and
#            callback against post-filtering and an exact scan;
#   update   replace the vectors of half of the labels of an index of the
#            first half of the base rows, against an index built from the
#            final vectors.
#
# The cluster question needs the cluster id of every row, which
# make_synth.py does not write: bench/synth_clusters.py recovers them by
# replaying its random draws and checking the replay against the data bit
# for bit.  This script runs it when base_clusters.i32bin or
# query_clusters.i32bin is missing or older than base.fbin, and skips the
# cluster mode (with a message) when the data is not make_synth.py's.
#
# Passes are short at low ef (1,000 queries in tens of milliseconds), too
# short to time steadily on a shared machine, so half and cluster run each
# pass over the query set $TILE times (--tile, default 4); the filter mode's
# passes are long enough as they are.  The load average is printed before
# each mode and the wall time after it: a compile running beside the
# benchmark moves QPS by tens of percent, and the min-max spread columns of
# the tables are where to see it.  Expect about 10-13 minutes in all on
# 200,000 x 128 with 2 cores: roughly 5 for half (most of it the 100,000
# sw_delete calls, a few milliseconds each at this size), 1.5 for cluster
# and 4.5 for filter (most of it the allow-list and exact passes at 50%).
# HALF_ARGS="--nb 100000" or --queries 500 shorten it.
#
# Outputs, in the results directory: half.txt, cluster.txt, filter.txt (the
# programs' full output) and one CSV file per kind of CSV line in them
# (half.csv, half_op.csv, half_at_recall.csv, cluster.csv, cluster_op.csv,
# cluster_at_recall.csv, cluster_in_at_recall.csv, filter.csv), made from
# the "CSV_HEADER,<kind>,..." and "CSV,<kind>,..." lines.
#
# usage: bench/run_delete.sh [DATA_DIR [BUILD_DIR]] [options for every mode...]
#   DATA_DIR   base.{fbin|u8bin|i8bin} and query.{fbin|u8bin|i8bin}
#              (default $SW_DELETE_DATA, else /work/cache/synth200k)
#   BUILD_DIR  CMake build directory (default ./build of the repository);
#              sw_bench_delete is built there (incrementally) first
#   options    go to all three modes, e.g. --queries 500 --repeat 3
# environment: MODES (default "half cluster filter update"), TILE (default 4),
#   HALF_ARGS, CLUSTER_ARGS, FILTER_ARGS, UPDATE_ARGS (extra options for one mode only,
#   e.g. FILTER_ARGS="--sel 10,100"), PYTHON (default python3), SW_NO_BUILD=1
#   (use the binary as it is), SW_BENCH_OUT (results directory, default a new
#   /tmp/sw_delete.XXXXXX)
set -euo pipefail

die() { echo "run_delete.sh: $*" >&2; exit 2; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DATA=${SW_DELETE_DATA:-/work/cache/synth200k}
BUILD=$ROOT/build
if [ $# -ge 1 ] && [ "${1#--}" = "$1" ]; then DATA=$1; shift; fi
if [ $# -ge 1 ] && [ "${1#--}" = "$1" ]; then BUILD=$1; shift; fi
PYTHON=${PYTHON:-python3}
MODES=${MODES:-half cluster filter update}
TILE=${TILE:-4}

BENCH_DATA_ONLY=1
# shellcheck source=bench_files.sh
. "$HERE/bench_files.sh"
for m in $MODES; do
    case $m in half|cluster|filter|update) ;; *) die "MODES: unknown mode \"$m\" (half, cluster, filter, update)" ;; esac
done

# ---- Build (incremental: a no-op when nothing changed). ----
BIN=$BUILD/bench/sw_bench_delete
if [ "${SW_NO_BUILD:-0}" != 1 ]; then
    if [ ! -f "$BUILD/CMakeCache.txt" ]; then
        cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null \
            || die "cmake configure of $BUILD failed"
    fi
    cmake --build "$BUILD" --target sw_bench_delete -j "$(nproc 2>/dev/null || echo 2)" >/dev/null \
        || die "building sw_bench_delete in $BUILD failed (run: cmake --build $BUILD --target sw_bench_delete)"
fi
[ -x "$BIN" ] || die "$BIN not found; build it with: cmake --build $BUILD --target sw_bench_delete"

OUT=${SW_BENCH_OUT:-$(mktemp -d /tmp/sw_delete.XXXXXX)}
mkdir -p "$OUT"

# ---- Cluster files for --mode cluster. ----
CLUSTER_OK=1
case " $MODES " in
*" cluster "*)
    BC=$DATA/base_clusters.i32bin
    QC=$DATA/query_clusters.i32bin
    if [ ! -f "$BC" ] || [ ! -f "$QC" ] || [ "$BC" -ot "$BASE" ] || [ "$QC" -ot "$QUERY" ]; then
        if [ "${BASE##*.}" != fbin ]; then
            echo "note: $DATA has no cluster files and is not make_synth.py data; skipping --mode cluster"
            CLUSTER_OK=0
        else
            echo "=== making cluster files: bench/synth_clusters.py $DATA ==="
            if ! "$PYTHON" "$HERE/synth_clusters.py" "$DATA" 2>&1 | tee "$OUT/synth_clusters.txt"; then
                echo "note: synth_clusters.py could not reproduce $DATA (see above); skipping --mode cluster"
                CLUSTER_OK=0
            fi
            echo
        fi
    fi
    ;;
esac

REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
if [ -n "$(git -C "$ROOT" status --porcelain -- src include 2>/dev/null)" ]; then REV="$REV + local changes"; fi
echo "data: $DATA ($NAME)   binary: $BIN   source: $REV   results: $OUT"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//') x $(nproc 2>/dev/null || echo '?')"
echo

loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'; }
FAILED=""
START=$(date +%s)
for m in $MODES; do
    case $m in
    half)    ARGS=(--tile "$TILE") ; EXTRA=${HALF_ARGS:-} ;;
    cluster) ARGS=(--tile "$TILE") ; EXTRA=${CLUSTER_ARGS:-} ;;
    filter)  ARGS=() ; EXTRA=${FILTER_ARGS:-} ;;
    update)  ARGS=(--tile "$TILE") ; EXTRA=${UPDATE_ARGS:-} ;;
    esac
    if [ "$m" = cluster ] && [ "$CLUSTER_OK" != 1 ]; then continue; fi
    echo "=== --mode $m   (load average $(loadavg)) ==="
    t0=$(date +%s)
    set +e
    # shellcheck disable=SC2086  # EXTRA is a list of words on purpose
    "$BIN" --mode "$m" --base "$BASE" --query "$QUERY" --name "$NAME" "${ARGS[@]}" "$@" $EXTRA 2>&1 \
        | tee "$OUT/$m.txt"
    rc=${PIPESTATUS[0]}
    set -e
    t1=$(date +%s)
    echo "=== --mode $m: exit $rc, $((t1 - t0)) s wall, load average after $(loadavg) ==="
    echo
    [ "$rc" = 0 ] || FAILED="$FAILED $m(exit $rc)"
    # One CSV file per kind of CSV line.
    sed -n 's/^CSV_HEADER,\([^,]*\),.*/\1/p' "$OUT/$m.txt" | sort -u | while read -r kind; do
        { grep "^CSV_HEADER,$kind," "$OUT/$m.txt" | head -n 1
          grep "^CSV,$kind," "$OUT/$m.txt"; } | cut -d, -f3- > "$OUT/$kind.csv"
    done
done

echo "total wall time $(( $(date +%s) - START )) s"
echo "results: $OUT"
for f in "$OUT"/*; do echo "  ${f##*/}"; done
if [ -n "$FAILED" ]; then
    echo "run_delete.sh: failed or flagged:$FAILED (exit 1 = a library failure or an UNEXPECTED result; see the .txt files)" >&2
    exit 1
fi
