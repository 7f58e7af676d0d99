/*
 * neon.c — kernels for arm64 with Advanced SIMD (NEON).
 *
 * Every arm64 CPU has NEON, so this file needs no target attributes and no
 * run-time check: dispatch.c uses it whenever it is compiled (__aarch64__).
 * It keeps to baseline armv8-a.  The dot-product extension (SDOT/UDOT,
 * four byte products into a 32-bit lane per instruction) would take the
 * byte inner products in fewer instructions, but armv8.0 cores (Cortex-A53,
 * A72, the Raspberry Pi 4) lack it and fault on it, and it would need a
 * probe of HWCAP and a level of its own; that is left for later.  Half
 * precision arithmetic (FEAT_FP16) is not used either, for the reason
 * dispatch.c gives for AVX512-FP16: sums of squares leave the half range.
 *
 * Float kernels keep four accumulators of four lanes, which covers the FMA
 * latency of the usual cores (four cycles, two pipes).  Blocks of 16 feed
 * s0..s3, blocks of 4 feed s0, and the last 1..3 elements are loaded lane by
 * lane into a zeroed vector and feed s1, so nothing is read past the end;
 * a zero pair adds nothing to any of these sums.  The accumulators are
 * added as (s0 + s1) + (s2 + s3), then across lanes (FADDP).  That order
 * differs from the scalar reference, so results agree to rounding, not bit
 * for bit; for this level they are deterministic, and the float32 batch
 * form sums each of its four vectors in exactly the order of the single
 * kernel, so the two give identical bits and the search may use either.
 * The batch holds sixteen accumulators and four query registers, within
 * the thirty-two vector registers of arm64.  |a - b| is FABD, one rounding,
 * the same value as fabsf(a - b).
 *
 * Halves are widened exactly with FCVTL/FCVTL2 and summed as floats.
 *
 * Byte kernels are exact.  Squared differences: |a - b| in one instruction
 * (SABD/UABD; for int8 the difference reaches 255, which does not fit a
 * signed byte but does fit the same byte read as unsigned), squared with
 * UMULL into 16 bits (255^2 < 2^16), and pairs of squares added into
 * 32-bit lanes with UADALP.  Inner products: SMULL/UMULL into 16 bits
 * (|-128 * -128| = 2^14 fits a signed half, 255^2 an unsigned one), pairs
 * added into 32-bit lanes with SADALP/UADALP.  Lanes wrap modulo 2^32 like
 * the scalar sums, so the results are the scalar ones bit for bit.  Tails
 * go through a zeroed 16-byte buffer.
 *
 * Hamming counts bits per byte with CNT, adds pairs into 16-bit lanes with
 * UADALP (at most 16 per lane per step, flushed to 64 bits well before a
 * lane could overflow).
 *
 * Batch forms other than float32 are four single calls: the byte and half
 * kernels are limited by arithmetic, not by loading the query.
 */
#include "simd.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>
#include <string.h>

static inline float ip_distance(float dot) { return dot == dot ? 1.0f - dot : INFINITY; }
#define AS_IS(x) (x)

/* ---- float32: one step of each kernel, shared by the single and batch forms ---- */

static inline float32x4_t l2_step(float32x4_t s, float32x4_t x, float32x4_t y) {
    float32x4_t d = vsubq_f32(x, y);
    return vfmaq_f32(s, d, d);
}
static inline float32x4_t ip_step(float32x4_t s, float32x4_t x, float32x4_t y) {
    return vfmaq_f32(s, x, y);
}
static inline float32x4_t l1_step(float32x4_t s, float32x4_t x, float32x4_t y) {
    return vaddq_f32(s, vabdq_f32(x, y));
}

static inline float hsum4(float32x4_t s0, float32x4_t s1, float32x4_t s2, float32x4_t s3) {
    return vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
}

/* The last 1..3 floats, zero-padded to a vector, lane by lane (a memcpy
 * into a buffer would be a call, and a stack frame on every path). */
static inline float32x4_t load_f32_tail(const float *p, size_t left) {
    float32x4_t t = vld1q_lane_f32(p, vdupq_n_f32(0.0f), 0);
    if (left > 1) t = vld1q_lane_f32(p + 1, t, 1);
    if (left > 2) t = vld1q_lane_f32(p + 2, t, 2);
    return t;
}

#define F32_KERNELS(kind, FINISH)                                                          \
    float sw_dist_##kind##_f32_neon(const void *va, const void *vb, size_t n) {            \
        const float *a = va, *b = vb;                                                      \
        float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;                     \
        size_t i = 0;                                                                      \
        for (; i + 16 <= n; i += 16) {                                                     \
            s0 = kind##_step(s0, vld1q_f32(a + i), vld1q_f32(b + i));                      \
            s1 = kind##_step(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));              \
            s2 = kind##_step(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));              \
            s3 = kind##_step(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));            \
        }                                                                                  \
        for (; i + 4 <= n; i += 4) s0 = kind##_step(s0, vld1q_f32(a + i), vld1q_f32(b + i)); \
        if (i < n)                                                                         \
            s1 = kind##_step(s1, load_f32_tail(a + i, n - i), load_f32_tail(b + i, n - i)); \
        return FINISH(hsum4(s0, s1, s2, s3));                                              \
    }                                                                                      \
    void sw_dist4_##kind##_f32_neon(const void *vq, const void *const *v, size_t n,        \
                                    float *out) {                                          \
        const float *q = vq, *p0 = v[0], *p1 = v[1], *p2 = v[2], *p3 = v[3];               \
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0; /* vector 0 */      \
        float32x4_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;                /* vector 1 */      \
        float32x4_t c0 = a0, c1 = a0, c2 = a0, c3 = a0;                /* vector 2 */      \
        float32x4_t d0 = a0, d1 = a0, d2 = a0, d3 = a0;                /* vector 3 */      \
        size_t i = 0;                                                                      \
        for (; i + 16 <= n; i += 16) {                                                     \
            float32x4_t x0 = vld1q_f32(q + i), x1 = vld1q_f32(q + i + 4);                  \
            float32x4_t x2 = vld1q_f32(q + i + 8), x3 = vld1q_f32(q + i + 12);             \
            a0 = kind##_step(a0, x0, vld1q_f32(p0 + i));                                   \
            a1 = kind##_step(a1, x1, vld1q_f32(p0 + i + 4));                               \
            a2 = kind##_step(a2, x2, vld1q_f32(p0 + i + 8));                               \
            a3 = kind##_step(a3, x3, vld1q_f32(p0 + i + 12));                              \
            b0 = kind##_step(b0, x0, vld1q_f32(p1 + i));                                   \
            b1 = kind##_step(b1, x1, vld1q_f32(p1 + i + 4));                               \
            b2 = kind##_step(b2, x2, vld1q_f32(p1 + i + 8));                               \
            b3 = kind##_step(b3, x3, vld1q_f32(p1 + i + 12));                              \
            c0 = kind##_step(c0, x0, vld1q_f32(p2 + i));                                   \
            c1 = kind##_step(c1, x1, vld1q_f32(p2 + i + 4));                               \
            c2 = kind##_step(c2, x2, vld1q_f32(p2 + i + 8));                               \
            c3 = kind##_step(c3, x3, vld1q_f32(p2 + i + 12));                              \
            d0 = kind##_step(d0, x0, vld1q_f32(p3 + i));                                   \
            d1 = kind##_step(d1, x1, vld1q_f32(p3 + i + 4));                               \
            d2 = kind##_step(d2, x2, vld1q_f32(p3 + i + 8));                               \
            d3 = kind##_step(d3, x3, vld1q_f32(p3 + i + 12));                              \
        }                                                                                  \
        for (; i + 4 <= n; i += 4) {                                                       \
            float32x4_t x = vld1q_f32(q + i);                                              \
            a0 = kind##_step(a0, x, vld1q_f32(p0 + i));                                    \
            b0 = kind##_step(b0, x, vld1q_f32(p1 + i));                                    \
            c0 = kind##_step(c0, x, vld1q_f32(p2 + i));                                    \
            d0 = kind##_step(d0, x, vld1q_f32(p3 + i));                                    \
        }                                                                                  \
        if (i < n) {                                                                       \
            float32x4_t x = load_f32_tail(q + i, n - i);                                   \
            a1 = kind##_step(a1, x, load_f32_tail(p0 + i, n - i));                         \
            b1 = kind##_step(b1, x, load_f32_tail(p1 + i, n - i));                         \
            c1 = kind##_step(c1, x, load_f32_tail(p2 + i, n - i));                         \
            d1 = kind##_step(d1, x, load_f32_tail(p3 + i, n - i));                         \
        }                                                                                  \
        out[0] = FINISH(hsum4(a0, a1, a2, a3));                                            \
        out[1] = FINISH(hsum4(b0, b1, b2, b3));                                            \
        out[2] = FINISH(hsum4(c0, c1, c2, c3));                                            \
        out[3] = FINISH(hsum4(d0, d1, d2, d3));                                            \
    }

F32_KERNELS(l2, AS_IS)
F32_KERNELS(ip, ip_distance)
F32_KERNELS(l1, AS_IS)

/* ---- float16, widened with FCVTL ---- */

/* Sixteen halves from p, as four vectors of floats. */
static inline void load_f16x16(const uint16_t *p, float32x4_t x[4]) {
    float16x8_t h0 = vreinterpretq_f16_u16(vld1q_u16(p));
    float16x8_t h1 = vreinterpretq_f16_u16(vld1q_u16(p + 8));
    x[0] = vcvt_f32_f16(vget_low_f16(h0));
    x[1] = vcvt_high_f32_f16(h0);
    x[2] = vcvt_f32_f16(vget_low_f16(h1));
    x[3] = vcvt_high_f32_f16(h1);
}

/* Blocks of 16 halves feed s0..s3; the last 1..15 are zero-padded to one
 * more block. */
#define F16_KERNEL(kind, FINISH)                                                           \
    float sw_dist_##kind##_f16_neon(const void *va, const void *vb, size_t n) {            \
        const uint16_t *a = va, *b = vb;                                                   \
        float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;                     \
        float32x4_t x[4], y[4];                                                            \
        size_t i = 0;                                                                      \
        for (; i + 16 <= n; i += 16) {                                                     \
            load_f16x16(a + i, x);                                                         \
            load_f16x16(b + i, y);                                                         \
            s0 = kind##_step(s0, x[0], y[0]);                                              \
            s1 = kind##_step(s1, x[1], y[1]);                                              \
            s2 = kind##_step(s2, x[2], y[2]);                                              \
            s3 = kind##_step(s3, x[3], y[3]);                                              \
        }                                                                                  \
        if (i < n) {                                                                       \
            uint16_t ta[16] = {0}, tb[16] = {0};                                           \
            memcpy(ta, a + i, (n - i) * sizeof *a);                                        \
            memcpy(tb, b + i, (n - i) * sizeof *b);                                        \
            load_f16x16(ta, x);                                                            \
            load_f16x16(tb, y);                                                            \
            s0 = kind##_step(s0, x[0], y[0]);                                              \
            s1 = kind##_step(s1, x[1], y[1]);                                              \
            s2 = kind##_step(s2, x[2], y[2]);                                              \
            s3 = kind##_step(s3, x[3], y[3]);                                              \
        }                                                                                  \
        return FINISH(hsum4(s0, s1, s2, s3));                                              \
    }                                                                                      \
    SW__DIST4_FROM_ONE(kind, f16, neon)

F16_KERNEL(l2, AS_IS)
F16_KERNEL(ip, ip_distance)

/* ---- int8 and uint8: 16-bit products, exact 32-bit sums ---- */

/* One step of 16 bytes into two accumulators of four 32-bit lanes. */
static inline void l2_i8_step(uint32x4_t *s0, uint32x4_t *s1, const void *pa, const void *pb) {
    uint8x16_t d = vreinterpretq_u8_s8(vabdq_s8(vld1q_s8(pa), vld1q_s8(pb)));
    *s0 = vpadalq_u16(*s0, vmull_u8(vget_low_u8(d), vget_low_u8(d)));
    *s1 = vpadalq_u16(*s1, vmull_high_u8(d, d));
}
static inline void l2_u8_step(uint32x4_t *s0, uint32x4_t *s1, const void *pa, const void *pb) {
    uint8x16_t d = vabdq_u8(vld1q_u8(pa), vld1q_u8(pb));
    *s0 = vpadalq_u16(*s0, vmull_u8(vget_low_u8(d), vget_low_u8(d)));
    *s1 = vpadalq_u16(*s1, vmull_high_u8(d, d));
}
static inline void ip_i8_step(uint32x4_t *s0, uint32x4_t *s1, const void *pa, const void *pb) {
    int8x16_t x = vld1q_s8(pa), y = vld1q_s8(pb);
    *s0 = vreinterpretq_u32_s32(
        vpadalq_s16(vreinterpretq_s32_u32(*s0), vmull_s8(vget_low_s8(x), vget_low_s8(y))));
    *s1 = vreinterpretq_u32_s32(vpadalq_s16(vreinterpretq_s32_u32(*s1), vmull_high_s8(x, y)));
}
static inline void ip_u8_step(uint32x4_t *s0, uint32x4_t *s1, const void *pa, const void *pb) {
    uint8x16_t x = vld1q_u8(pa), y = vld1q_u8(pb);
    *s0 = vpadalq_u16(*s0, vmull_u8(vget_low_u8(x), vget_low_u8(y)));
    *s1 = vpadalq_u16(*s1, vmull_high_u8(x, y));
}

static inline float l2_ifinish(uint32_t s) { return (float)s; }
static inline float ip_ifinish_i8(uint32_t s) { return (float)(1 - (int64_t)(int32_t)s); }
static inline float ip_ifinish_u8(uint32_t s) { return (float)(1 - (int64_t)s); }

/* Blocks of 32 bytes feed s0..s3, a block of 16 feeds s0 and s1, the last
 * 1..15 bytes are zero-padded and feed s2 and s3.  Lanes add modulo 2^32. */
#define INT_KERNEL(kind, type, FINISH)                                                     \
    float sw_dist_##kind##_##type##_neon(const void *va, const void *vb, size_t n) {       \
        const uint8_t *a = va, *b = vb;                                                    \
        uint32x4_t s0 = vdupq_n_u32(0), s1 = s0, s2 = s0, s3 = s0;                         \
        size_t i = 0;                                                                      \
        for (; i + 32 <= n; i += 32) {                                                     \
            kind##_##type##_step(&s0, &s1, a + i, b + i);                                  \
            kind##_##type##_step(&s2, &s3, a + i + 16, b + i + 16);                        \
        }                                                                                  \
        if (i + 16 <= n) {                                                                 \
            kind##_##type##_step(&s0, &s1, a + i, b + i);                                  \
            i += 16;                                                                       \
        }                                                                                  \
        if (i < n) {                                                                       \
            uint8_t ta[16] = {0}, tb[16] = {0};                                            \
            memcpy(ta, a + i, n - i);                                                      \
            memcpy(tb, b + i, n - i);                                                      \
            kind##_##type##_step(&s2, &s3, ta, tb);                                        \
        }                                                                                  \
        return FINISH(vaddvq_u32(vaddq_u32(vaddq_u32(s0, s1), vaddq_u32(s2, s3))));        \
    }                                                                                      \
    SW__DIST4_FROM_ONE(kind, type, neon)

INT_KERNEL(l2, i8, l2_ifinish)
INT_KERNEL(ip, i8, ip_ifinish_i8)
INT_KERNEL(l2, u8, l2_ifinish)
INT_KERNEL(ip, u8, ip_ifinish_u8)

/* ---- packed bits ---- */

static inline uint16x8_t hamming_step(uint16x8_t s, const uint8_t *pa, const uint8_t *pb) {
    return vpadalq_u8(s, vcntq_u8(veorq_u8(vld1q_u8(pa), vld1q_u8(pb))));
}

/* A 16-bit lane gains at most 16 per step; flushing every 1024 blocks of 32
 * bytes (at most 16384 per lane) keeps it far from 65535. */
float sw_dist_hamming_b1_neon(const void *va, const void *vb, size_t n) {
    const uint8_t *a = va, *b = vb;
    uint64x2_t t = vdupq_n_u64(0);
    size_t i = 0;
    while (i + 32 <= n) {
        uint16x8_t s0 = vdupq_n_u16(0), s1 = s0;
        size_t end = n - i > 1024 * 32 ? i + 1024 * 32 : n;
        for (; i + 32 <= end; i += 32) {
            s0 = hamming_step(s0, a + i, b + i);
            s1 = hamming_step(s1, a + i + 16, b + i + 16);
        }
        t = vpadalq_u32(t, vpaddlq_u16(vaddq_u16(s0, s1)));
    }
    uint16x8_t s = vdupq_n_u16(0);
    if (i + 16 <= n) {
        s = hamming_step(s, a + i, b + i);
        i += 16;
    }
    if (i < n) {
        uint8_t ta[16] = {0}, tb[16] = {0};
        memcpy(ta, a + i, n - i);
        memcpy(tb, b + i, n - i);
        s = hamming_step(s, ta, tb);
    }
    t = vpadalq_u32(t, vpaddlq_u16(s));
    return (float)vaddvq_u64(t);
}
SW__DIST4_FROM_ONE(hamming, b1, neon)
#endif
