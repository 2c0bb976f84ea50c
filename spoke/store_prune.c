/*
 * store_prune: agent record retention. Ended agents leave the store
 * oldest first once they are older than the retention time or beyond the
 * retention count, each with its index entries and request-map entry, in
 * one atomic script step (store_script's "prune") like every transition.
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* A count in a prune reply, as the script writes it: decimal, not negative. */
static int prune_count(const redisReply *r, size_t i, long long *out)
{
	char *end;

	if (i >= r->elements || r->element[i]->type != REDIS_REPLY_STRING)
		return -1;
	*out = strtoll(r->element[i]->str, &end, 10);
	return *end == '\0' && end != r->element[i]->str && *out >= 0 ? 0 : -1;
}

/* ok, how many went, how many more are due. */
static int prune_outcome(const redisReply *r, void *arg, struct tsr_err *err)
{
	struct store_pruned *p = arg;
	long long deleted, due;

	if (r->elements != 3 || strcmp(r->element[0]->str, "ok") != 0 ||
	    prune_count(r, 1, &deleted) != 0 || prune_count(r, 2, &due) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL,
				   "valkey script: malformed prune reply");
	p->deleted = (size_t)deleted;
	p->due = (size_t)due;
	return 0;
}

int store_agents_prune(struct store *st, const struct store_retention *keep, int64_t now_ms,
		       size_t most, struct store_pruned *out, struct tsr_err *err)
{
	struct store_args args = { 0 };

	if (keep->ms < 1 || keep->count < 0 || most < 1 || most > STORE_PRUNE_BATCH_MAX ||
	    now_ms < 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "retention or prune batch out of bounds");
	if (store_indexes_ensure(st, err) != 0)
		return -1;
	store_args_eval(&args, st, "prune", NULL);
	store_args_str(&args, st->agent_prefix);
	store_args_int(&args, now_ms > keep->ms ? now_ms - keep->ms : 0);
	store_args_int(&args, keep->count);
	store_args_int(&args, (long long)most);
	return store_eval(st, &args, prune_outcome, out, err);
}
