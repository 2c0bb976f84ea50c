/*
 * rpc_client: channels with keepalive and client calls driven by the loop's
 * completion queue. A call runs as up to three batches (start, one message
 * receive at a time, status); it is freed when the last has completed.
 */
#include "rpc_client.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pem.h"
#include "rpc_metadata.h"
#include "utf8.h"

/* Must stay above the servers' minimum ping interval (rpc_server.c). */
#define RPC_KEEPALIVE_TIME_MS 20000
#define RPC_KEEPALIVE_TIMEOUT_MS 10000

struct rpc_channel {
	grpc_channel *channel;
	char *target;
};

struct rpc_headers {
	const grpc_metadata_array *md;
};

struct rpc_client_call {
	struct rpc_loop *loop;
	grpc_call *call;
	bool stream;
	int pending; /* batches in flight */
	bool saw_status;
	bool hold;   /* read no further message until rpc_client_stream_resume */
	bool parked; /* a message was taken with hold set: none is being read */

	struct rpc_tag start_tag, msg_tag, status_tag;
	grpc_metadata md[RPC_CLIENT_METADATA_MAX];
	size_t nmd;
	grpc_metadata_array init_md, trail_md;
	grpc_byte_buffer *send_bb, *recv_bb;
	grpc_status_code status;
	grpc_slice details;

	rpc_unary_done_fn done;
	struct rpc_stream_cbs cbs;
	void *arg;
};

/* Plaintext, or TLS verifying the server against the CA, with a client
 * certificate when one is given. */
static int rpc_channel_creds(const struct rpc_channel_tls *tls, grpc_channel_credentials **out,
			     struct tsr_err *err)
{
	grpc_ssl_pem_key_cert_pair pair;
	char *ca = NULL, *cert = NULL, *key = NULL;
	size_t ca_len = 0, cert_len = 0, key_len = 0;
	int rc = -1;

	if (tls == NULL) {
		*out = grpc_insecure_credentials_create();
		return 0;
	}
	if ((tls->cert == NULL) != (tls->key == NULL)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
			    "a TLS client certificate needs its key, and a key its certificate");
		goto out;
	}
	if (pem_read(tls->ca, "TLS CA", &ca, &ca_len, err) != 0 ||
	    (tls->cert != NULL &&
	     (pem_read(tls->cert, "TLS certificate", &cert, &cert_len, err) != 0 ||
	      pem_read(tls->key, "TLS key", &key, &key_len, err) != 0)))
		goto out;
	pair.private_key = key;
	pair.cert_chain = cert;
	/* gRPC copies the PEM text: ours can be wiped right after. */
	*out = grpc_ssl_credentials_create(ca, cert != NULL ? &pair : NULL, NULL, NULL);
	if (*out == NULL) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "cannot create TLS credentials");
		goto out;
	}
	rc = 0;
out:
	pem_free(ca, ca_len);
	pem_free(cert, cert_len);
	pem_free(key, key_len);
	return rc;
}

int rpc_channel_new(const char *target, size_t max_message, const struct rpc_channel_tls *tls,
		    struct rpc_channel **out, struct tsr_err *err)
{
	struct rpc_channel *ch;
	grpc_channel_credentials *creds;
	grpc_arg args[6];
	grpc_channel_args chargs;

	if (rpc_channel_creds(tls, &creds, err) != 0)
		return -1;
	ch = calloc(1, sizeof(*ch));
	if (ch == NULL || (ch->target = strdup(target)) == NULL) {
		free(ch);
		grpc_channel_credentials_release(creds);
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	args[0] = (grpc_arg){ .type = GRPC_ARG_INTEGER,
			      .key = GRPC_ARG_KEEPALIVE_TIME_MS,
			      .value.integer = RPC_KEEPALIVE_TIME_MS };
	args[1] = (grpc_arg){ .type = GRPC_ARG_INTEGER,
			      .key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
			      .value.integer = RPC_KEEPALIVE_TIMEOUT_MS };
	args[2] = (grpc_arg){ .type = GRPC_ARG_INTEGER,
			      .key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
			      .value.integer = 1 };
	args[3] = (grpc_arg){ .type = GRPC_ARG_INTEGER,
			      .key = GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA,
			      .value.integer = 0 };
	args[4] = (grpc_arg){ .type = GRPC_ARG_INTEGER,
			      .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
			      .value.integer = max_message ? (int)max_message : 4 * 1024 * 1024 };
	chargs.num_args = 5;
	if (tls != NULL && tls->name != NULL) {
		/* gRPC does not modify the string it is given here. */
		args[5] = (grpc_arg){ .type = GRPC_ARG_STRING,
				      .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
				      .value.string = (char *)tls->name };
		chargs.num_args = 6;
	}
	chargs.args = args;
	ch->channel = grpc_channel_create(target, creds, &chargs);
	grpc_channel_credentials_release(creds);
	if (ch->channel == NULL) {
		free(ch->target);
		free(ch);
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "cannot create channel to %s",
				   target);
	}
	*out = ch;
	return 0;
}

void rpc_channel_free(struct rpc_channel *ch)
{
	if (ch == NULL)
		return;
	grpc_channel_destroy(ch->channel);
	free(ch->target);
	free(ch);
}

const char *rpc_channel_target(const struct rpc_channel *ch)
{
	return ch->target;
}

grpc_connectivity_state rpc_channel_state(struct rpc_channel *ch, int try_to_connect)
{
	return grpc_channel_check_connectivity_state(ch->channel, try_to_connect);
}

static void rpc_client_call_free(struct rpc_client_call *c)
{
	if (c->send_bb != NULL)
		grpc_byte_buffer_destroy(c->send_bb);
	if (c->recv_bb != NULL)
		grpc_byte_buffer_destroy(c->recv_bb);
	grpc_metadata_array_destroy(&c->init_md);
	grpc_metadata_array_destroy(&c->trail_md);
	grpc_slice_unref(c->details);
	for (size_t i = 0; i < c->nmd; i++) {
		grpc_slice_unref(c->md[i].key);
		grpc_slice_unref(c->md[i].value);
	}
	if (c->call != NULL)
		grpc_call_unref(c->call);
	free(c);
}

/*
 * The status details for the callback, bounded and escaped (utf8_escape):
 * no signature covers them, so whatever the server put there must reach
 * logs, terminals and protobuf strings as harmless, well-formed text.
 */
static void rpc_client_details(struct rpc_client_call *c, char *buf, size_t buflen)
{
	utf8_escape((const char *)GRPC_SLICE_START_PTR(c->details), GRPC_SLICE_LENGTH(c->details),
		    buf, buflen);
}

static grpc_slice rpc_client_take_message(struct rpc_client_call *c)
{
	grpc_byte_buffer_reader reader;
	grpc_slice s = grpc_empty_slice();

	if (c->recv_bb != NULL && grpc_byte_buffer_reader_init(&reader, c->recv_bb)) {
		s = grpc_byte_buffer_reader_readall(&reader);
		grpc_byte_buffer_reader_destroy(&reader);
	}
	return s;
}

/* Cannot fail for a well-formed batch: a failure is a bug, and fatal. */
static void rpc_client_batch(struct rpc_client_call *c, grpc_op *ops, size_t n, struct rpc_tag *tag)
{
	rpc_loop_op_started(c->loop);
	c->pending++;
	if (grpc_call_start_batch(c->call, ops, n, tag, NULL) != GRPC_CALL_OK)
		fatal("grpc_call_start_batch (client) failed");
}

static void rpc_client_unary_done(struct rpc_tag *tag, bool ok)
{
	struct rpc_client_call *c = (struct rpc_client_call *)((char *)tag -
							       offsetof(struct rpc_client_call,
									start_tag));
	char details[512];
	grpc_slice body;

	(void)ok;
	rpc_client_details(c, details, sizeof(details));
	if (c->status == GRPC_STATUS_OK && c->recv_bb == NULL) {
		c->done(c->arg, GRPC_STATUS_INTERNAL, "server sent no response message", NULL, 0);
	} else if (c->status == GRPC_STATUS_OK) {
		body = rpc_client_take_message(c);
		c->done(c->arg, GRPC_STATUS_OK, details, GRPC_SLICE_START_PTR(body),
			GRPC_SLICE_LENGTH(body));
		grpc_slice_unref(body);
	} else {
		c->done(c->arg, c->status, details, NULL, 0);
	}
	rpc_client_call_free(c);
}

static void rpc_client_stream_maybe_end(struct rpc_client_call *c)
{
	char details[512];

	/* Messages the server sent before its OK wait for the reader. */
	if (c->pending > 0 || !c->saw_status || (c->parked && c->status == GRPC_STATUS_OK))
		return;
	rpc_client_details(c, details, sizeof(details));
	c->cbs.on_end(c->arg, c->status, details);
	rpc_client_call_free(c);
}

static void rpc_client_recv_next(struct rpc_client_call *c)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &c->recv_bb;
	rpc_client_batch(c, &op, 1, &c->msg_tag);
}

static void rpc_client_msg_done(struct rpc_tag *tag, bool ok)
{
	struct rpc_client_call *c =
		(struct rpc_client_call *)((char *)tag - offsetof(struct rpc_client_call, msg_tag));
	grpc_slice body;

	c->pending--;
	if (ok && c->recv_bb != NULL) {
		body = rpc_client_take_message(c);
		grpc_byte_buffer_destroy(c->recv_bb);
		c->recv_bb = NULL;
		c->cbs.on_message(c->arg, GRPC_SLICE_START_PTR(body), GRPC_SLICE_LENGTH(body));
		grpc_slice_unref(body);
		if (c->hold) {
			c->parked = true;
			rpc_client_stream_maybe_end(c);
			return;
		}
		rpc_client_recv_next(c);
		return;
	}
	rpc_client_stream_maybe_end(c);
}

static void rpc_client_start_done(struct rpc_tag *tag, bool ok)
{
	struct rpc_client_call *c = (struct rpc_client_call *)((char *)tag -
							       offsetof(struct rpc_client_call,
									start_tag));

	c->pending--;
	if (ok) {
		struct rpc_headers h = { .md = &c->init_md };

		if (c->cbs.on_headers != NULL)
			c->cbs.on_headers(c->arg, &h);
		rpc_client_recv_next(c);
		return;
	}
	rpc_client_stream_maybe_end(c);
}

static void rpc_client_status_done(struct rpc_tag *tag, bool ok)
{
	struct rpc_client_call *c = (struct rpc_client_call *)((char *)tag -
							       offsetof(struct rpc_client_call,
									status_tag));

	(void)ok;
	c->pending--;
	c->saw_status = true;
	rpc_client_stream_maybe_end(c);
}

static int rpc_client_call_new(struct rpc_loop *loop, struct rpc_channel *ch, const char *method,
			       const uint8_t *req, size_t len, const struct rpc_client_opts *opts,
			       struct rpc_client_call **out, struct tsr_err *err)
{
	struct rpc_client_call *c;
	grpc_slice mslice, body;
	gpr_timespec deadline;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	c->loop = loop;
	c->details = grpc_empty_slice();
	grpc_metadata_array_init(&c->init_md);
	grpc_metadata_array_init(&c->trail_md);
	for (size_t i = 0; i < RPC_CLIENT_METADATA_MAX && opts->md_keys[i] != NULL; i++) {
		c->md[i].key = grpc_slice_from_copied_string(opts->md_keys[i]);
		c->md[i].value = grpc_slice_from_copied_string(opts->md_values[i]);
		c->nmd++;
	}
	deadline = opts->timeout_ms > 0 ? rpc_deadline_in(opts->timeout_ms)
					: gpr_inf_future(GPR_CLOCK_MONOTONIC);
	mslice = grpc_slice_from_copied_string(method);
	c->call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS,
					   rpc_loop_cq(loop), mslice, NULL, deadline, NULL);
	grpc_slice_unref(mslice);
	if (c->call == NULL) {
		rpc_client_call_free(c);
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "cannot create call %s", method);
	}
	body = grpc_slice_from_copied_buffer((const char *)req, len);
	c->send_bb = grpc_raw_byte_buffer_create(&body, 1);
	grpc_slice_unref(body);
	*out = c;
	return 0;
}

static void rpc_client_fill_start(struct rpc_client_call *c, grpc_op *ops)
{
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = c->nmd;
	ops[0].data.send_initial_metadata.metadata = c->md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = c->send_bb;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->init_md;
}

int rpc_client_unary(struct rpc_loop *loop, struct rpc_channel *ch, const char *method,
		     const uint8_t *req, size_t len, const struct rpc_client_opts *opts,
		     rpc_unary_done_fn done, void *arg, struct rpc_client_call **call_out,
		     struct tsr_err *err)
{
	struct rpc_client_call *c;
	grpc_op ops[6];

	if (rpc_client_call_new(loop, ch, method, req, len, opts, &c, err) != 0)
		return -1;
	c->done = done;
	c->arg = arg;
	c->start_tag.done = rpc_client_unary_done;
	memset(ops, 0, sizeof(ops));
	rpc_client_fill_start(c, ops);
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &c->recv_bb;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &c->trail_md;
	ops[5].data.recv_status_on_client.status = &c->status;
	ops[5].data.recv_status_on_client.status_details = &c->details;
	if (call_out != NULL)
		*call_out = c;
	rpc_client_batch(c, ops, 6, &c->start_tag);
	return 0;
}

int rpc_client_stream(struct rpc_loop *loop, struct rpc_channel *ch, const char *method,
		      const uint8_t *req, size_t len, const struct rpc_client_opts *opts,
		      const struct rpc_stream_cbs *cbs, void *arg,
		      struct rpc_client_call **call_out, struct tsr_err *err)
{
	struct rpc_client_call *c;
	grpc_op ops[4], st;

	if (rpc_client_call_new(loop, ch, method, req, len, opts, &c, err) != 0)
		return -1;
	c->stream = true;
	c->cbs = *cbs;
	c->arg = arg;
	c->start_tag.done = rpc_client_start_done;
	c->msg_tag.done = rpc_client_msg_done;
	c->status_tag.done = rpc_client_status_done;
	memset(ops, 0, sizeof(ops));
	rpc_client_fill_start(c, ops);
	memset(&st, 0, sizeof(st));
	st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	st.data.recv_status_on_client.trailing_metadata = &c->trail_md;
	st.data.recv_status_on_client.status = &c->status;
	st.data.recv_status_on_client.status_details = &c->details;
	if (call_out != NULL)
		*call_out = c;
	rpc_client_batch(c, ops, 4, &c->start_tag);
	rpc_client_batch(c, &st, 1, &c->status_tag);
	return 0;
}

int rpc_headers_get(const struct rpc_headers *h, const char *key, char *buf, size_t buflen)
{
	return rpc_metadata_get(h->md, key, buf, buflen);
}

void rpc_client_cancel(struct rpc_client_call *c)
{
	grpc_call_cancel(c->call, NULL);
}

void rpc_client_stream_hold(struct rpc_client_call *c)
{
	c->hold = true;
}

void rpc_client_stream_resume(struct rpc_client_call *c)
{
	c->hold = false;
	if (!c->parked)
		return;
	c->parked = false;
	rpc_client_recv_next(c);
}
