/*
 * ids: the shapes of names that cross the network (spoke ids, agent ids,
 * agent type names, request ids) and the making of fresh agent ids.
 * An agent id is "<spoke id>.<24 hex digits>", so any hub can route it.
 */
#ifndef TSR_IDS_H
#define TSR_IDS_H

#include <stdbool.h>
#include <stddef.h>

#define TSR_NAME_MAX 64			/* spoke ids, type names, request ids */
#define TSR_AGENT_ID_HEX 24
#define TSR_AGENT_ID_MAX (TSR_NAME_MAX + 1 + TSR_AGENT_ID_HEX)

/* [A-Za-z0-9_-], 1..TSR_NAME_MAX characters. */
bool ids_valid_name(const char *s);
/* "<valid name>.<TSR_AGENT_ID_HEX lowercase hex>" */
bool ids_valid_agent_id(const char *s);
/* Writes the spoke part of a valid agent id into out (TSR_NAME_MAX + 1). */
int ids_agent_spoke(const char *agent_id, char *out, size_t outlen);
/* A fresh random agent id for spoke_id; out holds TSR_AGENT_ID_MAX + 1. */
int ids_new_agent_id(const char *spoke_id, char *out, size_t outlen);

#endif
