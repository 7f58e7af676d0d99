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
 * Update (adding a label that exists): the vector is overwritten in place and
 * the neighbourhood re-linked in two steps.  (1) Each old neighbour n of the
 * node re-selects its list from its current links plus the node's old links
 * (the node's 2-hop neighbourhood from n), with fresh distances: this drops
 * the node from lists where it no longer belongs and gives n a way to the
 * nodes it used to reach through it.  (2) The node is re-inserted at its old
 * level as in Algorithm 1, with itself excluded from the searches, so it
 * gets new out-links and in-links in its new neighbourhood.  Its level is
 * kept so the upper-layer allocation does not change.
 *
 * Failure atomicity: everything that can fail (the chunk, the label map
 * room, the upper-layer links, the scratch context, the vector check)
 * happens before the first write to the graph.  The level is drawn from a
 * copy of the generator state, committed only on success, so a failed add
 * does not change what later adds do.
 *
 * Threading: one writer at a time (see smallworld.h).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ==== Neighbour selection (Algorithm 4) ==== */

static int cand_cmp(const void *pa, const void *pb) {
    const sw__cand *a = pa, *b = pb;
    if (a->dist < b->dist) return -1;
    if (a->dist > b->dist) return 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* From cand[0..n), sorted ascending by distance to the base, choose at most
 * m into out[].  Returns how many. */
static size_t select_neighbors(const sw_index *ix, const sw__cand *cand, size_t n, size_t m,
                               sw__cand *out) {
    sw__cand copies[SW_MAX_M0];
    size_t r = 0, i = 0, ncopies = 0;
    for (; i < n && r < m; i++) {
        const float *v = sw__vec(ix, cand[i].id);
        bool keep = true;
        for (size_t j = 0; j < r; j++) {
            const float *w = sw__vec(ix, out[j].id);
            float d = ix->dist(v, w, ix->dim);
            if (d < cand[i].dist) {
                keep = false;
                break;
            }
            /* An exact copy of a kept neighbour adds no direction.  Copies
             * tie at every distance, so without this they fill each other's
             * lists and wall off the vectors around them.  They still fill
             * what room is left at the end, so an index of copies stays
             * connected. */
            if (d == cand[i].dist && memcmp(v, w, ix->vec_bytes) == 0) {
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
 * The rule costs nothing when no node is at risk, which is nearly always.
 */

static bool in_list(const uint32_t *ids, size_t n, uint32_t x) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] == x) return true;
    return false;
}

static bool in_sel(const sw__cand *sel, size_t n, uint32_t x) {
    for (size_t i = 0; i < n; i++)
        if (sel[i].id == x) return true;
    return false;
}

/* Replace the list of `base` on `layer` by sel[0..r), keeping in-degrees. */
static void write_links(const sw_index *ix, uint32_t base, int layer, const sw__cand *sel,
                        size_t r) {
    uint32_t *links = sw__links(ix, base, layer);
    if (layer == 0) {
        for (uint32_t j = 1; j <= links[0]; j++) (*sw__indeg_ptr(ix, links[j]))--;
        for (size_t i = 0; i < r; i++) (*sw__indeg_ptr(ix, sel[i].id))++;
    }
    links[0] = (uint32_t)r;
    for (size_t i = 0; i < r; i++) links[1 + i] = sel[i].id;
}

/* The in-degree `x` would keep if `base` stopped linking to it. */
static uint32_t indeg_without(const sw_index *ix, const uint32_t *old, size_t nold, uint32_t x) {
    uint32_t d = *sw__indeg_ptr(ix, x);
    return in_list(old, nold, x) ? d - 1 : d;
}

/*
 * Layer 0: a node in the old list of `base` that the selection dropped, and
 * whose only in-link is this one, is put back: into a free place, or in
 * place of the furthest selected node that has another in-link.
 */
static size_t protect_orphans(const sw_index *ix, uint32_t base, const sw__cand *cand, size_t n,
                              sw__cand *sel, size_t r) {
    const uint32_t *links = sw__links(ix, base, 0);
    const uint32_t *old = links + 1;
    uint32_t nold = links[0];
    for (uint32_t j = 0; j < nold; j++) {
        uint32_t x = old[j];
        if (*sw__indeg_ptr(ix, x) != 1 || in_sel(sel, r, x)) continue;
        sw__cand keep = {0, x};
        for (size_t i = 0; i < n; i++)
            if (cand[i].id == x) keep = cand[i];
        if (r < ix->M0) {
            sel[r++] = keep;
            continue;
        }
        size_t victim = r;
        for (size_t i = 0; i < r; i++)
            if (indeg_without(ix, old, nold, sel[i].id) >= 1 &&
                (victim == r || sel[i].dist > sel[victim].dist))
                victim = i;
        if (victim < r) sel[victim] = keep;
    }
    return r;
}

/* Re-select the list of `base` on `layer` from cand[0..n) (unsorted). */
static void reselect(const sw_index *ix, uint32_t base, int layer, sw__cand *cand, size_t n) {
    sw__cand sel[SW_MAX_M0];
    qsort(cand, n, sizeof *cand, cand_cmp);
    size_t r = select_neighbors(ix, cand, n, sw__max_degree(ix, layer), sel);
    if (layer == 0) r = protect_orphans(ix, base, cand, n, sel, r);
    write_links(ix, base, layer, sel, r);
}

/* Add the link e -> s (distance d) on `layer`, shrinking e's list with the
 * heuristic when it is full (Algorithm 1, lines 11-16).  `scratch` holds
 * at least M0 + 1 candidates. */
static void add_link(const sw_index *ix, uint32_t e, uint32_t s, float d, int layer,
                     sw__cand *scratch) {
    uint32_t *links = sw__links(ix, e, layer);
    uint32_t deg = links[0];
    if (in_list(links + 1, deg, s)) return;
    if (deg < sw__max_degree(ix, layer)) {
        links[1 + deg] = s;
        links[0] = deg + 1;
        if (layer == 0) (*sw__indeg_ptr(ix, s))++;
        return;
    }
    const float *ve = sw__vec(ix, e);
    for (uint32_t j = 0; j < deg; j++)
        scratch[j] = (sw__cand){ix->dist(ve, sw__vec(ix, links[1 + j]), ix->dim), links[1 + j]};
    scratch[deg] = (sw__cand){d, s};
    reselect(ix, e, layer, scratch, deg + 1);
}

/*
 * `s` has no layer-0 in-link after being linked (every neighbour pruned it).
 * Make the nearest neighbour that can spare a link point to it, replacing
 * that neighbour's furthest link to a node with another in-link.
 */
static void adopt_orphan(const sw_index *ix, uint32_t s) {
    const uint32_t *mine = sw__links(ix, s, 0);
    for (uint32_t i = 1; i <= mine[0]; i++) {
        uint32_t e = mine[i];
        uint32_t *links = sw__links(ix, e, 0);
        const float *ve = sw__vec(ix, e);
        uint32_t victim = 0;
        float worst = 0;
        for (uint32_t j = 1; j <= links[0]; j++) {
            if (*sw__indeg_ptr(ix, links[j]) < 2) continue;
            float dj = ix->dist(ve, sw__vec(ix, links[j]), ix->dim);
            if (victim == 0 || dj > worst) {
                victim = j;
                worst = dj;
            }
        }
        if (victim == 0) continue;
        (*sw__indeg_ptr(ix, links[victim]))--;
        links[victim] = s;
        (*sw__indeg_ptr(ix, s))++;
        return;
    }
}

/* ==== Linking a node into one layer ==== */

/*
 * Given the layer search result (c->pool[0..n)), choose the neighbours of
 * `slot`, write its list, link back, and leave the result in `seeds` for the
 * next layer down.  Returns the number of seeds.
 */
static size_t link_layer(const sw_index *ix, sw__ctx *c, uint32_t slot, int layer, size_t n,
                         sw__cand *seeds, sw__cand *scratch) {
    const sw__cand *cand = c->pool;
    size_t ncand = n;
    if (ix->extend_candidates) {
        /* Algorithm 4, lines 3-6: add the candidates' neighbours. */
        sw__ctx_new_epoch(c);
        c->visited[slot] = c->epoch;
        for (size_t i = 0; i < n; i++) {
            scratch[i] = c->pool[i];
            c->visited[c->pool[i].id] = c->epoch;
        }
        ncand = n;
        for (size_t i = 0; i < n; i++) {
            const uint32_t *l = sw__links(ix, c->pool[i].id, layer);
            for (uint32_t j = 1; j <= l[0]; j++) {
                uint32_t a = l[j];
                if (c->visited[a] == c->epoch) continue;
                c->visited[a] = c->epoch;
                scratch[ncand++] = (sw__cand){ix->dist(c->query, sw__vec(ix, a), ix->dim), a};
            }
        }
        qsort(scratch, ncand, sizeof *scratch, cand_cmp);
        cand = scratch;
    }
    sw__cand sel[SW_MAX_M0];
    size_t r = select_neighbors(ix, cand, ncand, ix->M, sel);
    memcpy(seeds, c->pool, n * sizeof *seeds);
    /* An update replaces a non-empty list: remember it to catch orphans. */
    uint32_t old[SW_MAX_M0];
    const uint32_t *links = sw__links(ix, slot, layer);
    uint32_t nold = links[0];
    memcpy(old, links + 1, nold * sizeof *old);
    write_links(ix, slot, layer, sel, r);
    for (size_t i = 0; i < r; i++) add_link(ix, sel[i].id, slot, sel[i].dist, layer, scratch);
    if (layer == 0) {
        if (*sw__indeg_ptr(ix, slot) == 0) adopt_orphan(ix, slot);
        for (uint32_t i = 0; i < nold; i++)
            if (*sw__indeg_ptr(ix, old[i]) == 0) adopt_orphan(ix, old[i]);
    }
    return n;
}

/* The candidate list size while inserting: ef_construction, at least M (a
 * node needs M candidates to choose from), and at most the slots that exist
 * (a larger list finds nothing more, and would only size scratch space by
 * an unbounded parameter). */
static size_t build_ef(const sw_index *ix) {
    size_t ef = ix->ef_construction > ix->M ? ix->ef_construction : ix->M;
    size_t cap = sw__capacity(ix);
    return ef < cap ? ef : cap;
}

/* Search from the entry point down to `top` and link `slot` on layers
 * top..0.  `slot` must already hold its vector (copied in c->query too). */
static void link_node(sw_index *ix, sw__ctx *c, uint32_t slot, int top, sw__cand *seeds,
                      size_t nseeds, sw__cand *scratch) {
    size_t ef = build_ef(ix);
    for (int l = top; l >= 0; l--) {
        size_t n = sw__search_layer(ix, c, c->query, seeds, nseeds, ef, l, slot);
        nseeds = link_layer(ix, c, slot, l, n, seeds, scratch);
    }
}

/* ==== Insert a new label (Algorithm 1) ==== */

static void insert_new(sw_index *ix, sw__ctx *c, uint64_t label, int level, uint32_t *upper,
                       sw__cand *seeds, sw__cand *scratch) {
    uint32_t slot = ix->count;
    memcpy(sw__vec(ix, slot), c->query, ix->vec_bytes);
    sw__links0(ix, slot)[0] = 0;
    *sw__indeg_ptr(ix, slot) = 0;
    *sw__label_ptr(ix, slot) = label;
    *sw__upper_ptr(ix, slot) = upper;
    *sw__level_ptr(ix, slot) = (uint8_t)level;

    if (ix->entry != SW__NONE) {
        sw__cand cur = {ix->dist(c->query, sw__vec(ix, ix->entry), ix->dim), ix->entry};
        for (int l = ix->max_level; l > level; l--) sw__greedy(ix, c->query, &cur, l);
        seeds[0] = cur;
        int top = level < ix->max_level ? level : ix->max_level;
        link_node(ix, c, slot, top, seeds, 1, scratch);
    }
    if (level > ix->max_level) {
        ix->entry = slot;
        ix->max_level = level;
    }
    sw__labels_put(&ix->labels, label, slot);
    ix->count = slot + 1;
}

/* ==== Update an existing label ==== */

/* Step 1: every old neighbour re-selects from its links plus ours. */
static void repair_neighbours(sw_index *ix, sw__ctx *c, uint32_t slot, int layer,
                              sw__cand *scratch) {
    uint32_t old[SW_MAX_M0];
    const uint32_t *l = sw__links(ix, slot, layer);
    uint32_t nold = l[0];
    memcpy(old, l + 1, nold * sizeof *old);
    for (uint32_t i = 0; i < nold; i++) {
        uint32_t nb = old[i];
        const float *vn = sw__vec(ix, nb);
        sw__ctx_new_epoch(c);
        c->visited[nb] = c->epoch;
        size_t n = 0;
        const uint32_t *ln = sw__links(ix, nb, layer);
        for (int pass = 0; pass < 2; pass++) {
            const uint32_t *ids = pass == 0 ? ln + 1 : old;
            uint32_t cnt = pass == 0 ? ln[0] : nold;
            for (uint32_t j = 0; j < cnt; j++) {
                uint32_t a = ids[j];
                if (c->visited[a] == c->epoch) continue;
                c->visited[a] = c->epoch;
                scratch[n++] = (sw__cand){ix->dist(vn, sw__vec(ix, a), ix->dim), a};
            }
        }
        reselect(ix, nb, layer, scratch, n);
    }
}

static void update(sw_index *ix, sw__ctx *c, uint32_t slot, sw__cand *seeds, sw__cand *scratch) {
    memcpy(sw__vec(ix, slot), c->query, ix->vec_bytes);
    int level = sw__level(ix, slot);
    for (int l = 0; l <= level; l++) repair_neighbours(ix, c, slot, l, scratch);

    int top = level;
    if (ix->entry != slot) {
        sw__cand cur = {ix->dist(c->query, sw__vec(ix, ix->entry), ix->dim), ix->entry};
        for (int l = ix->max_level; l > level; l--) sw__greedy(ix, c->query, &cur, l);
        seeds[0] = cur;
        link_node(ix, c, slot, top, seeds, 1, scratch);
        return;
    }
    /* The node is the entry point: start from its own neighbours on the
     * highest layer where it has any (above that it is alone). */
    for (; top >= 0; top--) {
        const uint32_t *l = sw__links(ix, slot, top);
        if (l[0] == 0) continue;
        for (uint32_t j = 0; j < l[0]; j++)
            seeds[j] = (sw__cand){ix->dist(c->query, sw__vec(ix, l[1 + j]), ix->dim), l[1 + j]};
        link_node(ix, c, slot, top, seeds, l[0], scratch);
        return;
    }
}

/* ==== sw_add ==== */

sw_status sw_add(sw_index *ix, uint64_t label, const float *vector, size_t dim) {
    if (!ix || !vector) return sw__fail(SW_ENULL, "sw_add: %s is NULL", ix ? "vector" : "index");
    if (dim != ix->dim)
        return sw__fail(SW_EDIMMISMATCH, "sw_add: vector has dimension %zu, the index %u", dim,
                        ix->dim);

    uint32_t slot = sw__labels_find(&ix->labels, label);
    int level = 0;
    uint32_t *upper = NULL;
    uint64_t rng = ix->rng;
    sw_status st;
    if (slot == SW__NONE) {
        if (ix->count >= SW__MAX_SLOTS)
            return sw__fail(SW_EFULL, "sw_add: the index holds %u vectors", ix->count);
        if ((st = sw__storage_reserve(ix, (size_t)ix->count + 1)) != SW_OK) return st;
        if ((st = sw__labels_reserve(&ix->mem, &ix->labels, 1)) != SW_OK) return st;
        level = sw__random_level(ix, &rng);
        if (level > 0 && !(upper = sw__upper_alloc(ix, level)))
            return sw__fail(SW_ENOMEM, "sw_add: allocating links for level %d", level);
    }

    /* Work space: seeds for the next layer (one pool's worth) then scratch
     * for selection: an overflowing list plus one, a repaired list (its
     * links plus the updated node's), or the extended candidate set. */
    size_t ef = build_ef(ix);
    size_t scratch_n = 2 * (size_t)ix->M0 + 1;
    if (ix->extend_candidates) {
        /* distinct nodes only: never more than the slots that exist */
        size_t ext = ef * (ix->M0 + 1);
        if (ext > sw__capacity(ix)) ext = sw__capacity(ix);
        if (ext > scratch_n) scratch_n = ext;
    }
    size_t nseeds = ef > ix->M0 ? ef : ix->M0;
    sw__ctx *c = sw__ctx_acquire(ix, ef, nseeds + scratch_n);
    if (!c) {
        sw__upper_free(ix, upper, level);
        return SW_ENOMEM;
    }
    if ((st = sw__prepare_vector(ix, vector, c->query)) != SW_OK) {
        sw__ctx_release(ix, c);
        sw__upper_free(ix, upper, level);
        return st;
    }

    sw__cand *seeds = c->work, *scratch = c->work + nseeds;
    if (slot == SW__NONE) {
        insert_new(ix, c, label, level, upper, seeds, scratch);
        ix->rng = rng;
    } else {
        update(ix, c, slot, seeds, scratch);
    }
    sw__ctx_release(ix, c);
    return SW_OK;
}
