/*
 * tool_util: what the test-only command tools share: gRPC status names as
 * printed for the tests, and reading a spoke's public key file.
 */
#ifndef TSR_TOOL_UTIL_H
#define TSR_TOOL_UTIL_H

#include "error.h"
#include "sign.h"

/* "OK", "NOT_FOUND", ...; "UNKNOWN" for a code out of range. */
const char *tool_status_name(int code);

/* The first line of path, an "ed25519:BASE64" public key. */
int tool_read_pub(const char *path, struct sign_pubkey *pub, struct tsr_err *err);

#endif
