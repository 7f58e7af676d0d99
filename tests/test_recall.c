/*
 * test_recall.c — search quality, measured against the exact oracle.
 *
 * Generated data: 20,000 vectors of dimension 32 drawn from 64 Gaussian
 * clusters, 200 queries from the same mixture, M = 16, ef_construction =
 * 200, and recall@10 at ef = 200 must reach 0.99 for every metric.  The size
 * is a compromise: big enough that a broken neighbour selection or a layer
 * bug shows up as lost recall (on a few hundred vectors even a poor graph
 * finds everything at ef = 200), small enough that the four builds stay a
 * few seconds in an optimised build and the suite stays usable under
 * sanitizers on a two-core CI machine.
 *
 * Real data: the first 9,000 vectors of BIGANN (SIFT descriptors, uint8)
 * with 1,000 queries and precomputed ground truth, read from
 * $SW_SHARED_DIR/data/bigann10k when it exists.  Besides recall this
 * validates the oracle itself: sw_search_exact's ten nearest distances must
 * equal the ground-truth file's.  The data are integers, so squared L2
 * distances are integers below 2^24 and exact in float whatever the
 * summation order; ties are real, and recall is counted tie-aware (a result
 * at the same distance as the k-th true neighbour is as good as it).
 * The files hold little-endian int32 headers (n, d) and row-major data,
 * read here on the assumption of a little-endian host, as everywhere the
 * library is built today.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sw_test.h"
#include "testutil.h"

#define GEN_N 20000
#define GEN_DIM 32
#define GEN_CENTRES 64
#define GEN_QUERIES 200
#define RECALL_K 10
#define RECALL_EF 200

static void generated_recall(sw_metric metric, const char *name)
{
    float *base = tu_clustered(GEN_N, GEN_DIM, GEN_CENTRES, 2024, 1);
    float *queries = tu_clustered(GEN_QUERIES, GEN_DIM, GEN_CENTRES, 2024, 2);
    sw_options o = sw_options_default();
    sw_index *ix;
    tu_recall r;

    if (base == NULL || queries == NULL) {
        sw_test_fail_at(__FILE__, __LINE__, "out of memory");
        goto done;
    }
    o.dim = GEN_DIM;
    o.metric = metric;
    o.M = 16;
    o.ef_construction = 200;
    ix = tu_build(&o, base, GEN_N);
    if (ix == NULL)
        goto done;
    CHECK_EQ_UINT(sw_count(ix), GEN_N);
    CHECK_GRAPH_AT(ix, name); /* under IP up to 2% may be unreachable (testutil.h) */
    if (metric == SW_METRIC_IP) {
        char why[256];
        if (sw__check_graph(ix, why, sizeof why) != 0) NOTE("IP: %s", why);
    }
    r = tu_measure_recall(ix, queries, GEN_QUERIES, RECALL_K, RECALL_EF);
    NOTE("%s: recall@%d at ef=%d on %d x %d: %.4f (by label %.4f)", name, RECALL_K, RECALL_EF,
         GEN_N, GEN_DIM, r.tie_aware, r.by_label);
    CHECK(r.tie_aware >= 0.99);
    sw_free(ix);
done:
    free(base);
    free(queries);
}

TEST(recall_generated_l2)
{
    SKIP_UNDER_TSAN();
    generated_recall(SW_METRIC_L2, "L2");
}

TEST(recall_generated_ip)
{
    SKIP_UNDER_TSAN();
    generated_recall(SW_METRIC_IP, "IP");
}

TEST(recall_generated_cosine)
{
    SKIP_UNDER_TSAN();
    generated_recall(SW_METRIC_COSINE, "cosine");
}

TEST(recall_generated_l1)
{
    SKIP_UNDER_TSAN();
    generated_recall(SW_METRIC_L1, "L1");
}

/* ===================================================================== */
/* BIGANN 10k                                                            */
/* ===================================================================== */

typedef struct bin_file {
    unsigned char *bytes;
    size_t len;
    int32_t n, d;
    const unsigned char *data;
} bin_file;

/* Reads one file and checks its shape; on failure records why. */
static int read_bin(const char *dir, const char *name, size_t elem, int32_t want_n,
                    int32_t want_d, bin_file *out)
{
    char path[1024];

    memset(out, 0, sizeof *out);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    out->bytes = tu_read_file(path, &out->len);
    if (out->bytes == NULL || out->len < 8) {
        sw_test_fail_at(__FILE__, __LINE__, "cannot read %s", path);
        return -1;
    }
    memcpy(&out->n, out->bytes, 4);
    memcpy(&out->d, out->bytes + 4, 4);
    if (out->n != want_n || out->d != want_d ||
        out->len != 8 + (size_t)out->n * (size_t)out->d * elem) {
        sw_test_fail_at(__FILE__, __LINE__, "%s: shape %d x %d, %zu bytes; want %d x %d", path,
                        out->n, out->d, out->len, want_n, want_d);
        return -1;
    }
    out->data = out->bytes + 8;
    return 0;
}

TEST(recall_bigann10k)
{
    enum { NB = 9000, NQ = 1000, D = 128, NGT = 100, K = RECALL_K };
    char dir[1024];
    bin_file fb, fq, fg, fd;
    float *base = NULL, *queries = NULL;
    sw_options o = sw_options_default();
    sw_search_params p = sw_search_params_default();
    sw_index *ix = NULL;
    double hit_tie = 0, hit_gt_ids = 0;
    size_t oracle_bad = 0;
    tu_recall r;
    FILE *probe;

    SKIP_UNDER_TSAN();
    snprintf(dir, sizeof dir, "%s/data/bigann10k", tu_shared_dir());
    memset(&fb, 0, sizeof fb);
    memset(&fq, 0, sizeof fq);
    memset(&fg, 0, sizeof fg);
    memset(&fd, 0, sizeof fd);
    {
        char path[1100];
        snprintf(path, sizeof path, "%s/base.u8bin", dir);
        probe = fopen(path, "rb");
        if (probe == NULL) {
            char reason[1200];
            snprintf(reason, sizeof reason,
                     "%s not found (set SW_SHARED_DIR to the folder holding data/)", path);
            SKIP(reason);
        }
        fclose(probe);
    }
    if (read_bin(dir, "base.u8bin", 1, NB, D, &fb) != 0 ||
        read_bin(dir, "query.u8bin", 1, NQ, D, &fq) != 0 ||
        read_bin(dir, "gt.ibin", 4, NQ, NGT, &fg) != 0 ||
        read_bin(dir, "gt_dist.fbin", 4, NQ, NGT, &fd) != 0)
        goto done;

    base = malloc((size_t)NB * D * sizeof *base);
    queries = malloc((size_t)NQ * D * sizeof *queries);
    if (base == NULL || queries == NULL) {
        sw_test_fail_at(__FILE__, __LINE__, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < (size_t)NB * D; i++)
        base[i] = (float)fb.data[i];
    for (size_t i = 0; i < (size_t)NQ * D; i++)
        queries[i] = (float)fq.data[i];

    o.dim = D;
    o.metric = SW_METRIC_L2;
    o.M = 16;
    o.ef_construction = 200;
    ix = tu_build(&o, base, NB);
    if (ix == NULL)
        goto done;
    CHECK_GRAPH(ix);

    p.ef = RECALL_EF;
    for (size_t q = 0; q < NQ; q++) {
        const float *v = queries + q * D;
        int32_t gt_ids[K];
        float gt_d[NGT];
        uint64_t al[K], el[K];
        float ad[K], ed[K];
        size_t an = 0, en = 0;

        memcpy(gt_ids, fg.data + q * NGT * 4, sizeof gt_ids);
        memcpy(gt_d, fd.data + q * NGT * 4, sizeof gt_d);
        if (sw_search(ix, v, D, K, &p, al, ad, &an) != SW_OK ||
            sw_search_exact(ix, v, D, K, NULL, el, ed, &en) != SW_OK || an != K || en != K) {
            sw_test_fail_at(__FILE__, __LINE__, "query %zu: search failed or short: %s", q,
                            sw_last_error());
            continue;
        }
        /* The oracle against the file: same distances, and each reported
         * label really is at its reported distance. */
        for (size_t i = 0; i < K; i++) {
            double own = el[i] < NB ? tu_ref_dist(SW_METRIC_L2, v, base + el[i] * D, D) : -1;
            if (ed[i] != gt_d[i] || (double)ed[i] != own) {
                if (oracle_bad++ < 5)
                    sw_test_fail_at(__FILE__, __LINE__,
                                    "query %zu rank %zu: exact label %llu at %.1f "
                                    "(recomputed %.1f), ground truth %.1f",
                                    q, i, (unsigned long long)el[i], (double)ed[i], own,
                                    (double)gt_d[i]);
            }
        }
        for (size_t i = 0; i < K; i++) {
            if (ad[i] <= gt_d[K - 1])
                hit_tie += 1;
            for (size_t j = 0; j < K; j++)
                if ((uint64_t)gt_ids[j] == al[i]) {
                    hit_gt_ids += 1;
                    break;
                }
        }
    }
    hit_tie /= (double)NQ * K;
    hit_gt_ids /= (double)NQ * K;
    r = tu_measure_recall(ix, queries, NQ, K, RECALL_EF);
    NOTE("bigann10k: recall@%d at ef=%d vs ground truth %.4f (by id %.4f), vs exact %.4f",
         K, RECALL_EF, hit_tie, hit_gt_ids, r.tie_aware);
    CHECK_EQ_UINT(oracle_bad, 0);
    CHECK(hit_tie >= 0.99);
    CHECK(r.tie_aware >= 0.99);

done:
    sw_free(ix);
    free(base);
    free(queries);
    free(fb.bytes);
    free(fq.bytes);
    free(fg.bytes);
    free(fd.bytes);
}
