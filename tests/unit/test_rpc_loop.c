/*
 * test_rpc_loop: the loop's doorbell. Another thread's rpc_loop_tick_soon
 * runs the tick at once, long before its interval (an hour here: a loop
 * that missed the ring would keep the test waiting until Check's timeout);
 * rings while one is pending are one; a loop freed with a ring pending
 * drains it. An idle function runs once the queue has nothing ready, one
 * at a time, and before the loop returns or is freed.
 */
#include <check.h>
#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "check_main.h"
#include "rpc_loop.h"

#define HOUR_MS (60 * 60 * 1000)

struct ticks {
	struct rpc_loop *loop;
	atomic_int count;
	volatile bool done;
};

static void count_tick(void *arg)
{
	struct ticks *t = arg;

	atomic_fetch_add(&t->count, 1);
	t->done = true;
}

static void *ring(void *arg)
{
	struct ticks *t = arg;

	rpc_loop_tick_soon(t->loop);
	rpc_loop_tick_soon(t->loop); /* pending still: the same ring */
	return NULL;
}

static void setup(void)
{
	grpc_init();
}

static void teardown(void)
{
	grpc_shutdown();
}

START_TEST(test_ring_from_another_thread)
{
	struct ticks t = { .count = 0, .done = false };
	struct tsr_err err;
	pthread_t th;

	ck_assert_int_eq(rpc_loop_new(&t.loop, &err), 0);
	ck_assert_msg(rpc_loop_doorbell(t.loop, &err) == 0, "%s", err.msg);
	rpc_loop_set_tick(t.loop, count_tick, &t, HOUR_MS);
	for (int round = 0; round < 3; round++) {
		t.done = false;
		ck_assert_int_eq(pthread_create(&th, NULL, ring, &t), 0);
		rpc_loop_run(t.loop, &t.done);
		ck_assert_int_eq(pthread_join(th, NULL), 0);
	}
	/* Each round's ring ran the tick. */
	ck_assert_int_ge(atomic_load(&t.count), 3);
	rpc_loop_free(t.loop);
}
END_TEST

START_TEST(test_free_with_ring_pending)
{
	struct ticks t = { .count = 0, .done = false };
	struct tsr_err err;

	ck_assert_int_eq(rpc_loop_new(&t.loop, &err), 0);
	ck_assert_int_eq(rpc_loop_doorbell(t.loop, &err), 0);
	rpc_loop_set_tick(t.loop, count_tick, &t, HOUR_MS);
	rpc_loop_tick_soon(t.loop);
	rpc_loop_free(t.loop); /* drains the ring: a leak or a hang otherwise */
	ck_assert_int_eq(atomic_load(&t.count), 0);
}
END_TEST

struct idle {
	struct rpc_loop *loop;
	int runs;
	volatile bool done;
};

static void idle_run(void *arg)
{
	struct idle *d = arg;

	d->runs++;
	d->done = true;
}

START_TEST(test_when_idle)
{
	struct idle d = { .runs = 0, .done = false };
	struct tsr_err err;

	ck_assert_int_eq(rpc_loop_new(&d.loop, &err), 0);
	/* Nothing is ready: it runs at the first look, with no wait (no tick set). */
	ck_assert_int_eq(rpc_loop_when_idle(d.loop, idle_run, &d), 0);
	ck_assert_int_eq(rpc_loop_when_idle(d.loop, idle_run, &d), -1);
	rpc_loop_run(d.loop, &d.done);
	ck_assert_int_eq(d.runs, 1);
	/* Set again once it has run; a loop that stops runs it before it returns. */
	ck_assert_int_eq(rpc_loop_when_idle(d.loop, idle_run, &d), 0);
	rpc_loop_stop(d.loop);
	rpc_loop_run(d.loop, NULL);
	ck_assert_int_eq(d.runs, 2);
	/* And a loop freed with one waiting runs it. */
	ck_assert_int_eq(rpc_loop_when_idle(d.loop, idle_run, &d), 0);
	rpc_loop_free(d.loop);
	ck_assert_int_eq(d.runs, 3);
}
END_TEST

int test_suite(SRunner *sr)
{
	TCase *tc = check_suite(sr, "rpc_loop",
				CHECK_TESTS(test_ring_from_another_thread,
					    test_free_with_ring_pending, test_when_idle));

	tcase_add_checked_fixture(tc, setup, teardown);
	return 0;
}
