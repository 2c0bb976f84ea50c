/*
 * test_cli_json: the CLI's JSON writer: escaping, bytes that are not
 * UTF-8 replaced, documents of every kind of value, lengths given rather
 * than NUL-terminated, and the failures json_flush reports.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "cli_json.h"

/* Runs build on a fresh writer and returns what it wrote (malloc'd). */
static char *json_of(void (*build)(struct json *j, const void *arg), const void *arg)
{
	struct tsr_err err;
	struct json j;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	json_init(&j);
	build(&j, arg);
	ck_assert_int_eq(json_flush(&j, f, &err), 0);
	json_free(&j);
	fclose(f);
	return buf;
}

static void build_string(struct json *j, const void *arg)
{
	json_string(j, arg);
}

static void build_doc(struct json *j, const void *arg)
{
	(void)arg;
	json_object_begin(j);
	json_key(j, "a");
	json_int(j, -5);
	json_key(j, "list");
	json_array_begin(j);
	json_bool(j, true);
	json_bool(j, false);
	json_object_begin(j);
	json_object_end(j);
	json_array_begin(j);
	json_array_end(j);
	json_array_end(j);
	json_key(j, "big");
	json_int(j, INT64_MAX);
	json_object_end(j);
}

static void expect_json(const char *in, const char *want)
{
	char *got = json_of(build_string, in);

	ck_assert_msg(strcmp(got, want) == 0, "escaped %s as %s, not %s", in, got, want);
	free(got);
}

START_TEST(test_json_escaping)
{
	char *doc;

	expect_json("plain", "\"plain\"");
	expect_json("", "\"\"");
	expect_json("q\"b\\s/", "\"q\\\"b\\\\s/\"");
	expect_json("a\nb\tc\rd", "\"a\\nb\\tc\\rd\"");
	expect_json("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
	expect_json("caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x98\x80",
		    "\"caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x98\x80\"");
	/* Invalid UTF-8: stray continuation, truncated, overlong, surrogate, too big. */
	expect_json("a\x80z", "\"a\\ufffdz\"");
	expect_json("a\xc3", "\"a\\ufffd\"");
	expect_json("\xc0\xaf", "\"\\ufffd\\ufffd\"");
	expect_json("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"");
	expect_json("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
	expect_json("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	expect_json("\xff", "\"\\ufffd\"");

	doc = json_of(build_doc, NULL);
	ck_assert_str_eq(doc, "{\"a\":-5,\"list\":[true,false,{},[]],\"big\":9223372036854775807}");
	free(doc);
}
END_TEST

START_TEST(test_json_limits)
{
	struct tsr_err err;
	struct json j;

	json_init(&j);
	for (int i = 0; i < JSON_DEPTH_MAX + 1; i++)
		json_array_begin(&j);
	ck_assert_int_ne(json_flush(&j, stdout, &err), 0);
	json_free(&j);

	json_init(&j);
	json_object_end(&j);
	ck_assert_int_ne(json_flush(&j, stdout, &err), 0);
	json_free(&j);
}
END_TEST

static void build_len(struct json *j, const void *arg)
{
	json_string_len(j, arg, 3);
}

static void build_min(struct json *j, const void *arg)
{
	(void)arg;
	json_int(j, INT64_MIN);
}

/* A length, not a NUL, ends the string; a flush empties the writer. */
START_TEST(test_json_len_and_flush)
{
	struct tsr_err err;
	struct json j;
	char *got, *buf = NULL;
	size_t len = 0;
	FILE *f;

	got = json_of(build_len, "a\0bcd");
	ck_assert_str_eq(got, "\"a\\u0000b\"");
	free(got);
	/* A sequence the length cuts short is not UTF-8. */
	got = json_of(build_len, "ab\xc3\xa9");
	ck_assert_str_eq(got, "\"ab\\ufffd\"");
	free(got);
	got = json_of(build_min, NULL);
	ck_assert_str_eq(got, "-9223372036854775808");
	free(got);

	f = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(f);
	json_init(&j);
	json_array_begin(&j);
	json_array_end(&j);
	ck_assert_int_eq(json_flush(&j, f, &err), 0);
	ck_assert_int_eq(json_flush(&j, f, &err), 0);
	json_free(&j);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_str_eq(buf, "[]");
	free(buf);
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "cli_json",
		    CHECK_TESTS(test_json_escaping, test_json_limits, test_json_len_and_flush));
	return 0;
}
