/*
 * event_stream: one thread per hub stream. The thread owns its store
 * connection and the call's handler reference; it ends the call with
 * UNAVAILABLE when Valkey goes away or the spoke stops (the hub retries
 * from its cursor), with CANCELLED when the hub hangs up, and with
 * OUT_OF_RANGE when events after its position have been trimmed off, at
 * the first read or later should the hub fall that far behind: resuming
 * cannot help, so the hub gives up on that cursor. Its first message is
 * the signed start (TSR_EVENT_STREAM_START). A stream remembers the hub
 * key that opened it: once SIGHUP has removed that key from trust-hub,
 * the thread ends the call PERMISSION_DENIED at its next look at its
 * flags, as the key's new commands are refused.
 */
#include "event_stream.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "envelope.h"
#include "log.h"
#include "spoke.h"
#include "spoke_metrics.h"
#include "stream_threads.h"
#include "tessera/v1/spoke.pb-c.h"

#define EVENT_STREAM_BLOCK_MS 1000 /* how often a reader looks at its flags */
#define EVENT_STREAM_BATCH 100
#define EVENT_STREAM_QUEUE_HIGH 256 /* pause reading while this many wait */
#define EVENT_STREAM_POSITION_TEXT 40

struct event_stream { /* owned by its thread once started */
	struct spoke *sp;
	struct rpc_call *call; /* borrowed from the thread */
	char position[STORE_POSITION_MAX];
	bool from_start;
	char command_id[TSR_NAME_MAX + 1]; /* the command that opened it */
};

/* A stream position as Valkey writes it: "<ms>-<seq>", both decimal. */
static bool event_position_valid(const char *p)
{
	size_t len = strnlen(p, EVENT_STREAM_POSITION_TEXT + 1), dash;

	if (len == 0 || len > EVENT_STREAM_POSITION_TEXT)
		return false;
	dash = strspn(p, "0123456789");
	if (dash == 0 || p[dash] != '-' || p[dash + 1] == '\0')
		return false;
	return strspn(p + dash + 1, "0123456789") == len - dash - 1;
}

static int event_stream_send(struct event_stream *s, const Tessera__V1__Event *ev,
			     struct tsr_err *err)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	if (envelope_event_seal(&s->sp->key, ev, &buf, &len, err) != 0)
		return -1;
	rc = rpc_call_send(s->call, buf, len);
	free(buf);
	if (rc != 0)
		return tsr_err_set(err, GRPC_STATUS_CANCELLED, "stream closed");
	return 0;
}

/* The first message: where the stream starts, bound to the command that opened it. */
static int event_stream_send_start(struct event_stream *s, struct tsr_err *err)
{
	Tessera__V1__Event ev = TESSERA__V1__EVENT__INIT;

	ev.type = (char *)TSR_EVENT_STREAM_START;
	ev.spoke_id = s->sp->cfg.id;
	ev.position = s->position;
	ev.command_id = s->command_id;
	ev.time_ms = clock_wall_ms();
	return event_stream_send(s, &ev, err);
}

static void event_stream_run(struct stream_thread *t, void *data, struct tsr_err *err)
{
	struct event_stream *s = data;
	struct spoke *sp = s->sp;
	struct store *st = NULL;
	Tessera__V1__Event **events = NULL;
	size_t n = 0;

	s->call = stream_thread_call(t);
	spoke_metrics_stream(sp->metrics, 1);
	if (store_open(sp->cfg.valkey, sp->cfg.id, &sp->cfg.valkey_auth, &st, err) != 0)
		goto out;
	if (s->position[0] == '\0') {
		if (s->from_start)
			snprintf(s->position, sizeof(s->position), "0-0");
		else if (store_events_last(st, s->position, sizeof(s->position), err) != 0)
			goto out;
	}
	/* The hub counts the stream as subscribed from here on, at this position. */
	if (event_stream_send_start(s, err) != 0)
		goto out;
	while (!stream_thread_should_stop(t)) {
		if (rpc_call_queued(s->call) >= EVENT_STREAM_QUEUE_HIGH) {
			usleep(20 * 1000);
			continue;
		}
		if (store_events_read(st, s->position, EVENT_STREAM_BLOCK_MS, EVENT_STREAM_BATCH,
				      &events, &n, err) != 0)
			goto out;
		/* Not one event more once the key is revoked. */
		for (size_t i = 0; i < n && !stream_thread_revoked(t); i++) {
			if (event_stream_send(s, events[i], err) != 0)
				break;
			spoke_metrics_streamed(sp->metrics, 1);
			snprintf(s->position, sizeof(s->position), "%s", events[i]->position);
		}
		store_events_free(events, n);
		events = NULL;
		if (err->code != GRPC_STATUS_OK)
			goto out;
	}
out:
	spoke_metrics_stream(sp->metrics, -1);
	if (st != NULL)
		store_close(st);
	if (err->code == GRPC_STATUS_OUT_OF_RANGE)
		log_info("event stream ended: %s", err->msg);
}

static const struct stream_thread_kind event_stream_kind = {
	.run = event_stream_run,
	.free = free,
	.ended = GRPC_STATUS_CANCELLED,
};

/* *cmd: the opened EVENTS_STREAM command; *out: its request. Both freed by the caller. */
static int event_stream_parse(struct stream_threads *ts, const uint8_t *req, size_t len,
			      Tessera__V1__Command **cmd, Tessera__V1__StreamEventsRequest **out,
			      struct tsr_err *err)
{
	if (stream_threads_open_command(ts, req, len,
					TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_EVENTS_STREAM, cmd,
					err) != 0)
		return -1;
	*out = tessera__v1__stream_events_request__unpack(NULL, (*cmd)->payload.len,
							  (*cmd)->payload.data);
	if (*out == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "malformed stream request");
	if ((*out)->cursor[0] != '\0' && !event_position_valid((*out)->cursor))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "malformed cursor");
	return 0;
}

/* Starts a stream thread for the opened command. */
static int event_stream_start(struct stream_threads *ts, struct rpc_call *call,
			      const Tessera__V1__Command *cmd,
			      const Tessera__V1__StreamEventsRequest *sreq, struct tsr_err *err)
{
	struct event_stream *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	s->sp = stream_threads_spoke(ts);
	s->from_start = sreq->from_start;
	snprintf(s->position, sizeof(s->position), "%s", sreq->cursor);
	/* ids_valid_name: the command id fits. */
	snprintf(s->command_id, sizeof(s->command_id), "%s", cmd->command_id);
	if (stream_threads_start(ts, call, cmd, &event_stream_kind, s, err) != 0) {
		free(s);
		return -1;
	}
	return 0;
}

void event_stream_handle(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	struct stream_threads *ts = ctx;
	Tessera__V1__Command *cmd = NULL;
	Tessera__V1__StreamEventsRequest *sreq = NULL;
	struct tsr_err err;

	tsr_err_clear(&err);
	if (event_stream_parse(ts, req, len, &cmd, &sreq, &err) != 0) {
		log_warn("refused an event stream: %s", err.msg);
		rpc_call_fail(call, &err);
		goto out;
	}
	if (event_stream_start(ts, call, cmd, sreq, &err) != 0)
		rpc_call_fail(call, &err);
out:
	if (sreq != NULL)
		tessera__v1__stream_events_request__free_unpacked(sreq, NULL);
	if (cmd != NULL)
		tessera__v1__command__free_unpacked(cmd, NULL);
}
