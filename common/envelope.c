/*
 * envelope: sealing and opening Command, Reply, Event and Output messages. The
 * outer Signed* message carries the inner message's exact bytes, so the
 * signature never depends on re-serialization.
 */
#include "envelope.h"

#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "pb.h"

static int envelope_seal_bytes(const struct sign_key *key, enum sign_domain domain,
			       const uint8_t *inner, size_t inner_len,
			       const ProtobufCMessageDescriptor *outer_desc, uint8_t **out,
			       size_t *outlen, struct tsr_err *err)
{
	uint8_t sig[crypto_sign_BYTES];
	/* SignedCommand, SignedReply, SignedEvent and SignedOutput share this layout. */
	Tessera__V1__SignedCommand outer = TESSERA__V1__SIGNED_COMMAND__INIT;

	if (sign_message(key, domain, inner, inner_len, sig, err) != 0)
		return -1;
	outer.base.descriptor = outer_desc;
	outer.command.data = (uint8_t *)inner;
	outer.command.len = inner_len;
	outer.signature.data = sig;
	outer.signature.len = sizeof(sig);
	return pb_pack(&outer.base, out, outlen, err);
}

int envelope_command_seal(const struct sign_key *key, const struct envelope_command_args *a,
			  uint8_t **out, size_t *outlen, struct tsr_err *err)
{
	Tessera__V1__Command cmd = TESSERA__V1__COMMAND__INIT;
	uint8_t nonce[ENVELOPE_NONCE_BYTES];
	uint8_t *inner = NULL;
	size_t inner_len;
	int rc = -1;

	randombytes_buf(nonce, sizeof(nonce));
	cmd.type = a->type;
	cmd.payload.data = (uint8_t *)a->payload;
	cmd.payload.len = a->payload_len;
	cmd.issuer_key_id = (char *)key->pub.id;
	cmd.audience = (char *)a->audience;
	cmd.nonce.data = nonce;
	cmd.nonce.len = sizeof(nonce);
	cmd.issued_at_ms = a->now_ms;
	cmd.expires_at_ms = a->now_ms + a->ttl_ms;
	cmd.command_id = (char *)a->command_id;
	if (pb_pack(&cmd.base, &inner, &inner_len, err) != 0)
		goto out;
	rc = envelope_seal_bytes(key, SIGN_DOMAIN_COMMAND, inner, inner_len,
				 &tessera__v1__signed_command__descriptor, out, outlen, err);
out:
	free(inner);
	return rc;
}

int envelope_command_open(const uint8_t *buf, size_t len, const struct sign_keyring *trusted,
			  const char *self_id, int64_t now_ms, Tessera__V1__Command **out,
			  struct tsr_err *err)
{
	Tessera__V1__SignedCommand *sc;
	Tessera__V1__Command *cmd = NULL;
	int rc = -1;

	if (len > ENVELOPE_COMMAND_MAX)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
				   "signed command above %d bytes", ENVELOPE_COMMAND_MAX);
	sc = tessera__v1__signed_command__unpack(NULL, len, buf);
	if (sc == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "malformed signed command");
	/* The issuer id must be read before the signature can be checked:
	 * decode the inner bytes, but use nothing else from them until the
	 * signature has verified against that issuer's trusted key. */
	cmd = tessera__v1__command__unpack(NULL, sc->command.len, sc->command.data);
	if (cmd == NULL) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "malformed command");
		goto out;
	}
	const struct sign_pubkey *issuer = sign_keyring_find(trusted, cmd->issuer_key_id);
	if (issuer == NULL) {
		tsr_err_set(err, GRPC_STATUS_PERMISSION_DENIED, "command from an untrusted key");
		goto out;
	}
	if (sign_verify(issuer, SIGN_DOMAIN_COMMAND, sc->command.data, sc->command.len,
			sc->signature.data, sc->signature.len) != 0) {
		tsr_err_set(err, GRPC_STATUS_PERMISSION_DENIED,
			    "command signature does not verify");
		goto out;
	}
	if (strcmp(cmd->audience, self_id) != 0) {
		tsr_err_set(err, GRPC_STATUS_PERMISSION_DENIED, "command meant for another spoke");
		goto out;
	}
	/* Ordered so that no sum overflows: issued_at is bounded above first. */
	if (cmd->issued_at_ms > now_ms + ENVELOPE_SKEW_MS ||
	    cmd->expires_at_ms < now_ms - ENVELOPE_SKEW_MS ||
	    cmd->expires_at_ms < cmd->issued_at_ms ||
	    cmd->expires_at_ms > cmd->issued_at_ms + ENVELOPE_WINDOW_MAX_MS) {
		tsr_err_set(err, GRPC_STATUS_PERMISSION_DENIED,
			    "command outside its validity window");
		goto out;
	}
	if (cmd->nonce.len != ENVELOPE_NONCE_BYTES || !ids_valid_name(cmd->command_id)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "command lacks a nonce or an id");
		goto out;
	}
	*out = cmd;
	cmd = NULL;
	rc = 0;
out:
	if (cmd != NULL)
		tessera__v1__command__free_unpacked(cmd, NULL);
	tessera__v1__signed_command__free_unpacked(sc, NULL);
	return rc;
}

int64_t envelope_command_replay_ms(const Tessera__V1__Command *cmd, int64_t now_ms)
{
	/* Open accepts the command while now <= expires_at + skew. */
	int64_t ms = cmd->expires_at_ms - now_ms + ENVELOPE_SKEW_MS + 1;
	int64_t max = ENVELOPE_WINDOW_MAX_MS + 2 * ENVELOPE_SKEW_MS;

	if (ms < 1)
		return 1;
	return ms > max ? max : ms;
}

int envelope_reply_seal(const struct sign_key *key, const Tessera__V1__Reply *reply, uint8_t **out,
			size_t *outlen, struct tsr_err *err)
{
	uint8_t *inner = NULL;
	size_t inner_len;
	int rc;

	if (pb_pack(&reply->base, &inner, &inner_len, err) != 0)
		return -1;
	rc = envelope_seal_bytes(key, SIGN_DOMAIN_REPLY, inner, inner_len,
				 &tessera__v1__signed_reply__descriptor, out, outlen, err);
	free(inner);
	return rc;
}

int envelope_reply_open(const uint8_t *buf, size_t len, const struct sign_pubkey *spoke_key,
			const char *spoke_id, const char *command_id, Tessera__V1__Reply **out,
			struct tsr_err *err)
{
	Tessera__V1__SignedReply *sr;
	Tessera__V1__Reply *reply = NULL;
	int rc = -1;

	sr = tessera__v1__signed_reply__unpack(NULL, len, buf);
	if (sr == NULL)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "spoke %s sent a malformed reply",
				   spoke_id);
	if (sign_verify(spoke_key, SIGN_DOMAIN_REPLY, sr->reply.data, sr->reply.len,
			sr->signature.data, sr->signature.len) != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL,
			    "reply from spoke %s does not verify against its key", spoke_id);
		goto out;
	}
	reply = tessera__v1__reply__unpack(NULL, sr->reply.len, sr->reply.data);
	if (reply == NULL) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "spoke %s signed a malformed reply",
			    spoke_id);
		goto out;
	}
	if (strcmp(reply->spoke_id, spoke_id) != 0 || strcmp(reply->command_id, command_id) != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL,
			    "spoke %s answered another command or as another spoke", spoke_id);
		tessera__v1__reply__free_unpacked(reply, NULL);
		goto out;
	}
	*out = reply;
	rc = 0;
out:
	tessera__v1__signed_reply__free_unpacked(sr, NULL);
	return rc;
}

int envelope_event_seal(const struct sign_key *key, const Tessera__V1__Event *event, uint8_t **out,
			size_t *outlen, struct tsr_err *err)
{
	uint8_t *inner = NULL;
	size_t inner_len;
	int rc;

	if (pb_pack(&event->base, &inner, &inner_len, err) != 0)
		return -1;
	rc = envelope_seal_bytes(key, SIGN_DOMAIN_EVENT, inner, inner_len,
				 &tessera__v1__signed_event__descriptor, out, outlen, err);
	free(inner);
	return rc;
}

int envelope_event_open(const uint8_t *buf, size_t len, const struct sign_pubkey *spoke_key,
			const char *spoke_id, Tessera__V1__Event **out, struct tsr_err *err)
{
	Tessera__V1__SignedEvent *se;
	Tessera__V1__Event *ev = NULL;
	int rc = -1;

	se = tessera__v1__signed_event__unpack(NULL, len, buf);
	if (se == NULL)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "spoke %s sent a malformed event",
				   spoke_id);
	if (sign_verify(spoke_key, SIGN_DOMAIN_EVENT, se->event.data, se->event.len,
			se->signature.data, se->signature.len) != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL,
			    "event from spoke %s does not verify against its key", spoke_id);
		goto out;
	}
	ev = tessera__v1__event__unpack(NULL, se->event.len, se->event.data);
	if (ev == NULL || strcmp(ev->spoke_id, spoke_id) != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "spoke %s signed a malformed event",
			    spoke_id);
		if (ev != NULL)
			tessera__v1__event__free_unpacked(ev, NULL);
		goto out;
	}
	*out = ev;
	rc = 0;
out:
	tessera__v1__signed_event__free_unpacked(se, NULL);
	return rc;
}

int envelope_output_seal(const struct sign_key *key, const Tessera__V1__OutputMessage *msg,
			 uint8_t **out, size_t *outlen, struct tsr_err *err)
{
	uint8_t *inner = NULL;
	size_t inner_len;
	int rc;

	if (pb_pack(&msg->base, &inner, &inner_len, err) != 0)
		return -1;
	rc = envelope_seal_bytes(key, SIGN_DOMAIN_OUTPUT, inner, inner_len,
				 &tessera__v1__signed_output__descriptor, out, outlen, err);
	free(inner);
	return rc;
}

int envelope_output_open(const uint8_t *buf, size_t len, const struct sign_pubkey *spoke_key,
			 const char *spoke_id, const char *command_id,
			 Tessera__V1__OutputMessage **out, struct tsr_err *err)
{
	Tessera__V1__SignedOutput *so;
	Tessera__V1__OutputMessage *m = NULL;
	int rc = -1;

	so = tessera__v1__signed_output__unpack(NULL, len, buf);
	if (so == NULL)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "spoke %s sent malformed output",
				   spoke_id);
	if (sign_verify(spoke_key, SIGN_DOMAIN_OUTPUT, so->output.data, so->output.len,
			so->signature.data, so->signature.len) != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL,
			    "output from spoke %s does not verify against its key", spoke_id);
		goto out;
	}
	m = tessera__v1__output_message__unpack(NULL, so->output.len, so->output.data);
	if (m == NULL || m->chunk == NULL || strcmp(m->spoke_id, spoke_id) != 0 ||
	    strcmp(m->command_id, command_id) != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL,
			    "spoke %s signed output that does not answer command %s", spoke_id,
			    command_id);
		if (m != NULL)
			tessera__v1__output_message__free_unpacked(m, NULL);
		goto out;
	}
	*out = m;
	rc = 0;
out:
	tessera__v1__signed_output__free_unpacked(so, NULL);
	return rc;
}
