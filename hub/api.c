/*
 * api: request validation and the one-command methods of tessera.v1.Hub.
 * A relayed call is an api_op owned by the relay's completion: the user's
 * cancellation only cancels the relay, whose callback then ends the call.
 */
#include "api.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hub_limits.h"
#include "ids.h"
#include "list.h"
#include "pb.h"
#include "placement.h"
#include "relay.h"
#include "spawn_check.h"
#include "tessera/v1/hub.pb-c.h"
#include "watch.h"

struct api_op {		       /* one relayed SpawnAgent, GetAgent or KillAgent */
	struct rpc_call *call; /* the handler's reference, given up in api_op_done */
	struct spoke *sp;
	struct relay *relay; /* valid until api_op_done */
	bool placed;	     /* placement counted it in sp->running */
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
	    ids_agent_spoke(a->id, owner, sizeof(owner)) != 0 || strcmp(owner, sp->conf->id) != 0) {
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

static void api_op_done(void *arg, const struct tsr_err *err, bool refused, const uint8_t *payload,
			size_t len)
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
		      Tessera__V1__CommandType type, const ProtobufCMessage *payload)
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
	if (relay_start(h->relays, sp, type, payload, timeout, api_op_done, op, &op->relay, &err) !=
	    0)
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
	struct placement_label labels[TSR_LABELS_MAX];
	struct placement p = { .request_id = r->request_id, .labels = labels };
	char text[TSR_ERR_MSG_MAX / 2];

	if (r->n_spoke_labels > TSR_LABELS_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "at most %d spoke labels",
				   TSR_LABELS_MAX);
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
	Tessera__V1__SpawnAgentRequest *r;
	Tessera__V1__SpawnCommand out = TESSERA__V1__SPAWN_COMMAND__INIT;
	Tessera__V1__SpawnCommand__LabelsEntry entries[TSR_LABELS_MAX], *entryp[TSR_LABELS_MAX];
	struct tsr_label labels[TSR_LABELS_MAX];
	struct spawn_fields fields;
	struct spoke *sp;
	struct tsr_err err;
	bool placed = false;
	int rc = -1;

	r = tessera__v1__spawn_agent_request__unpack(NULL, len, req);
	if (r == NULL) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT, "malformed SpawnAgentRequest");
		goto out;
	}
	for (size_t i = 0; i < r->n_labels && i < TSR_LABELS_MAX; i++) {
		labels[i].key = r->labels[i]->key;
		labels[i].value = r->labels[i]->value;
	}
	fields = (struct spawn_fields){ r->type,       r->task, r->request_id,
					r->timeout_ms, labels,	r->n_labels };
	if (spawn_check(&fields, &err) != 0 || api_spawn_spoke(h, r, &sp, &placed, &err) != 0)
		goto out;
	out.type = r->type;
	out.timeout_ms = r->timeout_ms;
	out.task = r->task;
	out.request_id = r->request_id;
	for (size_t i = 0; i < r->n_labels; i++) {
		tessera__v1__spawn_command__labels_entry__init(&entries[i]);
		entries[i].key = r->labels[i]->key;
		entries[i].value = r->labels[i]->value;
		entryp[i] = &entries[i];
	}
	out.labels = entryp;
	out.n_labels = r->n_labels;
	api_relay(h, call, sp, placed, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_SPAWN,
		  &out.base);
	rc = 0;
out:
	if (rc != 0)
		rpc_call_fail(call, &err);
	if (r != NULL)
		tessera__v1__spawn_agent_request__free_unpacked(r, NULL);
}

/*
 * GetAgent and KillAgent: a request of shape `request` naming one agent by
 * its agent_id field, relayed to that agent's spoke as a command of type
 * `type`, whose payload `command` names it in *command_agent_id.
 */
static void api_agent_command(struct hub *h, struct rpc_call *call, const uint8_t *req, size_t len,
			      const ProtobufCMessageDescriptor *request,
			      Tessera__V1__CommandType type, ProtobufCMessage *command,
			      char **command_agent_id)
{
	const ProtobufCFieldDescriptor *field;
	ProtobufCMessage *r;
	struct spoke *sp;
	struct tsr_err err;
	int rc = -1;

	field = protobuf_c_message_descriptor_get_field_by_name(request, "agent_id");
	assert(field != NULL && field->type == PROTOBUF_C_TYPE_STRING);
	r = protobuf_c_message_unpack(request, NULL, len, req);
	if (r == NULL) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT, "malformed %s",
			    request->short_name);
		goto out;
	}
	*command_agent_id = *(char **)((char *)r + field->offset);
	if (hub_agent_spoke(h, *command_agent_id, &sp, &err) != 0)
		goto out;
	api_relay(h, call, sp, false, type, command);
	rc = 0;
out:
	if (rc != 0)
		rpc_call_fail(call, &err);
	if (r != NULL)
		protobuf_c_message_free_unpacked(r, NULL);
}

static void api_get(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	Tessera__V1__StatusCommand out = TESSERA__V1__STATUS_COMMAND__INIT;

	api_agent_command(ctx, call, req, len, &tessera__v1__get_agent_request__descriptor,
			  TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_STATUS, &out.base,
			  &out.agent_id);
}

static void api_kill(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	Tessera__V1__KillCommand out = TESSERA__V1__KILL_COMMAND__INIT;

	api_agent_command(ctx, call, req, len, &tessera__v1__kill_agent_request__descriptor,
			  TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_KILL, &out.base,
			  &out.agent_id);
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
		{ TSR_METHOD_SPAWN_AGENT, api_spawn },
		{ TSR_METHOD_GET_AGENT, api_get },
		{ TSR_METHOD_KILL_AGENT, api_kill },
		{ TSR_METHOD_LIST_AGENTS, list_agents },
		{ TSR_METHOD_LIST_SPOKES, api_list_spokes },
		{ TSR_METHOD_WATCH_EVENTS, api_watch },
	};

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (rpc_server_add_method(srv, methods[i].path, methods[i].fn, h, err) != 0)
			return -1;
	return 0;
}
