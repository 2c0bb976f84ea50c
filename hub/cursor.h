/*
 * cursor: positions in a spoke's event stream (Valkey stream ids,
 * "<ms>-<seq>") and the watch cursor that carries one position per spoke.
 * A cursor is base64url("spokeid=position;spokeid=position...") and is
 * parsed strictly on the way back in: anything malformed is refused, never
 * guessed at.
 */
#ifndef TSR_HUB_CURSOR_H
#define TSR_HUB_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "hub_limits.h"
#include "ids.h"

struct stream_pos {
	uint64_t ms;
	uint64_t seq;
};

#define STREAM_POS_TEXT_MAX 41 /* two 20-digit numbers and a dash */
#define CURSOR_ENTRIES_MAX HUB_SPOKES_MAX
#define CURSOR_TEXT_MAX (CURSOR_ENTRIES_MAX * (TSR_NAME_MAX + 1 + STREAM_POS_TEXT_MAX + 1))

struct cursor_entry {
	char spoke[TSR_NAME_MAX + 1];
	struct stream_pos pos;
};

/* Canonical decimal only: no signs, no leading zeros, no overflow. */
int stream_pos_parse(const char *s, struct stream_pos *out, struct tsr_err *err);
/* out holds STREAM_POS_TEXT_MAX + 1 bytes. */
void stream_pos_format(const struct stream_pos *p, char *out, size_t outlen);
int stream_pos_cmp(const struct stream_pos *a, const struct stream_pos *b);

/* *out is malloc'd; the caller frees it. Zero entries encode as "". */
int cursor_encode(const struct cursor_entry *e, size_t n, char **out, struct tsr_err *err);
/* INVALID_ARGUMENT for anything but what cursor_encode makes (duplicates too). */
int cursor_decode(const char *token, struct cursor_entry *out, size_t max, size_t *n,
		  struct tsr_err *err);

#endif
