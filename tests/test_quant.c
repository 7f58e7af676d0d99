/*
 * test_quant.c — compressed indexes (quant.c) through the public API.
 *
 * Every type is built from one Gaussian mixture (4,500 x 32, 32 centres:
 * enough rows for PQ's automatic training) and searched with 100 queries
 * drawn from the same centres.  The oracle is sw_search_exact, which
 * scores the full-precision copies, so recall measures what walking on
 * codes and re-ranking lose.  The floors were set from measured values
 * with a margin (the measured figure is printed): float16 and int8 with
 * re-ranking lose next to nothing, PQ some, binary (one bit a dimension,
 * a graph built on Hamming distance) much more.
 *
 * Also: distances after re-ranking are the true ones; without copies they
 * are the codes' estimates, close to the true ones for int8; a file round
 * trip (sw_load, and sw_open_mmap) answers exactly as the saved index did,
 * for each way of keeping the copies; every refusal the API promises
 * (untrained, bad options, bad rerank) with the index unchanged; updates
 * and deletions keep working on codes.
 */
#include "sw_test.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 4500u
#define DIM 32u
#define NQ 100u

static float *base_data(void) { return tu_clustered(N, DIM, 32, 7, 1); }
static float *query_data(void) { return tu_clustered(NQ, DIM, 32, 7, 2); }

static sw_index *build_q(sw_type type, sw_keep keep, sw_metric metric, const float *x) {
    sw_options o = sw_options_default();
    o.dim = DIM;
    o.metric = metric;
    o.type = type;
    o.keep = keep;
    sw_index *ix = NULL;
    if (sw_create(&o, &ix) != SW_OK) {
        sw_test_fail_at(__FILE__, __LINE__, "sw_create: %s", sw_last_error());
        return NULL;
    }
    uint64_t *lab = malloc(N * sizeof *lab);
    for (size_t i = 0; i < N; i++) lab[i] = i;
    sw_status st = sw_add_batch(ix, lab, x, N, DIM, 2);
    free(lab);
    if (st != SW_OK) {
        sw_test_fail_at(__FILE__, __LINE__, "sw_add_batch: %s", sw_last_error());
        sw_free(ix);
        return NULL;
    }
    return ix;
}

static double recall_at(const sw_index *ix, const float *q, uint32_t ef, uint32_t rerank) {
    sw_search_params p = sw_search_params_default();
    p.ef = ef;
    p.rerank = rerank;
    return tu_measure_recall_with(ix, q, NQ, 10, &p).tie_aware;
}

static void check_type(sw_type type, sw_metric metric, double floor_r4) {
    float *x = base_data(), *q = query_data();
    REQUIRE(x && q);
    sw_index *ix = build_q(type, SW_KEEP_MEMORY, metric, x);
    REQUIRE(ix);
    CHECK(sw_is_trained(ix));
    CHECK_OK(sw_verify(ix));
    double r1 = recall_at(ix, q, 64, 1), r4 = recall_at(ix, q, 64, 4);
    printf("    # type %d metric %d: recall@10 at ef 64: rerank 1 %.3f, rerank 4 %.3f\n", (int)type,
           (int)metric, r1, r4);
    CHECK(r4 >= floor_r4);
    CHECK(r4 >= r1 - 0.01); /* re-scoring more candidates never loses much */
    /* re-ranked distances are the full-precision ones */
    uint64_t lab[10];
    float d[10];
    size_t nf = 0;
    CHECK_OK(sw_search(ix, q, DIM, 10, NULL, lab, d, &nf));
    CHECK_EQ_INT(nf, 10);
    for (size_t i = 0; i < nf; i++) {
        double ref = tu_ref_dist(metric, q, x + lab[i] * DIM, DIM);
        CHECK_NEAR(d[i], ref, tu_dist_tol(ref));
        if (i) CHECK(d[i] >= d[i - 1]);
    }
    /* sw_get returns the kept vector (normalised for cosine) */
    float v[DIM];
    CHECK_OK(sw_get(ix, 17, v, DIM));
    if (metric != SW_METRIC_COSINE) CHECK(memcmp(v, x + 17 * DIM, sizeof v) == 0);
    sw_stats s;
    CHECK_OK(sw_get_stats(ix, &s));
    CHECK(s.memory_full >= (size_t)N * DIM * 4);
    sw_free(ix);
    free(x);
    free(q);
}

TEST(quant_f16_recall) { check_type(SW_TYPE_F16, SW_METRIC_L2, 0.97); }
TEST(quant_i8_recall) { check_type(SW_TYPE_I8, SW_METRIC_L2, 0.97); }
TEST(quant_i8_recall_cosine) { check_type(SW_TYPE_I8, SW_METRIC_COSINE, 0.95); }
TEST(quant_i8_recall_l1) { check_type(SW_TYPE_I8, SW_METRIC_L1, 0.95); }
TEST(quant_pq_recall) { check_type(SW_TYPE_PQ, SW_METRIC_L2, 0.70); }
TEST(quant_pq_recall_ip) { check_type(SW_TYPE_PQ, SW_METRIC_IP, 0.70); }
TEST(quant_binary_recall) { check_type(SW_TYPE_BINARY, SW_METRIC_L2, 0.40); }

/* Without copies: no re-ranking, distances are estimates, sw_get decodes. */
TEST(quant_i8_dropped_estimates) {
    float *x = base_data(), *q = query_data();
    REQUIRE(x && q);
    sw_index *ix = build_q(SW_TYPE_I8, SW_KEEP_NONE, SW_METRIC_L2, x);
    REQUIRE(ix);
    double r = recall_at(ix, q, 64, 0);
    printf("    # int8 without copies: recall@10 %.3f at ef 64\n", r);
    CHECK(r >= 0.85);
    uint64_t lab[10];
    float d[10];
    size_t nf = 0;
    CHECK_OK(sw_search(ix, q, DIM, 10, NULL, lab, d, &nf));
    for (size_t i = 0; i < nf; i++) {
        double ref = tu_ref_dist(SW_METRIC_L2, q, x + lab[i] * DIM, DIM);
        CHECK(fabs(d[i] - ref) <= 0.05 * ref + 1e-3);
    }
    float v[DIM];
    CHECK_OK(sw_get(ix, 5, v, DIM));
    double err = 0, norm = 0;
    for (size_t i = 0; i < DIM; i++) {
        err += (v[i] - x[5 * DIM + i]) * (v[i] - x[5 * DIM + i]);
        norm += x[5 * DIM + i] * x[5 * DIM + i];
    }
    CHECK(err <= 1e-3 * norm);
    sw_stats s;
    CHECK_OK(sw_get_stats(ix, &s));
    CHECK_EQ_INT(s.memory_full, 0);
    sw_free(ix);
    free(x);
    free(q);
}

/* Save, load (and map): the same answers, for every type and keep. */
TEST(quant_round_trip) {
    float *x = base_data(), *q = query_data();
    REQUIRE(x && q);
    char dir[256], path[300];
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/q.swi", dir);
    const sw_type types[] = {SW_TYPE_F16, SW_TYPE_I8, SW_TYPE_BINARY, SW_TYPE_PQ};
    const sw_keep keeps[] = {SW_KEEP_MEMORY, SW_KEEP_DISK, SW_KEEP_NONE};
    for (size_t t = 0; t < 4; t++)
        for (size_t k = 0; k < 3; k++) {
            sw_index *ix = build_q(types[t], keeps[k], SW_METRIC_L2, x);
            REQUIRE(ix);
            tu_snapshot a, b, c;
            REQUIRE(tu_snapshot_take(&a, ix, q, 20, 10, NULL) == 0);
            REQUIRE_OK(sw_save(ix, path));
            sw_free(ix);
            sw_index *lx = NULL, *mx = NULL;
            REQUIRE_OK(sw_load(path, NULL, &lx));
            REQUIRE_OK(sw_open_mmap(path, NULL, &mx));
            sw_options o;
            CHECK_OK(sw_get_options(lx, &o));
            CHECK_EQ_INT(o.type, types[t]);
            CHECK_EQ_INT(o.keep, keeps[k]);
            CHECK_OK(sw_verify(lx));
            CHECK_OK(sw_verify(mx));
            REQUIRE(tu_snapshot_take(&b, lx, q, 20, 10, NULL) == 0);
            REQUIRE(tu_snapshot_take(&c, mx, q, 20, 10, NULL) == 0);
            char why[200];
            if (!tu_snapshot_equal(&a, &b, why, sizeof why))
                sw_test_fail_at(__FILE__, __LINE__, "type %d keep %d loaded: %s", (int)types[t],
                                (int)keeps[k], why);
            if (!tu_snapshot_equal(&a, &c, why, sizeof why))
                sw_test_fail_at(__FILE__, __LINE__, "type %d keep %d mapped: %s", (int)types[t],
                                (int)keeps[k], why);
            /* a loaded index takes more vectors, and an update of a
             * mapped copy changes the index, not the file */
            float v[DIM];
            for (size_t i = 0; i < DIM; i++) v[i] = x[i] + 1.0f;
            CHECK_OK(sw_add(lx, 0, v, DIM));
            CHECK_OK(sw_add(lx, N + 1, x + 3 * DIM, DIM));
            CHECK_OK(sw_verify(lx));
            float got[DIM];
            CHECK_OK(sw_get(lx, 0, got, DIM));
            if (keeps[k] != SW_KEEP_NONE) CHECK(memcmp(got, v, sizeof v) == 0);
            CHECK_STATUS(sw_add(mx, N + 2, v, DIM), SW_EREADONLY);
            tu_snapshot_free(&a);
            tu_snapshot_free(&b);
            tu_snapshot_free(&c);
            sw_free(lx);
            sw_free(mx);
            /* the file still holds the old vector of label 0 */
            REQUIRE_OK(sw_load(path, NULL, &lx));
            if (keeps[k] != SW_KEEP_NONE) {
                CHECK_OK(sw_get(lx, 0, got, DIM));
                CHECK(memcmp(got, x, sizeof got) == 0);
            }
            sw_free(lx);
        }
    tu_rmtree(dir);
    free(x);
    free(q);
}

TEST(quant_training_rules) {
    float *x = base_data();
    REQUIRE(x);
    sw_options o = sw_options_default();
    o.dim = DIM;
    o.type = SW_TYPE_I8;
    sw_index *ix = NULL;
    REQUIRE_OK(sw_create(&o, &ix));
    CHECK(!sw_is_trained(ix));
    /* searching an empty untrained index is fine */
    uint64_t lab[4] = {1, 2, 3, 4};
    size_t nf = 9;
    CHECK_OK(sw_search(ix, x, DIM, 3, NULL, lab, NULL, &nf));
    CHECK_EQ_INT(nf, 0);
    CHECK_STATUS(sw_add(ix, 1, x, DIM), SW_ENOTTRAINED);
    CHECK_STATUS(sw_add_batch(ix, lab, x, 4, DIM, 1), SW_ENOTTRAINED);
    CHECK(strstr(sw_last_error(), "1000") != NULL);
    CHECK_EQ_INT(sw_count(ix), 0);
    CHECK_STATUS(sw_train(ix, x, 10, DIM + 1), SW_EDIMMISMATCH);
    float bad[DIM];
    memcpy(bad, x, sizeof bad);
    bad[3] = NAN;
    CHECK_STATUS(sw_train(ix, bad, 1, DIM), SW_ENOTFINITE);
    CHECK(!sw_is_trained(ix));
    CHECK_OK(sw_train(ix, x, 200, DIM));
    CHECK(sw_is_trained(ix));
    CHECK_STATUS(sw_train(ix, x, 200, DIM), SW_EINVAL);
    CHECK_OK(sw_add(ix, 1, x, DIM));
    CHECK_OK(sw_add_batch(ix, lab + 1, x + DIM, 3, DIM, 1));
    CHECK_EQ_INT(sw_count(ix), 4);
    /* values far outside the learned ranges saturate, and are counted */
    float far[DIM];
    for (size_t i = 0; i < DIM; i++) far[i] = 1e6f;
    CHECK_OK(sw_add(ix, 99, far, DIM));
    sw_stats s;
    CHECK_OK(sw_get_stats(ix, &s));
    CHECK_EQ_INT(s.saturated, DIM);
    float got[DIM];
    CHECK_OK(sw_get(ix, 99, got, DIM)); /* the kept copy is exact */
    CHECK(got[0] == 1e6f);
    sw_free(ix);

    /* PQ needs 256 rows to train, 4096 to train itself */
    o.type = SW_TYPE_PQ;
    REQUIRE_OK(sw_create(&o, &ix));
    CHECK_STATUS(sw_train(ix, x, 255, DIM), SW_EINVAL);
    uint64_t *many = malloc(2000 * sizeof *many);
    for (size_t i = 0; i < 2000; i++) many[i] = i;
    CHECK_STATUS(sw_add_batch(ix, many, x, 2000, DIM, 1), SW_ENOTTRAINED);
    CHECK_OK(sw_train(ix, x, 2000, DIM));
    CHECK_OK(sw_add_batch(ix, many, x, 2000, DIM, 2));
    CHECK_OK(sw_verify(ix));
    free(many);
    sw_free(ix);

    /* float16 needs no training; sw_train is a no-op there */
    o.type = SW_TYPE_F16;
    REQUIRE_OK(sw_create(&o, &ix));
    CHECK(sw_is_trained(ix));
    CHECK_OK(sw_train(ix, x, 1, DIM));
    CHECK_OK(sw_add(ix, 1, x, DIM));
    sw_free(ix);
    free(x);
}

TEST(quant_bad_options_refused) {
    sw_options o = sw_options_default();
    o.dim = DIM;
    sw_index *ix = (sw_index *)1;
    o.type = (sw_type)7;
    CHECK_STATUS(sw_create(&o, &ix), SW_EINVAL);
    CHECK(ix == NULL);
    o.type = SW_TYPE_F32;
    o.keep = SW_KEEP_DISK;
    CHECK_STATUS(sw_create(&o, &ix), SW_EINVAL);
    o.keep = (sw_keep)3;
    o.type = SW_TYPE_I8;
    CHECK_STATUS(sw_create(&o, &ix), SW_EINVAL);
    o.keep = SW_KEEP_MEMORY;
    o.pq_m = 4;
    CHECK_STATUS(sw_create(&o, &ix), SW_EINVAL); /* pq_m without PQ */
    o.type = SW_TYPE_PQ;
    o.pq_m = 5;
    CHECK_STATUS(sw_create(&o, &ix), SW_EINVAL); /* does not divide 32 */
    CHECK(strstr(sw_last_error(), "pq_m") != NULL);
    o.pq_m = 0;
    REQUIRE_OK(sw_create(&o, &ix));
    sw_options got;
    CHECK_OK(sw_get_options(ix, &got));
    CHECK_EQ_INT(got.pq_m, 4); /* dim / 8 */
    float v[DIM] = {0};
    sw_search_params p = sw_search_params_default();
    p.rerank = SW_MAX_RERANK + 1;
    size_t nf;
    CHECK_STATUS(sw_search(ix, v, DIM, 1, &p, NULL, NULL, &nf), SW_EINVAL);
    sw_free(ix);
}

/* Updates and true deletions on an int8 index keep the graph sound and
 * the recall up. */
TEST(quant_update_and_delete) {
    float *x = base_data(), *q = query_data();
    REQUIRE(x && q);
    sw_index *ix = build_q(SW_TYPE_I8, SW_KEEP_MEMORY, SW_METRIC_L2, x);
    REQUIRE(ix);
    for (uint64_t l = 0; l < 200; l++) CHECK_OK(sw_delete(ix, l));
    for (uint64_t l = 200; l < 400; l++) CHECK_OK(sw_add(ix, l, x + (l + 1000) * DIM, DIM));
    CHECK_OK(sw_verify(ix));
    CHECK_EQ_INT(sw_count(ix), N - 200);
    double r = recall_at(ix, q, 64, 4);
    printf("    # int8 after 200 deletions and 200 updates: recall@10 %.3f\n", r);
    CHECK(r >= 0.95);
    float got[DIM];
    CHECK_OK(sw_get(ix, 300, got, DIM));
    CHECK(memcmp(got, x + 1300 * DIM, sizeof got) == 0);
    sw_free(ix);
    free(x);
    free(q);
}

/* SW_KEEP_DISK: a loaded index maps every whole chunk's copies from the
 * file, so they are not the process's memory; the results are the same. */
TEST(quant_keep_disk_maps_copies) {
    const size_t n = 40000;
    float *x = tu_clustered(n, DIM, 32, 7, 1), *q = query_data();
    REQUIRE(x && q);
    sw_options o = sw_options_default();
    o.dim = DIM;
    o.type = SW_TYPE_I8;
    o.keep = SW_KEEP_DISK;
    sw_index *ix = NULL;
    REQUIRE_OK(sw_create(&o, &ix));
    uint64_t *lab = malloc(n * sizeof *lab);
    for (size_t i = 0; i < n; i++) lab[i] = i;
    REQUIRE_OK(sw_add_batch(ix, lab, x, n, DIM, 2));
    char dir[256], path[300];
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/d.swi", dir);
    tu_snapshot a, b;
    REQUIRE(tu_snapshot_take(&a, ix, q, 20, 10, NULL) == 0);
    REQUIRE_OK(sw_save(ix, path));
    sw_free(ix);
    REQUIRE_OK(sw_load(path, NULL, &ix));
    sw_stats s;
    CHECK_OK(sw_get_stats(ix, &s));
    printf("    # %zu int8 vectors kept on disk: %zu bytes of copies in memory, %zu mapped\n", n,
           s.memory_full, s.memory_mapped);
    CHECK(s.memory_mapped >= n * DIM * 4 / 2);
    CHECK(s.memory_full < n * DIM * 4 / 2);
    REQUIRE(tu_snapshot_take(&b, ix, q, 20, 10, NULL) == 0);
    char why[200];
    if (!tu_snapshot_equal(&a, &b, why, sizeof why)) sw_test_fail_at(__FILE__, __LINE__, "%s", why);
    /* updates of mapped copies, then a save over the file being mapped */
    for (uint64_t l = 0; l < 50; l++) CHECK_OK(sw_add(ix, l, x + (l + 100) * DIM, DIM));
    REQUIRE_OK(sw_save(ix, path));
    sw_free(ix);
    REQUIRE_OK(sw_load(path, NULL, &ix));
    float got[DIM];
    CHECK_OK(sw_get(ix, 7, got, DIM));
    CHECK(memcmp(got, x + 107 * DIM, sizeof got) == 0);
    CHECK_OK(sw_verify(ix));
    sw_free(ix);
    tu_snapshot_free(&a);
    tu_snapshot_free(&b);
    tu_rmtree(dir);
    free(lab);
    free(x);
    free(q);
}
