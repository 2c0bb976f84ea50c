/*
 * test_cli_config: the CLI's defaults file: its lines, errors naming file
 * and line, which file is read, and that it fills only what neither a
 * flag nor the environment gave.
 */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "cli.h"
#include "cli_config.h"
#include "hub_fixture.h"

/* Loads text as a CLI config file; the error, if any, in err. */
static int cli_config_text(const char *text, struct cli_config *cf, struct tsr_err *err)
{
	char path[64];
	int rc;

	hfx_temp_file(path, sizeof(path), text);
	rc = cli_config_load(cf, path, true, err);
	unlink(path);
	return rc;
}

START_TEST(test_cli_config_lines)
{
	struct cli_config cf = { 0 };
	struct tsr_err err;

	ck_assert_int_eq(cli_config_text("# defaults\nhub 10.0.0.1:7000\n"
					 "token-file /t\ntls-ca /ca\ntls-cert /c\ntls-key /k\n"
					 "tls-name hub.internal\n",
					 &cf, &err),
			 0);
	ck_assert_str_eq(cf.hub, "10.0.0.1:7000");
	ck_assert_str_eq(cf.token_file, "/t");
	ck_assert_str_eq(cf.tls_ca, "/ca");
	ck_assert_str_eq(cf.tls_cert, "/c");
	ck_assert_str_eq(cf.tls_key, "/k");
	ck_assert_str_eq(cf.tls_name, "hub.internal");
	cli_config_free(&cf);

	/* Each error names the file and the line. */
	ck_assert_int_ne(cli_config_text("hub a:1\n\ntoken x\n", &cf, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, ":3: unknown keyword \"token\""));
	cli_config_free(&cf);
	ck_assert_int_ne(cli_config_text("tls-ca /a /b\n", &cf, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, ":1: tls-ca takes one value"));
	cli_config_free(&cf);
	ck_assert_int_ne(cli_config_text("hub a:1\nhub b:2\n", &cf, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, ":2: hub given twice"));
	cli_config_free(&cf);

	/* The default file may be absent; a named one may not. */
	ck_assert_int_eq(cli_config_load(&cf, "/nonexistent/cli.conf", false, &err), 0);
	ck_assert_ptr_null(cf.hub);
	ck_assert_int_ne(cli_config_load(&cf, "/nonexistent/cli.conf", true, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
}
END_TEST

START_TEST(test_cli_config_precedence)
{
	struct cli_config cf = { 0 };
	struct cli c = { 0 };
	struct tsr_err err;

	ck_assert_int_eq(cli_config_text("hub file:1\ntoken-file /file-token\n"
					 "tls-ca /file-ca\ntls-key /file-key\n"
					 "tls-name file.internal\n",
					 &cf, &err),
			 0);
	/* What the environment (or a flag) gave stays; the file fills the rest. */
	c.hub = "env:1";
	c.tls_ca = "/env-ca";
	cli_config_apply(&cf, &c);
	ck_assert_str_eq(c.hub, "env:1");
	ck_assert_str_eq(c.tls_ca, "/env-ca");
	ck_assert_str_eq(c.token_file, "/file-token");
	ck_assert_str_eq(c.tls_key, "/file-key");
	ck_assert_str_eq(c.tls_name, "file.internal");
	ck_assert_ptr_null(c.tls_cert);
	memset(&c, 0, sizeof(c));
	c.tls_name = "env.internal";
	cli_config_apply(&cf, &c);
	ck_assert_str_eq(c.tls_name, "env.internal");

	/* A token from the environment also beats the file's token-file. */
	memset(&c, 0, sizeof(c));
	c.token = "secret";
	cli_config_apply(&cf, &c);
	ck_assert_ptr_null(c.token_file);
	ck_assert_str_eq(c.hub, "file:1");
	cli_config_free(&cf);
}
END_TEST

START_TEST(test_cli_config_path)
{
	struct tsr_err err;
	char path[CLI_CONFIG_PATH_MAX];
	bool must_exist;

	ck_assert_int_eq(setenv("HOME", "/home/u", 1), 0);
	ck_assert_int_eq(unsetenv("TESSERA_CONFIG"), 0);
	ck_assert_int_eq(cli_config_path(path, sizeof(path), &must_exist, &err), 0);
	ck_assert_str_eq(path, "/home/u/.config/tessera/cli.conf");
	ck_assert(!must_exist);
	ck_assert_int_eq(setenv("TESSERA_CONFIG", "/etc/tessera/cli.conf", 1), 0);
	ck_assert_int_eq(cli_config_path(path, sizeof(path), &must_exist, &err), 0);
	ck_assert_str_eq(path, "/etc/tessera/cli.conf");
	ck_assert(must_exist);
	ck_assert_int_ne(cli_config_path(path, 8, &must_exist, &err), 0);
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "cli_config",
		    CHECK_TESTS(test_cli_config_lines, test_cli_config_precedence,
				test_cli_config_path));
	return 0;
}
