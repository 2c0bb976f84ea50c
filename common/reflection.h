/*
 * reflection: the gRPC server reflection service, under both of its names
 * (grpc.reflection.v1 and the older v1alpha), so that grpcurl and the like
 * can list a server's services and describe their messages without any
 * .proto file at hand.
 */
#ifndef TSR_REFLECTION_H
#define TSR_REFLECTION_H

#include "error.h"
#include "rpc_server.h"

#define REFLECTION_V1_METHOD "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
#define REFLECTION_V1ALPHA_METHOD "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"

#define REFLECTION_REQUEST_MAX 4096  /* bytes of one request */
#define REFLECTION_NAME_MAX 1024     /* a file name or a symbol */
#define REFLECTION_REQUESTS_MAX 1000 /* requests on one stream */

/*
 * Adds both reflection services to srv, before rpc_server_start(). They
 * list every service added to srv, before or after this call, and
 * describe the files and symbols of the descriptor set built into the
 * binary. Nothing to free: they keep no state beyond srv.
 */
int reflection_register(struct rpc_server *srv, struct tsr_err *err);

#endif
