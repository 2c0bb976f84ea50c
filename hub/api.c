/*
 * api: request validation and the one-command methods of tessera.v1.Hub.
 * A relayed call is an api_op owned by the relay's completion: the user's
 * cancellation only cancels the relay, whose callback then ends the call.
 */
#include "api.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ids.h"
#include "hub_limits.h"
#include "list.h"
#include "pb.h"
#include "placement.h"
#include "relay.h"
#include "watch.h"
#include "tessera/v1/hub.pb-c.h"

struct api_op {				/* one relayed SpawnAgent, GetAgent or KillAgent */
	struct rpc_call *call;		/* the handler's reference, given up in api_op_done */
	struct spoke *sp;
	struct relay *relay;		/* valid until api_op_done */
	bool placed;			/* placement counted it in sp->running */
};

/* The Agent a spoke answered must parse and belong to that spoke. */
static int api_check_agent(const struct spoke *sp, const uint8_t *payload, size_t len,
			   struct tsr_err *err)
{
	Tessera__V1__Agent *a;
	char owner[TSR_NAME_MAX + 1];
	int rc = -1;

	a = tessera__v1__agent__unpack(NULL, len, payload);
	if (a == NULL) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "spoke %s answered with a malformed agent",
			    sp->conf->id);
		goto out;
	}
	if (strcmp(a->spoke_id, sp->conf->id) != 0 ||
	    ids_agent_spoke(a->id, owner, sizeof(owner)) != 0 ||
	    strcmp(owner, sp->conf->id) != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL,
			    "spoke %s answered with an agent that is not its own", sp->conf->id);
		goto out;
	}
	rc = 0;
out:
	if (a != NULL)
		tessera__v1__agent__free_unpacked(a, NULL);
	return rc;
}

static void api_op_cancel(void *arg)
{
	struct api_op *op = arg;

	if (op->relay != NULL)
		relay_cancel(op->relay);
}

static void api_op_done(void *arg, const struct tsr_err *err, bool refused,
			const uint8_t *payload, size_t len)
{
	struct api_op *op = arg;
	struct tsr_err bad = { .code = GRPC_STATUS_OK };

	op->relay = NULL;
	if (err != NULL)
		hub_call_fail(op->call, err);
	else if (api_check_agent(op->sp, payload, len, &bad) != 0)
		hub_call_fail(op->call, &bad);
	else
		hub_call_reply(op->call, payload, len);
	/* A spawn that failed runs nothing: it must not hold a place until the next load poll. */
	if (op->placed && (err != NULL || bad.code != GRPC_STATUS_OK) && op->sp->running > 0)
		op->sp->running--;
	free(op);
}

/* Relays one command for call to sp; the call is answered in every case. */
static void api_relay(struct hub *h, struct rpc_call *call, struct spoke *sp, bool placed,
		      const char *type, const ProtobufCMessage *payload)
{
	struct api_op *op = NULL;
	struct tsr_err err;
	int64_t timeout;
	int rc = -1;

	if (hub_relay_timeout(h, call, &timeout, &err) != 0)
		goto out;
	op = calloc(1, sizeof(*op));
	if (op == NULL) {
		tsr_err_set(&err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	op->call = call;
	op->sp = sp;
	op->placed = placed;
	if (relay_start(h->relays, sp, type, payload, timeout, api_op_done, op, &op->relay,
			&err) != 0)
		goto out;
	/* The relay's completion owns op now; a cancel that already happened runs here. */
	rpc_call_on_cancel(call, api_op_cancel, op);
	op = NULL;
	rc = 0;
out:
	if (rc != 0)
		rpc_call_fail(call, &err);
	free(op);
}

/*
 * The spoke a spawn goes to: the one it names (which must carry the
 * labels), or placement's choice.
 */
static int api_spawn_spoke(struct hub *h, const Tessera__V1__SpawnAgentRequest *r,
			   struct spoke **out, bool *placed, struct tsr_err *err)
{
	struct placement_label labels[HUB_LABELS_MAX];
	struct placement p = { .request_id = r->request_id, .labels = labels };
	char text[TSR_ERR_MSG_MAX / 2];

	if (r->n_spoke_labels > HUB_LABELS_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "at most %d spoke labels", HUB_LABELS_MAX);
	for (size_t i = 0; i < r->n_spoke_labels; i++) {
		labels[i].key = r->spoke_labels[i]->key;
		labels[i].value = r->spoke_labels[i]->value;
	}
	p.nlabels = r->n_spoke_labels;
	if (placement_check_labels(labels, p.nlabels, err) != 0 ||
	    hub_spoke_arg(h, r->spoke_id, out, err) != 0)
		return -1;
	if (*out != NULL && !placement_matches(*out, labels, p.nlabels)) {
		placement_labels_text(labels, p.nlabels, text, sizeof(text));
		return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
				   "spoke %s does not match labels %s", (*out)->conf->id, text);
	}
	if (*out != NULL)
		return 0;
	/* Fresh health, without kicking channels: the tick does that. */
	spokes_poll(h->spokes, false);
	p.now_ms = clock_mono_ms();
	if (placement_choose(h->spokes, &p, out, err) != 0)
		return -1;
	*placed = placement_load_known(*out, p.now_ms);
	return 0;
}

static void api_spawn(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	struct hub *h = ctx;
	Tessera__V1__SpawnAgentRequest *r, out = TESSERA__V1__SPAWN_AGENT_REQUEST__INIT;
	struct tsr_label labels[TSR_LABELS_MAX];
	struct spoke *sp;
	struct tsr_err err;
	bool placed = false;
	int rc = -1;

	r = tessera__v1__spawn_agent_request__unpack(NULL, len, req);
	if (r == NULL) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT, "malformed SpawnAgentRequest");
		goto out;
	}
	if (!ids_valid_name(r->type)) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT,
			    "type must be 1-%d characters of [A-Za-z0-9_-]", TSR_NAME_MAX);
		goto out;
	}
	if (strnlen(r->task, TSR_TASK_MAX + 1) > TSR_TASK_MAX) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT, "task is longer than %d bytes",
			    TSR_TASK_MAX);
		goto out;
	}
	if (r->request_id[0] != '\0' && !ids_valid_name(r->request_id)) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT,
			    "request_id must be empty or 1-%d characters of [A-Za-z0-9_-]",
			    TSR_NAME_MAX);
		goto out;
	}
	if (r->timeout_ms > TSR_AGENT_TIMEOUT_MAX_MS) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT,
			    "timeout_ms must be at most %d (24 h)", TSR_AGENT_TIMEOUT_MAX_MS);
		goto out;
	}
	if (r->n_labels > TSR_LABELS_MAX) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT, "at most %d agent labels",
			    TSR_LABELS_MAX);
		goto out;
	}
	for (size_t i = 0; i < r->n_labels; i++) {
		labels[i].key = r->labels[i]->key;
		labels[i].value = r->labels[i]->value;
	}
	if (ids_check_labels(labels, r->n_labels, "agent label", &err) != 0 ||
	    api_spawn_spoke(h, r, &sp, &placed, &err) != 0)
		goto out;
	out.type = r->type;
	out.timeout_ms = r->timeout_ms;
	out.task = r->task;
	out.spoke_id = (char *)sp->conf->id;
	out.request_id = r->request_id;
	out.labels = r->labels;
	out.n_labels = r->n_labels;
	api_relay(h, call, sp, placed, "agent.spawn", &out.base);
	rc = 0;
out:
	if (rc != 0)
		rpc_call_fail(call, &err);
	if (r != NULL)
		tessera__v1__spawn_agent_request__free_unpacked(r, NULL);
}

static void api_get(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	struct hub *h = ctx;
	Tessera__V1__GetAgentRequest *r, out = TESSERA__V1__GET_AGENT_REQUEST__INIT;
	struct spoke *sp;
	struct tsr_err err;
	int rc = -1;

	r = tessera__v1__get_agent_request__unpack(NULL, len, req);
	if (r == NULL) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT, "malformed GetAgentRequest");
		goto out;
	}
	if (hub_agent_spoke(h, r->agent_id, &sp, &err) != 0)
		goto out;
	out.agent_id = r->agent_id;
	api_relay(h, call, sp, false, "agent.status", &out.base);
	rc = 0;
out:
	if (rc != 0)
		rpc_call_fail(call, &err);
	if (r != NULL)
		tessera__v1__get_agent_request__free_unpacked(r, NULL);
}

static void api_kill(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	struct hub *h = ctx;
	Tessera__V1__KillAgentRequest *r, out = TESSERA__V1__KILL_AGENT_REQUEST__INIT;
	struct spoke *sp;
	struct tsr_err err;
	int rc = -1;

	r = tessera__v1__kill_agent_request__unpack(NULL, len, req);
	if (r == NULL) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT, "malformed KillAgentRequest");
		goto out;
	}
	if (hub_agent_spoke(h, r->agent_id, &sp, &err) != 0)
		goto out;
	out.agent_id = r->agent_id;
	api_relay(h, call, sp, false, "agent.kill", &out.base);
	rc = 0;
out:
	if (rc != 0)
		rpc_call_fail(call, &err);
	if (r != NULL)
		tessera__v1__kill_agent_request__free_unpacked(r, NULL);
}

/* One SpokeInfo per configured spoke, pointing into the registry. */
static int api_spokes_pack(struct hub *h, uint8_t **buf, size_t *len, struct tsr_err *err)
{
	Tessera__V1__ListSpokesResponse resp = TESSERA__V1__LIST_SPOKES_RESPONSE__INIT;
	Tessera__V1__SpokeInfo *infos = NULL, **infop = NULL;
	Tessera__V1__SpokeInfo__LabelsEntry *labels = NULL, **labelp = NULL;
	size_t nlabels = 0, k = 0;
	int64_t now = clock_mono_ms();
	int rc = -1;

	for (size_t i = 0; i < h->spokes->n; i++)
		nlabels += h->spokes->v[i].conf->nlabels;
	infos = calloc(h->spokes->n, sizeof(*infos));
	infop = calloc(h->spokes->n, sizeof(*infop));
	labels = calloc(nlabels + 1, sizeof(*labels));
	labelp = calloc(nlabels + 1, sizeof(*labelp));
	if (infos == NULL || infop == NULL || labels == NULL || labelp == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < h->spokes->n; i++) {
		const struct spoke *sp = &h->spokes->v[i];
		Tessera__V1__SpokeInfo *info = &infos[i];

		tessera__v1__spoke_info__init(info);
		info->id = (char *)sp->conf->id;
		info->address = (char *)sp->conf->address;
		info->state = (char *)spokes_health_name(sp->health);
		info->since_ms = sp->since_ms;
		info->reason = (char *)spokes_reason(sp);
		if (placement_load_known(sp, now)) {
			info->running_agents = sp->running;
			info->max_agents = sp->max;
		}
		info->labels = &labelp[k];
		info->n_labels = sp->conf->nlabels;
		for (size_t j = 0; j < sp->conf->nlabels; j++, k++) {
			tessera__v1__spoke_info__labels_entry__init(&labels[k]);
			labels[k].key = (char *)sp->conf->labels[j].key;
			labels[k].value = (char *)sp->conf->labels[j].value;
			labelp[k] = &labels[k];
		}
		infop[i] = info;
	}
	resp.spokes = infop;
	resp.n_spokes = h->spokes->n;
	rc = pb_pack(&resp.base, buf, len, err);
out:
	free(infos);
	free(infop);
	free(labels);
	free(labelp);
	return rc;
}

static void api_list_spokes(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	struct hub *h = ctx;
	Tessera__V1__ListSpokesRequest *r;
	struct tsr_err err;
	uint8_t *buf = NULL;
	size_t buflen;
	int rc = -1;

	r = tessera__v1__list_spokes_request__unpack(NULL, len, req);
	if (r == NULL) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT, "malformed ListSpokesRequest");
		goto out;
	}
	/* Fresh states, without kicking channels: the tick does that. */
	spokes_poll(h->spokes, false);
	if (api_spokes_pack(h, &buf, &buflen, &err) != 0)
		goto out;
	rpc_call_reply(call, buf, buflen);
	rc = 0;
out:
	if (rc != 0)
		rpc_call_fail(call, &err);
	free(buf);
	if (r != NULL)
		tessera__v1__list_spokes_request__free_unpacked(r, NULL);
}

static void api_watch(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	struct hub *h = ctx;
	Tessera__V1__WatchEventsRequest *r;
	struct spoke *sp, *owner = NULL;
	struct tsr_err err;
	int rc = -1;

	r = tessera__v1__watch_events_request__unpack(NULL, len, req);
	if (r == NULL) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT, "malformed WatchEventsRequest");
		goto out;
	}
	if (hub_spoke_arg(h, r->spoke_id, &sp, &err) != 0)
		goto out;
	if (r->agent_id[0] != '\0' && hub_agent_spoke(h, r->agent_id, &owner, &err) != 0)
		goto out;
	if (sp != NULL && owner != NULL && sp != owner) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT,
			    "agent %s does not live on spoke %s", r->agent_id, sp->conf->id);
		goto out;
	}
	/* An agent's events only ever come from its own spoke. */
	if (watch_start(h->watches, call, r->cursor, r->from_start, owner != NULL ? owner : sp,
			r->agent_id, &err) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		rpc_call_fail(call, &err);
	if (r != NULL)
		tessera__v1__watch_events_request__free_unpacked(r, NULL);
}

int api_register(struct hub *h, struct rpc_server *srv, struct tsr_err *err)
{
	static const struct {
		const char *path;
		rpc_handler_fn fn;
	} methods[] = {
		{ "/tessera.v1.Hub/SpawnAgent", api_spawn },
		{ "/tessera.v1.Hub/GetAgent", api_get },
		{ "/tessera.v1.Hub/KillAgent", api_kill },
		{ "/tessera.v1.Hub/ListAgents", list_agents },
		{ "/tessera.v1.Hub/ListSpokes", api_list_spokes },
		{ "/tessera.v1.Hub/WatchEvents", api_watch },
	};

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (rpc_server_add_method(srv, methods[i].path, methods[i].fn, h, err) != 0)
			return -1;
	return 0;
}
