/*
 * test_crafted.c — hand-crafted bad files that pass every checksum.
 *
 * Format 4 checks its header, its table and each section with a CRC-32C,
 * so random damage (tests/corrupt/, test_persist.c) is mostly caught by a
 * checksum and never reaches the field checks behind it.  An attacker, or
 * a buggy writer, produces files whose checksums are right and whose
 * fields are not; those are what crashed hnswlib (#673) and USearch
 * (#776).  So this file edits one field at a time in a real saved file,
 * recomputes every checksum (tu_v4_reseal), and requires each load to be
 * refused with the status the specification gives — SW_ECORRUPT, or
 * SW_EVERSION for what a newer library may write (a version, a required
 * feature bit, a required section type) — with no leak, no index handed
 * back, no allocation over 1 GiB (the counting allocator refuses and
 * counts those), a message that names the file and does not blame a
 * checksum (a refusal "for its checksum" would mean the reseal failed and
 * the field check went untested), and, under the sanitizer builds, no
 * access out of bounds.
 *
 * Every file goes through both sw_load and sw_open_mmap.  They share the
 * checks of everything but the layer-0 records, which a mapped open does
 * not read (that is what makes it fast); there the promise is different:
 * the open succeeds, searches stay inside the mapping, sw_verify finds
 * the damage, and sw_save (which a mapped index allows) neither reads past
 * a record nor writes a file the library would refuse; those saves run in
 * a child process, so that a crash fails one test instead of ending the
 * run.  On a big-endian host a mapped open reads the file in and checks it
 * whole, like sw_load.
 *
 * The offsets come from the file, read by testutil's own format 4 parser
 * (tu_v4_parse), not from the library's: the coupling to the layout is the
 * point, since the format is a contract.  Positive controls guard the
 * machinery: the unchanged file resealed is byte-identical and loads; a
 * changed default ef loads and reports it; a set optional feature bit, an
 * unknown optional section and a known section without its required flag
 * all load.  So each refusal is a refusal of its edit.
 *
 * Files of versions 1 to 3 are still read (src/persist_legacy.c), so the
 * old one-field edits stay, made to tests/data/golden_v3.swi with the old
 * whole-file checksum resealed (tu_reseal).
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sw_test.h"
#include "testutil.h"

/* ===================================================================== */
/* The fixture: a real file and the places in it                         */
/* ===================================================================== */

#define FX_N 300u /* not a multiple of 8: the last tombstone byte has spare bits */
#define FX_DIM 4u

typedef struct fx {
    char dir[256], path[320], out[320];
    unsigned char *orig, *c; /* the saved file; the copy being edited */
    size_t len, clen;
    tu_v4 *v;
    tu_alloc ta;
    float *data;
    const tu_v4_section *meta, *labels, *levels, *tombs, *nodes;
    uint32_t flat;  /* a node of level 0 */
    uint32_t up;    /* a node with at least two links on layer 1 */
    uint32_t d2;    /* a node with at least two links on layer 0 */
    uint32_t below; /* a node one level below the top, or UINT32_MAX */
    size_t cases;
} fx;

static int lvl(const fx *x, const unsigned char *f, uint32_t i)
{
    return f[x->levels->off + i];
}

/* File offset of node's degree word in the layer-l section (l >= 1), or 0. */
static size_t upper_list(const fx *x, int l, uint32_t node)
{
    const tu_v4_section *s = tu_v4_find(x->v, TU_SEC_UPPER, (uint32_t)l);
    size_t p;

    if (s == NULL)
        return 0;
    p = (size_t)s->off;
    for (uint32_t i = 0; i < x->v->count && p + 4 <= s->off + s->len; i++) {
        if (lvl(x, x->orig, i) < l)
            continue;
        if (i == node)
            return p;
        p += 4 + 4 * (size_t)tu_get_u32(x->orig + p);
    }
    return 0;
}

/* File offset of node i's layer-0 record, and of its degree word. */
static size_t rec_at(const fx *x, uint32_t i)
{
    return (size_t)x->nodes->off + (size_t)i * x->v->rec_bytes;
}
static size_t deg0_at(const fx *x, uint32_t i)
{
    return rec_at(x, i) + x->v->links_off;
}

/* 0 with the fixture ready; else a test failure has been recorded. */
static int fx_open(fx *x)
{
    sw_options o = sw_options_default();
    sw_index *ix = NULL;
    char why[200];
    int ok = 0;

    memset(x, 0, sizeof *x);
    tu_alloc_init(&x->ta);
    x->v = malloc(sizeof *x->v);
    x->data = tu_clustered(FX_N, FX_DIM, 4, 801, 802);
    if (x->v == NULL || x->data == NULL || tu_mkdtemp(x->dir, sizeof x->dir) != 0) {
        sw_test_fail_at(__FILE__, __LINE__, "fixture: out of memory or no temporary directory");
        return -1;
    }
    snprintf(x->path, sizeof x->path, "%s/crafted.swi", x->dir);
    snprintf(x->out, sizeof x->out, "%s/resaved.swi", x->dir);
    o.dim = FX_DIM;
    o.M = 4; /* more upper layers and upper-layer nodes to edit */
    ix = tu_build(&o, x->data, FX_N);
    if (ix == NULL)
        return -1;
    /* tombstones and metadata, so that every section type is present */
    for (uint32_t i = 0; i < FX_N; i += 23)
        if (sw_mark_deleted(ix, i) != SW_OK)
            goto out;
    if (sw_set_metadata(ix, "crafted", 7) != SW_OK || sw_save(ix, x->path) != SW_OK)
        goto out;
    x->orig = tu_read_file(x->path, &x->len);
    x->c = x->orig ? malloc(x->len + 64) : NULL;
    if (x->c == NULL)
        goto out;
    if (tu_v4_parse(x->orig, x->len, x->v, why, sizeof why) != 0) {
        sw_test_fail_at(__FILE__, __LINE__, "the saved file does not parse as format 4: %s", why);
        goto out;
    }
    x->meta = tu_v4_find(x->v, TU_SEC_META, 0);
    x->labels = tu_v4_find(x->v, TU_SEC_LABELS, 0);
    x->levels = tu_v4_find(x->v, TU_SEC_LEVELS, 0);
    x->tombs = tu_v4_find(x->v, TU_SEC_TOMBSTONES, 0);
    x->nodes = tu_v4_find(x->v, TU_SEC_NODES, 0);
    if (!x->meta || !x->labels || !x->levels || !x->tombs || !x->nodes ||
        x->v->count != FX_N || x->v->max_level < 2) {
        sw_test_fail_at(__FILE__, __LINE__,
                        "the saved file lacks a section, or has %llu nodes and max level %d",
                        (unsigned long long)x->v->count, x->v->max_level);
        goto out;
    }
    x->flat = x->up = x->d2 = x->below = UINT32_MAX;
    for (uint32_t i = 0; i < FX_N; i++) {
        int l = lvl(x, x->orig, i);
        size_t u = l >= 1 ? upper_list(x, 1, i) : 0;

        if (x->flat == UINT32_MAX && l == 0 && i != x->v->entry)
            x->flat = i;
        if (x->up == UINT32_MAX && u != 0 && tu_get_u32(x->orig + u) >= 2)
            x->up = i;
        if (x->d2 == UINT32_MAX && tu_get_u32(x->orig + deg0_at(x, i)) >= 2)
            x->d2 = i;
        if (x->below == UINT32_MAX && l == x->v->max_level - 1)
            x->below = i;
    }
    if (x->flat == UINT32_MAX || x->up == UINT32_MAX || x->d2 == UINT32_MAX ||
        x->below == UINT32_MAX) {
        sw_test_fail_at(__FILE__, __LINE__, "no node to edit: flat %u up %u d2 %u below %u",
                        x->flat, x->up, x->d2, x->below);
        goto out;
    }
    ok = 1;
out:
    if (!ok && !sw_test_failed())
        sw_test_fail_at(__FILE__, __LINE__, "fixture: %s", sw_last_error());
    sw_free(ix);
    return ok ? 0 : -1;
}

static void fx_close(fx *x)
{
    CHECK_ALLOC_CLEAN(&x->ta);
    tu_alloc_destroy(&x->ta);
    if (x->dir[0])
        tu_rmtree(x->dir);
    free(x->orig);
    free(x->c);
    free(x->v);
    free(x->data);
}

static void fx_reset(fx *x)
{
    memcpy(x->c, x->orig, x->len);
    x->clen = x->len;
}

/* ===================================================================== */
/* One edited file, through both loaders                                 */
/* ===================================================================== */

enum {
    F_CHECKSUM = 1,     /* refused for a checksum: the message names one */
    F_VERIFY_FAILS = 2, /* opened (mapped): sw_verify must say SW_ECORRUPT */
};

/* Searches of every kind on an index that opened; on a damaged one only
 * "no crash, nothing outside the mapping" is asked of them. */
static void probe(const fx *x, const sw_index *b, int must_succeed, int line, const char *what)
{
    uint64_t labels[50];
    float dists[50];
    size_t found = 0;
    sw_stats st;

    for (size_t q = 0; q < 8; q++) {
        const float *v = x->data + q * 37 * FX_DIM;
        sw_status s1 = sw_search(b, v, FX_DIM, 10, NULL, labels, dists, &found);
        sw_status s2 = sw_search_exact(b, v, FX_DIM, 10, NULL, labels, dists, &found);
        sw_status s3 = sw_search_range(b, v, FX_DIM, 1e30f, 50, NULL, labels, dists, &found);

        if (must_succeed && (s1 != SW_OK || s2 != SW_OK || s3 != SW_OK))
            sw_test_fail_at(__FILE__, line, "%s: searches gave %s / %s / %s", what,
                            sw_test_status_name(s1), sw_test_status_name(s2),
                            sw_test_status_name(s3));
    }
    if (sw_get_stats(b, &st) != SW_OK && must_succeed)
        sw_test_fail_at(__FILE__, line, "%s: sw_get_stats: %s", what, sw_last_error());
}

static void check_refusal_message(const fx *x, sw_status st, unsigned flags, int line,
                                  const char *who, const char *what)
{
    const char *msg = sw_last_error();

    tu_check_last_error_names(st, __FILE__, line);
    if (strstr(msg, x->path) == NULL)
        sw_test_fail_at(__FILE__, line, "%s: %s: the message does not name the file: \"%s\"",
                        what, who, msg);
    if (!(flags & F_CHECKSUM) && strstr(msg, "checksum") != NULL)
        sw_test_fail_at(__FILE__, line,
                        "%s: %s refused it for a checksum, so the field check went untested: "
                        "\"%s\"",
                        what, who, msg);
    if ((flags & F_CHECKSUM) && strstr(msg, "checksum") == NULL)
        sw_test_fail_at(__FILE__, line, "%s: %s: the message does not name the checksum: \"%s\"",
                        what, who, msg);
}

/* Write x->c and require want_load of sw_load and want_map of sw_open_mmap. */
static void try_case(fx *x, int line, const char *what, sw_status want_load, sw_status want_map,
                     unsigned flags)
{
    x->cases++;
    if (!TU_MAPS_IN_PLACE && want_map == SW_OK && (flags & F_VERIFY_FAILS))
        want_map = want_load; /* read in and checked whole */
    if (tu_write_file(x->path, x->c, x->clen) != 0) {
        sw_test_fail_at(__FILE__, line, "%s: cannot write %s", what, x->path);
        return;
    }
    for (int mapped = 0; mapped < 2; mapped++) {
        const char *who = mapped ? "sw_open_mmap" : "sw_load";
        sw_status want = mapped ? want_map : want_load;
        sw_index *b = (sw_index *)(void *)&x->ta; /* must be overwritten */
        size_t huge = x->ta.n_huge;
        sw_status st = mapped ? sw_open_mmap(x->path, &x->ta.api, &b)
                              : sw_load(x->path, &x->ta.api, &b);

        if (st != want)
            sw_test_fail_at(__FILE__, line, "%s: %s gave %s, want %s (%s)", what, who,
                            sw_test_status_name(st), sw_test_status_name(want), sw_last_error());
        if (st != SW_OK) {
            if (b != NULL)
                sw_test_fail_at(__FILE__, line, "%s: %s: *out not NULL after a failure", what,
                                who);
            else
                check_refusal_message(x, st, flags, line, who, what);
        } else if (b != NULL) {
            int damaged = mapped && (flags & F_VERIFY_FAILS);
            sw_status vs;

            if (mapped && !sw_is_readonly(b))
                sw_test_fail_at(__FILE__, line, "%s: a mapped index is not read-only", what);
            probe(x, b, !damaged, line, what);
            vs = sw_verify(b);
            if (damaged && vs != SW_ECORRUPT)
                sw_test_fail_at(__FILE__, line,
                                "%s: mapped with a damaged record, sw_verify gave %s (%s), "
                                "want SW_ECORRUPT",
                                what, sw_test_status_name(vs), sw_last_error());
            if (!(flags & F_VERIFY_FAILS) && vs != SW_OK)
                sw_test_fail_at(__FILE__, line, "%s: %s loaded it but sw_verify says %s (%s)",
                                what, who, sw_test_status_name(vs), sw_last_error());
            sw_free(b);
        }
        if (tu_alloc_live_bytes(&x->ta) != 0)
            sw_test_fail_at(__FILE__, line, "%s: %s leaked %zu bytes", what, who,
                            tu_alloc_live_bytes(&x->ta));
        if (x->ta.n_huge != huge)
            sw_test_fail_at(__FILE__, line, "%s: %s asked for over 1 GiB at once", what, who);
    }
}

/* One edit, every checksum recomputed, the expectations. */
#define EDIT_AS(want_load, want_map, flags, what, ...)                         \
    do {                                                                       \
        fx_reset(x);                                                           \
        {                                                                      \
            unsigned char *c = x->c;                                           \
            (void)c;                                                           \
            __VA_ARGS__;                                                       \
        }                                                                      \
        tu_v4_reseal(x->c, x->clen);                                           \
        try_case(x, __LINE__, (what), (want_load), (want_map), (flags));       \
    } while (0)
/* An edit made after the reseal: the checksum is what must catch it. */
#define RAW_AS(want_load, want_map, flags, what, ...)                          \
    do {                                                                       \
        fx_reset(x);                                                           \
        {                                                                      \
            unsigned char *c = x->c;                                           \
            (void)c;                                                           \
            __VA_ARGS__;                                                       \
        }                                                                      \
        try_case(x, __LINE__, (what), (want_load), (want_map), (flags));       \
    } while (0)
#define REFUSE(what, ...) EDIT_AS(SW_ECORRUPT, SW_ECORRUPT, 0, what, __VA_ARGS__)
#define NEWER(what, ...) EDIT_AS(SW_EVERSION, SW_EVERSION, 0, what, __VA_ARGS__)
#define ACCEPT(what, ...) EDIT_AS(SW_OK, SW_OK, 0, what, __VA_ARGS__)
/* In the layer-0 records: sw_load refuses, a mapped open serves it and
 * sw_verify finds it. */
#define RECORD(what, ...) EDIT_AS(SW_ECORRUPT, SW_OK, F_VERIFY_FAILS, what, __VA_ARGS__)

/* Field setters on the copy being edited. */
#define PUT32(off, v) tu_put_u32(c + (off), (uint32_t)(v))
#define PUT64(off, v) tu_put_u64(c + (off), (uint64_t)(v))
#define GET32(off) tu_get_u32(x->orig + (off))
/* A table entry's fields: 0 type, 4 argument, 8 offset, 16 length, 24 flags. */
#define ENTRY(s) ((s)->entry_at)

/* ===================================================================== */
/* Format 4                                                              */
/* ===================================================================== */

TEST(persist_crafted_controls_load)
{
    fx fxs, *x = &fxs;
    sw_index *b = NULL;
    size_t mlen = 99;

    if (fx_open(x) != 0) {
        fx_close(x);
        return;
    }
    /* the reseal of an unchanged file changes nothing */
    fx_reset(x);
    tu_v4_reseal(x->c, x->clen);
    CHECK(memcmp(x->c, x->orig, x->len) == 0);
    ACCEPT("unchanged, resealed", (void)0);

    /* a valid default ef: loads and reports it, both ways */
    fx_reset(x);
    tu_put_u32(x->c + TU_V4_EF, 99);
    tu_v4_reseal(x->c, x->clen);
    REQUIRE(tu_write_file(x->path, x->c, x->clen) == 0);
    CHECK_OK(sw_load(x->path, &x->ta.api, &b));
    if (b != NULL) {
        CHECK_EQ_UINT(sw_get_ef(b), 99);
        CHECK_EQ_UINT(sw_count(b), FX_N - (FX_N + 22) / 23);
        sw_free(b);
        b = NULL;
    }
    CHECK_OK(sw_open_mmap(x->path, &x->ta.api, &b));
    if (b != NULL) {
        CHECK_EQ_UINT(sw_get_ef(b), 99);
        sw_free(b);
        b = NULL;
    }

    ACCEPT("an optional feature bit (a reader may ignore it)",
           PUT32(TU_V4_OPTIONAL, 0x80000001u));
    ACCEPT("build flags 3 (both defined bits)", PUT32(TU_V4_FLAGS, 3));
    ACCEPT("a known section without its required flag", PUT32(ENTRY(x->labels) + 24, 0));
    ACCEPT("the seed and the level generator's state", PUT64(TU_V4_SEED, 12345),
           PUT64(TU_V4_RNG, 678910));

    /* An unknown optional section is skipped: here the metadata becomes
     * one, so the index loads without metadata. */
    ACCEPT("an unknown section type without the required flag", PUT32(ENTRY(x->meta), 99));
    REQUIRE(tu_write_file(x->path, x->c, x->clen) == 0);
    CHECK_OK(sw_load(x->path, NULL, &b));
    if (b != NULL) {
        CHECK_OK(sw_get_metadata(b, NULL, 0, &mlen));
        CHECK_EQ_UINT(mlen, 0);
        sw_free(b);
    }
    NOTE("%zu crafted files, each through sw_load and sw_open_mmap", x->cases);
    fx_close(x);
}

TEST(persist_crafted_header_refused)
{
    fx fxs, *x = &fxs;
    uint64_t n, tombs;
    uint32_t dim, M, M0;
    int32_t top;

    if (fx_open(x) != 0) {
        fx_close(x);
        return;
    }
    n = x->v->count;
    tombs = x->v->tombstones;
    dim = x->v->dim;
    M = x->v->M;
    M0 = x->v->M0;
    top = x->v->max_level;
    CHECK_EQ_UINT(tombs, (FX_N + 22) / 23);

    REFUSE("magic SWALLIDY", c[7] = 'Y');
    REFUSE("magic all zero", memset(c, 0, 8));
    NEWER("version 5", PUT32(TU_V4_VERSION, 5));
    NEWER("version 0", PUT32(TU_V4_VERSION, 0));
    NEWER("version 0xffffffff", PUT32(TU_V4_VERSION, UINT32_MAX));
    /* a version 4 file that says 3 goes to the old reader, which finds
     * the header the wrong size; a mapped open refuses every old version */
    EDIT_AS(SW_ECORRUPT, SW_EVERSION, 0, "version 3", PUT32(TU_V4_VERSION, 3));
    EDIT_AS(SW_ECORRUPT, SW_EVERSION, 0, "version 1", PUT32(TU_V4_VERSION, 1));
    REFUSE("header size 0", PUT32(TU_V4_HEADER_SIZE, 0));
    REFUSE("header size 127", PUT32(TU_V4_HEADER_SIZE, 127));
    REFUSE("header size 129", PUT32(TU_V4_HEADER_SIZE, 129));
    REFUSE("header size 256", PUT32(TU_V4_HEADER_SIZE, 256));
    NEWER("required feature bit 1", PUT32(TU_V4_REQUIRED, 2));
    /* bit 0 says the records hold codes: a float32 file must not set it */
    REFUSE("required feature bit 0 on a float32 file", PUT32(TU_V4_REQUIRED, 1));
    NEWER("required feature bit 31", PUT32(TU_V4_REQUIRED, 0x80000000u));
    REFUSE("first reserved byte", c[TU_V4_RESERVED] = 1);
    REFUSE("last reserved byte", c[TU_V4_HEADER_CRC - 1] = 0x80);

    REFUSE("dim 0", PUT32(TU_V4_DIM, 0));
    REFUSE("dim over SW_MAX_DIM", PUT32(TU_V4_DIM, SW_MAX_DIM + 1));
    REFUSE("dim 0xffffffff", PUT32(TU_V4_DIM, UINT32_MAX));
    REFUSE("dim one more", PUT32(TU_V4_DIM, dim + 1));
    REFUSE("dim one less", PUT32(TU_V4_DIM, dim - 1));
    /* dim + 1 with a record layout to match (R stays 64 bytes): the header
     * agrees with itself, the records are read with the links one word
     * late, which only a look at the records shows */
    RECORD("dim one more, record layout to match", PUT32(TU_V4_DIM, dim + 1),
           PUT32(TU_V4_VEC_BYTES, 4 * (dim + 1)), PUT32(TU_V4_LINKS_OFF, 4 * (dim + 1)));
    REFUSE("metric 4", PUT32(TU_V4_METRIC, 4));
    REFUSE("metric 9", PUT32(TU_V4_METRIC, 9));
    REFUSE("metric 0xffffffff", PUT32(TU_V4_METRIC, UINT32_MAX));
    REFUSE("element type 1 without required feature bit 0", PUT32(TU_V4_ELEM, 1));
    REFUSE("element type 5", PUT32(TU_V4_ELEM, 5));
    REFUSE("element type 0x80000000", PUT32(TU_V4_ELEM, 0x80000000u));
    REFUSE("M 1", PUT32(TU_V4_M, SW_MIN_M - 1));
    REFUSE("M 0", PUT32(TU_V4_M, 0));
    REFUSE("M over SW_MAX_M", PUT32(TU_V4_M, SW_MAX_M + 1));
    REFUSE("M 100000", PUT32(TU_V4_M, 100000));
    REFUSE("M0 0", PUT32(TU_V4_M0, 0));
    REFUSE("M0 below M", PUT32(TU_V4_M0, M - 1));
    REFUSE("M0 over SW_MAX_M0", PUT32(TU_V4_M0, SW_MAX_M0 + 1));
    REFUSE("M0 64 (the records would be larger)", PUT32(TU_V4_M0, 64));
    CHECK(M0 < 64);
    REFUSE("ef_construction 0", PUT32(TU_V4_EFC, 0));
    REFUSE("ef_construction over SW_MAX_EF", PUT32(TU_V4_EFC, SW_MAX_EF + 1));
    REFUSE("search ef 0", PUT32(TU_V4_EF, 0));
    REFUSE("search ef over SW_MAX_EF", PUT32(TU_V4_EF, SW_MAX_EF + 1));
    REFUSE("build flags 4", PUT32(TU_V4_FLAGS, 4));
    REFUSE("build flags 0x80000000", PUT32(TU_V4_FLAGS, 0x80000000u));

    REFUSE("count 2^40", PUT64(TU_V4_COUNT, (uint64_t)1 << 40));
    REFUSE("count 2^32", PUT64(TU_V4_COUNT, (uint64_t)1 << 32));
    REFUSE("count 0xffffffff", PUT64(TU_V4_COUNT, UINT32_MAX));
    REFUSE("count 0xfffffffe", PUT64(TU_V4_COUNT, UINT32_MAX - 1));
    REFUSE("count 2^64 - 1", PUT64(TU_V4_COUNT, UINT64_MAX));
    REFUSE("count one more", PUT64(TU_V4_COUNT, n + 1));
    REFUSE("count one less", PUT64(TU_V4_COUNT, n - 1));
    REFUSE("count 0", PUT64(TU_V4_COUNT, 0));
    REFUSE("tombstones above the count", PUT64(TU_V4_TOMBS, n + 1));
    REFUSE("tombstones 2^64 - 1", PUT64(TU_V4_TOMBS, UINT64_MAX));
    REFUSE("tombstones one more", PUT64(TU_V4_TOMBS, tombs + 1));
    REFUSE("tombstones one less", PUT64(TU_V4_TOMBS, tombs - 1));
    REFUSE("tombstones 0", PUT64(TU_V4_TOMBS, 0));
    REFUSE("entry = count", PUT32(TU_V4_ENTRY_NODE, n));
    REFUSE("entry none", PUT32(TU_V4_ENTRY_NODE, UINT32_MAX));
    REFUSE("entry on a level-0 node", PUT32(TU_V4_ENTRY_NODE, x->flat));
    REFUSE("entry one level below the top", PUT32(TU_V4_ENTRY_NODE, x->below));
    REFUSE("max level 64", PUT32(TU_V4_MAX_LEVEL, 64));
    REFUSE("max level 63 (no sections for the layers)", PUT32(TU_V4_MAX_LEVEL, 63));
    REFUSE("max level 200", PUT32(TU_V4_MAX_LEVEL, 200));
    REFUSE("max level -1", PUT32(TU_V4_MAX_LEVEL, (uint32_t)-1));
    REFUSE("max level -2", PUT32(TU_V4_MAX_LEVEL, (uint32_t)-2));
    REFUSE("max level INT32_MIN", PUT32(TU_V4_MAX_LEVEL, 0x80000000u));
    REFUSE("max level one too low", PUT32(TU_V4_MAX_LEVEL, (uint32_t)(top - 1)));
    REFUSE("max level one too high", PUT32(TU_V4_MAX_LEVEL, (uint32_t)(top + 1)));
    REFUSE("max level 0", PUT32(TU_V4_MAX_LEVEL, 0));
    REFUSE("record size 0", PUT32(TU_V4_REC_BYTES, 0));
    REFUSE("record size + 64", PUT32(TU_V4_REC_BYTES, x->v->rec_bytes + 64));
    REFUSE("record size - 4", PUT32(TU_V4_REC_BYTES, x->v->rec_bytes - 4));
    REFUSE("vector bytes + 4", PUT32(TU_V4_VEC_BYTES, x->v->vec_bytes + 4));
    REFUSE("vector bytes 0", PUT32(TU_V4_VEC_BYTES, 0));
    REFUSE("link offset + 4", PUT32(TU_V4_LINKS_OFF, x->v->links_off + 4));
    REFUSE("link offset past the record", PUT32(TU_V4_LINKS_OFF, x->v->rec_bytes));
    RAW_AS(SW_ECORRUPT, SW_ECORRUPT, F_CHECKSUM, "header checksum wrong",
           c[TU_V4_HEADER_CRC] ^= 1);
    RAW_AS(SW_ECORRUPT, SW_ECORRUPT, F_CHECKSUM, "a header field edited, checksum stale",
           PUT32(TU_V4_EF, 99));
    NOTE("%zu crafted files, each through sw_load and sw_open_mmap", x->cases);
    fx_close(x);
}

TEST(persist_crafted_table_refused)
{
    fx fxs, *x = &fxs;
    const tu_v4_section *up1, *up2, *last_up;
    uint64_t table;
    uint32_t nsec;

    if (fx_open(x) != 0) {
        fx_close(x);
        return;
    }
    table = x->v->table_off;
    nsec = x->v->nsec;
    up1 = tu_v4_find(x->v, TU_SEC_UPPER, 1);
    up2 = tu_v4_find(x->v, TU_SEC_UPPER, 2);
    last_up = tu_v4_find(x->v, TU_SEC_UPPER, (uint32_t)x->v->max_level);
    REQUIRE(up1 != NULL && up2 != NULL && last_up != NULL);
#define FOOT (x->len - TU_V4_FOOTER)

    /* The footer. */
    REFUSE("footer magic", c[x->len - 1] = 'X');
    REFUSE("file length one more", PUT64(FOOT + 16, x->len + 1));
    REFUSE("file length one less", PUT64(FOOT + 16, x->len - 1));
    REFUSE("file length 0", PUT64(FOOT + 16, 0));
    REFUSE("file length 2^64 - 1", PUT64(FOOT + 16, UINT64_MAX));
    REFUSE("table offset misaligned", PUT64(FOOT, table + 1));
    REFUSE("table offset 64 later", PUT64(FOOT, table + 64));
    REFUSE("table offset 64 earlier", PUT64(FOOT, table - 64));
    REFUSE("table offset past the end", PUT64(FOOT, x->len + 64));
    REFUSE("table offset 2^64 - 64", PUT64(FOOT, UINT64_MAX - 63));
    REFUSE("table offset 0", PUT64(FOOT, 0));
    REFUSE("table offset inside the header", PUT64(FOOT, 64));
    REFUSE("section count 0", PUT32(FOOT + 8, 0));
    REFUSE("section count one less", PUT32(FOOT + 8, nsec - 1));
    REFUSE("section count one more", PUT32(FOOT + 8, nsec + 1));
    REFUSE("section count 257", PUT32(FOOT + 8, 257));
    REFUSE("section count 0xffffffff", PUT32(FOOT + 8, UINT32_MAX));
    REFUSE("section count one less, table one entry later", PUT32(FOOT + 8, nsec - 1),
           PUT64(FOOT, table + TU_V4_ENTRY));
    REFUSE("a byte after the footer", c[x->len] = 0, x->clen = x->len + 1);
    REFUSE("a footer's worth of zeros after the footer", memset(c + x->len, 0, 32),
           x->clen = x->len + 32);
    RAW_AS(SW_ECORRUPT, SW_ECORRUPT, F_CHECKSUM, "table checksum wrong", c[FOOT + 12] ^= 1);
    RAW_AS(SW_ECORRUPT, SW_ECORRUPT, F_CHECKSUM, "a table entry edited, checksum stale",
           c[ENTRY(x->levels) + 28] ^= 1);

    /* Entries: where the sections are. */
    REFUSE("section offset misaligned", PUT64(ENTRY(x->labels) + 8, x->labels->off + 1));
    REFUSE("section offset misaligned by 32", PUT64(ENTRY(x->levels) + 8, x->levels->off + 32));
    REFUSE("sections overlapping (same offset)",
           PUT64(ENTRY(x->levels) + 8, x->labels->off));
    REFUSE("section starts inside the one before",
           PUT64(ENTRY(x->levels) + 8, x->levels->off - 64));
    REFUSE("section inside the header", PUT64(ENTRY(x->meta) + 8, 64));
    REFUSE("section at offset 0", PUT64(ENTRY(x->meta) + 8, 0));
    REFUSE("sections out of order (two entries swapped)", {
        unsigned char tmp[TU_V4_ENTRY];
        memcpy(tmp, c + ENTRY(x->labels), TU_V4_ENTRY);
        memcpy(c + ENTRY(x->labels), c + ENTRY(x->levels), TU_V4_ENTRY);
        memcpy(c + ENTRY(x->levels), tmp, TU_V4_ENTRY);
    });
    REFUSE("section length into the table",
           PUT64(ENTRY(x->nodes) + 16, table - x->nodes->off + 1));
    REFUSE("section length 2^64 - 1", PUT64(ENTRY(x->nodes) + 16, UINT64_MAX));
    REFUSE("section length 2^63", PUT64(ENTRY(x->labels) + 16, (uint64_t)1 << 63));
    REFUSE("section offset past the table", PUT64(ENTRY(x->nodes) + 8, table + 64),
           PUT64(ENTRY(x->nodes) + 16, 0));
    REFUSE("section offset 2^64 - 64", PUT64(ENTRY(x->nodes) + 8, UINT64_MAX - 63));
    REFUSE("labels one short (the last one left in the gap)",
           PUT64(ENTRY(x->labels) + 16, x->labels->len - 8));
    REFUSE("labels one short (the last one zeroed)",
           PUT64(ENTRY(x->labels) + 16, x->labels->len - 8),
           memset(c + x->labels->off + x->labels->len - 8, 0, 8));
    REFUSE("labels one too many (into the zero gap)",
           PUT64(ENTRY(x->labels) + 16, x->labels->len + 8));
    REFUSE("levels one short", PUT64(ENTRY(x->levels) + 16, x->levels->len - 1));
    REFUSE("tombstones one byte more", PUT64(ENTRY(x->tombs) + 16, x->tombs->len + 1));
    REFUSE("records one short (the last one left before the table)",
           PUT64(ENTRY(x->nodes) + 16, x->nodes->len - x->v->rec_bytes));
    REFUSE("records one short (the last one zeroed)",
           PUT64(ENTRY(x->nodes) + 16, x->nodes->len - x->v->rec_bytes),
           memset(c + x->nodes->off + x->nodes->len - x->v->rec_bytes, 0, x->v->rec_bytes));
    REFUSE("records a part short", PUT64(ENTRY(x->nodes) + 16, x->nodes->len - 4));

    /* Entries: what the sections are. */
    NEWER("unknown section type, required", PUT32(ENTRY(x->meta), 99),
          PUT32(ENTRY(x->meta) + 24, 1));
    NEWER("section type 0, required", PUT32(ENTRY(x->meta), 0), PUT32(ENTRY(x->meta) + 24, 1));
    NEWER("section type 0xffffffff, required", PUT32(ENTRY(x->meta), UINT32_MAX),
          PUT32(ENTRY(x->meta) + 24, 1));
    /* a flag this library does not know may change how the section reads */
    NEWER("unknown section flag bit 1", PUT32(ENTRY(x->labels) + 24, 3));
    NEWER("unknown section flag bit 31", PUT32(ENTRY(x->meta) + 24, 0x80000000u));
    REFUSE("duplicate section (levels say labels)", PUT32(ENTRY(x->levels), TU_SEC_LABELS));
    REFUSE("duplicate section (a second metadata)", PUT32(ENTRY(x->labels), TU_SEC_META));
    REFUSE("duplicate layer (layer 2 says 1)", PUT32(ENTRY(up2) + 4, 1));
    REFUSE("labels missing (an unknown optional type)", PUT32(ENTRY(x->labels), 99),
           PUT32(ENTRY(x->labels) + 24, 0));
    REFUSE("levels missing", PUT32(ENTRY(x->levels), 99), PUT32(ENTRY(x->levels) + 24, 0));
    REFUSE("tombstones missing", PUT32(ENTRY(x->tombs), 99), PUT32(ENTRY(x->tombs) + 24, 0));
    REFUSE("records missing", PUT32(ENTRY(x->nodes), 99), PUT32(ENTRY(x->nodes) + 24, 0));
    REFUSE("layer 1 missing", PUT32(ENTRY(up1), 99), PUT32(ENTRY(up1) + 4, 0),
           PUT32(ENTRY(up1) + 24, 0));
    REFUSE("top layer missing", PUT32(ENTRY(last_up), 99), PUT32(ENTRY(last_up) + 4, 0),
           PUT32(ENTRY(last_up) + 24, 0));
    REFUSE("upper layer with argument 0", PUT32(ENTRY(up1) + 4, 0));
    REFUSE("upper layer above the max level",
           PUT32(ENTRY(last_up) + 4, (uint32_t)x->v->max_level + 1));
    REFUSE("upper layer argument 0xffffffff", PUT32(ENTRY(up1) + 4, UINT32_MAX));
    REFUSE("labels with an argument", PUT32(ENTRY(x->labels) + 4, 1));
    REFUSE("records with an argument", PUT32(ENTRY(x->nodes) + 4, 7));

    /* Between the sections: zeros only. */
    {
        size_t after_meta = (size_t)(x->meta->off + x->meta->len);
        size_t before_levels = (size_t)x->levels->off - 1;
        size_t after_tombs = (size_t)(x->tombs->off + x->tombs->len);

        REQUIRE(after_meta < x->labels->off && x->labels->off + x->labels->len <= before_levels);
        REFUSE("a byte in the gap after the metadata", c[after_meta] = 1);
        REFUSE("the last byte of the gap before the levels", c[before_levels] = 0x80);
        if (after_tombs % 64 != 0)
            REFUSE("a byte in the gap after the tombstones", c[after_tombs] = 0xff);
    }
    RAW_AS(SW_ECORRUPT, SW_ECORRUPT, F_CHECKSUM, "a label edited, checksum stale",
           c[x->labels->off + 3] ^= 0x10);
    RAW_AS(SW_ECORRUPT, SW_ECORRUPT, F_CHECKSUM, "a layer-1 list edited, checksum stale",
           c[up1->off] ^= 1);
    /* A mapped open leaves the records' checksum to sw_verify. */
    RAW_AS(SW_ECORRUPT, SW_OK, F_CHECKSUM | F_VERIFY_FAILS, "a vector bit, checksum stale",
           c[rec_at(x, 5)] ^= 1);
    RAW_AS(SW_ECORRUPT, SW_OK, F_CHECKSUM | F_VERIFY_FAILS, "records' checksum wrong",
           c[ENTRY(x->nodes) + 28] ^= 1, PUT32(FOOT + 12, tu_crc32c(c + table, nsec * 32u)));
#undef FOOT
    NOTE("%zu crafted files, each through sw_load and sw_open_mmap", x->cases);
    fx_close(x);
}

TEST(persist_crafted_sections_refused)
{
    fx fxs, *x = &fxs;
    size_t lab, lev, tb, u;
    uint32_t last_byte_bits = FX_N % 8;
    uint32_t dead = UINT32_MAX, live = UINT32_MAX;

    if (fx_open(x) != 0) {
        fx_close(x);
        return;
    }
    lab = (size_t)x->labels->off;
    lev = (size_t)x->levels->off;
    tb = (size_t)x->tombs->off;
    u = upper_list(x, 1, x->up);
    REQUIRE(u != 0 && last_byte_bits != 0);
    for (uint32_t i = 0; i < FX_N; i++) {
        int t = (x->orig[tb + i / 8] >> (i % 8)) & 1;
        if (t && dead == UINT32_MAX)
            dead = i;
        if (!t && live == UINT32_MAX)
            live = i;
    }
    REQUIRE(dead != UINT32_MAX && live != UINT32_MAX);

    /* Labels. */
    REFUSE("label duplicated (neighbours)", memcpy(c + lab + 8, c + lab, 8));
    REFUSE("label duplicated (first and last)", memcpy(c + lab + 8 * (FX_N - 1), c + lab, 8));

    /* Levels. */
    REFUSE("a level above the max", c[lev + x->flat] = (unsigned char)(x->v->max_level + 1));
    REFUSE("level 255", c[lev + x->flat] = 255);
    REFUSE("level 1 on a level-0 node (the layer-1 lists no longer match)",
           c[lev + x->flat] = 1);
    REFUSE("level 0 on the entry point", c[lev + x->v->entry] = 0);
    REFUSE("level 0 on a layer-1 node", c[lev + x->up] = 0);
    /* Levels are drawn with P(level >= l) = M^-l; a census far above that
     * could make a small file allocate gigabytes of upper lists */
    REFUSE("every node on the top level", memset(c + lev, x->v->max_level, FX_N));
    REQUIRE(tu_write_file(x->path, x->c, x->clen) == 0);
    {
        sw_index *b = NULL;
        CHECK_STATUS(sw_load(x->path, NULL, &b), SW_ECORRUPT);
        CHECK(strstr(sw_last_error(), "implausibl") != NULL);
    }

    /* Tombstones. */
    REFUSE("tombstone bit just past the count", c[tb + FX_N / 8] |= (1u << last_byte_bits));
    REFUSE("tombstone bit 7 of the last byte", c[tb + FX_N / 8] |= 0x80);
    REFUSE("a tombstone more than the header says", c[tb + live / 8] |= 1u << (live % 8));
    REFUSE("a tombstone fewer than the header says",
           c[tb + dead / 8] &= (unsigned char)~(1u << (dead % 8)));

    /* Upper layers. */
    REFUSE("layer-1 degree above M", PUT32(u, x->v->M + 1));
    REFUSE("layer-1 degree 0xffffffff", PUT32(u, UINT32_MAX));
    REFUSE("layer-1 link to a node not on layer 1", PUT32(u + 4, x->flat));
    REFUSE("layer-1 link out of range", PUT32(u + 4, FX_N));
    REFUSE("layer-1 link 0xffffffff", PUT32(u + 4, UINT32_MAX));
    REFUSE("layer-1 link to itself", PUT32(u + 4, x->up));
    REFUSE("layer-1 link twice", PUT32(u + 8, GET32(u + 4)));
    REFUSE("layer-1 degree one less (the rest misread)", PUT32(u, GET32(u) - 1));
    {
        /* A section one link short, its last bytes zeroed (so the gap
         * stays zero): the last list runs past the section's end.  And a
         * section with 4 zero bytes more than its lists fill. */
        const tu_v4_section *roomy = NULL;
        for (int l = 1; l <= x->v->max_level && roomy == NULL; l++) {
            const tu_v4_section *s = tu_v4_find(x->v, TU_SEC_UPPER, (uint32_t)l);
            if (s != NULL && (s->off + s->len) % 64 != 0)
                roomy = s;
        }
        const tu_v4_section *s1 = tu_v4_find(x->v, TU_SEC_UPPER, 1);
        uint32_t last = UINT32_MAX;
        size_t p;

        for (uint32_t i = 0; i < FX_N; i++)
            if (lvl(x, x->orig, i) >= 1)
                last = i;
        p = last == UINT32_MAX ? 0 : upper_list(x, 1, last);
        REQUIRE(s1 != NULL && s1->len >= 8 && p > s1->off);
        REFUSE("a layer's list runs past its section", PUT64(ENTRY(s1) + 16, s1->len - 4),
               PUT32(s1->off + s1->len - 4, 0));
        REFUSE("a layer's section ends before its last node", PUT64(ENTRY(s1) + 16, p - s1->off),
               memset(c + p, 0, (size_t)(s1->off + s1->len) - p));
        if (roomy != NULL)
            REFUSE("4 extra zero bytes at the end of a layer's section",
                   PUT64(ENTRY(roomy) + 16, roomy->len + 4));
        else
            sw_test_fail_at(__FILE__, __LINE__, "no layer section ends off a 64-byte boundary");
    }
    NOTE("%zu crafted files, each through sw_load and sw_open_mmap", x->cases);
    fx_close(x);
}

/* The layer-0 records: refused by sw_load; a mapped open does not read
 * them, serves them without reading outside the mapping, and sw_verify
 * finds every one. */
TEST(persist_crafted_records_refused_or_verified)
{
    fx fxs, *x = &fxs;
    size_t d;

    if (fx_open(x) != 0) {
        fx_close(x);
        return;
    }
    d = deg0_at(x, x->d2);
    RECORD("layer-0 degree above M0", PUT32(d, x->v->M0 + 1));
    RECORD("layer-0 degree 0xffffffff", PUT32(d, UINT32_MAX));
    RECORD("layer-0 degree reaching past the record", PUT32(d, x->v->rec_bytes));
    RECORD("layer-0 link to itself", PUT32(d + 4, x->d2));
    RECORD("layer-0 link out of range", PUT32(d + 4, FX_N));
    RECORD("layer-0 link 0xffffffff", PUT32(d + 4, UINT32_MAX));
    RECORD("layer-0 link twice", PUT32(d + 8, GET32(d + 4)));
    RECORD("the last record's degree above M0", PUT32(deg0_at(x, FX_N - 1), x->v->M0 + 1));
    d = deg0_at(x, FX_N - 1);
    RECORD("the last record's link out of range", PUT32(d + 4, FX_N + 1),
           PUT32(d, GET32(d) ? GET32(d) : 1));
    NOTE("%zu crafted files, each through sw_load and sw_open_mmap", x->cases);
    fx_close(x);
}

/* A vector that is not finite: sw_load refuses it; a mapped open does not
 * read the vectors, and sw_verify, which reads the whole file to check it,
 * must find it (the section's checksum is right). */
TEST(persist_crafted_nonfinite_vector_found)
{
    fx fxs, *x = &fxs;

    if (fx_open(x) != 0) {
        fx_close(x);
        return;
    }
    RECORD("NaN in a vector", PUT32(rec_at(x, x->flat), 0x7fc00000u));
    RECORD("-infinity in a vector", PUT32(rec_at(x, x->d2) + 4 * (FX_DIM - 1), 0xff800000u));
    RECORD("+infinity in the entry point's vector", PUT32(rec_at(x, x->v->entry), 0x7f800000u));
    fx_close(x);
}

/*
 * sw_save of a mapped index whose records are damaged (the open does not
 * read them) must not read outside the record or the mapping: it either
 * refuses or writes a file that sw_load accepts, never one the library
 * itself would refuse.  Each save runs in a child process, so that a
 * crash is reported as this test's failure instead of ending the run.
 */
TEST(persist_crafted_damaged_mapping_saves_safely)
{
    fx fxs, *x = &fxs;
    char why_path[300];
    size_t d;
    static const struct {
        const char *what;
        int field; /* 0 degree, 1 first link */
        int value; /* -1: M0 + 1, -2: 0xffffffff, -3: count, -4: 64, -5: itself */
    } edits[] = {
        {"layer-0 degree M0 + 1", 0, -1},   {"layer-0 degree 64", 0, -4},
        {"layer-0 degree 0xffffffff", 0, -2}, {"layer-0 link out of range", 1, -3},
        {"layer-0 link 0xffffffff", 1, -2},   {"layer-0 link to itself", 1, -5},
    };

    if (fx_open(x) != 0) {
        fx_close(x);
        return;
    }
    if (!TU_MAPS_IN_PLACE) {
        fx_close(x);
        SKIP("a big-endian host reads a mapped file in and checks every record");
    }
    snprintf(why_path, sizeof why_path, "%.255s/why.txt", x->dir);
    d = deg0_at(x, x->d2);
    for (size_t k = 0; k < sizeof edits / sizeof edits[0]; k++) {
        uint32_t v = edits[k].value == -1   ? x->v->M0 + 1
                     : edits[k].value == -2 ? UINT32_MAX
                     : edits[k].value == -3 ? FX_N
                     : edits[k].value == -4 ? 64u
                                            : x->d2;
        sw_index *b = NULL;
        pid_t pid;
        int status = 0;

        fx_reset(x);
        tu_put_u32(x->c + d + 4 * (size_t)edits[k].field, v);
        tu_v4_reseal(x->c, x->clen);
        REQUIRE(tu_write_file(x->path, x->c, x->clen) == 0);
        if (sw_open_mmap(x->path, NULL, &b) != SW_OK) {
            sw_test_fail_at(__FILE__, __LINE__, "%s: sw_open_mmap: %s", edits[k].what,
                            sw_last_error());
            continue;
        }
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
            /* the child: 0 refused or saved a loadable file, 10 saved a
             * file sw_load refuses, 11 another status (a sanitizer's
             * report exits 1) */
            sw_index *r = NULL;
            sw_status st = sw_save(b, x->out);
            int rc = st == SW_ECORRUPT            ? 0
                     : st != SW_OK                ? 11
                     : sw_load(x->out, NULL, &r) == SW_OK ? 0
                                                          : 10;
            if (rc == 10)
                (void)tu_write_file(why_path, sw_last_error(), strlen(sw_last_error()));
            _exit(rc);
        }
        REQUIRE(pid > 0);
        REQUIRE(waitpid(pid, &status, 0) == pid);
        if (WIFSIGNALED(status))
            sw_test_fail_at(__FILE__, __LINE__, "%s: sw_save of the mapped index died of signal %d",
                            edits[k].what, WTERMSIG(status));
        else if (WEXITSTATUS(status) == 10) {
            size_t wl = 0;
            char *why = (char *)tu_read_file(why_path, &wl);
            sw_test_fail_at(__FILE__, __LINE__,
                            "%s: sw_save of the mapped index wrote a file sw_load refuses: %.*s",
                            edits[k].what, why ? (int)wl : 0, why ? why : "");
            free(why);
        }
        else if (WEXITSTATUS(status) != 0)
            sw_test_fail_at(__FILE__, __LINE__,
                            "%s: sw_save of the mapped index: exit %d (11: a status other "
                            "than SW_OK or SW_ECORRUPT; else a sanitizer's report above)",
                            edits[k].what, WEXITSTATUS(status));
        sw_free(b);
        remove(x->out);
        remove(why_path);
    }
    fx_close(x);
}

/* ===================================================================== */
/* Versions 1 to 3 (src/persist_legacy.c)                                */
/* ===================================================================== */

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
static int legacy_parse(const unsigned char *f, size_t len, layout *L, char *why, size_t whylen)
{
    size_t off = HEADER_BYTES;
    uint32_t version;

    if (len < HEADER_BYTES + 4 || memcmp(f, "SWALLIDX", 8) != 0) {
        snprintf(why, whylen, "no magic \"SWALLIDX\" or shorter than a header");
        return -1;
    }
    version = tu_get_u32(f + OFF_VERSION);
    if (version < 1 || version > 3 || tu_get_u32(f + OFF_HEADER_SIZE) != HEADER_BYTES) {
        snprintf(why, whylen, "format version %u, header size %u: not versions 1 to 3", version,
                 tu_get_u32(f + OFF_HEADER_SIZE));
        return -1;
    }
    if (version >= 3) {
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
        n->n_level = off + 9 <= len ? f[off + 8] & (version >= 2 ? 0x7f : 0xff) : 0;
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

typedef struct crafted {
    unsigned char *bytes;
    size_t len;
} crafted;

static void legacy_expect(const char *path, const crafted *c, tu_alloc *ta, const char *what,
                          int line, int allow_eversion, int allow_ecorrupt)
{
    sw_index *b = (sw_index *)(void *)ta;
    sw_status st;
    size_t huge_before = ta->n_huge;

    if (tu_write_file(path, c->bytes, c->len) != 0) {
        sw_test_fail_at(__FILE__, line, "cannot write %s", path);
        return;
    }
    st = sw_load(path, &ta->api, &b);
    if (!((st == SW_ECORRUPT && allow_ecorrupt) || (st == SW_EVERSION && allow_eversion)))
        sw_test_fail_at(__FILE__, line, "%s: got %s, want %s (%s)", what,
                        sw_test_status_name(st),
                        allow_ecorrupt ? (allow_eversion ? "SW_ECORRUPT or SW_EVERSION"
                                                         : "SW_ECORRUPT")
                                       : "SW_EVERSION",
                        sw_last_error());
    if (st == SW_OK)
        sw_free(b);
    else if (b != NULL)
        sw_test_fail_at(__FILE__, line, "%s: *out not NULL after a failed load", what);
    else if (strstr(sw_last_error(), path) == NULL)
        sw_test_fail_at(__FILE__, line, "%s: the message does not name the file: %s", what,
                        sw_last_error());
    if (tu_alloc_live_bytes(ta) != 0)
        sw_test_fail_at(__FILE__, line, "%s: failed load leaked %zu bytes", what,
                        tu_alloc_live_bytes(ta));
    if (ta->n_huge != huge_before)
        sw_test_fail_at(__FILE__, line, "%s: the loader asked for over 1 GiB at once", what);
}

/* A node of level >= 1 with a layer-1 link, and a node of level 0 that is
 * not the entry point. */
static int find_upper(const unsigned char *f, const layout *L, uint32_t *up, uint32_t *flat)
{
    *up = *flat = UINT32_MAX;
    for (uint32_t i = 0; i < L->count; i++) {
        const node_off *n = &L->nodes[i];
        if (*up == UINT32_MAX && n->n_level >= 1 && tu_get_u32(f + n->links[1]) >= 1)
            *up = i;
        if (*flat == UINT32_MAX && n->n_level == 0 && i != L->entry)
            *flat = i;
    }
    return *up != UINT32_MAX && *flat != UINT32_MAX ? 0 : -1;
}

TEST(persist_crafted_legacy_fields_refused)
{
    char dir[256], src[512], bad[300], why[160];
    unsigned char *orig = NULL;
    size_t len = 0;
    sw_index *b = NULL;
    layout *L = calloc(1, sizeof *L);
    crafted c = {NULL, 0};
    uint32_t up, flat, s, n, dim;
    tu_alloc ta;

    tu_alloc_init(&ta);
    REQUIRE(L != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(bad, sizeof bad, "%s/crafted.swi", dir);
    orig = tu_read_file(tu_data_path(src, sizeof src, "golden_v3.swi"), &len);
    if (orig == NULL)
        sw_test_fail_at(__FILE__, __LINE__, "cannot read %s", src);
    REQUIRE(orig != NULL);
    c.bytes = malloc(len + 8);
    REQUIRE(c.bytes != NULL);
    if (legacy_parse(orig, len, L, why, sizeof why) != 0)
        sw_test_fail_at(__FILE__, __LINE__, "%s is not the documented layout: %s", src, why);
    REQUIRE(!sw_test_failed());
    CHECK_EQ_UINT(tu_get_u32(orig + OFF_VERSION), 3);
    CHECK_EQ_UINT(tu_get_u32(orig + len - 4), tu_crc32c(orig, len - 4));
    n = L->count;
    dim = L->dim;
    REQUIRE(n >= 8 && dim >= 2);
    REQUIRE(find_upper(orig, L, &up, &flat) == 0);

#define EDIT(what, allow_ev, allow_ec, edit)                                   \
    do {                                                                       \
        memcpy(c.bytes, orig, len);                                            \
        c.len = len;                                                           \
        edit;                                                                  \
        tu_reseal(c.bytes, c.len);                                             \
        legacy_expect(bad, &c, &ta, what, __LINE__, allow_ev, allow_ec);       \
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
        CHECK_EQ_UINT(sw_count(b) + sw_deleted_count(b), n);
        sw_free(b);
        b = NULL;
    }
    /* old files are not mapped: sw_load and sw_save convert them */
    CHECK_STATUS(sw_open_mmap(bad, &ta.api, &b), SW_EVERSION);
    CHECK(b == NULL);
    CHECK(strstr(sw_last_error(), bad) != NULL);

    /* Header fields. */
    EDIT("version 5", 1, 0, tu_put_u32(c.bytes + OFF_VERSION, 5));
    /* a version 3 file that says 4 has no valid format 4 header */
    CORRUPT("version 4", tu_put_u32(c.bytes + OFF_VERSION, 4));
    EDIT("version 0", 1, 0, tu_put_u32(c.bytes + OFF_VERSION, 0));
    CORRUPT("header size 84", tu_put_u32(c.bytes + OFF_HEADER_SIZE, 84));
    CORRUPT("header size 128", tu_put_u32(c.bytes + OFF_HEADER_SIZE, 128));
    CORRUPT("dim 0", tu_put_u32(c.bytes + OFF_DIM, 0));
    CORRUPT("dim over SW_MAX_DIM", tu_put_u32(c.bytes + OFF_DIM, SW_MAX_DIM + 1));
    CORRUPT("dim one more", tu_put_u32(c.bytes + OFF_DIM, dim + 1));
    CORRUPT("dim one less", tu_put_u32(c.bytes + OFF_DIM, dim - 1));
    CORRUPT("metric 4", tu_put_u32(c.bytes + OFF_METRIC, 4));
    CORRUPT("metric 0xffffffff", tu_put_u32(c.bytes + OFF_METRIC, UINT32_MAX));
    CORRUPT("element type 1", tu_put_u32(c.bytes + OFF_ELEM, 1));
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
    CORRUPT("entry point = count", tu_put_u32(c.bytes + OFF_ENTRY, n));
    CORRUPT("entry point none", tu_put_u32(c.bytes + OFF_ENTRY, UINT32_MAX));
    CORRUPT("entry point on a level-0 node", tu_put_u32(c.bytes + OFF_ENTRY, flat));
    CORRUPT("max level one more",
            tu_put_u32(c.bytes + OFF_MAXLEVEL, tu_get_u32(orig + OFF_MAXLEVEL) + 1));
    CORRUPT("max level -1", tu_put_u32(c.bytes + OFF_MAXLEVEL, UINT32_MAX));
    CORRUPT("max level 200", tu_put_u32(c.bytes + OFF_MAXLEVEL, 200));
    CORRUPT("metadata length one more", tu_put_u32(c.bytes + HEADER_BYTES,
                                                   tu_get_u32(orig + HEADER_BYTES) + 1));
    CORRUPT("metadata length 0xffffffff", tu_put_u32(c.bytes + HEADER_BYTES, UINT32_MAX));

    /* Node records. */
    s = flat;
    CORRUPT("level 200 on a node", c.bytes[L->nodes[s].level] = 200);
    CORRUPT("level 1 on a level-0 node",
            c.bytes[L->nodes[s].level] = (unsigned char)(1 | (orig[L->nodes[s].level] & 0x80)));
    CORRUPT("NaN in a vector", tu_put_u32(c.bytes + L->nodes[s].vector, 0x7fc00000u));
    CORRUPT("infinity in a vector",
            tu_put_u32(c.bytes + L->nodes[s].vector + 4 * (dim - 1), 0xff800000u));
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
        CORRUPT("link out of range", tu_put_u32(c.bytes + L->nodes[d2].links[0] + 4, n));
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
    legacy_expect(bad, &c, &ta, "a byte after the checksum", __LINE__, 0, 1);
    memcpy(c.bytes, orig, len);
    c.bytes[len - 1] ^= 1;
    c.len = len;
    legacy_expect(bad, &c, &ta, "checksum off by one bit", __LINE__, 0, 1);
#undef CORRUPT
#undef EDIT

    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
    tu_rmtree(dir);
    free(orig);
    free(c.bytes);
    free(L);
}

/*
 * Upper-layer links are allocated at full size (level x (1 + M) words)
 * whatever degree the file gives, so a file of high-level nodes with empty
 * lists would cost hundreds of times its size in memory.  Levels are drawn
 * with P(level >= l) = M^-l, so such a level census is refused outright.
 * The file is written from scratch: dim 1, M 512, 2,000 nodes all on level
 * 63 with every list empty (269 bytes a node; accepted, they would take
 * about 258 MB of links).  Format 1, which the old reader still takes;
 * the format 4 reader's census is tried by persist_crafted_sections_refused.
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
