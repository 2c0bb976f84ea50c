/*
 * proc_identity: what tells one process apart from a later one that got
 * the same pid. A pid is only a slot: together with the process's start
 * time (clock ticks after boot, /proc/PID/stat field 22) and the boot id
 * (/proc/sys/kernel/random/boot_id), it names exactly one process ever.
 * The spoke records all three and adopts a process after a restart only
 * if all three still match. It also records its PID namespace (inode,
 * and the start time of its pid 1): a container restart ends the
 * namespace, and every process in it, while the boot id stays, and pids
 * count from 1 again in the new one. A record could still name a process
 * that is not the one it was written for (written by hand, or by anyone
 * with access to Valkey): before adopting, the spoke checks that the
 * process runs the shim, for that agent (proc_runs).
 */
#ifndef TSR_PROC_IDENTITY_H
#define TSR_PROC_IDENTITY_H

#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define PROC_BOOT_ID_LEN 36 /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */

/*
 * Whether process pid runs the program file exe, given arg1 as its first
 * argument (argv[1]). The program is the same file as exe (device and
 * inode, however either path is spelled), or, once exe has been replaced
 * (an upgrade under running processes), a deleted file that had exe's
 * canonical path. 0 if so. NOT_FOUND if the process has ended (or is a
 * zombie or a kernel thread, with no program). FAILED_PRECONDITION if it
 * runs something else, has another first argument, or cannot be
 * inspected (another user's): err says which. Reads /proc only, boundedly.
 */
int proc_runs(pid_t pid, const char *exe, const char *arg1, struct tsr_err *err);
/* This boot's id, PROC_BOOT_ID_LEN characters and a NUL, into boot_id. */
int proc_boot_id(char boot_id[PROC_BOOT_ID_LEN + 1], struct tsr_err *err);
/* The start time of process pid. NOT_FOUND if there is no such process. */
int proc_start_ticks(pid_t pid, uint64_t *ticks, struct tsr_err *err);
/* True if boot_id is a well-formed boot id (lower-case hex and dashes). */
int proc_boot_id_valid(const char *boot_id);
/*
 * A PID namespace, told apart from every other one of the boot. Its inode
 * alone does not do it: a namespace keeps its inode while it lives, but a
 * dead one's is given out again. The start time of its pid 1 does the
 * rest: the namespace ends with that process, so a new one has a new
 * pid 1, started later. On a host, both stay the same for the whole boot.
 * init_ticks is 0 where pid 1 cannot be seen (/proc mounted hidepid) or
 * started in the boot's first tick, a host's init: a 0 is not compared.
 */
struct proc_pid_ns {
	uint64_t ino;	     /* of /proc/self/ns/pid; never 0 */
	uint64_t init_ticks; /* its pid 1's start time (clock ticks after boot) */
};

/*
 * This process's PID namespace. /proc must be the one mounted for it, as
 * a container's is, for /proc/1 to be its pid 1.
 */
int proc_pid_ns(struct proc_pid_ns *ns, struct tsr_err *err);

#endif
