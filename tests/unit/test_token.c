/*
 * test_token: the hub API's bearer tokens: hashing and its stored text
 * form, the well-formedness rules, matching against a set, and new ones.
 */
#include <check.h>
#include <string.h>

#include "check_main.h"
#include "hub_fixture.h"
#include "token.h"

START_TEST(test_token)
{
	struct token_hash h, set[3], parsed;
	char text[TOKEN_HASH_TEXT_MAX], fresh[TOKEN_NEW_TEXT_MAX];
	struct tsr_err err;

	ck_assert_int_eq(token_hash("0123456789abcdef", 16, &h, &err), 0);
	token_hash_format(&h, text);
	ck_assert_str_eq(text, "blake2b256:" HFX_TOKEN_HEX);
	ck_assert_int_eq(token_hash_parse(text, &parsed, &err), 0);
	ck_assert_mem_eq(parsed.h, h.h, sizeof(h.h));
	ck_assert_int_ne(token_hash("short", 5, &h, &err), 0);
	ck_assert_int_ne(token_hash("0123456789 abcdef", 17, &h, &err), 0);
	ck_assert_int_ne(token_hash_parse("blake2b256:xyz", &parsed, &err), 0);
	ck_assert_int_ne(token_hash_parse(HFX_TOKEN_HEX, &parsed, &err), 0);

	/* A match anywhere in the set counts; no match is no match. */
	ck_assert_int_eq(token_hash("first-token-0001", 16, &set[0], &err), 0);
	ck_assert_int_eq(token_hash("0123456789abcdef", 16, &set[1], &err), 0);
	ck_assert_int_eq(token_hash("third-token-0003", 16, &set[2], &err), 0);
	ck_assert_int_eq(token_hash("0123456789abcdef", 16, &h, &err), 0);
	ck_assert(token_match(set, 3, &h));
	ck_assert(!token_match(set, 1, &h));
	ck_assert(!token_match(set, 0, &h));

	token_new(fresh);
	ck_assert_uint_eq(strlen(fresh), 2 * TOKEN_NEW_BYTES);
	ck_assert_int_eq(token_hash(fresh, strlen(fresh), &h, &err), 0);
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "token", CHECK_TESTS(test_token));
	return 0;
}
