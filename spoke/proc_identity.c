/* proc_identity: reading start times, the boot id and the PID namespace from /proc. */
#include "proc_identity.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "utf8.h"

#define PROC_STAT_MAX 4096 /* /proc/PID/stat is a few hundred bytes */
#define PROC_STARTTIME_FIELD 22
/* Of a command line, proc_runs needs argv[0] and argv[1]: two paths. */
#define PROC_CMDLINE_MAX (2 * (PATH_MAX + 1))
#define PROC_DELETED " (deleted)" /* what /proc/PID/exe adds to a deleted file's path */
/*
 * A command line reads empty while its process finishes an exec (the
 * parent of posix_spawn runs on before the child's arguments are in
 * place) and once it has ended: looked at again this often, this long.
 */
#define PROC_CMDLINE_TRIES 50
#define PROC_CMDLINE_WAIT_MS 10

/*
 * Reads up to len - 1 bytes of path into buf, NUL-ended; their count in
 * *n. Fails with errno set.
 */
static int proc_read(const char *path, char *buf, size_t len, size_t *n)
{
	size_t got = 0;
	ssize_t r;
	int fd, e = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* A command line may come a page per read. */
	while (got < len - 1) {
		r = read(fd, buf + got, len - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			e = errno;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (e != 0) {
		errno = e;
		return -1;
	}
	buf[got] = '\0';
	*n = got;
	return 0;
}

/* err for pid's /proc entry that could not be read (errno e): NOT_FOUND if it has ended. */
static int proc_unreadable(pid_t pid, int e, struct tsr_err *err)
{
	if (e == ENOENT || e == ESRCH)
		return tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "process %d has ended", (int)pid);
	return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
			   "process %d cannot be inspected (%s)", (int)pid, strerror(e));
}

/* Whether link (read from /proc/PID/exe) is the path canon with PROC_DELETED after it. */
static int proc_deleted_path(const char *link, const char *canon)
{
	size_t n = strlen(canon);

	return strncmp(link, canon, n) == 0 && strcmp(link + n, PROC_DELETED) == 0;
}

/* The program part of proc_runs. */
static int proc_exe_is(pid_t pid, const char *exe, struct tsr_err *err)
{
	char path[64], link[PATH_MAX + sizeof(PROC_DELETED)], canon[PATH_MAX];
	char shown[TSR_ERR_MSG_MAX / 2];
	struct stat ps, es;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	if (stat(path, &ps) != 0)
		return proc_unreadable(pid, errno, err);
	if (stat(exe, &es) == 0 && ps.st_dev == es.st_dev && ps.st_ino == es.st_ino)
		return 0;
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return proc_unreadable(pid, errno, err);
	link[n] = '\0';
	if (ps.st_nlink == 0 && realpath(exe, canon) != NULL && proc_deleted_path(link, canon))
		return 0;
	/* Whoever made that process chose the path: it reaches logs and clients escaped. */
	utf8_escape(link, (size_t)n, shown, sizeof(shown));
	return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION, "process %d runs %s", (int)pid,
			   shown);
}

/* Reads pid's command line into buf (len), *n bytes; see PROC_CMDLINE_TRIES. */
static int proc_cmdline(pid_t pid, char *buf, size_t len, size_t *n, struct tsr_err *err)
{
	const struct timespec wait = { .tv_nsec = PROC_CMDLINE_WAIT_MS * 1000000L };
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	for (int i = 0; i < PROC_CMDLINE_TRIES; i++) {
		if (proc_read(path, buf, len, n) != 0)
			return proc_unreadable(pid, errno, err);
		if (*n > 0)
			return 0;
		nanosleep(&wait, NULL);
	}
	return proc_unreadable(pid, ENOENT, err);
}

/* The argument part of proc_runs. */
static int proc_arg1_is(pid_t pid, const char *arg1, struct tsr_err *err)
{
	char buf[PROC_CMDLINE_MAX];
	const char *a, *end;
	size_t n;

	if (proc_cmdline(pid, buf, sizeof(buf), &n, err) != 0)
		return -1;
	/* argv[1] lies between the first two NULs read, both within the bound. */
	end = buf + n;
	a = memchr(buf, '\0', n);
	if (a != NULL && memchr(a + 1, '\0', (size_t)(end - (a + 1))) != NULL &&
	    strcmp(a + 1, arg1) == 0)
		return 0;
	return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
			   "process %d was started with another first argument", (int)pid);
}

int proc_runs(pid_t pid, const char *exe, const char *arg1, struct tsr_err *err)
{
	if (pid <= 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid pid %d", (int)pid);
	if (proc_exe_is(pid, exe, err) != 0)
		return -1;
	return proc_arg1_is(pid, arg1, err);
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
