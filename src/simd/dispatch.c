/*
 * dispatch.c — choosing the distance kernels at run time.
 *
 * The CPU is probed once (pthread_once, so concurrent first calls are safe):
 * CPUID for what the processor has, XGETBV for what the operating system
 * saves on a context switch — an OS that does not enable the YMM or ZMM
 * state makes AVX instructions fault even on a CPU that has them.  Levels
 * are ordered; each needs everything the one below has:
 *
 *   scalar      any CPU
 *   neon        arm64 (always has Advanced SIMD)
 *   avx2        AVX2, FMA, F16C, POPCNT (Haswell, Zen 1 on)
 *   avx512      AVX-512 F, BW and VL (Skylake-SP, Zen 4 on)
 *   avx512vnni  AVX-512 VNNI too (Cascade Lake, Ice Lake, Zen 4); Hamming
 *               uses VPOPCNTDQ where the CPU also has that
 *
 * The best level the CPU allows is used, unless the environment variable
 * SW_SIMD names a lower one; a name above what the CPU has is lowered to
 * what it has, and an unknown name is ignored.  That override is how the
 * test suite runs every kernel on one machine.
 *
 * AVX512-FP16 arithmetic is deliberately not used: it would sum in half
 * precision, whose largest value is 65504, and a squared L2 distance
 * between two ordinary embeddings passes that within a few dozen terms.
 * The half kernels widen to float (one VCVTPH2PS per 16 lanes) and sum in
 * float instead.
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

enum { LEVEL_SCALAR, LEVEL_NEON, LEVEL_AVX2, LEVEL_AVX512, LEVEL_VNNI, LEVEL_COUNT };

static const char *const level_names[LEVEL_COUNT] = {"scalar", "neon", "avx2", "avx512",
                                                     "avx512vnni"};

typedef struct kernel_table {
    sw__dist_fn one[SW__ET_COUNT][SW__K_COUNT];
    sw__dist4_fn four[SW__ET_COUNT][SW__K_COUNT];
} kernel_table;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int supported = LEVEL_SCALAR; /* best level the CPU and OS allow */
static int chosen = LEVEL_SCALAR;
static kernel_table tables[LEVEL_COUNT];

#define ET_f32 SW__ET_F32
#define ET_f16 SW__ET_F16
#define ET_i8 SW__ET_I8
#define ET_u8 SW__ET_U8
#define ET_b1 SW__ET_BITS
#define K_l2 SW__K_L2
#define K_ip SW__K_IP
#define K_l1 SW__K_L1
#define K_hamming SW__K_HAMMING

#define SET(tab, kind, type, isa)                                           \
    do {                                                                    \
        (tab)->one[ET_##type][K_##kind] = sw_dist_##kind##_##type##_##isa;   \
        (tab)->four[ET_##type][K_##kind] = sw_dist4_##kind##_##type##_##isa; \
    } while (0);

#define SET_SCALAR(kind, type) SET(&tables[LEVEL_SCALAR], kind, type, scalar)
#define SET_NEON(kind, type) SET(&tables[LEVEL_NEON], kind, type, neon)
#define SET_AVX2(kind, type) SET(&tables[LEVEL_AVX2], kind, type, avx2)
#define SET_AVX512(kind, type) SET(&tables[LEVEL_AVX512], kind, type, avx512)

#if SW__HAVE_X86
static int have_vpopcntdq;

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

static int detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return LEVEL_SCALAR;
    int fma = (c >> 12) & 1, popcnt = (c >> 23) & 1, osxsave = (c >> 27) & 1,
        avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return LEVEL_SCALAR;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return LEVEL_SCALAR; /* SSE and YMM state */
    if (__get_cpuid_max(0, NULL) < 7) return LEVEL_SCALAR;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1,
        avx512vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
    have_vpopcntdq = (c >> 14) & 1;
    if (!(avx2 && fma && f16c && popcnt)) return LEVEL_SCALAR;
    if (!(avx512f && avx512bw && avx512vl && (xcr0 & 0xe0) == 0xe0)) return LEVEL_AVX2; /* opmask, ZMM state */
    return vnni ? LEVEL_VNNI : LEVEL_AVX512;
}
#elif SW__HAVE_NEON
static int detect(void) { return LEVEL_NEON; }
#else
static int detect(void) { return LEVEL_SCALAR; }
#endif

static void init(void) {
    SW__KERNELS(SET_SCALAR)
#if SW__HAVE_NEON
    SW__KERNELS(SET_NEON)
#endif
#if SW__HAVE_X86
    SW__KERNELS(SET_AVX2)
    SW__KERNELS(SET_AVX512)
    tables[LEVEL_VNNI] = tables[LEVEL_AVX512];
    SET(&tables[LEVEL_VNNI], l2, i8, vnni)
    SET(&tables[LEVEL_VNNI], ip, i8, vnni)
    SET(&tables[LEVEL_VNNI], l2, u8, vnni)
    SET(&tables[LEVEL_VNNI], ip, u8, vnni)
#endif
    supported = detect();
#if SW__HAVE_X86
    if (have_vpopcntdq) SET(&tables[LEVEL_VNNI], hamming, b1, vpopcnt)
#endif
    chosen = supported;
    const char *want = getenv("SW_SIMD");
    if (!want) return;
    for (int l = 0; l < LEVEL_COUNT; l++)
        if (strcmp(want, level_names[l]) == 0 && tables[l].one[SW__ET_F32][SW__K_L2])
            chosen = l < supported ? l : supported;
}

const char *sw_simd_name(void) {
    pthread_once(&once, init);
    return level_names[chosen];
}

static const kernel_table *table_named(const char *level) {
    pthread_once(&once, init);
    if (!level) return &tables[chosen];
    for (int l = 0; l <= supported; l++)
        if (strcmp(level, level_names[l]) == 0)
            return tables[l].one[SW__ET_F32][SW__K_L2] ? &tables[l] : NULL;
    return NULL;
}

sw__dist_fn sw__kernel(sw__etype t, sw__kind k, const char *level) {
    const kernel_table *tab = table_named(level);
    return tab && (unsigned)t < SW__ET_COUNT && (unsigned)k < SW__K_COUNT ? tab->one[t][k] : NULL;
}

sw__dist4_fn sw__kernel4(sw__etype t, sw__kind k, const char *level) {
    const kernel_table *tab = table_named(level);
    return tab && (unsigned)t < SW__ET_COUNT && (unsigned)k < SW__K_COUNT ? tab->four[t][k] : NULL;
}

static sw__kind kind_of(sw_metric metric) {
    return metric == SW_METRIC_L2 ? SW__K_L2 : metric == SW_METRIC_L1 ? SW__K_L1 : SW__K_IP;
}

sw__dist_fn sw__dist_for(sw_metric metric) { return sw__kernel(SW__ET_F32, kind_of(metric), NULL); }

sw__dist4_fn sw__dist4_for(sw_metric metric) {
    return sw__kernel4(SW__ET_F32, kind_of(metric), NULL);
}
