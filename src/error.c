/*
 * error.c — status codes and the per-thread error detail.
 *
 * sw_strerror() is generated from the same X-macro table as the enum in
 * smallworld.h (libuv's UV_ERRNO_MAP habit), so a new code cannot be added
 * without its text.  A status code alone cannot say *which* argument was
 * wrong, so each failing call also formats a detail line into a thread-local
 * buffer (sw_last_error()).  Thread-local rather than per-index because most
 * failures happen before there is an index (sw_create, sw_load) or on a
 * const index shared by many reader threads.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[512];

const char *sw_version(void) { return SW_VERSION_STRING; }

const char *sw_strerror(sw_status status) {
    switch (status) {
#define SW__STATUS_CASE(name, value, text) \
    case name:                             \
        return text;
        SW_STATUS_MAP(SW__STATUS_CASE)
#undef SW__STATUS_CASE
    }
    return "unknown status code";
}

const char *sw_last_error(void) { return last_error; }

sw_status sw__fail(sw_status status, const char *fmt, ...) {
    int n = snprintf(last_error, sizeof last_error, "%s", sw_strerror(status));
    if (fmt && n > 0 && (size_t)n + 2 < sizeof last_error) {
        va_list ap;
        va_start(ap, fmt);
        last_error[n] = ':';
        last_error[n + 1] = ' ';
        vsnprintf(last_error + n + 2, sizeof last_error - (size_t)n - 2, fmt, ap);
        va_end(ap);
    }
    return status;
}
