/*
 * fault: crash points for tests of recovery. With TESSERA_SPOKE_CRASH_AT
 * set to a point's name in its environment, the spoke SIGKILLs itself
 * when it reaches that point, as a crash or an OOM kill would stop it
 * there. Unset (always, in production), a point costs one comparison.
 * The points are named where they are placed (agent_commands.c).
 */
#ifndef TSR_FAULT_H
#define TSR_FAULT_H

/* Reads TESSERA_SPOKE_CRASH_AT once, at start-up, and says so loudly. */
void fault_init(void);
/* SIGKILLs this process if name is the point chosen. */
void fault_point(const char *name);

#endif
