/*
 * test_simd.c — every distance kernel this CPU has, against a reference in
 * double precision.
 *
 * The kernels sum in different orders (one running sum per lane, lanes
 * added at the end), so they agree with the exact value to rounding, not
 * bit for bit.  The documented bound: for n terms t_i summed in float,
 *     |computed - exact| <= (n / 8 + 16) * 2^-23 * sum |t_i|
 * (a lane sums at most n/8 terms for the scalar reference, fewer for the
 * wider kernels; the constant covers the final reduction and, for inner
 * product, the rounding of 1 - dot).  Checked for every dimension from 1
 * to 1100 (every tail length of every width), on pointers that are not
 * 16-, 32- or 64-byte aligned, with ordinary values, large magnitudes
 * (1e15, whose squares are near 1e30) and subnormals (1e-40).
 *
 * The library's own suite runs again under SW_SIMD=scalar and SW_SIMD=avx2
 * (tests/CMakeLists.txt), so the index itself is exercised on every level.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sw_test.h"
#include "testutil.h"

typedef float (*dist_fn)(const float *a, const float *b, size_t dim);
dist_fn sw__dist_kernel(sw_metric metric, const char *level);

static const char *const levels[] = {"scalar", "avx2", "avx512"};

/* Exact value and sum of |terms|, in double. */
static double reference(sw_metric m, const float *a, const float *b, size_t n, double *mag) {
    double s = 0, g = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i], t;
        if (m == SW_METRIC_L2)
            t = d * d;
        else if (m == SW_METRIC_L1)
            t = fabs(d);
        else
            t = (double)a[i] * b[i];
        s += t;
        g += fabs(t);
    }
    *mag = g;
    return m == SW_METRIC_IP ? 1.0 - s : s;
}

TEST(simd_kernels_match_reference_every_dimension)
{
    enum { MAXD = 1100 };
    const sw_metric metrics[] = {SW_METRIC_L2, SW_METRIC_IP, SW_METRIC_L1};
    const char *mnames[] = {"l2", "ip", "l1"};
    const double scales[] = {1.0, 1e15, 1e-40};
    float *buf_a = malloc((MAXD + 8) * sizeof(float));
    float *buf_b = malloc((MAXD + 8) * sizeof(float));
    tu_rng r;
    int tested_levels = 0;

    REQUIRE(buf_a != NULL && buf_b != NULL);
    tu_rng_seed(&r, 77);
    /* Odd offsets: no kernel may rely on alignment. */
    float *a = buf_a + 1, *b = buf_b + 3;
    for (size_t lv = 0; lv < sizeof levels / sizeof *levels; lv++) {
        if (!sw__dist_kernel(SW_METRIC_L2, levels[lv])) {
            NOTE("level %s: not supported by this CPU, not tested", levels[lv]);
            continue;
        }
        tested_levels++;
        size_t worst_dim = 0;
        double worst = 0;
        for (size_t mi = 0; mi < 3; mi++) {
            dist_fn f = sw__dist_kernel(metrics[mi], levels[lv]);
            CHECK(f != NULL);
            if (!f)
                continue;
            for (size_t si = 0; si < 3; si++) {
                for (size_t n = 1; n <= MAXD && !sw_test_failed(); n++) {
                    for (size_t i = 0; i < n; i++) {
                        a[i] = (float)(tu_rng_gauss(&r) * scales[si]);
                        b[i] = (float)(tu_rng_gauss(&r) * scales[si]);
                    }
                    double mag, want = reference(metrics[mi], a, b, n, &mag);
                    double got = f(a, b, n);
                    double bound = ((double)n / 8 + 16) * ldexp(1.0, -23) *
                                   (mag + (metrics[mi] == SW_METRIC_IP ? 1.0 : 0.0));
                    /* subnormal squares flush towards zero: allow the
                     * smallest normal float per term on top */
                    bound += (double)n * 1.2e-38;
                    double err = fabs(got - want);
                    if (!(err <= bound))
                        sw_test_fail_at(__FILE__, __LINE__,
                                        "%s %s scale %g dim %zu: got %.9g, want %.9g (bound %.3g)",
                                        levels[lv], mnames[mi], scales[si], n, got, want, bound);
                    if (mag > 0 && err / bound > worst) {
                        worst = err / bound;
                        worst_dim = n;
                    }
                }
            }
        }
        NOTE("level %s: worst error %.3f of the bound (dim %zu)", levels[lv], worst, worst_dim);
    }
    CHECK(tested_levels >= 1);
    free(buf_a);
    free(buf_b);
}

/* The name reported is one of the levels, and it is one this CPU has. */
TEST(simd_name_is_a_supported_level)
{
    const char *name = sw_simd_name();
    int known = 0;

    CHECK(name != NULL);
    for (size_t i = 0; name && i < sizeof levels / sizeof *levels; i++)
        if (strcmp(name, levels[i]) == 0)
            known = 1;
    CHECK(known);
    if (name)
        CHECK(sw__dist_kernel(SW_METRIC_L2, name) != NULL);
    NOTE("kernels in use: %s (SW_SIMD=%s)", name ? name : "?",
         getenv("SW_SIMD") ? getenv("SW_SIMD") : "unset");
}
