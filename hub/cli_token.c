/*
 * cli_token: tessera token-new NAME and tessera token-hash. token-new
 * prints a fresh random token (for the user) and its config line (for the
 * hub); token-hash reads a token on stdin, never argv where other users
 * could see it, and prints the hash a "token NAME HASH" line takes.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_json.h"
#include "cli_print.h"
#include "ids.h"
#include "token.h"

int cli_read_secret(FILE *f, const char *what, char *buf, size_t buflen, struct tsr_err *err)
{
	size_t len;

	if (fgets(buf, (int)buflen, f) == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "no %s to read", what);
	len = strlen(buf);
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	else if (!feof(f))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "%s longer than %zu characters", what, buflen - 2);
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	if (len == 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "empty %s", what);
	return 0;
}

/* Prints text (and text2 unless key2 is NULL) a line each, or with --json
 * as one object under key (and key2). */
static int cli_token_print(struct cli *c, const char *key, const char *text, const char *key2,
			   const char *text2, struct tsr_err *err)
{
	struct json j;

	if (!c->json) {
		printf("%s\n", text);
		if (key2 != NULL)
			printf("%s\n", text2);
		return 0;
	}
	json_init(&j);
	json_object_begin(&j);
	json_key(&j, key);
	json_string(&j, text);
	if (key2 != NULL) {
		json_key(&j, key2);
		json_string(&j, text2);
	}
	json_object_end(&j);
	return cli_json_print(&j, err);
}

int cli_token_hash(struct cli *c, int argc, char **argv)
{
	char token[TOKEN_MAX + 2], text[TOKEN_HASH_TEXT_MAX]; /* token: and newline */
	struct token_hash h;
	struct tsr_err err;
	int rc = CLI_EXIT_FAIL;

	if (cli_getopt(c, argc, argv, CLI_NO_SHORTS, cli_global_options) != -1 ||
	    argc - optind != 0)
		return cli_usage("token-hash");
	if (sodium_init() < 0) {
		tsr_err_set(&err, GRPC_STATUS_INTERNAL, "libsodium failed to initialise");
		goto out;
	}
	if (cli_read_secret(stdin, "token", token, sizeof(token), &err) != 0 ||
	    token_hash(token, strlen(token), &h, &err) != 0)
		goto out;
	token_hash_format(&h, text);
	if (cli_token_print(c, "hash", text, NULL, NULL, &err) != 0)
		goto out;
	rc = CLI_EXIT_OK;
out:
	if (rc != CLI_EXIT_OK)
		cli_fail(&err);
	sodium_memzero(token, sizeof(token));
	return rc;
}

int cli_token_new(struct cli *c, int argc, char **argv)
{
	char token[TOKEN_NEW_TEXT_MAX], text[TOKEN_HASH_TEXT_MAX];
	char line[TSR_NAME_MAX + TOKEN_HASH_TEXT_MAX + 16];
	struct token_hash h;
	struct tsr_err err;
	int rc = CLI_EXIT_FAIL;

	if (cli_getopt(c, argc, argv, CLI_NO_SHORTS, cli_global_options) != -1 ||
	    argc - optind != 1)
		return cli_usage("token-new");
	if (!ids_valid_name(argv[optind])) {
		tsr_err_set(&err, GRPC_STATUS_INVALID_ARGUMENT,
			    "token name must be 1-%d characters of [A-Za-z0-9_-]", TSR_NAME_MAX);
		goto out;
	}
	if (sodium_init() < 0) {
		tsr_err_set(&err, GRPC_STATUS_INTERNAL, "libsodium failed to initialise");
		goto out;
	}
	token_new(token);
	if (token_hash(token, strlen(token), &h, &err) != 0)
		goto out;
	token_hash_format(&h, text);
	snprintf(line, sizeof(line), "token %s %s", argv[optind], text);
	if (cli_token_print(c, "token", token, "configLine", line, &err) != 0)
		goto out;
	rc = CLI_EXIT_OK;
out:
	if (rc != CLI_EXIT_OK)
		cli_fail(&err);
	sodium_memzero(token, sizeof(token));
	return rc;
}
