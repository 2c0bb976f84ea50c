/*
 * rpc_server: serving gRPC methods on gRPC C core, the only server-side
 * code that builds grpc_op arrays. A handler is called on the loop thread
 * with the request bytes; it answers at once or later, from any thread,
 * through the struct rpc_call it was given.
 *
 * Unary and server-streaming methods get their one request message;
 * bidirectional ones get each client message in turn (rpc_server_add_bidi).
 *
 * Ownership: a handler holds one reference to its call, which it gives up
 * with exactly one rpc_call_finish() or rpc_call_reply(); it must not
 * touch the call afterwards.
 */
#ifndef TSR_RPC_SERVER_H
#define TSR_RPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "rpc_loop.h"

#define RPC_METHODS_MAX 32
#define RPC_SEND_QUEUE_MAX 1024
#define RPC_DEFAULT_MAX_MESSAGE (4 * 1024 * 1024) /* what a gRPC client takes unless told */

struct rpc_server;
struct rpc_call;

/* req is valid only during the call; NULL only for a bidirectional
 * stream's end (rpc_server_add_bidi). */
typedef void (*rpc_handler_fn)(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len);

struct rpc_server_opts {
	const char *listen; /* "host:port" */
	size_t max_message; /* received messages; 0: a signed command and its margin */
	/* PEM files. tls_cert NULL: plaintext; tls_client_ca given: clients
	 * must present a certificate it signed (mutual TLS). */
	const char *tls_cert, *tls_key, *tls_client_ca;
};

/*
 * A gate runs on the loop thread for every call of the service it guards,
 * before the request is read or any handler runs: -1 with err set ends
 * the call with err's status, and the handler never sees it.
 */
typedef int (*rpc_gate_fn)(void *ctx, struct rpc_call *call, struct tsr_err *err);

int rpc_server_new(struct rpc_loop *loop, const struct rpc_server_opts *opts,
		   struct rpc_server **out, struct tsr_err *err);
/* path is "/package.Service/Method"; before rpc_server_start(). */
int rpc_server_add_method(struct rpc_server *srv, const char *path, rpc_handler_fn fn, void *ctx,
			  struct tsr_err *err);
/*
 * A bidirectional stream. fn runs on the loop thread with each client
 * message in turn (the next one is read once fn has returned), then once
 * with req NULL when the client has half-closed or gone away, or has sent
 * more than max_messages: the server then ends the call itself with
 * RESOURCE_EXHAUSTED, after the replies already queued. The handler's
 * reference is the one it gives up with rpc_call_finish(), from any of
 * these runs or later; once it has, fn is not run again for that call.
 */
int rpc_server_add_bidi(struct rpc_server *srv, const char *path, rpc_handler_fn fn, void *ctx,
			size_t max_messages, struct tsr_err *err);
/* Guards every method of service ("package.Service"), added before or
 * after; before rpc_server_start(). One gate per server. */
int rpc_server_set_gate(struct rpc_server *srv, const char *service, rpc_gate_fn fn, void *ctx,
			struct tsr_err *err);
/*
 * Called once per call as it ends, with its status, on the thread that
 * ends it: path is its method's ("/package.Service/Method"), NULL for a
 * method nobody registered. Metrics: it must be quick and thread-safe.
 */
typedef void (*rpc_observe_fn)(void *ctx, const char *path, grpc_status_code code);
/* Has every call's end reported to fn; before rpc_server_start(). One per server. */
void rpc_server_observe(struct rpc_server *srv, rpc_observe_fn fn, void *ctx);
/* The services of the methods added so far ("package.Service"), each
 * once, in the order of their first method; NULL past the last. */
const char *rpc_server_service(const struct rpc_server *srv, size_t i);
/* Reads the TLS files, binds and starts; *port gets the bound port
 * (useful with port 0). */
int rpc_server_start(struct rpc_server *srv, int *port, struct tsr_err *err);
/* Stops accepting and cancels every call; run the loop's drain next. */
void rpc_server_shutdown(struct rpc_server *srv);
/* After the shutdown has drained. */
void rpc_server_free(struct rpc_server *srv);

/* Queues one message on a stream; thread-safe. -1 when the call is gone
 * (cancelled, finished) or RPC_SEND_QUEUE_MAX messages wait already. */
int rpc_call_send(struct rpc_call *call, const uint8_t *msg, size_t len);
/*
 * Sends the initial metadata now rather than with the first message, with
 * one key: value header (key NULL for none), copied. A client can tell
 * these headers from the empty ones gRPC reports for a refused call.
 */
void rpc_call_send_headers(struct rpc_call *call, const char *key, const char *value);
/* Ends the call with a status after every queued message; thread-safe. */
void rpc_call_finish(struct rpc_call *call, grpc_status_code code, const char *msg);
/* A unary success: one message, then OK. */
void rpc_call_reply(struct rpc_call *call, const uint8_t *msg, size_t len);
void rpc_call_fail(struct rpc_call *call, const struct tsr_err *err);

size_t rpc_call_queued(struct rpc_call *call);
/* The loop the call's server runs on: a handler's way to defer its answer. */
struct rpc_loop *rpc_call_loop(struct rpc_call *call);
bool rpc_call_cancelled(struct rpc_call *call);
/* fn runs once on the loop thread if the client goes away first (at once
 * if it has gone already); fn NULL takes back the one set before. */
void rpc_call_on_cancel(struct rpc_call *call, void (*fn)(void *arg), void *arg);
/* Milliseconds the caller still allows; -1 when it set no deadline. */
int64_t rpc_call_remaining_ms(struct rpc_call *call);
/* Copies a request metadata value (NUL-terminated); -1 if absent/too long. */
int rpc_call_metadata(struct rpc_call *call, const char *key, char *buf, size_t buflen);
#define RPC_PEER_HOST_MAX 128 /* bytes of rpc_call_peer_host's answer, its NUL among them */
/*
 * Copies into buf (RPC_PEER_HOST_MAX) where the call comes from, without
 * its port ("ipv4:10.0.0.5", "ipv6:[::1]", "unix:/path"), so that one
 * host's calls can be counted together; -1 if gRPC cannot say or it is
 * too long.
 */
int rpc_call_peer_host(struct rpc_call *call, char buf[RPC_PEER_HOST_MAX]);

#endif
