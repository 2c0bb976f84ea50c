/*
 * supervisor: spawning agent processes, killing their groups, and the
 * reaper thread that turns pidfd readiness and kill deadlines into exit
 * reports. One mutex guards the slot table; the reaper alone frees slots,
 * so a slot it polls stays valid while it polls without the lock.
 */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ids.h"
#include "log.h"

#define SV_DRAIN_POLL_MS 10	/* re-check of a group that is still dying */
#define SV_REAP_PER_PASS 256	/* orphans of one group reaped per pass */
#define SV_ENV_MAX 5		/* PATH, HOME, TESSERA_AGENT_ID, TESSERA_TASK, NULL */
#define SV_HOME_MAX 4096
#define SV_PATH "/usr/local/bin:/usr/bin:/bin"

#define SV_READ_CHUNK 4096	/* bytes of output read at once */
#define SV_READS_PER_PASS 16	/* reads of one agent's output per pass: others wait */

_Static_assert(AGENT_GRACE_MAX_MS <= SUPERVISOR_GRACE_MAX_MS, "a type's grace must be servable");

enum sv_slot_state {
	SV_FREE,
	SV_SPAWNING,	/* reserved while posix_spawn runs; not yet polled */
	SV_RUNNING,	/* leader alive or unreaped; pidfd polled */
	SV_DRAINING,	/* leader reaped; waiting for the rest of its group */
};

struct sv_child {
	enum sv_slot_state state;
	char agent_id[TSR_AGENT_ID_MAX + 1];
	pid_t pid;			/* also the process group id */
	int pidfd;			/* owned while SV_RUNNING */
	int outfd;			/* owned while SV_RUNNING: read end of stdout+stderr */
	char *tail;			/* owned ring of the output's last tail_max bytes */
	size_t tail_start, tail_len;
	bool kill_requested;
	int64_t kill_at_mono;		/* when to SIGKILL the group; 0: not due */
	struct supervisor_timeout limit;
	int64_t timeout_at_mono;	/* when the timeout ends it; 0: none, or done */
	bool timed_out;
	int64_t drain_until_mono;
	struct supervisor_exit ex;	/* the leader's end, kept while draining */
};

struct sv_done {
	char agent_id[TSR_AGENT_ID_MAX + 1];
	struct supervisor_exit ex;	/* ex.agent_id points at agent_id above */
	char *output;			/* owned, ex.output points here */
};

struct supervisor {
	pthread_mutex_t mu;
	pthread_t reaper;
	int wakefd;			/* owned eventfd: spawn and kill wake the reaper */
	bool stopping;
	size_t max;
	size_t tail_max;		/* bytes of output kept per agent */
	struct sv_child *slots;		/* owned, [max] */
	struct pollfd *pfds;		/* owned, [2 * max + 1], reaper only: wakefd, pidfds, outfds */
	size_t *pfd_slot;		/* owned, [2 * max + 1], reaper only: slot of pfds[k] */
	struct sv_done *done;		/* owned, [max], reaper only: exits to report */
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
	for (size_t i = 0; i < sv->max; i++)
		if (sv->slots[i].state != SV_FREE && strcmp(sv->slots[i].agent_id, agent_id) == 0)
			return &sv->slots[i];
	return NULL;
}

/* Fills pfds from the table and returns their count; *timeout for poll(). */
static size_t sv_poll_set(struct supervisor *sv, int64_t now, int *timeout)
{
	size_t n = 1;
	int64_t wait = -1, d;

	sv->pfds[0] = (struct pollfd){ .fd = sv->wakefd, .events = POLLIN };
	for (size_t i = 0; i < sv->max; i++) {
		struct sv_child *c = &sv->slots[i];

		if (c->state == SV_RUNNING) {
			sv->pfds[n] = (struct pollfd){ .fd = c->pidfd, .events = POLLIN };
			sv->pfd_slot[n++] = i;
			if (c->outfd >= 0) {
				sv->pfds[n] = (struct pollfd){ .fd = c->outfd, .events = POLLIN };
				sv->pfd_slot[n++] = i;
			}
			if (c->kill_at_mono != 0) {
				d = c->kill_at_mono > now ? c->kill_at_mono - now : 0;
				wait = wait < 0 || d < wait ? d : wait;
			}
			if (c->timeout_at_mono != 0) {
				d = c->timeout_at_mono > now ? c->timeout_at_mono - now : 0;
				wait = wait < 0 || d < wait ? d : wait;
			}
		} else if (c->state == SV_DRAINING) {
			wait = wait < 0 || SV_DRAIN_POLL_MS < wait ? SV_DRAIN_POLL_MS : wait;
		}
	}
	*timeout = (int)wait;
	return n;
}

/* Appends n bytes to c's ring, dropping its oldest bytes past cap. */
static void sv_tail_add(struct sv_child *c, size_t cap, const char *buf, size_t n)
{
	size_t pos, first;

	if (n >= cap) {
		memcpy(c->tail, buf + (n - cap), cap);
		c->tail_start = 0;
		c->tail_len = cap;
		return;
	}
	pos = (c->tail_start + c->tail_len) % cap;
	first = n < cap - pos ? n : cap - pos;
	memcpy(c->tail + pos, buf, first);
	memcpy(c->tail, buf + first, n - first);
	c->tail_len += n;
	if (c->tail_len > cap) {
		c->tail_start = (c->tail_start + c->tail_len - cap) % cap;
		c->tail_len = cap;
	}
}

/*
 * Reads what the agent's output pipe holds now, at most SV_READS_PER_PASS
 * chunks (poll brings the rest next pass). The pipe is non-blocking: an
 * agent that writes nothing never holds the reaper. At end of file or on
 * an error the pipe is closed and no longer polled.
 */
static void sv_read_output(struct sv_child *c, size_t cap)
{
	char buf[SV_READ_CHUNK];
	ssize_t n;

	for (int i = 0; i < SV_READS_PER_PASS && c->outfd >= 0; i++) {
		n = read(c->outfd, buf, sizeof(buf));
		if (n > 0) {
			sv_tail_add(c, cap, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0)
			log_warn("agent %s: output: %s", c->agent_id, strerror(errno));
		close(c->outfd);
		c->outfd = -1;
	}
}

/*
 * A malloc'd, NUL-ended copy of c's tail, its length in *len. The tail
 * travels as a protobuf string, which C code ends at the first NUL, so a
 * NUL byte of the output becomes '?'. NULL when out of memory.
 */
static char *sv_tail_copy(const struct sv_child *c, size_t cap, size_t *len)
{
	char *s = malloc(c->tail_len + 1);
	size_t first;

	if (s == NULL)
		return NULL;
	first = c->tail_len < cap - c->tail_start ? c->tail_len : cap - c->tail_start;
	if (c->tail_len > 0) {
		memcpy(s, c->tail + c->tail_start, first);
		memcpy(s + first, c->tail, c->tail_len - first);
	}
	for (size_t i = 0; i < c->tail_len; i++)
		if (s[i] == '\0')
			s[i] = '?';
	s[c->tail_len] = '\0';
	*len = c->tail_len;
	return s;
}

/*
 * The leader has exited (its pidfd is readable) and is still a zombie,
 * which pins its pid as the group id: SIGKILL the group now, then reap.
 */
static void sv_leader_exited(struct sv_child *c, size_t cap, int64_t now)
{
	siginfo_t si;

	if (kill(-c->pid, SIGKILL) != 0 && errno != ESRCH)
		log_warn("agent %s: SIGKILL to group %d: %s", c->agent_id, (int)c->pid,
			 strerror(errno));
	memset(&si, 0, sizeof(si));
	if (waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED | WNOHANG) != 0) {
		/* Someone else reaped it (a wait(-1) elsewhere): the status is gone. */
		log_error("agent %s: waitid: %s", c->agent_id, strerror(errno));
		c->ex.signaled = false;
		c->ex.status = -1;
	} else if (si.si_pid == 0) {
		return;		/* readable but not yet waitable: look again next pass */
	} else {
		c->ex.signaled = si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED;
		c->ex.status = si.si_status;
	}
	c->ex.pid = c->pid;
	c->ex.kill_requested = c->kill_requested;
	c->ex.timed_out = c->timed_out;
	c->ex.timeout_ms = c->limit.ms;
	c->ex.completed_at_ms = clock_wall_ms();
	close(c->pidfd);
	c->pidfd = -1;
	/*
	 * What the leader wrote before exiting is in the pipe now. Any
	 * writer left is in the group just SIGKILLed, or escaped it: the
	 * drain does not wait for either.
	 */
	sv_read_output(c, cap);
	if (c->outfd >= 0)
		close(c->outfd);
	c->outfd = -1;
	c->state = SV_DRAINING;
	c->drain_until_mono = now + SUPERVISOR_DRAIN_MS;
}

/*
 * Reaps the group's orphans (ours, as subreaper); true once nothing of it
 * is left. With the leader reaped, only the members pin the group id, but
 * Linux hands out pids cyclically, so the id does not come back as some
 * new group within the few seconds of a drain.
 */
static bool sv_group_gone(struct sv_child *c, int64_t now)
{
	siginfo_t si;

	for (size_t i = 0; i < SV_REAP_PER_PASS; i++) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PGID, (id_t)c->pid, &si, WEXITED | WNOHANG) != 0 || si.si_pid == 0)
			break;
	}
	if (kill(-c->pid, 0) != 0 && errno == ESRCH)
		return true;
	if (now < c->drain_until_mono)
		return false;
	log_warn("agent %s: process group %d not empty %d ms after its leader ended",
		 c->agent_id, (int)c->pid, SUPERVISOR_DRAIN_MS);
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
	log_info("agent %s: timed out after %u ms", c->agent_id, (unsigned)c->limit.ms);
	if (kill(-c->pid, SIGTERM) != 0 && errno != ESRCH)
		log_warn("agent %s: SIGTERM to group %d: %s", c->agent_id, (int)c->pid,
			 strerror(errno));
	if (c->kill_at_mono == 0 || at < c->kill_at_mono)
		c->kill_at_mono = at;
}

/* One pass over the table after poll(); returns how many exits went to sv->done. */
static size_t sv_step(struct supervisor *sv, size_t npfds, int64_t now)
{
	size_t ndone = 0;

	for (size_t k = 1; k < npfds; k++) {
		struct sv_child *c = &sv->slots[sv->pfd_slot[k]];

		if (sv->pfds[k].revents == 0 || c->state != SV_RUNNING)
			continue;
		if (sv->pfds[k].fd == c->outfd)
			sv_read_output(c, sv->tail_max);
		else if (sv->pfds[k].fd == c->pidfd)
			sv_leader_exited(c, sv->tail_max, now);
	}
	for (size_t i = 0; i < sv->max; i++) {
		struct sv_child *c = &sv->slots[i];

		if (c->state == SV_RUNNING && c->timeout_at_mono != 0 && c->timeout_at_mono <= now)
			sv_time_out(c, now);
		if (c->state == SV_RUNNING && c->kill_at_mono != 0 && c->kill_at_mono <= now) {
			if (kill(-c->pid, SIGKILL) != 0 && errno != ESRCH)
				log_warn("agent %s: SIGKILL to group %d: %s", c->agent_id,
					 (int)c->pid, strerror(errno));
			c->kill_at_mono = 0;
		}
		if (c->state != SV_DRAINING || !sv_group_gone(c, now))
			continue;
		memcpy(sv->done[ndone].agent_id, c->agent_id, sizeof(c->agent_id));
		sv->done[ndone].ex = c->ex;
		sv->done[ndone].ex.agent_id = sv->done[ndone].agent_id;
		sv->done[ndone].output = sv_tail_copy(c, sv->tail_max,
						      &sv->done[ndone].ex.output_len);
		if (sv->done[ndone].output == NULL) {
			log_error("agent %s: out of memory copying its output", c->agent_id);
			sv->done[ndone].ex.output_len = 0;
		}
		sv->done[ndone].ex.output = sv->done[ndone].output;
		ndone++;
		free(c->tail);
		memset(c, 0, sizeof(*c));
		c->state = SV_FREE;
		c->pidfd = -1;
		c->outfd = -1;
	}
	return ndone;
}

static void *sv_reaper_main(void *p)
{
	struct supervisor *sv = p;
	uint64_t count;
	size_t npfds, ndone;
	int timeout;

	for (;;) {
		pthread_mutex_lock(&sv->mu);
		if (sv->stopping) {
			pthread_mutex_unlock(&sv->mu);
			break;
		}
		npfds = sv_poll_set(sv, clock_mono_ms(), &timeout);
		pthread_mutex_unlock(&sv->mu);

		if (poll(sv->pfds, npfds, timeout) < 0) {
			if (errno != EINTR) {
				log_error("supervisor: poll: %s", strerror(errno));
				/* Kill deadlines still get served, without spinning. */
				nanosleep(&(struct timespec){ .tv_nsec = SV_DRAIN_POLL_MS * 1000000L },
					  NULL);
			}
			for (size_t k = 0; k < npfds; k++)
				sv->pfds[k].revents = 0;
		}
		if ((sv->pfds[0].revents & POLLIN) &&
		    read(sv->wakefd, &count, sizeof(count)) < 0 && errno != EAGAIN)
			log_warn("supervisor: wake-up read: %s", strerror(errno));

		pthread_mutex_lock(&sv->mu);
		ndone = sv_step(sv, npfds, clock_mono_ms());
		pthread_mutex_unlock(&sv->mu);
		for (size_t i = 0; i < ndone; i++) {
			sv->on_exit(sv->arg, &sv->done[i].ex);
			free(sv->done[i].output);
			sv->done[i].output = NULL;
		}
	}
	return NULL;
}

int supervisor_start(size_t max_agents, size_t tail_bytes, supervisor_exit_fn on_exit,
		     void *arg, struct supervisor **out, struct tsr_err *err)
{
	struct supervisor *sv;
	bool mutex = false;
	int rc = -1, e;

	if (max_agents == 0 || max_agents > SUPERVISOR_AGENTS_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent cap must be 1..%d", SUPERVISOR_AGENTS_MAX);
	if (tail_bytes == 0 || tail_bytes > SUPERVISOR_TAIL_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "output tail must be 1..%d bytes", SUPERVISOR_TAIL_MAX);
	sv = calloc(1, sizeof(*sv));
	if (sv == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	sv->wakefd = -1;
	sv->max = max_agents;
	sv->tail_max = tail_bytes;
	sv->on_exit = on_exit;
	sv->arg = arg;
	sv->slots = calloc(max_agents, sizeof(*sv->slots));
	sv->pfds = calloc(2 * max_agents + 1, sizeof(*sv->pfds));
	sv->pfd_slot = calloc(2 * max_agents + 1, sizeof(*sv->pfd_slot));
	sv->done = calloc(max_agents, sizeof(*sv->done));
	if (sv->slots == NULL || sv->pfds == NULL || sv->pfd_slot == NULL || sv->done == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < max_agents; i++) {
		sv->slots[i].pidfd = -1;
		sv->slots[i].outfd = -1;
	}
	sv->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sv->wakefd < 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "eventfd: %s", strerror(errno));
		goto out;
	}
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
	mutex = true;
	e = pthread_create(&sv->reaper, NULL, sv_reaper_main, sv);
	if (e != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "reaper thread: %s", strerror(e));
		goto out;
	}
	*out = sv;
	sv = NULL;
	rc = 0;
out:
	if (sv != NULL) {
		if (mutex)
			pthread_mutex_destroy(&sv->mu);
		if (sv->wakefd >= 0)
			close(sv->wakefd);
		free(sv->slots);
		free(sv->pfds);
		free(sv->pfd_slot);
		free(sv->done);
		free(sv);
	}
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
	for (size_t i = 0; i < sv->max; i++) {
		if (sv->slots[i].pidfd >= 0)
			close(sv->slots[i].pidfd);
		if (sv->slots[i].outfd >= 0)
			close(sv->slots[i].outfd);
		free(sv->slots[i].tail);
	}
	pthread_mutex_destroy(&sv->mu);
	close(sv->wakefd);
	free(sv->slots);
	free(sv->pfds);
	free(sv->pfd_slot);
	free(sv->done);
	free(sv);
}

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
 * The agent's output pipe: the read end non-blocking, both ends O_CLOEXEC,
 * so no other agent inherits either. The write end is moved above 2 so
 * that placing stdin cannot overwrite it.
 */
static int sv_output_pipe(int *rd, int *wr, struct tsr_err *err)
{
	int p[2], w, rc = -1;

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "pipe: %s", strerror(errno));
	w = fcntl(p[1], F_DUPFD_CLOEXEC, 3);
	/* The agent's end blocks as usual when the tail is not read fast enough. */
	if (w < 0 || fcntl(w, F_SETFL, 0) != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "pipe: %s", strerror(errno));
		goto out;
	}
	*rd = p[0];
	*wr = w;
	p[0] = w = -1;
	rc = 0;
out:
	close(p[1]);
	if (p[0] >= 0)
		close(p[0]);
	if (w >= 0)
		close(w);
	return rc;
}

/* Appends one malloc'd "name=value" to envp, keeping room for its NULL end. */
static int sv_env_add(char **envp, size_t *n, const char *name, const char *value,
		      size_t value_len, struct tsr_err *err)
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
	const char *home = getenv("HOME");
	size_t n = 0;

	if (sv_env_add(envp, &n, "PATH", SV_PATH, strlen(SV_PATH), err) != 0)
		return -1;
	if (home != NULL && strnlen(home, SV_HOME_MAX) < SV_HOME_MAX &&
	    sv_env_add(envp, &n, "HOME", home, strlen(home), err) != 0)
		return -1;
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

/* posix_spawn with the attributes and fds the header promises. */
static int sv_posix_spawn(const struct agent_type *type, int task_fd, int out_fd, char **envp,
			  pid_t *pid, struct tsr_err *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int rc = -1, e;

	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	if (posix_spawn_file_actions_init(&fa) != 0)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	if (posix_spawnattr_init(&attr) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	/*
	 * stdin first: the memfd may itself sit at 1 or 2 if this process
	 * closed them. The output pipe is kept above 2 by sv_output_pipe.
	 */
	e = task_fd >= 0 ? posix_spawn_file_actions_adddup2(&fa, task_fd, 0)
			 : posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	/* One pipe for both keeps their lines in the order the agent wrote them. */
	if (e == 0)
		e = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	if (e == 0)
		e = posix_spawn_file_actions_adddup2(&fa, 1, 2);
	/* Libraries may leak fds without O_CLOEXEC: close them all regardless. */
	if (e == 0)
		e = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (e == 0)
		e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
							    POSIX_SPAWN_SETSIGDEF);
	if (e == 0)
		e = posix_spawnattr_setsigmask(&attr, &none);
	if (e == 0)
		e = posix_spawnattr_setsigdefault(&attr, &all);
	if (e != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "posix_spawn setup: %s", strerror(e));
		goto out;
	}
	e = posix_spawn(pid, type->argv[0], &fa, &attr, type->argv, envp);
	if (e != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "spawn %s: %s", type->argv[0], strerror(e));
		goto out;
	}
	rc = 0;
out:
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

/*
 * Takes a free slot for agent_id, marked SV_SPAWNING so that the cap holds
 * while the lock is dropped for posix_spawn.
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
	for (size_t i = 0; i < sv->max && c == NULL; i++)
		if (sv->slots[i].state == SV_FREE)
			c = &sv->slots[i];
	if (c == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "%zu agents already running",
			    sv->max);
		goto out;
	}
	c->state = SV_SPAWNING;
	snprintf(c->agent_id, sizeof(c->agent_id), "%s", agent_id);
	*out = c;
	rc = 0;
out:
	pthread_mutex_unlock(&sv->mu);
	return rc;
}

int supervisor_spawn(struct supervisor *sv, const char *agent_id, const struct agent_type *type,
		     const char *task, size_t task_len, const struct supervisor_timeout *limit,
		     pid_t *pid, int64_t *started_at_ms, struct tsr_err *err)
{
	struct sv_child *c = NULL;
	char *envp[SV_ENV_MAX] = { 0 };
	char *tail = NULL;
	int task_fd = -1, out_rd = -1, out_wr = -1, pidfd = -1, rc = -1;
	pid_t child = -1;

	if (!ids_valid_agent_id(agent_id))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid agent id");
	if (task_len > SUPERVISOR_TASK_MAX || (task == NULL && task_len > 0))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "task longer than %d bytes", SUPERVISOR_TASK_MAX);
	if (type->delivery == AGENT_TASK_ENV && task_len > 0 && memchr(task, '\0', task_len))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "a task passed by environment cannot hold NUL bytes");
	if (limit->ms > AGENT_TIMEOUT_MAX_MS || limit->grace_ms < 0 ||
	    limit->grace_ms > SUPERVISOR_GRACE_MAX_MS)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "timeout above %d ms or grace outside 0..%d ms",
				   AGENT_TIMEOUT_MAX_MS, SUPERVISOR_GRACE_MAX_MS);

	if (sv_reserve(sv, agent_id, &c, err) != 0)
		return -1;
	tail = malloc(sv->tail_max);
	if (tail == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	if (type->delivery == AGENT_TASK_STDIN && sv_task_memfd(task, task_len, &task_fd, err) != 0)
		goto out;
	if (sv_output_pipe(&out_rd, &out_wr, err) != 0 ||
	    sv_env(agent_id, type, task, task_len, envp, err) != 0 ||
	    sv_posix_spawn(type, task_fd, out_wr, envp, &child, err) != 0)
		goto out;
	*started_at_ms = clock_wall_ms();
	pidfd = (int)syscall(SYS_pidfd_open, child, 0);
	if (pidfd < 0) {
		/* Unwatchable: end it now rather than leave a process nobody reports. */
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "pidfd_open: %s", strerror(errno));
		kill(-child, SIGKILL);
		waitpid(child, NULL, 0);
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_lock(&sv->mu);
	if (rc == 0) {
		c->pid = child;
		c->pidfd = pidfd;
		c->outfd = out_rd;
		c->tail = tail;
		c->tail_start = c->tail_len = 0;
		c->limit = *limit;
		c->timeout_at_mono = limit->ms != 0 ? clock_mono_ms() + limit->ms : 0;
		c->state = SV_RUNNING;
		*pid = child;
		out_rd = -1;
		tail = NULL;
	} else {
		c->state = SV_FREE;
	}
	pthread_mutex_unlock(&sv->mu);
	if (rc == 0)
		sv_wake(sv);
	if (task_fd >= 0)
		close(task_fd);
	/* Only the agent holds the write end now: its exit brings end of file. */
	if (out_wr >= 0)
		close(out_wr);
	if (out_rd >= 0)
		close(out_rd);
	free(tail);
	sv_env_free(envp);
	return rc;
}

int supervisor_output(struct supervisor *sv, const char *agent_id, char **out, size_t *len,
		      struct tsr_err *err)
{
	struct sv_child *c;
	int rc = -1;

	pthread_mutex_lock(&sv->mu);
	c = sv_find(sv, agent_id);
	if (c == NULL || c->state == SV_SPAWNING) {
		tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "agent %s is not running here", agent_id);
		goto out;
	}
	*out = sv_tail_copy(c, sv->tail_max, len);
	if (*out == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&sv->mu);
	return rc;
}

size_t supervisor_count(struct supervisor *sv)
{
	size_t n = 0;

	pthread_mutex_lock(&sv->mu);
	for (size_t i = 0; i < sv->max; i++)
		if (sv->slots[i].state != SV_FREE)
			n++;
	pthread_mutex_unlock(&sv->mu);
	return n;
}

int supervisor_kill(struct supervisor *sv, const char *agent_id, int grace_ms,
		    struct tsr_err *err)
{
	struct sv_child *c;
	int64_t at;
	int rc = -1;

	if (grace_ms < 0 || grace_ms > SUPERVISOR_GRACE_MAX_MS)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "grace must be 0..%d ms", SUPERVISOR_GRACE_MAX_MS);
	pthread_mutex_lock(&sv->mu);
	c = sv_find(sv, agent_id);
	if (c == NULL || c->state == SV_SPAWNING) {
		tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "agent %s is not running here", agent_id);
		goto out;
	}
	/* Draining: it has ended already and its report is on the way. */
	if (c->state == SV_DRAINING) {
		rc = 0;
		goto out;
	}
	c->kill_requested = true;
	/* The leader is unreaped while SV_RUNNING, so -pid is still its group. */
	if (kill(-c->pid, SIGTERM) != 0 && errno != ESRCH) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "SIGTERM to group %d: %s", (int)c->pid,
			    strerror(errno));
		goto out;
	}
	at = clock_mono_ms() + grace_ms;
	if (c->kill_at_mono == 0 || at < c->kill_at_mono)
		c->kill_at_mono = at;
	rc = 0;
out:
	pthread_mutex_unlock(&sv->mu);
	if (rc == 0)
		sv_wake(sv);
	return rc;
}
