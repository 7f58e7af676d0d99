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
 */
#ifndef SW_INTERNAL_H
#define SW_INTERNAL_H

#include "smallworld.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
#define SW__MAX_SLOTS (UINT32_MAX - 1u)
#define SW__MAX_LEVEL 63          /* levels are drawn with P(l) ~ M^-l; 63 is never reached */
#define SW__LINE 64               /* cache line */
#define SW__CHUNK_TARGET (2u << 20)

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

/* ==== Memory ==== */

typedef struct sw__mem {
    sw_allocator a;
    atomic_size_t bytes; /* live bytes handed out, for sw_memory_usage */
} sw__mem;

SW__HIDDEN void *sw__alloc(sw__mem *m, size_t size, size_t align);
SW__HIDDEN void *sw__calloc(sw__mem *m, size_t size, size_t align);
SW__HIDDEN void sw__free(sw__mem *m, void *p, size_t size);

/* ==== Label map (labels.c) ==== */

/* Open addressing, linear probing, label -> slot.  Load factor <= 1/2. */
typedef struct sw__labelmap {
    uint64_t *keys;
    uint32_t *vals; /* SW__NONE marks an empty bucket */
    size_t cap;     /* power of two, or 0 */
    size_t used;
} sw__labelmap;

SW__HIDDEN uint32_t sw__labels_find(const sw__labelmap *lm, uint64_t label);
/* Make room so that one more insert cannot fail. */
SW__HIDDEN sw_status sw__labels_reserve(sw__mem *m, sw__labelmap *lm, size_t extra);
/* Insert a label known to be absent; room must have been reserved. */
SW__HIDDEN void sw__labels_put(sw__labelmap *lm, uint64_t label, uint32_t slot);
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
 * clears all marks at once.
 */
typedef struct sw__ctx {
    struct sw__ctx *next;
    uint32_t *visited;
    size_t visited_cap;
    uint32_t epoch;
    sw__cand *pool;   /* the sorted candidate pool of a layer search */
    size_t pool_cap;
    uint8_t *expanded; /* one flag per pool entry */
    size_t expanded_cap;
    sw__cand *work;   /* seeds, selection candidates, heaps */
    size_t work_cap;
    float *query;     /* the query, copied (and normalised for cosine) */
    size_t dim;
} sw__ctx;

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
    sw__dist_fn dist;
    sw__dist4_fn dist4; /* the same distance, one query against four vectors */
    /* record geometry */
    size_t vec_bytes;   /* dim * 4 */
    size_t links_off;   /* offset of the link block in a record */
    size_t rec_bytes;   /* record size, multiple of SW__LINE */
    uint32_t chunk_shift; /* slots per chunk = 1 << chunk_shift */
    size_t upper_stride;  /* u32 words per upper layer: 1 + M */
    /* storage */
    char **dir;           /* chunk directory */
    size_t dir_cap;
    void **retired;       /* old directories, freed with the index */
    size_t retired_n, retired_cap;
    size_t nchunks;
    uint32_t count;       /* slots in use: 0 .. count-1 */
    uint32_t entry;       /* entry point slot, SW__NONE when empty */
    int max_level;
    uint64_t rng;         /* level generator state */
    atomic_uint ef_search;
    sw__labelmap labels;
    /* scratch pool */
    pthread_mutex_t ctx_lock;
    sw__ctx *ctx_free;
};

/* Per-chunk side arrays sit after the records: labels, upper pointers,
 * layer-0 in-degrees, levels. */
static inline size_t sw__chunk_slots(const sw_index *ix) { return (size_t)1 << ix->chunk_shift; }

static inline char *sw__rec(const sw_index *ix, uint32_t slot) {
    return ix->dir[slot >> ix->chunk_shift] +
           (size_t)(slot & ((1u << ix->chunk_shift) - 1)) * ix->rec_bytes;
}
static inline float *sw__vec(const sw_index *ix, uint32_t slot) {
    return (float *)(void *)sw__rec(ix, slot);
}
/* Layer-0 link block: [count, ids...]. */
static inline uint32_t *sw__links0(const sw_index *ix, uint32_t slot) {
    return (uint32_t *)(void *)(sw__rec(ix, slot) + ix->links_off);
}
static inline char *sw__side(const sw_index *ix, uint32_t slot) {
    return ix->dir[slot >> ix->chunk_shift] + (sw__chunk_slots(ix) * ix->rec_bytes);
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
/* Link block of `slot` on `layer` (0 = layer 0): [count, ids...]. */
static inline uint32_t *sw__links(const sw_index *ix, uint32_t slot, int layer) {
    if (layer == 0) return sw__links0(ix, slot);
    return *sw__upper_ptr(ix, slot) + (size_t)(layer - 1) * ix->upper_stride;
}
static inline uint32_t sw__max_degree(const sw_index *ix, int layer) {
    return layer == 0 ? ix->M0 : ix->M;
}
static inline size_t sw__capacity(const sw_index *ix) { return ix->nchunks << ix->chunk_shift; }

/* ==== Storage (storage.c) ==== */

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
/* Start a new visited generation; all marks are clear afterwards. */
SW__HIDDEN void sw__ctx_new_epoch(sw__ctx *c);

/* ==== Index helpers (index.c) ==== */

SW__HIDDEN sw_status sw__check_options(const sw_options *o);
/* Build an empty index from validated options (no allocation of vectors). */
SW__HIDDEN sw_status sw__index_new(const sw_options *o, const sw_allocator *a, sw_index **out);
/* Copy `v` into `dst`, normalising for cosine; SW_ENOTFINITE on NaN/Inf. */
SW__HIDDEN sw_status sw__prepare_vector(const sw_index *ix, const float *v, float *dst);
SW__HIDDEN int sw__random_level(const sw_index *ix, uint64_t *rng);
SW__HIDDEN sw_status sw__check_query(const sw_index *ix, const float *q, size_t dim, size_t k,
                                     size_t *n_found, const char *fn);

/* ==== Search (search.c) ==== */

/*
 * Best-first search of one layer (Algorithm 2) from `nseeds` seeds (with
 * distances), keeping the `ef` best in c->pool, sorted ascending.  `exclude`
 * (or SW__NONE) is neither entered nor expanded.  Returns the pool size.
 */
SW__HIDDEN size_t sw__search_layer(const sw_index *ix, sw__ctx *c, const float *q,
                                   const sw__cand *seeds, size_t nseeds, size_t ef,
                                   int layer, uint32_t exclude);
/* Greedy descent (ef = 1) on one layer from *cur; updates *cur. */
SW__HIDDEN void sw__greedy(const sw_index *ix, const float *q, sw__cand *cur, int layer);

/* ==== Check (check.c) ==== */

/* Structural check of the graph; 0 if sound, else non-zero with a message. */
/* Recount every node's layer-0 in-degree from the links (after a load). */
SW__HIDDEN void sw__recount_indegrees(sw_index *ix);
SW__HIDDEN int sw__check_graph(const sw_index *index, char *err, size_t errlen);

#endif /* SW_INTERNAL_H */
