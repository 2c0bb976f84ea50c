/*
 * rpc_client: gRPC calls made from the loop thread, unary and
 * server-streaming, each with a deadline; the only client-side code that
 * builds grpc_op arrays or channel credentials. Every started call ends with exactly one
 * completion callback (done or on_end), after which its handle is freed:
 * clear any pointer you kept to it there.
 */
#ifndef TSR_RPC_CLIENT_H
#define TSR_RPC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "rpc_loop.h"

struct rpc_channel;
struct rpc_client_call;
struct rpc_headers; /* a server's initial metadata */

#define RPC_CLIENT_METADATA_MAX 4

struct rpc_client_opts {
	int64_t timeout_ms;			      /* <= 0: no deadline (streams only) */
	const char *md_keys[RPC_CLIENT_METADATA_MAX]; /* NULL-terminated */
	const char *md_values[RPC_CLIENT_METADATA_MAX];
};

/*
 * resp is valid only during the callback; NULL unless code is OK. details
 * (here and in on_end) is the server's status message, unsigned, escaped
 * (utf8_escape): control and ill-formed bytes as \xNN.
 */
typedef void (*rpc_unary_done_fn)(void *arg, grpc_status_code code, const char *details,
				  const uint8_t *resp, size_t len);

struct rpc_stream_cbs {
	/* Optional: the server's headers. A call the server refuses at once
	 * gets empty ones too: look for a header it sends on success. */
	void (*on_headers)(void *arg, const struct rpc_headers *h);
	void (*on_message)(void *arg, const uint8_t *msg, size_t len);
	void (*on_end)(void *arg, grpc_status_code code, const char *details);
};

/* How a channel reaches its server: PEM files, read at rpc_channel_new(). */
struct rpc_channel_tls {
	const char *ca;		/* verifies the server; required */
	const char *cert, *key; /* optional client certificate (mutual TLS) */
	const char *name;	/* optional: expect this name, not the target's host */
};

/* tls NULL: plaintext. */
int rpc_channel_new(const char *target, size_t max_message, const struct rpc_channel_tls *tls,
		    struct rpc_channel **out, struct tsr_err *err);
void rpc_channel_free(struct rpc_channel *ch);
const char *rpc_channel_target(const struct rpc_channel *ch);
grpc_connectivity_state rpc_channel_state(struct rpc_channel *ch, int try_to_connect);

/* call_out (optional) receives a handle for rpc_client_cancel(). */
int rpc_client_unary(struct rpc_loop *loop, struct rpc_channel *ch, const char *method,
		     const uint8_t *req, size_t len, const struct rpc_client_opts *opts,
		     rpc_unary_done_fn done, void *arg, struct rpc_client_call **call_out,
		     struct tsr_err *err);
int rpc_client_stream(struct rpc_loop *loop, struct rpc_channel *ch, const char *method,
		      const uint8_t *req, size_t len, const struct rpc_client_opts *opts,
		      const struct rpc_stream_cbs *cbs, void *arg,
		      struct rpc_client_call **call_out, struct tsr_err *err);
/* Copies header key's value (NUL-terminated); -1 if absent or too long. */
int rpc_headers_get(const struct rpc_headers *h, const char *key, char *buf, size_t buflen);
/* Thread-safe; the call still ends through its callback. */
void rpc_client_cancel(struct rpc_client_call *call);
/*
 * Loop thread, for a stream: after the message being handled, read no
 * more until resumed, so that gRPC's flow control holds the server back
 * (a stream the server ends OK waits for them too; a failed one ends).
 */
void rpc_client_stream_hold(struct rpc_client_call *call);
void rpc_client_stream_resume(struct rpc_client_call *call);

#endif
