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

#endif
