/*
 * hub_fixture: what the unit tests of the hub's and the CLI's modules
 * share: files written to fresh temporary paths, hub configs with a fresh
 * spoke key, and base64url-wrapped text for handcrafted tokens.
 *
 * Every call fails the running Check test rather than returning an error:
 * these are test fixtures.
 */
#ifndef TSR_HUB_FIXTURE_H
#define TSR_HUB_FIXTURE_H

#include <stddef.h>

#include "error.h"
#include "hub_config.h"

/* The lines that make a config explicit about plaintext and no tokens. */
#define HFX_PLAIN "plaintext yes\nspoke-plaintext yes\nauth none\n"
/* The BLAKE2b-256 of the token "0123456789abcdef", in hex. */
#define HFX_TOKEN_HEX "c783baf5fb1427e7d924c9fe93ee161169324bb139d9cd8d8b9602c412ec6cda"
/* A token line of that hash. */
#define HFX_TOKEN_LINE(name) "token " name " blake2b256:" HFX_TOKEN_HEX "\n"

/* base64url of text; the caller frees it. */
char *hfx_b64url(const char *text);
/* Writes text to a fresh temporary file; path (len bytes) receives its name. */
void hfx_temp_file(char *path, size_t len, const char *text);
/*
 * hub_config_load of a temporary file made of fmt, each "@K" in it
 * replaced by a fresh public key, removed afterwards; path receives its
 * name (for messages). 0, or -1 with err.
 */
int hfx_config_load(const char *fmt, struct hub_config *cfg, struct tsr_err *err, char *path,
		    size_t pathlen);

#endif
