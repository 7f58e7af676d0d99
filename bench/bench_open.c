/*
 * bench_open.c — how long opening a saved index takes: sw_open_mmap
 * (serve the file from a mapping) against sw_load (read it into memory),
 * in one process on the same file, and what the first searches cost after
 * each.
 *
 *   sw_bench_open BASE.fbin INDEX [--queries Q.fbin] [--repeat 5]
 *                 [--threads 0] [--M 16] [--efc 100] [--ef 64]
 *
 * INDEX is built from BASE (and saved) if it does not exist yet.  Each
 * round opens the index both ways, runs the queries once (the first
 * queries after a mapped open pay page faults; the bench reports that
 * separately from the open), and frees it.  The file is in the page cache
 * after the first round; a cold open from disk also pays the reads, which
 * a mapped open defers to the pages the searches touch.  Medians and
 * min..max over the rounds.
 */
#define _POSIX_C_SOURCE 200809L
#include <smallworld.h>

#define BENCH_NAME "sw_bench_open"
#include "bench_util.h"

#include "bench_data.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summary(const char *what, double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    printf("%-28s median %9.2f ms   min %9.2f   max %9.2f\n", what, v[n / 2], v[0], v[n - 1]);
}

static double run_queries(const sw_index *ix, const float *q, size_t nq, size_t d, uint32_t ef) {
    sw_search_params p = sw_search_params_default();
    uint64_t labels[10];
    float dists[10];
    size_t found;
    p.ef = ef;
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < nq; i++)
        if (sw_search(ix, q + i * d, d, 10, &p, labels, dists, &found) != SW_OK)
            die(EXIT_RUNTIME, "search: %s", sw_last_error());
    return (double)(now_ns() - t0) / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 3) die(EXIT_USAGE, "usage: sw_bench_open BASE.fbin INDEX [--queries Q.fbin] [--repeat N] [--threads T] [--M M] [--efc EFC] [--ef EF]");
    const char *base = argv[1], *index = argv[2], *queries = NULL;
    size_t repeat = 5, threads = 0, M = 16, efc = 100, ef = 64;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--queries") && v) queries = argv[++i];
        else if (!strcmp(a, "--repeat") && v) repeat = (size_t)parse_ulong(a, argv[++i], 1, 1000);
        else if (!strcmp(a, "--threads") && v) threads = (size_t)parse_ulong(a, argv[++i], 0, SW_MAX_THREADS);
        else if (!strcmp(a, "--M") && v) M = (size_t)parse_ulong(a, argv[++i], 2, 512);
        else if (!strcmp(a, "--efc") && v) efc = (size_t)parse_ulong(a, argv[++i], 1, 100000);
        else if (!strcmp(a, "--ef") && v) ef = (size_t)parse_ulong(a, argv[++i], 1, 100000);
        else die(EXIT_USAGE, "unknown or incomplete option %s", a);
    }
    struct stat st;
    if (stat(index, &st) != 0) {
        bin_header h;
        FILE *f = open_bin("base", base, 0, &h);
        float *data = read_vectors(f, &h, h.n);
        fclose(f);
        sw_options o = sw_options_default();
        o.dim = (uint32_t)h.d;
        o.M = (uint32_t)M;
        o.ef_construction = (uint32_t)efc;
        sw_index *ix;
        if (sw_create(&o, &ix) != SW_OK) die(EXIT_RUNTIME, "create: %s", sw_last_error());
        uint64_t *labels = xmalloc(h.n * sizeof *labels);
        for (size_t i = 0; i < h.n; i++) labels[i] = i;
        uint64_t t0 = now_ns();
        if (sw_add_batch(ix, labels, data, h.n, h.d, resolve_threads(threads)) != SW_OK)
            die(EXIT_RUNTIME, "build: %s", sw_last_error());
        printf("built %zu x %zu (M %zu, ef_construction %zu) in %.1f s\n", h.n, h.d, M, efc,
               (double)(now_ns() - t0) / 1e9);
        /* what the build's closing reachability pass costs on its own:
         * sw_compact with no tombstones is that pass alone */
        sw_stats s;
        if (sw_get_stats(ix, &s) != SW_OK) die(EXIT_RUNTIME, "stats: %s", sw_last_error());
        t0 = now_ns();
        if (sw_compact(ix, 0) != SW_OK) die(EXIT_RUNTIME, "compact: %s", sw_last_error());
        printf("unreachable after the build: %llu; a reachability pass (sw_compact) takes %.2f s\n",
               (unsigned long long)s.unreachable, (double)(now_ns() - t0) / 1e9);
        if (sw_save(ix, index) != SW_OK) die(EXIT_RUNTIME, "save: %s", sw_last_error());
        sw_free(ix);
        free(labels);
        free(data);
        if (stat(index, &st) != 0) die(EXIT_RUNTIME, "stat %s", index);
    }
    float *q = NULL;
    size_t nq = 0, qd = 0;
    if (queries) {
        bin_header h;
        FILE *f = open_bin("queries", queries, 0, &h);
        q = read_vectors(f, &h, h.n);
        fclose(f);
        nq = h.n;
        qd = h.d;
    }
    printf("index %s: %.1f MB\n", index, (double)st.st_size / 1e6);
    double *t_map = xmalloc(repeat * sizeof(double)), *t_load = xmalloc(repeat * sizeof(double));
    double *q_map = xmalloc(repeat * sizeof(double)), *q_load = xmalloc(repeat * sizeof(double));
    double *v_map = xmalloc(repeat * sizeof(double));
    size_t mem_map = 0, mem_load = 0;
    for (size_t r = 0; r < repeat; r++) {
        sw_index *ix;
        uint64_t t0 = now_ns();
        if (sw_open_mmap(index, NULL, &ix) != SW_OK) die(EXIT_RUNTIME, "open: %s", sw_last_error());
        t_map[r] = (double)(now_ns() - t0) / 1e6;
        if (qd && qd != sw_dim(ix)) die(EXIT_USAGE, "queries have dimension %zu, the index %zu", qd, sw_dim(ix));
        q_map[r] = nq ? run_queries(ix, q, nq, qd, (uint32_t)ef) : 0;
        mem_map = sw_memory_usage(ix);
        t0 = now_ns();
        if (sw_verify(ix) != SW_OK && r == 0) printf("sw_verify: %s\n", sw_last_error());
        v_map[r] = (double)(now_ns() - t0) / 1e6;
        sw_free(ix);

        t0 = now_ns();
        if (sw_load(index, NULL, &ix) != SW_OK) die(EXIT_RUNTIME, "load: %s", sw_last_error());
        t_load[r] = (double)(now_ns() - t0) / 1e6;
        q_load[r] = nq ? run_queries(ix, q, nq, qd, (uint32_t)ef) : 0;
        mem_load = sw_memory_usage(ix);
        sw_free(ix);
    }
    printf("%zu rounds, file in the page cache after the first\n", repeat);
    summary("sw_open_mmap", t_map, repeat);
    summary("sw_load", t_load, repeat);
    if (nq) {
        char what[64];
        snprintf(what, sizeof what, "%zu queries after mmap", nq);
        summary(what, q_map, repeat);
        snprintf(what, sizeof what, "%zu queries after load", nq);
        summary(what, q_load, repeat);
    }
    summary("sw_verify (mapped, full)", v_map, repeat);
    printf("heap: mapped %.1f MB, loaded %.1f MB\n", (double)mem_map / 1e6, (double)mem_load / 1e6);
    free(t_map);
    free(t_load);
    free(q_map);
    free(q_load);
    free(v_map);
    free(q);
    return 0;
}
