/* retention: the loop thread's deletion of ended agents past their keep. */
#include "retention.h"

#include "clock.h"
#include "log.h"

_Static_assert(RETENTION_BATCH <= STORE_PRUNE_BATCH_MAX, "a step fits the store's batch");

void retention_tick(struct spoke *sp, int64_t now_mono)
{
	struct store_pruned p = { 0 };
	struct tsr_err err;
	size_t deleted = 0;
	int steps = 0;

	if (now_mono < sp->next_retention_ms)
		return;
	sp->next_retention_ms = now_mono + RETENTION_EVERY_MS;
	do {
		if (store_agents_prune(sp->store, &sp->cfg.retention, clock_wall_ms(),
				       RETENTION_BATCH, &p, &err) != 0) {
			/* Valkey away: the health check says so, once; try again next time. */
			if (err.code != GRPC_STATUS_UNAVAILABLE)
				log_warn("retention: %s", err.msg);
			break;
		}
		deleted += p.deleted;
	} while (p.due > 0 && ++steps < RETENTION_STEPS_MAX);
	/* A backlog goes on at the next tick rather than after a whole period. */
	if (p.due > 0)
		sp->next_retention_ms = now_mono;
	/* Routine at the count bound (one per agent that ends): not worth a line each. */
	if (deleted > 0)
		log_debug("retention: deleted %zu ended agents%s", deleted,
			  p.due > 0 ? ", more to go" : "");
}
