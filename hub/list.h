/*
 * list: ListAgents. With a spoke_id it pages through that spoke; without,
 * through every spoke in configuration order, filling a page from as many
 * spokes as it takes (one command per spoke at most, one at a time), with
 * a page token (page_token.h) that says where to go on.
 */
#ifndef TSR_HUB_LIST_H
#define TSR_HUB_LIST_H

#include <stddef.h>
#include <stdint.h>

#include "hub.h"
#include "rpc_server.h"

/* A Hub method handler: takes over call and always answers it. */
void list_agents(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len);

#endif
