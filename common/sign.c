/*
 * sign: key files, public key text, keyrings, and domain-separated
 * Ed25519 signatures over prefix || message.
 */
#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIGN_SECRET_TAG "tessera-ed25519-secret"
#define SIGN_PUBKEY_PREFIX "ed25519:"
#define SIGN_FILE_MAX 512

static const char *const sign_domains[] = {
	[SIGN_DOMAIN_COMMAND] = "tessera.v1 command",
	[SIGN_DOMAIN_REPLY] = "tessera.v1 reply",
	[SIGN_DOMAIN_EVENT] = "tessera.v1 event",
	[SIGN_DOMAIN_OUTPUT] = "tessera.v1 output",
};

int sign_init(struct tsr_err *err)
{
	if (sodium_init() < 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "libsodium failed to initialise");
	return 0;
}

static void sign_key_id(struct sign_pubkey *pub)
{
	uint8_t h[crypto_generichash_BYTES];

	crypto_generichash(h, sizeof(h), pub->pk, sizeof(pub->pk), NULL, 0);
	sodium_bin2hex(pub->id, sizeof(pub->id), h, SIGN_KEY_ID_LEN / 2);
}

int sign_keygen(struct sign_key *out, struct tsr_err *err)
{
	if (crypto_sign_keypair(out->pub.pk, out->sk) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "key generation failed");
	sign_key_id(&out->pub);
	return 0;
}

void sign_key_wipe(struct sign_key *key)
{
	sodium_memzero(key, sizeof(*key));
}

int sign_pubkey_format(const struct sign_pubkey *pub, char *out, size_t outlen)
{
	size_t plen = strlen(SIGN_PUBKEY_PREFIX);

	if (outlen <
	    plen + sodium_base64_ENCODED_LEN(sizeof(pub->pk), sodium_base64_VARIANT_ORIGINAL))
		return -1;
	memcpy(out, SIGN_PUBKEY_PREFIX, plen);
	sodium_bin2base64(out + plen, outlen - plen, pub->pk, sizeof(pub->pk),
			  sodium_base64_VARIANT_ORIGINAL);
	return 0;
}

int sign_pubkey_parse(const char *text, struct sign_pubkey *out, struct tsr_err *err)
{
	size_t plen = strlen(SIGN_PUBKEY_PREFIX), binlen = 0;
	const char *b64;

	if (strncmp(text, SIGN_PUBKEY_PREFIX, plen) != 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "public key must start with \"%s\"", SIGN_PUBKEY_PREFIX);
	b64 = text + plen;
	if (strlen(b64) > SIGN_PUBKEY_TEXT_MAX ||
	    sodium_base642bin(out->pk, sizeof(out->pk), b64, strlen(b64), NULL, &binlen, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    binlen != sizeof(out->pk))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "public key is not 32 bytes of base64");
	sign_key_id(out);
	return 0;
}

static int sign_write_file(const char *path, mode_t mode, const char *text, struct tsr_err *err)
{
	size_t len = strlen(text);
	int fd, rc = -1;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION, "%s: %s", path,
				   strerror(errno));
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

int sign_key_save(const struct sign_key *key, const char *path, struct tsr_err *err)
{
	char text[SIGN_FILE_MAX], b64[SIGN_FILE_MAX];
	char pub[SIGN_PUBKEY_TEXT_MAX + 16], pubtext[SIGN_PUBKEY_TEXT_MAX + 16];
	char pubpath[4096];
	int rc = -1;

	/* The first half of libsodium's secret key is the seed. */
	sodium_bin2base64(b64, sizeof(b64), key->sk, crypto_sign_SEEDBYTES,
			  sodium_base64_VARIANT_ORIGINAL);
	if (snprintf(text, sizeof(text), "%s %s\n", SIGN_SECRET_TAG, b64) >= (int)sizeof(text) ||
	    snprintf(pubpath, sizeof(pubpath), "%s.pub", path) >= (int)sizeof(pubpath) ||
	    sign_pubkey_format(&key->pub, pub, sizeof(pub)) != 0 ||
	    snprintf(pubtext, sizeof(pubtext), "%s\n", pub) >= (int)sizeof(pubtext)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "key path too long");
		goto out;
	}
	if (sign_write_file(path, 0600, text, err) != 0)
		goto out;
	if (sign_write_file(pubpath, 0644, pubtext, err) != 0) {
		unlink(path);
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(text, sizeof(text));
	sodium_memzero(b64, sizeof(b64));
	return rc;
}

int sign_key_load(const char *path, struct sign_key *out, struct tsr_err *err)
{
	char text[SIGN_FILE_MAX];
	uint8_t seed[crypto_sign_SEEDBYTES];
	size_t taglen = strlen(SIGN_SECRET_TAG), binlen = 0;
	struct stat st;
	ssize_t n;
	char *b64, *end;
	int fd, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s: not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		tsr_err_set(err, GRPC_STATUS_PERMISSION_DENIED,
			    "%s: secret key readable by others (mode %03o); chmod 600 it", path,
			    (unsigned)(st.st_mode & 0777));
		goto out;
	}
	n = read(fd, text, sizeof(text) - 1);
	if (n <= 0) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s: empty or unreadable", path);
		goto out;
	}
	text[n] = '\0';
	if (strncmp(text, SIGN_SECRET_TAG " ", taglen + 1) != 0) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s: not a tessera secret key",
			    path);
		goto out;
	}
	b64 = text + taglen + 1;
	end = b64 + strcspn(b64, " \t\r\n");
	if (sodium_base642bin(seed, sizeof(seed), b64, (size_t)(end - b64), NULL, &binlen, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    binlen != sizeof(seed) || crypto_sign_seed_keypair(out->pub.pk, out->sk, seed) != 0) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s: malformed secret key", path);
		goto out;
	}
	sign_key_id(&out->pub);
	rc = 0;
out:
	sodium_memzero(text, sizeof(text));
	sodium_memzero(seed, sizeof(seed));
	close(fd);
	return rc;
}

int sign_keyring_add(struct sign_keyring *ring, const struct sign_pubkey *pub, struct tsr_err *err)
{
	if (sign_keyring_find(ring, pub->id) != NULL)
		return 0;
	if (ring->n == SIGN_KEYRING_MAX)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "more than %d trusted keys",
				   SIGN_KEYRING_MAX);
	ring->keys[ring->n++] = *pub;
	return 0;
}

const struct sign_pubkey *sign_keyring_find(const struct sign_keyring *ring, const char *id)
{
	for (size_t i = 0; i < ring->n; i++)
		if (strcmp(ring->keys[i].id, id) == 0)
			return &ring->keys[i];
	return NULL;
}

/* prefix || 0 || msg in one malloc'd buffer; the caller frees it. */
static uint8_t *sign_framed(enum sign_domain domain, const uint8_t *msg, size_t len, size_t *outlen)
{
	const char *prefix = sign_domains[domain];
	size_t plen = strlen(prefix) + 1;
	uint8_t *buf;

	if (len > SIGN_MESSAGE_MAX)
		return NULL;
	buf = malloc(plen + len + 1);
	if (buf == NULL)
		return NULL;
	memcpy(buf, prefix, plen);
	if (len > 0)
		memcpy(buf + plen, msg, len);
	*outlen = plen + len;
	return buf;
}

int sign_message(const struct sign_key *key, enum sign_domain domain, const uint8_t *msg,
		 size_t len, uint8_t sig[crypto_sign_BYTES], struct tsr_err *err)
{
	size_t flen;
	uint8_t *framed = sign_framed(domain, msg, len, &flen);
	int rc;

	if (framed == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
				   "message too large to sign");
	rc = crypto_sign_detached(sig, NULL, framed, flen, key->sk);
	free(framed);
	if (rc != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "signing failed");
	return 0;
}

int sign_verify(const struct sign_pubkey *pub, enum sign_domain domain, const uint8_t *msg,
		size_t len, const uint8_t *sig, size_t siglen)
{
	size_t flen;
	uint8_t *framed;
	int rc;

	if (siglen != crypto_sign_BYTES)
		return -1;
	framed = sign_framed(domain, msg, len, &flen);
	if (framed == NULL)
		return -1;
	rc = crypto_sign_verify_detached(sig, framed, flen, pub->pk);
	free(framed);
	return rc == 0 ? 0 : -1;
}
