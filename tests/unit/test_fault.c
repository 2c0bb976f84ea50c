/*
 * test_fault: the crash points of TESSERA_SPOKE_CRASH_AT. Unset, empty or
 * naming another point, a point does nothing; the point named kills the
 * process with SIGKILL, which Check sees in the test's forked child.
 */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "fault.h"

#define VAR "TESSERA_SPOKE_CRASH_AT"

START_TEST(test_unset)
{
	ck_assert_int_eq(unsetenv(VAR), 0);
	fault_init();
	fault_point("spawn-after-create");
	fault_point("");
}
END_TEST

START_TEST(test_empty)
{
	ck_assert_int_eq(setenv(VAR, "", 1), 0);
	fault_init();
	fault_point("spawn-after-create");
	fault_point("");
}
END_TEST

START_TEST(test_other_point)
{
	ck_assert_int_eq(setenv(VAR, "spawn-after-start", 1), 0);
	fault_init();
	fault_point("spawn-after-create");
	fault_point("spawn-after-start-2");
	fault_point("spawn-after");
}
END_TEST

/* Registered to end by SIGKILL: returning, or any other end, fails it. */
START_TEST(test_point_kills)
{
	ck_assert_int_eq(setenv(VAR, "spawn-after-start", 1), 0);
	fault_init();
	fault_point("spawn-before-create");
	fault_point("spawn-after-start");
}
END_TEST

/* A name beyond the bound is cut to its first 64 bytes, which is then the point. */
START_TEST(test_long_name_cut)
{
	char name[100];

	memset(name, 'p', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	ck_assert_int_eq(setenv(VAR, name, 1), 0);
	fault_init();
	fault_point(name);
	name[64] = '\0';
	fault_point(name);
}
END_TEST

int test_suite(SRunner *sr)
{
	TCase *tc;

	tc = check_suite(sr, "fault", CHECK_TESTS(test_unset, test_empty, test_other_point));
	tcase_add_test_raise_signal(tc, test_point_kills, SIGKILL);
	tcase_add_test_raise_signal(tc, test_long_name_cut, SIGKILL);
	/* Each point fires in a child of its own: this process must survive it. */
	srunner_set_fork_status(sr, CK_FORK);
	return 0;
}
