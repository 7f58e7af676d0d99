/*
 * search.c — the query path: greedy descent and the layer search.
 *
 * Algorithm 5 (K-NN-SEARCH) of Malkov & Yashunin: greedy descent through the
 * upper layers with one candidate (Algorithm 2 with ef = 1), then a
 * best-first search of layer 0 with a candidate list of size ef.
 *
 * Departure from the paper: instead of two binary heaps (candidates C and
 * results W), one array of at most ef candidates kept sorted by distance,
 * with an "expanded" flag per entry and a cursor at the nearest unexpanded
 * entry.  The unexpanded entries are C, the whole array is W; a candidate
 * that falls off the end of a full array is one the paper would never
 * expand either (its distance exceeds the furthest result), so the walk is
 * the same.  The array is contiguous and small (ef <= a few hundred in
 * practice), an insertion is a binary search plus a short memmove, and the
 * results come out already sorted.  Ties keep arrival order (insertion after
 * equal distances), which keeps results deterministic.
 *
 * Expanding a node first collects its unvisited neighbours and prefetches
 * their records, then computes the distances: by the time the first
 * distance is computed the later vectors are on their way from memory.
 * The distances are taken four at a time with the batch kernel, which
 * loads each block of the query once for four vectors; it gives the same
 * bits as the single kernel, so the walk does not depend on the grouping.
 *
 * Threading: searches only read the graph, with acquire loads of every
 * link word (internal.h), and may run while writers change it; a search
 * may see a list old, new or partly each, and every id in it is a node
 * that exists, which is all the walk needs.
 * All mutable state is in the scratch context taken from the index's pool.
 */
#include "internal.h"

#include <string.h>

/* ==== The sorted candidate pool ==== */

/* Insert `e` into pool[0..n) (sorted, capacity cap); returns the position.
 * The caller has checked that e beats the last entry when the pool is full. */
static inline size_t pool_insert(sw__cand *pool, uint8_t *expanded, size_t *n, size_t cap,
                                 sw__cand e) {
    size_t lo = 0, hi = *n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (pool[mid].dist <= e.dist)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t last = *n < cap ? *n : cap - 1; /* entries from lo..last-1 move right */
    if (last > lo) {
        memmove(pool + lo + 1, pool + lo, (last - lo) * sizeof *pool);
        memmove(expanded + lo + 1, expanded + lo, last - lo);
    }
    pool[lo] = e;
    expanded[lo] = 0;
    if (*n < cap) (*n)++;
    return lo;
}

/* ==== Layer search (Algorithm 2) ==== */

size_t sw__search_layer(const sw_index *ix, sw__ctx *c, const float *q, const sw__cand *seeds,
                        size_t nseeds, size_t ef, int layer, uint32_t exclude) {
    sw__ctx_new_epoch(c);
    const uint32_t epoch = c->epoch;
    uint32_t *visited = c->visited;
    const size_t vcap = c->visited_cap;
    sw__cand *pool = c->pool;
    uint8_t *expanded = c->expanded;
    const sw__dist_fn dist = ix->dist;
    const sw__dist4_fn dist4 = ix->dist4;
    const size_t dim = ix->dim;
    size_t n = 0;

    if (exclude != SW__NONE) sw__visit(c, exclude);
    for (size_t i = 0; i < nseeds; i++) {
        if (!sw__visit(c, seeds[i].id)) continue;
        if (n < ef || seeds[i].dist < pool[n - 1].dist)
            pool_insert(pool, expanded, &n, ef, seeds[i]);
    }

    uint32_t fresh[SW_MAX_M0];
    const void *fvec[SW_MAX_M0]; /* their vectors, found once for prefetch and distance */
    size_t cur = 0;
    while (cur < n) {
        expanded[cur] = 1;
        const uint32_t *links = sw__links(ix, pool[cur].id, layer);
        uint32_t deg = SW__LOAD(&links[0]);
        size_t nf = 0;
        for (uint32_t j = 1; j <= deg; j++) {
            uint32_t nb = SW__LOAD(&links[j]);
            /* the common case inline; nodes newer than the visited array
             * (added since this context was sized) go to the side set */
            if (SW__LIKELY(nb < vcap)) {
                if (visited[nb] == epoch) continue;
                visited[nb] = epoch;
            } else if (!sw__visit_extra(c, nb)) {
                continue;
            }
            fvec[nf] = sw__vec(ix, nb);
            SW__PREFETCH(fvec[nf]);
            fresh[nf++] = nb;
        }
        size_t lowest = n;
        for (size_t j = 0; j < nf; j += 4) {
            float d[4];
            size_t m = nf - j < 4 ? nf - j : 4;
            if (m == 4)
                dist4(q, fvec + j, dim, d);
            else
                for (size_t t = 0; t < m; t++) d[t] = dist(q, fvec[j + t], dim);
            for (size_t t = 0; t < m; t++) {
                if (n < ef || d[t] < pool[n - 1].dist) {
                    sw__cand e = {d[t], fresh[j + t]};
                    size_t pos = pool_insert(pool, expanded, &n, ef, e);
                    if (pos < lowest) lowest = pos;
                }
            }
        }
        if (lowest < cur) cur = lowest;
        while (cur < n && expanded[cur]) cur++;
    }
    return n;
}

/* ==== Greedy descent (Algorithm 2, ef = 1) ==== */

void sw__greedy(const sw_index *ix, const float *q, sw__cand *cur, int layer) {
    uint32_t ids[SW_MAX_M0];
    const void *vec[SW_MAX_M0];
    for (;;) {
        const uint32_t *links = sw__links(ix, cur->id, layer);
        uint32_t deg = SW__LOAD(&links[0]);
        bool moved = false;
        for (uint32_t j = 0; j < deg; j++) {
            ids[j] = SW__LOAD(&links[1 + j]);
            vec[j] = sw__vec(ix, ids[j]);
            SW__PREFETCH(vec[j]);
        }
        for (uint32_t j = 0; j < deg; j++) {
            float d = ix->dist(q, vec[j], ix->dim);
            if (d < cur->dist) {
                cur->dist = d;
                cur->id = ids[j];
                moved = true;
            }
        }
        if (!moved) return;
    }
}

/* ==== Public search (Algorithm 5) ==== */

sw_status sw_search(const sw_index *ix, const float *query, size_t dim, size_t k,
                    const sw_search_params *params, uint64_t *labels, float *distances,
                    size_t *n_found) {
    sw_status st = sw__check_query(ix, query, dim, k, n_found, "sw_search");
    if (st != SW_OK) return st;
    size_t ef = params && params->ef ? params->ef : sw_get_ef(ix);
    if (ef > SW_MAX_EF) return sw__fail(SW_EEF, "sw_search: ef is %zu, at most %u", ef, SW_MAX_EF);
    if (ef < k) ef = k;
    uint32_t count = sw__count(ix);
    if (ef > count) ef = count ? count : 1;

    sw__ctx *c = sw__ctx_acquire(ix, ef, 0);
    if (!c) return SW_ENOMEM;
    st = sw__prepare_vector(ix, query, c->query);
    if (st != SW_OK) goto done;

    sw_index *mix = (sw_index *)ix;
    sw__gate_enter(&mix->gate);
    int top;
    uint32_t entry = sw__top(ix, &top);
    if (entry != SW__NONE) {
        const float *q = c->query;
        sw__cand cur = {ix->dist(q, sw__vec(ix, entry), ix->dim), entry};
        for (int l = top; l > 0; l--) sw__greedy(ix, q, &cur, l);
        size_t n = sw__search_layer(ix, c, q, &cur, 1, ef, 0, SW__NONE);
        if (n > k) n = k;
        for (size_t i = 0; i < n; i++) {
            if (labels) labels[i] = *sw__label_ptr(ix, c->pool[i].id);
            if (distances) distances[i] = c->pool[i].dist;
        }
        *n_found = n;
    }
    sw__gate_leave(&mix->gate);
done:
    sw__ctx_release(ix, c);
    return st;
}
