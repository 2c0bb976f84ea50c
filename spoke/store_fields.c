/*
 * store_fields: the fields of the records the store keeps in Valkey, agent
 * hashes and event entries. Owns one table per record (each field's name,
 * which writer and reader share, its kind, its bounds and its place in the
 * protobuf message and in a struct store_update), the one decoder that
 * checks a value and sets the message from it, and the one encoder of a
 * store_update's fields.
 *
 * Valkey keeps text as it was written, an agent's output as the agent
 * printed it; the decoder is where a record becomes protobuf strings, so
 * it repairs each text into well-formed UTF-8 (utf8.h), whoever wrote it
 * and whenever.
 */
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"
#include "utf8.h"

#define STORE_FIELDS_MAX 64 /* fields of one hash or stream entry */

/* The end oneof's case is read and written as an int, whichever enum it is. */
_Static_assert(sizeof(Tessera__V1__Agent__EndCase) == sizeof(int), "end case is an int");
_Static_assert(sizeof(Tessera__V1__Event__EndCase) == sizeof(int), "end case is an int");
/* store_record_decode marks the fields seen in an unsigned. */
_Static_assert(AF_COUNT <= 32 && EF_COUNT <= 32, "fields fit the seen bits");

/* A row's name, kind and bounds; integers other than SK_END's are at least 0. */
#define TEXT(n, bound) .name = n, .kind = SK_TEXT, .max = bound
#define TAIL(n, bound) TEXT(n, bound), .keep_tail = true
#define STATE(n) .name = n, .kind = SK_STATE
#define INT(n, k, hi) .name = n, .kind = k, .min = 0, .max = hi
#define END(n, c) .name = n, .kind = SK_END, .min = INT32_MIN, .max = INT32_MAX, .end_case = c
/* Where its member is; UPDATE: an agent field a store_update carries under the same name. */
#define AGENT(m) .at = offsetof(Tessera__V1__Agent, m)
#define EVENT(m) .at = offsetof(Tessera__V1__Event, m)
#define UPDATE(m, has)                                                                 \
	AGENT(m), .in_update = true, .update_has = offsetof(struct store_update, has), \
		  .update_at = offsetof(struct store_update, m)

/* Agent hash fields; those of a store_update in the order it writes them. */
const struct store_field store_agent_fields[AF_COUNT] = {
	[AF_ID] = { TEXT("id", TSR_AGENT_ID_MAX), AGENT(id) },
	[AF_SPOKE] = { TEXT("spoke_id", TSR_NAME_MAX), AGENT(spoke_id) },
	[AF_TYPE] = { TEXT("type", TSR_NAME_MAX), AGENT(type) },
	[AF_TASK] = { TEXT("task", TSR_TASK_MAX), AGENT(task) },
	[AF_STATE] = { STATE("state"), AGENT(state) },
	[AF_CREATED] = { INT("created_at_ms", SK_I64, INT64_MAX), AGENT(created_at_ms) },
	[AF_REQUEST] = { TEXT("request_id", TSR_NAME_MAX), AGENT(request_id) },
	[AF_STARTED] = { INT("started_at_ms", SK_I64, INT64_MAX),
			 UPDATE(started_at_ms, has_started_at_ms) },
	[AF_COMPLETED] = { INT("completed_at_ms", SK_I64, INT64_MAX),
			   UPDATE(completed_at_ms, has_completed_at_ms) },
	[AF_PID] = { INT("pid", SK_I32, INT32_MAX), UPDATE(pid, has_pid) },
	[AF_PID_START] = { INT("pid_start_ticks", SK_U64, INT64_MAX),
			   UPDATE(pid_start_ticks, has_process) },
	[AF_BOOT] = { TEXT("boot_id", STORE_BOOT_ID_MAX), UPDATE(boot_id, has_process) },
	[AF_PID_NS] = { INT("pid_ns", SK_U64, INT64_MAX), UPDATE(pid_ns, has_process) },
	[AF_PID_NS_INIT] = { INT("pid_ns_init_ticks", SK_U64, INT64_MAX),
			     UPDATE(pid_ns_init_ticks, has_process) },
	[AF_TIMEOUT_AT] = { INT("timeout_at_ms", SK_I64, INT64_MAX),
			    UPDATE(timeout_at_ms, has_timeout_at_ms) },
	[AF_EXIT] = { END("exit_code", TESSERA__V1__AGENT__END_EXIT_CODE),
		      UPDATE(exit_code, has_exit_code) },
	[AF_SIGNAL] = { END("signal", TESSERA__V1__AGENT__END_SIGNAL), UPDATE(signal, has_signal) },
	[AF_ERROR] = { TEXT("error", TSR_ERROR_MAX), UPDATE(error, has_error) },
	[AF_KILL] = { INT("kill_requested", SK_BOOL, 1),
		      UPDATE(kill_requested, has_kill_requested) },
	[AF_OUTPUT] = { TAIL("output", TSR_OUTPUT_MAX), UPDATE(output, has_output) },
	[AF_OUTPUT_BYTES] = { INT("output_bytes", SK_I64, INT64_MAX),
			      UPDATE(output_bytes, has_output) },
};

/*
 * Event stream fields. The script copies store_event_copied from the agent hash
 * by name, so those keep their store_agent_fields names here.
 */
const struct store_field store_event_fields[EF_COUNT] = {
	[EF_TYPE] = { TEXT("type", STORE_EVENT_TYPE_MAX), EVENT(type) },
	[EF_AGENT] = { TEXT("agent", TSR_AGENT_ID_MAX), EVENT(agent_id) },
	[EF_SPOKE] = { TEXT("spoke", TSR_NAME_MAX), EVENT(spoke_id) },
	[EF_OLD] = { STATE("old"), EVENT(old_state) },
	[EF_NEW] = { STATE("new"), EVENT(new_state) },
	[EF_TIME] = { INT("time", SK_I64, INT64_MAX), EVENT(time_ms) },
	[EF_STARTED] = { INT("started_at_ms", SK_I64, INT64_MAX), EVENT(started_at_ms) },
	[EF_COMPLETED] = { INT("completed_at_ms", SK_I64, INT64_MAX), EVENT(completed_at_ms) },
	[EF_EXIT] = { END("exit_code", TESSERA__V1__EVENT__END_EXIT_CODE), EVENT(exit_code) },
	[EF_SIGNAL] = { END("signal", TESSERA__V1__EVENT__END_SIGNAL), EVENT(signal) },
	[EF_ERROR] = { TEXT("error", TSR_ERROR_MAX), EVENT(error) },
};
const int store_event_copied[] = { AF_STARTED, AF_COMPLETED, AF_EXIT, AF_SIGNAL, AF_ERROR };
const size_t store_event_copied_count = sizeof(store_event_copied) / sizeof(store_event_copied[0]);

const struct store_record store_agent_record = {
	"agent",
	store_agent_fields,
	AF_COUNT,
	offsetof(Tessera__V1__Agent, end_case),
};
const struct store_record store_event_record = {
	"event",
	store_event_fields,
	EF_COUNT,
	offsetof(Tessera__V1__Event, end_case),
};

/*
 * Copies v, repaired, into *dst. The repair keeps the bound the raw value
 * met, so a message never outgrows what its readers allow.
 */
static int field_text(const redisReply *v, size_t max, enum utf8_keep keep, char **dst,
		      const char *name, struct tsr_err *err)
{
	size_t len;

	if (v->len > max || strlen(v->str) != v->len)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: malformed field %s", name);
	if (utf8_repair(v->str, v->len, max, keep, dst, &len, err) != 0)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "store: out of memory");
	return 0;
}

int store_field_text(const redisReply *v, size_t max, char **dst, const char *name,
		     struct tsr_err *err)
{
	return field_text(v, max, UTF8_KEEP_HEAD, dst, name, err);
}

static int field_int(const redisReply *v, int64_t min, int64_t max, int64_t *out, const char *name,
		     struct tsr_err *err)
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

static int field_state(const redisReply *v, Tessera__V1__AgentState *out, const char *name,
		       struct tsr_err *err)
{
	if (lifecycle_state_parse(v->str, out) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: malformed field %s", name);
	return 0;
}

/* Sets f's member of msg, of the C type its kind says, to n, already in range. */
static void field_set_int(const struct store_record *rec, void *msg, const struct store_field *f,
			  int64_t n)
{
	char *at = (char *)msg + f->at;

	if (f->kind == SK_BOOL)
		*(protobuf_c_boolean *)at = n == 1;
	else if (f->kind == SK_I64)
		*(int64_t *)at = n;
	else if (f->kind == SK_U64)
		*(uint64_t *)at = (uint64_t)n;
	else /* SK_I32, SK_END */
		*(int32_t *)at = (int32_t)n;
	if (f->kind == SK_END)
		memcpy((char *)msg + rec->end_case_at, &f->end_case, sizeof(f->end_case));
}

/* Checks v as field f of rec and sets msg's member from it. */
static int field_decode(const struct store_record *rec, void *msg, const struct store_field *f,
			const redisReply *v, struct tsr_err *err)
{
	char *at = (char *)msg + f->at;
	int64_t n = 0; /* set by field_int; gcc cannot tell */
	int end_case;

	if (f->kind == SK_TEXT)
		return field_text(v, (size_t)f->max, f->keep_tail ? UTF8_KEEP_TAIL : UTF8_KEEP_HEAD,
				  (char **)at, f->name, err);
	if (f->kind == SK_STATE)
		return field_state(v, (Tessera__V1__AgentState *)at, f->name, err);
	if (f->kind == SK_END) {
		memcpy(&end_case, (char *)msg + rec->end_case_at, sizeof(end_case));
		if (end_case != 0)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL,
					   "valkey: %s has both exit_code and signal", rec->what);
	}
	if (field_int(v, f->min, f->max, &n, f->name, err) != 0)
		return -1;
	field_set_int(rec, msg, f, n);
	return 0;
}

static int field_index(const struct store_record *rec, const char *name)
{
	for (int i = 0; i < rec->count; i++)
		if (strcmp(rec->fields[i].name, name) == 0)
			return i;
	return -1;
}

int store_record_decode(const struct store_record *rec, void *msg, const redisReply *pairs,
			store_extra_fn extra, unsigned *seen, struct tsr_err *err)
{
	const char *name;
	int f;

	*seen = 0;
	for (size_t i = 0; i < pairs->elements; i += 2) {
		name = pairs->element[i]->str;
		f = field_index(rec, name);
		if (f < 0) {
			if (extra != NULL && extra(msg, name, pairs->element[i + 1], err) != 0)
				return -1;
			continue;
		}
		/* A field read once owns its string: never overwrite it. */
		if (*seen & (1u << f))
			return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: field %s twice",
					   name);
		*seen |= 1u << f;
		if (field_decode(rec, msg, &rec->fields[f], pairs->element[i + 1], err) != 0)
			return -1;
	}
	return 0;
}

void store_args_update(struct store_args *a, const struct store_update *u)
{
	const char *base = (const char *)u, *v;
	const struct store_field *f;

	for (int i = 0; i < AF_COUNT; i++) {
		f = &store_agent_fields[i];
		if (!f->in_update || !*(const bool *)(base + f->update_has))
			continue;
		v = base + f->update_at;
		store_args_str(a, f->name);
		if (f->kind == SK_TEXT)
			store_args_str(a, *(const char *const *)v);
		else if (f->kind == SK_BOOL)
			store_args_int(a, *(const bool *)v ? 1 : 0);
		else if (f->kind == SK_I64)
			store_args_int(a, *(const int64_t *)v);
		else if (f->kind == SK_U64)
			store_args_int(a, (long long)*(const uint64_t *)v);
		else /* SK_I32, SK_END; no update carries a state */
			store_args_int(a, *(const int32_t *)v);
	}
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

int store_pairs_check(const redisReply *r, const char *what, struct tsr_err *err)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0 ||
	    r->elements > 2 * STORE_FIELDS_MAX)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: malformed %s", what);
	for (size_t i = 0; i < r->elements; i++)
		if (r->element[i]->type != REDIS_REPLY_STRING)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: malformed %s", what);
	return 0;
}
