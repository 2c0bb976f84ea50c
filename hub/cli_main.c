/*
 * cli_main: the tessera command's entry point: global flags (over the
 * environment, over the config file), --version, the command table, usage
 * lines, the error line every command ends with, and the hidden command
 * that shell completion calls (cli_complete.h), which reads the table.
 */
#include <errno.h>
#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_complete.h"
#include "cli_config.h"
#include "status_name.h"
#include "version.h"

#define CLI_OPT_VERSION 'V'

const struct option cli_global_options[] = { CLI_GLOBAL_OPTIONS, { NULL, 0, NULL, 0 } };

/* Before the command: the global flags, --help and --version. */
static const struct option cli_main_options[] = {
	CLI_GLOBAL_OPTIONS,
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, CLI_OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static const struct cli_command cli_commands[] = {
	{ "spawn", cli_spawn, cli_spawn_options, CLI_NO_SHORTS,
	  "spawn TYPE [TASK|-] [--spoke ID] [--request-id ID] [--label K=V]... [--wait]"
	  " [--agent-timeout SECONDS] [--agent-label K=V]..." },
	{ "get", cli_get, cli_global_options, CLI_NO_SHORTS, "get AGENT_ID" },
	{ "kill", cli_kill, cli_kill_options, CLI_NO_SHORTS, "kill AGENT_ID [--no-wait]" },
	{ "logs", cli_logs, cli_logs_options, CLI_LOGS_SHORTS,
	  "logs AGENT_ID [-f|--follow] [--since-start | -n|--tail N]" },
	{ "list", cli_list, cli_list_options, CLI_LIST_SHORTS,
	  "list [--spoke ID] [--state STATE] [--type TYPE] [--label K=V]... [-o|--output wide]" },
	{ "watch", cli_watch, cli_watch_options, CLI_NO_SHORTS,
	  "watch [--agent ID] [--spoke ID] [--from-start] [--cursor C] [--count N]" },
	{ "spokes", cli_spokes, cli_global_options, CLI_NO_SHORTS, "spokes" },
	{ "drain", cli_drain, cli_drain_options, CLI_NO_SHORTS, "drain SPOKE_ID [--wait]" },
	{ "undrain", cli_undrain, cli_global_options, CLI_NO_SHORTS, "undrain SPOKE_ID" },
	{ "health", cli_health, cli_health_options, CLI_NO_SHORTS,
	  "health [ADDR] [--service NAME]" },
	{ "keygen", cli_keygen, cli_global_options, CLI_NO_SHORTS, "keygen PATH" },
	{ "token-new", cli_token_new, cli_global_options, CLI_NO_SHORTS, "token-new NAME" },
	{ "token-hash", cli_token_hash, cli_global_options, CLI_NO_SHORTS, "token-hash < TOKEN" },
};

#define CLI_NCOMMANDS (sizeof(cli_commands) / sizeof(cli_commands[0]))

static void cli_usage_all(FILE *f)
{
	fprintf(f, "usage: tessera [--hub ADDR] [--json] [--timeout SECONDS]\n"
		   "               [--token TOKEN | --token-file PATH]\n"
		   "               [--tls-ca PATH [--tls-cert PATH --tls-key PATH]\n"
		   "               [--tls-name NAME]] COMMAND ...\n");
	for (size_t i = 0; i < CLI_NCOMMANDS; i++)
		fprintf(f, "       tessera %s\n", cli_commands[i].usage);
	fprintf(f, "       tessera --help | --version\n");
	fprintf(f,
		"--hub, --token* and --tls-* default to the environment ($TESSERA_HUB,\n"
		"$TESSERA_TOKEN, $TESSERA_TOKEN_FILE, $TESSERA_TLS_CA, $TESSERA_TLS_CERT,\n"
		"$TESSERA_TLS_KEY, $TESSERA_TLS_NAME), then to the file $TESSERA_CONFIG or\n"
		"~/.config/tessera/cli.conf (lines \"hub ADDR\", \"token-file PATH\",\n"
		"\"tls-ca PATH\", \"tls-cert PATH\", \"tls-key PATH\", \"tls-name NAME\");\n"
		"ADDR then to %s, SECONDS to %d. With a CA the hub is reached over\n"
		"TLS, without one in plaintext; --tls-name is the name its certificate\n"
		"must carry, if not ADDR's host. health exits 0 only for SERVING.\n"
		"drain --wait returns once the spoke runs no agent, within --timeout.\n",
		CLI_HUB_DEFAULT, CLI_TIMEOUT_DEFAULT_S);
}

/* An environment variable's value, NULL when unset or empty. */
static const char *cli_env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

int cli_usage(const char *command)
{
	for (size_t i = 0; i < CLI_NCOMMANDS; i++) {
		if (strcmp(cli_commands[i].name, command) == 0) {
			fprintf(stderr, "usage: tessera [global flags] %s\n",
				cli_commands[i].usage);
			return CLI_EXIT_USAGE;
		}
	}
	cli_usage_all(stderr);
	return CLI_EXIT_USAGE;
}

int cli_fail(const struct tsr_err *err)
{
	fprintf(stderr, "tessera: %s: %s\n", status_name(err->code), err->msg);
	return CLI_EXIT_FAIL;
}

/* Applies one global flag; -1 if its value is not acceptable. */
static int cli_global(struct cli *c, int opt, const char *arg)
{
	char *end;
	long v;

	switch (opt) {
	case CLI_OPT_HUB:
		if (arg[0] == '\0')
			return -1;
		c->hub = arg;
		return 0;
	case CLI_OPT_JSON:
		c->json = true;
		return 0;
	case CLI_OPT_TIMEOUT:
		v = strtol(arg, &end, 10);
		if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || v < 1 ||
		    v > CLI_TIMEOUT_MAX_S) {
			fprintf(stderr, "tessera: --timeout takes whole seconds from 1 to %d\n",
				CLI_TIMEOUT_MAX_S);
			return -1;
		}
		c->timeout_ms = (int64_t)v * 1000;
		return 0;
	case CLI_OPT_TOKEN:
	case CLI_OPT_TOKEN_FILE:
	case CLI_OPT_TLS_CA:
	case CLI_OPT_TLS_CERT:
	case CLI_OPT_TLS_KEY:
	case CLI_OPT_TLS_NAME:
		if (arg[0] == '\0')
			return -1;
		/* A flag overrides whichever token the environment gave. */
		if (opt == CLI_OPT_TOKEN || opt == CLI_OPT_TOKEN_FILE) {
			c->token = opt == CLI_OPT_TOKEN ? arg : NULL;
			c->token_file = opt == CLI_OPT_TOKEN_FILE ? arg : NULL;
		} else if (opt == CLI_OPT_TLS_CA) {
			c->tls_ca = arg;
		} else if (opt == CLI_OPT_TLS_CERT) {
			c->tls_cert = arg;
		} else if (opt == CLI_OPT_TLS_KEY) {
			c->tls_key = arg;
		} else {
			c->tls_name = arg;
		}
		return 0;
	default:
		return -1;
	}
}

int cli_getopt(struct cli *c, int argc, char **argv, const char *shorts,
	       const struct option *longopts)
{
	int opt;

	for (;;) {
		opt = getopt_long(argc, argv, shorts, longopts, NULL);
		if (opt == ':' || opt == '?') {
			if (opt == ':')
				fprintf(stderr, "tessera: %s needs a value\n", argv[optind - 1]);
			else
				fprintf(stderr, "tessera: unknown option %s\n", argv[optind - 1]);
			return '?';
		}
		if (opt < CLI_OPT_HUB || opt >= CLI_OPT_FIRST_FREE)
			return opt;
		if (cli_global(c, opt, optarg) != 0)
			return '?';
	}
}

/*
 * Ends a command: its output written out (a failure to write it fails the
 * command), then the process, without gRPC's shutdown, which only joins
 * gRPC's threads, about a tenth of a call's wall time: nothing of a
 * command's calls is left in flight once it returns. Sanitizer builds
 * (TSR_CLI_SHUTDOWN) shut gRPC down and return, so that their checks at
 * exit see the CLI's memory.
 */
static int cli_finish(int rc)
{
	if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
		fprintf(stderr, "tessera: cannot write the output: %s\n", strerror(errno));
		rc = CLI_EXIT_FAIL;
	}
#ifdef TSR_CLI_SHUTDOWN
	grpc_shutdown_blocking();
	return rc;
#else
	fflush(stderr);
	_exit(rc);
#endif
}

int main(int argc, char **argv)
{
	struct cli c = {
		.timeout_ms = CLI_TIMEOUT_DEFAULT_S * 1000,
		.hub = cli_env("TESSERA_HUB"),
		.token = cli_env("TESSERA_TOKEN"),
		.token_file = cli_env("TESSERA_TOKEN_FILE"),
		.tls_ca = cli_env("TESSERA_TLS_CA"),
		.tls_cert = cli_env("TESSERA_TLS_CERT"),
		.tls_key = cli_env("TESSERA_TLS_KEY"),
		.tls_name = cli_env("TESSERA_TLS_NAME"),
	};
	struct cli_config cf = { 0 };
	char path[CLI_CONFIG_PATH_MAX];
	struct tsr_err err;
	bool must_exist;
	int opt, cmd, rc = CLI_EXIT_USAGE;

	/* "+": global flags stop at the command, whose own flags follow it. */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:h", cli_main_options, NULL)) != -1) {
		if (opt == 'h') {
			cli_usage_all(stdout);
			rc = CLI_EXIT_OK;
			goto out;
		}
		if (opt == CLI_OPT_VERSION) {
			printf("tessera %s\n", TSR_VERSION);
			rc = CLI_EXIT_OK;
			goto out;
		}
		if (opt == ':' || opt == '?' || cli_global(&c, opt, optarg) != 0) {
			cli_usage_all(stderr);
			goto out;
		}
	}
	cmd = optind;
	if (cmd >= argc) {
		cli_usage_all(stderr);
		goto out;
	}
	/* Before the config file: a broken one must not break a shell's Tab. */
	if (strcmp(argv[cmd], CLI_COMPLETE_COMMAND) == 0) {
		rc = CLI_EXIT_FAIL;
		if (cli_complete(cli_commands, CLI_NCOMMANDS, cli_main_options, argc - cmd - 1,
				 argv + cmd + 1, stdout) == 0)
			rc = CLI_EXIT_OK;
		goto out;
	}
	/* The file only fills what flags and the environment left unset. */
	if (cli_config_path(path, sizeof(path), &must_exist, &err) != 0 ||
	    (path[0] != '\0' && cli_config_load(&cf, path, must_exist, &err) != 0)) {
		rc = cli_fail(&err);
		goto out;
	}
	cli_config_apply(&cf, &c);
	if (c.hub == NULL)
		c.hub = CLI_HUB_DEFAULT;
	for (size_t i = 0; i < CLI_NCOMMANDS; i++) {
		if (strcmp(cli_commands[i].name, argv[cmd]) != 0)
			continue;
		grpc_init();
		optind = 0; /* glibc: restart getopt for the command */
		rc = cli_finish(cli_commands[i].fn(&c, argc - cmd, argv + cmd));
		goto out;
	}
	fprintf(stderr, "tessera: unknown command \"%s\"\n", argv[cmd]);
	cli_usage_all(stderr);
out:
	cli_config_free(&cf);
	return rc;
}
