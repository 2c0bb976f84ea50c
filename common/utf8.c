/* utf8: checking, repairing and escaping UTF-8, one character or ill-formed stretch at a time. */
#include "utf8.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define UTF8_REPLACEMENT_LEN (sizeof(UTF8_REPLACEMENT) - 1)
#define UTF8_ESCAPE_LEN 4 /* "\xNN" */

/*
 * The length of what starts at s (len >= 1 bytes): a well-formed character
 * (*ok true), or an ill-formed stretch, the maximal subpart (*ok false).
 * The byte ranges are Unicode's Table 3-7, which RFC 3629 also gives.
 */
static size_t utf8_unit(const unsigned char *s, size_t len, bool *ok)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need, n;

	if (s[0] < 0x80) {
		*ok = true;
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 4;
	else
		need = 0; /* a continuation byte, or a lead byte no character has */
	/* The second byte's range rules out overlong forms, surrogates and > U+10FFFF. */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	for (n = 1; n < need && n < len && s[n] >= lo && s[n] <= hi; n++) {
		lo = 0x80;
		hi = 0xbf;
	}
	*ok = n == need;
	return n;
}

bool utf8_valid(const char *s, size_t len, size_t *bad)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;
	bool ok;

	for (size_t i = 0; i < len; i += n) {
		n = utf8_unit(p + i, len - i, &ok);
		if (!ok) {
			if (bad != NULL)
				*bad = i;
			return false;
		}
	}
	return true;
}

size_t utf8_next(const char *s, size_t len, bool *ok)
{
	return utf8_unit((const unsigned char *)s, len, ok);
}

/* What the unit at p[0..n) becomes in a repair. */
static size_t utf8_repaired_len(size_t n, bool ok)
{
	return ok ? n : UTF8_REPLACEMENT_LEN;
}

/*
 * Where a repair of p[0..len) starts and how long it is: all of it, or
 * with UTF8_KEEP_TAIL the shortest suffix of whole units that fits max.
 */
static void utf8_repair_span(const unsigned char *p, size_t len, size_t max, enum utf8_keep keep,
			     size_t *start, size_t *total)
{
	size_t n;
	bool ok;

	*start = 0;
	*total = 0;
	for (size_t i = 0; i < len; i += n) {
		n = utf8_unit(p + i, len - i, &ok);
		*total += utf8_repaired_len(n, ok);
	}
	while (keep == UTF8_KEEP_TAIL && *total > max) {
		n = utf8_unit(p + *start, len - *start, &ok);
		*total -= utf8_repaired_len(n, ok);
		*start += n;
	}
}

int utf8_repair(const char *s, size_t len, size_t max, enum utf8_keep keep, char **out,
		size_t *outlen, struct tsr_err *err)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t start, total, n, w, o = 0;
	char *buf;
	bool ok;

	utf8_repair_span(p, len, max, keep, &start, &total);
	buf = malloc((total < max ? total : max) + 1);
	if (buf == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	for (size_t i = start; i < len; i += n) {
		n = utf8_unit(p + i, len - i, &ok);
		w = utf8_repaired_len(n, ok);
		if (o + w > max)
			break;
		memcpy(buf + o, ok ? s + i : UTF8_REPLACEMENT, w);
		o += w;
	}
	buf[o] = '\0';
	*out = buf;
	*outlen = o;
	return 0;
}

/* Whether the well-formed character p[0..n) controls a terminal rather than shows. */
static bool utf8_control(const unsigned char *p, size_t n)
{
	if (n == 1)
		return p[0] < 0x20 || p[0] == 0x7f;
	return n == 2 && p[0] == 0xc2 && p[1] < 0xa0; /* U+0080..U+009F */
}

void utf8_escape(const char *s, size_t len, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t n, o = 0;
	bool ok;

	assert(size >= 1);
	for (size_t i = 0; i < len; i += n) {
		n = utf8_unit(p + i, len - i, &ok);
		if (ok && !utf8_control(p + i, n)) {
			if (o + n >= size)
				break;
			memcpy(buf + o, s + i, n);
			o += n;
			continue;
		}
		if (o + n * UTF8_ESCAPE_LEN >= size)
			break;
		for (size_t k = i; k < i + n; k++) {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[p[k] >> 4];
			buf[o++] = hex[p[k] & 0xf];
		}
	}
	buf[o] = '\0';
}
