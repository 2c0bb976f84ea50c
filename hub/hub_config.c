/* hub_config: parsing and validating tessera-hub's configuration lines. */
#include "hub_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"

/* Printable ASCII without blanks: what a config word can hold anyway. */
static bool hub_config_word_ok(const char *s, size_t max)
{
	size_t len = strnlen(s, max + 1);

	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
	return true;
}

static int hub_config_listen(struct hub_config *cfg, int argc, char **argv, struct tsr_err *err)
{
	if (argc != 2 || !hub_config_word_ok(argv[1], HUB_ADDRESS_MAX))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "expected \"listen HOST:PORT\" (at most %d characters)",
				   HUB_ADDRESS_MAX);
	if (cfg->seen_listen)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "listen given twice");
	memcpy(cfg->listen, argv[1], strlen(argv[1]) + 1);
	cfg->seen_listen = true;
	return 0;
}

static int hub_config_key(struct hub_config *cfg, int argc, char **argv, struct tsr_err *err)
{
	if (argc != 2 || strlen(argv[1]) >= sizeof(cfg->key_path))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "expected \"key PATH\" (the hub's secret key file)");
	if (cfg->seen_key)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "key given twice");
	memcpy(cfg->key_path, argv[1], strlen(argv[1]) + 1);
	cfg->seen_key = true;
	return 0;
}

static int hub_config_timeout(struct hub_config *cfg, int argc, char **argv, struct tsr_err *err)
{
	char *end;
	long long v;

	if (argc != 2)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "expected \"relay-timeout-ms MILLISECONDS\"");
	v = strtoll(argv[1], &end, 10);
	if (argv[1][0] < '0' || argv[1][0] > '9' || *end != '\0' || v < HUB_RELAY_TIMEOUT_MIN_MS ||
	    v > HUB_RELAY_TIMEOUT_MAX_MS)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "relay-timeout-ms must be a number from %d to %d",
				   HUB_RELAY_TIMEOUT_MIN_MS, HUB_RELAY_TIMEOUT_MAX_MS);
	if (cfg->seen_timeout)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "relay-timeout-ms given twice");
	cfg->relay_timeout_ms = v;
	cfg->seen_timeout = true;
	return 0;
}

/* "key=value" into sc's next label. */
static int hub_config_label(struct hub_spoke_conf *sc, char *word, struct tsr_err *err)
{
	char *eq = strchr(word, '=');

	if (sc->nlabels == TSR_LABELS_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "spoke %s: more than %d labels", sc->id, TSR_LABELS_MAX);
	if (eq == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "spoke %s: label \"%.64s\" is not key=value", sc->id, word);
	*eq = '\0';
	if (!ids_valid_name(word))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "spoke %s: label key must be 1-%d characters of [A-Za-z0-9_-]",
				   sc->id, TSR_NAME_MAX);
	if (!hub_config_word_ok(eq + 1, TSR_LABEL_VALUE_MAX))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "spoke %s: label %s needs a value of 1-%d printable characters",
				   sc->id, word, TSR_LABEL_VALUE_MAX);
	for (size_t i = 0; i < sc->nlabels; i++)
		if (strcmp(sc->labels[i].key, word) == 0)
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "spoke %s: label %s given twice", sc->id, word);
	memcpy(sc->labels[sc->nlabels].key, word, strlen(word) + 1);
	memcpy(sc->labels[sc->nlabels].value, eq + 1, strlen(eq + 1) + 1);
	sc->nlabels++;
	return 0;
}

static int hub_config_spoke(struct hub_config *cfg, int argc, char **argv, struct tsr_err *err)
{
	struct hub_spoke_conf *sc, *grown;
	char why[TSR_ERR_MSG_MAX];

	if (argc < 4)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "expected \"spoke ID ADDRESS ed25519:KEY [label=value ...]\"");
	if (!ids_valid_name(argv[1]))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "spoke id \"%.64s\" must be 1-%d characters of [A-Za-z0-9_-]",
				   argv[1], TSR_NAME_MAX);
	if (!hub_config_word_ok(argv[2], HUB_ADDRESS_MAX))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "spoke %s: address must be 1-%d printable characters", argv[1],
				   HUB_ADDRESS_MAX);
	for (size_t i = 0; i < cfg->nspokes; i++)
		if (strcmp(cfg->spokes[i].id, argv[1]) == 0)
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "spoke %s given twice", argv[1]);
	if (cfg->nspokes == HUB_SPOKES_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "more than %d spokes",
				   HUB_SPOKES_MAX);
	grown = realloc(cfg->spokes, (cfg->nspokes + 1) * sizeof(*grown));
	if (grown == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	cfg->spokes = grown;
	sc = &cfg->spokes[cfg->nspokes];
	memset(sc, 0, sizeof(*sc));
	memcpy(sc->id, argv[1], strlen(argv[1]) + 1);
	memcpy(sc->address, argv[2], strlen(argv[2]) + 1);
	if (sign_pubkey_parse(argv[3], &sc->pub, err) != 0) {
		/* err->msg cannot be both source and destination of the format. */
		snprintf(why, sizeof(why), "%s", err->msg);
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "spoke %s: %s", sc->id, why);
	}
	for (int i = 4; i < argc; i++)
		if (hub_config_label(sc, argv[i], err) != 0)
			return -1;
	cfg->nspokes++;
	return 0;
}

static bool hub_config_spoke_tls_keyword(const char *keyword)
{
	return strcmp(keyword, "spoke-tls-ca") == 0 || strcmp(keyword, "spoke-tls-cert") == 0 ||
	       strcmp(keyword, "spoke-tls-key") == 0 || strcmp(keyword, "spoke-tls-name") == 0 ||
	       strcmp(keyword, "spoke-plaintext") == 0;
}

/* One line that hub_config_spoke_tls_keyword() accepted. */
static int hub_config_spoke_tls(struct hub_spoke_tls *st, int argc, char **argv,
				struct tsr_err *err)
{
	char *dst;
	size_t max = TLS_CONF_PATH_MAX;

	if (argc != 2)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "\"%s\" takes exactly one value", argv[0]);
	if (strcmp(argv[0], "spoke-plaintext") == 0) {
		if (strcmp(argv[1], "yes") != 0)
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "expected \"spoke-plaintext yes\"; for TLS give "
					   "spoke-tls-ca");
		st->plaintext = true;
		return 0;
	}
	if (strcmp(argv[0], "spoke-tls-ca") == 0) {
		dst = st->ca;
	} else if (strcmp(argv[0], "spoke-tls-cert") == 0) {
		dst = st->cert;
	} else if (strcmp(argv[0], "spoke-tls-key") == 0) {
		dst = st->key;
	} else {
		dst = st->name;
		max = sizeof(st->name);
		if (!hub_config_word_ok(argv[1], max - 1))
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "spoke-tls-name must be 1-%zu printable characters",
					   max - 1);
	}
	if (dst[0] != '\0')
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s given twice", argv[0]);
	if (snprintf(dst, max, "%s", argv[1]) >= (int)max) {
		dst[0] = '\0';
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s: path too long", argv[0]);
	}
	return 0;
}

static int hub_config_spoke_tls_check(const struct hub_spoke_tls *st, const char *path,
				      struct tsr_err *err)
{
	bool any = st->ca[0] != '\0' || st->cert[0] != '\0' || st->key[0] != '\0' ||
		   st->name[0] != '\0';

	if (st->plaintext && any)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "%s: \"spoke-plaintext yes\" contradicts the spoke-tls-* lines",
				   path);
	if (!st->plaintext && st->ca[0] == '\0')
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "%s: no TLS to spokes configured: add \"spoke-tls-ca PATH\", "
				   "or \"spoke-plaintext yes\" to reach them without TLS",
				   path);
	if ((st->cert[0] == '\0') != (st->key[0] == '\0'))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "%s: spoke-tls-cert and spoke-tls-key go together", path);
	return 0;
}

static int hub_config_token(struct hub_config *cfg, int argc, char **argv, struct tsr_err *err)
{
	struct hub_token *t;
	char why[TSR_ERR_MSG_MAX];

	if (argc != 3)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "expected \"token NAME %sHEX\"", TOKEN_HASH_PREFIX);
	if (!ids_valid_name(argv[1]))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "token name must be 1-%d characters of [A-Za-z0-9_-]",
				   TSR_NAME_MAX);
	for (size_t i = 0; i < cfg->ntokens; i++)
		if (strcmp(cfg->tokens[i].name, argv[1]) == 0)
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "token %s given twice", argv[1]);
	if (cfg->ntokens == HUB_TOKENS_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "more than %d tokens",
				   HUB_TOKENS_MAX);
	t = &cfg->tokens[cfg->ntokens];
	if (token_hash_parse(argv[2], &t->hash, err) != 0) {
		snprintf(why, sizeof(why), "%s", err->msg);
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "token %s: %s", argv[1], why);
	}
	memcpy(t->name, argv[1], strlen(argv[1]) + 1);
	cfg->ntokens++;
	return 0;
}

static int hub_config_auth(struct hub_config *cfg, int argc, char **argv, struct tsr_err *err)
{
	/* Tokens are the default: only their absence needs saying. */
	if (argc != 2 || strcmp(argv[1], "none") != 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "expected \"auth none\"; tokens need only \"token\" lines");
	cfg->auth_none = true;
	return 0;
}

static int hub_config_line(void *arg, int argc, char **argv, struct tsr_err *err)
{
	struct hub_config *cfg = arg;

	if (tls_conf_keyword(argv[0]))
		return tls_conf_line(&cfg->tls, argc, argv, err);
	if (hub_config_spoke_tls_keyword(argv[0]))
		return hub_config_spoke_tls(&cfg->spoke_tls, argc, argv, err);
	if (strcmp(argv[0], "token") == 0)
		return hub_config_token(cfg, argc, argv, err);
	if (strcmp(argv[0], "auth") == 0)
		return hub_config_auth(cfg, argc, argv, err);
	if (strcmp(argv[0], "log-format") == 0)
		return daemon_log_format_line(&cfg->log_format, argc, argv, err);
	if (strcmp(argv[0], METRICS_LISTEN_KEYWORD) == 0)
		return metrics_listen_line(cfg->metrics_listen, argc, argv, err);

	if (strcmp(argv[0], "listen") == 0)
		return hub_config_listen(cfg, argc, argv, err);
	if (strcmp(argv[0], "key") == 0)
		return hub_config_key(cfg, argc, argv, err);
	if (strcmp(argv[0], "spoke") == 0)
		return hub_config_spoke(cfg, argc, argv, err);
	if (strcmp(argv[0], "relay-timeout-ms") == 0)
		return hub_config_timeout(cfg, argc, argv, err);
	return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "unknown keyword \"%.64s\"", argv[0]);
}

int hub_config_load_sources(const struct config_sources *src, struct hub_config *cfg,
			    struct tsr_err *err)
{
	const char *path = config_sources_name(src);

	memset(cfg, 0, sizeof(*cfg));
	memcpy(cfg->listen, HUB_LISTEN_DEFAULT, sizeof(HUB_LISTEN_DEFAULT));
	cfg->relay_timeout_ms = HUB_RELAY_TIMEOUT_DEFAULT_MS;
	if (config_parse_sources(src, hub_config_line, cfg, err) != 0)
		return -1;
	if (!cfg->seen_key)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s: no \"key PATH\" line",
				   path);
	if (cfg->nspokes == 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "%s: no \"spoke ID ADDRESS KEY\" line", path);
	if (tls_conf_check(&cfg->tls, path, err) != 0 ||
	    hub_config_spoke_tls_check(&cfg->spoke_tls, path, err) != 0)
		return -1;
	if (cfg->auth_none && cfg->ntokens > 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "%s: \"auth none\" contradicts the token lines", path);
	if (!cfg->auth_none && cfg->ntokens == 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "%s: no \"token NAME HASH\" line (see tessera token-new), "
				   "or \"auth none\" to serve the API without tokens",
				   path);
	return 0;
}

int hub_config_load(const char *path, struct hub_config *cfg, struct tsr_err *err)
{
	struct config_sources src = { .path = path };

	return hub_config_load_sources(&src, cfg, err);
}

void hub_config_free(struct hub_config *cfg)
{
	free(cfg->spokes);
	cfg->spokes = NULL;
	cfg->nspokes = 0;
}
