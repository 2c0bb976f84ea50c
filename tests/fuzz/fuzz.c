/* fuzz: fixed keys and input helpers for the libFuzzer targets. */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

void fuzz_fixed_key(uint8_t seed_byte, struct sign_key *out)
{
	uint8_t seed[crypto_sign_SEEDBYTES];
	char text[SIGN_PUBKEY_TEXT_MAX];
	struct tsr_err err;

	memset(out, 0, sizeof(*out));
	memset(seed, seed_byte, sizeof(seed));
	/* Formatting and parsing the public key gives it its id, as for any key. */
	if (sign_init(&err) != 0 || crypto_sign_seed_keypair(out->pub.pk, out->sk, seed) != 0 ||
	    sign_pubkey_format(&out->pub, text, sizeof(text)) != 0 ||
	    sign_pubkey_parse(text, &out->pub, &err) != 0)
		abort();
}

char *fuzz_text(const uint8_t *data, size_t size)
{
	char *s;

	if (size > FUZZ_TEXT_MAX || memchr(data, '\0', size) != NULL)
		return NULL;
	s = malloc(size + 1);
	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}
