/*
 * rpc_metadata: reading one value out of a gRPC metadata array, and the
 * response headers Tessera itself defines.
 */
#ifndef TSR_RPC_METADATA_H
#define TSR_RPC_METADATA_H

#include <grpc/grpc.h>
#include <stddef.h>

/* Longest value Tessera puts in a header: well inside gRPC's 8 KiB default. */
#define RPC_HEADER_VALUE_MAX 4096
/* Hub/WatchEvents headers: the cursor at the moment the watch subscribed,
 * or "" when it is longer than RPC_HEADER_VALUE_MAX. */
#define RPC_HEADER_WATCH_CURSOR "tessera-cursor"

/* Copies key's first value (NUL-terminated) into buf; -1 if absent or too long. */
int rpc_metadata_get(const grpc_metadata_array *md, const char *key, char *buf, size_t buflen);

#endif
