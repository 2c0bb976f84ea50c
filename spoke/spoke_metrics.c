/*
 * spoke_metrics: the spoke's families, its table of running agents (slots
 * found by id through id_index), and the hooks the spoke's modules call.
 */
#include "spoke_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "id_index.h"
#include "lifecycle.h"
#include "metrics_http.h"
#include "metrics_process.h"
#include "protocol.h"
#include "status_name.h"
#include "store.h"

enum {
	SM_AGENTS,
	SM_SPAWNS,
	SM_KILLS,
	SM_EXITS,
	SM_SPAWN_TO_RUNNING,
	SM_RUNTIME,
	SM_VALKEY_SECONDS,
	SM_VALKEY_ERRORS,
	SM_STREAMED,
	SM_STREAMS,
	SM_COMMANDS,
	SM_VALKEY_UP,
	SM_DRAINING,
	SM_MAX_AGENTS,
	SM_RECORDED,
	SM_COUNT
};

static const struct metric_desc spoke_metrics_desc[SM_COUNT] = {
	[SM_AGENTS] = { .name = "tessera_spoke_agents",
			.help = "Agents of this spoke by state as recorded (running) and type.",
			.type = METRIC_GAUGE,
			.labels = { "state", "type" } },
	[SM_SPAWNS] = { .name = "tessera_spoke_spawns_total",
			.help = "Spawn commands by agent type and result: ok (running), failed "
				"(its process did not start), refused, error, existing (a retry).",
			.type = METRIC_COUNTER,
			.labels = { "type", "result" } },
	[SM_KILLS] = { .name = "tessera_spoke_kills_total",
		       .help = "Kill commands by result: ok, or the gRPC status that refused them.",
		       .type = METRIC_COUNTER,
		       .labels = { "result" } },
	[SM_EXITS] = { .name = "tessera_spoke_agent_exits_total",
		       .help = "Agents that ran and whose end was recorded, by type and final "
			       "state.",
		       .type = METRIC_COUNTER,
		       .labels = { "type", "state" } },
	[SM_SPAWN_TO_RUNNING] = { .name = "tessera_spoke_spawn_to_running_seconds",
				  .help = "Seconds from a spawn command's arrival to its agent "
					  "recorded running.",
				  .type = METRIC_HISTOGRAM,
				  .buckets = &metrics_buckets_latency },
	[SM_RUNTIME] = { .name = "tessera_spoke_agent_runtime_seconds",
			 .help = "Seconds agents ran, from their start to their recorded end.",
			 .type = METRIC_HISTOGRAM,
			 .labels = { "type" },
			 .buckets = &metrics_buckets_runtime },
	[SM_VALKEY_SECONDS] = { .name = "tessera_spoke_valkey_command_seconds",
				.help = "Seconds each command to Valkey took, by command (event "
					"streams' XREAD waits up to a second for events).",
				.type = METRIC_HISTOGRAM,
				.labels = { "command" },
				.buckets = &metrics_buckets_latency },
	[SM_VALKEY_ERRORS] = { .name = "tessera_spoke_valkey_errors_total",
			       .help = "Valkey commands that failed (connection lost, error "
				       "reply), and failed connects (command \"connect\").",
			       .type = METRIC_COUNTER,
			       .labels = { "command" } },
	[SM_STREAMED] = { .name = "tessera_spoke_events_streamed_total",
			  .help = "Events sent to hubs' streams.",
			  .type = METRIC_COUNTER },
	[SM_STREAMS] = { .name = "tessera_spoke_event_streams",
			 .help = "Event streams open to hubs.",
			 .type = METRIC_GAUGE },
	[SM_COMMANDS] = { .name = "tessera_spoke_commands_total",
			  .help = "Spoke/Execute commands by command type and gRPC status.",
			  .type = METRIC_COUNTER,
			  .labels = { "type", "status" } },
	[SM_VALKEY_UP] = { .name = "tessera_spoke_valkey_up",
			   .help = "1 while the spoke's last check of its Valkey passed, else 0.",
			   .type = METRIC_GAUGE },
	[SM_DRAINING] = { .name = "tessera_spoke_draining",
			  .help = "1 while the spoke drains (takes no new agents), else 0.",
			  .type = METRIC_GAUGE },
	[SM_MAX_AGENTS] = { .name = "tessera_spoke_max_agents",
			    .help = "The spoke's max-agents.",
			    .type = METRIC_GAUGE },
	[SM_RECORDED] = { .name = "tessera_spoke_agents_recorded",
			  .help = "Agents in the spoke's Valkey by state, ended ones until "
				  "retention deletes them; read every second.",
			  .type = METRIC_GAUGE,
			  .labels = { "state" } },
};

/* An agent recorded RUNNING whose end is not recorded yet. */
struct sm_agent {
	char id[TSR_AGENT_ID_MAX + 1];
	const char *type;	       /* a configured type's name, or SPOKE_METRICS_UNKNOWN */
	int64_t started_ms;	       /* wall clock */
	struct metric_series *running; /* its type's running gauge */
};

struct spoke_metrics {
	struct metrics *reg;
	struct metrics_http *http;
	struct metrics_process proc;
	struct metric_family *f[SM_COUNT];
	struct metric_series *spawn_to_running, *streamed, *streams, *valkey_up, *draining;
	const struct agent_types *types; /* borrowed from the config */
	struct sm_agent *agents;	 /* owned, [cap] */
	uint32_t *free_slots;		 /* owned, [cap]: a stack */
	size_t cap, nfree;
	struct id_index ix;
};

static const char *sm_slot_id(const void *ctx, uint32_t slot)
{
	const struct spoke_metrics *sm = ctx;

	return sm->agents[slot].id;
}

static int sm_families(struct spoke_metrics *sm, struct tsr_err *err)
{
	for (int i = 0; i < SM_COUNT; i++)
		if (metrics_add(sm->reg, &spoke_metrics_desc[i], &sm->f[i], err) != 0)
			return -1;
	sm->spawn_to_running = metrics_series(sm->f[SM_SPAWN_TO_RUNNING], NULL);
	sm->streamed = metrics_series(sm->f[SM_STREAMED], NULL);
	sm->streams = metrics_series(sm->f[SM_STREAMS], NULL);
	sm->valkey_up = metrics_series(sm->f[SM_VALKEY_UP], NULL);
	sm->draining = metrics_series(sm->f[SM_DRAINING], NULL);
	return metrics_process_register(sm->reg, &sm->proc, err);
}

/* The table, for twice max-agents: the running ones, and as many ending or adopted. */
static int sm_table(struct spoke_metrics *sm, size_t max_agents, struct tsr_err *err)
{
	sm->cap = 2 * max_agents;
	sm->agents = calloc(sm->cap, sizeof(*sm->agents));
	sm->free_slots = calloc(sm->cap, sizeof(*sm->free_slots));
	if (sm->agents == NULL || sm->free_slots == NULL ||
	    id_index_init(&sm->ix, sm->cap, sm_slot_id, sm) != 0)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	for (size_t i = 0; i < sm->cap; i++)
		sm->free_slots[sm->nfree++] = (uint32_t)(sm->cap - 1 - i);
	return 0;
}

int spoke_metrics_start(const struct spoke_config *cfg, struct spoke_metrics **out,
			struct tsr_err *err)
{
	struct spoke_metrics *sm = NULL;
	int rc = -1;

	*out = NULL;
	if (cfg->metrics_listen[0] == '\0')
		return 0;
	sm = calloc(1, sizeof(*sm));
	if (sm == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	sm->types = &cfg->types;
	if (metrics_new(&sm->reg, err) != 0 || sm_families(sm, err) != 0 ||
	    sm_table(sm, (size_t)cfg->max_agents, err) != 0)
		goto out;
	/* Every type shows, at 0, before its first agent. */
	for (size_t i = 0; i < cfg->types.n; i++)
		metrics_series(sm->f[SM_AGENTS],
			       (const char *const[]){ "running", cfg->types.types[i].name });
	metric_set(metrics_series(sm->f[SM_MAX_AGENTS], NULL), cfg->max_agents);
	store_observe(sm->f[SM_VALKEY_SECONDS], sm->f[SM_VALKEY_ERRORS]);
	if (metrics_http_start(cfg->metrics_listen, sm->reg, &sm->http, err) != 0)
		goto out;
	*out = sm;
	sm = NULL;
	rc = 0;
out:
	spoke_metrics_stop(sm);
	return rc;
}

void spoke_metrics_stop(struct spoke_metrics *sm)
{
	if (sm == NULL)
		return;
	metrics_http_stop(sm->http);
	store_observe(NULL, NULL);
	if (sm->ix.bucket != NULL)
		id_index_free(&sm->ix);
	free(sm->free_slots);
	free(sm->agents);
	metrics_free(sm->reg);
	free(sm);
}

/* A configured type's own name (it outlives every agent), else SPOKE_METRICS_UNKNOWN. */
static const char *sm_type(const struct spoke_metrics *sm, const char *type)
{
	const struct agent_type *t = type != NULL ? agent_types_find(sm->types, type) : NULL;

	return t != NULL ? t->name : SPOKE_METRICS_UNKNOWN;
}

void spoke_metrics_spawn(struct spoke_metrics *sm, const char *type, const char *result)
{
	if (sm != NULL)
		metric_inc(metrics_series(sm->f[SM_SPAWNS],
					  (const char *const[]){ sm_type(sm, type), result }));
}

void spoke_metrics_running(struct spoke_metrics *sm, const char *agent_id, const char *type,
			   int64_t started_ms, int64_t began_ns)
{
	struct sm_agent *a;

	if (sm == NULL)
		return;
	if (began_ns > 0)
		metric_observe(sm->spawn_to_running, (double)(clock_mono_ns() - began_ns) / 1e9);
	if (sm->nfree == 0 || id_index_find(&sm->ix, agent_id) >= 0)
		return;
	a = &sm->agents[sm->free_slots[--sm->nfree]];
	snprintf(a->id, sizeof(a->id), "%s", agent_id);
	a->type = sm_type(sm, type);
	a->started_ms = started_ms;
	a->running = metrics_series(sm->f[SM_AGENTS], (const char *const[]){ "running", a->type });
	metric_add(a->running, 1);
	id_index_add(&sm->ix, (uint32_t)(a - sm->agents));
}

void spoke_metrics_ended(struct spoke_metrics *sm, const char *agent_id,
			 Tessera__V1__AgentState state, int64_t ended_ms)
{
	bool recorded = state != TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED;
	const char *type = SPOKE_METRICS_UNKNOWN;
	struct sm_agent *a;
	int64_t slot;

	if (sm == NULL)
		return;
	slot = id_index_find(&sm->ix, agent_id);
	if (slot >= 0) {
		a = &sm->agents[slot];
		type = a->type;
		metric_add(a->running, -1);
		if (recorded && a->started_ms > 0 && ended_ms >= a->started_ms)
			metric_observe(metrics_series1(sm->f[SM_RUNTIME], type),
				       (double)(ended_ms - a->started_ms) / 1000.0);
		id_index_remove(&sm->ix, agent_id);
		sm->free_slots[sm->nfree++] = (uint32_t)slot;
	}
	if (recorded)
		metric_inc(
			metrics_series(sm->f[SM_EXITS],
				       (const char *const[]){ type, lifecycle_state_name(state) }));
}

void spoke_metrics_kill(struct spoke_metrics *sm, grpc_status_code code)
{
	if (sm != NULL)
		metric_inc(metrics_series1(sm->f[SM_KILLS],
					   code == GRPC_STATUS_OK ? "ok" : status_name(code)));
}

void spoke_metrics_command(struct spoke_metrics *sm, Tessera__V1__CommandType type,
			   grpc_status_code code)
{
	if (sm != NULL)
		metric_inc(metrics_series(
			sm->f[SM_COMMANDS],
			(const char *const[]){ protocol_command_name(type), status_name(code) }));
}

void spoke_metrics_tick(struct spoke_metrics *sm, bool valkey_ok, bool draining)
{
	if (sm == NULL)
		return;
	metric_set(sm->valkey_up, valkey_ok ? 1 : 0);
	metric_set(sm->draining, draining ? 1 : 0);
}

void spoke_metrics_recorded(struct spoke_metrics *sm, const int64_t *counts, size_t n)
{
	const char *name;

	if (sm == NULL)
		return;
	for (size_t s = 1;
	     s < n && (name = lifecycle_state_name((Tessera__V1__AgentState)s)) != NULL; s++)
		metric_set(metrics_series1(sm->f[SM_RECORDED], name), (double)counts[s]);
}

void spoke_metrics_stream(struct spoke_metrics *sm, int delta)
{
	if (sm != NULL)
		metric_add(sm->streams, delta);
}

void spoke_metrics_streamed(struct spoke_metrics *sm, size_t events)
{
	if (sm != NULL)
		metric_add(sm->streamed, (double)events);
}
