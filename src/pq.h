/*
 * pq.h — product quantization (pq.c): training, codes, lookup tables and
 * the asymmetric and symmetric distances over codes.
 *
 * Self-contained on purpose, so internal.h can include it: the memory
 * context is only forward-declared here.  Everything is internal (sw__).
 */
#ifndef SW_PQ_H
#define SW_PQ_H

#include <stddef.h>
#include <stdint.h>

#include "smallworld.h"

#ifndef SW__HIDDEN
#if defined(__GNUC__) || defined(__clang__)
#define SW__HIDDEN __attribute__((visibility("hidden")))
#else
#define SW__HIDDEN
#endif
#endif

struct sw__mem;

#define SW__PQ_K 256              /* centroids per sub-quantizer: one byte of code */
#define SW__PQ_TRAIN_MAX 65536u   /* rows k-means looks at, at most */

/* What a table entry measures (sw__pq.kind). */
#define SW__PQ_L2 0 /* squared L2 */
#define SW__PQ_IP 1 /* inner product: entries hold -dot, distances read 1 - dot */
#define SW__PQ_L1 2 /* sum of |a - b| */

/* Product quantizer: m sub-quantizers of dsub = dim / m dimensions, 256
 * centroids each. */
typedef struct sw__pq {
    uint32_t dim, m, dsub;
    int kind;    /* SW__PQ_L2, SW__PQ_IP or SW__PQ_L1 */
    float *cent; /* m x 256 x dsub centroids, sub-quantizer-major */
    float *sdc;  /* m x 256 x 256: L2 squared / -dot / L1 between centroids of one sub-quantizer */
    float *cent_t; /* m x dsub x 256: cent again, dimension-major in each sub-quantizer */
} sw__pq;

/* Runs fn(arg, t) for every t < ntasks, in any order, on any threads, and
 * returns when all have returned.  The tasks touch disjoint memory. */
typedef void (*sw__pq_runner)(void *ctx, size_t ntasks, void (*fn)(void *arg, size_t task),
                              void *arg);

/*
 * Train on n rows x[n * dim]: k-means with k = 256 per sub-quantizer, on
 * at most SW__PQ_TRAIN_MAX evenly spaced rows (row i * n / ntrain).  The
 * result depends on the data and seed alone: not on runner, the thread
 * count or the kernel level.  For inner product and L1 training still
 * minimises squared L2; only the tables differ.  Sub-quantizers are
 * trained as runner's tasks (serially when runner is NULL).
 *
 * *pq is output only: overwritten, never freed.  On success it owns cent,
 * sdc and cent_t (release with sw__pq_free).  Returns SW_OK, SW_EINVAL (m = 0, m
 * not dividing dim, n < 256, kind unknown: the caller checks these first)
 * or SW_ENOMEM; on error *pq is zeroed and nothing stays allocated.
 */
SW__HIDDEN sw_status sw__pq_train(struct sw__mem *mem, sw__pq *pq, uint32_t dim, uint32_t m,
                                  int kind, const float *x, size_t n, uint64_t seed,
                                  sw__pq_runner runner, void *runner_ctx);
/* Frees cent, sdc and cent_t (any may be NULL) and zeroes the pointers. */
SW__HIDDEN void sw__pq_free(struct sw__mem *mem, sw__pq *pq);
/* (Re)build sdc and cent_t from dim, m, dsub, kind and cent, as after
 * loading cent from a file.  SW_ENOMEM leaves the old ones (or NULL) in
 * place. */
SW__HIDDEN sw_status sw__pq_build_tables(struct sw__mem *mem, sw__pq *pq);

/* code[m]: the nearest centroid of each sub-quantizer, under squared L2
 * (lowest index on a tie). */
SW__HIDDEN void sw__pq_encode(const sw__pq *pq, const float *x, uint8_t *code);
/* x[dim]: the centroids a code names. */
SW__HIDDEN void sw__pq_decode(const sw__pq *pq, const uint8_t *code, float *x);
/* lut[m * 256]: lut[j*256 + c] is sub-quantizer j's share of the distance
 * from q to centroid c: ||q_j - c||^2 (L2), -<q_j, c> (IP), sum |q_j - c|
 * (L1). */
SW__HIDDEN void sw__pq_lut(const sw__pq *pq, const float *q, float *lut);

/*
 * Asymmetric distance, with the kernel signature (sw__dist_fn) so the
 * search loop calls it through its function pointers: lut is the query's
 * table, code a vector's m bytes, m the number of sub-quantizers.
 * sw__pq_adc_l2 is the plain sum of the m entries (L2 and L1);
 * sw__pq_adc_ip adds 1, so it reads 1 - dot like the float kernels.  The
 * four-code forms (sw__dist4_fn) give out[i] bit-identical to the single
 * form on codes[i].
 */
SW__HIDDEN float sw__pq_adc_l2(const void *lut, const void *code, size_t m);
SW__HIDDEN float sw__pq_adc_ip(const void *lut, const void *code, size_t m);
SW__HIDDEN void sw__pq_adc4_l2(const void *lut, const void *const *codes, size_t m, float *out);
SW__HIDDEN void sw__pq_adc4_ip(const void *lut, const void *const *codes, size_t m, float *out);

/* Symmetric distance between two codes, through sdc (+1 for IP). */
SW__HIDDEN float sw__pq_sdc(const sw__pq *pq, const uint8_t *a, const uint8_t *b);

#endif /* SW_PQ_H */
