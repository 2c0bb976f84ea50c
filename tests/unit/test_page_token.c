/*
 * test_page_token: ListAgents page tokens: round trips, the bounds of
 * each part, and every token page_token_encode would not have made
 * refused as INVALID_ARGUMENT.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "hub_fixture.h"
#include "page_token.h"

START_TEST(test_page_token)
{
	struct page_token in, out;
	struct tsr_err err;
	char *tok = NULL, *bad;

	memset(&in, 0, sizeof(in));
	in.index = 17;
	strcpy(in.spoke, "spoke-b");
	strcpy(in.token, "c3Bva2UgdG9rZW4:42|x");
	ck_assert_int_eq(page_token_encode(&in, &tok, &err), 0);
	ck_assert_int_eq(page_token_decode(tok, &out, &err), 0);
	ck_assert_uint_eq(out.index, 17);
	ck_assert_str_eq(out.spoke, "spoke-b");
	ck_assert_str_eq(out.token, in.token);
	free(tok);

	in.index = 0;
	in.token[0] = '\0';
	ck_assert_int_eq(page_token_encode(&in, &tok, &err), 0);
	ck_assert_int_eq(page_token_decode(tok, &out, &err), 0);
	ck_assert_uint_eq(out.index, 0);
	ck_assert_str_eq(out.token, "");
	free(tok);

	static const char *const rejects[] = {
		"",	   "0",	    "0:a", ":a:",    "x:a:",   "01:a:",	     "256:a:",
		"1000:a:", "-1:a:", "0::", "0:a b:", "0:a.b:", "0:a:tok en", "0:a:tab\there",
	};
	for (size_t i = 0; i < sizeof(rejects) / sizeof(rejects[0]); i++) {
		bad = hfx_b64url(rejects[i]);
		ck_assert_msg(page_token_decode(bad, &out, &err) != 0, "accepted \"%s\"",
			      rejects[i]);
		ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
		free(bad);
	}
	ck_assert_int_ne(page_token_decode("not base64!", &out, &err), 0);
	ck_assert(page_token_spoke_token_ok(""));
	ck_assert(!page_token_spoke_token_ok("a\x7f"));
}
END_TEST

/* The last spoke index, the longest spoke id and spoke token fit; a longer token does not. */
START_TEST(test_page_token_bounds)
{
	char longer[4 + TSR_SPOKE_PAGE_TOKEN_MAX + 2], *tok = NULL;
	struct page_token in, out;
	struct tsr_err err;

	memset(&in, 0, sizeof(in));
	in.index = HUB_SPOKES_MAX - 1;
	memset(in.spoke, 'b', TSR_NAME_MAX);
	memset(in.token, '~', TSR_SPOKE_PAGE_TOKEN_MAX);
	ck_assert(page_token_spoke_token_ok(in.token));
	ck_assert_int_eq(page_token_encode(&in, &tok, &err), 0);
	ck_assert_int_eq(page_token_decode(tok, &out, &err), 0);
	ck_assert_uint_eq(out.index, HUB_SPOKES_MAX - 1);
	ck_assert_str_eq(out.spoke, in.spoke);
	ck_assert_str_eq(out.token, in.token);
	free(tok);

	/* "0:a:" and a spoke token one character too long. */
	snprintf(longer, sizeof(longer), "0:a:");
	memset(longer + 4, '~', TSR_SPOKE_PAGE_TOKEN_MAX + 1);
	longer[sizeof(longer) - 1] = '\0';
	ck_assert(!page_token_spoke_token_ok(longer + 4));
	tok = hfx_b64url(longer);
	ck_assert_int_ne(page_token_decode(tok, &out, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	free(tok);
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "page_token", CHECK_TESTS(test_page_token, test_page_token_bounds));
	return 0;
}
