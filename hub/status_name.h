/*
 * status_name: gRPC status codes by the names gRPC's documentation uses
 * ("OK", "NOT_FOUND", ...), for the CLI's error lines and the reasons the
 * hub gives for a spoke's state.
 */
#ifndef TSR_HUB_STATUS_NAME_H
#define TSR_HUB_STATUS_NAME_H

#include <grpc/status.h>

/* "UNKNOWN" for a code outside the protocol's. */
const char *status_name(grpc_status_code code);

#endif
