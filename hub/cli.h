/*
 * cli: the tessera command line client of the Hub API. The global flags
 * (--hub, --json, --timeout) are accepted before or after the command;
 * each command parses its own arguments and returns the process's exit
 * status: CLI_EXIT_OK, CLI_EXIT_FAIL (a gRPC error, printed as
 * "tessera: NAME: details"), or CLI_EXIT_USAGE.
 */
#ifndef TSR_HUB_CLI_H
#define TSR_HUB_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

#define CLI_HUB_DEFAULT "127.0.0.1:7000"
#define CLI_TIMEOUT_DEFAULT_S 10
#define CLI_TIMEOUT_MAX_S 86400

struct cli {
	const char *hub;		/* borrowed from argv or the environment */
	bool json;
	int64_t timeout_ms;		/* per call */
};

/* Long-option codes of the global flags, past any character. */
enum { CLI_OPT_HUB = 256, CLI_OPT_JSON, CLI_OPT_TIMEOUT, CLI_OPT_FIRST_FREE };

#define CLI_GLOBAL_OPTIONS \
	{ "hub", required_argument, NULL, CLI_OPT_HUB }, \
	{ "json", no_argument, NULL, CLI_OPT_JSON }, \
	{ "timeout", required_argument, NULL, CLI_OPT_TIMEOUT }

/*
 * Runs getopt_long over argv (argv[0] is the command) with longopts,
 * which include CLI_GLOBAL_OPTIONS; global flags are applied to c, others
 * returned as getopt_long returns them. '?' means a usage error (already
 * reported).
 */
int cli_getopt(struct cli *c, int argc, char **argv, const struct option *longopts);
/* Prints "tessera: NAME: message" on stderr; returns CLI_EXIT_FAIL. */
int cli_fail(const struct tsr_err *err);
/* Prints the command's usage line on stderr; returns CLI_EXIT_USAGE. */
int cli_usage(const char *command);

int cli_spawn(struct cli *c, int argc, char **argv);
int cli_get(struct cli *c, int argc, char **argv);
int cli_kill(struct cli *c, int argc, char **argv);
int cli_list(struct cli *c, int argc, char **argv);
int cli_watch(struct cli *c, int argc, char **argv);
int cli_spokes(struct cli *c, int argc, char **argv);
int cli_keygen(struct cli *c, int argc, char **argv);

#endif
