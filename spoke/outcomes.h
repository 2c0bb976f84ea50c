/*
 * outcomes: turning process exits into terminal states. Runs on the loop
 * thread (each tick): exit 0 is COMPLETED, any other exit or a signal is
 * FAILED, and any exit after a kill request is KILLED. An exit that cannot
 * be recorded because Valkey is unreachable stays queued and is retried.
 */
#ifndef TSR_OUTCOMES_H
#define TSR_OUTCOMES_H

struct spoke;

void outcomes_record(struct spoke *sp);

#endif
