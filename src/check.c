/*
 * check.c — the oracle and the inspector: exact search and graph checks.
 *
 * Exact search scores every live stored vector (or, with an allow-list,
 * the allowed ones) and keeps the k best in a binary max-heap (root =
 * worst kept), O(n log k); the scan itself is sw__scan in search.c, shared
 * with the filtered search that falls back to it.  It is the ground truth every
 * recall test measures against, so it is kept deliberately simple; ties are
 * broken by slot order so that it is deterministic.
 *
 * The graph check walks every node and link and reports the first problem
 * it finds: a link out of range, to itself, duplicated, to a node that does
 * not exist on that layer, a degree over its bound, an entry point that is
 * not on the top layer, or a node that cannot be reached from the entry
 * point.  Reachability is checked on the union of all layers, since that is
 * how a search can get anywhere: a node with no in-links on layer 0 is
 * still found if some upper layer leads to it.
 *
 * The statistics pass is the same walk, made to go on: it counts every
 * problem instead of stopping at the first, so it must never trust a link.
 * A link is classed once, as a self-link, a dangling link (out of range,
 * to a freed slot, or to a node not on that layer), a duplicate, or sound;
 * only sound links are followed, for reciprocity and for reachability, and
 * a count above the layer's bound is read as the bound (and counted), so a
 * damaged list is never read past its block.  Reciprocity scans the
 * target's list for the source, O(edges x M0), but only from the lower
 * end of a pair, which then counts both links.  The time goes on cache
 * misses, not on the scans: on 100,000 random vectors of dimension 32
 * (M 16, 2.4 million layer-0 links; the 2-core test machine) scanning from
 * both ends took 0.44 s, from the lower end 0.24 s, and with the targets'
 * states, levels and lists prefetched a list ahead 0.10 s, against 0.07 s
 * for sw_verify.  Sorting the lists or hashing the edge set would miss as
 * often and need memory.
 *
 * Memory by component is computed from the record geometry (capacity x
 * record parts, the side arrays, the upper lists of each level), not from
 * separate allocation counters, so it costs nothing on the hot paths; what
 * the geometry does not cover is the remainder, memory_other.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== Exact search ==== */

sw_status sw_search_exact(const sw_index *ix, const float *query, size_t dim, size_t k,
                          const sw_search_params *params, uint64_t *labels, float *distances,
                          size_t *n_found) {
    sw_status st = sw__check_query(ix, query, dim, k, n_found, "sw_search_exact");
    if (st != SW_OK) return st;
    size_t count = sw__count(ix);
    size_t kk = k < count ? k : count;
    sw__filter f;
    if ((st = sw__filter_build(ix, params, &f, "sw_search_exact")) != SW_OK) return st;
    sw__ctx *c = sw__ctx_acquire(ix, 0, kk ? kk : 1);
    if (!c) {
        sw__filter_free(ix, &f);
        return SW_ENOMEM;
    }
    st = sw__ctx_query(ix, c, query);
    if (st == SW_OK && kk) {
        sw__gate_enter(&((sw_index *)ix)->gate);
        size_t n = sw__scan(ix, c, kk, &f, c->work, NULL);
        sw__emit(ix, c->work, n, labels, distances);
        *n_found = n;
        sw__gate_leave(&((sw_index *)ix)->gate);
    }
    sw__ctx_release(ix, c);
    sw__filter_free(ix, &f);
    return st;
}

/* ==== In-degrees ==== */

void sw__recount_indegrees(sw_index *ix) {
    for (uint32_t s = 0; s < ix->count; s++) *sw__indeg_ptr(ix, s) = 0;
    for (uint32_t s = 0; s < ix->count; s++) {
        const uint32_t *links = sw__links0(ix, s);
        for (uint32_t j = 1; j <= links[0]; j++) (*sw__indeg_ptr(ix, links[j]))++;
    }
}

/* ==== Graph check ==== */

static int report(char *err, size_t len, const char *fmt, ...) SW__PRINTF(3, 4);
static int report(char *err, size_t len, const char *fmt, ...) {
    if (err && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
    }
    return 1;
}

int sw__check_graph(const sw_index *ix, char *err, size_t errlen) {
    return sw__check_graph_ex(ix, err, errlen, 1);
}

int sw__check_graph_ex(const sw_index *ix, char *err, size_t errlen, int reach) {
    if (!ix) return report(err, errlen, "index is NULL");
    int max_level;
    const uint32_t entry = sw__top(ix, &max_level);
    if (err && errlen) err[0] = 0;
    /* FREE slots are out of the graph: nothing may link to them, and they
     * count for nothing below. */
    uint32_t nodes = 0, nfree = 0;
    for (uint32_t s = 0; s < ix->count; s++) {
        unsigned f = sw__flags(ix, s);
        if (f & ~(unsigned)(SW__F_DELETED | SW__F_FREE) || f == (SW__F_DELETED | SW__F_FREE))
            return report(err, errlen, "node %u has state %u", s, f);
        if (f & SW__F_FREE) nfree++;
        else nodes++;
    }
    if (nfree != ix->nfree)
        return report(err, errlen, "%u free slots, %u counted", nfree, ix->nfree);
    if (nodes == 0)
        return entry == SW__NONE && max_level == -1
                   ? 0
                   : report(err, errlen, "empty index has entry point %u, level %d", entry, max_level);
    if (entry >= ix->count) return report(err, errlen, "entry point %u out of range", entry);
    if (sw__flags(ix, entry) & SW__F_FREE)
        return report(err, errlen, "entry point %u is a free slot", entry);
    if (sw__level(ix, entry) != max_level)
        return report(err, errlen, "entry point level %d != max level %d",
                      sw__level(ix, entry), max_level);
    size_t dead = 0;
    for (uint32_t s = 0; s < ix->count; s++) {
        unsigned f = sw__flags(ix, s);
        if (f & SW__F_FREE) continue;
        dead += (f & SW__F_DELETED) != 0;
        int lv = sw__level(ix, s);
        if (lv > max_level) return report(err, errlen, "node %u level %d > max", s, lv);
        if (sw__labels_find(&ix->labels, *sw__label_ptr(ix, s)) != s)
            return report(err, errlen, "node %u label not mapped back to it", s);
        for (int l = 0; l <= lv; l++) {
            const uint32_t *links = sw__links(ix, s, l);
            uint32_t deg = links[0]; /* once: a mapped record could change under us */
            if (deg > sw__max_degree(ix, l))
                return report(err, errlen, "node %u layer %d degree %u > %u", s, l, deg,
                              sw__max_degree(ix, l));
            for (uint32_t j = 1; j <= deg; j++) {
                uint32_t t = links[j];
                if (t >= ix->count)
                    return report(err, errlen, "node %u layer %d link %u out of range", s, l, t);
                if (t == s) return report(err, errlen, "node %u layer %d links to itself", s, l);
                if (sw__flags(ix, t) & SW__F_FREE)
                    return report(err, errlen, "node %u layer %d links to free slot %u", s, l, t);
                if (sw__level(ix, t) < l)
                    return report(err, errlen, "node %u layer %d links to %u of level %d", s, l,
                                  t, sw__level(ix, t));
                for (uint32_t i = 1; i < j; i++)
                    if (links[i] == t)
                        return report(err, errlen, "node %u layer %d links twice to %u", s, l, t);
            }
        }
    }
    if (dead != ix->ndeleted)
        return report(err, errlen, "%zu tombstones, %zu counted", dead, ix->ndeleted);
    if (!ix->map) {
        /* The stored layer-0 in-degrees must match the links (a mapped
         * index, never written to, keeps none). */
        uint32_t *deg = calloc(ix->count, sizeof *deg);
        if (!deg) return -report(err, errlen, "out of memory while checking");
        for (uint32_t s = 0; s < ix->count; s++) {
            if (sw__flags(ix, s) & SW__F_FREE) continue;
            const uint32_t *links = sw__links0(ix, s);
            for (uint32_t j = 1; j <= links[0]; j++) deg[links[j]]++;
        }
        uint32_t bad = SW__NONE;
        for (uint32_t s = 0; s < ix->count && bad == SW__NONE; s++)
            if (!(sw__flags(ix, s) & SW__F_FREE) && deg[s] != *sw__indeg_ptr(ix, s)) bad = s;
        uint32_t want = bad == SW__NONE ? 0 : deg[bad];
        free(deg);
        if (bad != SW__NONE)
            return report(err, errlen, "node %u in-degree recorded %u, links say %u", bad,
                          *sw__indeg_ptr(ix, bad), want);
    }
    if (ix->labels.used != nodes)
        return report(err, errlen, "label map holds %zu labels for %u nodes", ix->labels.used,
                      nodes);

    if (!reach) return 0;
    uint32_t first = 0;
    size_t lost = sw__unreachable(ix, &first);
    if (lost == SIZE_MAX) return -report(err, errlen, "out of memory while checking");
    if (lost)
        return report(err, errlen, "%zu of %u nodes unreachable from the entry point (first: %u)",
                      lost, nodes, first);
    return 0;
}

/* Can a link on `layer` lead to t?  Not if it is out of range, a freed
 * slot, or a node below that layer. */
static inline bool link_ok(const sw_index *ix, uint32_t count, uint32_t t, int layer) {
    return t < count && !(sw__flags(ix, t) & SW__F_FREE) && sw__level(ix, t) >= layer;
}

/* The ids of s's list on `layer` (s and layer known valid), *deg set to
 * its count clamped to the layer's bound; *over (may be NULL) counts a
 * clamped list.  NULL for a node without upper lists. */
static const uint32_t *list_of(const sw_index *ix, uint32_t s, int layer, uint32_t *deg,
                               uint64_t *over) {
    if (layer > 0 && !*sw__upper_ptr(ix, s)) {
        *deg = 0;
        return NULL;
    }
    const uint32_t *links = sw__links(ix, s, layer);
    uint32_t d = links[0], bound = sw__max_degree(ix, layer);
    if (d > bound) {
        d = bound;
        if (over) (*over)++;
    }
    *deg = d;
    return links + 1;
}

/* An explicit-stack DFS that follows only links that lead somewhere
 * (link_ok), so it is safe on a damaged graph. */
void sw__reach_from(const sw_index *ix, uint32_t count, uint32_t from, uint8_t *seen,
                    uint32_t *stack) {
    size_t top = 0;
    if (link_ok(ix, count, from, 0) && !seen[from]) { /* else nothing is reached */
        stack[top++] = from;
        seen[from] = 1;
    }
    while (top) {
        uint32_t s = stack[--top];
        for (int l = 0; l <= sw__level(ix, s); l++) {
            /* bounded, also for a damaged mapped record (sw__link_limit) */
            uint32_t d;
            const uint32_t *ids = list_of(ix, s, l, &d, NULL);
            for (uint32_t j = 0; j < d; j++) {
                uint32_t t = ids[j];
                if (link_ok(ix, count, t, l) && !seen[t]) {
                    seen[t] = 1;
                    stack[top++] = t;
                }
            }
        }
    }
}

size_t sw__mark_reachable(const sw_index *ix, uint32_t count, uint8_t *seen, uint32_t *stack,
                          uint32_t *first_out) {
    int max_level;
    const uint32_t entry = sw__top(ix, &max_level);
    memset(seen, 0, count);
    if (entry != SW__NONE) sw__reach_from(ix, count, entry, seen, stack);
    size_t lost = 0;
    uint32_t first = SW__NONE;
    for (uint32_t s = 0; s < count; s++)
        if (!seen[s] && !(sw__flags(ix, s) & SW__F_FREE)) {
            if (first == SW__NONE) first = s;
            lost++;
        }
    if (first_out) *first_out = first;
    return entry == SW__NONE ? 0 : lost;
}

/* Nodes no search can reach.  SIZE_MAX when out of memory. */
size_t sw__unreachable(const sw_index *ix, uint32_t *first_out) {
    const uint32_t count = sw__count(ix);
    if (first_out) *first_out = SW__NONE;
    if (count == 0) return 0;
    uint8_t *seen = malloc(count);
    uint32_t *stack = malloc((size_t)count * sizeof *stack);
    size_t lost = seen && stack ? sw__mark_reachable(ix, count, seen, stack, first_out) : SIZE_MAX;
    free(seen);
    free(stack);
    return lost;
}

/* ==== Statistics ==== */

/* memory_bytes by component.  Caller holds save_lock alone, so no add,
 * delete or update changes the slots, their upper lists or the label map
 * meanwhile; searches may still be running. */
static void memory_breakdown(const sw_index *ix, sw_stats *out) {
    sw_index *mix = (sw_index *)ix;
    const size_t cap = sw__capacity(ix);
    const uint32_t count = sw__count(ix);
    /* A mapped index (sw_open_mmap) reads its records from the file and
     * allocates only the side arrays; the mapping is apart from
     * memory_bytes. */
    if (!ix->map) {
        out->memory_vectors = cap * ix->links_off;
        out->memory_links0 = cap * (ix->rec_bytes - ix->links_off);
    }
    out->memory_mapped = ix->map ? ix->map_len : ix->full_map ? ix->full_map_len : 0;
    out->memory_full = sw__full_bytes(ix); /* counted with the vectors */
    out->memory_vectors += out->memory_full;
    out->saturated = __atomic_load_n(&ix->saturated, __ATOMIC_RELAXED);
    size_t upper = 0;
    /* Freed slots keep their upper lists until the slot is reused. */
    for (uint32_t s = 0; s < count; s++) {
        int lv = sw__level(ix, s);
        if (lv > 0 && *sw__upper_ptr(ix, s))
            upper += (size_t)lv * ix->upper_stride * sizeof(uint32_t);
    }
    out->memory_upper = upper;
    out->memory_labels = (cap >> ix->chunk_shift) * sw__side_bytes(ix) +
                         ix->labels.cap * sizeof *ix->labels.vals;
    /* Only idle contexts: one a running search holds may be growing its
     * buffers (storage.c regrows them without the lock), so its sizes
     * cannot be read without a race; its bytes land in memory_other. */
    size_t scratch = 0;
    pthread_mutex_lock(&mix->ctx_lock);
    for (const sw__ctx *c = mix->ctx_free; c; c = c->next) scratch += sw__ctx_bytes(c);
    pthread_mutex_unlock(&mix->ctx_lock);
    out->memory_scratch = scratch;
    out->memory_bytes = sw_memory_usage(ix);
    size_t parts = out->memory_vectors + out->memory_links0 + out->memory_upper +
                   out->memory_labels + out->memory_scratch;
    out->memory_other = out->memory_bytes > parts ? out->memory_bytes - parts : 0;
}

/* One node's lists into the per-layer counts. */
static void stats_node(const sw_index *ix, uint32_t count, uint32_t s, sw_stats *out) {
    int lv = sw__level(ix, s);
    for (int l = 0; l <= lv && (uint32_t)l < out->layers; l++) {
        sw_layer_stats *ls = &out->layer[l];
        uint32_t d;
        const uint32_t *ids = list_of(ix, s, l, &d, &ls->overfull_lists);
        ls->nodes++;
        ls->edges += d;
        if (d < ls->min_degree) ls->min_degree = d;
        if (d > ls->max_degree) ls->max_degree = d;
        /* Every target's state and level is read below, and the list of
         * each higher one; start the misses together. */
        if (l == 0)
            for (uint32_t j = 0; j < d; j++)
                if (ids[j] < count) {
                    SW__PREFETCH(sw__level_ptr(ix, ids[j]));
                    SW__PREFETCH(sw__flags_ptr(ix, ids[j]));
                    if (ids[j] > s) SW__PREFETCH(sw__links0(ix, ids[j]));
                }
        for (uint32_t j = 0; j < d; j++) {
            uint32_t t = ids[j], td;
            if (t == s) {
                ls->self_links++;
            } else if (!link_ok(ix, count, t, l)) {
                ls->dangling_links++;
            } else if (sw__in_list(ids, j, t)) {
                ls->duplicate_links++;
            } else if (t > s) {
                /* A pair linked both ways is found from its lower end
                 * and counts its two links: half the scans.  s's link
                 * in t's list is sound by then: s is on this layer, not
                 * t, and sw__in_list finds its first copy. */
                const uint32_t *back = list_of(ix, t, l, &td, NULL);
                if (back && sw__in_list(back, td, s)) ls->reciprocal_edges += 2;
            }
        }
    }
}
/* ==== Public inspection ==== */

/* Both hold save_lock alone, as sw_save does: no add is half done while the
 * lists are read, and searches go on. */
sw_status sw_verify(const sw_index *ix) {
    if (!ix) return sw__fail(SW_ENULL, "sw_verify: index is NULL");
    sw_index *mix = (sw_index *)ix;
    char why[256];
    sw_status st = sw__verify_mapped(ix, "sw_verify");
    if (st != SW_OK) return st;
    pthread_rwlock_wrlock(&mix->save_lock);
    /* Where inserts may give up a last in-link (inner product, insert.c),
     * unreachable nodes are by design; sw_get_stats counts them. */
    int bad = sw__check_graph_ex(ix, why, sizeof why, sw__keeps_reachable(ix));
    pthread_rwlock_unlock(&mix->save_lock);
    if (!bad) return SW_OK;
    return sw__fail(bad < 0 ? SW_ENOMEM : SW_ECORRUPT, "sw_verify: %s", why);
}

sw_status sw_get_stats(const sw_index *ix, sw_stats *out) {
    if (!ix || !out) return sw__fail(SW_ENULL, "sw_get_stats: %s is NULL", ix ? "out" : "index");
    sw_index *mix = (sw_index *)ix;
    memset(out, 0, sizeof *out);
    pthread_rwlock_wrlock(&mix->save_lock);
    int max_level;
    const uint32_t entry = sw__top(ix, &max_level), count = sw__count(ix);
    const bool have_entry = entry != SW__NONE && entry < count;
    out->layers = !have_entry || max_level < 0 ? 0
                  : (uint32_t)max_level >= SW_MAX_LAYERS ? SW_MAX_LAYERS
                                                         : (uint32_t)max_level + 1;
    out->entry_label = have_entry ? *sw__label_ptr(ix, entry) : SW_NO_LABEL;
    out->free_slots = ix->nfree;
    for (uint32_t l = 0; l < out->layers; l++) out->layer[l].min_degree = UINT32_MAX;
    for (uint32_t s = 0; s < count; s++) {
        unsigned f = sw__flags(ix, s);
        if (f & SW__F_FREE) continue;
        if (f & SW__F_DELETED) out->deleted++;
        else out->count++;
        stats_node(ix, count, s, out);
    }
    size_t lost = sw__unreachable(ix, NULL);
    memory_breakdown(ix, out);
    pthread_rwlock_unlock(&mix->save_lock);
    if (lost == SIZE_MAX) return sw__fail(SW_ENOMEM, "sw_get_stats: reachability");
    out->unreachable = lost;
    for (uint32_t l = 0; l < out->layers; l++) {
        sw_layer_stats *ls = &out->layer[l];
        if (!ls->nodes) ls->min_degree = 0;
        ls->mean_degree = ls->nodes ? (double)ls->edges / (double)ls->nodes : 0.0;
        ls->reciprocal_share = ls->edges ? (double)ls->reciprocal_edges / (double)ls->edges : 0.0;
        out->self_links += ls->self_links;
        out->duplicate_links += ls->duplicate_links;
        out->dangling_links += ls->dangling_links;
        out->overfull_lists += ls->overfull_lists;
    }
    return SW_OK;
}
