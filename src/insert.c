/*
 * insert.c — adding a vector: Algorithms 1, 3 and 4 of Malkov & Yashunin,
 * and updates of an existing label.
 *
 * Insert (Algorithm 1): draw a level l with mL = 1/ln(M); descend greedily
 * from the entry point to layer l+1; on each layer l..0 run the ef_construction
 * layer search (search.c), seeding each layer with the whole result set of
 * the layer above (the paper's "ep <- W"; hnswlib seeds with one point);
 * choose M neighbours with the heuristic (Algorithm 4) and link both ways.
 * A neighbour whose list overflows (more than M, or M0 on layer 0) is
 * shrunk with the same heuristic over its old links plus the newcomer.
 * The node becomes the entry point if its level is the highest so far.
 *
 * Heuristic (Algorithm 4): walk the candidates nearest first and keep one
 * only if it is nearer to the base than to every neighbour already kept;
 * this keeps links pointing in diverse directions, which is what makes the
 * graph navigable on clustered data.  Both of the paper's options are here:
 * extendCandidates (add the candidates' own neighbours first) and
 * keepPrunedConnections (fill up to M with the nearest discarded ones); both
 * default off, as in the paper's experiments and hnswlib.
 *
 * Update (adding a label that exists): a deletion and a re-insertion in
 * the same slot.  The lists that point to the node are repaired as
 * delete.c repairs them for a deletion (their other links plus the node's
 * links as candidates, the heuristic to choose), the new vector is copied
 * in, and the node is inserted again at its old level (kept, so the
 * upper-layer allocation does not change), which rewrites its own lists
 * layer by layer; until then they keep their old links, so a search
 * standing on the node is never left at a dead end.
 * The graph is then the one an insert of the new vector would have made:
 * no list keeps a link chosen for the old position.  An earlier version
 * only re-selected the lists of the node's own neighbours; after updating
 * half of 50,000 make_synth vectors to new places it trailed a fresh
 * build by 0.04 of recall@10 at ef 10 and 0.018 at ef 16, where this one
 * is within 0.006 (bench/README.md, --mode update, for the figures at
 * 200,000).  The unlinking needs the graph to itself (delete.c), so an
 * update takes save_lock alone: updates wait for adds in flight.
 *
 * Failure atomicity: everything that can fail (the scratch context, the
 * vector check, the upper-layer links, the label map room, the chunk)
 * happens before the node is published.  The level comes from the label
 * (sw__level_for), so a failed add does not change what later adds do.
 *
 * Threading: any number of adds run at once, with searches.  A new node's
 * record is written under grow_lock (slot hand-out) and label_lock (so two
 * adds of one label agree on which is the insert), before any link points
 * to it.  Each list change holds the lock of the node whose list it is, and
 * only that one: linking a node takes its neighbours' locks one after the
 * other, never two at once, so there is no lock order to get wrong.  A node
 * whose level raises the top holds top_lock for its whole insert (rare: a
 * handful of times per index).  An update copies its new vector with the
 * gate closed (internal.h), so no search computes a distance from a vector
 * half copied, then links the node like an insert.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ==== Neighbour selection (Algorithm 4) ==== */

int sw__cand_cmp(const void *pa, const void *pb) {
    const sw__cand *a = pa, *b = pb;
    if (a->dist < b->dist) return -1;
    if (a->dist > b->dist) return 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* From cand[0..n), sorted ascending by distance to the base, choose at most
 * m into out[].  Returns how many. */
size_t sw__select_neighbors(const sw_index *ix, const sw__cand *cand, size_t n, size_t m,
                            sw__cand *out) {
    sw__cand copies[SW_MAX_M0];
    size_t r = 0, i = 0, ncopies = 0;
    for (; i < n && r < m; i++) {
        const void *v = sw__vec(ix, cand[i].id);
        bool keep = true;
        for (size_t j = 0; j < r; j++) {
            const void *w = sw__vec(ix, out[j].id);
            float d = sw__rdist(ix, v, w);
            if (d < cand[i].dist) {
                keep = false;
                break;
            }
            /* An exact copy of a kept neighbour adds no direction.  Copies
             * tie at every distance, so without this they fill each other's
             * lists and wall off the vectors around them.  They still fill
             * what room is left at the end, so an index of copies stays
             * connected. */
            if (d == cand[i].dist && memcmp(v, w, ix->code_bytes) == 0) {
                keep = false;
                if (ncopies < m) copies[ncopies++] = cand[i];
                break;
            }
        }
        if (keep) out[r++] = cand[i];
    }
    if (ix->keep_pruned && r < m) {
        /* out[0..kept) is a subsequence of cand[0..i): the rest were pruned */
        size_t kept = r, p = 0;
        for (size_t j = 0; j < i && r < m; j++) {
            if (p < kept && out[p].id == cand[j].id)
                p++;
            else
                out[r++] = cand[j];
        }
    }
    if (!ix->keep_pruned) /* keep_pruned has already put the copies back */
        for (size_t j = 0; j < ncopies && r < m; j++) out[r++] = copies[j];
    return r;
}

/* ==== Writing lists; keeping every node reachable ==== */

/*
 * The heuristic can leave a node with no layer-0 in-links: every node that
 * linked to it found a "better" neighbour in the same direction and dropped
 * it.  Such a node can never be found by a search, which for a user is a
 * lost vector.  hnswlib accepts this (on our 20,000 x 32 clustered test set
 * under inner product, 1,364 nodes ended up unreachable before this fix);
 * we keep a layer-0 in-degree per node and never drop a node's last in-link.
 *
 * With concurrent writers the rule has to hold against a race: two lists
 * dropping the last two in-links of one node at the same moment.  So an
 * in-link is given up only by a compare-and-swap that lowers the count from
 * at least 2 (indeg_release); a list that may not drop a node keeps it, in
 * place of its furthest newly added entry.  One always exists: a full new
 * list that leaves out an old entry holds more new entries than it leaves
 * out old ones.  A count is raised (once the list is settled) before the
 * link it counts is stored, and lowered before the link is removed, so it
 * never claims an in-link that will not be there.
 *
 * Except under inner product.  There the heuristic keeps few links and
 * the nodes of large norm are everyone's nearest: a hub's list, once full
 * of protected last in-links of small-norm nodes, turns every newcomer
 * away and loses the hub-to-hub links the searches travel on.  On 1,000
 * uniform 16-d vectors (hnswlib's own pickle test, M 32, ef 400, k 25)
 * recall fell to 0.28-0.82 on some seeds where hnswlib gets 0.93-0.99;
 * without the protection we match hnswlib seed for seed (0.93-1.0).  So
 * under inner product a last in-link is given up like any other, as
 * hnswlib does; on the clustered 20,000 x 32 test set that leaves 132
 * nodes unreachable (0.7%, small-norm vectors that are rarely anyone's
 * top result) and raises recall@10 at ef 200 from 0.9965 to 0.9975; on
 * the 1,000 uniform vectors above, 309 (hnswlib's graph of the same data
 * reaches only 394 nodes from its entry point on layer 0).  sw_verify does not
 * count these as damage under inner product; sw_get_stats counts them.
 * Orphans of a new node are still adopted (sw__adopt_orphan).
 */

static void indeg_add(const sw_index *ix, uint32_t x, int delta) {
    __atomic_fetch_add(sw__indeg_ptr(ix, x), (uint32_t)delta, __ATOMIC_RELAXED);
}

/* Give up one layer-0 in-link of x, unless it is the last (under inner
 * product, even then: see above). */
static bool indeg_release(const sw_index *ix, uint32_t x) {
    uint32_t *p = sw__indeg_ptr(ix, x);
    if (!sw__keeps_reachable(ix)) {
        __atomic_fetch_sub(p, 1u, __ATOMIC_RELAXED);
        return true;
    }
    uint32_t d = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (d > 1)
        if (__atomic_compare_exchange_n(p, &d, d - 1, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return true;
    return false;
}

/* Replace the list of `base` on `layer` by sel[0..r).  The caller holds
 * base's lock.  On layer 0 an old entry that is its node's last in-link
 * stays (see above). */
static void write_links(const sw_index *ix, uint32_t base, int layer, const sw__cand *sel,
                        size_t r) {
    uint32_t *links = sw__links(ix, base, layer);
    uint32_t nold = links[0], old[SW_MAX_M0], ids[SW_MAX_M0];
    float dist[SW_MAX_M0];
    memcpy(old, links + 1, nold * sizeof *old);
    for (size_t i = 0; i < r; i++) {
        ids[i] = sel[i].id;
        dist[i] = sel[i].dist;
    }
    if (layer == 0) {
        /* First settle which old entries go, then count the new ones: a
         * count raised for an entry that is then displaced would, for a
         * moment, vouch for an in-link that never gets stored, and another
         * writer could release the node's real last one against it. */
        for (uint32_t j = 0; j < nold; j++) {
            uint32_t x = old[j];
            if (sw__in_list(ids, r, x) || indeg_release(ix, x)) continue;
            if (r < ix->M0) {
                ids[r] = x;
                dist[r++] = -INFINITY; /* never a victim below */
                continue;
            }
            size_t v = r;
            for (size_t i = 0; i < r; i++)
                if (!sw__in_list(old, nold, ids[i]) && (v == r || dist[i] > dist[v])) v = i;
            if (v == r) continue; /* impossible, see above; x then stays counted */
            ids[v] = x;
            dist[v] = -INFINITY;
        }
        for (size_t i = 0; i < r; i++)
            if (!sw__in_list(old, nold, ids[i])) indeg_add(ix, ids[i], 1);
    }
    for (size_t i = 0; i < r; i++) SW__STORE(&links[1 + i], ids[i]);
    SW__STORE(&links[0], (uint32_t)r);
}

/* Append s to a list with room (the caller holds its node's lock): the
 * count first, then the id, then the length readers go by. */
static void append_link(const sw_index *ix, uint32_t *links, uint32_t s, int layer) {
    uint32_t deg = links[0];
    if (layer == 0) indeg_add(ix, s, 1);
    SW__STORE(&links[1 + deg], s);
    SW__STORE(&links[0], deg + 1);
}

/* Re-select the list of `base` on `layer` from cand[0..n) (unsorted).
 * The caller holds base's lock. */
static void reselect(const sw_index *ix, uint32_t base, int layer, sw__cand *cand, size_t n) {
    sw__cand sel[SW_MAX_M0];
    qsort(cand, n, sizeof *cand, sw__cand_cmp);
    size_t r = sw__select_neighbors(ix, cand, n, sw__max_degree(ix, layer), sel);
    write_links(ix, base, layer, sel, r);
}

/* Add the link e -> s (distance d) on `layer`, shrinking e's list with the
 * heuristic when it is full (Algorithm 1, lines 11-16).  `scratch` holds
 * at least M0 + 1 candidates. */
void sw__add_link(const sw_index *ix, uint32_t e, uint32_t s, float d, int layer,
                  sw__cand *scratch) {
    sw__node_lock(ix, e);
    uint32_t *links = sw__links(ix, e, layer);
    uint32_t deg = links[0];
    if (sw__in_list(links + 1, deg, s)) {
        /* already linked */
    } else if (deg < sw__max_degree(ix, layer)) {
        append_link(ix, links, s, layer);
    } else {
        const void *ve = sw__vec(ix, e);
        for (uint32_t j = 0; j < deg; j++)
            scratch[j] = (sw__cand){sw__rdist(ix, ve, sw__vec(ix, links[1 + j])), links[1 + j]};
        scratch[deg] = (sw__cand){d, s};
        reselect(ix, e, layer, scratch, deg + 1);
    }
    sw__node_unlock(ix, e);
}

/* Furthest first; among equals, the earlier position in the list. */
static int far_first(const void *pa, const void *pb) {
    const sw__cand *a = pa, *b = pb;
    if (a->dist > b->dist) return -1;
    if (a->dist < b->dist) return 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Make e's layer-0 list point to s: appended if there is room, else in
 * place of e's furthest link whose node has another in-link.  False when
 * every link e has is some node's last. */
static bool adopt_into(const sw_index *ix, uint32_t e, uint32_t s) {
    sw__node_lock(ix, e);
    uint32_t *links = sw__links(ix, e, 0);
    uint32_t deg = links[0];
    bool done = sw__in_list(links + 1, deg, s);
    if (!done && deg < ix->M0) {
        append_link(ix, links, s, 0);
        done = true;
    }
    /* Otherwise replace the furthest link whose node has another in-link:
     * furthest first, each tried with indeg_release. */
    if (!done) {
        const void *ve = sw__vec(ix, e);
        sw__cand by[SW_MAX_M0];
        for (uint32_t j = 0; j < deg; j++)
            by[j] = (sw__cand){sw__rdist(ix, ve, sw__vec(ix, links[1 + j])), j + 1};
        qsort(by, deg, sizeof *by, far_first); /* .id is the position in the list */
        for (uint32_t j = 0; j < deg && !done; j++) {
            if (!indeg_release(ix, links[by[j].id])) continue;
            indeg_add(ix, s, 1);
            SW__STORE(&links[by[j].id], s);
            done = true;
        }
    }
    sw__node_unlock(ix, e);
    return done;
}

/*
 * `s` has no layer-0 in-link after being linked (every neighbour pruned it).
 * Make the nearest neighbour that can spare a link point to it.
 */
void sw__adopt_orphan(const sw_index *ix, uint32_t s, uint32_t skip) {
    uint32_t mine[SW_MAX_M0];
    const uint32_t *ml = sw__links(ix, s, 0);
    uint32_t nmine = SW__LOAD(&ml[0]);
    for (uint32_t i = 0; i < nmine; i++) mine[i] = SW__LOAD(&ml[1 + i]);
    for (uint32_t i = 0; i < nmine; i++) {
        if (SW__LOAD(sw__indeg_ptr(ix, s)) > 0) return;
        if (mine[i] != skip && adopt_into(ix, mine[i], s)) return;
    }
}

/*
 * Islands.  The last-in-link rule leaves every node an in-link, but an
 * in-link from a node that is itself unreachable does not help: a few
 * nodes can end up linking only among themselves, most of all when
 * threads insert side by side and each prunes against lists the other is
 * rewriting.  Measured on make_synth data (M 16, ef_construction 100):
 * none of 200,000 built on one thread, 2 of 200,000 on two, 32 of
 * 1,000,000 on two.  A vector no search reaches is lost to its user, so
 * after a large batch (batch.c) the graph is walked from the entry point
 * and each node not reached is linked from the nearest node that is: a
 * search for the node's own vector finds that node, and adopt_into gives
 * it the link.  A link replaced to make room can strand its node in turn
 * (its other in-link may come from an island), so the walk is repeated,
 * up to four rounds.
 */
size_t sw__reconnect(sw_index *ix) {
    if (!sw__keeps_reachable(ix)) return 0; /* inner product: see above */
    int top;
    uint32_t entry = sw__top(ix, &top), count = ix->count;
    if (entry == SW__NONE) return 0;
    size_t ef = ix->ef_construction < count ? ix->ef_construction : count;
    uint8_t *seen = malloc(count);
    uint32_t *stack = malloc((size_t)count * sizeof *stack);
    sw__ctx *c = sw__ctx_acquire(ix, ef, 0);
    size_t lost = SIZE_MAX;
    if (!seen || !stack || !c) goto out;
    for (int round = 0;; round++) {
        size_t unreached = sw__mark_reachable(ix, count, seen, stack, NULL);
        if (unreached == 0 || round == 4) {
            lost = unreached;
            break;
        }
        for (uint32_t u = 0; u < count; u++) {
            if (seen[u] || (sw__flags(ix, u) & SW__F_FREE)) continue;
            const void *q = sw__node_query(ix, u, c->nq);
            sw__cand cur = {ix->dist(q, sw__vec(ix, entry), ix->code_n), entry};
            for (int l = top; l > 0; l--) sw__greedy(ix, q, &cur, l);
            size_t n = sw__search_layer(ix, c, q, &cur, 1, ef, 0, u);
            bool linked = false;
            /* every node the walk found is reachable: it was walked to */
            for (size_t i = 0; i < n && !linked; i++)
                linked = seen[c->pool[i].id] && adopt_into(ix, c->pool[i].id, u);
            if (linked) sw__reach_from(ix, count, u, seen, stack); /* its island too */
        }
    }
out:
    if (c) sw__ctx_release(ix, c);
    free(seen);
    free(stack);
    return lost;
}

/* ==== Linking a node into one layer ==== */

/* An add's fixed sizes and work space, carved from the context's work
 * array: seeds for the top layer searched, the search result of every
 * layer (kept until linking, see link_node), selection scratch. */
typedef struct plan {
    size_t ef, nseeds, scratch_cap, levels;
    sw__cand *seeds, *found, *scratch;
} plan;

/*
 * Given the layer search result found[0..n), choose the neighbours of
 * `slot` on `layer`, write its list and link back.
 */
static void link_layer(const sw_index *ix, sw__ctx *c, const plan *p, uint32_t slot, int layer,
                       const sw__cand *found, size_t n) {
    sw__cand *scratch = p->scratch;
    const sw__cand *cand = found;
    size_t ncand = n;
    if (ix->extend_candidates) {
        /* Algorithm 4, lines 3-6: add the candidates' neighbours. */
        sw__ctx_new_epoch(c);
        sw__visit(c, slot);
        for (size_t i = 0; i < n; i++) {
            scratch[i] = found[i];
            sw__visit(c, found[i].id);
        }
        for (size_t i = 0; i < n && ncand < p->scratch_cap; i++) {
            const uint32_t *l = sw__links(ix, found[i].id, layer);
            uint32_t deg = SW__LOAD(&l[0]);
            for (uint32_t j = 1; j <= deg && ncand < p->scratch_cap; j++) {
                uint32_t a = SW__LOAD(&l[j]);
                if (a == slot || !sw__visit(c, a)) continue;
                scratch[ncand++] = (sw__cand){ix->dist(c->qv, sw__vec(ix, a), ix->code_n), a};
            }
        }
        qsort(scratch, ncand, sizeof *scratch, sw__cand_cmp);
        cand = scratch;
    }
    sw__cand sel[SW_MAX_M0];
    size_t r = sw__select_neighbors(ix, cand, ncand, ix->M, sel);
    sw__node_lock(ix, slot);
    write_links(ix, slot, layer, sel, r);
    sw__node_unlock(ix, slot);
    for (size_t i = 0; i < r; i++) sw__add_link(ix, sel[i].id, slot, sel[i].dist, layer, scratch);
    if (layer == 0 && SW__LOAD(sw__indeg_ptr(ix, slot)) == 0) sw__adopt_orphan(ix, slot, SW__NONE);
}

/* The candidate list size while inserting: ef_construction, at least M (a
 * node needs M candidates to choose from), and at most the slots that exist
 * (a larger list finds nothing more, and would only size scratch space by
 * an unbounded parameter).  Fixed once per add: the index may grow while it
 * runs, but the scratch space was sized for this. */
static size_t build_ef(const sw_index *ix) {
    size_t ef = ix->ef_construction > ix->M ? ix->ef_construction : ix->M;
    size_t cap = sw__capacity(ix);
    if (cap < sw__chunk_slots(ix)) cap = sw__chunk_slots(ix); /* empty: the first chunk */
    return ef < cap ? ef : cap;
}

/*
 * Search layers top..0 from p->seeds[0..nseeds), each layer seeded with
 * the whole result of the one above, then link `slot` on layers 0..top.
 * Linking bottom-up is for concurrent searches: a node becomes reachable on
 * a layer when it is linked there, and one reachable on layer 1 before it
 * has layer-0 links would be a dead end for a search descending onto it.
 * `slot` holds its vector (copied in c->query too).
 */
static void link_node(const sw_index *ix, sw__ctx *c, const plan *p, uint32_t slot, int top,
                      size_t nseeds) {
    size_t n[SW__MAX_LEVEL + 1];
    const sw__cand *seeds = p->seeds;
    if ((size_t)top >= p->levels) top = (int)p->levels - 1; /* never: sized from the level */
    for (int l = top; l >= 0; l--) {
        sw__cand *found = p->found + (size_t)l * p->ef;
        n[l] = sw__search_layer(ix, c, c->qv, seeds, nseeds, p->ef, l, slot);
        memcpy(found, c->pool, n[l] * sizeof *found);
        seeds = found;
        nseeds = n[l];
    }
    for (int l = 0; l <= top; l++) link_layer(ix, c, p, slot, l, p->found + (size_t)l * p->ef, n[l]);
}

/* ==== Insert a new label (Algorithm 1) ==== */

/* Link the published record in `slot` (level `level`) into the graph. */
static void insert_new(sw_index *ix, sw__ctx *c, const plan *p, uint32_t slot, int level) {
    int top;
    uint32_t entry = sw__top(ix, &top);
    bool raise = level > top;
    if (raise) {
        pthread_mutex_lock(&ix->top_lock);
        entry = sw__top(ix, &top);
        raise = level > top;
        if (!raise) pthread_mutex_unlock(&ix->top_lock);
    }
    if (entry != SW__NONE) {
        sw__cand cur = {ix->dist(c->qv, sw__vec(ix, entry), ix->code_n), entry};
        for (int l = top; l > level; l--) sw__greedy(ix, c->qv, &cur, l);
        p->seeds[0] = cur;
        link_node(ix, c, p, slot, level < top ? level : top, 1);
    }
    if (raise) {
        sw__set_top(ix, slot, level);
        pthread_mutex_unlock(&ix->top_lock);
    }
}

/* ==== sw_add ==== */

/* Write the record of a new node in `slot` before anything can see it. */
static void init_record(sw_index *ix, uint32_t slot, const float *v, uint64_t label, int level,
                        uint32_t *upper) {
    sw__store_vector(ix, slot, v);
    sw__links0(ix, slot)[0] = 0;
    *sw__indeg_ptr(ix, slot) = 0;
    *sw__label_ptr(ix, slot) = label;
    *sw__upper_ptr(ix, slot) = upper;
    *sw__level_ptr(ix, slot) = (uint8_t)level;
    *sw__lock_ptr(ix, slot) = 0;
    SW__STORE(sw__flags_ptr(ix, slot), (uint8_t)0); /* live, once all of the above is */
}

/*
 * Claim a slot for a new label and publish its record, or find that the
 * label exists.  Returns SW_OK with *slot set and *is_new saying which.
 */
static sw_status claim(sw_index *ix, uint64_t label, const float *v, int level, uint32_t *upper,
                       uint32_t *slot, bool *is_new) {
    sw_status st = SW_OK;
    pthread_rwlock_wrlock(&ix->label_lock);
    *slot = sw__labels_find(&ix->labels, label);
    *is_new = *slot == SW__NONE;
    if (*is_new && (st = sw__labels_reserve(&ix->mem, &ix->labels, 1)) == SW_OK) {
        pthread_mutex_lock(&ix->grow_lock);
        /* A freed slot no running operation can still see (delete.c), or
         * a new one.  A recycled slot's old upper links go once the new
         * record is in: nothing reads them any more. */
        uint32_t reuse = sw__recycle(ix), count = ix->count;
        uint32_t *old_upper = NULL;
        int old_level = 0;
        if (reuse != SW__NONE) {
            old_level = sw__level(ix, reuse);
            old_upper = *sw__upper_ptr(ix, reuse);
            *slot = reuse;
            init_record(ix, reuse, v, label, level, upper);
        } else {
            if (count >= SW__MAX_SLOTS)
                st = sw__fail(SW_EFULL, "sw_add: the index holds %u vectors", count);
            else
                st = sw__storage_reserve(ix, (size_t)count + 1);
            if (st == SW_OK) {
                *slot = count;
                init_record(ix, count, v, label, level, upper);
                SW__STORE(&ix->count, count + 1);
            }
        }
        pthread_mutex_unlock(&ix->grow_lock);
        if (old_level > 0) sw__upper_free(ix, old_upper, old_level);
        if (st == SW_OK) sw__labels_put(&ix->labels, label, *slot);
    }
    pthread_rwlock_unlock(&ix->label_lock);
    return st;
}

/* One attempt at sw_add.  *again is set when the label changed state
 * between the look-up and the work (inserted or deleted by another
 * thread), and the caller starts over. */
static sw_status add_once(sw_index *ix, uint64_t label, const float *vector, bool *again) {
    *again = false;
    pthread_rwlock_rdlock(&ix->save_lock);
    pthread_rwlock_rdlock(&ix->label_lock);
    uint32_t slot = sw__labels_find(&ix->labels, label);
    pthread_rwlock_unlock(&ix->label_lock);
    if (slot != SW__NONE) {
        /* An update unlinks the node, which needs the graph to itself
         * (delete.c); re-check the label once no add is running. */
        pthread_rwlock_unlock(&ix->save_lock);
        pthread_rwlock_wrlock(&ix->save_lock);
        if (sw__labels_find(&ix->labels, label) != slot) {
            pthread_rwlock_unlock(&ix->save_lock);
            *again = true;
            return SW_OK;
        }
    }
    /* A label that another add inserts meanwhile gets this same level. */
    int level = slot != SW__NONE ? sw__level(ix, slot) : sw__level_for(ix, label);

    /* Work space: seeds (one pool's worth), one search result per layer,
     * then scratch for selection: an overflowing list plus one, or the
     * extended candidate set. */
    plan p;
    p.ef = build_ef(ix);
    p.levels = (size_t)level + 1;
    p.scratch_cap = 2 * (size_t)ix->M0 + 1;
    if (ix->extend_candidates) {
        /* distinct nodes only: rarely more than the slots that exist */
        size_t ext = p.ef * (ix->M0 + 1), cap = sw__capacity(ix) + 2 * (size_t)ix->M0;
        if (ext > cap) ext = cap;
        if (ext > p.scratch_cap) p.scratch_cap = ext;
    }
    p.nseeds = p.ef > ix->M0 ? p.ef : ix->M0;
    size_t nfound = p.levels * p.ef;
    sw__ctx *c = sw__ctx_acquire(ix, p.ef, p.nseeds + nfound + p.scratch_cap);
    sw_status st = c ? sw__ctx_query(ix, c, vector) : SW_ENOMEM;
    if (st != SW_OK) goto done;
    p.seeds = c->work;
    p.found = p.seeds + p.nseeds;
    p.scratch = p.found + nfound;

    if (slot == SW__NONE) {
        bool is_new = false;
        uint32_t *upper = NULL;
        if (level > 0 && !(upper = sw__upper_alloc(ix, level))) {
            st = sw__fail(SW_ENOMEM, "sw_add: allocating links for level %d", level);
            goto done;
        }
        st = claim(ix, label, c->query, level, upper, &slot, &is_new);
        if (st != SW_OK || !is_new) sw__upper_free(ix, upper, level);
        if (st == SW_OK && !is_new) *again = true; /* added meanwhile: an update now */
        if (st != SW_OK || !is_new) goto done;
        sw__gate_enter(&ix->gate);
        insert_new(ix, c, &p, slot, level);
        sw__gate_leave(&ix->gate);
        goto done;
    }

    /* An update is a deletion and a re-insertion in the same slot: the
     * lists that pointed to the node are repaired as for a deletion
     * (delete.c), the vector is replaced, and the node is linked again as
     * a new one, so the graph is the one an insert of the new vector would
     * have made, and no list keeps a link chosen for the old position. */
    if ((st = sw__unlink(ix, slot)) != SW_OK) goto done;
    sw__gate_close(&ix->gate);
    sw__store_vector(ix, slot, c->query);
    sw__gate_open(&ix->gate);
    sw__gate_enter(&ix->gate);
    insert_new(ix, c, &p, slot, level);
    sw__gate_leave(&ix->gate);
    /* Adding a tombstoned label brings it back (as hnswlib does). */
    uint8_t was = __atomic_fetch_and(sw__flags_ptr(ix, slot), (uint8_t)~SW__F_DELETED,
                                     __ATOMIC_SEQ_CST);
    if (was & SW__F_DELETED) __atomic_fetch_sub(&ix->ndeleted, 1, __ATOMIC_SEQ_CST);
done:
    pthread_rwlock_unlock(&ix->save_lock);
    if (c) sw__ctx_release(ix, c);
    return st;
}

sw_status sw__add(sw_index *ix, uint64_t label, const float *vector) {
    bool again;
    sw_status st;
    do st = add_once(ix, label, vector, &again);
    while (st == SW_OK && again);
    return st;
}

sw_status sw_add(sw_index *ix, uint64_t label, const float *vector, size_t dim) {
    if (!ix || !vector) return sw__fail(SW_ENULL, "sw_add: %s is NULL", ix ? "vector" : "index");
    if (ix->readonly) return sw__readonly_fail("sw_add");
    if (dim != ix->dim)
        return sw__fail(SW_EDIMMISMATCH, "sw_add: vector has dimension %zu, the index %u", dim,
                        ix->dim);
    /* one row never trains: this refuses an untrained index */
    sw_status st = sw__auto_train(ix, vector, 1, "sw_add");
    if (st == SW_OK) st = sw__add(ix, label, vector);
    if (st == SW_OK) __atomic_add_fetch(&ix->added_since_pass, 1, __ATOMIC_RELAXED);
    return st;
}
