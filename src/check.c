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
    st = sw__prepare_vector(ix, query, c->query);
    if (st == SW_OK && kk) {
        sw__gate_enter(&((sw_index *)ix)->gate);
        size_t n = sw__scan(ix, c->query, kk, &f, c->work);
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
            if (links[0] > sw__max_degree(ix, l))
                return report(err, errlen, "node %u layer %d degree %u > %u", s, l, links[0],
                              sw__max_degree(ix, l));
            for (uint32_t j = 1; j <= links[0]; j++) {
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

/* Nodes no search can reach: not reached from the entry point over the
 * union of the layers, by an explicit-stack DFS.  *first (may be NULL) gets
 * the lowest such slot.  SIZE_MAX when out of memory. */
size_t sw__unreachable(const sw_index *ix, uint32_t *first_out) {
    int max_level;
    const uint32_t entry = sw__top(ix, &max_level);
    if (entry == SW__NONE) return 0;
    uint8_t *seen = calloc(ix->count, 1);
    uint32_t *stack = malloc((size_t)ix->count * sizeof *stack);
    if (!seen || !stack) {
        free(seen);
        free(stack);
        return SIZE_MAX;
    }
    size_t top = 0;
    stack[top++] = entry;
    seen[entry] = 1;
    while (top) {
        uint32_t s = stack[--top];
        for (int l = 0; l <= sw__level(ix, s); l++) {
            const uint32_t *links = sw__links(ix, s, l);
            /* bounded, for a damaged mapped record (see sw__link_limit) */
            uint32_t deg = links[0] < sw__max_degree(ix, l) ? links[0] : sw__max_degree(ix, l);
            for (uint32_t j = 1; j <= deg; j++)
                if (links[j] < ix->count && !seen[links[j]]) {
                    seen[links[j]] = 1;
                    stack[top++] = links[j];
                }
        }
    }
    size_t lost = 0;
    uint32_t first = SW__NONE;
    for (uint32_t s = 0; s < ix->count; s++)
        if (!seen[s] && !(sw__flags(ix, s) & SW__F_FREE)) {
            if (first == SW__NONE) first = s;
            lost++;
        }
    free(seen);
    free(stack);
    if (first_out) *first_out = first;
    return lost;
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
    uint32_t entry = sw__top(ix, &max_level);
    out->layers = entry == SW__NONE ? 0 : (uint32_t)max_level + 1;
    out->entry_label = entry == SW__NONE ? SW_NO_LABEL : *sw__label_ptr(ix, entry);
    out->free_slots = ix->nfree;
    for (uint32_t l = 0; l < out->layers; l++) out->layer[l].min_degree = UINT32_MAX;
    for (uint32_t s = 0; s < ix->count; s++) {
        unsigned f = sw__flags(ix, s);
        if (f & SW__F_FREE) continue;
        if (f & SW__F_DELETED) out->deleted++;
        else out->count++;
        int lv = sw__level(ix, s);
        for (int l = 0; l <= lv && (uint32_t)l < out->layers; l++) {
            sw_layer_stats *ls = &out->layer[l];
            uint32_t d = sw__links(ix, s, l)[0];
            ls->nodes++;
            ls->edges += d;
            if (d < ls->min_degree) ls->min_degree = d;
            if (d > ls->max_degree) ls->max_degree = d;
        }
    }
    size_t lost = sw__unreachable(ix, NULL);
    pthread_rwlock_unlock(&mix->save_lock);
    if (lost == SIZE_MAX) return sw__fail(SW_ENOMEM, "sw_get_stats: reachability");
    out->unreachable = lost;
    for (uint32_t l = 0; l < out->layers; l++)
        if (!out->layer[l].nodes) out->layer[l].min_degree = 0;
    out->memory_bytes = sw_memory_usage(ix);
    return SW_OK;
}
