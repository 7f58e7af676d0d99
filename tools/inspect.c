/*
 * inspect.c — `smallworld info`, `stats` and `verify`: looking at an index
 * without changing it.
 *
 * All three open the file with sw_open_mmap, so info on a large index is
 * quick (the records are not read) and none can change it.  verify then
 * calls sw_verify, which on a mapped index reads every record as sw_load
 * would; stats calls sw_get_stats, which counts every problem instead of
 * stopping at the first and never follows a bad link.  Integrity checks
 * belong to the library (STYLE.md); this file only prints them.
 *
 * The one thing the header cannot tell is the file's format version: a
 * loaded index no longer knows what it was read from.  info reads the
 * first twelve bytes itself (magic "SWALLIDX", then a little-endian u32
 * version, the same in every version; docs/format.md), which is the
 * published format rather than the library's internals; an
 * sw_file_version() call would be the better home for it.
 *
 * Both reports print as text for people or, with -O json, as one JSON
 * object for scripts (the tests read them that way).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int output_mode(const cli_args *a, int *json) {
    const char *of = a->oformat ? a->oformat : "text";
    if (strcmp(of, "text") == 0) {
        *json = 0;
    } else if (strcmp(of, "json") == 0) {
        *json = 1;
    } else {
        cli_error("--output-format: '%s' is not one of text, json", of);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Magic and version from the file's first bytes; 0 when unreadable. */
static unsigned file_version(const char *path) {
    FILE *f = fopen(path, "rb");
    unsigned char h[12];
    unsigned v = 0;
    if (!f) return 0;
    if (fread(h, 1, 12, f) == 12 && memcmp(h, "SWALLIDX", 8) == 0)
        v = (unsigned)h[8] | (unsigned)h[9] << 8 | (unsigned)h[10] << 16 | (unsigned)h[11] << 24;
    fclose(f);
    return v;
}

static double mib(size_t b) {
    return (double)b / (1024.0 * 1024.0);
}

static int finish_output(void) {
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("writing the report: %s", strerror(errno));
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* ==== info ==== */

int cli_cmd_info(const cli_args *a) {
    int json;
    int rc = output_mode(a, &json);
    if (rc) return rc;
    const char *path = a->pos[0];
    sw_index *ix;
    if ((rc = cli_open_index(path, 0, &ix))) return rc;
    sw_options o;
    sw_stats s;
    sw_get_options(ix, &o);
    sw_status st = sw_get_stats(ix, &s);
    if (st != SW_OK) {
        cli_error("stats of %s: %s", path, sw_last_error());
        sw_free(ix);
        return cli_exit_for(st);
    }
    struct stat sb;
    unsigned long long fsize = stat(path, &sb) == 0 ? (unsigned long long)sb.st_size : 0;
    unsigned version = file_version(path);
    size_t meta = 0;
    sw_get_metadata(ix, NULL, 0, &meta);
    const char *opened =
        sw_is_readonly(ix) ? "mapped" : "loaded: versions before 4 cannot be mapped";
    if (json) {
        printf("{\"file\": ");
        cli_json_string(path);
        printf(", \"file_bytes\": %llu, \"format_version\": %u, \"opened\": \"%s\", "
               "\"dim\": %zu, \"metric\": \"%s\", \"element_type\": \"%s\", \"keep\": \"%s\", "
               "\"pq_m\": %u, \"trained\": %s, \"M\": %u, "
               "\"M0\": %u, \"ef_construction\": %u, \"ef_search\": %u, \"seed\": %llu, "
               "\"count\": %llu, \"deleted\": %llu, \"free_slots\": %llu, \"layers\": %u, "
               "\"entry_label\": %lld, \"metadata_bytes\": %zu, \"memory_bytes\": %zu, "
               "\"memory_full\": %zu, \"memory_mapped\": %zu, \"saturated\": %llu, "
               "\"simd\": \"%s\", \"library\": \"%s\"}\n",
               fsize, version, sw_is_readonly(ix) ? "mapped" : "loaded", sw_dim(ix),
               cli_metric_name(o.metric), cli_type_name(o.type), cli_keep_name(o.keep),
               o.type == SW_TYPE_PQ ? o.pq_m : 0, sw_is_trained(ix) ? "true" : "false", o.M,
               o.M0, o.ef_construction, o.ef_search,
               (unsigned long long)o.seed, (unsigned long long)s.count,
               (unsigned long long)s.deleted, (unsigned long long)s.free_slots, s.layers,
               s.entry_label == SW_NO_LABEL ? -1LL : (long long)s.entry_label, meta,
               s.memory_bytes, s.memory_full, s.memory_mapped, (unsigned long long)s.saturated,
               sw_simd_name(), sw_version());
    } else {
        printf("file             %s\n", path);
        printf("file size        %llu bytes (%.1f MiB)\n", fsize, mib((size_t)fsize));
        printf("format version   %u (%s)\n", version, opened);
        printf("dimension        %zu\n", sw_dim(ix));
        printf("metric           %s\n", cli_metric_name(o.metric));
        printf("element type     %s", cli_type_name(o.type));
        if (o.type == SW_TYPE_PQ) printf(" (%u sub-quantizers)", o.pq_m);
        if (!sw_is_trained(ix)) printf(" (not trained)");
        printf("\n");
        if (o.type != SW_TYPE_F32)
            printf("full vectors     %s\n", o.keep == SW_KEEP_MEMORY ? "kept in memory"
                                             : o.keep == SW_KEEP_DISK ? "kept in the file (disk)"
                                                                      : "not kept (none)");
        printf("M / M0           %u / %u\n", o.M, o.M0);
        printf("ef_construction  %u\n", o.ef_construction);
        printf("ef (search)      %u\n", o.ef_search);
        printf("seed             %llu\n", (unsigned long long)o.seed);
        printf("vectors          %llu live, %llu tombstoned\n", (unsigned long long)s.count,
               (unsigned long long)s.deleted);
        printf("layers           %u\n", s.layers);
        if (s.entry_label != SW_NO_LABEL)
            printf("entry point      label %llu\n", (unsigned long long)s.entry_label);
        printf("metadata         %zu bytes\n", meta);
        printf("memory           %.1f MiB in memory", mib(s.memory_bytes));
        if (s.memory_full) printf(" (%.1f MiB of it full vectors)", mib(s.memory_full));
        if (s.memory_mapped) printf(", %.1f MiB of the file mapped", mib(s.memory_mapped));
        printf("\n");
        if (o.type == SW_TYPE_I8)
            printf("saturated        %llu components clamped since opened\n",
                   (unsigned long long)s.saturated);
        printf("SIMD             %s\n", sw_simd_name());
        printf("library          %s\n", sw_version());
    }
    sw_free(ix);
    return finish_output();
}

/* ==== stats ==== */

int cli_cmd_stats(const cli_args *a) {
    int json;
    int rc = output_mode(a, &json);
    if (rc) return rc;
    const char *path = a->pos[0];
    sw_index *ix;
    if ((rc = cli_open_index(path, 0, &ix))) return rc;
    sw_stats *s = malloc(sizeof *s);
    if (!s) {
        cli_error("out of memory");
        sw_free(ix);
        return CLI_FAIL;
    }
    sw_status st = sw_get_stats(ix, s);
    sw_options o;
    sw_get_options(ix, &o);
    sw_free(ix);
    if (st != SW_OK) {
        cli_error("stats of %s: %s", path, sw_last_error());
        free(s);
        return cli_exit_for(st);
    }
    if (json) {
        printf("{\"count\": %llu, \"deleted\": %llu, \"free_slots\": %llu, \"layers\": %u, "
               "\"entry_label\": %lld, \"unreachable\": %llu, \"self_links\": %llu, "
               "\"duplicate_links\": %llu, \"dangling_links\": %llu, \"overfull_lists\": %llu, "
               "\"memory\": {\"total\": %zu, \"vectors\": %zu, \"links0\": %zu, \"upper\": %zu, "
               "\"labels\": %zu, \"scratch\": %zu, \"other\": %zu, \"mapped\": %zu}, "
               "\"element_type\": \"%s\", \"keep\": \"%s\", \"pq_m\": %u, "
               "\"memory_full\": %zu, \"saturated\": %llu, \"layer\": [",
               (unsigned long long)s->count, (unsigned long long)s->deleted,
               (unsigned long long)s->free_slots, s->layers,
               s->entry_label == SW_NO_LABEL ? -1LL : (long long)s->entry_label,
               (unsigned long long)s->unreachable, (unsigned long long)s->self_links,
               (unsigned long long)s->duplicate_links, (unsigned long long)s->dangling_links,
               (unsigned long long)s->overfull_lists, s->memory_bytes, s->memory_vectors,
               s->memory_links0, s->memory_upper, s->memory_labels, s->memory_scratch,
               s->memory_other, s->memory_mapped, cli_type_name(o.type), cli_keep_name(o.keep),
               o.type == SW_TYPE_PQ ? o.pq_m : 0, s->memory_full,
               (unsigned long long)s->saturated);
        for (uint32_t l = 0; l < s->layers && l < SW_MAX_LAYERS; l++) {
            const sw_layer_stats *y = &s->layer[l];
            printf("%s{\"nodes\": %llu, \"edges\": %llu, \"min_degree\": %u, \"mean_degree\": "
                   "%.4f, \"max_degree\": %u, \"self_links\": %llu, \"duplicate_links\": %llu, "
                   "\"dangling_links\": %llu, \"overfull_lists\": %llu, \"reciprocal_edges\": "
                   "%llu, \"reciprocal_share\": %.4f}",
                   l ? ", " : "", (unsigned long long)y->nodes, (unsigned long long)y->edges,
                   y->min_degree, y->mean_degree, y->max_degree, (unsigned long long)y->self_links,
                   (unsigned long long)y->duplicate_links, (unsigned long long)y->dangling_links,
                   (unsigned long long)y->overfull_lists, (unsigned long long)y->reciprocal_edges,
                   y->reciprocal_share);
        }
        printf("]}\n");
    } else {
        printf("vectors %llu live, %llu tombstoned, %llu free slots; %u layers; entry label ",
               (unsigned long long)s->count, (unsigned long long)s->deleted,
               (unsigned long long)s->free_slots, s->layers);
        if (s->entry_label == SW_NO_LABEL) printf("none\n");
        else printf("%llu\n", (unsigned long long)s->entry_label);
        printf("\nlayer      nodes       edges  min    mean  max  self  dup  dangling  overfull  "
               "reciprocal\n");
        for (uint32_t l = 0; l < s->layers && l < SW_MAX_LAYERS; l++) {
            const sw_layer_stats *y = &s->layer[l];
            printf("%5u %10llu %11llu %4u %7.2f %4u %5llu %4llu %9llu %9llu %10.1f%%\n", l,
                   (unsigned long long)y->nodes, (unsigned long long)y->edges, y->min_degree,
                   y->mean_degree, y->max_degree, (unsigned long long)y->self_links,
                   (unsigned long long)y->duplicate_links, (unsigned long long)y->dangling_links,
                   (unsigned long long)y->overfull_lists, 100.0 * y->reciprocal_share);
        }
        printf("\nunreachable nodes %llu; links: %llu self, %llu duplicate, %llu dangling; "
               "%llu overfull lists\n",
               (unsigned long long)s->unreachable, (unsigned long long)s->self_links,
               (unsigned long long)s->duplicate_links, (unsigned long long)s->dangling_links,
               (unsigned long long)s->overfull_lists);
        printf("\nmemory     %12zu bytes (%.1f MiB)\n", s->memory_bytes, mib(s->memory_bytes));
        printf("  vectors  %12zu\n  links0   %12zu\n  upper    %12zu\n  labels   %12zu\n"
               "  scratch  %12zu\n  other    %12zu\n",
               s->memory_vectors, s->memory_links0, s->memory_upper, s->memory_labels,
               s->memory_scratch, s->memory_other);
        printf("mapped     %12zu bytes of the file (not in memory above)\n", s->memory_mapped);
        printf("\nstorage    %s", cli_type_name(o.type));
        if (o.type == SW_TYPE_PQ) printf(", %u sub-quantizers", o.pq_m);
        if (o.type != SW_TYPE_F32)
            printf(", full vectors kept: %s, %zu bytes of them in memory (part of vectors)",
                   cli_keep_name(o.keep), s->memory_full);
        printf("\n");
        if (o.type == SW_TYPE_I8)
            printf("saturated  %12llu components clamped into the learned ranges since opened\n",
                   (unsigned long long)s->saturated);
    }
    free(s);
    return finish_output();
}

/* ==== verify ==== */

int cli_cmd_verify(const cli_args *a) {
    const char *path = a->pos[0];
    sw_index *ix;
    int rc = cli_open_index(path, 0, &ix);
    if (rc) return rc;
    sw_status st = sw_verify(ix);
    size_t n = sw_count(ix);
    sw_free(ix);
    if (st == SW_ENOMEM) {
        cli_error("verify %s: %s", path, sw_last_error());
        return CLI_FAIL;
    }
    if (st != SW_OK) {
        cli_error("verify %s: %s", path, sw_last_error());
        return CLI_FAIL;
    }
    if (!a->quiet) printf("%s: ok (%zu vectors, every invariant holds)\n", path, n);
    return finish_output();
}
