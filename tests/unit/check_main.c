/* check_main: runs the suite that test_suite() gives and reports it. */
#include "check_main.h"

#include <sodium.h>
#include <stdlib.h>

TCase *check_suite(SRunner *sr, const char *name, const TTest *const *tests, size_t n)
{
	Suite *s = suite_create(name);
	TCase *tc = tcase_create(name);

	for (size_t i = 0; i < n; i++)
		tcase_add_test(tc, tests[i]);
	suite_add_tcase(s, tc);
	srunner_add_suite(sr, s);
	return tc;
}

int main(void)
{
	SRunner *sr = srunner_create(NULL);
	int rc = sodium_init() < 0 ? EXIT_FAILURE : test_suite(sr);

	if (rc == 0) {
		srunner_run_all(sr, CK_NORMAL);
		rc = srunner_ntests_failed(sr) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	}
	srunner_free(sr);
	return rc;
}
