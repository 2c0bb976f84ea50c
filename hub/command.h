/*
 * command: turning a request message into a signed federation command for
 * one spoke, with a fresh random command id (which the spoke echoes in its
 * signed reply, binding the reply to this command).
 */
#ifndef TSR_HUB_COMMAND_H
#define TSR_HUB_COMMAND_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sign.h"
#include "tessera/v1/spoke.pb-c.h"

#define COMMAND_ID_LEN 16 /* hex digits */

/* id receives the command id (COMMAND_ID_LEN + 1); *out is malloc'd. */
int command_seal(const struct sign_key *key, const char *spoke_id, Tessera__V1__CommandType type,
		 const ProtobufCMessage *payload, char *id, size_t idlen, uint8_t **out,
		 size_t *outlen, struct tsr_err *err);

#endif
