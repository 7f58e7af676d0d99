/*
 * test_damage.c — sw_get_stats on a graph damaged in memory.
 *
 * The loader refuses a file with a bad link (test_crafted.c), and the
 * library never writes one, so no public call can produce the damage the
 * integrity report exists to count.  This file makes it by hand: it builds
 * a sound index, then writes into the link lists through src/internal.h
 * (the one other test coupled to the private layout is test_simd.c) a
 * self-link, a duplicate, links out of range, to a freed slot and, on
 * layer 1, to a node that is only on layer 0, and a list count above the
 * layer's bound.  Each is put in a list of its own, so the report must
 * count exactly what was injected, no more (a link classed twice) and no
 * less (one that slipped through as sound).  The out-of-range ids are
 * near 2^32, so following one would index the chunk directory far past
 * its end: the run crashes without a sanitizer, and under ASan any read
 * past a list is reported.  Overwriting can only take sound links away,
 * so the reciprocated count may only fall.  The lists are then restored
 * word for word and the report must be the sound one again, with
 * sw_verify content, before the index is freed.
 */
#include "../src/internal.h" /* first: it sets the POSIX feature level */

#include <stdlib.h>
#include <string.h>

#include "sw_test.h"
#include "testutil.h"

#define DM_N 2000u
#define DM_DIM 16u
#define DM_FAR 0xfffffff0u /* an id no index has */

/* A list saved before it is damaged, to be put back. */
typedef struct saved_list {
    uint32_t *links; /* [count, ids...] */
    uint32_t words[1 + 64];
    size_t n;
} saved_list;

static void save_list(saved_list *sv, uint32_t *links, size_t n)
{
    sv->links = links;
    sv->n = n;
    memcpy(sv->words, links, n * sizeof *links);
}

static void restore_list(const saved_list *sv)
{
    memcpy(sv->links, sv->words, sv->n * sizeof *sv->links);
}

/* A live slot of layer-0 degree at least 2 and level exactly `level`, not
 * among taken[0..ntaken); SW__NONE if there is none. */
static uint32_t pick(const sw_index *ix, int level, const uint32_t *taken, size_t ntaken)
{
    for (uint32_t s = 0; s < ix->count; s++) {
        int used = 0;

        for (size_t i = 0; i < ntaken; i++)
            used |= taken[i] == s;
        if (!used && sw__flags(ix, s) == 0 && sw__level(ix, s) == level &&
            sw__links0(ix, s)[0] >= 2 && (level == 0 || sw__links(ix, s, 1)[0] >= 1))
            return s;
    }
    return SW__NONE;
}

TEST(damage_counted_exactly_and_never_followed)
{
    sw_options o = sw_options_default();
    float *data = tu_clustered(DM_N, DM_DIM, 8, 9101, 9102);
    sw_index *ix;
    sw_stats base, st;
    saved_list sv[6];
    uint32_t taken[8], a, b, c, d, h, e, g, freed, extra;
    size_t nt = 0;
    char why[256];

    REQUIRE(data != NULL);
    o.dim = DM_DIM;
    o.ef_construction = 100;
    ix = tu_build(&o, data, DM_N);
    REQUIRE(ix != NULL);
    /* A freed slot to link to: sw_delete unlinks it everywhere first. */
    freed = sw__labels_find(&ix->labels, 1234);
    REQUIRE(freed != SW__NONE);
    REQUIRE_OK(sw_delete(ix, 1234));
    REQUIRE(sw__flags(ix, freed) & SW__F_FREE);
    REQUIRE_OK(sw_get_stats(ix, &base));
    REQUIRE(base.layers >= 2);
    REQUIRE(ix->M0 < 64 && ix->M < 64); /* a saved_list holds the block */
    CHECK_EQ_UINT(base.self_links + base.duplicate_links + base.dangling_links, 0);
    CHECK_EQ_UINT(base.overfull_lists, 0);

    /* Six distinct nodes to damage, and g, on layer 0 only, to link to. */
    taken[nt++] = freed;
    a = pick(ix, 0, taken, nt);
    taken[nt++] = a;
    b = pick(ix, 0, taken, nt);
    taken[nt++] = b;
    c = pick(ix, 0, taken, nt);
    taken[nt++] = c;
    d = pick(ix, 0, taken, nt);
    taken[nt++] = d;
    h = pick(ix, 0, taken, nt);
    taken[nt++] = h;
    e = pick(ix, 1, taken, nt);
    taken[nt++] = e;
    g = pick(ix, 0, taken, nt);
    REQUIRE(a != SW__NONE && b != SW__NONE && c != SW__NONE && d != SW__NONE);
    REQUIRE(h != SW__NONE && e != SW__NONE && g != SW__NONE);

    save_list(&sv[0], sw__links0(ix, a), 1 + ix->M0);
    save_list(&sv[1], sw__links0(ix, b), 1 + ix->M0);
    save_list(&sv[2], sw__links0(ix, c), 1 + ix->M0);
    save_list(&sv[3], sw__links0(ix, d), 1 + ix->M0);
    save_list(&sv[4], sw__links0(ix, h), 1 + ix->M0);
    save_list(&sv[5], sw__links(ix, e, 1), 1 + ix->M);

    sw__links0(ix, a)[1] = a;                      /* a -> a */
    sw__links0(ix, b)[2] = sw__links0(ix, b)[1];   /* b's first target, again */
    sw__links0(ix, c)[1] = DM_FAR;                 /* past the slots */
    sw__links0(ix, d)[2] = freed;                  /* a freed slot */
    sw__links(ix, e, 1)[1] = g;                    /* layer 1 -> a layer-0 node */
    /* h claims M0 + 7 links: read as M0, the ones past its count far away. */
    extra = ix->M0 - sw__links0(ix, h)[0];
    for (uint32_t j = sw__links0(ix, h)[0] + 1; j <= ix->M0; j++)
        sw__links0(ix, h)[j] = DM_FAR - j;
    sw__links0(ix, h)[0] = ix->M0 + 7;

    REQUIRE_OK(sw_get_stats(ix, &st));
    CHECK_EQ_UINT(st.layer[0].self_links, 1);
    CHECK_EQ_UINT(st.layer[0].duplicate_links, 1);
    CHECK_EQ_UINT(st.layer[0].dangling_links, 2 + extra);
    CHECK_EQ_UINT(st.layer[0].overfull_lists, 1);
    CHECK_EQ_UINT(st.layer[0].edges, base.layer[0].edges + extra);
    CHECK_EQ_UINT(st.layer[0].max_degree, ix->M0);
    CHECK_EQ_UINT(st.layer[1].self_links + st.layer[1].duplicate_links, 0);
    CHECK_EQ_UINT(st.layer[1].dangling_links, 1);
    CHECK_EQ_UINT(st.layer[1].overfull_lists, 0);
    CHECK_EQ_UINT(st.layer[1].edges, base.layer[1].edges);
    for (uint32_t l = 2; l < st.layers; l++)
        CHECK(memcmp(&st.layer[l], &base.layer[l], sizeof st.layer[l]) == 0);
    CHECK_EQ_UINT(st.self_links, 1);
    CHECK_EQ_UINT(st.duplicate_links, 1);
    CHECK_EQ_UINT(st.dangling_links, 3 + extra);
    CHECK_EQ_UINT(st.overfull_lists, 1);
    for (uint32_t l = 0; l < 2; l++) {
        CHECK(st.layer[l].reciprocal_edges <= base.layer[l].reciprocal_edges);
        CHECK(st.layer[l].reciprocal_edges % 2 == 0);
    }
    CHECK(st.unreachable <= st.count);
    CHECK_EQ_UINT(st.count, base.count);
    CHECK_EQ_UINT(st.memory_bytes, base.memory_bytes);
    CHECK_EQ_UINT(st.memory_upper, base.memory_upper);
    /* sw_verify stops at the first of them, and must not crash either. */
    CHECK_EQ_INT(sw__check_graph(ix, why, sizeof why), 1);
    NOTE("injected 1 self, 1 duplicate, %u dangling, 1 overfull; sw_verify: %s", 3 + extra,
         why);

    for (size_t i = 6; i-- > 0;)
        restore_list(&sv[i]);
    REQUIRE_OK(sw_get_stats(ix, &st));
    CHECK(memcmp(st.layer, base.layer, sizeof st.layer) == 0);
    CHECK_EQ_UINT(st.self_links + st.duplicate_links + st.dangling_links, 0);
    CHECK_EQ_UINT(st.unreachable, base.unreachable);
    CHECK_OK(sw_verify(ix));
    sw_free(ix);
    free(data);
}

/* ---- islands ----------------------------------------------------------- */

/* Cut every link into two nodes v, w except v <-> w, so they hold each
 * other's only in-link: an island the in-degree rule cannot see.  The
 * reconnection pass (insert.c, "Islands") must find and link it, leaving
 * a graph that passes the full check, reachability included. */
TEST(damage_island_reconnected)
{
    sw_options o = sw_options_default();
    float *data = tu_clustered(DM_N, DM_DIM, 8, 9201, 9202);
    sw_index *ix;
    uint32_t v = SW__NONE, w = SW__NONE;
    int top;
    char why[256];

    REQUIRE(data != NULL);
    o.dim = DM_DIM;
    o.M = 6;
    ix = tu_build(&o, data, DM_N);
    REQUIRE(ix != NULL);
    uint32_t entry = sw__top(ix, &top);
    /* two level-0 nodes, neither the entry, w in v's list */
    for (uint32_t s = 0; s < ix->count && v == SW__NONE; s++) {
        const uint32_t *l = sw__links0(ix, s);
        if (s == entry || sw__level(ix, s) != 0) continue;
        for (uint32_t j = 1; j <= l[0]; j++)
            if (l[j] != entry && sw__level(ix, l[j]) == 0) {
                v = s;
                w = l[j];
                break;
            }
    }
    REQUIRE(v != SW__NONE);
    for (uint32_t s = 0; s < ix->count; s++)
        for (int l = 0; l <= sw__level(ix, s); l++) {
            uint32_t *links = sw__links(ix, s, l), kept = 0;
            for (uint32_t j = 1; j <= links[0]; j++) {
                uint32_t t = links[j];
                if ((t == v || t == w) && !((s == v && t == w) || (s == w && t == v)))
                    continue;
                links[++kept] = t;
            }
            links[0] = kept;
        }
    /* w must link back to v: append it (w lost nothing it could not spare) */
    {
        uint32_t *lw = sw__links0(ix, w);
        if (!sw__in_list(lw + 1, lw[0], v)) {
            if (lw[0] == ix->M0)
                lw[0]--;
            lw[++lw[0]] = v;
        }
    }
    sw__recount_indegrees(ix);
    CHECK_EQ_UINT(*sw__indeg_ptr(ix, v), 1);
    CHECK_EQ_UINT(*sw__indeg_ptr(ix, w), 1);
    CHECK_EQ_UINT(sw__unreachable(ix, NULL), 2);
    CHECK(sw__check_graph(ix, why, sizeof why) != 0 && strstr(why, "unreachable") != NULL);

    pthread_rwlock_wrlock(&ix->save_lock);
    size_t left = sw__reconnect(ix);
    pthread_rwlock_unlock(&ix->save_lock);
    CHECK_EQ_UINT(left, 0);
    CHECK_EQ_UINT(sw__unreachable(ix, NULL), 0);
    if (sw__check_graph(ix, why, sizeof why) != 0)
        sw_test_fail_at(__FILE__, __LINE__, "after reconnecting: %s", why);
    {
        /* both are found again by their own vectors */
        uint64_t lab[1];
        float dist[1];
        size_t n = 0;

        CHECK_OK(sw_search(ix, data + (size_t)v * DM_DIM, DM_DIM, 1, NULL, lab, dist, &n));
        CHECK(n == 1 && lab[0] == *sw__label_ptr(ix, v));
        CHECK_OK(sw_search(ix, data + (size_t)w * DM_DIM, DM_DIM, 1, NULL, lab, dist, &n));
        CHECK(n == 1 && lab[0] == *sw__label_ptr(ix, w));
    }
    sw_free(ix);
    free(data);
}

/* The lowest node of level 0 that is not the entry point, or SW__NONE. */
static uint32_t first_flat_node(const sw_index *ix)
{
    int top;
    uint32_t entry = sw__top(ix, &top);

    for (uint32_t s = 0; s < ix->count; s++)
        if (s != entry && sw__level(ix, s) == 0)
            return s;
    return SW__NONE;
}

/* Take every link into v away (its own list stays). */
static void isolate(sw_index *ix, uint32_t v)
{
    for (uint32_t s = 0; s < ix->count; s++)
        for (int l = 0; l <= sw__level(ix, s); l++) {
            uint32_t *links = sw__links(ix, s, l), kept = 0;
            for (uint32_t j = 1; j <= links[0]; j++)
                if (links[j] != v)
                    links[++kept] = links[j];
            links[0] = kept;
        }
    sw__recount_indegrees(ix);
}

/* The pass runs at the end of a large sw_add_batch: an island made before
 * a batch of more than an eighth of the index is gone after it; and
 * sw_compact, with no tombstones to remove, runs it on demand. */
TEST(damage_island_reconnected_by_a_large_batch)
{
    sw_options o = sw_options_default();
    float *data = tu_clustered(2 * DM_N, DM_DIM, 8, 9211, 9212);
    uint64_t *labels = malloc(sizeof *labels * DM_N);
    sw_index *ix;
    uint32_t v;

    REQUIRE(data != NULL && labels != NULL);
    o.dim = DM_DIM;
    o.M = 6;
    ix = tu_build(&o, data, DM_N);
    REQUIRE(ix != NULL);
    v = first_flat_node(ix);
    REQUIRE(v != SW__NONE);
    isolate(ix, v);
    CHECK_EQ_UINT(sw__unreachable(ix, NULL), 1);
    for (size_t i = 0; i < DM_N; i++)
        labels[i] = DM_N + i;
    REQUIRE_OK(sw_add_batch(ix, labels, data + (size_t)DM_N * DM_DIM, DM_N, DM_DIM, 2));
    CHECK_EQ_UINT(sw__unreachable(ix, NULL), 0);
    CHECK_GRAPH(ix);
    isolate(ix, v);
    CHECK_EQ_UINT(sw__unreachable(ix, NULL), 1);
    CHECK_STATUS(sw_verify(ix), SW_ECORRUPT);
    REQUIRE_OK(sw_compact(ix, 1));
    CHECK_EQ_UINT(sw__unreachable(ix, NULL), 0);
    CHECK_OK(sw_verify(ix));
    sw_free(ix);
    free(labels);
    free(data);
}

/* Rows added in small batches count together: the pass runs once those
 * since the last pass reach an eighth of the index, not per batch (a
 * build in chunks would otherwise never run it once the index is large). */
TEST(damage_island_reconnected_after_small_batches_add_up)
{
    sw_options o = sw_options_default();
    float *data = tu_clustered(DM_N + 300, DM_DIM, 8, 9221, 9222);
    uint64_t labels[100];
    sw_index *ix;
    uint32_t v;

    REQUIRE(data != NULL);
    o.dim = DM_DIM;
    o.M = 6;
    ix = tu_build(&o, data, DM_N);
    REQUIRE(ix != NULL);
    v = first_flat_node(ix);
    REQUIRE(v != SW__NONE);
    REQUIRE_OK(sw_compact(ix, 1)); /* a pass: the count starts from 0 */
    isolate(ix, v);
    CHECK_EQ_UINT(sw__unreachable(ix, NULL), 1);
    for (size_t b = 0; b < 3; b++) {
        for (size_t i = 0; i < 100; i++)
            labels[i] = DM_N + b * 100 + i;
        REQUIRE_OK(sw_add_batch(ix, labels, data + (DM_N + b * 100) * DM_DIM, 100, DM_DIM, 1));
        /* 100 and 200 rows are less than an eighth of 2,100 and 2,200;
         * 300 are more than an eighth of 2,300 */
        CHECK_EQ_UINT(sw__unreachable(ix, NULL), b < 2 ? 1 : 0);
    }
    CHECK_GRAPH(ix);
    sw_free(ix);
    free(data);
}
