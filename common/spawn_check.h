/*
 * spawn_check: the one check of a spawn's fields against the wire
 * contract (common/protocol.h). The hub runs it on a user's SpawnAgent,
 * the spoke on a hub's AGENT_SPAWN command: each at its own trust
 * boundary, so that what lies behind them can assert instead.
 */
#ifndef TSR_SPAWN_CHECK_H
#define TSR_SPAWN_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "ids.h"

struct spawn_fields { /* borrowed strings */
	const char *type;
	const char *task;
	const char *request_id;		/* "": none */
	uint32_t timeout_ms;		/* 0: the type's default */
	const struct tsr_label *labels; /* the first min(nlabels, TSR_LABELS_MAX) */
	size_t nlabels;			/* as many as the request carried */
};

/*
 * INVALID_ARGUMENT, saying which field and why, unless every field is
 * valid. The task, a proto3 string, must be well-formed UTF-8 (utf8.h).
 */
int spawn_check(const struct spawn_fields *f, struct tsr_err *err);

#endif
