/*
 * execute: tessera.v1.Spoke/Execute. Opens the signed command (refusing
 * anything not signed by a trusted hub for this spoke, before looking at
 * its payload), routes it by type to one handler, and answers with a
 * signed reply.
 */
#ifndef TSR_EXECUTE_H
#define TSR_EXECUTE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "protocol.h"
#include "rpc_server.h"
#include "tessera/v1/spoke.pb-c.h"

struct spoke;

/*
 * An rpc_handler_fn; ctx is the struct spoke. A spawn or a kill goes to
 * agent_batches, which answers it with execute_answer or execute_refuse.
 */
void execute_handle(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len);
/* Answers call with cmd's signed reply: err's status, and payload when OK. */
void execute_answer(struct spoke *sp, struct rpc_call *call, const Tessera__V1__Command *cmd,
		    const uint8_t *payload, size_t payload_len, struct tsr_err *err);
/* Ends call with err, signing nothing: cmd (NULL if it could not be opened) was refused. */
void execute_refuse(struct spoke *sp, struct rpc_call *call, const Tessera__V1__Command *cmd,
		    const struct tsr_err *err);

#endif
