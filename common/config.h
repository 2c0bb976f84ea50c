/*
 * config: the line format shared by the daemons' configuration files.
 * Each line is a keyword followed by words separated by blanks; no
 * quoting. A '#' at the start of the line or after a blank starts a
 * comment to the end of the line (one inside a word is part of it: a=#1),
 * so a line may end with one, and a line of blanks and comment only is
 * skipped. Line length and word count are bounded; whatever exceeds them
 * is an error naming file and line.
 *
 * Containers configure a daemon without a file: the same lines may also
 * come from an environment variable (newline-separated) and from --set
 * flags, applied after the file in that order (struct config_sources).
 */
#ifndef TSR_CONFIG_H
#define TSR_CONFIG_H

#include <stddef.h>

#include "error.h"

#define CONFIG_LINE_MAX 4096
#define CONFIG_WORDS_MAX 64
#define CONFIG_LINES_MAX 10000

#define CONFIG_SETS_MAX 256	    /* --set flags of one daemon */
#define CONFIG_ENV_MAX (256 * 1024) /* bytes of the environment variable's lines */

/* Called once per line with argv[0] the keyword; returns 0 or -1 with err set. */
typedef int (*config_line_fn)(void *arg, int argc, char **argv, struct tsr_err *err);

struct config_sources {
	const char *path;     /* a file, or NULL */
	const char *env_name; /* a variable of newline-separated lines, or NULL */
	char *const *sets;    /* nsets single lines (--set), borrowed */
	size_t nsets;
};

/*
 * Parses the file, then the variable's lines, then each set line. Errors
 * name the source: the file and line, "$VAR:N", or "--set:N". Without a
 * file, the others must give a line: INVALID_ARGUMENT otherwise.
 */
int config_parse_sources(const struct config_sources *src, config_line_fn fn, void *arg,
			 struct tsr_err *err);
/* What to call src in messages: its file, else its variable, else "--set". */
const char *config_sources_name(const struct config_sources *src);

int config_parse_file(const char *path, config_line_fn fn, void *arg, struct tsr_err *err);
/*
 * Splits line (modified in place) into at most max words, up to a comment.
 * Returns the count or -1.
 */
int config_split(char *line, char **argv, int max);

#endif
