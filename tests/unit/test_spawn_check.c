/*
 * test_spawn_check: the one check of a spawn's fields that the hub runs on
 * users' requests and the spoke on commands: what it accepts at the limits,
 * and every field it refuses, with INVALID_ARGUMENT naming that field.
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

	for (size_t i = 0; i < TSR_LABELS_MAX; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
		labels[i] = (struct tsr_label){ keys[i], value };
	}
	ck_assert_int_eq(spawn_check(&(struct spawn_fields){ "t", "", "", 0, NULL, 0 }, &err), 0);
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
