/* pb: protobuf-c packing with a checked allocation, and packed sizes. */
#include "pb.h"

#include <stdlib.h>

int pb_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len, struct tsr_err *err)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf;

	buf = malloc(n > 0 ? n : 1);
	if (buf == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	if (protobuf_c_message_pack(msg, buf) != n) {
		free(buf);
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "protobuf pack size mismatch");
	}
	*out = buf;
	*len = n;
	return 0;
}

size_t pb_element_size(const ProtobufCMessage *msg)
{
	size_t body = protobuf_c_message_get_packed_size(msg),
	       n = 2; /* tag < 16, one-byte length */

	/* The length is a varint: one more byte per 7 bits beyond the first 7. */
	for (size_t v = body >> 7; v != 0; v >>= 7)
		n++;
	return n + body;
}
