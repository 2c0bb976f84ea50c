/* cli_json: JSON building with escaping and UTF-8 repair. */
#include "cli_json.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void json_init(struct json *j)
{
	memset(j, 0, sizeof(*j));
	j->first[0] = true;
}

void json_free(struct json *j)
{
	free(j->buf);
	j->buf = NULL;
	j->len = j->cap = 0;
}

static void json_put(struct json *j, const char *s, size_t n)
{
	size_t cap;
	char *grown;

	if (j->failed)
		return;
	if (j->len + n > JSON_BUF_MAX) {
		j->failed = true;
		return;
	}
	if (j->len + n > j->cap) {
		cap = j->cap != 0 ? j->cap : 256;
		while (cap < j->len + n)
			cap *= 2;
		grown = realloc(j->buf, cap);
		if (grown == NULL) {
			j->failed = true;
			return;
		}
		j->buf = grown;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
}

/* The comma (or nothing) a new value needs at the current depth. */
static void json_sep(struct json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (!j->first[j->depth])
		json_put(j, ",", 1);
	j->first[j->depth] = false;
}

static void json_open(struct json *j, char c)
{
	json_sep(j);
	if (j->depth + 1 >= JSON_DEPTH_MAX) {
		j->failed = true;
		return;
	}
	json_put(j, &c, 1);
	j->depth++;
	j->first[j->depth] = true;
}

static void json_close(struct json *j, char c)
{
	if (j->depth == 0) {
		j->failed = true;
		return;
	}
	json_put(j, &c, 1);
	j->depth--;
}

void json_object_begin(struct json *j)
{
	json_open(j, '{');
}

void json_object_end(struct json *j)
{
	json_close(j, '}');
}

void json_array_begin(struct json *j)
{
	json_open(j, '[');
}

void json_array_end(struct json *j)
{
	json_close(j, ']');
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if there is none. */
static size_t json_utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates and values past U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

void json_string_len(struct json *j, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	char esc[8];
	size_t i = 0, n;

	json_sep(j);
	json_put(j, "\"", 1);
	while (i < len) {
		unsigned char c = p[i];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			json_put(j, esc, 2);
			i++;
		} else if (c == '\n') {
			json_put(j, "\\n", 2);
			i++;
		} else if (c == '\r') {
			json_put(j, "\\r", 2);
			i++;
		} else if (c == '\t') {
			json_put(j, "\\t", 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			json_put(j, esc, 6);
			i++;
		} else if ((n = json_utf8_len(p + i, len - i)) == 0) {
			json_put(j, "\\ufffd", 6);
			i++;
		} else {
			json_put(j, s + i, n);
			i += n;
		}
	}
	json_put(j, "\"", 1);
}

void json_string(struct json *j, const char *s)
{
	json_string_len(j, s, strlen(s));
}

void json_key(struct json *j, const char *key)
{
	json_string(j, key);
	json_put(j, ":", 1);
	j->after_key = true;
}

void json_int(struct json *j, int64_t v)
{
	char num[24];
	int n;

	json_sep(j);
	n = snprintf(num, sizeof(num), "%" PRId64, v);
	json_put(j, num, (size_t)n);
}

void json_bool(struct json *j, bool v)
{
	json_sep(j);
	if (v)
		json_put(j, "true", 4);
	else
		json_put(j, "false", 5);
}

int json_flush(struct json *j, FILE *f, struct tsr_err *err)
{
	if (j->failed)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
				   "JSON output too large or too deep");
	if (j->len > 0 && fwrite(j->buf, 1, j->len, f) != j->len)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "cannot write output");
	j->len = 0;
	return 0;
}
