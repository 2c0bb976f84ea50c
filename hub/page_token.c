/* page_token: encoding and strict decoding of ListAgents page tokens. */
#include "page_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"

#define PAGE_TOKEN_TEXT_MAX (3 + 1 + TSR_NAME_MAX + 1 + TSR_SPOKE_PAGE_TOKEN_MAX)

bool page_token_spoke_token_ok(const char *s)
{
	size_t len = strnlen(s, TSR_SPOKE_PAGE_TOKEN_MAX + 1);

	if (len > TSR_SPOKE_PAGE_TOKEN_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
	return true;
}

int page_token_encode(const struct page_token *t, char **out, struct tsr_err *err)
{
	char text[PAGE_TOKEN_TEXT_MAX + 1];
	int n;

	n = snprintf(text, sizeof(text), "%zu:%s:%s", t->index, t->spoke, t->token);
	if (n < 0 || (size_t)n >= sizeof(text))
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "page token overflow");
	return b64url_encode((const uint8_t *)text, (size_t)n, out, err);
}

/* Splits buf (modified in place) into out; false if it is not a token. */
static bool page_token_parse(char *buf, struct page_token *out)
{
	char *c1, *c2;
	size_t index = 0;

	c1 = strchr(buf, ':');
	c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
	if (c2 == NULL || c1 == buf || c1 - buf > 3 || (buf[0] == '0' && c1 - buf > 1))
		return false;
	for (const char *p = buf; p < c1; p++) {
		if (*p < '0' || *p > '9')
			return false;
		index = index * 10 + (size_t)(*p - '0');
	}
	*c1 = '\0';
	*c2 = '\0';
	if (index >= HUB_SPOKES_MAX || !ids_valid_name(c1 + 1) ||
	    !page_token_spoke_token_ok(c2 + 1))
		return false;
	out->index = index;
	memcpy(out->spoke, c1 + 1, strlen(c1 + 1) + 1);
	memcpy(out->token, c2 + 1, strlen(c2 + 1) + 1);
	return true;
}

int page_token_decode(const char *text, struct page_token *out, struct tsr_err *err)
{
	char buf[PAGE_TOKEN_TEXT_MAX + 1];
	size_t len;

	if (b64url_decode(text, "page token", buf, PAGE_TOKEN_TEXT_MAX, &len, err) != 0)
		return -1;
	if (!page_token_parse(buf, out))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "page token is not valid");
	return 0;
}
