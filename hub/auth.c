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

/* The hash of a configured token in value, or UNAUTHENTICATED. */
static int auth_token_of(const struct auth *a, const char *value, struct token_hash *out,
			 struct tsr_err *err)
{
	size_t slen = strlen(TOKEN_SCHEME);
	struct tsr_err bad;

	/* The messages never echo the header: it may hold a real token. */
	if (value == NULL)
		return tsr_err_set(err, GRPC_STATUS_UNAUTHENTICATED,
				   "missing (or oversized) \"authorization: Bearer TOKEN\" "
				   "metadata");
	/* RFC 7235: the scheme name is case-insensitive. */
	if (strncasecmp(value, TOKEN_SCHEME, slen) != 0 ||
	    token_hash(value + slen, strlen(value + slen), out, &bad) != 0 ||
	    !token_match(a->hashes, a->n, out))
		return tsr_err_set(err, GRPC_STATUS_UNAUTHENTICATED, "invalid bearer token");
	return 0;
}

int auth_check(const struct auth *a, const char *value, struct tsr_err *err)
{
	struct auth_caller c;

	return auth_caller_of(a, value, &c, err);
}

int auth_caller_of(const struct auth *a, const char *value, struct auth_caller *out,
		   struct tsr_err *err)
{
	memset(out, 0, sizeof(*out));
	/* Under "auth none" a header proves nothing: nobody's tokens are checked. */
	if (a->none) {
		out->anonymous = true;
		return 0;
	}
	return auth_token_of(a, value, &out->hash, err);
}

int auth_caller(const struct auth *a, struct rpc_call *call, struct auth_caller *out,
		struct tsr_err *err)
{
	char value[TOKEN_HEADER_VALUE_MAX];
	int rc;

	/* Absent and oversized look alike: neither can be a configured token. */
	if (rpc_call_metadata(call, TOKEN_HEADER, value, sizeof(value)) != 0)
		rc = auth_caller_of(a, NULL, out, err);
	else
		rc = auth_caller_of(a, value, out, err);
	sodium_memzero(value, sizeof(value));
	return rc;
}

bool auth_still_valid(const struct auth *a, const struct auth_caller *c)
{
	if (a->none)
		return true;
	return !c->anonymous && token_match(a->hashes, a->n, &c->hash);
}

bool auth_same_token(const struct auth_caller *a, const struct auth_caller *b)
{
	return !a->anonymous && !b->anonymous &&
	       sodium_memcmp(a->hash.h, b->hash.h, sizeof(a->hash.h)) == 0;
}

int auth_gate(void *ctx, struct rpc_call *call, struct tsr_err *err)
{
	const struct auth *a = ctx;
	struct auth_caller c;

	return auth_caller(a, call, &c, err);
}
