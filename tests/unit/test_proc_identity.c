/*
 * test_proc_identity: the boot id (as /proc has it, and the shape check),
 * process start times (of this process and of a child, a command name
 * with spaces and parentheses, refusals for bad and vanished pids), the
 * PID namespace (its inode and its pid 1's start time: shared with a
 * child, both others in a new namespace), and whether a process runs a
 * given program with a given first argument (the same file however
 * spelled, or the deleted one an upgrade replaced; another program or
 * argument, an ended or zombie process, and a process just spawned,
 * whose arguments are not in place yet when posix_spawn returns).
 */
#include <check.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "proc_identity.h"

#define SPAWN_ROUNDS 20 /* spawns checked at once, each in its exec's window */

extern char **environ;

START_TEST(test_boot_id)
{
	char id[PROC_BOOT_ID_LEN + 1], raw[64] = "";
	struct tsr_err err;
	FILE *f;

	ck_assert_msg(proc_boot_id(id, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(strlen(id), PROC_BOOT_ID_LEN);
	ck_assert(proc_boot_id_valid(id));
	f = fopen("/proc/sys/kernel/random/boot_id", "re");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(raw, sizeof(raw), f));
	fclose(f);
	raw[strcspn(raw, "\n")] = '\0';
	ck_assert_str_eq(id, raw);
}
END_TEST

START_TEST(test_boot_id_valid)
{
	ck_assert(proc_boot_id_valid("0123abcd-4567-89ef-0123-456789abcdef"));
	ck_assert(!proc_boot_id_valid("0123ABCD-4567-89ef-0123-456789abcdef"));
	ck_assert(!proc_boot_id_valid("0123abcd-4567-89ef-0123-456789abcde"));
	ck_assert(!proc_boot_id_valid("0123abcd-4567-89ef-0123-456789abcdef0"));
	ck_assert(!proc_boot_id_valid("0123abcd04567-89ef-0123-456789abcdef"));
	ck_assert(!proc_boot_id_valid("0123abcd-4567-89ef-0123-456789abcde-"));
	ck_assert(!proc_boot_id_valid("0123abcg-4567-89ef-0123-456789abcdef"));
	ck_assert(!proc_boot_id_valid(""));
}
END_TEST

static pid_t child_paused(const char *name)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (name != NULL)
			prctl(PR_SET_NAME, name);
		pause();
		_exit(0);
	}
	return pid;
}

static void child_end(pid_t pid)
{
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}

START_TEST(test_start_ticks)
{
	uint64_t self = 0, child = 0, again = 0;
	struct tsr_err err;
	pid_t pid;

	ck_assert_msg(proc_start_ticks(getpid(), &self, &err) == 0, "%s", err.msg);
	ck_assert_uint_gt(self, 0);
	pid = child_paused(NULL);
	ck_assert_msg(proc_start_ticks(pid, &child, &err) == 0, "%s", err.msg);
	ck_assert_uint_ge(child, self);
	ck_assert_int_eq(proc_start_ticks(pid, &again, &err), 0);
	ck_assert_uint_eq(again, child);
	child_end(pid);
	/* Reaped: nothing by that pid any more. */
	ck_assert_int_eq(proc_start_ticks(pid, &again, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
}
END_TEST

/* Field 2 may hold ") (" and spaces: the fields count from its last ')'. */
START_TEST(test_odd_command_name)
{
	uint64_t before = 0, after = 0;
	struct tsr_err err;
	pid_t pid = child_paused(NULL), odd;

	ck_assert_int_eq(proc_start_ticks(pid, &before, &err), 0);
	child_end(pid);
	odd = child_paused("a) 1 2 (b) c");
	/* The name is set by the child itself: wait until /proc shows it. */
	for (int i = 0; i < 200; i++) {
		char path[64], comm[32] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/comm", (int)odd);
		f = fopen(path, "re");
		ck_assert_ptr_nonnull(f);
		ck_assert_ptr_nonnull(fgets(comm, sizeof(comm), f));
		fclose(f);
		if (strncmp(comm, "a) 1 2 (b) c", 12) == 0)
			break;
		usleep(5000);
	}
	ck_assert_msg(proc_start_ticks(odd, &after, &err) == 0, "%s", err.msg);
	/* Read from the wrong field it would be a small count, not this start time. */
	ck_assert_uint_ge(after, before);
	ck_assert_uint_le(after, before + 1000);
	child_end(odd);
}
END_TEST

START_TEST(test_bad_pid)
{
	uint64_t t;
	struct tsr_err err;

	ck_assert_int_eq(proc_start_ticks(0, &t, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(proc_start_ticks(-5, &t, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	/* Above pid_max (at most 2^22): never a process. */
	ck_assert_int_eq(proc_start_ticks(1 << 23, &t, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
}
END_TEST

/* The inode /proc gives for pid's PID namespace. */
static uint64_t ns_inode(pid_t pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
	return (uint64_t)st.st_ino;
}

START_TEST(test_pid_ns)
{
	struct proc_pid_ns ns = { 0 }, again = { 0 };
	struct tsr_err err;
	uint64_t ticks;
	pid_t pid;

	ck_assert_msg(proc_pid_ns(&ns, &err) == 0, "%s", err.msg);
	ck_assert_uint_ne(ns.ino, 0);
	ck_assert_uint_eq(ns.ino, ns_inode(getpid()));
	ck_assert_int_eq(proc_start_ticks(1, &ticks, &err), 0);
	ck_assert_uint_eq(ns.init_ticks, ticks);
	ck_assert_int_eq(proc_pid_ns(&again, &err), 0);
	ck_assert_uint_eq(again.ino, ns.ino);
	ck_assert_uint_eq(again.init_ticks, ns.init_ticks);
	/* A child, as a shim is, shares it. */
	pid = child_paused(NULL);
	ck_assert_uint_eq(ns_inode(pid), ns.ino);
	child_end(pid);
}
END_TEST

/*
 * A new PID namespace's pid 1, with a /proc of its own as after a
 * container restart, reads another inode and another init start time
 * (its own). Making one needs CAP_SYS_ADMIN: without it, said and not
 * checked.
 */
START_TEST(test_pid_ns_other)
{
	struct proc_pid_ns ns = { 0 }, other = { 0 };
	struct tsr_err err;
	int fds[2], status;
	pid_t pid, inner;

	ck_assert_int_eq(proc_pid_ns(&ns, &err), 0);
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* The namespace is for the children to come: the first is its pid 1. */
		if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0)
			_exit(errno == EPERM ? 77 : 1);
		inner = fork();
		if (inner == 0) {
			ssize_t n = -1;

			/* Private first: the new /proc must not show through to ours. */
			if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
			    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
				  NULL) != 0)
				_exit(errno == EPERM || errno == EACCES ? 77 : 1);
			if (proc_pid_ns(&other, &err) == 0)
				n = write(fds[1], &other, sizeof(other));
			_exit(n == (ssize_t)sizeof(other) ? 0 : 1);
		}
		if (inner < 0 || waitpid(inner, &status, 0) != inner || !WIFEXITED(status))
			_exit(1);
		_exit(WEXITSTATUS(status));
	}
	close(fds[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		fprintf(stderr, "no new PID namespace without CAP_SYS_ADMIN: not checked\n");
		close(fds[0]);
		return;
	}
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(read(fds[0], &other, sizeof(other)), (ssize_t)sizeof(other));
	close(fds[0]);
	ck_assert_uint_ne(other.ino, 0);
	ck_assert_uint_ne(other.ino, ns.ino);
	ck_assert_uint_ne(other.init_ticks, ns.init_ticks);
}
END_TEST

/* prog started as "prog arg" (posix_spawn, like the supervisor's shim): its pid. */
static pid_t run(const char *prog, const char *arg)
{
	char *argv[] = { (char *)prog, (char *)arg, NULL };
	pid_t pid;

	ck_assert_int_eq(posix_spawn(&pid, prog, NULL, NULL, argv, environ), 0);
	return pid;
}

/* proc_runs(pid, exe, arg1): its result, and the code and message into *err. */
static int runs(pid_t pid, const char *exe, const char *arg1, struct tsr_err *err)
{
	tsr_err_clear(err);
	return proc_runs(pid, exe, arg1, err);
}

START_TEST(test_runs)
{
	struct tsr_err err;
	pid_t pid = run("/bin/sleep", "30");

	ck_assert_msg(runs(pid, "/bin/sleep", "30", &err) == 0, "%s", err.msg);
	/* The same file by another path (and through a symlink: /bin on merged /usr). */
	ck_assert_msg(runs(pid, "/bin/../bin/./sleep", "30", &err) == 0, "%s", err.msg);
	ck_assert_int_eq(runs(pid, "/bin/cat", "30", &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_msg(strstr(err.msg, " runs /") != NULL && strstr(err.msg, "sleep") != NULL, "%s",
		      err.msg);
	ck_assert_int_eq(runs(pid, "/bin/sleep", "3", &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_ptr_nonnull(strstr(err.msg, "another first argument"));
	ck_assert_int_eq(runs(pid, "/bin/sleep", "30x", &err), -1);
	ck_assert_int_eq(runs(pid, "/nonexistent/sleep", "30", &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_FAILED_PRECONDITION);
	/* A zombie has no program any more, nor has a reaped process. */
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitid(P_PID, (id_t)pid, NULL, WEXITED | WNOWAIT), 0);
	ck_assert_int_eq(runs(pid, "/bin/sleep", "30", &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	ck_assert_int_eq(runs(pid, "/bin/sleep", "30", &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_int_eq(runs(0, "/bin/sleep", "30", &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
}
END_TEST

/* cp SRC DST, by the shell: a program file of the test's own. */
static void copy_file(const char *src, const char *dst)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", src, dst);
	ck_assert_int_eq(system(cmd), 0);
}

/*
 * An upgrade replaces the program under a running process: the process
 * still runs the deleted file, which had the path now holding the new
 * one; that still counts, a deleted file of another path does not.
 */
START_TEST(test_runs_replaced)
{
	char dir[] = "/tmp/tsr-pi-XXXXXX", prog[64], next[64], other[64], cmd[96];
	struct tsr_err err;
	pid_t pid, pother;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(prog, sizeof(prog), "%s/prog", dir);
	snprintf(next, sizeof(next), "%s/prog.new", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	copy_file("/bin/sleep", prog);
	copy_file("/bin/sleep", other);
	pid = run(prog, "30");
	pother = run(other, "30");
	ck_assert_msg(runs(pid, prog, "30", &err) == 0, "%s", err.msg);
	copy_file("/bin/sleep", next);
	ck_assert_int_eq(rename(next, prog), 0);
	ck_assert_msg(runs(pid, prog, "30", &err) == 0, "%s", err.msg);
	ck_assert_int_eq(unlink(other), 0);
	ck_assert_int_eq(runs(pother, prog, "30", &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_ptr_nonnull(strstr(err.msg, "(deleted)"));
	child_end(pother);
	/* A path its maker chose comes out escaped: no terminal control, valid UTF-8. */
	snprintf(other, sizeof(other), "%s/e\x1b[2J\xff", dir);
	copy_file("/bin/sleep", other);
	pother = run(other, "30");
	ck_assert_int_eq(runs(pother, prog, "30", &err), -1);
	ck_assert_msg(strstr(err.msg, "/e\\x1b[2J\\xff") != NULL, "%s", err.msg);
	child_end(pid);
	child_end(pother);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/*
 * posix_spawn returns before the child's arguments are in place (its exec
 * wakes the parent early): read at once, a command line may still be
 * empty, which must not pass for "another first argument".
 */
START_TEST(test_runs_just_spawned)
{
	pid_t pids[SPAWN_ROUNDS];
	struct tsr_err err;

	for (int i = 0; i < SPAWN_ROUNDS; i++) {
		pids[i] = run("/bin/sleep", "30");
		ck_assert_msg(runs(pids[i], "/bin/sleep", "30", &err) == 0, "round %d: %s", i,
			      err.msg);
	}
	for (int i = 0; i < SPAWN_ROUNDS; i++)
		child_end(pids[i]);
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "proc_identity",
		    CHECK_TESTS(test_boot_id, test_boot_id_valid, test_start_ticks,
				test_odd_command_name, test_bad_pid, test_pid_ns, test_pid_ns_other,
				test_runs, test_runs_replaced, test_runs_just_spawned));
	return 0;
}
