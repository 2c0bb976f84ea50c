/*
 * agent_commands: AGENT_STATUS and AGENT_LIST, and what every agent
 * command shares (agent_spawn.c and agent_kill.c have the other two).
 * State only ever changes through store_agent_create/transition, so every
 * change is checked against the lifecycle table and leaves its event
 * behind.
 */
#include "agent_commands.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "lifecycle.h"
#include "pb.h"
#include "spoke.h"
#include "tessera/v1/spoke.pb-c.h"
#include "utf8.h"

int agent_pack_current(struct spoke *sp, const char *agent_id, uint8_t **out, size_t *outlen,
		       struct tsr_err *err)
{
	Tessera__V1__Agent *a = NULL;
	int rc;

	if (store_agent_get(sp->store, agent_id, &a, err) != 0)
		return -1;
	rc = pb_pack(&a->base, out, outlen, err);
	tessera__v1__agent__free_unpacked(a, NULL);
	return rc;
}

/* An agent id of this spoke; anything else is refused before any lookup. */
int agent_check_id(struct spoke *sp, const char *agent_id, struct tsr_err *err)
{
	char spoke_id[TSR_NAME_MAX + 1];

	if (!ids_valid_agent_id(agent_id))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "malformed agent id");
	if (ids_agent_spoke(agent_id, spoke_id, sizeof(spoke_id)) != 0 ||
	    strcmp(spoke_id, sp->cfg.id) != 0)
		return tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "agent %s is not on spoke %s",
				   agent_id, sp->cfg.id);
	return 0;
}

int agent_grace_ms(const struct spoke *sp, const char *type_name)
{
	const struct agent_type *type = agent_types_find(&sp->cfg.types, type_name);

	return type != NULL && type->grace_ms >= 0 ? type->grace_ms : sp->cfg.kill_grace_ms;
}

/* A failure to record a command's nonce: what store_nonce_claim fails with. */
bool agent_nonce_failure(const struct tsr_err *err)
{
	return err->code == GRPC_STATUS_PERMISSION_DENIED || err->code == GRPC_STATUS_UNAVAILABLE;
}

/*
 * Records nonce (if any) on its own, for a command that writes nothing
 * else, so that its replay is refused too: 0, or AGENT_CMD_REFUSED with
 * err saying why it could not be recorded.
 */
int agent_nonce_alone(struct spoke *sp, const struct store_nonce *nonce, struct tsr_err *err)
{
	if (nonce == NULL ||
	    store_nonce_claim(sp->store, nonce->bytes, nonce->len, nonce->ttl_ms, err) == 0)
		return 0;
	return AGENT_CMD_REFUSED;
}

/*
 * A command refused before it wrote anything: its nonce recorded alone,
 * err keeping why it was refused unless the nonce cannot be recorded.
 * -1, or AGENT_CMD_REFUSED.
 */
int agent_refused(struct spoke *sp, const struct store_nonce *nonce, struct tsr_err *err)
{
	struct tsr_err nerr;

	if (agent_nonce_alone(sp, nonce, &nerr) == 0)
		return -1;
	*err = nerr;
	return AGENT_CMD_REFUSED;
}

void *agent_batch_start(struct agent_batch_cmd *cmds, size_t n, size_t size)
{
	void *items = calloc(n, size);

	for (size_t i = 0; i < n; i++) {
		cmds[i].rc = -1;
		cmds[i].out = NULL;
		cmds[i].outlen = 0;
		tsr_err_clear(&cmds[i].err);
		if (items == NULL)
			tsr_err_set(&cmds[i].err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	return items;
}

int agent_batch_one(agent_many_fn many, struct spoke *sp, const struct store_nonce *nonce,
		    const uint8_t *payload, size_t len, uint8_t **out, size_t *outlen,
		    struct tsr_err *err)
{
	struct agent_batch_cmd cmd = { .nonce = nonce, .payload = payload, .len = len };

	many(sp, &cmd, 1);
	*out = cmd.out;
	*outlen = cmd.outlen;
	*err = cmd.err;
	return cmd.rc;
}

int agent_cmd_status(struct spoke *sp, const uint8_t *payload, size_t len, uint8_t **out,
		     size_t *outlen, struct tsr_err *err)
{
	Tessera__V1__StatusCommand *req;
	Tessera__V1__Agent *a = NULL;
	struct tsr_err serr;
	char *tail, *repaired;
	size_t tail_len, repaired_len;
	int rc = -1;

	req = tessera__v1__status_command__unpack(NULL, len, payload);
	if (req == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "malformed status request");
	if (agent_check_id(sp, req->agent_id, err) != 0 ||
	    store_agent_get(sp->store, req->agent_id, &a, err) != 0)
		goto out;
	/*
	 * Only a terminal record holds the output; before that the
	 * supervisor has the tail so far. An agent it no longer has has
	 * ended, and its record gets the tail shortly.
	 */
	if (!lifecycle_terminal(a->state) &&
	    supervisor_output(sp->sv, a->id, &tail, &tail_len, &serr) == 0) {
		/* A proto3 string, repaired as the store repairs the final tail. */
		rc = utf8_repair(tail, tail_len, TSR_OUTPUT_MAX, UTF8_KEEP_TAIL, &repaired,
				 &repaired_len, err);
		free(tail);
		if (rc != 0)
			goto out;
		free(a->output);
		a->output = repaired;
	}
	rc = pb_pack(&a->base, out, outlen, err);
out:
	if (a != NULL)
		tessera__v1__agent__free_unpacked(a, NULL);
	tessera__v1__status_command__free_unpacked(req, NULL);
	return rc;
}

int agent_cmd_list(struct spoke *sp, const uint8_t *payload, size_t len, uint8_t **out,
		   size_t *outlen, struct tsr_err *err)
{
	Tessera__V1__ListCommand *req;
	Tessera__V1__AgentPage *resp = NULL;
	struct tsr_label labels[TSR_LABELS_MAX];
	int rc = -1;

	req = tessera__v1__list_command__unpack(NULL, len, payload);
	if (req == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "malformed list request");
	if (req->state != TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED &&
	    lifecycle_state_name(req->state) == NULL) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "unknown state filter %d",
			    (int)req->state);
		goto out;
	}
	if (req->type[0] != '\0' && !ids_valid_name(req->type)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "malformed type filter");
		goto out;
	}
	if (req->page_size > TSR_PAGE_SIZE_MAX ||
	    strnlen(req->page_token, TSR_SPOKE_PAGE_TOKEN_MAX + 1) > TSR_SPOKE_PAGE_TOKEN_MAX) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
			    "page size above %d or page token too long", TSR_PAGE_SIZE_MAX);
		goto out;
	}
	if (req->n_labels > TSR_LABELS_MAX) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "at most %d labels in a selector",
			    TSR_LABELS_MAX);
		goto out;
	}
	for (size_t i = 0; i < req->n_labels; i++) {
		labels[i].key = req->labels[i]->key;
		labels[i].value = req->labels[i]->value;
	}
	if (ids_check_labels(labels, req->n_labels, "selector label", err) != 0 ||
	    store_agent_list(sp->store, req->state, req->type, labels, req->n_labels,
			     req->page_size, req->page_token, &resp, err) != 0)
		goto out;
	rc = pb_pack(&resp->base, out, outlen, err);
	tessera__v1__agent_page__free_unpacked(resp, NULL);
out:
	tessera__v1__list_command__free_unpacked(req, NULL);
	return rc;
}
