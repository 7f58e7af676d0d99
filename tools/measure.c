/*
 * measure.c — `smallworld gt` and `smallworld bench`: the exact answer, and
 * how close the index gets to it and how fast.
 *
 * gt is brute force in the program itself, not sw_search_exact: that needs
 * the base vectors in an index, and building one costs an HNSW insert per
 * vector, far more than the scan.  Queries are handed out one at a time
 * from an atomic counter to a pool of pthreads (load stays even when some
 * threads are slowed by others sharing the machine); each keeps its k best
 * in a max-heap ordered by (distance, id), so ties go to the lower id and
 * the output is the same on any number of threads.  Distances follow the
 * library's conventions: squared L2, 1 - dot for inner product, 1 - cos
 * (vectors normalised first, a zero vector left zero) and L1.  The sums use
 * eight float accumulators, which the compiler can keep in vector
 * registers without -ffast-math; on integer data (bigann's uint8) every
 * partial sum stays below 2^24 and the distances are exact, which the
 * tests check against the published ground truth.
 *
 * bench times one query at a time on one thread with sw_search, so the
 * latency percentiles are of single queries and the QPS is one core's:
 * the number that compares across machines and against other libraries
 * run the same way.  Before the sweep one untimed pass over up to 1,000
 * queries at the largest ef pages the mapped file in, so the first ef does
 * not pay for the page faults.  Recall@k is the share of each query's k
 * true neighbours (the first k ids of its ground-truth row) found among
 * the k results, averaged over queries; ground-truth ids are compared with
 * labels, so an index built with its default labels (row numbers) matches
 * a ground truth computed over the same base file.
 *
 * Distance evaluations per query are the fairest measure of work across
 * machines: the library counts them when a search is given a
 * sw_search_stats (sw_search_params.stats), a few relaxed atomic adds per
 * search, so the timed pass counts them too.
 *
 * The overhead factor says how far the graph walk is from the speed limit
 * of its own arithmetic: the search time per distance evaluation (the whole
 * query's time, descent, pool and results included, over the distances it
 * computed) divided by the time per distance of an exact scan of the same
 * index (sw_search_exact: every vector once, in memory order, which the
 * hardware prefetcher streams).  1.0 would be a walk that costs no more than
 * streaming; the scan is timed in 3 passes over a few queries (about a
 * tenth of a second each) and the fastest pass is the reference.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ==== Distances ==== */

static float dist_l2(const float *a, const float *b, size_t d) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= d; i += 8)
        for (size_t j = 0; j < 8; j++) {
            float t = a[i + j] - b[i + j];
            s[j] += t * t;
        }
    float r = 0;
    for (; i < d; i++) {
        float t = a[i] - b[i];
        r += t * t;
    }
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + r;
}

static float dist_dot(const float *a, const float *b, size_t d) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= d; i += 8)
        for (size_t j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    float r = 0;
    for (; i < d; i++) r += a[i] * b[i];
    return 1.0f - (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + r);
}

static float dist_l1(const float *a, const float *b, size_t d) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= d; i += 8)
        for (size_t j = 0; j < 8; j++) s[j] += fabsf(a[i + j] - b[i + j]);
    float r = 0;
    for (; i < d; i++) r += fabsf(a[i] - b[i]);
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + r;
}

static void normalise(cli_matrix *m) {
    for (size_t i = 0; i < m->n; i++) {
        float *v = m->data + i * m->dim;
        double s = 0;
        for (size_t j = 0; j < m->dim; j++) s += (double)v[j] * v[j];
        if (s > 0) {
            double inv = 1.0 / sqrt(s);
            for (size_t j = 0; j < m->dim; j++) v[j] = (float)(v[j] * inv);
        }
    }
}

/* ==== gt ==== */

typedef struct gt_job {
    const cli_matrix *base, *queries;
    float (*dist)(const float *, const float *, size_t);
    size_t k;
    int32_t *ids;
    float *dists;
    atomic_size_t next, done;
} gt_job;

/* (d, id) worse than (e, jd)? */
static int worse(float d, int32_t id, float e, int32_t jd) {
    return d > e || (d == e && id > jd);
}

/* Swap heap entries a and b (distance and id arrays side by side). */
static void heap_swap(float *hd, int32_t *hi, size_t a, size_t b) {
    float td = hd[a];
    int32_t ti = hi[a];
    hd[a] = hd[b];
    hi[a] = hi[b];
    hd[b] = td;
    hi[b] = ti;
}

static void heap_down(float *hd, int32_t *hi, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(hd[l], hi[l], hd[m], hi[m])) m = l;
        if (r < n && worse(hd[r], hi[r], hd[m], hi[m])) m = r;
        if (m == i) return;
        heap_swap(hd, hi, i, m);
        i = m;
    }
}

static void heap_up(float *hd, int32_t *hi, size_t i) {
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(hd[i], hi[i], hd[p], hi[p])) return;
        heap_swap(hd, hi, i, p);
        i = p;
    }
}

static void *gt_worker(void *arg) {
    gt_job *j = arg;
    size_t k = j->k, d = j->base->dim;
    for (;;) {
        size_t q = atomic_fetch_add(&j->next, 1);
        if (q >= j->queries->n) break;
        const float *qv = j->queries->data + q * d;
        float *hd = j->dists + q * k;
        int32_t *hi = j->ids + q * k;
        size_t n = 0;
        for (size_t i = 0; i < j->base->n; i++) {
            float dd = j->dist(qv, j->base->data + i * d, d);
            if (n < k) {
                hd[n] = dd;
                hi[n] = (int32_t)i;
                heap_up(hd, hi, n++);
            } else if (worse(hd[0], hi[0], dd, (int32_t)i)) {
                hd[0] = dd;
                hi[0] = (int32_t)i;
                heap_down(hd, hi, n, 0);
            }
        }
        /* pop the heap from the back: nearest first */
        for (size_t m = n; m > 1; m--) {
            heap_swap(hd, hi, 0, m - 1);
            heap_down(hd, hi, m - 1, 0);
        }
        atomic_fetch_add(&j->done, 1);
    }
    return NULL;
}

int cli_cmd_gt(const cli_args *a) {
    const char *bp = a->pos[0], *qp = a->pos[1];
    cli_matrix base = {0, 0, NULL}, q = {0, 0, NULL};
    int32_t *ids = NULL;
    float *dists = NULL;
    pthread_t *th = NULL;
    size_t started = 0;
    int rc;
    const char *outs[2] = {a->out, a->distances};
    for (int i = 0; i < 2; i++)
        if (outs[i] && (cli_same_file(outs[i], bp) || cli_same_file(outs[i], qp) ||
                        (i == 1 && cli_same_file(outs[1], outs[0])))) {
            cli_error("%s would overwrite an input of gt", outs[i]);
            return CLI_USAGE;
        }
    if ((rc = cli_read_vectors(bp, a->format, &base))) return rc;
    if ((rc = cli_read_vectors(qp, a->format, &q))) goto done;
    size_t k = a->k_set ? a->k : 100;
    if (q.dim != base.dim) {
        cli_error("%s has dimension %zu, %s %zu", qp, q.dim, bp, base.dim);
        rc = CLI_DATA;
        goto done;
    }
    if (base.n > INT32_MAX || q.n > INT32_MAX) {
        cli_error("%s: more rows than int32 ids can name", base.n > INT32_MAX ? bp : qp);
        rc = CLI_DATA;
        goto done;
    }
    if (k > base.n) {
        cli_error("%s %zu, but %s has only %zu rows", a->k_set ? "-k" : "k (default)", k, bp,
                  base.n);
        rc = CLI_USAGE;
        goto done;
    }
    if (q.n > SIZE_MAX / k / 4 || !(ids = malloc(q.n * k * sizeof *ids)) ||
        !(dists = malloc(q.n * k * sizeof *dists))) {
        cli_error("out of memory for %zu x %zu results", q.n, k);
        rc = CLI_FAIL;
        goto done;
    }
    sw_metric metric = a->opt.metric;
    if (metric == SW_METRIC_COSINE) {
        normalise(&base);
        normalise(&q);
    }
    gt_job job;
    job.base = &base;
    job.queries = &q;
    job.dist = metric == SW_METRIC_L2 ? dist_l2 : metric == SW_METRIC_L1 ? dist_l1 : dist_dot;
    job.k = k;
    job.ids = ids;
    job.dists = dists;
    atomic_init(&job.next, 0);
    atomic_init(&job.done, 0);
    size_t nt = a->threads ? a->threads : cli_online_cpus();
    if (nt > q.n) nt = q.n;
    if (!(th = malloc(nt * sizeof *th))) {
        cli_error("out of memory");
        rc = CLI_FAIL;
        goto done;
    }
    cli_progress p;
    cli_progress_begin(&p, "gt", q.n, a->quiet);
    for (; started < nt; started++) {
        int e = pthread_create(&th[started], NULL, gt_worker, &job);
        if (e) {
            if (started) break; /* fewer threads, same answer */
            cli_error("cannot start a thread: %s", strerror(e));
            rc = CLI_FAIL;
            goto done;
        }
    }
    while (atomic_load(&job.done) < q.n) {
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
        cli_progress_update(&p, atomic_load(&job.done));
    }
    for (size_t t = 0; t < started; t++) pthread_join(th[t], NULL);
    started = 0;
    cli_progress_end(&p);
    if ((rc = cli_write_bin(a->out, q.n, k, ids))) goto done;
    if (a->distances && (rc = cli_write_bin(a->distances, q.n, k, dists))) goto done;
done:
    for (size_t t = 0; t < started; t++) pthread_join(th[t], NULL);
    free(th);
    free(ids);
    free(dists);
    cli_matrix_free(&base);
    cli_matrix_free(&q);
    return rc;
}

/* ==== bench ==== */

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* nearest-rank percentile of sorted t[0..n) */
static double percentile(const double *t, size_t n, double p) {
    size_t r = (size_t)ceil(p * (double)n);
    return t[r ? r - 1 : 0];
}

static int parse_ef_list(const char *text, uint32_t **out, size_t *n) {
    const char *p = text;
    *n = 0;
    *out = NULL;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char buf[24];
        uint64_t v;
        if (len == 0 || len >= sizeof buf) {
            cli_error("--ef: '%s' is not a comma-separated list of numbers", text);
            free(*out);
            return CLI_USAGE;
        }
        memcpy(buf, p, len);
        buf[len] = 0;
        if (cli_parse_u64("--ef", buf, 1, SW_MAX_EF, &v)) {
            free(*out);
            return CLI_USAGE;
        }
        uint32_t *nl = realloc(*out, (*n + 1) * sizeof *nl);
        if (!nl) {
            free(*out);
            cli_error("out of memory");
            return CLI_FAIL;
        }
        *out = nl;
        nl[(*n)++] = (uint32_t)v;
        if (!e) return CLI_OK;
        p = e + 1;
    }
}

int cli_cmd_bench(const cli_args *a) {
    const char *path = a->pos[0], *qp = a->pos[1];
    const char *of = a->oformat ? a->oformat : "table";
    int mode = !strcmp(of, "table") ? 0 : !strcmp(of, "csv") ? 1 : !strcmp(of, "json") ? 2 : -1;
    if (mode < 0) {
        cli_error("--output-format: '%s' is not one of table, csv, json", of);
        return CLI_USAGE;
    }
    uint32_t *efs;
    size_t nef;
    int rc = parse_ef_list(a->ef ? a->ef : "10,16,32,64,128,256", &efs, &nef);
    if (rc) return rc;
    size_t k = a->k_set ? a->k : 10;
    cli_matrix q = {0, 0, NULL};
    int32_t *gt = NULL;
    size_t gn = 0, gk = 0;
    sw_index *ix = NULL;
    uint64_t *labels = NULL;
    double *times = NULL;
    if ((rc = cli_read_vectors(qp, a->format, &q))) goto done;
    if ((rc = cli_read_ids(a->gt, FMT_AUTO, &gn, &gk, &gt))) goto done;
    if (gn != q.n) {
        cli_error("%s has %zu rows, %s %zu queries", a->gt, gn, qp, q.n);
        rc = CLI_DATA;
        goto done;
    }
    if (gk < k) {
        cli_error("%s holds %zu neighbours per query; recall@%zu needs %zu", a->gt, gk, k, k);
        rc = CLI_DATA;
        goto done;
    }
    if ((rc = cli_open_index(path, 0, &ix))) goto done;
    if (q.dim != sw_dim(ix)) {
        cli_error("%s has dimension %zu, the index %zu", qp, q.dim, sw_dim(ix));
        rc = CLI_DATA;
        goto done;
    }
    if (!(labels = malloc(k * sizeof *labels)) || !(times = malloc(q.n * sizeof *times))) {
        cli_error("out of memory");
        rc = CLI_FAIL;
        goto done;
    }
    sw_search_params sp = sw_search_params_default();
    sp.rerank = a->rerank;
    sw_options o;
    sw_get_options(ix, &o);
    size_t found;
    uint32_t maxef = 0;
    for (size_t e = 0; e < nef; e++)
        if (efs[e] > maxef) maxef = efs[e];
    sp.ef = maxef;
    for (size_t i = 0; i < q.n && i < 1000; i++) {
        sw_status st = sw_search(ix, q.data + i * q.dim, q.dim, k, &sp, labels, NULL, &found);
        if (st != SW_OK) {
            cli_error("search: %s", sw_last_error());
            rc = cli_exit_for(st);
            goto done;
        }
    }
    /* The streaming reference: exact scans, fastest of 3 passes. */
    double stream_ns = 0;
    size_t live = sw_count(ix); /* the scan computes a distance per live vector */
    if (live > 0) {
        size_t ns = (size_t)(2e7 / (double)live) + 1;
        if (ns > q.n) ns = q.n;
        for (int pass = 0; pass < 3; pass++) {
            double t0 = cli_now();
            for (size_t i = 0; i < ns; i++) {
                sw_status st = sw_search_exact(ix, q.data + i * q.dim, q.dim, k, NULL, labels,
                                               NULL, &found);
                if (st != SW_OK) {
                    cli_error("exact search: %s", sw_last_error());
                    rc = cli_exit_for(st);
                    goto done;
                }
            }
            double per = 1e9 * (cli_now() - t0) / ((double)ns * (double)live);
            if (pass == 0 || per < stream_ns) stream_ns = per;
        }
    }
    if (mode == 0) {
        printf("# %s: %zu vectors, dimension %zu, %s, %s", path, sw_count(ix), sw_dim(ix),
               cli_metric_name(o.metric), cli_type_name(o.type));
        if (o.type != SW_TYPE_F32 && o.keep != SW_KEEP_NONE)
            printf(" (rerank %u)", a->rerank ? a->rerank : SW_DEFAULT_RERANK);
        printf("; %zu queries, k %zu, one thread, %s\n", q.n, k, sw_simd_name());
        printf("# exact scan: %.2f ns per distance (the reference of the overhead column)\n",
               stream_ns);
        printf("%7s %10s %10s %9s %9s %9s %11s %8s %8s\n", "ef", "recall", "QPS", "p50 ms",
               "p95 ms", "p99 ms", "dist/query", "ns/dist", "overhead");
    } else if (mode == 1) {
        printf("ef,k,recall,qps,p50_ms,p95_ms,p99_ms,dist_evals_per_query,hops_per_query,"
               "ns_per_dist,overhead\n");
    } else {
        printf("{\"index\": ");
        cli_json_string(path);
        printf(", \"count\": %zu, \"queries\": %zu, \"k\": %zu, \"type\": \"%s\", "
               "\"keep\": \"%s\", \"rerank\": %u, \"simd\": \"%s\", "
               "\"scan_ns_per_dist\": %.3f, \"rows\": [",
               sw_count(ix), q.n, k, cli_type_name(o.type), cli_keep_name(o.keep),
               a->rerank ? a->rerank : SW_DEFAULT_RERANK, sw_simd_name(), stream_ns);
    }
    for (size_t e = 0; e < nef; e++) {
        sw_search_stats cost = {0, 0, 0};
        if (efs[e] < k) efs[e] = (uint32_t)k; /* the library searches with ef >= k */
        sp.ef = efs[e];
        sp.stats = &cost;
        double total = 0;
        uint64_t hits = 0;
        for (size_t i = 0; i < q.n; i++) {
            double t0 = cli_now();
            sw_status st = sw_search(ix, q.data + i * q.dim, q.dim, k, &sp, labels, NULL, &found);
            double t1 = cli_now();
            if (st != SW_OK) {
                cli_error("search: %s", sw_last_error());
                rc = cli_exit_for(st);
                goto done;
            }
            times[i] = t1 - t0;
            total += t1 - t0;
            const int32_t *g = gt + i * gk;
            for (size_t r = 0; r < found; r++)
                for (size_t j = 0; j < k; j++)
                    if (g[j] >= 0 && (uint64_t)g[j] == labels[r]) {
                        hits++;
                        break;
                    }
        }
        qsort(times, q.n, sizeof *times, cmp_double);
        double recall = (double)hits / ((double)q.n * (double)k);
        double qps = total > 0 ? (double)q.n / total : 0;
        double p50 = 1e3 * percentile(times, q.n, 0.50), p95 = 1e3 * percentile(times, q.n, 0.95),
               p99 = 1e3 * percentile(times, q.n, 0.99);
        double dpq = q.n ? (double)cost.distances / (double)q.n : 0;
        double hpq = q.n ? (double)cost.hops / (double)q.n : 0;
        double nspd = cost.distances ? 1e9 * total / (double)cost.distances : 0;
        double over = stream_ns > 0 ? nspd / stream_ns : 0;
        if (mode == 0)
            printf("%7u %10.4f %10.0f %9.3f %9.3f %9.3f %11.1f %8.1f %8.2f\n", efs[e], recall,
                   qps, p50, p95, p99, dpq, nspd, over);
        else if (mode == 1)
            printf("%u,%zu,%.6f,%.1f,%.4f,%.4f,%.4f,%.2f,%.2f,%.3f,%.3f\n", efs[e], k, recall,
                   qps, p50, p95, p99, dpq, hpq, nspd, over);
        else
            printf("%s{\"ef\": %u, \"recall\": %.6f, \"qps\": %.1f, \"p50_ms\": %.4f, "
                   "\"p95_ms\": %.4f, \"p99_ms\": %.4f, \"dist_evals_per_query\": %.2f, "
                   "\"hops_per_query\": %.2f, \"ns_per_dist\": %.3f, \"overhead\": %.3f}",
                   e ? ", " : "", efs[e], recall, qps, p50, p95, p99, dpq, hpq, nspd, over);
        fflush(stdout);
    }
    if (mode == 2)
        printf("]}\n");
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("writing the results: %s", strerror(errno));
        rc = CLI_FAIL;
    }
done:
    free(efs);
    free(labels);
    free(times);
    free(gt);
    cli_matrix_free(&q);
    sw_free(ix);
    return rc;
}
