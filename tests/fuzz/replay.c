/*
 * replay.c — run fuzz_load.c's target over files, without libFuzzer.
 *
 * `sw_fuzz_replay PATH...`: each PATH is a file or a directory of files;
 * every file goes through LLVMFuzzerTestOneInput once.  A crash or abort
 * fails the run (ctest: fuzz_replay, over tests/fuzz/corpus), and so does a
 * file named seed-* that does not load: the seeds are valid indexes, the
 * positive control that shows the loader is reached at all.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern int sw_fuzz_loaded;

static int run_file(const char *p) {
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (len == cap) {
            cap = cap ? 2 * cap : 65536;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    size_t files = 0, seeds = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "cannot stat %s\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(sb.st_mode)) {
            if (run_file(argv[i]) != 0) return 1;
            files++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        char p[4096];
        while (d && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
            if (run_file(p) != 0) {
                fprintf(stderr, "cannot read %s\n", p);
                return 1;
            }
            if (strncmp(e->d_name, "seed-", 5) == 0 && !sw_fuzz_loaded) {
                fprintf(stderr, "seed %s does not load\n", p);
                return 1;
            }
            seeds += strncmp(e->d_name, "seed-", 5) == 0;
            files++;
        }
        if (d) closedir(d);
    }
    printf("replayed %zu inputs (%zu seeds, all loaded) through the loader: no crash\n", files,
           seeds);
    return files ? 0 : 1;
}
