/*
 * watch: WatchEvents, the fan-in of the spokes' event streams. A watcher
 * holds one StreamEvents call per watched spoke, verifies every event
 * against that spoke's key, filters by agent, and forwards each with a
 * cursor holding every spoke's position. A spoke stream that ends or
 * fails is resumed, after a capped backoff, from the last position seen,
 * so the watcher misses nothing and gets nothing twice. A watch ends only
 * when its caller goes away, when it falls too far behind (its send queue
 * is bounded), when a spoke no longer keeps the events after the watch's
 * position there (OUT_OF_RANGE), when the token that opened it is removed
 * (UNAUTHENTICATED, on SIGHUP), or when the hub shuts down. At most
 * HUB_WATCHERS_MAX watches are open, HUB_WATCHERS_PER_TOKEN_MAX per token
 * (RESOURCE_EXHAUSTED beyond).
 */
#ifndef TSR_HUB_WATCH_H
#define TSR_HUB_WATCH_H

#include <stdbool.h>

#include "auth.h"
#include "error.h"
#include "hub.h"
#include "rpc_server.h"

struct watches;

/* h and auth (the gate's, read again at each watch_start and
 * watches_reauth) are borrowed and outlive the set. */
int watches_new(struct hub *h, const struct auth *auth, struct watches **out, struct tsr_err *err);
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
/*
 * After the tokens changed (SIGHUP): ends, UNAUTHENTICATED, every watch
 * whose token auth no longer accepts; returns how many.
 */
size_t watches_reauth(struct watches *ws);
/* On the loop tick: resumes spoke streams whose backoff has passed. */
void watches_tick(struct watches *ws);
/* Ends every watch with UNAVAILABLE; their spoke streams are cancelled. */
void watches_shutdown(struct watches *ws);
/* How many watches are open. */
size_t watches_count(const struct watches *ws);

#endif
