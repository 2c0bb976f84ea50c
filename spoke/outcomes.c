/*
 * outcomes: recording queued exits with their final state and metadata,
 * then removing the agent's files, whose content is in Valkey by then.
 * Exits queued together are written together (store_agent_transitions),
 * so that a burst of ends shares one fsync.
 */
#include "outcomes.h"

#include <stdio.h>
#include <stdlib.h>

#include "agent_files.h"
#include "lifecycle.h"
#include "log.h"
#include "spoke.h"
#include "spoke_metrics.h"

/* An exit's final state, what it records, and why, for the log. */
struct outcome {
	Tessera__V1__AgentState to;
	struct store_update upd; /* upd.error may point into why */
	char why[192];
};

static void outcome_of(const struct exit_record *r, struct outcome *o)
{
	struct store_update *upd = &o->upd;

	*upd = (struct store_update){ 0 };
	upd->has_completed_at_ms = true;
	upd->completed_at_ms = r->completed_at_ms;
	if (r->output != NULL) {
		upd->has_output = true;
		upd->output = r->output;
		upd->output_bytes = r->output_end;
	}
	if (r->signaled) {
		upd->has_signal = true;
		upd->signal = r->status;
		snprintf(o->why, sizeof(o->why), "ended by signal %d", r->status);
	} else if (r->status >= 0) {
		upd->has_exit_code = true;
		upd->exit_code = r->status;
		snprintf(o->why, sizeof(o->why), "exited with code %d", r->status);
	} else {
		snprintf(o->why, sizeof(o->why), "%s",
			 r->detail[0] != '\0' ? r->detail
			 : r->started	      ? "its exit status was lost"
					      : "the agent was not started");
	}
	/* The supervisor sets timed_out only if no kill came first: one state. */
	if (!r->started && !r->kill_requested) {
		o->to = TESSERA__V1__AGENT_STATE__AGENT_STATE_FAILED;
		upd->has_error = true;
		upd->error = o->why;
	} else if (r->timed_out) {
		o->to = TESSERA__V1__AGENT_STATE__AGENT_STATE_FAILED;
		snprintf(o->why, sizeof(o->why), "timed out after %u ms", (unsigned)r->timeout_ms);
		upd->has_error = true;
		upd->error = o->why;
	} else if (r->kill_requested) {
		o->to = TESSERA__V1__AGENT_STATE__AGENT_STATE_KILLED;
		upd->has_error = true;
		upd->error = "killed on request";
	} else if (!r->signaled && r->status == 0) {
		o->to = TESSERA__V1__AGENT_STATE__AGENT_STATE_COMPLETED;
	} else {
		o->to = TESSERA__V1__AGENT_STATE__AGENT_STATE_FAILED;
		upd->has_error = true;
		upd->error = o->why;
	}
}

/* Whether the write of an exit must be tried again: Valkey was away, or memory short. */
static bool outcome_retry(const struct tsr_err *e)
{
	return e->code == GRPC_STATUS_UNAVAILABLE || e->code == GRPC_STATUS_RESOURCE_EXHAUSTED;
}

/* After the write of r's end (e its outcome, not to be retried): the log, metrics, files. */
static void outcome_done(struct spoke *sp, const struct exit_record *r, const struct outcome *o,
			 const struct tsr_err *e)
{
	Tessera__V1__AgentState to = o->to;

	if (e->code == GRPC_STATUS_OK) {
		log_agent_tag(LOG_LEVEL_INFO, r->agent_id, "agent %s %s (%s)", r->agent_id,
			      lifecycle_state_name(to), o->why);
	} else {
		/* Already terminal (a kill recorded first) or gone: nothing to add. */
		log_agent_info(r->agent_id, "exit not recorded: %s", e->msg);
		to = TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED;
	}
	spoke_metrics_ended(sp->metrics, r->agent_id, to, r->completed_at_ms);
	agent_files_remove(sp->cfg.state_dir, r->agent_id);
}

void outcomes_record(struct spoke *sp)
{
	struct exit_record *list = exits_take(&sp->exits), *batch[STORE_TRANSITIONS_MAX];
	struct exit_record *retry = NULL, **tail = &retry;
	struct store_transition t[STORE_TRANSITIONS_MAX];
	struct outcome o[STORE_TRANSITIONS_MAX];
	struct tsr_err errs[STORE_TRANSITIONS_MAX], err;
	bool away = false;
	size_t n;

	/* Once Valkey is away, the rest wait behind what could not be written, in order. */
	while (list != NULL && !away) {
		for (n = 0; list != NULL && n < STORE_TRANSITIONS_MAX; n++) {
			batch[n] = list;
			list = list->next;
			batch[n]->next = NULL;
			outcome_of(batch[n], &o[n]);
			t[n] = (struct store_transition){ batch[n]->agent_id, o[n].to, &o[n].upd };
		}
		away = store_agent_transitions(sp->store, t, n, errs, &err) != 0;
		for (size_t i = 0; i < n; i++) {
			if (outcome_retry(&errs[i])) {
				*tail = batch[i];
				tail = &batch[i]->next;
				continue;
			}
			outcome_done(sp, batch[i], &o[i], &errs[i]);
			exit_record_free(batch[i]);
		}
	}
	*tail = list;
	exits_requeue(&sp->exits, retry);
}
