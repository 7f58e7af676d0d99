/*
 * formats.c — the vector files the `smallworld` program reads and writes.
 *
 * Every reader ends in the same place: n rows of dim float32 in one block,
 * because that is what the library stores.  Narrower inputs (uint8, int8,
 * float16) are widened exactly; int32 (ivecs, ibin) is refused above 2^24
 * in magnitude rather than rounded, and float64 (.npy) refused outside
 * float32's range, since a silently changed value is a wrong answer later.
 * NaN and infinity are refused naming the row, before the library would
 * refuse the whole batch.
 *
 * The files come from elsewhere and are trusted no more than index files
 * are (docs/format.md): a header's counts are multiplied with overflow
 * checks and compared with the file's length before a byte is allocated, a
 * file longer than its header says is refused as well as a shorter one
 * (trailing bytes usually mean the wrong element type), and every .vecs
 * row's own dimension is checked.  So an allocation is never larger than
 * the file backs, and a truncated or mislabelled file gets one line naming
 * what does not add up.
 *
 * The binary layouts, all little-endian, read byte by byte so a big-endian
 * machine reads the same files:
 *   .fvecs .bvecs .ivecs   per row: int32 dim, then dim float32 / uint8 / int32
 *   .fbin .u8bin .i8bin .ibin   int32 n, int32 dim, then n x dim elements
 *   .npy   NumPy format 1.0 / 2.0: "\x93NUMPY", version, header length, a
 *          Python dict literal (descr, fortran_order, shape), C-order data
 * CSV and TSV hold one vector per line; a field that is not a whole number
 * is refused naming its line and field (both counted from 1, as editors
 * do; binary rows are counted from 0, as labels are).
 *
 * The whole file is read into memory (4 bytes an element).  Streaming it
 * to the index chunk by chunk would halve the peak for float inputs, but
 * the sizes are then known only at the end for text, and errors found late
 * would leave a half-built index behind; at the sizes this program is used
 * for the simple way is the right one.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <fcntl.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char cli_format_names[] = "fvecs, bvecs, ivecs, fbin, u8bin, i8bin, ibin, npy, csv, tsv";

static const struct {
    const char *name;
    cli_format fmt;
} format_table[] = {
    {"fvecs", FMT_FVECS}, {"bvecs", FMT_BVECS}, {"ivecs", FMT_IVECS}, {"fbin", FMT_FBIN},
    {"u8bin", FMT_U8BIN}, {"i8bin", FMT_I8BIN}, {"ibin", FMT_IBIN},   {"npy", FMT_NPY},
    {"csv", FMT_CSV},     {"tsv", FMT_TSV},
};

int cli_format_parse(const char *name, cli_format *out) {
    for (size_t i = 0; i < sizeof format_table / sizeof format_table[0]; i++) {
        if (strcmp(name, format_table[i].name) == 0) {
            *out = format_table[i].fmt;
            return 0;
        }
    }
    return -1;
}

static int format_for(const char *path, cli_format fmt, cli_format *out) {
    if (fmt != FMT_AUTO) {
        *out = fmt;
        return CLI_OK;
    }
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash + 1 : path, '.');
    if (dot && cli_format_parse(dot + 1, out) == 0) return CLI_OK;
    cli_error("%s: cannot tell the format from the file name; use --format (%s)", path,
              cli_format_names);
    return CLI_USAGE;
}

/* ==== Element types ==== */

typedef enum elem_type { ET_F32, ET_F16, ET_F64, ET_U8, ET_I8, ET_I32 } elem_type;

static size_t elem_size(elem_type t) {
    switch (t) {
    case ET_F16: return 2;
    case ET_F64: return 8;
    case ET_U8:
    case ET_I8: return 1;
    default: return 4;
    }
}

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static int32_t get_i32(const unsigned char *p) {
    uint32_t u = get_u32(p);
    int32_t v;
    memcpy(&v, &u, 4); /* two's complement on every platform we build for */
    return v;
}

static float get_f32(const unsigned char *p) {
    uint32_t u = get_u32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* IEEE half to single, exactly (every half is a single). */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        float v = ldexpf((float)mant, -24); /* zero or subnormal */
        return sign ? -v : v;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (mant << 13);
    else
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Convert one row of dim elements to float; refuse what float32 cannot
 * hold exactly or at all. */
static int convert_row(const char *path, size_t row, const unsigned char *src, elem_type t,
                       size_t dim, float *dst) {
    size_t es = elem_size(t);
    for (size_t j = 0; j < dim; j++) {
        const unsigned char *p = src + j * es;
        float v;
        switch (t) {
        case ET_F32: v = get_f32(p); break;
        case ET_F16: v = half_to_float((uint16_t)(p[0] | p[1] << 8)); break;
        case ET_U8: v = (float)p[0]; break;
        case ET_I8: v = (float)(int8_t)p[0]; break;
        case ET_I32: {
            int32_t x = get_i32(p);
            if (x > 16777216 || x < -16777216) {
                cli_error("%s: row %zu, element %zu: int32 value %ld is not exactly a float32 "
                          "(the index stores float32; |value| must be at most 2^24)",
                          path, row, j, (long)x);
                return CLI_DATA;
            }
            v = (float)x;
            break;
        }
        default: { /* ET_F64 */
            uint64_t u = get_u64(p);
            double d;
            memcpy(&d, &u, 8);
            if (isfinite(d) && fabs(d) > FLT_MAX) {
                cli_error("%s: row %zu, element %zu: %g is outside the float32 range", path, row,
                          j, d);
                return CLI_DATA;
            }
            v = (float)d;
            break;
        }
        }
        if (!isfinite(v)) {
            cli_error("%s: row %zu, element %zu is %s (vectors must be finite)", path, row, j,
                      isnan(v) ? "NaN" : "infinite");
            return CLI_DATA;
        }
        dst[j] = v;
    }
    return CLI_OK;
}

/* ==== Opening ==== */

static int open_file(const char *path, FILE **f, uint64_t *size) {
    struct stat pre;
    if (stat(path, &pre) == 0 && !S_ISREG(pre.st_mode)) { /* a fifo would block fopen */
        cli_error("%s: not a regular file", path);
        *f = NULL;
        return CLI_DATA;
    }
    *f = fopen(path, "rb");
    if (!*f) {
        cli_error("cannot open %s: %s", path, strerror(errno));
        return CLI_DATA;
    }
    struct stat sb;
    if (fstat(fileno(*f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        cli_error("%s: not a regular file", path);
        fclose(*f);
        *f = NULL;
        return CLI_DATA;
    }
    *size = (uint64_t)sb.st_size;
    return CLI_OK;
}

static int read_exact(FILE *f, const char *path, void *buf, size_t len) {
    if (fread(buf, 1, len, f) != len) {
        cli_error("%s: %s", path, ferror(f) ? strerror(errno) : "unexpected end of file");
        return CLI_DATA;
    }
    return CLI_OK;
}

/* a * b, or 0 with *ok cleared on overflow */
static uint64_t mul_checked(uint64_t a, uint64_t b, int *ok) {
    if (a && b > UINT64_MAX / a) {
        *ok = 0;
        return 0;
    }
    return a * b;
}

/* ==== The row sink: where decoded rows go ==== */

/* Either float vectors (mat) or raw int32 ids (ids). */
typedef struct sink {
    const char *path;
    cli_matrix *mat;
    int32_t *ids;
    int want_ids;
    size_t n, dim;
} sink;

static int sink_begin(sink *s, size_t n, size_t dim) {
    int ok = 1;
    uint64_t elems = mul_checked(n, dim, &ok);
    if (!ok || elems > SIZE_MAX / 4) {
        cli_error("%s: %zu x %zu elements do not fit in memory", s->path, n, dim);
        return CLI_FAIL;
    }
    void *p = malloc(elems ? (size_t)elems * 4 : 1);
    if (!p) {
        cli_error("%s: out of memory for %zu x %zu elements", s->path, n, dim);
        return CLI_FAIL;
    }
    s->n = n;
    s->dim = dim;
    if (s->want_ids) {
        s->ids = p;
    } else {
        s->mat->data = p;
        s->mat->n = n;
        s->mat->dim = dim;
    }
    return CLI_OK;
}

static int sink_row(sink *s, size_t row, size_t dim, const unsigned char *src, elem_type t) {
    if (s->want_ids) {
        for (size_t j = 0; j < dim; j++) s->ids[row * dim + j] = get_i32(src + 4 * j);
        return CLI_OK;
    }
    return convert_row(s->path, row, src, t, dim, s->mat->data + row * dim);
}

static int check_dim(const char *path, int64_t dim) {
    if (dim < 1 || dim > (int64_t)SW_MAX_DIM) {
        cli_error("%s: dimension %lld is out of range (1 .. %u); is this the right format?", path,
                  (long long)dim, SW_MAX_DIM);
        return CLI_DATA;
    }
    return CLI_OK;
}

/* Read n rows of dim elements of type t from f (positioned at the data). */
static int read_rows(FILE *f, sink *s, size_t n, size_t dim, elem_type t) {
    size_t row_bytes = dim * elem_size(t);
    size_t batch = row_bytes >= (1u << 20) ? 1 : (1u << 20) / row_bytes;
    unsigned char *buf = malloc(batch * row_bytes);
    if (!buf) {
        cli_error("%s: out of memory", s->path);
        return CLI_FAIL;
    }
    int rc = CLI_OK;
    for (size_t i = 0; i < n && rc == CLI_OK; i += batch) {
        size_t m = n - i < batch ? n - i : batch;
        rc = read_exact(f, s->path, buf, m * row_bytes);
        for (size_t r = 0; r < m && rc == CLI_OK; r++)
            rc = sink_row(s, i + r, dim, buf + r * row_bytes, t);
    }
    free(buf);
    return rc;
}

/* ==== .fbin .u8bin .i8bin .ibin ==== */

static int read_bin(const char *path, elem_type t, sink *s) {
    FILE *f;
    uint64_t size;
    int rc = open_file(path, &f, &size);
    if (rc) return rc;
    unsigned char h[8];
    if (size < 8) {
        cli_error("%s: truncated: %llu bytes, shorter than the 8-byte header (int32 rows, int32 "
                  "dimension)", path, (unsigned long long)size);
        rc = CLI_DATA;
        goto done;
    }
    if ((rc = read_exact(f, path, h, 8))) goto done;
    int64_t n = get_i32(h), dim = get_i32(h + 4);
    if (n < 0) {
        cli_error("%s: the header gives a negative row count (%lld)", path, (long long)n);
        rc = CLI_DATA;
        goto done;
    }
    if ((rc = check_dim(path, dim))) goto done;
    int ok = 1;
    uint64_t want = 8 + mul_checked(mul_checked((uint64_t)n, (uint64_t)dim, &ok), elem_size(t), &ok);
    if (!ok || want != size) {
        cli_error("%s: %s: the header says %lld rows of dimension %lld (%llu bytes), the file "
                  "has %llu bytes", path, want > size ? "truncated" : "wrong length", (long long)n,
                  (long long)dim, (unsigned long long)want, (unsigned long long)size);
        rc = CLI_DATA;
        goto done;
    }
    if ((rc = sink_begin(s, (size_t)n, (size_t)dim))) goto done;
    rc = read_rows(f, s, (size_t)n, (size_t)dim, t);
done:
    fclose(f);
    return rc;
}

/* ==== .fvecs .bvecs .ivecs ==== */

static int read_vecs(const char *path, elem_type t, sink *s) {
    FILE *f;
    uint64_t size;
    int rc = open_file(path, &f, &size);
    if (rc) return rc;
    unsigned char h[4];
    unsigned char *row = NULL;
    if (size < 4) {
        cli_error("%s: %s", path, size ? "truncated: shorter than one row header" :
                  "empty file: it holds no vectors");
        rc = CLI_DATA;
        goto done;
    }
    if ((rc = read_exact(f, path, h, 4))) goto done;
    int64_t dim = get_i32(h);
    if ((rc = check_dim(path, dim))) goto done;
    size_t row_bytes = (size_t)dim * elem_size(t);
    uint64_t stride = 4 + row_bytes, n = size / stride;
    if (n == 0) {
        cli_error("%s: truncated: row 0 needs %llu bytes, the file has %llu", path,
                  (unsigned long long)stride, (unsigned long long)size);
        rc = CLI_DATA;
        goto done;
    }
    if ((rc = sink_begin(s, (size_t)n, (size_t)dim))) goto done;
    if (!(row = malloc(row_bytes))) {
        cli_error("%s: out of memory", path);
        rc = CLI_FAIL;
        goto done;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (i > 0) {
            if ((rc = read_exact(f, path, h, 4))) goto done;
            if (get_i32(h) != dim) {
                cli_error("%s: row %llu has dimension %ld, row 0 has %lld", path,
                          (unsigned long long)i, (long)get_i32(h), (long long)dim);
                rc = CLI_DATA;
                goto done;
            }
        }
        if ((rc = read_exact(f, path, row, row_bytes))) goto done;
        if ((rc = sink_row(s, (size_t)i, (size_t)dim, row, t))) goto done;
    }
    if (size % stride) {
        cli_error("%s: truncated: %llu bytes is not a whole number of rows of %llu bytes "
                  "(dimension %lld); row %llu is cut short", path, (unsigned long long)size,
                  (unsigned long long)stride, (long long)dim, (unsigned long long)n);
        rc = CLI_DATA;
    }
done:
    free(row);
    fclose(f);
    return rc;
}

/* ==== .npy ==== */

/* A cursor over the header's Python dict literal. */
typedef struct npy_lex {
    const char *p, *end;
} npy_lex;

static void npy_skip(npy_lex *x) {
    while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n')) x->p++;
}

static int npy_char(npy_lex *x, char c) {
    npy_skip(x);
    if (x->p < x->end && *x->p == c) {
        x->p++;
        return 1;
    }
    return 0;
}

/* A quoted string into buf (truncated to cap - 1); 0 when there is none. */
static int npy_string(npy_lex *x, char *buf, size_t cap) {
    npy_skip(x);
    if (x->p >= x->end || (*x->p != '\'' && *x->p != '"')) return 0;
    char q = *x->p++;
    size_t n = 0;
    while (x->p < x->end && *x->p != q) {
        if (n + 1 < cap) buf[n++] = *x->p;
        x->p++;
    }
    if (x->p >= x->end) return 0;
    x->p++;
    buf[n] = 0;
    return 1;
}

static int npy_header(const char *path, const char *hdr, size_t len, elem_type *t, size_t *n,
                      size_t *dim) {
    npy_lex x = {hdr, hdr + len};
    char key[32], descr[32] = "";
    int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0;
    uint64_t shape[3];
    size_t ndim = 0;
    if (!npy_char(&x, '{')) goto bad;
    while (!npy_char(&x, '}')) {
        if (!npy_string(&x, key, sizeof key) || !npy_char(&x, ':')) goto bad;
        if (strcmp(key, "descr") == 0) {
            if (!npy_string(&x, descr, sizeof descr)) {
                cli_error("%s: structured .npy arrays are not supported (one plain dtype is)",
                          path);
                return CLI_DATA;
            }
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            npy_skip(&x);
            if ((size_t)(x.end - x.p) >= 4 && memcmp(x.p, "True", 4) == 0) {
                fortran = 1;
                x.p += 4;
            } else if ((size_t)(x.end - x.p) >= 5 && memcmp(x.p, "False", 5) == 0) {
                x.p += 5;
            } else {
                goto bad;
            }
            have_order = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (!npy_char(&x, '(')) goto bad;
            while (!npy_char(&x, ')')) {
                npy_skip(&x);
                char *e;
                errno = 0;
                if (x.p >= x.end || *x.p < '0' || *x.p > '9') goto bad;
                unsigned long long v = strtoull(x.p, &e, 10);
                if (errno || e > x.end) goto bad;
                x.p = e;
                if (ndim < 3) shape[ndim] = v;
                ndim++;
                if (!npy_char(&x, ',')) {
                    if (!npy_char(&x, ')')) goto bad;
                    break;
                }
            }
            have_shape = 1;
        } else {
            goto bad;
        }
        if (!npy_char(&x, ',')) {
            if (!npy_char(&x, '}')) goto bad;
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape) goto bad;
    if (fortran) {
        cli_error("%s: Fortran-order .npy arrays are not supported; save a C-order array "
                  "(numpy.ascontiguousarray)", path);
        return CLI_DATA;
    }
    const char *d = descr;
    if (strlen(d) == 3 && d[1] == 'u' && d[2] == '1') {
        *t = ET_U8;
    } else if (strlen(d) == 3 && d[1] == 'i' && d[2] == '1') {
        *t = ET_I8;
    } else if (strcmp(d, "<f4") == 0) {
        *t = ET_F32;
    } else if (strcmp(d, "<f2") == 0) {
        *t = ET_F16;
    } else if (strcmp(d, "<f8") == 0) {
        *t = ET_F64;
    } else {
        cli_error("%s: .npy dtype '%s' is not supported (little-endian float32 '<f4', "
                  "float16 '<f2', float64 '<f8', uint8 '|u1' and int8 '|i1' are)", path, d);
        return CLI_DATA;
    }
    if (ndim == 2) {
        if (shape[0] > SIZE_MAX || shape[1] > SIZE_MAX) goto bad;
        *n = (size_t)shape[0];
        if (check_dim(path, (int64_t)(shape[1] > SW_MAX_DIM ? (uint64_t)SW_MAX_DIM + 1 :
                                      shape[1])))
            return CLI_DATA;
        *dim = (size_t)shape[1];
    } else if (ndim == 1) { /* one vector */
        if (check_dim(path, (int64_t)(shape[0] > SW_MAX_DIM ? (uint64_t)SW_MAX_DIM + 1 :
                                      shape[0])))
            return CLI_DATA;
        *n = 1;
        *dim = (size_t)shape[0];
    } else {
        cli_error("%s: a .npy array of %zu dimensions; vectors are a 2-d array (rows x "
                  "dimension) or one 1-d vector", path, ndim);
        return CLI_DATA;
    }
    return CLI_OK;
bad:
    cli_error("%s: malformed .npy header", path);
    return CLI_DATA;
}

static int read_npy(const char *path, sink *s) {
    FILE *f;
    uint64_t size;
    int rc = open_file(path, &f, &size);
    if (rc) return rc;
    unsigned char pre[12];
    char *hdr = NULL;
    if (size < 10) {
        cli_error("%s: truncated: too short for a .npy file", path);
        rc = CLI_DATA;
        goto done;
    }
    if ((rc = read_exact(f, path, pre, 10))) goto done;
    if (memcmp(pre, "\x93NUMPY", 6) != 0) {
        cli_error("%s: not a .npy file (no \\x93NUMPY magic)", path);
        rc = CLI_DATA;
        goto done;
    }
    uint64_t hlen, off;
    if (pre[6] == 1) {
        hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
        off = 10;
    } else if (pre[6] == 2) {
        if (size < 12) {
            cli_error("%s: truncated: too short for a .npy file", path);
            rc = CLI_DATA;
            goto done;
        }
        if ((rc = read_exact(f, path, pre + 10, 2))) goto done;
        hlen = get_u32(pre + 8);
        off = 12;
    } else {
        cli_error("%s: .npy format version %u.%u is not supported (1.0 and 2.0 are)", path,
                  pre[6], pre[7]);
        rc = CLI_DATA;
        goto done;
    }
    if (hlen > size - off || hlen > (1u << 20)) {
        cli_error("%s: truncated: the .npy header length %llu runs past the end of the file",
                  path, (unsigned long long)hlen);
        rc = CLI_DATA;
        goto done;
    }
    if (!(hdr = malloc((size_t)hlen + 1))) {
        cli_error("%s: out of memory", path);
        rc = CLI_FAIL;
        goto done;
    }
    if ((rc = read_exact(f, path, hdr, (size_t)hlen))) goto done;
    hdr[hlen] = 0;
    elem_type t;
    size_t n, dim;
    if ((rc = npy_header(path, hdr, (size_t)hlen, &t, &n, &dim))) goto done;
    int ok = 1;
    uint64_t data = mul_checked(mul_checked(n, dim, &ok), elem_size(t), &ok);
    if (!ok || data != size - off - hlen) {
        cli_error("%s: %s: the .npy header says %zu x %zu elements of %zu bytes, the file has "
                  "%llu data bytes", path, !ok || data > size - off - hlen ? "truncated" :
                  "wrong length", n, dim, elem_size(t), (unsigned long long)(size - off - hlen));
        rc = CLI_DATA;
        goto done;
    }
    if ((rc = sink_begin(s, n, dim))) goto done;
    rc = read_rows(f, s, n, dim, t);
done:
    free(hdr);
    fclose(f);
    return rc;
}

/* ==== CSV and TSV ==== */

/* Parse one field [p, e) as a finite float32. */
static int parse_number(const char *path, const char *p, const char *e, size_t line,
                        size_t field, float *out) {
    while (p < e && (*p == ' ' || *p == '\t')) p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t')) e--;
    char buf[128];
    size_t len = (size_t)(e - p);
    if (len == 0) {
        if (path) cli_error("%s: line %zu, field %zu: empty field", path, line, field);
        else cli_error("--vector: element %zu is empty", field);
        return CLI_DATA;
    }
    if (len >= sizeof buf) len = sizeof buf - 1; /* too long to be a number: refused below */
    memcpy(buf, p, len);
    buf[len] = 0;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end != buf + len || len != (size_t)(e - p) || end == buf) {
        for (size_t i = 0; i < len; i++) /* the message stays one printable line */
            if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] >= 0x7f) buf[i] = '?';
        if (path) cli_error("%s: line %zu, field %zu: malformed number '%s'", path, line, field, buf);
        else cli_error("--vector: element %zu: malformed number '%s'", field, buf);
        return CLI_DATA;
    }
    if (!isfinite(v) || fabs(v) > FLT_MAX) {
        if (path)
            cli_error("%s: line %zu, field %zu: '%s' is %s (vectors must be finite float32)",
                      path, line, field, buf, isnan(v) ? "NaN" : "out of range");
        else
            cli_error("--vector: element %zu: '%s' is not a finite float32", field, buf);
        return CLI_DATA;
    }
    *out = (float)v;
    return CLI_OK;
}

/* Parse text: lines of fields split by sep (any blank run when sep is
 * ' '); path NULL means a --vector argument (one line). */
static int parse_text(const char *path, const char *text, size_t len, char sep, cli_matrix *out) {
    size_t cap = 0, used = 0, dim = 0, rows = 0, line = 0;
    float *data = NULL;
    const char *p = text, *end = text + len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3; /* UTF-8 byte order mark */
    int rc = CLI_OK;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        line++;
        const char *q = le;
        if (q > p && q[-1] == '\r') q--;
        const char *b = p;
        while (b < q && (*b == ' ' || *b == '\t')) b++;
        if (b == q) { /* blank line */
            p = nl ? nl + 1 : end;
            continue;
        }
        size_t fields = 0;
        const char *f = p;
        for (;;) {
            const char *fe;
            if (sep == ' ') {
                while (f < q && (*f == ' ' || *f == '\t' || *f == ',')) f++;
                if (f == q) break;
                fe = f;
                while (fe < q && *fe != ' ' && *fe != '\t' && *fe != ',') fe++;
            } else {
                fe = memchr(f, sep, (size_t)(q - f));
                if (!fe) fe = q;
            }
            fields++;
            if (dim && fields > dim) {
                cli_error("%s: line %zu has more fields than the first vector's %zu",
                          path ? path : "--vector", line, dim);
                rc = CLI_DATA;
                goto done;
            }
            if (used == cap) {
                size_t nc = cap ? cap * 2 : 1024;
                float *nd = nc <= SIZE_MAX / 4 ? realloc(data, nc * 4) : NULL;
                if (!nd) {
                    cli_error("%s: out of memory", path ? path : "--vector");
                    rc = CLI_FAIL;
                    goto done;
                }
                data = nd;
                cap = nc;
            }
            if ((rc = parse_number(path, f, fe, line, fields, &data[used]))) goto done;
            used++;
            if (sep != ' ' && fe == q) break;
            f = fe + (sep != ' ');
        }
        if (!dim) {
            if (fields > SW_MAX_DIM) {
                cli_error("%s: line %zu has %zu fields, more than the largest dimension %u",
                          path ? path : "--vector", line, fields, SW_MAX_DIM);
                rc = CLI_DATA;
                goto done;
            }
            dim = fields;
        } else if (fields != dim) {
            cli_error("%s: line %zu has %zu fields, the first vector has %zu", path, line, fields,
                      dim);
            rc = CLI_DATA;
            goto done;
        }
        rows++;
        p = nl ? nl + 1 : end;
    }
    if (rows == 0) {
        cli_error("%s: it holds no vectors", path ? path : "--vector");
        rc = CLI_DATA;
        goto done;
    }
    out->n = rows;
    out->dim = dim;
    out->data = data;
    data = NULL;
done:
    free(data);
    return rc;
}

static int read_text(const char *path, char sep, cli_matrix *out) {
    FILE *f;
    uint64_t size;
    int rc = open_file(path, &f, &size);
    if (rc) return rc;
    char *text = NULL;
    if (size > SIZE_MAX - 1 || !(text = malloc((size_t)size + 1))) {
        cli_error("%s: out of memory", path);
        rc = CLI_FAIL;
        goto done;
    }
    if ((rc = read_exact(f, path, text, (size_t)size))) goto done;
    if (memchr(text, 0, (size_t)size)) {
        cli_error("%s: a NUL byte: this is not a text file; use --format", path);
        rc = CLI_DATA;
        goto done;
    }
    rc = parse_text(path, text, (size_t)size, sep, out);
done:
    free(text);
    fclose(f);
    return rc;
}

/* ==== Entry points ==== */

int cli_read_vectors(const char *path, cli_format fmt, cli_matrix *out) {
    memset(out, 0, sizeof *out);
    cli_format real;
    int rc = format_for(path, fmt, &real);
    if (rc) return rc;
    sink s = {path, out, NULL, 0, 0, 0};
    switch (real) {
    case FMT_FVECS: rc = read_vecs(path, ET_F32, &s); break;
    case FMT_BVECS: rc = read_vecs(path, ET_U8, &s); break;
    case FMT_IVECS: rc = read_vecs(path, ET_I32, &s); break;
    case FMT_FBIN: rc = read_bin(path, ET_F32, &s); break;
    case FMT_U8BIN: rc = read_bin(path, ET_U8, &s); break;
    case FMT_I8BIN: rc = read_bin(path, ET_I8, &s); break;
    case FMT_IBIN: rc = read_bin(path, ET_I32, &s); break;
    case FMT_NPY: rc = read_npy(path, &s); break;
    case FMT_CSV: rc = read_text(path, ',', out); break;
    case FMT_TSV: rc = read_text(path, '\t', out); break;
    default: rc = CLI_USAGE; break;
    }
    if (rc == CLI_OK && out->n == 0) {
        cli_error("%s: it holds no vectors", path);
        rc = CLI_DATA;
    }
    if (rc) cli_matrix_free(out);
    return rc;
}

void cli_matrix_free(cli_matrix *m) {
    free(m->data);
    memset(m, 0, sizeof *m);
}

int cli_parse_vector(const char *text, cli_matrix *out) {
    memset(out, 0, sizeof *out);
    if (strchr(text, '\n')) {
        cli_error("--vector: one vector, on one line");
        return CLI_DATA;
    }
    return parse_text(NULL, text, strlen(text), ' ', out);
}

int cli_read_ids(const char *path, cli_format fmt, size_t *n, size_t *k, int32_t **ids) {
    cli_format real;
    int rc = format_for(path, fmt, &real);
    if (rc) return rc;
    cli_matrix m = {0, 0, NULL};
    sink s = {path, &m, NULL, 1, 0, 0};
    if (real == FMT_IBIN) {
        rc = read_bin(path, ET_I32, &s);
    } else if (real == FMT_IVECS) {
        rc = read_vecs(path, ET_I32, &s);
    } else {
        cli_error("%s: ground truth is read from .ibin or .ivecs (int32 ids)", path);
        return CLI_USAGE;
    }
    if (rc) {
        free(s.ids);
        return rc;
    }
    *n = s.n;
    *k = s.dim;
    *ids = s.ids;
    return CLI_OK;
}

/* ==== Labels ==== */

int cli_read_labels(const char *path, size_t expect, uint64_t **labels, size_t *n) {
    FILE *f;
    uint64_t size;
    int rc = open_file(path, &f, &size);
    if (rc) return rc;
    char *text = NULL;
    uint64_t *out = NULL;
    size_t count = 0, cap = 0, line = 0;
    if (size > SIZE_MAX - 1 || !(text = malloc((size_t)size + 1))) {
        cli_error("%s: out of memory", path);
        rc = CLI_FAIL;
        goto done;
    }
    if ((rc = read_exact(f, path, text, (size_t)size))) goto done;
    text[size] = 0;
    for (char *p = text; p < text + size;) {
        char *nl = memchr(p, '\n', (size_t)(text + size - p));
        char *le = nl ? nl : text + size;
        line++;
        *le = 0;
        while (*p == ' ' || *p == '\t') p++;
        char *q = le;
        while (q > p && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\r')) *--q = 0;
        if (*p) {
            char *e;
            errno = 0;
            unsigned long long v = strtoull(p, &e, 10);
            if (*p < '0' || *p > '9' || *e || errno || v == SW_NO_LABEL ||
                memchr(p, 0, (size_t)(le - p))) {
                char shown[48];
                size_t ns = 0;
                for (const char *c = p; c < le && ns + 1 < sizeof shown; c++) /* one printable line */
                    shown[ns++] = (unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f ? '?' : *c;
                shown[ns] = 0;
                cli_error("%s: line %zu: '%s%s' is not a label (a decimal integer, 0 .. 2^64 - 2)",
                          path, line, shown, le - p >= (ptrdiff_t)sizeof shown - 1 ? "..." : "");
                rc = CLI_DATA;
                goto done;
            }
            if (count == cap) {
                size_t nc = cap ? cap * 2 : 1024;
                uint64_t *nl2 = nc <= SIZE_MAX / 8 ? realloc(out, nc * 8) : NULL;
                if (!nl2) {
                    cli_error("%s: out of memory", path);
                    rc = CLI_FAIL;
                    goto done;
                }
                out = nl2;
                cap = nc;
            }
            out[count++] = v;
        }
        p = nl ? nl + 1 : text + size;
    }
    if (expect && count != expect) {
        cli_error("%s: %zu labels for %zu vectors", path, count, expect);
        rc = CLI_DATA;
        goto done;
    }
    if (count == 0) {
        cli_error("%s: it holds no labels", path);
        rc = CLI_DATA;
        goto done;
    }
    *labels = out;
    *n = count;
    out = NULL;
done:
    free(out);
    free(text);
    fclose(f);
    return rc;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int cli_find_duplicate(const uint64_t *labels, size_t n, uint64_t *dup) {
    if (n < 2) return -1;
    uint64_t *s = malloc(n * sizeof *s);
    if (!s) return -2;
    memcpy(s, labels, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_u64);
    int found = -1;
    for (size_t i = 1; i < n; i++) {
        if (s[i] == s[i - 1]) {
            *dup = s[i];
            found = 1;
            break;
        }
    }
    free(s);
    return found;
}

/* ==== Writing .ibin / .fbin ==== */

static void put_u32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

int cli_write_bin(const char *path, size_t n, size_t d, const void *values) {
    if (n > INT32_MAX || d > INT32_MAX) {
        cli_error("%s: %zu x %zu is too large for the int32 header", path, n, d);
        return CLI_FAIL;
    }
    /* replaced by rename: only a regular file may be there (a rename
     * over /dev/null or a fifo would replace the device, not write it) */
    struct stat tsb;
    if (stat(path, &tsb) == 0 && !S_ISREG(tsb.st_mode)) {
        cli_error("%s exists and is not a regular file", path);
        return CLI_USAGE;
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) {
        cli_error("%s: out of memory", path);
        return CLI_FAIL;
    }
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666); /* never through a link */
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        cli_error("cannot write %s: %s", tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            remove(tmp);
        }
        free(tmp);
        return CLI_FAIL;
    }
    unsigned char buf[4096];
    put_u32(buf, (uint32_t)n);
    put_u32(buf + 4, (uint32_t)d);
    int ok = fwrite(buf, 1, 8, f) == 8;
    const uint32_t *v = values;
    size_t total = n * d, fill = 0;
    for (size_t i = 0; i < total && ok; i++) {
        put_u32(buf + fill, v[i]);
        fill += 4;
        if (fill == sizeof buf || i + 1 == total) {
            ok = fwrite(buf, 1, fill, f) == fill;
            fill = 0;
        }
    }
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int err = errno;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        if (ok) err = errno;
        cli_error("cannot write %s: %s", path, strerror(err));
        remove(tmp);
        free(tmp);
        return CLI_FAIL;
    }
    free(tmp);
    return CLI_OK;
}
