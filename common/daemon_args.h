/*
 * daemon_args: the command line both daemons share,
 *   NAME [--config FILE] [--set LINE]... [--log-level debug|info|warn|error]
 *        [--log-format text|json] [--help] [--version]
 * Each --set is one configuration line, applied after the file and the
 * daemon's environment variable (config.h), so a container needs no file.
 * --log-format beats the log-format line, and holds from the first line
 * logged, a refused configuration's included.
 */
#ifndef TSR_DAEMON_ARGS_H
#define TSR_DAEMON_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "log.h"

struct daemon_args {
	const char *config;	     /* borrowed from argv, or NULL */
	char *sets[CONFIG_SETS_MAX]; /* borrowed from argv */
	size_t nsets;
	enum log_level level;
	enum log_format format;
	bool format_given; /* --log-format came */
};

/*
 * -1: run with *out; otherwise the exit code (0 after --help or --version,
 * which prints "NAME VERSION", 2 on misuse).
 */
int daemon_args_parse(const char *name, int argc, char **argv, struct daemon_args *out);

#endif
