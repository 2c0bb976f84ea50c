/*
 * agent_commands: the handlers of AGENT_SPAWN, AGENT_STATUS, AGENT_KILL
 * and AGENT_LIST. Each takes the command's payload bytes (untrusted in
 * shape even though signed), validates every field, and returns the
 * reply payload packed in a malloc'd buffer, or -1 with err set.
 * Loop thread only.
 */
#ifndef TSR_AGENT_COMMANDS_H
#define TSR_AGENT_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

struct spoke;

/*
 * agent_cmd_spawn or agent_cmd_kill_once could not record its command's
 * nonce: refuse the command, sign nothing.
 */
#define AGENT_CMD_REFUSED (-2)

/*
 * Records nonce (unless NULL: the caller has) in the same atomic step as
 * the new agent, or on its own when the spawn writes nothing: its write
 * is the spawn's first, so a spawn pays one fsync fewer. A replay, or
 * Valkey out of reach, is AGENT_CMD_REFUSED with err set, as execute
 * refuses a command whose nonce it cannot record.
 */
int agent_cmd_spawn(struct spoke *sp, const struct store_nonce *nonce, const uint8_t *payload,
		    size_t len, uint8_t **out, size_t *outlen, struct tsr_err *err);
/*
 * One command of a batch (agent_cmd_spawn_many, agent_cmd_kill_many): its
 * arguments, and what agent_cmd_spawn or agent_cmd_kill_once returns.
 */
struct agent_batch_cmd {
	const struct store_nonce *nonce; /* borrowed, as payload */
	const uint8_t *payload;
	size_t len;
	int rc;	      /* 0, -1 or AGENT_CMD_REFUSED */
	uint8_t *out; /* the reply payload, the caller's to free */
	size_t outlen;
	struct tsr_err err;
};
/* agent_cmd_spawn_many or agent_cmd_kill_many. */
typedef void (*agent_many_fn)(struct spoke *sp, struct agent_batch_cmd *cmds, size_t n);
/*
 * The start of a batch of n commands: every outcome -1 until set, and a
 * zeroed array of n items of size bytes (free it), or NULL with every
 * outcome RESOURCE_EXHAUSTED.
 */
void *agent_batch_start(struct agent_batch_cmd *cmds, size_t n, size_t size);
/* many for one command alone: its outcome as agent_cmd_spawn returns it. */
int agent_batch_one(agent_many_fn many, struct spoke *sp, const struct store_nonce *nonce,
		    const uint8_t *payload, size_t len, uint8_t **out, size_t *outlen,
		    struct tsr_err *err);
#define AGENT_SPAWNS_MAX STORE_CREATES_MAX /* in one batch */
/*
 * agent_cmd_spawn for n (1..AGENT_SPAWNS_MAX) commands at once: their
 * agents are recorded in one write, so that Valkey syncs them together.
 * Each command's outcome is its own, as if it had come alone.
 */
void agent_cmd_spawn_many(struct spoke *sp, struct agent_batch_cmd *cmds, size_t n);
int agent_cmd_status(struct spoke *sp, const uint8_t *payload, size_t len, uint8_t **out,
		     size_t *outlen, struct tsr_err *err);
int agent_cmd_kill(struct spoke *sp, const uint8_t *payload, size_t len, uint8_t **out,
		   size_t *outlen, struct tsr_err *err);
/*
 * agent_cmd_kill that records nonce (unless NULL: the caller has) with
 * its kill mark, in the same atomic step, or on its own when the kill
 * writes nothing else: a kill pays one fsync fewer before its signal. The
 * nonce is found new before the supervisor claims the agent, so a replay
 * changes nothing. A replay, or Valkey out of reach, is AGENT_CMD_REFUSED
 * with err set, as for agent_cmd_spawn.
 */
int agent_cmd_kill_once(struct spoke *sp, const struct store_nonce *nonce, const uint8_t *payload,
			size_t len, uint8_t **out, size_t *outlen, struct tsr_err *err);
#define AGENT_KILLS_MAX STORE_KILLS_MAX /* in one batch */
/*
 * agent_cmd_kill_once for n (1..AGENT_KILLS_MAX) commands at once: their
 * agents are read in one round trip and their kill marks recorded in one
 * write, so that Valkey syncs them together. Each command's outcome is
 * its own, as if it had come alone; a kill of an agent that an earlier
 * one of the batch names comes after it.
 */
void agent_cmd_kill_many(struct spoke *sp, struct agent_batch_cmd *cmds, size_t n);
/* Shared by the handlers (agent_commands.c, agent_spawn.c, agent_kill.c). */
/* The agent's record as Valkey has it now, packed into *out (malloc'd). */
int agent_pack_current(struct spoke *sp, const char *agent_id, uint8_t **out, size_t *outlen,
		       struct tsr_err *err);
/* A failure to record a command's nonce: what store_nonce_claim fails with. */
bool agent_nonce_failure(const struct tsr_err *err);
/*
 * Records nonce (if any) on its own, for a command that writes nothing
 * else, so that its replay is refused too: 0, or AGENT_CMD_REFUSED with
 * err saying why it could not be recorded.
 */
int agent_nonce_alone(struct spoke *sp, const struct store_nonce *nonce, struct tsr_err *err);
/*
 * A command refused before it wrote anything: its nonce recorded alone,
 * err keeping why it was refused unless the nonce cannot be recorded.
 * -1, or AGENT_CMD_REFUSED.
 */
int agent_refused(struct spoke *sp, const struct store_nonce *nonce, struct tsr_err *err);
/* The SIGTERM-to-SIGKILL grace of an agent of type type_name (may be unknown now). */
int agent_grace_ms(const struct spoke *sp, const char *type_name);
/* A well-formed id of an agent of this spoke: INVALID_ARGUMENT, NOT_FOUND otherwise. */
int agent_check_id(struct spoke *sp, const char *agent_id, struct tsr_err *err);
int agent_cmd_list(struct spoke *sp, const uint8_t *payload, size_t len, uint8_t **out,
		   size_t *outlen, struct tsr_err *err);

#endif
