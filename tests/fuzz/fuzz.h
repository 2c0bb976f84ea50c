/*
 * fuzz: what the libFuzzer targets share: the entry point libFuzzer
 * calls, and fixed identities, so that a committed seed corpus of
 * correctly signed messages stays valid (see make_corpus.c).
 */
#ifndef TSR_FUZZ_H
#define TSR_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "sign.h"

#define FUZZ_NOW_MS 1700000000000LL /* the clock every target and seed agrees on */
#define FUZZ_SPOKE_ID "spoke-1"
#define FUZZ_COMMAND_ID "cmd-1"
#define FUZZ_HUB_SEED 1
#define FUZZ_SPOKE_SEED 2
#define FUZZ_TEXT_MAX (64 * 1024) /* longest string input tried */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A key pair made from a seed of 32 copies of seed_byte; aborts on failure. */
void fuzz_fixed_key(uint8_t seed_byte, struct sign_key *out);
/* data as a malloc'd NUL-terminated string, NULL if too long or with a NUL. */
char *fuzz_text(const uint8_t *data, size_t size);

#endif
