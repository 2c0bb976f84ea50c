/*
 * test_cursor: stream positions ("<ms>-<seq>", canonical decimal only)
 * and the watch cursor that carries one per spoke: round trips, every
 * malformed form refused as INVALID_ARGUMENT, and the size bounds.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "check_main.h"
#include "cursor.h"
#include "hub_fixture.h"

/* cursor_decode of base64url(text): its result; a refusal must be INVALID_ARGUMENT. */
static int decode_text(const char *text, size_t *n)
{
	struct cursor_entry e[4];
	struct tsr_err err;
	char *tok = hfx_b64url(text);
	int rc = cursor_decode(tok, e, 4, n, &err);

	if (rc != 0)
		ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	free(tok);
	return rc;
}

START_TEST(test_stream_pos)
{
	struct stream_pos a, b;
	char text[STREAM_POS_TEXT_MAX + 1];
	struct tsr_err err;

	ck_assert_int_eq(stream_pos_parse("1700000000000-0", &a, &err), 0);
	ck_assert_uint_eq(a.ms, 1700000000000ULL);
	ck_assert_uint_eq(a.seq, 0);
	ck_assert_int_eq(stream_pos_parse("18446744073709551615-18446744073709551615", &b, &err),
			 0);
	stream_pos_format(&b, text, sizeof(text));
	ck_assert_str_eq(text, "18446744073709551615-18446744073709551615");
	ck_assert_int_lt(stream_pos_cmp(&a, &b), 0);
	ck_assert_int_eq(stream_pos_parse("1700000000000-1", &b, &err), 0);
	ck_assert_int_lt(stream_pos_cmp(&a, &b), 0);
	ck_assert_int_eq(stream_pos_cmp(&b, &b), 0);
	ck_assert_int_eq(stream_pos_parse("0-0", &a, &err), 0);

	ck_assert_int_ne(stream_pos_parse("", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("12", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("-1", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("1-", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("01-1", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("1-01", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("+1-1", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("1-1-1", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("1 -1", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("18446744073709551616-0", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("99999999999999999999-0", &a, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_cursor_round_trip)
{
	struct cursor_entry in[3], out[CURSOR_ENTRIES_MAX];
	struct tsr_err err;
	char *tok = NULL;
	size_t n = 99;

	memset(in, 0, sizeof(in));
	strcpy(in[0].spoke, "alpha");
	in[0].pos = (struct stream_pos){ 1700000000000ULL, 3 };
	strcpy(in[1].spoke, "beta_2-x");
	in[1].pos = (struct stream_pos){ 0, 0 };
	strcpy(in[2].spoke, "g");
	in[2].pos = (struct stream_pos){ UINT64_MAX, UINT64_MAX };
	ck_assert_int_eq(cursor_encode(in, 3, &tok, &err), 0);
	/* Opaque but URL- and shell-safe: no padding, no '+' or '/'. */
	ck_assert_ptr_null(strpbrk(tok, "+/=; "));
	ck_assert_int_eq(cursor_decode(tok, out, CURSOR_ENTRIES_MAX, &n, &err), 0);
	ck_assert_uint_eq(n, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_str_eq(out[i].spoke, in[i].spoke);
		ck_assert_int_eq(stream_pos_cmp(&out[i].pos, &in[i].pos), 0);
	}
	free(tok);

	ck_assert_int_eq(cursor_encode(in, 0, &tok, &err), 0);
	ck_assert_str_eq(tok, "");
	ck_assert_int_eq(cursor_decode(tok, out, CURSOR_ENTRIES_MAX, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	free(tok);
}
END_TEST

START_TEST(test_cursor_rejects)
{
	struct cursor_entry e[4];
	struct tsr_err err;
	size_t n;
	char nul[] = { 'a', '=', '1', '-', '1', '\0', 'x' };
	char *tok;

	ck_assert_int_eq(decode_text("a=1-1;b=2-2", &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_ne(decode_text("a=1-1;", &n), 0);
	ck_assert_int_ne(decode_text(";a=1-1", &n), 0);
	ck_assert_int_ne(decode_text("a=1-1;;b=2-2", &n), 0);
	ck_assert_int_ne(decode_text("a", &n), 0);
	ck_assert_int_ne(decode_text("a=", &n), 0);
	ck_assert_int_ne(decode_text("=1-1", &n), 0);
	ck_assert_int_ne(decode_text("a=1", &n), 0);
	ck_assert_int_ne(decode_text("a=1-1=2", &n), 0);
	ck_assert_int_ne(decode_text("a b=1-1", &n), 0);
	ck_assert_int_ne(decode_text("a.b=1-1", &n), 0);
	ck_assert_int_ne(decode_text("a=1-1;a=2-2", &n), 0);
	ck_assert_int_ne(decode_text("a=1-1;b=1-1;c=1-1;d=1-1;e=1-1", &n), 0);
	/* A spoke id one character too long. */
	ck_assert_int_ne(decode_text("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
				     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1-1",
				     &n),
			 0);

	/* Not base64url at all, padded, or with non-canonical trailing bits. */
	ck_assert_int_ne(cursor_decode("!!!", e, 4, &n, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_ne(cursor_decode("YT0xLTE=", e, 4, &n, &err), 0);
	ck_assert_int_ne(cursor_decode("YT0xLTF", e, 4, &n, &err), 0);
	ck_assert_int_ne(cursor_decode("YT0xLTE/", e, 4, &n, &err), 0);
	ck_assert_int_eq(cursor_decode("YT0xLTE", e, 4, &n, &err), 0); /* "a=1-1" */

	ck_assert_int_eq(b64url_encode((const uint8_t *)nul, sizeof(nul), &tok, &err), 0);
	ck_assert_int_ne(cursor_decode(tok, e, 4, &n, &err), 0);
	free(tok);
}
END_TEST

START_TEST(test_cursor_too_long)
{
	struct cursor_entry e[4];
	struct tsr_err err;
	size_t n, len = CURSOR_TEXT_MAX * 2;
	char *tok = malloc(len + 1);

	memset(tok, 'A', len);
	tok[len] = '\0';
	ck_assert_int_ne(cursor_decode(tok, e, 4, &n, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	free(tok);
}
END_TEST

/* The largest cursor there is round-trips; one spoke more is refused both ways. */
START_TEST(test_cursor_bounds)
{
	static struct cursor_entry in[CURSOR_ENTRIES_MAX + 1], out[CURSOR_ENTRIES_MAX];
	struct tsr_err err;
	char *tok = NULL;
	size_t n = 0;

	for (size_t i = 0; i <= CURSOR_ENTRIES_MAX; i++) {
		snprintf(in[i].spoke, sizeof(in[i].spoke), "%03zu%0*d", i, TSR_NAME_MAX - 3, 0);
		in[i].pos = (struct stream_pos){ UINT64_MAX, UINT64_MAX - i };
	}
	ck_assert_uint_eq(strlen(in[0].spoke), TSR_NAME_MAX);
	ck_assert_int_eq(cursor_encode(in, CURSOR_ENTRIES_MAX, &tok, &err), 0);
	ck_assert_int_eq(cursor_decode(tok, out, CURSOR_ENTRIES_MAX, &n, &err), 0);
	ck_assert_uint_eq(n, CURSOR_ENTRIES_MAX);
	for (size_t i = 0; i < CURSOR_ENTRIES_MAX; i++) {
		ck_assert_str_eq(out[i].spoke, in[i].spoke);
		ck_assert_int_eq(stream_pos_cmp(&out[i].pos, &in[i].pos), 0);
	}
	/* Fewer slots than spokes in the cursor. */
	ck_assert_int_ne(cursor_decode(tok, out, 3, &n, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	free(tok);
	ck_assert_int_ne(cursor_encode(in, CURSOR_ENTRIES_MAX + 1, &tok, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "cursor",
		    CHECK_TESTS(test_stream_pos, test_cursor_round_trip, test_cursor_rejects,
				test_cursor_too_long, test_cursor_bounds));
	return 0;
}
