/*
 * auth: the bearer-token gate in front of every tessera.v1.Hub method.
 * rpc_server runs it before the request is read ("refused first, parsed
 * second"); health and reflection are other services and stay open. The
 * token set lives on the loop thread, which also swaps it on SIGHUP; a
 * call that outlives the gate (a watch) keeps its auth_caller, so that it
 * can be counted per token and ended when its token is removed.
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

/*
 * Who a call let in is, for what outlives the gate (a watch): the hash of
 * its token, or anonymous under "auth none", where there is none.
 */
struct auth_caller {
	bool anonymous;
	struct token_hash hash;
};

/* Takes cfg's token hashes and auth mode, replacing the ones before. */
void auth_set(struct auth *a, const struct hub_config *cfg);
/* value is the TOKEN_HEADER's, NULL when absent; UNAUTHENTICATED unless
 * it is TOKEN_SCHEME and a configured token. */
int auth_check(const struct auth *a, const char *value, struct tsr_err *err);
/*
 * The caller of a call the gate let in, from its TOKEN_HEADER value
 * (value NULL when absent); UNAUTHENTICATED as auth_check says.
 */
int auth_caller_of(const struct auth *a, const char *value, struct auth_caller *out,
		   struct tsr_err *err);
/* The same, reading the call's metadata. */
int auth_caller(const struct auth *a, struct rpc_call *call, struct auth_caller *out,
		struct tsr_err *err);
/*
 * Whether a caller let in earlier would still be: its token is still
 * configured, or the API is open ("auth none"). An anonymous caller of an
 * API that now wants tokens is not.
 */
bool auth_still_valid(const struct auth *a, const struct auth_caller *c);
/* Whether two callers hold the same token (anonymous ones never do). */
bool auth_same_token(const struct auth_caller *a, const struct auth_caller *b);
/* An rpc_gate_fn; ctx is the struct auth. */
int auth_gate(void *ctx, struct rpc_call *call, struct tsr_err *err);

#endif
