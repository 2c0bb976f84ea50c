/*
 * envelope: the signed federation messages. The hub seals commands; the
 * spoke opens them (signature, issuer, audience, time window) and seals
 * replies, events and output, which the hub opens against that spoke's key.
 * Every open* refuses before it trusts: nothing inside is used until the
 * signature has verified.
 *
 * Returned messages are protobuf-c unpacked: free with
 * tessera__v1__<type>__free_unpacked(msg, NULL). Sealed buffers are
 * malloc'd; the caller frees them.
 */
#ifndef TSR_ENVELOPE_H
#define TSR_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sign.h"
#include "tessera/v1/agent.pb-c.h"
#include "tessera/v1/spoke.pb-c.h"

#define ENVELOPE_TTL_MS 30000  /* a command's lifetime */
#define ENVELOPE_SKEW_MS 30000 /* clock difference tolerated */
#define ENVELOPE_NONCE_BYTES 16
#define ENVELOPE_WINDOW_MAX_MS (10 * ENVELOPE_TTL_MS) /* longest issued..expires */
#define ENVELOPE_COMMAND_MAX (256 * 1024)	      /* bytes of a signed command */

struct envelope_command_args {
	Tessera__V1__CommandType type;
	const uint8_t *payload;
	size_t payload_len;
	const char *audience;
	const char *command_id;
	int64_t now_ms;
	int64_t ttl_ms;
};

int envelope_command_seal(const struct sign_key *key, const struct envelope_command_args *a,
			  uint8_t **out, size_t *outlen, struct tsr_err *err);
/*
 * PERMISSION_DENIED for any failure of trust, INVALID_ARGUMENT for bad
 * bytes, RESOURCE_EXHAUSTED for more than ENVELOPE_COMMAND_MAX of them.
 * The nonce is not checked against earlier commands: the caller records
 * it for envelope_command_replay_ms() and refuses one seen before.
 */
int envelope_command_open(const uint8_t *buf, size_t len, const struct sign_keyring *trusted,
			  const char *self_id, int64_t now_ms, Tessera__V1__Command **out,
			  struct tsr_err *err);
/*
 * How long an opened command's nonce must be remembered: until the
 * command would fail the time window anyway. At least 1 ms, at most
 * ENVELOPE_WINDOW_MAX_MS + 2 * ENVELOPE_SKEW_MS.
 */
int64_t envelope_command_replay_ms(const Tessera__V1__Command *cmd, int64_t now_ms);

int envelope_reply_seal(const struct sign_key *key, const Tessera__V1__Reply *reply, uint8_t **out,
			size_t *outlen, struct tsr_err *err);
int envelope_reply_open(const uint8_t *buf, size_t len, const struct sign_pubkey *spoke_key,
			const char *spoke_id, const char *command_id, Tessera__V1__Reply **out,
			struct tsr_err *err);

int envelope_event_seal(const struct sign_key *key, const Tessera__V1__Event *event, uint8_t **out,
			size_t *outlen, struct tsr_err *err);
int envelope_event_open(const uint8_t *buf, size_t len, const struct sign_pubkey *spoke_key,
			const char *spoke_id, Tessera__V1__Event **out, struct tsr_err *err);

int envelope_output_seal(const struct sign_key *key, const Tessera__V1__OutputMessage *msg,
			 uint8_t **out, size_t *outlen, struct tsr_err *err);
/* Verifies, and that it is spoke_id's answer to command_id with a chunk. */
int envelope_output_open(const uint8_t *buf, size_t len, const struct sign_pubkey *spoke_key,
			 const char *spoke_id, const char *command_id,
			 Tessera__V1__OutputMessage **out, struct tsr_err *err);

#endif
