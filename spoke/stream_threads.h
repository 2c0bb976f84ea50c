/*
 * stream_threads: the spoke's server streams to hubs (StreamEvents,
 * StreamOutput), one thread each. A kind's run function does the work on
 * its thread and says in err why it stopped; this file ends the call with
 * that status, or with UNAVAILABLE when the spoke stops and
 * PERMISSION_DENIED when SIGHUP has removed the hub key that opened the
 * stream from trust-hub (as that key's new commands are refused). At most
 * TSR_SPOKE_STREAMS_MAX streams of all kinds run at once
 * (RESOURCE_EXHAUSTED beyond).
 */
#ifndef TSR_SPOKE_STREAM_THREADS_H
#define TSR_SPOKE_STREAM_THREADS_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "rpc_server.h"
#include "sign.h"
#include "tessera/v1/spoke.pb-c.h"

struct spoke;
struct stream_threads;
struct stream_thread;

struct stream_thread_kind {
	/* On the stream's thread; err OK when it ended as it should. */
	void (*run)(struct stream_thread *t, void *data, struct tsr_err *err);
	void (*free)(void *data);
	grpc_status_code ended; /* the status of a run that left err OK */
};

int stream_threads_new(struct spoke *sp, struct stream_threads **out, struct tsr_err *err);
/* Ends every stream and joins its thread. */
void stream_threads_free(struct stream_threads *ts);
struct spoke *stream_threads_spoke(const struct stream_threads *ts);

/*
 * Loop thread: opens the signed command that asks for a stream (req),
 * records its nonce (refusing a replay) and checks it is of type type.
 * *cmd is the caller's to free, even on failure.
 */
int stream_threads_open_command(struct stream_threads *ts, const uint8_t *req, size_t len,
				Tessera__V1__CommandType type, Tessera__V1__Command **cmd,
				struct tsr_err *err);
/*
 * Loop thread: starts a thread serving call for the hub key that issued
 * cmd (opened by stream_threads_open_command). On success the thread owns
 * data and the handler's reference to call; on failure neither was taken.
 */
int stream_threads_start(struct stream_threads *ts, struct rpc_call *call,
			 const Tessera__V1__Command *cmd, const struct stream_thread_kind *kind,
			 void *data, struct tsr_err *err);

/* From the stream's thread: whether to stop now, and the call it serves. */
bool stream_thread_should_stop(const struct stream_thread *t);
bool stream_thread_revoked(const struct stream_thread *t);
struct rpc_call *stream_thread_call(const struct stream_thread *t);

/*
 * Loop thread, after trusted changed (SIGHUP): every stream opened with a
 * key trusted no longer ends PERMISSION_DENIED at its next look at its
 * flags; returns how many were told to.
 */
size_t stream_threads_revoke(struct stream_threads *ts, const struct sign_keyring *trusted);

#endif
