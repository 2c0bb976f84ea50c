/*
 * store_conn: a store's connection to Valkey, from store_open to
 * store_close. Owns parsing the address, the spoke's key names, connecting
 * with timeouts, authenticating, and its recovery (reconnect, script load
 * and NOSCRIPT reload), building commands' argument lists, sending them,
 * mapping error replies to statuses, and timing each command for the
 * metrics (store_observe).
 */
#include "store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/un.h>

#include "clock.h"
#include "ids.h"
#include "lifecycle.h"
#include "metrics.h"
#include "store_internal.h"
#include "store_script.h"

#define STORE_COMMAND_NAME_MAX 32 /* bytes of a command's name as a metric label */

/* store_observe's families: set before other threads use stores, then only read. */
static _Atomic(struct metric_family *) store_seconds, store_errors;

void store_observe(struct metric_family *seconds, struct metric_family *errors)
{
	atomic_store(&store_seconds, seconds);
	atomic_store(&store_errors, errors);
}

/* A command sent at began_ns (clock_mono_ns) has come back, failed or not. */
static void store_report(const struct store_args *a, int64_t began_ns, bool failed)
{
	char name[STORE_COMMAND_NAME_MAX];
	struct metric_family *seconds = atomic_load(&store_seconds);
	struct metric_family *errors = atomic_load(&store_errors);

	if (seconds == NULL && errors == NULL)
		return;
	snprintf(name, sizeof(name), "%.*s", (int)a->len[0], a->argv[0]);
	metric_observe(metrics_series1(seconds, name), (double)(clock_mono_ns() - began_ns) / 1e9);
	if (failed)
		metric_inc(metrics_series1(errors, name));
}

static void store_args_mem(struct store_args *a, const char *p, size_t len)
{
	if (a->argc == STORE_ARGS_MAX) {
		a->overflow = true;
		return;
	}
	a->argv[a->argc] = p;
	a->len[a->argc] = len;
	a->argc++;
}

void store_args_str(struct store_args *a, const char *s)
{
	store_args_mem(a, s, strlen(s));
}

void store_args_int(struct store_args *a, long long v)
{
	char *buf;
	int n;

	if (a->argc == STORE_ARGS_MAX) {
		a->overflow = true;
		return;
	}
	buf = a->nums[a->argc];
	n = snprintf(buf, STORE_NUM_LEN, "%lld", v);
	store_args_mem(a, buf, (size_t)n);
}

int store_args_list(struct store_args *a)
{
	store_args_int(a, 0);
	return a->argc - 1;
}

void store_args_list_end(struct store_args *a, int slot)
{
	int n;

	if (a->overflow)
		return;
	n = snprintf(a->nums[slot], STORE_NUM_LEN, "%d", a->argc - slot - 1);
	a->len[slot] = (size_t)n;
}

void store_args_state(struct store_args *a, Tessera__V1__AgentState s)
{
	store_args_str(a, lifecycle_state_name(s));
}

void store_args_eval_nonce(struct store_args *a, const struct store *st, const char *op,
			   const char *agent_key, const char *nonce_key)
{
	assert(nonce_key == NULL || agent_key != NULL);
	store_args_str(a, "EVALSHA");
	/* Loaded at store_open; the text never changes, so neither does its SHA. */
	store_args_mem(a, st->sha, STORE_SHA_LEN);
	store_args_int(a, nonce_key != NULL ? 5 : agent_key != NULL ? 4 : 3);
	store_args_str(a, st->k_index);
	store_args_str(a, st->k_requests);
	store_args_str(a, st->k_events);
	if (agent_key != NULL)
		store_args_str(a, agent_key);
	if (nonce_key != NULL)
		store_args_str(a, nonce_key);
	store_args_str(a, op);
	store_args_str(a, st->k_events);
	store_args_int(a, st->events_kept);
}

void store_args_eval(struct store_args *a, const struct store *st, const char *op,
		     const char *agent_key)
{
	store_args_eval_nonce(a, st, op, agent_key, NULL);
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
	st->pending = false;
	st->sent_many = 0;
}

/*
 * The status for an error reply: those a restarting, failing over or busy
 * Valkey gives are worth retrying (UNAVAILABLE); the rest are bugs or
 * damage (INTERNAL).
 */
static int store_reply_error(const redisReply *r, const char *what, struct tsr_err *err)
{
	static const char *const transient[] = { "LOADING",  "BUSY",	 "MASTERDOWN",
						 "TRYAGAIN", "READONLY", "CLUSTERDOWN" };
	grpc_status_code code = GRPC_STATUS_INTERNAL;
	size_t n;

	for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++) {
		n = strlen(transient[i]);
		if (strncmp(r->str, transient[i], n) == 0 &&
		    (r->str[n] == ' ' || r->str[n] == '\0'))
			code = GRPC_STATUS_UNAVAILABLE;
	}
	/* Credentials we lack make Valkey as useless to us as one that is down. */
	if (strncmp(r->str, "NOAUTH ", 7) == 0)
		code = GRPC_STATUS_UNAVAILABLE;
	if (strncmp(r->str, "OOM ", 4) == 0)
		code = GRPC_STATUS_RESOURCE_EXHAUSTED;
	return tsr_err_set(err, code, "valkey %s: %.200s", what, r->str);
}

/* Sets the connection's timeout; on failure the connection is dropped. */
static int store_set_timeout(struct store *st, int ms, struct tsr_err *err)
{
	if (redisSetTimeout(st->ctx, store_tv(ms)) == REDIS_OK)
		return 0;
	tsr_err_set(err, GRPC_STATUS_UNAVAILABLE, "valkey at %s: cannot set timeout", st->addr);
	store_drop(st);
	return -1;
}

/* Writes out all that is appended on st, for a sent at began; drops the connection if it cannot. */
static int store_flush(struct store *st, const struct store_args *a, int64_t began,
		       struct tsr_err *err)
{
	int done = 0;

	/* A blocking socket with a send timeout: each write takes all it can, or fails. */
	while (!done) {
		if (redisBufferWrite(st->ctx, &done) != REDIS_OK) {
			store_report(a, began, true);
			tsr_err_set(err, GRPC_STATUS_UNAVAILABLE, "valkey at %s: %s", st->addr,
				    st->ctx->errstr[0] != '\0' ? st->ctx->errstr
							       : "connection lost");
			store_drop(st);
			return -1;
		}
	}
	return 0;
}

/* Appends a to what goes out next on st; drops the connection if out of memory. */
static int store_append(struct store *st, struct store_args *a, struct tsr_err *err)
{
	if (redisAppendCommandArgv(st->ctx, a->argc, a->argv, a->len) == REDIS_OK)
		return 0;
	tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "valkey: out of memory");
	store_drop(st);
	return -1;
}

/*
 * Writes one command out on the current connection without waiting for
 * its reply, which store_receive takes; *began is when, for store_report.
 */
static int store_send(struct store *st, struct store_args *a, int64_t *began, struct tsr_err *err)
{
	assert(!st->pending && st->sent_many == 0);
	if (a->overflow)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: command too long");
	*began = clock_mono_ns();
	if (store_append(st, a, err) != 0 || store_flush(st, a, *began, err) != 0)
		return -1;
	st->pending = true;
	return 0;
}

/* The reply to the command store_send sent at began; a reply of any type is 0. */
static int store_receive(struct store *st, const struct store_args *a, int64_t began,
			 redisReply **out, struct tsr_err *err)
{
	redisReply *r = NULL;

	assert(st->pending);
	st->pending = false;
	if (redisGetReply(st->ctx, (void **)&r) != REDIS_OK)
		r = NULL;
	store_report(a, began, r == NULL || r->type == REDIS_REPLY_ERROR);
	if (r == NULL) {
		tsr_err_set(err, GRPC_STATUS_UNAVAILABLE, "valkey at %s: %s", st->addr,
			    st->ctx->errstr[0] != '\0' ? st->ctx->errstr : "connection lost");
		store_drop(st);
		return -1;
	}
	*out = r;
	return 0;
}

/*
 * Sends one command on the current connection; a reply of any type is 0.
 * A timeout other than STORE_TIMEOUT_MS holds for this command only.
 */
static int store_exec(struct store *st, struct store_args *a, int timeout_ms, redisReply **out,
		      struct tsr_err *err)
{
	bool own_timeout = timeout_ms != STORE_TIMEOUT_MS;
	redisReply *r = NULL;
	int64_t began = 0;

	if (a->overflow)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: command too long");
	if (own_timeout && store_set_timeout(st, timeout_ms, err) != 0)
		return -1;
	if (store_send(st, a, &began, err) != 0 || store_receive(st, a, began, &r, err) != 0)
		return -1;
	if (own_timeout && store_set_timeout(st, STORE_TIMEOUT_MS, err) != 0) {
		freeReplyObject(r);
		return -1;
	}
	*out = r;
	return 0;
}

/*
 * The one place a reply no caller keeps is let go: after a send that
 * gave r (sent 0), fn checks r and copies out what it needs.
 */
static int store_use(int sent, redisReply *r, store_reply_fn fn, void *arg, struct tsr_err *err)
{
	int rc;

	if (sent != 0)
		return -1;
	rc = fn(r, arg, err);
	freeReplyObject(r);
	return rc;
}

static int script_loaded(const redisReply *r, void *arg, struct tsr_err *err)
{
	struct store *st = arg;
	char what[STORE_ADDR_MAX + 32];

	if (r->type == REDIS_REPLY_ERROR) {
		/* Named: at start-up this is what the operator reads (NOAUTH, LOADING). */
		snprintf(what, sizeof(what), "at %s: SCRIPT LOAD", st->addr);
		return store_reply_error(r, what, err);
	}
	if (r->type != REDIS_REPLY_STRING || r->len != STORE_SHA_LEN)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL,
				   "valkey SCRIPT LOAD: unexpected reply");
	memcpy(st->sha, r->str, STORE_SHA_LEN + 1);
	return 0;
}

static int store_load_script(struct store *st, struct tsr_err *err)
{
	struct store_args a = { 0 };
	redisReply *r = NULL;
	int sent;

	store_args_str(&a, "SCRIPT");
	store_args_str(&a, "LOAD");
	store_args_str(&a, store_script);
	sent = store_exec(st, &a, STORE_TIMEOUT_MS, &r, err);
	return store_use(sent, r, script_loaded, st, err);
}

static int auth_accepted(const redisReply *r, void *arg, struct tsr_err *err)
{
	const struct store *st = arg;

	if (r->type == REDIS_REPLY_ERROR)
		return tsr_err_set(err, GRPC_STATUS_UNAVAILABLE,
				   "valkey at %s: authentication refused: %.200s", st->addr,
				   r->str);
	if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL,
				   "valkey at %s: AUTH: unexpected reply", st->addr);
	return 0;
}

/* AUTH, first on a new connection. Valkey's refusals never quote the password. */
static int store_authenticate(struct store *st, struct tsr_err *err)
{
	struct store_args a = { 0 };
	redisReply *r = NULL;
	int sent;

	if (st->auth.password[0] == '\0')
		return 0;
	store_args_str(&a, "AUTH");
	if (st->auth.user[0] != '\0')
		store_args_str(&a, st->auth.user);
	store_args_str(&a, st->auth.password);
	sent = store_exec(st, &a, STORE_TIMEOUT_MS, &r, err);
	return store_use(sent, r, auth_accepted, st, err);
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
	/* A Valkey with a password answers nothing else before AUTH. */
	if (store_authenticate(st, err) != 0)
		goto out;
	/* Every connection may be to a Valkey restarted with an empty script cache. */
	if (store_load_script(st, err) != 0)
		goto out;
	/* ...or restored from older data: check the list indexes again before a list. */
	st->indexes_ok = false;
	rc = 0;
out:
	if (rc != 0) {
		metric_inc(metrics_series1(atomic_load(&store_errors), "connect"));
		store_drop(st);
	}
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

static int store_call(struct store *st, struct store_args *a, int timeout_ms, redisReply **out,
		      struct tsr_err *err)
{
	if ((st->ctx == NULL || !store_conn_usable(st)) && store_connect(st, err) != 0)
		return -1;
	return store_exec(st, a, timeout_ms, out, err);
}

/* Sends one command; an error reply fails with the status it maps to. */
static int store_command(struct store *st, struct store_args *a, int timeout_ms, redisReply **out,
			 struct tsr_err *err)
{
	redisReply *r = NULL;

	if (store_call(st, a, timeout_ms, &r, err) != 0)
		return -1;
	if (r->type == REDIS_REPLY_ERROR) {
		store_reply_error(r, a->argv[0], err);
		freeReplyObject(r);
		return -1;
	}
	*out = r;
	return 0;
}

int store_request(struct store *st, struct store_args *a, int timeout_ms, store_reply_fn fn,
		  void *arg, struct tsr_err *err)
{
	redisReply *r = NULL;
	int sent = store_command(st, a, timeout_ms, &r, err);

	return store_use(sent, r, fn, arg, err);
}

/*
 * The replies of the n commands appended on st, args[i]'s into r[i]; each
 * command timed from when the one before it answered. Once the connection
 * fails, -1, and the replies still to come stay NULL.
 */
static int store_replies(struct store *st, struct store_args *const *args, size_t n, redisReply **r,
			 struct tsr_err *err)
{
	int64_t began = clock_mono_ns();

	for (size_t i = 0; i < n; i++) {
		if (redisGetReply(st->ctx, (void **)&r[i]) != REDIS_OK)
			r[i] = NULL;
		store_report(args[i], began, r[i] == NULL || r[i]->type == REDIS_REPLY_ERROR);
		if (r[i] == NULL) {
			tsr_err_set(err, GRPC_STATUS_UNAVAILABLE, "valkey at %s: %s", st->addr,
				    st->ctx->errstr[0] != '\0' ? st->ctx->errstr
							       : "connection lost");
			store_drop(st);
			return -1;
		}
		began = clock_mono_ns();
	}
	return 0;
}

int store_request_after(struct store *st, struct store_args *first, struct store_args *a,
			int timeout_ms, store_reply_fn fn, void *arg, struct tsr_err *err)
{
	redisReply *r[2] = { NULL, NULL };
	int rc = -1;

	if (first->overflow || a->overflow)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: command too long");
	if ((st->ctx == NULL || !store_conn_usable(st)) && store_connect(st, err) != 0)
		return -1;
	if (store_set_timeout(st, timeout_ms, err) != 0)
		return -1;
	if (redisAppendCommandArgv(st->ctx, first->argc, first->argv, first->len) != REDIS_OK ||
	    redisAppendCommandArgv(st->ctx, a->argc, a->argv, a->len) != REDIS_OK) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "valkey: out of memory");
		store_drop(st);
		return -1;
	}
	if (store_replies(st, (struct store_args *const[2]){ first, a }, 2, r, err) != 0 ||
	    store_set_timeout(st, STORE_TIMEOUT_MS, err) != 0)
		goto out;
	if (r[0]->type == REDIS_REPLY_ERROR || r[1]->type == REDIS_REPLY_ERROR) {
		if (r[0]->type == REDIS_REPLY_ERROR)
			store_reply_error(r[0], first->argv[0], err);
		else
			store_reply_error(r[1], a->argv[0], err);
		goto out;
	}
	rc = fn(r[1], arg, err);
out:
	for (int i = 0; i < 2; i++)
		if (r[i] != NULL)
			freeReplyObject(r[i]);
	return rc;
}

/* A flushed script cache answers NOSCRIPT: the call did not run. */
static bool store_noscript(const redisReply *r)
{
	return r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

int store_eval_use(const redisReply *r, store_reply_fn fn, void *arg, struct tsr_err *err)
{
	if (r->type == REDIS_REPLY_ERROR)
		return store_reply_error(r, "script", err);
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_STRING)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey script: unexpected reply");
	return fn(r, arg, err);
}

int store_eval_many_send(struct store *st, struct store_args *const *args, size_t n,
			 struct tsr_err *err)
{
	assert(n >= 1 && !st->pending && st->sent_many == 0);
	for (size_t i = 0; i < n; i++)
		if (args[i]->overflow)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey: command too long");
	if ((st->ctx == NULL || !store_conn_usable(st)) && store_connect(st, err) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (store_append(st, args[i], err) != 0)
			return -1;
	if (store_flush(st, args[0], clock_mono_ns(), err) != 0)
		return -1;
	st->sent_many = n;
	return 0;
}

int store_eval_many_receive(struct store *st, struct store_args *const *args, size_t n,
			    redisReply **r, struct tsr_err *err)
{
	bool loaded = false;
	int rc;

	for (size_t i = 0; i < n; i++)
		r[i] = NULL;
	assert(st->ctx != NULL && st->sent_many == n);
	st->sent_many = 0;
	/* Replies of NOSCRIPT are made unknown too when they cannot be made again. */
	rc = store_replies(st, args, n, r, err);
	for (size_t i = 0; i < n; i++) {
		if (r[i] == NULL || !store_noscript(r[i]))
			continue;
		freeReplyObject(r[i]);
		r[i] = NULL;
		if (rc == 0 && ((!loaded && store_load_script(st, err) != 0) ||
				store_call(st, args[i], STORE_TIMEOUT_MS, &r[i], err) != 0))
			rc = -1; /* this call and every NOSCRIPT one after it: unknown */
		loaded = true;
	}
	return rc;
}

int store_eval_many(struct store *st, struct store_args *const *args, size_t n, redisReply **r,
		    struct tsr_err *err)
{
	for (size_t i = 0; i < n; i++)
		r[i] = NULL;
	if (store_eval_many_send(st, args, n, err) != 0)
		return -1;
	return store_eval_many_receive(st, args, n, r, err);
}

int store_eval(struct store *st, struct store_args *a, store_reply_fn fn, void *arg,
	       struct tsr_err *err)
{
	redisReply *r = NULL;
	int rc = -1;

	if (store_eval_many(st, &a, 1, &r, err) == 0)
		rc = store_eval_use(r, fn, arg, err);
	if (r != NULL)
		freeReplyObject(r);
	return rc;
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
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "valkey address %s: bad port",
				   addr);
	host = addr;
	hlen = (size_t)(colon - addr);
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	if (hlen == 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "valkey address %s: no host",
				   addr);
	memcpy(st->host, host, hlen);
	st->host[hlen] = '\0';
	st->port = (int)port;
	return 0;
}

int store_key(char *buf, const char *prefix, const char *name, struct tsr_err *err)
{
	int n = snprintf(buf, STORE_KEY_MAX, "%s%s", prefix, name);

	if (n < 0 || n >= STORE_KEY_MAX)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "store: key too long");
	return 0;
}

int store_open(const char *addr, const char *spoke_id, const struct store_auth *auth,
	       struct store **out, struct tsr_err *err)
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
	if (auth != NULL) {
		if (memchr(auth->user, '\0', sizeof(auth->user)) == NULL ||
		    memchr(auth->password, '\0', sizeof(auth->password)) == NULL) {
			tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				    "valkey credentials too long");
			goto out;
		}
		st->auth = *auth;
	}
	st->events_kept = STORE_EVENTS_KEPT;
	if (store_parse_addr(st, addr, err) != 0)
		goto out;
	/* The braces make every key of one spoke hash to one cluster slot. */
	snprintf(prefix, sizeof(prefix), "tessera:{%s}:", spoke_id);
	if (store_key(st->agent_prefix, prefix, "agent:", err) != 0 ||
	    store_key(st->k_index, prefix, "agents", err) != 0 ||
	    store_key(st->k_requests, prefix, "requests", err) != 0 ||
	    store_key(st->k_events, prefix, "events", err) != 0 ||
	    store_key(st->nonce_prefix, prefix, "nonce:", err) != 0 ||
	    store_key(st->k_draining, prefix, "draining", err) != 0)
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
	sodium_memzero(&st->auth, sizeof(st->auth));
	free(st);
}

static int ping_answered(const redisReply *r, void *arg, struct tsr_err *err)
{
	(void)arg;
	if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "valkey PING: unexpected reply");
	return 0;
}

int store_ping(struct store *st, struct tsr_err *err)
{
	struct store_args a = { 0 };

	store_args_str(&a, "PING");
	return store_request(st, &a, STORE_TIMEOUT_MS, ping_answered, NULL, err);
}
