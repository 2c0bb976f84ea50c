/*
 * shim_spec: what tessera-shim does to its agent's process between fork
 * and exec that the agent could not undo: the uid and gid it runs as
 * (supplementary groups emptied) and its resource limits. The spoke
 * writes it as the shim's second argument, one word, and the shim parses
 * it back: "-" for nothing, else comma-separated items
 *   user=UID:GID  nproc=SOFT:HARD  nofile=SOFT:HARD  core=SOFT:HARD
 * with "u" for an unlimited SOFT or HARD. The shim itself keeps the
 * spoke's uid, so the agent can neither signal it nor touch what it
 * writes. This file is linked by both, and by nothing else of the shim.
 */
#ifndef TSR_SHIM_SPEC_H
#define TSR_SHIM_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#define SHIM_SPEC_NONE "-"
#define SHIM_SPEC_MAX 256 /* longest spec word, NUL included */

enum shim_limit {
	SHIM_LIMIT_NPROC,
	SHIM_LIMIT_NOFILE,
	SHIM_LIMIT_CORE,
	SHIM_LIMITS,
};

struct shim_spec {
	bool set_user;
	uid_t uid;
	gid_t gid;
	bool set_limit[SHIM_LIMITS];
	struct rlimit limit[SHIM_LIMITS];
};

/* The config and spec name of a limit ("nproc", ...); its RLIMIT_* resource. */
const char *shim_limit_name(enum shim_limit l);
int shim_limit_resource(enum shim_limit l);
/* The limit called name, or -1. */
int shim_limit_find(const char *name);
/* Writes s as one word into buf[SHIM_SPEC_MAX]; it always fits. */
void shim_spec_format(const struct shim_spec *s, char buf[SHIM_SPEC_MAX]);
/* Parses a word shim_spec_format wrote; -1 (errno EINVAL) for anything else. */
int shim_spec_parse(const char *word, struct shim_spec *s);
/*
 * In the agent's process before exec: the limits, then the groups, gid
 * and uid, then the capabilities, each checked. The ambient set is
 * emptied, and an agent that is not root keeps no capability at all:
 * those a spoke is given to switch users and signal agents (ambient
 * CAP_SETUID, CAP_SETGID, CAP_KILL under systemd, say) stay the spoke's.
 * -1 with errno and *what naming the step that failed; the caller must
 * not exec then.
 */
int shim_spec_apply(const struct shim_spec *s, const char **what);

#endif
