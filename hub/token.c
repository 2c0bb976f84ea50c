/* token: validating, hashing, matching and making bearer tokens. */
#include "token.h"

#include <sodium.h>
#include <string.h>

int token_hash(const char *token, size_t len, struct token_hash *out, struct tsr_err *err)
{
	if (len < TOKEN_MIN || len > TOKEN_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "a token is %d-%d characters",
				   TOKEN_MIN, TOKEN_MAX);
	for (size_t i = 0; i < len; i++)
		if (token[i] < 0x21 || token[i] > 0x7e)
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "a token is printable ASCII without blanks");
	crypto_generichash(out->h, sizeof(out->h), (const unsigned char *)token, len, NULL, 0);
	return 0;
}

int token_hash_parse(const char *text, struct token_hash *out, struct tsr_err *err)
{
	size_t plen = strlen(TOKEN_HASH_PREFIX), bin_len;
	const char *end;

	if (strncmp(text, TOKEN_HASH_PREFIX, plen) != 0 ||
	    strlen(text + plen) != 2 * TOKEN_HASH_BYTES ||
	    sodium_hex2bin(out->h, sizeof(out->h), text + plen, 2 * TOKEN_HASH_BYTES, NULL,
			   &bin_len, &end) != 0 ||
	    bin_len != TOKEN_HASH_BYTES || *end != '\0')
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "a token hash is \"%s\" and %d hex digits (tessera token-hash)",
				   TOKEN_HASH_PREFIX, 2 * TOKEN_HASH_BYTES);
	return 0;
}

void token_hash_format(const struct token_hash *h, char out[TOKEN_HASH_TEXT_MAX])
{
	size_t plen = strlen(TOKEN_HASH_PREFIX);

	memcpy(out, TOKEN_HASH_PREFIX, plen);
	sodium_bin2hex(out + plen, TOKEN_HASH_TEXT_MAX - plen, h->h, sizeof(h->h));
}

bool token_match(const struct token_hash *set, size_t n, const struct token_hash *h)
{
	int found = 0;

	/* No early exit: every hash is compared whichever one matches. */
	for (size_t i = 0; i < n; i++)
		found |= crypto_verify_32(set[i].h, h->h) + 1;
	return found != 0;
}

void token_new(char out[TOKEN_NEW_TEXT_MAX])
{
	uint8_t raw[TOKEN_NEW_BYTES];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(out, TOKEN_NEW_TEXT_MAX, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
}
