/*
 * test_metrics.c — each metric on a case small enough to do by hand.
 *
 * Three stored vectors in 2-D and one query, chosen so that no two distances
 * tie under any metric and the four metrics do not all agree on the order
 * (L2 and L1 rank a, b, c; IP and cosine rank c, b, a).  The expected values
 * are worked out in the comments — the one place in the suite where
 * expected numbers are written down, because here the point is an
 * independent check of the definitions in smallworld.h, not a second
 * implementation of them.  Both search paths (graph and exact) must agree
 * with the hand values, and the graph search must agree for every ef,
 * since with three vectors there is nothing to approximate.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sw_test.h"
#include "testutil.h"

/*
 *   a = (1, 0)   b = (1, 3)   c = (3, 3)   q = (1, 1)
 *
 *   L2 (squared): a: 0²+1² = 1      b: 0²+2² = 4      c: 2²+2² = 8
 *   L1:           a: 0+1   = 1      b: 0+2   = 2      c: 2+2   = 4
 *   IP (1 - q·x): a: 1-1   = 0      b: 1-4   = -3     c: 1-6   = -5
 *   cosine:       a: 1 - 1/√2       b: 1 - 4/(√2·√10) c: 1 - 6/(√2·√18)
 *                  = 0.2928932        = 1 - 2/√5          = 0
 *                                     = 0.1055728
 */
static const float va[2] = {1, 0}, vb[2] = {1, 3}, vc[2] = {3, 3}, vq[2] = {1, 1};

static void check_case(sw_metric metric, const char *name, const uint64_t want_order[3],
                       const double want_dist[3])
{
    sw_options o = sw_options_default();
    sw_index *ix = NULL;
    const uint32_t efs[] = {0, 1, 3, 100};

    o.dim = 2;
    o.metric = metric;
    if (sw_create(&o, &ix) != SW_OK) {
        sw_test_fail_at(__FILE__, __LINE__, "%s: sw_create: %s", name, sw_last_error());
        return;
    }
    CHECK_OK(sw_add(ix, 'a', va, 2));
    CHECK_OK(sw_add(ix, 'b', vb, 2));
    CHECK_OK(sw_add(ix, 'c', vc, 2));

    for (int exact = 0; exact < 2; exact++) {
        for (size_t e = 0; e < (exact ? 1u : sizeof efs / sizeof efs[0]); e++) {
            sw_search_params p = sw_search_params_default();
            uint64_t lab[3] = {0, 0, 0};
            float d[3] = {0, 0, 0};
            size_t nf = 0;

            p.ef = efs[e];
            CHECK_OK(exact ? sw_search_exact(ix, vq, 2, 3, &p, lab, d, &nf)
                           : sw_search(ix, vq, 2, 3, &p, lab, d, &nf));
            CHECK_EQ_UINT(nf, 3);
            for (size_t i = 0; i < 3; i++) {
                if (lab[i] != want_order[i] || fabs(d[i] - want_dist[i]) > 1e-6)
                    sw_test_fail_at(__FILE__, __LINE__,
                                    "%s %s ef=%u: result %zu is '%c' at %.9g, want '%c' at %.9g",
                                    name, exact ? "exact" : "search", efs[e], i,
                                    (int)(lab[i] < 128 ? lab[i] : '?'), (double)d[i],
                                    (int)want_order[i], want_dist[i]);
            }
        }
    }
    /* k = 1 returns just the nearest. */
    {
        uint64_t lab = 0;
        float d = 0;
        size_t nf = 0;

        CHECK_OK(sw_search(ix, vq, 2, 1, NULL, &lab, &d, &nf));
        CHECK_EQ_UINT(nf, 1);
        CHECK_EQ_UINT(lab, want_order[0]);
        CHECK_NEAR(d, want_dist[0], 1e-6);
    }
    CHECK_GRAPH(ix);
    sw_free(ix);
}

TEST(metric_l2_by_hand)
{
    const uint64_t order[3] = {'a', 'b', 'c'};
    const double dist[3] = {1, 4, 8};

    check_case(SW_METRIC_L2, "L2", order, dist);
}

TEST(metric_l1_by_hand)
{
    const uint64_t order[3] = {'a', 'b', 'c'};
    const double dist[3] = {1, 2, 4};

    check_case(SW_METRIC_L1, "L1", order, dist);
}

TEST(metric_ip_by_hand)
{
    const uint64_t order[3] = {'c', 'b', 'a'};
    const double dist[3] = {-5, -3, 0};

    check_case(SW_METRIC_IP, "IP", order, dist);
}

TEST(metric_cosine_by_hand)
{
    const uint64_t order[3] = {'c', 'b', 'a'};
    const double dist[3] = {0, 1 - 2 / sqrt(5.0), 1 - 1 / sqrt(2.0)};

    check_case(SW_METRIC_COSINE, "cosine", order, dist);
}

/*
 * IP is not a metric: a vector need not be its own nearest neighbour, and
 * distances go negative.  q = (2, 0) against x = (1, 0) and y = (3, 0):
 * 1 - 2 = -1 and 1 - 6 = -5, so y ranks first although x is closer in L2.
 * And the index must not normalise IP vectors: sw_get returns y as given.
 */
TEST(metric_ip_is_not_normalised)
{
    sw_options o = sw_options_default();
    sw_index *ix = NULL;
    const float x[2] = {1, 0}, y[2] = {3, 0}, q[2] = {2, 0};
    float out[2];
    uint64_t lab[2];
    float d[2];
    size_t nf = 0;

    o.dim = 2;
    o.metric = SW_METRIC_IP;
    REQUIRE_OK(sw_create(&o, &ix));
    CHECK_OK(sw_add(ix, 1, x, 2));
    CHECK_OK(sw_add(ix, 2, y, 2));
    CHECK_OK(sw_get(ix, 2, out, 2));
    CHECK(out[0] == 3.0f && out[1] == 0.0f);
    CHECK_OK(sw_search_exact(ix, q, 2, 2, NULL, lab, d, &nf));
    CHECK_EQ_UINT(nf, 2);
    CHECK_EQ_UINT(lab[0], 2);
    CHECK_NEAR(d[0], -5.0, 1e-6);
    CHECK_EQ_UINT(lab[1], 1);
    CHECK_NEAR(d[1], -1.0, 1e-6);
    /* x's nearest under IP is y (1 - 3 = -2 < 1 - 1 = 0). */
    CHECK_OK(sw_search(ix, x, 2, 2, NULL, lab, d, &nf));
    CHECK_EQ_UINT(lab[0], 2);
    CHECK_NEAR(d[0], -2.0, 1e-6);
    CHECK_NEAR(d[1], 0.0, 1e-6);
    sw_free(ix);
}

/*
 * Odd dimensions and lengths that are not a multiple of any SIMD width: the
 * kernels' tails.  For dim 1..67, two vectors with components 1..dim and 0,
 * whose distances have closed forms: L2 = sum i² = n(n+1)(2n+1)/6,
 * L1 = sum i = n(n+1)/2, IP with itself = 1 - sum i², cosine with a
 * constant vector = 1 - sum i / (sqrt(sum i²) sqrt(n)).
 */
TEST(metric_every_length_closed_form)
{
    float x[67], zero[67], ones[67];

    for (size_t i = 0; i < 67; i++) {
        x[i] = (float)(i + 1);
        zero[i] = 0;
        ones[i] = 1;
    }
    for (uint32_t n = 1; n <= 67; n++) {
        const double s1 = n * (n + 1.0) / 2, s2 = n * (n + 1.0) * (2 * n + 1.0) / 6;
        const struct {
            sw_metric metric;
            const float *stored;
            double want;
        } cases[] = {
            {SW_METRIC_L2, zero, s2},
            {SW_METRIC_L1, zero, s1},
            {SW_METRIC_IP, x, 1 - s2},
            {SW_METRIC_COSINE, ones, 1 - s1 / (sqrt(s2) * sqrt((double)n))},
        };

        for (size_t c = 0; c < 4; c++) {
            sw_options o = sw_options_default();
            sw_index *ix = NULL;
            float d = 0;
            size_t nf = 0;

            o.dim = n;
            o.metric = cases[c].metric;
            REQUIRE_OK(sw_create(&o, &ix));
            CHECK_OK(sw_add(ix, 7, cases[c].stored, n));
            CHECK_OK(sw_search_exact(ix, x, n, 1, NULL, NULL, &d, &nf));
            CHECK_EQ_UINT(nf, 1);
            if (fabs(d - cases[c].want) > 1e-5 * (1 + fabs(cases[c].want)))
                sw_test_fail_at(__FILE__, __LINE__, "metric %d dim %u: %.9g, want %.9g",
                                (int)cases[c].metric, n, (double)d, cases[c].want);
            CHECK_OK(sw_search(ix, x, n, 1, NULL, NULL, &d, &nf));
            if (fabs(d - cases[c].want) > 1e-5 * (1 + fabs(cases[c].want)))
                sw_test_fail_at(__FILE__, __LINE__, "search metric %d dim %u: %.9g, want %.9g",
                                (int)cases[c].metric, n, (double)d, cases[c].want);
            sw_free(ix);
        }
    }
}

/*
 * Finite vectors can make an inner product of +inf + -inf = NaN.  A NaN
 * distance would break the sorted candidate pool and the result order, so
 * the library reports it as +inf: results must stay sorted and NaN-free.
 */
TEST(metrics_ip_overflow_never_nan)
{
    sw_options o = sw_options_default();
    sw_index *ix = NULL;
    const float big = 1e20f;
    float v[2];
    uint64_t lab[8];
    float d[8];
    size_t nf = 0;

    o.dim = 2;
    o.metric = SW_METRIC_IP;
    REQUIRE_OK(sw_create(&o, &ix));
    for (uint64_t i = 0; i < 8; i++) {
        v[0] = (i & 1) ? big : -big;
        v[1] = (i & 2) ? big : (float)i;
        CHECK_OK(sw_add(ix, i, v, 2));
    }
    v[0] = big;
    v[1] = -big;
    for (int exact = 0; exact < 2; exact++) {
        CHECK_OK(exact ? sw_search_exact(ix, v, 2, 8, NULL, lab, d, &nf)
                       : sw_search(ix, v, 2, 8, NULL, lab, d, &nf));
        CHECK_EQ_UINT(nf, 8);
        for (size_t i = 0; i < nf; i++) {
            CHECK(!isnan(d[i]));
            if (i > 0)
                CHECK(d[i - 1] <= d[i]);
        }
    }
    sw_free(ix);
}
