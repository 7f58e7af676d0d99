/*
 * test_pq.c — the product quantizer (src/pq.c) on its own, below the index.
 *
 * Data: Gaussian mixtures of 64 centres, 4,000 rows of 32 dimensions,
 * m = 8 sub-quantizers of 4, so the quantizer has structure to find.  The
 * training test draws tight clusters (noise 4% of the variance), where a
 * reconstruction error far below the variance is something a broken
 * k-means would not reach; the distance tests use tu_clustered's wider
 * ones.  The untrained baseline is
 * the same quantizer with its centroids replaced by 256 rows picked at
 * random: Lloyd's iterations from there may only lower the error.
 *
 * Distances over codes are checked against double-precision references on
 * the decoded vectors: a table entry sums dsub float terms and a distance
 * m entries, so they agree to float rounding of the summed magnitudes.
 * The four-code forms must match the single ones bit for bit (the search
 * uses both, and a distance must not depend on which computed it), also
 * for m not a multiple of 4.
 *
 * Training runs serially and through a three-thread runner: the centroids
 * must be identical, since tasks share nothing and seed per slice.
 */
#include "../src/internal.h" /* first: it sets the POSIX feature level */
#include "../src/pq.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sw_test.h"
#include "testutil.h"

enum { N = 4000, DIM = 32, M = 8, NQ = 100 };

/* ---- a thread runner, to train the slices in parallel ---------------- */

typedef struct runner_job {
    pthread_mutex_t mu;
    size_t next, ntasks;
    void (*fn)(void *arg, size_t task);
    void *arg;
} runner_job;

static void *runner_worker(void *p) {
    runner_job *j = p;

    for (;;) {
        size_t t;

        pthread_mutex_lock(&j->mu);
        t = j->next++;
        pthread_mutex_unlock(&j->mu);
        if (t >= j->ntasks) return NULL;
        j->fn(j->arg, t);
    }
}

static void three_threads(void *ctx, size_t ntasks, void (*fn)(void *arg, size_t task),
                          void *arg) {
    runner_job j;
    pthread_t th[3];
    int started = 0;

    (void)ctx;
    pthread_mutex_init(&j.mu, NULL);
    j.next = 0;
    j.ntasks = ntasks;
    j.fn = fn;
    j.arg = arg;
    for (int i = 0; i < 3; i++)
        if (pthread_create(&th[i], NULL, runner_worker, &j) == 0) started++;
    if (started == 0) runner_worker(&j); /* no threads to be had: still run all */
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    pthread_mutex_destroy(&j.mu);
}

/* ---- helpers ---------------------------------------------------------- */

static void mem_init(sw__mem *mem, const sw_allocator *a) {
    mem->a = *a;
    atomic_init(&mem->bytes, 0);
}

static void *plain_alloc(void *ctx, size_t size, size_t align) {
    void *p = NULL;

    (void)ctx;
    if (align < sizeof(void *)) align = sizeof(void *);
    return posix_memalign(&p, align, size) == 0 ? p : NULL;
}

static void plain_free(void *ctx, void *p, size_t size) {
    (void)ctx;
    (void)size;
    free(p);
}

static const sw_allocator plain = {plain_alloc, plain_free, NULL};

/* Mean over rows and dimensions of the squared reconstruction error. */
static double recon_mse(const sw__pq *pq, const float *x, size_t n) {
    uint8_t code[DIM];
    float y[DIM];
    double s = 0;

    for (size_t i = 0; i < n; i++) {
        sw__pq_encode(pq, x + i * pq->dim, code);
        sw__pq_decode(pq, code, y);
        for (uint32_t d = 0; d < pq->dim; d++) {
            const double t = (double)x[i * pq->dim + d] - y[d];
            s += t * t;
        }
    }
    return s / ((double)n * pq->dim);
}

/* Variance per dimension around the mean, averaged over dimensions. */
static double data_variance(const float *x, size_t n, uint32_t dim) {
    double v = 0;

    for (uint32_t d = 0; d < dim; d++) {
        double mean = 0, s = 0;

        for (size_t i = 0; i < n; i++) mean += x[i * dim + d];
        mean /= (double)n;
        for (size_t i = 0; i < n; i++) s += (x[i * dim + d] - mean) * (x[i * dim + d] - mean);
        v += s / (double)n;
    }
    return v / dim;
}

static double ref_dist(int kind, const float *a, const float *b, uint32_t dim) {
    double s = 0;

    for (uint32_t d = 0; d < dim; d++) {
        const double t = (double)a[d] - b[d];

        s += kind == SW__PQ_L2 ? t * t : kind == SW__PQ_IP ? (double)a[d] * b[d] : fabs(t);
    }
    return kind == SW__PQ_IP ? 1.0 - s : s;
}

/* The sum of the magnitudes the float computation added up: the scale of
 * its rounding error. */
static double ref_magnitude(int kind, const float *a, const float *b, uint32_t dim) {
    double s = 0;

    for (uint32_t d = 0; d < dim; d++) {
        const double t = (double)a[d] - b[d];

        s += kind == SW__PQ_IP ? fabs((double)a[d] * b[d]) : kind == SW__PQ_L2 ? t * t : fabs(t);
    }
    return s + (kind == SW__PQ_IP ? 1.0 : 0.0);
}

/* n rows around 64 centres drawn from N(0, 1) per dimension, each row its
 * centre plus N(0, 0.2^2) noise: variance about 1.04, of which the noise
 * a quantizer cannot remove is 0.04. */
static float *tight_clusters(size_t n, uint32_t dim, uint64_t seed) {
    float *centres = malloc((size_t)64 * dim * sizeof(float));
    float *x = malloc(n * dim * sizeof(float));
    tu_rng r;

    if (!centres || !x) {
        free(centres);
        free(x);
        return NULL;
    }
    tu_rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)64 * dim; i++) centres[i] = (float)tu_rng_gauss(&r);
    for (size_t i = 0; i < n; i++) {
        const float *c = centres + tu_rng_below(&r, 64) * dim;

        for (uint32_t d = 0; d < dim; d++) x[i * dim + d] = c[d] + 0.2f * (float)tu_rng_gauss(&r);
    }
    free(centres);
    return x;
}

/* ==== Training ==== */

TEST(pq_train_deterministic_and_accurate) {
    float *x = tight_clusters(N, DIM, 901);
    sw__mem mem;
    sw__pq a, b, base;
    tu_rng r;
    double var, mse, mse_base;
    const size_t cent_bytes = (size_t)M * SW__PQ_K * (DIM / M) * sizeof(float);

    REQUIRE(x != NULL);
    mem_init(&mem, &plain);
    REQUIRE_OK(sw__pq_train(&mem, &a, DIM, M, SW__PQ_L2, x, N, 42, NULL, NULL));
    REQUIRE_OK(sw__pq_train(&mem, &b, DIM, M, SW__PQ_L2, x, N, 42, three_threads, NULL));
    CHECK_EQ_UINT(a.dim, DIM);
    CHECK_EQ_UINT(a.m, M);
    CHECK_EQ_UINT(a.dsub, DIM / M);
    CHECK(memcmp(a.cent, b.cent, cent_bytes) == 0);
    CHECK(memcmp(a.sdc, b.sdc, (size_t)M * SW__PQ_K * SW__PQ_K * sizeof(float)) == 0);
    sw__pq_free(&mem, &b);
    /* Another seed starts elsewhere and so ends elsewhere. */
    REQUIRE_OK(sw__pq_train(&mem, &b, DIM, M, SW__PQ_L2, x, N, 43, NULL, NULL));
    CHECK(memcmp(a.cent, b.cent, cent_bytes) != 0);
    sw__pq_free(&mem, &b);

    /* Every centroid is finite and distinct within its slice (no empty
     * cluster left as a copy of another). */
    for (uint32_t j = 0; j < M; j++)
        for (uint32_t c = 0; c < SW__PQ_K; c++) {
            const float *cc = a.cent + ((size_t)j * SW__PQ_K + c) * a.dsub;

            for (uint32_t d = 0; d < a.dsub; d++) CHECK(isfinite(cc[d]));
            for (uint32_t e = 0; e < c; e++)
                if (memcmp(cc, a.cent + ((size_t)j * SW__PQ_K + e) * a.dsub,
                           a.dsub * sizeof(float)) == 0)
                    sw_test_fail_at(__FILE__, __LINE__, "slice %u: centroids %u and %u equal", j,
                                    e, c);
        }

    /* The baseline: the same shapes, centroids = random rows. */
    base = a;
    base.sdc = NULL;
    base.cent = malloc(cent_bytes);
    base.cent_t = malloc(cent_bytes); /* encoding reads the dimension-major copy */
    REQUIRE(base.cent != NULL && base.cent_t != NULL);
    tu_rng_seed(&r, 903);
    for (uint32_t j = 0; j < M; j++)
        for (uint32_t c = 0; c < SW__PQ_K; c++)
            memcpy(base.cent + ((size_t)j * SW__PQ_K + c) * a.dsub,
                   x + tu_rng_below(&r, N) * DIM + (size_t)j * a.dsub, a.dsub * sizeof(float));
    for (uint32_t j = 0; j < M; j++)
        for (uint32_t c = 0; c < SW__PQ_K; c++)
            for (uint32_t d = 0; d < a.dsub; d++)
                base.cent_t[((size_t)j * a.dsub + d) * SW__PQ_K + c] =
                    base.cent[((size_t)j * SW__PQ_K + c) * a.dsub + d];
    var = data_variance(x, N, DIM);
    mse = recon_mse(&a, x, N);
    mse_base = recon_mse(&base, x, N);
    NOTE("variance %.4f, trained MSE %.4f (%.2f%%), random-row centroids %.4f (%.2f%%)", var,
         mse, 100 * mse / var, mse_base, 100 * mse_base / var);
    CHECK(mse < 0.10 * var);
    CHECK(mse <= mse_base);
    free(base.cent);
    free(base.cent_t);

    /* sdc rebuilt from the centroids alone is the trained one. */
    {
        float *trained = malloc((size_t)M * SW__PQ_K * SW__PQ_K * sizeof(float));

        REQUIRE(trained != NULL);
        memcpy(trained, a.sdc, (size_t)M * SW__PQ_K * SW__PQ_K * sizeof(float));
        CHECK_OK(sw__pq_build_tables(&mem, &a));
        CHECK(memcmp(trained, a.sdc, (size_t)M * SW__PQ_K * SW__PQ_K * sizeof(float)) == 0);
        free(trained);
    }
    sw__pq_free(&mem, &a);
    CHECK(a.cent == NULL && a.sdc == NULL);
    CHECK_EQ_UINT(atomic_load(&mem.bytes), 0);
    free(x);
}

/* Duplicate rows: 10 distinct points for 256 centroids.  Clusters stay
 * empty however often they are split off the big ones; training must still
 * end with each point's own centroid exactly on it. */
TEST(pq_train_few_distinct_rows) {
    float *x = malloc((size_t)1000 * 8 * sizeof(float));
    sw__mem mem;
    sw__pq pq;
    uint8_t code[2];
    float y[8];

    REQUIRE(x != NULL);
    for (size_t i = 0; i < 1000; i++)
        for (uint32_t d = 0; d < 8; d++) x[i * 8 + d] = (float)((i % 10) * (d + 1));
    mem_init(&mem, &plain);
    REQUIRE_OK(sw__pq_train(&mem, &pq, 8, 2, SW__PQ_L2, x, 1000, 1, NULL, NULL));
    for (size_t i = 0; i < 10; i++) {
        sw__pq_encode(&pq, x + i * 8, code);
        sw__pq_decode(&pq, code, y);
        CHECK(memcmp(y, x + i * 8, sizeof y) == 0); /* a cluster of copies: its mean */
    }
    sw__pq_free(&mem, &pq);
    free(x);
}

TEST(pq_train_refuses_bad_shapes) {
    float x[300 * 4] = {0};
    sw__mem mem;
    sw__pq pq;

    mem_init(&mem, &plain);
    CHECK_STATUS(sw__pq_train(&mem, &pq, 4, 3, SW__PQ_L2, x, 300, 1, NULL, NULL), SW_EINVAL);
    CHECK_STATUS(sw__pq_train(&mem, &pq, 4, 0, SW__PQ_L2, x, 300, 1, NULL, NULL), SW_EINVAL);
    CHECK_STATUS(sw__pq_train(&mem, &pq, 4, 2, SW__PQ_L2, x, 255, 1, NULL, NULL), SW_EINVAL);
    CHECK_STATUS(sw__pq_train(&mem, &pq, 4, 2, 3, x, 300, 1, NULL, NULL), SW_EINVAL);
    CHECK(pq.cent == NULL && pq.sdc == NULL);
    CHECK_EQ_UINT(atomic_load(&mem.bytes), 0);
}

/* ==== Distances ==== */

/* adc against the decoded vector, adc4 against adc, sdc against the two
 * decoded vectors; for each kind, and for m = 8 and m = 6 (a tail). */
TEST(pq_distances_match_decoded) {
    float *x = tu_clustered(N, 48, 64, 911, 912);
    float *q = tu_clustered(20, 48, 64, 911, 913);
    static const uint32_t ms[2] = {8, 6};
    static const char *const kind_names[3] = {"L2", "IP", "L1"};

    REQUIRE(x != NULL && q != NULL);
    for (int mi = 0; mi < 2; mi++)
        for (int kind = SW__PQ_L2; kind <= SW__PQ_L1; kind++) {
            const uint32_t m = ms[mi];
            sw__mem mem;
            sw__pq pq;
            float lut[8 * SW__PQ_K], ya[48], yb[48];
            uint8_t codes[4][8];
            double worst = 0;

            mem_init(&mem, &plain);
            REQUIRE_OK(sw__pq_train(&mem, &pq, 48, m, kind, x, N, 7, NULL, NULL));
            for (int qi = 0; qi < 20; qi++) {
                const void *cp[4] = {codes[0], codes[1], codes[2], codes[3]};
                float four[4];

                sw__pq_lut(&pq, q + qi * 48, lut);
                for (int i = 0; i < 4; i++) sw__pq_encode(&pq, x + (qi * 4 + i) * 48, codes[i]);
                /* each byte names the nearest centroid (the first of equals) */
                for (int i = 0; i < 4; i++)
                    for (uint32_t j = 0; j < m; j++) {
                        const uint32_t dsub = 48 / m;
                        const float *xj = x + (qi * 4 + i) * 48 + j * dsub;
                        double best = INFINITY;
                        uint32_t bi = 0;

                        for (uint32_t c = 0; c < SW__PQ_K; c++) {
                            const double d2 = ref_dist(
                                SW__PQ_L2, xj, pq.cent + ((size_t)j * SW__PQ_K + c) * dsub, dsub);

                            if (d2 < best - 1e-6 * (1 + best)) {
                                best = d2;
                                bi = c;
                            }
                        }
                        sw__pq_decode(&pq, codes[i], ya);
                        CHECK(codes[i][j] == bi ||
                              fabs(ref_dist(SW__PQ_L2, xj, ya + j * dsub, dsub) - best) <=
                                  1e-6 * (1 + best));
                    }
                if (kind == SW__PQ_IP)
                    sw__pq_adc4_ip(lut, cp, m, four);
                else
                    sw__pq_adc4_l2(lut, cp, m, four);
                for (int i = 0; i < 4; i++) {
                    const float one = kind == SW__PQ_IP ? sw__pq_adc_ip(lut, codes[i], m)
                                                        : sw__pq_adc_l2(lut, codes[i], m);
                    double want, tol;

                    if (memcmp(&one, &four[i], sizeof one) != 0)
                        sw_test_fail_at(__FILE__, __LINE__,
                                        "%s m=%u: adc4 %.9g differs from adc %.9g", kind_names[kind],
                                        m, four[i], one);
                    sw__pq_decode(&pq, codes[i], ya);
                    want = ref_dist(kind, q + qi * 48, ya, 48);
                    tol = 1e-5 * ref_magnitude(kind, q + qi * 48, ya, 48) + 1e-6;
                    CHECK_NEAR(one, want, tol);
                    if (fabs(one - want) > worst) worst = fabs(one - want);
                    /* symmetric: code i against code (i + 1) % 4 */
                    sw__pq_decode(&pq, codes[(i + 1) % 4], yb);
                    want = ref_dist(kind, ya, yb, 48);
                    tol = 1e-5 * ref_magnitude(kind, ya, yb, 48) + 1e-6;
                    CHECK_NEAR(sw__pq_sdc(&pq, codes[i], codes[(i + 1) % 4]), want, tol);
                }
            }
            if (kind == SW__PQ_L2 && m == 8) NOTE("ADC L2 worst absolute error %.3g", worst);
            sw__pq_free(&mem, &pq);
        }
    free(x);
    free(q);
}

/* The true nearest neighbour (exact L2) is among the ADC top 10. */
TEST(pq_adc_recall) {
    float *x = tu_clustered(N, DIM, 64, 921, 922);
    float *q = tu_clustered(NQ, DIM, 64, 921, 923);
    uint8_t *codes = malloc((size_t)N * M);
    float *adc = malloc(N * sizeof(float));
    float lut[M * SW__PQ_K];
    sw__mem mem;
    sw__pq pq;
    int hits = 0;

    REQUIRE(x != NULL && q != NULL && codes != NULL && adc != NULL);
    mem_init(&mem, &plain);
    REQUIRE_OK(sw__pq_train(&mem, &pq, DIM, M, SW__PQ_L2, x, N, 5, NULL, NULL));
    for (size_t i = 0; i < N; i++) sw__pq_encode(&pq, x + i * DIM, codes + i * M);
    for (int qi = 0; qi < NQ; qi++) {
        size_t nn = 0, better = 0;
        double best = INFINITY;

        for (size_t i = 0; i < N; i++) {
            const double d = ref_dist(SW__PQ_L2, q + qi * DIM, x + i * DIM, DIM);

            if (d < best) {
                best = d;
                nn = i;
            }
        }
        sw__pq_lut(&pq, q + qi * DIM, lut);
        for (size_t i = 0; i < N; i++) adc[i] = sw__pq_adc_l2(lut, codes + i * M, M);
        /* rank of nn by ADC: rows strictly nearer, ties counted against it */
        for (size_t i = 0; i < N; i++)
            if (i != nn && adc[i] <= adc[nn]) better++;
        hits += better < 10;
    }
    NOTE("true nearest neighbour in the ADC top 10 for %d of %d queries", hits, NQ);
    CHECK(hits >= 80);
    sw__pq_free(&mem, &pq);
    free(x);
    free(q);
    free(codes);
    free(adc);
}

/* ==== Out of memory ==== */

TEST(pq_train_out_of_memory) {
    float *x = tu_clustered(1000, 16, 16, 931, 932);
    tu_alloc ta;
    long n;
    size_t refused = 0;

    REQUIRE(x != NULL);
    tu_alloc_init(&ta);
    for (int persistent = 1; persistent >= 0; persistent--)
        for (n = 0; n < 100; n++) {
            sw__mem mem;
            sw__pq pq;
            sw_status st;
            size_t injected;

            mem_init(&mem, &ta.api);
            tu_alloc_fail_after(&ta, n, persistent);
            st = sw__pq_train(&mem, &pq, 16, 4, SW__PQ_IP, x, 1000, 3, NULL, NULL);
            injected = tu_alloc_injected(&ta);
            tu_alloc_disarm(&ta);
            if (st == SW_OK) {
                CHECK(injected == 0);
                CHECK(pq.cent != NULL && pq.sdc != NULL);
                /* and the table rebuild, starved at its first or its
                 * second allocation, keeps the old tables and leaks
                 * nothing */
                for (long k = 0; k < 2; k++) {
                    float *old = pq.sdc, *old_t = pq.cent_t;
                    const size_t live = tu_alloc_live_bytes(&ta);

                    tu_alloc_fail_after(&ta, k, 1);
                    CHECK_STATUS(sw__pq_build_tables(&mem, &pq), SW_ENOMEM);
                    tu_alloc_disarm(&ta);
                    CHECK(pq.sdc == old && pq.cent_t == old_t);
                    CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), live);
                }
                sw__pq_free(&mem, &pq);
                CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), 0);
                CHECK_EQ_UINT(atomic_load(&mem.bytes), 0);
                break;
            }
            refused++;
            CHECK_STATUS(st, SW_ENOMEM);
            CHECK(pq.cent == NULL && pq.sdc == NULL && pq.cent_t == NULL);
            if (tu_alloc_live_bytes(&ta) != 0)
                sw_test_fail_at(__FILE__, __LINE__, "failed training (n=%ld) leaked %zu B", n,
                                tu_alloc_live_bytes(&ta));
            if (sw_test_failed()) break;
        }
    CHECK(refused >= 10); /* five allocations, in both modes */
    NOTE("%zu starved trainings refused", refused);
    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
    free(x);
}
