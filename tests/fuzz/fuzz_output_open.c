/* fuzz_output_open: the hub opening a chunk of a spoke's signed output stream. */
#include "envelope.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sign_key spoke;
	Tessera__V1__OutputMessage *m = NULL;
	struct tsr_err err;

	if (spoke.pub.id[0] == '\0')
		fuzz_fixed_key(FUZZ_SPOKE_SEED, &spoke);
	tsr_err_clear(&err);
	if (envelope_output_open(data, size, &spoke.pub, FUZZ_SPOKE_ID, FUZZ_COMMAND_ID, &m,
				 &err) == 0)
		tessera__v1__output_message__free_unpacked(m, NULL);
	return 0;
}
