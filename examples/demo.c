/*
 * demo.c — `make demo`: build an index on generated data and query it.
 *
 * A newcomer's first look at smallworld, so it shows the whole loop with
 * nothing to download: 20,000 vectors of dimension 64 drawn around 50
 * random centres (clustered, as real embeddings are), an index built over
 * them, a few queries printed with their labels and distances next to the
 * exact answer, and recall@10 against the exact search over 500 queries.
 * Uses only the public header.
 */
#define _POSIX_C_SOURCE 200809L
#include <smallworld.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { N = 20000, DIM = 64, CENTRES = 50, NQ = 500, K = 10 };

static uint64_t rng_state = 42;
static double uniform(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)((rng_state >> 11) + 1) / 9007199254740993.0;
}
static float gaussian(void) {
    return (float)(sqrt(-2.0 * log(uniform())) * cos(6.283185307179586 * uniform()));
}
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void draw(float *v, const float *centres) {
    const float *c = centres + (size_t)(uniform() * CENTRES) % CENTRES * DIM;
    for (int i = 0; i < DIM; i++) v[i] = c[i] + 0.3f * gaussian();
}

#define TRY(call)                                                             \
    do {                                                                      \
        sw_status st_ = (call);                                               \
        if (st_ != SW_OK) {                                                   \
            fprintf(stderr, "demo: %s failed: %s\n", #call, sw_last_error()); \
            return 1;                                                         \
        }                                                                     \
    } while (0)

int main(void) {
    float *centres = malloc(sizeof(float) * CENTRES * DIM);
    float *data = malloc(sizeof(float) * N * DIM);
    float *queries = malloc(sizeof(float) * NQ * DIM);
    if (!centres || !data || !queries) return 1;
    for (int i = 0; i < CENTRES * DIM; i++) centres[i] = gaussian();
    for (int i = 0; i < N; i++) draw(data + (size_t)i * DIM, centres);
    for (int i = 0; i < NQ; i++) draw(queries + (size_t)i * DIM, centres);

    sw_options opt = sw_options_default();
    opt.dim = DIM; /* L2, M = 16, ef_construction = 200 */
    sw_index *index;
    TRY(sw_create(&opt, &index));
    printf("smallworld %s (%s kernels): building an index of %d vectors, dimension %d, M=%u, "
           "ef_construction=%u\n",
           sw_version(), sw_simd_name(), N, DIM, opt.M, opt.ef_construction);
    double t0 = now();
    for (int i = 0; i < N; i++) TRY(sw_add(index, (uint64_t)i, data + (size_t)i * DIM, DIM));
    double build = now() - t0;
    printf("built in %.2f s (%.0f vectors/s), %.1f MiB\n\n", build, N / build,
           (double)sw_memory_usage(index) / (1 << 20));

    uint64_t lab[K], elab[K];
    float dist[K], edist[K];
    size_t n, en;
    for (int q = 0; q < 3; q++) {
        TRY(sw_search(index, queries + (size_t)q * DIM, DIM, 5, NULL, lab, dist, &n));
        TRY(sw_search_exact(index, queries + (size_t)q * DIM, DIM, 5, NULL, elab, edist, &en));
        printf("query %d        label  distance   | exact: label  distance\n", q);
        for (size_t i = 0; i < n; i++)
            printf("  %2zu.  %10llu  %9.4f   |  %10llu  %9.4f\n", i + 1,
                   (unsigned long long)lab[i], dist[i], (unsigned long long)elab[i], edist[i]);
    }

    sw_search_params p = sw_search_params_default();
    printf("\nrecall@%d against the exact search over %d queries:\n", K, NQ);
    for (uint32_t ef = 10; ef <= 160; ef *= 2) {
        p.ef = ef;
        size_t hits = 0;
        for (int q = 0; q < NQ; q++) {
            TRY(sw_search(index, queries + (size_t)q * DIM, DIM, K, &p, lab, NULL, &n));
            TRY(sw_search_exact(index, queries + (size_t)q * DIM, DIM, K, NULL, elab, NULL, &en));
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < en; j++) hits += lab[i] == elab[j];
        }
        printf("  ef=%-4u recall@10 = %.4f\n", ef, (double)hits / (NQ * K));
    }
    sw_free(index);
    free(centres);
    free(data);
    free(queries);
    return 0;
}
