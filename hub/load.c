/* load: SPOKE_INFO polls and what their answers leave in struct spoke. */
#include "load.h"

#include "clock.h"
#include "log.h"
#include "relay.h"
#include "tessera/v1/spoke.pb-c.h"

/* Far above any max-agents a spoke accepts: figures beyond it are nonsense. */
#define LOAD_AGENTS_MAX 1000000

/* Whether a spoke can have running agents of max-agents max. */
static bool load_possible(int32_t running, int32_t max)
{
	return max >= 1 && max <= LOAD_AGENTS_MAX && running >= 0 && running <= max;
}

void load_note_reply(struct spoke *sp, int32_t running, int32_t max, bool draining)
{
	sp->draining = draining;
	if (!sp->load_known || !load_possible(running, max))
		return;
	sp->running = running;
	sp->max = max;
	sp->load_gen++;
}

int load_note_status(struct spoke *sp, const uint8_t *payload, size_t len, struct tsr_err *err)
{
	Tessera__V1__SpokeStatus *st;
	int rc = -1;

	st = tessera__v1__spoke_status__unpack(NULL, len, payload);
	if (st == NULL) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "malformed SpokeStatus");
		goto out;
	}
	if (!load_possible(st->running_agents, st->max_agents)) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "impossible load %d/%d",
			    (int)st->running_agents, (int)st->max_agents);
		goto out;
	}
	sp->running = st->running_agents;
	sp->max = st->max_agents;
	sp->load_gen++;
	sp->draining = st->draining != 0;
	sp->load_at_ms = clock_mono_ms();
	sp->load_known = true;
	rc = 0;
out:
	if (st != NULL)
		tessera__v1__spoke_status__free_unpacked(st, NULL);
	return rc;
}

static void load_done(void *arg, const struct tsr_err *err, enum relay_end end,
		      const uint8_t *payload, size_t len)
{
	struct spoke *sp = arg;
	struct tsr_err bad;
	const struct tsr_err *why = err;

	sp->load_polling = false;
	/* A reply that verified but holds nonsense is no refusal. */
	if (why == NULL && load_note_status(sp, payload, len, &bad) != 0)
		why = &bad;
	spokes_poll_result(sp, why, end == RELAY_REFUSED);
	if (why == NULL)
		return;
	/* Said once per loss, not every poll, for a spoke that stays silent. */
	if (sp->load_known)
		log_warn("spoke %s: load unknown: %s", sp->conf->id, why->msg);
	sp->load_known = false;
}

void load_tick(struct hub *h)
{
	Tessera__V1__SpokeStatusRequest req = TESSERA__V1__SPOKE_STATUS_REQUEST__INIT;
	int64_t now = clock_mono_ms();
	int64_t timeout = h->relay_timeout_ms < LOAD_TIMEOUT_MS ? h->relay_timeout_ms
								: LOAD_TIMEOUT_MS;
	struct tsr_err err;

	for (size_t i = 0; i < h->spokes->n; i++) {
		struct spoke *sp = &h->spokes->v[i];

		/* A spoke still connecting would only let the poll run out; an
		 * unreachable one fails it at once, with gRPC's reason why. */
		if (sp->health == SPOKE_CONNECTING || sp->load_polling || now < sp->load_next_ms)
			continue;
		sp->load_next_ms = now + LOAD_POLL_MS;
		if (relay_start(h->relays, sp, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_SPOKE_INFO,
				&req.base, timeout, load_done, sp, NULL, &err) != 0) {
			log_warn("spoke %s: cannot poll its load: %s", sp->conf->id, err.msg);
			continue;
		}
		sp->load_polling = true;
	}
}
