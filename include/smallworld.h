/*
 * smallworld.h — the one public header of libsmallworld.
 *
 * smallworld is an approximate nearest-neighbour index built on HNSW
 * (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor
 * search using Hierarchical Navigable Small World graphs", 2016/2018).
 *
 * Conventions, everywhere in this header:
 *
 *   - Every function that can fail returns an sw_status: SW_OK (0) on
 *     success, a negative code on failure.  Results come back through
 *     out-parameters that the caller owns.  sw_strerror() names a code;
 *     sw_last_error() gives the detail of the last failure on the calling
 *     thread ("dimension 64 does not match the index dimension 128").
 *   - A call that fails leaves the index exactly as it was.
 *   - Bad parameters are refused with a status, never clamped, with one
 *     documented exception: a search ef smaller than k is raised to k.
 *   - Handles are opaque.  sw_free(NULL) is a no-op.
 *
 * Thread safety: every function may be called from any thread, at the
 * same time as any other, on the same index, with two exceptions below.
 * In particular any number of searches (sw_search, sw_search_batch,
 * sw_search_exact, sw_get, sw_contains) run at the same time as each other
 * and as adds and updates (sw_add, sw_add_batch, from any number of
 * threads); there is no cap on concurrent readers.  A search running
 * during adds sees each vector either not yet added or fully added.  An
 * update (sw_add of a present label) takes the node out of the graph and
 * links it again at its new place, as a deletion and an insert would: it
 * waits for the adds in flight and holds new ones back while it works
 * (updates do not overlap each other or inserts), and a search running
 * meanwhile sees the old vector, the new one, or, while the node is
 * between the two, misses that label; a distance is never computed from
 * a vector half copied (the copy waits for searches in flight and holds
 * new ones back for its length; a long sw_search_exact delays it).
 * Memory a search may be reading is never freed under it, and a deleted
 * node's slot is reused only once no search that might see it is running.
 * sw_save may run during adds: it waits for the adds in flight, holds new
 * ones back while it writes, and saves one consistent moment of the index.
 * Deletions (sw_delete, sw_compact) run during searches and wait for adds
 * (see "Deleting").  The exceptions: sw_free must not run
 * at the same time as any other call on that index, and sw_load returns
 * an index no other thread has yet.  Distinct indexes are independent.
 */
#ifndef SMALLWORLD_H
#define SMALLWORLD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(SW_BUILDING_SHARED)
#define SW_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define SW_API __attribute__((visibility("default")))
#else
#define SW_API
#endif

#define SW_VERSION_MAJOR 0
#define SW_VERSION_MINOR 5
#define SW_VERSION_PATCH 0
#define SW_VERSION_STRING "0.5.0"

/** The library's version string, e.g. "0.1.0". */
SW_API const char *sw_version(void);

/**
 * The distance kernels in use: "scalar", "neon" (arm64), "avx2" (AVX2 +
 * FMA + F16C), "avx512" (AVX-512 F/BW/VL) or "avx512vnni" (with VNNI for
 * 8-bit vectors).  Chosen once, at first use, as the best this CPU and OS
 * support; the environment variable SW_SIMD, set to one of those names,
 * forces a lower level (a higher one than the CPU has is lowered to what
 * it has, an unknown name is ignored).  Thread-safe.
 */
SW_API const char *sw_simd_name(void);

/* ===================================================================== */
/* Status codes                                                          */
/* ===================================================================== */

/*
 * One table makes both the enum and sw_strerror(), so the two can never
 * disagree.  Codes are never renumbered; new ones are appended.
 */
#define SW_STATUS_MAP(X)                                                           \
    X(SW_OK, 0, "success")                                                         \
    X(SW_ENULL, -1, "a required pointer argument is NULL")                         \
    X(SW_EINVAL, -2, "invalid argument")                                           \
    X(SW_ENOMEM, -3, "out of memory")                                              \
    X(SW_EDIM, -4, "dimension out of range (must be 1..SW_MAX_DIM)")               \
    X(SW_EDIMMISMATCH, -5, "vector dimension does not match the index")            \
    X(SW_ENOTFINITE, -6, "vector contains NaN or infinity")                        \
    X(SW_ENOTFOUND, -7, "label not found in the index")                            \
    X(SW_EK, -8, "k must be at least 1")                                           \
    X(SW_EMETRIC, -9, "unknown metric")                                            \
    X(SW_EM, -10, "M or M0 out of range (see SW_MIN_M, SW_MAX_M, SW_MAX_M0)")      \
    X(SW_EEFC, -11, "ef_construction out of range (1..SW_MAX_EF)")                 \
    X(SW_EEF, -12, "ef out of range (0..SW_MAX_EF)")                               \
    X(SW_EFULL, -13, "index is full (2^32 - 1 elements)")                          \
    X(SW_EIO, -14, "file input/output error")                                      \
    X(SW_ECORRUPT, -15, "file is not a valid smallworld index or is corrupt")      \
    X(SW_EVERSION, -16, "file was written by an unsupported format version")      \
    X(SW_EREADONLY, -17, "index is read-only (opened with sw_open_mmap)")         \
    X(SW_ENOTTRAINED, -18, "index is not trained yet (sw_train, or a first sw_add_batch large enough)")

typedef enum sw_status {
#define SW__STATUS_ENUM(name, value, text) name = value,
    SW_STATUS_MAP(SW__STATUS_ENUM)
#undef SW__STATUS_ENUM
} sw_status;

/**
 * A static, human-readable description of a status code.  Never NULL; an
 * unknown code gets "unknown status code".  Thread-safe.
 */
SW_API const char *sw_strerror(sw_status status);

/**
 * Detail of the most recent failure of a smallworld call on the calling
 * thread: the sw_strerror() text, followed by specifics where there are any
 * (which argument, which values).  Valid until the next failing call on the
 * same thread.  Never NULL; "" if no call on this thread has failed yet.
 * Successful calls do not clear it.
 */
SW_API const char *sw_last_error(void);

/* ===================================================================== */
/* Options                                                               */
/* ===================================================================== */

/** Distance functions.  Results are reported as shown. */
typedef enum sw_metric {
    SW_METRIC_L2 = 0,     /**< squared Euclidean: sum (a_i - b_i)^2 */
    SW_METRIC_IP = 1,     /**< inner product: 1 - sum a_i b_i (as hnswlib) */
    SW_METRIC_COSINE = 2, /**< 1 - cos(a, b); vectors normalised on the way in */
    SW_METRIC_L1 = 3      /**< Manhattan: sum |a_i - b_i| */
} sw_metric;

/**
 * How vectors are stored and compared during the walk (0.5).  Every type
 * but float32 keeps a compressed code per vector in the graph's records;
 * the walk compares codes, and (when full-precision copies are kept, see
 * sw_keep) the best candidates are re-scored exactly before they are
 * returned (sw_search_params.rerank).
 */
typedef enum sw_type {
    SW_TYPE_F32 = 0,    /**< float32, exact; the default */
    SW_TYPE_F16 = 1,    /**< IEEE half precision, 2 bytes a dimension; needs no training */
    SW_TYPE_I8 = 2,     /**< scalar quantization to int8, 1 byte a dimension: per-dimension
                             ranges learned from the data (values outside them saturate) */
    SW_TYPE_BINARY = 3, /**< one bit a dimension: the sign around a per-dimension centre
                             learned from the data; walked with Hamming distance */
    SW_TYPE_PQ = 4      /**< product quantization: pq_m sub-quantizers of 256 centroids
                             (k-means on a sample), one byte each; distances by lookup table */
} sw_type;

/** Where the full-precision (float32) copies of a compressed index's
 * vectors live (0.5).  Ignored for SW_TYPE_F32 only in the sense that it
 * must be SW_KEEP_MEMORY there (the records are the vectors). */
typedef enum sw_keep {
    SW_KEEP_MEMORY = 0, /**< in memory, beside the codes; the default */
    SW_KEEP_DISK = 1,   /**< in the index file: saved with it, and sw_load / sw_open_mmap
                             map them from the file instead of reading them, so they cost
                             page cache, not the process's own memory (until the index is
                             first saved and loaded they are in memory) */
    SW_KEEP_NONE = 2    /**< dropped: no re-ranking; distances are estimated from codes
                             and sw_get returns the decoded approximation */
} sw_keep;

/** Rows an untrained index's sw_add_batch trains on by itself: the batch
 * trains the quantizer when it has at least this many (SW_TYPE_PQ needs
 * SW_TRAIN_ROWS_PQ).  sw_train takes fewer: 1 row (int8, binary), 256 (PQ). */
#define SW_TRAIN_ROWS 1000u
#define SW_TRAIN_ROWS_PQ 4096u
/** Default re-rank factor (sw_search_params.rerank = 0). */
#define SW_DEFAULT_RERANK 4u
#define SW_MAX_RERANK 1000u

/** Parameter bounds.  Values outside them are refused, never clamped. */
#define SW_MAX_DIM 65536u   /**< dim: 1 .. SW_MAX_DIM */
#define SW_MIN_M 2u         /**< M: SW_MIN_M .. SW_MAX_M */
#define SW_MAX_M 512u
#define SW_MAX_M0 2048u     /**< M0: M .. SW_MAX_M0 (0 in options = 2*M) */
#define SW_MAX_EF 1000000u  /**< ef_construction: 1 .. SW_MAX_EF; ef likewise */
#define SW_MAX_EF_UPPER 64u /**< sw_search_params.ef_upper: 0 .. SW_MAX_EF_UPPER */
#define SW_MAX_THREADS 1024u /**< threads of a batch call: 0 (all CPUs) .. SW_MAX_THREADS */

/** The label that pads a short row of sw_search_batch results. */
#define SW_NO_LABEL UINT64_MAX

/**
 * Pluggable allocator.  alloc returns memory aligned to at least `align`
 * (a power of two, at most 4096) or NULL; free receives the pointer and the
 * size that was asked for.  Both are called from any thread that changes or
 * searches the index, so they must be thread-safe.  ctx is passed through.
 */
typedef struct sw_allocator {
    void *(*alloc)(void *ctx, size_t size, size_t align);
    void (*free)(void *ctx, void *ptr, size_t size);
    void *ctx;
} sw_allocator;

/**
 * Creation options.  Always start from sw_options_default() and change the
 * fields you care about, so that fields added in later versions get their
 * defaults.
 */
typedef struct sw_options {
    uint32_t dim;             /**< vector dimension; no default (0 = unset) */
    sw_metric metric;         /**< default SW_METRIC_L2 */
    uint32_t M;               /**< links per node on upper layers; default 16 */
    uint32_t M0;              /**< links per node on layer 0; default 0 = 2*M */
    uint32_t ef_construction; /**< candidate list size while inserting; default 200 */
    uint32_t ef_search;       /**< default search ef when a search passes 0; default 64 */
    uint64_t seed;            /**< seed of the level generator; default 100 */
    int keep_pruned;          /**< Algorithm 4 keepPrunedConnections; default 0 */
    int extend_candidates;    /**< Algorithm 4 extendCandidates; default 0 */
    const sw_allocator *allocator; /**< NULL = the C library's malloc/free */
    /* 0.5: quantized storage (see sw_type).  This struct grew in 0.5. */
    sw_type type;             /**< element type; default SW_TYPE_F32 */
    sw_keep keep;             /**< full-precision copies; default SW_KEEP_MEMORY */
    uint32_t pq_m;            /**< SW_TYPE_PQ: sub-quantizers, must divide dim; 0 = the
                                   largest divisor of dim not above dim/8 (16 at 128) */
} sw_options;

/**
 * The default options: dim 0 (must be set), L2, M 16, M0 2*M,
 * ef_construction 200, ef_search 64, seed 100, heuristic flags off,
 * allocator NULL, type SW_TYPE_F32, keep SW_KEEP_MEMORY, pq_m 0.
 */
SW_API sw_options sw_options_default(void);

/* ===================================================================== */
/* Lifecycle                                                             */
/* ===================================================================== */

typedef struct sw_index sw_index;

/**
 * Create an empty index.  No capacity is declared: storage grows as
 * vectors arrive, and stored vectors are never copied or moved.
 *
 * On success *out owns a new index, to be released with sw_free().
 * On failure *out is set to NULL (when out is not NULL).
 *
 * Errors: SW_ENULL (opt or out NULL), SW_EDIM, SW_EMETRIC, SW_EM, SW_EEFC,
 * SW_EEF (ef_search 0 or > SW_MAX_EF), SW_EINVAL (allocator with a NULL
 * function), SW_ENOMEM.
 */
SW_API sw_status sw_create(const sw_options *opt, sw_index **out);

/** Release an index and everything it owns.  NULL is a no-op. */
SW_API void sw_free(sw_index *index);

/* ===================================================================== */
/* Adding vectors                                                        */
/* ===================================================================== */

/**
 * Add `vector` (dim floats, read and copied; any alignment) under `label`.
 * If the label is already present, its vector is replaced and its
 * neighbourhood re-linked: an update, not a duplicate (a tombstoned label
 * is brought back with the new vector).  With the cosine
 * metric the vector is stored normalised (a zero vector is stored as zero
 * and is at distance 1 from everything).
 *
 * Errors: SW_ENULL, SW_EDIMMISMATCH (dim != index dimension),
 * SW_ENOTFINITE, SW_EFULL, SW_ENOMEM, SW_EREADONLY (a mapped index, as for
 * every call that changes one).  On any error the index is unchanged:
 * same vectors, graph and results (storage reserved for growth before the
 * failure may stay allocated, and counts in sw_memory_usage()).
 * Safe to call from many threads at once, and during searches.
 */
SW_API sw_status sw_add(sw_index *index, uint64_t label, const float *vector, size_t dim);

/**
 * Add n vectors (row-major, n x dim floats) under labels[0..n), on
 * `threads` threads (0 = one per online CPU, at most SW_MAX_THREADS) taken
 * from a pool the index creates on first use and keeps.  On one thread it
 * builds exactly the graph of n sw_add calls in row order; on more, rows
 * reach the graph in an order the scheduler picks, so the graph differs
 * from run to run but is as good (same recall).  A label already in the
 * index is an update.
 *
 * Everything that can be checked is checked before anything is added: on
 * SW_ENULL, SW_EREADONLY, SW_EDIMMISMATCH, SW_ENOTFINITE (names the row), SW_EINVAL (a
 * label appears twice in the batch; threads > SW_MAX_THREADS) or SW_EFULL
 * (checked up front; other threads adding at the same time can still fill
 * the index part way) the index is unchanged.  SW_ENOMEM part way through
 * leaves each row either fully applied or not at all; no row starts after
 * the first failure, and the message names the failing row.  n == 0 is a
 * no-op.  Safe during searches and other adds (see the top).
 *
 * Once the rows added since the last such pass (by batches or sw_add)
 * are an eighth of the index, and at least 64, a batch ends with a walk
 * of the graph that links in any node no search could reach:
 * inserts running side by side can, rarely, leave a few nodes linked only
 * among themselves (32 of 1,000,000 on two threads before this pass).
 * Under inner product that is left alone (see sw_verify).  sw_compact
 * runs the same pass on demand.
 */
SW_API sw_status sw_add_batch(sw_index *index, const uint64_t *labels, const float *vectors,
                              size_t n, size_t dim, size_t threads);

/**
 * Train the quantizer of a compressed index on n rows (n x dim floats):
 * int8 learns each dimension's range (widened by a sixteenth on each side
 * so later data rarely saturates), binary each dimension's centre (the
 * median), PQ its codebooks (k-means, 256 centroids per sub-quantizer, on
 * at most 65,536 of the rows, evenly spaced).  Deterministic for given
 * rows and seed.  float32 and float16 need no training: SW_OK, nothing
 * done.  An untrained compressed index refuses sw_add (SW_ENOTTRAINED);
 * sw_add_batch trains on its own rows when it has at least
 * SW_TRAIN_ROWS (SW_TRAIN_ROWS_PQ for PQ), and refuses smaller batches.
 * With cosine the rows are normalised first, as added vectors are.
 * Errors: SW_ENULL, SW_EDIMMISMATCH, SW_ENOTFINITE (names the row),
 * SW_EINVAL (already trained; too few rows: int8 and binary need 1, PQ
 * 256), SW_ENOMEM, SW_EREADONLY.  Not to be called during adds.
 */
SW_API sw_status sw_train(sw_index *index, const float *vectors, size_t n, size_t dim);

/** 1 if the index can take vectors (float32, float16, or a trained
 * quantizer), 0 if it must be trained first or is NULL. */
SW_API int sw_is_trained(const sw_index *index);

/* ===================================================================== */
/* Searching                                                             */
/* ===================================================================== */

/**
 * A filter: return nonzero to accept `label` as a result, 0 to reject it.
 * Called from the searching thread (from several threads at once in
 * sw_search_batch), for only some of the index's labels and in no set
 * order; it must not call back into the index.
 */
typedef int (*sw_filter_fn)(uint64_t label, void *ctx);

/**
 * What searches cost, for measuring (the command line's bench reports it
 * per query).  Every search given one adds to it, atomically, so one
 * struct can gather a whole sw_search_batch on many threads; zero it
 * first.  Counted for sw_search, sw_search_batch and sw_search_range
 * (whose walk is a k-NN search; its flood past ef is not counted).
 */
typedef struct sw_search_stats {
    uint64_t searches;  /**< searches that added to this */
    uint64_t distances; /**< distances computed: entry point, greedy descent
                             through the upper layers, the layer-0 walk, and
                             any exact scan a filtered search falls back to */
    uint64_t hops;      /**< layer-0 nodes whose lists the walk read */
} sw_search_stats;

/**
 * Per-search parameters.  Pass NULL for the defaults, or start from
 * sw_search_params_default() (new fields may be added in later versions;
 * this struct grew in 0.2).
 */
typedef struct sw_search_params {
    uint32_t ef; /**< candidate list size; 0 = the index default; raised to k if smaller */
    /** Filtered search: only labels the filter accepts, and (when `allow`
     * is not NULL) only labels among allow[0..n_allow), are returned.  Both
     * may be set; a result then passes both.  A rejected node still guides
     * the walk through the graph; it is never a result.  Labels in `allow`
     * that are not in the index are ignored; duplicates are harmless.
     * An allow-list costs a look-up per entry on every call (once per
     * call for sw_search_batch); for a large one reused across many single
     * searches a callback is cheaper.
     * When fewer than k labels pass, the search returns those it finds
     * (possibly none); that is not an error.  When the accepted share of
     * the index is small, the search scores the accepted vectors exactly
     * instead of walking the graph (the selectivity is counted for an
     * allow-list and estimated from a sample for a callback). */
    sw_filter_fn filter;
    void *filter_ctx;
    const uint64_t *allow;
    size_t n_allow;
    /** When not NULL, each search adds what it cost to *stats (0.3). */
    sw_search_stats *stats;
    /** Width of the descent through the upper layers (0.4): 1 is the
     * paper's greedy descent (one candidate per layer); w > 1 keeps the w
     * nearest on each layer and starts layer 0 from all of them, which
     * finds the right region far more often on clustered data.  0 (the
     * default) chooses by index size (slots in use, tombstoned and freed
     * ones included): 1 below 50,000, 2 below 500,000, 4 from 500,000 on
     * (bench/README.md has the figures).  At most SW_MAX_EF_UPPER, and
     * never more than the search's ef. */
    uint32_t ef_upper;
    /** Compressed types (0.5): the walk keeps its ef best by code distance;
     * the best rerank x k of them (at most ef) are scored again with the
     * full-precision vectors, and the k nearest by that returned.  0 =
     * SW_DEFAULT_RERANK; at most SW_MAX_RERANK.  Ignored for float32 and
     * when full-precision vectors are dropped (SW_KEEP_NONE). */
    uint32_t rerank;
} sw_search_params;

SW_API sw_search_params sw_search_params_default(void);

/**
 * The k approximate nearest neighbours of `query` (dim floats).
 *
 * Writes up to k results to labels[0..] and distances[0..] (either may be
 * NULL if not wanted), nearest first (the order of equal distances is
 * unspecified but the same on every run); stores
 * the number written in *n_found.  Fewer than k results (an index with fewer
 * than k vectors) is not an error.  A graph built with extreme parameters
 * (M or M0 near SW_MIN_M, a tiny ef_construction) can leave a few nodes
 * that no search reaches; a search may then return fewer than k.  At the
 * defaults the tests find every node reachable.
 *
 * Errors: SW_ENULL (index, query or n_found NULL), SW_EDIMMISMATCH, SW_EK
 * (k == 0), SW_EEF (ef > SW_MAX_EF), SW_ENOTFINITE (query has NaN/Inf),
 * SW_ENOMEM.  On error *n_found is 0.
 * Safe during adds and updates (see the top of this header).
 */
SW_API sw_status sw_search(const sw_index *index, const float *query, size_t dim, size_t k,
                           const sw_search_params *params, uint64_t *labels,
                           float *distances, size_t *n_found);

/**
 * Exact (brute-force) k nearest neighbours, with the same signature and
 * result convention as sw_search().  params->ef is ignored; the filters in
 * params apply (with an allow-list only the allowed vectors are scored).  This is the
 * oracle the tests measure recall against.  Cost: one distance per stored
 * vector.
 */
SW_API sw_status sw_search_exact(const sw_index *index, const float *query, size_t dim,
                                 size_t k, const sw_search_params *params,
                                 uint64_t *labels, float *distances, size_t *n_found);

/**
 * sw_search for nq queries (row-major, nq x dim floats) on `threads`
 * threads (0 = one per online CPU, at most SW_MAX_THREADS).  Row i of the
 * results is labels[i*k .. i*k+k) and distances[i*k .. i*k+k) (distances
 * may be NULL), nearest first; found[i] (found may be NULL) is the number
 * of results in row i, and a short row is padded with SW_NO_LABEL and
 * +infinity.  Each row is exactly what sw_search returns for that query.
 *
 * Errors: as sw_search (labels must not be NULL), plus SW_EINVAL (threads
 * > SW_MAX_THREADS); a query with NaN/Inf is SW_ENOTFINITE naming the row,
 * found before any search runs.  nq == 0 is a no-op.  On SW_ENOMEM (the
 * only error once searching starts) finished rows are filled, the failed
 * row is padded and rows not reached are left as they were.
 */
SW_API sw_status sw_search_batch(const sw_index *index, const float *queries, size_t nq,
                                 size_t dim, size_t k, const sw_search_params *params,
                                 uint64_t *labels, float *distances, size_t *found,
                                 size_t threads);

/**
 * Range search: the labels within distance `radius` of `query` (distance
 * <= radius, in the units of the metric: squared L2, 1 - dot for inner
 * product, 1 - cosine; for a similarity threshold t under IP or cosine pass
 * 1 - t), nearest first, at most `max_count` of them: when more are in
 * range, the nearest max_count.  labels and distances (either may be NULL)
 * hold max_count entries; *n_found is the number written.  Filters and
 * tombstones apply as in sw_search.  The walk finds the neighbourhood of
 * the query with params->ef (as sw_search), then, when max_count exceeds
 * ef, floods outwards through every node in range, so a large max_count
 * (up to the index size) returns the whole region.
 *
 * Errors: as sw_search, with SW_EK for max_count == 0 and SW_EINVAL for a
 * radius that is NaN or negative under L2 or L1.
 */
SW_API sw_status sw_search_range(const sw_index *index, const float *query, size_t dim,
                                 float radius, size_t max_count,
                                 const sw_search_params *params, uint64_t *labels,
                                 float *distances, size_t *n_found);

/** sw_search_range by scoring every vector: the oracle for range search. */
SW_API sw_status sw_search_range_exact(const sw_index *index, const float *query, size_t dim,
                                       float radius, size_t max_count,
                                       const sw_search_params *params, uint64_t *labels,
                                       float *distances, size_t *n_found);

/**
 * Set the default search ef (used when a search passes ef = 0).
 * Errors: SW_ENULL, SW_EEF (ef == 0 or ef > SW_MAX_EF).  Searches that
 * already started keep the ef they began with.
 */
SW_API sw_status sw_set_ef(sw_index *index, uint32_t ef);

/* ===================================================================== */
/* Deleting                                                              */
/* ===================================================================== */

/*
 * Two kinds of deletion.
 *
 * A tombstone (sw_mark_deleted) hides a label from every search at once
 * and can be taken back (sw_unmark_deleted), as hnswlib's mark_deleted
 * does.  The node stays in the graph, where searches still walk through
 * it, and keeps its memory.  Many tombstones make searches slower (the
 * walk must go further to find k live results) until sw_compact.
 *
 * A true deletion (sw_delete, and sw_compact for every tombstone at once)
 * removes the node from the graph: every list that pointed to it is
 * repaired (its neighbours are offered in its place and the heuristic
 * re-selects), nodes left without in-links are re-attached, lists left
 * short get new neighbours by a search, and the entry point moves if it
 * was the one deleted.  Its slot is recycled by a later add once no
 * search that might still be looking at it is running, so memory stays
 * flat over any number of delete/insert cycles.
 *
 * Counting: sw_count() is the number of live labels (searchable);
 * sw_deleted_count() the tombstoned ones.  A tombstoned label is absent
 * for sw_contains and sw_get (SW_ENOTFOUND), present for sw_is_deleted,
 * and adding it again is an update that also lifts the tombstone.
 *
 * Threads: tombstones and adds run together.  sw_delete and sw_compact
 * wait for adds (and tombstone changes) in flight and hold new ones back
 * while they work; searches run throughout, and never return a deleted
 * label once the call that deleted it has returned.
 */

/** Tombstone `label`.  Errors: SW_ENULL, SW_ENOTFOUND, SW_EREADONLY.  Marking a label
 * that is already marked changes nothing and succeeds. */
SW_API sw_status sw_mark_deleted(sw_index *index, uint64_t label);

/** Lift the tombstone of `label`.  Errors: SW_ENULL, SW_ENOTFOUND (not in
 * the index at all), SW_EREADONLY.  A label that is not marked is left as it is. */
SW_API sw_status sw_unmark_deleted(sw_index *index, uint64_t label);

/** 1 if `label` is in the index and tombstoned, else 0 (also for NULL). */
SW_API int sw_is_deleted(const sw_index *index, uint64_t label);

/** Number of tombstoned labels (0 for NULL). */
SW_API size_t sw_deleted_count(const sw_index *index);

/**
 * Delete `label` for real (live or tombstoned; see above).  Cost: a few
 * inserts' worth, more on large indexes: the lists that point to the node
 * are found by a search around it, and when that misses some (a node many
 * others link to), by a scan of every list, which grows with the index
 * (bench/README.md has the figures).  For many labels at once,
 * sw_mark_deleted each and then sw_compact, which repairs each affected
 * list once and is far cheaper per label.
 * Errors: SW_ENULL, SW_ENOTFOUND, SW_ENOMEM (nothing changed), SW_EREADONLY.
 */
SW_API sw_status sw_delete(sw_index *index, uint64_t label);

/**
 * Turn every tombstone into a true deletion, on `threads` threads (0 =
 * one per online CPU, at most SW_MAX_THREADS); then link back in any node
 * no search can reach (see sw_add_batch).  Without tombstones only the
 * latter: a walk of the graph.
 * Errors: SW_ENULL, SW_EINVAL (threads), SW_ENOMEM (nothing changed),
 * SW_EREADONLY.
 */
SW_API sw_status sw_compact(sw_index *index, size_t threads);

/* ===================================================================== */
/* Looking things up                                                     */
/* ===================================================================== */

/**
 * Copy the stored vector of `label` into out[0..dim).  With the cosine
 * metric this is the normalised vector.
 * Errors: SW_ENULL, SW_EDIMMISMATCH, SW_ENOTFOUND (also for a tombstoned
 * label, as hnswlib's get_items).
 */
SW_API sw_status sw_get(const sw_index *index, uint64_t label, float *out, size_t dim);

/** 1 if `label` is in the index and not tombstoned, 0 if not or if index
 * is NULL. */
SW_API int sw_contains(const sw_index *index, uint64_t label);

/** Number of live (searchable, not tombstoned) vectors (0 for NULL). */
SW_API size_t sw_count(const sw_index *index);

/** Vector dimension (0 for NULL). */
SW_API size_t sw_dim(const sw_index *index);

/** Metric (SW_METRIC_L2 for NULL). */
SW_API sw_metric sw_get_metric(const sw_index *index);

/** Current default search ef (0 for NULL). */
SW_API uint32_t sw_get_ef(const sw_index *index);

/**
 * The index's parameters as an options struct (M0 resolved to its actual
 * value, ef_search the current default, allocator as given at creation).
 * Errors: SW_ENULL.
 */
SW_API sw_status sw_get_options(const sw_index *index, sw_options *out);

/**
 * Bytes of memory the index holds: vectors, graph, labels, label map,
 * search scratch space and the batch thread pool's bookkeeping (not the
 * threads' stacks), as asked of the allocator.  0 for NULL.
 */
SW_API size_t sw_memory_usage(const sw_index *index);

/**
 * The labels in the index, in slot order: the live ones (tombstoned = 0)
 * or the tombstoned ones (tombstoned = 1).  Writes at most `cap` of them to
 * out (which may be NULL when cap is 0) and stores in *total how many there
 * are, so a first call with cap 0 sizes the buffer; labels added between
 * two calls can make *total grow, so compare it with cap.  One consistent
 * moment of the index: waits for adds in flight, as sw_save does.
 * Errors: SW_ENULL.
 */
SW_API sw_status sw_list_labels(const sw_index *index, int tombstoned, uint64_t *out, size_t cap,
                                size_t *total);

/* ===================================================================== */
/* Inspecting                                                            */
/* ===================================================================== */

#define SW_MAX_LAYERS 64u /**< layers an index can have (levels 0..63) */

/**
 * One layer of the graph.  Each link is counted once: as a self-link, a
 * dangling link or a duplicate (in that order of precedence), or as sound.
 * A sound graph has no self, duplicate or dangling links and no overfull
 * lists.
 */
typedef struct sw_layer_stats {
    uint64_t nodes;            /**< nodes on this layer (tombstoned ones included) */
    uint64_t edges;            /**< links out of them, every kind counted */
    uint32_t min_degree;       /**< fewest links out of one node */
    uint32_t max_degree;       /**< most links out of one node */
    double mean_degree;        /**< edges / nodes; 0 for an empty layer */
    uint64_t self_links;       /**< links from a node to itself */
    uint64_t duplicate_links;  /**< second and later copies of one id in one list */
    uint64_t dangling_links;   /**< links to a slot out of range, to a freed slot,
                                    or (above layer 0) to a node not on this layer */
    uint64_t overfull_lists;   /**< lists whose count exceeds the layer's bound (M0
                                    on layer 0, M above); read as holding the bound,
                                    which is what edges and the degrees count */
    uint64_t reciprocal_edges; /**< sound links a->b where b also links to a on
                                    this layer (a pair linked both ways counts 2) */
    double reciprocal_share;   /**< reciprocal_edges / edges; 0 when no edges */
} sw_layer_stats;

/** What sw_get_stats reports. */
typedef struct sw_stats {
    uint64_t count;        /**< live labels, as sw_count */
    uint64_t deleted;      /**< tombstones, as sw_deleted_count */
    uint64_t free_slots;   /**< truly deleted slots waiting to be reused */
    uint32_t layers;       /**< layers in use: max level + 1, 0 when empty */
    uint64_t entry_label;  /**< label of the entry point; SW_NO_LABEL when empty */
    size_t memory_bytes;   /**< as sw_memory_usage */
    uint64_t unreachable;  /**< nodes no search reaches from the entry point
                                (0 but under inner product; see sw_verify);
                                dangling links are not followed */
    uint64_t self_links;      /**< sum of the layers' self_links */
    uint64_t duplicate_links; /**< sum of the layers' duplicate_links */
    uint64_t dangling_links;  /**< sum of the layers' dangling_links */
    uint64_t overfull_lists;  /**< sum of the layers' overfull_lists */
    /* memory_bytes by component; the first six add up to it */
    size_t memory_vectors; /**< stored vectors, in records of every slot allocated */
    size_t memory_links0;  /**< layer-0 link blocks, with the records' padding */
    size_t memory_upper;   /**< upper-layer link lists */
    size_t memory_labels;  /**< per-slot labels, levels, states, in-degrees,
                                lock bytes and upper-list pointers, and the
                                label -> slot map */
    size_t memory_scratch; /**< idle search scratch space (visited marks,
                                candidate pools, query copies); contexts in
                                use by a running call count under memory_other */
    size_t memory_other;   /**< the rest: chunk directories, the free-slot
                                ring, metadata, the thread pool, the index
                                itself */
    size_t memory_mapped;  /**< bytes of the file an index opened with
                                sw_open_mmap serves its records from (then
                                memory_vectors and memory_links0 are 0), or
                                that a loaded SW_KEEP_DISK index maps its
                                full-precision vectors from; not part of
                                memory_bytes; 0 for an index in memory */
    sw_layer_stats layer[SW_MAX_LAYERS]; /**< layer[0 .. layers) */
    /* 0.5 */
    size_t memory_full;    /**< full-precision copies of a compressed index's vectors
                                held in memory (part of memory_vectors); 0 for float32,
                                SW_KEEP_NONE, and those served from the file */
    uint64_t saturated;    /**< int8: vector components that fell outside the learned
                                ranges and were clamped since the index was created or
                                loaded (the count is not saved) */
} sw_stats;

/**
 * Counts and degrees of the graph, layer by layer, at one consistent
 * moment (waits for adds in flight), with the integrity report of every
 * list and the memory by component.  Unlike sw_verify it counts problems
 * rather than stopping at the first, and never follows a bad link or reads
 * past a list's block, so damaged link lists cannot crash it.  Searches
 * may run meanwhile.  Cost: one pass over every list, and for each link at
 * most one scan of its target's list (reciprocity): O(edges x M0).
 * Errors: SW_ENULL, SW_ENOMEM (for the reachability pass).
 */
SW_API sw_status sw_get_stats(const sw_index *index, sw_stats *out);

/**
 * Check the index's invariants: links in range, not to themselves, not
 * twice, only to nodes on that layer, degrees within bounds, labels mapped
 * both ways, counts consistent, the entry point on the top layer and every
 * node reachable from it.  SW_OK when all hold; SW_ECORRUPT naming the
 * first problem (in sw_last_error()) otherwise.  Waits for adds in flight.
 * Reachability is not required under inner product: there a node's last
 * in-link may be given up, as in hnswlib, and vectors that larger-norm
 * neighbours outrank for almost every query can end up unreachable (under
 * 1% on clustered data, a fifth to a third of 1,000 uniform vectors, fewer
 * than hnswlib leaves); such a vector is
 * then never returned.  sw_stats.unreachable counts them.  Under the
 * other metrics an unreachable node is reported (sw_compact links it back
 * in).  To count
 * every problem of a damaged graph rather than stop at the first, use
 * sw_get_stats (self, duplicate and dangling links, overfull lists).
 * Errors: SW_ENULL, SW_ECORRUPT, SW_ENOMEM.
 */
SW_API sw_status sw_verify(const sw_index *index);

/** Largest metadata blob, in bytes. */
#define SW_MAX_METADATA 65536u

/**
 * Attach an application's own bytes to the index (up to SW_MAX_METADATA;
 * len 0 clears them).  They are saved and loaded with it, and the library
 * never reads them; the Python package keeps its settings there.  Copied.
 * Errors: SW_ENULL (data NULL with len > 0), SW_EINVAL (too long),
 * SW_ENOMEM (the old bytes are kept), SW_EREADONLY.
 */
SW_API sw_status sw_set_metadata(sw_index *index, const void *data, size_t len);

/**
 * Copy the metadata into buf[0..cap) (buf may be NULL when cap is 0) and
 * store its full length in *len.  Errors: SW_ENULL.
 */
SW_API sw_status sw_get_metadata(const sw_index *index, void *buf, size_t cap, size_t *len);

/* ===================================================================== */
/* Files                                                                 */
/* ===================================================================== */

/**
 * Save the index to `path`.  The file is written beside the target under a
 * temporary name, flushed to disk and renamed over the target, so a crash
 * leaves either the old file or the new one.  Tombstones are saved as
 * such; truly deleted vectors are not in the file at all.  Safe during searches and
 * adds (see the top).
 * Errors: SW_ENULL, SW_EIO (see sw_last_error() for the OS message),
 * SW_ENOMEM, SW_ECORRUPT (a mapped index whose file is damaged: see
 * sw_open_mmap; nothing is written).
 */
SW_API sw_status sw_save(const sw_index *index, const char *path);

/**
 * Load an index saved by sw_save().  `allocator` may be NULL.  The loaded
 * index gives the same results as the saved one.
 * Errors: SW_ENULL, SW_EINVAL (allocator with a NULL function), SW_EIO
 * (cannot open or read), SW_ECORRUPT (bad magic,
 * truncated, out-of-range field), SW_EVERSION, SW_ENOMEM.
 */
SW_API sw_status sw_load(const char *path, const sw_allocator *allocator, sw_index **out);

/**
 * Serve a file saved by sw_save() read-only, without copying it: the
 * vectors and layer-0 links stay in a memory mapping of the file and are
 * paged in as searches touch them, so opening takes about as long as
 * reading the labels, levels and upper layers (some 30 bytes a node).
 * Everything of the file but the records' contents is checked as sw_load
 * checks it; a damaged record can give wrong results but never a read
 * outside the mapping, and sw_verify() checks the records too (reading
 * the whole file), as sw_save() of a mapped index does before writing.
 * Searches, sw_get, sw_list_labels, stats, sw_set_ef (a search parameter)
 * and sw_save work; every call that would change the index fails with
 * SW_EREADONLY.
 * The file must not be truncated or rewritten in place while it is served
 * (sw_save replaces files by rename, which a mapping survives).  On a
 * big-endian machine the file is read into memory instead, still
 * read-only.  Files of format versions before 4 cannot be mapped
 * (SW_EVERSION); sw_load and sw_save convert them.
 * Errors: as sw_load.
 */
SW_API sw_status sw_open_mmap(const char *path, const sw_allocator *allocator, sw_index **out);

/** 1 if the index was opened with sw_open_mmap (every write refused), 0
 * otherwise and for NULL. */
SW_API int sw_is_readonly(const sw_index *index);

#ifdef __cplusplus
}
#endif

#endif /* SMALLWORLD_H */
