/*
 * token: the hub API's bearer tokens and their stored form. A token is
 * TOKEN_MIN-TOKEN_MAX printable ASCII characters without blanks; the hub's
 * configuration keeps only "blake2b256:" + the hex of its BLAKE2b-256
 * hash, so that reading the config does not give anyone a token. The hash
 * is fast and unsalted: tokens must be random (`tessera token-new`), not
 * passwords.
 */
#ifndef TSR_HUB_TOKEN_H
#define TSR_HUB_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* A call carries its token as "authorization: Bearer TOKEN" metadata. */
#define TOKEN_HEADER "authorization"
#define TOKEN_SCHEME "Bearer "
/* The header's value with its NUL, at most. */
#define TOKEN_HEADER_VALUE_MAX (sizeof(TOKEN_SCHEME) + TOKEN_MAX)

#define TOKEN_MIN 16
#define TOKEN_MAX 256
#define TOKEN_HASH_BYTES 32
#define TOKEN_HASH_PREFIX "blake2b256:"
/* The text form with its NUL. */
#define TOKEN_HASH_TEXT_MAX (sizeof(TOKEN_HASH_PREFIX) + 2 * TOKEN_HASH_BYTES)
#define TOKEN_NEW_BYTES 32 /* random bytes of a new token */
#define TOKEN_NEW_TEXT_MAX (2 * TOKEN_NEW_BYTES + 1)

struct token_hash {
	uint8_t h[TOKEN_HASH_BYTES];
};

/* INVALID_ARGUMENT unless token (len bytes, not NUL-terminated) is well formed. */
int token_hash(const char *token, size_t len, struct token_hash *out, struct tsr_err *err);
int token_hash_parse(const char *text, struct token_hash *out, struct tsr_err *err);
/* out holds TOKEN_HASH_TEXT_MAX bytes. */
void token_hash_format(const struct token_hash *h, char out[TOKEN_HASH_TEXT_MAX]);
/* Compares h with every one of the n hashes in constant time, whatever
 * matches and where, so timing tells nothing about the set. */
bool token_match(const struct token_hash *set, size_t n, const struct token_hash *h);
/* A fresh random token, hex; out holds TOKEN_NEW_TEXT_MAX bytes. */
void token_new(char out[TOKEN_NEW_TEXT_MAX]);

#endif
