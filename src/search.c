/*
 * search.c — the query path: greedy descent and the layer search.
 *
 * Algorithm 5 (K-NN-SEARCH) of Malkov & Yashunin: greedy descent through the
 * upper layers with one candidate (Algorithm 2 with ef = 1), then a
 * best-first search of layer 0 with a candidate list of size ef.
 * Departure: on indexes of 50,000 nodes and more the descent keeps the 2
 * or 4 nearest on each upper layer, not 1 (see "The descent" below: on
 * clustered data at a million nodes, recall 0.99 at ef 64 instead of ~400).
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
 * The hot loop (issue 9), and what each part bought, measured one thread
 * pinned, interleaved runs, on bigann10k (9,000 x 128, M 16, ef_c 200)
 * and make_synth 1,000,000 x 128:
 *   - Records are found through a snapshot of the chunk directory
 *     (sw__view), not an acquire load of ix->dir per neighbour, and the
 *     visited test has no branch: the id is stored and the count advanced
 *     by "was not marked", a coin toss the branch predictor used to lose.
 *     With the branch-free pool insertion (pool_insert): +13% QPS at ef 16,
 *     +22% at ef 32, +31% at ef 64 on bigann10k.
 *   - Prefetching.  Small indexes live in the caches and the hardware
 *     prefetcher follows each vector once its first line is asked for;
 *     prefetching all of its lines there costs 4-5% in instructions.  Once
 *     the records pass SW__DEEP_PREFETCH_BYTES the walk waits on memory, and
 *     it prefetches every line of each fresh vector (+16-18% at a million)
 *     and the link block of each candidate the pool takes (+3%): most of
 *     them are expanded soon after.
 *   - Visited marks are bytes (internal.h): +9% at ef 16, +20% at ef 64 at
 *     a million against 32-bit marks.
 *   Tried and dropped: padding a short last group of distances through the
 *   batch kernel (no gain), the greedy descent through the snapshot (no
 *   gain: a handful of nodes per layer).
 *
 * Filters and tombstones plug into the same loop (walk(), instantiated
 * twice by the compiler: with no filter it is the plain loop above, with
 * one it also flags each pool entry accepted or not).  A rejected node is
 * still a candidate to expand, so the walk can pass through a region of
 * rejected nodes; the pool is cut after its ef-th accepted entry, the
 * equivalent of the two-heap rule that a candidate must beat the furthest
 * of ef results.  Which plan a filtered search takes (the walk, or an
 * exact scan of what the filter allows) is chosen from the estimated
 * selectivity; see "Filters" below.  Range search (below) reuses the walk
 * and adds a flood through the region in range.
 *
 * Threading: searches only read the graph, with acquire loads of every
 * link word (internal.h), and may run while writers change it; a search
 * may see a list old, new or partly each, and every id in it is a node
 * that exists, which is all the walk needs.
 * All mutable state is in the scratch context taken from the index's pool.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ==== The sorted candidate pool ==== */

/* Insert `e` into pool[0..n) (sorted, capacity cap); returns the position.
 * The caller has checked that e beats the last entry when the pool is full. */
static inline size_t pool_insert(sw__cand *pool, uint8_t *expanded, size_t *n, size_t cap,
                                 sw__cand e) {
    /* Branch-free binary search for the first entry further than e: the
     * answer lies in [b, b + len]; each step halves len with a conditional
     * move instead of a branch the predictor gets wrong half the time. */
    size_t lo = 0;
    if (*n) {
        const sw__cand *b = pool;
        size_t len = *n;
        while (len > 1) {
            size_t half = len / 2;
            b += b[half].dist <= e.dist ? half : 0;
            len -= half;
        }
        lo = (size_t)(b - pool) + (b->dist <= e.dist);
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

#if defined(__GNUC__) || defined(__clang__)
#define SW__INLINE inline __attribute__((always_inline))
#else
#define SW__INLINE inline
#endif

/* Pool entry flags: bit 0 expanded, bit 1 accepted (filtered walk). */
#define EXPANDED 1u
#define ACCEPTED 2u

/*
 * Offer candidate e to the pool; its position, or SIZE_MAX if it is not
 * taken.  Unfiltered (acc NULL) the pool is the ef best.  Filtered, the
 * pool holds up to cap entries and is cut right after its ef-th accepted
 * one: what lies beyond that is no nearer than ef results already in hand,
 * so it is neither a result nor worth expanding, exactly as in the
 * two-heap form where only accepted nodes enter W and a candidate must
 * beat W's furthest.  Rejected nodes before the cut stay, to be expanded.
 */
static SW__INLINE size_t offer(const sw_index *ix, sw__cand *pool, uint8_t *fl, size_t *n,
                               size_t *nacc, size_t ef, size_t cap, sw__cand e,
                               const sw__filter *acc) {
    if (!acc) {
        if (*n < ef || e.dist < pool[*n - 1].dist) return pool_insert(pool, fl, n, ef, e);
        return SIZE_MAX;
    }
    if ((*nacc >= ef || *n >= cap) && !(e.dist < pool[*n - 1].dist)) return SIZE_MAX;
    bool a = sw__accepts(ix, acc, e.id);
    if (*n >= cap && (fl[*n - 1] & ACCEPTED)) (*nacc)--; /* the last falls off */
    size_t pos = pool_insert(pool, fl, n, cap, e);
    if (a) {
        fl[pos] |= ACCEPTED;
        (*nacc)++;
    }
    if (*nacc >= ef) {
        while (!(fl[*n - 1] & ACCEPTED)) (*n)--;
        if (*nacc > ef) {
            (*n)--;
            (*nacc)--;
            while (!(fl[*n - 1] & ACCEPTED)) (*n)--;
        }
    }
    return pos;
}

static SW__INLINE size_t walk(const sw_index *ix, sw__ctx *c, const void *q, const sw__cand *seeds,
                              size_t nseeds, size_t ef, size_t cap, int layer, uint32_t exclude,
                              const sw__filter *acc) {
    sw__ctx_new_epoch(c);
    const sw__vmark epoch = c->epoch;
    sw__vmark *visited = c->visited;
    const size_t vcap = c->visited_cap;
    sw__cand *pool = c->pool;
    uint8_t *fl = c->expanded;
    const sw__dist_fn dist = ix->dist;
    const sw__dist4_fn dist4 = ix->dist4;
    const size_t dim = ix->code_n;
    /* Prefetch depth (see "Prefetching" above): the whole vector and the
     * link block of pool entries once the records outgrow the caches.  A
     * code's record may start inside a line (quant.c): one line more. */
    const bool deep = (size_t)sw__count(ix) * ix->rec_bytes >= SW__DEEP_PREFETCH_BYTES;
    const size_t pf_bytes = deep ? ix->code_bytes + (ix->rec_bytes % SW__LINE ? SW__LINE - 1 : 0) : 0,
                 lk_bytes = deep && layer == 0 ? ix->links_bytes : 0;
    const uint32_t maxdeg = sw__max_degree(ix, layer), lim = sw__link_limit(ix);
    size_t n = 0, nacc = 0, ndist = 0, nhops = 0;

    if (exclude != SW__NONE) sw__visit(c, exclude);
    for (size_t i = 0; i < nseeds; i++) {
        if (!sw__visit(c, seeds[i].id)) continue;
        offer(ix, pool, fl, &n, &nacc, ef, cap, seeds[i], acc);
    }

    sw__view view;
    sw__view_load(ix, &view);
    uint32_t fresh[SW_MAX_M0];
    const void *fvec[SW_MAX_M0]; /* their vectors, found once for prefetch and distance */
    size_t cur = 0;
    while (cur < n) {
        fl[cur] |= EXPANDED;
        const uint32_t *links = layer == 0 ? (const uint32_t *)(const void *)(
                                                 sw__view_rec(ix, &view, pool[cur].id) + ix->links_off)
                                           : sw__links(ix, pool[cur].id, layer);
        uint32_t deg = SW__LOAD(&links[0]);
        if (SW__UNLIKELY(deg > maxdeg)) deg = maxdeg; /* see sw__link_limit */
        size_t nf = 0;
        for (uint32_t j = 1; j <= deg; j++) {
            uint32_t nb = SW__LOAD(&links[j]);
            if (SW__UNLIKELY(nb >= view.ok)) {
                if (nb >= lim) continue;
                sw__view_load(ix, &view); /* a node newer than the snapshot */
                if (nb >= view.ok) continue;
            }
            /* The common case without a branch on the mark (visited or
             * not is a coin toss the predictor loses): store the id, keep
             * it if it was not marked.  Nodes newer than the visited
             * array (added since this context was sized) go to the side
             * set. */
            const char *rec = sw__view_rec(ix, &view, nb);
            SW__PREFETCH(rec);
            if (SW__LIKELY(nb < vcap)) {
                sw__vmark was = visited[nb];
                visited[nb] = epoch;
                fresh[nf] = nb;
                fvec[nf] = rec;
                nf += was != epoch;
            } else if (sw__visit_extra(c, nb)) {
                fresh[nf] = nb;
                fvec[nf++] = rec;
            }
        }
        for (size_t j = 0; j < nf; j++)
            for (size_t o = SW__LINE; o < pf_bytes; o += SW__LINE) SW__PREFETCH((const char *)fvec[j] + o);
        size_t lowest = n;
        for (size_t j = 0; j < nf; j += 4) {
            float d[4];
            size_t m = nf - j < 4 ? nf - j : 4;
            if (m == 4)
                dist4(q, fvec + j, dim, d);
            else
                for (size_t t = 0; t < m; t++) d[t] = dist(q, fvec[j + t], dim);
            for (size_t t = 0; t < m; t++) {
                size_t pos = offer(ix, pool, fl, &n, &nacc, ef, cap, (sw__cand){d[t], fresh[j + t]}, acc);
                if (pos < lowest) lowest = pos;
                if (pos != SIZE_MAX) /* likely to be expanded: fetch its links */
                    for (size_t o = 0; o < lk_bytes; o += SW__LINE)
                        SW__PREFETCH((const char *)fvec[j + t] + ix->links_off + o);
            }
        }
        if (lowest < cur) cur = lowest;
        while (cur < n && (fl[cur] & EXPANDED)) cur++;
        ndist += nf;
        nhops++;
    }
    c->ndist += ndist; /* for sw_search_stats; kept in registers above */
    c->nhops += nhops;
    return n;
}

size_t sw__search_layer(const sw_index *ix, sw__ctx *c, const void *q, const sw__cand *seeds,
                        size_t nseeds, size_t ef, int layer, uint32_t exclude) {
    return walk(ix, c, q, seeds, nseeds, ef, ef, layer, exclude, NULL);
}

size_t sw__search_layer_acc(const sw_index *ix, sw__ctx *c, const void *q, const sw__cand *seeds,
                            size_t nseeds, size_t ef, size_t cap, const sw__filter *acc) {
    return walk(ix, c, q, seeds, nseeds, ef, cap, 0, SW__NONE, acc);
}

/* ==== Greedy descent (Algorithm 2, ef = 1) ==== */

size_t sw__greedy(const sw_index *ix, const void *q, sw__cand *cur, int layer) {
    uint32_t ids[SW_MAX_M0];
    const void *vec[SW_MAX_M0];
    const uint32_t maxdeg = sw__max_degree(ix, layer), lim = sw__link_limit(ix);
    size_t computed = 0;
    for (;;) {
        const uint32_t *links = sw__links(ix, cur->id, layer);
        uint32_t deg = SW__LOAD(&links[0]), n = 0;
        if (SW__UNLIKELY(deg > maxdeg)) deg = maxdeg;
        bool moved = false;
        for (uint32_t j = 0; j < deg; j++) {
            ids[n] = SW__LOAD(&links[1 + j]);
            if (SW__UNLIKELY(ids[n] >= lim)) continue;
            vec[n] = sw__vec(ix, ids[n]);
            SW__PREFETCH(vec[n]);
            n++;
        }
        computed += n;
        for (uint32_t j = 0; j < n; j++) {
            float d = ix->dist(q, vec[j], ix->code_n);
            if (d < cur->dist) {
                cur->dist = d;
                cur->id = ids[j];
                moved = true;
            }
        }
        if (!moved) return computed;
    }
}

/* ==== The descent through the upper layers ==== */

/*
 * Algorithm 5 descends with ef = 1: one candidate per layer, moving to the
 * nearest neighbour until none is nearer.  On clustered data that greedy
 * walk can settle in the wrong cluster on an upper layer, and a layer-0
 * walk with a small ef then never leaves it: on make_synth 1,000,000 x 128
 * (256 clusters, M 16, ef_c 200) recall@10 was 0.79 at ef 16 and 0.948 at
 * ef 64, and the same graph searched by hnswlib (converted) gives what
 * hnswlib's own graphs give, 0.80-0.82.  Keeping the w nearest on every
 * upper layer (a layer search with ef = w) and starting layer 0 from all w
 * costs a few more distances and finds the right region: measured on that
 * index, one thread, QPS and recall at layer-0 ef 16 / 32 / 64:
 *
 *   w = 1   0.792 / 0.891 / 0.948   (28.4k / 22.7k / 15.5k QPS)
 *   w = 2   0.853 / 0.947 / 0.984   (39.4k / 26.0k / 15.1k)
 *   w = 4   0.872 / 0.962 / 0.992   (35.0k / 22.6k / 15.6k)
 *
 * so recall 0.99 takes ef 64 instead of about 400.  On small indexes the
 * greedy descent rarely goes wrong and the layer searches' fixed cost shows
 * (bigann10k, 9,000 nodes: w = 2 costs 2-9% at ef 10-32), hence the
 * default by size (sw_search_params.ef_upper).  Only the beam over every
 * upper layer pays at a million: beams on layers 1-2 alone reach 0.970 at
 * ef 48 where all layers reach 0.974, and layer 1 alone 0.949.
 */
static size_t upper_width(const sw_index *ix, const sw__filter *f, size_t ef) {
    size_t w = f->ef_upper;
    if (!w) {
        uint32_t n = sw__count(ix); /* slots in use, tombstones and freed ones too */
        w = n >= 500000 ? 4 : n >= 50000 ? 2 : 1;
    }
    return w < ef ? w : ef; /* the pool holds ef */
}

/* Descend from the entry point to layer 1; the seeds for layer 0 go to
 * seeds[0..return) (room for SW_MAX_EF_UPPER).  Adds the distances it
 * computed to *ndist, or to c->ndist with the layer searches. */
static size_t descend(const sw_index *ix, sw__ctx *c, const void *q, uint32_t entry, int top,
                      size_t width, sw__cand *seeds, uint64_t *ndist) {
    seeds[0] = (sw__cand){ix->dist(q, sw__vec(ix, entry), ix->code_n), entry};
    (*ndist)++;
    if (width <= 1) {
        for (int l = top; l > 0; l--) *ndist += sw__greedy(ix, q, &seeds[0], l);
        return 1;
    }
    size_t ns = 1;
    uint64_t hops = c->nhops; /* sw_search_stats.hops counts layer 0 alone */
    for (int l = top; l > 0; l--) {
        ns = sw__search_layer(ix, c, q, seeds, ns, width, l, SW__NONE);
        memcpy(seeds, c->pool, ns * sizeof *seeds);
    }
    c->nhops = hops;
    return ns;
}

/* ==== Filters ==== */

/*
 * How a filtered search is run.  Let s be the share of the index's slots a
 * result may come from (tombstones, allow-list, callback, multiplied).  A
 * walk that must collect ef accepted nodes visits about ef / s pool
 * entries; a scan scores the accepted vectors one after the other.  Costs,
 * in units of one distance of the scan (a vector read in order), measured
 * with bench/bench_delete.c --mode filter on 200,000 x 128 vectors:
 *
 *   walk                 WALK_COST per ef / s       (0.6 us: 6 units)
 *   scan, allow-list     ALLOW_COST per allowed slot (resolving the label,
 *                                                  then the distance)
 *   scan, callback or    SLOT_COST per slot checked, plus one unit per
 *   tombstones only      accepted slot
 *
 * The cheaper plan wins.  The first version counted the walk at 4 units
 * and a checked slot at a quarter: with a callback at 1% selectivity it
 * walked pools of thousands of entries (0.8 ms at ef 16, 11 ms at ef 128)
 * where the scan takes about 1 ms at any ef.  The walk's pool is sized
 * 2 ef / s (the cut after the ef-th accepted entry keeps it far smaller
 * whenever accepted nodes are not rare).  A walk that finds fewer than k
 * accepted results is followed by the scan, which is exact: fewer than k
 * results then means fewer than k labels pass.
 */
#define WALK_COST 6.0
#define ALLOW_COST 1.5
#define SLOT_COST 0.05
#define SAMPLE 64

sw_status sw__filter_build(const sw_index *ix, const sw_search_params *p, sw__filter *f,
                           const char *fn) {
    memset(f, 0, sizeof *f);
    f->rerank = SW_DEFAULT_RERANK;
    if (!p) return SW_OK;
    if (p->ef_upper > SW_MAX_EF_UPPER)
        return sw__fail(SW_EEF, "%s: ef_upper is %u, at most %u", fn, p->ef_upper, SW_MAX_EF_UPPER);
    f->ef_upper = p->ef_upper;
    if (p->rerank > SW_MAX_RERANK)
        return sw__fail(SW_EINVAL, "%s: rerank is %u, at most %u", fn, p->rerank, SW_MAX_RERANK);
    if (p->rerank) f->rerank = p->rerank;
    f->stats = p->stats;
    f->fn = p->filter;
    f->fn_ctx = p->filter_ctx;
    if (!p->allow) return SW_OK;
    f->has_allow = true;
    if (p->n_allow == 0) return SW_OK;
    if (p->n_allow > SIZE_MAX / sizeof(uint64_t))
        return sw__fail(SW_EINVAL, "%s: n_allow %zu is too large", fn, p->n_allow);
    sw__mem *m = (sw__mem *)&ix->mem;
    /* The bitmap covers the slots that exist now; later ones are not allowed
     * (they were added after the list was resolved). */
    f->nbits = sw__count(ix);
    f->cap = p->n_allow < f->nbits ? p->n_allow : f->nbits;
    f->bits = sw__calloc(m, (f->nbits + 7) / 8 + 1, 1);
    f->slots = sw__alloc(m, (f->cap ? f->cap : 1) * sizeof *f->slots, sizeof(uint32_t));
    f->slot_labels = sw__alloc(m, (f->cap ? f->cap : 1) * sizeof *f->slot_labels, sizeof(uint64_t));
    if (!f->bits || !f->slots || !f->slot_labels) {
        sw__filter_free(ix, f);
        return sw__fail(SW_ENOMEM, "%s: resolving %zu allowed labels", fn, p->n_allow);
    }
    /* Labels to slots, duplicates merged by the bitmap; then the bitmap, read
     * in order, gives the slots sorted (no sort) with their labels.  Under
     * label_lock the map and the labels of mapped slots hold still. */
    sw_index *mix = (sw_index *)ix;
    pthread_rwlock_rdlock(&mix->label_lock);
    for (size_t i = 0; i < p->n_allow; i++) {
        uint32_t s = sw__labels_find(&ix->labels, p->allow[i]);
        if (s != SW__NONE && s < f->nbits) f->bits[s >> 3] |= (uint8_t)(1u << (s & 7));
    }
    for (size_t byte = 0; byte < (f->nbits + 7) / 8; byte++)
        for (unsigned b = 0, v = f->bits[byte]; v; b++, v >>= 1)
            if (v & 1) {
                uint32_t s = (uint32_t)(byte * 8 + b);
                f->slots[f->nslots] = s;
                f->slot_labels[f->nslots++] = *sw__label_ptr(ix, s);
            }
    pthread_rwlock_unlock(&mix->label_lock);
    return SW_OK;
}

void sw__filter_free(const sw_index *ix, sw__filter *f) {
    sw__mem *m = (sw__mem *)&ix->mem;
    if (f->slots) sw__free(m, f->slots, (f->cap ? f->cap : 1) * sizeof *f->slots);
    if (f->slot_labels)
        sw__free(m, f->slot_labels, (f->cap ? f->cap : 1) * sizeof *f->slot_labels);
    if (f->bits) sw__free(m, f->bits, (f->nbits + 7) / 8 + 1);
    memset(f, 0, sizeof *f);
}

bool sw__allowed(const sw_index *ix, const sw__filter *a, uint32_t id) {
    if (!a->bits || id >= a->nbits || !(a->bits[id >> 3] & (1u << (id & 7)))) return false;
    size_t lo = 0, hi = a->nslots;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a->slots[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < a->nslots && a->slots[lo] == id && a->slot_labels[lo] == *sw__label_ptr(ix, id);
}


/* ==== Exact scans ==== */

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

/* Offer e to the max-heap h[0..*n) of at most k (root = worst kept). */
static inline void heap_offer(sw__cand *h, size_t *n, size_t k, sw__cand e) {
    if (*n < k) {
        size_t i = (*n)++;
        h[i] = e;
        while (i > 0 && worse(h[i], h[(i - 1) / 2])) {
            sw__cand t = h[i];
            h[i] = h[(i - 1) / 2];
            h[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (worse(h[0], e)) {
        h[0] = e;
        sift_down(h, *n, 0);
    }
}

/* The candidates of an exact scan: the allowed slots with an allow-list,
 * else every slot that exists now (adds that land meanwhile are not
 * seen).  scan_slot says which slot candidate i is and whether it is a
 * result: live, still its allowed label, accepted by the callback. */
static size_t scan_size(const sw_index *ix, const sw__filter *f) {
    return f && f->has_allow ? f->nslots : sw__count(ix);
}

static inline bool scan_slot(const sw_index *ix, const sw__filter *f, size_t i, uint32_t *s) {
    bool listed = f && f->has_allow;
    *s = listed ? f->slots[i] : (uint32_t)i;
    if (sw__flags(ix, *s)) return false;
    if (listed && *sw__label_ptr(ix, *s) != f->slot_labels[i]) return false;
    return !f || !f->fn || f->fn(*sw__label_ptr(ix, *s), f->fn_ctx);
}

/* The distance an exact scan gives slot s (see sw__scan). */
static inline float exact_dist(const sw_index *ix, const sw__ctx *c, uint32_t s) {
    if (ix->type == SW_TYPE_F32) return ix->dist(c->query, sw__vec(ix, s), ix->dim);
    if (ix->has_full) return ix->fdist(c->query, sw__full(ix, s), ix->dim);
    return sw__code_to_metric(ix, ix->dist(c->qv, sw__vec(ix, s), ix->code_n));
}

size_t sw__scan(const sw_index *ix, const sw__ctx *c, size_t k, const sw__filter *f,
                sw__cand *h, uint64_t *scored) {
    size_t n = 0, size = scan_size(ix, f), scored_here = 0;
    uint32_t s;
    for (size_t i = 0; i < size; i++)
        if (scan_slot(ix, f, i, &s)) {
            heap_offer(h, &n, k, (sw__cand){exact_dist(ix, c, s), s});
            scored_here++;
        }
    if (scored) *scored += scored_here;
    /* Pop the worst to the back: the array ends up sorted ascending. */
    for (size_t m = n; m > 1; m--) {
        sw__cand t = h[0];
        h[0] = h[m - 1];
        h[m - 1] = t;
        sift_down(h, m - 1, 0);
    }
    return n;
}

/* ==== Public search (Algorithm 5) ==== */

void sw__emit(const sw_index *ix, const sw__cand *r, size_t n, uint64_t *labels,
              float *distances) {
    for (size_t i = 0; i < n; i++) {
        if (labels) labels[i] = *sw__label_ptr(ix, r[i].id);
        if (distances) distances[i] = r[i].dist;
    }
}

/* The share of slots a callback accepts, from a sample spread evenly over
 * the slots (at least a small floor, so that an estimate of 0 still plans
 * a bounded walk). */
static double sample_filter(const sw_index *ix, const sw__filter *f, uint32_t count) {
    size_t seen = 0, ok = 0;
    uint64_t step = count > SAMPLE ? count / SAMPLE : 1;
    for (uint64_t s = step / 2; s < count && seen < SAMPLE; s += step) {
        if (sw__flags(ix, (uint32_t)s)) continue;
        seen++;
        ok += f->fn(*sw__label_ptr(ix, (uint32_t)s), f->fn_ctx) != 0;
    }
    return (ok + 0.5) / (seen + 1.0);
}

sw_status sw__search_one(const sw_index *ix, const float *query, size_t k, size_t ef,
                         const sw__filter *f, uint64_t *labels, float *distances,
                         size_t *n_found) {
    *n_found = 0;
    if (ef < k) ef = k;
    uint32_t count = sw__count(ix);
    size_t dead = SW__LOAD(&((sw_index *)ix)->ndeleted);
    size_t live = sw__live(ix);
    bool filtered = dead || f->fn || f->has_allow;
    if (ef > count) ef = count ? count : 1;
    /* Candidates re-scored with full-precision copies (quant.c): the
     * best rerank x k of the ef the walk keeps; k without copies. */
    size_t rr = k;
    if (ix->has_full) {
        rr = (size_t)f->rerank * k;
        if (rr / k != f->rerank || rr > ef) rr = ef > k ? ef : k;
    }
    /* Pinned (sw__ctx_acquire) before anything reads a slot: the planner's
     * sample calls the filter on labels. */
    sw__ctx *c = sw__ctx_acquire(ix, ef, filtered ? rr : 0);
    if (!c) return SW_ENOMEM;

    /* Plan: walk (pool cap) or scan. */
    size_t cap = ef;
    bool scan = false;
    if (filtered) {
        double sel = live + dead ? (double)live / (double)(live + dead) : 1.0;
        double scan_cost = SLOT_COST * count + (double)live;
        if (f->has_allow) {
            sel *= live ? (double)f->nslots / (double)live : 0.0;
            scan_cost = ALLOW_COST * (double)f->nslots;
        }
        if (f->fn) {
            double sf = sample_filter(ix, f, count);
            sel *= sf;
            if (!f->has_allow) scan_cost = SLOT_COST * count + sf * live;
        }
        if (sel > 1.0) sel = 1.0;
        double walk_cost = sel > 0 ? WALK_COST * (double)ef / sel : 1e300;
        scan = scan_cost <= walk_cost;
        double want = sel > 0 ? 2.0 * (double)ef / sel : (double)count;
        cap = want >= (double)count ? count : (size_t)want;
        if (cap < ef) cap = ef;
    }

    if (c->pool_cap < cap || c->expanded_cap < cap) {
        /* a larger pool than the plain walk's: trade the context in */
        sw__ctx_release(ix, c);
        if (!(c = sw__ctx_acquire(ix, cap, rr))) return SW_ENOMEM;
    }
    sw_status st = sw__ctx_query(ix, c, query);
    if (st != SW_OK) goto done;

    sw_index *mix = (sw_index *)ix;
    uint64_t ndist = 0; /* for f->stats: the walk's own count is c->ndist */
    c->ndist = c->nhops = 0;
    sw__gate_enter(&mix->gate);
    const void *q = c->qv;
    int top;
    uint32_t entry = sw__top(ix, &top);
    if (entry != SW__NONE && !scan) {
        sw__cand seeds[SW_MAX_EF_UPPER];
        size_t ns = descend(ix, c, q, entry, top, upper_width(ix, f, ef), seeds, &ndist);
        if (!filtered) {
            size_t n = sw__search_layer(ix, c, q, seeds, ns, ef, 0, SW__NONE);
            if (n > rr) n = rr;
            sw__rerank(ix, c->query, c->pool, n);
            if (n > k) n = k;
            sw__emit(ix, c->pool, n, labels, distances);
            *n_found = n;
        } else {
            size_t n = sw__search_layer_acc(ix, c, q, seeds, ns, ef, cap, f);
            size_t got = 0;
            for (size_t i = 0; i < n && got < rr; i++)
                if (c->expanded[i] & ACCEPTED) c->work[got++] = c->pool[i];
            sw__rerank(ix, c->query, c->work, got);
            scan = got < k; /* too few: the exact scan settles it */
            if (got > k) got = k;
            sw__emit(ix, c->work, got, labels, distances);
            *n_found = got;
        }
    }
    sw__gate_leave(&mix->gate);
    if (scan && entry != SW__NONE) {
        /* the scan's heap lives in the work array: k entries */
        sw__gate_enter(&mix->gate);
        size_t n = sw__scan(ix, c, k, f, c->work, &ndist);
        sw__emit(ix, c->work, n, labels, distances);
        *n_found = n;
        sw__gate_leave(&mix->gate);
    }
    if (f->stats) {
        __atomic_add_fetch(&f->stats->searches, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&f->stats->distances, ndist + c->ndist, __ATOMIC_RELAXED);
        __atomic_add_fetch(&f->stats->hops, c->nhops, __ATOMIC_RELAXED);
    }
done:
    if (c) sw__ctx_release(ix, c);
    return st;
}

sw_status sw_search(const sw_index *ix, const float *query, size_t dim, size_t k,
                    const sw_search_params *params, uint64_t *labels, float *distances,
                    size_t *n_found) {
    sw_status st = sw__check_query(ix, query, dim, k, n_found, "sw_search");
    if (st != SW_OK) return st;
    size_t ef = params && params->ef ? params->ef : sw_get_ef(ix);
    if (ef > SW_MAX_EF) return sw__fail(SW_EEF, "sw_search: ef is %zu, at most %u", ef, SW_MAX_EF);
    sw__filter f;
    if ((st = sw__filter_build(ix, params, &f, "sw_search")) != SW_OK) return st;
    st = sw__search_one(ix, query, k, ef, &f, labels, distances, n_found);
    sw__filter_free(ix, &f);
    return st;
}

/* ==== Range search ==== */

/*
 * Range search has two regimes.  When max_count is at most ef it is a
 * k-NN search with k = max_count cut at the radius: the max_count nearest
 * in range are among the max_count nearest overall.  When max_count is
 * larger, the answer may be a whole region, so after the ordinary walk
 * (which finds where the region is) a breadth-first flood expands every
 * node found in range until none is left: rejected nodes in range are
 * walked through, as in the filtered walk.  Nodes in range that are linked
 * to the region only through nodes out of it can be missed, as any graph
 * search can miss; the tests measure how often against the exact scan.
 */

/* A growable array of candidates, from the index's allocator. */
typedef struct cbuf {
    sw__cand *v;
    size_t n, cap;
} cbuf;

static bool cbuf_push(const sw_index *ix, cbuf *b, sw__cand e) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        sw__cand *v = sw__alloc((sw__mem *)&ix->mem, cap * sizeof *v, SW__LINE);
        if (!v) return false;
        if (b->n) memcpy(v, b->v, b->n * sizeof *v);
        sw__free((sw__mem *)&ix->mem, b->v, b->cap * sizeof *v);
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = e;
    return true;
}

static void cbuf_free(const sw_index *ix, cbuf *b) {
    sw__free((sw__mem *)&ix->mem, b->v, b->cap * sizeof *b->v);
    memset(b, 0, sizeof *b);
}

/* Sort the results and write the nearest max_count. */
static void emit_range(const sw_index *ix, cbuf *res, size_t max_count, uint64_t *labels,
                       float *distances, size_t *n_found) {
    if (res->n > 1) qsort(res->v, res->n, sizeof *res->v, sw__cand_cmp);
    size_t n = res->n < max_count ? res->n : max_count;
    sw__emit(ix, res->v, n, labels, distances);
    *n_found = n;
}

static sw_status check_range(const sw_index *ix, const float *q, size_t dim, float radius,
                             size_t max_count, size_t *n_found, const char *fn) {
    sw_status st = sw__check_query(ix, q, dim, max_count, n_found, fn);
    if (st != SW_OK) return st;
    if (radius != radius) return sw__fail(SW_EINVAL, "%s: radius is NaN", fn);
    if (radius < 0 && (ix->metric == SW_METRIC_L2 || ix->metric == SW_METRIC_L1))
        return sw__fail(SW_EINVAL, "%s: radius %g is negative; L2 and L1 distances are not", fn,
                        (double)radius);
    return SW_OK;
}

/* The flood (max_count > ef). */
static sw_status flood(const sw_index *ix, const float *query, float radius, size_t max_count,
                       size_t ef, const sw__filter *f, uint64_t *labels, float *distances,
                       size_t *n_found) {
    uint32_t count = sw__count(ix);
    if (ef > count) ef = count ? count : 1;
    sw__ctx *c = sw__ctx_acquire(ix, ef, 0);
    if (!c) return SW_ENOMEM;
    cbuf res = {0}, queue = {0};
    sw_status st = sw__ctx_query(ix, c, query);
    if (st != SW_OK) goto done;
    sw_index *mix = (sw_index *)ix;
    const void *q = c->qv;
    sw__gate_enter(&mix->gate);
    int top;
    uint32_t entry = sw__top(ix, &top);
    bool ok = true;
    const uint32_t lim = sw__link_limit(ix);
    if (entry != SW__NONE && !(f->has_allow && f->nslots == 0)) {
        sw__cand seeds[SW_MAX_EF_UPPER];
        uint64_t nd = 0;
        size_t ns = descend(ix, c, q, entry, top, upper_width(ix, f, ef), seeds, &nd);
        size_t n = sw__search_layer(ix, c, q, seeds, ns, ef, 0, SW__NONE);
        sw__ctx_new_epoch(c);
        for (size_t i = 0; i < n && ok; i++) {
            sw__cand e = c->pool[i];
            e.dist = sw__code_to_metric(ix, e.dist);
            if (e.dist > radius) break; /* the pool is sorted */
            sw__visit(c, e.id);
            ok = cbuf_push(ix, &queue, e) && (!sw__accepts(ix, f, e.id) || cbuf_push(ix, &res, e));
        }
        for (size_t h = 0; h < queue.n && ok; h++) {
            const uint32_t *links = sw__links0(ix, queue.v[h].id);
            uint32_t deg = SW__LOAD(&links[0]);
            if (SW__UNLIKELY(deg > ix->M0)) deg = ix->M0;
            for (uint32_t j = 1; j <= deg && ok; j++) {
                uint32_t nb = SW__LOAD(&links[j]);
                if (SW__UNLIKELY(nb >= lim) || !sw__visit(c, nb)) continue;
                float d = ix->dist(q, sw__vec(ix, nb), ix->code_n);
                sw__cand e = {sw__code_to_metric(ix, d), nb};
                if (e.dist > radius) continue;
                ok = cbuf_push(ix, &queue, e) && (!sw__accepts(ix, f, nb) || cbuf_push(ix, &res, e));
            }
        }
    }
    if (ok && ix->has_full) {
        /* The flood followed code distances; results are those the full-
         * precision copies put in range. */
        size_t kept = 0;
        for (size_t i = 0; i < res.n; i++) {
            sw__cand e = {exact_dist(ix, c, res.v[i].id), res.v[i].id};
            if (e.dist <= radius) res.v[kept++] = e;
        }
        res.n = kept;
    }
    if (ok) emit_range(ix, &res, max_count, labels, distances, n_found);
    sw__gate_leave(&mix->gate);
    if (!ok) st = sw__fail(SW_ENOMEM, "sw_search_range: %zu results so far", res.n);
done:
    cbuf_free(ix, &res);
    cbuf_free(ix, &queue);
    sw__ctx_release(ix, c);
    return st;
}

sw_status sw_search_range(const sw_index *ix, const float *query, size_t dim, float radius,
                          size_t max_count, const sw_search_params *params, uint64_t *labels,
                          float *distances, size_t *n_found) {
    sw_status st = check_range(ix, query, dim, radius, max_count, n_found, "sw_search_range");
    if (st != SW_OK) return st;
    size_t ef = params && params->ef ? params->ef : sw_get_ef(ix);
    if (ef > SW_MAX_EF)
        return sw__fail(SW_EEF, "sw_search_range: ef is %zu, at most %u", ef, SW_MAX_EF);
    sw__filter f;
    if ((st = sw__filter_build(ix, params, &f, "sw_search_range")) != SW_OK) return st;
    if (max_count > ef) {
        st = flood(ix, query, radius, max_count, ef, &f, labels, distances, n_found);
    } else {
        /* k-NN with k = max_count, then the cut: distances are needed for
         * it even when the caller wants none. */
        float *d = sw__alloc((sw__mem *)&ix->mem, max_count * sizeof *d, sizeof *d);
        if (!d) {
            st = sw__fail(SW_ENOMEM, "sw_search_range: %zu distances", max_count);
        } else {
            size_t n = 0;
            st = sw__search_one(ix, query, max_count, ef, &f, labels, d, &n);
            while (n > 0 && d[n - 1] > radius) n--;
            if (distances) memcpy(distances, d, n * sizeof *d);
            *n_found = st == SW_OK ? n : 0;
            sw__free((sw__mem *)&ix->mem, d, max_count * sizeof *d);
        }
    }
    sw__filter_free(ix, &f);
    return st;
}

sw_status sw_search_range_exact(const sw_index *ix, const float *query, size_t dim,
                                float radius, size_t max_count, const sw_search_params *params,
                                uint64_t *labels, float *distances, size_t *n_found) {
    sw_status st =
        check_range(ix, query, dim, radius, max_count, n_found, "sw_search_range_exact");
    if (st != SW_OK) return st;
    sw__filter f;
    if ((st = sw__filter_build(ix, params, &f, "sw_search_range_exact")) != SW_OK) return st;
    sw__ctx *c = sw__ctx_acquire(ix, 0, 0);
    cbuf res = {0};
    if (!c) {
        st = SW_ENOMEM;
        goto done;
    }
    if ((st = sw__ctx_query(ix, c, query)) != SW_OK) goto done;
    sw__gate_enter(&((sw_index *)ix)->gate);
    bool ok = true;
    size_t n = scan_size(ix, &f);
    uint32_t s;
    for (size_t i = 0; i < n && ok; i++) {
        if (!scan_slot(ix, &f, i, &s)) continue;
        sw__cand e = {exact_dist(ix, c, s), s};
        if (e.dist <= radius) ok = cbuf_push(ix, &res, e);
    }
    if (ok) emit_range(ix, &res, max_count, labels, distances, n_found);
    sw__gate_leave(&((sw_index *)ix)->gate);
    if (!ok) st = sw__fail(SW_ENOMEM, "sw_search_range_exact: %zu results so far", res.n);
done:
    cbuf_free(ix, &res);
    if (c) sw__ctx_release(ix, c);
    sw__filter_free(ix, &f);
    return st;
}
