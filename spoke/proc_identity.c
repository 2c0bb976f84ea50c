/* proc_identity: reading start times, the boot id and the PID namespace from /proc. */
#include "proc_identity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROC_STAT_MAX 4096 /* /proc/PID/stat is a few hundred bytes */
#define PROC_STARTTIME_FIELD 22

/* Reads up to len - 1 bytes of path into buf, NUL-ended; their count in *n. */
static int proc_read(const char *path, char *buf, size_t len, size_t *n)
{
	ssize_t r;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	do
		r = read(fd, buf, len - 1);
	while (r < 0 && errno == EINTR);
	close(fd);
	if (r < 0)
		return -1;
	buf[r] = '\0';
	*n = (size_t)r;
	return 0;
}

int proc_boot_id_valid(const char *s)
{
	for (int i = 0; i < PROC_BOOT_ID_LEN; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-'
			 : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return s[PROC_BOOT_ID_LEN] == '\0';
}

int proc_boot_id(char boot_id[PROC_BOOT_ID_LEN + 1], struct tsr_err *err)
{
	char buf[64];
	size_t n;

	if (proc_read("/proc/sys/kernel/random/boot_id", buf, sizeof(buf), &n) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "boot id: %s", strerror(errno));
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (!proc_boot_id_valid(buf))
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "boot id: malformed");
	memcpy(boot_id, buf, PROC_BOOT_ID_LEN + 1);
	return 0;
}

int proc_pid_ns(struct proc_pid_ns *ns, struct tsr_err *err)
{
	struct tsr_err e;
	struct stat st;
	uint64_t ticks;

	if (stat("/proc/self/ns/pid", &st) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "PID namespace: %s", strerror(errno));
	/* 0 is how a record made before namespaces were recorded reads; Valkey keeps int64. */
	if (st.st_ino == 0 || st.st_ino > INT64_MAX)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "PID namespace: inode %llu",
				   (unsigned long long)st.st_ino);
	/* A /proc mounted hidepid hides pid 1 from a spoke not running as root:
	 * the inode alone must do there (0 is never compared). */
	if (proc_start_ticks(1, &ticks, &e) != 0) {
		if (e.code != GRPC_STATUS_NOT_FOUND)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL,
					   "PID namespace: its pid 1: %s", e.msg);
		ticks = 0;
	}
	if (ticks > INT64_MAX)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL,
				   "PID namespace: its pid 1 started at tick %llu",
				   (unsigned long long)ticks);
	ns->ino = (uint64_t)st.st_ino;
	ns->init_ticks = ticks;
	return 0;
}

int proc_start_ticks(pid_t pid, uint64_t *ticks, struct tsr_err *err)
{
	char path[64], buf[PROC_STAT_MAX], *p, *end;
	unsigned long long v;
	size_t n;

	if (pid <= 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid pid %d", (int)pid);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (proc_read(path, buf, sizeof(buf), &n) != 0)
		return tsr_err_set(err,
				   errno == ENOENT || errno == ESRCH ? GRPC_STATUS_NOT_FOUND
								     : GRPC_STATUS_INTERNAL,
				   "process %d: %s", (int)pid, strerror(errno));
	/* The command name (field 2) may hold spaces and ')': fields restart after the last ')'. */
	p = strrchr(buf, ')');
	if (p == NULL)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "process %d: malformed stat",
				   (int)pid);
	p++;
	for (int field = 3; field < PROC_STARTTIME_FIELD; field++) {
		p = strchr(p + 1, ' ');
		if (p == NULL)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL, "process %d: short stat",
					   (int)pid);
	}
	errno = 0;
	v = strtoull(p + 1, &end, 10);
	if (errno != 0 || end == p + 1 || (*end != ' ' && *end != '\n' && *end != '\0'))
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "process %d: malformed start time",
				   (int)pid);
	*ticks = v;
	return 0;
}
