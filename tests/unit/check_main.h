/*
 * check_main: the one main() of every unit test program (check_main.c).
 * A program defines test_suite(), which adds its suite to the runner along
 * with any runner setting its tests need (libsodium is ready by then);
 * main runs it, prints Check's CK_NORMAL summary and exits 0 only if every
 * test passed.
 */
#ifndef TSR_CHECK_MAIN_H
#define TSR_CHECK_MAIN_H

#include <check.h>
#include <stddef.h>

/*
 * Adds this program's suite to sr. 0 to run it, else the status to exit
 * with and run nothing: 77 (meson's "skipped") when what the tests need
 * is missing, 1 when getting ready failed.
 */
int test_suite(SRunner *sr);

/*
 * Adds to sr a suite of one test case, both named name, running the n
 * tests; returns the case, for fixtures and timeouts. Pass the tests as
 * CHECK_TESTS(test_a, test_b, ...).
 */
TCase *check_suite(SRunner *sr, const char *name, const TTest *const *tests, size_t n);
#define CHECK_TESTS(...)                       \
	(const TTest *const[]){ __VA_ARGS__ }, \
		sizeof((const TTest *const[]){ __VA_ARGS__ }) / sizeof(const TTest *)

#endif
