/*
 * error: a gRPC status code plus a short message, filled in by whatever
 * failed so that the RPC layer can answer the caller with it.
 */
#ifndef TSR_ERROR_H
#define TSR_ERROR_H

#include <grpc/status.h>

#define TSR_ERR_MSG_MAX 256

struct tsr_err {
	grpc_status_code code;
	char msg[TSR_ERR_MSG_MAX];
};

/* Always returns -1, so that "return tsr_err_set(...)" reads naturally. */
int tsr_err_set(struct tsr_err *err, grpc_status_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void tsr_err_clear(struct tsr_err *err);

#endif
