/*
 * test_cli_table: tessera list's table: newest first across spokes
 * whatever order the hub listed them in (ties by id), the columns of the
 * default and the wide table aligned, cells made safe, the wide LABELS
 * cut to a terminal's width only, and the bound on rows.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "cli_table.h"

#define T0 1700000000000LL /* 2023-11-14T22:13:20.000Z */

/* An agent of spoke-S that ended as said (code >= 0: exit code; < 0: signal -code). */
static void agent_init(Tessera__V1__Agent *a, const char *id, const char *spoke, int64_t created,
		       int code)
{
	tessera__v1__agent__init(a);
	a->id = (char *)id;
	a->spoke_id = (char *)spoke;
	a->type = "sleep";
	a->state = TESSERA__V1__AGENT_STATE__AGENT_STATE_COMPLETED;
	a->created_at_ms = created;
	a->started_at_ms = created + 5;
	a->pid = 4242;
	if (code >= 0) {
		a->end_case = TESSERA__V1__AGENT__END_EXIT_CODE;
		a->exit_code = code;
	} else {
		a->end_case = TESSERA__V1__AGENT__END_SIGNAL;
		a->signal = -code;
	}
}

/* What t prints with columns (malloc'd). */
static char *table_text(const struct cli_table *t, int columns)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	cli_table_print(t, f, columns);
	ck_assert_int_eq(fclose(f), 0);
	return buf;
}

/* The hub lists spoke-1's agents, then spoke-2's, each newest first. */
START_TEST(test_table_newest_first)
{
	Tessera__V1__Agent a[4];
	struct cli_table t;
	struct tsr_err err;
	char *got;

	agent_init(&a[0], "spoke-1.b2", "spoke-1", T0 + 2000, 0);
	agent_init(&a[1], "spoke-1.b1", "spoke-1", T0, 1);
	agent_init(&a[2], "spoke-2.a3", "spoke-2", T0 + 3000, -9);
	/* The same millisecond as spoke-1.b1: the greater id first. */
	agent_init(&a[3], "spoke-2.a1", "spoke-2", T0, 0);
	a[3].state = TESSERA__V1__AGENT_STATE__AGENT_STATE_SPAWNING;
	a[3].end_case = TESSERA__V1__AGENT__END__NOT_SET;
	a[3].started_at_ms = 0;
	cli_table_init(&t, 10, false);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(cli_table_add(&t, &a[i], &err), 0);
	cli_table_sort(&t);
	got = table_text(&t, 0);
	ck_assert_str_eq(
		got, "ID          STATE      TYPE   SPOKE    EXIT   STARTED\n"
		     "spoke-2.a3  completed  sleep  spoke-2  sig 9  2023-11-14T22:13:23.005Z\n"
		     "spoke-1.b2  completed  sleep  spoke-1  0      2023-11-14T22:13:22.005Z\n"
		     "spoke-2.a1  spawning   sleep  spoke-2  -      -\n"
		     "spoke-1.b1  completed  sleep  spoke-1  1      2023-11-14T22:13:20.005Z\n");
	free(got);
	cli_table_free(&t);
}
END_TEST

/* --output wide: CREATED, PID and LABELS too; "-" where there is none. */
START_TEST(test_table_wide)
{
	Tessera__V1__Agent a[2];
	Tessera__V1__Agent__LabelsEntry l[2], *lp[2] = { &l[0], &l[1] };
	struct cli_table t;
	struct tsr_err err;
	char *got;

	agent_init(&a[0], "spoke-1.aa", "spoke-1", T0, 0);
	agent_init(&a[1], "spoke-1.bb", "spoke-1", T0 + 1000, -15);
	a[0].pid = 0;
	for (int i = 0; i < 2; i++)
		tessera__v1__agent__labels_entry__init(&l[i]);
	l[0].key = "team";
	l[0].value = "red";
	l[1].key = "zone";
	l[1].value = "eu";
	a[1].labels = lp;
	a[1].n_labels = 2;
	/* What a terminal would act on is no part of a cell. */
	a[1].type = "sl\teep";
	cli_table_init(&t, 10, true);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(cli_table_add(&t, &a[i], &err), 0);
	cli_table_sort(&t);
	got = table_text(&t, 0);
	ck_assert_str_eq(
		got, "ID          STATE      TYPE    SPOKE    EXIT    STARTED                   "
		     "CREATED                   PID   LABELS\n"
		     "spoke-1.bb  completed  sl?eep  spoke-1  sig 15  2023-11-14T22:13:21.005Z  "
		     "2023-11-14T22:13:21.000Z  4242  team=red,zone=eu\n"
		     "spoke-1.aa  completed  sleep   spoke-1  0       2023-11-14T22:13:20.005Z  "
		     "2023-11-14T22:13:20.000Z  -     -\n");
	free(got);
	/* On a terminal of 120 columns the labels take what is left: 120 - 106 - 3. */
	got = table_text(&t, 120);
	ck_assert_ptr_nonnull(strstr(got, "  4242  team=red,zo...\n"));
	free(got);
	cli_table_free(&t);
}
END_TEST

/* No more rows than max; an empty table is its header alone. */
START_TEST(test_table_bounds)
{
	Tessera__V1__Agent a;
	struct cli_table t;
	struct tsr_err err;
	char *got;

	cli_table_init(&t, 2, false);
	got = table_text(&t, 0);
	ck_assert_str_eq(got, "ID  STATE  TYPE  SPOKE  EXIT  STARTED\n");
	free(got);
	agent_init(&a, "spoke-1.aa", "spoke-1", T0, 0);
	ck_assert_int_eq(cli_table_add(&t, &a, &err), 0);
	ck_assert_int_eq(cli_table_add(&t, &a, &err), 0);
	ck_assert_int_eq(cli_table_add(&t, &a, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
	ck_assert_uint_eq(t.n, 2);
	cli_table_free(&t);
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "cli_table",
		    CHECK_TESTS(test_table_newest_first, test_table_wide, test_table_bounds));
	return 0;
}
