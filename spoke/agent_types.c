/* agent_types: parsing and lookup of the configured agent types. */
#include "agent_types.h"

#include "agent_account.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct agent_type *agent_types_get(struct agent_types *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->types[i].name, name) == 0)
			return &t->types[i];
	return NULL;
}

static int agent_types_check_path(const char *path, struct tsr_err *err)
{
	struct stat sb;

	if (path[0] != '/' || strnlen(path, PATH_MAX) == PATH_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent executable must be an absolute path: %s", path);
	if (stat(path, &sb) != 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "agent executable %s: %s",
				   path, strerror(errno));
	if (!S_ISREG(sb.st_mode) || access(path, X_OK) != 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent executable %s: not an executable file", path);
	return 0;
}

int agent_types_add(struct agent_types *t, int argc, char **argv, struct tsr_err *err)
{
	struct agent_type *ty;
	enum agent_task_delivery delivery;
	size_t size = 0, len;
	char *p;

	if (argc < 4 || strcmp(argv[0], "agent") != 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "want: agent NAME stdin|env PATH [ARG...]");
	if (argc - 3 > AGENT_ARGV_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent %s: more than %d arguments", argv[1], AGENT_ARGV_MAX - 1);
	if (!ids_valid_name(argv[1]))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid agent type name");
	if (agent_types_find(t, argv[1]) != NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "agent %s defined twice",
				   argv[1]);
	if (strcmp(argv[2], "stdin") == 0)
		delivery = AGENT_TASK_STDIN;
	else if (strcmp(argv[2], "env") == 0)
		delivery = AGENT_TASK_ENV;
	else
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent %s: task delivery must be stdin or env", argv[1]);
	if (agent_types_check_path(argv[3], err) != 0)
		return -1;
	if (t->n == AGENT_TYPES_MAX)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "more than %d agent types",
				   AGENT_TYPES_MAX);

	for (int i = 3; i < argc; i++)
		size += strnlen(argv[i], CONFIG_LINE_MAX) + 1;
	if (size > CONFIG_LINE_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent %s: longer than a config line", argv[1]);
	ty = &t->types[t->n];
	memset(ty, 0, sizeof(*ty));
	ty->words = malloc(size);
	if (ty->words == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	p = ty->words;
	for (int i = 3; i < argc; i++) {
		len = strlen(argv[i]) + 1;
		memcpy(p, argv[i], len);
		ty->argv[i - 3] = p;
		p += len;
	}
	ty->argv[argc - 3] = NULL;
	memcpy(ty->name, argv[1], strlen(argv[1]) + 1);
	ty->delivery = delivery;
	ty->timeout_max_ms = TSR_AGENT_TIMEOUT_MAX_MS;
	ty->grace_ms = -1;
	t->n++;
	return 0;
}

static int agent_types_ms(const char *s, long long min, long long max, long long *out,
			  const char *what, struct tsr_err *err)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "%s must be a number from %lld to %lld", what, min, max);
	*out = v;
	return 0;
}

int agent_types_limit(struct agent_types *t, int argc, char **argv, struct tsr_err *err)
{
	struct agent_type *ty = NULL;
	long long def = 0, max = 0; /* set by agent_types_ms; GCC cannot see it */

	if (argc >= 2)
		ty = agent_types_get(t, argv[1]);
	if (strcmp(argv[0], "agent-timeout") == 0) {
		if (argc != 4)
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "want: agent-timeout NAME DEFAULT_MS MAX_MS");
		if (ty == NULL)
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "agent-timeout: no agent %s defined above", argv[1]);
		if (agent_types_ms(argv[3], 1, TSR_AGENT_TIMEOUT_MAX_MS, &max, "MAX_MS", err) !=
			    0 ||
		    agent_types_ms(argv[2], 0, max, &def, "DEFAULT_MS", err) != 0)
			return -1;
		ty->timeout_default_ms = (uint32_t)def;
		ty->timeout_max_ms = (uint32_t)max;
		return 0;
	}
	if (strcmp(argv[0], "agent-grace") == 0) {
		if (argc != 3)
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "want: agent-grace NAME MS");
		if (ty == NULL)
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "agent-grace: no agent %s defined above", argv[1]);
		if (agent_types_ms(argv[2], 0, AGENT_GRACE_MAX_MS, &def, "MS", err) != 0)
			return -1;
		ty->grace_ms = (int)def;
		return 0;
	}
	return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "not an agent limit: %s", argv[0]);
}

/* [A-Za-z_][A-Za-z0-9_]*: what a shell, and so most agents, can read back. */
static bool agent_types_env_name(const char *s, size_t len)
{
	if (len == 0 ||
	    !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

/* What the supervisor sets for every agent; a type overriding it would be ambiguous. */
static bool agent_types_env_reserved(const char *s, size_t len)
{
	return (len == 4 && (memcmp(s, "PATH", 4) == 0 || memcmp(s, "HOME", 4) == 0)) ||
	       (len >= 8 && memcmp(s, "TESSERA_", 8) == 0);
}

static int agent_types_env(struct agent_type *ty, const char *kv, struct tsr_err *err)
{
	const char *eq = strchr(kv, '=');
	size_t klen, len;
	char *s;

	if (eq == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent-env %s: want KEY=VALUE", ty->name);
	klen = (size_t)(eq - kv);
	if (!agent_types_env_name(kv, klen))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent-env %s: variable name must be [A-Za-z_][A-Za-z0-9_]*",
				   ty->name);
	if (agent_types_env_reserved(kv, klen))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent-env %s: %.*s is set by the spoke (PATH, HOME, TESSERA_*)",
				   ty->name, (int)klen, kv);
	for (size_t i = 0; i < ty->env_n; i++)
		if (strncmp(ty->env[i], kv, klen + 1) == 0)
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "agent-env %s: %.*s set twice", ty->name, (int)klen, kv);
	if (ty->env_n == AGENT_ENV_MAX)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
				   "agent-env %s: more than %d variables", ty->name, AGENT_ENV_MAX);
	/* Room for all at once, so the NULL end never moves. */
	if (ty->env == NULL) {
		ty->env = calloc(AGENT_ENV_MAX + 1, sizeof(*ty->env));
		if (ty->env == NULL)
			return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	len = strnlen(kv, CONFIG_LINE_MAX) + 1;
	s = malloc(len);
	if (s == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	memcpy(s, kv, len - 1);
	s[len - 1] = '\0';
	ty->env[ty->env_n++] = s;
	return 0;
}

static int agent_types_dir(struct agent_type *ty, const char *dir, struct tsr_err *err)
{
	struct stat sb;

	if (ty->workdir != NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "agent-dir %s set twice",
				   ty->name);
	if (dir[0] != '/' || strnlen(dir, PATH_MAX) == PATH_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent-dir %s: must be an absolute path: %s", ty->name, dir);
	if (stat(dir, &sb) != 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "agent-dir %s: %s: %s",
				   ty->name, dir, strerror(errno));
	if (!S_ISDIR(sb.st_mode) || access(dir, X_OK) != 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent-dir %s: %s: not a searchable directory", ty->name, dir);
	ty->workdir = strdup(dir);
	if (ty->workdir == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	return 0;
}

int agent_types_launch(struct agent_types *t, int argc, char **argv, struct tsr_err *err)
{
	struct agent_type *ty;
	bool env = strcmp(argv[0], "agent-env") == 0;

	if (!env && strcmp(argv[0], "agent-dir") != 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "not an agent launch setting: %s", argv[0]);
	if (argc != 3)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s",
				   env ? "want: agent-env NAME KEY=VALUE"
				       : "want: agent-dir NAME /abs/dir");
	ty = agent_types_get(t, argv[1]);
	if (ty == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "%s: no agent %s defined above", argv[0], argv[1]);
	return env ? agent_types_env(ty, argv[2], err) : agent_types_dir(ty, argv[2], err);
}

int agent_types_account(struct agent_types *t, int argc, char **argv, struct tsr_err *err)
{
	struct agent_type *ty = argc >= 2 ? agent_types_get(t, argv[1]) : NULL;
	bool user = strcmp(argv[0], "agent-user") == 0;

	if (!user && strcmp(argv[0], "agent-rlimit") != 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "not an agent account: %s",
				   argv[0]);
	if (argc != (user ? 3 : 5))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s",
				   user ? "want: agent-user NAME USER[:GROUP]"
					: "want: agent-rlimit NAME nproc|nofile|core SOFT HARD");
	if (ty == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "%s: no agent %s defined above", argv[0], argv[1]);
	if (user)
		return agent_account_user(&ty->spec, &ty->home, ty->name, argv[2], err);
	return agent_account_limit(&ty->spec, ty->name, argv[2], argv[3], argv[4], err);
}

const struct agent_type *agent_types_find(const struct agent_types *t, const char *name)
{
	return agent_types_get((struct agent_types *)t, name);
}

void agent_types_free(struct agent_types *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct agent_type *ty = &t->types[i];

		free(ty->words);
		for (size_t j = 0; j < ty->env_n; j++)
			free(ty->env[j]);
		free(ty->env);
		free(ty->workdir);
		free(ty->home);
	}
	t->n = 0;
}
