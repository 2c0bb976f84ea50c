/* protocol: the names of command types, from the enum's own descriptor. */
#include "protocol.h"

#include <string.h>

#define PROTOCOL_ENUM_PREFIX "COMMAND_TYPE_"

const char *protocol_command_name(Tessera__V1__CommandType type)
{
	const ProtobufCEnumValue *v;

	v = protobuf_c_enum_descriptor_get_value(&tessera__v1__command_type__descriptor, (int)type);
	if (v == NULL || type == TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_UNSPECIFIED)
		return "UNKNOWN";
	if (strncmp(v->name, PROTOCOL_ENUM_PREFIX, strlen(PROTOCOL_ENUM_PREFIX)) == 0)
		return v->name + strlen(PROTOCOL_ENUM_PREFIX);
	return v->name;
}
