/*
 * bench_util.h — the few helpers every bench program needs: fail with a
 * message and an exit code, and parse a numeric option strictly.  Static
 * inline so each program takes only what it uses; BENCH_NAME (defined
 * before including) prefixes every message.
 */
#ifndef SW_BENCH_UTIL_H
#define SW_BENCH_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define EXIT_USAGE 2
#define EXIT_RUNTIME 1

static inline void die(int code, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

static inline void die(int code, const char *fmt, ...)
{
    va_list ap;
    fputs(BENCH_NAME ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

/* Parse a whole decimal string as an unsigned value in [lo, hi]. */
static inline unsigned long parse_ulong(const char *opt, const char *s, unsigned long lo,
                                        unsigned long hi)
{
    char *end = NULL;
    unsigned long v;
    if (!s || !*s || *s == '-' || *s == '+')
        die(EXIT_USAGE, "%s expects a non-negative integer, got \"%s\"", opt, s ? s : "");
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end != '\0')
        die(EXIT_USAGE, "%s expects an integer, got \"%s\"", opt, s);
    if (v < lo || v > hi)
        die(EXIT_USAGE, "%s must be in %lu..%lu, got %lu", opt, lo, hi, v);
    return v;
}

#endif
