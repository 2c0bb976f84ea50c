/*
 * fuzz_page_token_decode: a user's ListAgents page token. Anything
 * accepted must encode back to the same text.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "page_token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct page_token t;
	char *text = fuzz_text(data, size), *again = NULL;
	struct tsr_err err;

	if (text == NULL)
		return 0;
	tsr_err_clear(&err);
	if (page_token_decode(text, &t, &err) == 0) {
		if (page_token_encode(&t, &again, &err) != 0 || strcmp(again, text) != 0)
			abort();
	}
	free(again);
	free(text);
	return 0;
}
