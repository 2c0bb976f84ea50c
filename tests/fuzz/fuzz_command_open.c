/*
 * fuzz_command_open: the spoke's first look at a command off the network,
 * envelope_command_open against one trusted hub key. Whatever comes out
 * must also pass the nonce lifetime bounds the spoke relies on.
 */
#include <stdlib.h>

#include "envelope.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sign_keyring ring;
	Tessera__V1__Command *cmd = NULL;
	struct sign_key hub;
	struct tsr_err err;
	int64_t ttl;

	if (ring.n == 0) {
		fuzz_fixed_key(FUZZ_HUB_SEED, &hub);
		if (sign_keyring_add(&ring, &hub.pub, &err) != 0)
			abort();
	}
	tsr_err_clear(&err);
	if (envelope_command_open(data, size, &ring, FUZZ_SPOKE_ID, FUZZ_NOW_MS, &cmd, &err) != 0)
		return 0;
	ttl = envelope_command_replay_ms(cmd, FUZZ_NOW_MS);
	if (ttl < 1 || ttl > ENVELOPE_WINDOW_MAX_MS + 2 * ENVELOPE_SKEW_MS)
		abort();
	tessera__v1__command__free_unpacked(cmd, NULL);
	return 0;
}
