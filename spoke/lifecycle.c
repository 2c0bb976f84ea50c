/*
 * lifecycle: the one transition table of agent states and what is derived
 * from it (terminal states, predecessors), plus the states' wire names.
 */
#include "lifecycle.h"

#include <string.h>

#define S_UNSPECIFIED TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED
#define S_SPAWNING TESSERA__V1__AGENT_STATE__AGENT_STATE_SPAWNING
#define S_RUNNING TESSERA__V1__AGENT_STATE__AGENT_STATE_RUNNING
#define S_COMPLETED TESSERA__V1__AGENT_STATE__AGENT_STATE_COMPLETED
#define S_FAILED TESSERA__V1__AGENT_STATE__AGENT_STATE_FAILED
#define S_KILLED TESSERA__V1__AGENT_STATE__AGENT_STATE_KILLED
#define S_COUNT (S_KILLED + 1)

/* [from][to]: true where the transition is legal. */
static const bool lifecycle_table[S_COUNT][S_COUNT] = {
	[S_SPAWNING] = { [S_RUNNING] = true, [S_FAILED] = true, [S_KILLED] = true },
	[S_RUNNING] = { [S_COMPLETED] = true, [S_FAILED] = true, [S_KILLED] = true },
};

static const char *const lifecycle_names[S_COUNT] = {
	[S_UNSPECIFIED] = "unspecified", [S_SPAWNING] = "spawning", [S_RUNNING] = "running",
	[S_COMPLETED] = "completed",	 [S_FAILED] = "failed",	    [S_KILLED] = "killed",
};

_Static_assert(S_COUNT <= LIFECYCLE_STATES_MAX, "LIFECYCLE_STATES_MAX too small");

/* The protobuf enum is an int that may carry any value off the wire. */
static bool lifecycle_real(Tessera__V1__AgentState s)
{
	return s > S_UNSPECIFIED && s < S_COUNT;
}

bool lifecycle_allowed(Tessera__V1__AgentState from, Tessera__V1__AgentState to)
{
	return lifecycle_real(from) && lifecycle_real(to) && lifecycle_table[from][to];
}

bool lifecycle_terminal(Tessera__V1__AgentState s)
{
	if (!lifecycle_real(s))
		return false;
	for (int to = 0; to < S_COUNT; to++)
		if (lifecycle_table[s][to])
			return false;
	return true;
}

size_t lifecycle_predecessors(Tessera__V1__AgentState to, Tessera__V1__AgentState *out, size_t max)
{
	size_t n = 0;

	for (int from = 0; from < S_COUNT; from++) {
		if (!lifecycle_allowed((Tessera__V1__AgentState)from, to))
			continue;
		if (n < max)
			out[n] = (Tessera__V1__AgentState)from;
		n++;
	}
	return n;
}

const char *lifecycle_state_name(Tessera__V1__AgentState s)
{
	if (s < S_UNSPECIFIED || s >= S_COUNT)
		return NULL;
	return lifecycle_names[s];
}

int lifecycle_state_parse(const char *name, Tessera__V1__AgentState *out)
{
	for (int s = 0; s < S_COUNT; s++) {
		if (strcmp(name, lifecycle_names[s]) == 0) {
			*out = (Tessera__V1__AgentState)s;
			return 0;
		}
	}
	return -1;
}
