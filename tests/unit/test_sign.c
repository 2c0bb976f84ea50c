/*
 * test_sign: Ed25519 signing with domain separation, key files, and the
 * signed envelopes: everything that should verify does, and every
 * tampered byte, wrong key, wrong audience or stale time is refused.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "envelope.h"
#include "sign.h"

#define NOW 1800000000000LL

static struct sign_key hub, spoke, other;
static struct sign_keyring trusted;

static void setup(void)
{
	struct tsr_err err;

	ck_assert_int_eq(sign_init(&err), 0);
	ck_assert_int_eq(sign_keygen(&hub, &err), 0);
	ck_assert_int_eq(sign_keygen(&spoke, &err), 0);
	ck_assert_int_eq(sign_keygen(&other, &err), 0);
	memset(&trusted, 0, sizeof(trusted));
	ck_assert_int_eq(sign_keyring_add(&trusted, &hub.pub, &err), 0);
}

static void teardown(void)
{
	sign_key_wipe(&hub);
	sign_key_wipe(&spoke);
	sign_key_wipe(&other);
}

START_TEST(test_sign_verify)
{
	const uint8_t msg[] = "spawn an agent";
	uint8_t sig[crypto_sign_BYTES], bad[sizeof(msg)];
	struct tsr_err err;

	ck_assert_int_eq(sign_message(&hub, SIGN_DOMAIN_COMMAND, msg, sizeof(msg), sig, &err), 0);
	ck_assert_int_eq(
		sign_verify(&hub.pub, SIGN_DOMAIN_COMMAND, msg, sizeof(msg), sig, sizeof(sig)), 0);
	/* Every single flipped bit of the message is refused. */
	for (size_t i = 0; i < sizeof(msg) * 8; i++) {
		memcpy(bad, msg, sizeof(msg));
		bad[i / 8] ^= (uint8_t)(1u << (i % 8));
		ck_assert_int_ne(sign_verify(&hub.pub, SIGN_DOMAIN_COMMAND, bad, sizeof(bad), sig,
					     sizeof(sig)),
				 0);
	}
	/* Another key, another domain, a truncated signature: refused. */
	ck_assert_int_ne(
		sign_verify(&other.pub, SIGN_DOMAIN_COMMAND, msg, sizeof(msg), sig, sizeof(sig)),
		0);
	ck_assert_int_ne(
		sign_verify(&hub.pub, SIGN_DOMAIN_REPLY, msg, sizeof(msg), sig, sizeof(sig)), 0);
	ck_assert_int_ne(
		sign_verify(&hub.pub, SIGN_DOMAIN_COMMAND, msg, sizeof(msg), sig, sizeof(sig) - 1),
		0);
	sig[0] ^= 1;
	ck_assert_int_ne(
		sign_verify(&hub.pub, SIGN_DOMAIN_COMMAND, msg, sizeof(msg), sig, sizeof(sig)), 0);
}
END_TEST

START_TEST(test_pubkey_text)
{
	char text[SIGN_PUBKEY_TEXT_MAX + 16];
	struct sign_pubkey back;
	struct tsr_err err;

	ck_assert_int_eq(sign_pubkey_format(&hub.pub, text, sizeof(text)), 0);
	ck_assert_int_eq(sign_pubkey_parse(text, &back, &err), 0);
	ck_assert_mem_eq(back.pk, hub.pub.pk, sizeof(back.pk));
	ck_assert_str_eq(back.id, hub.pub.id);
	ck_assert_int_ne(sign_pubkey_parse("ed25519:AAAA", &back, &err), 0);
	ck_assert_int_ne(sign_pubkey_parse("rsa:AAAA", &back, &err), 0);
	ck_assert_int_ne(sign_pubkey_parse("ed25519:!!!", &back, &err), 0);
}
END_TEST

START_TEST(test_key_files)
{
	char dir[] = "/tmp/tessera-sign.XXXXXX", path[256], pub[300];
	struct sign_key loaded;
	struct tsr_err err;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/k", dir);
	snprintf(pub, sizeof(pub), "%s/k.pub", dir);
	ck_assert_int_eq(sign_key_save(&hub, path, &err), 0);
	ck_assert_int_eq(sign_key_load(path, &loaded, &err), 0);
	ck_assert_mem_eq(loaded.sk, hub.sk, sizeof(loaded.sk));
	ck_assert_str_eq(loaded.pub.id, hub.pub.id);
	/* No overwrite of an existing key. */
	ck_assert_int_ne(sign_key_save(&other, path, &err), 0);
	/* A secret key others can read is refused. */
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_ne(sign_key_load(path, &loaded, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_PERMISSION_DENIED);
	sign_key_wipe(&loaded);
	unlink(path);
	unlink(pub);
	rmdir(dir);
}
END_TEST

/* A sealed AGENT_STATUS command for "spoke-1" issued at `at`. */
static void seal(const struct sign_key *key, const char *audience, int64_t at, uint8_t **buf,
		 size_t *len)
{
	struct envelope_command_args a = {
		.type = TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_STATUS,
		.payload = (const uint8_t *)"",
		.payload_len = 0,
		.audience = audience,
		.command_id = "c0ffee",
		.now_ms = at,
		.ttl_ms = ENVELOPE_TTL_MS,
	};
	struct tsr_err err;

	ck_assert_int_eq(envelope_command_seal(key, &a, buf, len, &err), 0);
}

static grpc_status_code open_status(const uint8_t *buf, size_t len, int64_t now)
{
	Tessera__V1__Command *cmd = NULL;
	struct tsr_err err;

	tsr_err_clear(&err);
	if (envelope_command_open(buf, len, &trusted, "spoke-1", now, &cmd, &err) == 0) {
		ck_assert_int_eq(cmd->type, TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_STATUS);
		ck_assert_str_eq(cmd->command_id, "c0ffee");
		tessera__v1__command__free_unpacked(cmd, NULL);
		return GRPC_STATUS_OK;
	}
	ck_assert_ptr_null(cmd);
	return err.code;
}

START_TEST(test_command_open)
{
	uint8_t *buf;
	size_t len;

	seal(&hub, "spoke-1", NOW, &buf, &len);
	ck_assert_int_eq(open_status(buf, len, NOW), GRPC_STATUS_OK);
	/* Any flipped byte: refused, never accepted. */
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x01;
		ck_assert_int_ne(open_status(buf, len, NOW), GRPC_STATUS_OK);
		buf[i] ^= 0x01;
	}
	/* Truncated: malformed. */
	ck_assert_int_ne(open_status(buf, len / 2, NOW), GRPC_STATUS_OK);
	/* Too old, or from the future. */
	ck_assert_int_eq(open_status(buf, len, NOW + ENVELOPE_TTL_MS + ENVELOPE_SKEW_MS + 1),
			 GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_int_eq(open_status(buf, len, NOW - ENVELOPE_SKEW_MS - 1),
			 GRPC_STATUS_PERMISSION_DENIED);
	free(buf);

	seal(&other, "spoke-1", NOW, &buf, &len);
	ck_assert_int_eq(open_status(buf, len, NOW), GRPC_STATUS_PERMISSION_DENIED);
	free(buf);

	seal(&hub, "spoke-2", NOW, &buf, &len);
	ck_assert_int_eq(open_status(buf, len, NOW), GRPC_STATUS_PERMISSION_DENIED);
	free(buf);

	ck_assert_int_eq(open_status((const uint8_t *)"\xff\xff\xff", 3, NOW),
			 GRPC_STATUS_INVALID_ARGUMENT);
}
END_TEST

/* The bound on a command's size, and on how long its nonce is kept. */
START_TEST(test_command_bounds)
{
	static uint8_t big[ENVELOPE_COMMAND_MAX + 1];
	Tessera__V1__Command *cmd = NULL;
	struct tsr_err err;
	uint8_t *buf;
	size_t len;

	ck_assert_int_eq(open_status(big, sizeof(big), NOW), GRPC_STATUS_RESOURCE_EXHAUSTED);
	seal(&hub, "spoke-1", NOW, &buf, &len);
	ck_assert_int_eq(envelope_command_open(buf, len, &trusted, "spoke-1", NOW, &cmd, &err), 0);
	/* Kept until the command would fail its window: expiry plus skew. */
	ck_assert_int_eq(envelope_command_replay_ms(cmd, NOW),
			 ENVELOPE_TTL_MS + ENVELOPE_SKEW_MS + 1);
	ck_assert_int_eq(envelope_command_replay_ms(cmd, NOW + 10 * ENVELOPE_TTL_MS), 1);
	ck_assert_int_eq(envelope_command_replay_ms(cmd, NOW - 100 * ENVELOPE_TTL_MS),
			 ENVELOPE_WINDOW_MAX_MS + 2 * ENVELOPE_SKEW_MS);
	tessera__v1__command__free_unpacked(cmd, NULL);
	free(buf);
}
END_TEST

START_TEST(test_reply_and_event)
{
	Tessera__V1__Reply reply = TESSERA__V1__REPLY__INIT, *got = NULL;
	Tessera__V1__Event ev = TESSERA__V1__EVENT__INIT, *gotev = NULL;
	uint8_t *buf;
	size_t len;
	struct tsr_err err;

	reply.command_id = "c0ffee";
	reply.spoke_id = "spoke-1";
	ck_assert_int_eq(envelope_reply_seal(&spoke, &reply, &buf, &len, &err), 0);
	ck_assert_int_eq(envelope_reply_open(buf, len, &spoke.pub, "spoke-1", "c0ffee", &got, &err),
			 0);
	tessera__v1__reply__free_unpacked(got, NULL);
	/* Wrong key, another command, another spoke, tampered: refused. */
	ck_assert_int_ne(envelope_reply_open(buf, len, &other.pub, "spoke-1", "c0ffee", &got, &err),
			 0);
	ck_assert_int_ne(envelope_reply_open(buf, len, &spoke.pub, "spoke-1", "beef", &got, &err),
			 0);
	ck_assert_int_ne(envelope_reply_open(buf, len, &spoke.pub, "spoke-2", "c0ffee", &got, &err),
			 0);
	buf[len / 2] ^= 0x40;
	ck_assert_int_ne(envelope_reply_open(buf, len, &spoke.pub, "spoke-1", "c0ffee", &got, &err),
			 0);
	free(buf);

	ev.position = "1-0";
	ev.type = "agent.running";
	ev.spoke_id = "spoke-1";
	ck_assert_int_eq(envelope_event_seal(&spoke, &ev, &buf, &len, &err), 0);
	ck_assert_int_eq(envelope_event_open(buf, len, &spoke.pub, "spoke-1", &gotev, &err), 0);
	ck_assert_str_eq(gotev->type, "agent.running");
	tessera__v1__event__free_unpacked(gotev, NULL);
	ck_assert_int_ne(envelope_event_open(buf, len, &other.pub, "spoke-1", &gotev, &err), 0);
	/* A spoke's reply key cannot pass an event off as a command. */
	ck_assert_int_ne(envelope_reply_open(buf, len, &spoke.pub, "spoke-1", "c0ffee", &got, &err),
			 0);
	free(buf);
}
END_TEST

int test_suite(SRunner *sr)
{
	TCase *tc;

	tc = check_suite(sr, "sign",
			 CHECK_TESTS(test_sign_verify, test_pubkey_text, test_key_files,
				     test_command_open, test_command_bounds, test_reply_and_event));
	tcase_add_checked_fixture(tc, setup, teardown);
	return 0;
}
