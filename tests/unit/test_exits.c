/*
 * test_exits: the queue of agent exits between the reaper thread and the
 * loop thread: order, takes, pending look-ups, requeueing in front of
 * exits queued meanwhile, freeing with outputs still owned, and pushes
 * from several threads at once.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "exits.h"

#define PUSHERS 4
#define PUSHES 250

static struct exits ex;

static void setup(void)
{
	exits_init(&ex);
}

static void teardown(void)
{
	exits_free(&ex);
}

static void push(const char *id, const char *output)
{
	struct exit_record r = { .status = 0 };

	snprintf(r.agent_id, sizeof(r.agent_id), "%s", id);
	if (output != NULL)
		ck_assert_ptr_nonnull(r.output = strdup(output));
	ck_assert_int_eq(exits_push(&ex, &r), 0);
}

/* The ids of list, in order, joined by spaces, into buf. */
static const char *ids(const struct exit_record *list, char *buf, size_t len)
{
	buf[0] = '\0';
	for (const struct exit_record *r = list; r != NULL; r = r->next)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? " " : "",
			 r->agent_id);
	return buf;
}

static void free_list(struct exit_record *r)
{
	while (r != NULL) {
		struct exit_record *next = r->next;

		exit_record_free(r);
		r = next;
	}
}

START_TEST(test_fifo)
{
	struct exit_record *list;
	char buf[128];

	ck_assert_ptr_null(exits_take(&ex));
	push("a", "out of a");
	push("b", NULL);
	push("c", "");
	ck_assert(exits_pending(&ex, "b"));
	ck_assert(!exits_pending(&ex, "d"));
	list = exits_take(&ex);
	ck_assert_str_eq(ids(list, buf, sizeof(buf)), "a b c");
	ck_assert_str_eq(list->output, "out of a");
	ck_assert_ptr_null(list->next->output);
	ck_assert(!exits_pending(&ex, "a"));
	ck_assert_ptr_null(exits_take(&ex));
	/* Emptied, the queue takes new ones at its tail again. */
	push("d", NULL);
	free_list(list);
	list = exits_take(&ex);
	ck_assert_str_eq(ids(list, buf, sizeof(buf)), "d");
	free_list(list);
	exit_record_free(NULL);
}
END_TEST

START_TEST(test_requeue)
{
	struct exit_record *list;
	char buf[128];

	exits_requeue(&ex, NULL);
	ck_assert_ptr_null(exits_take(&ex));
	push("a", "x");
	push("b", NULL);
	list = exits_take(&ex);
	/* Into an empty queue: a later push goes behind them. */
	exits_requeue(&ex, list);
	push("c", NULL);
	list = exits_take(&ex);
	ck_assert_str_eq(ids(list, buf, sizeof(buf)), "a b c");
	/* In front of what came meanwhile. */
	push("d", NULL);
	push("e", NULL);
	exits_requeue(&ex, list);
	ck_assert(exits_pending(&ex, "e"));
	ck_assert(exits_pending(&ex, "a"));
	push("f", NULL);
	list = exits_take(&ex);
	ck_assert_str_eq(ids(list, buf, sizeof(buf)), "a b c d e f");
	/* Left queued, with its output: exits_free (teardown) frees them. */
	exits_requeue(&ex, list);
}
END_TEST

static void *pusher(void *arg)
{
	int n = *(int *)arg;

	for (int i = 0; i < PUSHES; i++) {
		struct exit_record r = { .status = i };

		snprintf(r.agent_id, sizeof(r.agent_id), "t%d-%d", n, i);
		r.output = malloc(8);
		if (r.output == NULL || exits_push(&ex, &r) != 0)
			return (void *)1;
	}
	return NULL;
}

START_TEST(test_threads)
{
	pthread_t t[PUSHERS];
	int arg[PUSHERS], last[PUSHERS];
	struct exit_record *list;
	size_t n = 0;
	void *rv;

	for (int i = 0; i < PUSHERS; i++) {
		arg[i] = i;
		last[i] = -1;
		ck_assert_int_eq(pthread_create(&t[i], NULL, pusher, &arg[i]), 0);
	}
	for (int i = 0; i < PUSHERS; i++) {
		ck_assert_int_eq(pthread_join(t[i], &rv), 0);
		ck_assert_ptr_null(rv);
	}
	list = exits_take(&ex);
	/* Every exit once, each thread's in the order it pushed them. */
	for (struct exit_record *r = list; r != NULL; r = r->next, n++) {
		int who, seq;

		ck_assert_int_eq(sscanf(r->agent_id, "t%d-%d", &who, &seq), 2);
		ck_assert_int_eq(seq, last[who] + 1);
		last[who] = seq;
	}
	ck_assert_uint_eq(n, PUSHERS * PUSHES);
	free_list(list);
}
END_TEST

int test_suite(SRunner *sr)
{
	TCase *tc;

	tc = check_suite(sr, "exits", CHECK_TESTS(test_fifo, test_requeue, test_threads));
	tcase_add_checked_fixture(tc, setup, teardown);
	return 0;
}
