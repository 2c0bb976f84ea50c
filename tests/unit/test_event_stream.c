/*
 * test_event_stream: tessera.v1.Spoke/StreamEvents over real gRPC on
 * loopback, on a hand-built spoke (spoke_fixture.h). Events arrive signed
 * by the spoke, in stream order, after one signed start that names the
 * stream's position and its command: from the start, after a cursor with
 * no gap and no repeat, or from now, and live as they are written. A
 * stream ends OUT_OF_RANGE when its cursor's events were trimmed off,
 * UNAVAILABLE when Valkey goes or the spoke stops, PERMISSION_DENIED when
 * the key that opened it is no longer trusted (others go on); a backlog of
 * thousands comes whole. Refused: malformed cursors and payloads, other
 * command types, untrusted signers, replays, and more than
 * TSR_SPOKE_STREAMS_MAX streams at once.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "clock.h"
#include "envelope.h"
#include "event_stream.h"
#include "ids.h"
#include "spoke_fixture.h"
#include "stream_threads.h"
#include "tessera/v1/spoke.pb-c.h"

#define SEEN_MAX 200

static struct fx fx;
static struct fx_server server;
static struct stream_threads *streams;
static struct store *writer;  /* the test thread's own connection */
static struct sign_key other; /* a second hub the spoke trusts */

struct watch {
	struct rpc_client_call *call;
	bool started, ended;
	char start[STORE_POSITION_MAX]; /* the position its signed start names */
	grpc_status_code code;
	char details[256];
	size_t n; /* events seen, each after the one before */
	unsigned long long last_ms, last_seq;
	char agent[SEEN_MAX][TSR_AGENT_ID_MAX + 1]; /* of the first SEEN_MAX */
	char position[SEEN_MAX][STORE_POSITION_MAX];
};

static void setup(void)
{
	struct tsr_err err;

	fx_up(&fx, NULL);
	ck_assert_int_eq(sign_keygen(&other, &err), 0);
	ck_assert_int_eq(sign_keyring_add(&fx.sp.cfg.trusted, &other.pub, &err), 0);
	ck_assert_int_eq(stream_threads_new(&fx.sp, &streams, &err), 0);
	fx_serve(&server, TSR_METHOD_STREAM_EVENTS, event_stream_handle, streams);
	ck_assert_int_eq(store_open(fx.valkey.addr, FX_SPOKE, NULL, &writer, &err), 0);
}

static void teardown(void)
{
	stream_threads_free(streams);
	streams = NULL;
	fx_serve_stop(&server);
	store_close(writer);
	sign_key_wipe(&other);
	fx_down(&fx);
}

/* The first message, and only that one, is the start: its position and command. */
static bool on_start(struct watch *w, const Tessera__V1__Event *ev)
{
	if (w->started) {
		ck_assert_str_ne(ev->type, TSR_EVENT_STREAM_START);
		return false;
	}
	ck_assert_str_eq(ev->type, TSR_EVENT_STREAM_START);
	ck_assert_str_eq(ev->command_id, "cmd-test"); /* fx_command's */
	ck_assert_str_eq(ev->agent_id, "");
	snprintf(w->start, sizeof(w->start), "%s", ev->position);
	w->started = true;
	return true;
}

static void on_message(void *arg, const uint8_t *msg, size_t len)
{
	struct watch *w = arg;
	Tessera__V1__Event *ev = NULL;
	struct tsr_err err;

	unsigned long long ms, seq;

	ck_assert_msg(envelope_event_open(msg, len, &fx.sp.key.pub, FX_SPOKE, &ev, &err) == 0, "%s",
		      err.msg);
	if (on_start(w, ev)) {
		tessera__v1__event__free_unpacked(ev, NULL);
		return;
	}
	ck_assert_str_eq(ev->type, "agent.spawning");
	ck_assert_int_eq(sscanf(ev->position, "%llu-%llu", &ms, &seq), 2);
	ck_assert_msg(ms > w->last_ms || (ms == w->last_ms && seq > w->last_seq), "%s out of order",
		      ev->position);
	w->last_ms = ms;
	w->last_seq = seq;
	if (w->n < SEEN_MAX) {
		snprintf(w->agent[w->n], sizeof(w->agent[0]), "%s", ev->agent_id);
		snprintf(w->position[w->n], sizeof(w->position[0]), "%s", ev->position);
	}
	w->n++;
	tessera__v1__event__free_unpacked(ev, NULL);
}

static void on_end(void *arg, grpc_status_code code, const char *details)
{
	struct watch *w = arg;

	w->code = code;
	snprintf(w->details, sizeof(w->details), "%s", details != NULL ? details : "");
	w->ended = true;
	w->call = NULL;
}

static const struct rpc_stream_cbs cbs = {
	.on_message = on_message,
	.on_end = on_end,
};

/* Opens a stream with a command of type, signed by key, of payload. */
static void open_raw(struct watch *w, const struct sign_key *key, Tessera__V1__CommandType type,
		     const ProtobufCMessage *payload)
{
	struct rpc_client_opts opts = { .timeout_ms = 0 };
	uint8_t *cmd = NULL;
	size_t len = 0;
	struct tsr_err err;

	memset(w, 0, sizeof(*w));
	fx_command(key, type, payload, FX_SPOKE, &cmd, &len);
	ck_assert_int_eq(rpc_client_stream(server.cli, server.channel, TSR_METHOD_STREAM_EVENTS,
					   cmd, len, &opts, &cbs, w, &w->call, &err),
			 0);
	free(cmd);
}

static void open_stream(struct watch *w, const char *cursor, bool from_start)
{
	Tessera__V1__StreamEventsRequest req = TESSERA__V1__STREAM_EVENTS_REQUEST__INIT;

	req.cursor = (char *)cursor;
	req.from_start = from_start;
	open_raw(w, &fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_EVENTS_STREAM, &req.base);
}

static bool subscribed(void *arg)
{
	struct watch *w = arg;

	return w->started || w->ended;
}

static bool ended(void *arg)
{
	return ((struct watch *)arg)->ended;
}

static size_t want;

static bool has_want(void *arg)
{
	struct watch *w = arg;

	return w->n >= want || w->ended;
}

static void wait_events(struct watch *w, size_t n)
{
	want = n;
	fx_client_run(&server, has_want, w);
	ck_assert_msg(w->n >= n, "%zu events, not %zu (ended %d: %s)", w->n, n, w->ended,
		      w->details);
}

/* A new agent (its "agent.spawning" event), through the writer; its id into id. */
static void create(char *id)
{
	Tessera__V1__Agent a = TESSERA__V1__AGENT__INIT;
	char existing[TSR_AGENT_ID_MAX + 1];
	struct tsr_err err;

	ck_assert_int_eq(ids_new_agent_id(FX_SPOKE, id, TSR_AGENT_ID_MAX + 1), 0);
	a.id = id;
	a.spoke_id = FX_SPOKE;
	a.type = "t";
	ck_assert_msg(store_agent_create(writer, &a, existing, sizeof(existing), &err) == 0, "%s",
		      err.msg);
}

static void end_stream(struct watch *w)
{
	if (w->call != NULL)
		rpc_client_cancel(w->call);
	fx_client_run(&server, ended, w);
}

START_TEST(test_from_start_and_live)
{
	char ids[4][TSR_AGENT_ID_MAX + 1];
	struct watch *w = calloc(1, sizeof(*w));

	ck_assert_ptr_nonnull(w);
	for (int i = 0; i < 3; i++)
		create(ids[i]);
	open_stream(w, "", true);
	wait_events(w, 3);
	ck_assert_str_eq(w->start, "0-0");
	for (int i = 0; i < 3; i++)
		ck_assert_str_eq(w->agent[i], ids[i]);
	create(ids[3]);
	wait_events(w, 4);
	ck_assert_str_eq(w->agent[3], ids[3]);
	ck_assert_uint_eq(w->n, 4);
	end_stream(w);
	ck_assert_int_eq(w->code, GRPC_STATUS_CANCELLED);
	free(w);
}
END_TEST

/* After a cursor: exactly the events after it; without one, from now. */
START_TEST(test_cursor_and_now)
{
	char ids[5][TSR_AGENT_ID_MAX + 1], cursor[STORE_POSITION_MAX];
	struct watch *w = calloc(1, sizeof(*w)), *now = calloc(1, sizeof(*now));
	struct tsr_err err;

	ck_assert_ptr_nonnull(w);
	ck_assert_ptr_nonnull(now);
	create(ids[0]);
	create(ids[1]);
	ck_assert_int_eq(store_events_last(writer, cursor, sizeof(cursor), &err), 0);
	create(ids[2]);
	open_stream(w, cursor, false);
	wait_events(w, 1);
	ck_assert_str_eq(w->start, cursor);
	ck_assert_str_eq(w->agent[0], ids[2]);

	open_stream(now, "", false);
	fx_client_run(&server, subscribed, now);
	ck_assert(now->started);
	ck_assert_str_eq(now->start, w->position[0]);
	create(ids[3]);
	wait_events(now, 1);
	ck_assert_str_eq(now->agent[0], ids[3]);
	wait_events(w, 2);
	ck_assert_str_eq(w->agent[1], ids[3]);
	ck_assert_uint_eq(now->n, 1);
	end_stream(w);
	end_stream(now);
	free(w);
	free(now);
}
END_TEST

START_TEST(test_refused)
{
	static const char *const bad[] = { "12",
					   "-1",
					   "1-",
					   "a-1",
					   "1-x",
					   "1--1",
					   "12345678901234567890123456789012345678901-1" };
	Tessera__V1__StreamEventsRequest req = TESSERA__V1__STREAM_EVENTS_REQUEST__INIT;
	Tessera__V1__SpokeStatus wrong = TESSERA__V1__SPOKE_STATUS__INIT;
	struct watch *w = calloc(1, sizeof(*w));
	struct sign_key stranger;
	uint8_t *cmd = NULL;
	size_t len = 0;
	struct rpc_client_opts opts = { .timeout_ms = 0 };
	struct tsr_err err;

	ck_assert_ptr_nonnull(w);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		open_stream(w, bad[i], false);
		fx_client_run(&server, ended, w);
		ck_assert_msg(w->code == GRPC_STATUS_INVALID_ARGUMENT, "cursor %s: %d", bad[i],
			      w->code);
		ck_assert(!w->started);
	}
	open_raw(w, &fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_LIST, &req.base);
	fx_client_run(&server, ended, w);
	ck_assert_int_eq(w->code, GRPC_STATUS_INVALID_ARGUMENT);
	/* A varint where the cursor's string goes. */
	wrong.running_agents = 3;
	open_raw(w, &fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_EVENTS_STREAM, &wrong.base);
	fx_client_run(&server, ended, w);
	ck_assert_int_eq(w->code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(sign_keygen(&stranger, &err), 0);
	open_raw(w, &stranger, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_EVENTS_STREAM, &req.base);
	fx_client_run(&server, ended, w);
	ck_assert_int_eq(w->code, GRPC_STATUS_PERMISSION_DENIED);
	sign_key_wipe(&stranger);

	/* The same bytes twice: the second is a replay. */
	fx_command(&fx.hub, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_EVENTS_STREAM, &req.base,
		   FX_SPOKE, &cmd, &len);
	memset(w, 0, sizeof(*w));
	ck_assert_int_eq(rpc_client_stream(server.cli, server.channel, TSR_METHOD_STREAM_EVENTS,
					   cmd, len, &opts, &cbs, w, &w->call, &err),
			 0);
	fx_client_run(&server, subscribed, w);
	ck_assert(w->started);
	end_stream(w);
	memset(w, 0, sizeof(*w));
	ck_assert_int_eq(rpc_client_stream(server.cli, server.channel, TSR_METHOD_STREAM_EVENTS,
					   cmd, len, &opts, &cbs, w, &w->call, &err),
			 0);
	fx_client_run(&server, ended, w);
	ck_assert_int_eq(w->code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_ptr_nonnull(strstr(w->details, "replayed"));
	free(cmd);
	free(w);
}
END_TEST

/* A cursor older than what the stream keeps: resuming cannot help. */
START_TEST(test_trimmed)
{
	char id[TSR_AGENT_ID_MAX + 1];
	struct watch *w = calloc(1, sizeof(*w));
	struct tsr_err err;

	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(store_events_keep(writer, STORE_EVENTS_KEPT_MIN, &err), 0);
	for (int i = 0; i < STORE_EVENTS_KEPT_MIN + 20; i++)
		create(id);
	open_stream(w, "1-0", false);
	fx_client_run(&server, ended, w);
	ck_assert_int_eq(w->code, GRPC_STATUS_OUT_OF_RANGE);
	ck_assert_uint_eq(w->n, 0);
	free(w);
}
END_TEST

START_TEST(test_valkey_down)
{
	struct watch *w = calloc(1, sizeof(*w));

	ck_assert_ptr_nonnull(w);
	open_stream(w, "", true);
	fx_client_run(&server, subscribed, w);
	ck_assert(w->started);
	fx_valkey_stop(&fx.valkey);
	fx_client_run(&server, ended, w);
	ck_assert_int_eq(w->code, GRPC_STATUS_UNAVAILABLE);
	free(w);
}
END_TEST

START_TEST(test_spoke_stops)
{
	struct watch *w = calloc(1, sizeof(*w));

	ck_assert_ptr_nonnull(w);
	open_stream(w, "", false);
	fx_client_run(&server, subscribed, w);
	stream_threads_free(streams);
	streams = NULL;
	fx_client_run(&server, ended, w);
	ck_assert_int_eq(w->code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_ptr_nonnull(strstr(w->details, "shutting down"));
	free(w);
}
END_TEST

/*
 * A backlog of many reads' worth, sent while the hub's loop does not run:
 * once it runs, every event comes once, in order, and live ones follow.
 */
START_TEST(test_backlog)
{
	const size_t total = 3000;
	char first[TSR_AGENT_ID_MAX + 1], id[TSR_AGENT_ID_MAX + 1];
	struct watch *w = calloc(1, sizeof(*w));

	ck_assert_ptr_nonnull(w);
	create(first);
	for (size_t i = 1; i < total; i++)
		create(id);
	open_stream(w, "", true);
	fx_client_run(&server, subscribed, w);
	ck_assert(w->started);
	/* Nothing is taken off the client's queue meanwhile. */
	sleep(1);
	wait_events(w, total);
	ck_assert_str_eq(w->agent[0], first);
	/* And what comes live still follows. */
	create(id);
	wait_events(w, total + 1);
	ck_assert_uint_eq(w->n, total + 1);
	end_stream(w);
	free(w);
}
END_TEST

static struct watch *all;

/* Every stream of all[] (TSR_SPOKE_STREAMS_MAX) has started, or ended. */
static bool all_subscribed(void *arg)
{
	(void)arg;
	for (int i = 0; i < TSR_SPOKE_STREAMS_MAX; i++)
		if (!subscribed(&all[i]))
			return false;
	return true;
}

static bool all_ended(void *arg)
{
	(void)arg;
	for (int i = 0; i < TSR_SPOKE_STREAMS_MAX; i++)
		if (!all[i].ended)
			return false;
	return true;
}

/*
 * Every slot taken: one more is refused; a slot freed is used again. The
 * streams are opened, and ended, all at once: one by one, the client
 * loop's pace would make this test the slowest of all.
 */
START_TEST(test_too_many)
{
	struct watch *w = calloc(TSR_SPOKE_STREAMS_MAX + 1, sizeof(*w));
	int64_t deadline;

	ck_assert_ptr_nonnull(w);
	all = w;
	for (int i = 0; i < TSR_SPOKE_STREAMS_MAX; i++)
		open_stream(&w[i], "", false);
	fx_client_run(&server, all_subscribed, NULL);
	for (int i = 0; i < TSR_SPOKE_STREAMS_MAX; i++)
		ck_assert_msg(w[i].started, "stream %d: %s", i, w[i].details);
	open_stream(&w[TSR_SPOKE_STREAMS_MAX], "", false);
	fx_client_run(&server, ended, &w[TSR_SPOKE_STREAMS_MAX]);
	ck_assert_int_eq(w[TSR_SPOKE_STREAMS_MAX].code, GRPC_STATUS_RESOURCE_EXHAUSTED);
	end_stream(&w[0]);
	/* Its thread sees the cancel within one blocking read; refused until then. */
	deadline = clock_mono_ms() + FX_WAIT_MS;
	for (;;) {
		open_stream(&w[TSR_SPOKE_STREAMS_MAX], "", false);
		fx_client_run(&server, subscribed, &w[TSR_SPOKE_STREAMS_MAX]);
		if (w[TSR_SPOKE_STREAMS_MAX].started)
			break;
		ck_assert_int_eq(w[TSR_SPOKE_STREAMS_MAX].code, GRPC_STATUS_RESOURCE_EXHAUSTED);
		ck_assert_msg(clock_mono_ms() < deadline, "the freed slot was never used again");
		usleep(100 * 1000);
	}
	all = w + 1;
	for (int i = 0; i < TSR_SPOKE_STREAMS_MAX; i++)
		if (all[i].call != NULL)
			rpc_client_cancel(all[i].call);
	fx_client_run(&server, all_ended, NULL);
	free(w);
}
END_TEST

/*
 * A key SIGHUP no longer trusts ends the streams it opened, within one
 * blocking read and before another event; a still trusted key's go on.
 */
START_TEST(test_revoked)
{
	Tessera__V1__StreamEventsRequest req = TESSERA__V1__STREAM_EVENTS_REQUEST__INIT;
	struct watch *gone = calloc(1, sizeof(*gone)), *kept = calloc(1, sizeof(*kept));
	char id[TSR_AGENT_ID_MAX + 1];
	struct sign_keyring ring = { 0 };
	struct tsr_err err;
	int64_t t0;

	ck_assert_ptr_nonnull(gone);
	ck_assert_ptr_nonnull(kept);
	open_stream(gone, "", false);
	fx_client_run(&server, subscribed, gone);
	open_raw(kept, &other, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_EVENTS_STREAM, &req.base);
	fx_client_run(&server, subscribed, kept);
	ck_assert(gone->started && kept->started);
	/* The reloaded keys: other's alone. */
	ck_assert_int_eq(sign_keyring_add(&ring, &other.pub, &err), 0);
	t0 = clock_mono_ms();
	ck_assert_uint_eq(stream_threads_revoke(streams, &ring), 1);
	ck_assert_uint_eq(stream_threads_revoke(streams, &ring), 0);
	fx_client_run(&server, ended, gone);
	ck_assert_int_eq(gone->code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_ptr_nonnull(strstr(gone->details, "no longer trusted"));
	ck_assert_int_lt(clock_mono_ms() - t0, 2000);
	create(id);
	wait_events(kept, 1);
	ck_assert_str_eq(kept->agent[0], id);
	ck_assert_uint_eq(gone->n, 0);
	end_stream(kept);
	free(gone);
	free(kept);
}
END_TEST

int test_suite(SRunner *sr)
{
	int rc = fx_check_env();
	TCase *tc;

	if (rc != 0)
		return rc;
	tc = check_suite(sr, "event_stream",
			 CHECK_TESTS(test_from_start_and_live, test_cursor_and_now, test_refused,
				     test_trimmed, test_valkey_down, test_spoke_stops, test_backlog,
				     test_too_many, test_revoked));
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 40);
	return 0;
}
