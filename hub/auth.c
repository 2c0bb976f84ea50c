/* auth: checking a call's bearer token against the configured hashes. */
#include "auth.h"

#include <sodium.h>
#include <string.h>
#include <strings.h>

void auth_set(struct auth *a, const struct hub_config *cfg)
{
	a->none = cfg->auth_none;
	for (size_t i = 0; i < cfg->ntokens; i++)
		a->hashes[i] = cfg->tokens[i].hash;
	a->n = cfg->ntokens;
}

int auth_check(const struct auth *a, const char *value, struct tsr_err *err)
{
	size_t slen = strlen(TOKEN_SCHEME);
	struct token_hash h;
	struct tsr_err bad;

	if (a->none)
		return 0;
	/* The messages never echo the header: it may hold a real token. */
	if (value == NULL)
		return tsr_err_set(err, GRPC_STATUS_UNAUTHENTICATED,
				   "missing (or oversized) \"authorization: Bearer TOKEN\" "
				   "metadata");
	/* RFC 7235: the scheme name is case-insensitive. */
	if (strncasecmp(value, TOKEN_SCHEME, slen) != 0 ||
	    token_hash(value + slen, strlen(value + slen), &h, &bad) != 0 ||
	    !token_match(a->hashes, a->n, &h))
		return tsr_err_set(err, GRPC_STATUS_UNAUTHENTICATED, "invalid bearer token");
	return 0;
}

int auth_gate(void *ctx, struct rpc_call *call, struct tsr_err *err)
{
	const struct auth *a = ctx;
	char value[TOKEN_HEADER_VALUE_MAX];
	int rc;

	if (a->none)
		return 0;
	/* Absent and oversized look alike: neither can be a configured token. */
	if (rpc_call_metadata(call, TOKEN_HEADER, value, sizeof(value)) != 0)
		rc = auth_check(a, NULL, err);
	else
		rc = auth_check(a, value, err);
	sodium_memzero(value, sizeof(value));
	return rc;
}
