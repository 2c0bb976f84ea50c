/*
 * event_stream: one thread per hub stream. The thread owns its store
 * connection and the call's handler reference; it ends the call with
 * UNAVAILABLE when Valkey goes away or the spoke stops (the hub retries
 * from its cursor), with CANCELLED when the hub hangs up, and with
 * OUT_OF_RANGE when events after its position have been trimmed off, at
 * the first read or later should the hub fall that far behind: resuming
 * cannot help, so the hub gives up on that cursor. Its first message is
 * the signed start (TSR_EVENT_STREAM_START). A stream remembers the hub
 * key that opened it: once SIGHUP has removed that key from trust-hub,
 * the thread ends the call PERMISSION_DENIED at its next look at its
 * flags, as the key's new commands are refused.
 */
#include "event_stream.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "envelope.h"
#include "log.h"
#include "spoke.h"
#include "tessera/v1/spoke.pb-c.h"

#define EVENT_STREAM_BLOCK_MS 1000 /* how often a reader looks at its flags */
#define EVENT_STREAM_BATCH 100
#define EVENT_STREAM_QUEUE_HIGH 256 /* pause reading while this many wait */
#define EVENT_STREAM_POSITION_TEXT 40

struct event_stream {
	struct event_streams *owner;
	struct rpc_call *call; /* the handler's reference, ended by the thread */
	char position[STORE_POSITION_MAX];
	bool from_start;
	struct sign_pubkey issuer;	   /* the hub key that opened it: loop thread only */
	char command_id[TSR_NAME_MAX + 1]; /* the command that opened it */
	pthread_t thread;
	atomic_bool done;    /* the thread has finished */
	atomic_bool revoked; /* issuer is no longer trusted */
	bool used;
};

struct event_streams {
	struct spoke *sp;
	pthread_mutex_t mu; /* guards slots */
	struct event_stream slots[TSR_SPOKE_STREAMS_MAX];
	atomic_bool stopping;
};

int event_streams_new(struct spoke *sp, struct event_streams **out, struct tsr_err *err)
{
	struct event_streams *es = calloc(1, sizeof(*es));

	if (es == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	es->sp = sp;
	pthread_mutex_init(&es->mu, NULL);
	*out = es;
	return 0;
}

/* Joins finished threads so their slots can be used again. */
static void event_streams_reap(struct event_streams *es, bool all)
{
	for (int i = 0; i < TSR_SPOKE_STREAMS_MAX; i++) {
		struct event_stream *s = &es->slots[i];
		bool used;

		pthread_mutex_lock(&es->mu);
		used = s->used && (all || atomic_load(&s->done));
		pthread_mutex_unlock(&es->mu);
		if (!used)
			continue;
		pthread_join(s->thread, NULL);
		pthread_mutex_lock(&es->mu);
		s->used = false;
		pthread_mutex_unlock(&es->mu);
	}
}

void event_streams_free(struct event_streams *es)
{
	if (es == NULL)
		return;
	atomic_store(&es->stopping, true);
	event_streams_reap(es, true);
	pthread_mutex_destroy(&es->mu);
	free(es);
}

/* A stream position as Valkey writes it: "<ms>-<seq>", both decimal. */
static bool event_position_valid(const char *p)
{
	size_t len = strnlen(p, EVENT_STREAM_POSITION_TEXT + 1), dash;

	if (len == 0 || len > EVENT_STREAM_POSITION_TEXT)
		return false;
	dash = strspn(p, "0123456789");
	if (dash == 0 || p[dash] != '-' || p[dash + 1] == '\0')
		return false;
	return strspn(p + dash + 1, "0123456789") == len - dash - 1;
}

static int event_stream_send(struct event_stream *s, const Tessera__V1__Event *ev,
			     struct tsr_err *err)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	if (envelope_event_seal(&s->owner->sp->key, ev, &buf, &len, err) != 0)
		return -1;
	rc = rpc_call_send(s->call, buf, len);
	free(buf);
	if (rc != 0)
		return tsr_err_set(err, GRPC_STATUS_CANCELLED, "stream closed");
	return 0;
}

static bool event_stream_should_stop(struct event_stream *s)
{
	return atomic_load(&s->owner->stopping) || atomic_load(&s->revoked) ||
	       rpc_call_cancelled(s->call);
}

/* The first message: where the stream starts, bound to the command that opened it. */
static int event_stream_send_start(struct event_stream *s, struct tsr_err *err)
{
	Tessera__V1__Event ev = TESSERA__V1__EVENT__INIT;

	ev.type = (char *)TSR_EVENT_STREAM_START;
	ev.spoke_id = s->owner->sp->cfg.id;
	ev.position = s->position;
	ev.command_id = s->command_id;
	ev.time_ms = clock_wall_ms();
	return event_stream_send(s, &ev, err);
}

/* Why a stream that was not cancelled stopped, if it did. */
static void event_stream_stopped(struct event_stream *s, struct tsr_err *err)
{
	if (atomic_load(&s->owner->stopping))
		tsr_err_set(err, GRPC_STATUS_UNAVAILABLE, "spoke is shutting down");
	else if (atomic_load(&s->revoked))
		tsr_err_set(err, GRPC_STATUS_PERMISSION_DENIED,
			    "the hub key %s that opened this stream is no longer trusted",
			    s->issuer.id);
}

static void *event_stream_main(void *arg)
{
	struct event_stream *s = arg;
	struct spoke *sp = s->owner->sp;
	struct store *st = NULL;
	Tessera__V1__Event **events = NULL;
	size_t n = 0;
	struct tsr_err err;

	tsr_err_clear(&err);
	if (store_open(sp->cfg.valkey, sp->cfg.id, &sp->cfg.valkey_auth, &st, &err) != 0)
		goto out;
	if (s->position[0] == '\0') {
		if (s->from_start)
			snprintf(s->position, sizeof(s->position), "0-0");
		else if (store_events_last(st, s->position, sizeof(s->position), &err) != 0)
			goto out;
	}
	/* The hub counts the stream as subscribed from here on, at this position. */
	if (event_stream_send_start(s, &err) != 0)
		goto out;
	while (!event_stream_should_stop(s)) {
		if (rpc_call_queued(s->call) >= EVENT_STREAM_QUEUE_HIGH) {
			usleep(20 * 1000);
			continue;
		}
		if (store_events_read(st, s->position, EVENT_STREAM_BLOCK_MS, EVENT_STREAM_BATCH,
				      &events, &n, &err) != 0)
			goto out;
		/* Not one event more once the key is revoked. */
		for (size_t i = 0; i < n && !atomic_load(&s->revoked); i++) {
			if (event_stream_send(s, events[i], &err) != 0)
				break;
			snprintf(s->position, sizeof(s->position), "%s", events[i]->position);
		}
		store_events_free(events, n);
		events = NULL;
		if (err.code != GRPC_STATUS_OK)
			goto out;
	}
	event_stream_stopped(s, &err);
out:
	if (st != NULL)
		store_close(st);
	if (err.code == GRPC_STATUS_OK)
		tsr_err_set(&err, GRPC_STATUS_CANCELLED, "stream ended");
	if (err.code == GRPC_STATUS_OUT_OF_RANGE)
		log_info("event stream ended: %s", err.msg);
	rpc_call_finish(s->call, err.code, err.msg);
	atomic_store(&s->done, true);
	return NULL;
}

static struct event_stream *event_streams_slot(struct event_streams *es)
{
	struct event_stream *found = NULL;

	event_streams_reap(es, false);
	pthread_mutex_lock(&es->mu);
	for (int i = 0; i < TSR_SPOKE_STREAMS_MAX && found == NULL; i++) {
		if (!es->slots[i].used) {
			found = &es->slots[i];
			memset(found, 0, sizeof(*found));
			found->used = true;
			found->owner = es;
		}
	}
	pthread_mutex_unlock(&es->mu);
	return found;
}

/* *cmd: the opened EVENTS_STREAM command; *out: its request. Both freed by the caller. */
static int event_stream_parse(struct spoke *sp, const uint8_t *req, size_t len,
			      Tessera__V1__Command **cmd, Tessera__V1__StreamEventsRequest **out,
			      struct tsr_err *err)
{
	int64_t now = clock_wall_ms();

	/* Loop thread: the only reader of cfg.trusted, and sp->store's owner. */
	if (envelope_command_open(req, len, &sp->cfg.trusted, sp->cfg.id, now, cmd, err) != 0)
		return -1;
	if (store_nonce_claim(sp->store, (*cmd)->nonce.data, (*cmd)->nonce.len,
			      envelope_command_replay_ms(*cmd, now), err) != 0)
		return -1;
	if ((*cmd)->type != TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_EVENTS_STREAM)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "StreamEvents takes an EVENTS_STREAM command");
	*out = tessera__v1__stream_events_request__unpack(NULL, (*cmd)->payload.len,
							  (*cmd)->payload.data);
	if (*out == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "malformed stream request");
	if ((*out)->cursor[0] != '\0' && !event_position_valid((*out)->cursor))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "malformed cursor");
	return 0;
}

/* Fills a fresh slot from the opened command and starts its thread. */
static int event_stream_start(struct event_streams *es, struct rpc_call *call,
			      const Tessera__V1__Command *cmd,
			      const Tessera__V1__StreamEventsRequest *sreq, struct tsr_err *err)
{
	/* envelope_command_open found the issuer among the trusted keys. */
	const struct sign_pubkey *issuer = sign_keyring_find(&es->sp->cfg.trusted,
							     cmd->issuer_key_id);
	struct event_stream *s = event_streams_slot(es);

	if (s == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
				   "more than %d event streams", TSR_SPOKE_STREAMS_MAX);
	s->call = call;
	s->from_start = sreq->from_start;
	s->issuer = *issuer;
	snprintf(s->position, sizeof(s->position), "%s", sreq->cursor);
	/* ids_valid_name: the command id fits. */
	snprintf(s->command_id, sizeof(s->command_id), "%s", cmd->command_id);
	if (pthread_create(&s->thread, NULL, event_stream_main, s) != 0) {
		pthread_mutex_lock(&es->mu);
		s->used = false;
		pthread_mutex_unlock(&es->mu);
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
				   "cannot start a stream thread");
	}
	return 0;
}

void event_stream_handle(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	struct event_streams *es = ctx;
	Tessera__V1__Command *cmd = NULL;
	Tessera__V1__StreamEventsRequest *sreq = NULL;
	struct tsr_err err;

	tsr_err_clear(&err);
	if (event_stream_parse(es->sp, req, len, &cmd, &sreq, &err) != 0) {
		log_warn("refused an event stream: %s", err.msg);
		rpc_call_fail(call, &err);
		goto out;
	}
	if (event_stream_start(es, call, cmd, sreq, &err) != 0)
		rpc_call_fail(call, &err);
out:
	if (sreq != NULL)
		tessera__v1__stream_events_request__free_unpacked(sreq, NULL);
	if (cmd != NULL)
		tessera__v1__command__free_unpacked(cmd, NULL);
}

size_t event_streams_revoke(struct event_streams *es, const struct sign_keyring *trusted)
{
	size_t n = 0;

	pthread_mutex_lock(&es->mu);
	for (int i = 0; i < TSR_SPOKE_STREAMS_MAX; i++) {
		struct event_stream *s = &es->slots[i];
		const struct sign_pubkey *k;

		if (!s->used || atomic_load(&s->done) || atomic_load(&s->revoked))
			continue;
		k = sign_keyring_find(trusted, s->issuer.id);
		if (k != NULL && sodium_memcmp(k->pk, s->issuer.pk, sizeof(k->pk)) == 0)
			continue;
		atomic_store(&s->revoked, true);
		n++;
	}
	pthread_mutex_unlock(&es->mu);
	return n;
}
