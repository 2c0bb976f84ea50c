/*
 * test_agent_cgroup: opening on this host (enabled as root beside a
 * writable cgroup2 mount, and then on the cgroup this process is in; else
 * off with a reason), refusals (turned off, and then every call a no-op;
 * a directory that is not a cgroup, a relative, missing or overlong path,
 * a symbolic link to a cgroup), and in a base cgroup the test makes under
 * the cgroup2 mount: opening it leaves no probe behind, an agent's cgroup
 * made twice, a child and its double-forked grandchild in a session of
 * its own both inside and both SIGKILLed by one kill, populated before
 * and after, removal refused while populated, and each call on a missing
 * cgroup; a shim launched into an agent's cgroup, by clone3 and by clone;
 * a supervisor whose agents' cgroups cannot be made, and one whose shims
 * start in theirs, or are moved there under a seccomp filter refusing
 * clone3. Where no cgroup2 mount can be written here, or the kernel has
 * no cgroup.kill, those last are skipped with a note.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent_cgroup.h"
#include "agent_types.h"
#include "check_main.h"
#include "ids.h"
#include "shim_launch.h"
#include "supervisor.h"

#define LINE_MAX_ 8192	  /* a line of /proc/self/mountinfo or /proc/PID/cgroup */
#define POLL_ROUNDS 200	  /* of POLL_NS each: 2 s */
#define POLL_NS 10000000L /* 10 ms */

static char base[AGENT_CGROUP_PATH_MAX]; /* the test's base cgroup, made by cg_setup */
static const char *skip_note;		 /* why the tests in a base cgroup are skipped */

static void nap(void)
{
	struct timespec ts = { .tv_nsec = POLL_NS };

	nanosleep(&ts, NULL);
}

/* The cgroup2 mount point, into mnt (len bytes); false if there is none. */
static bool cgroup2_mount(char *mnt, size_t len)
{
	char line[LINE_MAX_], point[LINE_MAX_];
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	ck_assert_ptr_nonnull(f);
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, " - cgroup2 ") != NULL &&
			sscanf(line, "%*s %*s %*s %*s %8191s", point) == 1 &&
			(size_t)snprintf(mnt, len, "%s", point) < len;
	fclose(f);
	return found;
}

/* In the runner, before the tests: BASE = the cgroup2 mount/tsr-test-PID, or a skip note. */
static void cg_setup(void)
{
	char mnt[AGENT_CGROUP_PATH_MAX - 32], kill_file[AGENT_CGROUP_PATH_MAX + 16];

	if (!cgroup2_mount(mnt, sizeof(mnt))) {
		skip_note = "no cgroup2 mount";
		return;
	}
	snprintf(base, sizeof(base), "%s/tsr-test-%ld", mnt, (long)getpid());
	if (mkdir(base, 0755) != 0) {
		ck_assert_msg(errno == EACCES || errno == EROFS || errno == ENOENT, "%s: %s", base,
			      strerror(errno));
		skip_note = "cannot make a cgroup under the cgroup2 mount";
		base[0] = '\0';
		return;
	}
	snprintf(kill_file, sizeof(kill_file), "%s/cgroup.kill", base);
	if (access(kill_file, F_OK) != 0 && errno == ENOENT) {
		skip_note = "the kernel has no cgroup.kill";
		ck_assert_int_eq(rmdir(base), 0);
		base[0] = '\0';
	}
}

/* Writes text to dir/file; -1 with errno if it cannot. */
static int put(const char *dir, const char *file, const char *text)
{
	char path[AGENT_CGROUP_PATH_MAX + 64];
	ssize_t n;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -1;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Whether dir/cgroup.events says populated 1. */
static bool dir_populated(const char *dir)
{
	char path[AGENT_CGROUP_PATH_MAX + 64], buf[256];
	size_t n;
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path), "%s/cgroup.events", dir) >= sizeof(path))
		return false;
	f = fopen(path, "re");
	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return strstr(buf, "populated 1") != NULL;
}

/*
 * In the runner, after the tests, passed or not (each runs in a process
 * of its own, which a failure ends): whatever they left in BASE is
 * killed, and BASE and the cgroups in it removed.
 */
static void cg_teardown(void)
{
	char sub[AGENT_CGROUP_PATH_MAX + 300];
	struct dirent *de;
	DIR *d;

	if (base[0] == '\0')
		return;
	d = opendir(base);
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", base, de->d_name);
		put(sub, "cgroup.kill", "1");
		for (int i = 0; i < POLL_ROUNDS && dir_populated(sub); i++)
			nap();
		if (rmdir(sub) != 0)
			fprintf(stderr, "cannot remove %s: %s\n", sub, strerror(errno));
	}
	if (d != NULL)
		closedir(d);
	if (rmdir(base) != 0)
		fprintf(stderr, "cannot remove %s: %s\n", base, strerror(errno));
	base[0] = '\0';
}

/* Whether the test can run in BASE; if not, says why once per test. */
static bool have_base(void)
{
	if (skip_note != NULL)
		fprintf(stderr, "%s: the cgroup is not exercised\n", skip_note);
	return skip_note == NULL;
}

static void new_id(char *id)
{
	ck_assert_int_eq(ids_new_agent_id("s1", id, TSR_AGENT_ID_MAX + 1), 0);
}

/* Whether pid is listed in dir/cgroup.procs. */
static bool listed(const char *dir, pid_t pid)
{
	char path[AGENT_CGROUP_PATH_MAX + 64];
	bool found = false;
	long p;
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	while (!found && fscanf(f, "%ld", &p) == 1)
		found = p == (long)pid;
	fclose(f);
	return found;
}

/* Whether pid's cgroup v2 path ends in "/tail". */
static bool in_cgroup(pid_t pid, const char *tail)
{
	char path[64], line[LINE_MAX_], *end = NULL;
	size_t n, t = strlen(tail);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/cgroup", (long)pid);
	f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	while (end == NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "0::", 3) == 0)
			end = line + strcspn(line, "\n");
	fclose(f);
	ck_assert_ptr_nonnull(end);
	*end = '\0';
	n = (size_t)(end - line);
	return n > t + 1 && end[-(long)t - 1] == '/' && strcmp(end - t, tail) == 0;
}

/* Makes the agent's cgroup; the directory it opens is that cgroup's. */
static void made(const struct agent_cgroup *cg, const char *id)
{
	char path[AGENT_CGROUP_PATH_MAX + 64];
	struct stat a, b;
	struct tsr_err err;
	int dirfd = -1;

	ck_assert_msg(agent_cgroup_create(cg, id, &dirfd, &err) == 0, "%s", err.msg);
	ck_assert_int_ge(dirfd, 0);
	ck_assert_int_ne(fcntl(dirfd, F_GETFD) & FD_CLOEXEC, 0);
	snprintf(path, sizeof(path), "%s/agent-%s", cg->base, id);
	ck_assert_int_eq(fstat(dirfd, &a), 0);
	ck_assert_int_eq(stat(path, &b), 0);
	ck_assert(S_ISDIR(a.st_mode) && a.st_dev == b.st_dev && a.st_ino == b.st_ino);
	close(dirfd);
}

/* Reaps pid, which must end by SIGKILL within POLL_ROUNDS. */
static void reaped_killed(pid_t pid)
{
	int status = 0;
	pid_t r = 0;

	for (int i = 0; i < POLL_ROUNDS && r == 0; i++) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == 0)
			nap();
	}
	ck_assert_msg(r == pid, "pid %ld was not reaped: %s", (long)pid,
		      r < 0 ? strerror(errno) : "still running");
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(WTERMSIG(status), SIGKILL);
	ck_assert_int_eq(kill(pid, 0), -1);
}

START_TEST(test_open_host)
{
	char why[AGENT_CGROUP_WHY_MAX], probe[AGENT_CGROUP_PATH_MAX + 64];
	struct agent_cgroup cg;
	struct tsr_err err;

	ck_assert_msg(agent_cgroup_open(&cg, false, why, sizeof(why), &err) == 0, "%s", err.msg);
	if (!cg.enabled) {
		ck_assert_str_ne(why, "");
		ck_assert_int_eq(cg.dirfd, -1);
		ck_assert_msg(skip_note != NULL || geteuid() != 0,
			      "off as root beside a writable cgroup2 mount: %s", why);
		fprintf(stderr, "agent cgroups are off on this host: %s\n", why);
		return;
	}
	ck_assert_str_eq(why, "");
	ck_assert_int_ge(cg.dirfd, 0);
	/* The base is the cgroup this process is in, and the probe is gone from it. */
	ck_assert_msg(listed(cg.base, getpid()), "%s", cg.base);
	snprintf(probe, sizeof(probe), "%s/tessera-probe-%ld", cg.base, (long)getpid());
	ck_assert_int_eq(access(probe, F_OK), -1);
	ck_assert_int_eq(errno, ENOENT);
	agent_cgroup_close(&cg);
	ck_assert(!cg.enabled);
	ck_assert_int_eq(cg.dirfd, -1);
}
END_TEST

/* cg is off with a reason, and every call on it does nothing. */
static void off(struct agent_cgroup *cg, const char *why)
{
	char id[TSR_AGENT_ID_MAX + 1];
	bool populated = true;
	struct tsr_err err;
	int dirfd = 0;

	ck_assert(!cg->enabled);
	ck_assert_int_eq(cg->dirfd, -1);
	ck_assert_str_ne(why, "");
	new_id(id);
	ck_assert_int_eq(agent_cgroup_create(cg, id, &dirfd, &err), 0);
	ck_assert_int_eq(dirfd, -1);
	ck_assert_int_eq(agent_cgroup_enter(cg, id, getpid(), &err), 0);
	ck_assert_int_eq(agent_cgroup_kill(cg, id, &err), 0);
	ck_assert_int_eq(agent_cgroup_populated(cg, id, &populated, &err), 0);
	ck_assert(!populated);
	ck_assert_int_eq(agent_cgroup_remove(cg, id, &err), 0);
	agent_cgroup_close(cg);
}

START_TEST(test_open_refused)
{
	char why[AGENT_CGROUP_WHY_MAX], dir[] = "/tmp/tsr-cg-XXXXXX", link[64];
	char longpath[AGENT_CGROUP_PATH_MAX + 1];
	struct agent_cgroup cg;
	struct tsr_err err;

	ck_assert_int_eq(agent_cgroup_open(&cg, true, why, sizeof(why), &err), 0);
	off(&cg, why);

	/* Not a cgroup: refused before anything is made in it. */
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(agent_cgroup_open_at(&cg, dir, why, sizeof(why), &err), 0);
	ck_assert_ptr_nonnull(strstr(why, "not in a cgroup2 file system"));
	off(&cg, why);

	ck_assert_int_eq(agent_cgroup_open_at(&cg, "sys/fs/cgroup", why, sizeof(why), &err), 0);
	off(&cg, why);
	ck_assert_int_eq(agent_cgroup_open_at(&cg, "/nonexistent-tsr-cg", why, sizeof(why), &err),
			 0);
	ck_assert_ptr_nonnull(strstr(why, "No such file"));
	off(&cg, why);
	longpath[0] = '/';
	memset(longpath + 1, 'c', AGENT_CGROUP_PATH_MAX - 1);
	longpath[AGENT_CGROUP_PATH_MAX] = '\0';
	ck_assert_int_eq(agent_cgroup_open_at(&cg, longpath, why, sizeof(why), &err), 0);
	off(&cg, why);

	/* A symbolic link, even to a cgroup, is not followed. */
	snprintf(link, sizeof(link), "%s/link", dir);
	ck_assert_int_eq(symlink(base[0] != '\0' ? base : "/sys/fs/cgroup", link), 0);
	ck_assert_int_eq(agent_cgroup_open_at(&cg, link, why, sizeof(why), &err), 0);
	off(&cg, why);
	ck_assert_int_eq(unlink(link), 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_open_at)
{
	char why[AGENT_CGROUP_WHY_MAX], probe[AGENT_CGROUP_PATH_MAX + 64];
	struct agent_cgroup cg;
	struct tsr_err err;

	if (!have_base())
		return;
	ck_assert_msg(agent_cgroup_open_at(&cg, base, why, sizeof(why), &err) == 0, "%s", err.msg);
	ck_assert_msg(cg.enabled, "%s", why);
	ck_assert_str_eq(why, "");
	ck_assert_str_eq(cg.base, base);
	snprintf(probe, sizeof(probe), "%s/tessera-probe-%ld", base, (long)getpid());
	ck_assert_int_eq(access(probe, F_OK), -1);
	/* A probe left by an earlier process of this pid is reused and removed. */
	ck_assert_int_eq(mkdir(probe, 0755), 0);
	agent_cgroup_close(&cg);
	ck_assert_msg(agent_cgroup_open_at(&cg, base, why, sizeof(why), &err) == 0, "%s", err.msg);
	ck_assert_msg(cg.enabled, "%s", why);
	ck_assert_int_eq(access(probe, F_OK), -1);
	agent_cgroup_close(&cg);
}
END_TEST

/*
 * In the child, entered once it reads a byte from go: a new session, a
 * middle process in another that forks the grandchild and ends, so the
 * grandchild is orphaned into the test process (a subreaper). Reports the
 * grandchild's pid, then a byte once the middle one is reaped; pauses.
 */
static void descend(int go, int report)
{
	pid_t mid, grand;
	int status;
	char c;

	if (read(go, &c, 1) != 1 || setsid() < 0)
		_exit(1);
	mid = fork();
	if (mid == 0) {
		if (setsid() < 0)
			_exit(1);
		grand = fork();
		if (grand == 0) {
			for (;;)
				pause();
		}
		_exit(grand > 0 && write(report, &grand, sizeof(grand)) == sizeof(grand) ? 0 : 1);
	}
	if (mid < 0 || waitpid(mid, &status, 0) != mid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0 || write(report, "r", 1) != 1)
		_exit(1);
	close(report);
	for (;;)
		pause();
}

START_TEST(test_kill_descendants)
{
	char why[AGENT_CGROUP_WHY_MAX], id[TSR_AGENT_ID_MAX + 1], tail[AGENT_CGROUP_PATH_MAX];
	const char *leaf;
	struct agent_cgroup cg;
	struct tsr_err err;
	bool populated = false;
	int go[2], report[2];
	pid_t child, grand;
	char c;

	if (!have_base())
		return;
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
	ck_assert_msg(agent_cgroup_open_at(&cg, base, why, sizeof(why), &err) == 0, "%s", err.msg);
	ck_assert_msg(cg.enabled, "%s", why);
	new_id(id);
	made(&cg, id);
	made(&cg, id);
	ck_assert_msg(agent_cgroup_populated(&cg, id, &populated, &err) == 0, "%s", err.msg);
	ck_assert(!populated);

	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(report), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		close(go[1]);
		close(report[0]);
		descend(go[0], report[1]);
	}
	close(go[0]);
	close(report[1]);
	ck_assert_msg(agent_cgroup_enter(&cg, id, child, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	ck_assert_int_eq(read(report[0], &grand, sizeof(grand)), (ssize_t)sizeof(grand));
	ck_assert_int_eq(read(report[0], &c, 1), 1);
	close(go[1]);
	close(report[0]);

	/* The grandchild left both the test's session and the child's: a group kill misses it. */
	leaf = strrchr(base, '/') + 1;
	snprintf(tail, sizeof(tail), "%s/agent-%s", leaf, id);
	ck_assert(in_cgroup(child, tail));
	ck_assert(in_cgroup(grand, tail));
	ck_assert_int_ne(getsid(grand), getsid(0));
	ck_assert_int_ne(getsid(grand), getsid(child));
	ck_assert_msg(agent_cgroup_populated(&cg, id, &populated, &err) == 0, "%s", err.msg);
	ck_assert(populated);
	ck_assert_int_eq(agent_cgroup_remove(&cg, id, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);

	ck_assert_msg(agent_cgroup_kill(&cg, id, &err) == 0, "%s", err.msg);
	reaped_killed(child);
	reaped_killed(grand);
	ck_assert_msg(agent_cgroup_populated(&cg, id, &populated, &err) == 0, "%s", err.msg);
	ck_assert(!populated);
	ck_assert_msg(agent_cgroup_remove(&cg, id, &err) == 0, "%s", err.msg);

	/* Gone now: each call on it is fine, but entering. */
	ck_assert_msg(agent_cgroup_remove(&cg, id, &err) == 0, "%s", err.msg);
	ck_assert_msg(agent_cgroup_kill(&cg, id, &err) == 0, "%s", err.msg);
	populated = true;
	ck_assert_msg(agent_cgroup_populated(&cg, id, &populated, &err) == 0, "%s", err.msg);
	ck_assert(!populated);
	ck_assert_int_eq(agent_cgroup_enter(&cg, id, getpid(), &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	agent_cgroup_close(&cg);
}
END_TEST

START_TEST(test_empty_and_missing)
{
	char why[AGENT_CGROUP_WHY_MAX], id[TSR_AGENT_ID_MAX + 1];
	struct agent_cgroup cg;
	struct tsr_err err;
	bool populated = true;

	if (!have_base())
		return;
	ck_assert_msg(agent_cgroup_open_at(&cg, base, why, sizeof(why), &err) == 0, "%s", err.msg);
	ck_assert_msg(cg.enabled, "%s", why);
	new_id(id);
	/* Never made. */
	ck_assert_msg(agent_cgroup_kill(&cg, id, &err) == 0, "%s", err.msg);
	ck_assert_msg(agent_cgroup_remove(&cg, id, &err) == 0, "%s", err.msg);
	ck_assert_msg(agent_cgroup_populated(&cg, id, &populated, &err) == 0, "%s", err.msg);
	ck_assert(!populated);
	/* Made, with nothing in it: a kill is fine, and so is removal. */
	made(&cg, id);
	ck_assert_msg(agent_cgroup_kill(&cg, id, &err) == 0, "%s", err.msg);
	ck_assert_msg(agent_cgroup_populated(&cg, id, &populated, &err) == 0, "%s", err.msg);
	ck_assert(!populated);
	/* A pid that is no process. */
	ck_assert_int_eq(agent_cgroup_enter(&cg, id, 0x3fffffff, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_msg(agent_cgroup_remove(&cg, id, &err) == 0, "%s", err.msg);
	agent_cgroup_close(&cg);
}
END_TEST

/*
 * From now on clone3 fails ENOSYS in this process and what it starts, as
 * under Docker's default seccomp profile. The filter checks no
 * architecture: it only ever refuses, and only this one call.
 */
static void refuse_clone3(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	ck_assert_int_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	ck_assert_int_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
}

static atomic_int sv_exits; /* exits reported to sv_counted */

static void sv_counted(void *arg, const struct supervisor_exit *ex)
{
	(void)arg, (void)ex;
	atomic_fetch_add(&sv_exits, 1);
}

/*
 * shim_launch with an agent's cgroup: by clone3 (where this host lets the
 * launcher use it) the child starts inside, and says so; by clone it
 * starts where this process is, and says it is not inside.
 */
START_TEST(test_launch_in_cgroup)
{
	char *argv[] = { "/bin/sleep", "60", NULL };
	char *envp[] = { NULL };
	char why[AGENT_CGROUP_WHY_MAX], id[TSR_AGENT_ID_MAX + 1], tail[AGENT_CGROUP_PATH_MAX];
	struct shim_launch l = { "/bin/sleep", argv, envp, -1, -1, -1, NULL, -1 };
	struct shim_launcher ln;
	struct shim_child child;
	struct agent_cgroup cg;
	struct tsr_err err;
	int p[2], status;

	if (!have_base())
		return;
	ck_assert_msg(agent_cgroup_open_at(&cg, base, why, sizeof(why), &err) == 0, "%s", err.msg);
	ck_assert_msg(cg.enabled, "%s", why);
	ck_assert_msg(shim_launcher_init(&ln, &err) == 0, "%s", err.msg);
	if (!ln.clone3)
		fprintf(stderr,
			"# clone3 cannot be used here: only the start by clone is tested\n");
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	l.out_fd = fcntl(p[1], F_DUPFD_CLOEXEC, 4);
	l.gate_fd = fcntl(p[0], F_DUPFD_CLOEXEC, 4);
	for (int way = 0; way < 2; way++) {
		ln.clone3 = ln.clone3 && way == 0;
		new_id(id);
		ck_assert_msg(agent_cgroup_create(&cg, id, &l.cgroup_fd, &err) == 0, "%s", err.msg);
		ck_assert_msg(shim_launch(&ln, &l, &child, &err) == 0, "%s", err.msg);
		close(l.cgroup_fd);
		snprintf(tail, sizeof(tail), "%s/agent-%s", strrchr(base, '/') + 1, id);
		ck_assert_int_eq(child.in_cgroup, ln.clone3);
		ck_assert_int_eq(in_cgroup(child.pid, tail), ln.clone3);
		ck_assert_int_eq(kill(child.pid, SIGKILL), 0);
		ck_assert_int_eq(waitpid(child.pid, &status, 0), child.pid);
		close(child.pidfd);
		ck_assert_msg(agent_cgroup_remove(&cg, id, &err) == 0, "%s", err.msg);
	}
	close(p[0]);
	close(p[1]);
	close(l.out_fd);
	close(l.gate_fd);
	shim_launcher_free(&ln);
	agent_cgroup_close(&cg);
}
END_TEST

/* Whether a launcher here starts children by clone3 (in their cgroups). */
static bool clone3_usable(void)
{
	struct shim_launcher ln;
	struct tsr_err err;
	bool usable;

	ck_assert_msg(shim_launcher_init(&ln, &err) == 0, "%s", err.msg);
	usable = ln.clone3;
	shim_launcher_free(&ln);
	return usable;
}

/*
 * A supervisor that gives agents cgroups under BASE: a shim whose cgroup
 * cannot be made is not started, nothing left of it; one whose can is in
 * it once contained, and leaves it with the cgroup removed after an
 * abort; it starts there where clone3 can be used. With refuse, clone3
 * fails ENOSYS in this process, as Docker's default seccomp profile has
 * it: the shim then starts outside its cgroup, and contain moves it in.
 */
static void supervise_in_cgroups(bool refuse)
{
	char *sleeper[] = { "agent", "sleeper", "stdin", "/bin/sleep", "60" };
	char why[AGENT_CGROUP_WHY_MAX], id[TSR_AGENT_ID_MAX + 1], tail[AGENT_CGROUP_PATH_MAX];
	char gone[AGENT_CGROUP_PATH_MAX + 128], dir[] = "/tmp/tsr-cg-XXXXXX", cmd[64];
	char out[sizeof(dir) + TSR_AGENT_ID_MAX + 8];
	const struct supervisor_timeout limit = { 0, 0 };
	struct supervisor_config cfg = { .max_agents = 2, .tail_bytes = 100 };
	struct agent_types types = { 0 };
	struct supervisor_proc proc;
	struct supervisor *sv = NULL;
	struct agent_cgroup cg;
	struct tsr_err err;
	int64_t started;

	ck_assert_msg(agent_cgroup_open_at(&cg, base, why, sizeof(why), &err) == 0, "%s", err.msg);
	ck_assert_msg(cg.enabled, "%s", why);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_msg(agent_types_add(&types, 5, sleeper, &err) == 0, "%s", err.msg);
	cfg.state_dir = dir;
	cfg.shim_path = getenv("TESSERA_SHIM");
	ck_assert_ptr_nonnull(cfg.shim_path);
	cfg.cgroup = &cg;
	if (refuse)
		refuse_clone3();
	ck_assert_msg(supervisor_start(&cfg, sv_counted, NULL, &sv, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(supervisor_starts_in_cgroups(sv), !refuse && clone3_usable());

	/* No cgroup can be made below BASE now. */
	ck_assert_int_eq(put(base, "cgroup.max.descendants", "0"), 0);
	new_id(id);
	ck_assert_int_eq(supervisor_spawn(sv, id, agent_types_find(&types, "sleeper"), "", 0,
					  &limit, &proc, &started, &err),
			 -1);
	ck_assert_msg(strstr(err.msg, "agent-") != NULL, "%s", err.msg);
	ck_assert_uint_eq(supervisor_count(sv), 0);
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
	snprintf(out, sizeof(out), "%s/%s.out", dir, id);
	ck_assert_int_eq(access(out, F_OK), -1);
	ck_assert_int_eq(supervisor_contain(sv, id, &err), -1);

	ck_assert_int_eq(put(base, "cgroup.max.descendants", "max"), 0);
	new_id(id);
	ck_assert_msg(supervisor_spawn(sv, id, agent_types_find(&types, "sleeper"), "", 0, &limit,
				       &proc, &started, &err) == 0,
		      "%s", err.msg);
	snprintf(tail, sizeof(tail), "%s/agent-%s", strrchr(base, '/') + 1, id);
	ck_assert_int_eq(in_cgroup(proc.pid, tail), !refuse && clone3_usable());
	ck_assert_msg(supervisor_contain(sv, id, &err) == 0, "%s", err.msg);
	ck_assert(in_cgroup(proc.pid, tail));
	ck_assert_int_eq(supervisor_abort(sv, id, &err), 0);
	for (int i = 0; i < POLL_ROUNDS && atomic_load(&sv_exits) == 0; i++)
		nap();
	ck_assert_int_eq(atomic_load(&sv_exits), 1);
	for (int i = 0; i < POLL_ROUNDS && supervisor_count(sv) != 0; i++)
		nap();
	ck_assert_uint_eq(supervisor_count(sv), 0);
	snprintf(gone, sizeof(gone), "%s/agent-%s", base, id);
	ck_assert_int_eq(access(gone, F_OK), -1);

	supervisor_stop(sv);
	agent_types_free(&types);
	agent_cgroup_close(&cg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_supervisor_contain)
{
	if (have_base())
		supervise_in_cgroups(false);
}
END_TEST

/* Check runs each test in a process of its own (CK_FORK): the filter stays there. */
START_TEST(test_supervisor_moves)
{
	const char *fork_mode = getenv("CK_FORK");

	if (fork_mode != NULL && strcmp(fork_mode, "no") == 0) {
		fprintf(stderr, "# CK_FORK=no: the test under a seccomp filter is skipped\n");
		return;
	}
	if (have_base())
		supervise_in_cgroups(true);
}
END_TEST

int test_suite(SRunner *sr)
{
	TCase *tc;

	tc = check_suite(sr, "agent_cgroup",
			 CHECK_TESTS(test_open_host, test_open_refused, test_open_at,
				     test_kill_descendants, test_empty_and_missing,
				     test_launch_in_cgroup, test_supervisor_contain,
				     test_supervisor_moves));
	tcase_add_unchecked_fixture(tc, cg_setup, cg_teardown);
	tcase_set_timeout(tc, 20);
	return 0;
}
