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
 *
 * Integer kernels sum in 32-bit integers, which is exact: a squared
 * difference of bytes is at most 255^2, so 65536 of them stay below 2^32,
 * and the sum is read as unsigned; a signed byte product is at most 2^14.
 * Half-precision values are widened to float exactly, then summed in float
 * as the float32 kernels do.
 */
#include "simd.h"

#include <math.h>
#include <string.h>

#define LANES 8

static inline float reduce(const float s[LANES]) {
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

/* Finite inputs can overflow to +inf and -inf products whose sum is NaN; a
 * NaN would break every ordering the search relies on, so an inner-product
 * distance that is NaN is reported as +inf, the farthest possible.  L2 and
 * L1 sums of finite inputs never make NaN. */
static inline float ip_distance(float dot) { return dot == dot ? 1.0f - dot : INFINITY; }

/* ---- IEEE half precision ---- */

/* Exponent and mantissa move into place with one shift and the bias with
 * one add; infinities and NaNs get the rest of the float exponent, and
 * subnormals (and zero) are made by subtracting 2^-14 from the normal
 * float 2^-14 * (1 + m/1024), which is exact.  Two rarely taken branches
 * instead of a loop: the scalar half kernels spend their time here. */
static inline float half_to_float(uint16_t h) {
    uint32_t o = (uint32_t)(h & 0x7fffu) << 13, exp = o & (0x7c00u << 13);
    float f;
    o += 112u << 23; /* 127 - 15 */
    if (exp == 0x7c00u << 13) {
        o += 112u << 23; /* infinity or NaN: exponent all ones */
    } else if (exp == 0) {
        o += 1u << 23;
        memcpy(&f, &o, sizeof f);
        f -= 6.103515625e-05f; /* 2^-14 */
        memcpy(&o, &f, sizeof o);
    }
    o |= (uint32_t)(h & 0x8000u) << 16;
    memcpy(&f, &o, sizeof f);
    return f;
}

float sw__f16_to_f32(uint16_t h) { return half_to_float(h); }

uint16_t sw__f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)(x >> 16 & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00u | (uint16_t)((ax >> 13) & 0x1ffu); /* NaN, quiet */
    if (ax >= 0x477ff000u) return sign | 0x7c00u; /* rounds to >= 65520: inf */
    if (ax < 0x38800000u) {                       /* below 2^-14: subnormal half or zero */
        if (ax < 0x33000000u) return sign;        /* below 2^-25: rounds to zero */
        uint32_t e = ax >> 23, man = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t q = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return sign | (uint16_t)q;
    }
    uint32_t q = (ax - 0x38000000u) >> 13, rem = ax & 0x1fffu; /* rebias 127 -> 15 */
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1))) q++;     /* a carry into the exponent is right */
    return sign | (uint16_t)q;
}

/* ---- float32 ---- */

float sw_dist_l2_f32_scalar(const void *va, const void *vb, size_t n) {
    const float *a = va, *b = vb;
    float s[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            float d = a[i + j] - b[i + j];
            s[j] += d * d;
        }
    float t = reduce(s);
    for (; i < n; i++) {
        float d = a[i] - b[i];
        t += d * d;
    }
    return t;
}

float sw_dist_ip_f32_scalar(const void *va, const void *vb, size_t n) {
    const float *a = va, *b = vb;
    float s[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) s[j] += a[i + j] * b[i + j];
    float t = reduce(s);
    for (; i < n; i++) t += a[i] * b[i];
    return ip_distance(t);
}

float sw_dist_l1_f32_scalar(const void *va, const void *vb, size_t n) {
    const float *a = va, *b = vb;
    float s[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) s[j] += fabsf(a[i + j] - b[i + j]);
    float t = reduce(s);
    for (; i < n; i++) t += fabsf(a[i] - b[i]);
    return t;
}

/* ---- float16: widened exactly, summed as float32 ---- */

float sw_dist_l2_f16_scalar(const void *va, const void *vb, size_t n) {
    const uint16_t *a = va, *b = vb;
    float s[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            float d = half_to_float(a[i + j]) - half_to_float(b[i + j]);
            s[j] += d * d;
        }
    float t = reduce(s);
    for (; i < n; i++) {
        float d = half_to_float(a[i]) - half_to_float(b[i]);
        t += d * d;
    }
    return t;
}

float sw_dist_ip_f16_scalar(const void *va, const void *vb, size_t n) {
    const uint16_t *a = va, *b = vb;
    float s[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) s[j] += half_to_float(a[i + j]) * half_to_float(b[i + j]);
    float t = reduce(s);
    for (; i < n; i++) t += half_to_float(a[i]) * half_to_float(b[i]);
    return ip_distance(t);
}

/* ---- int8 and uint8: exact 32-bit sums ---- */

float sw_dist_l2_i8_scalar(const void *va, const void *vb, size_t n) {
    const int8_t *a = va, *b = vb;
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t d = (int32_t)a[i] - b[i];
        s += (uint32_t)(d * d);
    }
    return (float)s;
}

float sw_dist_ip_i8_scalar(const void *va, const void *vb, size_t n) {
    const int8_t *a = va, *b = vb;
    int32_t s = 0;
    for (size_t i = 0; i < n; i++) s += (int32_t)a[i] * b[i];
    return (float)(1 - (int64_t)s);
}

float sw_dist_l2_u8_scalar(const void *va, const void *vb, size_t n) {
    const uint8_t *a = va, *b = vb;
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t d = (int32_t)a[i] - b[i];
        s += (uint32_t)(d * d);
    }
    return (float)s;
}

float sw_dist_ip_u8_scalar(const void *va, const void *vb, size_t n) {
    const uint8_t *a = va, *b = vb;
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++) s += (uint32_t)a[i] * b[i];
    return (float)(1 - (int64_t)s);
}

/* ---- packed bits ---- */

float sw_dist_hamming_b1_scalar(const void *va, const void *vb, size_t n) {
    const uint8_t *a = va, *b = vb;
    uint64_t s = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        s += (uint64_t)__builtin_popcountll(x ^ y);
    }
    for (; i < n; i++) s += (uint64_t)__builtin_popcount((unsigned)(a[i] ^ b[i]));
    return (float)s;
}

/* The scalar batch is four single calls: each call already has eight
 * independent sums, and four calls in a row overlap in the pipeline. */
#define SW__DIST4_SCALAR(kind, type) SW__DIST4_FROM_ONE(kind, type, scalar)
SW__KERNELS(SW__DIST4_SCALAR)
