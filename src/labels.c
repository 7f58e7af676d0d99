/*
 * labels.c — the map from a user's 64-bit label to an internal slot.
 *
 * Open addressing with linear probing over one array of slots, load factor
 * at most 1/2, capacity a power of two.  A bucket holds only the slot: the
 * label it stands for is the one in that slot's side array, which every
 * node carries anyway.  Keeping the labels a second time in the map cost
 * 8 bytes a bucket, 16.8 bytes a vector at a million (2^21 buckets), and
 * left smallworld's resident memory 2 bytes a vector above hnswlib's
 * (bench/memory.py: 758.5 against 756.5); the price is a look at the
 * slot's label on a probe that meets a taken bucket, in every look-up by
 * label (add, get, contains, delete, tombstones, load, and the allow-list
 * of a filtered search), never in the walk itself.  Labels are often
 * sequential, so they are mixed with the splitmix64 finaliser before taking
 * the low bits; without it, row-number labels fill one run of buckets and
 * every probe walks it.  Growth rehashes into new arrays; it is done in
 * sw__labels_reserve before an insert changes anything else, so an insert
 * that runs out of memory fails before it has touched the index.
 *
 * The query path never consults this map (results carry the label from the
 * slot's side array); only add, get and contains do.
 */
#include "internal.h"

#include <string.h>

static inline size_t mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return (size_t)x;
}

/* The label a bucket stands for: its slot's. */
static inline uint64_t key_of(const sw__labelmap *lm, uint32_t slot) {
    return *sw__label_ptr(lm->ix, slot);
}

uint32_t sw__labels_find(const sw__labelmap *lm, uint64_t label) {
    if (lm->cap == 0) return SW__NONE;
    size_t mask = lm->cap - 1;
    for (size_t i = mix(label) & mask;; i = (i + 1) & mask) {
        if (lm->vals[i] == SW__NONE) return SW__NONE;
        if (key_of(lm, lm->vals[i]) == label) return lm->vals[i];
    }
}

static void put(uint32_t *vals, size_t cap, uint64_t label, uint32_t slot) {
    size_t mask = cap - 1;
    size_t i = mix(label) & mask;
    while (vals[i] != SW__NONE) i = (i + 1) & mask;
    vals[i] = slot;
}

/* A loader's bulk insert: prefetching the buckets of the labels a few
 * places ahead hides most of the cache misses a plain loop pays (a mapped
 * open of 1M labels took 105 ms, 58% of it in the find-then-put loop,
 * before the prefetch; 38-45 ms after).  A bucket already taken costs a
 * look at its slot's label, a miss the prefetch does not cover: the open
 * took 51-69 ms after the map lost its keys, against 46-54 ms before, in
 * alternating runs on the same (busier) machine.  A second prefetch stage
 * for those labels (read the home bucket half as far ahead, prefetch its
 * slot's label) measured no better: 59-72 ms. */
size_t sw__labels_put_all(sw__labelmap *lm, uint32_t n) {
    enum { AHEAD = 16 };
    size_t mask = lm->cap - 1;
    for (uint32_t s = 0; s < n; s++) {
        if (s + AHEAD < n) SW__PREFETCH(&lm->vals[mix(key_of(lm, s + AHEAD)) & mask]);
        uint64_t label = key_of(lm, s);
        size_t i = mix(label) & mask;
        for (; lm->vals[i] != SW__NONE; i = (i + 1) & mask)
            if (key_of(lm, lm->vals[i]) == label) return s;
        lm->vals[i] = s;
        lm->used++;
    }
    return SIZE_MAX;
}

sw_status sw__labels_reserve(sw__mem *m, sw__labelmap *lm, size_t extra) {
    size_t need = lm->used + extra;
    if (need * 2 <= lm->cap) return SW_OK;
    size_t cap = lm->cap ? lm->cap : 64;
    while (cap < need * 2) cap *= 2;
    uint32_t *vals = sw__alloc(m, cap * sizeof *vals, SW__LINE);
    if (!vals) return sw__fail(SW_ENOMEM, "growing the label map to %zu buckets", cap);
    memset(vals, 0xff, cap * sizeof *vals);
    for (size_t i = 0; i < lm->cap; i++)
        if (lm->vals[i] != SW__NONE) put(vals, cap, key_of(lm, lm->vals[i]), lm->vals[i]);
    sw__labels_free(m, lm);
    lm->vals = vals;
    lm->cap = cap;
    lm->used = need - extra;
    return SW_OK;
}

void sw__labels_put(sw__labelmap *lm, uint64_t label, uint32_t slot) {
    put(lm->vals, lm->cap, label, slot);
    lm->used++;
}

/* Backward-shift deletion: later entries of the probe run move up into
 * the hole when their home bucket allows, so lookups never need
 * tombstones and the map does not fill with them under delete/insert
 * churn. */
void sw__labels_remove(sw__labelmap *lm, uint64_t label) {
    if (lm->cap == 0) return;
    size_t mask = lm->cap - 1, i = mix(label) & mask;
    for (;; i = (i + 1) & mask) {
        if (lm->vals[i] == SW__NONE) return;
        if (key_of(lm, lm->vals[i]) == label) break;
    }
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        if (lm->vals[j] == SW__NONE) break;
        size_t home = mix(key_of(lm, lm->vals[j])) & mask;
        /* j's entry may fill the hole at i unless its home lies in (i, j] */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        lm->vals[i] = lm->vals[j];
        i = j;
    }
    lm->vals[i] = SW__NONE;
    lm->used--;
}

void sw__labels_free(sw__mem *m, sw__labelmap *lm) {
    sw__free(m, lm->vals, lm->cap * sizeof *lm->vals);
    lm->vals = NULL;
    lm->cap = lm->used = 0;
}

/* ==== Listing ==== */

/* Under save_lock held alone no add is half done, so every slot below
 * count is either FREE or a whole node. */
sw_status sw_list_labels(const sw_index *ix, int tombstoned, uint64_t *out, size_t cap,
                         size_t *total) {
    if (!ix || !total || (!out && cap))
        return sw__fail(SW_ENULL, "sw_list_labels: %s is NULL",
                        !ix ? "index" : !total ? "total" : "out");
    sw_index *mix = (sw_index *)ix;
    unsigned want = tombstoned ? SW__F_DELETED : 0;
    size_t n = 0;
    pthread_rwlock_wrlock(&mix->save_lock);
    for (uint32_t s = 0; s < ix->count; s++) {
        if (sw__flags(ix, s) != want) continue;
        if (n < cap) out[n] = *sw__label_ptr(ix, s);
        n++;
    }
    pthread_rwlock_unlock(&mix->save_lock);
    *total = n;
    return SW_OK;
}
