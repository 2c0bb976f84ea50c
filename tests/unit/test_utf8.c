/*
 * test_utf8: well-formed UTF-8 as proto3 strings need it. The check against
 * RFC 3629's edge cases and, on random bytes, against a decoder written
 * here another way; the repair's replacements (Unicode's own example of
 * maximal subparts) and its byte bound from either end, never cutting a
 * character; the escaping of control and ill-formed bytes for logs.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "utf8.h"

#define R UTF8_REPLACEMENT
#define LIT(s) s, sizeof(s) - 1 /* a literal and its length, NUL bytes included */

/* Well-formedness by decoding code points: shortest form, no surrogate, <= U+10FFFF. */
static bool ref_valid(const unsigned char *s, size_t len)
{
	size_t i = 0, n;
	uint32_t cp, min;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			n = 2;
			cp = s[i] & 0x1f;
			min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			n = 3;
			cp = s[i] & 0x0f;
			min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			n = 4;
			cp = s[i] & 0x07;
			min = 0x10000;
		} else {
			return false;
		}
		if (len - i < n)
			return false;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n;
	}
	return true;
}

static void repaired(const char *in, size_t len, size_t max, enum utf8_keep keep, const char *want)
{
	struct tsr_err err;
	char *out;
	size_t outlen;

	ck_assert_int_eq(utf8_repair(in, len, max, keep, &out, &outlen, &err), 0);
	ck_assert_uint_eq(outlen, strlen(want));
	ck_assert_mem_eq(out, want, outlen);
	ck_assert_int_eq(out[outlen], '\0');
	free(out);
}

static void escaped(const char *in, size_t len, size_t size, const char *want)
{
	char buf[256];

	ck_assert_uint_le(size, sizeof(buf));
	utf8_escape(in, len, buf, size);
	ck_assert_str_eq(buf, want);
}

START_TEST(test_valid)
{
	static const char *const good[] = {
		"",
		"plain ASCII, tabs\tand newlines\n",
		"\xc2\x80 \xc3\xa9 \xdf\xbf",			      /* U+0080, é, U+07FF */
		"\xe0\xa0\x80 \xe2\x82\xac \xed\x9f\xbf",	      /* U+0800, €, U+D7FF */
		"\xee\x80\x80 \xef\xbf\xbd \xef\xbf\xbf",	      /* U+E000, U+FFFD, U+FFFF */
		"\xf0\x90\x80\x80 \xf0\x9d\x84\x9e \xf4\x8f\xbf\xbf", /* U+10000, 𝄞, U+10FFFF */
	};
	static const struct {
		const char *s;
		size_t bad;
	} bad[] = {
		{ "\xff", 0 },
		{ "ok\xfe", 2 },
		{ "\x80", 0 },
		{ "a\xc0\x80", 1 },	   /* overlong NUL */
		{ "\xc1\xbf", 0 },	   /* overlong */
		{ "\xe0\x9f\xbf", 0 },	   /* overlong U+07FF */
		{ "ab\xed\xa0\x80", 2 },   /* surrogate U+D800 */
		{ "\xed\xbf\xbf", 0 },	   /* surrogate U+DFFF */
		{ "\xf0\x8f\xbf\xbf", 0 }, /* overlong U+FFFF */
		{ "\xf4\x90\x80\x80", 0 }, /* U+110000 */
		{ "\xf5\x80\x80\x80", 0 }, /* no such lead */
		{ "\xe2\x82", 0 },	   /* cut short */
		{ "x\xe2\x82y", 1 },	   /* cut short inside */
		{ "\xf0\x9d\x84", 0 },	   /* cut short */
		{ "\xc3\xa9\xc3", 2 },	   /* cut short after a good one */
	};
	size_t at;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(utf8_valid(good[i], strlen(good[i]), NULL), "good[%zu]", i);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		at = 99;
		ck_assert_msg(!utf8_valid(bad[i].s, strlen(bad[i].s), &at), "bad[%zu]", i);
		ck_assert_uint_eq(at, bad[i].bad);
	}
	/* A NUL is a character; the length given, not the NUL, ends the text. */
	ck_assert(utf8_valid("a\0b", 3, NULL));
	ck_assert(utf8_valid("\xff", 0, NULL));
}
END_TEST

/*
 * Whether the check agrees with ref_valid on s, and a repair of s is
 * well-formed, and s itself if s was.
 */
static bool agrees(const unsigned char *s, size_t len)
{
	struct tsr_err err;
	size_t outlen;
	char *out;
	bool ok;

	if (utf8_valid((const char *)s, len, NULL) != ref_valid(s, len) ||
	    utf8_repair((const char *)s, len, 3 * len, UTF8_KEEP_HEAD, &out, &outlen, &err) != 0)
		return false;
	ok = ref_valid((unsigned char *)out, outlen) &&
	     (!ref_valid(s, len) || (outlen == len && memcmp(out, s, len) == 0));
	free(out);
	return ok;
}

/* Random texts, mostly of bytes that matter at edges, against ref_valid. */
START_TEST(test_valid_random)
{
	static const unsigned char pick[] = { 'a',  0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0,
					      0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xed,
					      0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff };
	unsigned char s[8];
	uint32_t x = 12345; /* a fixed seed: the same texts every run */
	size_t len;
	int round;

	/* One assertion at the end: Check's cost per assertion would dominate. */
	for (round = 0; round < 200000; round++) {
		x = x * 1103515245u + 12345u;
		len = (x >> 16) % (sizeof(s) + 1);
		for (size_t i = 0; i < len; i++) {
			x = x * 1103515245u + 12345u;
			s[i] = pick[(x >> 16) % sizeof(pick)];
		}
		if (!agrees(s, len))
			break;
	}
	ck_assert_msg(round == 200000, "round %d disagrees", round);
}
END_TEST

START_TEST(test_repair)
{
	/* Unicode 15, section 3.9, Table 3-8: one U+FFFD per maximal subpart. */
	repaired(LIT("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64"), 100, UTF8_KEEP_HEAD,
		 "a" R R R "b" R "c" R R "d");
	repaired(LIT("a\xff"
		     "b"),
		 100, UTF8_KEEP_HEAD, "a" R "b");
	repaired(LIT("\xc0\x80"), 100, UTF8_KEEP_HEAD, R R);
	repaired(LIT("\xed\xa0\x80"), 100, UTF8_KEEP_HEAD, R R R);
	repaired(LIT("\xe0\x80\x80"), 100, UTF8_KEEP_HEAD, R R R);
	repaired(LIT("\xf4\x90\x80\x80"), 100, UTF8_KEEP_HEAD, R R R R);
	repaired(LIT("\xe2\x82"
		     "A"),
		 100, UTF8_KEEP_HEAD, R "A");
	repaired(LIT("end \xf0\x9d\x84"), 100, UTF8_KEEP_HEAD, "end " R);
	/* Well-formed text, U+FFFD itself included, stays as it is, even at the bound. */
	repaired(LIT("\xc3\xa9t\xc3\xa9 " R " \xf0\x9d\x84\x9e"), 14, UTF8_KEEP_HEAD,
		 "\xc3\xa9t\xc3\xa9 " R " \xf0\x9d\x84\x9e");
	repaired(LIT(""), 0, UTF8_KEEP_TAIL, "");
}
END_TEST

START_TEST(test_repair_bound)
{
	char in[100], *out;
	size_t outlen;
	struct tsr_err err;

	/* Grown past the bound: whole replacements go, from the end not kept. */
	repaired(LIT("ab\xff\xff"), 5, UTF8_KEEP_HEAD, "ab" R);
	repaired(LIT("ab\xff\xff"), 4, UTF8_KEEP_HEAD, "ab");
	repaired(LIT("\xff\xff"
		     "ab"),
		 5, UTF8_KEEP_TAIL, R "ab");
	repaired(LIT("\xff\xff"
		     "ab"),
		 4, UTF8_KEEP_TAIL, "ab");
	/* Never half a character, well-formed or not. */
	repaired(LIT("a\xe2\x82\xac"), 3, UTF8_KEEP_HEAD, "a");
	repaired(LIT("\xe2\x82\xac\xe2\x82\xac"), 5, UTF8_KEEP_TAIL, "\xe2\x82\xac");
	repaired(LIT("\xe2\x82\xac"
		     "b"),
		 3, UTF8_KEEP_TAIL, "b");
	/* A tail of 100 ill-formed bytes would take 300: 33 replacements are kept. */
	memset(in, 0xff, sizeof(in));
	ck_assert_int_eq(
		utf8_repair(in, sizeof(in), sizeof(in), UTF8_KEEP_TAIL, &out, &outlen, &err), 0);
	ck_assert_uint_eq(outlen, 99);
	ck_assert(utf8_valid(out, outlen, NULL));
	free(out);
	/* A tail keeps the newest output, a message its start. */
	in[98] = 'y';
	in[99] = 'z';
	ck_assert_int_eq(utf8_repair(in, sizeof(in), 8, UTF8_KEEP_TAIL, &out, &outlen, &err), 0);
	ck_assert_str_eq(out, R R "yz");
	free(out);
	ck_assert_int_eq(utf8_repair(in, sizeof(in), 8, UTF8_KEEP_HEAD, &out, &outlen, &err), 0);
	ck_assert_str_eq(out, R R);
	free(out);
}
END_TEST

START_TEST(test_escape)
{
	escaped(LIT("spoke-2 is unreachable: connection refused"), 256,
		"spoke-2 is unreachable: connection refused");
	escaped(LIT("red\x1b[31m!\x07"), 256, "red\\x1b[31m!\\x07");
	escaped(LIT("a\r\nb\tc\x7f"), 256, "a\\x0d\\x0ab\\x09c\\x7f");
	escaped(LIT("csi \xc2\x9b"), 256, "csi \\xc2\\x9b"); /* U+009B, a C1 control */
	escaped(LIT("nbsp\xc2\xa0 \xc3\xa9 \xe2\x82\xac"), 256,
		"nbsp\xc2\xa0 \xc3\xa9 \xe2\x82\xac");
	escaped(LIT("bad \xff \xe2\x82"
		    "A \xed\xa0\x80"),
		256, "bad \\xff \\xe2\\x82A \\xed\\xa0\\x80");
	escaped(LIT("nul\0here"), 256, "nul\\x00here");
	/* Already escaped text comes out unchanged. */
	escaped(LIT("red\\x1b[31m"), 256, "red\\x1b[31m");
	/* Cut to fit, at a character or an escape, never inside one. */
	escaped(LIT("abc\x1b"), 7, "abc");
	escaped(LIT("abc\x1b"), 8, "abc\\x1b");
	escaped(LIT("ab\xc3\xa9"), 4, "ab");
	escaped(LIT("ab\xc3\xa9"), 5, "ab\xc3\xa9");
	escaped(LIT("\xe2\x82"), 8, "");
	escaped(LIT("anything"), 1, "");
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "utf8",
		    CHECK_TESTS(test_valid, test_valid_random, test_repair, test_repair_bound,
				test_escape));
	return 0;
}
