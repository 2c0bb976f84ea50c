/*
 * watch: WatchEvents, the fan-in of the spokes' event streams. A watcher
 * holds one StreamEvents call per watched spoke, verifies every event
 * against that spoke's key, filters by agent, and forwards each with a
 * cursor holding every spoke's position. A spoke stream that ends or
 * fails is resumed, after a capped backoff, from the last position seen,
 * so the watcher misses nothing and gets nothing twice. A watch ends only
 * when its caller goes away, when it falls too far behind (its send queue
 * is bounded), when a spoke no longer keeps the events after the watch's
 * position there (OUT_OF_RANGE), or when the hub shuts down.
 */
#ifndef TSR_HUB_WATCH_H
#define TSR_HUB_WATCH_H

#include <stdbool.h>

#include "error.h"
#include "hub.h"
#include "rpc_server.h"

struct watches;

/* h is borrowed and outlives the set. */
int watches_new(struct hub *h, struct watches **out, struct tsr_err *err);
/* Only once every watch has ended (after watches_shutdown and a drain). */
void watches_free(struct watches *ws);
/*
 * Starts a watch on call for spoke only (NULL: every spoke) and agent_id
 * ("" : every agent), from cursor ("" : from now, or from the start with
 * from_start). On success the watch owns call and ends it; on failure the
 * caller answers call with err.
 */
int watch_start(struct watches *ws, struct rpc_call *call, const char *cursor, bool from_start,
		struct spoke *only, const char *agent_id, struct tsr_err *err);
/* On the loop tick: resumes spoke streams whose backoff has passed. */
void watches_tick(struct watches *ws);
/* Ends every watch with UNAVAILABLE; their spoke streams are cancelled. */
void watches_shutdown(struct watches *ws);

#endif
