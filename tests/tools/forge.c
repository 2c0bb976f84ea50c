/*
 * tessera-forge: a test-only hub that signs commands with chosen defects
 * and sends one to a spoke's Execute, printing the outcome as one status
 * name: the gRPC status when the spoke refuses the call, else the status
 * inside the spoke's signed reply (verified against the spoke's key).
 * With -S it opens StreamEvents instead, and prints OK once the spoke's
 * signed start (verified, and naming this command) has come: the stream
 * was accepted; then it hangs up. With -W MS as well it holds the stream
 * for up to MS, printing OK at the start, "event POSITION" for each event,
 * and last the status the stream ended with (DEADLINE_EXCEEDED if it
 * lasted). The attack tests use it to craft what no honest hub would send.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "envelope.h"
#include "pb.h"
#include "protocol.h"
#include "rpc_client.h"
#include "rpc_loop.h"
#include "status_name.h"
#include "tessera/v1/spoke.pb-c.h"
#include "tool_util.h"

#define FORGE_TASK_MAX (1024 * 1024)
#define FORGE_TIMEOUT_MS 10000

struct forge {
	const char *addr, *key_path, *spoke_id, *spoke_pub, *audience, *agent_type;
	const char *defect;    /* NULL, "badsig", "tamper" or "truncate" */
	const char *nonce_hex; /* NULL: a fresh nonce */
	long task_len;
	int64_t issued_offset_ms, ttl_ms;
	bool stream;	 /* StreamEvents, not Execute */
	int64_t hold_ms; /* stream: > 0 holds it open this long */
};

struct forge_result {
	volatile bool done;
	grpc_status_code code;
	uint8_t *resp;
	size_t len;
	bool accepted; /* stream: the spoke sent its signed start */
	struct rpc_client_call *call;
	const struct forge *f;
	struct sign_pubkey spoke_pub;
	const char *command_id;
};

static void forge_done(void *arg, grpc_status_code code, const char *details, const uint8_t *resp,
		       size_t len)
{
	struct forge_result *r = arg;

	r->code = code;
	if (code == GRPC_STATUS_OK && (r->resp = malloc(len > 0 ? len : 1)) != NULL) {
		memcpy(r->resp, resp, len);
		r->len = len;
	}
	if (code != GRPC_STATUS_OK)
		fprintf(stderr, "tessera-forge: %s\n", details);
	r->done = true;
}

/* The first message must be the spoke's signed start for this command. */
static void forge_stream_message(void *arg, const uint8_t *msg, size_t len)
{
	struct forge_result *r = arg;
	Tessera__V1__Event *ev = NULL;
	struct tsr_err err;

	if (envelope_event_open(msg, len, &r->spoke_pub, r->f->spoke_id, &ev, &err) != 0) {
		fprintf(stderr, "tessera-forge: %s\n", err.msg);
		rpc_client_cancel(r->call);
		return;
	}
	if (!r->accepted && (strcmp(ev->type, TSR_EVENT_STREAM_START) != 0 ||
			     strcmp(ev->command_id, r->command_id) != 0)) {
		fprintf(stderr, "tessera-forge: the stream did not start with its signed start\n");
		rpc_client_cancel(r->call);
	} else if (!r->accepted) {
		r->accepted = true;
		if (r->f->hold_ms > 0)
			printf("OK\n");
		else
			rpc_client_cancel(r->call);
	} else {
		printf("event %s\n", ev->position);
	}
	fflush(stdout);
	tessera__v1__event__free_unpacked(ev, NULL);
}

static void forge_stream_end(void *arg, grpc_status_code code, const char *details)
{
	struct forge_result *r = arg;

	/* Held: how it ended; else whether it was accepted. */
	r->code = r->accepted && r->f->hold_ms == 0 ? GRPC_STATUS_OK : code;
	if (r->code != GRPC_STATUS_OK)
		fprintf(stderr, "tessera-forge: %s\n", details);
	r->call = NULL;
	r->done = true;
}

/*
 * The payload: for a stream, a request from the stream's end; else a
 * spawn request for the agent type with a task of task_len 'x's.
 */
static int forge_payload(const struct forge *f, uint8_t **out, size_t *len, struct tsr_err *err)
{
	Tessera__V1__SpawnCommand req = TESSERA__V1__SPAWN_COMMAND__INIT;
	Tessera__V1__StreamEventsRequest sreq = TESSERA__V1__STREAM_EVENTS_REQUEST__INIT;
	char *task;
	int rc;

	if (f->stream)
		return pb_pack(&sreq.base, out, len, err);
	task = malloc((size_t)f->task_len + 1);
	if (task == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	memset(task, 'x', (size_t)f->task_len);
	task[f->task_len] = '\0';
	req.type = (char *)f->agent_type;
	req.task = task;
	rc = pb_pack(&req.base, out, len, err);
	free(task);
	return rc;
}

/* Signs the sealed command again with the chosen nonce in place of its own. */
static int forge_reseal(const struct forge *f, const struct sign_key *key, uint8_t **buf,
			size_t *len, struct tsr_err *err)
{
	Tessera__V1__SignedCommand out = TESSERA__V1__SIGNED_COMMAND__INIT;
	Tessera__V1__SignedCommand *sc;
	Tessera__V1__Command *cmd = NULL;
	uint8_t nonce[ENVELOPE_NONCE_BYTES], sig[crypto_sign_BYTES], *inner = NULL, *outer;
	size_t inner_len, outer_len;
	int rc = -1;

	sc = tessera__v1__signed_command__unpack(NULL, *len, *buf);
	if (sc == NULL ||
	    (cmd = tessera__v1__command__unpack(NULL, sc->command.len, sc->command.data)) == NULL) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "cannot decode the sealed command");
		goto out;
	}
	if (strlen(f->nonce_hex) != 2 * sizeof(nonce) ||
	    sodium_hex2bin(nonce, sizeof(nonce), f->nonce_hex, strlen(f->nonce_hex), NULL, NULL,
			   NULL) != 0 ||
	    cmd->nonce.len != sizeof(nonce)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "bad nonce (want 32 hex digits)");
		goto out;
	}
	memcpy(cmd->nonce.data, nonce, sizeof(nonce));
	if (pb_pack(&cmd->base, &inner, &inner_len, err) != 0 ||
	    sign_message(key, SIGN_DOMAIN_COMMAND, inner, inner_len, sig, err) != 0)
		goto out;
	out.command.data = inner;
	out.command.len = inner_len;
	out.signature.data = sig;
	out.signature.len = sizeof(sig);
	if (pb_pack(&out.base, &outer, &outer_len, err) != 0)
		goto out;
	free(*buf);
	*buf = outer;
	*len = outer_len;
	rc = 0;
out:
	free(inner);
	if (cmd != NULL)
		tessera__v1__command__free_unpacked(cmd, NULL);
	if (sc != NULL)
		tessera__v1__signed_command__free_unpacked(sc, NULL);
	return rc;
}

/* The defects made on the sealed bytes: a bad signature, a changed signed byte, a cut. */
static int forge_defect(const struct forge *f, uint8_t *buf, size_t *len, struct tsr_err *err)
{
	if (f->defect == NULL)
		return 0;
	if (strcmp(f->defect, "badsig") == 0)
		buf[*len - 1] ^= 0x01; /* the signature is the last field */
	else if (strcmp(f->defect, "tamper") == 0)
		/* Before the signature's tag and length: the command's last byte. */
		buf[*len - crypto_sign_BYTES - 3] ^= 0x01;
	else if (strcmp(f->defect, "truncate") == 0)
		*len /= 2;
	else
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "unknown defect %s",
				   f->defect);
	return 0;
}

static int forge_run(const struct forge *f, struct tsr_err *err)
{
	struct envelope_command_args a = { 0 };
	struct forge_result res = { .f = f };
	struct rpc_client_opts opts = { .timeout_ms = f->hold_ms > 0 ? f->hold_ms
								     : FORGE_TIMEOUT_MS };
	const struct rpc_stream_cbs cbs = { .on_message = forge_stream_message,
					    .on_end = forge_stream_end };
	struct rpc_loop *loop = NULL;
	struct rpc_channel *ch = NULL;
	struct sign_key key;
	Tessera__V1__Reply *reply = NULL;
	uint8_t *payload = NULL, *buf = NULL;
	size_t payload_len, len;
	char command_id[32];
	int rc = -1;

	memset(&key, 0, sizeof(key));
	if (sign_init(err) != 0 || sign_key_load(f->key_path, &key, err) != 0 ||
	    tool_read_pub(f->spoke_pub, &res.spoke_pub, err) != 0 ||
	    forge_payload(f, &payload, &payload_len, err) != 0)
		goto out;
	snprintf(command_id, sizeof(command_id), "forge-%lld", (long long)clock_wall_ms());
	res.command_id = command_id;
	a.type = f->stream ? TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_EVENTS_STREAM
			   : TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_SPAWN;
	a.payload = payload;
	a.payload_len = payload_len;
	a.audience = f->audience != NULL ? f->audience : f->spoke_id;
	a.command_id = command_id;
	a.now_ms = clock_wall_ms() + f->issued_offset_ms;
	a.ttl_ms = f->ttl_ms;
	if (envelope_command_seal(&key, &a, &buf, &len, err) != 0 ||
	    (f->nonce_hex != NULL && forge_reseal(f, &key, &buf, &len, err) != 0) ||
	    forge_defect(f, buf, &len, err) != 0 || rpc_loop_new(&loop, err) != 0 ||
	    rpc_channel_new(f->addr, 0, NULL, &ch, err) != 0)
		goto out;
	if (f->stream ? rpc_client_stream(loop, ch, TSR_METHOD_STREAM_EVENTS, buf, len, &opts, &cbs,
					  &res, &res.call, err) != 0
		      : rpc_client_unary(loop, ch, TSR_METHOD_EXECUTE, buf, len, &opts, forge_done,
					 &res, NULL, err) != 0)
		goto out;
	rpc_loop_run(loop, &res.done);
	if (res.code != GRPC_STATUS_OK || f->stream) {
		printf("%s\n", status_name(res.code));
		rc = 0;
		goto out;
	}
	if (envelope_reply_open(res.resp, res.len, &res.spoke_pub, f->spoke_id, command_id, &reply,
				err) != 0)
		goto out;
	printf("%s\n", status_name(reply->status));
	if (reply->status != GRPC_STATUS_OK)
		fprintf(stderr, "tessera-forge: %s\n", reply->message);
	tessera__v1__reply__free_unpacked(reply, NULL);
	rc = 0;
out:
	free(res.resp);
	free(buf);
	free(payload);
	rpc_channel_free(ch);
	if (loop != NULL)
		rpc_loop_free(loop);
	sign_key_wipe(&key);
	return rc;
}

static void forge_usage(void)
{
	fprintf(stderr, "usage: tessera-forge -a ADDR -k HUB_KEY -s SPOKE_ID -p SPOKE_PUB\n"
			"       [-A AGENT_TYPE] [-T TASK_BYTES] [-u AUDIENCE]\n"
			"       [-i ISSUED_OFFSET_MS] [-l TTL_MS] [-n NONCE_HEX]\n"
			"       [-d badsig|tamper|truncate] [-S [-W HOLD_MS]]\n");
}

int main(int argc, char **argv)
{
	struct forge f = { .agent_type = "true", .ttl_ms = ENVELOPE_TTL_MS };
	struct tsr_err err;
	int c, rc;

	while ((c = getopt(argc, argv, "a:k:s:p:A:T:u:i:l:n:d:SW:")) != -1) {
		switch (c) {
		case 'a':
			f.addr = optarg;
			break;
		case 'k':
			f.key_path = optarg;
			break;
		case 's':
			f.spoke_id = optarg;
			break;
		case 'p':
			f.spoke_pub = optarg;
			break;
		case 'A':
			f.agent_type = optarg;
			break;
		case 'T':
			f.task_len = strtol(optarg, NULL, 10);
			break;
		case 'u':
			f.audience = optarg;
			break;
		case 'i':
			f.issued_offset_ms = strtoll(optarg, NULL, 10);
			break;
		case 'l':
			f.ttl_ms = strtoll(optarg, NULL, 10);
			break;
		case 'n':
			f.nonce_hex = optarg;
			break;
		case 'd':
			f.defect = optarg;
			break;
		case 'S':
			f.stream = true;
			break;
		case 'W':
			f.hold_ms = strtoll(optarg, NULL, 10);
			break;
		default:
			forge_usage();
			return 2;
		}
	}
	if (f.addr == NULL || f.key_path == NULL || f.spoke_id == NULL || f.spoke_pub == NULL ||
	    f.task_len < 0 || f.task_len > FORGE_TASK_MAX || f.hold_ms < 0) {
		forge_usage();
		return 2;
	}
	tsr_err_clear(&err);
	grpc_init();
	rc = forge_run(&f, &err);
	grpc_shutdown();
	if (rc != 0)
		fprintf(stderr, "tessera-forge: %s\n", err.msg);
	return rc != 0 ? 1 : 0;
}
