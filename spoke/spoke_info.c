/*
 * spoke_info: SPOKE_INFO and SPOKE_DRAIN. The count is the supervisor's,
 * the same figure the max-agents cap of AGENT_SPAWN is checked against,
 * so a hub that sees running < max may expect a spawn to be accepted;
 * and draining is the flag that AGENT_SPAWN checks (agent_commands.c).
 */
#include "spoke_info.h"

#include "log.h"
#include "pb.h"
#include "spoke.h"
#include "tessera/v1/spoke.pb-c.h"

/* The SpokeStatus of sp now, packed. */
static int spoke_status_pack(struct spoke *sp, uint8_t **out, size_t *outlen, struct tsr_err *err)
{
	Tessera__V1__SpokeStatus st = TESSERA__V1__SPOKE_STATUS__INIT;

	/* Both are bounded by SUPERVISOR_AGENTS_MAX, far below INT32_MAX. */
	st.running_agents = (int32_t)supervisor_count(sp->sv);
	st.max_agents = sp->cfg.max_agents;
	st.draining = sp->draining;
	return pb_pack(&st.base, out, outlen, err);
}

int spoke_cmd_info(struct spoke *sp, const uint8_t *payload, size_t len, uint8_t **out,
		   size_t *outlen, struct tsr_err *err)
{
	Tessera__V1__SpokeStatusRequest *req;
	int rc = -1;

	req = tessera__v1__spoke_status_request__unpack(NULL, len, payload);
	if (req == NULL) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "malformed SPOKE_INFO payload");
		goto out;
	}
	rc = spoke_status_pack(sp, out, outlen, err);
out:
	if (req != NULL)
		tessera__v1__spoke_status_request__free_unpacked(req, NULL);
	return rc;
}

int spoke_cmd_drain(struct spoke *sp, const uint8_t *payload, size_t len, uint8_t **out,
		    size_t *outlen, struct tsr_err *err)
{
	Tessera__V1__SpokeDrainRequest *req;
	bool drain;
	int rc = -1;

	req = tessera__v1__spoke_drain_request__unpack(NULL, len, payload);
	if (req == NULL) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "malformed SPOKE_DRAIN payload");
		goto out;
	}
	drain = req->draining != 0;
	if (drain != sp->draining) {
		/* Valkey first: memory never claims what a restart would forget. */
		if (store_drain_set(sp->store, drain, err) != 0)
			goto out;
		sp->draining = drain;
		if (sp->draining)
			log_info("draining: no new agents; %zu running go on",
				 supervisor_count(sp->sv));
		else
			log_info("undrained: taking new agents again");
	}
	rc = spoke_status_pack(sp, out, outlen, err);
out:
	if (req != NULL)
		tessera__v1__spoke_drain_request__free_unpacked(req, NULL);
	return rc;
}

int spoke_drain_load(struct spoke *sp, struct tsr_err *err)
{
	if (store_drain_get(sp->store, &sp->draining, err) != 0)
		return -1;
	if (sp->draining)
		log_info("draining: no new agents until `tessera undrain %s`", sp->cfg.id);
	return 0;
}
