/*
 * test_hub_config: the tessera-hub configuration file: every keyword,
 * the defaults, the refusals (each naming file and line when there is
 * one), the bounds, TLS and token settings that must be explicit, and the
 * lines that come from the environment and --set instead of a file.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "config.h"
#include "hub_config.h"
#include "hub_fixture.h"
#include "sign.h"

#define ENV_NAME "TSR_TEST_HUB_CONFIG"

START_TEST(test_config_ok)
{
	struct hub_config cfg;
	struct tsr_err err;
	char path[64];

	ck_assert_int_eq(hfx_config_load("# hub\n"
					 "listen 0.0.0.0:7100\n"
					 "key /etc/tessera/hub.key\n"
					 "\n"
					 "spoke a 127.0.0.1:7001 @K zone=eu-1 gpu=yes\n"
					 "  spoke b_2 unix:/run/b.sock @K\n"
					 "relay-timeout-ms 2500\n"
					 "plaintext yes\n"
					 "spoke-plaintext yes\n"
					 "auth none\n"
					 "log-format json\n"
					 "metrics-listen 0.0.0.0:9465\n",
					 &cfg, &err, path, sizeof(path)),
			 0);
	ck_assert_str_eq(cfg.listen, "0.0.0.0:7100");
	ck_assert_str_eq(cfg.key_path, "/etc/tessera/hub.key");
	ck_assert_int_eq(cfg.relay_timeout_ms, 2500);
	ck_assert_uint_eq(cfg.nspokes, 2);
	ck_assert_str_eq(cfg.spokes[0].id, "a");
	ck_assert_str_eq(cfg.spokes[0].address, "127.0.0.1:7001");
	ck_assert_uint_eq(cfg.spokes[0].nlabels, 2);
	ck_assert_str_eq(cfg.spokes[0].labels[0].key, "zone");
	ck_assert_str_eq(cfg.spokes[0].labels[0].value, "eu-1");
	ck_assert_str_eq(cfg.spokes[0].labels[1].key, "gpu");
	ck_assert_str_eq(cfg.spokes[1].id, "b_2");
	ck_assert_uint_eq(cfg.spokes[1].nlabels, 0);
	ck_assert_uint_eq(strlen(cfg.spokes[1].pub.id), SIGN_KEY_ID_LEN);
	hub_config_free(&cfg);

	ck_assert(cfg.tls.plaintext && cfg.spoke_tls.plaintext && cfg.auth_none);
	ck_assert_int_eq(cfg.log_format, LOG_FORMAT_JSON);
	ck_assert_str_eq(cfg.metrics_listen, "0.0.0.0:9465");
	hub_config_free(&cfg);

	ck_assert_int_eq(hfx_config_load("key k\nspoke a h:1 @K\n" HFX_PLAIN, &cfg, &err, path,
					 sizeof(path)),
			 0);
	ck_assert_str_eq(cfg.listen, HUB_LISTEN_DEFAULT);
	ck_assert_int_eq(cfg.relay_timeout_ms, HUB_RELAY_TIMEOUT_DEFAULT_MS);
	ck_assert_int_eq(cfg.log_format, LOG_FORMAT_TEXT);
	ck_assert_str_eq(cfg.metrics_listen, ""); /* off */
	hub_config_free(&cfg);
}
END_TEST

/* The config must fail with a message naming line and containing what. */
static void config_fails(const char *fmt, int line, const char *what)
{
	struct hub_config cfg;
	struct tsr_err err;
	char path[64], where[96];

	ck_assert_msg(hfx_config_load(fmt, &cfg, &err, path, sizeof(path)) != 0, "accepted: %s",
		      fmt);
	hub_config_free(&cfg);
	if (line > 0) {
		snprintf(where, sizeof(where), "%s:%d: ", path, line);
		ck_assert_msg(strncmp(err.msg, where, strlen(where)) == 0,
			      "\"%s\" does not start with \"%s\"", err.msg, where);
	}
	ck_assert_msg(strstr(err.msg, what) != NULL, "\"%s\" lacks \"%s\"", err.msg, what);
}

START_TEST(test_config_rejects)
{
	config_fails("key k\nspoke a.b h:1 @K\n", 2, "spoke id");
	config_fails("key k\nspoke a h:1\n", 2, "expected");
	config_fails("key k\nspoke a h:1 ed25519:AAAA\n", 2, "spoke a: public key");
	config_fails("key k\nspoke a h:1 rsa:@K\n", 2, "spoke a: public key");
	config_fails("key k\nspoke a h:1 @K\nspoke a h:2 @K\n", 3, "spoke a given twice");
	config_fails("key k\nspoke a h:1 @K zone\n", 2, "not key=value");
	config_fails("key k\nspoke a h:1 @K zone=\n", 2, "label zone needs a value");
	config_fails("key k\nspoke a h:1 @K z.x=1\n", 2, "label key");
	config_fails("key k\nspoke a h:1 @K z=1 z=2\n", 2, "label z given twice");
	config_fails("key k\nspoke a h:1 @K\nrelay-timeout-ms 10\n", 3, "relay-timeout-ms");
	config_fails("key k\nspoke a h:1 @K\nrelay-timeout-ms 5s\n", 3, "relay-timeout-ms");
	config_fails("key k\nspoke a h:1 @K\nrelay-timeout-ms -1000\n", 3, "relay-timeout-ms");
	config_fails("key k\nspoke a h:1 @K\nlisten\n", 3, "listen");
	config_fails("key k\nlisten a:1\nlisten b:2\n", 3, "listen given twice");
	config_fails("key k\nkey j\n", 2, "key given twice");
	config_fails("key k\nspokes a h:1 @K\n", 2, "unknown keyword");
	config_fails("key k\nspoke a h:1 @K\nlog-format yaml\n", 3,
		     "log-format must be text or json, not \"yaml\"");
	config_fails("key k\nspoke a h:1 @K\nmetrics-listen 10.0.0.1\n", 3,
		     "metrics-listen \"10.0.0.1\": want IPV4:PORT, [IPV6]:PORT or PORT");
	config_fails("key k\nspoke a h:1 @K\nmetrics-listen 1 2\n", 3,
		     "metrics-listen takes one address");
	config_fails("spoke a h:1 @K\n", 0, "no \"key PATH\" line");
	config_fails("key k\n", 0, "no \"spoke");
}
END_TEST

START_TEST(test_config_tls)
{
	struct hub_config cfg;
	struct tsr_err err;
	char path[64];

	ck_assert_int_eq(
		hfx_config_load("key k\nspoke a h:1 @K\n"
				"tls-cert /c.pem\ntls-key /k.pem\ntls-client-ca /ca.pem\n"
				"spoke-tls-ca /sca.pem\nspoke-tls-cert /sc.pem\n"
				"spoke-tls-key /sk.pem\nspoke-tls-name spoke.test\n" HFX_TOKEN_LINE(
					"alice") HFX_TOKEN_LINE("bob"),
				&cfg, &err, path, sizeof(path)),
		0);
	ck_assert(!cfg.tls.plaintext && !cfg.spoke_tls.plaintext && !cfg.auth_none);
	ck_assert_str_eq(cfg.tls.cert, "/c.pem");
	ck_assert_str_eq(cfg.tls.key, "/k.pem");
	ck_assert_str_eq(cfg.tls.client_ca, "/ca.pem");
	ck_assert_str_eq(cfg.spoke_tls.ca, "/sca.pem");
	ck_assert_str_eq(cfg.spoke_tls.cert, "/sc.pem");
	ck_assert_str_eq(cfg.spoke_tls.key, "/sk.pem");
	ck_assert_str_eq(cfg.spoke_tls.name, "spoke.test");
	ck_assert_uint_eq(cfg.ntokens, 2);
	ck_assert_str_eq(cfg.tokens[1].name, "bob");
	hub_config_free(&cfg);

	/* Silence is not consent: each hop and the API must say how. */
	config_fails("key k\nspoke a h:1 @K\nspoke-plaintext yes\nauth none\n", 0,
		     "no TLS configured");
	config_fails("key k\nspoke a h:1 @K\nplaintext yes\nauth none\n", 0,
		     "no TLS to spokes configured");
	config_fails("key k\nspoke a h:1 @K\nplaintext yes\nspoke-plaintext yes\n", 0,
		     "no \"token NAME HASH\" line");
	config_fails("key k\nspoke a h:1 @K\n" HFX_PLAIN "tls-cert /c\ntls-key /k\n", 0,
		     "contradicts");
	config_fails("key k\nspoke a h:1 @K\n" HFX_PLAIN "spoke-tls-ca /ca\n", 0, "contradicts");
	config_fails("key k\nspoke a h:1 @K\n" HFX_PLAIN HFX_TOKEN_LINE("a"), 0, "contradicts");
	config_fails("key k\nspoke a h:1 @K\nspoke-plaintext yes\nauth none\ntls-cert /c\n", 0,
		     "both tls-cert and tls-key");
	config_fails("key k\nspoke a h:1 @K\nplaintext yes\nauth none\n"
		     "spoke-tls-ca /ca\nspoke-tls-cert /c\n",
		     0, "go together");
	config_fails("key k\nplaintext no\n", 2, "plaintext yes");
	config_fails("key k\nspoke-plaintext 1\n", 2, "spoke-plaintext yes");
	config_fails("key k\ntls-cert /a\ntls-cert /b\n", 3, "tls-cert given twice");
	config_fails("key k\ntls-key\n", 2, "exactly one value");
	config_fails("key k\nauth basic\n", 2, "auth none");
	config_fails("key k\ntoken a sha256:00\n", 2, "token a: a token hash");
	config_fails("key k\ntoken a blake2b256:" HFX_TOKEN_HEX "00\n", 2, "token hash");
	config_fails("key k\ntoken a.b blake2b256:" HFX_TOKEN_HEX "\n", 2, "token name");
	config_fails("key k\n" HFX_TOKEN_LINE("a") HFX_TOKEN_LINE("a"), 3, "token a given twice");
}
END_TEST

START_TEST(test_config_spoke_limits)
{
	char pub[SIGN_PUBKEY_TEXT_MAX + 16], path[64], line[512];
	struct hub_config cfg;
	struct sign_key key;
	struct tsr_err err;
	size_t cap = 80 * (HUB_SPOKES_MAX + 2), len = 0;
	char *text = malloc(cap);

	ck_assert_int_eq(sign_keygen(&key, &err), 0);
	ck_assert_int_eq(sign_pubkey_format(&key.pub, pub, sizeof(pub)), 0);
	len += (size_t)snprintf(text + len, cap - len, "key k\n");
	for (int i = 0; i <= HUB_SPOKES_MAX; i++) {
		snprintf(line, sizeof(line), "spoke s%d h:%d %s\n", i, i, pub);
		ck_assert_uint_lt(len + strlen(line), cap);
		memcpy(text + len, line, strlen(line) + 1);
		len += strlen(line);
	}
	hfx_temp_file(path, sizeof(path), text);
	ck_assert_int_ne(hub_config_load(path, &cfg, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "more than 256 spokes"));
	hub_config_free(&cfg);
	unlink(path);
	free(text);
}
END_TEST

/*
 * Without a file, the lines of a variable and then of --set flags make
 * the config, on top of a file when there is one; their errors name them.
 */
START_TEST(test_config_sources)
{
	char pub[SIGN_PUBKEY_TEXT_MAX], lines[512], path[64], file[512];
	char *sets[] = { "relay-timeout-ms 2500", "listen 0.0.0.0:7100" };
	struct config_sources src = { .env_name = ENV_NAME, .sets = sets, .nsets = 2 };
	struct hub_config cfg;
	struct sign_key key;
	struct tsr_err err;

	ck_assert_int_eq(sign_keygen(&key, &err), 0);
	ck_assert_int_eq(sign_pubkey_format(&key.pub, pub, sizeof(pub)), 0);
	sign_key_wipe(&key);
	snprintf(lines, sizeof(lines), "key k\nspoke a h:1 %s\n" HFX_PLAIN, pub);
	ck_assert_int_eq(setenv(ENV_NAME, lines, 1), 0);
	ck_assert_msg(hub_config_load_sources(&src, &cfg, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(cfg.listen, "0.0.0.0:7100");
	ck_assert_int_eq(cfg.relay_timeout_ms, 2500);
	ck_assert_uint_eq(cfg.nspokes, 1);
	ck_assert(cfg.auth_none);
	hub_config_free(&cfg);

	/* A file first: the variable's spoke comes after the file's. */
	snprintf(file, sizeof(file), "key k\nspoke a h:1 %s\n" HFX_PLAIN, pub);
	hfx_temp_file(path, sizeof(path), file);
	snprintf(lines, sizeof(lines), "spoke b h:2 %s\n", pub);
	ck_assert_int_eq(setenv(ENV_NAME, lines, 1), 0);
	src.path = path;
	ck_assert_msg(hub_config_load_sources(&src, &cfg, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(cfg.nspokes, 2);
	ck_assert_str_eq(cfg.spokes[0].id, "a");
	ck_assert_str_eq(cfg.spokes[1].id, "b");
	hub_config_free(&cfg);
	/* The variable may not repeat what the file said. */
	ck_assert_int_eq(setenv(ENV_NAME, "key j", 1), 0);
	ck_assert_int_ne(hub_config_load_sources(&src, &cfg, &err), 0);
	ck_assert_msg(strncmp(err.msg, "$" ENV_NAME ":1: ", strlen(ENV_NAME) + 4) == 0, "%s",
		      err.msg);
	ck_assert_ptr_nonnull(strstr(err.msg, "key given twice"));
	hub_config_free(&cfg);
	unlink(path);

	/* A bad --set line is named by its place among them. */
	src.path = NULL;
	snprintf(lines, sizeof(lines), "key k\nspoke a h:1 %s\n" HFX_PLAIN, pub);
	ck_assert_int_eq(setenv(ENV_NAME, lines, 1), 0);
	sets[1] = "relay-timeout-ms 5s";
	ck_assert_int_ne(hub_config_load_sources(&src, &cfg, &err), 0);
	ck_assert_msg(strncmp(err.msg, "--set:2: ", 9) == 0, "%s", err.msg);
	hub_config_free(&cfg);

	/* Nothing at all is no configuration. */
	ck_assert_int_eq(unsetenv(ENV_NAME), 0);
	src.nsets = 0;
	ck_assert_int_ne(hub_config_load_sources(&src, &cfg, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "no configuration"));
	hub_config_free(&cfg);
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "hub_config",
		    CHECK_TESTS(test_config_ok, test_config_rejects, test_config_spoke_limits,
				test_config_tls, test_config_sources));
	return 0;
}
