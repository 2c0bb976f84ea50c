/* recovery: adopting or ending, at start-up, the agents of an earlier spoke process. */
#include "recovery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent_commands.h"
#include "agent_files.h"
#include "clock.h"
#include "lifecycle.h"
#include "log.h"
#include "spoke.h"
#include "spoke_metrics.h"

/* Why an agent whose gate never opened ended: "none" in its exit record, or SPAWNING. */
#define RECOVERY_NOT_STARTED "the spoke stopped before starting the agent; no agent code ran"
/* Each of two reasons joined in an exit's detail gets up to half of it. */
#define RECOVERY_DETAIL_HALF ((int)sizeof(((struct exit_record *)0)->detail) / 2 - 2)
/* How long start-up waits, in all, for what it killed in leftover cgroups to end. */
#define RECOVERY_CGROUP_WAIT_MS 2000
#define RECOVERY_CGROUP_POLL_MS 10

/* One start-up's walk over the records, then over the leftovers. */
struct recovery_walk {
	struct spoke *sp;
	bool ns_told;	  /* the PID namespace change was logged */
	int cg_wait_left; /* ms of RECOVERY_CGROUP_WAIT_MS not yet waited */
};

static int recovery_fail_spawning(struct spoke *sp, const Tessera__V1__Agent *a,
				  struct tsr_err *err)
{
	struct store_update upd = { 0 };
	char pos[STORE_POSITION_MAX];
	const char *why = RECOVERY_NOT_STARTED;

	upd.has_completed_at_ms = true;
	upd.completed_at_ms = clock_wall_ms();
	upd.has_error = true;
	upd.error = why;
	if (store_agent_transition(sp->store, a->id, TESSERA__V1__AGENT_STATE__AGENT_STATE_FAILED,
				   &upd, pos, sizeof(pos), err) != 0)
		return err->code == GRPC_STATUS_FAILED_PRECONDITION ? 0 : -1;
	log_agent_warn(a->id, "recorded FAILED: %s", why);
	return 0;
}

/* Its process is gone: what its shim recorded, or unknown. Queued for outcomes. */
static int recovery_ended(struct spoke *sp, const Tessera__V1__Agent *a, const char *why,
			  struct tsr_err *err)
{
	struct exit_record rec = { 0 };
	struct agent_end end;
	struct tsr_err ferr;
	size_t len;

	snprintf(rec.agent_id, sizeof(rec.agent_id), "%s", a->id);
	rec.kill_requested = a->kill_requested;
	rec.completed_at_ms = clock_wall_ms();
	rec.status = -1;
	rec.started = true;
	if (agent_files_exit_read(sp->cfg.state_dir, a->id, &end, &ferr) != 0) {
		log_agent_warn(a->id, "%s", ferr.msg);
		snprintf(rec.detail, sizeof(rec.detail), "%.*s; %.*s", RECOVERY_DETAIL_HALF, why,
			 RECOVERY_DETAIL_HALF, ferr.msg);
	} else if (end.found) {
		rec.started = end.started;
		rec.signaled = end.signaled;
		rec.status = end.started ? end.status : -1;
	}
	/* A record saying none ran tells more than how the process went. */
	if (end.found && !end.started)
		snprintf(rec.detail, sizeof(rec.detail), "%s", RECOVERY_NOT_STARTED);
	else if (!end.found && rec.detail[0] == '\0')
		snprintf(rec.detail, sizeof(rec.detail), "%s", why);
	if (agent_files_out_read_tail(sp->cfg.state_dir, a->id, (size_t)sp->cfg.output_tail_bytes,
				      &rec.output, &len, &rec.output_end, &ferr) != 0 &&
	    ferr.code != GRPC_STATUS_NOT_FOUND)
		log_agent_warn(a->id, "%s", ferr.msg);
	if (exits_push(&sp->exits, &rec) != 0) {
		free(rec.output);
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	log_agent_warn(a->id, "its process ended while the spoke was down (%s)",
		       end.found ? "its exit was recorded" : why);
	return 0;
}

/*
 * A RUNNING agent of this boot and PID namespace: supervised again if its
 * shim still runs, else ended. The supervisor signals no process that is
 * not provably its shim.
 */
static int recovery_adopt(struct spoke *sp, const Tessera__V1__Agent *a, struct tsr_err *err)
{
	struct supervisor_proc proc = { .pid = a->pid, .start_ticks = a->pid_start_ticks };
	struct supervisor_timeout limit = { 0 };
	int64_t now = clock_wall_ms(), left = 0;
	char why[TSR_ERR_MSG_MAX + 32];
	struct tsr_err aerr;

	limit.grace_ms = agent_grace_ms(sp, a->type);
	if (a->timeout_at_ms > 0) {
		/* What it was spawned with, for the report; what is left, to enforce. */
		int64_t total = a->timeout_at_ms - a->started_at_ms;

		limit.ms = total > 0 && total <= TSR_AGENT_TIMEOUT_MAX_MS
				   ? (uint32_t)total
				   : TSR_AGENT_TIMEOUT_MAX_MS;
		left = a->timeout_at_ms > now ? a->timeout_at_ms - now : 0;
		if (left > limit.ms)
			left = limit.ms;
	}
	if (supervisor_adopt(sp->sv, a->id, &proc, &limit, (uint32_t)left, a->kill_requested,
			     &aerr) == 0) {
		log_agent_info(a->id, "adopted again, pid %d", (int)a->pid);
		return 0;
	}
	/* A record that names some other live process: written by hand, or forged. */
	if (aerr.code == GRPC_STATUS_FAILED_PRECONDITION) {
		log_agent_warn(a->id, "not adopted: %s", aerr.msg);
		snprintf(why, sizeof(why), "its recorded process is %s", aerr.msg);
		return recovery_ended(sp, a, why, err);
	}
	if (aerr.code != GRPC_STATUS_NOT_FOUND)
		return tsr_err_set(err, aerr.code, "agent %s: %s", a->id, aerr.msg);
	log_agent_info(a->id, "not adopted: %s", aerr.msg);
	return recovery_ended(sp, a,
			      "its process ended while the spoke was down; its exit "
			      "status is unknown",
			      err);
}

static int recovery_one(void *arg, const Tessera__V1__Agent *a, struct tsr_err *err)
{
	struct recovery_walk *w = arg;
	struct spoke *sp = w->sp;

	if (a->state == TESSERA__V1__AGENT_STATE__AGENT_STATE_SPAWNING)
		return recovery_fail_spawning(sp, a, err);
	/* Adopted or not, its end goes through outcomes, which counts it. */
	spoke_metrics_running(sp->metrics, a->id, a->type, a->started_at_ms, 0);
	if (a->pid <= 0 || a->pid_start_ticks == 0)
		return recovery_ended(sp, a, "no process was recorded for it", err);
	if (strcmp(a->boot_id, sp->boot_id) != 0)
		return recovery_ended(sp, a, "the machine restarted since it was started", err);
	/*
	 * Same boot, other PID namespace: the spoke's container was restarted,
	 * which ends the old namespace and every process in it, and pids count
	 * from 1 again, so this one may name anything here: never touch it.
	 * Either value differing tells (a new namespace may get a dead one's
	 * inode, never its pid 1); one not recorded (0: an older record) is
	 * not compared. Where nothing differs, supervisor_adopt decides.
	 */
	if ((a->pid_ns != 0 && a->pid_ns != sp->pid_ns.ino) ||
	    (a->pid_ns_init_ticks != 0 && a->pid_ns_init_ticks != sp->pid_ns.init_ticks)) {
		if (!w->ns_told)
			log_warn("the spoke's PID namespace changed (inode %llu, pid 1 from tick "
				 "%llu; was %llu, %llu): its container was restarted, and the "
				 "agents it ran ended with it",
				 (unsigned long long)sp->pid_ns.ino,
				 (unsigned long long)sp->pid_ns.init_ticks,
				 (unsigned long long)a->pid_ns,
				 (unsigned long long)a->pid_ns_init_ticks);
		w->ns_told = true;
		return recovery_ended(sp, a,
				      "its PID namespace ended (the spoke's container was "
				      "restarted), and its process with it",
				      err);
	}
	return recovery_adopt(sp, a, err);
}

/*
 * The cgroup of an agent not supervised now goes too. Whatever is still in
 * it outlived the agent's shim (one SIGKILLed while the spoke was down) and
 * is killed first: nothing of an agent outlives it.
 */
static void recovery_sweep_cgroup(struct recovery_walk *w, const char *agent_id)
{
	const struct agent_cgroup *cg = &w->sp->cgroup;
	struct tsr_err err;
	bool populated = true;
	int rc;

	rc = agent_cgroup_remove(cg, agent_id, &err);
	/* UNAVAILABLE is EBUSY: processes are left in it. */
	if (rc != 0 && err.code == GRPC_STATUS_UNAVAILABLE) {
		log_agent_warn(agent_id, "killing what is left in its cgroup: its shim is gone");
		rc = agent_cgroup_kill(cg, agent_id, &err);
		while (rc == 0 &&
		       (rc = agent_cgroup_populated(cg, agent_id, &populated, &err)) == 0 &&
		       populated && w->cg_wait_left > 0) {
			nanosleep(
				&(struct timespec){ .tv_nsec = RECOVERY_CGROUP_POLL_MS * 1000000L },
				NULL);
			w->cg_wait_left -= RECOVERY_CGROUP_POLL_MS;
		}
		if (rc == 0)
			rc = agent_cgroup_remove(cg, agent_id, &err);
	}
	if (rc != 0)
		log_agent_warn(agent_id, "%s", err.msg);
}

/* Files of agents not supervised now are leftovers: their records are final or gone. */
static void recovery_sweep_one(void *arg, const char *agent_id)
{
	struct recovery_walk *w = arg;
	struct spoke *sp = w->sp;

	if (supervisor_has(sp->sv, agent_id))
		return;
	recovery_sweep_cgroup(w, agent_id);
	/* Queued exits still need theirs: outcomes removes them once recorded. */
	if (!exits_pending(&sp->exits, agent_id))
		agent_files_remove(sp->cfg.state_dir, agent_id);
}

int recovery_run(struct spoke *sp, struct tsr_err *err)
{
	struct recovery_walk w = { .sp = sp, .cg_wait_left = RECOVERY_CGROUP_WAIT_MS };

	if (store_agents_nonterminal(sp->store, recovery_one, &w, err) != 0)
		return -1;
	return agent_files_each(sp->cfg.state_dir, recovery_sweep_one, &w, err);
}
