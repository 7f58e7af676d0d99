/*
 * quant.c — compressed vectors: float16, int8, binary and product codes,
 * and the exact re-ranking that makes them safe to walk on.
 *
 * Why the walk compares codes.  A search spends its time reading records
 * at random (search.c: 46% of a million-node walk stalls on memory), so
 * the bytes a distance reads are what it costs.  A compressed index keeps
 * a code per vector in the record where a float32 index keeps the vector
 * (internal.h), and the walk, the descent and every insert compare codes
 * with the same loops: the kernel behind ix->dist changes, nothing else.
 * With 128 dimensions an int8 record is 272 bytes where float32's is 704,
 * so more of the graph fits in each level of cache and every hop waits on
 * fewer lines.
 *
 * The query takes the code's form once per search (sw__ctx_query): half
 * floats, int8 on the same grid, sign bits, or for PQ a lookup table of
 * the query against every centroid (asymmetric distance: the query keeps
 * full precision).  Two stored nodes are compared code against code
 * (sw__rdist; for PQ through the centroid-pair table), which is what
 * neighbour selection and deletion's repair need.
 *
 * Re-ranking.  A code distance is an estimate, so the walk's nearest by
 * code are re-scored with the full-precision copies and sorted again
 * (sw__rerank): the best rerank x k of the pool, which holds ef.  The
 * copies live apart from the records (a per-chunk array, internal.h) so
 * the walk never drags them through the cache; only the few re-scored
 * are read.  They are kept in memory, or in the file (SW_KEEP_DISK: a
 * loaded index maps them, persist.c), or dropped, when the returned
 * distances are the codes' estimates in the metric's units.
 *
 * Scalar quantization (int8).  One step size for all dimensions, an
 * offset per dimension: under L2 and L1 the offsets cancel in a
 * difference, so the integer kernel's sum of squared code differences
 * times step^2 estimates the true distance, and the exact 32-bit integer
 * kernels (VNNI where the CPU has it) do the work.  A step per dimension
 * would fit each range more tightly but weight the dimensions unequally,
 * which no integer kernel computes.  Inner product and cosine need codes
 * proportional to the values (no offset: dot(a, b) = step^2 dot(ca, cb)).
 * Ranges come from training data, widened by a sixteenth on each side so
 * that later data mostly fits; values beyond saturate and are counted
 * (sw_stats.saturated), and re-ranking repairs what saturation blurs.
 *
 * Binary: bit i is set when x_i is above the training median of dimension
 * i (not above zero: SIFT-like data is all positive, and a plain sign
 * would set every bit).  Hamming distance orders by angle around the
 * medians; it is a coarse filter meant for re-ranking.
 *
 * Product quantization is in pq.c; this file adapts it: its code is m
 * bytes, its kernel the table look-up, its training k-means.
 *
 * Training and threads.  The quantizer is built once, before the first
 * vector (sw_train, or an sw_add_batch large enough), and published with
 * a release store; it never changes afterwards, so the hot paths read it
 * without a lock.  Training waits for adds (save_lock held alone).
 */
#include "internal.h"
#include "pq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sw__quant {
    float *off;   /* int8: per-dimension offset; binary: per-dimension median */
    float *dev;   /* binary: mean |x_i - median_i| (what a bit decodes to) */
    float step, inv; /* int8 grid */
    float alpha, beta; /* code distance -> metric units: alpha d + beta */
    sw__pq pq;
};

#define TRAIN_MAX 65536u /* training rows at most (evenly spaced) */

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

static sw__kind kind_of(sw_metric m) {
    return m == SW_METRIC_L1 ? SW__K_L1 : m == SW_METRIC_L2 ? SW__K_L2 : SW__K_IP;
}

static uint32_t default_pq_m(uint32_t dim) {
    uint32_t cap = dim / 8 ? dim / 8 : 1, m = cap;
    while (dim % m) m--;
    return m;
}

sw_status sw__quant_check(const sw_options *o) {
    if ((unsigned)o->type > SW_TYPE_PQ)
        return sw__fail(SW_EINVAL, "type %d is not one of float32, float16, int8, binary, PQ",
                        (int)o->type);
    if ((unsigned)o->keep > SW_KEEP_NONE)
        return sw__fail(SW_EINVAL, "keep %d is not one of memory, disk, none", (int)o->keep);
    if (o->type == SW_TYPE_F32 && o->keep != SW_KEEP_MEMORY)
        return sw__fail(SW_EINVAL, "keep must be SW_KEEP_MEMORY for float32 (its records are the "
                                   "vectors); sw_open_mmap serves them from a file");
    if (o->type != SW_TYPE_PQ && o->pq_m != 0)
        return sw__fail(SW_EINVAL, "pq_m is %u but the type is not PQ", o->pq_m);
    if (o->type == SW_TYPE_PQ && o->pq_m != 0 && (o->pq_m > o->dim || o->dim % o->pq_m != 0))
        return sw__fail(SW_EINVAL, "pq_m %u does not divide dim %u", o->pq_m, o->dim);
    return SW_OK;
}

/* L1 on halves and int8 codes: the SIMD files have no such kernels (L1 is
 * the rare metric), so these portable loops stand in; the integer one is
 * exact. */
static float l1_f16(const void *a, const void *b, size_t n) {
    const uint16_t *x = a, *y = b;
    float s = 0;
    for (size_t i = 0; i < n; i++) s += fabsf(sw__f16_to_f32(x[i]) - sw__f16_to_f32(y[i]));
    return s;
}
static void l1_f16_4(const void *q, const void *const *v, size_t n, float *out) {
    for (int i = 0; i < 4; i++) out[i] = l1_f16(q, v[i], n);
}
static float l1_i8(const void *a, const void *b, size_t n) {
    const int8_t *x = a, *y = b;
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++) s += (uint32_t)abs((int)x[i] - (int)y[i]);
    return (float)s;
}
static void l1_i8_4(const void *q, const void *const *v, size_t n, float *out) {
    for (int i = 0; i < 4; i++) out[i] = l1_i8(q, v[i], n);
}

sw_status sw__quant_init(sw_index *ix, const sw_options *o) {
    ix->type = o->type;
    ix->keep = o->keep;
    ix->has_full = o->type != SW_TYPE_F32 && o->keep != SW_KEEP_NONE;
    ix->fdist = sw__dist_for(o->metric);
    sw__kind k = kind_of(o->metric);
    sw__etype et = SW__ET_F32;
    switch (o->type) {
    case SW_TYPE_F32:
        ix->code_bytes = (size_t)o->dim * 4;
        ix->code_n = o->dim;
        ix->qcode_bytes = 0;
        ix->dist = sw__dist_for(o->metric);
        ix->dist4 = sw__dist4_for(o->metric);
        return SW_OK;
    case SW_TYPE_F16:
        et = SW__ET_F16;
        ix->code_bytes = (size_t)o->dim * 2;
        ix->code_n = o->dim;
        break;
    case SW_TYPE_I8:
        et = SW__ET_I8;
        ix->code_bytes = o->dim;
        ix->code_n = o->dim;
        break;
    case SW_TYPE_BINARY:
        et = SW__ET_BITS;
        k = SW__K_HAMMING;
        ix->code_bytes = ((size_t)o->dim + 7) / 8;
        ix->code_n = ix->code_bytes;
        break;
    case SW_TYPE_PQ:
        ix->pq_m = o->pq_m ? o->pq_m : default_pq_m(o->dim);
        ix->code_bytes = ix->pq_m;
        ix->code_n = ix->pq_m;
        /* the table, then room for a decoded vector (sw__node_query) */
        ix->qcode_bytes = (size_t)ix->pq_m * 256 * sizeof(float) + (size_t)o->dim * sizeof(float);
        bool ip = k == SW__K_IP;
        ix->dist = ip ? sw__pq_adc_ip : sw__pq_adc_l2;
        ix->dist4 = ip ? sw__pq_adc4_ip : sw__pq_adc4_l2;
        return SW_OK;
    }
    ix->qcode_bytes = round_up(ix->code_bytes, SW__LINE);
    if (k == SW__K_L1) {
        ix->dist = et == SW__ET_F16 ? l1_f16 : l1_i8;
        ix->dist4 = et == SW__ET_F16 ? l1_f16_4 : l1_i8_4;
    } else {
        ix->dist = sw__kernel(et, k, NULL);
        ix->dist4 = sw__kernel4(et, k, NULL);
    }
    return SW_OK;
}

void sw__quant_free(sw_index *ix) {
    struct sw__quant *q = ix->quant;
    if (!q) return;
    sw__free(&ix->mem, q->off, (size_t)ix->dim * sizeof(float));
    sw__free(&ix->mem, q->dev, (size_t)ix->dim * sizeof(float));
    sw__pq_free(&ix->mem, &q->pq);
    sw__free(&ix->mem, q, sizeof *q);
    ix->quant = NULL;
}

int sw_is_trained(const sw_index *ix) {
    if (!ix) return 0;
    return ix->type == SW_TYPE_F32 || ix->type == SW_TYPE_F16 || SW__LOAD(&((sw_index *)ix)->quant);
}

/* ==== Codes ==== */

static inline int8_t i8_code(const struct sw__quant *q, float x, float off, uint64_t *sat) {
    float t = (x - off) * q->inv;
    if (t > 127.0f) {
        (*sat)++;
        return 127;
    }
    if (t < -127.0f) {
        (*sat)++;
        return -127;
    }
    return (int8_t)lrintf(t);
}

/* The code of v (prepared: checked, normalised) into dst; counts clamped
 * int8 components into *sat. */
static void encode(const sw_index *ix, const struct sw__quant *q, const float *v, void *dst,
                   uint64_t *sat) {
    switch (ix->type) {
    case SW_TYPE_F32:
        memcpy(dst, v, ix->vec_bytes);
        break;
    case SW_TYPE_F16: {
        uint16_t *h = dst;
        for (uint32_t i = 0; i < ix->dim; i++) h[i] = sw__f32_to_f16(v[i]);
        break;
    }
    case SW_TYPE_I8: {
        int8_t *c = dst;
        for (uint32_t i = 0; i < ix->dim; i++) c[i] = i8_code(q, v[i], q->off[i], sat);
        break;
    }
    case SW_TYPE_BINARY: {
        uint8_t *b = dst;
        memset(b, 0, ix->code_bytes);
        for (uint32_t i = 0; i < ix->dim; i++)
            if (v[i] > q->off[i]) b[i >> 3] |= (uint8_t)(1u << (i & 7));
        break;
    }
    case SW_TYPE_PQ:
        sw__pq_encode(&q->pq, v, dst);
        break;
    }
}

void sw__encode(sw_index *ix, const float *v, void *dst) {
    uint64_t sat = 0;
    encode(ix, ix->quant, v, dst, &sat);
    if (sat) __atomic_add_fetch(&ix->saturated, sat, __ATOMIC_RELAXED);
}

static void decode(const sw_index *ix, const void *code, float *out) {
    const struct sw__quant *q = ix->quant;
    switch (ix->type) {
    case SW_TYPE_F32:
        memcpy(out, code, ix->vec_bytes);
        break;
    case SW_TYPE_F16: {
        const uint16_t *h = code;
        for (uint32_t i = 0; i < ix->dim; i++) out[i] = sw__f16_to_f32(h[i]);
        break;
    }
    case SW_TYPE_I8: {
        const int8_t *c = code;
        for (uint32_t i = 0; i < ix->dim; i++) out[i] = q->off[i] + q->step * (float)c[i];
        break;
    }
    case SW_TYPE_BINARY: {
        const uint8_t *b = code;
        for (uint32_t i = 0; i < ix->dim; i++)
            out[i] = q->off[i] + ((b[i >> 3] >> (i & 7)) & 1 ? q->dev[i] : -q->dev[i]);
        break;
    }
    case SW_TYPE_PQ:
        sw__pq_decode(&q->pq, code, out);
        break;
    }
}

void sw__vector_out(const sw_index *ix, uint32_t slot, float *out) {
    if (ix->has_full)
        memcpy(out, sw__full(ix, slot), ix->vec_bytes);
    else
        decode(ix, sw__rec(ix, slot), out);
}

sw_status sw__ctx_query(const sw_index *ix, sw__ctx *c, const float *query) {
    sw_status st = sw__prepare_vector(ix, query, c->query);
    if (st != SW_OK) return st;
    const struct sw__quant *q = SW__LOAD(&((sw_index *)ix)->quant);
    if (ix->type == SW_TYPE_F32) {
        c->qv = c->query;
    } else if (!q && ix->type != SW_TYPE_F16) {
        c->qv = NULL; /* untrained: the index is empty, nothing is compared */
    } else if (ix->type == SW_TYPE_PQ) {
        sw__pq_lut(&q->pq, c->query, c->qcode);
        c->qv = c->qcode;
    } else {
        uint64_t sat = 0; /* a query's clamping is not the index's */
        encode(ix, q, c->query, c->qcode, &sat);
        c->qv = c->qcode;
    }
    return SW_OK;
}

const void *sw__node_query(const sw_index *ix, uint32_t slot, void *buf) {
    if (ix->type != SW_TYPE_PQ) return sw__rec(ix, slot);
    const struct sw__quant *q = ix->quant;
    float *v = (float *)((char *)buf + (size_t)ix->pq_m * 256 * sizeof(float));
    sw__vector_out(ix, slot, v);
    sw__pq_lut(&q->pq, v, buf);
    return buf;
}

float sw__pq_rdist(const sw_index *ix, const void *a, const void *b) {
    return sw__pq_sdc(&ix->quant->pq, a, b);
}

float sw__code_to_metric(const sw_index *ix, float d) {
    switch (ix->type) {
    case SW_TYPE_I8:
        return ix->quant->alpha * d + ix->quant->beta;
    case SW_TYPE_BINARY:
        /* differing bits estimate the angle around the medians */
        if (ix->metric == SW_METRIC_IP || ix->metric == SW_METRIC_COSINE)
            return 1.0f - cosf(3.14159265f * d / (float)ix->dim);
        return d;
    default:
        return d;
    }
}

void sw__rerank(const sw_index *ix, const float *q, sw__cand *r, size_t n) {
    if (ix->has_full) {
        for (size_t i = 0; i < n; i++) SW__PREFETCH(sw__full(ix, r[i].id));
        for (size_t i = 0; i < n; i++) r[i].dist = ix->fdist(q, sw__full(ix, r[i].id), ix->dim);
        qsort(r, n, sizeof *r, sw__cand_cmp);
    } else if (ix->type != SW_TYPE_F32) {
        for (size_t i = 0; i < n; i++) r[i].dist = sw__code_to_metric(ix, r[i].dist);
    }
}

size_t sw__full_bytes(const sw_index *ix) {
    if (!ix->has_full) return 0;
    size_t n = 0, per = sw__chunk_slots(ix) * ix->vec_bytes;
    const char *lo = ix->full_map, *hi = lo ? lo + ix->full_map_len : NULL;
    for (size_t i = 0; i < ix->nchunks; i++) {
        const char *f = (const char *)ix->dir[i].full;
        if (f && !(lo && f >= lo && f < hi)) n += per;
    }
    return n;
}

/* ==== Training ==== */

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* pq.c's runner: the index's thread pool (ctx is the index). */
static void run_parallel(void *ctx, size_t ntasks, void (*fn)(void *arg, size_t task), void *arg) {
    sw__parallel(ctx, 0, ntasks, fn, arg);
}

/* The int8 grid, and the map from code distances to the metric's units. */
static void set_step(const sw_index *ix, struct sw__quant *q, float step) {
    q->step = step;
    q->inv = 1.0f / step;
    float s2 = step * step;
    q->alpha = ix->metric == SW_METRIC_L1 ? step : s2;
    /* under IP and cosine the kernel gives 1 - dot of codes, dot = step^2 that */
    q->beta = ix->metric == SW_METRIC_IP || ix->metric == SW_METRIC_COSINE ? 1.0f - s2 : 0.0f;
}

/* Learn the quantizer from rows x[0..n) (prepared: finite, normalised). */
static sw_status learn(sw_index *ix, const float *x, size_t n, struct sw__quant **out) {
    sw__mem *m = &ix->mem;
    size_t dim = ix->dim;
    struct sw__quant *q = sw__calloc(m, sizeof *q, SW__LINE);
    float *col = NULL;
    sw_status st = SW_OK;
    if (!q) return sw__fail(SW_ENOMEM, "sw_train: the quantizer");
    q->alpha = 1.0f;
    if (ix->type == SW_TYPE_I8) {
        if (!(q->off = sw__alloc(m, dim * sizeof(float), SW__LINE))) goto nomem;
        bool centred = ix->metric == SW_METRIC_L2 || ix->metric == SW_METRIC_L1;
        float span = 0;
        for (size_t i = 0; i < dim; i++) {
            float lo = x[i], hi = x[i];
            for (size_t r = 1; r < n; r++) {
                float v = x[r * dim + i];
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            float w = (hi - lo) / 16.0f;
            lo -= w;
            hi += w;
            if (centred) {
                q->off[i] = 0.5f * (lo + hi);
                if (hi - lo > span) span = hi - lo;
            } else {
                q->off[i] = 0;
                float a = fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi);
                if (2 * a > span) span = 2 * a;
            }
        }
        if (!(span > 0)) span = 1; /* constant data: any grid codes it */
        set_step(ix, q, span / 254.0f);
    } else if (ix->type == SW_TYPE_BINARY) {
        if (!(q->off = sw__alloc(m, dim * sizeof(float), SW__LINE)) ||
            !(q->dev = sw__alloc(m, dim * sizeof(float), SW__LINE)) ||
            !(col = malloc(n * sizeof *col)))
            goto nomem;
        for (size_t i = 0; i < dim; i++) {
            for (size_t r = 0; r < n; r++) col[r] = x[r * dim + i];
            qsort(col, n, sizeof *col, cmp_float);
            float med = n % 2 ? col[n / 2] : 0.5f * (col[n / 2 - 1] + col[n / 2]);
            double d = 0;
            for (size_t r = 0; r < n; r++) d += fabs((double)col[r] - med);
            q->off[i] = med;
            q->dev[i] = (float)(d / (double)n);
        }
    } else if (ix->type == SW_TYPE_PQ) {
        int kind = kind_of(ix->metric) == SW__K_IP ? 1 : kind_of(ix->metric) == SW__K_L1 ? 2 : 0;
        st = sw__pq_train(m, &q->pq, ix->dim, ix->pq_m, kind, x, n, ix->seed, run_parallel, ix);
        if (st != SW_OK) {
            sw__free(m, q, sizeof *q);
            return st == SW_ENOMEM ? sw__fail(st, "sw_train: the product quantizer") : st;
        }
    }
    free(col);
    *out = q;
    return SW_OK;
nomem:
    free(col);
    sw__free(m, q->off, dim * sizeof(float));
    sw__free(m, q->dev, dim * sizeof(float));
    sw__free(m, q, sizeof *q);
    return sw__fail(SW_ENOMEM, "sw_train: the quantizer");
}

/* Train on (up to TRAIN_MAX evenly spaced of) rows v[0..n); the caller
 * holds save_lock alone and has checked the index needs it. */
static sw_status train(sw_index *ix, const float *v, size_t n, const char *fn) {
    size_t take = n < TRAIN_MAX ? n : TRAIN_MAX, dim = ix->dim;
    float *x = malloc(take * dim * sizeof *x);
    if (!x) return sw__fail(SW_ENOMEM, "%s: %zu training rows", fn, take);
    sw_status st = SW_OK;
    for (size_t r = 0; r < take && st == SW_OK; r++) {
        size_t row = (size_t)((unsigned long long)r * n / take);
        st = sw__prepare_vector(ix, v + row * dim, x + r * dim);
        if (st != SW_OK) st = sw__fail(SW_ENOTFINITE, "%s: row %zu contains NaN or infinity", fn, row);
    }
    struct sw__quant *q = NULL;
    if (st == SW_OK) st = learn(ix, x, take, &q);
    free(x);
    if (st == SW_OK) SW__STORE(&ix->quant, q);
    return st;
}

static size_t min_rows(const sw_index *ix, bool automatic) {
    if (ix->type == SW_TYPE_PQ) return automatic ? SW_TRAIN_ROWS_PQ : 256;
    return automatic ? SW_TRAIN_ROWS : 1;
}

sw_status sw_train(sw_index *ix, const float *vectors, size_t n, size_t dim) {
    if (!ix || !vectors) return sw__fail(SW_ENULL, "sw_train: %s is NULL", ix ? "vectors" : "index");
    if (ix->readonly) return sw__readonly_fail("sw_train");
    if (dim != ix->dim)
        return sw__fail(SW_EDIMMISMATCH, "sw_train: rows have dimension %zu, the index %u", dim,
                        ix->dim);
    if (ix->type == SW_TYPE_F32 || ix->type == SW_TYPE_F16) return SW_OK;
    if (n < min_rows(ix, false))
        return sw__fail(SW_EINVAL, "sw_train: %zu rows; this type needs at least %zu", n,
                        min_rows(ix, false));
    pthread_rwlock_wrlock(&ix->save_lock);
    sw_status st = ix->quant ? sw__fail(SW_EINVAL, "sw_train: the index is already trained")
                             : train(ix, vectors, n, "sw_train");
    pthread_rwlock_unlock(&ix->save_lock);
    return st;
}

sw_status sw__auto_train(sw_index *ix, const float *v, size_t n, const char *fn) {
    if (sw_is_trained(ix)) return SW_OK;
    if (n < min_rows(ix, true))
        return sw__fail(SW_ENOTTRAINED,
                        "%s: the index is not trained; call sw_train, or add a first batch of "
                        "at least %zu rows (this one has %zu)",
                        fn, min_rows(ix, true), n);
    pthread_rwlock_wrlock(&ix->save_lock);
    sw_status st = ix->quant ? SW_OK : train(ix, v, n, fn); /* another batch may have */
    pthread_rwlock_unlock(&ix->save_lock);
    return st;
}

/* ==== Files ==== */

/*
 * The QUANT section (persist.c), little-endian float32 throughout:
 *   int8    step, then dim offsets
 *   binary  dim medians, then dim mean deviations
 *   PQ      m x 256 x (dim / m) centroids, sub-quantizer-major
 * Everything else (the distance map, PQ's pair table) is derived.
 */
static size_t quant_floats(const sw_index *ix) {
    switch (ix->type) {
    case SW_TYPE_I8: return 1 + (size_t)ix->dim;
    case SW_TYPE_BINARY: return 2 * (size_t)ix->dim;
    case SW_TYPE_PQ: return (size_t)256 * ix->dim;
    default: return 0;
    }
}

static void put_f32(unsigned char *p, float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(b >> (8 * i));
}

static float get_f32(const unsigned char *p) {
    uint32_t b = sw__get32le(p);
    float f;
    memcpy(&f, &b, 4);
    return f;
}

size_t sw__quant_bytes(const sw_index *ix) { return ix->quant ? 4 * quant_floats(ix) : 0; }

void sw__quant_write(const sw_index *ix, unsigned char *out) {
    const struct sw__quant *q = ix->quant;
    size_t dim = ix->dim;
    if (ix->type == SW_TYPE_I8) {
        put_f32(out, q->step);
        for (size_t i = 0; i < dim; i++) put_f32(out + 4 * (1 + i), q->off[i]);
    } else if (ix->type == SW_TYPE_BINARY) {
        for (size_t i = 0; i < dim; i++) put_f32(out + 4 * i, q->off[i]);
        for (size_t i = 0; i < dim; i++) put_f32(out + 4 * (dim + i), q->dev[i]);
    } else if (ix->type == SW_TYPE_PQ) {
        for (size_t i = 0; i < quant_floats(ix); i++) put_f32(out + 4 * i, q->pq.cent[i]);
    }
}

sw_status sw__quant_read(sw_index *ix, const unsigned char *p, size_t len, const char *path) {
    size_t nf = quant_floats(ix), dim = ix->dim;
    if (len != 4 * nf)
        return sw__fail(SW_ECORRUPT, "%s: quantizer section has %zu bytes, expected %zu", path,
                        len, 4 * nf);
    for (size_t i = 0; i < nf; i++)
        if (!isfinite(get_f32(p + 4 * i)))
            return sw__fail(SW_ECORRUPT, "%s: quantizer value %zu is not finite", path, i);
    sw__mem *m = &ix->mem;
    struct sw__quant *q = sw__calloc(m, sizeof *q, SW__LINE);
    if (!q) return sw__fail(SW_ENOMEM, "loading %s: the quantizer", path);
    ix->quant = q; /* freed with the index from here on */
    q->alpha = 1.0f;
    if (ix->type == SW_TYPE_I8) {
        float step = get_f32(p);
        if (!(step > 0) || !isfinite(1.0f / step))
            return sw__fail(SW_ECORRUPT, "%s: int8 step %g is not positive", path, (double)step);
        if (!(q->off = sw__alloc(m, dim * sizeof(float), SW__LINE))) goto nomem;
        for (size_t i = 0; i < dim; i++) q->off[i] = get_f32(p + 4 * (1 + i));
        set_step(ix, q, step);
    } else if (ix->type == SW_TYPE_BINARY) {
        if (!(q->off = sw__alloc(m, dim * sizeof(float), SW__LINE)) ||
            !(q->dev = sw__alloc(m, dim * sizeof(float), SW__LINE)))
            goto nomem;
        for (size_t i = 0; i < dim; i++) q->off[i] = get_f32(p + 4 * i);
        for (size_t i = 0; i < dim; i++) q->dev[i] = get_f32(p + 4 * (dim + i));
    } else if (ix->type == SW_TYPE_PQ) {
        sw__pq *pq = &q->pq;
        pq->dim = ix->dim;
        pq->m = ix->pq_m;
        pq->dsub = ix->dim / ix->pq_m;
        pq->kind = kind_of(ix->metric) == SW__K_IP ? 1 : kind_of(ix->metric) == SW__K_L1 ? 2 : 0;
        if (!(pq->cent = sw__alloc(m, nf * sizeof(float), SW__LINE))) goto nomem;
        for (size_t i = 0; i < nf; i++) pq->cent[i] = get_f32(p + 4 * i);
        if (sw__pq_build_tables(m, pq) != SW_OK) goto nomem;
    }
    return SW_OK;
nomem:
    return sw__fail(SW_ENOMEM, "loading %s: the quantizer", path);
}
