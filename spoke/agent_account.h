/*
 * agent_account: whom an agent type runs as and with what limits, from
 * config lines
 *   agent-user NAME USER[:GROUP]              (names or numbers; GROUP
 *                                              defaults to USER's own)
 *   agent-rlimit NAME nproc|nofile|core SOFT HARD   (or "unlimited")
 * which tessera-shim applies between fork and exec (shim_spec.h), and the
 * check at start that the spoke may do so. Without agent-user an agent
 * has the spoke's uid and with it the spoke's authority: its key, its
 * state directory, its Valkey credentials, every other agent; the spoke
 * says so once per such type.
 */
#ifndef TSR_AGENT_ACCOUNT_H
#define TSR_AGENT_ACCOUNT_H

#include "error.h"
#include "shim_spec.h"

struct agent_types;

/*
 * Sets spec's user from an agent-user word of type type_name, and *home
 * (malloc'd, the caller's) to the user's home directory, or "/" for a
 * number with no passwd entry (which then needs its GROUP). uid 0 and
 * the spoke's own uid are refused: they would drop nothing.
 * INVALID_ARGUMENT, RESOURCE_EXHAUSTED.
 */
int agent_account_user(struct shim_spec *spec, char **home, const char *type_name, const char *word,
		       struct tsr_err *err);
/* Sets one of spec's limits from an agent-rlimit line's RESOURCE SOFT HARD. INVALID_ARGUMENT. */
int agent_account_limit(struct shim_spec *spec, const char *type_name, const char *resource,
			const char *soft, const char *hard, struct tsr_err *err);
/*
 * At start: FAILED_PRECONDITION if some type has an agent-user and this
 * process cannot switch uid and gid and signal the result (CAP_SETUID,
 * CAP_SETGID, CAP_KILL), or has a limit above its own hard one without
 * CAP_SYS_RESOURCE; else a warning for each type without agent-user.
 */
int agent_account_check(const struct agent_types *t, struct tsr_err *err);

#endif
