/*
 * test_delete.c — tombstones, true deletion, compaction and slot reuse.
 *
 * Deletion is where an HNSW index most easily goes quietly wrong.  A
 * deleted node that some list still points to is a dangling link; a node
 * whose only in-links came from deleted nodes is still stored but no search
 * reaches it; a deleted entry point leaves every search starting nowhere;
 * a recycled slot read by a search that began before the delete returns a
 * label that was never near the query, or one that was deleted.  None of
 * this shows on a small example, and most of it shows only as slowly
 * falling recall.  So the tests here look at consequences, the way the
 * update tests do:
 *
 *   - no deleted label is ever returned, by the approximate search or the
 *     exact one, and the exact search returns exactly min(k, live) results
 *     (so the counts and the result sets agree);
 *   - recall against the exact oracle after deleting 30% stays within a few
 *     points of the recall before, and every live node is still found by a
 *     query at its own vector (an unreachable node fails that, whatever the
 *     recall of random queries says);
 *   - sw_memory_usage stays flat over delete/insert cycles (the header
 *     promises slot reuse; without it memory grows by the churned share
 *     every cycle, which no 5% slack hides);
 *   - deleting everything, entry point included, leaves a working empty
 *     index that can be filled again;
 *   - tombstones and deletions survive sw_save / sw_load;
 *   - a search running during deletions never returns a label whose delete
 *     had returned before the search began (the header's promise, checked
 *     with a sequence number per deletion, not with timing), and every
 *     distance it reports belongs to the label beside it (a slot recycled
 *     while a search still reads it would pair one label with another's
 *     vector);
 *   - sw_delete and sw_compact starved of memory at each allocation in turn
 *     fail with SW_ENOMEM and leave the index exactly as it was (same probe
 *     results and same saved bytes, as test_alloc.c checks adds), and
 *     succeed once memory is back.
 *
 * After every phase the library's own graph checker runs (CHECK_GRAPH),
 * which sees dangling links and broken in-degree counts that no query
 * would show.  Thresholds are relative to what the same index did before
 * the deletions, not hard-coded recall values, so the tests assert on what
 * deletion does rather than on the data.
 *
 * Labels in these tests are small integers (below a "universe" the test
 * knows), so a byte per label says whether it is dead; a result outside
 * the universe is a label nobody added.
 *
 * The framework's CHECK macros are not thread-safe, so worker threads count
 * problems and keep the first message; the main thread asserts on those.
 * Sizes shrink under ThreadSanitizer, as in test_concurrent.c.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sw_test.h"
#include "testutil.h"

/* Release size, or the smaller one under ThreadSanitizer. */
#define DL_SIZE(release, tsan) ((size_t)(SW_TEST_UNDER_TSAN ? (tsan) : (release)))

/* ===================================================================== */
/* Helpers                                                               */
/* ===================================================================== */

static sw_options dl_opts(uint32_t dim)
{
    sw_options o = sw_options_default();

    o.dim = dim;
    return o;
}

static int in_results(const uint64_t *lab, size_t n, uint64_t label)
{
    for (size_t i = 0; i < n; i++)
        if (lab[i] == label)
            return 1;
    return 0;
}

/* A random permutation of 0..n-1, malloc'd. */
static uint64_t *dl_perm(size_t n, uint64_t seed)
{
    uint64_t *p = malloc((n ? n : 1) * sizeof *p);
    tu_rng r;

    if (p == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        p[i] = i;
    tu_rng_seed(&r, seed);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)tu_rng_below(&r, i);
        uint64_t t = p[i - 1];
        p[i - 1] = p[j];
        p[j] = t;
    }
    return p;
}

/*
 * For each query: sw_search (k, ef) and sw_search_exact (k) must return only
 * labels below `universe` that are not dead[], distinct, nearest first; the
 * exact search must return exactly min(k, sw_count) of them, and so must the
 * approximate one when `want_full` is set.  sw_search_batch over all the
 * queries must return only such labels too, in rows of the same length.
 */
static void check_only_live_at(const sw_index *ix, const float *queries, size_t nq, size_t k,
                               uint32_t ef, const unsigned char *dead, size_t universe,
                               int want_full, const char *what, const char *file, int line)
{
    uint64_t *lab = malloc(k * sizeof *lab);
    float *d = malloc(k * sizeof *d);
    size_t dim = sw_dim(ix), live = sw_count(ix), want = k < live ? k : live;
    size_t bad = 0, short_rows = 0;
    char first[256] = "";
    sw_search_params p = sw_search_params_default();

    p.ef = ef;
    if (lab == NULL || d == NULL) {
        sw_test_fail_at(file, line, "%s: out of memory", what);
        goto done;
    }
    for (size_t q = 0; q < nq; q++) {
        for (int exact = 0; exact < 2; exact++) {
            size_t nf = 0;
            sw_status st = exact ? sw_search_exact(ix, queries + q * dim, dim, k, &p, lab, d, &nf)
                                 : sw_search(ix, queries + q * dim, dim, k, &p, lab, d, &nf);

            if (st != SW_OK) {
                sw_test_fail_at(file, line, "%s: %s(query %zu): %s (%s)", what,
                                exact ? "sw_search_exact" : "sw_search", q,
                                sw_test_status_name(st), sw_last_error());
                goto done;
            }
            if ((exact || want_full) ? nf != want : nf > want) {
                if (short_rows++ == 0 && first[0] == '\0')
                    snprintf(first, sizeof first, "%s query %zu found %zu results, want %zu",
                             exact ? "exact" : "approximate", q, nf, want);
            }
            for (size_t i = 0; i < nf; i++) {
                const char *why = NULL;

                if (lab[i] >= universe)
                    why = "a label nobody added";
                else if (dead[lab[i]])
                    why = "a deleted label";
                else if (i > 0 && d[i] < d[i - 1])
                    why = "out of order";
                else if (in_results(lab, i, lab[i]))
                    why = "a repeated label";
                if (why != NULL && bad++ == 0)
                    snprintf(first, sizeof first, "%s query %zu result %zu is %s (%llu)",
                             exact ? "exact" : "approximate", q, i, why,
                             (unsigned long long)lab[i]);
            }
        }
    }
    /* sw_search_batch, on two threads, by the same rules. */
    {
        uint64_t *bl = malloc(nq * k * sizeof *bl);
        size_t *bf = malloc(nq * sizeof *bf);
        sw_status st = bl && bf ? sw_search_batch(ix, queries, nq, dim, k, &p, bl, NULL, bf, 2)
                                : SW_ENOMEM;

        if (st != SW_OK)
            sw_test_fail_at(file, line, "%s: sw_search_batch: %s (%s)", what,
                            sw_test_status_name(st), sw_last_error());
        for (size_t q = 0; st == SW_OK && q < nq; q++) {
            if (want_full ? bf[q] != want : bf[q] > want) {
                if (short_rows++ == 0 && first[0] == '\0')
                    snprintf(first, sizeof first, "batch row %zu found %zu results, want %zu",
                             q, bf[q], want);
            }
            for (size_t i = 0; i < bf[q] && i < k; i++) {
                uint64_t L = bl[q * k + i];

                if ((L >= universe || dead[L]) && bad++ == 0)
                    snprintf(first, sizeof first, "batch row %zu result %zu is %s (%llu)", q, i,
                             L >= universe ? "a label nobody added" : "a deleted label",
                             (unsigned long long)L);
            }
        }
        free(bl);
        free(bf);
    }
    if (bad != 0 || short_rows != 0)
        sw_test_fail_at(file, line, "%s: %zu bad results, %zu rows of the wrong length; first: %s",
                        what, bad, short_rows, first);
done:
    free(lab);
    free(d);
}

#define CHECK_ONLY_LIVE(ix, q, nq, k, ef, dead, universe, full, what)          \
    check_only_live_at((ix), (q), (nq), (k), (ef), (dead), (universe), (full), (what), \
                       __FILE__, __LINE__)

/*
 * Every label in live[0..n) searched at its own vector (rows of `data`
 * indexed by label) with k = 10 at ef: returns how many were not among the
 * results.  An unreachable node is missed whatever the ef.
 */
static size_t self_misses(const sw_index *ix, const float *data, const uint64_t *live, size_t n,
                          uint32_t ef)
{
    size_t dim = sw_dim(ix), missed = 0;
    sw_search_params p = sw_search_params_default();
    uint64_t lab[10];
    size_t nf;

    p.ef = ef;
    for (size_t i = 0; i < n; i++) {
        nf = 0;
        if (sw_search(ix, data + live[i] * dim, dim, 10, &p, lab, NULL, &nf) != SW_OK ||
            !in_results(lab, nf, live[i]))
            missed++;
    }
    return missed;
}

/* ===================================================================== */
/* Tombstones and the error codes                                        */
/* ===================================================================== */

TEST(delete_tombstones_hide_and_return)
{
    const uint32_t dim = 16;
    const size_t n = 1000, n_marked = 60, nq = 30;
    float *data = tu_clustered(n, dim, 16, 701, 702);
    float *queries = tu_clustered(nq, dim, 16, 701, 703);
    uint64_t *perm = dl_perm(n, 704);
    unsigned char *dead = calloc(n, 1);
    uint64_t *lab = malloc(n * sizeof *lab);
    float *dist = malloc(n * sizeof *dist);
    sw_options o = dl_opts(dim);
    sw_search_params p = sw_search_params_default();
    sw_index *ix;
    float out[16];
    size_t nf = 0, bad;

    REQUIRE(data && queries && perm && dead && lab && dist);
    ix = tu_build(&o, data, n);
    REQUIRE(ix != NULL);
    CHECK_EQ_UINT(sw_deleted_count(ix), 0);

    for (size_t i = 0; i < n_marked; i++) {
        CHECK_OK(sw_mark_deleted(ix, perm[i]));
        dead[perm[i]] = 1;
    }
    CHECK_EQ_UINT(sw_count(ix), n - n_marked);
    CHECK_EQ_UINT(sw_deleted_count(ix), n_marked);
    for (size_t i = 0; i < n_marked; i++) {
        CHECK_EQ_INT(sw_contains(ix, perm[i]), 0);
        CHECK_EQ_INT(sw_is_deleted(ix, perm[i]), 1);
        CHECK_FAILS_WITH(sw_get(ix, perm[i], out, dim), SW_ENOTFOUND);
    }
    for (size_t i = n_marked; i < n; i += 37) {
        CHECK_EQ_INT(sw_contains(ix, perm[i]), 1);
        CHECK_EQ_INT(sw_is_deleted(ix, perm[i]), 0);
    }

    /* Marking again changes nothing. */
    for (size_t i = 0; i < n_marked; i += 3)
        CHECK_OK(sw_mark_deleted(ix, perm[i]));
    CHECK_EQ_UINT(sw_count(ix), n - n_marked);
    CHECK_EQ_UINT(sw_deleted_count(ix), n_marked);

    /* Hidden from every search: queries at the marked vectors themselves
     * (where they would be first), and random ones. */
    {
        float *at_marked = malloc(n_marked * dim * sizeof *at_marked);

        REQUIRE(at_marked != NULL);
        for (size_t i = 0; i < n_marked; i++)
            memcpy(at_marked + i * dim, data + perm[i] * dim, dim * sizeof *at_marked);
        CHECK_ONLY_LIVE(ix, at_marked, n_marked, 20, 200, dead, n, 1, "marked, at their vectors");
        CHECK_ONLY_LIVE(ix, queries, nq, 50, 400, dead, n, 1, "marked, random queries");
        free(at_marked);
    }
    /* k as large as the index: every live label once, no marked one. */
    p.ef = (uint32_t)n;
    for (int exact = 1; exact >= 0; exact--) {
        unsigned char *seen = calloc(n, 1);

        REQUIRE(seen != NULL);
        nf = 0;
        if (exact)
            CHECK_OK(sw_search_exact(ix, queries, dim, n, NULL, lab, dist, &nf));
        else
            CHECK_OK(sw_search(ix, queries, dim, n, &p, lab, dist, &nf));
        CHECK_EQ_UINT(nf, n - n_marked);
        bad = 0;
        for (size_t i = 0; i < nf; i++) {
            bad += lab[i] >= n || dead[lab[i]] || seen[lab[i]];
            if (lab[i] < n)
                seen[lab[i]] = 1;
        }
        if (bad != 0)
            sw_test_fail_at(__FILE__, __LINE__, "%s search with k = %zu: %zu results repeated, "
                            "unknown or tombstoned",
                            exact ? "exact" : "approximate", n, bad);
        free(seen);
    }

    /* Unmark the first half: back, and found at their own vectors. */
    for (size_t i = 0; i < n_marked / 2; i++) {
        uint64_t L = perm[i], got = 0;
        float d0 = -1;

        CHECK_OK(sw_unmark_deleted(ix, L));
        dead[L] = 0;
        CHECK_EQ_INT(sw_contains(ix, L), 1);
        CHECK_EQ_INT(sw_is_deleted(ix, L), 0);
        CHECK_OK(sw_get(ix, L, out, dim));
        CHECK(memcmp(out, data + L * dim, sizeof out) == 0);
        CHECK_OK(sw_search_exact(ix, data + L * dim, dim, 1, NULL, &got, &d0, &nf));
        if (nf != 1 || got != L || d0 != 0)
            sw_test_fail_at(__FILE__, __LINE__,
                            "unmarked label %llu: exact search at its vector gives %llu at %g",
                            (unsigned long long)L, (unsigned long long)got, (double)d0);
    }
    CHECK_EQ_UINT(sw_count(ix), n - n_marked + n_marked / 2);
    CHECK_EQ_UINT(sw_deleted_count(ix), n_marked - n_marked / 2);
    {
        uint64_t back[30];
        size_t m = n_marked / 2 < 30 ? n_marked / 2 : 30;

        memcpy(back, perm, m * sizeof *back);
        CHECK(self_misses(ix, data, back, m, 100) == 0);
    }
    /* Unmarking a label that is not marked leaves it as it is. */
    CHECK_OK(sw_unmark_deleted(ix, perm[0]));
    CHECK_OK(sw_unmark_deleted(ix, perm[n - 1]));
    CHECK_EQ_UINT(sw_count(ix), n - n_marked + n_marked / 2);
    CHECK_EQ_UINT(sw_deleted_count(ix), n_marked - n_marked / 2);
    CHECK_ONLY_LIVE(ix, queries, nq, 20, 200, dead, n, 1, "after unmarking half");

    /* sw_add of a tombstoned label: an update that lifts the tombstone. */
    {
        uint64_t L = perm[n_marked - 1], got = 0;
        float B[16];
        float d0 = -1;

        for (size_t j = 0; j < dim; j++)
            B[j] = -50.0f * data[L * dim + j];
        CHECK_OK(sw_add(ix, L, B, dim));
        dead[L] = 0;
        CHECK_EQ_INT(sw_contains(ix, L), 1);
        CHECK_EQ_INT(sw_is_deleted(ix, L), 0);
        CHECK_EQ_UINT(sw_count(ix), n - n_marked + n_marked / 2 + 1);
        CHECK_EQ_UINT(sw_deleted_count(ix), n_marked - n_marked / 2 - 1);
        CHECK_OK(sw_get(ix, L, out, dim));
        CHECK(memcmp(out, B, sizeof B) == 0);
        CHECK_OK(sw_search_exact(ix, B, dim, 1, NULL, &got, &d0, &nf));
        CHECK(nf == 1 && got == L && d0 == 0);
        CHECK_OK(sw_search(ix, B, dim, 1, NULL, &got, &d0, &nf));
        CHECK(nf == 1 && got == L && d0 == 0);
        /* and no longer at its old place */
        CHECK_OK(sw_search_exact(ix, data + L * dim, dim, 10, NULL, lab, dist, &nf));
        CHECK(!in_results(lab, nf, L));
    }

    /* sw_delete of a tombstoned label: gone for good. */
    {
        uint64_t L = perm[n_marked - 2];
        size_t live = sw_count(ix), marked = sw_deleted_count(ix);

        CHECK_EQ_INT(sw_is_deleted(ix, L), 1);
        CHECK_OK(sw_delete(ix, L));
        CHECK_EQ_UINT(sw_count(ix), live);
        CHECK_EQ_UINT(sw_deleted_count(ix), marked - 1);
        CHECK_EQ_INT(sw_is_deleted(ix, L), 0);
        CHECK_EQ_INT(sw_contains(ix, L), 0);
        CHECK_FAILS_WITH(sw_unmark_deleted(ix, L), SW_ENOTFOUND);
        CHECK_FAILS_WITH(sw_mark_deleted(ix, L), SW_ENOTFOUND);
        CHECK_FAILS_WITH(sw_delete(ix, L), SW_ENOTFOUND);
        CHECK_FAILS_WITH(sw_get(ix, L, out, dim), SW_ENOTFOUND);
        CHECK_EQ_UINT(sw_count(ix), live);
        CHECK_EQ_UINT(sw_deleted_count(ix), marked - 1);
    }
    /* sw_delete of a live label. */
    {
        uint64_t L = perm[n - 2];
        size_t live = sw_count(ix), marked = sw_deleted_count(ix);

        CHECK_OK(sw_delete(ix, L));
        dead[L] = 1;
        CHECK_EQ_UINT(sw_count(ix), live - 1);
        CHECK_EQ_UINT(sw_deleted_count(ix), marked);
        CHECK_EQ_INT(sw_contains(ix, L), 0);
        CHECK_EQ_INT(sw_is_deleted(ix, L), 0);
        CHECK_FAILS_WITH(sw_delete(ix, L), SW_ENOTFOUND);
    }

    /* The error codes; none of them changes anything. */
    {
        size_t live = sw_count(ix), marked = sw_deleted_count(ix);
        const uint64_t unknown = 1000000007ull;

        CHECK_FAILS_WITH(sw_mark_deleted(NULL, 1), SW_ENULL);
        CHECK_FAILS_WITH(sw_unmark_deleted(NULL, 1), SW_ENULL);
        CHECK_FAILS_WITH(sw_delete(NULL, 1), SW_ENULL);
        CHECK_FAILS_WITH(sw_compact(NULL, 1), SW_ENULL);
        CHECK_EQ_INT(sw_is_deleted(NULL, 1), 0);
        CHECK_EQ_UINT(sw_deleted_count(NULL), 0);
        CHECK_FAILS_WITH(sw_mark_deleted(ix, unknown), SW_ENOTFOUND);
        CHECK_FAILS_WITH(sw_unmark_deleted(ix, unknown), SW_ENOTFOUND);
        CHECK_FAILS_WITH(sw_delete(ix, unknown), SW_ENOTFOUND);
        CHECK_FAILS_WITH(sw_mark_deleted(ix, SW_NO_LABEL), SW_ENOTFOUND);
        CHECK_EQ_INT(sw_is_deleted(ix, unknown), 0);
        CHECK_FAILS_WITH(sw_compact(ix, (size_t)SW_MAX_THREADS + 1), SW_EINVAL);
        CHECK_EQ_UINT(sw_count(ix), live);
        CHECK_EQ_UINT(sw_deleted_count(ix), marked);
        CHECK_ONLY_LIVE(ix, queries, nq, 20, 200, dead, n, 1, "after the refused calls");
    }
    CHECK_GRAPH_AT(ix, "tombstones");

    /* Compact: the tombstones become deletions; the counts of live labels
     * do not move; a second compact is a no-op. */
    {
        size_t live = sw_count(ix);

        CHECK_OK(sw_compact(ix, 1));
        CHECK_EQ_UINT(sw_count(ix), live);
        CHECK_EQ_UINT(sw_deleted_count(ix), 0);
        for (size_t i = n_marked / 2; i < n_marked - 2; i++) {
            CHECK_EQ_INT(sw_is_deleted(ix, perm[i]), 0);
            CHECK_EQ_INT(sw_contains(ix, perm[i]), 0);
            CHECK_FAILS_WITH(sw_unmark_deleted(ix, perm[i]), SW_ENOTFOUND);
        }
        CHECK_OK(sw_compact(ix, 1));
        CHECK_OK(sw_compact(ix, 0));
        CHECK_EQ_UINT(sw_count(ix), live);
        CHECK_ONLY_LIVE(ix, queries, nq, 20, 200, dead, n, 1, "after compact");
        CHECK_GRAPH_AT(ix, "after compact");
    }
    sw_free(ix);
    free(data);
    free(queries);
    free(perm);
    free(dead);
    free(lab);
    free(dist);
}

/* A one-node and a two-node index: the entry point is the node deleted. */
TEST(delete_tiny_indexes)
{
    sw_options o = dl_opts(2);
    sw_index *ix = NULL;
    const float a[2] = {1, 1}, b[2] = {5, 5};
    uint64_t lab[2];
    float d[2];
    size_t nf = 7;

    REQUIRE_OK(sw_create(&o, &ix));
    /* An empty index has nothing to delete or compact. */
    CHECK_FAILS_WITH(sw_delete(ix, 1), SW_ENOTFOUND);
    CHECK_OK(sw_compact(ix, 1));
    CHECK_OK(sw_add(ix, 1, a, 2));
    CHECK_OK(sw_delete(ix, 1));
    CHECK_EQ_UINT(sw_count(ix), 0);
    CHECK_OK(sw_search(ix, a, 2, 2, NULL, lab, d, &nf));
    CHECK_EQ_UINT(nf, 0);
    CHECK_GRAPH_AT(ix, "one node deleted");
    CHECK_OK(sw_add(ix, 1, b, 2));
    CHECK_OK(sw_add(ix, 2, a, 2));
    CHECK_EQ_UINT(sw_count(ix), 2);
    CHECK_OK(sw_delete(ix, 1));
    CHECK_OK(sw_search(ix, b, 2, 2, NULL, lab, d, &nf));
    CHECK(nf == 1 && lab[0] == 2);
    CHECK_OK(sw_delete(ix, 2));
    CHECK_OK(sw_search(ix, b, 2, 2, NULL, lab, d, &nf));
    CHECK_EQ_UINT(nf, 0);
    CHECK_OK(sw_search_exact(ix, b, 2, 2, NULL, lab, d, &nf));
    CHECK_EQ_UINT(nf, 0);
    /* A one-node index whose only node is a tombstone. */
    CHECK_OK(sw_add(ix, 3, a, 2));
    CHECK_OK(sw_mark_deleted(ix, 3));
    CHECK_EQ_UINT(sw_count(ix), 0);
    CHECK_EQ_UINT(sw_deleted_count(ix), 1);
    CHECK_OK(sw_search(ix, a, 2, 2, NULL, lab, d, &nf));
    CHECK_EQ_UINT(nf, 0);
    CHECK_OK(sw_compact(ix, 1));
    CHECK_EQ_UINT(sw_deleted_count(ix), 0);
    CHECK_EQ_INT(sw_is_deleted(ix, 3), 0);
    CHECK_OK(sw_add(ix, 4, b, 2));
    CHECK_OK(sw_search(ix, a, 2, 2, NULL, lab, d, &nf));
    CHECK(nf == 1 && lab[0] == 4);
    CHECK_GRAPH(ix);
    sw_free(ix);
}

/* ===================================================================== */
/* Recall after deleting 30%                                             */
/* ===================================================================== */

/*
 * One index of 4,000 clustered vectors, saved, and three copies loaded from
 * the file: 30% deleted with sw_delete one by one, 30% tombstoned and
 * compacted on one thread, the same on two threads.  Each must keep
 * recall@10 at ef = 100 within 0.05 of the full index's and at 0.9 or more,
 * find every live node at its own vector (allowing a miss in 200), return
 * no deleted label, and pass the graph checker.
 */
TEST(delete_recall_holds_after_deleting_30_percent)
{
    const uint32_t dim = 24;
    const size_t n = DL_SIZE(4000, 1200), nq = DL_SIZE(200, 50);
    const size_t n_del = n * 3 / 10;
    float *data = tu_clustered(n, dim, 32, 711, 712);
    float *queries = tu_clustered(nq, dim, 32, 711, 713);
    uint64_t *perm = dl_perm(n, 714);
    unsigned char *dead = calloc(n, 1);
    sw_options o = dl_opts(dim);
    sw_index *base;
    tu_recall before, before_low;
    char dir[256], path[320];
    static const char *const how[] = {"sw_delete", "mark + sw_compact(1)",
                                      "mark + sw_compact(2)"};

    REQUIRE(data && queries && perm && dead);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/base.swi", dir);
    base = tu_build(&o, data, n);
    REQUIRE(base != NULL);
    before = tu_measure_recall(base, queries, nq, 10, 100);
    before_low = tu_measure_recall(base, queries, nq, 10, 20);
    CHECK_OK(sw_save(base, path));
    for (size_t i = 0; i < n_del; i++)
        dead[perm[i]] = 1;

    for (int v = 0; v < 3; v++) {
        sw_index *ix = NULL;
        tu_recall after, after_low;
        size_t missed;

        /* sw_delete works on the built index itself; the others on copies. */
        if (v == 0) {
            ix = base;
        } else if (sw_load(path, NULL, &ix) != SW_OK) {
            sw_test_fail_at(__FILE__, __LINE__, "sw_load: %s", sw_last_error());
            continue;
        }
        if (SW_TEST_UNDER_TSAN && v < 2) {
            /* single-threaded, and slow there: only the threaded compact */
            if (ix != base)
                sw_free(ix);
            continue;
        }
        for (size_t i = 0; i < n_del; i++) {
            sw_status st = v == 0 ? sw_delete(ix, perm[i]) : sw_mark_deleted(ix, perm[i]);

            if (st != SW_OK) {
                sw_test_fail_at(__FILE__, __LINE__, "%s: label %llu: %s (%s)", how[v],
                                (unsigned long long)perm[i], sw_test_status_name(st),
                                sw_last_error());
                break;
            }
        }
        if (v > 0) {
            CHECK_EQ_UINT(sw_deleted_count(ix), n_del);
            CHECK_EQ_UINT(sw_count(ix), n - n_del);
            /* Tombstones alone: already hidden, recall still holds. */
            after = tu_measure_recall(ix, queries, nq, 10, 100);
            NOTE("%s: recall@10 at ef=100 with %zu tombstones %.4f", how[v], n_del,
                 after.tie_aware);
            CHECK(after.tie_aware >= before.tie_aware - 0.05);
            CHECK_OK(sw_compact(ix, v == 1 ? 1 : 2));
        }
        CHECK_EQ_UINT(sw_count(ix), n - n_del);
        CHECK_EQ_UINT(sw_deleted_count(ix), 0);
        CHECK_GRAPH_AT(ix, how[v]);
        CHECK_ONLY_LIVE(ix, queries, nq, 10, 100, dead, n, 1, how[v]);
        CHECK_ONLY_LIVE(ix, data, 50, 10, 64, dead, n, 1, how[v]);
        after = tu_measure_recall(ix, queries, nq, 10, 100);
        after_low = tu_measure_recall(ix, queries, nq, 10, 20);
        missed = self_misses(ix, data, perm + n_del, n - n_del, 100);
        NOTE("%s: recall@10 at ef=100 (ef=20) before %.4f (%.4f), after deleting %zu of %zu "
             "%.4f (%.4f); %zu of %zu live nodes missed at their own vectors",
             how[v], before.tie_aware, before_low.tie_aware, n_del, n, after.tie_aware,
             after_low.tie_aware, missed, n - n_del);
        CHECK(after.tie_aware >= 0.9);
        CHECK(after.tie_aware >= before.tie_aware - 0.05);
        /* At a small ef the walk has little slack, so a graph weakened by a poor
         * repair shows here first. */
        CHECK(after_low.tie_aware >= before_low.tie_aware - 0.03);
        CHECK(missed * 200 <= n - n_del);
        for (size_t i = 0; i < n_del; i += 7) {
            CHECK_EQ_INT(sw_contains(ix, perm[i]), 0);
            CHECK_EQ_INT(sw_is_deleted(ix, perm[i]), 0);
        }
        if (ix != base)
            sw_free(ix);
    }
    sw_free(base);
    tu_rmtree(dir);
    free(data);
    free(queries);
    free(perm);
    free(dead);
}

/* ===================================================================== */
/* Save and load                                                         */
/* ===================================================================== */

TEST(delete_survives_save_and_load)
{
    SKIP_UNDER_TSAN();
    const uint32_t dim = 16;
    const size_t n = 1500, n_mark = 100, n_del = 100, nq = 30;
    float *data = tu_clustered(n, dim, 16, 721, 722);
    float *queries = tu_clustered(nq, dim, 16, 721, 723);
    uint64_t *perm = dl_perm(n, 724);
    unsigned char *dead = calloc(n, 1);
    const uint64_t *marked = perm, *deleted = perm + n_mark;
    sw_options o = dl_opts(dim);
    sw_index *ix, *a = NULL, *b = NULL;
    char dir[256], pa[320], pb[320], why[128];
    tu_snapshot s0, s1;
    size_t live;

    REQUIRE(data && queries && perm && dead);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(pa, sizeof pa, "%s/a.swi", dir);
    snprintf(pb, sizeof pb, "%s/b.swi", dir);
    ix = tu_build(&o, data, n);
    REQUIRE(ix != NULL);
    for (size_t i = 0; i < n_mark; i++) {
        CHECK_OK(sw_mark_deleted(ix, marked[i]));
        dead[marked[i]] = 1;
    }
    for (size_t i = 0; i < n_del; i++) {
        CHECK_OK(sw_delete(ix, deleted[i]));
        dead[deleted[i]] = 1;
    }
    live = n - n_mark - n_del;
    CHECK_EQ_UINT(sw_count(ix), live);
    CHECK_EQ_UINT(sw_deleted_count(ix), n_mark);
    CHECK_OK(sw_save(ix, pa));
    REQUIRE_OK(sw_load(pa, NULL, &a));

    /* The loaded index: same counts, same tombstones, same answers. */
    CHECK_EQ_UINT(sw_count(a), live);
    CHECK_EQ_UINT(sw_deleted_count(a), n_mark);
    for (size_t i = 0; i < n_mark; i++) {
        CHECK_EQ_INT(sw_is_deleted(a, marked[i]), 1);
        CHECK_EQ_INT(sw_contains(a, marked[i]), 0);
    }
    for (size_t i = 0; i < n_del; i++) {
        CHECK_EQ_INT(sw_is_deleted(a, deleted[i]), 0);
        CHECK_EQ_INT(sw_contains(a, deleted[i]), 0);
        CHECK_FAILS_WITH(sw_mark_deleted(a, deleted[i]), SW_ENOTFOUND);
    }
    CHECK_ONLY_LIVE(a, queries, nq, 20, 200, dead, n, 1, "loaded");
    CHECK_ONLY_LIVE(a, data, 100, 10, 100, dead, n, 1, "loaded, at stored vectors");
    CHECK_GRAPH_AT(a, "loaded");
    if (tu_snapshot_take(&s0, ix, queries, nq, 10, NULL) == 0) {
        if (tu_snapshot_take(&s1, a, queries, nq, 10, NULL) == 0) {
            if (!tu_snapshot_equal(&s0, &s1, why, sizeof why))
                sw_test_fail_at(__FILE__, __LINE__, "loaded index answers differently: %s", why);
            tu_snapshot_free(&s1);
        }
        tu_snapshot_free(&s0);
    }
    /* A loaded tombstone can still be lifted. */
    {
        uint64_t L = marked[0], got = 0;
        size_t nf = 0;

        CHECK_OK(sw_unmark_deleted(a, L));
        CHECK_EQ_INT(sw_contains(a, L), 1);
        CHECK_OK(sw_search_exact(a, data + L * dim, dim, 1, NULL, &got, NULL, &nf));
        CHECK(nf == 1 && got == L);
        CHECK_OK(sw_mark_deleted(a, L));
        CHECK_EQ_UINT(sw_deleted_count(a), n_mark);
    }

    /* Compact the loaded copy, save and load again: every one gone. */
    CHECK_OK(sw_compact(a, 1));
    CHECK_EQ_UINT(sw_count(a), live);
    CHECK_EQ_UINT(sw_deleted_count(a), 0);
    CHECK_OK(sw_save(a, pb));
    sw_free(a);
    REQUIRE_OK(sw_load(pb, NULL, &b));
    CHECK_EQ_UINT(sw_count(b), live);
    CHECK_EQ_UINT(sw_deleted_count(b), 0);
    for (size_t i = 0; i < n_mark + n_del; i++) {
        CHECK_EQ_INT(sw_is_deleted(b, perm[i]), 0);
        CHECK_EQ_INT(sw_contains(b, perm[i]), 0);
    }
    CHECK_ONLY_LIVE(b, queries, nq, 20, 200, dead, n, 1, "compacted and reloaded");
    {
        float *at_dead = malloc(50 * dim * sizeof *at_dead);

        REQUIRE(at_dead != NULL);
        for (size_t i = 0; i < 50; i++)
            memcpy(at_dead + i * dim, data + perm[i * 4] * dim, dim * sizeof *at_dead);
        CHECK_ONLY_LIVE(b, at_dead, 50, 10, 100, dead, n, 1,
                        "compacted and reloaded, at deleted vectors");
        free(at_dead);
    }
    CHECK(self_misses(b, data, perm + n_mark + n_del, live, 100) * 200 <= live);
    CHECK_GRAPH_AT(b, "compacted and reloaded");
    /* The reloaded index still takes adds, and a deleted label comes back
     * as a fresh insert. */
    CHECK_OK(sw_add(b, deleted[0], data + deleted[0] * dim, dim));
    CHECK_EQ_UINT(sw_count(b), live + 1);
    CHECK_EQ_INT(sw_contains(b, deleted[0]), 1);
    CHECK_GRAPH_AT(b, "re-added after reload");
    sw_free(b);
    sw_free(ix);
    tu_rmtree(dir);
    free(data);
    free(queries);
    free(perm);
    free(dead);
}

/* ===================================================================== */
/* Slot reuse: memory stays flat                                         */
/* ===================================================================== */

/*
 * 2,000 vectors, then `cycles` rounds of: delete `per` random live labels
 * (sw_delete, or sw_mark_deleted and one sw_compact), add `per` new labels.
 * The index never holds more than 2,000 live vectors, so with slots reused
 * its memory must stop growing; without reuse it would grow by a tenth
 * every round.
 */
static void churn_memory(int use_compact, const char *what)
{
    const uint32_t dim = 16;
    const size_t n = 2000, per = 200, cycles = 20, nq = 100;
    const size_t universe = n + per * cycles;
    float *data = tu_clustered(universe, dim, 32, 731, 732);
    float *queries = tu_clustered(nq, dim, 32, 731, 733);
    unsigned char *dead = calloc(universe, 1);
    uint64_t *live = malloc(n * sizeof *live);
    size_t mem[20];
    size_t n_live = n, next = n, worst = 1;
    sw_options o = dl_opts(dim);
    sw_index *ix = NULL;
    tu_recall before, after;
    tu_rng r;

    if (data == NULL || queries == NULL || dead == NULL || live == NULL) {
        sw_test_fail_at(__FILE__, __LINE__, "out of memory");
        goto done;
    }
    ix = tu_build(&o, data, n);
    if (ix == NULL)
        goto done;
    for (size_t i = 0; i < n; i++)
        live[i] = i;
    before = tu_measure_recall(ix, queries, nq, 10, 100);
    tu_rng_seed(&r, use_compact ? 735 : 734);
    for (size_t c = 0; c < cycles; c++) {
        for (size_t j = 0; j < per; j++) {
            size_t at = (size_t)tu_rng_below(&r, n_live);
            uint64_t L = live[at];
            sw_status st = use_compact ? sw_mark_deleted(ix, L) : sw_delete(ix, L);

            if (st != SW_OK) {
                sw_test_fail_at(__FILE__, __LINE__, "%s: cycle %zu: deleting %llu: %s (%s)",
                                what, c, (unsigned long long)L, sw_test_status_name(st),
                                sw_last_error());
                goto done;
            }
            live[at] = live[--n_live];
            dead[L] = 1;
        }
        if (use_compact)
            CHECK_OK(sw_compact(ix, 1));
        CHECK_EQ_UINT(sw_count(ix), n - per);
        CHECK_EQ_UINT(sw_deleted_count(ix), 0);
        for (size_t j = 0; j < per; j++, next++) {
            sw_status st = sw_add(ix, next, data + next * dim, dim);

            if (st != SW_OK) {
                sw_test_fail_at(__FILE__, __LINE__, "%s: cycle %zu: adding %zu: %s (%s)",
                                what, c, next, sw_test_status_name(st), sw_last_error());
                goto done;
            }
            live[n_live++] = next;
        }
        CHECK_EQ_UINT(sw_count(ix), n);
        mem[c] = sw_memory_usage(ix);
        if (c % 5 == 4)
            CHECK_GRAPH_AT(ix, what);
        if (sw_test_failed())
            goto done;
    }
    for (size_t c = 2; c < cycles; c++)
        if (mem[c] > mem[worst])
            worst = c;
    NOTE("%s: memory %zu B after 1 round, %zu after 2, %zu after %zu (largest after round 2: "
         "%zu, round %zu)",
         what, mem[0], mem[1], mem[cycles - 1], cycles, mem[worst], worst + 1);
    if ((double)mem[worst] > (double)mem[1] * 1.05)
        sw_test_fail_at(__FILE__, __LINE__,
                        "%s: memory grows with delete/insert cycles: %zu B after round 2, %zu "
                        "after round %zu",
                        what, mem[1], mem[worst], worst + 1);
    CHECK_GRAPH_AT(ix, what);
    CHECK_ONLY_LIVE(ix, queries, nq, 10, 100, dead, universe, 1, what);
    after = tu_measure_recall(ix, queries, nq, 10, 100);
    {
        size_t missed = self_misses(ix, data, live, n_live, 100);

        NOTE("%s: recall@10 at ef=100 before %.4f, after %zu rounds %.4f; %zu of %zu live "
             "nodes missed at their own vectors",
             what, before.tie_aware, cycles, after.tie_aware, missed, n_live);
        CHECK(missed * 200 <= n_live);
    }
    CHECK(after.tie_aware >= 0.9);
    CHECK(after.tie_aware >= before.tie_aware - 0.05);
done:
    sw_free(ix);
    free(data);
    free(queries);
    free(dead);
    free(live);
}

TEST(delete_slot_reuse_keeps_memory_flat)
{
    SKIP_UNDER_TSAN();
    churn_memory(0, "sw_delete churn");
}

TEST(delete_compact_slot_reuse_keeps_memory_flat)
{
    SKIP_UNDER_TSAN();
    churn_memory(1, "mark + compact churn");
}

/* ===================================================================== */
/* Deleting everything                                                   */
/* ===================================================================== */

/*
 * Every label deleted, in random order, so the entry point goes too at
 * some point (and again after it has moved).  After every 50 and with one
 * node left: the counts, only live results, and a full row from both the
 * exact and the approximate search (a graph split by a careless repair
 * gives short rows).  Then an empty index that answers with nothing, and
 * fills again to normal recall.  `tombstones`: mark all first (searches
 * over an index of nothing but tombstones), then compact.
 */
static void delete_all(int tombstones, const char *what)
{
    const uint32_t dim = 16;
    const size_t n = 300, nq = 20, refill = 300;
    float *data = tu_clustered(n, dim, 8, 741, 742);
    float *queries = tu_clustered(nq, dim, 8, 741, 743);
    float *fresh = tu_clustered(refill, dim, 8, 741, 744);
    uint64_t *perm = dl_perm(n, tombstones ? 746 : 745);
    unsigned char *dead = calloc(n + 1000 + refill, 1);
    sw_options o = dl_opts(dim);
    sw_index *ix = NULL;
    uint64_t lab[10];
    float d[10];
    size_t nf;

    if (data == NULL || queries == NULL || fresh == NULL || perm == NULL || dead == NULL) {
        sw_test_fail_at(__FILE__, __LINE__, "out of memory");
        goto done;
    }
    ix = tu_build(&o, data, n);
    if (ix == NULL)
        goto done;
    for (size_t i = 0; i < n; i++) {
        sw_status st = tombstones ? sw_mark_deleted(ix, perm[i]) : sw_delete(ix, perm[i]);
        size_t left = n - i - 1;

        if (st != SW_OK) {
            sw_test_fail_at(__FILE__, __LINE__, "%s: deleting %llu (%zu of %zu): %s (%s)",
                            what, (unsigned long long)perm[i], i + 1, n,
                            sw_test_status_name(st), sw_last_error());
            goto done;
        }
        dead[perm[i]] = 1;
        if (i % 50 == 49 || left <= 1) {
            char at[96];

            snprintf(at, sizeof at, "%s, %zu left", what, left);
            CHECK_EQ_UINT(sw_count(ix), left);
            CHECK_EQ_UINT(sw_deleted_count(ix), tombstones ? i + 1 : 0);
            CHECK_ONLY_LIVE(ix, queries, nq, 10, 64, dead, n, 1, at);
            CHECK_ONLY_LIVE(ix, data, 20, 10, 64, dead, n, 1, at);
            if (!tombstones)
                CHECK_GRAPH_AT(ix, at);
            if (left == 1) {
                nf = 0;
                CHECK_OK(sw_search(ix, queries, dim, 10, NULL, lab, d, &nf));
                CHECK(nf == 1 && lab[0] == perm[n - 1]);
            }
        }
        if (sw_test_failed())
            goto done;
    }
    if (tombstones) {
        CHECK_EQ_UINT(sw_deleted_count(ix), n);
        CHECK_OK(sw_compact(ix, 1));
        CHECK_EQ_UINT(sw_deleted_count(ix), 0);
    }
    CHECK_EQ_UINT(sw_count(ix), 0);
    nf = 99;
    CHECK_OK(sw_search(ix, queries, dim, 10, NULL, lab, d, &nf));
    CHECK_EQ_UINT(nf, 0);
    nf = 99;
    CHECK_OK(sw_search_exact(ix, queries, dim, 10, NULL, lab, d, &nf));
    CHECK_EQ_UINT(nf, 0);
    for (size_t i = 0; i < n; i += 10) {
        CHECK_EQ_INT(sw_contains(ix, i), 0);
        CHECK_EQ_INT(sw_is_deleted(ix, i), 0);
    }
    CHECK_FAILS_WITH(sw_delete(ix, perm[0]), SW_ENOTFOUND);
    CHECK_GRAPH_AT(ix, what);

    /* Fill again, with new labels. */
    for (size_t i = 0; i < refill; i++) {
        sw_status st = sw_add(ix, 1000 + i, fresh + i * dim, dim);

        if (st != SW_OK) {
            sw_test_fail_at(__FILE__, __LINE__, "%s: refilling, add %zu: %s (%s)", what, i,
                            sw_test_status_name(st), sw_last_error());
            goto done;
        }
    }
    CHECK_EQ_UINT(sw_count(ix), refill);
    CHECK_GRAPH_AT(ix, what);
    {
        tu_recall rec = tu_measure_recall(ix, queries, nq, 10, 100);
        size_t missed = 0;

        NOTE("%s: recall@10 at ef=100 after refilling %.4f", what, rec.tie_aware);
        CHECK(rec.tie_aware >= 0.95);
        /* every refilled vector found under its new label */
        for (size_t i = 0; i < refill; i++) {
            uint64_t got[10];
            size_t m = 0;

            if (sw_search(ix, fresh + i * dim, dim, 10, NULL, got, NULL, &m) != SW_OK ||
                !in_results(got, m, 1000 + i))
                missed++;
        }
        CHECK(missed * 100 <= refill);
    }
done:
    sw_free(ix);
    free(data);
    free(queries);
    free(fresh);
    free(perm);
    free(dead);
}

TEST(delete_everything_one_by_one)
{
    delete_all(0, "sw_delete all");
}

TEST(delete_everything_by_tombstones)
{
    delete_all(1, "mark all, compact");
}

/* ===================================================================== */
/* Delete, then add the same label again                                 */
/* ===================================================================== */

TEST(delete_then_readd_same_label)
{
    SKIP_UNDER_TSAN();
    const uint32_t dim = 16;
    const size_t n = 1500, n_re = 150, nq = 100;
    float *data = tu_clustered(n, dim, 16, 751, 752);
    float *fresh = tu_clustered(n_re + 6, dim, 16, 751, 753); /* rows n_re.. for one label */
    float *queries = tu_clustered(nq, dim, 16, 751, 754);
    float *now = malloc(n * dim * sizeof *now); /* each label's current vector */
    uint64_t *perm = dl_perm(n, 755);
    unsigned char *dead = calloc(n, 1);
    sw_options o = dl_opts(dim);
    sw_index *ix;
    float out[16];
    uint64_t lab[10];
    float d[10];
    size_t nf = 0, missed = 0;
    tu_recall before, after;

    REQUIRE(data && fresh && queries && now && perm && dead);
    memcpy(now, data, n * dim * sizeof *now);
    ix = tu_build(&o, data, n);
    REQUIRE(ix != NULL);
    before = tu_measure_recall(ix, queries, nq, 10, 100);

    /* A label moved far away by delete + add: found at the new place only. */
    {
        const uint64_t L = perm[0];
        float B[16];

        for (size_t j = 0; j < dim; j++)
            B[j] = -50.0f * data[L * dim + j];
        CHECK_OK(sw_delete(ix, L));
        CHECK_EQ_INT(sw_contains(ix, L), 0);
        CHECK_EQ_UINT(sw_count(ix), n - 1);
        CHECK_OK(sw_add(ix, L, B, dim));
        memcpy(now + L * dim, B, sizeof B);
        CHECK_EQ_INT(sw_contains(ix, L), 1);
        CHECK_EQ_INT(sw_is_deleted(ix, L), 0);
        CHECK_EQ_UINT(sw_count(ix), n);
        CHECK_OK(sw_get(ix, L, out, dim));
        CHECK(memcmp(out, B, sizeof B) == 0);
        CHECK_OK(sw_search(ix, B, dim, 10, NULL, lab, d, &nf));
        CHECK(nf > 0 && lab[0] == L && d[0] == 0);
        CHECK_OK(sw_search(ix, data + L * dim, dim, 10, NULL, lab, d, &nf));
        CHECK(!in_results(lab, nf, L));
        CHECK_OK(sw_search_exact(ix, data + L * dim, dim, 10, NULL, lab, d, &nf));
        CHECK(!in_results(lab, nf, L));
    }
    /* The same label through several delete / add rounds. */
    {
        const uint64_t L = perm[1];

        for (int round = 0; round < 6; round++) {
            const float *v = round % 2 ? fresh + (n_re + (size_t)round) * dim : data + L * dim;

            CHECK_OK(sw_delete(ix, L));
            CHECK_EQ_INT(sw_contains(ix, L), 0);
            CHECK_FAILS_WITH(sw_delete(ix, L), SW_ENOTFOUND);
            CHECK_OK(sw_add(ix, L, v, dim));
            CHECK_EQ_INT(sw_contains(ix, L), 1);
            memcpy(now + L * dim, v, dim * sizeof *now);
        }
        CHECK_EQ_UINT(sw_count(ix), n);
        CHECK_OK(sw_search(ix, now + L * dim, dim, 1, NULL, lab, d, &nf));
        CHECK(nf == 1 && lab[0] == L && d[0] == 0);
    }
    /* Many labels: half come back with a new vector, half with their old
     * one; half by sw_delete, half through a tombstone and sw_compact. */
    for (size_t i = 2; i < 2 + n_re; i++) {
        uint64_t L = perm[i];

        if (i % 2)
            CHECK_OK(sw_delete(ix, L));
        else
            CHECK_OK(sw_mark_deleted(ix, L));
    }
    CHECK_OK(sw_compact(ix, 1));
    CHECK_EQ_UINT(sw_count(ix), n - n_re);
    CHECK_EQ_UINT(sw_deleted_count(ix), 0);
    for (size_t i = 2; i < 2 + n_re; i++) {
        uint64_t L = perm[i];
        const float *v = i % 3 ? fresh + (i - 2) * dim : data + L * dim;

        CHECK_EQ_INT(sw_contains(ix, L), 0);
        CHECK_OK(sw_add(ix, L, v, dim));
        memcpy(now + L * dim, v, dim * sizeof *now);
    }
    CHECK_EQ_UINT(sw_count(ix), n);
    CHECK_EQ_UINT(sw_deleted_count(ix), 0);
    for (size_t i = 0; i < 2 + n_re; i++) {
        uint64_t L = perm[i], got = 0;
        float d0 = -1;

        CHECK_EQ_INT(sw_contains(ix, L), 1);
        if (sw_get(ix, L, out, dim) != SW_OK || memcmp(out, now + L * dim, sizeof out) != 0)
            sw_test_fail_at(__FILE__, __LINE__, "re-added label %llu holds the wrong vector",
                            (unsigned long long)L);
        CHECK_OK(sw_search_exact(ix, now + L * dim, dim, 1, NULL, &got, &d0, &nf));
        CHECK(nf == 1 && got == L && d0 == 0);
    }
    missed = self_misses(ix, now, perm, 2 + n_re, 100);
    CHECK(missed * 100 <= 2 + n_re);
    CHECK_ONLY_LIVE(ix, queries, nq, 10, 100, dead, n, 1, "re-added");
    CHECK_GRAPH(ix);
    after = tu_measure_recall(ix, queries, nq, 10, 100);
    NOTE("recall@10 at ef=100 before %.4f, after deleting and re-adding %zu labels %.4f; "
         "%zu re-added missed at their vectors",
         before.tie_aware, n_re + 2, after.tie_aware, missed);
    CHECK(after.tie_aware >= before.tie_aware - 0.05);
    sw_free(ix);
    free(data);
    free(fresh);
    free(queries);
    free(now);
    free(perm);
    free(dead);
}

/* ===================================================================== */
/* Searches during deletions                                             */
/* ===================================================================== */

/*
 * Shared state.  seq[label] is 0 until the label's delete (or tombstone)
 * has returned; then the deleting thread takes the next number from
 * `counter` and stores it there.  A searcher reads `counter` before it
 * starts: any result whose seq is nonzero and no greater than that number
 * was deleted before the search began, and must not be there.
 */
typedef struct dc_shared {
    sw_index *ix;
    const float *data; /* rows by label: n originals, then n_add new ones */
    size_t n, n_add, n_del;
    const uint64_t *del_order;
    _Atomic uint64_t *seq;
    atomic_ullong counter;
    atomic_int writers_left;
    int use_marks; /* tombstones + sw_compact instead of sw_delete */
} dc_shared;

typedef struct dc_worker {
    dc_shared *s;
    pthread_t tid;
    uint64_t rng_seed;
    size_t searches;
    tu_errs errs;
} dc_worker;

static void *dc_deleter(void *arg)
{
    dc_worker *w = arg;
    dc_shared *s = w->s;

    for (size_t i = 0; i < s->n_del; i++) {
        uint64_t L = s->del_order[i];
        sw_status st = s->use_marks ? sw_mark_deleted(s->ix, L) : sw_delete(s->ix, L);

        if (st != SW_OK) {
            tu_err(&w->errs, "deleting %llu: %s (%s)", (unsigned long long)L,
                   sw_test_status_name(st), sw_last_error());
            continue;
        }
        atomic_store(&s->seq[L], atomic_fetch_add(&s->counter, 1) + 1);
        if (s->use_marks && i % 64 == 63) {
            st = sw_compact(s->ix, (i / 64) % 2 ? 2 : 1);
            if (st != SW_OK)
                tu_err(&w->errs, "sw_compact: %s (%s)", sw_test_status_name(st),
                       sw_last_error());
        }
    }
    atomic_fetch_sub(&s->writers_left, 1);
    return NULL;
}

static void *dc_adder(void *arg)
{
    dc_worker *w = arg;
    dc_shared *s = w->s;
    size_t dim = sw_dim(s->ix);

    for (size_t i = 0; i < s->n_add; i++) {
        uint64_t L = s->n + i;
        sw_status st = sw_add(s->ix, L, s->data + L * dim, dim);

        if (st != SW_OK)
            tu_err(&w->errs, "adding %llu: %s (%s)", (unsigned long long)L,
                   sw_test_status_name(st), sw_last_error());
    }
    atomic_fetch_sub(&s->writers_left, 1);
    return NULL;
}

static void *dc_searcher(void *arg)
{
    dc_worker *w = arg;
    dc_shared *s = w->s;
    size_t dim = sw_dim(s->ix), after_done = 0;
    sw_search_params p = sw_search_params_default();
    uint64_t lab[10];
    float d[10];
    tu_rng r;

    p.ef = 64;
    tu_rng_seed(&r, w->rng_seed);
    /* Search until the writers are done, then 100 more. */
    while (after_done < 100) {
        /* Mostly at the vectors of labels due for deletion: if a deleted
         * label were still reachable as a result, it would be first there. */
        uint64_t at = tu_rng_below(&r, 4) ? s->del_order[tu_rng_below(&r, s->n_del)]
                                          : tu_rng_below(&r, s->n);
        int exact = tu_rng_below(&r, 8) == 0;
        uint64_t start;
        size_t nf = 0;
        sw_status st;

        if (atomic_load(&s->writers_left) == 0)
            after_done++;
        start = atomic_load(&s->counter);
        st = exact ? sw_search_exact(s->ix, s->data + at * dim, dim, 10, &p, lab, d, &nf)
                   : sw_search(s->ix, s->data + at * dim, dim, 10, &p, lab, d, &nf);
        w->searches++;
        if (st != SW_OK) {
            tu_err(&w->errs, "search: %s (%s)", sw_test_status_name(st), sw_last_error());
            continue;
        }
        if (nf != 10)
            tu_err(&w->errs, "%s search found %zu, want 10", exact ? "exact" : "approximate", nf);
        for (size_t i = 0; i < nf; i++) {
            uint64_t L = lab[i];

            if (L >= s->n + s->n_add) {
                tu_err(&w->errs, "result %llu: a label nobody added", (unsigned long long)L);
            } else if (L < s->n) {
                uint64_t when = atomic_load(&s->seq[L]);

                if (when != 0 && when <= start)
                    tu_err(&w->errs,
                           "%s search returned %llu, deleted (#%llu) before it began (at #%llu)",
                           exact ? "exact" : "approximate", (unsigned long long)L,
                           (unsigned long long)when, (unsigned long long)start);
            }
            /* Labels here are never updated, so a result's distance is
             * that of its label's one vector: a slot recycled under a
             * search that was still reading it gives another. */
            if (L < s->n + s->n_add) {
                double ref = tu_ref_dist(SW_METRIC_L2, s->data + at * dim, s->data + L * dim, dim);

                if (fabs((double)d[i] - ref) > tu_dist_tol(ref))
                    tu_err(&w->errs, "result %llu at distance %.9g, its vector is at %.9g",
                           (unsigned long long)L, (double)d[i], ref);
            }
            if (i > 0 && d[i] < d[i - 1])
                tu_err(&w->errs, "results out of order");
            if (in_results(lab, i, L))
                tu_err(&w->errs, "label %llu returned twice", (unsigned long long)L);
        }
    }
    return NULL;
}

static void concurrent_deletes(int use_marks, const char *what)
{
    const uint32_t dim = 16;
    const size_t n = DL_SIZE(3000, 800), n_del = DL_SIZE(400, 120), n_add = DL_SIZE(300, 100);
    const size_t n_search = 2;
    float *data = tu_clustered(n + n_add, dim, 16, 761, use_marks ? 763 : 762);
    float *queries = tu_clustered(50, dim, 16, 761, 764);
    uint64_t *perm = dl_perm(n, use_marks ? 766 : 765);
    unsigned char *dead = calloc(n + n_add, 1);
    dc_shared s;
    dc_worker del, add, srch[2];
    sw_options o = dl_opts(dim);
    size_t searches = 0;
    int started = 0;

    memset(&s, 0, sizeof s);
    memset(&del, 0, sizeof del);
    memset(&add, 0, sizeof add);
    memset(srch, 0, sizeof srch);
    s.seq = malloc(n * sizeof *s.seq);
    if (data == NULL || queries == NULL || perm == NULL || dead == NULL || s.seq == NULL) {
        sw_test_fail_at(__FILE__, __LINE__, "out of memory");
        goto done;
    }
    o.ef_construction = 100;
    s.ix = tu_build(&o, data, n);
    if (s.ix == NULL)
        goto done;
    s.data = data;
    s.n = n;
    s.n_add = n_add;
    s.n_del = n_del;
    s.del_order = perm;
    s.use_marks = use_marks;
    for (size_t i = 0; i < n; i++)
        atomic_init(&s.seq[i], 0);
    atomic_init(&s.counter, 0);
    atomic_init(&s.writers_left, 2);

    del.s = add.s = &s;
    for (size_t t = 0; t < n_search; t++) {
        srch[t].s = &s;
        srch[t].rng_seed = 767 + t;
        if (pthread_create(&srch[t].tid, NULL, dc_searcher, &srch[t]) != 0)
            break;
        started++;
    }
    if (started < (int)n_search || pthread_create(&del.tid, NULL, dc_deleter, &del) != 0 ||
        pthread_create(&add.tid, NULL, dc_adder, &add) != 0) {
        /* cannot happen on a working system; do not leave threads waiting */
        sw_test_fail_at(__FILE__, __LINE__, "pthread_create failed");
        abort();
    }
    pthread_join(del.tid, NULL);
    pthread_join(add.tid, NULL);
    for (size_t t = 0; t < n_search; t++) {
        pthread_join(srch[t].tid, NULL);
        searches += srch[t].searches;
    }
    CHECK_NO_ERRS(&del.errs, "deleter");
    CHECK_NO_ERRS(&add.errs, "adder");
    for (size_t t = 0; t < n_search; t++)
        CHECK_NO_ERRS(&srch[t].errs, "searcher");
    NOTE("%s: %zu deletions and %zu adds during %zu searches", what, n_del, n_add, searches);

    if (use_marks) {
        CHECK_EQ_UINT(sw_deleted_count(s.ix), n_del % 64);
        CHECK_OK(sw_compact(s.ix, 2));
    }
    CHECK_EQ_UINT(sw_deleted_count(s.ix), 0);
    CHECK_EQ_UINT(sw_count(s.ix), n - n_del + n_add);
    for (size_t i = 0; i < n_del; i++) {
        dead[perm[i]] = 1;
        CHECK_EQ_INT(sw_contains(s.ix, perm[i]), 0);
    }
    for (size_t i = 0; i < n_add; i++)
        CHECK_EQ_INT(sw_contains(s.ix, n + i), 1);
    CHECK_GRAPH_AT(s.ix, what);
    CHECK_ONLY_LIVE(s.ix, queries, 50, 10, 100, dead, n + n_add, 1, what);
    {
        tu_recall rec = tu_measure_recall(s.ix, queries, 50, 10, 100);

        NOTE("%s: recall@10 at ef=100 afterwards %.4f", what, rec.tie_aware);
        CHECK(rec.tie_aware >= 0.9);
    }
done:
    sw_free(s.ix);
    free(s.seq);
    free(data);
    free(queries);
    free(perm);
    free(dead);
}

TEST(delete_during_searches_and_adds)
{
    concurrent_deletes(0, "sw_delete");
}

TEST(delete_tombstones_and_compact_during_searches_and_adds)
{
    concurrent_deletes(1, "mark + sw_compact");
}

/* ===================================================================== */
/* Out of memory                                                         */
/* ===================================================================== */

#define DL_MAX_ATTEMPTS 20000

enum { OP_DELETE_LIVE, OP_DELETE_MARKED, OP_COMPACT_1, OP_COMPACT_2 };
static const char *const op_names[] = {"sw_delete of a live label",
                                       "sw_delete of a tombstone", "sw_compact(1)",
                                       "sw_compact(2)"};

#define OOM_N 400
#define OOM_DIM 8
#define OOM_LIVE 7u     /* deleted by OP_DELETE_LIVE */
#define OOM_MARKED 20u  /* a tombstone in the base, deleted by OP_DELETE_MARKED */
/* The base's tombstones: every tenth label, OOM_MARKED among them. */
#define OOM_IS_MARKED(l) ((l) % 10 == 0)

static sw_status oom_op(sw_index *ix, int op)
{
    switch (op) {
    case OP_DELETE_LIVE:
        return sw_delete(ix, OOM_LIVE);
    case OP_DELETE_MARKED:
        return sw_delete(ix, OOM_MARKED);
    case OP_COMPACT_1:
        return sw_compact(ix, 1);
    default:
        return sw_compact(ix, 2);
    }
}

/* The index as the base file left it (the operation failed). */
static void oom_check_unchanged(const sw_index *ix, const float *data, int op, long n,
                                int persistent)
{
    float v[OOM_DIM];
    size_t marked = OOM_N / 10;

    if (sw_count(ix) != OOM_N - marked || sw_deleted_count(ix) != marked)
        sw_test_fail_at(__FILE__, __LINE__,
                        "%s failing after %ld (%s): counts %zu live, %zu tombstones; want %zu, %zu",
                        op_names[op], n, persistent ? "persistent" : "one-shot", sw_count(ix),
                        sw_deleted_count(ix), (size_t)OOM_N - marked, marked);
    CHECK_EQ_INT(sw_contains(ix, OOM_LIVE), 1);
    CHECK_EQ_INT(sw_is_deleted(ix, OOM_LIVE), 0);
    if (sw_get(ix, OOM_LIVE, v, OOM_DIM) != SW_OK ||
        memcmp(v, data + OOM_LIVE * OOM_DIM, sizeof v) != 0)
        sw_test_fail_at(__FILE__, __LINE__, "%s failing after %ld: label %u lost its vector",
                        op_names[op], n, OOM_LIVE);
    for (uint64_t l = 0; l < OOM_N; l += 10)
        if (sw_is_deleted(ix, l) != 1 || sw_contains(ix, l) != 0) {
            sw_test_fail_at(__FILE__, __LINE__, "%s failing after %ld: tombstone %llu lost",
                            op_names[op], n, (unsigned long long)l);
            break;
        }
}

/* The index after the operation succeeded. */
static void oom_check_done(const sw_index *ix, int op, const char *when)
{
    size_t marked = OOM_N / 10;

    switch (op) {
    case OP_DELETE_LIVE:
        CHECK_EQ_UINT(sw_count(ix), OOM_N - marked - 1);
        CHECK_EQ_UINT(sw_deleted_count(ix), marked);
        CHECK_EQ_INT(sw_contains(ix, OOM_LIVE), 0);
        break;
    case OP_DELETE_MARKED:
        CHECK_EQ_UINT(sw_count(ix), OOM_N - marked);
        CHECK_EQ_UINT(sw_deleted_count(ix), marked - 1);
        CHECK_EQ_INT(sw_is_deleted(ix, OOM_MARKED), 0);
        CHECK_EQ_INT(sw_contains(ix, OOM_MARKED), 0);
        break;
    default:
        CHECK_EQ_UINT(sw_count(ix), OOM_N - marked);
        CHECK_EQ_UINT(sw_deleted_count(ix), 0);
        CHECK_EQ_INT(sw_is_deleted(ix, OOM_MARKED), 0);
        break;
    }
    CHECK_GRAPH_AT(ix, when);
}

/*
 * Starve one operation at every allocation in turn.  Each attempt starts
 * from a fresh copy loaded from the base file, whose scratch pool is cold,
 * so the operation's working memory is allocated in the attempt too.  After
 * a failure the copy must answer exactly as a twin loaded from the same
 * file and never starved (probe results and saved bytes), and the same
 * operation, with memory back, must succeed.
 */
static void starve(int op, int persistent, const char *base, const char *dir, const float *data,
                   const float *probes)
{
    sw_index *twin = NULL;
    tu_snapshot s0, s1;
    char why[128], when[96];
    long n;
    size_t refused = 0;
    tu_alloc ta;

    tu_alloc_init(&ta);
    snprintf(when, sizeof when, "%s (%s)", op_names[op], persistent ? "persistent" : "one-shot");
    if (sw_load(base, NULL, &twin) != SW_OK) {
        sw_test_fail_at(__FILE__, __LINE__, "%s: cannot load the base", when);
        goto done;
    }
    if (tu_snapshot_take(&s0, twin, probes, 5, 10, dir) != 0)
        goto done;
    for (n = 0; n < DL_MAX_ATTEMPTS; n++) {
        sw_index *ix = NULL;
        sw_status st;
        size_t injected;

        if (sw_load(base, &ta.api, &ix) != SW_OK) {
            sw_test_fail_at(__FILE__, __LINE__, "%s: reload failed: %s", when, sw_last_error());
            break;
        }
        tu_alloc_fail_after(&ta, n, persistent);
        st = oom_op(ix, op);
        injected = tu_alloc_injected(&ta);
        tu_alloc_disarm(&ta);
        if (st == SW_OK) {
            oom_check_done(ix, op, when);
            sw_free(ix);
            if (injected == 0)
                break;
            continue; /* one-shot: the library coped with a failed allocation */
        }
        refused++;
        if (st != SW_ENOMEM)
            sw_test_fail_at(__FILE__, __LINE__, "%s failing after %ld allocations: got %s, want "
                            "SW_ENOMEM (%s)",
                            when, n, sw_test_status_name(st), sw_last_error());
        else
            tu_check_last_error_names(SW_ENOMEM, __FILE__, __LINE__);
        oom_check_unchanged(ix, data, op, n, persistent);
        if (tu_snapshot_take(&s1, ix, probes, 5, 10, dir) == 0) {
            if (!tu_snapshot_equal(&s0, &s1, why, sizeof why))
                sw_test_fail_at(__FILE__, __LINE__,
                                "%s failing after %ld allocations changed the index: %s", when,
                                n, why);
            tu_snapshot_free(&s1);
        }
        /* Memory back: the same call succeeds. */
        CHECK_OK(oom_op(ix, op));
        oom_check_done(ix, op, when);
        sw_free(ix);
        if (tu_alloc_live_bytes(&ta) != 0)
            sw_test_fail_at(__FILE__, __LINE__, "%s: %zu bytes left after sw_free", when,
                            tu_alloc_live_bytes(&ta));
        if (sw_test_failed())
            break;
    }
    CHECK(n < DL_MAX_ATTEMPTS);
    NOTE("%s: %zu starved attempts refused", when, refused);
    tu_snapshot_free(&s0);
done:
    sw_free(twin);
    CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), 0);
    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
}

TEST(delete_and_compact_fail_cleanly_out_of_memory)
{
    float *data = tu_clustered(OOM_N, OOM_DIM, 8, 771, 772);
    float *probes = tu_clustered(5, OOM_DIM, 8, 771, 773);
    sw_options o = dl_opts(OOM_DIM);
    sw_index *ix;
    char dir[256], base[320];

    REQUIRE(data != NULL && probes != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(base, sizeof base, "%s/base.swi", dir);
    ix = tu_build(&o, data, OOM_N);
    REQUIRE(ix != NULL);
    for (uint64_t l = 0; l < OOM_N; l++)
        if (OOM_IS_MARKED(l))
            CHECK_OK(sw_mark_deleted(ix, l));
    CHECK_OK(sw_save(ix, base));
    sw_free(ix);

    /* Under ThreadSanitizer only the one that runs threads. */
    for (int persistent = 1; persistent >= 0; persistent--)
        for (int op = SW_TEST_UNDER_TSAN ? OP_COMPACT_2 : OP_DELETE_LIVE; op <= OP_COMPACT_2;
             op++) {
            starve(op, persistent, base, dir, data, probes);
            if (sw_test_failed())
                break;
        }

    /* Tombstones list no SW_ENOMEM: they must work with no memory at all. */
    {
        tu_alloc ta;
        sw_index *cold = NULL;

        tu_alloc_init(&ta);
        if (sw_load(base, &ta.api, &cold) == SW_OK) {
            tu_alloc_fail_after(&ta, 0, 1);
            CHECK_OK(sw_mark_deleted(cold, 5));
            CHECK_OK(sw_unmark_deleted(cold, 10));
            CHECK_OK(sw_mark_deleted(cold, 10));
            CHECK_OK(sw_unmark_deleted(cold, 5));
            tu_alloc_disarm(&ta);
            CHECK_EQ_INT(sw_contains(cold, 5), 1);
            CHECK_EQ_INT(sw_is_deleted(cold, 10), 1);
            CHECK_EQ_UINT(sw_deleted_count(cold), OOM_N / 10);
            sw_free(cold);
        } else {
            sw_test_fail_at(__FILE__, __LINE__, "cannot load the base: %s", sw_last_error());
        }
        CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), 0);
        CHECK_ALLOC_CLEAN(&ta);
        tu_alloc_destroy(&ta);
    }
    tu_rmtree(dir);
    free(data);
    free(probes);
}
