/*
 * tool_util: what the test-only command tools share: reading a spoke's
 * public key file.
 */
#ifndef TSR_TOOL_UTIL_H
#define TSR_TOOL_UTIL_H

#include "error.h"
#include "sign.h"

/* The first line of path, an "ed25519:BASE64" public key. */
int tool_read_pub(const char *path, struct sign_pubkey *pub, struct tsr_err *err);

#endif
