/*
 * test_mmap.c — files every version must go on reading, and serving a file
 * from a mapping.
 *
 * The golden files (tests/data/golden_v1..4.swi, written by the releases
 * whose formats they are; tests/data/make_golden.c) are checked by content:
 * every label, vector, tombstone and the metadata against golden.h's
 * generator, which every machine computes bit for bit.  On a big-endian
 * machine (make test-s390x) the same test proves that a file written on
 * x86 reads right there.
 *
 * A mapped index (sw_open_mmap) must answer exactly as the same file
 * loaded into memory: same labels, same distances, for plain, batch,
 * filtered, range and exact searches, after renumbering (truly deleted
 * slots).  It must refuse every write with SW_EREADONLY and stay as it
 * was, save to a file identical to what the loaded copy saves, and hold a
 * damaged record without reading outside the mapping (ASan watches),
 * while sw_verify finds the damage.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "sw_test.h"
#include "testutil.h"

#ifndef SW_TEST_DATA_DIR
#define SW_TEST_DATA_DIR "tests/data"
#endif

/* ---- golden files -------------------------------------------------------- */

static void check_golden(const sw_index *ix, unsigned version, const char *what)
{
    float *v = malloc(sizeof(float) * GOLDEN_N * GOLDEN_DIM), got[GOLDEN_DIM];
    size_t tombs = 0, bad_vec = 0, bad_tomb = 0, bad_self = 0;
    sw_options o;

    REQUIRE(v != NULL);
    golden_vectors(v, GOLDEN_N, GOLDEN_DIM);
    REQUIRE_OK(sw_get_options(ix, &o));
    CHECK_EQ_UINT(o.dim, GOLDEN_DIM);
    CHECK_EQ_UINT(o.M, GOLDEN_M);
    CHECK_EQ_UINT(o.M0, GOLDEN_M0);
    CHECK_EQ_UINT(o.ef_construction, GOLDEN_EFC);
    CHECK_EQ_UINT(o.seed, GOLDEN_SEED);
    CHECK_EQ_INT(o.metric, SW_METRIC_L2);
    for (size_t i = 0; i < GOLDEN_N; i++) {
        /* version 1 had no tombstones: the edit that made the file cleared them */
        int tomb = version >= 2 && golden_tombstoned(i);
        uint64_t label = golden_label(i), found[1];
        float dist[1];
        size_t n = 0;

        tombs += tomb;
        if (sw_is_deleted(ix, label) != tomb)
            bad_tomb++;
        if (tomb)
            continue;
        if (sw_get(ix, label, got, GOLDEN_DIM) != SW_OK ||
            memcmp(got, v + i * GOLDEN_DIM, sizeof got) != 0)
            bad_vec++;
        /* each stored vector finds itself (golden vectors are distinct) */
        if (sw_search(ix, v + i * GOLDEN_DIM, GOLDEN_DIM, 1, NULL, found, dist, &n) != SW_OK ||
            n != 1 || found[0] != label || dist[0] != 0.0f)
            bad_self++;
    }
    if (bad_vec || bad_tomb || bad_self)
        sw_test_fail_at(__FILE__, __LINE__, "%s: %zu vectors, %zu tombstones, %zu self-searches wrong",
                        what, bad_vec, bad_tomb, bad_self);
    CHECK_EQ_UINT(sw_count(ix), GOLDEN_N - tombs);
    CHECK_EQ_UINT(sw_deleted_count(ix), tombs);
    {
        char meta[16] = {0};
        size_t len = 99;

        CHECK_OK(sw_get_metadata(ix, meta, sizeof meta, &len));
        if (version >= 3) {
            CHECK_EQ_UINT(len, sizeof GOLDEN_META - 1);
            CHECK(memcmp(meta, GOLDEN_META, sizeof GOLDEN_META - 1) == 0);
        } else {
            CHECK_EQ_UINT(len, 0);
        }
    }
    CHECK_OK(sw_verify(ix));
    free(v);
}

TEST(golden_every_format_version_reads)
{
    for (unsigned version = 1; version <= 4; version++) {
        char path[512], what[64];
        sw_index *ix = NULL;

        snprintf(path, sizeof path, "%s/golden_v%u.swi", SW_TEST_DATA_DIR, version);
        snprintf(what, sizeof what, "sw_load golden_v%u", version);
        REQUIRE_OK(sw_load(path, NULL, &ix));
        CHECK(!sw_is_readonly(ix));
        check_golden(ix, version, what);
        sw_free(ix);

        if (version < 4) {
            /* the old stream formats cannot be served from a mapping */
            CHECK_STATUS(sw_open_mmap(path, NULL, &ix), SW_EVERSION);
            CHECK(ix == NULL);
            CHECK(strstr(sw_last_error(), "sw_save") != NULL);
        } else {
            snprintf(what, sizeof what, "sw_open_mmap golden_v%u", version);
            REQUIRE_OK(sw_open_mmap(path, NULL, &ix));
            CHECK(sw_is_readonly(ix));
            check_golden(ix, version, what);
            sw_free(ix);
        }
    }
}

/* An old file, loaded and saved again, becomes a version 4 file with the
 * same contents, which then also maps. */
TEST(golden_old_file_converts_by_load_and_save)
{
    char dir[256], src[512], path[512];
    sw_index *a = NULL, *b = NULL;
    unsigned char *f;
    size_t len = 0;

    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(src, sizeof src, "%s/golden_v3.swi", SW_TEST_DATA_DIR);
    snprintf(path, sizeof path, "%s/converted.swi", dir);
    REQUIRE_OK(sw_load(src, NULL, &a));
    REQUIRE_OK(sw_save(a, path));
    f = tu_read_file(path, &len);
    REQUIRE(f != NULL && len > 12);
    CHECK_EQ_UINT(tu_get_u32(f + 8), 4);
    free(f);
    REQUIRE_OK(sw_open_mmap(path, NULL, &b));
    check_golden(b, 3, "converted v3");
    sw_free(b);
    sw_free(a);
    tu_rmtree(dir);
}

/* ---- a mapped index answers as a loaded one --------------------------------- */

static size_t compare_searches(const sw_index *a, const sw_index *b, const float *q, size_t nq,
                               size_t dim, const char *what)
{
    enum { K = 10 };
    uint64_t la[nq * K], lb[nq * K];
    float da[nq * K], db[nq * K];
    size_t fa[nq], fb[nq], diffs = 0;
    sw_search_params p = sw_search_params_default();

    p.ef = 64;
    memset(la, 0, sizeof la);
    memset(lb, 0, sizeof lb);
    memset(da, 0, sizeof da);
    memset(db, 0, sizeof db);
    /* one by one, and as a batch on two threads */
    for (size_t i = 0; i < nq; i++) {
        size_t na = 0, nb = 0;

        CHECK_OK(sw_search(a, q + i * dim, dim, K, &p, la + i * K, da + i * K, &na));
        CHECK_OK(sw_search(b, q + i * dim, dim, K, &p, lb + i * K, db + i * K, &nb));
        if (na != nb || memcmp(la + i * K, lb + i * K, na * 8) || memcmp(da + i * K, db + i * K, na * 4))
            diffs++;
    }
    CHECK_OK(sw_search_batch(a, q, nq, dim, K, &p, la, da, fa, 2));
    CHECK_OK(sw_search_batch(b, q, nq, dim, K, &p, lb, db, fb, 2));
    if (memcmp(fa, fb, sizeof fa) || memcmp(la, lb, sizeof la) || memcmp(da, db, sizeof da))
        diffs++;
    for (size_t i = 0; i < 20 && i < nq; i++) {
        size_t na = 0, nb = 0;

        CHECK_OK(sw_search_exact(a, q + i * dim, dim, K, NULL, la, da, &na));
        CHECK_OK(sw_search_exact(b, q + i * dim, dim, K, NULL, lb, db, &nb));
        if (na != nb || memcmp(la, lb, na * 8) || memcmp(da, db, na * 4))
            diffs++;
        /* range: everything within the 5th distance */
        float r = na >= 5 ? da[4] : 1.0f;
        CHECK_OK(sw_search_range(a, q + i * dim, dim, r, K, &p, la, da, &na));
        CHECK_OK(sw_search_range(b, q + i * dim, dim, r, K, &p, lb, db, &nb));
        if (na != nb || memcmp(la, lb, na * 8) || memcmp(da, db, na * 4))
            diffs++;
    }
    if (diffs)
        sw_test_fail_at(__FILE__, __LINE__, "%s: %zu searches differ between mapped and loaded",
                        what, diffs);
    return diffs;
}

static int odd_label(uint64_t label, void *ctx)
{
    (void)ctx;
    return (int)(label & 1);
}

TEST(mmap_answers_as_loaded)
{
    SKIP_UNDER_TSAN();
    const uint32_t dim = 16;
    const size_t n = 4000, nq = 60;
    float *data = tu_clustered(n, dim, 12, 71, 72);
    float *queries = tu_clustered(nq, dim, 12, 71, 73);
    char dir[256], path[512], path2[512];
    sw_options o = sw_options_default();
    sw_index *built, *loaded = NULL, *mapped = NULL;

    REQUIRE(data != NULL && queries != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/a.swi", dir);
    snprintf(path2, sizeof path2, "%s/b.swi", dir);
    o.dim = dim;
    o.M = 8;
    built = tu_build(&o, data, n);
    REQUIRE(built != NULL);
    /* tombstones, and truly deleted slots, so the file renumbers nodes */
    for (uint64_t l = 0; l < n; l += 13)
        REQUIRE_OK(sw_mark_deleted(built, l));
    for (uint64_t l = 5; l < n; l += 17)
        if (!sw_is_deleted(built, l))
            REQUIRE_OK(sw_delete(built, l));
    REQUIRE_OK(sw_set_metadata(built, "meta", 4));
    REQUIRE_OK(sw_save(built, path));
    REQUIRE_OK(sw_load(path, NULL, &loaded));
    REQUIRE_OK(sw_open_mmap(path, NULL, &mapped));

    CHECK_EQ_UINT(sw_count(mapped), sw_count(loaded));
    CHECK_EQ_UINT(sw_deleted_count(mapped), sw_deleted_count(loaded));
    compare_searches(loaded, mapped, queries, nq, dim, "plain");
    {
        /* filtered searches: a callback and an allow-list */
        sw_search_params p = sw_search_params_default();
        uint64_t allow[300], la[10], lb[10];
        float da[10], db[10];
        size_t diffs = 0;

        for (size_t i = 0; i < 300; i++)
            allow[i] = i * 11;
        for (size_t i = 0; i < nq; i++) {
            size_t na = 0, nb = 0;

            p.filter = odd_label;
            p.allow = NULL;
            p.n_allow = 0;
            CHECK_OK(sw_search(loaded, queries + i * dim, dim, 10, &p, la, da, &na));
            CHECK_OK(sw_search(mapped, queries + i * dim, dim, 10, &p, lb, db, &nb));
            diffs += na != nb || memcmp(la, lb, na * 8) || memcmp(da, db, na * 4);
            p.filter = NULL;
            p.allow = allow;
            p.n_allow = 300;
            CHECK_OK(sw_search(loaded, queries + i * dim, dim, 10, &p, la, da, &na));
            CHECK_OK(sw_search(mapped, queries + i * dim, dim, 10, &p, lb, db, &nb));
            diffs += na != nb || memcmp(la, lb, na * 8) || memcmp(da, db, na * 4);
        }
        CHECK_EQ_UINT(diffs, 0);
    }
    {
        /* the same labels, vectors and metadata */
        size_t ta = 0, tb = 0, bad = 0;
        float va[16], vb[16];
        char meta[8] = {0};
        size_t mlen = 0;

        CHECK_OK(sw_list_labels(loaded, 0, NULL, 0, &ta));
        CHECK_OK(sw_list_labels(mapped, 0, NULL, 0, &tb));
        CHECK_EQ_UINT(ta, tb);
        uint64_t *a = malloc(ta * 8 + 8), *b = malloc(tb * 8 + 8);
        REQUIRE(a != NULL && b != NULL);
        CHECK_OK(sw_list_labels(loaded, 0, a, ta, &ta));
        CHECK_OK(sw_list_labels(mapped, 0, b, tb, &tb));
        CHECK(memcmp(a, b, ta * 8) == 0);
        for (size_t i = 0; i < ta; i++)
            if (sw_get(loaded, a[i], va, dim) != SW_OK || sw_get(mapped, a[i], vb, dim) != SW_OK ||
                memcmp(va, vb, sizeof va) != 0)
                bad++;
        CHECK_EQ_UINT(bad, 0);
        free(a);
        free(b);
        CHECK_OK(sw_get_metadata(mapped, meta, sizeof meta, &mlen));
        CHECK(mlen == 4 && memcmp(meta, "meta", 4) == 0);
    }
    /* recall against the exact search, as any index */
    {
        tu_recall r = tu_measure_recall(mapped, queries, nq, 10, 64);

        NOTE("mapped recall@10 at ef 64: %.4f", r.tie_aware);
        CHECK(r.tie_aware >= 0.95);
    }
    CHECK_OK(sw_verify(mapped));
    /* The vectors and layer-0 lists stay in the file: the mapped index
     * holds far less memory than the loaded one. */
    NOTE("memory: loaded %zu bytes, mapped %zu", sw_memory_usage(loaded), sw_memory_usage(mapped));
    if (TU_MAPS_IN_PLACE)
        CHECK(sw_memory_usage(mapped) * 2 < sw_memory_usage(loaded));
    /* saving a mapped index writes the same bytes as saving the loaded copy */
    {
        unsigned char *fa, *fb;
        size_t la = 0, lb = 0;

        REQUIRE_OK(sw_save(mapped, path2));
        fb = tu_read_file(path2, &lb);
        REQUIRE_OK(sw_save(loaded, path2));
        fa = tu_read_file(path2, &la);
        REQUIRE(fa != NULL && fb != NULL);
        CHECK(la == lb && memcmp(fa, fb, la) == 0);
        free(fa);
        free(fb);
    }
    /* a mapping survives sw_save replacing its file by rename */
    REQUIRE_OK(sw_save(built, path));
    compare_searches(loaded, mapped, queries, 10, dim, "after the file was replaced");

    sw_free(mapped);
    sw_free(loaded);
    sw_free(built);
    free(data);
    free(queries);
    tu_rmtree(dir);
}

TEST(mmap_refuses_writes_and_stays_unchanged)
{
    const uint32_t dim = 8;
    const size_t n = 500;
    float *data = tu_clustered(n, dim, 4, 81, 82);
    char dir[256], path[512];
    sw_options o = sw_options_default();
    sw_index *built, *ix = NULL;
    tu_snapshot before, after;
    uint64_t labels[2] = {9000, 9001};
    char why[256];

    REQUIRE(data != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/ro.swi", dir);
    o.dim = dim;
    built = tu_build(&o, data, n);
    REQUIRE(built != NULL);
    REQUIRE_OK(sw_mark_deleted(built, 7));
    REQUIRE_OK(sw_save(built, path));
    REQUIRE_OK(sw_open_mmap(path, NULL, &ix));
    REQUIRE(tu_snapshot_take(&before, ix, data, 20, 5, dir) == 0);

    CHECK_STATUS(sw_add(ix, 9000, data, dim), SW_EREADONLY);
    CHECK(strstr(sw_last_error(), "sw_add") != NULL && strstr(sw_last_error(), "read-only") != NULL);
    CHECK_STATUS(sw_add(ix, 3, data, dim), SW_EREADONLY); /* an update */
    CHECK_STATUS(sw_add_batch(ix, labels, data, 2, dim, 1), SW_EREADONLY);
    CHECK_STATUS(sw_mark_deleted(ix, 3), SW_EREADONLY);
    CHECK_STATUS(sw_unmark_deleted(ix, 7), SW_EREADONLY);
    CHECK_STATUS(sw_delete(ix, 3), SW_EREADONLY);
    CHECK_STATUS(sw_compact(ix, 1), SW_EREADONLY);
    CHECK_STATUS(sw_set_metadata(ix, "x", 1), SW_EREADONLY);
    /* what does not change the index works */
    CHECK_OK(sw_set_ef(ix, 77));
    CHECK_EQ_UINT(sw_get_ef(ix), 77);
    CHECK_OK(sw_set_ef(ix, o.ef_search));
    CHECK(sw_is_deleted(ix, 7) == 1 && sw_contains(ix, 3) == 1);

    REQUIRE(tu_snapshot_take(&after, ix, data, 20, 5, dir) == 0);
    if (!tu_snapshot_equal(&before, &after, why, sizeof why))
        sw_test_fail_at(__FILE__, __LINE__, "refused writes changed the index: %s", why);
    tu_snapshot_free(&before);
    tu_snapshot_free(&after);
    sw_free(ix);
    sw_free(built);
    free(data);
    tu_rmtree(dir);
}

/* ---- a damaged record ---------------------------------------------------- */

/* The offset of the NODES section (type 6) from the table at the end. */
static size_t nodes_offset(const unsigned char *f, size_t len)
{
    uint64_t table = tu_get_u64(f + len - 32);
    uint32_t n = tu_get_u32(f + len - 24);

    for (uint32_t i = 0; i < n; i++)
        if (tu_get_u32(f + table + 32u * i) == 6)
            return (size_t)tu_get_u64(f + table + 32u * i + 8);
    return 0;
}

TEST(mmap_damaged_record_is_contained_and_verify_finds_it)
{
    const uint32_t dim = 8;
    const size_t n = 600;
    float *data = tu_clustered(n, dim, 4, 91, 92);
    char dir[256], path[512];
    sw_options o = sw_options_default();
    sw_index *built, *ix = NULL;
    unsigned char *f;
    size_t len = 0;

    REQUIRE(data != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/dmg.swi", dir);
    o.dim = dim;
    o.M = 6;
    built = tu_build(&o, data, n);
    REQUIRE(built != NULL);
    REQUIRE_OK(sw_save(built, path));
    f = tu_read_file(path, &len);
    REQUIRE(f != NULL);
    size_t nodes = nodes_offset(f, len), rec = tu_get_u32(f + 96), loff = tu_get_u32(f + 104);
    REQUIRE(nodes != 0 && rec != 0);
    /* every 7th record: a huge degree, or a link far past the last node,
     * or a link into the records just past the end of the mapping's
     * nodes; the NaN in a vector, too.  The section checksum is left
     * wrong: a mapped open does not read it. */
    for (size_t i = 0; i < n; i += 7) {
        unsigned char *r = f + nodes + i * rec;
        switch (i / 7 % 4) {
        case 0: tu_put_u32(r + loff, 0xffffffffu); break;
        case 1: tu_put_u32(r + loff + 4, 0x7fffffffu); break;
        case 2: tu_put_u32(r + loff + 4, (uint32_t)n); break;
        default: tu_put_u32(r, 0x7fc00000u); break; /* NaN */
        }
    }
    REQUIRE(tu_write_file(path, f, len) == 0);
    free(f);

    CHECK_STATUS(sw_load(path, NULL, &ix), SW_ECORRUPT);
    if (!TU_MAPS_IN_PLACE) {
        /* read in, so checked in full at once */
        CHECK_STATUS(sw_open_mmap(path, NULL, &ix), SW_ECORRUPT);
        sw_free(built);
        free(data);
        tu_rmtree(dir);
        return;
    }
    REQUIRE_OK(sw_open_mmap(path, NULL, &ix));
    for (size_t q = 0; q < 100; q++) {
        uint64_t labels[10];
        float dists[10];
        size_t found = 0;

        CHECK_OK(sw_search(ix, data + q * dim, dim, 10, NULL, labels, dists, &found));
        CHECK(found <= 10);
        CHECK_OK(sw_search_range(ix, data + q * dim, dim, 1e30f, 10, NULL, labels, NULL, &found));
    }
    {
        sw_stats st;

        CHECK_OK(sw_get_stats(ix, &st));
    }
    CHECK_STATUS(sw_verify(ix), SW_ECORRUPT);
    CHECK(strstr(sw_last_error(), "checksum") != NULL);
    sw_free(ix);
    sw_free(built);
    free(data);
    tu_rmtree(dir);
}

/* ---- the checksum ---------------------------------------------------------- */

/* internal (src/crc32c.c); the tests link the static library */
uint32_t sw__crc32c(uint32_t crc, const void *data, size_t n);
uint32_t sw__crc32c_portable(uint32_t crc, const void *data, size_t n);

TEST(crc32c_hardware_matches_table_and_standard)
{
    unsigned char buf[4096 + 16];
    tu_rng r;
    size_t bad = 0;

    /* the standard check value of CRC-32C */
    CHECK_EQ_UINT(sw__crc32c(0, "123456789", 9), 0xe3069283u);
    CHECK_EQ_UINT(sw__crc32c_portable(0, "123456789", 9), 0xe3069283u);
    CHECK_EQ_UINT(tu_crc32c((const unsigned char *)"123456789", 9), 0xe3069283u);
    tu_rng_seed(&r, 5);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)tu_rng_next(&r);
    /* every alignment and many lengths, in one piece and continued */
    for (size_t off = 0; off < 16; off++)
        for (size_t len = 0; len <= 4096; len += len < 64 ? 1 : 61) {
            uint32_t a = sw__crc32c(0, buf + off, len), b = sw__crc32c_portable(0, buf + off, len);
            uint32_t c = sw__crc32c(sw__crc32c(0, buf + off, len / 3), buf + off + len / 3,
                                    len - len / 3);
            bad += a != b || a != c;
        }
    CHECK_EQ_UINT(bad, 0);
}
