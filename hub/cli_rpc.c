/* cli_rpc: blocking unary calls to the hub over the common loop. */
#include "cli_rpc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb.h"

struct cli_unary {			/* filled in by cli_unary_done */
	volatile bool done;
	grpc_status_code code;
	char details[TSR_ERR_MSG_MAX];
	uint8_t *resp;			/* owned until handed to the caller */
	size_t len;
};

const char *cli_status_name(grpc_status_code code)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
		"UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};

	if ((int)code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0]))
		return "UNKNOWN";
	return names[code];
}

int cli_hub_open(const struct cli *c, struct cli_hub *h, struct tsr_err *err)
{
	memset(h, 0, sizeof(*h));
	h->timeout_ms = c->timeout_ms;
	if (rpc_loop_new(&h->loop, err) != 0 ||
	    rpc_channel_new(c->hub, CLI_MAX_MESSAGE, &h->ch, err) != 0) {
		cli_hub_close(h);
		return -1;
	}
	return 0;
}

void cli_hub_close(struct cli_hub *h)
{
	rpc_channel_free(h->ch);
	rpc_loop_free(h->loop);
	h->ch = NULL;
	h->loop = NULL;
}

static void cli_unary_done(void *arg, grpc_status_code code, const char *details,
			   const uint8_t *resp, size_t len)
{
	struct cli_unary *u = arg;

	u->code = code;
	snprintf(u->details, sizeof(u->details), "%s", details);
	if (code == GRPC_STATUS_OK) {
		u->resp = malloc(len > 0 ? len : 1);
		if (u->resp == NULL) {
			u->code = GRPC_STATUS_RESOURCE_EXHAUSTED;
			snprintf(u->details, sizeof(u->details), "out of memory");
		} else {
			memcpy(u->resp, resp, len);
			u->len = len;
		}
	}
	u->done = true;
}

int cli_hub_call(struct cli_hub *h, const char *method, const ProtobufCMessage *req,
		 uint8_t **resp, size_t *len, struct tsr_err *err)
{
	struct rpc_client_opts opts;
	struct cli_unary u;
	uint8_t *buf = NULL;
	size_t buflen;
	int rc = -1;

	memset(&u, 0, sizeof(u));
	memset(&opts, 0, sizeof(opts));
	opts.timeout_ms = h->timeout_ms;
	if (pb_pack(req, &buf, &buflen, err) != 0 ||
	    rpc_client_unary(h->loop, h->ch, method, buf, buflen, &opts, cli_unary_done, &u,
			     NULL, err) != 0)
		goto out;
	/* Only the call's end stops this loop: no signal handler calls
	 * rpc_loop_stop() around unary calls, and the deadline bounds it. */
	rpc_loop_run(h->loop, &u.done);
	if (u.code != GRPC_STATUS_OK) {
		tsr_err_set(err, u.code, "%s", u.details);
		goto out;
	}
	*resp = u.resp;
	*len = u.len;
	u.resp = NULL;
	rc = 0;
out:
	free(u.resp);
	free(buf);
	return rc;
}
