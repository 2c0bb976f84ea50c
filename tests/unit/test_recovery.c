/*
 * test_recovery: recovery_run on a hand-built spoke (spoke_fixture.h)
 * after a simulated restart (a new supervisor over the same Valkey and
 * state directory): SPAWNING records end FAILED; RUNNING ones whose shim
 * still runs are adopted again (kill and timeout work after), the others
 * end as their exit file says, or FAILED with an unknown status, without
 * a pid that now names another process ever being signalled; those
 * recorded in another PID namespace (a restarted container; another
 * inode, or the same one with another pid 1) are never adopted, even
 * where their pid names a process of the same start time; forged
 * records, whose pid and start time name a live process that is not the
 * agent's shim (another program, or another agent's shim), end FAILED
 * saying so and leave that process unsignalled; a FIFO where an exit
 * record goes is refused, not waited on; leftover files are swept; a
 * Valkey that is down or a missing state directory fail the run.
 */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_commands.h"
#include "agent_files.h"
#include "check_main.h"
#include "clock.h"
#include "ids.h"
#include "outcomes.h"
#include "pb.h"
#include "recovery.h"
#include "spoke_fixture.h"

#define SPAWNING TESSERA__V1__AGENT_STATE__AGENT_STATE_SPAWNING
#define RUNNING TESSERA__V1__AGENT_STATE__AGENT_STATE_RUNNING
#define COMPLETED TESSERA__V1__AGENT_STATE__AGENT_STATE_COMPLETED
#define FAILED TESSERA__V1__AGENT_STATE__AGENT_STATE_FAILED
#define KILLED TESSERA__V1__AGENT_STATE__AGENT_STATE_KILLED

static struct fx fx;

static void setup(void)
{
	fx_up(&fx, "agent sh stdin /bin/sh\nagent-grace sh 100\n");
}

static void teardown(void)
{
	fx_down(&fx);
}

/* An agent record in state (SPAWNING or RUNNING, with upd); its id into id. */
static void record(char *id, Tessera__V1__AgentState state, const struct store_update *upd)
{
	Tessera__V1__Agent a = TESSERA__V1__AGENT__INIT;
	char existing[TSR_AGENT_ID_MAX + 1], pos[STORE_POSITION_MAX];
	struct tsr_err err;

	ck_assert_int_eq(ids_new_agent_id(FX_SPOKE, id, TSR_AGENT_ID_MAX + 1), 0);
	a.id = id;
	a.spoke_id = FX_SPOKE;
	a.type = "sh";
	ck_assert_msg(store_agent_create(fx.sp.store, &a, existing, sizeof(existing), &err) == 0,
		      "%s", err.msg);
	if (state == RUNNING)
		ck_assert_msg(store_agent_transition(fx.sp.store, id, RUNNING, upd, pos,
						     sizeof(pos), &err) == 0,
			      "%s", err.msg);
}

static void agent_file(const char *id, enum agent_file_kind kind, const char *text)
{
	char path[AGENT_FILES_PATH_MAX];
	struct tsr_err err;

	ck_assert_int_eq(agent_files_path(fx.sp.cfg.state_dir, id, kind, path, sizeof(path), &err),
			 0);
	fx_write_file(path, text);
}

static bool agent_file_exists(const char *id, enum agent_file_kind kind)
{
	char path[AGENT_FILES_PATH_MAX];
	struct tsr_err err;

	ck_assert_int_eq(agent_files_path(fx.sp.cfg.state_dir, id, kind, path, sizeof(path), &err),
			 0);
	return access(path, F_OK) == 0;
}

static void recover(void)
{
	struct tsr_err err;

	ck_assert_msg(recovery_run(&fx.sp, &err) == 0, "%s", err.msg);
}

/* The final state outcomes records for id, and its error into why. */
static Tessera__V1__AgentState ended(const char *id, char *why, size_t len)
{
	Tessera__V1__AgentState state = fx_settle(&fx, id);
	Tessera__V1__Agent *a = fx_get(&fx, id);

	snprintf(why, len, "%s", a->error);
	tessera__v1__agent__free_unpacked(a, NULL);
	return state;
}

/* The agent hash field set to a value, as a spoke that wrote it differently would. */
static void forge(const char *id, const char *field, const char *value)
{
	redisReply *r = fx_raw(&fx, "HSET tessera:{%s}:agent:%s %s %s", FX_SPOKE, id, field, value);

	ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
	freeReplyObject(r);
}

/* The agent hash field removed, as a record written before it existed. */
static void unforge(const char *id, const char *field)
{
	redisReply *r = fx_raw(&fx, "HDEL tessera:{%s}:agent:%s %s", FX_SPOKE, id, field);

	ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
	ck_assert_int_eq(r->integer, 1);
	freeReplyObject(r);
}

/* recover() with stderr going to a file: the count of lines logged that hold needle. */
static int recover_logged(const char *needle)
{
	char path[128], line[1024];
	int fd, saved, n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/recovery.log", fx.dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	saved = dup(2);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(dup2(fd, 2), 2);
	close(fd);
	recover();
	ck_assert_int_eq(dup2(saved, 2), 2);
	close(saved);
	f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, needle) != NULL)
			n++;
	fclose(f);
	return n;
}

START_TEST(test_spawning_fails)
{
	char id[TSR_AGENT_ID_MAX + 1], why[256];

	record(id, SPAWNING, NULL);
	recover();
	ck_assert_int_eq(ended(id, why, sizeof(why)), FAILED);
	ck_assert_ptr_nonnull(strstr(why, "no agent code ran"));
}
END_TEST

START_TEST(test_no_process_or_other_boot)
{
	struct store_update none = { .has_pid = true, .pid = 0 };
	struct store_update old = { .has_pid = true,
				    .pid = 1,
				    .has_process = true,
				    .pid_start_ticks = 1,
				    .boot_id = "00000000-0000-0000-0000-000000000000" };
	char a[TSR_AGENT_ID_MAX + 1], b[TSR_AGENT_ID_MAX + 1], why[256];

	record(a, RUNNING, &none);
	record(b, RUNNING, &old);
	recover();
	ck_assert_int_eq(ended(a, why, sizeof(why)), FAILED);
	ck_assert_str_eq(why, "no process was recorded for it");
	ck_assert_int_eq(ended(b, why, sizeof(why)), FAILED);
	ck_assert_str_eq(why, "the machine restarted since it was started");
}
END_TEST

/* The process is gone: what its exit file says, with the output its file kept. */
START_TEST(test_ended_with_exit_file)
{
	struct store_update upd = { .has_pid = true, .pid = 0 };
	char ok[TSR_AGENT_ID_MAX + 1], sig[TSR_AGENT_ID_MAX + 1], none[TSR_AGENT_ID_MAX + 1];
	char bad[TSR_AGENT_ID_MAX + 1], killed[TSR_AGENT_ID_MAX + 1], why[256];
	Tessera__V1__Agent *x;
	struct tsr_err err;

	record(ok, RUNNING, &upd);
	agent_file(ok, AGENT_FILE_EXIT, "exit 0\n");
	agent_file(ok, AGENT_FILE_OUT, "the output\n");
	record(sig, RUNNING, &upd);
	agent_file(sig, AGENT_FILE_EXIT, "signal 9\n");
	record(none, RUNNING, &upd);
	agent_file(none, AGENT_FILE_EXIT, "none\n");
	record(bad, RUNNING, &upd);
	agent_file(bad, AGENT_FILE_EXIT, "exit lots\n");
	record(killed, RUNNING, &upd);
	ck_assert_int_eq(store_agent_mark_kill(fx.sp.store, killed, &err), 0);
	agent_file(killed, AGENT_FILE_EXIT, "signal 15\n");
	recover();

	ck_assert_int_eq(ended(ok, why, sizeof(why)), COMPLETED);
	x = fx_get(&fx, ok);
	ck_assert_str_eq(x->output, "the output\n");
	ck_assert_int_eq(x->exit_code, 0);
	tessera__v1__agent__free_unpacked(x, NULL);
	ck_assert_int_eq(ended(sig, why, sizeof(why)), FAILED);
	ck_assert_str_eq(why, "ended by signal 9");
	ck_assert_int_eq(ended(none, why, sizeof(why)), FAILED);
	ck_assert_str_eq(why, "the spoke stopped before starting the agent; no agent code ran");
	ck_assert_int_eq(ended(bad, why, sizeof(why)), FAILED);
	ck_assert_str_eq(why, "no process was recorded for it; exit record is malformed");
	ck_assert_int_eq(ended(killed, why, sizeof(why)), KILLED);
	ck_assert(!agent_file_exists(ok, AGENT_FILE_OUT));
	ck_assert(!agent_file_exists(ok, AGENT_FILE_EXIT));
}
END_TEST

/* A pid that is gone, and one that now names another process: never signalled. */
START_TEST(test_not_adopted)
{
	struct store_update upd = { .has_pid = true,
				    .has_process = true,
				    .boot_id = fx.sp.boot_id };
	char gone[TSR_AGENT_ID_MAX + 1], other[TSR_AGENT_ID_MAX + 1], why[256];
	uint64_t ticks;
	pid_t dead, live;

	dead = fx_bystander(&ticks);
	kill(dead, SIGKILL);
	ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
	upd.pid = dead;
	upd.pid_start_ticks = ticks;
	record(gone, RUNNING, &upd);
	live = fx_bystander(&ticks);
	upd.pid = live;
	upd.pid_start_ticks = ticks + 1;
	record(other, RUNNING, &upd);
	recover();
	ck_assert(!supervisor_has(fx.sp.sv, gone));
	ck_assert(!supervisor_has(fx.sp.sv, other));
	ck_assert_int_eq(ended(gone, why, sizeof(why)), FAILED);
	ck_assert_ptr_nonnull(strstr(why, "exit status is unknown"));
	ck_assert_int_eq(ended(other, why, sizeof(why)), FAILED);
	ck_assert_int_eq(kill(live, 0), 0);
	kill(live, SIGKILL);
	waitpid(live, NULL, 0);
}
END_TEST

/*
 * Records of another PID namespace, as a restarted container leaves them:
 * their pid names a live process of the same start time, this boot, which
 * is all adoption asked before. Not adopted, and that process (leading
 * its group, as a shim does) gets no signal, not even the kill asked
 * before the restart; an exit file the shim left still says how it ended.
 * The namespace change is logged once for the run.
 */
START_TEST(test_pid_ns_changed)
{
	struct store_update upd = { .has_pid = true,
				    .has_process = true,
				    .boot_id = fx.sp.boot_id };
	char gone[TSR_AGENT_ID_MAX + 1], exited[TSR_AGENT_ID_MAX + 1];
	char asked[TSR_AGENT_ID_MAX + 1], ns[32], why[256];
	Tessera__V1__Agent *x;
	struct tsr_err err;
	uint64_t ticks;
	pid_t live;

	live = fx_bystander(&ticks);
	upd.pid = live;
	upd.pid_start_ticks = ticks;
	snprintf(ns, sizeof(ns), "%llu", (unsigned long long)fx.sp.pid_ns.ino + 1);
	record(gone, RUNNING, &upd);
	forge(gone, "pid_ns", ns);
	record(exited, RUNNING, &upd);
	forge(exited, "pid_ns", ns);
	agent_file(exited, AGENT_FILE_EXIT, "exit 0\n");
	agent_file(exited, AGENT_FILE_OUT, "done before\n");
	record(asked, RUNNING, &upd);
	forge(asked, "pid_ns", ns);
	ck_assert_int_eq(store_agent_mark_kill(fx.sp.store, asked, &err), 0);

	ck_assert_int_eq(recover_logged("PID namespace changed"), 1);
	ck_assert(!supervisor_has(fx.sp.sv, gone));
	ck_assert(!supervisor_has(fx.sp.sv, exited));
	ck_assert(!supervisor_has(fx.sp.sv, asked));
	ck_assert_int_eq(ended(gone, why, sizeof(why)), FAILED);
	ck_assert_str_eq(why, "its PID namespace ended (the spoke's container was restarted), "
			      "and its process with it");
	ck_assert_int_eq(ended(exited, why, sizeof(why)), COMPLETED);
	x = fx_get(&fx, exited);
	ck_assert_int_eq(x->end_case, TESSERA__V1__AGENT__END_EXIT_CODE);
	ck_assert_int_eq(x->exit_code, 0);
	ck_assert_str_eq(x->output, "done before\n");
	tessera__v1__agent__free_unpacked(x, NULL);
	ck_assert_int_eq(ended(asked, why, sizeof(why)), KILLED);
	/* Untouched: still running, neither ended nor stopped by any signal. */
	ck_assert_int_eq(waitpid(live, NULL, WNOHANG), 0);
	ck_assert_int_eq(kill(live, 0), 0);
	kill(live, SIGKILL);
	ck_assert_int_eq(waitpid(live, NULL, 0), live);
}
END_TEST

/*
 * Records of a dead PID namespace whose inode the spoke's got again: the
 * inode matches, the start time of the namespace's pid 1 does not. Not
 * adopted either, and their process, though of the same start time, gets
 * no signal, not even the kill asked before.
 */
START_TEST(test_pid_ns_inode_reused)
{
	struct store_update upd = { .has_pid = true,
				    .has_process = true,
				    .boot_id = fx.sp.boot_id,
				    .pid_ns = fx.sp.pid_ns.ino,
				    .pid_ns_init_ticks = fx.sp.pid_ns.init_ticks + 1 };
	char gone[TSR_AGENT_ID_MAX + 1], asked[TSR_AGENT_ID_MAX + 1], why[256];
	struct tsr_err err;
	uint64_t ticks;
	pid_t live;

	live = fx_bystander(&ticks);
	upd.pid = live;
	upd.pid_start_ticks = ticks;
	record(gone, RUNNING, &upd);
	record(asked, RUNNING, &upd);
	ck_assert_int_eq(store_agent_mark_kill(fx.sp.store, asked, &err), 0);

	ck_assert_int_eq(recover_logged("PID namespace changed"), 1);
	ck_assert(!supervisor_has(fx.sp.sv, gone));
	ck_assert(!supervisor_has(fx.sp.sv, asked));
	ck_assert_int_eq(ended(gone, why, sizeof(why)), FAILED);
	ck_assert_str_eq(why, "its PID namespace ended (the spoke's container was restarted), "
			      "and its process with it");
	ck_assert_int_eq(ended(asked, why, sizeof(why)), KILLED);
	ck_assert_int_eq(waitpid(live, NULL, WNOHANG), 0);
	ck_assert_int_eq(kill(live, 0), 0);
	kill(live, SIGKILL);
	ck_assert_int_eq(waitpid(live, NULL, 0), live);
}
END_TEST

/*
 * A FIFO where a gone agent's exit record goes (its agent made one, and
 * the spoke was down): the run goes on, and the agent ends FAILED saying
 * why its status is unknown.
 */
START_TEST(test_exit_record_fifo)
{
	struct store_update upd = { .has_pid = true,
				    .has_process = true,
				    .boot_id = fx.sp.boot_id };
	char id[TSR_AGENT_ID_MAX + 1], path[AGENT_FILES_PATH_MAX], why[256];
	struct tsr_err err;
	uint64_t ticks;
	pid_t dead;

	dead = fx_bystander(&ticks);
	kill(dead, SIGKILL);
	ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
	upd.pid = dead;
	upd.pid_start_ticks = ticks;
	record(id, RUNNING, &upd);
	ck_assert_int_eq(agent_files_path(fx.sp.cfg.state_dir, id, AGENT_FILE_EXIT, path,
					  sizeof(path), &err),
			 0);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	recover();
	ck_assert_int_eq(ended(id, why, sizeof(why)), FAILED);
	ck_assert_str_eq(why, "its process ended while the spoke was down; its exit status is "
			      "unknown; exit record is not a regular file (a FIFO)");
	ck_assert(!agent_file_exists(id, AGENT_FILE_EXIT));
}
END_TEST

static Tessera__V1__Agent *spawn(const char *task, uint32_t timeout_ms)
{
	Tessera__V1__SpawnCommand req = TESSERA__V1__SPAWN_COMMAND__INIT;
	Tessera__V1__Agent *a;
	uint8_t *buf = NULL, *resp = NULL;
	size_t len = 0, rlen = 0;
	struct tsr_err err;

	req.type = "sh";
	req.task = (char *)task;
	req.timeout_ms = timeout_ms;
	ck_assert_int_eq(pb_pack(&req.base, &buf, &len, &err), 0);
	ck_assert_msg(agent_cmd_spawn(&fx.sp, NULL, buf, len, &resp, &rlen, &err) == 0, "%s",
		      err.msg);
	free(buf);
	a = tessera__v1__agent__unpack(NULL, rlen, resp);
	free(resp);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(a->state, RUNNING);
	fx_track(&fx, a->pid);
	return a;
}

static void restart_spoke(void)
{
	fx_spoke_stop(&fx);
	fx_spoke_start(&fx);
	recover();
}

/* A live shim is supervised again: its kill (asked before or after) and timeout work. */
START_TEST(test_adopted)
{
	Tessera__V1__Agent *a = spawn("echo adopted; sleep 30", 0);
	Tessera__V1__Agent *b = spawn("sleep 30", 0);
	Tessera__V1__Agent *c = spawn("sleep 30", 60000);
	Tessera__V1__KillCommand kreq = TESSERA__V1__KILL_COMMAND__INIT;
	uint8_t *buf = NULL, *resp = NULL;
	size_t len = 0, rlen = 0;
	char why[256];
	struct tsr_err err;
	redisReply *r;

	ck_assert_int_eq(store_agent_mark_kill(fx.sp.store, b->id, &err), 0);
	/* c's timeout runs out while the spoke is down: due as soon as it is back. */
	r = fx_raw(&fx, "HSET tessera:{s1}:agent:%s timeout_at_ms %lld", c->id,
		   (long long)(c->started_at_ms + 1));
	freeReplyObject(r);
	restart_spoke();
	/* b and c may have ended already: their kill and timeout act at once. */
	ck_assert(supervisor_has(fx.sp.sv, a->id));
	ck_assert_int_eq(kill(a->pid, 0), 0);

	kreq.agent_id = a->id;
	ck_assert_int_eq(pb_pack(&kreq.base, &buf, &len, &err), 0);
	ck_assert_msg(agent_cmd_kill(&fx.sp, buf, len, &resp, &rlen, &err) == 0, "%s", err.msg);
	free(buf);
	free(resp);
	ck_assert_int_eq(ended(a->id, why, sizeof(why)), KILLED);
	ck_assert_int_eq(ended(b->id, why, sizeof(why)), KILLED);
	ck_assert_int_eq(ended(c->id, why, sizeof(why)), FAILED);
	ck_assert_str_eq(why, "timed out after 1 ms");
	tessera__v1__agent__free_unpacked(a, NULL);
	tessera__v1__agent__free_unpacked(b, NULL);
	tessera__v1__agent__free_unpacked(c, NULL);
}
END_TEST

/*
 * A record of this spoke's PID namespace, and one written before records
 * had one (no pid_ns, no pid_ns_init_ticks: 0), are adopted as before;
 * such an old record whose process is gone ends as before.
 */
START_TEST(test_pid_ns_same_or_unrecorded)
{
	struct store_update upd = { .has_pid = true,
				    .has_process = true,
				    .boot_id = fx.sp.boot_id };
	Tessera__V1__Agent *same = spawn("sleep 30", 0), *old = spawn("sleep 30", 0), *x;
	char gone[TSR_AGENT_ID_MAX + 1], ns[32], buf[32], why[256];
	uint64_t ticks;
	pid_t dead;

	ck_assert_uint_ne(fx.sp.pid_ns.ino, 0);
	ck_assert_uint_eq(same->pid_ns, fx.sp.pid_ns.ino);
	ck_assert_uint_eq(same->pid_ns_init_ticks, fx.sp.pid_ns.init_ticks);
	snprintf(ns, sizeof(ns), "%llu", (unsigned long long)fx.sp.pid_ns.ino);
	ck_assert_str_eq(fx_field(&fx, same->id, "pid_ns", buf, sizeof(buf)), ns);
	snprintf(ns, sizeof(ns), "%llu", (unsigned long long)fx.sp.pid_ns.init_ticks);
	ck_assert_str_eq(fx_field(&fx, same->id, "pid_ns_init_ticks", buf, sizeof(buf)), ns);
	unforge(old->id, "pid_ns");
	unforge(old->id, "pid_ns_init_ticks");
	x = fx_get(&fx, old->id);
	ck_assert_uint_eq(x->pid_ns, 0);
	ck_assert_uint_eq(x->pid_ns_init_ticks, 0);
	tessera__v1__agent__free_unpacked(x, NULL);
	dead = fx_bystander(&ticks);
	kill(dead, SIGKILL);
	ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
	upd.pid = dead;
	upd.pid_start_ticks = ticks;
	record(gone, RUNNING, &upd);
	unforge(gone, "pid_ns");
	unforge(gone, "pid_ns_init_ticks");

	restart_spoke();
	ck_assert(supervisor_has(fx.sp.sv, same->id));
	ck_assert(supervisor_has(fx.sp.sv, old->id));
	ck_assert_int_eq(kill(same->pid, 0), 0);
	ck_assert_int_eq(kill(old->pid, 0), 0);
	ck_assert_int_eq(ended(gone, why, sizeof(why)), FAILED);
	ck_assert_str_eq(why, "its process ended while the spoke was down; its exit status is "
			      "unknown");
	tessera__v1__agent__free_unpacked(same, NULL);
	tessera__v1__agent__free_unpacked(old, NULL);
}
END_TEST

/* id's record made to name proc, with a timeout due at once: adopted, it would be signalled. */
static void forge_process(const char *id, pid_t pid, uint64_t ticks)
{
	char v[32];

	snprintf(v, sizeof(v), "%d", (int)pid);
	forge(id, "pid", v);
	snprintf(v, sizeof(v), "%llu", (unsigned long long)ticks);
	forge(id, "pid_start_ticks", v);
	forge(id, "boot_id", fx.sp.boot_id);
	forge(id, "started_at_ms", "1000");
	forge(id, "timeout_at_ms", "1001");
}

/*
 * Forged RUNNING records: one names a live process of its exact start
 * time, this boot and namespace, leading its group, but running another
 * program; one names the live shim of another agent. Neither is adopted:
 * FAILED, saying which, and neither process gets a signal, though the
 * records' timeouts are due; the other agent is adopted as its own.
 */
START_TEST(test_forged_records)
{
	struct store_update none = { .has_pid = true, .pid = 0 };
	Tessera__V1__Agent *a = spawn("sleep 30", 0);
	char foreign[TSR_AGENT_ID_MAX + 1], twin[TSR_AGENT_ID_MAX + 1], why[256];
	uint64_t ticks;
	pid_t live;

	live = fx_bystander(&ticks);
	fx_track(&fx, live);
	record(foreign, RUNNING, &none);
	forge_process(foreign, live, ticks);
	record(twin, RUNNING, &none);
	forge_process(twin, a->pid, a->pid_start_ticks);
	restart_spoke();
	ck_assert(!supervisor_has(fx.sp.sv, foreign));
	ck_assert(!supervisor_has(fx.sp.sv, twin));
	ck_assert(supervisor_has(fx.sp.sv, a->id));
	ck_assert_int_eq(ended(foreign, why, sizeof(why)), FAILED);
	ck_assert_msg(strstr(why, "its recorded process is not this agent's tessera-shim") == why &&
			      strstr(why, " runs /") != NULL,
		      "%s", why);
	ck_assert_int_eq(ended(twin, why, sizeof(why)), FAILED);
	ck_assert_msg(strstr(why, "another first argument") != NULL, "%s", why);
	usleep(200000);
	ck_assert_int_eq(waitpid(live, NULL, WNOHANG), 0);
	ck_assert(supervisor_has(fx.sp.sv, a->id));
	ck_assert_int_eq(kill(a->pid, 0), 0);
	kill(live, SIGKILL);
	ck_assert_int_eq(waitpid(live, NULL, 0), live);
	tessera__v1__agent__free_unpacked(a, NULL);
}
END_TEST

/* Files of agents nobody supervises go; those of queued exits and other files stay. */
START_TEST(test_sweep)
{
	struct store_update upd = { .has_pid = true, .pid = 0 };
	char stray[TSR_AGENT_ID_MAX + 1], queued[TSR_AGENT_ID_MAX + 1], path[200];
	Tessera__V1__Agent *live = spawn("sleep 30", 0);

	ck_assert_int_eq(ids_new_agent_id(FX_SPOKE, stray, sizeof(stray)), 0);
	agent_file(stray, AGENT_FILE_OUT, "old\n");
	agent_file(stray, AGENT_FILE_EXIT, "exit 0\n");
	record(queued, RUNNING, &upd);
	agent_file(queued, AGENT_FILE_OUT, "kept until recorded\n");
	fx_state_path(&fx, "notes.txt", path, sizeof(path));
	fx_write_file(path, "not an agent's\n");
	fx_state_path(&fx, "x.y.out", path, sizeof(path));
	fx_write_file(path, "no agent id\n");
	restart_spoke();
	ck_assert(!agent_file_exists(stray, AGENT_FILE_OUT));
	ck_assert(!agent_file_exists(stray, AGENT_FILE_EXIT));
	ck_assert(agent_file_exists(queued, AGENT_FILE_OUT));
	ck_assert(agent_file_exists(live->id, AGENT_FILE_OUT));
	ck_assert_int_eq(access(path, F_OK), 0);
	fx_state_path(&fx, "notes.txt", path, sizeof(path));
	ck_assert_int_eq(access(path, F_OK), 0);
	fx_settle(&fx, queued);
	ck_assert(!agent_file_exists(queued, AGENT_FILE_OUT));
	tessera__v1__agent__free_unpacked(live, NULL);
}
END_TEST

/* An agent this supervisor has already: recovery runs only at start-up, and says so. */
START_TEST(test_already_supervised)
{
	Tessera__V1__Agent *a = spawn("sleep 30", 0);
	struct tsr_err err;

	ck_assert_int_eq(recovery_run(&fx.sp, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_ALREADY_EXISTS);
	ck_assert_ptr_nonnull(strstr(err.msg, a->id));
	ck_assert(supervisor_has(fx.sp.sv, a->id));
	tessera__v1__agent__free_unpacked(a, NULL);
}
END_TEST

START_TEST(test_failures)
{
	struct store_update upd = { .has_pid = true, .pid = 0 };
	char id[TSR_AGENT_ID_MAX + 1], cmd[160];
	struct tsr_err err;

	/* No state directory to sweep. */
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx.state_dir);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(recovery_run(&fx.sp, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "state-dir"));

	record(id, RUNNING, &upd);
	fx_valkey_stop(&fx.valkey);
	ck_assert_int_eq(recovery_run(&fx.sp, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
}
END_TEST

int test_suite(SRunner *sr)
{
	int rc = fx_check_env();
	TCase *tc;

	if (rc != 0)
		return rc;
	tc = check_suite(sr, "recovery",
			 CHECK_TESTS(test_spawning_fails, test_no_process_or_other_boot,
				     test_ended_with_exit_file, test_not_adopted, test_adopted,
				     test_pid_ns_changed, test_pid_ns_inode_reused,
				     test_pid_ns_same_or_unrecorded, test_exit_record_fifo,
				     test_forged_records, test_sweep, test_already_supervised,
				     test_failures));
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	return 0;
}
