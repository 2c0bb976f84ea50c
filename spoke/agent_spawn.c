/*
 * agent_spawn: AGENT_SPAWN, alone or several carried out together. Each
 * shim starts first, held at its gate; one durable write records its
 * agent RUNNING with the shim's identity; only then does the gate open.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agent_commands.h"
#include "clock.h"
#include "fault.h"
#include "ids.h"
#include "log.h"
#include "pb.h"
#include "spawn_check.h"
#include "spoke.h"
#include "spoke_metrics.h"
#include "tessera/v1/spoke.pb-c.h"

/* SPAWNING or RUNNING -> FAILED: its process could not be started, or contained. */
static void agent_fail_spawn(struct spoke *sp, const char *agent_id, const char *why)
{
	struct store_update upd = { 0 };
	char pos[STORE_POSITION_MAX];
	struct tsr_err err;

	upd.has_completed_at_ms = true;
	upd.completed_at_ms = clock_wall_ms();
	upd.has_error = true;
	upd.error = why;
	if (store_agent_transition(sp->store, agent_id,
				   TESSERA__V1__AGENT_STATE__AGENT_STATE_FAILED, &upd, pos,
				   sizeof(pos), &err) != 0)
		log_agent_error(agent_id, "cannot record failed spawn: %s", err.msg);
}

/*
 * A draining spoke takes no new agent, but still answers a retry of a
 * spawn it carried out (its request id maps to an agent, whose id goes to
 * existing; else existing[0] is '\0'): the retry starts nothing, and a
 * refusal would tell its caller, wrongly, that nothing was started, and
 * let a hub start the agent elsewhere too.
 */
static int agent_check_draining(struct spoke *sp, const char *request_id,
				char existing[TSR_AGENT_ID_MAX + 1], struct tsr_err *err)
{
	existing[0] = '\0';
	if (!sp->draining)
		return 0;
	if (request_id[0] != '\0' &&
	    store_request_agent(sp->store, request_id, existing, TSR_AGENT_ID_MAX + 1, err) != 0)
		return -1;
	if (existing[0] != '\0')
		return 0;
	return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
			   "spoke %s is draining: it takes no new agents until it is undrained",
			   sp->cfg.id);
}

/* Checks a spawn's fields; existing as agent_check_draining leaves it. */
static int agent_validate_spawn(struct spoke *sp, const Tessera__V1__SpawnCommand *req,
				const struct agent_type **type, char existing[TSR_AGENT_ID_MAX + 1],
				struct tsr_err *err)
{
	struct tsr_label labels[TSR_LABELS_MAX];

	for (size_t i = 0; i < req->n_labels && i < TSR_LABELS_MAX; i++) {
		labels[i].key = req->labels[i]->key;
		labels[i].value = req->labels[i]->value;
	}
	if (spawn_check(&(struct spawn_fields){ req->type, req->task, req->request_id,
						req->timeout_ms, labels, req->n_labels },
			err) != 0)
		return -1;
	*type = agent_types_find(&sp->cfg.types, req->type);
	if (*type == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "spoke %s has no agent type \"%s\"", sp->cfg.id, req->type);
	if (req->timeout_ms > (*type)->timeout_max_ms)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent type %s allows a timeout of at most %u ms", req->type,
				   (unsigned)(*type)->timeout_max_ms);
	return agent_check_draining(sp, req->request_id, existing, err);
}

/* Room for one more agent: RESOURCE_EXHAUSTED at max-agents. */
static int agent_spawn_room(struct spoke *sp, struct tsr_err *err)
{
	if (supervisor_count(sp->sv) < (size_t)sp->cfg.max_agents)
		return 0;
	return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
			   "spoke %s runs its maximum of %d agents", sp->cfg.id,
			   sp->cfg.max_agents);
}

/* One spawn of a batch on its way (agent_cmd_spawn_many). */
struct agent_spawn {
	struct agent_batch_cmd *cmd; /* its command, and where its outcome goes */
	Tessera__V1__SpawnCommand *req;
	const struct agent_type *type;
	struct supervisor_timeout limit;
	/* The new record, and all its create borrows. */
	char id[TSR_AGENT_ID_MAX + 1];
	Tessera__V1__Agent a;
	Tessera__V1__Agent__LabelsEntry labels[TSR_LABELS_MAX];
	Tessera__V1__Agent__LabelsEntry *labelp[TSR_LABELS_MAX];
	struct store_update running; /* its process, once started */
	struct supervisor_proc proc;
	struct tsr_err serr, cerr; /* why it could not be started, or contained */
	int64_t started, began;
	const char *result; /* for spoke_metrics_spawn */
	bool spawned, contained;
	bool done;			/* its command has its outcome */
	struct store_create_item *item; /* its create in this round, or NULL */
};

/* The record of the agent s's spawn asks for, under a new id, created now. */
static int agent_record_new(struct spoke *sp, struct agent_spawn *s, struct tsr_err *err)
{
	const Tessera__V1__SpawnCommand *req = s->req;
	Tessera__V1__Agent *a = &s->a;

	if (ids_new_agent_id(sp->cfg.id, s->id, sizeof(s->id)) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "cannot make an agent id");
	tessera__v1__agent__init(a);
	a->id = s->id;
	a->spoke_id = sp->cfg.id;
	a->type = req->type;
	a->task = req->task;
	a->request_id = req->request_id;
	a->created_at_ms = clock_wall_ms();
	/* agent_validate_spawn has bounded n_labels by TSR_LABELS_MAX. */
	for (size_t i = 0; i < req->n_labels; i++) {
		tessera__v1__agent__labels_entry__init(&s->labels[i]);
		s->labels[i].key = req->labels[i]->key;
		s->labels[i].value = req->labels[i]->value;
		s->labelp[i] = &s->labels[i];
	}
	a->labels = s->labelp;
	a->n_labels = req->n_labels;
	return 0;
}

/*
 * What s's create records with its agent: RUNNING with the identity of its
 * process, started (at s->started, wall clock) and held at its gate, so
 * that a restart can find it before any of its code runs.
 */
static void agent_record_running(struct spoke *sp, struct agent_spawn *s)
{
	struct store_update *u = &s->running;

	u->has_pid = true;
	u->pid = (int32_t)s->proc.pid;
	u->has_process = true;
	u->pid_start_ticks = s->proc.start_ticks;
	u->boot_id = sp->boot_id;
	u->pid_ns = sp->pid_ns.ino;
	u->pid_ns_init_ticks = sp->pid_ns.init_ticks;
	u->has_started_at_ms = true;
	u->started_at_ms = s->started;
	u->has_timeout_at_ms = s->limit.ms != 0;
	u->timeout_at_ms = s->started + s->limit.ms;
}

/* Starts s's shim, held at its gate (supervisor_spawn); false with s->serr set if it cannot. */
static bool agent_spawn_start(struct spoke *sp, struct agent_spawn *s)
{
	return supervisor_spawn(sp->sv, s->id, s->type, s->req->task, strlen(s->req->task),
				&s->limit, &s->proc, &s->started, &s->serr) == 0;
}

/* Ends the shim started for a record Valkey did not take; nothing of it ran. */
static void agent_spawn_abandon(struct spoke *sp, const char *id)
{
	struct tsr_err serr;

	if (supervisor_abort(sp->sv, id, &serr) != 0)
		log_agent_error(id, "%s", serr.msg);
}

/*
 * A retry of a spawn this draining spoke carried out: its nonce recorded,
 * the agent its request id names, and nothing started.
 */
static int agent_spawn_retried(struct spoke *sp, const struct store_nonce *nonce,
			       const char *existing, uint8_t **out, size_t *outlen,
			       struct tsr_err *err)
{
	if (agent_nonce_alone(sp, nonce, err) != 0)
		return AGENT_CMD_REFUSED;
	return agent_pack_current(sp, existing, out, outlen, err);
}

/* Where agent_spawn_begin leaves a spawn. */
enum agent_spawn_next {
	AGENT_SPAWN_DONE,  /* its command has its outcome (refused, or a retry answered) */
	AGENT_SPAWN_SEND,  /* its create is to be sent: item is its */
	AGENT_SPAWN_LATER, /* no room while others of the batch hold shims: the next round */
};

/*
 * Everything of s's spawn up to its create: checked, its shim started and
 * held at its gate. At max-agents while others wait on Valkey (pending),
 * it waits for their outcome, as it would have come after them alone.
 */
static enum agent_spawn_next agent_spawn_begin(struct spoke *sp, struct agent_spawn *s,
					       struct store_create_item *item, bool pending)
{
	struct agent_batch_cmd *cmd = s->cmd;
	char existing[TSR_AGENT_ID_MAX + 1];

	s->result = SPOKE_SPAWN_REFUSED;
	if (s->began == 0)
		s->began = clock_mono_ns();
	if (s->req == NULL)
		s->req = tessera__v1__spawn_command__unpack(NULL, cmd->len, cmd->payload);
	if (s->req == NULL) {
		tsr_err_set(&cmd->err, GRPC_STATUS_INVALID_ARGUMENT, "malformed spawn request");
		cmd->rc = agent_refused(sp, cmd->nonce, &cmd->err);
		return AGENT_SPAWN_DONE;
	}
	if (agent_validate_spawn(sp, s->req, &s->type, existing, &cmd->err) != 0) {
		cmd->rc = agent_refused(sp, cmd->nonce, &cmd->err);
		return AGENT_SPAWN_DONE;
	}
	if (existing[0] != '\0') {
		cmd->rc = agent_spawn_retried(sp, cmd->nonce, existing, &cmd->out, &cmd->outlen,
					      &cmd->err);
		s->result = cmd->rc == AGENT_CMD_REFUSED ? SPOKE_SPAWN_ERROR : SPOKE_SPAWN_EXISTING;
		return AGENT_SPAWN_DONE;
	}
	if (agent_spawn_room(sp, &cmd->err) != 0) {
		if (pending) {
			tsr_err_clear(&cmd->err);
			return AGENT_SPAWN_LATER;
		}
		cmd->rc = agent_refused(sp, cmd->nonce, &cmd->err);
		return AGENT_SPAWN_DONE;
	}
	s->result = SPOKE_SPAWN_ERROR;
	if (agent_record_new(sp, s, &cmd->err) != 0)
		return AGENT_SPAWN_DONE;
	s->limit.ms = s->req->timeout_ms != 0 ? s->req->timeout_ms : s->type->timeout_default_ms;
	s->limit.grace_ms = agent_grace_ms(sp, s->type->name);
	s->spawned = agent_spawn_start(sp, s);
	if (s->spawned)
		agent_record_running(sp, s);
	fault_point("spawn-before-create");
	*item = (struct store_create_item){ .a = &s->a,
					    .nonce = cmd->nonce,
					    .running = s->spawned ? &s->running : NULL };
	s->item = item;
	return AGENT_SPAWN_SEND;
}

/*
 * s's spawn once Valkey has answered its create (s->item's outcome): the
 * gate opened, or the spawn failed (FAILED, saying why, if its shim could
 * not be started or contained); its command's outcome set.
 */
static void agent_spawn_end(struct spoke *sp, struct agent_spawn *s)
{
	struct agent_batch_cmd *cmd = s->cmd;
	struct store_create_item *it = s->item;

	if (it->err.code != GRPC_STATUS_OK || it->existing[0] != '\0') {
		/* Not recorded: no agent may run for a command that failed. */
		if (s->contained)
			agent_spawn_abandon(sp, s->id);
		if (it->existing[0] != '\0') {
			s->result = SPOKE_SPAWN_EXISTING;
			cmd->rc = agent_pack_current(sp, it->existing, &cmd->out, &cmd->outlen,
						     &cmd->err);
			return;
		}
		cmd->err = it->err;
		if (cmd->nonce != NULL && agent_nonce_failure(&it->err))
			cmd->rc = AGENT_CMD_REFUSED;
		return;
	}
	fault_point("spawn-after-create");
	if (!s->spawned || !s->contained) {
		const char *why = s->spawned ? s->cerr.msg : s->serr.msg;

		log_agent_warn(s->id, "spawn failed: %s", why);
		s->result = SPOKE_SPAWN_FAILED;
		agent_fail_spawn(sp, s->id, why);
		cmd->rc = agent_pack_current(sp, s->id, &cmd->out, &cmd->outlen, &cmd->err);
		return;
	}
	fault_point("spawn-after-running");
	if (supervisor_release(sp->sv, s->id, &s->serr) != 0)
		log_agent_error(s->id, "%s", s->serr.msg); /* its exit report follows */
	else
		log_agent_tag(LOG_LEVEL_INFO, s->id, "agent %s (%s) running as pid %d", s->id,
			      s->type->name, (int)s->proc.pid);
	fault_point("spawn-after-release");
	s->result = SPOKE_SPAWN_OK;
	spoke_metrics_running(sp->metrics, s->id, s->type->name, s->started, s->began);
	cmd->rc = it->rec != NULL
			  ? pb_pack(&it->rec->base, &cmd->out, &cmd->outlen, &cmd->err)
			  : agent_pack_current(sp, s->id, &cmd->out, &cmd->outlen, &cmd->err);
}

/*
 * Each shim starts first, in its cgroup, held at its gate; then one write
 * records every agent of the batch RUNNING with its shim's identity,
 * while the shims go under the reaper's watch (and into their cgroups,
 * where they could not start there); only once Valkey has that does each
 * gate open and agent code run. A record Valkey refuses (a replay, a
 * retry, Valkey away) ends its shim, which ran nothing. A shim that could
 * not be started (its cgroup not made, say) is recorded FAILED, saying
 * why, as is one that could not be contained (the supervisor ended it).
 */
/*
 * One round of a batch: the spawns of s[0..n) not yet done begun, their
 * creates sent at once, their shims contained while Valkey writes, and
 * each ended once Valkey has answered. The number left for another round.
 */
static size_t agent_spawn_round(struct spoke *sp, struct agent_spawn *s, size_t n)
{
	struct store_create_item items[AGENT_SPAWNS_MAX];
	struct store_create *c = NULL;
	size_t m = 0, later = 0;
	struct tsr_err err;

	for (size_t i = 0; i < n; i++) {
		if (s[i].done)
			continue;
		switch (agent_spawn_begin(sp, &s[i], &items[m], m > 0)) {
		case AGENT_SPAWN_SEND:
			m++;
			break;
		case AGENT_SPAWN_LATER:
			later++;
			break;
		case AGENT_SPAWN_DONE:
			s[i].done = true;
			break;
		}
	}
	if (m == 0)
		return 0; /* nothing waits on Valkey, so nothing was left for later */
	(void)store_agent_create_send(sp->store, items, m, &c, &err);
	for (size_t i = 0; i < n; i++) {
		if (s[i].done || s[i].item == NULL)
			continue;
		/* Sent: contained while Valkey writes. Not sent: its outcome is known. */
		if (c == NULL || s[i].item->err.code != GRPC_STATUS_OK) {
			if (s[i].spawned)
				agent_spawn_abandon(sp, s[i].id);
			continue;
		}
		if (s[i].spawned)
			s[i].contained = supervisor_contain(sp->sv, s[i].id, &s[i].cerr) == 0;
		fault_point("spawn-after-start");
	}
	(void)store_agent_create_finish(sp->store, c, &err);
	for (size_t i = 0; i < n; i++) {
		if (s[i].done || s[i].item == NULL)
			continue;
		agent_spawn_end(sp, &s[i]);
		if (s[i].item->rec != NULL)
			tessera__v1__agent__free_unpacked(s[i].item->rec, NULL);
		s[i].item = NULL;
		s[i].done = true;
	}
	return later;
}

/*
 * Each shim starts first, in its cgroup, held at its gate; then one write
 * records every agent of the batch RUNNING with its shim's identity,
 * while the shims go under the reaper's watch (and into their cgroups,
 * where they could not start there); only once Valkey has that does each
 * gate open and agent code run. A record Valkey refuses (a replay, a
 * retry, Valkey away) ends its shim, which ran nothing. A shim that could
 * not be started (its cgroup not made, say) is recorded FAILED, saying
 * why, as is one that could not be contained (the supervisor ended it).
 * A round leaves only spawns that found no room while others held
 * shims, each round fewer, so the rounds are at most n.
 */
void agent_cmd_spawn_many(struct spoke *sp, struct agent_batch_cmd *cmds, size_t n)
{
	struct agent_spawn *s;

	assert(n >= 1 && n <= AGENT_SPAWNS_MAX);
	s = agent_batch_start(cmds, n, sizeof(*s));
	if (s == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		s[i].cmd = &cmds[i];
	while (agent_spawn_round(sp, s, n) > 0)
		;
	for (size_t i = 0; i < n; i++) {
		if (s[i].req == NULL) /* a malformed one is no spawn of any type */
			continue;
		spoke_metrics_spawn(sp->metrics, s[i].type != NULL ? s[i].type->name : NULL,
				    s[i].result);
		tessera__v1__spawn_command__free_unpacked(s[i].req, NULL);
	}
	free(s);
}

int agent_cmd_spawn(struct spoke *sp, const struct store_nonce *nonce, const uint8_t *payload,
		    size_t len, uint8_t **out, size_t *outlen, struct tsr_err *err)
{
	return agent_batch_one(agent_cmd_spawn_many, sp, nonce, payload, len, out, outlen, err);
}
