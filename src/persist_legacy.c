/*
 * persist_legacy.c — reading the files of format versions 1 to 3.
 *
 * Versions 1 to 3 (0.1.0 and 0.2.0) were one stream: a header, then the
 * nodes one after another (label, level, vector, each layer's list), then
 * a single CRC-32C of everything.  Version 4 (persist.c) replaced them by
 * checksummed sections that can be served from a mapping.  Indexes take
 * hours to build, so files of the old versions stay readable: this is the
 * old reader, kept apart so the new one does not carry its branches.
 * Nothing writes these versions any more.
 *
 *   offset size  field
 *   0      8     magic "SWALLIDX"
 *   8      4     format version (1, 2 or 3)
 *   12     4     header size in bytes (80)
 *   16     4     dim
 *   20     4     metric (0 L2, 1 IP, 2 cosine, 3 L1)
 *   24     4     element type (0 = float32)
 *   28     4     M
 *   32     4     M0
 *   36     4     ef_construction
 *   40     4     default search ef
 *   44     4     flags: bit 0 keep_pruned, bit 1 extend_candidates
 *   48     8     seed
 *   56     8     level generator state
 *   64     8     count (number of nodes)
 *   72     4     entry point slot (0xffffffff when empty)
 *   76     4     max level (signed; -1 when empty)
 *   80     4     metadata length L (version 3 only)
 *   84     L     the application's metadata bytes (version 3 only)
 *   ...          count node records, in slot order:
 *                  u64 label, u8 level (top bit: tombstone; version 2 on),
 *                  dim x f32 vector,
 *                  then for each layer 0..level: u32 degree, degree x u32 slot
 *   end-4  4     CRC-32C (Castagnoli) of every byte before it
 *
 * It trusts nothing, as the new reader does: every field is range-checked
 * before use, no allocation is sized by a count the file's length cannot
 * back, links must point in range, not to themselves, not twice and only
 * to nodes on that layer; labels unique, vectors finite, the checksum
 * right and nothing after it.
 */
#define _XOPEN_SOURCE 700
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SW__MAGIC "SWALLIDX"
#define LEGACY_LAST_VERSION 3u
#define LEVEL_TOMBSTONE 0x80u /* version 2: the level byte's top bit */
#define LEGACY_HEADER_BYTES 80u

typedef struct reader {
    FILE *f;
    uint32_t crc;
    uint64_t left; /* bytes of the file not yet read */
    int short_read;
    int io_error; /* errno of a failed read, as opposed to a short file */
    uint32_t per_level[SW__MAX_LEVEL + 1]; /* nodes read at level >= l */
    uint32_t version;
} reader;

static bool r_bytes(reader *r, void *dst, size_t n) {
    if (r->short_read || n > r->left || fread(dst, 1, n, r->f) != n) {
        if (!r->short_read && n <= r->left && ferror(r->f)) r->io_error = errno ? errno : EIO;
        r->short_read = 1;
        memset(dst, 0, n);
        return false;
    }
    r->left -= n;
    r->crc = sw__crc32c(r->crc, dst, n);
    return true;
}

static uint32_t r_u32(reader *r) {
    unsigned char b[4];
    r_bytes(r, b, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t r_u64(reader *r) {
    uint64_t lo = r_u32(r);
    return lo | (uint64_t)r_u32(r) << 32;
}

#define CORRUPT(...)                                  \
    do {                                              \
        st = sw__fail(SW_ECORRUPT, __VA_ARGS__);      \
        goto fail;                                    \
    } while (0)
#define NEED(r, what)                                                             \
    do {                                                                          \
        if ((r)->io_error) {                                                      \
            st = sw__fail(SW_EIO, "reading %s: %s", path, strerror((r)->io_error)); \
            goto fail;                                                            \
        }                                                                         \
        if ((r)->short_read) CORRUPT("%s: file truncated in %s", path, what);       \
    } while (0)

/* Read and check one node into slot s (storage already reserved). */
static sw_status read_node(sw_index *ix, reader *r, uint32_t s, uint64_t count, const char *path) {
    sw_status st = SW_OK;
    uint32_t *upper = NULL;
    unsigned char lvb = 0;
    uint64_t label = r_u64(r);
    r_bytes(r, &lvb, 1);
    bool tomb = r->version >= 2 && (lvb & LEVEL_TOMBSTONE);
    int lv = r->version >= 2 ? (lvb & ~LEVEL_TOMBSTONE) : lvb;
    NEED(r, "a node header");
    int max_level;
    sw__top(ix, &max_level);
    if (lv > max_level) CORRUPT("%s: node %u has level %d above the max %d", path, s, lv, max_level);
    if (sw__labels_find(&ix->labels, label) != SW__NONE)
        CORRUPT("%s: label %llu appears twice", path, (unsigned long long)label);
    /* Levels are drawn with P(level >= l) = M^-l.  Upper-layer links are
     * allocated at full size whatever the degrees on disk, so a crafted file
     * of high-level nodes with empty lists could make a small file take
     * gigabytes; no index this library wrote has 8x the expected count at a
     * level (plus slack for small indexes), so such a file is refused. */
    for (int l = 1; l <= lv; l++) {
        double expect = (double)count * pow((double)ix->M, -(double)l);
        if (++r->per_level[l] > 8.0 * expect + 64.0)
            CORRUPT("%s: implausibly many nodes (%u) on level %d of %llu", path,
                    r->per_level[l], l, (unsigned long long)count);
    }
    if (lv > 0 && !(upper = sw__upper_alloc(ix, lv))) {
        st = sw__fail(SW_ENOMEM, "loading %s: links of node %u", path, s);
        goto fail;
    }
    float *v = sw__vec(ix, s);
    for (uint32_t i = 0; i < ix->dim; i++) {
        uint32_t b = r_u32(r);
        memcpy(&v[i], &b, 4);
        if (!isfinite(v[i])) CORRUPT("%s: node %u has a non-finite element", path, s);
    }
    NEED(r, "a vector");
    *sw__upper_ptr(ix, s) = upper;
    for (int l = 0; l <= lv; l++) {
        uint32_t *links = l == 0 ? sw__links0(ix, s) : upper + (size_t)(l - 1) * ix->upper_stride;
        uint32_t deg = r_u32(r);
        NEED(r, "a link list");
        if (deg > sw__max_degree(ix, l))
            CORRUPT("%s: node %u layer %d has degree %u above %u", path, s, l, deg,
                    sw__max_degree(ix, l));
        links[0] = 0;
        for (uint32_t j = 1; j <= deg; j++) {
            uint32_t t = r_u32(r);
            if (t >= count || t == s)
                CORRUPT("%s: node %u layer %d has a bad link %u", path, s, l, t);
            for (uint32_t i = 1; i < j; i++)
                if (links[i] == t) CORRUPT("%s: node %u layer %d links twice to %u", path, s, l, t);
            links[j] = t;
        }
        NEED(r, "a link list");
        links[0] = deg;
    }
    *sw__label_ptr(ix, s) = label;
    *sw__level_ptr(ix, s) = (uint8_t)lv;
    if (tomb) {
        *sw__flags_ptr(ix, s) = SW__F_DELETED;
        ix->ndeleted++;
    }
    sw__labels_put(&ix->labels, label, s);
    ix->count = s + 1;
    return SW_OK;
fail:
    *sw__upper_ptr(ix, s) = NULL;
    sw__upper_free(ix, upper, lv);
    return st;
}

sw_status sw__load_legacy(const char *path, const sw_allocator *allocator, sw_index **out) {

    sw_status st = SW_OK;
    sw_index *ix = NULL;
    reader rd = {0}, *r = &rd;
    r->f = fopen(path, "rb");
    if (!r->f) return sw__fail(SW_EIO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(r->f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = sw__fail(SW_EIO, "%s is not a regular file", path);
        goto fail;
    }
    r->left = (uint64_t)sb.st_size;

    char magic[8];
    r_bytes(r, magic, 8);
    if (r->short_read || memcmp(magic, SW__MAGIC, 8) != 0)
        CORRUPT("%s is not a smallworld index (bad magic)", path);
    uint32_t version = r_u32(r), hbytes = r_u32(r);
    NEED(r, "the header");
    r->version = version;
    if (version < 1 || version > LEGACY_LAST_VERSION) {
        st = sw__fail(SW_EVERSION, "%s has format version %u; this reader takes 1..%u", path,
                      version, LEGACY_LAST_VERSION);
        goto fail;
    }
    if (hbytes != LEGACY_HEADER_BYTES)
        CORRUPT("%s: header size %u, expected %u", path, hbytes, LEGACY_HEADER_BYTES);

    sw_options o = sw_options_default();
    o.dim = r_u32(r);
    o.metric = (sw_metric)r_u32(r);
    uint32_t etype = r_u32(r);
    o.M = r_u32(r);
    o.M0 = r_u32(r);
    o.ef_construction = r_u32(r);
    o.ef_search = r_u32(r);
    uint32_t flags = r_u32(r);
    o.seed = r_u64(r);
    uint64_t rng = r_u64(r);
    uint64_t count = r_u64(r);
    uint32_t entry = r_u32(r);
    int32_t max_level = (int32_t)r_u32(r);
    uint32_t meta_len = version >= 3 ? r_u32(r) : 0;
    NEED(r, "the header");
    if (meta_len > SW_MAX_METADATA || meta_len > r->left)
        CORRUPT("%s: metadata length %u too large", path, meta_len);
    if (etype != 0) { /* versions 1..3 stored float32 only */
        st = sw__fail(SW_ECORRUPT, "%s: unknown element type %u", path, etype);
        goto fail;
    }
    if ((st = sw__file_options(&o, etype, flags, path)) != SW_OK) goto fail;
    if (count > SW__MAX_SLOTS) CORRUPT("%s: node count %llu too large", path, (unsigned long long)count);
    /* Each node takes at least label + level + vector + layer-0 degree. */
    uint64_t min_node = 8 + 1 + (uint64_t)o.dim * 4 + 4;
    if (count > (r->left < 4 ? 0 : (r->left - 4) / min_node))
        CORRUPT("%s: %llu nodes cannot fit in the file", path, (unsigned long long)count);
    if (count == 0 ? (entry != SW__NONE || max_level != -1)
                   : (entry >= count || max_level < 0 || max_level > SW__MAX_LEVEL))
        CORRUPT("%s: bad entry point %u / max level %d", path, entry, max_level);

    st = sw__index_new(&o, allocator, &ix);
    if (st != SW_OK) goto fail;
    if (meta_len) {
        if (!(ix->meta = sw__alloc(&ix->mem, meta_len, 1))) {
            st = sw__fail(SW_ENOMEM, "loading %s: %u bytes of metadata", path, meta_len);
            goto fail;
        }
        ix->meta_len = meta_len;
        r_bytes(r, ix->meta, meta_len);
        NEED(r, "the metadata");
    }
    ix->rng = rng;
    sw__set_top(ix, SW__NONE, max_level); /* the entry is set once every node is in */
    if ((st = sw__labels_reserve(&ix->mem, &ix->labels, count)) != SW_OK) goto fail;
    /* Storage grows chunk by chunk as nodes arrive, so a file that claims
     * many nodes but holds few costs only what it holds. */
    for (uint64_t s = 0; s < count; s++) {
        if ((st = sw__storage_reserve(ix, s + 1)) != SW_OK) goto fail;
        if ((st = read_node(ix, r, (uint32_t)s, count, path)) != SW_OK) goto fail;
    }

    uint32_t crc = r->crc;
    uint32_t stored = r_u32(r);
    NEED(r, "the checksum");
    if (stored != crc) CORRUPT("%s: checksum mismatch (file damaged)", path);
    if (r->left != 0) CORRUPT("%s: %llu unexpected bytes after the end", path, (unsigned long long)r->left);

    /* Checks that need every node's level. */
    if (count && sw__level(ix, entry) != max_level)
        CORRUPT("%s: entry point %u is not on the top layer", path, entry);
    for (uint32_t s = 0; s < ix->count; s++)
        for (int l = 1; l <= sw__level(ix, s); l++) {
            const uint32_t *links = sw__links(ix, s, l);
            for (uint32_t j = 1; j <= links[0]; j++)
                if (sw__level(ix, links[j]) < l)
                    CORRUPT("%s: node %u links on layer %d to a node not on it", path, s, l);
        }
    sw__set_top(ix, count ? entry : SW__NONE, max_level);
    sw__recount_indegrees(ix);
    fclose(r->f);
    *out = ix;
    return SW_OK;

fail:
    if (r->f) fclose(r->f);
    sw_free(ix);
    return st;
}
