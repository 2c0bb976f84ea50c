/* check_main: runs the suite that test_suite() gives and reports it. */
#include "check_main.h"

#include <stdlib.h>

int main(void)
{
	SRunner *sr = srunner_create(NULL);
	int rc = test_suite(sr);

	if (rc == 0) {
		srunner_run_all(sr, CK_NORMAL);
		rc = srunner_ntests_failed(sr) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	}
	srunner_free(sr);
	return rc;
}
