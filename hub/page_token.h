/*
 * page_token: the hub's ListAgents page token. Listing every spoke walks
 * them in configuration order; the token says which spoke comes next and
 * carries that spoke's own page token, as base64url("<index>:<spoke id>:
 * <spoke token>"). The id guards against a configuration that changed
 * between two pages.
 */
#ifndef TSR_HUB_PAGE_TOKEN_H
#define TSR_HUB_PAGE_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "hub_limits.h"
#include "ids.h"

struct page_token {
	size_t index; /* into the configured spokes */
	char spoke[TSR_NAME_MAX + 1];
	char token[TSR_SPOKE_PAGE_TOKEN_MAX + 1]; /* "": that spoke's first page */
};

/* A spoke token the hub can carry: printable ASCII, no blanks, bounded. */
bool page_token_spoke_token_ok(const char *s);
/* *out is malloc'd; the caller frees it. */
int page_token_encode(const struct page_token *t, char **out, struct tsr_err *err);
/* INVALID_ARGUMENT for anything page_token_encode would not have made. */
int page_token_decode(const char *text, struct page_token *out, struct tsr_err *err);

#endif
