/*
 * store: the hiredis side of the spoke's Valkey. Owns the connection and
 * its recovery (reconnect, script reload), the key names, the argument
 * lists handed to store_script, and the decoding of what Valkey returns
 * into freshly malloc'd protobuf messages, checked field by field.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/un.h>

#include "clock.h"
#include "ids.h"
#include "lifecycle.h"
#include "store_script.h"

#define STORE_KEY_MAX 192
#define STORE_ARGS_MAX 96
#define STORE_NUM_LEN 24
#define STORE_SHA_LEN 40
#define STORE_FIELDS_MAX 64		/* fields of one hash or stream entry */
#define STORE_SCAN_PAGES_MAX 100000	/* pages of one full walk of the index */
#define STORE_EVENT_TYPE_MAX 32

struct store {
	redisContext *ctx;		/* owned; NULL while disconnected */
	bool unix_socket;
	char addr[STORE_ADDR_MAX];	/* as given, for messages */
	char host[STORE_ADDR_MAX];	/* host name or socket path */
	int port;
	char spoke[TSR_NAME_MAX + 1];
	char agent_prefix[STORE_KEY_MAX];
	char k_index[STORE_KEY_MAX];
	char k_requests[STORE_KEY_MAX];
	char k_events[STORE_KEY_MAX];	/* also the PUBLISH channel */
	char sha[STORE_SHA_LEN + 1];
};

/*
 * One command's arguments. Appending never fails on the spot: an overflow
 * is remembered and refused when the command is sent, so that building a
 * long list needs no check per argument.
 */
struct store_args {
	int argc;
	bool overflow;
	const char *argv[STORE_ARGS_MAX];	/* borrowed, or pointing into nums */
	size_t len[STORE_ARGS_MAX];
	char nums[STORE_ARGS_MAX][STORE_NUM_LEN];
};

/* Agent hash fields. Writer and reader share these names. */
enum {
	AF_ID, AF_SPOKE, AF_TYPE, AF_TASK, AF_STATE, AF_CREATED, AF_STARTED,
	AF_COMPLETED, AF_EXIT, AF_SIGNAL, AF_ERROR, AF_PID, AF_REQUEST, AF_KILL,
	AF_COUNT
};
static const char *const agent_fields[AF_COUNT] = {
	[AF_ID] = "id", [AF_SPOKE] = "spoke_id", [AF_TYPE] = "type", [AF_TASK] = "task",
	[AF_STATE] = "state", [AF_CREATED] = "created_at_ms",
	[AF_STARTED] = "started_at_ms", [AF_COMPLETED] = "completed_at_ms",
	[AF_EXIT] = "exit_code", [AF_SIGNAL] = "signal", [AF_ERROR] = "error",
	[AF_PID] = "pid", [AF_REQUEST] = "request_id", [AF_KILL] = "kill_requested",
};

/*
 * Event stream fields. The script copies event_copied from the agent hash
 * by name, so those keep their agent_fields names here.
 */
enum {
	EF_TYPE, EF_AGENT, EF_SPOKE, EF_OLD, EF_NEW, EF_TIME, EF_STARTED,
	EF_COMPLETED, EF_EXIT, EF_SIGNAL, EF_ERROR, EF_COUNT
};
static const char *const event_fields[EF_COUNT] = {
	[EF_TYPE] = "type", [EF_AGENT] = "agent", [EF_SPOKE] = "spoke", [EF_OLD] = "old",
	[EF_NEW] = "new", [EF_TIME] = "time", [EF_STARTED] = "started_at_ms",
	[EF_COMPLETED] = "completed_at_ms", [EF_EXIT] = "exit_code", [EF_SIGNAL] = "signal",
	[EF_ERROR] = "error",
};
static const int event_copied[] = { AF_STARTED, AF_COMPLETED, AF_EXIT, AF_SIGNAL, AF_ERROR };

static void args_mem(struct store_args *a, const char *p, size_t len)
{
	if (a->argc == STORE_ARGS_MAX) {
		a->overflow = true;
		return;
	}
	a->argv[a->argc] = p;
	a->len[a->argc] = len;
	a->argc++;
}

static void args_str(struct store_args *a, const char *s)
{
	args_mem(a, s, strlen(s));
}

static void args_int(struct store_args *a, long long v)
{
	char *buf;
	int n;

	if (a->argc == STORE_ARGS_MAX) {
		a->overflow = true;
		return;
	}
	buf = a->nums[a->argc];
	n = snprintf(buf, STORE_NUM_LEN, "%lld", v);
	args_mem(a, buf, (size_t)n);
}

/* Opens a counted list; args_list_end writes its count into the slot returned. */
static int args_list(struct store_args *a)
{
	args_int(a, 0);
	return a->argc - 1;
}

static void args_list_end(struct store_args *a, int slot)
{
	int n;

	if (a->overflow)
		return;
	n = snprintf(a->nums[slot], STORE_NUM_LEN, "%d", a->argc - slot - 1);
	a->len[slot] = (size_t)n;
}

static void args_state(struct store_args *a, Tessera__V1__AgentState s)
{
	args_str(a, lifecycle_state_name(s));
}

/* EVALSHA of store_script with the keys; agent_key NULL for "list". */
static void args_eval(struct store_args *a, const struct store *st, const char *op,
		      const char *agent_key)
{
	args_str(a, "EVALSHA");
	/* Loaded at store_open; the text never changes, so neither does its SHA. */
	args_mem(a, st->sha, STORE_SHA_LEN);
	args_int(a, agent_key != NULL ? 4 : 3);
	args_str(a, st->k_index);
	args_str(a, st->k_requests);
	args_str(a, st->k_events);
	if (agent_key != NULL)
		args_str(a, agent_key);
	args_str(a, op);
	args_str(a, st->k_events);
	args_int(a, STORE_EVENTS_KEPT);
}

static struct timeval store_tv(int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	return tv;
}

static void store_drop(struct store *st)
{
	if (st->ctx != NULL)
		redisFree(st->ctx);
	st->ctx = NULL;
}

/*
 * The status for an error reply: those a restarting, failing over or busy
 * Valkey gives are worth retrying (UNAVAILABLE); the rest are bugs or
 * damage (INTERNAL).
 */
static int store_reply_error(const redisReply *r, const char *what, struct tsr_err *err)
{
	static const char *const transient[] = { "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN",
						 "READONLY", "CLUSTERDOWN" };
	grpc_status_code code = GRPC_STATUS_INTERNAL;
	size_t n;

	for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++) {
		n = strlen(transient[i]);
		if (strncmp(r->str, transient[i], n) == 0 && (r->str[n] == ' ' || r->str[n] == '\0'))
			code = GRPC_STATUS_UNAVAILABLE;
	}
	if (strncmp(r->str, "OOM ", 4) == 0)
		code = GRPC_STATUS_RESOURCE_EXHAUSTED;
	return tsr_err_set(err, code, "valkey %s: %.200s", what, r->str);
}

/* Sends one command on the current connection; a reply of any type is 0. */
static int store_exec(struct store *st, struct store_args *a, int timeout_ms,
		      redisReply **out, struct tsr_err *err)
{
	redisReply *r = NULL;
	int rc = -1;

	if (a->overflow) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: command too long");
		goto out;
	}
	if (timeout_ms != STORE_TIMEOUT_MS &&
	    redisSetTimeout(st->ctx, store_tv(timeout_ms)) != REDIS_OK) {
		tsr_err_set(err, GRPC_STATUS_UNAVAILABLE, "valkey at %s: cannot set timeout",
			    st->addr);
		store_drop(st);
		goto out;
	}
	r = redisCommandArgv(st->ctx, a->argc, a->argv, a->len);
	if (r == NULL) {
		tsr_err_set(err, GRPC_STATUS_UNAVAILABLE, "valkey at %s: %s", st->addr,
			    st->ctx->errstr[0] != '\0' ? st->ctx->errstr : "connection lost");
		store_drop(st);
		goto out;
	}
	if (timeout_ms != STORE_TIMEOUT_MS &&
	    redisSetTimeout(st->ctx, store_tv(STORE_TIMEOUT_MS)) != REDIS_OK) {
		tsr_err_set(err, GRPC_STATUS_UNAVAILABLE, "valkey at %s: cannot set timeout",
			    st->addr);
		store_drop(st);
		goto out;
	}
	*out = r;
	r = NULL;
	rc = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

static int store_load_script(struct store *st, struct tsr_err *err)
{
	struct store_args a = { 0 };
	redisReply *r = NULL;
	int rc = -1;

	args_str(&a, "SCRIPT");
	args_str(&a, "LOAD");
	args_str(&a, store_script);
	if (store_exec(st, &a, STORE_TIMEOUT_MS, &r, err) != 0)
		goto out;
	if (r->type == REDIS_REPLY_ERROR) {
		store_reply_error(r, "SCRIPT LOAD", err);
		goto out;
	}
	if (r->type != REDIS_REPLY_STRING || r->len != STORE_SHA_LEN) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey SCRIPT LOAD: unexpected reply");
		goto out;
	}
	memcpy(st->sha, r->str, STORE_SHA_LEN + 1);
	rc = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

static int store_connect(struct store *st, struct tsr_err *err)
{
	struct timeval tv = store_tv(STORE_TIMEOUT_MS);
	int rc = -1;

	store_drop(st);
	if (st->unix_socket)
		st->ctx = redisConnectUnixWithTimeout(st->host, tv);
	else
		st->ctx = redisConnectWithTimeout(st->host, st->port, tv);
	if (st->ctx == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "valkey: out of memory");
		goto out;
	}
	if (st->ctx->err != 0) {
		tsr_err_set(err, GRPC_STATUS_UNAVAILABLE, "valkey at %s: %s", st->addr,
			    st->ctx->errstr);
		goto out;
	}
	/* hiredis 0.14 opens its socket without O_CLOEXEC. */
	if (redisSetTimeout(st->ctx, tv) != REDIS_OK ||
	    fcntl(st->ctx->fd, F_SETFD, FD_CLOEXEC) != 0) {
		tsr_err_set(err, GRPC_STATUS_UNAVAILABLE, "valkey at %s: socket setup: %s",
			    st->addr, strerror(errno));
		goto out;
	}
	/* Every connection may be to a Valkey restarted with an empty script cache. */
	if (store_load_script(st, err) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		store_drop(st);
	return rc;
}

/*
 * Anything readable on an idle connection is EOF, a reset, or bytes no
 * request asked for: in each case the connection is useless. Checking
 * before sending lets a call survive a Valkey restart without resending
 * a command that may already have been applied.
 */
static bool store_conn_usable(const struct store *st)
{
	struct pollfd p = { .fd = st->ctx->fd, .events = POLLIN | POLLRDHUP };

	return st->ctx->err == 0 && poll(&p, 1, 0) == 0;
}

static int store_call(struct store *st, struct store_args *a, int timeout_ms,
		      redisReply **out, struct tsr_err *err)
{
	if ((st->ctx == NULL || !store_conn_usable(st)) && store_connect(st, err) != 0)
		return -1;
	return store_exec(st, a, timeout_ms, out, err);
}

/* store_call for replies that may not be errors. */
static int store_command(struct store *st, struct store_args *a, int timeout_ms,
			 redisReply **out, struct tsr_err *err)
{
	redisReply *r = NULL;
	int rc = -1;

	if (store_call(st, a, timeout_ms, &r, err) != 0)
		goto out;
	if (r->type == REDIS_REPLY_ERROR) {
		store_reply_error(r, a->argv[0], err);
		goto out;
	}
	*out = r;
	r = NULL;
	rc = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

/*
 * Runs the script; a NOSCRIPT answer (cache flushed under a live
 * connection) means nothing ran, so the script is loaded and the call
 * made once more. *out is an array whose first element is a string.
 */
static int store_eval(struct store *st, struct store_args *a, redisReply **out,
		      struct tsr_err *err)
{
	redisReply *r = NULL;
	int rc = -1;

	if (store_call(st, a, STORE_TIMEOUT_MS, &r, err) != 0)
		goto out;
	if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
		freeReplyObject(r);
		r = NULL;
		if (store_load_script(st, err) != 0 ||
		    store_call(st, a, STORE_TIMEOUT_MS, &r, err) != 0)
			goto out;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		store_reply_error(r, "script", err);
		goto out;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_STRING) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey script: unexpected reply");
		goto out;
	}
	*out = r;
	r = NULL;
	rc = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

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

static int store_parse_addr(struct store *st, const char *addr, struct tsr_err *err)
{
	struct sockaddr_un sun;
	const char *colon, *host;
	size_t len, hlen;
	char *end;
	long port;

	len = strnlen(addr, STORE_ADDR_MAX);
	if (len == 0 || len == STORE_ADDR_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "valkey address: empty or longer than %d", STORE_ADDR_MAX - 1);
	memcpy(st->addr, addr, len + 1);
	if (strncmp(addr, "unix:", 5) == 0) {
		if (addr[5] != '/' || len - 5 >= sizeof(sun.sun_path))
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "valkey address %s: want unix:/absolute/path", addr);
		st->unix_socket = true;
		memcpy(st->host, addr + 5, len - 4);
		return 0;
	}
	colon = strrchr(addr, ':');
	if (colon == NULL || colon[1] == '\0')
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "valkey address %s: want host:port", addr);
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || colon[1] < '0' || colon[1] > '9' || port < 1 ||
	    port > 65535)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "valkey address %s: bad port", addr);
	host = addr;
	hlen = (size_t)(colon - addr);
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	if (hlen == 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "valkey address %s: no host", addr);
	memcpy(st->host, host, hlen);
	st->host[hlen] = '\0';
	st->port = (int)port;
	return 0;
}

static int store_key(char *buf, const char *prefix, const char *name, struct tsr_err *err)
{
	int n = snprintf(buf, STORE_KEY_MAX, "%s%s", prefix, name);

	if (n < 0 || n >= STORE_KEY_MAX)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "store: key too long");
	return 0;
}

static int store_agent_key(const struct store *st, const char *agent_id, char *buf,
			   struct tsr_err *err)
{
	if (!ids_valid_agent_id(agent_id))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid agent id");
	return store_key(buf, st->agent_prefix, agent_id, err);
}

int store_open(const char *addr, const char *spoke_id, struct store **out, struct tsr_err *err)
{
	char prefix[STORE_KEY_MAX];
	struct store *st;
	int rc = -1;

	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "store: out of memory");
	if (!ids_valid_name(spoke_id)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid spoke id");
		goto out;
	}
	snprintf(st->spoke, sizeof(st->spoke), "%s", spoke_id);
	if (store_parse_addr(st, addr, err) != 0)
		goto out;
	/* The braces make every key of one spoke hash to one cluster slot. */
	snprintf(prefix, sizeof(prefix), "tessera:{%s}:", spoke_id);
	if (store_key(st->agent_prefix, prefix, "agent:", err) != 0 ||
	    store_key(st->k_index, prefix, "agents", err) != 0 ||
	    store_key(st->k_requests, prefix, "requests", err) != 0 ||
	    store_key(st->k_events, prefix, "events", err) != 0)
		goto out;
	if (store_connect(st, err) != 0)
		goto out;
	*out = st;
	st = NULL;
	rc = 0;
out:
	store_close(st);
	return rc;
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	store_drop(st);
	free(st);
}

int store_ping(struct store *st, struct tsr_err *err)
{
	struct store_args a = { 0 };
	redisReply *r = NULL;
	int rc = -1;

	args_str(&a, "PING");
	if (store_command(st, &a, STORE_TIMEOUT_MS, &r, err) != 0)
		goto out;
	if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey PING: unexpected reply");
		goto out;
	}
	rc = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

int store_agent_create(struct store *st, const Tessera__V1__Agent *a, char *existing_id,
		       size_t existing_len, struct tsr_err *err)
{
	const Tessera__V1__AgentState spawning = TESSERA__V1__AGENT_STATE__AGENT_STATE_SPAWNING;
	char key[STORE_KEY_MAX], spoke[TSR_NAME_MAX + 1], etype[STORE_EVENT_TYPE_MAX];
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
	created = a->created_at_ms != 0 ? a->created_at_ms : clock_wall_ms();
	snprintf(etype, sizeof(etype), "agent.%s", lifecycle_state_name(spawning));

	args_eval(&args, st, "create", key);
	args_str(&args, a->id);
	args_int(&args, created);
	args_str(&args, a->request_id);
	slot = args_list(&args);
	args_str(&args, agent_fields[AF_ID]);
	args_str(&args, a->id);
	args_str(&args, agent_fields[AF_SPOKE]);
	args_str(&args, st->spoke);
	args_str(&args, agent_fields[AF_TYPE]);
	args_str(&args, a->type);
	args_str(&args, agent_fields[AF_TASK]);
	args_str(&args, a->task);
	args_str(&args, agent_fields[AF_STATE]);
	args_state(&args, spawning);
	args_str(&args, agent_fields[AF_CREATED]);
	args_int(&args, created);
	args_str(&args, agent_fields[AF_STARTED]);
	args_int(&args, 0);
	args_str(&args, agent_fields[AF_COMPLETED]);
	args_int(&args, 0);
	args_str(&args, agent_fields[AF_PID]);
	args_int(&args, 0);
	args_str(&args, agent_fields[AF_ERROR]);
	args_str(&args, "");
	args_str(&args, agent_fields[AF_REQUEST]);
	args_str(&args, a->request_id);
	args_str(&args, agent_fields[AF_KILL]);
	args_int(&args, 0);
	args_list_end(&args, slot);
	slot = args_list(&args);
	args_str(&args, event_fields[EF_TYPE]);
	args_str(&args, etype);
	args_str(&args, event_fields[EF_AGENT]);
	args_str(&args, a->id);
	args_str(&args, event_fields[EF_SPOKE]);
	args_str(&args, st->spoke);
	args_str(&args, event_fields[EF_OLD]);
	args_state(&args, TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED);
	args_str(&args, event_fields[EF_NEW]);
	args_state(&args, spawning);
	args_str(&args, event_fields[EF_TIME]);
	args_int(&args, created);
	args_list_end(&args, slot);

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
	if (u->has_error &&
	    (u->error == NULL || strnlen(u->error, STORE_ERROR_MAX + 1) > STORE_ERROR_MAX))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "error text missing or longer than %d bytes", STORE_ERROR_MAX);
	return 0;
}

/* The pairs of upd that go into the agent hash. */
static void args_update(struct store_args *a, const struct store_update *u)
{
	if (u->has_started_at_ms) {
		args_str(a, agent_fields[AF_STARTED]);
		args_int(a, u->started_at_ms);
	}
	if (u->has_completed_at_ms) {
		args_str(a, agent_fields[AF_COMPLETED]);
		args_int(a, u->completed_at_ms);
	}
	if (u->has_pid) {
		args_str(a, agent_fields[AF_PID]);
		args_int(a, u->pid);
	}
	if (u->has_exit_code) {
		args_str(a, agent_fields[AF_EXIT]);
		args_int(a, u->exit_code);
	}
	if (u->has_signal) {
		args_str(a, agent_fields[AF_SIGNAL]);
		args_int(a, u->signal);
	}
	if (u->has_error) {
		args_str(a, agent_fields[AF_ERROR]);
		args_str(a, u->error);
	}
	if (u->has_kill_requested) {
		args_str(a, agent_fields[AF_KILL]);
		args_int(a, u->kill_requested ? 1 : 0);
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

	args_eval(&args, st, "transition", key);
	slot = args_list(&args);
	for (size_t i = 0; i < nfrom; i++)
		args_state(&args, from[i]);
	args_list_end(&args, slot);
	slot = args_list(&args);
	args_str(&args, agent_fields[AF_STATE]);
	args_str(&args, to_name);
	args_update(&args, upd);
	args_list_end(&args, slot);
	/* exit code and signal are one oneof: setting one clears the other. */
	slot = args_list(&args);
	if (upd->has_exit_code)
		args_str(&args, agent_fields[AF_SIGNAL]);
	if (upd->has_signal)
		args_str(&args, agent_fields[AF_EXIT]);
	args_list_end(&args, slot);
	slot = args_list(&args);
	for (size_t i = 0; i < sizeof(event_copied) / sizeof(event_copied[0]); i++)
		args_str(&args, agent_fields[event_copied[i]]);
	args_list_end(&args, slot);
	slot = args_list(&args);
	args_str(&args, event_fields[EF_TYPE]);
	args_str(&args, etype);
	args_str(&args, event_fields[EF_AGENT]);
	args_str(&args, agent_id);
	args_str(&args, event_fields[EF_SPOKE]);
	args_str(&args, st->spoke);
	args_str(&args, event_fields[EF_NEW]);
	args_str(&args, to_name);
	args_str(&args, event_fields[EF_TIME]);
	args_int(&args, clock_wall_ms());
	args_list_end(&args, slot);

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
	args_eval(&args, st, "mark", key);
	slot = args_list(&args);
	for (int s = 1; (name = lifecycle_state_name((Tessera__V1__AgentState)s)) != NULL; s++)
		if (!lifecycle_terminal((Tessera__V1__AgentState)s))
			args_str(&args, name);
	args_list_end(&args, slot);
	slot = args_list(&args);
	args_str(&args, agent_fields[AF_KILL]);
	args_int(&args, 1);
	args_list_end(&args, slot);
	if (store_eval(st, &args, &r, err) != 0 ||
	    store_outcome(r, agent_id, "kill requested", err) != 0)
		goto out;
	rc = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

/* Decoding. Every string a message gets is its own malloc'd copy. */

static int field_text(const redisReply *v, size_t max, char **dst, const char *name,
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

static int field_int(const redisReply *v, int64_t min, int64_t max, int64_t *out,
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

static int field_state(const redisReply *v, Tessera__V1__AgentState *out, const char *name,
		       struct tsr_err *err)
{
	if (lifecycle_state_parse(v->str, out) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: malformed field %s", name);
	return 0;
}

/*
 * Gives every string still at protobuf-c's static default a malloc'd ""
 * of its own, so that a caller may free or replace any string field.
 */
static int strings_own(char **fields[], size_t n, struct tsr_err *err)
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

/* Index of name in names, or -1. */
static int field_index(const char *const *names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

/* Checks that r is an array of string pairs of bounded count. */
static int pairs_check(const redisReply *r, const char *what, struct tsr_err *err)
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

static int agent_field(Tessera__V1__Agent *a, int f, const redisReply *v, struct tsr_err *err)
{
	const char *name = agent_fields[f];
	int64_t n;

	switch (f) {
	case AF_ID:
		return field_text(v, TSR_AGENT_ID_MAX, &a->id, name, err);
	case AF_SPOKE:
		return field_text(v, TSR_NAME_MAX, &a->spoke_id, name, err);
	case AF_TYPE:
		return field_text(v, TSR_NAME_MAX, &a->type, name, err);
	case AF_TASK:
		return field_text(v, STORE_TASK_MAX, &a->task, name, err);
	case AF_ERROR:
		return field_text(v, STORE_ERROR_MAX, &a->error, name, err);
	case AF_REQUEST:
		return field_text(v, TSR_NAME_MAX, &a->request_id, name, err);
	case AF_STATE:
		return field_state(v, &a->state, name, err);
	case AF_CREATED:
		return field_int(v, 0, INT64_MAX, &a->created_at_ms, name, err);
	case AF_STARTED:
		return field_int(v, 0, INT64_MAX, &a->started_at_ms, name, err);
	case AF_COMPLETED:
		return field_int(v, 0, INT64_MAX, &a->completed_at_ms, name, err);
	case AF_PID:
		if (field_int(v, 0, INT32_MAX, &n, name, err) != 0)
			return -1;
		a->pid = (int32_t)n;
		return 0;
	case AF_KILL:
		if (field_int(v, 0, 1, &n, name, err) != 0)
			return -1;
		a->kill_requested = n == 1;
		return 0;
	case AF_EXIT:
	case AF_SIGNAL:
		if (a->end_case != TESSERA__V1__AGENT__END__NOT_SET)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL,
					   "valkey: agent has both exit_code and signal");
		if (field_int(v, INT32_MIN, INT32_MAX, &n, name, err) != 0)
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
			    &a->request_id };

	return strings_own(fields, sizeof(fields) / sizeof(fields[0]), err);
}

/* Builds an agent from the pairs of its hash; fields of no known name are skipped. */
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
	if (pairs_check(h, "agent record", err) != 0)
		goto out;
	if (h->elements == 0) {
		tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "agent %s not found", agent_id);
		goto out;
	}
	for (size_t i = 0; i < h->elements; i += 2) {
		f = field_index(agent_fields, AF_COUNT, h->element[i]->str);
		if (f < 0)
			continue;
		/* A field read once owns its string: never overwrite it. */
		if (seen & (1u << f)) {
			tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: field %s twice",
				    agent_fields[f]);
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
	args_str(&args, "HGETALL");
	args_str(&args, key);
	if (store_command(st, &args, STORE_TIMEOUT_MS, &r, err) != 0 ||
	    agent_decode(r, agent_id, out, err) != 0)
		goto out;
	rc = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

/* One page of the index, matching any of states (none: any state). */
static int store_list_page(struct store *st, const Tessera__V1__AgentState *states,
			   size_t nstates, const char *type_filter, uint32_t page_size,
			   const char *page_token, Tessera__V1__ListAgentsResponse **out,
			   struct tsr_err *err)
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
	if (page_token[0] != '\0' && !ids_valid_agent_id(page_token)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid page token");
		goto out;
	}
	if (page_size == 0)
		page_size = STORE_PAGE_DEFAULT;
	if (page_size > STORE_PAGE_MAX)
		page_size = STORE_PAGE_MAX;

	args_eval(&args, st, "list", NULL);
	args_str(&args, st->agent_prefix);
	args_str(&args, page_token);
	args_int(&args, page_size);
	args_int(&args, STORE_LIST_SCAN_MAX);
	args_str(&args, type_filter);
	slot = args_list(&args);
	for (size_t i = 0; i < nstates; i++)
		args_state(&args, states[i]);
	args_list_end(&args, slot);
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
		     const char *type_filter, uint32_t page_size, const char *page_token,
		     Tessera__V1__ListAgentsResponse **out, struct tsr_err *err)
{
	const char *name = lifecycle_state_name(state_filter);

	if (name == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid state filter %d",
				   (int)state_filter);
	if (state_filter == TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED)
		return store_list_page(st, NULL, 0, type_filter, page_size, page_token, out, err);
	return store_list_page(st, &state_filter, 1, type_filter, page_size, page_token, out,
			       err);
}

int store_agents_nonterminal(struct store *st, store_agent_fn fn, void *arg,
			     struct tsr_err *err)
{
	Tessera__V1__AgentState states[LIFECYCLE_STATES_MAX];
	Tessera__V1__ListAgentsResponse *page = NULL;
	char token[TSR_AGENT_ID_MAX + 1] = "";
	size_t nstates = 0;
	int rc = -1;

	for (int s = 1; lifecycle_state_name((Tessera__V1__AgentState)s) != NULL; s++)
		if (!lifecycle_terminal((Tessera__V1__AgentState)s) &&
		    nstates < LIFECYCLE_STATES_MAX)
			states[nstates++] = (Tessera__V1__AgentState)s;
	for (int i = 0;; i++) {
		if (i == STORE_SCAN_PAGES_MAX) {
			tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
				    "more than %d pages of agents", STORE_SCAN_PAGES_MAX);
			goto out;
		}
		if (store_list_page(st, states, nstates, "", STORE_PAGE_MAX, token, &page,
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

/* "<ms>-<seq>", both decimal, as Valkey writes stream ids. */
static bool position_valid(const char *p)
{
	size_t a, b;

	a = strspn(p, "0123456789");
	if (a == 0 || a > 20 || p[a] != '-')
		return false;
	b = strspn(p + a + 1, "0123456789");
	return b > 0 && b <= 20 && p[a + 1 + b] == '\0';
}

int store_events_last(struct store *st, char *position, size_t len, struct tsr_err *err)
{
	struct store_args args = { 0 };
	redisReply *r = NULL, *e;
	const char *id = "0-0";
	int rc = -1;

	args_str(&args, "XREVRANGE");
	args_str(&args, st->k_events);
	args_str(&args, "+");
	args_str(&args, "-");
	args_str(&args, "COUNT");
	args_str(&args, "1");
	if (store_command(st, &args, STORE_TIMEOUT_MS, &r, err) != 0)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements > 1) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey XREVRANGE: unexpected reply");
		goto out;
	}
	if (r->elements == 1) {
		e = r->element[0];
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
		    e->element[0]->type != REDIS_REPLY_STRING ||
		    !position_valid(e->element[0]->str)) {
			tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey XREVRANGE: malformed entry");
			goto out;
		}
		id = e->element[0]->str;
	}
	if (strlen(id) >= len) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "store: position buffer too small");
		goto out;
	}
	memcpy(position, id, strlen(id) + 1);
	rc = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

static int event_field(Tessera__V1__Event *ev, int f, const redisReply *v,
		       struct tsr_err *err)
{
	const char *name = event_fields[f];
	int64_t n;

	switch (f) {
	case EF_TYPE:
		return field_text(v, STORE_EVENT_TYPE_MAX, &ev->type, name, err);
	case EF_AGENT:
		return field_text(v, TSR_AGENT_ID_MAX, &ev->agent_id, name, err);
	case EF_SPOKE:
		return field_text(v, TSR_NAME_MAX, &ev->spoke_id, name, err);
	case EF_ERROR:
		return field_text(v, STORE_ERROR_MAX, &ev->error, name, err);
	case EF_OLD:
		return field_state(v, &ev->old_state, name, err);
	case EF_NEW:
		return field_state(v, &ev->new_state, name, err);
	case EF_TIME:
		return field_int(v, 0, INT64_MAX, &ev->time_ms, name, err);
	case EF_STARTED:
		return field_int(v, 0, INT64_MAX, &ev->started_at_ms, name, err);
	case EF_COMPLETED:
		return field_int(v, 0, INT64_MAX, &ev->completed_at_ms, name, err);
	case EF_EXIT:
	case EF_SIGNAL:
		if (ev->end_case != TESSERA__V1__EVENT__END__NOT_SET)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL,
					   "valkey: event has both exit_code and signal");
		if (field_int(v, INT32_MIN, INT32_MAX, &n, name, err) != 0)
			return -1;
		if (f == EF_EXIT) {
			ev->end_case = TESSERA__V1__EVENT__END_EXIT_CODE;
			ev->exit_code = (int32_t)n;
		} else {
			ev->end_case = TESSERA__V1__EVENT__END_SIGNAL;
			ev->signal = (int32_t)n;
		}
		return 0;
	}
	return tsr_err_set(err, GRPC_STATUS_INTERNAL, "store: no event field %d", f);
}

static int event_own_strings(Tessera__V1__Event *ev, struct tsr_err *err)
{
	char **fields[] = { &ev->position, &ev->type, &ev->agent_id, &ev->spoke_id,
			    &ev->error };

	return strings_own(fields, sizeof(fields) / sizeof(fields[0]), err);
}

/* Builds an event from one stream entry, [id, [field, value, ...]]. */
static int event_decode(const struct store *st, const redisReply *e, Tessera__V1__Event **out,
			struct tsr_err *err)
{
	const unsigned required = 1u << EF_TYPE | 1u << EF_AGENT | 1u << EF_SPOKE |
				  1u << EF_OLD | 1u << EF_NEW | 1u << EF_TIME;
	char want_type[STORE_EVENT_TYPE_MAX];
	Tessera__V1__Event *ev;
	const redisReply *fv;
	const char *id = "?";
	unsigned seen = 0;
	int rc = -1, f;

	ev = malloc(sizeof(*ev));
	if (ev == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "store: out of memory");
	tessera__v1__event__init(ev);
	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING || !position_valid(e->element[0]->str)) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: malformed stream entry");
		goto out;
	}
	id = e->element[0]->str;
	fv = e->element[1];
	if (pairs_check(fv, "stream entry", err) != 0 ||
	    field_text(e->element[0], STORE_POSITION_MAX - 1, &ev->position, "id", err) != 0)
		goto out;
	for (size_t i = 0; i < fv->elements; i += 2) {
		f = field_index(event_fields, EF_COUNT, fv->element[i]->str);
		if (f < 0)
			continue;
		if (seen & (1u << f)) {
			tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: field %s twice",
				    event_fields[f]);
			goto out;
		}
		seen |= 1u << f;
		if (event_field(ev, f, fv->element[i + 1], err) != 0)
			goto out;
	}
	if ((seen & required) != required) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: event lacks fields");
		goto out;
	}
	snprintf(want_type, sizeof(want_type), "agent.%s", lifecycle_state_name(ev->new_state));
	if (strcmp(ev->type, want_type) != 0 || !ids_valid_agent_id(ev->agent_id) ||
	    strcmp(ev->spoke_id, st->spoke) != 0 ||
	    ev->new_state == TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: event fields disagree");
		goto out;
	}
	if (event_own_strings(ev, err) != 0)
		goto out;
	*out = ev;
	ev = NULL;
	rc = 0;
out:
	if (rc != 0) {
		char inner[TSR_ERR_MSG_MAX];

		snprintf(inner, sizeof(inner), "%s", err->msg);
		tsr_err_set(err, err->code, "event %.*s: %s", STORE_POSITION_MAX, id, inner);
	}
	if (ev != NULL)
		tessera__v1__event__free_unpacked(ev, NULL);
	return rc;
}

void store_events_free(Tessera__V1__Event **events, size_t n)
{
	if (events == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		tessera__v1__event__free_unpacked(events[i], NULL);
	free(events);
}

int store_events_read(struct store *st, const char *after, int block_ms, size_t max_count,
		      Tessera__V1__Event ***events, size_t *n, struct tsr_err *err)
{
	struct store_args args = { 0 };
	Tessera__V1__Event **evs = NULL;
	redisReply *r = NULL, *s, *entries;
	size_t count = 0;
	int rc = -1;

	*events = NULL;
	*n = 0;
	if (!position_valid(after)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid stream position");
		goto out;
	}
	if (block_ms < 0 || block_ms > STORE_BLOCK_MAX_MS || max_count == 0 ||
	    max_count > STORE_READ_MAX) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
			    "event read: block 0..%d ms, count 1..%d", STORE_BLOCK_MAX_MS,
			    STORE_READ_MAX);
		goto out;
	}
	args_str(&args, "XREAD");
	args_str(&args, "COUNT");
	args_int(&args, (long long)max_count);
	/* BLOCK 0 would mean forever: no BLOCK at all is the non-waiting read. */
	if (block_ms > 0) {
		args_str(&args, "BLOCK");
		args_int(&args, block_ms);
	}
	args_str(&args, "STREAMS");
	args_str(&args, st->k_events);
	args_str(&args, after);
	if (store_command(st, &args, block_ms + STORE_TIMEOUT_MS, &r, err) != 0)
		goto out;
	if (r->type == REDIS_REPLY_NIL) {	/* nothing came within block_ms */
		rc = 0;
		goto out;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
	    r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 2 ||
	    r->element[0]->element[1]->type != REDIS_REPLY_ARRAY ||
	    r->element[0]->element[1]->elements > max_count) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey XREAD: unexpected reply");
		goto out;
	}
	s = r->element[0];
	entries = s->element[1];
	evs = calloc(entries->elements > 0 ? entries->elements : 1, sizeof(*evs));
	if (evs == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "store: out of memory");
		goto out;
	}
	for (; count < entries->elements; count++)
		if (event_decode(st, entries->element[count], &evs[count], err) != 0)
			goto out;
	*events = evs;
	*n = count;
	evs = NULL;
	rc = 0;
out:
	store_events_free(evs, count);
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}
