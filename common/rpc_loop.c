/*
 * rpc_loop: one completion queue driven by grpc_completion_queue_next().
 * Wakes at least every RPC_LOOP_WAKE_MS so that timers and stop requests
 * are seen without any other thread touching the queue; another thread
 * that needs the tick at once rings the doorbell.
 */
#include "rpc_loop.h"

#include <grpc/grpc_security.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

#include "clock.h"

#define RPC_LOOP_WAKE_MS 100
/* Where the doorbell channel points: never a socket, and never dialled. */
#define RPC_LOOP_DOORBELL_TARGET "unix:/dev/null/tessera-doorbell"

struct rpc_loop {
	grpc_completion_queue *cq;
	volatile sig_atomic_t stop;
	atomic_long in_flight; /* send batches may start on other threads */
	rpc_tick_fn tick;
	void *tick_arg;
	int tick_interval_ms;
	int64_t next_tick_ms;
	/*
	 * Owned, or NULL: a channel that never connects. Watching it for a
	 * state other than its own completes at once, which is the one way
	 * the public core API lets another thread put a tag on the queue.
	 */
	grpc_channel *doorbell;
	atomic_bool ringing; /* bell_tag is on the queue */
	struct rpc_tag bell_tag;
	rpc_tick_fn idle; /* rpc_loop_when_idle's, until it runs; or NULL */
	void *idle_arg;
	int idle_events; /* handled since it was set */
};

gpr_timespec rpc_deadline_in(int64_t ms)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

int rpc_loop_new(struct rpc_loop **out, struct tsr_err *err)
{
	struct rpc_loop *loop;

	loop = calloc(1, sizeof(*loop));
	if (loop == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	loop->cq = grpc_completion_queue_create_for_next(NULL);
	if (loop->cq == NULL) {
		free(loop);
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "cannot create completion queue");
	}
	*out = loop;
	return 0;
}

grpc_completion_queue *rpc_loop_cq(struct rpc_loop *loop)
{
	return loop->cq;
}

void rpc_loop_set_tick(struct rpc_loop *loop, rpc_tick_fn fn, void *arg, int interval_ms)
{
	loop->tick = fn;
	loop->tick_arg = arg;
	loop->tick_interval_ms = interval_ms;
	loop->next_tick_ms = clock_mono_ms() + interval_ms;
}

static void rpc_loop_bell_done(struct rpc_tag *tag, bool ok)
{
	struct rpc_loop *loop = (struct rpc_loop *)((char *)tag -
						    offsetof(struct rpc_loop, bell_tag));

	(void)ok;
	/* Cleared before the tick runs: a ring from now on is a new one. */
	atomic_store(&loop->ringing, false);
	loop->next_tick_ms = 0;
}

int rpc_loop_doorbell(struct rpc_loop *loop, struct tsr_err *err)
{
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();

	if (creds == NULL)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "cannot make the loop's doorbell");
	loop->doorbell = grpc_channel_create(RPC_LOOP_DOORBELL_TARGET, creds, NULL);
	grpc_channel_credentials_release(creds);
	if (loop->doorbell == NULL)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "cannot make the loop's doorbell");
	loop->bell_tag.done = rpc_loop_bell_done;
	return 0;
}

void rpc_loop_tick_soon(struct rpc_loop *loop)
{
	if (loop->doorbell == NULL || atomic_exchange(&loop->ringing, true))
		return;
	rpc_loop_op_started(loop);
	grpc_channel_watch_connectivity_state(loop->doorbell, GRPC_CHANNEL_SHUTDOWN,
					      gpr_inf_future(GPR_CLOCK_MONOTONIC), loop->cq,
					      &loop->bell_tag);
}

int rpc_loop_when_idle(struct rpc_loop *loop, rpc_tick_fn fn, void *arg)
{
	if (loop->idle != NULL)
		return -1;
	loop->idle = fn;
	loop->idle_arg = arg;
	loop->idle_events = 0;
	return 0;
}

/* Runs the idle function, if one is set; it may set another. */
static void rpc_loop_idle_now(struct rpc_loop *loop)
{
	rpc_tick_fn fn = loop->idle;

	if (fn == NULL)
		return;
	loop->idle = NULL;
	fn(loop->idle_arg);
}

void rpc_loop_op_started(struct rpc_loop *loop)
{
	loop->in_flight++;
}

void rpc_loop_stop(struct rpc_loop *loop)
{
	loop->stop = 1;
}

bool rpc_loop_stopping(struct rpc_loop *loop)
{
	return loop->stop != 0;
}

/*
 * One wait on the queue, none while an idle function waits for the queue
 * to have nothing ready; returns false once the queue is shut down.
 */
static bool rpc_loop_step(struct rpc_loop *loop, int wait_ms)
{
	bool idle_set = loop->idle != NULL;
	grpc_event ev;
	int64_t now;

	ev = grpc_completion_queue_next(
		loop->cq, idle_set ? gpr_inf_past(GPR_CLOCK_MONOTONIC) : rpc_deadline_in(wait_ms),
		NULL);
	switch (ev.type) {
	case GRPC_OP_COMPLETE: {
		struct rpc_tag *tag = ev.tag;

		loop->in_flight--;
		tag->done(tag, ev.success != 0);
		if (idle_set && ++loop->idle_events >= RPC_LOOP_IDLE_EVENTS_MAX)
			rpc_loop_idle_now(loop);
		break;
	}
	case GRPC_QUEUE_SHUTDOWN:
		return false;
	case GRPC_QUEUE_TIMEOUT:
		if (idle_set)
			rpc_loop_idle_now(loop);
		break;
	}
	if (loop->tick != NULL) {
		now = clock_mono_ms();
		if (now >= loop->next_tick_ms) {
			loop->next_tick_ms = now + loop->tick_interval_ms;
			loop->tick(loop->tick_arg);
		}
	}
	return true;
}

void rpc_loop_run(struct rpc_loop *loop, const volatile bool *done)
{
	while (!loop->stop && (done == NULL || !*done))
		if (!rpc_loop_step(loop, RPC_LOOP_WAKE_MS))
			break;
	rpc_loop_idle_now(loop);
}

void rpc_loop_drain(struct rpc_loop *loop, int timeout_ms)
{
	int64_t until = clock_mono_ms() + timeout_ms;

	while (loop->in_flight > 0 && clock_mono_ms() < until)
		if (!rpc_loop_step(loop, RPC_LOOP_WAKE_MS))
			break;
}

void rpc_loop_free(struct rpc_loop *loop)
{
	grpc_event ev;

	if (loop == NULL)
		return;
	/* Its work holds calls that only it answers. */
	rpc_loop_idle_now(loop);
	/* A ring still pending completes now, and is drained below. */
	if (loop->doorbell != NULL)
		grpc_channel_destroy(loop->doorbell);
	grpc_completion_queue_shutdown(loop->cq);
	do {
		ev = grpc_completion_queue_next(loop->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC),
						NULL);
		if (ev.type == GRPC_OP_COMPLETE) {
			struct rpc_tag *tag = ev.tag;

			loop->in_flight--;
			tag->done(tag, false);
		}
	} while (ev.type != GRPC_QUEUE_SHUTDOWN);
	grpc_completion_queue_destroy(loop->cq);
	free(loop);
}
