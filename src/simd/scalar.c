/*
 * scalar.c — portable reference kernels.
 *
 * These are the reference every faster kernel is tested against, and the
 * fallback on CPUs with nothing better.  They still try to be quick: eight
 * independent accumulators break the dependency chain of a single running
 * sum, and give the compiler a fixed-width block it vectorises with the
 * baseline instruction set (SSE2 on x86-64, NEON on arm64) without
 * -ffast-math.  The order of additions is fixed, so results are identical
 * run to run (the determinism promise depends on it).
 */
#include "simd.h"

#include <math.h>

#define LANES 8

static inline float reduce(const float s[LANES]) {
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

float sw_dist_l2_f32_scalar(const float *a, const float *b, size_t dim) {
    float s[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= dim; i += LANES)
        for (int j = 0; j < LANES; j++) {
            float d = a[i + j] - b[i + j];
            s[j] += d * d;
        }
    float t = reduce(s);
    for (; i < dim; i++) {
        float d = a[i] - b[i];
        t += d * d;
    }
    return t;
}

/* Reported as 1 - dot, as hnswlib does, so that smaller is nearer.  Finite
 * inputs can still overflow to +inf and -inf products whose sum is NaN; a
 * NaN would break every ordering the search relies on, so it is reported as
 * +inf, the farthest possible.  L2 and L1 sums of finite inputs never make NaN. */
float sw_dist_ip_f32_scalar(const float *a, const float *b, size_t dim) {
    float s[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= dim; i += LANES)
        for (int j = 0; j < LANES; j++) s[j] += a[i + j] * b[i + j];
    float t = reduce(s);
    for (; i < dim; i++) t += a[i] * b[i];
    return t == t ? 1.0f - t : INFINITY;
}

float sw_dist_l1_f32_scalar(const float *a, const float *b, size_t dim) {
    float s[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= dim; i += LANES)
        for (int j = 0; j < LANES; j++) s[j] += fabsf(a[i + j] - b[i + j]);
    float t = reduce(s);
    for (; i < dim; i++) t += fabsf(a[i] - b[i]);
    return t;
}
