/* fault: the crash point chosen by TESSERA_SPOKE_CRASH_AT, if any. */
#include "fault.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define FAULT_NAME_MAX 64

static char fault_chosen[FAULT_NAME_MAX + 1];

void fault_init(void)
{
	const char *v = getenv("TESSERA_SPOKE_CRASH_AT");

	if (v == NULL || v[0] == '\0')
		return;
	snprintf(fault_chosen, sizeof(fault_chosen), "%s", v);
	log_warn("TESSERA_SPOKE_CRASH_AT=%s: this spoke will SIGKILL itself there (tests only)",
		 fault_chosen);
}

void fault_point(const char *name)
{
	if (fault_chosen[0] == '\0' || strcmp(fault_chosen, name) != 0)
		return;
	log_warn("crash point %s reached: SIGKILL", name);
	raise(SIGKILL);
}
