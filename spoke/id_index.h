/*
 * id_index: finds a table slot by the string id stored in it, in constant
 * time, so that the supervisor's work per command does not grow with its
 * number of slots (up to SUPERVISOR_AGENTS_MAX). Open addressing with
 * linear probing over at least twice as many buckets as slots. The index
 * keeps no copy of an id: the caller's name() gives the id of a slot,
 * which must not change while the slot is in the index.
 */
#ifndef TSR_ID_INDEX_H
#define TSR_ID_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef const char *(*id_index_name_fn)(const void *ctx, uint32_t slot);

struct id_index {
	uint32_t *bucket; /* owned: slot + 1; 0 is empty */
	uint32_t mask;	  /* buckets - 1, a power of two */
	id_index_name_fn name;
	const void *ctx;
};

/* An empty index for slots 0..max-1 (max >= 1); -1 when out of memory. */
int id_index_init(struct id_index *ix, size_t max, id_index_name_fn name, const void *ctx);
void id_index_free(struct id_index *ix);
/* The slot whose id is id, or -1. */
int64_t id_index_find(const struct id_index *ix, const char *id);
/* Adds slot under its id, which the index must not hold yet. */
void id_index_add(struct id_index *ix, uint32_t slot);
/* Removes the slot whose id is id, if there is one. */
void id_index_remove(struct id_index *ix, const char *id);

#endif
