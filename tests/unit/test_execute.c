/*
 * test_execute: tessera.v1.Spoke/Execute over real gRPC on loopback, on a
 * hand-built spoke (spoke_fixture.h). Commands signed by the trusted hub
 * reach their handler and come back as replies signed by the spoke, a
 * failing command included (its status inside the signed reply); an
 * unknown command type is UNIMPLEMENTED there. SPOKE_DRAIN keeps its nonce
 * in Valkey, and every reply says whether the spoke drains. Refused before any handler,
 * as gRPC errors: bytes that are no command, an untrusted signer, another
 * spoke's command, a replayed nonce, and any command while Valkey is down;
 * a spawn's and a kill's replays, whose nonces their handlers record. A
 * burst of spawns, then of kills, a replay among each, each answered alone.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "envelope.h"
#include "execute.h"
#include "ids.h"
#include "spoke_fixture.h"
#include "tessera/v1/spoke.pb-c.h"

#define REPLY_MAX 4096

static struct fx fx;
static struct fx_server server;

struct unary {
	bool done;
	grpc_status_code code;
	char details[256];
	uint8_t resp[REPLY_MAX];
	size_t len;
};

static void setup(void)
{
	fx_up(&fx, "max-agents 5\nagent cat stdin /bin/cat\nagent sleep stdin /bin/sleep 30\n");
	fx_serve(&server, TSR_METHOD_EXECUTE, execute_handle, &fx.sp);
}

static void teardown(void)
{
	fx_serve_stop(&server);
	fx_down(&fx);
}

static void unary_done(void *arg, grpc_status_code code, const char *details, const uint8_t *resp,
		       size_t len)
{
	struct unary *u = arg;

	u->code = code;
	snprintf(u->details, sizeof(u->details), "%s", details != NULL ? details : "");
	ck_assert_uint_le(len, sizeof(u->resp));
	if (resp != NULL)
		memcpy(u->resp, resp, len);
	u->len = len;
	u->done = true;
}

static bool unary_ended(void *arg)
{
	return ((struct unary *)arg)->done;
}

static void call(const uint8_t *req, size_t len, struct unary *u)
{
	struct rpc_client_opts opts = { .timeout_ms = FX_WAIT_MS };
	struct tsr_err err;

	memset(u, 0, sizeof(*u));
	ck_assert_int_eq(rpc_client_unary(server.cli, server.channel, TSR_METHOD_EXECUTE, req, len,
					  &opts, unary_done, u, NULL, &err),
			 0);
	fx_client_run(&server, unary_ended, u);
}

/* A command signed by key; the gRPC outcome in u. */
static void execute(const struct sign_key *key, Tessera__V1__CommandType type,
		    const ProtobufCMessage *payload, const char *audience, struct unary *u)
{
	uint8_t *cmd = NULL;
	size_t len = 0;

	fx_command(key, type, payload, audience, &cmd, &len);
	call(cmd, len, u);
	free(cmd);
}

/* The spoke's signed reply in u, opened: free with tessera__v1__reply__free_unpacked. */
static Tessera__V1__Reply *reply(const struct unary *u)
{
	Tessera__V1__Reply *r = NULL;
	struct tsr_err err;

	ck_assert_msg(u->code == GRPC_STATUS_OK, "%d %s", u->code, u->details);
	ck_assert_msg(envelope_reply_open(u->resp, u->len, &fx.sp.key.pub, FX_SPOKE, "cmd-test", &r,
					  &err) == 0,
		      "%s", err.msg);
	return r;
}

START_TEST(test_routed)
{
	Tessera__V1__SpokeStatusRequest info = TESSERA__V1__SPOKE_STATUS_REQUEST__INIT;
	Tessera__V1__SpawnCommand spawn = TESSERA__V1__SPAWN_COMMAND__INIT;
	Tessera__V1__SpokeStatus *st;
	Tessera__V1__Agent *a;
	Tessera__V1__Reply *r;
	struct unary u;

	execute(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_SPOKE_INFO, &info.base, FX_SPOKE,
		&u);
	r = reply(&u);
	ck_assert_int_eq(r->status, GRPC_STATUS_OK);
	ck_assert_str_eq(r->spoke_id, FX_SPOKE);
	ck_assert_str_eq(r->command_id, "cmd-test");
	ck_assert_int_gt(r->issued_at_ms, 0);
	st = tessera__v1__spoke_status__unpack(NULL, r->payload.len, r->payload.data);
	ck_assert_ptr_nonnull(st);
	ck_assert_int_eq(st->max_agents, 5);
	tessera__v1__spoke_status__free_unpacked(st, NULL);
	tessera__v1__reply__free_unpacked(r, NULL);

	spawn.type = "cat";
	spawn.task = "via execute";
	execute(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_SPAWN, &spawn.base, FX_SPOKE,
		&u);
	r = reply(&u);
	ck_assert_int_eq(r->status, GRPC_STATUS_OK);
	a = tessera__v1__agent__unpack(NULL, r->payload.len, r->payload.data);
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(a->task, "via execute");
	fx_track(&fx, a->pid);
	tessera__v1__agent__free_unpacked(a, NULL);
	tessera__v1__reply__free_unpacked(r, NULL);
}
END_TEST

static bool all_ended(void *arg)
{
	const struct unary *u = arg;

	for (int i = 0; i < 5; i++)
		if (!u[i].done)
			return false;
	return true;
}

/* The agent of a signed OK reply in u: free with tessera__v1__agent__free_unpacked. */
static Tessera__V1__Agent *reply_agent(const struct unary *u)
{
	Tessera__V1__Reply *r = reply(u);
	Tessera__V1__Agent *a;

	ck_assert_msg(r->status == GRPC_STATUS_OK, "%s", r->message);
	a = tessera__v1__agent__unpack(NULL, r->payload.len, r->payload.data);
	ck_assert_ptr_nonnull(a);
	tessera__v1__reply__free_unpacked(r, NULL);
	return a;
}

/* Sends cmd[i % 4] as u[i], five at once, and waits for all five answers. */
static void burst(uint8_t *const cmd[4], const size_t len[4], struct unary u[5])
{
	struct rpc_client_opts opts = { .timeout_ms = FX_WAIT_MS };
	struct tsr_err err;

	memset(u, 0, 5 * sizeof(*u));
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(rpc_client_unary(server.cli, server.channel, TSR_METHOD_EXECUTE,
						  cmd[i % 4], len[i % 4], &opts, unary_done, &u[i],
						  NULL, &err),
				 0);
	fx_client_run(&server, all_ended, u);
	/* The first and its replay: one answered, one refused, in either order. */
	ck_assert_msg((u[0].code == GRPC_STATUS_OK) != (u[4].code == GRPC_STATUS_OK), "%d %d",
		      u[0].code, u[4].code);
	if (u[0].code != GRPC_STATUS_OK)
		u[0] = u[4];
	else
		ck_assert_int_eq(u[4].code, GRPC_STATUS_PERMISSION_DENIED);
}

/*
 * Spawns sent at once, as a hub relays a burst, and the same signed bytes
 * of one again: each is answered alone, with its own agent, and the replay
 * refused, whether the spoke carried them out together or not; then kills
 * of the four likewise, each answered with its agent marked.
 */
START_TEST(test_burst)
{
	Tessera__V1__SpawnCommand spawn = TESSERA__V1__SPAWN_COMMAND__INIT;
	Tessera__V1__KillCommand kill = TESSERA__V1__KILL_COMMAND__INIT;
	static struct unary u[5];
	uint8_t *cmd[4] = { NULL };
	char ids[4][TSR_AGENT_ID_MAX + 1];
	size_t len[4];

	spawn.type = "sleep";
	spawn.task = "burst";
	for (int i = 0; i < 4; i++)
		fx_command(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_SPAWN,
			   &spawn.base, FX_SPOKE, &cmd[i], &len[i]);
	burst(cmd, len, u);
	for (int i = 0; i < 4; i++) {
		Tessera__V1__Agent *a = reply_agent(&u[i]);

		ck_assert_int_eq(a->state, TESSERA__V1__AGENT_STATE__AGENT_STATE_RUNNING);
		fx_track(&fx, a->pid);
		snprintf(ids[i], sizeof(ids[i]), "%s", a->id);
		for (int j = 0; j < i; j++)
			ck_assert_str_ne(ids[i], ids[j]);
		tessera__v1__agent__free_unpacked(a, NULL);
		free(cmd[i]);
	}
	for (int i = 0; i < 4; i++) {
		kill.agent_id = ids[i];
		fx_command(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_KILL, &kill.base,
			   FX_SPOKE, &cmd[i], &len[i]);
	}
	burst(cmd, len, u);
	for (int i = 0; i < 4; i++) {
		Tessera__V1__Agent *a = reply_agent(&u[i]);

		ck_assert_str_eq(a->id, ids[i]);
		ck_assert(a->kill_requested);
		tessera__v1__agent__free_unpacked(a, NULL);
		free(cmd[i]);
	}
}
END_TEST

/* A command that fails is still answered, signed, with its status and message. */
START_TEST(test_failed_command_signed)
{
	Tessera__V1__StatusCommand get = TESSERA__V1__STATUS_COMMAND__INIT;
	Tessera__V1__Reply *r;
	char id[TSR_AGENT_ID_MAX + 1];
	struct unary u;

	ck_assert_int_eq(ids_new_agent_id(FX_SPOKE, id, sizeof(id)), 0);
	get.agent_id = id;
	execute(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_STATUS, &get.base, FX_SPOKE,
		&u);
	r = reply(&u);
	ck_assert_int_eq(r->status, GRPC_STATUS_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(r->message, id));
	ck_assert_uint_eq(r->payload.len, 0);
	tessera__v1__reply__free_unpacked(r, NULL);

	/* A type this spoke does not know (a newer hub's), and one Execute does not take. */
	execute(&fx.hub, (Tessera__V1__CommandType)99, NULL, FX_SPOKE, &u);
	r = reply(&u);
	ck_assert_int_eq(r->status, GRPC_STATUS_UNIMPLEMENTED);
	ck_assert_ptr_nonnull(strstr(r->message, "99"));
	tessera__v1__reply__free_unpacked(r, NULL);
	execute(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_EVENTS_STREAM, NULL, FX_SPOKE, &u);
	r = reply(&u);
	ck_assert_int_eq(r->status, GRPC_STATUS_UNIMPLEMENTED);
	tessera__v1__reply__free_unpacked(r, NULL);
}
END_TEST

START_TEST(test_refused)
{
	static const uint8_t garbage[] = { 0x0a, 0xff };
	Tessera__V1__SpokeStatusRequest info = TESSERA__V1__SPOKE_STATUS_REQUEST__INIT;
	Tessera__V1__SpawnCommand spawn = TESSERA__V1__SPAWN_COMMAND__INIT;
	Tessera__V1__Reply *r;
	Tessera__V1__Agent *a;
	redisReply *rr;
	struct sign_key stranger;
	uint8_t *cmd = NULL;
	size_t len = 0;
	struct unary u;
	struct tsr_err err;

	spawn.type = "cat";
	spawn.task = "";
	spawn.request_id = "";
	call(garbage, sizeof(garbage), &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(sign_keygen(&stranger, &err), 0);
	execute(&stranger, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_SPOKE_INFO, &info.base, FX_SPOKE,
		&u);
	ck_assert_int_eq(u.code, GRPC_STATUS_PERMISSION_DENIED);
	sign_key_wipe(&stranger);
	execute(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_SPOKE_INFO, &info.base, "s2", &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_PERMISSION_DENIED);

	/* The same signed bytes twice: the second time is a replay. */
	fx_command(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_SPOKE_INFO, &info.base,
		   FX_SPOKE, &cmd, &len);
	call(cmd, len, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_OK);
	call(cmd, len, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_ptr_nonnull(strstr(u.details, "replayed"));
	free(cmd);

	/* A spawn records its nonce with its agent: its replay is refused the same. */
	fx_command(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_SPAWN, &spawn.base,
		   FX_SPOKE, &cmd, &len);
	call(cmd, len, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_OK);
	r = reply(&u);
	ck_assert_int_eq(r->status, GRPC_STATUS_OK);
	/* Every reply says how loaded the spoke is (its cat may have ended already). */
	ck_assert_int_eq(r->max_agents, 5);
	ck_assert_int_ge(r->running_agents, 0);
	ck_assert_int_le(r->running_agents, 1);
	a = tessera__v1__agent__unpack(NULL, r->payload.len, r->payload.data);
	ck_assert_ptr_nonnull(a);
	fx_track(&fx, a->pid);
	tessera__v1__agent__free_unpacked(a, NULL);
	tessera__v1__reply__free_unpacked(r, NULL);
	call(cmd, len, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_ptr_nonnull(strstr(u.details, "replayed"));
	rr = fx_raw(&fx, "ZCARD tessera:{%s}:agents", FX_SPOKE);
	ck_assert_int_eq(rr->integer, 1);
	freeReplyObject(rr);
	free(cmd);
}
END_TEST

/*
 * A kill records its nonce in the step that marks its agent: its replay
 * is refused as a gRPC error, nothing signed, whether the first one
 * killed the agent or found it ended; with Valkey away it is refused too.
 */
START_TEST(test_kill_replay)
{
	Tessera__V1__SpawnCommand spawn = TESSERA__V1__SPAWN_COMMAND__INIT;
	Tessera__V1__KillCommand kill = TESSERA__V1__KILL_COMMAND__INIT;
	Tessera__V1__Reply *r;
	Tessera__V1__Agent *a;
	uint8_t *cmd = NULL;
	size_t len = 0;
	struct unary u;

	spawn.type = "cat";
	spawn.task = "";
	spawn.request_id = "";
	execute(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_SPAWN, &spawn.base, FX_SPOKE,
		&u);
	r = reply(&u);
	a = tessera__v1__agent__unpack(NULL, r->payload.len, r->payload.data);
	ck_assert_ptr_nonnull(a);
	fx_track(&fx, a->pid);
	tessera__v1__reply__free_unpacked(r, NULL);
	kill.agent_id = a->id;
	fx_command(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_KILL, &kill.base,
		   FX_SPOKE, &cmd, &len);
	/* Its cat may have ended already: killed, or a signed FAILED_PRECONDITION. */
	call(cmd, len, &u);
	r = reply(&u);
	ck_assert(r->status == GRPC_STATUS_OK || r->status == GRPC_STATUS_FAILED_PRECONDITION);
	tessera__v1__reply__free_unpacked(r, NULL);
	call(cmd, len, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_ptr_nonnull(strstr(u.details, "replayed"));
	ck_assert_uint_eq(u.len, 0);
	free(cmd);
	fx_command(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_KILL, &kill.base,
		   FX_SPOKE, &cmd, &len);
	fx_valkey_stop(&fx.valkey);
	call(cmd, len, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_uint_eq(u.len, 0);
	free(cmd);
	tessera__v1__agent__free_unpacked(a, NULL);
}
END_TEST

/* Valkey's count of keys naming a nonce. */
static long long nonce_keys(void)
{
	redisReply *r = fx_raw(&fx, "KEYS tessera:{%s}:nonce:*", FX_SPOKE);
	long long n = (long long)r->elements;

	freeReplyObject(r);
	return n;
}

/*
 * A read's nonce is kept in memory, not in Valkey (no fsync): its replay
 * is refused all the same while the spoke runs; after a restart, which
 * forgets it, the same read is answered once more. A write's nonce is in
 * Valkey and outlives the restart.
 */
START_TEST(test_read_replay)
{
	Tessera__V1__StatusCommand get = TESSERA__V1__STATUS_COMMAND__INIT;
	Tessera__V1__KillCommand kill = TESSERA__V1__KILL_COMMAND__INIT;
	char id[TSR_AGENT_ID_MAX + 1];
	uint8_t *rd = NULL, *wr = NULL;
	size_t rd_len = 0, wr_len = 0;
	long long before = nonce_keys();
	struct unary u;

	ck_assert_int_eq(ids_new_agent_id(FX_SPOKE, id, sizeof(id)), 0);
	get.agent_id = id;
	kill.agent_id = id;
	fx_command(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_STATUS, &get.base,
		   FX_SPOKE, &rd, &rd_len);
	fx_command(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_KILL, &kill.base,
		   FX_SPOKE, &wr, &wr_len);
	call(rd, rd_len, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_OK); /* a signed NOT_FOUND */
	ck_assert_int_eq(nonce_keys(), before);
	call(rd, rd_len, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_ptr_nonnull(strstr(u.details, "replayed"));
	call(wr, wr_len, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_OK);
	ck_assert_int_eq(nonce_keys(), before + 1);

	fx_spoke_stop(&fx);
	fx_spoke_start(&fx);
	call(rd, rd_len, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_OK);
	call(rd, rd_len, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_PERMISSION_DENIED);
	call(wr, wr_len, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_PERMISSION_DENIED);
	free(rd);
	free(wr);
}
END_TEST

/*
 * SPOKE_DRAIN: a write, its nonce in Valkey; from then on every reply says
 * the spoke drains, a spawn's refusal (FAILED_PRECONDITION, signed) too.
 */
START_TEST(test_drain_routed)
{
	Tessera__V1__SpokeDrainRequest drain = TESSERA__V1__SPOKE_DRAIN_REQUEST__INIT;
	Tessera__V1__SpawnCommand spawn = TESSERA__V1__SPAWN_COMMAND__INIT;
	long long before = nonce_keys();
	Tessera__V1__SpokeStatus *st;
	Tessera__V1__Reply *r;
	struct unary u;

	drain.draining = true;
	execute(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_SPOKE_DRAIN, &drain.base, FX_SPOKE,
		&u);
	r = reply(&u);
	ck_assert_int_eq(r->status, GRPC_STATUS_OK);
	ck_assert(r->draining);
	st = tessera__v1__spoke_status__unpack(NULL, r->payload.len, r->payload.data);
	ck_assert_ptr_nonnull(st);
	ck_assert(st->draining);
	tessera__v1__spoke_status__free_unpacked(st, NULL);
	tessera__v1__reply__free_unpacked(r, NULL);
	ck_assert_int_eq(nonce_keys(), before + 1);

	spawn.type = "cat";
	execute(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_SPAWN, &spawn.base, FX_SPOKE,
		&u);
	r = reply(&u);
	ck_assert_int_eq(r->status, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert(r->draining);
	ck_assert_ptr_nonnull(strstr(r->message, "is draining"));
	tessera__v1__reply__free_unpacked(r, NULL);

	drain.draining = false;
	execute(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_SPOKE_DRAIN, &drain.base, FX_SPOKE,
		&u);
	r = reply(&u);
	ck_assert_int_eq(r->status, GRPC_STATUS_OK);
	ck_assert(!r->draining);
	tessera__v1__reply__free_unpacked(r, NULL);
}
END_TEST

/* No nonce can be recorded: every command is refused, none reaches a handler. */
START_TEST(test_valkey_down)
{
	Tessera__V1__SpokeStatusRequest info = TESSERA__V1__SPOKE_STATUS_REQUEST__INIT;
	struct unary u;

	fx_valkey_stop(&fx.valkey);
	execute(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_SPOKE_INFO, &info.base, FX_SPOKE,
		&u);
	ck_assert_int_eq(u.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_uint_eq(u.len, 0);
}
END_TEST

int test_suite(SRunner *sr)
{
	int rc = fx_check_env();
	TCase *tc;

	if (rc != 0)
		return rc;
	tc = check_suite(sr, "execute",
			 CHECK_TESTS(test_routed, test_burst, test_failed_command_signed,
				     test_refused, test_kill_replay, test_read_replay,
				     test_drain_routed, test_valkey_down));
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	return 0;
}
