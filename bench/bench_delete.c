/*
 * bench_delete.c — sw_bench_delete: what deleting and filtering cost
 * smallworld, in recall and in search speed.
 *
 * What it measures, and why it is measured this way.
 *
 * A deletion is only as good as the graph it leaves behind, and the graph
 * that a deletion should be judged against is the one a user would have had
 * if the deleted vectors had never been added.  So each question below puts
 * the index after deletion side by side with the index that is its fair
 * reference, scored on the same queries against the same exact answer, and
 * reports the difference in recall and the ratio of throughput.  Three
 * questions, one per --mode:
 *
 *   half     Delete a random half of the base set (fixed --seed).  Four
 *            indexes: "fresh", built from the survivors only (the
 *            reference); "delete", the full index after sw_delete of every
 *            chosen label one by one; "compact", the full index after
 *            sw_mark_deleted of each and one sw_compact on --threads
 *            threads; "tombstone", the full index after sw_mark_deleted
 *            only.  Build, deletion and compaction times, and every index's
 *            sw_memory_usage, are printed with the search table.
 *   cluster  Delete one whole cluster of a make_synth.py data set (cluster
 *            ids from bench/synth_clusters.py), the hole a real workload
 *            makes when a tenant or a topic goes away, with sw_delete one by
 *            one.  Measured on the queries drawn from the other clusters,
 *            before and after the deletion, and on a third index built
 *            without the cluster ("fresh", the reference, as in half); the
 *            queries of the deleted cluster, whose neighbourhood is gone,
 *            are a second, small row set, and the fresh index tells how
 *            much of their loss is the deletion's and how much is simply
 *            that their neighbours are now far away.  The cluster is the
 *            one with the most queries (so that second set is as large as
 *            it gets; --cluster C to choose).
 *   filter   Filtered search at 1%, 10% and 50% selectivity (a label is
 *            allowed when a hash of it modulo 1000 is below 10, 100, 500),
 *            by four methods: sw_search with an allow-list; with a filter
 *            callback testing the same hash; post-filtering, an unfiltered
 *            sw_search for k' = max(k, 2 ceil(k / s)) results at ef =
 *            max(ef, k') keeping the first k allowed (the baseline a user
 *            without filter support writes); and sw_search_exact with the
 *            allow-list (a scan of the allowed set, the other baseline).
 *   update   Replace the vectors of a random half of the labels (fixed
 *            --seed) with sw_add, one by one: the index holds labels 0..n-1
 *            with the first n = nb/2 base rows, and label L, when chosen,
 *            takes row n + L, a vector from anywhere in the data.  Two
 *            indexes: "fresh", built from the final vectors (the
 *            reference), and "update", the initial index after the
 *            updates.  Update and insert times are printed with the table.
 *
 * Choices, each with its reason:
 *
 *   - Ground truth is computed by the library's own exact search on the
 *     index being judged, never taken from a file: after deletion the true
 *     neighbours are those among the survivors, and under a filter those
 *     among the allowed labels.  For "half" it comes from sw_search_exact on
 *     the fresh index; the exact searches of the other three (which hold the
 *     same live labels) are checked against it on the first 100 queries,
 *     distance for distance, so a deleted label that exact search still
 *     returned would show up there.  For "filter" the truth is
 *     sw_search_exact with the callback, so method (iv), the same search
 *     with the allow-list, should score 1.0: a check that both ways of
 *     stating a filter mean the same set.  recall@k is the fraction of the
 *     true top-k labels found among the k returned, per query, averaged.
 *   - Same starting graph.  A multi-threaded build gives a different graph
 *     each run, and an index cannot be copied through the API except by
 *     saving it.  So the full index is built once (timed), saved to a
 *     temporary file (--tmpdir) and loaded once per copy that needs it;
 *     "delete", "compact" and "tombstone" (and "before" and "after" in
 *     cluster mode) start from the very same graph, and the differences between
 *     them are the deletion method's alone.  The fresh index is also saved
 *     and loaded, so every index that is searched was made the same way
 *     (sw_load keeps slot order: same graph, same memory layout).
 *   - Search is single-threaded, one sw_search per query, as the
 *     application calls it; each query is timed with its own pair of
 *     clock_gettime(CLOCK_MONOTONIC) reads for the latency columns, and QPS
 *     comes from the time of the whole pass.  Every measurement is repeated
 *     --repeat times and the median pass is reported (the slower middle one
 *     for an even count, so it is one real pass), with the min-max spread.
 *     At low ef a pass of 1,000 queries lasts tens of milliseconds, short
 *     enough for scheduler noise to show; --tile R runs the query set R
 *     times per pass (recall is unchanged: the index does not change
 *     during a pass).
 *   - Equal ef is not equal recall: a tombstoned index searches a larger
 *     pool (the library sizes it by the live share), and a repaired graph
 *     may be better or worse connected than a fresh one.  So half and
 *     cluster also print QPS at recall 0.90, 0.95 and 0.99, interpolated
 *     over the ef sweep as bench_core.c does, and the ratio to the
 *     reference at equal recall; ">=" marks a lower bound (the smallest ef
 *     already reaches the target: add a smaller --ef to get the figure).
 *   - Interleaving.  Within each repeat every contender is run once before
 *     any is run again (the four indexes at one ef; before and after; all
 *     methods and efs of one selectivity), so a burst of load on a shared
 *     machine hits all of them alike and the ratios stay honest even when
 *     the absolute numbers move.
 *   - Post-filtering's selection of allowed results is inside its timing:
 *     it is part of the method.  Recall is computed after each pass, from
 *     the labels kept, outside the timing.  A post-filter search whose
 *     effective (k', ef) equals one already run is the same call and is
 *     run once and shown for each ef it stands for.
 *   - Deletions are timed one call at a time (mean, p99, max, and the mean
 *     of each tenth of the calls in call order, which shows whether a
 *     delete gets dearer as the graph thins) and as a total; compaction is
 *     timed as a total.  A long loop reports progress on stderr.
 *   - The library is checked as it is measured: live and tombstoned counts
 *     after each deletion method, sw_contains of every deleted label, and
 *     every result of every timed pass (no deleted label, no label outside
 *     the filter).  A violation is printed as "UNEXPECTED:" with the call
 *     and the values, counted in the "bad" columns, and makes the exit code
 *     1 once the run is complete: a benchmark must not quietly average
 *     over wrong answers.
 *   - Every table row is also printed as one machine-readable line,
 *     "CSV,<kind>,..." with a "CSV_HEADER,<kind>,..." line before the first
 *     of its kind; fields from the third on form a plain CSV file
 *     (bench/run_delete.sh extracts them).
 *
 * Data files use the big-ann-benchmarks layout (int32 n, int32 d, row-major
 * data, the element type from the extension: .fbin, .u8bin, .i8bin) and are
 * converted to float once, at load.  Cluster files are int32 n, then n int32
 * ids.  Every header is checked against its file's size before any work.
 * --nb N takes the first N base rows only, for quick runs at smaller scale
 * (ground truth is computed, so any N is consistent).
 *
 * Exit codes: 0 success, 2 bad command line or input files, 1 a library or
 * system failure, or an UNEXPECTED library result seen during the run.
 *
 * Only smallworld.h is included: the benchmark is a user of the library
 * like any other.
 */
#define _POSIX_C_SOURCE 200809L

#include "smallworld.h"

#define BENCH_NAME "sw_bench_delete"
#include "bench_util.h"
#include "bench_data.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef SW_BENCH_CONFIG
#define SW_BENCH_CONFIG ""
#endif

#define NO_LABEL UINT64_MAX

/* ===================================================================== */
/* Small helpers                                                         */
/* ===================================================================== */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) die(EXIT_RUNTIME, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

static double secs(uint64_t ns) { return (double)ns / 1e9; }

static double mib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

/* A recall difference, with rounding noise (and so "-0.0000") taken out. */
static double rdiff(double a, double b)
{
    double d = a - b;
    return fabs(d) < 1e-9 ? 0.0 : d;
}

/* splitmix64: the hash of the filter and the generator of the random half. */
static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rng_next(uint64_t *state)
{
    *state += 0x9E3779B97F4A7C15ull;
    return mix64(*state);
}

/* The filter of --mode filter: allowed when hash(label) mod 1000 < thr. */
static int label_allowed(uint64_t label, uint32_t thr) { return mix64(label) % 1000u < thr; }

static int filter_callback(uint64_t label, void *ctx)
{
    return label_allowed(label, *(const uint32_t *)ctx);
}

/* Library results that break the API's promises.  Counted, printed, and
 * turned into exit code 1 at the end. */
static size_t g_unexpected;

static void unexpected(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void unexpected(const char *fmt, ...)
{
    va_list ap;
    g_unexpected++;
    fputs("UNEXPECTED: ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

/* Temporary index files, removed at exit whatever the path out. */
static char g_tmp_paths[2][4096];

static void remove_tmp_files(void)
{
    for (size_t i = 0; i < 2; i++)
        if (g_tmp_paths[i][0]) {
            unlink(g_tmp_paths[i]);
            g_tmp_paths[i][0] = '\0';
        }
}

/* ===================================================================== */
/* Data files                                                            */
/* ===================================================================== */

/* A cluster file: int32 n, then n int32 ids; n must be `expect`. */
static int32_t *read_ids(const char *what, const char *path, size_t expect)
{
    struct stat st;
    FILE *f = open_checked(what, path, &st);
    int32_t n;
    int32_t *ids;
    if ((uint64_t)st.st_size < 4 || fread(&n, 4, 1, f) != 1)
        die(EXIT_USAGE, "%s file %s: shorter than its 4-byte header", what, path);
    if (n <= 0 || (uint64_t)st.st_size != 4 + 4 * (uint64_t)n)
        die(EXIT_USAGE, "%s file %s: header says %d ids but the file has %llu bytes after it",
            what, path, (int)n, (unsigned long long)((uint64_t)st.st_size - 4));
    if ((size_t)n != expect)
        die(EXIT_USAGE, "%s file %s: %d ids, but the vector file has %zu rows; is it the cluster "
            "file of this data set?", what, path, (int)n, expect);
    ids = xmalloc((size_t)n * sizeof(int32_t));
    if (fread(ids, 4, (size_t)n, f) != (size_t)n) die(EXIT_RUNTIME, "%s: short read", path);
    fclose(f);
    for (size_t i = 0; i < (size_t)n; i++)
        if (ids[i] < 0)
            die(EXIT_USAGE, "%s file %s: row %zu has negative cluster id %d", what, path, i,
                (int)ids[i]);
    return ids;
}

/* ===================================================================== */
/* Command line                                                          */
/* ===================================================================== */

typedef enum { MODE_HALF, MODE_CLUSTER, MODE_FILTER, MODE_UPDATE } bench_mode;

typedef struct {
    bench_mode mode;
    const char *mode_name;
    const char *base, *query, *clusters, *query_clusters, *name, *tmpdir;
    uint32_t M, efc;
    size_t k, nq, nb, tile;
    int nq_given;
    uint32_t *efs;
    size_t n_ef;
    uint32_t *sels; /* permille thresholds of --mode filter */
    size_t n_sel;
    unsigned repeat;
    size_t threads;
    uint64_t seed;
    long cluster; /* -1: choose */
} args;

static void usage(FILE *to)
{
    fputs("usage: sw_bench_delete --mode half|cluster|filter|update --base FILE --query FILE\n"
          "           [--queries 1000] [--ef 16,32,64,128] [--repeat 5] [--threads 2]\n"
          "           [--M 16] [--efc 200] [--k 10] [--nb N] [--tile 1] [--name DATASET]\n"
          "           [--tmpdir DIR]\n"
          "  half:    [--seed 2026]            delete a random half of the labels\n"
          "  cluster: [--clusters FILE] [--query-clusters FILE] [--cluster C]\n"
          "           (default: base_clusters.i32bin and query_clusters.i32bin beside --base,\n"
          "           written by bench/synth_clusters.py; the default cluster is the one with\n"
          "           the most queries)\n"
          "  filter:  [--sel 10,100,500]       permille thresholds: allowed when\n"
          "           hash(label) % 1000 < threshold\n"
          "Files: big-ann-benchmarks layout (int32 n, int32 d, row-major data); .fbin float32,\n"
          ".u8bin uint8, .i8bin int8.  Cluster files: int32 n, then n int32 ids.\n"
          "--threads builds (sw_add_batch) and compacts on that many threads (0 = all CPUs);\n"
          "searches are single-threaded.  --nb N uses the first N base rows only; --tile R\n"
          "runs the query set R times per timed pass (longer passes, steadier QPS).\n"
          "Table rows are repeated as CSV,<kind>,... lines.\n",
          to);
}

/* A comma-separated list of integers in [lo, hi], sorted and de-duplicated. */
static uint32_t *parse_u32_list(const char *opt, const char *s, unsigned long lo,
                                unsigned long hi, size_t *n_out)
{
    const char *p = s;
    size_t cap = 16, n = 0, i, w;
    uint32_t *v = xmalloc(cap * sizeof(uint32_t));
    for (;;) {
        char item[32];
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= sizeof item)
            die(EXIT_USAGE, "%s expects a comma-separated list of integers, got \"%s\"", opt, s);
        memcpy(item, p, len);
        item[len] = '\0';
        if (n == cap) {
            uint32_t *grown;
            cap *= 2;
            grown = realloc(v, cap * sizeof(uint32_t));
            if (!grown) die(EXIT_RUNTIME, "out of memory");
            v = grown;
        }
        v[n++] = (uint32_t)parse_ulong(opt, item, lo, hi);
        if (!comma) break;
        p = comma + 1;
    }
    qsort(v, n, sizeof(uint32_t), cmp_u32);
    for (i = 1, w = 1; i < n; i++)
        if (v[i] != v[w - 1]) v[w++] = v[i];
    *n_out = w;
    return v;
}

/* DIR/name where DIR is the directory of `path`. */
static char *beside(const char *path, const char *name)
{
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path + 1) : 0;
    char *out = xmalloc(dl + strlen(name) + 1);
    memcpy(out, path, dl);
    strcpy(out + dl, name);
    return out;
}

static void parse_args(int argc, char **argv, args *a)
{
    const char *mode = NULL;
    int i;
    memset(a, 0, sizeof *a);
    a->M = 16;
    a->efc = 200;
    a->k = 10;
    a->nq = 1000;
    a->tile = 1;
    a->repeat = 5;
    a->threads = 2;
    a->seed = 2026;
    a->cluster = -1;
    a->efs = parse_u32_list("--ef", "16,32,64,128", 1, SW_MAX_EF, &a->n_ef);
    a->sels = parse_u32_list("--sel", "10,100,500", 1, 1000, &a->n_sel);

    for (i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (strncmp(o, "--", 2) != 0) {
            usage(stderr);
            die(EXIT_USAGE, "unexpected argument \"%s\"", o);
        }
        if (i + 1 >= argc) die(EXIT_USAGE, "%s needs a value", o);
        v = argv[++i];
        if (!strcmp(o, "--mode")) mode = v;
        else if (!strcmp(o, "--base")) a->base = v;
        else if (!strcmp(o, "--query")) a->query = v;
        else if (!strcmp(o, "--clusters")) a->clusters = v;
        else if (!strcmp(o, "--query-clusters")) a->query_clusters = v;
        else if (!strcmp(o, "--name")) a->name = v;
        else if (!strcmp(o, "--tmpdir")) a->tmpdir = v;
        else if (!strcmp(o, "--M")) a->M = (uint32_t)parse_ulong(o, v, SW_MIN_M, SW_MAX_M);
        else if (!strcmp(o, "--efc")) a->efc = (uint32_t)parse_ulong(o, v, 1, SW_MAX_EF);
        else if (!strcmp(o, "--k")) a->k = (size_t)parse_ulong(o, v, 1, 10000);
        else if (!strcmp(o, "--queries")) {
            a->nq = (size_t)parse_ulong(o, v, 1, (unsigned long)INT32_MAX);
            a->nq_given = 1;
        } else if (!strcmp(o, "--nb"))
            a->nb = (size_t)parse_ulong(o, v, 2, (unsigned long)INT32_MAX);
        else if (!strcmp(o, "--tile")) a->tile = (size_t)parse_ulong(o, v, 1, 1000);
        else if (!strcmp(o, "--repeat")) a->repeat = (unsigned)parse_ulong(o, v, 1, 1000);
        else if (!strcmp(o, "--threads"))
            a->threads = resolve_threads((size_t)parse_ulong(o, v, 0, SW_MAX_THREADS));
        else if (!strcmp(o, "--seed")) a->seed = (uint64_t)parse_ulong(o, v, 0, ULONG_MAX);
        else if (!strcmp(o, "--cluster")) a->cluster = (long)parse_ulong(o, v, 0, INT32_MAX);
        else if (!strcmp(o, "--ef")) {
            free(a->efs);
            a->efs = parse_u32_list(o, v, 1, SW_MAX_EF, &a->n_ef);
        } else if (!strcmp(o, "--sel")) {
            free(a->sels);
            a->sels = parse_u32_list(o, v, 1, 1000, &a->n_sel);
        } else {
            usage(stderr);
            die(EXIT_USAGE, "unknown option \"%s\"", o);
        }
    }
    if (!mode) die(EXIT_USAGE, "--mode half|cluster|filter|update is required");
    a->mode_name = mode;
    if (!strcmp(mode, "half")) a->mode = MODE_HALF;
    else if (!strcmp(mode, "cluster")) a->mode = MODE_CLUSTER;
    else if (!strcmp(mode, "filter")) a->mode = MODE_FILTER;
    else if (!strcmp(mode, "update")) a->mode = MODE_UPDATE;
    else die(EXIT_USAGE, "--mode must be half, cluster, filter or update, got \"%s\"", mode);
    if (!a->base) die(EXIT_USAGE, "--base FILE is required");
    if (!a->query) die(EXIT_USAGE, "--query FILE is required");
    if (a->mode != MODE_CLUSTER && (a->clusters || a->query_clusters || a->cluster >= 0))
        die(EXIT_USAGE, "--clusters, --query-clusters and --cluster belong to --mode cluster");
    if (!a->tmpdir) {
        const char *t = getenv("TMPDIR");
        a->tmpdir = t && *t ? t : "/tmp";
    }
    /* half and cluster copy the index through a file: check the directory
     * now rather than after the build. */
    if (a->mode != MODE_FILTER && access(a->tmpdir, W_OK | X_OK) != 0)
        die(EXIT_USAGE, "temporary directory %s: %s (set --tmpdir or TMPDIR)", a->tmpdir,
            strerror(errno));
}

/* ===================================================================== */
/* Indexes                                                               */
/* ===================================================================== */

static sw_index *build_index(const args *a, size_t d, const uint64_t *labels,
                             const float *vectors, size_t n, double *build_s)
{
    sw_options opt = sw_options_default();
    sw_index *ix = NULL;
    sw_status st;
    uint64_t t0, t1;
    opt.dim = (uint32_t)d;
    opt.M = a->M;
    opt.ef_construction = a->efc;
    st = sw_create(&opt, &ix);
    if (st != SW_OK)
        die(st == SW_ENOMEM ? EXIT_RUNTIME : EXIT_USAGE, "sw_create: %s", sw_last_error());
    t0 = now_ns();
    st = sw_add_batch(ix, labels, vectors, n, d, a->threads);
    t1 = now_ns();
    if (st != SW_OK) die(EXIT_RUNTIME, "sw_add_batch of %zu vectors: %s", n, sw_last_error());
    if (sw_count(ix) != n)
        unexpected("sw_count() = %zu after sw_add_batch of %zu distinct labels", sw_count(ix), n);
    *build_s = secs(t1 - t0);
    return ix;
}

/* Save `ix` to a new temporary file (slot `slot` of g_tmp_paths). */
static const char *save_tmp(const args *a, const sw_index *ix, int slot, double *save_s)
{
    char *path = g_tmp_paths[slot];
    int fd, n;
    uint64_t t0;
    sw_status st;
    n = snprintf(path, sizeof g_tmp_paths[slot], "%s/sw_bench_delete.XXXXXX", a->tmpdir);
    if (n < 0 || (size_t)n >= sizeof g_tmp_paths[slot])
        die(EXIT_USAGE, "--tmpdir path too long");
    fd = mkstemp(path);
    if (fd < 0) {
        int e = errno;
        path[0] = '\0';
        die(EXIT_RUNTIME, "cannot create a temporary file in %s: %s (set --tmpdir)", a->tmpdir,
            strerror(e));
    }
    close(fd);
    t0 = now_ns();
    st = sw_save(ix, path);
    if (st != SW_OK) die(EXIT_RUNTIME, "sw_save(%s): %s", path, sw_last_error());
    *save_s = secs(now_ns() - t0);
    return path;
}

static sw_index *load_copy(const char *path, double *load_s)
{
    sw_index *ix = NULL;
    uint64_t t0 = now_ns();
    sw_status st = sw_load(path, NULL, &ix);
    if (st != SW_OK) die(EXIT_RUNTIME, "sw_load(%s): %s", path, sw_last_error());
    *load_s = secs(now_ns() - t0);
    return ix;
}

/* Timing of a loop of per-label calls (sw_delete, sw_mark_deleted): the
 * total, the distribution, and the mean of each tenth of the calls in call
 * order, which shows whether calls get dearer as the graph thins. */
typedef struct {
    size_t n;
    double total_s, mean_us, p99_us, max_us;
    double tenth_us[10];
} op_stats;

static op_stats time_label_ops(sw_index *ix, const uint64_t *labels, size_t n,
                               sw_status (*fn)(sw_index *, uint64_t), const char *name)
{
    uint64_t *lat = xmalloc((n ? n : 1) * sizeof(uint64_t)), t0, t1, sum = 0, last;
    op_stats s;
    size_t i, t, next = n / 10;
    t0 = last = now_ns();
    for (i = 0; i < n; i++) {
        uint64_t q0 = now_ns();
        sw_status st = fn(ix, labels[i]);
        lat[i] = now_ns() - q0;
        if (st != SW_OK)
            die(EXIT_RUNTIME, "%s(label %llu), call %zu of %zu: %s", name,
                (unsigned long long)labels[i], i + 1, n, sw_last_error());
        if (i + 1 == next) { /* progress on stderr when a tenth takes over 2 s */
            uint64_t now = now_ns();
            if (now - last > 2000000000ull)
                fprintf(stderr, BENCH_NAME ": %s: %zu of %zu calls, %.1f s\n", name, i + 1, n,
                        secs(now - t0));
            last = now;
            next += n / 10;
        }
    }
    t1 = now_ns();
    for (t = 0; t < 10; t++) {
        size_t lo = n * t / 10, hi = n * (t + 1) / 10;
        uint64_t ts = 0;
        for (i = lo; i < hi; i++) ts += lat[i];
        s.tenth_us[t] = hi > lo ? (double)ts / (double)(hi - lo) / 1e3 : NAN;
    }
    for (i = 0; i < n; i++) sum += lat[i];
    qsort(lat, n, sizeof(uint64_t), cmp_u64);
    s.n = n;
    s.total_s = secs(t1 - t0);
    s.mean_us = n ? (double)sum / (double)n / 1e3 : 0;
    s.p99_us = n ? (double)lat[(size_t)ceil(0.99 * (double)n) - 1] / 1e3 : 0;
    s.max_us = n ? (double)lat[n - 1] / 1e3 : 0;
    free(lat);
    return s;
}

/* Check the counts an index must report after a deletion method. */
static void check_counts(const char *what, const sw_index *ix, size_t live, size_t tomb)
{
    size_t c = sw_count(ix), t = sw_deleted_count(ix);
    if (c != live)
        unexpected("%s: sw_count() = %zu, expected %zu live labels", what, c, live);
    if (t != tomb)
        unexpected("%s: sw_deleted_count() = %zu, expected %zu", what, t, tomb);
}

/* Every label in `gone` must be absent for sw_contains; `tomb` also checks
 * sw_is_deleted (1 for tombstones, 0 for true deletions). */
static void check_gone(const char *what, const sw_index *ix, const uint64_t *gone, size_t n,
                       int tomb)
{
    size_t present = 0, wrong_mark = 0, first_p = SIZE_MAX, first_m = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        if (sw_contains(ix, gone[i])) {
            present++;
            if (first_p == SIZE_MAX) first_p = i;
        }
        if (sw_is_deleted(ix, gone[i]) != tomb) {
            wrong_mark++;
            if (first_m == SIZE_MAX) first_m = i;
        }
    }
    if (present)
        unexpected("%s: sw_contains() = 1 for %zu of %zu deleted labels (first: %llu)", what,
                   present, n, (unsigned long long)gone[first_p]);
    if (wrong_mark)
        unexpected("%s: sw_is_deleted() != %d for %zu of %zu deleted labels (first: %llu)", what,
                   tomb, wrong_mark, n, (unsigned long long)gone[first_m]);
}

/* ===================================================================== */
/* Passes, ground truth, statistics                                      */
/* ===================================================================== */

typedef enum { PASS_SEARCH, PASS_EXACT, PASS_POST } pass_kind;

/* One way of answering a query set. */
typedef struct {
    const char *what;      /* for error messages */
    pass_kind kind;
    const sw_index *ix;
    const float *q;
    size_t nq;
    sw_search_params sp;
    size_t kq;             /* results asked of the library (k' for PASS_POST) */
    size_t tile;           /* the query set is run this many times in the pass */
    uint32_t post_thr;     /* PASS_POST: keep labels allowed under this threshold */
} pass_spec;

/*
 * One timed pass: every query once (p->tile times), one at a time.  Writes
 * k labels per query (NO_LABEL where missing; the last tile's, which are
 * the same: the index does not change during a pass) and each query's
 * latency (tile * nq of them); returns the time of the whole pass.
 * `scratch` holds kq labels (PASS_POST).
 */
static uint64_t run_pass(const pass_spec *p, size_t d, size_t k, uint64_t *labels,
                         uint64_t *scratch, uint64_t *lat)
{
    uint64_t t0 = now_ns();
    size_t tile = p->tile ? p->tile : 1;
    for (size_t n = 0; n < tile * p->nq; n++) {
        size_t i = n % p->nq;
        const float *q = p->q + i * d;
        uint64_t *row = labels + i * k;
        size_t nf = 0, j;
        sw_status st;
        uint64_t q0 = now_ns();
        if (p->kind == PASS_POST) {
            size_t w = 0;
            st = sw_search(p->ix, q, d, p->kq, &p->sp, scratch, NULL, &nf);
            for (j = 0; j < nf && w < k; j++)
                if (label_allowed(scratch[j], p->post_thr)) row[w++] = scratch[j];
            nf = w;
        } else if (p->kind == PASS_EXACT) {
            st = sw_search_exact(p->ix, q, d, k, &p->sp, row, NULL, &nf);
        } else {
            st = sw_search(p->ix, q, d, k, &p->sp, row, NULL, &nf);
        }
        lat[n] = now_ns() - q0;
        if (st != SW_OK)
            die(EXIT_RUNTIME, "%s, query %zu: %s", p->what, i, sw_last_error());
        for (j = nf; j < k; j++) row[j] = NO_LABEL;
    }
    return now_ns() - t0;
}

/* Exact top k of every query: labels (NO_LABEL padded), distances, counts. */
static double ground_truth(const sw_index *ix, const float *q, size_t nq, size_t d, size_t k,
                           const sw_search_params *sp, uint64_t *truth, float *dist,
                           size_t *ntruth, const char *what)
{
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < nq; i++) {
        size_t nf = 0;
        sw_status st = sw_search_exact(ix, q + i * d, d, k, sp, truth + i * k, dist + i * k, &nf);
        if (st != SW_OK)
            die(EXIT_RUNTIME, "sw_search_exact (%s), query %zu: %s", what, i, sw_last_error());
        for (size_t j = nf; j < k; j++) {
            truth[i * k + j] = NO_LABEL;
            dist[i * k + j] = INFINITY;
        }
        ntruth[i] = nf;
    }
    return secs(now_ns() - t0);
}

/* recall@k: per query, true labels found / true labels (up to k), averaged
 * over the queries that have any. */
static double recall_of(const uint64_t *got, const uint64_t *truth, const size_t *ntruth,
                        size_t nq, size_t k)
{
    double sum = 0;
    size_t counted = 0;
    for (size_t i = 0; i < nq; i++) {
        size_t hit = 0;
        if (ntruth[i] == 0) continue;
        for (size_t j = 0; j < ntruth[i]; j++)
            for (size_t m = 0; m < k; m++)
                if (got[i * k + m] == truth[i * k + j]) { hit++; break; }
        sum += (double)hit / (double)ntruth[i];
        counted++;
    }
    return counted ? sum / (double)counted : NAN;
}

/*
 * Results that must not be there: a label marked in `gone` (deleted), a
 * label outside [0, nb), or (thr > 0) a label the filter rejects.  Prints
 * the first one of each call, so the report names query and label.
 */
static size_t count_bad(const uint64_t *labels, size_t nq, size_t k, const unsigned char *gone,
                        size_t nb, uint32_t thr, const char *what)
{
    size_t bad = 0;
    for (size_t i = 0; i < nq * k; i++) {
        uint64_t l = labels[i];
        const char *why = NULL;
        if (l == NO_LABEL) continue;
        if (l >= nb) why = "is not a label of the base set";
        else if (gone && gone[l]) why = "was deleted";
        else if (thr && !label_allowed(l, thr)) why = "is rejected by the filter";
        if (why) {
            if (!bad)
                unexpected("%s returned label %llu for query %zu, which %s", what,
                           (unsigned long long)l, i / k, why);
            bad++;
        }
    }
    if (bad > 1) printf("            (%zu such results in that pass)\n", bad);
    return bad;
}

/* The repeats of one contender: pass times, recalls and latencies. */
typedef struct {
    unsigned repeat;
    size_t nq; /* queries timed per pass: the query set times --tile */
    uint64_t *run_ns;
    double *recall;
    uint64_t *lat; /* [repeat][nq] */
    size_t bad;
} series;

typedef struct {
    double recall, qps_med, qps_min, qps_max, lat_mean_us, lat_p99_us;
    size_t bad;
} summary;

static void series_init(series *s, unsigned repeat, size_t nq)
{
    s->repeat = repeat;
    s->nq = nq;
    s->run_ns = xcalloc(repeat, sizeof(uint64_t));
    s->recall = xcalloc(repeat, sizeof(double));
    s->lat = xcalloc((size_t)repeat * (nq ? nq : 1), sizeof(uint64_t));
    s->bad = 0;
}

static void series_free(series *s)
{
    free(s->run_ns);
    free(s->recall);
    free(s->lat);
}

/* Pass r of a series: run it, score it, check it. */
static void measure(series *s, unsigned r, const pass_spec *p, size_t d, size_t k,
                    uint64_t *labels, uint64_t *scratch, const uint64_t *truth,
                    const size_t *ntruth, const unsigned char *gone, size_t nb, uint32_t thr)
{
    s->run_ns[r] = run_pass(p, d, k, labels, scratch, s->lat + (size_t)r * s->nq);
    s->recall[r] = recall_of(labels, truth, ntruth, p->nq, k);
    s->bad += count_bad(labels, p->nq, k, gone, nb, thr, p->what);
}

/* The median pass (the slower middle one for an even count) and the spread. */
static summary summarize(const series *s)
{
    summary out;
    unsigned *order = xmalloc(s->repeat * sizeof(unsigned)), r, med;
    uint64_t *sorted = xmalloc((s->nq ? s->nq : 1) * sizeof(uint64_t)), sum = 0;
    double nq = (double)s->nq;
    for (r = 0; r < s->repeat; r++) order[r] = r;
    for (r = 1; r < s->repeat; r++) { /* slowest first */
        unsigned x = order[r], j = r;
        while (j > 0 && s->run_ns[order[j - 1]] < s->run_ns[x]) { order[j] = order[j - 1]; j--; }
        order[j] = x;
    }
    med = order[(s->repeat - 1) / 2];
    out.recall = s->recall[med];
    out.qps_med = nq / secs(s->run_ns[med]);
    out.qps_min = nq / secs(s->run_ns[order[0]]);
    out.qps_max = nq / secs(s->run_ns[order[s->repeat - 1]]);
    if (s->nq) {
        memcpy(sorted, s->lat + (size_t)med * s->nq, s->nq * sizeof(uint64_t));
        for (size_t i = 0; i < s->nq; i++) sum += sorted[i];
        qsort(sorted, s->nq, sizeof(uint64_t), cmp_u64);
        out.lat_mean_us = (double)sum / nq / 1e3;
        out.lat_p99_us = (double)sorted[(size_t)ceil(0.99 * nq) - 1] / 1e3;
    } else {
        out.lat_mean_us = out.lat_p99_us = NAN;
    }
    out.bad = s->bad;
    free(order);
    free(sorted);
    return out;
}

/*
 * QPS at a recall target over an ef sweep (ascending ef; entry e is
 * s[e * stride]), interpolated linearly between the first point that
 * reaches the target and the one before it, as bench_core.c does.
 * Returns 1 with *qps when interpolated, 2 with *qps when the smallest ef
 * already reaches the target (a lower bound), 0 when it is never reached.
 */
static int qps_at_recall(const summary *s, size_t stride, size_t n_ef, double target,
                         double *qps)
{
    for (size_t e = 0; e < n_ef; e++) {
        const summary *hi = &s[e * stride];
        if (hi->recall >= target) {
            const summary *lo;
            double t;
            if (e == 0) {
                *qps = hi->qps_med;
                return 2;
            }
            lo = &s[(e - 1) * stride];
            t = (target - lo->recall) / (hi->recall - lo->recall);
            *qps = lo->qps_med + t * (hi->qps_med - lo->qps_med);
            return 1;
        }
    }
    return 0;
}

/*
 * The table (and CSV lines `kind`) of QPS at recall 0.90, 0.95, 0.99 for
 * n contenders, contender x's sweep at sum[off[x] + e * stride], with the
 * ratio to contender `ref`.  Equal ef is not equal recall (a tombstoned
 * index searches a larger pool, for one), so this is the fair comparison
 * of speed.  A ratio from a bound carries ">=" or "<=", "?" when both are.
 */
static void print_at_recall(const char *kind, const char *dataset, const char *const *names,
                            const size_t *off, size_t n, size_t ref, const summary *sum,
                            size_t stride, size_t n_ef)
{
    static const double targets[3] = {0.90, 0.95, 0.99};
    double q[16][3];
    int how[16][3];
    size_t x, t;
    if (n > 16) n = 16;
    for (x = 0; x < n; x++)
        for (t = 0; t < 3; t++)
            how[x][t] = qps_at_recall(sum + off[x], stride, n_ef, targets[t], &q[x][t]);
    printf("QPS at equal recall (interpolated over the ef sweep; \">=\": the smallest ef already "
           "reaches it, a lower bound; \"n/a\": not reached):\n");
    printf("%-10s %12s %12s %12s   %10s %10s %10s\n", "", "@0.90", "@0.95", "@0.99", "ratio@0.90",
           "ratio@0.95", "ratio@0.99");
    for (x = 0; x < n; x++) {
        char cell[3][32], rcell[3][32];
        for (t = 0; t < 3; t++) {
            int a = how[x][t], r = how[ref][t];
            if (!a) snprintf(cell[t], sizeof cell[t], "n/a");
            else snprintf(cell[t], sizeof cell[t], "%s%.1f", a == 2 ? ">=" : "", q[x][t]);
            if (x == ref) snprintf(rcell[t], sizeof rcell[t], "%s", "");
            else if (!a || !r) snprintf(rcell[t], sizeof rcell[t], "n/a");
            else
                snprintf(rcell[t], sizeof rcell[t], "%s%.3f%s",
                         a == 2 && r != 2 ? ">=" : (a != 2 && r == 2 ? "<=" : ""),
                         q[x][t] / q[ref][t], a == 2 && r == 2 ? "?" : "");
        }
        printf("%-10s %12s %12s %12s   %10s %10s %10s\n", names[x], cell[0], cell[1], cell[2],
               rcell[0], rcell[1], rcell[2]);
    }
    printf("(ratio: QPS / QPS of %s at the same recall)\n", names[ref]);
    printf("CSV_HEADER,%s,dataset,index,recall_target,qps,qps_bound,ratio,ratio_bound\n", kind);
    for (x = 0; x < n; x++)
        for (t = 0; t < 3; t++) {
            int a = how[x][t], r = how[ref][t];
            printf("CSV,%s,%s,%s,%.2f,", kind, dataset, names[x], targets[t]);
            if (a) printf("%.2f", q[x][t]);
            printf(",%s,", a == 2 ? "lower" : a ? "exact" : "n/a");
            if (a && r) printf("%.4f", q[x][t] / q[ref][t]);
            printf(",%s\n", !a || !r ? "n/a"
                             : a == 2 && r == 2 ? "?"
                             : a == 2           ? ">="
                             : r == 2           ? "<="
                                                : "exact");
        }
}

/* ===================================================================== */
/* Shared setup                                                          */
/* ===================================================================== */

typedef struct {
    args a;
    char *dataset;
    float *base, *query;
    size_t nb, nq, nq_file, d, k;
    bin_header hb, hq;
} bench;

static void load_data(bench *b)
{
    FILE *fb, *fq;
    fb = open_bin("base", b->a.base, 0, &b->hb);
    fq = open_bin("query", b->a.query, 0, &b->hq);
    if (b->hb.type == ELEM_I32 || b->hq.type == ELEM_I32)
        die(EXIT_USAGE, "base and query must be .fbin, .u8bin or .i8bin, not .ibin");
    if (b->hb.d != b->hq.d)
        die(EXIT_USAGE, "dimension mismatch: base %s has d=%zu but query %s has d=%zu",
            b->a.base, b->hb.d, b->a.query, b->hq.d);
    b->nb = b->hb.n;
    if (b->a.nb) {
        if (b->a.nb > b->hb.n)
            die(EXIT_USAGE, "--nb %zu but the base file %s has only %zu rows", b->a.nb,
                b->a.base, b->hb.n);
        b->nb = b->a.nb;
    }
    b->d = b->hb.d;
    b->k = b->a.k;
    b->nq_file = b->hq.n;
    b->nq = b->a.nq;
    if (b->nq > b->hq.n) {
        if (b->a.nq_given)
            die(EXIT_USAGE, "--queries %zu but the query file %s has only %zu rows", b->a.nq,
                b->a.query, b->hq.n);
        b->nq = b->hq.n;
    }
    if (b->k > b->nb)
        die(EXIT_USAGE, "k=%zu is larger than the base set (%zu vectors)", b->k, b->nb);
    if (b->nb > (size_t)INT32_MAX) die(EXIT_USAGE, "base set too large");
    b->base = read_vectors(fb, &b->hb, b->nb);
    fclose(fb);
    b->query = read_vectors(fq, &b->hq, b->nq);
    fclose(fq);
}

static void print_banner(const bench *b, const char *what)
{
    const args *a = &b->a;
    printf("smallworld %s  sw_bench_delete --mode %s  build config \"%s\"  kernels %s\n",
           sw_version(), a->mode_name, SW_BENCH_CONFIG, sw_simd_name());
    if (strcmp(SW_BENCH_CONFIG, "Release") != 0 && strcmp(SW_BENCH_CONFIG, "RelWithDebInfo") != 0)
        printf("WARNING: not a Release build; timings are not representative\n");
    printf("dataset %s: base %zu x %zu (%s%s), %zu queries (%s)\n", b->dataset, b->nb, b->d,
           elem_name(b->hb.type), b->nb < b->hb.n ? ", the first rows only: --nb" : "", b->nq,
           elem_name(b->hq.type));
    printf("M %u  ef_construction %u  k %zu  repeat %u  tile %zu  build/compact threads %zu  "
           "search: 1 thread, sw_search per query\n",
           a->M, a->efc, b->k, a->repeat, a->tile, a->threads);
    printf("%s\n\n", what);
    fflush(stdout);
}

static void print_op_header(void)
{
    printf("%-10s %-40s %9s %10s %10s %10s\n", "index", "operation", "seconds", "mean us",
           "p99 us", "max us");
}

/* Operation rows (build, deletion, ...): printed as a table as they happen
 * and as CSV lines after the search table. */
typedef struct {
    char index[16], op[48];
    size_t count, threads;
    double s, mean_us, p99_us, max_us;
    double tenth_us[10];
} op_row;

typedef struct {
    op_row rows[16];
    size_t n;
} op_table;

static void add_op(op_table *t, const char *index, const char *op_text, const char *op_key,
                   size_t count, size_t threads, double s, const op_stats *per)
{
    op_row *r;
    if (per)
        printf("%-10s %-40s %9.3f %10.1f %10.1f %10.1f\n", index, op_text, s, per->mean_us,
               per->p99_us, per->max_us);
    else
        printf("%-10s %-40s %9.3f %10s %10s %10s\n", index, op_text, s, "-", "-", "-");
    if (t->n == sizeof t->rows / sizeof t->rows[0]) return;
    r = &t->rows[t->n++];
    snprintf(r->index, sizeof r->index, "%s", index);
    snprintf(r->op, sizeof r->op, "%s", op_key);
    r->count = count;
    r->threads = threads;
    r->s = s;
    r->mean_us = per ? per->mean_us : NAN;
    r->p99_us = per ? per->p99_us : NAN;
    r->max_us = per ? per->max_us : NAN;
    for (size_t j = 0; j < 10; j++) r->tenth_us[j] = per ? per->tenth_us[j] : NAN;
}

/* The mean of each tenth of a loop of calls, under its table row. */
static void print_tenths(const op_stats *st)
{
    printf("%-10s   mean us per tenth of the calls, in call order:", "");
    for (size_t t = 0; t < 10; t++) printf(" %.0f", st->tenth_us[t]);
    putchar('\n');
}

static void print_csv_num(double v, const char *fmt)
{
    putchar(',');
    if (!isnan(v)) printf(fmt, v);
}

static void print_op_csv(const char *kind, const bench *b, const op_table *t)
{
    printf("CSV_HEADER,%s,dataset,index,operation,count,threads,seconds,mean_us,p99_us,max_us,"
           "mean_us_tenth1,mean_us_tenth2,mean_us_tenth3,mean_us_tenth4,mean_us_tenth5,"
           "mean_us_tenth6,mean_us_tenth7,mean_us_tenth8,mean_us_tenth9,mean_us_tenth10\n",
           kind);
    for (size_t i = 0; i < t->n; i++) {
        const op_row *r = &t->rows[i];
        printf("CSV,%s,%s,%s,%s,%zu,%zu,%.4f", kind, b->dataset, r->index, r->op, r->count,
               r->threads, r->s);
        print_csv_num(r->mean_us, "%.2f");
        print_csv_num(r->p99_us, "%.2f");
        print_csv_num(r->max_us, "%.2f");
        for (size_t j = 0; j < 10; j++) print_csv_num(r->tenth_us[j], "%.2f");
        putchar('\n');
    }
}

/* ===================================================================== */
/* --mode half                                                           */
/* ===================================================================== */

/* The ef sweep of half and update: for each ef, repeat r searches every
 * index in turn (so noise hits them alike); then a table row per index,
 * against index `fresh`.  sum[e * nix + x] gets the summaries. */
static void sweep(const bench *b, sw_index *const *ix, const char *const *names, size_t nix,
                  size_t fresh, const uint64_t *truth, const size_t *ntruth,
                  const unsigned char *gone, size_t nb, uint64_t *labels, summary *sum)
{
    const args *a = &b->a;
    size_t nq = b->nq, d = b->d, k = b->k, e, x;
    series *ser = xmalloc(nix * sizeof *ser);
    printf("%5s %-10s %10s %9s %11s %11s %11s %9s %9s %9s %5s\n", "ef", "index", "recall@k",
           "d recall", "QPS median", "QPS min", "QPS max", "QPS/fresh", "mean us", "p99 us",
           "bad");
    for (e = 0; e < a->n_ef; e++) {
        for (x = 0; x < nix; x++) series_init(&ser[x], a->repeat, nq * a->tile);
        for (unsigned r = 0; r < a->repeat; r++)
            for (x = 0; x < nix; x++) {
                pass_spec p = {0};
                char what[64];
                snprintf(what, sizeof what, "sw_search on the %s index (ef %u)", names[x],
                         a->efs[e]);
                p.what = what;
                p.kind = PASS_SEARCH;
                p.ix = ix[x];
                p.q = b->query;
                p.nq = nq;
                p.sp = sw_search_params_default();
                p.sp.ef = a->efs[e];
                p.kq = k;
                p.tile = a->tile;
                measure(&ser[x], r, &p, d, k, labels, NULL, truth, ntruth, gone, nb, 0);
            }
        for (x = 0; x < nix; x++) {
            sum[e * nix + x] = summarize(&ser[x]);
            series_free(&ser[x]);
        }
        for (x = 0; x < nix; x++) {
            const summary *s = &sum[e * nix + x], *f = &sum[e * nix + fresh];
            if (x == fresh)
                printf("%5u %-10s %10.4f %9s %11.1f %11.1f %11.1f %9s %9.1f %9.1f %5zu\n",
                       a->efs[e], names[x], s->recall, "", s->qps_med, s->qps_min,
                       s->qps_max, "", s->lat_mean_us, s->lat_p99_us, s->bad);
            else
                printf("%5u %-10s %10.4f %+9.4f %11.1f %11.1f %11.1f %9.3f %9.1f %9.1f %5zu\n",
                       a->efs[e], names[x], s->recall, rdiff(s->recall, f->recall), s->qps_med,
                       s->qps_min, s->qps_max, s->qps_med / f->qps_med, s->lat_mean_us,
                       s->lat_p99_us, s->bad);
        }
        fflush(stdout);
    }
    free(ser);
}

enum { H_FRESH, H_DELETE, H_COMPACT, H_TOMB, H_N };
static const char *const half_names[H_N] = {"fresh", "delete", "compact", "tombstone"};

static void mode_half(bench *b)
{
    const args *a = &b->a;
    size_t nb = b->nb, nq = b->nq, d = b->d, k = b->k, ndel = nb / 2, nsurv = nb - ndel;
    size_t i, j, e, x;
    uint64_t *perm = xmalloc(nb * sizeof(uint64_t)), *surv_labels, *del_labels;
    unsigned char *gone = xcalloc(nb, 1);
    float *surv_vecs;
    uint64_t state = a->seed;
    sw_index *ix[H_N], *built;
    double build_full_s, build_fresh_s, save_s, load_s, gt_s;
    const char *path;
    op_stats del_st, mark_c, mark_t;
    double compact_s;
    uint64_t *truth, *labels;
    float *dist;
    size_t *ntruth, mem[H_N];
    summary *sum;
    op_table ops = {0};
    sw_status st;
    char text[64];

    print_banner(b, "question: delete a random half of the labels; how do sw_delete, "
                    "sw_mark_deleted + sw_compact and tombstones alone compare with an "
                    "index built from the survivors?");
    if (ndel == 0) die(EXIT_USAGE, "the base set has %zu vector; nothing to delete", nb);

    /* The random half: a Fisher-Yates shuffle, the first half deleted in
     * shuffled order. */
    for (i = 0; i < nb; i++) perm[i] = i;
    for (i = nb - 1; i > 0; i--) {
        size_t r = (size_t)(rng_next(&state) % (uint64_t)(i + 1));
        uint64_t t = perm[i];
        perm[i] = perm[r];
        perm[r] = t;
    }
    del_labels = perm;
    for (i = 0; i < ndel; i++) gone[del_labels[i]] = 1;
    surv_labels = xmalloc(nsurv * sizeof(uint64_t));
    surv_vecs = xmalloc(nsurv * d * sizeof(float));
    for (i = 0, x = 0; i < nb; i++)
        if (!gone[i]) {
            surv_labels[x] = i;
            memcpy(surv_vecs + x * d, b->base + i * d, d * sizeof(float));
            x++;
        }
    printf("deleting %zu of %zu labels (seed %llu), keeping %zu\n\n", ndel, nb,
           (unsigned long long)a->seed, nsurv);

    print_op_header();
    /* The full index: built once, saved, loaded once per copy. */
    {
        uint64_t *all = xmalloc(nb * sizeof(uint64_t));
        for (i = 0; i < nb; i++) all[i] = i;
        built = build_index(a, d, all, b->base, nb, &build_full_s);
        free(all);
    }
    snprintf(text, sizeof text, "build %zu (sw_add_batch, %zu thr)", nb, a->threads);
    add_op(&ops, "full", text, "build", nb, a->threads, build_full_s, NULL);
    path = save_tmp(a, built, 0, &save_s);
    sw_free(built);
    add_op(&ops, "full", "sw_save to the temporary file", "save", nb, 1, save_s, NULL);
    ix[H_DELETE] = load_copy(path, &load_s);
    add_op(&ops, "full", "sw_load (one copy)", "load", nb, 1, load_s, NULL);
    ix[H_COMPACT] = load_copy(path, &load_s);
    ix[H_TOMB] = load_copy(path, &load_s);
    remove_tmp_files();
    free(b->base);
    b->base = NULL;

    built = build_index(a, d, surv_labels, surv_vecs, nsurv, &build_fresh_s);
    free(surv_vecs);
    snprintf(text, sizeof text, "build %zu survivors (%zu thr)", nsurv, a->threads);
    add_op(&ops, "fresh", text, "build", nsurv, a->threads, build_fresh_s, NULL);
    path = save_tmp(a, built, 0, &save_s);
    sw_free(built);
    ix[H_FRESH] = load_copy(path, &load_s);
    remove_tmp_files();
    fflush(stdout);

    del_st = time_label_ops(ix[H_DELETE], del_labels, ndel, sw_delete, "sw_delete");
    snprintf(text, sizeof text, "sw_delete x %zu (one by one)", ndel);
    add_op(&ops, "delete", text, "sw_delete", ndel, 1, del_st.total_s, &del_st);
    print_tenths(&del_st);
    fflush(stdout);

    mark_c = time_label_ops(ix[H_COMPACT], del_labels, ndel, sw_mark_deleted,
                            "sw_mark_deleted");
    snprintf(text, sizeof text, "sw_mark_deleted x %zu", ndel);
    add_op(&ops, "compact", text, "sw_mark_deleted", ndel, 1, mark_c.total_s, &mark_c);
    check_counts("compact index after sw_mark_deleted, before sw_compact", ix[H_COMPACT], nsurv,
                 ndel);
    {
        uint64_t t0 = now_ns();
        st = sw_compact(ix[H_COMPACT], a->threads);
        compact_s = secs(now_ns() - t0);
        if (st != SW_OK) die(EXIT_RUNTIME, "sw_compact: %s", sw_last_error());
    }
    snprintf(text, sizeof text, "sw_compact (%zu thr)", a->threads);
    add_op(&ops, "compact", text, "sw_compact", ndel, a->threads, compact_s, NULL);
    snprintf(text, sizeof text, "  total: mark + compact");
    add_op(&ops, "compact", text, "mark+compact", ndel, a->threads, mark_c.total_s + compact_s,
           NULL);

    mark_t = time_label_ops(ix[H_TOMB], del_labels, ndel, sw_mark_deleted, "sw_mark_deleted");
    snprintf(text, sizeof text, "sw_mark_deleted x %zu", ndel);
    add_op(&ops, "tombstone", text, "sw_mark_deleted", ndel, 1, mark_t.total_s, &mark_t);

    check_counts("fresh index", ix[H_FRESH], nsurv, 0);
    check_counts("delete index after sw_delete", ix[H_DELETE], nsurv, 0);
    check_counts("compact index after sw_compact", ix[H_COMPACT], nsurv, 0);
    check_counts("tombstone index", ix[H_TOMB], nsurv, ndel);
    check_gone("delete index", ix[H_DELETE], del_labels, ndel, 0);
    check_gone("compact index", ix[H_COMPACT], del_labels, ndel, 0);
    check_gone("tombstone index", ix[H_TOMB], del_labels, ndel, 1);

    /* Ground truth from the survivors; the others' exact searches must agree. */
    truth = xmalloc(nq * k * sizeof(uint64_t));
    dist = xmalloc(nq * k * sizeof(float));
    ntruth = xmalloc(nq * sizeof(size_t));
    gt_s = ground_truth(ix[H_FRESH], b->query, nq, d, k, NULL, truth, dist, ntruth, "fresh");
    add_op(&ops, "fresh", "ground truth: sw_search_exact, all queries", "ground_truth", nq, 1,
           gt_s, NULL);
    {
        size_t nchk = nq < 100 ? nq : 100;
        uint64_t *l2 = xmalloc(nchk * k * sizeof(uint64_t));
        float *d2 = xmalloc(nchk * k * sizeof(float));
        size_t *n2 = xmalloc(nchk * sizeof(size_t));
        for (x = H_DELETE; x < H_N; x++) {
            size_t differ = 0, first = SIZE_MAX;
            ground_truth(ix[x], b->query, nchk, d, k, NULL, l2, d2, n2, half_names[x]);
            for (i = 0; i < nchk; i++) {
                int same = n2[i] == ntruth[i];
                for (j = 0; same && j < n2[i]; j++)
                    if (d2[i * k + j] != dist[i * k + j]) same = 0;
                if (!same) {
                    differ++;
                    if (first == SIZE_MAX) first = i;
                }
            }
            if (differ)
                unexpected("sw_search_exact on the %s index differs from the fresh index (same "
                           "live labels) on %zu of the first %zu queries (first: query %zu)",
                           half_names[x], differ, nchk, first);
            count_bad(l2, nchk, k, gone, nb, 0, half_names[x]);
        }
        printf("check: sw_search_exact on delete, compact and tombstone gives the fresh index's "
               "distances on the first %zu queries%s\n",
               nchk, g_unexpected ? " (see UNEXPECTED above)" : "");
        free(l2);
        free(d2);
        free(n2);
    }
    printf("\n%-10s %12s %12s %10s %12s\n", "index", "memory MiB", "bytes/live", "live",
           "tombstoned");
    for (x = 0; x < H_N; x++) {
        mem[x] = sw_memory_usage(ix[x]);
        printf("%-10s %12.1f %12.1f %10zu %12zu\n", half_names[x], mib(mem[x]),
               (double)mem[x] / (double)nsurv, sw_count(ix[x]), sw_deleted_count(ix[x]));
    }
    putchar('\n');
    fflush(stdout);

    /* The sweep: for each ef, repeat r runs all four indexes. */
    labels = xmalloc(nq * k * sizeof(uint64_t));
    sum = xmalloc(a->n_ef * H_N * sizeof *sum);
    sweep(b, ix, half_names, H_N, H_FRESH, truth, ntruth, gone, nb, labels, sum);

    putchar('\n');
    {
        static const size_t off[H_N] = {H_FRESH, H_DELETE, H_COMPACT, H_TOMB};
        print_at_recall("half_at_recall", b->dataset, half_names, off, H_N, H_FRESH, sum, H_N,
                        a->n_ef);
        putchar('\n');
    }
    printf("CSV_HEADER,half,dataset,index,ef,recall,recall_diff,qps_median,qps_min,qps_max,"
           "qps_ratio,lat_mean_us,lat_p99_us,mem_bytes,live,tombstoned,bad\n");
    for (e = 0; e < a->n_ef; e++)
        for (x = 0; x < H_N; x++) {
            const summary *s = &sum[e * H_N + x], *f = &sum[e * H_N + H_FRESH];
            printf("CSV,half,%s,%s,%u,%.6f,%.6f,%.2f,%.2f,%.2f,%.4f,%.3f,%.3f,%zu,%zu,%zu,%zu\n",
                   b->dataset, half_names[x], a->efs[e], s->recall, rdiff(s->recall, f->recall),
                   s->qps_med, s->qps_min, s->qps_max, s->qps_med / f->qps_med, s->lat_mean_us,
                   s->lat_p99_us, mem[x], sw_count(ix[x]), sw_deleted_count(ix[x]), s->bad);
        }
    print_op_csv("half_op", b, &ops);

    for (x = 0; x < H_N; x++) sw_free(ix[x]);
    free(perm);
    free(gone);
    free(surv_labels);
    free(truth);
    free(dist);
    free(ntruth);
    free(labels);
    free(sum);
}

/* ===================================================================== */
/* --mode cluster                                                        */
/* ===================================================================== */

static void mode_cluster(bench *b)
{
    const args *a = &b->a;
    size_t nb = b->nb, nq = b->nq, d = b->d, k = b->k, i, e, s, x;
    char *cpath = a->clusters ? NULL : beside(a->base, "base_clusters.i32bin");
    char *qpath = a->query_clusters ? NULL : beside(a->base, "query_clusters.i32bin");
    const char *cfile = a->clusters ? a->clusters : cpath;
    const char *qfile = a->query_clusters ? a->query_clusters : qpath;
    int32_t *bc, *qc;
    size_t ncl = 0, *csize, *cq, chosen, ndel, nset[2] = {0, 0};
    uint64_t *del_labels, *all;
    unsigned char *gone;
    float *qs[2];
    sw_index *ix[3], *built; /* before, after, fresh */
    double build_s, save_s, load_s, gt_s[3][2];
    const char *path;
    op_stats del_st;
    op_table ops = {0};
    uint64_t *truth[3][2], *labels;
    float *dist[3][2];
    size_t *ntruth[3][2];
    static const char *const set_names[2] = {"other", "in"};
    static const char *const set_text[2] = {"queries not in the cluster",
                                            "queries of the deleted cluster"};
    static const char *const phase_names[3] = {"before", "after", "fresh"};
    char text[96];

    bc = read_ids("base cluster", cfile, b->hb.n);
    qc = read_ids("query cluster", qfile, b->nq_file);
    for (i = 0; i < nb; i++)
        if ((size_t)bc[i] + 1 > ncl) ncl = (size_t)bc[i] + 1;
    for (i = 0; i < nq; i++)
        if ((size_t)qc[i] + 1 > ncl) ncl = (size_t)qc[i] + 1;
    csize = xcalloc(ncl, sizeof(size_t));
    cq = xcalloc(ncl, sizeof(size_t));
    for (i = 0; i < nb; i++) csize[bc[i]]++;
    for (i = 0; i < nq; i++) cq[qc[i]]++;
    if (a->cluster >= 0) {
        chosen = (size_t)a->cluster;
        if (chosen >= ncl || csize[chosen] == 0)
            die(EXIT_USAGE, "--cluster %ld: no base row of %s is in that cluster", a->cluster,
                cfile);
    } else {
        /* The cluster with the most queries (ties: more base rows, then the
         * lower id): it gives the in-cluster row the most queries. */
        chosen = 0;
        for (s = 1; s < ncl; s++)
            if (cq[s] > cq[chosen] || (cq[s] == cq[chosen] && csize[s] > csize[chosen]))
                chosen = s;
    }
    ndel = csize[chosen];
    if (ndel >= nb) die(EXIT_USAGE, "cluster %zu holds the whole base set", chosen);

    gone = xcalloc(nb, 1);
    del_labels = xmalloc(ndel * sizeof(uint64_t));
    for (i = 0, x = 0; i < nb; i++)
        if ((size_t)bc[i] == chosen) {
            del_labels[x++] = i;
            gone[i] = 1;
        }
    for (s = 0; s < 2; s++) qs[s] = xmalloc((nq ? nq : 1) * d * sizeof(float));
    for (i = 0; i < nq; i++) {
        s = (size_t)qc[i] == chosen;
        memcpy(qs[s] + nset[s] * d, b->query + i * d, d * sizeof(float));
        nset[s]++;
    }
    {
        char what[1024];
        snprintf(what, sizeof what,
                 "question: delete one whole cluster (sw_delete of each row); how do the "
                 "searches of the other clusters' queries fare, against the index before and "
                 "an index built without the cluster?\ncluster files: %s, %s",
                 cfile, qfile);
        print_banner(b, what);
    }
    printf("cluster %zu of %zu: %zu base rows (%.2f%% of the base set), %zu of the %zu queries%s\n",
           chosen, ncl, ndel, 100.0 * (double)ndel / (double)nb, nset[1], nq,
           a->cluster >= 0 ? " (--cluster)" : " (the cluster with the most queries)");
    printf("measured: %zu %s; %zu %s (few: their QPS is noisy)\n\n", nset[0], set_text[0],
           nset[1], set_text[1]);
    if (nset[0] == 0) die(EXIT_USAGE, "every query is in cluster %zu; nothing to measure", chosen);

    print_op_header();
    all = xmalloc(nb * sizeof(uint64_t));
    for (i = 0; i < nb; i++) all[i] = i;
    built = build_index(a, d, all, b->base, nb, &build_s);
    snprintf(text, sizeof text, "build %zu (sw_add_batch, %zu thr)", nb, a->threads);
    add_op(&ops, "full", text, "build", nb, a->threads, build_s, NULL);
    path = save_tmp(a, built, 0, &save_s);
    sw_free(built);
    ix[0] = load_copy(path, &load_s);
    ix[1] = load_copy(path, &load_s);
    remove_tmp_files();
    add_op(&ops, "full", "sw_save + sw_load (before, after copies)", "save+load", nb, 1,
           save_s + load_s, NULL);
    {
        /* The reference: the survivors, in row order, built afresh. */
        float *sv = xmalloc((nb - ndel) * d * sizeof(float));
        for (i = 0, x = 0; i < nb; i++)
            if (!gone[i]) {
                all[x] = i;
                memcpy(sv + x * d, b->base + i * d, d * sizeof(float));
                x++;
            }
        built = build_index(a, d, all, sv, nb - ndel, &build_s);
        free(sv);
        snprintf(text, sizeof text, "build %zu without the cluster (%zu thr)", nb - ndel,
                 a->threads);
        add_op(&ops, "fresh", text, "build", nb - ndel, a->threads, build_s, NULL);
        path = save_tmp(a, built, 0, &save_s);
        sw_free(built);
        ix[2] = load_copy(path, &load_s);
        remove_tmp_files();
    }
    free(all);
    free(b->base);
    b->base = NULL;

    del_st = time_label_ops(ix[1], del_labels, ndel, sw_delete, "sw_delete");
    snprintf(text, sizeof text, "sw_delete x %zu (cluster %zu)", ndel, chosen);
    add_op(&ops, "after", text, "sw_delete", ndel, 1, del_st.total_s, &del_st);
    print_tenths(&del_st);
    check_counts("index before deletion", ix[0], nb, 0);
    check_counts("index after sw_delete of the cluster", ix[1], nb - ndel, 0);
    check_counts("fresh index without the cluster", ix[2], nb - ndel, 0);
    check_gone("index after sw_delete of the cluster", ix[1], del_labels, ndel, 0);

    for (x = 0; x < 3; x++)
        for (s = 0; s < 2; s++) {
            size_t n = nset[s] ? nset[s] : 1;
            truth[x][s] = xmalloc(n * k * sizeof(uint64_t));
            dist[x][s] = xmalloc(n * k * sizeof(float));
            ntruth[x][s] = xmalloc(n * sizeof(size_t));
            gt_s[x][s] = ground_truth(ix[x], qs[s], nset[s], d, k, NULL, truth[x][s],
                                      dist[x][s], ntruth[x][s], phase_names[x]);
            if (x) count_bad(truth[x][s], nset[s], k, gone, nb, 0, x == 1
                             ? "sw_search_exact after the deletion"
                             : "sw_search_exact on the fresh index");
        }
    for (x = 0; x < 3; x++) {
        snprintf(text, sizeof text, "ground truth: sw_search_exact");
        add_op(&ops, phase_names[x], text, "ground_truth", nq, 1, gt_s[x][0] + gt_s[x][1], NULL);
    }
    {
        /* After the deletion and fresh hold the same live labels: their exact
         * searches must agree, distance for distance. */
        size_t differ = 0, first = SIZE_MAX, first_set = 0;
        for (s = 0; s < 2; s++)
            for (i = 0; i < nset[s]; i++) {
                int same = ntruth[1][s][i] == ntruth[2][s][i];
                for (size_t j = 0; same && j < ntruth[1][s][i]; j++)
                    if (dist[1][s][i * k + j] != dist[2][s][i * k + j]) same = 0;
                if (!same) {
                    differ++;
                    if (first == SIZE_MAX) { first = i; first_set = s; }
                }
            }
        if (differ)
            unexpected("sw_search_exact after the deletion differs from the fresh index (same "
                       "live labels) on %zu queries (first: %s query %zu)", differ,
                       set_names[first_set], first);
        else
            printf("check: sw_search_exact after the deletion gives the fresh index's "
                   "distances on every query\n");
    }
    {
        /* How many of the other queries had a deleted label among their true
         * top k: the queries the deletion could touch directly. */
        size_t touched = 0;
        for (i = 0; i < nset[0]; i++)
            for (size_t j = 0; j < ntruth[0][0][i]; j++)
                if (gone[truth[0][0][i * k + j]]) { touched++; break; }
        printf("%zu of the %zu other queries had a row of cluster %zu among their true top %zu\n",
               touched, nset[0], chosen, k);
    }
    printf("memory: before %.1f MiB, after %.1f MiB (%zu live), fresh %.1f MiB\n\n",
           mib(sw_memory_usage(ix[0])), mib(sw_memory_usage(ix[1])), sw_count(ix[1]),
           mib(sw_memory_usage(ix[2])));
    fflush(stdout);

    /* The sweep: for each ef, repeat r runs all three indexes on both query
     * sets.  Series x = set * 3 + phase. */
    labels = xmalloc((nq ? nq : 1) * k * sizeof(uint64_t));
    printf("%-7s %5s %-7s %10s %9s %11s %11s %11s %9s %9s %9s %5s\n", "queries", "ef", "index",
           "recall@k", "d recall", "QPS median", "QPS min", "QPS max", "QPS ratio", "mean us",
           "p99 us", "bad");
    {
        summary *sum = xmalloc(a->n_ef * 6 * sizeof *sum);
        for (e = 0; e < a->n_ef; e++) {
            series ser[6];
            for (x = 0; x < 6; x++) series_init(&ser[x], a->repeat, nset[x / 3] * a->tile);
            for (unsigned r = 0; r < a->repeat; r++)
                for (x = 0; x < 6; x++) {
                    size_t set = x / 3, ph = x % 3;
                    pass_spec p = {0};
                    char what[96];
                    if (nset[set] == 0) continue;
                    snprintf(what, sizeof what, "sw_search on the %s index (%s queries, ef %u)",
                             phase_names[ph], set_names[set], a->efs[e]);
                    p.what = what;
                    p.kind = PASS_SEARCH;
                    p.ix = ix[ph];
                    p.q = qs[set];
                    p.nq = nset[set];
                    p.sp = sw_search_params_default();
                    p.sp.ef = a->efs[e];
                    p.kq = k;
                    p.tile = a->tile;
                    measure(&ser[x], r, &p, d, k, labels, NULL, truth[ph][set], ntruth[ph][set],
                            ph ? gone : NULL, nb, 0);
                }
            for (x = 0; x < 6; x++) {
                size_t set = x / 3, ph = x % 3;
                summary *sm = &sum[e * 6 + x], *bf = &sum[e * 6 + set * 3];
                if (nset[set] == 0) { series_free(&ser[x]); continue; }
                *sm = summarize(&ser[x]);
                series_free(&ser[x]);
                if (!ph)
                    printf("%-7s %5u %-7s %10.4f %9s %11.1f %11.1f %11.1f %9s %9.1f %9.1f %5zu\n",
                           set_names[set], a->efs[e], phase_names[ph], sm->recall, "",
                           sm->qps_med, sm->qps_min, sm->qps_max, "", sm->lat_mean_us,
                           sm->lat_p99_us, sm->bad);
                else
                    printf("%-7s %5u %-7s %10.4f %+9.4f %11.1f %11.1f %11.1f %9.3f %9.1f %9.1f "
                           "%5zu\n",
                           set_names[set], a->efs[e], phase_names[ph], sm->recall,
                           rdiff(sm->recall, bf->recall), sm->qps_med, sm->qps_min, sm->qps_max,
                           sm->qps_med / bf->qps_med, sm->lat_mean_us, sm->lat_p99_us, sm->bad);
            }
            fflush(stdout);
        }
        printf("(queries: \"other\" = %s, \"in\" = %s; index: \"before\" and \"after\" the "
               "deletion, \"fresh\" = built without the cluster; d recall and QPS ratio: "
               "against before)\n\n", set_text[0], set_text[1]);
        for (s = 0; s < 2; s++) {
            static const size_t off[2][3] = {{0, 1, 2}, {3, 4, 5}};
            if (nset[s] == 0) continue;
            printf("%s (%zu): ", set_text[s], nset[s]);
            print_at_recall(s ? "cluster_in_at_recall" : "cluster_at_recall", b->dataset,
                            phase_names, off[s], 3, 0, sum, 6, a->n_ef);
            putchar('\n');
        }
        printf("CSV_HEADER,cluster,dataset,cluster,deleted_rows,queries,n_queries,index,ef,"
               "recall,recall_diff,qps_median,qps_min,qps_max,qps_ratio,lat_mean_us,lat_p99_us,"
               "bad\n");
        for (x = 0; x < 6; x++)
            for (e = 0; e < a->n_ef; e++) {
                size_t set = x / 3, ph = x % 3;
                const summary *sm = &sum[e * 6 + x], *bf = &sum[e * 6 + set * 3];
                if (nset[set] == 0) continue;
                printf("CSV,cluster,%s,%zu,%zu,%s,%zu,%s,%u,%.6f,%.6f,%.2f,%.2f,%.2f,%.4f,%.3f,"
                       "%.3f,%zu\n",
                       b->dataset, chosen, ndel, set_names[set], nset[set], phase_names[ph],
                       a->efs[e], sm->recall, rdiff(sm->recall, bf->recall), sm->qps_med,
                       sm->qps_min, sm->qps_max, sm->qps_med / bf->qps_med, sm->lat_mean_us,
                       sm->lat_p99_us, sm->bad);
            }
        free(sum);
    }
    print_op_csv("cluster_op", b, &ops);

    for (x = 0; x < 3; x++) {
        sw_free(ix[x]);
        for (s = 0; s < 2; s++) {
            free(truth[x][s]);
            free(dist[x][s]);
            free(ntruth[x][s]);
        }
    }
    for (s = 0; s < 2; s++) free(qs[s]);
    free(labels);
    free(gone);
    free(del_labels);
    free(csize);
    free(cq);
    free(bc);
    free(qc);
    free(cpath);
    free(qpath);
}

/* ===================================================================== */
/* --mode filter                                                         */
/* ===================================================================== */

enum { F_ALLOW, F_CALLBACK, F_POST, F_EXACT, F_N };
static const char *const filter_names[F_N] = {"allow-list", "callback", "post-filter", "exact"};

static void mode_filter(bench *b)
{
    const args *a = &b->a;
    size_t nb = b->nb, nq = b->nq, d = b->d, k = b->k, i, e, si, m;
    sw_index *ix;
    double build_s;
    uint64_t *all, *truth, *labels, *scratch;
    float *dist;
    size_t *ntruth;
    size_t n_rows = 0;
    struct frow {
        uint32_t thr;
        size_t n_allowed;
        uint32_t ef, ef_used;
        size_t kq;
        int method;
        summary s;
        double vs_post, vs_exact;
    } *rows;

    print_banner(b, "question: filtered search at several selectivities: the allow-list and the "
                    "callback against post-filtering and an exact scan of the allowed set");
    all = xmalloc(nb * sizeof(uint64_t));
    for (i = 0; i < nb; i++) all[i] = i;
    ix = build_index(a, d, all, b->base, nb, &build_s);
    free(b->base);
    b->base = NULL;
    printf("build: %zu vectors, %.3f s on %zu thread%s; memory %.1f MiB\n\n", nb, build_s,
           a->threads, a->threads == 1 ? "" : "s", mib(sw_memory_usage(ix)));
    fflush(stdout);

    truth = xmalloc(nq * k * sizeof(uint64_t));
    dist = xmalloc(nq * k * sizeof(float));
    ntruth = xmalloc(nq * sizeof(size_t));
    labels = xmalloc(nq * k * sizeof(uint64_t));
    rows = xmalloc(a->n_sel * (a->n_ef * 3 + 1) * sizeof *rows);

    for (si = 0; si < a->n_sel; si++) {
        uint32_t thr = a->sels[si];
        uint64_t *allow = xmalloc(nb * sizeof(uint64_t));
        size_t n_allow = 0, kq, n_post = 0;
        uint32_t *post_efs = xmalloc(a->n_ef * sizeof(uint32_t));
        size_t *post_of = xmalloc(a->n_ef * sizeof(size_t));
        series *ser_ef, *ser_post, ser_exact;
        summary *sum_ef, *sum_post, sum_exact;
        sw_search_params gt_sp = sw_search_params_default();
        double gt_s;

        for (i = 0; i < nb; i++)
            if (label_allowed(all[i], thr)) allow[n_allow++] = all[i];
        /* k' = ceil(k / s) * 2 with s = thr / 1000, at least k. */
        kq = (k * 1000 + thr - 1) / thr * 2;
        if (kq < k) kq = k;
        if (kq > SW_MAX_EF) kq = SW_MAX_EF;
        /* The post-filter's effective ef per list ef; equal ones run once. */
        for (e = 0; e < a->n_ef; e++) {
            uint32_t pe = a->efs[e] > kq ? a->efs[e] : (uint32_t)kq;
            size_t f;
            for (f = 0; f < n_post; f++)
                if (post_efs[f] == pe) break;
            if (f == n_post) post_efs[n_post++] = pe;
            post_of[e] = f;
        }

        gt_sp.filter = filter_callback;
        gt_sp.filter_ctx = &thr;
        gt_s = ground_truth(ix, b->query, nq, d, k, &gt_sp, truth, dist, ntruth,
                            "callback filter");
        {
            size_t shortq = 0;
            for (i = 0; i < nq; i++) shortq += ntruth[i] < k;
            printf("selectivity %.1f%% (hash %% 1000 < %u): %zu of %zu labels allowed (%.2f%%); "
                   "post-filter k' = %zu; ground truth (sw_search_exact + callback) %.2f s\n",
                   thr / 10.0, thr, n_allow, nb, 100.0 * (double)n_allow / (double)nb, kq, gt_s);
            if (shortq)
                printf("  (%zu queries have fewer than k allowed labels in the index)\n", shortq);
        }

        ser_ef = xmalloc(a->n_ef * 2 * sizeof *ser_ef);
        ser_post = xmalloc(n_post * sizeof *ser_post);
        sum_ef = xmalloc(a->n_ef * 2 * sizeof *sum_ef);
        sum_post = xmalloc(n_post * sizeof *sum_post);
        for (e = 0; e < a->n_ef * 2; e++) series_init(&ser_ef[e], a->repeat, nq * a->tile);
        for (e = 0; e < n_post; e++) series_init(&ser_post[e], a->repeat, nq * a->tile);
        series_init(&ser_exact, a->repeat, nq * a->tile);
        scratch = xmalloc(kq * sizeof(uint64_t));

        /* Repeat r runs every method at every ef, then the exact scan. */
        for (unsigned r = 0; r < a->repeat; r++) {
            for (e = 0; e < a->n_ef; e++)
                for (m = 0; m < 2; m++) {
                    pass_spec p = {0};
                    char what[96];
                    snprintf(what, sizeof what, "sw_search with %s (threshold %u, ef %u)",
                             m ? "a filter callback" : "an allow-list", thr, a->efs[e]);
                    p.what = what;
                    p.kind = PASS_SEARCH;
                    p.ix = ix;
                    p.q = b->query;
                    p.nq = nq;
                    p.sp = sw_search_params_default();
                    p.sp.ef = a->efs[e];
                    if (m) {
                        p.sp.filter = filter_callback;
                        p.sp.filter_ctx = &thr;
                    } else {
                        p.sp.allow = allow;
                        p.sp.n_allow = n_allow;
                    }
                    p.kq = k;
                    p.tile = a->tile;
                    measure(&ser_ef[e * 2 + m], r, &p, d, k, labels, NULL, truth, ntruth, NULL,
                            nb, thr);
                }
            for (e = 0; e < n_post; e++) {
                pass_spec p = {0};
                char what[96];
                snprintf(what, sizeof what, "post-filter sw_search (k %zu, ef %u)", kq,
                         post_efs[e]);
                p.what = what;
                p.kind = PASS_POST;
                p.ix = ix;
                p.q = b->query;
                p.nq = nq;
                p.sp = sw_search_params_default();
                p.sp.ef = post_efs[e];
                p.kq = kq;
                p.tile = a->tile;
                p.post_thr = thr;
                measure(&ser_post[e], r, &p, d, k, labels, scratch, truth, ntruth, NULL, nb,
                        thr);
            }
            {
                pass_spec p = {0};
                char what[96];
                snprintf(what, sizeof what, "sw_search_exact with an allow-list (threshold %u)",
                         thr);
                p.what = what;
                p.kind = PASS_EXACT;
                p.ix = ix;
                p.q = b->query;
                p.nq = nq;
                p.sp = sw_search_params_default();
                p.sp.allow = allow;
                p.sp.n_allow = n_allow;
                p.kq = k;
                p.tile = a->tile;
                measure(&ser_exact, r, &p, d, k, labels, NULL, truth, ntruth, NULL, nb, thr);
            }
        }
        for (e = 0; e < a->n_ef * 2; e++) sum_ef[e] = summarize(&ser_ef[e]);
        for (e = 0; e < n_post; e++) sum_post[e] = summarize(&ser_post[e]);
        sum_exact = summarize(&ser_exact);
        if (sum_exact.recall < 0.999)
            printf("  note: the exact scan with the allow-list scores %.4f against the exact "
                   "scan with the callback (ties in distance can do this on integer data)\n",
                   sum_exact.recall);

        printf("%5s %-12s %7s %10s %11s %11s %11s %9s %9s %9s %9s %5s\n", "ef", "method",
               "ef used", "recall@k", "QPS median", "QPS min", "QPS max", "vs post",
               "vs exact", "mean us", "p99 us", "bad");
        for (e = 0; e < a->n_ef; e++) {
            const summary *post = &sum_post[post_of[e]];
            for (m = 0; m < 3; m++) {
                const summary *s = m < 2 ? &sum_ef[e * 2 + m] : post;
                struct frow *row = &rows[n_rows++];
                row->thr = thr;
                row->n_allowed = n_allow;
                row->ef = a->efs[e];
                row->ef_used = m < 2 ? a->efs[e] : post_efs[post_of[e]];
                row->kq = m < 2 ? k : kq;
                row->method = (int)m;
                row->s = *s;
                row->vs_post = m < 2 ? s->qps_med / post->qps_med : NAN;
                row->vs_exact = m < 2 ? s->qps_med / sum_exact.qps_med : NAN;
                if (m < 2)
                    printf("%5u %-12s %7u %10.4f %11.1f %11.1f %11.1f %9.3f %9.3f %9.1f %9.1f "
                           "%5zu\n",
                           row->ef, filter_names[m], row->ef_used, s->recall, s->qps_med,
                           s->qps_min, s->qps_max, row->vs_post, row->vs_exact, s->lat_mean_us,
                           s->lat_p99_us, s->bad);
                else
                    printf("%5u %-12s %7u %10.4f %11.1f %11.1f %11.1f %9s %9s %9.1f %9.1f "
                           "%5zu\n",
                           row->ef, filter_names[m], row->ef_used, s->recall, s->qps_med,
                           s->qps_min, s->qps_max, "", "", s->lat_mean_us, s->lat_p99_us,
                           s->bad);
            }
        }
        {
            struct frow *row = &rows[n_rows++];
            row->thr = thr;
            row->n_allowed = n_allow;
            row->ef = 0;
            row->ef_used = 0;
            row->kq = k;
            row->method = F_EXACT;
            row->s = sum_exact;
            row->vs_post = row->vs_exact = NAN;
            printf("%5s %-12s %7s %10.4f %11.1f %11.1f %11.1f %9s %9s %9.1f %9.1f %5zu\n", "-",
                   filter_names[F_EXACT], "-", sum_exact.recall, sum_exact.qps_med,
                   sum_exact.qps_min, sum_exact.qps_max, "", "", sum_exact.lat_mean_us,
                   sum_exact.lat_p99_us, sum_exact.bad);
        }
        if (n_post < a->n_ef)
            printf("(post-filter: ef used = max(ef, k'); equal calls are run once and shown for "
                   "each ef)\n");
        printf("\n");
        fflush(stdout);

        for (e = 0; e < a->n_ef * 2; e++) series_free(&ser_ef[e]);
        for (e = 0; e < n_post; e++) series_free(&ser_post[e]);
        series_free(&ser_exact);
        free(ser_ef);
        free(ser_post);
        free(sum_ef);
        free(sum_post);
        free(scratch);
        free(allow);
        free(post_efs);
        free(post_of);
    }

    printf("(vs post, vs exact: QPS of the method / QPS of post-filtering at the same ef, "
           "/ QPS of the exact scan of the allowed set)\n\n");
    printf("CSV_HEADER,filter,dataset,sel_permille,allowed,allowed_frac,ef,method,ef_used,"
           "k_asked,recall,qps_median,qps_min,qps_max,qps_vs_post,qps_vs_exact,lat_mean_us,"
           "lat_p99_us,bad,build_s\n");
    for (i = 0; i < n_rows; i++) {
        const struct frow *r = &rows[i];
        printf("CSV,filter,%s,%u,%zu,%.6f,", b->dataset, r->thr, r->n_allowed,
               (double)r->n_allowed / (double)nb);
        if (r->method != F_EXACT) printf("%u", r->ef);
        printf(",%s,", filter_names[r->method]);
        if (r->method != F_EXACT) printf("%u", r->ef_used);
        printf(",%zu,%.6f,%.2f,%.2f,%.2f", r->kq, r->s.recall, r->s.qps_med, r->s.qps_min,
               r->s.qps_max);
        print_csv_num(r->vs_post, "%.4f");
        print_csv_num(r->vs_exact, "%.4f");
        printf(",%.3f,%.3f,%zu,%.4f\n", r->s.lat_mean_us, r->s.lat_p99_us, r->s.bad, build_s);
    }

    sw_free(ix);
    free(all);
    free(truth);
    free(dist);
    free(ntruth);
    free(labels);
    free(rows);
}

/* ===================================================================== */
/* --mode update                                                         */
/* ===================================================================== */

enum { U_FRESH, U_UPDATE, U_N };
static const char *const update_names[U_N] = {"fresh", "update"};

static void mode_update(bench *b)
{
    const args *a = &b->a;
    size_t n = b->nb / 2, nq = b->nq, d = b->d, k = b->k, nup = n / 2;
    size_t i, e, x;
    uint64_t *perm = xmalloc((n ? n : 1) * sizeof(uint64_t)), *all, *labels, *truth;
    unsigned char *chosen = xcalloc(n ? n : 1, 1);
    float *final_vecs, *dist;
    uint64_t state = a->seed, *lat;
    sw_index *ix[U_N];
    double build_s, fresh_s, gt_s;
    size_t *ntruth;
    summary *sum;

    print_banner(b, "question: replace the vectors of a random half of the labels with "
                    "sw_add; is the graph as good as one built from the final vectors?");
    if (nup == 0) die(EXIT_USAGE, "the base set has %zu rows; update needs at least 4", b->nb);
    for (i = 0; i < n; i++) perm[i] = i;
    for (i = n - 1; i > 0; i--) {
        size_t r = (size_t)(rng_next(&state) % (uint64_t)(i + 1));
        uint64_t t = perm[i];
        perm[i] = perm[r];
        perm[r] = t;
    }
    for (i = 0; i < nup; i++) chosen[perm[i]] = 1;
    all = xmalloc(n * sizeof(uint64_t));
    final_vecs = xmalloc(n * d * sizeof(float));
    for (i = 0; i < n; i++) {
        all[i] = i;
        memcpy(final_vecs + i * d, b->base + (chosen[i] ? n + i : i) * d, d * sizeof(float));
    }
    printf("index of %zu labels (rows 0..%zu); updating %zu of them to rows %zu.. (seed %llu)\n\n",
           n, n - 1, nup, n, (unsigned long long)a->seed);

    ix[U_UPDATE] = build_index(a, d, all, b->base, n, &build_s);
    ix[U_FRESH] = build_index(a, d, all, final_vecs, n, &fresh_s);
    printf("build %zu (sw_add_batch, %zu thr): %.2f s, %.1f us per insert per thread\n", n,
           a->threads, build_s, build_s * 1e6 * (double)a->threads / (double)n);
    printf("build fresh from the final vectors: %.2f s\n", fresh_s);

    lat = xmalloc(nup * sizeof(uint64_t));
    {
        uint64_t t0 = now_ns(), tot;
        for (i = 0; i < nup; i++) {
            uint64_t L = perm[i], q0 = now_ns();
            sw_status st = sw_add(ix[U_UPDATE], L, b->base + (n + L) * d, d);
            lat[i] = now_ns() - q0;
            if (st != SW_OK) die(EXIT_RUNTIME, "sw_add (update of %llu): %s",
                                 (unsigned long long)L, sw_last_error());
        }
        tot = now_ns() - t0;
        qsort(lat, nup, sizeof *lat, cmp_u64);
        printf("sw_add x %zu updates (one by one, 1 thr): %.2f s, mean %.1f us, p99 %.1f us\n",
               nup, secs(tot), (double)tot / (double)nup / 1e3,
               (double)lat[(size_t)ceil(0.99 * (double)nup) - 1] / 1e3);
        printf("CSV_HEADER,update_op,dataset,n,updates,build_s,build_threads,update_s,"
               "update_mean_us,update_p99_us\n");
        printf("CSV,update_op,%s,%zu,%zu,%.4f,%zu,%.4f,%.3f,%.3f\n", b->dataset, n, nup, build_s,
               a->threads, secs(tot), (double)tot / (double)nup / 1e3,
               (double)lat[(size_t)ceil(0.99 * (double)nup) - 1] / 1e3);
    }
    free(lat);
    check_counts("updated index", ix[U_UPDATE], n, 0);

    truth = xmalloc(nq * k * sizeof(uint64_t));
    dist = xmalloc(nq * k * sizeof(float));
    ntruth = xmalloc(nq * sizeof(size_t));
    gt_s = ground_truth(ix[U_FRESH], b->query, nq, d, k, NULL, truth, dist, ntruth, "fresh");
    printf("ground truth (sw_search_exact on the fresh index): %.2f s\n\n", gt_s);

    labels = xmalloc(nq * k * sizeof(uint64_t));
    sum = xmalloc(a->n_ef * U_N * sizeof *sum);
    sweep(b, ix, update_names, U_N, U_FRESH, truth, ntruth, NULL, n, labels, sum);
    printf("CSV_HEADER,update,dataset,index,ef,recall,recall_diff,qps_median,qps_min,qps_max,"
           "qps_ratio\n");
    for (e = 0; e < a->n_ef; e++)
        for (x = 0; x < U_N; x++) {
            const summary *s = &sum[e * U_N + x], *f = &sum[e * U_N + U_FRESH];
            printf("CSV,update,%s,%s,%u,%.6f,%.6f,%.2f,%.2f,%.2f,%.4f\n", b->dataset,
                   update_names[x], a->efs[e], s->recall, rdiff(s->recall, f->recall), s->qps_med,
                   s->qps_min, s->qps_max, s->qps_med / f->qps_med);
        }
    for (x = 0; x < U_N; x++) sw_free(ix[x]);
    free(perm);
    free(chosen);
    free(all);
    free(final_vecs);
    free(truth);
    free(dist);
    free(ntruth);
    free(labels);
    free(sum);
}

/* ===================================================================== */
/* Main                                                                  */
/* ===================================================================== */

int main(int argc, char **argv)
{
    bench b;
    uint64_t t0;
    memset(&b, 0, sizeof b);
    parse_args(argc, argv, &b.a);
    atexit(remove_tmp_files);
    b.dataset = dataset_name(b.a.name, b.a.base);
    load_data(&b);
    t0 = now_ns();
    switch (b.a.mode) {
    case MODE_HALF: mode_half(&b); break;
    case MODE_CLUSTER: mode_cluster(&b); break;
    case MODE_FILTER: mode_filter(&b); break;
    case MODE_UPDATE: mode_update(&b); break;
    }
    printf("\nwall time %.1f s (after loading the data)\n", secs(now_ns() - t0));
    if (g_unexpected)
        printf("UNEXPECTED library results: %zu (see the lines marked UNEXPECTED above)\n",
               g_unexpected);
    free(b.base);
    free(b.query);
    free(b.dataset);
    free(b.a.efs);
    free(b.a.sels);
    return g_unexpected ? EXIT_RUNTIME : 0;
}
