/*
 * shim_launch: starting a tessera-shim process as posix_spawn would (a
 * new session, an empty signal mask, every disposition default, fds 0-3
 * placed and no other fd, a working directory), but in a child that
 * shares this process's descriptor table until it takes a private copy
 * of only the lowest few: the descriptors above those of the shim's are
 * never copied, where posix_spawn copies the whole table into its child,
 * which then closes them one by one. With one pidfd per running agent in
 * the spoke, that kept a spawn's cost growing with the agents running.
 * The child is a clone sharing this process's memory (CLONE_VM) with the
 * calling thread suspended until it has exec'd (CLONE_VFORK), as glibc's
 * posix_spawn does: no fork, so no atfork handler runs (gRPC relies on
 * that), and nothing of this process is copied.
 *
 * Where clone3 can be used (x86_64, and no seccomp filter refusing it, as
 * Docker's default profile does), the child starts inside the agent's
 * cgroup (CLONE_INTO_CGROUP) and with a pidfd (CLONE_PIDFD). Moving a
 * process into a cgroup after it started takes the kernel's cgroup
 * threadgroup lock for writing, which waits out an RCU grace period:
 * milliseconds, up to tens of them, every time spawns are not back to
 * back. Elsewhere the child starts by glibc's clone and the caller moves
 * it.
 *
 * Needs close_range's CLOSE_RANGE_UNSHARE (Linux 5.9): shim_launch_check
 * tells, once, at start-up.
 */
#ifndef TSR_SHIM_LAUNCH_H
#define TSR_SHIM_LAUNCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

#define SHIM_LAUNCH_GATE_FD 3 /* where the shim reads its go-ahead */

struct shim_launch {
	const char *path;
	char *const *argv;
	char *const *envp;
	int stdin_fd;	     /* to fd 0; -1: /dev/null */
	int out_fd;	     /* to fds 1 and 2; above SHIM_LAUNCH_GATE_FD */
	int gate_fd;	     /* to fd 3; above SHIM_LAUNCH_GATE_FD */
	const char *workdir; /* or NULL: this process's */
	int cgroup_fd;	     /* a cgroup v2 directory to start in, or -1 */
};

/* What shim_launch started. */
struct shim_child {
	pid_t pid;
	int pidfd;	/* owned by the caller, O_CLOEXEC */
	bool in_cgroup; /* started in cgroup_fd's cgroup; false: the caller moves it */
};

/* The child's stack, which one launch at a time uses (mu). */
struct shim_launcher {
	pthread_mutex_t mu;
	void *stack; /* owned mapping; NULL before init */
	size_t len;
	bool clone3; /* clone3 works here; set by init, cleared only by tests */
};

/* Whether this kernel has what shim_launch needs; err says what is missing. */
int shim_launch_check(struct tsr_err *err);
int shim_launcher_init(struct shim_launcher *ln, struct tsr_err *err);
void shim_launcher_free(struct shim_launcher *ln);
/*
 * Starts l's program; *child is set once it has exec'd. -1 with err if it
 * could not be started: then no child is left. Thread-safe.
 */
int shim_launch(struct shim_launcher *ln, const struct shim_launch *l, struct shim_child *child,
		struct tsr_err *err);

#endif
