/*
 * agent_types: the kinds of agent a spoke's operator allows, from config
 * lines "agent NAME stdin|env PATH [ARG...]". The network only ever names
 * a type; the executable and its fixed arguments come from here, and so
 * do its limits, from later lines "agent-timeout NAME DEFAULT_MS MAX_MS"
 * (DEFAULT_MS 0: no timeout unless a spawn asks for one) and
 * "agent-grace NAME MS" (SIGTERM-to-SIGKILL grace instead of the spoke's),
 * and how its process starts: "agent-env NAME KEY=VALUE" (repeatable;
 * added to the environment the spoke gives every agent) and
 * "agent-dir NAME /abs/dir" (its working directory), and whom it runs
 * as: "agent-user" and "agent-rlimit" (agent_account.h).
 */
#ifndef TSR_AGENT_TYPES_H
#define TSR_AGENT_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "ids.h"
#include "shim_spec.h"

#define AGENT_TYPES_MAX 64
#define AGENT_ARGV_MAX (CONFIG_WORDS_MAX - 3) /* PATH and ARGs of one line */
#define AGENT_ENV_MAX 32		      /* agent-env lines per type */
#define AGENT_GRACE_MAX_MS (10 * 60 * 1000)   /* longest SIGTERM-to-SIGKILL grace */

enum agent_task_delivery {
	AGENT_TASK_STDIN, /* the task is the child's stdin */
	AGENT_TASK_ENV,	  /* the task is $TESSERA_TASK; stdin is /dev/null */
};

struct agent_type {
	char name[TSR_NAME_MAX + 1];
	enum agent_task_delivery delivery;
	char *words;			/* owned: PATH and ARGs, NUL-separated */
	char *argv[AGENT_ARGV_MAX + 1]; /* into words; argv[0] = PATH; NULL-ended */
	uint32_t timeout_default_ms;	/* for spawns asking none; 0: no timeout */
	uint32_t timeout_max_ms;	/* most a spawn may ask for */
	int grace_ms;			/* -1: the spoke's kill-grace-ms */
	char **env;			/* owned: NULL, or env_n "KEY=VALUE" then NULL */
	size_t env_n;			/* at most AGENT_ENV_MAX */
	char *workdir;			/* owned: absolute; NULL: the spoke's own */
	struct shim_spec spec;		/* user and limits the shim gives the agent */
	char *home;			/* owned: HOME with agent-user; NULL: the spoke's */
};

struct agent_types {
	size_t n;
	struct agent_type types[AGENT_TYPES_MAX];
};

/*
 * Adds the type of one config line split by config_split, argv[0] being
 * "agent" (a config_line_fn's arguments with t for arg). PATH must be
 * absolute and name an executable regular file; names are unique.
 * INVALID_ARGUMENT otherwise, RESOURCE_EXHAUSTED past AGENT_TYPES_MAX.
 */
int agent_types_add(struct agent_types *t, int argc, char **argv, struct tsr_err *err);
/*
 * Applies an "agent-timeout" or "agent-grace" line (argv[0] the keyword)
 * to its type, which an earlier "agent" line must have defined.
 * Without one, a type has no default timeout, accepts up to
 * TSR_AGENT_TIMEOUT_MAX_MS, and uses the spoke's grace. INVALID_ARGUMENT.
 */
int agent_types_limit(struct agent_types *t, int argc, char **argv, struct tsr_err *err);
/*
 * Applies an "agent-env NAME KEY=VALUE" or "agent-dir NAME /abs/dir" line
 * (argv[0] the keyword) to its type, defined by an earlier "agent" line.
 * KEY is [A-Za-z_][A-Za-z0-9_]*, at most once per type, and neither PATH,
 * HOME nor TESSERA_*: the spoke sets those itself. VALUE is one config
 * word (possibly empty). The directory must be absolute and, at load
 * time, an existing searchable directory; at most one per type.
 * INVALID_ARGUMENT, or RESOURCE_EXHAUSTED past AGENT_ENV_MAX or memory.
 */
int agent_types_launch(struct agent_types *t, int argc, char **argv, struct tsr_err *err);
/*
 * Applies an "agent-user NAME USER[:GROUP]" or "agent-rlimit NAME
 * RESOURCE SOFT HARD" line (argv[0] the keyword) to its type, defined by
 * an earlier "agent" line (agent_account.h). INVALID_ARGUMENT.
 */
int agent_types_account(struct agent_types *t, int argc, char **argv, struct tsr_err *err);
/* The type called name, or NULL. */
const struct agent_type *agent_types_find(const struct agent_types *t, const char *name);
/*
 * Frees what agent_types_add and agent_types_launch allocated and empties
 * t (zeroed, or filled by them).
 */
void agent_types_free(struct agent_types *t);

#endif
