/* config: reading "keyword word..." files line by line. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int config_split(char *line, char **argv, int max)
{
	int argc = 0;
	char *p = line;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			*p++ = '\0';
		/* A word that starts with '#' starts a comment, to the end of the line. */
		if (*p == '\0' || *p == '#')
			break;
		if (argc == max)
			return -1;
		argv[argc++] = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			p++;
	}
	return argc;
}

/* One line, NUL-ended and modifiable; origin and lineno name it in errors. */
static int config_parse_line(char *line, const char *origin, int lineno, config_line_fn fn,
			     void *arg, int *used, struct tsr_err *err)
{
	char *argv[CONFIG_WORDS_MAX];
	char inner[TSR_ERR_MSG_MAX];
	int argc;

	argc = config_split(line, argv, CONFIG_WORDS_MAX);
	if (argc < 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s:%d: more than %d words",
				   origin, lineno, CONFIG_WORDS_MAX);
	if (argc == 0)
		return 0;
	(*used)++;
	if (fn(arg, argc, argv, err) == 0)
		return 0;
	snprintf(inner, sizeof(inner), "%s", err->msg);
	return tsr_err_set(err, err->code, "%s:%d: %s", origin, lineno, inner);
}

static int config_parse_file_counted(const char *path, config_line_fn fn, void *arg, int *used,
				     struct tsr_err *err)
{
	char line[CONFIG_LINE_MAX + 2];
	FILE *f;
	int lineno = 0, rc = -1;

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
			tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s:%d: line too long", path,
				    lineno);
			goto out;
		}
		if (config_parse_line(line, path, lineno, fn, arg, used, err) != 0)
			goto out;
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

int config_parse_file(const char *path, config_line_fn fn, void *arg, struct tsr_err *err)
{
	int used = 0;

	return config_parse_file_counted(path, fn, arg, &used, err);
}

/* The variable's value, line by line, each copied into a bounded buffer. */
static int config_parse_env(const char *name, config_line_fn fn, void *arg, int *used,
			    struct tsr_err *err)
{
	const char *v = getenv(name), *p, *nl;
	char line[CONFIG_LINE_MAX + 1], origin[80];
	int lineno = 0;
	size_t len;

	if (v == NULL)
		return 0;
	snprintf(origin, sizeof(origin), "$%s", name);
	if (strnlen(v, CONFIG_ENV_MAX + 1) > CONFIG_ENV_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s: longer than %d bytes",
				   origin, CONFIG_ENV_MAX);
	for (p = v; *p != '\0'; p = nl != NULL ? nl + 1 : p + len) {
		nl = strchr(p, '\n');
		len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (++lineno > CONFIG_LINES_MAX)
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "%s: more than %d lines", origin, CONFIG_LINES_MAX);
		if (len > CONFIG_LINE_MAX)
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "%s:%d: line too long", origin, lineno);
		memcpy(line, p, len);
		line[len] = '\0';
		if (config_parse_line(line, origin, lineno, fn, arg, used, err) != 0)
			return -1;
		if (nl == NULL)
			break;
	}
	return 0;
}

int config_parse_sources(const struct config_sources *src, config_line_fn fn, void *arg,
			 struct tsr_err *err)
{
	char line[CONFIG_LINE_MAX + 1];
	int used = 0;

	if (src->nsets > CONFIG_SETS_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "more than %d --set lines",
				   CONFIG_SETS_MAX);
	if (src->path != NULL && config_parse_file_counted(src->path, fn, arg, &used, err) != 0)
		return -1;
	if (src->env_name != NULL && config_parse_env(src->env_name, fn, arg, &used, err) != 0)
		return -1;
	for (size_t i = 0; i < src->nsets; i++) {
		if (strnlen(src->sets[i], CONFIG_LINE_MAX + 1) > CONFIG_LINE_MAX ||
		    strchr(src->sets[i], '\n') != NULL)
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "--set:%zu: not one line of at most %d bytes", i + 1,
					   CONFIG_LINE_MAX);
		snprintf(line, sizeof(line), "%s", src->sets[i]);
		if (config_parse_line(line, "--set", (int)i + 1, fn, arg, &used, err) != 0)
			return -1;
	}
	if (used == 0 && src->path == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "no configuration: give --config FILE%s%s, or --set LINE",
				   src->env_name != NULL ? ", $" : "",
				   src->env_name != NULL ? src->env_name : "");
	return 0;
}

const char *config_sources_name(const struct config_sources *src)
{
	if (src->path != NULL)
		return src->path;
	if (src->env_name != NULL && getenv(src->env_name) != NULL)
		return src->env_name;
	return "--set";
}
