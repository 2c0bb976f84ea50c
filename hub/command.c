/* command: packing, identifying and sealing one command for a spoke. */
#include "command.h"

#include <sodium.h>
#include <stdlib.h>

#include "clock.h"
#include "envelope.h"
#include "pb.h"

int command_seal(const struct sign_key *key, const char *spoke_id, Tessera__V1__CommandType type,
		 const ProtobufCMessage *payload, char *id, size_t idlen, uint8_t **out,
		 size_t *outlen, struct tsr_err *err)
{
	struct envelope_command_args a;
	uint8_t rnd[COMMAND_ID_LEN / 2], *body = NULL;
	size_t body_len;
	int rc = -1;

	if (idlen < COMMAND_ID_LEN + 1) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "command id buffer too small");
		goto out;
	}
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(id, idlen, rnd, sizeof(rnd));
	if (pb_pack(payload, &body, &body_len, err) != 0)
		goto out;
	a.type = type;
	a.payload = body;
	a.payload_len = body_len;
	a.audience = spoke_id;
	a.command_id = id;
	a.now_ms = clock_wall_ms();
	a.ttl_ms = ENVELOPE_TTL_MS;
	rc = envelope_command_seal(key, &a, out, outlen, err);
out:
	free(body);
	return rc;
}
