/* daemon_args: getopt_long over the daemons' few options. */
#include "daemon_args.h"

#include <getopt.h>
#include <stdio.h>

#include "version.h"

static void daemon_usage(const char *name, FILE *f)
{
	fprintf(f,
		"usage: %s [--config FILE] [--set 'KEYWORD WORD...']... "
		"[--log-level debug|info|warn|error] [--log-format text|json] [--help] "
		"[--version]\n",
		name);
}

int daemon_args_parse(const char *name, int argc, char **argv, struct daemon_args *out)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "set", required_argument, NULL, 's' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "log-format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	out->config = NULL;
	out->nsets = 0;
	out->level = LOG_LEVEL_INFO;
	out->format = LOG_FORMAT_TEXT;
	out->format_given = false;
	while ((opt = getopt_long(argc, argv, "c:s:l:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			out->config = optarg;
			break;
		case 's':
			if (out->nsets == CONFIG_SETS_MAX) {
				fprintf(stderr, "%s: more than %d --set\n", name, CONFIG_SETS_MAX);
				return 2;
			}
			out->sets[out->nsets++] = optarg;
			break;
		case 'l':
			if (log_level_parse(optarg, &out->level) != 0) {
				daemon_usage(name, stderr);
				return 2;
			}
			break;
		case 'f':
			if (log_format_parse(optarg, &out->format) != 0) {
				daemon_usage(name, stderr);
				return 2;
			}
			out->format_given = true;
			break;
		case 'h':
			daemon_usage(name, stdout);
			return 0;
		case 'V':
			printf("%s %s\n", name, TSR_VERSION);
			return 0;
		default:
			daemon_usage(name, stderr);
			return 2;
		}
	}
	if (optind != argc) {
		daemon_usage(name, stderr);
		return 2;
	}
	return -1;
}
