/*
 * index.c — creating and freeing an index, options, getters, memory.
 *
 * Parameters are validated here once, against the bounds published in
 * smallworld.h, and refused rather than clamped: a caller who asked for
 * M = 1 has a bug we should show, not hide.  The record geometry (where the
 * vector and the links sit in a layer-0 record, how many slots a chunk has)
 * is fixed at creation from the dimension and M0, and never changes.
 *
 * All memory goes through the index's allocator (sw__alloc), which also
 * keeps the byte count that sw_memory_usage() reports; tests plug in an
 * allocator that fails on demand to prove every error path leaves the index
 * as it was.
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np, where glibc has it */
#include "internal.h"

#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* ==== Memory ==== */

static void *default_alloc(void *ctx, size_t size, size_t align) {
    (void)ctx;
    if (align < sizeof(void *)) align = sizeof(void *);
    void *p = NULL;
    if (posix_memalign(&p, align, size ? size : 1) != 0) return NULL;
    return p;
}

static void default_free(void *ctx, void *p, size_t size) {
    (void)ctx;
    (void)size;
    free(p);
}

void *sw__alloc(sw__mem *m, size_t size, size_t align) {
    void *p = m->a.alloc(m->a.ctx, size, align);
    if (p) atomic_fetch_add_explicit(&m->bytes, size, memory_order_relaxed);
    return p;
}

void *sw__calloc(sw__mem *m, size_t size, size_t align) {
    void *p = sw__alloc(m, size, align);
    if (p) memset(p, 0, size);
    return p;
}

void sw__free(sw__mem *m, void *p, size_t size) {
    if (!p) return;
    atomic_fetch_sub_explicit(&m->bytes, size, memory_order_relaxed);
    m->a.free(m->a.ctx, p, size);
}

/* ==== Options ==== */

sw_options sw_options_default(void) {
    sw_options o;
    memset(&o, 0, sizeof o);
    o.dim = 0;
    o.metric = SW_METRIC_L2;
    o.M = 16;
    o.M0 = 0;
    o.ef_construction = 200;
    o.ef_search = 64;
    o.seed = 100;
    o.keep_pruned = 0;
    o.extend_candidates = 0;
    o.allocator = NULL;
    return o;
}

sw_search_params sw_search_params_default(void) {
    sw_search_params p;
    memset(&p, 0, sizeof p);
    return p;
}

sw_status sw__check_options(const sw_options *o) {
    if (o->dim == 0 || o->dim > SW_MAX_DIM)
        return sw__fail(SW_EDIM, "dim is %u, must be 1..%u", o->dim, SW_MAX_DIM);
    if ((unsigned)o->metric > SW_METRIC_L1)
        return sw__fail(SW_EMETRIC, "metric %d is not one of L2, IP, cosine, L1", (int)o->metric);
    if (o->M < SW_MIN_M || o->M > SW_MAX_M)
        return sw__fail(SW_EM, "M is %u, must be %u..%u", o->M, SW_MIN_M, SW_MAX_M);
    if (o->M0 != 0 && (o->M0 < o->M || o->M0 > SW_MAX_M0))
        return sw__fail(SW_EM, "M0 is %u, must be 0 (= 2*M) or M (%u)..%u", o->M0, o->M,
                        SW_MAX_M0);
    if (o->ef_construction == 0 || o->ef_construction > SW_MAX_EF)
        return sw__fail(SW_EEFC, "ef_construction is %u, must be 1..%u", o->ef_construction,
                        SW_MAX_EF);
    if (o->ef_search == 0 || o->ef_search > SW_MAX_EF)
        return sw__fail(SW_EEF, "ef_search is %u, must be 1..%u", o->ef_search, SW_MAX_EF);
    if (o->allocator && (!o->allocator->alloc || !o->allocator->free))
        return sw__fail(SW_EINVAL, "allocator has a NULL alloc or free function");
    return sw__quant_check(o);
}

/* ==== Locks ==== */

static void destroy_locks(sw_index *ix) {
    pthread_mutex_destroy(&ix->ctx_lock);
    pthread_mutex_destroy(&ix->pool_lock);
    pthread_mutex_destroy(&ix->grow_lock);
    pthread_mutex_destroy(&ix->top_lock);
    pthread_mutex_destroy(&ix->gate.closer);
    pthread_rwlock_destroy(&ix->label_lock);
    pthread_rwlock_destroy(&ix->save_lock);
}

/* All or nothing: 0, or nonzero with nothing left initialised. */
static int init_locks(sw_index *ix) {
    int n = 0;
    pthread_mutex_t *m[] = {&ix->ctx_lock, &ix->pool_lock, &ix->grow_lock, &ix->top_lock,
                            &ix->gate.closer};
    pthread_rwlock_t *rw[] = {&ix->label_lock, &ix->save_lock};
    for (; n < 5; n++)
        if (pthread_mutex_init(m[n], NULL) != 0) goto fail;
    /* sw_save takes save_lock to write while adds hold it to read; adds on
     * several threads overlap without a gap, so a reader-preferring lock
     * (glibc's default) could make a save wait for a whole batch.  Writers
     * first, where the C library lets us say so; nothing takes these
     * locks recursively, which is what makes that safe. */
    pthread_rwlockattr_t attr;
    if (pthread_rwlockattr_init(&attr) != 0) goto fail;
#ifdef __GLIBC__
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    for (; n < 7; n++)
        if (pthread_rwlock_init(rw[n - 5], &attr) != 0) break;
    pthread_rwlockattr_destroy(&attr);
    if (n < 7) goto fail;
    atomic_init(&ix->gate.inside, 0);
    atomic_init(&ix->gate.closed, 0);
    return 0;
fail:
    while (n-- > 0) {
        if (n < 5)
            pthread_mutex_destroy(m[n]);
        else
            pthread_rwlock_destroy(rw[n - 5]);
    }
    return -1;
}

/*
 * The gate.  Passing costs two atomic operations on one shared word; a
 * closer raises `closed`, then waits for `inside` to drain.  Both sides
 * use sequentially consistent operations, so a thread that enters while
 * the gate closes either sees `closed` and backs out, or is seen in
 * `inside` by the closer.  Waits are short (one vector copy on the
 * closing side), so they yield rather than sleep.
 */
void sw__gate_enter(sw__gate *g) {
    for (;;) {
        while (atomic_load(&g->closed)) sched_yield();
        atomic_fetch_add(&g->inside, 1);
        if (!atomic_load(&g->closed)) return;
        atomic_fetch_sub(&g->inside, 1);
    }
}

void sw__gate_leave(sw__gate *g) { atomic_fetch_sub(&g->inside, 1); }

void sw__gate_close(sw__gate *g) {
    pthread_mutex_lock(&g->closer);
    atomic_store(&g->closed, 1);
    while (atomic_load(&g->inside)) sched_yield();
}

void sw__gate_open(sw__gate *g) {
    atomic_store(&g->closed, 0);
    pthread_mutex_unlock(&g->closer);
}

void sw__node_lock(const sw_index *ix, uint32_t slot) {
    uint8_t *l = sw__lock_ptr(ix, slot);
    for (unsigned spins = 0; __atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE); spins++) {
        while (__atomic_load_n(l, __ATOMIC_RELAXED)) {
            if (++spins > 64) {
                sched_yield();
                spins = 0;
            }
        }
    }
}

/* ==== Create and free ==== */

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

sw_status sw__index_new(const sw_options *o, const sw_allocator *a, sw_index **out) {
    sw__mem mem;
    mem.a.alloc = a ? a->alloc : default_alloc;
    mem.a.free = a ? a->free : default_free;
    mem.a.ctx = a ? a->ctx : NULL;
    atomic_init(&mem.bytes, 0);

    sw_index *ix = mem.a.alloc(mem.a.ctx, sizeof *ix, SW__LINE);
    if (!ix) return sw__fail(SW_ENOMEM, "allocating the index (%zu bytes)", sizeof *ix);
    memset(ix, 0, sizeof *ix);
    ix->labels.ix = ix;
    ix->mem.a = mem.a;
    atomic_init(&ix->mem.bytes, sizeof *ix);
    if (init_locks(ix) != 0) {
        mem.a.free(mem.a.ctx, ix, sizeof *ix);
        return sw__fail(SW_ENOMEM, "initialising the index's locks");
    }

    ix->dim = o->dim;
    ix->metric = o->metric;
    ix->M = o->M;
    ix->M0 = o->M0 ? o->M0 : 2 * o->M;
    ix->ef_construction = o->ef_construction;
    ix->seed = o->seed;
    ix->keep_pruned = o->keep_pruned != 0;
    ix->extend_candidates = o->extend_candidates != 0;
    ix->user_allocator = a;
    ix->level_mult = 1.0 / log((double)ix->M);
    sw__quant_init(ix, o);
    atomic_init(&ix->ef_search, o->ef_search);

    /* A float32 record fills whole cache lines, so its vector starts on
     * one.  A code is small: padding its record to 64 bytes would cost a
     * fifth of an int8 index at M 16 (320 bytes for 260), so those records
     * are padded to 16 only and may straddle a line. */
    ix->vec_bytes = (size_t)ix->dim * sizeof(float);
    ix->links_off = round_up(ix->code_bytes, sizeof(uint32_t));
    ix->links_bytes = (1 + (size_t)ix->M0) * sizeof(uint32_t);
    ix->rec_bytes = round_up(ix->links_off + ix->links_bytes,
                             ix->type == SW_TYPE_F32 ? SW__LINE : 16);
    ix->upper_stride = 1 + (size_t)ix->M;
    /* About 2 MiB of records per chunk, at least 16 and at most 65536 slots:
     * small enough that a small index stays small, large enough that chunk
     * allocation is rare and huge pages can back a chunk later. */
    uint32_t shift = 4;
    while (shift < 16 && ((size_t)2 << shift) * ix->rec_bytes <= SW__CHUNK_TARGET) shift++;
    ix->chunk_shift = shift;

    sw__set_top(ix, SW__NONE, -1);
    ix->rng = o->seed;
    ix->epoch = 1; /* pins are nonzero; 0 means idle */
    *out = ix;
    return SW_OK;
}

sw_status sw_create(const sw_options *opt, sw_index **out) {
    if (out) *out = NULL;
    if (!opt || !out) return sw__fail(SW_ENULL, "sw_create: %s is NULL", opt ? "out" : "opt");
    sw_status st = sw__check_options(opt);
    if (st != SW_OK) return st;
    return sw__index_new(opt, opt->allocator, out);
}

void sw_free(sw_index *ix) {
    if (!ix) return;
    sw__pool_free(ix);
    sw__ctx_pool_free(ix);
    sw__labels_free(&ix->mem, &ix->labels);
    sw__storage_free(ix);
    sw__quant_free(ix);
    sw__free(&ix->mem, ix->freed, ix->freed_cap * sizeof *ix->freed);
    sw__free(&ix->mem, ix->meta, ix->meta_len);
    destroy_locks(ix);
    sw_allocator a = ix->mem.a;
    a.free(a.ctx, ix, sizeof *ix);
}

/* ==== Getters ==== */

size_t sw_count(const sw_index *ix) { return ix ? sw__live(ix) : 0; }
size_t sw_dim(const sw_index *ix) { return ix ? ix->dim : 0; }
sw_metric sw_get_metric(const sw_index *ix) { return ix ? ix->metric : SW_METRIC_L2; }
uint32_t sw_get_ef(const sw_index *ix) {
    return ix ? atomic_load_explicit(&ix->ef_search, memory_order_relaxed) : 0;
}

size_t sw_memory_usage(const sw_index *ix) {
    return ix ? atomic_load_explicit(&ix->mem.bytes, memory_order_relaxed) : 0;
}

int sw_contains(const sw_index *ix, uint64_t label) {
    if (!ix) return 0;
    sw_index *mix = (sw_index *)ix;
    pthread_rwlock_rdlock(&mix->label_lock);
    uint32_t s = sw__labels_find(&ix->labels, label);
    int found = s != SW__NONE && !(sw__flags(ix, s) & SW__F_DELETED);
    pthread_rwlock_unlock(&mix->label_lock);
    return found;
}

sw_status sw_get_options(const sw_index *ix, sw_options *out) {
    if (!ix || !out) return sw__fail(SW_ENULL, "sw_get_options: %s is NULL", ix ? "out" : "index");
    *out = sw_options_default();
    out->dim = ix->dim;
    out->metric = ix->metric;
    out->M = ix->M;
    out->M0 = ix->M0;
    out->ef_construction = ix->ef_construction;
    out->ef_search = sw_get_ef(ix);
    out->seed = ix->seed;
    out->keep_pruned = ix->keep_pruned;
    out->extend_candidates = ix->extend_candidates;
    out->allocator = ix->user_allocator;
    out->type = ix->type;
    out->keep = ix->keep;
    out->pq_m = ix->pq_m;
    return SW_OK;
}

sw_status sw_set_ef(sw_index *ix, uint32_t ef) {
    if (!ix) return sw__fail(SW_ENULL, "sw_set_ef: index is NULL");
    if (ef == 0 || ef > SW_MAX_EF)
        return sw__fail(SW_EEF, "ef is %u, must be 1..%u", ef, SW_MAX_EF);
    atomic_store_explicit(&ix->ef_search, ef, memory_order_relaxed);
    return SW_OK;
}

/* ==== Vectors in ==== */

sw_status sw__prepare_vector(const sw_index *ix, const float *v, float *dst) {
    /* One pass copies, checks and (for cosine) accumulates the norm, in
     * double: float squares of large elements overflow to Inf.  dst is
     * scratch, so writing it before a refusal changes nothing. */
    double s = 0;
    for (uint32_t i = 0; i < ix->dim; i++) {
        if (!isfinite(v[i])) return sw__fail(SW_ENOTFINITE, "element %u is %f", i, (double)v[i]);
        dst[i] = v[i];
        s += (double)v[i] * v[i];
    }
    if (ix->metric == SW_METRIC_COSINE && s > 0) {
        double inv = 1.0 / sqrt(s);
        for (uint32_t i = 0; i < ix->dim; i++) dst[i] = (float)(v[i] * inv);
    }
    return SW_OK;
}

sw_status sw__check_query(const sw_index *ix, const float *q, size_t dim, size_t k,
                          size_t *n_found, const char *fn) {
    if (n_found) *n_found = 0;
    if (!ix || !q || !n_found)
        return sw__fail(SW_ENULL, "%s: %s is NULL", fn, !ix ? "index" : !q ? "query" : "n_found");
    if (dim != ix->dim)
        return sw__fail(SW_EDIMMISMATCH, "%s: query has dimension %zu, the index %u", fn, dim,
                        ix->dim);
    if (k == 0) return sw__fail(SW_EK, "%s: k is 0", fn);
    return SW_OK;
}

/* ==== Levels ==== */

/* splitmix64's finaliser: a good 64-bit mix, enough to draw levels. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* floor(-ln(U) * mL) with U uniform in (0, 1], as in the paper; U comes
 * from the label and the seed (see internal.h). */
int sw__level_for(const sw_index *ix, uint64_t label) {
    uint64_t h = mix64(mix64(label + 0x9e3779b97f4a7c15ull) ^ ix->seed);
    double u = (double)((h >> 11) + 1) * (1.0 / 9007199254740992.0);
    double l = -log(u) * ix->level_mult;
    return l >= SW__MAX_LEVEL ? SW__MAX_LEVEL : (int)l;
}

/* ==== Vectors out ==== */

sw_status sw_get(const sw_index *ix, uint64_t label, float *out, size_t dim) {
    if (!ix || !out) return sw__fail(SW_ENULL, "sw_get: %s is NULL", ix ? "out" : "index");
    if (dim != ix->dim)
        return sw__fail(SW_EDIMMISMATCH, "sw_get: buffer has dimension %zu, the index %u", dim,
                        ix->dim);
    sw_index *mix = (sw_index *)ix;
    /* The label lock is held across the copy: a true deletion removes the
     * label under it before the slot can be recycled. */
    pthread_rwlock_rdlock(&mix->label_lock);
    uint32_t slot = sw__labels_find(&ix->labels, label);
    bool dead = slot != SW__NONE && (sw__flags(ix, slot) & SW__F_DELETED);
    if (slot != SW__NONE && !dead) {
        sw__gate_enter(&mix->gate); /* not while an update copies a vector */
        sw__vector_out(ix, slot, out);
        sw__gate_leave(&mix->gate);
    }
    pthread_rwlock_unlock(&mix->label_lock);
    if (slot == SW__NONE || dead)
        return sw__fail(SW_ENOTFOUND, "sw_get: label %llu%s", (unsigned long long)label,
                        dead ? " is marked deleted" : "");
    return SW_OK;
}

/* ==== Metadata ==== */

/* The blob is swapped under save_lock held alone, so sw_save, which holds
 * it too, writes either the old bytes or the new ones, and readers take it
 * shared. */
sw_status sw_set_metadata(sw_index *ix, const void *data, size_t len) {
    if (!ix || (!data && len))
        return sw__fail(SW_ENULL, "sw_set_metadata: %s is NULL", ix ? "data" : "index");
    if (ix->readonly) return sw__readonly_fail("sw_set_metadata");
    if (len > SW_MAX_METADATA)
        return sw__fail(SW_EINVAL, "sw_set_metadata: %zu bytes, at most %u", len, SW_MAX_METADATA);
    unsigned char *copy = NULL;
    if (len && !(copy = sw__alloc(&ix->mem, len, 1)))
        return sw__fail(SW_ENOMEM, "sw_set_metadata: %zu bytes", len);
    if (len) memcpy(copy, data, len);
    pthread_rwlock_wrlock(&ix->save_lock);
    unsigned char *old = ix->meta;
    size_t old_len = ix->meta_len;
    ix->meta = copy;
    ix->meta_len = len;
    pthread_rwlock_unlock(&ix->save_lock);
    sw__free(&ix->mem, old, old_len);
    return SW_OK;
}

sw_status sw_get_metadata(const sw_index *ix, void *buf, size_t cap, size_t *len) {
    if (!ix || !len || (!buf && cap))
        return sw__fail(SW_ENULL, "sw_get_metadata: %s is NULL", !ix ? "index" : !len ? "len" : "buf");
    sw_index *mix = (sw_index *)ix;
    pthread_rwlock_rdlock(&mix->save_lock);
    *len = ix->meta_len;
    size_t n = ix->meta_len < cap ? ix->meta_len : cap;
    if (n) memcpy(buf, ix->meta, n);
    pthread_rwlock_unlock(&mix->save_lock);
    return SW_OK;
}
