/* exits: a mutex-guarded FIFO of agent exits. */
#include "exits.h"

#include <stdlib.h>

void exits_init(struct exits *ex)
{
	pthread_mutex_init(&ex->mu, NULL);
	ex->head = ex->tail = NULL;
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
