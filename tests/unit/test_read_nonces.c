/*
 * test_read_nonces: the in-memory set of read commands' nonces. A nonce is
 * refused until it expires and taken again after; many nonces grow the
 * table and every one is still found; expired ones make room; a table
 * full of live nonces says so (RESOURCE_EXHAUSTED) instead of growing
 * past its bound; out-of-bounds arguments are refused.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "check_main.h"
#include "read_nonces.h"

static void nonce_of(uint32_t i, uint8_t n[ENVELOPE_NONCE_BYTES])
{
	memset(n, 0xa5, ENVELOPE_NONCE_BYTES);
	memcpy(n, &i, sizeof(i));
}

static int claim(struct read_nonces *rn, uint32_t i, int64_t now, int64_t ttl, struct tsr_err *err)
{
	uint8_t n[ENVELOPE_NONCE_BYTES];

	nonce_of(i, n);
	tsr_err_clear(err);
	return read_nonces_claim(rn, n, sizeof(n), now, ttl, err);
}

START_TEST(test_replay_and_expiry)
{
	struct read_nonces *rn;
	struct tsr_err err;

	ck_assert_int_eq(read_nonces_new(&rn, &err), 0);
	ck_assert_int_eq(claim(rn, 1, 1000, 500, &err), 0);
	ck_assert_int_eq(claim(rn, 1, 1499, 500, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_int_eq(claim(rn, 2, 1499, 500, &err), 0);
	/* Expired: taken again, and refused again after. */
	ck_assert_int_eq(claim(rn, 1, 1500, 500, &err), 0);
	ck_assert_int_eq(claim(rn, 1, 1501, 500, &err), -1);
	read_nonces_free(rn);
}
END_TEST

START_TEST(test_growth)
{
	struct read_nonces *rn;
	struct tsr_err err;
	const uint32_t n = 20000;

	ck_assert_int_eq(read_nonces_new(&rn, &err), 0);
	for (uint32_t i = 0; i < n; i++)
		ck_assert_msg(claim(rn, i, 0, 1000, &err) == 0, "%u: %s", i, err.msg);
	for (uint32_t i = 0; i < n; i++)
		ck_assert_int_eq(claim(rn, i, 1, 1000, &err), -1);
	/* All expired: the next rebuild drops them, and room is made without growing. */
	for (uint32_t i = n; i < 2 * n; i++)
		ck_assert_int_eq(claim(rn, i, 5000, 1000, &err), 0);
	read_nonces_free(rn);
}
END_TEST

START_TEST(test_full)
{
	struct read_nonces *rn;
	struct tsr_err err;
	uint32_t i;

	ck_assert_int_eq(read_nonces_new(&rn, &err), 0);
	for (i = 0; i < READ_NONCES_SLOTS_MAX; i++)
		if (claim(rn, i, 0, 60000, &err) != 0)
			break;
	ck_assert_int_eq(err.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
	ck_assert_uint_eq(i, READ_NONCES_SLOTS_MAX / 2); /* half of the slots at most */
	/* Every one taken is still refused; once they expire there is room again. */
	ck_assert_int_eq(claim(rn, 0, 1, 60000, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
	ck_assert_int_eq(claim(rn, i + 1, 60000, 60000, &err), 0);
	ck_assert_int_eq(claim(rn, 0, 60001, 60000, &err), 0);
	read_nonces_free(rn);
}
END_TEST

START_TEST(test_bounds)
{
	uint8_t n[ENVELOPE_NONCE_BYTES + 1] = { 0 };
	struct read_nonces *rn;
	struct tsr_err err;

	ck_assert_int_eq(read_nonces_new(&rn, &err), 0);
	ck_assert_int_eq(read_nonces_claim(rn, n, 0, 0, 1, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(read_nonces_claim(rn, n, sizeof(n), 0, 1, &err), -1);
	ck_assert_int_eq(read_nonces_claim(rn, n, ENVELOPE_NONCE_BYTES, 0, 0, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	read_nonces_free(rn);
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "read_nonces",
		    CHECK_TESTS(test_replay_and_expiry, test_growth, test_full, test_bounds));
	return 0;
}
