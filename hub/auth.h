/*
 * auth: the bearer-token gate in front of every tessera.v1.Hub method.
 * rpc_server runs it before the request is read ("refused first, parsed
 * second"); health and reflection are other services and stay open. The
 * token set lives on the loop thread, which also swaps it on SIGHUP.
 */
#ifndef TSR_HUB_AUTH_H
#define TSR_HUB_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "hub_config.h"
#include "rpc_server.h"
#include "token.h"

struct auth {
	bool none; /* "auth none": every caller is let in */
	struct token_hash hashes[HUB_TOKENS_MAX];
	size_t n;
};

/* Takes cfg's token hashes and auth mode, replacing the ones before. */
void auth_set(struct auth *a, const struct hub_config *cfg);
/* value is the TOKEN_HEADER's, NULL when absent; UNAUTHENTICATED unless
 * it is TOKEN_SCHEME and a configured token. */
int auth_check(const struct auth *a, const char *value, struct tsr_err *err);
/* An rpc_gate_fn; ctx is the struct auth. */
int auth_gate(void *ctx, struct rpc_call *call, struct tsr_err *err);

#endif
