/*
 * test_status_name: the one table of gRPC status names that the hub, the
 * CLI and the test tools print, and its answer for codes it does not know.
 */
#include <check.h>

#include "check_main.h"
#include "status_name.h"

START_TEST(test_status_name)
{
	ck_assert_str_eq(status_name(GRPC_STATUS_OK), "OK");
	ck_assert_str_eq(status_name(GRPC_STATUS_PERMISSION_DENIED), "PERMISSION_DENIED");
	ck_assert_str_eq(status_name(GRPC_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED");
	ck_assert_str_eq(status_name((grpc_status_code)17), "UNKNOWN");
	ck_assert_str_eq(status_name((grpc_status_code)-1), "UNKNOWN");
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "status_name", CHECK_TESTS(test_status_name));
	return 0;
}
