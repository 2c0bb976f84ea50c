/*
 * test_cli_complete: what `tessera __complete` offers, on a command table
 * of its own: commands and flags by prefix, the values of --state and
 * --output (after the flag, after -o, after "--flag="), values skipped
 * when finding the command, nothing after an unknown command or for
 * operands, and a failed write reported.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "check_main.h"
#include "cli_complete.h"

static const struct option test_globals[] = {
	CLI_GLOBAL_OPTIONS,
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static const struct option test_list_options[] = {
	CLI_GLOBAL_OPTIONS,
	{ "state", required_argument, NULL, 'S' },
	{ "wide-ish", no_argument, NULL, 'w' },
	{ "output", required_argument, NULL, 'o' },
	{ NULL, 0, NULL, 0 },
};

static const struct option test_no_options[] = { CLI_GLOBAL_OPTIONS, { NULL, 0, NULL, 0 } };

static const struct cli_command test_commands[] = {
	{ "spawn", NULL, test_no_options, CLI_NO_SHORTS, "" },
	{ "spokes", NULL, test_no_options, CLI_NO_SHORTS, "" },
	{ "list", NULL, test_list_options, CLI_LIST_SHORTS, "" },
};

#define STATES "spawning\nrunning\ncompleted\nfailed\nkilled\n"

/* What completing the words (NULL-terminated) prints (malloc'd). */
static char *complete(const char *word, ...)
{
	char *argv[16], *buf = NULL;
	size_t len = 0;
	int argc = 0;
	va_list ap;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	va_start(ap, word);
	for (; word != NULL && argc < 16; word = va_arg(ap, const char *))
		argv[argc++] = (char *)word;
	va_end(ap);
	ck_assert_int_eq(cli_complete(test_commands, 3, test_globals, argc, argv, f), 0);
	ck_assert_int_eq(fclose(f), 0);
	return buf;
}

static void expect(char *got, const char *want)
{
	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(test_complete_commands)
{
	expect(complete(NULL), "spawn\nspokes\nlist\n");
	expect(complete("", NULL), "spawn\nspokes\nlist\n");
	expect(complete("sp", NULL), "spawn\nspokes\n");
	expect(complete("spo", NULL), "spokes\n");
	expect(complete("x", NULL), "");
	/* The values of global flags are no command. */
	expect(complete("--hub", "127.0.0.1:7000", "--json", "l", NULL), "list\n");
	expect(complete("--hub=127.0.0.1:7000", "--", "l", NULL), "list\n");
	/* Once there is a command, words are its operands. */
	expect(complete("spawn", "s", NULL), "");
}
END_TEST

START_TEST(test_complete_flags)
{
	expect(complete("--v", NULL), "--version\n");
	expect(complete("--tls-c", NULL), "--tls-ca\n--tls-cert\n");
	/* A command's flags, the global ones among them. */
	expect(complete("list", "--st", NULL), "--state\n");
	expect(complete("list", "--ti", NULL), "--timeout\n");
	expect(complete("list", "--w", NULL), "--wide-ish\n");
	expect(complete("spawn", "--st", NULL), "");
	/* After "--" there are operands only. */
	expect(complete("list", "--", "--st", NULL), "");
	expect(complete("nope", "--st", NULL), "");
}
END_TEST

START_TEST(test_complete_values)
{
	expect(complete("list", "--state", "", NULL), STATES);
	expect(complete("list", "--state", "r", NULL), "running\n");
	expect(complete("list", "--state=", NULL),
	       "--state=spawning\n--state=running\n--state=completed\n--state=failed\n"
	       "--state=killed\n");
	expect(complete("list", "--state=k", NULL), "--state=killed\n");
	expect(complete("list", "-o", "", NULL), "wide\n");
	expect(complete("list", "--output", "w", NULL), "wide\n");
	expect(complete("list", "--output=", NULL), "--output=wide\n");
	/* A flag without a value takes none: the next word is no value. */
	expect(complete("list", "--wide-ish", "--st", NULL), "--state\n");
	/* A value given is skipped; one attached ("-owide") is no flag awaiting one. */
	expect(complete("list", "-o", "wide", "--s", NULL), "--state\n");
	expect(complete("list", "-owide", "--s", NULL), "--state\n");
	/* Values the CLI does not know: nothing (the shell offers files). */
	expect(complete("--token-file", "", NULL), "");
	expect(complete("list", "--hub", "", NULL), "");
	/* -o is list's only: elsewhere no short flag takes a value. */
	expect(complete("spawn", "-o", "", NULL), "");
}
END_TEST

START_TEST(test_complete_write_failure)
{
	FILE *f = fopen("/dev/full", "w");
	char *argv[] = { "sp" };

	if (f == NULL)
		return; /* no /dev/full here */
	ck_assert_int_eq(cli_complete(test_commands, 3, test_globals, 1, argv, f), -1);
	fclose(f);
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "cli_complete",
		    CHECK_TESTS(test_complete_commands, test_complete_flags, test_complete_values,
				test_complete_write_failure));
	return 0;
}
