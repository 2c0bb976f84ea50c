/*
 * daemon: start-up, the log format, signals, TLS options and health
 * shared by the two daemons. The signal handlers only stop the loop (async-signal-safe) or
 * set a flag that the loop's tick reads: nothing else runs in them.
 */
#include "daemon.h"

#include <grpc/support/log.h>
#include <signal.h>
#include <string.h>

#include "log.h"

static struct rpc_loop *daemon_loop;	    /* what SIGINT and SIGTERM stop */
static volatile sig_atomic_t daemon_reload; /* SIGHUP seen; the tick reloads */

static void daemon_on_stop(int sig)
{
	(void)sig;
	if (daemon_loop != NULL)
		rpc_loop_stop(daemon_loop);
}

static void daemon_on_hup(int sig)
{
	(void)sig;
	daemon_reload = 1;
}

/* sig's disposition: handler, with no flags and nothing blocked while it runs. */
static int daemon_sigaction(int sig, void (*handler)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

/* gRPC's own lines, in ours: its errors, and what else GRPC_VERBOSITY asks for. */
static void daemon_grpc_log(gpr_log_func_args *args)
{
	enum log_level level = args->severity == GPR_LOG_SEVERITY_ERROR	 ? LOG_LEVEL_ERROR
			       : args->severity == GPR_LOG_SEVERITY_INFO ? LOG_LEVEL_INFO
									 : LOG_LEVEL_DEBUG;

	log_unfiltered(level, "grpc %s:%d: %s", args->file, args->line, args->message);
}

static void daemon_log_format(enum log_format format)
{
	log_set_format(format);
	/* A line in gRPC's own format would be the one a JSON reader chokes on. */
	if (format == LOG_FORMAT_JSON)
		gpr_set_log_function(daemon_grpc_log);
}

int daemon_log_format_line(enum log_format *out, int argc, char **argv, struct tsr_err *err)
{
	if (argc != 2)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "\"log-format\" takes one value: text or json");
	if (log_format_parse(argv[1], out) != 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "log-format must be text or json, not \"%.64s\"", argv[1]);
	return 0;
}

void daemon_log_configured(const struct daemon_args *args, enum log_format configured,
			   const char *spoke_id)
{
	if (spoke_id != NULL)
		log_set_spoke(spoke_id);
	daemon_log_format(args->format_given ? args->format : configured);
}

int daemon_begin(const char *name, const char *config_env, int argc, char **argv,
		 struct daemon_args *args, struct config_sources *src)
{
	int rc;

	rc = daemon_args_parse(name, argc, argv, args);
	if (rc >= 0)
		return rc;
	log_init(name, args->level);
	if (args->format_given)
		daemon_log_format(args->format);
	/* A peer gone from a socket must fail that write, not end the daemon. */
	if (daemon_sigaction(SIGPIPE, SIG_IGN) != 0) {
		log_error("cannot ignore SIGPIPE");
		return 1;
	}
	src->path = args->config;
	src->env_name = config_env;
	src->sets = args->sets;
	src->nsets = args->nsets;
	return -1;
}

int daemon_signals(struct rpc_loop *loop, struct tsr_err *err)
{
	daemon_loop = loop;
	if (daemon_sigaction(SIGINT, daemon_on_stop) != 0 ||
	    daemon_sigaction(SIGTERM, daemon_on_stop) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "cannot install signal handlers");
	if (daemon_sigaction(SIGHUP, daemon_on_hup) != 0)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "cannot install the SIGHUP handler");
	return 0;
}

void daemon_signals_detach(void)
{
	daemon_loop = NULL;
}

bool daemon_reload_due(void)
{
	if (!daemon_reload)
		return false;
	daemon_reload = 0;
	return true;
}

void daemon_tls_opts(const struct tls_conf *tls, struct rpc_server_opts *opts)
{
	opts->tls_cert = tls->plaintext ? NULL : tls->cert;
	opts->tls_key = tls->plaintext ? NULL : tls->key;
	opts->tls_client_ca = tls->client_ca[0] != '\0' ? tls->client_ca : NULL;
}

const char *daemon_tls_mode(const struct tls_conf *tls)
{
	if (tls->plaintext)
		return "plaintext";
	return tls->client_ca[0] != '\0' ? "mutual TLS" : "TLS";
}

int daemon_health(struct health *health, const char *service, enum health_status status,
		  struct tsr_err *err)
{
	if (health_set(health, "", status, err) != 0 ||
	    health_set(health, service, status, err) != 0)
		return -1;
	return 0;
}
