/* daemon_args: getopt_long over the daemons' few options. */
#include "daemon_args.h"

#include <getopt.h>
#include <stdio.h>

static void daemon_usage(const char *name, FILE *f)
{
	fprintf(f, "usage: %s --config FILE [--log-level debug|info|warn|error]\n", name);
}

int daemon_args_parse(const char *name, int argc, char **argv, struct daemon_args *out)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	out->config = NULL;
	out->level = LOG_LEVEL_INFO;
	while ((opt = getopt_long(argc, argv, "c:l:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			out->config = optarg;
			break;
		case 'l':
			if (log_level_parse(optarg, &out->level) != 0) {
				daemon_usage(name, stderr);
				return 2;
			}
			break;
		case 'h':
			daemon_usage(name, stdout);
			return 0;
		default:
			daemon_usage(name, stderr);
			return 2;
		}
	}
	if (out->config == NULL || optind != argc) {
		daemon_usage(name, stderr);
		return 2;
	}
	return -1;
}
