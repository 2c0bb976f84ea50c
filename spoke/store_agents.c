/*
 * store_agents: agent records. Owns creating them, moving them between
 * states and marking them for kill (each one script call, event included),
 * reading one, listing them page by page, the walk over non-terminal ones,
 * building the secondary indexes for records older than them, and decoding
 * an agent hash (labels included) into a Tessera__V1__Agent.
 */
#include "store.h"

#include <assert.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ids.h"
#include "lifecycle.h"
#include "pb.h"
#include "spawn_check.h"
#include "store_internal.h"

#define STORE_SCAN_PAGES_MAX 100000 /* pages of one full walk of the index */
#define STORE_REINDEX_BATCH 1000    /* agents one reindex step indexes */
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

/*
 * The appended counted list of an event's pairs, for a step of agent_id
 * into to; old is the state left, or NULL for the script to add. etype is
 * the caller's buffer, which the arguments borrow until they are sent.
 */
static void args_event(struct store_args *a, const struct store *st, const char *agent_id,
		       const Tessera__V1__AgentState *old, Tessera__V1__AgentState to,
		       int64_t time_ms, char etype[STORE_EVENT_TYPE_MAX])
{
	int slot = store_args_list(a);

	snprintf(etype, STORE_EVENT_TYPE_MAX, "agent.%s", lifecycle_state_name(to));
	store_args_str(a, store_event_fields[EF_TYPE].name);
	store_args_str(a, etype);
	store_args_str(a, store_event_fields[EF_AGENT].name);
	store_args_str(a, agent_id);
	store_args_str(a, store_event_fields[EF_SPOKE].name);
	store_args_str(a, st->spoke);
	if (old != NULL) {
		store_args_str(a, store_event_fields[EF_OLD].name);
		store_args_state(a, *old);
	}
	store_args_str(a, store_event_fields[EF_NEW].name);
	store_args_state(a, to);
	store_args_str(a, store_event_fields[EF_TIME].name);
	store_args_int(a, time_ms);
	store_args_list_end(a, slot);
}

/* What the create arguments borrow besides the agent, until they are sent. */
struct agent_new {
	char key[STORE_KEY_MAX];
	struct tsr_label labels[TSR_LABELS_MAX];	     /* the agent's strings */
	char lfields[TSR_LABELS_MAX][STORE_LABEL_FIELD_MAX]; /* their hash fields */
	char etype[STORE_EVENT_TYPE_MAX];
	int64_t created; /* its creation time, 0 made now */
};

/*
 * Fills n for a. The spoke checked the spawn at its trust boundary
 * (agent_cmd_spawn) and made the id; what is wrong here is a bug.
 */
static int create_prepare(const struct store *st, const Tessera__V1__Agent *a, struct agent_new *n,
			  struct tsr_err *err)
{
	char spoke[TSR_NAME_MAX + 1];

	assert(a->n_labels <= TSR_LABELS_MAX && a->created_at_ms >= 0);
	for (size_t i = 0; i < a->n_labels; i++) {
		n->labels[i].key = a->labels[i]->key;
		n->labels[i].value = a->labels[i]->value;
	}
	assert(spawn_check(&(struct spawn_fields){ a->type, a->task, a->request_id, 0, n->labels,
						   a->n_labels },
			   &(struct tsr_err){ 0 }) == 0);
	assert(ids_agent_spoke(a->id, spoke, sizeof(spoke)) == 0 && strcmp(spoke, st->spoke) == 0);
	(void)spoke;
	if (store_agent_key(st, a->id, n->key, err) != 0)
		return -1;
	store_label_fields(n->labels, a->n_labels, n->lfields);
	n->created = a->created_at_ms != 0 ? a->created_at_ms : clock_wall_ms();
	return 0;
}

/*
 * The arguments of "create": the new agent's keys, hash pairs and event
 * pairs, and the nonce's lifetime (0 when nonce_key is NULL).
 */
static void args_create(struct store_args *args, const struct store *st,
			const Tessera__V1__Agent *a, struct agent_new *n, const char *nonce_key,
			int64_t nonce_ttl_ms)
{
	const Tessera__V1__AgentState spawning = TESSERA__V1__AGENT_STATE__AGENT_STATE_SPAWNING;
	const Tessera__V1__AgentState none = TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED;
	int slot;

	store_args_eval_nonce(args, st, "create", n->key, nonce_key);
	store_args_str(args, a->id);
	store_args_int(args, n->created);
	store_args_str(args, a->request_id);
	store_args_str(args, a->type);
	store_args_state(args, spawning);
	slot = store_args_list(args);
	store_args_str(args, store_agent_fields[AF_ID].name);
	store_args_str(args, a->id);
	store_args_str(args, store_agent_fields[AF_SPOKE].name);
	store_args_str(args, st->spoke);
	store_args_str(args, store_agent_fields[AF_TYPE].name);
	store_args_str(args, a->type);
	store_args_str(args, store_agent_fields[AF_TASK].name);
	store_args_str(args, a->task);
	store_args_str(args, store_agent_fields[AF_STATE].name);
	store_args_state(args, spawning);
	store_args_str(args, store_agent_fields[AF_CREATED].name);
	store_args_int(args, n->created);
	store_args_str(args, store_agent_fields[AF_STARTED].name);
	store_args_int(args, 0);
	store_args_str(args, store_agent_fields[AF_COMPLETED].name);
	store_args_int(args, 0);
	store_args_str(args, store_agent_fields[AF_PID].name);
	store_args_int(args, 0);
	store_args_str(args, store_agent_fields[AF_ERROR].name);
	store_args_str(args, "");
	store_args_str(args, store_agent_fields[AF_REQUEST].name);
	store_args_str(args, a->request_id);
	store_args_str(args, store_agent_fields[AF_KILL].name);
	store_args_int(args, 0);
	for (size_t i = 0; i < a->n_labels; i++) {
		store_args_str(args, n->lfields[i]);
		store_args_str(args, n->labels[i].value);
	}
	store_args_list_end(args, slot);
	args_event(args, st, a->id, &none, spawning, n->created, n->etype);
	store_args_int(args, nonce_key != NULL ? nonce_ttl_ms : 0);
}

/* Where store_request_agent copies the agent id a request maps to. */
struct request_ask {
	char *id;
	size_t len;
};

static int request_outcome(const redisReply *r, void *arg, struct tsr_err *err)
{
	const struct request_ask *q = arg;

	if (r->type == REDIS_REPLY_NIL) {
		q->id[0] = '\0';
		return 0;
	}
	if (r->type != REDIS_REPLY_STRING || strlen(r->str) != r->len ||
	    !ids_valid_agent_id(r->str))
		return tsr_err_set(err, GRPC_STATUS_INTERNAL,
				   "valkey: a request maps to a malformed agent id");
	snprintf(q->id, q->len, "%s", r->str);
	return 0;
}

int store_request_agent(struct store *st, const char *request_id, char *id, size_t len,
			struct tsr_err *err)
{
	struct request_ask q = { id, len };
	struct store_args a = { 0 };

	if (len < TSR_AGENT_ID_MAX + 1)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "store: agent id buffer too small");
	if (!ids_valid_name(request_id))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "malformed request id");
	store_args_str(&a, "HGET");
	store_args_str(&a, st->k_requests);
	store_args_str(&a, request_id);
	return store_request(st, &a, STORE_TIMEOUT_MS, request_outcome, &q, err);
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
	    (u->error == NULL || strnlen(u->error, TSR_ERROR_MAX + 1) > TSR_ERROR_MAX))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "error text missing or longer than %d bytes", TSR_ERROR_MAX);
	if (u->has_output &&
	    (u->output == NULL || strnlen(u->output, TSR_OUTPUT_MAX + 1) > TSR_OUTPUT_MAX))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "output missing or longer than %d bytes", TSR_OUTPUT_MAX);
	return 0;
}

/* A step of one agent: what its errors name, and where its event's position goes. */
struct agent_step {
	const char *agent_id;
	const char *to; /* the state, or what the step does */
	char *position; /* NULL: the step makes no event */
	size_t poslen;
};

/*
 * Maps the script's "notfound"/"illegal" to the caller's error; "ok" is 0,
 * with the event's position, which follows it, copied out.
 */
static int step_outcome(const redisReply *r, void *arg, struct tsr_err *err)
{
	const struct agent_step *s = arg;
	const char *what = r->element[0]->str, *cur = reply_str(r, 1);

	if (strcmp(what, "notfound") == 0)
		return tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "agent %s not found", s->agent_id);
	if (strcmp(what, "replayed") == 0)
		return tsr_err_set(err, GRPC_STATUS_PERMISSION_DENIED, STORE_REPLAYED);
	if (strcmp(what, "illegal") == 0)
		return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
				   "agent %s: illegal transition %.32s -> %s", s->agent_id,
				   cur != NULL ? cur : "?", s->to);
	if (strcmp(what, "ok") != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey script answered %.32s", what);
	if (s->position == NULL)
		return 0;
	if (cur == NULL || strlen(cur) >= s->poslen)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey script: no event position");
	memcpy(s->position, cur, strlen(cur) + 1);
	return 0;
}

/*
 * The appended arguments of a transition of agent_id into to: the states
 * it may leave, what it sets and clears, its event; with record, the
 * agent's hash comes back too.
 */
static void args_transition(struct store_args *args, const struct store *st, const char *agent_id,
			    Tessera__V1__AgentState to, const struct store_update *upd, bool record,
			    char etype[STORE_EVENT_TYPE_MAX])
{
	Tessera__V1__AgentState from[LIFECYCLE_STATES_MAX];
	size_t nfrom = lifecycle_predecessors(to, from, LIFECYCLE_STATES_MAX);
	int slot;

	slot = store_args_list(args);
	for (size_t i = 0; i < nfrom; i++)
		store_args_state(args, from[i]);
	store_args_list_end(args, slot);
	slot = store_args_list(args);
	store_args_str(args, store_agent_fields[AF_STATE].name);
	store_args_state(args, to);
	store_args_update(args, upd);
	store_args_list_end(args, slot);
	/* exit code and signal are one oneof: setting one clears the other. */
	slot = store_args_list(args);
	if (upd->has_exit_code)
		store_args_str(args, store_agent_fields[AF_SIGNAL].name);
	if (upd->has_signal)
		store_args_str(args, store_agent_fields[AF_EXIT].name);
	store_args_list_end(args, slot);
	slot = store_args_list(args);
	for (size_t i = 0; i < store_event_copied_count; i++)
		store_args_str(args, store_agent_fields[store_event_copied[i]].name);
	store_args_list_end(args, slot);
	args_event(args, st, agent_id, NULL, to, clock_wall_ms(), etype);
	/* The ended index's score: retention counts from the agent's end. */
	slot = store_args_list(args);
	if (lifecycle_terminal(to))
		store_args_int(args, upd->completed_at_ms);
	store_args_list_end(args, slot);
	if (record)
		store_args_str(args, "record");
}

/* What a transition's arguments borrow: it must outlive their store_eval. */
struct transition_bufs {
	char key[STORE_KEY_MAX];
	char etype[STORE_EVENT_TYPE_MAX];
	struct store_update u;
};

/* Checks a transition of agent_id into to with upd, kept in b with its key; 0 or -1. */
static int transition_check(struct transition_bufs *b, struct store *st, const char *agent_id,
			    Tessera__V1__AgentState to, const struct store_update *upd,
			    struct tsr_err *err)
{
	memset(&b->u, 0, sizeof(b->u));
	if (upd != NULL)
		b->u = *upd;
	/* Every ended record says when: the ended index (retention) is scored by it. */
	if (lifecycle_terminal(to) && !b->u.has_completed_at_ms) {
		b->u.has_completed_at_ms = true;
		b->u.completed_at_ms = clock_wall_ms();
	}
	if (lifecycle_state_name(to) == NULL ||
	    to == TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid target state %d",
				   (int)to);
	if (store_agent_key(st, agent_id, b->key, err) != 0 || store_check_update(&b->u, err) != 0)
		return -1;
	return 0;
}

int store_agent_transition(struct store *st, const char *agent_id, Tessera__V1__AgentState to,
			   const struct store_update *upd, char *position, size_t poslen,
			   struct tsr_err *err)
{
	struct agent_step step = { agent_id, lifecycle_state_name(to), position, poslen };
	struct store_args args = { 0 };
	struct transition_bufs b;

	if (poslen < STORE_POSITION_MAX)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "store: position buffer too small");
	if (transition_check(&b, st, agent_id, to, upd, err) != 0)
		return -1;
	store_args_eval(&args, st, "transition", b.key);
	args_transition(&args, st, agent_id, to, &b.u, false, b.etype);
	return store_eval(st, &args, step_outcome, &step, err);
}

/* A transition of a batch: its call and what the call borrows. */
struct transition_call {
	struct store_args args;
	struct transition_bufs b;
};

int store_agent_transitions(struct store *st, const struct store_transition *t, size_t n,
			    struct tsr_err *errs, struct tsr_err *err)
{
	struct store_args *calls[STORE_TRANSITIONS_MAX];
	redisReply *r[STORE_TRANSITIONS_MAX];
	size_t at[STORE_TRANSITIONS_MAX], m = 0;
	struct transition_call *c;
	int rc;

	assert(n >= 1 && n <= STORE_TRANSITIONS_MAX);
	tsr_err_clear(err);
	c = calloc(n, sizeof(*c));
	if (c == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		for (size_t i = 0; i < n; i++)
			errs[i] = *err;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		tsr_err_clear(&errs[i]);
		if (transition_check(&c[i].b, st, t[i].agent_id, t[i].to, t[i].upd, &errs[i]) != 0)
			continue;
		store_args_eval(&c[i].args, st, "transition", c[i].b.key);
		args_transition(&c[i].args, st, t[i].agent_id, t[i].to, &c[i].b.u, false,
				c[i].b.etype);
		/* One that cannot be sent fails alone, not the batch. */
		if (c[i].args.overflow) {
			tsr_err_set(&errs[i], GRPC_STATUS_INTERNAL, "valkey: command too long");
			continue;
		}
		calls[m] = &c[i].args;
		at[m++] = i;
	}
	rc = m > 0 ? store_eval_many(st, calls, m, r, err) : 0;
	for (size_t k = 0; k < m; k++) {
		size_t i = at[k];
		struct agent_step step = { t[i].agent_id, lifecycle_state_name(t[i].to), NULL, 0 };

		if (r[k] == NULL) {
			errs[i] = *err;
			continue;
		}
		(void)store_eval_use(r[k], step_outcome, &step, &errs[i]);
		freeReplyObject(r[k]);
	}
	free(c);
	return rc;
}

int store_agent_mark_kill(struct store *st, const char *agent_id, struct tsr_err *err)
{
	return store_agent_mark_kill_once(st, agent_id, NULL, err);
}

static int agent_own_strings(Tessera__V1__Agent *a, struct tsr_err *err)
{
	char **fields[] = { &a->id,    &a->spoke_id,   &a->type,   &a->task,
			    &a->error, &a->request_id, &a->output, &a->boot_id };

	return store_strings_own(fields, sizeof(fields) / sizeof(fields[0]), err);
}

/*
 * Adds the label field name = v to the agent msg, checked as the spawn
 * was; a field of no known name that is no label is skipped.
 */
static int agent_label(void *msg, const char *name, const redisReply *v, struct tsr_err *err)
{
	Tessera__V1__Agent *a = msg;
	Tessera__V1__Agent__LabelsEntry *e = NULL;
	const char *key;
	size_t i;

	if (strncmp(name, STORE_LABEL_PREFIX, strlen(STORE_LABEL_PREFIX)) != 0)
		return 0;
	key = name + strlen(STORE_LABEL_PREFIX);
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
	unsigned seen;
	int rc = -1;

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
	if (store_record_decode(&store_agent_record, a, h, agent_label, &seen, err) != 0)
		goto out;
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

/* The agent store_agent_get asked for, and where it goes. */
struct agent_ask {
	const char *agent_id;
	Tessera__V1__Agent **out;
};

static int agent_hash_decode(const redisReply *r, void *arg, struct tsr_err *err)
{
	const struct agent_ask *q = arg;

	return agent_decode(r, q->agent_id, q->out, err);
}

/* The "get" step's reply: replayed, or ok and the agent's hash pairs. */
static int agent_fresh_decode(const redisReply *r, void *arg, struct tsr_err *err)
{
	const struct agent_ask *q = arg;

	if (reply_is(r->element[0], "replayed"))
		return tsr_err_set(err, GRPC_STATUS_PERMISSION_DENIED, STORE_REPLAYED);
	if (!reply_is(r->element[0], "ok") || r->elements != 2)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey script: malformed get reply");
	return agent_decode(r->element[1], q->agent_id, q->out, err);
}

int store_agent_get_fresh(struct store *st, const char *agent_id, const struct store_nonce *nonce,
			  Tessera__V1__Agent **out, struct tsr_err *err)
{
	struct store_kill_item k = { .agent_id = agent_id, .nonce = nonce };

	if (store_agent_get_fresh_many(st, &k, 1, err) != 0)
		return -1;
	*err = k.err;
	*out = k.rec;
	return k.err.code == GRPC_STATUS_OK ? 0 : -1;
}

/* The "mark" step of k: kill_requested on a non-terminal agent, with k's nonce. */
static int kill_mark_args(struct store *st, struct store_kill_item *k, struct store_args *args,
			  char key[STORE_KEY_MAX], char nonce_key[STORE_KEY_MAX])
{
	const char *name;
	int slot;

	if (store_agent_key(st, k->agent_id, key, &k->err) != 0 ||
	    (k->nonce != NULL && store_nonce_key(st, k->nonce, nonce_key, &k->err) != 0))
		return -1;
	store_args_eval_nonce(args, st, "mark", key, k->nonce != NULL ? nonce_key : NULL);
	slot = store_args_list(args);
	for (int s = 1; (name = lifecycle_state_name((Tessera__V1__AgentState)s)) != NULL; s++)
		if (!lifecycle_terminal((Tessera__V1__AgentState)s))
			store_args_str(args, name);
	store_args_list_end(args, slot);
	slot = store_args_list(args);
	store_args_str(args, store_agent_fields[AF_KILL].name);
	store_args_int(args, 1);
	store_args_list_end(args, slot);
	if (k->nonce != NULL)
		store_args_int(args, k->nonce->ttl_ms);
	if (args->overflow)
		return tsr_err_set(&k->err, GRPC_STATUS_INTERNAL, "valkey: command too long");
	return 0;
}

/* The "get" step of k: its agent, unless its nonce (if any) is recorded already. */
static int kill_get_args(struct store *st, struct store_kill_item *k, struct store_args *args,
			 char key[STORE_KEY_MAX], char nonce_key[STORE_KEY_MAX])
{
	if (store_agent_key(st, k->agent_id, key, &k->err) != 0 ||
	    (k->nonce != NULL && store_nonce_key(st, k->nonce, nonce_key, &k->err) != 0))
		return -1;
	store_args_eval_nonce(args, st, "get", key, k->nonce != NULL ? nonce_key : NULL);
	return 0;
}

/* One step of a batch of kills, and the keys its arguments borrow. */
struct kill_call {
	struct store_args args;
	char key[STORE_KEY_MAX], nonce_key[STORE_KEY_MAX];
};

/*
 * Sends the step build makes for each of k[0..n) at once and decodes each
 * answer into its item: one that cannot be built fails alone.
 */
static int kill_steps(struct store *st, struct store_kill_item *k, size_t n, bool get,
		      struct tsr_err *err)
{
	struct store_args *calls[STORE_KILLS_MAX];
	redisReply *r[STORE_KILLS_MAX];
	size_t at[STORE_KILLS_MAX], m = 0;
	struct kill_call *c;
	int rc;

	assert(n >= 1 && n <= STORE_KILLS_MAX);
	tsr_err_clear(err);
	for (size_t i = 0; i < n; i++) {
		tsr_err_clear(&k[i].err);
		k[i].rec = NULL;
	}
	c = calloc(n, sizeof(*c));
	if (c == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		for (size_t i = 0; i < n; i++)
			k[i].err = *err;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if ((get ? kill_get_args : kill_mark_args)(st, &k[i], &c[i].args, c[i].key,
							   c[i].nonce_key) != 0)
			continue;
		calls[m] = &c[i].args;
		at[m++] = i;
	}
	rc = m > 0 ? store_eval_many(st, calls, m, r, err) : 0;
	for (size_t j = 0; j < m; j++) {
		struct store_kill_item *ki = &k[at[j]];
		struct agent_step step = { ki->agent_id, "kill requested", NULL, 0 };
		struct agent_ask q = { ki->agent_id, &ki->rec };

		if (r[j] == NULL) {
			ki->err = *err;
			continue;
		}
		(void)store_eval_use(r[j], get ? agent_fresh_decode : step_outcome,
				     get ? (void *)&q : (void *)&step, &ki->err);
		freeReplyObject(r[j]);
	}
	free(c);
	return rc;
}

int store_agent_get_fresh_many(struct store *st, struct store_kill_item *k, size_t n,
			       struct tsr_err *err)
{
	return kill_steps(st, k, n, true, err);
}

int store_agent_mark_kill_many(struct store *st, struct store_kill_item *k, size_t n,
			       struct tsr_err *err)
{
	return kill_steps(st, k, n, false, err);
}

int store_agent_mark_kill_once(struct store *st, const char *agent_id,
			       const struct store_nonce *nonce, struct tsr_err *err)
{
	struct store_kill_item k = { .agent_id = agent_id, .nonce = nonce };

	if (store_agent_mark_kill_many(st, &k, 1, err) != 0)
		return -1;
	*err = k.err;
	return k.err.code == GRPC_STATUS_OK ? 0 : -1;
}

/* One create of a batch on its way: its arguments and what they borrow. */
struct create_call {
	struct store_args args;
	struct agent_new n;
	char nonce_key[STORE_KEY_MAX];
	struct transition_bufs tb; /* with running */
};

/* Creates sent and not yet answered; items borrowed until the finish. */
struct store_create {
	struct store_create_item *items;
	size_t n, m;				    /* items; calls sent */
	size_t at[STORE_CREATES_MAX];		    /* the item of each call sent */
	struct store_args *sent[STORE_CREATES_MAX]; /* into calls */
	struct create_call calls[STORE_CREATES_MAX];
};

/* The call that records item it: 0, or -1 with its err set and nothing to send. */
static int create_build(struct store *st, struct store_create_item *it, struct create_call *c)
{
	const Tessera__V1__AgentState to = TESSERA__V1__AGENT_STATE__AGENT_STATE_RUNNING;
	const struct store_nonce *nonce = it->nonce;

	if ((nonce != NULL && store_nonce_key(st, nonce, c->nonce_key, &it->err) != 0) ||
	    create_prepare(st, it->a, &c->n, &it->err) != 0 ||
	    (it->running != NULL &&
	     transition_check(&c->tb, st, it->a->id, to, it->running, &it->err) != 0))
		return -1;
	args_create(&c->args, st, it->a, &c->n, nonce != NULL ? c->nonce_key : NULL,
		    nonce != NULL ? nonce->ttl_ms : 0);
	if (it->running != NULL) {
		store_args_str(&c->args, "then");
		args_transition(&c->args, st, it->a->id, to, &c->tb.u, true, c->tb.etype);
	}
	if (c->args.overflow)
		return tsr_err_set(&it->err, GRPC_STATUS_INTERNAL, "valkey: command too long");
	return 0;
}

int store_agent_create_send(struct store *st, struct store_create_item *items, size_t n,
			    struct store_create **out, struct tsr_err *err)
{
	struct store_create *c;

	assert(n >= 1 && n <= STORE_CREATES_MAX);
	*out = NULL;
	tsr_err_clear(err);
	for (size_t i = 0; i < n; i++) {
		tsr_err_clear(&items[i].err);
		items[i].existing[0] = '\0';
		items[i].rec = NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto failed;
	}
	c->items = items;
	c->n = n;
	/* One that cannot be built fails alone, not the batch. */
	for (size_t i = 0; i < n; i++) {
		if (create_build(st, &items[i], &c->calls[c->m]) != 0)
			continue;
		c->sent[c->m] = &c->calls[c->m].args;
		c->at[c->m++] = i;
	}
	if (c->m == 0) {
		free(c);
		return 0;
	}
	if (store_eval_many_send(st, c->sent, c->m, err) != 0)
		goto failed;
	*out = c;
	return 0;
failed:
	for (size_t k = 0; c != NULL && k < c->m; k++)
		items[c->at[k]].err = *err;
	if (c == NULL)
		for (size_t i = 0; i < n; i++)
			items[i].err = *err;
	free(c);
	return -1;
}

/* The agent create asked for, where the id of one made before goes, and its record. */
struct create_ask {
	const Tessera__V1__Agent *a;
	char *existing_id;
	size_t existing_len;
	bool running;
	Tessera__V1__Agent **out; /* with running, or NULL */
};

/*
 * Maps the script's answer to create: "existing" names the agent of the
 * request id. A create that went on to RUNNING answers as a transition
 * does, with the record after the event's position; the step has happened
 * once its outcome is ok, so a record that does not decode leaves *out
 * NULL rather than failing it.
 */
static int create_outcome(const redisReply *r, void *arg, struct tsr_err *err)
{
	const struct create_ask *c = arg;
	const Tessera__V1__Agent *a = c->a;
	const char *what = r->element[0]->str, *prev;
	char pos[STORE_POSITION_MAX];
	struct tsr_err derr;

	if (strcmp(what, "ok") == 0) {
		if (!c->running)
			return 0;
		if (step_outcome(r, &(struct agent_step){ a->id, "running", pos, sizeof(pos) },
				 err) != 0)
			return -1;
		if (c->out != NULL && r->elements == 3)
			(void)agent_decode(r->element[2], a->id, c->out, &derr);
		return 0;
	}
	if (strcmp(what, "replayed") == 0)
		return tsr_err_set(err, GRPC_STATUS_PERMISSION_DENIED, STORE_REPLAYED);
	if (strcmp(what, "exists") == 0)
		return tsr_err_set(err, GRPC_STATUS_ALREADY_EXISTS, "agent %s already exists",
				   a->id);
	if (strcmp(what, "existing") != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL,
				   "valkey script: create answered %.32s", what);
	prev = reply_str(r, 1);
	if (prev == NULL || !ids_valid_agent_id(prev))
		return tsr_err_set(err, GRPC_STATUS_INTERNAL,
				   "valkey: request %s maps to a malformed agent id",
				   a->request_id);
	snprintf(c->existing_id, c->existing_len, "%s", prev);
	return 0;
}

int store_agent_create_finish(struct store *st, struct store_create *c, struct tsr_err *err)
{
	redisReply *r[STORE_CREATES_MAX];
	int rc;

	if (c == NULL)
		return 0;
	rc = store_eval_many_receive(st, c->sent, c->m, r, err);
	for (size_t k = 0; k < c->m; k++) {
		struct store_create_item *it = &c->items[c->at[k]];
		struct create_ask ask = { it->a, it->existing, sizeof(it->existing),
					  it->running != NULL, &it->rec };

		if (r[k] == NULL) {
			it->err = *err;
			continue;
		}
		(void)store_eval_use(r[k], create_outcome, &ask, &it->err);
		freeReplyObject(r[k]);
	}
	free(c);
	return rc;
}

int store_agent_create(struct store *st, const Tessera__V1__Agent *a, char *existing_id,
		       size_t existing_len, struct tsr_err *err)
{
	struct store_create_item it = { .a = a };
	struct store_create *c;

	if (existing_len < TSR_AGENT_ID_MAX + 1)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL,
				   "store: existing id buffer too small");
	existing_id[0] = '\0';
	if (store_agent_create_send(st, &it, 1, &c, err) != 0 ||
	    store_agent_create_finish(st, c, err) != 0)
		return -1;
	if (it.err.code != GRPC_STATUS_OK) {
		*err = it.err;
		return -1;
	}
	snprintf(existing_id, existing_len, "%s", it.existing);
	return 0;
}

int store_agent_get(struct store *st, const char *agent_id, Tessera__V1__Agent **out,
		    struct tsr_err *err)
{
	struct agent_ask q = { agent_id, out };
	char key[STORE_KEY_MAX];
	struct store_args args = { 0 };

	if (store_agent_key(st, agent_id, key, err) != 0)
		return -1;
	store_args_str(&args, "HGETALL");
	store_args_str(&args, key);
	return store_request(st, &args, STORE_TIMEOUT_MS, agent_hash_decode, &q, err);
}

/* GET of the index version key: *seen says whether it names this version. */
static int index_version_seen(const redisReply *r, void *arg, struct tsr_err *err)
{
	bool *seen = arg;

	(void)err;
	*seen = r->type == REDIS_REPLY_STRING && strcmp(r->str, STORE_INDEX_VERSION) == 0;
	return 0;
}

/* One reindex step's reply: ok, then "" once no agent is left (*done). */
static int reindex_stepped(const redisReply *r, void *arg, struct tsr_err *err)
{
	bool *done = arg;
	const char *next = reply_str(r, 1);

	if (!reply_is(r->element[0], "ok") || next == NULL)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL,
				   "valkey script: malformed reindex reply");
	*done = next[0] == '\0';
	return 0;
}

/* The size of each state's index, for the states named in ARGV. */
static const char store_by_state_script[] =
	"local r = {}\n"
	"for i, s in ipairs(ARGV) do r[i] = redis.call('ZCARD', KEYS[1] .. ':state:' .. s) end\n"
	"return r\n";

struct by_state {
	int64_t *counts;
	size_t n;
};

static int by_state_counted(const redisReply *r, void *arg, struct tsr_err *err)
{
	const struct by_state *b = arg;

	if (r->type != REDIS_REPLY_ARRAY || r->elements != b->n - 1)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: malformed state counts");
	for (size_t i = 0; i < r->elements; i++) {
		if (r->element[i]->type != REDIS_REPLY_INTEGER)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL,
					   "valkey: malformed state counts");
		b->counts[i + 1] = r->element[i]->integer;
	}
	return 0;
}

int store_agents_by_state(struct store *st, int64_t *counts, size_t n, struct tsr_err *err)
{
	struct by_state b = { counts, n };
	struct store_args args = { 0 };
	const char *name;

	assert(n >= 2);
	memset(counts, 0, n * sizeof(*counts));
	store_args_str(&args, "EVAL_RO");
	store_args_str(&args, store_by_state_script);
	store_args_str(&args, "1");
	store_args_str(&args, st->k_index);
	for (size_t s = 1; s < n; s++) {
		name = lifecycle_state_name((Tessera__V1__AgentState)s);
		assert(name != NULL);
		store_args_str(&args, name);
	}
	return store_request(st, &args, STORE_TIMEOUT_MS, by_state_counted, &b, err);
}

int store_indexes_ensure(struct store *st, struct tsr_err *err)
{
	char key[STORE_KEY_MAX];
	struct store_args args;
	bool done = false;

	if (st->indexes_ok)
		return 0;
	if (store_key(key, st->k_index, STORE_INDEX_VERSION_SUFFIX, err) != 0)
		return -1;
	memset(&args, 0, sizeof(args));
	store_args_str(&args, "GET");
	store_args_str(&args, key);
	if (store_request(st, &args, STORE_TIMEOUT_MS, index_version_seen, &done, err) != 0)
		return -1;
	/* Records from before the indexes: index them all, a batch per step. */
	for (long long from = 0; !done; from += STORE_REINDEX_BATCH) {
		if (from == (long long)STORE_SCAN_PAGES_MAX * STORE_REINDEX_BATCH)
			return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
					   "more than %d batches of agents to index",
					   STORE_SCAN_PAGES_MAX);
		memset(&args, 0, sizeof(args));
		store_args_eval(&args, st, "reindex", NULL);
		store_args_str(&args, st->agent_prefix);
		store_args_int(&args, from);
		store_args_int(&args, STORE_REINDEX_BATCH);
		store_args_str(&args, STORE_INDEX_VERSION);
		if (store_eval(st, &args, reindex_stepped, &done, err) != 0)
			return -1;
	}
	st->indexes_ok = true;
	return 0;
}

/* The arguments of "list": where the page starts, its size, the filters. */
static void args_list(struct store_args *args, const struct store *st,
		      const Tessera__V1__AgentState *states, size_t nstates,
		      const char *type_filter, const struct tsr_label *labels, size_t nlabels,
		      uint32_t page_size, const char *page_token)
{
	int slot;

	store_args_eval(args, st, "list", NULL);
	store_args_str(args, st->agent_prefix);
	store_args_str(args, page_token);
	store_args_int(args, page_size);
	store_args_int(args, STORE_LIST_SCAN_MAX);
	store_args_str(args, type_filter);
	slot = store_args_list(args);
	for (size_t i = 0; i < nstates; i++)
		store_args_state(args, states[i]);
	store_args_list_end(args, slot);
	slot = store_args_list(args);
	for (size_t i = 0; i < nlabels; i++) {
		store_args_str(args, labels[i].key);
		store_args_str(args, labels[i].value);
	}
	store_args_list_end(args, slot);
}

/* One agent of a list reply, {id, pairs}. */
static int list_item_decode(const redisReply *item, Tessera__V1__Agent **out, struct tsr_err *err)
{
	if (item->type != REDIS_REPLY_ARRAY || item->elements != 2 ||
	    item->element[0]->type != REDIS_REPLY_STRING)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey script: malformed list item");
	if (agent_decode(item->element[1], item->element[0]->str, out, err) == 0)
		return 0;
	/* An index entry without its record is damage: say so, don't hide it. */
	if (err->code == GRPC_STATUS_NOT_FOUND)
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: indexed agent %.*s has no record",
			    TSR_AGENT_ID_MAX, item->element[0]->str);
	return -1;
}

/* The size of the page asked for, and where it goes. */
struct page_ask {
	uint32_t page_size;
	Tessera__V1__AgentPage **out;
};

/*
 * Whether page's agent n_agents still fits TSR_PAGE_BYTES_MAX with those
 * before it (*bytes, their packed size so far, which it grows). The first
 * always does, so that every page moves on.
 */
static bool list_page_fits(const Tessera__V1__AgentPage *page, size_t *bytes)
{
	size_t item = pb_element_size(&page->agents[page->n_agents]->base);

	if (page->n_agents > 0 && *bytes + item > TSR_PAGE_BYTES_MAX)
		return false;
	*bytes += item;
	return true;
}

/* Ends page after its last agent: the next page starts after that one. */
static int list_page_cut(Tessera__V1__AgentPage *page, struct tsr_err *err)
{
	char *next = strdup(page->agents[page->n_agents - 1]->id);

	if (next == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "store: out of memory");
	free(page->next_page_token);
	page->next_page_token = next;
	return 0;
}

/* The page in a list reply: ok, the id to go on after ("": the end), then its agents. */
static int list_reply_decode(const redisReply *r, void *arg, struct tsr_err *err)
{
	const struct page_ask *q = arg;
	Tessera__V1__AgentPage *resp = NULL;
	const char *next = reply_str(r, 1);
	size_t bytes = 0;
	int rc = -1;

	if (reply_is(r->element[0], "badcursor")) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "page token matches no agent");
		goto out;
	}
	if (!reply_is(r->element[0], "ok") || next == NULL ||
	    (next[0] != '\0' && !ids_valid_agent_id(next)) || r->elements - 2 > q->page_size) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey script: malformed list reply");
		goto out;
	}
	resp = malloc(sizeof(*resp));
	if (resp == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "store: out of memory");
		goto out;
	}
	tessera__v1__agent_page__init(resp);
	resp->next_page_token = strdup(next);
	if (r->elements > 2)
		resp->agents = calloc(r->elements - 2, sizeof(*resp->agents));
	if (resp->next_page_token == NULL || (r->elements > 2 && resp->agents == NULL)) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "store: out of memory");
		goto out;
	}
	for (size_t i = 2; i < r->elements; i++) {
		if (list_item_decode(r->element[i], &resp->agents[resp->n_agents], err) != 0)
			goto out;
		if (!list_page_fits(resp, &bytes)) {
			/* The rest waits for the next page, which starts after the last kept. */
			tessera__v1__agent__free_unpacked(resp->agents[resp->n_agents], NULL);
			resp->agents[resp->n_agents] = NULL;
			if (list_page_cut(resp, err) != 0)
				goto out;
			break;
		}
		resp->n_agents++;
	}
	*q->out = resp;
	resp = NULL;
	rc = 0;
out:
	if (resp != NULL)
		tessera__v1__agent_page__free_unpacked(resp, NULL);
	return rc;
}

/*
 * One page, matching any of states (none: any state), the type (""
 * any) and every one of the labels.
 */
static int store_list_page(struct store *st, const Tessera__V1__AgentState *states, size_t nstates,
			   const char *type_filter, const struct tsr_label *labels, size_t nlabels,
			   uint32_t page_size, const char *page_token, Tessera__V1__AgentPage **out,
			   struct tsr_err *err)
{
	struct page_ask q = { page_size, out };
	struct store_args args = { 0 };

	if (type_filter[0] != '\0' && !ids_valid_name(type_filter))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid type filter");
	if (ids_check_labels(labels, nlabels, "selector label", err) != 0 ||
	    store_indexes_ensure(st, err) != 0)
		return -1;
	if (page_token[0] != '\0' && !ids_valid_agent_id(page_token))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid page token");
	if (q.page_size == 0)
		q.page_size = STORE_PAGE_DEFAULT;
	if (q.page_size > TSR_PAGE_SIZE_MAX)
		q.page_size = TSR_PAGE_SIZE_MAX;
	args_list(&args, st, states, nstates, type_filter, labels, nlabels, q.page_size,
		  page_token);
	return store_eval(st, &args, list_reply_decode, &q, err);
}

int store_agent_list(struct store *st, Tessera__V1__AgentState state_filter,
		     const char *type_filter, const struct tsr_label *labels, size_t nlabels,
		     uint32_t page_size, const char *page_token, Tessera__V1__AgentPage **out,
		     struct tsr_err *err)
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
	Tessera__V1__AgentPage *page = NULL;
	char token[TSR_AGENT_ID_MAX + 1] = "";
	int rc = -1;

	for (int i = 0;; i++) {
		if (i == STORE_SCAN_PAGES_MAX) {
			tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
				    "more than %d pages of agents", STORE_SCAN_PAGES_MAX);
			goto out;
		}
		if (store_list_page(st, &s, 1, "", NULL, 0, TSR_PAGE_SIZE_MAX, token, &page, err) !=
		    0)
			goto out;
		for (size_t k = 0; k < page->n_agents; k++)
			if (fn(arg, page->agents[k], err) != 0)
				goto out;
		if (page->next_page_token[0] == '\0')
			break;
		snprintf(token, sizeof(token), "%s", page->next_page_token);
		tessera__v1__agent_page__free_unpacked(page, NULL);
		page = NULL;
	}
	rc = 0;
out:
	if (page != NULL)
		tessera__v1__agent_page__free_unpacked(page, NULL);
	return rc;
}

int store_agents_nonterminal(struct store *st, store_agent_fn fn, void *arg, struct tsr_err *err)
{
	for (int s = 1; lifecycle_state_name((Tessera__V1__AgentState)s) != NULL; s++)
		if (!lifecycle_terminal((Tessera__V1__AgentState)s) &&
		    store_agents_in_state(st, (Tessera__V1__AgentState)s, fn, arg, err) != 0)
			return -1;
	return 0;
}
