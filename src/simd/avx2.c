/*
 * avx2.c — kernels for x86-64 with AVX2, FMA, F16C and POPCNT (Haswell,
 * Zen 1 on).
 *
 * Compiled with per-function target attributes instead of -mavx2 for the
 * file, so the rest of the library keeps the baseline instruction set and
 * one binary runs anywhere; dispatch.c calls these only after CPUID and
 * XGETBV say the CPU and the OS support them.
 *
 * Float kernels keep two accumulators of eight lanes, which hides the FMA
 * latency at the dimensions that matter (64..1536); the float32 tail is one
 * masked load, so no dimension needs padding and no load reads past the end
 * of a vector.  Summation order differs from the scalar reference, so
 * results agree to rounding, not bit for bit (the tests bound the
 * difference); for one level, results are deterministic, and the batch form
 * sums each of its four vectors in exactly the order of the single kernel,
 * so the two give identical bits and the search may use either.
 *
 * Bytes are widened to 16 bits and multiplied pairwise with VPMADDWD into
 * 32-bit sums: exact (see scalar.c), unlike VPMADDUBSW, which saturates.
 * Tails of half and byte vectors go through a small zeroed buffer, since
 * AVX2 has no masked 8- or 16-bit load; a zero pair adds nothing to any of
 * these sums.  Hamming counts bits with a 16-entry nibble table in VPSHUFB,
 * the fastest way without AVX-512's VPOPCNTQ, and POPCNT for the tail.
 */
#include "simd.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define SW_AVX2 __attribute__((target("avx2,fma,f16c,popcnt")))

SW_AVX2 static inline __m256i tail_mask(size_t left) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

SW_AVX2 static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

SW_AVX2 static inline uint32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return (uint32_t)_mm_cvtsi128_si32(s);
}

static inline float ip_distance(float dot) { return dot == dot ? 1.0f - dot : INFINITY; }

/* ---- float32: one step of each kernel, shared by the single and batch forms ---- */

SW_AVX2 static inline __m256 l2_step(__m256 s, __m256 x, __m256 y) {
    __m256 d = _mm256_sub_ps(x, y);
    return _mm256_fmadd_ps(d, d, s);
}
SW_AVX2 static inline __m256 ip_step(__m256 s, __m256 x, __m256 y) {
    return _mm256_fmadd_ps(x, y, s);
}
SW_AVX2 static inline __m256 l1_step(__m256 s, __m256 x, __m256 y) {
    return _mm256_add_ps(s, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(x, y)));
}

/* The single kernel and its batch twin, from one step function.  Blocks of
 * 16 feed s0 and s1, a block of 8 feeds s0, the masked tail feeds s1. */
#define F32_KERNELS(kind, FINISH)                                                          \
    SW_AVX2 float sw_dist_##kind##_f32_avx2(const void *va, const void *vb, size_t n) {     \
        const float *a = va, *b = vb;                                                      \
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();                         \
        size_t i = 0;                                                                      \
        for (; i + 16 <= n; i += 16) {                                                     \
            s0 = kind##_step(s0, _mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));          \
            s1 = kind##_step(s1, _mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));  \
        }                                                                                  \
        for (; i + 8 <= n; i += 8)                                                         \
            s0 = kind##_step(s0, _mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));          \
        if (i < n) {                                                                       \
            __m256i m = tail_mask(n - i);                                                  \
            s1 = kind##_step(s1, _mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m)); \
        }                                                                                  \
        return FINISH(hsum(_mm256_add_ps(s0, s1)));                                        \
    }                                                                                      \
    SW_AVX2 void sw_dist4_##kind##_f32_avx2(const void *vq, const void *const *v, size_t n, \
                                            float *out) {                                  \
        const float *q = vq, *p0 = v[0], *p1 = v[1], *p2 = v[2], *p3 = v[3];               \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                        \
        __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;                                         \
        size_t i = 0;                                                                      \
        for (; i + 16 <= n; i += 16) {                                                     \
            __m256 x = _mm256_loadu_ps(q + i), y = _mm256_loadu_ps(q + i + 8);             \
            a0 = kind##_step(a0, x, _mm256_loadu_ps(p0 + i));                              \
            b0 = kind##_step(b0, y, _mm256_loadu_ps(p0 + i + 8));                          \
            a1 = kind##_step(a1, x, _mm256_loadu_ps(p1 + i));                              \
            b1 = kind##_step(b1, y, _mm256_loadu_ps(p1 + i + 8));                          \
            a2 = kind##_step(a2, x, _mm256_loadu_ps(p2 + i));                              \
            b2 = kind##_step(b2, y, _mm256_loadu_ps(p2 + i + 8));                          \
            a3 = kind##_step(a3, x, _mm256_loadu_ps(p3 + i));                              \
            b3 = kind##_step(b3, y, _mm256_loadu_ps(p3 + i + 8));                          \
        }                                                                                  \
        for (; i + 8 <= n; i += 8) {                                                       \
            __m256 x = _mm256_loadu_ps(q + i);                                             \
            a0 = kind##_step(a0, x, _mm256_loadu_ps(p0 + i));                              \
            a1 = kind##_step(a1, x, _mm256_loadu_ps(p1 + i));                              \
            a2 = kind##_step(a2, x, _mm256_loadu_ps(p2 + i));                              \
            a3 = kind##_step(a3, x, _mm256_loadu_ps(p3 + i));                              \
        }                                                                                  \
        if (i < n) {                                                                       \
            __m256i m = tail_mask(n - i);                                                  \
            __m256 x = _mm256_maskload_ps(q + i, m);                                       \
            b0 = kind##_step(b0, x, _mm256_maskload_ps(p0 + i, m));                        \
            b1 = kind##_step(b1, x, _mm256_maskload_ps(p1 + i, m));                        \
            b2 = kind##_step(b2, x, _mm256_maskload_ps(p2 + i, m));                        \
            b3 = kind##_step(b3, x, _mm256_maskload_ps(p3 + i, m));                        \
        }                                                                                  \
        out[0] = FINISH(hsum(_mm256_add_ps(a0, b0)));                                      \
        out[1] = FINISH(hsum(_mm256_add_ps(a1, b1)));                                      \
        out[2] = FINISH(hsum(_mm256_add_ps(a2, b2)));                                      \
        out[3] = FINISH(hsum(_mm256_add_ps(a3, b3)));                                      \
    }

#define AS_IS(x) (x)
F32_KERNELS(l2, AS_IS)
F32_KERNELS(ip, ip_distance)
F32_KERNELS(l1, AS_IS)

/* ---- float16, widened with F16C ---- */

SW_AVX2 static inline __m256 load_f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

SW_AVX2 static inline __m256 load_f16_tail(const uint16_t *p, size_t left) {
    uint16_t t[8] = {0};
    memcpy(t, p, left * sizeof *p);
    return load_f16(t);
}

#define F16_KERNEL(kind, FINISH)                                                           \
    SW_AVX2 float sw_dist_##kind##_f16_avx2(const void *va, const void *vb, size_t n) {     \
        const uint16_t *a = va, *b = vb;                                                   \
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();                         \
        size_t i = 0;                                                                      \
        for (; i + 16 <= n; i += 16) {                                                     \
            s0 = kind##_step(s0, load_f16(a + i), load_f16(b + i));                        \
            s1 = kind##_step(s1, load_f16(a + i + 8), load_f16(b + i + 8));                \
        }                                                                                  \
        for (; i + 8 <= n; i += 8) s0 = kind##_step(s0, load_f16(a + i), load_f16(b + i)); \
        if (i < n) s1 = kind##_step(s1, load_f16_tail(a + i, n - i), load_f16_tail(b + i, n - i)); \
        return FINISH(hsum(_mm256_add_ps(s0, s1)));                                        \
    }                                                                                      \
    SW__DIST4_FROM_ONE(kind, f16, avx2)

F16_KERNEL(l2, AS_IS)
F16_KERNEL(ip, ip_distance)

/* ---- int8 and uint8, widened to 16 bits, exact 32-bit sums ---- */

SW_AVX2 static inline __m256i widen_i8(const void *p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));
}
SW_AVX2 static inline __m256i widen_u8(const void *p) {
    return _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
}
SW_AVX2 static inline __m256i l2_istep(__m256i s, __m256i x, __m256i y) {
    __m256i d = _mm256_sub_epi16(x, y);
    return _mm256_add_epi32(s, _mm256_madd_epi16(d, d));
}
SW_AVX2 static inline __m256i ip_istep(__m256i s, __m256i x, __m256i y) {
    return _mm256_add_epi32(s, _mm256_madd_epi16(x, y));
}

static inline float l2_ifinish(uint32_t s) { return (float)s; }
static inline float ip_ifinish_i8(uint32_t s) { return (float)(1 - (int64_t)(int32_t)s); }
static inline float ip_ifinish_u8(uint32_t s) { return (float)(1 - (int64_t)s); }

#define INT_KERNEL(kind, type, FINISH)                                                     \
    SW_AVX2 float sw_dist_##kind##_##type##_avx2(const void *va, const void *vb, size_t n) { \
        const uint8_t *a = va, *b = vb;                                                    \
        __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();                  \
        size_t i = 0;                                                                      \
        for (; i + 32 <= n; i += 32) {                                                     \
            s0 = kind##_istep(s0, widen_##type(a + i), widen_##type(b + i));               \
            s1 = kind##_istep(s1, widen_##type(a + i + 16), widen_##type(b + i + 16));     \
        }                                                                                  \
        if (i + 16 <= n) {                                                                 \
            s0 = kind##_istep(s0, widen_##type(a + i), widen_##type(b + i));               \
            i += 16;                                                                       \
        }                                                                                  \
        if (i < n) {                                                                       \
            uint8_t ta[16] = {0}, tb[16] = {0};                                            \
            memcpy(ta, a + i, n - i);                                                      \
            memcpy(tb, b + i, n - i);                                                      \
            s1 = kind##_istep(s1, widen_##type(ta), widen_##type(tb));                     \
        }                                                                                  \
        return FINISH(hsum_epi32(_mm256_add_epi32(s0, s1)));                               \
    }                                                                                      \
    SW__DIST4_FROM_ONE(kind, type, avx2)

INT_KERNEL(l2, i8, l2_ifinish)
INT_KERNEL(ip, i8, ip_ifinish_i8)
INT_KERNEL(l2, u8, l2_ifinish)
INT_KERNEL(ip, u8, ip_ifinish_u8)

/* ---- packed bits ---- */

SW_AVX2 static inline __m256i popcount_bytes(__m256i x) {
    const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                           0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_shuffle_epi8(table, _mm256_and_si256(x, low));
    __m256i hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(x, 4), low));
    return _mm256_add_epi8(lo, hi);
}

SW_AVX2 float sw_dist_hamming_b1_avx2(const void *va, const void *vb, size_t n) {
    const uint8_t *a = va, *b = vb;
    __m256i s = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i x = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(a + i)),
                                     _mm256_loadu_si256((const __m256i *)(b + i)));
        s = _mm256_add_epi64(s, _mm256_sad_epu8(popcount_bytes(x), _mm256_setzero_si256()));
    }
    uint64_t t = (uint64_t)_mm256_extract_epi64(s, 0) + (uint64_t)_mm256_extract_epi64(s, 1) +
                 (uint64_t)_mm256_extract_epi64(s, 2) + (uint64_t)_mm256_extract_epi64(s, 3);
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        t += (uint64_t)_mm_popcnt_u64(x ^ y);
    }
    for (; i < n; i++) t += (uint64_t)_mm_popcnt_u32((unsigned)(a[i] ^ b[i]));
    return (float)t;
}
SW__DIST4_FROM_ONE(hamming, b1, avx2)
#endif
