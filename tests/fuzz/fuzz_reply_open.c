/* fuzz_reply_open: the hub opening a spoke's signed reply. */
#include "envelope.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sign_key spoke;
	Tessera__V1__Reply *reply = NULL;
	struct tsr_err err;

	if (spoke.pub.id[0] == '\0')
		fuzz_fixed_key(FUZZ_SPOKE_SEED, &spoke);
	tsr_err_clear(&err);
	if (envelope_reply_open(data, size, &spoke.pub, FUZZ_SPOKE_ID, FUZZ_COMMAND_ID, &reply,
				&err) == 0)
		tessera__v1__reply__free_unpacked(reply, NULL);
	return 0;
}
