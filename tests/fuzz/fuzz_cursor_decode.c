/*
 * fuzz_cursor_decode: a user's watch cursor. Anything accepted must
 * encode back to exactly the same text, since the decoder promises to
 * accept only what the encoder makes.
 */
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cursor_entry entries[CURSOR_ENTRIES_MAX];
	char *text = fuzz_text(data, size), *again = NULL;
	struct tsr_err err;
	size_t n;

	if (text == NULL)
		return 0;
	tsr_err_clear(&err);
	if (cursor_decode(text, entries, CURSOR_ENTRIES_MAX, &n, &err) == 0) {
		if (cursor_encode(entries, n, &again, &err) != 0 || strcmp(again, text) != 0)
			abort();
	}
	free(again);
	free(text);
	return 0;
}
