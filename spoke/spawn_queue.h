/*
 * spawn_queue: AGENT_SPAWN commands that arrive together, carried out
 * together. execute hands each opened spawn here rather than running it;
 * once the loop has nothing else ready (rpc_loop_when_idle), or
 * AGENT_SPAWNS_MAX wait, agent_cmd_spawn_many carries them all out, so
 * that one durable write (one fsync) records every agent of the batch.
 * Each command still gets its own signed reply, or its own refusal.
 * Loop thread only.
 */
#ifndef TSR_SPAWN_QUEUE_H
#define TSR_SPAWN_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_commands.h"
#include "rpc_server.h"
#include "tessera/v1/spoke.pb-c.h"

struct spoke;

struct spawn_queued {
	struct rpc_call *call;	   /* the handler's reference, until answered */
	Tessera__V1__Command *cmd; /* owned */
	int64_t opened_ms;	   /* when its envelope was opened (wall clock) */
};

struct spawn_queue {
	size_t n;
	bool armed; /* its idle function waits on the loop */
	struct spawn_queued q[AGENT_SPAWNS_MAX];
};

/* Takes call and cmd, an AGENT_SPAWN opened at opened_ms, into sp's queue. */
void spawn_queue_add(struct spoke *sp, struct rpc_call *call, Tessera__V1__Command *cmd,
		     int64_t opened_ms);

#endif
