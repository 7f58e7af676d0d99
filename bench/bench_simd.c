/*
 * bench_simd.c — sw_bench_simd, nanoseconds per distance for every kernel.
 *
 * What it measures, and why it is measured this way.
 *
 * A search spends most of its time in the distance kernel, so the kernel is
 * worth timing on its own, away from the graph: how many nanoseconds one
 * distance costs for each element type, each metric and each instruction-set
 * level this CPU has, and whether the batch form (one query against four
 * vectors) earns its code.  Two regimes matter and they answer different
 * questions, so each gets its own tables:
 *
 *   - In cache.  One query against a small set of vectors, passed over again
 *     and again.  This is the arithmetic speed of a kernel, the figure a
 *     faster instruction set should improve, and the only one in which the
 *     levels can be compared fairly.  The set holds up to 32 vectors but no
 *     more than fit in 32 KiB together with the query (--cache-kib), so it
 *     stays in L1 on any current core: at d = 1536 float32 that is 4
 *     vectors.  A fixed 32 vectors would put the large dimensions in L2 and
 *     time the L2 instead of the kernel (the batch form, reading four
 *     vectors at once, then loses to the single one; --cache-kib 512 shows
 *     that).  The vectors sit at a stride rounded up to a cache line, as the
 *     index stores them (a vector starts every record).
 *   - Streaming.  One query against every vector of a buffer far larger than
 *     the last-level cache (1 GiB per element type unless --mem-mib says
 *     otherwise), in order.  Here a good kernel is limited by memory, not by
 *     arithmetic, and the figure to compare it with is what plain reads of
 *     the same buffer achieve in the same run (below).  The vectors are
 *     packed back to back, so the GB/s column counts exactly the bytes of
 *     vectors read.  A sequential pass is the prefetcher's best case: it is
 *     the ceiling of a flat scan, not a picture of a graph walk, whose reads
 *     are scattered.
 *   - The memory reference is a sum of 64-bit words over the whole buffer:
 *     portable C that -O3 vectorises with the baseline instruction set, and
 *     on x86 explicit AVX2 and AVX-512 loops with four registers of loads per
 *     step, because the baseline loop does not keep enough misses in flight
 *     on a wide core to reach the memory's speed (no copy: a copy would also
 *     time the writes).  It is taken on every buffer, right after filling
 *     it, and once more at the end; the best median is the reference, since
 *     on a shared machine a low figure means a busy moment, not a slower
 *     memory.  A kernel can still come out a few per cent above it: the
 *     reference is "what a simple read achieves", not a proof of the limit.
 *
 * Choices, each with its reason:
 *
 *   - Kernels are taken by name from sw__kernel()/sw__kernel4() (the
 *     internal interface in src/internal.h), so every level is measured in
 *     one process without the SW_SIMD override, and through a function
 *     pointer, which is how the index calls them: an indirect call the
 *     compiler cannot inline or hoist.  That needs the library's hidden
 *     symbols, so this program links the static library, never the shared
 *     one.  A level the CPU lacks, or a (type, kind) pair without a kernel,
 *     comes back NULL and is left out; a level that merely hands back the
 *     same functions as a lower level (the VNNI level for float32) is left
 *     out too, with a note, rather than printed as a second row of the same
 *     numbers.
 *   - Every result is added into an accumulator that ends in a volatile
 *     sink, so no call can be proved dead.  The add is a float add per
 *     distance (a few cycles on a chain that overlaps the next call), which
 *     the search loop pays too.
 *   - In cache, each measurement is calibrated first: the number of passes
 *     is raised until one repeat takes about --target-ms (10 ms; 2 ms with
 *     --quick), which also warms the caches, the branch predictors and the
 *     clock.  Then it is repeated (7 times; 3 with --quick).  Streaming, a
 *     repeat is one pass over the buffer (5 repeats; 3 with --quick).  The
 *     median is reported with the min..max spread, because the machine this
 *     runs on is shared and one run is an anecdote.  Nothing is pinned; the
 *     spread is how noise shows.
 *   - A streaming kernel that reads below 1/8 of the reference on its first
 *     full pass is bound by arithmetic, not memory, and its figure does not
 *     depend on the buffer's size once the buffer is far out of cache; its
 *     other repeats read the first quarter of the buffer (at least 256 MiB)
 *     and its cells are marked "*".  Without that, the scalar float16
 *     kernels (one branchy conversion per element) would take a third of
 *     the default run to say "1 GB/s" more precisely.
 *   - The batch form is timed as ns per distance = time / (4 x calls), so it
 *     reads directly against the single form; its in-cache table also gives
 *     the ratio single / batch ("batch gain": above 1 the batch wins).
 *   - Data are deterministic pseudo-random values (a fixed-seed splitmix64):
 *     floats in [-1, 1), halves made from such floats by sw__f32_to_f16,
 *     bytes uniform over their range, bits uniform.  Kernels here have no
 *     data-dependent branches, but fixed data make runs comparable.
 *   - For Hamming, d counts bits and the kernel reads d/8 bytes.
 *   - clock_gettime(CLOCK_MONOTONIC) brackets each repeat as a whole; its
 *     ~20 ns cost is far below the milliseconds a repeat takes.
 *
 * Exit codes: 0 success, 2 bad command line, 1 out of memory.
 */
#define _DEFAULT_SOURCE /* madvise, clock_gettime */

#include "../src/internal.h"

#define BENCH_NAME "sw_bench_simd"
#include "bench_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#ifndef SW_BENCH_CONFIG
#define SW_BENCH_CONFIG ""
#endif


/* ===================================================================== */
/* Small helpers                                                         */
/* ===================================================================== */

static void *xalloc(size_t n, size_t align)
{
    void *p = NULL;
    if (posix_memalign(&p, align, n ? n : 1) != 0 || !p)
        die(EXIT_RUNTIME, "out of memory allocating %zu bytes", n);
    return p;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Everything a result ends in, so that no distance is dead code. */
static volatile float sink;
static volatile uint64_t sink_u64;

static uint64_t rng_state = 0x5eed5eed5eedull;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A float in [-1, 1). */
static float rng_float(void)
{
    return (float)((double)(rng_next() >> 40) * (1.0 / 8388608.0) - 1.0);
}

/* ===================================================================== */
/* Kernels                                                               */
/* ===================================================================== */

typedef struct {
    sw__etype t;
    sw__kind k;
    const char *tname, *kname;
    size_t esize; /* bytes per element */
} pair_info;

static const pair_info pairs[] = {
    {SW__ET_F32, SW__K_L2, "f32", "l2", 4},      {SW__ET_F32, SW__K_IP, "f32", "ip", 4},
    {SW__ET_F32, SW__K_L1, "f32", "l1", 4},      {SW__ET_F16, SW__K_L2, "f16", "l2", 2},
    {SW__ET_F16, SW__K_IP, "f16", "ip", 2},      {SW__ET_I8, SW__K_L2, "i8", "l2", 1},
    {SW__ET_I8, SW__K_IP, "i8", "ip", 1},        {SW__ET_U8, SW__K_L2, "u8", "l2", 1},
    {SW__ET_U8, SW__K_IP, "u8", "ip", 1},        {SW__ET_BITS, SW__K_HAMMING, "bits", "hamming", 1},
};
#define NPAIRS (sizeof pairs / sizeof pairs[0])

static const char *const level_names[] = {"scalar", "neon", "avx2", "avx512", "avx512vnni"};
#define NLEVELS (sizeof level_names / sizeof level_names[0])

static const sw__etype etypes[] = {SW__ET_F32, SW__ET_F16, SW__ET_I8, SW__ET_U8, SW__ET_BITS};
static const char *const etype_names[] = {"f32", "f16", "i8", "u8", "bits"};
#define NTYPES (sizeof etypes / sizeof etypes[0])

/* A median with its spread, in ns per distance. */
typedef struct {
    double med, min, max;
    int ok;
} stat3;

#define FORM_ONE 0
#define FORM_FOUR 1
#define MAXD 16

typedef struct {
    const pair_info *p;
    const char *level;
    sw__dist_fn f;
    sw__dist4_fn f4;
    int scalar_row; /* index of the scalar row of the same pair, or -1 */
    stat3 cache[MAXD][2];
    stat3 stream[MAXD][2];
    int windowed[MAXD][2]; /* streaming repeats after the first read a window */
} row;

/* Elements a kernel is given for dimension d, 0 if d does not fit the type. */
static size_t elems_for(const pair_info *p, size_t d)
{
    if (p->t == SW__ET_BITS) return d % 8 == 0 ? d / 8 : 0;
    return d;
}

static void fill(sw__etype t, void *dst, size_t bytes)
{
    size_t i;
    if (t == SW__ET_F32) {
        float *f = dst;
        for (i = 0; i < bytes / 4; i++) f[i] = rng_float();
    } else if (t == SW__ET_F16) {
        uint16_t *h = dst;
        for (i = 0; i < bytes / 2; i++) h[i] = sw__f32_to_f16(rng_float());
    } else {
        unsigned char *b = dst;
        for (i = 0; i + 8 <= bytes; i += 8) {
            uint64_t r = rng_next();
            memcpy(b + i, &r, 8);
        }
        for (; i < bytes; i++) b[i] = (unsigned char)rng_next();
    }
}

/* ===================================================================== */
/* Timed loops                                                           */
/* ===================================================================== */

/* `passes` times over `cnt` vectors at `stride` bytes; returns seconds. */
static double loop_one(sw__dist_fn f, const void *q, const unsigned char *base, size_t stride,
                       size_t cnt, size_t n, size_t passes)
{
    float acc = 0.0f;
    double t0 = now_s(), t1;
    for (size_t it = 0; it < passes; it++) {
        const unsigned char *v = base;
        for (size_t j = 0; j < cnt; j++, v += stride) acc += f(q, v, n);
    }
    t1 = now_s();
    sink = acc;
    return t1 - t0;
}

/* Same with the batch form; cnt is a multiple of 4. */
static double loop_four(sw__dist4_fn f4, const void *q, const unsigned char *base, size_t stride,
                        size_t cnt, size_t n, size_t passes)
{
    float acc = 0.0f, out[4];
    const void *v[4];
    double t0 = now_s(), t1;
    for (size_t it = 0; it < passes; it++) {
        const unsigned char *p = base;
        for (size_t j = 0; j < cnt; j += 4, p += 4 * stride) {
            v[0] = p;
            v[1] = p + stride;
            v[2] = p + 2 * stride;
            v[3] = p + 3 * stride;
            f4(q, v, n, out);
            acc += (out[0] + out[1]) + (out[2] + out[3]);
        }
    }
    t1 = now_s();
    sink = acc;
    return t1 - t0;
}

static double run_form(const row *r, int form, const void *q, const unsigned char *base,
                       size_t stride, size_t cnt, size_t n, size_t passes)
{
    return form == FORM_ONE ? loop_one(r->f, q, base, stride, cnt, n, passes)
                            : loop_four(r->f4, q, base, stride, cnt, n, passes);
}

static stat3 summarise(double *ns, int reps)
{
    stat3 s;
    qsort(ns, (size_t)reps, sizeof *ns, cmp_double);
    s.min = ns[0];
    s.max = ns[reps - 1];
    s.med = ns[reps / 2];
    s.ok = 1;
    return s;
}

/* Calibrate the pass count to about `target` seconds, then repeat. */
static stat3 measure(const row *r, int form, const void *q, const unsigned char *base,
                     size_t stride, size_t cnt, size_t n, double target, int reps)
{
    double ns[16], t;
    size_t passes = 1;
    int i;
    for (;;) {
        t = run_form(r, form, q, base, stride, cnt, n, passes);
        if (t >= 0.25 * target || passes >= ((size_t)1 << 40)) break;
        passes *= t > 0 ? (t < target / 64 ? 16 : 2) : 16;
    }
    if (t > 0) {
        double want = (double)passes * target / t;
        passes = want < 1 ? 1 : (size_t)want;
    }
    for (i = 0; i < reps; i++)
        ns[i] = 1e9 * run_form(r, form, q, base, stride, cnt, n, passes) /
                ((double)passes * (double)cnt);
    return summarise(ns, reps);
}

/* Plain reads of a buffer, the bandwidth reference: sums of 64-bit words.
 * The first is portable C with four accumulators, which -O3 vectorises with
 * the baseline instruction set (SSE2 on x86-64); on a wide core that loop
 * issues too few loads per cycle to keep enough misses in flight, so x86
 * also gets explicit AVX2 and AVX-512 loops, four registers of loads per
 * step.  The fastest median is the reference.  Buffer sizes are multiples
 * of 1 MiB, so the blocked loops have no tail. */
static uint64_t read_c(const void *buf, size_t bytes)
{
    const uint64_t *w = buf;
    size_t nw = bytes / 8, i;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (i = 0; i + 4 <= nw; i += 4) {
        s0 += w[i];
        s1 += w[i + 1];
        s2 += w[i + 2];
        s3 += w[i + 3];
    }
    for (; i < nw; i++) s0 += w[i];
    return (s0 + s1) + (s2 + s3);
}

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86_READ 1

__attribute__((target("avx2"))) static uint64_t read_avx2(const void *buf, size_t bytes)
{
    const unsigned char *p = buf;
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    uint64_t o[4];
    for (size_t i = 0; i + 128 <= bytes; i += 128) {
        a = _mm256_add_epi64(a, _mm256_loadu_si256((const __m256i *)(p + i)));
        b = _mm256_add_epi64(b, _mm256_loadu_si256((const __m256i *)(p + i + 32)));
        c = _mm256_add_epi64(c, _mm256_loadu_si256((const __m256i *)(p + i + 64)));
        d = _mm256_add_epi64(d, _mm256_loadu_si256((const __m256i *)(p + i + 96)));
    }
    a = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
    memcpy(o, &a, sizeof o);
    return (o[0] + o[1]) + (o[2] + o[3]);
}

__attribute__((target("avx512f"))) static uint64_t read_avx512(const void *buf, size_t bytes)
{
    const unsigned char *p = buf;
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    for (size_t i = 0; i + 256 <= bytes; i += 256) {
        a = _mm512_add_epi64(a, _mm512_loadu_si512(p + i));
        b = _mm512_add_epi64(b, _mm512_loadu_si512(p + i + 64));
        c = _mm512_add_epi64(c, _mm512_loadu_si512(p + i + 128));
        d = _mm512_add_epi64(d, _mm512_loadu_si512(p + i + 192));
    }
    uint64_t o[8], t = 0;
    a = _mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d));
    memcpy(o, &a, sizeof o); /* not _mm512_reduce_add_epi64: its signed sum trips UBSan */
    for (int i = 0; i < 8; i++) t += o[i];
    return t;
}
#endif

typedef uint64_t (*read_fn)(const void *, size_t);

#define NREADS 3
static const char *const read_names[NREADS] = {"C loop", "avx2 loop", "avx512 loop"};

/* The read loop `which`, or NULL where this build or CPU lacks it.  The
 * library's own CPU and OS check decides: a level is there when it has a
 * float32 kernel for it. */
static read_fn read_loop(int which)
{
    if (which == 0) return read_c;
#ifdef HAVE_X86_READ
    if (which == 1 && sw__kernel(SW__ET_F32, SW__K_L2, "avx2")) return read_avx2;
    if (which == 2 && sw__kernel(SW__ET_F32, SW__K_L2, "avx512")) return read_avx512;
#endif
    return NULL;
}

/* GB/s of reading `bytes` bytes: median and spread of `reps` passes, after
 * one untimed pass. */
static stat3 measure_read(read_fn fn, const void *buf, size_t bytes, int reps)
{
    double gbs[16], t0;
    int i;
    sink_u64 = fn(buf, bytes);
    for (i = 0; i < reps; i++) {
        t0 = now_s();
        sink_u64 = fn(buf, bytes);
        gbs[i] = (double)bytes / (now_s() - t0) / 1e9;
    }
    return summarise(gbs, reps);
}

/* ===================================================================== */
/* Output                                                                */
/* ===================================================================== */

static const char *fmt_num(char *buf, size_t cap, double v)
{
    if (v < 10) snprintf(buf, cap, "%.2f", v);
    else if (v < 100) snprintf(buf, cap, "%.1f", v);
    else snprintf(buf, cap, "%.0f", v);
    return buf;
}

static void print_cell(const stat3 *s)
{
    char a[32], b[32], c[32];
    if (!s->ok) {
        printf(" - |");
        return;
    }
    printf(" %s [%s..%s] |", fmt_num(a, sizeof a, s->med), fmt_num(b, sizeof b, s->min),
           fmt_num(c, sizeof c, s->max));
}

static void print_ratio(double num, double den, int ok)
{
    if (!ok || den <= 0) printf(" - |");
    else printf(" %.2f |", num / den);
}

/* ===================================================================== */
/* Command line                                                          */
/* ===================================================================== */

typedef struct {
    int quick;
    int do_cache, do_stream;
    size_t mem_mib, cache_kib;
    size_t dims[MAXD];
    int nd;
    double target_s;
    int reps_cache, reps_stream;
} args;

static void usage(FILE *out)
{
    fputs("usage: sw_bench_simd [--quick] [--mem-mib N] [--d 96,128,...] [--mode all|cache|stream]\n"
          "                     [--cache-kib N] [--target-ms MS] [--reps-cache N] [--reps-stream N]\n"
          "  --quick        smoke run: 2 ms per repeat, 3 repeats, 256 MiB streaming buffer\n"
          "  --mem-mib N    streaming buffer per element type, MiB (default 1024)\n"
          "  --d LIST       dimensions (default 96,128,384,768,1536)\n"
          "  --mode M       run only the in-cache or only the streaming measurements\n"
          "  --cache-kib N  in-cache set plus query at most N KiB (default 32: L1)\n"
          "  --target-ms MS in-cache time per repeat (default 10)\n"
          "  --reps-cache N, --reps-stream N  repeats (default 7 and 5, at most 15)\n",
          out);
}

static void parse_args(int argc, char **argv, args *a)
{
    int i, set_mem = 0, set_target = 0, set_rc = 0, set_rs = 0;
    memset(a, 0, sizeof *a);
    a->do_cache = a->do_stream = 1;
    for (i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--quick") == 0) {
            a->quick = 1;
        } else if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(o, "--mem-mib") == 0) {
            a->mem_mib = parse_ulong(o, v, 16, 1 << 20);
            set_mem = 1;
            i++;
        } else if (strcmp(o, "--cache-kib") == 0) {
            a->cache_kib = parse_ulong(o, v, 1, 1 << 20);
            i++;
        } else if (strcmp(o, "--target-ms") == 0) {
            a->target_s = 1e-3 * (double)parse_ulong(o, v, 1, 10000);
            set_target = 1;
            i++;
        } else if (strcmp(o, "--reps-cache") == 0) {
            a->reps_cache = (int)parse_ulong(o, v, 1, 15);
            set_rc = 1;
            i++;
        } else if (strcmp(o, "--reps-stream") == 0) {
            a->reps_stream = (int)parse_ulong(o, v, 1, 15);
            set_rs = 1;
            i++;
        } else if (strcmp(o, "--mode") == 0) {
            if (!v) die(EXIT_USAGE, "--mode expects all, cache or stream");
            if (strcmp(v, "all") == 0) a->do_cache = a->do_stream = 1;
            else if (strcmp(v, "cache") == 0) a->do_cache = 1, a->do_stream = 0;
            else if (strcmp(v, "stream") == 0) a->do_cache = 0, a->do_stream = 1;
            else die(EXIT_USAGE, "--mode expects all, cache or stream, got \"%s\"", v);
            i++;
        } else if (strcmp(o, "--d") == 0) {
            char tmp[256], *tok, *save = NULL;
            if (!v || strlen(v) >= sizeof tmp) die(EXIT_USAGE, "--d expects a list like 96,128");
            strcpy(tmp, v);
            a->nd = 0;
            for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (a->nd == MAXD) die(EXIT_USAGE, "--d: at most %d dimensions", MAXD);
                a->dims[a->nd++] = parse_ulong("--d", tok, 1, 65536);
            }
            if (a->nd == 0) die(EXIT_USAGE, "--d expects a list like 96,128");
            i++;
        } else {
            usage(stderr);
            die(EXIT_USAGE, "unknown option \"%s\"", o);
        }
    }
    if (a->nd == 0) {
        static const size_t def[] = {96, 128, 384, 768, 1536};
        for (i = 0; i < 5; i++) a->dims[i] = def[i];
        a->nd = 5;
    }
    if (!a->cache_kib) a->cache_kib = 32;
    if (!set_mem) a->mem_mib = a->quick ? 256 : 1024;
    if (!set_target) a->target_s = a->quick ? 0.002 : 0.010;
    if (!set_rc) a->reps_cache = a->quick ? 3 : 7;
    if (!set_rs) a->reps_stream = a->quick ? 3 : 5;
}

/* ===================================================================== */
/* Main                                                                  */
/* ===================================================================== */

#define NSET_MAX 32 /* vectors in the in-cache set, at most (a multiple of 4) */

static void print_machine(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    if (f) {
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) printf("cpu:%s", c + 1);
                break;
            }
        fclose(f);
    }
    f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fgets(line, sizeof line, f)) printf("load average: %s", line);
        fclose(f);
    }
}

/* How many vectors of `stride` bytes the in-cache set holds: as many as fit
 * in `budget` bytes beside the query, a multiple of 4, 4 to NSET_MAX. */
static size_t set_count(size_t stride, size_t budget)
{
    size_t c = budget > stride ? (budget - stride) / stride : 0;
    c = c / 4 * 4;
    if (c < 4) c = 4;
    if (c > NSET_MAX) c = NSET_MAX;
    return c;
}

static size_t stride_of(size_t bytes)
{
    return (bytes + SW__LINE - 1) / SW__LINE * SW__LINE;
}

int main(int argc, char **argv)
{
    args a;
    row *rows;
    int nrows = 0, di, ri, form, w;
    size_t pi, li, ti;
    double t_start = now_s();
    stat3 bw[NTYPES + 1][NREADS]; /* per buffer, and again at the end */
    double ref[NTYPES + 1], ref_best = 0;
    int any_window = 0;

    parse_args(argc, argv, &a);
    memset(bw, 0, sizeof bw);
    memset(ref, 0, sizeof ref);

    printf("# sw_bench_simd\n\n");
    print_machine();
    printf("smallworld %s, build %s, default kernel level %s\n", sw_version(),
           SW_BENCH_CONFIG[0] ? SW_BENCH_CONFIG : "?", sw_simd_name());
    if (strcmp(SW_BENCH_CONFIG, "Release") != 0 && strcmp(SW_BENCH_CONFIG, "RelWithDebInfo") != 0)
        printf("warning: not a Release build (%s); these numbers are not representative\n",
               SW_BENCH_CONFIG[0] ? SW_BENCH_CONFIG : "unknown");
    printf("options: %s; in cache: %d repeats of ~%.0f ms, set of up to %d vectors in %zu KiB; "
           "streaming: %d repeats over %zu MiB per type\n",
           a.quick ? "--quick" : "default", a.reps_cache, a.target_s * 1e3, NSET_MAX, a.cache_kib,
           a.reps_stream, a.mem_mib);

    /* ---- The rows: every (pair, level) this CPU has a kernel for. ---- */
    rows = xalloc(NPAIRS * NLEVELS * sizeof *rows, 64);
    memset(rows, 0, NPAIRS * NLEVELS * sizeof *rows);
    printf("\n");
    for (pi = 0; pi < NPAIRS; pi++) {
        int first = nrows, scalar_row = -1;
        for (li = 0; li < NLEVELS; li++) {
            const pair_info *p = &pairs[pi];
            sw__dist_fn f = sw__kernel(p->t, p->k, level_names[li]);
            sw__dist4_fn f4 = sw__kernel4(p->t, p->k, level_names[li]);
            int dup = -1;
            if (!f && !f4) continue;
            for (ri = first; ri < nrows; ri++)
                if (rows[ri].f == f && rows[ri].f4 == f4) dup = ri;
            if (dup >= 0) {
                printf("note: %s %s %s is the same code as %s; not repeated\n", p->tname, p->kname,
                       level_names[li], rows[dup].level);
                continue;
            }
            if (strcmp(level_names[li], "scalar") == 0) scalar_row = nrows;
            rows[nrows].p = p;
            rows[nrows].level = level_names[li];
            rows[nrows].f = f;
            rows[nrows].f4 = f4;
            nrows++;
        }
        for (ri = first; ri < nrows; ri++) rows[ri].scalar_row = scalar_row;
    }
    if (nrows == 0) die(EXIT_RUNTIME, "no kernels found (is the library built?)");
    fflush(stdout);

    /* ---- In cache. ---- */
    if (a.do_cache) {
        for (di = 0; di < a.nd; di++) {
            size_t d = a.dims[di];
            for (ti = 0; ti < NTYPES; ti++) {
                const pair_info *p0 = NULL;
                size_t n, bytes, stride, cnt;
                unsigned char *set;
                void *q;
                for (ri = 0; ri < nrows; ri++)
                    if (rows[ri].p->t == etypes[ti]) p0 = rows[ri].p;
                if (!p0 || (n = elems_for(p0, d)) == 0) continue;
                bytes = n * p0->esize;
                stride = stride_of(bytes);
                cnt = set_count(stride, a.cache_kib << 10);
                set = xalloc(stride * cnt, SW__LINE);
                q = xalloc(stride, SW__LINE);
                memset(set, 0, stride * cnt);
                for (size_t j = 0; j < cnt; j++) fill(etypes[ti], set + j * stride, bytes);
                fill(etypes[ti], q, bytes);
                for (ri = 0; ri < nrows; ri++) {
                    row *r = &rows[ri];
                    if (r->p->t != etypes[ti]) continue;
                    for (form = 0; form < 2; form++) {
                        if (form == FORM_ONE ? !r->f : !r->f4) continue;
                        r->cache[di][form] =
                            measure(r, form, q, set, stride, cnt, n, a.target_s, a.reps_cache);
                    }
                }
                free(set);
                free(q);
            }
            fprintf(stderr, "in cache: d=%zu done (%.0f s)\n", d, now_s() - t_start);
        }

        printf("\nin-cache set, vectors per d (%s):", "each at a cache-line stride");
        for (ti = 0; ti < NTYPES; ti++) {
            printf("%s %s", ti ? ";" : "", etype_names[ti]);
            for (di = 0; di < a.nd; di++) {
                size_t bytes = etypes[ti] == SW__ET_BITS ? a.dims[di] / 8
                             : a.dims[di] * (etypes[ti] == SW__ET_F32 ? 4
                                             : etypes[ti] == SW__ET_F16 ? 2 : 1);
                printf("%s%zu", di ? "," : " ", bytes ? set_count(stride_of(bytes), a.cache_kib << 10) : 0);
            }
        }
        printf("\n");

        for (form = 0; form < 2; form++) {
            printf("\n## In cache, %s: ns per distance, median [min..max] of %d\n\n",
                   form == FORM_ONE ? "single calls" : "batch of 4 (ns = time / (4 x calls))",
                   a.reps_cache);
            printf("| type | kind | level |");
            for (di = 0; di < a.nd; di++) printf(" d=%zu |", a.dims[di]);
            for (di = 0; di < a.nd; di++) printf(" vs scalar %zu |", a.dims[di]);
            if (form == FORM_FOUR)
                for (di = 0; di < a.nd; di++) printf(" batch gain %zu |", a.dims[di]);
            printf("\n|---|---|---|");
            for (di = 0; di < a.nd * (form == FORM_FOUR ? 3 : 2); di++) printf("---:|");
            printf("\n");
            for (ri = 0; ri < nrows; ri++) {
                const row *r = &rows[ri];
                const row *s = r->scalar_row >= 0 ? &rows[r->scalar_row] : NULL;
                printf("| %s | %s | %s |", r->p->tname, r->p->kname, r->level);
                for (di = 0; di < a.nd; di++) print_cell(&r->cache[di][form]);
                for (di = 0; di < a.nd; di++)
                    print_ratio(s ? s->cache[di][form].med : 0, r->cache[di][form].med,
                                s && s->cache[di][form].ok && r->cache[di][form].ok);
                if (form == FORM_FOUR)
                    for (di = 0; di < a.nd; di++)
                        print_ratio(r->cache[di][FORM_ONE].med, r->cache[di][FORM_FOUR].med,
                                    r->cache[di][FORM_ONE].ok && r->cache[di][FORM_FOUR].ok);
                printf("\n");
            }
            fflush(stdout);
        }
    }

    /* ---- Streaming from memory. ---- */
    if (a.do_stream) {
        size_t mem = a.mem_mib << 20;
        /* The window a compute-bound kernel reads after its first full pass:
         * a quarter of the buffer, but no less than 256 MiB (or the buffer). */
        size_t win_min = mem < ((size_t)256 << 20) ? mem : (size_t)256 << 20;
        size_t win = mem / 4 > win_min ? mem / 4 : win_min;
        unsigned char *buf = xalloc(mem, (size_t)2 << 20);
        unsigned char *q = xalloc(65536 * 4, SW__LINE); /* the largest query --d allows */
#ifdef MADV_HUGEPAGE
        (void)madvise(buf, mem, MADV_HUGEPAGE); /* fewer TLB misses; advice only */
#endif
        for (ti = 0; ti < NTYPES; ti++) {
            int any = 0;
            for (ri = 0; ri < nrows; ri++) any |= rows[ri].p->t == etypes[ti];
            if (!any) continue;
            fill(etypes[ti], buf, mem);

            for (w = 0; w < NREADS; w++) {
                read_fn fn = read_loop(w);
                if (!fn) continue;
                bw[ti][w] = measure_read(fn, buf, mem, a.reps_stream);
                if (bw[ti][w].med > ref[ti]) ref[ti] = bw[ti][w].med;
            }
            if (ref[ti] > ref_best) ref_best = ref[ti];
            /* The window rule needs a reference now; the final one (the
             * best of all buffers) can only be higher. */

            for (di = 0; di < a.nd; di++) {
                size_t d = a.dims[di];
                for (ri = 0; ri < nrows; ri++) {
                    row *r = &rows[ri];
                    size_t n, vb, cnt, cnt_win;
                    if (r->p->t != etypes[ti] || (n = elems_for(r->p, d)) == 0) continue;
                    vb = n * r->p->esize;
                    cnt = mem / vb / 4 * 4;
                    cnt_win = win / vb / 4 * 4;
                    if (cnt < 4) continue;
                    rng_state = 0x9e37ull + d; /* the same query for every kernel of a type */
                    fill(etypes[ti], q, vb);
                    for (form = 0; form < 2; form++) {
                        double ns[16];
                        size_t c = cnt;
                        if (form == FORM_ONE ? !r->f : !r->f4) continue;
                        for (int k = 0; k < a.reps_stream; k++) {
                            ns[k] = 1e9 * run_form(r, form, q, buf, vb, c, n, 1) / (double)c;
                            /* Far below the memory's speed after a full pass:
                             * compute-bound, so a smaller (still far out of
                             * cache) window gives the same figure sooner. */
                            if (k == 0 && (double)vb / ns[0] < ref_best / 8 && cnt_win < cnt) {
                                c = cnt_win;
                                r->windowed[di][form] = 1;
                                any_window = 1;
                            }
                        }
                        r->stream[di][form] = summarise(ns, a.reps_stream);
                    }
                }
            }
            fprintf(stderr, "streaming: %s done (%.0f s)\n", etype_names[ti], now_s() - t_start);
        }
        /* Once more at the end, on the last buffer: the machine is shared,
         * and a reference taken in a busy moment would flatter the kernels. */
        for (w = 0; w < NREADS; w++) {
            read_fn fn = read_loop(w);
            if (!fn) continue;
            bw[NTYPES][w] = measure_read(fn, buf, mem, a.reps_stream);
            if (bw[NTYPES][w].med > ref[NTYPES]) ref[NTYPES] = bw[NTYPES][w].med;
        }
        if (ref[NTYPES] > ref_best) ref_best = ref[NTYPES];
        free(buf);
        free(q);

        printf("\n## Memory bandwidth reference: plain reads (64-bit sums) of each %zu MiB "
               "buffer, GB/s, median [min..max] of %d\n\n",
               a.mem_mib, a.reps_stream);
        printf("| buffer |");
        for (w = 0; w < NREADS; w++) printf(" %s |", read_names[w]);
        printf(" reference (best median) |\n|---|");
        for (w = 0; w <= NREADS; w++) printf("---:|");
        printf("\n");
        for (ti = 0; ti <= NTYPES; ti++) {
            if (!bw[ti][0].ok) continue;
            printf("| %s |", ti < NTYPES ? etype_names[ti] : "again, at the end");
            for (w = 0; w < NREADS; w++) print_cell(&bw[ti][w]);
            printf(" %.1f |\n", ref[ti]);
        }
        printf("\nmemory bandwidth (plain read, one thread, best median above): %.1f GB/s\n",
               ref_best);

        for (form = 0; form < 2; form++) {
            printf("\n## Streaming %zu MiB per type, %s: ns per distance median [min..max] of "
                   "%d; GB/s of vectors read (%% of the %.1f GB/s reference)\n\n",
                   a.mem_mib, form == FORM_ONE ? "single calls" : "batch of 4", a.reps_stream,
                   ref_best);
            printf("| type | kind | level |");
            for (di = 0; di < a.nd; di++) printf(" d=%zu |", a.dims[di]);
            printf("\n|---|---|---|");
            for (di = 0; di < a.nd; di++) printf("---:|");
            printf("\n");
            for (ri = 0; ri < nrows; ri++) {
                const row *r = &rows[ri];
                printf("| %s | %s | %s |", r->p->tname, r->p->kname, r->level);
                for (di = 0; di < a.nd; di++) {
                    const stat3 *s = &r->stream[di][form];
                    size_t n = elems_for(r->p, a.dims[di]);
                    char x[32], y[32], z[32];
                    double gbs;
                    if (!s->ok || n == 0) {
                        printf(" - |");
                        continue;
                    }
                    gbs = (double)(n * r->p->esize) / s->med;
                    printf(" %s [%s..%s] %.1f GB/s (%.0f%%)%s |", fmt_num(x, sizeof x, s->med),
                           fmt_num(y, sizeof y, s->min), fmt_num(z, sizeof z, s->max), gbs,
                           ref_best > 0 ? 100.0 * gbs / ref_best : 0.0, r->windowed[di][form] ? "*" : "");
                }
                printf("\n");
            }
        }
        if (any_window)
            printf("\n\\* below 1/8 of the reference after its first full pass (compute-bound): "
                   "the other repeats read the first %zu MiB only\n",
                   win >> 20);
    }

    printf("\n");
    print_machine();
    printf("total time: %.0f s\n", now_s() - t_start);
    free(rows);
    return 0;
}
