/*
 * test_simd.c — every distance kernel of every level this CPU has, against
 * a reference; the batch form against the single one; half conversions.
 *
 * Float kernels (f32, and f16 widened to float) sum in different orders
 * (one running sum per lane, lanes added at the end), so they agree with
 * the exact value to rounding, not bit for bit.  The reference is double
 * precision on the exact element values (a half widens to float exactly,
 * and a product of two halves is exact in float, so for f16 only the sums
 * and the L2 differences round).  The documented bound: for n terms t_i
 * summed in float,
 *     |computed - exact| <= (n / 8 + 16) * 2^-23 * (sum |t_i| + [IP] 1)
 *                           + (n + 16) * 2^-148
 * (a lane sums at most n/8 terms for the scalar kernel, fewer for the wider
 * ones; the constant covers the final reduction and, for inner product,
 * the rounding of 1 - dot; the last term is gradual underflow, whose
 * absolute error of at most 2^-150 per operation no relative bound covers:
 * products of subnormals round to zero, but a kernel that flushed
 * subnormal inputs to zero would fail the L1 check).  Data: ordinary
 * values, large magnitudes (f32 1e15, whose squares are near 1e30; halves
 * up to 60000), subnormals (f32 1e-40, subnormal halves), and vectors that
 * mix all three.
 *
 * Integer kernels (i8, u8, and packed bits, n counting bytes) are exact:
 * every level must return (float) of the int64 reference, bit for bit, on
 * full-range random bytes and on n = 65536 elements all at an extreme (255
 * against 0, -128 against 127, -128 against -128), where the 32-bit sums
 * reach 65025 n < 2^32 and 2^30.
 *
 * The batch form (one query against four vectors) must be bit-identical to
 * the single kernel of the same level: the index uses both, and a distance
 * must not depend on which one computed it.
 *
 * Everything is checked for every dimension from 1 to 1100 (every tail
 * length of every width), on vectors at odd element offsets from malloc's
 * alignment (+1, +3, +5, +7, +9 elements), each ending exactly at the end
 * of its allocation, so a sanitizer build catches any read past the end.
 * Under ThreadSanitizer, which has nothing to look for in single-threaded
 * kernels and slows them several times over, the sweeps stop at dimension
 * 300 (still every tail length of every width) and the extremes use
 * n = 65536 only.
 *
 * Half conversions: every one of the 65536 halves widens as an independent
 * decoding says and narrows back to itself; narrowing is checked against
 * an independent rounding (via rint) at every halfway point between
 * adjacent halves, at the overflow threshold 65520, on subnormals and
 * signed zeros, and on random floats.
 *
 * The library's own suite runs again under SW_SIMD=scalar and SW_SIMD=avx2
 * (tests/CMakeLists.txt), so the index itself is exercised on every level;
 * the kernels here are reached by name and do not depend on SW_SIMD.
 */
#include "../src/internal.h" /* first: it sets the POSIX feature level */

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sw_test.h"
#include "testutil.h"

enum { MAXD = 1100, NLEVELS = 5, NVEC = 5 /* query + the batch of four */ };

static const char *const levels[NLEVELS] = {"scalar", "neon", "avx2", "avx512", "avx512vnni"};
static const char *const type_names[SW__ET_COUNT] = {"f32", "f16", "i8", "u8", "bits"};
static const char *const kind_names[SW__K_COUNT] = {"l2", "ip", "l1", "hamming"};
static const size_t esize[SW__ET_COUNT] = {4, 2, 1, 1, 1};
/* The sweeps' last dimension (see the comment at the top). */
static size_t max_dim(void)
{
    return SW_TEST_UNDER_TSAN ? 300 : MAXD;
}

/* Element offsets of the query and the four batch vectors. */
static const size_t offsets[NVEC] = {1, 3, 5, 7, 9};

/* The (type, kind) pairs that have kernels; every other pair has none. */
static int pair_exists(sw__etype t, sw__kind k)
{
    switch (t) {
    case SW__ET_F32:
        return k == SW__K_L2 || k == SW__K_IP || k == SW__K_L1;
    case SW__ET_F16:
    case SW__ET_I8:
    case SW__ET_U8:
        return k == SW__K_L2 || k == SW__K_IP;
    case SW__ET_BITS:
        return k == SW__K_HAMMING;
    default:
        return 0;
    }
}

/* A level is there when it has any kernel at all. */
static int level_supported(const char *level)
{
    for (int t = 0; t < SW__ET_COUNT; t++)
        for (int k = 0; k < SW__K_COUNT; k++)
            if (sw__kernel((sw__etype)t, (sw__kind)k, level))
                return 1;
    return 0;
}

/* ---- IEEE half, independently of the library ------------------------ */

static double ref_half_to_double(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    double v;

    if (e == 31)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, -24);
    else
        v = ldexp(m + 1024, e - 25);
    return (h & 0x8000) ? -v : v;
}

static int half_is_nan(uint16_t h)
{
    return (h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0;
}

/* Round to nearest even through rint() on the value scaled to an integer
 * number of half quanta; carries into the exponent and overflow fall out. */
static uint16_t ref_float_to_half(float f)
{
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    double x = fabs((double)f), r;
    int ex, e;

    if (isnan(f))
        return sign | 0x7e00;
    if (isinf(f))
        return sign | 0x7c00;
    if (x < ldexp(1.0, -14)) /* subnormal quantum 2^-24; 1024 quanta is the smallest normal */
        return sign | (uint16_t)rint(ldexp(x, 24));
    (void)frexp(x, &ex);
    e = ex - 1; /* 2^e <= x < 2^(e+1) */
    r = rint(ldexp(x, 10 - e));
    if (r == 2048) {
        r = 1024;
        e++;
    }
    if (e > 15)
        return sign | 0x7c00;
    return sign | (uint16_t)((e + 15) << 10 | ((int)r - 1024));
}

static uint32_t float_bits(float f)
{
    uint32_t u;

    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_float(uint32_t u)
{
    float f;

    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- references ----------------------------------------------------- */

/* ref_half_to_double of every half, filled on first use. */
static double half_table[65536];
static int half_table_ready;

static double elem_double(sw__etype t, const void *p, size_t i)
{
    if (t == SW__ET_F32)
        return ((const float *)p)[i];
    if (!half_table_ready) {
        for (uint32_t h = 0; h < 65536; h++)
            half_table[h] = ref_half_to_double((uint16_t)h);
        half_table_ready = 1;
    }
    return half_table[((const uint16_t *)p)[i]];
}

/* Exact value (to double rounding) and sum of |terms| of a float kernel. */
static double ref_float(sw__etype t, sw__kind k, const void *a, const void *b, size_t n,
                        double *mag)
{
    double s = 0, g = 0;

    for (size_t i = 0; i < n; i++) {
        double x = elem_double(t, a, i), y = elem_double(t, b, i), d = x - y, term;
        if (k == SW__K_L2)
            term = d * d;
        else if (k == SW__K_L1)
            term = fabs(d);
        else
            term = x * y;
        s += term;
        g += fabs(term);
    }
    *mag = g;
    return k == SW__K_IP ? 1.0 - s : s;
}

/* Exact value of an integer kernel, before its conversion to float. */
static int64_t ref_int(sw__etype t, sw__kind k, const void *a, const void *b, size_t n)
{
    const uint8_t *ua = a, *ub = b;
    const int8_t *sa = a, *sb = b;
    int64_t s = 0;

    if (k == SW__K_HAMMING) {
        for (size_t i = 0; i < n; i++)
            for (unsigned x = (unsigned)(ua[i] ^ ub[i]); x; x &= x - 1)
                s++;
    } else if (t == SW__ET_I8) {
        for (size_t i = 0; i < n; i++)
            s += k == SW__K_L2 ? ((int64_t)sa[i] - sb[i]) * ((int64_t)sa[i] - sb[i])
                               : (int64_t)sa[i] * sb[i];
    } else {
        for (size_t i = 0; i < n; i++)
            s += k == SW__K_L2 ? ((int64_t)ua[i] - ub[i]) * ((int64_t)ua[i] - ub[i])
                               : (int64_t)ua[i] * ub[i];
    }
    return k == SW__K_IP ? 1 - s : s;
}

/* ---- the check of one case at every level ---------------------------- */

typedef struct tally {
    int levels_ok[NLEVELS];
    long cases;
    double worst[NLEVELS][SW__ET_COUNT]; /* float types: error / bound */
    size_t worst_n[NLEVELS][SW__ET_COUNT];
    sw__kind worst_k[NLEVELS][SW__ET_COUNT];
    const char *worst_data[NLEVELS][SW__ET_COUNT];
    /* failures per level, type, kind; [0] against the reference, [1] batch */
    long fails[NLEVELS][SW__ET_COUNT][SW__K_COUNT][2];
} tally;

static void tally_init(tally *tl)
{
    memset(tl, 0, sizeof *tl);
    for (int l = 0; l < NLEVELS; l++)
        tl->levels_ok[l] = level_supported(levels[l]);
}

/*
 * Every kernel of type t, every supported level: the single kernel on
 * (q, v[i]) against the reference, and the batch on (q, v) bit for bit
 * against the single one.  The first failure of each (level, type, kind)
 * is reported in full; the rest are counted (see tally_report).
 */
static void check_case(tally *tl, sw__etype t, const void *q, const void *const v[4], size_t n,
                       const char *data)
{
    for (int k = 0; k < SW__K_COUNT; k++) {
        double want[4] = {0}, mag[4] = {0}, bound[4] = {0};
        int64_t exact[4] = {0};

        if (!pair_exists(t, (sw__kind)k))
            continue;
        for (int i = 0; i < 4; i++) {
            if (t == SW__ET_F32 || t == SW__ET_F16) {
                want[i] = ref_float(t, (sw__kind)k, q, v[i], n, &mag[i]);
                bound[i] = ((double)n / 8 + 16) * ldexp(1.0, -23) *
                               (mag[i] + (k == SW__K_IP ? 1.0 : 0.0)) +
                           ((double)n + 16) * ldexp(1.0, -148);
            } else {
                exact[i] = ref_int(t, (sw__kind)k, q, v[i], n);
                want[i] = (double)(float)exact[i];
            }
        }
        tl->cases++;
        for (int l = 0; l < NLEVELS; l++) {
            sw__dist_fn f;
            sw__dist4_fn f4;
            float got[4], out[4];
            long *fails = tl->fails[l][t][k];

            if (!tl->levels_ok[l])
                continue;
            f = sw__kernel(t, (sw__kind)k, levels[l]);
            f4 = sw__kernel4(t, (sw__kind)k, levels[l]);
            if (!f || !f4)
                continue; /* reported by simd_kernel_table */
            for (int i = 0; i < 4; i++) {
                got[i] = f(q, v[i], n);
                if (t == SW__ET_F32 || t == SW__ET_F16) {
                    double err = fabs((double)got[i] - want[i]);
                    if (!(err <= bound[i])) {
                        if (fails[0]++ == 0)
                            sw_test_fail_at(__FILE__, __LINE__,
                                            "%s %s %s, %s data, n %zu, vector %d: got %.9g, "
                                            "want %.17g (error %.3g, bound %.3g)",
                                            levels[l], type_names[t], kind_names[k], data, n, i,
                                            (double)got[i], want[i], err, bound[i]);
                    } else if (mag[i] > 0 && err / bound[i] > tl->worst[l][t]) {
                        tl->worst[l][t] = err / bound[i];
                        tl->worst_n[l][t] = n;
                        tl->worst_k[l][t] = (sw__kind)k;
                        tl->worst_data[l][t] = data;
                    }
                } else if (float_bits(got[i]) != float_bits((float)exact[i])) {
                    if (fails[0]++ == 0)
                        sw_test_fail_at(__FILE__, __LINE__,
                                        "%s %s %s, %s data, n %zu, vector %d: got %.9g, want "
                                        "exactly %.9g (from %lld)",
                                        levels[l], type_names[t], kind_names[k], data, n, i,
                                        (double)got[i], (double)(float)exact[i],
                                        (long long)exact[i]);
                }
            }
            for (int i = 0; i < 4; i++)
                out[i] = -12345.0f; /* every slot must be written */
            f4(q, v, n, out);
            if (memcmp(out, got, sizeof got) != 0 && fails[1]++ == 0)
                sw_test_fail_at(__FILE__, __LINE__,
                                "%s %s %s batch, %s data, n %zu: got {%.9g %.9g %.9g %.9g}, "
                                "single kernel {%.9g %.9g %.9g %.9g}",
                                levels[l], type_names[t], kind_names[k], data, n,
                                (double)out[0], (double)out[1], (double)out[2], (double)out[3],
                                (double)got[0], (double)got[1], (double)got[2], (double)got[3]);
        }
    }
}

/* Counts behind the first-failure messages, and which levels ran. */
static void tally_report(const tally *tl, const char *what)
{
    char buf[128] = "";

    for (int l = 0; l < NLEVELS; l++) {
        for (int t = 0; t < SW__ET_COUNT; t++)
            for (int k = 0; k < SW__K_COUNT; k++)
                for (int b = 0; b < 2; b++)
                    if (tl->fails[l][t][k][b] > 1)
                        sw_test_fail_at(__FILE__, __LINE__, "%s %s %s%s: %ld failing cases in all",
                                        levels[l], type_names[t], kind_names[k],
                                        b ? " batch" : "", tl->fails[l][t][k][b]);
        if (tl->levels_ok[l]) {
            strcat(buf, " ");
            strcat(buf, levels[l]);
        }
    }
    NOTE("%s: %ld cases, each on levels%s", what, tl->cases, buf);
}

/* ---- data ------------------------------------------------------------ */

/* One block per vector, the vector at its offset and ending at the end of
 * the block. */
typedef struct vecs {
    void *block[NVEC];
    void *p[NVEC];
} vecs;

static int vecs_alloc(vecs *vs, sw__etype t, size_t n)
{
    int ok = 1;

    for (int i = 0; i < NVEC; i++) {
        vs->block[i] = malloc((n + offsets[i]) * esize[t]);
        vs->p[i] = vs->block[i] ? (char *)vs->block[i] + offsets[i] * esize[t] : NULL;
        ok &= vs->block[i] != NULL;
    }
    return ok;
}

static void vecs_free(vecs *vs)
{
    for (int i = 0; i < NVEC; i++)
        free(vs->block[i]);
}

static void check_vecs(tally *tl, sw__etype t, const vecs *vs, size_t n, const char *data)
{
    const void *v[4] = {vs->p[1], vs->p[2], vs->p[3], vs->p[4]};

    check_case(tl, t, vs->p[0], v, n, data);
}

/* Data sets of the float tests: scale of a uniform value in [-1, 1), or
 * (mixed) each element at one of the three scales, picked at random. */
enum { NSETS = 4 };
static const char *const set_names[NSETS] = {"ordinary", "large", "subnormal", "mixed"};

static double float_value(tu_rng *r, sw__etype t, int set)
{
    static const double f32_scales[3] = {1.0, 1e15, 1e-40};
    static const double f16_scales[3] = {1.0, 6e4, 6e-5}; /* < 6.1e-5: subnormal halves */
    int s = set == 3 ? (int)tu_rng_below(r, 3) : set;
    double u = 2 * tu_rng_uniform(r) - 1;

    return u * (t == SW__ET_F32 ? f32_scales[s] : f16_scales[s]);
}

static void fill_float(tu_rng *r, sw__etype t, void *p, size_t n, int set)
{
    for (size_t i = 0; i < n; i++) {
        float x = (float)float_value(r, t, set);
        if (t == SW__ET_F32)
            ((float *)p)[i] = x;
        else
            ((uint16_t *)p)[i] = ref_float_to_half(x);
    }
}

static void float_sweep(sw__etype t)
{
    tally *tl = malloc(sizeof *tl);
    tu_rng r;

    REQUIRE(tl != NULL);
    tally_init(tl);
    tu_rng_seed(&r, 77 + (uint64_t)t);
    for (int set = 0; set < NSETS; set++) {
        for (size_t n = 1; n <= max_dim(); n++) {
            vecs vs;
            if (!vecs_alloc(&vs, t, n)) {
                vecs_free(&vs);
                sw_test_fail_at(__FILE__, __LINE__, "out of memory");
                free(tl);
                return;
            }
            for (int i = 0; i < NVEC; i++)
                fill_float(&r, t, vs.p[i], n, set);
            check_vecs(tl, t, &vs, n, set_names[set]);
            vecs_free(&vs);
        }
    }
    for (int l = 0; l < NLEVELS; l++)
        if (tl->levels_ok[l])
            NOTE("%s %s: worst error %.4f of the bound (%s, %s data, n %zu)", type_names[t],
                 levels[l], tl->worst[l][t], kind_names[tl->worst_k[l][t]],
                 tl->worst_data[l][t] ? tl->worst_data[l][t] : "-", tl->worst_n[l][t]);
    tally_report(tl, type_names[t]);
    free(tl);
}

/* Full-range bytes, with the extremes (and their neighbours) often. */
static void fill_bytes(tu_rng *r, sw__etype t, void *p, size_t n)
{
    static const uint8_t u8_edges[] = {0, 1, 127, 128, 254, 255};
    static const int8_t i8_edges[] = {-128, -127, -1, 0, 1, 127};
    uint8_t *b = p;

    for (size_t i = 0; i < n; i++) {
        uint64_t x = tu_rng_next(r);
        if (t != SW__ET_BITS && (x & 7) == 0)
            b[i] = t == SW__ET_U8 ? u8_edges[(x >> 8) % 6] : (uint8_t)i8_edges[(x >> 8) % 6];
        else
            b[i] = (uint8_t)(x >> 32);
    }
}

static void fill_const(sw__etype t, void *p, size_t n, int value)
{
    memset(p, t == SW__ET_I8 ? (int)(uint8_t)(int8_t)value : value, n);
}

/* ---- tests ------------------------------------------------------------ */

/* Every level the CPU has offers exactly the pairs that exist, single and
 * batch; a level it lacks, or an unknown name, offers nothing. */
TEST(simd_kernel_table)
{
    int n_ok = 0;

    CHECK(level_supported("scalar"));
    for (int l = 0; l < NLEVELS; l++) {
        int ok = level_supported(levels[l]);
        n_ok += ok;
        for (int t = 0; t < SW__ET_COUNT; t++)
            for (int k = 0; k < SW__K_COUNT; k++) {
                int want = ok && pair_exists((sw__etype)t, (sw__kind)k);
                int one = sw__kernel((sw__etype)t, (sw__kind)k, levels[l]) != NULL;
                int four = sw__kernel4((sw__etype)t, (sw__kind)k, levels[l]) != NULL;
                if (one != want || four != want)
                    sw_test_fail_at(__FILE__, __LINE__,
                                    "level %s (%s) %s %s: kernel %s, batch %s, want %s",
                                    levels[l], ok ? "supported" : "not supported", type_names[t],
                                    kind_names[k], one ? "present" : "NULL",
                                    four ? "present" : "NULL", want ? "present" : "NULL");
            }
        NOTE("level %s: %s", levels[l], ok ? "supported, tested" : "not on this CPU");
    }
    /* Levels are ordered: each needs the one below (neon only on arm64). */
    if (level_supported("avx512vnni"))
        CHECK(level_supported("avx512"));
    if (level_supported("avx512"))
        CHECK(level_supported("avx2"));
    CHECK(!(level_supported("neon") && level_supported("avx2")));
    CHECK(n_ok >= 1);
    CHECK(sw__kernel(SW__ET_F32, SW__K_L2, "bogus") == NULL);
    CHECK(sw__kernel4(SW__ET_F32, SW__K_L2, "") == NULL);
    /* NULL names the level in use. */
    for (int t = 0; t < SW__ET_COUNT; t++)
        for (int k = 0; k < SW__K_COUNT; k++) {
            CHECK(sw__kernel((sw__etype)t, (sw__kind)k, NULL) ==
                  sw__kernel((sw__etype)t, (sw__kind)k, sw_simd_name()));
            CHECK(sw__kernel4((sw__etype)t, (sw__kind)k, NULL) ==
                  sw__kernel4((sw__etype)t, (sw__kind)k, sw_simd_name()));
        }
}

TEST(simd_f32_kernels_match_reference_every_dimension)
{
    float_sweep(SW__ET_F32);
}

TEST(simd_f16_kernels_match_reference_every_dimension)
{
    float_sweep(SW__ET_F16);
}

TEST(simd_integer_kernels_exact_every_dimension)
{
    static const sw__etype types[] = {SW__ET_I8, SW__ET_U8, SW__ET_BITS};
    tally *tl = malloc(sizeof *tl);
    tu_rng r;

    REQUIRE(tl != NULL);
    tally_init(tl);
    tu_rng_seed(&r, 91);
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        for (size_t n = 1; n <= max_dim(); n++) {
            vecs vs;
            if (!vecs_alloc(&vs, types[ti], n)) {
                vecs_free(&vs);
                free(tl);
                sw_test_fail_at(__FILE__, __LINE__, "out of memory");
                return;
            }
            for (int i = 0; i < NVEC; i++)
                fill_bytes(&r, types[ti], vs.p[i], n);
            check_vecs(tl, types[ti], &vs, n, "random");
            vecs_free(&vs);
        }
    }
    tally_report(tl, "i8, u8, bits (exact)");
    free(tl);
}

/*
 * n = 65536 (and two lengths just short of it, for the tails) with every
 * element at an extreme: the largest squared-L2 sum, 65025 n, needs all 32
 * bits of an unsigned sum, as does the largest u8 dot (the same 65025 n);
 * the largest i8 dot is 16384 n = 2^30.  Packed bits: all bits different.
 * Then the same lengths on random bytes.
 */
TEST(simd_integer_kernels_exact_at_extremes)
{
    static const size_t lens[] = {65536, 65535, 65536 - 37};
    /* q, then v[0..3]: constants; 1000 = random */
    static const struct {
        sw__etype t;
        int q, v[4];
    } pats[] = {
        {SW__ET_U8, 255, {0, 255, 1000, 254}},
        {SW__ET_U8, 0, {255, 0, 1000, 1}},
        {SW__ET_I8, -128, {127, -128, 1000, -127}},
        {SW__ET_I8, 127, {-128, 127, 1000, 0}},
        {SW__ET_I8, -128, {-128, -128, 127, 127}},
        {SW__ET_BITS, 255, {0, 255, 1000, 0x55}},
        {SW__ET_BITS, 0, {255, 0, 1000, 0xaa}},
    };
    tally *tl = malloc(sizeof *tl);
    tu_rng r;

    REQUIRE(tl != NULL);
    tally_init(tl);
    tu_rng_seed(&r, 65536);
    /* only 65536 under ThreadSanitizer, for time */
    for (size_t li = 0; li < (SW_TEST_UNDER_TSAN ? 1 : sizeof lens / sizeof *lens); li++) {
        for (size_t pi = 0; pi < sizeof pats / sizeof *pats; pi++) {
            sw__etype t = pats[pi].t;
            size_t n = lens[li];
            vecs vs;
            char what[64];
            if (!vecs_alloc(&vs, t, n)) {
                vecs_free(&vs);
                free(tl);
                sw_test_fail_at(__FILE__, __LINE__, "out of memory");
                return;
            }
            fill_const(t, vs.p[0], n, pats[pi].q);
            for (int i = 0; i < 4; i++) {
                if (pats[pi].v[i] == 1000)
                    fill_bytes(&r, t, vs.p[i + 1], n);
                else
                    fill_const(t, vs.p[i + 1], n, pats[pi].v[i]);
            }
            snprintf(what, sizeof what, "query all %d, vectors all {%d %d %d %d} (1000 = random)",
                     pats[pi].q, pats[pi].v[0], pats[pi].v[1], pats[pi].v[2], pats[pi].v[3]);
            check_vecs(tl, t, &vs, n, what);
            /* and all five random */
            for (int i = 0; i < NVEC; i++)
                fill_bytes(&r, t, vs.p[i], n);
            check_vecs(tl, t, &vs, n, "random");
            vecs_free(&vs);
        }
    }
    tally_report(tl, "i8, u8, bits at n near 65536");
    free(tl);
}

/* Finite floats whose products overflow to +inf and -inf make a NaN dot
 * product when summed in float; a NaN would break every ordering the
 * search relies on, so the distance must never be NaN (it is +inf for a NaN
 * sum; a kernel with fused multiply-adds may see one infinity first and
 * keep it, so either infinity is accepted).  The batch must agree. */
TEST(simd_f32_ip_overflow_never_nan)
{
    enum { N = 37 };
    float *buf = malloc(NVEC * (N + 1) * sizeof(float));
    const void *v[4];

    REQUIRE(buf != NULL);
    float *q = buf + 1;
    for (int i = 0; i < N; i++)
        q[i] = 3e38f;
    for (int j = 0; j < 4; j++) {
        float *p = buf + (size_t)(j + 1) * (N + 1) + 1;
        for (int i = 0; i < N; i++)
            p[i] = (i + j) % 2 ? 3e38f : -3e38f;
        v[j] = p;
    }
    for (int l = 0; l < NLEVELS; l++) {
        sw__dist_fn f = sw__kernel(SW__ET_F32, SW__K_IP, levels[l]);
        sw__dist4_fn f4 = sw__kernel4(SW__ET_F32, SW__K_IP, levels[l]);
        long n_pos = 0, n_neg = 0;
        float out[4], got[4];
        if (!f || !f4)
            continue;
        for (size_t n = 2; n <= N; n++) {
            f4(q, v, n, out);
            for (int j = 0; j < 4; j++) {
                got[j] = f(q, v[j], n);
                n_pos += got[j] == INFINITY;
                n_neg += got[j] == -INFINITY;
                if (!isinf(got[j]))
                    sw_test_fail_at(__FILE__, __LINE__,
                                    "%s f32 ip, n %zu, vector %d: got %g, want an infinity",
                                    levels[l], n, j, (double)got[j]);
            }
            if (memcmp(out, got, sizeof got) != 0)
                sw_test_fail_at(__FILE__, __LINE__,
                                "%s f32 ip batch, n %zu: got {%g %g %g %g}, single {%g %g %g %g}",
                                levels[l], n, (double)out[0], (double)out[1], (double)out[2],
                                (double)out[3], (double)got[0], (double)got[1], (double)got[2],
                                (double)got[3]);
        }
        NOTE("%s: %ld overflowing cases gave +inf, %ld -inf", levels[l], n_pos, n_neg);
    }
    free(buf);
}

/* Every half widens exactly and narrows back to itself; the widening
 * agrees with an independent decoding. */
TEST(simd_f16_to_f32_every_half)
{
    long bad = 0;

    for (uint32_t h = 0; h < 65536; h++) {
        float f = sw__f16_to_f32((uint16_t)h);
        uint16_t back = sw__f32_to_f16(f);
        double want = ref_half_to_double((uint16_t)h);
        int ok;

        if (half_is_nan((uint16_t)h))
            ok = isnan(f) && half_is_nan(back); /* the quiet bit may be set */
        else
            ok = float_bits(f) == float_bits((float)want) && back == h;
        if (!ok && bad++ < 5)
            sw_test_fail_at(__FILE__, __LINE__,
                            "half 0x%04x: widened to %.9g (0x%08x), want %.9g; back to 0x%04x",
                            (unsigned)h, (double)f, (unsigned)float_bits(f), want,
                            (unsigned)back);
    }
    CHECK(bad == 0);
}

/* Narrowing rounds to nearest even, overflows to inf from 65520 up, keeps
 * subnormal halves and the sign of zero: checked against ref_float_to_half
 * at every halfway point between adjacent halves (and one float either
 * side), at the edges, and on random floats near and far from half range. */
TEST(simd_f32_to_f16_rounding)
{
    long bad = 0, n = 0;
    tu_rng r;
    const float edges[] = {0.0f, -0.0f, 65504.0f, 65519.996f, 65520.0f, 65536.0f,
                           nextafterf(65504.0f, 0.0f), nextafterf(65504.0f, INFINITY),
                           nextafterf(65520.0f, 0.0f), nextafterf(65520.0f, INFINITY),
                           FLT_MAX, INFINITY, ldexpf(1.0f, -14), ldexpf(1.0f, -24),
                           ldexpf(1.0f, -25) /* halfway to the smallest subnormal: to 0 */,
                           nextafterf(ldexpf(1.0f, -25), 1.0f), ldexpf(1.5f, -24),
                           1e-45f, FLT_MIN, 1.0f, 1.00048828125f /* 1 + 2^-11 */,
                           1.00146484375f /* 1 + 3 * 2^-11 */};

#define CHECK_NARROW(x)                                                        \
    do {                                                                       \
        float x_ = (x);                                                        \
        uint16_t got_ = sw__f32_to_f16(x_), want_ = ref_float_to_half(x_);     \
        n++;                                                                   \
        if (got_ != want_ && bad++ < 8)                                        \
            sw_test_fail_at(__FILE__, __LINE__,                                \
                            "f32 %.9g (0x%08x) narrowed to 0x%04x, want 0x%04x", \
                            (double)x_, (unsigned)float_bits(x_), (unsigned)got_, \
                            (unsigned)want_);                                  \
    } while (0)

    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) {
        CHECK_NARROW(edges[i]);
        CHECK_NARROW(-edges[i]);
    }
    /* hand-checked expectations, so the reference is checked too */
    CHECK_EQ_UINT(ref_float_to_half(65519.996f), 0x7bff);
    CHECK_EQ_UINT(ref_float_to_half(65520.0f), 0x7c00);
    CHECK_EQ_UINT(ref_float_to_half(-0.0f), 0x8000);
    CHECK_EQ_UINT(ref_float_to_half(ldexpf(1.0f, -25)), 0x0000);
    CHECK_EQ_UINT(ref_float_to_half(nextafterf(ldexpf(1.0f, -25), 1.0f)), 0x0001);
    CHECK_EQ_UINT(ref_float_to_half(ldexpf(1.5f, -24)), 0x0002);
    CHECK_EQ_UINT(ref_float_to_half(ldexpf(-2.5f, -24)), 0x8002);
    CHECK_EQ_UINT(ref_float_to_half(1.00048828125f), 0x3c00);
    CHECK_EQ_UINT(ref_float_to_half(1.00146484375f), 0x3c02);
    CHECK_EQ_UINT(ref_float_to_half(ldexpf(1.0f, -14)), 0x0400);
    CHECK_EQ_UINT(ref_float_to_half(nextafterf(ldexpf(1.0f, -14), 0.0f)), 0x0400);
    CHECK_EQ_UINT(ref_float_to_half(ldexpf(1023.5f, -24)), 0x0400);
    CHECK_EQ_UINT(ref_float_to_half(65504.0f), 0x7bff);
    CHECK_EQ_UINT(ref_float_to_half(-1e-45f), 0x8000);

    /* Halfway between each pair of adjacent finite halves (0x7bff and the
     * next, 65520, included), and the floats either side of it. */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        double lo = ref_half_to_double((uint16_t)h);
        double hi = h + 1 < 0x7c00 ? ref_half_to_double((uint16_t)(h + 1)) : 65536.0;
        float mid = (float)((lo + hi) / 2); /* exact: 12 significant bits */
        for (int s = 0; s < 2; s++) {
            float m = s ? -mid : mid;
            CHECK_NARROW(m);
            CHECK_NARROW(nextafterf(m, 0.0f));
            CHECK_NARROW(nextafterf(m, s ? -INFINITY : INFINITY));
        }
    }
    /* Random floats: exponents around half range, then any bits at all
     * (a NaN must narrow to a NaN). */
    tu_rng_seed(&r, 1616);
    for (int i = 0; i < 200000; i++) {
        uint32_t u = (uint32_t)tu_rng_next(&r);
        uint32_t e = 127 - 28 + (uint32_t)tu_rng_below(&r, 48); /* 2^-28 .. 2^19 */
        CHECK_NARROW(bits_float((u & 0x807fffffu) | e << 23));
    }
    for (int i = 0; i < 100000; i++) {
        float x = bits_float((uint32_t)tu_rng_next(&r));
        if (isnan(x)) {
            uint16_t h = sw__f32_to_f16(x);
            n++;
            if (!half_is_nan(h) && bad++ < 8)
                sw_test_fail_at(__FILE__, __LINE__, "NaN 0x%08x narrowed to 0x%04x",
                                (unsigned)float_bits(x), (unsigned)h);
        } else {
            CHECK_NARROW(x);
        }
    }
#undef CHECK_NARROW
    if (bad > 8)
        sw_test_fail_at(__FILE__, __LINE__, "%ld of %ld narrowings wrong in all", bad, n);
    NOTE("%ld narrowings checked", n);
}

/* The name reported is one of the levels, and it is one this CPU has. */
TEST(simd_name_is_a_supported_level)
{
    const char *name = sw_simd_name();
    int known = 0;

    CHECK(name != NULL);
    for (size_t i = 0; name && i < NLEVELS; i++)
        if (strcmp(name, levels[i]) == 0)
            known = 1;
    CHECK(known);
    if (name)
        CHECK(sw__kernel(SW__ET_F32, SW__K_L2, name) != NULL);
    NOTE("kernels in use: %s (SW_SIMD=%s)", name ? name : "?",
         getenv("SW_SIMD") ? getenv("SW_SIMD") : "unset");
}
