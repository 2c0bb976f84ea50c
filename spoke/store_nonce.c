/*
 * store_nonce: the command nonces a spoke has seen. Each is a key of its
 * own that Valkey expires once the command could no longer be accepted,
 * so the record survives a spoke restart and costs nothing afterwards.
 */
#include "store.h"

#include <stdio.h>
#include <string.h>

#include "store_internal.h"

#define STORE_NONCE_HEX_MAX (2 * STORE_NONCE_MAX)

/* Of two copies of a command, the second finds the nonce set: no reply. */
static int nonce_claimed(const redisReply *r, void *arg, struct tsr_err *err)
{
	(void)arg;
	if (r->type == REDIS_REPLY_NIL)
		return tsr_err_set(err, GRPC_STATUS_PERMISSION_DENIED, STORE_REPLAYED);
	if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey SET NX: unexpected reply");
	return 0;
}

int store_nonce_key(const struct store *st, const struct store_nonce *n, char key[STORE_KEY_MAX],
		    struct tsr_err *err)
{
	static const char hex[] = "0123456789abcdef";
	char name[STORE_NONCE_HEX_MAX + 1];

	if (n->len == 0 || n->len > STORE_NONCE_MAX || n->ttl_ms < 1 ||
	    n->ttl_ms > STORE_NONCE_TTL_MAX_MS)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "nonce of %zu bytes or lifetime of %lld ms out of bounds",
				   n->len, (long long)n->ttl_ms);
	for (size_t i = 0; i < n->len; i++) {
		name[2 * i] = hex[n->bytes[i] >> 4];
		name[2 * i + 1] = hex[n->bytes[i] & 0xf];
	}
	name[2 * n->len] = '\0';
	return store_key(key, st->nonce_prefix, name, err);
}

int store_nonce_claim(struct store *st, const uint8_t *nonce, size_t len, int64_t ttl_ms,
		      struct tsr_err *err)
{
	const struct store_nonce n = { nonce, len, ttl_ms };
	struct store_args a = { 0 };
	char key[STORE_KEY_MAX];

	if (store_nonce_key(st, &n, key, err) != 0)
		return -1;
	/* One atomic step: of two copies of a command, exactly one sets it. */
	store_args_str(&a, "SET");
	store_args_str(&a, key);
	store_args_str(&a, "1");
	store_args_str(&a, "NX");
	store_args_str(&a, "PX");
	store_args_int(&a, ttl_ms);
	return store_request(st, &a, STORE_TIMEOUT_MS, nonce_claimed, NULL, err);
}
