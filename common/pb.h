/* pb: serializing protobuf-c messages into malloc'd buffers, and their sizes. */
#ifndef TSR_PB_H
#define TSR_PB_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* *out is malloc'd; the caller frees it. */
int pb_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len, struct tsr_err *err);

/* Bytes msg takes as one element of a repeated message field: tag, length, body. */
size_t pb_element_size(const ProtobufCMessage *msg);

#endif
