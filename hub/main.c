/*
 * tessera-hub: serves tessera.v1.Hub, relaying every request as a signed
 * command to the spoke it concerns, plus gRPC health and reflection (the
 * hub serves while at least one spoke is connected). One
 * thread runs the completion queue and everything else; SIGINT/SIGTERM
 * stop it, after which every user call and spoke call is cancelled and
 * drained before memory is freed. SIGHUP re-reads the bearer tokens and the
 * spokes' public keys (nothing else) on that same thread, and ends the
 * watches of tokens no longer configured. With a metrics-listen line,
 * metrics are served from a thread of their own (hub_metrics.h).
 */
#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "daemon.h"
#include "health.h"
#include "hub.h"
#include "hub_config.h"
#include "hub_limits.h"
#include "hub_metrics.h"
#include "load.h"
#include "log.h"
#include "output_relay.h"
#include "reflection.h"
#include "relay.h"
#include "rpc_loop.h"
#include "rpc_server.h"
#include "sign.h"
#include "spokes.h"
#include "watch.h"

#define MAIN_TICK_MS 100
#define MAIN_DRAIN_MS 5000

struct main_ctx { /* what the tick works on */
	struct hub *h;
	struct auth *auth;
	struct hub_config *cfg;		     /* the running one; spokes borrow from it */
	const struct config_sources *config; /* read again on SIGHUP */
	struct health *health;
	bool serving; /* what health last said */
};

/*
 * A spoke's key can be replaced (or a compromised one revoked) without a
 * restart: the key of every spoke still configured under the same id is
 * taken from the fresh file. Relays and watches read it on this thread.
 * A spoke whose key changed is polled at once, so that a refusal the old
 * key caused (or the new one causes) shows now, not at the next poll.
 */
static void main_reload_spoke_keys(struct hub_config *cfg, const struct hub_config *fresh,
				   struct spokes *spokes)
{
	for (size_t i = 0; i < cfg->nspokes; i++) {
		struct hub_spoke_conf *sc = &cfg->spokes[i];

		for (size_t j = 0; j < fresh->nspokes; j++) {
			if (strcmp(fresh->spokes[j].id, sc->id) != 0 ||
			    strcmp(fresh->spokes[j].pub.id, sc->pub.id) == 0)
				continue;
			log_info("SIGHUP: spoke %s now verified with key %s (was %s)", sc->id,
				 fresh->spokes[j].pub.id, sc->pub.id);
			sc->pub = fresh->spokes[j].pub;
			/* spokes_new() made v[i] from cfg->spokes[i]. */
			spokes->v[i].load_next_ms = 0;
		}
	}
}

/* The whole file is checked again, but only the tokens and the spokes'
 * keys are taken: a bad file, or one that no longer loads, leaves the old
 * ones in force. */
static void main_reload_config(struct main_ctx *m)
{
	struct hub_config *fresh;
	struct tsr_err err;
	size_t ended;

	/* A whole configuration is tens of KiB: the heap, not the loop's stack. */
	fresh = malloc(sizeof(*fresh));
	if (fresh == NULL) {
		log_error("SIGHUP: out of memory; keeping the tokens and spoke keys");
		return;
	}
	if (hub_config_load_sources(m->config, fresh, &err) != 0) {
		log_error("SIGHUP: keeping the tokens and spoke keys: %s", err.msg);
	} else {
		auth_set(m->auth, fresh);
		ended = watches_reauth(m->h->watches);
		if (ended > 0)
			log_info("SIGHUP: ended %zu watches whose token is gone", ended);
		ended = output_relays_reauth(m->h->outputs);
		if (ended > 0)
			log_info("SIGHUP: ended %zu output streams whose token is gone", ended);
		main_reload_spoke_keys(m->cfg, fresh, m->h->spokes);
		if (fresh->auth_none)
			log_warn("SIGHUP: %s says \"auth none\": the API is open",
				 config_sources_name(m->config));
		else
			log_info("SIGHUP: %zu tokens from %s; other settings need a restart",
				 fresh->ntokens, config_sources_name(m->config));
	}
	hub_config_free(fresh);
	free(fresh);
}

/*
 * A hub with no connected spoke can carry out nothing, so it says so:
 * load balancers and probes then send users to a hub that can.
 */
static void main_tick_health(struct main_ctx *m)
{
	bool serving = spokes_any_connected(m->h->spokes);
	struct tsr_err err;

	if (serving == m->serving)
		return;
	if (daemon_health(m->health, TSR_HUB_SERVICE, serving ? HEALTH_SERVING : HEALTH_NOT_SERVING,
			  &err) != 0) {
		log_error("cannot set the health status: %s", err.msg);
		return;
	}
	log_info("%s: %s", serving ? "SERVING" : "NOT_SERVING",
		 serving ? "a spoke is connected" : "no spoke is connected");
	m->serving = serving;
}

static void main_tick(void *arg)
{
	struct main_ctx *m = arg;

	if (m->h->stopping)
		return;
	if (daemon_reload_due())
		main_reload_config(m);
	spokes_poll(m->h->spokes, true);
	main_tick_health(m);
	load_tick(m->h);
	watches_tick(m->h->watches);
	output_relays_tick(m->h->outputs);
	hub_metrics_tick(m->h->metrics, m->h);
}

/* "host:0" is logged with the port the kernel chose. */
static void main_log_listening(const struct hub_config *cfg, int port)
{
	const char *listen = cfg->listen;
	const char *mode = daemon_tls_mode(&cfg->tls);
	const char *auth = cfg->auth_none ? "no tokens" : "bearer tokens";
	size_t len = strlen(listen);

	if (len >= 2 && strcmp(listen + len - 2, ":0") == 0)
		log_info("listening on %.*s:%d (%s, %s)", (int)(len - 2), listen, port, mode, auth);
	else
		log_info("listening on %s (%s, %s)", listen, mode, auth);
	if (cfg->auth_none)
		log_warn("\"auth none\": anyone who reaches %s may use the API", listen);
}

/* Serves until a signal, then shuts down and drains. */
static int main_serve(struct hub_config *cfg, const struct config_sources *config,
		      const struct sign_key *key, struct hub_metrics *metrics, struct tsr_err *err)
{
	struct hub h = { .key = key,
			 .relay_timeout_ms = cfg->relay_timeout_ms,
			 .metrics = metrics };
	struct rpc_server_opts sopts = { .listen = cfg->listen, .max_message = HUB_REQUEST_MAX };
	struct auth auth;
	struct main_ctx m = { .h = &h, .auth = &auth, .cfg = cfg, .config = config };
	struct rpc_server *srv = NULL;
	struct health *health = NULL;
	struct tsr_err ignored;
	bool started = false;
	int port, rc = -1;

	daemon_tls_opts(&cfg->tls, &sopts);
	auth_set(&auth, cfg);
	if (rpc_loop_new(&h.loop, err) != 0)
		goto out;
	if (spokes_new(cfg, &h.spokes, err) != 0 ||
	    relays_new(h.loop, key, metrics, &h.relays, err) != 0 ||
	    watches_new(&h, &auth, &h.watches, err) != 0 ||
	    output_relays_new(&h, &auth, &h.outputs, err) != 0 || health_new(&health, err) != 0)
		goto out;
	if (rpc_server_new(h.loop, &sopts, &srv, err) != 0)
		goto out;
	rpc_server_observe(srv, hub_metrics_api_call, metrics);
	if (api_register(&h, srv, err) != 0 ||
	    rpc_server_set_gate(srv, TSR_HUB_SERVICE, auth_gate, &auth, err) != 0 ||
	    health_register(health, srv, err) != 0 || reflection_register(srv, err) != 0 ||
	    daemon_signals(h.loop, err) != 0 || rpc_server_start(srv, &port, err) != 0)
		goto out;
	started = true;
	/* SERVING once the tick sees a spoke connected. */
	m.health = health;
	if (daemon_health(health, TSR_HUB_SERVICE, HEALTH_NOT_SERVING, err) != 0)
		goto out;
	main_log_listening(cfg, port);
	rpc_loop_set_tick(h.loop, main_tick, &m, MAIN_TICK_MS);
	rpc_loop_run(h.loop, NULL);
	log_info("shutting down");
	rc = 0;
out:
	h.stopping = true;
	if (started) {
		/* Health watchers hear it before their calls are cancelled. */
		daemon_health(health, TSR_HUB_SERVICE, HEALTH_NOT_SERVING, &ignored);
		rpc_server_shutdown(srv);
		relays_cancel_all(h.relays);
		watches_shutdown(h.watches);
		output_relays_shutdown(h.outputs);
		rpc_loop_drain(h.loop, MAIN_DRAIN_MS);
	}
	health_free(health);
	rpc_server_free(srv);
	daemon_signals_detach();
	/* Late completions still reach the watches and relays: free them after. */
	rpc_loop_free(h.loop);
	watches_free(h.watches);
	output_relays_free(h.outputs);
	relays_free(h.relays);
	spokes_free(h.spokes);
	return rc;
}

int main(int argc, char **argv)
{
	struct hub_config cfg;
	struct sign_key key;
	struct tsr_err err;
	struct daemon_args args;
	struct config_sources src = { 0 };
	struct hub_metrics *metrics = NULL;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	memset(&key, 0, sizeof(key));
	rc = daemon_begin("tessera-hub", "TESSERA_HUB_CONFIG", argc, argv, &args, &src);
	if (rc >= 0)
		return rc;
	rc = 1;
	grpc_init();
	if (sign_init(&err) != 0 || hub_config_load_sources(&src, &cfg, &err) != 0)
		goto out;
	daemon_log_configured(&args, cfg.log_format, NULL);
	if (sign_key_load(cfg.key_path, &key, &err) != 0 ||
	    hub_metrics_start(&cfg, &metrics, &err) != 0 ||
	    main_serve(&cfg, &src, &key, metrics, &err) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		log_error("%s", err.msg);
	hub_metrics_stop(metrics);
	sign_key_wipe(&key);
	hub_config_free(&cfg);
	grpc_shutdown_blocking();
	return rc;
}
