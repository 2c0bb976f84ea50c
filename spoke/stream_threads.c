/*
 * stream_threads: a fixed table of stream slots, each with its thread.
 * Finished threads are joined when a new stream looks for a slot, and all
 * of them when the spoke stops.
 */
#include "stream_threads.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "envelope.h"
#include "protocol.h"
#include "spoke.h"

struct stream_thread {
	struct stream_threads *owner;
	struct rpc_call *call; /* the handler's reference, ended by the thread */
	const struct stream_thread_kind *kind;
	void *data;		   /* the kind's, owned by the thread */
	struct sign_pubkey issuer; /* the hub key that opened it: loop thread only */
	pthread_t thread;
	atomic_bool done;    /* the thread has finished */
	atomic_bool revoked; /* issuer is no longer trusted */
	bool used;
};

struct stream_threads {
	struct spoke *sp;
	pthread_mutex_t mu; /* guards slots' used */
	struct stream_thread slots[TSR_SPOKE_STREAMS_MAX];
	atomic_bool stopping;
};

int stream_threads_new(struct spoke *sp, struct stream_threads **out, struct tsr_err *err)
{
	struct stream_threads *ts = calloc(1, sizeof(*ts));

	if (ts == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	ts->sp = sp;
	pthread_mutex_init(&ts->mu, NULL);
	*out = ts;
	return 0;
}

/* Joins finished threads (every thread if all) so their slots can be used again. */
static void stream_threads_reap(struct stream_threads *ts, bool all)
{
	for (int i = 0; i < TSR_SPOKE_STREAMS_MAX; i++) {
		struct stream_thread *t = &ts->slots[i];
		bool used;

		pthread_mutex_lock(&ts->mu);
		used = t->used && (all || atomic_load(&t->done));
		pthread_mutex_unlock(&ts->mu);
		if (!used)
			continue;
		pthread_join(t->thread, NULL);
		pthread_mutex_lock(&ts->mu);
		t->used = false;
		pthread_mutex_unlock(&ts->mu);
	}
}

void stream_threads_free(struct stream_threads *ts)
{
	if (ts == NULL)
		return;
	atomic_store(&ts->stopping, true);
	stream_threads_reap(ts, true);
	pthread_mutex_destroy(&ts->mu);
	free(ts);
}

struct spoke *stream_threads_spoke(const struct stream_threads *ts)
{
	return ts->sp;
}

bool stream_thread_revoked(const struct stream_thread *t)
{
	return atomic_load(&t->revoked);
}

bool stream_thread_should_stop(const struct stream_thread *t)
{
	return atomic_load(&t->owner->stopping) || atomic_load(&t->revoked) ||
	       rpc_call_cancelled(t->call);
}

struct rpc_call *stream_thread_call(const struct stream_thread *t)
{
	return t->call;
}

static void *stream_thread_main(void *arg)
{
	struct stream_thread *t = arg;
	struct tsr_err err;

	tsr_err_clear(&err);
	t->kind->run(t, t->data, &err);
	/* Why a stream that was not cancelled stopped, whatever its run saw. */
	if (atomic_load(&t->owner->stopping))
		tsr_err_set(&err, GRPC_STATUS_UNAVAILABLE, "spoke is shutting down");
	else if (atomic_load(&t->revoked))
		tsr_err_set(&err, GRPC_STATUS_PERMISSION_DENIED,
			    "the hub key %s that opened this stream is no longer trusted",
			    t->issuer.id);
	else if (err.code == GRPC_STATUS_OK && t->kind->ended != GRPC_STATUS_OK)
		tsr_err_set(&err, t->kind->ended, "stream ended");
	rpc_call_finish(t->call, err.code, err.code == GRPC_STATUS_OK ? "" : err.msg);
	t->kind->free(t->data);
	t->data = NULL;
	atomic_store(&t->done, true);
	return NULL;
}

static struct stream_thread *stream_threads_slot(struct stream_threads *ts)
{
	struct stream_thread *found = NULL;

	stream_threads_reap(ts, false);
	pthread_mutex_lock(&ts->mu);
	for (int i = 0; i < TSR_SPOKE_STREAMS_MAX && found == NULL; i++) {
		if (!ts->slots[i].used) {
			found = &ts->slots[i];
			memset(found, 0, sizeof(*found));
			found->used = true;
			found->owner = ts;
		}
	}
	pthread_mutex_unlock(&ts->mu);
	return found;
}

int stream_threads_open_command(struct stream_threads *ts, const uint8_t *req, size_t len,
				Tessera__V1__CommandType type, Tessera__V1__Command **cmd,
				struct tsr_err *err)
{
	struct spoke *sp = ts->sp;
	int64_t now = clock_wall_ms();

	/* Loop thread: the only reader of cfg.trusted, and sp->store's owner. */
	if (envelope_command_open(req, len, &sp->cfg.trusted, sp->cfg.id, now, cmd, err) != 0)
		return -1;
	if (store_nonce_claim(sp->store, (*cmd)->nonce.data, (*cmd)->nonce.len,
			      envelope_command_replay_ms(*cmd, now), err) != 0)
		return -1;
	if ((*cmd)->type != type)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "this method takes a %s command",
				   protobuf_c_enum_descriptor_get_value(
					   &tessera__v1__command_type__descriptor, (int)type)
					   ->name);
	return 0;
}

int stream_threads_start(struct stream_threads *ts, struct rpc_call *call,
			 const Tessera__V1__Command *cmd, const struct stream_thread_kind *kind,
			 void *data, struct tsr_err *err)
{
	/* stream_threads_open_command found the issuer among the trusted keys. */
	const struct sign_pubkey *issuer = sign_keyring_find(&ts->sp->cfg.trusted,
							     cmd->issuer_key_id);
	struct stream_thread *t = stream_threads_slot(ts);

	if (t == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "more than %d streams",
				   TSR_SPOKE_STREAMS_MAX);
	t->call = call;
	t->kind = kind;
	t->data = data;
	t->issuer = *issuer;
	if (pthread_create(&t->thread, NULL, stream_thread_main, t) != 0) {
		pthread_mutex_lock(&ts->mu);
		t->used = false;
		pthread_mutex_unlock(&ts->mu);
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
				   "cannot start a stream thread");
	}
	return 0;
}

size_t stream_threads_revoke(struct stream_threads *ts, const struct sign_keyring *trusted)
{
	size_t n = 0;

	pthread_mutex_lock(&ts->mu);
	for (int i = 0; i < TSR_SPOKE_STREAMS_MAX; i++) {
		struct stream_thread *t = &ts->slots[i];
		const struct sign_pubkey *k;

		if (!t->used || atomic_load(&t->done) || atomic_load(&t->revoked))
			continue;
		k = sign_keyring_find(trusted, t->issuer.id);
		if (k != NULL && sodium_memcmp(k->pk, t->issuer.pk, sizeof(k->pk)) == 0)
			continue;
		atomic_store(&t->revoked, true);
		n++;
	}
	pthread_mutex_unlock(&ts->mu);
	return n;
}
