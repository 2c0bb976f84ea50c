/*
 * make_corpus: writes the seed corpus the fuzz targets start from, one
 * folder per target under the folder given: correctly signed messages
 * (with the fixed keys and clock of fuzz.h, so that the fuzzer starts
 * past the signature check) and well-formed tokens and requests.
 * Its output is committed as tests/fuzz/corpus; run it again after a
 * change to the formats:  make_corpus tests/fuzz/corpus
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cursor.h"
#include "envelope.h"
#include "fuzz.h"
#include "page_token.h"
#include "pb.h"
#include "tessera/v1/hub.pb-c.h"

#define CORPUS_PATH_MAX 4096

static int corpus_write(const char *dir, const char *target, const char *name, const void *data,
			size_t len, struct tsr_err *err)
{
	char path[CORPUS_PATH_MAX];
	FILE *f = NULL;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/%s", dir, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "mkdir %s: %s", path, strerror(errno));
		goto out;
	}
	if (snprintf(path, sizeof(path), "%s/%s/%s", dir, target, name) >= (int)sizeof(path) ||
	    (f = fopen(path, "wb")) == NULL || fwrite(data, 1, len, f) != len) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "cannot write %s", path);
		goto out;
	}
	rc = 0;
out:
	if (f != NULL && fclose(f) != 0)
		rc = tsr_err_set(err, GRPC_STATUS_INTERNAL, "cannot write %s", path);
	return rc;
}

/* Packs m and writes it; frees nothing of m. */
static int corpus_message(const char *dir, const char *target, const char *name,
			  const ProtobufCMessage *m, struct tsr_err *err)
{
	uint8_t *buf = NULL;
	size_t len;
	int rc;

	if (pb_pack(m, &buf, &len, err) != 0)
		return -1;
	rc = corpus_write(dir, target, name, buf, len, err);
	free(buf);
	return rc;
}

static int corpus_commands(const char *dir, const struct sign_key *hub, struct tsr_err *err)
{
	Tessera__V1__SpawnCommand spawn = TESSERA__V1__SPAWN_COMMAND__INIT;
	Tessera__V1__StreamEventsRequest stream = TESSERA__V1__STREAM_EVENTS_REQUEST__INIT;
	struct envelope_command_args a = { .audience = FUZZ_SPOKE_ID,
					   .command_id = FUZZ_COMMAND_ID,
					   .now_ms = FUZZ_NOW_MS,
					   .ttl_ms = ENVELOPE_TTL_MS };
	uint8_t *payload = NULL, *buf = NULL;
	size_t payload_len, len;
	int rc = -1;

	spawn.type = "sleep";
	spawn.task = "a task";
	spawn.request_id = "req-1";
	a.type = TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_AGENT_SPAWN;
	if (pb_pack(&spawn.base, &payload, &payload_len, err) != 0)
		goto out;
	a.payload = payload;
	a.payload_len = payload_len;
	if (envelope_command_seal(hub, &a, &buf, &len, err) != 0 ||
	    corpus_write(dir, "command_open", "spawn", buf, len, err) != 0)
		goto out;
	free(payload);
	free(buf);
	payload = buf = NULL;
	stream.cursor = "1700000000000-0";
	a.type = TESSERA__V1__COMMAND_TYPE__COMMAND_TYPE_EVENTS_STREAM;
	if (pb_pack(&stream.base, &payload, &payload_len, err) != 0)
		goto out;
	a.payload = payload;
	a.payload_len = payload_len;
	if (envelope_command_seal(hub, &a, &buf, &len, err) != 0 ||
	    corpus_write(dir, "command_open", "stream", buf, len, err) != 0)
		goto out;
	rc = 0;
out:
	free(payload);
	free(buf);
	return rc;
}

/* A chunk of an output stream; *buf is the caller's to free. */
static int corpus_output(const struct sign_key *spoke, const char *dir, uint8_t **buf, size_t *len,
			 struct tsr_err *err)
{
	Tessera__V1__OutputMessage m = TESSERA__V1__OUTPUT_MESSAGE__INIT;
	Tessera__V1__OutputChunk c = TESSERA__V1__OUTPUT_CHUNK__INIT;

	m.command_id = FUZZ_COMMAND_ID;
	m.spoke_id = FUZZ_SPOKE_ID;
	m.chunk = &c;
	c.offset = 4096;
	c.data.data = (uint8_t *)"working (2/3)\n";
	c.data.len = 14;
	c.skipped = 10;
	if (envelope_output_seal(spoke, &m, buf, len, err) != 0)
		return -1;
	return corpus_write(dir, "output_open", "chunk", *buf, *len, err);
}

static int corpus_replies(const char *dir, const struct sign_key *spoke, struct tsr_err *err)
{
	Tessera__V1__Reply reply = TESSERA__V1__REPLY__INIT;
	Tessera__V1__Event ev = TESSERA__V1__EVENT__INIT;
	uint8_t *buf = NULL;
	size_t len;
	int rc = -1;

	reply.command_id = FUZZ_COMMAND_ID;
	reply.spoke_id = FUZZ_SPOKE_ID;
	reply.status = GRPC_STATUS_NOT_FOUND;
	reply.message = "agent spoke-1.000000000000000000000000 not found";
	reply.issued_at_ms = FUZZ_NOW_MS;
	if (envelope_reply_seal(spoke, &reply, &buf, &len, err) != 0 ||
	    corpus_write(dir, "reply_open", "reply", buf, len, err) != 0)
		goto out;
	free(buf);
	buf = NULL;
	ev.position = "1700000000000-0";
	ev.type = "agent.running";
	ev.agent_id = "spoke-1.0123456789abcdef01234567";
	ev.spoke_id = FUZZ_SPOKE_ID;
	ev.old_state = TESSERA__V1__AGENT_STATE__AGENT_STATE_SPAWNING;
	ev.new_state = TESSERA__V1__AGENT_STATE__AGENT_STATE_RUNNING;
	ev.time_ms = FUZZ_NOW_MS;
	if (envelope_event_seal(spoke, &ev, &buf, &len, err) != 0 ||
	    corpus_write(dir, "event_open", "event", buf, len, err) != 0)
		goto out;
	free(buf);
	buf = NULL;
	if (corpus_output(spoke, dir, &buf, &len, err) != 0)
		goto out;
	rc = 0;
out:
	free(buf);
	return rc;
}

static int corpus_tokens(const char *dir, struct tsr_err *err)
{
	struct cursor_entry e[2] = { { .spoke = "spoke-1", .pos = { 1700000000000ULL, 0 } },
				     { .spoke = "spoke-2", .pos = { 1700000000001ULL, 7 } } };
	struct page_token t = { .index = 1, .spoke = "spoke-2", .token = "opaque-token" };
	char *text = NULL;
	int rc = -1;

	if (cursor_encode(e, 2, &text, err) != 0 ||
	    corpus_write(dir, "cursor_decode", "two", text, strlen(text), err) != 0)
		goto out;
	free(text);
	text = NULL;
	if (page_token_encode(&t, &text, err) != 0 ||
	    corpus_write(dir, "page_token_decode", "one", text, strlen(text), err) != 0)
		goto out;
	rc = 0;
out:
	free(text);
	return rc;
}

static int corpus_requests(const char *dir, struct tsr_err *err)
{
	Tessera__V1__SpawnAgentRequest spawn = TESSERA__V1__SPAWN_AGENT_REQUEST__INIT;
	Tessera__V1__ListAgentsRequest list = TESSERA__V1__LIST_AGENTS_REQUEST__INIT;
	Tessera__V1__WatchEventsRequest watch = TESSERA__V1__WATCH_EVENTS_REQUEST__INIT;

	spawn.type = "sleep";
	spawn.task = "a task";
	spawn.spoke_id = FUZZ_SPOKE_ID;
	spawn.request_id = "req-1";
	list.spoke_id = FUZZ_SPOKE_ID;
	list.state = TESSERA__V1__AGENT_STATE__AGENT_STATE_RUNNING;
	list.type = "sleep";
	list.page_size = 50;
	list.page_token = "token";
	watch.cursor = "c3Bva2UtMT0xLTA";
	watch.agent_id = "spoke-1.0123456789abcdef01234567";
	watch.from_start = true;
	if (corpus_message(dir, "hub_requests", "spawn", &spawn.base, err) != 0 ||
	    corpus_message(dir, "hub_requests", "list", &list.base, err) != 0 ||
	    corpus_message(dir, "hub_requests", "watch", &watch.base, err) != 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct sign_key hub, spoke;
	struct tsr_err err;
	int rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: make_corpus DIR\n");
		return 2;
	}
	tsr_err_clear(&err);
	fuzz_fixed_key(FUZZ_HUB_SEED, &hub);
	fuzz_fixed_key(FUZZ_SPOKE_SEED, &spoke);
	if (corpus_commands(argv[1], &hub, &err) != 0 ||
	    corpus_replies(argv[1], &spoke, &err) != 0 || corpus_tokens(argv[1], &err) != 0 ||
	    corpus_requests(argv[1], &err) != 0)
		fprintf(stderr, "make_corpus: %s\n", err.msg);
	else
		rc = 0;
	sign_key_wipe(&hub);
	sign_key_wipe(&spoke);
	return rc;
}
