/*
 * store_agents: agent records. Owns creating them, moving them between
 * states and marking them for kill (each one script call, event included),
 * reading one, listing them page by page, the walk over non-terminal ones,
 * building the secondary indexes for records older than them, and decoding
 * an agent hash (labels included) into a Tessera__V1__Agent.
 */
#include "store.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ids.h"
#include "lifecycle.h"
#include "store_internal.h"

#define STORE_SCAN_PAGES_MAX 100000	/* pages of one full walk of the index */
#define STORE_REINDEX_BATCH 1000	/* agents one reindex step indexes */
#define STORE_LABEL_FIELD_MAX (sizeof(STORE_LABEL_PREFIX) + TSR_NAME_MAX)

static bool reply_is(const redisReply *r, const char *s)
{
	return r->type == REDIS_REPLY_STRING && strcmp(r->str, s) == 0;
}

/* The script's outcome word, and element i as a string or NULL. */
static const char *reply_str(const redisReply *r, size_t i)
{
	if (i >= r->elements || r->element[i]->type != REDIS_REPLY_STRING)
		return NULL;
	return r->element[i]->str;
}

static int store_agent_key(const struct store *st, const char *agent_id, char *buf,
			   struct tsr_err *err)
{
	if (!ids_valid_agent_id(agent_id))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid agent id");
	return store_key(buf, st->agent_prefix, agent_id, err);
}

/* The hash field names of n labels, "label:<key>", into fields; keys already checked. */
static void store_label_fields(const struct tsr_label *labels, size_t n,
			       char fields[][STORE_LABEL_FIELD_MAX])
{
	for (size_t i = 0; i < n; i++)
		snprintf(fields[i], STORE_LABEL_FIELD_MAX, "%s%s", STORE_LABEL_PREFIX,
			 labels[i].key);
}

int store_agent_create(struct store *st, const Tessera__V1__Agent *a, char *existing_id,
		       size_t existing_len, struct tsr_err *err)
{
	const Tessera__V1__AgentState spawning = TESSERA__V1__AGENT_STATE__AGENT_STATE_SPAWNING;
	char key[STORE_KEY_MAX], spoke[TSR_NAME_MAX + 1], etype[STORE_EVENT_TYPE_MAX];
	char lfields[TSR_LABELS_MAX][STORE_LABEL_FIELD_MAX];
	struct tsr_label labels[TSR_LABELS_MAX];
	struct store_args args = { 0 };
	redisReply *r = NULL;
	const char *what, *prev;
	int64_t created;
	int rc = -1, slot;

	if (existing_len < TSR_AGENT_ID_MAX + 1) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "store: existing id buffer too small");
		goto out;
	}
	existing_id[0] = '\0';
	if (store_agent_key(st, a->id, key, err) != 0)
		goto out;
	if (ids_agent_spoke(a->id, spoke, sizeof(spoke)) != 0 || strcmp(spoke, st->spoke) != 0) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "agent %s is not of spoke %s",
			    a->id, st->spoke);
		goto out;
	}
	if (!ids_valid_name(a->type)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid agent type");
		goto out;
	}
	if (strnlen(a->task, STORE_TASK_MAX + 1) > STORE_TASK_MAX) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "task longer than %d bytes",
			    STORE_TASK_MAX);
		goto out;
	}
	if (a->request_id[0] != '\0' && !ids_valid_name(a->request_id)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid request id");
		goto out;
	}
	if (a->created_at_ms < 0) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "negative creation time");
		goto out;
	}
	if (a->n_labels > TSR_LABELS_MAX) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "at most %d agent labels",
			    TSR_LABELS_MAX);
		goto out;
	}
	for (size_t i = 0; i < a->n_labels; i++) {
		labels[i].key = a->labels[i]->key;
		labels[i].value = a->labels[i]->value;
	}
	if (ids_check_labels(labels, a->n_labels, "agent label", err) != 0)
		goto out;
	store_label_fields(labels, a->n_labels, lfields);
	created = a->created_at_ms != 0 ? a->created_at_ms : clock_wall_ms();
	snprintf(etype, sizeof(etype), "agent.%s", lifecycle_state_name(spawning));

	store_args_eval(&args, st, "create", key);
	store_args_str(&args, a->id);
	store_args_int(&args, created);
	store_args_str(&args, a->request_id);
	store_args_str(&args, a->type);
	store_args_state(&args, spawning);
	slot = store_args_list(&args);
	store_args_str(&args, store_agent_fields[AF_ID]);
	store_args_str(&args, a->id);
	store_args_str(&args, store_agent_fields[AF_SPOKE]);
	store_args_str(&args, st->spoke);
	store_args_str(&args, store_agent_fields[AF_TYPE]);
	store_args_str(&args, a->type);
	store_args_str(&args, store_agent_fields[AF_TASK]);
	store_args_str(&args, a->task);
	store_args_str(&args, store_agent_fields[AF_STATE]);
	store_args_state(&args, spawning);
	store_args_str(&args, store_agent_fields[AF_CREATED]);
	store_args_int(&args, created);
	store_args_str(&args, store_agent_fields[AF_STARTED]);
	store_args_int(&args, 0);
	store_args_str(&args, store_agent_fields[AF_COMPLETED]);
	store_args_int(&args, 0);
	store_args_str(&args, store_agent_fields[AF_PID]);
	store_args_int(&args, 0);
	store_args_str(&args, store_agent_fields[AF_ERROR]);
	store_args_str(&args, "");
	store_args_str(&args, store_agent_fields[AF_REQUEST]);
	store_args_str(&args, a->request_id);
	store_args_str(&args, store_agent_fields[AF_KILL]);
	store_args_int(&args, 0);
	for (size_t i = 0; i < a->n_labels; i++) {
		store_args_str(&args, lfields[i]);
		store_args_str(&args, labels[i].value);
	}
	store_args_list_end(&args, slot);
	slot = store_args_list(&args);
	store_args_str(&args, store_event_fields[EF_TYPE]);
	store_args_str(&args, etype);
	store_args_str(&args, store_event_fields[EF_AGENT]);
	store_args_str(&args, a->id);
	store_args_str(&args, store_event_fields[EF_SPOKE]);
	store_args_str(&args, st->spoke);
	store_args_str(&args, store_event_fields[EF_OLD]);
	store_args_state(&args, TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED);
	store_args_str(&args, store_event_fields[EF_NEW]);
	store_args_state(&args, spawning);
	store_args_str(&args, store_event_fields[EF_TIME]);
	store_args_int(&args, created);
	store_args_list_end(&args, slot);

	if (store_eval(st, &args, &r, err) != 0)
		goto out;
	what = r->element[0]->str;
	if (strcmp(what, "existing") == 0) {
		prev = reply_str(r, 1);
		if (prev == NULL || !ids_valid_agent_id(prev)) {
			tsr_err_set(err, GRPC_STATUS_INTERNAL,
				    "valkey: request %s maps to a malformed agent id",
				    a->request_id);
			goto out;
		}
		snprintf(existing_id, existing_len, "%s", prev);
	} else if (strcmp(what, "exists") == 0) {
		tsr_err_set(err, GRPC_STATUS_ALREADY_EXISTS, "agent %s already exists", a->id);
		goto out;
	} else if (strcmp(what, "ok") != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey script: create answered %.32s",
			    what);
		goto out;
	}
	rc = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

static int store_check_update(const struct store_update *u, struct tsr_err *err)
{
	if (u->has_exit_code && u->has_signal)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "an agent ends by an exit code or a signal, not both");
	if ((u->has_started_at_ms && u->started_at_ms < 0) ||
	    (u->has_completed_at_ms && u->completed_at_ms < 0) || (u->has_pid && u->pid < 0))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "negative time or pid in update");
	if ((u->has_process && (u->pid_start_ticks > INT64_MAX || u->pid_ns > INT64_MAX ||
				u->pid_ns_init_ticks > INT64_MAX || u->boot_id == NULL ||
				strnlen(u->boot_id, STORE_BOOT_ID_MAX + 1) > STORE_BOOT_ID_MAX)) ||
	    (u->has_timeout_at_ms && u->timeout_at_ms < 0))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "bad process identity or timeout in update");
	if (u->has_error &&
	    (u->error == NULL || strnlen(u->error, STORE_ERROR_MAX + 1) > STORE_ERROR_MAX))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "error text missing or longer than %d bytes", STORE_ERROR_MAX);
	if (u->has_output &&
	    (u->output == NULL || strnlen(u->output, STORE_OUTPUT_MAX + 1) > STORE_OUTPUT_MAX))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "output missing or longer than %d bytes", STORE_OUTPUT_MAX);
	return 0;
}

/* The pairs of upd that go into the agent hash. */
static void args_update(struct store_args *a, const struct store_update *u)
{
	if (u->has_started_at_ms) {
		store_args_str(a, store_agent_fields[AF_STARTED]);
		store_args_int(a, u->started_at_ms);
	}
	if (u->has_completed_at_ms) {
		store_args_str(a, store_agent_fields[AF_COMPLETED]);
		store_args_int(a, u->completed_at_ms);
	}
	if (u->has_pid) {
		store_args_str(a, store_agent_fields[AF_PID]);
		store_args_int(a, u->pid);
	}
	if (u->has_process) {
		store_args_str(a, store_agent_fields[AF_PID_START]);
		store_args_int(a, (long long)u->pid_start_ticks);
		store_args_str(a, store_agent_fields[AF_BOOT]);
		store_args_str(a, u->boot_id);
		store_args_str(a, store_agent_fields[AF_PID_NS]);
		store_args_int(a, (long long)u->pid_ns);
		store_args_str(a, store_agent_fields[AF_PID_NS_INIT]);
		store_args_int(a, (long long)u->pid_ns_init_ticks);
	}
	if (u->has_timeout_at_ms) {
		store_args_str(a, store_agent_fields[AF_TIMEOUT_AT]);
		store_args_int(a, u->timeout_at_ms);
	}
	if (u->has_exit_code) {
		store_args_str(a, store_agent_fields[AF_EXIT]);
		store_args_int(a, u->exit_code);
	}
	if (u->has_signal) {
		store_args_str(a, store_agent_fields[AF_SIGNAL]);
		store_args_int(a, u->signal);
	}
	if (u->has_error) {
		store_args_str(a, store_agent_fields[AF_ERROR]);
		store_args_str(a, u->error);
	}
	if (u->has_kill_requested) {
		store_args_str(a, store_agent_fields[AF_KILL]);
		store_args_int(a, u->kill_requested ? 1 : 0);
	}
	if (u->has_output) {
		store_args_str(a, store_agent_fields[AF_OUTPUT]);
		store_args_str(a, u->output);
	}
}

/* Maps the script's "notfound"/"illegal" to the caller's error; "ok" is 0. */
static int store_outcome(const redisReply *r, const char *agent_id, const char *to,
			 struct tsr_err *err)
{
	const char *what = r->element[0]->str, *cur;

	if (strcmp(what, "ok") == 0)
		return 0;
	if (strcmp(what, "notfound") == 0)
		return tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "agent %s not found", agent_id);
	if (strcmp(what, "illegal") == 0) {
		cur = reply_str(r, 1);
		return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
				   "agent %s: illegal transition %.32s -> %s", agent_id,
				   cur != NULL ? cur : "?", to);
	}
	return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey script answered %.32s", what);
}

int store_agent_transition(struct store *st, const char *agent_id, Tessera__V1__AgentState to,
			   const struct store_update *upd, char *position, size_t poslen,
			   struct tsr_err *err)
{
	static const struct store_update none;
	Tessera__V1__AgentState from[LIFECYCLE_STATES_MAX];
	char key[STORE_KEY_MAX], etype[STORE_EVENT_TYPE_MAX];
	struct store_args args = { 0 };
	redisReply *r = NULL;
	const char *pos, *to_name = lifecycle_state_name(to);
	size_t nfrom;
	int rc = -1, slot;

	if (upd == NULL)
		upd = &none;
	if (to_name == NULL || to == TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid target state %d", (int)to);
		goto out;
	}
	if (poslen < STORE_POSITION_MAX) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "store: position buffer too small");
		goto out;
	}
	if (store_agent_key(st, agent_id, key, err) != 0 || store_check_update(upd, err) != 0)
		goto out;
	nfrom = lifecycle_predecessors(to, from, LIFECYCLE_STATES_MAX);
	snprintf(etype, sizeof(etype), "agent.%s", to_name);

	store_args_eval(&args, st, "transition", key);
	slot = store_args_list(&args);
	for (size_t i = 0; i < nfrom; i++)
		store_args_state(&args, from[i]);
	store_args_list_end(&args, slot);
	slot = store_args_list(&args);
	store_args_str(&args, store_agent_fields[AF_STATE]);
	store_args_str(&args, to_name);
	args_update(&args, upd);
	store_args_list_end(&args, slot);
	/* exit code and signal are one oneof: setting one clears the other. */
	slot = store_args_list(&args);
	if (upd->has_exit_code)
		store_args_str(&args, store_agent_fields[AF_SIGNAL]);
	if (upd->has_signal)
		store_args_str(&args, store_agent_fields[AF_EXIT]);
	store_args_list_end(&args, slot);
	slot = store_args_list(&args);
	for (size_t i = 0; i < store_event_copied_count; i++)
		store_args_str(&args, store_agent_fields[store_event_copied[i]]);
	store_args_list_end(&args, slot);
	slot = store_args_list(&args);
	store_args_str(&args, store_event_fields[EF_TYPE]);
	store_args_str(&args, etype);
	store_args_str(&args, store_event_fields[EF_AGENT]);
	store_args_str(&args, agent_id);
	store_args_str(&args, store_event_fields[EF_SPOKE]);
	store_args_str(&args, st->spoke);
	store_args_str(&args, store_event_fields[EF_NEW]);
	store_args_str(&args, to_name);
	store_args_str(&args, store_event_fields[EF_TIME]);
	store_args_int(&args, clock_wall_ms());
	store_args_list_end(&args, slot);

	if (store_eval(st, &args, &r, err) != 0 || store_outcome(r, agent_id, to_name, err) != 0)
		goto out;
	pos = reply_str(r, 1);
	if (pos == NULL || strlen(pos) >= poslen) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey script: no event position");
		goto out;
	}
	memcpy(position, pos, strlen(pos) + 1);
	rc = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

int store_agent_mark_kill(struct store *st, const char *agent_id, struct tsr_err *err)
{
	char key[STORE_KEY_MAX];
	struct store_args args = { 0 };
	redisReply *r = NULL;
	const char *name;
	int rc = -1, slot;

	if (store_agent_key(st, agent_id, key, err) != 0)
		goto out;
	store_args_eval(&args, st, "mark", key);
	slot = store_args_list(&args);
	for (int s = 1; (name = lifecycle_state_name((Tessera__V1__AgentState)s)) != NULL; s++)
		if (!lifecycle_terminal((Tessera__V1__AgentState)s))
			store_args_str(&args, name);
	store_args_list_end(&args, slot);
	slot = store_args_list(&args);
	store_args_str(&args, store_agent_fields[AF_KILL]);
	store_args_int(&args, 1);
	store_args_list_end(&args, slot);
	if (store_eval(st, &args, &r, err) != 0 ||
	    store_outcome(r, agent_id, "kill requested", err) != 0)
		goto out;
	rc = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

static int agent_field(Tessera__V1__Agent *a, int f, const redisReply *v, struct tsr_err *err)
{
	const char *name = store_agent_fields[f];
	int64_t n;

	switch (f) {
	case AF_ID:
		return store_field_text(v, TSR_AGENT_ID_MAX, &a->id, name, err);
	case AF_SPOKE:
		return store_field_text(v, TSR_NAME_MAX, &a->spoke_id, name, err);
	case AF_TYPE:
		return store_field_text(v, TSR_NAME_MAX, &a->type, name, err);
	case AF_TASK:
		return store_field_text(v, STORE_TASK_MAX, &a->task, name, err);
	case AF_ERROR:
		return store_field_text(v, STORE_ERROR_MAX, &a->error, name, err);
	case AF_OUTPUT:
		return store_field_text(v, STORE_OUTPUT_MAX, &a->output, name, err);
	case AF_REQUEST:
		return store_field_text(v, TSR_NAME_MAX, &a->request_id, name, err);
	case AF_STATE:
		return store_field_state(v, &a->state, name, err);
	case AF_CREATED:
		return store_field_int(v, 0, INT64_MAX, &a->created_at_ms, name, err);
	case AF_STARTED:
		return store_field_int(v, 0, INT64_MAX, &a->started_at_ms, name, err);
	case AF_COMPLETED:
		return store_field_int(v, 0, INT64_MAX, &a->completed_at_ms, name, err);
	case AF_PID:
		if (store_field_int(v, 0, INT32_MAX, &n, name, err) != 0)
			return -1;
		a->pid = (int32_t)n;
		return 0;
	case AF_PID_START:
		if (store_field_int(v, 0, INT64_MAX, &n, name, err) != 0)
			return -1;
		a->pid_start_ticks = (uint64_t)n;
		return 0;
	case AF_BOOT:
		return store_field_text(v, STORE_BOOT_ID_MAX, &a->boot_id, name, err);
	case AF_PID_NS:
		if (store_field_int(v, 0, INT64_MAX, &n, name, err) != 0)
			return -1;
		a->pid_ns = (uint64_t)n;
		return 0;
	case AF_PID_NS_INIT:
		if (store_field_int(v, 0, INT64_MAX, &n, name, err) != 0)
			return -1;
		a->pid_ns_init_ticks = (uint64_t)n;
		return 0;
	case AF_TIMEOUT_AT:
		return store_field_int(v, 0, INT64_MAX, &a->timeout_at_ms, name, err);
	case AF_KILL:
		if (store_field_int(v, 0, 1, &n, name, err) != 0)
			return -1;
		a->kill_requested = n == 1;
		return 0;
	case AF_EXIT:
	case AF_SIGNAL:
		if (a->end_case != TESSERA__V1__AGENT__END__NOT_SET)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL,
					   "valkey: agent has both exit_code and signal");
		if (store_field_int(v, INT32_MIN, INT32_MAX, &n, name, err) != 0)
			return -1;
		if (f == AF_EXIT) {
			a->end_case = TESSERA__V1__AGENT__END_EXIT_CODE;
			a->exit_code = (int32_t)n;
		} else {
			a->end_case = TESSERA__V1__AGENT__END_SIGNAL;
			a->signal = (int32_t)n;
		}
		return 0;
	}
	return tsr_err_set(err, GRPC_STATUS_INTERNAL, "store: no agent field %d", f);
}

static int agent_own_strings(Tessera__V1__Agent *a, struct tsr_err *err)
{
	char **fields[] = { &a->id, &a->spoke_id, &a->type, &a->task, &a->error,
			    &a->request_id, &a->output, &a->boot_id };

	return store_strings_own(fields, sizeof(fields) / sizeof(fields[0]), err);
}

/* Adds the label field name = v to a, checked as the spawn was. */
static int agent_label(Tessera__V1__Agent *a, const char *name, const redisReply *v,
		       struct tsr_err *err)
{
	const char *key = name + strlen(STORE_LABEL_PREFIX);
	Tessera__V1__Agent__LabelsEntry *e = NULL;
	size_t i;

	if (!ids_valid_name(key) || strlen(v->str) != v->len || !ids_valid_label_value(v->str))
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: malformed label field %.80s",
				   name);
	if (a->labels == NULL) {
		a->labels = calloc(TSR_LABELS_MAX, sizeof(*a->labels));
		if (a->labels == NULL)
			goto oom;
	}
	if (a->n_labels == TSR_LABELS_MAX)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: more than %d labels",
				   TSR_LABELS_MAX);
	e = malloc(sizeof(*e));
	if (e == NULL)
		goto oom;
	tessera__v1__agent__labels_entry__init(e);
	e->key = strdup(key);
	e->value = strdup(v->str);
	if (e->key == NULL || e->value == NULL) {
		free(e->key);
		free(e->value);
		free(e);
		goto oom;
	}
	/* Sorted by key, so that every reader shows them alike. */
	for (i = a->n_labels; i > 0 && strcmp(a->labels[i - 1]->key, key) > 0; i--)
		a->labels[i] = a->labels[i - 1];
	a->labels[i] = e;
	a->n_labels++;
	return 0;
oom:
	return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "store: out of memory");
}

/*
 * Builds an agent from the pairs of its hash: the known fields, and labels;
 * fields of no known name are skipped.
 */
static int agent_decode(const redisReply *h, const char *agent_id, Tessera__V1__Agent **out,
			struct tsr_err *err)
{
	Tessera__V1__Agent *a;
	unsigned seen = 0;
	int rc = -1, f;

	a = malloc(sizeof(*a));
	if (a == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "store: out of memory");
	tessera__v1__agent__init(a);
	if (store_pairs_check(h, "agent record", err) != 0)
		goto out;
	if (h->elements == 0) {
		tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "agent %s not found", agent_id);
		goto out;
	}
	for (size_t i = 0; i < h->elements; i += 2) {
		if (strncmp(h->element[i]->str, STORE_LABEL_PREFIX,
			    strlen(STORE_LABEL_PREFIX)) == 0) {
			if (agent_label(a, h->element[i]->str, h->element[i + 1], err) != 0)
				goto out;
			continue;
		}
		f = store_field_index(store_agent_fields, AF_COUNT, h->element[i]->str);
		if (f < 0)
			continue;
		/* A field read once owns its string: never overwrite it. */
		if (seen & (1u << f)) {
			tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: field %s twice",
				    store_agent_fields[f]);
			goto out;
		}
		seen |= 1u << f;
		if (agent_field(a, f, h->element[i + 1], err) != 0)
			goto out;
	}
	if (strcmp(a->id, agent_id) != 0 || !ids_valid_name(a->spoke_id) ||
	    !ids_valid_name(a->type) ||
	    (a->request_id[0] != '\0' && !ids_valid_name(a->request_id)) ||
	    a->state == TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED ||
	    !(seen & (1u << AF_CREATED))) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: agent %s: record incomplete",
			    agent_id);
		goto out;
	}
	if (agent_own_strings(a, err) != 0)
		goto out;
	*out = a;
	a = NULL;
	rc = 0;
out:
	if (a != NULL)
		tessera__v1__agent__free_unpacked(a, NULL);
	return rc;
}

int store_agent_get(struct store *st, const char *agent_id, Tessera__V1__Agent **out,
		    struct tsr_err *err)
{
	char key[STORE_KEY_MAX];
	struct store_args args = { 0 };
	redisReply *r = NULL;
	int rc = -1;

	if (store_agent_key(st, agent_id, key, err) != 0)
		goto out;
	store_args_str(&args, "HGETALL");
	store_args_str(&args, key);
	if (store_command(st, &args, STORE_TIMEOUT_MS, &r, err) != 0 ||
	    agent_decode(r, agent_id, out, err) != 0)
		goto out;
	rc = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

int store_indexes_ensure(struct store *st, struct tsr_err *err)
{
	char key[STORE_KEY_MAX];
	struct store_args args;
	redisReply *r = NULL;
	const char *next;
	long long from = 0;
	int rc = -1;

	if (st->indexes_ok)
		return 0;
	if (store_key(key, st->k_index, STORE_INDEX_VERSION_SUFFIX, err) != 0)
		goto out;
	memset(&args, 0, sizeof(args));
	store_args_str(&args, "GET");
	store_args_str(&args, key);
	if (store_command(st, &args, STORE_TIMEOUT_MS, &r, err) != 0)
		goto out;
	if (r->type == REDIS_REPLY_STRING && strcmp(r->str, STORE_INDEX_VERSION) == 0) {
		st->indexes_ok = true;
		rc = 0;
		goto out;
	}
	/* Records from before the indexes: index them all, a batch per step. */
	for (int i = 0;; i++) {
		if (i == STORE_SCAN_PAGES_MAX) {
			tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
				    "more than %d batches of agents to index",
				    STORE_SCAN_PAGES_MAX);
			goto out;
		}
		freeReplyObject(r);
		r = NULL;
		memset(&args, 0, sizeof(args));
		store_args_eval(&args, st, "reindex", NULL);
		store_args_str(&args, st->agent_prefix);
		store_args_int(&args, from);
		store_args_int(&args, STORE_REINDEX_BATCH);
		store_args_str(&args, STORE_INDEX_VERSION);
		if (store_eval(st, &args, &r, err) != 0)
			goto out;
		next = reply_str(r, 1);
		if (!reply_is(r->element[0], "ok") || next == NULL) {
			tsr_err_set(err, GRPC_STATUS_INTERNAL,
				    "valkey script: malformed reindex reply");
			goto out;
		}
		if (next[0] == '\0')
			break;
		from += STORE_REINDEX_BATCH;
	}
	st->indexes_ok = true;
	rc = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

/*
 * One page, matching any of states (none: any state), the type (""
 * any) and every one of the labels.
 */
static int store_list_page(struct store *st, const Tessera__V1__AgentState *states,
			   size_t nstates, const char *type_filter, const struct tsr_label *labels,
			   size_t nlabels, uint32_t page_size, const char *page_token,
			   Tessera__V1__ListAgentsResponse **out, struct tsr_err *err)
{
	Tessera__V1__ListAgentsResponse *resp = NULL;
	struct store_args args = { 0 };
	redisReply *r = NULL, *item;
	const char *next;
	int rc = -1, slot;

	if (type_filter[0] != '\0' && !ids_valid_name(type_filter)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid type filter");
		goto out;
	}
	if (ids_check_labels(labels, nlabels, "selector label", err) != 0 ||
	    store_indexes_ensure(st, err) != 0)
		goto out;
	if (page_token[0] != '\0' && !ids_valid_agent_id(page_token)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid page token");
		goto out;
	}
	if (page_size == 0)
		page_size = STORE_PAGE_DEFAULT;
	if (page_size > STORE_PAGE_MAX)
		page_size = STORE_PAGE_MAX;

	store_args_eval(&args, st, "list", NULL);
	store_args_str(&args, st->agent_prefix);
	store_args_str(&args, page_token);
	store_args_int(&args, page_size);
	store_args_int(&args, STORE_LIST_SCAN_MAX);
	store_args_str(&args, type_filter);
	slot = store_args_list(&args);
	for (size_t i = 0; i < nstates; i++)
		store_args_state(&args, states[i]);
	store_args_list_end(&args, slot);
	slot = store_args_list(&args);
	for (size_t i = 0; i < nlabels; i++) {
		store_args_str(&args, labels[i].key);
		store_args_str(&args, labels[i].value);
	}
	store_args_list_end(&args, slot);
	if (store_eval(st, &args, &r, err) != 0)
		goto out;
	if (reply_is(r->element[0], "badcursor")) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "page token matches no agent");
		goto out;
	}
	next = reply_str(r, 1);
	if (!reply_is(r->element[0], "ok") || next == NULL ||
	    (next[0] != '\0' && !ids_valid_agent_id(next)) || r->elements - 2 > page_size) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey script: malformed list reply");
		goto out;
	}

	resp = malloc(sizeof(*resp));
	if (resp == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "store: out of memory");
		goto out;
	}
	tessera__v1__list_agents_response__init(resp);
	resp->next_page_token = strdup(next);
	if (r->elements > 2)
		resp->agents = calloc(r->elements - 2, sizeof(*resp->agents));
	if (resp->next_page_token == NULL || (r->elements > 2 && resp->agents == NULL)) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "store: out of memory");
		goto out;
	}
	for (size_t i = 2; i < r->elements; i++) {
		item = r->element[i];
		if (item->type != REDIS_REPLY_ARRAY || item->elements != 2 ||
		    item->element[0]->type != REDIS_REPLY_STRING) {
			tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey script: malformed list item");
			goto out;
		}
		/* An index entry without its record is damage: say so, don't hide it. */
		if (agent_decode(item->element[1], item->element[0]->str,
				 &resp->agents[resp->n_agents], err) != 0) {
			if (err->code == GRPC_STATUS_NOT_FOUND)
				tsr_err_set(err, GRPC_STATUS_INTERNAL,
					    "valkey: indexed agent %.*s has no record",
					    TSR_AGENT_ID_MAX, item->element[0]->str);
			goto out;
		}
		resp->n_agents++;
	}
	*out = resp;
	resp = NULL;
	rc = 0;
out:
	if (resp != NULL)
		tessera__v1__list_agents_response__free_unpacked(resp, NULL);
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

int store_agent_list(struct store *st, Tessera__V1__AgentState state_filter,
		     const char *type_filter, const struct tsr_label *labels, size_t nlabels,
		     uint32_t page_size, const char *page_token,
		     Tessera__V1__ListAgentsResponse **out, struct tsr_err *err)
{
	const char *name = lifecycle_state_name(state_filter);

	if (name == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid state filter %d",
				   (int)state_filter);
	if (state_filter == TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED)
		return store_list_page(st, NULL, 0, type_filter, labels, nlabels, page_size,
				       page_token, out, err);
	return store_list_page(st, &state_filter, 1, type_filter, labels, nlabels, page_size,
			       page_token, out, err);
}

/* Calls fn for every agent in state s, newest first, walking its index. */
static int store_agents_in_state(struct store *st, Tessera__V1__AgentState s, store_agent_fn fn,
				 void *arg, struct tsr_err *err)
{
	Tessera__V1__ListAgentsResponse *page = NULL;
	char token[TSR_AGENT_ID_MAX + 1] = "";
	int rc = -1;

	for (int i = 0;; i++) {
		if (i == STORE_SCAN_PAGES_MAX) {
			tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
				    "more than %d pages of agents", STORE_SCAN_PAGES_MAX);
			goto out;
		}
		if (store_list_page(st, &s, 1, "", NULL, 0, STORE_PAGE_MAX, token, &page,
				    err) != 0)
			goto out;
		for (size_t k = 0; k < page->n_agents; k++)
			if (fn(arg, page->agents[k], err) != 0)
				goto out;
		if (page->next_page_token[0] == '\0')
			break;
		snprintf(token, sizeof(token), "%s", page->next_page_token);
		tessera__v1__list_agents_response__free_unpacked(page, NULL);
		page = NULL;
	}
	rc = 0;
out:
	if (page != NULL)
		tessera__v1__list_agents_response__free_unpacked(page, NULL);
	return rc;
}

int store_agents_nonterminal(struct store *st, store_agent_fn fn, void *arg,
			     struct tsr_err *err)
{
	for (int s = 1; lifecycle_state_name((Tessera__V1__AgentState)s) != NULL; s++)
		if (!lifecycle_terminal((Tessera__V1__AgentState)s) &&
		    store_agents_in_state(st, (Tessera__V1__AgentState)s, fn, arg, err) != 0)
			return -1;
	return 0;
}
