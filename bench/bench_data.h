/*
 * bench_data.h — what the bench programs share besides bench_util.h: the
 * big-ann-benchmarks data files (int32 n, int32 d, then n x d elements of
 * the type the extension names: .fbin float32, .u8bin uint8, .i8bin int8,
 * .ibin int32), read whole into floats and checked (size against the
 * header, every value finite), plus the small helpers around them.  Static
 * inline, as bench_util.h, so each program takes what it uses.  Include
 * after bench_util.h (die) and smallworld.h (SW_MAX_THREADS).
 */
#ifndef SW_BENCH_DATA_H
#define SW_BENCH_DATA_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) die(EXIT_RUNTIME, "out of memory allocating %zu bytes", n);
    return p;
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static inline int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

typedef enum { ELEM_F32, ELEM_U8, ELEM_I8, ELEM_I32 } elem_type;

typedef struct {
    const char *path;
    elem_type type;
    size_t elem_size;
    size_t n, d;
} bin_header;

static inline int ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lf = strlen(suffix);
    return ls >= lf && strcmp(s + ls - lf, suffix) == 0;
}

static inline const char *elem_name(elem_type t)
{
    switch (t) {
    case ELEM_F32: return "fbin";
    case ELEM_U8: return "u8bin";
    case ELEM_I8: return "i8bin";
    case ELEM_I32: return "ibin";
    }
    return "?";
}

/* Open a file that must exist and be a regular file; *st gets its size. */
static inline FILE *open_checked(const char *what, const char *path, struct stat *st)
{
    FILE *f;
    if (stat(path, st) != 0) die(EXIT_USAGE, "%s file %s: %s", what, path, strerror(errno));
    if (!S_ISREG(st->st_mode)) die(EXIT_USAGE, "%s file %s: not a regular file", what, path);
    f = fopen(path, "rb");
    if (!f) die(EXIT_USAGE, "%s file %s: %s", what, path, strerror(errno));
    return f;
}

/*
 * Open `path`, read and check its header against its size.  The payload
 * must be exactly n*d elements, or (allow_gt_pair) exactly n*d int32 ids
 * followed by n*d float32 distances, the combined big-ann ground-truth file.
 */
static inline FILE *open_bin(const char *what, const char *path, int allow_gt_pair, bin_header *h)
{
    struct stat st;
    FILE *f;
    int32_t hdr[2];
    uint64_t payload;

    h->path = path;
    if (ends_with(path, ".fbin")) { h->type = ELEM_F32; h->elem_size = 4; }
    else if (ends_with(path, ".u8bin")) { h->type = ELEM_U8; h->elem_size = 1; }
    else if (ends_with(path, ".i8bin")) { h->type = ELEM_I8; h->elem_size = 1; }
    else if (ends_with(path, ".ibin")) { h->type = ELEM_I32; h->elem_size = 4; }
    else
        die(EXIT_USAGE, "%s file %s: unknown extension (expected .fbin, .u8bin, .i8bin or .ibin)",
            what, path);

    f = open_checked(what, path, &st);
    if ((uint64_t)st.st_size < 8 || fread(hdr, sizeof hdr[0], 2, f) != 2)
        die(EXIT_USAGE, "%s file %s: shorter than its 8-byte header", what, path);
    if (hdr[0] <= 0 || hdr[1] <= 0)
        die(EXIT_USAGE, "%s file %s: header says %d rows x %d columns; both must be positive",
            what, path, (int)hdr[0], (int)hdr[1]);
    h->n = (size_t)hdr[0];
    h->d = (size_t)hdr[1];
    payload = (uint64_t)h->n * (uint64_t)h->d * (uint64_t)h->elem_size;
    if ((uint64_t)st.st_size - 8 != payload &&
        !(allow_gt_pair && (uint64_t)st.st_size - 8 == 2 * payload))
        die(EXIT_USAGE,
            "%s file %s: header says %zu x %zu %s elements (%llu bytes of data) but the file "
            "has %llu bytes after the header",
            what, path, h->n, h->d, elem_name(h->type), (unsigned long long)payload,
            (unsigned long long)((uint64_t)st.st_size - 8));
    return f;
}

/* Read the first `rows` rows of an opened vector file as floats. */
static inline float *read_vectors(FILE *f, const bin_header *h, size_t rows)
{
    size_t total = rows * h->d, done = 0;
    float *out = xmalloc(total * sizeof(float));
    unsigned char *buf = NULL;
    const size_t chunk = (size_t)1 << 20; /* elements per read */

    if (h->type == ELEM_F32) {
        if (fread(out, sizeof(float), total, f) != total)
            die(EXIT_RUNTIME, "%s: short read", h->path);
    } else {
        buf = xmalloc(chunk * h->elem_size);
        while (done < total) {
            size_t m = total - done < chunk ? total - done : chunk, i;
            if (fread(buf, h->elem_size, m, f) != m)
                die(EXIT_RUNTIME, "%s: short read", h->path);
            for (i = 0; i < m; i++) {
                switch (h->type) {
                case ELEM_U8: out[done + i] = (float)buf[i]; break;
                case ELEM_I8: out[done + i] = (float)(int8_t)buf[i]; break;
                case ELEM_I32: {
                    int32_t v;
                    memcpy(&v, buf + 4 * i, 4);
                    out[done + i] = (float)v;
                    break;
                }
                case ELEM_F32: break;
                }
            }
            done += m;
        }
        free(buf);
    }
    for (done = 0; done < total; done++)
        if (!isfinite(out[done]))
            die(EXIT_USAGE, "%s: row %zu has a NaN or infinite value", h->path, done / h->d);
    return out;
}

/* A thread count: 0 means every online CPU, resolved here so that what is
 * printed is what ran. */
static inline size_t resolve_threads(size_t t)
{
    if (t == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        t = n > 0 ? (size_t)n : 1;
        if (t > SW_MAX_THREADS) t = SW_MAX_THREADS;
    }
    return t;
}

/* The dataset column: `name` when given, else the directory of a file
 * named base.*, else the stem of `base`. */
static inline char *dataset_name(const char *name, const char *base)
{
    const char *path = base, *slash, *file, *dot;
    char *out;
    size_t len;
    if (name) {
        out = xmalloc(strlen(name) + 1);
        strcpy(out, name);
        return out;
    }
    slash = strrchr(path, '/');
    file = slash ? slash + 1 : path;
    if (!strncmp(file, "base.", 5) && slash && slash > path) {
        const char *start = slash;
        while (start > path && start[-1] != '/') start--;
        len = (size_t)(slash - start);
        if (len > 0 && !(len == 1 && start[0] == '.')) {
            out = xmalloc(len + 1);
            memcpy(out, start, len);
            out[len] = '\0';
            return out;
        }
    }
    dot = strchr(file, '.');
    len = dot ? (size_t)(dot - file) : strlen(file);
    out = xmalloc(len + 1);
    memcpy(out, file, len);
    out[len] = '\0';
    return out;
}

#endif /* SW_BENCH_DATA_H */
