/*
 * test_spoke_config: the spoke's configuration file: every keyword and the
 * defaults, each refusal (unknown keyword, value count, shapes, ranges,
 * lengths, required lines, trust, TLS), the Valkey credentials and their
 * password file, and the SIGHUP reload of the trusted hub keys, which
 * keeps the old keys on any failure.
 */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "spoke_config.h"

#define BASE_MAX 2048

static char dir[64], path[128], pw_path[128];
static char hub1[SIGN_PUBKEY_TEXT_MAX], hub2[SIGN_PUBKEY_TEXT_MAX];
static struct sign_pubkey pub1, pub2;
static char base[BASE_MAX]; /* the required lines, valid */

static void pubkey(char *text, struct sign_pubkey *pub)
{
	struct sign_key k;
	struct tsr_err err;

	ck_assert_int_eq(sign_keygen(&k, &err), 0);
	ck_assert_int_eq(sign_pubkey_format(&k.pub, text, SIGN_PUBKEY_TEXT_MAX), 0);
	*pub = k.pub;
	sign_key_wipe(&k);
}

static void setup(void)
{
	struct tsr_err err;

	ck_assert_int_eq(sign_init(&err), 0);
	snprintf(dir, sizeof(dir), "/tmp/tsr-sc-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/spoke.conf", dir);
	snprintf(pw_path, sizeof(pw_path), "%s/valkey.pw", dir);
	pubkey(hub1, &pub1);
	pubkey(hub2, &pub2);
	snprintf(base, sizeof(base),
		 "id spoke-7\nlisten 127.0.0.1:7001\nvalkey unix:/run/v.sock\n"
		 "key /etc/tessera/spoke.key\ntrust-hub %s\nplaintext yes\n",
		 hub1);
}

static void teardown(void)
{
	unlink(path);
	unlink(pw_path);
	ck_assert_int_eq(rmdir(dir), 0);
}

static void write_conf(const char *a, const char *b)
{
	FILE *f = fopen(path, "we");

	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s%s", a, b != NULL ? b : "");
	ck_assert_int_eq(fclose(f), 0);
}

/* Loads base followed by extra; -1 with err for a refusal. */
static int load(const char *extra, struct spoke_config *cfg, struct tsr_err *err)
{
	write_conf(base, extra);
	return spoke_config_load(path, cfg, err);
}

/* A file of just text, which must be refused INVALID_ARGUMENT saying msg_part. */
static void refused_text(const char *text, const char *msg_part)
{
	struct spoke_config *cfg = malloc(sizeof(*cfg));
	struct tsr_err err;

	ck_assert_ptr_nonnull(cfg);
	write_conf(text, NULL);
	ck_assert_msg(spoke_config_load(path, cfg, &err) == -1, "accepted: %s", text);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_msg(strstr(err.msg, msg_part) != NULL, "\"%s\" lacks \"%s\"", err.msg, msg_part);
	free(cfg);
}

/* base and extra, which must be refused like refused_text. */
static void refused(const char *extra, const char *msg_part)
{
	char text[BASE_MAX + 512];

	snprintf(text, sizeof(text), "%s%s", base, extra);
	refused_text(text, msg_part);
}

/* base and extra, which must be refused with code, saying msg_part. */
static void refused_as(const char *extra, grpc_status_code code, const char *msg_part)
{
	struct spoke_config *cfg = malloc(sizeof(*cfg));
	struct tsr_err err;

	ck_assert_ptr_nonnull(cfg);
	ck_assert_msg(load(extra, cfg, &err) == -1, "accepted: %s", extra);
	ck_assert_int_eq(err.code, code);
	ck_assert_msg(strstr(err.msg, msg_part) != NULL, "\"%s\" lacks \"%s\"", err.msg, msg_part);
	free(cfg);
}

/* The password file: len bytes of text, then the given mode. */
static void pw_file(const char *text, size_t len, mode_t mode)
{
	int fd = open(pw_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(close(fd), 0);
}

START_TEST(test_full)
{
	struct spoke_config *cfg = malloc(sizeof(*cfg));
	char extra[512];
	struct tsr_err err;

	ck_assert_ptr_nonnull(cfg);
	snprintf(extra, sizeof(extra),
		 "state-dir /srv/tsr\nshim /opt/tsr/tessera-shim\ntrust-hub %s\n"
		 "max-agents 16384\nkill-grace-ms 0\noutput-tail-bytes 1048576\n"
		 "event-retention 100\nagent echo stdin /bin/cat -u\nagent-grace echo 7\n"
		 "agent-user echo nobody\nagent-rlimit echo core 0 0\nagent-cgroups off\n"
		 "log-format text\nlog-format json\nmetrics-listen 9464\n"
		 "metrics-listen [::1]:9100\n# a comment\n\n",
		 hub2);
	ck_assert_msg(load(extra, cfg, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(cfg->id, "spoke-7");
	ck_assert_str_eq(cfg->listen, "127.0.0.1:7001");
	ck_assert_str_eq(cfg->valkey, "unix:/run/v.sock");
	ck_assert_str_eq(cfg->key_path, "/etc/tessera/spoke.key");
	ck_assert_str_eq(cfg->state_dir, "/srv/tsr");
	ck_assert_str_eq(cfg->shim_path, "/opt/tsr/tessera-shim");
	ck_assert_uint_eq(cfg->trusted.n, 2);
	ck_assert_ptr_nonnull(sign_keyring_find(&cfg->trusted, pub2.id));
	ck_assert_int_eq(cfg->max_agents, 16384);
	ck_assert_int_eq(cfg->kill_grace_ms, 0);
	ck_assert_int_eq(cfg->output_tail_bytes, 1048576);
	ck_assert_int_eq(cfg->event_retention, 100);
	ck_assert(cfg->tls.plaintext);
	ck_assert_uint_eq(cfg->types.n, 1);
	ck_assert_str_eq(agent_types_find(&cfg->types, "echo")->argv[1], "-u");
	ck_assert_int_eq(agent_types_find(&cfg->types, "echo")->grace_ms, 7);
	ck_assert(agent_types_find(&cfg->types, "echo")->spec.set_user);
	ck_assert(agent_types_find(&cfg->types, "echo")->spec.set_limit[SHIM_LIMIT_CORE]);
	ck_assert(cfg->agent_cgroups_off);
	ck_assert_int_eq(cfg->log_format, LOG_FORMAT_JSON);  /* the last line counts */
	ck_assert_str_eq(cfg->metrics_listen, "[::1]:9100"); /* so here too */
	spoke_config_free(cfg);
	free(cfg);
}
END_TEST

START_TEST(test_defaults)
{
	struct spoke_config *cfg = malloc(sizeof(*cfg));
	char self[PATH_MAX], want[PATH_MAX + 32];
	ssize_t n;
	struct tsr_err err;

	ck_assert_ptr_nonnull(cfg);
	ck_assert_msg(load(NULL, cfg, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(cfg->max_agents, 64);
	ck_assert_int_eq(cfg->kill_grace_ms, 5000);
	ck_assert_int_eq(cfg->output_tail_bytes, SUPERVISOR_TAIL_DEFAULT);
	ck_assert_int_eq(cfg->event_retention, STORE_EVENTS_KEPT);
	ck_assert_str_eq(cfg->state_dir, SPOKE_STATE_DIR_DEFAULT "/spoke-7");
	/* The shim next to the running program. */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	ck_assert_int_gt(n, 0);
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	snprintf(want, sizeof(want), "%s/tessera-shim", self);
	ck_assert_str_eq(cfg->shim_path, want);
	ck_assert_uint_eq(cfg->types.n, 0);
	ck_assert(!cfg->agent_cgroups_off);
	ck_assert_int_eq(cfg->log_format, LOG_FORMAT_TEXT);
	ck_assert_str_eq(cfg->metrics_listen, ""); /* off */
	spoke_config_free(cfg);
	free(cfg);
}
END_TEST

START_TEST(test_refusals)
{
	char longv[400], line[512];

	refused("colour blue\n", "unknown keyword \"colour\"");
	refused("max-agents\n", "takes exactly one value");
	refused("max-agents 1 2\n", "takes exactly one value");
	refused("id bad.id\n", "id must be");
	refused("max-agents 0\n", "max-agents must be a number from 1 to 16384");
	refused("max-agents 16385\n", "max-agents must be");
	refused("max-agents 12x\n", "max-agents must be");
	refused("max-agents -1\n", "max-agents must be");
	refused("kill-grace-ms -1\n", "kill-grace-ms must be");
	refused("kill-grace-ms 600001\n", "kill-grace-ms must be");
	refused("output-tail-bytes 0\n", "output-tail-bytes must be");
	refused("output-tail-bytes 1048577\n", "output-tail-bytes must be");
	refused("event-retention 99\n", "event-retention must be");
	refused("event-retention 100000001\n", "event-retention must be");
	refused("trust-hub ed25519:nope\n", "");
	refused("agent x teleport /bin/true\n", "");
	refused("agent-timeout nosuch 1 2\n", "");
	refused("agent-env nosuch A=b\n", "");
	refused("plaintext no\n", "plaintext yes");
	refused("tls-cert /etc/c.pem\n", "contradicts");
	refused("valkey-tls-ca /etc/ca.pem\n", "Valkey over TLS is not supported");
	refused("agent-user nosuch nobody\n", "no agent nosuch");
	refused("agent-rlimit nosuch core 0 0\n", "no agent nosuch");
	refused("agent-cgroups on\n", "agent-cgroups must be auto or off");
	refused("log-format yaml\n", "log-format must be text or json, not \"yaml\"");
	refused("log-format\n", "\"log-format\" takes one value");
	refused("metrics-listen\n", "metrics-listen takes one address");
	refused("metrics-listen 127.0.0.1\n", "metrics-listen \"127.0.0.1\": want IPV4:PORT");
	refused("metrics-listen localhost:9464\n", "want IPV4:PORT, [IPV6]:PORT or PORT");
	memset(longv, 'l', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	snprintf(line, sizeof(line), "listen %s\n", longv);
	refused(line, "listen too long");
	snprintf(line, sizeof(line), "valkey %s\n", longv);
	refused(line, "valkey too long");
}
END_TEST

START_TEST(test_required)
{
	char text[BASE_MAX];

	refused_text("listen a:1\nvalkey b:2\nkey /k\nplaintext yes\n", "are required");
	refused_text("id s\nvalkey b:2\nkey /k\nplaintext yes\n", "are required");
	refused_text("id s\nlisten a:1\nkey /k\nplaintext yes\n", "are required");
	refused_text("id s\nlisten a:1\nvalkey b:2\nplaintext yes\n", "are required");
	refused_text("id s\nlisten a:1\nvalkey b:2\nkey /k\nplaintext yes\n", "no trust-hub");
	snprintf(text, sizeof(text), "id s\nlisten a:1\nvalkey b:2\nkey /k\ntrust-hub %s\n", hub1);
	refused_text(text, "no TLS configured");
}
END_TEST

START_TEST(test_valkey_auth)
{
	struct spoke_config *cfg = malloc(sizeof(*cfg));
	char extra[256], longest[STORE_PASSWORD_MAX + 1];
	struct tsr_err err;

	ck_assert_ptr_nonnull(cfg);
	/* None: no AUTH. */
	ck_assert_msg(load(NULL, cfg, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(cfg->valkey_auth.user, "");
	ck_assert_str_eq(cfg->valkey_auth.password, "");
	spoke_config_free(cfg);
	/* A user and its password; one trailing newline is not part of it. */
	pw_file("s3cret pass\n", 12, 0600);
	snprintf(extra, sizeof(extra), "valkey-user tessera\nvalkey-password-file %s\n", pw_path);
	ck_assert_msg(load(extra, cfg, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(cfg->valkey_auth.user, "tessera");
	ck_assert_str_eq(cfg->valkey_auth.password, "s3cret pass");
	/* Freed is wiped. */
	spoke_config_free(cfg);
	for (size_t i = 0; i < sizeof(cfg->valkey_auth); i++)
		ck_assert_int_eq(((const unsigned char *)&cfg->valkey_auth)[i], 0);
	/* A password alone (requirepass), of the longest length, no newline, mode 0400. */
	memset(longest, 'p', STORE_PASSWORD_MAX);
	longest[STORE_PASSWORD_MAX] = '\0';
	pw_file(longest, STORE_PASSWORD_MAX, 0400);
	snprintf(extra, sizeof(extra), "valkey-password-file %s\n", pw_path);
	ck_assert_msg(load(extra, cfg, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(cfg->valkey_auth.user, "");
	ck_assert_str_eq(cfg->valkey_auth.password, longest);
	spoke_config_free(cfg);
	free(cfg);
}
END_TEST

START_TEST(test_valkey_auth_refusals)
{
	char extra[512], longest[STORE_PASSWORD_MAX + 2], user[STORE_USER_MAX + 2];

	snprintf(extra, sizeof(extra), "valkey-password-file %s\n", pw_path);
	/* The error names file, line and password file. */
	pw_file("s3cret\n", 7, 0644);
	refused_as(extra, GRPC_STATUS_PERMISSION_DENIED, "spoke.conf:7: valkey-password-file");
	refused_as(extra, GRPC_STATUS_PERMISSION_DENIED, pw_path);
	refused_as(extra, GRPC_STATUS_PERMISSION_DENIED, "(mode 644); chmod 600 it");
	pw_file("s3cret\n", 7, 0640);
	refused_as(extra, GRPC_STATUS_PERMISSION_DENIED, "open to group or others");
	pw_file("s3cret\n", 7, 0602);
	refused_as(extra, GRPC_STATUS_PERMISSION_DENIED, "open to group or others");
	pw_file("", 0, 0600);
	refused_as(extra, GRPC_STATUS_INVALID_ARGUMENT, "want a password of 1-512 bytes");
	pw_file("\n", 1, 0600);
	refused_as(extra, GRPC_STATUS_INVALID_ARGUMENT, "want a password of 1-512 bytes");
	memset(longest, 'p', sizeof(longest));
	pw_file(longest, STORE_PASSWORD_MAX + 1, 0600);
	refused_as(extra, GRPC_STATUS_INVALID_ARGUMENT, "want a password of 1-512 bytes");
	longest[STORE_PASSWORD_MAX + 1] = '\n';
	pw_file(longest, STORE_PASSWORD_MAX + 2, 0600);
	refused_as(extra, GRPC_STATUS_INVALID_ARGUMENT, "want a password of 1-512 bytes");
	pw_file("two\nlines\n", 10, 0600);
	refused_as(extra, GRPC_STATUS_INVALID_ARGUMENT, "not one line");
	pw_file("one\n\n", 5, 0600);
	refused_as(extra, GRPC_STATUS_INVALID_ARGUMENT, "not one line");
	pw_file("nul\0inside", 10, 0600);
	refused_as(extra, GRPC_STATUS_INVALID_ARGUMENT, "not one line");
	unlink(pw_path);
	refused_as(extra, GRPC_STATUS_FAILED_PRECONDITION, "No such file");
	snprintf(extra, sizeof(extra), "valkey-password-file %s\n", dir);
	refused_as(extra, GRPC_STATUS_INVALID_ARGUMENT, "not a regular file");
	refused("valkey-password-file valkey.pw\n", "must be an absolute path");
	refused("valkey-password-file\n", "takes exactly one value");
	/* A user needs a password; its name is one bounded word of visible bytes. */
	refused("valkey-user tessera\n", "valkey-user needs a valkey-password-file line");
	refused("valkey-user a b\n", "takes exactly one value");
	refused("valkey-user a\x01z\n", "valkey-user must be 1-128 bytes");
	memset(user, 'u', STORE_USER_MAX + 1);
	user[STORE_USER_MAX + 1] = '\0';
	snprintf(extra, sizeof(extra), "valkey-user %s\n", user);
	refused(extra, "valkey-user must be 1-128 bytes");
}
END_TEST

START_TEST(test_missing_file)
{
	struct spoke_config *cfg = malloc(sizeof(*cfg));
	struct tsr_err err;

	ck_assert_ptr_nonnull(cfg);
	ck_assert_int_eq(spoke_config_load("/nonexistent/spoke.conf", cfg, &err), -1);
	ck_assert_int_ne(err.code, GRPC_STATUS_OK);
	free(cfg);
}
END_TEST

START_TEST(test_reload_trust)
{
	struct config_sources src = { .path = path };
	struct sign_keyring ring = { 0 };
	char extra[256];
	struct tsr_err err;

	ck_assert_int_eq(sign_keyring_add(&ring, &pub1, &err), 0);
	/* hub2 added, hub1 kept: both from the file. */
	snprintf(extra, sizeof(extra), "trust-hub %s\n", hub2);
	write_conf(base, extra);
	ck_assert_msg(spoke_config_reload_trust(&src, &ring, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(ring.n, 2);
	/* Only hub2 now: hub1 revoked. */
	snprintf(extra, sizeof(extra),
		 "id s\nlisten a:1\nvalkey b:2\nkey /k\nplaintext yes\n"
		 "trust-hub %s\n",
		 hub2);
	write_conf(extra, NULL);
	ck_assert_int_eq(spoke_config_reload_trust(&src, &ring, &err), 0);
	ck_assert_uint_eq(ring.n, 1);
	ck_assert_ptr_nonnull(sign_keyring_find(&ring, pub2.id));
	ck_assert_ptr_null(sign_keyring_find(&ring, pub1.id));
	/* A broken file changes nothing. */
	write_conf(base, "max-agents many\n");
	ck_assert_int_eq(spoke_config_reload_trust(&src, &ring, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_uint_eq(ring.n, 1);
	ck_assert_ptr_nonnull(sign_keyring_find(&ring, pub2.id));
}
END_TEST

/* The file, then the variable's lines, then --set lines: the last word wins. */
START_TEST(test_sources)
{
	struct spoke_config *cfg = malloc(sizeof(*cfg));
	char *sets[] = { "max-agents 9", "state-dir /from/set" };
	struct config_sources src = {
		.path = path, .env_name = "TSR_TEST_SPOKE_CONFIG", .sets = sets, .nsets = 2
	};
	struct tsr_err err;

	ck_assert_ptr_nonnull(cfg);
	write_conf(base, "max-agents 5\nstate-dir /from/file\nkill-grace-ms 10\n");
	ck_assert_int_eq(setenv("TSR_TEST_SPOKE_CONFIG", "max-agents 7\nkill-grace-ms 20", 1), 0);
	ck_assert_msg(spoke_config_load_sources(&src, cfg, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(cfg->max_agents, 9);
	ck_assert_int_eq(cfg->kill_grace_ms, 20);
	ck_assert_str_eq(cfg->state_dir, "/from/set");
	spoke_config_free(cfg);
	/* What they lack is named by where it came from. */
	src.path = NULL;
	ck_assert_int_eq(spoke_config_load_sources(&src, cfg, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "are required"));
	free(cfg);
}
END_TEST

int test_suite(SRunner *sr)
{
	TCase *tc;

	tc = check_suite(sr, "spoke_config",
			 CHECK_TESTS(test_full, test_defaults, test_refusals, test_required,
				     test_valkey_auth, test_valkey_auth_refusals, test_missing_file,
				     test_reload_trust, test_sources));
	tcase_add_checked_fixture(tc, setup, teardown);
	return 0;
}
