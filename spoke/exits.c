/* exits: a mutex-guarded FIFO of agent exits. */
#include "exits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void exits_init(struct exits *ex)
{
	pthread_mutex_init(&ex->mu, NULL);
	ex->head = ex->tail = NULL;
	ex->wake = NULL;
	ex->wake_arg = NULL;
}

void exits_set_wake(struct exits *ex, void (*wake)(void *arg), void *arg)
{
	pthread_mutex_lock(&ex->mu);
	ex->wake = wake;
	ex->wake_arg = arg;
	pthread_mutex_unlock(&ex->mu);
}

void exit_record_free(struct exit_record *r)
{
	if (r == NULL)
		return;
	free(r->output);
	free(r);
}

static void exits_free_list(struct exit_record *r)
{
	while (r != NULL) {
		struct exit_record *next = r->next;

		exit_record_free(r);
		r = next;
	}
}

void exits_free(struct exits *ex)
{
	exits_free_list(ex->head);
	ex->head = ex->tail = NULL;
	pthread_mutex_destroy(&ex->mu);
}

int exits_push(struct exits *ex, const struct exit_record *rec)
{
	struct exit_record *r = malloc(sizeof(*r));

	if (r == NULL)
		return -1;
	*r = *rec;
	r->next = NULL;
	pthread_mutex_lock(&ex->mu);
	if (ex->tail != NULL)
		ex->tail->next = r;
	else
		ex->head = r;
	ex->tail = r;
	/* Under mu: once exits_set_wake has cleared it, no call is still under way. */
	if (ex->wake != NULL)
		ex->wake(ex->wake_arg);
	pthread_mutex_unlock(&ex->mu);
	return 0;
}

struct exit_record *exits_take(struct exits *ex)
{
	struct exit_record *list;

	pthread_mutex_lock(&ex->mu);
	list = ex->head;
	ex->head = ex->tail = NULL;
	pthread_mutex_unlock(&ex->mu);
	return list;
}

void exits_requeue(struct exits *ex, struct exit_record *list)
{
	struct exit_record *last;

	if (list == NULL)
		return;
	for (last = list; last->next != NULL; last = last->next)
		;
	pthread_mutex_lock(&ex->mu);
	last->next = ex->head;
	if (ex->head == NULL)
		ex->tail = last;
	ex->head = list;
	pthread_mutex_unlock(&ex->mu);
}

bool exits_pending(struct exits *ex, const char *agent_id)
{
	bool found = false;

	pthread_mutex_lock(&ex->mu);
	for (const struct exit_record *r = ex->head; r != NULL && !found; r = r->next)
		found = strcmp(r->agent_id, agent_id) == 0;
	pthread_mutex_unlock(&ex->mu);
	return found;
}

void exits_on_supervisor_exit(void *arg, const struct supervisor_exit *ex)
{
	struct exits *q = arg;
	struct exit_record rec = { 0 };

	snprintf(rec.agent_id, sizeof(rec.agent_id), "%s", ex->agent_id);
	rec.started = ex->started;
	rec.signaled = ex->signaled;
	rec.status = ex->status;
	rec.kill_requested = ex->kill_requested;
	rec.timed_out = ex->timed_out;
	rec.timeout_ms = ex->timeout_ms;
	rec.completed_at_ms = ex->completed_at_ms;
	if (ex->detail != NULL)
		snprintf(rec.detail, sizeof(rec.detail), "%s", ex->detail);
	/* A lost tail must not cost the exit: it is recorded without one. */
	if (ex->output != NULL && (rec.output = strdup(ex->output)) == NULL)
		log_agent_error(ex->agent_id, "out of memory copying its output");
	rec.output_end = ex->output_end;
	if (exits_push(q, &rec) != 0) {
		log_agent_error(ex->agent_id, "out of memory queueing its exit");
		free(rec.output);
	}
}
