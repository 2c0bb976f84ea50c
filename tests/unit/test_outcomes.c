/*
 * test_outcomes: queued exits turned into final states by outcomes_record
 * on a hand-built spoke (spoke_fixture.h): each kind of end and the state,
 * error, exit code or signal and output it records; the agent's files
 * removed once recorded; an exit of an agent already final; exits kept
 * queued, in order, while Valkey is down, then recorded once it is back;
 * and a burst of more exits than one batch writes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_files.h"
#include "check_main.h"
#include "ids.h"
#include "outcomes.h"
#include "spoke_fixture.h"

#define RUNNING TESSERA__V1__AGENT_STATE__AGENT_STATE_RUNNING
#define COMPLETED TESSERA__V1__AGENT_STATE__AGENT_STATE_COMPLETED
#define FAILED TESSERA__V1__AGENT_STATE__AGENT_STATE_FAILED
#define KILLED TESSERA__V1__AGENT_STATE__AGENT_STATE_KILLED

static struct fx fx;

static void setup(void)
{
	fx_up(&fx, "agent cat stdin /bin/cat\n");
}

static void teardown(void)
{
	fx_down(&fx);
}

/* A RUNNING agent of type cat in the store, with both of its files; its id into id. */
static void running(char *id)
{
	Tessera__V1__Agent a = TESSERA__V1__AGENT__INIT;
	struct store_update upd = {
		.has_pid = true, .pid = 999999, .has_started_at_ms = true, .started_at_ms = 1000
	};
	char existing[TSR_AGENT_ID_MAX + 1], pos[STORE_POSITION_MAX], path[AGENT_FILES_PATH_MAX];
	struct tsr_err err;

	ck_assert_int_eq(ids_new_agent_id(FX_SPOKE, id, TSR_AGENT_ID_MAX + 1), 0);
	a.id = id;
	a.spoke_id = FX_SPOKE;
	a.type = "cat";
	ck_assert_msg(store_agent_create(fx.sp.store, &a, existing, sizeof(existing), &err) == 0,
		      "%s", err.msg);
	ck_assert_msg(
		store_agent_transition(fx.sp.store, id, RUNNING, &upd, pos, sizeof(pos), &err) == 0,
		"%s", err.msg);
	for (int k = AGENT_FILE_OUT; k <= AGENT_FILE_EXIT; k++) {
		ck_assert_int_eq(agent_files_path(fx.sp.cfg.state_dir, id, (enum agent_file_kind)k,
						  path, sizeof(path), &err),
				 0);
		fx_write_file(path, k == AGENT_FILE_OUT ? "output\n" : "exit 0\n");
	}
}

static bool files_gone(const char *id)
{
	char path[AGENT_FILES_PATH_MAX];
	struct tsr_err err;

	for (int k = AGENT_FILE_OUT; k <= AGENT_FILE_EXIT; k++) {
		ck_assert_int_eq(agent_files_path(fx.sp.cfg.state_dir, id, (enum agent_file_kind)k,
						  path, sizeof(path), &err),
				 0);
		if (access(path, F_OK) == 0)
			return false;
	}
	return true;
}

static void push(const struct exit_record *rec)
{
	struct exit_record r = *rec;

	if (rec->output != NULL)
		ck_assert_ptr_nonnull(r.output = strdup(rec->output));
	ck_assert_int_eq(exits_push(&fx.sp.exits, &r), 0);
}

/* Records one exit of a fresh RUNNING agent; the agent as recorded. */
static Tessera__V1__Agent *record(struct exit_record rec)
{
	Tessera__V1__Agent *a;

	running(rec.agent_id);
	rec.completed_at_ms = 5000;
	push(&rec);
	outcomes_record(&fx.sp);
	ck_assert(!exits_pending(&fx.sp.exits, rec.agent_id));
	ck_assert(files_gone(rec.agent_id));
	a = fx_get(&fx, rec.agent_id);
	ck_assert_int_eq(a->completed_at_ms, 5000);
	return a;
}

START_TEST(test_completed)
{
	Tessera__V1__Agent *a = record(
		(struct exit_record){ .started = true, .status = 0, .output = "all done\n" });

	ck_assert_int_eq(a->state, COMPLETED);
	ck_assert_int_eq(a->end_case, TESSERA__V1__AGENT__END_EXIT_CODE);
	ck_assert_int_eq(a->exit_code, 0);
	ck_assert_str_eq(a->output, "all done\n");
	ck_assert_str_eq(a->error, "");
	tessera__v1__agent__free_unpacked(a, NULL);
}
END_TEST

START_TEST(test_failed_exit_code)
{
	Tessera__V1__Agent *a = record((struct exit_record){ .started = true, .status = 3 });

	ck_assert_int_eq(a->state, FAILED);
	ck_assert_int_eq(a->end_case, TESSERA__V1__AGENT__END_EXIT_CODE);
	ck_assert_int_eq(a->exit_code, 3);
	ck_assert_str_eq(a->error, "exited with code 3");
	ck_assert_str_eq(a->output, "");
	tessera__v1__agent__free_unpacked(a, NULL);
}
END_TEST

START_TEST(test_failed_signal)
{
	Tessera__V1__Agent *a = record(
		(struct exit_record){ .started = true, .signaled = true, .status = 11 });

	ck_assert_int_eq(a->state, FAILED);
	ck_assert_int_eq(a->end_case, TESSERA__V1__AGENT__END_SIGNAL);
	ck_assert_int_eq(a->signal, 11);
	ck_assert_str_eq(a->error, "ended by signal 11");
	tessera__v1__agent__free_unpacked(a, NULL);
}
END_TEST

START_TEST(test_unknown_status)
{
	Tessera__V1__Agent *a = record((struct exit_record){ .started = true, .status = -1 });

	ck_assert_int_eq(a->state, FAILED);
	ck_assert_int_eq(a->end_case, TESSERA__V1__AGENT__END__NOT_SET);
	ck_assert_str_eq(a->error, "its exit status was lost");
	tessera__v1__agent__free_unpacked(a, NULL);
	a = record((struct exit_record){ .started = true, .status = -1, .detail = "it vanished" });
	ck_assert_int_eq(a->state, FAILED);
	ck_assert_str_eq(a->error, "it vanished");
	tessera__v1__agent__free_unpacked(a, NULL);
}
END_TEST

START_TEST(test_not_started)
{
	Tessera__V1__Agent *a = record((struct exit_record){ .started = false, .status = -1 });

	ck_assert_int_eq(a->state, FAILED);
	ck_assert_str_eq(a->error, "the agent was not started");
	tessera__v1__agent__free_unpacked(a, NULL);
	/* A kill that came before the start: the kill it is. */
	a = record((struct exit_record){ .started = false, .status = -1, .kill_requested = true });
	ck_assert_int_eq(a->state, KILLED);
	ck_assert_str_eq(a->error, "killed on request");
	tessera__v1__agent__free_unpacked(a, NULL);
}
END_TEST

START_TEST(test_timed_out_and_killed)
{
	Tessera__V1__Agent *a = record((struct exit_record){ .started = true,
							     .signaled = true,
							     .status = 15,
							     .timed_out = true,
							     .timeout_ms = 1500 });

	ck_assert_int_eq(a->state, FAILED);
	ck_assert_str_eq(a->error, "timed out after 1500 ms");
	ck_assert_int_eq(a->signal, 15);
	tessera__v1__agent__free_unpacked(a, NULL);
	a = record((struct exit_record){ .started = true,
					 .signaled = true,
					 .status = 15,
					 .kill_requested = true,
					 .output = "bye" });
	ck_assert_int_eq(a->state, KILLED);
	ck_assert_str_eq(a->error, "killed on request");
	ck_assert_str_eq(a->output, "bye");
	tessera__v1__agent__free_unpacked(a, NULL);
}
END_TEST

/* Already final, or gone: nothing more is written, and the files go all the same. */
START_TEST(test_already_final_or_gone)
{
	struct exit_record rec = { .started = true, .status = 7 };
	char buf[64];
	Tessera__V1__Agent *a = record((struct exit_record){ .started = true, .status = 0 });

	snprintf(rec.agent_id, sizeof(rec.agent_id), "%s", a->id);
	push(&rec);
	outcomes_record(&fx.sp);
	ck_assert_str_eq(fx_field(&fx, a->id, "state", buf, sizeof(buf)), "completed");
	ck_assert_str_eq(fx_field(&fx, a->id, "exit_code", buf, sizeof(buf)), "0");
	ck_assert(!exits_pending(&fx.sp.exits, a->id));
	tessera__v1__agent__free_unpacked(a, NULL);

	ck_assert_int_eq(ids_new_agent_id(FX_SPOKE, rec.agent_id, sizeof(rec.agent_id)), 0);
	push(&rec);
	outcomes_record(&fx.sp);
	ck_assert(exits_take(&fx.sp.exits) == NULL);
}
END_TEST

/* Valkey down: the exits wait, in order, and are recorded once it is back. */
START_TEST(test_valkey_down)
{
	struct exit_record one = { .started = true, .status = 0 }, two = one;
	struct exit_record *q;
	redisReply *r;
	Tessera__V1__Agent *a;

	running(one.agent_id);
	running(two.agent_id);
	two.status = 4;
	r = fx_raw(&fx, "SAVE");
	freeReplyObject(r);
	fx_valkey_stop(&fx.valkey);
	push(&one);
	push(&two);
	outcomes_record(&fx.sp);
	outcomes_record(&fx.sp);
	q = exits_take(&fx.sp.exits);
	ck_assert_ptr_nonnull(q);
	ck_assert_str_eq(q->agent_id, one.agent_id);
	ck_assert_ptr_nonnull(q->next);
	ck_assert_str_eq(q->next->agent_id, two.agent_id);
	ck_assert_ptr_null(q->next->next);
	exits_requeue(&fx.sp.exits, q);
	ck_assert(!files_gone(one.agent_id));

	/* The same data again, from the snapshot. */
	fx_valkey_respawn(&fx.valkey);
	outcomes_record(&fx.sp);
	ck_assert_ptr_null(exits_take(&fx.sp.exits));
	a = fx_get(&fx, one.agent_id);
	ck_assert_int_eq(a->state, COMPLETED);
	tessera__v1__agent__free_unpacked(a, NULL);
	a = fx_get(&fx, two.agent_id);
	ck_assert_int_eq(a->state, FAILED);
	ck_assert_int_eq(a->exit_code, 4);
	tessera__v1__agent__free_unpacked(a, NULL);
	ck_assert(files_gone(one.agent_id));
	ck_assert(files_gone(two.agent_id));
}
END_TEST

#define BURST (2 * STORE_TRANSITIONS_MAX + 3) /* exits queued at once: more than two batches */

/*
 * A burst of exits, more than a batch, one of them of an agent already
 * final: queued while Valkey is down, they stay queued whole and in
 * order; once it is back, one call records them all, each with its own
 * end, their events in the order queued, and their files gone.
 */
START_TEST(test_burst)
{
	static struct exit_record rec[BURST];
	char buf[64], pos[STORE_POSITION_MAX];
	struct exit_record *q;
	struct tsr_err err;
	redisReply *r;
	size_t n = 0;

	for (int i = 0; i < BURST; i++) {
		rec[i] = (struct exit_record){ .started = true, .status = i % 3 };
		running(rec[i].agent_id);
	}
	ck_assert_msg(store_agent_transition(fx.sp.store, rec[5].agent_id, KILLED, NULL, pos,
					     sizeof(pos), &err) == 0,
		      "%s", err.msg);
	r = fx_raw(&fx, "SAVE");
	freeReplyObject(r);
	fx_valkey_stop(&fx.valkey);
	for (int i = 0; i < BURST; i++)
		push(&rec[i]);
	outcomes_record(&fx.sp);
	q = exits_take(&fx.sp.exits);
	for (struct exit_record *e = q; e != NULL; e = e->next)
		ck_assert_str_eq(e->agent_id, rec[n++].agent_id);
	ck_assert_uint_eq(n, BURST);
	exits_requeue(&fx.sp.exits, q);

	fx_valkey_respawn(&fx.valkey);
	redisFree(fx.raw); /* its connection went with the old server */
	fx.raw = redisConnectUnix(fx.valkey.sock);
	ck_assert(fx.raw != NULL && fx.raw->err == 0);
	outcomes_record(&fx.sp);
	ck_assert_ptr_null(exits_take(&fx.sp.exits));
	for (int i = 0; i < BURST; i++) {
		const char *want = i == 5 ? "killed" : i % 3 == 0 ? "completed" : "failed";

		ck_assert_str_eq(fx_field(&fx, rec[i].agent_id, "state", buf, sizeof(buf)), want);
		ck_assert(files_gone(rec[i].agent_id));
	}
	/* The stream ends with their events, in the order queued (the final one has none). */
	r = fx_raw(&fx, "XREVRANGE tessera:{%s}:events + - COUNT %d", FX_SPOKE, BURST - 1);
	ck_assert_uint_eq(r->elements, BURST - 1);
	n = BURST - 1;
	for (int i = 0; i < BURST; i++) {
		if (i == 5)
			continue;
		n--;
		ck_assert_str_eq(r->element[n]->element[1]->element[3]->str, rec[i].agent_id);
	}
	freeReplyObject(r);
}
END_TEST

int test_suite(SRunner *sr)
{
	int rc = fx_check_env();
	TCase *tc;

	if (rc != 0)
		return rc;
	tc = check_suite(sr, "outcomes",
			 CHECK_TESTS(test_completed, test_failed_exit_code, test_failed_signal,
				     test_unknown_status, test_not_started,
				     test_timed_out_and_killed, test_already_final_or_gone,
				     test_valkey_down, test_burst));
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	return 0;
}
