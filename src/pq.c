/*
 * pq.c — product quantization (Jegou, Douze & Schmid, "Product quantization
 * for nearest neighbor search", TPAMI 2011).
 *
 * A vector of dim floats is cut into m sub-vectors of dsub = dim / m
 * dimensions; each sub-vector is replaced by the index of the nearest of
 * 256 centroids learnt for its slice, so a vector becomes m bytes.  A
 * query is not quantized: the search first fills a table of the query's
 * distance to every centroid of every slice (m x 256 floats, 16 KiB at
 * m = 16), after which the distance to a stored vector is m table look-ups
 * and adds ("asymmetric distance computation", ADC).  Two stored vectors
 * are compared through a per-slice table of centroid-to-centroid distances
 * (SDC), which is what the graph's own construction uses when it keeps no
 * float copies.
 *
 * Training is Lloyd's k-means per slice, the slices independent of each
 * other, so they are the unit of parallelism: the caller hands a runner
 * and the m slices are its tasks.  Each task owns its slice of the
 * centroids and its own scratch, so nothing is shared and nothing is
 * locked; and because every task draws from a generator seeded by (seed,
 * slice), the centroids do not depend on the runner or on how many
 * threads it has.  Departures from the textbook, and why:
 *
 *   - At most 65,536 rows, evenly spaced (row i * n / ntrain), not a
 *     random sample: 256 centroids in a slice of a few dimensions are
 *     settled long before that (the paper trains on far fewer per
 *     centroid), and even spacing needs no generator and reads a file-
 *     ordered input in order.
 *   - Initial centroids are 256 distinct rows picked by Floyd's sampling
 *     with a seeded generator, not k-means++: k-means++ costs a pass over
 *     the rows per centroid (256 passes, more than the Lloyd iterations
 *     themselves), and with 65,536 rows for 256 centroids random rows
 *     already land in proportion to the density.
 *   - At most 20 iterations, stopping early when no row changes cluster.
 *   - An empty cluster takes half of the largest one: that cluster's
 *     centroid is pushed apart into two along a random direction, so the
 *     next assignment splits its rows by a plane through the old centroid.
 *     Re-seeding at a random row instead tends to hand the empty centroid
 *     an outlier that empties again.
 *
 * The assignment step is the cost: rows x 256 x dsub multiply-adds per
 * slice per iteration, 65,536 x 256 x 128 x 20 = 43 G for a 128-dimension
 * set.  Calling the distance kernel once per (row, centroid) pair was the
 * first idea and is hopeless at dsub = 8: the call overhead is larger
 * than the 8-element sum.  Instead the slice's centroids are transposed
 * (dsub rows of 256) and a row's 256 scores are accumulated all at once,
 * score[c] = ||c||^2 / 2 - <x, c> (the same order as the squared distance;
 * ||x||^2 is common to all c), an inner loop over 16 centroids that the
 * compiler turns into SIMD at whatever width the build targets.  Each
 * centroid's score is summed over d in the same order whatever the vector
 * width, and the build does not contract multiply-adds (-std=c11), so the
 * scores, and the trained centroids, are the same on every kernel level.
 * The expanded form loses accuracy when two centroids are nearly
 * equidistant from a row; training does not mind, but sw__pq_encode,
 * which fixes the codes the index keeps, computes exact differences.
 * Centroid sums are accumulated in double, so the means do not depend on
 * how many rows a cluster has.
 *
 * ADC is the search's inner loop: m independent look-ups whose addresses
 * depend only on the code bytes.  Four running sums take the slices in
 * turn (slice j into sum j % 4), added as (s0 + s1) + (s2 + s3) at the
 * end; the four-code form interleaves four codes' look-ups with exactly
 * that order per code, so its results are bit-identical to the single
 * form's and the loads of the four codes overlap.
 */
#include "internal.h"

#include "pq.h"

#include <math.h>
#include <string.h>

#define PQ_ITERS 20

/* ==== Generator ==== */

/* splitmix64: one 64-bit state, good enough to pick rows and signs. */
static uint64_t pq_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0; the modulo bias is below 2^-40 for n < 2^24. */
static size_t pq_below(uint64_t *s, size_t n) { return (size_t)(pq_next(s) % (uint64_t)n); }

/* ==== Training ==== */

typedef struct pq_job {
    float *cent;        /* output: m x 256 x dsub */
    const float *xs;    /* training rows, slice-major: m x ntrain x dsub */
    size_t ntrain;
    uint32_t dsub;
    uint64_t seed;
    unsigned char *scratch; /* per task, `stride` bytes each */
    size_t stride;
} pq_job;

/* A task's scratch: doubles first, for their alignment. */
static size_t pq_scratch_bytes(uint32_t dsub, size_t ntrain) {
    size_t b = (size_t)SW__PQ_K * dsub * sizeof(double) /* sums */
               + (size_t)dsub * SW__PQ_K * sizeof(float) /* transposed centroids */
               + SW__PQ_K * sizeof(float)                 /* ||c||^2 / 2 */
               + SW__PQ_K * sizeof(uint32_t)              /* counts */
               + ntrain;                                   /* assignments */
    return (b + SW__LINE - 1) / SW__LINE * SW__LINE;
}

/*
 * The centroid with the smallest ||c||^2/2 - <x, c>, lowest index on a tie,
 * from the transposed centroids ct[d * 256 + c] (64-byte aligned).
 *
 * With GCC or clang the scores of 16 centroids at a time stay in four
 * 4-float vectors (the compilers' generic vectors, lowered to SSE2, NEON
 * or plain scalars; no intrinsics), and so do the best score and its
 * index seen by each of the 16 lanes.  Each score is summed in the same
 * order as the plain loop below, so both return the same centroid.  The
 * plain loop, GCC's own vectorisation of it, took 9.1 s to train
 * 65,536 x 128 at m = 16 on one core of the build machine (an EPYC, SSE2
 * code, shared, so +-20%), this form 5.0 s at the same 25 iterations
 * (4.1 s at the 20 now used): the argmin no longer
 * runs one scalar compare per centroid, and the scores never leave
 * registers.
 */
#if defined(__GNUC__) || defined(__clang__)
typedef float pq_v4f __attribute__((vector_size(16)));
typedef int32_t pq_v4i __attribute__((vector_size(16)));

static pq_v4f pq_load(const float *p) {
    pq_v4f v;

    memcpy(&v, p, sizeof v);
    return v;
}

static uint32_t pq_assign(const float *x, const float *ct, const float *half, uint32_t dsub) {
    const pq_v4f inf = {INFINITY, INFINITY, INFINITY, INFINITY};
    pq_v4f b0 = inf, b1 = inf, b2 = inf, b3 = inf;
    pq_v4i i0 = {0, 1, 2, 3}, i1 = i0 + 4, i2 = i0 + 8, i3 = i0 + 12;
    pq_v4i k0 = i0, k1 = i1, k2 = i2, k3 = i3; /* this block's indices */
    float best = INFINITY;
    uint32_t bi = 0;

    for (uint32_t cb = 0; cb < SW__PQ_K; cb += 16) {
        pq_v4f s0 = pq_load(half + cb), s1 = pq_load(half + cb + 4);
        pq_v4f s2 = pq_load(half + cb + 8), s3 = pq_load(half + cb + 12);
        pq_v4i m0, m1, m2, m3;

        for (uint32_t d = 0; d < dsub; d++) {
            const float *col = ct + (size_t)d * SW__PQ_K + cb;
            const pq_v4f xd = {x[d], x[d], x[d], x[d]};

            s0 -= xd * pq_load(col);
            s1 -= xd * pq_load(col + 4);
            s2 -= xd * pq_load(col + 8);
            s3 -= xd * pq_load(col + 12);
        }
        m0 = s0 < b0;
        m1 = s1 < b1;
        m2 = s2 < b2;
        m3 = s3 < b3;
        b0 = (pq_v4f)(((pq_v4i)s0 & m0) | ((pq_v4i)b0 & ~m0));
        b1 = (pq_v4f)(((pq_v4i)s1 & m1) | ((pq_v4i)b1 & ~m1));
        b2 = (pq_v4f)(((pq_v4i)s2 & m2) | ((pq_v4i)b2 & ~m2));
        b3 = (pq_v4f)(((pq_v4i)s3 & m3) | ((pq_v4i)b3 & ~m3));
        i0 = (k0 & m0) | (i0 & ~m0);
        i1 = (k1 & m1) | (i1 & ~m1);
        i2 = (k2 & m2) | (i2 & ~m2);
        i3 = (k3 & m3) | (i3 & ~m3);
        k0 += 16;
        k1 += 16;
        k2 += 16;
        k3 += 16;
    }
    /* Each lane kept its first minimum; of the lanes' minima, the
     * smallest score, and of equal scores the lowest index. */
    {
        float bv[16];
        int32_t iv[16];

        memcpy(bv, &b0, 16);
        memcpy(bv + 4, &b1, 16);
        memcpy(bv + 8, &b2, 16);
        memcpy(bv + 12, &b3, 16);
        memcpy(iv, &i0, 16);
        memcpy(iv + 4, &i1, 16);
        memcpy(iv + 8, &i2, 16);
        memcpy(iv + 12, &i3, 16);
        for (int l = 0; l < 16; l++)
            if (bv[l] < best || (bv[l] == best && (uint32_t)iv[l] < bi)) {
                best = bv[l];
                bi = (uint32_t)iv[l];
            }
    }
    return bi;
}
#else
static uint32_t pq_assign(const float *x, const float *ct, const float *half, uint32_t dsub) {
    float best = INFINITY;
    uint32_t bi = 0;

    for (uint32_t c = 0; c < SW__PQ_K; c++) {
        float s = half[c];

        for (uint32_t d = 0; d < dsub; d++) s -= x[d] * ct[(size_t)d * SW__PQ_K + c];
        if (s < best) {
            best = s;
            bi = c;
        }
    }
    return bi;
}
#endif

/* One slice: Lloyd's iterations on xs[task], writing cent[task]. */
static void pq_train_slice(void *arg, size_t task) {
    const pq_job *job = arg;
    const uint32_t dsub = job->dsub;
    const size_t n = job->ntrain;
    const float *x = job->xs + task * n * dsub;
    float *cent = job->cent + task * SW__PQ_K * dsub;
    unsigned char *p = job->scratch + task * job->stride;
    double *sums = (double *)(void *)p;
    float *ct = (float *)(void *)(sums + (size_t)SW__PQ_K * dsub);
    float *half = ct + (size_t)dsub * SW__PQ_K;
    uint32_t *count = (uint32_t *)(void *)(half + SW__PQ_K);
    uint8_t *assign = (uint8_t *)(count + SW__PQ_K);
    uint64_t rng = job->seed ^ (0xD1B54A32D192ED03ull * (task + 1));
    uint32_t picked[SW__PQ_K];
    double spread = 0;

    /* Floyd's sampling: 256 distinct rows in O(256^2), no n-sized array. */
    for (size_t i = n - SW__PQ_K, c = 0; i < n; i++, c++) {
        uint32_t t = (uint32_t)pq_below(&rng, i + 1);

        for (size_t k = 0; k < c; k++)
            if (picked[k] == t) {
                t = (uint32_t)i;
                break;
            }
        picked[c] = t;
        memcpy(cent + c * dsub, x + (size_t)t * dsub, dsub * sizeof(float));
    }
    /* The rows' mean absolute value: the scale of a split's push. */
    for (size_t i = 0; i < n * dsub; i++) spread += fabs((double)x[i]);
    spread /= (double)(n * dsub);
    memset(assign, 0, n);

    for (int it = 0;; it++) {
        size_t changed = 0;

        for (uint32_t c = 0; c < SW__PQ_K; c++) {
            float h = 0;

            for (uint32_t d = 0; d < dsub; d++) {
                const float v = cent[c * dsub + d];

                ct[(size_t)d * SW__PQ_K + c] = v;
                h += v * v;
            }
            half[c] = 0.5f * h;
        }
        for (size_t r = 0; r < n; r++) {
            uint8_t a = (uint8_t)pq_assign(x + r * dsub, ct, half, dsub);

            changed += a != assign[r];
            assign[r] = a;
        }
        memset(sums, 0, (size_t)SW__PQ_K * dsub * sizeof *sums);
        memset(count, 0, SW__PQ_K * sizeof *count);
        for (size_t r = 0; r < n; r++) {
            double *s = sums + (size_t)assign[r] * dsub;

            count[assign[r]]++;
            for (uint32_t d = 0; d < dsub; d++) s[d] += x[r * dsub + d];
        }
        for (uint32_t c = 0; c < SW__PQ_K; c++)
            if (count[c])
                for (uint32_t d = 0; d < dsub; d++)
                    cent[c * dsub + d] = (float)(sums[(size_t)c * dsub + d] / count[c]);
        /* Done when no row moved, or out of iterations.  The last step is
         * always an update, so every used centroid is its rows' mean; a
         * cluster still empty keeps its last place, beside the data. */
        if (it + 1 == PQ_ITERS || (it > 0 && changed == 0)) break;
        /* Empty clusters: each takes half of the largest, pushed apart by
         * a random +-1/1024 of the data's scale in each dimension. */
        for (uint32_t e = 0; e < SW__PQ_K; e++) {
            uint32_t big = 0;

            if (count[e]) continue;
            for (uint32_t c = 1; c < SW__PQ_K; c++)
                if (count[c] > count[big]) big = c;
            for (uint32_t d = 0; d < dsub; d++) {
                float *cb = cent + big * dsub + d;
                const float push =
                    (float)((fabs((double)*cb) + spread + 1e-30) / 1024.0) *
                    ((pq_next(&rng) & 1) ? 1.0f : -1.0f);

                cent[e * dsub + d] = *cb + push;
                *cb -= push;
            }
            count[e] = count[big] / 2;
            count[big] -= count[e];
        }
    }
}

/*
 * L2 squared / -dot / L1 over dsub floats, summed in order: the centroid
 * table (pq_fill_sdc) and nothing on a query's path.  Tables and codes
 * went through it too at first and cost about 2 ns a centroid (8-10 us
 * for a table or an encode at m = 16, dsub = 8 on the EPYC that builds
 * this): dsub is too short a loop to vectorise.  They now read cent_t,
 * the same centroids dimension-major, and score all 256 centroids of a
 * sub-quantizer one dimension at a time, which the compiler turns into
 * full-width vector code (pq_score256).  Each centroid's sum still adds
 * its dimensions in order, so the results are the same floats.
 */
static float pq_sub_dist(int kind, const float *a, const float *b, uint32_t dsub) {
    float s = 0;

    switch (kind) {
    case SW__PQ_L2:
        for (uint32_t d = 0; d < dsub; d++) {
            const float t = a[d] - b[d];
            s += t * t;
        }
        return s;
    case SW__PQ_IP:
        for (uint32_t d = 0; d < dsub; d++) s += a[d] * b[d];
        return -s;
    default:
        for (uint32_t d = 0; d < dsub; d++) s += fabsf(a[d] - b[d]);
        return s;
    }
}

/* out[c] = sub-quantizer share of the distance from x (dsub floats) to
 * centroid c, for all 256 c; ct is that sub-quantizer's block of cent_t
 * (dsub rows of 256).  Dimension d is added to every sum before d + 1, so
 * out[c] == pq_sub_dist(kind, x, centroid c) exactly. */
static void pq_score256(int kind, const float *x, const float *ct, uint32_t dsub,
                        float *restrict out) {
    for (uint32_t c = 0; c < SW__PQ_K; c++) out[c] = 0;
    for (uint32_t d = 0; d < dsub; d++) {
        const float xd = x[d];
        const float *restrict row = ct + (size_t)d * SW__PQ_K;

        switch (kind) {
        case SW__PQ_L2:
            for (uint32_t c = 0; c < SW__PQ_K; c++) {
                const float t = xd - row[c];
                out[c] += t * t;
            }
            break;
        case SW__PQ_IP:
            for (uint32_t c = 0; c < SW__PQ_K; c++) out[c] += xd * row[c];
            break;
        default:
            for (uint32_t c = 0; c < SW__PQ_K; c++) out[c] += fabsf(xd - row[c]);
            break;
        }
    }
    if (kind == SW__PQ_IP)
        for (uint32_t c = 0; c < SW__PQ_K; c++) out[c] = -out[c];
}

static void pq_fill_cent_t(const sw__pq *pq, float *ct) {
    const uint32_t dsub = pq->dsub;

    for (uint32_t j = 0; j < pq->m; j++) {
        const float *cent = pq->cent + (size_t)j * SW__PQ_K * dsub;
        float *t = ct + (size_t)j * dsub * SW__PQ_K;

        for (uint32_t c = 0; c < SW__PQ_K; c++)
            for (uint32_t d = 0; d < dsub; d++) t[(size_t)d * SW__PQ_K + c] = cent[c * dsub + d];
    }
}

static void pq_fill_sdc(const sw__pq *pq, float *sdc) {
    const uint32_t dsub = pq->dsub;

    for (uint32_t j = 0; j < pq->m; j++) {
        const float *cent = pq->cent + (size_t)j * SW__PQ_K * dsub;
        float *t = sdc + (size_t)j * SW__PQ_K * SW__PQ_K;

        for (uint32_t a = 0; a < SW__PQ_K; a++)
            for (uint32_t b = a; b < SW__PQ_K; b++) {
                const float v = pq_sub_dist(pq->kind, cent + a * dsub, cent + b * dsub, dsub);

                t[a * SW__PQ_K + b] = v;
                t[b * SW__PQ_K + a] = v;
            }
    }
}

/* a * b fits in a size_t (a function, not an expression, so a 64-bit
 * build does not warn that a 32-bit count can never overflow it) */
static int pq_fits(size_t a, size_t b) { return b == 0 || a <= SIZE_MAX / b; }

static size_t pq_sdc_bytes(const sw__pq *pq) {
    return (size_t)pq->m * SW__PQ_K * SW__PQ_K * sizeof(float);
}

static size_t pq_cent_bytes(const sw__pq *pq) {
    return (size_t)pq->m * SW__PQ_K * pq->dsub * sizeof(float);
}

sw_status sw__pq_train(sw__mem *mem, sw__pq *pq, uint32_t dim, uint32_t m, int kind,
                       const float *x, size_t n, uint64_t seed, sw__pq_runner runner,
                       void *runner_ctx) {
    sw_status st = SW_OK;
    const size_t ntrain = n < SW__PQ_TRAIN_MAX ? n : SW__PQ_TRAIN_MAX;
    float *xs = NULL;
    unsigned char *scratch = NULL;
    size_t xs_bytes = 0, scratch_bytes = 0, stride;
    pq_job job;

    memset(pq, 0, sizeof *pq);
    if (m == 0 || dim == 0 || dim % m != 0 || n < SW__PQ_K || kind < SW__PQ_L2 ||
        kind > SW__PQ_L1)
        return sw__fail(SW_EINVAL, "PQ training: dim %u, m %u, %zu rows, kind %d", dim, m, n,
                        kind);
    pq->dim = dim;
    pq->m = m;
    pq->dsub = dim / m;
    pq->kind = kind;
    stride = pq_scratch_bytes(pq->dsub, ntrain);
    /* Every size below is at most a multiple of ntrain * dim or m * 256^2,
     * so these two bounds rule out overflow. */
    if (!pq_fits(dim, ntrain * sizeof(float)) || !pq_fits(m, stride) ||
        !pq_fits(m, SW__PQ_K * SW__PQ_K * sizeof(float))) {
        st = sw__fail(SW_ENOMEM, "PQ training: %zu rows of %u dimensions", ntrain, dim);
        goto done;
    }
    xs_bytes = ntrain * dim * sizeof(float);
    scratch_bytes = m * stride;
    xs = sw__alloc(mem, xs_bytes, SW__LINE);
    scratch = sw__alloc(mem, scratch_bytes, SW__LINE);
    pq->cent = sw__alloc(mem, pq_cent_bytes(pq), SW__LINE);
    pq->sdc = sw__alloc(mem, pq_sdc_bytes(pq), SW__LINE);
    pq->cent_t = sw__alloc(mem, pq_cent_bytes(pq), SW__LINE);
    if (!xs || !scratch || !pq->cent || !pq->sdc || !pq->cent_t) {
        st = sw__fail(SW_ENOMEM, "PQ training: %zu bytes of rows and scratch",
                      xs_bytes + scratch_bytes);
        goto done;
    }
    /* Slice-major copy: each task then reads one contiguous block, once an iteration. */
    for (size_t i = 0; i < ntrain; i++) {
        const float *row = x + (size_t)((uint64_t)i * n / ntrain) * dim;

        for (uint32_t j = 0; j < m; j++)
            memcpy(xs + ((size_t)j * ntrain + i) * pq->dsub, row + (size_t)j * pq->dsub,
                   pq->dsub * sizeof(float));
    }
    job.cent = pq->cent;
    job.xs = xs;
    job.ntrain = ntrain;
    job.dsub = pq->dsub;
    job.seed = seed;
    job.scratch = scratch;
    job.stride = stride;
    if (runner)
        runner(runner_ctx, m, pq_train_slice, &job);
    else
        for (uint32_t j = 0; j < m; j++) pq_train_slice(&job, j);
    pq_fill_sdc(pq, pq->sdc);
    pq_fill_cent_t(pq, pq->cent_t);

done:
    sw__free(mem, xs, xs_bytes);
    sw__free(mem, scratch, scratch_bytes);
    if (st != SW_OK) {
        sw__pq_free(mem, pq);
        memset(pq, 0, sizeof *pq);
    }
    return st;
}

void sw__pq_free(sw__mem *mem, sw__pq *pq) {
    sw__free(mem, pq->cent, pq_cent_bytes(pq));
    sw__free(mem, pq->sdc, pq_sdc_bytes(pq));
    sw__free(mem, pq->cent_t, pq_cent_bytes(pq));
    pq->cent = NULL;
    pq->sdc = NULL;
    pq->cent_t = NULL;
}

sw_status sw__pq_build_tables(sw__mem *mem, sw__pq *pq) {
    float *sdc, *ct;

    if (!pq_fits(pq->m, SW__PQ_K * SW__PQ_K * sizeof(float)))
        return sw__fail(SW_ENOMEM, "PQ: a table for %u sub-quantizers", pq->m);
    sdc = sw__alloc(mem, pq_sdc_bytes(pq), SW__LINE);
    ct = sw__alloc(mem, pq_cent_bytes(pq), SW__LINE);
    if (!sdc || !ct) {
        sw__free(mem, sdc, pq_sdc_bytes(pq));
        sw__free(mem, ct, pq_cent_bytes(pq));
        return sw__fail(SW_ENOMEM, "PQ: %zu bytes of centroid tables",
                        pq_sdc_bytes(pq) + pq_cent_bytes(pq));
    }
    pq_fill_sdc(pq, sdc);
    pq_fill_cent_t(pq, ct);
    sw__free(mem, pq->sdc, pq_sdc_bytes(pq));
    sw__free(mem, pq->cent_t, pq_cent_bytes(pq));
    pq->sdc = sdc;
    pq->cent_t = ct;
    return SW_OK;
}

/* ==== Codes and tables ==== */

void sw__pq_encode(const sw__pq *pq, const float *x, uint8_t *code) {
    const uint32_t dsub = pq->dsub;
    float s[SW__PQ_K];

    for (uint32_t j = 0; j < pq->m; j++) {
        float best = INFINITY;
        uint32_t bi = 0;

        pq_score256(SW__PQ_L2, x + (size_t)j * dsub, pq->cent_t + (size_t)j * dsub * SW__PQ_K,
                    dsub, s);
        for (uint32_t c = 0; c < SW__PQ_K; c++)
            if (s[c] < best) {
                best = s[c];
                bi = c;
            }
        code[j] = (uint8_t)bi;
    }
}

void sw__pq_decode(const sw__pq *pq, const uint8_t *code, float *x) {
    const uint32_t dsub = pq->dsub;

    for (uint32_t j = 0; j < pq->m; j++)
        memcpy(x + (size_t)j * dsub, pq->cent + ((size_t)j * SW__PQ_K + code[j]) * dsub,
               dsub * sizeof(float));
}

void sw__pq_lut(const sw__pq *pq, const float *q, float *lut) {
    const uint32_t dsub = pq->dsub;

    for (uint32_t j = 0; j < pq->m; j++)
        pq_score256(pq->kind, q + (size_t)j * dsub, pq->cent_t + (size_t)j * dsub * SW__PQ_K, dsub,
                    lut + (size_t)j * SW__PQ_K);
}

/* ==== Distances over codes ==== */

/* Slice j goes into sum j % 4; the tail (m % 4 slices) into sum 0. */
static inline float pq_adc(const float *t, const uint8_t *c, size_t m) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t j = 0;

    for (; j + 4 <= m; j += 4, t += 4 * SW__PQ_K) {
        s0 += t[c[j]];
        s1 += t[SW__PQ_K + c[j + 1]];
        s2 += t[2 * SW__PQ_K + c[j + 2]];
        s3 += t[3 * SW__PQ_K + c[j + 3]];
    }
    for (; j < m; j++, t += SW__PQ_K) s0 += t[c[j]];
    return (s0 + s1) + (s2 + s3);
}

/* pq_adc on four codes at once, the same operations in the same order per
 * code, so out[i] == pq_adc(lut, codes[i], m) bit for bit. */
static inline void pq_adc4(const float *t, const void *const *codes, size_t m, float *out) {
    const uint8_t *a = codes[0], *b = codes[1], *c = codes[2], *d = codes[3];
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    float c0 = 0, c1 = 0, c2 = 0, c3 = 0, d0 = 0, d1 = 0, d2 = 0, d3 = 0;
    size_t j = 0;

    for (; j + 4 <= m; j += 4, t += 4 * SW__PQ_K) {
        const float *t1 = t + SW__PQ_K, *t2 = t + 2 * SW__PQ_K, *t3 = t + 3 * SW__PQ_K;

        a0 += t[a[j]];
        b0 += t[b[j]];
        c0 += t[c[j]];
        d0 += t[d[j]];
        a1 += t1[a[j + 1]];
        b1 += t1[b[j + 1]];
        c1 += t1[c[j + 1]];
        d1 += t1[d[j + 1]];
        a2 += t2[a[j + 2]];
        b2 += t2[b[j + 2]];
        c2 += t2[c[j + 2]];
        d2 += t2[d[j + 2]];
        a3 += t3[a[j + 3]];
        b3 += t3[b[j + 3]];
        c3 += t3[c[j + 3]];
        d3 += t3[d[j + 3]];
    }
    for (; j < m; j++, t += SW__PQ_K) {
        a0 += t[a[j]];
        b0 += t[b[j]];
        c0 += t[c[j]];
        d0 += t[d[j]];
    }
    out[0] = (a0 + a1) + (a2 + a3);
    out[1] = (b0 + b1) + (b2 + b3);
    out[2] = (c0 + c1) + (c2 + c3);
    out[3] = (d0 + d1) + (d2 + d3);
}

float sw__pq_adc_l2(const void *lut, const void *code, size_t m) { return pq_adc(lut, code, m); }

float sw__pq_adc_ip(const void *lut, const void *code, size_t m) {
    return 1.0f + pq_adc(lut, code, m);
}

void sw__pq_adc4_l2(const void *lut, const void *const *codes, size_t m, float *out) {
    pq_adc4(lut, codes, m, out);
}

void sw__pq_adc4_ip(const void *lut, const void *const *codes, size_t m, float *out) {
    pq_adc4(lut, codes, m, out);
    for (int i = 0; i < 4; i++) out[i] = 1.0f + out[i];
}

float sw__pq_sdc(const sw__pq *pq, const uint8_t *a, const uint8_t *b) {
    const float *t = pq->sdc;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t j = 0, m = pq->m;
    const size_t step = (size_t)SW__PQ_K * SW__PQ_K;

    for (; j + 4 <= m; j += 4, t += 4 * step) {
        s0 += t[a[j] * SW__PQ_K + b[j]];
        s1 += t[step + a[j + 1] * SW__PQ_K + b[j + 1]];
        s2 += t[2 * step + a[j + 2] * SW__PQ_K + b[j + 2]];
        s3 += t[3 * step + a[j + 3] * SW__PQ_K + b[j + 3]];
    }
    for (; j < m; j++, t += step) s0 += t[a[j] * SW__PQ_K + b[j]];
    return pq->kind == SW__PQ_IP ? 1.0f + ((s0 + s1) + (s2 + s3)) : (s0 + s1) + (s2 + s3);
}
