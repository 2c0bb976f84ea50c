/*
 * ids: the shapes of names that cross the network (spoke ids, agent ids,
 * agent type names, request ids) and the making of fresh agent ids.
 * An agent id is "<spoke id>.<24 hex digits>", so any hub can route it.
 * Labels (a spoke's in the hub config, an agent's own, and selectors of
 * either) share one shape, checked here for hub, spoke and CLI alike.
 */
#ifndef TSR_IDS_H
#define TSR_IDS_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "protocol.h"

struct tsr_label { /* borrowed strings */
	const char *key;
	const char *value;
};

/* [A-Za-z0-9_-], 1..TSR_NAME_MAX characters. */
bool ids_valid_name(const char *s);
/* "<valid name>.<TSR_AGENT_ID_HEX lowercase hex>" */
bool ids_valid_agent_id(const char *s);
/* Writes the spoke part of a valid agent id into out (TSR_NAME_MAX + 1). */
int ids_agent_spoke(const char *agent_id, char *out, size_t outlen);
/* 1..TSR_LABEL_VALUE_MAX printable bytes (0x21-0x7e). */
bool ids_valid_label_value(const char *s);
/*
 * INVALID_ARGUMENT, naming what one label is ("spoke label", "agent label",
 * "selector label"), unless at most TSR_LABELS_MAX labels, each key a
 * valid name, each value valid, no key twice.
 */
int ids_check_labels(const struct tsr_label *labels, size_t n, const char *what,
		     struct tsr_err *err);
/* A fresh random agent id for spoke_id; out holds TSR_AGENT_ID_MAX + 1. */
int ids_new_agent_id(const char *spoke_id, char *out, size_t outlen);

#endif
