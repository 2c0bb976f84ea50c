/*
 * watch: watchers and their spoke streams. Everything runs on the loop
 * thread. A watcher is freed once it is ending and none of its streams
 * has a call in flight; the user's call is finished at that moment.
 *
 * Positions: each configured spoke has a place in the watcher's cursor.
 * It comes from the caller's cursor, or is "0-0" (from the start), or,
 * for a watch "from now", the hub's clock when the watch began: the spoke
 * is first asked for events after now, and should its stream fail before
 * any event arrived, it is resumed after that time rather than after a
 * new "now", which would lose whatever happened in between. That floor
 * assumes the hub's and the spoke's clocks agree (the envelopes' time
 * window assumes as much).
 *
 * Trust: a spoke stream's start comes from its first message, an event
 * signed by the spoke that names the command this attempt sent (a stream
 * marker); an event about another spoke's agent is dropped. Each watcher
 * keeps the token that opened it: a token gets HUB_WATCHERS_PER_TOKEN_MAX
 * watches, and a watch whose token SIGHUP removed ends UNAUTHENTICATED.
 */
#include "watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "command.h"
#include "cursor.h"
#include "envelope.h"
#include "hub_limits.h"
#include "hub_metrics.h"
#include "ids.h"
#include "log.h"
#include "pb.h"
#include "rpc_client.h"
#include "rpc_metadata.h"
#include "tessera/v1/hub.pb-c.h"

#define WATCH_BACKOFF_MIN_MS 200
#define WATCH_BACKOFF_MAX_MS 5000

struct watch_pos { /* one configured spoke's place in a watch */
	struct stream_pos pos;
	bool have;  /* pos belongs in the cursor */
	bool exact; /* a real stream id: later events must pass it */
};

struct watcher;

/*
 * Where a spoke stream is. An outage runs from an attempt's end (or failed
 * start) to the stream's next event: it is logged once, and its retries
 * back off. A broken stream sent something untrustworthy: its call is
 * being cancelled and the rest of what it sends is ignored.
 *
 *   NEW       start: ASKING
 *   ASKING    its signed start: OPEN; bad: BROKEN
 *   OPEN      bad: BROKEN
 *   WAITING   at retry_ms, start: RETRYING
 *   RETRYING  an event after its start: OPEN; bad: RETRY_BROKEN
 *   any       the attempt ends, or fails to start: WAITING (unless the
 *             watch is ending: then states no longer matter)
 */
enum watch_stream_state {
	WATCH_STREAM_NEW,	   /* not asked yet */
	WATCH_STREAM_ASKING,	   /* first attempt; no answer yet */
	WATCH_STREAM_OPEN,	   /* answered, or brought an event; no outage */
	WATCH_STREAM_BROKEN,	   /* no outage */
	WATCH_STREAM_WAITING,	   /* outage; no call until retry_ms */
	WATCH_STREAM_RETRYING,	   /* outage; an attempt in flight, no event yet */
	WATCH_STREAM_RETRY_BROKEN, /* outage */
};

struct watch_stream { /* one watched spoke's StreamEvents */
	struct watcher *w;
	struct spoke *sp;
	struct rpc_client_call *call; /* NULL between attempts */
	enum watch_stream_state state;
	int64_t started_ms; /* monotonic, this attempt */
	int64_t retry_ms;   /* monotonic time of the next attempt (WAITING) */
	int64_t backoff_ms;
	char command_id[COMMAND_ID_LEN + 1]; /* this attempt's EVENTS_STREAM */
	bool started;			     /* this attempt's signed start came */
};

struct watcher {
	struct watcher *prev, *next;
	struct watches *ws;
	struct rpc_call *call;		     /* the user's: finished when the watcher is freed */
	struct auth_caller caller;	     /* whose token opened it */
	char agent_id[TSR_AGENT_ID_MAX + 1]; /* "": every agent */
	struct watch_pos *pos;		     /* owned: one per configured spoke */
	struct watch_stream *streams;	     /* owned: one per watched spoke */
	size_t nstreams;
	size_t live; /* streams with a call in flight */
	bool headers_sent;
	bool ending;
	grpc_status_code end_code;
	char end_msg[TSR_ERR_MSG_MAX];
};

struct watches {
	struct hub *hub;
	const struct auth *auth;
	struct watcher *head; /* owned */
	size_t n;
};

int watches_new(struct hub *h, const struct auth *auth, struct watches **out, struct tsr_err *err)
{
	struct watches *ws;

	ws = calloc(1, sizeof(*ws));
	if (ws == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	ws->hub = h;
	ws->auth = auth;
	*out = ws;
	return 0;
}

void watches_free(struct watches *ws)
{
	if (ws == NULL)
		return;
	if (ws->n > 0)
		log_warn("%zu watches still open at exit", ws->n);
	free(ws);
}

static void watch_free(struct watcher *w)
{
	free(w->pos);
	free(w->streams);
	free(w);
}

/* Finishes the user's call and frees w once it is ending and quiet. */
static void watch_maybe_finish(struct watcher *w)
{
	struct watches *ws = w->ws;

	if (!w->ending || w->live > 0)
		return;
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		ws->head = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	ws->n--;
	log_debug("watch ended: %s", w->end_msg);
	hub_call_finish(w->call, w->end_code, w->end_msg);
	watch_free(w);
}

/* Starts ending w: its streams are cancelled; w may be freed on return. */
static void watch_end(struct watcher *w, grpc_status_code code, const char *msg)
{
	if (w->ending)
		return;
	w->ending = true;
	w->end_code = code;
	snprintf(w->end_msg, sizeof(w->end_msg), "%s", msg);
	for (size_t i = 0; i < w->nstreams; i++)
		if (w->streams[i].call != NULL)
			rpc_client_cancel(w->streams[i].call);
	watch_maybe_finish(w);
}

static bool watch_stream_in_outage(const struct watch_stream *s)
{
	return s->state == WATCH_STREAM_WAITING || s->state == WATCH_STREAM_RETRYING ||
	       s->state == WATCH_STREAM_RETRY_BROKEN;
}

/* Answered with headers, failed, or broken, at least once. */
static bool watch_stream_settled(const struct watch_stream *s)
{
	return s->state != WATCH_STREAM_NEW && s->state != WATCH_STREAM_ASKING;
}

/* The attempt is over: s waits for its next one. */
static void watch_retry_later(struct watch_stream *s, grpc_status_code code, const char *details)
{
	int64_t now = clock_mono_ms();

	/* A new outage, or an attempt that worked for a while, backs off afresh. */
	if (!watch_stream_in_outage(s) || now - s->started_ms >= WATCH_BACKOFF_MAX_MS) {
		s->backoff_ms = WATCH_BACKOFF_MIN_MS;
		log_warn("watch: events of spoke %s stopped (%d: %s); resuming in %lld ms",
			 s->sp->conf->id, (int)code, details, (long long)s->backoff_ms);
	} else {
		log_debug("watch: spoke %s stream failed again (%d: %s)", s->sp->conf->id,
			  (int)code, details);
	}
	s->state = WATCH_STREAM_WAITING;
	s->retry_ms = now + s->backoff_ms;
	s->backoff_ms = s->backoff_ms * 2 > WATCH_BACKOFF_MAX_MS ? WATCH_BACKOFF_MAX_MS
								 : s->backoff_ms * 2;
}

/* Drops a stream that sent something untrustworthy; it resumes later. */
static void watch_stream_break(struct watch_stream *s, const char *why)
{
	log_error("watch: %s; reconnecting to spoke %s", why, s->sp->conf->id);
	s->state = watch_stream_in_outage(s) ? WATCH_STREAM_RETRY_BROKEN : WATCH_STREAM_BROKEN;
	rpc_client_cancel(s->call);
}

/* *out: the malloc'd cursor holding every position w knows. */
static int watch_cursor(const struct watcher *w, char **out, struct tsr_err *err)
{
	const struct spokes *spokes = w->ws->hub->spokes;
	struct cursor_entry *e;
	size_t n = 0;
	int rc;

	e = calloc(spokes->n, sizeof(*e));
	if (e == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	for (size_t i = 0; i < spokes->n; i++) {
		if (!w->pos[i].have)
			continue;
		memcpy(e[n].spoke, spokes->v[i].conf->id, strlen(spokes->v[i].conf->id) + 1);
		e[n].pos = w->pos[i].pos;
		n++;
	}
	rc = cursor_encode(e, n, out, err);
	free(e);
	return rc;
}

/*
 * The watch's headers carry its cursor of that moment, so a client that
 * loses the stream before any event still resumes without a gap. They go
 * out once every spoke stream has answered or failed, or (force) right
 * before the first event, whichever comes first: gRPC sends headers only
 * once, ahead of any message.
 */
static bool watch_headers_due(const struct watcher *w, bool force)
{
	if (w->headers_sent || w->ending)
		return false;
	for (size_t i = 0; i < w->nstreams && !force; i++)
		if (!watch_stream_settled(&w->streams[i]))
			return false;
	return true;
}

static int watch_headers_send(struct watcher *w, struct tsr_err *err)
{
	char *cursor = NULL;

	if (watch_cursor(w, &cursor, err) != 0)
		return -1;
	w->headers_sent = true;
	rpc_call_send_headers(w->call, RPC_HEADER_WATCH_CURSOR,
			      strlen(cursor) <= RPC_HEADER_VALUE_MAX ? cursor : "");
	free(cursor);
	return 0;
}

/* Sends the headers if due; w may be freed on return. */
static void watch_headers(struct watcher *w, bool force)
{
	struct tsr_err err;

	if (watch_headers_due(w, force) && watch_headers_send(w, &err) != 0)
		watch_end(w, err.code, err.msg);
}

/* Queues ev with the cursor after it on the user's call. */
static int watch_deliver(struct watcher *w, Tessera__V1__Event *ev, struct tsr_err *err)
{
	Tessera__V1__WatchEventsResponse resp = TESSERA__V1__WATCH_EVENTS_RESPONSE__INIT;
	char *cursor = NULL;
	uint8_t *buf = NULL;
	size_t len;
	int rc = -1;

	if (watch_cursor(w, &cursor, err) != 0)
		goto out;
	resp.event = ev;
	resp.cursor = cursor;
	if (pb_pack(&resp.base, &buf, &len, err) != 0)
		goto out;
	if (rpc_call_send(w->call, buf, len) != 0) {
		if (rpc_call_cancelled(w->call))
			tsr_err_set(err, GRPC_STATUS_CANCELLED, "watcher went away");
		else
			tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
				    "watcher too slow; resume from your cursor");
		goto out;
	}
	hub_metrics_delivered(w->ws->hub->metrics);
	rc = 0;
out:
	free(buf);
	free(cursor);
	return rc;
}

/*
 * p takes the position text announces unless it has an exact one, which
 * text must then be: the spoke starts where it was asked to.
 * The parsed value lives only in here: as the caller's, GCC 12 at -O3 split
 * the caller's tail off, lost where the value's lifetime ends on that path
 * and took the store into *p for a use of a dead local (-Wdangling-pointer).
 */
static int watch_pos_announced(struct watch_pos *p, const char *text, struct tsr_err *err)
{
	struct stream_pos pos;

	if (stream_pos_parse(text, &pos, err) != 0)
		return -1;
	if (p->exact && stream_pos_cmp(&pos, &p->pos) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL,
				   "stream starts after %s, not where it was asked to", text);
	*p = (struct watch_pos){ .pos = pos, .have = true, .exact = true };
	return 0;
}

/*
 * The spoke's first message fixes where its stream starts: an event it
 * signed, of type TSR_EVENT_STREAM_START, naming the command this attempt
 * sent, so that neither unsigned metadata nor a marker replayed from
 * another stream can move a watcher's position. A stream asked "from
 * now" takes that exact position.
 */
static void watch_stream_begin(struct watch_stream *s, const Tessera__V1__Event *ev)
{
	struct tsr_err err;

	if (s->started || strcmp(ev->type, TSR_EVENT_STREAM_START) != 0 ||
	    strcmp(ev->command_id, s->command_id) != 0) {
		watch_stream_break(s, "the stream did not start with its own signed start");
		return;
	}
	if (watch_pos_announced(&s->w->pos[s->sp->index], ev->position, &err) != 0) {
		watch_stream_break(s, err.msg);
		return;
	}
	s->started = true;
	if (s->state == WATCH_STREAM_ASKING)
		s->state = WATCH_STREAM_OPEN;
	watch_headers(s->w, false);
}

/*
 * A spoke speaks only for its own agents, as api.c checks of its replies.
 * An event about another spoke's agent is never delivered, and the stream
 * goes on past it rather than being resumed: the event is in the spoke's
 * record, so a resumed stream would only bring it back and stall every
 * later event of that spoke for good, while skipping it hides nothing a
 * watcher could have trusted. It is logged, so that the operator learns
 * of a spoke that misbehaves (or whose Valkey was written by others).
 */
static bool watch_event_owned(const struct watch_stream *s, const Tessera__V1__Event *ev)
{
	char owner[TSR_NAME_MAX + 1];

	if (ids_agent_spoke(ev->agent_id, owner, sizeof(owner)) == 0 &&
	    strcmp(owner, s->sp->conf->id) == 0)
		return true;
	/* The id is the spoke's word: log.c escapes it. */
	log_agent_error(
		ev->agent_id,
		"watch: spoke %s signed event %s about an agent that is not its own; dropped",
		s->sp->conf->id, ev->position);
	return false;
}

/* An event after the stream's start: delivered unless already seen. */
static void watch_on_event(struct watch_stream *s, Tessera__V1__Event *ev)
{
	struct watcher *w = s->w;
	struct watch_pos *p = &w->pos[s->sp->index];
	struct stream_pos pos;
	struct tsr_err err;

	if (stream_pos_parse(ev->position, &pos, &err) != 0) {
		watch_stream_break(s, err.msg);
		return;
	}
	if (p->exact && stream_pos_cmp(&pos, &p->pos) <= 0) {
		log_debug("watch: spoke %s repeated position %s; dropped", s->sp->conf->id,
			  ev->position);
		return;
	}
	/* The cursor in the headers must not already count this event. */
	watch_headers(w, true);
	p->pos = pos;
	p->have = true;
	p->exact = true;
	if (s->state == WATCH_STREAM_RETRYING)
		log_info("watch: events of spoke %s flow again", s->sp->conf->id);
	s->state = WATCH_STREAM_OPEN;
	if (!watch_event_owned(s, ev))
		return;
	if (w->agent_id[0] != '\0' && strcmp(ev->agent_id, w->agent_id) != 0)
		return;
	if (watch_deliver(w, ev, &err) != 0)
		watch_end(w, err.code, err.msg);
}

static void watch_on_message(void *arg, const uint8_t *msg, size_t len)
{
	struct watch_stream *s = arg;
	Tessera__V1__Event *ev = NULL;
	struct tsr_err err;

	if (s->w->ending || s->state == WATCH_STREAM_BROKEN ||
	    s->state == WATCH_STREAM_RETRY_BROKEN)
		return;
	if (envelope_event_open(msg, len, &s->sp->conf->pub, s->sp->conf->id, &ev, &err) != 0) {
		watch_stream_break(s, err.msg);
		return;
	}
	if (!s->started || strcmp(ev->type, TSR_EVENT_STREAM_START) == 0)
		watch_stream_begin(s, ev);
	else
		watch_on_event(s, ev);
	tessera__v1__event__free_unpacked(ev, NULL);
}

/*
 * The spoke has trimmed events after this watcher's position: resuming
 * would only meet the same answer, and skipping ahead would hide the gap.
 */
static void watch_out_of_range(struct watch_stream *s, const char *details)
{
	char pos[STREAM_POS_TEXT_MAX + 1], msg[TSR_ERR_MSG_MAX];

	stream_pos_format(&s->w->pos[s->sp->index].pos, pos, sizeof(pos));
	snprintf(msg, sizeof(msg),
		 "spoke %s no longer has events after position %s (retention); resume "
		 "without a cursor or from_start (spoke: %s)",
		 s->sp->conf->id, pos, details);
	log_info("watch: %s", msg);
	watch_end(s->w, GRPC_STATUS_OUT_OF_RANGE, msg);
}

static void watch_on_end(void *arg, grpc_status_code code, const char *details)
{
	struct watch_stream *s = arg;
	struct watcher *w = s->w;

	s->call = NULL;
	w->live--;
	if (w->ending) {
		watch_maybe_finish(w);
		return;
	}
	if (code == GRPC_STATUS_OUT_OF_RANGE) {
		watch_out_of_range(s, details);
		return;
	}
	watch_retry_later(s, code, details);
	watch_headers(w, false);
}

/* Seals EVENTS_STREAM for s's spoke from its position and calls it. */
static int watch_stream_call(struct watch_stream *s, struct tsr_err *err)
{
	static const struct rpc_stream_cbs cbs = {
		.on_message = watch_on_message,
		.on_end = watch_on_end,
	};
	Tessera__V1__StreamEventsRequest req = TESSERA__V1__STREAM_EVENTS_REQUEST__INIT;
	const struct watch_pos *p = &s->w->pos[s->sp->index];
	/* Only a spoke placed at the floor asks "from now", and only at first. */
	bool from_now = s->state == WATCH_STREAM_NEW && !p->exact;
	struct hub *h = s->w->ws->hub;
	struct rpc_client_opts opts;
	char pos[STREAM_POS_TEXT_MAX + 1];
	uint8_t *cmd = NULL;
	size_t cmd_len;
	int rc = -1;

	if (!from_now && p->pos.ms == 0 && p->pos.seq == 0) {
		req.from_start = true;
	} else if (!from_now) {
		stream_pos_format(&p->pos, pos, sizeof(pos));
		req.cursor = pos;
	}
	if (command_seal(h->key, s->sp->conf->id,
			 TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_EVENTS_STREAM, &req.base,
			 s->command_id, sizeof(s->command_id), &cmd, &cmd_len, err) != 0)
		goto out;
	s->started = false;
	memset(&opts, 0, sizeof(opts));
	if (rpc_client_stream(h->loop, s->sp->ch, TSR_METHOD_STREAM_EVENTS, cmd, cmd_len, &opts,
			      &cbs, s, &s->call, err) != 0)
		goto out;
	s->w->live++;
	rc = 0;
out:
	free(cmd);
	return rc;
}

/*
 * One attempt; a failure to even start is retried like a failed stream.
 * That may make the headers due: the caller sends them once done with w,
 * as their failure ends the watch, which may free w.
 */
static void watch_stream_start(struct watch_stream *s)
{
	struct tsr_err err;

	s->started_ms = clock_mono_ms();
	if (watch_stream_call(s, &err) != 0) {
		watch_retry_later(s, err.code, err.msg);
		return;
	}
	s->state = watch_stream_in_outage(s) ? WATCH_STREAM_RETRYING : WATCH_STREAM_ASKING;
}

static void watch_on_cancel(void *arg)
{
	watch_end(arg, GRPC_STATUS_CANCELLED, "cancelled");
}

/* Places every spoke from the caller's cursor (ents), then sets up streams. */
static void watch_setup(struct watcher *w, const struct cursor_entry *ents, size_t nents,
			bool from_start, struct spoke *only)
{
	struct spokes *spokes = w->ws->hub->spokes;
	struct stream_pos floor = { .ms = (uint64_t)clock_wall_ms(), .seq = 0 };

	for (size_t i = 0; i < nents; i++) {
		struct spoke *sp = spokes_find(spokes, ents[i].spoke);

		/* A spoke no longer configured has nothing to resume. */
		if (sp == NULL)
			continue;
		w->pos[sp->index] = (struct watch_pos){ .pos = ents[i].pos,
							.have = true,
							.exact = true };
	}
	for (size_t i = 0; i < spokes->n; i++) {
		struct spoke *sp = &spokes->v[i];
		struct watch_stream *s;

		if (only != NULL && sp != only)
			continue;
		s = &w->streams[w->nstreams++];
		s->w = w;
		s->sp = sp;
		s->state = WATCH_STREAM_NEW;
		s->backoff_ms = WATCH_BACKOFF_MIN_MS;
		if (w->pos[i].have)
			continue;
		if (from_start)
			w->pos[i] = (struct watch_pos){ .have = true, .exact = true };
		else
			w->pos[i] = (struct watch_pos){ .pos = floor, .have = true };
	}
}

/* Whether caller may open one more watch: the hub's and its token's caps. */
static int watch_admit(struct watches *ws, struct rpc_call *call, struct auth_caller *caller,
		       struct tsr_err *err)
{
	size_t mine = 0;

	if (ws->n >= HUB_WATCHERS_MAX)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "%d watches already open",
				   HUB_WATCHERS_MAX);
	if (auth_caller(ws->auth, call, caller, err) != 0)
		return -1;
	for (const struct watcher *w = ws->head; w != NULL; w = w->next)
		if (auth_same_token(&w->caller, caller))
			mine++;
	if (mine >= HUB_WATCHERS_PER_TOKEN_MAX)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
				   "this token has %d watches open already, its most; end one "
				   "first",
				   HUB_WATCHERS_PER_TOKEN_MAX);
	return 0;
}

int watch_start(struct watches *ws, struct rpc_call *call, const char *cursor, bool from_start,
		struct spoke *only, const char *agent_id, struct tsr_err *err)
{
	size_t nspokes = ws->hub->spokes->n, nents = 0;
	struct cursor_entry *ents = NULL;
	struct watcher *w = NULL;
	struct auth_caller caller;
	int rc = -1;

	if (watch_admit(ws, call, &caller, err) != 0)
		goto out;
	if (cursor[0] != '\0') {
		ents = calloc(CURSOR_ENTRIES_MAX, sizeof(*ents));
		if (ents == NULL) {
			tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			goto out;
		}
		if (cursor_decode(cursor, ents, CURSOR_ENTRIES_MAX, &nents, err) != 0)
			goto out;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL || (w->pos = calloc(nspokes, sizeof(*w->pos))) == NULL ||
	    (w->streams = calloc(nspokes, sizeof(*w->streams))) == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	if (snprintf(w->agent_id, sizeof(w->agent_id), "%s", agent_id) >=
	    (int)sizeof(w->agent_id)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "agent_id is too long");
		goto out;
	}
	w->ws = ws;
	w->call = call;
	w->caller = caller;
	watch_setup(w, ents, nents, from_start, only);
	for (size_t i = 0; i < w->nstreams; i++)
		watch_stream_start(&w->streams[i]);
	/*
	 * The headers are due now only if every start failed, so no stream
	 * call refers to w: should they fail, so does the call, through err,
	 * and out frees w, which nothing else has seen.
	 */
	if (watch_headers_due(w, false) && watch_headers_send(w, err) != 0)
		goto out;
	w->next = ws->head;
	if (ws->head != NULL)
		ws->head->prev = w;
	ws->head = w;
	ws->n++;
	/* w owns call now; a cancel that already happened ends it right here. */
	rpc_call_on_cancel(call, watch_on_cancel, w);
	w = NULL;
	rc = 0;
out:
	free(ents);
	if (w != NULL)
		watch_free(w);
	return rc;
}

void watches_tick(struct watches *ws)
{
	int64_t now = clock_mono_ms();
	struct watcher *w, *next;

	if (ws->hub->stopping)
		return;
	for (w = ws->head; w != NULL; w = next) {
		next = w->next;
		if (w->ending)
			continue;
		for (size_t i = 0; i < w->nstreams; i++) {
			struct watch_stream *s = &w->streams[i];

			if (s->state == WATCH_STREAM_WAITING && now >= s->retry_ms)
				watch_stream_start(s);
		}
		/* Last: a failed start may have made them due, and ending frees w. */
		watch_headers(w, false);
	}
}

size_t watches_reauth(struct watches *ws)
{
	struct watcher *w, *next;
	size_t ended = 0;

	for (w = ws->head; w != NULL; w = next) {
		next = w->next;
		if (w->ending || auth_still_valid(ws->auth, &w->caller))
			continue;
		/* As the gate would answer the same token now. */
		watch_end(w, GRPC_STATUS_UNAUTHENTICATED,
			  "the token of this watch is no longer accepted");
		ended++;
	}
	return ended;
}

void watches_shutdown(struct watches *ws)
{
	struct watcher *w, *next;

	for (w = ws->head; w != NULL; w = next) {
		next = w->next;
		watch_end(w, GRPC_STATUS_UNAVAILABLE,
			  "hub is shutting down; resume from your cursor");
	}
}

size_t watches_count(const struct watches *ws)
{
	return ws->n;
}
