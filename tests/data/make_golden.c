/*
 * make_golden.c — writes tests/data/golden_v<N>.swi, the files that pin
 * the formats a release must go on reading.
 *
 * Each golden file is what the library of its version wrote for the same
 * index: GOLDEN_N nodes of golden_vectors() (tests/golden.h), L2, with
 * the parameters there, every tenth node tombstoned (golden_tombstoned),
 * and the metadata GOLDEN_META where the format has metadata.  tests/test_golden.c loads them and checks every label, vector
 * and tombstone against a fresh golden_vectors(), so the files are
 * checked by content, not by bytes.
 *
 * golden_v3.swi came from smallworld 0.2.0 (commit faaafd1), which wrote
 * format 3; golden_v2.swi and golden_v1.swi are that file with the
 * metadata block removed (and for version 1 the tombstone bits cleared),
 * edited byte-wise, which is how those versions differ.  golden_v4.swi
 * comes from 0.3.0.  Build against the library whose format is wanted:
 *   cc -Iinclude -Itests tests/data/make_golden.c build/libsmallworld.a \
 *      -lm -pthread -o /tmp/make_golden
 *   /tmp/make_golden tests/data/golden_v4.swi
 */
#include <smallworld.h>
#include <stdio.h>
#include <stdlib.h>

#include "golden.h"

int main(int argc, char **argv)
{
    float *v = malloc(sizeof(float) * GOLDEN_N * GOLDEN_DIM);
    sw_options o = sw_options_default();
    sw_index *ix = NULL;

    if (argc != 2 || !v)
        return 2;
    golden_vectors(v, GOLDEN_N, GOLDEN_DIM);
    o.dim = GOLDEN_DIM;
    o.M = GOLDEN_M;
    o.M0 = GOLDEN_M0;
    o.ef_construction = GOLDEN_EFC;
    o.seed = GOLDEN_SEED;
    if (sw_create(&o, &ix) != SW_OK)
        return 1;
    for (size_t i = 0; i < GOLDEN_N; i++)
        if (sw_add(ix, golden_label(i), v + i * GOLDEN_DIM, GOLDEN_DIM) != SW_OK)
            return 1;
    for (size_t i = 0; i < GOLDEN_N; i++)
        if (golden_tombstoned(i) && sw_mark_deleted(ix, golden_label(i)) != SW_OK)
            return 1;
    if (sw_set_metadata(ix, GOLDEN_META, sizeof GOLDEN_META - 1) != SW_OK || sw_save(ix, argv[1]) != SW_OK) {
        fprintf(stderr, "%s\n", sw_last_error());
        return 1;
    }
    sw_free(ix);
    free(v);
    return 0;
}
