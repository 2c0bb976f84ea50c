/*
 * test_command: a request sealed as a signed command for one spoke, and
 * opened as that spoke opens it: its type, payload, audience, issuer,
 * lifetime and fresh command id.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "clock.h"
#include "command.h"
#include "envelope.h"
#include "sign.h"
#include "tessera/v1/spoke.pb-c.h"

#define STATUS TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_STATUS
#define AGENT "s1.0123456789abcdef01234567"

static struct sign_key hub;
static struct sign_keyring trusted;

static void setup(void)
{
	struct tsr_err err;

	memset(&trusted, 0, sizeof(trusted));
	ck_assert_int_eq(sign_keygen(&hub, &err), 0);
	ck_assert_int_eq(sign_keyring_add(&trusted, &hub.pub, &err), 0);
}

static void teardown(void)
{
	sign_key_wipe(&hub);
}

/* An AGENT_STATUS command for AGENT, sealed for spoke s1; its id into id. */
static void seal_status(char *id, uint8_t **buf, size_t *len)
{
	Tessera__V1__StatusCommand req = TESSERA__V1__STATUS_COMMAND__INIT;
	struct tsr_err err;

	req.agent_id = AGENT;
	ck_assert_msg(command_seal(&hub, "s1", STATUS, &req.base, id, COMMAND_ID_LEN + 1, buf, len,
				   &err) == 0,
		      "%s", err.msg);
}

START_TEST(test_sealed)
{
	char id[COMMAND_ID_LEN + 1];
	Tessera__V1__StatusCommand *req;
	Tessera__V1__Command *cmd = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	struct tsr_err err;

	seal_status(id, &buf, &len);
	ck_assert_uint_eq(strlen(id), COMMAND_ID_LEN);
	ck_assert_uint_eq(strspn(id, "0123456789abcdef"), COMMAND_ID_LEN);
	ck_assert_msg(
		envelope_command_open(buf, len, &trusted, "s1", clock_wall_ms(), &cmd, &err) == 0,
		"%s", err.msg);
	ck_assert_int_eq(cmd->type, STATUS);
	ck_assert_str_eq(cmd->audience, "s1");
	ck_assert_str_eq(cmd->command_id, id);
	ck_assert_str_eq(cmd->issuer_key_id, hub.pub.id);
	ck_assert_int_eq(cmd->expires_at_ms - cmd->issued_at_ms, ENVELOPE_TTL_MS);
	req = tessera__v1__status_command__unpack(NULL, cmd->payload.len, cmd->payload.data);
	ck_assert_ptr_nonnull(req);
	ck_assert_str_eq(req->agent_id, AGENT);
	tessera__v1__status_command__free_unpacked(req, NULL);
	tessera__v1__command__free_unpacked(cmd, NULL);

	/* Meant for s1, it is refused by any other spoke. */
	ck_assert_int_ne(
		envelope_command_open(buf, len, &trusted, "s2", clock_wall_ms(), &cmd, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_PERMISSION_DENIED);
	free(buf);
}
END_TEST

START_TEST(test_fresh_ids)
{
	char id[COMMAND_ID_LEN + 1], again[COMMAND_ID_LEN + 1];
	Tessera__V1__StatusCommand req = TESSERA__V1__STATUS_COMMAND__INIT;
	uint8_t *buf = NULL, *buf2 = NULL;
	size_t len = 0, len2 = 0;
	struct tsr_err err;

	seal_status(id, &buf, &len);
	seal_status(again, &buf2, &len2);
	ck_assert_str_ne(id, again);
	free(buf);
	free(buf2);

	/* No room for the id: nothing is sealed. */
	buf = NULL;
	ck_assert_int_ne(
		command_seal(&hub, "s1", STATUS, &req.base, id, COMMAND_ID_LEN, &buf, &len, &err),
		0);
	ck_assert_int_eq(err.code, GRPC_STATUS_INTERNAL);
	ck_assert_ptr_null(buf);
}
END_TEST

int test_suite(SRunner *sr)
{
	TCase *tc;

	tc = check_suite(sr, "command", CHECK_TESTS(test_sealed, test_fresh_ids));
	tcase_add_checked_fixture(tc, setup, teardown);
	return 0;
}
