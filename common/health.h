/*
 * health: the gRPC health checking service (grpc.health.v1.Health) and
 * the registry behind it: service name -> serving status, where "" is the
 * whole server. Check answers from the registry; Watch sends the status at
 * once and then every change of it, until the client goes away.
 *
 * Loop thread only: health_set() and the handlers run there, so nothing
 * here takes a lock.
 */
#ifndef TSR_HEALTH_H
#define TSR_HEALTH_H

#include "error.h"
#include "rpc_server.h"

#define HEALTH_CHECK_METHOD "/grpc.health.v1.Health/Check"
#define HEALTH_WATCH_METHOD "/grpc.health.v1.Health/Watch"

#define HEALTH_SERVICES_MAX 64	       /* names in the registry */
#define HEALTH_SERVICE_MAX 200	       /* bytes of a service name */
#define HEALTH_WATCHERS_MAX 64	       /* Watch calls open at once */
#define HEALTH_WATCHERS_PER_PEER_MAX 8 /* of them from one host */

/* The protocol's numbers for the statuses a server sets. */
enum health_status {
	HEALTH_SERVING = 1,
	HEALTH_NOT_SERVING = 2,
};

struct health;

/* The registry starts with "" NOT_SERVING: set it once the server is ready. */
int health_new(struct health **out, struct tsr_err *err);
/* Ends the Watch calls still open (UNAVAILABLE); after rpc_loop_drain(),
 * before rpc_server_free() and rpc_loop_free(). */
void health_free(struct health *h);
/* Adds Check and Watch to srv, before rpc_server_start(). */
int health_register(struct health *h, struct rpc_server *srv, struct tsr_err *err);
/* Adds service or changes its status, and tells its watchers if it changed. */
int health_set(struct health *h, const char *service, enum health_status status,
	       struct tsr_err *err);

#endif
