/*
 * agent_cgroup: one cgroup v2 directory per agent, BASE/agent-ID, so that
 * ending an agent ends every process it left behind. A kill of the agent's
 * process group misses any descendant that called setsid() or was double
 * forked into a group of its own; a cgroup holds every process forked
 * inside it whatever its group or session, and writing "1" to its
 * cgroup.kill (Linux 5.14) SIGKILLs all of them at once.
 *
 * BASE is the cgroup this process is in, unless an operator delegates
 * another. No controller is enabled anywhere: without domain controllers
 * the "no internal processes" rule does not apply, so BASE can hold the
 * spoke itself as well as its agents' cgroups, and nothing limits or
 * accounts the agents here (the cgroups only group them).
 *
 * A host without a cgroup v2 hierarchy this process may write (cgroup v1
 * only, a read-only mount, a kernel without cgroup.kill, no privilege)
 * gets a disabled module: opening says why once, every other call does
 * nothing and returns 0, and the caller falls back to killing process
 * groups.
 *
 * Each call but opening is a few syscalls without sleeping or retrying:
 * the reaper thread makes them, at times with a mutex held.
 */
#ifndef TSR_AGENT_CGROUP_H
#define TSR_AGENT_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

#define AGENT_CGROUP_PATH_MAX 4096
#define AGENT_CGROUP_WHY_MAX 256 /* a why buffer: a long path in a reason may be cut short */

struct agent_cgroup {
	bool enabled; /* false: no cgroup v2 we may write; each call below then does nothing, 0 */
	int dirfd;    /* owned: O_PATH|O_DIRECTORY of the base directory, or -1 */
	char base[AGENT_CGROUP_PATH_MAX]; /* the base directory's path, for logs */
};

/*
 * Opens the cgroup v2 directory this process is in as the base: its path
 * in /proc/self/cgroup ("0::/X") under the cgroup2 mount in
 * /proc/self/mountinfo that holds it (on hybrid hosts /sys/fs/cgroup/unified,
 * else /sys/fs/cgroup; the mount's root field honoured), probed as
 * agent_cgroup_open_at does. want_off: disabled at once. Whenever the
 * module cannot be used, disabled with the reason, one short sentence, in
 * why (why_len bytes; AGENT_CGROUP_WHY_MAX fits all), and 0; -1 only when
 * out of memory or descriptors.
 */
int agent_cgroup_open(struct agent_cgroup *cg, bool want_off, char *why, size_t why_len,
		      struct tsr_err *err);
/*
 * Opens the absolute path base as the base: it must be a directory of a
 * cgroup2 file system (no symbolic link) in which a child cgroup can be
 * made and removed, and that child must have a cgroup.kill and a
 * cgroup.procs this process may write. Returns as agent_cgroup_open.
 */
int agent_cgroup_open_at(struct agent_cgroup *cg, const char *base, char *why, size_t why_len,
			 struct tsr_err *err);
void agent_cgroup_close(struct agent_cgroup *cg);

/*
 * Makes BASE/agent-ID (0755), an existing one being fine, and opens it
 * into *dirfd (owned by the caller; -1 when disabled), the directory a
 * process can be started in (clone3's CLONE_INTO_CGROUP).
 */
int agent_cgroup_create(const struct agent_cgroup *cg, const char *agent_id, int *dirfd,
			struct tsr_err *err);
/*
 * Moves pid into the agent's cgroup (its cgroup.procs): pid and whatever
 * it forks from then on are inside. NOT_FOUND if the cgroup or the
 * process is missing. A move waits for an RCU grace period in the kernel,
 * milliseconds where starting a process in the cgroup takes none.
 */
int agent_cgroup_enter(const struct agent_cgroup *cg, const char *agent_id, pid_t pid,
		       struct tsr_err *err);
/* SIGKILLs every process in the agent's cgroup (its cgroup.kill); a missing cgroup is 0. */
int agent_cgroup_kill(const struct agent_cgroup *cg, const char *agent_id, struct tsr_err *err);
/* *populated: whether any process is in the agent's cgroup (or below); a missing one is not. */
int agent_cgroup_populated(const struct agent_cgroup *cg, const char *agent_id, bool *populated,
			   struct tsr_err *err);
/*
 * Removes the agent's cgroup; a missing one is 0. UNAVAILABLE while it is
 * still populated (or holds a cgroup the agent made): retry later.
 */
int agent_cgroup_remove(const struct agent_cgroup *cg, const char *agent_id, struct tsr_err *err);

#endif
