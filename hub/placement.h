/*
 * placement: which spoke a spawn goes to. The rules, in order:
 *  1. a spawn that names its spoke goes there (api.c; the labels, if any,
 *     must match it);
 *  2. with a request id, a fixed function of that id over the configured
 *     spokes that match the labels, whatever their health and whether
 *     they drain, so that a retried spawn reaches the spoke that
 *     deduplicates it (if that spoke is down the spawn fails UNAVAILABLE
 *     rather than risk a second agent). A draining spoke refuses a request
 *     id it has no agent for; the spawn is then placed again (api.c) with
 *     that spoke among the tried ones, and goes to the next in the id's
 *     order, so that a retry walks the same spokes to the same agent;
 *  3. otherwise the least-loaded matching spoke: connected spokes before
 *     connecting ones (never unreachable, refused, draining or tried
 *     ones); within those, fewest running agents per the last
 *     load poll, spokes whose load is unknown (or older than
 *     PLACEMENT_LOAD_STALE_MS) after every spoke whose load is known, ties
 *     in round-robin order. A spoke at its max-agents is skipped. Each
 *     placement counts one more agent on its spoke until the next poll
 *     replaces the figures, so a burst spreads instead of piling onto the
 *     spoke that was emptiest two seconds ago.
 * A selector matches a spoke that carries every one of its labels.
 * Nothing here touches a channel: health and load are what the loop tick
 * last saw, which keeps this a pure function of the registry.
 */
#ifndef TSR_HUB_PLACEMENT_H
#define TSR_HUB_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "spokes.h"

#define PLACEMENT_LOAD_STALE_MS 10000 /* five missed polls: unknown */

struct placement_label { /* borrowed strings */
	const char *key;
	const char *value;
};

struct placement {
	const char *request_id; /* "" for none */
	const struct placement_label *labels;
	size_t nlabels;
	int64_t now_ms; /* monotonic: ages the load figures */
	/* By spoke index, the spokes that refused this spawn as draining; NULL: none. */
	const bool *tried;
};

/* INVALID_ARGUMENT unless at most TSR_LABELS_MAX labels, each key 1-64
 * characters of [A-Za-z0-9_-], each value 1-64 printable, no key twice. */
int placement_check_labels(const struct placement_label *labels, size_t n, struct tsr_err *err);
/* Whether sp carries every one of the labels. */
bool placement_matches(const struct spoke *sp, const struct placement_label *labels, size_t n);
/* Whether sp's load figures are there and recent enough to place by. */
bool placement_load_known(const struct spoke *sp, int64_t now_ms);
/* "k=v,k2=v2" into buf, truncated to fit: for error messages. */
void placement_labels_text(const struct placement_label *labels, size_t n, char *buf,
			   size_t buflen);
/*
 * Rules 2 and 3. FAILED_PRECONDITION if no spoke matches the labels, or
 * every one that does is draining (or tried), UNAVAILABLE if none of
 * those that are not is reachable (naming a refused one and its reason,
 * if any), RESOURCE_EXHAUSTED if every reachable one is at its max-agents.
 */
int placement_choose(struct spokes *s, const struct placement *p, struct spoke **out,
		     struct tsr_err *err);

#endif
