/*
 * list: ListAgents across spokes. A list_op lives from the handler until
 * the answer: it asks one spoke at a time (through the relay), keeps each
 * spoke's unpacked page, and answers with all their agents and a token
 * for the next page. Filters (state, type, label selector) are checked
 * here and passed to every spoke, which applies them. Pages stay within
 * TSR_PAGE_BYTES_MAX, under the default message size, so that any gRPC
 * client can receive them; every agent in a spoke's page must be that
 * spoke's, as in its unary replies.
 */
#include "list.h"

#include <stdlib.h>
#include <string.h>

#include "hub_limits.h"
#include "ids.h"
#include "page_token.h"
#include "pb.h"
#include "relay.h"
#include "tessera/v1/hub.pb-c.h"

_Static_assert(TSR_PAGE_BYTES_MAX + 64 * 1024 <= RPC_DEFAULT_MAX_MESSAGE,
	       "a page, its token and framing fit any client's default message size");

struct list_op {
	struct hub *hub;
	struct rpc_call *call; /* the handler's reference */
	struct relay *relay;   /* the command in flight, if any */
	bool cancelled;
	struct spoke *only; /* the request's spoke, or NULL: every spoke */
	Tessera__V1__AgentState state;
	char type[TSR_NAME_MAX + 1];
	struct { /* the label selector, passed to every spoke */
		char key[TSR_NAME_MAX + 1];
		char value[TSR_LABEL_VALUE_MAX + 1];
	} labels[TSR_LABELS_MAX];
	size_t nlabels;
	uint32_t want;				  /* the page size */
	size_t index;				  /* the spoke to ask (next) */
	char token[TSR_SPOKE_PAGE_TOKEN_MAX + 1]; /* and its page token */
	bool has_next;				  /* index/token name a next page */
	Tessera__V1__AgentPage **pages;		  /* owned: one per spoke answered */
	size_t npages;
	size_t count; /* agents in pages */
	size_t bytes; /* their packed size */
};

static void list_op_free(struct list_op *op)
{
	for (size_t i = 0; i < op->npages; i++)
		tessera__v1__agent_page__free_unpacked(op->pages[i], NULL);
	free(op->pages);
	free(op);
}

static void list_done(void *arg, const struct tsr_err *err, enum relay_end end,
		      const uint8_t *payload, size_t len);

/* Asks spoke op->index for the rest of the page. */
static int list_ask(struct list_op *op, struct tsr_err *err)
{
	Tessera__V1__ListCommand req = TESSERA__V1__LIST_COMMAND__INIT;
	Tessera__V1__ListCommand__LabelsEntry labels[TSR_LABELS_MAX];
	Tessera__V1__ListCommand__LabelsEntry *labelp[TSR_LABELS_MAX];
	struct spoke *sp = &op->hub->spokes->v[op->index];
	int64_t timeout;

	if (op->cancelled)
		return tsr_err_set(err, GRPC_STATUS_CANCELLED, "cancelled");
	if (op->hub->stopping)
		return tsr_err_set(err, GRPC_STATUS_UNAVAILABLE, "hub is shutting down");
	if (hub_relay_timeout(op->hub, op->call, &timeout, err) != 0)
		return -1;
	req.state = op->state;
	req.type = op->type;
	req.page_size = op->want - (uint32_t)op->count;
	req.page_token = op->token;
	for (size_t i = 0; i < op->nlabels; i++) {
		tessera__v1__list_command__labels_entry__init(&labels[i]);
		labels[i].key = op->labels[i].key;
		labels[i].value = op->labels[i].value;
		labelp[i] = &labels[i];
	}
	req.labels = labelp;
	req.n_labels = op->nlabels;
	return relay_start(op->hub->relays, sp, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_LIST,
			   &req.base, timeout, list_done, op, &op->relay, err);
}

/*
 * A spoke signs its page, but may only speak for its own agents; and it
 * bounds its page's bytes as the hub bounds its answer. *bytes: the
 * agents' packed size.
 */
static int list_page_check(const Tessera__V1__AgentPage *page, const char *spoke_id, size_t *bytes,
			   struct tsr_err *err)
{
	char owner[TSR_NAME_MAX + 1];

	*bytes = 0;
	for (size_t i = 0; i < page->n_agents; i++) {
		const Tessera__V1__Agent *a = page->agents[i];

		if (ids_agent_spoke(a->id, owner, sizeof(owner)) != 0 ||
		    strcmp(owner, spoke_id) != 0 || strcmp(a->spoke_id, spoke_id) != 0)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL,
					   "spoke %s listed agent %.*s of another spoke", spoke_id,
					   TSR_AGENT_ID_MAX, a->id);
		*bytes += pb_element_size(&a->base);
	}
	if (*bytes > TSR_PAGE_BYTES_MAX)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL,
				   "spoke %s sent a page of %zu bytes, over %d", spoke_id, *bytes,
				   TSR_PAGE_BYTES_MAX);
	return 0;
}

/*
 * Adds the page spoke op->index answered and moves index/token on.
 * *more says whether the next spoke should fill the rest of this page.
 */
static int list_take(struct list_op *op, const uint8_t *payload, size_t len, bool *more,
		     struct tsr_err *err)
{
	const char *id = op->hub->spokes->v[op->index].conf->id;
	Tessera__V1__AgentPage *resp;
	size_t asked = op->want - op->count, bytes = 0;
	int rc = -1;

	*more = false;
	resp = tessera__v1__agent_page__unpack(NULL, len, payload);
	if (resp == NULL) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "spoke %s sent a malformed agent list", id);
		goto out;
	}
	if (resp->n_agents > asked || !page_token_spoke_token_ok(resp->next_page_token)) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL,
			    "spoke %s sent %zu agents for %zu, or an unusable page token", id,
			    resp->n_agents, asked);
		goto out;
	}
	if (list_page_check(resp, id, &bytes, err) != 0)
		goto out;
	if (op->npages > 0 && op->bytes + bytes > TSR_PAGE_BYTES_MAX) {
		/* Too much for one answer: the next page starts with this one again. */
		op->has_next = true;
		rc = 0;
		goto out;
	}
	op->pages[op->npages++] = resp;
	op->count += resp->n_agents;
	op->bytes += bytes;
	if (resp->next_page_token[0] != '\0') {
		memcpy(op->token, resp->next_page_token, strlen(resp->next_page_token) + 1);
		op->has_next = true;
	} else if (op->only == NULL && op->index + 1 < op->hub->spokes->n) {
		op->index++;
		op->token[0] = '\0';
		op->has_next = true;
		*more = op->count < op->want;
	} else {
		op->has_next = false;
	}
	resp = NULL;
	rc = 0;
out:
	if (resp != NULL)
		tessera__v1__agent_page__free_unpacked(resp, NULL);
	return rc;
}

/* Answers the user with every collected agent and the next page token. */
static void list_answer(struct list_op *op)
{
	Tessera__V1__ListAgentsResponse resp = TESSERA__V1__LIST_AGENTS_RESPONSE__INIT;
	struct page_token pt;
	struct tsr_err err;
	char *token = NULL;
	uint8_t *buf = NULL;
	size_t buflen, k = 0;
	int rc = -1;

	resp.agents = calloc(op->count + 1, sizeof(*resp.agents));
	if (resp.agents == NULL) {
		tsr_err_set(&err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < op->npages; i++)
		for (size_t j = 0; j < op->pages[i]->n_agents; j++)
			resp.agents[k++] = op->pages[i]->agents[j];
	resp.n_agents = k;
	if (op->has_next) {
		pt.index = op->index;
		memcpy(pt.spoke, op->hub->spokes->v[op->index].conf->id,
		       strlen(op->hub->spokes->v[op->index].conf->id) + 1);
		memcpy(pt.token, op->token, strlen(op->token) + 1);
		if (page_token_encode(&pt, &token, &err) != 0)
			goto out;
		resp.next_page_token = token;
	}
	if (pb_pack(&resp.base, &buf, &buflen, &err) != 0)
		goto out;
	hub_call_reply(op->call, buf, buflen);
	rc = 0;
out:
	if (rc != 0)
		hub_call_fail(op->call, &err);
	free(buf);
	free(token);
	free(resp.agents);
}

static void list_done(void *arg, const struct tsr_err *err, enum relay_end end,
		      const uint8_t *payload, size_t len)
{
	struct list_op *op = arg;
	struct tsr_err e;
	bool more = false;
	int rc = -1;

	op->relay = NULL;
	if (err != NULL) {
		e = *err;
		goto out;
	}
	if (list_take(op, payload, len, &more, &e) != 0)
		goto out;
	if (more) {
		if (list_ask(op, &e) != 0)
			goto out;
		return; /* the next spoke's answer comes back here */
	}
	list_answer(op);
	rc = 0;
out:
	if (rc != 0)
		hub_call_fail(op->call, &e);
	list_op_free(op);
}

static void list_cancel(void *arg)
{
	struct list_op *op = arg;

	op->cancelled = true;
	if (op->relay != NULL)
		relay_cancel(op->relay);
}

/* Validates r into op: filters, page size and where to start. */
static int list_setup(struct list_op *op, const Tessera__V1__ListAgentsRequest *r,
		      struct tsr_err *err)
{
	struct spokes *spokes = op->hub->spokes;
	struct tsr_label labels[TSR_LABELS_MAX];
	struct page_token pt;

	if (hub_spoke_arg(op->hub, r->spoke_id, &op->only, err) != 0)
		return -1;
	if ((int)r->state < TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED ||
	    (int)r->state > TESSERA__V1__AGENT_STATE__AGENT_STATE_KILLED)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "unknown state %d",
				   (int)r->state);
	if (r->type[0] != '\0' && !ids_valid_name(r->type))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "type must be empty or 1-%d characters of [A-Za-z0-9_-]",
				   TSR_NAME_MAX);
	if (r->page_size > TSR_PAGE_SIZE_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "page_size must be at most %d", TSR_PAGE_SIZE_MAX);
	if (r->n_labels > TSR_LABELS_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "at most %d labels in a selector", TSR_LABELS_MAX);
	for (size_t i = 0; i < r->n_labels; i++) {
		labels[i].key = r->labels[i]->key;
		labels[i].value = r->labels[i]->value;
	}
	if (ids_check_labels(labels, r->n_labels, "selector label", err) != 0)
		return -1;
	for (size_t i = 0; i < r->n_labels; i++) {
		memcpy(op->labels[i].key, labels[i].key, strlen(labels[i].key) + 1);
		memcpy(op->labels[i].value, labels[i].value, strlen(labels[i].value) + 1);
	}
	op->nlabels = r->n_labels;
	op->state = r->state;
	memcpy(op->type, r->type, strlen(r->type) + 1);
	op->want = r->page_size != 0 ? r->page_size : HUB_PAGE_SIZE_DEFAULT;
	op->index = op->only != NULL ? op->only->index : 0;
	if (r->page_token[0] == '\0')
		return 0;
	if (page_token_decode(r->page_token, &pt, err) != 0)
		return -1;
	if (pt.index >= spokes->n || strcmp(spokes->v[pt.index].conf->id, pt.spoke) != 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "page token names spoke %s, which is no longer configured",
				   pt.spoke);
	if (op->only != NULL && pt.index != op->only->index)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "page token belongs to a listing of spoke %s", pt.spoke);
	op->index = pt.index;
	memcpy(op->token, pt.token, strlen(pt.token) + 1);
	return 0;
}

void list_agents(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	struct hub *h = ctx;
	Tessera__V1__ListAgentsRequest *r;
	struct list_op *op = NULL;
	struct tsr_err err;
	int rc = -1;

	r = tessera__v1__list_agents_request__unpack(NULL, len, req);
	if (r == NULL) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT, "malformed ListAgentsRequest");
		goto out;
	}
	op = calloc(1, sizeof(*op));
	if (op == NULL || (op->pages = calloc(h->spokes->n, sizeof(*op->pages))) == NULL) {
		tsr_err_set(&err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	op->hub = h;
	op->call = call;
	if (list_setup(op, r, &err) != 0 || list_ask(op, &err) != 0)
		goto out;
	/* The relay's completion owns op now; a cancel that already happened runs here. */
	rpc_call_on_cancel(call, list_cancel, op);
	op = NULL;
	rc = 0;
out:
	if (rc != 0)
		rpc_call_fail(call, &err);
	if (op != NULL)
		list_op_free(op);
	if (r != NULL)
		tessera__v1__list_agents_request__free_unpacked(r, NULL);
}
