/*
 * b64url: the unpadded URL-safe base64 that wraps the hub's opaque tokens
 * (watch cursors, page tokens), so they survive shells and URLs untouched.
 */
#ifndef TSR_HUB_B64URL_H
#define TSR_HUB_B64URL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* *out is a malloc'd NUL-terminated string; the caller frees it. */
int b64url_encode(const uint8_t *bin, size_t len, char **out, struct tsr_err *err);
/*
 * Decodes text (canonical form only) into out, at most max bytes, and
 * NUL-terminates it (out holds max + 1). INVALID_ARGUMENT on bad input,
 * naming what (e.g. "cursor").
 */
int b64url_decode(const char *text, const char *what, char *out, size_t max, size_t *len,
		  struct tsr_err *err);

#endif
