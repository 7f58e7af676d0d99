/*
 * test_threads.c — the thread-safety promises of smallworld.h.
 *
 * The header allows any number of concurrent readers (search, exact search,
 * get, contains, getters, save) on one index, makes sw_last_error() per
 * thread, and calls distinct indexes independent.  Each promise gets a test
 * whose failure is visible in results, not only to ThreadSanitizer:
 * concurrent searches must return exactly what the same searches return
 * one at a time; files saved while searches run must load to the same
 * index; four indexes built at once on four threads must save to the same
 * bytes as one built alone (a hidden global, such as a shared level
 * generator, breaks that).  Run under SANITIZE=thread the same tests check
 * for data races too.
 *
 * The framework's CHECK macros are not thread-safe, so worker threads only
 * count mismatches and the main thread asserts on the counts.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sw_test.h"
#include "testutil.h"

#define TH_DIM 16
#define TH_N 4000
#define TH_Q 300
#define TH_K 10
#define TH_THREADS 4

typedef struct search_job {
    const sw_index *ix;
    const float *queries;
    const uint64_t *want_labels; /* TH_Q x TH_K, from the sequential run */
    const float *want_dists;
    const size_t *want_found;
    int exact;
    size_t start;  /* each thread walks the queries from its own offset */
    size_t rounds;
    size_t mismatches;
    size_t errors;
} search_job;

static int search_one(const sw_index *ix, const float *q, int exact, uint64_t *lab, float *d,
                      size_t *nf)
{
    sw_search_params p = sw_search_params_default();

    p.ef = 100;
    return exact ? sw_search_exact(ix, q, TH_DIM, TH_K, &p, lab, d, nf)
                 : sw_search(ix, q, TH_DIM, TH_K, &p, lab, d, nf);
}

static void *search_worker(void *arg)
{
    search_job *j = arg;
    uint64_t lab[TH_K];
    float d[TH_K];

    for (size_t r = 0; r < j->rounds; r++) {
        for (size_t i = 0; i < TH_Q; i++) {
            size_t q = (j->start + i) % TH_Q;
            size_t nf = 0;

            if (search_one(j->ix, j->queries + q * TH_DIM, j->exact, lab, d, &nf) != SW_OK) {
                j->errors++;
                continue;
            }
            if (nf != j->want_found[q] ||
                memcmp(lab, j->want_labels + q * TH_K, nf * sizeof lab[0]) != 0 ||
                memcmp(d, j->want_dists + q * TH_K, nf * sizeof d[0]) != 0)
                j->mismatches++;
        }
    }
    return NULL;
}

static void concurrent_searches(int with_allocator)
{
    float *data = tu_clustered(TH_N, TH_DIM, 16, 701, 702);
    float *queries = tu_clustered(TH_Q, TH_DIM, 16, 701, 703);
    uint64_t *labels = malloc(TH_Q * TH_K * sizeof *labels);
    float *dists = malloc(TH_Q * TH_K * sizeof *dists);
    size_t *found = malloc(TH_Q * sizeof *found);
    sw_options o = sw_options_default();
    sw_index *ix = NULL;
    tu_alloc ta;

    tu_alloc_init(&ta);
    if (data == NULL || queries == NULL || labels == NULL || dists == NULL || found == NULL) {
        sw_test_fail_at(__FILE__, __LINE__, "out of memory");
        goto done;
    }
    o.dim = TH_DIM;
    if (with_allocator)
        o.allocator = &ta.api;
    ix = tu_build(&o, data, TH_N);
    if (ix == NULL)
        goto done;

    for (int exact = 0; exact < 2; exact++) {
        pthread_t th[TH_THREADS];
        search_job jobs[TH_THREADS];
        size_t mismatches = 0, errors = 0;

        for (size_t q = 0; q < TH_Q; q++)
            CHECK_OK(search_one(ix, queries + q * TH_DIM, exact, labels + q * TH_K,
                                dists + q * TH_K, &found[q]));
        for (int t = 0; t < TH_THREADS; t++) {
            jobs[t] = (search_job){ix, queries, labels, dists, found, exact,
                                   (size_t)t * TH_Q / TH_THREADS, exact ? 1 : 3, 0, 0};
            if (pthread_create(&th[t], NULL, search_worker, &jobs[t]) != 0) {
                sw_test_fail_at(__FILE__, __LINE__, "pthread_create failed");
                for (int u = 0; u < t; u++)
                    pthread_join(th[u], NULL);
                goto done;
            }
        }
        for (int t = 0; t < TH_THREADS; t++) {
            pthread_join(th[t], NULL);
            mismatches += jobs[t].mismatches;
            errors += jobs[t].errors;
        }
        if (mismatches != 0 || errors != 0)
            sw_test_fail_at(__FILE__, __LINE__,
                            "%s: %zu concurrent searches differ from sequential, %zu failed",
                            exact ? "exact" : "search", mismatches, errors);
    }
    CHECK_GRAPH(ix);
done:
    sw_free(ix);
    CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), 0);
    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
    free(data);
    free(queries);
    free(labels);
    free(dists);
    free(found);
}

TEST(threads_concurrent_searches_match_sequential)
{
    concurrent_searches(0);
}

TEST(threads_concurrent_searches_with_allocator)
{
    concurrent_searches(1);
}

/* ===================================================================== */

typedef struct save_job {
    const sw_index *ix;
    char paths[3][300];
    int status[3];
} save_job;

static void *save_worker(void *arg)
{
    save_job *j = arg;

    for (int i = 0; i < 3; i++)
        j->status[i] = sw_save(j->ix, j->paths[i]);
    return NULL;
}

TEST(threads_save_while_searching)
{
    float *data = tu_clustered(TH_N, TH_DIM, 16, 711, 712);
    float *queries = tu_clustered(TH_Q, TH_DIM, 16, 711, 713);
    uint64_t *labels = malloc(TH_Q * TH_K * sizeof *labels);
    float *dists = malloc(TH_Q * TH_K * sizeof *dists);
    size_t *found = malloc(TH_Q * sizeof *found);
    sw_options o = sw_options_default();
    sw_index *ix;
    pthread_t saver, searchers[3];
    search_job jobs[3];
    save_job sj;
    char dir[256], why[128];
    tu_snapshot s0, s1;
    size_t mismatches = 0;
    int started[3];

    REQUIRE(data && queries && labels && dists && found);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    o.dim = TH_DIM;
    ix = tu_build(&o, data, TH_N);
    REQUIRE(ix != NULL);
    for (size_t q = 0; q < TH_Q; q++)
        CHECK_OK(search_one(ix, queries + q * TH_DIM, 0, labels + q * TH_K, dists + q * TH_K,
                            &found[q]));
    REQUIRE(tu_snapshot_take(&s0, ix, queries, 20, TH_K, NULL) == 0);

    sj.ix = ix;
    for (int i = 0; i < 3; i++) {
        snprintf(sj.paths[i], sizeof sj.paths[i], "%s/concurrent-%d.swi", dir, i);
        sj.status[i] = -999;
    }
    REQUIRE(pthread_create(&saver, NULL, save_worker, &sj) == 0);
    for (int t = 0; t < 3; t++) {
        jobs[t] = (search_job){ix, queries, labels, dists, found, 0, (size_t)t * 100, 2, 0, 0};
        started[t] = pthread_create(&searchers[t], NULL, search_worker, &jobs[t]) == 0;
        if (!started[t])
            sw_test_fail_at(__FILE__, __LINE__, "pthread_create failed");
    }
    pthread_join(saver, NULL);
    for (int t = 0; t < 3; t++) {
        if (started[t])
            pthread_join(searchers[t], NULL);
        mismatches += jobs[t].mismatches + jobs[t].errors;
    }
    CHECK_EQ_UINT(mismatches, 0);

    for (int i = 0; i < 3; i++) {
        sw_index *b = NULL;

        CHECK_STATUS(sj.status[i], SW_OK);
        if (sj.status[i] != SW_OK)
            continue;
        CHECK_OK(sw_load(sj.paths[i], NULL, &b));
        if (b == NULL)
            continue;
        if (tu_snapshot_take(&s1, b, queries, 20, TH_K, NULL) == 0) {
            if (!tu_snapshot_equal(&s0, &s1, why, sizeof why))
                sw_test_fail_at(__FILE__, __LINE__, "file %d saved during searches: %s", i,
                                why);
            tu_snapshot_free(&s1);
        }
        sw_free(b);
    }
    tu_snapshot_free(&s0);
    sw_free(ix);
    tu_rmtree(dir);
    free(data);
    free(queries);
    free(labels);
    free(dists);
    free(found);
}

/* ===================================================================== */

typedef struct build_job {
    const float *data;
    size_t n;
    sw_options opt;
    const char *path;
    int status;
} build_job;

static void *build_worker(void *arg)
{
    build_job *j = arg;
    sw_index *ix = NULL;

    j->status = sw_create(&j->opt, &ix);
    for (size_t i = 0; j->status == SW_OK && i < j->n; i++)
        j->status = sw_add(ix, i, j->data + i * j->opt.dim, j->opt.dim);
    if (j->status == SW_OK)
        j->status = sw_save(ix, j->path);
    sw_free(ix);
    return NULL;
}

TEST(threads_distinct_indexes_are_independent)
{
    const size_t n = 2000;
    float *data = tu_clustered(n, TH_DIM, 16, 721, 722);
    char dir[256], paths[TH_THREADS + 1][300];
    build_job jobs[TH_THREADS + 1];
    pthread_t th[TH_THREADS];
    unsigned char *ref = NULL;
    size_t ref_len = 0;
    int started[TH_THREADS] = {0};

    REQUIRE(data != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    for (int t = 0; t <= TH_THREADS; t++) {
        snprintf(paths[t], sizeof paths[t], "%s/build-%d.swi", dir, t);
        jobs[t].data = data;
        jobs[t].n = n;
        jobs[t].opt = sw_options_default();
        jobs[t].opt.dim = TH_DIM;
        jobs[t].opt.metric = SW_METRIC_L1;
        jobs[t].path = paths[t];
        jobs[t].status = -999;
    }
    /* The reference, built alone. */
    build_worker(&jobs[TH_THREADS]);
    CHECK_STATUS(jobs[TH_THREADS].status, SW_OK);
    ref = tu_read_file(paths[TH_THREADS], &ref_len);
    REQUIRE(ref != NULL);

    for (int t = 0; t < TH_THREADS; t++)
        started[t] = pthread_create(&th[t], NULL, build_worker, &jobs[t]) == 0;
    for (int t = 0; t < TH_THREADS; t++) {
        unsigned char *got;
        size_t len = 0;

        if (!started[t]) {
            sw_test_fail_at(__FILE__, __LINE__, "pthread_create failed");
            continue;
        }
        pthread_join(th[t], NULL);
        CHECK_STATUS(jobs[t].status, SW_OK);
        got = tu_read_file(paths[t], &len);
        if (got == NULL || len != ref_len || memcmp(got, ref, len) != 0)
            sw_test_fail_at(__FILE__, __LINE__,
                            "index built on thread %d differs from the one built alone", t);
        free(got);
    }
    free(ref);
    tu_rmtree(dir);
    free(data);
}

/* ===================================================================== */

typedef struct error_job {
    char initial[256];
    char after[256];
    int status;
} error_job;

static void *error_worker(void *arg)
{
    error_job *j = arg;
    sw_index *ix = NULL;
    sw_options o = sw_options_default();
    float v[3] = {1, 2, 3};
    size_t nf;

    snprintf(j->initial, sizeof j->initial, "%s", sw_last_error());
    o.dim = 3;
    if (sw_create(&o, &ix) == SW_OK) {
        j->status = sw_search(ix, v, 3, 0, NULL, NULL, NULL, &nf);
        sw_free(ix);
    }
    snprintf(j->after, sizeof j->after, "%s", sw_last_error());
    return NULL;
}

TEST(threads_last_error_is_per_thread)
{
    sw_options o = sw_options_default();
    sw_index *ix = NULL;
    error_job j;
    pthread_t th;
    char mine[256];

    memset(&j, 0, sizeof j);
    o.dim = SW_MAX_DIM + 1;
    CHECK_STATUS(sw_create(&o, &ix), SW_EDIM);
    snprintf(mine, sizeof mine, "%s", sw_last_error());
    CHECK(strncmp(mine, sw_strerror(SW_EDIM), strlen(sw_strerror(SW_EDIM))) == 0);

    REQUIRE(pthread_create(&th, NULL, error_worker, &j) == 0);
    pthread_join(th, NULL);
    CHECK_STR_EQ(j.initial, ""); /* a fresh thread has seen no failure */
    CHECK_STATUS(j.status, SW_EK);
    CHECK(strncmp(j.after, sw_strerror(SW_EK), strlen(sw_strerror(SW_EK))) == 0);
    /* The other thread's failure did not touch this thread's message. */
    CHECK_STR_EQ(sw_last_error(), mine);
}
