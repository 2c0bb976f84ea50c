/*
 * spoke_info: the handler of SPOKE_INFO, which tells the hub how loaded
 * this spoke is (agents supervised now, and its max-agents), so that the
 * hub can place spawns on the least-loaded spoke. Loop thread only.
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

#endif
