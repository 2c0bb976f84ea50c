/*
 * rpc_loop: the completion queue a daemon (or the CLI) runs on, and the
 * tags that travel through it. Every operation put on the queue carries a
 * struct rpc_tag whose done() is called on the loop thread when it
 * completes; the loop counts operations in flight so that a shutdown can
 * wait for all of them.
 */
#ifndef TSR_RPC_LOOP_H
#define TSR_RPC_LOOP_H

#include <grpc/grpc.h>
#include <stdbool.h>

#include "error.h"

struct rpc_tag {
	void (*done)(struct rpc_tag *tag, bool ok);
};

struct rpc_loop;

typedef void (*rpc_tick_fn)(void *arg);

int rpc_loop_new(struct rpc_loop **out, struct tsr_err *err);
/* Shuts the queue down, drains it and frees the loop. */
void rpc_loop_free(struct rpc_loop *loop);
grpc_completion_queue *rpc_loop_cq(struct rpc_loop *loop);

/* fn runs on the loop thread about every interval_ms (timers, health). */
void rpc_loop_set_tick(struct rpc_loop *loop, rpc_tick_fn fn, void *arg, int interval_ms);

/*
 * Lets other threads call rpc_loop_tick_soon (a channel of its own, never
 * connected, rings the queue). Called once, before any of them can.
 */
int rpc_loop_doorbell(struct rpc_loop *loop, struct tsr_err *err);
/*
 * Thread-safe: the tick runs at the loop's next wake-up, which comes at
 * once, instead of when its interval is up. Needs rpc_loop_doorbell, else
 * does nothing. Rings at most once until the loop has heard it.
 */
void rpc_loop_tick_soon(struct rpc_loop *loop);

/*
 * fn(arg) runs once on the loop thread when nothing else is ready on the
 * queue, so that work which arrived together is done together (spawns
 * recorded in one durable write), but after RPC_LOOP_IDLE_EVENTS_MAX
 * events at most, and before rpc_loop_run returns or the loop is freed.
 * One at a time: a second fn before the first has run is refused (-1).
 */
#define RPC_LOOP_IDLE_EVENTS_MAX 64
int rpc_loop_when_idle(struct rpc_loop *loop, rpc_tick_fn fn, void *arg);

/* Before and after each grpc_call_start_batch() of the loop's queue. */
void rpc_loop_op_started(struct rpc_loop *loop);

/* Runs until *done becomes true (set by a handler) or rpc_loop_stop(). */
void rpc_loop_run(struct rpc_loop *loop, const volatile bool *done);
/* Async-signal-safe: asks rpc_loop_run to return at its next wake-up. */
void rpc_loop_stop(struct rpc_loop *loop);
bool rpc_loop_stopping(struct rpc_loop *loop);
/* Runs until no operation is in flight, or timeout_ms passes. */
void rpc_loop_drain(struct rpc_loop *loop, int timeout_ms);

gpr_timespec rpc_deadline_in(int64_t ms);

#endif
