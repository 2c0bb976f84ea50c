/*
 * agent_kill: AGENT_KILL, alone or several carried out together. The
 * supervisor claims the agent, one durable write records the kill mark
 * with the command's nonce, and only then do signals go.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agent_commands.h"
#include "clock.h"
#include "lifecycle.h"
#include "log.h"
#include "pb.h"
#include "spoke.h"
#include "spoke_metrics.h"
#include "tessera/v1/spoke.pb-c.h"

/* Records KILLED for an agent that has no process under this spoke. */
static int agent_kill_unsupervised(struct spoke *sp, const char *agent_id, struct tsr_err *err)
{
	struct store_update upd = { 0 };
	char pos[STORE_POSITION_MAX];

	upd.has_completed_at_ms = true;
	upd.completed_at_ms = clock_wall_ms();
	upd.has_error = true;
	upd.error = "killed on request; no process was running under this spoke";
	upd.has_kill_requested = true;
	upd.kill_requested = true;
	return store_agent_transition(sp->store, agent_id,
				      TESSERA__V1__AGENT_STATE__AGENT_STATE_KILLED, &upd, pos,
				      sizeof(pos), err);
}

/*
 * The kill wins only over an agent still running when it comes: the
 * supervisor claims it first (its exit, whenever it comes, is KILLED), the
 * claim is made durable with the command's nonce (agent_kill_signal), and
 * only then do signals go. An agent that has ended already, its exit not
 * yet recorded, keeps its true end. The caller found the nonce new, so a
 * replay claims nothing. 1 once claimed (its mark is next), else the
 * kill's outcome: *changed when the record changed beyond its kill mark.
 */
static int agent_kill_claim(struct spoke *sp, const Tessera__V1__Agent *a,
			    const struct store_nonce *nonce, bool *changed, struct tsr_err *err)
{
	struct tsr_err serr;

	if (supervisor_kill_claim(sp->sv, a->id, &serr) == 0)
		return 1;
	/* The supervisor keeps an agent until its exit is queued: no gap between. */
	if (serr.code == GRPC_STATUS_NOT_FOUND && !exits_pending(&sp->exits, a->id)) {
		if (agent_nonce_alone(sp, nonce, err) != 0)
			return AGENT_CMD_REFUSED;
		*changed = true;
		return agent_kill_unsupervised(sp, a->id, err);
	}
	if (serr.code == GRPC_STATUS_FAILED_PRECONDITION || serr.code == GRPC_STATUS_NOT_FOUND)
		tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
			    "agent %s has already ended; its end is being recorded", a->id);
	else
		*err = serr;
	return agent_refused(sp, nonce, err);
}

/* A claimed kill once its mark has its outcome (mark): signalled, or unclaimed. */
static int agent_kill_signal(struct spoke *sp, const Tessera__V1__Agent *a,
			     const struct store_nonce *nonce, const struct tsr_err *mark,
			     struct tsr_err *err)
{
	struct tsr_err serr;

	if (mark->code != GRPC_STATUS_OK) {
		/* Not acknowledged: it must not end as KILLED for a kill that failed. */
		supervisor_kill_unclaim(sp->sv, a->id);
		*err = *mark;
		return nonce != NULL && agent_nonce_failure(err) ? AGENT_CMD_REFUSED : -1;
	}
	/* NOT_FOUND: it ended since the claim, and its exit says killed. */
	if (supervisor_kill(sp->sv, a->id, agent_grace_ms(sp, a->type), &serr) != 0 &&
	    serr.code != GRPC_STATUS_NOT_FOUND) {
		*err = serr;
		return -1;
	}
	log_agent_info(a->id, "kill requested");
	return 0;
}

/* One kill of a batch on its way (agent_cmd_kill_many). */
struct agent_kill {
	struct agent_batch_cmd *cmd; /* its command, and where its outcome goes */
	Tessera__V1__KillCommand *req;
	Tessera__V1__Agent *a;	      /* as read, once read */
	bool changed;		      /* the record changed beyond its kill mark */
	bool done;		      /* its command has its outcome */
	struct store_kill_item *item; /* its step in this round, or NULL */
};

/*
 * The first part of k's kill: checked, and bound for the read of its
 * agent (true, the step item its), unless its command has its outcome
 * (refused) or an earlier kill of this round names the same agent (it
 * waits for the next round, to find that kill's mark, as after it alone).
 */
static bool agent_kill_begin(struct spoke *sp, struct agent_kill *k, const struct agent_kill *all,
			     size_t n, struct store_kill_item *item)
{
	struct agent_batch_cmd *cmd = k->cmd;

	if (k->req == NULL)
		k->req = tessera__v1__kill_command__unpack(NULL, cmd->len, cmd->payload);
	if (k->req == NULL) {
		tsr_err_set(&cmd->err, GRPC_STATUS_INVALID_ARGUMENT, "malformed kill request");
		cmd->rc = agent_refused(sp, cmd->nonce, &cmd->err);
		k->done = true;
		return false;
	}
	if (agent_check_id(sp, k->req->agent_id, &cmd->err) != 0) {
		cmd->rc = agent_refused(sp, cmd->nonce, &cmd->err);
		k->done = true;
		return false;
	}
	for (size_t j = 0; j < n && &all[j] != k; j++)
		if (all[j].item != NULL && strcmp(all[j].req->agent_id, k->req->agent_id) == 0)
			return false;
	*item = (struct store_kill_item){ .agent_id = k->req->agent_id, .nonce = cmd->nonce };
	k->item = item;
	return true;
}

/*
 * k's agent as read (k->item's outcome): the kill refused, answered (its
 * agent marked already, or not supervised), or claimed (true: item is its
 * mark's, to be sent).
 */
static bool agent_kill_read(struct spoke *sp, struct agent_kill *k, struct store_kill_item *item)
{
	struct agent_batch_cmd *cmd = k->cmd;
	int rc;

	k->a = k->item->rec;
	k->item->rec = NULL;
	if (k->item->err.code != GRPC_STATUS_OK) {
		cmd->err = k->item->err;
		/* The nonce was not found new, or cannot be: recorded alone otherwise. */
		cmd->rc = cmd->nonce == NULL ? -1
			  : agent_nonce_failure(&cmd->err)
				  ? AGENT_CMD_REFUSED
				  : agent_refused(sp, cmd->nonce, &cmd->err);
		return false;
	}
	if (lifecycle_terminal(k->a->state)) {
		tsr_err_set(&cmd->err, GRPC_STATUS_FAILED_PRECONDITION, "agent %s is already %s",
			    k->a->id, lifecycle_state_name(k->a->state));
		cmd->rc = agent_refused(sp, cmd->nonce, &cmd->err);
		return false;
	}
	rc = k->a->kill_requested ? agent_nonce_alone(sp, cmd->nonce, &cmd->err)
				  : agent_kill_claim(sp, k->a, cmd->nonce, &k->changed, &cmd->err);
	if (rc == 1) {
		*item = (struct store_kill_item){ .agent_id = k->a->id, .nonce = cmd->nonce };
		k->item = item;
		return true;
	}
	cmd->rc = rc;
	return false;
}

/*
 * One round of a batch of kills: each not yet done read (one round trip,
 * no fsync), claimed, marked (one write, one fsync for all) and
 * signalled. The number left for another round.
 */
static size_t agent_kill_round(struct spoke *sp, struct agent_kill *k, size_t n)
{
	struct store_kill_item gets[STORE_KILLS_MAX], marks[STORE_KILLS_MAX];
	size_t m = 0, mm = 0, later = 0;
	struct tsr_err err;

	for (size_t i = 0; i < n; i++) {
		if (k[i].done)
			continue;
		if (agent_kill_begin(sp, &k[i], k, n, &gets[m]))
			m++;
		else if (!k[i].done)
			later++;
	}
	if (m == 0)
		return 0; /* a kill waits only behind another of its round */
	(void)store_agent_get_fresh_many(sp->store, gets, m, &err);
	for (size_t i = 0; i < n; i++) {
		if (k[i].item == NULL)
			continue;
		if (agent_kill_read(sp, &k[i], &marks[mm])) {
			mm++;
			continue;
		}
		k[i].item = NULL;
		k[i].done = true;
	}
	if (mm > 0)
		(void)store_agent_mark_kill_many(sp->store, marks, mm, &err);
	for (size_t i = 0; i < n; i++) {
		if (k[i].item == NULL)
			continue;
		k[i].cmd->rc = agent_kill_signal(sp, k[i].a, k[i].cmd->nonce, &k[i].item->err,
						 &k[i].cmd->err);
		k[i].item = NULL;
		k[i].done = true;
	}
	return later;
}

void agent_cmd_kill_many(struct spoke *sp, struct agent_batch_cmd *cmds, size_t n)
{
	struct agent_kill *k;

	assert(n >= 1 && n <= AGENT_KILLS_MAX);
	k = agent_batch_start(cmds, n, sizeof(*k));
	if (k == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		k[i].cmd = &cmds[i];
	while (agent_kill_round(sp, k, n) > 0)
		;
	for (size_t i = 0; i < n; i++) {
		struct agent_batch_cmd *cmd = &cmds[i];

		/* Unless it changed, the record is a as read, with the mark just made. */
		if (cmd->rc == 0) {
			k[i].a->kill_requested = true;
			cmd->rc = k[i].changed ? agent_pack_current(sp, k[i].a->id, &cmd->out,
								    &cmd->outlen, &cmd->err)
					       : pb_pack(&k[i].a->base, &cmd->out, &cmd->outlen,
							 &cmd->err);
		}
		if (k[i].req != NULL) /* a malformed one is no kill of any agent */
			spoke_metrics_kill(sp->metrics,
					   cmd->rc == 0 ? GRPC_STATUS_OK : cmd->err.code);
		if (k[i].a != NULL)
			tessera__v1__agent__free_unpacked(k[i].a, NULL);
		if (k[i].req != NULL)
			tessera__v1__kill_command__free_unpacked(k[i].req, NULL);
	}
	free(k);
}

int agent_cmd_kill_once(struct spoke *sp, const struct store_nonce *nonce, const uint8_t *payload,
			size_t len, uint8_t **out, size_t *outlen, struct tsr_err *err)
{
	return agent_batch_one(agent_cmd_kill_many, sp, nonce, payload, len, out, outlen, err);
}

int agent_cmd_kill(struct spoke *sp, const uint8_t *payload, size_t len, uint8_t **out,
		   size_t *outlen, struct tsr_err *err)
{
	return agent_cmd_kill_once(sp, NULL, payload, len, out, outlen, err);
}
