/*
 * spoke: the daemon's shared context, owned by main.c. The loop thread
 * owns `store` and everything else here; other threads (the supervisor's
 * reaper, event streams) touch only what the comments allow.
 */
#ifndef TSR_SPOKE_H
#define TSR_SPOKE_H

#include <stdatomic.h>
#include <stdbool.h>

#include "agent_batches.h"
#include "exits.h"
#include "proc_identity.h"
#include "read_nonces.h"
#include "sign.h"
#include "spoke_config.h"
#include "store.h"
#include "supervisor.h"

struct stream_threads;
struct health;
struct spoke_metrics;

struct spoke {
	struct config_sources config;	    /* read again on SIGHUP */
	struct spoke_config cfg;	    /* read-only once loaded, but for trusted:
					 * replaced on SIGHUP by the loop thread,
					 * its only reader */
	struct sign_key key;		    /* read-only once loaded */
	char boot_id[PROC_BOOT_ID_LEN + 1]; /* this boot's: read-only once read */
	struct proc_pid_ns pid_ns;	    /* its PID namespace: read-only once read */
	struct store *store;		    /* loop thread only */
	struct read_nonces *read_nonces;    /* loop thread only; NULL: all in Valkey */
	struct supervisor *sv;
	struct agent_cgroup cgroup;	/* read-only once opened: the supervisor's */
	struct exits exits;		/* reaper thread in, loop thread out */
	struct stream_threads *streams; /* hub streams: events, output */
	struct health *health;		/* loop thread only */
	struct agent_batches batches;	/* loop thread only */
	/* Each of its hooks says which threads may call it; NULL: no metrics. */
	struct spoke_metrics *metrics;
	int64_t next_health_ms;	   /* monotonic: next Valkey check */
	int64_t next_retention_ms; /* monotonic: next look for agents to delete */
	bool valkey_ok;		   /* loop thread only: its last check passed */
	bool draining;		   /* loop thread only: takes no new agents; Valkey's
				    * copy (store_drain_get), loaded at start-up */
	atomic_bool stopping;
};

#endif
