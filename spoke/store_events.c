/*
 * store_events: the event stream. Owns its length cap, finding its newest
 * position, reading entries after a position (waiting for them if asked)
 * and refusing a position whose successors have been trimmed off,
 * decoding each entry into a Tessera__V1__Event, and freeing what a read
 * returned.
 */
#include "store.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "lifecycle.h"
#include "store_internal.h"

/* "<ms>-<seq>", both decimal, as Valkey writes stream ids. */
static bool position_valid(const char *p)
{
	size_t a, b;

	a = strspn(p, "0123456789");
	if (a == 0 || a > 20 || p[a] != '-')
		return false;
	b = strspn(p + a + 1, "0123456789");
	return b > 0 && b <= 20 && p[a + 1 + b] == '\0';
}

/* The two numbers of a position_valid one; false if either overflows. */
static bool position_numbers(const char *p, uint64_t v[2])
{
	for (int k = 0; k < 2; k++, p++) { /* p++: past the dash */
		v[k] = 0;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (v[k] > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
				return false;
			v[k] = v[k] * 10 + (uint64_t)(*p - '0');
		}
	}
	return true;
}

static int position_cmp(const uint64_t a[2], const uint64_t b[2])
{
	if (a[0] != b[0])
		return a[0] < b[0] ? -1 : 1;
	return a[1] < b[1] ? -1 : a[1] > b[1];
}

int store_events_keep(struct store *st, long long kept, struct tsr_err *err)
{
	if (kept < STORE_EVENTS_KEPT_MIN || kept > STORE_EVENTS_KEPT_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "events kept must be %d to %d", STORE_EVENTS_KEPT_MIN,
				   STORE_EVENTS_KEPT_MAX);
	st->events_kept = kept;
	return 0;
}

/* Where store_events_last copies the position to. */
struct events_position {
	char *buf;
	size_t len;
};

/* The newest entry's id from XREVRANGE ... COUNT 1; "0-0" for an empty stream. */
static int events_last_reply(const redisReply *r, void *arg, struct tsr_err *err)
{
	struct events_position *p = arg;
	const redisReply *e;
	const char *id = "0-0";

	if (r->type != REDIS_REPLY_ARRAY || r->elements > 1)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey XREVRANGE: unexpected reply");
	if (r->elements == 1) {
		e = r->element[0];
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
		    e->element[0]->type != REDIS_REPLY_STRING ||
		    !position_valid(e->element[0]->str))
			return tsr_err_set(err, GRPC_STATUS_INTERNAL,
					   "valkey XREVRANGE: malformed entry");
		id = e->element[0]->str;
	}
	if (strlen(id) >= p->len)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "store: position buffer too small");
	memcpy(p->buf, id, strlen(id) + 1);
	return 0;
}

int store_events_last(struct store *st, char *position, size_t len, struct tsr_err *err)
{
	struct events_position p = { position, len };
	struct store_args args = { 0 };

	store_args_str(&args, "XREVRANGE");
	store_args_str(&args, st->k_events);
	store_args_str(&args, "+");
	store_args_str(&args, "-");
	store_args_str(&args, "COUNT");
	store_args_str(&args, "1");
	return store_request(st, &args, STORE_TIMEOUT_MS, events_last_reply, &p, err);
}

static int event_own_strings(Tessera__V1__Event *ev, struct tsr_err *err)
{
	char **fields[] = { &ev->position, &ev->type, &ev->agent_id, &ev->spoke_id, &ev->error };

	return store_strings_own(fields, sizeof(fields) / sizeof(fields[0]), err);
}

/* Checks that a decoded event has the fields every event has, and that they agree. */
static int event_check(const struct store *st, const Tessera__V1__Event *ev, unsigned seen,
		       struct tsr_err *err)
{
	const unsigned required = 1u << EF_TYPE | 1u << EF_AGENT | 1u << EF_SPOKE | 1u << EF_OLD |
				  1u << EF_NEW | 1u << EF_TIME;
	char want_type[STORE_EVENT_TYPE_MAX];

	if ((seen & required) != required)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: event lacks fields");
	snprintf(want_type, sizeof(want_type), "agent.%s", lifecycle_state_name(ev->new_state));
	if (strcmp(ev->type, want_type) != 0 || !ids_valid_agent_id(ev->agent_id) ||
	    strcmp(ev->spoke_id, st->spoke) != 0 ||
	    ev->new_state == TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: event fields disagree");
	return 0;
}

/* Builds an event from one stream entry, [id, [field, value, ...]]. */
static int event_decode(const struct store *st, const redisReply *e, Tessera__V1__Event **out,
			struct tsr_err *err)
{
	Tessera__V1__Event *ev;
	const redisReply *fv;
	const char *id = "?";
	unsigned seen;
	int rc = -1;

	ev = malloc(sizeof(*ev));
	if (ev == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "store: out of memory");
	tessera__v1__event__init(ev);
	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING || !position_valid(e->element[0]->str)) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: malformed stream entry");
		goto out;
	}
	id = e->element[0]->str;
	fv = e->element[1];
	if (store_pairs_check(fv, "stream entry", err) != 0 ||
	    store_field_text(e->element[0], STORE_POSITION_MAX - 1, &ev->position, "id", err) !=
		    0 ||
	    store_record_decode(&store_event_record, ev, fv, NULL, &seen, err) != 0 ||
	    event_check(st, ev, seen, err) != 0 || event_own_strings(ev, err) != 0)
		goto out;
	*out = ev;
	ev = NULL;
	rc = 0;
out:
	if (rc != 0) {
		char inner[TSR_ERR_MSG_MAX];

		snprintf(inner, sizeof(inner), "%s", err->msg);
		tsr_err_set(err, err->code, "event %.*s: %s", STORE_POSITION_MAX, id, inner);
	}
	if (ev != NULL)
		tessera__v1__event__free_unpacked(ev, NULL);
	return rc;
}

void store_events_free(Tessera__V1__Event **events, size_t n)
{
	if (events == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		tessera__v1__event__free_unpacked(events[i], NULL);
	free(events);
}

/*
 * One step, so that the entries a read returns and the check that none
 * before them is missing see the same stream: the newest id ever deleted,
 * the oldest id kept, the length, then up to ARGV[2] entries after ARGV[1].
 * No stream at all has lost nothing.
 */
static const char events_read_script[] =
	"if redis.call('EXISTS', KEYS[1]) == 0 then return {'0-0', '0-0', 0, {}} end\n"
	"local info = redis.call('XINFO', 'STREAM', KEYS[1])\n"
	"local f = {}\n"
	"for i = 1, #info - 1, 2 do f[info[i]] = info[i + 1] end\n"
	"local r = redis.call('XREAD', 'COUNT', ARGV[2], 'STREAMS', KEYS[1], ARGV[1])\n"
	"return {f['max-deleted-entry-id'] or '', f['recorded-first-entry-id'] or '',\n"
	"        f['length'] or -1, r and r[1][2] or {}}\n";

/*
 * OUT_OF_RANGE if an entry after after has been deleted: the reader would
 * miss it. Trimming deletes oldest first, so one comparison with the
 * newest deleted id decides; "0-0" asks for whatever is kept.
 */
static int events_check_kept(const char *after, const redisReply *r, struct tsr_err *err)
{
	const redisReply *deleted = r->element[0], *first = r->element[1];
	uint64_t a[2], d[2];

	if (deleted->type != REDIS_REPLY_STRING || first->type != REDIS_REPLY_STRING ||
	    r->element[2]->type != REDIS_REPLY_INTEGER)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: unexpected stream info");
	if (deleted->str[0] == '\0')
		return tsr_err_set(err, GRPC_STATUS_INTERNAL,
				   "valkey XINFO STREAM has no max-deleted-entry-id: "
				   "Valkey 8 is needed");
	if (!position_valid(deleted->str) || !position_numbers(deleted->str, d) ||
	    !position_numbers(after, a))
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: malformed stream info");
	if ((a[0] == 0 && a[1] == 0) || position_cmp(a, d) >= 0)
		return 0;
	if (r->element[2]->integer <= 0)
		return tsr_err_set(err, GRPC_STATUS_OUT_OF_RANGE,
				   "events after position %s are no longer kept "
				   "(retention); none is kept now",
				   after);
	return tsr_err_set(err, GRPC_STATUS_OUT_OF_RANGE,
			   "events after position %s are no longer kept (retention); "
			   "the oldest kept is %.*s",
			   after, STORE_POSITION_MAX, first->str);
}

/* What one read gives store_events_read. */
struct events_got {
	const struct store *st;
	const char *after;
	size_t max_count;
	Tessera__V1__Event **evs; /* owned; NULL until a read gives entries */
	size_t n;		  /* how many of evs are decoded */
};

/* Checks the read script's reply and decodes its entries into g. */
static int events_decode_all(const redisReply *r, void *arg, struct tsr_err *err)
{
	struct events_got *g = arg;
	const redisReply *entries;

	if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
	    r->element[3]->type != REDIS_REPLY_ARRAY || r->element[3]->elements > g->max_count)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL,
				   "valkey: unexpected event read reply");
	if (events_check_kept(g->after, r, err) != 0)
		return -1;
	entries = r->element[3];
	g->evs = calloc(entries->elements > 0 ? entries->elements : 1, sizeof(*g->evs));
	if (g->evs == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "store: out of memory");
	for (; g->n < entries->elements; g->n++)
		if (event_decode(g->st, entries->element[g->n], &g->evs[g->n], err) != 0)
			return -1;
	return 0;
}

/* The read script's arguments, for g: entries after g->after, checked. */
static void args_fetch(struct store_args *args, const struct store *st, const struct events_got *g)
{
	store_args_str(args, "EVAL_RO");
	store_args_str(args, events_read_script);
	store_args_str(args, "1");
	store_args_str(args, st->k_events);
	store_args_str(args, g->after);
	store_args_int(args, (long long)g->max_count);
}

/* Reads without waiting, into g, which holds no events yet. */
static int events_fetch(struct store *st, struct events_got *g, struct tsr_err *err)
{
	struct store_args args = { 0 };

	args_fetch(&args, st, g);
	return store_request(st, &args, STORE_TIMEOUT_MS, events_decode_all, g, err);
}

/*
 * Waits up to block_ms for an entry after g->after, then reads into g as
 * events_fetch does. The wait's own entries are not used (the read
 * checks that none before them was trimmed); the read goes right behind
 * the wait, so the entries come one round trip after they are written.
 */
static int events_wait_fetch(struct store *st, struct events_got *g, int block_ms,
			     struct tsr_err *err)
{
	struct store_args wait = { 0 }, fetch = { 0 };

	store_args_str(&wait, "XREAD");
	store_args_str(&wait, "COUNT");
	store_args_str(&wait, "1");
	store_args_str(&wait, "BLOCK");
	store_args_int(&wait, block_ms);
	store_args_str(&wait, "STREAMS");
	store_args_str(&wait, st->k_events);
	store_args_str(&wait, g->after);
	args_fetch(&fetch, st, g);
	return store_request_after(st, &wait, &fetch, block_ms + STORE_TIMEOUT_MS,
				   events_decode_all, g, err);
}

int store_events_read(struct store *st, const char *after, int block_ms, size_t max_count,
		      Tessera__V1__Event ***events, size_t *n, struct tsr_err *err)
{
	struct events_got g = { st, after, max_count, NULL, 0 };
	int rc = -1;

	*events = NULL;
	*n = 0;
	if (!position_valid(after)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid stream position");
		goto out;
	}
	if (block_ms < 0 || block_ms > STORE_BLOCK_MAX_MS || max_count == 0 ||
	    max_count > STORE_READ_MAX) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
			    "event read: block 0..%d ms, count 1..%d", STORE_BLOCK_MAX_MS,
			    STORE_READ_MAX);
		goto out;
	}
	if (events_fetch(st, &g, err) != 0)
		goto out;
	if (g.n == 0 && block_ms > 0) {
		store_events_free(g.evs, 0);
		g.evs = NULL;
		if (events_wait_fetch(st, &g, block_ms, err) != 0)
			goto out;
	}
	/* Nothing read is NULL, as the header says, whichever read came last. */
	if (g.n > 0) {
		*events = g.evs;
		*n = g.n;
		g.evs = NULL;
	}
	rc = 0;
out:
	store_events_free(g.evs, g.n);
	return rc;
}
