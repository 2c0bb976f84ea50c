/*
 * event_stream: tessera.v1.Spoke/StreamEvents. Each accepted stream gets
 * a thread with its own Valkey connection that follows the spoke's event
 * stream (XREAD BLOCK) from the hub's cursor and sends every entry,
 * signed, in stream order. A hub that reconnects with the position of the
 * last event it got resumes with no gap and no duplicate.
 */
#ifndef TSR_EVENT_STREAM_H
#define TSR_EVENT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "protocol.h"
#include "rpc_server.h"

#define EVENT_STREAMS_MAX 64

struct spoke;
struct event_streams;

int event_streams_new(struct spoke *sp, struct event_streams **out, struct tsr_err *err);
/* Ends every stream and joins its thread. */
void event_streams_free(struct event_streams *es);

/* An rpc_handler_fn; ctx is the struct event_streams. */
void event_stream_handle(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len);

#endif
