/* hub_fixture: temporary files, hub configs and tokens for the hub's unit tests. */
#include "hub_fixture.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "b64url.h"
#include "sign.h"

#define HFX_CONFIG_TEXT_MAX 4096

char *hfx_b64url(const char *text)
{
	struct tsr_err err;
	char *out = NULL;

	ck_assert_int_eq(b64url_encode((const uint8_t *)text, strlen(text), &out, &err), 0);
	return out;
}

void hfx_temp_file(char *path, size_t len, const char *text)
{
	int fd;

	snprintf(path, len, "/tmp/tessera-hub-test-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Copies fmt into out with every "@K" replaced by pub. */
static void hfx_subst(const char *fmt, const char *pub, char *out, size_t outlen)
{
	size_t len = 0, plen = strlen(pub);

	for (const char *p = fmt; *p != '\0'; p++) {
		if (p[0] == '@' && p[1] == 'K') {
			ck_assert_uint_lt(len + plen, outlen);
			memcpy(out + len, pub, plen);
			len += plen;
			p++;
		} else {
			ck_assert_uint_lt(len + 1, outlen);
			out[len++] = *p;
		}
	}
	out[len] = '\0';
}

int hfx_config_load(const char *fmt, struct hub_config *cfg, struct tsr_err *err, char *path,
		    size_t pathlen)
{
	char pub[SIGN_PUBKEY_TEXT_MAX + 16], text[HFX_CONFIG_TEXT_MAX];
	struct sign_key key;
	int rc;

	ck_assert_int_eq(sign_keygen(&key, err), 0);
	ck_assert_int_eq(sign_pubkey_format(&key.pub, pub, sizeof(pub)), 0);
	sign_key_wipe(&key);
	hfx_subst(fmt, pub, text, sizeof(text));
	hfx_temp_file(path, pathlen, text);
	rc = hub_config_load(path, cfg, err);
	unlink(path);
	return rc;
}
