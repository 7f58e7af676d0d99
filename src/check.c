/*
 * check.c — the oracle and the inspector: exact search and graph checks.
 *
 * Exact search scores every stored vector and keeps the k best in a binary
 * max-heap (root = worst kept), O(n log k).  It is the ground truth every
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

/* ==== Exact search ==== */

static inline bool worse(sw__cand a, sw__cand b) {
    return a.dist > b.dist || (a.dist == b.dist && a.id > b.id);
}

static void sift_down(sw__cand *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(h[l], h[m])) m = l;
        if (r < n && worse(h[r], h[m])) m = r;
        if (m == i) return;
        sw__cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

sw_status sw_search_exact(const sw_index *ix, const float *query, size_t dim, size_t k,
                          const sw_search_params *params, uint64_t *labels, float *distances,
                          size_t *n_found) {
    (void)params;
    sw_status st = sw__check_query(ix, query, dim, k, n_found, "sw_search_exact");
    if (st != SW_OK) return st;
    /* the nodes that exist now; adds that land meanwhile are not seen */
    uint32_t count = sw__count(ix);
    size_t kk = k < count ? k : count;
    sw__ctx *c = sw__ctx_acquire(ix, 0, kk ? kk : 1);
    if (!c) return SW_ENOMEM;
    st = sw__prepare_vector(ix, query, c->query);
    if (st != SW_OK || kk == 0) goto done;

    sw__gate_enter(&((sw_index *)ix)->gate);
    sw__cand *h = c->work;
    size_t n = 0;
    for (uint32_t s = 0; s < count; s++) {
        sw__cand e = {ix->dist(c->query, sw__vec(ix, s), ix->dim), s};
        if (n < kk) {
            /* sift up */
            size_t i = n++;
            h[i] = e;
            while (i > 0 && worse(h[i], h[(i - 1) / 2])) {
                sw__cand t = h[i];
                h[i] = h[(i - 1) / 2];
                h[(i - 1) / 2] = t;
                i = (i - 1) / 2;
            }
        } else if (worse(h[0], e)) {
            h[0] = e;
            sift_down(h, n, 0);
        }
    }
    /* Pop the worst to the back: the array ends up sorted ascending. */
    for (size_t m = n; m > 1; m--) {
        sw__cand t = h[0];
        h[0] = h[m - 1];
        h[m - 1] = t;
        sift_down(h, m - 1, 0);
    }
    for (size_t i = 0; i < n; i++) {
        if (labels) labels[i] = *sw__label_ptr(ix, h[i].id);
        if (distances) distances[i] = h[i].dist;
    }
    *n_found = n;
    sw__gate_leave(&((sw_index *)ix)->gate);
done:
    sw__ctx_release(ix, c);
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
    if (!ix) return report(err, errlen, "index is NULL");
    int max_level;
    const uint32_t entry = sw__top(ix, &max_level);
    if (err && errlen) err[0] = 0;
    if (ix->count == 0)
        return entry == SW__NONE ? 0 : report(err, errlen, "empty index has an entry point");
    if (entry >= ix->count) return report(err, errlen, "entry point %u out of range", entry);
    if (sw__level(ix, entry) != max_level)
        return report(err, errlen, "entry point level %d != max level %d",
                      sw__level(ix, entry), max_level);
    for (uint32_t s = 0; s < ix->count; s++) {
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
                if (sw__level(ix, t) < l)
                    return report(err, errlen, "node %u layer %d links to %u of level %d", s, l,
                                  t, sw__level(ix, t));
                for (uint32_t i = 1; i < j; i++)
                    if (links[i] == t)
                        return report(err, errlen, "node %u layer %d links twice to %u", s, l, t);
            }
        }
    }
    {
        /* The stored layer-0 in-degrees must match the links. */
        uint32_t *deg = calloc(ix->count, sizeof *deg);
        if (!deg) return report(err, errlen, "out of memory while checking");
        for (uint32_t s = 0; s < ix->count; s++) {
            const uint32_t *links = sw__links0(ix, s);
            for (uint32_t j = 1; j <= links[0]; j++) deg[links[j]]++;
        }
        uint32_t bad = SW__NONE;
        for (uint32_t s = 0; s < ix->count && bad == SW__NONE; s++)
            if (deg[s] != *sw__indeg_ptr(ix, s)) bad = s;
        uint32_t want = bad == SW__NONE ? 0 : deg[bad];
        free(deg);
        if (bad != SW__NONE)
            return report(err, errlen, "node %u in-degree recorded %u, links say %u", bad,
                          *sw__indeg_ptr(ix, bad), want);
    }
    if (ix->labels.used != ix->count)
        return report(err, errlen, "label map holds %zu labels for %u nodes", ix->labels.used,
                      ix->count);

    /* Reachability over the union of layers, by an explicit-stack DFS. */
    uint8_t *seen = calloc(ix->count, 1);
    uint32_t *stack = malloc((size_t)ix->count * sizeof *stack);
    if (!seen || !stack) {
        free(seen);
        free(stack);
        return report(err, errlen, "out of memory while checking");
    }
    size_t top = 0, reached = 1;
    stack[top++] = entry;
    seen[entry] = 1;
    while (top) {
        uint32_t s = stack[--top];
        for (int l = 0; l <= sw__level(ix, s); l++) {
            const uint32_t *links = sw__links(ix, s, l);
            for (uint32_t j = 1; j <= links[0]; j++)
                if (!seen[links[j]]) {
                    seen[links[j]] = 1;
                    stack[top++] = links[j];
                    reached++;
                }
        }
    }
    uint32_t first = 0;
    while (reached < ix->count && seen[first]) first++;
    free(seen);
    free(stack);
    if (reached < ix->count)
        return report(err, errlen, "%zu of %u nodes unreachable from the entry point (first: %u)",
                      ix->count - reached, ix->count, first);
    return 0;
}
