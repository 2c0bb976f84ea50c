/*
 * cli_rpc: the CLI's connection to the hub: a loop and a channel (TLS
 * when the CLI has a CA), the bearer token every call carries, and unary
 * calls that run the loop until their callback has fired.
 */
#ifndef TSR_HUB_CLI_RPC_H
#define TSR_HUB_CLI_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "error.h"
#include "rpc_client.h"
#include "rpc_loop.h"
#include "token.h"

/* Hub pages stay under 4 MiB, but one spoke page may reach the signing limit. */
#define CLI_MAX_MESSAGE (8 * 1024 * 1024)

struct cli_hub {
	struct rpc_loop *loop;	/* owned */
	struct rpc_channel *ch; /* owned */
	int64_t timeout_ms;
	char auth[TOKEN_HEADER_VALUE_MAX]; /* "Bearer TOKEN"; "" without one */
};

int cli_hub_open(const struct cli *c, struct cli_hub *h, struct tsr_err *err);
void cli_hub_close(struct cli_hub *h);
/* Adds the token's metadata (if any) to a call's options. */
void cli_hub_metadata(const struct cli_hub *h, struct rpc_client_opts *opts);
/* One unary call within the --timeout; *resp is malloc'd, the caller frees it. */
int cli_hub_call(struct cli_hub *h, const char *method, const ProtobufCMessage *req, uint8_t **resp,
		 size_t *len, struct tsr_err *err);
/*
 * cli_hub_call, and its answer unpacked as a desc message into *out, which
 * the caller frees (protobuf_c_message_free_unpacked); one that does not
 * unpack is "the hub answered a malformed <what>".
 */
int cli_hub_fetch(struct cli_hub *h, const char *method, const ProtobufCMessage *req,
		  const ProtobufCMessageDescriptor *desc, const char *what, ProtobufCMessage **out,
		  struct tsr_err *err);

#endif
