/*
 * test_spawn_check: the one check of a spawn's fields that the hub runs on
 * users' requests and the spoke on commands: what it accepts at the limits,
 * and every field it refuses, with INVALID_ARGUMENT naming that field (a
 * task that is not well-formed UTF-8 among them, naming the first bad byte).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "protocol.h"
#include "spawn_check.h"

static char *filled(size_t n)
{
	char *s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, 'x', n);
	s[n] = '\0';
	return s;
}

static void refused(const struct spawn_fields *f, const char *says)
{
	struct tsr_err err;

	ck_assert_int_eq(spawn_check(f, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_msg(strstr(err.msg, says) != NULL, "\"%s\" does not say \"%s\"", err.msg, says);
}

START_TEST(test_at_the_limits)
{
	struct tsr_label labels[TSR_LABELS_MAX];
	char keys[TSR_LABELS_MAX][8];
	char *task = filled(TSR_TASK_MAX), *name = filled(TSR_NAME_MAX);
	char *value = filled(TSR_LABEL_VALUE_MAX);
	struct tsr_err err;
	static const char *const utf8[] = {
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e \xef\xbf\xbd",
		"\xf4\x8f\xbf\xbf\xed\x9f\xbf\xee\x80\x80",
	};

	for (size_t i = 0; i < TSR_LABELS_MAX; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
		labels[i] = (struct tsr_label){ keys[i], value };
	}
	ck_assert_int_eq(spawn_check(&(struct spawn_fields){ "t", "", "", 0, NULL, 0 }, &err), 0);
	/* Any well-formed UTF-8, to the last byte allowed. */
	for (size_t i = 0; i < sizeof(utf8) / sizeof(utf8[0]); i++)
		ck_assert_int_eq(
			spawn_check(&(struct spawn_fields){ "t", utf8[i], "", 0, NULL, 0 }, &err),
			0);
	for (size_t i = 0; i + 2 <= TSR_TASK_MAX; i += 2)
		memcpy(task + i, "\xc3\xa9", 2);
	ck_assert_int_eq(
		spawn_check(&(struct spawn_fields){ name, task, name, TSR_AGENT_TIMEOUT_MAX_MS,
						    labels, TSR_LABELS_MAX },
			    &err),
		0);
	free(task);
	free(name);
	free(value);
}
END_TEST

START_TEST(test_refusals)
{
	struct tsr_label labels[TSR_LABELS_MAX + 1];
	char *task = filled(TSR_TASK_MAX + 1), *name = filled(TSR_NAME_MAX + 1);
	char *value = filled(TSR_LABEL_VALUE_MAX + 1);

	refused(&(struct spawn_fields){ "", "", "", 0, NULL, 0 }, "type");
	refused(&(struct spawn_fields){ "no spaces", "", "", 0, NULL, 0 }, "type");
	refused(&(struct spawn_fields){ name, "", "", 0, NULL, 0 }, "type");
	refused(&(struct spawn_fields){ "t", task, "", 0, NULL, 0 }, "task");
	/* A proto3 string: ill-formed UTF-8 (overlong, surrogate, cut short) is refused. */
	refused(&(struct spawn_fields){ "t", "\xff", "", 0, NULL, 0 },
		"task is not valid UTF-8 (byte 0xff at offset 0)");
	refused(&(struct spawn_fields){ "t", "fix \xc0\x80 this", "", 0, NULL, 0 },
		"task is not valid UTF-8 (byte 0xc0 at offset 4)");
	refused(&(struct spawn_fields){ "t", "ok \xed\xa0\x80", "", 0, NULL, 0 },
		"task is not valid UTF-8 (byte 0xed at offset 3)");
	refused(&(struct spawn_fields){ "t", "cut \xe2\x82", "", 0, NULL, 0 },
		"task is not valid UTF-8 (byte 0xe2 at offset 4)");
	refused(&(struct spawn_fields){ "t", "", "bad/id", 0, NULL, 0 }, "request_id");
	refused(&(struct spawn_fields){ "t", "", name, 0, NULL, 0 }, "request_id");
	refused(&(struct spawn_fields){ "t", "", "", TSR_AGENT_TIMEOUT_MAX_MS + 1, NULL, 0 },
		"timeout_ms");
	for (size_t i = 0; i <= TSR_LABELS_MAX; i++)
		labels[i] = (struct tsr_label){ "k", "v" };
	refused(&(struct spawn_fields){ "t", "", "", 0, labels, TSR_LABELS_MAX + 1 }, "labels");

	static const struct tsr_label bad[][2] = {
		{ { "bad key", "v" } },	  { { "", "v" } },	    { { "k", "" } },
		{ { "k", "two words" } }, { { "k", "tab\there" } }, { { "k", "v" }, { "k", "w" } },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(&(struct spawn_fields){ "t", "", "", 0, bad[i], bad[i][1].key ? 2 : 1 },
			"agent label");
	labels[0] = (struct tsr_label){ "k", value };
	refused(&(struct spawn_fields){ "t", "", "", 0, labels, 1 }, "agent label");
	free(task);
	free(name);
	free(value);
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "spawn_check", CHECK_TESTS(test_at_the_limits, test_refusals));
	return 0;
}
