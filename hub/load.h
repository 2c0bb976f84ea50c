/*
 * load: the hub's view of how loaded each spoke is, and whether it takes
 * the hub's commands. From the loop tick, every spoke that is not still
 * connecting is asked SPOKE_INFO every LOAD_POLL_MS (and at once when
 * its channel comes up or SIGHUP changes its key), with at most one such
 * command in flight per spoke; the answer (a signed SpokeStatus, verified
 * like any reply) is kept in struct spoke for placement and ListSpokes.
 * A spoke that does not answer, or answers nonsense, has no known load
 * until it answers again; the poll's error is kept as the spoke's reason,
 * and a refusal (see relay_done_fn) makes a connected spoke "refused"
 * until a poll succeeds. Every other signed reply carries the spoke's
 * figures too (Reply.running_agents), which refresh a known load between
 * polls, and whether it drains (Reply.draining), which placement heeds
 * from then on. Loop thread only.
 */
#ifndef TSR_HUB_LOAD_H
#define TSR_HUB_LOAD_H

#include "hub.h"

#define LOAD_POLL_MS 2000
#define LOAD_TIMEOUT_MS 2000 /* or the relay timeout, if shorter */

void load_tick(struct hub *h);
/*
 * The figures of a verified reply of sp: taken if its load is known and
 * they can be true, else left (max 0: a spoke that does not send them).
 * They count the spawns that spoke has carried out, so a burst of short
 * agents is not refused as if every spawn since the last poll still ran.
 * Whether it drains is taken in any case: the spoke signed it.
 */
void load_note_reply(struct spoke *sp, int32_t running, int32_t max, bool draining);
/*
 * A verified SpokeStatus of sp (a poll's, or SPOKE_DRAIN's), taken as its
 * load and draining flag; INTERNAL if it is malformed or cannot be true.
 */
int load_note_status(struct spoke *sp, const uint8_t *payload, size_t len, struct tsr_err *err);

#endif
