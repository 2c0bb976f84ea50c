/*
 * cli_rpc: the CLI's connection to the hub: a loop and a channel, and
 * unary calls that run the loop until their callback has fired.
 */
#ifndef TSR_HUB_CLI_RPC_H
#define TSR_HUB_CLI_RPC_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "cli.h"
#include "error.h"
#include "rpc_client.h"
#include "rpc_loop.h"

/* Hub pages stay under 4 MiB, but one spoke page may reach the signing limit. */
#define CLI_MAX_MESSAGE (8 * 1024 * 1024)

struct cli_hub {
	struct rpc_loop *loop;		/* owned */
	struct rpc_channel *ch;		/* owned */
	int64_t timeout_ms;
};

int cli_hub_open(const struct cli *c, struct cli_hub *h, struct tsr_err *err);
void cli_hub_close(struct cli_hub *h);
/* One unary call within the --timeout; *resp is malloc'd, the caller frees it. */
int cli_hub_call(struct cli_hub *h, const char *method, const ProtobufCMessage *req,
		 uint8_t **resp, size_t *len, struct tsr_err *err);
/* "OK", "NOT_FOUND", ...: the status names gRPC's documentation uses. */
const char *cli_status_name(grpc_status_code code);

#endif
