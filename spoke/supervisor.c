/*
 * supervisor: spawning and adopting agent shims, killing their groups,
 * and the reaper thread that turns pidfd readiness and kill deadlines
 * into exit reports. One mutex guards the slot table; the reaper alone
 * frees slots, so a slot it polls stays valid while it polls without the
 * lock. No file is read or written with the mutex held: an agent can put
 * anything at its files' paths, and whatever reading them costs must not
 * hold up spawns, kills and look-ups (the gate is a pipe, whose one byte
 * never blocks).
 */
#include "supervisor.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent_files.h"
#include "clock.h"
#include "id_index.h"
#include "ids.h"
#include "log.h"
#include "proc_identity.h"
#include "proc_tree.h"
#include "shim_launch.h"

#define SV_DRAIN_POLL_MS 10	 /* re-check of a group that is still dying */
#define SV_REAP_PER_PASS 256	 /* orphans of one group reaped per pass */
#define SV_ORPHANS_PER_PASS 4096 /* children beyond the shims looked at per pass */
#define SV_EPOLL_WAKE UINT64_MAX /* wakefd's epoll datum; a pidfd's: sv_epoll_add */
/* PATH, HOME, the type's, TESSERA_AGENT_ID, TESSERA_TASK, NULL */
#define SV_ENV_MAX (AGENT_ENV_MAX + 5)
#define SV_HOME_MAX 4096
#define SV_PATH "/usr/local/bin:/usr/bin:/bin"
#define SV_GATE_FD SHIM_LAUNCH_GATE_FD
#define SV_TRIM_EVERY_MS 1000 /* how often output files are trimmed */
/*
 * Pidfds live at or above this fd, when the limit allows: the low ones stay
 * for the few a spawn opens, so that a shim's launch copies only those.
 */
#define SV_PIDFD_FLOOR 1024
/* Why supervisor_adopt refuses a live process that is not the agent's shim. */
#define SV_NOT_SHIM "not this agent's tessera-shim, left alone: "

/* A record holds the whole tail a terminal agent leaves. */
_Static_assert(SUPERVISOR_TAIL_MAX <= TSR_OUTPUT_MAX, "the output tail must fit its record");

enum sv_slot_state {
	SV_FREE,
	SV_SPAWNING,  /* reserved, or its shim started and not yet contained; not polled */
	SV_RUNNING,   /* shim alive or unreaped; pidfd polled */
	SV_DRAINING,  /* shim ended; waiting for the rest of its group */
	SV_REPORTING, /* its exit goes to on_exit: still found until it has */
};

struct sv_child {
	enum sv_slot_state state;
	char agent_id[TSR_AGENT_ID_MAX + 1];
	pid_t pid;	 /* the shim's, also the process group id */
	int pidfd;	 /* owned once started (SV_SPAWNING with a pid, SV_RUNNING) */
	int gatefd;	 /* owned while held: write end of the shim's gate */
	bool in_cgroup;	 /* started in its agent cgroup: contain need not move it */
	int64_t punched; /* output freed up to here; -1: cannot */
	bool released;	 /* the gate opened: the agent was let run */
	bool adopted;	 /* started by an earlier spoke: not our child */
	bool kill_requested;
	int64_t kill_at_mono; /* when to SIGKILL the group; 0: not due */
	struct supervisor_timeout limit;
	int64_t timeout_at_mono; /* when the timeout ends it; 0: none, or done */
	bool timed_out;
	int64_t drain_until_mono;
	struct supervisor_exit ex; /* the leader's end, kept while draining */
	int shim_code;		   /* how the shim ended (CLD_*) if we reaped it, else 0 */
	int shim_status;	   /* with shim_code: its exit status or signal */
	uint32_t watch;		   /* this pidfd's epoll tag (see sv_epoll_add) */
};

/* An exit to report, read and handed to on_exit by the reaper without mu. */
struct sv_done {
	struct sv_child *slot; /* SV_REPORTING until on_exit has returned */
	char agent_id[TSR_AGENT_ID_MAX + 1];
	struct supervisor_exit ex;    /* ex.agent_id points at agent_id above */
	int shim_code, shim_status;   /* as in struct sv_child */
	char *output;		      /* owned, ex.output points here */
	char detail[TSR_ERR_MSG_MAX]; /* ex.detail points here when set */
};

struct supervisor {
	pthread_mutex_t mu;
	pthread_t reaper;
	int wakefd; /* owned eventfd: spawn and kill wake the reaper */
	bool stopping;
	size_t max;
	size_t tail_max;	    /* bytes of output kept per agent */
	struct sv_child *slots;	    /* owned, [max] */
	int epfd;		    /* owned epoll: wakefd, and each running slot's pidfd */
	struct epoll_event *events; /* owned, [max + 1], reaper only */
	uint64_t *ready;	    /* owned, [max], reaper only: epoll data of ended shims */
	size_t *running;	    /* owned, [max], reaper only: slots to trim */
	size_t nrunning;
	struct sv_done *done;  /* owned, [max], reaper only: exits to report */
	const char *state_dir; /* borrowed */
	const char *shim_path; /* borrowed */
	bool reap_inherited;
	const struct agent_cgroup *cgroup; /* borrowed, or NULL */
	struct rlimit agent_nofile;	   /* rlim_cur 0: none */
	int64_t next_trim_mono;		   /* reaper only */
	/*
	 * Under mu: no slot has a kill, timeout or drain re-check due before
	 * this, so that a pass scans the table only when one is due.
	 */
	int64_t next_due_mono;
	struct id_index ids;  /* under mu: the used slots by agent id */
	uint32_t *free_slots; /* owned, [max], under mu: a stack of the free slots */
	size_t nfree;
	pid_t *children;	       /* owned, [max + SV_ORPHANS_PER_PASS], reaper only */
	pid_t *shims;		       /* owned, [max], reaper only: our shims' pids, sorted */
	uint32_t watches;	       /* epoll tags handed out, under mu */
	struct shim_launcher launcher; /* starts the shims */
	supervisor_exit_fn on_exit;
	void *arg;
};

static void sv_wake(struct supervisor *sv)
{
	uint64_t one = 1;

	/* Only a counter overflow (EAGAIN) fails, and then a wake-up is pending anyway. */
	if (write(sv->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("supervisor: wake-up: %s", strerror(errno));
}

/* Slot of agent_id among used slots, or NULL. Called with mu held. */
static struct sv_child *sv_find(struct supervisor *sv, const char *agent_id)
{
	int64_t i = id_index_find(&sv->ids, agent_id);

	return i >= 0 ? &sv->slots[i] : NULL;
}

/* The id_index_name_fn of sv->ids. */
static const char *sv_slot_id(const void *ctx, uint32_t slot)
{
	const struct supervisor *sv = ctx;

	return sv->slots[slot].agent_id;
}

/* Frees slot c, with mu held. */
static void sv_slot_free(struct supervisor *sv, struct sv_child *c)
{
	id_index_remove(&sv->ids, c->agent_id);
	memset(c, 0, sizeof(*c));
	c->state = SV_FREE;
	c->pidfd = c->gatefd = -1;
	sv->free_slots[sv->nfree++] = (uint32_t)(c - sv->slots);
}

/* A deadline set for some slot, with mu held: the reaper looks at the table by then. */
static void sv_due(struct supervisor *sv, int64_t at)
{
	if (at < sv->next_due_mono)
		sv->next_due_mono = at;
}

/*
 * How long the reaper may wait for a pidfd or a wake-up: until the next
 * kill, timeout, trim or drain re-check; -1 for none. Called with mu held.
 */
static int sv_wait_ms(struct supervisor *sv, int64_t now)
{
	int64_t at = sv->next_due_mono;

	/* Running output to trim, or an inherited process that may end with no pidfd to say so. */
	if ((sv->nfree < sv->max || sv->reap_inherited) && sv->next_trim_mono < at)
		at = sv->next_trim_mono;
	if (at == INT64_MAX)
		return -1;
	return at <= now ? 0 : at - now < INT_MAX ? (int)(at - now) : INT_MAX;
}

/* SIGKILL to c's group and, if agents have cgroups, to its cgroup. */
static void sv_kill_group(struct supervisor *sv, struct sv_child *c)
{
	struct tsr_err err;

	if (kill(-c->pid, SIGKILL) != 0 && errno != ESRCH)
		log_agent_warn(c->agent_id, "SIGKILL to group %d: %s", (int)c->pid,
			       strerror(errno));
	if (sv->cgroup != NULL && agent_cgroup_kill(sv->cgroup, c->agent_id, &err) != 0)
		log_agent_warn(c->agent_id, "%s", err.msg);
}

/*
 * The shim has ended (its pidfd is readable). A shim of ours is still a
 * zombie, which pins its pid as the group id; any member left pins it
 * too. SIGKILL the group now, then reap. How the agent ended is read
 * once the group is gone (sv_read_end).
 */
static void sv_leader_exited(struct supervisor *sv, struct sv_child *c, int64_t now)
{
	siginfo_t si;
	bool reaped = false;

	sv_kill_group(sv, c);
	if (!c->adopted) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED | WNOHANG) != 0)
			log_agent_error(c->agent_id, "waitid: %s", strerror(errno));
		else if (si.si_pid == 0)
			return; /* readable but not yet waitable: look again next pass */
		else
			reaped = true;
	}
	c->shim_code = reaped ? si.si_code : 0;
	c->shim_status = reaped ? si.si_status : 0;
	c->ex.pid = c->pid;
	c->ex.started = c->released; /* until its exit record says otherwise */
	c->ex.kill_requested = c->kill_requested;
	c->ex.timed_out = c->timed_out;
	c->ex.timeout_ms = c->limit.ms;
	c->ex.completed_at_ms = clock_wall_ms();
	/*
	 * Out of the epoll set before the close: a shim being spawned may
	 * still hold the pidfd open (its copy of the fd table until exec),
	 * which would keep the watch, and its readiness, alive.
	 */
	epoll_ctl(sv->epfd, EPOLL_CTL_DEL, c->pidfd, NULL);
	close(c->pidfd);
	c->pidfd = -1;
	if (c->gatefd >= 0)
		close(c->gatefd);
	c->gatefd = -1;
	c->state = SV_DRAINING;
	c->drain_until_mono = now + SUPERVISOR_DRAIN_MS;
}

/*
 * Reaps the group's orphans (ours, as subreaper); true once nothing of it
 * is left. With the leader reaped, only the members pin the group id, but
 * Linux hands out pids cyclically, so the id does not come back as some
 * new group within the few seconds of a drain.
 */
static bool sv_group_gone(struct supervisor *sv, struct sv_child *c, int64_t now)
{
	struct tsr_err err;
	siginfo_t si;
	bool populated = false;

	for (size_t i = 0; i < SV_REAP_PER_PASS; i++) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PGID, (id_t)c->pid, &si, WEXITED | WNOHANG) != 0 || si.si_pid == 0)
			break;
	}
	if (sv->cgroup != NULL &&
	    agent_cgroup_populated(sv->cgroup, c->agent_id, &populated, &err) != 0)
		log_agent_warn(c->agent_id, "%s", err.msg);
	if (!populated && kill(-c->pid, 0) != 0 && errno == ESRCH)
		return true;
	if (now < c->drain_until_mono)
		return false;
	log_agent_warn(c->agent_id,
		       "process group %d or its cgroup not empty %d ms after its leader ended",
		       (int)c->pid, SUPERVISOR_DRAIN_MS);
	return true;
}

/*
 * SIGTERM to the group of an agent whose time is up, SIGKILL after its
 * grace: the path of supervisor_kill. A kill requested first is under way
 * already and stays what ended it.
 */
static void sv_time_out(struct sv_child *c, int64_t now)
{
	int64_t at = now + c->limit.grace_ms;

	c->timeout_at_mono = 0;
	if (c->kill_requested)
		return;
	c->timed_out = true;
	log_agent_info(c->agent_id, "timed out after %u ms", (unsigned)c->limit.ms);
	if (kill(-c->pid, SIGTERM) != 0 && errno != ESRCH)
		log_agent_warn(c->agent_id, "SIGTERM to group %d: %s", (int)c->pid,
			       strerror(errno));
	if (c->kill_at_mono == 0 || at < c->kill_at_mono)
		c->kill_at_mono = at;
}

/*
 * Serves c's deadlines that are due and notes its next one; 1 if its
 * exit goes to d (the slot SV_REPORTING), else 0. With mu held.
 */
static size_t sv_step_slot(struct supervisor *sv, struct sv_child *c, int64_t now,
			   struct sv_done *d)
{
	if (c->state == SV_RUNNING && c->timeout_at_mono != 0 && c->timeout_at_mono <= now)
		sv_time_out(c, now);
	if (c->state == SV_RUNNING && c->kill_at_mono != 0 && c->kill_at_mono <= now) {
		/*
		 * Below the shim first: what left the group is still there
		 * (it is their subreaper), and the shim then records the end
		 * and clears what the walk missed.
		 */
		proc_tree_kill_below(c->pid);
		sv_kill_group(sv, c);
		c->kill_at_mono = 0;
	}
	if (c->state == SV_RUNNING) {
		if (c->timeout_at_mono != 0)
			sv_due(sv, c->timeout_at_mono);
		if (c->kill_at_mono != 0)
			sv_due(sv, c->kill_at_mono);
	}
	if (c->state != SV_DRAINING)
		return 0;
	if (!sv_group_gone(sv, c, now)) {
		sv_due(sv, now + SV_DRAIN_POLL_MS);
		return 0;
	}
	d->slot = c;
	memcpy(d->agent_id, c->agent_id, sizeof(c->agent_id));
	d->ex = c->ex;
	d->ex.agent_id = d->agent_id;
	d->shim_code = c->shim_code;
	d->shim_status = c->shim_status;
	/*
	 * Kept until on_exit has queued the exit: whoever finds no slot for
	 * an agent can count on finding its exit queued.
	 */
	c->state = SV_REPORTING;
	return 1;
}

/*
 * One pass after poll(), with mu held: the shims that ended, each
 * reported at once if its group has gone with it (no walk of the table
 * for it), then the table, if some deadline is due; returns how many
 * exits went to sv->done, each slot SV_REPORTING.
 */
static size_t sv_step(struct supervisor *sv, size_t nready, bool trim, int64_t now)
{
	size_t ndone = 0;

	for (size_t k = 0; k < nready; k++) {
		struct sv_child *c = &sv->slots[(uint32_t)sv->ready[k]];

		/* An event of a slot's earlier watch is no news of its shim. */
		if (c->state != SV_RUNNING || c->watch != (uint32_t)(sv->ready[k] >> 32))
			continue;
		sv_leader_exited(sv, c, now);
		ndone += sv_step_slot(sv, c, now, &sv->done[ndone]);
	}
	sv->nrunning = 0;
	for (size_t i = 0; i < sv->max && trim; i++)
		if (sv->slots[i].state == SV_RUNNING)
			sv->running[sv->nrunning++] = i;
	if (now < sv->next_due_mono)
		return ndone;
	sv->next_due_mono = INT64_MAX;
	for (size_t i = 0; i < sv->max; i++)
		ndone += sv_step_slot(sv, &sv->slots[i], now, &sv->done[ndone]);
	return ndone;
}

/*
 * Frees the old output of the agents running at this pass, without mu:
 * only the reaper moves a slot's punched, and it frees no such slot
 * before the next pass.
 */
static void sv_trim(struct supervisor *sv)
{
	for (size_t k = 0; k < sv->nrunning; k++) {
		struct sv_child *c = &sv->slots[sv->running[k]];

		agent_files_out_trim(sv->state_dir, c->agent_id, sv->tail_max, &c->punched);
	}
}

/*
 * How d's agent ended, once its group has: the shim's record if it made
 * one; else, after a kill or timeout, the SIGKILL that ended the group
 * before the shim could record anything; else unknown, saying why when
 * the record was there but unusable.
 */
static void sv_read_end(struct supervisor *sv, struct sv_done *d)
{
	struct agent_end end;
	struct tsr_err err;

	d->ex.signaled = false;
	d->ex.status = -1;
	d->ex.detail = NULL;
	d->detail[0] = '\0';
	if (!d->ex.started)
		return;
	if (agent_files_exit_read(sv->state_dir, d->agent_id, &end, &err) != 0) {
		log_agent_error(d->agent_id, "%s", err.msg);
		snprintf(d->detail, sizeof(d->detail), "%s", err.msg);
	}
	if (end.found) {
		d->ex.started = end.started;
		d->ex.signaled = end.signaled;
		d->ex.status = end.started ? end.status : -1;
		return;
	}
	if (d->ex.kill_requested || d->ex.timed_out) {
		d->ex.signaled = true;
		d->ex.status = SIGKILL;
		return;
	}
	if (d->detail[0] != '\0')
		d->ex.detail = d->detail;
	else if (d->shim_code != 0)
		log_agent_error(d->agent_id,
				"its shim ended (%s %d) without recording the agent's exit",
				d->shim_code == CLD_EXITED ? "exit" : "signal", d->shim_status);
	else
		log_agent_error(d->agent_id, "its shim ended without recording the agent's exit");
}

/*
 * Reads how d's agent ended and its output tail, both files, without mu;
 * hands the exit to on_exit, then frees the slot.
 */
static void sv_report(struct supervisor *sv, struct sv_done *d)
{
	struct tsr_err err;

	sv_read_end(sv, d);
	d->output = NULL;
	d->ex.output_len = 0;
	d->ex.output_end = 0;
	if (agent_files_out_read_tail(sv->state_dir, d->agent_id, sv->tail_max, &d->output,
				      &d->ex.output_len, &d->ex.output_end, &err) != 0)
		log_agent_warn(d->agent_id, "no output: %s", err.msg);
	d->ex.output = d->output;
	sv->on_exit(sv->arg, &d->ex);
	free(d->output);
	d->output = NULL;
	if (sv->cgroup != NULL && agent_cgroup_remove(sv->cgroup, d->agent_id, &err) != 0)
		log_agent_warn(d->agent_id, "%s", err.msg);
	pthread_mutex_lock(&sv->mu);
	sv_slot_free(sv, d->slot);
	pthread_mutex_unlock(&sv->mu);
}

static int sv_pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Into sv->shims, sorted, the pids of our shims still to be reaped by
 * their slot's path (or by supervisor_abort, for one not yet contained);
 * how many, or -1 while one is being spawned (its pid is not in its slot
 * yet). With mu held.
 */
static long sv_shims_sorted(struct supervisor *sv)
{
	size_t n = 0;

	for (size_t i = 0; i < sv->max; i++) {
		const struct sv_child *c = &sv->slots[i];

		if (c->state == SV_SPAWNING && c->pidfd < 0)
			return -1;
		if ((c->state == SV_SPAWNING || c->state == SV_RUNNING) && !c->adopted)
			sv->shims[n++] = c->pid;
	}
	qsort(sv->shims, n, sizeof(*sv->shims), sv_pid_cmp);
	return (long)n;
}

/*
 * Reaps the children this process inherited as subreaper that have ended:
 * the descendants of agents whose shim died first (killed after its
 * grace, say) and that had left their group. None of them may pile up
 * as a zombie. The list is read before the shims are looked up, so a
 * shim that is in it is in its slot by then, unless still being spawned:
 * then the pass is skipped, its exit left for the slot's path. At most
 * SV_ORPHANS_PER_PASS children beyond the shims are looked at a pass.
 */
static void sv_reap_inherited(struct supervisor *sv)
{
	siginfo_t si;
	long nshims;
	int n;

	n = proc_tree_children(getpid(), sv->children, sv->max + SV_ORPHANS_PER_PASS);
	if (n <= 0)
		return;
	pthread_mutex_lock(&sv->mu);
	nshims = sv_shims_sorted(sv);
	pthread_mutex_unlock(&sv->mu);
	for (int i = 0; i < n && nshims >= 0; i++) {
		if (bsearch(&sv->children[i], sv->shims, (size_t)nshims, sizeof(*sv->shims),
			    sv_pid_cmp) != NULL)
			continue;
		memset(&si, 0, sizeof(si));
		waitid(P_PID, (id_t)sv->children[i], &si, WEXITED | WNOHANG);
	}
}

/*
 * Waits up to timeout ms for shims to end or a wake-up; the slots whose
 * shim ended go to sv->ready, and their count is returned.
 */
static size_t sv_wait(struct supervisor *sv, int timeout)
{
	uint64_t count;
	size_t nready = 0;
	int n;

	n = epoll_wait(sv->epfd, sv->events, (int)sv->max + 1, timeout);
	if (n < 0 && errno != EINTR) {
		log_error("supervisor: epoll_wait: %s", strerror(errno));
		/* Kill deadlines still get served, without spinning. */
		nanosleep(&(struct timespec){ .tv_nsec = SV_DRAIN_POLL_MS * 1000000L }, NULL);
	}
	for (int k = 0; k < n; k++) {
		if (sv->events[k].data.u64 != SV_EPOLL_WAKE)
			sv->ready[nready++] = sv->events[k].data.u64;
		else if (read(sv->wakefd, &count, sizeof(count)) < 0 && errno != EAGAIN)
			log_warn("supervisor: wake-up read: %s", strerror(errno));
	}
	return nready;
}

static void *sv_reaper_main(void *p)
{
	struct supervisor *sv = p;
	size_t nready, ndone;
	int64_t now;
	bool trim;
	int timeout;

	for (;;) {
		pthread_mutex_lock(&sv->mu);
		if (sv->stopping) {
			pthread_mutex_unlock(&sv->mu);
			break;
		}
		timeout = sv_wait_ms(sv, clock_mono_ms());
		pthread_mutex_unlock(&sv->mu);

		nready = sv_wait(sv, timeout);
		now = clock_mono_ms();
		trim = now >= sv->next_trim_mono;
		if (trim)
			sv->next_trim_mono = now + SV_TRIM_EVERY_MS;
		pthread_mutex_lock(&sv->mu);
		ndone = sv_step(sv, nready, trim, now);
		pthread_mutex_unlock(&sv->mu);
		if (trim)
			sv_trim(sv);
		if (trim && sv->reap_inherited)
			sv_reap_inherited(sv);
		for (size_t i = 0; i < ndone; i++)
			sv_report(sv, &sv->done[i]);
	}
	return NULL;
}

/* Frees sv and what it owns but the reaper; mu_ready: mu was initialised. */
static void sv_free(struct supervisor *sv, bool mu_ready)
{
	if (mu_ready)
		pthread_mutex_destroy(&sv->mu);
	if (sv->wakefd >= 0)
		close(sv->wakefd);
	if (sv->epfd >= 0)
		close(sv->epfd);
	free(sv->slots);
	free(sv->events);
	free(sv->ready);
	free(sv->running);
	free(sv->done);
	free(sv->free_slots);
	free(sv->children);
	free(sv->shims);
	id_index_free(&sv->ids);
	shim_launcher_free(&sv->launcher);
	free(sv);
}

/* A supervisor for cfg with its tables, every slot free, and no fd, mutex or thread yet. */
static int sv_new(const struct supervisor_config *cfg, supervisor_exit_fn on_exit, void *arg,
		  struct supervisor **out, struct tsr_err *err)
{
	struct supervisor *sv;
	size_t max = cfg->max_agents;

	sv = calloc(1, sizeof(*sv));
	if (sv == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	sv->wakefd = sv->epfd = -1;
	sv->max = max;
	sv->tail_max = cfg->tail_bytes;
	sv->state_dir = cfg->state_dir;
	sv->shim_path = cfg->shim_path;
	sv->reap_inherited = cfg->reap_inherited;
	sv->cgroup = cfg->cgroup != NULL && cfg->cgroup->enabled ? cfg->cgroup : NULL;
	sv->agent_nofile = cfg->agent_nofile;
	sv->on_exit = on_exit;
	sv->arg = arg;
	sv->slots = calloc(max, sizeof(*sv->slots));
	sv->events = calloc(max + 1, sizeof(*sv->events));
	sv->ready = calloc(max, sizeof(*sv->ready));
	sv->running = calloc(max, sizeof(*sv->running));
	sv->done = calloc(max, sizeof(*sv->done));
	sv->free_slots = calloc(max, sizeof(*sv->free_slots));
	sv->children = calloc(max + SV_ORPHANS_PER_PASS, sizeof(*sv->children));
	sv->shims = calloc(max, sizeof(*sv->shims));
	if (sv->slots == NULL || sv->events == NULL || sv->ready == NULL || sv->running == NULL ||
	    sv->done == NULL || sv->free_slots == NULL || sv->children == NULL ||
	    sv->shims == NULL || id_index_init(&sv->ids, max, sv_slot_id, sv) != 0) {
		sv_free(sv, false);
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	sv->next_due_mono = INT64_MAX;
	/* The lowest slots first, as a scan from 0 would hand them out. */
	for (size_t i = 0; i < max; i++) {
		sv->slots[i].pidfd = sv->slots[i].gatefd = -1;
		sv->free_slots[sv->nfree++] = (uint32_t)(max - 1 - i);
	}
	*out = sv;
	return 0;
}

/*
 * Grows this process's descriptor table now to hold every pidfd of a full
 * cap (SV_PIDFD_FLOOR up), as far as the open-files limit lets it. A
 * table shared by threads waits out an RCU grace period each time it
 * grows, milliseconds that would otherwise fall on the spawn that first
 * needs the room. Tables never shrink, so this lasts.
 */
static void sv_fd_table_grow(const struct supervisor *sv)
{
	rlim_t top = SV_PIDFD_FLOOR + sv->max - 1;
	struct rlimit lim;
	int f;

	if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur <= top)
		top = lim.rlim_cur - 1;
	if (top < SV_PIDFD_FLOOR)
		return;
	f = fcntl(sv->epfd, F_DUPFD_CLOEXEC, (int)top);
	if (f >= 0)
		close(f);
}

int supervisor_start(const struct supervisor_config *cfg, supervisor_exit_fn on_exit, void *arg,
		     struct supervisor **out, struct tsr_err *err)
{
	struct supervisor *sv = NULL;
	bool mu_ready = false;
	int rc = -1, e;

	if (cfg->max_agents == 0 || cfg->max_agents > SUPERVISOR_AGENTS_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "agent cap must be 1..%d",
				   SUPERVISOR_AGENTS_MAX);
	if (cfg->tail_bytes == 0 || cfg->tail_bytes > SUPERVISOR_TAIL_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "output tail must be 1..%d bytes", SUPERVISOR_TAIL_MAX);
	if (access(cfg->shim_path, X_OK) != 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "shim %s: %s", cfg->shim_path,
				   strerror(errno));
	if (shim_launch_check(err) != 0 || sv_new(cfg, on_exit, arg, &sv, err) != 0)
		return -1;
	if (shim_launcher_init(&sv->launcher, err) != 0)
		goto out;
	sv->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	sv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sv->wakefd < 0 || sv->epfd < 0 ||
	    epoll_ctl(sv->epfd, EPOLL_CTL_ADD, sv->wakefd,
		      &(struct epoll_event){ .events = EPOLLIN, .data.u64 = SV_EPOLL_WAKE }) != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "eventfd or epoll: %s", strerror(errno));
		goto out;
	}
	sv_fd_table_grow(sv);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "PR_SET_CHILD_SUBREAPER: %s",
			    strerror(errno));
		goto out;
	}
	e = pthread_mutex_init(&sv->mu, NULL);
	if (e != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "mutex: %s", strerror(e));
		goto out;
	}
	mu_ready = true;
	e = pthread_create(&sv->reaper, NULL, sv_reaper_main, sv);
	if (e != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "reaper thread: %s", strerror(e));
		goto out;
	}
	*out = sv;
	sv = NULL;
	rc = 0;
out:
	if (sv != NULL)
		sv_free(sv, mu_ready);
	return rc;
}

void supervisor_stop(struct supervisor *sv)
{
	if (sv == NULL)
		return;
	pthread_mutex_lock(&sv->mu);
	sv->stopping = true;
	pthread_mutex_unlock(&sv->mu);
	sv_wake(sv);
	pthread_join(sv->reaper, NULL);
	/* Held shims see their gate close and end; running agents go on. */
	for (size_t i = 0; i < sv->max; i++) {
		if (sv->slots[i].pidfd >= 0)
			close(sv->slots[i].pidfd);
		if (sv->slots[i].gatefd >= 0)
			close(sv->slots[i].gatefd);
	}
	sv_free(sv, true);
}

/*
 * What one shim is started with, and what its start made. Each fd is
 * owned here until the slot takes it over, -1 once it is not.
 */
struct sv_spawn {
	char exit_path[AGENT_FILES_PATH_MAX]; /* where the shim records the exit */
	char spec[SHIM_SPEC_MAX];	      /* the type's user and limits for the shim */
	char *argv[AGENT_ARGV_MAX + 4]; /* the shim's, exit_path, spec, the type's; borrowed */
	char *envp[SV_ENV_MAX];		/* owned strings, NULL-ended */
	int task_fd;			/* the memfd for stdin, or -1: /dev/null */
	int out_wr;			/* the output file, the shim's end */
	int gate_rd, gate_wr;		/* the gate: the shim's end, ours */
	int cgroup_fd;			/* the agent's cgroup directory, or -1 */
	struct shim_child shim;		/* once spawned: pidfd owned */
};

/* A memfd at offset 0 holding the task: unlike a pipe, nothing can block on it. */
static int sv_task_memfd(const char *task, size_t len, int *out, struct tsr_err *err)
{
	size_t off = 0;
	ssize_t n;
	int fd, rc = -1;

	fd = memfd_create("tessera-task", MFD_CLOEXEC);
	if (fd < 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "memfd_create: %s", strerror(errno));
	while (off < len) {
		n = write(fd, task + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			tsr_err_set(err, GRPC_STATUS_INTERNAL, "task memfd: %s", strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "task memfd: %s", strerror(errno));
		goto out;
	}
	*out = fd;
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/*
 * The shim's gate: a pipe whose read end is moved above SV_GATE_FD, so
 * that placing fds 0-3 in the child cannot overwrite it first. Both ends
 * O_CLOEXEC: no other process inherits either.
 */
static int sv_gate_pipe(int *rd, int *wr, struct tsr_err *err)
{
	int p[2], r;

	if (pipe2(p, O_CLOEXEC) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "pipe: %s", strerror(errno));
	r = fcntl(p[0], F_DUPFD_CLOEXEC, SV_GATE_FD + 1);
	close(p[0]);
	if (r < 0) {
		close(p[1]);
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "pipe: %s", strerror(errno));
	}
	*rd = r;
	*wr = p[1];
	return 0;
}

/* Moves *fd above SV_GATE_FD (keeping O_CLOEXEC), for the same reason. */
static int sv_fd_above_gate(int *fd, struct tsr_err *err)
{
	int f;

	if (*fd > SV_GATE_FD)
		return 0;
	f = fcntl(*fd, F_DUPFD_CLOEXEC, SV_GATE_FD + 1);
	if (f < 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "fcntl: %s", strerror(errno));
	close(*fd);
	*fd = f;
	return 0;
}

/* Appends one malloc'd "name=value" to envp, keeping room for its NULL end. */
static int sv_env_add(char **envp, size_t *n, const char *name, const char *value, size_t value_len,
		      struct tsr_err *err)
{
	size_t nlen = strlen(name);
	char *s;

	if (*n + 1 >= SV_ENV_MAX)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "agent environment too long");
	s = malloc(nlen + 1 + value_len + 1);
	if (s == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	memcpy(s, name, nlen);
	s[nlen] = '=';
	memcpy(s + nlen + 1, value, value_len);
	s[nlen + 1 + value_len] = '\0';
	envp[(*n)++] = s;
	return 0;
}

/* The child's environment (see supervisor.h) into envp[SV_ENV_MAX], zeroed by the caller. */
static int sv_env(const char *agent_id, const struct agent_type *type, const char *task,
		  size_t task_len, char **envp, struct tsr_err *err)
{
	const char *home = type->home != NULL ? type->home : getenv("HOME");
	size_t n = 0;

	if (sv_env_add(envp, &n, "PATH", SV_PATH, strlen(SV_PATH), err) != 0)
		return -1;
	if (home != NULL && strnlen(home, SV_HOME_MAX) < SV_HOME_MAX &&
	    sv_env_add(envp, &n, "HOME", home, strlen(home), err) != 0)
		return -1;
	/* agent_types keeps PATH, HOME and TESSERA_* out of these: no duplicates. */
	for (size_t i = 0; i < type->env_n; i++) {
		if (n + 1 >= SV_ENV_MAX)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL, "agent environment too long");
		envp[n] = strdup(type->env[i]);
		if (envp[n++] == NULL)
			return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	if (sv_env_add(envp, &n, "TESSERA_AGENT_ID", agent_id, strlen(agent_id), err) != 0)
		return -1;
	if (type->delivery == AGENT_TASK_ENV &&
	    sv_env_add(envp, &n, "TESSERA_TASK", task != NULL ? task : "", task_len, err) != 0)
		return -1;
	return 0;
}

static void sv_env_free(char **envp)
{
	for (size_t i = 0; i < SV_ENV_MAX; i++)
		free(envp[i]);
}

/* The shim, started with the attributes and fds the header promises. */
static int sv_launch(struct supervisor *sv, const struct agent_type *type, struct sv_spawn *sp,
		     struct tsr_err *err)
{
	const struct shim_launch l = {
		.path = sv->shim_path,
		.argv = sp->argv,
		.envp = sp->envp,
		.stdin_fd = sp->task_fd,
		.out_fd = sp->out_wr,
		.gate_fd = sp->gate_rd,
		.workdir = type->workdir,
		.cgroup_fd = sp->cgroup_fd,
	};
	struct tsr_err lerr;

	if (shim_launch(&sv->launcher, &l, &sp->shim, &lerr) != 0)
		return tsr_err_set(err, lerr.code, "spawn %s for %s: %s", sv->shim_path,
				   type->argv[0], lerr.msg);
	return 0;
}

/*
 * Takes a free slot for agent_id, marked SV_SPAWNING so that the cap holds
 * while the lock is dropped for the launch.
 */
static int sv_reserve(struct supervisor *sv, const char *agent_id, struct sv_child **out,
		      struct tsr_err *err)
{
	struct sv_child *c = NULL;
	int rc = -1;

	pthread_mutex_lock(&sv->mu);
	if (sv_find(sv, agent_id) != NULL) {
		tsr_err_set(err, GRPC_STATUS_ALREADY_EXISTS, "agent %s already supervised",
			    agent_id);
		goto out;
	}
	if (sv->nfree == 0) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "%zu agents already running",
			    sv->max);
		goto out;
	}
	c = &sv->slots[sv->free_slots[--sv->nfree]];
	assert(c->state == SV_FREE);
	c->state = SV_SPAWNING;
	snprintf(c->agent_id, sizeof(c->agent_id), "%s", agent_id);
	id_index_add(&sv->ids, (uint32_t)(c - sv->slots));
	*out = c;
	rc = 0;
out:
	pthread_mutex_unlock(&sv->mu);
	return rc;
}

/* Ends a shim that could not be watched, rather than leave it unreported. */
static void sv_discard(pid_t pid)
{
	kill(-pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/*
 * Has the reaper's epoll watch the pidfd of slot c, reserved by the
 * caller; a shim that cannot be watched is ended rather than left
 * unreported. Watched before the slot is RUNNING: the reaper skips a
 * readable one until then. The event carries the slot's index and a tag
 * of this watch, so that one of an earlier watch of the slot is known.
 */
static int sv_epoll_add(struct supervisor *sv, struct sv_child *c, int pidfd, pid_t pid,
			struct tsr_err *err)
{
	struct epoll_event ev = { .events = EPOLLIN };

	pthread_mutex_lock(&sv->mu);
	c->watch = ++sv->watches;
	pthread_mutex_unlock(&sv->mu);
	ev.data.u64 = (uint64_t)(c - sv->slots) | (uint64_t)c->watch << 32;
	if (epoll_ctl(sv->epfd, EPOLL_CTL_ADD, pidfd, &ev) == 0)
		return 0;
	tsr_err_set(err, GRPC_STATUS_INTERNAL, "epoll_ctl: %s", strerror(errno));
	if (pid > 0)
		sv_discard(pid);
	return -1;
}

/*
 * The limits supervisor.h puts on supervisor_spawn's arguments, which the
 * spoke's command (spawn_check) and the type's settings have bounded.
 */
static void sv_spawn_assert(const char *agent_id, const struct agent_type *type, const char *task,
			    size_t task_len, const struct supervisor_timeout *limit)
{
	assert(ids_valid_agent_id(agent_id));
	assert(task_len <= TSR_TASK_MAX && (task != NULL || task_len == 0));
	assert(type->delivery != AGENT_TASK_ENV || task_len == 0 ||
	       memchr(task, '\0', task_len) == NULL);
	assert(limit->ms <= TSR_AGENT_TIMEOUT_MAX_MS && limit->grace_ms >= 0 &&
	       limit->grace_ms <= AGENT_GRACE_MAX_MS);
	(void)agent_id, (void)type, (void)task, (void)task_len, (void)limit;
}

static void sv_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Releases what sp still owns. */
static void sv_spawn_free(struct sv_spawn *sp)
{
	sv_close(&sp->shim.pidfd);
	sv_close(&sp->cgroup_fd);
	sv_close(&sp->task_fd);
	/* Only the shim holds the read end of its gate and the write end of the output now. */
	sv_close(&sp->gate_rd);
	sv_close(&sp->gate_wr);
	sv_close(&sp->out_wr);
	sv_env_free(sp->envp);
}

/*
 * Everything agent_id's shim is started with: argv, the environment,
 * stdin, the output file and the gate. sp->exit_path is set.
 */
static int sv_spawn_prepare(const struct supervisor *sv, const char *agent_id,
			    const struct agent_type *type, const char *task, size_t task_len,
			    struct sv_spawn *sp, struct tsr_err *err)
{
	struct shim_spec spec;
	size_t n = 0;

	sp->argv[n++] = (char *)sv->shim_path;
	sp->argv[n++] = sp->exit_path;
	spec = type->spec;
	if (!spec.set_limit[SHIM_LIMIT_NOFILE] && sv->agent_nofile.rlim_cur != 0) {
		spec.set_limit[SHIM_LIMIT_NOFILE] = true;
		spec.limit[SHIM_LIMIT_NOFILE] = sv->agent_nofile;
	}
	shim_spec_format(&spec, sp->spec);
	sp->argv[n++] = sp->spec;
	for (size_t i = 0; type->argv[i] != NULL; i++)
		sp->argv[n++] = type->argv[i];
	sp->argv[n] = NULL;
	/* A record left by an earlier agent of this id would be taken for this one's. */
	if (unlink(sp->exit_path) != 0 && errno != ENOENT)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "%s: %s", sp->exit_path,
				   strerror(errno));
	if (type->delivery == AGENT_TASK_STDIN &&
	    sv_task_memfd(task, task_len, &sp->task_fd, err) != 0)
		return -1;
	if (agent_files_out_create(sv->state_dir, agent_id, &sp->out_wr, err) != 0 ||
	    sv_fd_above_gate(&sp->out_wr, err) != 0 ||
	    sv_gate_pipe(&sp->gate_rd, &sp->gate_wr, err) != 0 ||
	    sv_env(agent_id, type, task, task_len, sp->envp, err) != 0)
		return -1;
	return 0;
}

/*
 * Moves pidfd *fd to SV_PIDFD_FLOOR or above (O_CLOEXEC, as pidfds are);
 * where the open-files limit leaves no room there, it stays.
 */
static void sv_pidfd_raise(int *fd)
{
	int f = fcntl(*fd, F_DUPFD_CLOEXEC, SV_PIDFD_FLOOR);

	if (f < 0)
		return;
	close(*fd);
	*fd = f;
}

/*
 * The start time of the shim just spawned, its pidfd moved out of the
 * way. A shim that cannot be told from a later process of its pid is
 * ended rather than left unreported.
 */
static int sv_spawn_watch(struct sv_spawn *sp, uint64_t *ticks, struct tsr_err *err)
{
	sv_pidfd_raise(&sp->shim.pidfd);
	/* Held at its gate, the shim cannot have ended: it is there to be read. */
	if (proc_start_ticks(sp->shim.pid, ticks, err) != 0) {
		sv_discard(sp->shim.pid);
		return -1;
	}
	return 0;
}

int supervisor_spawn(struct supervisor *sv, const char *agent_id, const struct agent_type *type,
		     const char *task, size_t task_len, const struct supervisor_timeout *limit,
		     struct supervisor_proc *proc, int64_t *started_at_ms, struct tsr_err *err)
{
	struct sv_spawn sp = {
		.task_fd = -1,
		.out_wr = -1,
		.gate_rd = -1,
		.gate_wr = -1,
		.cgroup_fd = -1,
		.shim = { .pid = -1, .pidfd = -1 },
	};
	struct sv_child *c = NULL;
	uint64_t ticks = 0;
	int rc = -1;

	sv_spawn_assert(agent_id, type, task, task_len, limit);
	if (agent_files_path(sv->state_dir, agent_id, AGENT_FILE_EXIT, sp.exit_path,
			     sizeof(sp.exit_path), err) != 0 ||
	    sv_reserve(sv, agent_id, &c, err) != 0)
		return -1;
	/* The cgroup after the files: a spoke that stops between leaves files, and they lead to it. */
	if (sv_spawn_prepare(sv, agent_id, type, task, task_len, &sp, err) != 0 ||
	    (sv->cgroup != NULL &&
	     agent_cgroup_create(sv->cgroup, agent_id, &sp.cgroup_fd, err) != 0) ||
	    sv_launch(sv, type, &sp, err) != 0)
		goto out;
	*started_at_ms = clock_wall_ms();
	if (sv_spawn_watch(&sp, &ticks, err) != 0)
		goto out;
	rc = 0;
out:
	pthread_mutex_lock(&sv->mu);
	if (rc == 0) {
		/* Still SV_SPAWNING: nothing reaps the shim before supervisor_contain. */
		c->pid = sp.shim.pid;
		c->pidfd = sp.shim.pidfd;
		c->gatefd = sp.gate_wr;
		c->in_cgroup = sv->cgroup == NULL || sp.shim.in_cgroup;
		c->punched = 0;
		c->limit = *limit;
		proc->pid = sp.shim.pid;
		proc->start_ticks = ticks;
		sp.shim.pidfd = sp.gate_wr = -1;
	} else {
		sv_slot_free(sv, c);
	}
	pthread_mutex_unlock(&sv->mu);
	if (rc != 0) {
		struct tsr_err ignored;

		/* No shim is left: the cgroup, if made, is empty (a missing one is 0). */
		if (sv->cgroup != NULL)
			agent_cgroup_remove(sv->cgroup, agent_id, &ignored);
		agent_files_remove(sv->state_dir, agent_id);
	}
	sv_spawn_free(&sp);
	return rc;
}

/* The slot of a shim supervisor_spawn started and nothing contained yet, with mu held. */
static struct sv_child *sv_find_started(struct supervisor *sv, const char *agent_id,
					struct tsr_err *err)
{
	struct sv_child *c = sv_find(sv, agent_id);

	if (c == NULL || c->state != SV_SPAWNING || c->pidfd < 0) {
		tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "agent %s is not waiting to be contained",
			    agent_id);
		return NULL;
	}
	return c;
}

/*
 * Ends the shim of slot c, started and not contained, at once, with all
 * it had: nothing of the agent's ran, and no exit is reported.
 */
static void sv_drop_started(struct supervisor *sv, struct sv_child *c)
{
	char agent_id[TSR_AGENT_ID_MAX + 1];
	struct tsr_err ignored;

	memcpy(agent_id, c->agent_id, sizeof(agent_id));
	sv_discard(c->pid);
	sv_close(&c->pidfd);
	sv_close(&c->gatefd);
	if (sv->cgroup != NULL)
		agent_cgroup_remove(sv->cgroup, agent_id, &ignored);
	pthread_mutex_lock(&sv->mu);
	sv_slot_free(sv, c);
	pthread_mutex_unlock(&sv->mu);
	agent_files_remove(sv->state_dir, agent_id);
}

int supervisor_contain(struct supervisor *sv, const char *agent_id, struct tsr_err *err)
{
	struct sv_child *c;
	int rc = -1;

	pthread_mutex_lock(&sv->mu);
	c = sv_find_started(sv, agent_id, err);
	pthread_mutex_unlock(&sv->mu);
	if (c == NULL)
		return -1;
	/*
	 * Where the shim could not start in its cgroup, it moves there now.
	 * It is our child and unreaped (sv_reap_inherited leaves the shims in
	 * slots alone), so its pid is still its own. One that cannot be
	 * contained is ended rather than let run uncontained.
	 */
	if (!c->in_cgroup && agent_cgroup_enter(sv->cgroup, agent_id, c->pid, err) != 0)
		goto out;
	if (sv_epoll_add(sv, c, c->pidfd, -1, err) != 0)
		goto out;
	rc = 0;
out:
	if (rc == 0) {
		pthread_mutex_lock(&sv->mu);
		c->state = SV_RUNNING;
		pthread_mutex_unlock(&sv->mu);
		sv_wake(sv);
	} else {
		sv_drop_started(sv, c);
	}
	return rc;
}

/* The slot of a shim held at its gate, with mu held; NOT_FOUND otherwise. */
static struct sv_child *sv_find_held(struct supervisor *sv, const char *agent_id,
				     struct tsr_err *err)
{
	struct sv_child *c = sv_find(sv, agent_id);

	if (c == NULL || c->state != SV_RUNNING || c->gatefd < 0) {
		tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "agent %s is not waiting to start",
			    agent_id);
		return NULL;
	}
	return c;
}

int supervisor_release(struct supervisor *sv, const char *agent_id, struct tsr_err *err)
{
	struct sv_child *c;
	ssize_t n;
	int rc = -1;

	pthread_mutex_lock(&sv->mu);
	c = sv_find_held(sv, agent_id, err);
	if (c == NULL)
		goto out;
	do
		n = write(c->gatefd, "g", 1);
	while (n < 0 && errno == EINTR);
	close(c->gatefd);
	c->gatefd = -1;
	/* EPIPE: the shim is gone, and its exit report says nothing started. */
	if (n != 1) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "agent %s: gate: %s", agent_id,
			    strerror(errno));
		goto out;
	}
	c->released = true;
	c->timeout_at_mono = c->limit.ms != 0 ? clock_mono_ms() + c->limit.ms : 0;
	if (c->timeout_at_mono != 0)
		sv_due(sv, c->timeout_at_mono);
	rc = 0;
out:
	pthread_mutex_unlock(&sv->mu);
	sv_wake(sv);
	return rc;
}

int supervisor_abort(struct supervisor *sv, const char *agent_id, struct tsr_err *err)
{
	struct sv_child *c;
	int rc = -1;

	pthread_mutex_lock(&sv->mu);
	c = sv_find_started(sv, agent_id, err);
	if (c != NULL) {
		pthread_mutex_unlock(&sv->mu);
		sv_drop_started(sv, c);
		return 0;
	}
	c = sv_find_held(sv, agent_id, err);
	if (c != NULL) {
		close(c->gatefd);
		c->gatefd = -1;
		rc = 0;
	}
	pthread_mutex_unlock(&sv->mu);
	return rc;
}

/*
 * A pidfd for proc into *pidfd_out, if proc is still this agent's shim
 * (see supervisor_adopt, which has reserved the slot). Nothing here
 * signals the process.
 */
static int sv_adopt_open(const struct supervisor *sv, const char *agent_id,
			 const struct supervisor_proc *proc, int *pidfd_out, struct tsr_err *err)
{
	char exit_path[AGENT_FILES_PATH_MAX];
	struct tsr_err ierr;
	uint64_t ticks;
	int pidfd, id_rc, rc = -1;

	if (agent_files_path(sv->state_dir, agent_id, AGENT_FILE_EXIT, exit_path, sizeof(exit_path),
			     err) != 0)
		return -1;
	pidfd = (int)syscall(SYS_pidfd_open, proc->pid, 0);
	/* A thread that leads no process (EINVAL; ENOENT on newer kernels): no shim. */
	if (pidfd < 0 && (errno == EINVAL || errno == ENOENT))
		return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
				   SV_NOT_SHIM "pid %d names no process (%s)", (int)proc->pid,
				   strerror(errno));
	if (pidfd < 0)
		return tsr_err_set(err,
				   errno == ESRCH ? GRPC_STATUS_NOT_FOUND : GRPC_STATUS_INTERNAL,
				   "process %d: %s", (int)proc->pid, strerror(errno));
	/*
	 * Read after the pidfd is open and before the start time: if that
	 * still matches, the pidfd and what proc_runs read refer to the
	 * recorded process, not to a later one that got its pid.
	 */
	id_rc = proc_runs(proc->pid, sv->shim_path, exit_path, &ierr);
	if (proc_start_ticks(proc->pid, &ticks, err) != 0)
		goto out;
	if (ticks != proc->start_ticks) {
		tsr_err_set(
			err, GRPC_STATUS_NOT_FOUND,
			"pid %d now belongs to another process (started at tick %llu, not %llu)",
			(int)proc->pid, (unsigned long long)ticks,
			(unsigned long long)proc->start_ticks);
		goto out;
	}
	if (id_rc != 0) {
		if (ierr.code == GRPC_STATUS_FAILED_PRECONDITION)
			tsr_err_set(err, ierr.code, SV_NOT_SHIM "%s", ierr.msg);
		else
			*err = ierr;
		goto out;
	}
	sv_pidfd_raise(&pidfd);
	*pidfd_out = pidfd;
	pidfd = -1;
	rc = 0;
out:
	if (pidfd >= 0)
		close(pidfd);
	return rc;
}

int supervisor_adopt(struct supervisor *sv, const char *agent_id,
		     const struct supervisor_proc *proc, const struct supervisor_timeout *limit,
		     uint32_t remaining_ms, bool kill_requested, struct tsr_err *err)
{
	struct sv_child *c = NULL;
	int pidfd = -1, rc = -1;
	int64_t now;

	if (limit->ms > TSR_AGENT_TIMEOUT_MAX_MS || remaining_ms > limit->ms ||
	    limit->grace_ms < 0 || limit->grace_ms > AGENT_GRACE_MAX_MS || proc->pid <= 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "bad process, timeout or grace to adopt");
	if (sv_reserve(sv, agent_id, &c, err) != 0)
		return -1;
	if (sv_adopt_open(sv, agent_id, proc, &pidfd, err) != 0 ||
	    sv_epoll_add(sv, c, pidfd, 0, err) != 0)
		goto out;
	rc = 0;
out:
	pthread_mutex_lock(&sv->mu);
	if (rc == 0) {
		now = clock_mono_ms();
		c->pid = proc->pid;
		c->pidfd = pidfd;
		c->punched = 0;
		c->released = c->adopted = true;
		c->limit = *limit;
		c->timeout_at_mono = limit->ms != 0 ? now + remaining_ms : 0;
		c->state = SV_RUNNING;
		if (c->timeout_at_mono != 0)
			sv_due(sv, c->timeout_at_mono);
		if (kill_requested) {
			c->kill_requested = true;
			c->kill_at_mono = now + limit->grace_ms;
			sv_due(sv, c->kill_at_mono);
			if (kill(-c->pid, SIGTERM) != 0 && errno != ESRCH)
				log_agent_warn(agent_id, "SIGTERM to group %d: %s", (int)c->pid,
					       strerror(errno));
		}
	} else {
		sv_slot_free(sv, c);
	}
	pthread_mutex_unlock(&sv->mu);
	if (rc == 0)
		sv_wake(sv);
	else if (pidfd >= 0)
		close(pidfd);
	return rc;
}

int supervisor_output(struct supervisor *sv, const char *agent_id, char **out, size_t *len,
		      struct tsr_err *err)
{
	struct sv_child *c;
	bool running;

	pthread_mutex_lock(&sv->mu);
	c = sv_find(sv, agent_id);
	/* Reporting: its tail goes with the exit, into its record. */
	running = c != NULL && c->state != SV_SPAWNING && c->state != SV_REPORTING;
	pthread_mutex_unlock(&sv->mu);
	if (!running)
		return tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "agent %s is not running here",
				   agent_id);
	/* Gone meanwhile with its agent, whose record then has the tail. */
	return agent_files_out_read_tail(sv->state_dir, agent_id, sv->tail_max, out, len, NULL,
					 err);
}

bool supervisor_has(struct supervisor *sv, const char *agent_id)
{
	bool has;

	pthread_mutex_lock(&sv->mu);
	has = sv_find(sv, agent_id) != NULL;
	pthread_mutex_unlock(&sv->mu);
	return has;
}

bool supervisor_starts_in_cgroups(const struct supervisor *sv)
{
	return sv->cgroup != NULL && sv->launcher.clone3;
}

size_t supervisor_count(struct supervisor *sv)
{
	size_t n;

	pthread_mutex_lock(&sv->mu);
	n = sv->max - sv->nfree;
	pthread_mutex_unlock(&sv->mu);
	return n;
}

int supervisor_kill_claim(struct supervisor *sv, const char *agent_id, struct tsr_err *err)
{
	struct sv_child *c;
	int rc = -1;

	pthread_mutex_lock(&sv->mu);
	c = sv_find(sv, agent_id);
	if (c == NULL || c->state == SV_SPAWNING)
		tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "agent %s is not running here", agent_id);
	else if (c->state != SV_RUNNING)
		tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION, "agent %s has ended", agent_id);
	else {
		c->kill_requested = true;
		rc = 0;
	}
	pthread_mutex_unlock(&sv->mu);
	return rc;
}

void supervisor_kill_unclaim(struct supervisor *sv, const char *agent_id)
{
	struct sv_child *c;

	pthread_mutex_lock(&sv->mu);
	c = sv_find(sv, agent_id);
	if (c != NULL && c->state == SV_RUNNING && c->kill_at_mono == 0)
		c->kill_requested = false;
	pthread_mutex_unlock(&sv->mu);
}

int supervisor_kill(struct supervisor *sv, const char *agent_id, int grace_ms, struct tsr_err *err)
{
	struct sv_child *c;
	int64_t at;
	int rc = -1;

	if (grace_ms < 0 || grace_ms > AGENT_GRACE_MAX_MS)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "grace must be 0..%d ms",
				   AGENT_GRACE_MAX_MS);
	pthread_mutex_lock(&sv->mu);
	c = sv_find(sv, agent_id);
	if (c == NULL || c->state == SV_SPAWNING) {
		tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "agent %s is not running here", agent_id);
		goto out;
	}
	/* It has ended already and its report is on the way. */
	if (c->state == SV_DRAINING || c->state == SV_REPORTING) {
		rc = 0;
		goto out;
	}
	c->kill_requested = true;
	/* The shim is alive or unreaped (or adopted, with its group alive): -pid is its group. */
	if (kill(-c->pid, SIGTERM) != 0 && errno != ESRCH) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "SIGTERM to group %d: %s", (int)c->pid,
			    strerror(errno));
		goto out;
	}
	at = clock_mono_ms() + grace_ms;
	if (c->kill_at_mono == 0 || at < c->kill_at_mono)
		c->kill_at_mono = at;
	sv_due(sv, c->kill_at_mono);
	rc = 0;
out:
	pthread_mutex_unlock(&sv->mu);
	if (rc == 0)
		sv_wake(sv);
	return rc;
}
