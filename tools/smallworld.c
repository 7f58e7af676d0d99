/*
 * smallworld.c — the `smallworld` command-line program: the command line,
 * and the subcommands that change or search an index (build, add, delete,
 * query).  inspect.c has info, stats and verify; measure.c has bench and
 * gt; formats.c reads the vector files; progress.c draws progress.
 *
 * The program uses only include/smallworld.h, as any other application
 * would (zstd's programs/, LMDB's mdb_stat): a need it has that the header
 * cannot meet is a gap in the API, not a reason to reach inside.  (The
 * distance evaluations bench reports were such a gap; the header now has
 * sw_search_stats.)
 *
 * Exit codes are the program's contract with scripts, so they say what
 * went wrong in a way a script can act on: 1 a failed check or a run-time
 * failure, 2 the command line, 3 a data file, 4 the index file.  Every
 * failure prints exactly one line, "smallworld: ...", on stderr.
 *
 * The ways it uses the library, and why:
 *   - build adds rows in chunks of sw_add_batch rather than in one call,
 *     so progress can be drawn between chunks.  On one thread the graph is
 *     the same as one big batch (the header promises row order); on more
 *     it is as good.  The library links in stranded nodes each time the
 *     index has grown by an eighth, whatever the chunk size, and build
 *     ends with sw_compact (on a new index, that pass alone) for the
 *     chunks after the last one.
 *   - a compressed index (--type int8, binary, pq) is trained with
 *     sw_train before the first chunk.  sw_add_batch would train on its
 *     own batch, but only on one of SW_TRAIN_ROWS rows (SW_TRAIN_ROWS_PQ
 *     for pq), and the chunks can be smaller; and a chunk is the start of
 *     the file, which for data sorted by anything (a cluster, a date) is
 *     not a fair sample.  So the whole file trains it when it has at most
 *     65,536 rows, and 65,536 rows evenly spaced through it otherwise (as
 *     many as the PQ k-means samples anyway).
 *   - query, bench, info, stats and verify open the index with
 *     sw_open_mmap: opening a million vectors takes tens of milliseconds
 *     instead of a second, and nothing can be changed by accident.  Old
 *     format versions, which cannot be mapped, are loaded instead.
 *   - add and delete load the index (sw_load), change it in memory and
 *     write it back with sw_save, which writes beside the file and renames
 *     over it.  Any failure before the rename (bad data, a missing label,
 *     a full disk) leaves the file as it was, byte for byte.
 *   - delete of many labels marks them and runs one sw_compact, which
 *     repairs each affected list once (far cheaper than sw_delete one by
 *     one, bench/README.md), unless the index already holds tombstones of
 *     its own: compact would make those final too, so then each label is
 *     deleted alone.
 *
 * Options are parsed by hand rather than with getopt_long, which is a GNU
 * and BSD extension outside C11 + POSIX; the parser is small: long options
 * (--name value or --name=value), single-letter ones (-k 10 or -k10), and
 * "--" to end them.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ==== Shared helpers ==== */

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("smallworld: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_exit_for(sw_status st) {
    switch (st) {
    case SW_OK: return CLI_OK;
    case SW_EDIM:
    case SW_EDIMMISMATCH:
    case SW_ENOTFINITE:
    case SW_ENOTFOUND: return CLI_DATA;
    case SW_ECORRUPT:
    case SW_EVERSION: return CLI_INDEX;
    case SW_EINVAL:
    case SW_EK:
    case SW_EMETRIC:
    case SW_EM:
    case SW_EEFC:
    case SW_EEF: return CLI_USAGE;
    default: return CLI_FAIL;
    }
}

double cli_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

size_t cli_online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (size_t)n : 1;
}

const char *cli_type_name(sw_type t) {
    switch (t) {
    case SW_TYPE_F16: return "f16";
    case SW_TYPE_I8: return "int8";
    case SW_TYPE_BINARY: return "binary";
    case SW_TYPE_PQ: return "pq";
    default: return "f32";
    }
}

const char *cli_keep_name(sw_keep k) {
    switch (k) {
    case SW_KEEP_DISK: return "disk";
    case SW_KEEP_NONE: return "none";
    default: return "memory";
    }
}

const char *cli_metric_name(sw_metric m) {
    switch (m) {
    case SW_METRIC_IP: return "ip";
    case SW_METRIC_COSINE: return "cosine";
    case SW_METRIC_L1: return "l1";
    default: return "l2";
    }
}

void cli_json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

int cli_parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (*s < '0' || *s > '9' || *e || errno) {
        cli_error("%s: '%s' is not a whole number", opt, s);
        return CLI_USAGE;
    }
    if (v < lo || v > hi) {
        cli_error("%s: %llu is out of range (%llu .. %llu)", opt, v, (unsigned long long)lo,
                  (unsigned long long)hi);
        return CLI_USAGE;
    }
    *out = v;
    return CLI_OK;
}

int cli_open_index(const char *path, int writable, sw_index **out) {
    struct stat sb;
    if (stat(path, &sb) != 0) { /* the library's message would say it twice */
        cli_error("cannot open index %s: %s", path, strerror(errno));
        return CLI_INDEX;
    }
    sw_status st = writable ? sw_load(path, NULL, out) : sw_open_mmap(path, NULL, out);
    if (st == SW_EVERSION && !writable) st = sw_load(path, NULL, out); /* formats 1-3 */
    if (st == SW_OK) return CLI_OK;
    cli_error("cannot open index %s: %s", path, sw_last_error());
    return st == SW_ENOMEM ? CLI_FAIL : CLI_INDEX;
}

/* Rows a compressed index is trained on, at most (see the top). */
#define TRAIN_SAMPLE 65536u

/* Train an untrained index on m (or an even sample of it); nothing to do
 * for one that is trained. */
static int train_rows(sw_index *ix, const cli_matrix *m, int quiet) {
    if (sw_is_trained(ix) || m->n == 0) return CLI_OK;
    sw_options o;
    sw_get_options(ix, &o);
    size_t n = m->n < TRAIN_SAMPLE ? m->n : TRAIN_SAMPLE;
    const float *rows = m->data;
    float *sample = NULL;
    if (n < m->n) {
        if (!(sample = malloc(n * m->dim * sizeof *sample))) {
            cli_error("out of memory for %zu training rows", n);
            return CLI_FAIL;
        }
        for (size_t i = 0; i < n; i++) /* i * m->n fits: m->n * dim floats are in memory */
            memcpy(sample + i * m->dim, m->data + (i * m->n / n) * m->dim,
                   m->dim * sizeof *sample);
        rows = sample;
    }
    double t0 = cli_now();
    sw_status st = sw_train(ix, rows, n, m->dim);
    free(sample);
    if (st != SW_OK) {
        cli_error("training the %s quantizer: %s", cli_type_name(o.type), sw_last_error());
        /* the one refusal a good command line can meet: too few rows */
        return st == SW_EINVAL ? CLI_DATA : cli_exit_for(st);
    }
    if (!quiet)
        fprintf(stderr, "trained the %s quantizer on %zu rows in %.2f s\n", cli_type_name(o.type),
                n, cli_now() - t0);
    return CLI_OK;
}

/* Add rows in chunks, drawing progress. */
static int add_rows(sw_index *ix, const uint64_t *labels, const cli_matrix *m, size_t threads,
                    const char *what, int quiet) {
    int rc = train_rows(ix, m, quiet);
    if (rc) return rc;
    size_t chunk = m->n / 100;
    if (chunk < 512) chunk = 512;
    if (chunk > 65536) chunk = 65536;
    cli_progress p;
    cli_progress_begin(&p, what, m->n, quiet);
    for (size_t i = 0; i < m->n; i += chunk) {
        size_t c = m->n - i < chunk ? m->n - i : chunk;
        sw_status st = sw_add_batch(ix, labels + i, m->data + i * m->dim, c, m->dim, threads);
        if (st != SW_OK) {
            if (p.drawn && p.tty) fputc('\n', stderr);
            cli_error("adding rows %zu .. %zu: %s", i, i + c - 1, sw_last_error());
            return cli_exit_for(st);
        }
        cli_progress_update(&p, i + c);
    }
    cli_progress_end(&p);
    return CLI_OK;
}

int cli_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static int check_dim(const char *what, size_t have, size_t want) {
    if (have == want) return CLI_OK;
    cli_error("%s has dimension %zu, the index %zu", what, have, want);
    return CLI_DATA;
}

static int save_index(const sw_index *ix, const char *path) {
    if (sw_save(ix, path) == SW_OK) return CLI_OK;
    cli_error("cannot save %s: %s", path, sw_last_error());
    return CLI_FAIL;
}

/* ==== build ==== */

static int cmd_build(const cli_args *a) {
    const char *data = a->pos[0];
    if (cli_same_file(data, a->out)) {
        cli_error("-o %s is the data file itself", a->out);
        return CLI_USAGE;
    }
    /* a build can take hours: find out now that it cannot be saved */
    const char *slash = strrchr(a->out, '/');
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - a->out + 1) : 1,
             slash ? a->out : ".");
    if (access(dir, W_OK | X_OK) != 0) {
        cli_error("cannot write %s: %s: %s", a->out, dir, strerror(errno));
        return CLI_FAIL;
    }
    cli_matrix m;
    uint64_t *labels = NULL;
    sw_index *ix = NULL;
    size_t nl;
    int rc = cli_read_vectors(data, a->format, &m);
    if (rc) return rc;
    if (a->labels) {
        if ((rc = cli_read_labels(a->labels, m.n, &labels, &nl))) goto done;
        uint64_t dup;
        int d = cli_find_duplicate(labels, nl, &dup);
        if (d == -2) {
            cli_error("out of memory");
            rc = CLI_FAIL;
            goto done;
        }
        if (d == 1) {
            cli_error("%s: label %llu appears more than once", a->labels, (unsigned long long)dup);
            rc = CLI_DATA;
            goto done;
        }
    } else {
        if (!(labels = malloc(m.n * sizeof *labels))) {
            cli_error("out of memory");
            rc = CLI_FAIL;
            goto done;
        }
        for (size_t i = 0; i < m.n; i++) labels[i] = i;
    }
    sw_options opt = a->opt;
    opt.dim = (uint32_t)m.dim;
    if (opt.pq_m && m.dim % opt.pq_m) {
        cli_error("--pq-m %u does not divide the dimension %zu of %s", opt.pq_m, m.dim, data);
        rc = CLI_USAGE;
        goto done;
    }
    sw_status st = sw_create(&opt, &ix);
    if (st != SW_OK) {
        cli_error("%s", sw_last_error());
        rc = cli_exit_for(st);
        goto done;
    }
    double t0 = cli_now();
    if ((rc = add_rows(ix, labels, &m, a->threads, "build", a->quiet))) goto done;
    /* The chunks after the library's last reachability pass may have left
     * a few nodes stranded (6 of 1,000,000 in one build); a new index has
     * no tombstones, so sw_compact is that pass alone. */
    st = sw_compact(ix, a->threads);
    if (st != SW_OK) {
        cli_error("linking stranded nodes: %s", sw_last_error());
        rc = cli_exit_for(st);
        goto done;
    }
    double t1 = cli_now();
    if ((rc = save_index(ix, a->out))) goto done;
    if (!a->quiet) {
        sw_options o;
        sw_get_options(ix, &o);
        fprintf(stderr, "built %s: %zu vectors of dimension %zu, %s, M %u, ef_construction %u, ",
                a->out, sw_count(ix), m.dim, cli_metric_name(o.metric), o.M, o.ef_construction);
        if (o.type != SW_TYPE_F32) {
            fprintf(stderr, "%s", cli_type_name(o.type));
            if (o.type == SW_TYPE_PQ) fprintf(stderr, " (m %u)", o.pq_m);
            fprintf(stderr, ", full vectors kept: %s, ", cli_keep_name(o.keep));
        }
        fprintf(stderr, "in %.2f s\n", t1 - t0);
    }
done:
    sw_free(ix);
    free(labels);
    cli_matrix_free(&m);
    return rc;
}

/* ==== add ==== */

static int cmd_add(const cli_args *a) {
    const char *path = a->pos[0], *data = a->pos[1];
    sw_index *ix = NULL;
    cli_matrix m = {0, 0, NULL};
    uint64_t *labels = NULL, *have = NULL;
    size_t nl;
    int rc = cli_open_index(path, 1, &ix);
    if (rc) return rc;
    if ((rc = cli_read_vectors(data, a->format, &m))) goto done;
    if ((rc = check_dim(data, m.dim, sw_dim(ix)))) goto done;
    if (a->labels) {
        if ((rc = cli_read_labels(a->labels, m.n, &labels, &nl))) goto done;
        uint64_t dup;
        int d = cli_find_duplicate(labels, nl, &dup);
        if (d == 1) {
            cli_error("%s: label %llu appears more than once", a->labels, (unsigned long long)dup);
            rc = CLI_DATA;
            goto done;
        }
        if (d == -2) {
            cli_error("out of memory");
            rc = CLI_FAIL;
            goto done;
        }
    } else {
        uint64_t start = a->start;
        if (!a->start_set) { /* after the largest label, live or tombstoned */
            start = 0;
            for (int tomb = 0; tomb < 2; tomb++) {
                size_t total = 0;
                sw_list_labels(ix, tomb, NULL, 0, &total);
                free(have);
                have = malloc((total ? total : 1) * sizeof *have);
                if (!have) {
                    cli_error("out of memory");
                    rc = CLI_FAIL;
                    goto done;
                }
                sw_list_labels(ix, tomb, have, total, &total);
                for (size_t i = 0; i < total; i++)
                    if (have[i] >= start) start = have[i] + 1;
            }
        }
        if (start > SW_NO_LABEL - m.n) {
            cli_error("labels %llu + %zu rows pass the largest label 2^64 - 2",
                      (unsigned long long)start, m.n);
            rc = CLI_DATA;
            goto done;
        }
        if (!(labels = malloc(m.n * sizeof *labels))) {
            cli_error("out of memory");
            rc = CLI_FAIL;
            goto done;
        }
        for (size_t i = 0; i < m.n; i++) labels[i] = start + i;
    }
    size_t updates = 0;
    for (size_t i = 0; i < m.n; i++) updates += sw_contains(ix, labels[i]) || sw_is_deleted(ix, labels[i]);
    if ((rc = add_rows(ix, labels, &m, a->threads, "add", a->quiet))) goto done;
    if ((rc = save_index(ix, path))) goto done;
    if (!a->quiet) {
        fprintf(stderr, "added %zu vectors to %s", m.n, path);
        if (!a->labels)
            fprintf(stderr, " (labels %llu .. %llu)", (unsigned long long)labels[0],
                    (unsigned long long)labels[m.n - 1]);
        if (updates) fprintf(stderr, ", %zu of them updates of labels already there", updates);
        fprintf(stderr, "; it holds %zu\n", sw_count(ix));
    }
done:
    free(have);
    free(labels);
    cli_matrix_free(&m);
    sw_free(ix);
    return rc;
}

/* ==== delete ==== */

static int cmp_u64(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* Labels from "--label 1,2,3" appended to *list. */
static int parse_label_list(const char *text, uint64_t **list, size_t *n) {
    const char *p = text;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char buf[32];
        uint64_t v;
        if (len == 0 || len >= sizeof buf) {
            cli_error("--label: '%.*s' is not a label", (int)(len < 40 ? len : 40), p);
            return CLI_USAGE;
        }
        memcpy(buf, p, len);
        buf[len] = 0;
        if (cli_parse_u64("--label", buf, 0, SW_NO_LABEL - 1, &v)) return CLI_USAGE;
        uint64_t *nl = realloc(*list, (*n + 1) * sizeof *nl);
        if (!nl) {
            cli_error("out of memory");
            return CLI_FAIL;
        }
        *list = nl;
        nl[(*n)++] = v;
        if (!e) return CLI_OK;
        p = e + 1;
    }
}

static int cmd_delete(const cli_args *a) {
    const char *path = a->pos[0];
    uint64_t *del = NULL;
    size_t n = 0;
    sw_index *ix = NULL;
    int rc = CLI_OK;
    if (!a->label_list && a->npos < 2) {
        cli_error("delete: name the labels: a file of labels, or --label N[,N...]");
        return CLI_USAGE;
    }
    if (a->npos >= 2 && (rc = cli_read_labels(a->pos[1], 0, &del, &n))) return rc;
    if (a->label_list && (rc = parse_label_list(a->label_list, &del, &n))) goto done;
    qsort(del, n, sizeof *del, cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || del[i] != del[u - 1]) del[u++] = del[i];
    n = u;
    if ((rc = cli_open_index(path, 1, &ix))) goto done;
    size_t missing = 0;
    for (size_t i = 0; i < n; i++) {
        if (sw_contains(ix, del[i]) || sw_is_deleted(ix, del[i])) {
            del[i - missing] = del[i];
            continue;
        }
        if (!a->ignore_missing) {
            cli_error("label %llu is not in %s (nothing was deleted; --ignore-missing skips it)",
                      (unsigned long long)del[i], path);
            rc = CLI_DATA;
            goto done;
        }
        missing++;
    }
    n -= missing;
    if (n == 0) { /* only missing labels, skipped: leave the file alone */
        if (!a->quiet) fprintf(stderr, "nothing to delete in %s\n", path);
        goto done;
    }
    size_t before = sw_count(ix);
    sw_status st = SW_OK;
    if (a->tombstone) {
        for (size_t i = 0; i < n && st == SW_OK; i++) st = sw_mark_deleted(ix, del[i]);
    } else if (n > 1 && sw_deleted_count(ix) == 0) {
        for (size_t i = 0; i < n && st == SW_OK; i++) st = sw_mark_deleted(ix, del[i]);
        if (st == SW_OK) st = sw_compact(ix, a->threads);
    } else {
        cli_progress p;
        cli_progress_begin(&p, "delete", n, a->quiet || n < 1000);
        for (size_t i = 0; i < n && st == SW_OK; i++) {
            st = sw_delete(ix, del[i]);
            cli_progress_update(&p, i + 1);
        }
        if (st == SW_OK) cli_progress_end(&p);
    }
    if (st != SW_OK) {
        cli_error("deleting from %s: %s (the file is unchanged)", path, sw_last_error());
        rc = cli_exit_for(st);
        goto done;
    }
    if ((rc = save_index(ix, path))) goto done;
    if (!a->quiet) {
        fprintf(stderr, "%s %zu labels in %s", a->tombstone ? "tombstoned" : "deleted", n, path);
        if (missing) fprintf(stderr, " (%zu not there, skipped)", missing);
        fprintf(stderr, "; %zu of %zu vectors remain searchable\n", sw_count(ix), before);
    }
done:
    sw_free(ix);
    free(del);
    return rc;
}

/* ==== query ==== */

static void print_json_float(float v) {
    printf("%.9g", (double)v);
}

static int cmd_query(const cli_args *a) {
    const char *path = a->pos[0];
    if ((a->npos >= 2) == (a->vector != NULL)) {
        cli_error("query: give either a file of queries or --vector, not %s",
                  a->vector ? "both" : "neither");
        return CLI_USAGE;
    }
    const char *of = a->oformat ? a->oformat : "text";
    int mode = strcmp(of, "text") == 0 ? 0 : strcmp(of, "jsonl") == 0 ? 1 : strcmp(of, "csv") == 0 ? 2 : -1;
    if (mode < 0) {
        cli_error("--output-format: '%s' is not one of text, jsonl, csv", of);
        return CLI_USAGE;
    }
    uint64_t ef = 0;
    if (a->ef && cli_parse_u64("--ef", a->ef, 1, SW_MAX_EF, &ef)) return CLI_USAGE;
    size_t k = a->k_set ? a->k : 10;
    sw_index *ix = NULL;
    cli_matrix q = {0, 0, NULL};
    uint64_t *labels = NULL;
    float *dist = NULL;
    size_t *found = NULL;
    int rc;
    if (a->vector)
        rc = cli_parse_vector(a->vector, &q);
    else
        rc = cli_read_vectors(a->pos[1], a->format, &q);
    if (rc) return rc;
    if ((rc = cli_open_index(path, 0, &ix))) goto done;
    if ((rc = check_dim(a->vector ? "--vector" : a->pos[1], q.dim, sw_dim(ix)))) goto done;
    if (q.n > SIZE_MAX / k / 8 || !(labels = malloc(q.n * k * sizeof *labels)) ||
        !(dist = malloc(q.n * k * sizeof *dist)) || !(found = malloc(q.n * sizeof *found))) {
        cli_error("out of memory for %zu x %zu results", q.n, k);
        rc = CLI_FAIL;
        goto done;
    }
    sw_search_params sp = sw_search_params_default();
    sp.ef = (uint32_t)ef;
    sp.rerank = a->rerank;
    sw_status st = SW_OK;
    if (a->exact) {
        for (size_t i = 0; i < q.n && st == SW_OK; i++)
            st = sw_search_exact(ix, q.data + i * q.dim, q.dim, k, &sp, labels + i * k,
                                 dist + i * k, &found[i]);
    } else {
        st = sw_search_batch(ix, q.data, q.n, q.dim, k, &sp, labels, dist, found, a->threads);
    }
    if (st != SW_OK) {
        cli_error("search: %s", sw_last_error());
        rc = cli_exit_for(st);
        goto done;
    }
    if (mode == 2) printf("query,rank,label,distance\n");
    for (size_t i = 0; i < q.n; i++) {
        const uint64_t *l = labels + i * k;
        const float *d = dist + i * k;
        if (mode == 0) {
            printf("query %zu\n", i);
            for (size_t j = 0; j < found[i]; j++)
                printf("  %3zu  label %-12llu distance %g\n", j + 1, (unsigned long long)l[j],
                       (double)d[j]);
        } else if (mode == 1) {
            printf("{\"query\": %zu, \"labels\": [", i);
            for (size_t j = 0; j < found[i]; j++)
                printf("%s%llu", j ? ", " : "", (unsigned long long)l[j]);
            printf("], \"distances\": [");
            for (size_t j = 0; j < found[i]; j++) {
                if (j) printf(", ");
                print_json_float(d[j]);
            }
            printf("]}\n");
        } else {
            for (size_t j = 0; j < found[i]; j++)
                printf("%zu,%zu,%llu,%.9g\n", i, j + 1, (unsigned long long)l[j], (double)d[j]);
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("writing the results: %s", strerror(errno));
        rc = CLI_FAIL;
    }
done:
    free(labels);
    free(dist);
    free(found);
    cli_matrix_free(&q);
    sw_free(ix);
    return rc;
}

/* ==== The command line ==== */

enum {
    O_OUT, O_FORMAT, O_METRIC, O_TYPE, O_M, O_M0, O_EFC, O_EFS, O_SEED, O_THREADS, O_LABELS,
    O_LABEL, O_K, O_EF, O_VECTOR, O_EXACT, O_OFORMAT, O_GT, O_DIST, O_START, O_TOMB,
    O_IGNMISS, O_QUIET, O_HELP, O_KEEP, O_PQM, O_RERANK, O_COUNT
};

static const struct {
    const char *lng;
    char shrt;
    int arg;
} options[O_COUNT] = {
    [O_OUT] = {"out", 'o', 1},          [O_FORMAT] = {"format", 0, 1},
    [O_METRIC] = {"metric", 0, 1},      [O_TYPE] = {"type", 0, 1},
    [O_M] = {"M", 'M', 1},              [O_M0] = {"M0", 0, 1},
    [O_EFC] = {"ef-construction", 0, 1}, [O_EFS] = {"ef-search", 0, 1},
    [O_SEED] = {"seed", 0, 1},          [O_THREADS] = {"threads", 'j', 1},
    [O_LABELS] = {"labels", 0, 1},      [O_LABEL] = {"label", 0, 1},
    [O_K] = {"k", 'k', 1},              [O_EF] = {"ef", 0, 1},
    [O_VECTOR] = {"vector", 0, 1},      [O_EXACT] = {"exact", 0, 0},
    [O_OFORMAT] = {"output-format", 'O', 1}, [O_GT] = {"gt", 0, 1},
    [O_DIST] = {"distances", 0, 1},     [O_START] = {"start", 0, 1},
    [O_TOMB] = {"tombstone", 0, 0},     [O_IGNMISS] = {"ignore-missing", 0, 0},
    [O_QUIET] = {"quiet", 'q', 0},      [O_HELP] = {"help", 'h', 0},
    [O_KEEP] = {"keep", 0, 1},          [O_PQM] = {"pq-m", 0, 1},
    [O_RERANK] = {"rerank", 0, 1},
};

#define B(o) (1u << (o))
#define COMMON (B(O_QUIET) | B(O_HELP))

typedef struct command {
    const char *name;
    int (*run)(const cli_args *);
    unsigned allowed;
    size_t min_pos, max_pos;
    const char *help;
} command;

static const char exit_help[] =
    "Exit status: 0 success; 1 a check failed (verify) or a run-time failure (out of\n"
    "memory, cannot write); 2 bad command line; 3 a data file is missing or bad (vectors,\n"
    "labels, ground truth; a dimension that does not match the index); 4 the index file\n"
    "is missing, unreadable, corrupt or of an unsupported version.\n";

static const command commands[] = {
    {"build", cmd_build,
     COMMON | B(O_OUT) | B(O_FORMAT) | B(O_METRIC) | B(O_TYPE) | B(O_KEEP) | B(O_PQM) | B(O_M) |
         B(O_M0) | B(O_EFC) | B(O_EFS) | B(O_SEED) | B(O_THREADS) | B(O_LABELS),
     1, 1,
     "usage: smallworld build DATA -o INDEX [options]\n"
     "Build an index from a file of vectors and save it to INDEX.\n\n"
     "  -o, --out INDEX          the index file to write (replaced atomically)\n"
     "  --format FMT             the format of DATA (default: from its extension)\n"
     "  --labels FILE            one label per line (default: row numbers 0, 1, ...)\n"
     "  --metric l2|ip|cosine|l1 distance (default l2, squared Euclidean)\n"
     "  --type T                 element type stored and walked: f32 (default, exact),\n"
     "                           f16 (2 bytes a dimension), int8 (1 byte; ranges learned\n"
     "                           from the data), binary (1 bit; Hamming) or pq (product\n"
     "                           quantization, --pq-m bytes a vector).  int8, binary and\n"
     "                           pq are trained first, on up to 65,536 rows of DATA\n"
     "  --keep memory|disk|none  compressed types: where the full-precision copies that\n"
     "                           re-rank results live: in memory (default), in the index\n"
     "                           file (mapped when it is opened), or nowhere (distances\n"
     "                           are then estimates from the codes)\n"
     "  --pq-m N                 pq: sub-quantizers, a divisor of the dimension (default:\n"
     "                           the largest one not above dimension/8)\n"
     "  -M N                     links per node on upper layers (default 16)\n"
     "  --M0 N                   links per node on layer 0 (default 2*M)\n"
     "  --ef-construction N      candidate list while inserting (default 200)\n"
     "  --ef-search N            default search ef saved with the index (default 64)\n"
     "  --seed N                 seed of the level generator (default 100)\n"
     "  -j, --threads N          threads (default 0: every CPU)\n"
     "  -q, --quiet              no progress or summary\n"},
    {"query", cmd_query,
     COMMON | B(O_FORMAT) | B(O_K) | B(O_EF) | B(O_VECTOR) | B(O_EXACT) | B(O_OFORMAT) |
         B(O_THREADS) | B(O_RERANK),
     1, 2,
     "usage: smallworld query INDEX QUERIES [options]\n"
     "       smallworld query INDEX --vector 'x1,x2,...' [options]\n"
     "Print the k nearest labels and distances of each query, nearest first.\n\n"
     "  -k N                     neighbours per query (default 10)\n"
     "  --ef N                   search ef (default: the index's; raised to k)\n"
     "  --vector V               one query, its numbers separated by commas or blanks\n"
     "  --exact                  brute force instead of the graph (ground truth)\n"
     "  --rerank R               compressed types: re-score the best R x k candidates\n"
     "                           with the full vectors (default 4; 1 .. 1000; at most ef)\n"
     "  --format FMT             the format of QUERIES (default: from its extension)\n"
     "  -O, --output-format F    text (default), jsonl or csv\n"
     "  -j, --threads N          search threads (default 0: every CPU)\n"},
    {"bench", cli_cmd_bench,
     COMMON | B(O_FORMAT) | B(O_K) | B(O_EF) | B(O_GT) | B(O_OFORMAT) | B(O_RERANK), 2, 2,
     "usage: smallworld bench INDEX QUERIES --gt GT [options]\n"
     "Sweep the search ef: recall@k against the ground truth, queries per second,\n"
     "p50/p95/p99 latency, one query at a time on one thread.\n\n"
     "  --gt GT                  ground-truth ids, .ibin or .ivecs (row i: the nearest\n"
     "                           labels of query i; see smallworld gt)\n"
     "  -k N                     recall@k (default 10)\n"
     "  --ef LIST                comma-separated ef values (default 10,16,32,64,128,256)\n"
     "  --rerank R               compressed types: re-score the best R x k candidates\n"
     "                           with the full vectors (default 4; 1 .. 1000; at most ef)\n"
     "  --format FMT             the format of QUERIES (default: from its extension)\n"
     "  -O, --output-format F    table (default), csv or json\n"
     "Each row also gives the distance evaluations per query (csv and json: and\n"
     "the layer-0 nodes expanded), the time per distance evaluation, and the\n"
     "overhead factor: that time over the time per distance of an exact scan of\n"
     "the index.  An ef below k is searched as k, and shown so.\n"},
    {"gt", cli_cmd_gt,
     COMMON | B(O_OUT) | B(O_FORMAT) | B(O_K) | B(O_METRIC) | B(O_THREADS) | B(O_DIST), 2, 2,
     "usage: smallworld gt BASE QUERIES -o GT.ibin [options]\n"
     "Exact ground truth by brute force: for each query the ids (row numbers of\n"
     "BASE) of its k nearest rows, nearest first, as .ibin (int32 n, int32 k, ids).\n\n"
     "  -o, --out FILE           the .ibin file of ids to write\n"
     "  --distances FILE         also write the distances, as .fbin\n"
     "  -k N                     neighbours per query (default 100)\n"
     "  --metric l2|ip|cosine|l1 distance, as the index's (default l2)\n"
     "  --format FMT             the format of BASE and QUERIES (default: extensions)\n"
     "  -j, --threads N          threads (default 0: every CPU)\n"},
    {"info", cli_cmd_info, COMMON | B(O_OFORMAT), 1, 1,
     "usage: smallworld info INDEX [-O text|json]\n"
     "Parameters (element type and where full vectors are kept among them), counts,\n"
     "memory, file size and format version, and the SIMD level in use.\n"},
    {"stats", cli_cmd_stats, COMMON | B(O_OFORMAT), 1, 1,
     "usage: smallworld stats INDEX [-O text|json]\n"
     "The integrity report: per layer nodes, edges, min/mean/max degree, self,\n"
     "duplicate and dangling links, overfull lists, reciprocated links; nodes no\n"
     "search reaches; memory by component (and of it the full-precision copies of a\n"
     "compressed index); int8 components clamped into the learned ranges.\n"},
    {"verify", cli_cmd_verify, COMMON, 1, 1,
     "usage: smallworld verify INDEX\n"
     "Check every invariant of the index (every record read); exit 0 when all hold,\n"
     "1 naming the first problem otherwise (4 when the file cannot be opened).\n"},
    {"add", cmd_add,
     COMMON | B(O_FORMAT) | B(O_LABELS) | B(O_START) | B(O_THREADS), 2, 2,
     "usage: smallworld add INDEX DATA [options]\n"
     "Add the vectors of DATA to a saved index, in place.  The file is replaced\n"
     "only when everything succeeded; on any error it is left as it was.\n\n"
     "  --labels FILE            one label per line; a label already in the index\n"
     "                           is an update of its vector\n"
     "  --start N                label the rows N, N+1, ... (default: one past the\n"
     "                           largest label in the index)\n"
     "  --format FMT             the format of DATA (default: from its extension)\n"
     "  -j, --threads N          threads (default 0: every CPU)\n"
     "  -q, --quiet              no progress or summary\n"},
    {"delete", cmd_delete,
     COMMON | B(O_LABEL) | B(O_TOMB) | B(O_IGNMISS) | B(O_THREADS), 1, 2,
     "usage: smallworld delete INDEX [LABELS] [--label N[,N...]] [options]\n"
     "Delete labels from a saved index, in place: the nodes leave the graph and the\n"
     "lists that pointed to them are repaired.  LABELS is a file of labels, one per\n"
     "line.  The file is replaced only when everything succeeded.\n\n"
     "  --label N[,N...]         labels given on the command line\n"
     "  --tombstone              only hide the labels (reversible; no graph repair)\n"
     "  --ignore-missing         skip labels that are not in the index (default: refuse)\n"
     "  -j, --threads N          threads for the repair (default 0: every CPU)\n"
     "  -q, --quiet              no summary\n"},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void main_help(FILE *f) {
    fprintf(f,
            "usage: smallworld COMMAND [options] [arguments]\n"
            "       smallworld COMMAND --help\n"
            "       smallworld --version\n\n"
            "An HNSW index of vectors, from the shell.\n\n"
            "Commands:\n"
            "  build   DATA -o INDEX        build an index from a file of vectors\n"
            "  query   INDEX QUERIES        the k nearest labels of each query\n"
            "  bench   INDEX QUERIES --gt GT   recall, QPS and latency over an ef sweep\n"
            "  gt      BASE QUERIES -o GT   exact ground truth (brute force, threaded)\n"
            "  info    INDEX                parameters, counts, memory, SIMD level\n"
            "  stats   INDEX                the graph's integrity report\n"
            "  verify  INDEX                check every invariant; non-zero exit if broken\n"
            "  add     INDEX DATA           add vectors to a saved index, in place\n"
            "  delete  INDEX LABELS         delete labels from a saved index, in place\n\n"
            "Vector files (chosen by extension; --format overrides): %s.\n"
            ".npy: float32, float16, float64, uint8, int8, C order.  CSV/TSV: one vector\n"
            "a line.\n\n%s\nSee man smallworld (docs/smallworld.1) for the details.\n",
            cli_format_names, exit_help);
}

static int parse_metric(const char *s, sw_metric *m) {
    static const struct {
        const char *n;
        sw_metric m;
    } t[] = {{"l2", SW_METRIC_L2}, {"ip", SW_METRIC_IP}, {"cosine", SW_METRIC_COSINE},
             {"l1", SW_METRIC_L1}};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, t[i].n) == 0) {
            *m = t[i].m;
            return CLI_OK;
        }
    }
    cli_error("--metric: '%s' is not one of l2, ip, cosine, l1", s);
    return CLI_USAGE;
}

static int parse_type(const char *s, sw_type *t) {
    /* the names info prints, and the Python package's */
    static const struct {
        const char *n;
        sw_type t;
    } names[] = {{"f32", SW_TYPE_F32},   {"float32", SW_TYPE_F32},   {"f16", SW_TYPE_F16},
                 {"float16", SW_TYPE_F16}, {"int8", SW_TYPE_I8},   {"i8", SW_TYPE_I8},
                 {"binary", SW_TYPE_BINARY}, {"pq", SW_TYPE_PQ}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(s, names[i].n) == 0) {
            *t = names[i].t;
            return CLI_OK;
        }
    }
    cli_error("--type: '%s' is not an element type (f32, f16, int8, binary, pq)", s);
    return CLI_USAGE;
}

static int parse_keep(const char *s, sw_keep *k) {
    if (strcmp(s, "memory") == 0) *k = SW_KEEP_MEMORY;
    else if (strcmp(s, "disk") == 0) *k = SW_KEEP_DISK;
    else if (strcmp(s, "none") == 0) *k = SW_KEEP_NONE;
    else {
        cli_error("--keep: '%s' is not one of memory, disk, none", s);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Apply one option's value to the arguments. */
static int apply(cli_args *a, int id, const char *name, const char *v) {
    uint64_t x;
    int rc = CLI_OK;
    switch (id) {
    case O_OUT: a->out = v; break;
    case O_FORMAT:
        if (cli_format_parse(v, &a->format)) {
            cli_error("--format: '%s' is not one of %s", v, cli_format_names);
            rc = CLI_USAGE;
        }
        break;
    case O_METRIC: rc = parse_metric(v, &a->opt.metric); a->metric_set = 1; break;
    case O_TYPE: rc = parse_type(v, &a->opt.type); break;
    case O_KEEP: rc = parse_keep(v, &a->opt.keep); break;
    case O_PQM:
        if (!(rc = cli_parse_u64(name, v, 1, SW_MAX_DIM, &x))) a->opt.pq_m = (uint32_t)x;
        break;
    case O_RERANK:
        if (!(rc = cli_parse_u64(name, v, 1, SW_MAX_RERANK, &x))) a->rerank = (uint32_t)x;
        break;
    case O_M:
        if (!(rc = cli_parse_u64(name, v, SW_MIN_M, SW_MAX_M, &x))) a->opt.M = (uint32_t)x;
        break;
    case O_M0:
        if (!(rc = cli_parse_u64(name, v, SW_MIN_M, SW_MAX_M0, &x))) a->opt.M0 = (uint32_t)x;
        break;
    case O_EFC:
        if (!(rc = cli_parse_u64(name, v, 1, SW_MAX_EF, &x))) a->opt.ef_construction = (uint32_t)x;
        break;
    case O_EFS:
        if (!(rc = cli_parse_u64(name, v, 1, SW_MAX_EF, &x))) a->opt.ef_search = (uint32_t)x;
        break;
    case O_SEED:
        if (!(rc = cli_parse_u64(name, v, 0, UINT64_MAX, &x))) a->opt.seed = x;
        break;
    case O_THREADS:
        if (!(rc = cli_parse_u64(name, v, 0, SW_MAX_THREADS, &x))) a->threads = (size_t)x;
        break;
    case O_LABELS: a->labels = v; break;
    case O_LABEL: a->label_list = v; break;
    case O_K:
        if (!(rc = cli_parse_u64(name, v, 1, SW_MAX_EF, &x))) {
            a->k = (size_t)x;
            a->k_set = 1;
        }
        break;
    case O_EF: a->ef = v; break;
    case O_VECTOR: a->vector = v; break;
    case O_EXACT: a->exact = 1; break;
    case O_OFORMAT: a->oformat = v; break;
    case O_GT: a->gt = v; break;
    case O_DIST: a->distances = v; break;
    case O_START:
        if (!(rc = cli_parse_u64(name, v, 0, SW_NO_LABEL - 1, &x))) {
            a->start = x;
            a->start_set = 1;
        }
        break;
    case O_TOMB: a->tombstone = 1; break;
    case O_IGNMISS: a->ignore_missing = 1; break;
    case O_QUIET: a->quiet = 1; break;
    default: break;
    }
    return rc;
}

static int parse(const command *c, int argc, char **argv, cli_args *a, int *help) {
    int only_pos = 0;
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];
        if (only_pos || s[0] != '-' || s[1] == 0) {
            if (a->npos == c->max_pos) {
                cli_error("%s: unexpected argument '%s' (see smallworld %s --help)", c->name, s,
                          c->name);
                return CLI_USAGE;
            }
            a->pos[a->npos++] = s;
            continue;
        }
        if (strcmp(s, "--") == 0) {
            only_pos = 1;
            continue;
        }
        int id = -1;
        const char *val = NULL;
        char name[64];
        if (s[1] == '-') {
            const char *eq = strchr(s + 2, '=');
            size_t len = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
            for (int o = 0; o < O_COUNT && len < sizeof name; o++)
                if (strlen(options[o].lng) == len && strncmp(options[o].lng, s + 2, len) == 0)
                    id = o;
            if (eq) val = eq + 1;
            snprintf(name, sizeof name, "--%.*s", (int)(len < 40 ? len : 40), s + 2);
        } else {
            for (int o = 0; o < O_COUNT; o++)
                if (options[o].shrt == s[1]) id = o;
            if (s[2]) val = s + 2;
            snprintf(name, sizeof name, "-%c", s[1]);
        }
        if (id < 0 || !(c->allowed & B(id))) {
            cli_error("%s: unknown option '%s' (see smallworld %s --help)", c->name, name,
                      c->name);
            return CLI_USAGE;
        }
        if (id == O_HELP) {
            *help = 1;
            return CLI_OK;
        }
        if (options[id].arg && !val) {
            if (i + 1 >= argc) {
                cli_error("%s: option %s needs a value", c->name, name);
                return CLI_USAGE;
            }
            val = argv[++i];
        } else if (!options[id].arg && val) {
            cli_error("%s: option %s takes no value", c->name, name);
            return CLI_USAGE;
        }
        int rc = apply(a, id, name, val);
        if (rc) return rc;
    }
    return CLI_OK;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        main_help(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        if (argc > 2) {
            for (size_t i = 0; i < N_COMMANDS; i++) {
                if (strcmp(argv[2], commands[i].name) == 0) {
                    printf("%s\n%s", commands[i].help, exit_help);
                    return CLI_OK;
                }
            }
        }
        main_help(stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("smallworld %s (library %s, kernels %s)\n", SW_VERSION_STRING, sw_version(),
               sw_simd_name());
        return CLI_OK;
    }
    const command *c = NULL;
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0) c = &commands[i];
    if (!c) {
        cli_error("unknown command '%s' (see smallworld --help)", cmd);
        return CLI_USAGE;
    }
    cli_args a;
    memset(&a, 0, sizeof a);
    a.cmd = c->name;
    a.opt = sw_options_default();
    int help = 0;
    int rc = parse(c, argc, argv, &a, &help);
    if (rc) return rc;
    if (help) {
        printf("%s\n%s", c->help, exit_help);
        return CLI_OK;
    }
    if (a.npos < c->min_pos) {
        cli_error("%s: missing argument (usage: %.*s)", c->name,
                  (int)(strchr(c->help, '\n') - c->help - 7), c->help + 7);
        return CLI_USAGE;
    }
    if ((c->allowed & B(O_OUT)) && !a.out) {
        cli_error("%s: -o FILE is required", c->name);
        return CLI_USAGE;
    }
    /* options that only make sense together, whatever their order */
    if (a.opt.type == SW_TYPE_F32 && a.opt.keep != SW_KEEP_MEMORY) {
        cli_error("%s: --keep %s needs a compressed --type (f16, int8, binary, pq): an f32 "
                  "index's vectors are its full-precision copies",
                  c->name, cli_keep_name(a.opt.keep));
        return CLI_USAGE;
    }
    if (a.opt.pq_m && a.opt.type != SW_TYPE_PQ) {
        cli_error("%s: --pq-m applies to --type pq only", c->name);
        return CLI_USAGE;
    }
    if (c->run == cli_cmd_bench && !a.gt) {
        cli_error("bench: --gt GT is required");
        return CLI_USAGE;
    }
    return c->run(&a);
}
