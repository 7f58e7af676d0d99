/*
 * test_inspect.c — listing labels, graph statistics, the public invariant
 * check, and the application's metadata blob (a section of format 4).
 *
 * These calls report on the index rather than change it, so a broken one
 * does not show as a wrong search result; it shows as a list that is one
 * label short, a degree bound read off the wrong layer, or metadata that
 * vanishes on the way through a file.  So the tests compare each report
 * with something computed independently:
 *
 *   - sw_list_labels against the set of labels the test itself added,
 *     marked and deleted (labels are random 64-bit values, so a list that
 *     returned slot numbers, or truncated labels to 32 bits, cannot pass),
 *     and, for a fresh index built by sw_add in order, against the order of
 *     the adds (the header promises slot order);
 *   - sw_get_stats against the saved file: the file holds every link list
 *     (layer 0 in the records, each upper layer in a section of its own),
 *     so walking it (with testutil's own format 4 parser) gives the nodes, edges and degree range of every layer,
 *     the tombstones and the entry point, and the two must agree exactly;
 *     the walk also finds every reciprocated link (a->b with b->a) by
 *     scanning from both ends, where the library scans from the lower end
 *     only; plus the bounds the parameters put on degrees (M0 on layer 0,
 *     M above), and no self, duplicate or dangling link on any graph the
 *     library made (tests/test_damage.c counts them on a damaged one);
 *   - the memory components against what the counts imply: the upper
 *     lists are exactly (1 + M) words per node per layer above 0, the
 *     parts add up to sw_memory_usage, and the remainder (memory_other)
 *     stays small and grows by exactly the metadata bytes set;
 *   - sw_verify must say SW_OK on every index the library itself produced
 *     (fresh, tombstoned, truly deleted, compacted, reloaded, emptied), and
 *     SW_ECORRUPT on a loadable file the loader cannot see is wrong: one
 *     node whose every in-link has been cut, so that no search reaches it;
 *   - metadata bytes against the bytes set, through cap-limited copies,
 *     errors that must keep the old bytes, an injected allocation failure,
 *     sw_save / sw_load / sw_open_mmap (empty, small, and SW_MAX_METADATA
 *     bytes), and the documented file layout (an optional META section,
 *     its length in the section table); a length patched to a huge or a
 *     wrong value must be refused with SW_ECORRUPT, without a leak or a
 *     huge allocation, and a version 2 file (tests/data/golden_v2.swi, no
 *     metadata field) must load with none.
 *
 * Sizes are small (2,000 vectors of dimension 16 at most) because the suite
 * also runs under the sanitizers.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "sw_test.h"
#include "testutil.h"

#define IN_DIM 16u
#define IN_N 2000u

/* ===================================================================== */
/* Helpers                                                               */
/* ===================================================================== */

static sw_options in_opts(void)
{
    sw_options o = sw_options_default();

    o.dim = IN_DIM;
    o.ef_construction = 100; /* a quicker build; the graph is still a good one */
    return o;
}

/* n distinct random 64-bit labels (never SW_NO_LABEL), some above 2^32. */
static uint64_t *in_labels(size_t n, uint64_t seed)
{
    uint64_t *l = malloc((n ? n : 1) * sizeof *l);
    tu_rng r;

    if (l == NULL)
        return NULL;
    tu_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        int dup;
        do {
            l[i] = tu_rng_next(&r);
            dup = l[i] == SW_NO_LABEL;
            for (size_t j = 0; j < i && !dup; j++)
                dup = l[j] == l[i];
        } while (dup);
    }
    return l;
}

static int u64_cmp(const void *pa, const void *pb)
{
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;

    return (a > b) - (a < b);
}

/* 1 if a[0..na) and b[0..nb) hold the same labels (as sets, no duplicates
 * in either); else 0 with the first difference in why. */
static int same_set(const uint64_t *a, size_t na, const uint64_t *b, size_t nb, char *why,
                    size_t whylen)
{
    uint64_t *sa = malloc((na ? na : 1) * sizeof *sa), *sb = malloc((nb ? nb : 1) * sizeof *sb);
    int ok = 1;

    if (sa == NULL || sb == NULL) {
        snprintf(why, whylen, "out of memory");
        free(sa);
        free(sb);
        return 0;
    }
    if (na)
        memcpy(sa, a, na * sizeof *sa);
    if (nb)
        memcpy(sb, b, nb * sizeof *sb);
    qsort(sa, na, sizeof *sa, u64_cmp);
    qsort(sb, nb, sizeof *sb, u64_cmp);
    for (size_t i = 1; i < na && ok; i++)
        if (sa[i] == sa[i - 1]) {
            snprintf(why, whylen, "label %llu listed twice", (unsigned long long)sa[i]);
            ok = 0;
        }
    if (ok && na != nb) {
        snprintf(why, whylen, "%zu labels, want %zu", na, nb);
        ok = 0;
    }
    for (size_t i = 0; i < na && ok; i++)
        if (sa[i] != sb[i]) {
            snprintf(why, whylen, "label %llu listed where %llu was expected",
                     (unsigned long long)sa[i], (unsigned long long)sb[i]);
            ok = 0;
        }
    free(sa);
    free(sb);
    return ok;
}

/*
 * Every live (tombstoned = 0) or tombstoned label, by a sizing call with
 * cap 0 and out NULL and then a full one; records a failure and returns NULL
 * when either call fails or they disagree.  *n gets the count.
 */
static uint64_t *list_all_at(const sw_index *ix, int tombstoned, size_t *n, const char *file,
                             int line)
{
    size_t total = 12345, total2 = 12345;
    uint64_t *out;
    sw_status st = sw_list_labels(ix, tombstoned, NULL, 0, &total);

    *n = 0;
    if (st != SW_OK) {
        sw_test_fail_at(file, line, "sw_list_labels(sizing): %s (%s)", sw_test_status_name(st),
                        sw_last_error());
        return NULL;
    }
    out = malloc((total + 1) * sizeof *out);
    if (out == NULL) {
        sw_test_fail_at(file, line, "out of memory");
        return NULL;
    }
    out[total] = 0xdeadbeefcafef00dull; /* must survive: cap is total */
    st = sw_list_labels(ix, tombstoned, out, total, &total2);
    if (st != SW_OK || total2 != total || out[total] != 0xdeadbeefcafef00dull) {
        sw_test_fail_at(file, line, "sw_list_labels(full): %s, total %zu then %zu%s",
                        sw_test_status_name(st), total, total2,
                        out[total] != 0xdeadbeefcafef00dull ? ", wrote past cap" : "");
        free(out);
        return NULL;
    }
    *n = total;
    return out;
}
#define list_all(ix, tomb, n) list_all_at((ix), (tomb), (n), __FILE__, __LINE__)

/* The live list must be exactly want[0..nwant). */
#define CHECK_LIST(ix, tomb, want, nwant, what)                                \
    do {                                                                       \
        size_t sw_l_n_;                                                        \
        char sw_l_why_[160];                                                   \
        uint64_t *sw_l_got_ = list_all((ix), (tomb), &sw_l_n_);                \
        if (sw_l_got_ != NULL &&                                               \
            !same_set(sw_l_got_, sw_l_n_, (want), (nwant), sw_l_why_, sizeof sw_l_why_)) \
            sw_test_fail_at(__FILE__, __LINE__, "%s list (%s): %s",            \
                            (tomb) ? "tombstoned" : "live", (what), sw_l_why_); \
        free(sw_l_got_);                                                       \
    } while (0)

/* ---- the file, read by the documented layout (src/persist.c) ------------ */

/* What the file says about the graph, in the shape of sw_stats. */
typedef struct file_stats {
    sw_stats st;     /* count, deleted, layers, entry_label, layer[] */
    uint64_t nodes;  /* records in the file */
    uint32_t meta_len;
} file_stats;

static void layer_add(sw_layer_stats *ls, uint32_t d)
{
    ls->nodes++;
    ls->edges += d;
    if (d < ls->min_degree)
        ls->min_degree = d;
    if (d > ls->max_degree)
        ls->max_degree = d;
}

/* The links of a walked format 4 file (file_walk has checked every list's
 * extent), classed as sw_stats classes them: self, dangling (past the node
 * count, or to a node below the layer), duplicate, and, among the sound
 * ones, those whose target links back, found by scanning the target's list
 * for every link (both ends of a pair). */
static int file_links(const unsigned char *f, const tu_v4 *v, file_stats *fs, char *why,
                      size_t whylen)
{
    uint64_t n = v->count;
    uint32_t layers = fs->st.layers;
    const tu_v4_section *levels = tu_v4_find(v, TU_SEC_LEVELS, 0);
    const tu_v4_section *nodes = tu_v4_find(v, TU_SEC_NODES, 0);
    size_t *list = malloc((n ? n : 1) * (layers ? layers : 1) * sizeof *list);

    if (list == NULL) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    /* list[l * n + i]: the offset of node i's degree word on layer l */
    for (uint64_t i = 0; i < n; i++)
        list[i] = (size_t)(nodes->off + i * v->rec_bytes + v->links_off);
    for (uint32_t l = 1; l < layers; l++) {
        size_t at = (size_t)tu_v4_find(v, TU_SEC_UPPER, l)->off;

        for (uint64_t i = 0; i < n; i++)
            if (f[levels->off + i] >= l) {
                list[l * n + i] = at;
                at += 4 + 4 * (size_t)tu_get_u32(f + at);
            }
    }
    for (uint64_t i = 0; i < n; i++)
        for (uint32_t l = 0; l <= f[levels->off + i]; l++) {
            sw_layer_stats *ls = &fs->st.layer[l];
            size_t at = list[l * n + i];
            uint32_t d = tu_get_u32(f + at);

            for (uint32_t j = 0; j < d; j++) {
                uint32_t t = tu_get_u32(f + at + 4 + (size_t)j * 4), td;
                size_t back;
                int dup = 0;

                if (t == i) {
                    ls->self_links++;
                    continue;
                }
                if (t >= n || f[levels->off + t] < l) {
                    ls->dangling_links++;
                    continue;
                }
                for (uint32_t k = 0; k < j && !dup; k++)
                    dup = tu_get_u32(f + at + 4 + (size_t)k * 4) == t;
                if (dup) {
                    ls->duplicate_links++;
                    continue;
                }
                back = list[l * n + t];
                td = tu_get_u32(f + back);
                for (uint32_t k = 0; k < td; k++)
                    if (tu_get_u32(f + back + 4 + (size_t)k * 4) == i) {
                        ls->reciprocal_edges++;
                        break;
                    }
            }
        }
    free(list);
    return 0;
}

/* Walk a format 4 file (tu_v4_parse, then every section the graph is in);
 * 0 on success, else -1 with the reason in why. */
static int file_walk(const unsigned char *f, size_t len, file_stats *fs, char *why, size_t whylen)
{
    tu_v4 *v = malloc(sizeof *v);
    const tu_v4_section *labels, *levels, *tombs, *nodes, *meta;
    uint64_t at[SW_MAX_LAYERS] = {0}, end[SW_MAX_LAYERS] = {0}; /* each layer's walk */
    int rc = -1;

    memset(fs, 0, sizeof *fs);
    if (v == NULL) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    if (tu_v4_parse(f, len, v, why, whylen) != 0)
        goto out;
    labels = tu_v4_find(v, TU_SEC_LABELS, 0);
    levels = tu_v4_find(v, TU_SEC_LEVELS, 0);
    tombs = tu_v4_find(v, TU_SEC_TOMBSTONES, 0);
    nodes = tu_v4_find(v, TU_SEC_NODES, 0);
    meta = tu_v4_find(v, TU_SEC_META, 0);
    if (!labels || !levels || !tombs || !nodes || v->max_level < -1 ||
        v->max_level >= (int32_t)SW_MAX_LAYERS || labels->len != 8 * v->count ||
        levels->len != v->count || tombs->len != (v->count + 7) / 8 ||
        nodes->len != v->count * v->rec_bytes || v->links_off + 4 > v->rec_bytes) {
        snprintf(why, whylen, "a section missing or of the wrong size, or max level %d",
                 v->max_level);
        goto out;
    }
    fs->nodes = v->count;
    fs->meta_len = meta ? (uint32_t)meta->len : 0;
    fs->st.layers = (uint32_t)(v->max_level + 1);
    fs->st.entry_label = SW_NO_LABEL;
    for (int32_t l = 1; l <= v->max_level; l++) {
        const tu_v4_section *s = tu_v4_find(v, TU_SEC_UPPER, (uint32_t)l);
        if (s == NULL) {
            snprintf(why, whylen, "no section for layer %d", l);
            goto out;
        }
        at[l] = s->off;
        end[l] = s->off + s->len;
    }
    for (uint32_t l = 0; l < fs->st.layers; l++)
        fs->st.layer[l].min_degree = UINT32_MAX;
    for (uint64_t i = 0; i < v->count; i++) {
        int lv = f[levels->off + i];

        if (i == v->entry)
            fs->st.entry_label = tu_get_u64(f + labels->off + 8 * i);
        if (lv > v->max_level) {
            snprintf(why, whylen, "node %llu level %d above %d", (unsigned long long)i, lv,
                     v->max_level);
            goto out;
        }
        if ((f[tombs->off + i / 8] >> (i % 8)) & 1)
            fs->st.deleted++;
        else
            fs->st.count++;
        layer_add(&fs->st.layer[0], tu_get_u32(f + nodes->off + i * v->rec_bytes + v->links_off));
        for (int l = 1; l <= lv; l++) {
            uint32_t d;

            if (at[l] + 4 > end[l] || (d = tu_get_u32(f + at[l]), at[l] + 4 + 4 * (uint64_t)d > end[l])) {
                snprintf(why, whylen, "node %llu runs past the section of layer %d",
                         (unsigned long long)i, l);
                goto out;
            }
            layer_add(&fs->st.layer[l], d);
            at[l] += 4 + 4 * (uint64_t)d;
        }
    }
    for (int32_t l = 1; l <= v->max_level; l++)
        if (at[l] != end[l]) {
            snprintf(why, whylen, "the lists of layer %d end at %llu, the section at %llu", l,
                     (unsigned long long)at[l], (unsigned long long)end[l]);
            goto out;
        }
    for (uint32_t l = 0; l < fs->st.layers; l++)
        if (fs->st.layer[l].nodes == 0)
            fs->st.layer[l].min_degree = 0;
    rc = file_links(f, v, fs, why, whylen);
out:
    free(v);
    return rc;
}

/* sw_get_stats of ix must agree with its saved file in every graph field. */
static void check_stats_match_file_at(const sw_index *ix, const char *dir, const char *what,
                                      const char *file, int line)
{
    char path[400], why[200];
    unsigned char *bytes;
    size_t len = 0;
    file_stats fs;
    sw_stats st;
    sw_status s;

    snprintf(path, sizeof path, "%s/stats.swi", dir);
    s = sw_save(ix, path);
    if (s != SW_OK) {
        sw_test_fail_at(file, line, "%s: sw_save: %s (%s)", what, sw_test_status_name(s),
                        sw_last_error());
        return;
    }
    bytes = tu_read_file(path, &len);
    remove(path);
    if (bytes == NULL) {
        sw_test_fail_at(file, line, "%s: cannot read %s", what, path);
        return;
    }
    if (file_walk(bytes, len, &fs, why, sizeof why) != 0) {
        sw_test_fail_at(file, line, "%s: saved file does not parse: %s", what, why);
        free(bytes);
        return;
    }
    free(bytes);
    s = sw_get_stats(ix, &st);
    if (s != SW_OK) {
        sw_test_fail_at(file, line, "%s: sw_get_stats: %s (%s)", what, sw_test_status_name(s),
                        sw_last_error());
        return;
    }
#define FIELD_EQ(fld)                                                          \
    do {                                                                       \
        if ((unsigned long long)st.fld != (unsigned long long)fs.st.fld)       \
            sw_test_fail_at(file, line, "%s: stats." #fld " %llu, the file says %llu", what, \
                            (unsigned long long)st.fld, (unsigned long long)fs.st.fld); \
    } while (0)
    FIELD_EQ(count);
    FIELD_EQ(deleted);
    FIELD_EQ(layers);
    FIELD_EQ(entry_label);
    for (uint32_t l = 0; l < SW_MAX_LAYERS; l++) {
        FIELD_EQ(layer[l].nodes);
        FIELD_EQ(layer[l].edges);
        FIELD_EQ(layer[l].min_degree);
        FIELD_EQ(layer[l].max_degree);
        FIELD_EQ(layer[l].self_links);
        FIELD_EQ(layer[l].duplicate_links);
        FIELD_EQ(layer[l].dangling_links);
        FIELD_EQ(layer[l].reciprocal_edges);
    }
#undef FIELD_EQ
}
#define CHECK_STATS_MATCH_FILE(ix, dir, what) \
    check_stats_match_file_at((ix), (dir), (what), __FILE__, __LINE__)

/* The bounds every library-made graph obeys, whatever the data. */
static void check_stats_bounds_at(const sw_stats *st, uint32_t M, uint32_t M0,
                                  int want_min_degree, const char *what, const char *file,
                                  int line)
{
    uint64_t total_nodes = st->count + st->deleted;
    uint64_t self = 0, dup = 0, dangling = 0, overfull = 0;
    size_t parts;

    if (st->layers > SW_MAX_LAYERS) {
        sw_test_fail_at(file, line, "%s: %u layers", what, st->layers);
        return;
    }
    if (total_nodes == 0) {
        if (st->layers != 0 || st->entry_label != SW_NO_LABEL)
            sw_test_fail_at(file, line, "%s: empty index has %u layers, entry %llu", what,
                            st->layers, (unsigned long long)st->entry_label);
    } else if (st->layers == 0 || st->entry_label == SW_NO_LABEL) {
        sw_test_fail_at(file, line, "%s: %llu nodes but %u layers, entry %llu", what,
                        (unsigned long long)total_nodes, st->layers,
                        (unsigned long long)st->entry_label);
    }
    for (uint32_t l = 0; l < SW_MAX_LAYERS; l++) {
        const sw_layer_stats *ls = &st->layer[l];
        uint32_t bound = l == 0 ? M0 : M;

        if (l >= st->layers) {
            if (ls->nodes || ls->edges || ls->min_degree || ls->max_degree ||
                ls->mean_degree != 0.0 || ls->self_links || ls->duplicate_links ||
                ls->dangling_links || ls->overfull_lists || ls->reciprocal_edges ||
                ls->reciprocal_share != 0.0)
                sw_test_fail_at(file, line, "%s: layer %u beyond the %u in use is not zero", what,
                                l, st->layers);
            continue;
        }
        self += ls->self_links;
        dup += ls->duplicate_links;
        dangling += ls->dangling_links;
        overfull += ls->overfull_lists;
        if (ls->self_links || ls->duplicate_links || ls->dangling_links || ls->overfull_lists)
            sw_test_fail_at(file, line,
                            "%s: layer %u of a sound graph has %llu self, %llu duplicate and "
                            "%llu dangling links and %llu overfull lists",
                            what, l, (unsigned long long)ls->self_links,
                            (unsigned long long)ls->duplicate_links,
                            (unsigned long long)ls->dangling_links,
                            (unsigned long long)ls->overfull_lists);
        /* The same division, so equal to the last bit. */
        if (ls->nodes && ls->mean_degree != (double)ls->edges / (double)ls->nodes)
            sw_test_fail_at(file, line, "%s: layer %u mean degree %g, edges / nodes %g", what, l,
                            ls->mean_degree, (double)ls->edges / (double)ls->nodes);
        /* A reciprocated link's partner is reciprocated too: an even count. */
        if (ls->reciprocal_edges > ls->edges || ls->reciprocal_edges % 2)
            sw_test_fail_at(file, line, "%s: layer %u has %llu reciprocal edges of %llu", what, l,
                            (unsigned long long)ls->reciprocal_edges,
                            (unsigned long long)ls->edges);
        if (ls->reciprocal_share !=
            (ls->edges ? (double)ls->reciprocal_edges / (double)ls->edges : 0.0))
            sw_test_fail_at(file, line, "%s: layer %u reciprocal share %g for %llu of %llu", what,
                            l, ls->reciprocal_share, (unsigned long long)ls->reciprocal_edges,
                            (unsigned long long)ls->edges);
        if (l == 0 && ls->nodes != total_nodes)
            sw_test_fail_at(file, line, "%s: layer 0 has %llu nodes, index %llu", what,
                            (unsigned long long)ls->nodes, (unsigned long long)total_nodes);
        if (ls->nodes == 0)
            sw_test_fail_at(file, line, "%s: layer %u of %u is empty", what, l, st->layers);
        if (l > 0 && ls->nodes > st->layer[l - 1].nodes)
            sw_test_fail_at(file, line, "%s: layer %u has %llu nodes, more than layer %u (%llu)",
                            what, l, (unsigned long long)ls->nodes, l - 1,
                            (unsigned long long)st->layer[l - 1].nodes);
        if (ls->max_degree > bound)
            sw_test_fail_at(file, line, "%s: layer %u max degree %u above %u", what, l,
                            ls->max_degree, bound);
        if (ls->min_degree > ls->max_degree)
            sw_test_fail_at(file, line, "%s: layer %u min degree %u above max %u", what, l,
                            ls->min_degree, ls->max_degree);
        if (want_min_degree && ls->nodes > 1 && ls->min_degree < 1)
            sw_test_fail_at(file, line, "%s: layer %u (%llu nodes) has a node without links",
                            what, l, (unsigned long long)ls->nodes);
        if (ls->edges < ls->nodes * ls->min_degree || ls->edges > ls->nodes * ls->max_degree)
            sw_test_fail_at(file, line, "%s: layer %u has %llu edges, outside %llu x [%u, %u]",
                            what, l, (unsigned long long)ls->edges,
                            (unsigned long long)ls->nodes, ls->min_degree, ls->max_degree);
    }
    if (st->layers > 0 && st->layer[st->layers - 1].nodes == 0)
        sw_test_fail_at(file, line, "%s: top layer empty", what);
    if (st->self_links != self || st->duplicate_links != dup ||
        st->dangling_links != dangling || st->overfull_lists != overfull)
        sw_test_fail_at(file, line, "%s: totals %llu/%llu/%llu/%llu, the layers sum to "
                        "%llu/%llu/%llu/%llu", what, (unsigned long long)st->self_links,
                        (unsigned long long)st->duplicate_links,
                        (unsigned long long)st->dangling_links,
                        (unsigned long long)st->overfull_lists, (unsigned long long)self,
                        (unsigned long long)dup, (unsigned long long)dangling,
                        (unsigned long long)overfull);
    parts = st->memory_vectors + st->memory_links0 + st->memory_upper + st->memory_labels +
            st->memory_scratch;
    if (parts > st->memory_bytes || parts + st->memory_other != st->memory_bytes)
        sw_test_fail_at(file, line, "%s: memory parts %zu + other %zu, total %zu", what, parts,
                        st->memory_other, st->memory_bytes);
    if (st->memory_mapped != 0 && st->memory_vectors + st->memory_links0 != 0)
        sw_test_fail_at(file, line, "%s: %zu bytes mapped, and records in memory too", what,
                        st->memory_mapped);
}
#define CHECK_STATS_BOUNDS(st, M, M0, minb, what) \
    check_stats_bounds_at((st), (M), (M0), (minb), (what), __FILE__, __LINE__)

/* sw_verify must pass; on failure the message says why. */
#define CHECK_VERIFY_OK(ix, what)                                              \
    do {                                                                       \
        sw_status sw_v_st_ = sw_verify(ix);                                    \
        if (sw_v_st_ != SW_OK)                                                 \
            sw_test_fail_at(__FILE__, __LINE__, "sw_verify [%s]: %s (%s)", (what), \
                            sw_test_status_name(sw_v_st_), sw_last_error());   \
    } while (0)

/* ===================================================================== */
/* sw_list_labels                                                        */
/* ===================================================================== */

TEST(inspect_list_labels_live_in_slot_order)
{
    sw_options o = in_opts();
    float *data = tu_clustered(IN_N, IN_DIM, 8, 9001, 9002);
    uint64_t *labels = in_labels(IN_N, 9003);
    sw_index *ix = NULL;
    uint64_t *got;
    size_t n = 0, total = 99;

    REQUIRE(data != NULL && labels != NULL);
    REQUIRE_OK(sw_create(&o, &ix));

    /* Empty: both lists are empty. */
    CHECK_OK(sw_list_labels(ix, 0, NULL, 0, &total));
    CHECK_EQ_UINT(total, 0);
    total = 99;
    CHECK_OK(sw_list_labels(ix, 1, NULL, 0, &total));
    CHECK_EQ_UINT(total, 0);
    sw_free(ix);

    ix = tu_build_labels(&o, data, labels, IN_N);
    REQUIRE(ix != NULL);
    got = list_all(ix, 0, &n);
    REQUIRE(got != NULL);
    CHECK_EQ_UINT(n, IN_N);
    /* A fresh index built by sw_add in order holds slot i = row i. */
    if (n == IN_N)
        for (size_t i = 0; i < n; i++)
            if (got[i] != labels[i]) {
                sw_test_fail_at(__FILE__, __LINE__,
                                "entry %zu is %llu, want %llu (slot order = add order)", i,
                                (unsigned long long)got[i], (unsigned long long)labels[i]);
                break;
            }
    free(got);
    CHECK_LIST(ix, 0, labels, IN_N, "fresh");
    CHECK_LIST(ix, 1, labels, 0, "fresh");

    /* An update neither adds nor drops a label. */
    CHECK_OK(sw_add(ix, labels[7], data + 9 * IN_DIM, IN_DIM));
    CHECK_LIST(ix, 0, labels, IN_N, "after an update");

    /* tombstoned: any nonzero value asks for the tombstones. */
    total = 99;
    CHECK_OK(sw_list_labels(ix, 2, NULL, 0, &total));
    CHECK_EQ_UINT(total, 0);

    sw_free(ix);
    free(labels);
    free(data);
}

TEST(inspect_list_labels_tombstones_and_deletes)
{
    sw_options o = in_opts();
    float *data = tu_clustered(IN_N, IN_DIM, 8, 9011, 9012);
    uint64_t *labels = in_labels(IN_N + 100, 9013);
    uint64_t *live = malloc((IN_N + 100) * sizeof *live), *dead = malloc(IN_N * sizeof *dead);
    unsigned char *state = calloc(IN_N + 100, 1); /* 0 live, 1 tombstoned, 2 gone, 3 not added */
    sw_index *ix;
    tu_rng r;
    size_t nlive, ndead;

    REQUIRE(data != NULL && labels != NULL && live != NULL && dead != NULL && state != NULL);
    for (size_t i = IN_N; i < IN_N + 100; i++)
        state[i] = 3;
    ix = tu_build_labels(&o, data, labels, IN_N);
    REQUIRE(ix != NULL);
    tu_rng_seed(&r, 9014);

#define SPLIT()                                                                \
    do {                                                                       \
        nlive = ndead = 0;                                                     \
        for (size_t i_ = 0; i_ < IN_N + 100; i_++) {                           \
            if (state[i_] == 0)                                                \
                live[nlive++] = labels[i_];                                    \
            else if (state[i_] == 1)                                           \
                dead[ndead++] = labels[i_];                                    \
        }                                                                      \
    } while (0)

    /* Tombstone 300 at random. */
    for (size_t k = 0; k < 300;) {
        size_t i = (size_t)tu_rng_below(&r, IN_N);
        if (state[i] != 0)
            continue;
        REQUIRE_OK(sw_mark_deleted(ix, labels[i]));
        state[i] = 1;
        k++;
    }
    SPLIT();
    CHECK_EQ_UINT(nlive, IN_N - 300);
    CHECK_EQ_UINT(ndead, 300);
    CHECK_LIST(ix, 0, live, nlive, "after 300 tombstones");
    CHECK_LIST(ix, 1, dead, ndead, "after 300 tombstones");

    /* Lift 50 of them, one by an update. */
    for (size_t i = 0, k = 0; i < IN_N && k < 50; i++)
        if (state[i] == 1) {
            if (k == 0)
                CHECK_OK(sw_add(ix, labels[i], data + i * IN_DIM, IN_DIM));
            else
                CHECK_OK(sw_unmark_deleted(ix, labels[i]));
            state[i] = 0;
            k++;
        }
    SPLIT();
    CHECK_LIST(ix, 0, live, nlive, "after lifting 50");
    CHECK_LIST(ix, 1, dead, ndead, "after lifting 50");

    /* Truly delete 60 live and 40 tombstoned ones: in neither list. */
    {
        size_t kl = 0, kd = 0;
        for (size_t i = 0; i < IN_N && (kl < 60 || kd < 40); i += 3) {
            if (state[i] == 0 && kl < 60) {
                CHECK_OK(sw_delete(ix, labels[i]));
                state[i] = 2;
                kl++;
            } else if (state[i] == 1 && kd < 40) {
                CHECK_OK(sw_delete(ix, labels[i]));
                state[i] = 2;
                kd++;
            }
        }
        CHECK_EQ_UINT(kl, 60);
        CHECK_EQ_UINT(kd, 40);
    }
    SPLIT();
    CHECK_EQ_UINT(sw_count(ix), nlive);
    CHECK_EQ_UINT(sw_deleted_count(ix), ndead);
    CHECK_LIST(ix, 0, live, nlive, "after sw_delete");
    CHECK_LIST(ix, 1, dead, ndead, "after sw_delete");
    CHECK_VERIFY_OK(ix, "after sw_delete");

    /* New labels go into recycled slots and are listed; the deleted stay out. */
    for (size_t i = IN_N; i < IN_N + 100; i++) {
        CHECK_OK(sw_add(ix, labels[i], data + (i - IN_N) * IN_DIM, IN_DIM));
        state[i] = 0;
    }
    SPLIT();
    CHECK_LIST(ix, 0, live, nlive, "after adds into freed slots");
    CHECK_LIST(ix, 1, dead, ndead, "after adds into freed slots");

    /* Compaction turns every tombstone into a deletion. */
    CHECK_OK(sw_compact(ix, 1));
    for (size_t i = 0; i < IN_N + 100; i++)
        if (state[i] == 1)
            state[i] = 2;
    SPLIT();
    CHECK_EQ_UINT(ndead, 0);
    CHECK_LIST(ix, 0, live, nlive, "after sw_compact");
    CHECK_LIST(ix, 1, dead, 0, "after sw_compact");
    CHECK_VERIFY_OK(ix, "after sw_compact");
#undef SPLIT

    sw_free(ix);
    free(state);
    free(dead);
    free(live);
    free(labels);
    free(data);
}

TEST(inspect_list_labels_cap_and_errors)
{
    sw_options o = in_opts();
    const size_t n = 300;
    float *data = tu_clustered(n, IN_DIM, 4, 9021, 9022);
    uint64_t *labels = in_labels(n, 9023);
    uint64_t *full = NULL, buf[64];
    const uint64_t sentinel = 0x5a5a5a5a5a5a5a5aull;
    sw_index *ix;
    size_t nfull = 0, total;

    REQUIRE(data != NULL && labels != NULL);
    ix = tu_build_labels(&o, data, labels, n);
    REQUIRE(ix != NULL);
    for (size_t i = 0; i < 20; i++)
        REQUIRE_OK(sw_mark_deleted(ix, labels[3 * i + 1]));
    full = list_all(ix, 0, &nfull);
    REQUIRE(full != NULL);
    CHECK_EQ_UINT(nfull, n - 20);

    /* cap below the total: exactly cap entries, the first cap of the full
     * list (slot order), nothing past them, the full total reported. */
    for (size_t cap = 1; cap <= 64; cap *= 4) {
        for (size_t i = 0; i < 64; i++)
            buf[i] = sentinel;
        total = 0;
        CHECK_OK(sw_list_labels(ix, 0, buf, cap, &total));
        CHECK_EQ_UINT(total, n - 20);
        for (size_t i = 0; i < cap && i < nfull; i++)
            CHECK_EQ_UINT(buf[i], full[i]);
        for (size_t i = cap; i < 64; i++)
            if (buf[i] != sentinel) {
                sw_test_fail_at(__FILE__, __LINE__, "cap %zu: entry %zu written", cap, i);
                break;
            }
    }
    /* The same for the tombstones: 20 of them, cap 5. */
    for (size_t i = 0; i < 64; i++)
        buf[i] = sentinel;
    CHECK_OK(sw_list_labels(ix, 1, buf, 5, &total));
    CHECK_EQ_UINT(total, 20);
    for (size_t i = 0; i < 5; i++)
        CHECK_EQ_UINT(buf[i], labels[3 * i + 1]); /* slot order */
    CHECK_EQ_UINT(buf[5], sentinel);

    /* cap 0: out NULL or not, nothing is written, the total is right. */
    total = 0;
    CHECK_OK(sw_list_labels(ix, 0, NULL, 0, &total));
    CHECK_EQ_UINT(total, n - 20);
    buf[0] = sentinel;
    total = 0;
    CHECK_OK(sw_list_labels(ix, 0, buf, 0, &total));
    CHECK_EQ_UINT(total, n - 20);
    CHECK_EQ_UINT(buf[0], sentinel);

    /* Errors: a NULL index or total, out NULL with cap > 0. */
    total = 777;
    CHECK_FAILS_WITH(sw_list_labels(NULL, 0, buf, 64, &total), SW_ENULL);
    CHECK_FAILS_WITH(sw_list_labels(NULL, 0, NULL, 0, &total), SW_ENULL);
    CHECK_FAILS_WITH(sw_list_labels(ix, 0, buf, 64, NULL), SW_ENULL);
    CHECK_FAILS_WITH(sw_list_labels(ix, 1, NULL, 0, NULL), SW_ENULL);
    CHECK_FAILS_WITH(sw_list_labels(ix, 0, NULL, 1, &total), SW_ENULL);
    CHECK_FAILS_WITH(sw_list_labels(ix, 1, NULL, 64, &total), SW_ENULL);
    CHECK_EQ_UINT(sw_count(ix), n - 20);

    sw_free(ix);
    free(full);
    free(labels);
    free(data);
}

/* ===================================================================== */
/* sw_get_stats                                                          */
/* ===================================================================== */

TEST(inspect_stats_empty_and_errors)
{
    sw_options o = in_opts();
    sw_index *ix = NULL;
    sw_stats st;
    float v[IN_DIM] = {0};

    REQUIRE_OK(sw_create(&o, &ix));
    memset(&st, 0xab, sizeof st);
    REQUIRE_OK(sw_get_stats(ix, &st));
    CHECK_EQ_UINT(st.count, 0);
    CHECK_EQ_UINT(st.deleted, 0);
    CHECK_EQ_UINT(st.free_slots, 0);
    CHECK_EQ_UINT(st.layers, 0);
    CHECK_EQ_UINT(st.entry_label, SW_NO_LABEL);
    CHECK_EQ_UINT(st.memory_bytes, sw_memory_usage(ix));
    CHECK(st.memory_bytes > 0);
    CHECK_STATS_BOUNDS(&st, 16, 32, 1, "empty");

    /* One vector: one layer at least, no links, the entry is that label. */
    v[0] = 1.0f;
    REQUIRE_OK(sw_add(ix, 0x123456789abcdef0ull, v, IN_DIM));
    memset(&st, 0xab, sizeof st);
    REQUIRE_OK(sw_get_stats(ix, &st));
    CHECK_EQ_UINT(st.count, 1);
    CHECK(st.layers >= 1);
    CHECK_EQ_UINT(st.entry_label, 0x123456789abcdef0ull);
    CHECK_EQ_UINT(st.layer[0].nodes, 1);
    CHECK_EQ_UINT(st.layer[0].edges, 0);
    CHECK_EQ_UINT(st.layer[0].min_degree, 0);
    CHECK_EQ_UINT(st.layer[0].max_degree, 0);
    CHECK_STATS_BOUNDS(&st, 16, 32, 1, "one vector");
    CHECK_VERIFY_OK(ix, "one vector");

    /* Tombstoned, it still counts as a node of the graph. */
    REQUIRE_OK(sw_mark_deleted(ix, 0x123456789abcdef0ull));
    REQUIRE_OK(sw_get_stats(ix, &st));
    CHECK_EQ_UINT(st.count, 0);
    CHECK_EQ_UINT(st.deleted, 1);
    CHECK_EQ_UINT(st.layer[0].nodes, 1);
    CHECK_EQ_UINT(st.entry_label, 0x123456789abcdef0ull);

    /* Deleted for real: empty again, with one slot to reuse. */
    REQUIRE_OK(sw_delete(ix, 0x123456789abcdef0ull));
    memset(&st, 0xab, sizeof st);
    REQUIRE_OK(sw_get_stats(ix, &st));
    CHECK_EQ_UINT(st.count, 0);
    CHECK_EQ_UINT(st.deleted, 0);
    CHECK_EQ_UINT(st.free_slots, 1);
    CHECK_EQ_UINT(st.layers, 0);
    CHECK_EQ_UINT(st.entry_label, SW_NO_LABEL);
    CHECK_EQ_UINT(st.memory_bytes, sw_memory_usage(ix));
    CHECK_STATS_BOUNDS(&st, 16, 32, 1, "emptied");
    CHECK_VERIFY_OK(ix, "emptied");

    CHECK_FAILS_WITH(sw_get_stats(NULL, &st), SW_ENULL);
    CHECK_FAILS_WITH(sw_get_stats(ix, NULL), SW_ENULL);
    CHECK_FAILS_WITH(sw_get_stats(NULL, NULL), SW_ENULL);
    sw_free(ix);
}

TEST(inspect_stats_graph_matches_file)
{
    sw_options o = in_opts();
    float *data = tu_clustered(IN_N, IN_DIM, 8, 9031, 9032);
    uint64_t *labels = in_labels(IN_N + 40, 9033);
    char dir[256];
    sw_index *ix;
    sw_stats st, st2;
    size_t top_nodes = 0;
    int entry_known = 0;

    REQUIRE(data != NULL && labels != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    ix = tu_build_labels(&o, data, labels, IN_N);
    REQUIRE(ix != NULL);

    REQUIRE_OK(sw_get_stats(ix, &st));
    CHECK_EQ_UINT(st.count, IN_N);
    CHECK_EQ_UINT(st.count, sw_count(ix));
    CHECK_EQ_UINT(st.deleted, 0);
    CHECK_EQ_UINT(st.free_slots, 0);
    CHECK_EQ_UINT(st.layer[0].nodes, IN_N);
    CHECK_EQ_UINT(st.memory_bytes, sw_memory_usage(ix));
    CHECK_STATS_BOUNDS(&st, 16, 32, 1, "fresh, M 16");
    /* With P(level >= 1) = 1/16, 2,000 nodes put about 125 on layer 1; and
     * layer 0 of a 2,000-node graph at M0 32 fills some list past M. */
    CHECK(st.layers >= 2);
    CHECK(st.layer[1].nodes >= IN_N / 16 / 3 && st.layer[1].nodes <= IN_N / 16 * 3);
    CHECK(st.layer[0].max_degree > 16);
    CHECK(st.layer[0].edges >= IN_N);
    for (size_t i = 0; i < IN_N; i++)
        entry_known |= labels[i] == st.entry_label;
    CHECK(entry_known);
    if (st.layers > 0)
        top_nodes = st.layer[st.layers - 1].nodes;
    NOTE("layers %u, layer 0: %llu edges, degree %u..%u; layer 1: %llu nodes; top: %zu nodes",
         st.layers, (unsigned long long)st.layer[0].edges, st.layer[0].min_degree,
         st.layer[0].max_degree, (unsigned long long)st.layer[1].nodes, top_nodes);
    CHECK_STATS_MATCH_FILE(ix, dir, "fresh");

    /* Reading the stats changes nothing. */
    REQUIRE_OK(sw_get_stats(ix, &st2));
    CHECK(memcmp(&st, &st2, offsetof(sw_stats, memory_bytes)) == 0);
    CHECK(memcmp(st.layer, st2.layer, sizeof st.layer) == 0);

    /* Tombstones: counted apart, still nodes of every layer they are on. */
    for (size_t i = 0; i < 100; i++)
        REQUIRE_OK(sw_mark_deleted(ix, labels[i * 13]));
    REQUIRE_OK(sw_get_stats(ix, &st2));
    CHECK_EQ_UINT(st2.deleted, 100);
    CHECK_EQ_UINT(st2.deleted, sw_deleted_count(ix));
    CHECK_EQ_UINT(st2.count, IN_N - 100);
    CHECK_EQ_UINT(st2.count, sw_count(ix));
    CHECK_EQ_UINT(st2.layer[0].nodes, IN_N);
    CHECK(memcmp(st.layer, st2.layer, sizeof st.layer) == 0); /* the graph is unchanged */
    CHECK_EQ_UINT(st2.memory_bytes, sw_memory_usage(ix));
    CHECK_STATS_MATCH_FILE(ix, dir, "tombstoned");

    /* True deletions: 30 of the tombstoned and 20 live ones leave 50 free
     * slots and 50 fewer nodes. */
    for (size_t i = 0; i < 30; i++)
        REQUIRE_OK(sw_delete(ix, labels[i * 13]));
    for (size_t i = 0; i < 20; i++)
        REQUIRE_OK(sw_delete(ix, labels[i * 13 + 5]));
    REQUIRE_OK(sw_get_stats(ix, &st2));
    CHECK_EQ_UINT(st2.free_slots, 50);
    CHECK_EQ_UINT(st2.deleted, 70);
    CHECK_EQ_UINT(st2.deleted, sw_deleted_count(ix));
    CHECK_EQ_UINT(st2.count, IN_N - 120);
    CHECK_EQ_UINT(st2.count, sw_count(ix));
    CHECK_EQ_UINT(st2.layer[0].nodes, IN_N - 50);
    CHECK_EQ_UINT(st2.memory_bytes, sw_memory_usage(ix));
    CHECK_STATS_BOUNDS(&st2, 16, 32, 1, "after sw_delete");
    CHECK_STATS_MATCH_FILE(ix, dir, "after sw_delete");
    CHECK(st2.entry_label != SW_NO_LABEL);
    for (size_t i = 0; i < 30; i++)
        CHECK(st2.entry_label != labels[i * 13]);
    for (size_t i = 0; i < 20; i++)
        CHECK(st2.entry_label != labels[i * 13 + 5]);

    /* Adds take the free slots first. */
    for (size_t i = 0; i < 40; i++)
        REQUIRE_OK(sw_add(ix, labels[IN_N + i], data + i * IN_DIM, IN_DIM));
    REQUIRE_OK(sw_get_stats(ix, &st2));
    CHECK_EQ_UINT(st2.free_slots, 10);
    CHECK_EQ_UINT(st2.count, IN_N - 80);
    CHECK_EQ_UINT(st2.layer[0].nodes, IN_N - 10);
    CHECK_STATS_MATCH_FILE(ix, dir, "after reuse");

    /* Compaction: no tombstones left, and their slots are free. */
    REQUIRE_OK(sw_compact(ix, 2));
    REQUIRE_OK(sw_get_stats(ix, &st2));
    CHECK_EQ_UINT(st2.deleted, 0);
    CHECK_EQ_UINT(st2.free_slots, 80);
    CHECK_EQ_UINT(st2.count, IN_N - 80);
    CHECK_EQ_UINT(st2.layer[0].nodes, IN_N - 80);
    CHECK_STATS_BOUNDS(&st2, 16, 32, 1, "after sw_compact");
    CHECK_STATS_MATCH_FILE(ix, dir, "after sw_compact");
    CHECK_EQ_UINT(st2.memory_bytes, sw_memory_usage(ix));

    CHECK_VERIFY_OK(ix, "stats test end");
    sw_free(ix);
    tu_rmtree(dir);
    free(labels);
    free(data);
}

/* Other M and M0: the degree bounds follow the index's own parameters. */
TEST(inspect_stats_bounds_follow_parameters)
{
    sw_options o = in_opts();
    const size_t n = 1500;
    float *data = tu_clustered(n, IN_DIM, 8, 9041, 9042);
    uint64_t *labels = in_labels(n, 9043);
    char dir[256];
    sw_index *ix;
    sw_stats st;

    REQUIRE(data != NULL && labels != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    o.M = 5;
    o.M0 = 7;
    ix = tu_build_labels(&o, data, labels, n);
    REQUIRE(ix != NULL);
    REQUIRE_OK(sw_get_stats(ix, &st));
    CHECK_EQ_UINT(st.count, n);
    CHECK_STATS_BOUNDS(&st, 5, 7, 1, "M 5, M0 7");
    /* At M 5 lists fill: layer 0 reaches M0 and layer 1 reaches M. */
    CHECK_EQ_UINT(st.layer[0].max_degree, 7);
    CHECK(st.layers >= 3);
    if (st.layers >= 2)
        CHECK_EQ_UINT(st.layer[1].max_degree, 5);
    CHECK_STATS_MATCH_FILE(ix, dir, "M 5, M0 7");
    CHECK_VERIFY_OK(ix, "M 5, M0 7");
    sw_free(ix);

    o.M = 24;
    o.M0 = 24; /* M0 = M is allowed: layer 0 no wider than the others */
    ix = tu_build_labels(&o, data, labels, n);
    REQUIRE(ix != NULL);
    REQUIRE_OK(sw_get_stats(ix, &st));
    CHECK_STATS_BOUNDS(&st, 24, 24, 1, "M 24, M0 24");
    CHECK_STATS_MATCH_FILE(ix, dir, "M 24, M0 24");
    sw_free(ix);

    tu_rmtree(dir);
    free(labels);
    free(data);
}

/* The integrity report and the memory components of a sound index. */
TEST(inspect_stats_reciprocity_and_memory)
{
    sw_options o = in_opts();
    float *data = tu_clustered(IN_N, IN_DIM, 8, 9061, 9062);
    uint64_t *labels = in_labels(IN_N, 9063);
    static unsigned char meta[1000];
    uint64_t *found = malloc(500 * sizeof *found);
    sw_search_params p = sw_search_params_default();
    sw_index *ix = NULL;
    sw_stats st, st2;
    uint64_t upper_nodes = 0;
    size_t n_found = 0;

    REQUIRE(data != NULL && labels != NULL && found != NULL);
    REQUIRE_OK(sw_create(&o, &ix));
    REQUIRE_OK(sw_get_stats(ix, &st));
    CHECK_EQ_UINT(st.memory_vectors + st.memory_links0 + st.memory_upper, 0);
    CHECK_EQ_UINT(st.memory_scratch, 0); /* nothing has needed scratch space yet */
    CHECK_STATS_BOUNDS(&st, 16, 32, 1, "empty");
    sw_free(ix);

    ix = tu_build_labels(&o, data, labels, IN_N);
    REQUIRE(ix != NULL);
    REQUIRE_OK(sw_get_stats(ix, &st));
    CHECK_STATS_BOUNDS(&st, 16, 32, 1, "fresh");
    CHECK_EQ_UINT(st.unreachable, 0);
    /* Algorithm 1 links a new node to its neighbours and them back to
     * it, and only pruning breaks a pair, so most links are reciprocated:
     * on layer 0 far more than the 0.3 a random graph could reach. */
    for (uint32_t l = 0; l < st.layers; l++) {
        CHECK(st.layer[l].reciprocal_share > 0.0 || st.layer[l].edges == 0);
        CHECK(st.layer[l].reciprocal_share <= 1.0);
    }
    CHECK(st.layer[0].reciprocal_share > 0.6);
    CHECK(st.layer[0].edges ==
          (uint64_t)(st.layer[0].mean_degree * (double)st.layer[0].nodes + 0.5));
    NOTE("layer 0: mean degree %.2f, %.3f of links reciprocated; layer 1: %.3f",
         st.layer[0].mean_degree, st.layer[0].reciprocal_share,
         st.layers > 1 ? st.layer[1].reciprocal_share : 0.0);

    /* No free slot: the upper lists are exactly 1 + M words per node per
     * layer above 0. */
    for (uint32_t l = 1; l < st.layers; l++)
        upper_nodes += st.layer[l].nodes;
    CHECK_EQ_UINT(st.memory_upper, upper_nodes * (1 + 16) * sizeof(uint32_t));
    CHECK(st.memory_vectors >= IN_N * IN_DIM * sizeof(float));
    CHECK(st.memory_links0 >= IN_N * (1 + 32) * sizeof(uint32_t));
    /* a label per slot, and a map bucket (label and slot) per label */
    CHECK(st.memory_labels >= IN_N * (8 + 8 + 4));
    CHECK(st.memory_scratch > 0); /* the adds' context, idle now */
    /* The rest is the index itself, the chunk directory and small change:
     * a side-array size out of step with storage.c would put at least a
     * byte per slot (thousands) here, or make the parts exceed the total. */
    CHECK(st.memory_other < 4096);
    CHECK_EQ_UINT(st.memory_mapped, 0);
    NOTE("memory: %zu = vectors %zu + links0 %zu + upper %zu + labels %zu + scratch %zu + "
         "other %zu", st.memory_bytes, st.memory_vectors, st.memory_links0, st.memory_upper,
         st.memory_labels, st.memory_scratch, st.memory_other);

    /* A search with a larger pool grows its context: all of the growth is
     * scratch space. */
    p.ef = 2000;
    REQUIRE_OK(sw_search(ix, data, IN_DIM, 500, &p, found, NULL, &n_found));
    CHECK_EQ_UINT(n_found, 500);
    REQUIRE_OK(sw_get_stats(ix, &st2));
    CHECK_STATS_BOUNDS(&st2, 16, 32, 1, "after a wide search");
    CHECK(st2.memory_scratch > st.memory_scratch);
    CHECK_EQ_UINT(st2.memory_scratch - st.memory_scratch, st2.memory_bytes - st.memory_bytes);
    CHECK_EQ_UINT(st2.memory_other, st.memory_other);

    /* Metadata is among the rest, byte for byte. */
    memset(meta, 7, sizeof meta);
    st = st2;
    REQUIRE_OK(sw_set_metadata(ix, meta, sizeof meta));
    REQUIRE_OK(sw_get_stats(ix, &st2));
    CHECK_EQ_UINT(st2.memory_other, st.memory_other + sizeof meta);
    CHECK_EQ_UINT(st2.memory_bytes, st.memory_bytes + sizeof meta);
    CHECK_EQ_UINT(st2.memory_labels, st.memory_labels);

    /* A truly deleted node keeps its slot, and its upper lists until the
     * slot is reused: the memory stays where it was. */
    REQUIRE_OK(sw_delete(ix, labels[17]));
    st = st2;
    REQUIRE_OK(sw_get_stats(ix, &st2));
    CHECK_STATS_BOUNDS(&st2, 16, 32, 1, "after sw_delete");
    CHECK_EQ_UINT(st2.free_slots, 1);
    CHECK_EQ_UINT(st2.memory_vectors, st.memory_vectors);
    CHECK_EQ_UINT(st2.memory_upper, st.memory_upper);
    CHECK_VERIFY_OK(ix, "reciprocity and memory");

    /* Served from a mapped file: the same graph report, the records in the
     * mapping (the whole file) rather than in memory_bytes. */
    {
        char dir[256], path[300];
        size_t len = 0;
        unsigned char *bytes;
        sw_index *mx = NULL;
        sw_stats ms;

        REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
        snprintf(path, sizeof path, "%s/m.swi", dir);
        REQUIRE_OK(sw_compact(ix, 1)); /* no free slot: the file numbers the same nodes */
        REQUIRE_OK(sw_get_stats(ix, &st2));
        REQUIRE_OK(sw_save(ix, path));
        bytes = tu_read_file(path, &len);
        free(bytes);
        REQUIRE_OK(sw_open_mmap(path, NULL, &mx));
        REQUIRE_OK(sw_get_stats(mx, &ms));
        CHECK_STATS_BOUNDS(&ms, 16, 32, 1, "mapped");
        CHECK(memcmp(ms.layer, st2.layer, sizeof ms.layer) == 0);
        if (!TU_MAPS_IN_PLACE) {
            /* a big-endian machine reads the records in */
            CHECK_EQ_UINT(ms.memory_mapped, 0);
            CHECK_EQ_UINT(ms.memory_vectors, st2.memory_vectors);
        } else {
            CHECK_EQ_UINT(ms.memory_vectors + ms.memory_links0, 0);
            CHECK_EQ_UINT(ms.memory_mapped, len);
            CHECK(len > 0 && ms.memory_bytes < st2.memory_bytes);
        }
        CHECK_EQ_UINT(ms.memory_upper, st2.memory_upper);
        sw_free(mx);
        tu_rmtree(dir);
    }
    sw_free(ix);
    free(found);
    free(labels);
    free(data);
}

/* ===================================================================== */
/* sw_verify                                                             */
/* ===================================================================== */

TEST(inspect_verify_ok_through_lifecycle)
{
    sw_options o = in_opts();
    float *data = tu_clustered(IN_N, IN_DIM, 8, 9051, 9052);
    uint64_t *labels = in_labels(IN_N, 9053);
    char dir[256], path[300];
    sw_index *ix = NULL, *b = NULL;
    sw_stats sa, sb;

    REQUIRE(data != NULL && labels != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/v.swi", dir);

    CHECK_FAILS_WITH(sw_verify(NULL), SW_ENULL);

    REQUIRE_OK(sw_create(&o, &ix));
    CHECK_VERIFY_OK(ix, "empty");
    sw_free(ix);

    ix = tu_build_labels(&o, data, labels, IN_N);
    REQUIRE(ix != NULL);
    CHECK_VERIFY_OK(ix, "fresh");
    for (size_t i = 0; i < 50; i++)
        REQUIRE_OK(sw_add(ix, labels[i * 3], data + (i * 3 + 1) * IN_DIM, IN_DIM));
    CHECK_VERIFY_OK(ix, "after updates");
    for (size_t i = 0; i < 200; i++)
        REQUIRE_OK(sw_mark_deleted(ix, labels[i * 7 + 1]));
    CHECK_VERIFY_OK(ix, "tombstoned");
    for (size_t i = 0; i < 50; i++)
        REQUIRE_OK(sw_delete(ix, labels[i * 11 + 2]));
    CHECK_VERIFY_OK(ix, "after sw_delete");

    /* Save with tombstones and free slots; the loaded copy verifies and has
     * the same graph statistics (free slots are not in a file). */
    REQUIRE_OK(sw_save(ix, path));
    REQUIRE_OK(sw_load(path, NULL, &b));
    CHECK_VERIFY_OK(b, "loaded with tombstones");
    REQUIRE_OK(sw_get_stats(ix, &sa));
    REQUIRE_OK(sw_get_stats(b, &sb));
    CHECK_EQ_UINT(sb.free_slots, 0);
    CHECK_EQ_UINT(sb.count, sa.count);
    CHECK_EQ_UINT(sb.deleted, sa.deleted);
    CHECK_EQ_UINT(sb.layers, sa.layers);
    CHECK_EQ_UINT(sb.entry_label, sa.entry_label);
    CHECK(memcmp(sa.layer, sb.layer, sizeof sa.layer) == 0);
    CHECK_EQ_UINT(sb.memory_bytes, sw_memory_usage(b));
    sw_free(b);
    b = NULL;

    CHECK_OK(sw_compact(ix, 2));
    CHECK_VERIFY_OK(ix, "after sw_compact");
    REQUIRE_OK(sw_save(ix, path));
    REQUIRE_OK(sw_load(path, NULL, &b));
    CHECK_VERIFY_OK(b, "loaded after compaction");
    CHECK_EQ_UINT(sw_count(b), sw_count(ix));
    /* The loaded index keeps working and keeps verifying. */
    for (size_t i = 0; i < 20; i++)
        CHECK_OK(sw_add(b, labels[i * 7 + 1], data + i * IN_DIM, IN_DIM));
    CHECK_VERIFY_OK(b, "loaded, then added to");
    sw_free(b);
    b = NULL;

    /* Delete everything, the entry point included. */
    {
        size_t total = 0, nl = 0;
        uint64_t *all = list_all(ix, 0, &nl);
        REQUIRE(all != NULL);
        for (size_t i = 0; i < nl; i++)
            CHECK_OK(sw_delete(ix, all[i]));
        free(all);
        CHECK_VERIFY_OK(ix, "emptied");
        CHECK_OK(sw_list_labels(ix, 0, NULL, 0, &total));
        CHECK_EQ_UINT(total, 0);
        REQUIRE_OK(sw_save(ix, path));
        REQUIRE_OK(sw_load(path, NULL, &b));
        CHECK_VERIFY_OK(b, "loaded empty");
        CHECK_EQ_UINT(sw_count(b), 0);
        sw_free(b);
    }

    sw_free(ix);
    tu_rmtree(dir);
    free(labels);
    free(data);
}

/*
 * A file the loader accepts but whose graph is broken: every link to one
 * level-0 node is cut (the degrees shrink to match, the freed slots are
 * zeroed, the checksums are recomputed).  A level-0 node is linked to only
 * from layer-0 records, so the edit stays inside the NODES section.  Each
 * link is still in range and each list still valid, so sw_load has no
 * reason to refuse it; but no search can reach that node, and sw_verify
 * must say so, of the loaded and of the mapped index alike.
 */
TEST(inspect_verify_finds_unreachable_node)
{
    sw_options o = in_opts();
    const size_t n = 400;
    float *data = tu_clustered(n, IN_DIM, 4, 9061, 9062);
    uint64_t *labels = in_labels(n, 9063);
    char dir[256], path[300], why[200];
    sw_index *ix = NULL, *b = NULL;
    unsigned char *f = NULL;
    size_t len = 0, cut = 0;
    uint32_t victim = UINT32_MAX;
    tu_v4 *v = malloc(sizeof *v);
    const tu_v4_section *levels, *nodes;

    REQUIRE(data != NULL && labels != NULL && v != NULL);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/cut.swi", dir);
    ix = tu_build_labels(&o, data, labels, n);
    REQUIRE(ix != NULL);
    REQUIRE_OK(sw_save(ix, path));
    f = tu_read_file(path, &len);
    REQUIRE(f != NULL);
    if (tu_v4_parse(f, len, v, why, sizeof why) != 0)
        sw_test_fail_at(__FILE__, __LINE__, "saved file does not parse: %s", why);
    REQUIRE(!sw_test_failed());
    levels = tu_v4_find(v, TU_SEC_LEVELS, 0);
    nodes = tu_v4_find(v, TU_SEC_NODES, 0);
    REQUIRE(levels != NULL && nodes != NULL && v->count == n);
    REQUIRE(nodes->len == v->count * v->rec_bytes);

    /* The victim: the first level-0 node that is not the entry point. */
    for (uint32_t i = 0; i < v->count && victim == UINT32_MAX; i++)
        if (f[levels->off + i] == 0 && i != v->entry)
            victim = i;
    REQUIRE(victim != UINT32_MAX);

    /* Rewrite each layer-0 list without the victim. */
    for (uint32_t i = 0; i < v->count; i++) {
        unsigned char *lp = f + nodes->off + (size_t)i * v->rec_bytes + v->links_off;
        uint32_t d = tu_get_u32(lp), kept = 0;

        REQUIRE(d <= v->M0);
        for (uint32_t j = 1; j <= d; j++) {
            uint32_t t = tu_get_u32(lp + 4 * (size_t)j);
            if (t == victim) {
                cut++;
                continue;
            }
            tu_put_u32(lp + 4 * (size_t)++kept, t);
        }
        for (uint32_t j = kept + 1; j <= d; j++)
            tu_put_u32(lp + 4 * (size_t)j, 0);
        tu_put_u32(lp, kept);
    }
    REQUIRE(cut > 0);
    tu_v4_reseal(f, len);
    REQUIRE(tu_write_file(path, f, len) == 0);

    REQUIRE_OK(sw_load(path, NULL, &b));
    CHECK_EQ_UINT(sw_count(b), n);
    CHECK_FAILS_WITH(sw_verify(b), SW_ECORRUPT);
    NOTE("cut %zu links to node %u; sw_verify: %s", cut, victim, sw_last_error());
    CHECK(strstr(sw_last_error(), "unreachable") != NULL);
    sw_free(b);
    b = NULL;
    REQUIRE_OK(sw_open_mmap(path, NULL, &b));
    CHECK_FAILS_WITH(sw_verify(b), SW_ECORRUPT);
    CHECK(strstr(sw_last_error(), "unreachable") != NULL);
    /* The original still verifies: the failure is of the edit. */
    CHECK_VERIFY_OK(ix, "original");

    sw_free(b);
    sw_free(ix);
    tu_rmtree(dir);
    free(v);
    free(f);
    free(labels);
    free(data);
}

/* ===================================================================== */
/* Metadata                                                              */
/* ===================================================================== */

static void fill_pattern(unsigned char *p, size_t n, uint64_t seed)
{
    tu_rng r;

    tu_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)tu_rng_next(&r);
}

/* The metadata of ix must be exactly want[0..wlen). */
static void check_meta_at(const sw_index *ix, const unsigned char *want, size_t wlen,
                          const char *what, const char *file, int line)
{
    unsigned char *buf = malloc(wlen + 16);
    size_t len = 12345;
    sw_status st;

    if (buf == NULL) {
        sw_test_fail_at(file, line, "out of memory");
        return;
    }
    memset(buf, 0xee, wlen + 16);
    st = sw_get_metadata(ix, buf, wlen + 16, &len);
    if (st != SW_OK)
        sw_test_fail_at(file, line, "%s: sw_get_metadata: %s (%s)", what,
                        sw_test_status_name(st), sw_last_error());
    else if (len != wlen)
        sw_test_fail_at(file, line, "%s: metadata length %zu, want %zu", what, len, wlen);
    else if (wlen && memcmp(buf, want, wlen) != 0)
        sw_test_fail_at(file, line, "%s: metadata bytes differ", what);
    else
        for (size_t i = wlen; i < wlen + 16; i++)
            if (buf[i] != 0xee) {
                sw_test_fail_at(file, line, "%s: byte %zu past the metadata written", what, i);
                break;
            }
    free(buf);
}
#define CHECK_META(ix, want, wlen, what) check_meta_at((ix), (want), (wlen), (what), __FILE__, __LINE__)

TEST(inspect_metadata_set_get)
{
    sw_options o = in_opts();
    sw_index *ix = NULL;
    unsigned char a[300], b[300], buf[64];
    size_t len;
    size_t mem0;
    tu_alloc ta;

    fill_pattern(a, sizeof a, 1);
    fill_pattern(b, sizeof b, 2);
    tu_alloc_init(&ta);
    o.allocator = &ta.api;
    REQUIRE_OK(sw_create(&o, &ix));
    mem0 = sw_memory_usage(ix);

    /* None at first. */
    len = 99;
    CHECK_OK(sw_get_metadata(ix, NULL, 0, &len));
    CHECK_EQ_UINT(len, 0);
    CHECK_META(ix, a, 0, "fresh");

    /* Set and get back. */
    CHECK_OK(sw_set_metadata(ix, a, 200));
    CHECK_META(ix, a, 200, "200 bytes");
    /* Copied: the caller's buffer may change afterwards. */
    {
        unsigned char tmp[200];
        memcpy(tmp, b, sizeof tmp);
        CHECK_OK(sw_set_metadata(ix, tmp, sizeof tmp));
        memset(tmp, 0, sizeof tmp);
        CHECK_META(ix, b, 200, "after the caller's buffer changed");
    }
    CHECK_OK(sw_set_metadata(ix, a, 200));

    /* A smaller cap copies a prefix and reports the whole length. */
    memset(buf, 0xee, sizeof buf);
    len = 0;
    CHECK_OK(sw_get_metadata(ix, buf, 10, &len));
    CHECK_EQ_UINT(len, 200);
    CHECK(memcmp(buf, a, 10) == 0);
    CHECK_EQ_UINT(buf[10], 0xee);
    CHECK_EQ_UINT(buf[63], 0xee);
    len = 0;
    CHECK_OK(sw_get_metadata(ix, NULL, 0, &len));
    CHECK_EQ_UINT(len, 200);
    buf[0] = 0xee;
    len = 0;
    CHECK_OK(sw_get_metadata(ix, buf, 0, &len));
    CHECK_EQ_UINT(len, 200);
    CHECK_EQ_UINT(buf[0], 0xee);

    /* Replace with a shorter blob, then a longer one. */
    CHECK_OK(sw_set_metadata(ix, b, 7));
    CHECK_META(ix, b, 7, "7 bytes");
    CHECK_OK(sw_set_metadata(ix, b, 300));
    CHECK_META(ix, b, 300, "300 bytes");

    /* Errors keep the old bytes. */
    CHECK_FAILS_WITH(sw_set_metadata(ix, NULL, 5), SW_ENULL);
    CHECK_META(ix, b, 300, "after SW_ENULL");
    {
        unsigned char *big = calloc(SW_MAX_METADATA + 1, 1);
        REQUIRE(big != NULL);
        CHECK_FAILS_WITH(sw_set_metadata(ix, big, (size_t)SW_MAX_METADATA + 1), SW_EINVAL);
        CHECK_FAILS_WITH(sw_set_metadata(ix, big, SIZE_MAX), SW_EINVAL);
        free(big);
    }
    CHECK_META(ix, b, 300, "after SW_EINVAL");
    tu_alloc_fail_after(&ta, 0, 1);
    CHECK_FAILS_WITH(sw_set_metadata(ix, a, 100), SW_ENOMEM);
    tu_alloc_disarm(&ta);
    CHECK_META(ix, b, 300, "after SW_ENOMEM");
    CHECK_FAILS_WITH(sw_set_metadata(NULL, a, 10), SW_ENULL);
    CHECK_FAILS_WITH(sw_set_metadata(NULL, NULL, 0), SW_ENULL);
    CHECK_FAILS_WITH(sw_get_metadata(NULL, buf, sizeof buf, &len), SW_ENULL);
    CHECK_FAILS_WITH(sw_get_metadata(ix, buf, sizeof buf, NULL), SW_ENULL);
    CHECK_FAILS_WITH(sw_get_metadata(ix, NULL, 1, &len), SW_ENULL);
    CHECK_META(ix, b, 300, "after failed gets");

    /* len 0 clears, with or without a pointer; memory returns to where it
     * was (the blob is the index's memory, asked of its allocator). */
    CHECK(sw_memory_usage(ix) >= mem0 + 300);
    CHECK_OK(sw_set_metadata(ix, a, 0));
    CHECK_META(ix, a, 0, "cleared with a pointer");
    CHECK_EQ_UINT(sw_memory_usage(ix), mem0);
    CHECK_OK(sw_set_metadata(ix, a, 50));
    CHECK_OK(sw_set_metadata(ix, NULL, 0));
    CHECK_META(ix, a, 0, "cleared with NULL");
    CHECK_EQ_UINT(sw_memory_usage(ix), mem0);

    /* The largest blob. */
    {
        unsigned char *big = malloc(SW_MAX_METADATA);
        REQUIRE(big != NULL);
        fill_pattern(big, SW_MAX_METADATA, 3);
        CHECK_OK(sw_set_metadata(ix, big, SW_MAX_METADATA));
        CHECK_META(ix, big, SW_MAX_METADATA, "SW_MAX_METADATA bytes");
        free(big);
    }

    sw_free(ix);
    CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), 0);
    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
}

/* The metadata section of a saved format 4 file: 1 with its offset and
 * length when there is one, 0 when there is none, -1 (a test failure)
 * when the file does not parse.  The section must be optional (flags 0),
 * so that a reader that does not know it may skip it. */
static int meta_in_file_at(const unsigned char *f, size_t len, size_t *off, size_t *mlen,
                           size_t *entry_at, const char *file, int line)
{
    tu_v4 *v = malloc(sizeof *v);
    const tu_v4_section *s;
    char why[200];
    int rc = -1;

    *off = *mlen = 0;
    if (v == NULL || tu_v4_parse(f, len, v, why, sizeof why) != 0) {
        sw_test_fail_at(file, line, "saved file does not parse: %s",
                        v == NULL ? "out of memory" : why);
        free(v);
        return -1;
    }
    s = tu_v4_find(v, TU_SEC_META, 0);
    rc = s != NULL;
    if (s != NULL) {
        *off = (size_t)s->off;
        *mlen = (size_t)s->len;
        if (entry_at != NULL)
            *entry_at = s->entry_at;
        if (s->flags != 0)
            sw_test_fail_at(file, line, "the metadata section has flags 0x%x, want 0", s->flags);
    }
    free(v);
    return rc;
}
#define META_IN_FILE(f, len, off, mlen, entry_at) \
    meta_in_file_at((f), (len), (off), (mlen), (entry_at), __FILE__, __LINE__)

TEST(inspect_metadata_save_load)
{
    sw_options o = in_opts();
    const size_t n = 500;
    float *data = tu_clustered(n, IN_DIM, 4, 9071, 9072);
    uint64_t *labels = in_labels(n, 9073);
    unsigned char *meta = malloc(SW_MAX_METADATA), *f = NULL;
    char dir[256], path[300];
    sw_index *ix = NULL, *b = NULL;
    size_t flen = 0, len = 0, moff = 0, mlen = 0;
    tu_alloc ta;

    REQUIRE(data != NULL && labels != NULL && meta != NULL);
    fill_pattern(meta, SW_MAX_METADATA, 4);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/m.swi", dir);
    tu_alloc_init(&ta);

    ix = tu_build_labels(&o, data, labels, n);
    REQUIRE(ix != NULL);

    /* Without metadata: no metadata section, and a load finds none. */
    REQUIRE_OK(sw_save(ix, path));
    f = tu_read_file(path, &flen);
    REQUIRE(f != NULL);
    CHECK_EQ_INT(META_IN_FILE(f, flen, &moff, &mlen, NULL), 0);
    free(f);
    REQUIRE_OK(sw_load(path, NULL, &b));
    len = 99;
    CHECK_OK(sw_get_metadata(b, NULL, 0, &len));
    CHECK_EQ_UINT(len, 0);
    sw_free(b);
    b = NULL;

    /* 1,000 bytes: in the file where the layout says, and back on load. */
    REQUIRE_OK(sw_set_metadata(ix, meta, 1000));
    REQUIRE_OK(sw_save(ix, path));
    f = tu_read_file(path, &flen);
    REQUIRE(f != NULL);
    CHECK_EQ_INT(META_IN_FILE(f, flen, &moff, &mlen, NULL), 1);
    CHECK_EQ_UINT(mlen, 1000);
    CHECK(mlen == 1000 && moff + mlen <= flen && memcmp(f + moff, meta, 1000) == 0);
    free(f);
    REQUIRE_OK(sw_load(path, &ta.api, &b));
    CHECK_META(b, meta, 1000, "loaded 1000 bytes");
    CHECK_EQ_UINT(sw_count(b), n);
    CHECK_VERIFY_OK(b, "loaded with metadata");
    /* the loaded blob is the loaded index's memory, freed with it */
    CHECK_OK(sw_set_metadata(b, meta + 1, 10));
    CHECK_META(b, meta + 1, 10, "loaded, then replaced");
    sw_free(b);
    b = NULL;
    CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), 0);
    /* a mapped index has it too, and cannot change it */
    REQUIRE_OK(sw_open_mmap(path, &ta.api, &b));
    CHECK_META(b, meta, 1000, "mapped, 1000 bytes");
    CHECK_FAILS_WITH(sw_set_metadata(b, meta, 10), SW_EREADONLY);
    CHECK_META(b, meta, 1000, "mapped, after a refused set");
    sw_free(b);
    b = NULL;
    CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), 0);

    /* Saving again: the file holds the new bytes, not the old. */
    REQUIRE_OK(sw_set_metadata(ix, meta + 500, 17));
    REQUIRE_OK(sw_save(ix, path));
    REQUIRE_OK(sw_load(path, NULL, &b));
    CHECK_META(b, meta + 500, 17, "re-saved 17 bytes");
    /* A loaded index saves its metadata too. */
    REQUIRE_OK(sw_save(b, path));
    sw_free(b);
    b = NULL;
    REQUIRE_OK(sw_load(path, NULL, &b));
    CHECK_META(b, meta + 500, 17, "saved by a loaded index");
    sw_free(b);
    b = NULL;

    /* Cleared before saving: none in the file. */
    REQUIRE_OK(sw_set_metadata(ix, NULL, 0));
    REQUIRE_OK(sw_save(ix, path));
    REQUIRE_OK(sw_load(path, NULL, &b));
    CHECK_META(b, meta, 0, "cleared before saving");
    sw_free(b);
    b = NULL;
    f = tu_read_file(path, &flen);
    REQUIRE(f != NULL);
    CHECK_EQ_INT(META_IN_FILE(f, flen, &moff, &mlen, NULL), 0);
    free(f);

    /* The largest blob round-trips. */
    REQUIRE_OK(sw_set_metadata(ix, meta, SW_MAX_METADATA));
    REQUIRE_OK(sw_save(ix, path));
    REQUIRE_OK(sw_load(path, &ta.api, &b));
    CHECK_META(b, meta, SW_MAX_METADATA, "SW_MAX_METADATA bytes loaded");
    CHECK_EQ_UINT(sw_count(b), n);
    CHECK_VERIFY_OK(b, "loaded with SW_MAX_METADATA bytes");
    sw_free(b);
    b = NULL;
    CHECK_EQ_UINT(tu_alloc_live_bytes(&ta), 0);
    sw_free(ix);

    /* An empty index with metadata. */
    REQUIRE_OK(sw_create(&o, &ix));
    REQUIRE_OK(sw_set_metadata(ix, meta, 33));
    REQUIRE_OK(sw_save(ix, path));
    REQUIRE_OK(sw_load(path, NULL, &b));
    CHECK_META(b, meta, 33, "empty index");
    CHECK_EQ_UINT(sw_count(b), 0);
    CHECK_VERIFY_OK(b, "empty index with metadata");
    sw_free(b);
    sw_free(ix);

    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
    tu_rmtree(dir);
    free(meta);
    free(labels);
    free(data);
}

/* Load `bytes` with sw_load and with sw_open_mmap and expect SW_ECORRUPT,
 * no index, no leak, no huge request. */
static void expect_corrupt_at(const char *path, const unsigned char *bytes, size_t len,
                              tu_alloc *ta, const char *what, const char *file, int line)
{
    if (tu_write_file(path, bytes, len) != 0) {
        sw_test_fail_at(file, line, "%s: cannot write %s", what, path);
        return;
    }
    for (int mapped = 0; mapped < 2; mapped++) {
        const char *who = mapped ? "sw_open_mmap" : "sw_load";
        sw_index *b = (sw_index *)(void *)ta; /* must become NULL */
        size_t huge = ta->n_huge;
        sw_status st = mapped ? sw_open_mmap(path, &ta->api, &b) : sw_load(path, &ta->api, &b);

        if (st != SW_ECORRUPT)
            sw_test_fail_at(file, line, "%s: %s gave %s, want SW_ECORRUPT (%s)", what, who,
                            sw_test_status_name(st), sw_last_error());
        if (st == SW_OK && b != NULL)
            sw_free(b);
        else if (b != NULL)
            sw_test_fail_at(file, line, "%s: %s: *out not NULL after a failure", what, who);
        if (tu_alloc_live_bytes(ta) != 0)
            sw_test_fail_at(file, line, "%s: %s leaked %zu bytes", what, who,
                            tu_alloc_live_bytes(ta));
        if (ta->n_huge != huge)
            sw_test_fail_at(file, line, "%s: %s asked for over 1 GiB", what, who);
    }
}
#define EXPECT_CORRUPT(path, bytes, len, ta, what) \
    expect_corrupt_at((path), (bytes), (len), (ta), (what), __FILE__, __LINE__)

/* Load `bytes` (sw_load) and expect metadata want[0..wlen). */
static void expect_meta_at(const char *path, const unsigned char *bytes, size_t len,
                           tu_alloc *ta, const unsigned char *want, size_t wlen, const char *what,
                           const char *file, int line)
{
    sw_index *b = NULL;
    sw_status st;

    if (tu_write_file(path, bytes, len) != 0) {
        sw_test_fail_at(file, line, "%s: cannot write %s", what, path);
        return;
    }
    st = sw_load(path, &ta->api, &b);
    if (st != SW_OK) {
        sw_test_fail_at(file, line, "%s: sw_load: %s (%s)", what, sw_test_status_name(st),
                        sw_last_error());
        return;
    }
    check_meta_at(b, want, wlen, what, file, line);
    sw_free(b);
}
#define EXPECT_META(path, bytes, len, ta, want, wlen, what) \
    expect_meta_at((path), (bytes), (len), (ta), (want), (wlen), (what), __FILE__, __LINE__)

/*
 * Format 4 keeps the metadata length in the section table (a u64), and
 * the section is followed by zeros up to the next 64-byte boundary.  So a
 * length a few bytes longer, resealed, is a valid file whose metadata ends
 * in zeros (the loader cannot tell), while every other wrong length puts
 * metadata bytes in the gap or runs into the next section.
 */
TEST(inspect_metadata_corrupt_length_refused)
{
    sw_options o = in_opts();
    const size_t n = 200;
    const uint32_t mlen = 16;
    float *data = tu_clustered(n, IN_DIM, 4, 9081, 9082);
    uint64_t *labels = in_labels(n, 9083);
    unsigned char meta[16], want[24], *orig = NULL, *c = NULL;
    char dir[256], path[300], bad[300];
    sw_index *ix = NULL, *b = NULL;
    size_t len = 0, moff = 0, mfound = 0, entry = 0;
    tu_alloc ta;
    static const struct {
        uint64_t value;
        const char *what;
        int loads_resealed;
    } lens[] = {
        {UINT64_MAX, "2^64 - 1", 0},
        {0xFFFFFFFFu, "0xffffffff", 0},
        {0x80000000u, "2^31", 0},
        {SW_MAX_METADATA + 1, "SW_MAX_METADATA + 1", 0},
        {SW_MAX_METADATA, "SW_MAX_METADATA (more than the file holds)", 0},
        {16 + 4, "4 more (zeros from the gap)", 1},
        {16 + 1, "1 more (a zero from the gap)", 1},
        {16 - 1, "1 less", 0},
        {16 - 4, "4 less", 0},
        {0, "0", 0},
    };

    REQUIRE(data != NULL && labels != NULL);
    fill_pattern(meta, sizeof meta, 5);
    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/good.swi", dir);
    snprintf(bad, sizeof bad, "%s/bad.swi", dir);
    tu_alloc_init(&ta);
    ix = tu_build_labels(&o, data, labels, n);
    REQUIRE(ix != NULL);
    REQUIRE_OK(sw_set_metadata(ix, meta, mlen));
    REQUIRE_OK(sw_save(ix, path));
    orig = tu_read_file(path, &len);
    REQUIRE(orig != NULL);
    REQUIRE(META_IN_FILE(orig, len, &moff, &mfound, &entry) == 1 && mfound == mlen);
    REQUIRE(moff % 64 == 0 && moff + 64 < len);
    c = malloc(len);
    REQUIRE(c != NULL);

    /* Positive controls: resealing the unchanged file, or one with other
     * metadata bytes, loads; so the refusals below are of the edits. */
    memcpy(c, orig, len);
    tu_v4_reseal(c, len);
    CHECK(memcmp(c, orig, len) == 0);
    c[moff + 3] ^= 0x55;
    tu_v4_reseal(c, len);
    memcpy(want, meta, mlen);
    want[3] ^= 0x55;
    EXPECT_META(bad, c, len, &ta, want, mlen, "resealed with edited metadata bytes");

    /* The checksum covers the metadata: an edited byte, not resealed. */
    memcpy(c, orig, len);
    c[moff + 3] ^= 0x55;
    EXPECT_CORRUPT(bad, c, len, &ta, "metadata byte edited, checksum not recomputed");

    /* The length: as patched (the table's checksum left stale) and
     * resealed (so the loader's own checks must catch it, not a
     * checksum). */
    memset(want, 0, sizeof want);
    memcpy(want, meta, mlen);
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        char what[120];

        memcpy(c, orig, len);
        tu_put_u64(c + entry + 16, lens[k].value);
        snprintf(what, sizeof what, "metadata length %s", lens[k].what);
        EXPECT_CORRUPT(bad, c, len, &ta, what);
        tu_v4_reseal(c, len);
        snprintf(what, sizeof what, "metadata length %s, resealed", lens[k].what);
        if (lens[k].loads_resealed)
            EXPECT_META(bad, c, len, &ta, want, (size_t)lens[k].value, what);
        else
            EXPECT_CORRUPT(bad, c, len, &ta, what);
    }

    /* Truncated inside the metadata, before it, in its table entry. */
    EXPECT_CORRUPT(bad, orig, moff + 5, &ta, "truncated inside the metadata");
    EXPECT_CORRUPT(bad, orig, moff, &ta, "truncated before the metadata");
    EXPECT_CORRUPT(bad, orig, entry + 18, &ta, "truncated in the metadata's length");

    /* A well-formed section one byte over SW_MAX_METADATA (the length, the
     * bytes, the offsets after it and every checksum agree) is refused:
     * the bound is the format's, not only the file's length.  The blob of
     * SW_MAX_METADATA bytes ends on a 64-byte boundary, so the byte needs
     * 64 more bytes of file, and every section after it moves.  Control:
     * the same moved file with the byte zero and the length as it was
     * loads, with all of the blob. */
    {
        unsigned char *big = malloc(SW_MAX_METADATA), *f = NULL, *g = NULL;
        size_t flen = 0, boff = 0, blen = 0, bentry = 0, end;
        tu_v4 *v = malloc(sizeof *v);
        char why[200];

        REQUIRE(big != NULL && v != NULL);
        fill_pattern(big, SW_MAX_METADATA, 6);
        REQUIRE_OK(sw_set_metadata(ix, big, SW_MAX_METADATA));
        REQUIRE_OK(sw_save(ix, path));
        f = tu_read_file(path, &flen);
        REQUIRE(f != NULL);
        REQUIRE(META_IN_FILE(f, flen, &boff, &blen, &bentry) == 1 && blen == SW_MAX_METADATA);
        end = boff + blen;
        REQUIRE(end % 64 == 0);
        REQUIRE(tu_v4_parse(f, flen, v, why, sizeof why) == 0);
        g = calloc(flen + 64, 1);
        REQUIRE(g != NULL);
        for (int over = 1; over >= 0; over--) {
            memset(g, 0, flen + 64);
            memcpy(g, f, end);
            memcpy(g + end + 64, f + end, flen - end);
            for (uint32_t k = 0; k < v->nsec; k++)
                if (v->sec[k].off >= end)
                    tu_put_u64(g + v->sec[k].entry_at + 64 + 8, v->sec[k].off + 64);
            tu_put_u64(g + flen + 64 - 32, v->table_off + 64);
            tu_put_u64(g + flen + 64 - 16, flen + 64);
            if (over) {
                g[end] = 0x42;
                tu_put_u64(g + bentry + 64 + 16, SW_MAX_METADATA + 1);
            }
            tu_v4_reseal(g, flen + 64);
            if (over)
                EXPECT_CORRUPT(bad, g, flen + 64, &ta, "well-formed SW_MAX_METADATA + 1 bytes");
            else
                EXPECT_META(bad, g, flen + 64, &ta, big, SW_MAX_METADATA,
                            "control: moved by 64 bytes at SW_MAX_METADATA");
        }
        free(v);
        free(g);
        free(f);
        free(big);
    }

    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
    sw_free(b);
    sw_free(ix);
    tu_rmtree(dir);
    free(c);
    free(orig);
    free(labels);
    free(data);
}

/* A version 2 file (tests/data/golden_v2.swi, written before metadata
 * existed) still loads, with no metadata, the same labels and tombstones;
 * saved again it is a format 4 file, and metadata can be added. */
TEST(inspect_metadata_version2_file_loads_without)
{
    unsigned char *f = NULL;
    char dir[256], src[512], path[300];
    sw_index *b = NULL;
    size_t len = 0, mlen = 99, moff = 0, ndead = 0;
    uint64_t dead[GOLDEN_N];

    REQUIRE(tu_mkdtemp(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/v2.swi", dir);
    tu_data_path(src, sizeof src, "golden_v2.swi");
    f = tu_read_file(src, &len);
    if (f == NULL)
        sw_test_fail_at(__FILE__, __LINE__, "cannot read %s", src);
    REQUIRE(f != NULL && len > 12);
    CHECK_EQ_UINT(tu_get_u32(f + 8), 2);
    free(f);
    f = NULL;

    REQUIRE_OK(sw_load(src, NULL, &b));
    CHECK_OK(sw_get_metadata(b, NULL, 0, &mlen));
    CHECK_EQ_UINT(mlen, 0);
    for (size_t i = 0; i < GOLDEN_N; i++)
        if (golden_tombstoned(i))
            dead[ndead++] = golden_label(i);
    REQUIRE(ndead > 0);
    CHECK_EQ_UINT(sw_count(b), GOLDEN_N - ndead);
    CHECK_EQ_UINT(sw_deleted_count(b), ndead);
    CHECK_LIST(b, 1, dead, ndead, "version 2 file");
    CHECK_VERIFY_OK(b, "version 2 file");

    /* Saved again, it is a format 4 file, and metadata can be added. */
    CHECK_OK(sw_set_metadata(b, "abc", 3));
    REQUIRE_OK(sw_save(b, path));
    sw_free(b);
    b = NULL;
    f = tu_read_file(path, &len);
    REQUIRE(f != NULL && len > 12);
    CHECK_EQ_UINT(tu_get_u32(f + 8), 4);
    CHECK_EQ_INT(META_IN_FILE(f, len, &moff, &mlen, NULL), 1);
    CHECK(mlen == 3 && memcmp(f + moff, "abc", 3) == 0);
    REQUIRE_OK(sw_load(path, NULL, &b));
    CHECK_META(b, (const unsigned char *)"abc", 3, "version 2 file, saved as 4");
    CHECK_EQ_UINT(sw_deleted_count(b), ndead);
    sw_free(b);

    tu_rmtree(dir);
    free(f);
}

/* Under inner product some nodes may be unreachable by design (insert.c):
 * sw_verify must still pass, and sw_get_stats must count exactly the nodes
 * the full graph check finds unreachable.  Under L2 the count is 0. */
TEST(inspect_unreachable_counted_and_tolerated_under_ip)
{
    const size_t n = 1000, dim = 16;
    float *data = malloc(n * dim * sizeof *data);
    REQUIRE(data != NULL);
    uint64_t state = 4;
    for (size_t i = 0; i < n * dim; i++) /* uniform [0,1): the case that has hubs */
        data[i] = (float)((state = state * 6364136223846793005ull + 1442695040888963407ull) >> 40) /
                  (float)(1u << 24);
    for (int m = 0; m < 2; m++) {
        sw_options o = sw_options_default();
        o.dim = (uint32_t)dim;
        o.metric = m ? SW_METRIC_IP : SW_METRIC_L2;
        o.M = 32;
        sw_index *ix = NULL;
        REQUIRE_OK(sw_create(&o, &ix));
        for (size_t i = 0; i < n; i++) REQUIRE_OK(sw_add(ix, i, data + i * dim, dim));
        sw_stats st;
        REQUIRE_OK(sw_get_stats(ix, &st));
        char why[256] = "";
        unsigned lost = 0, total = 0;
        if (sw__check_graph(ix, why, sizeof why) != 0)
            CHECK(sscanf(why, "%u of %u nodes unreachable", &lost, &total) == 2);
        CHECK_EQ_UINT(st.unreachable, lost);
        CHECK_OK(sw_verify(ix));
        if (!m) CHECK_EQ_UINT(st.unreachable, 0);
        NOTE("%s: %llu of %zu unreachable", m ? "IP" : "L2", (unsigned long long)st.unreachable, n);
        sw_free(ix);
    }
    free(data);
}
