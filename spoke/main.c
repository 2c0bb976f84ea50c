/*
 * tessera-spoke: runs agents on this machine for trusted hubs. Owns the
 * start-up order (config, metrics, key, Valkey, supervisor, recovery,
 * then the gRPC server), the orderly shutdown on SIGINT/SIGTERM, and re-reading
 * the trusted hub keys on SIGHUP. Agents keep
 * running across a spoke stop; the next start settles their records.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "agent_account.h"
#include "agent_files.h"
#include "clock.h"
#include "daemon.h"
#include "event_stream.h"
#include "execute.h"
#include "fault.h"
#include "health.h"
#include "log.h"
#include "outcomes.h"
#include "output_stream.h"
#include "proc_identity.h"
#include "recovery.h"
#include "reflection.h"
#include "retention.h"
#include "rpc_server.h"
#include "spoke.h"
#include "spoke_info.h"
#include "spoke_metrics.h"
#include "stream_threads.h"

#define SPOKE_VALKEY_WAIT_MS 30000 /* at start-up, for Valkey to come up */
#define SPOKE_TICK_MS 20
#define SPOKE_FDS_OWN 1024 /* descriptors beyond agents': gRPC, Valkey, event streams */
#define SPOKE_DRAIN_MS 5000
#define SPOKE_HEALTH_MS 1000 /* how often Valkey is checked for health */

/*
 * A revoked hub key is refused from the next command on, without a
 * restart, and the event streams it opened end.
 */
static void spoke_reload_trust(struct spoke *sp)
{
	struct tsr_err err;
	size_t ended;

	tsr_err_clear(&err);
	if (spoke_config_reload_trust(&sp->config, &sp->cfg.trusted, &err) != 0) {
		log_error("SIGHUP: keeping the trusted hub keys: %s", err.msg);
		return;
	}
	log_info("SIGHUP: %zu trusted hub keys from %s; other settings need a restart",
		 sp->cfg.trusted.n, config_sources_name(&sp->config));
	ended = stream_threads_revoke(sp->streams, &sp->cfg.trusted);
	if (ended > 0)
		log_info("SIGHUP: ending %zu streams of hub keys no longer trusted", ended);
}

/* The spoke serves only while it can reach its Valkey. */
static void spoke_health(struct spoke *sp, enum health_status status)
{
	struct tsr_err err;

	if (daemon_health(sp->health, TSR_SPOKE_SERVICE, status, &err) != 0)
		log_error("health: %s", err.msg);
}

/* With metrics on, the agents recorded by state, each health check. */
static void spoke_tick_recorded(struct spoke *sp, bool valkey_ok)
{
	int64_t counts[TESSERA__V1__AGENT_STATE__AGENT_STATE_KILLED + 1];
	struct tsr_err err;

	if (sp->metrics == NULL || !valkey_ok)
		return;
	if (store_agents_by_state(sp->store, counts, sizeof(counts) / sizeof(counts[0]), &err) !=
	    0) {
		log_warn("agents by state for the metrics: %s", err.msg);
		return;
	}
	spoke_metrics_recorded(sp->metrics, counts, sizeof(counts) / sizeof(counts[0]));
}

static void spoke_tick(void *arg)
{
	struct spoke *sp = arg;
	struct tsr_err err;
	int64_t now = clock_mono_ms();
	bool ok;

	if (daemon_reload_due())
		spoke_reload_trust(sp);
	outcomes_record(sp);
	retention_tick(sp, now);
	if (now < sp->next_health_ms)
		return;
	sp->next_health_ms = now + SPOKE_HEALTH_MS;
	ok = store_ping(sp->store, &err) == 0;
	/* Changes only: a Valkey that stays away would fill the log. */
	if (!ok && sp->valkey_ok)
		log_error("not serving: %s", err.msg);
	else if (ok && !sp->valkey_ok)
		log_info("serving again: Valkey at %s answers", sp->cfg.valkey);
	sp->valkey_ok = ok;
	spoke_health(sp, ok ? HEALTH_SERVING : HEALTH_NOT_SERVING);
	spoke_metrics_tick(sp->metrics, ok, sp->draining);
	spoke_tick_recorded(sp, ok);
}

/* An exits wake function: the reaper queued an exit. */
static void spoke_wake(void *loop)
{
	rpc_loop_tick_soon(loop);
}

/*
 * Raises this process's RLIMIT_NOFILE to its hard limit, which max-agents
 * needs (each running agent holds SUPERVISOR_FDS_PER_AGENT descriptors);
 * *agents gets the limit it had, which agents start with.
 */
static int spoke_raise_nofile(const struct spoke *sp, struct rlimit *agents, struct tsr_err *err)
{
	rlim_t need = (rlim_t)sp->cfg.max_agents * SUPERVISOR_FDS_PER_AGENT + SPOKE_FDS_OWN;
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "getrlimit: %s", strerror(errno));
	*agents = r;
	if (r.rlim_cur < need) {
		r.rlim_cur = r.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &r) != 0)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL, "setrlimit: %s",
					   strerror(errno));
	}
	if (r.rlim_cur < need)
		return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
				   "max-agents %d needs %llu file descriptors, and this process "
				   "may have %llu (RLIMIT_NOFILE; systemd: LimitNOFILE=)",
				   sp->cfg.max_agents, (unsigned long long)need,
				   (unsigned long long)r.rlim_cur);
	return 0;
}

static int spoke_start_supervisor(struct spoke *sp, struct tsr_err *err)
{
	struct supervisor_config cfg = {
		.max_agents = (size_t)sp->cfg.max_agents,
		.tail_bytes = (size_t)sp->cfg.output_tail_bytes,
		.state_dir = sp->cfg.state_dir,
		.shim_path = sp->cfg.shim_path,
		.reap_inherited = true,
		.cgroup = &sp->cgroup,
	};
	char why[AGENT_CGROUP_WHY_MAX];

	if (spoke_raise_nofile(sp, &cfg.agent_nofile, err) != 0 ||
	    proc_boot_id(sp->boot_id, err) != 0 || proc_pid_ns(&sp->pid_ns, err) != 0 ||
	    agent_files_dir_prepare(sp->cfg.state_dir, err) != 0 ||
	    agent_cgroup_open(&sp->cgroup, sp->cfg.agent_cgroups_off, why, sizeof(why), err) != 0)
		return -1;
	if (supervisor_start(&cfg, exits_on_supervisor_exit, &sp->exits, &sp->sv, err) != 0)
		return -1;
	if (!sp->cgroup.enabled)
		log_info("agent cgroups: off (%s)", why);
	else if (supervisor_starts_in_cgroups(sp->sv))
		log_info("agent cgroups: on, under %s", sp->cgroup.base);
	else
		log_info("agent cgroups: on, under %s; clone3 is refused here (a seccomp "
			 "filter, or not x86_64), so each shim is moved into its cgroup after "
			 "it starts, which costs a spawn milliseconds",
			 sp->cgroup.base);
	return 0;
}

static int spoke_open_store(struct spoke *sp, struct tsr_err *err)
{
	int64_t until = clock_mono_ms() + SPOKE_VALKEY_WAIT_MS;

	/* Refused credentials too are waited out: Valkey may be mid-reconfiguration. */
	while (store_open(sp->cfg.valkey, sp->cfg.id, &sp->cfg.valkey_auth, &sp->store, err) != 0) {
		if (err->code != GRPC_STATUS_UNAVAILABLE || clock_mono_ms() >= until)
			return -1;
		/* store_open's messages name the address. */
		log_warn("waiting for Valkey: %s", err->msg);
		sleep(1);
	}
	sp->valkey_ok = true;
	if (store_events_keep(sp->store, sp->cfg.event_retention, err) != 0)
		return -1;
	return spoke_drain_load(sp, err);
}

static int spoke_serve(struct spoke *sp, struct tsr_err *err)
{
	struct rpc_server_opts opts = { .listen = sp->cfg.listen };
	struct rpc_server *srv = NULL;
	struct rpc_loop *loop;
	bool started = false;
	int port, rc = -1;

	daemon_tls_opts(&sp->cfg.tls, &opts);
	if (rpc_loop_new(&loop, err) != 0)
		return -1;
	/* An agent's end is recorded, and streamed, as soon as its exit is queued. */
	if (rpc_loop_doorbell(loop, err) == 0)
		exits_set_wake(&sp->exits, spoke_wake, loop);
	else
		log_warn("agent exits wait for the %d ms tick: %s", SPOKE_TICK_MS, err->msg);
	if (health_new(&sp->health, err) != 0 || rpc_server_new(loop, &opts, &srv, err) != 0 ||
	    rpc_server_add_method(srv, TSR_METHOD_EXECUTE, execute_handle, sp, err) != 0 ||
	    rpc_server_add_method(srv, TSR_METHOD_STREAM_EVENTS, event_stream_handle, sp->streams,
				  err) != 0 ||
	    rpc_server_add_method(srv, TSR_METHOD_STREAM_OUTPUT, output_stream_handle, sp->streams,
				  err) != 0 ||
	    health_register(sp->health, srv, err) != 0 || reflection_register(srv, err) != 0 ||
	    rpc_server_start(srv, &port, err) != 0)
		goto out;
	started = true;
	if (daemon_signals(loop, err) != 0)
		goto out;
	rpc_loop_set_tick(loop, spoke_tick, sp, SPOKE_TICK_MS);
	spoke_tick(sp);
	log_info("spoke %s listening on %s (port %d, %s), Valkey %s", sp->cfg.id, sp->cfg.listen,
		 port, daemon_tls_mode(&sp->cfg.tls), sp->cfg.valkey);
	rpc_loop_run(loop, NULL);
	log_info("shutting down");
	rc = 0;
out:
	atomic_store(&sp->stopping, true);
	if (started) {
		/* Health watchers hear it before their calls are cancelled. */
		spoke_health(sp, HEALTH_NOT_SERVING);
		rpc_server_shutdown(srv);
	}
	stream_threads_free(sp->streams);
	sp->streams = NULL;
	rpc_loop_drain(loop, SPOKE_DRAIN_MS);
	outcomes_record(sp);
	health_free(sp->health);
	sp->health = NULL;
	rpc_server_free(srv);
	daemon_signals_detach();
	exits_set_wake(&sp->exits, NULL, NULL);
	rpc_loop_free(loop);
	return rc;
}

int main(int argc, char **argv)
{
	struct spoke sp;
	struct daemon_args args;
	struct tsr_err err;
	int rc;

	memset(&sp, 0, sizeof(sp));
	sp.cgroup.dirfd = -1;
	tsr_err_clear(&err);
	rc = daemon_begin("tessera-spoke", "TESSERA_SPOKE_CONFIG", argc, argv, &args, &sp.config);
	if (rc >= 0)
		return rc;
	rc = 1;
	exits_init(&sp.exits);
	grpc_init();
	if (sign_init(&err) != 0 || spoke_config_load_sources(&sp.config, &sp.cfg, &err) != 0)
		goto out;
	daemon_log_configured(&args, sp.cfg.log_format, sp.cfg.id);
	fault_init(); /* its warning in the configured format */
	if (spoke_metrics_start(&sp.cfg, &sp.metrics, &err) != 0 ||
	    agent_account_check(&sp.cfg.types, &err) != 0 ||
	    sign_key_load(sp.cfg.key_path, &sp.key, &err) != 0 ||
	    spoke_open_store(&sp, &err) != 0 || read_nonces_new(&sp.read_nonces, &err) != 0 ||
	    spoke_start_supervisor(&sp, &err) != 0 || recovery_run(&sp, &err) != 0 ||
	    stream_threads_new(&sp, &sp.streams, &err) != 0 || spoke_serve(&sp, &err) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		log_error("%s", err.msg);
	stream_threads_free(sp.streams);
	if (sp.sv != NULL)
		supervisor_stop(sp.sv);
	agent_cgroup_close(&sp.cgroup);
	if (sp.store != NULL)
		store_close(sp.store);
	read_nonces_free(sp.read_nonces);
	spoke_metrics_stop(sp.metrics);
	grpc_shutdown();
	sign_key_wipe(&sp.key);
	spoke_config_free(&sp.cfg);
	exits_free(&sp.exits);
	return rc;
}
