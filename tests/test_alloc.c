/*
 * test_alloc.c — out of memory, by failure injection (SQLite's fault.c idea).
 *
 * For each operation the test allocator is told to fail after N = 0, 1, 2,
 * ... successful allocations, and the operation is retried with growing N
 * until it succeeds; so every allocation the operation makes is, in turn,
 * the one that fails.  Two modes: persistent (once failing, every later
 * allocation fails too — catches cleanup paths that allocate) and one-shot
 * (only that allocation fails — catches code that ignores one NULL and
 * carries on with the next allocation).  After each failure:
 *
 *   - the status is SW_ENOMEM and sw_last_error() says so;
 *   - the index is unchanged: same count, same probe-search results, same
 *     saved bytes (testutil.h snapshots), the new label absent, the updated
 *     label still holding its old vector;
 *   - nothing leaked: after sw_free, or after a failed create or load, the
 *     allocator holds zero live bytes, and every free matched an allocation
 *     in pointer and size.
 *
 * Searches allocate only scratch space, pooled on the index, so a probe
 * search would warm the pool and hide the allocation under test.  The
 * search tests therefore compare against a twin index built identically
 * and never starved, instead of a before/after snapshot of the same index.
 *
 * Adds are tried at every index size from 0 to a few thousand, since
 * allocations cluster at growth points (label map doubling, a new chunk, a
 * larger visited array) that only some adds reach; the index dimension is
 * large enough that several storage chunks fill up on the way.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sw_test.h"
#include "testutil.h"

#define MAX_ATTEMPTS 20000

static const char *mode_name(int persistent)
{
    return persistent ? "persistent" : "one-shot";
}

static void check_enomem(sw_status st, const char *what, long n, int persistent,
                         const char *file, int line)
{
    if (st != SW_ENOMEM)
        sw_test_fail_at(file, line, "%s, failing after %ld allocations (%s): got %s, want "
                        "SW_ENOMEM (%s)",
                        what, n, mode_name(persistent), sw_test_status_name(st),
                        sw_last_error());
    else if (strncmp(sw_last_error(), sw_strerror(SW_ENOMEM), strlen(sw_strerror(SW_ENOMEM))) != 0)
        sw_test_fail_at(file, line, "%s: sw_last_error() \"%s\" does not name SW_ENOMEM", what,
                        sw_last_error());
}

/* ===================================================================== */
/* Create                                                                */
/* ===================================================================== */

TEST(alloc_create_fails_cleanly)
{
    for (int persistent = 1; persistent >= 0; persistent--) {
        for (size_t m = 0; m < 4; m++) {
            sw_options o = sw_options_default();
            tu_alloc ta;
            long n;
            int failed_first = 0;

            tu_alloc_init(&ta);
            o.dim = 24;
            o.metric = (sw_metric)m;
            o.allocator = &ta.api;
            for (n = 0; n < MAX_ATTEMPTS; n++) {
                sw_index *ix = (sw_index *)(void *)&ta;
                sw_status st;
                size_t injected;

                tu_alloc_fail_after(&ta, n, persistent);
                st = sw_create(&o, &ix);
                injected = tu_alloc_injected(&ta);
                tu_alloc_disarm(&ta);
                if (st == SW_OK) {
                    CHECK(ix != NULL);
                    sw_free(ix);
                    CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), 0);
                    if (injected == 0)
                        break;
                    continue;
                }
                if (n == 0)
                    failed_first = 1;
                check_enomem(st, "sw_create", n, persistent, __FILE__, __LINE__);
                CHECK(ix == NULL);
                if (tu_alloc_live_bytes(&ta) != 0)
                    sw_test_fail_at(__FILE__, __LINE__, "failed sw_create (n=%ld) leaked %zu B",
                                    n, tu_alloc_live_bytes(&ta));
                if (sw_test_failed())
                    break;
            }
            CHECK(n < MAX_ATTEMPTS);
            /* An index cannot be made of nothing: its first allocation
             * failing must fail the create, which proves it used ours. */
            CHECK(failed_first);
            CHECK_ALLOC_CLEAN(&ta);
            tu_alloc_destroy(&ta);
        }
    }
}

/* ===================================================================== */
/* Add and update, with full snapshots                                   */
/* ===================================================================== */

/*
 * Starve one sw_add(label, v) at every allocation in turn, on an index that
 * holds `n_before` rows of data.  Each attempt starts from a freshly loaded
 * copy, whose scratch pool is cold, so the add has to allocate its working
 * memory as well as any storage; a copy that had served a search or an add
 * before would hand it warm scratch and hide those allocations.  After a
 * failure the copy must be indistinguishable from a twin loaded from the
 * same file and never starved (testutil.h snapshot, saved bytes included).
 */
static void starve_add(uint64_t label, const float *v, const float *data, size_t n_before,
                       int persistent, int must_allocate, const char *what)
{
    const uint32_t dim = 8;
    float *probes = tu_clustered(5, dim, 8, 601, 603);
    float old[8], now[8];
    sw_options o = sw_options_default();
    sw_index *twin = NULL;
    tu_snapshot s0, s1;
    char dir[256], base[300], why[128];
    int have_s0 = 0, was_present = 0;
    long n = 0;
    tu_alloc ta;

    tu_alloc_init(&ta);
    o.dim = dim;
    if (probes == NULL || tu_mkdtemp(dir, sizeof dir) != 0) {
        sw_test_fail_at(__FILE__, __LINE__, "setup failed");
        goto done;
    }
    snprintf(base, sizeof base, "%s/base.swi", dir);
    {
        sw_index *a = tu_build(&o, data, n_before);
        sw_status st = a ? sw_save(a, base) : SW_EINVAL;

        sw_free(a);
        if (st != SW_OK) {
            sw_test_fail_at(__FILE__, __LINE__, "%s: cannot save the base index", what);
            goto cleanup;
        }
    }
    if (sw_load(base, NULL, &twin) != SW_OK) {
        sw_test_fail_at(__FILE__, __LINE__, "%s: cannot load the base index", what);
        goto cleanup;
    }
    was_present = sw_contains(twin, label);
    if (was_present)
        CHECK_OK(sw_get(twin, label, old, dim));
    have_s0 = tu_snapshot_take(&s0, twin, probes, 5, 10, dir) == 0;
    if (!have_s0)
        goto cleanup;

    for (n = 0; n < MAX_ATTEMPTS; n++) {
        sw_index *ix = NULL;
        sw_status st;
        size_t injected;

        if (sw_load(base, &ta.api, &ix) != SW_OK) {
            sw_test_fail_at(__FILE__, __LINE__, "%s: reload failed: %s", what, sw_last_error());
            break;
        }
        tu_alloc_fail_after(&ta, n, persistent);
        st = sw_add(ix, label, v, dim);
        injected = tu_alloc_injected(&ta);
        tu_alloc_disarm(&ta);
        if (st == SW_OK) {
            if (injected == 0) {
                uint64_t lab;
                size_t nf = 0;

                CHECK_EQ_INT(sw_contains(ix, label), 1);
                CHECK_EQ_UINT(sw_count(ix), n_before + !was_present);
                CHECK_OK(sw_search_exact(ix, v, dim, 1, NULL, &lab, NULL, &nf));
                CHECK_EQ_UINT(lab, label);
                CHECK_GRAPH_AT(ix, what);
                sw_free(ix);
                break;
            }
            /* One-shot: the library coped with a failed allocation. */
            sw_free(ix);
            continue;
        }
        check_enomem(st, what, n, persistent, __FILE__, __LINE__);
        if (tu_snapshot_take(&s1, ix, probes, 5, 10, dir) == 0) {
            if (!tu_snapshot_equal(&s0, &s1, why, sizeof why))
                sw_test_fail_at(__FILE__, __LINE__,
                                "%s failing after %ld allocations (%s) changed the index: %s",
                                what, n, mode_name(persistent), why);
            tu_snapshot_free(&s1);
        }
        CHECK_EQ_INT(sw_contains(ix, label), was_present);
        if (was_present) {
            CHECK_OK(sw_get(ix, label, now, dim));
            CHECK(memcmp(old, now, sizeof old) == 0);
        }
        sw_free(ix);
        if (tu_alloc_live_bytes(&ta) != 0)
            sw_test_fail_at(__FILE__, __LINE__, "%s: %zu bytes left after sw_free", what,
                            tu_alloc_live_bytes(&ta));
        if (sw_test_failed())
            break;
    }
    CHECK(n < MAX_ATTEMPTS);
    NOTE("%s (%s): %ld starved attempts refused", what, mode_name(persistent), n);
    /* Storage for a first node cannot come from nowhere: a zero here would
     * mean the index bypassed the allocator it was given. */
    if (must_allocate)
        CHECK(n > 0);
cleanup:
    if (have_s0)
        tu_snapshot_free(&s0);
    sw_free(twin);
    tu_rmtree(dir);
done:
    CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), 0);
    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
    free(probes);
}

TEST(alloc_add_and_update_leave_index_unchanged)
{
    const uint32_t dim = 8;
    float *data = tu_clustered(400, dim, 8, 601, 602);
    const float far[8] = {9, -9, 9, -9, 9, -9, 9, -9};

    REQUIRE(data != NULL);
    for (int persistent = 1; persistent >= 0; persistent--) {
        /* into an empty index, its first node */
        starve_add(5, data, data, 0, persistent, 1, "first add");
        /* the second node, the first that links */
        starve_add(6, data + dim, data, 1, persistent, 0, "second add");
        /* a new label into a populated index (scratch must be made) */
        starve_add(1000, data + 399 * dim, data, 399, persistent, 1, "add");
        /* an update of a present label, moved far */
        starve_add(17, far, data, 300, persistent, 1, "update");
        /* an update of the only node */
        starve_add(0, far, data, 1, persistent, 0, "update of the only node");
    }
    free(data);
}

/* ===================================================================== */
/* Add at every size                                                     */
/* ===================================================================== */

/* The nearest few of a fixed probe, for a cheap "unchanged" check per add. */
typedef struct probe_result {
    size_t nf;
    uint64_t lab[5];
    float d[5];
} probe_result;

static sw_status probe(const sw_index *ix, const float *q, probe_result *r)
{
    memset(r, 0, sizeof *r);
    return sw_search(ix, q, sw_dim(ix), 5, NULL, r->lab, r->d, &r->nf);
}

static int same_probe(const probe_result *a, const probe_result *b)
{
    return a->nf == b->nf && memcmp(a->lab, b->lab, sizeof a->lab) == 0 &&
           memcmp(a->d, b->d, sizeof a->d) == 0;
}

/*
 * Grows an index to n vectors of a wide dimension (so that records are big
 * and storage chunks fill after a few hundred to a thousand nodes), starving
 * every add at every allocation it makes; every third add is an update of a
 * random present label, so updates meet the growth points too.
 */
TEST(alloc_every_add_until_several_chunks)
{
    const uint32_t dim = 384;
    const size_t n = 2600;
    float *data = tu_clustered(n, dim, 16, 611, 612);
    float *upd = tu_clustered(n / 3 + 1, dim, 16, 611, 613);
    float *q = tu_clustered(1, dim, 16, 611, 614);
    sw_options o = sw_options_default();
    sw_index *ix = NULL;
    size_t starved = 0, failures = 0, count = 0, n_upd = 0;
    tu_rng r;
    tu_alloc ta;

    tu_alloc_init(&ta);
    REQUIRE(data != NULL && upd != NULL && q != NULL);
    o.dim = dim;
    o.M = 8;
    o.ef_construction = 64;
    o.allocator = &ta.api;
    REQUIRE_OK(sw_create(&o, &ix));
    tu_rng_seed(&r, 615);

    for (size_t i = 0; i < n && !sw_test_failed(); i++) {
        int is_update = count > 0 && i % 3 == 2;
        uint64_t label = is_update ? tu_rng_below(&r, count) : count;
        const float *v = is_update ? upd + (n_upd++) * dim : data + count * dim;
        probe_result before, after;
        long k;

        if (probe(ix, q, &before) != SW_OK) {
            sw_test_fail_at(__FILE__, __LINE__, "probe search failed: %s", sw_last_error());
            break;
        }
        for (k = 0; k < MAX_ATTEMPTS; k++) {
            sw_status st;

            tu_alloc_fail_after(&ta, k, 1);
            st = sw_add(ix, label, v, dim);
            tu_alloc_disarm(&ta);
            if (st == SW_OK)
                break;
            failures++;
            check_enomem(st, is_update ? "update" : "add", k, 1, __FILE__, __LINE__);
            if (sw_count(ix) != count || (!is_update && sw_contains(ix, label)))
                sw_test_fail_at(__FILE__, __LINE__,
                                "starved %s of label %llu at size %zu changed the index",
                                is_update ? "update" : "add", (unsigned long long)label, count);
            CHECK_OK(probe(ix, q, &after));
            if (!same_probe(&before, &after))
                sw_test_fail_at(__FILE__, __LINE__,
                                "starved %s at size %zu (after %ld allocations) changed the "
                                "probe results",
                                is_update ? "update" : "add", count, k);
            if (sw_test_failed())
                break;
        }
        if (k > 0)
            starved++;
        if (!is_update)
            count++;
    }
    NOTE("%zu operations, %zu needed memory; %zu starved attempts refused", n, starved,
         failures);
    CHECK_EQ_UINT(sw_count(ix), count);
    CHECK(starved > 0);
    CHECK_GRAPH(ix);
    sw_free(ix);
    CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), 0);
    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
    free(data);
    free(upd);
    free(q);
}

/* ===================================================================== */
/* Search                                                                */
/* ===================================================================== */

TEST(alloc_search_fails_cleanly)
{
    SKIP_UNDER_TSAN();
    const uint32_t dim = 16;
    const size_t n = 2000, k = 300;
    float *data = tu_clustered(n, dim, 16, 621, 622);
    float *queries = tu_clustered(4, dim, 16, 621, 623);
    uint64_t *la = malloc(k * sizeof *la), *lb = malloc(k * sizeof *lb);
    float *da = malloc(k * sizeof *da), *db = malloc(k * sizeof *db);
    const uint32_t efs[] = {0, 400, 1600, 6400};
    char dir[256], why[128];

    REQUIRE(data != NULL && queries != NULL && la && lb && da && db);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    for (int persistent = 1; persistent >= 0; persistent--) {
        for (int exact = 0; exact < 2; exact++) {
            sw_options o = sw_options_default();
            sw_index *ix, *twin;
            tu_snapshot s_ix, s_twin;
            size_t refused = 0;
            tu_alloc ta;

            tu_alloc_init(&ta);
            o.dim = dim;
            o.allocator = &ta.api;
            ix = tu_build(&o, data, n);
            o.allocator = NULL;
            twin = tu_build(&o, data, n);
            REQUIRE(ix != NULL && twin != NULL);

            /* Growing ef and k make every search need bigger scratch. */
            for (size_t e = 0; e < sizeof efs / sizeof efs[0]; e++) {
                sw_search_params p = sw_search_params_default();
                size_t kk = e == 0 ? 10 : k;
                long m;

                p.ef = efs[e];
                for (m = 0; m < MAX_ATTEMPTS; m++) {
                    size_t na = 77, nb = 0;
                    sw_status st;

                    tu_alloc_fail_after(&ta, m, persistent);
                    st = exact ? sw_search_exact(ix, queries + e * dim, dim, kk, &p, la, da, &na)
                               : sw_search(ix, queries + e * dim, dim, kk, &p, la, da, &na);
                    tu_alloc_disarm(&ta);
                    if (st == SW_OK) {
                        CHECK_OK(exact ? sw_search_exact(twin, queries + e * dim, dim, kk, &p,
                                                         lb, db, &nb)
                                       : sw_search(twin, queries + e * dim, dim, kk, &p, lb, db,
                                                   &nb));
                        if (na != nb || memcmp(la, lb, na * sizeof *la) != 0 ||
                            memcmp(da, db, na * sizeof *da) != 0)
                            sw_test_fail_at(__FILE__, __LINE__,
                                            "search after %ld starved attempts differs from "
                                            "the twin's",
                                            m);
                        break;
                    }
                    refused++;
                    check_enomem(st, exact ? "sw_search_exact" : "sw_search", m, persistent,
                                 __FILE__, __LINE__);
                    CHECK_EQ_UINT(na, 0);
                    if (sw_test_failed())
                        break;
                }
                CHECK(m < MAX_ATTEMPTS);
            }
            if (!exact)
                NOTE("%s: %zu starved searches refused", mode_name(persistent), refused);
            if (tu_snapshot_take(&s_ix, ix, queries, 4, 10, dir) == 0) {
                if (tu_snapshot_take(&s_twin, twin, queries, 4, 10, dir) == 0) {
                    if (!tu_snapshot_equal(&s_ix, &s_twin, why, sizeof why))
                        sw_test_fail_at(__FILE__, __LINE__,
                                        "starved searches changed the index: %s", why);
                    tu_snapshot_free(&s_twin);
                }
                tu_snapshot_free(&s_ix);
            }
            sw_free(ix);
            sw_free(twin);
            CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), 0);
            CHECK_ALLOC_CLEAN(&ta);
            tu_alloc_destroy(&ta);
        }
    }
    tu_rmtree(dir);
    free(data);
    free(queries);
    free(la);
    free(lb);
    free(da);
    free(db);
}

/* ===================================================================== */
/* Save and load                                                         */
/* ===================================================================== */

TEST(alloc_save_fails_cleanly)
{
    const uint32_t dim = 8;
    float *data = tu_clustered(800, dim, 8, 631, 632);
    char dir[256], target[300], ref_path[300];
    unsigned char *old_bytes = NULL, *new_bytes = NULL, *got;
    size_t old_len = 0, new_len = 0, got_len = 0;
    sw_options o = sw_options_default();
    sw_index *a = NULL, *b = NULL;
    tu_alloc ta;

    tu_alloc_init(&ta);
    REQUIRE(data != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(target, sizeof target, "%s/target.swi", dir);
    snprintf(ref_path, sizeof ref_path, "%s/reference.swi", dir);
    o.dim = dim;
    o.allocator = &ta.api;
    a = tu_build(&o, data, 300);
    b = tu_build(&o, data, 800);
    REQUIRE(a != NULL && b != NULL);
    REQUIRE_OK(sw_save(b, ref_path));
    new_bytes = tu_read_file(ref_path, &new_len);
    remove(ref_path);

    for (int persistent = 1; persistent >= 0; persistent--) {
        long n;

        CHECK_OK(sw_save(a, target));
        free(old_bytes);
        old_bytes = tu_read_file(target, &old_len);
        REQUIRE(old_bytes != NULL && new_bytes != NULL);
        for (n = 0; n < MAX_ATTEMPTS; n++) {
            sw_status st;
            size_t injected;

            tu_alloc_fail_after(&ta, n, persistent);
            st = sw_save(b, target);
            injected = tu_alloc_injected(&ta);
            tu_alloc_disarm(&ta);
            got = tu_read_file(target, &got_len);
            if (st == SW_OK) {
                CHECK(got != NULL && got_len == new_len && memcmp(got, new_bytes, new_len) == 0);
                free(got);
                if (injected == 0)
                    break;
                CHECK_OK(sw_save(a, target));
                continue;
            }
            check_enomem(st, "sw_save", n, persistent, __FILE__, __LINE__);
            /* The old file is intact, and no temporary is left behind. */
            if (got == NULL || got_len != old_len || memcmp(got, old_bytes, old_len) != 0)
                sw_test_fail_at(__FILE__, __LINE__, "failed save (n=%ld) damaged the target", n);
            free(got);
            if (tu_count_entries(dir) != 1)
                sw_test_fail_at(__FILE__, __LINE__,
                                "failed save (n=%ld) left %d files in the directory", n,
                                tu_count_entries(dir));
            if (sw_test_failed())
                break;
        }
        CHECK(n < MAX_ATTEMPTS);
        NOTE("sw_save (%s) succeeded with %ld allocations allowed", mode_name(persistent), n);
    }
    sw_free(a);
    sw_free(b);
    CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), 0);
    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
    tu_rmtree(dir);
    free(old_bytes);
    free(new_bytes);
    free(data);
}

TEST(alloc_load_fails_cleanly)
{
    const uint32_t dim = 8;
    float *data = tu_clustered(1500, dim, 8, 641, 642);
    char dir[256], path[300], why[128];
    sw_options o = sw_options_default();
    sw_index *src = NULL;
    tu_snapshot s_src;
    tu_alloc ta;

    tu_alloc_init(&ta);
    REQUIRE(data != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/src.swi", dir);
    o.dim = dim;
    o.metric = SW_METRIC_COSINE;
    src = tu_build(&o, data, 1500);
    REQUIRE(src != NULL);
    REQUIRE_OK(sw_save(src, path));
    REQUIRE(tu_snapshot_take(&s_src, src, data, 5, 10, NULL) == 0);

    /* sw_load, then sw_open_mmap: a mapped open that fails part way must
     * unmap the file once and free everything (it once unmapped twice) */
    for (int step = 0; step < 4; step++) {
        int persistent = !(step & 1), mapped = step >= 2;
        const char *fn = mapped ? "sw_open_mmap" : "sw_load";
        long n;
        size_t refused = 0;

        for (n = 0; n < MAX_ATTEMPTS; n++) {
            sw_index *b = (sw_index *)(void *)&ta;
            sw_status st;
            size_t injected;

            tu_alloc_fail_after(&ta, n, persistent);
            st = mapped ? sw_open_mmap(path, &ta.api, &b) : sw_load(path, &ta.api, &b);
            injected = tu_alloc_injected(&ta);
            tu_alloc_disarm(&ta);
            if (st == SW_OK) {
                tu_snapshot s_b;

                if (tu_snapshot_take(&s_b, b, data, 5, 10, NULL) == 0) {
                    if (!tu_snapshot_equal(&s_src, &s_b, why, sizeof why))
                        sw_test_fail_at(__FILE__, __LINE__,
                                        "index loaded after %ld starved attempts differs: %s",
                                        n, why);
                    tu_snapshot_free(&s_b);
                }
                sw_free(b);
                CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), 0);
                if (injected == 0)
                    break;
                continue;
            }
            refused++;
            check_enomem(st, fn, n, persistent, __FILE__, __LINE__);
            CHECK(b == NULL);
            if (tu_alloc_live_bytes(&ta) != 0)
                sw_test_fail_at(__FILE__, __LINE__, "failed %s (n=%ld) leaked %zu B", fn, n,
                                tu_alloc_live_bytes(&ta));
            if (sw_test_failed())
                break;
        }
        CHECK(n < MAX_ATTEMPTS);
        CHECK(refused > 0); /* loading allocates, through the given allocator */
        NOTE("%s (%s): %zu starved loads refused before success", fn, mode_name(persistent),
             refused);
    }
    tu_snapshot_free(&s_src);
    sw_free(src);
    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
    tu_rmtree(dir);
    free(data);
}
