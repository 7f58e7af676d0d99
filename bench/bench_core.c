/*
 * bench_core.c — sw_bench, the baseline speed/recall benchmark of smallworld.
 *
 * What it measures, and why it is measured this way.
 *
 * The number that matters for an approximate index is not "QPS" or "recall"
 * alone but the curve between them: any index is fast at recall 0.5.  So the
 * program builds one index, then sweeps the search ef and reports, for each
 * ef, recall@k against a precomputed ground truth and the query throughput.
 * From the sweep it reads off QPS at three fixed recall targets (0.90, 0.95,
 * 0.99) by linear interpolation between the two sweep points that bracket
 * the target.  Those three numbers are what bench/run_core.sh puts side by
 * side with hnswlib, because two libraries' sweeps never land on the same
 * recall values and comparing "ef 64 vs ef 64" compares nothing.
 *
 * Choices, each with its reason:
 *
 *   - One thread by default, both for building and searching: one core
 *     measures the algorithm and the kernels, not the thread pool.
 *     --threads N builds on N threads and --search-threads T1,T2,... sweeps
 *     the search once per thread count on the same index, which is how the
 *     multi-threaded comparison with hnswlib (bench/run_threads.sh) gets the
 *     1 -> N scaling at equal ef without building twice.
 *   - The build is one sw_add_batch() call over the whole base set, labels
 *     = row numbers, on --threads threads.  On one thread that call runs on
 *     the caller and adds the rows in order, the same graph as a loop of
 *     sw_add; its up-front checks (finite values, distinct labels) are part
 *     of the call and so of build_s, as hnswlib's add_items() does its own
 *     checks inside its timing.
 *   - Search has two modes (--search-api).  "single", the default when the
 *     only search thread count is 1: queries are run one at a time through
 *     sw_search(), the call an application makes.  Each query is timed with
 *     its own pair of clock_gettime(CLOCK_MONOTONIC) reads (about 20 ns
 *     each on Linux with the vDSO, under 1% of even the cheapest query
 *     here), and the whole pass is timed separately; QPS comes from the
 *     whole pass.  "batch", the default as soon as any search thread count
 *     is above 1: each pass is ONE sw_search_batch() of all queries on T
 *     threads (T = 1 included, so a 1 -> N comparison uses one mode), QPS =
 *     queries / pass time, and per-query latencies are not observable, as
 *     for hnswlib's batch knn_query.
 *   - With several search thread counts the passes are interleaved: for
 *     each ef, repeat r runs every thread count before repeat r+1, so a
 *     burst of load on a shared machine hits all of them alike and the
 *     ratio between thread counts is not skewed by when each was measured.
 *   - Every ef is run --repeat times and the median run is reported, with
 *     the min-max spread beside it, because one run on a shared machine is
 *     an anecdote.  Mean and p99 latency come from the median run, so the
 *     latency columns and the QPS column describe the same pass.  With an
 *     even --repeat the median is the lower middle run (the slower of the
 *     two middle ones), again so that it is one real run.
 *   - There is no separate warm-up pass: the first repeat of the first ef
 *     is the cold one, and the median discards it.
 *   - Recall is computed after the timed loop, from the result ids kept
 *     during it, so its cost never enters the timing.  recall@k is the
 *     fraction of the true top-k ids (the first k columns of the ground
 *     truth) found among the k returned, averaged over queries.  Ties in
 *     the true distances can make this a little pessimistic on integer data
 *     sets; both libraries are scored the same way.
 *   - Data files use the big-ann-benchmarks layout (int32 n, int32 d, then
 *     row-major data; the element type comes from the extension) and are
 *     converted to float once, at load: smallworld's API takes floats, and
 *     the Python harness hands hnswlib the same float32 copy.  Every header
 *     is checked against the file size and every cross-file dimension is
 *     checked before any work, with one line on stderr and exit code 2,
 *     because a benchmark that runs on a truncated file reports nonsense
 *     that looks plausible.  Ground truth may also be in the combined
 *     big-ann "gt" layout (ids followed by distances); the ids are used.
 *   - The ef list is sorted and de-duplicated so the sweep is monotone in
 *     ef, which is what the interpolation walks.  Recall is not guaranteed
 *     to be monotone in ef; the interpolation takes the first sweep point
 *     that reaches the target and the point before it.  If the smallest ef
 *     already reaches the target, the QPS there is only a lower bound and
 *     is printed as ">=".
 *
 * Exit codes: 0 success, 2 bad command line or input files, 1 a library or
 * system failure while running.
 *
 * Only smallworld.h is included: the benchmark is a user of the library
 * like any other, and if it needed more the header would be missing an API.
 */
#define _POSIX_C_SOURCE 200809L

#include "smallworld.h"

#define BENCH_NAME "sw_bench"
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

/* ===================================================================== */
/* Command line                                                          */
/* ===================================================================== */

typedef struct {
    const char *base, *query, *gt, *csv, *name;
    uint32_t M, efc;
    size_t k, nq;
    size_t tile; /* each pass runs the query set this many times */
    uint32_t *efs;
    size_t n_ef;
    unsigned repeat;
    sw_metric metric;
    const char *metric_name;
    size_t threads;   /* build threads, resolved (never 0) */
    size_t *sthreads; /* search thread counts, resolved, in the order given */
    size_t n_sthreads;
    int batch;        /* search through sw_search_batch */
} args;

static void usage(FILE *to)
{
    fputs("usage: sw_bench --base FILE --query FILE --gt FILE [--M 16] [--efc 200] [--k 10]\n"
          "                [--ef 10,16,24,32,48,64,96,128,192,256,384,512] [--repeat 3]\n"
          "                [--metric l2|ip|cosine|l1] [--csv OUT.csv] [--nq N] [--tile R] [--name DATASET]\n"
          "                [--threads 1] [--search-threads T1,T2,...] [--search-api single|batch]\n"
          "Files: big-ann-benchmarks layout (int32 n, int32 d, row-major data); element type\n"
          "from the extension: .fbin float32, .u8bin uint8, .i8bin int8, .ibin int32.\n"
          "--gt is .ibin ids, at least k per query row.  --name sets the dataset column of\n"
          "the CSV (default: the base file's directory name if the file is base.*).\n"
          "--threads N builds with sw_add_batch on N threads (0 = all online CPUs).\n"
          "--search-threads sweeps the search once per thread count on the one index\n"
          "(default: the --threads value).  --search-api single runs sw_search per query\n"
          "(one thread only; the default when the only search thread count is 1), batch\n"
          "one sw_search_batch of all queries per pass (the default otherwise).\n",
          to);
}

static void parse_ef_list(args *a, const char *s)
{
    const char *p = s;
    size_t cap = 16, i, w;
    a->efs = xmalloc(cap * sizeof(uint32_t));
    a->n_ef = 0;
    for (;;) {
        char item[32];
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= sizeof item)
            die(EXIT_USAGE, "--ef expects a comma-separated list of integers, got \"%s\"", s);
        memcpy(item, p, len);
        item[len] = '\0';
        if (a->n_ef == cap) {
            uint32_t *grown;
            cap *= 2;
            grown = realloc(a->efs, cap * sizeof(uint32_t));
            if (!grown) die(EXIT_RUNTIME, "out of memory");
            a->efs = grown;
        }
        a->efs[a->n_ef++] = (uint32_t)parse_ulong("--ef", item, 1, SW_MAX_EF);
        if (!comma) break;
        p = comma + 1;
    }
    qsort(a->efs, a->n_ef, sizeof(uint32_t), cmp_u32);
    for (i = 1, w = 1; i < a->n_ef; i++)
        if (a->efs[i] != a->efs[w - 1]) a->efs[w++] = a->efs[i];
    a->n_ef = w;
}

static void parse_thread_list(args *a, const char *s)
{
    const char *p = s;
    size_t cap = 8, i;
    free(a->sthreads);
    a->sthreads = xmalloc(cap * sizeof(size_t));
    a->n_sthreads = 0;
    for (;;) {
        char item[32];
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p), t, dup = 0;
        if (len == 0 || len >= sizeof item)
            die(EXIT_USAGE, "--search-threads expects a comma-separated list of integers, got \"%s\"",
                s);
        memcpy(item, p, len);
        item[len] = '\0';
        t = resolve_threads((size_t)parse_ulong("--search-threads", item, 0, SW_MAX_THREADS));
        for (i = 0; i < a->n_sthreads; i++)
            if (a->sthreads[i] == t) dup = 1;
        if (!dup) {
            if (a->n_sthreads == cap) {
                size_t *grown;
                cap *= 2;
                grown = realloc(a->sthreads, cap * sizeof(size_t));
                if (!grown) die(EXIT_RUNTIME, "out of memory");
                a->sthreads = grown;
            }
            a->sthreads[a->n_sthreads++] = t;
        }
        if (!comma) break;
        p = comma + 1;
    }
}

static void parse_args(int argc, char **argv, args *a)
{
    const char *search_threads = NULL, *search_api = NULL;
    int i;
    memset(a, 0, sizeof *a);
    a->M = 16;
    a->efc = 200;
    a->k = 10;
    a->repeat = 3;
    a->metric = SW_METRIC_L2;
    a->metric_name = "l2";
    a->threads = 1;
    parse_ef_list(a, "10,16,24,32,48,64,96,128,192,256,384,512");

    for (i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v;
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
        if (!strcmp(o, "--base")) a->base = v;
        else if (!strcmp(o, "--query")) a->query = v;
        else if (!strcmp(o, "--gt")) a->gt = v;
        else if (!strcmp(o, "--csv")) a->csv = v;
        else if (!strcmp(o, "--name")) a->name = v;
        else if (!strcmp(o, "--M")) a->M = (uint32_t)parse_ulong(o, v, SW_MIN_M, SW_MAX_M);
        else if (!strcmp(o, "--efc")) a->efc = (uint32_t)parse_ulong(o, v, 1, SW_MAX_EF);
        else if (!strcmp(o, "--k")) a->k = (size_t)parse_ulong(o, v, 1, 100000);
        else if (!strcmp(o, "--nq")) a->nq = (size_t)parse_ulong(o, v, 1, (unsigned long)INT32_MAX);
        else if (!strcmp(o, "--tile")) a->tile = (size_t)parse_ulong(o, v, 1, 1000);
        else if (!strcmp(o, "--repeat")) a->repeat = (unsigned)parse_ulong(o, v, 1, 1000);
        else if (!strcmp(o, "--ef")) { free(a->efs); parse_ef_list(a, v); }
        else if (!strcmp(o, "--threads"))
            a->threads = resolve_threads((size_t)parse_ulong(o, v, 0, SW_MAX_THREADS));
        else if (!strcmp(o, "--search-threads")) search_threads = v;
        else if (!strcmp(o, "--search-api")) {
            if (strcmp(v, "single") != 0 && strcmp(v, "batch") != 0)
                die(EXIT_USAGE, "--search-api must be single or batch, got \"%s\"", v);
            search_api = v;
        }
        else if (!strcmp(o, "--metric")) {
            a->metric_name = v;
            if (!strcmp(v, "l2")) a->metric = SW_METRIC_L2;
            else if (!strcmp(v, "ip")) a->metric = SW_METRIC_IP;
            else if (!strcmp(v, "cosine")) a->metric = SW_METRIC_COSINE;
            else if (!strcmp(v, "l1")) a->metric = SW_METRIC_L1;
            else die(EXIT_USAGE, "--metric must be l2, ip, cosine or l1, got \"%s\"", v);
        } else {
            usage(stderr);
            die(EXIT_USAGE, "unknown option \"%s\"", o);
        }
    }
    if (!a->base) die(EXIT_USAGE, "--base FILE is required");
    if (!a->query) die(EXIT_USAGE, "--query FILE is required");
    if (!a->gt) die(EXIT_USAGE, "--gt FILE is required");

    if (search_threads) {
        parse_thread_list(a, search_threads);
    } else {
        a->sthreads = xmalloc(sizeof(size_t));
        a->sthreads[0] = a->threads;
        a->n_sthreads = 1;
    }
    a->batch = !(a->n_sthreads == 1 && a->sthreads[0] == 1);
    if (search_api) {
        if (!strcmp(search_api, "batch")) a->batch = 1;
        else if (a->batch)
            die(EXIT_USAGE, "--search-api single runs one thread; it cannot sweep search threads "
                            "above 1");
    }
}

/* The dataset column: --name, else the directory of base.*, else the file stem. */
/* ===================================================================== */
/* Sweep and interpolation                                               */
/* ===================================================================== */

typedef struct {
    uint32_t ef;
    double recall, qps_median, qps_min, qps_max, lat_mean_us, lat_p99_us;
} sweep_point;

/*
 * QPS at `target` recall.  Returns 0 and sets *qps if the sweep reaches it;
 * *lower_bound is set when the smallest ef already reaches the target (no
 * point below to interpolate from).  Returns -1 if it is never reached.
 */
static int qps_at_recall(const sweep_point *s, size_t n, double target, double *qps,
                         int *lower_bound, size_t *lo_idx)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (s[i].recall >= target) {
            if (i == 0) {
                *qps = s[0].qps_median;
                *lower_bound = 1;
                *lo_idx = 0;
            } else {
                const sweep_point *a = &s[i - 1], *b = &s[i];
                double t = (target - a->recall) / (b->recall - a->recall);
                *qps = a->qps_median + t * (b->qps_median - a->qps_median);
                *lower_bound = 0;
                *lo_idx = i - 1;
            }
            return 0;
        }
    }
    return -1;
}

/* ===================================================================== */
/* Main                                                                  */
/* ===================================================================== */

/* recall@k of one pass: labels holds k ids per query, UINT64_MAX where missing. */
static double pass_recall(const uint64_t *labels, const int32_t *gt, size_t gt_d, size_t nq,
                          size_t k)
{
    double hits = 0;
    size_t i, j, m;
    for (i = 0; i < nq; i++) {
        const int32_t *truth = gt + i * gt_d;
        const uint64_t *got = labels + i * k;
        size_t hit = 0;
        for (j = 0; j < k; j++)
            for (m = 0; m < k; m++)
                if (got[m] == (uint64_t)truth[j]) { hit++; break; }
        hits += (double)hit / (double)k;
    }
    return hits / (double)nq;
}

/* Print QPS at the three recall targets of one sweep and append them to `summary`. */
static void print_targets(const sweep_point *sweep, size_t n_ef, char *summary, size_t cap)
{
    static const double targets[3] = {0.90, 0.95, 0.99};
    size_t n = strlen(summary), i, e;
    for (i = 0; i < 3; i++) {
        double q;
        int lb;
        size_t lo;
        if (qps_at_recall(sweep, n_ef, targets[i], &q, &lb, &lo) != 0) {
            double best = 0;
            for (e = 0; e < n_ef; e++)
                if (sweep[e].recall > best) best = sweep[e].recall;
            printf("QPS at recall %.2f: n/a (best recall in the sweep is %.4f)\n", targets[i],
                   best);
            n += (size_t)snprintf(summary + n, cap - n, " qps@%.2f=n/a", targets[i]);
        } else if (lb) {
            printf("QPS at recall %.2f: >= %.1f (the smallest ef, %u, already reaches %.4f)\n",
                   targets[i], q, sweep[0].ef, sweep[0].recall);
            n += (size_t)snprintf(summary + n, cap - n, " qps@%.2f=>=%.1f", targets[i], q);
        } else {
            printf("QPS at recall %.2f: %.1f (interpolated between ef %u and ef %u)\n",
                   targets[i], q, sweep[lo].ef, sweep[lo + 1].ef);
            n += (size_t)snprintf(summary + n, cap - n, " qps@%.2f=%.1f", targets[i], q);
        }
        if (n >= cap) n = cap - 1;
    }
}

int main(int argc, char **argv)
{
    args a;
    bin_header hb, hq, hg;
    FILE *fb, *fq, *fg;
    float *base, *query;
    int32_t *gt;
    size_t nb, nq, d, k, i, j, e, t, nt;
    char *dataset;
    sw_options opt;
    sw_index *index = NULL;
    sw_status st;
    uint64_t t0, t1;
    double build_s, mem_per_vec;
    size_t mem;
    sweep_point *sweep; /* [t * n_ef + e] */
    uint64_t *labels, *ids, *lat, *run_ns, *lat_sorted;
    size_t *found;
    double *run_recall;
    unsigned *order;
    const char *api;
    FILE *csv = NULL;

    parse_args(argc, argv, &a);
    dataset = dataset_name(a.name, a.base);
    nt = a.n_sthreads;
    api = a.batch ? "batch" : "single";

    /* ---- Validate every input before doing any work. ---- */
    fb = open_bin("base", a.base, 0, &hb);
    fq = open_bin("query", a.query, 0, &hq);
    fg = open_bin("ground truth", a.gt, 1, &hg);
    if (hg.type != ELEM_I32)
        die(EXIT_USAGE, "ground truth file %s: must be .ibin (int32 ids)", a.gt);
    if (hb.type == ELEM_I32 || hq.type == ELEM_I32)
        die(EXIT_USAGE, "base and query must be .fbin, .u8bin or .i8bin");
    if (hb.d != hq.d)
        die(EXIT_USAGE, "dimension mismatch: base %s has d=%zu but query %s has d=%zu", a.base,
            hb.d, a.query, hq.d);
    nb = hb.n;
    d = hb.d;
    k = a.k;
    nq = hq.n;
    if (a.nq) {
        if (a.nq > hq.n)
            die(EXIT_USAGE, "--nq %zu but the query file %s has only %zu rows", a.nq, a.query,
                hq.n);
        nq = a.nq;
    }
    if (hg.n < nq)
        die(EXIT_USAGE, "ground truth %s has %zu rows but %zu queries are to be run", a.gt, hg.n,
            nq);
    if (hg.d < k)
        die(EXIT_USAGE, "ground truth %s has %zu ids per query, fewer than k=%zu", a.gt, hg.d, k);
    if (k > nb)
        die(EXIT_USAGE, "k=%zu is larger than the base set (%zu vectors)", k, nb);

    gt = xmalloc(nq * hg.d * sizeof(int32_t));
    if (fread(gt, sizeof(int32_t), nq * hg.d, fg) != nq * hg.d)
        die(EXIT_RUNTIME, "%s: short read", a.gt);
    fclose(fg);
    for (i = 0; i < nq; i++)
        for (j = 0; j < k; j++) {
            int32_t id = gt[i * hg.d + j];
            if (id < 0 || (size_t)id >= nb)
                die(EXIT_USAGE,
                    "ground truth %s row %zu column %zu: id %d is outside the base set (0..%zu); "
                    "is it the ground truth of this base file?",
                    a.gt, i, j, (int)id, nb - 1);
        }

    base = read_vectors(fb, &hb, nb);
    fclose(fb);
    query = read_vectors(fq, &hq, nq);
    fclose(fq);
    if (a.tile > 1) {
        /* Longer passes: with 1000 queries a pass at low ef is a few tens of
         * milliseconds, short enough for timer and scheduler noise to show.
         * Repeating the set keeps recall as it is and scales the pass. */
        float *tq = xmalloc(a.tile * nq * d * sizeof(float));
        int32_t *tg = xmalloc(a.tile * nq * hg.d * sizeof(int32_t));
        for (size_t r = 0; r < a.tile; r++) {
            memcpy(tq + r * nq * d, query, nq * d * sizeof(float));
            memcpy(tg + r * nq * hg.d, gt, nq * hg.d * sizeof(int32_t));
        }
        free(query);
        free(gt);
        query = tq;
        gt = tg;
        nq *= a.tile;
    }

    if (a.csv) {
        csv = fopen(a.csv, "w");
        if (!csv) die(EXIT_USAGE, "cannot write %s: %s", a.csv, strerror(errno));
    }

    printf("smallworld %s  sw_bench  build config \"%s\"  kernels %s\n", sw_version(), SW_BENCH_CONFIG,
           sw_simd_name());
    if (strcmp(SW_BENCH_CONFIG, "Release") != 0 && strcmp(SW_BENCH_CONFIG, "RelWithDebInfo") != 0)
        printf("WARNING: not a Release build; timings are not representative\n");
    printf("dataset %s: base %zu x %zu (%s), %zu queries (%s), ground truth %zu per query\n",
           dataset, nb, d, elem_name(hb.type), nq, elem_name(hq.type), hg.d);
    printf("metric %s  M %u  ef_construction %u  k %zu  repeat %u  threads %zu\n", a.metric_name,
           a.M, a.efc, k, a.repeat, a.threads);
    printf("build: one sw_add_batch on %zu thread%s; search threads", a.threads,
           a.threads == 1 ? "" : "s");
    for (t = 0; t < nt; t++) printf("%s%zu", t ? "," : " ", a.sthreads[t]);
    printf(" (%s)\n", a.batch ? "one sw_search_batch of all queries per pass"
                              : "sw_search per query");
    fflush(stdout);

    /* ---- Build. ---- */
    opt = sw_options_default();
    opt.dim = (uint32_t)d;
    opt.metric = a.metric;
    opt.M = a.M;
    opt.ef_construction = a.efc;
    st = sw_create(&opt, &index);
    if (st != SW_OK)
        die(st == SW_ENOMEM ? EXIT_RUNTIME : EXIT_USAGE, "sw_create: %s", sw_last_error());

    ids = xmalloc(nb * sizeof(uint64_t));
    for (i = 0; i < nb; i++) ids[i] = (uint64_t)i;
    t0 = now_ns();
    st = sw_add_batch(index, ids, base, nb, d, a.threads);
    t1 = now_ns();
    if (st != SW_OK) die(EXIT_RUNTIME, "sw_add_batch: %s", sw_last_error());
    build_s = (double)(t1 - t0) / 1e9;
    if (sw_count(index) != nb)
        die(EXIT_RUNTIME, "after adding %zu vectors sw_count() says %zu", nb, sw_count(index));
    mem = sw_memory_usage(index);
    mem_per_vec = (double)mem / (double)nb;
    printf("build: %.3f s on %zu thread%s, %.0f vectors/s; memory %zu bytes (%.1f bytes/vector, "
           "raw vector %zu)\n\n",
           build_s, a.threads, a.threads == 1 ? "" : "s", (double)nb / build_s, mem, mem_per_vec,
           d * sizeof(float));
    fflush(stdout);
    free(base);
    free(ids);

    /* ---- Search sweep. ---- */
    sweep = xmalloc(nt * a.n_ef * sizeof *sweep);
    labels = xmalloc(nq * k * sizeof(uint64_t));
    found = xmalloc(nq * sizeof(size_t));
    lat = xmalloc((size_t)a.repeat * nq * sizeof(uint64_t));
    lat_sorted = xmalloc(nq * sizeof(uint64_t));
    run_ns = xmalloc(nt * a.repeat * sizeof(uint64_t));
    run_recall = xmalloc(nt * a.repeat * sizeof(double));
    order = xmalloc(a.repeat * sizeof(unsigned));

    printf("%4s %6s %10s %12s %12s %12s %12s %12s\n", "thr", "ef", "recall@k", "QPS median",
           "QPS min", "QPS max", "lat mean us", "lat p99 us");
    if (csv)
        fprintf(csv, "library,dataset,M,efc,ef,recall,qps_median,qps_min,qps_max,lat_mean_us,"
                     "lat_p99_us,build_s,build_threads,search_threads,search_api\n");

    for (e = 0; e < a.n_ef; e++) {
        sw_search_params sp = sw_search_params_default();
        unsigned r, med;
        sp.ef = a.efs[e];

        /* Interleaved: repeat r of every thread count before repeat r+1. */
        for (r = 0; r < a.repeat; r++) {
            for (t = 0; t < nt; t++) {
                uint64_t r0, r1;
                if (a.batch) {
                    r0 = now_ns();
                    st = sw_search_batch(index, query, nq, d, k, &sp, labels, NULL, found,
                                         a.sthreads[t]);
                    r1 = now_ns();
                    if (st != SW_OK)
                        die(EXIT_RUNTIME, "sw_search_batch (ef %u, %zu threads): %s", sp.ef,
                            a.sthreads[t], sw_last_error());
                    /* Short rows are padded with SW_NO_LABEL (UINT64_MAX): never a true id. */
                } else {
                    uint64_t *rl = lat + (size_t)r * nq;
                    r0 = now_ns();
                    for (i = 0; i < nq; i++) {
                        size_t nf = 0;
                        uint64_t q0 = now_ns(), q1;
                        st = sw_search(index, query + i * d, d, k, &sp, labels + i * k, NULL,
                                       &nf);
                        q1 = now_ns();
                        if (st != SW_OK)
                            die(EXIT_RUNTIME, "sw_search (ef %u, query %zu): %s", sp.ef, i,
                                sw_last_error());
                        rl[i] = q1 - q0;
                        /* Mark missing results so they never match a true id. */
                        for (j = nf; j < k; j++) labels[i * k + j] = UINT64_MAX;
                    }
                    r1 = now_ns();
                }
                run_ns[t * a.repeat + r] = r1 - r0;
                run_recall[t * a.repeat + r] = pass_recall(labels, gt, hg.d, nq, k);
            }
        }

        for (t = 0; t < nt; t++) {
            const uint64_t *rn = run_ns + t * a.repeat;
            sweep_point *p = &sweep[t * a.n_ef + e];
            /* Order runs by time, slowest QPS first; the median run is the middle. */
            for (r = 0; r < a.repeat; r++) order[r] = r;
            for (r = 1; r < a.repeat; r++) {
                unsigned x = order[r], s = r;
                while (s > 0 && rn[order[s - 1]] < rn[x]) { order[s] = order[s - 1]; s--; }
                order[s] = x;
            }
            med = order[(a.repeat - 1) / 2];
            p->ef = sp.ef;
            p->recall = run_recall[t * a.repeat + med];
            p->qps_median = (double)nq / ((double)rn[med] / 1e9);
            p->qps_min = (double)nq / ((double)rn[order[0]] / 1e9);
            p->qps_max = (double)nq / ((double)rn[order[a.repeat - 1]] / 1e9);
            if (a.batch) {
                /* Pass time per query (1 / QPS), as hnswlib_core.py reports it. */
                p->lat_mean_us = (double)rn[med] / (double)nq / 1e3;
                p->lat_p99_us = NAN;
            } else {
                uint64_t sum;
                memcpy(lat_sorted, lat + (size_t)med * nq, nq * sizeof(uint64_t));
                for (i = 0, sum = 0; i < nq; i++) sum += lat_sorted[i];
                qsort(lat_sorted, nq, sizeof(uint64_t), cmp_u64);
                p->lat_mean_us = (double)sum / (double)nq / 1e3;
                /* p99 by nearest rank: the ceil(0.99 n)-th smallest. */
                p->lat_p99_us = (double)lat_sorted[(size_t)ceil(0.99 * (double)nq) - 1] / 1e3;
            }

            if (a.batch)
                printf("%4zu %6u %10.4f %12.1f %12.1f %12.1f %12.2f %12s\n", a.sthreads[t], p->ef,
                       p->recall, p->qps_median, p->qps_min, p->qps_max, p->lat_mean_us, "-");
            else
                printf("%4zu %6u %10.4f %12.1f %12.1f %12.1f %12.2f %12.2f\n", a.sthreads[t],
                       p->ef, p->recall, p->qps_median, p->qps_min, p->qps_max, p->lat_mean_us,
                       p->lat_p99_us);
            if (csv) {
                fprintf(csv, "smallworld,%s,%u,%u,%u,%.6f,%.2f,%.2f,%.2f,%.3f,", dataset, a.M,
                        a.efc, p->ef, p->recall, p->qps_median, p->qps_min, p->qps_max,
                        p->lat_mean_us);
                if (!a.batch) fprintf(csv, "%.3f", p->lat_p99_us);
                fprintf(csv, ",%.4f,%zu,%zu,%s\n", build_s, a.threads, a.sthreads[t], api);
            }
        }
        fflush(stdout);
    }

    /* ---- QPS at fixed recall, one summary line per search thread count. ---- */
    for (t = 0; t < nt; t++) {
        char summary[512];
        snprintf(summary, sizeof summary,
                 "summary: library=smallworld threads=%zu search_threads=%zu search_api=%s "
                 "build_s=%.4f mem_bytes_per_vector=%.1f",
                 a.threads, a.sthreads[t], api, build_s, mem_per_vec);
        putchar('\n');
        if (nt > 1) printf("search on %zu thread%s:\n", a.sthreads[t], a.sthreads[t] == 1 ? "" : "s");
        print_targets(sweep + t * a.n_ef, a.n_ef, summary, sizeof summary);
        puts(summary);
    }

    if (csv && fclose(csv) != 0) die(EXIT_RUNTIME, "writing %s: %s", a.csv, strerror(errno));

    sw_free(index);
    free(query);
    free(gt);
    free(sweep);
    free(labels);
    free(found);
    free(lat);
    free(lat_sorted);
    free(run_ns);
    free(run_recall);
    free(order);
    free(a.efs);
    free(a.sthreads);
    free(dataset);
    return 0;
}
