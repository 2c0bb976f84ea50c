/*
 * test_grpc_services: the standard services every daemon serves through
 * common/ (grpc.health.v1.Health, server reflection v1 and v1alpha) and the
 * bidirectional streams of rpc_server under them, driven over real gRPC
 * against an rpc_server on a loopback port whose loop runs in a thread.
 * Unary and server-streaming calls go through rpc_client; the reflection
 * streams through a small synchronous client below. A gate guards
 * tessera.v1.Hub, as the hub's token check does. The server takes the
 * bound a spoke's does (none given: a signed command and a margin), and
 * a client hands on a server's status message escaped.
 */
#include <check.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "descriptors.h"
#include "envelope.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "health.h"
#include "pb.h"
#include "protocol.h"
#include "reflection.h"
#include "rpc_client.h"
#include "rpc_loop.h"
#include "rpc_server.h"
#include "tessera/v1/agent.pb-c.h"
#include "tessera/v1/hub.pb-c.h"

#define GET_AGENT TSR_METHOD_GET_AGENT
/* A status message with terminal controls and bytes that are not UTF-8. */
#define HOSTILE_MESSAGE "spoke down\x1b[2J\x1b]0;owned\x07\r\n\xff\xc3"
/* What a server reads when told nothing: the spoke's bound. */
#define RECEIVE_MAX (ENVELOPE_COMMAND_MAX + TSR_RECEIVE_MARGIN)
#define CALL_MS 10000

typedef Grpc__Reflection__V1__ServerReflectionRequest rfl_request;
typedef Grpc__Reflection__V1__ServerReflectionResponse rfl_response;
#define SERVING_STATUS(s) GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__##s
#define RFL_REQUEST(c) GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_##c
#define RFL_RESPONSE(c) GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_##c

/* The server side, its loop in srv_thread. */
static struct rpc_loop *srv_loop;
static struct rpc_server *srv;
static struct health *health;
static pthread_t srv_thread;
static volatile bool srv_stop;
static char target[64];

/* health_set() belongs to the loop thread: the tick applies what tests ask. */
static pthread_mutex_t pending_mu = PTHREAD_MUTEX_INITIALIZER;
static bool pending;
static char pending_service[HEALTH_SERVICE_MAX + 1];
static enum health_status pending_status;

/* The client side, run from the test's own thread. */
static struct rpc_loop *cli_loop;
static struct rpc_channel *channel;
static volatile bool progress;

static atomic_int get_agent_calls; /* how often the handler ran */
static atomic_int stall_ms;	   /* the loop's next tick sleeps this long */
static atomic_bool stalled;	   /* while it does */

static void get_agent(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	Tessera__V1__Agent agent = TESSERA__V1__AGENT__INIT;
	uint8_t *buf;
	size_t n;
	struct tsr_err err;

	atomic_fetch_add(&get_agent_calls, 1);
	agent.id = "spoke-1.00";
	ck_assert_int_eq(pb_pack(&agent.base, &buf, &n, &err), 0);
	rpc_call_reply(call, buf, n);
	free(buf);
}

/* Refuses the calls that carry "x-gate: closed", and "x-gate: hostile" with HOSTILE_MESSAGE. */
static int gate(void *ctx, struct rpc_call *call, struct tsr_err *err)
{
	char v[16];

	if (rpc_call_metadata(call, "x-gate", v, sizeof(v)) != 0)
		return 0;
	if (strcmp(v, "closed") == 0)
		return tsr_err_set(err, GRPC_STATUS_UNAUTHENTICATED, "gate closed");
	if (strcmp(v, "hostile") == 0)
		return tsr_err_set(err, GRPC_STATUS_UNAVAILABLE, "%s", HOSTILE_MESSAGE);
	return 0;
}

static void server_tick(void *arg)
{
	struct tsr_err err;
	int ms = atomic_exchange(&stall_ms, 0);

	if (ms > 0) {
		atomic_store(&stalled, true);
		usleep((useconds_t)ms * 1000);
		atomic_store(&stalled, false);
	}

	pthread_mutex_lock(&pending_mu);
	if (pending) {
		ck_assert_int_eq(health_set(health, pending_service, pending_status, &err), 0);
		pending = false;
	}
	pthread_mutex_unlock(&pending_mu);
}

static void *server_main(void *arg)
{
	rpc_loop_run(srv_loop, &srv_stop);
	return NULL;
}

static void setup(void)
{
	struct rpc_server_opts opts = { .listen = "127.0.0.1:0" };
	struct tsr_err err;
	int port;

	grpc_init();
	srv_stop = false;
	ck_assert_int_eq(rpc_loop_new(&srv_loop, &err), 0);
	ck_assert_int_eq(rpc_server_new(srv_loop, &opts, &srv, &err), 0);
	ck_assert_int_eq(rpc_server_add_method(srv, GET_AGENT, get_agent, NULL, &err), 0);
	ck_assert_int_eq(health_new(&health, &err), 0);
	ck_assert_int_eq(health_register(health, srv, &err), 0);
	ck_assert_int_eq(reflection_register(srv, &err), 0);
	/* After its method was added: the gate covers it all the same. */
	ck_assert_int_eq(rpc_server_set_gate(srv, "tessera.v1.Hub", gate, NULL, &err), 0);
	ck_assert_int_eq(rpc_server_start(srv, &port, &err), 0);
	ck_assert_int_gt(port, 0);
	/* Still the loop thread: the loop has not started. */
	ck_assert_int_eq(health_set(health, "", HEALTH_SERVING, &err), 0);
	ck_assert_int_eq(health_set(health, "tessera.v1.Hub", HEALTH_SERVING, &err), 0);
	rpc_loop_set_tick(srv_loop, server_tick, NULL, 10);
	ck_assert_int_eq(pthread_create(&srv_thread, NULL, server_main, NULL), 0);

	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	ck_assert_int_eq(rpc_loop_new(&cli_loop, &err), 0);
	ck_assert_int_eq(rpc_channel_new(target, 0, NULL, &channel, &err), 0);
}

/* The server first: its shutdown ends the streams a test left open, and
 * the client loop can then drain them. */
static void teardown(void)
{
	srv_stop = true;
	pthread_join(srv_thread, NULL);
	/* The loop is this thread's now. */
	rpc_server_shutdown(srv);
	rpc_loop_drain(srv_loop, 2000);
	health_free(health);
	rpc_server_free(srv);
	rpc_loop_free(srv_loop);
	rpc_loop_drain(cli_loop, 2000);
	rpc_channel_free(channel);
	rpc_loop_free(cli_loop);
	grpc_shutdown();
}

/* Runs the client loop until pred holds; every callback sets progress. */
static void client_run(bool (*pred)(void *), void *arg)
{
	while (!pred(arg)) {
		progress = false;
		rpc_loop_run(cli_loop, &progress);
	}
}

static void server_health_set(const char *service, enum health_status status)
{
	bool waiting = true;

	pthread_mutex_lock(&pending_mu);
	snprintf(pending_service, sizeof(pending_service), "%s", service);
	pending_status = status;
	pending = true;
	pthread_mutex_unlock(&pending_mu);
	while (waiting) {
		usleep(5000);
		pthread_mutex_lock(&pending_mu);
		waiting = pending;
		pthread_mutex_unlock(&pending_mu);
	}
}

/* Unary calls through rpc_client. */

struct unary {
	bool done;
	grpc_status_code code;
	char details[256];
	uint8_t resp[256];
	size_t len;
};

static void unary_done(void *arg, grpc_status_code code, const char *details, const uint8_t *resp,
		       size_t len)
{
	struct unary *u = arg;

	u->code = code;
	snprintf(u->details, sizeof(u->details), "%s", details);
	ck_assert_uint_le(len, sizeof(u->resp));
	if (resp != NULL)
		memcpy(u->resp, resp, len);
	u->len = len;
	u->done = true;
	progress = true;
}

static bool unary_ended(void *arg)
{
	return ((struct unary *)arg)->done;
}

/* A unary call with "x-gate: gate_value" unless gate_value is NULL. */
static void unary_gate(const char *method, const uint8_t *req, size_t len, const char *gate_value,
		       struct unary *u)
{
	struct rpc_client_opts opts = { .timeout_ms = CALL_MS };
	struct tsr_err err;

	if (gate_value != NULL) {
		opts.md_keys[0] = "x-gate";
		opts.md_values[0] = gate_value;
	}
	memset(u, 0, sizeof(*u));
	ck_assert_int_eq(rpc_client_unary(cli_loop, channel, method, req, len, &opts, unary_done, u,
					  NULL, &err),
			 0);
	client_run(unary_ended, u);
}

static void unary(const char *method, const uint8_t *req, size_t len, struct unary *u)
{
	unary_gate(method, req, len, NULL, u);
}

/* The status Check answers for service, or its error code as a negative. */
static int health_check(const char *service)
{
	Grpc__Health__V1__HealthCheckRequest rq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *resp;
	uint8_t *buf;
	size_t len;
	struct unary u;
	struct tsr_err err;
	int status;

	rq.service = (char *)service;
	ck_assert_int_eq(pb_pack(&rq.base, &buf, &len, &err), 0);
	unary(HEALTH_CHECK_METHOD, buf, len, &u);
	free(buf);
	if (u.code != GRPC_STATUS_OK)
		return -(int)u.code;
	resp = grpc__health__v1__health_check_response__unpack(NULL, u.len, u.resp);
	ck_assert_ptr_nonnull(resp);
	status = resp->status;
	grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
	return status;
}

/* Health watches through rpc_client streams. */

#define WATCH_SEEN_MAX 16

struct watch {
	struct rpc_client_call *call;
	int seen[WATCH_SEEN_MAX];
	size_t n, want;
	bool ended;
	grpc_status_code code;
};

static void watch_message(void *arg, const uint8_t *msg, size_t len)
{
	struct watch *w = arg;
	Grpc__Health__V1__HealthCheckResponse *resp;

	resp = grpc__health__v1__health_check_response__unpack(NULL, len, msg);
	ck_assert_ptr_nonnull(resp);
	ck_assert_uint_lt(w->n, WATCH_SEEN_MAX);
	w->seen[w->n++] = resp->status;
	grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
	progress = true;
}

static void watch_end(void *arg, grpc_status_code code, const char *details)
{
	struct watch *w = arg;

	w->code = code;
	w->ended = true;
	w->call = NULL;
	progress = true;
}

static bool watch_has(void *arg)
{
	struct watch *w = arg;

	return w->n >= w->want || w->ended;
}

static bool watch_ended(void *arg)
{
	return ((struct watch *)arg)->ended;
}

static void watch_start(struct watch *w, const char *service)
{
	static const struct rpc_stream_cbs cbs = {
		.on_message = watch_message,
		.on_end = watch_end,
	};
	Grpc__Health__V1__HealthCheckRequest rq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	struct rpc_client_opts opts = { .timeout_ms = 0 };
	uint8_t *buf;
	size_t len;
	struct tsr_err err;

	memset(w, 0, sizeof(*w));
	rq.service = (char *)service;
	ck_assert_int_eq(pb_pack(&rq.base, &buf, &len, &err), 0);
	ck_assert_int_eq(rpc_client_stream(cli_loop, channel, HEALTH_WATCH_METHOD, buf, len, &opts,
					   &cbs, w, &w->call, &err),
			 0);
	free(buf);
}

/* Waits for the watch's n-th message (or its end). */
static void watch_wait(struct watch *w, size_t n)
{
	w->want = n;
	client_run(watch_has, w);
}

static void watch_cancel(struct watch *w)
{
	if (w->call != NULL)
		rpc_client_cancel(w->call);
	client_run(watch_ended, w);
}

/* A synchronous client for the bidirectional reflection streams: one batch
 * in flight at a time on its own queue, so the next event is always its. */

struct bidi {
	grpc_completion_queue *cq;
	grpc_channel *ch;
	grpc_call *call;
	bool started; /* initial metadata sent */
	grpc_metadata_array init_md, trail_md;
};

static bool bidi_batch(struct bidi *b, grpc_op *ops, size_t n)
{
	grpc_event ev;

	ck_assert_int_eq(grpc_call_start_batch(b->call, ops, n, b, NULL), GRPC_CALL_OK);
	ev = grpc_completion_queue_next(b->cq, rpc_deadline_in(CALL_MS), NULL);
	ck_assert_int_eq(ev.type, GRPC_OP_COMPLETE);
	ck_assert_ptr_eq(ev.tag, b);
	return ev.success != 0;
}

static void bidi_open(struct bidi *b, const char *method)
{
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	grpc_slice m = grpc_slice_from_copied_string(method);

	memset(b, 0, sizeof(*b));
	b->cq = grpc_completion_queue_create_for_next(NULL);
	b->ch = grpc_channel_create(target, creds, NULL);
	grpc_channel_credentials_release(creds);
	b->call = grpc_channel_create_call(b->ch, NULL, GRPC_PROPAGATE_DEFAULTS, b->cq, m, NULL,
					   rpc_deadline_in(60000), NULL);
	grpc_slice_unref(m);
	ck_assert_ptr_nonnull(b->call);
	grpc_metadata_array_init(&b->init_md);
	grpc_metadata_array_init(&b->trail_md);
}

/* Sends one message and waits for one back; false when the stream ended. */
static bool bidi_exchange(struct bidi *b, const uint8_t *msg, size_t len, grpc_slice *resp)
{
	grpc_slice s = grpc_slice_from_copied_buffer((const char *)msg, len);
	grpc_byte_buffer *out = grpc_raw_byte_buffer_create(&s, 1), *in = NULL;
	grpc_byte_buffer_reader reader;
	grpc_op ops[4];
	size_t n = 0;

	grpc_slice_unref(s);
	memset(ops, 0, sizeof(ops));
	if (!b->started) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n++].data.recv_initial_metadata.recv_initial_metadata = &b->init_md;
		b->started = true;
	}
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n++].data.send_message.send_message = out;
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n++].data.recv_message.recv_message = &in;
	/* A stream the server has ended fails the send: in tells. */
	bidi_batch(b, ops, n);
	grpc_byte_buffer_destroy(out);
	if (in == NULL)
		return false;
	ck_assert(grpc_byte_buffer_reader_init(&reader, in));
	*resp = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	grpc_byte_buffer_destroy(in);
	return true;
}

/* Half-closes (or cancels) and returns the final status. */
static grpc_status_code bidi_close(struct bidi *b, bool cancel)
{
	grpc_status_code code = GRPC_STATUS_UNKNOWN;
	grpc_slice details;
	grpc_op ops[2];
	size_t n = 0;

	memset(ops, 0, sizeof(ops));
	if (cancel) {
		grpc_call_cancel(b->call, NULL);
	} else {
		if (!b->started)
			ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
		bidi_batch(b, ops, n);
	}
	n = 0;
	memset(ops, 0, sizeof(ops));
	if (!b->started) {
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n++].data.recv_initial_metadata.recv_initial_metadata = &b->init_md;
	}
	ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[n].data.recv_status_on_client.trailing_metadata = &b->trail_md;
	ops[n].data.recv_status_on_client.status = &code;
	ops[n++].data.recv_status_on_client.status_details = &details;
	ck_assert(bidi_batch(b, ops, n));
	grpc_slice_unref(details);
	return code;
}

static void bidi_free(struct bidi *b)
{
	grpc_call_unref(b->call);
	grpc_channel_destroy(b->ch);
	grpc_completion_queue_shutdown(b->cq);
	while (grpc_completion_queue_next(b->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(b->cq);
	grpc_metadata_array_destroy(&b->init_md);
	grpc_metadata_array_destroy(&b->trail_md);
}

/* One reflection request of the given kind; the answer, unpacked. */
static rfl_response *ask(struct bidi *b, rfl_request *rq)
{
	rfl_response *resp;
	grpc_slice s;
	uint8_t *buf;
	size_t len;
	struct tsr_err err;

	ck_assert_int_eq(pb_pack(&rq->base, &buf, &len, &err), 0);
	ck_assert(bidi_exchange(b, buf, len, &s));
	free(buf);
	resp = grpc__reflection__v1__server_reflection_response__unpack(NULL, GRPC_SLICE_LENGTH(s),
									GRPC_SLICE_START_PTR(s));
	grpc_slice_unref(s);
	ck_assert_ptr_nonnull(resp);
	ck_assert_ptr_nonnull(resp->original_request);
	ck_assert_int_eq(resp->original_request->message_request_case, rq->message_request_case);
	return resp;
}

static rfl_response *ask_symbol(struct bidi *b, const char *symbol)
{
	rfl_request rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;

	rq.message_request_case = RFL_REQUEST(FILE_CONTAINING_SYMBOL);
	rq.file_containing_symbol = (char *)symbol;
	return ask(b, &rq);
}

static rfl_response *ask_file(struct bidi *b, const char *name)
{
	rfl_request rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;

	rq.message_request_case = RFL_REQUEST(FILE_BY_FILENAME);
	rq.file_by_filename = (char *)name;
	return ask(b, &rq);
}

static void done(rfl_response *resp)
{
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
}

/* The answer is the file `first` followed by its imports, each once, and
 * names every file in `also`. Frees resp. */
static void expect_files(rfl_response *resp, const char *first, const char *const *also)
{
	Grpc__Reflection__V1__FileDescriptorResponse *fdr;
	char names[DESCRIPTORS_FILES_MAX][128];

	ck_assert_int_eq(resp->message_response_case, RFL_RESPONSE(FILE_DESCRIPTOR_RESPONSE));
	fdr = resp->file_descriptor_response;
	ck_assert_uint_ge(fdr->n_file_descriptor_proto, 1);
	ck_assert_uint_le(fdr->n_file_descriptor_proto, DESCRIPTORS_FILES_MAX);
	for (size_t i = 0; i < fdr->n_file_descriptor_proto; i++) {
		Google__Protobuf__FileDescriptorProto *f;

		f = google__protobuf__file_descriptor_proto__unpack(
			NULL, fdr->file_descriptor_proto[i].len,
			fdr->file_descriptor_proto[i].data);
		ck_assert_ptr_nonnull(f);
		snprintf(names[i], sizeof(names[i]), "%s", f->name);
		google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(names[j], names[i]);
	}
	ck_assert_str_eq(names[0], first);
	for (; also != NULL && *also != NULL; also++) {
		bool found = false;

		for (size_t i = 0; i < fdr->n_file_descriptor_proto && !found; i++)
			found = strcmp(names[i], *also) == 0;
		ck_assert_msg(found, "%s missing from the answer", *also);
	}
	done(resp);
}

/* Frees resp. */
static void expect_error(rfl_response *resp, grpc_status_code code)
{
	ck_assert_int_eq(resp->message_response_case, RFL_RESPONSE(ERROR_RESPONSE));
	ck_assert_int_eq(resp->error_response->error_code, code);
	done(resp);
}

START_TEST(test_unary_unchanged)
{
	Tessera__V1__GetAgentRequest rq = TESSERA__V1__GET_AGENT_REQUEST__INIT;
	Tessera__V1__Agent *agent;
	uint8_t *buf;
	size_t len;
	struct unary u;
	struct tsr_err err;

	rq.agent_id = "spoke-1.00";
	ck_assert_int_eq(pb_pack(&rq.base, &buf, &len, &err), 0);
	unary(GET_AGENT, buf, len, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_OK);
	agent = tessera__v1__agent__unpack(NULL, u.len, u.resp);
	ck_assert_ptr_nonnull(agent);
	ck_assert_str_eq(agent->id, "spoke-1.00");
	tessera__v1__agent__free_unpacked(agent, NULL);
	unary(TSR_HUB_METHOD("Nope"), buf, len, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_UNIMPLEMENTED);
	free(buf);
}
END_TEST

static bool stall_over(void *arg)
{
	(void)arg;
	return !atomic_load(&stalled);
}

/*
 * A call that reaches a busy server and is only served after its deadline
 * is answered DEADLINE_EXCEEDED without its handler running: a late
 * request must not act. A timely one is served as ever.
 */
START_TEST(test_late_call_not_served)
{
	Tessera__V1__GetAgentRequest rq = TESSERA__V1__GET_AGENT_REQUEST__INIT;
	struct rpc_client_opts opts = { .timeout_ms = 200 };
	uint8_t *buf;
	size_t len;
	struct unary u;
	struct tsr_err err;
	int before;

	rq.agent_id = "spoke-1.00";
	ck_assert_int_eq(pb_pack(&rq.base, &buf, &len, &err), 0);
	before = atomic_load(&get_agent_calls);
	atomic_store(&stall_ms, 1000);
	for (int i = 0; i < 500 && !atomic_load(&stalled); i++)
		usleep(1000);
	ck_assert(atomic_load(&stalled));
	memset(&u, 0, sizeof(u));
	ck_assert_int_eq(rpc_client_unary(cli_loop, channel, GET_AGENT, buf, len, &opts, unary_done,
					  &u, NULL, &err),
			 0);
	client_run(unary_ended, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_DEADLINE_EXCEEDED);
	while (!stall_over(NULL))
		usleep(1000);
	/* The loop has had its turn at the late call by the time a new one is served. */
	unary(GET_AGENT, buf, len, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_OK);
	ck_assert_int_eq(atomic_load(&get_agent_calls), before + 1);
	free(buf);
}
END_TEST

START_TEST(test_gate)
{
	Tessera__V1__GetAgentRequest rq = TESSERA__V1__GET_AGENT_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckRequest hrq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	uint8_t *buf, *hbuf;
	size_t len, hlen;
	struct unary u;
	struct tsr_err err;
	int before = atomic_load(&get_agent_calls);

	rq.agent_id = "spoke-1.00";
	ck_assert_int_eq(pb_pack(&rq.base, &buf, &len, &err), 0);
	unary_gate(GET_AGENT, buf, len, "closed", &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_UNAUTHENTICATED);
	ck_assert_str_eq(u.details, "gate closed");
	/* Refused first: not even bytes that do not parse reach the handler. */
	unary_gate(GET_AGENT, (const uint8_t *)"\xff\xff", 2, "closed", &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_UNAUTHENTICATED);
	ck_assert_int_eq(atomic_load(&get_agent_calls), before);
	unary_gate(GET_AGENT, buf, len, "open", &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_OK);
	ck_assert_int_eq(atomic_load(&get_agent_calls), before + 1);
	/* Other services are not behind the gate. */
	ck_assert_int_eq(pb_pack(&hrq.base, &hbuf, &hlen, &err), 0);
	unary_gate(HEALTH_CHECK_METHOD, hbuf, hlen, "closed", &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_OK);
	free(hbuf);
	free(buf);
}
END_TEST

/*
 * A server told no bound reads a signed command and the margin, and gRPC
 * refuses a byte more RESOURCE_EXHAUSTED before the handler runs.
 */
START_TEST(test_receive_bound)
{
	uint8_t *big = calloc(1, RECEIVE_MAX + 1);
	int before = atomic_load(&get_agent_calls);
	struct unary u;

	ck_assert_ptr_nonnull(big);
	unary(GET_AGENT, big, RECEIVE_MAX, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_OK);
	ck_assert_int_eq(atomic_load(&get_agent_calls), before + 1);
	unary(GET_AGENT, big, RECEIVE_MAX + 1, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
	ck_assert_int_eq(atomic_load(&get_agent_calls), before + 1);
	free(big);
}
END_TEST

/* No signature covers a status message: the client escapes what it shows. */
START_TEST(test_details_escaped)
{
	struct unary u;

	unary_gate(GET_AGENT, (const uint8_t *)"", 0, "hostile", &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_str_eq(u.details, "spoke down\\x1b[2J\\x1b]0;owned\\x07\\x0d\\x0a\\xff\\xc3");
}
END_TEST

START_TEST(test_server_services)
{
	struct rpc_loop *loop;
	struct rpc_server *s;
	struct rpc_server_opts opts = { .listen = "127.0.0.1:0" };
	struct tsr_err err;

	/* Only the registry: this server never starts. */
	ck_assert_int_eq(rpc_loop_new(&loop, &err), 0);
	ck_assert_int_eq(rpc_server_new(loop, &opts, &s, &err), 0);
	ck_assert_ptr_null(rpc_server_service(s, 0));
	ck_assert_int_eq(rpc_server_add_method(s, "/a.B/C", get_agent, NULL, &err), 0);
	ck_assert_int_eq(rpc_server_add_method(s, "/a.B/D", get_agent, NULL, &err), 0);
	ck_assert_int_eq(rpc_server_add_bidi(s, "/a.E/F", get_agent, NULL, 1, &err), 0);
	ck_assert_str_eq(rpc_server_service(s, 0), "a.B");
	ck_assert_str_eq(rpc_server_service(s, 1), "a.E");
	ck_assert_ptr_null(rpc_server_service(s, 2));
	/* Not "/package.Service/Method", or already there: refused. */
	ck_assert_int_ne(rpc_server_add_method(s, "a.B/C", get_agent, NULL, &err), 0);
	ck_assert_int_ne(rpc_server_add_method(s, "//C", get_agent, NULL, &err), 0);
	ck_assert_int_ne(rpc_server_add_method(s, "/a.B/", get_agent, NULL, &err), 0);
	ck_assert_int_ne(rpc_server_add_method(s, "/a.B/C/D", get_agent, NULL, &err), 0);
	ck_assert_int_ne(rpc_server_add_method(s, "/a.B/C", get_agent, NULL, &err), 0);
	ck_assert_ptr_null(rpc_server_service(s, 2));
	rpc_server_free(s);
	rpc_loop_free(loop);
}
END_TEST

START_TEST(test_health_check)
{
	char longname[HEALTH_SERVICE_MAX + 2];
	struct tsr_err err;
	struct health *h;

	ck_assert_int_eq(health_check(""), SERVING_STATUS(SERVING));
	ck_assert_int_eq(health_check("tessera.v1.Hub"), SERVING_STATUS(SERVING));
	ck_assert_int_eq(health_check("tessera.v1.Nope"), -GRPC_STATUS_NOT_FOUND);
	server_health_set("tessera.v1.Hub", HEALTH_NOT_SERVING);
	ck_assert_int_eq(health_check("tessera.v1.Hub"), SERVING_STATUS(NOT_SERVING));
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert_int_eq(health_check(longname), -GRPC_STATUS_INVALID_ARGUMENT);

	/* A registry of its own: bad input refused, and the table bounded
	 * ("" takes the first of its places). */
	ck_assert_int_eq(health_new(&h, &err), 0);
	ck_assert_int_ne(health_set(h, longname, HEALTH_SERVING, &err), 0);
	ck_assert_int_ne(health_set(h, "a", (enum health_status)3, &err), 0);
	for (int i = 1; i < HEALTH_SERVICES_MAX; i++) {
		char name[16];

		snprintf(name, sizeof(name), "s%d", i);
		ck_assert_int_eq(health_set(h, name, HEALTH_SERVING, &err), 0);
	}
	ck_assert_int_ne(health_set(h, "one.too.many", HEALTH_SERVING, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
	ck_assert_int_eq(health_set(h, "s1", HEALTH_NOT_SERVING, &err), 0);
	health_free(h);
}
END_TEST

START_TEST(test_health_malformed)
{
	struct unary u;

	unary(HEALTH_CHECK_METHOD, (const uint8_t *)"\xff\xff", 2, &u);
	ck_assert_int_eq(u.code, GRPC_STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_health_watch)
{
	/* Static: later outlives the test, until the teardown ends it. */
	static struct watch w, later;

	watch_start(&w, "tessera.v1.Hub");
	watch_wait(&w, 1);
	ck_assert(!w.ended);
	ck_assert_int_eq(w.seen[0], SERVING_STATUS(SERVING));
	/* Only changes are sent: the second NOT_SERVING is not. */
	server_health_set("tessera.v1.Hub", HEALTH_NOT_SERVING);
	server_health_set("tessera.v1.Hub", HEALTH_NOT_SERVING);
	server_health_set("", HEALTH_NOT_SERVING);
	server_health_set("tessera.v1.Hub", HEALTH_SERVING);
	watch_wait(&w, 3);
	ck_assert(!w.ended);
	ck_assert_uint_eq(w.n, 3);
	ck_assert_int_eq(w.seen[1], SERVING_STATUS(NOT_SERVING));
	ck_assert_int_eq(w.seen[2], SERVING_STATUS(SERVING));

	/* A service nobody has set yet is SERVICE_UNKNOWN, until it is. */
	watch_start(&later, "tessera.v1.Later");
	watch_wait(&later, 1);
	ck_assert_int_eq(later.seen[0], SERVING_STATUS(SERVICE_UNKNOWN));
	server_health_set("tessera.v1.Later", HEALTH_SERVING);
	watch_wait(&later, 2);
	ck_assert_int_eq(later.seen[1], SERVING_STATUS(SERVING));

	watch_cancel(&w);
	ck_assert_int_eq(w.code, GRPC_STATUS_CANCELLED);
	ck_assert_uint_eq(w.n, 3);
	/* later stays open: the server ends it at shutdown. */
}
END_TEST

/*
 * One host holds at most HEALTH_WATCHERS_PER_PEER_MAX watches (every call
 * here comes from loopback); once one ends, it gets one again.
 */
START_TEST(test_health_watch_limit)
{
	static struct watch w[HEALTH_WATCHERS_PER_PEER_MAX + 1];
	struct watch again;
	bool served = false;

	for (int i = 0; i < HEALTH_WATCHERS_PER_PEER_MAX; i++) {
		watch_start(&w[i], "");
		watch_wait(&w[i], 1);
		ck_assert(!w[i].ended);
	}
	watch_start(&w[HEALTH_WATCHERS_PER_PEER_MAX], "");
	client_run(watch_ended, &w[HEALTH_WATCHERS_PER_PEER_MAX]);
	ck_assert_int_eq(w[HEALTH_WATCHERS_PER_PEER_MAX].code, GRPC_STATUS_RESOURCE_EXHAUSTED);
	for (int i = 0; i < HEALTH_WATCHERS_PER_PEER_MAX; i++)
		watch_cancel(&w[i]);
	/* The server sees the cancels a little later; then it takes watchers again. */
	for (int tries = 0; tries < 100 && !served; tries++) {
		watch_start(&again, "");
		watch_wait(&again, 1);
		served = !again.ended;
		watch_cancel(&again);
		if (!served)
			usleep(20000);
	}
	ck_assert(served);
}
END_TEST

START_TEST(test_reflection_list)
{
	static const char *const methods[] = { REFLECTION_V1_METHOD, REFLECTION_V1ALPHA_METHOD };
	static const char *const want[] = {
		"tessera.v1.Hub",
		"grpc.health.v1.Health",
		"grpc.reflection.v1.ServerReflection",
		"grpc.reflection.v1alpha.ServerReflection",
	};

	for (size_t m = 0; m < 2; m++) {
		rfl_request rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
		Grpc__Reflection__V1__ListServiceResponse *list;
		rfl_response *resp;
		struct bidi b;

		rq.message_request_case = RFL_REQUEST(LIST_SERVICES);
		rq.list_services = "*";
		bidi_open(&b, methods[m]);
		resp = ask(&b, &rq);
		ck_assert_int_eq(resp->message_response_case, RFL_RESPONSE(LIST_SERVICES_RESPONSE));
		list = resp->list_services_response;
		ck_assert_uint_eq(list->n_service, 4);
		for (size_t i = 0; i < 4; i++)
			ck_assert_str_eq(list->service[i]->name, want[i]);
		done(resp);
		ck_assert_int_eq(bidi_close(&b, false), GRPC_STATUS_OK);
		bidi_free(&b);
	}
}
END_TEST

START_TEST(test_reflection_symbols)
{
	static const char *const hub_deps[] = { "tessera/v1/agent.proto", NULL };
	static const char *const methods[] = { REFLECTION_V1_METHOD, REFLECTION_V1ALPHA_METHOD };
	static const char *const not_found[] = {
		"tessera.v1",
		"tessera",
		"tessera.v1.Hu",
		"tessera.v1.HubX",
		"tessera.v1.Hub.",
		"tessera.v1.Hub.SpawnAgentX",
		"tessera.v1.Hub.SpawnAgent.X",
		".tessera.v1.Hub",
		"tessera.v1.SpokeInfo.Labels",
		"tessera.v1.AgentState.AGENT_STATE_RUNNING.X",
		"grpc.health.v1.Health.Check.Check",
		"",
		"nope.Nope",
	};
	char longname[REFLECTION_NAME_MAX + 2];
	rfl_request rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
	Grpc__Reflection__V1__ExtensionRequest ext = GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;

	for (size_t m = 0; m < 2; m++) {
		struct bidi b;

		/* Many requests on one stream, one answer each, in order. */
		bidi_open(&b, methods[m]);
		expect_files(ask_symbol(&b, "tessera.v1.Hub"), "tessera/v1/hub.proto", hub_deps);
		expect_files(ask_symbol(&b, "tessera.v1.Hub.WatchEvents"), "tessera/v1/hub.proto",
			     hub_deps);
		expect_files(ask_symbol(&b, "tessera.v1.SpawnAgentRequest"), "tessera/v1/hub.proto",
			     NULL);
		expect_files(ask_symbol(&b, "tessera.v1.SpokeInfo.LabelsEntry"),
			     "tessera/v1/hub.proto", NULL);
		expect_files(ask_symbol(&b, "tessera.v1.AgentState"), "tessera/v1/agent.proto",
			     NULL);
		expect_files(ask_symbol(&b, "tessera.v1.Spoke.Execute"), "tessera/v1/spoke.proto",
			     NULL);
		expect_files(ask_symbol(&b, "grpc.health.v1.HealthCheckResponse.ServingStatus"),
			     "grpc/health/v1/health.proto", NULL);
		expect_files(ask_symbol(&b, "grpc.reflection.v1alpha.ServerReflection"),
			     "grpc/reflection/v1alpha/reflection.proto", NULL);
		expect_files(ask_symbol(&b, "grpc.reflection.v1.ServerReflection."
					    "ServerReflectionInfo"),
			     "grpc/reflection/v1/reflection.proto", NULL);
		expect_files(ask_file(&b, "tessera/v1/hub.proto"), "tessera/v1/hub.proto",
			     hub_deps);
		expect_files(ask_file(&b, "grpc/health/v1/health.proto"),
			     "grpc/health/v1/health.proto", NULL);
		for (size_t i = 0; i < sizeof(not_found) / sizeof(not_found[0]); i++) {
			rfl_response *resp = ask_symbol(&b, not_found[i]);

			ck_assert_msg(resp->message_response_case == RFL_RESPONSE(ERROR_RESPONSE),
				      "%s was found", not_found[i]);
			expect_error(resp, GRPC_STATUS_NOT_FOUND);
		}
		expect_error(ask_file(&b, "tessera/v1/nope.proto"), GRPC_STATUS_NOT_FOUND);

		rq.message_request_case = RFL_REQUEST(ALL_EXTENSION_NUMBERS_OF_TYPE);
		rq.all_extension_numbers_of_type = "tessera.v1.Agent";
		expect_error(ask(&b, &rq), GRPC_STATUS_NOT_FOUND);
		rq.message_request_case = RFL_REQUEST(FILE_CONTAINING_EXTENSION);
		ext.containing_type = "tessera.v1.Agent";
		ext.extension_number = 100;
		rq.file_containing_extension = &ext;
		expect_error(ask(&b, &rq), GRPC_STATUS_NOT_FOUND);
		rq.message_request_case = RFL_REQUEST(_NOT_SET);
		expect_error(ask(&b, &rq), GRPC_STATUS_NOT_FOUND);

		memset(longname, 'x', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		expect_error(ask_symbol(&b, longname), GRPC_STATUS_INVALID_ARGUMENT);
		/* Still going after every error answer. */
		expect_files(ask_symbol(&b, "tessera.v1.Agent"), "tessera/v1/agent.proto", NULL);
		ck_assert_int_eq(bidi_close(&b, false), GRPC_STATUS_OK);
		bidi_free(&b);
	}
}
END_TEST

START_TEST(test_reflection_stream_ends)
{
	rfl_request rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
	uint8_t big[REFLECTION_REQUEST_MAX + 1], *buf;
	size_t len, answered = 0;
	grpc_slice s;
	struct bidi b;
	struct tsr_err err;

	/* No request at all: a clean end. */
	bidi_open(&b, REFLECTION_V1_METHOD);
	ck_assert_int_eq(bidi_close(&b, false), GRPC_STATUS_OK);
	bidi_free(&b);

	/* The client hangs up in the middle. */
	bidi_open(&b, REFLECTION_V1_METHOD);
	done(ask_symbol(&b, "tessera.v1.Hub"));
	ck_assert_int_eq(bidi_close(&b, true), GRPC_STATUS_CANCELLED);
	bidi_free(&b);

	/* Not a request: the stream ends. */
	bidi_open(&b, REFLECTION_V1_METHOD);
	ck_assert(!bidi_exchange(&b, (const uint8_t *)"\xff\xff\xff", 3, &s));
	ck_assert_int_eq(bidi_close(&b, false), GRPC_STATUS_INVALID_ARGUMENT);
	bidi_free(&b);

	bidi_open(&b, REFLECTION_V1_METHOD);
	memset(big, 0, sizeof(big));
	ck_assert(!bidi_exchange(&b, big, sizeof(big), &s));
	ck_assert_int_eq(bidi_close(&b, false), GRPC_STATUS_INVALID_ARGUMENT);
	bidi_free(&b);

	/* Past REFLECTION_REQUESTS_MAX: every earlier one answered, then the end. */
	rq.message_request_case = RFL_REQUEST(LIST_SERVICES);
	rq.list_services = "";
	ck_assert_int_eq(pb_pack(&rq.base, &buf, &len, &err), 0);
	bidi_open(&b, REFLECTION_V1ALPHA_METHOD);
	while (answered <= REFLECTION_REQUESTS_MAX && bidi_exchange(&b, buf, len, &s)) {
		grpc_slice_unref(s);
		answered++;
	}
	free(buf);
	ck_assert_uint_eq(answered, REFLECTION_REQUESTS_MAX);
	ck_assert_int_eq(bidi_close(&b, false), GRPC_STATUS_RESOURCE_EXHAUSTED);
	bidi_free(&b);
}
END_TEST

START_TEST(test_descriptors_closed)
{
	struct descriptors d;
	struct descriptors_closure c;
	struct tsr_err err;
	size_t file;

	/* Every file of the embedded set comes with all it imports. */
	ck_assert_int_eq(descriptors_open(&d, &err), 0);
	ck_assert_uint_ge(d.set->n_file, 6);
	for (size_t i = 0; i < d.set->n_file; i++) {
		ck_assert_int_eq(descriptors_closure(&d, i, &c, &err), 0);
		ck_assert_uint_ge(c.n, 1 + d.set->file[i]->n_dependency);
		descriptors_closure_free(&c);
		ck_assert_int_eq(descriptors_file_by_name(&d, d.set->file[i]->name, &file, &err),
				 0);
		ck_assert_uint_eq(file, i);
	}
	ck_assert_int_ne(descriptors_closure(&d, d.set->n_file, &c, &err), 0);
	descriptors_closure_free(&c);
	descriptors_close(&d);
}
END_TEST

int test_suite(SRunner *sr)
{
	TCase *tc;

	tc = check_suite(sr, "grpc_services",
			 CHECK_TESTS(test_unary_unchanged, test_late_call_not_served, test_gate,
				     test_receive_bound, test_details_escaped, test_server_services,
				     test_health_check, test_health_malformed, test_health_watch,
				     test_health_watch_limit, test_reflection_list,
				     test_reflection_symbols, test_reflection_stream_ends,
				     test_descriptors_closed));
	/* Checked: each test's child starts gRPC itself, never its parent. */
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	return 0;
}
