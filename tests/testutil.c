/*
 * testutil.c — the shared machinery of the tests.
 *
 * Data.  Every data set is generated here from a 64-bit seed with SplitMix64
 * and Box-Muller, not with rand(): the C library's generator differs between
 * platforms, and a recall test whose data changes with the libc would be
 * measuring the libc.  The mixture is a set of Gaussian clusters with
 * different spreads, which gives the index real neighbourhood structure
 * (uniform noise in 32 dimensions has almost none, and says little about
 * how the index behaves on embeddings).  The spreads (0.6 to 1.2 against
 * unit-variance centres) make the clusters overlap enough that the search
 * has work to do: on the 20,000 x 32 recall set, recall@10 at ef = 20 is
 * 0.93-0.96 and reaches 0.998-1.0 only around ef = 200, where tighter
 * clusters (0.25-0.6) gave 1.0 from ef = 40 on and so could not tell a good
 * graph from a mediocre one.
 *
 * Oracle.  Recall is measured against sw_search_exact(), the brute-force
 * search the header names as the oracle; the oracle itself is validated
 * separately (test_api.c against a brute force written here in double
 * precision, test_recall.c against the bigann ground-truth files).  Recall
 * is counted tie-aware: an approximate result counts when it is no farther
 * than the exact k-th distance.  Counting by label punishes an index for
 * picking the other of two vectors at the same distance, which with integer
 * data (bigann) happens for a few queries in a thousand.
 *
 * Snapshots.  "A call that fails leaves the index exactly as it was" is
 * checked by comparing what the index answers before and after: count,
 * search and exact-search results for fixed probes (bitwise), and the bytes
 * of the saved file, which covers everything the format records, including
 * state that no query shows (the level generator, links no probe visits).
 *
 * Allocator.  The counting allocator puts a header in front of each block
 * (magic, size, base pointer) rather than keeping a side table: O(1), no
 * table to grow inside an allocator, and a free with the wrong size or a
 * double free is caught at the free.  New blocks are filled with 0xA5 and
 * freed ones with 0x5A, so a library that reads memory it never wrote, or
 * after freeing it, gets garbage deterministically instead of the zeros a
 * fresh page tends to hold — the determinism tests then notice.
 */
#define _POSIX_C_SOURCE 200809L

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SW_SHARED_DIR
#define SW_SHARED_DIR "../shared"
#endif
#ifndef SW_TEST_DATA_DIR
#define SW_TEST_DATA_DIR "tests/data"
#endif
#ifndef SW_TEST_CORRUPT_DIR
#define SW_TEST_CORRUPT_DIR "tests/corrupt"
#endif

/* ===================================================================== */
/* Random numbers                                                        */
/* ===================================================================== */

void tu_rng_seed(tu_rng *r, uint64_t seed)
{
    r->state = seed;
}

uint64_t tu_rng_next(tu_rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double tu_rng_uniform(tu_rng *r)
{
    return (double)(tu_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double tu_rng_gauss(tu_rng *r)
{
    /* Box-Muller without the cached second value: keeping the generator a
     * single word makes a stream easy to fork and replay. */
    double u1 = tu_rng_uniform(r), u2 = tu_rng_uniform(r);

    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t tu_rng_below(tu_rng *r, uint64_t n)
{
    return n == 0 ? 0 : tu_rng_next(r) % n;
}

/* ===================================================================== */
/* Data and distances                                                    */
/* ===================================================================== */

float *tu_clustered(size_t n, uint32_t dim, uint32_t n_centres, uint64_t centre_seed,
                    uint64_t point_seed)
{
    float *centres = malloc((size_t)n_centres * dim * sizeof(float));
    float *spread = malloc((size_t)n_centres * sizeof(float));
    float *out = malloc((n ? n : 1) * dim * sizeof(float));
    tu_rng r;

    if (centres == NULL || spread == NULL || out == NULL || n_centres == 0) {
        free(centres);
        free(spread);
        free(out);
        return NULL;
    }
    tu_rng_seed(&r, centre_seed);
    for (uint32_t c = 0; c < n_centres; c++) {
        spread[c] = (float)(0.6 + 0.6 * tu_rng_uniform(&r));
        for (uint32_t j = 0; j < dim; j++)
            centres[(size_t)c * dim + j] = (float)tu_rng_gauss(&r);
    }
    tu_rng_seed(&r, point_seed);
    for (size_t i = 0; i < n; i++) {
        uint32_t c = (uint32_t)tu_rng_below(&r, n_centres);
        for (uint32_t j = 0; j < dim; j++)
            out[i * dim + j] =
                centres[(size_t)c * dim + j] + spread[c] * (float)tu_rng_gauss(&r);
    }
    free(centres);
    free(spread);
    return out;
}

double tu_ref_dist(sw_metric metric, const float *a, const float *b, size_t dim)
{
    double s = 0, na = 0, nb = 0;

    switch (metric) {
    case SW_METRIC_L2:
        for (size_t i = 0; i < dim; i++)
            s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        return s;
    case SW_METRIC_IP:
        for (size_t i = 0; i < dim; i++)
            s += (double)a[i] * b[i];
        return 1.0 - s;
    case SW_METRIC_COSINE:
        for (size_t i = 0; i < dim; i++) {
            s += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }
        if (na == 0 || nb == 0)
            return 1.0;
        return 1.0 - s / (sqrt(na) * sqrt(nb));
    case SW_METRIC_L1:
        for (size_t i = 0; i < dim; i++)
            s += fabs((double)a[i] - b[i]);
        return s;
    }
    return NAN;
}

double tu_dist_tol(double reference)
{
    /* float32 accumulation over at most a few hundred terms: relative error
     * well under 1e-5; the absolute floor covers results near zero
     * (cosine and IP of close vectors). */
    return 1e-4 + 1e-4 * fabs(reference);
}

sw_index *tu_build(const sw_options *opt, const float *data, size_t n)
{
    return tu_build_labels(opt, data, NULL, n);
}

sw_index *tu_build_labels(const sw_options *opt, const float *data, const uint64_t *labels,
                          size_t n)
{
    sw_index *ix = NULL;
    sw_status st = sw_create(opt, &ix);

    if (st != SW_OK) {
        sw_test_fail_at(__FILE__, __LINE__, "tu_build: sw_create: %s (%s)",
                        sw_test_status_name(st), sw_last_error());
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        st = sw_add(ix, labels ? labels[i] : (uint64_t)i, data + i * opt->dim, opt->dim);
        if (st != SW_OK) {
            sw_test_fail_at(__FILE__, __LINE__, "tu_build: sw_add(row %zu): %s (%s)", i,
                            sw_test_status_name(st), sw_last_error());
            sw_free(ix);
            return NULL;
        }
    }
    return ix;
}

tu_recall tu_measure_recall(const sw_index *ix, const float *queries, size_t nq, size_t k,
                            uint32_t ef)
{
    sw_search_params p = sw_search_params_default();
    p.ef = ef;
    return tu_measure_recall_with(ix, queries, nq, k, &p);
}

tu_recall tu_measure_recall_with(const sw_index *ix, const float *queries, size_t nq, size_t k,
                                 const sw_search_params *params)
{
    tu_recall rec = {0, 0};
    size_t dim = sw_dim(ix);
    uint64_t *al = malloc(k * sizeof *al), *el = malloc(k * sizeof *el);
    float *ad = malloc(k * sizeof *ad), *ed = malloc(k * sizeof *ed);
    const sw_search_params p = *params;
    double sum_tie = 0, sum_lab = 0;

    if (al == NULL || el == NULL || ad == NULL || ed == NULL || nq == 0) {
        sw_test_fail_at(__FILE__, __LINE__, "tu_measure_recall: out of memory or no queries");
        goto done;
    }
    for (size_t q = 0; q < nq; q++) {
        const float *v = queries + q * dim;
        size_t an = 0, en = 0, want, hit_tie = 0, hit_lab = 0;
        sw_status st;
        double thr, tol;

        st = sw_search(ix, v, dim, k, &p, al, ad, &an);
        if (st != SW_OK) {
            sw_test_fail_at(__FILE__, __LINE__, "sw_search(query %zu): %s (%s)", q,
                            sw_test_status_name(st), sw_last_error());
            continue;
        }
        st = sw_search_exact(ix, v, dim, k, NULL, el, ed, &en);
        if (st != SW_OK) {
            sw_test_fail_at(__FILE__, __LINE__, "sw_search_exact(query %zu): %s (%s)", q,
                            sw_test_status_name(st), sw_last_error());
            continue;
        }
        want = en < k ? en : k;
        if (an != want)
            sw_test_fail_at(__FILE__, __LINE__, "query %zu: sw_search found %zu, want %zu", q,
                            an, want);
        if (want == 0)
            continue;
        thr = ed[want - 1];
        tol = 1e-5 * fabs(thr) + 1e-6;
        for (size_t i = 0; i < an; i++) {
            for (size_t j = 0; j < i; j++)
                if (al[j] == al[i])
                    sw_test_fail_at(__FILE__, __LINE__,
                                    "query %zu: label %llu returned twice", q,
                                    (unsigned long long)al[i]);
            /* The oracle's i-th can never be farther than any i-th found by
             * the approximate search; if it is, the oracle is wrong. */
            if ((double)ed[i < en ? i : en - 1] > (double)ad[i] + tol)
                sw_test_fail_at(__FILE__, __LINE__,
                                "query %zu: sw_search result %zu at %.9g is nearer than "
                                "sw_search_exact's %.9g",
                                q, i, (double)ad[i], (double)ed[i < en ? i : en - 1]);
            if ((double)ad[i] <= thr + tol)
                hit_tie++;
            for (size_t j = 0; j < en; j++)
                if (el[j] == al[i]) {
                    hit_lab++;
                    break;
                }
        }
        sum_tie += (double)hit_tie / (double)want;
        sum_lab += (double)hit_lab / (double)want;
    }
    rec.tie_aware = sum_tie / (double)nq;
    rec.by_label = sum_lab / (double)nq;
done:
    free(al);
    free(el);
    free(ad);
    free(ed);
    return rec;
}

/* ===================================================================== */
/* Snapshots                                                             */
/* ===================================================================== */

int tu_snapshot_take(tu_snapshot *s, const sw_index *ix, const float *probes, size_t n_probes,
                     size_t k, const char *dir)
{
    size_t dim = sw_dim(ix);

    memset(s, 0, sizeof *s);
    s->count = sw_count(ix);
    s->n_searches = 2 * n_probes;
    s->n_values = 2 * n_probes * k;
    s->labels = calloc(s->n_values ? s->n_values : 1, sizeof *s->labels);
    s->dists = calloc(s->n_values ? s->n_values : 1, sizeof *s->dists);
    s->found = calloc(2 * n_probes + 1, sizeof *s->found);
    if (s->labels == NULL || s->dists == NULL || s->found == NULL) {
        sw_test_fail_at(__FILE__, __LINE__, "tu_snapshot_take: out of memory");
        return -1;
    }
    for (size_t q = 0; q < n_probes; q++) {
        size_t a = 2 * q * k, b = (2 * q + 1) * k;
        sw_status st = sw_search(ix, probes + q * dim, dim, k, NULL, s->labels + a,
                                 s->dists + a, &s->found[2 * q]);
        sw_status st2 = sw_search_exact(ix, probes + q * dim, dim, k, NULL, s->labels + b,
                                        s->dists + b, &s->found[2 * q + 1]);
        if (st != SW_OK || st2 != SW_OK) {
            sw_test_fail_at(__FILE__, __LINE__, "tu_snapshot_take: probe search: %s / %s (%s)",
                            sw_test_status_name(st), sw_test_status_name(st2),
                            sw_last_error());
            return -1;
        }
    }
    if (dir != NULL) {
        char path[512];
        sw_status st;

        snprintf(path, sizeof path, "%s/snapshot.swi", dir);
        st = sw_save(ix, path);
        if (st != SW_OK) {
            sw_test_fail_at(__FILE__, __LINE__, "tu_snapshot_take: sw_save: %s (%s)",
                            sw_test_status_name(st), sw_last_error());
            return -1;
        }
        s->file = tu_read_file(path, &s->file_len);
        remove(path);
        if (s->file == NULL) {
            sw_test_fail_at(__FILE__, __LINE__, "tu_snapshot_take: cannot read %s", path);
            return -1;
        }
    }
    return 0;
}

int tu_snapshot_equal(const tu_snapshot *a, const tu_snapshot *b, char *why, size_t whylen)
{
    if (a->count != b->count) {
        snprintf(why, whylen, "count %zu != %zu", a->count, b->count);
        return 0;
    }
    if (a->n_values != b->n_values || a->n_searches != b->n_searches) {
        snprintf(why, whylen, "snapshots of different shapes");
        return 0;
    }
    if (memcmp(a->found, b->found, a->n_searches * sizeof *a->found) != 0) {
        snprintf(why, whylen, "probe searches found different numbers of results");
        return 0;
    }
    if (memcmp(a->labels, b->labels, a->n_values * sizeof *a->labels) != 0) {
        snprintf(why, whylen, "probe search labels differ");
        return 0;
    }
    if (memcmp(a->dists, b->dists, a->n_values * sizeof *a->dists) != 0) {
        snprintf(why, whylen, "probe search distances differ");
        return 0;
    }
    if ((a->file == NULL) != (b->file == NULL) || a->file_len != b->file_len ||
        (a->file != NULL && memcmp(a->file, b->file, a->file_len) != 0)) {
        snprintf(why, whylen, "saved files differ (%zu vs %zu bytes)", a->file_len,
                 b->file_len);
        return 0;
    }
    return 1;
}

void tu_snapshot_free(tu_snapshot *s)
{
    free(s->labels);
    free(s->dists);
    free(s->found);
    free(s->file);
    memset(s, 0, sizeof *s);
}

/* ===================================================================== */
/* Files                                                                 */
/* ===================================================================== */

int tu_mkdtemp(char *buf, size_t len)
{
    const char *base = getenv("TMPDIR");

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    if ((size_t)snprintf(buf, len, "%s/smallworld-test-XXXXXX", base) >= len)
        return -1;
    return mkdtemp(buf) == NULL ? -1 : 0;
}

void tu_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        remove(path);
    }
    closedir(d);
    rmdir(dir);
}

int tu_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

unsigned char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;

    *len = 0;
    if (f == NULL)
        return NULL;
    for (;;) {
        size_t got;

        if (n == cap) {
            unsigned char *nb = realloc(buf, cap ? 2 * cap : 65536);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap = cap ? 2 * cap : 65536;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

int tu_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (f == NULL)
        return -1;
    ok = fwrite(data, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    return ok ? 0 : -1;
}

const char *tu_shared_dir(void)
{
    const char *env = getenv("SW_SHARED_DIR");

    return (env != NULL && env[0] != '\0') ? env : SW_SHARED_DIR;
}

/* ===================================================================== */
/* Counting allocator                                                    */
/* ===================================================================== */

#define TU_BLOCK_MAGIC 0x7377616C6C6F6321ull
#define TU_ALLOC_MAGIC 0x6375746573746572ull
#define TU_ALLOC_HUGE ((size_t)1 << 30)
#define TU_ALLOC_FILL_MAX ((size_t)64 << 20)

typedef struct tu_block {
    uint64_t magic;
    size_t size;
    void *base;
    uint64_t owner; /* TU_ALLOC_MAGIC xor the allocator's address */
} tu_block;

static void tu_alloc_error(tu_alloc *t, const char *msg, size_t a, size_t b)
{
    if (t->errors++ == 0)
        snprintf(t->first_error, sizeof t->first_error, "%s (%zu, %zu)", msg, a, b);
}

static void *tu_alloc_fn(void *ctx, size_t size, size_t align)
{
    tu_alloc *t = ctx;
    size_t ea, hdr, total;
    unsigned char *base, *user;
    tu_block *h;

    pthread_mutex_lock(&t->mu);
    if (align == 0 || (align & (align - 1)) != 0 || align > 4096) {
        tu_alloc_error(t, "alloc: align not a power of two <= 4096", align, size);
        pthread_mutex_unlock(&t->mu);
        return NULL;
    }
    if (size > TU_ALLOC_HUGE) {
        /* Refused as a real allocator would, instead of letting the
         * sanitizer runtimes abort on it: a loader that sizes a buffer from
         * a corrupt count before checking it must get NULL and cope. */
        t->n_huge++;
        pthread_mutex_unlock(&t->mu);
        return NULL;
    }
    if (t->failing) {
        t->n_injected++;
        pthread_mutex_unlock(&t->mu);
        return NULL;
    }
    if (t->countdown == 0) {
        t->n_injected++;
        if (t->persistent)
            t->failing = 1;
        else
            t->countdown = -1;
        pthread_mutex_unlock(&t->mu);
        return NULL;
    }
    if (t->countdown > 0)
        t->countdown--;
    pthread_mutex_unlock(&t->mu);

    ea = align < 16 ? 16 : align;
    hdr = ea < sizeof(tu_block) ? sizeof(tu_block) : ea;
    hdr = (hdr + ea - 1) & ~(ea - 1);
    if (size > SIZE_MAX - hdr - ea)
        return NULL;
    total = (hdr + size + ea - 1) & ~(ea - 1);
    base = aligned_alloc(ea, total);
    if (base == NULL)
        return NULL;
    user = base + hdr;
    h = (tu_block *)(void *)(user - sizeof(tu_block));
    h->magic = TU_BLOCK_MAGIC;
    h->size = size;
    h->base = base;
    h->owner = TU_ALLOC_MAGIC ^ (uint64_t)(uintptr_t)t;
    memset(user, 0xA5, size < TU_ALLOC_FILL_MAX ? size : TU_ALLOC_FILL_MAX);

    pthread_mutex_lock(&t->mu);
    t->live_bytes += size;
    t->live_blocks++;
    t->n_allocs++;
    pthread_mutex_unlock(&t->mu);
    return user;
}

static void tu_free_fn(void *ctx, void *ptr, size_t size)
{
    tu_alloc *t = ctx;
    tu_block *h;

    if (ptr == NULL)
        return;
    h = (tu_block *)(void *)((unsigned char *)ptr - sizeof(tu_block));
    pthread_mutex_lock(&t->mu);
    if (h->magic != TU_BLOCK_MAGIC || h->owner != (TU_ALLOC_MAGIC ^ (uint64_t)(uintptr_t)t)) {
        /* Leak it rather than free memory we do not own. */
        tu_alloc_error(t, "free: pointer not allocated here, or freed twice", size, 0);
        pthread_mutex_unlock(&t->mu);
        return;
    }
    if (h->size != size)
        tu_alloc_error(t, "free: size differs from the allocation (given, allocated)", size,
                       h->size);
    t->live_bytes -= h->size;
    t->live_blocks--;
    h->magic = 0;
    pthread_mutex_unlock(&t->mu);
    memset(ptr, 0x5A, h->size < TU_ALLOC_FILL_MAX ? h->size : TU_ALLOC_FILL_MAX);
    free(h->base);
}

void tu_alloc_init(tu_alloc *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    t->countdown = -1;
    t->api.alloc = tu_alloc_fn;
    t->api.free = tu_free_fn;
    t->api.ctx = t;
}

void tu_alloc_destroy(tu_alloc *t)
{
    pthread_mutex_destroy(&t->mu);
}

void tu_alloc_fail_after(tu_alloc *t, long n, int persistent)
{
    pthread_mutex_lock(&t->mu);
    t->countdown = n;
    t->persistent = persistent;
    t->failing = 0;
    t->n_injected = 0;
    pthread_mutex_unlock(&t->mu);
}

void tu_alloc_disarm(tu_alloc *t)
{
    tu_alloc_fail_after(t, -1, 0);
}

size_t tu_alloc_live_bytes(tu_alloc *t)
{
    size_t v;

    pthread_mutex_lock(&t->mu);
    v = t->live_bytes;
    pthread_mutex_unlock(&t->mu);
    return v;
}

size_t tu_alloc_injected(tu_alloc *t)
{
    size_t v;

    pthread_mutex_lock(&t->mu);
    v = t->n_injected;
    pthread_mutex_unlock(&t->mu);
    return v;
}

void tu_check_last_error_names(sw_status st, const char *file, int line)
{
    const char *msg = sw_last_error();
    const char *text = sw_strerror(st);

    if (msg == NULL || msg[0] == '\0')
        sw_test_fail_at(file, line, "sw_last_error() is empty after %s",
                        sw_test_status_name(st));
    else if (strncmp(msg, text, strlen(text)) != 0)
        sw_test_fail_at(file, line, "sw_last_error() \"%s\" does not start with \"%s\"", msg,
                        text);
}

/* ---- problems found on worker threads ---------------------------------- */

void tu_err(tu_errs *e, const char *fmt, ...)
{
    va_list ap;

    if (e->n++ != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(e->first, sizeof e->first, fmt, ap);
    va_end(ap);
}

int tu_check_graph(const sw_index *ix, char *err, size_t errlen) {
    char why[512] = "";
    if (sw__check_graph(ix, why, sizeof why) == 0) return 0;
    unsigned lost = 0, total = 0;
    int tolerated = ix && sw_get_metric(ix) == SW_METRIC_IP &&
                    sscanf(why, "%u of %u nodes unreachable", &lost, &total) == 2 &&
                    (size_t)lost * 50u <= total;
    if (tolerated) return 0;
    snprintf(err, errlen, "%s", why);
    return 1;
}

/* ---- index files, byte by byte ---------------------------------------- */

uint32_t tu_get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t tu_get_u64(const unsigned char *p) {
    return (uint64_t)tu_get_u32(p) | (uint64_t)tu_get_u32(p + 4) << 32;
}

void tu_put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

void tu_put_u64(unsigned char *p, uint64_t v) {
    tu_put_u32(p, (uint32_t)v);
    tu_put_u32(p + 4, (uint32_t)(v >> 32));
}

uint32_t tu_crc32c(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

void tu_reseal(unsigned char *file, size_t len) { tu_put_u32(file + len - 4, tu_crc32c(file, len - 4)); }

/*
 * Format 4 is read here independently of src/persist.c, from the
 * specification at its top: a test that used the library's own parser to
 * find the bytes it edits could not notice the two drifting apart.  The
 * parse is strict about structure (so a test never edits bytes it has
 * misread) and blind to checksums (so it reads files a test has edited);
 * the reseal trusts nothing it reads, since it runs on files that a test
 * has deliberately broken.
 */
int tu_v4_parse(const unsigned char *f, size_t len, tu_v4 *out, char *why, size_t whylen) {
    memset(out, 0, sizeof *out);
    if (len < TU_V4_HEADER + TU_V4_FOOTER || memcmp(f, "SWALLIDX", 8) != 0) {
        snprintf(why, whylen, "no magic \"SWALLIDX\" or shorter than a header and a footer");
        return -1;
    }
    if (tu_get_u32(f + TU_V4_VERSION) != 4 || tu_get_u32(f + TU_V4_HEADER_SIZE) != TU_V4_HEADER) {
        snprintf(why, whylen, "format version %u, header size %u: want 4 and %u",
                 tu_get_u32(f + TU_V4_VERSION), tu_get_u32(f + TU_V4_HEADER_SIZE), TU_V4_HEADER);
        return -1;
    }
    out->dim = tu_get_u32(f + TU_V4_DIM);
    out->metric = tu_get_u32(f + TU_V4_METRIC);
    out->M = tu_get_u32(f + TU_V4_M);
    out->M0 = tu_get_u32(f + TU_V4_M0);
    out->count = tu_get_u64(f + TU_V4_COUNT);
    out->tombstones = tu_get_u64(f + TU_V4_TOMBS);
    out->entry = tu_get_u32(f + TU_V4_ENTRY_NODE);
    out->max_level = (int32_t)tu_get_u32(f + TU_V4_MAX_LEVEL);
    out->rec_bytes = tu_get_u32(f + TU_V4_REC_BYTES);
    out->vec_bytes = tu_get_u32(f + TU_V4_VEC_BYTES);
    out->links_off = tu_get_u32(f + TU_V4_LINKS_OFF);

    const unsigned char *ft = f + len - TU_V4_FOOTER;
    if (memcmp(ft + 24, "SWIDXEND", 8) != 0 || tu_get_u64(ft + 16) != len) {
        snprintf(why, whylen, "no footer, or its file length %llu is not %zu",
                 (unsigned long long)tu_get_u64(ft + 16), len);
        return -1;
    }
    out->table_off = tu_get_u64(ft);
    out->nsec = tu_get_u32(ft + 8);
    if (out->nsec > TU_V4_MAX_SECTIONS || out->table_off < TU_V4_HEADER ||
        out->table_off + (uint64_t)out->nsec * TU_V4_ENTRY != len - TU_V4_FOOTER) {
        snprintf(why, whylen, "%u sections at %llu do not end at the footer", out->nsec,
                 (unsigned long long)out->table_off);
        return -1;
    }
    for (uint32_t k = 0; k < out->nsec; k++) {
        tu_v4_section *s = &out->sec[k];
        const unsigned char *e = f + out->table_off + (size_t)k * TU_V4_ENTRY;

        s->entry_at = (size_t)out->table_off + (size_t)k * TU_V4_ENTRY;
        s->type = tu_get_u32(e);
        s->arg = tu_get_u32(e + 4);
        s->off = tu_get_u64(e + 8);
        s->len = tu_get_u64(e + 16);
        s->flags = tu_get_u32(e + 24);
        s->crc = tu_get_u32(e + 28);
        if (s->off < TU_V4_HEADER || s->off > out->table_off || s->len > out->table_off - s->off) {
            snprintf(why, whylen, "section %u (type %u) at %llu, %llu bytes, is outside the file",
                     k, s->type, (unsigned long long)s->off, (unsigned long long)s->len);
            return -1;
        }
    }
    return 0;
}

const tu_v4_section *tu_v4_find(const tu_v4 *v, uint32_t type, uint32_t arg) {
    for (uint32_t k = 0; k < v->nsec; k++)
        if (v->sec[k].type == type && v->sec[k].arg == arg) return &v->sec[k];
    return NULL;
}

void tu_v4_reseal(unsigned char *f, size_t len) {
    if (len < TU_V4_HEADER) return;
    tu_put_u32(f + TU_V4_HEADER_CRC, tu_crc32c(f, TU_V4_HEADER_CRC));
    if (len < TU_V4_HEADER + TU_V4_FOOTER) return;
    unsigned char *ft = f + len - TU_V4_FOOTER;
    uint64_t table_off = tu_get_u64(ft), n = tu_get_u32(ft + 8);
    uint64_t room = len - TU_V4_FOOTER;
    /* a table over the header, or past the footer, is not written to */
    if (table_off < TU_V4_HEADER || table_off > room || n > (room - table_off) / TU_V4_ENTRY)
        return;
    for (uint64_t k = 0; k < n; k++) {
        unsigned char *e = f + table_off + k * TU_V4_ENTRY;
        uint64_t off = tu_get_u64(e + 8), slen = tu_get_u64(e + 16);
        if (off <= len && slen <= len - off) tu_put_u32(e + 28, tu_crc32c(f + off, (size_t)slen));
    }
    tu_put_u32(ft + 12, tu_crc32c(f + table_off, (size_t)(n * TU_V4_ENTRY)));
}

static const char *tu_dir_path(char *buf, size_t len, const char *env, const char *dflt,
                               const char *name) {
    const char *dir = getenv(env);
    snprintf(buf, len, "%s/%s", dir != NULL && dir[0] != '\0' ? dir : dflt, name);
    return buf;
}

const char *tu_data_path(char *buf, size_t len, const char *name) {
    return tu_dir_path(buf, len, "SW_TEST_DATA_DIR", SW_TEST_DATA_DIR, name);
}

const char *tu_corrupt_path(char *buf, size_t len, const char *name) {
    return tu_dir_path(buf, len, "SW_TEST_CORRUPT_DIR", SW_TEST_CORRUPT_DIR, name);
}
