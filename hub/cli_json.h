/*
 * cli_json: a small JSON writer for the CLI's --json output. Values are
 * appended to a growing buffer; strings are escaped, and bytes that are
 * not UTF-8 become U+FFFD, so the output is always valid JSON whatever a
 * spoke sent. The writer's calls cannot fail one by one: an allocation or
 * size failure is remembered, and json_flush reports it, so building a
 * document needs one check at the end rather than one per value.
 */
#ifndef TSR_HUB_CLI_JSON_H
#define TSR_HUB_CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

#define JSON_DEPTH_MAX 16
#define JSON_BUF_MAX (16 * 1024 * 1024) /* between two flushes */

struct json {
	char *buf; /* owned */
	size_t len, cap;
	int depth;
	bool first[JSON_DEPTH_MAX]; /* no value yet at this depth */
	bool after_key;
	bool failed;
};

void json_init(struct json *j);
void json_free(struct json *j);

void json_object_begin(struct json *j);
void json_object_end(struct json *j);
void json_array_begin(struct json *j);
void json_array_end(struct json *j);
void json_key(struct json *j, const char *key);
void json_string(struct json *j, const char *s);
void json_string_len(struct json *j, const char *s, size_t len);
void json_int(struct json *j, int64_t v);
void json_bool(struct json *j, bool v);

/* Writes what was built so far to f and empties the buffer. */
int json_flush(struct json *j, FILE *f, struct tsr_err *err);

#endif
