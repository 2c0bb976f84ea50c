/*
 * test_auth: the bearer-token check in front of the Hub API, with the
 * token set a config gives it: who gets in, that nothing the caller sent
 * is echoed, and "auth none".
 */
#include <check.h>
#include <string.h>

#include "auth.h"
#include "check_main.h"
#include "hub_config.h"
#include "hub_fixture.h"

START_TEST(test_auth_check)
{
	struct hub_config cfg;
	struct auth a;
	struct tsr_err err;
	char path[64];

	ck_assert_int_eq(
		hfx_config_load("key k\nspoke a h:1 @K\n"
				"plaintext yes\nspoke-plaintext yes\n" HFX_TOKEN_LINE("alice"),
				&cfg, &err, path, sizeof(path)),
		0);
	auth_set(&a, &cfg);
	hub_config_free(&cfg);
	ck_assert_int_eq(auth_check(&a, "Bearer 0123456789abcdef", &err), 0);
	ck_assert_int_eq(auth_check(&a, "bearer 0123456789abcdef", &err), 0);
	ck_assert_int_ne(auth_check(&a, NULL, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAUTHENTICATED);
	ck_assert_int_ne(auth_check(&a, "Bearer 0123456789abcdeF", &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAUTHENTICATED);
	/* The message never repeats what the caller sent. */
	ck_assert_ptr_null(strstr(err.msg, "0123456789"));
	ck_assert_int_ne(auth_check(&a, "Basic 0123456789abcdef", &err), 0);
	ck_assert_int_ne(auth_check(&a, "0123456789abcdef", &err), 0);
	ck_assert_int_ne(auth_check(&a, "Bearer ", &err), 0);

	ck_assert_int_eq(hfx_config_load("key k\nspoke a h:1 @K\n" HFX_PLAIN, &cfg, &err, path,
					 sizeof(path)),
			 0);
	auth_set(&a, &cfg);
	hub_config_free(&cfg);
	ck_assert_int_eq(auth_check(&a, NULL, &err), 0);
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "auth", CHECK_TESTS(test_auth_check));
	return 0;
}
