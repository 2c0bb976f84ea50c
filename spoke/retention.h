/*
 * retention: keeps a spoke's Valkey bounded by deleting ended agents that
 * its agent-retention-ms and agent-retention-count no longer keep
 * (store_agents_prune). Runs on the loop thread, from its tick, in
 * bounded steps, so that a large backlog never stalls the commands.
 */
#ifndef TSR_RETENTION_H
#define TSR_RETENTION_H

#include <stdint.h>

#include "spoke.h"

#define RETENTION_EVERY_MS 1000 /* how often a spoke looks for agents to delete */
#define RETENTION_BATCH 200	/* agents one step deletes at most */
#define RETENTION_STEPS_MAX 5	/* steps one tick makes at most */

/* Deletes what is due, if its time has come (now_mono: clock_mono_ms()). */
void retention_tick(struct spoke *sp, int64_t now_mono);

#endif
