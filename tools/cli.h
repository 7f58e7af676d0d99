/*
 * cli.h — what the files of the `smallworld` program share: exit codes,
 * the one way to report an error, vector files, progress.
 *
 * The program includes only the public header; nothing here reaches into
 * the library's private structures.
 */
#ifndef SW_TOOL_CLI_H
#define SW_TOOL_CLI_H

#include <smallworld.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ==== Exit codes (documented in --help and docs/smallworld.1) ==== */

enum {
    CLI_OK = 0,    /* success */
    CLI_FAIL = 1,  /* a check failed (verify) or an operation failed at run time */
    CLI_USAGE = 2, /* bad command line: unknown option, bad value, missing argument */
    CLI_DATA = 3,  /* a data file (vectors, labels, ground truth) is missing or bad */
    CLI_INDEX = 4  /* the index file is missing, unreadable, corrupt or of an
                      unsupported version */
};

/* "smallworld: " + the message + newline, on stderr. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 1, 2)))
#endif
void cli_error(const char *fmt, ...);

/* Exit code for a library status: CLI_FAIL for out of memory and run-time
 * failures, CLI_DATA for a bad vector, CLI_INDEX for a bad index file. */
int cli_exit_for(sw_status st);

double cli_now(void);          /* monotonic seconds */
size_t cli_online_cpus(void);  /* at least 1 */

/* ==== Vector files (formats.c) ==== */

typedef enum cli_format {
    FMT_AUTO = 0,
    FMT_FVECS,
    FMT_BVECS,
    FMT_IVECS,
    FMT_FBIN,
    FMT_U8BIN,
    FMT_I8BIN,
    FMT_IBIN,
    FMT_NPY,
    FMT_CSV,
    FMT_TSV
} cli_format;

/* The names --format accepts, for help text: "fvecs, bvecs, ...". */
extern const char cli_format_names[];

/* Parse a --format value; 0 on success, -1 for an unknown name. */
int cli_format_parse(const char *name, cli_format *out);

/* n rows of dim float32, row-major, owned (free with cli_matrix_free). */
typedef struct cli_matrix {
    size_t n, dim;
    float *data;
} cli_matrix;

/*
 * Read a whole file of vectors as float32.  fmt FMT_AUTO chooses by the
 * extension.  Every size is checked against the header and the file
 * length before anything is allocated; NaN and infinity are refused,
 * naming the row.  Returns CLI_OK, or an exit code after printing one line.
 */
int cli_read_vectors(const char *path, cli_format fmt, cli_matrix *out);
void cli_matrix_free(cli_matrix *m);

/* Parse one vector written on the command line ("0.5,1,2" or spaces). */
int cli_parse_vector(const char *text, cli_matrix *out);

/*
 * Ground-truth ids: .ibin (int32 n, int32 k, then n x k int32) or .ivecs.
 * *ids is n x k, owned by the caller (free()).
 */
int cli_read_ids(const char *path, cli_format fmt, size_t *n, size_t *k, int32_t **ids);

/*
 * A text file of labels, one decimal label per line (blank lines skipped).
 * When expect is not 0 the count must equal it.  *labels is owned by the
 * caller (free()).
 */
int cli_read_labels(const char *path, size_t expect, uint64_t **labels, size_t *n);

/* 1 with *dup set when some label appears twice, -1 when none does, -2
 * when out of memory. */
int cli_find_duplicate(const uint64_t *labels, size_t n, uint64_t *dup);

/*
 * Write n x d 4-byte little-endian values (int32 or float32) after an
 * (int32 n, int32 d) header: the .ibin / .fbin layout.  Written beside
 * the target and renamed over it.  Returns CLI_OK or CLI_FAIL.
 */
int cli_write_bin(const char *path, size_t n, size_t d, const void *values);
/* Do two paths name the same existing file? */
int cli_same_file(const char *a, const char *b);

/* ==== Progress (progress.c) ==== */

typedef struct cli_progress {
    const char *what;
    uint64_t total, done;
    double start, last_draw;
    int tty, quiet, last_step, drawn;
} cli_progress;

/* A bar redrawn in place on a terminal; plain lines every 10% or 10 s
 * otherwise; nothing with quiet. */
void cli_progress_begin(cli_progress *p, const char *what, uint64_t total, int quiet);
void cli_progress_update(cli_progress *p, uint64_t done);
void cli_progress_end(cli_progress *p);

/* ==== The parsed command line (smallworld.c) ==== */

typedef struct cli_args {
    const char *cmd;        /* the subcommand */
    const char *pos[4];     /* positional arguments */
    size_t npos;
    const char *out;        /* -o FILE */
    cli_format format;      /* --format */
    sw_options opt;         /* --metric, -M, --M0, --ef-construction, --ef-search, --seed,
                               --type, --keep, --pq-m */
    int metric_set;
    size_t threads;         /* -j; 0 = every CPU */
    const char *labels;     /* --labels FILE */
    const char *label_list; /* --label N,N,... */
    size_t k;               /* -k */
    int k_set;
    const char *ef;         /* --ef: one value (query) or a list (bench) */
    uint32_t rerank;        /* --rerank; 0 = the library's default */
    const char *vector;     /* --vector */
    const char *gt;         /* --gt FILE */
    const char *distances;  /* --distances FILE */
    const char *oformat;    /* -O / --output-format */
    uint64_t start;         /* --start */
    int start_set;
    int quiet, exact, tombstone, ignore_missing;
} cli_args;

/* Parse an unsigned decimal option value within [lo, hi]; CLI_USAGE with
 * a message otherwise. */
int cli_parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/* Open an index: read-only from a mapping (falling back to a load for the
 * old format versions a mapping cannot serve) or loaded for changing.
 * CLI_OK, or an exit code after printing one line. */
int cli_open_index(const char *path, int writable, sw_index **out);

const char *cli_metric_name(sw_metric m);
const char *cli_type_name(sw_type t); /* "f32", "f16", "int8", "binary", "pq" */
const char *cli_keep_name(sw_keep k); /* "memory", "disk", "none" */

/* Print s as a JSON string, quoted and escaped, on stdout. */
void cli_json_string(const char *s);

/* The subcommands beyond smallworld.c. */
int cli_cmd_info(const cli_args *a);
int cli_cmd_stats(const cli_args *a);
int cli_cmd_verify(const cli_args *a);
int cli_cmd_bench(const cli_args *a);
int cli_cmd_gt(const cli_args *a);

#endif /* SW_TOOL_CLI_H */
