/*
 * test_persist.c — sw_save and sw_load.
 *
 * A round trip must be invisible: the loaded index answers every query with
 * the same labels and the same distances to the bit, reports the same
 * parameters, returns the same stored vectors, and saves to the same bytes.
 * "Same results" is checked on every query rather than a sample because a
 * loader that drops or reorders one neighbour list changes a handful of
 * queries, not all of them.
 *
 * The loader must trust nothing (hnswlib #673, USearch #776 were crafted-file
 * overflows).  The cheap, systematic part of that is here: an empty file,
 * garbage, a wrong magic, and the real file cut at every sixteenth of its
 * length and one byte short must all be refused with SW_ECORRUPT, by sw_load
 * and sw_open_mmap alike — and under the sanitizer builds, refused without
 * reading out of bounds.  Single-byte corruption anywhere in the file is
 * also tried: format 4 checksums every part of the file, so each must be
 * refused, except that a mapped open does not read the layer-0 records; a
 * change there opens, survives searches, and sw_verify finds it.  Failed
 * loads go through the counting allocator so that a leak on any error path
 * fails the test.  (Edits that recompute the checksums are test_crafted.c's;
 * fixed damaged files, tests/corrupt/ and test_corrupt.c.)
 *
 * Files live in a private mkdtemp directory, removed at the end of each
 * test, so parallel runs (ctest -j, several build trees) do not collide.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sw_test.h"
#include "testutil.h"

static const sw_metric all_metrics[] = {SW_METRIC_L2, SW_METRIC_IP, SW_METRIC_COSINE,
                                        SW_METRIC_L1};
static const char *const metric_names[] = {"L2", "IP", "cosine", "L1"};

/* Number of queries on which a and b answer differently (labels, distances
 * bitwise, or count), for both graph and exact search. */
static size_t count_result_differences(const sw_index *a, const sw_index *b,
                                       const float *queries, size_t nq, size_t k,
                                       uint32_t ef)
{
    size_t dim = sw_dim(a), diffs = 0;
    sw_search_params p = sw_search_params_default();
    uint64_t la[32], lb[32];
    float da[32], db[32];

    p.ef = ef;
    if (k > 32)
        k = 32;
    for (size_t q = 0; q < nq; q++) {
        for (int exact = 0; exact < 2; exact++) {
            size_t na = 0, nb = 0;
            sw_status sa, sb;

            memset(la, 0, sizeof la);
            memset(lb, 0, sizeof lb);
            memset(da, 0, sizeof da);
            memset(db, 0, sizeof db);
            if (exact) {
                sa = sw_search_exact(a, queries + q * dim, dim, k, NULL, la, da, &na);
                sb = sw_search_exact(b, queries + q * dim, dim, k, NULL, lb, db, &nb);
            } else {
                sa = sw_search(a, queries + q * dim, dim, k, &p, la, da, &na);
                sb = sw_search(b, queries + q * dim, dim, k, &p, lb, db, &nb);
            }
            if (sa != SW_OK || sb != SW_OK || na != nb ||
                memcmp(la, lb, na * sizeof la[0]) != 0 || memcmp(da, db, na * sizeof da[0]) != 0)
                diffs++;
        }
    }
    return diffs;
}

TEST(persist_round_trip_each_metric)
{
    SKIP_UNDER_TSAN();
    const uint32_t dim = 16;
    const size_t n = 3000, nq = 100;
    float *data = tu_clustered(n, dim, 16, 301, 302);
    float *queries = tu_clustered(nq, dim, 16, 301, 303);
    float *va = malloc(dim * sizeof *va), *vb = malloc(dim * sizeof *vb);
    char dir[256], path[300], path2[300];

    REQUIRE(data != NULL && queries != NULL && va != NULL && vb != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/index.swi", dir);
    snprintf(path2, sizeof path2, "%s/again.swi", dir);

    for (size_t m = 0; m < 4; m++) {
        sw_options o = sw_options_default(), oa, ob;
        sw_index *a, *b = NULL;
        unsigned char *fa, *fb;
        size_t la_len = 0, lb_len = 0, diffs, vec_diffs = 0;

        o.dim = dim;
        o.metric = all_metrics[m];
        /* Non-default parameters, so that a loader which fills in defaults
         * instead of reading the file is caught. */
        o.M = 12;
        o.M0 = 20 + (uint32_t)m;
        o.ef_construction = 80;
        o.ef_search = 41;
        o.seed = 99 + m;
        o.keep_pruned = (m & 1) != 0;
        o.extend_candidates = (m & 2) != 0;
        a = tu_build(&o, data, n);
        if (a == NULL)
            continue;
        CHECK_OK(sw_set_ef(a, 57));
        CHECK_OK(sw_save(a, path));
        CHECK_STATUS(sw_load(path, NULL, &b), SW_OK);
        if (b == NULL) {
            sw_free(a);
            continue;
        }
        CHECK_EQ_UINT(sw_count(b), sw_count(a));
        CHECK_EQ_UINT(sw_dim(b), dim);
        CHECK_EQ_INT(sw_get_metric(b), all_metrics[m]);
        CHECK_EQ_UINT(sw_get_ef(b), 57);
        CHECK_OK(sw_get_options(a, &oa));
        CHECK_OK(sw_get_options(b, &ob));
        CHECK_EQ_UINT(ob.dim, oa.dim);
        CHECK_EQ_INT(ob.metric, oa.metric);
        CHECK_EQ_UINT(ob.M, 12);
        CHECK_EQ_UINT(ob.M0, 20 + m);
        CHECK_EQ_UINT(ob.ef_construction, 80);
        CHECK_EQ_UINT(ob.ef_search, 57);
        CHECK_EQ_UINT(ob.seed, 99 + m);
        CHECK_EQ_INT(ob.keep_pruned, (m & 1) != 0);
        CHECK_EQ_INT(ob.extend_candidates, (m & 2) != 0);
        CHECK(ob.allocator == NULL);
        CHECK_GRAPH_AT(b, metric_names[m]);

        diffs = count_result_differences(a, b, queries, nq, 10, 0) +
                count_result_differences(a, b, queries, nq, 25, 150);
        if (diffs != 0)
            sw_test_fail_at(__FILE__, __LINE__, "%s: %zu of %zu searches differ after load",
                            metric_names[m], diffs, 4 * nq);
        for (size_t i = 0; i < n; i++) {
            if (sw_get(a, i, va, dim) != SW_OK || sw_get(b, i, vb, dim) != SW_OK ||
                memcmp(va, vb, dim * sizeof *va) != 0)
                vec_diffs++;
        }
        CHECK_EQ_UINT(vec_diffs, 0);

        /* Saving what was loaded gives the same bytes. */
        CHECK_OK(sw_save(b, path2));
        fa = tu_read_file(path, &la_len);
        fb = tu_read_file(path2, &lb_len);
        CHECK(fa != NULL && fb != NULL);
        if (fa != NULL && fb != NULL)
            CHECK(la_len == lb_len && memcmp(fa, fb, la_len) == 0);
        free(fa);
        free(fb);

        /* The loaded index is a full index: it takes adds and updates. */
        CHECK_OK(sw_add(b, n + 5, queries, dim));
        CHECK_OK(sw_add(b, 3, queries + dim, dim));
        CHECK_EQ_UINT(sw_count(b), n + 1);
        CHECK_OK(sw_get(b, 3, vb, dim));
        if (all_metrics[m] != SW_METRIC_COSINE)
            CHECK(memcmp(vb, queries + dim, dim * sizeof *vb) == 0);
        if (all_metrics[m] != SW_METRIC_IP) { /* under IP, x need not be x's nearest */
            uint64_t lab[1];
            size_t nf = 0;
            CHECK_OK(sw_search(b, queries, dim, 1, NULL, lab, NULL, &nf));
            CHECK_EQ_UINT(lab[0], n + 5);
            CHECK_OK(sw_search(b, queries + dim, dim, 1, NULL, lab, NULL, &nf));
            CHECK_EQ_UINT(lab[0], 3);
        }
        CHECK_GRAPH_AT(b, metric_names[m]);
        sw_free(a);
        sw_free(b);
    }
    tu_rmtree(dir);
    free(data);
    free(queries);
    free(va);
    free(vb);
}

TEST(persist_empty_index)
{
    char dir[256], path[300];
    sw_options o = sw_options_default();
    sw_index *a = NULL, *b = NULL;
    const float v[3] = {1, 2, 3};
    size_t nf = 9;

    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/empty.swi", dir);
    o.dim = 3;
    o.metric = SW_METRIC_COSINE;
    REQUIRE_OK(sw_create(&o, &a));
    CHECK_OK(sw_save(a, path));
    CHECK_OK(sw_load(path, NULL, &b));
    if (b != NULL) {
        CHECK_EQ_UINT(sw_count(b), 0);
        CHECK_EQ_UINT(sw_dim(b), 3);
        CHECK_EQ_INT(sw_get_metric(b), SW_METRIC_COSINE);
        CHECK_OK(sw_search(b, v, 3, 4, NULL, NULL, NULL, &nf));
        CHECK_EQ_UINT(nf, 0);
        CHECK_OK(sw_add(b, 1, v, 3));
        CHECK_OK(sw_search(b, v, 3, 4, NULL, NULL, NULL, &nf));
        CHECK_EQ_UINT(nf, 1);
        sw_free(b);
    }
    sw_free(a);
    tu_rmtree(dir);
}

TEST(persist_refusals)
{
    char dir[256], path[300], missing[300], nodir[300];
    sw_options o = sw_options_default();
    sw_index *a = NULL, *b;
    const float v[2] = {1, 2};

    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/x.swi", dir);
    snprintf(missing, sizeof missing, "%s/does-not-exist.swi", dir);
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.swi", dir);
    o.dim = 2;
    REQUIRE_OK(sw_create(&o, &a));
    CHECK_OK(sw_add(a, 1, v, 2));

    CHECK_STATUS(sw_save(NULL, path), SW_ENULL);
    CHECK_STATUS(sw_save(a, NULL), SW_ENULL);
    CHECK_STATUS(sw_save(a, nodir), SW_EIO);
    CHECK(sw_last_error()[0] != '\0');
    CHECK_EQ_INT(tu_count_entries(dir), 0);

    b = (sw_index *)&o;
    CHECK_STATUS(sw_load(NULL, NULL, &b), SW_ENULL);
    CHECK(b == NULL);
    CHECK_OK(sw_save(a, path));
    CHECK_STATUS(sw_load(path, NULL, NULL), SW_ENULL);
    b = (sw_index *)&o;
    CHECK_STATUS(sw_load(missing, NULL, &b), SW_EIO);
    CHECK(b == NULL);
    CHECK(sw_last_error()[0] != '\0');
    /* A directory cannot be read as a file. */
    b = (sw_index *)&o;
    {
        sw_status st = sw_load(dir, NULL, &b);
        if (st != SW_EIO && st != SW_ECORRUPT)
            sw_test_fail_at(__FILE__, __LINE__, "loading a directory: %s, want SW_EIO",
                            sw_test_status_name(st));
    }
    CHECK(b == NULL);
    sw_free(a);
    tu_rmtree(dir);
}

TEST(persist_overwrite_leaves_no_temporaries)
{
    const uint32_t dim = 4;
    float *data = tu_clustered(400, dim, 4, 311, 312);
    char dir[256], path[300];
    sw_options o = sw_options_default();
    sw_index *a, *c, *b = NULL;

    REQUIRE(data != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/target.swi", dir);
    o.dim = dim;
    a = tu_build(&o, data, 100);
    c = tu_build(&o, data, 400);
    REQUIRE(a != NULL && c != NULL);

    CHECK_OK(sw_save(a, path));
    CHECK_EQ_INT(tu_count_entries(dir), 1);
    CHECK_OK(sw_save(c, path));
    CHECK_EQ_INT(tu_count_entries(dir), 1);
    CHECK_OK(sw_load(path, NULL, &b));
    CHECK_EQ_UINT(sw_count(b), 400);
    sw_free(b);
    b = NULL;
    CHECK_OK(sw_save(a, path));
    CHECK_OK(sw_load(path, NULL, &b));
    CHECK_EQ_UINT(sw_count(b), 100);
    CHECK_EQ_INT(tu_count_entries(dir), 1);
    sw_free(b);
    sw_free(a);
    sw_free(c);
    tu_rmtree(dir);
    free(data);
}

TEST(persist_load_uses_given_allocator)
{
    const uint32_t dim = 8;
    float *data = tu_clustered(500, dim, 4, 321, 322);
    char dir[256], path[300];
    sw_options o = sw_options_default(), got;
    sw_index *a, *b = NULL;
    tu_alloc ta;

    REQUIRE(data != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/a.swi", dir);
    tu_alloc_init(&ta);
    o.dim = dim;
    a = tu_build(&o, data, 500);
    REQUIRE(a != NULL);
    CHECK_OK(sw_save(a, path));
    CHECK_OK(sw_load(path, &ta.api, &b));
    if (b != NULL) {
        CHECK(tu_alloc_live_bytes(&ta) >= 500 * dim * sizeof(float));
        CHECK(sw_memory_usage(b) <= tu_alloc_live_bytes(&ta));
        CHECK_OK(sw_get_options(b, &got));
        CHECK(got.allocator == &ta.api);
        CHECK_EQ_UINT(count_result_differences(a, b, data, 50, 10, 0), 0);
        sw_free(b);
    }
    CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), 0);
    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
    sw_free(a);
    tu_rmtree(dir);
    free(data);
}

/* Expect SW_ECORRUPT for these bytes from sw_load and from sw_open_mmap,
 * with no leak through the allocator. */
static void expect_corrupt(const char *path, const void *bytes, size_t len, tu_alloc *ta,
                           const char *what)
{
    if (tu_write_file(path, bytes, len) != 0) {
        sw_test_fail_at(__FILE__, __LINE__, "cannot write %s", path);
        return;
    }
    for (int mapped = 0; mapped < 2; mapped++) {
        const char *who = mapped ? "sw_open_mmap" : "sw_load";
        sw_index *b = (sw_index *)(void *)ta;
        sw_status st = mapped ? sw_open_mmap(path, &ta->api, &b) : sw_load(path, &ta->api, &b);

        if (st != SW_ECORRUPT)
            sw_test_fail_at(__FILE__, __LINE__, "%s (%zu bytes): %s gave %s, want SW_ECORRUPT (%s)",
                            what, len, who, sw_test_status_name(st), sw_last_error());
        if (st == SW_OK)
            sw_free(b);
        else if (b != NULL)
            sw_test_fail_at(__FILE__, __LINE__, "%s: %s: *out not NULL after a failure", what,
                            who);
        if (tu_alloc_live_bytes(ta) != 0)
            sw_test_fail_at(__FILE__, __LINE__, "%s: %s leaked %zu bytes", what, who,
                            tu_alloc_live_bytes(ta));
    }
}

static void corrupt_files_for(sw_metric metric)
{
    const uint32_t dim = 12;
    float *data = tu_clustered(700, dim, 8, 331, 332);
    char dir[256], good[300], bad[300], what[64];
    sw_options o = sw_options_default();
    unsigned char *file = NULL, *copy = NULL;
    size_t len = 0;
    sw_index *a = NULL;
    tu_alloc ta;
    tu_rng r;

    tu_alloc_init(&ta);
    if (data == NULL || tu_mkdtemp(dir, sizeof dir) != 0) {
        sw_test_fail_at(__FILE__, __LINE__, "setup failed");
        goto done;
    }
    snprintf(good, sizeof good, "%s/good.swi", dir);
    snprintf(bad, sizeof bad, "%s/bad.swi", dir);
    o.dim = dim;
    o.metric = metric;
    a = tu_build(&o, data, 700);
    if (a == NULL || sw_save(a, good) != SW_OK ||
        (file = tu_read_file(good, &len)) == NULL || len < 16 ||
        (copy = malloc(len)) == NULL) {
        sw_test_fail_at(__FILE__, __LINE__, "could not make a file to corrupt");
        goto done;
    }

    expect_corrupt(bad, "", 0, &ta, "empty file");
    for (int i = 1; i < 16; i++) {
        snprintf(what, sizeof what, "truncated to %d/16", i);
        expect_corrupt(bad, file, len * (size_t)i / 16, &ta, what);
    }
    expect_corrupt(bad, file, len - 1, &ta, "one byte short");
    for (size_t cut = 1; cut < 64 && cut < len; cut++) {
        snprintf(what, sizeof what, "truncated to %zu bytes", cut);
        expect_corrupt(bad, file, cut, &ta, what);
    }
    memcpy(copy, file, len);
    copy[0] ^= 0xFF;
    expect_corrupt(bad, copy, len, &ta, "wrong magic");
    tu_rng_seed(&r, 333);
    for (size_t i = 0; i < len; i++)
        copy[i] = (unsigned char)tu_rng_next(&r);
    expect_corrupt(bad, copy, len, &ta, "random bytes");
    expect_corrupt(bad, copy, 4096 < len ? 4096 : len, &ta, "random bytes, short");
    memset(copy, 0, len);
    expect_corrupt(bad, copy, len, &ta, "zeros");

done:
    free(file);
    free(copy);
    sw_free(a);
    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
    tu_rmtree(dir);
    free(data);
}

TEST(persist_corrupt_files_refused_l2)
{
    corrupt_files_for(SW_METRIC_L2);
}

TEST(persist_corrupt_files_refused_cosine)
{
    corrupt_files_for(SW_METRIC_COSINE);
}

/*
 * One byte changed at a time, at 300 places spread over the file plus every
 * byte of the first 128 (the header, where counts and sizes live).  Format
 * 4 covers every byte with a checksum or a check (the header, each section
 * and the table have CRCs, the gaps must be zero, the footer's fields must
 * agree with the file), so sw_load must refuse each one, with SW_ECORRUPT
 * or (a changed version) SW_EVERSION.  sw_open_mmap does not read the
 * layer-0 records: a change there opens, must survive searches, and
 * sw_verify must then find it; anywhere else it is refused as by sw_load.
 * And no leak either way.
 */
TEST(persist_byte_flips_refused)
{
    const uint32_t dim = 8;
    float *data = tu_clustered(600, dim, 8, 341, 342);
    char dir[256], good[300], bad[300], why[200];
    sw_options o = sw_options_default();
    unsigned char *file = NULL, *copy = NULL;
    size_t len = 0, refused = 0, mapped_ok = 0, tried = 0;
    sw_index *a = NULL;
    tu_v4 *v = malloc(sizeof *v);
    const tu_v4_section *nodes = NULL;
    tu_alloc ta;

    tu_alloc_init(&ta);
    REQUIRE(data != NULL && v != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(good, sizeof good, "%s/good.swi", dir);
    snprintf(bad, sizeof bad, "%s/bad.swi", dir);
    o.dim = dim;
    a = tu_build(&o, data, 600);
    if (a == NULL || sw_save(a, good) != SW_OK ||
        (file = tu_read_file(good, &len)) == NULL || len == 0 ||
        (copy = malloc(len)) == NULL) {
        sw_test_fail_at(__FILE__, __LINE__, "could not make a file to corrupt");
        goto done;
    }
    if (tu_v4_parse(file, len, v, why, sizeof why) != 0 ||
        (nodes = tu_v4_find(v, TU_SEC_NODES, 0)) == NULL) {
        sw_test_fail_at(__FILE__, __LINE__, "the saved file does not parse: %s", why);
        goto done;
    }
    for (size_t t = 0; t < 428; t++) {
        size_t pos = t < 128 ? t : (t - 128) * len / 300;
        int in_records = pos >= nodes->off && pos < nodes->off + nodes->len;

        if (pos >= len)
            continue;
        memcpy(copy, file, len);
        copy[pos] ^= (unsigned char)(t < 128 ? 0xFF : 0x10);
        if (tu_write_file(bad, copy, len) != 0)
            break;
        tried++;
        for (int mapped = 0; mapped < 2; mapped++) {
            const char *who = mapped ? "sw_open_mmap" : "sw_load";
            sw_index *b = NULL;
            sw_status st = mapped ? sw_open_mmap(bad, &ta.api, &b) : sw_load(bad, &ta.api, &b);

            if (st == SW_OK) {
                uint64_t lab[10];
                size_t nf = 0;

                if (!(mapped && in_records && TU_MAPS_IN_PLACE))
                    sw_test_fail_at(__FILE__, __LINE__, "flip at %zu: %s loaded it", pos, who);
                mapped_ok++;
                for (size_t q = 0; q < 5; q++) {
                    (void)sw_search(b, data + q * 97 * dim, dim, 10, NULL, lab, NULL, &nf);
                    (void)sw_search_exact(b, data + q * 97 * dim, dim, 10, NULL, lab, NULL, &nf);
                }
                if (sw_verify(b) != SW_ECORRUPT)
                    sw_test_fail_at(__FILE__, __LINE__,
                                    "flip at %zu (in the records): mapped, sw_verify passed", pos);
                sw_free(b);
            } else {
                refused++;
                if (st != SW_ECORRUPT && st != SW_EVERSION)
                    sw_test_fail_at(__FILE__, __LINE__, "flip at %zu: %s: unexpected %s", pos,
                                    who, sw_test_status_name(st));
                if (b != NULL)
                    sw_test_fail_at(__FILE__, __LINE__, "flip at %zu: %s: *out not NULL", pos,
                                    who);
            }
            if (tu_alloc_live_bytes(&ta) != 0) {
                sw_test_fail_at(__FILE__, __LINE__, "flip at %zu: %s: %zu bytes leaked", pos,
                                who, tu_alloc_live_bytes(&ta));
                break;
            }
        }
    }
    NOTE("%zu single-byte corruptions of a %zu-byte file: %zu refusals, %zu mapped opens of "
         "damaged records (sw_verify found each)",
         tried, len, refused, mapped_ok);
    CHECK(tried > 300);
    /* a big-endian host reads a mapped file in and checks the records too */
    if (TU_MAPS_IN_PLACE)
        CHECK(mapped_ok > 0);
    else
        CHECK_EQ_UINT(mapped_ok, 0);

done:
    free(v);
    free(file);
    free(copy);
    sw_free(a);
    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
    tu_rmtree(dir);
    free(data);
}

/* Saving over a file keeps its mode (other users keep their access); a
 * new file gets 0666 less the umask, as any new file; saving to a
 * symbolic link replaces the file it names and leaves the link. */
TEST(persist_save_keeps_mode_and_follows_links)
{
    const uint32_t dim = 4;
    float *data = tu_clustered(50, dim, 2, 61, 62);
    sw_options o = sw_options_default();
    sw_index *ix, *b = NULL;
    char dir[256], path[300], link[300], fresh[300];
    struct stat sb;
    mode_t old = umask(022);

    REQUIRE(data != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/a.swi", dir);
    snprintf(link, sizeof link, "%s/link.swi", dir);
    snprintf(fresh, sizeof fresh, "%s/new.swi", dir);
    o.dim = dim;
    ix = tu_build(&o, data, 40);
    REQUIRE(ix != NULL);
    REQUIRE_OK(sw_save(ix, fresh));
    REQUIRE(stat(fresh, &sb) == 0);
    CHECK_EQ_UINT(sb.st_mode & 07777, 0644);
    REQUIRE_OK(sw_save(ix, path));
    REQUIRE(chmod(path, 0640) == 0);
    REQUIRE_OK(sw_add(ix, 1000, data + 40 * dim, dim));
    REQUIRE_OK(sw_save(ix, path));
    REQUIRE(stat(path, &sb) == 0);
    CHECK_EQ_UINT(sb.st_mode & 07777, 0640);
    REQUIRE(symlink("a.swi", link) == 0);
    REQUIRE_OK(sw_add(ix, 1001, data + 41 * dim, dim));
    REQUIRE_OK(sw_save(ix, link));
    REQUIRE(lstat(link, &sb) == 0);
    CHECK(S_ISLNK(sb.st_mode));
    REQUIRE_OK(sw_load(path, NULL, &b));
    CHECK_EQ_UINT(sw_count(b), 42); /* the file behind the link has both adds */
    sw_free(b);
    CHECK_EQ_INT(tu_count_entries(dir), 3); /* a.swi, link.swi, new.swi: no temporaries */
    umask(old);
    sw_free(ix);
    free(data);
    tu_rmtree(dir);
}
