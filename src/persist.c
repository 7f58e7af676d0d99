/*
 * persist.c — saving and loading an index (format version 3).
 *
 * The file is a stream of explicit little-endian fixed-width fields, never a
 * dump of in-memory structs, so any machine reads what any other wrote.
 *
 *   offset size  field
 *   0      8     magic "SWALLIDX"
 *   8      4     format version (3; versions 1 and 2 are read too)
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
 *   56     8     level generator state (so adds after a load continue the
 *                sequence a never-saved index would have drawn)
 *   64     8     count (number of nodes)
 *   72     4     entry point slot (0xffffffff when empty)
 *   76     4     max level (signed; -1 when empty)
 *   80     4     metadata length L (0 .. SW_MAX_METADATA; version 3)
 *   84     L     the application's metadata bytes (sw_set_metadata)
 *   84+L   ...   count node records, in slot order:
 *                  u64 label, u8 level (top bit: tombstone; version 2),
 *                  dim x f32 vector,
 *                  then for each layer 0..level: u32 degree, degree x u32 slot
 *   end-4  4     CRC-32C (Castagnoli) of every byte before it
 *
 * Saving keeps slot order, so a loaded index is the same graph and answers
 * every query exactly as the saved one did.
 *
 * Loading trusts nothing: every field is range-checked before use, no
 * allocation is sized by a count that the remaining file length cannot
 * back, links must point in range, not to themselves, not twice, and only
 * to nodes present on that layer; labels must be unique and vectors finite;
 * the checksum must match and nothing may follow it.  Any failure is
 * SW_ECORRUPT with the reason in sw_last_error().
 *
 * Saving is atomic: write "<path>.tmp-XXXXXX" in the same directory, fsync,
 * rename over the target, fsync the directory.  A crash leaves the old file
 * or the new one, never a mix.
 *
 * Truly deleted (FREE) slots are not written: the other nodes are numbered
 * densely in slot order, so a file never holds a hole, and a loaded index
 * starts with none to recycle.
 *
 * History: version 1 (0.1.0), first format.  Version 2 (0.2.0): the top
 * bit of a node's level byte marks a tombstone; nothing else changed, so
 * a version 1 file is read as one without tombstones.  Version 3 (0.2.0,
 * for the Python package): the metadata block after the header; earlier
 * files are read as having none.  The file-format issue replaces
 * the single checksum by one per section and adds memory-mapped serving.
 */
#define _XOPEN_SOURCE 700
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SW__MAGIC "SWALLIDX"
#define SW__FORMAT_VERSION 3u
#define LEVEL_TOMBSTONE 0x80u /* version 2: the level byte's top bit */
#define SW__HEADER_BYTES 80u

/* ==== CRC-32C ==== */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
        crc_table[i] = c;
    }
}

static uint32_t crc_update(uint32_t crc, const unsigned char *p, size_t n) {
    crc = ~crc;
    while (n--) crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ==== Writing ==== */

typedef struct writer {
    FILE *f;
    uint32_t crc;
    size_t n;
    int err; /* errno of the first failure */
    unsigned char buf[1 << 16];
} writer;

static void w_flush(writer *w) {
    if (w->n && !w->err) {
        w->crc = crc_update(w->crc, w->buf, w->n);
        if (fwrite(w->buf, 1, w->n, w->f) != w->n) w->err = errno ? errno : EIO;
    }
    w->n = 0;
}

static void w_u32(writer *w, uint32_t v) {
    if (w->n + 4 > sizeof w->buf) w_flush(w);
    for (int i = 0; i < 4; i++) w->buf[w->n++] = (unsigned char)(v >> (8 * i));
}

static void w_u64(writer *w, uint64_t v) {
    w_u32(w, (uint32_t)v);
    w_u32(w, (uint32_t)(v >> 32));
}

static void w_f32(writer *w, float f) {
    uint32_t v;
    memcpy(&v, &f, 4);
    w_u32(w, v);
}

static void w_u8(writer *w, uint8_t v) {
    if (w->n + 1 > sizeof w->buf) w_flush(w);
    w->buf[w->n++] = v;
}

static void write_index(const sw_index *ix, writer *w, const uint32_t *map) {
    for (int i = 0; i < 8; i++) w_u8(w, (uint8_t)SW__MAGIC[i]);
    w_u32(w, SW__FORMAT_VERSION);
    w_u32(w, SW__HEADER_BYTES);
    w_u32(w, ix->dim);
    w_u32(w, (uint32_t)ix->metric);
    w_u32(w, 0);
    w_u32(w, ix->M);
    w_u32(w, ix->M0);
    w_u32(w, ix->ef_construction);
    w_u32(w, sw_get_ef(ix));
    w_u32(w, (uint32_t)(ix->keep_pruned ? 1 : 0) | (uint32_t)(ix->extend_candidates ? 2 : 0));
    w_u64(w, ix->seed);
    w_u64(w, ix->rng);
    int max_level;
    uint32_t entry = sw__top(ix, &max_level);
    /* FREE slots are left out and the others numbered densely; `map` (NULL
     * when there are no FREE slots) takes a slot to its number on disk. */
    uint32_t nodes = ix->count - ix->nfree;
    w_u64(w, nodes);
    w_u32(w, entry == SW__NONE || !map ? entry : map[entry]);
    w_u32(w, (uint32_t)max_level);
    w_u32(w, (uint32_t)ix->meta_len);
    for (size_t i = 0; i < ix->meta_len; i++) w_u8(w, ix->meta[i]);
    for (uint32_t s = 0; s < ix->count; s++) {
        unsigned f = sw__flags(ix, s);
        if (f & SW__F_FREE) continue;
        int lv = sw__level(ix, s);
        w_u64(w, *sw__label_ptr(ix, s));
        w_u8(w, (uint8_t)(lv | (f & SW__F_DELETED ? LEVEL_TOMBSTONE : 0)));
        const float *v = sw__vec(ix, s);
        for (uint32_t i = 0; i < ix->dim; i++) w_f32(w, v[i]);
        for (int l = 0; l <= lv; l++) {
            const uint32_t *links = sw__links(ix, s, l);
            w_u32(w, links[0]);
            for (uint32_t j = 1; j <= links[0]; j++) w_u32(w, map ? map[links[j]] : links[j]);
        }
    }
    w_flush(w);
    uint32_t crc = w->crc;
    w_u32(w, crc);
    if (w->n && !w->err && fwrite(w->buf, 1, w->n, w->f) != w->n) w->err = errno ? errno : EIO;
    w->n = 0;
}

static void fsync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) {
        strcpy(dir, ".");
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0) n = 1;
        if (n >= sizeof dir) return;
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

sw_status sw_save(const sw_index *ix, const char *path) {
    if (!ix || !path) return sw__fail(SW_ENULL, "sw_save: %s is NULL", ix ? "path" : "index");
    pthread_once(&crc_once, crc_init);
    sw__mem *m = (sw__mem *)&ix->mem;
    size_t plen = strlen(path) + 16;
    char *tmp = sw__alloc(m, plen, 1);
    writer *w = sw__alloc(m, sizeof *w, SW__LINE);
    sw_status st = SW_OK;
    int fd = -1;
    if (!tmp || !w) {
        st = sw__fail(SW_ENOMEM, "sw_save: allocating buffers");
        goto out;
    }
    snprintf(tmp, plen, "%s.tmp-XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        st = sw__fail(SW_EIO, "cannot create a file beside %s: %s", path, strerror(errno));
        goto out;
    }
    memset(w, 0, offsetof(writer, buf));
    w->f = fdopen(fd, "wb");
    if (!w->f) {
        st = sw__fail(SW_EIO, "fdopen %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    errno = 0;
    /* No add runs while the file is written: it is one consistent moment
     * of the index.  Searches go on. */
    pthread_rwlock_wrlock(&((sw_index *)ix)->save_lock);
    uint32_t *map = NULL;
    size_t map_bytes = (size_t)ix->count * sizeof *map;
    if (ix->nfree && !(map = sw__alloc(m, map_bytes, sizeof *map))) {
        w->err = ENOMEM;
    } else {
        for (uint32_t s = 0, next = 0; map && s < ix->count; s++)
            map[s] = sw__flags(ix, s) & SW__F_FREE ? SW__NONE : next++;
        write_index(ix, w, map);
    }
    pthread_rwlock_unlock(&((sw_index *)ix)->save_lock);
    if (map) sw__free(m, map, map_bytes);
    if (!w->err && fflush(w->f) != 0) w->err = errno ? errno : EIO;
    if (!w->err && fsync(fileno(w->f)) != 0) w->err = errno ? errno : EIO;
    if (fclose(w->f) != 0 && !w->err) w->err = errno ? errno : EIO;
    if (!w->err && rename(tmp, path) != 0) w->err = errno ? errno : EIO;
    if (w->err == ENOMEM) {
        st = sw__fail(SW_ENOMEM, "sw_save: numbering the slots of %s", path);
        unlink(tmp);
        goto out;
    }
    if (w->err) {
        st = sw__fail(SW_EIO, "writing %s: %s", path, strerror(w->err));
        unlink(tmp);
        goto out;
    }
    fsync_dir(path);
out:
    sw__free(m, w, sizeof *w);
    sw__free(m, tmp, plen);
    return st;
}

/* ==== Reading ==== */

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
    r->crc = crc_update(r->crc, dst, n);
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

sw_status sw_load(const char *path, const sw_allocator *allocator, sw_index **out) {
    if (out) *out = NULL;
    if (!path || !out) return sw__fail(SW_ENULL, "sw_load: %s is NULL", path ? "out" : "path");
    if (allocator && (!allocator->alloc || !allocator->free))
        return sw__fail(SW_EINVAL, "allocator has a NULL alloc or free function");
    pthread_once(&crc_once, crc_init);

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
    if (version < 1 || version > SW__FORMAT_VERSION) {
        st = sw__fail(SW_EVERSION, "%s has format version %u; this library reads 1..%u", path,
                      version, SW__FORMAT_VERSION);
        goto fail;
    }
    if (hbytes != SW__HEADER_BYTES) CORRUPT("%s: header size %u, expected %u", path, hbytes, SW__HEADER_BYTES);

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
    if (etype != 0) CORRUPT("%s: unknown element type %u", path, etype);
    if (flags > 3) CORRUPT("%s: unknown flags 0x%x", path, flags);
    if (o.M0 == 0) CORRUPT("%s: M0 is 0", path);
    if (sw__check_options(&o) != SW_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", sw_last_error());
        CORRUPT("%s: bad parameters (%s)", path, why);
    }
    o.keep_pruned = flags & 1;
    o.extend_candidates = (flags >> 1) & 1;
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
