/*
 * lifecycle: the agent state machine. The transition table lives here and
 * nowhere else; the store asks lifecycle_predecessors() which states may
 * precede a target and hands that list to Valkey, so the server-side
 * script never knows the table.
 */
#ifndef TSR_LIFECYCLE_H
#define TSR_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>

#include "tessera/v1/agent.pb-c.h"

/* Enough room for any predecessor or state list. */
#define LIFECYCLE_STATES_MAX 6

/* Whether an agent in state from may move to state to. */
bool lifecycle_allowed(Tessera__V1__AgentState from, Tessera__V1__AgentState to);
/* A real state with no way out (completed, failed, killed). */
bool lifecycle_terminal(Tessera__V1__AgentState s);
/*
 * Writes into out (at most max) the states from which to may be entered,
 * in enum order, and returns how many there are in total.
 */
size_t lifecycle_predecessors(Tessera__V1__AgentState to, Tessera__V1__AgentState *out, size_t max);
/* "spawning", ..., "killed"; "unspecified" for 0; NULL for anything else. */
const char *lifecycle_state_name(Tessera__V1__AgentState s);
/* The inverse of lifecycle_state_name: 0, or -1 for an unknown name. */
int lifecycle_state_parse(const char *name, Tessera__V1__AgentState *out);

#endif
