/* config: reading "keyword word..." files line by line. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int config_split(char *line, char **argv, int max)
{
	int argc = 0;
	char *p = line;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			*p++ = '\0';
		if (*p == '\0')
			break;
		if (argc == max)
			return -1;
		argv[argc++] = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			p++;
	}
	return argc;
}

int config_parse_file(const char *path, config_line_fn fn, void *arg, struct tsr_err *err)
{
	char line[CONFIG_LINE_MAX + 2];
	char *argv[CONFIG_WORDS_MAX];
	FILE *f;
	int lineno = 0, argc, rc = -1;

	f = fopen(path, "re");
	if (f == NULL)
		return tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t len = strlen(line);

		if (++lineno > CONFIG_LINES_MAX) {
			tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s: more than %d lines",
				    path, CONFIG_LINES_MAX);
			goto out;
		}
		if (len > CONFIG_LINE_MAX || (len == sizeof(line) - 1 && line[len - 1] != '\n')) {
			tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s:%d: line too long",
				    path, lineno);
			goto out;
		}
		if (line[strspn(line, " \t")] == '#')
			continue;
		argc = config_split(line, argv, CONFIG_WORDS_MAX);
		if (argc < 0) {
			tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s:%d: more than %d words",
				    path, lineno, CONFIG_WORDS_MAX);
			goto out;
		}
		if (argc == 0)
			continue;
		if (fn(arg, argc, argv, err) != 0) {
			char inner[TSR_ERR_MSG_MAX];

			snprintf(inner, sizeof(inner), "%s", err->msg);
			tsr_err_set(err, err->code, "%s:%d: %s", path, lineno, inner);
			goto out;
		}
	}
	if (ferror(f)) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "%s: read error", path);
		goto out;
	}
	rc = 0;
out:
	fclose(f);
	return rc;
}
