/*
 * output_relay: the readers in flight, in a list the tick walks. A
 * reader's lifetime ends with its spoke stream's on_end, which always
 * comes (cancelling it when the client goes away or the hub stops).
 */
#include "output_relay.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "command.h"
#include "envelope.h"
#include "hub.h"
#include "hub_limits.h"
#include "log.h"
#include "pb.h"
#include "protocol.h"
#include "rpc_client.h"
#include "tessera/v1/hub.pb-c.h"

struct output_reader {
	struct output_relays *rs;
	struct output_reader *prev, *next;
	struct rpc_call *call;	    /* the client's; ours until finished */
	struct spoke *sp;	    /* the agent's spoke */
	struct rpc_client_call *up; /* the spoke stream, until its on_end */
	char command_id[COMMAND_ID_LEN + 1];
	int64_t next_offset;	   /* where the next chunk must start; -1 unknown */
	bool held;		   /* up is not read while the client catches up */
	bool got_end;		   /* the spoke sent its last chunk */
	struct tsr_err fail;	   /* why the hub ended it, if it did */
	struct auth_caller caller; /* the token it came with */
};

struct output_relays {
	struct hub *h;
	const struct auth *auth;
	struct output_reader *head;
	size_t n;
};

int output_relays_new(struct hub *h, const struct auth *auth, struct output_relays **out,
		      struct tsr_err *err)
{
	struct output_relays *rs = calloc(1, sizeof(*rs));

	if (rs == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	rs->h = h;
	rs->auth = auth;
	*out = rs;
	return 0;
}

void output_relays_free(struct output_relays *rs)
{
	free(rs);
}

static void output_reader_unlink(struct output_reader *r)
{
	struct output_relays *rs = r->rs;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		rs->head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	rs->n--;
}

/* Ends the spoke stream; on_end finishes the client's call. */
static void output_reader_stop(struct output_reader *r, grpc_status_code code, const char *msg)
{
	if (r->fail.code == GRPC_STATUS_OK)
		tsr_err_set(&r->fail, code, "%s", msg);
	rpc_client_cancel(r->up);
}

/* A verified chunk, checked and passed on; -1 with r->fail set to stop. */
static int output_reader_pass(struct output_reader *r, const Tessera__V1__OutputChunk *c)
{
	struct tsr_err err;
	uint8_t *buf = NULL;
	size_t len;
	int rc;

	if (c->offset < 0 || c->skipped < 0 || c->data.len > TSR_OUTPUT_CHUNK_MAX ||
	    (r->next_offset >= 0 && c->offset != r->next_offset + c->skipped) ||
	    (c->end && c->agent == NULL))
		return tsr_err_set(&r->fail, GRPC_STATUS_INTERNAL,
				   "spoke %s sent output out of order", r->sp->conf->id);
	if (pb_pack(&c->base, &buf, &len, &err) != 0)
		return tsr_err_set(&r->fail, err.code, "%s", err.msg);
	rc = rpc_call_send(r->call, buf, len);
	free(buf);
	if (rc != 0)
		return tsr_err_set(&r->fail, GRPC_STATUS_CANCELLED, "the client went away");
	r->next_offset = c->offset + (int64_t)c->data.len;
	r->got_end = c->end;
	return 0;
}

static void output_reader_message(void *arg, const uint8_t *msg, size_t len)
{
	struct output_reader *r = arg;
	Tessera__V1__OutputMessage *m = NULL;
	struct tsr_err err;

	if (r->fail.code != GRPC_STATUS_OK || r->got_end)
		return;
	if (envelope_output_open(msg, len, &r->sp->conf->pub, r->sp->conf->id, r->command_id, &m,
				 &err) != 0) {
		log_warn("output of spoke %s refused: %s", r->sp->conf->id, err.msg);
		output_reader_stop(r, GRPC_STATUS_INTERNAL, err.msg);
		return;
	}
	if (output_reader_pass(r, m->chunk) != 0)
		rpc_client_cancel(r->up);
	else if (rpc_call_queued(r->call) >= HUB_OUTPUT_QUEUE_HIGH) {
		r->held = true;
		rpc_client_stream_hold(r->up);
	}
	tessera__v1__output_message__free_unpacked(m, NULL);
}

static void output_reader_end(void *arg, grpc_status_code code, const char *details)
{
	struct output_reader *r = arg;

	if (r->fail.code != GRPC_STATUS_OK)
		hub_call_finish(r->call, r->fail.code, r->fail.msg);
	else if (r->got_end)
		hub_call_finish(r->call, GRPC_STATUS_OK, "");
	else if (code == GRPC_STATUS_OK)
		hub_call_finish(r->call, GRPC_STATUS_UNAVAILABLE,
				"the spoke ended the output stream early");
	else
		hub_call_finish(r->call, code, details);
	output_reader_unlink(r);
	free(r);
}

static void output_reader_cancelled(void *arg)
{
	struct output_reader *r = arg;

	output_reader_stop(r, GRPC_STATUS_CANCELLED, "the client went away");
}

/* Seals the OUTPUT_STREAM command for r's request and calls the spoke. */
static int output_reader_call(struct output_reader *r, const Tessera__V1__ReadAgentOutputRequest *q,
			      struct tsr_err *err)
{
	static const struct rpc_stream_cbs cbs = {
		.on_message = output_reader_message,
		.on_end = output_reader_end,
	};
	Tessera__V1__OutputStreamRequest req = TESSERA__V1__OUTPUT_STREAM_REQUEST__INIT;
	struct hub *h = r->rs->h;
	struct rpc_client_opts opts;
	uint8_t *cmd = NULL;
	size_t cmd_len;
	int rc;

	req.agent_id = q->agent_id;
	req.offset = q->offset;
	req.from_start = q->from_start;
	req.tail_lines = q->tail_lines;
	req.follow = q->follow;
	if (command_seal(h->key, r->sp->conf->id,
			 TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_OUTPUT_STREAM, &req.base,
			 r->command_id, sizeof(r->command_id), &cmd, &cmd_len, err) != 0)
		return -1;
	memset(&opts, 0, sizeof(opts));
	rc = rpc_client_stream(h->loop, r->sp->ch, TSR_METHOD_STREAM_OUTPUT, cmd, cmd_len, &opts,
			       &cbs, r, &r->up, err);
	free(cmd);
	return rc;
}

static int output_request_check(struct output_relays *rs,
				const Tessera__V1__ReadAgentOutputRequest *q, struct spoke **sp,
				struct tsr_err *err)
{
	if (rs->h->stopping)
		return tsr_err_set(err, GRPC_STATUS_UNAVAILABLE, "the hub is shutting down");
	if (q->agent_id[0] == '\0')
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "agent_id is required");
	if (q->offset < 0 || q->tail_lines > TSR_OUTPUT_TAIL_LINES_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "offset must be >= 0 and tail_lines at most %d",
				   TSR_OUTPUT_TAIL_LINES_MAX);
	if (rs->n >= HUB_OUTPUT_READERS_MAX)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "%d output readers already",
				   HUB_OUTPUT_READERS_MAX);
	return hub_agent_spoke(rs->h, q->agent_id, sp, err);
}

void output_relay_handle(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	struct output_relays *rs = ((struct hub *)ctx)->outputs;
	Tessera__V1__ReadAgentOutputRequest *q;
	struct output_reader *r = NULL;
	struct spoke *sp;
	struct tsr_err err;

	q = tessera__v1__read_agent_output_request__unpack(NULL, len, req);
	if (q == NULL) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT, "malformed ReadAgentOutputRequest");
		goto fail;
	}
	if (output_request_check(rs, q, &sp, &err) != 0)
		goto fail;
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		tsr_err_set(&err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto fail;
	}
	if (auth_caller(rs->auth, call, &r->caller, &err) != 0)
		goto fail;
	r->rs = rs;
	r->call = call;
	r->sp = sp;
	/* A resume knows where it is; a start learns it from the first chunk. */
	r->next_offset = q->offset > 0 ? q->offset : -1;
	if (output_reader_call(r, q, &err) != 0)
		goto fail;
	r->next = rs->head;
	if (rs->head != NULL)
		rs->head->prev = r;
	rs->head = r;
	rs->n++;
	rpc_call_on_cancel(call, output_reader_cancelled, r);
	goto out;
fail:
	free(r);
	rpc_call_fail(call, &err);
out:
	if (q != NULL)
		tessera__v1__read_agent_output_request__free_unpacked(q, NULL);
}

void output_relays_tick(struct output_relays *rs)
{
	for (struct output_reader *r = rs->head; r != NULL; r = r->next) {
		if (!r->held || rpc_call_queued(r->call) > HUB_OUTPUT_QUEUE_HIGH / 2)
			continue;
		r->held = false;
		rpc_client_stream_resume(r->up);
	}
}

void output_relays_shutdown(struct output_relays *rs)
{
	for (struct output_reader *r = rs->head; r != NULL; r = r->next)
		output_reader_stop(r, GRPC_STATUS_UNAVAILABLE, "the hub is shutting down");
}

size_t output_relays_reauth(struct output_relays *rs)
{
	size_t ended = 0;

	for (struct output_reader *r = rs->head; r != NULL; r = r->next) {
		if (r->fail.code != GRPC_STATUS_OK || auth_still_valid(rs->auth, &r->caller))
			continue;
		/* As the gate would answer the same token now. */
		output_reader_stop(r, GRPC_STATUS_UNAUTHENTICATED,
				   "the token of this output stream is no longer accepted");
		ended++;
	}
	return ended;
}
