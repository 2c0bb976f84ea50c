/*
 * test_agent_commands: agent.spawn, agent.status, agent.kill and
 * agent.list called with packed payloads on a hand-built spoke (real
 * Valkey, real supervisor and tessera-shim: spoke_fixture.h), checking
 * the replies, what Valkey holds and the processes; and every refusal:
 * malformed payloads, bad ids and fields, the max-agents cap, a spawn
 * on a draining spoke (but for a retry of one it carried out), a spawn
 * that cannot start, Valkey down; and the nonces a spawn and a kill
 * record themselves, and the replays refused; and spawns, and kills,
 * carried out together, each with the outcome it would have had alone.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_commands.h"
#include "check_main.h"
#include "clock.h"
#include "ids.h"
#include "pb.h"
#include "spoke_fixture.h"

#define SPAWNING TESSERA__V1__AGENT_STATE__AGENT_STATE_SPAWNING
#define RUNNING TESSERA__V1__AGENT_STATE__AGENT_STATE_RUNNING
#define COMPLETED TESSERA__V1__AGENT_STATE__AGENT_STATE_COMPLETED
#define FAILED TESSERA__V1__AGENT_STATE__AGENT_STATE_FAILED
#define KILLED TESSERA__V1__AGENT_STATE__AGENT_STATE_KILLED

/* "sh" runs its task as a script; "sleeper" allows a timeout of 1 s at most. */
#define TYPES                               \
	"max-agents 2\n"                    \
	"agent cat stdin /bin/cat\n"        \
	"agent sh stdin /bin/sh\n"          \
	"agent-grace sh 3000\n"             \
	"agent sleeper env /bin/sleep 30\n" \
	"agent-timeout sleeper 0 1000\n"

/* Not a protobuf message: a length-delimited field 1 whose length is cut off. */
static const uint8_t garbage[] = { 0x0a, 0xff };

static struct fx fx;

static void setup(void)
{
	fx_up(&fx, TYPES);
}

static void teardown(void)
{
	fx_down(&fx);
}

typedef int (*cmd_fn)(struct spoke *sp, const uint8_t *payload, size_t len, uint8_t **out,
		      size_t *outlen, struct tsr_err *err);

/* The nonce a spawn records itself; NULL: none, as when execute has recorded it. */
static const struct store_nonce *spawn_nonce;

static int spawn_cmd(struct spoke *sp, const uint8_t *payload, size_t len, uint8_t **out,
		     size_t *outlen, struct tsr_err *err)
{
	return agent_cmd_spawn(sp, spawn_nonce, payload, len, out, outlen, err);
}

/* Runs fn on msg; on success the reply unpacked as an Agent into *out. */
static int call_agent(cmd_fn fn, const ProtobufCMessage *msg, Tessera__V1__Agent **out,
		      struct tsr_err *err)
{
	uint8_t *req = NULL, *resp = NULL;
	size_t len = 0, rlen = 0;
	int rc;

	ck_assert_int_eq(pb_pack(msg, &req, &len, err), 0);
	tsr_err_clear(err);
	rc = fn(&fx.sp, req, len, &resp, &rlen, err);
	free(req);
	if (rc != 0) {
		ck_assert_int_ne(err->code, GRPC_STATUS_OK);
		return rc;
	}
	*out = tessera__v1__agent__unpack(NULL, rlen, resp);
	free(resp);
	ck_assert_ptr_nonnull(*out);
	return 0;
}

struct spawn_args {
	const char *type, *task, *request_id;
	uint32_t timeout_ms;
	size_t nlabels;
	const char *const *kv; /* 2 * nlabels words */
};

static int spawn(const struct spawn_args *s, Tessera__V1__Agent **out, struct tsr_err *err)
{
	Tessera__V1__SpawnCommand req = TESSERA__V1__SPAWN_COMMAND__INIT;
	Tessera__V1__SpawnCommand__LabelsEntry e[TSR_LABELS_MAX + 2], *ep[TSR_LABELS_MAX + 2];
	int rc;

	ck_assert_uint_le(s->nlabels, TSR_LABELS_MAX + 2);
	req.type = (char *)s->type;
	req.task = (char *)(s->task != NULL ? s->task : "");
	req.request_id = (char *)(s->request_id != NULL ? s->request_id : "");
	req.timeout_ms = s->timeout_ms;
	for (size_t i = 0; i < s->nlabels; i++) {
		tessera__v1__spawn_command__labels_entry__init(&e[i]);
		e[i].key = (char *)s->kv[2 * i];
		e[i].value = (char *)s->kv[2 * i + 1];
		ep[i] = &e[i];
	}
	req.labels = ep;
	req.n_labels = s->nlabels;
	rc = call_agent(spawn_cmd, &req.base, out, err);
	if (rc == 0 && (*out)->pid > 0)
		fx_track(&fx, (*out)->pid);
	return rc;
}

/* A spawn that must succeed; the agent it reports. */
static Tessera__V1__Agent *spawn_ok(const char *type, const char *task)
{
	struct spawn_args s = { .type = type, .task = task };
	Tessera__V1__Agent *a = NULL;
	struct tsr_err err;

	ck_assert_msg(spawn(&s, &a, &err) == 0, "%s", err.msg);
	return a;
}

/* The error code of a spawn that must fail, with nothing recorded. */
static grpc_status_code spawn_refused(const struct spawn_args *s)
{
	Tessera__V1__Agent *a = NULL;
	struct tsr_err err;
	redisReply *r;

	ck_assert_int_eq(spawn(s, &a, &err), -1);
	r = fx_raw(&fx, "ZCARD tessera:{s1}:agents");
	ck_assert_int_eq(r->integer, 0);
	freeReplyObject(r);
	return err.code;
}

static int status(const char *id, Tessera__V1__Agent **out, struct tsr_err *err)
{
	Tessera__V1__StatusCommand req = TESSERA__V1__STATUS_COMMAND__INIT;

	req.agent_id = (char *)id;
	return call_agent(agent_cmd_status, &req.base, out, err);
}

static int kill_agent(const char *id, Tessera__V1__Agent **out, struct tsr_err *err)
{
	Tessera__V1__KillCommand req = TESSERA__V1__KILL_COMMAND__INIT;

	req.agent_id = (char *)id;
	return call_agent(agent_cmd_kill, &req.base, out, err);
}

/* The nonce a kill records itself (agent_cmd_kill_once). */
static const struct store_nonce *kill_nonce;

static int kill_cmd(struct spoke *sp, const uint8_t *payload, size_t len, uint8_t **out,
		    size_t *outlen, struct tsr_err *err)
{
	return agent_cmd_kill_once(sp, kill_nonce, payload, len, out, outlen, err);
}

static int kill_once(const char *id, Tessera__V1__Agent **out, struct tsr_err *err)
{
	Tessera__V1__KillCommand req = TESSERA__V1__KILL_COMMAND__INIT;

	req.agent_id = (char *)id;
	return call_agent(kill_cmd, &req.base, out, err);
}

/* A raw payload (not packed from a message) through fn: what fn returned, err its error. */
static int raw_call(cmd_fn fn, const uint8_t *payload, size_t len, struct tsr_err *err)
{
	uint8_t *resp = NULL;
	size_t rlen = 0;
	int rc;

	tsr_err_clear(err);
	rc = fn(&fx.sp, payload, len, &resp, &rlen, err);
	ck_assert_ptr_null(resp);
	return rc;
}

/* A raw payload through fn, which must refuse it: its error code. */
static grpc_status_code raw_refused(cmd_fn fn, const uint8_t *payload, size_t len)
{
	struct tsr_err err;

	ck_assert_int_eq(raw_call(fn, payload, len, &err), -1);
	return err.code;
}

/*
 * The supervisor back to n processes: a retry or a replay may start a
 * shim while Valkey answers, which ends at its gate once refused.
 */
static void assert_supervised(size_t n)
{
	int64_t deadline = clock_mono_ms() + FX_WAIT_MS;

	while (supervisor_count(fx.sp.sv) != n) {
		ck_assert_msg(clock_mono_ms() < deadline, "%zu supervised, not %zu",
			      supervisor_count(fx.sp.sv), n);
		usleep(10000);
	}
}

static void assert_group_gone(pid_t pgid)
{
	int64_t deadline = clock_mono_ms() + FX_WAIT_MS;

	while (kill(-pgid, 0) == 0) {
		ck_assert_msg(clock_mono_ms() < deadline, "group %d still there", (int)pgid);
		usleep(10000);
	}
	ck_assert_int_eq(errno, ESRCH);
}

START_TEST(test_spawn_runs_and_completes)
{
	static const char *const kv[] = { "team", "blue", "tier", "gold" };
	struct spawn_args s = {
		.type = "cat", .task = "hello from the task", .nlabels = 2, .kv = kv
	};
	Tessera__V1__Agent *a = NULL, *b;
	char buf[128], id[TSR_AGENT_ID_MAX + 1];
	struct tsr_err err;

	ck_assert_msg(spawn(&s, &a, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(a->spoke_id, FX_SPOKE);
	ck_assert(ids_valid_agent_id(a->id));
	ck_assert_str_eq(a->type, "cat");
	ck_assert_str_eq(a->task, "hello from the task");
	ck_assert_int_eq(a->state, RUNNING);
	ck_assert_int_gt(a->pid, 0);
	ck_assert_uint_gt(a->pid_start_ticks, 0);
	ck_assert_str_eq(a->boot_id, fx.sp.boot_id);
	ck_assert_uint_ne(a->pid_ns, 0);
	ck_assert_uint_eq(a->pid_ns, fx.sp.pid_ns.ino);
	ck_assert_uint_eq(a->pid_ns_init_ticks, fx.sp.pid_ns.init_ticks);
	ck_assert_int_gt(a->started_at_ms, 0);
	ck_assert_int_eq(a->timeout_at_ms, 0);
	ck_assert_uint_eq(a->n_labels, 2);
	snprintf(id, sizeof(id), "%s", a->id);
	tessera__v1__agent__free_unpacked(a, NULL);

	ck_assert_int_eq(fx_settle(&fx, id), COMPLETED);
	b = fx_get(&fx, id);
	ck_assert_int_eq(b->end_case, TESSERA__V1__AGENT__END_EXIT_CODE);
	ck_assert_int_eq(b->exit_code, 0);
	ck_assert_str_eq(b->output, "hello from the task");
	ck_assert_int_ge(b->completed_at_ms, b->started_at_ms);
	tessera__v1__agent__free_unpacked(b, NULL);
	ck_assert_str_eq(fx_field(&fx, id, "label:team", buf, sizeof(buf)), "blue");
	/* Its files went once the end was recorded. */
	fx_state_path(&fx, id, buf, sizeof(buf));
	strncat(buf, ".out", sizeof(buf) - strlen(buf) - 1);
	ck_assert_int_eq(access(buf, F_OK), -1);
}
END_TEST

START_TEST(test_spawn_idempotent)
{
	struct spawn_args s = { .type = "sh", .task = "sleep 30", .request_id = "req-1" };
	Tessera__V1__Agent *a = NULL, *b = NULL;
	struct tsr_err err;
	redisReply *r;

	ck_assert_msg(spawn(&s, &a, &err) == 0, "%s", err.msg);
	ck_assert_msg(spawn(&s, &b, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(a->id, b->id);
	ck_assert_int_eq(a->pid, b->pid);
	ck_assert_str_eq(b->request_id, "req-1");
	assert_supervised(1);
	ck_assert_int_eq(kill(a->pid, 0), 0);
	r = fx_raw(&fx, "ZCARD tessera:{s1}:agents");
	ck_assert_int_eq(r->integer, 1);
	freeReplyObject(r);
	tessera__v1__agent__free_unpacked(a, NULL);
	tessera__v1__agent__free_unpacked(b, NULL);
}
END_TEST

/* Of a spawn's nonce in Valkey: 1 if recorded, else 0. */
static long long nonce_recorded(const uint8_t nonce[16])
{
	redisReply *r;
	long long n;

	r = fx_raw(&fx,
		   "EXISTS "
		   "tessera:{s1}:nonce:%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%"
		   "02x%02x",
		   nonce[0], nonce[1], nonce[2], nonce[3], nonce[4], nonce[5], nonce[6], nonce[7],
		   nonce[8], nonce[9], nonce[10], nonce[11], nonce[12], nonce[13], nonce[14],
		   nonce[15]);
	n = r->integer;
	freeReplyObject(r);
	return n;
}

/*
 * A spawn records its nonce in the same step as its agent, or alone when
 * refused before writing it: a replay of either is refused, with nothing
 * written, as AGENT_CMD_REFUSED.
 */
START_TEST(test_spawn_nonce)
{
	uint8_t bytes[16] = { 0xa1 }, bad[16] = { 0xb2 };
	struct store_nonce nonce = { bytes, sizeof(bytes), 60000 };
	struct spawn_args s = { .type = "sh", .task = "sleep 30" }, unknown = { .type = "unknown" };
	Tessera__V1__Agent *a = NULL, *b = NULL;
	struct tsr_err err;
	redisReply *r;

	spawn_nonce = &nonce;
	ck_assert_msg(spawn(&s, &a, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(nonce_recorded(bytes), 1);
	ck_assert_int_eq(spawn(&s, &b, &err), AGENT_CMD_REFUSED);
	ck_assert_int_eq(err.code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_str_eq(err.msg, "replayed command");
	assert_supervised(1);
	r = fx_raw(&fx, "ZCARD tessera:{s1}:agents");
	ck_assert_int_eq(r->integer, 1);
	freeReplyObject(r);
	/* Refused on its fields: a signed refusal, its nonce recorded all the same. */
	nonce.bytes = bad;
	ck_assert_int_eq(spawn(&unknown, &b, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(nonce_recorded(bad), 1);
	ck_assert_int_eq(spawn(&unknown, &b, &err), AGENT_CMD_REFUSED);
	ck_assert_int_eq(err.code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_int_eq(raw_call(spawn_cmd, garbage, sizeof(garbage), &err), AGENT_CMD_REFUSED);
	/* Valkey away: refused, as execute refuses a nonce it cannot record. */
	bytes[0] = 0xc3;
	nonce.bytes = bytes;
	fx_valkey_stop(&fx.valkey);
	ck_assert_int_eq(spawn(&s, &b, &err), AGENT_CMD_REFUSED);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(spawn(&unknown, &b, &err), AGENT_CMD_REFUSED);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	spawn_nonce = NULL;
	tessera__v1__agent__free_unpacked(a, NULL);
}
END_TEST

/*
 * Spawns carried out together (agent_cmd_spawn_many) each get the outcome
 * they would have had alone: an agent, a malformed one refused with its
 * nonce recorded, a replay of the first refused as AGENT_CMD_REFUSED, one
 * past max-agents refused; the replay's shim ran nothing and is gone.
 */
START_TEST(test_spawn_many)
{
	uint8_t bytes[3][16] = { { 0xd1 }, { 0xd2 }, { 0xd3 } };
	struct store_nonce nonces[3];
	Tessera__V1__SpawnCommand req = TESSERA__V1__SPAWN_COMMAND__INIT;
	struct agent_batch_cmd cmds[4];
	Tessera__V1__Agent *a;
	uint8_t *payload = NULL;
	size_t len = 0;
	struct tsr_err err;
	redisReply *r;

	for (int i = 0; i < 3; i++)
		nonces[i] = (struct store_nonce){ bytes[i], sizeof(bytes[i]), 60000 };
	req.type = "sh";
	req.task = "sleep 30";
	req.request_id = "";
	ck_assert_int_eq(pb_pack(&req.base, &payload, &len, &err), 0);
	cmds[0] = (struct agent_batch_cmd){ .nonce = &nonces[0], .payload = payload, .len = len };
	cmds[1] = (struct agent_batch_cmd){ .nonce = &nonces[1],
					    .payload = garbage,
					    .len = sizeof(garbage) };
	cmds[2] = cmds[0];
	cmds[3] = (struct agent_batch_cmd){ .nonce = &nonces[2], .payload = payload, .len = len };
	agent_cmd_spawn_many(&fx.sp, cmds, 4);

	ck_assert_msg(cmds[0].rc == 0, "%s", cmds[0].err.msg);
	a = tessera__v1__agent__unpack(NULL, cmds[0].outlen, cmds[0].out);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(a->state, RUNNING);
	fx_track(&fx, a->pid);
	ck_assert_int_eq(cmds[1].rc, -1);
	ck_assert_int_eq(cmds[1].err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(nonce_recorded(bytes[1]), 1);
	ck_assert_int_eq(cmds[2].rc, AGENT_CMD_REFUSED);
	ck_assert_int_eq(cmds[2].err.code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_int_eq(cmds[3].rc, -1);
	ck_assert_int_eq(cmds[3].err.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
	ck_assert_int_eq(nonce_recorded(bytes[2]), 1);
	for (int i = 1; i < 4; i++)
		ck_assert_ptr_null(cmds[i].out);
	assert_supervised(1);
	r = fx_raw(&fx, "ZCARD tessera:{s1}:agents");
	ck_assert_int_eq(r->integer, 1);
	freeReplyObject(r);
	ck_assert_int_eq(kill(a->pid, 0), 0);
	tessera__v1__agent__free_unpacked(a, NULL);
	free(cmds[0].out);
	free(payload);
}
END_TEST

START_TEST(test_spawn_refusals)
{
	static const char *const dup[] = { "k", "a", "k", "b" };
	const char *many[2 * (TSR_LABELS_MAX + 1)];
	char keys[TSR_LABELS_MAX + 1][8];
	struct spawn_args s = { .type = "cat" };
	char *task;

	ck_assert_int_eq(raw_refused(spawn_cmd, garbage, sizeof(garbage)),
			 GRPC_STATUS_INVALID_ARGUMENT);
	s.type = "no such!";
	ck_assert_int_eq(spawn_refused(&s), GRPC_STATUS_INVALID_ARGUMENT);
	s.type = "";
	ck_assert_int_eq(spawn_refused(&s), GRPC_STATUS_INVALID_ARGUMENT);
	s.type = "unknown";
	ck_assert_int_eq(spawn_refused(&s), GRPC_STATUS_INVALID_ARGUMENT);
	s.type = "sleeper";
	s.timeout_ms = 1001;
	ck_assert_int_eq(spawn_refused(&s), GRPC_STATUS_INVALID_ARGUMENT);
	s.timeout_ms = 0;
	s.type = "cat";
	task = malloc(TSR_TASK_MAX + 2);
	ck_assert_ptr_nonnull(task);
	memset(task, 'x', TSR_TASK_MAX + 1);
	task[TSR_TASK_MAX + 1] = '\0';
	s.task = task;
	ck_assert_int_eq(spawn_refused(&s), GRPC_STATUS_INVALID_ARGUMENT);
	free(task);
	s.task = "t";
	s.request_id = "not a name";
	ck_assert_int_eq(spawn_refused(&s), GRPC_STATUS_INVALID_ARGUMENT);
	s.request_id = NULL;
	s.nlabels = 2;
	s.kv = dup;
	ck_assert_int_eq(spawn_refused(&s), GRPC_STATUS_INVALID_ARGUMENT);
	for (int i = 0; i <= TSR_LABELS_MAX; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		many[2 * i] = keys[i];
		many[2 * i + 1] = "v";
	}
	s.nlabels = TSR_LABELS_MAX + 1;
	s.kv = many;
	ck_assert_int_eq(spawn_refused(&s), GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_uint_eq(supervisor_count(fx.sp.sv), 0);
}
END_TEST

START_TEST(test_spawn_cap)
{
	Tessera__V1__Agent *a = spawn_ok("sh", "sleep 30"), *b = spawn_ok("sh", "sleep 30");
	struct spawn_args s = { .type = "cat", .task = "t" };
	Tessera__V1__Agent *c = NULL;
	struct tsr_err err;

	ck_assert_int_eq(spawn(&s, &c, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
	ck_assert_ptr_nonnull(strstr(err.msg, "maximum of 2"));
	ck_assert_uint_eq(supervisor_count(fx.sp.sv), 2);
	tessera__v1__agent__free_unpacked(a, NULL);
	tessera__v1__agent__free_unpacked(b, NULL);
}
END_TEST

/*
 * A draining spoke refuses a new spawn FAILED_PRECONDITION, with or
 * without a request id, recording nothing but its nonce; a retry of a
 * spawn it carried out gets that agent, its nonce recorded; its agents
 * run on.
 */
START_TEST(test_spawn_draining)
{
	uint8_t bytes[16] = { 0xd1 }, retry_bytes[16] = { 0xd2 };
	struct store_nonce nonce = { bytes, sizeof(bytes), 60000 };
	struct store_nonce retry = { retry_bytes, sizeof(retry_bytes), 60000 };
	struct spawn_args s = { .type = "sh", .task = "sleep 30", .request_id = "req-d" };
	Tessera__V1__Agent *a = NULL, *b = NULL;
	struct tsr_err err;
	redisReply *r;

	ck_assert_msg(spawn(&s, &a, &err) == 0, "%s", err.msg);
	fx.sp.draining = true;
	spawn_nonce = &retry;
	ck_assert_msg(spawn(&s, &b, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(b->id, a->id);
	tessera__v1__agent__free_unpacked(b, NULL);
	/* The retry's nonce is recorded: its replay is refused. */
	ck_assert_int_eq(nonce_recorded(retry_bytes), 1);
	ck_assert_int_eq(spawn(&s, &b, &err), AGENT_CMD_REFUSED);
	ck_assert_int_eq(err.code, GRPC_STATUS_PERMISSION_DENIED);
	s.request_id = "req-e";
	spawn_nonce = &nonce;
	ck_assert_int_eq(spawn(&s, &b, &err), -1);
	spawn_nonce = NULL;
	ck_assert_int_eq(err.code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_str_eq(err.msg, "spoke " FX_SPOKE
				  " is draining: it takes no new agents until it is undrained");
	ck_assert_int_eq(nonce_recorded(bytes), 1);
	s.request_id = NULL;
	ck_assert_int_eq(spawn(&s, &b, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_FAILED_PRECONDITION);
	r = fx_raw(&fx, "ZCARD tessera:{s1}:agents");
	ck_assert_int_eq(r->integer, 1);
	freeReplyObject(r);
	ck_assert_uint_eq(supervisor_count(fx.sp.sv), 1);
	ck_assert_int_eq(kill(a->pid, 0), 0);
	/* Valkey away: the lookup of a retry fails as any spawn does. */
	s.request_id = "req-d";
	fx_valkey_stop(&fx.valkey);
	ck_assert_int_eq(spawn(&s, &b, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	fx_valkey_respawn(&fx.valkey);

	fx.sp.draining = false;
	s.request_id = "req-e";
	ck_assert_msg(spawn(&s, &b, &err) == 0, "%s", err.msg);
	ck_assert_str_ne(b->id, a->id);
	tessera__v1__agent__free_unpacked(a, NULL);
	tessera__v1__agent__free_unpacked(b, NULL);
}
END_TEST

/* The process cannot start (no state directory for its output): FAILED, saying why. */
START_TEST(test_spawn_cannot_start)
{
	Tessera__V1__Agent *a;
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx.state_dir);
	ck_assert_int_eq(system(cmd), 0);
	a = spawn_ok("cat", "t");
	ck_assert_int_eq(a->state, FAILED);
	ck_assert_int_eq(a->pid, 0);
	ck_assert_ptr_nonnull(strstr(a->error, "No such file"));
	ck_assert_int_gt(a->completed_at_ms, 0);
	ck_assert_uint_eq(supervisor_count(fx.sp.sv), 0);
	tessera__v1__agent__free_unpacked(a, NULL);
}
END_TEST

START_TEST(test_spawn_timeout)
{
	struct spawn_args s = { .type = "sleeper", .timeout_ms = 300 };
	Tessera__V1__Agent *a = NULL, *b;
	struct tsr_err err;

	ck_assert_msg(spawn(&s, &a, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(a->timeout_at_ms, a->started_at_ms + 300);
	ck_assert_int_eq(fx_settle(&fx, a->id), FAILED);
	b = fx_get(&fx, a->id);
	ck_assert_str_eq(b->error, "timed out after 300 ms");
	assert_group_gone(a->pid);
	tessera__v1__agent__free_unpacked(a, NULL);
	tessera__v1__agent__free_unpacked(b, NULL);
}
END_TEST

START_TEST(test_grace)
{
	ck_assert_int_eq(agent_grace_ms(&fx.sp, "sh"), 3000);
	ck_assert_int_eq(agent_grace_ms(&fx.sp, "cat"), 5000);
	ck_assert_int_eq(agent_grace_ms(&fx.sp, "gone-type"), 5000);
}
END_TEST

START_TEST(test_status)
{
	Tessera__V1__Agent *a = spawn_ok("sh", "echo so far; sleep 30"), *b = NULL;
	int64_t deadline = clock_mono_ms() + FX_WAIT_MS;
	char other[TSR_AGENT_ID_MAX + 1];
	struct tsr_err err;

	/* Running: the output so far comes from the supervisor. */
	for (;;) {
		ck_assert_msg(status(a->id, &b, &err) == 0, "%s", err.msg);
		ck_assert_int_eq(b->state, RUNNING);
		if (strcmp(b->output, "so far\n") == 0)
			break;
		tessera__v1__agent__free_unpacked(b, NULL);
		ck_assert_msg(clock_mono_ms() < deadline, "no output while running");
		usleep(10000);
	}
	tessera__v1__agent__free_unpacked(b, NULL);

	ck_assert_int_eq(raw_refused(agent_cmd_status, garbage, sizeof(garbage)),
			 GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(status("not-an-id", &b, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(ids_new_agent_id("s2", other, sizeof(other)), 0);
	ck_assert_int_eq(status(other, &b, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_int_eq(ids_new_agent_id(FX_SPOKE, other, sizeof(other)), 0);
	ck_assert_int_eq(status(other, &b, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	tessera__v1__agent__free_unpacked(a, NULL);
}
END_TEST

START_TEST(test_kill)
{
	Tessera__V1__Agent *a = spawn_ok("sh", "trap '' TERM; echo up; sleep 30"), *b = NULL;
	int64_t deadline = clock_mono_ms() + FX_WAIT_MS;
	char buf[64];
	struct tsr_err err;

	/* The trap is set once it has said so. */
	for (;;) {
		ck_assert_int_eq(status(a->id, &b, &err), 0);
		if (strcmp(b->output, "up\n") == 0)
			break;
		tessera__v1__agent__free_unpacked(b, NULL);
		ck_assert_msg(clock_mono_ms() < deadline, "the agent never started");
		usleep(10000);
	}
	tessera__v1__agent__free_unpacked(b, NULL);
	ck_assert_msg(kill_agent(a->id, &b, &err) == 0, "%s", err.msg);
	ck_assert(b->kill_requested);
	ck_assert_int_eq(b->state, RUNNING);
	tessera__v1__agent__free_unpacked(b, NULL);
	ck_assert_str_eq(fx_field(&fx, a->id, "kill_requested", buf, sizeof(buf)), "1");
	/* It ignores SIGTERM: a second kill finds it still running and changes nothing. */
	ck_assert_msg(kill_agent(a->id, &b, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(b->state, RUNNING);
	tessera__v1__agent__free_unpacked(b, NULL);
	/* SIGKILL after the type's 3 s grace. */
	ck_assert_int_eq(fx_settle(&fx, a->id), KILLED);
	b = fx_get(&fx, a->id);
	ck_assert_str_eq(b->error, "killed on request");
	tessera__v1__agent__free_unpacked(b, NULL);
	assert_group_gone(a->pid);
	ck_assert_int_eq(kill_agent(a->id, &b, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_ptr_nonnull(strstr(err.msg, "already killed"));
	tessera__v1__agent__free_unpacked(a, NULL);
}
END_TEST

/* A RUNNING record with no process under this spoke is recorded KILLED at once. */
START_TEST(test_kill_unsupervised)
{
	Tessera__V1__Agent rec = TESSERA__V1__AGENT__INIT, *b = NULL;
	struct store_update upd = { .has_pid = true, .pid = 999999 };
	char id[TSR_AGENT_ID_MAX + 1], existing[TSR_AGENT_ID_MAX + 1];
	char pos[STORE_POSITION_MAX];
	struct tsr_err err;

	ck_assert_int_eq(ids_new_agent_id(FX_SPOKE, id, sizeof(id)), 0);
	rec.id = id;
	rec.spoke_id = FX_SPOKE;
	rec.type = "cat";
	rec.task = "";
	rec.request_id = "";
	ck_assert_int_eq(store_agent_create(fx.sp.store, &rec, existing, sizeof(existing), &err),
			 0);
	ck_assert_int_eq(
		store_agent_transition(fx.sp.store, id, RUNNING, &upd, pos, sizeof(pos), &err), 0);
	ck_assert_msg(kill_agent(id, &b, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(b->state, KILLED);
	ck_assert(b->kill_requested);
	ck_assert_ptr_nonnull(strstr(b->error, "no process was running"));
	tessera__v1__agent__free_unpacked(b, NULL);
}
END_TEST

START_TEST(test_kill_refusals)
{
	Tessera__V1__Agent *b = NULL;
	char other[TSR_AGENT_ID_MAX + 1];
	struct tsr_err err;

	ck_assert_int_eq(raw_refused(agent_cmd_kill, garbage, sizeof(garbage)),
			 GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(kill_agent("s1.xyz", &b, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(ids_new_agent_id("elsewhere", other, sizeof(other)), 0);
	ck_assert_int_eq(kill_agent(other, &b, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_int_eq(ids_new_agent_id(FX_SPOKE, other, sizeof(other)), 0);
	ck_assert_int_eq(kill_agent(other, &b, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
}
END_TEST

/*
 * A kill records its nonce with its kill mark, or alone when it marks
 * nothing. A replay is refused as AGENT_CMD_REFUSED before the agent is
 * claimed: the agent it names keeps its own end.
 */
START_TEST(test_kill_nonce)
{
	uint8_t bytes[16] = { 0xd4 }, gone[16] = { 0xe5 }, bad[16] = { 0xf6 };
	struct store_nonce nonce = { bytes, sizeof(bytes), 60000 };
	Tessera__V1__Agent *a = spawn_ok("sh", "sleep 30"), *c = spawn_ok("sh", "sleep 1; exit 3");
	Tessera__V1__Agent *b = NULL;
	int64_t deadline = clock_mono_ms() + FX_WAIT_MS;
	char buf[64];
	struct tsr_err err;

	kill_nonce = &nonce;
	ck_assert_msg(kill_once(a->id, &b, &err) == 0, "%s", err.msg);
	ck_assert(b->kill_requested);
	ck_assert_int_eq(b->state, RUNNING);
	tessera__v1__agent__free_unpacked(b, NULL);
	ck_assert_int_eq(nonce_recorded(bytes), 1);
	/* The same nonce again, aimed at another agent: refused, and that agent untouched. */
	ck_assert_int_eq(kill_once(c->id, &b, &err), AGENT_CMD_REFUSED);
	ck_assert_int_eq(err.code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_str_eq(err.msg, "replayed command");
	ck_assert_str_eq(fx_field(&fx, c->id, "kill_requested", buf, sizeof(buf)), "0");
	ck_assert_int_eq(fx_settle(&fx, c->id), FAILED);
	ck_assert_int_eq(fx_settle(&fx, a->id), KILLED);
	/* Refused after its nonce: a signed refusal, the nonce recorded all the same. */
	nonce.bytes = gone;
	ck_assert_int_eq(kill_once(a->id, &b, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_int_eq(nonce_recorded(gone), 1);
	ck_assert_int_eq(kill_once(a->id, &b, &err), AGENT_CMD_REFUSED);
	ck_assert_int_eq(err.code, GRPC_STATUS_PERMISSION_DENIED);
	nonce.bytes = bad;
	ck_assert_int_eq(raw_call(kill_cmd, garbage, sizeof(garbage), &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(nonce_recorded(bad), 1);
	ck_assert_int_eq(raw_call(kill_cmd, garbage, sizeof(garbage), &err), AGENT_CMD_REFUSED);
	/* Valkey away: refused, as execute refuses a nonce it cannot record; no signal sent. */
	while (supervisor_count(fx.sp.sv) > 0) {
		ck_assert_msg(clock_mono_ms() < deadline, "the ended agents are still supervised");
		usleep(10000);
	}
	tessera__v1__agent__free_unpacked(c, NULL);
	c = spawn_ok("sh", "sleep 30");
	bytes[0] = 0x17;
	nonce.bytes = bytes;
	fx_valkey_stop(&fx.valkey);
	ck_assert_int_eq(kill_once(c->id, &b, &err), AGENT_CMD_REFUSED);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(kill(c->pid, 0), 0);
	kill_nonce = NULL;
	tessera__v1__agent__free_unpacked(a, NULL);
	tessera__v1__agent__free_unpacked(c, NULL);
}
END_TEST

struct list_args {
	Tessera__V1__AgentState state;
	const char *type, *token;
	uint32_t page_size;
	size_t nlabels;
	const char *const *kv;
};

static int list(const struct list_args *l, Tessera__V1__AgentPage **out, struct tsr_err *err)
{
	Tessera__V1__ListCommand req = TESSERA__V1__LIST_COMMAND__INIT;
	Tessera__V1__ListCommand__LabelsEntry e[TSR_LABELS_MAX + 1], *ep[TSR_LABELS_MAX + 1];
	uint8_t *buf = NULL, *resp = NULL;
	size_t len = 0, rlen = 0;
	int rc;

	ck_assert_uint_le(l->nlabels, TSR_LABELS_MAX + 1);
	req.state = l->state;
	req.type = (char *)(l->type != NULL ? l->type : "");
	req.page_token = (char *)(l->token != NULL ? l->token : "");
	req.page_size = l->page_size;
	for (size_t i = 0; i < l->nlabels; i++) {
		tessera__v1__list_command__labels_entry__init(&e[i]);
		e[i].key = (char *)l->kv[2 * i];
		e[i].value = (char *)l->kv[2 * i + 1];
		ep[i] = &e[i];
	}
	req.labels = ep;
	req.n_labels = l->nlabels;
	ck_assert_int_eq(pb_pack(&req.base, &buf, &len, err), 0);
	tsr_err_clear(err);
	rc = agent_cmd_list(&fx.sp, buf, len, &resp, &rlen, err);
	free(buf);
	if (rc != 0)
		return rc;
	*out = tessera__v1__agent_page__unpack(NULL, rlen, resp);
	free(resp);
	ck_assert_ptr_nonnull(*out);
	return 0;
}

static grpc_status_code list_refused(const struct list_args *l)
{
	Tessera__V1__AgentPage *resp = NULL;
	struct tsr_err err;

	ck_assert_int_eq(list(l, &resp, &err), -1);
	return err.code;
}

/* cmds[i] as the payload of a kill of agent_id, with nonce. */
static void kill_payload(struct agent_batch_cmd *cmd, const char *agent_id,
			 const struct store_nonce *nonce, uint8_t **payload)
{
	Tessera__V1__KillCommand req = TESSERA__V1__KILL_COMMAND__INIT;
	struct tsr_err err;
	size_t len = 0;

	req.agent_id = (char *)agent_id;
	ck_assert_int_eq(pb_pack(&req.base, payload, &len, &err), 0);
	*cmd = (struct agent_batch_cmd){ .nonce = nonce, .payload = *payload, .len = len };
}

/*
 * Kills carried out together (agent_cmd_kill_many) each get the outcome
 * they would have had alone: two agents marked and ended KILLED, a second
 * kill of the first answered after the first (no second mark), a replay
 * of the first refused, a malformed one and one of an unknown agent
 * refused with their nonces recorded.
 */
START_TEST(test_kill_many)
{
	Tessera__V1__Agent *a = spawn_ok("sh", "sleep 30"), *b = spawn_ok("sh", "sleep 30"), *r;
	uint8_t bytes[5][16] = { { 0x31 }, { 0x32 }, { 0x33 }, { 0x34 }, { 0x35 } };
	struct store_nonce nonces[5];
	struct agent_batch_cmd cmds[6];
	uint8_t *payloads[6] = { NULL };
	char ghost[TSR_AGENT_ID_MAX + 1];

	for (int i = 0; i < 5; i++)
		nonces[i] = (struct store_nonce){ bytes[i], sizeof(bytes[i]), 60000 };
	ck_assert_int_eq(ids_new_agent_id(fx.sp.cfg.id, ghost, sizeof(ghost)), 0);
	kill_payload(&cmds[0], a->id, &nonces[0], &payloads[0]);
	kill_payload(&cmds[1], a->id, &nonces[1], &payloads[1]);
	kill_payload(&cmds[2], a->id, &nonces[0], &payloads[2]);
	kill_payload(&cmds[3], b->id, &nonces[2], &payloads[3]);
	cmds[4] = (struct agent_batch_cmd){ .nonce = &nonces[3],
					    .payload = garbage,
					    .len = sizeof(garbage) };
	kill_payload(&cmds[5], ghost, &nonces[4], &payloads[5]);
	agent_cmd_kill_many(&fx.sp, cmds, 6);

	for (int i = 0; i < 4; i++) {
		if (i == 2)
			continue;
		ck_assert_msg(cmds[i].rc == 0, "%d: %s", i, cmds[i].err.msg);
		r = tessera__v1__agent__unpack(NULL, cmds[i].outlen, cmds[i].out);
		ck_assert_ptr_nonnull(r);
		ck_assert(r->kill_requested);
		ck_assert_str_eq(r->id, i == 3 ? b->id : a->id);
		tessera__v1__agent__free_unpacked(r, NULL);
		free(cmds[i].out);
	}
	ck_assert_int_eq(cmds[2].rc, AGENT_CMD_REFUSED);
	ck_assert_int_eq(cmds[2].err.code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_int_eq(cmds[4].rc, -1);
	ck_assert_int_eq(cmds[4].err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(cmds[5].rc, -1);
	ck_assert_int_eq(cmds[5].err.code, GRPC_STATUS_NOT_FOUND);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(nonce_recorded(bytes[i]), 1);
	ck_assert_int_eq(fx_settle(&fx, a->id), KILLED);
	ck_assert_int_eq(fx_settle(&fx, b->id), KILLED);
	assert_group_gone(a->pid);
	assert_group_gone(b->pid);
	for (int i = 0; i < 6; i++)
		free(payloads[i]);
	tessera__v1__agent__free_unpacked(a, NULL);
	tessera__v1__agent__free_unpacked(b, NULL);
}
END_TEST

START_TEST(test_list)
{
	static const char *const blue[] = { "team", "blue" };
	struct spawn_args s = { .type = "cat", .task = "x", .nlabels = 1, .kv = blue };
	Tessera__V1__Agent *a = NULL, *b = spawn_ok("sh", "sleep 30");
	Tessera__V1__AgentPage *resp = NULL;
	struct list_args l = { 0 };
	struct tsr_err err;

	ck_assert_int_eq(spawn(&s, &a, &err), 0);
	ck_assert_int_eq(fx_settle(&fx, a->id), COMPLETED);
	ck_assert_msg(list(&l, &resp, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(resp->n_agents, 2);
	ck_assert_str_eq(resp->next_page_token, "");
	tessera__v1__agent_page__free_unpacked(resp, NULL);

	l.state = RUNNING;
	ck_assert_int_eq(list(&l, &resp, &err), 0);
	ck_assert_uint_eq(resp->n_agents, 1);
	ck_assert_str_eq(resp->agents[0]->id, b->id);
	tessera__v1__agent_page__free_unpacked(resp, NULL);

	l.state = 0;
	l.type = "cat";
	l.nlabels = 1;
	l.kv = blue;
	l.page_size = 1;
	ck_assert_int_eq(list(&l, &resp, &err), 0);
	ck_assert_uint_eq(resp->n_agents, 1);
	ck_assert_str_eq(resp->agents[0]->id, a->id);
	tessera__v1__agent_page__free_unpacked(resp, NULL);
	tessera__v1__agent__free_unpacked(a, NULL);
	tessera__v1__agent__free_unpacked(b, NULL);
}
END_TEST

START_TEST(test_list_refusals)
{
	static const char *const dup[] = { "k", "a", "k", "b" };
	const char *many[2 * (TSR_LABELS_MAX + 1)];
	char keys[TSR_LABELS_MAX + 1][8], token[300];
	struct list_args l = { 0 };

	ck_assert_int_eq(raw_refused(agent_cmd_list, garbage, sizeof(garbage)),
			 GRPC_STATUS_INVALID_ARGUMENT);
	l.state = 42;
	ck_assert_int_eq(list_refused(&l), GRPC_STATUS_INVALID_ARGUMENT);
	l.state = 0;
	l.type = "bad type";
	ck_assert_int_eq(list_refused(&l), GRPC_STATUS_INVALID_ARGUMENT);
	l.type = NULL;
	l.page_size = TSR_PAGE_SIZE_MAX + 1;
	ck_assert_int_eq(list_refused(&l), GRPC_STATUS_INVALID_ARGUMENT);
	l.page_size = 0;
	memset(token, 'a', sizeof(token) - 1);
	token[sizeof(token) - 1] = '\0';
	l.token = token;
	ck_assert_int_eq(list_refused(&l), GRPC_STATUS_INVALID_ARGUMENT);
	l.token = "not-a-token";
	ck_assert_int_eq(list_refused(&l), GRPC_STATUS_INVALID_ARGUMENT);
	l.token = NULL;
	l.nlabels = 2;
	l.kv = dup;
	ck_assert_int_eq(list_refused(&l), GRPC_STATUS_INVALID_ARGUMENT);
	for (int i = 0; i <= TSR_LABELS_MAX; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		many[2 * i] = keys[i];
		many[2 * i + 1] = "v";
	}
	l.nlabels = TSR_LABELS_MAX + 1;
	l.kv = many;
	ck_assert_int_eq(list_refused(&l), GRPC_STATUS_INVALID_ARGUMENT);
}
END_TEST

/* Valkey down: every command fails UNAVAILABLE, and no agent starts. */
START_TEST(test_valkey_down)
{
	Tessera__V1__Agent *a = spawn_ok("sh", "sleep 30"), *b = NULL;
	struct spawn_args s = { .type = "cat", .task = "t" };
	struct list_args l = { 0 };
	struct tsr_err err;

	fx_valkey_stop(&fx.valkey);
	ck_assert_int_eq(spawn(&s, &b, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_uint_eq(supervisor_count(fx.sp.sv), 1);
	ck_assert_int_eq(status(a->id, &b, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(kill_agent(a->id, &b, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(list_refused(&l), GRPC_STATUS_UNAVAILABLE);
	/* Nothing was asked of the process. */
	ck_assert_int_eq(kill(a->pid, 0), 0);
	tessera__v1__agent__free_unpacked(a, NULL);
}
END_TEST

int test_suite(SRunner *sr)
{
	int rc = fx_check_env();
	TCase *tc;

	if (rc != 0)
		return rc;
	tc = check_suite(sr, "agent_commands",
			 CHECK_TESTS(test_spawn_runs_and_completes, test_spawn_idempotent,
				     test_spawn_nonce, test_spawn_many, test_spawn_refusals,
				     test_spawn_cap, test_spawn_draining, test_spawn_cannot_start,
				     test_spawn_timeout, test_grace, test_status, test_kill,
				     test_kill_unsupervised, test_kill_refusals, test_kill_nonce,
				     test_kill_many, test_list, test_list_refusals,
				     test_valkey_down));
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	return 0;
}
