/*
 * daemon_args: the command line both daemons share,
 *   NAME --config FILE [--log-level debug|info|warn|error] [--help]
 */
#ifndef TSR_DAEMON_ARGS_H
#define TSR_DAEMON_ARGS_H

#include "log.h"

struct daemon_args {
	const char *config;		/* borrowed from argv */
	enum log_level level;
};

/* -1: run with *out; otherwise the exit code (0 after --help, 2 on misuse). */
int daemon_args_parse(const char *name, int argc, char **argv, struct daemon_args *out);

#endif
