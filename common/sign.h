/*
 * sign: Ed25519 identities (libsodium). A daemon has one secret key; it
 * trusts a keyring of public keys. Signatures cover a domain prefix and
 * the exact message bytes, so a signed reply can never pass as a command.
 *
 * Text forms: a public key is "ed25519:<base64>" (one config word); its
 * id is the first 8 bytes of its BLAKE2b hash in hex. A secret key file
 * holds "tessera-ed25519-secret <base64 seed>" and must be mode 0600.
 */
#ifndef TSR_SIGN_H
#define TSR_SIGN_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define SIGN_KEY_ID_LEN 16
#define SIGN_PUBKEY_TEXT_MAX 64
#define SIGN_KEYRING_MAX 64
#define SIGN_MESSAGE_MAX (4 * 1024 * 1024)

enum sign_domain {
	SIGN_DOMAIN_COMMAND,
	SIGN_DOMAIN_REPLY,
	SIGN_DOMAIN_EVENT,
	SIGN_DOMAIN_OUTPUT
};

struct sign_pubkey {
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	char id[SIGN_KEY_ID_LEN + 1];
};

struct sign_key { /* secret: wipe with sign_key_wipe() */
	struct sign_pubkey pub;
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
};

struct sign_keyring {
	size_t n;
	struct sign_pubkey keys[SIGN_KEYRING_MAX];
};

int sign_init(struct tsr_err *err);
int sign_keygen(struct sign_key *out, struct tsr_err *err);
/* Creates path (mode 0600, refusing to overwrite) and path.pub. */
int sign_key_save(const struct sign_key *key, const char *path, struct tsr_err *err);
/* Refuses a file that group or others may read. */
int sign_key_load(const char *path, struct sign_key *out, struct tsr_err *err);
void sign_key_wipe(struct sign_key *key);

int sign_pubkey_format(const struct sign_pubkey *pub, char *out, size_t outlen);
int sign_pubkey_parse(const char *text, struct sign_pubkey *out, struct tsr_err *err);

int sign_keyring_add(struct sign_keyring *ring, const struct sign_pubkey *pub, struct tsr_err *err);
const struct sign_pubkey *sign_keyring_find(const struct sign_keyring *ring, const char *id);

int sign_message(const struct sign_key *key, enum sign_domain domain, const uint8_t *msg,
		 size_t len, uint8_t sig[crypto_sign_BYTES], struct tsr_err *err);
/* 0 only when sig is a valid signature of msg in domain by pub. */
int sign_verify(const struct sign_pubkey *pub, enum sign_domain domain, const uint8_t *msg,
		size_t len, const uint8_t *sig, size_t siglen);

#endif
