/*
 * hub_limits: the hub's own bounds on sizes, counts and timeouts; those of
 * the wire contract are in common/protocol.h. The CLI shares them, so that
 * it refuses early what the hub would refuse anyway.
 */
#ifndef TSR_HUB_HUB_LIMITS_H
#define TSR_HUB_HUB_LIMITS_H

#include "protocol.h"

#define HUB_SPOKES_MAX 256
#define HUB_ADDRESS_MAX 255

#define HUB_PAGE_SIZE_DEFAULT 100

#define HUB_RELAY_TIMEOUT_DEFAULT_MS 10000
#define HUB_RELAY_TIMEOUT_MIN_MS 100
#define HUB_RELAY_TIMEOUT_MAX_MS 600000
/*
 * A relay bounded by its caller's deadline ends this much (at most a
 * twentieth of what is left) before it, so that the caller hears which
 * spoke did not answer instead of its own timer going off first.
 */
#define HUB_RELAY_MARGIN_MS 100

#define HUB_RELAYS_MAX 4096 /* spoke commands in flight */
/*
 * WatchEvents: each watcher holds one stream on every spoke it watches,
 * so the hub never has more watchers than a spoke serves streams, and one
 * token (one user) never takes all of them. "auth none" has no tokens to
 * count: there only HUB_WATCHERS_MAX holds.
 */
#define HUB_WATCHERS_MAX 192
#define HUB_WATCHERS_PER_TOKEN_MAX 32
/*
 * ReadAgentOutput: each reader holds one stream on its agent's spoke, from
 * the same TSR_SPOKE_STREAMS_MAX as the watchers'. A reader whose client
 * has this many chunks waiting reads no more from its spoke until they
 * are down to the half.
 */
#define HUB_OUTPUT_READERS_MAX 64
#define HUB_OUTPUT_QUEUE_HIGH 8
_Static_assert(HUB_WATCHERS_MAX + HUB_OUTPUT_READERS_MAX <= TSR_SPOKE_STREAMS_MAX,
	       "a spoke must serve a stream to every watcher and reader of a hub");
_Static_assert(HUB_WATCHERS_PER_TOKEN_MAX < HUB_WATCHERS_MAX,
	       "one token must leave watch slots to the others");
#define HUB_REQUEST_MAX (256 * 1024) /* a user's request message */
#define HUB_TOKENS_MAX 256	     /* bearer tokens in the config */

#endif
