/*
 * spoke_metrics: the spoke's Prometheus metrics and what feeds them (the
 * registry and the HTTP server are common/metrics*.h):
 *
 *   tessera_spoke_agents{state,type}          agents running now, as recorded
 *   tessera_spoke_spawns_total{type,result}   spawn commands by how they ended
 *   tessera_spoke_kills_total{result}         kill commands: ok or a status name
 *   tessera_spoke_agent_exits_total{type,state}  agents that ran, ended: completed,
 *                                             failed, killed
 *   tessera_spoke_spawn_to_running_seconds    from a spawn command to RUNNING recorded
 *   tessera_spoke_agent_runtime_seconds{type} from start to recorded end
 *   tessera_spoke_valkey_command_seconds{command}, tessera_spoke_valkey_errors_total{command}
 *                                             every command to Valkey (store_conn.c)
 *   tessera_spoke_events_streamed_total, tessera_spoke_event_streams
 *                                             events sent to hubs, streams open
 *   tessera_spoke_commands_total{type,status} Execute's commands by type and status
 *   tessera_spoke_agents_recorded{state}      agents in its Valkey by state, every second
 *   tessera_spoke_valkey_up, tessera_spoke_draining, tessera_spoke_max_agents
 *   and process_* (common/metrics_process.h).
 *
 * The running gauge and the runtime come from a table of the agents
 * recorded RUNNING (a spawn, or an adoption at start-up) until their end
 * is recorded, at most twice max-agents of them (an agent beyond that is
 * not counted, and its end counts with type "_unknown"). Loop thread
 * only, but for the stream hooks, which event stream threads call. Every
 * hook does nothing with sm NULL: metrics off, or a spoke a unit test built.
 */
#ifndef TSR_SPOKE_METRICS_H
#define TSR_SPOKE_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "spoke_config.h"
#include "tessera/v1/agent.pb-c.h"
#include "tessera/v1/spoke.pb-c.h"

/* How a spawn command ended: the label "result" of tessera_spoke_spawns_total. */
#define SPOKE_SPAWN_OK "ok"		 /* RUNNING */
#define SPOKE_SPAWN_FAILED "failed"	 /* recorded, but its process did not start: FAILED */
#define SPOKE_SPAWN_REFUSED "refused"	 /* refused before anything was written */
#define SPOKE_SPAWN_ERROR "error"	 /* Valkey (or the nonce) failed: nothing runs */
#define SPOKE_SPAWN_EXISTING "existing"	 /* a retry: its request id names an agent */
#define SPOKE_METRICS_UNKNOWN "_unknown" /* an agent type not configured */

struct spoke_metrics;

/*
 * With a metrics-listen line in cfg: the families, each type's running
 * gauge at 0, the store's hook (store_observe) and the HTTP server;
 * without one, *out is NULL and nothing is counted.
 */
int spoke_metrics_start(const struct spoke_config *cfg, struct spoke_metrics **out,
			struct tsr_err *err);
/* Once no other thread calls a hook: stops the server, takes the store's hook back. */
void spoke_metrics_stop(struct spoke_metrics *sm);

/* A spawn command ended with result (SPOKE_SPAWN_*); type NULL if it named none configured. */
void spoke_metrics_spawn(struct spoke_metrics *sm, const char *type, const char *result);
/*
 * Agent agent_id of type is recorded RUNNING since started_ms (wall);
 * began_ns (clock_mono_ns) is when its spawn command came, or 0 for one
 * adopted at start-up.
 */
void spoke_metrics_running(struct spoke_metrics *sm, const char *agent_id, const char *type,
			   int64_t started_ms, int64_t began_ns);
/*
 * The agent's end is recorded in state (terminal), at ended_ms (wall), or
 * UNSPECIFIED when there was nothing to record (it had ended already).
 */
void spoke_metrics_ended(struct spoke_metrics *sm, const char *agent_id,
			 Tessera__V1__AgentState state, int64_t ended_ms);
void spoke_metrics_kill(struct spoke_metrics *sm, grpc_status_code code);
void spoke_metrics_command(struct spoke_metrics *sm, Tessera__V1__CommandType type,
			   grpc_status_code code);
/* What the loop tick knows: whether Valkey answers and the spoke drains. */
void spoke_metrics_tick(struct spoke_metrics *sm, bool valkey_ok, bool draining);

/* Loop thread: counts[s] agents recorded in state s (an AgentState), for s in 1..n-1. */
void spoke_metrics_recorded(struct spoke_metrics *sm, const int64_t *counts, size_t n);
/* Any thread: an event stream opened (+1) or ended (-1); events sent on one. */
void spoke_metrics_stream(struct spoke_metrics *sm, int delta);
void spoke_metrics_streamed(struct spoke_metrics *sm, size_t events);

#endif
