/*
 * api: request validation and the one-command methods of tessera.v1.Hub.
 * A relayed call is an api_op owned by the relay's completion: the user's
 * cancellation only cancels the relay, whose callback then ends the call
 * (or, for a spawn a draining spoke refused, relays it to another spoke).
 */
#include "api.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hub_limits.h"
#include "ids.h"
#include "list.h"
#include "load.h"
#include "output_relay.h"
#include "pb.h"
#include "placement.h"
#include "relay.h"
#include "spawn_check.h"
#include "tessera/v1/hub.pb-c.h"
#include "watch.h"

/* A SpawnAgent request, kept with the command it becomes while it may be placed again. */
struct api_spawn {
	Tessera__V1__SpawnAgentRequest *r; /* owned */
	Tessera__V1__SpawnCommand cmd;	   /* pointing into r, as the three below do */
	Tessera__V1__SpawnCommand__LabelsEntry entries[TSR_LABELS_MAX];
	Tessera__V1__SpawnCommand__LabelsEntry *entryp[TSR_LABELS_MAX];
	struct placement_label spoke_labels[TSR_LABELS_MAX];
	bool tried[HUB_SPOKES_MAX]; /* by spoke index: refused it as draining */
};

struct api_op {		       /* one user call relayed to a spoke */
	struct rpc_call *call; /* the handler's reference, given up when the call ends */
	struct hub *h;
	Tessera__V1__CommandType type;
	struct spoke *sp;
	struct relay *relay;	 /* valid until api_op_done */
	bool placed;		 /* placement counted it in sp->running, */
	uint64_t load_gen;	 /* where it stays while this is sp->load_gen */
	struct api_spawn *spawn; /* owned; SpawnAgent's only */
};

static struct api_op *api_op_new(struct hub *h, struct rpc_call *call,
				 Tessera__V1__CommandType type)
{
	struct api_op *op = calloc(1, sizeof(*op));

	if (op == NULL)
		return NULL;
	op->call = call;
	op->h = h;
	op->type = type;
	return op;
}

static void api_op_free(struct api_op *op)
{
	if (op == NULL)
		return;
	if (op->spawn != NULL && op->spawn->r != NULL)
		tessera__v1__spawn_agent_request__free_unpacked(op->spawn->r, NULL);
	free(op->spawn);
	free(op);
}

/*
 * A spawn that failed runs nothing: it must not hold the place placement
 * counted for it, unless the spoke's own figures have replaced that count.
 */
static void api_op_unplace(struct api_op *op)
{
	if (op->placed && op->sp->load_gen == op->load_gen && op->sp->running > 0)
		op->sp->running--;
	op->placed = false;
}

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

/* One SpokeInfo of sp, pointing into the registry and into labels and labelp. */
static void api_spoke_info(const struct spoke *sp, int64_t now, Tessera__V1__SpokeInfo *info,
			   Tessera__V1__SpokeInfo__LabelsEntry *labels,
			   Tessera__V1__SpokeInfo__LabelsEntry **labelp)
{
	tessera__v1__spoke_info__init(info);
	info->id = (char *)sp->conf->id;
	info->address = (char *)sp->conf->address;
	info->state = (char *)spokes_state_name(sp);
	info->since_ms = sp->since_ms;
	info->reason = (char *)spokes_reason(sp);
	info->draining = sp->draining;
	if (placement_load_known(sp, now)) {
		info->running_agents = sp->running;
		info->max_agents = sp->max;
	}
	info->labels = labelp;
	info->n_labels = sp->conf->nlabels;
	for (size_t j = 0; j < sp->conf->nlabels; j++) {
		tessera__v1__spoke_info__labels_entry__init(&labels[j]);
		labels[j].key = (char *)sp->conf->labels[j].key;
		labels[j].value = (char *)sp->conf->labels[j].value;
		labelp[j] = &labels[j];
	}
}

/*
 * Answers op's call with what its spoke carried out: the Agent, or for
 * SPOKE_DRAIN the spoke as ListSpokes shows it once its SpokeStatus is
 * taken. -1 with err if the answer is not fit to pass on.
 */
static int api_op_answer(struct api_op *op, const uint8_t *payload, size_t len, struct tsr_err *err)
{
	Tessera__V1__SpokeInfo info;
	Tessera__V1__SpokeInfo__LabelsEntry labels[TSR_LABELS_MAX], *labelp[TSR_LABELS_MAX];
	uint8_t *buf = NULL;
	size_t buflen;

	if (op->type != TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_SPOKE_DRAIN) {
		if (api_check_agent(op->sp, payload, len, err) != 0)
			return -1;
		hub_call_reply(op->call, payload, len);
		return 0;
	}
	if (load_note_status(op->sp, payload, len, err) != 0)
		return -1;
	api_spoke_info(op->sp, clock_mono_ms(), &info, labels, labelp);
	if (pb_pack(&info.base, &buf, &buflen, err) != 0)
		return -1;
	hub_call_reply(op->call, buf, buflen);
	free(buf);
	return 0;
}

static void api_op_cancel(void *arg)
{
	struct api_op *op = arg;

	if (op->relay != NULL)
		relay_cancel(op->relay);
}

static void api_op_done(void *arg, const struct tsr_err *err, enum relay_end end,
			const uint8_t *payload, size_t len);

/* Sends op's command, payload, to op->sp within what is left of the call's deadline. */
static int api_op_send(struct api_op *op, const ProtobufCMessage *payload, struct tsr_err *err)
{
	int64_t timeout;

	if (hub_relay_timeout(op->h, op->call, &timeout, err) != 0)
		return -1;
	return relay_start(op->h->relays, op->sp, op->type, payload, timeout, api_op_done, op,
			   &op->relay, err);
}

/* Sends op's first command; the call is answered in every case, and op freed with it. */
static void api_op_start(struct api_op *op, const ProtobufCMessage *payload)
{
	struct tsr_err err;

	if (api_op_send(op, payload, &err) != 0) {
		api_op_unplace(op);
		rpc_call_fail(op->call, &err);
		api_op_free(op);
		return;
	}
	/* The relay's completion owns op now; a cancel that already happened runs here. */
	rpc_call_on_cancel(op->call, api_op_cancel, op);
}

/*
 * Where op's spawn goes: the spoke it names (which must carry its spoke
 * labels), or placement's choice among the spokes that have not refused
 * it as draining.
 */
static int api_spawn_place(struct api_op *op, struct tsr_err *err)
{
	struct api_spawn *s = op->spawn;
	struct placement p = { .request_id = s->r->request_id,
			       .labels = s->spoke_labels,
			       .nlabels = s->r->n_spoke_labels,
			       .tried = s->tried };
	char text[TSR_ERR_MSG_MAX / 2];

	if (hub_spoke_arg(op->h, s->r->spoke_id, &op->sp, err) != 0)
		return -1;
	if (op->sp != NULL && !placement_matches(op->sp, p.labels, p.nlabels)) {
		placement_labels_text(p.labels, p.nlabels, text, sizeof(text));
		return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
				   "spoke %s does not match labels %s", op->sp->conf->id, text);
	}
	if (op->sp != NULL)
		return 0;
	/* Fresh health, without kicking channels: the tick does that. */
	spokes_poll(op->h->spokes, false);
	p.now_ms = clock_mono_ms();
	if (placement_choose(op->h->spokes, &p, &op->sp, err) != 0)
		return -1;
	/* Only a least-loaded choice counts one more agent on its spoke. */
	op->placed = p.request_id[0] == '\0' && placement_load_known(op->sp, p.now_ms);
	op->load_gen = op->sp->load_gen;
	return 0;
}

/*
 * A spawn the hub placed, refused FAILED_PRECONDITION in the signed reply
 * of a spoke that says it drains, goes where placement chooses without
 * that spoke: a draining spoke refuses only a spawn it has no agent for,
 * before anything runs. Each spoke refuses it once at most, so this ends.
 * True if it took op over: sent again, or its call ended.
 */
static bool api_spawn_again(struct api_op *op, const struct tsr_err *err, enum relay_end end)
{
	struct tsr_err again;

	if (op->spawn == NULL || op->spawn->r->spoke_id[0] != '\0' || end != RELAY_ANSWERED ||
	    err->code != GRPC_STATUS_FAILED_PRECONDITION || !op->sp->draining ||
	    rpc_call_cancelled(op->call))
		return false;
	op->spawn->tried[op->sp->index] = true;
	if (api_spawn_place(op, &again) == 0 && api_op_send(op, &op->spawn->cmd.base, &again) == 0)
		return true;
	api_op_unplace(op);
	hub_call_fail(op->call, &again);
	api_op_free(op);
	return true;
}

static void api_op_done(void *arg, const struct tsr_err *err, enum relay_end end,
			const uint8_t *payload, size_t len)
{
	struct api_op *op = arg;
	struct tsr_err bad;

	op->relay = NULL;
	if (err == NULL && api_op_answer(op, payload, len, &bad) != 0)
		err = &bad;
	if (err != NULL) {
		api_op_unplace(op);
		if (api_spawn_again(op, err, end))
			return;
		hub_call_fail(op->call, err);
	}
	api_op_free(op);
}

/* The request of op's spawn, checked, and the command it becomes. */
static int api_spawn_read(struct api_spawn *s, const uint8_t *req, size_t len, struct tsr_err *err)
{
	Tessera__V1__SpawnAgentRequest *r;
	struct tsr_label labels[TSR_LABELS_MAX];
	struct spawn_fields fields;

	r = s->r = tessera__v1__spawn_agent_request__unpack(NULL, len, req);
	if (r == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "malformed SpawnAgentRequest");
	for (size_t i = 0; i < r->n_labels && i < TSR_LABELS_MAX; i++) {
		labels[i].key = r->labels[i]->key;
		labels[i].value = r->labels[i]->value;
	}
	fields = (struct spawn_fields){ r->type,       r->task, r->request_id,
					r->timeout_ms, labels,	r->n_labels };
	if (spawn_check(&fields, err) != 0)
		return -1;
	if (r->n_spoke_labels > TSR_LABELS_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "at most %d spoke labels",
				   TSR_LABELS_MAX);
	for (size_t i = 0; i < r->n_spoke_labels; i++) {
		s->spoke_labels[i].key = r->spoke_labels[i]->key;
		s->spoke_labels[i].value = r->spoke_labels[i]->value;
	}
	if (placement_check_labels(s->spoke_labels, r->n_spoke_labels, err) != 0)
		return -1;
	tessera__v1__spawn_command__init(&s->cmd);
	s->cmd.type = r->type;
	s->cmd.timeout_ms = r->timeout_ms;
	s->cmd.task = r->task;
	s->cmd.request_id = r->request_id;
	/* spawn_check has bounded n_labels by TSR_LABELS_MAX. */
	for (size_t i = 0; i < r->n_labels; i++) {
		tessera__v1__spawn_command__labels_entry__init(&s->entries[i]);
		s->entries[i].key = r->labels[i]->key;
		s->entries[i].value = r->labels[i]->value;
		s->entryp[i] = &s->entries[i];
	}
	s->cmd.labels = s->entryp;
	s->cmd.n_labels = r->n_labels;
	return 0;
}

static void api_spawn(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	struct api_op *op;
	struct tsr_err err;

	op = api_op_new(ctx, call, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_SPAWN);
	if (op == NULL || (op->spawn = calloc(1, sizeof(*op->spawn))) == NULL) {
		tsr_err_set(&err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto fail;
	}
	if (api_spawn_read(op->spawn, req, len, &err) != 0 || api_spawn_place(op, &err) != 0)
		goto fail;
	api_op_start(op, &op->spawn->cmd.base);
	return;
fail:
	rpc_call_fail(call, &err);
	api_op_free(op);
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
	struct api_op *op = NULL;
	struct tsr_err err;

	field = protobuf_c_message_descriptor_get_field_by_name(request, "agent_id");
	assert(field != NULL && field->type == PROTOBUF_C_TYPE_STRING);
	r = protobuf_c_message_unpack(request, NULL, len, req);
	if (r == NULL) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT, "malformed %s",
			    request->short_name);
		goto fail;
	}
	*command_agent_id = *(char **)((char *)r + field->offset);
	op = api_op_new(h, call, type);
	if (op == NULL) {
		tsr_err_set(&err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto fail;
	}
	if (hub_agent_spoke(h, *command_agent_id, &op->sp, &err) != 0)
		goto fail;
	api_op_start(op, command);
	goto out;
fail:
	rpc_call_fail(call, &err);
	api_op_free(op);
out:
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

		api_spoke_info(sp, now, &infos[i], &labels[k], &labelp[k]);
		k += sp->conf->nlabels;
		infop[i] = &infos[i];
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

/*
 * DrainSpoke and UndrainSpoke: SPOKE_DRAIN to the spoke a request of shape
 * request names in its spoke_id field, answered with that spoke's
 * SpokeInfo once its signed SpokeStatus is taken.
 */
static void api_drain(struct hub *h, struct rpc_call *call, const uint8_t *req, size_t len,
		      const ProtobufCMessageDescriptor *request, bool drain)
{
	Tessera__V1__SpokeDrainRequest out = TESSERA__V1__SPOKE_DRAIN_REQUEST__INIT;
	const ProtobufCFieldDescriptor *field;
	ProtobufCMessage *r;
	struct api_op *op = NULL;
	struct tsr_err err;
	const char *id;

	field = protobuf_c_message_descriptor_get_field_by_name(request, "spoke_id");
	assert(field != NULL && field->type == PROTOBUF_C_TYPE_STRING);
	r = protobuf_c_message_unpack(request, NULL, len, req);
	if (r == NULL) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT, "malformed %s",
			    request->short_name);
		goto fail;
	}
	id = *(const char **)((const char *)r + field->offset);
	if (id[0] == '\0') {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT, "spoke_id is required");
		goto fail;
	}
	op = api_op_new(h, call, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_SPOKE_DRAIN);
	if (op == NULL) {
		tsr_err_set(&err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto fail;
	}
	if (hub_spoke_arg(h, id, &op->sp, &err) != 0)
		goto fail;
	out.draining = drain;
	api_op_start(op, &out.base);
	goto out;
fail:
	rpc_call_fail(call, &err);
	api_op_free(op);
out:
	if (r != NULL)
		protobuf_c_message_free_unpacked(r, NULL);
}

static void api_drain_spoke(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	api_drain(ctx, call, req, len, &tessera__v1__drain_spoke_request__descriptor, true);
}

static void api_undrain_spoke(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	api_drain(ctx, call, req, len, &tessera__v1__undrain_spoke_request__descriptor, false);
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
		{ TSR_METHOD_DRAIN_SPOKE, api_drain_spoke },
		{ TSR_METHOD_UNDRAIN_SPOKE, api_undrain_spoke },
		{ TSR_METHOD_WATCH_EVENTS, api_watch },
		{ TSR_METHOD_READ_AGENT_OUTPUT, output_relay_handle },
	};

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (rpc_server_add_method(srv, methods[i].path, methods[i].fn, h, err) != 0)
			return -1;
	return 0;
}
