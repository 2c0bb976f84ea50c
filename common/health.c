/*
 * health: a fixed table of statuses and a list of watchers. A watcher
 * holds its call's handler reference until the client goes away (its
 * cancel callback) or health_free() ends it; a service nobody has set is
 * NOT_FOUND to Check and SERVICE_UNKNOWN to Watch, as the protocol says.
 */
#include "health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "pb.h"

/* A request is one short string; anything bigger is not a health check. */
#define HEALTH_REQUEST_MAX (HEALTH_SERVICE_MAX + 16)

struct health_entry {
	char name[HEALTH_SERVICE_MAX + 1];
	enum health_status status;
};

struct health_watcher {
	struct health_watcher *prev, *next;
	struct health *h;
	struct rpc_call *call; /* the handler's reference */
	char name[HEALTH_SERVICE_MAX + 1];
	char peer[RPC_PEER_HOST_MAX]; /* its host: "" if gRPC could not say */
	int sent;		      /* the status last queued, a wire number */
};

struct health {
	struct health_entry entries[HEALTH_SERVICES_MAX];
	size_t nentries;
	struct health_watcher *watchers;
	size_t nwatchers;
};

int health_new(struct health **out, struct tsr_err *err)
{
	struct health *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	h->entries[0].status = HEALTH_NOT_SERVING; /* "", the whole server */
	h->nentries = 1;
	*out = h;
	return 0;
}

static void health_unlink(struct health_watcher *w)
{
	struct health *h = w->h;

	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		h->watchers = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	h->nwatchers--;
}

/* Lets go of a watcher's call: it must not call us back afterwards. */
static void health_watch_end(struct health_watcher *w, grpc_status_code code, const char *msg)
{
	health_unlink(w);
	rpc_call_on_cancel(w->call, NULL, NULL);
	rpc_call_finish(w->call, code, msg);
	free(w);
}

void health_free(struct health *h)
{
	if (h == NULL)
		return;
	while (h->watchers != NULL)
		health_watch_end(h->watchers, GRPC_STATUS_UNAVAILABLE, "server is shutting down");
	free(h);
}

static struct health_entry *health_find(struct health *h, const char *name)
{
	for (size_t i = 0; i < h->nentries; i++)
		if (strcmp(h->entries[i].name, name) == 0)
			return &h->entries[i];
	return NULL;
}

/* The status a watcher of name should see now, as a wire number. */
static int health_wire_status(struct health *h, const char *name)
{
	const struct health_entry *e = health_find(h, name);

	if (e == NULL)
		return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
	return (int)e->status;
}

static int health_pack(int status, uint8_t **buf, size_t *len, struct tsr_err *err)
{
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	resp.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
	return pb_pack(&resp.base, buf, len, err);
}

/* Copies the requested service name into name[HEALTH_SERVICE_MAX + 1]. */
static int health_request(const uint8_t *req, size_t len, char *name, struct tsr_err *err)
{
	Grpc__Health__V1__HealthCheckRequest *rq = NULL;
	int rc = -1;

	if (len > HEALTH_REQUEST_MAX) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "health request over %d bytes",
			    HEALTH_REQUEST_MAX);
		goto out;
	}
	rq = grpc__health__v1__health_check_request__unpack(NULL, len, req);
	if (rq == NULL) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "malformed health request");
		goto out;
	}
	if (strlen(rq->service) > HEALTH_SERVICE_MAX) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "service name over %d bytes",
			    HEALTH_SERVICE_MAX);
		goto out;
	}
	snprintf(name, HEALTH_SERVICE_MAX + 1, "%s", rq->service);
	rc = 0;
out:
	if (rq != NULL)
		grpc__health__v1__health_check_request__free_unpacked(rq, NULL);
	return rc;
}

/* Queues status on w's stream unless the client has it already. */
static int health_notify(struct health_watcher *w, int status, struct tsr_err *err)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = -1;

	if (status == w->sent)
		return 0;
	if (health_pack(status, &buf, &len, err) != 0)
		goto out;
	if (rpc_call_send(w->call, buf, len) != 0) {
		/* Gone, or so far behind that RPC_SEND_QUEUE_MAX updates wait. */
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "watcher is not reading");
		goto out;
	}
	w->sent = status;
	rc = 0;
out:
	free(buf);
	return rc;
}

int health_set(struct health *h, const char *service, enum health_status status,
	       struct tsr_err *err)
{
	struct health_entry *e;
	struct health_watcher *w, *next;
	struct tsr_err werr;

	if (status != HEALTH_SERVING && status != HEALTH_NOT_SERVING)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "bad health status %d",
				   (int)status);
	if (strlen(service) > HEALTH_SERVICE_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "service name over %d bytes",
				   HEALTH_SERVICE_MAX);
	e = health_find(h, service);
	if (e == NULL) {
		if (h->nentries == HEALTH_SERVICES_MAX)
			return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
					   "over %d services in health", HEALTH_SERVICES_MAX);
		e = &h->entries[h->nentries++];
		snprintf(e->name, sizeof(e->name), "%s", service);
	}
	e->status = status;
	for (w = h->watchers; w != NULL; w = next) {
		next = w->next;
		if (strcmp(w->name, service) == 0 && health_notify(w, (int)status, &werr) != 0)
			health_watch_end(w, werr.code, werr.msg);
	}
	return 0;
}

static void health_check(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	struct health *h = ctx;
	char name[HEALTH_SERVICE_MAX + 1];
	const struct health_entry *e;
	uint8_t *buf = NULL;
	size_t n = 0;
	struct tsr_err err;

	tsr_err_clear(&err);
	if (health_request(req, len, name, &err) != 0)
		goto out;
	e = health_find(h, name);
	if (e == NULL) {
		tsr_err_set(&err, GRPC_STATUS_NOT_FOUND, "unknown service %s", name);
		goto out;
	}
	if (health_pack((int)e->status, &buf, &n, &err) != 0)
		goto out;
	rpc_call_reply(call, buf, n);
out:
	if (err.code != GRPC_STATUS_OK)
		rpc_call_fail(call, &err);
	free(buf);
}

/* The client went away: runs on the loop thread, once. */
static void health_watch_gone(void *arg)
{
	health_watch_end(arg, GRPC_STATUS_CANCELLED, "watcher went away");
}

/*
 * Whether w may join the watchers: the server's cap, and one host's, so
 * that a single client cannot take every slot.
 */
static int health_watch_admit(const struct health *h, const struct health_watcher *w,
			      struct tsr_err *err)
{
	size_t same = 0;

	if (h->nwatchers == HEALTH_WATCHERS_MAX)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "over %d health watchers",
				   HEALTH_WATCHERS_MAX);
	for (const struct health_watcher *o = h->watchers; o != NULL; o = o->next)
		if (strcmp(o->peer, w->peer) == 0)
			same++;
	if (same >= HEALTH_WATCHERS_PER_PEER_MAX)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
				   "%s has %d health watches open already, its most", w->peer,
				   HEALTH_WATCHERS_PER_PEER_MAX);
	return 0;
}

static void health_watch(void *ctx, struct rpc_call *call, const uint8_t *req, size_t len)
{
	struct health *h = ctx;
	struct health_watcher *w = NULL;
	struct tsr_err err;

	tsr_err_clear(&err);
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		tsr_err_set(&err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	w->h = h;
	w->call = call;
	w->sent = -1;
	/* Callers gRPC cannot place count together, as one host. */
	if (rpc_call_peer_host(call, w->peer) != 0)
		w->peer[0] = '\0';
	if (health_watch_admit(h, w, &err) != 0 || health_request(req, len, w->name, &err) != 0 ||
	    health_notify(w, health_wire_status(h, w->name), &err) != 0)
		goto out;
	w->next = h->watchers;
	if (h->watchers != NULL)
		h->watchers->prev = w;
	h->watchers = w;
	h->nwatchers++;
	/* May run health_watch_gone at once: w is the list's from here on. */
	rpc_call_on_cancel(call, health_watch_gone, w);
	w = NULL;
out:
	if (err.code != GRPC_STATUS_OK)
		rpc_call_fail(call, &err);
	free(w);
}

int health_register(struct health *h, struct rpc_server *srv, struct tsr_err *err)
{
	if (rpc_server_add_method(srv, HEALTH_CHECK_METHOD, health_check, h, err) != 0 ||
	    rpc_server_add_method(srv, HEALTH_WATCH_METHOD, health_watch, h, err) != 0)
		return -1;
	return 0;
}
