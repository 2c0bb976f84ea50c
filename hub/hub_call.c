/* hub_call: argument resolution, relay deadlines and ending user calls. */
#include "hub.h"
#include "hub_limits.h"

#include "ids.h"

int hub_spoke_arg(struct hub *h, const char *spoke_id, struct spoke **out, struct tsr_err *err)
{
	*out = NULL;
	if (spoke_id[0] == '\0')
		return 0;
	if (!ids_valid_name(spoke_id))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "spoke_id must be 1-%d characters of [A-Za-z0-9_-]",
				   TSR_NAME_MAX);
	*out = spokes_find(h->spokes, spoke_id);
	if (*out == NULL)
		return tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "no spoke %s is configured",
				   spoke_id);
	return 0;
}

int hub_agent_spoke(struct hub *h, const char *agent_id, struct spoke **out, struct tsr_err *err)
{
	char spoke_id[TSR_NAME_MAX + 1];

	if (ids_agent_spoke(agent_id, spoke_id, sizeof(spoke_id)) != 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent_id \"%.*s\" is not \"<spoke id>.<%d hex digits>\"",
				   TSR_AGENT_ID_MAX, agent_id, TSR_AGENT_ID_HEX);
	*out = spokes_find(h->spokes, spoke_id);
	if (*out == NULL)
		return tsr_err_set(err, GRPC_STATUS_NOT_FOUND,
				   "agent %s: no spoke %s is configured", agent_id, spoke_id);
	return 0;
}

int hub_relay_timeout(struct hub *h, struct rpc_call *call, int64_t *out, struct tsr_err *err)
{
	int64_t left = rpc_call_remaining_ms(call);

	if (left == 0)
		return tsr_err_set(err, GRPC_STATUS_DEADLINE_EXCEEDED,
				   "deadline passed before the hub could relay");
	if (left > 0)
		left -= left / 20 < HUB_RELAY_MARGIN_MS ? left / 20 : HUB_RELAY_MARGIN_MS;
	*out = (left > 0 && left < h->relay_timeout_ms) ? left : h->relay_timeout_ms;
	return 0;
}

void hub_call_fail(struct rpc_call *call, const struct tsr_err *err)
{
	rpc_call_on_cancel(call, NULL, NULL);
	rpc_call_fail(call, err);
}

void hub_call_reply(struct rpc_call *call, const uint8_t *msg, size_t len)
{
	rpc_call_on_cancel(call, NULL, NULL);
	rpc_call_reply(call, msg, len);
}

void hub_call_finish(struct rpc_call *call, grpc_status_code code, const char *msg)
{
	rpc_call_on_cancel(call, NULL, NULL);
	rpc_call_finish(call, code, msg);
}
