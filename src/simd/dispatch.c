/*
 * dispatch.c — choosing the distance kernel for an index.
 *
 * A distance is one indirect call through a pointer chosen once per index
 * from the metric.  Cosine is the inner-product kernel applied to vectors
 * normalised on the way in (index.c), so it needs no kernel of its own.
 * This first version has only the portable kernels; the run-time CPU
 * dispatch (CPUID/XGETBV, SW_SIMD override) slots in here without touching
 * callers, since they already go through the pointer.
 */
#include "simd.h"

sw__dist_fn sw__dist_for(sw_metric metric) {
    switch (metric) {
    case SW_METRIC_L2:
        return sw_dist_l2_f32_scalar;
    case SW_METRIC_IP:
    case SW_METRIC_COSINE:
        return sw_dist_ip_f32_scalar;
    case SW_METRIC_L1:
        return sw_dist_l1_f32_scalar;
    }
    return NULL;
}
