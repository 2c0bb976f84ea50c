/*
 * store_drain: whether the spoke takes new agents. One key, present while
 * the spoke drains and absent otherwise, written by one command like any
 * record (so Valkey's persistence keeps it as it keeps the agents), and
 * read at start-up: in between, the spoke's memory has it.
 */
#include "store.h"

#include <string.h>

#include "store_internal.h"

#define STORE_DRAINING "1"

static int drain_read(const redisReply *r, void *arg, struct tsr_err *err)
{
	bool *draining = arg;

	if (r->type == REDIS_REPLY_NIL) {
		*draining = false;
		return 0;
	}
	if (r->type != REDIS_REPLY_STRING || strcmp(r->str, STORE_DRAINING) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL,
				   "valkey: the draining key holds something other than \"%s\"",
				   STORE_DRAINING);
	*draining = true;
	return 0;
}

/* SET answers OK, DEL the number of keys it deleted. */
static int drain_written(const redisReply *r, void *arg, struct tsr_err *err)
{
	(void)arg;
	if ((r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0) ||
	    r->type == REDIS_REPLY_INTEGER)
		return 0;
	return tsr_err_set(err, GRPC_STATUS_INTERNAL,
			   "valkey: unexpected reply to the draining key");
}

int store_drain_get(struct store *st, bool *draining, struct tsr_err *err)
{
	struct store_args a = { 0 };

	store_args_str(&a, "GET");
	store_args_str(&a, st->k_draining);
	return store_request(st, &a, STORE_TIMEOUT_MS, drain_read, draining, err);
}

int store_drain_set(struct store *st, bool draining, struct tsr_err *err)
{
	struct store_args a = { 0 };

	store_args_str(&a, draining ? "SET" : "DEL");
	store_args_str(&a, st->k_draining);
	if (draining)
		store_args_str(&a, STORE_DRAINING);
	return store_request(st, &a, STORE_TIMEOUT_MS, drain_written, NULL, err);
}
