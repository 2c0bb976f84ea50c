/* spoke_config: parsing and checking the spoke's configuration file. */
#include "spoke_config.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "tls_conf.h"

#define SPOKE_GRACE_MAX_MS (10 * 60 * 1000)

static int spoke_config_copy(char *dst, size_t dstlen, const char *src, const char *what,
			     struct tsr_err *err)
{
	if (snprintf(dst, dstlen, "%s", src) >= (int)dstlen)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s too long", what);
	return 0;
}

static int spoke_config_number(const char *s, int64_t min, int64_t max, int64_t *out,
			       const char *what, struct tsr_err *err)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < min || v > max)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "%s must be a number from %lld to %lld", what, (long long)min,
				   (long long)max);
	*out = v;
	return 0;
}

static int spoke_config_int(const char *s, int min, int max, int *out, const char *what,
			    struct tsr_err *err)
{
	int64_t v = 0;

	if (spoke_config_number(s, min, max, &v, what, err) != 0)
		return -1;
	*out = (int)v;
	return 0;
}

/* An ACL user name: one word (the line format has no quoting), no control bytes. */
static int spoke_config_valkey_user(struct spoke_config *cfg, const char *name, struct tsr_err *err)
{
	size_t len = strnlen(name, STORE_USER_MAX + 1);
	bool ok = len > 0 && len <= STORE_USER_MAX;

	for (size_t i = 0; ok && i < len; i++)
		ok = (unsigned char)name[i] > ' ' && name[i] != 0x7f;
	if (!ok)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "valkey-user must be 1-%d bytes without blanks or control bytes",
				   STORE_USER_MAX);
	memcpy(cfg->valkey_auth.user, name, len + 1);
	return 0;
}

/* Opens the Valkey password file: a regular file that, like a key file, is the owner's alone. */
static int spoke_config_secret_open(const char *path, int *out, struct tsr_err *err)
{
	struct stat sb;
	int fd, rc = -1;

	if (path[0] != '/')
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "valkey-password-file must be an absolute path");
	/*
	 * Links are followed (Kubernetes mounts secrets as links): the file
	 * checked is the one opened. O_NONBLOCK: a FIFO must not hang start-up.
	 */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
				   "valkey-password-file %s: %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
			    "valkey-password-file %s: not a regular file", path);
		goto out;
	}
	if ((sb.st_mode & 077) != 0) {
		tsr_err_set(err, GRPC_STATUS_PERMISSION_DENIED,
			    "valkey-password-file %s: open to group or others (mode %03o); "
			    "chmod 600 it",
			    path, (unsigned)(sb.st_mode & 0777));
		goto out;
	}
	*out = fd;
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Reads fd (path, for messages) into buf until its end or len bytes; *n: how many. */
static int spoke_config_secret_read(int fd, const char *path, char *buf, size_t len, size_t *n,
				    struct tsr_err *err)
{
	ssize_t r;

	*n = 0;
	while (*n < len) {
		r = read(fd, buf + *n, len - *n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
					   "valkey-password-file %s: %s", path, strerror(errno));
		if (r == 0)
			break;
		*n += (size_t)r;
	}
	return 0;
}

/*
 * Reads the Valkey password now, so that a bad file stops start-up with
 * its config line named.
 */
static int spoke_config_valkey_password(struct spoke_config *cfg, const char *path,
					struct tsr_err *err)
{
	/* Room for the password, its newline, and a byte that shows a longer file. */
	char buf[STORE_PASSWORD_MAX + 2];
	size_t n = 0;
	int fd = -1, rc = -1;

	if (spoke_config_secret_open(path, &fd, err) != 0 ||
	    spoke_config_secret_read(fd, path, buf, sizeof(buf), &n, err) != 0)
		goto out;
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n == 0 || n > STORE_PASSWORD_MAX) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
			    "valkey-password-file %s: want a password of 1-%d bytes", path,
			    STORE_PASSWORD_MAX);
		goto out;
	}
	if (memchr(buf, '\0', n) != NULL || memchr(buf, '\n', n) != NULL) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
			    "valkey-password-file %s: not one line (a NUL or newline inside)",
			    path);
		goto out;
	}
	memcpy(cfg->valkey_auth.password, buf, n);
	cfg->valkey_auth.password[n] = '\0';
	rc = 0;
out:
	sodium_memzero(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return rc;
}

/* The lines about one agent type, each handed to agent_types. */
static const struct {
	const char *keyword;
	int (*fn)(struct agent_types *t, int argc, char **argv, struct tsr_err *err);
} spoke_type_lines[] = {
	{ "agent", agent_types_add },
	{ "agent-timeout", agent_types_limit },
	{ "agent-grace", agent_types_limit },
	{ "agent-env", agent_types_launch },
	{ "agent-dir", agent_types_launch },
	{ "agent-user", agent_types_account },
	{ "agent-rlimit", agent_types_account },
};

static int spoke_config_cgroups(struct spoke_config *cfg, const char *v, struct tsr_err *err)
{
	if (strcmp(v, "auto") != 0 && strcmp(v, "off") != 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent-cgroups must be auto or off");
	cfg->agent_cgroups_off = strcmp(v, "off") == 0;
	return 0;
}

static int spoke_config_line(void *arg, int argc, char **argv, struct tsr_err *err)
{
	struct spoke_config *cfg = arg;
	struct sign_pubkey pub;

	for (size_t i = 0; i < sizeof(spoke_type_lines) / sizeof(spoke_type_lines[0]); i++)
		if (strcmp(argv[0], spoke_type_lines[i].keyword) == 0)
			return spoke_type_lines[i].fn(&cfg->types, argc, argv, err);
	if (strncmp(argv[0], "valkey-tls-", 11) == 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "%s: Valkey over TLS is not supported (built with hiredis "
				   "%d.%d, Debian 12's, which has none); reach Valkey by a unix "
				   "socket in a 0700 directory, or on loopback or a private "
				   "network with valkey-user and valkey-password-file",
				   argv[0], HIREDIS_MAJOR, HIREDIS_MINOR);
	if (tls_conf_keyword(argv[0]))
		return tls_conf_line(&cfg->tls, argc, argv, err);
	if (strcmp(argv[0], "log-format") == 0)
		return daemon_log_format_line(&cfg->log_format, argc, argv, err);
	if (strcmp(argv[0], METRICS_LISTEN_KEYWORD) == 0)
		return metrics_listen_line(cfg->metrics_listen, argc, argv, err);
	if (argc != 2)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "\"%s\" takes exactly one value", argv[0]);
	if (strcmp(argv[0], "id") == 0) {
		if (!ids_valid_name(argv[1]))
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "id must be 1-%d of [A-Za-z0-9_-]", TSR_NAME_MAX);
		return spoke_config_copy(cfg->id, sizeof(cfg->id), argv[1], "id", err);
	}
	if (strcmp(argv[0], "listen") == 0)
		return spoke_config_copy(cfg->listen, sizeof(cfg->listen), argv[1], "listen", err);
	if (strcmp(argv[0], "valkey") == 0)
		return spoke_config_copy(cfg->valkey, sizeof(cfg->valkey), argv[1], "valkey", err);
	if (strcmp(argv[0], "valkey-user") == 0)
		return spoke_config_valkey_user(cfg, argv[1], err);
	if (strcmp(argv[0], "valkey-password-file") == 0)
		return spoke_config_valkey_password(cfg, argv[1], err);
	if (strcmp(argv[0], "key") == 0)
		return spoke_config_copy(cfg->key_path, sizeof(cfg->key_path), argv[1], "key", err);
	if (strcmp(argv[0], "state-dir") == 0)
		return spoke_config_copy(cfg->state_dir, sizeof(cfg->state_dir), argv[1],
					 "state-dir", err);
	if (strcmp(argv[0], "shim") == 0)
		return spoke_config_copy(cfg->shim_path, sizeof(cfg->shim_path), argv[1], "shim",
					 err);
	if (strcmp(argv[0], "trust-hub") == 0) {
		if (sign_pubkey_parse(argv[1], &pub, err) != 0)
			return -1;
		return sign_keyring_add(&cfg->trusted, &pub, err);
	}
	if (strcmp(argv[0], "max-agents") == 0)
		return spoke_config_int(argv[1], 1, SUPERVISOR_AGENTS_MAX, &cfg->max_agents,
					"max-agents", err);
	if (strcmp(argv[0], "kill-grace-ms") == 0)
		return spoke_config_int(argv[1], 0, SPOKE_GRACE_MAX_MS, &cfg->kill_grace_ms,
					"kill-grace-ms", err);
	if (strcmp(argv[0], "output-tail-bytes") == 0)
		return spoke_config_int(argv[1], 1, SUPERVISOR_TAIL_MAX, &cfg->output_tail_bytes,
					"output-tail-bytes", err);
	if (strcmp(argv[0], "event-retention") == 0)
		return spoke_config_int(argv[1], STORE_EVENTS_KEPT_MIN, STORE_EVENTS_KEPT_MAX,
					&cfg->event_retention, "event-retention", err);
	if (strcmp(argv[0], "agent-cgroups") == 0)
		return spoke_config_cgroups(cfg, argv[1], err);
	if (strcmp(argv[0], "agent-retention-ms") == 0)
		return spoke_config_number(argv[1], SPOKE_RETENTION_MS_MIN, SPOKE_RETENTION_MS_MAX,
					   &cfg->retention.ms, "agent-retention-ms", err);
	if (strcmp(argv[0], "agent-retention-count") == 0)
		return spoke_config_number(argv[1], 0, SPOKE_RETENTION_COUNT_MAX,
					   &cfg->retention.count, "agent-retention-count", err);
	return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "unknown keyword \"%s\"", argv[0]);
}

/* The state directory and shim when the file names none. */
static int spoke_config_defaults(struct spoke_config *cfg, struct tsr_err *err)
{
	char self[SPOKE_PATH_MAX], *slash;
	ssize_t n;

	if (cfg->state_dir[0] == '\0' &&
	    snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s/%s", SPOKE_STATE_DIR_DEFAULT,
		     cfg->id) >= (int)sizeof(cfg->state_dir))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "state-dir too long");
	if (cfg->shim_path[0] != '\0')
		return 0;
	/* Installed, or built, next to tessera-spoke. */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0 || (size_t)n >= sizeof(self) - 1)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL,
				   "cannot find tessera-shim: name it with a \"shim\" line");
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash == NULL)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL,
				   "cannot find tessera-shim: name it with a \"shim\" line");
	*slash = '\0';
	if (snprintf(cfg->shim_path, sizeof(cfg->shim_path), "%s/tessera-shim", self) >=
	    (int)sizeof(cfg->shim_path))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "shim path too long");
	return 0;
}

int spoke_config_load_sources(const struct config_sources *src, struct spoke_config *cfg,
			      struct tsr_err *err)
{
	const char *path = config_sources_name(src);

	memset(cfg, 0, sizeof(*cfg));
	cfg->max_agents = 64;
	cfg->kill_grace_ms = 5000;
	cfg->output_tail_bytes = SUPERVISOR_TAIL_DEFAULT;
	cfg->event_retention = STORE_EVENTS_KEPT;
	cfg->retention.ms = SPOKE_RETENTION_MS_DEFAULT;
	cfg->retention.count = SPOKE_RETENTION_COUNT_DEFAULT;
	if (config_parse_sources(src, spoke_config_line, cfg, err) != 0)
		goto fail;
	if (cfg->id[0] == '\0' || cfg->listen[0] == '\0' || cfg->valkey[0] == '\0' ||
	    cfg->key_path[0] == '\0') {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
			    "%s: id, listen, valkey and key are required", path);
		goto fail;
	}
	if (cfg->valkey_auth.user[0] != '\0' && cfg->valkey_auth.password[0] == '\0') {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
			    "%s: valkey-user needs a valkey-password-file line", path);
		goto fail;
	}
	if (cfg->trusted.n == 0) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
			    "%s: no trust-hub key: this spoke would obey nobody", path);
		goto fail;
	}
	if (tls_conf_check(&cfg->tls, path, err) != 0 || spoke_config_defaults(cfg, err) != 0)
		goto fail;
	return 0;
fail:
	spoke_config_free(cfg);
	return -1;
}

int spoke_config_load(const char *path, struct spoke_config *cfg, struct tsr_err *err)
{
	struct config_sources src = { .path = path };

	return spoke_config_load_sources(&src, cfg, err);
}

void spoke_config_free(struct spoke_config *cfg)
{
	agent_types_free(&cfg->types);
	sodium_memzero(&cfg->valkey_auth, sizeof(cfg->valkey_auth));
}

int spoke_config_reload_trust(const struct config_sources *src, struct sign_keyring *trusted,
			      struct tsr_err *err)
{
	/* Heap: a whole configuration is too big for the loop thread's stack. */
	struct spoke_config *fresh = malloc(sizeof(*fresh));
	int rc = -1;

	if (fresh == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	if (spoke_config_load_sources(src, fresh, err) != 0)
		goto out;
	*trusted = fresh->trusted;
	spoke_config_free(fresh);
	rc = 0;
out:
	free(fresh);
	return rc;
}
