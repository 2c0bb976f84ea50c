/*
 * outcomes: recording queued exits with their final state and metadata,
 * then removing the agent's files, whose content is in Valkey by then.
 */
#include "outcomes.h"

#include <stdio.h>
#include <stdlib.h>

#include "agent_files.h"
#include "lifecycle.h"
#include "log.h"
#include "spoke.h"
#include "spoke_metrics.h"

/* 0 when recorded or moot; -1 when it must be tried again later. */
static int outcomes_record_one(struct spoke *sp, const struct exit_record *r)
{
	struct store_update upd = { 0 };
	Tessera__V1__AgentState to;
	char why[192], pos[STORE_POSITION_MAX];
	struct tsr_err err;

	upd.has_completed_at_ms = true;
	upd.completed_at_ms = r->completed_at_ms;
	if (r->output != NULL) {
		upd.has_output = true;
		upd.output = r->output;
		upd.output_bytes = r->output_end;
	}
	if (r->signaled) {
		upd.has_signal = true;
		upd.signal = r->status;
		snprintf(why, sizeof(why), "ended by signal %d", r->status);
	} else if (r->status >= 0) {
		upd.has_exit_code = true;
		upd.exit_code = r->status;
		snprintf(why, sizeof(why), "exited with code %d", r->status);
	} else {
		snprintf(why, sizeof(why), "%s",
			 r->detail[0] != '\0' ? r->detail
			 : r->started	      ? "its exit status was lost"
					      : "the agent was not started");
	}
	/* The supervisor sets timed_out only if no kill came first: one state. */
	if (!r->started && !r->kill_requested) {
		to = TESSERA__V1__AGENT_STATE__AGENT_STATE_FAILED;
		upd.has_error = true;
		upd.error = why;
	} else if (r->timed_out) {
		to = TESSERA__V1__AGENT_STATE__AGENT_STATE_FAILED;
		snprintf(why, sizeof(why), "timed out after %u ms", (unsigned)r->timeout_ms);
		upd.has_error = true;
		upd.error = why;
	} else if (r->kill_requested) {
		to = TESSERA__V1__AGENT_STATE__AGENT_STATE_KILLED;
		upd.has_error = true;
		upd.error = "killed on request";
	} else if (!r->signaled && r->status == 0) {
		to = TESSERA__V1__AGENT_STATE__AGENT_STATE_COMPLETED;
	} else {
		to = TESSERA__V1__AGENT_STATE__AGENT_STATE_FAILED;
		upd.has_error = true;
		upd.error = why;
	}
	if (store_agent_transition(sp->store, r->agent_id, to, &upd, pos, sizeof(pos), &err) == 0) {
		log_agent_tag(LOG_LEVEL_INFO, r->agent_id, "agent %s %s (%s)", r->agent_id,
			      lifecycle_state_name(to), why);
	} else if (err.code == GRPC_STATUS_UNAVAILABLE) {
		return -1;
	} else {
		/* Already terminal (a kill recorded first) or gone: nothing to add. */
		log_agent_info(r->agent_id, "exit not recorded: %s", err.msg);
		to = TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED;
	}
	spoke_metrics_ended(sp->metrics, r->agent_id, to, r->completed_at_ms);
	agent_files_remove(sp->cfg.state_dir, r->agent_id);
	return 0;
}

void outcomes_record(struct spoke *sp)
{
	struct exit_record *list = exits_take(&sp->exits), *r, *retry = NULL, **tail = &retry;

	while ((r = list) != NULL) {
		list = r->next;
		r->next = NULL;
		if (retry == NULL && outcomes_record_one(sp, r) == 0) {
			exit_record_free(r);
			continue;
		}
		/* Keep order: once one waits for Valkey, the rest wait behind it. */
		*tail = r;
		tail = &r->next;
	}
	exits_requeue(&sp->exits, retry);
}
