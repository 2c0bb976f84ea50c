/* spokes: channels to the configured spokes (TLS or, if the config says
 * so, plaintext) and their health. */
#include "spokes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "sign.h"
#include "status_name.h"
#include "utf8.h"

/* A spoke's signed reply holds at most SIGN_MESSAGE_MAX bytes plus framing. */
#define SPOKES_MAX_MESSAGE (SIGN_MESSAGE_MAX + 64 * 1024)

int spokes_new(const struct hub_config *cfg, struct spokes **out, struct tsr_err *err)
{
	struct spokes *s;
	const struct hub_spoke_tls *st = &cfg->spoke_tls;
	const struct rpc_channel_tls tls = {
		.ca = st->ca,
		.cert = st->cert[0] != '\0' ? st->cert : NULL,
		.key = st->key[0] != '\0' ? st->key : NULL,
		.name = st->name[0] != '\0' ? st->name : NULL,
	};
	int64_t now = clock_wall_ms();
	int rc = -1;

	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->v = calloc(cfg->nspokes, sizeof(*s->v))) == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < cfg->nspokes; i++) {
		struct spoke *sp = &s->v[i];

		sp->index = i;
		sp->conf = &cfg->spokes[i];
		sp->health = SPOKE_CONNECTING;
		sp->since_ms = now;
		if (rpc_channel_new(sp->conf->address, SPOKES_MAX_MESSAGE,
				    st->plaintext ? NULL : &tls, &sp->ch, err) != 0)
			goto out;
		s->n++;
	}
	*out = s;
	s = NULL;
	rc = 0;
out:
	spokes_free(s);
	return rc;
}

void spokes_free(struct spokes *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		rpc_channel_free(s->v[i].ch);
	free(s->v);
	free(s);
}

struct spoke *spokes_find(struct spokes *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].conf->id, id) == 0)
			return &s->v[i];
	return NULL;
}

const char *spokes_health_name(enum spoke_health h)
{
	switch (h) {
	case SPOKE_CONNECTED:
		return "connected";
	case SPOKE_UNREACHABLE:
		return "unreachable";
	case SPOKE_REFUSED:
		return "refused";
	case SPOKE_CONNECTING:
		break;
	}
	return "connecting";
}

const char *spokes_state_name(const struct spoke *sp)
{
	return sp->health == SPOKE_CONNECTED && sp->draining ? "draining"
							     : spokes_health_name(sp->health);
}

enum spoke_health spokes_health_of(grpc_connectivity_state st, bool refused)
{
	switch (st) {
	case GRPC_CHANNEL_READY:
		return refused ? SPOKE_REFUSED : SPOKE_CONNECTED;
	case GRPC_CHANNEL_TRANSIENT_FAILURE:
	case GRPC_CHANNEL_SHUTDOWN:
		return SPOKE_UNREACHABLE;
	case GRPC_CHANNEL_IDLE:
	case GRPC_CHANNEL_CONNECTING:
		break;
	}
	return SPOKE_CONNECTING;
}

void spokes_poll(struct spokes *s, bool try_connect)
{
	for (size_t i = 0; i < s->n; i++) {
		struct spoke *sp = &s->v[i];
		enum spoke_health h;

		h = spokes_health_of(rpc_channel_state(sp->ch, try_connect), sp->refused);
		if (h == sp->health)
			continue;
		if (h == SPOKE_REFUSED)
			log_warn("spoke %s (%s) is refused: %s", sp->conf->id, sp->conf->address,
				 sp->reason);
		else
			log_info("spoke %s (%s) is %s", sp->conf->id, sp->conf->address,
				 spokes_health_name(h));
		/* A channel that has just come up is polled at once (hub/load.c):
		 * its load, and whether it takes the hub's commands, are news. */
		if ((h == SPOKE_CONNECTED || h == SPOKE_REFUSED) && sp->health != SPOKE_CONNECTED &&
		    sp->health != SPOKE_REFUSED)
			sp->load_next_ms = 0;
		sp->health = h;
		sp->since_ms = clock_wall_ms();
		/* Its figures say nothing about a spoke we cannot reach. */
		if (h == SPOKE_UNREACHABLE)
			sp->load_known = false;
	}
}

bool spokes_any_connected(const struct spokes *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].health == SPOKE_CONNECTED)
			return true;
	return false;
}

void spokes_poll_result(struct spoke *sp, const struct tsr_err *err, bool refused)
{
	char reason[SPOKE_REASON_MAX];

	sp->refused = err != NULL && refused;
	if (err == NULL) {
		sp->reason[0] = '\0';
		return;
	}
	/*
	 * ListSpokes carries the reason in a protobuf string, and logs show
	 * it: escaped, it is well-formed UTF-8 without control bytes, even
	 * from a spoke's signed message or a message cut inside a character.
	 */
	snprintf(reason, sizeof(reason), "%s: %s", status_name(err->code), err->msg);
	utf8_escape(reason, strlen(reason), sp->reason, sizeof(sp->reason));
}

const char *spokes_reason(const struct spoke *sp)
{
	return sp->health == SPOKE_CONNECTED ? "" : sp->reason;
}
