/*
 * api: the tessera.v1.Hub service. Each handler validates and bounds its
 * request before anything reaches a spoke; SpawnAgent, GetAgent,
 * KillAgent, DrainSpoke and UndrainSpoke are one relayed command each (a
 * spawn that a draining spoke refused, one more per such spoke),
 * ListAgents pages across spokes (list.c), ListSpokes answers from the
 * registry, WatchEvents hands the call to the fan-in (watch.c).
 */
#ifndef TSR_HUB_API_H
#define TSR_HUB_API_H

#include "error.h"
#include "hub.h"
#include "rpc_server.h"

/* Registers every Hub method on srv, with h (borrowed) as their context. */
int api_register(struct hub *h, struct rpc_server *srv, struct tsr_err *err);

#endif
