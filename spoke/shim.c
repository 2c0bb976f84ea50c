/*
 * tessera-shim: the parent of one agent. tessera-spoke starts it as the
 * leader of a new session and process group, which the agent shares, so
 * that an agent outlives a spoke that crashes or restarts and still gets
 * its exit status recorded (the kernel tells it only to the parent).
 *
 *   usage: tessera-shim EXIT_FILE PATH [ARG...]
 *   fd 0 the task or /dev/null, fds 1 and 2 the output file, fd 3 the gate;
 *   the environment and working directory are already the agent's.
 *
 * 1. It ignores the signals a kill sends first (SIGTERM, SIGINT, SIGHUP,
 *    SIGQUIT), so that a group SIGTERM reaches the agent, not the shim.
 * 2. It reads one byte from the gate. The spoke sends it only once this
 *    process is recorded in Valkey; end of file means the spoke died or
 *    gave up first, and the shim writes "none" to EXIT_FILE and ends with
 *    nothing started.
 * 3. It forks the agent, with the signal mask and dispositions back to
 *    their defaults and no fd but 0-2, and execs PATH.
 * 4. When the agent has ended it writes "exit N" or "signal N" to
 *    EXIT_FILE (whole, through a temporary file and rename), then
 *    SIGKILLs its process group, itself included: nothing of the agent
 *    outlives it. The agent can put anything at either path; what the
 *    shim cannot replace, it leaves, unrecorded, rather than wait on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHIM_GATE_FD 3
#define SHIM_EXIT_NOT_STARTED 125 /* the gate closed without a go-ahead */
#define SHIM_EXIT_NO_AGENT 126	  /* the agent could not be forked */
#define SHIM_EXIT_NO_EXEC 127	  /* the agent's exec failed (as a shell says) */

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

static int shim_set_kill_signals(void (*handler)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(shim_kill_signals) / sizeof(shim_kill_signals[0]); i++)
		if (sigaction(shim_kill_signals[i], &sa, NULL) != 0)
			return -1;
	return 0;
}

/* In the forked child: back to what the agent is promised, then exec. */
static void shim_exec_agent(char **argv)
{
	sigset_t none;

	sigemptyset(&none);
	if (shim_set_kill_signals(SIG_DFL) != 0 || sigprocmask(SIG_SETMASK, &none, NULL) != 0) {
		shim_say("signal reset", "", errno);
		_exit(SHIM_EXIT_NO_EXEC);
	}
	execv(argv[0], argv);
	shim_say("cannot execute", argv[0], errno);
	_exit(SHIM_EXIT_NO_EXEC);
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

int main(int argc, char **argv)
{
	char line[32];
	pid_t agent, r;
	int status;

	if (argc < 3 || argv[2][0] != '/') {
		dprintf(STDERR_FILENO, "usage: tessera-shim EXIT_FILE /PATH [ARG...]\n");
		return 2;
	}
	/* Before the gate: a kill may come as soon as the go-ahead is sent. */
	if (shim_set_kill_signals(SIG_IGN) != 0) {
		shim_say("sigaction", "", errno);
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
		shim_exec_agent(argv + 2);
	do
		r = waitpid(agent, &status, 0);
	while (r < 0 && errno == EINTR);
	if (r != agent) {
		shim_say("waitpid", "", errno);
		return SHIM_EXIT_NO_AGENT;
	}
	if (WIFSIGNALED(status))
		snprintf(line, sizeof(line), "signal %d\n", WTERMSIG(status));
	else
		snprintf(line, sizeof(line), "exit %d\n", WEXITSTATUS(status));
	if (shim_write_exit(argv[1], line) != 0)
		shim_say("cannot record the exit in", argv[1], errno);
	kill(0, SIGKILL);
	return SHIM_EXIT_NO_AGENT; /* not reached: SIGKILL included this process */
}
