/*
 * test_shim_launch: real children of shim_launch, each test run by clone3
 * (where this host lets the launcher use it) and by glibc's clone. What a
 * child gets: fds 0-3 as asked (stdin /dev/null or a given fd, even one
 * already at 0), no other fd whether it sits below or far above the ones
 * it keeps, its own session, the working directory, the environment, a
 * pidfd that is its own; and failures (no such program, no such
 * directory) that say which step failed and leave no child and no pidfd.
 * Starting in a cgroup is tested in test_agent_cgroup.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "shim_launch.h"

/* A child's report: ls of its fds, its sid and pid, its cwd, $T. */
#define PROBE                                                               \
	"exec >&3; ls /proc/self/fd | tr '\\n' ' '; echo; "                 \
	"set -- $(cut -d' ' -f6 /proc/self/stat); echo \"sid=$1 pid=$$\"; " \
	"pwd; echo \"T=$T\"; cat <&0"

#define BY_CLONE3 0 /* the loop index of a test run by clone3; 1: by clone */

static struct shim_launcher ln;
static char dir[64];

/* In each test: the launcher made to start children by way (BY_CLONE3 or not). */
static void launch_by(int way)
{
	ln.clone3 = ln.clone3 && way == BY_CLONE3;
}

static void setup(void)
{
	struct tsr_err err;

	snprintf(dir, sizeof(dir), "/tmp/tessera-launch.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_msg(shim_launcher_init(&ln, &err) == 0, "%s", err.msg);
}

/* The child's pidfd is its own: a signal through it ends that process. */
static void pidfd_is(const struct shim_child *child)
{
	int status;

	ck_assert_int_ge(child->pidfd, 0);
	ck_assert_int_ne(fcntl(child->pidfd, F_GETFD) & FD_CLOEXEC, 0);
	ck_assert_int_eq(syscall(SYS_pidfd_send_signal, child->pidfd, SIGKILL, NULL, 0), 0);
	ck_assert_int_eq(waitpid(child->pid, &status, 0), child->pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(child->pidfd);
}

static void teardown(void)
{
	char cmd[96];

	shim_launcher_free(&ln);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A pipe whose ends are moved to fds at or above min, both O_CLOEXEC. */
static void pipe_at(int p[2], int min)
{
	int q[2];

	ck_assert_int_eq(pipe2(q, O_CLOEXEC), 0);
	for (int i = 0; i < 2; i++) {
		p[i] = fcntl(q[i], F_DUPFD_CLOEXEC, min);
		ck_assert_int_ge(p[i], min);
		close(q[i]);
	}
}

/* Launches sh -c PROBE with stdin_fd and a report pipe as the gate; its report into buf. */
static void probe(int stdin_fd, const char *workdir, char *buf, size_t len)
{
	char *argv[] = { "/bin/sh", "-c", PROBE, NULL };
	char *envp[] = { "T=42", "PATH=/usr/bin:/bin", NULL };
	struct shim_launch l = { "/bin/sh", argv, envp, stdin_fd, -1, -1, workdir, -1 };
	struct shim_child child;
	int rep[2], status;
	struct tsr_err err;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	pipe_at(rep, 4);
	l.gate_fd = rep[1];
	l.out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(l.out_fd, 0);
	if (l.out_fd <= SHIM_LAUNCH_GATE_FD) {
		int f = fcntl(l.out_fd, F_DUPFD_CLOEXEC, SHIM_LAUNCH_GATE_FD + 1);

		close(l.out_fd);
		l.out_fd = f;
	}
	ck_assert_msg(shim_launch(&ln, &l, &child, &err) == 0, "%s", err.msg);
	ck_assert(!child.in_cgroup);
	pid = child.pid;
	close(child.pidfd);
	close(rep[1]);
	close(l.out_fd);
	while (got + 1 < len && (n = read(rep[0], buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(rep[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Its own session: it leads it. */
	{
		char want[64];

		snprintf(want, sizeof(want), "sid=%d pid=%d\n", (int)pid, (int)pid);
		ck_assert_msg(strstr(buf, want) != NULL, "%s", buf);
	}
}

START_TEST(test_fds_session_cwd_env)
{
	int low = open("/dev/null", O_RDONLY), high, in;
	char buf[512], want[128];

	launch_by(_i);
	/* Leaked without O_CLOEXEC, one low and one far above the kept ones. */
	ck_assert_int_ge(low, 0);
	high = fcntl(low, F_DUPFD, 900);
	ck_assert_int_ge(high, 900);
	in = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(in, 0);
	probe(in, dir, buf, sizeof(buf));
	/* ls sees 0-3 and the fd it reads the directory with. */
	ck_assert_msg(strncmp(buf, "0 1 2 3 4 \n", 11) == 0, "%s", buf);
	snprintf(want, sizeof(want), "\n%s\nT=42\n", dir);
	ck_assert_msg(strstr(buf, want) != NULL, "%s", buf);
	close(in);

	/* No stdin given: /dev/null, so its cat reads nothing. */
	probe(-1, NULL, buf, sizeof(buf));
	ck_assert_msg(strstr(buf, "T=42\n") != NULL && strstr(buf, "T=42\n")[5] == '\0', "%s", buf);
	close(low);
	close(high);
}
END_TEST

/* A stdin already at fd 0 stays open across exec, though it is O_CLOEXEC. */
START_TEST(test_stdin_at_zero)
{
	int saved = fcntl(0, F_DUPFD_CLOEXEC, 10), in;
	char buf[512];

	launch_by(_i);
	ck_assert_int_ge(saved, 0);
	close(0);
	in = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(in, 0);
	probe(in, NULL, buf, sizeof(buf));
	close(0);
	ck_assert_int_eq(dup2(saved, 0), 0);
	close(saved);
	ck_assert_msg(strstr(buf, "T=42\n")[5] != '\0', "no stdin read: %s", buf);
}
END_TEST

/* A step that fails: said by name, with errno's text, and no child is left. */
START_TEST(test_failures)
{
	char *argv[] = { "/nonexistent/prog", NULL };
	char *envp[] = { NULL };
	char missing[96];
	struct shim_launch l = { "/nonexistent/prog", argv, envp, -1, -1, -1, NULL, -1 };
	struct shim_child child;
	struct tsr_err err;
	int p[2], fd;

	launch_by(_i);
	pipe_at(p, 4);
	l.out_fd = p[1];
	l.gate_fd = p[0];
	ck_assert_int_eq(shim_launch(&ln, &l, &child, &err), -1);
	ck_assert_str_eq(err.msg, "exec: No such file or directory");
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
	ck_assert_int_eq(errno, ECHILD);
	ck_assert_int_eq(child.pidfd, -1);
	/* No pidfd left open either: the lowest free fd is where it was. */
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_lt(fd, p[0]);
	close(fd);

	snprintf(missing, sizeof(missing), "%s/gone", dir);
	argv[0] = "/bin/true";
	l.path = "/bin/true";
	l.workdir = missing;
	ck_assert_int_eq(shim_launch(&ln, &l, &child, &err), -1);
	ck_assert_str_eq(err.msg, "chdir: No such file or directory");
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* A child that runs: its pid, and a pidfd that reaches it. */
START_TEST(test_pidfd)
{
	char *argv[] = { "/bin/sleep", "60", NULL };
	char *envp[] = { NULL };
	struct shim_launch l = { "/bin/sleep", argv, envp, -1, -1, -1, NULL, -1 };
	struct shim_child child;
	struct tsr_err err;
	int p[2];

	launch_by(_i);
	pipe_at(p, 4);
	l.out_fd = p[1];
	l.gate_fd = p[0];
	ck_assert_msg(shim_launch(&ln, &l, &child, &err) == 0, "%s", err.msg);
	close(p[0]);
	close(p[1]);
	ck_assert(!child.in_cgroup);
	ck_assert_int_gt(child.pid, 0);
	pidfd_is(&child);
}
END_TEST

int test_suite(SRunner *sr)
{
	struct tsr_err err;
	TCase *tc;

	if (shim_launch_check(&err) != 0) {
		fprintf(stderr, "%s: skipped\n", err.msg);
		return 77;
	}
	tc = check_suite(sr, "shim_launch", NULL, 0);
	/* Loop index BY_CLONE3, then by clone. */
	tcase_add_loop_test(tc, test_fds_session_cwd_env, 0, 2);
	tcase_add_loop_test(tc, test_stdin_at_zero, 0, 2);
	tcase_add_loop_test(tc, test_failures, 0, 2);
	tcase_add_loop_test(tc, test_pidfd, 0, 2);
	tcase_add_checked_fixture(tc, setup, teardown);
	return 0;
}
