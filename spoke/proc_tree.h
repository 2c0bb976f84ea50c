/*
 * proc_tree: the processes below a process, read from
 * /proc/PID/task/TID/children (Linux with CONFIG_PROC_CHILDREN, as
 * Debian's kernels are built). It is how the spoke reaches an agent's
 * descendants that left its process group (setsid, double fork) on a
 * host without agent cgroups: while its shim lives they are all below it,
 * since the shim is their subreaper. A snapshot, so a process forked
 * during the walk can be missed; the shim's own sweep and cgroups cover
 * that.
 */
#ifndef TSR_PROC_TREE_H
#define TSR_PROC_TREE_H

#include <stddef.h>
#include <sys/types.h>

#define PROC_TREE_MAX 4096 /* processes one walk reaches */

/*
 * The children of pid (of all its threads) into pids[max]; how many, or
 * -1 with errno (ESRCH: pid is gone). A list longer than max is cut.
 */
int proc_tree_children(pid_t pid, pid_t *pids, size_t max);
/*
 * SIGKILLs every process below root, at most PROC_TREE_MAX of them,
 * each SIGSTOPped first while the tree is read; root itself is left.
 * How many there were.
 */
size_t proc_tree_kill_below(pid_t root);

#endif
