/* id_index: a slot by its id, by linear probing; removal shifts back, leaving no tombstone. */
#include "id_index.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a: agent ids end in random hex, so even this spreads them well. */
static uint32_t id_hash(const char *id)
{
	uint32_t h = 2166136261u;

	for (; *id != '\0'; id++) {
		h ^= (unsigned char)*id;
		h *= 16777619u;
	}
	return h;
}

int id_index_init(struct id_index *ix, size_t max, id_index_name_fn name, const void *ctx)
{
	size_t n = 2;

	assert(max >= 1 && max <= UINT32_MAX / 4);
	while (n < 2 * max)
		n *= 2;
	ix->bucket = calloc(n, sizeof(*ix->bucket));
	if (ix->bucket == NULL)
		return -1;
	ix->mask = (uint32_t)(n - 1);
	ix->name = name;
	ix->ctx = ctx;
	return 0;
}

void id_index_free(struct id_index *ix)
{
	free(ix->bucket);
	ix->bucket = NULL;
}

/* The bucket holding id, or the empty one where it would go. */
static uint32_t id_probe(const struct id_index *ix, const char *id)
{
	uint32_t i = id_hash(id) & ix->mask;

	/* Never full: at most half the buckets hold a slot. */
	while (ix->bucket[i] != 0 && strcmp(ix->name(ix->ctx, ix->bucket[i] - 1), id) != 0)
		i = (i + 1) & ix->mask;
	return i;
}

int64_t id_index_find(const struct id_index *ix, const char *id)
{
	uint32_t i = id_probe(ix, id);

	return ix->bucket[i] != 0 ? (int64_t)ix->bucket[i] - 1 : -1;
}

void id_index_add(struct id_index *ix, uint32_t slot)
{
	uint32_t i = id_probe(ix, ix->name(ix->ctx, slot));

	assert(ix->bucket[i] == 0 && slot <= ix->mask / 2);
	ix->bucket[i] = slot + 1;
}

/* Whether home lies cyclically in (hole, at]: the entry at at may not move to hole. */
static bool id_stays(uint32_t hole, uint32_t at, uint32_t home)
{
	return hole <= at ? hole < home && home <= at : hole < home || home <= at;
}

void id_index_remove(struct id_index *ix, const char *id)
{
	uint32_t hole = id_probe(ix, id), at, home;

	if (ix->bucket[hole] == 0)
		return;
	/* Pulls back each later entry of the run that its own probe would miss across the hole. */
	for (at = (hole + 1) & ix->mask; ix->bucket[at] != 0; at = (at + 1) & ix->mask) {
		home = id_hash(ix->name(ix->ctx, ix->bucket[at] - 1)) & ix->mask;
		if (id_stays(hole, at, home))
			continue;
		ix->bucket[hole] = ix->bucket[at];
		hole = at;
	}
	ix->bucket[hole] = 0;
}
