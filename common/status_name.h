/*
 * status_name: gRPC status codes by the names gRPC's documentation uses
 * ("OK", "NOT_FOUND", ...), for the CLI's error lines, the reasons the
 * hub gives for a spoke's state and the test tools' output.
 */
#ifndef TSR_STATUS_NAME_H
#define TSR_STATUS_NAME_H

#include <grpc/status.h>

/* "UNKNOWN" for a code outside the protocol's. */
const char *status_name(grpc_status_code code);

#endif
