/* rpc_metadata: bounded look-ups in metadata that came off the network. */
#include "rpc_metadata.h"

#include <string.h>

int rpc_metadata_get(const grpc_metadata_array *md, const char *key, char *buf, size_t buflen)
{
	size_t klen = strlen(key);

	for (size_t i = 0; i < md->count; i++) {
		const grpc_metadata *m = &md->metadata[i];
		size_t vlen = GRPC_SLICE_LENGTH(m->value);

		if (GRPC_SLICE_LENGTH(m->key) != klen ||
		    memcmp(GRPC_SLICE_START_PTR(m->key), key, klen) != 0)
			continue;
		if (vlen + 1 > buflen)
			return -1;
		memcpy(buf, GRPC_SLICE_START_PTR(m->value), vlen);
		buf[vlen] = '\0';
		return 0;
	}
	return -1;
}
