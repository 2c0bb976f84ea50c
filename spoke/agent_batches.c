/*
 * agent_batches: spawns and kills carried out in batches
 * (agent_batches.h). A batch is what came in while the loop was busy, so
 * a command alone waits for nothing: the loop finds nothing else ready
 * and runs it at once. Spawns go first: a kill in the same batch cannot
 * name an agent that a spawn beside it makes, whose id it has not seen.
 */
#include "agent_batches.h"

#include <stdlib.h>

#include "envelope.h"
#include "execute.h"
#include "rpc_loop.h"
#include "spoke.h"

/* Carries out every command of b with run, and answers each. */
static void agent_batch_run(struct spoke *sp, struct agent_batch *b, agent_many_fn run)
{
	struct agent_batch_cmd cmds[AGENT_BATCH_MAX];
	struct store_nonce nonces[AGENT_BATCH_MAX];
	size_t n = b->n;

	if (n == 0)
		return;
	b->n = 0;
	for (size_t i = 0; i < n; i++) {
		const Tessera__V1__Command *cmd = b->q[i].cmd;

		nonces[i] = (struct store_nonce){ cmd->nonce.data, cmd->nonce.len,
						  envelope_command_replay_ms(cmd,
									     b->q[i].opened_ms) };
		cmds[i] = (struct agent_batch_cmd){ .nonce = &nonces[i],
						    .payload = cmd->payload.data,
						    .len = cmd->payload.len };
	}
	run(sp, cmds, n);
	for (size_t i = 0; i < n; i++) {
		struct agent_queued *e = &b->q[i];

		if (cmds[i].rc == AGENT_CMD_REFUSED)
			execute_refuse(sp, e->call, e->cmd, &cmds[i].err);
		else
			execute_answer(sp, e->call, e->cmd, cmds[i].out, cmds[i].outlen,
				       &cmds[i].err);
		free(cmds[i].out);
		tessera__v1__command__free_unpacked(e->cmd, NULL);
	}
}

static void agent_batches_run(struct spoke *sp)
{
	agent_batch_run(sp, &sp->batches.spawns, agent_cmd_spawn_many);
	agent_batch_run(sp, &sp->batches.kills, agent_cmd_kill_many);
}

static void agent_batches_idle(void *arg)
{
	struct spoke *sp = arg;

	sp->batches.armed = false;
	agent_batches_run(sp);
}

void agent_batches_add(struct spoke *sp, struct rpc_call *call, Tessera__V1__Command *cmd,
		       int64_t opened_ms)
{
	struct agent_batches *q = &sp->batches;
	struct agent_batch *b = cmd->type == TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_SPAWN
					? &q->spawns
					: &q->kills;

	b->q[b->n++] = (struct agent_queued){ call, cmd, opened_ms };
	if (!q->armed)
		q->armed = rpc_loop_when_idle(rpc_call_loop(call), agent_batches_idle, sp) == 0;
	/* Full, or no idle function to wait for: now. */
	if (b->n == AGENT_BATCH_MAX || !q->armed)
		agent_batches_run(sp);
}
