/*
 * recovery: this spoke supervises no process it did not start itself, so
 * an agent left non-terminal by an earlier run has lost its supervisor:
 * it is recorded FAILED with an error saying so.
 */
#include "recovery.h"

#include <stdio.h>

#include "clock.h"
#include "lifecycle.h"
#include "log.h"
#include "spoke.h"

static int recovery_fail_one(void *arg, const Tessera__V1__Agent *a, struct tsr_err *err)
{
	struct spoke *sp = arg;
	struct store_update upd = { 0 };
	char why[160], pos[STORE_POSITION_MAX];

	snprintf(why, sizeof(why), "spoke restarted while the agent was %s; its process "
		 "is no longer supervised", lifecycle_state_name(a->state));
	upd.has_completed_at_ms = true;
	upd.completed_at_ms = clock_wall_ms();
	upd.has_error = true;
	upd.error = why;
	if (store_agent_transition(sp->store, a->id, TESSERA__V1__AGENT_STATE__AGENT_STATE_FAILED,
				   &upd, pos, sizeof(pos), err) != 0)
		return err->code == GRPC_STATUS_FAILED_PRECONDITION ? 0 : -1;
	log_warn("agent %s: recorded FAILED: %s", a->id, why);
	return 0;
}

int recovery_run(struct spoke *sp, struct tsr_err *err)
{
	return store_agents_nonterminal(sp->store, recovery_fail_one, sp, err);
}
