/*
 * batch.c — many adds or many searches in one call, on many threads.
 *
 * Both calls are thin: they check every argument and every vector first,
 * then cut the rows into contiguous tasks and let the index's thread pool
 * (pool.c) run them, each row through the same sw_add or sw_search a
 * caller would make.  No separate batch algorithm means nothing new to get
 * wrong: a row of sw_search_batch is bit for bit what sw_search gives for
 * that query, and sw_add_batch on one thread adds the rows in order, so it
 * builds the same graph as a loop of sw_add.  On more threads the order in
 * which rows reach the graph depends on scheduling, so the graph (not its
 * quality) differs from run to run; that is why labels within one batch
 * must be distinct: two rows with one label would race to be its vector.
 *
 * Task sizes: 64 rows per add task, 16 queries per search task.  A task
 * is claimed with one atomic fetch_add; at 32 dimensions and the default
 * parameters an add takes about 90 us and a search (ef 50) about 20, so
 * a task is a few hundred microseconds or more, far above the cost of
 * claiming it, while 10 000 queries still make 625 tasks for the threads
 * to share out evenly.
 *
 * Validation comes first because a batch cannot be undone: once rows are
 * added they stay.  Everything that can be known up front is refused up
 * front (NULLs, dimension, thread count, NaN/Inf in any row, duplicate
 * labels, and room: when count + n could exceed SW__MAX_SLOTS the labels
 * not yet in the index are counted, a lookup per row, which costs nothing
 * next to the adds and is almost never needed).  What is left to happen
 * part way is SW_ENOMEM from sw_add, and SW_EFULL only if adds on other
 * threads fill the index meanwhile.  After a failure, no task starts a new
 * row, and rows already running finish; each row is then wholly added or
 * not at all, and on one thread the rows added are exactly those before
 * the failing one.
 *
 * sw_last_error() is per thread, so a failure on a worker would be lost to
 * the caller.  The worker copies its status and message into the job, the
 * lowest failing row winning, and the calling thread raises it again with
 * the row and label in front.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADD_ROWS 64
#define SEARCH_ROWS 16

/* ==== The first failure of a job ==== */

typedef struct first_error {
    atomic_bool failed;   /* read without the lock to stop claiming rows */
    pthread_mutex_t lock; /* guards the rest */
    size_t row;           /* lowest failing row so far */
    sw_status status;
    char msg[512];
} first_error;

static bool first_error_init(first_error *e) {
    atomic_init(&e->failed, false);
    e->row = SIZE_MAX;
    e->status = SW_OK;
    e->msg[0] = '\0';
    return pthread_mutex_init(&e->lock, NULL) == 0;
}

/* Record that `row` failed with `st`; the detail is this thread's
 * sw_last_error(), less the sw_strerror() prefix that the re-raise adds
 * again. */
static void first_error_set(first_error *e, size_t row, sw_status st) {
    const char *m = sw_last_error();
    size_t pre = strlen(sw_strerror(st));
    if (strncmp(m, sw_strerror(st), pre) == 0 && m[pre] == ':' && m[pre + 1] == ' ') m += pre + 2;
    pthread_mutex_lock(&e->lock);
    if (row < e->row) {
        e->row = row;
        e->status = st;
        snprintf(e->msg, sizeof e->msg, "%s", m);
    }
    pthread_mutex_unlock(&e->lock);
    atomic_store_explicit(&e->failed, true, memory_order_relaxed);
}

static bool first_error_seen(first_error *e) {
    return atomic_load_explicit(&e->failed, memory_order_relaxed);
}

/* A finite check of n floats; the index of the first bad one, or n. */
static size_t first_not_finite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return i;
    return n;
}

/* ==== sw_add_batch ==== */

typedef struct add_job {
    sw_index *ix;
    const uint64_t *labels;
    const float *vectors;
    size_t n, dim;
    first_error err;
} add_job;

static void add_task(void *arg, size_t task) {
    add_job *j = arg;
    size_t end = (task + 1) * ADD_ROWS < j->n ? (task + 1) * ADD_ROWS : j->n, i;
    for (i = task * ADD_ROWS; i < end; i++) {
        if (first_error_seen(&j->err)) break;
        sw_status st = sw__add(j->ix, j->labels[i], j->vectors + i * j->dim);
        if (st != SW_OK) {
            first_error_set(&j->err, i, st);
            break;
        }
    }
    /* rows added, toward the reachability pass: one shared add a task */
    __atomic_add_fetch(&j->ix->added_since_pass, i - task * ADD_ROWS, __ATOMIC_RELAXED);
}

static int u64_cmp(const void *pa, const void *pb) {
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return (a > b) - (a < b);
}

/* SW_EINVAL naming a label that appears twice, SW_ENOMEM, or SW_OK. */
static sw_status check_distinct(sw_index *ix, const uint64_t *labels, size_t n) {
    if (n < 2) return SW_OK;
    if (n > SIZE_MAX / sizeof(uint64_t))
        return sw__fail(SW_ENOMEM, "sw_add_batch: sorting %zu labels", n);
    uint64_t *s = sw__alloc(&ix->mem, n * sizeof *s, sizeof *s);
    if (!s) return sw__fail(SW_ENOMEM, "sw_add_batch: sorting %zu labels", n);
    memcpy(s, labels, n * sizeof *s);
    qsort(s, n, sizeof *s, u64_cmp);
    sw_status st = SW_OK;
    for (size_t i = 1; i < n; i++) {
        if (s[i] != s[i - 1]) continue;
        size_t a = 0, b;
        while (labels[a] != s[i]) a++;
        for (b = a + 1; labels[b] != s[i]; b++) {}
        st = sw__fail(SW_EINVAL, "sw_add_batch: label %llu is in rows %zu and %zu",
                      (unsigned long long)s[i], a, b);
        break;
    }
    sw__free(&ix->mem, s, n * sizeof *s);
    return st;
}

sw_status sw_add_batch(sw_index *ix, const uint64_t *labels, const float *vectors, size_t n,
                       size_t dim, size_t threads) {
    if (!ix) return sw__fail(SW_ENULL, "sw_add_batch: index is NULL");
    if (ix->readonly) return sw__readonly_fail("sw_add_batch");
    if (dim != ix->dim)
        return sw__fail(SW_EDIMMISMATCH, "sw_add_batch: vectors have dimension %zu, the index %u",
                        dim, ix->dim);
    if (threads > SW_MAX_THREADS)
        return sw__fail(SW_EINVAL, "sw_add_batch: threads is %zu, at most %u", threads,
                        SW_MAX_THREADS);
    if (n == 0) return SW_OK;
    if (!labels || !vectors)
        return sw__fail(SW_ENULL, "sw_add_batch: %s is NULL", labels ? "vectors" : "labels");
    if (n > SIZE_MAX / sizeof(float) / dim)
        return sw__fail(SW_EINVAL, "sw_add_batch: %zu rows of %zu floats overflow", n, dim);
    /* n distinct labels fit only if n <= SW__MAX_SLOTS, updates or not. */
    if (n > SW__MAX_SLOTS)
        return sw__fail(SW_EFULL, "sw_add_batch: %zu rows, the index holds at most %u", n,
                        SW__MAX_SLOTS);
    for (size_t i = 0; i < n; i++) {
        const float *v = vectors + i * dim;
        size_t e = first_not_finite(v, dim);
        if (e < dim)
            return sw__fail(SW_ENOTFINITE, "sw_add_batch: row %zu, element %zu is %f", i, e,
                            (double)v[e]);
    }
    sw_status st = check_distinct(ix, labels, n);
    if (st != SW_OK) return st;
    /* slots in use (live, tombstoned, and freed ones not yet recycled
     * alike), not the live count: that is what fills the index */
    size_t count = sw__count(ix);
    if (count + n > SW__MAX_SLOTS) {
        size_t fresh = 0;
        for (size_t i = 0; i < n; i++) fresh += !sw_contains(ix, labels[i]);
        if (count + fresh > SW__MAX_SLOTS)
            return sw__fail(SW_EFULL, "sw_add_batch: %zu new labels, room for %zu", fresh,
                            (size_t)SW__MAX_SLOTS - count);
    }

    /* An untrained compressed index learns from this batch, or refuses it
     * (quant.c); nothing is added before the quantizer exists. */
    if ((st = sw__auto_train(ix, vectors, n, "sw_add_batch")) != SW_OK) return st;

    add_job j = {.ix = ix, .labels = labels, .vectors = vectors, .n = n, .dim = dim};
    if (!first_error_init(&j.err)) return sw__fail(SW_ENOMEM, "sw_add_batch: initialising a mutex");
    sw__parallel(ix, threads, (n + ADD_ROWS - 1) / ADD_ROWS, add_task, &j);
    pthread_mutex_destroy(&j.err.lock);
    /* Once the rows added since the last pass (by batches or single adds)
     * are an eighth of the index, a batch ends by linking in any node left
     * unreachable (insert.c, "Islands"): a walk of the whole graph, paid
     * for many times over by the adds it follows, and geometric, so a
     * build in chunks pays it a bounded number of times per doubling.
     * Best effort: out of memory, the graph is left as the adds made it. */
    size_t since = __atomic_load_n(&ix->added_since_pass, __ATOMIC_RELAXED);
    if (since >= 64 && since * 8 >= sw__count(ix)) {
        pthread_rwlock_wrlock(&ix->save_lock);
        __atomic_store_n(&ix->added_since_pass, 0, __ATOMIC_RELAXED);
        (void)sw__reconnect(ix);
        pthread_rwlock_unlock(&ix->save_lock);
    }
    if (j.err.status == SW_OK) return SW_OK;
    return sw__fail(j.err.status, "sw_add_batch: row %zu (label %llu): %s", j.err.row,
                    (unsigned long long)labels[j.err.row], j.err.msg);
}

/* ==== sw_search_batch ==== */

typedef struct search_job {
    const sw_index *ix;
    const float *queries;
    size_t nq, dim, k, ef;
    sw__filter filter; /* resolved once for every row */
    uint64_t *labels;
    float *distances;
    size_t *found;
    first_error err;
} search_job;

static void search_task(void *arg, size_t task) {
    search_job *j = arg;
    size_t end = (task + 1) * SEARCH_ROWS < j->nq ? (task + 1) * SEARCH_ROWS : j->nq;
    for (size_t i = task * SEARCH_ROWS; i < end; i++) {
        if (first_error_seen(&j->err)) return;
        uint64_t *lab = j->labels + i * j->k;
        float *dist = j->distances ? j->distances + i * j->k : NULL;
        size_t nf = 0;
        sw_status st = sw__search_one(j->ix, j->queries + i * j->dim, j->k, j->ef, &j->filter,
                                      lab, dist, &nf);
        /* A failed row (nf is then 0) is padded in full. */
        for (size_t r = nf; r < j->k; r++) {
            lab[r] = SW_NO_LABEL;
            if (dist) dist[r] = INFINITY;
        }
        if (j->found) j->found[i] = nf;
        if (st != SW_OK) {
            first_error_set(&j->err, i, st);
            return;
        }
    }
}

sw_status sw_search_batch(const sw_index *ix, const float *queries, size_t nq, size_t dim,
                          size_t k, const sw_search_params *params, uint64_t *labels,
                          float *distances, size_t *found, size_t threads) {
    if (!ix) return sw__fail(SW_ENULL, "sw_search_batch: index is NULL");
    if (dim != ix->dim)
        return sw__fail(SW_EDIMMISMATCH, "sw_search_batch: queries have dimension %zu, the index %u",
                        dim, ix->dim);
    if (k == 0) return sw__fail(SW_EK, "sw_search_batch: k is 0");
    if (params && params->ef > SW_MAX_EF)
        return sw__fail(SW_EEF, "sw_search_batch: ef is %u, at most %u", params->ef, SW_MAX_EF);
    if (threads > SW_MAX_THREADS)
        return sw__fail(SW_EINVAL, "sw_search_batch: threads is %zu, at most %u", threads,
                        SW_MAX_THREADS);
    if (nq == 0) return SW_OK;
    if (!queries || !labels)
        return sw__fail(SW_ENULL, "sw_search_batch: %s is NULL", queries ? "labels" : "queries");
    if (nq > SIZE_MAX / sizeof(float) / dim || nq > SIZE_MAX / sizeof(uint64_t) / k)
        return sw__fail(SW_EINVAL, "sw_search_batch: %zu rows of %zu floats or %zu results overflow",
                        nq, dim, k);
    for (size_t i = 0; i < nq; i++) {
        const float *q = queries + i * dim;
        size_t e = first_not_finite(q, dim);
        if (e < dim)
            return sw__fail(SW_ENOTFINITE, "sw_search_batch: query %zu, element %zu is %f", i, e,
                            (double)q[e]);
    }

    /* Past this point only SW_ENOMEM can fail a row.  Rows are then left as
     * the tasks got them: finished rows filled, the failed row padded, rows
     * no task reached untouched. */
    search_job j = {.ix = ix, .queries = queries, .nq = nq, .dim = dim, .k = k,
                    .ef = params && params->ef ? params->ef : sw_get_ef(ix),
                    .labels = labels, .distances = distances, .found = found};
    sw_status st = sw__filter_build(ix, params, &j.filter, "sw_search_batch");
    if (st != SW_OK) return st;
    if (!first_error_init(&j.err)) {
        sw__filter_free(ix, &j.filter);
        return sw__fail(SW_ENOMEM, "sw_search_batch: initialising a mutex");
    }
    sw__parallel(ix, threads, (nq + SEARCH_ROWS - 1) / SEARCH_ROWS, search_task, &j);
    pthread_mutex_destroy(&j.err.lock);
    sw__filter_free(ix, &j.filter);
    if (j.err.status == SW_OK) return SW_OK;
    return sw__fail(j.err.status, "sw_search_batch: query %zu: %s", j.err.row, j.err.msg);
}
