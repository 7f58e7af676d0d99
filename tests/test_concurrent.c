/*
 * test_concurrent.c — batch calls, and adds running concurrently with
 * searches, saves and each other.
 *
 * smallworld.h promises that any number of searches may run at the same
 * time as each other and as adds and updates (sw_add, sw_add_batch) on the
 * same index, that sw_add may be called from many threads at once, and that
 * sw_save may run during adds.  sw_search_batch promises rows exactly equal
 * to sw_search's; sw_add_batch, an index as good as one built by sw_add in a
 * loop, and on failure an index left exactly as it was.
 *
 * Every test asserts on results, never on timing: the race detector (the
 * suite also runs under SANITIZE=thread) sees the races, these tests see
 * their consequences — a result row that is unsorted, names a label nobody
 * added, or carries a distance that does not belong to the label's vector;
 * a vector published by one thread that another cannot find; a graph the
 * library's own checker rejects after the dust settles; a saved file that
 * does not load, or holds something other than a prefix of what one writer
 * added.  When the writers happen to finish before the readers get going,
 * the tests still pass; they lose power, not correctness.
 *
 * The framework's CHECK macros are not thread-safe, so worker threads count
 * problems and keep the first message; the main thread asserts on those.
 *
 * Sizes shrink under ThreadSanitizer (every memory access instrumented, two
 * cores in CI); the Release sizes keep each test around a second.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sw_test.h"
#include "testutil.h"

/* Release size, or the smaller one under ThreadSanitizer. */
#define CC_SIZE(release, tsan) ((size_t)(SW_TEST_UNDER_TSAN ? (tsan) : (release)))

#define CC_DIM 16
#define CC_CENTRES 32

/* ===================================================================== */
/* Helpers                                                               */
/* ===================================================================== */

/* 1 if msg contains the decimal number v as a whole number (not as part of
 * a longer one). */
static int mentions_number(const char *msg, unsigned long v)
{
    char num[32];
    size_t len;
    const char *p = msg;

    snprintf(num, sizeof num, "%lu", v);
    len = strlen(num);
    while ((p = strstr(p, num)) != NULL) {
        int before = p > msg && p[-1] >= '0' && p[-1] <= '9';
        int after = p[len] >= '0' && p[len] <= '9';

        if (!before && !after)
            return 1;
        p++;
    }
    return 0;
}

static int is_pos_inf(float f)
{
    return isinf(f) && f > 0;
}

static sw_options cc_opts(uint32_t ef_construction)
{
    sw_options o = sw_options_default();

    o.dim = CC_DIM;
    o.ef_construction = ef_construction;
    return o;
}

/* An empty index, or NULL with a test failure. */
static sw_index *cc_create(const sw_options *o)
{
    sw_index *ix = NULL;
    sw_status st = sw_create(o, &ix);

    if (st != SW_OK) {
        sw_test_fail_at(__FILE__, __LINE__, "sw_create: %s (%s)", sw_test_status_name(st),
                        sw_last_error());
        return NULL;
    }
    return ix;
}

/* ===================================================================== */
/* sw_search_batch against sw_search                                     */
/* ===================================================================== */

/*
 * Runs sw_search_batch and compares each row with sw_search on the same
 * query: labels and distances bitwise, found, padding after found.
 * want_dists / want_found may be NULL to pass NULL to the batch call.
 */
static void check_batch_rows(const sw_index *ix, const float *queries, size_t nq, size_t k,
                             const sw_search_params *p, size_t threads, int with_dists,
                             int with_found, const char *what)
{
    uint64_t *bl = malloc(nq * k * sizeof *bl), *sl = malloc(k * sizeof *sl);
    float *bd = malloc(nq * k * sizeof *bd), *sd = malloc(k * sizeof *sd);
    size_t *bf = malloc(nq * sizeof *bf);
    size_t bad_rows = 0, first_bad = 0;
    sw_status st;

    if (bl == NULL || sl == NULL || bd == NULL || sd == NULL || bf == NULL) {
        sw_test_fail_at(__FILE__, __LINE__, "out of memory");
        goto done;
    }
    /* Poison the outputs, so rows the call does not write are noticed. */
    for (size_t i = 0; i < nq * k; i++) {
        bl[i] = 0x5A5A5A5A5A5A5A5Aull;
        bd[i] = -12345.0f;
    }
    for (size_t i = 0; i < nq; i++)
        bf[i] = (size_t)-7;
    st = sw_search_batch(ix, queries, nq, sw_dim(ix), k, p, bl, with_dists ? bd : NULL,
                         with_found ? bf : NULL, threads);
    if (st != SW_OK) {
        sw_test_fail_at(__FILE__, __LINE__, "%s: sw_search_batch: %s (%s)", what,
                        sw_test_status_name(st), sw_last_error());
        goto done;
    }
    for (size_t q = 0; q < nq; q++) {
        const uint64_t *rl = bl + q * k;
        const float *rd = bd + q * k;
        size_t nf = 0;
        int bad = 0;

        st = sw_search(ix, queries + q * sw_dim(ix), sw_dim(ix), k, p, sl, sd, &nf);
        if (st != SW_OK) {
            sw_test_fail_at(__FILE__, __LINE__, "%s: sw_search(%zu): %s (%s)", what, q,
                            sw_test_status_name(st), sw_last_error());
            goto done;
        }
        if (with_found && bf[q] != nf)
            bad = 1;
        if (memcmp(rl, sl, nf * sizeof *sl) != 0)
            bad = 1;
        if (with_dists && memcmp(rd, sd, nf * sizeof *sd) != 0)
            bad = 1;
        for (size_t i = nf; i < k; i++)
            if (rl[i] != SW_NO_LABEL || (with_dists && !is_pos_inf(rd[i])))
                bad = 1;
        if (bad && bad_rows++ == 0)
            first_bad = q;
    }
    if (bad_rows != 0)
        sw_test_fail_at(__FILE__, __LINE__,
                        "%s: %zu of %zu sw_search_batch rows differ from sw_search (first: "
                        "row %zu, found %zu)",
                        what, bad_rows, nq, first_bad, with_found ? bf[first_bad] : 0);
done:
    free(bl);
    free(sl);
    free(bd);
    free(sd);
    free(bf);
}

TEST(concurrent_batch_search_matches_single)
{
    const size_t n = CC_SIZE(10000, 1500), nq = CC_SIZE(400, 60), k = 10;
    const size_t thread_counts[] = {1, 2, 3, 0};
    float *data = tu_clustered(n, CC_DIM, CC_CENTRES, 801, 1);
    float *queries = tu_clustered(nq, CC_DIM, CC_CENTRES, 801, 2);
    sw_options o = cc_opts(100);
    sw_search_params p = sw_search_params_default();
    sw_index *ix = NULL, *small = NULL, *empty = NULL;
    char what[64];

    REQUIRE(data != NULL && queries != NULL);
    ix = tu_build(&o, data, n);
    REQUIRE(ix != NULL);

    for (size_t t = 0; t < sizeof thread_counts / sizeof *thread_counts; t++) {
        p.ef = 64;
        snprintf(what, sizeof what, "threads=%zu ef=64", thread_counts[t]);
        check_batch_rows(ix, queries, nq, k, &p, thread_counts[t], 1, 1, what);
    }
    /* Default ef (params NULL), ef below k, optional outputs left out. */
    check_batch_rows(ix, queries, nq, k, NULL, 2, 1, 1, "threads=2 params=NULL");
    p.ef = 3;
    check_batch_rows(ix, queries, nq, k, &p, 2, 1, 1, "threads=2 ef=3 (< k)");
    p.ef = 64;
    check_batch_rows(ix, queries, nq, k, &p, 2, 0, 1, "threads=2 distances=NULL");
    check_batch_rows(ix, queries, nq, k, &p, 2, 1, 0, "threads=2 found=NULL");
    check_batch_rows(ix, queries, nq, 1, &p, 3, 1, 1, "threads=3 k=1");
    /* More threads than queries. */
    check_batch_rows(ix, queries, 2, k, &p, 3, 1, 1, "threads=3 nq=2");
    check_batch_rows(ix, queries, 1, k, &p, 0, 1, 1, "threads=0 nq=1");

    /* k larger than the index: rows padded with SW_NO_LABEL and +inf. */
    small = tu_build(&o, data, 7);
    if (small != NULL) {
        uint64_t lab[5 * 12];
        float dist[5 * 12];
        size_t found[5];
        int bad = 0;

        check_batch_rows(small, queries, 5, 12, &p, 2, 1, 1, "7 vectors, k=12");
        CHECK_OK(sw_search_batch(small, queries, 5, CC_DIM, 12, &p, lab, dist, found, 2));
        for (size_t q = 0; q < 5; q++) {
            CHECK_EQ_UINT(found[q], 7);
            for (size_t i = 7; i < 12; i++)
                if (lab[q * 12 + i] != SW_NO_LABEL || !is_pos_inf(dist[q * 12 + i]))
                    bad = 1;
            for (size_t i = 0; i < 7; i++)
                if (lab[q * 12 + i] >= 7 || !isfinite(dist[q * 12 + i]))
                    bad = 1;
        }
        CHECK(!bad);
    }
    /* An empty index: every row is all padding. */
    empty = cc_create(&o);
    if (empty != NULL) {
        uint64_t lab[3 * 4];
        float dist[3 * 4];
        size_t found[3] = {9, 9, 9};
        int bad = 0;

        CHECK_OK(sw_search_batch(empty, queries, 3, CC_DIM, 4, NULL, lab, dist, found, 2));
        for (size_t q = 0; q < 3; q++) {
            CHECK_EQ_UINT(found[q], 0);
            for (size_t i = 0; i < 4; i++)
                if (lab[q * 4 + i] != SW_NO_LABEL || !is_pos_inf(dist[q * 4 + i]))
                    bad = 1;
        }
        CHECK(!bad);
    }
    NOTE("%zu queries on %zu vectors: sw_search_batch rows equal sw_search's at threads "
         "1, 2, 3, 0",
         nq, n);
    sw_free(ix);
    sw_free(small);
    sw_free(empty);
    free(data);
    free(queries);
}

/* ===================================================================== */
/* sw_add_batch against sw_add                                           */
/* ===================================================================== */

/* Index with labels[i] -> data row i added by one sw_add_batch call. */
static sw_index *build_batch(const sw_options *o, const float *data, size_t n, size_t threads)
{
    sw_index *ix = cc_create(o);
    uint64_t *labels = malloc((n ? n : 1) * sizeof *labels);
    sw_status st;

    if (ix == NULL || labels == NULL) {
        sw_test_fail_at(__FILE__, __LINE__, "build_batch: out of memory");
        sw_free(ix);
        free(labels);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        labels[i] = i;
    st = sw_add_batch(ix, labels, data, n, o->dim, threads);
    free(labels);
    if (st != SW_OK) {
        sw_test_fail_at(__FILE__, __LINE__, "sw_add_batch(n=%zu, threads=%zu): %s (%s)", n,
                        threads, sw_test_status_name(st), sw_last_error());
        sw_free(ix);
        return NULL;
    }
    return ix;
}

/* Every label 0..n-1 present with exactly its row of data. */
static void check_contents(const sw_index *ix, const float *data, size_t n, const char *what)
{
    float v[CC_DIM];
    size_t missing = 0, wrong = 0;

    CHECK_EQ_UINT(sw_count(ix), n);
    for (size_t i = 0; i < n; i++) {
        if (!sw_contains(ix, i) || sw_get(ix, i, v, CC_DIM) != SW_OK)
            missing++;
        else if (memcmp(v, data + i * CC_DIM, sizeof v) != 0)
            wrong++;
    }
    if (missing != 0 || wrong != 0)
        sw_test_fail_at(__FILE__, __LINE__, "%s: %zu labels missing, %zu with a wrong vector",
                        what, missing, wrong);
}

TEST(concurrent_batch_add_recall_matches_sequential)
{
    const size_t n = CC_SIZE(8000, 1200), nq = CC_SIZE(200, 60), k = 10;
    float *data = tu_clustered(n, CC_DIM, CC_CENTRES, 811, 1);
    float *queries = tu_clustered(nq, CC_DIM, CC_CENTRES, 811, 2);
    sw_options o = cc_opts(100);
    sw_index *seq = NULL, *bat = NULL, *bat0 = NULL;
    tu_recall rs, rb, rb0;

    REQUIRE(data != NULL && queries != NULL);
    seq = tu_build(&o, data, n);
    REQUIRE(seq != NULL);
    bat = build_batch(&o, data, n, 2);
    REQUIRE(bat != NULL);
    CHECK_GRAPH_AT(seq, "sequential");
    CHECK_GRAPH_AT(bat, "batch, threads=2");
    check_contents(seq, data, n, "sequential");
    check_contents(bat, data, n, "batch, threads=2");
    CHECK_EQ_UINT(sw_count(bat), sw_count(seq));

    rs = tu_measure_recall(seq, queries, nq, k, 64);
    rb = tu_measure_recall(bat, queries, nq, k, 64);
    NOTE("recall@%zu at ef=64 on %zu x %d: sequential %.4f, sw_add_batch(threads=2) %.4f", k,
         n, CC_DIM, rs.tie_aware, rb.tie_aware);
    CHECK(rs.tie_aware >= 0.9);
    CHECK(rb.tie_aware >= 0.9);
    CHECK(rb.tie_aware >= rs.tie_aware - 0.02);

    /* threads = 0 (one per CPU), on a smaller set. */
    bat0 = build_batch(&o, data, n / 4, 0);
    if (bat0 != NULL) {
        CHECK_GRAPH_AT(bat0, "batch, threads=0");
        check_contents(bat0, data, n / 4, "batch, threads=0");
        rb0 = tu_measure_recall(bat0, queries, nq, k, 64);
        NOTE("sw_add_batch(threads=0) of %zu: recall %.4f", n / 4, rb0.tie_aware);
        CHECK(rb0.tie_aware >= 0.9);
    }
    sw_free(seq);
    sw_free(bat);
    sw_free(bat0);
    free(data);
    free(queries);
}

/* ===================================================================== */
/* Refusals                                                              */
/* ===================================================================== */

/* The index answers exactly as in s0 (probes, count, saved bytes). */
static void check_unchanged(const sw_index *ix, const tu_snapshot *s0, const float *probes,
                            size_t n_probes, const char *dir, const char *what, int line)
{
    tu_snapshot s1;
    char why[160];

    if (tu_snapshot_take(&s1, ix, probes, n_probes, 10, dir) != 0)
        return;
    if (!tu_snapshot_equal(s0, &s1, why, sizeof why))
        sw_test_fail_at(__FILE__, line, "index changed by %s: %s", what, why);
    tu_snapshot_free(&s1);
}

TEST(concurrent_batch_add_errors_leave_index_unchanged)
{
    enum { N = 500, B = 64, NP = 8 };
    float *data = tu_clustered(N, CC_DIM, 8, 821, 1);
    float *rows = tu_clustered(B, CC_DIM, 8, 821, 2);
    float *probes = tu_clustered(NP, CC_DIM, 8, 821, 3);
    float *bad = malloc(B * CC_DIM * sizeof *bad);
    uint64_t labels[B], dup[B];
    uint64_t out_l[NP * 10];
    float out_d[NP * 10];
    size_t out_f[NP];
    sw_options o = cc_opts(100);
    sw_search_params p = sw_search_params_default();
    sw_index *ix;
    tu_snapshot s0;
    char dir[256];
    const char *msg;

    REQUIRE(data && rows && probes && bad);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    ix = tu_build(&o, data, N);
    REQUIRE(ix != NULL);
    REQUIRE(tu_snapshot_take(&s0, ix, probes, NP, 10, dir) == 0);
    /* New labels whose decimal forms do not contain "37", so a message that
     * names the label instead of the row does not pass for naming row 37;
     * rows 0..31 are new labels, 32..63 updates of present ones. */
    for (size_t i = 0; i < B; i++)
        labels[i] = i < B / 2 ? 5000 + 2 * i : 2 * (i - B / 2);

    CHECK_FAILS_WITH(sw_add_batch(NULL, labels, rows, B, CC_DIM, 2), SW_ENULL);
    CHECK_FAILS_WITH(sw_add_batch(ix, NULL, rows, B, CC_DIM, 2), SW_ENULL);
    CHECK_FAILS_WITH(sw_add_batch(ix, labels, NULL, B, CC_DIM, 2), SW_ENULL);
    check_unchanged(ix, &s0, probes, NP, dir, "NULL arguments", __LINE__);

    CHECK_FAILS_WITH(sw_add_batch(ix, labels, rows, B, CC_DIM - 1, 2), SW_EDIMMISMATCH);
    CHECK_FAILS_WITH(sw_add_batch(ix, labels, rows, B, CC_DIM + 1, 2), SW_EDIMMISMATCH);
    CHECK_FAILS_WITH(sw_add_batch(ix, labels, rows, B, 0, 2), SW_EDIMMISMATCH);
    check_unchanged(ix, &s0, probes, NP, dir, "wrong dimension", __LINE__);

    /* A NaN in row 37 (an update) and an infinity in row 5 (a new label)
     * and in the last row: refused before anything is added, naming the
     * row. */
    memcpy(bad, rows, B * CC_DIM * sizeof *bad);
    bad[37 * CC_DIM + 3] = NAN;
    CHECK_FAILS_WITH(sw_add_batch(ix, labels, bad, B, CC_DIM, 2), SW_ENOTFINITE);
    msg = sw_last_error();
    if (!mentions_number(msg, 37))
        sw_test_fail_at(__FILE__, __LINE__, "NaN in row 37: message does not name the row: \"%s\"",
                        msg);
    memcpy(bad, rows, B * CC_DIM * sizeof *bad);
    bad[5 * CC_DIM] = INFINITY;
    CHECK_FAILS_WITH(sw_add_batch(ix, labels, bad, B, CC_DIM, 1), SW_ENOTFINITE);
    if (!mentions_number(sw_last_error(), 5))
        sw_test_fail_at(__FILE__, __LINE__, "Inf in row 5: message does not name the row: \"%s\"",
                        sw_last_error());
    memcpy(bad, rows, B * CC_DIM * sizeof *bad);
    bad[B * CC_DIM - 1] = -INFINITY;
    CHECK_FAILS_WITH(sw_add_batch(ix, labels, bad, B, CC_DIM, 0), SW_ENOTFINITE);
    check_unchanged(ix, &s0, probes, NP, dir, "a batch with a NaN or Inf", __LINE__);

    /* The same label twice in one batch: new, then present. */
    memcpy(dup, labels, sizeof dup);
    dup[50] = dup[10];
    CHECK_FAILS_WITH(sw_add_batch(ix, dup, rows, B, CC_DIM, 2), SW_EINVAL);
    memcpy(dup, labels, sizeof dup);
    dup[B - 1] = dup[40];
    CHECK_FAILS_WITH(sw_add_batch(ix, dup, rows, B, CC_DIM, 2), SW_EINVAL);
    memcpy(dup, labels, sizeof dup);
    dup[1] = dup[0];
    CHECK_FAILS_WITH(sw_add_batch(ix, dup, rows, 2, CC_DIM, 1), SW_EINVAL);
    check_unchanged(ix, &s0, probes, NP, dir, "a batch with a repeated label", __LINE__);

    CHECK_FAILS_WITH(sw_add_batch(ix, labels, rows, B, CC_DIM, (size_t)SW_MAX_THREADS + 1),
                     SW_EINVAL);
    CHECK_FAILS_WITH(sw_add_batch(ix, labels, rows, B, CC_DIM, (size_t)-1), SW_EINVAL);
    check_unchanged(ix, &s0, probes, NP, dir, "too many threads", __LINE__);

    /* n == 0 is a no-op. */
    CHECK_OK(sw_add_batch(ix, labels, rows, 0, CC_DIM, 2));
    check_unchanged(ix, &s0, probes, NP, dir, "an empty batch", __LINE__);
    CHECK_EQ_UINT(sw_count(ix), N);
    CHECK_EQ_INT(sw_contains(ix, 5000), 0);
    CHECK_GRAPH(ix);

    /* sw_search_batch refusals. */
    p.ef = 50;
    CHECK_FAILS_WITH(sw_search_batch(NULL, probes, NP, CC_DIM, 10, &p, out_l, out_d, out_f, 2),
                     SW_ENULL);
    CHECK_FAILS_WITH(sw_search_batch(ix, NULL, NP, CC_DIM, 10, &p, out_l, out_d, out_f, 2),
                     SW_ENULL);
    CHECK_FAILS_WITH(sw_search_batch(ix, probes, NP, CC_DIM, 10, &p, NULL, out_d, out_f, 2),
                     SW_ENULL);
    CHECK_FAILS_WITH(sw_search_batch(ix, probes, NP, CC_DIM, 0, &p, out_l, out_d, out_f, 2),
                     SW_EK);
    CHECK_FAILS_WITH(
        sw_search_batch(ix, probes, NP, CC_DIM + 1, 10, &p, out_l, out_d, out_f, 2),
        SW_EDIMMISMATCH);
    p.ef = SW_MAX_EF + 1;
    CHECK_FAILS_WITH(sw_search_batch(ix, probes, NP, CC_DIM, 10, &p, out_l, out_d, out_f, 2),
                     SW_EEF);
    p.ef = 50;
    CHECK_FAILS_WITH(sw_search_batch(ix, probes, NP, CC_DIM, 10, &p, out_l, out_d, out_f,
                                     (size_t)SW_MAX_THREADS + 1),
                     SW_EINVAL);
    {
        float *qs = tu_clustered(40, CC_DIM, 8, 821, 4);

        if (qs != NULL) {
            uint64_t *l40 = malloc(40 * 10 * sizeof *l40);

            qs[37 * CC_DIM + CC_DIM - 1] = NAN;
            if (l40 != NULL) {
                CHECK_FAILS_WITH(sw_search_batch(ix, qs, 40, CC_DIM, 10, &p, l40, NULL, NULL, 2),
                                 SW_ENOTFINITE);
                if (!mentions_number(sw_last_error(), 37))
                    sw_test_fail_at(__FILE__, __LINE__,
                                    "NaN in query 37: message does not name the row: \"%s\"",
                                    sw_last_error());
                qs[37 * CC_DIM + CC_DIM - 1] = 0;
                qs[39 * CC_DIM] = -INFINITY;
                CHECK_FAILS_WITH(sw_search_batch(ix, qs, 40, CC_DIM, 10, &p, l40, NULL, NULL, 0),
                                 SW_ENOTFINITE);
            }
            free(l40);
            free(qs);
        }
    }
    CHECK_OK(sw_search_batch(ix, probes, 0, CC_DIM, 10, &p, out_l, out_d, out_f, 2));
    check_unchanged(ix, &s0, probes, NP, dir, "refused searches", __LINE__);

    /* After all that, a good batch still works. */
    CHECK_OK(sw_add_batch(ix, labels, rows, B, CC_DIM, 2));
    CHECK_EQ_UINT(sw_count(ix), N + B / 2);
    CHECK_GRAPH_AT(ix, "after the good batch");

    tu_snapshot_free(&s0);
    sw_free(ix);
    tu_rmtree(dir);
    free(data);
    free(rows);
    free(probes);
    free(bad);
}

/* ===================================================================== */
/* Updates in a batch                                                    */
/* ===================================================================== */

TEST(concurrent_batch_add_updates_existing_labels)
{
    const size_t n = CC_SIZE(3000, 800), n_upd = CC_SIZE(400, 100), n_new = CC_SIZE(200, 50);
    const size_t b = n_upd + n_new, nq = CC_SIZE(200, 60);
    float *data = tu_clustered(n, CC_DIM, CC_CENTRES, 831, 1);
    float *rows = tu_clustered(b, CC_DIM, CC_CENTRES, 831, 2);
    float *queries = tu_clustered(nq, CC_DIM, CC_CENTRES, 831, 3);
    uint64_t *labels = malloc(b * sizeof *labels);
    unsigned char *updated = calloc(n, 1);
    sw_options o = cc_opts(100);
    sw_index *ix;
    float v[CC_DIM];
    size_t stale = 0, missing = 0, not_found_by_search = 0;
    tu_recall r;

    REQUIRE(data && rows && queries && labels && updated);
    ix = tu_build(&o, data, n);
    REQUIRE(ix != NULL);
    /* Interleave updates of every (n / n_upd)-th label with new labels. */
    for (size_t i = 0, u = 0, w = 0; i < b; i++) {
        if ((i % 3 != 2 && u < n_upd) || w == n_new) {
            labels[i] = (u * (n / n_upd) + 7) % n;
            updated[labels[i]] = 1;
            u++;
        } else {
            labels[i] = 1000000 + w++;
        }
    }
    CHECK_OK(sw_add_batch(ix, labels, rows, b, CC_DIM, 2));
    CHECK_EQ_UINT(sw_count(ix), n + n_new);
    CHECK_GRAPH_AT(ix, "after a batch of updates");

    for (size_t i = 0; i < b; i++) {
        uint64_t lab[1];
        float d[1];
        size_t nf = 0;
        sw_search_params p = sw_search_params_default();

        if (sw_get(ix, labels[i], v, CC_DIM) != SW_OK) {
            missing++;
            continue;
        }
        if (memcmp(v, rows + i * CC_DIM, sizeof v) != 0)
            stale++;
        /* The new position is where a search finds the label. */
        p.ef = 64;
        if (sw_search(ix, rows + i * CC_DIM, CC_DIM, 1, &p, lab, d, &nf) != SW_OK || nf != 1 ||
            lab[0] != labels[i] || d[0] != 0.0f)
            not_found_by_search++;
    }
    for (size_t i = 0; i < n; i++) {
        if (updated[i])
            continue;
        if (sw_get(ix, i, v, CC_DIM) != SW_OK)
            missing++;
        else if (memcmp(v, data + i * CC_DIM, sizeof v) != 0)
            stale++;
    }
    CHECK_EQ_UINT(missing, 0);
    CHECK_EQ_UINT(stale, 0);
    NOTE("%zu updates + %zu new labels in one batch: %zu not found at their new vector "
         "(k=1, ef=64)",
         n_upd, n_new, not_found_by_search);
    CHECK(not_found_by_search <= b / 100);
    r = tu_measure_recall(ix, queries, nq, 10, 64);
    NOTE("recall@10 at ef=64 after the batch: %.4f", r.tie_aware);
    CHECK(r.tie_aware >= 0.9);

    sw_free(ix);
    free(data);
    free(rows);
    free(queries);
    free(labels);
    free(updated);
}

/* ===================================================================== */
/* Searches during inserts and updates                                   */
/* ===================================================================== */

#define ST_K 10
#define ST_WRITERS 3 /* two sw_add writers, one sw_add_batch writer */
#define ST_BATCH_THREADS 2

typedef struct st_range {
    uint64_t base;          /* new labels base .. base + n - 1 */
    const float *data;      /* their vectors, never updated */
    size_t n;
    atomic_size_t started;   /* labels whose add has begun */
    atomic_size_t published; /* labels whose add has returned SW_OK */
} st_range;

typedef struct st_shared {
    sw_index *ix;
    size_t n0;           /* initial labels 0 .. n0 - 1 */
    float *cur;          /* n0 x dim: current vector of each initial label, written
                            only by the label's owner (label % ST_WRITERS) */
    const float *init;   /* n0 x dim: the initial vectors */
    const float *upd;    /* pool of vectors for updates */
    double *upd_dist;    /* nq x n_upd: distance of each query to each pool vector */
    size_t n_upd;
    size_t upd_every;    /* an sw_add writer updates after every upd_every inserts */
    size_t batch_new, batch_upd; /* per sw_add_batch call */
    const float *queries;
    size_t nq;
    st_range range[ST_WRITERS];
    atomic_int writers_running;
} st_shared;

typedef struct st_thread {
    st_shared *s;
    int id;
    uint64_t seed;
    size_t ops; /* searches, lookups or adds done */
    tu_errs errs;
} st_thread;

/* Validate one result row of a search for query q. */
/* 1 if d is (within float tolerance) the distance from query qi to the
 * initial vector of l or to one of the update pool's vectors: an update is
 * seen whole, so a torn vector (part old, part new) matches neither. */
static int st_initial_dist_ok(const st_shared *s, size_t qi, uint64_t l, float d)
{
    const float *q = s->queries + qi * CC_DIM;
    double ref = tu_ref_dist(SW_METRIC_L2, q, s->init + l * CC_DIM, CC_DIM);

    if (fabs((double)d - ref) <= tu_dist_tol(ref))
        return 1;
    for (size_t r = 0; r < s->n_upd; r++) {
        ref = s->upd_dist[qi * s->n_upd + r];
        if (fabs((double)d - ref) <= tu_dist_tol(ref))
            return 1;
    }
    return 0;
}

static void st_check_row(st_thread *t, size_t qi, const uint64_t *lab, const float *d,
                         size_t nf, size_t k, const char *who)
{
    st_shared *s = t->s;
    const float *q = s->queries + qi * CC_DIM;
    size_t started[ST_WRITERS];

    for (int w = 0; w < ST_WRITERS; w++)
        started[w] = atomic_load_explicit(&s->range[w].started, memory_order_acquire);
    if (nf > k) {
        tu_err(&t->errs, "%s: n_found %zu > k %zu", who, nf, k);
        return;
    }
    if (nf < k)
        tu_err(&t->errs,
               "%s: n_found %zu < k %zu on an index of at least %zu vectors (first result: "
               "label %llu, %s, distance %g)",
               who, nf, k, s->n0, nf > 0 ? (unsigned long long)lab[0] : 0ull,
               nf == 0 ? "none" : lab[0] < s->n0 ? "an initial label, maybe being updated"
                                                 : "a label added during the run",
               nf > 0 ? (double)d[0] : 0.0);
    for (size_t i = 0; i < nf; i++) {
        uint64_t l = lab[i];
        int known = l < s->n0;

        if (!isfinite(d[i]) || d[i] < 0)
            tu_err(&t->errs, "%s: result %zu (label %llu) has distance %g", who, i,
                   (unsigned long long)l, (double)d[i]);
        if (i > 0 && !(d[i] >= d[i - 1]))
            tu_err(&t->errs, "%s: results not sorted: %g after %g at %zu", who, (double)d[i],
                   (double)d[i - 1], i);
        for (size_t j = 0; j < i; j++)
            if (lab[j] == l)
                tu_err(&t->errs, "%s: label %llu returned twice", who, (unsigned long long)l);
        for (int w = 0; w < ST_WRITERS && !known; w++) {
            const st_range *r = &s->range[w];

            if (l >= r->base && l < r->base + r->n) {
                size_t idx = (size_t)(l - r->base);
                double ref;

                known = 1;
                if (idx >= started[w]) {
                    tu_err(&t->errs, "%s: label %llu returned before its add began", who,
                           (unsigned long long)l);
                    break;
                }
                /* New labels are never updated: the distance must be the
                 * one to the vector that was added. */
                ref = tu_ref_dist(SW_METRIC_L2, q, r->data + idx * CC_DIM, CC_DIM);
                if (fabs((double)d[i] - ref) > tu_dist_tol(ref))
                    tu_err(&t->errs,
                           "%s: label %llu at distance %.9g, but its vector is at %.9g", who,
                           (unsigned long long)l, (double)d[i], ref);
            }
        }
        if (!known)
            tu_err(&t->errs, "%s: label %llu was never added", who, (unsigned long long)l);
        else if (l < s->n0 && isfinite(d[i]) && !st_initial_dist_ok(s, qi, l, d[i]))
            tu_err(&t->errs,
                   "%s: initial label %llu at distance %.9g, which is neither its first "
                   "vector's nor any update vector's (a torn update?)",
                   who, (unsigned long long)l, (double)d[i]);
    }
}

static void *st_search_reader(void *arg)
{
    st_thread *t = arg;
    st_shared *s = t->s;
    const uint32_t efs[] = {10, 32, 64, 100};
    uint64_t lab[ST_K];
    float d[ST_K];
    tu_rng r;

    tu_rng_seed(&r, t->seed);
    do {
        size_t qi = (size_t)tu_rng_below(&r, s->nq);
        const float *q = s->queries + qi * CC_DIM;
        sw_search_params p = sw_search_params_default();
        size_t nf = 0;
        sw_status st;

        p.ef = efs[tu_rng_below(&r, 4)];
        st = sw_search(s->ix, q, CC_DIM, ST_K, &p, lab, d, &nf);
        t->ops++;
        if (st != SW_OK) {
            tu_err(&t->errs, "sw_search: %s (%s)", sw_test_status_name(st), sw_last_error());
            continue;
        }
        st_check_row(t, qi, lab, d, nf, ST_K, "sw_search");
    } while (atomic_load(&s->writers_running) > 0 && t->errs.n < 100);
    return NULL;
}

static void *st_batch_reader(void *arg)
{
    enum { NQ = 8 };
    st_thread *t = arg;
    st_shared *s = t->s;
    uint64_t lab[NQ * ST_K];
    float d[NQ * ST_K];
    size_t found[NQ];
    tu_rng r;

    tu_rng_seed(&r, t->seed);
    do {
        size_t first = tu_rng_below(&r, s->nq - NQ + 1);
        sw_search_params p = sw_search_params_default();
        sw_status st;

        p.ef = 48;
        st = sw_search_batch(s->ix, s->queries + first * CC_DIM, NQ, CC_DIM, ST_K, &p, lab, d,
                             found, ST_BATCH_THREADS);
        t->ops++;
        if (st != SW_OK) {
            tu_err(&t->errs, "sw_search_batch: %s (%s)", sw_test_status_name(st),
                   sw_last_error());
            continue;
        }
        for (size_t i = 0; i < NQ; i++) {
            st_check_row(t, first + i, lab + i * ST_K, d + i * ST_K,
                         found[i], ST_K, "sw_search_batch");
            for (size_t j = found[i]; j < ST_K; j++)
                if (lab[i * ST_K + j] != SW_NO_LABEL || !is_pos_inf(d[i * ST_K + j]))
                    tu_err(&t->errs, "sw_search_batch: row %zu badly padded at %zu", i, j);
        }
    } while (atomic_load(&s->writers_running) > 0 && t->errs.n < 100);
    return NULL;
}

static void *st_lookup_reader(void *arg)
{
    st_thread *t = arg;
    st_shared *s = t->s;
    float v[CC_DIM];
    tu_rng r;

    tu_rng_seed(&r, t->seed);
    do {
        size_t pub = 0, beg = 0, c;
        int w = (int)tu_rng_below(&r, ST_WRITERS);
        size_t p = atomic_load_explicit(&s->range[w].published, memory_order_acquire);
        uint64_t l0 = tu_rng_below(&r, s->n0);
        sw_status st;

        t->ops++;
        if (p > 0) {
            size_t idx = (size_t)tu_rng_below(&r, p);
            uint64_t l = s->range[w].base + idx;

            if (sw_contains(s->ix, l) != 1)
                tu_err(&t->errs, "sw_contains(%llu) != 1 after its add returned",
                       (unsigned long long)l);
            st = sw_get(s->ix, l, v, CC_DIM);
            if (st != SW_OK)
                tu_err(&t->errs, "sw_get(%llu) after its add returned: %s (%s)",
                       (unsigned long long)l, sw_test_status_name(st), sw_last_error());
            else if (memcmp(v, s->range[w].data + idx * CC_DIM, sizeof v) != 0)
                tu_err(&t->errs, "sw_get(%llu) returned a vector other than the one added",
                       (unsigned long long)l);
        }
        /* Initial labels are always present; updates change only the vector. */
        if (sw_contains(s->ix, l0) != 1)
            tu_err(&t->errs, "sw_contains(%llu) != 1 for an initial label",
                   (unsigned long long)l0);
        st = sw_get(s->ix, l0, v, CC_DIM);
        if (st != SW_OK)
            tu_err(&t->errs, "sw_get(%llu) of an initial label: %s (%s)",
                   (unsigned long long)l0, sw_test_status_name(st), sw_last_error());
        else
            for (size_t j = 0; j < CC_DIM; j++)
                if (!isfinite(v[j])) {
                    tu_err(&t->errs, "sw_get(%llu): non-finite value", (unsigned long long)l0);
                    break;
                }
        /* The count lies between what has been published and what has begun. */
        for (int u = 0; u < ST_WRITERS; u++)
            pub += atomic_load_explicit(&s->range[u].published, memory_order_acquire);
        c = sw_count(s->ix);
        for (int u = 0; u < ST_WRITERS; u++)
            beg += atomic_load_explicit(&s->range[u].started, memory_order_acquire);
        if (c < s->n0 + pub || c > s->n0 + beg)
            tu_err(&t->errs, "sw_count %zu outside [%zu, %zu]", c, s->n0 + pub, s->n0 + beg);
    } while (atomic_load(&s->writers_running) > 0 && t->errs.n < 100);
    return NULL;
}

/* sw_add writer: inserts its range in order, and after every upd_every
 * inserts updates one initial label it owns to a vector from the pool. */
static void *st_add_writer(void *arg)
{
    st_thread *t = arg;
    st_shared *s = t->s;
    st_range *rg = &s->range[t->id];
    size_t n_owned = (s->n0 - (size_t)t->id + ST_WRITERS - 1) / ST_WRITERS;
    tu_rng r;

    tu_rng_seed(&r, t->seed);
    for (size_t i = 0; i < rg->n; i++) {
        sw_status st;

        if (i % s->upd_every == 0) {
            uint64_t l = (uint64_t)t->id + ST_WRITERS * tu_rng_below(&r, n_owned);
            const float *v = s->upd + tu_rng_below(&r, s->n_upd) * CC_DIM;

            st = sw_add(s->ix, l, v, CC_DIM);
            t->ops++;
            if (st != SW_OK)
                tu_err(&t->errs, "sw_add(update %llu): %s (%s)", (unsigned long long)l,
                       sw_test_status_name(st), sw_last_error());
            else
                memcpy(s->cur + l * CC_DIM, v, CC_DIM * sizeof(float));
        }
        atomic_store_explicit(&rg->started, i + 1, memory_order_release);
        st = sw_add(s->ix, rg->base + i, rg->data + i * CC_DIM, CC_DIM);
        t->ops++;
        if (st != SW_OK) {
            tu_err(&t->errs, "sw_add(%llu): %s (%s)", (unsigned long long)(rg->base + i),
                   sw_test_status_name(st), sw_last_error());
            break; /* published must stay a prefix */
        }
        atomic_store_explicit(&rg->published, i + 1, memory_order_release);
    }
    atomic_fetch_sub(&s->writers_running, 1);
    return NULL;
}

/* sw_add_batch writer: batches of batch_new new labels and batch_upd
 * updates of distinct initial labels it owns, interleaved. */
static void *st_batch_writer(void *arg)
{
    st_thread *t = arg;
    st_shared *s = t->s;
    st_range *rg = &s->range[t->id];
    size_t bsize = s->batch_new + s->batch_upd;
    size_t n_owned = (s->n0 - (size_t)t->id + ST_WRITERS - 1) / ST_WRITERS;
    uint64_t *labels = malloc(bsize * sizeof *labels);
    float *vecs = malloc(bsize * CC_DIM * sizeof *vecs);
    tu_rng r;

    tu_rng_seed(&r, t->seed);
    if (labels == NULL || vecs == NULL) {
        tu_err(&t->errs, "out of memory");
        goto done;
    }
    for (size_t done_new = 0, b = 0; done_new < rg->n; b++) {
        size_t nn = rg->n - done_new < s->batch_new ? rg->n - done_new : s->batch_new;
        size_t m, off = (size_t)tu_rng_below(&r, n_owned);
        sw_status st;

        /* Updates at positions 3, 7, 11, ... (and at the end once the new
         * labels run out), new labels in the other slots, in order. */
        m = 0;
        {
            size_t u = 0, w = 0;

            while (u < s->batch_upd || w < nn) {
                if ((m % 4 == 3 && u < s->batch_upd) || w == nn) {
                    labels[m] = (uint64_t)t->id + ST_WRITERS * ((off + u) % n_owned);
                    memcpy(vecs + m * CC_DIM, s->upd + tu_rng_below(&r, s->n_upd) * CC_DIM,
                           CC_DIM * sizeof(float));
                    u++;
                } else {
                    labels[m] = rg->base + done_new + w;
                    memcpy(vecs + m * CC_DIM, rg->data + (done_new + w) * CC_DIM,
                           CC_DIM * sizeof(float));
                    w++;
                }
                m++;
            }
        }
        atomic_store_explicit(&rg->started, done_new + nn, memory_order_release);
        st = sw_add_batch(s->ix, labels, vecs, m, CC_DIM, ST_BATCH_THREADS);
        t->ops++;
        if (st != SW_OK) {
            tu_err(&t->errs, "sw_add_batch(batch %zu): %s (%s)", b, sw_test_status_name(st),
                   sw_last_error());
            break;
        }
        for (size_t i = 0; i < m; i++)
            if (labels[i] < s->n0)
                memcpy(s->cur + labels[i] * CC_DIM, vecs + i * CC_DIM, CC_DIM * sizeof(float));
        done_new += nn;
        atomic_store_explicit(&rg->published, done_new, memory_order_release);
    }
done:
    free(labels);
    free(vecs);
    atomic_fetch_sub(&s->writers_running, 1);
    return NULL;
}

TEST(concurrent_stress_searches_during_inserts_and_updates)
{
    const size_t n0 = CC_SIZE(2000, 400), n_add = CC_SIZE(1500, 240);
    const size_t n_batch = CC_SIZE(1152, 144), nq = 200;
    float *init = tu_clustered(n0, CC_DIM, CC_CENTRES, 841, 1);
    float *radd[2] = {tu_clustered(n_add, CC_DIM, CC_CENTRES, 841, 2),
                      tu_clustered(n_add, CC_DIM, CC_CENTRES, 841, 3)};
    float *rbatch = tu_clustered(n_batch, CC_DIM, CC_CENTRES, 841, 4);
    float *upd = tu_clustered(500, CC_DIM, CC_CENTRES, 841, 5);
    float *queries = tu_clustered(nq, CC_DIM, CC_CENTRES, 841, 6);
    float *cur = malloc(n0 * CC_DIM * sizeof *cur);
    double *upd_dist = malloc(nq * 500 * sizeof *upd_dist);
    sw_options o = cc_opts(100);
    st_shared s;
    enum { NW = ST_WRITERS, NR = 3 };
    st_thread th[NW + NR];
    pthread_t tid[NW + NR];
    int started[NW + NR] = {0};
    void *(*const fns[NW + NR])(void *) = {st_add_writer, st_add_writer, st_batch_writer,
                                             st_search_reader, st_batch_reader,
                                             st_lookup_reader};
    const char *const names[NW + NR] = {"sw_add writer 0",  "sw_add writer 1",
                                        "sw_add_batch writer", "sw_search reader",
                                        "sw_search_batch reader", "sw_get/sw_contains reader"};
    size_t total_new = 0, missing = 0, wrong = 0;
    float v[CC_DIM];
    tu_recall rec;

    REQUIRE(init && radd[0] && radd[1] && rbatch && upd && queries && cur && upd_dist);
    memcpy(cur, init, n0 * CC_DIM * sizeof *cur);
    memset(&s, 0, sizeof s);
    s.ix = tu_build(&o, init, n0);
    REQUIRE(s.ix != NULL);
    s.n0 = n0;
    s.cur = cur;
    s.init = init;
    s.upd = upd;
    s.upd_dist = upd_dist;
    for (size_t q = 0; q < nq; q++)
        for (size_t u = 0; u < 500; u++)
            upd_dist[q * 500 + u] =
                tu_ref_dist(SW_METRIC_L2, queries + q * CC_DIM, upd + u * CC_DIM, CC_DIM);
    s.n_upd = 500;
    s.upd_every = 3;
    s.batch_new = CC_SIZE(48, 24);
    s.batch_upd = CC_SIZE(12, 6);
    s.queries = queries;
    s.nq = nq;
    for (int w = 0; w < NW; w++) {
        s.range[w].base = (uint64_t)(w + 1) * 1000000u;
        s.range[w].data = w < 2 ? radd[w] : rbatch;
        s.range[w].n = w < 2 ? n_add : n_batch;
        atomic_init(&s.range[w].started, 0);
        atomic_init(&s.range[w].published, 0);
        total_new += s.range[w].n;
    }
    atomic_init(&s.writers_running, NW);

    for (int i = 0; i < NW + NR; i++) {
        memset(&th[i], 0, sizeof th[i]);
        th[i].s = &s;
        th[i].id = i;
        th[i].seed = 8410 + (uint64_t)i;
    }
    /* Readers first, so they are running when the writers start. */
    for (int i = NW; i < NW + NR; i++)
        started[i] = pthread_create(&tid[i], NULL, fns[i], &th[i]) == 0;
    for (int i = 0; i < NW; i++) {
        started[i] = pthread_create(&tid[i], NULL, fns[i], &th[i]) == 0;
        if (!started[i])
            atomic_fetch_sub(&s.writers_running, 1);
    }
    for (int i = 0; i < NW + NR; i++) {
        if (!started[i]) {
            sw_test_fail_at(__FILE__, __LINE__, "pthread_create failed for %s", names[i]);
            continue;
        }
        pthread_join(tid[i], NULL);
        CHECK_NO_ERRS(&th[i].errs, names[i]);
    }
    NOTE("%zu initial vectors, %zu inserted and %zu+ updated by 3 writers while %zu searches, "
         "%zu batch searches and %zu lookups ran",
         n0, total_new, n_add / s.upd_every * 2, th[NW].ops, th[NW + 1].ops, th[NW + 2].ops);

    CHECK_GRAPH_AT(s.ix, "after concurrent inserts and updates");
    CHECK_EQ_UINT(sw_count(s.ix), n0 + total_new);
    for (int w = 0; w < NW; w++)
        for (size_t i = 0; i < s.range[w].n; i++) {
            if (sw_get(s.ix, s.range[w].base + i, v, CC_DIM) != SW_OK)
                missing++;
            else if (memcmp(v, s.range[w].data + i * CC_DIM, sizeof v) != 0)
                wrong++;
        }
    for (size_t l = 0; l < n0; l++) {
        if (sw_get(s.ix, l, v, CC_DIM) != SW_OK)
            missing++;
        else if (memcmp(v, cur + l * CC_DIM, sizeof v) != 0)
            wrong++; /* not the last vector its one writer gave it */
    }
    if (missing != 0 || wrong != 0)
        sw_test_fail_at(__FILE__, __LINE__,
                        "after the run: %zu labels missing, %zu with a vector other than the "
                        "last one written",
                        missing, wrong);
    rec = tu_measure_recall(s.ix, queries, nq, 10, 100);
    NOTE("recall@10 at ef=100 after the run, %zu queries: %.4f (by label %.4f)", nq,
         rec.tie_aware, rec.by_label);
    CHECK(rec.tie_aware >= 0.9);

    sw_free(s.ix);
    free(init);
    free(radd[0]);
    free(radd[1]);
    free(rbatch);
    free(upd);
    free(queries);
    free(cur);
    free(upd_dist);
}

/* ===================================================================== */
/* Saves during inserts                                                  */
/* ===================================================================== */

typedef struct sv_writer {
    sw_index *ix;
    const float *data;
    size_t from, to;
    atomic_int done;
    tu_errs errs;
} sv_writer;

static void *sv_writer_fn(void *arg)
{
    sv_writer *w = arg;

    for (size_t i = w->from; i < w->to; i++) {
        sw_status st = sw_add(w->ix, i, w->data + i * CC_DIM, CC_DIM);

        if (st != SW_OK) {
            tu_err(&w->errs, "sw_add(%zu): %s (%s)", i, sw_test_status_name(st),
                   sw_last_error());
            break;
        }
    }
    atomic_store(&w->done, 1);
    return NULL;
}

TEST(concurrent_save_during_inserts)
{
    enum { MAX_SAVES = 8, MIN_SAVES = 3 };
    const size_t n0 = CC_SIZE(1000, 300), n = CC_SIZE(6000, 900);
    float *data = tu_clustered(n, CC_DIM, CC_CENTRES, 851, 1);
    sw_options o = cc_opts(100);
    sv_writer w;
    pthread_t tid;
    char dir[256], paths[MAX_SAVES][320];
    size_t before[MAX_SAVES], after[MAX_SAVES];
    sw_status status[MAX_SAVES];
    int n_saves = 0, overlapped = 0;

    REQUIRE(data != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    memset(&w, 0, sizeof w);
    w.ix = tu_build(&o, data, n0);
    REQUIRE(w.ix != NULL);
    w.data = data;
    w.from = n0;
    w.to = n;
    atomic_init(&w.done, 0);
    REQUIRE(pthread_create(&tid, NULL, sv_writer_fn, &w) == 0);
    while (n_saves < MAX_SAVES && (n_saves < MIN_SAVES || !atomic_load(&w.done))) {
        /* Spread the saves over the writer's progress (not a timing
         * assumption: a writer that is done ends the wait). */
        size_t goal = n0 + (size_t)n_saves * (n - n0) / MAX_SAVES;

        while (sw_count(w.ix) < goal && !atomic_load(&w.done))
            sched_yield();
        snprintf(paths[n_saves], sizeof paths[n_saves], "%s/during-%d.swi", dir, n_saves);
        before[n_saves] = sw_count(w.ix);
        status[n_saves] = sw_save(w.ix, paths[n_saves]);
        after[n_saves] = sw_count(w.ix);
        if (after[n_saves] < n)
            overlapped++;
        n_saves++;
    }
    pthread_join(tid, NULL);
    CHECK_NO_ERRS(&w.errs, "writer");
    CHECK_EQ_UINT(sw_count(w.ix), n);
    CHECK_GRAPH_AT(w.ix, "after the writer");

    for (int i = 0; i < n_saves; i++) {
        sw_index *b = NULL;
        size_t c, missing = 0, wrong = 0;
        float v[CC_DIM];
        char what[64];

        CHECK_STATUS(status[i], SW_OK);
        if (status[i] != SW_OK)
            continue;
        CHECK_OK(sw_load(paths[i], NULL, &b));
        if (b == NULL)
            continue;
        snprintf(what, sizeof what, "file %d", i);
        CHECK_GRAPH_AT(b, what);
        c = sw_count(b);
        if (c < before[i] || c > after[i])
            sw_test_fail_at(__FILE__, __LINE__,
                            "file %d holds %zu vectors; the index had %zu before the save "
                            "and %zu after",
                            i, c, before[i], after[i]);
        /* One writer adds labels in order, so a file holds a prefix. */
        for (size_t l = 0; l < c; l++) {
            if (sw_get(b, l, v, CC_DIM) != SW_OK)
                missing++;
            else if (memcmp(v, data + l * CC_DIM, sizeof v) != 0)
                wrong++;
        }
        if (missing != 0 || wrong != 0)
            sw_test_fail_at(__FILE__, __LINE__,
                            "file %d (%zu vectors): %zu of labels 0..%zu missing, %zu with a "
                            "wrong vector",
                            i, c, missing, c - 1, wrong);
        if (c < n && sw_contains(b, c))
            sw_test_fail_at(__FILE__, __LINE__, "file %d (%zu vectors) holds label %zu", i, c,
                            c);
        sw_free(b);
    }
    /* Nothing but the saved files is left in the directory (the temporary
     * names were renamed over the targets). */
    CHECK_EQ_INT(tu_count_entries(dir), n_saves);
    NOTE("%d saves, %d of them while the writer was adding (counts %zu..%zu)", n_saves,
         overlapped, before[0], after[n_saves - 1]);
    sw_free(w.ix);
    tu_rmtree(dir);
    CHECK_EQ_INT(tu_count_entries(dir), -1);
    free(data);
}

/* ===================================================================== */
/* One label, many writers                                               */
/* ===================================================================== */

typedef struct sl_job {
    sw_index *ix;
    const float *vecs; /* n_labels x dim, this thread's vector for each label */
    size_t n_labels;
    int reverse_second_pass;
    pthread_barrier_t *start;
    tu_errs errs;
} sl_job;

static void *sl_worker(void *arg)
{
    sl_job *j = arg;

    /* All threads leave the barrier together, so the first adds of an empty
     * index collide.  Pass 1: every thread in the same order, so threads
     * collide on the same new label; pass 2: half of them backwards,
     * updates crossing. */
    pthread_barrier_wait(j->start);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < j->n_labels; i++) {
            size_t l = pass == 1 && j->reverse_second_pass ? j->n_labels - 1 - i : i;
            sw_status st = sw_add(j->ix, l, j->vecs + l * CC_DIM, CC_DIM);

            if (st != SW_OK)
                tu_err(&j->errs, "pass %d: sw_add(%zu): %s (%s)", pass, l,
                       sw_test_status_name(st), sw_last_error());
        }
    return NULL;
}

typedef struct sl_result {
    size_t missing, foreign, unreachable;
} sl_result;

/*
 * n_threads threads add labels 0..n_labels-1, twice, each with its own
 * vectors (vecs[t]), to a new empty index; then the index must hold each
 * label once with one of the vectors written for it, pass the graph check
 * and find each label at its stored vector.  Returns the index (or NULL).
 */
static sw_index *sl_run(float *const *vecs, size_t n_threads, size_t n_labels, const char *what,
                        sl_result *res)
{
    enum { T = 4 };
    sw_options o = cc_opts(100);
    sw_index *ix = cc_create(&o);
    sl_job jobs[T];
    pthread_t tid[T];
    pthread_barrier_t start;
    float v[CC_DIM];
    size_t n_started = 0;

    memset(res, 0, sizeof *res);
    if (ix == NULL)
        return NULL;
    if (n_threads > T || pthread_barrier_init(&start, NULL, (unsigned)n_threads) != 0) {
        sw_test_fail_at(__FILE__, __LINE__, "pthread_barrier_init failed");
        sw_free(ix);
        return NULL;
    }
    for (size_t t = 0; t < n_threads; t++) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t].ix = ix;
        jobs[t].vecs = vecs[t];
        jobs[t].n_labels = n_labels;
        jobs[t].reverse_second_pass = (int)(t & 1);
        jobs[t].start = &start;
        if (pthread_create(&tid[t], NULL, sl_worker, &jobs[t]) != 0)
            break;
        n_started++;
    }
    if (n_started < n_threads) {
        /* The barrier would never open: fail loudly rather than hang. */
        sw_test_fail_at(__FILE__, __LINE__, "pthread_create failed");
        abort();
    }
    for (size_t t = 0; t < n_threads; t++) {
        pthread_join(tid[t], NULL);
        CHECK_NO_ERRS(&jobs[t].errs, what);
    }
    pthread_barrier_destroy(&start);
    CHECK_EQ_UINT(sw_count(ix), n_labels);
    CHECK_GRAPH_AT(ix, what);
    for (size_t l = 0; l < n_labels; l++) {
        int match = 0;
        uint64_t lab[1];
        float d[1];
        size_t nf = 0;
        sw_search_params p = sw_search_params_default();

        if (sw_get(ix, l, v, CC_DIM) != SW_OK) {
            res->missing++;
            continue;
        }
        for (size_t t = 0; t < n_threads && !match; t++)
            match = memcmp(v, vecs[t] + l * CC_DIM, sizeof v) == 0;
        if (!match)
            res->foreign++;
        /* The stored vector is where the label is found. */
        p.ef = 64;
        if (sw_search(ix, v, CC_DIM, 1, &p, lab, d, &nf) != SW_OK || nf != 1 || lab[0] != l ||
            d[0] != 0.0f)
            res->unreachable++;
    }
    if (res->missing != 0 || res->foreign != 0)
        sw_test_fail_at(__FILE__, __LINE__,
                        "%s: %zu labels missing, %zu with a vector no thread wrote for them",
                        what, res->missing, res->foreign);
    return ix;
}

TEST(concurrent_single_adds_same_label)
{
    enum { T = 4 };
    const size_t n_labels = CC_SIZE(1500, 200), nq = CC_SIZE(200, 60);
    const size_t n_threads = CC_SIZE(T, 3), rounds = CC_SIZE(40, 10), small = 12;
    float *vecs[T] = {NULL};
    float *queries = tu_clustered(nq, CC_DIM, CC_CENTRES, 861, 99);
    sw_index *ix;
    sl_result res;
    size_t small_unreachable = 0;
    tu_recall rec;
    char what[64];

    REQUIRE(queries != NULL);
    for (size_t t = 0; t < n_threads; t++) {
        vecs[t] = tu_clustered(n_labels, CC_DIM, CC_CENTRES, 861, 1 + t);
        REQUIRE(vecs[t] != NULL);
    }
    /* Many tiny indexes: the race on the very first adds (one inserts the
     * first node while the others find the label present and update it). */
    for (size_t r = 0; r < rounds && !sw_test_failed(); r++) {
        snprintf(what, sizeof what, "round %zu, %zu labels", r, small);
        ix = sl_run(vecs, n_threads, small, what, &res);
        small_unreachable += res.unreachable;
        sw_free(ix);
    }
    CHECK_EQ_UINT(small_unreachable, 0);

    ix = sl_run(vecs, n_threads, n_labels, "racing adds of the same labels", &res);
    REQUIRE(ix != NULL);
    rec = tu_measure_recall(ix, queries, nq, 10, 64);
    NOTE("%zu rounds of %zu threads x 2 passes over %zu labels; then over %zu labels: count "
         "%zu, %zu not found at their stored vector (k=1, ef=64), recall@10 at ef=64 %.4f",
         rounds, n_threads, small, n_labels, sw_count(ix), res.unreachable, rec.tie_aware);
    CHECK(res.unreachable <= n_labels / 100);
    CHECK(rec.tie_aware >= 0.9);
    sw_free(ix);
    for (size_t t = 0; t < n_threads; t++)
        free(vecs[t]);
    free(queries);
}

/* ===================================================================== */
/* sw_get_stats during searches                                          */
/* ===================================================================== */

/* sw_get_stats holds save_lock alone, which keeps adds out but not
 * searches, and its memory breakdown walks the idle scratch contexts while
 * searches take, grow and return them.  Searchers widen their pools as
 * they go (ef up to 1,200), so contexts keep growing during the reports.
 * Each report must still be whole: the graph counts of the quiet index,
 * no damage, parts never above the total; and once the searchers are done
 * every byte they added is scratch space. */
typedef struct gs_thread {
    sw_index *ix;
    const float *queries;
    size_t nq, rounds, bad;
    unsigned seed;
    atomic_int *running; /* searchers not yet done */
} gs_thread;

static void *gs_searcher(void *arg)
{
    gs_thread *t = arg;
    sw_search_params p = sw_search_params_default();
    uint64_t labels[10];
    size_t n_found;

    for (size_t r = 0; r < t->rounds; r++)
        for (size_t q = 0; q < t->nq; q++) {
            p.ef = (uint32_t)(10 + (r * t->nq + q + t->seed) * 37 % 1200);
            if (sw_search(t->ix, t->queries + q * CC_DIM, CC_DIM, 10, &p, labels, NULL,
                          &n_found) != SW_OK ||
                n_found != 10)
                t->bad++;
        }
    atomic_fetch_sub(t->running, 1);
    return NULL;
}

TEST(concurrent_stats_during_searches)
{
    enum { T = 3 };
    const size_t n = CC_SIZE(2000, 400), nq = CC_SIZE(100, 20), reports = CC_SIZE(40, 8);
    float *data = tu_clustered(n, CC_DIM, CC_CENTRES, 871, 1);
    float *queries = tu_clustered(nq, CC_DIM, CC_CENTRES, 871, 2);
    sw_options o = cc_opts(100);
    sw_index *ix;
    sw_stats base, st;
    gs_thread th[T];
    pthread_t tid[T];
    int started[T] = {0};
    size_t bad_reports = 0, n_reports = 0;
    atomic_int running;

    REQUIRE(data != NULL && queries != NULL);
    ix = tu_build(&o, data, n);
    REQUIRE(ix != NULL);
    REQUIRE_OK(sw_get_stats(ix, &base));
    atomic_init(&running, T);
    for (int i = 0; i < T; i++) {
        th[i] = (gs_thread){ix, queries, nq, CC_SIZE(3, 2), 0, (unsigned)i * 101u, &running};
        started[i] = pthread_create(&tid[i], NULL, gs_searcher, &th[i]) == 0;
        if (!started[i])
            atomic_fetch_sub(&running, 1);
    }
    /* Reports for as long as any searcher runs, and at least `reports`. */
    for (size_t r = 0; r < reports || atomic_load(&running) > 0; r++) {
        size_t parts;

        n_reports++;
        if (sw_get_stats(ix, &st) != SW_OK) {
            bad_reports++;
            continue;
        }
        parts = st.memory_vectors + st.memory_links0 + st.memory_upper + st.memory_labels +
                st.memory_scratch;
        if (memcmp(st.layer, base.layer, sizeof st.layer) != 0 || st.count != n ||
            st.self_links + st.duplicate_links + st.dangling_links + st.overfull_lists ||
            st.unreachable != base.unreachable || parts > st.memory_bytes ||
            st.memory_vectors != base.memory_vectors || st.memory_labels != base.memory_labels)
            bad_reports++;
    }
    for (int i = 0; i < T; i++) {
        CHECK(started[i]);
        if (started[i])
            pthread_join(tid[i], NULL);
        CHECK_EQ_UINT(th[i].bad, 0);
    }
    CHECK_EQ_UINT(bad_reports, 0);
    NOTE("%zu reports during %d x %zu x %zu searches", n_reports, T, th[0].rounds, nq);
    REQUIRE_OK(sw_get_stats(ix, &st));
    CHECK(st.memory_scratch > base.memory_scratch);
    CHECK_EQ_UINT(st.memory_scratch - base.memory_scratch, st.memory_bytes - base.memory_bytes);
    CHECK_EQ_UINT(st.memory_other, base.memory_other);
    sw_free(ix);
    free(queries);
    free(data);
}
