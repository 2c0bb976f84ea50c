/*
 * test_supervisor: real children through the supervisor (exit codes,
 * signals, kills with and without grace, task delivery, what the child
 * inherits, the cap, the output tail), agents that put a FIFO where their
 * exit is recorded (the supervisor goes on and says why the status is
 * unknown), adoption that refuses any process but the agent's own shim,
 * and the parsing of agent type lines.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_files.h"
#include "agent_types.h"
#include "check_main.h"
#include "clock.h"
#include "ids.h"
#include "proc_identity.h"
#include "spoke_fixture.h"
#include "supervisor.h"

#define EXITS_MAX 16
#define WAIT_MS 5000
#define SPAWNED_MAX 16
#define TAIL_TEST 100 /* output tail of these tests: small, to overflow it */
#define OUTPUT_COPY_MAX 4096

struct exit_rec {
	char agent_id[TSR_AGENT_ID_MAX + 1];
	char output[OUTPUT_COPY_MAX];
	struct supervisor_exit ex; /* ex.output points at output above */
};

/* Filled by on_exit on the reaper thread. */
static pthread_mutex_t exits_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t exits_cv = PTHREAD_COND_INITIALIZER;
static struct exit_rec exits[EXITS_MAX];
static size_t nexits;

/* Per test (checked fixture). */
static struct supervisor *sv;
static struct agent_types types;
static char dir[64];
static pid_t spawned[SPAWNED_MAX]; /* groups to SIGKILL in teardown, in case */
static size_t nspawned;

static void on_exit_cb(void *arg, const struct supervisor_exit *ex)
{
	pthread_mutex_lock(&exits_mu);
	if (nexits < EXITS_MAX) {
		snprintf(exits[nexits].agent_id, sizeof(exits[nexits].agent_id), "%s",
			 ex->agent_id);
		exits[nexits].ex = *ex;
		exits[nexits].ex.agent_id = exits[nexits].agent_id;
		snprintf(exits[nexits].output, sizeof(exits[nexits].output), "%s",
			 ex->output != NULL ? ex->output : "");
		exits[nexits].ex.output = exits[nexits].output;
		nexits++;
	}
	pthread_cond_broadcast(&exits_cv);
	pthread_mutex_unlock(&exits_mu);
}

/* The exit of agent_id, waiting up to WAIT_MS; fails the test without one. */
static struct supervisor_exit wait_exit(const char *agent_id)
{
	struct timespec ts;
	struct supervisor_exit ex = { 0 };
	bool found = false;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&exits_mu);
	while (!found) {
		for (size_t i = 0; i < nexits && !found; i++) {
			if (strcmp(exits[i].agent_id, agent_id) == 0) {
				ex = exits[i].ex;
				found = true;
			}
		}
		if (!found && pthread_cond_timedwait(&exits_cv, &exits_mu, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&exits_mu);
	ck_assert_msg(found, "no exit reported for %s", agent_id);
	return ex;
}

/* A slot goes once on_exit has returned, just after wait_exit saw its exit. */
static void wait_count(size_t n)
{
	for (int i = 0; i < WAIT_MS / 10 && supervisor_count(sv) != n; i++)
		usleep(10000);
	ck_assert_uint_eq(supervisor_count(sv), n);
}

static size_t exits_count(void)
{
	size_t n;

	pthread_mutex_lock(&exits_mu);
	n = nexits;
	pthread_mutex_unlock(&exits_mu);
	return n;
}

/* The state dir is the test's own folder; the shim is the one built beside the tests. */
static struct supervisor_config config(size_t max, size_t tail)
{
	const char *shim = getenv("TESSERA_SHIM");

	ck_assert_msg(shim != NULL, "set TESSERA_SHIM to the built tessera-shim");
	return (struct supervisor_config){
		.max_agents = max, .tail_bytes = tail, .state_dir = dir, .shim_path = shim
	};
}

static void start(size_t max)
{
	struct supervisor_config cfg = config(max, TAIL_TEST);
	struct tsr_err err;

	ck_assert_msg(supervisor_start(&cfg, on_exit_cb, NULL, &sv, &err) == 0, "%s", err.msg);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tsr-sv-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	nexits = 0;
	nspawned = 0;
	memset(&types, 0, sizeof(types));
}

static void teardown(void)
{
	char cmd[128];

	for (size_t i = 0; i < nspawned; i++)
		kill(-spawned[i], SIGKILL);
	supervisor_stop(sv);
	sv = NULL;
	agent_types_free(&types);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Adds a type from words (NULL-ended, "agent" first) and returns it. */
static const struct agent_type *type_add(const char **words)
{
	char *argv[CONFIG_WORDS_MAX];
	struct tsr_err err;
	int argc = 0;

	while (words[argc] != NULL) {
		argv[argc] = (char *)words[argc];
		argc++;
	}
	ck_assert_msg(agent_types_add(&types, argc, argv, &err) == 0, "%s", err.msg);
	return agent_types_find(&types, words[1]);
}

static const struct supervisor_timeout no_timeout = { .ms = 0, .grace_ms = 0 };

static pid_t spawn_limited(const struct agent_type *t, const char *task, size_t len,
			   const struct supervisor_timeout *limit, char *id)
{
	struct supervisor_proc proc = { 0 };
	struct tsr_err err;
	int64_t started = 0;

	ck_assert_int_eq(ids_new_agent_id("s1", id, TSR_AGENT_ID_MAX + 1), 0);
	ck_assert_msg(supervisor_spawn(sv, id, t, task, len, limit, &proc, &started, &err) == 0,
		      "%s", err.msg);
	ck_assert_int_gt(proc.pid, 0);
	ck_assert_int_gt(proc.start_ticks, 0);
	ck_assert_int_gt(started, 0);
	if (nspawned < SPAWNED_MAX)
		spawned[nspawned++] = proc.pid;
	/* Not let go before it is contained. */
	ck_assert_int_eq(supervisor_release(sv, id, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_msg(supervisor_contain(sv, id, &err) == 0, "%s", err.msg);
	ck_assert_msg(supervisor_release(sv, id, &err) == 0, "%s", err.msg);
	return proc.pid;
}

static pid_t spawn_ok(const struct agent_type *t, const char *task, size_t len, char *id)
{
	return spawn_limited(t, task, len, &no_timeout, id);
}

static void assert_group_gone(pid_t pgid)
{
	ck_assert_int_eq(kill(-pgid, 0), -1);
	ck_assert_int_eq(errno, ESRCH);
}

static void path_in_dir(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

/* The whole of a small file into buf (NUL-ended); returns its length. */
static size_t slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	size_t n;

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n;
}

static void wait_file(const char *path)
{
	int64_t deadline = clock_mono_ms() + WAIT_MS;

	while (access(path, F_OK) != 0) {
		ck_assert_msg(clock_mono_ms() < deadline, "%s never appeared", path);
		usleep(5000);
	}
}

START_TEST(test_exit_codes)
{
	const char *t_true[] = { "agent", "t", "stdin", "/bin/true", NULL };
	const char *t_false[] = { "agent", "f", "env", "/bin/false", NULL };
	char a[TSR_AGENT_ID_MAX + 1], b[TSR_AGENT_ID_MAX + 1];
	struct supervisor_exit ex;
	int64_t before = clock_wall_ms();
	pid_t pa, pb;

	start(4);
	pa = spawn_ok(type_add(t_true), "", 0, a);
	pb = spawn_ok(type_add(t_false), "x", 1, b);
	ex = wait_exit(a);
	ck_assert(!ex.signaled);
	ck_assert_int_eq(ex.status, 0);
	ck_assert(!ex.kill_requested);
	ck_assert_int_eq(ex.pid, pa);
	ck_assert_int_ge(ex.completed_at_ms, before);
	assert_group_gone(pa);
	ex = wait_exit(b);
	ck_assert(!ex.signaled);
	ck_assert_int_eq(ex.status, 1);
	ck_assert_int_eq(ex.pid, pb);
	assert_group_gone(pb);
	wait_count(0);
}
END_TEST

START_TEST(test_kill_sleep)
{
	const char *t_sleep[] = { "agent", "sleeper", "stdin", "/bin/sleep", "60", NULL };
	char a[TSR_AGENT_ID_MAX + 1];
	struct supervisor_exit ex;
	struct tsr_err err;
	int64_t t0;
	pid_t pid;

	start(4);
	pid = spawn_ok(type_add(t_sleep), "", 0, a);
	/* Its own session and group. */
	ck_assert_int_eq(getsid(pid), pid);
	ck_assert_int_eq(getpgid(pid), pid);
	usleep(50000);
	ck_assert_uint_eq(exits_count(), 0);
	t0 = clock_mono_ms();
	ck_assert_int_eq(supervisor_kill(sv, a, 5000, &err), 0);
	ex = wait_exit(a);
	ck_assert(ex.signaled);
	ck_assert_int_eq(ex.status, SIGTERM);
	ck_assert(ex.kill_requested);
	ck_assert_int_lt(clock_mono_ms() - t0, 2000);
	assert_group_gone(pid);
	/* Gone means gone, once its slot is free. */
	wait_count(0);
	ck_assert_int_eq(supervisor_kill(sv, a, 0, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
}
END_TEST

START_TEST(test_kill_ignores_term)
{
	const char *t_stubborn[] = { "agent",	"stubborn", "stdin",
				     "/bin/sh", "-c",	    "trap '' TERM; : > \"$1\"; sleep 60; :",
				     "sh",	NULL,	    NULL };
	char a[TSR_AGENT_ID_MAX + 1], ready[128];
	struct supervisor_exit ex;
	struct tsr_err err;
	int64_t t0;
	pid_t pid;

	path_in_dir(ready, sizeof(ready), "ready");
	t_stubborn[7] = ready;
	start(4);
	pid = spawn_ok(type_add(t_stubborn), "", 0, a);
	wait_file(ready); /* the trap is set */
	t0 = clock_mono_ms();
	ck_assert_int_eq(supervisor_kill(sv, a, 300, &err), 0);
	ex = wait_exit(a);
	ck_assert_int_ge(clock_mono_ms() - t0, 290);
	ck_assert(ex.signaled);
	ck_assert_int_eq(ex.status, SIGKILL);
	ck_assert(ex.kill_requested);
	/* sh's child sleep was in the group too, and ignored TERM as well. */
	assert_group_gone(pid);

	/* A second kill brings a distant SIGKILL closer. */
	unlink(ready);
	pid = spawn_ok(agent_types_find(&types, "stubborn"), "", 0, a);
	wait_file(ready);
	t0 = clock_mono_ms();
	ck_assert_int_eq(supervisor_kill(sv, a, 60000, &err), 0);
	ck_assert_int_eq(supervisor_kill(sv, a, 0, &err), 0);
	ex = wait_exit(a);
	ck_assert_int_lt(clock_mono_ms() - t0, 3000);
	ck_assert(ex.signaled);
	ck_assert_int_eq(ex.status, SIGKILL);
	assert_group_gone(pid);
}
END_TEST

START_TEST(test_leader_exit_kills_group)
{
	/* The leader leaves a child behind and exits 0: the child must not survive. */
	const char *t_bg[] = { "agent", "bg", "stdin", "/bin/sh", "-c", "sleep 60 & exit 0", NULL };
	char a[TSR_AGENT_ID_MAX + 1];
	struct supervisor_exit ex;
	pid_t pid;

	start(4);
	pid = spawn_ok(type_add(t_bg), "", 0, a);
	ex = wait_exit(a);
	ck_assert(!ex.signaled);
	ck_assert_int_eq(ex.status, 0);
	ck_assert(!ex.kill_requested);
	assert_group_gone(pid);
}
END_TEST

START_TEST(test_task_stdin)
{
	const char *t_cat[] = { "agent",	"cat", "stdin", "/bin/sh", "-c",
				"cat > \"$1\"", "sh",  NULL,	NULL };
	static const char task[] = "line one\nbinary \0 byte\n";
	char a[TSR_AGENT_ID_MAX + 1], out[128], buf[256];
	struct supervisor_exit ex;

	path_in_dir(out, sizeof(out), "out");
	t_cat[7] = out;
	start(4);
	spawn_ok(type_add(t_cat), task, sizeof(task) - 1, a);
	ex = wait_exit(a);
	ck_assert_int_eq(ex.status, 0);
	ck_assert_uint_eq(slurp(out, buf, sizeof(buf)), sizeof(task) - 1);
	ck_assert_mem_eq(buf, task, sizeof(task) - 1);
}
END_TEST

START_TEST(test_task_env_and_environment)
{
	const char *t_env[] = { "agent",	"env", "env", "/bin/sh", "-c",
				"env > \"$1\"", "sh",  NULL,  NULL };
	char a[TSR_AGENT_ID_MAX + 1], out[128], buf[4096], want[256];
	struct supervisor_exit ex;

	path_in_dir(out, sizeof(out), "out");
	t_env[7] = out;
	setenv("TSR_TEST_SECRET", "leak", 1);
	start(4);
	spawn_ok(type_add(t_env), "fix the bug in main.c", 21, a);
	ex = wait_exit(a);
	ck_assert_int_eq(ex.status, 0);
	slurp(out, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "TESSERA_TASK=fix the bug in main.c\n"));
	snprintf(want, sizeof(want), "TESSERA_AGENT_ID=%s\n", a);
	ck_assert_ptr_nonnull(strstr(buf, want));
	ck_assert_ptr_nonnull(strstr(buf, "PATH=/usr/local/bin:/usr/bin:/bin\n"));
	ck_assert_ptr_null(strstr(buf, "TSR_TEST_SECRET"));
}
END_TEST

START_TEST(test_child_inherits_nothing)
{
	const char *t_probe[] = {
		"agent",
		"probe",
		"stdin",
		"/bin/sh",
		"-c",
		"ls /proc/self/fd > \"$1\"; grep -E '^Sig(Blk|Ign)' /proc/self/status >> \"$1\"",
		"sh",
		NULL,
		NULL
	};
	const char *t_sleep[] = { "agent", "sleeper", "stdin", "/bin/sleep", "60", NULL };
	char a[TSR_AGENT_ID_MAX + 1], b[TSR_AGENT_ID_MAX + 1], out[128], buf[1024];
	struct supervisor_exit ex;
	struct tsr_err err;
	sigset_t set;
	char *p;
	int leak;

	path_in_dir(out, sizeof(out), "out");
	t_probe[7] = out;
	/* An fd without O_CLOEXEC, an ignored and a blocked signal. */
	leak = open("/dev/null", O_RDONLY);
	ck_assert_int_ge(leak, 3);
	signal(SIGUSR1, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	start(4);
	/* Another agent's output pipe is open meanwhile: the probe must not see it. */
	spawn_ok(type_add(t_sleep), "", 0, b);
	spawn_ok(type_add(t_probe), "", 0, a);
	ex = wait_exit(a);
	ck_assert_int_eq(ex.status, 0);
	slurp(out, buf, sizeof(buf));
	/* ls sees 0, 1, 2 and the fd it reads the directory with. */
	ck_assert_msg(strncmp(buf, "0\n1\n2\n3\nSigBlk:\t", 15) == 0, "%s", buf);
	p = strchr(buf + 15, '\n');
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(strtoull(buf + 15, NULL, 16), 0);
	ck_assert_int_eq(strncmp(p + 1, "SigIgn:\t", 8), 0);
	/*
	 * glibc keeps its own two signals (32, 33) out of every sigset_t and
	 * out of sigaction's reach, so a launch leaves them as they were;
	 * glibc programs set them up again at start. Every other signal must
	 * be at its default.
	 */
	ck_assert_uint_eq(strtoull(p + 9, NULL, 16) & ~(3ULL << 31), 0);
	close(leak);
	ck_assert_int_eq(supervisor_kill(sv, b, 0, &err), 0);
	wait_exit(b);
}
END_TEST

/*
 * Agents start with the descriptor limit the spoke had before it raised
 * its own (agent_nofile), unless their type sets one.
 */
START_TEST(test_agent_nofile)
{
	const char *t_limits[] = { "agent",   "limits", "stdin",
				   "/bin/sh", "-c",	"echo $(ulimit -Sn) $(ulimit -Hn)",
				   NULL };
	struct supervisor_config cfg = config(2, TAIL_TEST);
	char a[TSR_AGENT_ID_MAX + 1], want[64];
	const struct agent_type *t;
	struct supervisor_exit ex;
	struct rlimit own;
	struct tsr_err err;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &own), 0);
	ck_assert_uint_ge(own.rlim_max, 100);
	cfg.agent_nofile = (struct rlimit){ .rlim_cur = 100, .rlim_max = own.rlim_max };
	ck_assert_msg(supervisor_start(&cfg, on_exit_cb, NULL, &sv, &err) == 0, "%s", err.msg);
	t = type_add(t_limits);
	spawn_ok(t, "", 0, a);
	ex = wait_exit(a);
	if (own.rlim_max == RLIM_INFINITY)
		snprintf(want, sizeof(want), "100 unlimited\n");
	else
		snprintf(want, sizeof(want), "100 %llu\n", (unsigned long long)own.rlim_max);
	ck_assert_str_eq(ex.output, want);

	/* The type's own agent-rlimit wins. */
	((struct agent_type *)t)->spec.set_limit[SHIM_LIMIT_NOFILE] = true;
	((struct agent_type *)t)->spec.limit[SHIM_LIMIT_NOFILE] = (struct rlimit){ .rlim_cur = 64,
										   .rlim_max = 64 };
	spawn_ok(t, "", 0, a);
	ex = wait_exit(a);
	ck_assert_str_eq(ex.output, "64 64\n");
}
END_TEST

/* This process's descriptor table size (FDSize in /proc/self/status). */
static long fd_table_size(void)
{
	char line[128];
	long n = -1;
	FILE *f = fopen("/proc/self/status", "re");

	ck_assert_ptr_nonnull(f);
	while (n < 0 && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "FDSize: %ld", &n) != 1)
			n = -1;
	fclose(f);
	ck_assert_int_gt(n, 0);
	return n;
}

/*
 * Started, the supervisor has grown the descriptor table to hold the
 * pidfds of a full cap (from fd 1024), so that no spawn waits for it to
 * grow; as far as the open-files limit goes.
 */
START_TEST(test_fd_table_grown)
{
	struct rlimit lim;
	long want = 1024 + 3000;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &lim), 0);
	if (lim.rlim_cur < (rlim_t)want) {
		lim.rlim_cur = lim.rlim_max < (rlim_t)want ? lim.rlim_max : (rlim_t)want;
		ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
	}
	if ((rlim_t)want > lim.rlim_cur)
		want = (long)lim.rlim_cur;
	ck_assert_int_lt(fd_table_size(), want);
	start(3000);
	ck_assert_int_ge(fd_table_size(), want);
}
END_TEST

/* More than the tail on stdout, then stderr: the last TAIL_TEST bytes, in order. */
START_TEST(test_output_tail)
{
	const char *t_chatty[] = { "agent",
				   "chatty",
				   "stdin",
				   "/bin/sh",
				   "-c",
				   "i=0; while [ $i -lt 60 ]; do printf 'line %04d\\n' $i; "
				   "i=$((i + 1)); done; echo to-stderr >&2; exit 3",
				   NULL };
	char a[TSR_AGENT_ID_MAX + 1], all[1024];
	struct supervisor_exit ex;
	size_t n = 0;

	for (int i = 0; i < 60; i++)
		n += (size_t)snprintf(all + n, sizeof(all) - n, "line %04d\n", i);
	n += (size_t)snprintf(all + n, sizeof(all) - n, "to-stderr\n");
	start(2);
	spawn_ok(type_add(t_chatty), "", 0, a);
	ex = wait_exit(a);
	ck_assert_int_eq(ex.status, 3);
	ck_assert_uint_eq(ex.output_len, TAIL_TEST);
	ck_assert_str_eq(ex.output, all + n - TAIL_TEST);
}
END_TEST

/* A running agent's tail so far; a NUL byte comes out as '?'. */
START_TEST(test_output_running)
{
	const char *t_early[] = { "agent",   "early", "stdin",
				  "/bin/sh", "-c",    "printf 'early\\000out\\n'; exec sleep 60",
				  NULL };
	char a[TSR_AGENT_ID_MAX + 1], *tail = NULL;
	struct supervisor_exit ex;
	struct tsr_err err;
	int64_t until;
	size_t len = 0;

	start(2);
	ck_assert_int_eq(supervisor_output(sv, "s1.0123456789abcdef01234567", &tail, &len, &err),
			 -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	spawn_ok(type_add(t_early), "", 0, a);
	until = clock_mono_ms() + WAIT_MS;
	for (;;) {
		ck_assert_int_eq(supervisor_output(sv, a, &tail, &len, &err), 0);
		if (len == 10 || clock_mono_ms() > until)
			break;
		free(tail);
		usleep(10000);
	}
	ck_assert_str_eq(tail, "early?out\n");
	free(tail);
	ck_assert_int_eq(supervisor_kill(sv, a, 0, &err), 0);
	ex = wait_exit(a);
	ck_assert(ex.kill_requested);
	ck_assert_str_eq(ex.output, "early?out\n");
}
END_TEST

/* A timeout ends an agent like a kill, with the grace it was given. */
START_TEST(test_timeout)
{
	const char *t_sleep[] = { "agent", "sleeper", "stdin", "/bin/sleep", "60", NULL };
	const char *t_stubborn[] = { "agent",	"stubborn", "stdin",
				     "/bin/sh", "-c",	    "trap '' TERM; : > \"$1\"; sleep 60; :",
				     "sh",	NULL,	    NULL };
	char a[TSR_AGENT_ID_MAX + 1], ready[128];
	struct supervisor_exit ex;
	int64_t t0;
	pid_t pid;

	path_in_dir(ready, sizeof(ready), "ready");
	t_stubborn[7] = ready;
	start(4);
	t0 = clock_mono_ms();
	pid = spawn_limited(type_add(t_sleep), "", 0,
			    &(struct supervisor_timeout){ .ms = 200, .grace_ms = 5000 }, a);
	ex = wait_exit(a);
	ck_assert_int_ge(clock_mono_ms() - t0, 190);
	ck_assert(ex.timed_out);
	ck_assert(!ex.kill_requested);
	ck_assert_uint_eq(ex.timeout_ms, 200);
	ck_assert(ex.signaled);
	ck_assert_int_eq(ex.status, SIGTERM);
	assert_group_gone(pid);

	/* TERM ignored: SIGKILL once the grace is over. */
	t0 = clock_mono_ms();
	pid = spawn_limited(type_add(t_stubborn), "", 0,
			    &(struct supervisor_timeout){ .ms = 300, .grace_ms = 300 }, a);
	wait_file(ready);
	ex = wait_exit(a);
	ck_assert_int_ge(clock_mono_ms() - t0, 590);
	ck_assert(ex.timed_out);
	ck_assert(ex.signaled);
	ck_assert_int_eq(ex.status, SIGKILL);
	assert_group_gone(pid);
}
END_TEST

/* A kill before the timeout stays a kill; an agent done in time did not time out. */
START_TEST(test_timeout_after_kill_or_end)
{
	const char *t_sleep[] = { "agent", "sleeper", "stdin", "/bin/sleep", "60", NULL };
	const char *t_true[] = { "agent", "ok", "stdin", "/bin/true", NULL };
	char a[TSR_AGENT_ID_MAX + 1], b[TSR_AGENT_ID_MAX + 1];
	struct supervisor_exit ex;
	struct tsr_err err;

	start(4);
	spawn_limited(type_add(t_sleep), "", 0,
		      &(struct supervisor_timeout){ .ms = 300, .grace_ms = 0 }, a);
	ck_assert_int_eq(supervisor_kill(sv, a, 0, &err), 0);
	ex = wait_exit(a);
	ck_assert(ex.kill_requested);
	ck_assert(!ex.timed_out);
	spawn_limited(type_add(t_true), "", 0,
		      &(struct supervisor_timeout){ .ms = 5000, .grace_ms = 0 }, b);
	ex = wait_exit(b);
	ck_assert(!ex.timed_out);
	ck_assert(!ex.signaled);
	ck_assert_int_eq(ex.status, 0);
	/* Past the first agent's timeout: still one exit each. */
	usleep(400000);
	ck_assert_uint_eq(exits_count(), 2);
}
END_TEST

START_TEST(test_cap_and_errors)
{
	const char *t_sleep[] = { "agent", "sleeper", "stdin", "/bin/sleep", "60", NULL };
	const struct agent_type *t;
	char a[TSR_AGENT_ID_MAX + 1], b[TSR_AGENT_ID_MAX + 1], c[TSR_AGENT_ID_MAX + 1];
	struct tsr_err err;
	int64_t started;
	struct supervisor_proc proc;

	start(2);
	t = type_add(t_sleep);
	spawn_ok(t, "", 0, a);
	spawn_ok(t, "", 0, b);
	ck_assert_uint_eq(supervisor_count(sv), 2);
	ck_assert_int_eq(ids_new_agent_id("s1", c, sizeof(c)), 0);
	ck_assert_int_eq(supervisor_spawn(sv, c, t, "", 0, &no_timeout, &proc, &started, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
	ck_assert_int_eq(supervisor_spawn(sv, a, t, "", 0, &no_timeout, &proc, &started, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_ALREADY_EXISTS);

	ck_assert_int_eq(supervisor_kill(sv, a, 0, &err), 0);
	wait_exit(a);
	wait_count(1);
	spawn_ok(t, "", 0, c); /* room again */
	ck_assert_int_eq(supervisor_kill(sv, b, 0, &err), 0);
	ck_assert_int_eq(supervisor_kill(sv, c, 0, &err), 0);
	wait_exit(b);
	wait_exit(c);

	ck_assert_int_eq(supervisor_kill(sv, "s1.0123456789abcdef01234567", 0, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_int_eq(supervisor_kill(sv, b, -1, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
}
END_TEST

/*
 * A shim started and not yet contained (its record refused, say) ends at
 * once on supervisor_abort: its slot is free on return, its group gone,
 * and no exit is reported, since nothing of the agent's ran.
 */
START_TEST(test_abort_before_contain)
{
	const char *t_sleep[] = { "agent", "sleeper", "stdin", "/bin/sleep", "60", NULL };
	char a[TSR_AGENT_ID_MAX + 1], path[512];
	struct supervisor_proc proc = { 0 };
	struct tsr_err err;
	int64_t started;

	start(2);
	ck_assert_int_eq(ids_new_agent_id("s1", a, sizeof(a)), 0);
	ck_assert_int_eq(supervisor_contain(sv, a, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	ck_assert_msg(supervisor_spawn(sv, a, type_add(t_sleep), "", 0, &no_timeout, &proc,
				       &started, &err) == 0,
		      "%s", err.msg);
	ck_assert_uint_eq(supervisor_count(sv), 1);
	ck_assert_int_eq(supervisor_abort(sv, a, &err), 0);
	ck_assert_uint_eq(supervisor_count(sv), 0);
	ck_assert_int_eq(kill(proc.pid, 0), -1);
	ck_assert_int_eq(errno, ESRCH);
	ck_assert_int_eq(supervisor_contain(sv, a, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
	/* Its output file went with it. */
	ck_assert_int_eq(agent_files_path(dir, a, AGENT_FILE_OUT, path, sizeof(path), &err), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
	usleep(100000);
	ck_assert_uint_eq(exits_count(), 0);
}
END_TEST

#ifndef NDEBUG
/*
 * Arguments outside what supervisor.h allows are a bug of the caller (the
 * spoke's command checked them): supervisor_spawn stops the process.
 */
START_TEST(test_spawn_contract)
{
	const char *t_env[] = { "agent", "e", "env", "/bin/true", NULL };
	const struct agent_type *t;
	char id[TSR_AGENT_ID_MAX + 1];
	struct supervisor_timeout limit = no_timeout;
	struct supervisor_proc proc;
	const char *agent = id;
	size_t task_len = 0;
	struct tsr_err err;
	int64_t started;

	start(2);
	t = type_add(t_env);
	ck_assert_int_eq(ids_new_agent_id("s1", id, sizeof(id)), 0);
	switch (_i) {
	case 0:
		agent = "not an id";
		break;
	case 1:
		task_len = TSR_TASK_MAX + 1;
		break;
	case 2:
		limit.ms = TSR_AGENT_TIMEOUT_MAX_MS + 1;
		break;
	case 3:
		limit.grace_ms = -1;
		break;
	case 4:
		task_len = 3; /* "a\0b" by environment */
		break;
	}
	supervisor_spawn(sv, agent, t, task_len == 3 ? "a\0b" : "", task_len, &limit, &proc,
			 &started, &err);
	ck_abort_msg("supervisor_spawn took arguments outside its contract (case %d)", _i);
}
END_TEST
#endif

/*
 * A claimed agent's exit is reported kill_requested even when it ends by
 * itself; an unclaimed one's is not; an agent whose exit has been
 * reported can no longer be claimed.
 */
START_TEST(test_kill_claim)
{
	const char *t_short[] = { "agent", "short", "stdin", "/bin/sh", "-c", "sleep 0.3", NULL };
	const struct agent_type *t;
	char a[TSR_AGENT_ID_MAX + 1], b[TSR_AGENT_ID_MAX + 1];
	struct supervisor_exit ex;
	struct tsr_err err;

	start(2);
	t = type_add(t_short);
	spawn_ok(t, "", 0, a);
	spawn_ok(t, "", 0, b);
	ck_assert_int_eq(supervisor_kill_claim(sv, a, &err), 0);
	ck_assert_int_eq(supervisor_kill_claim(sv, b, &err), 0);
	supervisor_kill_unclaim(sv, b);
	ex = wait_exit(a);
	ck_assert(ex.kill_requested);
	ck_assert(!ex.signaled);
	ck_assert_int_eq(ex.status, 0);
	ex = wait_exit(b);
	ck_assert(!ex.kill_requested);
	wait_count(0);
	ck_assert_int_eq(supervisor_kill_claim(sv, a, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
}
END_TEST

START_TEST(test_start_errors)
{
	struct tsr_err err;

	struct supervisor_config bad[] = {
		config(0, TAIL_TEST),
		config(1, 0),
		config(1, SUPERVISOR_TAIL_MAX + 1),
		config(SUPERVISOR_AGENTS_MAX + 1, TAIL_TEST),
		config(1, TAIL_TEST),
	};

	bad[4].shim_path = "/nonexistent/tessera-shim";
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(supervisor_start(&bad[i], on_exit_cb, NULL, &sv, &err), -1);
		ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	}
	ck_assert_ptr_null(sv);
}
END_TEST

static int add_line(const char *line, struct tsr_err *err)
{
	char buf[CONFIG_LINE_MAX], *argv[CONFIG_WORDS_MAX];
	int argc;

	snprintf(buf, sizeof(buf), "%s", line);
	argc = config_split(buf, argv, CONFIG_WORDS_MAX);
	ck_assert_int_gt(argc, 0);
	return agent_types_add(&types, argc, argv, err);
}

static int add_limit(const char *line, struct tsr_err *err)
{
	char buf[CONFIG_LINE_MAX], *argv[CONFIG_WORDS_MAX];
	int argc;

	snprintf(buf, sizeof(buf), "%s", line);
	argc = config_split(buf, argv, CONFIG_WORDS_MAX);
	ck_assert_int_gt(argc, 0);
	return agent_types_limit(&types, argc, argv, err);
}

START_TEST(test_agent_types)
{
	static const char *const bad[] = {
		"agent codex stdin bin/true",	    /* relative */
		"agent co.dex stdin /bin/true",	    /* bad name */
		"agent codex pipe /bin/true",	    /* unknown delivery */
		"agent codex stdin /etc/passwd",    /* not executable */
		"agent codex stdin /bin",	    /* a directory */
		"agent codex stdin /nonexistent/x", /* missing */
		"agent codex stdin",		    /* no path */
		"agnet codex stdin /bin/true",	    /* not an agent line */
		"agent ok stdin /bin/true",	    /* defined twice */
	};
	static const char *const bad_limits[] = {
		"agent-timeout nosuch 0 1000", /* no such type */
		"agent-timeout ok 2000 1000",  /* default above max */
		"agent-timeout ok 0 0",	       /* max 0 */
		"agent-timeout ok 0 86400001", /* above 24 h */
		"agent-timeout ok 0",	       /* too few words */
		"agent-timeout ok -1 1000",    /* negative */
		"agent-grace ok 600001",       /* above the grace cap */
		"agent-grace ok 1x",	       /* not a number */
		"agent-grace ok",	       /* too few words */
	};
	const struct agent_type *t;
	struct tsr_err err;
	char line[64];

	ck_assert_int_eq(add_line("agent ok stdin /bin/true", &err), 0);
	ck_assert_int_eq(add_line("agent echo-2 env /bin/echo hello  world", &err), 0);
	t = agent_types_find(&types, "echo-2");
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->delivery, AGENT_TASK_ENV);
	ck_assert_str_eq(t->argv[0], "/bin/echo");
	ck_assert_str_eq(t->argv[1], "hello");
	ck_assert_str_eq(t->argv[2], "world");
	ck_assert_ptr_null(t->argv[3]);
	ck_assert_int_eq(agent_types_find(&types, "ok")->delivery, AGENT_TASK_STDIN);
	ck_assert_uint_eq(t->timeout_default_ms, 0);
	ck_assert_uint_eq(t->timeout_max_ms, TSR_AGENT_TIMEOUT_MAX_MS);
	ck_assert_int_eq(t->grace_ms, -1);
	ck_assert_int_eq(add_limit("agent-timeout echo-2 1000 60000", &err), 0);
	ck_assert_int_eq(add_limit("agent-grace echo-2 250", &err), 0);
	ck_assert_uint_eq(t->timeout_default_ms, 1000);
	ck_assert_uint_eq(t->timeout_max_ms, 60000);
	ck_assert_int_eq(t->grace_ms, 250);
	for (size_t i = 0; i < sizeof(bad_limits) / sizeof(bad_limits[0]); i++) {
		ck_assert_msg(add_limit(bad_limits[i], &err) == -1, "accepted: %s", bad_limits[i]);
		ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	}
	ck_assert_ptr_null(agent_types_find(&types, "missing"));

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(add_line(bad[i], &err) == -1, "accepted: %s", bad[i]);
		ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	}
	ck_assert_uint_eq(types.n, 2);

	/* Bounded count. */
	for (size_t i = types.n; i < AGENT_TYPES_MAX; i++) {
		snprintf(line, sizeof(line), "agent t%zu stdin /bin/true", i);
		ck_assert_int_eq(add_line(line, &err), 0);
	}
	ck_assert_int_eq(add_line("agent one-more stdin /bin/true", &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
}
END_TEST

/*
 * The shell line an agent runs to sabotage its exit record: the record's
 * path made a FIFO, with no writer, and a directory where the shim writes
 * its temporary file, so that the shim cannot rename over the FIFO. $1
 * is the state dir. Then it exits 3.
 */
#define FIFO_AGENT                                                         \
	"e=\"$1/$TESSERA_AGENT_ID.exit\"; rm -f \"$e\"; mkfifo \"$e\" && " \
	"mkdir \"$e.tmp\" && exit 3; exit 9"

/*
 * The exit is still reported, its status unknown, saying why; meanwhile
 * and after, the supervisor answers and supervises the others.
 */
START_TEST(test_exit_record_fifo)
{
	const char *t_fifo[] = { "agent",    "fifo", "stdin", "/bin/sh", "-c",
				 FIFO_AGENT, "sh",   dir,     NULL };
	const char *t_sleep[] = { "agent", "sleeper", "stdin", "/bin/sleep", "60", NULL };
	char a[TSR_AGENT_ID_MAX + 1], b[TSR_AGENT_ID_MAX + 1], c[TSR_AGENT_ID_MAX + 1];
	char *tail = NULL;
	struct supervisor_exit ex;
	struct tsr_err err;
	size_t len;

	start(4);
	spawn_ok(type_add(t_sleep), "", 0, b);
	spawn_ok(type_add(t_fifo), "", 0, a);
	ex = wait_exit(a);
	ck_assert(ex.started);
	ck_assert(!ex.signaled);
	ck_assert_int_eq(ex.status, -1);
	ck_assert_ptr_nonnull(ex.detail);
	ck_assert_str_eq(ex.detail, "exit record is not a regular file (a FIFO)");
	ck_assert(supervisor_has(sv, b));
	ck_assert_int_eq(supervisor_output(sv, b, &tail, &len, &err), 0);
	free(tail);
	spawn_ok(agent_types_find(&types, "sleeper"), "", 0, c);
	ck_assert_int_eq(supervisor_kill(sv, b, 0, &err), 0);
	ck_assert_int_eq(supervisor_kill(sv, c, 0, &err), 0);
	ck_assert(wait_exit(b).kill_requested);
	ck_assert(wait_exit(c).kill_requested);
	wait_count(0);
}
END_TEST

/* A FIFO where the shim writes its temporary file: the shim replaces it, not waits on it. */
START_TEST(test_exit_tmp_fifo)
{
	const char *t_tmp[] = {
		"agent",   "tmp", "stdin",
		"/bin/sh", "-c",  "mkfifo \"$1/$TESSERA_AGENT_ID.exit.tmp\" && exit 4; exit 9",
		"sh",	   dir,	  NULL
	};
	char a[TSR_AGENT_ID_MAX + 1];
	struct supervisor_exit ex;

	start(2);
	spawn_ok(type_add(t_tmp), "", 0, a);
	ex = wait_exit(a);
	ck_assert(!ex.signaled);
	ck_assert_int_eq(ex.status, 4);
	ck_assert_ptr_null(ex.detail);
}
END_TEST

/* A thread that writes its id to pipe fds[0..1], then waits for a byte on pipe fds[2..3]. */
static void *waiting_thread(void *arg)
{
	int *fds = arg;
	pid_t tid = gettid();
	char b;

	ck_assert_int_eq(write(fds[1], &tid, sizeof(tid)), (ssize_t)sizeof(tid));
	ck_assert_int_eq(read(fds[2], &b, 1), 1);
	return NULL;
}

/* supervisor_adopt of proc for agent_id, asked to kill at once: its result, err's code. */
static int adopt_killing(const char *agent_id, const struct supervisor_proc *proc,
			 struct tsr_err *err)
{
	const struct supervisor_timeout limit = { .ms = 0, .grace_ms = 0 };

	tsr_err_clear(err);
	return supervisor_adopt(sv, agent_id, proc, &limit, 0, true, err);
}

/*
 * Adoption takes the agent's own shim and nothing else, and signals
 * nothing it refuses, though asked to kill: not a process of the right
 * pid and start time that runs another program, not the shim of another
 * agent; after a restart, the agent's own shim is adopted and killed.
 */
START_TEST(test_adopt_only_own_shim)
{
	const char *t_sleep[] = { "agent", "sleeper", "stdin", "/bin/sleep", "60", NULL };
	char a[TSR_AGENT_ID_MAX + 1], forged[TSR_AGENT_ID_MAX + 1];
	struct supervisor_proc proc = { 0 };
	struct supervisor_exit ex;
	struct tsr_err err;
	pthread_t th;
	pid_t pa, other;
	int fds[4];

	start(4);
	pa = spawn_ok(type_add(t_sleep), "", 0, a);
	proc.pid = pa;
	ck_assert_int_eq(proc_start_ticks(proc.pid, &proc.start_ticks, &err), 0);
	ck_assert_int_eq(ids_new_agent_id("s1", forged, sizeof(forged)), 0);
	ck_assert_int_eq(adopt_killing(forged, &proc, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_msg(strstr(err.msg, "not this agent's tessera-shim") != NULL &&
			      strstr(err.msg, "another first argument") != NULL,
		      "%s", err.msg);
	other = fx_bystander(&proc.start_ticks);
	/* Ended by teardown should the test fail first. */
	if (nspawned < SPAWNED_MAX)
		spawned[nspawned++] = other;
	proc.pid = other;
	ck_assert_int_eq(adopt_killing(forged, &proc, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_ptr_nonnull(strstr(err.msg, " runs /"));
	ck_assert(!supervisor_has(sv, forged));
	/* A thread's id, of the right start time: no process, no shim. */
	ck_assert(pipe(fds) == 0 && pipe(fds + 2) == 0);
	ck_assert_int_eq(pthread_create(&th, NULL, waiting_thread, fds), 0);
	ck_assert_int_eq(read(fds[0], &proc.pid, sizeof(proc.pid)), (ssize_t)sizeof(proc.pid));
	ck_assert_int_ne(proc.pid, getpid());
	ck_assert_int_eq(proc_start_ticks(proc.pid, &proc.start_ticks, &err), 0);
	ck_assert_int_eq(adopt_killing(forged, &proc, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_ptr_nonnull(strstr(err.msg, "names no process"));
	ck_assert_int_eq(write(fds[3], "x", 1), 1);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	usleep(100000);
	ck_assert_int_eq(waitpid(other, NULL, WNOHANG), 0);
	ck_assert_uint_eq(exits_count(), 0);

	/* A new supervisor, as after a restart: a's own shim is adopted, and its kill goes on. */
	supervisor_stop(sv);
	start(4);
	proc.pid = pa;
	ck_assert_int_eq(proc_start_ticks(proc.pid, &proc.start_ticks, &err), 0);
	ck_assert_msg(adopt_killing(a, &proc, &err) == 0, "%s", err.msg);
	ex = wait_exit(a);
	ck_assert(ex.kill_requested);
	assert_group_gone(proc.pid);
	kill(other, SIGKILL);
	ck_assert_int_eq(waitpid(other, NULL, 0), other);
}
END_TEST

int test_suite(SRunner *sr)
{
	TCase *tc;

	tc = check_suite(sr, "supervisor",
			 CHECK_TESTS(test_exit_codes, test_kill_sleep, test_kill_ignores_term,
				     test_leader_exit_kills_group, test_task_stdin,
				     test_task_env_and_environment, test_child_inherits_nothing,
				     test_agent_nofile, test_output_tail, test_output_running,
				     test_timeout, test_timeout_after_kill_or_end,
				     test_cap_and_errors, test_abort_before_contain,
				     test_fd_table_grown, test_kill_claim, test_start_errors,
				     test_exit_record_fifo, test_exit_tmp_fifo,
				     test_adopt_only_own_shim, test_agent_types));
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 15);
#ifndef NDEBUG
	tcase_add_loop_test_raise_signal(tc, test_spawn_contract, SIGABRT, 0, 5);
#endif
	return 0;
}
