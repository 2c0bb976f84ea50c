/*
 * rpc_server: registered methods, one outstanding request per method,
 * per-call state with a send queue (gRPC allows one send batch in flight
 * per call), one receive at a time on bidirectional streams, and
 * UNIMPLEMENTED for every method nobody registered, so that unknown calls
 * fail at once instead of waiting for their deadline. Also the only place
 * that makes server credentials (plaintext, TLS or mutual TLS), where
 * a service's gate refuses calls before their request is parsed, and
 * where each call's end is told to an observer (the hub's metrics).
 */
#include "rpc_server.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "log.h"
#include "pem.h"
#include "protocol.h"
#include "rpc_metadata.h"

/*
 * What a server reads when its caller names no bound: what a spoke's
 * requests need, a signed command (Execute and StreamEvents take nothing
 * else) and a margin. The spoke names none; the hub names its own
 * (hub_limits.h). gRPC refuses a longer request RESOURCE_EXHAUSTED unread.
 */
#define RPC_SERVER_RECEIVE_DEFAULT (ENVELOPE_COMMAND_MAX + TSR_RECEIVE_MARGIN)

struct rpc_slot { /* one pending grpc_server_request_*call */
	struct rpc_tag tag;
	struct rpc_server *srv;
	int method; /* index into srv->methods; -1: unregistered */
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
	grpc_call_details details; /* unregistered calls only */
};

struct rpc_method {
	char *path;
	void *handle;
	rpc_handler_fn fn;
	void *ctx;
	bool bidi;
	bool gated;	     /* set by rpc_server_start */
	size_t max_messages; /* bidi only */
	struct rpc_slot slot;
};

struct rpc_server {
	struct rpc_loop *loop;
	grpc_server *server;
	char *listen;
	char *tls_cert, *tls_key, *tls_client_ca; /* NULL: not given */
	char *gate_service;
	rpc_gate_fn gate;
	void *gate_ctx;
	rpc_observe_fn observe;
	void *observe_ctx;
	struct rpc_method methods[RPC_METHODS_MAX];
	int nmethods;
	char *services[RPC_METHODS_MAX]; /* "package.Service", each once */
	size_t nservices;
	struct rpc_slot unknown;
	struct rpc_tag shutdown_tag;
	bool shut;
};

struct rpc_send {
	struct rpc_send *next;
	grpc_byte_buffer *bb;
};

struct rpc_call {
	struct rpc_loop *loop;
	grpc_call *call;
	const char *path; /* its method's, the server's; NULL: unregistered */
	rpc_observe_fn observe;
	void *observe_ctx;
	grpc_metadata_array md;
	gpr_timespec deadline;

	pthread_mutex_t mu; /* guards everything below */
	int refs;
	bool headers_wanted, headers_sent, sending, finished, status_sent;
	grpc_metadata header; /* set by rpc_call_send_headers */
	size_t nheaders;
	atomic_bool cancelled;
	grpc_status_code status;
	grpc_slice status_msg;
	struct rpc_send *head, *tail;
	size_t queued;
	grpc_byte_buffer *in_flight;
	struct rpc_tag send_tag;

	struct rpc_tag close_tag;
	int close_cancelled;
	void (*on_cancel)(void *arg);
	void *cancel_arg;

	/* Bidirectional streams: touched on the loop thread only. */
	rpc_handler_fn fn;
	void *ctx;
	size_t recv_left; /* messages the client may still send */
	grpc_byte_buffer *recv_bb;
	struct rpc_tag recv_tag;
};

static void rpc_slot_request(struct rpc_slot *slot);
static void rpc_call_recv_done(struct rpc_tag *tag, bool ok);

static void rpc_call_unref(struct rpc_call *c)
{
	struct rpc_send *s;
	int refs;

	pthread_mutex_lock(&c->mu);
	refs = --c->refs;
	pthread_mutex_unlock(&c->mu);
	if (refs > 0)
		return;
	while ((s = c->head) != NULL) {
		c->head = s->next;
		grpc_byte_buffer_destroy(s->bb);
		free(s);
	}
	if (c->in_flight != NULL)
		grpc_byte_buffer_destroy(c->in_flight);
	if (c->recv_bb != NULL)
		grpc_byte_buffer_destroy(c->recv_bb);
	grpc_slice_unref(c->status_msg);
	grpc_metadata_array_destroy(&c->md);
	if (c->nheaders > 0) {
		grpc_slice_unref(c->header.key);
		grpc_slice_unref(c->header.value);
	}
	grpc_call_unref(c->call);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static void rpc_call_drop_queue(struct rpc_call *c)
{
	struct rpc_send *s;

	while ((s = c->head) != NULL) {
		c->head = s->next;
		grpc_byte_buffer_destroy(s->bb);
		free(s);
	}
	c->tail = NULL;
	c->queued = 0;
}

/*
 * Starts a batch of c's call, counted by the loop until its tag fires.
 * It cannot fail with one batch of its kind in flight; a refusal would
 * leave the call hanging, so it is fatal.
 */
static void rpc_call_start(struct rpc_call *c, const grpc_op *ops, size_t n, struct rpc_tag *tag,
			   const char *what)
{
	grpc_call_error rc;

	rpc_loop_op_started(c->loop);
	rc = grpc_call_start_batch(c->call, ops, n, tag, NULL);
	if (rc != GRPC_CALL_OK)
		fatal("grpc_call_start_batch (%s): error %d", what, (int)rc);
}

/* Starts the next send batch if none is in flight. Called with mu held. */
static void rpc_call_pump(struct rpc_call *c)
{
	grpc_op ops[3];
	size_t n = 0;

	if (c->sending || c->status_sent)
		return;
	memset(ops, 0, sizeof(ops));
	if (!c->headers_sent && (c->head != NULL || c->finished || c->headers_wanted)) {
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		ops[n].data.send_initial_metadata.count = c->nheaders;
		ops[n].data.send_initial_metadata.metadata = &c->header;
		n++;
		c->headers_sent = true;
	}
	if (c->head != NULL) {
		struct rpc_send *s = c->head;

		c->head = s->next;
		if (c->head == NULL)
			c->tail = NULL;
		c->queued--;
		c->in_flight = s->bb;
		free(s);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n].data.send_message.send_message = c->in_flight;
		n++;
	}
	/* The last message and the status leave in one batch: one write, and
	 * the status does not wait a loop turn for the message's completion. */
	if (c->head == NULL && c->finished) {
		ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
		ops[n].data.send_status_from_server.status = c->status;
		ops[n].data.send_status_from_server.status_details = &c->status_msg;
		n++;
		c->status_sent = true;
	}
	if (n == 0)
		return;
	c->sending = true;
	c->refs++;
	rpc_call_start(c, ops, n, &c->send_tag, "send");
}

static void rpc_call_send_done(struct rpc_tag *tag, bool ok)
{
	struct rpc_call *c = (struct rpc_call *)((char *)tag - offsetof(struct rpc_call, send_tag));

	pthread_mutex_lock(&c->mu);
	c->sending = false;
	if (c->in_flight != NULL) {
		grpc_byte_buffer_destroy(c->in_flight);
		c->in_flight = NULL;
	}
	if (!ok) {
		atomic_store(&c->cancelled, true);
		rpc_call_drop_queue(c);
	}
	rpc_call_pump(c);
	pthread_mutex_unlock(&c->mu);
	rpc_call_unref(c);
}

static void rpc_call_close_done(struct rpc_tag *tag, bool ok)
{
	struct rpc_call *c = (struct rpc_call *)((char *)tag -
						 offsetof(struct rpc_call, close_tag));
	void (*fn)(void *) = NULL;
	void *arg = NULL;

	pthread_mutex_lock(&c->mu);
	if (!ok || c->close_cancelled) {
		atomic_store(&c->cancelled, true);
		rpc_call_drop_queue(c);
		fn = c->on_cancel;
		arg = c->cancel_arg;
		c->on_cancel = NULL;
	}
	pthread_mutex_unlock(&c->mu);
	if (fn != NULL)
		fn(arg);
	rpc_call_unref(c);
}

/* Queues a copy of msg; starts sending it at once if pump is set. */
static int rpc_call_queue(struct rpc_call *c, const uint8_t *msg, size_t len, bool pump)
{
	struct rpc_send *s;
	grpc_slice slice;
	int rc = -1;

	s = malloc(sizeof(*s));
	if (s == NULL)
		return -1;
	slice = grpc_slice_from_copied_buffer((const char *)msg, len);
	s->bb = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	s->next = NULL;
	pthread_mutex_lock(&c->mu);
	if (atomic_load(&c->cancelled) || c->finished || c->queued >= RPC_SEND_QUEUE_MAX)
		goto out;
	if (c->tail != NULL)
		c->tail->next = s;
	else
		c->head = s;
	c->tail = s;
	c->queued++;
	s = NULL;
	if (pump)
		rpc_call_pump(c);
	rc = 0;
out:
	pthread_mutex_unlock(&c->mu);
	if (s != NULL) {
		grpc_byte_buffer_destroy(s->bb);
		free(s);
	}
	return rc;
}

int rpc_call_send(struct rpc_call *c, const uint8_t *msg, size_t len)
{
	return rpc_call_queue(c, msg, len, true);
}

void rpc_call_send_headers(struct rpc_call *c, const char *key, const char *value)
{
	pthread_mutex_lock(&c->mu);
	if (!c->headers_sent && !c->headers_wanted && key != NULL) {
		c->header.key = grpc_slice_from_copied_string(key);
		c->header.value = grpc_slice_from_copied_string(value);
		c->nheaders = 1;
	}
	c->headers_wanted = true;
	rpc_call_pump(c);
	pthread_mutex_unlock(&c->mu);
}

/* Sets the final status, sent after every queued message; the first wins. */
static void rpc_call_end(struct rpc_call *c, grpc_status_code code, const char *msg)
{
	bool first;

	pthread_mutex_lock(&c->mu);
	/* The handler is done with the call: its cancel callback's argument
	 * may be freed from here on. */
	c->on_cancel = NULL;
	first = !c->finished;
	if (first) {
		c->finished = true;
		c->status = code;
		c->status_msg = grpc_slice_from_copied_string(msg != NULL ? msg : "");
		rpc_call_pump(c);
	}
	pthread_mutex_unlock(&c->mu);
	if (first && c->observe != NULL)
		c->observe(c->observe_ctx, c->path, code);
}

void rpc_call_finish(struct rpc_call *c, grpc_status_code code, const char *msg)
{
	rpc_call_end(c, code, msg);
	rpc_call_unref(c);
}

void rpc_call_reply(struct rpc_call *c, const uint8_t *msg, size_t len)
{
	/* Sent with the status that follows, in one batch (rpc_call_pump). */
	if (rpc_call_queue(c, msg, len, false) != 0) {
		rpc_call_finish(c, GRPC_STATUS_CANCELLED, "call no longer active");
		return;
	}
	rpc_call_finish(c, GRPC_STATUS_OK, NULL);
}

void rpc_call_fail(struct rpc_call *c, const struct tsr_err *err)
{
	grpc_status_code code = err->code;

	if (code == GRPC_STATUS_OK)
		code = GRPC_STATUS_INTERNAL;
	rpc_call_finish(c, code, err->msg);
}

size_t rpc_call_queued(struct rpc_call *c)
{
	size_t n;

	pthread_mutex_lock(&c->mu);
	n = c->queued;
	pthread_mutex_unlock(&c->mu);
	return n;
}

struct rpc_loop *rpc_call_loop(struct rpc_call *c)
{
	return c->loop;
}

bool rpc_call_cancelled(struct rpc_call *c)
{
	return atomic_load(&c->cancelled);
}

void rpc_call_on_cancel(struct rpc_call *c, void (*fn)(void *arg), void *arg)
{
	bool now;

	pthread_mutex_lock(&c->mu);
	now = fn != NULL && atomic_load(&c->cancelled);
	if (!now) {
		c->on_cancel = fn;
		c->cancel_arg = arg;
	}
	pthread_mutex_unlock(&c->mu);
	if (now)
		fn(arg);
}

int64_t rpc_call_remaining_ms(struct rpc_call *c)
{
	gpr_timespec dl, now;

	if (gpr_time_cmp(c->deadline, gpr_inf_future(c->deadline.clock_type)) == 0)
		return -1;
	dl = gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC);
	now = gpr_now(GPR_CLOCK_MONOTONIC);
	if (gpr_time_cmp(dl, now) <= 0)
		return 0;
	return gpr_time_to_millis(gpr_time_sub(dl, now));
}

int rpc_call_metadata(struct rpc_call *c, const char *key, char *buf, size_t buflen)
{
	return rpc_metadata_get(&c->md, key, buf, buflen);
}

int rpc_call_peer_host(struct rpc_call *c, char buf[RPC_PEER_HOST_MAX])
{
	char *peer = grpc_call_get_peer(c->call), *port;
	size_t len;
	int rc = -1;

	if (peer == NULL)
		return -1;
	len = strlen(peer);
	/* An IP peer ends in ":PORT" (an IPv6 address is bracketed); unix ones have none. */
	port = strrchr(peer, ':');
	if (strncmp(peer, "ipv", 3) == 0 && port != NULL && port > peer + 5)
		len = (size_t)(port - peer);
	if (len < RPC_PEER_HOST_MAX) {
		memcpy(buf, peer, len);
		buf[len] = '\0';
		rc = 0;
	}
	gpr_free(peer);
	return rc;
}

/* Takes over the slot's call and metadata; the slot is free again after. */
static struct rpc_call *rpc_call_new(struct rpc_slot *slot)
{
	struct rpc_call *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->loop = slot->srv->loop;
	c->call = slot->call;
	c->path = slot->method >= 0 ? slot->srv->methods[slot->method].path : NULL;
	c->observe = slot->srv->observe;
	c->observe_ctx = slot->srv->observe_ctx;
	c->md = slot->md;
	c->deadline = slot->deadline;
	c->status_msg = grpc_empty_slice();
	c->send_tag.done = rpc_call_send_done;
	c->close_tag.done = rpc_call_close_done;
	c->recv_tag.done = rpc_call_recv_done;
	pthread_mutex_init(&c->mu, NULL);
	c->refs = 2; /* the handler's and RECV_CLOSE_ON_SERVER's */
	slot->call = NULL;
	grpc_metadata_array_init(&slot->md);
	return c;
}

static void rpc_call_watch_close(struct rpc_call *c)
{
	grpc_op op = { .op = GRPC_OP_RECV_CLOSE_ON_SERVER,
		       .data.recv_close_on_server.cancelled = &c->close_cancelled };

	rpc_call_start(c, &op, 1, &c->close_tag, "close");
}

/* Copies a byte buffer into one slice; the caller unrefs it. */
static grpc_slice rpc_payload_slice(grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader reader;
	grpc_slice s;

	if (bb == NULL || !grpc_byte_buffer_reader_init(&reader, bb))
		return grpc_empty_slice();
	s = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	return s;
}

/* Reads the next client message of a bidirectional stream. */
static void rpc_call_recv_next(struct rpc_call *c)
{
	grpc_op op = { .op = GRPC_OP_RECV_MESSAGE, .data.recv_message.recv_message = &c->recv_bb };

	pthread_mutex_lock(&c->mu);
	c->refs++;
	pthread_mutex_unlock(&c->mu);
	rpc_call_start(c, &op, 1, &c->recv_tag, "receive");
}

static bool rpc_call_finished(struct rpc_call *c)
{
	bool finished;

	pthread_mutex_lock(&c->mu);
	finished = c->finished;
	pthread_mutex_unlock(&c->mu);
	return finished;
}

/*
 * One client message of a bidirectional stream, or its end. A finished
 * call is one whose handler has let go of it (the server only ends a call
 * itself right before the handler's last run), so what comes after is
 * dropped.
 */
static void rpc_call_recv_done(struct rpc_tag *tag, bool ok)
{
	/* NULL tells the handler the stream ended: an empty message is not. */
	static const uint8_t empty[1];
	struct rpc_call *c = (struct rpc_call *)((char *)tag - offsetof(struct rpc_call, recv_tag));
	grpc_byte_buffer *bb = c->recv_bb;
	grpc_slice body;

	c->recv_bb = NULL;
	if (rpc_call_finished(c)) {
		/* Nobody left to hand it to. */
	} else if (!ok || bb == NULL) {
		c->fn(c->ctx, c, NULL, 0);
	} else if (c->recv_left == 0) {
		rpc_call_end(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many messages on this stream");
		c->fn(c->ctx, c, NULL, 0);
	} else {
		c->recv_left--;
		body = rpc_payload_slice(bb);
		c->fn(c->ctx, c, GRPC_SLICE_LENGTH(body) > 0 ? GRPC_SLICE_START_PTR(body) : empty,
		      GRPC_SLICE_LENGTH(body));
		grpc_slice_unref(body);
		if (!rpc_call_finished(c))
			rpc_call_recv_next(c);
	}
	if (bb != NULL)
		grpc_byte_buffer_destroy(bb);
	rpc_call_unref(c);
}

/* Frees what a request that will not be served left in its slot. */
static void rpc_slot_drop(struct rpc_slot *slot)
{
	if (slot->call != NULL) {
		grpc_call_unref(slot->call);
		slot->call = NULL;
	}
	grpc_metadata_array_destroy(&slot->md);
	if (slot->payload != NULL)
		grpc_byte_buffer_destroy(slot->payload);
	slot->payload = NULL;
	if (slot->method < 0)
		grpc_call_details_destroy(&slot->details);
}

/* The one request message of a unary call, to its handler. */
static void rpc_call_unary(struct rpc_method *m, struct rpc_call *c, grpc_byte_buffer *payload)
{
	grpc_slice body = rpc_payload_slice(payload);

	m->fn(m->ctx, c, GRPC_SLICE_START_PTR(body), GRPC_SLICE_LENGTH(body));
	grpc_slice_unref(body);
}

/* A bidirectional stream reads its first message. */
static void rpc_call_stream(struct rpc_method *m, struct rpc_call *c)
{
	/* The call keeps its own copy: it may outlive the server. */
	c->fn = m->fn;
	c->ctx = m->ctx;
	c->recv_left = m->max_messages;
	rpc_call_recv_next(c);
}

/*
 * Serves an accepted call of m, unless its caller has given up or the
 * gate refuses it. Takes payload, which may be NULL.
 */
static void rpc_call_serve(struct rpc_server *srv, struct rpc_method *m, struct rpc_call *c,
			   grpc_byte_buffer *payload)
{
	struct tsr_err err;

	/* A caller that has given up is not served: a late request must not act. */
	if (rpc_call_remaining_ms(c) == 0)
		rpc_call_finish(c, GRPC_STATUS_DEADLINE_EXCEEDED,
				"the caller's deadline passed before the call was served");
	else if (m->gated && srv->gate(srv->gate_ctx, c, &err) != 0)
		rpc_call_fail(c, &err);
	else if (m->bidi)
		rpc_call_stream(m, c);
	else if (payload == NULL)
		/* The client closed without sending its one request message. */
		rpc_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "missing request message");
	else
		rpc_call_unary(m, c, payload);
	if (payload != NULL)
		grpc_byte_buffer_destroy(payload);
}

/* A call arrived for slot: it is accepted, and the slot waits for the next. */
static void rpc_slot_done(struct rpc_tag *tag, bool ok)
{
	struct rpc_slot *slot = (struct rpc_slot *)tag;
	struct rpc_server *srv = slot->srv;
	struct rpc_call *c;
	grpc_byte_buffer *payload;

	if (!ok || srv->shut) {
		rpc_slot_drop(slot);
		return;
	}
	payload = slot->payload;
	slot->payload = NULL;
	c = rpc_call_new(slot);
	if (slot->method < 0) {
		grpc_call_details_destroy(&slot->details);
	}
	rpc_slot_request(slot);
	if (c == NULL) {
		log_error("out of memory accepting a call");
		if (payload != NULL)
			grpc_byte_buffer_destroy(payload);
		return;
	}
	rpc_call_watch_close(c);
	if (slot->method < 0) {
		rpc_call_finish(c, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
		return;
	}
	rpc_call_serve(srv, &srv->methods[slot->method], c, payload);
}

static void rpc_slot_request(struct rpc_slot *slot)
{
	struct rpc_server *srv = slot->srv;
	grpc_completion_queue *cq = rpc_loop_cq(srv->loop);
	grpc_call_error rc;

	grpc_metadata_array_init(&slot->md);
	slot->call = NULL;
	slot->payload = NULL;
	rpc_loop_op_started(srv->loop);
	if (slot->method < 0) {
		grpc_call_details_init(&slot->details);
		rc = grpc_server_request_call(srv->server, &slot->call, &slot->details, &slot->md,
					      cq, cq, &slot->tag);
	} else {
		struct rpc_method *m = &srv->methods[slot->method];

		/* Registered with GRPC_SRM_PAYLOAD_NONE: no payload to read. */
		rc = grpc_server_request_registered_call(
			srv->server, m->handle, &slot->call, &slot->deadline, &slot->md,
			m->bidi ? NULL : &slot->payload, cq, cq, &slot->tag);
	}
	if (rc != GRPC_CALL_OK)
		fatal("cannot request calls: error %d", (int)rc);
}

int rpc_server_new(struct rpc_loop *loop, const struct rpc_server_opts *opts,
		   struct rpc_server **out, struct tsr_err *err)
{
	struct rpc_server *srv;
	grpc_arg args[4];
	grpc_channel_args chargs;
	int max = opts->max_message ? (int)opts->max_message : RPC_SERVER_RECEIVE_DEFAULT;

	srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	srv->loop = loop;
	srv->listen = strdup(opts->listen);
	if ((opts->tls_cert != NULL && (srv->tls_cert = strdup(opts->tls_cert)) == NULL) ||
	    (opts->tls_key != NULL && (srv->tls_key = strdup(opts->tls_key)) == NULL) ||
	    (opts->tls_client_ca != NULL &&
	     (srv->tls_client_ca = strdup(opts->tls_client_ca)) == NULL)) {
		rpc_server_free(srv);
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	if (srv->tls_cert != NULL && srv->tls_key == NULL) {
		rpc_server_free(srv);
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "a TLS certificate needs its key");
	}
	/* Clients ping every 20 s (rpc_client.c); admit pings down to 10 s. */
	args[0] = (grpc_arg){ .type = GRPC_ARG_INTEGER,
			      .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
			      .value.integer = max };
	args[1] = (grpc_arg){ .type = GRPC_ARG_INTEGER,
			      .key = GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
			      .value.integer = 10000 };
	args[2] = (grpc_arg){ .type = GRPC_ARG_INTEGER,
			      .key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
			      .value.integer = 1 };
	/* A second daemon on the same port must fail, not share it. */
	args[3] = (grpc_arg){ .type = GRPC_ARG_INTEGER,
			      .key = GRPC_ARG_ALLOW_REUSEPORT,
			      .value.integer = 0 };
	chargs.num_args = 4;
	chargs.args = args;
	srv->server = grpc_server_create(&chargs, NULL);
	if (srv->listen == NULL || srv->server == NULL) {
		rpc_server_free(srv);
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "cannot create server");
	}
	grpc_server_register_completion_queue(srv->server, rpc_loop_cq(loop), NULL);
	*out = srv;
	return 0;
}

/* The "package.Service" of "/package.Service/Method", malloc'd. */
static int rpc_path_service(const char *path, char **out, struct tsr_err *err)
{
	const char *slash;

	if (path[0] != '/' || (slash = strchr(path + 1, '/')) == NULL || slash == path + 1 ||
	    slash[1] == '\0' || strchr(slash + 1, '/') != NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "bad method path %s", path);
	*out = strndup(path + 1, (size_t)(slash - path - 1));
	if (*out == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	return 0;
}

static int rpc_server_add(struct rpc_server *srv, const char *path, rpc_handler_fn fn, void *ctx,
			  bool bidi, size_t max_messages, struct tsr_err *err)
{
	/* A bidi method reads its messages itself, so gRPC must not. */
	grpc_server_register_method_payload_handling payload =
		bidi ? GRPC_SRM_PAYLOAD_NONE : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER;
	struct rpc_method *m;
	char *service = NULL;
	bool known = false;
	int rc = -1;

	if (srv->nmethods == RPC_METHODS_MAX) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "too many methods");
		goto out;
	}
	if (rpc_path_service(path, &service, err) != 0)
		goto out;
	m = &srv->methods[srv->nmethods];
	m->path = strdup(path);
	if (m->path == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	m->handle = grpc_server_register_method(srv->server, m->path, NULL, payload, 0);
	if (m->handle == NULL) {
		free(m->path);
		m->path = NULL;
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "cannot register %s", path);
		goto out;
	}
	m->fn = fn;
	m->ctx = ctx;
	m->bidi = bidi;
	m->max_messages = max_messages;
	m->slot.tag.done = rpc_slot_done;
	m->slot.srv = srv;
	m->slot.method = srv->nmethods;
	srv->nmethods++;
	for (size_t i = 0; i < srv->nservices && !known; i++)
		known = strcmp(srv->services[i], service) == 0;
	if (!known) {
		/* At most one service per method: services[] cannot overflow. */
		srv->services[srv->nservices++] = service;
		service = NULL;
	}
	rc = 0;
out:
	free(service);
	return rc;
}

int rpc_server_add_method(struct rpc_server *srv, const char *path, rpc_handler_fn fn, void *ctx,
			  struct tsr_err *err)
{
	return rpc_server_add(srv, path, fn, ctx, false, 0, err);
}

int rpc_server_add_bidi(struct rpc_server *srv, const char *path, rpc_handler_fn fn, void *ctx,
			size_t max_messages, struct tsr_err *err)
{
	return rpc_server_add(srv, path, fn, ctx, true, max_messages, err);
}

const char *rpc_server_service(const struct rpc_server *srv, size_t i)
{
	return i < srv->nservices ? srv->services[i] : NULL;
}

void rpc_server_observe(struct rpc_server *srv, rpc_observe_fn fn, void *ctx)
{
	srv->observe = fn;
	srv->observe_ctx = ctx;
}

int rpc_server_set_gate(struct rpc_server *srv, const char *service, rpc_gate_fn fn, void *ctx,
			struct tsr_err *err)
{
	if (srv->gate != NULL)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "one gate per server");
	srv->gate_service = strdup(service);
	if (srv->gate_service == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	srv->gate = fn;
	srv->gate_ctx = ctx;
	return 0;
}

/* Whether path is "/<service>/<method>". */
static bool rpc_path_in(const char *path, const char *service)
{
	size_t n = strlen(service);

	return path[0] == '/' && strncmp(path + 1, service, n) == 0 && path[n + 1] == '/';
}

/* Plaintext, TLS, or TLS requiring a client certificate signed by the CA. */
static int rpc_server_creds(struct rpc_server *srv, grpc_server_credentials **out,
			    struct tsr_err *err)
{
	grpc_ssl_pem_key_cert_pair pair;
	char *cert = NULL, *key = NULL, *ca = NULL;
	size_t cert_len = 0, key_len = 0, ca_len = 0;
	int rc = -1;

	if (srv->tls_cert == NULL) {
		*out = grpc_insecure_server_credentials_create();
		return 0;
	}
	if (pem_read(srv->tls_cert, "TLS certificate", &cert, &cert_len, err) != 0 ||
	    pem_read(srv->tls_key, "TLS key", &key, &key_len, err) != 0 ||
	    (srv->tls_client_ca != NULL &&
	     pem_read(srv->tls_client_ca, "TLS client CA", &ca, &ca_len, err) != 0))
		goto out;
	pair.private_key = key;
	pair.cert_chain = cert;
	/* gRPC copies the PEM text: ours can be wiped right after. */
	*out = grpc_ssl_server_credentials_create_ex(
		ca, &pair, 1,
		ca != NULL ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
			   : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
		NULL);
	if (*out == NULL) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "cannot create TLS credentials");
		goto out;
	}
	rc = 0;
out:
	pem_free(cert, cert_len);
	pem_free(key, key_len);
	pem_free(ca, ca_len);
	return rc;
}

int rpc_server_start(struct rpc_server *srv, int *port, struct tsr_err *err)
{
	grpc_server_credentials *creds;
	int bound;

	if (rpc_server_creds(srv, &creds, err) != 0)
		return -1;
	bound = grpc_server_add_http2_port(srv->server, srv->listen, creds);
	grpc_server_credentials_release(creds);
	if (bound == 0)
		return tsr_err_set(err, GRPC_STATUS_UNAVAILABLE,
				   "cannot listen on %s (or the TLS certificate and key "
				   "do not load)",
				   srv->listen);
	grpc_server_start(srv->server);
	for (int i = 0; i < srv->nmethods; i++) {
		srv->methods[i].gated = srv->gate != NULL &&
					rpc_path_in(srv->methods[i].path, srv->gate_service);
		rpc_slot_request(&srv->methods[i].slot);
	}
	srv->unknown.tag.done = rpc_slot_done;
	srv->unknown.srv = srv;
	srv->unknown.method = -1;
	rpc_slot_request(&srv->unknown);
	if (port != NULL)
		*port = bound;
	return 0;
}

static void rpc_server_shutdown_done(struct rpc_tag *tag, bool ok)
{
	(void)tag;
	(void)ok;
}

void rpc_server_shutdown(struct rpc_server *srv)
{
	if (srv->shut)
		return;
	srv->shut = true;
	srv->shutdown_tag.done = rpc_server_shutdown_done;
	rpc_loop_op_started(srv->loop);
	grpc_server_shutdown_and_notify(srv->server, rpc_loop_cq(srv->loop), &srv->shutdown_tag);
	grpc_server_cancel_all_calls(srv->server);
}

void rpc_server_free(struct rpc_server *srv)
{
	if (srv == NULL)
		return;
	if (srv->server != NULL)
		grpc_server_destroy(srv->server);
	for (int i = 0; i < srv->nmethods; i++)
		free(srv->methods[i].path);
	for (size_t i = 0; i < srv->nservices; i++)
		free(srv->services[i]);
	free(srv->listen);
	free(srv->tls_cert);
	free(srv->tls_key);
	free(srv->tls_client_ca);
	free(srv->gate_service);
	free(srv);
}
