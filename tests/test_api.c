/*
 * test_api.c — the public API, function by function, against smallworld.h.
 *
 * The header is the specification: every error it documents for a function
 * is provoked here, and so is every promise that comes with a number
 * (defaults, bounds, "ef smaller than k is raised to k", "fewer than k
 * results is not an error").  Bounds are probed on both sides: the last
 * value refused and the first value accepted, since an off-by-one in a bound
 * is the likeliest bug and only the pair pins it down.
 *
 * The indexes here are small (at most a few thousand vectors of dimension 16
 * or less) because behaviour, not quality, is under test; recall has its own
 * file.  Expected distances are never written down: they are recomputed in
 * double precision from the vectors by the definitions in the header
 * (testutil.c: tu_ref_dist), so a test stays right when the data changes.
 *
 * Failed calls must leave the index exactly as it was.  That is checked with
 * a snapshot (testutil.h) — count, probe search results bitwise, and the
 * bytes of the saved file — taken before and after each refused call.
 */
#define _POSIX_C_SOURCE 200809L

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sw_test.h"
#include "testutil.h"

static const sw_metric all_metrics[] = {SW_METRIC_L2, SW_METRIC_IP, SW_METRIC_COSINE,
                                        SW_METRIC_L1};
static const char *const metric_names[] = {"L2", "IP", "cosine", "L1"};

static sw_options opts_for(uint32_t dim, sw_metric metric)
{
    sw_options o = sw_options_default();

    o.dim = dim;
    o.metric = metric;
    return o;
}

/* ===================================================================== */
/* Version, status codes, errors                                         */
/* ===================================================================== */

TEST(api_version)
{
    char expect[32];

    snprintf(expect, sizeof expect, "%d.%d.%d", SW_VERSION_MAJOR, SW_VERSION_MINOR,
             SW_VERSION_PATCH);
    CHECK_STR_EQ(sw_version(), SW_VERSION_STRING);
    CHECK_STR_EQ(sw_version(), expect);
}

TEST(api_strerror_every_code)
{
    static const struct {
        int code;
        const char *text;
    } table[] = {
#define ROW(name, value, text) {value, text},
        SW_STATUS_MAP(ROW)
#undef ROW
    };
    const size_t n = sizeof table / sizeof table[0];
    static const int unknown[] = {1, 2, 100, -19, -1000, INT_MIN, INT_MAX};

    /* Codes are never renumbered: 0, then -1 .. -18 with no gap, the
     * newest pinned by name. */
    CHECK_EQ_UINT(n, 19);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_INT(table[i].code, -(int)i);
    CHECK_EQ_INT(SW_ECORRUPT, -15);
    CHECK_EQ_INT(SW_EVERSION, -16);
    CHECK_EQ_INT(SW_EREADONLY, -17);
    CHECK_EQ_INT(SW_ENOTTRAINED, -18);
    for (size_t i = 0; i < n; i++) {
        const char *s = sw_strerror((sw_status)table[i].code);
        REQUIRE(s != NULL);
        CHECK(s[0] != '\0');
        CHECK_STR_EQ(s, table[i].text);
        CHECK(strcmp(s, "unknown status code") != 0);
        for (size_t j = 0; j < i; j++)
            if (strcmp(s, sw_strerror((sw_status)table[j].code)) == 0)
                sw_test_fail_at(__FILE__, __LINE__, "codes %d and %d share the text \"%s\"",
                                table[i].code, table[j].code, s);
    }
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        CHECK_STR_EQ(sw_strerror((sw_status)unknown[i]), "unknown status code");
}

TEST(api_last_error_after_failure_and_not_cleared_by_success)
{
    sw_options o = opts_for(0, SW_METRIC_L2);
    sw_index *ix = NULL;
    char saved[512];

    CHECK_STATUS(sw_create(&o, &ix), SW_EDIM);
    CHECK(ix == NULL);
    tu_check_last_error_names(SW_EDIM, __FILE__, __LINE__);
    CHECK(sw_last_error() != NULL);
    snprintf(saved, sizeof saved, "%s", sw_last_error());

    o.dim = 4;
    REQUIRE_OK(sw_create(&o, &ix));
    CHECK_STR_EQ(sw_last_error(), saved);

    /* A different failure replaces the message. */
    CHECK_STATUS(sw_set_ef(ix, 0), SW_EEF);
    tu_check_last_error_names(SW_EEF, __FILE__, __LINE__);
    sw_free(ix);
}

/* ===================================================================== */
/* Options                                                               */
/* ===================================================================== */

TEST(api_options_default_values)
{
    sw_options o = sw_options_default();

    CHECK_EQ_UINT(o.dim, 0);
    CHECK_EQ_INT(o.metric, SW_METRIC_L2);
    CHECK_EQ_UINT(o.M, 16);
    CHECK_EQ_UINT(o.M0, 0);
    CHECK_EQ_UINT(o.ef_construction, 200);
    CHECK_EQ_UINT(o.ef_search, 64);
    CHECK_EQ_UINT(o.seed, 100);
    CHECK_EQ_INT(o.keep_pruned, 0);
    CHECK_EQ_INT(o.extend_candidates, 0);
    CHECK(o.allocator == NULL);
}

TEST(api_create_refuses_bad_options)
{
    static const sw_allocator no_alloc = {NULL, NULL, NULL};
    sw_allocator half_a, half_f;
    sw_index *ix = NULL;
    sw_options o;
    tu_alloc ta;

    tu_alloc_init(&ta);
    half_a = ta.api;
    half_a.free = NULL;
    half_f = ta.api;
    half_f.alloc = NULL;

#define REFUSE(mutate, code)                                                   \
    do {                                                                       \
        o = opts_for(8, SW_METRIC_L2);                                         \
        mutate;                                                                \
        ix = (sw_index *)&o; /* must be reset to NULL on failure */            \
        CHECK_FAILS_WITH(sw_create(&o, &ix), code);                            \
        CHECK(ix == NULL);                                                     \
        if (ix != NULL && ix != (sw_index *)&o)                                \
            sw_free(ix);                                                       \
    } while (0)

    ix = (sw_index *)&o;
    CHECK_FAILS_WITH(sw_create(NULL, &ix), SW_ENULL);
    CHECK(ix == NULL);
    o = opts_for(8, SW_METRIC_L2);
    CHECK_FAILS_WITH(sw_create(&o, NULL), SW_ENULL);

    REFUSE(o.dim = 0, SW_EDIM);
    REFUSE(o.dim = SW_MAX_DIM + 1, SW_EDIM);
    REFUSE(o.dim = UINT32_MAX, SW_EDIM);
    REFUSE(o.metric = (sw_metric)4, SW_EMETRIC);
    REFUSE(o.metric = (sw_metric)-1, SW_EMETRIC);
    REFUSE(o.metric = (sw_metric)1000, SW_EMETRIC);
    REFUSE(o.M = 0, SW_EM);
    REFUSE(o.M = SW_MIN_M - 1, SW_EM);
    REFUSE(o.M = SW_MAX_M + 1, SW_EM);
    REFUSE((o.M = 16, o.M0 = 15), SW_EM);
    REFUSE((o.M = 16, o.M0 = 1), SW_EM);
    REFUSE(o.M0 = SW_MAX_M0 + 1, SW_EM);
    REFUSE(o.ef_construction = 0, SW_EEFC);
    REFUSE(o.ef_construction = SW_MAX_EF + 1, SW_EEFC);
    REFUSE(o.ef_search = SW_MAX_EF + 1, SW_EEF);
    REFUSE(o.allocator = &no_alloc, SW_EINVAL);
    REFUSE(o.allocator = &half_a, SW_EINVAL);
    REFUSE(o.allocator = &half_f, SW_EINVAL);
#undef REFUSE

    CHECK_EQ_UINT(ta.live_bytes, 0);
    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
}

TEST(api_create_accepts_bounds)
{
    static const struct {
        uint32_t dim, M, M0, efc, efs;
    } ok[] = {
        {1, 16, 0, 200, 64},
        {SW_MAX_DIM, 16, 0, 200, 64},
        {8, SW_MIN_M, 0, 200, 64},
        {8, SW_MAX_M, 0, 200, 64},
        {8, 16, 16, 200, 64},
        {8, 16, SW_MAX_M0, 200, 64},
        {8, SW_MAX_M, SW_MAX_M0, 200, 64},
        {8, SW_MIN_M, SW_MIN_M, 1, 1},
        {8, 16, 0, SW_MAX_EF, SW_MAX_EF},
    };

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        for (size_t m = 0; m < 4; m++) {
            sw_options o = opts_for(ok[i].dim, all_metrics[m]), got;
            sw_index *ix = NULL;
            sw_status st;

            o.M = ok[i].M;
            o.M0 = ok[i].M0;
            o.ef_construction = ok[i].efc;
            o.ef_search = ok[i].efs;
            st = sw_create(&o, &ix);
            if (st != SW_OK) {
                sw_test_fail_at(__FILE__, __LINE__,
                                "case %zu (dim %u M %u M0 %u efc %u ef %u, %s): %s (%s)", i,
                                ok[i].dim, ok[i].M, ok[i].M0, ok[i].efc, ok[i].efs,
                                metric_names[m], sw_test_status_name(st), sw_last_error());
                continue;
            }
            CHECK_OK(sw_get_options(ix, &got));
            CHECK_EQ_UINT(got.M0, ok[i].M0 ? ok[i].M0 : 2 * ok[i].M);
            CHECK_EQ_UINT(sw_dim(ix), ok[i].dim);
            CHECK_EQ_UINT(sw_count(ix), 0);
            sw_free(ix);
        }
    }
}

/* The smallest graphs the bounds allow still have to work. */
TEST(api_extreme_parameters_still_search)
{
    const uint32_t dim = 6;
    const size_t n = 300;
    float *data = tu_clustered(n, dim, 4, 11, 12);
    sw_options o = opts_for(dim, SW_METRIC_L2);
    sw_index *ix;

    REQUIRE(data != NULL);
    o.M = SW_MIN_M;
    o.M0 = SW_MIN_M;
    o.ef_construction = 1;
    o.ef_search = 1;
    ix = tu_build(&o, data, n);
    if (ix != NULL) {
        char why[256];
        size_t short_results = 0;

        CHECK_EQ_UINT(sw_count(ix), n);
        /* At these settings the heuristic can leave small islands (the
         * header says so), so reachability is reported, not required;
         * every other structural rule still holds, and every search must
         * return sorted, valid labels with their true distances. */
        if (sw__check_graph(ix, why, sizeof why) != 0) {
            NOTE("M=2, M0=2, efc=1: %s", why);
            CHECK(strstr(why, "unreachable") != NULL);
        }
        for (size_t q = 0; q < 20; q++) {
            uint64_t lab[5];
            float d[5];
            size_t nf = 0;
            sw_search_params p = sw_search_params_default();
            p.ef = (uint32_t)n;
            CHECK_OK(sw_search(ix, data + q * dim, dim, 5, &p, lab, d, &nf));
            CHECK(nf >= 1 && nf <= 5);
            short_results += nf < 5;
            for (size_t i = 0; i < nf; i++) {
                CHECK(lab[i] < n);
                if (lab[i] < n) {
                    double ref = tu_ref_dist(SW_METRIC_L2, data + q * dim, data + lab[i] * dim, dim);
                    CHECK(fabs(d[i] - ref) <= tu_dist_tol(ref));
                }
                if (i > 0)
                    CHECK(d[i - 1] <= d[i]);
            }
        }
        NOTE("M=2, M0=2, efc=1: %zu of 20 searches at ef=%zu returned fewer than 5", short_results,
             n);
        sw_free(ix);
    }
    free(data);
}

TEST(api_huge_dimension)
{
    const size_t dim = SW_MAX_DIM;
    float *v = calloc(dim + 1, sizeof *v); /* +1: the too-long add below */
    float *out = malloc(dim * sizeof *out);
    sw_options o = opts_for((uint32_t)dim, SW_METRIC_L2);
    sw_index *ix = NULL;
    uint64_t lab[3];
    float d[3];
    size_t nf = 0;

    REQUIRE(v != NULL && out != NULL);
    REQUIRE_OK(sw_create(&o, &ix));
    for (uint64_t l = 0; l < 3; l++) {
        for (size_t j = 0; j < dim; j++)
            v[j] = (float)l + (float)(j % 7) * 0.001f;
        CHECK_OK(sw_add(ix, l, v, dim));
    }
    /* v now holds vector 2; a query just past it ranks 2, 1, 0. */
    v[dim - 1] += 0.5f;
    CHECK_OK(sw_search(ix, v, dim, 3, NULL, lab, d, &nf));
    CHECK_EQ_UINT(nf, 3);
    CHECK_EQ_UINT(lab[0], 2);
    CHECK_EQ_UINT(lab[1], 1);
    CHECK_EQ_UINT(lab[2], 0);
    CHECK_NEAR(d[0], 0.25, 1e-3);
    CHECK_OK(sw_get(ix, 1, out, dim));
    CHECK_NEAR(out[dim - 1], 1.0f + (float)((dim - 1) % 7) * 0.001f, 1e-6);
    CHECK_STATUS(sw_add(ix, 9, v, dim + 1), SW_EDIMMISMATCH);
    sw_free(ix);
    free(v);
    free(out);
}

TEST(api_get_options_round_trip)
{
    tu_alloc ta;
    sw_options o, got;
    sw_index *ix = NULL;

    tu_alloc_init(&ta);
    o = opts_for(7, SW_METRIC_L1);
    o.M = 8;
    o.M0 = 0;
    o.ef_construction = 50;
    o.ef_search = 33;
    o.seed = 0x123456789abcdefull;
    o.keep_pruned = 1;
    o.extend_candidates = 1;
    o.allocator = &ta.api;
    REQUIRE_OK(sw_create(&o, &ix));

    memset(&got, 0xCD, sizeof got);
    CHECK_OK(sw_get_options(ix, &got));
    CHECK_EQ_UINT(got.dim, 7);
    CHECK_EQ_INT(got.metric, SW_METRIC_L1);
    CHECK_EQ_UINT(got.M, 8);
    CHECK_EQ_UINT(got.M0, 16); /* 0 resolves to 2*M */
    CHECK_EQ_UINT(got.ef_construction, 50);
    CHECK_EQ_UINT(got.ef_search, 33);
    CHECK_EQ_UINT(got.seed, 0x123456789abcdefull);
    CHECK_EQ_INT(got.keep_pruned, 1);
    CHECK_EQ_INT(got.extend_candidates, 1);
    CHECK(got.allocator == &ta.api);
    CHECK_EQ_UINT(sw_get_ef(ix), 33);
    CHECK_EQ_INT(sw_get_metric(ix), SW_METRIC_L1);
    CHECK_EQ_UINT(sw_dim(ix), 7);

    /* ef_search reports the current default, not the creation value. */
    CHECK_OK(sw_set_ef(ix, 77));
    CHECK_OK(sw_get_options(ix, &got));
    CHECK_EQ_UINT(got.ef_search, 77);

    CHECK_FAILS_WITH(sw_get_options(ix, NULL), SW_ENULL);
    CHECK_FAILS_WITH(sw_get_options(NULL, &got), SW_ENULL);
    sw_free(ix);

    /* An explicit M0 is kept as given. */
    o = opts_for(3, SW_METRIC_COSINE);
    o.M = 5;
    o.M0 = 23;
    REQUIRE_OK(sw_create(&o, &ix));
    CHECK_OK(sw_get_options(ix, &got));
    CHECK_EQ_UINT(got.M, 5);
    CHECK_EQ_UINT(got.M0, 23);
    CHECK_EQ_INT(got.metric, SW_METRIC_COSINE);
    CHECK(got.allocator == NULL);
    sw_free(ix);

    CHECK_EQ_UINT(ta.live_bytes, 0);
    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
}

TEST(api_null_handle_getters)
{
    sw_options got;
    float v[2] = {0, 0};
    uint64_t lab[1];
    float d[1];
    size_t nf = 5;

    sw_free(NULL); /* documented no-op; the rest of the test runs after it */
    CHECK_EQ_UINT(sw_count(NULL), 0);
    CHECK_EQ_UINT(sw_dim(NULL), 0);
    CHECK_EQ_INT(sw_get_metric(NULL), SW_METRIC_L2);
    CHECK_EQ_UINT(sw_get_ef(NULL), 0);
    CHECK_EQ_UINT(sw_memory_usage(NULL), 0);
    CHECK_EQ_INT(sw_contains(NULL, 0), 0);
    CHECK_FAILS_WITH(sw_get_options(NULL, &got), SW_ENULL);
    CHECK_FAILS_WITH(sw_add(NULL, 1, v, 2), SW_ENULL);
    CHECK_FAILS_WITH(sw_set_ef(NULL, 10), SW_ENULL);
    CHECK_FAILS_WITH(sw_get(NULL, 1, v, 2), SW_ENULL);
    CHECK_FAILS_WITH(sw_search(NULL, v, 2, 1, NULL, lab, d, &nf), SW_ENULL);
    CHECK_EQ_UINT(nf, 0);
    nf = 5;
    CHECK_FAILS_WITH(sw_search_exact(NULL, v, 2, 1, NULL, lab, d, &nf), SW_ENULL);
    CHECK_EQ_UINT(nf, 0);
}

/* ===================================================================== */
/* Adding                                                                */
/* ===================================================================== */

TEST(api_add_refusals_leave_index_unchanged)
{
    const uint32_t dim = 8;
    const size_t n = 200;
    float *data = tu_clustered(n, dim, 4, 21, 22);
    float *probes = tu_clustered(4, dim, 4, 21, 23);
    float bad[9], before[8], after[8];
    char dir[256], why[128];
    tu_snapshot s0, s1;
    sw_index *ix;
    sw_options o = opts_for(dim, SW_METRIC_L2);
    const float special[] = {NAN, INFINITY, -INFINITY};
    const size_t positions[] = {0, 3, dim - 1};

    REQUIRE(data != NULL && probes != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    ix = tu_build(&o, data, n);
    REQUIRE(ix != NULL);
    REQUIRE(tu_snapshot_take(&s0, ix, probes, 4, 10, dir) == 0);
    CHECK_OK(sw_get(ix, 5, before, dim));

    for (size_t i = 0; i < 9; i++)
        bad[i] = data[i];
    CHECK_FAILS_WITH(sw_add(ix, 1000, NULL, dim), SW_ENULL);
    CHECK_FAILS_WITH(sw_add(ix, 5, NULL, dim), SW_ENULL);
    CHECK_FAILS_WITH(sw_add(ix, 1000, bad, dim - 1), SW_EDIMMISMATCH);
    CHECK_FAILS_WITH(sw_add(ix, 1000, bad, dim + 1), SW_EDIMMISMATCH);
    CHECK_FAILS_WITH(sw_add(ix, 1000, bad, 0), SW_EDIMMISMATCH);
    CHECK_FAILS_WITH(sw_add(ix, 5, bad, dim + 1), SW_EDIMMISMATCH);
    for (size_t s = 0; s < 3; s++) {
        for (size_t p = 0; p < 3; p++) {
            memcpy(bad, data + 7 * dim, dim * sizeof(float));
            bad[positions[p]] = special[s];
            /* a new label, and an update of a present one */
            CHECK_FAILS_WITH(sw_add(ix, 1000, bad, dim), SW_ENOTFINITE);
            CHECK_FAILS_WITH(sw_add(ix, 5, bad, dim), SW_ENOTFINITE);
        }
    }

    CHECK_EQ_INT(sw_contains(ix, 1000), 0);
    CHECK_STATUS(sw_get(ix, 1000, after, dim), SW_ENOTFOUND);
    CHECK_OK(sw_get(ix, 5, after, dim));
    CHECK(memcmp(before, after, sizeof before) == 0);
    if (tu_snapshot_take(&s1, ix, probes, 4, 10, dir) == 0) {
        if (!tu_snapshot_equal(&s0, &s1, why, sizeof why))
            sw_test_fail_at(__FILE__, __LINE__, "index changed by refused adds: %s", why);
        tu_snapshot_free(&s1);
    }
    CHECK_GRAPH(ix);
    tu_snapshot_free(&s0);
    sw_free(ix);
    tu_rmtree(dir);
    free(data);
    free(probes);
}

/* Finite means finite: the largest floats, subnormals and -0 are values. */
TEST(api_add_accepts_extreme_finite_values)
{
    const float big[3] = {FLT_MAX, -FLT_MAX, 0};
    const float tiny[3] = {FLT_MIN / 4, -0.0f, -FLT_MIN};
    float out[3];
    uint64_t lab[2];
    size_t nf = 0;

    for (size_t m = 0; m < 4; m++) {
        sw_options o = opts_for(3, all_metrics[m]);
        sw_index *ix = NULL;

        REQUIRE_OK(sw_create(&o, &ix));
        CHECK_OK(sw_add(ix, 1, big, 3));
        CHECK_OK(sw_add(ix, 2, tiny, 3));
        CHECK_EQ_UINT(sw_count(ix), 2);
        CHECK_OK(sw_search(ix, tiny, 3, 2, NULL, lab, NULL, &nf));
        CHECK_EQ_UINT(nf, 2);
        CHECK_OK(sw_search_exact(ix, big, 3, 2, NULL, lab, NULL, &nf));
        CHECK_EQ_UINT(nf, 2);
        CHECK_OK(sw_get(ix, 1, out, 3));
        if (all_metrics[m] != SW_METRIC_COSINE)
            CHECK(memcmp(out, big, sizeof out) == 0);
        sw_free(ix);
    }
}

TEST(api_add_then_get_and_contains)
{
    const uint32_t dim = 5;
    float *data = tu_clustered(50, dim, 3, 31, 32);
    float out[5];
    sw_index *ix = NULL;

    REQUIRE(data != NULL);
    for (size_t m = 0; m < 4; m++) {
        sw_options o = opts_for(dim, all_metrics[m]);

        REQUIRE_OK(sw_create(&o, &ix));
        for (size_t i = 0; i < 50; i++) {
            CHECK_EQ_INT(sw_contains(ix, 3 * i + 1), 0);
            CHECK_OK(sw_add(ix, 3 * i + 1, data + i * dim, dim));
            CHECK_EQ_INT(sw_contains(ix, 3 * i + 1), 1);
            CHECK_EQ_UINT(sw_count(ix), i + 1);
        }
        for (size_t i = 0; i < 50; i++) {
            const float *v = data + i * dim;

            CHECK_EQ_INT(sw_contains(ix, 3 * i), 0);
            CHECK_STATUS(sw_get(ix, 3 * i, out, dim), SW_ENOTFOUND);
            CHECK_OK(sw_get(ix, 3 * i + 1, out, dim));
            if (all_metrics[m] == SW_METRIC_COSINE) {
                double n2 = 0;
                for (size_t j = 0; j < dim; j++)
                    n2 += (double)v[j] * v[j];
                for (size_t j = 0; j < dim; j++)
                    CHECK_NEAR(out[j], v[j] / sqrt(n2), 1e-6);
            } else {
                /* Stored as given, to the bit. */
                CHECK(memcmp(out, v, sizeof out) == 0);
            }
        }
        CHECK_FAILS_WITH(sw_get(ix, 1, NULL, dim), SW_ENULL);
        CHECK_FAILS_WITH(sw_get(ix, 1, out, dim - 1), SW_EDIMMISMATCH);
        CHECK_FAILS_WITH(sw_get(ix, 1, out, dim + 1), SW_EDIMMISMATCH);
        CHECK_FAILS_WITH(sw_get(ix, 999999, out, dim), SW_ENOTFOUND);
        CHECK_GRAPH_AT(ix, metric_names[m]);
        sw_free(ix);
    }
    free(data);
}

/*
 * Duplicates: every distance among them is 0, so a neighbour-selection
 * heuristic that keeps a candidate only when it is strictly nearer to the
 * new node than to every kept neighbour keeps one and drops the rest, and
 * the copies can end up unreachable.  The header allows fewer than k
 * results only for an index holding fewer than k vectors.
 */
TEST(api_duplicate_vectors)
{
    const uint32_t dim = 8;
    const size_t n_dup = 300, n_other = 300, k = 50;
    float *other = tu_clustered(n_other, dim, 4, 121, 122);
    sw_options o = sw_options_default();
    sw_index *ix = NULL;
    uint64_t lab[50];
    float d[50];

    REQUIRE(other != NULL);
    for (int mixed = 0; mixed < 2; mixed++) {
        size_t nf = 0, at_zero = 0;

        o.dim = dim;
        REQUIRE_OK(sw_create(&o, &ix));
        for (size_t i = 0; i < n_dup; i++) {
            CHECK_OK(sw_add(ix, i, other, dim)); /* the same vector, n_dup times */
            if (mixed)
                CHECK_OK(sw_add(ix, 100000 + i, other + i * dim, dim));
        }
        CHECK_GRAPH_AT(ix, mixed ? "duplicates among others" : "only duplicates");
        CHECK_OK(sw_search(ix, other, dim, k, NULL, lab, d, &nf));
        CHECK_EQ_UINT(nf, k);
        for (size_t i = 0; i < nf; i++)
            at_zero += d[i] == 0;
        /* All k nearest are copies (label 100000 is the vector itself too). */
        if (at_zero != k)
            sw_test_fail_at(__FILE__, __LINE__, "%s: %zu of %zu results at distance 0",
                            mixed ? "mixed" : "only duplicates", at_zero, k);
        CHECK_OK(sw_search(ix, other + 5 * dim, dim, k, NULL, lab, d, &nf));
        CHECK_EQ_UINT(nf, k);
        if (mixed) {
            tu_recall r = tu_measure_recall(ix, other, 50, 10, 200);
            NOTE("recall@10 with %zu copies of one vector among %zu: %.4f", n_dup, n_other,
                 r.tie_aware);
            CHECK(r.tie_aware >= 0.99);
        }
        sw_free(ix);
        ix = NULL;
    }
    free(other);
}

TEST(api_extreme_labels)
{
    const uint64_t labels[] = {0, 1, UINT64_MAX, UINT64_MAX - 1, 1ull << 63, 0xFFFFFFFFull,
                               0x100000000ull};
    const size_t n = sizeof labels / sizeof labels[0];
    sw_options o = opts_for(2, SW_METRIC_L2);
    sw_index *ix = NULL;
    float v[2], out[2];
    uint64_t lab[8];
    float d[8];
    size_t nf = 0;

    REQUIRE_OK(sw_create(&o, &ix));
    for (size_t i = 0; i < n; i++) {
        v[0] = (float)i;
        v[1] = 0;
        CHECK_OK(sw_add(ix, labels[i], v, 2));
    }
    CHECK_EQ_UINT(sw_count(ix), n);
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_INT(sw_contains(ix, labels[i]), 1);
        CHECK_OK(sw_get(ix, labels[i], out, 2));
        CHECK_EQ_INT(out[0], (int)i);
        v[0] = (float)i + 0.1f;
        v[1] = 0;
        CHECK_OK(sw_search(ix, v, 2, 1, NULL, lab, d, &nf));
        CHECK_EQ_UINT(nf, 1);
        CHECK_EQ_UINT(lab[0], labels[i]);
        CHECK_OK(sw_search_exact(ix, v, 2, 1, NULL, lab, d, &nf));
        CHECK_EQ_UINT(lab[0], labels[i]);
    }
    CHECK_EQ_INT(sw_contains(ix, 2), 0);
    CHECK_OK(sw_search(ix, v, 2, 8, NULL, lab, d, &nf));
    CHECK_EQ_UINT(nf, n);
    sw_free(ix);
}

TEST(api_memory_usage_grows)
{
    const uint32_t dim = 32;
    const size_t n = 1000;
    float *data = tu_clustered(n, dim, 8, 41, 42);
    sw_options o = opts_for(dim, SW_METRIC_L2);
    sw_index *ix = NULL;
    size_t prev, empty;
    tu_alloc ta;

    REQUIRE(data != NULL);
    tu_alloc_init(&ta);
    o.allocator = &ta.api;
    REQUIRE_OK(sw_create(&o, &ix));
    empty = prev = sw_memory_usage(ix);
    for (size_t i = 0; i < n; i++) {
        size_t now;

        CHECK_OK(sw_add(ix, i, data + i * dim, dim));
        now = sw_memory_usage(ix);
        if (now < prev)
            sw_test_fail_at(__FILE__, __LINE__, "memory usage fell from %zu to %zu at add %zu",
                            prev, now, i);
        prev = now;
    }
    NOTE("memory usage: empty %zu B, %zu x %u floats %zu B, allocator holds %zu B", empty, n,
         dim, prev, tu_alloc_live_bytes(&ta));
    CHECK(prev > empty);
    CHECK(prev >= n * dim * sizeof(float));
    /* Everything counted was asked of the allocator. */
    CHECK(prev <= tu_alloc_live_bytes(&ta));
    sw_free(ix);
    CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), 0);
    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
    free(data);
}

/* ===================================================================== */
/* Searching                                                             */
/* ===================================================================== */

TEST(api_search_refusals)
{
    const uint32_t dim = 4;
    float *data = tu_clustered(30, dim, 2, 51, 52);
    float q[5] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
    sw_options o = opts_for(dim, SW_METRIC_L2);
    sw_search_params p = sw_search_params_default();
    sw_index *ix;
    uint64_t lab[4];
    float d[4];
    size_t nf;
    const float special[] = {NAN, INFINITY, -INFINITY};

    REQUIRE(data != NULL);
    ix = tu_build(&o, data, 30);
    REQUIRE(ix != NULL);

#define BOTH(args, code)                                                       \
    do {                                                                       \
        nf = 77;                                                               \
        CHECK_FAILS_WITH(sw_search args, code);                                \
        CHECK_EQ_UINT(nf, 0);                                                  \
        nf = 77;                                                               \
        CHECK_FAILS_WITH(sw_search_exact args, code);                          \
        CHECK_EQ_UINT(nf, 0);                                                  \
    } while (0)

    BOTH((NULL, q, dim, 4, NULL, lab, d, &nf), SW_ENULL);
    BOTH((ix, NULL, dim, 4, NULL, lab, d, &nf), SW_ENULL);
    CHECK_FAILS_WITH(sw_search(ix, q, dim, 4, NULL, lab, d, NULL), SW_ENULL);
    CHECK_FAILS_WITH(sw_search_exact(ix, q, dim, 4, NULL, lab, d, NULL), SW_ENULL);
    BOTH((ix, q, dim - 1, 4, NULL, lab, d, &nf), SW_EDIMMISMATCH);
    BOTH((ix, q, dim + 1, 4, NULL, lab, d, &nf), SW_EDIMMISMATCH);
    BOTH((ix, q, 0, 4, NULL, lab, d, &nf), SW_EDIMMISMATCH);
    BOTH((ix, q, dim, 0, NULL, lab, d, &nf), SW_EK);
    for (size_t s = 0; s < 3; s++) {
        for (size_t pos = 0; pos < dim; pos += dim - 1) {
            float bad[4] = {0.1f, 0.2f, 0.3f, 0.4f};
            bad[pos] = special[s];
            BOTH((ix, bad, dim, 4, NULL, lab, d, &nf), SW_ENOTFINITE);
        }
    }
#undef BOTH

    p.ef = SW_MAX_EF + 1;
    nf = 77;
    CHECK_FAILS_WITH(sw_search(ix, q, dim, 4, &p, lab, d, &nf), SW_EEF);
    CHECK_EQ_UINT(nf, 0);
    p.ef = UINT32_MAX;
    CHECK_FAILS_WITH(sw_search(ix, q, dim, 4, &p, lab, d, &nf), SW_EEF);

    /* And the index still answers. */
    CHECK_OK(sw_search(ix, q, dim, 4, NULL, lab, d, &nf));
    CHECK_EQ_UINT(nf, 4);
    sw_free(ix);
    free(data);
}

TEST(api_search_empty_index)
{
    for (size_t m = 0; m < 4; m++) {
        sw_options o = opts_for(3, all_metrics[m]);
        sw_index *ix = NULL;
        float q[3] = {1, 2, 3};
        uint64_t lab[5];
        float d[5];
        size_t nf = 99;

        REQUIRE_OK(sw_create(&o, &ix));
        CHECK_OK(sw_search(ix, q, 3, 5, NULL, lab, d, &nf));
        CHECK_EQ_UINT(nf, 0);
        nf = 99;
        CHECK_OK(sw_search_exact(ix, q, 3, 5, NULL, lab, d, &nf));
        CHECK_EQ_UINT(nf, 0);
        /* Refusals still apply to an empty index. */
        CHECK_STATUS(sw_search(ix, q, 2, 5, NULL, lab, d, &nf), SW_EDIMMISMATCH);
        CHECK_STATUS(sw_search(ix, q, 3, 0, NULL, lab, d, &nf), SW_EK);
        CHECK_GRAPH(ix);
        sw_free(ix);
    }
}

TEST(api_search_fewer_than_k)
{
    const uint32_t dim = 4;
    float *data = tu_clustered(5, dim, 2, 61, 62);

    REQUIRE(data != NULL);
    for (size_t m = 0; m < 4; m++) {
        sw_options o = opts_for(dim, all_metrics[m]);
        sw_index *ix = tu_build(&o, data, 5);
        uint64_t lab[10];
        float d[10];
        size_t nf = 0;

        if (ix == NULL)
            continue;
        for (int exact = 0; exact < 2; exact++) {
            for (size_t k = 5; k <= 10; k += 5) {
                unsigned seen = 0;
                sw_status st = exact ? sw_search_exact(ix, data, dim, k, NULL, lab, d, &nf)
                                     : sw_search(ix, data, dim, k, NULL, lab, d, &nf);
                CHECK_OK(st);
                CHECK_EQ_UINT(nf, 5);
                for (size_t i = 0; i < nf && i < 10; i++) {
                    CHECK(lab[i] < 5);
                    if (lab[i] < 5)
                        seen |= 1u << lab[i];
                }
                CHECK_EQ_UINT(seen, 0x1F); /* each of the five exactly once */
            }
        }
        sw_free(ix);
    }
    free(data);
}

/* k has no upper bound in the header: a k beyond both the index size and
 * SW_MAX_EF still means "up to k", and must not size a buffer by k.
 * With both outputs NULL no caller buffer is involved at all. */
TEST(api_search_huge_k)
{
    const uint32_t dim = 3;
    float *data = tu_clustered(5, dim, 2, 63, 64);
    sw_options o = sw_options_default();
    const size_t ks[] = {SW_MAX_EF + 1, (size_t)UINT32_MAX + 1, SIZE_MAX};
    sw_index *ix;

    REQUIRE(data != NULL);
    o.dim = dim;
    ix = tu_build(&o, data, 5);
    REQUIRE(ix != NULL);
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        size_t nf = 0;

        CHECK_OK(sw_search(ix, data, dim, ks[i], NULL, NULL, NULL, &nf));
        CHECK_EQ_UINT(nf, 5);
        nf = 0;
        CHECK_OK(sw_search_exact(ix, data, dim, ks[i], NULL, NULL, NULL, &nf));
        CHECK_EQ_UINT(nf, 5);
    }
    sw_free(ix);
    free(data);
}

TEST(api_search_ef_below_k_is_raised)
{
    const uint32_t dim = 8;
    const size_t n = 2000, k = 50;
    float *data = tu_clustered(n, dim, 16, 71, 72);
    float *queries = tu_clustered(10, dim, 16, 71, 73);
    sw_options o = opts_for(dim, SW_METRIC_L2);
    sw_search_params p1 = sw_search_params_default(), pk = sw_search_params_default();
    uint64_t l1[50], lk[50];
    float d1[50], dk[50];
    size_t n1 = 0, nk = 0;
    sw_index *ix;

    REQUIRE(data != NULL && queries != NULL);
    ix = tu_build(&o, data, n);
    REQUIRE(ix != NULL);
    REQUIRE_OK(sw_set_ef(ix, 1)); /* the index default must not mask it */
    p1.ef = 1;
    pk.ef = (uint32_t)k;
    for (size_t q = 0; q < 10; q++) {
        CHECK_OK(sw_search(ix, queries + q * dim, dim, k, &p1, l1, d1, &n1));
        CHECK_OK(sw_search(ix, queries + q * dim, dim, k, &pk, lk, dk, &nk));
        CHECK_EQ_UINT(n1, k);
        CHECK_EQ_UINT(nk, k);
        /* "raised to k" means it behaves exactly as ef = k. */
        CHECK(memcmp(l1, lk, sizeof l1) == 0);
        CHECK(memcmp(d1, dk, sizeof d1) == 0);
        /* And the index default of 1 with NULL params is raised too. */
        CHECK_OK(sw_search(ix, queries + q * dim, dim, k, NULL, l1, d1, &n1));
        CHECK_EQ_UINT(n1, k);
        CHECK(memcmp(l1, lk, sizeof l1) == 0);
    }
    sw_free(ix);
    free(data);
    free(queries);
}

TEST(api_set_ef_and_default_params)
{
    const uint32_t dim = 8;
    const size_t n = 1500, k = 10;
    float *data = tu_clustered(n, dim, 16, 81, 82);
    float *queries = tu_clustered(20, dim, 16, 81, 83);
    sw_options o = opts_for(dim, SW_METRIC_L2);
    const uint32_t efs[] = {1, 10, 37, 200};
    sw_search_params p = sw_search_params_default(), pd = sw_search_params_default();
    sw_index *ix;

    REQUIRE(data != NULL && queries != NULL);
    ix = tu_build(&o, data, n);
    REQUIRE(ix != NULL);
    CHECK_EQ_UINT(sw_get_ef(ix), 64);

    CHECK_FAILS_WITH(sw_set_ef(ix, 0), SW_EEF);
    CHECK_FAILS_WITH(sw_set_ef(ix, SW_MAX_EF + 1), SW_EEF);
    CHECK_FAILS_WITH(sw_set_ef(ix, UINT32_MAX), SW_EEF);
    CHECK_EQ_UINT(sw_get_ef(ix), 64); /* refusals changed nothing */
    CHECK_OK(sw_set_ef(ix, SW_MAX_EF));
    CHECK_EQ_UINT(sw_get_ef(ix), SW_MAX_EF);

    for (size_t e = 0; e < sizeof efs / sizeof efs[0]; e++) {
        CHECK_OK(sw_set_ef(ix, efs[e]));
        CHECK_EQ_UINT(sw_get_ef(ix), efs[e]);
        p.ef = efs[e];
        for (size_t q = 0; q < 20; q++) {
            uint64_t la[10], lb[10], lc[10];
            float da[10], db[10], dc[10];
            size_t na = 0, nb = 0, nc = 0;
            const float *v = queries + q * dim;

            /* NULL params, default params (ef 0) and an explicit ef equal
             * to the index default are the same search. */
            CHECK_OK(sw_search(ix, v, dim, k, NULL, la, da, &na));
            CHECK_OK(sw_search(ix, v, dim, k, &pd, lb, db, &nb));
            CHECK_OK(sw_search(ix, v, dim, k, &p, lc, dc, &nc));
            CHECK_EQ_UINT(na, k);
            CHECK(na == nb && na == nc);
            CHECK(memcmp(la, lb, sizeof la) == 0 && memcmp(la, lc, sizeof la) == 0);
            CHECK(memcmp(da, db, sizeof da) == 0 && memcmp(da, dc, sizeof da) == 0);
        }
    }
    sw_free(ix);
    free(data);
    free(queries);
}

/* Exact search checked against a brute force written here, per metric:
 * the oracle of every recall test has to be right first. */
TEST(api_results_sorted_and_distances_by_definition)
{
    const uint32_t dim = 16;
    const size_t n = 1000, nq = 20, k = 20;
    float *data = tu_clustered(n, dim, 8, 91, 92);
    float *queries = tu_clustered(nq, dim, 8, 91, 93);
    double *ref = malloc(n * sizeof *ref);

    REQUIRE(data != NULL && queries != NULL && ref != NULL);
    for (size_t m = 0; m < 4; m++) {
        sw_metric metric = all_metrics[m];
        sw_options o = opts_for(dim, metric);
        sw_index *ix = tu_build(&o, data, n);

        if (ix == NULL)
            continue;
        CHECK_GRAPH_AT(ix, metric_names[m]);
        for (size_t q = 0; q < nq; q++) {
            const float *v = queries + q * dim;
            double kth;

            for (size_t i = 0; i < n; i++)
                ref[i] = tu_ref_dist(metric, v, data + i * dim, dim);
            /* the k-th smallest reference distance, by partial selection */
            {
                double *tmp = malloc(n * sizeof *tmp);
                REQUIRE(tmp != NULL);
                memcpy(tmp, ref, n * sizeof *tmp);
                for (size_t i = 0; i < k; i++) {
                    size_t best = i;
                    for (size_t j = i + 1; j < n; j++)
                        if (tmp[j] < tmp[best])
                            best = j;
                    double t = tmp[i];
                    tmp[i] = tmp[best];
                    tmp[best] = t;
                }
                kth = tmp[k - 1];
                free(tmp);
            }
            for (int exact = 0; exact < 2; exact++) {
                uint64_t lab[20];
                float d[20];
                size_t nf = 0;
                sw_status st = exact ? sw_search_exact(ix, v, dim, k, NULL, lab, d, &nf)
                                     : sw_search(ix, v, dim, k, NULL, lab, d, &nf);

                CHECK_OK(st);
                CHECK_EQ_UINT(nf, k);
                for (size_t i = 0; i < nf && i < k; i++) {
                    if (lab[i] >= n) {
                        sw_test_fail_at(__FILE__, __LINE__, "label %llu out of range",
                                        (unsigned long long)lab[i]);
                        continue;
                    }
                    if (i > 0 && d[i] < d[i - 1])
                        sw_test_fail_at(__FILE__, __LINE__,
                                        "%s %s q%zu: distances not ascending at %zu: %.9g < %.9g",
                                        metric_names[m], exact ? "exact" : "search", q, i,
                                        (double)d[i], (double)d[i - 1]);
                    if (fabs(d[i] - ref[lab[i]]) > tu_dist_tol(ref[lab[i]]))
                        sw_test_fail_at(__FILE__, __LINE__,
                                        "%s %s q%zu: label %llu reported at %.9g, "
                                        "definition gives %.9g",
                                        metric_names[m], exact ? "exact" : "search", q,
                                        (unsigned long long)lab[i], (double)d[i], ref[lab[i]]);
                    for (size_t j = 0; j < i; j++)
                        if (lab[j] == lab[i])
                            sw_test_fail_at(__FILE__, __LINE__, "label %llu twice",
                                            (unsigned long long)lab[i]);
                }
                if (exact && nf == k && fabs(d[k - 1] - kth) > tu_dist_tol(kth))
                    sw_test_fail_at(__FILE__, __LINE__,
                                    "%s q%zu: exact k-th distance %.9g, brute force %.9g",
                                    metric_names[m], q, (double)d[k - 1], kth);
            }
        }
        sw_free(ix);
    }
    free(ref);
    free(data);
    free(queries);
}

TEST(api_search_optional_outputs)
{
    const uint32_t dim = 8;
    const size_t n = 500, k = 7;
    float *data = tu_clustered(n, dim, 8, 101, 102);
    sw_options o = opts_for(dim, SW_METRIC_L2);
    sw_index *ix;

    REQUIRE(data != NULL);
    ix = tu_build(&o, data, n);
    REQUIRE(ix != NULL);
    for (size_t q = 0; q < 10; q++) {
        const float *v = data + (q * 37) * dim;
        uint64_t la[7], lb[7];
        float da[7], db[7];
        size_t na = 0, nb = 0, nc = 0;

        for (int exact = 0; exact < 2; exact++) {
            sw_status (*fn)(const sw_index *, const float *, size_t, size_t,
                            const sw_search_params *, uint64_t *, float *, size_t *) =
                exact ? sw_search_exact : sw_search;

            CHECK_OK(fn(ix, v, dim, k, NULL, la, da, &na));
            CHECK_OK(fn(ix, v, dim, k, NULL, lb, NULL, &nb));
            CHECK_OK(fn(ix, v, dim, k, NULL, NULL, db, &nc));
            CHECK_EQ_UINT(na, k);
            CHECK(na == nb && na == nc);
            CHECK(memcmp(la, lb, sizeof la) == 0);
            CHECK(memcmp(da, db, sizeof da) == 0);
            CHECK_OK(fn(ix, v, dim, k, NULL, NULL, NULL, &nc));
            CHECK_EQ_UINT(nc, k);
            /* a stored vector is its own nearest neighbour */
            CHECK_EQ_UINT(la[0], q * 37);
            CHECK_NEAR(da[0], 0.0, 1e-6);
        }
    }
    sw_free(ix);
    free(data);
}

/* ===================================================================== */
/* Cosine specifics                                                      */
/* ===================================================================== */

TEST(api_cosine_zero_vectors)
{
    sw_options o = opts_for(3, SW_METRIC_COSINE);
    sw_index *ix = NULL;
    const float zero[3] = {0, 0, 0};
    const float a[3] = {3, 0, 4}, b[3] = {-1, 2, 0.5f};
    float out[3];
    uint64_t lab[3];
    float d[3];
    size_t nf = 0;

    REQUIRE_OK(sw_create(&o, &ix));
    CHECK_OK(sw_add(ix, 1, a, 3));
    CHECK_OK(sw_add(ix, 2, b, 3));
    CHECK_OK(sw_add(ix, 3, zero, 3));
    CHECK_OK(sw_get(ix, 3, out, 3));
    CHECK(out[0] == 0 && out[1] == 0 && out[2] == 0);
    CHECK_OK(sw_get(ix, 1, out, 3));
    CHECK_NEAR(out[0], 0.6, 1e-6);
    CHECK_NEAR(out[1], 0.0, 1e-6);
    CHECK_NEAR(out[2], 0.8, 1e-6);

    /* The zero vector sits at distance 1 from a query. */
    CHECK_OK(sw_search_exact(ix, a, 3, 3, NULL, lab, d, &nf));
    CHECK_EQ_UINT(nf, 3);
    for (size_t i = 0; i < nf; i++)
        if (lab[i] == 3)
            CHECK_NEAR(d[i], 1.0, 1e-6);
    CHECK_EQ_UINT(lab[0], 1);
    CHECK_NEAR(d[0], 0.0, 1e-6);

    /* A zero query is at distance 1 from everything. */
    for (int exact = 0; exact < 2; exact++) {
        CHECK_OK(exact ? sw_search_exact(ix, zero, 3, 3, NULL, lab, d, &nf)
                       : sw_search(ix, zero, 3, 3, NULL, lab, d, &nf));
        CHECK_EQ_UINT(nf, 3);
        for (size_t i = 0; i < nf; i++)
            CHECK_NEAR(d[i], 1.0, 1e-6);
    }
    CHECK_GRAPH(ix);
    sw_free(ix);
}

/* Cosine distance does not depend on a vector's length. */
TEST(api_cosine_scale_invariant)
{
    const uint32_t dim = 8;
    float *data = tu_clustered(300, dim, 4, 111, 112);
    float q[8], qs[8];
    sw_options o = opts_for(dim, SW_METRIC_COSINE);
    sw_index *ix;

    REQUIRE(data != NULL);
    ix = tu_build(&o, data, 300);
    REQUIRE(ix != NULL);
    for (size_t t = 0; t < 10; t++) {
        uint64_t la[5], lb[5];
        float da[5], db[5];
        size_t na = 0, nb = 0;

        for (size_t j = 0; j < dim; j++) {
            q[j] = data[(t * 29) * dim + j] + 0.01f * (float)j;
            qs[j] = q[j] * 1000.0f;
        }
        CHECK_OK(sw_search_exact(ix, q, dim, 5, NULL, la, da, &na));
        CHECK_OK(sw_search_exact(ix, qs, dim, 5, NULL, lb, db, &nb));
        CHECK_EQ_UINT(na, 5);
        CHECK(na == nb);
        CHECK(memcmp(la, lb, sizeof la) == 0);
        for (size_t i = 0; i < 5; i++)
            CHECK_NEAR(da[i], db[i], 1e-5);
    }
    sw_free(ix);
    free(data);
}

/* sw_search_params.ef_upper: the width of the descent through the upper
 * layers.  Wider finds the right cluster more often; 1 is the default of a
 * small index; too wide is refused; wider than ef is cut to ef. */
TEST(api_search_upper_width)
{
    const uint32_t dim = 16;
    const size_t n = 20000, nq = 200, k = 10;
    float *data = tu_clustered(n, dim, 200, 1301, 1302);
    float *q = tu_clustered(nq, dim, 200, 1301, 1303);
    sw_options o = sw_options_default();
    sw_index *ix;
    sw_search_params p = sw_search_params_default();
    uint64_t got[k], got1[k];
    float d[k], d1[k];
    size_t found, found1;

    REQUIRE(data != NULL && q != NULL);
    o.dim = dim;
    o.M = 8;
    o.ef_construction = 64;
    ix = tu_build(&o, data, n);
    REQUIRE(ix != NULL);
    CHECK(p.ef_upper == 0);
    double rec[3] = {0, 0, 0};
    const uint32_t widths[3] = {1, 4, 16};
    p.ef = 10;
    for (int w = 0; w < 3; w++) {
        sw_search_stats st;
        memset(&st, 0, sizeof st);
        p.ef_upper = widths[w];
        p.stats = &st;
        rec[w] = tu_measure_recall_with(ix, q, nq, k, &p).by_label;
        /* the hops are layer 0's alone, whatever the width */
        CHECK(st.hops >= 10 * nq && st.hops < 10 * nq * 20);
    }
    NOTE("recall@10 at ef 10: width 1 %.3f, 4 %.3f, 16 %.3f", rec[0], rec[1], rec[2]);
    CHECK(rec[1] >= rec[0] - 0.01 && rec[2] >= rec[0] - 0.01);
    p.stats = NULL;
    /* 20,000 nodes: the default is the greedy descent, bit for bit */
    for (size_t i = 0; i < nq; i += 10) {
        p.ef_upper = 0;
        CHECK_OK(sw_search(ix, q + i * dim, dim, k, &p, got, d, &found));
        p.ef_upper = 1;
        CHECK_OK(sw_search(ix, q + i * dim, dim, k, &p, got1, d1, &found1));
        CHECK(found == found1 && memcmp(got, got1, found * sizeof *got) == 0 &&
              memcmp(d, d1, found * sizeof *d) == 0);
    }
    /* wider than ef: cut to ef, not an error; past the limit: refused */
    p.ef = 12;
    p.ef_upper = SW_MAX_EF_UPPER;
    CHECK_OK(sw_search(ix, q, dim, k, &p, got, d, &found));
    CHECK_EQ_UINT(found, k);
    p.ef_upper = SW_MAX_EF_UPPER + 1;
    CHECK_STATUS(sw_search(ix, q, dim, k, &p, got, d, &found), SW_EEF);
    CHECK(strstr(sw_last_error(), "ef_upper") != NULL);
    uint64_t bl[2 * k];
    float bd[2 * k];
    size_t bf[2];
    CHECK_STATUS(sw_search_batch(ix, q, 2, dim, k, &p, bl, bd, bf, 1), SW_EEF);
    sw_free(ix);
    free(data);
    free(q);
}

/* sw_search_params.stats: what searches cost, added up. */
TEST(api_search_stats_count_the_work)
{
    const uint32_t dim = 16;
    const size_t n = 3000, nq = 40;
    float *data = tu_clustered(n, dim, 8, 1201, 1202);
    float *q = tu_clustered(nq, dim, 8, 1201, 1203);
    sw_options o = sw_options_default();
    sw_index *ix;
    sw_search_params p = sw_search_params_default();
    sw_search_stats one, batch, scan;
    uint64_t labels[nq * 10], allow[5] = {3, 30, 300, 1000, 2999};
    float dists[nq * 10];
    size_t found[nq];

    REQUIRE(data != NULL && q != NULL);
    o.dim = dim;
    ix = tu_build(&o, data, n);
    REQUIRE(ix != NULL);
    CHECK(p.stats == NULL);
    memset(&one, 0, sizeof one);
    p.ef = 32;
    p.stats = &one;
    for (size_t i = 0; i < nq; i++)
        CHECK_OK(sw_search(ix, q + i * dim, dim, 10, &p, labels, dists, found));
    NOTE("%llu searches: %.1f distances and %.1f hops each",
         (unsigned long long)one.searches, (double)one.distances / nq, (double)one.hops / nq);
    CHECK_EQ_UINT(one.searches, nq);
    /* a walk at ef 32 expands at least ef nodes and scores each one's
     * neighbours; far less than scoring everything */
    CHECK(one.hops >= 32 * nq);
    CHECK(one.distances > one.hops && one.distances < n * nq / 2);
    /* a batch on two threads does the same searches: the same work */
    memset(&batch, 0, sizeof batch);
    p.stats = &batch;
    CHECK_OK(sw_search_batch(ix, q, nq, dim, 10, &p, labels, dists, found, 2));
    CHECK(memcmp(&one, &batch, sizeof one) == 0);
    /* an allow-list of five is scanned exactly: five distances a search */
    memset(&scan, 0, sizeof scan);
    p.stats = &scan;
    p.allow = allow;
    p.n_allow = 5;
    for (size_t i = 0; i < nq; i++)
        CHECK_OK(sw_search(ix, q + i * dim, dim, 10, &p, labels, dists, found));
    CHECK_EQ_UINT(scan.searches, nq);
    CHECK_EQ_UINT(scan.distances, 5 * nq);
    CHECK_EQ_UINT(scan.hops, 0);
    sw_free(ix);
    free(data);
    free(q);
}
