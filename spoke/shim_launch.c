/*
 * shim_launch: a vfork-like clone that copies only the descriptors the
 * shim keeps, started in the agent's cgroup where clone3 can be used. See
 * shim_launch.h for what the child gets, and why.
 */
#include "shim_launch.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHIM_LAUNCH_STACK (64 * 1024) /* the child calls a few syscalls, then exec */

#if defined(__x86_64__)
#define LAUNCH_HAVE_CLONE3 1
#define LAUNCH_STR_(x) #x
#define LAUNCH_STR(x) LAUNCH_STR_(x)
/*
 * clone3 with CLONE_VM resumes the child at the instruction after the
 * system call on a stack of its own, where it cannot return through C
 * frames, and glibc 2.36 exports no clone3: this calls fn(arg) there and
 * exits with its value. Returns the child's pid, or -errno, in the
 * parent. The kernel keeps every register but rax, rcx and r11, so fn and
 * arg cross the call in r9 and r8.
 */
long tsr_launch_clone3(struct clone_args *args, size_t size, int (*fn)(void *), void *arg)
	__attribute__((visibility("hidden")));
/* clang-format off */
__asm__(".pushsection .text\n"
	".globl tsr_launch_clone3\n"
	".hidden tsr_launch_clone3\n"
	".type tsr_launch_clone3, @function\n"
	"tsr_launch_clone3:\n"
	"	.cfi_startproc\n"
	"	movq %rdx, %r9\n"
	"	movq %rcx, %r8\n"
	"	movl $" LAUNCH_STR(SYS_clone3) ", %eax\n"
	"	syscall\n"
	"	testq %rax, %rax\n"
	"	jz 1f\n"
	"	ret\n"
	"1:\n"
	"	.cfi_undefined rip\n"
	"	xorl %ebp, %ebp\n"
	"	movq %r8, %rdi\n"
	"	call *%r9\n"
	"	movl %eax, %edi\n"
	"	movl $" LAUNCH_STR(SYS_exit) ", %eax\n"
	"	syscall\n"
	"	hlt\n"
	"	.cfi_endproc\n"
	".size tsr_launch_clone3, .-tsr_launch_clone3\n"
	".popsection\n");
/* clang-format on */
#else
#define LAUNCH_HAVE_CLONE3 0
#endif

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

/*
 * Whether clone3 can start children here: with no arguments it fails
 * EINVAL where it exists, ENOSYS where the kernel or a seccomp filter
 * (Docker's default profile) has none, or whatever a filter chose.
 */
static bool launch_clone3_works(void)
{
	return LAUNCH_HAVE_CLONE3 && syscall(SYS_clone3, NULL, 0) < 0 && errno == EINVAL;
}

int shim_launcher_init(struct shim_launcher *ln, struct tsr_err *err)
{
	int e = pthread_mutex_init(&ln->mu, NULL);

	ln->stack = NULL;
	ln->clone3 = launch_clone3_works();
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

/*
 * The child by clone3, in l's cgroup and with a pidfd, the calling
 * thread suspended until it has exec'd. -errno if none was made.
 */
static pid_t launch_by_clone3(struct shim_launcher *ln, struct launch_child *c,
			      struct shim_child *child)
{
#if LAUNCH_HAVE_CLONE3
	struct clone_args args = {
		.flags = CLONE_VM | CLONE_VFORK | CLONE_FILES | CLONE_PIDFD,
		.pidfd = (uintptr_t)&child->pidfd,
		.exit_signal = SIGCHLD,
		.stack = (uintptr_t)ln->stack,
		.stack_size = ln->len,
	};
	long p;

	if (c->l->cgroup_fd >= 0) {
		args.flags |= CLONE_INTO_CGROUP;
		args.cgroup = (uint64_t)c->l->cgroup_fd;
	}
	p = tsr_launch_clone3(&args, sizeof(args), launch_child_main, c);
	child->in_cgroup = p > 0 && c->l->cgroup_fd >= 0;
	return (pid_t)p;
#else
	(void)ln, (void)c, (void)child;
	return -ENOSYS;
#endif
}

/* The child by glibc's clone, and then a pidfd for it. -errno if none was made. */
static pid_t launch_by_clone(struct shim_launcher *ln, struct launch_child *c,
			     struct shim_child *child)
{
	pid_t p = clone(launch_child_main, (char *)ln->stack + ln->len,
			CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, c);

	if (p < 0)
		return -errno;
	child->in_cgroup = false;
	/* Unreaped, the child keeps its pid: the pidfd is its. */
	child->pidfd = (int)syscall(SYS_pidfd_open, p, 0);
	if (child->pidfd < 0 && c->err == 0)
		c->err = errno, c->step = "pidfd_open";
	return p;
}

int shim_launch(struct shim_launcher *ln, const struct shim_launch *l, struct shim_child *child,
		struct tsr_err *err)
{
	struct launch_child c = { .l = l, .err = 0 };
	sigset_t all, old;
	int fd_max = l->stdin_fd > l->out_fd ? l->stdin_fd : l->out_fd;
	pid_t p;

	if (l->gate_fd > fd_max)
		fd_max = l->gate_fd;
	c.cut = (unsigned)fd_max + 1;
	child->pidfd = -1;
	/*
	 * No handler of this process may run in the child, on its stack and
	 * in this memory, before it has reset them: it starts with all
	 * signals blocked, and unblocks them only once they are default.
	 */
	sigfillset(&all);
	pthread_mutex_lock(&ln->mu);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	p = ln->clone3 ? launch_by_clone3(ln, &c, child) : launch_by_clone(ln, &c, child);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_unlock(&ln->mu);
	if (p < 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "%s: %s",
				   ln->clone3 ? "clone3" : "clone", strerror(-p));
	if (c.err != 0) {
		if (child->pidfd >= 0)
			close(child->pidfd);
		child->pidfd = -1;
		kill(p, SIGKILL); /* one whose pidfd failed has exec'd */
		while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
			;
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "%s: %s", c.step, strerror(c.err));
	}
	child->pid = p;
	return 0;
}
