/*
 * test_b64url: the unpadded URL-safe base64 around the hub's opaque
 * tokens: round trips, the alphabet, and the refusals of decoding (only
 * the canonical form, no embedded NUL, within the caller's bound), each
 * INVALID_ARGUMENT naming what was decoded.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "check_main.h"

#define OUT_MAX 300

/* b64url_decode of text into at most max bytes must fail, naming "thing". */
static void refused(const char *text, size_t max)
{
	char out[OUT_MAX + 1];
	struct tsr_err err;
	size_t len;

	ck_assert_msg(b64url_decode(text, "thing", out, max, &len, &err) != 0, "accepted \"%s\"",
		      text);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_msg(strncmp(err.msg, "thing ", 6) == 0, "%s", err.msg);
}

START_TEST(test_round_trip)
{
	uint8_t bin[255];
	char out[OUT_MAX + 1], *text = NULL;
	struct tsr_err err;
	size_t len = 0;

	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (uint8_t)(i + 1);
	ck_assert_int_eq(b64url_encode(bin, sizeof(bin), &text, &err), 0);
	ck_assert_uint_eq(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				       "0123456789-_"),
			  strlen(text));
	ck_assert_int_eq(b64url_decode(text, "thing", out, OUT_MAX, &len, &err), 0);
	ck_assert_uint_eq(len, sizeof(bin));
	ck_assert_mem_eq(out, bin, sizeof(bin));
	ck_assert_int_eq(out[len], '\0');
	free(text);

	ck_assert_int_eq(b64url_encode((const uint8_t *)"", 0, &text, &err), 0);
	ck_assert_str_eq(text, "");
	ck_assert_int_eq(b64url_decode(text, "thing", out, OUT_MAX, &len, &err), 0);
	ck_assert_uint_eq(len, 0);
	free(text);

	/* The URL-safe letters, and no padding. */
	ck_assert_int_eq(b64url_encode((const uint8_t *)"\xfb\xff", 2, &text, &err), 0);
	ck_assert_str_eq(text, "-_8");
	free(text);
	ck_assert_int_eq(b64url_decode("YT0xLTE", "thing", out, OUT_MAX, &len, &err), 0);
	ck_assert_str_eq(out, "a=1-1");
}
END_TEST

START_TEST(test_refusals)
{
	char out[OUT_MAX + 1];
	struct tsr_err err;
	size_t len;

	refused("YT0xLTE=", OUT_MAX); /* padded */
	refused("+/8", OUT_MAX);      /* the standard alphabet's letters */
	refused("YT0xLTF", OUT_MAX);  /* non-canonical trailing bits */
	refused("Y", OUT_MAX);	      /* no byte ends in one letter */
	refused("YT\xc3\xa9"
		"0",
		OUT_MAX); /* bytes above 0x7f */
	refused("YT 0", OUT_MAX);
	refused("AA", OUT_MAX);	  /* a NUL byte */
	refused("YQBi", OUT_MAX); /* "a", NUL, "b" */
	/* Longer than max bytes: early for a long text, by decoding otherwise. */
	refused("YWJjZGVmZ2hp", 3);
	refused("YWJjZA", 3);
	ck_assert_int_eq(b64url_decode("YWJj", "thing", out, 3, &len, &err), 0);
	ck_assert_uint_eq(len, 3);
	ck_assert_str_eq(out, "abc");
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "b64url", CHECK_TESTS(test_round_trip, test_refusals));
	return 0;
}
