/*
 * output_stream: one agent's output to a hub, on a stream thread with its
 * own Valkey connection (for the agent's state) and its own descriptor of
 * the output file, which stays readable after the spoke removes the file
 * at the agent's end.
 */
#include "output_stream.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_commands.h"
#include "agent_files.h"
#include "clock.h"
#include "envelope.h"
#include "lifecycle.h"
#include "log.h"
#include "protocol.h"
#include "spoke.h"
#include "store.h"
#include "stream_threads.h"

#define OUTPUT_POLL_MS 20    /* how often a follower looks for more output */
#define OUTPUT_STATE_EVERY 5 /* polls between looks at the agent's state */
#define OUTPUT_QUEUE_HIGH 8  /* chunks waiting for the hub before reading pauses */

struct output_stream { /* owned by its thread once started */
	struct spoke *sp;
	struct rpc_call *call; /* borrowed from the thread */
	struct store *st;
	Tessera__V1__Agent *agent; /* its record as last read */
	int fd;			   /* its output file; -1: not open (yet) */
	char agent_id[TSR_AGENT_ID_MAX + 1];
	char command_id[TSR_NAME_MAX + 1]; /* the command that opened it */
	int64_t pos;			   /* the next byte to send */
	int64_t skipped;		   /* not held, to report with the next chunk */
	bool from_start, follow;
	unsigned tail_lines;
	char buf[TSR_OUTPUT_CHUNK_MAX];
};

static void output_stream_free(void *data)
{
	struct output_stream *o = data;

	if (o->fd >= 0)
		close(o->fd);
	if (o->agent != NULL)
		tessera__v1__agent__free_unpacked(o->agent, NULL);
	if (o->st != NULL)
		store_close(o->st);
	free(o);
}

/* One signed message: len bytes of buf at offset, and with end the record. */
static int output_send(struct output_stream *o, int64_t offset, size_t len, bool end,
		       struct tsr_err *err)
{
	Tessera__V1__OutputMessage m = TESSERA__V1__OUTPUT_MESSAGE__INIT;
	Tessera__V1__OutputChunk c = TESSERA__V1__OUTPUT_CHUNK__INIT;
	Tessera__V1__Agent *a = o->agent;
	char *task = a->task, *output = a->output;
	uint8_t *buf = NULL;
	size_t buflen = 0;
	int rc;

	m.command_id = o->command_id;
	m.spoke_id = o->sp->cfg.id;
	m.chunk = &c;
	c.offset = offset;
	c.data.data = (uint8_t *)o->buf;
	c.data.len = len;
	c.skipped = o->skipped;
	c.end = end;
	/* The record goes without what a reader has or never asked for. */
	a->task = a->output = (char *)"";
	c.agent = end ? a : NULL;
	rc = envelope_output_seal(&o->sp->key, &m, &buf, &buflen, err);
	a->task = task;
	a->output = output;
	if (rc != 0)
		return -1;
	rc = rpc_call_send(o->call, buf, buflen);
	free(buf);
	if (rc != 0)
		return tsr_err_set(err, GRPC_STATUS_CANCELLED, "stream closed");
	o->skipped = 0;
	return 0;
}

static int output_refresh(struct output_stream *o, struct tsr_err *err)
{
	Tessera__V1__Agent *a = NULL;

	if (store_agent_get(o->st, o->agent_id, &a, err) != 0)
		return -1;
	if (o->agent != NULL)
		tessera__v1__agent__free_unpacked(o->agent, NULL);
	o->agent = a;
	return 0;
}

/*
 * The file gone for good (the agent ended): its record's final tail, which
 * ends at output_bytes, from where the request says, then the end.
 */
static int output_from_record(struct output_stream *o, struct tsr_err *err)
{
	const char *tail = o->agent->output;
	size_t len = strlen(tail), n;
	int64_t end = o->agent->output_bytes > (int64_t)len ? o->agent->output_bytes : (int64_t)len;
	int64_t start = end - (int64_t)len, at;

	if (o->pos > 0 || o->from_start)
		at = o->pos;
	else
		at = start + (int64_t)agent_files_tail_lines_start(tail, len, o->tail_lines);
	if (at > end)
		return tsr_err_set(err, GRPC_STATUS_OUT_OF_RANGE,
				   "offset %lld is past the end of the output (%lld bytes)",
				   (long long)at, (long long)end);
	if (at < start) {
		o->skipped = start - at;
		at = start;
	}
	for (; at < end; at += (int64_t)n) {
		n = end - at > (int64_t)sizeof(o->buf) ? sizeof(o->buf) : (size_t)(end - at);
		memcpy(o->buf, tail + (at - start), n);
		if (output_send(o, at, n, false, err) != 0)
			return -1;
	}
	return output_send(o, end, 0, true, err);
}

/* Where the request starts reading, once the file is open. */
static int output_start(struct output_stream *o, int64_t offset, struct tsr_err *err)
{
	int64_t end;

	if (agent_files_out_lines_start(o->fd, 0, &end, err) != 0)
		return -1;
	if (offset > end)
		return tsr_err_set(err, GRPC_STATUS_OUT_OF_RANGE,
				   "offset %lld is past the end of the output (%lld bytes)",
				   (long long)offset, (long long)end);
	if (offset > 0 || o->from_start) {
		o->pos = offset;
		return 0;
	}
	return agent_files_out_lines_start(o->fd, o->tail_lines, &o->pos, err);
}

/*
 * Opens the output file, waiting while the agent is spawning; 1 when
 * there is none for good (the agent ended), -1 on failure or stop.
 */
static int output_open(struct stream_thread *t, struct output_stream *o, struct tsr_err *err)
{
	for (int polls = 0; !stream_thread_should_stop(t); polls++) {
		if (agent_files_out_open(o->sp->cfg.state_dir, o->agent_id, &o->fd, err) == 0)
			return 0;
		if (err->code != GRPC_STATUS_NOT_FOUND)
			return -1;
		tsr_err_clear(err);
		if (polls % OUTPUT_STATE_EVERY == 0 && output_refresh(o, err) != 0)
			return -1;
		if (o->agent->state != TESSERA__V1__AGENT_STATE__AGENT_STATE_SPAWNING)
			return 1;
		usleep(OUTPUT_POLL_MS * 1000);
	}
	return -1;
}

/* Sends what the file has from o->pos on, while the hub keeps up. */
static int output_pump(struct output_stream *o, struct tsr_err *err)
{
	int64_t at;
	size_t n;

	while (rpc_call_queued(o->call) < OUTPUT_QUEUE_HIGH) {
		at = o->pos;
		if (agent_files_out_read(o->fd, &at, o->buf, sizeof(o->buf), &n, &o->skipped,
					 err) != 0)
			return -1;
		if (n == 0) {
			o->pos = at;
			break;
		}
		if (output_send(o, at, n, false, err) != 0)
			return -1;
		o->pos = at + (int64_t)n;
	}
	return 0;
}

/* Follows the file until the agent ends, then sends the rest and the end. */
static int output_follow(struct stream_thread *t, struct output_stream *o, struct tsr_err *err)
{
	bool ended = lifecycle_terminal(o->agent->state) || !o->follow;

	for (int polls = 1; !stream_thread_should_stop(t); polls++) {
		if (output_pump(o, err) != 0)
			return -1;
		if (rpc_call_queued(o->call) >= OUTPUT_QUEUE_HIGH) {
			usleep(OUTPUT_POLL_MS * 1000);
			continue;
		}
		/* Drained after the end was seen: the agent writes no more. */
		if (ended)
			return output_send(o, o->pos, 0, true, err);
		if (polls % OUTPUT_STATE_EVERY == 0) {
			if (output_refresh(o, err) != 0)
				return -1;
			ended = lifecycle_terminal(o->agent->state);
			if (ended)
				continue;
		}
		usleep(OUTPUT_POLL_MS * 1000);
	}
	return 0;
}

static void output_stream_run(struct stream_thread *t, void *data, struct tsr_err *err)
{
	struct output_stream *o = data;
	struct spoke *sp = o->sp;
	int64_t offset = o->pos;
	int rc;

	o->call = stream_thread_call(t);
	if (store_open(sp->cfg.valkey, sp->cfg.id, &sp->cfg.valkey_auth, &o->st, err) != 0 ||
	    output_refresh(o, err) != 0)
		return;
	rc = output_open(t, o, err);
	if (rc == 1) {
		output_from_record(o, err);
		return;
	}
	if (rc != 0 || output_start(o, offset, err) != 0)
		return;
	output_follow(t, o, err);
}

static const struct stream_thread_kind output_stream_kind = {
	.run = output_stream_run,
	.free = output_stream_free,
	.ended = GRPC_STATUS_OK,
};

/* *o: a stream for the opened command's request, not yet started. */
static int output_stream_parse(struct stream_threads *ts, const Tessera__V1__Command *cmd,
			       struct output_stream **out, struct tsr_err *err)
{
	struct spoke *sp = stream_threads_spoke(ts);
	Tessera__V1__OutputStreamRequest *r;
	struct output_stream *o = NULL;
	int rc = -1;

	r = tessera__v1__output_stream_request__unpack(NULL, cmd->payload.len, cmd->payload.data);
	if (r == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "malformed output request");
	if (agent_check_id(sp, r->agent_id, err) != 0)
		goto out;
	if (r->offset < 0 || r->tail_lines > TSR_OUTPUT_TAIL_LINES_MAX) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
			    "offset must be >= 0 and tail_lines at most %d",
			    TSR_OUTPUT_TAIL_LINES_MAX);
		goto out;
	}
	o = calloc(1, sizeof(*o));
	if (o == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	o->sp = sp;
	o->fd = -1;
	/* agent_check_id and ids_valid_name: both fit. */
	snprintf(o->agent_id, sizeof(o->agent_id), "%s", r->agent_id);
	snprintf(o->command_id, sizeof(o->command_id), "%s", cmd->command_id);
	o->pos = r->offset;
	o->from_start = r->from_start;
	o->tail_lines = r->tail_lines;
	o->follow = r->follow;
	*out = o;
	rc = 0;
out:
	tessera__v1__output_stream_request__free_unpacked(r, NULL);
	return rc;
}

void output_stream_handle(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	struct stream_threads *ts = ctx;
	Tessera__V1__Command *cmd = NULL;
	struct output_stream *o = NULL;
	struct tsr_err err;

	tsr_err_clear(&err);
	if (stream_threads_open_command(ts, req, len,
					TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_OUTPUT_STREAM, &cmd,
					&err) != 0 ||
	    output_stream_parse(ts, cmd, &o, &err) != 0 ||
	    stream_threads_start(ts, call, cmd, &output_stream_kind, o, &err) != 0) {
		log_warn("refused an output stream: %s", err.msg);
		rpc_call_fail(call, &err);
		if (o != NULL)
			output_stream_free(o);
	}
	if (cmd != NULL)
		tessera__v1__command__free_unpacked(cmd, NULL);
}
