/*
 * hub_config: the tessera-hub configuration file, in the shared line
 * format (common/config.h):
 *
 *	listen 127.0.0.1:7000
 *	key /etc/tessera/hub.key
 *	spoke ID ADDRESS ed25519:PUBKEY [label=value ...]
 *	relay-timeout-ms 10000
 *	tls-cert PATH / tls-key PATH / tls-client-ca PATH, or plaintext yes
 *				(the hub's own listener: common/tls_conf.h)
 *	spoke-tls-ca PATH	verifies every spoke's certificate
 *	spoke-tls-cert PATH	the hub's client certificate for spokes
 *	spoke-tls-key PATH	  that require one (mutual TLS), and its key
 *	spoke-tls-name NAME	expect NAME in spoke certificates, not the host
 *	spoke-plaintext yes	reach spokes without TLS, on purpose
 *	token NAME blake2b256:HEX	a bearer token's hash (hub/token.h)
 *	auth none		serve tessera.v1.Hub without tokens, on purpose
 *	log-format text|json	how it logs (default text; common/log.h)
 *	metrics-listen ADDR	Prometheus metrics over HTTP (common/metrics_http.h)
 *
 * Every line is validated here; errors name file and line.
 */
#ifndef TSR_HUB_CONFIG_H
#define TSR_HUB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "hub_limits.h"
#include "ids.h"
#include "log.h"
#include "metrics_http.h"
#include "sign.h"
#include "tls_conf.h"
#include "token.h"

#define HUB_CONFIG_PATH_MAX 4096
#define HUB_LISTEN_DEFAULT "127.0.0.1:7000"

struct hub_label {
	char key[TSR_NAME_MAX + 1];
	char value[TSR_LABEL_VALUE_MAX + 1];
};

struct hub_spoke_conf {
	char id[TSR_NAME_MAX + 1];
	char address[HUB_ADDRESS_MAX + 1];
	struct sign_pubkey pub;
	struct hub_label labels[TSR_LABELS_MAX];
	size_t nlabels;
};

struct hub_spoke_tls {		    /* how the hub reaches its spokes */
	char ca[TLS_CONF_PATH_MAX]; /* "" when not given */
	char cert[TLS_CONF_PATH_MAX];
	char key[TLS_CONF_PATH_MAX];
	char name[HUB_ADDRESS_MAX + 1];
	bool plaintext;
};

struct hub_token {
	char name[TSR_NAME_MAX + 1]; /* for the operator; never sent */
	struct token_hash hash;
};

struct hub_config {
	char listen[HUB_ADDRESS_MAX + 1];
	char key_path[HUB_CONFIG_PATH_MAX];
	int64_t relay_timeout_ms;
	struct hub_spoke_conf *spokes; /* owned; nspokes of them, in file order */
	size_t nspokes;
	struct tls_conf tls; /* the hub's own listener */
	struct hub_spoke_tls spoke_tls;
	struct hub_token tokens[HUB_TOKENS_MAX];
	size_t ntokens;
	bool auth_none;
	enum log_format log_format;
	char metrics_listen[METRICS_LISTEN_MAX]; /* "": no metrics server */
	bool seen_listen, seen_key, seen_timeout;
};

/*
 * Fills cfg (which the caller frees with hub_config_free, even on error)
 * from src: the file, then $TESSERA_HUB_CONFIG, then --set lines.
 */
int hub_config_load_sources(const struct config_sources *src, struct hub_config *cfg,
			    struct tsr_err *err);
/* The same from one file only. */
int hub_config_load(const char *path, struct hub_config *cfg, struct tsr_err *err);
void hub_config_free(struct hub_config *cfg);

#endif
