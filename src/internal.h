/*
 * internal.h — private structures and cross-file prototypes.
 *
 * The index is a set of parallel arrays addressed by a dense internal id
 * (a "slot", uint32_t).  Everything a search touches per visited node sits in
 * one layer-0 record, padded to whole cache lines:
 *
 *     [ vector: dim floats | pad to 4 | count: u32 | neighbours: M0 x u32 | pad to 64 ]
 *
 * The vector comes first so it starts on a cache-line boundary (full-width
 * SIMD loads never straddle a line at the start of the vector); the link
 * block follows, so prefetching a record brings the vector and, for the
 * node about to be expanded, its links.
 *
 * Records live in chunks of a fixed number of slots (a power of two chosen
 * per index so a chunk is about 2 MiB).  A chunk never moves once allocated.
 * The chunk directory (an array of chunk pointers) grows by allocating a new,
 * larger array and publishing it; the old one is kept until the index is
 * freed, so a reader that loaded the old directory pointer keeps a valid view.
 * That is what lets the concurrency work add lock-free readers without
 * rewriting storage.  Each chunk also carries the per-slot label, level,
 * layer-0 in-degree and upper-layer link pointer, in separate arrays behind
 * the records: they are read once per result, per upper-layer hop or per
 * link change, not per distance.
 *
 * Upper-layer links (about 1/M of nodes have any) are one allocation per
 * node: level x [count: u32 | M x u32].
 *
 * Concurrency (the contract is in smallworld.h).  Searches take no lock on
 * the graph.  A link list is changed only by a writer holding its node's
 * lock byte; readers load the count and the ids with acquire loads and
 * writers store them with release stores (plain moves on x86-64; LDAR and
 * STLR on arm64), so a reader that sees an id also sees the vector and
 * lists written before that id was published, and may see an old list, a
 * new one, or a mix: every id in any of them is a node that exists.  The
 * entry point and top level are one 64-bit word, raised under top_lock.
 * Slots are handed out under grow_lock; the label map has a read-write
 * lock (searches never touch it).  The one write that cannot be made safe
 * for a concurrent reader this way is an update overwriting a vector in
 * place: the gate (index.c) lets any number of searches and adds in, and
 * holds them out only for the copy of an updated vector.  Deletion takes a
 * node out of every list while searches run, and recycles its slot only
 * after a grace period (epoch-based reclamation, delete.c): each
 * operation pins the epoch it started in on its scratch context.
 */
#ifndef SW_INTERNAL_H
#define SW_INTERNAL_H

/* Read-write locks and sched_yield are POSIX; the library is C11 + POSIX. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "smallworld.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define SW__HIDDEN __attribute__((visibility("hidden")))
#define SW__LIKELY(x) __builtin_expect(!!(x), 1)
#define SW__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define SW__PREFETCH(p) __builtin_prefetch((p), 0, 3)
#define SW__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SW__HIDDEN
#define SW__LIKELY(x) (x)
#define SW__UNLIKELY(x) (x)
#define SW__PREFETCH(p) ((void)(p))
#define SW__PRINTF(f, a)
#endif

#define SW__NONE UINT32_MAX       /* "no slot" */

/* Shared words of the graph: acquire loads, release stores (see the top). */
#define SW__LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define SW__STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define SW__MAX_SLOTS (UINT32_MAX - 1u)
#define SW__MAX_LEVEL 63          /* levels are drawn with P(l) ~ M^-l; 63 is never reached */
#define SW__LINE 64               /* cache line */
#define SW__CHUNK_TARGET (2u << 20)
/* Records past this many bytes make a search prefetch whole vectors and
 * link blocks (search.c, "Prefetching"). */
#define SW__DEEP_PREFETCH_BYTES ((size_t)32 << 20)

/* ==== Errors (error.c) ==== */

/* Record the detail of a failure for sw_last_error() and return `status`. */
SW__HIDDEN sw_status sw__fail(sw_status status, const char *fmt, ...) SW__PRINTF(2, 3);

/* ==== Distances (simd/) ==== */

/* Element types a kernel reads, and what it measures.  `n` counts
 * elements: floats, halves, bytes, or for SW__ET_BITS bytes of packed bits
 * (the caller zeroes unused bits of the last byte).  Every kernel returns
 * a distance, smaller is nearer: squared L2, 1 - dot for inner product (for
 * every type, integers included), sum of |a - b| for L1, differing bits for
 * Hamming.  Integer kernels are exact (32-bit integer sums) up to the float
 * conversion of the result. */
typedef enum sw__etype { SW__ET_F32, SW__ET_F16, SW__ET_I8, SW__ET_U8, SW__ET_BITS, SW__ET_COUNT } sw__etype;
typedef enum sw__kind { SW__K_L2, SW__K_IP, SW__K_L1, SW__K_HAMMING, SW__K_COUNT } sw__kind;

typedef float (*sw__dist_fn)(const void *a, const void *b, size_t n);
/* The batch form: out[i] = distance(q, v[i]) for i < 4. */
typedef void (*sw__dist4_fn)(const void *q, const void *const *v, size_t n, float *out);

/* The kernels in use (chosen once per process), for a float32 index. */
SW__HIDDEN sw__dist_fn sw__dist_for(sw_metric metric);
SW__HIDDEN sw__dist4_fn sw__dist4_for(sw_metric metric);
/* Any kernel of any level by name ("scalar", "neon", "avx2", "avx512",
 * "avx512vnni"; NULL = the level in use), or NULL if this CPU lacks the
 * level or the type has no such kernel.  For the tests and the bench. */
SW__HIDDEN sw__dist_fn sw__kernel(sw__etype t, sw__kind k, const char *level);
SW__HIDDEN sw__dist4_fn sw__kernel4(sw__etype t, sw__kind k, const char *level);
/* IEEE half <-> float, exact one way, round-to-nearest-even the other. */
SW__HIDDEN float sw__f16_to_f32(uint16_t h);
SW__HIDDEN uint16_t sw__f32_to_f16(float f);

/* ==== Checksums (crc32c.c) ==== */

/* CRC-32C of data[0..n), continuing from `crc` (0 to start); hardware
 * where the CPU has it.  The portable form is the table alone, for tests. */
SW__HIDDEN uint32_t sw__crc32c(uint32_t crc, const void *data, size_t n);
SW__HIDDEN uint32_t sw__crc32c_portable(uint32_t crc, const void *data, size_t n);

/* ==== Files (persist.c, persist_legacy.c) ==== */

/* Load a file of format version 1, 2 or 3 (the single-checksum stream of
 * 0.1.0 and 0.2.0). */
SW__HIDDEN sw_status sw__load_legacy(const char *path, const sw_allocator *allocator,
                                     sw_index **out);
/* Check a file's parameters (options read from it, element type, build
 * flags) and complete *o from the flags; SW_ECORRUPT naming the problem. */
SW__HIDDEN sw_status sw__file_options(sw_options *o, uint32_t etype, uint32_t flags,
                                      const char *path);

/* ==== Memory ==== */

typedef struct sw__mem {
    sw_allocator a;
    atomic_size_t bytes; /* live bytes handed out, for sw_memory_usage */
} sw__mem;

SW__HIDDEN void *sw__alloc(sw__mem *m, size_t size, size_t align);
SW__HIDDEN void *sw__calloc(sw__mem *m, size_t size, size_t align);
SW__HIDDEN void sw__free(sw__mem *m, void *p, size_t size);

/* ==== Label map (labels.c) ==== */

/* Open addressing, linear probing, label -> slot.  Load factor <= 1/2.
 * A bucket holds only the slot; the label is the slot's own (its side
 * array), so a slot must carry its label before it enters the map and
 * keep it until it leaves. */
typedef struct sw__labelmap {
    uint32_t *vals; /* slots; SW__NONE marks an empty bucket */
    size_t cap;     /* power of two, or 0 */
    size_t used;
    const struct sw_index *ix; /* whose side arrays hold each slot's label */
} sw__labelmap;

SW__HIDDEN uint32_t sw__labels_find(const sw__labelmap *lm, uint64_t label);
/* Make room so that one more insert cannot fail. */
SW__HIDDEN sw_status sw__labels_reserve(sw__mem *m, sw__labelmap *lm, size_t extra);
/* Insert a label known to be absent; room must have been reserved. */
SW__HIDDEN void sw__labels_put(sw__labelmap *lm, uint64_t label, uint32_t slot);
SW__HIDDEN void sw__labels_remove(sw__labelmap *lm, uint64_t label);
/* Insert slots 0..n-1 (their labels already in the side arrays) until a
 * label repeats: returns that slot, or SIZE_MAX when all were new.  The
 * map must be empty with room reserved. */
SW__HIDDEN size_t sw__labels_put_all(sw__labelmap *lm, uint32_t n);
/* Little-endian fields of a file, on any host (persist.c, labels.c). */
static inline uint32_t sw__get32le(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t sw__get64le(const unsigned char *p) {
    return sw__get32le(p) | (uint64_t)sw__get32le(p + 4) << 32;
}
SW__HIDDEN void sw__labels_free(sw__mem *m, sw__labelmap *lm);

/* ==== Search scratch (storage.c) ==== */

/* A candidate: distance to the query and the slot. */
typedef struct sw__cand {
    float dist;
    uint32_t id;
} sw__cand;

/*
 * Per-operation scratch, pooled on the index and reused, so a search
 * allocates nothing once warm.  Visited marks are epochs: bumping the epoch
 * clears all marks at once.  A mark is one byte, so the array is cleared
 * for real every 255 epochs, a memset of one byte per node.  Every layer
 * search takes an epoch, and a search with the upper-layer beam (search.c,
 * "The descent") takes one per layer: at a million nodes about 5, so the
 * 1 MiB clear comes every ~50 searches.  By arithmetic (a memset at about
 * 30 GB/s; not measured separately) that is about 0.5 us a search against
 * the ~50 us it takes (1%), about 5 us at 10 million nodes, and at 100
 * million, where a clear is 100 MB every ~35 searches, it would dominate;
 * wider marks or clearing only the touched ids are the way out when
 * indexes that large are measured.  The byte is
 * for the cache: the marks of a large index are read at random, one per
 * neighbour, and at a million nodes 1 MiB of marks stays far better cached
 * than 4 MiB.  Measured on make_synth 1,000,000 x 128 (sw_bench-style
 * sweep, one thread): 32-bit marks 15,062 QPS at ef 64, 16-bit 16,411,
 * 8-bit 18,080.
 */
typedef uint8_t sw__vmark;
typedef struct sw__ctx {
    struct sw__ctx *next;
    sw__vmark *visited;
    size_t visited_cap;
    sw__vmark epoch;
    sw__cand *pool;   /* the sorted candidate pool of a layer search */
    size_t pool_cap;
    uint8_t *expanded; /* one flag per pool entry */
    size_t expanded_cap;
    sw__cand *work;   /* seeds, selection candidates, heaps */
    uint64_t ndist, nhops; /* distances and expansions of the walks since reset */
    size_t work_cap;
    float *query;     /* the query, copied (and normalised for cosine) */
    size_t dim;
    /* The query as the walk compares it (quant.c, sw__ctx_query): c->query
     * itself for float32, else its code (its lookup table for PQ) in
     * qcode; nq is room for one more, a stored node's (sw__node_query). */
    const void *qv;
    void *qcode, *nq;
    size_t qcode_bytes;
    /* Marks for nodes added after `visited` was sized (id >= visited_cap):
     * a small open-addressing set of (id, epoch), so a search that meets
     * new nodes can still walk through them. */
    struct sw__mark { uint32_t id, epoch; } *extra;
    uint32_t extra_used, extra_epoch;
    /* Reclamation (delete.c): the index epoch this context's operation
     * started in, 0 while idle.  Every context ever made is on the index's
     * ctx_all list, which is how a recycler finds the oldest operation. */
    uint64_t pin;
    struct sw__ctx *all_next;
} sw__ctx;

#define SW__EXTRA_BITS 11 /* 2048 marks; a search meets far fewer new nodes */

SW__HIDDEN bool sw__visit_extra(sw__ctx *c, uint32_t id);
/* Mark `id` visited in this epoch; false if it already was. */
static inline bool sw__visit(sw__ctx *c, uint32_t id) {
    if (SW__LIKELY(id < c->visited_cap)) {
        if (c->visited[id] == c->epoch) return false;
        c->visited[id] = c->epoch;
        return true;
    }
    return sw__visit_extra(c, id);
}

/* ==== Slot states (delete.c) ==== */

/* One byte per slot.  0: a live node.  DELETED: a tombstone, not a result
 * but still in the graph.  FREE: out of the graph (no list of a node that
 * is not FREE points to it), its record kept as it was until the slot is
 * recycled, which waits until no operation that began before the free is
 * still running (see delete.c). */
#define SW__F_DELETED 1u
#define SW__F_FREE 2u

/* A slot waiting to be recycled, and the index epoch of its release. */
typedef struct sw__freed {
    uint32_t slot;
    uint64_t epoch;
} sw__freed;

/* ==== The gate (index.c) ==== */

/* Many may pass together; one may close it, waiting for those inside to
 * leave and holding new ones out (writer-preferring, no reader cap). */
typedef struct sw__gate {
    atomic_uint inside;
    atomic_uint closed;
    pthread_mutex_t closer; /* one closer at a time */
} sw__gate;

SW__HIDDEN void sw__gate_enter(sw__gate *g);
SW__HIDDEN void sw__gate_leave(sw__gate *g);
SW__HIDDEN void sw__gate_close(sw__gate *g);
SW__HIDDEN void sw__gate_open(sw__gate *g);

/* ==== The index ==== */

struct sw_index {
    sw__mem mem;
    /* parameters (immutable after create) */
    uint32_t dim;
    sw_metric metric;
    uint32_t M, M0, ef_construction;
    uint64_t seed;
    int keep_pruned, extend_candidates;
    const sw_allocator *user_allocator; /* as given, for sw_get_options */
    double level_mult; /* mL = 1 / ln(M) */
    sw__dist_fn dist;   /* walk query (c->qv) against a record's code */
    sw__dist4_fn dist4; /* the same distance, one query against four vectors */
    sw__dist_fn fdist;  /* float32 against float32 (full-precision copies) */
    /* quantized storage (quant.c) */
    sw_type type;
    sw_keep keep;
    bool has_full;      /* full-precision copies kept (type != F32, keep != NONE) */
    struct sw__quant *quant; /* the trained quantizer, or NULL (published once) */
    size_t code_bytes;  /* a code in a record: the vector for float32 */
    size_t code_n;      /* the n the kernels take: elements, bytes of bits, or PQ's m */
    size_t qcode_bytes; /* a walk query in code form (PQ: its lookup table) */
    uint32_t pq_m;
    uint64_t saturated; /* int8 components clamped (atomic) */
    void *full_map;     /* a file region the full-precision copies are mapped from */
    size_t full_map_len;
    /* record geometry */
    size_t vec_bytes;   /* dim * 4: a float32 vector (query, full copy) */
    size_t links_off;   /* offset of the link block in a record */
    size_t links_bytes; /* its size, (1 + M0) * 4 */
    size_t rec_bytes;   /* record size, multiple of SW__LINE */
    uint32_t chunk_shift; /* slots per chunk = 1 << chunk_shift */
    size_t upper_stride;  /* u32 words per upper layer: 1 + M */
    /* storage */
    struct sw__chunk *dir; /* chunk directory */
    size_t dir_cap;
    void **retired;       /* old directories, freed with the index */
    size_t retired_n, retired_cap;
    size_t nchunks;
    void *map;            /* a file this index serves from (persist.c), or NULL */
    size_t map_len;
    size_t map_nodes_off, map_nodes_len; /* its NODES section, checked by sw_verify */
    uint32_t map_nodes_crc;
    bool readonly;        /* opened with sw_open_mmap: every write refused */
    uint32_t count;       /* slots in use: 0 .. count-1 (SW__LOAD) */
    uint64_t top;         /* entry slot | max level << 32 (see sw__top) */
    uint64_t rng;         /* kept for the file format; levels come from labels */
    atomic_uint ef_search;
    sw__labelmap labels;
    /* locks (see the top of this file) */
    pthread_mutex_t grow_lock;   /* slot hand-out and chunk growth */
    pthread_mutex_t top_lock;    /* raising the entry point */
    pthread_rwlock_t label_lock; /* the label map */
    pthread_rwlock_t save_lock;  /* adds share it; sw_save holds it alone */
    sw__gate gate;               /* searches and adds pass; updated vectors close it */
    /* deletion (delete.c) */
    size_t ndeleted;      /* tombstones (SW__LOAD) */
    uint32_t nfree;       /* FREE slots (SW__LOAD; changed under grow_lock) */
    uint64_t epoch;       /* reclamation epoch, starts at 1 (seq_cst builtins) */
    sw__freed *freed;     /* FREE slots, oldest first: a ring under grow_lock */
    size_t freed_cap, freed_head;
    /* rows added since the last reachability pass (batch.c), atomic */
    size_t added_since_pass;
    /* the application's bytes (sw_set_metadata), changed under save_lock alone */
    unsigned char *meta;
    size_t meta_len;
    /* scratch pool */
    pthread_mutex_t ctx_lock;
    sw__ctx *ctx_free;
    sw__ctx *ctx_all;     /* every context, for the recycler (never shrinks) */
    /* worker threads for batch calls (pool.c) */
    pthread_mutex_t pool_lock;
    struct sw__pool *pool;
};

/* A chunk: its records, and its side arrays (labels, upper pointers,
 * layer-0 in-degrees, levels, lock bytes, slot states).  An allocated chunk
 * holds both in one block, the side arrays right after the records; an
 * index served from a mapped file (persist.c) has its records in the
 * mapping and its side arrays in memory. */
typedef struct sw__chunk {
    char *rec;
    char *side;
    float *full; /* full-precision copies (quantized types), or NULL */
} sw__chunk;

static inline size_t sw__chunk_slots(const sw_index *ix) { return (size_t)1 << ix->chunk_shift; }

static inline char *sw__rec(const sw_index *ix, uint32_t slot) {
    sw__chunk *dir = SW__LOAD(&((sw_index *)ix)->dir);
    return dir[slot >> ix->chunk_shift].rec +
           (size_t)(slot & ((1u << ix->chunk_shift) - 1)) * ix->rec_bytes;
}
/* The node's vector as the walk compares it: its code (the float32
 * vector itself for a float32 index). */
static inline void *sw__vec(const sw_index *ix, uint32_t slot) {
    return sw__rec(ix, slot);
}
/* The full-precision copy of a compressed index's vector (ix->has_full). */
static inline float *sw__full(const sw_index *ix, uint32_t slot) {
    sw__chunk *dir = SW__LOAD(&((sw_index *)ix)->dir);
    return dir[slot >> ix->chunk_shift].full +
           (size_t)(slot & ((1u << ix->chunk_shift) - 1)) * ix->dim;
}
/* Layer-0 link block: [count, ids...]. */
static inline uint32_t *sw__links0(const sw_index *ix, uint32_t slot) {
    return (uint32_t *)(void *)(sw__rec(ix, slot) + ix->links_off);
}
static inline char *sw__side(const sw_index *ix, uint32_t slot) {
    sw__chunk *dir = SW__LOAD(&((sw_index *)ix)->dir);
    return dir[slot >> ix->chunk_shift].side;
}
static inline uint64_t *sw__label_ptr(const sw_index *ix, uint32_t slot) {
    return (uint64_t *)(void *)sw__side(ix, slot) + (slot & ((1u << ix->chunk_shift) - 1));
}
static inline uint32_t **sw__upper_ptr(const sw_index *ix, uint32_t slot) {
    return (uint32_t **)(void *)(sw__side(ix, slot) + sw__chunk_slots(ix) * 8) +
           (slot & ((1u << ix->chunk_shift) - 1));
}
/* Number of layer-0 links pointing at the slot (see insert.c). */
static inline uint32_t *sw__indeg_ptr(const sw_index *ix, uint32_t slot) {
    return (uint32_t *)(void *)(sw__side(ix, slot) + sw__chunk_slots(ix) * 16) +
           (slot & ((1u << ix->chunk_shift) - 1));
}
static inline uint8_t *sw__level_ptr(const sw_index *ix, uint32_t slot) {
    return (uint8_t *)(sw__side(ix, slot) + sw__chunk_slots(ix) * 20) +
           (slot & ((1u << ix->chunk_shift) - 1));
}
static inline int sw__level(const sw_index *ix, uint32_t slot) { return *sw__level_ptr(ix, slot); }
/* One lock byte per node, guarding its link lists on every layer.  Held
 * for one list change (microseconds), never two at once, so a spin with
 * a yield is enough and no lock order is needed. */
static inline uint8_t *sw__lock_ptr(const sw_index *ix, uint32_t slot) {
    return (uint8_t *)(sw__side(ix, slot) + sw__chunk_slots(ix) * 21) +
           (slot & ((1u << ix->chunk_shift) - 1));
}
/* The slot's state (SW__F_*), read with acquire: a slot seen live has its
 * record complete. */
static inline uint8_t *sw__flags_ptr(const sw_index *ix, uint32_t slot) {
    return (uint8_t *)(sw__side(ix, slot) + sw__chunk_slots(ix) * 22) +
           (slot & ((1u << ix->chunk_shift) - 1));
}
static inline unsigned sw__flags(const sw_index *ix, uint32_t slot) {
    return SW__LOAD(sw__flags_ptr(ix, slot));
}
SW__HIDDEN void sw__node_lock(const sw_index *ix, uint32_t slot);
static inline void sw__node_unlock(const sw_index *ix, uint32_t slot) {
    __atomic_store_n(sw__lock_ptr(ix, slot), 0, __ATOMIC_RELEASE);
}
/* Entry point and top level, read together. */
static inline uint32_t sw__top(const sw_index *ix, int *max_level) {
    uint64_t t = SW__LOAD(&((sw_index *)ix)->top);
    *max_level = (int)(int32_t)(uint32_t)(t >> 32);
    return (uint32_t)t;
}
static inline void sw__set_top(sw_index *ix, uint32_t entry, int max_level) {
    SW__STORE(&ix->top, (uint64_t)(uint32_t)max_level << 32 | entry);
}
static inline uint32_t sw__count(const sw_index *ix) { return SW__LOAD(&((sw_index *)ix)->count); }
/* Link block of `slot` on `layer` (0 = layer 0): [count, ids...]. */
static inline uint32_t *sw__links(const sw_index *ix, uint32_t slot, int layer) {
    if (layer == 0) return sw__links0(ix, slot);
    return *sw__upper_ptr(ix, slot) + (size_t)(layer - 1) * ix->upper_stride;
}
static inline uint32_t sw__max_degree(const sw_index *ix, int layer) {
    return layer == 0 ? ix->M0 : ix->M;
}
/* A walk's snapshot of the chunk directory, so the hot loop finds a
 * record with one load instead of an acquire load of ix->dir per id.  The
 * chunk count is read before the directory: every directory published
 * after the count was stored holds the chunks it counts, so dir[0..slots)
 * is sound.  `ok` is that bound cut at the link limit (sw__link_limit,
 * below): the ids a list may hold without a second look.  An id past it
 * is past the link limit (skipped) or a node added since by a concurrent
 * add (sw__view_load again). */
static inline uint32_t sw__link_limit(const sw_index *ix);
typedef struct sw__view {
    const sw__chunk *dir;
    size_t ok;
} sw__view;
static inline void sw__view_load(const sw_index *ix, sw__view *v) {
    size_t n = SW__LOAD(&((sw_index *)ix)->nchunks), lim = sw__link_limit(ix);
    v->dir = SW__LOAD(&((sw_index *)ix)->dir);
    v->ok = n << ix->chunk_shift;
    if (v->ok > lim) v->ok = lim;
}
static inline const char *sw__view_rec(const sw_index *ix, const sw__view *v, uint32_t slot) {
    return v->dir[slot >> ix->chunk_shift].rec +
           (size_t)(slot & ((1u << ix->chunk_shift) - 1)) * ix->rec_bytes;
}
/* Ids a search may follow.  A mapped index's layer-0 records are checked
 * only by sw_verify (persist.c), so its searches skip ids past the last
 * node and clamp degrees to the layer's bound: a damaged record cannot
 * send them outside the mapping.  In memory every list was checked (on
 * load, or built here), and the bounds never bite. */
static inline uint32_t sw__link_limit(const sw_index *ix) {
    return ix->map ? ix->count : UINT32_MAX;
}
static inline size_t sw__capacity(const sw_index *ix) {
    return SW__LOAD(&((sw_index *)ix)->nchunks) << ix->chunk_shift;
}

/* ==== Quantized storage (quant.c) ==== */

/* Set the type's fields of a new index from checked options (no training). */
SW__HIDDEN sw_status sw__quant_init(sw_index *ix, const sw_options *o);
SW__HIDDEN sw_status sw__quant_check(const sw_options *o);
SW__HIDDEN void sw__quant_free(sw_index *ix);
/* Copy, check and normalise `query` into c->query and set c->qv. */
SW__HIDDEN sw_status sw__ctx_query(const sw_index *ix, sw__ctx *c, const float *query);
/* Write the code of the prepared vector v (c->query form) at dst. */
SW__HIDDEN void sw__encode(sw_index *ix, const float *v, void *dst);
/* Store node `slot`'s vector: its code in the record and, when kept, its
 * full-precision copy. */
static inline void sw__store_vector(sw_index *ix, uint32_t slot, const float *v) {
    sw__encode(ix, v, sw__rec(ix, slot));
    if (ix->has_full) memcpy(sw__full(ix, slot), v, ix->vec_bytes);
}
/* A stored node as a walk query: its code, or for PQ a lookup table built
 * into buf (qcode_bytes) from its full or decoded vector. */
SW__HIDDEN const void *sw__node_query(const sw_index *ix, uint32_t slot, void *buf);
/* Distance between two stored nodes' codes. */
SW__HIDDEN float sw__pq_rdist(const sw_index *ix, const void *a, const void *b);
static inline float sw__rdist(const sw_index *ix, const void *a, const void *b) {
    if (SW__UNLIKELY(ix->type == SW_TYPE_PQ)) return sw__pq_rdist(ix, a, b);
    return ix->dist(a, b, ix->code_n);
}
/* A code distance in the metric's units (an estimate; exact for float32). */
SW__HIDDEN float sw__code_to_metric(const sw_index *ix, float d);
/* The vector of `slot` as floats: its full copy, or its code decoded. */
SW__HIDDEN void sw__vector_out(const sw_index *ix, uint32_t slot, float *out);
/* Train from the first rows of a batch when the index needs it and the
 * batch is large enough: SW_OK (trained or nothing to do), SW_ENOTTRAINED
 * naming `fn`, SW_ENOMEM. */
SW__HIDDEN sw_status sw__auto_train(sw_index *ix, const float *v, size_t n, const char *fn);
/* Re-score r[0..n) with the full-precision copies against q (the float
 * query), sort ascending; no-op without copies. */
SW__HIDDEN void sw__rerank(const sw_index *ix, const float *q, sw__cand *r, size_t n);
/* The quantizer in a file (persist.c): its section's bytes (0 when
 * untrained or none), writing them, reading them back (SW_ECORRUPT). */
SW__HIDDEN size_t sw__quant_bytes(const sw_index *ix);
SW__HIDDEN void sw__quant_write(const sw_index *ix, unsigned char *out);
SW__HIDDEN sw_status sw__quant_read(sw_index *ix, const unsigned char *p, size_t len,
                                    const char *path);
/* Bytes of full copies held in memory (sw_stats.memory_full). */
SW__HIDDEN size_t sw__full_bytes(const sw_index *ix);

/* ==== Storage (storage.c) ==== */

/* Bytes of one chunk's side arrays. */
SW__HIDDEN size_t sw__side_bytes(const sw_index *ix);
/* Serve slots [0, n) from records at map + off (a mapped file of len
 * bytes, which the index then owns and unmaps): the chunk directory points
 * into the mapping, side arrays are allocated zeroed. */
SW__HIDDEN sw_status sw__storage_map(sw_index *ix, void *map, size_t len, size_t off, uint32_t n);
/* sw_verify's (and sw_save's) extra check of a mapped index: the NODES
 * checksum and every record as sw_load checks it; `fn` names the caller
 * in the message. */
SW__HIDDEN sw_status sw__verify_mapped(const sw_index *ix, const char *fn);
/* Make sure slots [0, n) exist.  Never moves existing chunks. */
SW__HIDDEN sw_status sw__storage_reserve(sw_index *ix, size_t n);
SW__HIDDEN void sw__storage_free(sw_index *ix);
/* Allocate (zeroed) upper-layer links for a node of `level` > 0. */
SW__HIDDEN uint32_t *sw__upper_alloc(sw_index *ix, int level);
SW__HIDDEN void sw__upper_free(sw_index *ix, uint32_t *p, int level);

/* Take a scratch context sized for the index as it is now plus `pool`
 * candidates and `work` work entries; NULL on allocation failure. */
SW__HIDDEN sw__ctx *sw__ctx_acquire(const sw_index *ix, size_t pool, size_t work);
SW__HIDDEN void sw__ctx_release(const sw_index *ix, sw__ctx *c);
SW__HIDDEN void sw__ctx_pool_free(sw_index *ix);
/* Bytes a context holds (sw_get_stats' memory_scratch). */
SW__HIDDEN size_t sw__ctx_bytes(const sw__ctx *c);
/* Start a new visited generation; all marks are clear afterwards. */
SW__HIDDEN void sw__ctx_new_epoch(sw__ctx *c);

/* ==== Thread pool (pool.c) ==== */

struct sw__pool;
typedef void (*sw__task_fn)(void *arg, size_t task);
/* Run fn(arg, t) for every t in [0, ntasks) on up to `threads` threads,
 * the caller's included (0 = one per online CPU), using the index's pool:
 * created on first use, grown when a call asks for more threads, kept until
 * sw_free.  Never fails: if threads cannot be started it uses the ones it
 * has, and a call that finds the pool busy with another call runs on its
 * own thread alone.  Returns when every task has run. */
SW__HIDDEN void sw__parallel(const sw_index *ix, size_t threads, size_t ntasks, sw__task_fn fn,
                             void *arg);
SW__HIDDEN void sw__pool_free(sw_index *ix);
SW__HIDDEN size_t sw__cpu_count(void);

/* ==== Index helpers (index.c) ==== */

SW__HIDDEN sw_status sw__check_options(const sw_options *o);
/* The refusal of a change to a read-only index (ix->readonly), naming `fn`. */
static inline sw_status sw__readonly_fail(const char *fn) {
    return sw__fail(SW_EREADONLY, "%s: the index is read-only (opened with sw_open_mmap); "
                                  "sw_load a copy to change it", fn);
}
/* Build an empty index from validated options (no allocation of vectors). */
SW__HIDDEN sw_status sw__index_new(const sw_options *o, const sw_allocator *a, sw_index **out);
/* Copy `v` into `dst`, normalising for cosine; SW_ENOTFINITE on NaN/Inf. */
SW__HIDDEN sw_status sw__prepare_vector(const sw_index *ix, const float *v, float *dst);
/* The level of a new node, drawn from a hash of the seed and its label:
 * the same for a label whatever the insert order or thread count, and a
 * failed add consumes nothing. */
SW__HIDDEN int sw__level_for(const sw_index *ix, uint64_t label);
/* One add (or update) of a checked vector: the body of sw_add, which also
 * counts it toward the reachability pass (sw_add_batch counts per task). */
SW__HIDDEN sw_status sw__add(sw_index *ix, uint64_t label, const float *vector);
SW__HIDDEN sw_status sw__check_query(const sw_index *ix, const float *q, size_t dim, size_t k,
                                     size_t *n_found, const char *fn);

/* ==== Insertion helpers shared with deletion (insert.c) ==== */

/* Is x among ids[0..n)?  (Link lists are short: a linear scan.) */
static inline bool sw__in_list(const uint32_t *ids, size_t n, uint32_t x) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] == x) return true;
    return false;
}

/* Ascending distance, then slot (a qsort comparator for sw__cand). */
SW__HIDDEN int sw__cand_cmp(const void *a, const void *b);
/* Algorithm 4 over cand[0..n) sorted ascending by distance to the base:
 * at most m chosen into out[]; returns how many. */
SW__HIDDEN size_t sw__select_neighbors(const sw_index *ix, const sw__cand *cand, size_t n,
                                       size_t m, sw__cand *out);
/* Give `s`, which has no layer-0 in-link, one from a node it links to
 * other than `skip` (a node leaving the graph, or SW__NONE). */
SW__HIDDEN void sw__adopt_orphan(const sw_index *ix, uint32_t s, uint32_t skip);

/* Add the link e -> s (distance d) on `layer`, shrinking e's list with
 * the heuristic if it is full; scratch holds M0 + 1 candidates.  Takes
 * e's lock. */
SW__HIDDEN void sw__add_link(const sw_index *ix, uint32_t e, uint32_t s, float d, int layer,
                             sw__cand *scratch);

/* ==== Deletion and recycling (delete.c) ==== */

/* Announce that an operation using `c` starts / ends (see delete.c). */
SW__HIDDEN void sw__pin(const sw_index *ix, sw__ctx *c);
static inline void sw__unpin(sw__ctx *c) { __atomic_store_n(&c->pin, 0, __ATOMIC_RELEASE); }
/* A FREE slot that no running operation can still see, taken off the
 * ring, or SW__NONE.  Caller holds grow_lock. */
SW__HIDDEN uint32_t sw__recycle(sw_index *ix);
/* Take node `slot` out of the graph for an update: every list pointing to
 * it that a search around it finds is repaired as for a deletion; its own
 * lists stay, for the re-insertion to rewrite.  Caller holds save_lock
 * alone. */
SW__HIDDEN sw_status sw__unlink(sw_index *ix, uint32_t slot);
/* Live labels: slots in use less tombstones and FREE slots. */
SW__HIDDEN size_t sw__live(const sw_index *ix);

/* ==== Search (search.c) ==== */

/* A search's filter, resolved once (once per batch for sw_search_batch):
 * the callback, and the allow-list's labels turned into sorted distinct
 * slots (and a bitmap when the walk needs one). */
typedef struct sw__filter {
    sw_filter_fn fn;
    void *fn_ctx;
    bool has_allow;
    uint32_t *slots; /* allowed slots, sorted, distinct */
    uint64_t *slot_labels; /* the label each had when resolved */
    size_t nslots, cap;
    uint8_t *bits;   /* bitmap of slots, or NULL */
    size_t nbits;
    sw_search_stats *stats; /* params->stats: where the search's cost goes */
    uint32_t ef_upper;       /* params->ef_upper (0: by index size) */
    uint32_t rerank;         /* params->rerank, resolved (>= 1) */
} sw__filter;

/* Is slot `id` in the allow-list, and still the label it was when the
 * list was resolved?  (A slot can be freed and recycled for another label
 * between the resolution and the walk, most of all in a long batch.) */
SW__HIDDEN bool sw__allowed(const sw_index *ix, const sw__filter *f, uint32_t id);

/* May slot `id` be a result: live, allowed, accepted by the callback? */
static inline bool sw__accepts(const sw_index *ix, const sw__filter *f, uint32_t id) {
    if (sw__flags(ix, id)) return false;
    if (f->has_allow && !sw__allowed(ix, f, id)) return false;
    return !f->fn || f->fn(*sw__label_ptr(ix, id), f->fn_ctx);
}

SW__HIDDEN sw_status sw__filter_build(const sw_index *ix, const sw_search_params *p,
                                      sw__filter *f, const char *fn);
SW__HIDDEN void sw__filter_free(const sw_index *ix, sw__filter *f);
/* Exact top k of the slots `f` allows (NULL: every live slot) to c's
 * query, sorted ascending into h[0..k); returns how many.  A compressed
 * index scores its full-precision copies, or without them its codes (in
 * the metric's units). */
SW__HIDDEN size_t sw__scan(const sw_index *ix, const sw__ctx *c, size_t k, const sw__filter *f,
                           sw__cand *h, uint64_t *scored);
/* Results out: the label and distance of r[0..n) (either array may be
 * NULL). */
SW__HIDDEN void sw__emit(const sw_index *ix, const sw__cand *r, size_t n, uint64_t *labels,
                         float *distances);
/* One search with a prepared filter; the body of sw_search. */
SW__HIDDEN sw_status sw__search_one(const sw_index *ix, const float *query, size_t k, size_t ef,
                                    const sw__filter *f, uint64_t *labels, float *distances,
                                    size_t *n_found);

/*
 * Best-first search of one layer (Algorithm 2) from `nseeds` seeds (with
 * distances), keeping the `ef` best in c->pool, sorted ascending.  `exclude`
 * (or SW__NONE) is neither entered nor expanded.  Returns the pool size.
 */
SW__HIDDEN size_t sw__search_layer(const sw_index *ix, sw__ctx *c, const void *q,
                                   const sw__cand *seeds, size_t nseeds, size_t ef,
                                   int layer, uint32_t exclude);
/* The same walk where only nodes the filter accepts count as results: the
 * pool (capacity cap >= ef) keeps rejected nodes for navigation and is cut
 * after its ef-th accepted entry; c->expanded[i] has bit 1 set for an
 * accepted entry.  On layer 0, from the entry point's descent. */
SW__HIDDEN size_t sw__search_layer_acc(const sw_index *ix, sw__ctx *c, const void *q,
                                       const sw__cand *seeds, size_t nseeds, size_t ef,
                                       size_t cap, const sw__filter *acc);
/* Greedy descent (ef = 1) on one layer from *cur; updates *cur.  Returns
 * how many distances it computed. */
SW__HIDDEN size_t sw__greedy(const sw_index *ix, const void *q, sw__cand *cur, int layer);

/* ==== Check (check.c) ==== */

/* Structural check of the graph; 0 if sound, else non-zero with a message. */
/* Recount every node's layer-0 in-degree from the links (after a load). */
SW__HIDDEN void sw__recount_indegrees(sw_index *ix);
SW__HIDDEN int sw__check_graph(const sw_index *index, char *err, size_t errlen);
/* reach 0: everything but reachability.  0 when the graph passes, 1 with
 * the problem in err, -1 when out of memory. */
SW__HIDDEN int sw__check_graph_ex(const sw_index *index, char *err, size_t errlen, int reach);
/* Whether inserts keep every node's last layer-0 in-link, and so every node
 * reachable: all metrics but inner product (insert.c says why). */
static inline bool sw__keeps_reachable(const sw_index *ix) { return ix->metric != SW_METRIC_IP; }
SW__HIDDEN size_t sw__unreachable(const sw_index *ix, uint32_t *first);
/* Mark in seen[0..count) every node reachable from `from` over the union
 * of the layers, through sound links only, that is not yet marked; stack
 * has room for count ids. */
SW__HIDDEN void sw__reach_from(const sw_index *ix, uint32_t count, uint32_t from, uint8_t *seen,
                               uint32_t *stack);
/* seen[0..count) := reachable from the entry point; returns how many
 * nodes (FREE slots aside) are not, *first (may be NULL) the lowest of
 * them (SW__NONE if none).  stack has room for count ids. */
SW__HIDDEN size_t sw__mark_reachable(const sw_index *ix, uint32_t count, uint8_t *seen,
                                     uint32_t *stack, uint32_t *first);
/* Link every node no search reaches from the entry point to the nearest
 * node one does reach (insert.c); the caller holds save_lock alone
 * (searches may run).  Returns how many stay unreachable, SIZE_MAX when
 * out of memory (the graph is then as it was, or better). */
SW__HIDDEN size_t sw__reconnect(sw_index *ix);

#endif /* SW_INTERNAL_H */
