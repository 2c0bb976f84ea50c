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

#include "protocol.h"
#include "rpc_server.h"

/* An rpc_handler_fn; ctx is the struct spoke. */
void execute_handle(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len);

#endif
