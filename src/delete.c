/*
 * delete.c — tombstones, true deletion with graph repair, compaction, and
 * the recycling of freed slots.
 *
 * Two kinds of deletion, because users need both.  A tombstone (one flag
 * byte per slot, SW__F_DELETED) is what hnswlib offers: instant, undoable,
 * and the node keeps guiding searches; but it keeps its memory, and a
 * search must walk past it to find live results, so many tombstones make
 * every search slower (see bench/README.md for the figures).  A true
 * deletion takes the node out of the graph and recycles its slot.
 *
 * Taking a node d out of the graph, on every layer it is on:
 *
 *   1. Find every list that points to d.  There are no reverse lists; on
 *      layer 0 each node's in-degree is kept exactly (insert.c), so a
 *      search around d's own vector collects the nodes whose lists hold d
 *      (in a graph built from near neighbours they are near d) and stops
 *      as soon as the count matches; if the search falls short, a scan of
 *      every list finishes the job.  Upper layers hold about 1/M of the
 *      nodes each and carry no counts, so they are scanned.  Either way
 *      the result is exact: no list that survives may point at a slot that
 *      will be recycled.
 *   2. Repair each such list p: its other links plus d's links are the
 *      candidates (the paths p used to take through d), and the heuristic
 *      re-selects when they overflow, as Algorithm 1 does for a full list.
 *      A list left with fewer than M/2 candidates searches the graph for
 *      new neighbours, as an insert would.
 *   3. Nodes that have lost their last layer-0 in-link are re-attached
 *      (sw__adopt_orphan), the entry point moves to another node of the
 *      top level if d was it, and the top level drops if d was alone there.
 *
 * sw_compact does the same for every tombstone at once, FreshDiskANN's way
 * (Singh et al. 2021): one pass over the nodes repairs each affected list
 * once, with the lists of all its deleted neighbours as candidates (plus a
 * search, see repair), instead of once per deleted neighbour.  The pass is
 * parallel: a repair reads the lists of deleted nodes, which nobody
 * changes, and writes only its own node's list (and adds reverse links,
 * under each list's lock).  On 200,000 vectors, deleting half one by one
 * with sw_delete took 175 s (1.75 ms a call: the scans that find the last
 * in-links of much-linked nodes grow with the index); marking them and
 * compacting took 7.9 s (bench/README.md).
 *
 * Recycling.  A search that started before d was unlinked may still be
 * standing on d, or about to read it from a list it loaded earlier, so d's
 * record must stay as it was until every such search has finished; then
 * its slot can take a new node.  This is epoch-based reclamation: the
 * index has an epoch counter; each operation, when it takes its scratch
 * context, publishes the epoch it started in (its pin) and clears it when
 * done.  A freed slot is stamped with the epoch of its release (taken by
 * incrementing the counter after the unlink), and an add reuses it only
 * once no context is pinned at that epoch or earlier.  Contexts are
 * created on demand and never freed before the index, so the list of pins
 * has no fixed size.  A pin is published with a re-check of the counter
 * (sw__pin), the usual guard against a reader that read the epoch just
 * before a release but published it just after the recycler looked.
 *
 * Why the grace period is enough: once d is FREE, no list of a node that
 * is not FREE points to it, and the entry point is not FREE.  An
 * operation pinned after d's release therefore starts from live nodes
 * and can only reach d through a FREE node it was already standing on,
 * which it can only be standing on if it started before that node's
 * release, and so before d's.
 *
 * Threads.  sw_delete, sw_compact and updates (which unlink, see
 * insert.c) hold save_lock alone (adds and tombstone changes hold it
 * shared), so the graph has one writer of this kind while they run and
 * in-degrees are stable; searches run throughout.  Deleting concurrently
 * with adds would need every list an add writes to be checked against
 * nodes being unlinked; deletions are rare next to searches, so making
 * them wait for adds in flight is the simpler trade.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ==== Pins and recycling ==== */

void sw__pin(const sw_index *ix, sw__ctx *c) {
    uint64_t *ep = &((sw_index *)ix)->epoch;
    uint64_t e = __atomic_load_n(ep, __ATOMIC_SEQ_CST);
    for (;;) {
        __atomic_store_n(&c->pin, e, __ATOMIC_SEQ_CST);
        uint64_t again = __atomic_load_n(ep, __ATOMIC_SEQ_CST);
        if (again == e) return;
        e = again;
    }
}

/* True when no operation pinned at `e` or earlier is running. */
static bool quiet_since(const sw_index *ix, uint64_t e) {
    for (const sw__ctx *c = SW__LOAD(&((sw_index *)ix)->ctx_all); c; c = c->all_next) {
        uint64_t p = __atomic_load_n(&c->pin, __ATOMIC_SEQ_CST);
        if (p != 0 && p <= e) return false;
    }
    return true;
}

uint32_t sw__recycle(sw_index *ix) {
    if (ix->nfree == 0) return SW__NONE;
    const sw__freed *f = &ix->freed[ix->freed_head];
    if (!quiet_since(ix, f->epoch)) return SW__NONE;
    uint32_t s = f->slot;
    ix->freed_head = (ix->freed_head + 1) % ix->freed_cap;
    SW__STORE(&ix->nfree, ix->nfree - 1);
    return s;
}

size_t sw__live(const sw_index *ix) {
    size_t used = sw__count(ix), gone = SW__LOAD(&((sw_index *)ix)->nfree);
    size_t dead = SW__LOAD(&((sw_index *)ix)->ndeleted);
    return used > gone + dead ? used - gone - dead : 0;
}

/* Room in the ring for `more` releases, so that releasing cannot fail
 * once the graph has been changed.  Takes grow_lock. */
static sw_status reserve_ring(sw_index *ix, size_t more) {
    pthread_mutex_lock(&ix->grow_lock);
    sw_status st = SW_OK;
    size_t need = (size_t)ix->nfree + more;
    if (need > ix->freed_cap) {
        size_t cap = ix->freed_cap ? ix->freed_cap : 64;
        while (cap < need) cap *= 2;
        sw__freed *r = sw__alloc(&ix->mem, cap * sizeof *r, sizeof(uint64_t));
        if (!r) {
            st = sw__fail(SW_ENOMEM, "growing the list of freed slots to %zu", cap);
        } else {
            for (size_t i = 0; i < ix->nfree; i++)
                r[i] = ix->freed[(ix->freed_head + i) % ix->freed_cap];
            sw__free(&ix->mem, ix->freed, ix->freed_cap * sizeof *ix->freed);
            ix->freed = r;
            ix->freed_cap = cap;
            ix->freed_head = 0;
        }
    }
    pthread_mutex_unlock(&ix->grow_lock);
    return st;
}

/* The slot, a tombstone until now, is out of the graph: mark it FREE and
 * queue it, stamped with `epoch`.  Room was reserved.  Caller holds
 * grow_lock. */
static void release_slot(sw_index *ix, uint32_t s, uint64_t epoch) {
    __atomic_fetch_sub(&ix->ndeleted, 1, __ATOMIC_SEQ_CST); /* it was a tombstone */
    SW__STORE(sw__flags_ptr(ix, s), (uint8_t)SW__F_FREE);
    *sw__indeg_ptr(ix, s) = 0;
    size_t tail = (ix->freed_head + ix->nfree) % ix->freed_cap;
    ix->freed[tail] = (sw__freed){s, epoch};
    SW__STORE(&ix->nfree, ix->nfree + 1);
}

/* ==== Tombstones ==== */

/* The slot of `label` (tombstoned or not), or SW__NONE. */
static uint32_t find_label(const sw_index *ix, uint64_t label) {
    sw_index *mix = (sw_index *)ix;
    pthread_rwlock_rdlock(&mix->label_lock);
    uint32_t s = sw__labels_find(&ix->labels, label);
    pthread_rwlock_unlock(&mix->label_lock);
    return s;
}

static sw_status set_tombstone(sw_index *ix, uint64_t label, bool on, const char *fn) {
    if (!ix) return sw__fail(SW_ENULL, "%s: index is NULL", fn);
    if (ix->readonly) return sw__readonly_fail(fn);
    pthread_rwlock_rdlock(&ix->save_lock);
    sw_status st = SW_OK;
    uint32_t s = find_label(ix, label);
    if (s == SW__NONE) {
        st = sw__fail(SW_ENOTFOUND, "%s: label %llu", fn, (unsigned long long)label);
    } else {
        uint8_t *f = sw__flags_ptr(ix, s);
        uint8_t was = on ? __atomic_fetch_or(f, (uint8_t)SW__F_DELETED, __ATOMIC_SEQ_CST)
                         : __atomic_fetch_and(f, (uint8_t)~SW__F_DELETED, __ATOMIC_SEQ_CST);
        if (on && !(was & SW__F_DELETED)) __atomic_fetch_add(&ix->ndeleted, 1, __ATOMIC_SEQ_CST);
        if (!on && (was & SW__F_DELETED)) __atomic_fetch_sub(&ix->ndeleted, 1, __ATOMIC_SEQ_CST);
    }
    pthread_rwlock_unlock(&ix->save_lock);
    return st;
}

sw_status sw_mark_deleted(sw_index *ix, uint64_t label) {
    return set_tombstone(ix, label, true, "sw_mark_deleted");
}

sw_status sw_unmark_deleted(sw_index *ix, uint64_t label) {
    return set_tombstone(ix, label, false, "sw_unmark_deleted");
}

int sw_is_deleted(const sw_index *ix, uint64_t label) {
    if (!ix) return 0;
    sw_index *mix = (sw_index *)ix;
    pthread_rwlock_rdlock(&mix->label_lock); /* the slot stays this label's meanwhile */
    uint32_t s = sw__labels_find(&ix->labels, label);
    int dead = s != SW__NONE && (sw__flags(ix, s) & SW__F_DELETED) != 0;
    pthread_rwlock_unlock(&mix->label_lock);
    return dead;
}

size_t sw_deleted_count(const sw_index *ix) { return ix ? SW__LOAD(&((sw_index *)ix)->ndeleted) : 0; }

/* ==== Writing a repaired list ==== */

/*
 * Replace the list of p on `layer` by sel[0..r) (and links added since
 * seen[] was read, see below).  On layer 0 the in-degree
 * of each node gained is raised before the list is stored and that of each
 * node dropped lowered (insert.c keeps the same order); a dropped node
 * whose count reaches zero is added to orphans[] (room for M0).
 */
static size_t replace_list(const sw_index *ix, uint32_t p, int layer, const sw__cand *sel,
                           size_t r, const uint32_t *seen, uint32_t nseen, uint32_t *orphans,
                           uint32_t *late, size_t *nlate) {
    size_t norph = 0;
    *nlate = 0;
    sw__node_lock(ix, p);
    uint32_t *links = sw__links(ix, p, layer);
    uint32_t nold = links[0], old[SW_MAX_M0], ids[SW_MAX_M0];
    memcpy(old, links + 1, nold * sizeof *old);
    for (size_t i = 0; i < r; i++) ids[i] = sel[i].id;
    /* A link added to p since the caller read its list (seen[]) is another
     * repair's reverse link (sw_compact runs repairs in parallel): kept
     * while there is room, and handed back in late[] (room for M0) to be
     * added with the heuristic when there is none, instead of being lost
     * to this rewrite. */
    for (uint32_t j = 0; j < nold; j++)
        if (!sw__in_list(seen, nseen, old[j]) && !sw__in_list(ids, r, old[j])) {
            if (r < sw__max_degree(ix, layer))
                ids[r++] = old[j];
            else
                late[(*nlate)++] = old[j]; /* the caller adds it with the heuristic */
        }
    if (layer == 0) {
        for (size_t i = 0; i < r; i++)
            if (!sw__in_list(old, nold, ids[i])) __atomic_fetch_add(sw__indeg_ptr(ix, ids[i]), 1u, __ATOMIC_RELAXED);
        for (uint32_t j = 0; j < nold; j++) {
            if (sw__in_list(ids, r, old[j])) continue;
            if (__atomic_sub_fetch(sw__indeg_ptr(ix, old[j]), 1u, __ATOMIC_RELAXED) == 0 && orphans)
                orphans[norph++] = old[j];
        }
    }
    for (size_t i = 0; i < r; i++) SW__STORE(&links[1 + i], ids[i]);
    SW__STORE(&links[0], (uint32_t)r);
    sw__node_unlock(ix, p);
    return norph;
}

/* ==== Repairing one list ==== */



/* What a repair needs: which nodes are leaving, and scratch. */
typedef struct repair_job {
    sw_index *ix;
    uint32_t gone;   /* sw_delete: the one node leaving; SW__NONE for compact */
    size_t cand_cap; /* candidates kept at most */
    size_t ef;       /* search size for a short list */
} repair_job;

static inline bool leaving(const repair_job *j, uint32_t x) {
    if (j->gone != SW__NONE) return x == j->gone;
    return (sw__flags(j->ix, x) & SW__F_DELETED) != 0;
}

/* Search `layer` for neighbours of p (as an insert would, from the entry
 * point) and add those not leaving to cand[0..n), skipping ones already
 * there; returns the new n. */
static size_t search_more(const repair_job *j, sw__ctx *c, uint32_t p, int layer,
                          sw__cand *cand, size_t n) {
    const sw_index *ix = j->ix;
    int top;
    uint32_t entry = sw__top(ix, &top);
    if (entry == SW__NONE || top < layer) return n;
    const void *q = sw__node_query(ix, p, c->nq);
    sw__cand cur = {ix->dist(q, sw__vec(ix, entry), ix->code_n), entry};
    for (int l = top; l > layer; l--) sw__greedy(ix, q, &cur, l);
    /* p is not excluded from the walk: a node on the layers above is where
     * the descent lands, and its own list is the natural start. */
    size_t got = sw__search_layer(ix, c, q, &cur, 1, j->ef, layer, SW__NONE);
    for (size_t i = 0; i < got && n < j->cand_cap; i++) {
        uint32_t x = c->pool[i].id;
        if (x == p || leaving(j, x) || (sw__flags(ix, x) & SW__F_FREE)) continue;
        bool dup = false;
        for (size_t t = 0; t < n && !dup; t++) dup = cand[t].id == x;
        if (!dup) cand[n++] = c->pool[i];
    }
    return n;
}

/*
 * Repair p's list on `layer`: keep its links that stay, offer the links of
 * those that leave, re-select if they overflow, search if too few.
 * `cand` holds j->cand_cap entries.  Returns the number of orphans written
 * (layer 0 only).
 */
static size_t repair(const repair_job *j, sw__ctx *c, uint32_t p, int layer, sw__cand *cand,
                     uint32_t *orphans) {
    const sw_index *ix = j->ix;
    const void *vp = sw__vec(ix, p);
    /* Acquire loads: in sw_compact another worker may be adding a link to
     * p (the reverse links below); a link added after this read may be
     * dropped by the rewrite, which keeps the in-degrees right. */
    const uint32_t *lp = sw__links(ix, p, layer);
    uint32_t np = SW__LOAD(&lp[0]), mine[SW_MAX_M0];
    for (uint32_t i = 0; i < np; i++) mine[i] = SW__LOAD(&lp[1 + i]);
    bool any = false;
    for (uint32_t i = 0; i < np && !any; i++) any = leaving(j, mine[i]);
    if (!any) return 0;
    sw__ctx_new_epoch(c);
    sw__visit(c, p);
    size_t n = 0;
    for (uint32_t i = 0; i < np && n < j->cand_cap; i++) {
        uint32_t x = mine[i];
        if (!leaving(j, x)) {
            if (sw__visit(c, x)) cand[n++] = (sw__cand){sw__rdist(ix, vp, sw__vec(ix, x)), x};
            continue;
        }
        sw__visit(c, x);
        const uint32_t *lx = sw__links(ix, x, layer);
        uint32_t nx = lx[0];
        for (uint32_t t = 1; t <= nx && n < j->cand_cap; t++) {
            uint32_t y = lx[t];
            if (leaving(j, y) || !sw__visit(c, y)) continue;
            cand[n++] = (sw__cand){sw__rdist(ix, vp, sw__vec(ix, y)), y};
        }
    }
    /* Search for more candidates when the list is short, and always in
     * sw_compact: with half of 200,000 make_synth vectors deleted, the
     * neighbours of deleted neighbours alone left recall@10 at ef 16 0.020
     * below a fresh build of the survivors (0.943 against 0.963); with a
     * search per repaired list, 0.010 below, for 9 s of compaction instead
     * of 1.4 (on 2 threads; the fresh build takes 5).  sw_delete repairs
     * a few lists at a time, each with the links of a node that is still
     * whole, and does not need it (bench/README.md). */
    if (n < ix->M / 2 || j->gone == SW__NONE) n = search_more(j, c, p, layer, cand, n);
    qsort(cand, n, sizeof *cand, sw__cand_cmp);
    size_t maxdeg = sw__max_degree(ix, layer), r = n;
    sw__cand sel[SW_MAX_M0];
    if (n > maxdeg) {
        r = sw__select_neighbors(ix, cand, n, maxdeg, sel);
        /* Keep the list as long as it was, with the nearest of the pruned
         * candidates.  The heuristic alone leaves a list of about M; on
         * 50,000 make_synth vectors with half deleted, that lost 0.028 of
         * recall@10 at ef 10 against a fresh build of the survivors (0.932
         * against 0.960); refilled, the repaired graph beats the fresh one
         * (0.980) at the same speed. */
        size_t want = np;
        if (want > maxdeg) want = maxdeg;
        for (size_t i = 0; i < n && r < want; i++) {
            bool in = false;
            for (size_t t = 0; t < r && !in; t++) in = sel[t].id == cand[i].id;
            if (!in) sel[r++] = cand[i];
        }
    } else {
        memcpy(sel, cand, n * sizeof *sel);
    }
    uint32_t late[SW_MAX_M0];
    size_t nlate;
    size_t norph = replace_list(ix, p, layer, sel, r, mine, np, layer == 0 ? orphans : NULL, late,
                                &nlate);
    for (size_t i = 0; i < nlate; i++)
        sw__add_link(ix, p, late[i], sw__rdist(ix, vp, sw__vec(ix, late[i])), layer, cand);
    /* New links go both ways, as an insert makes them (Algorithm 1): a node
     * whose in-links came from deleted nodes gets them back from the
     * nodes that now link to it.  Without this, half of 200,000 make_synth
     * vectors deleted by sw_compact left recall@10 at ef 16 0.024 below a
     * fresh build of the survivors (0.943 against 0.967); with it, 0.005
     * below, at 0.9 of the fresh build's speed at equal ef. */
    for (size_t i = 0; i < r; i++)
        if (!sw__in_list(mine, np, sel[i].id)) sw__add_link(ix, sel[i].id, p, sel[i].dist, layer, cand);
    return norph;
}

/* ==== The entry point ==== */

/* If the entry point is leaving, make the first node of the highest level
 * that stays the entry (the top level drops when none stays there).  A
 * node of d's top level that d links to is tried first, saving a scan. */
static void move_entry(const repair_job *j) {
    sw_index *ix = j->ix;
    int top;
    uint32_t entry = sw__top(ix, &top);
    if (entry == SW__NONE || !leaving(j, entry)) return;
    uint32_t best = SW__NONE;
    int best_level = -1;
    const uint32_t *l = sw__links(ix, entry, top);
    for (uint32_t i = 1; i <= l[0] && best == SW__NONE; i++)
        if (!leaving(j, l[i])) best = l[i], best_level = top;
    for (uint32_t s = 0; s < ix->count && best_level < top; s++) {
        if (sw__flags(ix, s) & SW__F_FREE || leaving(j, s)) continue;
        if (sw__level(ix, s) > best_level) best = s, best_level = sw__level(ix, s);
    }
    pthread_mutex_lock(&ix->top_lock);
    sw__set_top(ix, best, best_level);
    pthread_mutex_unlock(&ix->top_lock);
}

/* ==== sw_delete ==== */

/* Find the nodes whose layer-0 list holds d, into out[] (room for the
 * in-degree of d).  A search from d first; a full scan if it falls short. */
/* Look at p once (visited marks of c): if its layer-0 list holds d, p
 * goes to out[]. */
static void check_inlink(const sw_index *ix, sw__ctx *c, uint32_t p, uint32_t d, uint32_t *out,
                         size_t *n) {
    if (!sw__visit(c, p)) return;
    const uint32_t *l = sw__links0(ix, p);
    if (sw__in_list(l + 1, l[0], d)) out[(*n)++] = p;
}

static size_t inlinks0(const repair_job *j, sw__ctx *c, uint32_t d, uint32_t *out, bool exact) {
    const sw_index *ix = j->ix;
    uint32_t want = *sw__indeg_ptr(ix, d);
    size_t n = 0;
    if (want == 0) return 0;
    sw__cand seed = {0.0f, d};
    const void *qd = sw__node_query(ix, d, c->nq);
    size_t got = sw__search_layer(ix, c, qd, &seed, 1, j->ef, 0, SW__NONE);
    /* The nearest nodes first, then d's own neighbours and theirs: a link
     * kept as a node's last in-link (insert.c), or given to an orphan by
     * one of its neighbours, can come from further out than the nearest. */
    sw__ctx_new_epoch(c);
    sw__visit(c, d);
    for (size_t i = 0; i < got && n < want; i++) check_inlink(ix, c, c->pool[i].id, d, out, &n);
    const uint32_t *ld = sw__links0(ix, d);
    for (uint32_t i = 1; i <= ld[0] && n < want; i++) check_inlink(ix, c, ld[i], d, out, &n);
    for (uint32_t i = 1; i <= ld[0] && n < want; i++) {
        const uint32_t *l1 = sw__links0(ix, ld[i]);
        for (uint32_t t = 1; t <= l1[0] && n < want; t++) check_inlink(ix, c, l1[t], d, out, &n);
    }
    if (n == want || !exact) return n;
    /* A wider search (the pool has room for 4 ef) before a full scan. */
    got = sw__search_layer(ix, c, qd, &seed, 1, 4 * j->ef, 0, SW__NONE);
    n = 0;
    sw__ctx_new_epoch(c);
    sw__visit(c, d);
    for (size_t i = 0; i < got && n < want; i++) check_inlink(ix, c, c->pool[i].id, d, out, &n);
    if (n == want) return n;
    n = 0;
    sw__ctx_new_epoch(c);
    sw__visit(c, d);
    for (uint32_t p = 0; p < ix->count && n < want; p++)
        if (!(sw__flags(ix, p) & SW__F_FREE)) check_inlink(ix, c, p, d, out, &n);
    return n;
}

/* Re-attach the nodes of orphans[0..n) still without a layer-0 in-link
 * (d, which is leaving, excepted). */
static void adopt_all(const sw_index *ix, uint32_t d, const uint32_t *orphans, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (orphans[i] != d && SW__LOAD(sw__indeg_ptr(ix, orphans[i])) == 0)
            sw__adopt_orphan(ix, orphans[i], d);
}

/* Remove `label` from the map (under label_lock). */
static void forget_label(sw_index *ix, uint64_t label) {
    pthread_rwlock_wrlock(&ix->label_lock);
    sw__labels_remove(&ix->labels, label);
    pthread_rwlock_unlock(&ix->label_lock);
}

/* Scratch of a repair: candidates then orphans, in the context's work. */
static size_t cand_cap_for(const sw_index *ix) { return 2 * (size_t)ix->M0 + ix->ef_construction; }

/*
 * Take node d out of the graph: repair every list that points to it, move
 * the entry point if it is d, re-attach what loses its last in-link.  For
 * a deletion (exact) every such list is found, d's own lists are left as
 * they are (a search standing on d still has a way on) and stop counting
 * in in-degrees; for an update (not exact) see sw__unlink.  The caller holds save_lock alone.
 * SW_ENOMEM before any change.
 */
static sw_status unlink_node(sw_index *ix, uint32_t d, bool exact) {
    repair_job j = {ix, d, cand_cap_for(ix),
                    ix->ef_construction > ix->M0 ? ix->ef_construction : ix->M0};
    uint32_t indeg = *sw__indeg_ptr(ix, d);
    /* work: candidates, orphans (M0 at a time), in-links */
    size_t work = j.cand_cap + ((size_t)ix->M0 + 1) / 2 + (indeg + 1) / 2 + 1;
    sw__ctx *c = sw__ctx_acquire(ix, 4 * j.ef, work);
    if (!c) return SW_ENOMEM;
    sw__cand *cand = c->work;
    uint32_t *orphans = (uint32_t *)(void *)(cand + j.cand_cap);
    uint32_t *in = orphans + ix->M0;

    move_entry(&j);
    int level = sw__level(ix, d);
    /* Layer 0: the in-links, found through the in-degree. */
    size_t nin = inlinks0(&j, c, d, in, exact);
    for (size_t i = 0; i < nin; i++) {
        size_t norph = repair(&j, c, in[i], 0, cand, orphans);
        adopt_all(ix, d, orphans, norph);
    }
    /* Upper layers: scanned (about count / M nodes have any). */
    if (level > 0)
        for (uint32_t p = 0; p < ix->count; p++) {
            int lp = sw__level(ix, p);
            if (lp == 0 || p == d || sw__flags(ix, p) & SW__F_FREE) continue;
            for (int l = 1; l <= lp && l <= level; l++) {
                const uint32_t *lk = sw__links(ix, p, l);
                if (sw__in_list(lk + 1, lk[0], d)) repair(&j, c, p, l, cand, NULL);
            }
        }
    /* A deleted node's own links stop counting; then re-attach what lost
     * its last in-link (never to d, which is leaving).  An update keeps
     * d's lists as they are: the re-insertion rewrites them one layer at a
     * time, with the usual accounting (insert.c), and a search that stands
     * on d meanwhile still has a way on.  (Emptying them here left such a
     * search with d alone: a ThreadSanitizer run of the stress test saw a
     * search return 1 result of 10.) */
    if (exact) {
        const uint32_t *ld = sw__links0(ix, d);
        size_t norph = 0;
        for (uint32_t i = 1; i <= ld[0]; i++)
            if (__atomic_sub_fetch(sw__indeg_ptr(ix, ld[i]), 1u, __ATOMIC_RELAXED) == 0)
                orphans[norph++] = ld[i];
        adopt_all(ix, d, orphans, norph);
    }
    sw__ctx_release(ix, c);
    return SW_OK;
}

sw_status sw__unlink(sw_index *ix, uint32_t d) {
    /* Exactness is not needed here: the slot stays this node's, so a list
     * the search misses keeps a valid link, only one chosen for the old
     * position; an update skips the wider search and the scan, and keeps
     * d's own lists for the re-insertion to rewrite. */
    return unlink_node(ix, d, false);
}

sw_status sw_delete(sw_index *ix, uint64_t label) {
    if (!ix) return sw__fail(SW_ENULL, "sw_delete: index is NULL");
    if (ix->readonly) return sw__readonly_fail("sw_delete");
    pthread_rwlock_wrlock(&ix->save_lock);
    sw_status st = SW_OK;
    uint32_t d = find_label(ix, label);
    if (d == SW__NONE) {
        st = sw__fail(SW_ENOTFOUND, "sw_delete: label %llu", (unsigned long long)label);
        goto out;
    }
    if ((st = reserve_ring(ix, 1)) != SW_OK) goto out;
    /* Searches stop returning it now. */
    uint8_t was = __atomic_fetch_or(sw__flags_ptr(ix, d), (uint8_t)SW__F_DELETED, __ATOMIC_SEQ_CST);
    if (!(was & SW__F_DELETED)) __atomic_fetch_add(&ix->ndeleted, 1, __ATOMIC_SEQ_CST);
    if ((st = unlink_node(ix, d, true)) != SW_OK) {
        if (!(was & SW__F_DELETED)) {
            __atomic_fetch_and(sw__flags_ptr(ix, d), (uint8_t)~SW__F_DELETED, __ATOMIC_SEQ_CST);
            __atomic_fetch_sub(&ix->ndeleted, 1, __ATOMIC_SEQ_CST);
        }
        goto out;
    }
    forget_label(ix, label);
    uint64_t e = __atomic_fetch_add(&ix->epoch, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&ix->grow_lock);
    release_slot(ix, d, e);
    pthread_mutex_unlock(&ix->grow_lock);
out:
    pthread_rwlock_unlock(&ix->save_lock);
    return st;
}

/* ==== sw_compact ==== */

#define COMPACT_ROWS 256

typedef struct compact_job {
    repair_job r;
    uint32_t count;
    pthread_mutex_t lock; /* guards the context stack */
    sw__ctx **ctx;
    size_t nctx;
} compact_job;

static void compact_task(void *arg, size_t task) {
    compact_job *j = arg;
    pthread_mutex_lock(&j->lock);
    sw__ctx *c = j->ctx[--j->nctx];
    pthread_mutex_unlock(&j->lock);
    const sw_index *ix = j->r.ix;
    sw__cand *cand = c->work;
    uint32_t end = (uint32_t)((task + 1) * COMPACT_ROWS < j->count ? (task + 1) * COMPACT_ROWS : j->count);
    for (uint32_t p = (uint32_t)(task * COMPACT_ROWS); p < end; p++) {
        if (sw__flags(ix, p)) continue; /* leaving, or FREE */
        for (int l = 0; l <= sw__level(ix, p); l++) repair(&j->r, c, p, l, cand, NULL);
    }
    pthread_mutex_lock(&j->lock);
    j->ctx[j->nctx++] = c;
    pthread_mutex_unlock(&j->lock);
}

sw_status sw_compact(sw_index *ix, size_t threads) {
    if (!ix) return sw__fail(SW_ENULL, "sw_compact: index is NULL");
    if (ix->readonly) return sw__readonly_fail("sw_compact");
    if (threads > SW_MAX_THREADS)
        return sw__fail(SW_EINVAL, "sw_compact: threads is %zu, at most %u", threads, SW_MAX_THREADS);
    pthread_rwlock_wrlock(&ix->save_lock);
    sw_status st = SW_OK;
    size_t ndead = ix->ndeleted;
    compact_job j;
    memset(&j, 0, sizeof j);
    if (ndead == 0) goto out;
    j.r = (repair_job){ix, SW__NONE, cand_cap_for(ix),
                       ix->ef_construction > ix->M0 ? ix->ef_construction : ix->M0};
    j.count = ix->count;
    size_t nt = threads ? threads : sw__cpu_count();
    if (nt > SW_MAX_THREADS) nt = SW_MAX_THREADS;
    if ((st = reserve_ring(ix, ndead)) != SW_OK) goto out;
    if (pthread_mutex_init(&j.lock, NULL) != 0) {
        st = sw__fail(SW_ENOMEM, "sw_compact: initialising a mutex");
        goto out;
    }
    j.ctx = sw__alloc(&ix->mem, nt * sizeof *j.ctx, sizeof(void *));
    if (!j.ctx) {
        st = sw__fail(SW_ENOMEM, "sw_compact: %zu contexts", nt);
        goto unlock;
    }
    for (; j.nctx < nt; j.nctx++)
        if (!(j.ctx[j.nctx] = sw__ctx_acquire(ix, j.r.ef, j.r.cand_cap))) {
            st = SW_ENOMEM;
            goto release;
        }

    move_entry(&j.r);
    sw__parallel(ix, nt, ((size_t)j.count + COMPACT_ROWS - 1) / COMPACT_ROWS, compact_task, &j);

    /* The leaving nodes' own links stop counting; labels go; then orphans. */
    for (uint32_t s = 0; s < j.count; s++) {
        if (sw__flags(ix, s) != SW__F_DELETED) continue;
        const uint32_t *l = sw__links0(ix, s);
        for (uint32_t i = 1; i <= l[0]; i++) __atomic_fetch_sub(sw__indeg_ptr(ix, l[i]), 1u, __ATOMIC_RELAXED);
        forget_label(ix, *sw__label_ptr(ix, s));
    }
    for (uint32_t s = 0; s < j.count; s++)
        if (sw__flags(ix, s) == 0 && SW__LOAD(sw__indeg_ptr(ix, s)) == 0 &&
            sw__top(ix, &(int){0}) != s)
            sw__adopt_orphan(ix, s, SW__NONE);
    uint64_t e = __atomic_fetch_add(&ix->epoch, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&ix->grow_lock);
    for (uint32_t s = 0; s < j.count; s++)
        if (sw__flags(ix, s) == SW__F_DELETED) release_slot(ix, s, e);
    pthread_mutex_unlock(&ix->grow_lock);
release:
    while (j.nctx) sw__ctx_release(ix, j.ctx[--j.nctx]);
    sw__free(&ix->mem, j.ctx, nt * sizeof *j.ctx);
unlock:
    pthread_mutex_destroy(&j.lock);
out:
    /* and any node left unreachable, by the repairs or by earlier adds
     * (insert.c, "Islands") is linked back in */
    if (st == SW_OK) {
        __atomic_store_n(&ix->added_since_pass, 0, __ATOMIC_RELAXED);
        (void)sw__reconnect(ix);
    }
    pthread_rwlock_unlock(&ix->save_lock);
    return st;
}
