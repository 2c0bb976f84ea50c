/*
 * tessera-race: a test-only hub that runs many spawn-then-kill pairs
 * against one spoke's Execute over one channel, a few pairs in flight at
 * once, so that each kill races its agent's exit (and its timeout, when
 * the spawns ask for one). It prints one line per pair: the agent id, the
 * agent's state in the spawn reply, and the kill reply's status ("-" with
 * -N, which spawns only). Every reply is verified against the spoke's key.
 * A call that fails is reported on stderr and makes the exit status 1.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "envelope.h"
#include "ids.h"
#include "pb.h"
#include "rpc_client.h"
#include "rpc_loop.h"
#include "status_name.h"
#include "tessera/v1/spoke.pb-c.h"
#include "tool_util.h"

#define RACE_COUNT_MAX 100000
#define RACE_CONC_MAX 64
#define RACE_CALL_TIMEOUT_MS 30000

struct race {
	const char *addr, *key_path, *spoke_id, *pub_path, *agent_type;
	long count;
	long conc;
	long agent_timeout_ms; /* the spawn's timeout_ms; 0: the type's */
	bool kill;
	struct rpc_loop *loop;
	struct rpc_channel *ch;
	struct sign_key key;
	struct sign_pubkey pub;
	long started, ended, failed;
	volatile bool done;
};

struct pair {
	struct race *r;
	long n;
	bool killing; /* the call in flight is the kill */
	char command_id[48];
	char agent_id[TSR_AGENT_ID_MAX + 1];
	const char *spawn_state;
};

static void race_fill(struct race *r);

static const char *race_state_name(int state)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
		&tessera__v1__agent_state__descriptor, state);

	return v != NULL ? v->name : "AGENT_STATE_UNKNOWN";
}

static void pair_end(struct pair *p, bool failed)
{
	struct race *r = p->r;

	if (failed)
		r->failed++;
	r->ended++;
	free(p);
	race_fill(r);
}

static void pair_done(void *arg, grpc_status_code code, const char *details, const uint8_t *resp,
		      size_t len);

/* Seals the pair's next command (spawn, or kill of its agent) and sends it. */
static int pair_send(struct pair *p, struct tsr_err *err)
{
	struct race *r = p->r;
	Tessera__V1__SpawnCommand spawn = TESSERA__V1__SPAWN_COMMAND__INIT;
	Tessera__V1__KillCommand kill = TESSERA__V1__KILL_COMMAND__INIT;
	struct rpc_client_opts opts = { .timeout_ms = RACE_CALL_TIMEOUT_MS };
	struct envelope_command_args a = { 0 };
	uint8_t *payload = NULL, *buf = NULL;
	size_t payload_len, len;
	int rc = -1;

	spawn.type = (char *)r->agent_type;
	spawn.task = "";
	spawn.timeout_ms = (uint32_t)r->agent_timeout_ms;
	kill.agent_id = p->agent_id;
	if (pb_pack(p->killing ? &kill.base : &spawn.base, &payload, &payload_len, err) != 0)
		goto out;
	snprintf(p->command_id, sizeof(p->command_id), "race-%lld-%ld-%s",
		 (long long)clock_wall_ms(), p->n, p->killing ? "kill" : "spawn");
	a.type = p->killing ? TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_KILL
			    : TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_SPAWN;
	a.payload = payload;
	a.payload_len = payload_len;
	a.audience = r->spoke_id;
	a.command_id = p->command_id;
	a.now_ms = clock_wall_ms();
	a.ttl_ms = ENVELOPE_TTL_MS;
	if (envelope_command_seal(&r->key, &a, &buf, &len, err) != 0 ||
	    rpc_client_unary(r->loop, r->ch, TSR_METHOD_EXECUTE, buf, len, &opts, pair_done, p,
			     NULL, err) != 0)
		goto out;
	rc = 0;
out:
	free(payload);
	free(buf);
	return rc;
}

/* The spawn reply's agent: its id and state, kept in p. */
static int pair_take_agent(struct pair *p, const Tessera__V1__Reply *rep, struct tsr_err *err)
{
	Tessera__V1__Agent *a = tessera__v1__agent__unpack(NULL, rep->payload.len,
							   rep->payload.data);
	int rc = -1;

	if (a == NULL)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "malformed agent in spawn reply");
	if (snprintf(p->agent_id, sizeof(p->agent_id), "%s", a->id) >= (int)sizeof(p->agent_id)) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "agent id too long");
		goto out;
	}
	p->spawn_state = race_state_name(a->state);
	rc = 0;
out:
	tessera__v1__agent__free_unpacked(a, NULL);
	return rc;
}

static void pair_done(void *arg, grpc_status_code code, const char *details, const uint8_t *resp,
		      size_t len)
{
	struct pair *p = arg;
	struct race *r = p->r;
	Tessera__V1__Reply *rep = NULL;
	struct tsr_err err;
	bool failed = true;

	tsr_err_clear(&err);
	if (code != GRPC_STATUS_OK) {
		tsr_err_set(&err, code, "%s", details);
		goto out;
	}
	if (envelope_reply_open(resp, len, &r->pub, r->spoke_id, p->command_id, &rep, &err) != 0)
		goto out;
	if (p->killing) {
		/* Either outcome of the race is an answer: the test judges it. */
		printf("%s %s %s\n", p->agent_id, p->spawn_state, status_name(rep->status));
		failed = false;
		goto out;
	}
	if (rep->status != GRPC_STATUS_OK) {
		tsr_err_set(&err, (grpc_status_code)rep->status, "%s", rep->message);
		goto out;
	}
	if (pair_take_agent(p, rep, &err) != 0)
		goto out;
	if (!r->kill) {
		printf("%s %s -\n", p->agent_id, p->spawn_state);
		failed = false;
		goto out;
	}
	p->killing = true;
	if (pair_send(p, &err) != 0)
		goto out;
	tessera__v1__reply__free_unpacked(rep, NULL);
	return;
out:
	if (failed)
		fprintf(stderr, "tessera-race: pair %ld: %s %s: %s\n", p->n,
			p->killing ? "kill" : "spawn", status_name(err.code), err.msg);
	if (rep != NULL)
		tessera__v1__reply__free_unpacked(rep, NULL);
	pair_end(p, failed);
}

/* Starts pairs until conc are in flight or all have started. */
static void race_fill(struct race *r)
{
	struct tsr_err err;

	while (r->started < r->count && r->started - r->ended < r->conc) {
		struct pair *p = calloc(1, sizeof(*p));

		r->started++;
		if (p == NULL) {
			fprintf(stderr, "tessera-race: out of memory\n");
			r->failed++;
			r->ended++;
			continue;
		}
		p->r = r;
		p->n = r->started;
		tsr_err_clear(&err);
		if (pair_send(p, &err) != 0) {
			fprintf(stderr, "tessera-race: pair %ld: %s\n", p->n, err.msg);
			free(p);
			r->failed++;
			r->ended++;
		}
	}
	if (r->ended == r->count)
		r->done = true;
}

static int race_run(struct race *r, struct tsr_err *err)
{
	int rc = -1;

	memset(&r->key, 0, sizeof(r->key));
	if (sign_init(err) != 0 || sign_key_load(r->key_path, &r->key, err) != 0 ||
	    tool_read_pub(r->pub_path, &r->pub, err) != 0 || rpc_loop_new(&r->loop, err) != 0 ||
	    rpc_channel_new(r->addr, 0, NULL, &r->ch, err) != 0)
		goto out;
	race_fill(r);
	rpc_loop_run(r->loop, &r->done);
	if (r->failed > 0) {
		tsr_err_set(err, GRPC_STATUS_UNKNOWN, "%ld of %ld pairs failed", r->failed,
			    r->count);
		goto out;
	}
	rc = 0;
out:
	fflush(stdout);
	rpc_channel_free(r->ch);
	if (r->loop != NULL)
		rpc_loop_free(r->loop);
	sign_key_wipe(&r->key);
	return rc;
}

static void race_usage(void)
{
	fprintf(stderr, "usage: tessera-race -a ADDR -k HUB_KEY -s SPOKE_ID -p SPOKE_PUB -n COUNT\n"
			"       [-A AGENT_TYPE] [-c IN_FLIGHT] [-o AGENT_TIMEOUT_MS] [-N]\n");
}

/* A whole decimal number from min to max, else -1 (which every caller refuses). */
static long race_number(const char *s, long min, long max)
{
	char *end;
	long v = strtol(s, &end, 10);

	return end != s && *end == '\0' && v >= min && v <= max ? v : -1;
}

int main(int argc, char **argv)
{
	struct race r = { .agent_type = "true", .conc = 4, .kill = true };
	struct tsr_err err;
	int c, rc;

	while ((c = getopt(argc, argv, "a:k:s:p:n:A:c:o:N")) != -1) {
		switch (c) {
		case 'a':
			r.addr = optarg;
			break;
		case 'k':
			r.key_path = optarg;
			break;
		case 's':
			r.spoke_id = optarg;
			break;
		case 'p':
			r.pub_path = optarg;
			break;
		case 'n':
			r.count = race_number(optarg, 1, RACE_COUNT_MAX);
			break;
		case 'A':
			r.agent_type = optarg;
			break;
		case 'c':
			r.conc = race_number(optarg, 1, RACE_CONC_MAX);
			break;
		case 'o':
			r.agent_timeout_ms = race_number(optarg, 0, UINT32_MAX);
			break;
		case 'N':
			r.kill = false;
			break;
		default:
			race_usage();
			return 2;
		}
	}
	if (r.addr == NULL || r.key_path == NULL || r.spoke_id == NULL || r.pub_path == NULL ||
	    r.count < 1 || r.conc < 1 || r.agent_timeout_ms < 0) {
		race_usage();
		return 2;
	}
	tsr_err_clear(&err);
	grpc_init();
	rc = race_run(&r, &err);
	grpc_shutdown();
	if (rc != 0)
		fprintf(stderr, "tessera-race: %s\n", err.msg);
	return rc != 0 ? 1 : 0;
}
