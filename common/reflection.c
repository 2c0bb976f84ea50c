/*
 * reflection: one answer per request on the bidirectional stream. v1 and
 * v1alpha have the same messages on the wire, so both are served with the
 * v1 types. A request that cannot be answered gets an error_response and
 * the stream goes on; only a request that is not one (oversized,
 * undecodable) ends the stream.
 */
#include "reflection.h"

#include <stdlib.h>
#include <string.h>

#include "descriptors.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "pb.h"

typedef Grpc__Reflection__V1__ServerReflectionRequest reflection_request;

/* protobuf-c's names of the oneof cases, shortened. */
#define RFL_REQUEST(c) GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_##c
#define RFL_RESPONSE(c) GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_##c

/* A reply could then only fail to queue because the call is gone. */
_Static_assert(REFLECTION_REQUESTS_MAX < RPC_SEND_QUEUE_MAX,
	       "a stream's replies must fit in its send queue");

/*
 * The files that answer a file_by_filename or file_containing_symbol
 * request. The set is unpacked again for every request rather than kept:
 * reflection serves a few requests per grpcurl run, and keeping nothing
 * means nothing to free and no state that could outlive the server.
 */
static int reflection_files(const reflection_request *rq, struct descriptors_closure *files,
			    struct tsr_err *err)
{
	struct descriptors d = { NULL };
	const char *name;
	size_t file;
	int rc = -1;

	switch (rq->message_request_case) {
	case RFL_REQUEST(FILE_BY_FILENAME):
		name = rq->file_by_filename;
		break;
	case RFL_REQUEST(FILE_CONTAINING_SYMBOL):
		name = rq->file_containing_symbol;
		break;
	case RFL_REQUEST(FILE_CONTAINING_EXTENSION):
	case RFL_REQUEST(ALL_EXTENSION_NUMBERS_OF_TYPE):
		return tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "no extensions are served");
	default:
		/* Also what a newer client's request kind decodes to. */
		return tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "unknown reflection request");
	}
	if (strnlen(name, REFLECTION_NAME_MAX + 1) > REFLECTION_NAME_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "name over %d bytes",
				   REFLECTION_NAME_MAX);
	if (descriptors_open(&d, err) != 0)
		goto out;
	if (rq->message_request_case == RFL_REQUEST(FILE_BY_FILENAME))
		rc = descriptors_file_by_name(&d, name, &file, err);
	else
		rc = descriptors_file_by_symbol(&d, name, &file, err);
	if (rc == 0)
		rc = descriptors_closure(&d, file, files, err);
out:
	descriptors_close(&d);
	return rc;
}

/* Serializes the response to one request; -1 only when it is no request. */
static int reflection_answer(struct rpc_server *srv, const uint8_t *req, size_t len, uint8_t **out,
			     size_t *outlen, struct tsr_err *err)
{
	reflection_request *rq = NULL;
	Grpc__Reflection__V1__ServerReflectionResponse resp =
		GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
	Grpc__Reflection__V1__ListServiceResponse list =
		GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
	Grpc__Reflection__V1__ServiceResponse services[RPC_METHODS_MAX];
	Grpc__Reflection__V1__ServiceResponse *servicep[RPC_METHODS_MAX];
	Grpc__Reflection__V1__FileDescriptorResponse fdr =
		GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
	Grpc__Reflection__V1__ErrorResponse error = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
	struct descriptors_closure files = { .n = 0 };
	struct tsr_err answer;
	const char *name;
	size_t n = 0;
	int rc = -1;

	if (len > REFLECTION_REQUEST_MAX) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "reflection request over %d bytes",
			    REFLECTION_REQUEST_MAX);
		goto out;
	}
	rq = grpc__reflection__v1__server_reflection_request__unpack(NULL, len, req);
	if (rq == NULL) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "malformed reflection request");
		goto out;
	}
	resp.original_request = rq;
	if (rq->message_request_case == RFL_REQUEST(LIST_SERVICES)) {
		while (n < RPC_METHODS_MAX && (name = rpc_server_service(srv, n)) != NULL) {
			grpc__reflection__v1__service_response__init(&services[n]);
			/* protobuf-c wants char *; packing only reads it. */
			services[n].name = (char *)name;
			servicep[n] = &services[n];
			n++;
		}
		list.n_service = n;
		list.service = servicep;
		resp.message_response_case = RFL_RESPONSE(LIST_SERVICES_RESPONSE);
		resp.list_services_response = &list;
	} else if (reflection_files(rq, &files, &answer) == 0) {
		fdr.n_file_descriptor_proto = files.n;
		fdr.file_descriptor_proto = files.files;
		resp.message_response_case = RFL_RESPONSE(FILE_DESCRIPTOR_RESPONSE);
		resp.file_descriptor_response = &fdr;
	} else {
		error.error_code = (int32_t)answer.code;
		error.error_message = answer.msg;
		resp.message_response_case = RFL_RESPONSE(ERROR_RESPONSE);
		resp.error_response = &error;
	}
	rc = pb_pack(&resp.base, out, outlen, err);
out:
	descriptors_closure_free(&files);
	if (rq != NULL)
		grpc__reflection__v1__server_reflection_request__free_unpacked(rq, NULL);
	return rc;
}

static void reflection_info(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	struct rpc_server *srv = ctx;
	uint8_t *buf = NULL;
	size_t n = 0;
	struct tsr_err err;

	if (req == NULL) {
		/* The client is done (or gone): every answer is queued already. */
		rpc_call_finish(call, GRPC_STATUS_OK, NULL);
		return;
	}
	tsr_err_clear(&err);
	if (reflection_answer(srv, req, len, &buf, &n, &err) != 0)
		rpc_call_fail(call, &err);
	else if (rpc_call_send(call, buf, n) != 0)
		rpc_call_finish(call, GRPC_STATUS_CANCELLED, "call no longer active");
	free(buf);
}

int reflection_register(struct rpc_server *srv, struct tsr_err *err)
{
	struct descriptors d = { NULL };

	/* A build that embedded a broken set fails here, at start. */
	if (descriptors_open(&d, err) != 0)
		return -1;
	descriptors_close(&d);
	if (rpc_server_add_bidi(srv, REFLECTION_V1_METHOD, reflection_info, srv,
				REFLECTION_REQUESTS_MAX, err) != 0 ||
	    rpc_server_add_bidi(srv, REFLECTION_V1ALPHA_METHOD, reflection_info, srv,
				REFLECTION_REQUESTS_MAX, err) != 0)
		return -1;
	return 0;
}
