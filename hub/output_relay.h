/*
 * output_relay: Hub/ReadAgentOutput. Each reader gets one OUTPUT_STREAM
 * command to its agent's spoke, whose signed chunks it opens against that
 * spoke's key, checks are its own command's and contiguous, and passes on
 * as OutputChunks. A client that reads slowly holds the spoke's stream
 * back (gRPC flow control), never the hub's memory: past
 * HUB_OUTPUT_QUEUE_HIGH waiting chunks the relay reads no more until the
 * tick sees them down to half. The spoke's stream ending ends the call
 * with its status (OK after the end chunk); the client resumes from the
 * offset it got to. At most HUB_OUTPUT_READERS_MAX at once.
 */
#ifndef TSR_HUB_OUTPUT_RELAY_H
#define TSR_HUB_OUTPUT_RELAY_H

#include <stddef.h>

#include "error.h"
#include "rpc_server.h"

struct auth;
struct hub;
struct output_relays;

/* h and auth are borrowed and outlive the set. */
int output_relays_new(struct hub *h, const struct auth *auth, struct output_relays **out,
		      struct tsr_err *err);
/* After the loop has drained. */
void output_relays_free(struct output_relays *rs);
/* The handler of ReadAgentOutput; ctx is the struct hub. */
void output_relay_handle(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len);
/* Loop tick: resumes the relays whose clients caught up. */
void output_relays_tick(struct output_relays *rs);
/* After SIGHUP: ends (UNAUTHENTICATED) the readers whose token is gone; how many. */
size_t output_relays_reauth(struct output_relays *rs);
/* Shutdown: cancels every spoke stream (each call then ends UNAVAILABLE). */
void output_relays_shutdown(struct output_relays *rs);

#endif
