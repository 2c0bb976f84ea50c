/*
 * cli: the tessera command line client of the Hub API. The global flags
 * (--hub, --json, --timeout, and --token, --token-file, --tls-ca,
 * --tls-cert, --tls-key, --tls-name, each also from the environment or
 * the config file) are accepted
 * before or after the command. The CLI speaks TLS when it has a CA to
 * verify the hub with, plaintext otherwise;
 * each command parses its own arguments and returns the process's exit
 * status: CLI_EXIT_OK, CLI_EXIT_FAIL (a gRPC error, printed as
 * "tessera: NAME: details"), or CLI_EXIT_USAGE. Each command's flags are
 * one option array, which it parses with and which the command table
 * (cli_main.c) hands to shell completion (cli_complete.h).
 */
#ifndef TSR_HUB_CLI_H
#define TSR_HUB_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

#define CLI_HUB_DEFAULT "127.0.0.1:7000"
#define CLI_TIMEOUT_DEFAULT_S 10
#define CLI_TIMEOUT_MAX_S 86400

struct cli { /* strings borrowed from argv, the environment or the config file */
	const char *hub;
	bool json;
	int64_t timeout_ms;		/* per call */
	const char *token, *token_file; /* NULL: none; token wins */
	const char *tls_ca;		/* NULL: plaintext */
	const char *tls_cert, *tls_key; /* client certificate (mutual TLS) */
	const char *tls_name; /* expected in the server's certificate; NULL: ADDR's host */
};

/* Long-option codes of the global flags, past any character. */
enum {
	CLI_OPT_HUB = 256,
	CLI_OPT_JSON,
	CLI_OPT_TIMEOUT,
	CLI_OPT_TOKEN,
	CLI_OPT_TOKEN_FILE,
	CLI_OPT_TLS_CA,
	CLI_OPT_TLS_CERT,
	CLI_OPT_TLS_KEY,
	CLI_OPT_TLS_NAME,
	CLI_OPT_FIRST_FREE
};

#define CLI_GLOBAL_OPTIONS                                                     \
	{ "hub", required_argument, NULL, CLI_OPT_HUB },                       \
		{ "json", no_argument, NULL, CLI_OPT_JSON },                   \
		{ "timeout", required_argument, NULL, CLI_OPT_TIMEOUT },       \
		{ "token", required_argument, NULL, CLI_OPT_TOKEN },           \
		{ "token-file", required_argument, NULL, CLI_OPT_TOKEN_FILE }, \
		{ "tls-ca", required_argument, NULL, CLI_OPT_TLS_CA },         \
		{ "tls-cert", required_argument, NULL, CLI_OPT_TLS_CERT },     \
		{ "tls-key", required_argument, NULL, CLI_OPT_TLS_KEY },       \
	{                                                                      \
		"tls-name", required_argument, NULL, CLI_OPT_TLS_NAME          \
	}

/* The global flags alone: the options of a command that has none of its own. */
extern const struct option cli_global_options[];
/* The options of the commands that have flags of their own. */
extern const struct option cli_spawn_options[];
extern const struct option cli_kill_options[];
extern const struct option cli_list_options[];
extern const struct option cli_watch_options[];
extern const struct option cli_logs_options[];
extern const struct option cli_health_options[];
extern const struct option cli_drain_options[];
/* getopt's short options, after the ':' that makes a missing value ':'. */
#define CLI_NO_SHORTS ":"
#define CLI_LIST_SHORTS ":o:"  /* -o: --output */
#define CLI_LOGS_SHORTS ":fn:" /* -f: --follow, -n: --tail */

/* One entry of the command table: tessera NAME ... runs fn. */
struct cli_command {
	const char *name;
	int (*fn)(struct cli *c, int argc, char **argv);
	const struct option *options; /* its flags, CLI_GLOBAL_OPTIONS among them */
	const char *shorts;	      /* CLI_NO_SHORTS or its own */
	const char *usage;
};

/*
 * Runs getopt_long over argv (argv[0] is the command) with shorts and
 * longopts, which include CLI_GLOBAL_OPTIONS; global flags are applied to
 * c, others returned as getopt_long returns them. '?' means a usage error
 * (already reported).
 */
int cli_getopt(struct cli *c, int argc, char **argv, const char *shorts,
	       const struct option *longopts);
/* Prints "tessera: NAME: message" on stderr; returns CLI_EXIT_FAIL. */
int cli_fail(const struct tsr_err *err);
/* Prints the command's usage line on stderr; returns CLI_EXIT_USAGE. */
int cli_usage(const char *command);
/* Sleeps ms milliseconds, through signals: the pause between a --wait's polls. */
void cli_sleep_ms(int64_t ms);

int cli_spawn(struct cli *c, int argc, char **argv);
int cli_get(struct cli *c, int argc, char **argv);
int cli_kill(struct cli *c, int argc, char **argv);
/* Prints an agent's output as it is, even with --json; -f follows it to the agent's end. */
int cli_logs(struct cli *c, int argc, char **argv);
int cli_list(struct cli *c, int argc, char **argv);
int cli_watch(struct cli *c, int argc, char **argv);
int cli_spokes(struct cli *c, int argc, char **argv);
/* DrainSpoke, and with --wait ListSpokes until the spoke runs no agent; UndrainSpoke. */
int cli_drain(struct cli *c, int argc, char **argv);
int cli_undrain(struct cli *c, int argc, char **argv);
/* grpc.health.v1 Check of the hub, or of any daemon at ADDR. */
int cli_health(struct cli *c, int argc, char **argv);
int cli_keygen(struct cli *c, int argc, char **argv);
int cli_token_hash(struct cli *c, int argc, char **argv);
int cli_token_new(struct cli *c, int argc, char **argv);
/* One line of f (its newline dropped) into buf; INVALID_ARGUMENT if empty
 * or longer than buflen - 2 (room for the newline). buf may hold a secret:
 * the caller wipes it. */
int cli_read_secret(FILE *f, const char *what, char *buf, size_t buflen, struct tsr_err *err);

#endif
