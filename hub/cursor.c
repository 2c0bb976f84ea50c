/* cursor: stream position text and the per-spoke watch cursor. */
#include "cursor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"

/* One canonical uint64 from s[0..len). */
static int stream_pos_number(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++) {
		uint64_t d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int stream_pos_parse(const char *s, struct stream_pos *out, struct tsr_err *err)
{
	size_t len = strnlen(s, STREAM_POS_TEXT_MAX + 1);
	const char *dash;

	dash = len <= STREAM_POS_TEXT_MAX ? memchr(s, '-', len) : NULL;
	if (dash == NULL || stream_pos_number(s, (size_t)(dash - s), &out->ms) != 0 ||
	    stream_pos_number(dash + 1, len - (size_t)(dash - s) - 1, &out->seq) != 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "\"%.*s\" is not a stream position", 48, s);
	return 0;
}

void stream_pos_format(const struct stream_pos *p, char *out, size_t outlen)
{
	/* Two uint64s and a dash always fit STREAM_POS_TEXT_MAX + 1. */
	snprintf(out, outlen, "%" PRIu64 "-%" PRIu64, p->ms, p->seq);
}

int stream_pos_cmp(const struct stream_pos *a, const struct stream_pos *b)
{
	if (a->ms != b->ms)
		return a->ms < b->ms ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return 0;
}

int cursor_encode(const struct cursor_entry *e, size_t n, char **out, struct tsr_err *err)
{
	char *text = NULL, pos[STREAM_POS_TEXT_MAX + 1];
	size_t len = 0;
	int rc = -1, w;

	if (n > CURSOR_ENTRIES_MAX) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "cursor with %zu spokes", n);
		goto out;
	}
	text = malloc(CURSOR_TEXT_MAX + 1);
	if (text == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	text[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		stream_pos_format(&e[i].pos, pos, sizeof(pos));
		w = snprintf(text + len, CURSOR_TEXT_MAX + 1 - len, "%s%s=%s", i > 0 ? ";" : "",
			     e[i].spoke, pos);
		if (w < 0 || (size_t)w >= CURSOR_TEXT_MAX + 1 - len) {
			tsr_err_set(err, GRPC_STATUS_INTERNAL, "cursor text overflow");
			goto out;
		}
		len += (size_t)w;
	}
	rc = b64url_encode((const uint8_t *)text, len, out, err);
out:
	free(text);
	return rc;
}

/* Parses one "id=pos" entry (modified in place) into e. */
static int cursor_entry_parse(char *s, struct cursor_entry *e, struct tsr_err *err)
{
	char *eq = strchr(s, '=');

	if (eq == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "cursor entry lacks \"spoke=position\"");
	*eq = '\0';
	if (!ids_valid_name(s))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "cursor names an invalid spoke id");
	if (stream_pos_parse(eq + 1, &e->pos, err) != 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "cursor holds an invalid position for spoke %s", s);
	memcpy(e->spoke, s, strlen(s) + 1);
	return 0;
}

int cursor_decode(const char *token, struct cursor_entry *out, size_t max, size_t *n,
		  struct tsr_err *err)
{
	char *text = NULL, *p, *semi;
	size_t len, count = 0;
	int rc = -1;

	text = malloc(CURSOR_TEXT_MAX + 1);
	if (text == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	if (b64url_decode(token, "cursor", text, CURSOR_TEXT_MAX, &len, err) != 0)
		goto out;
	for (p = text; len > 0; p = semi + 1) {
		semi = strchr(p, ';');
		if (semi != NULL)
			*semi = '\0';
		if (count == max) {
			tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				    "cursor holds more than %zu spokes", max);
			goto out;
		}
		if (cursor_entry_parse(p, &out[count], err) != 0)
			goto out;
		for (size_t i = 0; i < count; i++) {
			if (strcmp(out[i].spoke, out[count].spoke) == 0) {
				tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					    "cursor names spoke %s twice", out[i].spoke);
				goto out;
			}
		}
		count++;
		if (semi == NULL)
			break;
	}
	*n = count;
	rc = 0;
out:
	free(text);
	return rc;
}
