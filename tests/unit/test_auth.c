/*
 * test_auth: the bearer-token check in front of the Hub API, with the
 * token set a config gives it: who gets in, that nothing the caller sent
 * is echoed, and "auth none"; and the caller a watch keeps: counted per
 * token, and no longer valid once its token (or "auth none") is gone.
 */
#include <check.h>
#include <string.h>

#include "auth.h"
#include "check_main.h"
#include "hub_config.h"
#include "hub_fixture.h"

/* a takes the tokens of a config with alice's token line. */
static void auth_of_alice(struct auth *a)
{
	struct hub_config cfg;
	struct tsr_err err;
	char path[64];

	ck_assert_int_eq(
		hfx_config_load("key k\nspoke a h:1 @K\n"
				"plaintext yes\nspoke-plaintext yes\n" HFX_TOKEN_LINE("alice"),
				&cfg, &err, path, sizeof(path)),
		0);
	auth_set(a, &cfg);
	hub_config_free(&cfg);
}

START_TEST(test_auth_check)
{
	struct hub_config cfg;
	struct auth a;
	struct tsr_err err;
	char path[64];

	auth_of_alice(&a);
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

START_TEST(test_auth_caller)
{
	struct auth a, gone = { .none = false, .n = 0 }, open = { .none = true };
	struct auth_caller c, same, anon;
	struct tsr_err err;

	auth_of_alice(&a);
	ck_assert_int_eq(auth_caller_of(&a, "Bearer 0123456789abcdef", &c, &err), 0);
	ck_assert(!c.anonymous);
	ck_assert_int_eq(auth_caller_of(&a, "bearer 0123456789abcdef", &same, &err), 0);
	ck_assert(auth_same_token(&c, &same));
	ck_assert_int_ne(auth_caller_of(&a, "Bearer 0123456789abcdeF", &same, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAUTHENTICATED);
	ck_assert_int_ne(auth_caller_of(&a, NULL, &same, &err), 0);
	ck_assert(auth_still_valid(&a, &c));
	/* Its token removed: no longer; the API opened: again. */
	ck_assert(!auth_still_valid(&gone, &c));
	ck_assert(auth_still_valid(&open, &c));
	/* Under "auth none" a caller is anonymous, whatever it sends. */
	ck_assert_int_eq(auth_caller_of(&open, "Bearer 0123456789abcdef", &anon, &err), 0);
	ck_assert(anon.anonymous);
	ck_assert(!auth_same_token(&anon, &anon));
	ck_assert(!auth_same_token(&c, &anon));
	ck_assert(auth_still_valid(&open, &anon));
	/* An anonymous caller of an API that now wants tokens is not let in. */
	ck_assert(!auth_still_valid(&a, &anon));
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "auth", CHECK_TESTS(test_auth_check, test_auth_caller));
	return 0;
}
