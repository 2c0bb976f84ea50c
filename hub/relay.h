/*
 * relay: one user request carried to one spoke. Seal the command, call
 * Spoke/Execute with a deadline, open the spoke's signed reply against the
 * key configured for that spoke, and hand the outcome back. Everything is
 * asynchronous on the loop's completion queue; nothing here ever waits
 * for a spoke.
 */
#ifndef TSR_HUB_RELAY_H
#define TSR_HUB_RELAY_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "rpc_loop.h"
#include "sign.h"
#include "spokes.h"
#include "tessera/v1/spoke.pb-c.h"

struct relays; /* every relay in flight */
struct relay;  /* one of them */
struct hub_metrics;

/* How a relayed command ended, besides its status. */
enum relay_end {
	RELAY_ANSWERED, /* a verified reply: the spoke's own word */
	RELAY_REFUSED,	/* hub and spoke do not trust each other (below) */
	RELAY_LOST,	/* no verified answer: unreachable, too late, cancelled */
};

/*
 * err is NULL when the spoke carried the command out, and payload is then
 * its Reply.payload (valid only during the call). Otherwise err holds the
 * code and message for the user: the spoke's own Reply.status and message
 * (end RELAY_ANSWERED), or what went wrong on the way; end RELAY_REFUSED
 * says that hub and spoke do not trust each other: the spoke refused the
 * signed command itself (PERMISSION_DENIED or UNAUTHENTICATED from
 * Execute: an issuer it does not trust, a command outside its time
 * window...), or its reply does not verify against the key configured
 * for it. The relay is gone once this returns.
 */
typedef void (*relay_done_fn)(void *arg, const struct tsr_err *err, enum relay_end end,
			      const uint8_t *payload, size_t len);

/*
 * loop, key and metrics (where each relay's end is counted; NULL: nowhere)
 * are borrowed and must outlive the set.
 */
int relays_new(struct rpc_loop *loop, const struct sign_key *key, struct hub_metrics *metrics,
	       struct relays **out, struct tsr_err *err);
/* Only once every relay has ended (after a drain). */
void relays_free(struct relays *rs);
/*
 * Sends command type with payload to sp within timeout_ms. On success
 * done runs exactly once, later, on the loop thread; on failure it never
 * runs. *out (optional) is valid until done runs.
 */
int relay_start(struct relays *rs, struct spoke *sp, Tessera__V1__CommandType type,
		const ProtobufCMessage *payload, int64_t timeout_ms, relay_done_fn done, void *arg,
		struct relay **out, struct tsr_err *err);
/* Asks the call to stop; done still runs (with CANCELLED unless it raced). */
void relay_cancel(struct relay *r);
void relays_cancel_all(struct relays *rs);
/* How many are in flight. */
size_t relays_count(const struct relays *rs);

#endif
