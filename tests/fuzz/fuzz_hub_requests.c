/*
 * fuzz_hub_requests: protobuf-c unpacking of every request message the
 * hub's user API accepts and of every command payload the spoke accepts,
 * each tried on the same bytes; whatever unpacks must pack again.
 */
#include <stdlib.h>

#include "fuzz.h"
#include "tessera/v1/hub.pb-c.h"
#include "tessera/v1/spoke.pb-c.h"

static const ProtobufCMessageDescriptor *const fuzz_requests[] = {
	&tessera__v1__spawn_agent_request__descriptor,
	&tessera__v1__get_agent_request__descriptor,
	&tessera__v1__kill_agent_request__descriptor,
	&tessera__v1__list_agents_request__descriptor,
	&tessera__v1__list_spokes_request__descriptor,
	&tessera__v1__watch_events_request__descriptor,
	&tessera__v1__drain_spoke_request__descriptor,
	&tessera__v1__undrain_spoke_request__descriptor,
	&tessera__v1__read_agent_output_request__descriptor,
	&tessera__v1__spawn_command__descriptor,
	&tessera__v1__status_command__descriptor,
	&tessera__v1__kill_command__descriptor,
	&tessera__v1__list_command__descriptor,
	&tessera__v1__stream_events_request__descriptor,
	&tessera__v1__spoke_status_request__descriptor,
	&tessera__v1__spoke_drain_request__descriptor,
	&tessera__v1__output_stream_request__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < sizeof(fuzz_requests) / sizeof(fuzz_requests[0]); i++) {
		ProtobufCMessage *m = protobuf_c_message_unpack(fuzz_requests[i], NULL, size, data);
		uint8_t *buf;
		size_t len;

		if (m == NULL)
			continue;
		len = protobuf_c_message_get_packed_size(m);
		buf = malloc(len > 0 ? len : 1);
		if (buf == NULL || protobuf_c_message_pack(m, buf) != len)
			abort();
		free(buf);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	return 0;
}
