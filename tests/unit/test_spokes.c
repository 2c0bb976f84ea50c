/*
 * test_spokes: the registry of configured spokes: a spoke's health from
 * its channel and its last poll, the state ListSpokes shows (draining
 * too), the reason it shows (escaped), and the registry itself, its
 * channels made (never connected) from a config.
 */
#include <check.h>
#include <grpc/grpc.h>
#include <stdio.h>
#include <string.h>

#include "check_main.h"
#include "hub_config.h"
#include "hub_fixture.h"
#include "spokes.h"

START_TEST(test_spoke_state)
{
	struct hub_spoke_conf conf;
	struct spoke sp;
	struct spokes all = { .v = &sp, .n = 1 };
	struct tsr_err why = { GRPC_STATUS_INTERNAL,
			       "reply from spoke spoke-2 does not verify against its key" };

	/* A refusal shows only while the channel is up: down is down. */
	ck_assert_int_eq(spokes_health_of(GRPC_CHANNEL_READY, false), SPOKE_CONNECTED);
	ck_assert_int_eq(spokes_health_of(GRPC_CHANNEL_READY, true), SPOKE_REFUSED);
	ck_assert_int_eq(spokes_health_of(GRPC_CHANNEL_TRANSIENT_FAILURE, true), SPOKE_UNREACHABLE);
	ck_assert_int_eq(spokes_health_of(GRPC_CHANNEL_SHUTDOWN, false), SPOKE_UNREACHABLE);
	ck_assert_int_eq(spokes_health_of(GRPC_CHANNEL_CONNECTING, true), SPOKE_CONNECTING);
	ck_assert_int_eq(spokes_health_of(GRPC_CHANNEL_IDLE, false), SPOKE_CONNECTING);
	ck_assert_str_eq(spokes_health_name(SPOKE_REFUSED), "refused");
	ck_assert_str_eq(spokes_health_name(SPOKE_CONNECTED), "connected");

	memset(&conf, 0, sizeof(conf));
	memset(&sp, 0, sizeof(sp));
	sp.conf = &conf;
	sp.health = SPOKE_CONNECTED;
	ck_assert(spokes_any_connected(&all));

	/* Draining shows only while connected, and a draining spoke still counts as up. */
	ck_assert_str_eq(spokes_state_name(&sp), "connected");
	sp.draining = true;
	ck_assert_str_eq(spokes_state_name(&sp), "draining");
	ck_assert(spokes_any_connected(&all));
	sp.health = SPOKE_UNREACHABLE;
	ck_assert_str_eq(spokes_state_name(&sp), "unreachable");
	sp.health = SPOKE_CONNECTED;
	sp.draining = false;

	/* A refusal keeps its error, named, until a poll succeeds. */
	spokes_poll_result(&sp, &why, true);
	ck_assert(sp.refused);
	sp.health = SPOKE_REFUSED;
	ck_assert_str_eq(spokes_reason(&sp),
			 "INTERNAL: reply from spoke spoke-2 does not verify against its key");
	ck_assert(!spokes_any_connected(&all));
	spokes_poll_result(&sp, NULL, false);
	ck_assert(!sp.refused);
	ck_assert_str_eq(sp.reason, "");

	/* Other failures are no refusal; their reason shows only while not connected. */
	why.code = GRPC_STATUS_DEADLINE_EXCEEDED;
	snprintf(why.msg, sizeof(why.msg), "spoke spoke-2 did not answer within 2000 ms");
	spokes_poll_result(&sp, &why, false);
	ck_assert(!sp.refused);
	sp.health = SPOKE_CONNECTED;
	ck_assert_str_eq(spokes_reason(&sp), "");
	sp.health = SPOKE_UNREACHABLE;
	ck_assert_str_eq(spokes_reason(&sp),
			 "DEADLINE_EXCEEDED: spoke spoke-2 did not answer within 2000 ms");

	/*
	 * ListSpokes carries the reason in a protobuf string: control bytes
	 * and ill-formed UTF-8 (here a character cut short) come escaped.
	 */
	snprintf(why.msg, sizeof(why.msg), "spoke says \x1b[2J\r\xff caf\xc3\xa9 \xe2\x82");
	spokes_poll_result(&sp, &why, false);
	ck_assert_str_eq(spokes_reason(&sp), "DEADLINE_EXCEEDED: spoke says \\x1b[2J\\x0d\\xff "
					     "caf\xc3\xa9 \\xe2\\x82");

	/* The longest message still fits, cut rather than overflowing. */
	memset(why.msg, 'x', sizeof(why.msg) - 1);
	why.msg[sizeof(why.msg) - 1] = '\0';
	why.code = GRPC_STATUS_UNAUTHENTICATED;
	spokes_poll_result(&sp, &why, true);
	ck_assert_uint_lt(strlen(sp.reason), sizeof(sp.reason));
	ck_assert_uint_eq(strlen(sp.reason), strlen("UNAUTHENTICATED: ") + sizeof(why.msg) - 1);
}
END_TEST

/* One channel per configured spoke, in file order, found by id; none connects. */
START_TEST(test_spokes_registry)
{
	struct hub_config cfg;
	struct spokes *s = NULL;
	struct tsr_err err;
	char path[64];

	grpc_init();
	ck_assert_int_eq(hfx_config_load("key k\nspoke a 127.0.0.1:1 @K\n"
					 "spoke b unix:/nonexistent @K\n" HFX_PLAIN,
					 &cfg, &err, path, sizeof(path)),
			 0);
	ck_assert_msg(spokes_new(&cfg, &s, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(s->n, 2);
	for (size_t i = 0; i < s->n; i++) {
		ck_assert_uint_eq(s->v[i].index, i);
		ck_assert_ptr_eq(s->v[i].conf, &cfg.spokes[i]);
		ck_assert_int_eq(s->v[i].health, SPOKE_CONNECTING);
		ck_assert_ptr_nonnull(s->v[i].ch);
	}
	ck_assert_ptr_eq(spokes_find(s, "b"), &s->v[1]);
	ck_assert_ptr_eq(spokes_find(s, "a"), &s->v[0]);
	ck_assert_ptr_null(spokes_find(s, "c"));
	/* Idle channels asked nothing stay as they were. */
	spokes_poll(s, false);
	ck_assert_int_eq(s->v[0].health, SPOKE_CONNECTING);
	ck_assert_str_eq(spokes_health_name(s->v[0].health), "connecting");
	ck_assert(!spokes_any_connected(s));
	s->v[1].health = SPOKE_UNREACHABLE;
	ck_assert_str_eq(spokes_health_name(s->v[1].health), "unreachable");
	ck_assert(!spokes_any_connected(s));
	spokes_free(s);
	hub_config_free(&cfg);

	/* TLS to spokes whose CA cannot be read: no registry at all. */
	ck_assert_int_eq(hfx_config_load("key k\nspoke a 127.0.0.1:1 @K\nplaintext yes\nauth none\n"
					 "spoke-tls-ca /nonexistent/ca.pem\n",
					 &cfg, &err, path, sizeof(path)),
			 0);
	ck_assert_int_ne(spokes_new(&cfg, &s, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/ca.pem"));
	hub_config_free(&cfg);
	grpc_shutdown();
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "spokes", CHECK_TESTS(test_spoke_state, test_spokes_registry));
	return 0;
}
