/*
 * event_stream: tessera.v1.Spoke/StreamEvents. Each accepted stream gets
 * a thread with its own Valkey connection that follows the spoke's event
 * stream (XREAD BLOCK) from the hub's cursor and sends every entry,
 * signed, in stream order, after a signed start naming its position. A
 * hub that reconnects with the position of the last event it got resumes
 * with no gap and no duplicate. At most TSR_SPOKE_STREAMS_MAX streams run
 * at once (RESOURCE_EXHAUSTED beyond); a stream whose hub key is no
 * longer trusted ends PERMISSION_DENIED.
 */
#ifndef TSR_EVENT_STREAM_H
#define TSR_EVENT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "protocol.h"
#include "rpc_server.h"
#include "sign.h"

struct spoke;
struct event_streams;

int event_streams_new(struct spoke *sp, struct event_streams **out, struct tsr_err *err);
/* Ends every stream and joins its thread. */
void event_streams_free(struct event_streams *es);

/* An rpc_handler_fn; ctx is the struct event_streams. */
void event_stream_handle(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len);
/*
 * Loop thread, after trusted changed (SIGHUP): every stream opened with a
 * key trusted no longer ends PERMISSION_DENIED within a second (its next
 * look at its flags); returns how many were told to.
 */
size_t event_streams_revoke(struct event_streams *es, const struct sign_keyring *trusted);

#endif
