/* fuzz_event_open: the hub opening a spoke's signed event. */
#include "envelope.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sign_key spoke;
	Tessera__V1__Event *ev = NULL;
	struct tsr_err err;

	if (spoke.pub.id[0] == '\0')
		fuzz_fixed_key(FUZZ_SPOKE_SEED, &spoke);
	tsr_err_clear(&err);
	if (envelope_event_open(data, size, &spoke.pub, FUZZ_SPOKE_ID, &ev, &err) == 0)
		tessera__v1__event__free_unpacked(ev, NULL);
	return 0;
}
