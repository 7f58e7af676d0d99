/*
 * testutil.h — helpers shared by the test files: data generation, reference
 * distances, recall against the exact oracle, snapshots of an index for
 * "a failed call changed nothing" checks, temporary directories, and a
 * counting, failure-injecting allocator.  See testutil.c for the why.
 */
#ifndef SW_TESTUTIL_H
#define SW_TESTUTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "smallworld.h"
#include "sw_test.h"

/*
 * The library's own graph checker (src/check.c).  Declared here rather than
 * by including src/internal.h, so the tests do not compile against private
 * structures that may change under them; the signature is the contract.
 */
int sw__check_graph(const sw_index *index, char *err, size_t errlen);

/* sw__check_graph, except that under inner product up to 2% of the nodes
 * may be unreachable: there a node's last in-link is not protected (as in
 * hnswlib; src/insert.c says why).  0 when the graph passes. */
int tu_check_graph(const sw_index *index, char *err, size_t errlen);

/* what: a word of context for the message ("IP", "after updates"). */
#define CHECK_GRAPH_AT(ix, what)                                               \
    do {                                                                       \
        char sw_t_err_[512] = "";                                              \
        if (tu_check_graph((ix), sw_t_err_, sizeof sw_t_err_) != 0)            \
            sw_test_fail_at(__FILE__, __LINE__, "sw__check_graph(%s) [%s]: %s", #ix, (what), \
                            sw_t_err_);                                        \
    } while (0)
#define CHECK_GRAPH(ix) CHECK_GRAPH_AT(ix, "")

/* A big-endian machine cannot serve the little-endian records of a file
 * in place: sw_open_mmap reads them in (and checks them all), still
 * read-only. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define TU_MAPS_IN_PLACE 0
#else
#define TU_MAPS_IN_PLACE 1
#endif

/* ---- random numbers ------------------------------------------------- */

typedef struct tu_rng {
    uint64_t state;
} tu_rng;

void tu_rng_seed(tu_rng *r, uint64_t seed);
uint64_t tu_rng_next(tu_rng *r);
double tu_rng_uniform(tu_rng *r); /* [0, 1) */
double tu_rng_gauss(tu_rng *r);   /* standard normal */
uint64_t tu_rng_below(tu_rng *r, uint64_t n);

/* ---- data ----------------------------------------------------------- */

/*
 * n points of a Gaussian mixture with n_centres clusters in dim dimensions,
 * row-major, malloc'd (NULL on allocation failure).  The cluster centres are
 * a function of centre_seed alone, so a base set and its queries share them
 * when drawn with the same centre_seed and different point_seed.
 */
float *tu_clustered(size_t n, uint32_t dim, uint32_t n_centres, uint64_t centre_seed,
                    uint64_t point_seed);

/* Reference distance in double precision, by the definitions in smallworld.h
 * (cosine normalises both sides; a zero vector is at distance 1). */
double tu_ref_dist(sw_metric metric, const float *a, const float *b, size_t dim);

/* Tolerance for comparing a reported float distance with tu_ref_dist. */
double tu_dist_tol(double reference);

/* Create an index from opt and add data rows with labels 0..n-1 (in order).
 * Records a test failure and returns NULL on any error. */
sw_index *tu_build(const sw_options *opt, const float *data, size_t n);
/* The same under labels[i] for row i (labels NULL: row numbers). */
sw_index *tu_build_labels(const sw_options *opt, const float *data, const uint64_t *labels,
                          size_t n);

typedef struct tu_recall {
    double tie_aware; /* results no farther than the exact k-th, averaged */
    double by_label;  /* |approx labels ∩ exact labels| / k, averaged */
} tu_recall;

/*
 * Recall@k of sw_search at the given ef against sw_search_exact, over nq
 * queries.  Ties at the k-th distance are common with integer data, so the
 * tie-aware figure is the one to assert on.  Also checks (as test failures)
 * that every search succeeds and returns k distinct labels.
 */
tu_recall tu_measure_recall(const sw_index *ix, const float *queries, size_t nq, size_t k,
                            uint32_t ef);
/* The same with every search parameter the caller's (ef_upper, stats...). */
tu_recall tu_measure_recall_with(const sw_index *ix, const float *queries, size_t nq, size_t k,
                                 const sw_search_params *params);

/* ---- snapshots -------------------------------------------------------- */

/* What an index answers: count, search and exact results for fixed probes,
 * and (when dir is given) the bytes of its saved file. */
typedef struct tu_snapshot {
    size_t count;
    size_t n_searches;
    size_t n_values;
    uint64_t *labels;
    float *dists;
    size_t *found;
    unsigned char *file;
    size_t file_len;
} tu_snapshot;

/* 0 on success; records a test failure and returns -1 otherwise. */
int tu_snapshot_take(tu_snapshot *s, const sw_index *ix, const float *probes, size_t n_probes,
                     size_t k, const char *dir);
/* 1 if equal (bitwise for distances); else 0 with the difference in why. */
int tu_snapshot_equal(const tu_snapshot *a, const tu_snapshot *b, char *why, size_t whylen);
void tu_snapshot_free(tu_snapshot *s);

/* ---- files ------------------------------------------------------------ */

/* A fresh private directory under $TMPDIR or /tmp, into buf.  0 on success. */
int tu_mkdtemp(char *buf, size_t len);
/* Remove every entry of a flat directory, then the directory. */
void tu_rmtree(const char *dir);
/* Number of entries in a directory other than . and .., or -1. */
int tu_count_entries(const char *dir);
/* Whole file into a malloc'd buffer; NULL on error (an empty file gives a
 * non-NULL buffer and *len 0). */
unsigned char *tu_read_file(const char *path, size_t *len);
int tu_write_file(const char *path, const void *data, size_t len);
/* Directory holding the shared data sets: $SW_SHARED_DIR or the build-time
 * default. */
const char *tu_shared_dir(void);

/* ---- index files, byte by byte (the layout: src/persist.c) ------------ */

/* Little-endian fields, as the file stores them. */
uint32_t tu_get_u32(const unsigned char *p);
uint64_t tu_get_u64(const unsigned char *p);
void tu_put_u32(unsigned char *p, uint32_t v);
void tu_put_u64(unsigned char *p, uint64_t v);
/* CRC-32C (Castagnoli), the file's checksum, written independently of the
 * library's so that a test can seal an edited file. */
uint32_t tu_crc32c(const unsigned char *p, size_t n);
/* Recompute the trailing checksum of a whole file of len bytes (format
 * versions 1 to 3, one CRC over everything before it). */
void tu_reseal(unsigned char *file, size_t len);

/* Format 4: a 128-byte header with its own CRC, sections at multiples of
 * 64, a table of 32-byte entries after the last one, a 32-byte footer. */
enum {
    TU_V4_HEADER = 128,
    TU_V4_FOOTER = 32,
    TU_V4_ENTRY = 32,
    TU_V4_MAX_SECTIONS = 256,
    /* header fields */
    TU_V4_VERSION = 8,
    TU_V4_HEADER_SIZE = 12,
    TU_V4_REQUIRED = 16,
    TU_V4_OPTIONAL = 20,
    TU_V4_DIM = 24,
    TU_V4_METRIC = 28,
    TU_V4_ELEM = 32,
    TU_V4_M = 36,
    TU_V4_M0 = 40,
    TU_V4_EFC = 44,
    TU_V4_EF = 48,
    TU_V4_FLAGS = 52,
    TU_V4_SEED = 56,
    TU_V4_RNG = 64,
    TU_V4_COUNT = 72,
    TU_V4_TOMBS = 80,
    TU_V4_ENTRY_NODE = 88,
    TU_V4_MAX_LEVEL = 92,
    TU_V4_REC_BYTES = 96,
    TU_V4_VEC_BYTES = 100,
    TU_V4_LINKS_OFF = 104,
    TU_V4_RESERVED = 108,
    TU_V4_HEADER_CRC = 124,
    /* section types */
    TU_SEC_META = 1,
    TU_SEC_LABELS = 2,
    TU_SEC_LEVELS = 3,
    TU_SEC_TOMBSTONES = 4,
    TU_SEC_UPPER = 5,
    TU_SEC_NODES = 6
};

typedef struct tu_v4_section {
    uint32_t type, arg;
    uint64_t off, len;
    uint32_t flags, crc;
    size_t entry_at; /* file offset of its 32-byte table entry */
} tu_v4_section;

typedef struct tu_v4 {
    uint32_t dim, metric, M, M0;
    uint64_t count, tombstones;
    uint32_t entry;
    int32_t max_level;
    uint32_t rec_bytes, vec_bytes, links_off;
    uint64_t table_off; /* from the footer */
    uint32_t nsec;
    tu_v4_section sec[TU_V4_MAX_SECTIONS];
} tu_v4;

/* Parse a format 4 file's header, footer and table: 0 on success, else -1
 * with the reason in why.  The structure is checked (magic, version 4,
 * header size, footer magic and length, the table and every section
 * inside the file); the checksums are not, so an edited file parses. */
int tu_v4_parse(const unsigned char *f, size_t len, tu_v4 *out, char *why, size_t whylen);
/* The first section of that type and argument, or NULL. */
const tu_v4_section *tu_v4_find(const tu_v4 *v, uint32_t type, uint32_t arg);
/* Recompute every checksum of an edited format 4 file, as the table and
 * footer now say: the header's, each section's whose bounds lie inside
 * the file, and the table's.  Whatever lies outside the file is left. */
void tu_v4_reseal(unsigned char *f, size_t len);

/* A file of the source tree's tests/data (tests/corrupt) directory, into
 * buf; SW_TEST_DATA_DIR (SW_TEST_CORRUPT_DIR) in the environment overrides
 * the build-time default. */
const char *tu_data_path(char *buf, size_t len, const char *name);
const char *tu_corrupt_path(char *buf, size_t len, const char *name);

/* ---- counting allocator ------------------------------------------------ */

/*
 * Counts live bytes and blocks, checks every free against its allocation
 * (size, double free, alignment request), and fails on demand: after
 * tu_alloc_fail_after(t, n, persistent), n more allocations succeed, then
 * the next fails, and with persistent every one after it too.  Requests
 * over 1 GiB are refused (counted in n_huge): no test needs one, and only a
 * count read from a corrupt file produces one.
 */
typedef struct tu_alloc {
    sw_allocator api; /* api.ctx points back at this struct */
    pthread_mutex_t mu;
    size_t live_bytes;
    size_t live_blocks;
    size_t n_allocs;
    size_t n_injected;
    size_t n_huge; /* requests over 1 GiB, refused */
    long countdown; /* < 0: never fail */
    int persistent;
    int failing; /* persistent mode has started failing */
    int errors;  /* frees that did not match an allocation, bad requests */
    char first_error[160];
} tu_alloc;

void tu_alloc_init(tu_alloc *t);
void tu_alloc_destroy(tu_alloc *t);
void tu_alloc_fail_after(tu_alloc *t, long n, int persistent);
void tu_alloc_disarm(tu_alloc *t);
size_t tu_alloc_live_bytes(tu_alloc *t);
size_t tu_alloc_injected(tu_alloc *t);

#define CHECK_ALLOC_CLEAN(t)                                                   \
    do {                                                                       \
        if ((t)->errors != 0)                                                  \
            sw_test_fail_at(__FILE__, __LINE__, "allocator misuse (%d): %s",   \
                            (t)->errors, (t)->first_error);                    \
    } while (0)

/* sw_last_error() must be non-empty and lead with sw_strerror(st), as the
 * header promises; a failure is reported at file:line. */
void tu_check_last_error_names(sw_status st, const char *file, int line);

/* The call fails with `expected`, and sw_last_error() names it. */
#define CHECK_FAILS_WITH(call, expected)                                       \
    do {                                                                       \
        CHECK_STATUS(call, expected);                                          \
        tu_check_last_error_names((expected), __FILE__, __LINE__);             \
    } while (0)

/* ---- problems found on worker threads ---------------------------------- */

/* A count and the first message; one per thread (not shared). */
typedef struct tu_errs {
    size_t n;
    char first[320];
} tu_errs;

void tu_err(tu_errs *e, const char *fmt, ...) SW_TEST_PRINTF(2, 3);

#define CHECK_NO_ERRS(e, who)                                                  \
    do {                                                                       \
        if ((e)->n != 0)                                                       \
            sw_test_fail_at(__FILE__, __LINE__, "%s: %zu problem(s), first: %s", (who), \
                            (e)->n, (e)->first);                               \
    } while (0)

#endif /* SW_TESTUTIL_H */
