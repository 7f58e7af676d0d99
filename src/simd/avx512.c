/*
 * avx512.c — kernels for x86-64 with AVX-512 F, BW and VL (Skylake-SP,
 * Zen 4 on), and the VNNI and VPOPCNTDQ forms for CPUs that have those.
 *
 * As avx2.c, with sixteen float lanes, and every tail one zero-masked load
 * (a masked-off lane is never read, so nothing past the vector is touched).
 * The batch form of the float32 kernels sums each vector in the order of
 * the single kernel, so both give identical bits.  Compiled with target
 * attributes; dispatch.c calls these only when CPUID shows the features
 * and XCR0 shows the OS saves the opmask and ZMM state.
 *
 * VNNI's VPDPBUSD multiplies unsigned by signed bytes and adds four
 * products into each 32-bit lane, 64 bytes per instruction without
 * widening.  Inner products of two signed or two unsigned vectors are
 * moved into that form by flipping the top bit of one side, which adds 128
 * to (or subtracts 128 from) each of its bytes, and taking the surplus back
 * out with a second sum:  a.b = (a + 128).b - 128 sum(b)  for int8, and
 * a.b = a.(b - 128) + 128 sum(a)  for uint8.  Every step wraps modulo 2^32
 * and the true value fits, so the result is exact.  Squared differences do
 * not fit a byte multiplier (|a - b| reaches 255 on the signed side), so L2
 * widens to 16 bits and uses VPDPWSSD, one instruction for multiply and add.
 */
#include "simd.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <math.h>

#define SW_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define SW_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define SW_VPOPCNT __attribute__((target("avx512f,avx512bw,avx512vl,avx512vpopcntdq")))

static inline float ip_distance(float dot) { return dot == dot ? 1.0f - dot : INFINITY; }
#define AS_IS(x) (x)

/* Sum of sixteen 32-bit lanes, wrapping (the intrinsics add modulo 2^32). */
SW_AVX512 static inline uint32_t hsum_epi32(__m512i v) {
    __m256i s = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    return (uint32_t)_mm_cvtsi128_si32(t);
}

SW_AVX512 static inline uint64_t hsum_epi64(__m512i v) {
    __m256i s = _mm256_add_epi64(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    return (uint64_t)_mm_cvtsi128_si64(t) + (uint64_t)_mm_extract_epi64(t, 1);
}

/* ---- float32 ---- */

SW_AVX512 static inline __m512 l2_step(__m512 s, __m512 x, __m512 y) {
    __m512 d = _mm512_sub_ps(x, y);
    return _mm512_fmadd_ps(d, d, s);
}
SW_AVX512 static inline __m512 ip_step(__m512 s, __m512 x, __m512 y) {
    return _mm512_fmadd_ps(x, y, s);
}
SW_AVX512 static inline __m512 l1_step(__m512 s, __m512 x, __m512 y) {
    __m512i d = _mm512_castps_si512(_mm512_sub_ps(x, y));
    return _mm512_add_ps(s, _mm512_castsi512_ps(_mm512_and_si512(d, _mm512_set1_epi32(0x7fffffff))));
}

/* Blocks of 32 feed s0 and s1, a block of 16 feeds s0, the tail feeds s1. */
#define F32_KERNELS(kind, FINISH)                                                           \
    SW_AVX512 float sw_dist_##kind##_f32_avx512(const void *va, const void *vb, size_t n) {  \
        const float *a = va, *b = vb;                                                       \
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();                          \
        size_t i = 0;                                                                       \
        for (; i + 32 <= n; i += 32) {                                                      \
            s0 = kind##_step(s0, _mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));           \
            s1 = kind##_step(s1, _mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16)); \
        }                                                                                   \
        for (; i + 16 <= n; i += 16)                                                        \
            s0 = kind##_step(s0, _mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));           \
        if (i < n) {                                                                        \
            __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);                                \
            s1 = kind##_step(s1, _mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)); \
        }                                                                                   \
        return FINISH(_mm512_reduce_add_ps(_mm512_add_ps(s0, s1)));                         \
    }                                                                                       \
    SW_AVX512 void sw_dist4_##kind##_f32_avx512(const void *vq, const void *const *v,       \
                                                size_t n, float *out) {                     \
        const float *q = vq, *p0 = v[0], *p1 = v[1], *p2 = v[2], *p3 = v[3];                \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                         \
        __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;                                          \
        size_t i = 0;                                                                       \
        for (; i + 32 <= n; i += 32) {                                                      \
            __m512 x = _mm512_loadu_ps(q + i), y = _mm512_loadu_ps(q + i + 16);             \
            a0 = kind##_step(a0, x, _mm512_loadu_ps(p0 + i));                               \
            b0 = kind##_step(b0, y, _mm512_loadu_ps(p0 + i + 16));                          \
            a1 = kind##_step(a1, x, _mm512_loadu_ps(p1 + i));                               \
            b1 = kind##_step(b1, y, _mm512_loadu_ps(p1 + i + 16));                          \
            a2 = kind##_step(a2, x, _mm512_loadu_ps(p2 + i));                               \
            b2 = kind##_step(b2, y, _mm512_loadu_ps(p2 + i + 16));                          \
            a3 = kind##_step(a3, x, _mm512_loadu_ps(p3 + i));                               \
            b3 = kind##_step(b3, y, _mm512_loadu_ps(p3 + i + 16));                          \
        }                                                                                   \
        for (; i + 16 <= n; i += 16) {                                                      \
            __m512 x = _mm512_loadu_ps(q + i);                                              \
            a0 = kind##_step(a0, x, _mm512_loadu_ps(p0 + i));                               \
            a1 = kind##_step(a1, x, _mm512_loadu_ps(p1 + i));                               \
            a2 = kind##_step(a2, x, _mm512_loadu_ps(p2 + i));                               \
            a3 = kind##_step(a3, x, _mm512_loadu_ps(p3 + i));                               \
        }                                                                                   \
        if (i < n) {                                                                        \
            __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);                                \
            __m512 x = _mm512_maskz_loadu_ps(m, q + i);                                     \
            b0 = kind##_step(b0, x, _mm512_maskz_loadu_ps(m, p0 + i));                      \
            b1 = kind##_step(b1, x, _mm512_maskz_loadu_ps(m, p1 + i));                      \
            b2 = kind##_step(b2, x, _mm512_maskz_loadu_ps(m, p2 + i));                      \
            b3 = kind##_step(b3, x, _mm512_maskz_loadu_ps(m, p3 + i));                      \
        }                                                                                   \
        out[0] = FINISH(_mm512_reduce_add_ps(_mm512_add_ps(a0, b0)));                       \
        out[1] = FINISH(_mm512_reduce_add_ps(_mm512_add_ps(a1, b1)));                       \
        out[2] = FINISH(_mm512_reduce_add_ps(_mm512_add_ps(a2, b2)));                       \
        out[3] = FINISH(_mm512_reduce_add_ps(_mm512_add_ps(a3, b3)));                       \
    }

F32_KERNELS(l2, AS_IS)
F32_KERNELS(ip, ip_distance)
F32_KERNELS(l1, AS_IS)

/* ---- float16, widened with VCVTPH2PS ---- */

SW_AVX512 static inline __m512 load_f16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

#define F16_KERNEL(kind, FINISH)                                                            \
    SW_AVX512 float sw_dist_##kind##_f16_avx512(const void *va, const void *vb, size_t n) {  \
        const uint16_t *a = va, *b = vb;                                                    \
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();                          \
        size_t i = 0;                                                                       \
        for (; i + 32 <= n; i += 32) {                                                      \
            s0 = kind##_step(s0, load_f16(a + i), load_f16(b + i));                         \
            s1 = kind##_step(s1, load_f16(a + i + 16), load_f16(b + i + 16));               \
        }                                                                                   \
        for (; i + 16 <= n; i += 16) s0 = kind##_step(s0, load_f16(a + i), load_f16(b + i)); \
        if (i < n) {                                                                        \
            __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);                                \
            s1 = kind##_step(s1, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, a + i)),       \
                             _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, b + i)));          \
        }                                                                                   \
        return FINISH(_mm512_reduce_add_ps(_mm512_add_ps(s0, s1)));                         \
    }                                                                                       \
    SW__DIST4_FROM_ONE(kind, f16, avx512)

F16_KERNEL(l2, AS_IS)
F16_KERNEL(ip, ip_distance)

/* ---- int8 and uint8, widened to 16 bits (VPMADDWD) ---- */

SW_AVX512 static inline __m512i widen_i8(__m256i x) { return _mm512_cvtepi8_epi16(x); }
SW_AVX512 static inline __m512i widen_u8(__m256i x) { return _mm512_cvtepu8_epi16(x); }
SW_AVX512 static inline __m512i l2_istep(__m512i s, __m512i x, __m512i y) {
    __m512i d = _mm512_sub_epi16(x, y);
    return _mm512_add_epi32(s, _mm512_madd_epi16(d, d));
}
SW_AVX512 static inline __m512i ip_istep(__m512i s, __m512i x, __m512i y) {
    return _mm512_add_epi32(s, _mm512_madd_epi16(x, y));
}
SW_VNNI static inline __m512i l2_vstep(__m512i s, __m512i x, __m512i y) {
    __m512i d = _mm512_sub_epi16(x, y);
    return _mm512_dpwssd_epi32(s, d, d);
}

static inline float l2_ifinish(uint32_t s) { return (float)s; }
static inline float ip_ifinish_i8(uint32_t s) { return (float)(1 - (int64_t)(int32_t)s); }
static inline float ip_ifinish_u8(uint32_t s) { return (float)(1 - (int64_t)s); }

#define LOAD32(p) _mm256_loadu_si256((const __m256i *)(p))

/* Blocks of 64 bytes feed s0 and s1, a block of 32 feeds s0, the tail s1. */
#define INT_KERNEL(kind, type, isa, ATTR, STEP, FINISH)                                     \
    ATTR float sw_dist_##kind##_##type##_##isa(const void *va, const void *vb, size_t n) {  \
        const uint8_t *a = va, *b = vb;                                                     \
        __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();                   \
        size_t i = 0;                                                                       \
        for (; i + 64 <= n; i += 64) {                                                      \
            s0 = STEP(s0, widen_##type(LOAD32(a + i)), widen_##type(LOAD32(b + i)));        \
            s1 = STEP(s1, widen_##type(LOAD32(a + i + 32)), widen_##type(LOAD32(b + i + 32))); \
        }                                                                                   \
        if (i + 32 <= n) {                                                                  \
            s0 = STEP(s0, widen_##type(LOAD32(a + i)), widen_##type(LOAD32(b + i)));        \
            i += 32;                                                                        \
        }                                                                                   \
        if (i < n) {                                                                        \
            __mmask32 m = (__mmask32)((1u << (n - i)) - 1u);                                \
            s1 = STEP(s1, widen_##type(_mm256_maskz_loadu_epi8(m, a + i)),                  \
                      widen_##type(_mm256_maskz_loadu_epi8(m, b + i)));                     \
        }                                                                                   \
        return FINISH(hsum_epi32(_mm512_add_epi32(s0, s1)));                                \
    }                                                                                       \
    SW__DIST4_FROM_ONE(kind, type, isa)

INT_KERNEL(l2, i8, avx512, SW_AVX512, l2_istep, l2_ifinish)
INT_KERNEL(ip, i8, avx512, SW_AVX512, ip_istep, ip_ifinish_i8)
INT_KERNEL(l2, u8, avx512, SW_AVX512, l2_istep, l2_ifinish)
INT_KERNEL(ip, u8, avx512, SW_AVX512, ip_istep, ip_ifinish_u8)
INT_KERNEL(l2, i8, vnni, SW_VNNI, l2_vstep, l2_ifinish)
INT_KERNEL(l2, u8, vnni, SW_VNNI, l2_vstep, l2_ifinish)

/* Inner products with VPDPBUSD, 64 bytes per step; see the top of the file. */
#define LOAD64(p) _mm512_loadu_si512((const void *)(p))

/* Full blocks use plain loads: a masked load whose mask the compiler cannot
 * prove all-ones streams from memory at about two thirds of the speed
 * (measured with bench/bench_simd.c), so only the tail is masked. */
static inline __mmask64 byte_mask(size_t left) {
    return left >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << left) - 1;
}

SW_VNNI static inline void ip_i8_step(__m512i *s, __m512i *t, __m512i x, __m512i y) {
    const __m512i flip = _mm512_set1_epi8((char)0x80), ones = _mm512_set1_epi8(1);
    *s = _mm512_dpbusd_epi32(*s, _mm512_xor_si512(x, flip), y); /* (a + 128).b */
    *t = _mm512_dpbusd_epi32(*t, ones, y);                      /* sum(b) */
}

SW_VNNI float sw_dist_ip_i8_vnni(const void *va, const void *vb, size_t n) {
    const uint8_t *a = va, *b = vb;
    __m512i s0 = _mm512_setzero_si512(), t0 = s0, s1 = s0, t1 = s0;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        ip_i8_step(&s0, &t0, LOAD64(a + i), LOAD64(b + i));
        ip_i8_step(&s1, &t1, LOAD64(a + i + 64), LOAD64(b + i + 64));
    }
    if (i + 64 <= n) {
        ip_i8_step(&s0, &t0, LOAD64(a + i), LOAD64(b + i));
        i += 64;
    }
    if (i < n) {
        __mmask64 m = byte_mask(n - i);
        ip_i8_step(&s1, &t1, _mm512_maskz_loadu_epi8(m, a + i), _mm512_maskz_loadu_epi8(m, b + i));
    }
    uint32_t dot = hsum_epi32(_mm512_add_epi32(s0, s1)) - 128u * hsum_epi32(_mm512_add_epi32(t0, t1));
    return ip_ifinish_i8(dot);
}

SW_VNNI static inline void ip_u8_step(__m512i *s, __m512i *t, __m512i x, __m512i y) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    *s = _mm512_dpbusd_epi32(*s, x, _mm512_xor_si512(y, flip));           /* a.(b - 128) */
    *t = _mm512_add_epi64(*t, _mm512_sad_epu8(x, _mm512_setzero_si512())); /* sum(a) */
}

SW_VNNI float sw_dist_ip_u8_vnni(const void *va, const void *vb, size_t n) {
    const uint8_t *a = va, *b = vb;
    __m512i s0 = _mm512_setzero_si512(), t0 = s0, s1 = s0, t1 = s0;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        ip_u8_step(&s0, &t0, LOAD64(a + i), LOAD64(b + i));
        ip_u8_step(&s1, &t1, LOAD64(a + i + 64), LOAD64(b + i + 64));
    }
    if (i + 64 <= n) {
        ip_u8_step(&s0, &t0, LOAD64(a + i), LOAD64(b + i));
        i += 64;
    }
    if (i < n) {
        __mmask64 m = byte_mask(n - i);
        ip_u8_step(&s1, &t1, _mm512_maskz_loadu_epi8(m, a + i), _mm512_maskz_loadu_epi8(m, b + i));
    }
    uint32_t dot = hsum_epi32(_mm512_add_epi32(s0, s1)) +
                   128u * (uint32_t)hsum_epi64(_mm512_add_epi64(t0, t1));
    return ip_ifinish_u8(dot);
}
SW__DIST4_FROM_ONE(ip, i8, vnni)
SW__DIST4_FROM_ONE(ip, u8, vnni)

/* ---- packed bits ---- */

SW_AVX512 static inline __m512i popcount_bytes(__m512i x) {
    const __m512i table = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
    const __m512i low = _mm512_set1_epi8(0x0f);
    __m512i lo = _mm512_shuffle_epi8(table, _mm512_and_si512(x, low));
    __m512i hi = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(x, 4), low));
    return _mm512_add_epi8(lo, hi);
}

SW_AVX512 float sw_dist_hamming_b1_avx512(const void *va, const void *vb, size_t n) {
    if (n < 64) return sw_dist_hamming_b1_avx2(va, vb, n); /* POPCNT on words wins there */
    const uint8_t *a = va, *b = vb;
    __m512i s = _mm512_setzero_si512(), u = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        __m512i x = _mm512_xor_si512(LOAD64(a + i), LOAD64(b + i));
        __m512i y = _mm512_xor_si512(LOAD64(a + i + 64), LOAD64(b + i + 64));
        s = _mm512_add_epi64(s, _mm512_sad_epu8(popcount_bytes(x), _mm512_setzero_si512()));
        u = _mm512_add_epi64(u, _mm512_sad_epu8(popcount_bytes(y), _mm512_setzero_si512()));
    }
    if (i + 64 <= n) {
        __m512i x = _mm512_xor_si512(LOAD64(a + i), LOAD64(b + i));
        s = _mm512_add_epi64(s, _mm512_sad_epu8(popcount_bytes(x), _mm512_setzero_si512()));
        i += 64;
    }
    if (i < n) {
        __mmask64 m = byte_mask(n - i);
        __m512i x = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, a + i), _mm512_maskz_loadu_epi8(m, b + i));
        u = _mm512_add_epi64(u, _mm512_sad_epu8(popcount_bytes(x), _mm512_setzero_si512()));
    }
    s = _mm512_add_epi64(s, u);
    return (float)hsum_epi64(s);
}
SW__DIST4_FROM_ONE(hamming, b1, avx512)

SW_VPOPCNT float sw_dist_hamming_b1_vpopcnt(const void *va, const void *vb, size_t n) {
    if (n < 64) return sw_dist_hamming_b1_avx2(va, vb, n); /* POPCNT on words wins there */
    const uint8_t *a = va, *b = vb;
    __m512i s = _mm512_setzero_si512(), u = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        __m512i x = _mm512_xor_si512(LOAD64(a + i), LOAD64(b + i));
        __m512i y = _mm512_xor_si512(LOAD64(a + i + 64), LOAD64(b + i + 64));
        s = _mm512_add_epi64(s, _mm512_popcnt_epi64(x));
        u = _mm512_add_epi64(u, _mm512_popcnt_epi64(y));
    }
    if (i + 64 <= n) {
        __m512i x = _mm512_xor_si512(LOAD64(a + i), LOAD64(b + i));
        s = _mm512_add_epi64(s, _mm512_popcnt_epi64(x));
        i += 64;
    }
    if (i < n) {
        __mmask64 m = byte_mask(n - i);
        __m512i x = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, a + i), _mm512_maskz_loadu_epi8(m, b + i));
        u = _mm512_add_epi64(u, _mm512_popcnt_epi64(x));
    }
    s = _mm512_add_epi64(s, u);
    return (float)hsum_epi64(s);
}
SW__DIST4_FROM_ONE(hamming, b1, vpopcnt)
#endif
