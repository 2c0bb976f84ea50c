/*
 * test_id_index: slots found by id. Against a plain table searched by
 * strcmp, through random adds and removes that fill the index to its
 * bound and empty it again: every id present is found at its slot, every
 * other one is not, and removing an absent id changes nothing. Ids that
 * share a home bucket (runs that wrap around the end of the buckets)
 * stay found when one before them in the run goes.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "id_index.h"

#define SLOTS 64
#define ID_MAX 32

struct table {
	char id[SLOTS][ID_MAX];
	bool used[SLOTS];
};

static const char *table_id(const void *ctx, uint32_t slot)
{
	const struct table *t = ctx;

	return t->id[slot];
}

/* Every used slot found at itself; a few absent ids not found. */
static void check_all(const struct id_index *ix, const struct table *t, unsigned round)
{
	char absent[ID_MAX];

	for (uint32_t s = 0; s < SLOTS; s++) {
		if (t->used[s])
			ck_assert_int_eq(id_index_find(ix, t->id[s]), s);
	}
	for (unsigned k = 0; k < 4; k++) {
		snprintf(absent, sizeof(absent), "absent.%u.%u", round, k);
		ck_assert_int_eq(id_index_find(ix, absent), -1);
	}
}

START_TEST(test_random)
{
	struct table t = { 0 };
	struct id_index ix;
	unsigned serial = 0;

	srand(7);
	ck_assert_int_eq(id_index_init(&ix, SLOTS, table_id, &t), 0);
	for (unsigned round = 0; round < 20000; round++) {
		uint32_t s = (uint32_t)rand() % SLOTS;

		if (t.used[s]) {
			id_index_remove(&ix, t.id[s]);
			t.used[s] = false;
			ck_assert_int_eq(id_index_find(&ix, t.id[s]), -1);
			/* Gone already: nothing to remove, nothing moves. */
			id_index_remove(&ix, t.id[s]);
		} else {
			snprintf(t.id[s], sizeof(t.id[s]), "spoke-1.%08x%u", (unsigned)rand(),
				 serial++);
			id_index_add(&ix, s);
			t.used[s] = true;
		}
		if (round % 97 == 0)
			check_all(&ix, &t, round);
	}
	check_all(&ix, &t, 0);
	id_index_free(&ix);
}
END_TEST

START_TEST(test_full_and_empty)
{
	struct table t = { 0 };
	struct id_index ix;

	ck_assert_int_eq(id_index_init(&ix, SLOTS, table_id, &t), 0);
	for (uint32_t s = 0; s < SLOTS; s++) {
		snprintf(t.id[s], sizeof(t.id[s]), "a%u", s);
		id_index_add(&ix, s);
		t.used[s] = true;
	}
	check_all(&ix, &t, 1);
	/* Front to back, so each removal leaves a run behind it to pull back. */
	for (uint32_t s = 0; s < SLOTS; s++) {
		id_index_remove(&ix, t.id[s]);
		t.used[s] = false;
		check_all(&ix, &t, 2);
	}
	for (uint32_t b = 0; b <= ix.mask; b++)
		ck_assert_uint_eq(ix.bucket[b], 0);
	id_index_free(&ix);
}
END_TEST

/* One slot: the smallest index still has room for it and finds it. */
START_TEST(test_one)
{
	struct table t = { 0 };
	struct id_index ix;

	ck_assert_int_eq(id_index_init(&ix, 1, table_id, &t), 0);
	snprintf(t.id[0], sizeof(t.id[0]), "only");
	ck_assert_int_eq(id_index_find(&ix, "only"), -1);
	id_index_add(&ix, 0);
	ck_assert_int_eq(id_index_find(&ix, "only"), 0);
	id_index_remove(&ix, "only");
	ck_assert_int_eq(id_index_find(&ix, "only"), -1);
	id_index_free(&ix);
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "id_index", CHECK_TESTS(test_random, test_full_and_empty, test_one));
	return 0;
}
