/*
 * fuzz_load.c — the loader against arbitrary bytes (libFuzzer target).
 *
 * Each input is written to a file and handed to sw_load, which must refuse
 * it with a status or return an index that passes sw_verify and answers a
 * search, and to sw_open_mmap, whose index must answer searches and stats
 * and refuse writes; never crash, never read out of bounds, never leak
 * (the fuzz build runs under AddressSanitizer and UndefinedBehaviorSanitizer).
 *
 * Two builds use this file: `make fuzz` links it with libFuzzer (clang,
 * -fsanitize=fuzzer,address,undefined) and runs it; replay.c gives it a
 * main() that feeds it every file of tests/fuzz/corpus, which `make test`
 * runs with any compiler, so what the fuzzer once found stays found.
 */
#define _POSIX_C_SOURCE 200809L
#include <smallworld.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* 1 when the last input, as given, loaded (replay.c checks its seeds) */
extern int sw_fuzz_loaded;
int sw_fuzz_loaded;

static char path[256];

static void remove_input(void) { unlink(path); }

static int write_input(const uint8_t *data, size_t size) {
    if (!path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/sw-fuzz-XXXXXX", dir && *dir ? dir : "/tmp");
        int fd = mkstemp(path);
        if (fd < 0) return -1;
        close(fd);
        atexit(remove_input);
    }
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t put = size ? fwrite(data, 1, size, f) : 0;
    int bad = fclose(f) != 0 || put != size;
    return bad ? -1 : 0;
}

/* CRC-32C, as the files' checksums (src/crc32c.c) */
static uint32_t crc32c(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
    }
    return ~c;
}

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }
static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Make every checksum of the file right again, as far as its layout can be
 * found (src/persist.c): for format 4 the header's, each section's whose
 * bounds lie in the file, and the table's; for 1..3 the trailer. */
static void reseal(uint8_t *f, size_t size) {
    if (size >= 12 && get32(f + 8) >= 4) {
        if (size < 160) return;
        put32(f + 124, crc32c(f, 124));
        const uint8_t *foot = f + size - 32;
        uint64_t table = get64(foot);
        uint32_t n = get32(foot + 8);
        if (n > 256 || table > size - 32 || (uint64_t)n * 32 > size - 32 - table) return;
        for (uint32_t i = 0; i < n; i++) {
            uint8_t *e = f + table + 32u * i;
            uint64_t off = get64(e + 8), len = get64(e + 16);
            if (off <= size && len <= size - off) put32(e + 28, crc32c(f + off, (size_t)len));
        }
        put32(f + size - 20, crc32c(f + table, (size_t)n * 32));
    } else if (size >= 4) {
        uint32_t c = crc32c(f, size - 4);
        put32(f + size - 4, c);
    }
}

static int load_one(const uint8_t *data, size_t size);

/* Each input is tried as it is, then with its checksums recomputed:
 * mutations almost never keep a checksum right, and without the second
 * try the fuzzer would never get past them to the fields behind. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int raw = load_one(data, size);
    if (size < 4) return 0;
    uint8_t *fixed = malloc(size);
    if (!fixed) abort();
    memcpy(fixed, data, size);
    reseal(fixed, size);
    load_one(fixed, size);
    free(fixed);
    sw_fuzz_loaded = raw; /* what replay.c asks: did the input as given load */
    return 0;
}

/* A mapped open checks all but the records' contents (persist.c): what it
 * accepts must survive searches, stats and sw_verify, which may refuse. */
static void map_one(void) {
    sw_index *ix = NULL;
    sw_status st = sw_open_mmap(path, NULL, &ix);
    if (st != SW_OK) {
        if (ix) abort();
        return;
    }
    size_t dim = sw_dim(ix), n = 0;
    float *q = calloc(dim ? dim : 1, sizeof *q);
    uint64_t labels[4];
    float dists[4];
    if (!q) abort();
    for (int i = 0; i < 2; i++) {
        if (sw_search(ix, q, dim, 4, NULL, labels, dists, &n) != SW_OK || n > 4) abort();
        if (sw_search_range(ix, q, dim, 1e30f, 8, NULL, NULL, NULL, &n) != SW_OK) abort();
        q[0] = 1.0f;
    }
    sw_stats stats;
    if (sw_get_stats(ix, &stats) != SW_OK) abort();
    sw_status vst = sw_verify(ix);
    if (sw_add(ix, 1, q, dim) != SW_EREADONLY) abort();
    /* saving copies the records: it must refuse what sw_verify refuses
     * (a damaged record once overran the writer's buffer), and what it
     * writes must load */
    char saved[300];
    snprintf(saved, sizeof saved, "%s.saved", path);
    sw_status sst = sw_save(ix, saved);
    if (vst == SW_OK && sst != SW_OK) abort();
    if (sst == SW_OK) {
        sw_index *again = NULL;
        if (sw_load(saved, NULL, &again) != SW_OK) abort();
        sw_free(again);
        unlink(saved);
    }
    free(q);
    sw_free(ix);
}

/* 1 if the bytes loaded (and held together), 0 if refused. */
static int load_one(const uint8_t *data, size_t size) {
    if (write_input(data, size) != 0) abort(); /* the harness, not the input */
    sw_index *ix = NULL;
    sw_fuzz_loaded = 0;
    map_one();
    sw_status st = sw_load(path, NULL, &ix);
    if (st != SW_OK) {
        if (ix) abort(); /* a failed load must not hand out an index */
        return 0;
    }
    /* Whatever loads must hold together.  Unreachable nodes are allowed: a
     * graph built with extreme parameters (M 2) can have them. */
    sw_fuzz_loaded = 1;
    if (sw_verify(ix) != SW_OK && !strstr(sw_last_error(), "unreachable")) {
        fprintf(stderr, "loaded but fails sw_verify: %s\n", sw_last_error());
        abort();
    }
    size_t dim = sw_dim(ix), n = 0;
    float *q = calloc(dim ? dim : 1, sizeof *q);
    uint64_t labels[4];
    float dists[4];
    if (q && sw_search(ix, q, dim, 4, NULL, labels, dists, &n) != SW_OK) abort();
    if (n > 4 || n > sw_count(ix)) abort();
    free(q);
    sw_free(ix);
    return 1;
}
