/*
 * daemon: the skeleton tessera-hub and tessera-spoke share around their
 * own work: the command line and logging (and the log-format line), the
 * configuration sources the command line names, the signals (SIGPIPE
 * ignored from the start; SIGINT and SIGTERM stop the loop, SIGHUP asks
 * the loop for a reload), how the TLS lines become server options, and
 * one health status for the whole server and its service.
 */
#ifndef TSR_DAEMON_H
#define TSR_DAEMON_H

#include <stdbool.h>

#include "config.h"
#include "daemon_args.h"
#include "error.h"
#include "health.h"
#include "log.h"
#include "rpc_loop.h"
#include "rpc_server.h"
#include "tls_conf.h"

/*
 * Parses name's command line into *args (daemon_args.h), starts logging,
 * ignores SIGPIPE and points *src at the configuration the command line
 * names, with config_env as its variable. *src borrows from *args and
 * argv. -1: run; otherwise the exit code to return now.
 */
int daemon_begin(const char *name, const char *config_env, int argc, char **argv,
		 struct daemon_args *args, struct config_sources *src);
/*
 * The configuration line "log-format text|json" into *out; a later one
 * replaces it (a --set line the file's).
 */
int daemon_log_format_line(enum log_format *out, int argc, char **argv, struct tsr_err *err);
/*
 * Once the configuration is loaded: logs in its format from now on,
 * unless --log-format chose one, and, for a spoke, with its id (else NULL).
 */
void daemon_log_configured(const struct daemon_args *args, enum log_format configured,
			   const char *spoke_id);
/* From now on SIGINT and SIGTERM stop loop, and SIGHUP sets the reload flag. */
int daemon_signals(struct rpc_loop *loop, struct tsr_err *err);
/* Before loop is freed: SIGINT and SIGTERM no longer reach it. */
void daemon_signals_detach(void);
/* Whether a SIGHUP came since the last call: the loop's tick reloads. */
bool daemon_reload_due(void);
/* Sets the TLS fields of opts from tls: none for plaintext. */
void daemon_tls_opts(const struct tls_conf *tls, struct rpc_server_opts *opts);
/* "plaintext", "TLS" or "mutual TLS": for the log. */
const char *daemon_tls_mode(const struct tls_conf *tls);
/* The whole server ("") and service report status together. */
int daemon_health(struct health *health, const char *service, enum health_status status,
		  struct tsr_err *err);

#endif
