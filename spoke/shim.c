/*
 * tessera-shim: the parent of one agent. tessera-spoke starts it as the
 * leader of a new session and process group, which the agent shares, so
 * that an agent outlives a spoke that crashes or restarts and still gets
 * its exit status recorded (the kernel tells it only to the parent).
 *
 *   usage: tessera-shim EXIT_FILE SPEC PATH [ARG...]   (or --version)
 *   fd 0 the task or /dev/null, fds 1 and 2 the output file, fd 3 the gate;
 *   the environment and working directory are already the agent's; SPEC
 *   (shim_spec.h) the uid, gid and limits the agent gets.
 *
 * 1. It blocks the signals a kill sends first (SIGTERM, SIGINT, SIGHUP,
 *    SIGQUIT), so that a group SIGTERM ends the agent, not the shim; one
 *    that came before the agent existed is passed on to it.
 * 2. It reads one byte from the gate. The spoke sends it only once this
 *    process is recorded in Valkey; end of file means the spoke died or
 *    gave up first, and the shim writes "none" to EXIT_FILE and ends with
 *    nothing started.
 * 3. It forks the agent, which takes SPEC's limits, groups, gid and uid,
 *    unblocks the signals (their dispositions are the defaults) and execs
 *    PATH with no fd but 0-2. The shim is a child subreaper: whatever the
 *    agent starts stays below it, even after setsid or a double fork.
 * 4. When the agent has ended it writes "exit N" or "signal N" to
 *    EXIT_FILE (whole, through a temporary file and rename), SIGKILLs
 *    every descendant left, then its process group, itself included:
 *    nothing of the agent outlives it. The agent can put anything at
 *    either path (unless SPEC makes it another user); what the shim
 *    cannot replace, it leaves, unrecorded, rather than wait on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shim_spec.h"
#include "version.h"

#define SHIM_GATE_FD 3
#define SHIM_EXIT_NOT_STARTED 125 /* the gate closed without a go-ahead */
#define SHIM_EXIT_NO_AGENT 126	  /* the agent could not be forked */
#define SHIM_EXIT_NO_EXEC 127	  /* the agent's exec failed (as a shell says) */
/* Rounds of SIGKILL to what is left below the shim, 1 ms apart: a tree is cut a level a round. */
#define SHIM_SWEEP_ROUNDS 2000
#define SHIM_CHILDREN_MAX 8192 /* bytes of /proc/self/task/PID/children read a round */

static const int shim_kill_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT };

static void shim_say(const char *what, const char *arg, int e)
{
	/* Lands in the agent's output, which is where an operator looks. */
	dprintf(STDERR_FILENO, "tessera-shim: %s%s%s: %s\n", what, arg[0] ? " " : "", arg,
		strerror(e));
}

/* Blocks until the spoke's go-ahead; 0 once it came, -1 otherwise. */
static int shim_wait_gate(void)
{
	char b;
	ssize_t n;

	do
		n = read(SHIM_GATE_FD, &b, 1);
	while (n < 0 && errno == EINTR);
	close(SHIM_GATE_FD);
	return n == 1 ? 0 : -1;
}

static void shim_kill_set(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < sizeof(shim_kill_signals) / sizeof(shim_kill_signals[0]); i++)
		sigaddset(set, shim_kill_signals[i]);
}

/* In the forked child: the spec, the signals, then exec. */
static void shim_exec_agent(const struct shim_spec *spec, char **argv)
{
	const char *what = "";
	sigset_t none;

	if (shim_spec_apply(spec, &what) != 0) {
		shim_say("cannot set", what, errno);
		_exit(SHIM_EXIT_NO_EXEC);
	}
	/* A kill that reached the group since the fork is pending here, and ends the agent now. */
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) {
		shim_say("signal mask", "", errno);
		_exit(SHIM_EXIT_NO_EXEC);
	}
	execv(argv[0], argv);
	shim_say("cannot execute", argv[0], errno);
	_exit(SHIM_EXIT_NO_EXEC);
}

/* A kill the shim held back while the agent did not exist yet goes to the agent. */
static void shim_pass_pending(pid_t agent)
{
	sigset_t pending;

	if (sigpending(&pending) != 0)
		return;
	for (size_t i = 0; i < sizeof(shim_kill_signals) / sizeof(shim_kill_signals[0]); i++)
		if (sigismember(&pending, shim_kill_signals[i]) == 1)
			kill(agent, shim_kill_signals[i]);
}

/* Waits for the agent, reaping what else ends below the shim meanwhile. */
static int shim_wait_agent(pid_t agent, int *status)
{
	pid_t r;

	for (;;) {
		r = waitpid(-1, status, 0);
		if (r == agent)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* SIGKILL to each pid listed in buf. */
static void shim_kill_listed(const char *buf)
{
	const char *p = buf;
	char *end;
	long pid;

	for (;;) {
		pid = strtol(p, &end, 10);
		if (end == p)
			return;
		if (pid > 0)
			kill((pid_t)pid, SIGKILL);
		p = end;
	}
}

/*
 * Ends every process below the shim: as a subreaper it inherits those
 * whose parents die, so killing its children round after round empties
 * the tree, setsid and double forks included. Bounded: a tree still
 * there after SHIM_SWEEP_ROUNDS is left to the spoke.
 */
static void shim_end_descendants(void)
{
	char path[64], buf[SHIM_CHILDREN_MAX];
	struct timespec ms = { .tv_nsec = 1000000L };
	ssize_t n;
	pid_t r;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	for (int round = 0; round < SHIM_SWEEP_ROUNDS; round++) {
		while ((r = waitpid(-1, NULL, WNOHANG)) > 0)
			;
		if (r < 0 && errno == ECHILD)
			return;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n < 0)
			return;
		buf[n] = '\0';
		shim_kill_listed(buf);
		nanosleep(&ms, NULL);
	}
}

/* Writes line to path, all of it or nothing. */
static int shim_write_exit(const char *path, const char *line)
{
	char tmp[PATH_MAX];
	int fd, len = (int)strlen(line), rc = -1;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -1;
	/*
	 * A file of its own, never one found there: opening a FIFO the agent
	 * made at tmp would block this shim, and its exit, for good.
	 */
	if (unlink(tmp) != 0 && errno != ENOENT)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, line, (size_t)len) == len && close(fd) == 0) {
		fd = -1;
		rc = rename(tmp, path);
	}
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		unlink(tmp);
	return rc;
}

/* Blocks the kill signals and makes the shim its agent's subreaper; 0 or -1 with errno. */
static int shim_prepare(void)
{
	sigset_t kills;

	/* Before the gate: a kill may come as soon as the go-ahead is sent. */
	shim_kill_set(&kills);
	if (sigprocmask(SIG_BLOCK, &kills, NULL) != 0)
		return -1;
	return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

int main(int argc, char **argv)
{
	struct shim_spec spec;
	char line[32];
	pid_t agent;
	int status;

	/* The spoke always passes three words or more: a lone --version is a person's. */
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		dprintf(STDOUT_FILENO, "tessera-shim %s\n", TSR_VERSION);
		return 0;
	}
	if (argc < 4 || argv[3][0] != '/' || shim_spec_parse(argv[2], &spec) != 0) {
		dprintf(STDERR_FILENO,
			"usage: tessera-shim EXIT_FILE SPEC /PATH [ARG...] | --version\n");
		return 2;
	}
	if (shim_prepare() != 0) {
		shim_say("cannot prepare", "", errno);
		return SHIM_EXIT_NO_AGENT;
	}
	if (shim_wait_gate() != 0) {
		if (shim_write_exit(argv[1], "none\n") != 0)
			shim_say("cannot record the exit in", argv[1], errno);
		return SHIM_EXIT_NOT_STARTED;
	}
	agent = fork();
	if (agent < 0) {
		shim_say("fork", "", errno);
		return SHIM_EXIT_NO_AGENT;
	}
	if (agent == 0)
		shim_exec_agent(&spec, argv + 3);
	shim_pass_pending(agent);
	if (shim_wait_agent(agent, &status) != 0) {
		shim_say("waitpid", "", errno);
		return SHIM_EXIT_NO_AGENT;
	}
	if (WIFSIGNALED(status))
		snprintf(line, sizeof(line), "signal %d\n", WTERMSIG(status));
	else
		snprintf(line, sizeof(line), "exit %d\n", WEXITSTATUS(status));
	if (shim_write_exit(argv[1], line) != 0)
		shim_say("cannot record the exit in", argv[1], errno);
	shim_end_descendants();
	kill(0, SIGKILL);
	return SHIM_EXIT_NO_AGENT; /* not reached: SIGKILL included this process */
}
