/*
 * golden.h — the contents of the golden files (tests/data/golden_v*.swi).
 *
 * The generator (tests/data/make_golden.c) and the test that reads the
 * files back (tests/test_golden.c) both include this, and nothing else of
 * the test framework, so the generator builds against any past release.
 * Vectors are multiples of 1/64 in [-16, 16], exact in any float format,
 * from integer arithmetic alone (a 64-bit LCG), so every machine
 * regenerates the same bits.
 */
#ifndef SW_GOLDEN_H
#define SW_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

#define GOLDEN_N 150
#define GOLDEN_DIM 6
#define GOLDEN_M 4
#define GOLDEN_M0 8
#define GOLDEN_EFC 32
#define GOLDEN_SEED 7
#define GOLDEN_META "golden"

static inline uint64_t golden_label(size_t i) { return 1000u + 7u * (uint64_t)i; }
static inline int golden_tombstoned(size_t i) { return i % 10 == 3; }

static inline void golden_vectors(float *out, size_t n, uint32_t dim)
{
    uint64_t s = 20261122;

    for (size_t i = 0; i < n * dim; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        out[i] = (float)((int)((s >> 33) % 2049) - 1024) / 64.0f;
    }
}

#endif
