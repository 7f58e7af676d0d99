/*
 * test_main.c — the runner: registry, reporting, and main().
 *
 * Usage: sw_tests [SUBSTRING | --list]
 *
 * Runs every registered test, or only those whose name contains SUBSTRING,
 * and ends with the line "N passed, N failed, N skipped"; the exit status is
 * non-zero if any test failed, or if a filter matched nothing (a mistyped
 * filter must not pass for a green run).
 *
 * The name of a test is printed before it runs, not after, so that when a
 * test crashes (the sanitizer builds turn most bugs into crashes) the last
 * line of the log names the culprit.  Messages from inside the test go on
 * lines of their own below the name, and the verdict follows them.
 *
 * Failure messages are capped per test: a check inside a loop over 20,000
 * vectors would otherwise bury the one useful line under thousands of copies.
 *
 * Tests run one after another in one process.  Forking per test would
 * survive crashes, but it hides leaks from LeakSanitizer's exit-time report
 * and costs portability; a crash is a failure anyway.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sw_test.h"

#define MAX_TESTS 512
#define MAX_MESSAGES_PER_TEST 25

typedef struct test_entry {
    const char *name;
    sw_test_fn fn;
    const char *file;
    int line;
} test_entry;

static test_entry registry[MAX_TESTS];
static int n_registered;
static int registry_overflow;

/* State of the running test. */
static int cur_failed;
static int cur_skipped;
static int cur_messages;
static int line_open; /* the "name ..." line still waits for its verdict */

void sw_test_register(const char *name, sw_test_fn fn, const char *file, int line)
{
    if (n_registered == MAX_TESTS) {
        registry_overflow = 1;
        return;
    }
    registry[n_registered].name = name;
    registry[n_registered].fn = fn;
    registry[n_registered].file = file;
    registry[n_registered].line = line;
    n_registered++;
}

static void close_line(void)
{
    if (line_open) {
        putchar('\n');
        line_open = 0;
    }
}

void sw_test_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    cur_failed = 1;
    if (++cur_messages > MAX_MESSAGES_PER_TEST)
        return;
    close_line();
    printf("    %s:%d: ", file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

void sw_test_skip_at(const char *file, int line, const char *reason)
{
    cur_skipped = 1;
    close_line();
    printf("    %s:%d: skipped: %s\n", file, line, reason);
    fflush(stdout);
}

void sw_test_note(const char *fmt, ...)
{
    va_list ap;

    close_line();
    printf("    # ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

int sw_test_failed(void)
{
    return cur_failed;
}

const char *sw_test_status_name(int status)
{
    switch (status) {
#define SW_TEST_NAME_CASE(name, value, text) \
    case value:                              \
        return #name;
        SW_STATUS_MAP(SW_TEST_NAME_CASE)
#undef SW_TEST_NAME_CASE
    default:
        return "?";
    }
}

static int by_file_and_line(const void *pa, const void *pb)
{
    const test_entry *a = pa, *b = pb;
    int c = strcmp(a->file, b->file);

    if (c != 0)
        return c;
    return (a->line > b->line) - (a->line < b->line);
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0, skipped = 0, matched = 0;

    if (registry_overflow) {
        fprintf(stderr, "more than %d tests: raise MAX_TESTS in %s\n", MAX_TESTS, __FILE__);
        return 2;
    }
    qsort(registry, (size_t)n_registered, sizeof registry[0], by_file_and_line);

    if (filter != NULL && strcmp(filter, "--list") == 0) {
        for (int i = 0; i < n_registered; i++)
            printf("%s\n", registry[i].name);
        return 0;
    }

    for (int i = 0; i < n_registered; i++) {
        const test_entry *t = &registry[i];
        double t0;
        const char *verdict;

        if (filter != NULL && strstr(t->name, filter) == NULL)
            continue;
        matched++;
        cur_failed = cur_skipped = cur_messages = 0;
        printf("%s ... ", t->name);
        fflush(stdout);
        line_open = 1;

        t0 = now_seconds();
        t->fn();

        if (cur_messages > MAX_MESSAGES_PER_TEST) {
            close_line();
            printf("    (%d more failure messages not shown)\n",
                   cur_messages - MAX_MESSAGES_PER_TEST);
        }
        if (cur_failed) {
            verdict = "FAIL";
            failed++;
        } else if (cur_skipped) {
            verdict = "skip";
            skipped++;
        } else {
            verdict = "ok";
            passed++;
        }
        if (line_open)
            printf("%s (%.2f s)\n", verdict, now_seconds() - t0);
        else
            printf("  -> %s: %s (%.2f s)\n", t->name, verdict, now_seconds() - t0);
        line_open = 0;
        fflush(stdout);
    }

    if (filter != NULL && matched == 0)
        fprintf(stderr, "no test name contains \"%s\" (try --list)\n", filter);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return (failed > 0 || (filter != NULL && matched == 0)) ? 1 : 0;
}
