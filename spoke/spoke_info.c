/*
 * spoke_info: SPOKE_INFO. The count is the supervisor's, the same figure
 * the max-agents cap of AGENT_SPAWN is checked against, so a hub that
 * sees running < max may expect a spawn to be accepted.
 */
#include "spoke_info.h"

#include "pb.h"
#include "spoke.h"
#include "tessera/v1/spoke.pb-c.h"

int spoke_cmd_info(struct spoke *sp, const uint8_t *payload, size_t len, uint8_t **out,
		   size_t *outlen, struct tsr_err *err)
{
	Tessera__V1__SpokeStatusRequest *req;
	Tessera__V1__SpokeStatus st = TESSERA__V1__SPOKE_STATUS__INIT;
	int rc = -1;

	req = tessera__v1__spoke_status_request__unpack(NULL, len, payload);
	if (req == NULL) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "malformed SPOKE_INFO payload");
		goto out;
	}
	/* Both are bounded by SUPERVISOR_AGENTS_MAX, far below INT32_MAX. */
	st.running_agents = (int32_t)supervisor_count(sp->sv);
	st.max_agents = sp->cfg.max_agents;
	rc = pb_pack(&st.base, out, outlen, err);
out:
	if (req != NULL)
		tessera__v1__spoke_status_request__free_unpacked(req, NULL);
	return rc;
}
