/*
 * config: the line format shared by the daemons' configuration files.
 * Each non-blank line not starting with '#' is a keyword followed by
 * words separated by blanks; no quoting. Line length and word count are
 * bounded; whatever exceeds them is an error naming file and line.
 */
#ifndef TSR_CONFIG_H
#define TSR_CONFIG_H

#include <stddef.h>

#include "error.h"

#define CONFIG_LINE_MAX 4096
#define CONFIG_WORDS_MAX 64
#define CONFIG_LINES_MAX 10000

/* Called once per line with argv[0] the keyword; returns 0 or -1 with err set. */
typedef int (*config_line_fn)(void *arg, int argc, char **argv, struct tsr_err *err);

int config_parse_file(const char *path, config_line_fn fn, void *arg, struct tsr_err *err);
/* Splits line (modified in place) into at most max words. Returns count or -1. */
int config_split(char *line, char **argv, int max);

#endif
