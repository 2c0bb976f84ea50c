/* b64url: libsodium's URL-safe, unpadded base64 variant with bounds. */
#include "b64url.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define B64URL_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define B64URL_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

int b64url_encode(const uint8_t *bin, size_t len, char **out, struct tsr_err *err)
{
	size_t n = sodium_base64_ENCODED_LEN(len, B64URL_VARIANT);
	char *text;

	text = malloc(n);
	if (text == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	sodium_bin2base64(text, n, bin, len, B64URL_VARIANT);
	*out = text;
	return 0;
}

int b64url_decode(const char *text, const char *what, char *out, size_t max, size_t *len,
		  struct tsr_err *err)
{
	size_t tlen = strlen(text), binlen = 0;
	const char *end = NULL;

	/* Every 4 characters carry 3 bytes; refuse early what cannot fit. */
	if (tlen > (max / 3) * 4 + 4)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s is too long", what);
	/* libsodium 1.0.18 decodes some bytes above 0x7f as if they were
	 * letters: only the alphabet itself is canonical. */
	if (strspn(text, B64URL_ALPHABET) != tlen)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s is not valid", what);
	if (sodium_base642bin((unsigned char *)out, max, text, tlen, NULL, &binlen, &end,
			      B64URL_VARIANT) != 0 ||
	    end != text + tlen)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s is not valid", what);
	/* The tokens wrap text: an embedded NUL would cut what gets parsed. */
	if (memchr(out, '\0', binlen) != NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s is not valid", what);
	out[binlen] = '\0';
	*len = binlen;
	return 0;
}
