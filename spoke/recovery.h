/*
 * recovery: at start-up, give every agent that Valkey still shows as
 * SPAWNING or RUNNING a true final state, so that none stays non-terminal
 * after the spoke that supervised it is gone.
 */
#ifndef TSR_RECOVERY_H
#define TSR_RECOVERY_H

#include "error.h"

struct spoke;

int recovery_run(struct spoke *sp, struct tsr_err *err);

#endif
