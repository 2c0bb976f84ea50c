/*
 * spawn_queue: spawns carried out in batches (spawn_queue.h). A batch is
 * what came in while the loop was busy, so a spawn alone waits for
 * nothing: the loop finds nothing else ready and runs it at once.
 */
#include "spawn_queue.h"

#include <stdlib.h>

#include "envelope.h"
#include "execute.h"
#include "rpc_loop.h"
#include "spoke.h"

/* Carries out every queued spawn and answers each. */
static void spawn_queue_flush(struct spoke *sp)
{
	struct spawn_queue *q = &sp->spawns;
	struct agent_spawn_cmd cmds[AGENT_SPAWNS_MAX];
	struct store_nonce nonces[AGENT_SPAWNS_MAX];
	size_t n = q->n;

	if (n == 0)
		return;
	q->n = 0;
	for (size_t i = 0; i < n; i++) {
		const Tessera__V1__Command *cmd = q->q[i].cmd;

		nonces[i] = (struct store_nonce){ cmd->nonce.data, cmd->nonce.len,
						  envelope_command_replay_ms(cmd,
									     q->q[i].opened_ms) };
		cmds[i] = (struct agent_spawn_cmd){ .nonce = &nonces[i],
						    .payload = cmd->payload.data,
						    .len = cmd->payload.len };
	}
	agent_cmd_spawn_many(sp, cmds, n);
	for (size_t i = 0; i < n; i++) {
		struct spawn_queued *e = &q->q[i];

		if (cmds[i].rc == AGENT_CMD_REFUSED)
			execute_refuse(sp, e->call, e->cmd, &cmds[i].err);
		else
			execute_answer(sp, e->call, e->cmd, cmds[i].out, cmds[i].outlen,
				       &cmds[i].err);
		free(cmds[i].out);
		tessera__v1__command__free_unpacked(e->cmd, NULL);
	}
}

static void spawn_queue_idle(void *arg)
{
	struct spoke *sp = arg;

	sp->spawns.armed = false;
	spawn_queue_flush(sp);
}

void spawn_queue_add(struct spoke *sp, struct rpc_call *call, Tessera__V1__Command *cmd,
		     int64_t opened_ms)
{
	struct spawn_queue *q = &sp->spawns;

	q->q[q->n++] = (struct spawn_queued){ call, cmd, opened_ms };
	if (!q->armed)
		q->armed = rpc_loop_when_idle(rpc_call_loop(call), spawn_queue_idle, sp) == 0;
	/* Full, or no idle function to wait for: now. */
	if (q->n == AGENT_SPAWNS_MAX || !q->armed)
		spawn_queue_flush(sp);
}
