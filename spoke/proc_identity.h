/*
 * proc_identity: what tells one process apart from a later one that got
 * the same pid. A pid is only a slot: together with the process's start
 * time (clock ticks after boot, /proc/PID/stat field 22) and the boot id
 * (/proc/sys/kernel/random/boot_id), it names exactly one process ever.
 * The spoke records all three and adopts a process after a restart only
 * if all three still match.
 */
#ifndef TSR_PROC_IDENTITY_H
#define TSR_PROC_IDENTITY_H

#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define PROC_BOOT_ID_LEN 36		/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */

/* This boot's id, PROC_BOOT_ID_LEN characters and a NUL, into boot_id. */
int proc_boot_id(char boot_id[PROC_BOOT_ID_LEN + 1], struct tsr_err *err);
/* The start time of process pid. NOT_FOUND if there is no such process. */
int proc_start_ticks(pid_t pid, uint64_t *ticks, struct tsr_err *err);
/* True if boot_id is a well-formed boot id (lower-case hex and dashes). */
int proc_boot_id_valid(const char *boot_id);

#endif
