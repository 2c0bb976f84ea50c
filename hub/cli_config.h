/*
 * cli_config: the tessera command's own defaults file, $TESSERA_CONFIG or
 * else ~/.config/tessera/cli.conf, in the daemons' line format (see
 * config.h): "hub ADDR", "token-file PATH", "tls-ca PATH", "tls-cert PATH",
 * "tls-key PATH", "tls-name NAME". What it says fills only what neither a flag nor the
 * environment gave: flags > environment > file > built-in default.
 */
#ifndef TSR_HUB_CLI_CONFIG_H
#define TSR_HUB_CLI_CONFIG_H

#include <stdbool.h>

#include "cli.h"
#include "error.h"

#define CLI_CONFIG_PATH_MAX 4096

struct cli_config { /* each malloc'd; NULL: the file does not say */
	char *hub;
	char *token_file;
	char *tls_ca, *tls_cert, *tls_key, *tls_name;
};

/*
 * Reads path into cf (zeroed by the caller). A missing file is an error
 * only when must_exist: the default file is optional, a named one is not.
 * On error cf may hold part of the file; cli_config_free it either way.
 */
int cli_config_load(struct cli_config *cf, const char *path, bool must_exist, struct tsr_err *err);
/* Fills what c does not have yet from cf; cf must outlive c's use. */
void cli_config_apply(const struct cli_config *cf, struct cli *c);
void cli_config_free(struct cli_config *cf);
/*
 * The file to read: $TESSERA_CONFIG (*must_exist set), else
 * $HOME/.config/tessera/cli.conf; "" without HOME. INVALID_ARGUMENT if it
 * does not fit in len.
 */
int cli_config_path(char *buf, size_t len, bool *must_exist, struct tsr_err *err);

#endif
