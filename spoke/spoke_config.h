/*
 * spoke_config: the spoke's configuration file. Agent types come only
 * from here: the network can name a type, never a program.
 *
 *   id spoke-1
 *   listen 127.0.0.1:7001
 *   valkey 127.0.0.1:6379          (or unix:/path/valkey.sock)
 *   valkey-user NAME                (optional: its ACL user; needs a password)
 *   valkey-password-file /abs/path  (optional: the password, one line; no
 *                                   access for group or others; read here)
 *   key /etc/tessera/spoke.key
 *   state-dir /var/lib/tessera/spoke-1  (agents' output and exit files:
 *                                   agent_files.h; default /var/lib/tessera/ID)
 *   shim /usr/local/bin/tessera-shim   (default: next to tessera-spoke)
 *   trust-hub ed25519:BASE64        (one line per trusted hub key)
 *   max-agents 64
 *   kill-grace-ms 5000
 *   output-tail-bytes 65536         (output kept per agent, up to 1 MiB)
 *   event-retention 1000000         (events kept in the stream, 100 to 10^8)
 *   agent-retention-ms 604800000    (ended agents' records kept this long)
 *   agent-retention-count 10000     (and at most this many of them)
 *   agent NAME stdin|env /abs/path [ARG...]
 *   agent-timeout NAME DEFAULT_MS MAX_MS  (after its agent line; agent_types.h)
 *   agent-grace NAME MS
 *   agent-env NAME KEY=VALUE        (repeatable; not PATH, HOME, TESSERA_*)
 *   agent-dir NAME /abs/dir         (its working directory; must exist)
 *   tls-cert PATH / tls-key PATH / tls-client-ca PATH, or plaintext yes
 *                                   (common/tls_conf.h)
 *   log-format text|json            (default text; common/log.h)
 *   metrics-listen ADDR             (optional: Prometheus metrics over HTTP;
 *                                   common/metrics_http.h)
 */
#ifndef TSR_SPOKE_CONFIG_H
#define TSR_SPOKE_CONFIG_H

#include "agent_types.h"
#include "config.h"
#include "error.h"
#include "ids.h"
#include "log.h"
#include "metrics_http.h"
#include "sign.h"
#include "store.h"
#include "supervisor.h"
#include "tls_conf.h"

#define SPOKE_LISTEN_MAX 256
#define SPOKE_PATH_MAX 4096
#define SPOKE_STATE_DIR_DEFAULT "/var/lib/tessera"
/* Ended agents' records: a week, and at most 10,000 (each up to its task and output tail). */
#define SPOKE_RETENTION_MS_DEFAULT (7LL * 24 * 60 * 60 * 1000)
#define SPOKE_RETENTION_MS_MIN 1000
#define SPOKE_RETENTION_MS_MAX (3650LL * 24 * 60 * 60 * 1000)
#define SPOKE_RETENTION_COUNT_DEFAULT 10000
#define SPOKE_RETENTION_COUNT_MAX 100000000

struct spoke_config {
	char id[TSR_NAME_MAX + 1];
	char listen[SPOKE_LISTEN_MAX];
	char valkey[STORE_ADDR_MAX];
	struct store_auth valkey_auth; /* wiped by spoke_config_free */
	char key_path[SPOKE_PATH_MAX];
	char state_dir[SPOKE_PATH_MAX];
	char shim_path[SPOKE_PATH_MAX];
	struct sign_keyring trusted;
	struct agent_types types;
	int max_agents;
	int kill_grace_ms;
	int output_tail_bytes;
	int event_retention;		  /* events the stream keeps (store_events_keep) */
	struct store_retention retention; /* ended agents' records kept */
	struct tls_conf tls;
	bool agent_cgroups_off; /* "agent-cgroups off": no cgroup per agent */
	enum log_format log_format;
	char metrics_listen[METRICS_LISTEN_MAX]; /* "": no metrics server */
};

/* From src: the file, then $TESSERA_SPOKE_CONFIG, then --set lines (config.h). */
int spoke_config_load_sources(const struct config_sources *src, struct spoke_config *cfg,
			      struct tsr_err *err);
/* The same from one file only. */
int spoke_config_load(const char *path, struct spoke_config *cfg, struct tsr_err *err);
void spoke_config_free(struct spoke_config *cfg);
/*
 * Reads src again, checked in full as at start-up, and on success
 * replaces *trusted with its trust-hub keys; any failure leaves *trusted
 * as it was. Only the trusted keys change: the rest needs a restart.
 */
int spoke_config_reload_trust(const struct config_sources *src, struct sign_keyring *trusted,
			      struct tsr_err *err);

#endif
