/*
 * supervisor: agents as real processes that outlive the spoke. Each agent
 * runs under its own tessera-shim (spoke/shim.c), started by
 * shim_launch (never a shell, never fork: a vfork-like clone runs no
 * atfork handlers, which gRPC relies on) as the leader of a new session
 * and process group that the agent shares, with signal mask and
 * dispositions reset, stdin the task (a memfd) or /dev/null, stdout and
 * stderr the agent's output file (agent_files.h), fd 3 a gate, no other
 * fd, the type's working directory, and this environment only:
 *   PATH=/usr/local/bin:/usr/bin:/bin  (fixed: the spoke's own is not an
 *                                       agent's business)
 *   HOME                               (agent-user's home, else the
 *                                       spoke's if set: agents keep
 *                                       their configuration there)
 *   the type's agent-env lines, TESSERA_AGENT_ID, and TESSERA_TASK for
 *   types that take the task by env.
 * The shim runs nothing until supervisor_release opens its gate, so the
 * caller records the process (pid and start time) before any agent code
 * runs; a spoke that dies first closes the gate and the shim just ends.
 * The shim records the agent's exit status in a file, which a restarted
 * spoke reads even though the shim is no longer its child. The reaper
 * reads it, and the output tail, only once the agent's group is gone and
 * without holding the supervisor's lock; a record that is not a regular
 * file of a few bytes is refused (agent_files.h), not waited on, and the
 * exit says why its status is unknown.
 *
 * One reaper thread waits on a pidfd per shim. When a shim ends, its
 * whole group is SIGKILLed (the shim does so itself after recording the
 * exit), and the exit is reported once the group is empty or
 * SUPERVISOR_DRAIN_MS have passed. supervisor_start makes this process a
 * child subreaper (PR_SET_CHILD_SUBREAPER): orphans of an agent become
 * its children and the reaper reaps those of agent groups, and with
 * reap_inherited every other child it inherits. A descendant that leaves
 * its group (setsid) is still below the shim, itself a subreaper, which
 * kills it when the agent ends; the SIGKILL after a kill's grace first
 * kills the tree below the shim (proc_tree.h); and with a cgroup per
 * agent (agent_cgroup.h), which the shim starts in (or enters before its
 * gate opens), that SIGKILL and the end of the shim also kill the whole
 * cgroup.
 *
 * The output file is the agent's own (it survives the spoke); the tail so
 * far is there for the asking while the agent runs, and goes with its
 * exit report. The reaper frees the disk blocks before the tail.
 *
 * An agent spawned with a timeout is ended when it runs out exactly as
 * supervisor_kill ends it, with the grace it was spawned with, and its
 * exit says timed_out, unless a kill was requested first.
 */
#ifndef TSR_SUPERVISOR_H
#define TSR_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "agent_cgroup.h"
#include "agent_types.h"
#include "error.h"

#define SUPERVISOR_AGENTS_MAX 16384   /* highest cap on concurrent agents */
#define SUPERVISOR_FDS_PER_AGENT 1    /* a running agent's pidfd */
#define SUPERVISOR_DRAIN_MS 5000      /* longest wait for a group to empty */
#define SUPERVISOR_TAIL_DEFAULT 65536 /* bytes of output kept per agent */
#define SUPERVISOR_TAIL_MAX 1048576

struct supervisor;

/*
 * How an agent ended. agent_id, output and detail are valid during the
 * callback only. detail, with status -1, says why the status is unknown
 * when its exit record was there but unusable; else it is NULL.
 */
struct supervisor_exit {
	const char *agent_id;
	pid_t pid;
	bool started;		 /* false: its gate closed, no agent code ran */
	bool signaled;		 /* status is a signal number, else an exit code */
	int status;		 /* -1 with !signaled: the status is unknown */
	bool kill_requested;	 /* supervisor_kill was called for it */
	bool timed_out;		 /* its timeout ended it, before any kill */
	uint32_t timeout_ms;	 /* the timeout it was spawned with; 0: none */
	int64_t completed_at_ms; /* wall clock when the leader's exit was seen */
	const char *output;	 /* NUL-ended tail (NUL bytes as '?'), or NULL */
	size_t output_len;
	int64_t output_end; /* the offset where the output and its tail end */
	const char *detail;
};

/*
 * Called on the reaper thread, with no lock held, once per agent. It may
 * call supervisor_spawn and supervisor_kill, not supervisor_stop, and
 * should return quickly: other exits wait for it.
 */
typedef void (*supervisor_exit_fn)(void *arg, const struct supervisor_exit *ex);

struct supervisor_config {
	size_t max_agents;     /* 1..SUPERVISOR_AGENTS_MAX agents at once */
	size_t tail_bytes;     /* 1..SUPERVISOR_TAIL_MAX bytes of output kept */
	const char *state_dir; /* borrowed for sv's life; agent_files_dir_prepare'd */
	const char *shim_path; /* borrowed for sv's life: tessera-shim */
	/*
	 * Reap every child this process inherits as subreaper, not only its
	 * shims and their groups: what a daemon wants, not a test that has
	 * children of its own.
	 */
	bool reap_inherited;
	/* borrowed for sv's life: a cgroup per agent when enabled, or NULL */
	const struct agent_cgroup *cgroup;
	/*
	 * RLIMIT_NOFILE of agents whose type sets none, or rlim_cur 0 for
	 * the spoke's own: the limit it had before raising its own for its
	 * agents' descriptors, so that agents start as they would elsewhere.
	 */
	struct rlimit agent_nofile;
};

/* One process for good: its pid and start time (proc_identity.h). */
struct supervisor_proc {
	pid_t pid; /* the shim's, also the agent's process group */
	uint64_t start_ticks;
};

int supervisor_start(const struct supervisor_config *cfg, supervisor_exit_fn on_exit, void *arg,
		     struct supervisor **out, struct tsr_err *err);
/* What ends an agent that runs too long. */
struct supervisor_timeout {
	uint32_t ms;  /* 0..TSR_AGENT_TIMEOUT_MAX_MS after the spawn; 0: never */
	int grace_ms; /* 0..AGENT_GRACE_MAX_MS, SIGTERM to SIGKILL */
};

/*
 * Starts agent_id's shim for type, handing it task (task_len bytes; for
 * env delivery it may hold no NUL), held at its gate, then
 * supervisor_contain, or supervisor_abort; record *proc meanwhile, then
 * supervisor_release. RESOURCE_EXHAUSTED at the cap, ALREADY_EXISTS if
 * agent_id is supervised. The caller has checked the id, the task and
 * limit (spawn_check): outside those bounds it asserts.
 */
int supervisor_spawn(struct supervisor *sv, const char *agent_id, const struct agent_type *type,
		     const char *task, size_t task_len, const struct supervisor_timeout *limit,
		     struct supervisor_proc *proc, int64_t *started_at_ms, struct tsr_err *err);
/*
 * Puts the shim supervisor_spawn started under the reaper's watch, and
 * into the agent's cgroup (when agents get one) where it could not start
 * there: from then on its end is reported. One that cannot be is ended,
 * with nothing reported, and the call fails. Until then
 * supervisor_release refuses it.
 */
int supervisor_contain(struct supervisor *sv, const char *agent_id, struct tsr_err *err);
/* Lets the agent run; its timeout counts from now. NOT_FOUND if not held. */
int supervisor_release(struct supervisor *sv, const char *agent_id, struct tsr_err *err);
/*
 * Ends a held shim with nothing started; its exit report says !started.
 * One not yet contained ends at once, and nothing is reported.
 */
int supervisor_abort(struct supervisor *sv, const char *agent_id, struct tsr_err *err);
/*
 * Supervises again an agent that an earlier spoke process started, if
 * proc still names a live process (same pid and start time; the caller
 * checks the boot) that is this agent's shim: it runs the configured
 * shim (proc_runs: the same file, or the one it replaced) and was given
 * this agent's exit file. limit is the one it was spawned with; with a
 * timeout, remaining_ms is what is left of it (0: due now). With
 * kill_requested the kill goes on, with limit->grace_ms. NOT_FOUND if the
 * process is gone or the pid now belongs to another process;
 * FAILED_PRECONDITION if the process is not this agent's shim (a forged
 * or corrupt record). Either way the process is left alone, unsignalled.
 */
int supervisor_adopt(struct supervisor *sv, const char *agent_id,
		     const struct supervisor_proc *proc, const struct supervisor_timeout *limit,
		     uint32_t remaining_ms, bool kill_requested, struct tsr_err *err);
/*
 * SIGTERM to the agent's process group now, SIGKILL after grace_ms
 * (0..AGENT_GRACE_MAX_MS) unless it has ended; the exit is reported
 * with kill_requested. Repeating a kill can only bring the SIGKILL closer.
 * NOT_FOUND if the agent is not supervised: then its exit, if it had a
 * process, has been handed to on_exit already (an agent stays supervised
 * until on_exit has returned).
 */
int supervisor_kill(struct supervisor *sv, const char *agent_id, int grace_ms, struct tsr_err *err);
/*
 * Claims agent_id for a kill without signalling it yet: its exit, from
 * now on, is reported kill_requested. Record the kill, then call
 * supervisor_kill, or supervisor_kill_unclaim if it could not be recorded.
 * FAILED_PRECONDITION if it has ended already (its exit is on its way to
 * on_exit), NOT_FOUND if it is not supervised.
 */
int supervisor_kill_claim(struct supervisor *sv, const char *agent_id, struct tsr_err *err);
/* Undoes a claim that no signal has followed yet. */
void supervisor_kill_unclaim(struct supervisor *sv, const char *agent_id);
/*
 * A malloc'd copy of agent_id's output tail so far, NUL-ended as in
 * struct supervisor_exit, its length in *len. NOT_FOUND if not supervised
 * or its output file is gone (it has just ended).
 */
int supervisor_output(struct supervisor *sv, const char *agent_id, char **out, size_t *len,
		      struct tsr_err *err);
/* Whether agent_id is supervised now. */
bool supervisor_has(struct supervisor *sv, const char *agent_id);
/* Agents supervised now: running, or ended and not yet reported. */
size_t supervisor_count(struct supervisor *sv);
/*
 * Whether shims start inside their agents' cgroups (clone3); false
 * without cgroups, or where they are moved in once started.
 */
bool supervisor_starts_in_cgroups(const struct supervisor *sv);
/* Joins the reaper and frees everything. Agents still running are left alone. */
void supervisor_stop(struct supervisor *sv);

#endif
