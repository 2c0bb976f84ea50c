/*
 * supervisor: agents as real child processes. Each is started with
 * posix_spawn (never a shell, never fork: glibc's posix_spawn runs no
 * atfork handlers, which gRPC relies on) as the leader of its own session
 * and process group, with signal mask and dispositions reset, stdin the
 * task (a memfd) or /dev/null, stdout and stderr one pipe, no other fd, and
 * this environment only:
 *   PATH=/usr/local/bin:/usr/bin:/bin  (fixed: the spoke's own is not an
 *                                       agent's business)
 *   HOME                               (the spoke's, if set: agents keep
 *                                       their configuration there)
 *   TESSERA_AGENT_ID, and TESSERA_TASK for types that take the task by env.
 * The working directory is the spoke's.
 *
 * One reaper thread waits on a pidfd per agent. When a leader exits, its
 * whole group is SIGKILLed while the leader is still unreaped (so the
 * group id cannot have been reused), and the exit is reported once the
 * group is empty or SUPERVISOR_DRAIN_MS have passed. To see the group's
 * other members die, supervisor_start makes this process a child
 * subreaper (PR_SET_CHILD_SUBREAPER): orphans of an agent become its
 * children and the reaper reaps those of agent groups. A descendant that
 * leaves its group (setsid) escapes the supervisor.
 *
 * The reaper also reads each agent's output pipe (non-blocking, polled
 * with the pidfds) into a ring that keeps the last tail_bytes of stdout
 * and stderr interleaved. The tail so far is there for the asking while
 * the agent runs, and goes with its exit report. The pipe is read once
 * more and closed when the leader exits; output written after that (by
 * a member that escaped the group) is not captured.
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
#include <sys/types.h>

#include "agent_types.h"
#include "error.h"

#define SUPERVISOR_AGENTS_MAX 4096	/* highest cap on concurrent agents */
#define SUPERVISOR_TASK_MAX 65536	/* bytes */
#define SUPERVISOR_GRACE_MAX_MS 600000	/* longest SIGTERM-to-SIGKILL grace */
#define SUPERVISOR_DRAIN_MS 5000	/* longest wait for a group to empty */
#define SUPERVISOR_TAIL_DEFAULT 65536	/* bytes of output kept per agent */
#define SUPERVISOR_TAIL_MAX 1048576

struct supervisor;

/* How an agent ended. agent_id is valid during the callback only. */
struct supervisor_exit {
	const char *agent_id;
	pid_t pid;
	bool signaled;			/* status is a signal number, else an exit code */
	int status;			/* -1 with !signaled: the status was lost */
	bool kill_requested;		/* supervisor_kill was called for it */
	bool timed_out;			/* its timeout ended it, before any kill */
	uint32_t timeout_ms;		/* the timeout it was spawned with; 0: none */
	int64_t completed_at_ms;	/* wall clock when the leader's exit was seen */
	const char *output;		/* NUL-ended tail (NUL bytes as '?'), or NULL */
	size_t output_len;
};

/*
 * Called on the reaper thread, with no lock held, once per agent. It may
 * call supervisor_spawn and supervisor_kill, not supervisor_stop, and
 * should return quickly: other exits wait for it.
 */
typedef void (*supervisor_exit_fn)(void *arg, const struct supervisor_exit *ex);

/*
 * max_agents (1..SUPERVISOR_AGENTS_MAX) caps agents supervised at once;
 * tail_bytes (1..SUPERVISOR_TAIL_MAX) is the output kept per agent.
 */
int supervisor_start(size_t max_agents, size_t tail_bytes, supervisor_exit_fn on_exit,
		     void *arg, struct supervisor **out, struct tsr_err *err);
/* What ends an agent that runs too long. */
struct supervisor_timeout {
	uint32_t ms;			/* 0..AGENT_TIMEOUT_MAX_MS after the spawn; 0: never */
	int grace_ms;			/* 0..SUPERVISOR_GRACE_MAX_MS, SIGTERM to SIGKILL */
};

/*
 * Starts agent_id as a process of type, handing it task (task_len bytes;
 * for env delivery it may hold no NUL). *pid is also its process group.
 * RESOURCE_EXHAUSTED at the cap, ALREADY_EXISTS if agent_id is supervised.
 */
int supervisor_spawn(struct supervisor *sv, const char *agent_id, const struct agent_type *type,
		     const char *task, size_t task_len, const struct supervisor_timeout *limit,
		     pid_t *pid, int64_t *started_at_ms, struct tsr_err *err);
/*
 * SIGTERM to the agent's process group now, SIGKILL after grace_ms
 * (0..SUPERVISOR_GRACE_MAX_MS) unless it has ended; the exit is reported
 * with kill_requested. Repeating a kill can only bring the SIGKILL closer.
 * NOT_FOUND if the agent is not supervised.
 */
int supervisor_kill(struct supervisor *sv, const char *agent_id, int grace_ms,
		    struct tsr_err *err);
/*
 * A malloc'd copy of agent_id's output tail so far, NUL-ended as in
 * struct supervisor_exit, its length in *len. NOT_FOUND if not supervised.
 */
int supervisor_output(struct supervisor *sv, const char *agent_id, char **out, size_t *len,
		      struct tsr_err *err);
/* Agents supervised now: running, or ended and not yet reported. */
size_t supervisor_count(struct supervisor *sv);
/* Joins the reaper and frees everything. Agents still running are left alone. */
void supervisor_stop(struct supervisor *sv);

#endif
