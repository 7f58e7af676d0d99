/*
 * test_update.c — re-adding a present label replaces its vector.
 *
 * An update is the hard case of insertion: the node already has neighbours
 * chosen for its old position, and other nodes point at it because of where
 * it was.  Done wrong, the index keeps answering from the old vector (stale
 * links lead searches to a node that is no longer there), or loses a
 * neighbourhood, or leaves the graph disconnected.  So the tests move a
 * vector far away and look for it at both ends, then churn an index with
 * thousands of random updates and require that recall against the exact
 * oracle holds and that the library's own graph checker finds nothing.
 *
 * The far-away vector is B = -50 A: far from everything under L2 and L1,
 * opposite under cosine, and under IP both the best match for a query at B
 * and the worst for a query at A — one construction that works for all four
 * metrics, so each is tested the same way.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sw_test.h"
#include "testutil.h"

static const sw_metric all_metrics[] = {SW_METRIC_L2, SW_METRIC_IP, SW_METRIC_COSINE,
                                        SW_METRIC_L1};
static const char *const metric_names[] = {"L2", "IP", "cosine", "L1"};

/* 1 if label appears among results. */
static int in_results(const uint64_t *lab, size_t n, uint64_t label)
{
    for (size_t i = 0; i < n; i++)
        if (lab[i] == label)
            return 1;
    return 0;
}

TEST(update_moves_vector_far_away)
{
    SKIP_UNDER_TSAN();
    const uint32_t dim = 16;
    const size_t n = 2000, k = 10;
    const uint64_t L = 17;
    float *data = tu_clustered(n, dim, 16, 401, 402);
    float A[16], B[16], out[16], nearB[16];

    REQUIRE(data != NULL);
    memcpy(A, data + L * dim, sizeof A);
    for (size_t j = 0; j < dim; j++) {
        B[j] = -50.0f * A[j];
        nearB[j] = B[j] * 1.001f + 0.01f;
    }
    for (size_t m = 0; m < 4; m++) {
        sw_options o = sw_options_default();
        sw_index *ix;
        uint64_t lab[10];
        float d[10];
        size_t nf = 0;

        o.dim = dim;
        o.metric = all_metrics[m];
        ix = tu_build(&o, data, n);
        if (ix == NULL)
            continue;
        /* Before: L is found at A. */
        CHECK_OK(sw_search(ix, A, dim, k, NULL, lab, d, &nf));
        CHECK(in_results(lab, nf, L));

        CHECK_OK(sw_add(ix, L, B, dim));
        CHECK_EQ_UINT(sw_count(ix), n);
        CHECK_EQ_INT(sw_contains(ix, L), 1);
        CHECK_OK(sw_get(ix, L, out, dim));
        for (size_t j = 0; j < dim; j++) {
            double want = B[j];
            if (all_metrics[m] == SW_METRIC_COSINE) {
                double n2 = 0;
                for (size_t i = 0; i < dim; i++)
                    n2 += (double)B[i] * B[i];
                want = B[j] / sqrt(n2);
            }
            CHECK_NEAR(out[j], want, 1e-6 * (1 + fabs(want)));
        }

        for (int exact = 0; exact < 2; exact++) {
            const char *how = exact ? "exact" : "search";
            sw_status st;

            st = exact ? sw_search_exact(ix, nearB, dim, k, NULL, lab, d, &nf)
                       : sw_search(ix, nearB, dim, k, NULL, lab, d, &nf);
            CHECK_OK(st);
            if (nf == 0 || lab[0] != L)
                sw_test_fail_at(__FILE__, __LINE__, "%s %s: query near B: first is %llu, want %llu",
                                metric_names[m], how,
                                nf ? (unsigned long long)lab[0] : 0ull, (unsigned long long)L);
            st = exact ? sw_search_exact(ix, A, dim, k, NULL, lab, d, &nf)
                       : sw_search(ix, A, dim, k, NULL, lab, d, &nf);
            CHECK_OK(st);
            CHECK_EQ_UINT(nf, k);
            if (in_results(lab, nf, L))
                sw_test_fail_at(__FILE__, __LINE__,
                                "%s %s: query at the old vector A still returns label %llu",
                                metric_names[m], how, (unsigned long long)L);
        }
        /* And back again.  Under IP a vector need not be its own nearest
         * neighbour, so "found" means: among the exact ten at A. */
        CHECK_OK(sw_add(ix, L, A, dim));
        CHECK_EQ_UINT(sw_count(ix), n);
        CHECK_OK(sw_search(ix, A, dim, k, NULL, lab, d, &nf));
        if (all_metrics[m] == SW_METRIC_IP) {
            uint64_t el[10];
            CHECK_OK(sw_search_exact(ix, A, dim, k, NULL, el, NULL, &nf));
            if (in_results(el, nf, L) && !in_results(lab, nf, L))
                sw_test_fail_at(__FILE__, __LINE__, "IP: moved back, label %llu not found at A",
                                (unsigned long long)L);
        } else if (lab[0] != L) {
            sw_test_fail_at(__FILE__, __LINE__, "%s: moved back, query at A gives %llu first",
                            metric_names[m], (unsigned long long)lab[0]);
        }
        CHECK_GRAPH_AT(ix, metric_names[m]);
        sw_free(ix);
    }
    free(data);
}

TEST(update_tiny_indexes)
{
    sw_options o = sw_options_default();
    sw_index *ix = NULL;
    const float a[2] = {1, 1}, b[2] = {5, 5}, c[2] = {-3, 2};
    uint64_t lab[2];
    float d[2], out[2];
    size_t nf = 0;

    o.dim = 2;
    REQUIRE_OK(sw_create(&o, &ix));
    CHECK_OK(sw_add(ix, 7, a, 2));
    CHECK_OK(sw_add(ix, 7, b, 2)); /* the only node, updated */
    CHECK_EQ_UINT(sw_count(ix), 1);
    CHECK_OK(sw_get(ix, 7, out, 2));
    CHECK(out[0] == 5 && out[1] == 5);
    CHECK_OK(sw_search(ix, b, 2, 2, NULL, lab, d, &nf));
    CHECK_EQ_UINT(nf, 1);
    CHECK_NEAR(d[0], 0.0, 0);
    CHECK_GRAPH(ix);
    CHECK_OK(sw_add(ix, 8, c, 2));
    CHECK_OK(sw_add(ix, 7, c, 2)); /* now 7 and 8 coincide */
    CHECK_OK(sw_add(ix, 8, a, 2));
    CHECK_EQ_UINT(sw_count(ix), 2);
    CHECK_OK(sw_search(ix, a, 2, 1, NULL, lab, d, &nf));
    CHECK_EQ_UINT(lab[0], 8);
    CHECK_OK(sw_search(ix, c, 2, 1, NULL, lab, d, &nf));
    CHECK_EQ_UINT(lab[0], 7);
    /* Re-adding the same vector is an update too. */
    for (int i = 0; i < 20; i++)
        CHECK_OK(sw_add(ix, 7, c, 2));
    CHECK_EQ_UINT(sw_count(ix), 2);
    CHECK_GRAPH(ix);
    sw_free(ix);
}

/*
 * Churn: 5,000 vectors, then 3,000 updates of random labels to fresh draws
 * from the mixture (most land in another cluster), with new labels added in
 * between.  Checked: graph integrity along the way, every label's vector is
 * its latest, recall@10 at ef = 200 stays at 0.98 or better.
 */
static void churn(sw_metric metric, const char *name)
{
    const uint32_t dim = 16;
    const size_t n = 5000, n_updates = 3000, n_new = 300, nq = 200;
    float *data = tu_clustered(n + n_new, dim, 32, 411, 412);
    float *fresh = tu_clustered(n_updates, dim, 32, 411, 413);
    float *queries = tu_clustered(nq, dim, 32, 411, 414);
    float *latest = malloc((n + n_new) * dim * sizeof *latest);
    float *out = malloc(dim * sizeof *out);
    sw_options o = sw_options_default();
    sw_index *ix = NULL;
    size_t added = n, wrong_vec = 0;
    tu_recall before, after;
    tu_rng r;

    if (data == NULL || fresh == NULL || queries == NULL || latest == NULL || out == NULL) {
        sw_test_fail_at(__FILE__, __LINE__, "out of memory");
        goto done;
    }
    o.dim = dim;
    o.metric = metric;
    ix = tu_build(&o, data, n);
    if (ix == NULL)
        goto done;
    memcpy(latest, data, (n + n_new) * dim * sizeof *latest);
    before = tu_measure_recall(ix, queries, nq, 10, 200);

    tu_rng_seed(&r, 415);
    for (size_t u = 0; u < n_updates; u++) {
        uint64_t label = tu_rng_below(&r, added);
        sw_status st = sw_add(ix, label, fresh + u * dim, dim);

        if (st != SW_OK) {
            sw_test_fail_at(__FILE__, __LINE__, "update %zu of label %llu: %s (%s)", u,
                            (unsigned long long)label, sw_test_status_name(st), sw_last_error());
            goto done;
        }
        memcpy(latest + label * dim, fresh + u * dim, dim * sizeof *latest);
        if (u % 10 == 9 && added < n + n_new) {
            CHECK_OK(sw_add(ix, added, data + added * dim, dim));
            added++;
        }
        if (u % 1000 == 999)
            CHECK_GRAPH_AT(ix, name);
    }
    CHECK_EQ_UINT(sw_count(ix), added);
    for (size_t i = 0; i < added; i++) {
        const float *want = latest + i * dim;
        int same = sw_get(ix, i, out, dim) == SW_OK;

        for (size_t j = 0; same && j < dim; j++) {
            if (metric == SW_METRIC_COSINE) {
                double n2 = 0;
                for (size_t t = 0; t < dim; t++)
                    n2 += (double)want[t] * want[t];
                same = fabs(out[j] - want[j] / sqrt(n2)) <= 1e-5;
            } else {
                same = out[j] == want[j];
            }
        }
        wrong_vec += !same;
    }
    CHECK_EQ_UINT(wrong_vec, 0);
    CHECK_GRAPH(ix);
    after = tu_measure_recall(ix, queries, nq, 10, 200);
    NOTE("%s: recall@10 at ef=200 before %.4f, after %zu updates and %zu adds %.4f", name,
         before.tie_aware, n_updates, added - n, after.tie_aware);
    CHECK(before.tie_aware >= 0.98);
    CHECK(after.tie_aware >= 0.98);

done:
    sw_free(ix);
    free(data);
    free(fresh);
    free(queries);
    free(latest);
    free(out);
}

TEST(update_churn_keeps_recall_l2)
{
    SKIP_UNDER_TSAN();
    churn(SW_METRIC_L2, "L2");
}

TEST(update_churn_keeps_recall_cosine)
{
    SKIP_UNDER_TSAN();
    churn(SW_METRIC_COSINE, "cosine");
}

/* Every vector replaced once, in order: the index ends up holding a
 * completely different data set, and must serve it as well as a fresh
 * build would. */
TEST(update_every_label_once)
{
    SKIP_UNDER_TSAN();
    const uint32_t dim = 12;
    const size_t n = 1500, nq = 100;
    float *first = tu_clustered(n, dim, 16, 421, 422);
    float *second = tu_clustered(n, dim, 16, 421, 423);
    float *queries = tu_clustered(nq, dim, 16, 421, 424);
    sw_options o = sw_options_default();
    sw_index *ix;
    tu_recall rec;

    REQUIRE(first != NULL && second != NULL && queries != NULL);
    o.dim = dim;
    ix = tu_build(&o, first, n);
    REQUIRE(ix != NULL);
    for (size_t i = 0; i < n; i++)
        CHECK_OK(sw_add(ix, i, second + i * dim, dim));
    CHECK_EQ_UINT(sw_count(ix), n);
    CHECK_GRAPH(ix);
    rec = tu_measure_recall(ix, queries, nq, 10, 200);
    NOTE("recall@10 at ef=200 after replacing all %zu vectors: %.4f", n, rec.tie_aware);
    CHECK(rec.tie_aware >= 0.98);
    /* A query at a stored vector finds its label at distance 0.  The search
     * is approximate, so a rare miss is allowed; a stale vector or a lost
     * node shows up as many. */
    {
        size_t tried = 0, missed = 0;

        for (size_t i = 0; i < n; i += 7) {
            uint64_t lab = 0;
            float d = -1;
            size_t nf = 0;
            sw_search_params p = sw_search_params_default();

            p.ef = 100;
            CHECK_OK(sw_search(ix, second + i * dim, dim, 1, &p, &lab, &d, &nf));
            tried++;
            if (nf != 1 || lab != i || d != 0)
                missed++;
        }
        NOTE("self-queries: %zu of %zu missed", missed, tried);
        CHECK(missed * 100 <= tried);
    }
    sw_free(ix);
    free(first);
    free(second);
    free(queries);
}
