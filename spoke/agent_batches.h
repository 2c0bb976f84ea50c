/*
 * agent_batches: AGENT_SPAWN and AGENT_KILL commands that arrive
 * together, carried out together. execute hands each opened one here
 * rather than running it; once the loop has nothing else ready
 * (rpc_loop_when_idle), or a batch is full, agent_cmd_spawn_many and
 * agent_cmd_kill_many carry out all that wait, so that one durable write
 * (one fsync) records every agent, or every kill mark, of a batch. Each
 * command still gets its own signed reply, or its own refusal. Loop
 * thread only.
 */
#ifndef TSR_AGENT_BATCHES_H
#define TSR_AGENT_BATCHES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_commands.h"
#include "rpc_server.h"
#include "tessera/v1/spoke.pb-c.h"

struct spoke;

#define AGENT_BATCH_MAX 16 /* commands of one kind waiting at most */
_Static_assert(AGENT_BATCH_MAX <= AGENT_SPAWNS_MAX && AGENT_BATCH_MAX <= AGENT_KILLS_MAX,
	       "a batch must fit agent_cmd_spawn_many and agent_cmd_kill_many");

struct agent_queued {
	struct rpc_call *call;	   /* the handler's reference, until answered */
	Tessera__V1__Command *cmd; /* owned */
	int64_t opened_ms;	   /* when its envelope was opened (wall clock) */
};

struct agent_batch {
	size_t n;
	struct agent_queued q[AGENT_BATCH_MAX];
};

struct agent_batches {
	bool armed; /* the idle function waits on the loop */
	struct agent_batch spawns, kills;
};

/* Takes call and cmd, an AGENT_SPAWN or AGENT_KILL opened at opened_ms, into sp's batches. */
void agent_batches_add(struct spoke *sp, struct rpc_call *call, Tessera__V1__Command *cmd,
		       int64_t opened_ms);

#endif
