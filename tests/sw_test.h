/*
 * sw_test.h — the test framework of the smallworld test suite.
 *
 * Deliberately tiny: the suite must build anywhere the library builds, under
 * every sanitizer, with nothing to install, so it depends on no test library.
 * A TEST() registers itself through a constructor function (gcc and clang
 * both support __attribute__((constructor)); a hand-kept table of tests was
 * the alternative, and it is the kind of list that silently loses entries).
 * The runner sorts the registry by file and line, so the order of a run does
 * not depend on the order in which the linker happened to lay out the
 * constructors.
 *
 * CHECK macros record a failure and carry on, so one run shows every broken
 * expectation of a test, not just the first; REQUIRE macros return from the
 * test instead, for the cases where going on would only crash (no index was
 * created).  A test that returns early may leak what it allocated; it has
 * already failed, so that is the lesser evil next to a goto in every test.
 * Status checks print the status name and sw_last_error(), because "got -3"
 * sends the reader to the header while "SW_ENOMEM (out of memory: ...)" does
 * not.  Values are evaluated exactly once, so a CHECK around a call with side
 * effects is safe.
 */
#ifndef SW_TEST_H
#define SW_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smallworld.h"

typedef void (*sw_test_fn)(void);

void sw_test_register(const char *name, sw_test_fn fn, const char *file, int line);

#if defined(__GNUC__) || defined(__clang__)
#define SW_TEST_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SW_TEST_PRINTF(f, a)
#endif

/* Record a failure of the running test, with its location. */
void sw_test_fail_at(const char *file, int line, const char *fmt, ...) SW_TEST_PRINTF(3, 4);
/* Mark the running test skipped; the caller returns right after. */
void sw_test_skip_at(const char *file, int line, const char *reason);
/* Print an informational line (a measured recall, a count) under the test. */
void sw_test_note(const char *fmt, ...) SW_TEST_PRINTF(1, 2);
/* Non-zero once the running test has failed; lets a loop stop early. */
int sw_test_failed(void);
/* "SW_ENOMEM" for SW_ENOMEM; "?" for a value outside SW_STATUS_MAP. */
const char *sw_test_status_name(int status);

#define TEST(name)                                                             \
    static void sw_test_body_##name(void);                                     \
    __attribute__((constructor)) static void sw_test_reg_##name(void)          \
    {                                                                          \
        sw_test_register(#name, sw_test_body_##name, __FILE__, __LINE__);      \
    }                                                                          \
    static void sw_test_body_##name(void)

#define NOTE(...) sw_test_note(__VA_ARGS__)

#define SKIP(reason)                                                           \
    do {                                                                       \
        sw_test_skip_at(__FILE__, __LINE__, (reason));                         \
        return;                                                                \
    } while (0)

/*
 * Under ThreadSanitizer every memory access is instrumented and the
 * single-threaded quality tests (20,000-vector builds) run some forty times
 * slower while giving the race detector nothing to look at; they skip
 * there, and the thread tests remain.
 */
#if defined(__SANITIZE_THREAD__)
#define SW_TEST_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SW_TEST_UNDER_TSAN 1
#endif
#endif
#ifndef SW_TEST_UNDER_TSAN
#define SW_TEST_UNDER_TSAN 0
#endif

#define SKIP_UNDER_TSAN()                                                      \
    do {                                                                       \
        if (SW_TEST_UNDER_TSAN)                                                \
            SKIP("single-threaded and slow under ThreadSanitizer, which has "  \
                 "nothing to check here");                                     \
    } while (0)

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            sw_test_fail_at(__FILE__, __LINE__, "CHECK(%s)", #cond);           \
    } while (0)

#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            sw_test_fail_at(__FILE__, __LINE__, "REQUIRE(%s)", #cond);         \
            return;                                                            \
        }                                                                      \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                     \
    do {                                                                       \
        long long sw_t_a_ = (long long)(a), sw_t_b_ = (long long)(b);          \
        if (sw_t_a_ != sw_t_b_)                                                \
            sw_test_fail_at(__FILE__, __LINE__, "CHECK_EQ_INT(%s, %s): %lld != %lld", \
                            #a, #b, sw_t_a_, sw_t_b_);                         \
    } while (0)

#define CHECK_EQ_UINT(a, b)                                                    \
    do {                                                                       \
        unsigned long long sw_t_a_ = (unsigned long long)(a);                  \
        unsigned long long sw_t_b_ = (unsigned long long)(b);                  \
        if (sw_t_a_ != sw_t_b_)                                                \
            sw_test_fail_at(__FILE__, __LINE__, "CHECK_EQ_UINT(%s, %s): %llu != %llu", \
                            #a, #b, sw_t_a_, sw_t_b_);                         \
    } while (0)

/* |a - b| <= tol, with both values printed in full precision. */
#define CHECK_NEAR(a, b, tol)                                                  \
    do {                                                                       \
        double sw_t_a_ = (double)(a), sw_t_b_ = (double)(b);                   \
        double sw_t_d_ = sw_t_a_ > sw_t_b_ ? sw_t_a_ - sw_t_b_ : sw_t_b_ - sw_t_a_; \
        if (!(sw_t_d_ <= (double)(tol)))                                       \
            sw_test_fail_at(__FILE__, __LINE__,                                \
                            "CHECK_NEAR(%s, %s, %s): %.9g vs %.9g (diff %.3g)", \
                            #a, #b, #tol, sw_t_a_, sw_t_b_, sw_t_d_);          \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                     \
    do {                                                                       \
        const char *sw_t_a_ = (a), *sw_t_b_ = (b);                             \
        if (sw_t_a_ == NULL || sw_t_b_ == NULL || strcmp(sw_t_a_, sw_t_b_) != 0) \
            sw_test_fail_at(__FILE__, __LINE__, "CHECK_STR_EQ(%s, %s): \"%s\" != \"%s\"", \
                            #a, #b, sw_t_a_ ? sw_t_a_ : "(null)",              \
                            sw_t_b_ ? sw_t_b_ : "(null)");                     \
    } while (0)

#define SW_TEST_STATUS_FAIL_(call, got, want)                                  \
    sw_test_fail_at(__FILE__, __LINE__, "%s: got %s (%d), want %s (%d); last error: \"%s\"", \
                    #call, sw_test_status_name(got), (got),                    \
                    sw_test_status_name(want), (want), sw_last_error())

#define CHECK_STATUS(call, expected)                                           \
    do {                                                                       \
        int sw_t_got_ = (int)(call), sw_t_want_ = (int)(expected);             \
        if (sw_t_got_ != sw_t_want_)                                           \
            SW_TEST_STATUS_FAIL_(call, sw_t_got_, sw_t_want_);                 \
    } while (0)

#define REQUIRE_STATUS(call, expected)                                         \
    do {                                                                       \
        int sw_t_got_ = (int)(call), sw_t_want_ = (int)(expected);             \
        if (sw_t_got_ != sw_t_want_) {                                         \
            SW_TEST_STATUS_FAIL_(call, sw_t_got_, sw_t_want_);                 \
            return;                                                            \
        }                                                                      \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, SW_OK)
#define REQUIRE_OK(call) REQUIRE_STATUS(call, SW_OK)

#endif /* SW_TEST_H */
