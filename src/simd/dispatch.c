/*
 * dispatch.c — choosing the distance kernels at run time.
 *
 * The CPU is probed once (pthread_once, so concurrent first calls are safe):
 * CPUID for what the processor has, XGETBV for what the operating system
 * saves on a context switch — an OS that does not enable the YMM or ZMM
 * state makes AVX instructions fault even on a CPU that has them.  The best
 * level both allow is used, unless the environment variable SW_SIMD names a
 * lower one (scalar, avx2, avx512); a name above what the CPU has is
 * lowered to what it has, and an unknown name is ignored.  That override is
 * how the test suite runs every kernel on one machine.
 *
 * A distance is one indirect call through a pointer the index takes from
 * this table at creation (cosine is the inner-product kernel on vectors
 * normalised on the way in, so it needs no kernel of its own).
 */
#include "simd.h"

#include <stdlib.h>
#include <string.h>

#if SW__HAVE_X86
#include <cpuid.h>
#endif

enum { LEVEL_SCALAR, LEVEL_AVX2, LEVEL_AVX512, LEVEL_COUNT };

static const char *const level_names[LEVEL_COUNT] = {"scalar", "avx2", "avx512"};

typedef struct kernels {
    sw__dist_fn l2, ip, l1;
} kernels;

static const kernels table[LEVEL_COUNT] = {
    {sw_dist_l2_f32_scalar, sw_dist_ip_f32_scalar, sw_dist_l1_f32_scalar},
#if SW__HAVE_X86
    {sw_dist_l2_f32_avx2, sw_dist_ip_f32_avx2, sw_dist_l1_f32_avx2},
    {sw_dist_l2_f32_avx512, sw_dist_ip_f32_avx512, sw_dist_l1_f32_avx512},
#else
    {NULL, NULL, NULL},
    {NULL, NULL, NULL},
#endif
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int supported = LEVEL_SCALAR; /* best level the CPU and OS allow */
static int chosen = LEVEL_SCALAR;

#if SW__HAVE_X86
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

static int detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return LEVEL_SCALAR;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return LEVEL_SCALAR;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return LEVEL_SCALAR; /* SSE and YMM state */
    if (__get_cpuid_max(0, NULL) < 7) return LEVEL_SCALAR;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1;
    int level = LEVEL_SCALAR;
    if (avx2 && fma) level = LEVEL_AVX2;
    if (level == LEVEL_AVX2 && avx512f && (xcr0 & 0xe0) == 0xe0) level = LEVEL_AVX512;
    return level;
}
#else
static int detect(void) { return LEVEL_SCALAR; }
#endif

static void init(void) {
    supported = detect();
    chosen = supported;
    const char *want = getenv("SW_SIMD");
    if (!want) return;
    for (int l = 0; l < LEVEL_COUNT; l++)
        if (strcmp(want, level_names[l]) == 0) chosen = l < supported ? l : supported;
}

const char *sw_simd_name(void) {
    pthread_once(&once, init);
    return level_names[chosen];
}

static sw__dist_fn pick(const kernels *k, sw_metric metric) {
    switch (metric) {
    case SW_METRIC_L2:
        return k->l2;
    case SW_METRIC_IP:
    case SW_METRIC_COSINE:
        return k->ip;
    case SW_METRIC_L1:
        return k->l1;
    }
    return NULL;
}

sw__dist_fn sw__dist_for(sw_metric metric) {
    pthread_once(&once, init);
    return pick(&table[chosen], metric);
}

sw__dist_fn sw__dist_kernel(sw_metric metric, const char *level) {
    pthread_once(&once, init);
    for (int l = 0; l <= supported; l++)
        if (strcmp(level, level_names[l]) == 0) return pick(&table[l], metric);
    return NULL;
}
