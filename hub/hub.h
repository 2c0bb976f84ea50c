/*
 * hub: the state tessera-hub's handlers share (all of it lives on the one
 * loop thread), and what every user call needs: resolving user-supplied
 * spoke and agent ids, the deadline a relayed command gets, and ending a
 * call so that its cancel callback can no longer fire.
 */
#ifndef TSR_HUB_HUB_H
#define TSR_HUB_HUB_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "rpc_loop.h"
#include "rpc_server.h"
#include "sign.h"
#include "spokes.h"

struct hub_metrics;
struct output_relays;
struct relays;
struct watches;

struct hub { /* every pointer borrowed from main */
	struct rpc_loop *loop;
	const struct sign_key *key;
	struct spokes *spokes;
	struct relays *relays;
	struct watches *watches;
	struct output_relays *outputs;
	struct hub_metrics *metrics; /* NULL: none */
	int64_t relay_timeout_ms;
	bool stopping; /* no new work once shutdown began */
};

/* "" leaves *out NULL; otherwise INVALID_ARGUMENT or NOT_FOUND. */
int hub_spoke_arg(struct hub *h, const char *spoke_id, struct spoke **out, struct tsr_err *err);
/* The spoke owning agent_id: INVALID_ARGUMENT if malformed, NOT_FOUND if unknown. */
int hub_agent_spoke(struct hub *h, const char *agent_id, struct spoke **out, struct tsr_err *err);
/*
 * min(caller's remaining deadline less its margin (HUB_RELAY_MARGIN_MS),
 * relay timeout); DEADLINE_EXCEEDED if none left.
 */
int hub_relay_timeout(struct hub *h, struct rpc_call *call, int64_t *out, struct tsr_err *err);
/* End a user call (giving up the handler's reference) after detaching its
 * cancel callback, whose argument the caller is about to free. */
void hub_call_fail(struct rpc_call *call, const struct tsr_err *err);
void hub_call_reply(struct rpc_call *call, const uint8_t *msg, size_t len);
void hub_call_finish(struct rpc_call *call, grpc_status_code code, const char *msg);

#endif
