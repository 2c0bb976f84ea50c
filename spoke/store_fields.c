/*
 * store_fields: the fields of the records the store keeps in Valkey, agent
 * hashes and event entries. Owns their names, which writer and reader
 * share, and the checked decoding of field values into protobuf messages.
 */
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"

#define STORE_FIELDS_MAX 64		/* fields of one hash or stream entry */

/* Agent hash fields. Writer and reader share these names. */
const char *const store_agent_fields[AF_COUNT] = {
	[AF_ID] = "id", [AF_SPOKE] = "spoke_id", [AF_TYPE] = "type", [AF_TASK] = "task",
	[AF_STATE] = "state", [AF_CREATED] = "created_at_ms",
	[AF_STARTED] = "started_at_ms", [AF_COMPLETED] = "completed_at_ms",
	[AF_EXIT] = "exit_code", [AF_SIGNAL] = "signal", [AF_ERROR] = "error",
	[AF_PID] = "pid", [AF_REQUEST] = "request_id", [AF_KILL] = "kill_requested",
	[AF_OUTPUT] = "output", [AF_PID_START] = "pid_start_ticks", [AF_BOOT] = "boot_id",
	[AF_TIMEOUT_AT] = "timeout_at_ms", [AF_PID_NS] = "pid_ns",
	[AF_PID_NS_INIT] = "pid_ns_init_ticks",
};

/*
 * Event stream fields. The script copies store_event_copied from the agent hash
 * by name, so those keep their store_agent_fields names here.
 */
const char *const store_event_fields[EF_COUNT] = {
	[EF_TYPE] = "type", [EF_AGENT] = "agent", [EF_SPOKE] = "spoke", [EF_OLD] = "old",
	[EF_NEW] = "new", [EF_TIME] = "time", [EF_STARTED] = "started_at_ms",
	[EF_COMPLETED] = "completed_at_ms", [EF_EXIT] = "exit_code", [EF_SIGNAL] = "signal",
	[EF_ERROR] = "error",
};
const int store_event_copied[] = { AF_STARTED, AF_COMPLETED, AF_EXIT, AF_SIGNAL, AF_ERROR };
const size_t store_event_copied_count = sizeof(store_event_copied) / sizeof(store_event_copied[0]);

int store_field_text(const redisReply *v, size_t max, char **dst, const char *name,
	       struct tsr_err *err)
{
	char *s;

	if (v->len > max || strlen(v->str) != v->len)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: malformed field %s", name);
	s = strdup(v->str);
	if (s == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "store: out of memory");
	*dst = s;
	return 0;
}

int store_field_int(const redisReply *v, int64_t min, int64_t max, int64_t *out,
	      const char *name, struct tsr_err *err)
{
	long long n;
	char *end;

	errno = 0;
	n = strtoll(v->str, &end, 10);
	if (v->len == 0 || v->len > STORE_NUM_LEN || errno != 0 || end != v->str + v->len ||
	    n < min || n > max)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: malformed field %s", name);
	*out = n;
	return 0;
}

int store_field_state(const redisReply *v, Tessera__V1__AgentState *out, const char *name,
		struct tsr_err *err)
{
	if (lifecycle_state_parse(v->str, out) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: malformed field %s", name);
	return 0;
}

int store_strings_own(char **fields[], size_t n, struct tsr_err *err)
{
	for (size_t i = 0; i < n; i++) {
		char *s;

		if (*fields[i] != protobuf_c_empty_string)
			continue;
		s = strdup("");
		if (s == NULL)
			return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
					   "store: out of memory");
		*fields[i] = s;
	}
	return 0;
}

int store_field_index(const char *const *names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

int store_pairs_check(const redisReply *r, const char *what, struct tsr_err *err)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0 ||
	    r->elements > 2 * STORE_FIELDS_MAX)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: malformed %s", what);
	for (size_t i = 0; i < r->elements; i++)
		if (r->element[i]->type != REDIS_REPLY_STRING)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: malformed %s",
					   what);
	return 0;
}
