/*
 * simd.h — distance kernels.  One file per instruction set; this header
 * names them all.  Names follow sw_dist_<metric>_<type>_<isa>.
 */
#ifndef SW_SIMD_H
#define SW_SIMD_H

#include "../internal.h"

SW__HIDDEN float sw_dist_l2_f32_scalar(const float *a, const float *b, size_t dim);
SW__HIDDEN float sw_dist_ip_f32_scalar(const float *a, const float *b, size_t dim);
SW__HIDDEN float sw_dist_l1_f32_scalar(const float *a, const float *b, size_t dim);

#if defined(__x86_64__) || defined(_M_X64)
#define SW__HAVE_X86 1
SW__HIDDEN float sw_dist_l2_f32_avx2(const float *a, const float *b, size_t dim);
SW__HIDDEN float sw_dist_ip_f32_avx2(const float *a, const float *b, size_t dim);
SW__HIDDEN float sw_dist_l1_f32_avx2(const float *a, const float *b, size_t dim);
SW__HIDDEN float sw_dist_l2_f32_avx512(const float *a, const float *b, size_t dim);
SW__HIDDEN float sw_dist_ip_f32_avx512(const float *a, const float *b, size_t dim);
SW__HIDDEN float sw_dist_l1_f32_avx512(const float *a, const float *b, size_t dim);
#endif

#endif
