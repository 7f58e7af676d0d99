/*
 * test_crafted.c — hand-crafted bad files that pass the checksum.
 *
 * The file ends in a CRC-32C of everything before it, so random corruption
 * (test_persist.c) is caught by the checksum alone and never reaches the
 * field checks behind it.  An attacker, or a buggy writer, produces files
 * whose checksum is right and whose fields are not; those are what crashed
 * hnswlib (#673) and USearch (#776).  So this file edits one field at a time
 * in a real saved file, recomputes the checksum, and requires the loader to
 * refuse each with SW_ECORRUPT (SW_EVERSION for a version it does not
 * know) — with no leak, no allocation sized by the bad field, and, under the
 * sanitizer builds, no out-of-bounds access.
 *
 * This couples the test to the file layout, which is documented at the top
 * of src/persist.c (format versions 1 to 3).  The coupling is deliberate: the
 * format is a contract, and the layout is read from the file, not assumed —
 * the test walks the node records to find the fields it edits.  If the
 * version in the file is not one of those the test skips with that reason rather than
 * editing bytes it does not understand.  Two positive controls guard the
 * machinery itself: the unchanged file with a recomputed checksum loads,
 * and so does one with a different (valid) default ef, which then reports
 * that ef — proof that the offsets and the checksum are right, and so that
 * the refusals are refusals of the edited field.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sw_test.h"
#include "testutil.h"

/* ---- little-endian fields and the checksum ------------------------------ */

/* ---- the layout, as read from the file ----------------------------------- */

enum {
    OFF_VERSION = 8,
    OFF_HEADER_SIZE = 12,
    OFF_DIM = 16,
    OFF_METRIC = 20,
    OFF_ELEM = 24,
    OFF_M = 28,
    OFF_M0 = 32,
    OFF_EFC = 36,
    OFF_EF = 40,
    OFF_COUNT = 64,
    OFF_ENTRY = 72,
    OFF_MAXLEVEL = 76,
    HEADER_BYTES = 80
};

#define MAX_NODES 400

typedef struct node_off {
    size_t label;  /* offset of the u64 label */
    size_t level;  /* offset of the u8 level */
    size_t vector; /* offset of the first float */
    size_t links[4]; /* offset of the degree word of layers 0..3 */
    int n_level;
} node_off;

typedef struct layout {
    uint32_t dim, M, M0, count, entry;
    node_off nodes[MAX_NODES];
} layout;

/* 0 if the file parses as format version 1, 2 or 3 (one layout; version 2
 * gives the level byte's top bit to tombstones, version 3 puts a metadata
 * block after the header) with at most MAX_NODES nodes. */
static int parse(const unsigned char *f, size_t len, layout *L, char *why, size_t whylen)
{
    size_t off = HEADER_BYTES;

    if (len < HEADER_BYTES + 4 || memcmp(f, "SWALLIDX", 8) != 0) {
        snprintf(why, whylen, "no magic \"SWALLIDX\" or shorter than a header");
        return -1;
    }
    if (tu_get_u32(f + OFF_VERSION) < 1 || tu_get_u32(f + OFF_VERSION) > 3 ||
        tu_get_u32(f + OFF_HEADER_SIZE) != HEADER_BYTES) {
        snprintf(why, whylen, "format version %u, header size %u: this test knows versions 1 to 3",
                 tu_get_u32(f + OFF_VERSION), tu_get_u32(f + OFF_HEADER_SIZE));
        return -1;
    }
    if (tu_get_u32(f + OFF_VERSION) >= 3) {
        if (len < HEADER_BYTES + 8) {
            snprintf(why, whylen, "no room for the metadata length");
            return -1;
        }
        off += 4 + (size_t)tu_get_u32(f + HEADER_BYTES);
    }
    L->dim = tu_get_u32(f + OFF_DIM);
    L->M = tu_get_u32(f + OFF_M);
    L->M0 = tu_get_u32(f + OFF_M0);
    L->count = (uint32_t)tu_get_u64(f + OFF_COUNT);
    L->entry = tu_get_u32(f + OFF_ENTRY);
    if (L->count > MAX_NODES) {
        snprintf(why, whylen, "%u nodes", L->count);
        return -1;
    }
    for (uint32_t i = 0; i < L->count; i++) {
        node_off *n = &L->nodes[i];

        n->label = off;
        n->level = off + 8;
        n->vector = off + 9;
        n->n_level = off + 9 <= len ? f[off + 8] : 0;
        off += 9 + (size_t)L->dim * 4;
        for (int l = 0; l <= n->n_level; l++) {
            if (off + 4 > len) {
                snprintf(why, whylen, "node %u runs past the end", i);
                return -1;
            }
            if (l < 4)
                n->links[l] = off;
            off += 4 + (size_t)tu_get_u32(f + off) * 4;
        }
    }
    if (off + 4 != len) {
        snprintf(why, whylen, "records end at %zu, file is %zu bytes", off, len);
        return -1;
    }
    return 0;
}

/* ---- the test ------------------------------------------------------------ */

typedef struct crafted {
    unsigned char *bytes;
    size_t len;
} crafted;

static int load_expect(const char *path, const crafted *c, tu_alloc *ta, const char *what,
                       int allow_eversion, int allow_ecorrupt)
{
    sw_index *b = (sw_index *)(void *)ta;
    sw_status st;
    size_t huge_before = ta->n_huge;

    if (tu_write_file(path, c->bytes, c->len) != 0) {
        sw_test_fail_at(__FILE__, __LINE__, "cannot write %s", path);
        return -1;
    }
    st = sw_load(path, &ta->api, &b);
    if (!((st == SW_ECORRUPT && allow_ecorrupt) || (st == SW_EVERSION && allow_eversion)))
        sw_test_fail_at(__FILE__, __LINE__, "%s: got %s, want %s (%s)", what,
                        sw_test_status_name(st),
                        allow_ecorrupt ? (allow_eversion ? "SW_ECORRUPT or SW_EVERSION"
                                                         : "SW_ECORRUPT")
                                       : "SW_EVERSION",
                        sw_last_error());
    if (st == SW_OK)
        sw_free(b);
    else if (b != NULL)
        sw_test_fail_at(__FILE__, __LINE__, "%s: *out not NULL after a failed load", what);
    if (tu_alloc_live_bytes(ta) != 0)
        sw_test_fail_at(__FILE__, __LINE__, "%s: failed load leaked %zu bytes", what,
                        tu_alloc_live_bytes(ta));
    if (ta->n_huge != huge_before)
        sw_test_fail_at(__FILE__, __LINE__, "%s: the loader asked for over 1 GiB at once",
                        what);
    return 0;
}

/* A node of level >= 1 with a layer-1 link, and a node of level 0 that is
 * not the first one's neighbour on layer 0 already (any will do). */
static int find_upper(const unsigned char *f, const layout *L, uint32_t *up, uint32_t *flat)
{
    *up = *flat = UINT32_MAX;
    for (uint32_t i = 0; i < L->count; i++) {
        const node_off *n = &L->nodes[i];
        if (*up == UINT32_MAX && n->n_level >= 1 && tu_get_u32(f + n->links[1]) >= 1)
            *up = i;
        if (*flat == UINT32_MAX && n->n_level == 0)
            *flat = i;
    }
    return *up != UINT32_MAX && *flat != UINT32_MAX ? 0 : -1;
}

TEST(persist_crafted_fields_refused)
{
    const uint32_t dim = 4;
    const size_t n = 300;
    float *data = tu_clustered(n, dim, 4, 801, 802);
    char dir[256], path[300], bad[300], why[160];
    sw_options o = sw_options_default();
    unsigned char *orig = NULL;
    size_t len = 0;
    sw_index *ix = NULL, *b = NULL;
    layout *L = calloc(1, sizeof *L);
    crafted c = {NULL, 0};
    uint32_t up, flat, s;
    tu_alloc ta;

    tu_alloc_init(&ta);
    REQUIRE(data != NULL && L != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/good.swi", dir);
    snprintf(bad, sizeof bad, "%s/crafted.swi", dir);
    o.dim = dim;
    o.M = 4; /* more upper-layer nodes to edit */
    ix = tu_build(&o, data, n);
    REQUIRE(ix != NULL);
    REQUIRE_OK(sw_save(ix, path));
    orig = tu_read_file(path, &len);
    REQUIRE(orig != NULL);
    c.bytes = malloc(len + 8);
    REQUIRE(c.bytes != NULL);

    if (parse(orig, len, L, why, sizeof why) != 0) {
        char reason[256];
        snprintf(reason, sizeof reason, "saved file is not the documented layout: %s", why);
        free(orig);
        free(c.bytes);
        free(L);
        sw_free(ix);
        tu_rmtree(dir);
        free(data);
        tu_alloc_destroy(&ta);
        SKIP(reason);
    }
    CHECK_EQ_UINT(tu_get_u32(orig + len - 4), tu_crc32c(orig, len - 4));
    CHECK_EQ_UINT(L->count, n);
    REQUIRE(find_upper(orig, L, &up, &flat) == 0);

#define EDIT(what, allow_ev, allow_ec, edit)                                   \
    do {                                                                       \
        memcpy(c.bytes, orig, len);                                            \
        c.len = len;                                                           \
        edit;                                                                  \
        tu_reseal(c.bytes, c.len);                                                \
        load_expect(bad, &c, &ta, what, allow_ev, allow_ec);                   \
    } while (0)
#define CORRUPT(what, edit) EDIT(what, 0, 1, edit)

    /* Positive controls: the machinery, not the loader, is under test. */
    memcpy(c.bytes, orig, len);
    tu_reseal(c.bytes, len);
    CHECK(memcmp(c.bytes, orig, len) == 0);
    tu_put_u32(c.bytes + OFF_EF, 99);
    tu_reseal(c.bytes, len);
    REQUIRE(tu_write_file(bad, c.bytes, len) == 0);
    CHECK_OK(sw_load(bad, &ta.api, &b));
    if (b != NULL) {
        CHECK_EQ_UINT(sw_get_ef(b), 99);
        CHECK_EQ_UINT(sw_count(b), n);
        sw_free(b);
    }

    /* Header fields. */
    EDIT("version 4", 1, 0, tu_put_u32(c.bytes + OFF_VERSION, 4));
    EDIT("version 0", 1, 1, tu_put_u32(c.bytes + OFF_VERSION, 0));
    EDIT("header size 84", 1, 1, tu_put_u32(c.bytes + OFF_HEADER_SIZE, 84));
    CORRUPT("dim 0", tu_put_u32(c.bytes + OFF_DIM, 0));
    CORRUPT("dim over SW_MAX_DIM", tu_put_u32(c.bytes + OFF_DIM, SW_MAX_DIM + 1));
    CORRUPT("dim one more", tu_put_u32(c.bytes + OFF_DIM, dim + 1));
    CORRUPT("dim one less", tu_put_u32(c.bytes + OFF_DIM, dim - 1));
    CORRUPT("metric 4", tu_put_u32(c.bytes + OFF_METRIC, 4));
    CORRUPT("metric 0xffffffff", tu_put_u32(c.bytes + OFF_METRIC, UINT32_MAX));
    EDIT("element type 1", 1, 1, tu_put_u32(c.bytes + OFF_ELEM, 1));
    CORRUPT("M below SW_MIN_M", tu_put_u32(c.bytes + OFF_M, SW_MIN_M - 1));
    CORRUPT("M above SW_MAX_M", tu_put_u32(c.bytes + OFF_M, SW_MAX_M + 1));
    CORRUPT("M0 below M", tu_put_u32(c.bytes + OFF_M0, L->M - 1));
    CORRUPT("M0 above SW_MAX_M0", tu_put_u32(c.bytes + OFF_M0, SW_MAX_M0 + 1));
    CORRUPT("ef_construction 0", tu_put_u32(c.bytes + OFF_EFC, 0));
    CORRUPT("ef_construction over SW_MAX_EF", tu_put_u32(c.bytes + OFF_EFC, SW_MAX_EF + 1));
    CORRUPT("search ef 0", tu_put_u32(c.bytes + OFF_EF, 0));
    CORRUPT("search ef over SW_MAX_EF", tu_put_u32(c.bytes + OFF_EF, SW_MAX_EF + 1));
    CORRUPT("count one more", tu_put_u64(c.bytes + OFF_COUNT, n + 1));
    CORRUPT("count one less", tu_put_u64(c.bytes + OFF_COUNT, n - 1));
    CORRUPT("count 2^40", tu_put_u64(c.bytes + OFF_COUNT, (uint64_t)1 << 40));
    CORRUPT("count 2^32", tu_put_u64(c.bytes + OFF_COUNT, (uint64_t)1 << 32));
    CORRUPT("count 0 with records following", tu_put_u64(c.bytes + OFF_COUNT, 0));
    CORRUPT("entry point = count", tu_put_u32(c.bytes + OFF_ENTRY, (uint32_t)n));
    CORRUPT("entry point none", tu_put_u32(c.bytes + OFF_ENTRY, UINT32_MAX));
    CORRUPT("entry point on a level-0 node", tu_put_u32(c.bytes + OFF_ENTRY, flat));
    CORRUPT("max level one more",
            tu_put_u32(c.bytes + OFF_MAXLEVEL, tu_get_u32(orig + OFF_MAXLEVEL) + 1));
    CORRUPT("max level -1", tu_put_u32(c.bytes + OFF_MAXLEVEL, UINT32_MAX));
    CORRUPT("max level 200", tu_put_u32(c.bytes + OFF_MAXLEVEL, 200));

    /* Node records. */
    s = flat;
    CORRUPT("level 200 on a node", c.bytes[L->nodes[s].level] = 200);
    CORRUPT("level 1 on a level-0 node", c.bytes[L->nodes[s].level] = 1);
    CORRUPT("NaN in a vector", {
        float bad_value = NAN;
        memcpy(c.bytes + L->nodes[s].vector, &bad_value, 4);
    });
    CORRUPT("infinity in a vector", {
        float bad_value = -INFINITY;
        memcpy(c.bytes + L->nodes[s].vector + 4 * (dim - 1), &bad_value, 4);
    });
    CORRUPT("duplicate label", memcpy(c.bytes + L->nodes[1].label,
                                      c.bytes + L->nodes[0].label, 8));
    {
        /* a node with at least two layer-0 links */
        uint32_t d2 = UINT32_MAX;
        for (uint32_t i = 0; i < L->count && d2 == UINT32_MAX; i++)
            if (tu_get_u32(orig + L->nodes[i].links[0]) >= 2)
                d2 = i;
        REQUIRE(d2 != UINT32_MAX);
        CORRUPT("layer-0 degree over M0",
                tu_put_u32(c.bytes + L->nodes[d2].links[0], L->M0 + 1));
        CORRUPT("layer-0 degree 0xffffffff",
                tu_put_u32(c.bytes + L->nodes[d2].links[0], UINT32_MAX));
        CORRUPT("link to itself", tu_put_u32(c.bytes + L->nodes[d2].links[0] + 4, d2));
        CORRUPT("link out of range", tu_put_u32(c.bytes + L->nodes[d2].links[0] + 4, (uint32_t)n));
        CORRUPT("link 0xffffffff", tu_put_u32(c.bytes + L->nodes[d2].links[0] + 4, UINT32_MAX));
        CORRUPT("duplicate link", tu_put_u32(c.bytes + L->nodes[d2].links[0] + 8,
                                          tu_get_u32(orig + L->nodes[d2].links[0] + 4)));
    }
    CORRUPT("layer-1 degree over M", tu_put_u32(c.bytes + L->nodes[up].links[1], L->M + 1));
    CORRUPT("layer-1 link to a node without layer 1",
            tu_put_u32(c.bytes + L->nodes[up].links[1] + 4, flat));

    /* After the records. */
    memcpy(c.bytes, orig, len);
    c.bytes[len] = 0;
    c.len = len + 1;
    load_expect(bad, &c, &ta, "a byte after the checksum", 0, 1);
    memcpy(c.bytes, orig, len);
    c.bytes[len - 1] ^= 1;
    c.len = len;
    load_expect(bad, &c, &ta, "checksum off by one bit", 0, 1);
#undef CORRUPT
#undef EDIT

    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
    sw_free(ix);
    tu_rmtree(dir);
    free(orig);
    free(c.bytes);
    free(L);
    free(data);
}

/*
 * Upper-layer links are allocated at full size (level x (1 + M) words)
 * whatever degree the file gives, so a file of high-level nodes with empty
 * lists would cost hundreds of times its size in memory.  Levels are drawn
 * with P(level >= l) = M^-l, so such a level census is refused outright.
 * The file is written from scratch: dim 1, M 512, 2,000 nodes all on level
 * 63 with every list empty (269 bytes a node; accepted, they would take
 * about 258 MB of links).
 */
TEST(persist_crafted_level_census_refused)
{
    enum { N = 2000, LEVEL = 63 };
    const size_t node = 8 + 1 + 4 + (LEVEL + 1) * 4;
    const size_t len = 80 + N * node + 4;
    unsigned char *f = calloc(len, 1);
    char dir[256], path[300];
    tu_alloc ta;
    sw_index *ix = NULL;

    REQUIRE(f != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/levels.swi", dir);
    memcpy(f, "SWALLIDX", 8);
    tu_put_u32(f + 8, 1);   /* version */
    tu_put_u32(f + 12, 80); /* header size */
    tu_put_u32(f + 16, 1);  /* dim */
    tu_put_u32(f + 20, 0);  /* L2 */
    tu_put_u32(f + 24, 0);  /* float32 */
    tu_put_u32(f + 28, 512);
    tu_put_u32(f + 32, 1024);
    tu_put_u32(f + 36, 200);
    tu_put_u32(f + 40, 64);
    tu_put_u32(f + 44, 0);
    tu_put_u64(f + 48, 100);
    tu_put_u64(f + 56, 100);
    tu_put_u64(f + 64, N);
    tu_put_u32(f + 72, 0);     /* entry */
    tu_put_u32(f + 76, LEVEL); /* max level */
    for (size_t i = 0; i < N; i++) {
        unsigned char *p = f + 80 + i * node;
        float v = (float)i;
        uint32_t bits;
        memcpy(&bits, &v, 4);
        tu_put_u64(p, i);      /* label */
        p[8] = LEVEL;       /* level; all degrees stay 0 */
        tu_put_u32(p + 9, bits);
    }
    tu_reseal(f, len);
    REQUIRE(tu_write_file(path, f, len) == 0);

    tu_alloc_init(&ta);
    CHECK_STATUS(sw_load(path, &ta.api, &ix), SW_ECORRUPT);
    CHECK(ix == NULL);
    CHECK(strstr(sw_last_error(), "level") != NULL);
    CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), 0);
    tu_alloc_destroy(&ta);

    /* The same file with every node on level 0 is a valid (if linkless)
     * index: proof that the refusal is of the level census, not of a
     * mistake in the bytes above. */
    tu_put_u32(f + 76, 0);
    for (size_t i = 0; i < N; i++)
        f[80 + i * node + 8] = 0;
    {
        /* level-0 nodes carry one degree word, not 64: repack */
        const size_t node0 = 8 + 1 + 4 + 4;
        for (size_t i = 0; i < N; i++)
            memmove(f + 80 + i * node0, f + 80 + i * node, node0);
        tu_reseal(f, 80 + N * node0 + 4);
        REQUIRE(tu_write_file(path, f, 80 + N * node0 + 4) == 0);
    }
    CHECK_OK(sw_load(path, NULL, &ix));
    CHECK_EQ_UINT(sw_count(ix), N);
    sw_free(ix);
    tu_rmtree(dir);
    free(f);
}
