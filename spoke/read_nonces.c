/* read_nonces: an expiring set of read commands' nonces, in memory. */
#include "read_nonces.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct rn_slot {
	int64_t expires_ms;
	uint8_t len; /* 0: empty */
	uint8_t nonce[ENVELOPE_NONCE_BYTES];
};

struct read_nonces {
	struct rn_slot *slots; /* owned, [cap] */
	size_t cap;	       /* a power of two */
	size_t used;	       /* slots not empty, expired ones included */
	int64_t rebuilt_ms;    /* when it was last rebuilt at its largest */
	uint8_t key[crypto_shorthash_KEYBYTES];
};

static int rn_alloc(size_t cap, struct rn_slot **out)
{
	*out = calloc(cap, sizeof(**out));
	return *out != NULL ? 0 : -1;
}

int read_nonces_new(struct read_nonces **out, struct tsr_err *err)
{
	struct read_nonces *rn = calloc(1, sizeof(*rn));

	if (rn == NULL || rn_alloc(READ_NONCES_SLOTS_MIN, &rn->slots) != 0) {
		free(rn);
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	rn->cap = READ_NONCES_SLOTS_MIN;
	crypto_shorthash_keygen(rn->key);
	*out = rn;
	return 0;
}

void read_nonces_free(struct read_nonces *rn)
{
	if (rn == NULL)
		return;
	free(rn->slots);
	free(rn);
}

static size_t rn_home(const struct read_nonces *rn, const uint8_t *nonce, size_t len)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, nonce, len, rn->key);
	memcpy(&v, h, sizeof(v));
	return (size_t)v & (rn->cap - 1);
}

/* The slot holding nonce, or the empty one where it would go; the table is never full. */
static struct rn_slot *rn_find(struct read_nonces *rn, const uint8_t *nonce, size_t len)
{
	size_t i = rn_home(rn, nonce, len);

	for (;;) {
		struct rn_slot *s = &rn->slots[i];

		if (s->len == 0 || (s->len == len && memcmp(s->nonce, nonce, len) == 0))
			return s;
		i = (i + 1) & (rn->cap - 1);
	}
}

/*
 * Rebuilds the table without expired entries, at a size where the live
 * ones fill a quarter of it (within the bounds); -1 if out of memory.
 */
static int rn_rebuild(struct read_nonces *rn, int64_t now_ms)
{
	struct rn_slot *old = rn->slots, *fresh;
	size_t live = 0, cap = READ_NONCES_SLOTS_MIN, old_cap = rn->cap;

	for (size_t i = 0; i < old_cap; i++)
		live += old[i].len != 0 && old[i].expires_ms > now_ms;
	while (cap < READ_NONCES_SLOTS_MAX && cap < 4 * live)
		cap *= 2;
	if (rn_alloc(cap, &fresh) != 0)
		return -1;
	rn->slots = fresh;
	rn->cap = cap;
	rn->used = 0;
	for (size_t i = 0; i < old_cap; i++) {
		if (old[i].len == 0 || old[i].expires_ms <= now_ms)
			continue;
		*rn_find(rn, old[i].nonce, old[i].len) = old[i];
		rn->used++;
	}
	free(old);
	return 0;
}

int read_nonces_claim(struct read_nonces *rn, const uint8_t *nonce, size_t len, int64_t now_ms,
		      int64_t ttl_ms, struct tsr_err *err)
{
	struct rn_slot *s;

	if (len == 0 || len > ENVELOPE_NONCE_BYTES || ttl_ms < 1)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "nonce of %zu bytes or lifetime of %lld ms out of bounds", len,
				   (long long)ttl_ms);
	/*
	 * At most half full, so that probes stay short and always end. At
	 * its largest, rebuilt once a second at most: a table that stays full
	 * must not cost a rebuild per read.
	 */
	if (2 * (rn->used + 1) > rn->cap &&
	    (rn->cap < READ_NONCES_SLOTS_MAX || now_ms - rn->rebuilt_ms >= 1000)) {
		if (rn->cap == READ_NONCES_SLOTS_MAX)
			rn->rebuilt_ms = now_ms;
		if (rn_rebuild(rn, now_ms) != 0)
			return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	if (2 * (rn->used + 1) > rn->cap)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
				   "%zu read nonces held in memory", rn->used);
	s = rn_find(rn, nonce, len);
	if (s->len != 0 && s->expires_ms > now_ms)
		return tsr_err_set(err, GRPC_STATUS_PERMISSION_DENIED, "replayed command");
	if (s->len == 0)
		rn->used++;
	s->len = (uint8_t)len;
	memcpy(s->nonce, nonce, len);
	s->expires_ms = now_ms + ttl_ms;
	return 0;
}
