/*
 * spokes: the registry of configured spokes, one gRPC channel each, with
 * the health ListSpokes reports (from the channel's connectivity state,
 * polled on the loop tick, which also asks idle channels to connect so a
 * dead spoke is noticed before anyone needs it), and each spoke's load
 * as its last answer to the hub's poll (hub/load.c) left it. A spoke
 * whose channel is connected but whose last poll was refused (it does
 * not trust the hub's key, or its reply does not verify against the key
 * configured for it) is "refused" rather than "connected", with the
 * poll's error as the reason. A connected spoke whose last answer says
 * it drains is shown "draining". Placement (hub/placement.c) chooses
 * among them.
 */
#ifndef TSR_HUB_SPOKES_H
#define TSR_HUB_SPOKES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "hub_config.h"
#include "rpc_client.h"

enum spoke_health {
	SPOKE_CONNECTING,
	SPOKE_CONNECTED,
	SPOKE_UNREACHABLE,
	SPOKE_REFUSED
};

/* A reason: a status name and an error message, cut to fit. */
#define SPOKE_REASON_MAX (TSR_ERR_MSG_MAX + 32)

struct spoke {
	size_t index;			   /* position in the configuration */
	const struct hub_spoke_conf *conf; /* borrowed: the config outlives us */
	struct rpc_channel *ch;		   /* owned */
	enum spoke_health health;
	int64_t since_ms;	       /* wall clock of the last health change */
	bool load_known;	       /* running and max hold figures */
	int32_t running;	       /* agents, plus spawns placed since */
	int32_t max;		       /* its max-agents, >= 1 when known */
	uint64_t load_gen;	       /* bumped when its figures replace running */
	bool draining;		       /* its last verified answer: no new agents */
	int64_t load_at_ms;	       /* monotonic: when the figures came */
	int64_t load_next_ms;	       /* monotonic: when to poll next */
	bool load_polling;	       /* a SPOKE_INFO is in flight */
	bool refused;		       /* the last poll was refused */
	char reason[SPOKE_REASON_MAX]; /* the last poll's error; "" if it succeeded */
};

struct spokes {
	struct spoke *v; /* owned, n of them */
	size_t n;
	size_t next; /* round-robin position */
};

int spokes_new(const struct hub_config *cfg, struct spokes **out, struct tsr_err *err);
void spokes_free(struct spokes *s);
/* NULL if no spoke has that id. */
struct spoke *spokes_find(struct spokes *s, const char *id);
/* What a channel's state and the spoke's last poll say together. */
enum spoke_health spokes_health_of(grpc_connectivity_state st, bool refused);
/* Refreshes every spoke's health; try_connect wakes idle channels. */
void spokes_poll(struct spokes *s, bool try_connect);
/* "connecting", "connected", "unreachable", "refused" */
const char *spokes_health_name(enum spoke_health h);
/* What ListSpokes shows: the health's name, or "draining" for a connected spoke that drains. */
const char *spokes_state_name(const struct spoke *sp);
/* Whether any spoke is connected and not refused (the hub's own health). */
bool spokes_any_connected(const struct spokes *s);
/*
 * Keeps the outcome of sp's last poll: err NULL for a success (clearing
 * any refusal and reason), else its error as the reason, and refused
 * whether it was a refusal. The health follows at the next spokes_poll().
 */
void spokes_poll_result(struct spoke *sp, const struct tsr_err *err, bool refused);
/* Why sp is not connected, for ListSpokes: "" while it is. */
const char *spokes_reason(const struct spoke *sp);

#endif
