/*
 * test_spoke_info: spoke.info on a hand-built spoke (spoke_fixture.h): the
 * agents the supervisor holds now, against max-agents, as a real agent
 * starts and ends; spoke.drain setting and clearing the draining flag,
 * in Valkey first, kept across a restart of the spoke; and malformed
 * requests refused.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "clock.h"
#include "ids.h"
#include "pb.h"
#include "spoke_fixture.h"
#include "spoke_info.h"
#include "tessera/v1/spoke.pb-c.h"

static struct fx fx;

static void setup(void)
{
	fx_up(&fx, "max-agents 3\nagent sh stdin /bin/sh\n");
}

static void teardown(void)
{
	fx_down(&fx);
}

static Tessera__V1__SpokeStatus *info(void)
{
	Tessera__V1__SpokeStatusRequest req = TESSERA__V1__SPOKE_STATUS_REQUEST__INIT;
	Tessera__V1__SpokeStatus *st;
	uint8_t *buf = NULL, *resp = NULL;
	size_t len = 0, rlen = 0;
	struct tsr_err err;

	ck_assert_int_eq(pb_pack(&req.base, &buf, &len, &err), 0);
	ck_assert_msg(spoke_cmd_info(&fx.sp, buf, len, &resp, &rlen, &err) == 0, "%s", err.msg);
	free(buf);
	st = tessera__v1__spoke_status__unpack(NULL, rlen, resp);
	free(resp);
	ck_assert_ptr_nonnull(st);
	return st;
}

START_TEST(test_counts)
{
	const struct agent_type *sh = agent_types_find(&fx.sp.cfg.types, "sh");
	struct supervisor_timeout limit = { 0 };
	struct supervisor_proc proc;
	char id[TSR_AGENT_ID_MAX + 1];
	Tessera__V1__SpokeStatus *st = info();
	int64_t started, deadline;
	struct tsr_err err;

	ck_assert_int_eq(st->running_agents, 0);
	ck_assert_int_eq(st->max_agents, 3);
	tessera__v1__spoke_status__free_unpacked(st, NULL);

	ck_assert_int_eq(ids_new_agent_id(FX_SPOKE, id, sizeof(id)), 0);
	ck_assert_msg(supervisor_spawn(fx.sp.sv, id, sh, "sleep 0.2", 9, &limit, &proc, &started,
				       &err) == 0,
		      "%s", err.msg);
	fx_track(&fx, proc.pid);
	ck_assert_int_eq(supervisor_contain(fx.sp.sv, id, &err), 0);
	ck_assert_int_eq(supervisor_release(fx.sp.sv, id, &err), 0);
	st = info();
	ck_assert_int_eq(st->running_agents, 1);
	tessera__v1__spoke_status__free_unpacked(st, NULL);
	/* Once it has ended and been reported, it counts no more. */
	fx_wait_queued(&fx, id);
	deadline = clock_mono_ms() + FX_WAIT_MS;
	while (supervisor_count(fx.sp.sv) != 0) {
		ck_assert(clock_mono_ms() < deadline);
		usleep(10000);
	}
	st = info();
	ck_assert_int_eq(st->running_agents, 0);
	tessera__v1__spoke_status__free_unpacked(st, NULL);
}
END_TEST

/* SPOKE_DRAIN with draining set as asked; its SpokeStatus, or -1 with err. */
static int drain(bool draining, Tessera__V1__SpokeStatus **out, struct tsr_err *err)
{
	Tessera__V1__SpokeDrainRequest req = TESSERA__V1__SPOKE_DRAIN_REQUEST__INIT;
	uint8_t *buf = NULL, *resp = NULL;
	size_t len = 0, rlen = 0;
	int rc;

	req.draining = draining;
	ck_assert_int_eq(pb_pack(&req.base, &buf, &len, err), 0);
	rc = spoke_cmd_drain(&fx.sp, buf, len, &resp, &rlen, err);
	free(buf);
	if (rc != 0) {
		ck_assert_ptr_null(resp);
		return rc;
	}
	*out = tessera__v1__spoke_status__unpack(NULL, rlen, resp);
	free(resp);
	ck_assert_ptr_nonnull(*out);
	return 0;
}

static long long draining_key(void)
{
	redisReply *r = fx_raw(&fx, "EXISTS tessera:{%s}:draining", FX_SPOKE);
	long long n = r->integer;

	freeReplyObject(r);
	return n;
}

START_TEST(test_drain)
{
	Tessera__V1__SpokeStatus *st = info();
	struct tsr_err err;

	ck_assert(!st->draining);
	tessera__v1__spoke_status__free_unpacked(st, NULL);
	for (int i = 0; i < 2; i++) {
		ck_assert_msg(drain(true, &st, &err) == 0, "%s", err.msg);
		ck_assert(st->draining);
		ck_assert_int_eq(st->max_agents, 3);
		tessera__v1__spoke_status__free_unpacked(st, NULL);
		ck_assert(fx.sp.draining);
		ck_assert_int_eq(draining_key(), 1);
	}
	st = info();
	ck_assert(st->draining);
	tessera__v1__spoke_status__free_unpacked(st, NULL);

	/* A restarted spoke is still draining: Valkey has the flag. */
	fx_spoke_stop(&fx);
	fx_spoke_start(&fx);
	ck_assert(fx.sp.draining);

	ck_assert_msg(drain(false, &st, &err) == 0, "%s", err.msg);
	ck_assert(!st->draining);
	tessera__v1__spoke_status__free_unpacked(st, NULL);
	ck_assert(!fx.sp.draining);
	ck_assert_int_eq(draining_key(), 0);
	fx_spoke_stop(&fx);
	fx_spoke_start(&fx);
	ck_assert(!fx.sp.draining);

	/* Valkey away: refused, and the flag stays what Valkey last had. */
	fx_valkey_stop(&fx.valkey);
	ck_assert_int_eq(drain(true, &st, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert(!fx.sp.draining);
}
END_TEST

START_TEST(test_malformed)
{
	static const uint8_t garbage[] = { 0x0a, 0xff };
	uint8_t *resp = NULL;
	size_t rlen = 0;
	struct tsr_err err;

	ck_assert_int_eq(spoke_cmd_info(&fx.sp, garbage, sizeof(garbage), &resp, &rlen, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_ptr_null(resp);
	ck_assert_int_eq(spoke_cmd_drain(&fx.sp, garbage, sizeof(garbage), &resp, &rlen, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_ptr_null(resp);
	ck_assert(!fx.sp.draining);
}
END_TEST

int test_suite(SRunner *sr)
{
	int rc = fx_check_env();
	TCase *tc;

	if (rc != 0)
		return rc;
	tc = check_suite(sr, "spoke_info", CHECK_TESTS(test_counts, test_drain, test_malformed));
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	return 0;
}
