/*
 * test_store: the store against a real valkey-server, a fresh one for
 * each test from the shared fixture (spoke_fixture.h). A second
 * connection, raw hiredis, looks behind the store. Restarts and
 * authentication (requirepass, an ACL user) get servers of their own.
 */
#include <check.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "clock.h"
#include "ids.h"
#include "pb.h"
#include "spoke_fixture.h"
#include "store.h"

#define SPAWNING TESSERA__V1__AGENT_STATE__AGENT_STATE_SPAWNING
#define RUNNING TESSERA__V1__AGENT_STATE__AGENT_STATE_RUNNING
#define COMPLETED TESSERA__V1__AGENT_STATE__AGENT_STATE_COMPLETED
#define FAILED TESSERA__V1__AGENT_STATE__AGENT_STATE_FAILED
#define KILLED TESSERA__V1__AGENT_STATE__AGENT_STATE_KILLED
#define UNSPECIFIED TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED

#define SPOKE "s1"
#define EVENTS_KEY "tessera:{s1}:events"
/* Per test (checked fixture). */
static struct fx_valkey server;
static struct store *st;
static redisContext *raw;

/*
 * One command to v's server on a connection of its own, answered OK: the
 * settings a deployment's valkey.conf would give it, which a restart
 * forgets.
 */
static void valkey_set(const struct fx_valkey *v, const char *fmt, ...)
{
	redisContext *c = redisConnectUnix(v->sock);
	redisReply *r;
	va_list ap;

	ck_assert(c != NULL && c->err == 0);
	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	ck_assert_ptr_nonnull(r);
	ck_assert_msg(r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0, "%s: %s", fmt,
		      r->str != NULL ? r->str : "?");
	freeReplyObject(r);
	redisFree(c);
}

static redisReply *rawcmd(const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(raw, fmt, ap);
	va_end(ap);
	ck_assert_ptr_nonnull(r);
	return r;
}

static long long xlen(void)
{
	redisReply *r = rawcmd("XLEN %s", EVENTS_KEY);
	long long n = r->integer;

	freeReplyObject(r);
	return n;
}

static void setup(void)
{
	struct tsr_err err;

	fx_valkey_start(&server);
	raw = redisConnectUnix(server.sock);
	ck_assert(raw != NULL && raw->err == 0);
	ck_assert_int_eq(store_open(server.addr, SPOKE, NULL, &st, &err), 0);
}

static void teardown(void)
{
	store_close(st);
	st = NULL;
	redisFree(raw);
	raw = NULL;
	fx_valkey_cleanup(&server);
}

/* A fresh agent record of spoke s1 for store_agent_create; id into idbuf. */
static Tessera__V1__Agent agent_new(char *idbuf, const char *type, const char *request_id,
				    int64_t created)
{
	Tessera__V1__Agent a = TESSERA__V1__AGENT__INIT;

	ck_assert_int_eq(ids_new_agent_id(SPOKE, idbuf, TSR_AGENT_ID_MAX + 1), 0);
	a.id = idbuf;
	a.type = (char *)type;
	a.task = "do the thing";
	a.request_id = (char *)request_id;
	a.created_at_ms = created;
	return a;
}

static void create_ok(Tessera__V1__Agent *a)
{
	char existing[TSR_AGENT_ID_MAX + 1];
	struct tsr_err err;

	ck_assert_msg(store_agent_create(st, a, existing, sizeof(existing), &err) == 0, "%s",
		      err.msg);
	ck_assert_str_eq(existing, "");
}

static void transition_ok(const char *id, Tessera__V1__AgentState to, const struct store_update *u,
			  char *pos)
{
	char scratch[STORE_POSITION_MAX];
	struct tsr_err err;

	ck_assert_msg(store_agent_transition(st, id, to, u, pos != NULL ? pos : scratch,
					     STORE_POSITION_MAX, &err) == 0,
		      "%s", err.msg);
}

/* The value of field in a stream entry's field list, or NULL. */
static const char *entry_field(const redisReply *fields, const char *name)
{
	for (size_t i = 0; i + 1 < fields->elements; i += 2)
		if (strcmp(fields->element[i]->str, name) == 0)
			return fields->element[i + 1]->str;
	return NULL;
}

START_TEST(test_create_get)
{
	char id[TSR_AGENT_ID_MAX + 1];
	Tessera__V1__Agent a = agent_new(id, "echo", "req-1", 1700000000000);
	Tessera__V1__Agent *got = NULL;
	struct tsr_err err;
	redisReply *r;

	a.task = "line one\nline two \"quoted\"";
	create_ok(&a);
	ck_assert_int_eq(store_agent_get(st, id, &got, &err), 0);
	ck_assert_str_eq(got->id, id);
	ck_assert_str_eq(got->spoke_id, SPOKE);
	ck_assert_str_eq(got->type, "echo");
	ck_assert_str_eq(got->task, a.task);
	ck_assert_int_eq(got->state, SPAWNING);
	ck_assert_int_eq(got->created_at_ms, 1700000000000);
	ck_assert_int_eq(got->started_at_ms, 0);
	ck_assert_int_eq(got->completed_at_ms, 0);
	ck_assert_int_eq(got->end_case, TESSERA__V1__AGENT__END__NOT_SET);
	ck_assert_str_eq(got->error, "");
	ck_assert_int_eq(got->pid, 0);
	ck_assert_str_eq(got->request_id, "req-1");
	ck_assert(!got->kill_requested);
	/* Every string is the caller's to free or replace. */
	free(got->error);
	got->error = strdup("replaced");
	tessera__v1__agent__free_unpacked(got, NULL);

	/* Creation is an event too. */
	ck_assert_int_eq(xlen(), 1);
	r = rawcmd("XRANGE %s - +", EVENTS_KEY);
	ck_assert_uint_eq(r->elements, 1);
	ck_assert_str_eq(entry_field(r->element[0]->element[1], "type"), "agent.spawning");
	ck_assert_str_eq(entry_field(r->element[0]->element[1], "old"), "unspecified");
	ck_assert_str_eq(entry_field(r->element[0]->element[1], "new"), "spawning");
	ck_assert_str_eq(entry_field(r->element[0]->element[1], "agent"), id);
	freeReplyObject(r);
}
END_TEST

START_TEST(test_create_idempotent)
{
	char id1[TSR_AGENT_ID_MAX + 1], id2[TSR_AGENT_ID_MAX + 1];
	char existing[TSR_AGENT_ID_MAX + 1];
	Tessera__V1__Agent a = agent_new(id1, "echo", "req-7", 0);
	Tessera__V1__Agent b = agent_new(id2, "echo", "req-7", 0);
	Tessera__V1__Agent *got = NULL;
	struct tsr_err err;

	create_ok(&a);
	ck_assert_int_eq(store_agent_create(st, &b, existing, sizeof(existing), &err), 0);
	ck_assert_str_eq(existing, id1);
	ck_assert_int_eq(store_agent_get(st, id2, &got, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_int_eq(xlen(), 1);

	/* Same id without a request id: refused, not overwritten. */
	a.request_id = "";
	ck_assert_int_eq(store_agent_create(st, &a, existing, sizeof(existing), &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_ALREADY_EXISTS);

	/* Creation time 0 means now. */
	ck_assert_int_eq(store_agent_get(st, id1, &got, &err), 0);
	ck_assert_int_gt(got->created_at_ms, 1700000000000);
	tessera__v1__agent__free_unpacked(got, NULL);
}
END_TEST

#ifndef NDEBUG
/*
 * A spawn that spawn_check would refuse, or an id of another spoke, is a
 * bug of the caller (the spoke checks commands at its boundary): the
 * store stops the process before writing anything.
 */
START_TEST(test_create_contract)
{
	Tessera__V1__Agent__LabelsEntry e = TESSERA__V1__AGENT__LABELS_ENTRY__INIT, *ep = &e;
	char id[TSR_AGENT_ID_MAX + 1], existing[TSR_AGENT_ID_MAX + 1];
	Tessera__V1__Agent a = agent_new(id, "echo", "", 0);
	struct tsr_err err;

	switch (_i) {
	case 0:
		a.id = "s2.0123456789abcdef01234567";
		break;
	case 1:
		a.type = "no spaces";
		break;
	case 2:
		a.request_id = "bad/id";
		break;
	case 3:
		e.key = "k";
		e.value = "two words";
		a.labels = &ep;
		a.n_labels = 1;
		break;
	}
	store_agent_create(st, &a, existing, sizeof(existing), &err);
	ck_abort_msg("store_agent_create took a spawn outside its contract (case %d)", _i);
}
END_TEST
#endif

START_TEST(test_transition_event)
{
	char id[TSR_AGENT_ID_MAX + 1], pos[STORE_POSITION_MAX];
	Tessera__V1__Agent a = agent_new(id, "echo", "", 1700000000000);
	struct store_update u = { 0 };
	Tessera__V1__Agent *got = NULL;
	struct timeval tv = { .tv_sec = 2 };
	redisContext *sub;
	redisReply *r;
	void *msg = NULL;
	int64_t before = clock_wall_ms();
	long long n0;

	create_ok(&a);
	sub = redisConnectUnix(server.sock);
	ck_assert(sub != NULL && sub->err == 0);
	redisSetTimeout(sub, tv);
	r = redisCommand(sub, "SUBSCRIBE %s", EVENTS_KEY);
	ck_assert_ptr_nonnull(r);
	freeReplyObject(r);

	n0 = xlen();
	u.has_pid = true;
	u.pid = 4242;
	u.has_started_at_ms = true;
	u.started_at_ms = 1700000000100;
	transition_ok(id, RUNNING, &u, pos);
	ck_assert_int_eq(xlen(), n0 + 1);

	ck_assert_int_eq(store_agent_get(st, id, &got, NULL), 0);
	ck_assert_int_eq(got->state, RUNNING);
	ck_assert_int_eq(got->pid, 4242);
	ck_assert_int_eq(got->started_at_ms, 1700000000100);
	tessera__v1__agent__free_unpacked(got, NULL);

	r = rawcmd("XRANGE %s %s %s", EVENTS_KEY, pos, pos);
	ck_assert_uint_eq(r->elements, 1);
	{
		const redisReply *f = r->element[0]->element[1];

		ck_assert_str_eq(entry_field(f, "type"), "agent.running");
		ck_assert_str_eq(entry_field(f, "agent"), id);
		ck_assert_str_eq(entry_field(f, "spoke"), SPOKE);
		ck_assert_str_eq(entry_field(f, "old"), "spawning");
		ck_assert_str_eq(entry_field(f, "new"), "running");
		ck_assert_int_ge(atoll(entry_field(f, "time")), before);
		ck_assert_str_eq(entry_field(f, "started_at_ms"), "1700000000100");
		ck_assert_str_eq(entry_field(f, "completed_at_ms"), "0");
		ck_assert_ptr_null(entry_field(f, "exit_code"));
		ck_assert_ptr_null(entry_field(f, "signal"));
	}
	freeReplyObject(r);

	/* The PUBLISH carries the new entry's id. */
	ck_assert_int_eq(redisGetReply(sub, &msg), REDIS_OK);
	r = msg;
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	ck_assert_uint_eq(r->elements, 3);
	ck_assert_str_eq(r->element[0]->str, "message");
	ck_assert_str_eq(r->element[1]->str, EVENTS_KEY);
	ck_assert_str_eq(r->element[2]->str, pos);
	freeReplyObject(r);
	redisFree(sub);

	/* An exit code, then the record holds it and the event repeats the start. */
	memset(&u, 0, sizeof(u));
	u.has_exit_code = true;
	u.exit_code = 3;
	u.has_completed_at_ms = true;
	u.completed_at_ms = 1700000000200;
	u.has_error = true;
	u.error = "exited with 3";
	transition_ok(id, FAILED, &u, pos);
	ck_assert_int_eq(store_agent_get(st, id, &got, NULL), 0);
	ck_assert_int_eq(got->state, FAILED);
	ck_assert_int_eq(got->end_case, TESSERA__V1__AGENT__END_EXIT_CODE);
	ck_assert_int_eq(got->exit_code, 3);
	ck_assert_str_eq(got->error, "exited with 3");
	ck_assert_int_eq(got->completed_at_ms, 1700000000200);
	tessera__v1__agent__free_unpacked(got, NULL);
	r = rawcmd("XRANGE %s %s %s", EVENTS_KEY, pos, pos);
	ck_assert_str_eq(entry_field(r->element[0]->element[1], "exit_code"), "3");
	ck_assert_str_eq(entry_field(r->element[0]->element[1], "started_at_ms"), "1700000000100");
	ck_assert_str_eq(entry_field(r->element[0]->element[1], "error"), "exited with 3");
	freeReplyObject(r);
}
END_TEST

START_TEST(test_signal_and_mark_kill)
{
	char id[TSR_AGENT_ID_MAX + 1];
	Tessera__V1__Agent a = agent_new(id, "echo", "", 0);
	struct store_update u = { 0 };
	Tessera__V1__Agent *got = NULL;
	struct tsr_err err;
	long long n0;

	create_ok(&a);
	transition_ok(id, RUNNING, NULL, NULL);
	n0 = xlen();
	ck_assert_int_eq(store_agent_mark_kill(st, id, &err), 0);
	ck_assert_int_eq(xlen(), n0); /* no state change, no event */
	ck_assert_int_eq(store_agent_get(st, id, &got, NULL), 0);
	ck_assert(got->kill_requested);
	ck_assert_int_eq(got->state, RUNNING);
	tessera__v1__agent__free_unpacked(got, NULL);

	u.has_signal = true;
	u.signal = 15;
	transition_ok(id, KILLED, &u, NULL);
	ck_assert_int_eq(store_agent_get(st, id, &got, NULL), 0);
	ck_assert_int_eq(got->end_case, TESSERA__V1__AGENT__END_SIGNAL);
	ck_assert_int_eq(got->signal, 15);
	tessera__v1__agent__free_unpacked(got, NULL);

	/* Too late once terminal. */
	ck_assert_int_eq(store_agent_mark_kill(st, id, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_FAILED_PRECONDITION);

	/* exit code and signal together make no sense. */
	u.has_exit_code = true;
	ck_assert_int_eq(store_agent_transition(st, id, FAILED, &u, (char[STORE_POSITION_MAX]){ 0 },
						STORE_POSITION_MAX, &err),
			 -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
}
END_TEST

/*
 * A kill's nonce: store_agent_get_fresh reads the agent only while the
 * nonce is new, writing nothing; store_agent_mark_kill_once records it with
 * the mark, refuses it once recorded with nothing written, and records it
 * when the mark itself is refused.
 */
START_TEST(test_mark_kill_nonce)
{
	char id[TSR_AGENT_ID_MAX + 1], other[TSR_AGENT_ID_MAX + 1];
	Tessera__V1__Agent a = agent_new(id, "echo", "", 0), b = agent_new(other, "echo", "", 0);
	uint8_t bytes[16] = { 0x42 };
	struct store_nonce nonce = { bytes, sizeof(bytes), 60000 };
	Tessera__V1__Agent *got = NULL;
	struct tsr_err err;
	redisReply *r;

	create_ok(&a);
	create_ok(&b);
	transition_ok(id, RUNNING, NULL, NULL);
	transition_ok(other, RUNNING, NULL, NULL);
	ck_assert_int_eq(store_agent_get_fresh(st, id, &nonce, &got, &err), 0);
	ck_assert_str_eq(got->id, id);
	tessera__v1__agent__free_unpacked(got, NULL);
	r = rawcmd("EXISTS tessera:{s1}:nonce:42000000000000000000000000000000");
	ck_assert_int_eq(r->integer, 0);
	freeReplyObject(r);
	ck_assert_int_eq(store_agent_mark_kill_once(st, id, &nonce, &err), 0);
	r = rawcmd("PTTL tessera:{s1}:nonce:42000000000000000000000000000000");
	ck_assert_int_gt(r->integer, 0);
	ck_assert_int_le(r->integer, 60000);
	freeReplyObject(r);
	ck_assert_int_eq(store_agent_get_fresh(st, other, &nonce, &got, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_str_eq(err.msg, "replayed command");
	ck_assert_int_eq(store_agent_mark_kill_once(st, other, &nonce, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_int_eq(store_agent_get(st, other, &got, NULL), 0);
	ck_assert(!got->kill_requested);
	tessera__v1__agent__free_unpacked(got, NULL);
	/* Refused by the agent's state: the nonce is recorded all the same. */
	transition_ok(other, COMPLETED, NULL, NULL);
	bytes[0] = 0x43;
	ck_assert_int_eq(store_agent_mark_kill_once(st, other, &nonce, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_int_eq(store_agent_mark_kill_once(st, other, &nonce, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_PERMISSION_DENIED);
	bytes[0] = 0x44;
	ck_assert_int_eq(ids_new_agent_id(SPOKE, id, sizeof(id)), 0);
	ck_assert_int_eq(store_agent_get_fresh(st, id, &nonce, &got, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
}
END_TEST

/* Field/value pairs of the agent's hash, as one string, to compare before and after. */
static char *hash_dump(const char *id)
{
	redisReply *r = rawcmd("HGETALL tessera:{s1}:agent:%s", id);
	size_t len = 0, off = 0;
	char *s;

	for (size_t i = 0; i < r->elements; i++)
		len += r->element[i]->len + 1;
	s = malloc(len + 1);
	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < r->elements; i++) {
		memcpy(s + off, r->element[i]->str, r->element[i]->len);
		off += r->element[i]->len;
		s[off++] = '\n';
	}
	s[off] = '\0';
	freeReplyObject(r);
	return s;
}

static void refuse(const char *id, Tessera__V1__AgentState to, const char *from_name,
		   const char *to_name)
{
	char pos[STORE_POSITION_MAX] = "untouched";
	struct store_update u = { .has_pid = true, .pid = 99, .has_error = true, .error = "x" };
	long long n0 = xlen();
	char *before = hash_dump(id), *after;
	struct tsr_err err;

	ck_assert_int_eq(store_agent_transition(st, id, to, &u, pos, sizeof(pos), &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_msg(strstr(err.msg, from_name) != NULL && strstr(err.msg, to_name) != NULL, "%s",
		      err.msg);
	ck_assert_str_eq(pos, "untouched");
	ck_assert_int_eq(xlen(), n0);
	after = hash_dump(id);
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
}

START_TEST(test_illegal_transition)
{
	char id[TSR_AGENT_ID_MAX + 1];
	Tessera__V1__Agent a = agent_new(id, "echo", "", 0);

	create_ok(&a);
	refuse(id, COMPLETED, "spawning", "completed");
	refuse(id, SPAWNING, "spawning", "spawning");
	transition_ok(id, RUNNING, NULL, NULL);
	refuse(id, RUNNING, "running", "running");
	transition_ok(id, COMPLETED, NULL, NULL);
	refuse(id, RUNNING, "completed", "running");
	refuse(id, KILLED, "completed", "killed");
	refuse(id, FAILED, "completed", "failed");
}
END_TEST

/* The create of a, then RUNNING with u, in one step: 0 or -1, with *existing and *got. */
static int create_running(Tessera__V1__Agent *a, const struct store_nonce *nonce,
			  const struct store_update *u, char existing[TSR_AGENT_ID_MAX + 1],
			  Tessera__V1__Agent **got, struct tsr_err *err)
{
	struct store_create_item it = { .a = a, .nonce = nonce, .running = u };
	struct store_create *c;

	it.rec = (Tessera__V1__Agent *)a; /* must be replaced */
	*got = NULL;
	if (store_agent_create_send(st, &it, 1, &c, err) != 0 ||
	    store_agent_create_finish(st, c, err) != 0)
		return -1;
	*got = it.rec;
	snprintf(existing, TSR_AGENT_ID_MAX + 1, "%s", it.existing);
	*err = it.err;
	return it.err.code == GRPC_STATUS_OK ? 0 : -1;
}

static bool key_exists(const char *fmt, const char *arg)
{
	redisReply *r = rawcmd(fmt, arg);
	bool found = r->type == REDIS_REPLY_INTEGER ? r->integer == 1 : r->type != REDIS_REPLY_NIL;

	freeReplyObject(r);
	return found;
}

/*
 * A create that goes on to RUNNING in the same step: the record it
 * returns is the one a read finds, packed alike, in the running index
 * only, after both events in order; with the most labels its arguments
 * still fit. A replay, or a retry of its request, writes nothing and
 * returns no record; a bad update is refused before Valkey is asked.
 */
START_TEST(test_create_running)
{
	char id[TSR_AGENT_ID_MAX + 1], id2[TSR_AGENT_ID_MAX + 1], existing[TSR_AGENT_ID_MAX + 1];
	char keys[TSR_LABELS_MAX][16];
	Tessera__V1__Agent a = agent_new(id, "echo", "req-run", 1700000000000);
	Tessera__V1__Agent b = agent_new(id2, "echo", "", 1700000000001);
	Tessera__V1__Agent__LabelsEntry labels[TSR_LABELS_MAX], *labelp[TSR_LABELS_MAX];
	const uint8_t bytes[16] = { 0x77 };
	struct store_nonce nonce = { bytes, sizeof(bytes), 60000 };
	Tessera__V1__Agent *got = NULL, *read = NULL;
	struct store_update u = { 0 }, bad = { 0 };
	uint8_t *p1 = NULL, *p2 = NULL;
	size_t n1, n2;
	struct tsr_err err;
	redisReply *r;

	for (int i = 0; i < TSR_LABELS_MAX; i++) {
		tessera__v1__agent__labels_entry__init(&labels[i]);
		snprintf(keys[i], sizeof(keys[i]), "k%02d", i);
		labels[i].key = keys[i];
		labels[i].value = "v";
		labelp[i] = &labels[i];
	}
	a.labels = labelp;
	a.n_labels = TSR_LABELS_MAX;
	u.has_pid = true;
	u.pid = 4343;
	u.has_process = true;
	u.pid_start_ticks = 123456;
	u.boot_id = "0123456789abcdef0123456789abcdef";
	u.pid_ns = 4026531836;
	u.pid_ns_init_ticks = 1;
	u.has_started_at_ms = true;
	u.started_at_ms = 1700000000200;
	u.has_timeout_at_ms = true;
	u.timeout_at_ms = 1700000060200;
	ck_assert_msg(create_running(&a, &nonce, &u, existing, &got, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(existing, "");
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got->id, id);
	ck_assert_int_eq(got->state, RUNNING);
	ck_assert_int_eq(got->pid, 4343);
	ck_assert_int_eq(got->started_at_ms, 1700000000200);
	ck_assert_int_eq(got->created_at_ms, 1700000000000);
	ck_assert_uint_eq(got->n_labels, TSR_LABELS_MAX);
	ck_assert_str_eq(got->task, "do the thing");
	ck_assert_int_eq(store_agent_get(st, id, &read, NULL), 0);
	ck_assert_int_eq(pb_pack(&got->base, &p1, &n1, &err), 0);
	ck_assert_int_eq(pb_pack(&read->base, &p2, &n2, &err), 0);
	ck_assert_uint_eq(n1, n2);
	ck_assert_mem_eq(p1, p2, n1);
	free(p1);
	free(p2);
	tessera__v1__agent__free_unpacked(got, NULL);
	tessera__v1__agent__free_unpacked(read, NULL);
	ck_assert(key_exists("ZSCORE tessera:{s1}:agents:state:running %s", id));
	ck_assert(!key_exists("ZSCORE tessera:{s1}:agents:state:spawning %s", id));
	ck_assert(key_exists("HGET tessera:{s1}:requests %s", "req-run"));
	r = rawcmd("XRANGE %s - +", EVENTS_KEY);
	ck_assert_uint_eq(r->elements, 2);
	ck_assert_str_eq(entry_field(r->element[0]->element[1], "type"), "agent.spawning");
	ck_assert_str_eq(entry_field(r->element[1]->element[1], "type"), "agent.running");
	ck_assert_str_eq(entry_field(r->element[1]->element[1], "old"), "spawning");
	ck_assert_str_eq(entry_field(r->element[1]->element[1], "started_at_ms"), "1700000000200");
	freeReplyObject(r);

	/* The same nonce again: refused, nothing written. */
	ck_assert_int_eq(create_running(&b, &nonce, &u, existing, &got, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(xlen(), 2);
	ck_assert(!key_exists("EXISTS tessera:{s1}:agent:%s", id2));

	/* A retry of the request: the first agent, nothing written. */
	b.request_id = "req-run";
	ck_assert_int_eq(create_running(&b, NULL, &u, existing, &got, &err), 0);
	ck_assert_str_eq(existing, id);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(xlen(), 2);
	ck_assert(!key_exists("EXISTS tessera:{s1}:agent:%s", id2));

	bad.has_pid = true;
	bad.pid = -1;
	b.request_id = "";
	ck_assert_int_eq(create_running(&b, NULL, &bad, existing, &got, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(xlen(), 2);
}
END_TEST

START_TEST(test_not_found)
{
	const char *ghost = "s1.0123456789abcdef01234567";
	char pos[STORE_POSITION_MAX];
	Tessera__V1__Agent *got = NULL;
	struct tsr_err err;

	ck_assert_int_eq(store_agent_get(st, ghost, &got, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(store_agent_transition(st, ghost, RUNNING, NULL, pos, sizeof(pos), &err),
			 -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_int_eq(store_agent_mark_kill(st, ghost, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_int_eq(xlen(), 0);
	/* Malformed ids never reach Valkey. */
	ck_assert_int_eq(store_agent_get(st, "s1.xyz", &got, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(
		store_agent_transition(st, "../etc", RUNNING, NULL, pos, sizeof(pos), &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(
		store_agent_transition(st, ghost, UNSPECIFIED, NULL, pos, sizeof(pos), &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
}
END_TEST

/*
 * Walks every page of a listing selecting the nlabels labels; ids in
 * listing order into out (at most max), count returned.
 */
static size_t list_sel(Tessera__V1__AgentState state, const char *type,
		       const struct tsr_label *labels, size_t nlabels, uint32_t size,
		       char (*out)[TSR_AGENT_ID_MAX + 1], size_t max, size_t *pages)
{
	char token[TSR_AGENT_ID_MAX + 1] = "";
	Tessera__V1__AgentPage *resp;
	struct tsr_err err;
	size_t n = 0;

	*pages = 0;
	for (;;) {
		ck_assert_msg(store_agent_list(st, state, type, labels, nlabels, size, token, &resp,
					       &err) == 0,
			      "%s", err.msg);
		(*pages)++;
		ck_assert_uint_le(resp->n_agents, size == 0 ? STORE_PAGE_DEFAULT : size);
		for (size_t i = 0; i < resp->n_agents; i++) {
			ck_assert_uint_lt(n, max);
			snprintf(out[n++], TSR_AGENT_ID_MAX + 1, "%s", resp->agents[i]->id);
		}
		snprintf(token, sizeof(token), "%s", resp->next_page_token);
		tessera__v1__agent_page__free_unpacked(resp, NULL);
		if (token[0] == '\0')
			return n;
		ck_assert_uint_lt(*pages, 1000);
	}
}

static size_t list_all(Tessera__V1__AgentState state, const char *type, uint32_t size,
		       char (*out)[TSR_AGENT_ID_MAX + 1], size_t max, size_t *pages)
{
	return list_sel(state, type, NULL, 0, size, out, max, pages);
}

/* Whether agent i sorts before agent j in a listing. */
static bool newer(char (*ids)[TSR_AGENT_ID_MAX + 1], const int64_t *created, int i, int j)
{
	return created[i] > created[j] || (created[i] == created[j] && strcmp(ids[i], ids[j]) > 0);
}

static int nonterminal_collect(void *arg, const Tessera__V1__Agent *a, struct tsr_err *err)
{
	size_t *count = arg;

	ck_assert(a->state == SPAWNING || a->state == RUNNING);
	(*count)++;
	return 0;
}

START_TEST(test_list)
{
	enum {
		N = 7
	};
	/* Two pairs share a creation time: ties must page without loss or repeat. */
	static const int64_t created[N] = { 1000, 2000, 2000, 3000, 4000, 4000, 5000 };
	char ids[N][TSR_AGENT_ID_MAX + 1], got[N][TSR_AGENT_ID_MAX + 1];
	char late[TSR_AGENT_ID_MAX + 1], token[TSR_AGENT_ID_MAX + 1];
	Tessera__V1__AgentPage *resp;
	Tessera__V1__Agent a;
	struct tsr_err err;
	size_t n, pages, count = 0;
	int order[N];

	for (int i = 0; i < N; i++) {
		a = agent_new(ids[i], i % 2 == 0 ? "even" : "odd", "", created[i]);
		create_ok(&a);
	}
	transition_ok(ids[1], RUNNING, NULL, NULL);
	transition_ok(ids[4], RUNNING, NULL, NULL);
	transition_ok(ids[4], COMPLETED, NULL, NULL);

	/* Newest first: by creation time, ties in reverse id order, as the index sorts. */
	for (int i = 0; i < N; i++)
		order[i] = i;
	for (int i = 1; i < N; i++)
		for (int j = i; j > 0 && newer(ids, created, order[j], order[j - 1]); j--) {
			int t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (uint32_t size = 1; size <= 8; size++) {
		n = list_all(UNSPECIFIED, "", size, got, N, &pages);
		ck_assert_uint_eq(n, N);
		ck_assert_uint_eq(pages, (N + size - 1) / size);
		for (int i = 0; i < N; i++)
			ck_assert_str_eq(got[i], ids[order[i]]);
	}

	n = list_all(RUNNING, "", 2, got, N, &pages);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(got[0], ids[1]);
	n = list_all(UNSPECIFIED, "odd", 0, got, N, &pages);
	ck_assert_uint_eq(n, 3);
	n = list_all(SPAWNING, "even", 0, got, N, &pages);
	ck_assert_uint_eq(n, 3); /* 0, 2, 6; 4 completed */
	n = list_all(COMPLETED, "odd", 0, got, N, &pages);
	ck_assert_uint_eq(n, 0);

	/* An agent created between pages appears in neither: the cursor holds its place. */
	ck_assert_int_eq(store_agent_list(st, UNSPECIFIED, "", NULL, 0, 3, "", &resp, &err), 0);
	snprintf(token, sizeof(token), "%s", resp->next_page_token);
	tessera__v1__agent_page__free_unpacked(resp, NULL);
	a = agent_new(late, "even", "", 9000);
	create_ok(&a);
	ck_assert_int_eq(store_agent_list(st, UNSPECIFIED, "", NULL, 0, 10, token, &resp, &err), 0);
	ck_assert_uint_eq(resp->n_agents, N - 3);
	for (size_t i = 0; i < resp->n_agents; i++)
		ck_assert_str_eq(resp->agents[i]->id, ids[order[i + 3]]);
	tessera__v1__agent_page__free_unpacked(resp, NULL);

	/* Tokens that were never handed out. */
	ck_assert_int_eq(store_agent_list(st, UNSPECIFIED, "", NULL, 0, 3, "garbage", &resp, &err),
			 -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(store_agent_list(st, UNSPECIFIED, "", NULL, 0, 3,
					  "s1.0123456789abcdef01234567", &resp, &err),
			 -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(
		store_agent_list(st, (Tessera__V1__AgentState)42, "", NULL, 0, 3, "", &resp, &err),
		-1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);

	ck_assert_int_eq(store_agents_nonterminal(st, nonterminal_collect, &count, &err), 0);
	ck_assert_uint_eq(count, N + 1 - 1); /* all but ids[4], plus late */
}
END_TEST

START_TEST(test_list_bounded)
{
	enum {
		N = STORE_LIST_SCAN_MAX + 50
	};
	static const struct tsr_label nobody = { "zone", "nowhere" };
	char id[TSR_AGENT_ID_MAX + 1], first[TSR_AGENT_ID_MAX + 1];
	Tessera__V1__AgentPage *resp;
	Tessera__V1__Agent a;
	struct tsr_err err;
	char token[TSR_AGENT_ID_MAX + 1];

	for (int i = 0; i < N; i++) {
		a = agent_new(id, "many", "", 1000 + i);
		create_ok(&a);
		if (i == 0)
			snprintf(first, sizeof(first), "%s", id);
	}
	/*
	 * No index for labels: the main one is walked, and the first call
	 * gives up after its budget, with a token.
	 */
	ck_assert_int_eq(store_agent_list(st, UNSPECIFIED, "", &nobody, 1, 10, "", &resp, &err), 0);
	ck_assert_uint_eq(resp->n_agents, 0);
	ck_assert_str_ne(resp->next_page_token, "");
	snprintf(token, sizeof(token), "%s", resp->next_page_token);
	tessera__v1__agent_page__free_unpacked(resp, NULL);
	ck_assert_int_eq(store_agent_list(st, UNSPECIFIED, "", &nobody, 1, 10, token, &resp, &err),
			 0);
	ck_assert_uint_eq(resp->n_agents, 0);
	ck_assert_str_eq(resp->next_page_token, "");
	tessera__v1__agent_page__free_unpacked(resp, NULL);
	/* A state walks its own index: the one running agent, oldest of all, at once. */
	transition_ok(first, RUNNING, NULL, NULL);
	ck_assert_int_eq(store_agent_list(st, RUNNING, "", NULL, 0, 10, "", &resp, &err), 0);
	ck_assert_uint_eq(resp->n_agents, 1);
	ck_assert_str_eq(resp->agents[0]->id, first);
	ck_assert_str_eq(resp->next_page_token, "");
	tessera__v1__agent_page__free_unpacked(resp, NULL);
	/* Page sizes are capped. */
	ck_assert_int_eq(store_agent_list(st, UNSPECIFIED, "", NULL, 0, 100000, "", &resp, &err),
			 0);
	ck_assert_uint_eq(resp->n_agents, TSR_PAGE_SIZE_MAX);
	tessera__v1__agent_page__free_unpacked(resp, NULL);
}
END_TEST

/*
 * A page stops before its agents pass TSR_PAGE_BYTES_MAX, and the next
 * one goes on after its last: every agent exactly once. Items carry
 * neither the task nor the output, which GetAgent has.
 */
START_TEST(test_list_bytes)
{
	enum {
		N = TSR_PAGE_SIZE_MAX
	};
	Tessera__V1__Agent__LabelsEntry e[TSR_LABELS_MAX], *ep[TSR_LABELS_MAX];
	char id[TSR_AGENT_ID_MAX + 1], token[TSR_AGENT_ID_MAX + 1] = "";
	char key[TSR_LABELS_MAX][TSR_NAME_MAX + 1], value[TSR_LABEL_VALUE_MAX + 1];
	Tessera__V1__AgentPage *resp;
	Tessera__V1__Agent a, *got;
	struct store_update upd = { 0 };
	struct tsr_err err;
	size_t seen = 0, pages = 0, bytes;

	memset(value, 'v', TSR_LABEL_VALUE_MAX);
	value[TSR_LABEL_VALUE_MAX] = '\0';
	for (int i = 0; i < TSR_LABELS_MAX; i++) {
		memset(key[i], 'k', TSR_NAME_MAX);
		key[i][0] = (char)('a' + i);
		key[i][TSR_NAME_MAX] = '\0';
		tessera__v1__agent__labels_entry__init(&e[i]);
		e[i].key = key[i];
		e[i].value = value;
		ep[i] = &e[i];
	}
	for (int i = 0; i < N; i++) {
		a = agent_new(id, "big", "", 1000 + i);
		a.labels = ep;
		a.n_labels = TSR_LABELS_MAX;
		create_ok(&a);
	}
	upd.has_output = true;
	upd.output = "the tail";
	transition_ok(id, RUNNING, &upd, NULL);
	do {
		ck_assert_int_eq(
			store_agent_list(st, UNSPECIFIED, "", NULL, 0, N, token, &resp, &err), 0);
		bytes = 0;
		for (size_t k = 0; k < resp->n_agents; k++) {
			ck_assert_str_eq(resp->agents[k]->task, "");
			ck_assert_str_eq(resp->agents[k]->output, "");
			ck_assert_uint_eq(resp->agents[k]->n_labels, TSR_LABELS_MAX);
			bytes += pb_element_size(&resp->agents[k]->base);
		}
		ck_assert_uint_le(bytes, TSR_PAGE_BYTES_MAX);
		seen += resp->n_agents;
		pages++;
		snprintf(token, sizeof(token), "%s", resp->next_page_token);
		tessera__v1__agent_page__free_unpacked(resp, NULL);
	} while (token[0] != '\0' && pages < 10);
	ck_assert_uint_eq(seen, N);
	ck_assert_uint_ge(pages, 2);
	ck_assert_int_eq(store_agent_get(st, id, &got, &err), 0);
	ck_assert_str_eq(got->task, "do the thing");
	ck_assert_str_eq(got->output, "the tail");
	tessera__v1__agent__free_unpacked(got, NULL);
}
END_TEST

/* Labels of a, sorted as the store returns them, as "k=v,k=v". */
static void labels_text(const Tessera__V1__Agent *a, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < a->n_labels && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s=%s", i > 0 ? "," : "",
					 a->labels[i]->key, a->labels[i]->value);
}

/* Creates an agent with the labels given as "k", "v", ... (n pairs). */
static void create_labelled(char *id, const char *type, int64_t created, size_t n,
			    const char *const *kv)
{
	Tessera__V1__Agent__LabelsEntry e[TSR_LABELS_MAX + 1], *ep[TSR_LABELS_MAX + 1];
	Tessera__V1__Agent a = agent_new(id, type, "", created);

	ck_assert_uint_le(n, TSR_LABELS_MAX + 1);
	for (size_t i = 0; i < n; i++) {
		tessera__v1__agent__labels_entry__init(&e[i]);
		e[i].key = (char *)kv[2 * i];
		e[i].value = (char *)kv[2 * i + 1];
		ep[i] = &e[i];
	}
	a.labels = ep;
	a.n_labels = n;
	create_ok(&a);
}

START_TEST(test_labels)
{
	static const char *const kv[] = { "zone", "eu-1", "gpu", "a=b,c", "Team_x", "~!" };
	char id[TSR_AGENT_ID_MAX + 1], text[256], key[TSR_LABELS_MAX][8], value[70];
	const char *many[2 * TSR_LABELS_MAX];
	Tessera__V1__AgentPage *resp;
	Tessera__V1__Agent *got = NULL;
	struct tsr_err err;
	redisReply *r;

	create_labelled(id, "t", 0, 3, kv);
	ck_assert_int_eq(store_agent_get(st, id, &got, &err), 0);
	labels_text(got, text, sizeof(text));
	ck_assert_str_eq(text, "Team_x=~!,gpu=a=b,c,zone=eu-1");
	tessera__v1__agent__free_unpacked(got, NULL);
	r = rawcmd("HGET tessera:{s1}:agent:%s label:gpu", id);
	ck_assert_str_eq(r->str, "a=b,c");
	freeReplyObject(r);
	/* List pages carry them too. */
	ck_assert_int_eq(store_agent_list(st, UNSPECIFIED, "", NULL, 0, 10, "", &resp, &err), 0);
	ck_assert_uint_eq(resp->n_agents, 1);
	labels_text(resp->agents[0], text, sizeof(text));
	ck_assert_str_eq(text, "Team_x=~!,gpu=a=b,c,zone=eu-1");
	tessera__v1__agent_page__free_unpacked(resp, NULL);
	/* An agent without labels has none. */
	create_labelled(id, "t", 0, 0, NULL);
	ck_assert_int_eq(store_agent_get(st, id, &got, &err), 0);
	ck_assert_uint_eq(got->n_labels, 0);
	tessera__v1__agent__free_unpacked(got, NULL);

	/* Exactly the limits are fine (spawn_check refuses beyond them). */
	for (int i = 0; i < TSR_LABELS_MAX; i++) {
		snprintf(key[i], sizeof(key[i]), "k%d", i);
		many[2 * i] = key[i];
		many[2 * i + 1] = "v";
	}
	create_labelled(id, "t", 0, TSR_LABELS_MAX, many);
	memset(value, 'x', sizeof(value));
	value[TSR_LABEL_VALUE_MAX] = '\0';
	create_labelled(id, "t", 0, 1, (const char *const[]){ "k", value });

	/* A malformed selector is refused too. */
	ck_assert_int_eq(store_agent_list(st, UNSPECIFIED, "",
					  &(struct tsr_label){ "k", "two words" }, 1, 10, "", &resp,
					  &err),
			 -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
}
END_TEST

enum {
	FN = 60
};

struct fleet {
	char ids[FN][TSR_AGENT_ID_MAX + 1];
	int64_t created[FN];
	Tessera__V1__AgentState state[FN];
	const char *type[FN];
	const char *zone[FN];
	const char *gpu[FN];
};

/* FN agents of three types, in every state, with two labels in a pattern. */
static void fleet_make(struct fleet *f)
{
	static const char *const types[] = { "alpha", "beta", "gamma" };
	static const char *const zones[] = { "eu", "us", "ap", "eu" };

	for (int i = 0; i < FN; i++) {
		const char *kv[] = { "zone", zones[i % 4], "gpu", i % 5 == 0 ? "yes" : "no" };

		f->created[i] = 1000 + (i / 3) * 10; /* ties of three */
		f->type[i] = types[i % 3];
		f->zone[i] = zones[i % 4];
		f->gpu[i] = kv[3];
		create_labelled(f->ids[i], f->type[i], f->created[i], i % 7 == 6 ? 0 : 2, kv);
		if (i % 7 == 6)
			f->zone[i] = f->gpu[i] = NULL;
		f->state[i] = SPAWNING;
		if (i % 3 != 0) {
			transition_ok(f->ids[i], RUNNING, NULL, NULL);
			f->state[i] = RUNNING;
		}
		if (i % 3 != 0 && i % 4 == 1) {
			transition_ok(f->ids[i], COMPLETED, NULL, NULL);
			f->state[i] = COMPLETED;
		}
	}
}

/* The ids matching, newest first, as the listing must give them. */
static size_t fleet_expect(const struct fleet *f, Tessera__V1__AgentState state, const char *type,
			   const char *zone, const char *gpu, char (*out)[TSR_AGENT_ID_MAX + 1])
{
	int order[FN], n = 0;

	for (int i = 0; i < FN; i++) {
		if ((state != UNSPECIFIED && f->state[i] != state) ||
		    (type[0] != '\0' && strcmp(f->type[i], type) != 0) ||
		    (zone != NULL && (f->zone[i] == NULL || strcmp(f->zone[i], zone) != 0)) ||
		    (gpu != NULL && (f->gpu[i] == NULL || strcmp(f->gpu[i], gpu) != 0)))
			continue;
		order[n++] = i;
	}
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && newer((char(*)[TSR_AGENT_ID_MAX + 1]) f->ids, f->created,
					       order[j], order[j - 1]);
		     j--) {
			int t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (int i = 0; i < n; i++)
		snprintf(out[i], TSR_AGENT_ID_MAX + 1, "%s", f->ids[order[i]]);
	return (size_t)n;
}

static long long zcard(const char *key)
{
	redisReply *r = rawcmd("ZCARD %s", key);
	long long n = r->integer;

	freeReplyObject(r);
	return n;
}

/* Every filter combination lists exactly what a scan of the records says, at every page size. */
static void fleet_check(const struct fleet *f)
{
	static const Tessera__V1__AgentState states[] = { UNSPECIFIED, SPAWNING, RUNNING, COMPLETED,
							  FAILED };
	static const char *const types[] = { "", "alpha", "gamma", "none" };
	static const char *const zones[] = { NULL, "eu", "ap" };
	static const char *const gpus[] = { NULL, "yes" };
	static const uint32_t sizes[] = { 1, 4, 0 };
	char want[FN][TSR_AGENT_ID_MAX + 1], got[FN][TSR_AGENT_ID_MAX + 1];
	struct tsr_label sel[2];
	size_t nwant, ngot, nsel, pages;

	for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++)
		for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
			for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++)
				for (size_t g = 0; g < sizeof(gpus) / sizeof(gpus[0]); g++) {
					nsel = 0;
					if (zones[z] != NULL)
						sel[nsel++] = (struct tsr_label){ "zone",
										  zones[z] };
					if (gpus[g] != NULL)
						sel[nsel++] = (struct tsr_label){ "gpu", gpus[g] };
					nwant = fleet_expect(f, states[s], types[t], zones[z],
							     gpus[g], want);
					for (size_t p = 0; p < sizeof(sizes) / sizeof(sizes[0]);
					     p++) {
						ngot = list_sel(states[s], types[t], sel, nsel,
								sizes[p], got, FN, &pages);
						ck_assert_msg(ngot == nwant,
							      "state %d type '%s' zone %s gpu %s "
							      "size %u: "
							      "%zu agents, expected %zu",
							      states[s], types[t],
							      zones[z] ? zones[z] : "-",
							      gpus[g] ? gpus[g] : "-", sizes[p],
							      ngot, nwant);
						for (size_t i = 0; i < nwant; i++)
							ck_assert_str_eq(got[i], want[i]);
					}
				}
}

START_TEST(test_list_indexes)
{
	static struct fleet f;
	char want[FN][TSR_AGENT_ID_MAX + 1], token[TSR_AGENT_ID_MAX + 1];
	Tessera__V1__AgentPage *resp;
	struct tsr_err err;
	size_t n, running = 0;

	fleet_make(&f);
	for (int i = 0; i < FN; i++)
		running += f.state[i] == RUNNING;
	/* Each agent is in its state's and its type's index, and nowhere else. */
	ck_assert_int_eq(zcard("tessera:{s1}:agents"), FN);
	ck_assert_int_eq(zcard("tessera:{s1}:agents:state:running"), (long long)running);
	ck_assert_int_eq(zcard("tessera:{s1}:agents:state:spawning") +
				 zcard("tessera:{s1}:agents:state:running") +
				 zcard("tessera:{s1}:agents:state:completed"),
			 FN);
	ck_assert_int_eq(zcard("tessera:{s1}:agents:type:alpha"), FN / 3);
	fleet_check(&f);

	/*
	 * Agents leave the index being walked between pages, the one the
	 * token names among them: the rest of the listing is still there,
	 * without a repeat.
	 */
	n = fleet_expect(&f, RUNNING, "", NULL, NULL, want);
	ck_assert_uint_ge(n, 6);
	ck_assert_int_eq(store_agent_list(st, RUNNING, "", NULL, 0, 3, "", &resp, &err), 0);
	ck_assert_uint_eq(resp->n_agents, 3);
	snprintf(token, sizeof(token), "%s", resp->next_page_token);
	ck_assert_str_eq(token, want[2]);
	tessera__v1__agent_page__free_unpacked(resp, NULL);
	transition_ok(want[1], FAILED, NULL, NULL);
	transition_ok(want[2], COMPLETED, NULL, NULL);
	ck_assert_int_eq(store_agent_list(st, RUNNING, "", NULL, 0, FN, token, &resp, &err), 0);
	ck_assert_uint_eq(resp->n_agents, n - 3);
	for (size_t i = 0; i < resp->n_agents; i++)
		ck_assert_str_eq(resp->agents[i]->id, want[i + 3]);
	ck_assert_str_eq(resp->next_page_token, "");
	tessera__v1__agent_page__free_unpacked(resp, NULL);
}
END_TEST

/* Deletes what an older spoke never wrote: the secondary indexes and their version. */
static void indexes_drop(void)
{
	redisReply *r = rawcmd("KEYS tessera:{s1}:agents:*");

	for (size_t i = 0; i < r->elements; i++)
		freeReplyObject(rawcmd("DEL %s", r->element[i]->str));
	freeReplyObject(r);
}

START_TEST(test_reindex)
{
	enum {
		N = 2500
	};
	char id[TSR_AGENT_ID_MAX + 1];
	char(*got)[TSR_AGENT_ID_MAX + 1] = calloc(N, sizeof(*got));
	Tessera__V1__Agent a;
	struct tsr_err err;
	size_t n, pages;
	redisReply *r;

	ck_assert_ptr_nonnull(got);
	for (int i = 0; i < N; i++) {
		a = agent_new(id, i % 2 == 0 ? "even" : "odd", "", 1000 + i);
		create_ok(&a);
		if (i % 100 == 7)
			transition_ok(id, RUNNING, NULL, NULL);
		if (i % 100 == 9)
			transition_ok(id, FAILED, NULL, NULL);
	}
	/* A store that has already seen the indexes trusts them... */
	ck_assert_int_eq(list_all(RUNNING, "", 0, got, N, &pages), N / 100);
	indexes_drop();
	ck_assert_int_eq(list_all(RUNNING, "", 0, got, N, &pages), 0);
	/* ...a new one, as after an upgrade, finds no version and rebuilds them first. */
	store_close(st);
	ck_assert_int_eq(store_open(server.addr, SPOKE, NULL, &st, &err), 0);
	n = list_all(RUNNING, "", 0, got, N, &pages);
	ck_assert_uint_eq(n, N / 100);
	ck_assert_uint_eq(pages, 1);
	n = list_all(SPAWNING, "odd", TSR_PAGE_SIZE_MAX, got, N, &pages);
	ck_assert_uint_eq(n, N / 2 - 2 * (N / 100)); /* the running and failed ones are odd */
	ck_assert_int_eq(zcard("tessera:{s1}:agents:ended"), N / 100);
	ck_assert_int_eq(zcard("tessera:{s1}:agents:type:even"), N / 2);
	r = rawcmd("GET tessera:{s1}:agents:version");
	ck_assert_str_eq(r->str, "2");
	freeReplyObject(r);
	/* store_indexes_ensure on its own, as start-up may call it. */
	indexes_drop();
	store_close(st);
	ck_assert_int_eq(store_open(server.addr, SPOKE, NULL, &st, &err), 0);
	ck_assert_int_eq(store_indexes_ensure(st, &err), 0);
	ck_assert_int_eq(zcard("tessera:{s1}:agents:state:running"), N / 100);
	free(got);
}
END_TEST

/* Ends agent id at ended_ms (FAILED), with request id rid. */
static void ended_at(char *id, const char *rid, int64_t ended_ms)
{
	Tessera__V1__Agent a = agent_new(id, "gone", rid, 1000);
	struct store_update u = { .has_completed_at_ms = true, .completed_at_ms = ended_ms };

	create_ok(&a);
	transition_ok(id, FAILED, &u, NULL);
}

static bool agent_exists(const char *id)
{
	Tessera__V1__Agent *got = NULL;
	struct tsr_err err;

	if (store_agent_get(st, id, &got, &err) == 0) {
		tessera__v1__agent__free_unpacked(got, NULL);
		return true;
	}
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	return false;
}

/*
 * Retention: ended agents go once older than the time or beyond the
 * count, oldest first and in bounded steps, with their index and
 * request-map entries; running agents and their events stay.
 */
START_TEST(test_prune)
{
	enum {
		N = 10
	};
	const struct store_retention keep = { .ms = 60000, .count = 6 };
	char old[N][TSR_AGENT_ID_MAX + 1], live[TSR_AGENT_ID_MAX + 1], rid[16];
	char existing[TSR_AGENT_ID_MAX + 1];
	const int64_t now = 10000000;
	struct store_pruned p;
	Tessera__V1__Agent a;
	struct tsr_err err;
	redisReply *r;
	long long events;

	/* Two ended long ago, eight recently: the count keeps the newest six. */
	for (int i = 0; i < N; i++) {
		snprintf(rid, sizeof(rid), "req-%d", i);
		ended_at(old[i], rid, i < 2 ? now - 2 * keep.ms + i : now - 1000 + i);
	}
	a = agent_new(live, "gone", "", 1000);
	create_ok(&a);
	transition_ok(live, RUNNING, NULL, NULL);
	events = xlen();
	ck_assert_int_eq(zcard("tessera:{s1}:agents:ended"), N);

	ck_assert_int_eq(store_agents_prune(st, &keep, now, 3, &p, &err), 0);
	ck_assert_uint_eq(p.deleted, 3);
	ck_assert_uint_eq(p.due, 1);
	ck_assert_int_eq(store_agents_prune(st, &keep, now, 3, &p, &err), 0);
	ck_assert_uint_eq(p.deleted, 1);
	ck_assert_uint_eq(p.due, 0);
	ck_assert_int_eq(store_agents_prune(st, &keep, now, 3, &p, &err), 0);
	ck_assert_uint_eq(p.deleted, 0);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(agent_exists(old[i]), i >= N - keep.count);
	ck_assert(agent_exists(live));
	ck_assert_int_eq(zcard("tessera:{s1}:agents"), keep.count + 1);
	ck_assert_int_eq(zcard("tessera:{s1}:agents:state:failed"), keep.count);
	ck_assert_int_eq(zcard("tessera:{s1}:agents:type:gone"), keep.count + 1);
	ck_assert_int_eq(zcard("tessera:{s1}:agents:ended"), keep.count);
	r = rawcmd("HLEN tessera:{s1}:requests");
	ck_assert_int_eq(r->integer, keep.count);
	freeReplyObject(r);
	ck_assert_int_eq(xlen(), events);
	/* A pruned request id is free again: it makes a new agent. */
	a = agent_new(live, "gone", "req-0", 1000);
	ck_assert_int_eq(store_agent_create(st, &a, existing, sizeof(existing), &err), 0);
	ck_assert_str_eq(existing, "");

	/* Later, time alone ends the rest. */
	ck_assert_int_eq(store_agents_prune(st, &keep, now + 2 * keep.ms, 100, &p, &err), 0);
	ck_assert_uint_eq(p.deleted, keep.count);
	ck_assert_int_eq(zcard("tessera:{s1}:agents:ended"), 0);

	ck_assert_int_eq(
		store_agents_prune(st, &(struct store_retention){ 0, 1 }, now, 3, &p, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
}
END_TEST

struct blocked_read {
	const char *after;
	Tessera__V1__Event **events;
	size_t n;
	int rc;
	int64_t took_ms;
};

static void *blocked_reader(void *p)
{
	struct blocked_read *b = p;
	struct store *rd;
	struct tsr_err err;
	int64_t t0;

	if (store_open(server.addr, SPOKE, NULL, &rd, &err) != 0) {
		b->rc = -1;
		return NULL;
	}
	t0 = clock_mono_ms();
	b->rc = store_events_read(rd, b->after, 5000, 10, &b->events, &b->n, &err);
	b->took_ms = clock_mono_ms() - t0;
	store_close(rd);
	return NULL;
}

START_TEST(test_events)
{
	char id[TSR_AGENT_ID_MAX + 1], last[STORE_POSITION_MAX], p1[STORE_POSITION_MAX];
	char p2[STORE_POSITION_MAX];
	Tessera__V1__Agent a = agent_new(id, "echo", "", 0);
	struct store_update u = { .has_exit_code = true, .exit_code = 0 };
	struct blocked_read b = { 0 };
	Tessera__V1__Event **ev;
	struct tsr_err err;
	redisReply *r;
	pthread_t th;
	int64_t t0;
	size_t n;

	ck_assert_int_eq(store_events_last(st, last, sizeof(last), &err), 0);
	ck_assert_str_eq(last, "0-0");
	ck_assert_int_eq(store_events_read(st, "0-0", 0, 10, &ev, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	store_events_free(ev, n);

	create_ok(&a);
	transition_ok(id, RUNNING, NULL, p1);
	transition_ok(id, COMPLETED, &u, p2);
	ck_assert_int_eq(store_events_last(st, last, sizeof(last), &err), 0);
	ck_assert_str_eq(last, p2);

	ck_assert_int_eq(store_events_read(st, "0-0", 0, 10, &ev, &n, &err), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(ev[0]->type, "agent.spawning");
	ck_assert_int_eq(ev[0]->old_state, UNSPECIFIED);
	ck_assert_int_eq(ev[0]->new_state, SPAWNING);
	ck_assert_str_eq(ev[1]->position, p1);
	ck_assert_str_eq(ev[1]->type, "agent.running");
	ck_assert_str_eq(ev[1]->agent_id, id);
	ck_assert_str_eq(ev[1]->spoke_id, SPOKE);
	ck_assert_int_eq(ev[1]->old_state, SPAWNING);
	ck_assert_int_eq(ev[1]->new_state, RUNNING);
	ck_assert_int_gt(ev[1]->time_ms, 0);
	ck_assert_str_eq(ev[2]->position, p2);
	ck_assert_int_eq(ev[2]->new_state, COMPLETED);
	ck_assert_int_eq(ev[2]->end_case, TESSERA__V1__EVENT__END_EXIT_CODE);
	ck_assert_int_eq(ev[2]->exit_code, 0);
	store_events_free(ev, n);

	/* After a cursor, and bounded by count. */
	ck_assert_int_eq(store_events_read(st, p1, 0, 10, &ev, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(ev[0]->position, p2);
	store_events_free(ev, n);
	ck_assert_int_eq(store_events_read(st, "0-0", 0, 2, &ev, &n, &err), 0);
	ck_assert_uint_eq(n, 2);
	store_events_free(ev, n);

	/* Blocking: nothing new means waiting out block_ms, then no events. */
	t0 = clock_mono_ms();
	ck_assert_int_eq(store_events_read(st, p2, 150, 10, &ev, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_ge(clock_mono_ms() - t0, 140);

	/* A reader blocked on its own connection wakes on the next write. */
	b.after = p2;
	ck_assert_int_eq(pthread_create(&th, NULL, blocked_reader, &b), 0);
	usleep(100000);
	a = agent_new(id, "echo", "", 0);
	create_ok(&a);
	pthread_join(th, NULL);
	ck_assert_int_eq(b.rc, 0);
	ck_assert_uint_eq(b.n, 1);
	ck_assert_str_eq(b.events[0]->agent_id, id);
	ck_assert_int_lt(b.took_ms, 4000);
	store_events_free(b.events, b.n);

	/* Bad arguments. */
	ck_assert_int_eq(store_events_read(st, "$", 0, 10, &ev, &n, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(store_events_read(st, "0-0", -1, 10, &ev, &n, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(store_events_read(st, "0-0", 0, 0, &ev, &n, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);

	/* A foreign entry is damage to report, not to crash on. */
	ck_assert_int_eq(store_events_last(st, last, sizeof(last), &err), 0);
	r = rawcmd("XADD %s * type agent.running agent nonsense", EVENTS_KEY);
	freeReplyObject(r);
	ck_assert_int_eq(store_events_read(st, last, 0, 10, &ev, &n, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
	ck_assert_ptr_null(ev);
	ck_assert_uint_eq(n, 0);
}
END_TEST

/*
 * The stream keeps the newest events; a reader whose position is older
 * than the newest one deleted is refused, while one exactly at it, "0-0",
 * or any position in a stream that has lost nothing reads normally.
 */
START_TEST(test_events_retention)
{
	enum {
		KEPT = STORE_EVENTS_KEPT_MIN,
		MORE = 5
	};
	char id[TSR_AGENT_ID_MAX + 1], pos[KEPT + MORE][STORE_POSITION_MAX];
	Tessera__V1__Agent a;
	Tessera__V1__Event **ev;
	struct tsr_err err;
	size_t n;

	ck_assert_int_eq(store_events_keep(st, STORE_EVENTS_KEPT_MIN - 1, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(store_events_keep(st, STORE_EVENTS_KEPT_MAX + 1LL, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(store_events_keep(st, KEPT, &err), 0);

	/* No stream yet: nothing was lost. */
	ck_assert_int_eq(store_events_read(st, "1-0", 0, 10, &ev, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	store_events_free(ev, n);

	for (int i = 0; i < KEPT; i++) {
		a = agent_new(id, "echo", "", 0);
		create_ok(&a);
	}
	ck_assert_int_eq(store_events_read(st, "0-0", 0, STORE_READ_MAX, &ev, &n, &err), 0);
	ck_assert_uint_eq(n, KEPT);
	for (size_t i = 0; i < n; i++)
		snprintf(pos[i], sizeof(pos[i]), "%s", ev[i]->position);
	store_events_free(ev, n);
	/* Full, nothing deleted: even a position before every entry is whole. */
	ck_assert_int_eq(store_events_read(st, "1-0", 0, 10, &ev, &n, &err), 0);
	ck_assert_uint_eq(n, 10);
	ck_assert_str_eq(ev[0]->position, pos[0]);
	store_events_free(ev, n);

	for (int i = 0; i < MORE; i++) {
		a = agent_new(id, "echo", "", 0);
		create_ok(&a);
	}
	ck_assert_int_eq(xlen(), KEPT);
	ck_assert_int_eq(store_events_read(st, pos[KEPT - 1], 0, 10, &ev, &n, &err), 0);
	ck_assert_uint_eq(n, MORE);
	for (size_t i = 0; i < n; i++)
		snprintf(pos[KEPT + i], sizeof(pos[KEPT + i]), "%s", ev[i]->position);
	store_events_free(ev, n);

	/* pos[MORE - 1] is the newest deleted: its reader has missed nothing. */
	ck_assert_int_eq(store_events_read(st, pos[MORE - 1], 0, STORE_READ_MAX, &ev, &n, &err), 0);
	ck_assert_uint_eq(n, KEPT);
	ck_assert_str_eq(ev[0]->position, pos[MORE]);
	ck_assert_str_eq(ev[n - 1]->position, pos[KEPT + MORE - 1]);
	store_events_free(ev, n);

	/* One earlier, pos[MORE - 1] would be skipped: refused, with or without waiting. */
	ck_assert_int_eq(store_events_read(st, pos[MORE - 2], 0, 10, &ev, &n, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_OUT_OF_RANGE);
	ck_assert_ptr_null(ev);
	ck_assert_uint_eq(n, 0);
	ck_assert_msg(strstr(err.msg, pos[MORE - 2]) != NULL && strstr(err.msg, pos[MORE]) != NULL,
		      "%s", err.msg);
	ck_assert_int_eq(store_events_read(st, pos[0], 1000, 10, &ev, &n, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_OUT_OF_RANGE);
	ck_assert_int_eq(store_events_read(st, "1-0", 0, 10, &ev, &n, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_OUT_OF_RANGE);

	/* "0-0" is every event kept. */
	ck_assert_int_eq(store_events_read(st, "0-0", 0, STORE_READ_MAX, &ev, &n, &err), 0);
	ck_assert_uint_eq(n, KEPT);
	ck_assert_str_eq(ev[0]->position, pos[MORE]);
	store_events_free(ev, n);

	/* Past the newest: nothing yet, and nothing missed. */
	ck_assert_int_eq(store_events_read(st, pos[KEPT + MORE - 1], 100, 10, &ev, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	store_events_free(ev, n);
}
END_TEST

START_TEST(test_script_flush)
{
	char id[TSR_AGENT_ID_MAX + 1];
	Tessera__V1__Agent a = agent_new(id, "echo", "", 0);
	Tessera__V1__Agent *got = NULL;
	redisReply *r;

	create_ok(&a);
	r = rawcmd("SCRIPT FLUSH");
	freeReplyObject(r);
	transition_ok(id, RUNNING, NULL, NULL);
	r = rawcmd("SCRIPT FLUSH");
	freeReplyObject(r);
	a = agent_new(id, "echo", "", 0);
	create_ok(&a);
	ck_assert_int_eq(store_agent_get(st, id, &got, NULL), 0);
	ck_assert_int_eq(got->state, SPAWNING);
	tessera__v1__agent__free_unpacked(got, NULL);
}
END_TEST

/* Agent id's state in Valkey. */
static Tessera__V1__AgentState state_of(const char *id)
{
	Tessera__V1__Agent *got = NULL;
	Tessera__V1__AgentState state;
	struct tsr_err err;

	ck_assert_msg(store_agent_get(st, id, &got, &err) == 0, "%s", err.msg);
	state = got->state;
	tessera__v1__agent__free_unpacked(got, NULL);
	return state;
}

/*
 * Transitions sent together: each gets its own outcome, in order (made,
 * illegal from a terminal state, no such agent, a bad update refused
 * before Valkey); a flushed script cache is loaded again and every call
 * made; and the most a batch takes, each with its event, in order. With
 * Valkey down, every one is UNAVAILABLE.
 */
START_TEST(test_transitions_batch)
{
	char ids[STORE_TRANSITIONS_MAX][TSR_AGENT_ID_MAX + 1], gone[TSR_AGENT_ID_MAX + 1];
	struct store_update done = { .has_exit_code = true, .exit_code = 0 };
	struct store_update bad = { .has_exit_code = true, .exit_code = 0, .has_signal = true };
	struct store_transition t[STORE_TRANSITIONS_MAX];
	struct tsr_err errs[STORE_TRANSITIONS_MAX], err;
	redisReply *r;
	Tessera__V1__Agent a;

	for (int i = 0; i < STORE_TRANSITIONS_MAX; i++) {
		a = agent_new(ids[i], "echo", "", 0);
		create_ok(&a);
		transition_ok(ids[i], RUNNING, NULL, NULL);
	}
	transition_ok(ids[1], KILLED, NULL, NULL);
	a = agent_new(gone, "echo", "", 0);
	t[0] = (struct store_transition){ ids[0], COMPLETED, &done };
	t[1] = (struct store_transition){ ids[1], COMPLETED, &done };
	t[2] = (struct store_transition){ gone, FAILED, NULL };
	t[3] = (struct store_transition){ ids[3], COMPLETED, &bad };
	t[4] = (struct store_transition){ ids[4], FAILED, NULL };
	ck_assert_msg(store_agent_transitions(st, t, 5, errs, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(errs[0].code, GRPC_STATUS_OK);
	ck_assert_int_eq(errs[1].code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_ptr_nonnull(strstr(errs[1].msg, "killed -> completed"));
	ck_assert_int_eq(errs[2].code, GRPC_STATUS_NOT_FOUND);
	ck_assert_int_eq(errs[3].code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(errs[4].code, GRPC_STATUS_OK);
	ck_assert_int_eq(state_of(ids[0]), COMPLETED);
	ck_assert_int_eq(state_of(ids[1]), KILLED);
	ck_assert_int_eq(state_of(ids[3]), RUNNING);
	ck_assert_int_eq(state_of(ids[4]), FAILED);

	/* A full batch after SCRIPT FLUSH: each NOSCRIPT call is made again. */
	r = rawcmd("SCRIPT FLUSH");
	freeReplyObject(r);
	for (int i = 0; i < STORE_TRANSITIONS_MAX; i++) {
		a = agent_new(ids[i], "echo", "", 0);
		create_ok(&a);
		transition_ok(ids[i], RUNNING, NULL, NULL);
		t[i] = (struct store_transition){ ids[i], COMPLETED, &done };
	}
	r = rawcmd("SCRIPT FLUSH");
	freeReplyObject(r);
	ck_assert_msg(store_agent_transitions(st, t, STORE_TRANSITIONS_MAX, errs, &err) == 0, "%s",
		      err.msg);
	for (int i = 0; i < STORE_TRANSITIONS_MAX; i++) {
		ck_assert_msg(errs[i].code == GRPC_STATUS_OK, "%d: %s", i, errs[i].msg);
		ck_assert_int_eq(state_of(ids[i]), COMPLETED);
	}
	/* Their events are in the stream in the batch's order. */
	r = rawcmd("XREVRANGE " EVENTS_KEY " + - COUNT %d", STORE_TRANSITIONS_MAX);
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	ck_assert_uint_eq(r->elements, STORE_TRANSITIONS_MAX);
	for (int i = 0; i < STORE_TRANSITIONS_MAX; i++)
		ck_assert_str_eq(
			entry_field(r->element[STORE_TRANSITIONS_MAX - 1 - i]->element[1], "agent"),
			ids[i]);
	freeReplyObject(r);
}
END_TEST

/* A batch while Valkey is down: -1, and every transition UNAVAILABLE. */
START_TEST(test_transitions_down)
{
	struct fx_valkey own = { 0 };
	char id[TSR_AGENT_ID_MAX + 1];
	struct store_transition t[2];
	struct tsr_err errs[2], err;
	struct store *s2;

	fx_valkey_start(&own);
	ck_assert_int_eq(store_open(own.addr, SPOKE, NULL, &s2, &err), 0);
	fx_valkey_stop(&own);
	ck_assert_int_eq(ids_new_agent_id(SPOKE, id, sizeof(id)), 0);
	t[0] = (struct store_transition){ id, COMPLETED, NULL };
	t[1] = t[0];
	ck_assert_int_eq(store_agent_transitions(s2, t, 2, errs, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(errs[0].code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(errs[1].code, GRPC_STATUS_UNAVAILABLE);
	store_close(s2);
	fx_valkey_cleanup(&own);
}
END_TEST

/*
 * Creates sent together: each has its own outcome, as if alone (a replayed
 * nonce refused, a retried request answered with its agent, a bad update
 * refused before Valkey is asked, the rest made RUNNING with their
 * records); a full batch after SCRIPT FLUSH is made again; their events
 * are in the batch's order. Valkey down: every one UNAVAILABLE.
 */
START_TEST(test_creates_batch)
{
	char ids[STORE_CREATES_MAX][TSR_AGENT_ID_MAX + 1], first[TSR_AGENT_ID_MAX + 1];
	char existing[TSR_AGENT_ID_MAX + 1];
	struct store_create_item it[STORE_CREATES_MAX];
	Tessera__V1__Agent a[STORE_CREATES_MAX], once;
	uint8_t bytes[STORE_CREATES_MAX][16];
	struct store_nonce nonces[STORE_CREATES_MAX];
	struct store_update u = { .has_pid = true,
				  .pid = 4343,
				  .has_started_at_ms = true,
				  .started_at_ms = 1700000000200 };
	struct store_update bad = { .has_pid = true, .pid = -1 };
	struct fx_valkey own = { 0 };
	struct store_create *c;
	struct store *s2;
	struct tsr_err err;
	redisReply *r;

	for (int i = 0; i < STORE_CREATES_MAX; i++) {
		memset(bytes[i], 0x40 + i, sizeof(bytes[i]));
		nonces[i] = (struct store_nonce){ bytes[i], sizeof(bytes[i]), 60000 };
	}
	once = agent_new(first, "echo", "req-once", 0);
	ck_assert_int_eq(store_agent_create(st, &once, existing, sizeof(existing), &err), 0);
	ck_assert_int_eq(store_nonce_claim(st, bytes[0], sizeof(bytes[0]), 60000, &err), 0);
	for (int i = 0; i < 4; i++) {
		a[i] = agent_new(ids[i], "echo", "", 0);
		it[i] = (struct store_create_item){ .a = &a[i],
						    .nonce = &nonces[i],
						    .running = &u };
	}
	a[1].request_id = "req-once";
	it[2].running = &bad;
	ck_assert_msg(store_agent_create_send(st, it, 4, &c, &err) == 0, "%s", err.msg);
	ck_assert_ptr_nonnull(c);
	ck_assert_msg(store_agent_create_finish(st, c, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(it[0].err.code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_ptr_null(it[0].rec);
	ck_assert_int_eq(it[1].err.code, GRPC_STATUS_OK);
	ck_assert_str_eq(it[1].existing, first);
	ck_assert_ptr_null(it[1].rec);
	ck_assert_int_eq(it[2].err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_msg(it[3].err.code == GRPC_STATUS_OK, "%s", it[3].err.msg);
	ck_assert_str_eq(it[3].existing, "");
	ck_assert_ptr_nonnull(it[3].rec);
	ck_assert_int_eq(it[3].rec->state, RUNNING);
	tessera__v1__agent__free_unpacked(it[3].rec, NULL);
	ck_assert(!key_exists("EXISTS tessera:{s1}:agent:%s", ids[0]));
	ck_assert(!key_exists("EXISTS tessera:{s1}:agent:%s", ids[1]));
	ck_assert(!key_exists("EXISTS tessera:{s1}:agent:%s", ids[2]));
	ck_assert_int_eq(state_of(ids[3]), RUNNING);

	/* A full batch after SCRIPT FLUSH: each NOSCRIPT call is made again. */
	r = rawcmd("SCRIPT FLUSH");
	freeReplyObject(r);
	for (int i = 0; i < STORE_CREATES_MAX; i++) {
		memset(bytes[i], 0x80 + i, sizeof(bytes[i]));
		a[i] = agent_new(ids[i], "echo", "", 0);
		it[i] = (struct store_create_item){ .a = &a[i],
						    .nonce = &nonces[i],
						    .running = &u };
	}
	ck_assert_msg(store_agent_create_send(st, it, STORE_CREATES_MAX, &c, &err) == 0, "%s",
		      err.msg);
	ck_assert_msg(store_agent_create_finish(st, c, &err) == 0, "%s", err.msg);
	for (int i = 0; i < STORE_CREATES_MAX; i++) {
		ck_assert_msg(it[i].err.code == GRPC_STATUS_OK, "%d: %s", i, it[i].err.msg);
		ck_assert_ptr_nonnull(it[i].rec);
		tessera__v1__agent__free_unpacked(it[i].rec, NULL);
		ck_assert_int_eq(state_of(ids[i]), RUNNING);
	}
	/* spawning then running of each, in the batch's order */
	r = rawcmd("XREVRANGE " EVENTS_KEY " + - COUNT %d", 2 * STORE_CREATES_MAX);
	ck_assert_uint_eq(r->elements, 2 * STORE_CREATES_MAX);
	for (int i = 0; i < STORE_CREATES_MAX; i++) {
		size_t at = 2 * STORE_CREATES_MAX - 1 - 2 * (size_t)i;

		ck_assert_str_eq(entry_field(r->element[at]->element[1], "agent"), ids[i]);
		ck_assert_str_eq(entry_field(r->element[at]->element[1], "type"), "agent.spawning");
		ck_assert_str_eq(entry_field(r->element[at - 1]->element[1], "type"),
				 "agent.running");
	}
	freeReplyObject(r);

	/* Valkey down: nothing sent, every one UNAVAILABLE. */
	fx_valkey_start(&own);
	ck_assert_int_eq(store_open(own.addr, SPOKE, NULL, &s2, &err), 0);
	fx_valkey_stop(&own);
	for (int i = 0; i < 2; i++) {
		a[i] = agent_new(ids[i], "echo", "", 0);
		it[i] = (struct store_create_item){ .a = &a[i],
						    .nonce = &nonces[i],
						    .running = &u };
	}
	ck_assert_int_eq(store_agent_create_send(s2, it, 2, &c, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(it[0].err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(it[1].err.code, GRPC_STATUS_UNAVAILABLE);
	store_close(s2);
	fx_valkey_cleanup(&own);
}
END_TEST

/*
 * Kills' reads and marks sent together: each has its own outcome, as if
 * alone (a replayed nonce refused before anything is read, an unknown
 * agent NOT_FOUND, an ended one read, and too late to mark), every mark's
 * nonce recorded. Valkey down: every one UNAVAILABLE.
 */
START_TEST(test_kills_batch)
{
	char x[TSR_AGENT_ID_MAX + 1], y[TSR_AGENT_ID_MAX + 1], ghost[TSR_AGENT_ID_MAX + 1];
	Tessera__V1__Agent a = agent_new(x, "echo", "", 0), b = agent_new(y, "echo", "", 0);
	uint8_t bytes[4][16] = { { 0x61 }, { 0x62 }, { 0x63 }, { 0x64 } };
	struct store_nonce n[4];
	struct store_kill_item k[4];
	struct fx_valkey own = { 0 };
	Tessera__V1__Agent *got = NULL;
	struct store *s2;
	struct tsr_err err;

	for (int i = 0; i < 4; i++)
		n[i] = (struct store_nonce){ bytes[i], sizeof(bytes[i]), 60000 };
	ck_assert_int_eq(ids_new_agent_id(SPOKE, ghost, sizeof(ghost)), 0);
	create_ok(&a);
	transition_ok(x, RUNNING, NULL, NULL);
	create_ok(&b);
	transition_ok(y, RUNNING, NULL, NULL);
	transition_ok(y, COMPLETED, NULL, NULL);
	ck_assert_int_eq(store_nonce_claim(st, bytes[0], sizeof(bytes[0]), 60000, &err), 0);

	k[0] = (struct store_kill_item){ .agent_id = x, .nonce = &n[1] };
	k[1] = (struct store_kill_item){ .agent_id = x, .nonce = &n[0] };
	k[2] = (struct store_kill_item){ .agent_id = ghost, .nonce = &n[2] };
	k[3] = (struct store_kill_item){ .agent_id = y, .nonce = &n[3] };
	ck_assert_msg(store_agent_get_fresh_many(st, k, 4, &err) == 0, "%s", err.msg);
	ck_assert_msg(k[0].err.code == GRPC_STATUS_OK, "%s", k[0].err.msg);
	ck_assert_int_eq(k[0].rec->state, RUNNING);
	ck_assert(!k[0].rec->kill_requested);
	tessera__v1__agent__free_unpacked(k[0].rec, NULL);
	ck_assert_int_eq(k[1].err.code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_ptr_null(k[1].rec);
	ck_assert_int_eq(k[2].err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_int_eq(k[3].err.code, GRPC_STATUS_OK);
	ck_assert_int_eq(k[3].rec->state, COMPLETED);
	tessera__v1__agent__free_unpacked(k[3].rec, NULL);
	/* A read records no nonce. */
	ck_assert_int_eq(store_nonce_claim(st, bytes[1], sizeof(bytes[1]), 1000, &err), 0);
	ck_assert_int_eq(store_nonce_claim(st, bytes[1], sizeof(bytes[1]), 1000, &err), -1);
	bytes[1][0] = 0x65;

	k[1] = k[2];
	k[2] = k[3];
	ck_assert_msg(store_agent_mark_kill_many(st, k, 3, &err) == 0, "%s", err.msg);
	ck_assert_msg(k[0].err.code == GRPC_STATUS_OK, "%s", k[0].err.msg);
	ck_assert_int_eq(k[1].err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_int_eq(k[2].err.code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_int_eq(store_agent_get(st, x, &got, NULL), 0);
	ck_assert(got->kill_requested);
	tessera__v1__agent__free_unpacked(got, NULL);
	for (int i = 1; i < 4; i++)
		ck_assert_int_eq(store_nonce_claim(st, bytes[i], sizeof(bytes[i]), 60000, &err),
				 -1);

	fx_valkey_start(&own);
	ck_assert_int_eq(store_open(own.addr, SPOKE, NULL, &s2, &err), 0);
	fx_valkey_stop(&own);
	ck_assert_int_eq(store_agent_mark_kill_many(s2, k, 2, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(k[0].err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(k[1].err.code, GRPC_STATUS_UNAVAILABLE);
	store_close(s2);
	fx_valkey_cleanup(&own);
}
END_TEST

START_TEST(test_valkey_restart)
{
	struct fx_valkey own = { 0 };
	char id[TSR_AGENT_ID_MAX + 1];
	Tessera__V1__Agent a;
	struct store *s2;
	struct tsr_err err;
	int64_t t0;

	fx_valkey_start(&own);
	ck_assert_int_eq(store_open(own.addr, SPOKE, NULL, &s2, &err), 0);
	ck_assert_int_eq(store_ping(s2, &err), 0);

	/* Down: every call fails fast with UNAVAILABLE. */
	fx_valkey_stop(&own);
	t0 = clock_mono_ms();
	ck_assert_int_eq(store_ping(s2, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(store_ping(s2, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_lt(clock_mono_ms() - t0, 1000);

	/* Back (with an empty script cache): the next call reconnects and reloads. */
	fx_valkey_respawn(&own);
	a = agent_new(id, "echo", "", 0);
	{
		struct store *keep = st;

		st = s2;
		create_ok(&a);
		transition_ok(id, RUNNING, NULL, NULL);
		st = keep;
	}
	store_close(s2);
	fx_valkey_cleanup(&own);
}
END_TEST

START_TEST(test_open_errors)
{
	struct store *s2 = NULL;
	struct store_auth auth;
	struct tsr_err err;

	ck_assert_int_eq(store_open("unix:/nonexistent/valkey.sock", SPOKE, NULL, &s2, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(store_open("unix:relative.sock", SPOKE, NULL, &s2, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(store_open("localhost", SPOKE, NULL, &s2, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(store_open("localhost:99999", SPOKE, NULL, &s2, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(store_open(server.addr, "bad spoke", NULL, &s2, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	/* Credentials that do not end inside their arrays. */
	memset(&auth, 'x', sizeof(auth));
	ck_assert_int_eq(store_open(server.addr, SPOKE, &auth, &s2, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_ptr_null(s2);
	ck_assert_int_eq(store_ping(st, &err), 0);
}
END_TEST

/* A refusal by Valkey: UNAVAILABLE, naming it, saying why, never quoting the password. */
static void auth_refused(const char *addr, const struct store_auth *auth, const char *says)
{
	struct store *s2 = NULL;
	struct tsr_err err;

	ck_assert_int_eq(store_open(addr, SPOKE, auth, &s2, &err), -1);
	ck_assert_ptr_null(s2);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_msg(strstr(err.msg, says) != NULL, "\"%s\" lacks \"%s\"", err.msg, says);
	ck_assert_msg(strstr(err.msg, addr) != NULL, "\"%s\" lacks \"%s\"", err.msg, addr);
	if (auth != NULL)
		ck_assert_msg(strstr(err.msg, auth->password) == NULL, "%s", err.msg);
}

/* A spawn and its start through s2, which must be usable. */
static void auth_write(struct store *s2)
{
	struct store *keep = st;
	char id[TSR_AGENT_ID_MAX + 1];
	Tessera__V1__Agent a = agent_new(id, "echo", "", 0);

	st = s2;
	create_ok(&a);
	transition_ok(id, RUNNING, NULL, NULL);
	st = keep;
}

/* The ACL user "tessera" on v's server, and the default user off. */
static void acl_on(const struct fx_valkey *v)
{
	valkey_set(v, "ACL SETUSER tessera on >right-pw ~* &* +@all");
	valkey_set(v, "ACL SETUSER default off");
}

/* An ACL user (the default user off): AUTH user password, on every connect. */
START_TEST(test_auth_acl)
{
	struct fx_valkey own = { 0 };
	struct store_auth auth = { .user = "tessera", .password = "right-pw" };
	struct store *s2;
	struct tsr_err err;

	fx_valkey_start(&own);
	acl_on(&own);
	ck_assert_msg(store_open(own.addr, SPOKE, &auth, &s2, &err) == 0, "%s", err.msg);
	auth_write(s2);
	/* A restarted Valkey: the reconnect authenticates again. */
	fx_valkey_stop(&own);
	fx_valkey_respawn(&own);
	acl_on(&own);
	auth_write(s2);
	store_close(s2);

	auth_refused(own.addr, NULL, "SCRIPT LOAD: NOAUTH");
	snprintf(auth.password, sizeof(auth.password), "wrong-pw");
	auth_refused(own.addr, &auth, "authentication refused: WRONGPASS");
	snprintf(auth.user, sizeof(auth.user), "nobody");
	snprintf(auth.password, sizeof(auth.password), "right-pw");
	auth_refused(own.addr, &auth, "authentication refused: WRONGPASS");
	/* The password alone is the default user's, and that one is off. */
	auth.user[0] = '\0';
	auth_refused(own.addr, &auth, "authentication refused");
	fx_valkey_cleanup(&own);
}
END_TEST

/* requirepass: AUTH password alone. */
START_TEST(test_auth_requirepass)
{
	struct fx_valkey own = { 0 };
	struct store_auth auth = { .password = "only-pw" };
	struct store *s2;
	struct tsr_err err;

	fx_valkey_start(&own);
	valkey_set(&own, "CONFIG SET requirepass only-pw");
	ck_assert_msg(store_open(own.addr, SPOKE, &auth, &s2, &err) == 0, "%s", err.msg);
	auth_write(s2);
	ck_assert_int_eq(store_ping(s2, &err), 0);
	store_close(s2);
	auth_refused(own.addr, NULL, "SCRIPT LOAD: NOAUTH");
	snprintf(auth.password, sizeof(auth.password), "not-it");
	auth_refused(own.addr, &auth, "authentication refused: WRONGPASS");
	fx_valkey_cleanup(&own);
}
END_TEST

/* A nonce is claimed once, lives for its lifetime, and is refused after. */
START_TEST(test_nonce)
{
	const uint8_t nonce[4] = { 0x00, 0x1f, 0xa0, 0xff };
	struct tsr_err err;
	redisReply *r;

	ck_assert_int_eq(store_nonce_claim(st, nonce, sizeof(nonce), 60000, &err), 0);
	ck_assert_int_eq(store_nonce_claim(st, nonce, sizeof(nonce), 60000, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_str_eq(err.msg, "replayed command");
	r = rawcmd("PTTL tessera:{s1}:nonce:001fa0ff");
	ck_assert_int_gt(r->integer, 0);
	ck_assert_int_le(r->integer, 60000);
	freeReplyObject(r);
	ck_assert_int_eq(store_nonce_claim(st, nonce + 1, 3, 60000, &err), 0);
	ck_assert_int_eq(store_nonce_claim(st, nonce, 0, 60000, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(store_nonce_claim(st, nonce, sizeof(nonce), 0, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(
		store_nonce_claim(st, nonce, sizeof(nonce), STORE_NONCE_TTL_MAX_MS + 1, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
}
END_TEST

/* The draining flag: off by default, set and cleared durably, refused when forged. */
START_TEST(test_drain)
{
	bool draining = true;
	struct tsr_err err;
	redisReply *r;

	ck_assert_int_eq(store_drain_get(st, &draining, &err), 0);
	ck_assert(!draining);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(store_drain_set(st, true, &err), 0);
		ck_assert_int_eq(store_drain_get(st, &draining, &err), 0);
		ck_assert(draining);
	}
	r = rawcmd("GET tessera:{s1}:draining");
	ck_assert_str_eq(r->str, "1");
	freeReplyObject(r);
	/* Another store of the same spoke, as after a restart, reads it too. */
	store_close(st);
	ck_assert_int_eq(store_open(server.addr, SPOKE, NULL, &st, &err), 0);
	draining = false;
	ck_assert_int_eq(store_drain_get(st, &draining, &err), 0);
	ck_assert(draining);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(store_drain_set(st, false, &err), 0);
		ck_assert_int_eq(store_drain_get(st, &draining, &err), 0);
		ck_assert(!draining);
	}
	r = rawcmd("EXISTS tessera:{s1}:draining");
	ck_assert_int_eq(r->integer, 0);
	freeReplyObject(r);

	/* Anything but what the store writes is refused, not taken for either. */
	freeReplyObject(rawcmd("SET tessera:{s1}:draining yes"));
	ck_assert_int_eq(store_drain_get(st, &draining, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
	freeReplyObject(rawcmd("DEL tessera:{s1}:draining"));
	freeReplyObject(rawcmd("HSET tessera:{s1}:draining k v"));
	ck_assert_int_eq(store_drain_get(st, &draining, &err), -1);
	ck_assert_int_ne(err.code, GRPC_STATUS_OK);

	/* Valkey away: UNAVAILABLE. */
	fx_valkey_stop(&server);
	ck_assert_int_eq(store_drain_set(st, true, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
}
END_TEST

/* The agent a request id maps to, as a draining spoke looks it up. */
START_TEST(test_request_agent)
{
	char id[TSR_AGENT_ID_MAX + 1], found[TSR_AGENT_ID_MAX + 1], small[8];
	Tessera__V1__Agent a = agent_new(id, "echo", "req-3", 0);
	struct tsr_err err;

	create_ok(&a);
	ck_assert_int_eq(store_request_agent(st, "req-3", found, sizeof(found), &err), 0);
	ck_assert_str_eq(found, id);
	ck_assert_int_eq(store_request_agent(st, "req-4", found, sizeof(found), &err), 0);
	ck_assert_str_eq(found, "");
	ck_assert_int_eq(store_request_agent(st, "not a name", found, sizeof(found), &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(store_request_agent(st, "req-3", small, sizeof(small), &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
	/* A request map entry that is no agent id is refused. */
	freeReplyObject(rawcmd("HSET tessera:{s1}:requests req-5 garbage"));
	ck_assert_int_eq(store_request_agent(st, "req-5", found, sizeof(found), &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
}
END_TEST

int test_suite(SRunner *sr)
{
	const char *valkey = getenv("VALKEY_SERVER");
	TCase *tc;

	if (valkey == NULL || access(valkey, X_OK) != 0) {
		fprintf(stderr, "VALKEY_SERVER not set to a valkey-server: skipped\n");
		return 77;
	}
	tc = check_suite(sr, "store",
			 CHECK_TESTS(test_create_get, test_create_idempotent, test_transition_event,
				     test_signal_and_mark_kill, test_mark_kill_nonce,
				     test_illegal_transition, test_create_running, test_not_found,
				     test_list, test_list_bounded, test_list_bytes, test_prune,
				     test_labels, test_list_indexes, test_reindex, test_events,
				     test_events_retention, test_script_flush,
				     test_transitions_batch, test_transitions_down,
				     test_creates_batch, test_kills_batch, test_valkey_restart,
				     test_open_errors, test_auth_acl, test_auth_requirepass,
				     test_nonce, test_drain, test_request_agent));
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
#ifndef NDEBUG
	tcase_add_loop_test_raise_signal(tc, test_create_contract, SIGABRT, 0, 4);
#endif
	return 0;
}
