/*
 * recovery: at start-up, every agent that Valkey still shows as SPAWNING
 * or RUNNING either is supervised again or gets a true final state, so
 * that none stays non-terminal after the spoke that supervised it is gone:
 *
 *   SPAWNING  No agent code ran: the shim's gate opens only once RUNNING
 *             is recorded, and a gate whose spoke died closes by itself.
 *             FAILED, saying so.
 *   RUNNING   If its shim is provably still the same process (pid, start
 *             time and boot id all recorded and all matching, and its PID
 *             namespace, where recorded, the spoke's) and is this agent's
 *             shim (the configured program, given this agent's exit file:
 *             a record naming any other process is forged or corrupt, and
 *             ends FAILED saying so), it is adopted:
 *             kill, timeout and completion work as before, with the exact
 *             exit status, which the shim records in a file. Otherwise
 *             the process has ended (or the machine rebooted, or the
 *             spoke's container was restarted, ending the PID namespace):
 *             the state follows the shim's exit file if there is one,
 *             else FAILED saying why. A pid that now belongs to another
 *             process is never signalled.
 *
 * Then the state directory loses the files of agents no longer supervised,
 * and each such agent loses its cgroup, with whatever is still in it.
 */
#ifndef TSR_RECOVERY_H
#define TSR_RECOVERY_H

#include "error.h"

struct spoke;

/* Needs the store and the supervisor; queues ended agents' exits for outcomes. */
int recovery_run(struct spoke *sp, struct tsr_err *err);

#endif
