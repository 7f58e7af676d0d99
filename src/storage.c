/*
 * storage.c — chunks of node records that never move, and scratch space.
 *
 * Growth is "allocate a chunk, publish its pointer": stored vectors are never
 * copied, and a pointer into a chunk stays valid for the life of the index.
 * hnswlib instead reallocates one big block on resize_index, which both
 * copies every vector and forbids searching meanwhile.  The directory of
 * chunk pointers does get reallocated as it fills (it is tiny: 8 bytes per
 * ~2 MiB chunk), but the old directory is retired rather than freed, so a
 * reader that loaded the old pointer still sees valid chunks.  Retired
 * directories add at most the size of the live one (geometric growth).
 *
 * Growth happens under the index's grow_lock; the new directory, a chunk
 * pointer in it and the chunk count are published with release stores, in
 * that order, so a reader that finds a slot below the capacity finds its
 * chunk.
 *
 * Scratch contexts (visited marks, candidate pool, work space) are pooled on
 * the index under a mutex taken once per operation, not per node.  A context
 * that finds the index grown since its last use grows its visited array;
 * with epoch marks it is cleared only when the 8-bit epoch wraps.
 */
#include "internal.h"

#include <string.h>
#include <sys/mman.h>

/* ==== Chunks ==== */

/* Side arrays of a chunk: labels (u64), upper-link pointers, in-degrees
 * (u32), levels (u8), lock bytes, slot states (u8); sw__indeg_ptr assumes
 * 8-byte pointers. */
size_t sw__side_bytes(const sw_index *ix) { return sw__chunk_slots(ix) * (8 + 8 + 4 + 1 + 1 + 1); }

static size_t chunk_bytes(const sw_index *ix) {
    return sw__chunk_slots(ix) * ix->rec_bytes + sw__side_bytes(ix);
}

/* A chunk's full-precision copies. */
static size_t full_bytes(const sw_index *ix) { return sw__chunk_slots(ix) * ix->vec_bytes; }

/* Is p inside the file region the copies are mapped from? */
static bool in_full_map(const sw_index *ix, const void *p) {
    const char *lo = ix->full_map;
    return lo && (const char *)p >= lo && (const char *)p < lo + ix->full_map_len;
}

static sw_status grow_dir(sw_index *ix) {
    size_t cap = ix->dir_cap ? ix->dir_cap * 2 : 8;
    if (ix->retired_n == ix->retired_cap) {
        size_t rcap = ix->retired_cap ? ix->retired_cap * 2 : 8;
        void **r = sw__alloc(&ix->mem, rcap * sizeof *r, sizeof(void *));
        if (!r) return sw__fail(SW_ENOMEM, "growing the chunk directory");
        if (ix->retired_n) memcpy(r, ix->retired, ix->retired_n * sizeof *r);
        sw__free(&ix->mem, ix->retired, ix->retired_cap * sizeof *r);
        ix->retired = r;
        ix->retired_cap = rcap;
    }
    sw__chunk *d = sw__calloc(&ix->mem, cap * sizeof *d, SW__LINE);
    if (!d) return sw__fail(SW_ENOMEM, "growing the chunk directory");
    if (ix->nchunks) memcpy(d, ix->dir, ix->nchunks * sizeof *d);
    if (ix->dir) ix->retired[ix->retired_n++] = ix->dir;
    SW__STORE(&ix->dir, d); /* readers see the copied entries with it */
    ix->dir_cap = cap;
    return SW_OK;
}

/* Callers hold grow_lock (or own the index alone, as the loader does). */
sw_status sw__storage_reserve(sw_index *ix, size_t n) {
    while (sw__capacity(ix) < n) {
        if (ix->nchunks == ix->dir_cap) {
            sw_status st = grow_dir(ix);
            if (st != SW_OK) return st;
        }
        char *c = sw__alloc(&ix->mem, chunk_bytes(ix), SW__LINE);
        if (!c) return sw__fail(SW_ENOMEM, "allocating a chunk of %zu bytes", chunk_bytes(ix));
        /* A compressed index's full-precision copies: their own block, so
         * the walk's records stay dense (quant.c). */
        float *full = NULL;
        if (ix->has_full && !(full = sw__alloc(&ix->mem, full_bytes(ix), SW__LINE))) {
            sw__free(&ix->mem, c, chunk_bytes(ix));
            return sw__fail(SW_ENOMEM, "allocating %zu bytes of full-precision vectors",
                            full_bytes(ix));
        }
        ix->dir[ix->nchunks].full = full;
        /* Only the side arrays need zeroing: a record is written in full
         * before its slot is counted. */
        size_t recs = sw__chunk_slots(ix) * ix->rec_bytes;
        memset(c + recs, 0, sw__side_bytes(ix));
        ix->dir[ix->nchunks].side = c + recs;
        SW__STORE(&ix->dir[ix->nchunks].rec, c);
        SW__STORE(&ix->nchunks, ix->nchunks + 1);
    }
    return SW_OK;
}

sw_status sw__storage_map(sw_index *ix, void *map, size_t len, size_t off, uint32_t n) {
    ix->map = map;
    ix->map_len = len;
    ix->map_nodes_off = off;
    size_t per = sw__chunk_slots(ix), chunks = (n + per - 1) / per;
    while (ix->dir_cap < chunks) {
        sw_status st = grow_dir(ix);
        if (st != SW_OK) return st;
    }
    for (size_t i = 0; i < chunks; i++) {
        char *side = sw__calloc(&ix->mem, sw__side_bytes(ix), SW__LINE);
        if (!side) return sw__fail(SW_ENOMEM, "allocating %zu bytes for a mapped chunk", sw__side_bytes(ix));
        ix->dir[i].rec = (char *)map + off + i * per * ix->rec_bytes;
        ix->dir[i].side = side;
        ix->nchunks = i + 1;
    }
    return SW_OK;
}

void sw__storage_free(sw_index *ix) {
    for (uint32_t s = 0; s < ix->count; s++) {
        int l = sw__level(ix, s);
        if (l > 0) sw__upper_free(ix, *sw__upper_ptr(ix, s), l);
    }
    for (size_t i = 0; i < ix->nchunks; i++) {
        if (ix->dir[i].full && !in_full_map(ix, ix->dir[i].full))
            sw__free(&ix->mem, ix->dir[i].full, full_bytes(ix));
        if (ix->map) /* records in the mapping, side arrays apart */
            sw__free(&ix->mem, ix->dir[i].side, sw__side_bytes(ix));
        else
            sw__free(&ix->mem, ix->dir[i].rec, chunk_bytes(ix));
    }
    sw__free(&ix->mem, ix->dir, ix->dir_cap * sizeof *ix->dir);
    /* Each retired directory had half the capacity of its successor. */
    size_t cap = ix->dir_cap;
    for (size_t i = ix->retired_n; i-- > 0;) {
        cap /= 2;
        sw__free(&ix->mem, ix->retired[i], cap * sizeof(sw__chunk));
    }
    sw__free(&ix->mem, ix->retired, ix->retired_cap * sizeof(void *));
    if (ix->map) munmap(ix->map, ix->map_len);
    if (ix->full_map && ix->full_map != ix->map) munmap(ix->full_map, ix->full_map_len);
    ix->map = ix->full_map = NULL;
    ix->dir = NULL;
    ix->nchunks = ix->dir_cap = ix->retired_n = ix->retired_cap = 0;
}

uint32_t *sw__upper_alloc(sw_index *ix, int level) {
    return sw__calloc(&ix->mem, (size_t)level * ix->upper_stride * sizeof(uint32_t),
                      sizeof(uint32_t));
}

void sw__upper_free(sw_index *ix, uint32_t *p, int level) {
    sw__free(&ix->mem, p, (size_t)level * ix->upper_stride * sizeof(uint32_t));
}

/* ==== Scratch contexts ==== */

size_t sw__ctx_bytes(const sw__ctx *c) {
    return sizeof *c + c->visited_cap * sizeof *c->visited + c->pool_cap * sizeof *c->pool +
           c->expanded_cap + c->work_cap * sizeof *c->work + c->dim * sizeof(float) +
           2 * c->qcode_bytes +
           (sizeof *c->extra << SW__EXTRA_BITS);
}

/* Frees what sw__ctx_bytes counts. */
static void ctx_free(const sw_index *ix, sw__ctx *c) {
    sw__mem *m = (sw__mem *)&ix->mem; /* the byte counter is atomic */
    sw__free(m, c->visited, c->visited_cap * sizeof *c->visited);
    sw__free(m, c->pool, c->pool_cap * sizeof *c->pool);
    sw__free(m, c->expanded, c->expanded_cap);
    sw__free(m, c->work, c->work_cap * sizeof *c->work);
    sw__free(m, c->query, c->dim * sizeof(float));
    sw__free(m, c->qcode, c->qcode_bytes);
    sw__free(m, c->nq, c->qcode_bytes);
    sw__free(m, c->extra, sizeof *c->extra << SW__EXTRA_BITS);
    sw__free(m, c, sizeof *c);
}

/* Grow one buffer of a context, keeping nothing (contents are scratch). */
static bool regrow(sw__mem *m, void **p, size_t *cap, size_t want, size_t elem) {
    if (*cap >= want) return true;
    size_t n = *cap ? *cap : 16;
    while (n < want) n *= 2;
    void *q = sw__alloc(m, n * elem, SW__LINE);
    if (!q) return false;
    sw__free(m, *p, *cap * elem);
    *p = q;
    *cap = n;
    return true;
}

sw__ctx *sw__ctx_acquire(const sw_index *ix, size_t pool, size_t work) {
    sw_index *mix = (sw_index *)ix; /* the pool is mutable state behind a lock */
    sw__mem *m = &mix->mem;
    pthread_mutex_lock(&mix->ctx_lock);
    sw__ctx *c = mix->ctx_free;
    if (c) mix->ctx_free = c->next;
    pthread_mutex_unlock(&mix->ctx_lock);
    bool listed = c != NULL;

    if (!c) {
        c = sw__calloc(m, sizeof *c, SW__LINE);
        if (!c) goto fail;
        c->dim = ix->dim;
        c->query = sw__alloc(m, ix->vec_bytes, SW__LINE);
        if (!c->query) goto fail;
        if (ix->qcode_bytes) {
            c->qcode_bytes = ix->qcode_bytes;
            c->qcode = sw__alloc(m, c->qcode_bytes, SW__LINE);
            c->nq = sw__alloc(m, c->qcode_bytes, SW__LINE);
            if (!c->qcode || !c->nq) goto fail;
        }
        c->extra = sw__calloc(m, sizeof *c->extra << SW__EXTRA_BITS, SW__LINE);
        if (!c->extra) goto fail;
        /* On the list of all contexts for good: the recycler reads pins
         * without the lock, so a context is never unlinked before sw_free. */
        pthread_mutex_lock(&mix->ctx_lock);
        c->all_next = mix->ctx_all;
        SW__STORE(&mix->ctx_all, c);
        pthread_mutex_unlock(&mix->ctx_lock);
        listed = true;
    }
    size_t vis = sw__capacity(ix);
    if (c->visited_cap < vis) {
        if (!regrow(m, (void **)&c->visited, &c->visited_cap, vis, sizeof *c->visited)) goto fail;
        memset(c->visited, 0, c->visited_cap * sizeof *c->visited);
        memset(c->extra, 0, sizeof *c->extra << SW__EXTRA_BITS);
        c->epoch = c->extra_epoch = c->extra_used = 0;
    }
    if (!regrow(m, (void **)&c->pool, &c->pool_cap, pool, sizeof *c->pool)) goto fail;
    if (!regrow(m, (void **)&c->expanded, &c->expanded_cap, pool, 1)) goto fail;
    if (!regrow(m, (void **)&c->work, &c->work_cap, work, sizeof *c->work)) goto fail;
    sw__pin(ix, c);
    return c;

fail:
    /* A context on ctx_all stays (idle, pin 0) and goes back to the pool;
     * one that never got there is freed. */
    if (listed)
        sw__ctx_release(ix, c);
    else if (c)
        ctx_free(ix, c);
    sw__fail(SW_ENOMEM, "allocating search scratch space");
    return NULL;
}

void sw__ctx_release(const sw_index *ix, sw__ctx *c) {
    sw_index *mix = (sw_index *)ix;
    sw__unpin(c);
    pthread_mutex_lock(&mix->ctx_lock);
    c->next = mix->ctx_free;
    mix->ctx_free = c;
    pthread_mutex_unlock(&mix->ctx_lock);
}

void sw__ctx_pool_free(sw_index *ix) {
    /* At sw_free every context is idle, so ctx_all lists them all. */
    while (ix->ctx_all) {
        sw__ctx *c = ix->ctx_all;
        ix->ctx_all = c->all_next;
        ctx_free(ix, c);
    }
    ix->ctx_free = NULL;
}

void sw__ctx_new_epoch(sw__ctx *c) {
    if (++c->epoch == 0) {
        memset(c->visited, 0, c->visited_cap * sizeof *c->visited);
        memset(c->extra, 0, sizeof *c->extra << SW__EXTRA_BITS);
        c->epoch = 1;
        /* the side set's fill count is of an epoch that may come round
         * again as 1: start it afresh */
        c->extra_epoch = 0;
        c->extra_used = 0;
    }
}

/* Entries of an older epoch count as empty, so nothing is cleared per
 * search.  Kept at most half full; past that a new node counts as already
 * visited, which only makes that search see less of what was just added. */
bool sw__visit_extra(sw__ctx *c, uint32_t id) {
    const uint32_t mask = (1u << SW__EXTRA_BITS) - 1;
    if (c->extra_epoch != c->epoch) {
        c->extra_epoch = c->epoch;
        c->extra_used = 0;
    }
    for (uint32_t h = (id * 0x9e3779b1u) >> (32 - SW__EXTRA_BITS);; h = (h + 1) & mask) {
        struct sw__mark *e = &c->extra[h];
        if (e->epoch != c->epoch) {
            if (c->extra_used >= mask / 2) return false;
            e->id = id;
            e->epoch = c->epoch;
            c->extra_used++;
            return true;
        }
        if (e->id == id) return false;
    }
}
