/*
 * test_corrupt.c — the corrupt-file corpus, replayed.
 *
 * tests/corrupt/ holds damaged copies of the golden files: truncated at
 * every section boundary and at points spread over the file, single bytes
 * flipped in every part with the checksums left stale, huge counts, wrong
 * magic and versions and bad links with the checksums recomputed, and a
 * few of each for the old single-stream format (make_corpus.py there
 * writes them and says why they are files in the tree).  MANIFEST gives,
 * for each, the status sw_load must return and what sw_open_mmap must do:
 * the same, or (where the damage lies in the layer-0 records, which a
 * mapped open does not read) open, and then have sw_verify say
 * SW_ECORRUPT, or another status (old versions are never mapped).
 *
 * The statuses in the manifest were derived from the specification, not
 * recorded from a run, so a test that passes says the loader does what
 * the format says.  Every refusal must also name the problem: a message
 * that starts with the status's text and names the file, no index handed
 * back, nothing leaked, no allocation over 1 GiB; and what a mapped open
 * serves must survive searches (under the sanitizer builds, with no read
 * outside the mapping).  A missing or shrunken manifest fails rather than
 * passes, and so does a file in the directory that the manifest leaves
 * out (it would be a fixture nobody checks).
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sw_test.h"
#include "testutil.h"


#define MIN_ENTRIES 50
#define MAX_ENTRIES 1000
/* what sw_open_mmap must do besides a status (a status is <= 0) */
#define MMAP_SAME 100
#define MMAP_VERIFY_FAILS 101

typedef struct entry {
    char name[128];
    int load;  /* sw_load's status */
    int mmap;  /* MMAP_SAME, MMAP_VERIFY_FAILS, or a status (<= 0) */
    char what[256];
    int seen;  /* the file is in the directory */
} entry;

/* A status by its name in SW_STATUS_MAP; 1 when there is none. */
static int status_by_name(const char *s)
{
    for (int c = 0; c >= -64; c--)
        if (strcmp(sw_test_status_name(c), s) == 0)
            return c;
    return 1;
}

/* The manifest into e[]; the number of entries, or -1 (a failure recorded). */
static int read_manifest(const char *path, entry *e, int cap)
{
    FILE *f = fopen(path, "r");
    char line[512];
    int n = 0, lineno = 0;

    if (f == NULL) {
        sw_test_fail_at(__FILE__, __LINE__, "cannot open the manifest %s", path);
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        char name[128], load[40], mmap[40];
        int used = 0;

        lineno++;
        line[strcspn(line, "\n")] = 0;
        if (line[0] == '#' || line[0] == 0)
            continue;
        if (n == cap) {
            sw_test_fail_at(__FILE__, __LINE__, "%s: more than %d entries", path, cap);
            break;
        }
        if (sscanf(line, "%127s %39s %39s %n", name, load, mmap, &used) != 3 || used == 0 ||
            line[used] == 0) {
            sw_test_fail_at(__FILE__, __LINE__, "%s:%d: not \"name status mmap what\": %s", path,
                            lineno, line);
            continue;
        }
        snprintf(e[n].name, sizeof e[n].name, "%s", name);
        snprintf(e[n].what, sizeof e[n].what, "%s", line + used);
        e[n].load = status_by_name(load);
        e[n].mmap = strcmp(mmap, "same") == 0                   ? MMAP_SAME
                    : strcmp(mmap, "mmap-ok-verify-fails") == 0 ? MMAP_VERIFY_FAILS
                                                                : status_by_name(mmap);
        e[n].seen = 0;
        if (e[n].load > 0 || e[n].mmap == 1 || strchr(name, '/') != NULL) {
            sw_test_fail_at(__FILE__, __LINE__, "%s:%d: unknown status or bad name: %s", path,
                            lineno, line);
            continue;
        }
        for (int k = 0; k < n; k++)
            if (strcmp(e[k].name, name) == 0)
                sw_test_fail_at(__FILE__, __LINE__, "%s:%d: %s listed twice", path, lineno, name);
        n++;
    }
    fclose(f);
    return n;
}

static void check_message(const char *path, sw_status st, const char *who, const entry *e)
{
    const char *msg = sw_last_error();
    const char *text = sw_strerror(st);

    if (msg[0] == 0 || strncmp(msg, text, strlen(text)) != 0 || strstr(msg, path) == NULL)
        sw_test_fail_at(__FILE__, __LINE__,
                        "%s (%s): %s: the message should start with \"%s\" and name the file: "
                        "\"%s\"",
                        e->name, e->what, who, text, msg);
}

/* Searches on a damaged mapped index: no crash, nothing else asked. */
static void probe(const sw_index *b)
{
    size_t dim = sw_dim(b), found = 0;
    float *q = calloc(dim ? dim : 1, sizeof *q);
    uint64_t labels[20];
    float dists[20];

    if (q == NULL)
        return;
    for (int t = 0; t < 4; t++) {
        for (size_t i = 0; i < dim; i++)
            q[i] = (float)((int)(i * 7 + (size_t)t * 13) % 17 - 8);
        (void)sw_search(b, q, dim, 10, NULL, labels, dists, &found);
        (void)sw_search_exact(b, q, dim, 10, NULL, labels, dists, &found);
        (void)sw_search_range(b, q, dim, 1e30f, 20, NULL, labels, dists, &found);
    }
    free(q);
}

static void replay(const entry *e, const char *path, tu_alloc *ta, size_t *verified)
{
    for (int mapped = 0; mapped < 2; mapped++) {
        const char *who = mapped ? "sw_open_mmap" : "sw_load";
        int want = e->load, verify_fails = 0;
        sw_index *b = (sw_index *)(void *)ta; /* must be overwritten */
        size_t huge = ta->n_huge;
        sw_status st;

        if (mapped && e->mmap == MMAP_VERIFY_FAILS && TU_MAPS_IN_PLACE) {
            want = SW_OK;
            verify_fails = 1;
        } else if (mapped && e->mmap <= 0) {
            want = e->mmap;
        }
        st = mapped ? sw_open_mmap(path, &ta->api, &b) : sw_load(path, &ta->api, &b);
        if (st != want)
            sw_test_fail_at(__FILE__, __LINE__, "%s (%s): %s gave %s, want %s (%s)", e->name,
                            e->what, who, sw_test_status_name(st), sw_test_status_name(want),
                            sw_last_error());
        if (st != SW_OK) {
            if (b != NULL)
                sw_test_fail_at(__FILE__, __LINE__, "%s: %s: *out not NULL after a failure",
                                e->name, who);
            else
                check_message(path, st, who, e);
        } else if (b != NULL) {
            sw_status vs;

            probe(b);
            vs = sw_verify(b);
            if (verify_fails) {
                (*verified)++;
                if (vs != SW_ECORRUPT)
                    sw_test_fail_at(__FILE__, __LINE__,
                                    "%s (%s): mapped, sw_verify gave %s, want SW_ECORRUPT",
                                    e->name, e->what, sw_test_status_name(vs));
                else if (sw_last_error()[0] == 0)
                    sw_test_fail_at(__FILE__, __LINE__, "%s: sw_verify gave no message",
                                    e->name);
            }
            sw_free(b);
        }
        if (tu_alloc_live_bytes(ta) != 0)
            sw_test_fail_at(__FILE__, __LINE__, "%s: %s leaked %zu bytes", e->name, who,
                            tu_alloc_live_bytes(ta));
        if (ta->n_huge != huge)
            sw_test_fail_at(__FILE__, __LINE__, "%s: %s asked for over 1 GiB at once", e->name,
                            who);
    }
}

TEST(corrupt_corpus_statuses)
{
    entry *e = calloc(MAX_ENTRIES, sizeof *e);
    char manifest[512], path[512];
    size_t verified = 0, by_status[3] = {0, 0, 0};
    int n;
    tu_alloc ta;
    DIR *d;
    struct dirent *de;

    REQUIRE(e != NULL);
    tu_corrupt_path(manifest, sizeof manifest, "MANIFEST");
    n = read_manifest(manifest, e, MAX_ENTRIES);
    if (n < MIN_ENTRIES) {
        sw_test_fail_at(__FILE__, __LINE__, "%s has %d entries, want at least %d", manifest, n,
                        MIN_ENTRIES);
        free(e);
        return;
    }

    /* every file of the directory is in the manifest */
    tu_corrupt_path(path, sizeof path, "");
    d = opendir(path);
    if (d == NULL)
        sw_test_fail_at(__FILE__, __LINE__, "cannot list %s", path);
    while (d != NULL && (de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        int found = 0;

        if (l < 4 || strcmp(de->d_name + l - 4, ".swi") != 0)
            continue;
        for (int k = 0; k < n && !found; k++)
            if (strcmp(e[k].name, de->d_name) == 0)
                found = e[k].seen = 1;
        if (!found)
            sw_test_fail_at(__FILE__, __LINE__, "%s is not in the manifest", de->d_name);
    }
    if (d != NULL)
        closedir(d);

    tu_alloc_init(&ta);
    for (int k = 0; k < n; k++) {
        if (!e[k].seen) {
            sw_test_fail_at(__FILE__, __LINE__, "%s is in the manifest but not in the directory",
                            e[k].name);
            continue;
        }
        tu_corrupt_path(path, sizeof path, e[k].name);
        replay(&e[k], path, &ta, &verified);
        by_status[e[k].load == SW_ECORRUPT ? 0 : e[k].load == SW_EVERSION ? 1 : 2]++;
    }
    CHECK_ALLOC_CLEAN(&ta);
    tu_alloc_destroy(&ta);
    NOTE("%d files: %zu SW_ECORRUPT, %zu SW_EVERSION, %zu other; %zu opened mapped and failed "
         "sw_verify",
         n, by_status[0], by_status[1], by_status[2], verified);
    /* the corpus covers both kinds of refusal and the mapped records */
    CHECK(by_status[0] > 0 && by_status[1] > 0);
    if (TU_MAPS_IN_PLACE)
        CHECK(verified > 0);
    free(e);
}
