/*
 * test_hub_call: how a user call's spoke and agent ids resolve to a
 * configured spoke, on a hub built by hand: malformed ids are
 * INVALID_ARGUMENT, unknown spokes NOT_FOUND. (Deadlines and the ending
 * of calls need a live call: the integration tests cover them.)
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "check_main.h"
#include "hub.h"
#include "hub_config.h"
#include "spokes.h"

#define HEX "0123456789abcdef01234567"

static struct hub_spoke_conf conf[2];
static struct spoke v[2];
static struct spokes all;
static struct hub h;

/* Spokes "s1" and "s-2". */
static void setup(void)
{
	memset(conf, 0, sizeof(conf));
	memset(v, 0, sizeof(v));
	snprintf(conf[0].id, sizeof(conf[0].id), "s1");
	snprintf(conf[1].id, sizeof(conf[1].id), "s-2");
	for (size_t i = 0; i < 2; i++) {
		v[i].index = i;
		v[i].conf = &conf[i];
	}
	all = (struct spokes){ .v = v, .n = 2 };
	h = (struct hub){ .spokes = &all };
}

START_TEST(test_spoke_arg)
{
	char long_id[TSR_NAME_MAX + 2];
	struct spoke *sp = &v[0];
	struct tsr_err err;

	/* "" names no spoke, which is no error. */
	ck_assert_int_eq(hub_spoke_arg(&h, "", &sp, &err), 0);
	ck_assert_ptr_null(sp);
	ck_assert_int_eq(hub_spoke_arg(&h, "s-2", &sp, &err), 0);
	ck_assert_ptr_eq(sp, &v[1]);
	ck_assert_int_ne(hub_spoke_arg(&h, "s 1", &sp, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	ck_assert_int_ne(hub_spoke_arg(&h, long_id, &sp, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_ne(hub_spoke_arg(&h, "s3", &sp, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(err.msg, "s3"));
}
END_TEST

START_TEST(test_agent_spoke)
{
	static const char *const malformed[] = {
		"", "s1", "s1.", "s1." HEX "8", "s1.0123456789ABCDEF01234567", "." HEX, "s 1." HEX,
	};
	struct spoke *sp = NULL;
	struct tsr_err err;

	ck_assert_int_eq(hub_agent_spoke(&h, "s1." HEX, &sp, &err), 0);
	ck_assert_ptr_eq(sp, &v[0]);
	ck_assert_int_eq(hub_agent_spoke(&h, "s-2." HEX, &sp, &err), 0);
	ck_assert_ptr_eq(sp, &v[1]);
	ck_assert_int_ne(hub_agent_spoke(&h, "s3." HEX, &sp, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(err.msg, "no spoke s3"));
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		ck_assert_msg(hub_agent_spoke(&h, malformed[i], &sp, &err) != 0, "accepted \"%s\"",
			      malformed[i]);
		ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	}
}
END_TEST

int test_suite(SRunner *sr)
{
	TCase *tc;

	tc = check_suite(sr, "hub_call", CHECK_TESTS(test_spoke_arg, test_agent_spoke));
	tcase_add_checked_fixture(tc, setup, NULL);
	return 0;
}
