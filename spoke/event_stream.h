/*
 * event_stream: tessera.v1.Spoke/StreamEvents. Each accepted stream gets
 * a thread with its own Valkey connection that follows the spoke's event
 * stream (XREAD BLOCK) from the hub's cursor and sends every entry,
 * signed, in stream order, after a signed start naming its position. A
 * hub that reconnects with the position of the last event it got resumes
 * with no gap and no duplicate. Its thread is one of stream_threads.h.
 */
#ifndef TSR_EVENT_STREAM_H
#define TSR_EVENT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "protocol.h"
#include "rpc_server.h"
#include "sign.h"

/* An rpc_handler_fn; ctx is the spoke's struct stream_threads. */
void event_stream_handle(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len);

#endif
