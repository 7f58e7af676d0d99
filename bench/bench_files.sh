# bench_files.sh — sourced by run_core.sh and run_threads.sh: find the data
# files of DATA_DIR and the two harnesses, or stop with a one-line reason.
# Expects DATA, BUILD, HERE, PYTHON and a die() function; sets BASE, QUERY,
# GT, SW and NAME.  With BENCH_DATA_ONLY=1 (run_delete.sh) it finds only
# BASE, QUERY and NAME.

[ -d "$DATA" ] || die "data directory $DATA does not exist"

pick() {  # pick NAME: the one DATA/NAME.{fbin,u8bin,i8bin} that exists
    local found=() ext
    for ext in fbin u8bin i8bin; do
        [ -f "$DATA/$1.$ext" ] && found+=("$DATA/$1.$ext")
    done
    [ ${#found[@]} -eq 1 ] || die "expected exactly one of $DATA/$1.{fbin,u8bin,i8bin}, found ${#found[@]}"
    echo "${found[0]}"
}
BASE=$(pick base)
QUERY=$(pick query)
NAME=$(basename "$(cd "$DATA" && pwd)")
# shellcheck disable=SC2317  # return in a sourced file
[ "${BENCH_DATA_ONLY:-0}" = 1 ] && return 0
GT=$DATA/gt.ibin
[ -f "$GT" ] || die "$GT does not exist"

SW=$BUILD/bench/sw_bench
[ -x "$SW" ] || die "$SW not found; build it with: cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release && cmake --build $BUILD --target sw_bench"
[ -f "$HERE/hnswlib_core.py" ] || die "$HERE/hnswlib_core.py not found"
