/*
 * persist.c — saving, loading and serving an index from a file (format 4).
 *
 * A file is checked sections behind a checked header, with a table of the
 * sections and a footer at the end.  docs/format.md is the same
 * specification with the reasoning; this comment is the reference.
 *
 * Every field is a fixed-width little-endian integer (floats as their IEEE
 * bits), never a dump of a C struct, so any machine reads what any other
 * wrote: a big-endian reader decodes field by field.
 *
 * Header, 128 bytes at offset 0:
 *   0   8  magic "SWALLIDX"
 *   8   4  format version: 4 (1..3 are read by persist_legacy.c)
 *   12  4  header size: 128
 *   16  4  required features: bits a reader must understand to use the
 *          file; none are defined, and a reader refuses any bit it does
 *          not know (SW_EVERSION).  Quantized storage will add some.
 *   20  4  optional features: bits a reader may ignore (none defined)
 *   24  4  dim                      28  4  metric (0 L2, 1 IP, 2 cosine, 3 L1)
 *   32  4  element type (0 float32) 36  4  M
 *   40  4  M0                       44  4  ef_construction
 *   48  4  default search ef        52  4  build flags: bit 0 keep_pruned,
 *                                          bit 1 extend_candidates
 *   56  8  seed                     64  8  level generator state
 *   72  8  node count N             80  8  tombstoned nodes among them
 *   88  4  entry node (0xffffffff when N = 0)
 *   92  4  max level (int32; -1 when N = 0)
 *   96  4  record size R            100 4  vector bytes in a record
 *   104 4  link offset in a record  108 16 reserved, zero
 *   124 4  CRC-32C of bytes 0..123
 *
 * Sections follow, each at an offset that is a multiple of 64, in
 * ascending order, never overlapping; the bytes between them are zero.
 * Nodes are numbered 0..N-1 (truly deleted slots are never written, the
 * others renumbered densely in slot order, so a loaded index has no holes).
 *   type 1  META        the application's bytes (sw_set_metadata), at most
 *                       64 KiB; absent when there are none
 *   type 2  LABELS      N x u64, node i's label; unique
 *   type 3  LEVELS      N x u8, node i's top layer, 0..max level
 *   type 4  TOMBSTONES  ceil(N/8) bytes, bit i%8 of byte i/8 set when node
 *                       i is tombstoned; the unused high bits zero
 *   type 5  UPPER       one per layer l = 1..max level (l in the entry's
 *                       argument): for each node of level >= l in
 *                       ascending order, u32 degree d <= M, then d x u32
 *                       node numbers, each of level >= l
 *   type 6  NODES       N records of R bytes: the vector (dim x f32) at 0,
 *                       padding to the link offset, u32 degree d <= M0,
 *                       M0 x u32 (d node numbers, then unused), padding to
 *                       R; padding and unused words are written as zeros
 *                       and ignored when read.  R is a multiple of 64 and
 *                       the section starts on a multiple of 64, so a
 *                       mapping of the file holds every record on its own
 *                       cache lines
 * Links never point to their own node or twice to one node.
 *
 * Section table, right after the last section: one 32-byte entry each:
 *   0 4 type   4 4 argument   8 8 offset   16 8 length
 *   24 4 flags (bit 0: required; a reader that does not know the type
 *          must refuse the file, SW_EVERSION, and may skip it otherwise;
 *          the other bits are for later versions, and a reader refuses a
 *          bit it does not know, SW_EVERSION)
 *   28 4 CRC-32C of the section's bytes
 * Footer, the last 32 bytes:
 *   0 8 table offset   8 4 number of sections   12 4 CRC-32C of the table
 *   16 8 file length   24 8 "SWIDXEND"
 *
 * Why this shape.  The NODES section is the in-memory layer-0 record
 * (internal.h) in little-endian bytes: vector and links together, as the
 * search reads them.  That is what lets sw_open_mmap serve a file without
 * copying it: the chunk directory points into the mapping, and only the
 * small parts (labels, levels, tombstones, upper layers: about 30 bytes a
 * node) are read into memory.  The issue asked for vectors and each level
 * in sections of their own; layer 0 stays with the vectors because
 * splitting them would make a mapped index either copy everything or
 * search with two cache misses per node where one does.  Each section has
 * its own checksum so that a mapped open can check every small section at
 * once and leave the big one for sw_verify; the table at the end lets the
 * writer stream sections without knowing their checksums in advance.
 *
 * Loading trusts nothing: every count, offset, length, level, degree and
 * id is bounds-checked before use, every allocation is backed by bytes the
 * file actually has (N records of R bytes must fit in the NODES section),
 * labels must be unique, vectors finite, checksums right.  Failures are
 * SW_ECORRUPT (SW_EVERSION for a newer format or feature) with what is
 * wrong in sw_last_error().
 *
 * A mapped open checks all of that except the contents of the NODES
 * section, which would mean reading the whole file (seconds for a large
 * index on a cold disk).  Searches of a mapped index clamp each layer-0
 * degree to M0 and skip ids past the last node, so a damaged record can
 * give wrong answers but never a read outside the mapping; sw_verify
 * checks the section's checksum and every record, and so does sw_save of
 * a mapped index before it copies the records into a new file.  As with any mapping,
 * truncating the file underneath a serving process is fatal to it
 * (SIGBUS); sw_save replaces files by rename, which a mapping survives.
 *
 * Saving is atomic: write "<path>.tmp-<pid>-<n>-<t>" in the same directory
 * (created exclusively, with the mode of the file it replaces), fsync,
 * rename over the target, fsync the directory; a symbolic link is
 * followed, so the file it names is replaced and the link stays.  A crash leaves the old file
 * or the new one, never a mix (tests/test_crash.c kills a saving process).
 *
 * History: version 1 (0.1.0) first format; 2 (0.2.0) tombstones; 3
 * (0.2.0) metadata; 4 (0.3.0) sections, per-section checksums, mapping.
 */
#define _XOPEN_SOURCE 700
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAGIC "SWALLIDX"
#define END_MAGIC "SWIDXEND"
#define FORMAT_VERSION 4u
#define HEADER_BYTES 128u
#define FOOTER_BYTES 32u
#define ENTRY_BYTES 32u
#define ALIGN 64u
#define MAX_SECTIONS 256u
#define SEC_REQUIRED 1u

enum { SEC_META = 1, SEC_LABELS, SEC_LEVELS, SEC_TOMBSTONES, SEC_UPPER, SEC_NODES, SEC_QUANT,
       SEC_FULL };
#define FULL_ALIGN 4096u /* the FULL section starts on a page */
#define REQ_CODES 1u /* required feature: records hold codes (quantized types) */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_BIG_ENDIAN 1
#else
#define HOST_BIG_ENDIAN 0
#endif

static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

typedef struct section {
    uint32_t type, arg;
    uint64_t off, len;
    uint32_t flags, crc;
} section;

/* ==== Writing ==== */

typedef struct writer {
    FILE *f;
    uint32_t crc; /* of the current section */
    uint64_t pos; /* file offset of buf[0] */
    size_t n;
    int err;      /* errno of the first failure */
    unsigned char buf[1 << 16];
} writer;

static void w_flush(writer *w) {
    if (w->n && !w->err) {
        w->crc = sw__crc32c(w->crc, w->buf, w->n);
        if (fwrite(w->buf, 1, w->n, w->f) != w->n) w->err = errno ? errno : EIO;
    }
    w->pos += w->n;
    w->n = 0;
}

static void w_bytes(writer *w, const void *data, size_t n) {
    const unsigned char *p = data;
    while (n) {
        if (w->n == sizeof w->buf) w_flush(w);
        size_t k = sizeof w->buf - w->n < n ? sizeof w->buf - w->n : n;
        memcpy(w->buf + w->n, p, k);
        w->n += k;
        p += k;
        n -= k;
    }
}

static void w_u32(writer *w, uint32_t v) {
    unsigned char b[4];
    put32(b, v);
    w_bytes(w, b, 4);
}

static void w_u64(writer *w, uint64_t v) {
    unsigned char b[8];
    put64(b, v);
    w_bytes(w, b, 8);
}

static void w_align(writer *w) {
    static const unsigned char zeros[ALIGN];
    size_t r = (size_t)((w->pos + w->n) % ALIGN);
    if (r) w_bytes(w, zeros, ALIGN - r);
}

static void sec_begin(writer *w, section *s, uint32_t type, uint32_t arg, uint32_t flags) {
    w_align(w);
    w_flush(w);
    w->crc = 0;
    s->type = type;
    s->arg = arg;
    s->flags = flags;
    s->off = w->pos;
}

static void sec_end(writer *w, section *s) {
    w_flush(w);
    s->len = w->pos - s->off;
    s->crc = w->crc;
}

/* The node number of slot s in the file (FREE slots are left out). */
static uint32_t num(const uint32_t *map, uint32_t s) { return map ? map[s] : s; }

static void write_index(const sw_index *ix, writer *w, const uint32_t *map, unsigned char *rec,
                        section *secs, uint32_t *nsecs) {
    int max_level;
    uint32_t entry = sw__top(ix, &max_level);
    uint64_t nodes = ix->count - ix->nfree, tombs = 0;
    for (uint32_t s = 0; s < ix->count; s++)
        tombs += (sw__flags(ix, s) & (SW__F_DELETED | SW__F_FREE)) == SW__F_DELETED;

    unsigned char h[HEADER_BYTES] = {0};
    memcpy(h, MAGIC, 8);
    put32(h + 8, FORMAT_VERSION);
    put32(h + 12, HEADER_BYTES);
    put32(h + 16, ix->type == SW_TYPE_F32 ? 0 : REQ_CODES);
    put32(h + 24, ix->dim);
    put32(h + 28, (uint32_t)ix->metric);
    put32(h + 32, (uint32_t)ix->type);
    put32(h + 36, ix->M);
    put32(h + 40, ix->M0);
    put32(h + 44, ix->ef_construction);
    put32(h + 48, sw_get_ef(ix));
    put32(h + 52, (uint32_t)(ix->keep_pruned ? 1 : 0) | (uint32_t)(ix->extend_candidates ? 2 : 0));
    put64(h + 56, ix->seed);
    put64(h + 64, ix->rng);
    put64(h + 72, nodes);
    put64(h + 80, tombs);
    put32(h + 88, entry == SW__NONE ? entry : num(map, entry));
    put32(h + 92, (uint32_t)max_level);
    put32(h + 96, (uint32_t)ix->rec_bytes);
    put32(h + 100, (uint32_t)ix->code_bytes);
    put32(h + 104, (uint32_t)ix->links_off);
    put32(h + 108, (uint32_t)ix->keep);
    put32(h + 112, ix->pq_m);
    put32(h + 124, sw__crc32c(0, h, 124));
    w_bytes(w, h, sizeof h);

    uint32_t n = 0;
    if (ix->meta_len) {
        sec_begin(w, &secs[n], SEC_META, 0, 0);
        w_bytes(w, ix->meta, ix->meta_len);
        sec_end(w, &secs[n++]);
    }
    sec_begin(w, &secs[n], SEC_LABELS, 0, SEC_REQUIRED);
    for (uint32_t s = 0; s < ix->count; s++)
        if (!(sw__flags(ix, s) & SW__F_FREE)) w_u64(w, *sw__label_ptr(ix, s));
    sec_end(w, &secs[n++]);

    sec_begin(w, &secs[n], SEC_LEVELS, 0, SEC_REQUIRED);
    for (uint32_t s = 0; s < ix->count; s++)
        if (!(sw__flags(ix, s) & SW__F_FREE)) w_bytes(w, sw__level_ptr(ix, s), 1);
    sec_end(w, &secs[n++]);

    sec_begin(w, &secs[n], SEC_TOMBSTONES, 0, SEC_REQUIRED);
    unsigned char byte = 0;
    uint64_t i = 0;
    for (uint32_t s = 0; s < ix->count; s++) {
        unsigned f = sw__flags(ix, s);
        if (f & SW__F_FREE) continue;
        if (f & SW__F_DELETED) byte |= (unsigned char)(1u << (i % 8));
        if (++i % 8 == 0) {
            w_bytes(w, &byte, 1);
            byte = 0;
        }
    }
    if (i % 8) w_bytes(w, &byte, 1);
    sec_end(w, &secs[n++]);

    for (int l = 1; l <= max_level; l++) {
        sec_begin(w, &secs[n], SEC_UPPER, (uint32_t)l, SEC_REQUIRED);
        for (uint32_t s = 0; s < ix->count; s++) {
            if ((sw__flags(ix, s) & SW__F_FREE) || sw__level(ix, s) < l) continue;
            const uint32_t *links = sw__links(ix, s, l);
            w_u32(w, links[0]);
            for (uint32_t j = 1; j <= links[0]; j++) w_u32(w, num(map, links[j]));
        }
        sec_end(w, &secs[n++]);
    }

    size_t qbytes = sw__quant_bytes(ix);
    if (qbytes) {
        /* rec is at least as large: the caller sized it so */
        sec_begin(w, &secs[n], SEC_QUANT, 0, SEC_REQUIRED);
        sw__quant_write(ix, rec);
        w_bytes(w, rec, qbytes);
        sec_end(w, &secs[n++]);
    }

    sec_begin(w, &secs[n], SEC_NODES, 0, SEC_REQUIRED);
    for (uint32_t s = 0; s < ix->count; s++) {
        if (sw__flags(ix, s) & SW__F_FREE) continue;
        memset(rec, 0, ix->rec_bytes);
        const unsigned char *v = sw__vec(ix, s);
        if (ix->type == SW_TYPE_F32) {
            for (size_t b = 0; b < ix->code_bytes; b += 4) {
                uint32_t bits;
                memcpy(&bits, v + b, 4);
                put32(rec + b, bits);
            }
        } else if (ix->type == SW_TYPE_F16) {
            for (size_t b = 0; b < ix->code_bytes; b += 2) {
                uint16_t x;
                memcpy(&x, v + b, 2);
                rec[b] = (unsigned char)x;
                rec[b + 1] = (unsigned char)(x >> 8);
            }
        } else {
            memcpy(rec, v, ix->code_bytes);
        }
        const uint32_t *links = sw__links0(ix, s);
        unsigned char *lp = rec + ix->links_off;
        /* bounded even for a mapped index, whose records sw_save checked
         * just before (a file rewritten meanwhile must not overrun rec) */
        uint32_t deg = links[0] < ix->M0 ? links[0] : ix->M0;
        put32(lp, deg);
        for (uint32_t j = 1; j <= deg; j++) put32(lp + 4 * (size_t)j, num(map, links[j]));
        w_bytes(w, rec, ix->rec_bytes);
    }
    sec_end(w, &secs[n++]);

    if (ix->has_full) {
        /* Last, and on a page of its own, so a loader can map it alone
         * (SW_KEEP_DISK). */
        static const unsigned char zeros[ALIGN];
        w_align(w);
        while ((w->pos + w->n) % FULL_ALIGN) w_bytes(w, zeros, ALIGN);
        sec_begin(w, &secs[n], SEC_FULL, 0, SEC_REQUIRED);
        for (uint32_t s = 0; s < ix->count; s++) {
            if (sw__flags(ix, s) & SW__F_FREE) continue;
            const float *v = sw__full(ix, s);
            for (uint32_t d = 0; d < ix->dim; d++) {
                uint32_t bits;
                memcpy(&bits, &v[d], 4);
                w_u32(w, bits);
            }
        }
        sec_end(w, &secs[n++]);
    }

    /* the table, then the footer */
    w_align(w);
    w_flush(w);
    uint64_t table_off = w->pos;
    uint32_t tcrc = 0;
    for (uint32_t k = 0; k < n; k++) {
        unsigned char e[ENTRY_BYTES];
        put32(e, secs[k].type);
        put32(e + 4, secs[k].arg);
        put64(e + 8, secs[k].off);
        put64(e + 16, secs[k].len);
        put32(e + 24, secs[k].flags);
        put32(e + 28, secs[k].crc);
        tcrc = sw__crc32c(tcrc, e, sizeof e);
        w_bytes(w, e, sizeof e);
    }
    unsigned char f[FOOTER_BYTES];
    put64(f, table_off);
    put32(f + 8, n);
    put32(f + 12, tcrc);
    put64(f + 16, table_off + (uint64_t)n * ENTRY_BYTES + FOOTER_BYTES);
    memcpy(f + 24, END_MAGIC, 8);
    w_bytes(w, f, sizeof f);
    w_flush(w);
    *nsecs = n;
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

/* A new file beside `path` for the save: created exclusively, with mode
 * 0666 less the umask as any new file gets (mkstemp's 0600 would take
 * other users' read access away from an index they could read), then
 * given the mode of the file it replaces, if there is one. */
static int create_temp(const char *path, char *tmp, size_t plen) {
    static atomic_uint counter;
    struct stat sb;
    int fd = -1;
    for (int tries = 0; tries < 64 && fd < 0; tries++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(tmp, plen, "%s.tmp-%ld-%u-%lx", path, (long)getpid(),
                 atomic_fetch_add(&counter, 1), (unsigned long)ts.tv_nsec);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) return -1;
    }
    if (fd >= 0 && stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) (void)fchmod(fd, sb.st_mode & 07777);
    return fd;
}

sw_status sw_save(const sw_index *ix, const char *path) {
    if (!ix || !path) return sw__fail(SW_ENULL, "sw_save: %s is NULL", ix ? "path" : "index");
    sw__mem *m = (sw__mem *)&ix->mem;
    /* Saving to a symbolic link writes the file it points to (the rename
     * would otherwise replace the link itself by a file). */
    char *real = NULL;
    struct stat lsb;
    if (lstat(path, &lsb) == 0 && S_ISLNK(lsb.st_mode) && (real = realpath(path, NULL))) path = real;
    size_t plen = strlen(path) + 64;
    size_t secs_bytes = (SW__MAX_LEVEL + 8) * sizeof(section);
    char *tmp = sw__alloc(m, plen, 1);
    writer *w = sw__alloc(m, sizeof *w, SW__LINE);
    /* one record, or the quantizer's section (written through it) */
    size_t rec_len = ix->rec_bytes > sw__quant_bytes(ix) ? ix->rec_bytes : sw__quant_bytes(ix);
    unsigned char *rec = sw__alloc(m, rec_len, SW__LINE);
    section *secs = sw__alloc(m, secs_bytes, 8);
    sw_status st = SW_OK;
    int fd = -1;
    if (!tmp || !w || !rec || !secs) {
        st = sw__fail(SW_ENOMEM, "sw_save: allocating buffers");
        goto out;
    }
    fd = create_temp(path, tmp, plen);
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
    /* A mapped index's records were not checked at open (see the top):
     * check them before copying them into a new file, which would
     * otherwise carry the damage on, or overrun `rec` on a bad degree. */
    if ((st = sw__verify_mapped(ix, "sw_save")) != SW_OK) {
        fclose(w->f);
        unlink(tmp);
        goto out;
    }
    errno = 0;
    /* No add runs while the file is written: it is one consistent moment
     * of the index.  Searches go on. */
    pthread_rwlock_wrlock(&((sw_index *)ix)->save_lock);
    uint32_t *map = NULL, nsecs = 0;
    size_t map_bytes = (size_t)ix->count * sizeof *map;
    if (ix->nfree && !(map = sw__alloc(m, map_bytes, sizeof *map))) {
        w->err = ENOMEM;
    } else {
        for (uint32_t s = 0, next = 0; map && s < ix->count; s++)
            map[s] = sw__flags(ix, s) & SW__F_FREE ? SW__NONE : next++;
        write_index(ix, w, map, rec, secs, &nsecs);
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
    sw__free(m, secs, secs_bytes);
    sw__free(m, rec, rec_len);
    sw__free(m, w, sizeof *w);
    sw__free(m, tmp, plen);
    free(real);
    return st;
}

/* ==== Reading ==== */

/* A file being read: all of it in memory (mapped, or read in). */
typedef struct file {
    const char *path;
    const unsigned char *p;
    uint64_t len;
    bool mapped;    /* p is an mmap of the file, else an allocation */
    bool owned;     /* the index has taken the mapping over */
    section sec[MAX_SECTIONS];
    uint32_t nsec;
    const section *meta, *labels, *levels, *tombs, *nodes, *quant, *full;
    int fd;         /* open until the load ends (SW_KEEP_DISK maps from it) */
    const section *upper[SW__MAX_LEVEL + 1];
} file;

#define CORRUPT(...)                             \
    do {                                         \
        st = sw__fail(SW_ECORRUPT, __VA_ARGS__); \
        goto fail;                               \
    } while (0)

static bool all_zero(const unsigned char *p, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

/* The footer, the table, each section's bounds, type and checksum (that
 * of the NODES section only if !skip_nodes_crc). */
static sw_status read_table(file *fl, int max_level, bool skip_nodes_crc) {
    sw_status st = SW_OK;
    const char *path = fl->path;
    const unsigned char *f = fl->p + fl->len - FOOTER_BYTES;
    if (memcmp(f + 24, END_MAGIC, 8) != 0)
        CORRUPT("%s: no footer at the end (the file is truncated or damaged)", path);
    uint64_t table_off = sw__get64le(f), flen = sw__get64le(f + 16);
    uint32_t n = sw__get32le(f + 8);
    if (flen != fl->len)
        CORRUPT("%s: the file has %llu bytes, its footer says %llu (truncated or extended)", path,
                (unsigned long long)fl->len, (unsigned long long)flen);
    /* no sum of file fields before each is known to be in range: a table
     * offset near 2^64 must not wrap round to a plausible end */
    if (n > MAX_SECTIONS || table_off < HEADER_BYTES || table_off % ALIGN ||
        table_off > fl->len - FOOTER_BYTES ||
        (uint64_t)n * ENTRY_BYTES != fl->len - FOOTER_BYTES - table_off)
        CORRUPT("%s: bad section table (%u sections at %llu)", path, n,
                (unsigned long long)table_off);
    if (sw__crc32c(0, fl->p + table_off, (size_t)n * ENTRY_BYTES) != sw__get32le(f + 12))
        CORRUPT("%s: section table checksum mismatch (file damaged)", path);
    uint64_t end = HEADER_BYTES;
    for (uint32_t k = 0; k < n; k++) {
        const unsigned char *e = fl->p + table_off + (uint64_t)k * ENTRY_BYTES;
        section *s = &fl->sec[k];
        s->type = sw__get32le(e);
        s->arg = sw__get32le(e + 4);
        s->off = sw__get64le(e + 8);
        s->len = sw__get64le(e + 16);
        s->flags = sw__get32le(e + 24);
        s->crc = sw__get32le(e + 28);
        if (s->off % ALIGN || s->off < end || s->off > table_off || s->len > table_off - s->off)
            CORRUPT("%s: section %u (type %u) at %llu, %llu bytes, is out of place", path, k,
                    s->type, (unsigned long long)s->off, (unsigned long long)s->len);
        if (!all_zero(fl->p + end, s->off - end))
            CORRUPT("%s: non-zero bytes between sections at %llu", path, (unsigned long long)end);
        end = s->off + s->len;
        if (s->flags & ~SEC_REQUIRED) {
            st = sw__fail(SW_EVERSION, "%s: section %u has flags 0x%x that this library does not know",
                          path, k, s->flags);
            goto fail;
        }
        const section **slot = NULL;
        switch (s->type) {
        case SEC_META: slot = &fl->meta; break;
        case SEC_LABELS: slot = &fl->labels; break;
        case SEC_LEVELS: slot = &fl->levels; break;
        case SEC_TOMBSTONES: slot = &fl->tombs; break;
        case SEC_NODES: slot = &fl->nodes; break;
        case SEC_QUANT: slot = &fl->quant; break;
        case SEC_FULL: slot = &fl->full; break;
        case SEC_UPPER:
            if (s->arg < 1 || (int64_t)s->arg > max_level)
                CORRUPT("%s: a section for layer %u, the max level is %d", path, s->arg, max_level);
            slot = &fl->upper[s->arg];
            break;
        default:
            if (s->flags & SEC_REQUIRED) {
                st = sw__fail(SW_EVERSION,
                              "%s needs section type %u, which this library does not know "
                              "(written by a newer version)",
                              path, s->type);
                goto fail;
            }
        }
        if (slot && s->type != SEC_UPPER && s->arg != 0)
            CORRUPT("%s: section %u (type %u) has argument %u", path, k, s->type, s->arg);
        if (slot) {
            if (*slot) CORRUPT("%s: section type %u (%u) appears twice", path, s->type, s->arg);
            *slot = s;
        }
        if (!(skip_nodes_crc && (s->type == SEC_NODES || s->type == SEC_FULL)) &&
            sw__crc32c(0, fl->p + s->off, (size_t)s->len) != s->crc)
            CORRUPT("%s: checksum mismatch in section %u (type %u; file damaged)", path, k, s->type);
    }
    if (!all_zero(fl->p + end, table_off - end))
        CORRUPT("%s: non-zero bytes before the section table", path);
    fl->nsec = n;
fail:
    return st;
}

/* Read the file into fl: a private read-only mapping, or (where the file
 * cannot be mapped) a copy in memory. */
static sw_status open_file(file *fl, int fd, uint64_t size, sw__mem *m, bool must_map) {
    fl->len = size;
    void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p != MAP_FAILED) {
        fl->p = p;
        fl->mapped = true;
        return SW_OK;
    }
    if (must_map) return sw__fail(SW_EIO, "cannot map %s: %s", fl->path, strerror(errno));
    unsigned char *buf = sw__alloc(m, (size_t)size, SW__LINE);
    if (!buf) return sw__fail(SW_ENOMEM, "reading %s: %llu bytes", fl->path, (unsigned long long)size);
    for (uint64_t got = 0; got < size;) {
        ssize_t r = pread(fd, buf + got, (size_t)(size - got), (off_t)got);
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            sw__free(m, buf, (size_t)size);
            return sw__fail(SW_EIO, "reading %s: %s", fl->path, strerror(e));
        }
        got += (uint64_t)r;
    }
    fl->p = buf;
    return SW_OK;
}

static void close_file(file *fl, sw__mem *m) {
    if (!fl->p || fl->owned) return;
    if (fl->mapped) munmap((void *)fl->p, (size_t)fl->len);
    else sw__free(m, (void *)fl->p, (size_t)fl->len);
    fl->p = NULL;
}

/* Check one layer-0 record in memory (host byte order): degree, links in
 * range, not to itself, not twice (stamp[] marks the links seen, stamped
 * with the node's number + 1), finite vector. */
static bool check_record(const sw_index *ix, uint32_t s, uint32_t count, uint32_t *stamp,
                         char *why, size_t whylen) {
    const unsigned char *code = sw__vec(ix, s);
    bool bad = false;
    if (ix->type == SW_TYPE_F32) {
        const float *v = (const float *)(const void *)code;
        for (uint32_t i = 0; i < ix->dim; i++) bad |= !isfinite(v[i]);
    } else if (ix->type == SW_TYPE_F16) {
        const uint16_t *v = (const uint16_t *)(const void *)code;
        for (uint32_t i = 0; i < ix->dim; i++) bad |= (v[i] & 0x7c00) == 0x7c00;
    } else if (ix->type == SW_TYPE_BINARY && ix->dim % 8) {
        bad = code[ix->code_bytes - 1] >> (ix->dim % 8) != 0; /* the kernels need them 0 */
    }
    if (bad) {
        snprintf(why, whylen, "node %u has a non-finite element or a bad code", s);
        return false;
    }
    const uint32_t *links = sw__links0(ix, s);
    uint32_t deg = links[0]; /* read once: the records may be a mapping */
    if (deg > ix->M0) {
        snprintf(why, whylen, "node %u layer 0 has degree %u above %u", s, deg, ix->M0);
        return false;
    }
    for (uint32_t j = 1; j <= deg; j++) {
        uint32_t t = links[j];
        if (t >= count || t == s) {
            snprintf(why, whylen, "node %u layer 0 has a bad link %u", s, t);
            return false;
        }
        if (stamp[t] == s + 1) {
            snprintf(why, whylen, "node %u layer 0 links twice to %u", s, t);
            return false;
        }
        stamp[t] = s + 1;
    }
    return true;
}

/* Copy the NODES section into allocated chunks (copy mode). */
static sw_status copy_records(sw_index *ix, const file *fl, uint32_t count) {
    sw_status st = SW_OK;
    const char *path = fl->path;
    const unsigned char *src = fl->p + fl->nodes->off;
    size_t per = sw__chunk_slots(ix);
    for (uint32_t first = 0; first < count; first += (uint32_t)per) {
        if ((st = sw__storage_reserve(ix, (size_t)first + 1)) != SW_OK) return st;
        size_t k = count - first < per ? count - first : per;
        memcpy(sw__rec(ix, first), src + (size_t)first * ix->rec_bytes, k * ix->rec_bytes);
        if (HOST_BIG_ENDIAN) {
            for (size_t i = 0; i < k; i++) {
                unsigned char *r = (unsigned char *)sw__rec(ix, first + (uint32_t)i);
                if (ix->type == SW_TYPE_F32)
                    for (size_t b = 0; b < ix->code_bytes; b += 4) {
                        uint32_t x = sw__get32le(r + b);
                        memcpy(r + b, &x, 4);
                    }
                if (ix->type == SW_TYPE_F16)
                    for (size_t b = 0; b < ix->code_bytes; b += 2) {
                        uint16_t x = (uint16_t)(r[b] | r[b + 1] << 8);
                        memcpy(r + b, &x, 2);
                    }
                for (size_t b = 0; b < 4 * (1 + (size_t)ix->M0); b += 4) {
                    uint32_t x = sw__get32le(r + ix->links_off + b);
                    memcpy(r + ix->links_off + b, &x, 4);
                }
            }
        }
    }
    uint32_t *stamp = calloc(count ? count : 1, sizeof *stamp);
    if (!stamp) return sw__fail(SW_ENOMEM, "loading %s: checking the links", path);
    char why[160];
    for (uint32_t s = 0; s < count; s++)
        if (!check_record(ix, s, count, stamp, why, sizeof why)) {
            free(stamp);
            return sw__fail(SW_ECORRUPT, "%s: %s", path, why);
        }
    free(stamp);
    return SW_OK;
}

/* The full-precision copies of a compressed index, loaded with its
 * records: copied into the chunks' arrays, or for SW_KEEP_DISK mapped
 * from the file (a private writable mapping, so that an update of a
 * loaded index changes its copy, never the file); the last chunk, which
 * later adds may fill past the file's nodes, is copied either way. */
static sw_status load_full(sw_index *ix, const file *fl, uint32_t count) {
    if (!ix->has_full || !count) return SW_OK;
    const char *path = fl->path;
    const unsigned char *src = fl->p + fl->full->off;
    size_t per = sw__chunk_slots(ix), whole = 0;
    if (ix->keep == SW_KEEP_DISK && !HOST_BIG_ENDIAN && count >= per && fl->full->off % FULL_ALIGN == 0) {
        whole = count / per;
        size_t len = whole * per * ix->vec_bytes;
        void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fl->fd, (off_t)fl->full->off);
        if (m == MAP_FAILED)
            return sw__fail(SW_EIO, "cannot map the vectors of %s: %s", path, strerror(errno));
        posix_madvise(m, len, POSIX_MADV_RANDOM); /* re-ranking reads a few vectors, anywhere */
        for (size_t i = 0; i < whole; i++) {
            sw__free(&ix->mem, ix->dir[i].full, per * ix->vec_bytes);
            ix->dir[i].full = (float *)m + i * per * ix->dim;
        }
        ix->full_map = m;
        ix->full_map_len = len;
    }
    for (uint32_t s = (uint32_t)(whole * per); s < count; s++) {
        float *v = sw__full(ix, s);
        const unsigned char *p = src + (size_t)s * ix->vec_bytes;
        for (uint32_t d = 0; d < ix->dim; d++) {
            uint32_t x = sw__get32le(p + 4 * (size_t)d);
            memcpy(&v[d], &x, 4);
            if (!isfinite(v[d]))
                return sw__fail(SW_ECORRUPT, "%s: node %u's full-precision vector is not finite",
                                path, s);
        }
    }
    return SW_OK;
}

/* Read one UPPER section into the nodes' upper-layer lists. */
static sw_status read_upper(sw_index *ix, const file *fl, int l, uint32_t count) {
    sw_status st = SW_OK;
    const char *path = fl->path;
    const section *sec = fl->upper[l];
    const unsigned char *p = fl->p + sec->off, *end = p + sec->len;
    for (uint32_t s = 0; s < count; s++) {
        int lv = sw__level(ix, s);
        if (lv < l) continue;
        if (l == 1 && !(*sw__upper_ptr(ix, s) = sw__upper_alloc(ix, lv)))
            return sw__fail(SW_ENOMEM, "loading %s: links of node %u", path, s);
        uint32_t *links = sw__links(ix, s, l);
        if (end - p < 4) CORRUPT("%s: layer %d section ends before node %u", path, l, s);
        uint32_t deg = sw__get32le(p);
        p += 4;
        if (deg > ix->M) CORRUPT("%s: node %u layer %d has degree %u above %u", path, s, l, deg, ix->M);
        if ((uint64_t)(end - p) < 4 * (uint64_t)deg)
            CORRUPT("%s: layer %d section ends inside node %u's list", path, l, s);
        for (uint32_t j = 1; j <= deg; j++, p += 4) {
            uint32_t t = sw__get32le(p);
            if (t >= count || t == s) CORRUPT("%s: node %u layer %d has a bad link %u", path, s, l, t);
            if (sw__level(ix, t) < l)
                CORRUPT("%s: node %u links on layer %d to a node not on it", path, s, l);
            if (sw__in_list(links + 1, j - 1, t))
                CORRUPT("%s: node %u layer %d links twice to %u", path, s, l, t);
            links[j] = t;
        }
        links[0] = deg;
    }
    if (p != end) CORRUPT("%s: %lld extra bytes in the layer %d section", path, (long long)(end - p), l);
fail:
    return st;
}

/* The part of the loader after the header: sections into the index. */
static sw_status read_body(sw_index *ix, file *fl, uint64_t count64, uint64_t tombs,
                           uint32_t entry, int max_level, bool map) {
    sw_status st = SW_OK;
    const char *path = fl->path;
    uint32_t count = (uint32_t)count64;
    if (!fl->labels || !fl->levels || !fl->tombs || !fl->nodes)
        CORRUPT("%s: a required section is missing (%s)", path,
                !fl->labels ? "labels" : !fl->levels ? "levels" : !fl->tombs ? "tombstones" : "nodes");
    for (int l = 1; l <= max_level; l++)
        if (!fl->upper[l]) CORRUPT("%s: the section of layer %d is missing", path, l);
    if (fl->labels->len != count64 * 8 || fl->levels->len != count64 ||
        fl->tombs->len != (count64 + 7) / 8 || fl->nodes->len / ix->rec_bytes != count64 ||
        fl->nodes->len % ix->rec_bytes)
        CORRUPT("%s: section sizes do not match %llu nodes", path, (unsigned long long)count64);
    if (fl->quant && !(ix->type == SW_TYPE_I8 || ix->type == SW_TYPE_BINARY || ix->type == SW_TYPE_PQ))
        CORRUPT("%s: a quantizer section in a file of element type %d", path, (int)ix->type);
    if (count && !fl->quant && !sw_is_trained(ix))
        CORRUPT("%s: %u compressed vectors but no quantizer section", path, count);
    if (!ix->has_full != !fl->full ||
        (fl->full && fl->full->len != count64 * ix->vec_bytes))
        CORRUPT("%s: the full-precision vectors section is %s", path,
                fl->full ? "of the wrong size or unexpected" : "missing");
    if (fl->quant && (st = sw__quant_read(ix, fl->p + fl->quant->off, (size_t)fl->quant->len,
                                          path)) != SW_OK)
        goto fail;
    if (fl->meta && fl->meta->len > SW_MAX_METADATA)
        CORRUPT("%s: %llu bytes of metadata, at most %u", path, (unsigned long long)fl->meta->len,
                SW_MAX_METADATA);

    /* Storage: every allocation from here on is backed by the sections'
     * lengths, which are within the file. */
    if (map) {
        /* the index owns the mapping (sw_free unmaps it) from the moment
         * sw__storage_map records it, even if it then fails */
        fl->owned = true;
        if ((st = sw__storage_map(ix, (void *)(uintptr_t)fl->p, (size_t)fl->len,
                                  (size_t)fl->nodes->off, count)) != SW_OK)
            goto fail;
        ix->map_nodes_len = (size_t)fl->nodes->len;
        ix->map_nodes_crc = fl->nodes->crc;
        if (ix->has_full) { /* copies served from the mapping too */
            ix->full_map = ix->map;
            ix->full_map_len = ix->map_len;
            for (size_t i = 0; i < ix->nchunks; i++)
                ix->dir[i].full = (float *)(void *)((char *)ix->map + fl->full->off) +
                                  i * sw__chunk_slots(ix) * ix->dim;
        }
    } else if ((st = copy_records(ix, fl, count)) != SW_OK || (st = load_full(ix, fl, count)) != SW_OK) {
        goto fail;
    }
    ix->count = count;

    const unsigned char *lev = fl->p + fl->levels->off;
    uint32_t per_level[SW__MAX_LEVEL + 1] = {0};
    for (uint32_t s = 0; s < count; s++) {
        int lv = lev[s]; /* read once: the file is mapped */
        if (lv > max_level) CORRUPT("%s: node %u has level %d above the max %d", path, s, lv, max_level);
        *sw__level_ptr(ix, s) = (uint8_t)lv;
        /* Levels are drawn with P(level >= l) = M^-l, and upper lists are
         * allocated at full size, so a crafted file of high-level nodes
         * with empty lists could make a small file take gigabytes; no index
         * this library wrote has 8x the expected count at a level (plus
         * slack for small indexes). */
        for (int l = 1; l <= lv; l++)
            if (++per_level[l] > 8.0 * (double)count * pow((double)ix->M, -(double)l) + 64.0)
                CORRUPT("%s: implausibly many nodes (%u) on level %d of %u", path, per_level[l], l, count);
    }
    if (count && lev[entry] != max_level)
        CORRUPT("%s: entry point %u is not on the top layer", path, entry);

    if ((st = sw__labels_reserve(&ix->mem, &ix->labels, count)) != SW_OK) goto fail;
    const unsigned char *lab = fl->p + fl->labels->off;
    for (uint32_t s = 0; s < count; s++) *sw__label_ptr(ix, s) = sw__get64le(lab + 8 * (size_t)s);
    size_t dup = sw__labels_put_all(&ix->labels, count);
    if (dup != SIZE_MAX)
        CORRUPT("%s: label %llu appears twice", path, (unsigned long long)*sw__label_ptr(ix, (uint32_t)dup));

    const unsigned char *tb = fl->p + fl->tombs->off;
    uint64_t seen = 0;
    for (uint32_t s = 0; s < count; s++)
        if (tb[s / 8] >> (s % 8) & 1) {
            *sw__flags_ptr(ix, s) = SW__F_DELETED;
            seen++;
        }
    if (count % 8 && tb[count / 8] >> (count % 8))
        CORRUPT("%s: tombstone bits set past the last node", path);
    if (seen != tombs)
        CORRUPT("%s: %llu tombstones, the header says %llu", path, (unsigned long long)seen,
                (unsigned long long)tombs);
    ix->ndeleted = seen;

    for (int l = 1; l <= max_level; l++)
        if ((st = read_upper(ix, fl, l, count)) != SW_OK) goto fail;

    if (fl->meta && fl->meta->len) {
        if (!(ix->meta = sw__alloc(&ix->mem, (size_t)fl->meta->len, 1))) {
            st = sw__fail(SW_ENOMEM, "loading %s: metadata", path);
            goto fail;
        }
        ix->meta_len = (size_t)fl->meta->len;
        memcpy(ix->meta, fl->p + fl->meta->off, ix->meta_len);
    }
    if (!map) sw__recount_indegrees(ix);
    sw__set_top(ix, count ? entry : SW__NONE, max_level);
fail:
    return st;
}

sw_status sw__file_options(sw_options *o, uint32_t etype, uint32_t flags, const char *path) {
    if (etype > SW_TYPE_PQ) return sw__fail(SW_ECORRUPT, "%s: unknown element type %u", path, etype);
    o->type = (sw_type)etype;
    if (flags > 3) return sw__fail(SW_ECORRUPT, "%s: unknown build flags 0x%x", path, flags);
    if (o->M0 == 0) return sw__fail(SW_ECORRUPT, "%s: M0 is 0", path);
    if (sw__check_options(o) != SW_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", sw_last_error());
        return sw__fail(SW_ECORRUPT, "%s: bad parameters (%s)", path, why);
    }
    o->keep_pruned = flags & 1;
    o->extend_candidates = (flags >> 1) & 1;
    return SW_OK;
}

static sw_status load(const char *path, const sw_allocator *allocator, sw_index **out, bool map,
                      const char *fn) {
    if (out) *out = NULL;
    if (!path || !out) return sw__fail(SW_ENULL, "%s: %s is NULL", fn, path ? "out" : "path");
    if (allocator && (!allocator->alloc || !allocator->free))
        return sw__fail(SW_EINVAL, "allocator has a NULL alloc or free function");

    sw_status st = SW_OK;
    sw_index *ix = NULL;
    file *fl = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return sw__fail(SW_EIO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return sw__fail(SW_EIO, "%s is not a regular file", path);
    }
    unsigned char h[HEADER_BYTES];
    ssize_t got = pread(fd, h, sizeof h, 0);
    if (got < 0) {
        st = sw__fail(SW_EIO, "reading %s: %s", path, strerror(errno));
        close(fd);
        return st;
    }
    if (got < 12 || memcmp(h, MAGIC, 8) != 0) {
        close(fd);
        return sw__fail(SW_ECORRUPT, "%s is not a smallworld index (bad magic)", path);
    }
    uint32_t version = sw__get32le(h + 8);
    if (version >= 1 && version < FORMAT_VERSION) {
        close(fd);
        if (!map) return sw__load_legacy(path, allocator, out);
        return sw__fail(SW_EVERSION,
                        "%s has format version %u, which cannot be mapped; sw_load it and "
                        "sw_save it again to convert it to version %u",
                        path, version, FORMAT_VERSION);
    }
    if (version != FORMAT_VERSION) {
        close(fd);
        return sw__fail(SW_EVERSION, "%s has format version %u; this library reads 1..%u", path,
                        version, FORMAT_VERSION);
    }
    if ((uint64_t)sb.st_size < HEADER_BYTES + FOOTER_BYTES || got < (ssize_t)HEADER_BYTES) {
        close(fd);
        return sw__fail(SW_ECORRUPT, "%s: file truncated (%lld bytes)", path, (long long)sb.st_size);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX / 2) {
        close(fd);
        return sw__fail(SW_ECORRUPT, "%s: too large for this machine", path);
    }
    if (sw__crc32c(0, h, 124) != sw__get32le(h + 124)) {
        close(fd);
        return sw__fail(SW_ECORRUPT, "%s: header checksum mismatch (file damaged)", path);
    }

    sw_options o = sw_options_default();
    uint32_t hbytes = sw__get32le(h + 12), required = sw__get32le(h + 16), optional = sw__get32le(h + 20);
    o.dim = sw__get32le(h + 24);
    o.metric = (sw_metric)sw__get32le(h + 28);
    uint32_t etype = sw__get32le(h + 32);
    o.M = sw__get32le(h + 36);
    o.M0 = sw__get32le(h + 40);
    o.ef_construction = sw__get32le(h + 44);
    o.ef_search = sw__get32le(h + 48);
    uint32_t flags = sw__get32le(h + 52);
    o.seed = sw__get64le(h + 56);
    uint64_t rng = sw__get64le(h + 64), count = sw__get64le(h + 72), tombs = sw__get64le(h + 80);
    uint32_t entry = sw__get32le(h + 88);
    int32_t max_level = (int32_t)sw__get32le(h + 92);
    uint32_t rbytes = sw__get32le(h + 96), vbytes = sw__get32le(h + 100), loff = sw__get32le(h + 104);
    o.keep = (sw_keep)sw__get32le(h + 108);
    o.pq_m = sw__get32le(h + 112);
    (void)optional; /* nothing defined; a reader may ignore these bits */

    fl = calloc(1, sizeof *fl);
    if (!fl) {
        close(fd);
        return sw__fail(SW_ENOMEM, "loading %s", path);
    }
    fl->path = path;
    fl->fd = fd;
    if (required & ~REQ_CODES) {
        st = sw__fail(SW_EVERSION, "%s needs features 0x%x that this library does not have", path,
                      required & ~REQ_CODES);
        goto fail;
    }
    if (hbytes != HEADER_BYTES) CORRUPT("%s: header size %u, expected %u", path, hbytes, HEADER_BYTES);
    if (!all_zero(h + 116, 8)) CORRUPT("%s: reserved header bytes are not zero", path);
    if ((required != 0) != (etype != 0))
        CORRUPT("%s: element type %u with required features 0x%x", path, etype, required);
    if ((st = sw__file_options(&o, etype, flags, path)) != SW_OK) goto fail;
    if (count > SW__MAX_SLOTS) CORRUPT("%s: node count %llu too large", path, (unsigned long long)count);
    if (tombs > count) CORRUPT("%s: %llu tombstones among %llu nodes", path, (unsigned long long)tombs,
                               (unsigned long long)count);
    if (count == 0 ? (entry != SW__NONE || max_level != -1)
                   : (entry >= count || max_level < 0 || max_level > SW__MAX_LEVEL))
        CORRUPT("%s: bad entry point %u / max level %d", path, entry, max_level);

    /* Map (or read) the file, check its table and sections. */
    if ((st = sw__index_new(&o, allocator, &ix)) != SW_OK) goto fail;
    if (rbytes != ix->rec_bytes || vbytes != ix->code_bytes || loff != ix->links_off)
        CORRUPT("%s: record layout %u/%u/%u, expected %zu/%zu/%zu for these parameters", path,
                rbytes, vbytes, loff, ix->rec_bytes, ix->code_bytes, ix->links_off);
    bool serve = map && !HOST_BIG_ENDIAN; /* a big-endian host copies */
    if ((st = open_file(fl, fd, (uint64_t)sb.st_size, &ix->mem, serve)) != SW_OK) goto fail;
    if ((st = read_table(fl, max_level, serve)) != SW_OK) goto fail;
    ix->rng = rng;
    if ((st = read_body(ix, fl, count, tombs, entry, max_level, serve)) != SW_OK) goto fail;
    close(fd);
    fd = -1;
    close_file(fl, &ix->mem);
    ix->readonly = map;
    free(fl);
    *out = ix;
    return SW_OK;

fail:
    if (fd >= 0) close(fd);
    if (fl->p) close_file(fl, &ix->mem); /* fl->p is set only once ix exists */
    sw_free(ix);
    free(fl);
    return st;
}

sw_status sw_load(const char *path, const sw_allocator *allocator, sw_index **out) {
    return load(path, allocator, out, false, "sw_load");
}

sw_status sw_open_mmap(const char *path, const sw_allocator *allocator, sw_index **out) {
    return load(path, allocator, out, true, "sw_open_mmap");
}

int sw_is_readonly(const sw_index *ix) { return ix && ix->readonly; }

/* What a mapped open left unchecked: the records' checksum, then each
 * record as sw_load checks it (a record can be wrong under a right
 * checksum only if written so on purpose). */
sw_status sw__verify_mapped(const sw_index *ix, const char *fn) {
    if (!ix->map) return SW_OK;
    const unsigned char *p = (const unsigned char *)ix->map + ix->map_nodes_off;
    if (sw__crc32c(0, p, ix->map_nodes_len) != ix->map_nodes_crc)
        return sw__fail(SW_ECORRUPT, "%s: checksum mismatch in the mapped records (file damaged)", fn);
    uint32_t *stamp = calloc(ix->count ? ix->count : 1, sizeof *stamp);
    if (!stamp) return sw__fail(SW_ENOMEM, "%s: checking the mapped records", fn);
    char why[160];
    sw_status st = SW_OK;
    for (uint32_t s = 0; s < ix->count && st == SW_OK; s++)
        if (!check_record(ix, s, ix->count, stamp, why, sizeof why))
            st = sw__fail(SW_ECORRUPT, "%s: mapped record: %s", fn, why);
    free(stamp);
    return st;
}
