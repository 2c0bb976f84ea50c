/*
 * exits: agent exits waiting to be recorded. The supervisor's reaper
 * thread adds them; the loop thread records them in Valkey, so that every
 * state write happens on one thread, after the spawn that wrote RUNNING,
 * and an exit seen while Valkey is down waits here until it is back.
 */
#ifndef TSR_EXITS_H
#define TSR_EXITS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "ids.h"
#include "supervisor.h"

struct exit_record {
	struct exit_record *next;
	char agent_id[TSR_AGENT_ID_MAX + 1];
	bool started;  /* false: no agent code ran */
	bool signaled; /* then status is the signal number */
	int status;    /* -1 with !signaled: unknown */
	bool kill_requested;
	bool timed_out; /* then timeout_ms ended it */
	uint32_t timeout_ms;
	int64_t completed_at_ms;
	char *output;	    /* owned, NUL-ended output tail, or NULL */
	int64_t output_end; /* where the output and the tail end */
	char detail[160];   /* why, when not started or the status is unknown */
};

struct exits {
	pthread_mutex_t mu;
	struct exit_record *head, *tail; /* owned */
	void (*wake)(void *arg);	 /* called on each push, with mu held, or NULL */
	void *wake_arg;
};

void exits_init(struct exits *ex);
/*
 * Has every push call wake(arg) (NULL: none), so that the loop thread
 * records an exit at once rather than at its next tick. wake must be
 * quick and not touch ex. Once this returns, the old one is not running.
 */
void exits_set_wake(struct exits *ex, void (*wake)(void *arg), void *arg);
void exits_free(struct exits *ex);
/* Thread-safe; -1 only when out of memory. Takes rec->output on success. */
int exits_push(struct exits *ex, const struct exit_record *rec);
/*
 * A supervisor_exit_fn, arg the struct exits: queues the exit, with a copy
 * of its output (an exit whose output cannot be copied goes without it).
 */
void exits_on_supervisor_exit(void *arg, const struct supervisor_exit *ex);
/* Whether an exit of agent_id is queued. Thread-safe. */
bool exits_pending(struct exits *ex, const char *agent_id);
/* Takes the whole queue (owned by the caller, oldest first; free with exit_record_free). */
struct exit_record *exits_take(struct exits *ex);
void exit_record_free(struct exit_record *r);
/* Puts records that could not be recorded back in front, in order. */
void exits_requeue(struct exits *ex, struct exit_record *list);

#endif
