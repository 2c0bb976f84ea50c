/*
 * spoke_info: the handlers of SPOKE_INFO, which tells the hub how loaded
 * this spoke is (agents supervised now, and its max-agents), so that the
 * hub can place spawns on the least-loaded spoke, and of SPOKE_DRAIN,
 * which sets whether it takes new agents at all (both answer the same
 * SpokeStatus); and the draining flag's load at start-up. Loop thread only.
 */
#ifndef TSR_SPOKE_INFO_H
#define TSR_SPOKE_INFO_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct spoke;

/* Reply payload: a packed SpokeStatus in a malloc'd buffer. */
int spoke_cmd_info(struct spoke *sp, const uint8_t *payload, size_t len, uint8_t **out,
		   size_t *outlen, struct tsr_err *err);
/*
 * Drains or undrains the spoke as its SpokeDrainRequest says: in Valkey
 * first, so that the flag is only ever what Valkey keeps. Reply payload
 * as spoke_cmd_info's.
 */
int spoke_cmd_drain(struct spoke *sp, const uint8_t *payload, size_t len, uint8_t **out,
		    size_t *outlen, struct tsr_err *err);
/* sp->draining from Valkey, for start-up, saying so when it is set. */
int spoke_drain_load(struct spoke *sp, struct tsr_err *err);

#endif
