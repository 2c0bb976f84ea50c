/*
 * execute: the command router. A refused envelope is a gRPC error (the
 * caller is not trusted with an answer), and so is a replayed one: the
 * nonce is recorded in Valkey before the payload is looked at (AGENT_SPAWN
 * and AGENT_KILL record it in their first write instead, saving an fsync:
 * see agent_commands.h), and a command whose nonce cannot be recorded is
 * refused. A failed command is a signed reply carrying the status, so the
 * hub can prove which spoke said no. AGENT_SPAWN and AGENT_KILL go to
 * agent_batches, which carries out those that arrive together at once.
 */
#include "execute.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agent_batches.h"
#include "agent_commands.h"
#include "clock.h"
#include "envelope.h"
#include "log.h"
#include "protocol.h"
#include "read_nonces.h"
#include "spoke.h"
#include "spoke_info.h"
#include "spoke_metrics.h"
#include "supervisor.h"

/* Every nonce an envelope can carry is recordable for as long as it must be. */
_Static_assert(ENVELOPE_NONCE_BYTES <= STORE_NONCE_MAX, "a nonce must fit the store");
_Static_assert(ENVELOPE_WINDOW_MAX_MS + 2 * ENVELOPE_SKEW_MS <= STORE_NONCE_TTL_MAX_MS,
	       "a nonce must be kept until its command would be refused anyway");

typedef int (*command_fn)(struct spoke *sp, const uint8_t *payload, size_t len, uint8_t **out,
			  size_t *outlen, struct tsr_err *err);

static const struct {
	Tessera__V1__CommandType type;
	command_fn fn;
} execute_routes[] = {
	{ TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_STATUS, agent_cmd_status },
	{ TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_LIST, agent_cmd_list },
	{ TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_SPOKE_INFO, spoke_cmd_info },
	{ TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_SPOKE_DRAIN, spoke_cmd_drain },
};

/*
 * NULL for AGENT_SPAWN and AGENT_KILL (agent_batches takes them),
 * EVENTS_STREAM (StreamEvents takes it) and for types it does not know.
 */
static command_fn execute_route(Tessera__V1__CommandType type)
{
	for (size_t i = 0; i < sizeof(execute_routes) / sizeof(execute_routes[0]); i++)
		if (execute_routes[i].type == type)
			return execute_routes[i].fn;
	return NULL;
}

/*
 * Records cmd's nonce, or refuses a replay: in memory for a command that
 * only reads (read_nonces.h: no fsync for a read), in Valkey for the rest
 * and for a read the memory has no room for.
 */
static int execute_claim(struct spoke *sp, const Tessera__V1__Command *cmd, int64_t now,
			 struct tsr_err *err)
{
	int64_t ttl = envelope_command_replay_ms(cmd, now);
	/*
	 * SPOKE_INFO reads too, but the hub's poll of it is how it learns that
	 * this spoke cannot serve while Valkey is away: it keeps its nonce there.
	 */
	bool read = cmd->type == TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_STATUS ||
		    cmd->type == TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_LIST;

	if (read && sp->read_nonces != NULL) {
		if (read_nonces_claim(sp->read_nonces, cmd->nonce.data, cmd->nonce.len, now, ttl,
				      err) == 0)
			return 0;
		if (err->code != GRPC_STATUS_RESOURCE_EXHAUSTED)
			return -1;
		log_warn("%s; this one goes to Valkey", err->msg);
		tsr_err_clear(err);
	}
	return store_nonce_claim(sp->store, cmd->nonce.data, cmd->nonce.len, ttl, err);
}

/* A command that failed, in a line that carries the agent it names, if it names one. */
static void execute_log_failure(const Tessera__V1__Command *cmd, const struct tsr_err *err)
{
	Tessera__V1__StatusCommand *status_cmd = NULL;
	Tessera__V1__KillCommand *kill_cmd = NULL;
	const char *agent = NULL;

	/* Unpacked again: failures are rare, and the handlers keep their signature. */
	if (cmd->type == TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_STATUS)
		status_cmd = tessera__v1__status_command__unpack(NULL, cmd->payload.len,
								 cmd->payload.data);
	else if (cmd->type == TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_KILL)
		kill_cmd = tessera__v1__kill_command__unpack(NULL, cmd->payload.len,
							     cmd->payload.data);
	if (status_cmd != NULL)
		agent = status_cmd->agent_id;
	else if (kill_cmd != NULL)
		agent = kill_cmd->agent_id;
	log_agent_tag(LOG_LEVEL_INFO, agent != NULL && agent[0] != '\0' ? agent : NULL, "%s %s: %s",
		      protocol_command_name(cmd->type), cmd->command_id, err->msg);
	if (status_cmd != NULL)
		tessera__v1__status_command__free_unpacked(status_cmd, NULL);
	if (kill_cmd != NULL)
		tessera__v1__kill_command__free_unpacked(kill_cmd, NULL);
}

void execute_answer(struct spoke *sp, struct rpc_call *call, const Tessera__V1__Command *cmd,
		    const uint8_t *payload, size_t payload_len, struct tsr_err *err)
{
	Tessera__V1__Reply reply = TESSERA__V1__REPLY__INIT;
	uint8_t *sealed = NULL;
	size_t sealed_len = 0;

	reply.command_id = cmd->command_id;
	reply.spoke_id = sp->cfg.id;
	reply.status = err->code;
	reply.message = err->msg;
	reply.payload.data = (uint8_t *)payload;
	reply.payload.len = payload_len;
	reply.issued_at_ms = clock_wall_ms();
	reply.running_agents = (int32_t)supervisor_count(sp->sv);
	reply.max_agents = sp->cfg.max_agents;
	reply.draining = sp->draining;
	if (err->code != GRPC_STATUS_OK)
		execute_log_failure(cmd, err);
	spoke_metrics_command(sp->metrics, cmd->type, err->code);
	if (envelope_reply_seal(&sp->key, &reply, &sealed, &sealed_len, err) != 0)
		rpc_call_fail(call, err);
	else
		rpc_call_reply(call, sealed, sealed_len);
	free(sealed);
}

void execute_refuse(struct spoke *sp, struct rpc_call *call, const Tessera__V1__Command *cmd,
		    const struct tsr_err *err)
{
	log_warn("refused a command: %s", err->msg);
	spoke_metrics_command(sp->metrics,
			      cmd != NULL ? cmd->type
					  : TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_UNSPECIFIED,
			      err->code);
	rpc_call_fail(call, err);
}

void execute_handle(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	struct spoke *sp = ctx;
	Tessera__V1__Command *cmd = NULL;
	struct tsr_err err;
	uint8_t *payload = NULL;
	size_t payload_len = 0;
	int64_t now = clock_wall_ms();
	command_fn fn;

	tsr_err_clear(&err);
	if (envelope_command_open(req, len, &sp->cfg.trusted, sp->cfg.id, now, &cmd, &err) != 0) {
		execute_refuse(sp, call, NULL, &err);
		return;
	}
	if (cmd->type == TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_SPAWN ||
	    cmd->type == TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_KILL) {
		agent_batches_add(sp, call, cmd, now);
		return;
	}
	if (execute_claim(sp, cmd, now, &err) != 0) {
		execute_refuse(sp, call, cmd, &err);
		goto out;
	}
	fn = execute_route(cmd->type);
	if (fn == NULL)
		tsr_err_set(&err, GRPC_STATUS_UNIMPLEMENTED,
			    "Execute does not take command type %d", (int)cmd->type);
	else
		fn(sp, cmd->payload.data, cmd->payload.len, &payload, &payload_len, &err);
	execute_answer(sp, call, cmd, payload, payload_len, &err);
out:
	free(payload);
	tessera__v1__command__free_unpacked(cmd, NULL);
}
