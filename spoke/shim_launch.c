/*
 * shim_launch: a vfork-like clone that copies only the descriptors the
 * shim keeps. See shim_launch.h for what the child gets, and why.
 */
#include "shim_launch.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHIM_LAUNCH_STACK (64 * 1024) /* the child calls a few syscalls, then exec */

/* What the child needs, and what it leaves for the parent (shared memory). */
struct launch_child {
	const struct shim_launch *l;
	unsigned cut;	  /* the lowest fd not copied: above every fd it uses */
	const char *step; /* what failed, set by the child before it exits */
	int err;	  /* its errno, 0 once it has exec'd */
};

int shim_launch_check(struct tsr_err *err)
{
	/* Closes nothing: only asks whether the call exists (5.9, with CLOSE_RANGE_UNSHARE). */
	if (close_range(~0U, ~0U, 0) != 0)
		return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
				   "close_range: %s (Linux 5.9 or later is needed to start agents)",
				   strerror(errno));
	return 0;
}

int shim_launcher_init(struct shim_launcher *ln, struct tsr_err *err)
{
	int e = pthread_mutex_init(&ln->mu, NULL);

	ln->stack = NULL;
	if (e != 0)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "shim launch: %s",
				   strerror(e));
	ln->len = SHIM_LAUNCH_STACK;
	ln->stack = mmap(NULL, ln->len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (ln->stack == MAP_FAILED) {
		e = errno;
		ln->stack = NULL;
		pthread_mutex_destroy(&ln->mu);
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "shim launch stack: %s",
				   strerror(e));
	}
	return 0;
}

void shim_launcher_free(struct shim_launcher *ln)
{
	if (ln->stack == NULL)
		return;
	munmap(ln->stack, ln->len);
	ln->stack = NULL;
	pthread_mutex_destroy(&ln->mu);
}

/* from at to in the child, kept across exec even if it is already there. */
static int launch_place(int from, int to)
{
	if (from == to)
		return fcntl(to, F_SETFD, 0);
	return dup2(from, to) < 0 ? -1 : 0;
}

/*
 * The child: async-signal-safe calls only, on its own stack, in the
 * parent's memory while the parent waits. Its first step gives it a
 * descriptor table of its own: until then, closing or placing an fd would
 * do so in the spoke.
 */
static int launch_child_main(void *arg)
{
	struct launch_child *c = arg;
	const struct shim_launch *l = c->l;
	struct sigaction dfl;
	sigset_t none;
	int in = l->stdin_fd;

	c->step = "close_range";
	if (close_range(c->cut, ~0U, CLOSE_RANGE_UNSHARE) != 0)
		goto fail;
	c->step = "/dev/null";
	if (in < 0 && (in = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		goto fail;
	/* stdin first: it may sit at 1 to 3; the output and the gate are above 3. */
	c->step = "dup2";
	if (launch_place(in, 0) != 0 || launch_place(l->out_fd, 1) != 0 ||
	    launch_place(1, 2) != 0 || launch_place(l->gate_fd, SHIM_LAUNCH_GATE_FD) != 0)
		goto fail;
	c->step = "close_range";
	if (close_range(SHIM_LAUNCH_GATE_FD + 1, ~0U, 0) != 0)
		goto fail;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	/* glibc's own signals refuse a change (EINVAL): they stay as they are. */
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			(void)sigaction(s, &dfl, NULL);
	c->step = "setsid";
	if (setsid() < 0)
		goto fail;
	c->step = "chdir";
	if (l->workdir != NULL && chdir(l->workdir) != 0)
		goto fail;
	sigemptyset(&none);
	c->step = "sigprocmask";
	if (sigprocmask(SIG_SETMASK, &none, NULL) != 0)
		goto fail;
	/*
	 * By its system call: a coverage build turns execve into a wrapper
	 * that first writes out this process's counters and marks them
	 * written, in the memory the child shares with the spoke.
	 */
	c->step = "exec";
	syscall(SYS_execve, l->path, l->argv, l->envp);
fail:
	c->err = errno != 0 ? errno : EINVAL;
	_exit(127);
}

int shim_launch(struct shim_launcher *ln, const struct shim_launch *l, pid_t *pid,
		struct tsr_err *err)
{
	struct launch_child c = { .l = l, .err = 0 };
	sigset_t all, old;
	int fd_max = l->stdin_fd > l->out_fd ? l->stdin_fd : l->out_fd;
	pid_t p;
	int e;

	if (l->gate_fd > fd_max)
		fd_max = l->gate_fd;
	c.cut = (unsigned)fd_max + 1;
	/*
	 * No handler of this process may run in the child, on its stack and
	 * in this memory, before it has reset them: it starts with all
	 * signals blocked, and unblocks them only once they are default.
	 */
	sigfillset(&all);
	pthread_mutex_lock(&ln->mu);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	p = clone(launch_child_main, (char *)ln->stack + ln->len,
		  CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &c);
	e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_unlock(&ln->mu);
	if (p < 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "clone: %s", strerror(e));
	if (c.err != 0) {
		while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
			;
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "%s: %s", c.step, strerror(c.err));
	}
	*pid = p;
	return 0;
}
