/*
 * spokes: the registry of configured spokes, one gRPC channel each, with
 * the health ListSpokes reports (from the channel's connectivity state,
 * polled on the loop tick, which also asks idle channels to connect so a
 * dead spoke is noticed before anyone needs it), and spawn placement.
 */
#ifndef TSR_HUB_SPOKES_H
#define TSR_HUB_SPOKES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "hub_config.h"
#include "rpc_client.h"

enum spoke_health { SPOKE_CONNECTING, SPOKE_CONNECTED, SPOKE_UNREACHABLE };

struct spoke {
	size_t index;				/* position in the configuration */
	const struct hub_spoke_conf *conf;	/* borrowed: the config outlives us */
	struct rpc_channel *ch;			/* owned */
	enum spoke_health health;
	int64_t since_ms;			/* wall clock of the last health change */
};

struct spokes {
	struct spoke *v;			/* owned, n of them */
	size_t n;
	size_t next;				/* round-robin position */
};

int spokes_new(const struct hub_config *cfg, struct spokes **out, struct tsr_err *err);
void spokes_free(struct spokes *s);
/* NULL if no spoke has that id. */
struct spoke *spokes_find(struct spokes *s, const char *id);
/* Refreshes every spoke's health; try_connect wakes idle channels. */
void spokes_poll(struct spokes *s, bool try_connect);
/* "connecting", "connected", "unreachable" */
const char *spokes_health_name(enum spoke_health h);
/*
 * Chooses a spoke for a spawn that named none. With a request id the
 * choice is a fixed function of that id over the configured spokes, so a
 * retried spawn reaches the spoke that deduplicates it; otherwise round
 * robin over spokes whose channel is usable. UNAVAILABLE if none is.
 */
int spokes_place(struct spokes *s, const char *request_id, struct spoke **out,
		 struct tsr_err *err);

#endif
