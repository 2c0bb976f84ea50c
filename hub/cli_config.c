/* cli_config: the CLI's defaults file and where its values go. */
#include "cli_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"

#define CLI_CONFIG_DEFAULT ".config/tessera/cli.conf"

/* The slot a keyword fills; NULL for a keyword the CLI does not know. */
static char **cli_config_slot(struct cli_config *cf, const char *keyword)
{
	if (strcmp(keyword, "hub") == 0)
		return &cf->hub;
	if (strcmp(keyword, "token-file") == 0)
		return &cf->token_file;
	if (strcmp(keyword, "tls-ca") == 0)
		return &cf->tls_ca;
	if (strcmp(keyword, "tls-cert") == 0)
		return &cf->tls_cert;
	if (strcmp(keyword, "tls-key") == 0)
		return &cf->tls_key;
	if (strcmp(keyword, "tls-name") == 0)
		return &cf->tls_name;
	return NULL;
}

static int cli_config_line(void *arg, int argc, char **argv, struct tsr_err *err)
{
	char **slot = cli_config_slot(arg, argv[0]);

	if (slot == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "unknown keyword \"%.64s\" (hub, token-file, tls-ca, "
				   "tls-cert, tls-key, tls-name)",
				   argv[0]);
	if (argc != 2)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s takes one value",
				   argv[0]);
	/* Said twice is a mistake to point at, not something to pick from. */
	if (*slot != NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s given twice", argv[0]);
	*slot = strdup(argv[1]);
	if (*slot == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	return 0;
}

int cli_config_load(struct cli_config *cf, const char *path, bool must_exist, struct tsr_err *err)
{
	struct stat st;

	if (!must_exist && stat(path, &st) != 0 && errno == ENOENT)
		return 0;
	return config_parse_file(path, cli_config_line, cf, err);
}

void cli_config_apply(const struct cli_config *cf, struct cli *c)
{
	if (c->hub == NULL)
		c->hub = cf->hub;
	/* A token from the environment wins over the file's token-file. */
	if (c->token == NULL && c->token_file == NULL)
		c->token_file = cf->token_file;
	if (c->tls_ca == NULL)
		c->tls_ca = cf->tls_ca;
	if (c->tls_cert == NULL)
		c->tls_cert = cf->tls_cert;
	if (c->tls_key == NULL)
		c->tls_key = cf->tls_key;
	if (c->tls_name == NULL)
		c->tls_name = cf->tls_name;
}

void cli_config_free(struct cli_config *cf)
{
	free(cf->hub);
	free(cf->token_file);
	free(cf->tls_ca);
	free(cf->tls_cert);
	free(cf->tls_key);
	free(cf->tls_name);
	memset(cf, 0, sizeof(*cf));
}

int cli_config_path(char *buf, size_t len, bool *must_exist, struct tsr_err *err)
{
	const char *named = getenv("TESSERA_CONFIG"), *home = getenv("HOME");
	int n;

	*must_exist = named != NULL && named[0] != '\0';
	if (*must_exist)
		n = snprintf(buf, len, "%s", named);
	else if (home != NULL && home[0] != '\0')
		n = snprintf(buf, len, "%s/%s", home, CLI_CONFIG_DEFAULT);
	else
		n = snprintf(buf, len, "%s", "");
	if (n < 0 || (size_t)n >= len)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "the CLI config path is longer than %zu bytes", len - 1);
	return 0;
}
