/* relay: Spoke/Execute calls, their signed replies, and the set in flight. */
#include "relay.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "command.h"
#include "envelope.h"
#include "hub_limits.h"
#include "hub_metrics.h"
#include "load.h"
#include "log.h"
#include "protocol.h"
#include "rpc_client.h"

struct relay {
	struct relay *prev, *next;
	struct relays *rs;
	struct spoke *sp;
	Tessera__V1__CommandType type;
	char command_id[COMMAND_ID_LEN + 1];
	int64_t timeout_ms;
	int64_t began_ns;	      /* clock_mono_ns when sent */
	struct rpc_client_call *call; /* valid until relay_unary_done */
	relay_done_fn done;
	void *arg;
};

struct relays {
	struct rpc_loop *loop;
	const struct sign_key *key;
	struct hub_metrics *metrics;
	struct relay *head; /* owned: each freed when its call ends */
	size_t n;
};

int relays_new(struct rpc_loop *loop, const struct sign_key *key, struct hub_metrics *metrics,
	       struct relays **out, struct tsr_err *err)
{
	struct relays *rs;

	rs = calloc(1, sizeof(*rs));
	if (rs == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	rs->loop = loop;
	rs->key = key;
	rs->metrics = metrics;
	*out = rs;
	return 0;
}

void relays_free(struct relays *rs)
{
	if (rs == NULL)
		return;
	if (rs->n > 0)
		log_warn("%zu spoke commands still in flight at exit", rs->n);
	free(rs);
}

static void relay_unlink(struct relay *r)
{
	struct relays *rs = r->rs;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		rs->head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	rs->n--;
}

/* Turns a failed Execute call into what the user is told. */
static void relay_call_error(const struct relay *r, grpc_status_code code, const char *details,
			     struct tsr_err *err)
{
	const char *id = r->sp->conf->id;

	switch (code) {
	case GRPC_STATUS_UNAVAILABLE:
		tsr_err_set(err, code, "spoke %s is unreachable: %s", id, details);
		break;
	case GRPC_STATUS_DEADLINE_EXCEEDED:
		tsr_err_set(err, code, "spoke %s did not answer within %lld ms", id,
			    (long long)r->timeout_ms);
		break;
	case GRPC_STATUS_CANCELLED:
		tsr_err_set(err, code, "cancelled before spoke %s answered", id);
		break;
	default:
		tsr_err_set(err, code, "spoke %s refused the command: %s", id, details);
		break;
	}
}

/*
 * Opens the signed reply; 0 with *reply set, or -1 with err for the user
 * and *end RELAY_REFUSED if the reply does not verify, else RELAY_ANSWERED.
 */
static int relay_open_reply(const struct relay *r, const uint8_t *resp, size_t len,
			    Tessera__V1__Reply **reply, enum relay_end *end, struct tsr_err *err)
{
	Tessera__V1__Reply *rep = NULL;
	int rc = -1;

	if (envelope_reply_open(resp, len, &r->sp->conf->pub, r->sp->conf->id, r->command_id, &rep,
				err) != 0) {
		log_error("%s", err->msg);
		*end = RELAY_REFUSED;
		goto out;
	}
	*end = RELAY_ANSWERED;
	load_note_reply(r->sp, rep->running_agents, rep->max_agents, rep->draining != 0);
	if (rep->status < 0 || rep->status > GRPC_STATUS_UNAUTHENTICATED) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "spoke %s replied with status %d",
			    r->sp->conf->id, (int)rep->status);
		goto out;
	}
	if (rep->status != GRPC_STATUS_OK) {
		tsr_err_set(err, (grpc_status_code)rep->status, "%s",
			    rep->message[0] != '\0' ? rep->message : "the spoke refused it");
		goto out;
	}
	*reply = rep;
	rep = NULL;
	rc = 0;
out:
	if (rep != NULL)
		tessera__v1__reply__free_unpacked(rep, NULL);
	return rc;
}

static void relay_unary_done(void *arg, grpc_status_code code, const char *details,
			     const uint8_t *resp, size_t len)
{
	struct relay *r = arg;
	Tessera__V1__Reply *reply = NULL;
	struct tsr_err err;
	enum relay_end end = RELAY_LOST;

	tsr_err_clear(&err);
	relay_unlink(r);
	if (code != GRPC_STATUS_OK) {
		relay_call_error(r, code, details, &err);
		/* The spoke's verdict on the envelope, before any payload is read. */
		if (code == GRPC_STATUS_PERMISSION_DENIED || code == GRPC_STATUS_UNAUTHENTICATED)
			end = RELAY_REFUSED;
	} else {
		relay_open_reply(r, resp, len, &reply, &end, &err);
	}
	log_debug("%s %s on spoke %s: %s", protocol_command_name(r->type), r->command_id,
		  r->sp->conf->id, reply != NULL ? "ok" : err.msg);
	hub_metrics_relay(r->rs->metrics, r->type, reply != NULL ? GRPC_STATUS_OK : err.code,
			  r->began_ns);
	if (reply != NULL)
		r->done(r->arg, NULL, RELAY_ANSWERED, reply->payload.data, reply->payload.len);
	else
		r->done(r->arg, &err, end, NULL, 0);
	if (reply != NULL)
		tessera__v1__reply__free_unpacked(reply, NULL);
	free(r);
}

int relay_start(struct relays *rs, struct spoke *sp, Tessera__V1__CommandType type,
		const ProtobufCMessage *payload, int64_t timeout_ms, relay_done_fn done, void *arg,
		struct relay **out, struct tsr_err *err)
{
	struct rpc_client_opts opts;
	struct relay *r = NULL;
	uint8_t *cmd = NULL;
	size_t cmd_len;
	int rc = -1;

	if (rs->n >= HUB_RELAYS_MAX) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
			    "%d commands already in flight; try again", HUB_RELAYS_MAX);
		goto out;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	r->rs = rs;
	r->sp = sp;
	r->timeout_ms = timeout_ms;
	r->done = done;
	r->arg = arg;
	r->type = type;
	if (command_seal(rs->key, sp->conf->id, type, payload, r->command_id, sizeof(r->command_id),
			 &cmd, &cmd_len, err) != 0)
		goto out;
	memset(&opts, 0, sizeof(opts));
	opts.timeout_ms = timeout_ms;
	r->began_ns = clock_mono_ns();
	if (rpc_client_unary(rs->loop, sp->ch, TSR_METHOD_EXECUTE, cmd, cmd_len, &opts,
			     relay_unary_done, r, &r->call, err) != 0)
		goto out;
	r->next = rs->head;
	if (rs->head != NULL)
		rs->head->prev = r;
	rs->head = r;
	rs->n++;
	if (out != NULL)
		*out = r;
	r = NULL;
	rc = 0;
out:
	free(r);
	free(cmd);
	return rc;
}

void relay_cancel(struct relay *r)
{
	rpc_client_cancel(r->call);
}

void relays_cancel_all(struct relays *rs)
{
	for (struct relay *r = rs->head; r != NULL; r = r->next)
		rpc_client_cancel(r->call);
}

size_t relays_count(const struct relays *rs)
{
	return rs->n;
}
