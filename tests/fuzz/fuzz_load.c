/*
 * fuzz_load.c — the loader against arbitrary bytes (libFuzzer target).
 *
 * Each input is written to a file and handed to sw_load, which must refuse
 * it with a status or return an index that passes sw_verify and answers a
 * search; never crash, never read out of bounds, never leak (the fuzz build
 * runs under AddressSanitizer and UndefinedBehaviorSanitizer).
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

/* CRC-32C, as the file's trailer (src/persist.c) */
static uint32_t crc32c(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
    }
    return ~c;
}

static int load_one(const uint8_t *data, size_t size);

/* Each input is tried as it is, then with its last four bytes replaced by
 * the checksum of the rest: mutations almost never keep the checksum
 * right, and without the second try the fuzzer would never get past it to
 * the node records. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int raw = load_one(data, size);
    if (size < 4) return 0;
    uint8_t *fixed = malloc(size);
    if (!fixed) abort();
    memcpy(fixed, data, size);
    uint32_t c = crc32c(fixed, size - 4);
    for (int i = 0; i < 4; i++) fixed[size - 4 + i] = (uint8_t)(c >> (8 * i));
    load_one(fixed, size);
    free(fixed);
    sw_fuzz_loaded = raw; /* what replay.c asks: did the input as given load */
    return 0;
}

/* 1 if the bytes loaded (and held together), 0 if refused. */
static int load_one(const uint8_t *data, size_t size) {
    if (write_input(data, size) != 0) abort(); /* the harness, not the input */
    sw_index *ix = NULL;
    sw_fuzz_loaded = 0;
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
