/*
 * simd.h — the distance kernels, one file per instruction set.
 *
 * Names follow sw_dist_<kind>_<type>_<isa> for one pair of vectors and
 * sw_dist4_<kind>_<type>_<isa> for one query against four.  The contract
 * every kernel keeps is written at sw__dist_fn in internal.h; dispatch.c
 * builds the table the index reads.  SW__KERNELS lists the (kind, type)
 * pairs that have kernels, so each file declares and defines the same set.
 */
#ifndef SW_SIMD_H
#define SW_SIMD_H

#include "../internal.h"

/* X(kind, type) for every kernel that exists. */
#define SW__KERNELS(X) \
    X(l2, f32) X(ip, f32) X(l1, f32) \
    X(l2, f16) X(ip, f16) \
    X(l2, i8) X(ip, i8) \
    X(l2, u8) X(ip, u8) \
    X(hamming, b1)

#define SW__DECLARE(kind, type, isa)                                                        \
    SW__HIDDEN float sw_dist_##kind##_##type##_##isa(const void *a, const void *b, size_t n); \
    SW__HIDDEN void sw_dist4_##kind##_##type##_##isa(const void *q, const void *const *v,     \
                                                     size_t n, float *out);

#define SW__DECLARE_SCALAR(kind, type) SW__DECLARE(kind, type, scalar)
SW__KERNELS(SW__DECLARE_SCALAR)

/* A batch form made of four single calls, for kernels whose native batch
 * was not worth its code (see bench/bench_simd.c). */
#define SW__DIST4_FROM_ONE(kind, type, isa)                                                 \
    void sw_dist4_##kind##_##type##_##isa(const void *q, const void *const *v, size_t n,    \
                                          float *out) {                                     \
        for (int i_ = 0; i_ < 4; i_++) out[i_] = sw_dist_##kind##_##type##_##isa(q, v[i_], n); \
    }

#if defined(__x86_64__) || defined(_M_X64)
#define SW__HAVE_X86 1
#define SW__DECLARE_AVX2(kind, type) SW__DECLARE(kind, type, avx2)
#define SW__DECLARE_AVX512(kind, type) SW__DECLARE(kind, type, avx512)
SW__KERNELS(SW__DECLARE_AVX2)
SW__KERNELS(SW__DECLARE_AVX512)
/* AVX-512 VNNI forms of the integer kernels, and VPOPCNTDQ Hamming. */
SW__DECLARE(l2, i8, vnni)
SW__DECLARE(ip, i8, vnni)
SW__DECLARE(l2, u8, vnni)
SW__DECLARE(ip, u8, vnni)
SW__DECLARE(hamming, b1, vpopcnt)
#endif

#if defined(__aarch64__)
#define SW__HAVE_NEON 1
#define SW__DECLARE_NEON(kind, type) SW__DECLARE(kind, type, neon)
SW__KERNELS(SW__DECLARE_NEON)
#endif

#endif
